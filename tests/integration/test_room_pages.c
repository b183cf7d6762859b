/*
 * test_room_pages.c - a room component's viewer paging back through the
 * room (the chat component's "Load earlier messages", load_history), on
 * two real instances: each page comes from PostgreSQL after the event and
 * shows for that viewer alone, before the recent messages; another viewer
 * of the same instance and render sees none of it; the pages stop at the
 * room's first message and at SPARK_ROOM_OLDER_MAX, stay joined up with
 * the recent messages as new ones arrive, and go when the viewer leaves;
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

static it_ws *open_ws(int port, const char *target) {
    int status;
    it_ws *ws = it_ws_open(port, target, NULL, &status);
    ck_assert_msg(ws, "upgrade of %s refused with %d", target, status);
    return ws;
}

static void send_text(it_ws *ws, const char *text) {
    ck_assert_int_eq(it_ws_send_text(ws, text), 0);
}

static char *expect(it_ws *ws, const char *needle) {
    char *m = it_ws_recv_match(ws, needle, RECV_MS);
    ck_assert_msg(m, "never received %s", needle);
    return m;
}

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
    send_text(ws, frame);
}

static void expect_reply(it_ws *ws, int ref) {
    char reply[64];
    snprintf(reply, sizeof reply, "\"type\":\"reply\",\"ref\":%d,\"ok\":true", ref);
    free(expect(ws, reply));
}

/* Joins in Azu's frames: the whole HTML, then the reply. */
static char *azu_join(it_ws *ws, const char *cid, int ref) {
    azu(ws, ref, "component_join", cid, NULL);
    char *html = expect(ws, "\"component_update\"");
    expect_reply(ws, ref);
    return html;
}

/* Sends load_history; the reply comes at once, the page after it. */
static char *load_page(it_ws *ws, const char *cid, int ref) {
    azu(ws, ref, "component_event", cid, "load_history");
    expect_reply(ws, ref);
    return expect(ws, "\"component_update\"");
}

START_TEST(a_viewer_pages_back_and_the_others_do_not) {
    it_pair_start(&pair, "room-pages");
    store("chat:paged", 1, 95);
    it_ws *a = open_ws(port_a, "/spark?protocol=azu");
    it_ws *b = open_ws(port_a, "/spark?protocol=azu");
    char *html = azu_join(a, "chat:paged", 1);
    assert_shows(html, 46, 95, true);
    free(html);
    html = azu_join(b, "chat:paged", 1);
    assert_shows(html, 46, 95, true);
    free(html);

    /* a pages back, 20 at a time, to the first message. */
    html = load_page(a, "chat:paged", 2);
    assert_shows(html, 26, 95, true);
    ck_assert(shows(html, 45) && !shows(html, 25));
    free(html);
    html = load_page(a, "chat:paged", 3);
    assert_shows(html, 6, 95, true);
    free(html);
    html = load_page(a, "chat:paged", 4);
    assert_shows(html, 1, 95, false);
    free(html);

    /* A new message: a keeps the one that leaves the recent ones, b sees
     * the recent ones only, and that is the first thing b was sent since
     * its join (a's pages rendered for a alone). */
    store("chat:paged", 96, 96);
    const char *last;
    html = frames_through(a, "m-0096", &last);
    assert_shows(last, 1, 96, false);
    free(html);
    char *frames = frames_through(b, "m-0096", &last);
    ck_assert_msg(!shows(frames, 45), "b was sent %.400s", frames);
    assert_shows(last, 47, 96, true);
    free(frames);

    /* Nothing older: a's load changes nothing. */
    azu(a, 5, "component_event", "chat:paged", "load_history");
    expect_reply(a, 5);
    store("chat:paged", 97, 97);
    html = frames_through(a, "m-0097", &last);
    assert_shows(last, 1, 97, false);
    free(html);

    /* A viewer of Spark's frames on the other instance gets its page as a
     * patch that inserts it. */
    it_ws *c = open_ws(port_b, "/spark");
    send_text(c, "{\"t\":\"join\",\"ref\":1,\"cid\":\"chat:paged\"}");
    html = expect(c, "\"t\":\"render\"");
    assert_shows(html, 48, 97, true);
    free(html);
    free(expect(c, "\"ref\":1,\"ok\":true"));
    send_text(c, "{\"t\":\"event\",\"ref\":2,\"cid\":\"chat:paged\",\"e\":\"load_history\"}");
    free(expect(c, "\"ref\":2,\"ok\":true"));
    html = expect(c, "\"t\":\"patch\"");
    ck_assert_msg(shows(html, 28) && shows(html, 47) && !shows(html, 27) && !shows(html, 48), "%s",
                  html);
    free(html);

    /* a leaves: its pages go; joining again shows the recent ones. */
    azu(a, 6, "component_leave", "chat:paged", NULL);
    expect_reply(a, 6);
    html = azu_join(a, "chat:paged", 7);
    assert_shows(html, 48, 97, true);
    free(html);

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
    it_ws *a = open_ws(port_a, "/spark?protocol=azu");
    char *html = azu_join(a, "chat:big", 1);
    assert_shows(html, 1051, 1100, true);
    free(html);
    for (int page = 1; page <= 50; page++) {
        html = load_page(a, "chat:big", 1 + page);
        assert_shows(html, 1051 - 20 * page, 1100, page < 50);
        free(html);
    }
    azu(a, 60, "component_event", "chat:big", "load_history");
    expect_reply(a, 60);
    store("chat:big", 1101, 1101);
    const char *last;
    html = frames_through(a, "m-1101", &last);
    assert_shows(last, 52, 1101, false);
    free(html);
    it_ws_close(a);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(a_room_with_no_messages_offers_none) {
    it_pair_start(&pair, "room-pages-empty");
    it_ws *a = open_ws(port_a, "/spark?protocol=azu");
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

int main(void) {
    /* Retention would prune the bound test's room below what it pages. */
    setenv("SPARK_ROOM_HISTORY", "5000", 1);
    Suite *s = suite_create("room_pages");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_viewer_pages_back_and_the_others_do_not);
    tcase_add_test(tc, older_messages_stop_at_the_bound);
    tcase_add_test(tc, a_room_with_no_messages_offers_none);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
