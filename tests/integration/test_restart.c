/*
 * test_restart.c - PostgreSQL goes away and comes back while two sparkd
 * instances run: /healthz turns 503, then 200 again without restarting
 * sparkd, the listener subscribes again, and a notification sent after the
 * restart reaches both. While it is down, events and chat messages are
 * answered at once, not left hanging. A LISTEN the server refuses is tried
 * again until it is taken. Stops the shared test server, and changes its
 * settings, so it runs alone.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void expect(it_ws *ws, const char *needle, int timeout_ms) {
    char *m = it_ws_recv_match(ws, needle, timeout_ms);
    ck_assert_msg(m, "no message with %s", needle);
    free(m);
}

START_TEST(instances_ride_out_a_postgres_restart) {
    it_pair pair;
    it_pair_start(&pair, "restart");
    const char *db = pair.db;
    int port_a = pair.port[0], port_b = pair.port[1];

    it_ws *live = it_ws_open(port_a, "/spark", NULL, NULL),
          *chat = it_ws_open(port_a, "/chat/r", NULL, NULL);
    ck_assert_ptr_nonnull(live);
    ck_assert_ptr_nonnull(chat);
    ck_assert_int_eq(it_ws_send_text(live, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:r\"}"), 0);
    expect(live, "\"ref\":1,\"ok\":true", 10000);
    expect(chat, "\"type\":\"user_joined\"", 10000);

    ck_assert_int_eq(it_pg_ctl("stop"), 0);
    ck_assert_msg(it_wait_status(port_a, "/healthz", 503, 10000), "a did not notice");
    /* Nothing waits for a database that is not there. */
    long long sent = it_now_ms();
    ck_assert_int_eq(
        it_ws_send_text(live,
                        "{\"t\":\"event\",\"ref\":2,\"cid\":\"counter:r\",\"e\":\"increment\"}"),
        0);
    expect(live, "\"ref\":2,\"ok\":false,\"error\":{\"code\":\"unavailable\"", 3000);
    ck_assert_int_eq(it_ws_send_text(chat, "{\"action\":\"chat\",\"message\":\"lost\"}"), 0);
    expect(chat, "{\"type\":\"error\",\"message\":\"Server error processing message\"}", 3000);
    ck_assert_msg(it_now_ms() - sent < 3000, "answers took %lld ms", it_now_ms() - sent);
    it_ws_close(live);
    it_ws_close(chat);
    ck_assert_msg(it_wait_status(port_b, "/healthz", 503, 10000), "b did not notice");
    static char body[4096];
    ck_assert_int_eq(it_http_get(port_a, "/healthz", body, sizeof body), 503);
    ck_assert_msg(strstr(body, "\"database\":{\"state\":\"") && !strstr(body, "\"listening\""),
                  "%s", body);

    ck_assert_int_eq(it_pg_ctl("start"), 0);
    ck_assert_msg(it_wait_status(port_a, "/healthz", 200, 30000), "a did not recover");
    ck_assert_msg(it_wait_status(port_b, "/healthz", 200, 30000), "b did not recover");
    ck_assert(it_metric(port_a, "spark_db_reconnects_total") >= 2); /* db and bus */
    ck_assert(it_metric(port_b, "spark_db_reconnects_total") >= 2);

    double a0 = it_metric(port_a, "spark_notifications_total");
    double b0 = it_metric(port_b, "spark_notifications_total");
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT pg_notify('spark', 'after-restart')"));
    PQfinish(pg);
    ck_assert_msg(it_wait_metric(port_a, "spark_notifications_total", a0 + 1, 5000), "a deaf");
    ck_assert_msg(it_wait_metric(port_b, "spark_notifications_total", b0 + 1, 5000), "b deaf");

    it_pair_stop(&pair);
}
END_TEST

/* The server refuses LISTEN (every new transaction is read-only): the
 * instance stays 503 and tries again on the same session until it works. */
START_TEST(a_refused_listen_is_retried) {
    it_pair pair;
    it_pair_start(&pair, "relisten");
    PGconn *pg = it_connect(pair.db);
    PQclear(it_exec(pg, "ALTER SYSTEM SET default_transaction_read_only = on"));
    PQclear(it_exec(pg, "SELECT pg_reload_conf()"));
    /* A new bus session: its LISTEN fails. */
    PQclear(it_exec(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "datname = current_database() AND query LIKE 'LISTEN%'"));
    bool refused = it_wait_status(pair.port[0], "/healthz", 503, 10000);
    PQclear(it_exec(pg, "ALTER SYSTEM RESET default_transaction_read_only"));
    PQclear(it_exec(pg, "SELECT pg_reload_conf()"));
    ck_assert_msg(refused, "the instance never noticed");
    ck_assert_msg(it_wait_status(pair.port[0], "/healthz", 200, 10000), "LISTEN never retried");
    ck_assert_msg(it_wait_status(pair.port[1], "/healthz", 200, 10000), "b never recovered");
    double a0 = it_metric(pair.port[0], "spark_notifications_total");
    PQclear(it_exec(pg, "SELECT pg_notify('spark', 'after-retry')"));
    ck_assert_msg(it_wait_metric(pair.port[0], "spark_notifications_total", a0 + 1, 5000), "deaf");
    PQfinish(pg);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    setenv("SPARK_AUTH", "off", 1);
    Suite *s = suite_create("restart");
    TCase *tc = tcase_create("restart");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, instances_ride_out_a_postgres_restart);
    tcase_add_test(tc, a_refused_listen_is_retried);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
