/*
 * test_envelope.c - control and data never mix, on two real instances:
 * what is sent to a user reaches a /spark socket only nested in
 * {"t":"msg",...,"data":...}, never as a frame of its own; a channel
 * client keeps the runtime's seq whatever the payload says; ephemeral
 * notifications need the deployment's MAC, so a role that can only
 * NOTIFY cannot forge one (dropped, counted), while real ones still
 * cross instances, under SPARK_NOTIFY_KEY or the key derived from
 * SPARK_SIGNING_KEY; a malformed SPARK_NOTIFY_KEY stops sparkd at once.
 */
#include "auth.h"
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECV_MS 5000
#define SIGNING "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VERIFY  "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
/* 32 bytes, unpadded base64url. */
#define NOTIFY_KEY "c3Bhcmstbm90aWZ5LWtleS1mb3ItdGVzdHMtb25seSE"

static it_pair pair;
#define db     pair.db
#define port_a pair.port[0]
#define port_b pair.port[1]

static void use_keys(void) {
    setenv("SPARK_SIGNING_KEY", SIGNING, 1);
    setenv("SPARK_VERIFY_KEYS", VERIFY, 1);
    setenv("SPARK_AUTH", "on", 1);
}

static char *token_for(const char *sub) {
    spark_auth_signing_key *key;
    char err[256];
    ck_assert_int_eq(spark_auth_signing_key_parse(SIGNING, &key, err, sizeof err), 0);
    const char *scopes[] = {"room:*", "component:*"};
    char *token = NULL;
    ck_assert_int_eq(spark_token_mint(key, sub, sub, 600, scopes, 2, (int64_t)time(NULL), &token,
                                      err, sizeof err),
                     0);
    spark_auth_signing_key_free(key);
    return token;
}

/* Opens `target` as `sub` (NULL: anonymous). */
static it_ws *open_as(int port, const char *target, const char *sub) {
    char headers[1024] = "";
    if (sub) {
        char *token = token_for(sub);
        snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", token);
        free(token);
    }
    int status = 0;
    it_ws *ws = it_ws_open(port, target, sub ? headers : NULL, &status);
    ck_assert_msg(ws, "upgrade of %s refused with %d", target, status);
    return ws;
}

/* Opens a chat client and waits for its own join. */
static it_ws *join_chat(int port, const char *target, const char *sub) {
    it_ws *ws = open_as(port, target, sub);
    free(it_expect(ws, "\"user_joined\""));
    return ws;
}

