/*
 * test_history.c - the history page (<spark/history.h>) on two real
 * instances with tokens on: its answer (versions, who, when, the event,
 * the diff, the server render of a past version, paging), refusals (401
 * signed out, 403 without the component's or the revert scope, 403 for a
 * post from another site), bad and unknown versions, and a revert posted
 * on one instance: a new version with the visitor as its actor, seen live
 * by a viewer on the other.
 */
#include "auth.h"
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIGNING "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VERIFY  "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"

static it_pair pair;
#define port_a pair.port[0]
#define port_b pair.port[1]

static char body[262144];

/* Two instances that verify tokens, sign-in off (a signed-out visitor
 * gets 401, not a redirect). */
static void start(const char *tag) {
    setenv("SPARK_SIGNING_KEY", SIGNING, 1);
    setenv("SPARK_VERIFY_KEYS", VERIFY, 1);
    setenv("SPARK_AUTH", "on", 1);
    unsetenv("SPARK_DEMO_LOGIN");
    it_pair_start(&pair, tag);
}

/* A token for user `sub` granting the NULL-terminated scopes. */
static char *token(const char *sub, const char *const *scopes) {
    spark_auth_signing_key *key;
    char err[256];
    ck_assert_int_eq(spark_auth_signing_key_parse(SIGNING, &key, err, sizeof err), 0);
    size_t n = 0;
    while (scopes[n])
        n++;
    char *t = NULL;
    ck_assert_int_eq(
        spark_token_mint(key, sub, sub, 600, scopes, n, (int64_t)time(NULL), &t, err, sizeof err),
        0);
    spark_auth_signing_key_free(key);
    return t;
}

/* GET `path` with the session cookie holding `tok` (NULL: none). */
static int get(int port, const char *path, const char *tok) {
    char req[8192];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%sConnection: close\r\n\r\n", path, port,
             tok ? "Cookie: " SPARK_AUTH_COOKIE "=" : "", tok ? tok : "", tok ? "\r\n" : "");
    return it_http_request(port, req, body, sizeof body);
}

/* POSTs `form` to `path` as a page of `origin` would (the whole response
 * in body). */
static int post(int port, const char *path, const char *tok, const char *origin, const char *form) {
    char req[8192];
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: %s\r\n"
             "Cookie: " SPARK_AUTH_COOKIE "=%s\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             path, port, origin, tok ? tok : "", strlen(form), form);
    return it_http_exchange(port, req, body, sizeof body);
}

static int post_here(int port, const char *path, const char *tok, const char *form) {
    char origin[64];
    snprintf(origin, sizeof origin, "http://127.0.0.1:%d", port);
    return post(port, path, tok, origin, form);
}

static void contains(const char *needle) {
    ck_assert_msg(strstr(body, needle), "no %s in:\n%.3000s", needle, body);
}

static void lacks(const char *needle) {
    ck_assert_msg(!strstr(body, needle), "%s in:\n%.3000s", needle, body);
}

/* Writes `n` versions of counter:`key` (count 1..n) as alice, then one as
 * bob with an event name and data that need escaping. */
static void counter_history(const char *key, int n) {
    PGconn *pg = it_connect(pair.db);
    char sql[512];
    for (int i = 1; i <= n; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT spark.set_state('counter:%s', '{\"count\": %d, \"step\": 1}',"
                 " 'increment', 'alice')",
                 key, i);
        PQclear(it_exec(pg, sql));
    }
    snprintf(sql, sizeof sql,
             "SELECT spark.set_state('counter:%s', '{\"count\": 100, \"step\": 1}',"
             " '<b>set</b>', '<i>bob</i>', '{\"note\": \"</code><script>x</script>\"}')",
             key);
    PQclear(it_exec(pg, sql));
    PQfinish(pg);
}

