/*
 * test_room_pages.c - a room component's viewer paging back through the
 * room (the chat component's "Load earlier messages", load_history), on
 * two real instances: each page comes from PostgreSQL after the event and
 * shows for that viewer alone, before the recent messages; another viewer
 * of the same instance and render sees none of it; the pages stop at the
 * room's first message and at SPARK_ROOM_OLDER_MAX, stay joined up with
 * the recent messages as new ones arrive, and go when the viewer leaves,
 * even before its page arrives, and outlive dropped database connections;
 * a room with no messages offers none.
 *
 * Viewers mostly speak Azu's frames, whose component_update carries the
 * whole HTML, so each frame shows exactly what the viewer has.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECV_MS 5000
#define BUTTON  "Load earlier messages"

static it_pair pair;
#define port_a pair.port[0]
#define port_b pair.port[1]

/* Stores messages "m-<from>".."m-<to>" in the room, as the chat channel
 * writes them. */
static void store(const char *room, int from, int to) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(spark.broadcast('%s', jsonb_build_object('type', 'chat',"
             " 'user', 'bot', 'user_id', 'bot', 'message', 'm-' || lpad(i::text, 4, '0'))))"
             " FROM generate_series(%d, %d) i",
             room, from, to);
    PGconn *pg = it_connect(pair.db);
    PQclear(it_exec(pg, sql));
    PQfinish(pg);
}

static bool shows(const char *html, int n) {
    char text[16];
    snprintf(text, sizeof text, ": m-%04d<", n);
    return strstr(html, text) != NULL;
}

static int count_messages(const char *html) {
    int n = 0;
    for (const char *p = html; (p = strstr(p, ": m-")); p++)
        n++;
    return n;
}

/* The html shows exactly messages first..last, and the button or not. */
static void assert_shows(const char *html, int first, int last, bool button) {
    ck_assert_msg(count_messages(html) == last - first + 1, "want m-%04d..m-%04d, got %.400s",
                  first, last, html);
    ck_assert_msg(shows(html, first) && shows(html, last), "want m-%04d..m-%04d, got %.400s", first,
                  last, html);
    ck_assert_msg((strstr(html, BUTTON) != NULL) == button, "button %s expected in %.400s",
                  button ? "" : "not", html);
}

/* Every frame up to the one that shows `needle`; *last is that one. A
 * frame about something else (who is online) may come before it. */
static char *frames_through(it_ws *ws, const char *needle, const char **last) {
    char *frames = it_ws_recv_through(ws, needle, RECV_MS);
    ck_assert_msg(frames, "never received %s", needle);
    frames[strlen(frames) - 1] = '\0';
    const char *nl = strrchr(frames, '\n');
    *last = nl ? nl + 1 : frames;
    ck_assert_msg(!strstr(frames, "\"error\""), "got %.400s", frames);
    return frames;
}

static void azu(it_ws *ws, int ref, const char *type, const char *cid, const char *event) {
    char frame[512];
    snprintf(frame, sizeof frame, "{\"type\":\"%s\",\"ref\":%d,\"component_id\":\"%s\"%s%s%s}",
             type, ref, cid, event ? ",\"event\":\"" : "", event ? event : "",
             event ? "\",\"data\":{}" : "");
    it_send(ws, frame);
}

static void expect_reply(it_ws *ws, int ref) {
    char reply[64];
    snprintf(reply, sizeof reply, "\"type\":\"reply\",\"ref\":%d,\"ok\":true", ref);
    free(it_expect(ws, reply));
}

/* Joins in Azu's frames: the whole HTML, then the reply. */
static char *azu_join(it_ws *ws, const char *cid, int ref) {
    azu(ws, ref, "component_join", cid, NULL);
    char *html = it_expect(ws, "\"component_update\"");
    expect_reply(ws, ref);
    return html;
}

static void join_shows(it_ws *ws, const char *cid, int ref, int first, int last, bool button) {
    char *html = azu_join(ws, cid, ref);
    assert_shows(html, first, last, button);
    free(html);
}

static char *through_message(it_ws *ws, int n, const char **last) {
    char needle[16];
    snprintf(needle, sizeof needle, ": m-%04d<", n);
    return frames_through(ws, needle, last);
}

/* Sends load_history: the reply comes at once, the page after it, in the
 * first frame that shows message `first` (one about who is online may
 * come before it). That frame shows first..last, and the button or not. */
static void load_shows(it_ws *ws, const char *cid, int ref, int first, int last, bool button) {
    azu(ws, ref, "component_event", cid, "load_history");
    expect_reply(ws, ref);
    const char *frame;
    char *frames = through_message(ws, first, &frame);
    assert_shows(frame, first, last, button);
    free(frames);
}

/* Message `n` is stored; the frame that shows it shows first..n. */
static void new_message_shows(it_ws *ws, int n, int first, bool button) {
    const char *frame;
    char *frames = through_message(ws, n, &frame);
    assert_shows(frame, first, n, button);
    free(frames);
}

START_TEST(a_viewer_pages_back_and_the_others_do_not) {
    it_pair_start(&pair, "room-pages");
    store("chat:paged", 1, 95);
    it_ws *a = it_ws_open_ok(port_a, "/spark?protocol=azu", NULL);
    it_ws *b = it_ws_open_ok(port_a, "/spark?protocol=azu", NULL);
    join_shows(a, "chat:paged", 1, 46, 95, true);
    join_shows(b, "chat:paged", 1, 46, 95, true);

    /* a pages back, 20 at a time, to the first message. */
    load_shows(a, "chat:paged", 2, 26, 95, true);
    load_shows(a, "chat:paged", 3, 6, 95, true);
    load_shows(a, "chat:paged", 4, 1, 95, false);

    /* A new message: a keeps the one that leaves the recent ones, b sees
     * the recent ones only, and that is the first thing b was sent since
     * its join (a's pages rendered for a alone). */
    store("chat:paged", 96, 96);
    const char *last;
    new_message_shows(a, 96, 1, false);
    char *frames = frames_through(b, "m-0096", &last);
    ck_assert_msg(!shows(frames, 45), "b was sent %.400s", frames);
    assert_shows(last, 47, 96, true);
    free(frames);

    /* Nothing older: a's load changes nothing. */
    azu(a, 5, "component_event", "chat:paged", "load_history");
    expect_reply(a, 5);
    store("chat:paged", 97, 97);
    new_message_shows(a, 97, 1, false);

    /* A viewer of Spark's frames on the other instance gets its page as a
     * patch that inserts it. */
    it_ws *c = it_ws_open_ok(port_b, "/spark", NULL);
    it_send(c, "{\"t\":\"join\",\"ref\":1,\"cid\":\"chat:paged\"}");
    char *html = it_expect(c, "\"t\":\"render\"");
    assert_shows(html, 48, 97, true);
    free(html);
    free(it_expect(c, "\"ref\":1,\"ok\":true"));
    it_send(c, "{\"t\":\"event\",\"ref\":2,\"cid\":\"chat:paged\",\"e\":\"load_history\"}");
    free(it_expect(c, "\"ref\":2,\"ok\":true"));
    frames = through_message(c, 28, &last);
    ck_assert_msg(strstr(last, "\"t\":\"patch\"") && shows(last, 47) && !shows(last, 27) &&
                      !shows(last, 48),
                  "%.400s", last);
    free(frames);

    /* a leaves: its pages go; joining again shows the recent ones. */
    azu(a, 6, "component_leave", "chat:paged", NULL);
    expect_reply(a, 6);
    join_shows(a, "chat:paged", 7, 48, 97, true);

    it_ws_close(a);
    it_ws_close(b);
    it_ws_close(c);
    it_pair_stop(&pair);
}
END_TEST

/* 1,000 older messages at most: the button goes there, though the room
 * has more, and a new message drops the oldest kept. */
START_TEST(older_messages_stop_at_the_bound) {
    it_pair_start(&pair, "room-pages-bound");
    store("chat:big", 1, 1100);
    it_ws *a = it_ws_open_ok(port_a, "/spark?protocol=azu", NULL);
    join_shows(a, "chat:big", 1, 1051, 1100, true);
    for (int page = 1; page <= 50; page++)
        load_shows(a, "chat:big", 1 + page, 1051 - 20 * page, 1100, page < 50);
    azu(a, 60, "component_event", "chat:big", "load_history");
    expect_reply(a, 60);
    store("chat:big", 1101, 1101);
    new_message_shows(a, 1101, 52, false);
    it_ws_close(a);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(a_room_with_no_messages_offers_none) {
    it_pair_start(&pair, "room-pages-empty");
    it_ws *a = it_ws_open_ok(port_a, "/spark?protocol=azu", NULL);
    char *html = azu_join(a, "chat:quiet", 1);
    ck_assert_int_eq(count_messages(html), 0);
    ck_assert_ptr_null(strstr(html, BUTTON));
    free(html);
    azu(a, 2, "component_event", "chat:quiet", "load_history");
    expect_reply(a, 2);
    /* The load changed nothing, and says nothing. */
    store("chat:quiet", 1, 1);
    const char *last;
    html = frames_through(a, "m-0001", &last);
    ck_assert_msg(!strstr(html, BUTTON), "%.400s", html);
    assert_shows(last, 1, 1, false);
    free(html);
    it_ws_close(a);
    it_pair_stop(&pair);
}
END_TEST

/* A viewer that goes while its page is on its way: the page finds no one,
 * and the instance serves the next viewer's pages as before. */
START_TEST(a_viewer_may_leave_before_its_page_arrives) {
    it_pair_start(&pair, "room-pages-gone");
    store("chat:gone", 1, 60);
    for (int i = 0; i < 20; i++) {
        it_ws *a = it_ws_open_ok(port_a, "/spark?protocol=azu", NULL);
        free(azu_join(a, "chat:gone", 1));
        azu(a, 2, "component_event", "chat:gone", "load_history");
        if (i % 2) expect_reply(a, 2);
        it_ws_close(a);
    }
    it_ws *b = it_ws_open_ok(port_a, "/spark?protocol=azu", NULL);
    free(azu_join(b, "chat:gone", 1));
    load_shows(b, "chat:gone", 2, 1, 60, false);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

/* The database connections drop and come back: the room view catches up
 * from where it was, so the pages stay and join up with what was posted
 * meanwhile, and the viewer pages on. */
START_TEST(pages_outlive_a_dropped_connection) {
    it_pair_start(&pair, "room-pages-reconnect");
    store("chat:again", 1, 95);
    it_ws *a = it_ws_open_ok(port_a, "/spark?protocol=azu", NULL);
    free(azu_join(a, "chat:again", 1));
    load_shows(a, "chat:again", 2, 26, 95, true);
    PGconn *pg = it_connect(pair.db);
    PQclear(it_exec(pg, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"));
    PQfinish(pg);
    store("chat:again", 96, 96);
    new_message_shows(a, 96, 26, true);
    load_shows(a, "chat:again", 3, 6, 96, true);
    it_ws_close(a);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    /* Retention would prune the bound test's room below what it pages. */
    setenv("SPARK_ROOM_HISTORY", "5000", 1);
    Suite *s = suite_create("room_pages");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_viewer_pages_back_and_the_others_do_not);
    tcase_add_test(tc, older_messages_stop_at_the_bound);
    tcase_add_test(tc, a_room_with_no_messages_offers_none);
    tcase_add_test(tc, a_viewer_may_leave_before_its_page_arrives);
    tcase_add_test(tc, pages_outlive_a_dropped_connection);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
