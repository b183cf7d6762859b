/*
 * test_seed_channels.c - the seed's channels on two sparkd instances over
 * real sockets: the game channel (every action and error, moves checked
 * against the board in PostgreSQL from either instance, a handler that
 * fails), the secure channel (401 before the upgrade, the seed's
 * "Authentication required" and "Access denied" frames before the close),
 * spark.broadcast_all reaching every kind of connection on both
 * instances, the notifications channel's "connected" frame and its count,
 * the chat channel changing the chat component's state (a versioned write
 * every viewer sees) and load_history's pages and bounds.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECV_MS  5000
#define QUIET_MS 300

#define SIGNING "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VERIFY  "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"

static it_pair pair;
#define port_a pair.port[0]
#define port_b pair.port[1]

/* The next message is exactly `frame`. */
static void expect_next(it_ws *ws, const char *frame) {
    char *m = it_ws_recv(ws, RECV_MS);
    ck_assert_msg(m && strcmp(m, frame) == 0, "expected %s, got %s", frame, m ? m : "nothing");
    free(m);
}

/* The next message is the seed's error frame with `message`. */
static void expect_error(it_ws *ws, const char *message) {
    char *m = it_ws_recv(ws, RECV_MS);
    char want[512];
    snprintf(want, sizeof want, "{\"type\":\"error\",\"message\":\"%s\"}", message);
    ck_assert_msg(m && strcmp(m, want) == 0, "expected %s, got %s", want, m ? m : "nothing");
    free(m);
}

/* Nothing arrives for a while (what an exclusion must look like). */
static void expect_silence(it_ws *ws) {
    char *m = it_ws_recv(ws, QUIET_MS);
    ck_assert_msg(!m, "unexpected %s", m);
}

static const char *value(PGconn *pg, const char *sql) {
    static char out[4096];
    return it_query_value(pg, sql, out, sizeof out);
}

/* ---- the game channel ------------------------------------------------------ */

static void move(it_ws *ws, int position) {
    char frame[64];
    snprintf(frame, sizeof frame, "{\"action\":\"move\",\"position\":%d}", position);
    it_send(ws, frame);
}

/* `mover` plays `position`; `other` sees it; the mover does not. */
static void play(it_ws *mover, it_ws *other, int position) {
    char needle[64];
    move(mover, position);
    snprintf(needle, sizeof needle, "\"position\":%d", position);
    char *m = it_expect(other, "\"type\":\"player_move\"");
    ck_assert_msg(strstr(m, needle), "expected %s in %s", needle, m);
    free(m);
}

