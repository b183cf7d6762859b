/*
 * test_load_faults.c - faults under load. Clients on both instances send
 * events and chat messages at a steady pace while one instance is killed
 * with SIGKILL, or while PostgreSQL is stopped and started; a client that
 * never reads; and 10,000 hostile frames from 100 connections. What was
 * acknowledged is checked against PostgreSQL afterwards. Stops the shared
 * test server, so it runs alone. The figures each test prints are those of
 * docs/reliability.md.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECV_MS 10000
#define CLIENTS 4
#define MAX_EV  512
#define MAX_SEQ 8192
#define TICK_MS 20 /* 50 events and 50 chat messages a second per client */
#define ROOM    "/chat/load"
#define COUNTER "counter:load%d" /* one per client, or counter:load-shared for all */

static it_pair pair;

typedef struct {
    int id, port;
    char cid[32]; /* its component */
    it_ws *live, *chat;
    int sent, chat_sent, chat_acked, chat_errors;
    signed char answer[MAX_EV];            /* 0 none yet, 1 ok, -1 an error */
    long long last_v, last_seq, first_seq; /* first_seq: its own arrival */
    bool resumed;
    char error[256]; /* the first error reply */
    bool seen[MAX_SEQ];
} client;

static client clients[CLIENTS];

static void pace(int ms) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

static long long field(const char *msg, const char *name) {
    const char *p = strstr(msg, name);
    return p ? atoll(p + strlen(name)) : -1;
}

static void send_or_fail(it_ws *ws, const char *text) {
    ck_assert_int_eq(it_ws_send_text(ws, text), 0);
}

static void send_event(client *c, int n) {
    char frame[256];
    snprintf(frame, sizeof frame,
             "{\"t\":\"event\",\"ref\":%d,\"cid\":\"%s\",\"e\":\"increment\",\"id\":\"c%d-%d\"}",
             100 + n, c->cid, c->id, n);
    send_or_fail(c->live, frame);
}

static void send_chat(client *c) {
    char frame[128];
    snprintf(frame, sizeof frame, "{\"action\":\"chat\",\"message\":\"c%d-%d\"}", c->id,
             c->chat_sent++);
    send_or_fail(c->chat, frame);
}

/* Reads whatever has arrived, without waiting. */
static void pump(client *c) {
    char *m;
    while (c->live && (m = it_ws_recv(c->live, 0))) {
        if (strstr(m, "\"t\":\"reply\"")) {
            long long ref = field(m, "\"ref\":");
            if (ref >= 100 && ref < 100 + MAX_EV && c->answer[ref - 100] == 0) {
                c->answer[ref - 100] = strstr(m, "\"ok\":true") ? 1 : -1;
                if (!strstr(m, "\"ok\":true") && !c->error[0])
                    snprintf(c->error, sizeof c->error, "%s", m);
            }
        }
        long long v = field(m, "\"v\":");
        if (v > c->last_v) c->last_v = v;
        free(m);
    }
    while (c->chat && (m = it_ws_recv(c->chat, 0))) {
        long long seq = field(m, "\"seq\":");
        if (seq > 0) {
            ck_assert_msg(seq > c->last_seq, "client %d: seq %lld after %lld", c->id, seq,
                          c->last_seq);
            ck_assert_int_lt(seq, MAX_SEQ);
            c->last_seq = seq;
            c->seen[seq] = true;
            char mine[32];
            snprintf(mine, sizeof mine, "\"message\":\"c%d-", c->id);
            if (strstr(m, "\"type\":\"chat\"") && strstr(m, mine)) c->chat_acked++;
        } else if (strstr(m, "Server error processing message")) {
            c->chat_errors++;
        } else if (strstr(m, "\"type\":\"resume\"")) {
            ck_assert_msg(strstr(m, "\"recovered\":true"), "client %d: %s", c->id, m);
            c->resumed = true;
        }
        free(m);
    }
}

