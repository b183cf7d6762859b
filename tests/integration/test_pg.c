/*
 * test_pg.c - the asynchronous PostgreSQL connection on its own, inside a
 * real lws loop against the real server: queries answer in order, a failing
 * statement fails alone, explicit transactions span queries, and pipeline
 * mode really sends queries ahead of the answers.
 */
#include "harness.h"
#include "pg.h"

#include <arpa/inet.h>
#include <check.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ANSWERS 512

typedef struct {
    int n;
    char value[MAX_ANSWERS][64]; /* first value, or "ERR" */
    bool up;
} answers;

static struct lws_context *ctx;
static struct lws_vhost *vhost;

static void on_up(void *ud) { ((answers *)ud)->up = true; }

static void record(void *ud, const PGresult *res, const char *error) {
    answers *a = ud;
    ck_assert_int_lt(a->n, MAX_ANSWERS);
    const char *v = error ? "ERR" : PQntuples(res) ? PQgetvalue(res, 0, 0) : "";
    snprintf(a->value[a->n++], sizeof a->value[0], "%s", v);
}

static spark_pg *open_pg_at(const char *conninfo, unsigned depth, answers *a) {
    static struct lws_protocols list[2]; /* lws keeps a pointer to it */
    list[0] = spark_pg_protocol;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = list;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    lws_set_log_level(LLL_ERR, NULL);
    ctx = lws_create_context(&info);
    ck_assert_ptr_nonnull(ctx);
    info.vhost_name = "test";
    vhost = lws_create_vhost(ctx, &info);
    ck_assert_ptr_nonnull(vhost);

    static const spark_pg_events events = {.on_up = on_up};
    spark_pg *pg = spark_pg_new(ctx, vhost, conninfo, "test", &events, a);
    spark_pg_set_pipeline(pg, depth);
    spark_pg_start(pg);
    lws_usec_t deadline = lws_now_usecs() + 10 * LWS_US_PER_SEC;
    while (!a->up && lws_now_usecs() < deadline)
        lws_service(ctx, 0);
    ck_assert_msg(a->up, "no connection to %s", conninfo);
    return pg;
}

static spark_pg *open_pg(unsigned depth, answers *a) {
    char name[64];
    return open_pg_at(it_create_database(name), depth, a);
}

static void wait_answers(answers *a, int n) {
    lws_usec_t deadline = lws_now_usecs() + 10 * LWS_US_PER_SEC;
    while (a->n < n && lws_now_usecs() < deadline)
        lws_service(ctx, 0);
    ck_assert_int_eq(a->n, n);
}

static void close_pg(spark_pg *pg) {
    spark_pg_free(pg);
    lws_context_destroy(ctx);
}

static void query(spark_pg *pg, answers *a, const char *sql) {
    ck_assert_int_eq(spark_pg_query(pg, sql, 0, NULL, record, a), 0);
}

/* The same script with and without pipelining gives the same answers. */
static void run_script(unsigned depth) {
    answers *a = calloc(1, sizeof *a);
    spark_pg *pg = open_pg(depth, a);
    query(pg, a, "SELECT 'first'");
    query(pg, a, "SELECT 1/0");
    query(pg, a, "SELECT 'after the error'");
    query(pg, a, "CREATE TEMP TABLE t (x int)");
    query(pg, a, "BEGIN");
    query(pg, a, "INSERT INTO t VALUES (1)");
    query(pg, a, "SELECT count(*) FROM t");
    query(pg, a, "SELECT 1/0");
    query(pg, a, "INSERT INTO t VALUES (2)"); /* the transaction is aborted */
    query(pg, a, "ROLLBACK");
    query(pg, a, "SELECT count(*) FROM t");
    for (int i = 0; i < 300; i++) {
        char n[16];
        snprintf(n, sizeof n, "%d", i);
        const char *params[] = {n};
        ck_assert_int_eq(spark_pg_query(pg, "SELECT $1::int * 2", 1, params, record, a), 0);
    }
    wait_answers(a, 311);
    const char *want[] = {"first", "ERR", "after the error", "", "", "", "1", "ERR", "ERR",
                          "",      "0"};
    for (int i = 0; i < 11; i++)
        ck_assert_msg(strcmp(a->value[i], want[i]) == 0, "depth %u answer %d: %s, not %s", depth, i,
                      a->value[i], want[i]);
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(atoi(a->value[11 + i]), 2 * i);
    ck_assert_uint_eq(spark_pg_pending(pg), 0);
    close_pg(pg);
    free(a);
}

START_TEST(queries_answer_in_order_one_at_a_time) { run_script(1); }
END_TEST

START_TEST(queries_answer_in_order_pipelined) { run_script(16); }
END_TEST

