/*
 * test_channels.c - WebSocket channels across two sparkd instances on one
 * PostgreSQL: routing, the chat channel and its errors, delivery order and
 * exactly-once across instances, resume, presence (batched, counted in a
 * crowded room, and after a kill -9), notifications from SQL, every limit,
 * and the 1001 goodbye on shutdown.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECV_MS 5000

static it_pair pair;
#define db     pair.db
#define port_a pair.port[0]
#define port_b pair.port[1]
#define pid_a  pair.pid[0]
#define pid_b  pair.pid[1]

static void start_two(void) { it_pair_start(&pair, "channels"); }
static void stop_two(void) { it_pair_stop(&pair); }

/* Opens a chat client and waits for the message that has `needle`. */
static it_ws *open_until(int port, const char *target, const char *needle) {
    it_ws *ws = it_ws_open_ok(port, target, NULL);
    char *m = it_ws_recv_match(ws, needle, RECV_MS);
    ck_assert_msg(m, "no %s on %s", needle, target);
    free(m);
    return ws;
}

/* A chat client in the room: its own join announced. */
static it_ws *join_chat(int port, const char *target) {
    return open_until(port, target, "\"user_joined\"");
}

/* The same in a room of any size: its presence state, which comes after
 * its join went live (the instance asks in that order), where a crowded
 * room announces no join. */
static it_ws *enter_chat(int port, const char *target) {
    return open_until(port, target, "\"type\":\"presence_state\"");
}

static long long seq_of(const char *msg) {
    const char *p = msg ? strstr(msg, "\"seq\":") : NULL;
    return p ? atoll(p + 6) : -1;
}

/* Sends a chat message and waits until `ws` sees it. */
static void chat(it_ws *from, const char *text) {
    char frame[256];
    snprintf(frame, sizeof frame, "{\"action\":\"chat\",\"message\":\"%s\"}", text);
    ck_assert_int_eq(it_ws_send_text(from, frame), 0);
}

START_TEST(unknown_routes_get_404_before_the_upgrade) {
    start_two();
    int status = 0;
    ck_assert_ptr_null(it_ws_open(port_a, "/nope", NULL, &status));
    ck_assert_int_eq(status, 404);
    ck_assert_ptr_null(it_ws_open(port_a, "/chat/", NULL, &status));
    ck_assert_int_eq(status, 404);
    ck_assert_ptr_null(it_ws_open(port_a, "/chat/a/b", NULL, &status));
    ck_assert_int_eq(status, 404);
    ck_assert_ptr_null(it_ws_open(port_a, "/chat/a%2Fb", NULL, &status));
    ck_assert_int_eq(status, 404);
    it_ws *ws = it_ws_open_ok(port_a, "/chat/lobby?x=1", NULL);
    it_ws_close(ws);
    stop_two();
}
END_TEST

START_TEST(messages_cross_instances_once_and_in_order) {
    start_two();
    it_ws *a = join_chat(port_a, "/chat/order");
    it_ws *b = join_chat(port_b, "/chat/order");
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "m%03d", i);
        chat(i % 2 ? b : a, text);
    }
    chat(a, "end");
    /* Each side sees every message exactly once, in ascending sequence.
     * Senders on two instances race, so "end" may overtake some of b's:
     * read until all have arrived, then make sure nothing comes twice. */
    it_ws *clients[] = {a, b};
    for (int k = 0; k < 2; k++) {
        long long last = 0;
        int seen[N + 1] = {0}, distinct = 0;
        while (distinct < N + 1) {
            char *m = it_ws_recv_match(clients[k], "\"type\":\"chat\"", RECV_MS);
            ck_assert_msg(m, "client %d: stream ended after %d messages", k, distinct);
            long long seq = seq_of(m);
            ck_assert_msg(seq > last, "client %d: seq %lld after %lld", k, seq, last);
            last = seq;
            const char *t = strstr(m, "\"message\":\"m");
            int i = t ? atoi(t + 12) : N; /* N stands for "end" */
            if (seen[i]++ == 0) distinct++;
            ck_assert_msg(seen[i] == 1, "client %d got message %d twice", k, i);
            free(m);
        }
        char *extra = it_ws_recv_match(clients[k], "\"type\":\"chat\"", 300);
        ck_assert_msg(!extra, "client %d got an extra message: %s", k, extra);
    }
    it_ws_close(a);
    it_ws_close(b);
    stop_two();
}
END_TEST

/* A message of a kind other than "message" is stored for SQL and replay,
 * and shown to no client: not live, not in a catch-up. */
