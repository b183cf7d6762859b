/*
 * harness.c - process, database and HTTP helpers for the integration
 * suites (see harness.h).
 */
#include "harness.h"
#include "wsclient.h"

#include "auth.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char it_sparkd_path[] = SPARKD_PATH;
static const char *server_path = it_sparkd_path; /* what it_start_sparkd runs */

bool it_serve(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "serve") == 0) return true;
    server_path = "/proc/self/exe";
    return false;
}
const char it_source_dir[] = SOURCE_DIR;

long long it_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int it_run_suite(Suite *suite) {
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

const char *it_admin_url(void) {
    const char *which = getenv("SPARK_TEST_DB"), *var = "DATABASE_URL";
    if (which && *which && strcmp(which, "tcp") != 0) {
        if (strcmp(which, "tls") == 0)
            var = "SPARK_TEST_URL_TLS";
        else if (strcmp(which, "socket") == 0)
            var = "SPARK_TEST_URL_SOCKET";
        else
            ck_abort_msg("SPARK_TEST_DB=%s: expected tcp, tls or socket", which);
    }
    const char *url = getenv(var);
    ck_assert_msg(url && *url, "%s must name the test PostgreSQL (SPARK_TEST_DB=%s)", var,
                  which ? which : "");
    return url;
}

/* Asserts that the backends of `sql`'s count query ("how many, how many
 * over the unix socket, how many with TLS") went the way SPARK_TEST_DB
 * asks: TCP (TLS or not), TLS, or the unix socket. */
static void assert_transport(PGconn *pg, const char *who, const char *sql) {
    const char *which = getenv("SPARK_TEST_DB");
    bool want_socket = which && strcmp(which, "socket") == 0;
    bool want_tls = which && strcmp(which, "tls") == 0;
    PGresult *r = it_exec(pg, sql);
    int n = atoi(PQgetvalue(r, 0, 0)), unix_n = atoi(PQgetvalue(r, 0, 1)),
        tls_n = atoi(PQgetvalue(r, 0, 2));
    PQclear(r);
    ck_assert_msg(n > 0, "%s: no connection to PostgreSQL", who);
    ck_assert_msg(unix_n == (want_socket ? n : 0) && (!want_tls || tls_n == n),
                  "%s: %d connections, %d over the unix socket, %d with TLS; SPARK_TEST_DB=%s", who,
                  n, unix_n, tls_n, which ? which : "");
}

PGconn *it_connect(const char *conninfo) {
    PGconn *pg = PQconnectdb(conninfo);
    ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "connect: %s", PQerrorMessage(pg));
    PQclear(PQexec(pg, "SET client_min_messages = warning"));
    return pg;
}

PGresult *it_exec(PGconn *pg, const char *sql) {
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(pg));
    return r;
}

const char *it_query_value(PGconn *pg, const char *sql, char *out, size_t cap) {
    PGresult *r = it_exec(pg, sql);
    ck_assert_msg(PQntuples(r) > 0, "%s: no rows", sql);
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

/* Rebuilds the admin conninfo with another dbname, as key='value' pairs. */
static void conninfo_for(const char *dbname, char *out, size_t cap) {
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(it_admin_url(), &why);
    ck_assert_msg(opts != NULL, "DATABASE_URL: %s", why ? why : "?");
    size_t at = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;
        if (!v) continue;
        at += (size_t)snprintf(out + at, cap - at, "%s='", o->keyword);
        for (const char *p = v; *p && at + 3 < cap; p++) {
            if (*p == '\'' || *p == '\\') out[at++] = '\\';
            out[at++] = *p;
        }
        at += (size_t)snprintf(out + at, cap - at, "' ");
    }
    PQconninfoFree(opts);
}

const char *it_create_database(char name[64]) {
    static char conninfo[2048];
    unsigned r;
    int fd = open("/dev/urandom", O_RDONLY);
    ck_assert_int_eq(read(fd, &r, sizeof r), sizeof r);
    close(fd);
    snprintf(name, 64, "spark_test_%d_%08x", (int)getpid(), r);
    PGconn *admin = it_connect(it_admin_url());
    assert_transport(admin, "the harness",
                     "SELECT 1, (client_addr IS NULL)::int, ssl::int FROM pg_stat_ssl "
                     "JOIN pg_stat_activity USING (pid) WHERE pid = pg_backend_pid()");
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PQclear(it_exec(admin, sql));
    PQfinish(admin);
    conninfo_for(name, conninfo, sizeof conninfo);
    return conninfo;
}