static void join_live(client *c, int port, bool with_version) {
    c->port = port;
    c->live = it_ws_open(port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(c->live);
    char frame[128];
    if (with_version)
        snprintf(frame, sizeof frame, "{\"t\":\"join\",\"ref\":1,\"cid\":\"%s\",\"v\":%lld}",
                 c->cid, c->last_v);
    else
        snprintf(frame, sizeof frame, "{\"t\":\"join\",\"ref\":1,\"cid\":\"%s\"}", c->cid);
    send_or_fail(c->live, frame);
    char *m;
    while ((m = it_ws_recv(c->live, RECV_MS)) && !strstr(m, "\"ref\":1,")) {
        long long v = field(m, "\"v\":");
        if (v > c->last_v) c->last_v = v;
        free(m);
    }
    ck_assert_msg(m && strstr(m, "\"ok\":true"), "client %d: join: %s", c->id, m ? m : "none");
    free(m);
}

static void join_room(client *c, int port, bool resume) {
    char target[64];
    if (resume)
        snprintf(target, sizeof target, ROOM "?since=%lld", c->last_seq);
    else
        snprintf(target, sizeof target, ROOM);
    c->chat = it_ws_open(port, target, NULL, NULL);
    ck_assert_ptr_nonnull(c->chat);
    char *m;
    while (!resume && (m = it_ws_recv(c->chat, RECV_MS))) {
        long long seq = field(m, "\"seq\":");
        if (seq > 0 && seq < MAX_SEQ) {
            c->seen[seq] = true;
            c->last_seq = seq;
        }
        bool joined = strstr(m, "\"user_joined\"") != NULL;
        if (joined) c->first_seq = seq;
        free(m);
        if (joined) return;
    }
    ck_assert_msg(resume, "client %d: not in the room", c->id);
}

/* shared: every client writes the same counter, through both instances,
 * so that writes conflict and run again on fresher state. */
static void start_clients(bool shared) {
    memset(clients, 0, sizeof clients);
    for (int i = 0; i < CLIENTS; i++) {
        clients[i].id = i;
        if (shared)
            snprintf(clients[i].cid, sizeof clients[i].cid, "counter:load-shared");
        else
            snprintf(clients[i].cid, sizeof clients[i].cid, COUNTER, i);
        join_live(&clients[i], pair.port[i % 2], false);
        join_room(&clients[i], pair.port[i % 2], false);
    }
}

static int answered(const client *c, int want) {
    int n = 0;
    for (int i = 0; i < c->sent; i++)
        n += c->answer[i] == want || (want == 2 && c->answer[i] != 0);
    return n;
}

/* Pumps every client until each event has its answer. */
static bool wait_answers(int timeout_ms) {
    long long deadline = it_now_ms() + timeout_ms;
    for (;;) {
        bool all = true;
        for (int i = 0; i < CLIENTS; i++) {
            pump(&clients[i]);
            all &= answered(&clients[i], 2) == clients[i].sent;
        }
        if (all) return true;
        if (it_now_ms() > deadline) return false;
        pace(5);
    }
}

/* The stored messages of the room, as a bitmap of seqs; returns how many. */
static int stored_seqs(PGconn *pg, const char *sql, bool stored[MAX_SEQ]) {
    PGresult *r = it_exec(pg, sql);
    int n = PQntuples(r);
    memset(stored, 0, MAX_SEQ);
    for (int i = 0; i < n; i++) {
        long long seq = atoll(PQgetvalue(r, i, 0));
        ck_assert_int_lt(seq, MAX_SEQ);
        stored[seq] = true;
    }
    PQclear(r);
    return n;
}

static long long db_count(PGconn *pg, const char *sql) {
    char v[32];
    return atoll(it_query_value(pg, sql, v, sizeof v));
}

/* What PostgreSQL holds of the counters' events: their ids, the counts'
 * sum, the versions' sum and the history rows. Applied once each, all four
 * are equal. */
typedef struct {
    long long ids, count, version, events;
} stored_events;

static stored_events stored_counts(PGconn *pg) {
    return (stored_events){
        .ids = db_count(
            pg, "SELECT count(*) FROM spark.event_ids WHERE component_id LIKE 'counter:load%'"),
        .count = db_count(pg, "SELECT sum((state->>'count')::int) FROM spark.components"
                              " WHERE id LIKE 'counter:load%'"),
        .version =
            db_count(pg, "SELECT sum(version) FROM spark.components WHERE id LIKE 'counter:load%'"),
        .events = db_count(
            pg, "SELECT count(*) FROM spark.events WHERE component_id LIKE 'counter:load%'"),
    };
}

/* Every client has seen every stored message, and every message it saw is
 * stored; every client shows the component's last version. */
static void check_no_gap(PGconn *pg) {
    static bool stored[MAX_SEQ], shown[MAX_SEQ];
    stored_seqs(pg, "SELECT seq FROM spark.messages WHERE room = 'chat:load'", stored);
    stored_seqs(pg, "SELECT seq FROM spark.messages WHERE room = 'chat:load' AND kind = 'message'",
                shown);
    long long deadline = it_now_ms() + RECV_MS;
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &clients[i];
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT version FROM spark.components WHERE id = '%s'", c->cid);
        long long version = db_count(pg, sql);
        for (;;) {
            pump(c);
            bool missing = false;
            for (int s = 0; s < MAX_SEQ; s++) {
                ck_assert_msg(!c->seen[s] || stored[s], "client %d saw %d, not stored", i, s);
                missing |= s >= c->first_seq && shown[s] && !c->seen[s];
            }
            if (!missing && c->last_v == version) break;
            if (it_now_ms() >= deadline) {
                int n = 0, first = -1, total = 0;
                for (int q = 0; q < MAX_SEQ; q++) {
                    total += shown[q];
                    if (q >= c->first_seq && shown[q] && !c->seen[q]) {
                        if (first < 0) first = q;
                        n++;
                    }
                }
                fprintf(stderr, "client %d: %d of %d missing, first %d, last seq %lld\n", i, n,
                        total, first, c->last_seq);
            }
            ck_assert_msg(it_now_ms() < deadline, "client %d: missing messages or at v%lld of %lld",
                          i, c->last_v, version);
            pace(5);
        }
    }
}

