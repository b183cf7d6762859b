/*
 * test_faults.c - a database that cannot freeze an instance. A psql session
 * holds a table lock or a room's advisory lock: /healthz turns 503 and says
 * why, waiting events are answered instead of hanging, a chat message that
 * cannot be stored reaches its sender as the seed's error, and a write whose
 * connection dies under it is reported as of unknown outcome.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One instance whose database statements time out after `timeout_s`. */
static void start_one(it_one *o, const char *timeout_s) {
    it_one_start(o, "faults", (const char *const[]){"SPARK_DB_TIMEOUT", timeout_s, NULL});
}

static void expect(it_ws *ws, const char *needle, int timeout_ms) {
    char *m = it_ws_recv_match(ws, needle, timeout_ms);
    ck_assert_msg(m, "no message with %s", needle);
    free(m);
}

static it_ws *joined_counter(int port, const char *cid) {
    it_ws *ws = it_ws_open(port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    char frame[256];
    snprintf(frame, sizeof frame, "{\"t\":\"join\",\"ref\":1,\"cid\":\"%s\"}", cid);
    it_send(ws, frame);
    expect(ws, "\"ref\":1,\"ok\":true", 10000);
    snprintf(frame, sizeof frame, "{\"t\":\"event\",\"ref\":2,\"cid\":\"%s\",\"e\":\"increment\"}",
             cid);
    it_send(ws, frame);
    expect(ws, "\"ref\":2,\"ok\":true", 10000);
    return ws;
}

/* The pid of the instance's backend that runs `like`, waiting on a lock. */
static int wait_for_blocked_backend(PGconn *pg, const char *like) {
    char sql[512], value[32];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE datname = "
             "current_database() AND wait_event_type = 'Lock' AND query LIKE '%s'",
             like);
    long long deadline = it_now_ms() + 10000;
    while (it_now_ms() < deadline) {
        int pid = atoi(it_query_value(pg, sql, value, sizeof value));
        if (pid) return pid;
        PGresult *r = PQexec(pg, "SELECT pg_sleep(0.02)"); /* polling the server's own view */
        PQclear(r);
    }
    ck_abort_msg("no backend blocked on %s", like);
    return 0;
}

START_TEST(a_held_table_lock_turns_health_503_and_events_are_answered) {
    it_one o;
    start_one(&o, "2");
    it_ws *ws = joined_counter(o.port, "counter:locked");

    PGconn *psql = it_connect(o.db);
    PQclear(it_exec(psql, "BEGIN"));
    PQclear(it_exec(psql, "LOCK TABLE spark.components IN ACCESS EXCLUSIVE MODE"));

    long long sent = it_now_ms();
    it_send(ws, "{\"t\":\"event\",\"ref\":3,\"cid\":\"counter:locked\",\"e\":\"increment\"}");
    ck_assert_msg(it_wait_status(o.port, "/healthz", 503, 6000), "healthz stayed 200");
    static char body[4096];
    int status = it_http_get(o.port, "/healthz", body, sizeof body);
    if (status == 503) ck_assert_msg(strstr(body, "\"stalled\":{\"reason\":\"query_"), "%s", body);
    /* lock_timeout cancels the write: the event is answered, not left waiting. */
    expect(ws, "\"ref\":3,\"ok\":false,\"error\":{\"code\":\"unavailable\"", 8000);
    long long answered = it_now_ms() - sent;
    ck_assert_msg(answered >= 1500 && answered < 7000, "answered after %lld ms", answered);
    ck_assert(it_metric(o.port, "spark_db_stalls_total") >= 1);

    PQclear(it_exec(psql, "ROLLBACK"));
    ck_assert_msg(it_wait_status(o.port, "/healthz", 200, 8000), "healthz stayed 503");
    it_send(ws, "{\"t\":\"event\",\"ref\":4,\"cid\":\"counter:locked\",\"e\":\"increment\"}");
    expect(ws, "\"ref\":4,\"ok\":true", 10000);
    char v[32];
    ck_assert_str_eq(it_query_value(psql,
                                    "SELECT state->>'count' FROM spark.components WHERE id = "
                                    "'counter:locked'",
                                    v, sizeof v),
                     "2");
    PQfinish(psql);
    it_ws_close(ws);
    it_one_stop(&o);
}
END_TEST