START_TEST(game_actions_and_errors_across_instances) {
    it_pair_start(&pair, "seed-game");
    PGconn *pg = it_connect(pair.db);
    it_ws *x = it_ws_open_ok(port_a, "/game/g1", NULL);
    it_ws *o = it_ws_open_ok(port_b, "/game/g1", NULL);

    /* join: the first takes X, the second O; both hear each. */
    it_send(x, "{\"action\":\"join\"}");
    char *m = it_expect(x, "\"type\":\"player_joined\"");
    ck_assert_msg(strstr(m, "\"mark\":\"x\"") && strstr(m, "\"game_id\":\"g1\""), "%s", m);
    free(m);
    it_expect_free(o, "\"mark\":\"x\"");
    it_send(o, "{\"action\":\"join\"}");
    it_expect_free(o, "\"mark\":\"o\"");
    it_expect_free(x, "\"mark\":\"o\"");

    /* ping: the sender alone gets pong. */
    it_send(x, "{\"action\":\"ping\"}");
    expect_next(x, "{\"type\":\"pong\"}");
    expect_silence(o);

    /* A move reaches the others, not the mover. */
    play(x, o, 4);
    expect_silence(x);

    /* Invalid moves, judged on the board in PostgreSQL: out of turn (from
     * the other instance), an occupied square, off the board, no number. */
    move(x, 0);
    expect_error(x, "Invalid move");
    move(o, 4);
    expect_error(o, "Invalid move");
    move(o, 9);
    expect_error(o, "Invalid move");
    it_send(o, "{\"action\":\"move\",\"position\":\"middle\"}");
    expect_error(o, "Invalid move");
    it_send(o, "{\"action\":\"move\"}");
    expect_error(o, "Invalid move");
    expect_silence(x);

    /* X wins down the middle column: 4, 1, 7 for X; 0, 2 for O. */
    play(o, x, 0);
    play(x, o, 1);
    play(o, x, 2);
    play(x, o, 7);
    ck_assert_str_eq(value(pg, "SELECT state->>'board' || ' ' || (state->>'winner')"
                               " FROM spark.components WHERE id = 'game:g1'"),
                     "oxo-x--x- x");
    /* Each move is a version with its history row and actor. */
    ck_assert_str_eq(value(pg, "SELECT count(*) FROM spark.events WHERE component_id = 'game:g1'"
                               " AND event = 'move' AND actor LIKE 'anon-%'"),
                     "5");
    /* The page /game/g1 shows the board, rendered on the server. */
    static char page[65536];
    ck_assert_int_eq(it_http_get(port_b, "/game/g1", page, sizeof page), 200);
    ck_assert_msg(strstr(page, "X wins") && strstr(page, "<span class=\"cell\">O</span>"), "%s",
                  page);
    move(o, 8); /* the game is over */
    expect_error(o, "Invalid move");

    /* chat: to everyone, the sender included; a message is required. */
    it_send(o, "{\"action\":\"chat\",\"message\":\"gg\"}");
    m = it_expect(x, "\"type\":\"chat\"");
    ck_assert_msg(strstr(m, "\"message\":\"gg\"") && strstr(m, "\"timestamp\":\""), "%s", m);
    free(m);
    it_expect_free(o, "\"message\":\"gg\"");
    it_send(o, "{\"action\":\"chat\"}");
    expect_error(o, "Message is required");
    it_send(o, "{\"action\":\"chat\",\"message\":\"\"}");
    expect_error(o, "Message is required");

    /* Unknown actions and bad JSON. */
    it_send(x, "{\"action\":\"fly\"}");
    expect_error(x, "Unknown action: fly");
    it_send(x, "{\"position\":3}");
    expect_error(x, "Unknown action: (none)");
    it_send(x, "{not json");
    expect_error(x, "Invalid JSON format");
    it_send(x, "[1,2]");
    expect_error(x, "Invalid JSON format");

    /* leave frees the seat: a newcomer on the other instance takes it. */
    it_send(x, "{\"action\":\"leave\"}");
    it_expect_free(o, "\"type\":\"player_left\"");
    it_expect_free(x, "\"type\":\"player_left\"");
    ck_assert_str_eq(value(pg, "SELECT state->>'x' FROM spark.components WHERE id = 'game:g1'"),
                     "");
    it_ws *z = it_ws_open_ok(port_b, "/game/g1", NULL);
    it_send(z, "{\"action\":\"join\"}");
    it_expect_free(z, "\"mark\":\"x\"");
    /* A third player watches. */
    it_send(x, "{\"action\":\"join\"}");
    it_expect_free(x, "\"mark\":\"spectator\"");

    PQfinish(pg);
    it_ws_close(x);
    it_ws_close(o);
    it_ws_close(z);
    it_pair_stop(&pair);
}
END_TEST

/* Two joins racing on two instances: the stored state decides, so they
 * get two different seats (a write made on a stale state conflicts and
 * runs again on the fresh one). */