static void close_clients(void) {
    for (int i = 0; i < CLIENTS; i++) {
        if (clients[i].live) it_ws_close(clients[i].live);
        if (clients[i].chat) it_ws_close(clients[i].chat);
    }
}

static void kill_9_under_load(bool shared) {
    it_pair_start(&pair, shared ? "loadkills" : "loadkill");
    start_clients(shared);
    enum { TICKS = 150, KILL_AT = 75 };
    long long killed_at = 0, recovered_at = 0;
    for (int t = 0; t < TICKS; t++) {
        if (t == KILL_AT) {
            killed_at = it_now_ms();
            kill(pair.pid[1], SIGKILL);
            waitpid(pair.pid[1], NULL, 0);
            pair.pid[1] = 0;
            /* b's clients reconnect to a: the component at the version they
             * showed, the room after the last seq they saw, and every event
             * not answered sent again with its id. */
            for (int i = 1; i < CLIENTS; i += 2) {
                client *c = &clients[i];
                it_ws_drop(c->live);
                it_ws_drop(c->chat);
                join_live(c, pair.port[0], true);
                join_room(c, pair.port[0], true);
                for (int n = 0; n < c->sent; n++)
                    if (c->answer[n] == 0) send_event(c, n);
            }
        }
        for (int i = 0; i < CLIENTS; i++) {
            client *c = &clients[i];
            send_event(c, c->sent++);
            send_chat(c);
            pump(c);
        }
        if (killed_at && !recovered_at) {
            bool done = true;
            for (int i = 1; i < CLIENTS; i += 2)
                done &= clients[i].resumed && answered(&clients[i], 2) == clients[i].sent;
            if (done) recovered_at = it_now_ms();
        }
        pace(TICK_MS);
    }
    ck_assert_msg(wait_answers(RECV_MS), "events left unanswered");
    if (!recovered_at) recovered_at = it_now_ms();
    int sent = 0, ok = 0, chat_sent = 0, chat_acked = 0;
    for (int i = 0; i < CLIENTS; i++) {
        sent += clients[i].sent;
        ok += answered(&clients[i], 1);
        ck_assert_msg(clients[i].resumed == (i % 2 == 1), "client %d: resume", i);
        chat_sent += clients[i].chat_sent;
        chat_acked += clients[i].chat_acked;
    }
    /* Every event was answered ok, on one instance or the other. */
    for (int i = 0; i < CLIENTS; i++)
        ck_assert_msg(!clients[i].error[0], "client %d: %s", i, clients[i].error);
    ck_assert_int_eq(ok, sent);

    PGconn *pg = it_connect(pair.db);
    stored_events st = stored_counts(pg);
    long long ids = st.ids, count = st.count, version = st.version, events = st.events;
    /* Applied once each: nothing lost, nothing twice. */
    ck_assert_int_eq(ids, sent);
    ck_assert_int_eq(count, sent);
    ck_assert_int_eq(version, sent);
    ck_assert_int_eq(events, sent);
    check_no_gap(pg);
    long long stored = db_count(pg, "SELECT count(*) FROM spark.messages WHERE room = 'chat:load'");
    ck_assert_int_ge(stored, chat_acked);
    printf("kill -9%s: events sent %d, acknowledged %d, stored %lld, lost 0; chat sent %d, "
           "acknowledged %d, stored %lld; b's clients resumed on a in %lld ms\n",
           shared ? " (one shared counter)" : "", sent, ok, ids, chat_sent, chat_acked, stored,
           recovered_at - killed_at);
    PQfinish(pg);
    close_clients();
    it_pair_stop(&pair);
}