START_TEST(other_kinds_are_stored_not_shown) {
    start_two();
    it_ws *a = join_chat(port_a, "/chat/kinds");
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "INSERT INTO spark.messages (room, kind, payload) VALUES ('chat:kinds', "
                        "'audit', '{\"type\":\"chat\",\"message\":\"hidden\"}')"));
    chat(a, "shown");
    char *m = it_expect(a, "\"type\":\"chat\"");
    ck_assert_msg(strstr(m, "shown"), "live: got %s", m);
    free(m);
    /* A catch-up from the start: everything up to its resume, none hidden. */
    it_ws *late = it_ws_open_ok(port_b, "/chat/kinds?since=0", NULL);
    bool saw_shown = false;
    while ((m = it_ws_recv(late, RECV_MS)) && !strstr(m, "\"type\":\"resume\"")) {
        ck_assert_msg(!strstr(m, "hidden"), "catch-up: got %s", m);
        saw_shown |= strstr(m, "shown") != NULL;
        free(m);
    }
    ck_assert_msg(m, "no resume");
    free(m);
    ck_assert(saw_shown);
    PQfinish(pg);
    it_ws_close(a);
    it_ws_close(late);
    stop_two();
}
END_TEST

START_TEST(ephemeral_excluding_the_sender) {
    start_two();
    it_ws *a = join_chat(port_a, "/chat/typing");
    it_ws *b = join_chat(port_b, "/chat/typing");
    ck_assert_int_eq(it_ws_send_text(a, "{\"action\":\"typing\"}"), 0);
    free(it_expect(b, "\"type\":\"typing\""));
    chat(b, "after-typing");
    /* a's next chat-or-typing message is the chat: it never saw its own typing. */
    char *m = it_expect(a, "\"type\":\"");
    while (strstr(m, "user_joined") || strstr(m, "presence_")) {
        free(m);
        m = it_expect(a, "\"type\":\"");
    }
    ck_assert_msg(strstr(m, "after-typing"), "a got %s", m);
    free(m);
    /* Ephemeral messages are not stored. */
    PGconn *pg = it_connect(db);
    /* Any role may NOTIFY: malformed ephemeral payloads are ignored, and
     * both instances go on serving. */
    PQclear(it_exec(pg, "SELECT pg_notify('spark', 'e||{\"room\":null,\"payload\":1}'),"
                        " pg_notify('spark', 'e||{\"room\":5,\"payload\":1}'),"
                        " pg_notify('spark', 'e||not json'), pg_notify('spark', 'e|')"));
    chat(a, "after-garbage");
    free(it_expect(b, "after-garbage"));
    ck_assert_int_eq(it_http_get(port_a, "/healthz", NULL, 0), 200);
    ck_assert_int_eq(it_http_get(port_b, "/healthz", NULL, 0), 200);
    char n[32];
    it_query_value(pg, "SELECT count(*) FROM spark.messages WHERE payload->>'type' = 'typing'", n,
                   sizeof n);
    ck_assert_str_eq(n, "0");
    PQfinish(pg);
    it_ws_close(a);
    it_ws_close(b);
    stop_two();
}
END_TEST

/* A chat action whose message is `size` times `c` (malloc'd). */
static char *chat_of(size_t size, char c) {
    char *frame = malloc(size + 64);
    int n = sprintf(frame, "{\"action\":\"chat\",\"message\":\"");
    memset(frame + n, c, size);
    strcpy(frame + n + size, "\"}");
    return frame;
}

START_TEST(large_payloads_cross_instances) {
    start_two();
    it_ws *a = join_chat(port_a, "/chat/big");
    it_ws *b = join_chat(port_b, "/chat/big");
    chat(a, "before-big"); /* both have had all else */
    free(it_expect(a, "before-big"));
    free(it_expect(b, "before-big"));
    /* 32 KB, far over NOTIFY's 8000-byte limit, and over one write: it
     * leaves as fragments of at most 16 KiB, so that lws never keeps a
     * copy of more than that for a socket that is full. */
    enum { BIG = 32000 };
    char *frame = chat_of(BIG, 'x');
    double writes0 = it_metric(port_b, "spark_ws_writes_total");
    ck_assert_int_eq(it_ws_send_text(a, frame), 0);
    for (int k = 0; k < 2; k++) {
        char *m = it_expect(k ? b : a, "\"type\":\"chat\"");
        ck_assert_uint_ge(strlen(m), BIG);
        ck_assert(strstr(m, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""));
        free(m);
    }
    ck_assert_double_ge(it_metric(port_b, "spark_ws_writes_total") - writes0, 2);
    /* and the connection goes on after the fragments */
    chat(a, "after-big");
    free(it_expect(b, "after-big"));
    free(frame);
    it_ws_close(a);
    it_ws_close(b);
    stop_two();
}
END_TEST

/* A message of up to one write (16 KiB) leaves in one send to a client
 * that reads: lws is told it may hand send() that much at once (the
 * protocol's tx_packet_size). By default lws sends 1 KiB of a write and
 * keeps the rest for the next turn of the loop, a write the socket took
 * only part of, which spark_ws_writes_partial_total counts (the client
 * that never reads, below, shows it counting). */