START_TEST(racing_joins_get_different_seats) {
    it_pair_start(&pair, "seed-race");
    for (int round = 0; round < 5; round++) {
        char target[32];
        snprintf(target, sizeof target, "/game/race%d", round);
        it_ws *p = it_ws_open_ok(port_a, target, NULL), *q = it_ws_open_ok(port_b, target, NULL);
        /* Both are in the room once each has heard its own chat. */
        it_ws *both[] = {p, q};
        for (int k = 0; k < 2; k++) {
            it_send(both[k], "{\"action\":\"chat\",\"message\":\"here\"}");
            it_expect_free(both[k], "\"message\":\"here\"");
        }
        it_send(p, "{\"action\":\"join\"}");
        it_send(q, "{\"action\":\"join\"}");
        /* p hears both joins; the one from instance a's player is p's. */
        char *first = it_expect(p, "\"type\":\"player_joined\"");
        char *second = it_expect(p, "\"type\":\"player_joined\"");
        bool p_first = strstr(first, "\"player\":\"anon-a-") != NULL;
        const char *mp = p_first ? first : second, *mq = p_first ? second : first;
        bool x_p = strstr(mp, "\"mark\":\"x\"") != NULL, o_p = strstr(mp, "\"mark\":\"o\"") != NULL;
        bool x_q = strstr(mq, "\"mark\":\"x\"") != NULL, o_q = strstr(mq, "\"mark\":\"o\"") != NULL;
        ck_assert_msg((x_p && o_q) || (o_p && x_q), "p: %s q: %s", mp, mq);
        free(first);
        free(second);
        it_ws_close(p);
        it_ws_close(q);
    }
    it_pair_stop(&pair);
}
END_TEST

/* A handler whose write fails (the database refuses it) answers the seed's
 * "Server error processing message", and the connection stays usable. */
START_TEST(a_failing_handler_is_a_server_error) {
    it_pair_start(&pair, "seed-fail");
    PGconn *pg = it_connect(pair.db);
    PQclear(it_exec(pg, "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS"
                        " $$BEGIN RAISE EXCEPTION 'refused by the test'; END$$;"
                        "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON spark.components"
                        " FOR EACH ROW WHEN (NEW.id = 'game:broken')"
                        " EXECUTE FUNCTION public.refuse()"));
    it_ws *ws = it_ws_open_ok(port_a, "/game/broken", NULL);
    it_send(ws, "{\"action\":\"join\"}");
    expect_error(ws, "Server error processing message");
    it_send(ws, "{\"action\":\"ping\"}");
    expect_next(ws, "{\"type\":\"pong\"}");
    /* The same for a chat topic the chat component cannot store. */
    PQclear(it_exec(pg, "CREATE TRIGGER refuse_chat BEFORE INSERT OR UPDATE ON spark.components"
                        " FOR EACH ROW WHEN (NEW.id = 'chat:broken')"
                        " EXECUTE FUNCTION public.refuse()"));
    it_ws *chat = it_ws_open_ok(port_b, "/chat/broken", NULL);
    it_expect_free(chat, "\"type\":\"user_joined\"");
    it_send(chat, "{\"action\":\"topic\",\"topic\":\"x\"}");
    it_expect_free(chat, "Server error processing message");
    PQfinish(pg);
    it_ws_close(ws);
    it_ws_close(chat);
    it_pair_stop(&pair);
}
END_TEST

/* ---- the secure channel -------------------------------------------------------- */

static char *mint(const char *sub, const char *scope) {
    return it_mint(SIGNING, sub, (int64_t)time(NULL), 600, scope);
}