START_TEST(pipeline_sends_ahead_of_the_answers) {
    answers *a = calloc(1, sizeof *a);
    spark_pg *pg = open_pg(8, a);
    for (int i = 0; i < 20; i++)
        query(pg, a, "SELECT pg_sleep(0.001)");
    ck_assert_uint_eq(spark_pg_in_flight(pg), 8);
    ck_assert_uint_eq(spark_pg_pending(pg), 20);
    wait_answers(a, 20);
    ck_assert_uint_eq(spark_pg_in_flight(pg), 0);
    close_pg(pg);
    free(a);

    a = calloc(1, sizeof *a);
    pg = open_pg(1, a);
    for (int i = 0; i < 5; i++)
        query(pg, a, "SELECT 1");
    ck_assert_uint_eq(spark_pg_in_flight(pg), 1);
    wait_answers(a, 5);
    close_pg(pg);
    free(a);
}
END_TEST

START_TEST(query_first_goes_ahead_of_the_backlog) {
    answers *a = calloc(1, sizeof *a);
    spark_pg *pg = open_pg(2, a);
    for (int i = 0; i < 10; i++)
        query(pg, a, "SELECT 'backlog'");
    ck_assert_int_eq(spark_pg_query_first(pg, "SELECT 'urgent'", 0, NULL, record, a), 0);
    wait_answers(a, 11);
    /* the two already sent, then the urgent one */
    ck_assert_str_eq(a->value[0], "backlog");
    ck_assert_str_eq(a->value[1], "backlog");
    ck_assert_str_eq(a->value[2], "urgent");
    ck_assert_str_eq(a->value[10], "backlog");
    ck_assert_uint_eq(spark_pg_pending(pg), 0);
    close_pg(pg);
    free(a);
}
END_TEST

/* Queries far larger than a socket buffer take many writable turns to
 * send. Each must go out whole, on every transport: a lost request for
 * writable leaves the server waiting for the rest of a query for ever. */
static void send_big_queries(const char *conninfo) {
    enum { BIG = 4 << 20, COUNT = 4 };
    char *big = malloc(BIG + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', BIG);
    big[BIG] = '\0';
    answers *a = calloc(1, sizeof *a);
    spark_pg *pg = open_pg_at(conninfo, 8, a);
    const char *params[] = {big};
    for (int i = 0; i < COUNT; i++)
        ck_assert_int_eq(spark_pg_query(pg, "SELECT length($1)", 1, params, record, a), 0);
    query(pg, a, "SELECT 'small after big'");
    wait_answers(a, COUNT + 1);
    for (int i = 0; i < COUNT; i++)
        ck_assert_int_eq(atoi(a->value[i]), BIG);
    ck_assert_str_eq(a->value[COUNT], "small after big");
    close_pg(pg);
    free(a);
    free(big);
}

START_TEST(big_queries_are_sent_whole) {
    /* DATABASE_URL is TCP with a password; the others when the test
     * cluster offers them. */
    const char *urls[] = {"DATABASE_URL", "SPARK_TEST_URL_SOCKET", "SPARK_TEST_URL_TLS"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        const char *url = getenv(urls[i]);
        if (url && *url) send_big_queries(url);
    }
}
END_TEST

/* The port of the test cluster, from DATABASE_URL. */
static const char *cluster_port(void) {
    static char port[16];
    PQconninfoOption *opts = PQconninfoParse(it_admin_url(), NULL);
    ck_assert_ptr_nonnull(opts);
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "port") == 0 && o->val) snprintf(port, sizeof port, "%s", o->val);
    PQconninfoFree(opts);
    ck_assert_msg(port[0], "DATABASE_URL names no port");
    return port;
}