START_TEST(kill_9_under_load_loses_nothing_acknowledged) { kill_9_under_load(false); }
END_TEST

/* b's clients resend, through a, events that b may have stored before it
 * died: their ids find them, on the component both instances write. */
START_TEST(kill_9_with_one_shared_counter) { kill_9_under_load(true); }
END_TEST

static void postgres_stop_and_start(bool shared) {
    it_pair_start(&pair, shared ? "loadpgs" : "loadpg");
    start_clients(shared);
    enum { TICKS = 200, STOP_AT = 50 };
    long long stopped_at = 0, started_at = 0;
    for (int t = 0; t < TICKS; t++) {
        if (t == STOP_AT) {
            ck_assert_int_eq(it_pg_ctl("stop"), 0);
            stopped_at = it_now_ms();
        }
        if (stopped_at && !started_at && it_now_ms() - stopped_at >= 1000) {
            ck_assert_int_eq(it_pg_ctl("start"), 0);
            started_at = it_now_ms();
        }
        for (int i = 0; i < CLIENTS; i++) {
            client *c = &clients[i];
            send_event(c, c->sent++);
            send_chat(c);
            pump(c);
        }
        pace(TICK_MS);
    }
    ck_assert_msg(started_at, "PostgreSQL was not started again");
    ck_assert_msg(it_wait_status(pair.port[0], "/healthz", 200, 30000), "a did not recover");
    ck_assert_msg(it_wait_status(pair.port[1], "/healthz", 200, 30000), "b did not recover");
    long long healthy_at = it_now_ms();
    /* Every request is answered: each event once, each chat message by its
     * echo or an error. */
    ck_assert_msg(wait_answers(RECV_MS), "events left unanswered");
    long long deadline = it_now_ms() + RECV_MS;
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &clients[i];
        while (c->chat_acked + c->chat_errors < c->chat_sent) {
            ck_assert_msg(it_now_ms() < deadline, "client %d: %d chat messages unanswered", i,
                          c->chat_sent - c->chat_acked - c->chat_errors);
            pump(c);
            pace(5);
        }
    }
    /* Both instances serve again without a restart. */
    for (int i = 0; i < 2; i++) {
        client *c = &clients[i];
        send_event(c, c->sent++);
        send_chat(c);
    }
    ck_assert_msg(wait_answers(RECV_MS), "events after recovery unanswered");
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(clients[i].answer[clients[i].sent - 1], 1);

    int sent = 0, ok = 0, refused = 0, chat_sent = 0, chat_acked = 0, chat_errors = 0;
    for (int i = 0; i < CLIENTS; i++) {
        sent += clients[i].sent;
        ok += answered(&clients[i], 1);
        refused += answered(&clients[i], -1);
        chat_sent += clients[i].chat_sent;
        chat_acked += clients[i].chat_acked;
        chat_errors += clients[i].chat_errors;
    }
    ck_assert_int_eq(ok + refused, sent);
    ck_assert_int_gt(refused, 0);

    PGconn *pg = it_connect(pair.db);
    /* Each event answered ok is stored, once; an event refused may have been
     * stored only when its outcome was unknown. */
    char sql[512];
    int acked_missing = 0;
    for (int i = 0; i < CLIENTS; i++)
        for (int n = 0; n < clients[i].sent; n++) {
            if (clients[i].answer[n] != 1) continue;
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM spark.event_ids WHERE component_id = '%s' "
                     "AND event_id = 'c%d-%d'",
                     clients[i].cid, i, n);
            acked_missing += db_count(pg, sql) != 1;
        }
    ck_assert_int_eq(acked_missing, 0);
    stored_events st = stored_counts(pg);
    long long ids = st.ids, count = st.count, version = st.version, events = st.events;
    ck_assert_int_ge(ids, ok);
    ck_assert_int_le(ids, sent);
    ck_assert_msg(count == ids && version == ids && events == ids,
                  "ids %lld, count %lld, version %lld, events %lld", ids, count, version, events);
    long long stored = db_count(pg, "SELECT count(*) FROM spark.messages WHERE room = 'chat:load'");
    ck_assert_int_ge(stored, chat_acked / CLIENTS);
    /* Every echoed message is stored (check_no_gap: seen implies stored). */
    check_no_gap(pg);
    printf("PostgreSQL restart%s: events sent %d, acknowledged %d, refused %d, stored %lld, "
           "acknowledged lost 0; chat sent %d, acknowledged %d, refused %d, stored %lld; "
           "down %lld ms, healthy %lld ms after the start\n",
           shared ? " (one shared counter)" : "", sent, ok, refused, ids, chat_sent, chat_acked,
           chat_errors, stored, started_at - stopped_at, healthy_at - started_at);
    PQfinish(pg);
    close_clients();
    it_pair_stop(&pair);
}