START_TEST(secure_channel_with_tokens) {
    setenv("SPARK_SIGNING_KEY", SIGNING, 1);
    setenv("SPARK_VERIFY_KEYS", VERIFY, 1);
    setenv("SPARK_AUTH", "on", 1);
    it_pair_start(&pair, "seed-secure");
    /* No token, and a client that reads statuses: 401 before the upgrade. */
    int status = 0;
    ck_assert_ptr_null(it_ws_open_bearer(port_a, "/secure/ops", NULL, NULL, &status));
    ck_assert_int_eq(status, 401);
    ck_assert_ptr_null(it_ws_open_bearer(port_a, "/secure/ops", "garbage", NULL, &status));
    ck_assert_int_eq(status, 401);
    /* A browser cannot read a status: the seed's frame, then 4401. */
    char origin[128];
    snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d\r\n", port_a);
    it_ws *ws = it_ws_open_bearer(port_a, "/secure/ops", NULL, origin, &status);
    ck_assert_msg(ws, "browser upgrade refused: %d", status);
    expect_error(ws, "Authentication required");
    ck_assert_int_eq(it_ws_wait_close(ws, RECV_MS), 4401);
    it_ws_drop(ws);
    /* A token without the channel's scope: "Access denied", then 4403. */
    char *kitchen = mint("bob", "secure:kitchen");
    ws = it_ws_open_bearer(port_b, "/secure/ops", kitchen, NULL, &status);
    ck_assert_msg(ws, "upgrade refused: %d", status);
    expect_error(ws, "Access denied");
    ck_assert_int_eq(it_ws_wait_close(ws, RECV_MS), 4403);
    it_ws_drop(ws);
    /* With it (or secure:*), members on both instances talk. */
    char *ops = mint("alice", "secure:ops"), *all = mint("carol", "secure:*");
    it_ws *a = it_ws_open_bearer(port_a, "/secure/ops", ops, NULL, &status);
    it_ws *c = it_ws_open_bearer(port_b, "/secure/ops", all, NULL, &status);
    ck_assert(a && c);
    it_send(c, "{\"action\":\"chat\"}");
    expect_error(c, "Message is required");
    /* c is in the room once it hears itself. */
    it_send(c, "{\"action\":\"chat\",\"message\":\"ready\"}");
    it_expect_free(c, "\"message\":\"ready\"");
    it_send(a, "{\"action\":\"chat\",\"message\":\"deploy at 5\"}");
    char *m = it_expect(c, "\"type\":\"chat\"");
    ck_assert_msg(strstr(m, "\"user\":\"alice\"") && strstr(m, "deploy at 5"), "%s", m);
    free(m);
    it_send(a, "nope");
    it_expect_free(a, "Invalid JSON format");
    it_send(a, "{\"action\":\"x\"}");
    it_expect_free(a, "Unknown action: x");
    /* Sending to everyone needs the scope notifications:all. */
    ws = it_ws_open_bearer(port_a, "/notifications/bob", kitchen, NULL, &status);
    it_expect_free(ws, "\"type\":\"connected\"");
    it_send(ws, "{\"action\":\"broadcast_all\",\"message\":\"hi\"}");
    expect_error(ws, "Access denied");
    it_ws_close(ws);
    /* The kitchen token opens its own channel. */
    ws = it_ws_open_bearer(port_a, "/secure/kitchen", kitchen, NULL, &status);
    it_send(ws, "{\"action\":\"chat\",\"message\":\"hi\"}");
    it_expect_free(ws, "\"message\":\"hi\"");
    it_ws_close(ws);
    it_ws_close(a);
    it_ws_close(c);
    free(kitchen), free(ops), free(all);
    it_pair_stop(&pair);
    unsetenv("SPARK_SIGNING_KEY");
    unsetenv("SPARK_VERIFY_KEYS");
    unsetenv("SPARK_AUTH");
}
END_TEST

/* Without tokens (SPARK_AUTH=off) everyone is anonymous: the secure channel
 * itself says "Authentication required" and closes. */
START_TEST(secure_channel_refuses_anonymous) {
    it_one one;
    it_one_start(&one, "seed-anon", NULL);
    it_ws *ws = it_ws_open_ok(one.port, "/secure/ops", NULL);
    expect_error(ws, "Authentication required");
    ck_assert_int_eq(it_ws_wait_close(ws, RECV_MS), 4401);
    ck_assert_str_eq(it_ws_close_reason(ws), "Authentication required");
    it_ws_drop(ws);
    it_one_stop(&one);
}
END_TEST