START_TEST(a_chat_message_blocked_by_the_room_lock_reaches_its_sender_as_an_error) {
    it_one o;
    start_one(&o, "2");
    it_ws *ws = it_ws_open(o.port, "/chat/locked", NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    expect(ws, "\"type\":\"user_joined\"", 10000);

    PGconn *psql = it_connect(o.db);
    PQclear(
        it_exec(psql, "SELECT pg_advisory_lock(hashtextextended('spark.room:chat:locked', 0))"));
    it_send(ws, "{\"action\":\"chat\",\"message\":\"held up\"}");
    expect(ws, "{\"type\":\"error\",\"message\":\"Server error processing message\"}", 8000);
    PQclear(it_exec(psql, "SELECT pg_advisory_unlock_all()"));

    it_send(ws, "{\"action\":\"chat\",\"message\":\"let through\"}");
    expect(ws, "let through", 10000);
    char n[32];
    ck_assert_str_eq(it_query_value(psql,
                                    "SELECT count(*) FROM spark.messages WHERE room = "
                                    "'chat:locked' AND payload->>'message' = 'held up'",
                                    n, sizeof n),
                     "0");
    PQfinish(psql);
    it_ws_close(ws);
    it_one_stop(&o);
}
END_TEST

/* The write was sent and its connection died before the answer: it may or
 * may not have committed, and the client is told exactly that. */
START_TEST(a_write_cut_off_in_flight_has_an_unknown_outcome) {
    it_one o;
    start_one(&o, "30");
    it_ws *ws = joined_counter(o.port, "counter:cut");

    PGconn *psql = it_connect(o.db);
    PQclear(it_exec(psql, "BEGIN"));
    PQclear(it_exec(psql, "LOCK TABLE spark.components IN ACCESS EXCLUSIVE MODE"));
    it_send(ws, "{\"t\":\"event\",\"ref\":3,\"cid\":\"counter:cut\",\"e\":\"increment\"}");
    PGconn *watcher = it_connect(o.db);
    int pid = wait_for_blocked_backend(watcher, "%apply_batch%");
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
    PQclear(it_exec(watcher, sql));
    expect(ws, "\"ref\":3,\"ok\":false,\"error\":{\"code\":\"unknown_outcome\"", 10000);
    PQclear(it_exec(psql, "ROLLBACK"));

    ck_assert_msg(it_wait_status(o.port, "/healthz", 200, 15000), "no reconnect");
    it_send(ws, "{\"t\":\"event\",\"ref\":4,\"cid\":\"counter:cut\",\"e\":\"increment\"}");
    expect(ws, "\"ref\":4,\"ok\":true", 10000);
    PQfinish(watcher);
    PQfinish(psql);
    it_ws_close(ws);
    it_one_stop(&o);
}
END_TEST

/* A burst far larger than a socket buffer: each batch carries the whole
 * state after each of its events, so the group write is a query of
 * megabytes. Every event is answered, and every todo is stored. */
START_TEST(a_burst_of_1000_events_on_one_list_is_answered_in_full) {
    it_one o;
    it_one_start(&o, "faults",
                 (const char *const[]){"SPARK_DB_TIMEOUT", "30", "SPARK_RATE_LIMIT", "0", NULL});
    it_ws *ws = it_ws_open(o.port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    it_send(ws, "{\"t\":\"join\",\"ref\":1,\"cid\":\"todo:burst\"}");
    expect(ws, "\"ref\":1,\"ok\":true", 10000);
    enum { N = 1000 };
    char frame[512], text[201];
    memset(text, 'x', 200);
    text[200] = '\0';
    for (int i = 0; i < N; i++) {
        snprintf(frame, sizeof frame,
                 "{\"t\":\"event\",\"ref\":%d,\"cid\":\"todo:burst\",\"e\":\"add_todo\","
                 "\"d\":{\"text\":\"%03d%s\"}}",
                 100 + i, i, text + 3);
        it_send(ws, frame);
    }
    int answered = 0;
    long long deadline = it_now_ms() + 60000;
    while (answered < N && it_now_ms() < deadline) {
        char *m = it_ws_recv_match(ws, "\"t\":\"reply\"", 60000);
        if (!m) break;
        ck_assert_msg(strstr(m, "\"ok\":true"), "refused: %s", m);
        answered++;
        free(m);
    }
    ck_assert_int_eq(answered, N);
    PGconn *pg = it_connect(o.db);
    char n[32];
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT jsonb_array_length(state->'items') FROM "
                                    "spark.components WHERE id = 'todo:burst'",
                                    n, sizeof n),
                     "1000");
    PQfinish(pg);
    it_ws_close(ws);
    it_one_stop(&o);
}
END_TEST

int main(void) {
    /* These suites are about the database, not tokens. */
    setenv("SPARK_AUTH", "off", 1);
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_held_table_lock_turns_health_503_and_events_are_answered);
    tcase_add_test(tc, a_chat_message_blocked_by_the_room_lock_reaches_its_sender_as_an_error);
    tcase_add_test(tc, a_write_cut_off_in_flight_has_an_unknown_outcome);
    tcase_add_test(tc, a_burst_of_1000_events_on_one_list_is_answered_in_full);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