/* Connects, and checks who we are and whether the session is encrypted. */
static void connect_and_ask_tls(const char *conninfo, const char *tls) {
    answers *a = calloc(1, sizeof *a);
    spark_pg *pg = open_pg_at(conninfo, 1, a);
    query(pg, a, "SELECT current_user");
    query(pg, a, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    wait_answers(a, 2);
    ck_assert_str_eq(a->value[0], "postgres");
    ck_assert_msg(strcmp(a->value[1], tls) == 0, "%s: ssl is %s", conninfo, a->value[1]);
    close_pg(pg);
    free(a);
}

static void connect_and_ask(const char *conninfo) {
    answers *a = calloc(1, sizeof *a);
    spark_pg *pg = open_pg_at(conninfo, 1, a);
    query(pg, a, "SELECT current_user");
    wait_answers(a, 1);
    ck_assert_str_eq(a->value[0], "postgres");
    close_pg(pg);
    free(a);
}

/* What a user may write in DATABASE_URL: names that resolve to IPv4 and
 * IPv6, IPv6 literals, host lists whose first entry fails, and the
 * password in the URL, in PGPASSWORD or in PGPASSFILE. */
START_TEST(every_kind_of_conninfo_connects) {
    const char *password = getenv("SPARK_TEST_PG_PASSWORD");
    if (!password || !*password) return; /* a cluster without passwords */
    const char *port = cluster_port();
    char url[512];
    snprintf(url, sizeof url, "postgresql://postgres:%s@localhost:%s/spark", password, port);
    connect_and_ask(url);
    snprintf(url, sizeof url, "postgresql://postgres:%s@[::1]:%s/spark?sslmode=disable", password,
             port);
    connect_and_ask_tls(url, "false");
    snprintf(url, sizeof url, "postgresql://postgres:%s@127.0.0.1:%s/spark?sslmode=require",
             password, port);
    connect_and_ask_tls(url, "true");
    const char *verify_full = getenv("SPARK_TEST_URL_TLS");
    if (verify_full && *verify_full) connect_and_ask_tls(verify_full, "true");
    snprintf(url, sizeof url,
             "host=nowhere.invalid,localhost port=%s user=postgres password=%s dbname=spark", port,
             password);
    connect_and_ask(url);

    snprintf(url, sizeof url, "host=127.0.0.1 port=%s user=postgres dbname=spark", port);
    setenv("PGPASSWORD", password, 1);
    connect_and_ask(url);
    unsetenv("PGPASSWORD");

    char passfile[] = "/tmp/spark-passfile-XXXXXX";
    int fd = mkstemp(passfile);
    ck_assert_int_ge(fd, 0);
    dprintf(fd, "localhost:%s:spark:postgres:%s\n", port, password);
    close(fd);
    setenv("PGPASSFILE", passfile, 1);
    snprintf(url, sizeof url, "host=localhost port=%s user=postgres dbname=spark", port);
    connect_and_ask(url);
    unsetenv("PGPASSFILE");
    unlink(passfile);
}
END_TEST

/* A server that accepts the TCP connection and never answers: the
 * connect_timeout of one target passes, and the next one is tried. */
START_TEST(a_silent_host_gives_way_to_the_next) {
    const char *password = getenv("SPARK_TEST_PG_PASSWORD");
    if (!password || !*password) return;
    int silent = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(silent, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(silent, 8), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(silent, (struct sockaddr *)&sa, &len), 0);
    char url[512];
    snprintf(url, sizeof url,
             "host=127.0.0.1,localhost port=%d,%s connect_timeout=2 user=postgres password=%s "
             "dbname=spark",
             ntohs(sa.sin_port), cluster_port(), password);
    long long start = it_now_ms();
    connect_and_ask(url);
    long long took = it_now_ms() - start;
    ck_assert_msg(took >= 1900 && took < 8000, "connected after %lld ms", took);
    close(silent);
}
END_TEST

static void count_answer(void *ud, const PGresult *res, const char *error) {
    (void)res;
    ck_assert_ptr_null(error);
    ++*(int *)ud;
}

/* A connection holds a bounded number of queries: past it, the caller is
 * told at once that the database is busy, and what was queued still runs. */
START_TEST(a_full_queue_refuses_with_busy) {
    answers *a = calloc(1, sizeof *a);
    spark_pg *pg = open_pg(1, a);
    int answered = 0, queued = 0, rc;
    while ((rc = spark_pg_query(pg, "SELECT 1", 0, NULL, count_answer, &answered)) == 0)
        queued++;
    ck_assert_int_eq(rc, SPARK_PG_BUSY);
    ck_assert_int_eq(queued, 10000);
    lws_usec_t deadline = lws_now_usecs() + 30 * LWS_US_PER_SEC;
    while (answered < queued && lws_now_usecs() < deadline)
        lws_service(ctx, 0);
    ck_assert_int_eq(answered, queued);
    ck_assert_int_eq(spark_pg_query(pg, "SELECT 1", 0, NULL, count_answer, &answered), 0);
    close_pg(pg);
    free(a);
}
END_TEST

int main(void) {
    Suite *s = suite_create("pg");
    TCase *tc = tcase_create("pg");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, queries_answer_in_order_one_at_a_time);
    tcase_add_test(tc, queries_answer_in_order_pipelined);
    tcase_add_test(tc, pipeline_sends_ahead_of_the_answers);
    tcase_add_test(tc, query_first_goes_ahead_of_the_backlog);
    tcase_add_test(tc, big_queries_are_sent_whole);
    tcase_add_test(tc, every_kind_of_conninfo_connects);
    tcase_add_test(tc, a_silent_host_gives_way_to_the_next);
    tcase_add_test(tc, a_full_queue_refuses_with_busy);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