/* ---- broadcast_all and counts --------------------------------------------------- */

START_TEST(broadcast_all_from_sql_reaches_every_connection) {
    it_pair_start(&pair, "seed-all");
    int ports[2] = {port_a, port_b};
    it_ws *chat[2], *note[2], *game[2], *live[2];
    for (int i = 0; i < 2; i++) {
        chat[i] = it_ws_open_ok(ports[i], "/chat/all", NULL);
        it_expect_free(chat[i], "\"type\":\"user_joined\"");
        note[i] = it_ws_open_ok(ports[i], "/notifications/u1", NULL);
        it_expect_free(note[i], "\"type\":\"connected\"");
        game[i] = it_ws_open_ok(ports[i], "/game/all", NULL);
        live[i] = it_ws_open_ok(ports[i], "/spark", NULL);
    }
    /* The game and /spark sockets are served once they answer. */
    for (int i = 0; i < 2; i++) {
        it_send(game[i], "{\"action\":\"ping\"}");
        expect_next(game[i], "{\"type\":\"pong\"}");
        it_send(live[i], "{\"t\":\"leave\",\"ref\":1,\"cid\":\"counter:x\"}");
        it_expect_free(live[i], "\"ref\":1");
    }
    PGconn *pg = it_connect(pair.db);
    /* A payload shaped like a control frame stays data. */
    const char *seq =
        value(pg, "SELECT spark.broadcast_all('{\"type\":\"announcement\",\"t\":\"redirect\","
                  "\"url\":\"https://evil.example/\",\"seq\":1}')");
    char want_seq[64];
    snprintf(want_seq, sizeof want_seq, "\"seq\":%s", seq);
    for (int i = 0; i < 2; i++) {
        it_ws *plain[] = {chat[i], note[i], game[i]};
        for (int k = 0; k < 3; k++) {
            char *m = it_expect(plain[k], "\"announcement\"");
            ck_assert_msg(strstr(m, want_seq), "instance %d client %d: %s", i, k, m);
            free(m);
        }
        char *m = it_expect(live[i], "\"announcement\"");
        static const char head[] = "{\"t\":\"msg\",\"room\":\"spark:all\",\"kind\":\"message\",";
        ck_assert_msg(strncmp(m, head, sizeof head - 1) == 0 && strstr(m, want_seq) &&
                          strstr(m, "\"data\":{\"t\":\"redirect\",\"seq\":1,"),
                      "instance %d /spark: %s", i, m);
        free(m);
    }
    /* From C (spark_broadcast_all), through the notifications channel. */
    it_send(note[1], "{\"action\":\"broadcast_all\",\"message\":\"from C\"}");
    for (int i = 0; i < 2; i++) {
        it_ws *every[] = {chat[i], note[i], game[i], live[i]};
        for (int k = 0; k < 4; k++) {
            char *m = it_expect(every[k], "\"from C\"");
            ck_assert_msg(strstr(m, "\"type\":\"notification\"") && strstr(m, "\"seq\":"),
                          "instance %d client %d: %s", i, k, m);
            free(m);
        }
    }
    it_send(note[0], "{\"action\":\"broadcast_all\"}");
    expect_error(note[0], "Message is required");
    it_send(note[0], "{\"action\":\"chat\",\"message\":\"x\"}");
    expect_error(note[0], "This channel only sends");
    /* Rolled back, it reaches no one. */
    PQclear(it_exec(pg, "BEGIN; SELECT spark.broadcast_all('{\"type\":\"never\"}'); ROLLBACK"));
    PQclear(it_exec(pg, "SELECT spark.broadcast_all('{\"type\":\"after\"}')"));
    for (int i = 0; i < 2; i++) {
        char *m = it_expect(chat[i], "\"type\":\"");
        while (strstr(m, "presence_") || strstr(m, "user_joined")) {
            free(m);
            m = it_expect(chat[i], "\"type\":\"");
        }
        ck_assert_msg(strstr(m, "\"type\":\"after\""), "%s", m);
        free(m);
    }
    PQfinish(pg);
    for (int i = 0; i < 2; i++) {
        it_ws_close(chat[i]);
        it_ws_close(note[i]);
        it_ws_close(game[i]);
        it_ws_close(live[i]);
    }
    it_pair_stop(&pair);
}
END_TEST