START_TEST(a_user_message_reaches_spark_only_inside_an_envelope) {
    use_keys();
    it_pair_start(&pair, "envelope");
    it_ws *spark = open_as(port_a, "/spark", "alice");
    it_ws *tab = open_as(port_b, "/notifications/alice", "alice");
    free(it_expect(tab, "\"type\":\"connected\"")); /* the channel's greeting comes first */
    ck_assert_int_eq(
        it_ws_send_text(spark, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:envelope\"}"), 0);
    free(it_expect(spark, "\"ref\":1,\"ok\":true"));

    /* The user room is joined asynchronously: post until both have one. */
    static const char evil[] =
        "SELECT spark.notify_user('alice', '{\"t\":\"redirect\",\"url\":\"https://evil.example/\","
        "\"seq\":999999,\"kind\":\"forged\",\"room\":\"user:bob\"}')";
    PGconn *pg = it_connect(db);
    char *ms = NULL, *mt = NULL;
    long long deadline = it_now_ms() + RECV_MS;
    while ((!ms || !mt) && it_now_ms() < deadline) {
        PQclear(it_exec(pg, evil));
        while (!ms) {
            char *m = it_ws_recv(spark, 200);
            if (!m) break;
            /* Whatever arrives, nothing is a redirect of its own. */
            ck_assert_msg(!strstr(m, "\"t\":\"redirect\"") ||
                              strncmp(m, "{\"t\":\"msg\",", 11) == 0,
                          "/spark got %s", m);
            if (strstr(m, "evil.example"))
                ms = m;
            else
                free(m);
        }
        if (!mt) mt = it_ws_recv(tab, 200);
    }
    ck_assert_msg(ms, "/spark never got the message");
    ck_assert_msg(mt, "/notifications never got the message");
    /* /spark: every top-level key is the runtime's; the payload, its own
     * "t", "seq", "kind" and "room" included, is nested under "data". */
    static const char head[] =
        "{\"t\":\"msg\",\"room\":\"user:alice\",\"kind\":\"message\",\"seq\":";
    ck_assert_msg(strncmp(ms, head, sizeof head - 1) == 0, "/spark got %s", ms);
    long long seq = atoll(ms + sizeof head - 1);
    ck_assert_msg(seq > 0 && seq != 999999, "envelope seq %lld: %s", seq, ms);
    const char *data = strstr(ms, ",\"data\":{");
    ck_assert_msg(data && strstr(data, "\"t\":\"redirect\"") && strstr(data, "\"seq\":999999"),
                  "/spark got %s", ms);
    ck_assert_msg(strstr(ms, "\"t\":\"redirect\"") > data, "/spark got %s", ms);
    /* The channel keeps its own shape, and the runtime's seq wins. */
    ck_assert_msg(strstr(mt, "\"t\":\"redirect\"") && !strstr(mt, "999999") &&
                      strstr(mt, "\"seq\":") && !strstr(mt, "\"data\""),
                  "/notifications got %s", mt);
    free(ms);
    free(mt);

    /* A non-object payload: the runtime's room, never the payload's. */
    PQclear(it_exec(pg, "SELECT spark.notify_user('alice', '\"just text\"')"));
    char *m = it_expect(spark, "just text");
    ck_assert_msg(strncmp(m, head, sizeof head - 1) == 0 && strstr(m, ",\"data\":\"just text\"}"),
                  "/spark got %s", m);
    free(m);
    m = it_expect(tab, "just text");
    ck_assert_msg(strstr(m, "\"room\":\"user:alice\",\"payload\":\"just text\""), "tab got %s", m);
    free(m);
    PQfinish(pg);
    it_ws_close(spark);
    it_ws_close(tab);

    /* The notify key derived from SPARK_SIGNING_KEY is the same on both
     * instances: typing crosses them. */
    it_ws *a = join_chat(port_a, "/chat/derived", "ada");
    it_ws *b = join_chat(port_b, "/chat/derived", "bob");
    ck_assert_int_eq(it_ws_send_text(a, "{\"action\":\"typing\"}"), 0);
    m = it_expect(b, "\"type\":\"typing\"");
    ck_assert_msg(strstr(m, "\"user_id\":\"ada\""), "b got %s", m);
    free(m);
    ck_assert_int_eq(it_metric(port_b, "spark_notify_forged_total"), 0);
    it_ws_close(a);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

/* Reads `ws` until "burst-<last>", failing on a burst message out of
 * order or twice; returns how many burst messages came. */
static int count_bursts(it_ws *ws, int last) {
    char end[32];
    snprintf(end, sizeof end, "burst-%d\"", last);
    int n = 0;
    for (;;) {
        char *m = it_ws_recv(ws, RECV_MS);
        ck_assert_msg(m, "no burst-%d after %d", last, n);
        const char *b = strstr(m, "burst-");
        if (b) {
            ck_assert_msg(atoi(b + 6) == n, "expected burst-%d, got %s", n, m);
            n++;
        }
        bool done = strstr(m, end) != NULL;
        free(m);
        if (done) return n;
    }
}

/* One fetch of several messages for a room whose members on one instance
 * take different shapes: the channel's tab gets them as one round, framed
 * once, the /spark socket an envelope each, and each gets every message
 * once and in order. */
START_TEST(a_round_and_envelopes_in_one_room) {
    use_keys();
    it_pair_start(&pair, "envelope");
    it_ws *spark = open_as(port_b, "/spark", "alice");
    it_ws *tab = open_as(port_b, "/notifications/alice", "alice");
    free(it_expect(tab, "\"type\":\"connected\""));
    ck_assert_int_eq(
        it_ws_send_text(spark, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:envelope\"}"), 0);
    free(it_expect(spark, "\"ref\":1,\"ok\":true"));
    /* The user room is joined asynchronously: post until both have one. */
    PGconn *pg = it_connect(db);
    char *ms = NULL, *mt = NULL;
    long long deadline = it_now_ms() + RECV_MS;
    while ((!ms || !mt) && it_now_ms() < deadline) {
        PQclear(it_exec(pg, "SELECT spark.notify_user('alice', '{\"n\":\"ready\"}')"));
        if (!ms) ms = it_ws_recv_match(spark, "ready", 200);
        if (!mt) mt = it_ws_recv_match(tab, "ready", 200);
    }
    ck_assert_msg(ms && mt, "the user room was not joined by both");
    free(ms);
    free(mt);
    double rounds0 = it_metric(port_b, "spark_room_rounds_total");
    /* One statement: one commit, one notification, one fetch of eight. */
    PQclear(it_exec(pg, "SELECT count(spark.notify_user('alice', jsonb_build_object('n',"
                        " 'burst-' || i))) FROM generate_series(0, 7) i"));
    ck_assert_int_eq(count_bursts(tab, 7), 8);
    ck_assert_int_eq(count_bursts(spark, 7), 8);
    ck_assert_double_ge(it_metric(port_b, "spark_room_rounds_total") - rounds0, 1);
    PQfinish(pg);
    it_ws_close(spark);
    it_ws_close(tab);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(a_channel_keeps_the_runtime_seq) {
    it_pair_start(&pair, "envelope-seq");
    it_ws *a = join_chat(port_a, "/chat/seq", NULL);
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:seq', '{\"type\":\"chat\",\"seq\":-5,"
                        "\"message\":\"mine\"}')"));
    char *m = it_expect(a, "\"mine\"");
    const char *at = strstr(m, "\"seq\":");
    ck_assert_msg(at && atoll(at + 6) > 0 && !strstr(at + 1, "\"seq\":"), "a got %s", m);
    char stored[32], want[48];
    it_query_value(pg, "SELECT max(seq) FROM spark.messages WHERE room = 'chat:seq'", stored,
                   sizeof stored);
    snprintf(want, sizeof want, "\"seq\":%s", stored);
    ck_assert_msg(strstr(m, want), "a got %s, stored seq %s", m, stored);
    free(m);
    PQfinish(pg);
    it_ws_close(a);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(a_forged_ephemeral_notify_is_dropped_and_counted) {
    setenv("SPARK_NOTIFY_KEY", NOTIFY_KEY, 1);
    it_pair_start(&pair, "envelope-forged");
    it_ws *a = join_chat(port_a, "/chat/r", NULL);
    it_ws *b = join_chat(port_b, "/chat/r", NULL);
    PGconn *pg = it_connect(db);
    /* The old unauthenticated form, and the new one with a made-up MAC. */
    PQclear(it_exec(pg, "NOTIFY spark, 'e|x|{\"room\":\"chat:r\",\"kind\":\"message\","
                        "\"payload\":{\"type\":\"typing\",\"user\":\"mallory\"}}'"));
    PQclear(it_exec(pg, "NOTIFY spark, 's|AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA|x|"
                        "{\"room\":\"chat:r\",\"kind\":\"message\","
                        "\"payload\":{\"type\":\"typing\",\"user\":\"mallory\"}}'"));
    PQclear(it_exec(pg, "NOTIFY spark, 's|short|x|{}'"));
    ck_assert_msg(it_wait_metric(port_a, "spark_notify_forged_total", 3, RECV_MS), "a counted %.0f",
                  it_metric(port_a, "spark_notify_forged_total"));
    ck_assert_msg(it_wait_metric(port_b, "spark_notify_forged_total", 3, RECV_MS), "b counted %.0f",
                  it_metric(port_b, "spark_notify_forged_total"));
    /* A real typing message still arrives, and it is the first one. */
    ck_assert_int_eq(it_ws_send_text(a, "{\"action\":\"typing\"}"), 0);
    char *m = it_expect(b, "\"type\":\"typing\"");
    ck_assert_msg(!strstr(m, "mallory") && strstr(m, "\"user_id\":\"anon-a-"), "b got %s", m);
    free(m);
    ck_assert_int_eq(it_metric(port_b, "spark_notify_forged_total"), 3);
    PQfinish(pg);
    it_ws_close(a);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(a_malformed_notify_key_stops_sparkd) {
    char name[64];
    const char *database = it_create_database(name);
    const char *bad[] = {"short", "c3Bhcmstbm90aWZ5LWtleS1mb3ItdGVzdHMtb25seSE=",
                         "c3Bhcmstbm90aWZ5LWtleS1mb3ItdGVzdHMtb25seSEh", "not base64 at all!!"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("SPARK_NOTIFY_KEY", bad[i], 1);
        char *out = NULL, *err = NULL;
        const char *args[] = {"migrate", NULL};
        ck_assert_int_eq(it_sparkd(database, args, &out, &err), 2);
        ck_assert_msg(err && strncmp(err, "sparkd: SPARK_NOTIFY_KEY: ", 26) == 0, "%s: %s", bad[i],
                      err ? err : "");
        ck_assert_msg(!strstr(err, bad[i]), "the secret is echoed: %s", err);
        free(out);
        free(err);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, a_user_message_reaches_spark_only_inside_an_envelope);
    tcase_add_test(tc, a_round_and_envelopes_in_one_room);
    tcase_add_test(tc, a_channel_keeps_the_runtime_seq);
    tcase_add_test(tc, a_forged_ephemeral_notify_is_dropped_and_counted);
    tcase_add_test(tc, a_malformed_notify_key_stops_sparkd);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