START_TEST(a_write_leaves_in_one_send) {
    start_two();
    it_ws *a = join_chat(port_a, "/chat/onesend");
    it_ws *b = join_chat(port_b, "/chat/onesend");
    chat(a, "before-one-send");
    free(it_expect(a, "before-one-send"));
    free(it_expect(b, "before-one-send"));
    enum { SIZE = 12000 };
    char *frame = chat_of(SIZE, 'y');
    double partial0 = it_metric(port_b, "spark_ws_writes_partial_total");
    double writes0 = it_metric(port_b, "spark_ws_writes_total");
    ck_assert_int_eq(it_ws_send_text(a, frame), 0);
    char *m = it_expect(b, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"");
    ck_assert_uint_ge(strlen(m), SIZE);
    free(m);
    ck_assert_double_ge(it_metric(port_b, "spark_ws_writes_total") - writes0, 1);
    ck_assert_double_eq(it_metric(port_b, "spark_ws_writes_partial_total") - partial0, 0);
    /* The counter does count. A member on a narrow link that reads
     * nothing is sent one 12 KB message at a time, each awaited at a
     * member that reads: its queue is empty each time, so each message is
     * written at once, whole, until its socket cannot take one. 400 of
     * them are more than any socket holds (tcp_wmem's largest, 4 MiB). */
    it_ws *deaf = it_ws_open_narrow(port_b, "/chat/onesend");
    ck_assert_ptr_nonnull(deaf);
    free(it_expect(b, "\"user_joined\"")); /* it is in the room */
    PGconn *pg = it_connect(db);
    char done[64], sql[300];
    int round = 0;
    while (it_metric(port_b, "spark_ws_writes_partial_total") == partial0 && round < 400) {
        snprintf(done, sizeof done, "\"message\":\"round-%d:", round);
        snprintf(sql, sizeof sql,
                 "SELECT spark.broadcast('chat:onesend', jsonb_build_object('type', 'chat',"
                 " 'message', 'round-%d:' || repeat('z', 12000)))",
                 round++);
        PQclear(it_exec(pg, sql));
        free(it_expect(b, done));
    }
    ck_assert_msg(it_metric(port_b, "spark_ws_writes_partial_total") > partial0,
                  "no partial write in %d rounds (slow consumers closed: %.0f)", round,
                  it_metric(port_b, "spark_ws_slow_consumers_total"));
    PQfinish(pg);
    it_ws_drop(deaf);
    free(frame);
    it_ws_close(a);
    it_ws_close(b);
    stop_two();
}
END_TEST

/* A burst (a resume of hundreds of messages of every size) reaches the
 * client whole and in order, though queued messages share socket writes:
 * frame headers of 7- and 16-bit lengths, messages straddling writes. */