/* The counts of a "connected" frame for `user`: this instance's sockets
 * of the notifications channel, and of the user's room. */
static void expect_counts(it_ws *ws, const char *user, long long all, long long mine) {
    char *m = it_expect(ws, "\"type\":\"connected\"");
    char want[256];
    snprintf(want, sizeof want,
             "\"message\":\"Connected to notifications for user %s\",\"timestamp\":\"", user);
    ck_assert_msg(strstr(m, want), "%s", m);
    snprintf(want, sizeof want, "\"connections\":%lld,\"user_connections\":%lld}", all, mine);
    ck_assert_msg(strstr(m, want), "expected %s in %s", want, m);
    free(m);
}

/* The counts are this instance's, kept as sockets come and go. */
START_TEST(connected_frame_counts_this_instances_connections) {
    it_pair_start(&pair, "seed-count");
    it_ws *a1 = it_ws_open_ok(port_a, "/notifications/u7", NULL);
    expect_counts(a1, "u7", 1, 1);
    it_ws *a2 = it_ws_open_ok(port_a, "/notifications/u7", NULL);
    expect_counts(a2, "u7", 2, 2);
    it_ws *other = it_ws_open_ok(port_a, "/notifications/u8", NULL);
    expect_counts(other, "u8", 3, 1);
    /* Other channels' connections do not count, nor another instance's. */
    it_ws *chat = it_ws_open_ok(port_a, "/chat/count", NULL);
    it_expect_free(chat, "\"type\":\"user_joined\"");
    it_ws *b1 = it_ws_open_ok(port_b, "/notifications/u7", NULL);
    expect_counts(b1, "u7", 1, 1);
    it_ws_close(a1);
    /* a1 is gone once a newcomer is counted without it: ask until then. */
    long long deadline = it_now_ms() + RECV_MS;
    char *m = NULL;
    while (it_now_ms() < deadline) {
        it_ws *a3 = it_ws_open_ok(port_a, "/notifications/u7", NULL);
        m = it_expect(a3, "\"type\":\"connected\"");
        it_ws_close(a3);
        if (strstr(m, "\"connections\":3,\"user_connections\":2}")) break;
        free(m);
        m = NULL;
    }
    ck_assert_msg(m, "a1 is still counted");
    free(m);
    it_ws_close(a2);
    it_ws_close(other);
    it_ws_close(b1);
    it_ws_close(chat);
    it_pair_stop(&pair);
}
END_TEST

/* ---- channel -> component ----------------------------------------------------------- */