const char *it_create_migrated_database(char name[64]) {
    const char *db = it_create_database(name);
    const char *args[] = {"migrate", NULL};
    char *out = NULL, *err = NULL;
    int rc = it_sparkd(db, args, &out, &err);
    ck_assert_msg(rc == 0, "migrate failed (%d): %s", rc, err ? err : "");
    free(out);
    free(err);
    return db;
}

static char *read_all(int fd) {
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            char *grown = realloc(buf, cap *= 2);
            ck_assert_ptr_nonnull(grown);
            buf = grown;
        }
    }
    buf[len] = '\0';
    return buf;
}

int it_run(const char *const argv[], const char *const env[], char **out, char **err) {
    int po[2], pe[2];
    ck_assert_int_eq(pipe(po), 0);
    ck_assert_int_eq(pipe(pe), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
        for (const char *const *e = env; e && *e; e++)
            putenv((char *)*e);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    /* Both pipes are small; reading one to EOF first could deadlock on a
     * chatty child, so read stderr in a second child-free pass via poll. */
    char *o = NULL, *e = NULL;
    size_t olen = 0, elen = 0;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0 && poll(fds, 2, -1) > 0) {
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            char **dst = i == 0 ? &o : &e;
            size_t *dlen = i == 0 ? &olen : &elen;
            char *grown = realloc(*dst, *dlen + (size_t)n + 1);
            ck_assert_ptr_nonnull(grown);
            *dst = grown;
            memcpy(*dst + *dlen, buf, (size_t)n);
            *dlen += (size_t)n;
            (*dst)[*dlen] = '\0';
        }
    }
    int status;
    waitpid(pid, &status, 0);
    if (out)
        *out = o ? o : strdup("");
    else
        free(o);
    if (err)
        *err = e ? e : strdup("");
    else
        free(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int it_sparkd(const char *db, const char *const args[], char **out, char **err) {
    const char *argv[16] = {it_sparkd_path};
    int n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    static char dbenv[2100];
    snprintf(dbenv, sizeof dbenv, "DATABASE_URL=%s", db ? db : "");
    static char migrations[1100], sql[1100], web[1100];
    snprintf(migrations, sizeof migrations, "SPARK_MIGRATIONS_DIR=%s/migrations", it_source_dir);
    snprintf(sql, sizeof sql, "SPARK_SQL_DIR=%s/sql", it_source_dir);
    snprintf(web, sizeof web, "SPARK_WEB_ROOT=%s/web", it_source_dir);
    const char *env[6] = {migrations, sql, web};
    int e = 3;
    if (db) env[e++] = dbenv;
    /* As it_start_sparkd: keyless and SPARK_AUTH unset means anonymous. */
    if (!getenv("SPARK_AUTH") && !getenv("SPARK_VERIFY_KEYS")) env[e++] = "SPARK_AUTH=off";
    env[e] = NULL;
    if (!db) unsetenv("DATABASE_URL");
    return it_run(argv, env, out, err);
}

pid_t it_start_sparkd(const char *db, int port, const char *instance, const char *log_path) {
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 2), dup2(fd, 1);
        char port_s[16], web[1100];
        snprintf(port_s, sizeof port_s, "%d", port);
        /* The source's web root, unless the suite set one of its own. */
        if (getenv("SPARK_WEB_ROOT"))
            snprintf(web, sizeof web, "%s", getenv("SPARK_WEB_ROOT"));
        else
            snprintf(web, sizeof web, "%s/web", it_source_dir);
        setenv("DATABASE_URL", db, 1);
        setenv("SPARK_LOG_LEVEL", "debug", 1);
        /* A suite without keys runs anonymous; one that sets SPARK_AUTH
         * (even empty) or keys is left as it asked. */
        if (!getenv("SPARK_AUTH") && !getenv("SPARK_VERIFY_KEYS")) setenv("SPARK_AUTH", "off", 1);
        /* SPARK_TEST_VALGRIND=DIR runs each instance under valgrind's
         * memcheck, its report in DIR/sparkd-PID.log (read when it exits). */
        const char *vg_dir = getenv("SPARK_TEST_VALGRIND");
        if (vg_dir && *vg_dir) {
            char vg_log[1200];
            snprintf(vg_log, sizeof vg_log, "--log-file=%s/sparkd-%%p.log", vg_dir);
            execlp("valgrind", "valgrind", "--leak-check=full",
                   "--show-leak-kinds=definite,indirect", vg_log, server_path, "serve", "--port",
                   port_s, "--host", "127.0.0.1", "--instance", instance, "--web-root", web,
                   "--shutdown-timeout", "5", (char *)NULL);
            _exit(127);
        }
        execl(server_path, server_path, "serve", "--port", port_s, "--host", "127.0.0.1",
              "--instance", instance, "--web-root", web, "--shutdown-timeout", "5", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The instance waits as the suite asked: on its epoll set, or in the
 * kernel's poll() under SPARK_EPOLL=0 (the loop as lws runs it alone). */
static void assert_loop(int port, const char *log) {
    const char *epoll = getenv("SPARK_EPOLL");
    double want = epoll && strcmp(epoll, "0") == 0 ? 0 : 1;
    ck_assert_msg(it_metric(port, "spark_loop_epoll") == want,
                  "spark_loop_epoll is not %g (see %s)", want, log);
}

void it_pair_start(it_pair *pair, const char *tag) {
    char name[64];
    pair->db = it_create_migrated_database(name);
    for (int i = 0; i < 2; i++) {
        char instance[2] = {(char)('a' + i), '\0'};
        pair->port[i] = it_free_port();
        snprintf(pair->log[i], sizeof pair->log[i], "/tmp/sparkd-%s-%d-%s.log", tag, (int)getpid(),
                 instance);
        pair->pid[i] = it_start_sparkd(pair->db, pair->port[i], instance, pair->log[i]);
    }
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(it_wait_status(pair->port[i], "/healthz", 200, 15000),
                      "instance %c never healthy (see %s)", 'a' + i, pair->log[i]);
        assert_loop(pair->port[i], pair->log[i]);
    }
    /* The instances reach PostgreSQL as the suite asked, as the harness does. */
    PGconn *pg = it_connect(pair->db);
    assert_transport(pg, "the instances",
                     "SELECT count(*), count(*) FILTER (WHERE client_addr IS NULL), "
                     "count(*) FILTER (WHERE ssl) FROM pg_stat_activity JOIN pg_stat_ssl "
                     "USING (pid) WHERE datname = current_database() AND pid <> pg_backend_pid() "
                     "AND backend_type = 'client backend'");
    PQfinish(pg);
}

void it_pair_stop(it_pair *pair) {
    for (int i = 0; i < 2; i++) {
        if (pair->pid[i])
            ck_assert_msg(it_stop_sparkd(pair->pid[i], 8000) == 0,
                          "instance %c did not stop cleanly (see %s)", 'a' + i, pair->log[i]);
        pair->pid[i] = 0;
    }
    unlink(pair->log[0]);
    unlink(pair->log[1]);
}

void it_one_start(it_one *one, const char *tag, const char *const env[]) {
    char name[64];
    one->db = it_create_migrated_database(name);
    for (size_t i = 0; env && env[i]; i += 2)
        setenv(env[i], env[i + 1], 1);
    one->port = it_free_port();
    snprintf(one->log, sizeof one->log, "/tmp/sparkd-%s-%d.log", tag, (int)getpid());
    one->pid = it_start_sparkd(one->db, one->port, "one", one->log);
    for (size_t i = 0; env && env[i]; i += 2)
        unsetenv(env[i]);
    ck_assert_msg(it_wait_status(one->port, "/healthz", 200, 15000), "never healthy (see %s)",
                  one->log);
}

void it_one_stop(it_one *one) {
    ck_assert_msg(it_stop_sparkd(one->pid, 8000) == 0, "did not stop cleanly (see %s)", one->log);
    unlink(one->log);
}

int it_stop_sparkd(pid_t pid, int timeout_ms) {
    /* Await the child's exit as an event: SIGCHLD, blocked, then taken with
     * a deadline by sigtimedwait. */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    kill(pid, SIGTERM);
    long long deadline = it_now_ms() + timeout_ms;
    int status, rc = -2;
    while (rc == -2) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        long long left = deadline - it_now_ms();
        struct timespec ts = {left / 1000, (long)(left % 1000) * 1000000L};
        if (left <= 0 || (sigtimedwait(&chld, NULL, &ts) < 0 && errno == EAGAIN)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            rc = -1;
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int it_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static int http_exchange(int port, const char *request, char *body, size_t cap, bool whole);

int it_http_request(int port, const char *request, char *body, size_t cap) {
    return http_exchange(port, request, body, cap, false);
}

int it_http_exchange(int port, const char *request, char *response, size_t cap) {
    return http_exchange(port, request, response, cap, true);
}

static int http_exchange(int port, const char *request, char *body, size_t cap, bool whole) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (body && cap) body[0] = '\0';
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    ssize_t n = (ssize_t)strlen(request);
    if (write(fd, request, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char *resp = read_all(fd);
    close(fd);
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) status = -1;
    const char *b = whole ? resp : strstr(resp, "\r\n\r\n");
    if (body && cap && b) snprintf(body, cap, "%s", whole ? b : b + 4);
    free(resp);
    return status;
}

int it_http_get(int port, const char *path, char *body, size_t cap) {
    char req[1200];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             path, port);
    return it_http_request(port, req, body, cap);
}

bool it_wait_status(int port, const char *path, int status, int timeout_ms) {
    long long deadline = it_now_ms() + timeout_ms;
    do {
        if (it_http_get(port, path, NULL, 0) == status) return true;
        pause_ms(20);
    } while (it_now_ms() < deadline);
    return false;
}

double it_metric(int port, const char *name) {
    static char body[65536];
    if (it_http_get(port, "/metrics", body, sizeof body) != 200) return -1;
    size_t n = strlen(name);
    for (const char *line = body; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, name, n) == 0 && (line[n] == '{' || line[n] == ' ')) {
            const char *v = strchr(line, ' ');
            return v ? strtod(v + 1, NULL) : -1;
        }
    }
    return -1;
}

