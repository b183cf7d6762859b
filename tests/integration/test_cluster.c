/*
 * test_cluster.c - two sparkd processes on one PostgreSQL: both serve,
 * both hear a NOTIFY sent from plain SQL, both stop cleanly on SIGTERM; and
 * the HTTP surface (health, metrics, static files, bad paths, bad config).
 */
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOTIFY_MS 5000

static it_pair pair;
#define db     pair.db
#define port_a pair.port[0]
#define port_b pair.port[1]
#define pid_a  pair.pid[0]
#define pid_b  pair.pid[1]

static void start_two(void) { it_pair_start(&pair, "cluster"); }
static void stop_two_cleanly(void) { it_pair_stop(&pair); }

START_TEST(a_notify_from_sql_reaches_both_instances) {
    start_two();
    double a0 = it_metric(port_a, "spark_notifications_total");
    double b0 = it_metric(port_b, "spark_notifications_total");
    ck_assert(a0 >= 0 && b0 >= 0);

    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT pg_notify('spark', 'from-psql')"));
    ck_assert_msg(it_wait_metric(port_a, "spark_notifications_total", a0 + 1, NOTIFY_MS), "a");
    ck_assert_msg(it_wait_metric(port_b, "spark_notifications_total", b0 + 1, NOTIFY_MS), "b");

    /* A plain UPDATE is announced by the schema's trigger. */
    PQclear(it_exec(pg, "INSERT INTO spark.components (id, state) VALUES ('counter:1', '{}')"));
    ck_assert(it_wait_metric(port_a, "spark_notifications_total", a0 + 2, NOTIFY_MS));
    ck_assert(it_wait_metric(port_b, "spark_notifications_total", b0 + 2, NOTIFY_MS));
    /* That a rolled-back write announces nothing is checked payload by
     * payload in test_migrate.c; a counter here could not tell. */
    PQfinish(pg);

    stop_two_cleanly();
}
END_TEST

START_TEST(health_metrics_and_static_files) {
    start_two();
    static char body[65536];
    ck_assert_int_eq(it_http_get(port_a, "/healthz", body, sizeof body), 200);
    ck_assert_msg(strstr(body, "\"database\":{\"state\":\"up\"") &&
                      strstr(body, "\"listener\":{\"state\":\"listening\"") &&
                      strstr(body, "\"instance\":\"a\""),
                  "%s", body);
    ck_assert_int_eq(it_http_get(port_b, "/metrics", body, sizeof body), 200);
    const char *expected[] = {"spark_ws_connections{instance=\"b\"}",
                              "spark_ws_messages_in_total",
                              "spark_ws_messages_out_total",
                              "spark_db_queries_total",
                              "spark_notifications_total",
                              "spark_db_reconnects_total",
                              "spark_database_up{instance=\"b\"} 1",
                              "spark_listener_up{instance=\"b\"} 1",
                              "# TYPE"};
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
        ck_assert_msg(strstr(body, expected[i]), "missing %s", expected[i]);

    ck_assert_int_eq(it_http_get(port_a, "/", body, sizeof body), 200);
    ck_assert_msg(strstr(body, "<html") || strstr(body, "<!doctype"), "%s", body);
    ck_assert_int_eq(it_http_get(port_a, "/no-such-file.css", body, sizeof body), 404);
    ck_assert_int_ne(it_http_get(port_a, "/../CMakeLists.txt", body, sizeof body), 200);
    ck_assert_int_ne(it_http_get(port_a, "/%2e%2e/CMakeLists.txt", body, sizeof body), 200);
    ck_assert_ptr_null(strstr(body, "cmake_minimum_required"));

    /* An upgrade to /spark is switched, unless it names one of the
     * internal protocols (the PostgreSQL sockets, the control wake-ups). */
    const char *subprotocols[] = {"", "Sec-WebSocket-Protocol: spark-pg\r\n",
                                  "Sec-WebSocket-Protocol: spark-control\r\n"};
    for (size_t i = 0; i < sizeof subprotocols / sizeof *subprotocols; i++) {
        char upgrade[512];
        snprintf(upgrade, sizeof upgrade,
                 "GET /spark HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s\r\n",
                 subprotocols[i]);
        int status = it_http_request(port_a, upgrade, body, sizeof body);
        if (i == 0)
            ck_assert_int_eq(status, 101);
        else
            ck_assert_int_ne(status, 101);
    }
    ck_assert_int_eq(it_http_get(port_a, "/healthz", NULL, 0), 200);

    stop_two_cleanly();
}
END_TEST

START_TEST(sigterm_stops_promptly_and_cleanly) {
    start_two();
    long long t0 = it_now_ms();
    stop_two_cleanly();
    /* Bounded: the shutdown timeout here is 5 s, and nothing is pending. */
    ck_assert_int_lt(it_now_ms() - t0, 8000);
    ck_assert_int_eq(it_http_get(port_a, "/healthz", NULL, 0), -1);
}
END_TEST

START_TEST(bad_configuration_exits_2_naming_the_variable) {
    char *out, *err;
    const char *args[] = {"serve", "--port", "http", NULL};
    ck_assert_int_eq(it_sparkd("dbname=x", args, &out, &err), 2);
    ck_assert_msg(strncmp(err, "sparkd: --port: ", 16) == 0 &&
                      strchr(err, '\n') == err + strlen(err) - 1,
                  "%s", err);
    free(out), free(err);
    const char *args2[] = {"frobnicate", NULL};
    ck_assert_int_eq(it_sparkd("dbname=x", args2, &out, &err), 2);
    free(out), free(err);
    const char *args3[] = {"--version", NULL};
    ck_assert_int_eq(it_sparkd(NULL, args3, &out, &err), 0);
    ck_assert_msg(strncmp(out, "sparkd ", 7) == 0, "%s", out);
    free(out), free(err);
}
END_TEST

START_TEST(a_taken_port_is_a_clear_failure) {
    start_two();
    char *out, *err, port[16];
    snprintf(port, sizeof port, "%d", port_a);
    const char *args[] = {"serve", "--port", port, "--host", "127.0.0.1", NULL};
    ck_assert_int_eq(it_sparkd(db, args, &out, &err), 1);
    ck_assert_msg(strstr(err, "start.failed"), "%s", err);
    free(out), free(err);
    stop_two_cleanly();
}
END_TEST

static Suite *cluster_suite(void) {
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_notify_from_sql_reaches_both_instances);
    tcase_add_test(tc, health_metrics_and_static_files);
    tcase_add_test(tc, sigterm_stops_promptly_and_cleanly);
    tcase_add_test(tc, bad_configuration_exits_2_naming_the_variable);
    tcase_add_test(tc, a_taken_port_is_a_clear_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return it_run_suite(cluster_suite()); }