START_TEST(a_burst_shares_writes_and_arrives_whole) {
    start_two();
    enum { N = 400 }; /* as in the generate_series below */
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT count(spark.broadcast('chat:burst', jsonb_build_object("
                        "'type', 'chat', 'message', lpad(i::text, 3, '0') || ':' ||"
                        " repeat(chr(97 + i % 26), CASE WHEN i % 50 = 7 THEN 20000"
                        " ELSE i * 7 % 300 + 1 END))))"
                        " FROM generate_series(0, 399) i"));
    PQfinish(pg);
    char *text = malloc(64);
    double messages0 = it_metric(port_b, "spark_ws_messages_out_total");
    double writes0 = it_metric(port_b, "spark_ws_writes_total");
    it_ws *b = it_ws_open_ok(port_b, "/chat/burst?since=0", NULL);
    for (int next = 0; next < N;) {
        char *m = it_ws_recv(b, RECV_MS);
        ck_assert_msg(m, "the burst ended after %d", next);
        if (strstr(m, "\"type\":\"chat\"")) {
            size_t len = next % 50 == 7 ? 20000 : (size_t)(next * 7 % 300) + 1;
            snprintf(text, 64, "\"message\":\"%03d:", next);
            char *body = strstr(m, text);
            ck_assert_msg(body, "expected message %d, got %.80s", next, m);
            body += strlen(text);
            for (size_t k = 0; k < len; k++)
                ck_assert_int_eq(body[k], 'a' + next % 26);
            ck_assert_int_eq(body[len], '"');
            next++;
        }
        free(m);
    }
    free(it_expect(b, "\"type\":\"resume\""));
    double messages = it_metric(port_b, "spark_ws_messages_out_total") - messages0;
    double writes = it_metric(port_b, "spark_ws_writes_total") - writes0;
    ck_assert_msg(messages >= N && writes < messages / 4, "%.0f messages in %.0f writes", messages,
                  writes);
    free(text);
    it_ws_close(b);
    stop_two();
}
END_TEST

/* Reads `ws` until the chat message `last`; returns how many chat messages
 * whose text starts with `prefix` came before it, failing on one out of
 * order (each is "<prefix><index>"). */
static int count_until(it_ws *ws, const char *prefix, const char *last) {
    char want[64], end[64];
    snprintf(end, sizeof end, "\"message\":\"%s\"", last);
    int n = 0;
    for (;;) {
        char *m = it_ws_recv(ws, RECV_MS);
        ck_assert_msg(m, "no %s after %d messages", last, n);
        bool done = strstr(m, end) != NULL;
        snprintf(want, sizeof want, "\"message\":\"%s%d\"", prefix, n);
        if (strstr(m, want)) n++;
        free(m);
        if (done) return n;
    }
}

/* Messages that come faster than a busy room's pace (100 us per member
 * here, so 30 ms for 300) are delivered in rounds: each member gets the
 * messages of a round in one write, exactly once and in order. Without the
 * pace, each message would be fetched and written on its own (about one
 * write per message: measured with the pace set to 0). A round goes to
 * every member as one frame, its messages framed once for the room
 * (spark_room_rounds_total). */
START_TEST(a_busy_room_is_delivered_in_rounds) {
    start_two();
    enum { N = 300, K = 30 };
    it_ws *ws[N];
    for (int i = 0; i < N; i++)
        ws[i] = enter_chat(port_b, "/chat/rounds"); /* live in the room */
    PGconn *pg = it_connect(db);
    /* The messages' spacing is the test's, not the disk's: a commit that
     * waits out a slow flush would space them further than the pace. */
    PQclear(it_exec(pg, "SET synchronous_commit = off"));
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:rounds',"
                        " jsonb_build_object('type', 'chat', 'message', 'settled'))"));
    for (int i = 0; i < N; i++)
        count_until(ws[i], "-", "settled"); /* past every join announcement and diff */
    double messages0 = it_metric(port_b, "spark_ws_messages_out_total");
    double writes0 = it_metric(port_b, "spark_ws_writes_total");
    double rounds0 = it_metric(port_b, "spark_room_rounds_total");
    /* One statement, so one commit and one notification, each, 5 ms
     * apart: further apart than a round takes, closer than the pace. */
    for (int k = 0; k <= K; k++) {
        char text[16], sql[200];
        if (k < K)
            snprintf(text, sizeof text, "r%d", k);
        else
            strcpy(text, "done");
        snprintf(sql, sizeof sql,
                 "SELECT spark.broadcast('chat:rounds', jsonb_build_object("
                 "'type', 'chat', 'message', '%s'))",
                 text);
        PQclear(it_exec(pg, sql));
        usleep(5000);
    }
    PQfinish(pg);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(count_until(ws[i], "r", "done"), K);
    double messages = it_metric(port_b, "spark_ws_messages_out_total") - messages0;
    double writes = it_metric(port_b, "spark_ws_writes_total") - writes0;
    ck_assert_msg(messages >= N * (K + 1) && writes * 2 < messages, "%.0f messages in %.0f writes",
                  messages, writes);
    ck_assert_double_ge(it_metric(port_b, "spark_room_rounds_total") - rounds0, 1);
    for (int i = 0; i < N; i++)
        it_ws_close(ws[i]);
    stop_two();
}
END_TEST

START_TEST(resume_gives_exactly_what_was_missed) {
    start_two();
    it_ws *a = join_chat(port_a, "/chat/resume");
    it_ws *b = join_chat(port_b, "/chat/resume");
    chat(a, "before");
    char *m = it_expect(b, "\"message\":\"before\"");
    long long last = seq_of(m);
    free(m);
    it_ws_drop(b);

    for (int i = 0; i < 50; i++) {
        char text[32];
        snprintf(text, sizeof text, "missed%02d", i);
        chat(a, text);
    }
    free(it_expect(a, "\"message\":\"missed49\""));

    char target[128];
    snprintf(target, sizeof target, "/chat/resume?since=%lld", last);
    b = it_ws_open_ok(port_b, target, NULL);
    /* First the 50, in order, then the resume marker, then live ones. */
    int next = 0;
    for (;;) {
        m = it_ws_recv(b, RECV_MS);
        ck_assert_msg(m, "resume stream ended after %d", next);
        if (strstr(m, "\"type\":\"resume\"")) {
            ck_assert_msg(strstr(m, "\"recovered\":true"), "%s", m);
            free(m);
            break;
        }
        if (strstr(m, "\"type\":\"chat\"")) {
            char want[32];
            snprintf(want, sizeof want, "\"message\":\"missed%02d\"", next);
            ck_assert_msg(strstr(m, want), "expected missed%02d, got %s", next, m);
            next++;
        } else {
            /* Only our own join/leave notices may interleave, never a chat. */
            ck_assert_msg(strstr(m, "user_") || strstr(m, "presence"), "unexpected %s", m);
        }
        free(m);
    }
    ck_assert_int_eq(next, 50);
    chat(a, "live");
    m = it_expect(b, "\"type\":\"chat\"");
    ck_assert_msg(strstr(m, "\"message\":\"live\""), "%s", m);
    free(m);
    it_ws_close(a);
    it_ws_close(b);
    stop_two();
}
END_TEST

START_TEST(resume_past_retention_says_not_recovered) {
    start_two();
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:pruned', '{\"type\":\"chat\"}') "
                        "FROM generate_series(1, 5)"));
    PQclear(it_exec(pg, "SELECT spark.prune_messages(2)"));
    it_ws *b = it_ws_open_ok(port_b, "/chat/pruned?since=1", NULL);
    char *m = it_expect(b, "\"type\":\"resume\"");
    ck_assert_msg(strstr(m, "\"recovered\":false"), "%s", m);
    free(m);
    PQfinish(pg);
    it_ws_close(b);
    stop_two();
}
END_TEST