START_TEST(postgres_stop_and_start_under_load) { postgres_stop_and_start(false); }
END_TEST

/* Both instances write one component: writes conflict, run again on the
 * state the other instance stored, and a write whose outcome was lost in
 * the restart is found by its id. Still each event counts once. */
START_TEST(postgres_stop_and_start_with_one_shared_counter) { postgres_stop_and_start(true); }
END_TEST

static long long rss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atoll(line + 6);
    fclose(f);
    return kb;
}

START_TEST(a_client_that_never_reads_is_cut_off_and_memory_stays_bounded) {
    setenv("SPARK_MAX_QUEUE", "65536", 1);
    setenv("SPARK_RATE_LIMIT", "0", 1);
    /* In a sanitized build, freed memory is reused at once, so that RSS
     * shows what the instance holds (ignored by a plain build). */
    char asan[512];
    const char *prev = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=0", prev ? prev : "",
             prev && *prev ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    it_pair_start(&pair, "loadslow");
    unsetenv("SPARK_MAX_QUEUE");
    unsetenv("SPARK_RATE_LIMIT");
    int port = pair.port[0];
    it_ws *sender = it_ws_open(port, "/chat/slow", NULL, NULL);
    ck_assert_ptr_nonnull(sender);
    free(it_ws_recv_match(sender, "\"user_joined\"", RECV_MS));
    it_ws *slow = it_ws_open(port, "/chat/slow", NULL, NULL);
    ck_assert_ptr_nonnull(slow);
    /* From here on, the slow client reads nothing. */
    long long before = rss_kb(pair.pid[0]), peak = before;
    enum { N = 1500, SIZE = 16000 };
    char *frame = malloc(SIZE + 64);
    int len = sprintf(frame, "{\"action\":\"chat\",\"message\":\"");
    memset(frame + len, 'x', SIZE);
    strcpy(frame + len + SIZE, "\"}");
    long long bytes = 0, cut_at = -1;
    int sent = 0;
    for (int i = 0; i < N && cut_at < 0; i++) {
        sent++;
        send_or_fail(sender, frame);
        char *m = it_ws_recv_match(sender, "\"type\":\"chat\"", RECV_MS);
        ck_assert_msg(m, "the sender's message %d never came back", i);
        bytes += (long long)strlen(m);
        free(m);
        long long rss = rss_kb(pair.pid[0]);
        if (rss > peak) peak = rss;
        if (cut_at < 0 && it_metric(port, "spark_ws_slow_consumers_total") >= 1) cut_at = bytes;
    }
    free(frame);
    ck_assert_msg(cut_at > 0, "never counted as a slow consumer");
    ck_assert_int_eq(it_ws_wait_close(slow, 30000), 1008);
    it_ws_drop(slow);
    ck_assert_msg(cut_at > 0, "never counted as a slow consumer");
    long long after = rss_kb(pair.pid[0]);
    /* Bounded: well under what was broadcast to the slow client. */
    ck_assert_msg(peak - before < 16 * 1024, "RSS grew by %lld kB", peak - before);
    /* The instance goes on serving. */
    it_ws *fresh = it_ws_open(port, "/chat/slow", NULL, NULL);
    ck_assert_ptr_nonnull(fresh);
    free(it_ws_recv_match(fresh, "\"user_joined\"", RECV_MS));
    send_or_fail(sender, "{\"action\":\"chat\",\"message\":\"after\"}");
    char *m = it_ws_recv_match(fresh, "after", RECV_MS);
    ck_assert_ptr_nonnull(m);
    free(m);
    printf("slow consumer: %d messages, %lld bytes broadcast, cut off (1008) after %lld bytes; "
           "RSS %lld kB before, peak %lld kB (+%lld kB), %lld kB after\n",
           sent, bytes, cut_at, before, peak, peak - before, after);
    it_ws_close(fresh);
    it_ws_close(sender);
    it_pair_stop(&pair);
}
END_TEST