START_TEST(the_chat_channel_changes_the_chat_component) {
    it_pair_start(&pair, "seed-topic");
    /* A viewer of the component on instance b. */
    it_ws *live = it_ws_open_ok(port_b, "/spark", NULL);
    it_send(live, "{\"t\":\"join\",\"ref\":1,\"cid\":\"chat:topics\"}");
    char *render = it_expect(live, "\"t\":\"render\"");
    ck_assert_msg(!strstr(render, "Topic:"), "%s", render);
    free(render);
    it_expect_free(live, "\"ref\":1,\"ok\":true");
    /* The channel on instance a sets the topic. */
    it_ws *ch = it_ws_open_ok(port_a, "/chat/topics", NULL);
    it_expect_free(ch, "\"type\":\"user_joined\"");
    it_send(ch, "{\"action\":\"topic\",\"topic\":\"Release day\"}");
    char *m = it_expect(ch, "\"type\":\"topic\"");
    ck_assert_msg(strstr(m, "\"topic\":\"Release day\""), "%s", m);
    free(m);
    char *patch = it_expect(live, "Topic: Release day");
    ck_assert_msg(strstr(patch, "\"t\":\"patch\""), "%s", patch);
    free(patch);
    /* It is a version with a history row, like any event. */
    PGconn *pg = it_connect(pair.db);
    ck_assert_str_eq(value(pg, "SELECT version || ' ' || event || ' ' || (data->>'topic') || ' ' ||"
                               " (state->>'topic') FROM spark.history('chat:topics')"),
                     "1 set_topic Release day Release day");
    ck_assert_str_eq(value(pg, "SELECT actor LIKE 'anon-a-%' FROM spark.events"
                               " WHERE component_id = 'chat:topics'"),
                     "t");
    PQfinish(pg);
    /* What the component refuses is told; nothing changes. */
    char big[400];
    snprintf(big, sizeof big, "{\"action\":\"topic\",\"topic\":\"%0250d\"}", 0);
    it_send(ch, big);
    expect_error(ch, "A topic is at most 200 characters");
    it_send(ch, "{\"action\":\"topic\"}");
    expect_error(ch, "Topic is required");
    /* A new viewer on instance a renders the stored topic. */
    it_ws *live_a = it_ws_open_ok(port_a, "/spark", NULL);
    it_send(live_a, "{\"t\":\"join\",\"ref\":1,\"cid\":\"chat:topics\"}");
    it_expect_free(live_a, "Topic: Release day");
    it_ws_close(live_a);
    it_ws_close(live);
    it_ws_close(ch);
    it_pair_stop(&pair);
}
END_TEST

/* ---- load_history ---------------------------------------------------------------------- */

/* The seqs of a history frame's messages, in order, as "s1,s2,.."; and
 * whether more remain. */
static void page_of(const char *m, char *seqs, size_t cap, bool *more) {
    seqs[0] = '\0';
    static const char head[] = "{\"type\":\"history\",\"room\":\"chat:hist\",\"messages\":[";
    ck_assert_msg(strncmp(m, head, sizeof head - 1) == 0, "%s", m);
    for (const char *p = strstr(m, "\"seq\":"); p; p = strstr(p + 1, "\"seq\":")) {
        size_t n = strlen(seqs);
        snprintf(seqs + n, cap - n, "%s%lld", n ? "," : "", atoll(p + 6));
    }
    ck_assert_msg(strstr(m, "\"more\":true") || strstr(m, "\"more\":false"), "%s", m);
    *more = strstr(m, "\"more\":true") != NULL;
}

static char *history(it_ws *ws, const char *request) {
    it_send(ws, request);
    return it_expect(ws, "\"type\":\"history\"");
}

/* The seqs of the room's shown messages, oldest first. */
static long long shown[8];
#define NEWEST (-1LL)

/* Asks for `limit` before `before` (NEWEST: none) and expects the
 * messages of shown[] with seqs from `from` to `to`, in order, and `more`. */
static void expect_page(it_ws *ws, long long before, int limit, long long from, long long to,
                        bool more_expected) {
    char req[128], seqs[2048], want[512] = "";
    bool more;
    if (before == NEWEST)
        snprintf(req, sizeof req, "{\"action\":\"load_history\",\"limit\":%d}", limit);
    else
        snprintf(req, sizeof req, "{\"action\":\"load_history\",\"before\":%lld,\"limit\":%d}",
                 before, limit);
    for (int i = 0; i < 8; i++)
        if (shown[i] >= from && shown[i] <= to) {
            size_t n = strlen(want);
            snprintf(want + n, sizeof want - n, "%s%lld", n ? "," : "", shown[i]);
        }
    char *m = history(ws, req);
    page_of(m, seqs, sizeof seqs, &more);
    ck_assert_msg(strcmp(seqs, want) == 0 && more == more_expected, "%s: %s", req, m);
    free(m);
}