START_TEST(seed_errors_keep_the_connection_open) {
    start_two();
    it_ws *a = join_chat(port_a, "/chat/errors");
    static const struct {
        const char *send, *error;
    } cases[] = {
        {"not json", "{\"type\":\"error\",\"message\":\"Invalid JSON format\"}"},
        {"[1,2]", "{\"type\":\"error\",\"message\":\"Invalid JSON format\"}"},
        {"{\"action\":\"dance\"}", "{\"type\":\"error\",\"message\":\"Unknown action: dance\"}"},
        {"{\"action\":\"chat\"}", "{\"type\":\"error\",\"message\":\"Message is required\"}"},
        {"{\"action\":\"chat\",\"message\":\"\"}",
         "{\"type\":\"error\",\"message\":\"Message is required\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(it_ws_send_text(a, cases[i].send), 0);
        char *m = it_expect(a, "\"type\":\"error\"");
        ck_assert_str_eq(m, cases[i].error);
        free(m);
    }
    chat(a, "still here");
    free(it_expect(a, "\"message\":\"still here\""));
    it_ws_close(a);
    stop_two();
}
END_TEST

START_TEST(notifications_reach_every_tab_on_every_instance) {
    start_two();
    it_ws *a = it_ws_open_ok(port_a, "/notifications/u42", NULL);
    it_ws *b = it_ws_open_ok(port_b, "/notifications/u42", NULL);
    it_ws *other = it_ws_open_ok(port_b, "/notifications/u7", NULL);
    /* Each is greeted first (the seed's "connected" frame). */
    free(it_expect(a, "\"type\":\"connected\""));
    free(it_expect(b, "\"type\":\"connected\""));
    free(it_expect(other, "\"type\":\"connected\""));
    /* The joins are asynchronous: post until both tabs have one. */
    PGconn *pg = it_connect(db);
    char *ma = NULL, *mb = NULL;
    long long deadline = it_now_ms() + RECV_MS;
    while ((!ma || !mb) && it_now_ms() < deadline) {
        PQclear(it_exec(pg, "SELECT spark.notify_user('u42', '{\"type\":\"ping\"}')"));
        if (!ma) ma = it_ws_recv(a, 200);
        if (!mb) mb = it_ws_recv(b, 200);
    }
    ck_assert_msg(ma && strstr(ma, "\"type\":\"ping\""), "a: %s", ma ? ma : "nothing");
    ck_assert_msg(mb && strstr(mb, "\"type\":\"ping\""), "b: %s", mb ? mb : "nothing");
    free(ma);
    free(mb);
    char *mo = it_ws_recv(other, 300);
    ck_assert_msg(!mo, "another user got %s", mo);
    PQfinish(pg);
    it_ws_close(a);
    it_ws_close(b);
    it_ws_close(other);
    stop_two();
}
END_TEST

/* Joins that arrive together share presence queries; each member still
 * gets one state, read after its own track: the last one's has everyone. */
START_TEST(a_crowd_joining_together_each_gets_a_state) {
    start_two();
    enum { N = 30 };
    it_ws *ws[N];
    for (int i = 0; i < N; i++)
        ws[i] = it_ws_open_ok(port_a, "/chat/crowd", NULL);
    for (int i = 0; i < N; i++) {
        char *m = it_expect(ws[i], "\"type\":\"presence_state\"");
        if (i == N - 1) {
            int users = 0;
            for (const char *p = m; (p = strstr(p, "\"anon-a-")); p++)
                users++;
            /* each user is a key, and its meta's ref names it again */
            ck_assert_msg(users >= N, "the last state has %d users: %s", users, m);
        }
        free(m);
    }
    for (int i = 0; i < N; i++)
        it_ws_close(ws[i]);
    stop_two();
}
END_TEST

/* How many users whose ids start with `prefix` ("\"anon-a-") the text
 * from `p` on holds as keys ("anon-a-N":{...}; a name is followed by no
 * brace). */
static int users_from(const char *p, const char *prefix) {
    int n = 0;
    while (p && (p = strstr(p, prefix))) {
        const char *end = strchr(p + 1, '"');
        if (!end) break;
        n += strncmp(end, "\":{", 3) == 0;
        p = end + 1;
    }
    return n;
}

/* How many users of instance a a presence diff's leaves hold. */
static int leaving_users(const char *m) {
    return users_from(strstr(m, "\"leaves\":"), "\"anon-a-");
}

/* Members who leave together (their sockets dropped at once, so the
 * instance sees the closes in few turns of its loop, untracked together):
 * a member on the other instance is told every one of them, once. */
START_TEST(a_crowd_leaving_together_is_told_each_leave) {
    start_two();
    enum { N = 30 };
    it_ws *ws[N];
    for (int i = 0; i < N; i++)
        ws[i] = enter_chat(port_a, "/chat/exodus");
    it_ws *watcher = enter_chat(port_b, "/chat/exodus"); /* its state has all of them */
    for (int i = 0; i < N; i++)
        it_ws_drop(ws[i]);
    int left = 0, diffs = 0;
    while (left < N) {
        char *m = it_ws_recv_match(watcher, "\"leaves\":{\"anon-a-", RECV_MS);
        ck_assert_msg(m, "only %d of %d leaves told", left, N);
        diffs++;
        left += leaving_users(m);
        free(m);
    }
    ck_assert_int_eq(left, N);
    ck_assert_int_le(diffs, N);
    it_ws_close(watcher);
    stop_two();
}
END_TEST

/* The "user_id" of a frame, into `out`. */
static void user_id_of(const char *m, char out[64]) {
    const char *p = strstr(m, "\"user_id\":\"");
    ck_assert_msg(p, "no user_id in %s", m);
    p += strlen("\"user_id\":\"");
    size_t n = strcspn(p, "\"");
    ck_assert_uint_lt(n, 64);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Reads `ws` up to the frame that has `until`; returns how many frames
 * before it had `type` (a "type" value) for `user`. */
static int typed_before(it_ws *ws, const char *until, const char *type, const char *user) {
    char want_type[64], want_user[96];
    snprintf(want_type, sizeof want_type, "\"type\":\"%s\"", type);
    snprintf(want_user, sizeof want_user, "\"user_id\":\"%s\"", user);
    int n = 0;
    for (;;) {
        char *m = it_ws_recv(ws, RECV_MS);
        ck_assert_msg(m, "never received %s", until);
        bool last = strstr(m, until) != NULL;
        n += !last && strstr(m, want_type) && strstr(m, want_user);
        free(m);
        if (last) return n;
    }
}

/* The "count" of a presence frame, -1 without one. */
static int count_of(const char *m) {
    const char *p = m ? strstr(m, "\"count\":") : NULL;
    return p ? atoi(p + strlen("\"count\":")) : -1;
}

/* How many users a presence frame lists. */
static int listed_users(const char *m) { return users_from(m, "\"anon-"); }

/* With SPARK_CROWDED_ROOM=2, joins and leaves are announced while at most
 * two others are present (on either instance); past that, presence diffs
 * alone tell them, as a count. */
START_TEST(a_crowded_room_tells_joins_and_leaves_by_presence_only) {
    setenv("SPARK_CROWDED_ROOM", "2", 1);
    start_two();
    enum { N = 4 };
    it_ws *ws[N];
    char id[N][64], hello[N][16], left[N][96];
    for (int i = 0; i < N; i++) {
        ws[i] = it_ws_open_ok(i % 2 ? port_b : port_a, "/chat/crowded", NULL);
        /* Its state is read after its track: it is present before the next joins. */
        free(it_expect(ws[i], "\"type\":\"presence_state\""));
        snprintf(hello[i], sizeof hello[i], "hello-%d", i);
        chat(ws[i], hello[i]);
        char *m = it_expect(ws[i], hello[i]);
        user_id_of(m, id[i]);
        free(m);
        snprintf(left[i], sizeof left[i], "\"leaves\":{\"%s\"", id[i]);
    }
    /* ws[0] saw the joins of 1 and 2 announced (0 and 1 others present),
     * not that of 3 (3 others): only its presence diff. */
    for (int i = 1; i < N; i++)
        ck_assert_int_eq(typed_before(ws[0], hello[i], "user_joined", id[i]), i < 3);
    /* Leaving, each is counted with the others still present: 3 and 2
     * leave a crowded room (told by a count, then by the whole state of a
     * room no longer crowded), 1 leaves a room of two. */
    const char *told[] = {NULL, left[1], "\"type\":\"presence_state\"", "\"crowded\":true"};
    for (int i = N - 1; i >= 1; i--) {
        it_ws_close(ws[i]);
        ck_assert_int_eq(typed_before(ws[0], told[i], "user_left", id[i]), i == 1);
    }
    it_ws_close(ws[0]);
    stop_two();
}
END_TEST

/* Past SPARK_CROWDED_ROOM connections (2 here, on either instance) a
 * room's presence is a count: a joiner's state and every member's diffs
 * carry "crowded":true and how many users are present, no list. A leave
 * that takes the room back to 2 sends every member, on both instances,
 * the whole state again. */
START_TEST(a_crowded_room_counts_instead_of_listing) {
    setenv("SPARK_CROWDED_ROOM", "2", 1);
    start_two();
    enum { N = 4 };
    it_ws *ws[N];
    for (int i = 0; i < N; i++) {
        ws[i] = it_ws_open_ok(i % 2 ? port_b : port_a, "/chat/counted", NULL);
        bool crowded = i + 1 > 2;
        char *m = it_expect(ws[i], "\"type\":\"presence_state\"");
        ck_assert_msg(count_of(m) == i + 1, "joiner %d: %s", i, m);
        ck_assert_msg((strstr(m, "\"crowded\":true") != NULL) == crowded, "joiner %d: %s", i, m);
        ck_assert_msg(listed_users(m) == (crowded ? 0 : i + 1), "joiner %d: %s", i, m);
        free(m);
        /* Every member before it, on either instance, is told its join. */
        for (int k = 0; k < i; k++) {
            m = it_expect(ws[k], "\"type\":\"presence_diff\"");
            ck_assert_msg(count_of(m) == i + 1, "member %d of %d: %s", k, i + 1, m);
            ck_assert_msg((strstr(m, "\"crowded\":true") != NULL) == crowded, "member %d: %s", k,
                          m);
            ck_assert_msg(listed_users(m) == !crowded, "member %d of %d: %s", k, i + 1, m);
            free(m);
        }
    }
    /* Data is never control: keys a client adds to its message stay out. */
    it_send(ws[0], "{\"action\":\"chat\",\"message\":\"sneaky\",\"crowded\":false,"
                   "\"count\":99}");
    for (int k = 0; k < N; k++) {
        char *m = it_expect(ws[k], "sneaky");
        ck_assert_msg(!strstr(m, "crowded") && !strstr(m, "count"), "member %d: %s", k, m);
        free(m);
    }
    /* 4 -> 3: still crowded, a count. */
    it_ws_close(ws[3]);
    for (int k = 0; k < 3; k++) {
        char *m = it_expect(ws[k], "\"type\":\"presence_diff\"");
        ck_assert_msg(count_of(m) == 3 && strstr(m, "\"crowded\":true") && !listed_users(m),
                      "member %d: %s", k, m);
        free(m);
    }
    /* 3 -> 2: no longer crowded: the whole state, to every member left. */
    it_ws_close(ws[2]);
    for (int k = 0; k < 2; k++) {
        char *m = it_expect(ws[k], "\"type\":\"presence_state\"");
        ck_assert_msg(count_of(m) == 2 && !strstr(m, "crowded") && listed_users(m) == 2,
                      "member %d: %s", k, m);
        ck_assert_msg(strstr(m, "\"seq\":"), "member %d: not the room's message: %s", k, m);
        free(m);
    }
    /* 2 -> 1: a diff with the leave, as in any small room. */
    it_ws_close(ws[1]);
    char *m = it_expect(ws[0], "\"type\":\"presence_diff\"");
    ck_assert_msg(count_of(m) == 1 && !strstr(m, "crowded") && strstr(m, "\"leaves\":{\"anon-b-"),
                  "%s", m);
    free(m);
    it_ws_close(ws[0]);
    stop_two();
}
END_TEST

START_TEST(presence_leaves_when_an_instance_is_killed) {
    setenv("SPARK_PRESENCE_TIMEOUT", "3", 1);
    start_two();
    it_ws *a = join_chat(port_a, "/chat/presence");
    it_ws *b = join_chat(port_b, "/chat/presence");
    /* a sees b arrive, with b's instance in the meta's ref. */
    char *m = it_expect(a, "\"ref\":\"b/");
    free(m);
    long long killed_at = it_now_ms();
    kill(pid_b, SIGKILL);
    waitpid(pid_b, NULL, 0);
    pid_b = 0;
    m = it_ws_recv_match(a, "\"leaves\":{\"anon-b-", 15000);
    ck_assert_msg(m, "b's user never left");
    long long took = it_now_ms() - killed_at;
    ck_assert_msg(took <= 3000 + 1000 + 2000, "leave took %lld ms", took);
    free(m);
    it_ws_drop(b);
    it_ws_close(a);
    stop_two();
}
END_TEST

START_TEST(oversized_binary_and_rate_limits) {
    setenv("SPARK_MAX_MESSAGE", "4096", 1);
    setenv("SPARK_RATE_LIMIT", "20", 1);
    start_two();
    /* One byte over the limit: 1009. */
    it_ws *a = join_chat(port_a, "/chat/limits");
    char big[4200];
    memset(big, ' ', sizeof big);
    ck_assert_int_eq(it_ws_send(a, IT_WS_TEXT, big, 4097), 0);
    ck_assert_int_eq(it_ws_wait_close(a, RECV_MS), 1009);
    it_ws_drop(a);
    ck_assert_int_ge(it_metric(port_a, "spark_ws_too_large_total"), 1);

    /* Binary frames on a text channel: 1003. */
    a = join_chat(port_a, "/chat/limits");
    ck_assert_int_eq(it_ws_send(a, IT_WS_BINARY, "\x01\x02", 2), 0);
    ck_assert_int_eq(it_ws_wait_close(a, RECV_MS), 1003);
    it_ws_drop(a);

    /* A flood: errors first, then 1008. */
    a = join_chat(port_a, "/chat/limits");
    for (int i = 0; i < 200; i++)
        if (it_ws_send_text(a, "{\"action\":\"nothing\"}")) break;
    free(it_expect(a, "Rate limit exceeded"));
    ck_assert_int_eq(it_ws_wait_close(a, RECV_MS), 1008);
    it_ws_drop(a);
    ck_assert_int_ge(it_metric(port_a, "spark_ws_rate_limited_total"), 1);
    stop_two();
}
END_TEST

START_TEST(connection_limit_refuses_cleanly) {
    setenv("SPARK_MAX_CONNECTIONS", "2", 1);
    start_two();
    it_ws *one = it_ws_open_ok(port_a, "/chat/full", NULL);
    it_ws *two = it_ws_open_ok(port_a, "/chat/full", NULL);
    int status = 0;
    ck_assert_ptr_null(it_ws_open(port_a, "/chat/full", NULL, &status));
    ck_assert_int_eq(status, 503);
    ck_assert_int_ge(it_metric(port_a, "spark_ws_refused_total"), 1);
    it_ws_close(one);
    /* The slot frees once the close is processed. */
    it_ws *three = NULL;
    long long deadline = it_now_ms() + RECV_MS;
    while (!three && it_now_ms() < deadline)
        three = it_ws_open(port_a, "/chat/full", NULL, &status);
    ck_assert_ptr_nonnull(three);
    it_ws_close(two);
    it_ws_close(three);
    stop_two();
}
END_TEST

static long rss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

START_TEST(a_client_that_never_reads_is_cut_off) {
    /* Under AddressSanitizer, freed memory waits in a quarantine that would
     * count as resident: keep it small so RSS still measures the queue. */
    setenv("ASAN_OPTIONS", "quarantine_size_mb=1", 1);
    start_two();
    it_ws *slow = join_chat(port_a, "/chat/flood");
    long before = rss_kb(pid_a);
    /* 100 MB for the room, posted from SQL; the slow client reads nothing. */
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:flood', jsonb_build_object('type', 'chat',"
                        " 'message', repeat('x', 50000))) FROM generate_series(1, 2000)"));
    ck_assert_msg(it_wait_metric(port_a, "spark_ws_slow_consumers_total", 1, 30000),
                  "the slow client was never closed");
    long after = rss_kb(pid_a);
    /* The queue cap is 1 MiB: the instance must not have buffered the flood.
     * Under valgrind (SPARK_TEST_VALGRIND) the resident size is valgrind's,
     * with its shadow of every byte ever allocated: not the instance's. */
    if (!getenv("SPARK_TEST_VALGRIND"))
        ck_assert_msg(after - before < 40 * 1024, "RSS grew from %ld kB to %ld kB", before, after);
    ck_assert_int_eq(it_metric(port_a, "spark_ws_connections"), 0);
    PQfinish(pg);
    it_ws_drop(slow);
    stop_two();
}
END_TEST

