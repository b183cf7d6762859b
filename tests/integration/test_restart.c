/*
 * test_restart.c - PostgreSQL goes away and comes back while two sparkd
 * instances run: /healthz turns 503, then 200 again without restarting
 * sparkd, the listener subscribes again, and a notification sent after the
 * restart reaches both. Stops the shared test server, so it runs alone.
 */
#include "harness.h"

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

START_TEST(instances_ride_out_a_postgres_restart) {
    it_pair pair;
    it_pair_start(&pair, "restart");
    const char *db = pair.db;
    int port_a = pair.port[0], port_b = pair.port[1];

    ck_assert_int_eq(it_pg_ctl("stop"), 0);
    ck_assert_msg(it_wait_status(port_a, "/healthz", 503, 10000), "a did not notice");
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

int main(void) {
    Suite *s = suite_create("restart");
    TCase *tc = tcase_create("restart");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, instances_ride_out_a_postgres_restart);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
