/*
 * test_reserved_rooms.c - rooms whose names the runtime gives a meaning
 * to, reached through a channel that names its room after a route
 * parameter, exactly as the example atop spark/channel.h does. "user:<id>"
 * is a user's private room: only that user, or a token with the scope
 * "user:<id>", may join it. "spark:..." rooms are the runtime's own: no
 * channel joins them or posts to them.
 *
 * This program serves its own channel (it_serve), with tokens on.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <spark/channel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIGNING "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VERIFY  "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
#define RECV_MS 5000

/* ---- the channel: channel.h's example, saying whether the join took -------- */

static void on_connect(spark_conn *c) {
    int r = spark_conn_join(c, spark_conn_param(c, "room_id"), spark_conn_since(c));
    spark_conn_send(c, r == 0 ? "{\"joined\":true}" : "{\"joined\":false}", r == 0 ? 15 : 16);
}

static void on_message(spark_conn *c, const char *text, size_t len) {
    (void)len;
    int r = spark_broadcast(c, spark_conn_param(c, "room_id"), text, 0);
    if (r != 0) spark_conn_send(c, "{\"posted\":false}", 16);
}

SPARK_CHANNEL(echo, .route = "/echo/:room_id", .on_connect = on_connect, .on_message = on_message);

/* ---- helpers ---------------------------------------------------------------- */

static it_one one;

static it_ws *open_as(const char *sub, const char *scope, const char *room) {
    char *token = it_mint(SIGNING, sub, (int64_t)time(NULL), 600, scope);
    char target[128];
    /* From the room's start: what was posted before the join took hold is
     * replayed, so no test waits for the join to go live. */
    snprintf(target, sizeof target, "/echo/%s?since=0", room);
    int status = 0;
    it_ws *ws = it_ws_open_bearer(one.port, target, token, NULL, &status);
    free(token);
    ck_assert_msg(ws, "upgrade of %s refused with %d", target, status);
    return ws;
}

static bool joined(it_ws *ws) {
    char *m = it_ws_recv_match(ws, "\"joined\":", RECV_MS);
    ck_assert_msg(m, "no answer to the join");
    bool ok = strstr(m, "\"joined\":true") != NULL;
    free(m);
    return ok;
}

static void start(void) {
    static const char *const env[] = {
        "SPARK_SIGNING_KEY", SIGNING, "SPARK_VERIFY_KEYS", VERIFY, "SPARK_AUTH", "on", NULL};
    it_one_start(&one, "reserved", env);
}

/* ---- tests ------------------------------------------------------------------ */

START_TEST(a_users_private_room_is_theirs_alone) {
    start();
    it_ws *alice = open_as("alice", NULL, "user:alice");
    ck_assert(joined(alice));
    it_ws *mallory = open_as("mallory", NULL, "user:alice");
    ck_assert_msg(!joined(mallory), "mallory joined alice's private room");
    it_ws *support = open_as("support", "user:alice", "user:alice");
    ck_assert(joined(support));

    /* What is sent to alice reaches her and her support, not mallory. */
    PGconn *pg = it_connect(one.db);
    PQclear(it_exec(pg, "SELECT spark.notify_user('alice', '{\"secret\":\"s3\"}')"));
    PQfinish(pg);
    char *m = it_ws_recv_match(alice, "\"secret\":\"s3\"", RECV_MS);
    ck_assert_msg(m, "alice did not get her message");
    free(m);
    m = it_ws_recv_match(support, "\"secret\":\"s3\"", RECV_MS);
    ck_assert_msg(m, "support did not get alice's message");
    free(m);
    m = it_ws_recv_match(mallory, "\"secret\"", 300);
    ck_assert_msg(!m, "mallory got alice's message: %s", m);

    it_ws_close(alice);
    it_ws_close(mallory);
    it_ws_close(support);
    it_one_stop(&one);
}
END_TEST

START_TEST(the_runtimes_own_rooms_take_no_channel) {
    start();
    it_ws *ws = open_as("alice", "user:*", "spark:all");
    ck_assert_msg(!joined(ws), "a channel joined spark:all");
    ck_assert_int_eq(it_ws_send_text(ws, "{\"to\":\"everyone\"}"), 0);
    char *m = it_ws_recv_match(ws, "\"posted\":false", RECV_MS);
    ck_assert_msg(m, "a channel posted to spark:all");
    free(m);
    PGconn *pg = it_connect(one.db);
    char n[32];
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT count(*) FROM spark.messages WHERE room = 'spark:all'",
                                    n, sizeof n),
                     "0");
    PQfinish(pg);
    /* An ordinary room still works. */
    it_ws *other = open_as("bob", NULL, "lobby");
    ck_assert(joined(other));
    it_ws_close(ws);
    it_ws_close(other);
    it_one_stop(&one);
}
END_TEST

int main(int argc, char **argv) {
    if (it_serve(argc, argv)) return spark_main(argc, argv);
    Suite *s = suite_create("reserved_rooms");
    TCase *tc = tcase_create("rooms");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_users_private_room_is_theirs_alone);
    tcase_add_test(tc, the_runtimes_own_rooms_take_no_channel);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