START_TEST(shutdown_says_going_away) {
    start_two();
    it_ws *a = join_chat(port_a, "/chat/bye");
    ck_assert_int_eq(it_stop_sparkd(pid_a, 8000), 0);
    pid_a = 0;
    ck_assert_int_eq(it_ws_wait_close(a, RECV_MS), 1001);
    it_ws_drop(a);
    /* Its presence went with it, at once. */
    PGconn *pg = it_connect(db);
    char n[32];
    it_query_value(pg, "SELECT count(*) FROM spark.presence WHERE instance = 'a'", n, sizeof n);
    ck_assert_str_eq(n, "0");
    it_query_value(pg, "SELECT count(*) FROM spark.instances WHERE id = 'a'", n, sizeof n);
    ck_assert_str_eq(n, "0");
    PQfinish(pg);
    stop_two();
}
END_TEST

int main(void) {
    Suite *s = suite_create("channels");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, unknown_routes_get_404_before_the_upgrade);
    tcase_add_test(tc, messages_cross_instances_once_and_in_order);
    tcase_add_test(tc, other_kinds_are_stored_not_shown);
    tcase_add_test(tc, ephemeral_excluding_the_sender);
    tcase_add_test(tc, large_payloads_cross_instances);
    tcase_add_test(tc, a_write_leaves_in_one_send);
    tcase_add_test(tc, resume_gives_exactly_what_was_missed);
    tcase_add_test(tc, a_burst_shares_writes_and_arrives_whole);
    tcase_add_test(tc, a_busy_room_is_delivered_in_rounds);
    tcase_add_test(tc, resume_past_retention_says_not_recovered);
    tcase_add_test(tc, seed_errors_keep_the_connection_open);
    tcase_add_test(tc, notifications_reach_every_tab_on_every_instance);
    tcase_add_test(tc, a_crowd_joining_together_each_gets_a_state);
    tcase_add_test(tc, a_crowd_leaving_together_is_told_each_leave);
    tcase_add_test(tc, a_crowded_room_tells_joins_and_leaves_by_presence_only);
    tcase_add_test(tc, a_crowded_room_counts_instead_of_listing);
    tcase_add_test(tc, presence_leaves_when_an_instance_is_killed);
    tcase_add_test(tc, oversized_binary_and_rate_limits);
    tcase_add_test(tc, connection_limit_refuses_cleanly);
    tcase_add_test(tc, a_client_that_never_reads_is_cut_off);
    tcase_add_test(tc, shutdown_says_going_away);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