START_TEST(the_page_lists_versions_and_renders_a_past_one) {
    start("history-page");
    counter_history("home", 3);
    const char *scopes[] = {"component:*", NULL};
    char *t = token("ada", scopes);

    ck_assert_int_eq(get(port_a, "/history/counter/home", t), 200);
    contains("<title>History: counter:home");
    /* The live root of the component now, joined without a version. */
    contains("spark-component=\"counter:home\">");
    contains("Count: 100");
    /* The slider over versions 1..4, at the latest. */
    contains("<input type=\"range\" name=\"v\" min=\"1\" max=\"4\" value=\"4\"");
    /* Every version: who, the event, the diff from the one before. */
    contains("<tr data-version=\"2\"><td><a href=\"?v=2\">2</a></td><td>alice</td><td>");
    contains("<code>[{\"op\": \"replace\", \"path\": \"/count\", \"value\": 2}]</code>");
    /* What a writer chose is text, never markup. */
    contains("&lt;i&gt;bob&lt;/i&gt;");
    contains("&lt;b&gt;set&lt;/b&gt;");
    contains("&lt;/code&gt;&lt;script&gt;x&lt;/script&gt;");
    lacks("<script>x");
    lacks("<b>set");
    /* Without the revert scope there is no revert button. */
    lacks("Revert to version");

    /* ?v=2: the server's render of version 2, inert, in the page. */
    ck_assert_int_eq(get(port_b, "/history/counter/home?v=2", t), 200);
    contains("<div class=\"history-preview\" data-version=\"2\">");
    contains("<div class=\"history-render\" inert><div class=\"counter-widget\"><h2>Count: 2</h2>");
    contains("value=\"2\" aria-label=\"Version\"");
    /* The preview alone, as the slider asks for it. */
    ck_assert_int_eq(get(port_b, "/history/counter/home/at/1", t), 200);
    contains("Version <strong>1</strong> of 4: increment by alice");
    contains("<h2>Count: 1</h2>");
    lacks("<html");
    free(t);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(long_histories_come_in_pages) {
    start("history-pages");
    counter_history("long", 44); /* 45 versions */
    const char *scopes[] = {"component:counter:long", NULL};
    char *t = token("ada", scopes);
    ck_assert_int_eq(get(port_a, "/history/counter/long", t), 200);
    contains("<h2 class=\"history-range\">Versions 26 to 45</h2>");
    contains("<tr data-version=\"26\">");
    lacks("<tr data-version=\"25\">");
    contains("href=\"/history/counter/long?upto=25&amp;n=20\">Older</a>");
    lacks(">Newer</a>");
    ck_assert_int_eq(get(port_a, "/history/counter/long?upto=25&n=20", t), 200);
    contains("<h2 class=\"history-range\">Versions 6 to 25</h2>");
    contains(">Newer</a>");
    /* The first version of a page has its diff too (from the one before). */
    contains("<tr data-version=\"6\"><td><a href=\"?v=6\">6</a></td><td>alice</td>");
    ck_assert_int_eq(get(port_a, "/history/counter/long?upto=3&n=2", t), 200);
    contains("<h2 class=\"history-range\">Versions 2 to 3</h2>");
    lacks("<tr data-version=\"1\">");
    ck_assert_int_eq(get(port_a, "/history/counter/long?n=100", t), 200);
    contains("<h2 class=\"history-range\">Versions 1 to 45</h2>");
    /* An upto past the end is the latest. */
    ck_assert_int_eq(get(port_a, "/history/counter/long?upto=9999&n=5", t), 200);
    contains("<h2 class=\"history-range\">Versions 41 to 45</h2>");
    free(t);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(scopes_are_checked) {
    start("history-scopes");
    counter_history("guarded", 2);
    const char *path = "/history/counter/guarded";
    /* Signed out. */
    ck_assert_int_eq(get(port_a, path, NULL), 401);
    ck_assert_int_eq(get(port_a, "/history/counter/guarded/at/1", NULL), 401);
    ck_assert_int_eq(post_here(port_a, "/history/counter/guarded/revert", NULL, "version=1"), 401);
    /* Signed in without this component's scope. */
    const char *rooms[] = {"room:*", "revert:*", NULL},
               *other[] = {"component:counter:other", NULL};
    char *t_rooms = token("ada", rooms), *t_other = token("ada", other);
    ck_assert_int_eq(get(port_a, path, t_rooms), 403);
    ck_assert_int_eq(get(port_a, path, t_other), 403);
    ck_assert_int_eq(get(port_b, "/history/counter/guarded/at/1", t_other), 403);
    ck_assert_int_eq(post_here(port_a, "/history/counter/guarded/revert", t_rooms, "version=1"),
                     403);
    /* Reading, not reverting. */
    const char *read[] = {"component:counter:guarded", "revert:counter:other", NULL};
    char *t_read = token("ada", read);
    ck_assert_int_eq(get(port_a, path, t_read), 200);
    lacks("Revert to version");
    ck_assert_int_eq(post_here(port_a, "/history/counter/guarded/revert", t_read, "version=1"),
                     403);
    /* Both: the button, and a revert posted from another site is refused. */
    const char *both[] = {"component:counter:guarded", "revert:counter:guarded", NULL};
    char *t_both = token("ada", both);
    ck_assert_int_eq(get(port_a, "/history/counter/guarded?v=1", t_both), 200);
    contains("<form method=\"post\" class=\"history-revert\" "
             "action=\"/history/counter/guarded/revert\"><input type=\"hidden\" name=\"version\" "
             "value=\"1\"><button type=\"submit\">Revert to version 1</button></form>");
    ck_assert_int_eq(post(port_a, "/history/counter/guarded/revert", t_both, "https://evil.example",
                          "version=1"),
                     403);
    PGconn *pg = it_connect(pair.db);
    char v[32];
    ck_assert_str_eq(
        it_query_value(pg, "SELECT version FROM spark.components WHERE id = 'counter:guarded'", v,
                       sizeof v),
        "3");
    PQfinish(pg);
    free(t_rooms);
    free(t_other);
    free(t_read);
    free(t_both);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(bad_and_unknown_versions_are_refused) {
    start("history-bad");
    counter_history("b", 2);
    const char *scopes[] = {"component:*", "revert:*", NULL};
    char *t = token("ada", scopes);
    static const char *const bad_pages[] = {"/history/counter/b?v=abc",
                                            "/history/counter/b?v=0",
                                            "/history/counter/b?v=-1",
                                            "/history/counter/b?v=1e3",
                                            "/history/counter/b?v=1000000000000000",
                                            "/history/counter/b?upto=x",
                                            "/history/counter/b?n=0",
                                            "/history/counter/b?n=101",
                                            "/history/counter/b?n=ten",
                                            "/history/counter/b/at/abc",
                                            "/history/counter/b/at/0",
                                            "/history/counter/b/at/99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_pages / sizeof *bad_pages; i++)
        ck_assert_msg(get(port_a, bad_pages[i], t) == 400, "%s: %s", bad_pages[i], body);
    ck_assert_int_eq(get(port_a, "/history/counter/b?v=4", t), 404);
    contains("no such version");
    ck_assert_int_eq(get(port_a, "/history/counter/b/at/999999999999999", t), 404);
    ck_assert_int_eq(get(port_a, "/history/counter/nothing", t), 404);
    contains("no history");
    /* chat has no history page (apps/site.c enables counter and todo). */
    ck_assert_int_eq(get(port_a, "/history/chat/lobby", t), 404);
    char long_key[400];
    memset(long_key, 'k', 300);
    long_key[300] = '\0';
    char path[512];
    snprintf(path, sizeof path, "/history/counter/%s", long_key);
    ck_assert_int_eq(get(port_a, path, t), 404);

    const char *revert = "/history/counter/b/revert";
    ck_assert_int_eq(post_here(port_a, revert, t, "version=abc"), 400);
    ck_assert_int_eq(post_here(port_a, revert, t, "version="), 400);
    ck_assert_int_eq(post_here(port_a, revert, t, "other=1"), 400);
    ck_assert_int_eq(post_here(port_a, revert, t, "version=9"), 404);
    /* The deletion of a component is a version with no state to go back to. */
    PGconn *pg = it_connect(pair.db);
    PQclear(it_exec(pg, "DELETE FROM spark.components WHERE id = 'counter:b'"));
    ck_assert_int_eq(post_here(port_a, revert, t, "version=4"), 409);
    ck_assert_int_eq(get(port_a, "/history/counter/b?v=4", t), 200);
    contains("The component was deleted here.");
    lacks("spark-component=\"counter:b\""); /* nothing live: it does not exist */
    /* ... but an earlier version brings it back. */
    ck_assert_int_eq(post_here(port_a, revert, t, "version=1"), 303);
    char v[32];
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT state->>'count' FROM spark.components"
                                    " WHERE id = 'counter:b'",
                                    v, sizeof v),
                     "1");
    PQfinish(pg);
    free(t);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(a_revert_is_a_new_version_every_viewer_sees) {
    start("history-revert");
    counter_history("shared", 3); /* counts 1, 2, 3, 100 */
    const char *scopes[] = {"component:*", "revert:counter:shared", NULL};
    char *t = token("grace", scopes);

    /* A viewer of counter:shared on instance b. */
    char target[4400];
    snprintf(target, sizeof target, "/spark?token=%s", t);
    int status = 0;
    it_ws *ws = it_ws_open(port_b, target, NULL, &status);
    ck_assert_msg(ws, "upgrade refused with %d", status);
    ck_assert_int_eq(it_ws_send_text(ws, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:shared\"}"),
                     0);
    char *m = it_ws_recv_match(ws, "Count: 100", 5000);
    ck_assert_msg(m, "never rendered");
    free(m);

    /* Revert to version 2, on instance a. */
    ck_assert_int_eq(post_here(port_a, "/history/counter/shared/revert", t, "version=2"), 303);
    ck_assert_msg(strstr(body, "\r\nlocation: /history/counter/shared\r\n"), "%s", body);
    m = it_ws_recv_match(ws, "Count: 2", 5000);
    ck_assert_msg(m, "the viewer on b never saw the revert");
    ck_assert_msg(strstr(m, "\"v\":5"), "%s", m);
    free(m);
    it_ws_close(ws);

    /* Version 5: event revert, its data, who did it and where. */
    PGconn *pg = it_connect(pair.db);
    PGresult *r = it_exec(pg, "SELECT event, data::text, actor, instance,"
                              " state_after = spark.state_at('counter:shared', 2)"
                              " FROM (SELECT *, spark.state_at(component_id, version)"
                              " AS state_after FROM spark.events"
                              " WHERE component_id = 'counter:shared' AND version = 5) e");
    ck_assert_int_eq(PQntuples(r), 1);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "revert");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "{\"to_version\": 2}");
    ck_assert_str_eq(PQgetvalue(r, 0, 2), "grace");
    ck_assert_str_eq(PQgetvalue(r, 0, 3), "a");
    ck_assert_str_eq(PQgetvalue(r, 0, 4), "t");
    PQclear(r);
    PQfinish(pg);

    /* The page shows it, on either instance. */
    ck_assert_int_eq(get(port_b, "/history/counter/shared", t), 200);
    contains("<tr data-version=\"5\"><td><a href=\"?v=5\">5</a></td><td>grace</td>");
    contains("revert <code>{\"to_version\": 2}</code>");
    free(t);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("history");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_page_lists_versions_and_renders_a_past_one);
    tcase_add_test(tc, long_histories_come_in_pages);
    tcase_add_test(tc, scopes_are_checked);
    tcase_add_test(tc, bad_and_unknown_versions_are_refused);
    tcase_add_test(tc, a_revert_is_a_new_version_every_viewer_sees);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