bool it_wait_metric(int port, const char *name, double at_least, int timeout_ms) {
    long long deadline = it_now_ms() + timeout_ms;
    do {
        if (it_metric(port, name) >= at_least) return true;
        pause_ms(20);
    } while (it_now_ms() < deadline);
    return false;
}

int it_pg_ctl(const char *action) {
    const char *ctl = getenv("SPARK_TEST_PG_CTL"), *dir = getenv("SPARK_TEST_PGDIR");
    ck_assert_msg(ctl && dir, "SPARK_TEST_PG_CTL and SPARK_TEST_PGDIR must be set");
    const char *argv[] = {"/bin/bash", ctl, action, dir, NULL};
    char *out = NULL, *err = NULL;
    int rc = it_run(argv, NULL, &out, &err);
    if (rc != 0) fprintf(stderr, "pg %s failed: %s%s\n", action, out, err);
    free(out);
    free(err);
    return rc;
}

char *it_mint(const char *signing_key, const char *sub, int64_t iat, int64_t ttl,
              const char *scope) {
    spark_auth_signing_key *key;
    char err[256];
    ck_assert_int_eq(spark_auth_signing_key_parse(signing_key, &key, err, sizeof err), 0);
    const char *scopes[] = {scope};
    char *token = NULL;
    ck_assert_msg(spark_token_mint(key, sub, sub, ttl, scopes, scope ? 1 : 0, iat, &token, err,
                                   sizeof err) == 0,
                  "%s", err);
    spark_auth_signing_key_free(key);
    return token;
}

void it_send(it_ws *ws, const char *text) { ck_assert_int_eq(it_ws_send_text(ws, text), 0); }

char *it_expect(it_ws *ws, const char *needle) {
    char *m = it_ws_recv_match(ws, needle, IT_EXPECT_MS);
    ck_assert_msg(m, "never received %s", needle);
    return m;
}

void it_expect_free(it_ws *ws, const char *needle) { free(it_expect(ws, needle)); }

it_ws *it_ws_open_ok(int port, const char *target, const char *headers) {
    int status = 0;
    it_ws *ws = it_ws_open(port, target, headers, &status);
    ck_assert_msg(ws, "upgrade of %s refused with %d", target, status);
    return ws;
}