/* Frame k of a hostile connection: all text, each answered with a reply. */
static int hostile_frame(int conn, int k, char *out, size_t cap) {
    int ref = 10 + k;
    switch (k % 8) {
    case 0:
        return snprintf(out, cap, "}{not json %d", k);
    case 1:
        return snprintf(out, cap, "{\"t\":\"join\",\"ref\":\"x\",\"cid\":5}");
    case 2:
        return snprintf(out, cap, "{\"t\":\"join\",\"ref\":%d,\"cid\":\"nosuch:%d\"}", ref, conn);
    case 3:
        return snprintf(out, cap,
                        "{\"t\":\"event\",\"ref\":%d,\"cid\":\"counter:h%d\",\"e\":\"nosuch\"}",
                        ref, conn % 10);
    case 4: {
        int depth = 1000, n = 0;
        for (int i = 0; i < depth; i++)
            out[n++] = '[';
        for (int i = 0; i < depth; i++)
            out[n++] = ']';
        out[n] = '\0';
        return n;
    }
    case 5:
        return snprintf(out, cap, "{\"t\":42,\"ref\":%d}", ref);
    case 6:
        return snprintf(out, cap,
                        "{\"t\":\"event\",\"ref\":%d,\"cid\":\"counter:h%d\",\"e\":\"increment\","
                        "\"d\":[1]}",
                        ref, conn % 10);
    default:
        return snprintf(out, cap, "{\"t\":\"leave\",\"ref\":%d,\"cid\":\"bad\\u0001id\"}", ref);
    }
}