START_TEST(load_history_pages_and_bounds) {
    it_pair_start(&pair, "seed-history");
    PGconn *pg = it_connect(pair.db);
    /* Seven messages, and one of another kind that is never shown. */
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:hist', jsonb_build_object('type', 'chat',"
                        " 'message', 'm' || i)) FROM generate_series(1, 7) i"));
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:hist', '{\"type\":\"audit\"}', 'audit')"));
    it_ws *ws = it_ws_open_ok(port_b, "/chat/hist", NULL);
    it_expect_free(ws, "\"type\":\"user_joined\"");
    /* The room's shown messages: the seven and ws's user_joined. */
    char all[512];
    it_query_value(pg,
                   "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM spark.messages"
                   " WHERE room = 'chat:hist' AND kind = 'message'",
                   all, sizeof all);
    int n = 0;
    for (const char *p = all; *p && n < 8; p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
        shown[n++] = atoll(p);
    ck_assert_int_eq(n, 8);

    char seqs[2048];
    bool more;
    /* The newest page by default: all of them, nothing older. */
    char *m = history(ws, "{\"action\":\"load_history\"}");
    page_of(m, seqs, sizeof seqs, &more);
    ck_assert_str_eq(seqs, all);
    ck_assert(!more);
    ck_assert_msg(strstr(m, "{\"type\":\"chat\",\"message\":\"m1\",\"seq\":") &&
                      !strstr(m, "audit"),
                  "%s", m);
    free(m);
    /* Pages of three, newest first, each before the last page's first. */
    expect_page(ws, NEWEST, 3, shown[5], shown[7], true);
    expect_page(ws, shown[5], 3, shown[2], shown[4], true);
    expect_page(ws, shown[2], 3, shown[0], shown[1], false);
    expect_page(ws, shown[0], 3, 0, -1, false);
    /* The bound: 100 is the most a page holds. */
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:hist', jsonb_build_object('type', 'chat',"
                        " 'message', 'n' || i)) FROM generate_series(1, 120) i"));
    m = history(ws, "{\"action\":\"load_history\",\"limit\":100}");
    page_of(m, seqs, sizeof seqs, &more);
    ck_assert(more);
    int count = 0;
    for (const char *p = strstr(m, "\"seq\":"); p; p = strstr(p + 1, "\"seq\":"))
        count++;
    ck_assert_int_eq(count, 100);
    free(m);
    const char *bad[] = {"{\"action\":\"load_history\",\"limit\":0}",
                         "{\"action\":\"load_history\",\"limit\":101}",
                         "{\"action\":\"load_history\",\"limit\":\"ten\"}",
                         "{\"action\":\"load_history\",\"before\":0}",
                         "{\"action\":\"load_history\",\"before\":-5}",
                         "{\"action\":\"load_history\",\"before\":\"x\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        it_send(ws, bad[i]);
        char *e = it_ws_recv_match(ws, "\"type\":\"error\"", RECV_MS); /* past live ones */
        ck_assert_msg(e && strcmp(e, "{\"type\":\"error\",\"message\":\"Invalid history request: "
                                     "before is a seq, limit 1 to 100\"}") == 0,
                      "%s: %s", bad[i], e ? e : "nothing");
        free(e);
    }
    PQfinish(pg);
    it_ws_close(ws);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    Suite *s = suite_create("seed_channels");
    TCase *tc = tcase_create("seed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, game_actions_and_errors_across_instances);
    tcase_add_test(tc, racing_joins_get_different_seats);
    tcase_add_test(tc, a_failing_handler_is_a_server_error);
    tcase_add_test(tc, secure_channel_with_tokens);
    tcase_add_test(tc, secure_channel_refuses_anonymous);
    tcase_add_test(tc, broadcast_all_from_sql_reaches_every_connection);
    tcase_add_test(tc, connected_frame_counts_this_instances_connections);
    tcase_add_test(tc, the_chat_channel_changes_the_chat_component);
    tcase_add_test(tc, load_history_pages_and_bounds);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