START_TEST(ten_thousand_hostile_frames_leave_the_instance_serving) {
    setenv("SPARK_RATE_LIMIT", "0", 1);
    it_pair_start(&pair, "loadhostile");
    unsetenv("SPARK_RATE_LIMIT");
    int port = pair.port[0];
    enum { CONNS = 100, FRAMES = 100, BIG = 40000, HUGE = 65537 };
    it_ws *conns[CONNS];
    char *buf = malloc(HUGE + 1);
    memset(buf, 0, HUGE + 1);
    int frames = 0, replies = 0, errors = 0, closed_1009 = 0;
    long long started = it_now_ms();
    for (int c = 0; c < CONNS; c++) {
        conns[c] = it_ws_open(port, "/spark", NULL, NULL);
        ck_assert_ptr_nonnull(conns[c]);
        char join[128];
        snprintf(join, sizeof join, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:h%d\"}", c % 10);
        send_or_fail(conns[c], join);
        frames++;
        /* The join is answered once the state has loaded: wait for it, or
         * the oversized frames below may close the socket first. */
        char *ok = it_ws_recv_match(conns[c], "\"ref\":1,", RECV_MS);
        ck_assert_msg(ok && strstr(ok, "\"ok\":true"), "join %d: %s", c, ok ? ok : "none");
        free(ok);
        replies++;
        /* 97 hostile frames, then one over 32 KiB, then one over 64 KiB. */
        for (int k = 1; k < FRAMES - 2; k++) {
            int n = hostile_frame(c, k, buf, HUGE);
            ck_assert_int_eq(it_ws_send(conns[c], IT_WS_TEXT, buf, (size_t)n), 0);
            frames++;
        }
        int n = snprintf(buf, HUGE, "{\"t\":\"event\",\"ref\":98,\"cid\":\"counter:h%d\",\"e\":\"",
                         c % 10);
        memset(buf + n, 'x', BIG);
        strcpy(buf + n + BIG, "\"}");
        ck_assert_int_eq(it_ws_send(conns[c], IT_WS_TEXT, buf, strlen(buf)), 0);
        memset(buf, ' ', HUGE);
        ck_assert_int_eq(it_ws_send(conns[c], IT_WS_TEXT, buf, HUGE), 0);
        frames += 2;
    }
    for (int c = 0; c < CONNS; c++) {
        char *m;
        int got = 0;
        while ((m = it_ws_recv(conns[c], RECV_MS))) {
            if (strstr(m, "\"t\":\"reply\"")) {
                got++;
                errors += strstr(m, "\"ok\":false") != NULL;
            }
            free(m);
        }
        ck_assert_int_eq(it_ws_close_code(conns[c]), 1009);
        closed_1009++;
        /* The close may overtake the last replies to the hostile frames. */
        replies += got;
        it_ws_drop(conns[c]);
    }
    long long took = it_now_ms() - started;
    free(buf);
    ck_assert_int_eq(frames, CONNS * FRAMES);
    ck_assert_int_ge(replies - errors, CONNS); /* the joins */

    /* It keeps serving: /healthz, a normal client's join and event. */
    ck_assert_int_eq(it_http_get(port, "/healthz", NULL, 0), 200);
    it_ws *normal = it_ws_open(port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(normal);
    send_or_fail(normal, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:normal\"}");
    char *m = it_ws_recv_match(normal, "\"ref\":1,", RECV_MS);
    ck_assert_msg(m && strstr(m, "\"ok\":true"), "join: %s", m ? m : "none");
    free(m);
    send_or_fail(normal,
                 "{\"t\":\"event\",\"ref\":2,\"cid\":\"counter:normal\",\"e\":\"increment\"}");
    m = it_ws_recv_match(normal, "\"ref\":2,", RECV_MS);
    ck_assert_msg(m && strstr(m, "\"ok\":true"), "event: %s", m ? m : "none");
    free(m);
    it_ws_close(normal);
    printf("hostile: %d frames from %d connections in %lld ms: %d replies (%d errors), "
           "%d closed with 1009; then healthz 200 and a normal client served\n",
           frames, CONNS, took, replies, errors, closed_1009);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    setenv("SPARK_AUTH", "off", 1);
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("load_faults");
    TCase *tc = tcase_create("load_faults");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, kill_9_under_load_loses_nothing_acknowledged);
    tcase_add_test(tc, kill_9_with_one_shared_counter);
    tcase_add_test(tc, postgres_stop_and_start_under_load);
    tcase_add_test(tc, postgres_stop_and_start_with_one_shared_counter);
    tcase_add_test(tc, a_client_that_never_reads_is_cut_off_and_memory_stays_bounded);
    tcase_add_test(tc, ten_thousand_hostile_frames_leave_the_instance_serving);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
