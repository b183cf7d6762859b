/*
 * test_own_html.c - an app's own pages: live roots inside a route's own
 * HTML (spark_respond_live), rendered on the server with props that seed a
 * component never written and never overwrite a stored one, live on both
 * instances; and the app's web root laid over the runtime's.
 *
 * This program serves its own component and routes (it_serve).
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <spark/component.h>
#include <spark/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

#define RECV_MS 5000

/* ---- the app --------------------------------------------------------------- */

static void render(spark_html *h, const spark_view *v) {
    P(h) { spark_textf(h, "Count: %lld", spark_state_int(v, "count", 0)); }
}

static int on_event(spark_event *e) {
    if (spark_event_is(e, "increment")) return spark_state_add(e, "count", 1);
    return SPARK_UNKNOWN_EVENT;
}

SPARK_COMPONENT(tally, .render = render, .on_event = on_event,
                .initial_state = "{\"count\":0,\"step\":1}");

static void home(spark_request *req) {
    static const spark_live_root roots[] = {{.id = "tally:a", .props = "{\"count\":10}"},
                                            {.id = "tally:b"},
                                            {.id = "tally:c", .props = "{\"count\":10}"}};
    spark_respond_live(req,
                       "<!doctype html><title>Mine</title>\n"
                       "<div id=\"a\"><!--spark-live--></div>\n"
                       "<div id=\"b\"><!--spark-live--></div>\n"
                       "<div id=\"c\"><!--spark-live--></div>\n<footer>end</footer>\n",
                       roots, 3);
}
SPARK_ROUTE(home, .method = SPARK_GET, .path = "/home", .handler = home);

static void too_few_markers(spark_request *req) {
    static const spark_live_root roots[] = {{.id = "tally:a"}, {.id = "tally:b"}};
    spark_respond_live(req, "<p><!--spark-live--></p>", roots, 2);
}
SPARK_ROUTE(too_few, .method = SPARK_GET, .path = "/too-few", .handler = too_few_markers);

static void unknown_type(spark_request *req) {
    static const spark_live_root root = {.id = "nosuch:x"};
    spark_respond_live(req, "<p><!--spark-live--></p>", &root, 1);
}
SPARK_ROUTE(unknown, .method = SPARK_GET, .path = "/unknown", .handler = unknown_type);

static void bad_props(spark_request *req) {
    static const spark_live_root root = {.id = "tally:d", .props = "[1]"};
    spark_respond_live(req, "<p><!--spark-live--></p>", &root, 1);
}
SPARK_ROUTE(bad_props, .method = SPARK_GET, .path = "/bad-props", .handler = bad_props);

/* ---- helpers ----------------------------------------------------------------- */

static it_pair pair;
static char body[65536];

static const char *value(const char *sql) {
    static char out[4096];
    PGconn *pg = it_connect(pair.db);
    it_query_value(pg, sql, out, sizeof out);
    PQfinish(pg);
    return out;
}

static void assert_has(const char *needle) {
    ck_assert_msg(strstr(body, needle), "no %s in:\n%s", needle, body);
}

/* Joins at version `v` and returns every frame up to the reply. */
static char *join_at(it_ws *ws, const char *cid, long long v) {
    char frame[256];
    snprintf(frame, sizeof frame, "{\"t\":\"join\",\"ref\":1,\"cid\":\"%s\",\"v\":%lld}", cid, v);
    ck_assert_int_eq(it_ws_send_text(ws, frame), 0);
    char *all = it_ws_recv_through(ws, "\"t\":\"reply\"", RECV_MS);
    ck_assert_msg(all, "no reply to the join");
    return all;
}

/* ---- the tests ----------------------------------------------------------------- */

START_TEST(live_roots_in_a_routes_own_html) {
    it_pair_start(&pair, "own-html");
    PGconn *pg = it_connect(pair.db);
    PQclear(it_exec(pg, "INSERT INTO spark.components (id, state) VALUES ('tally:c', "
                        "'{\"count\":5}')"));
    PQfinish(pg);

    /* The components are not cached yet: the answer waits for their
     * states, and for a's props to be stored. */
    ck_assert_int_eq(it_http_get(pair.port[0], "/home", body, sizeof body), 200);
    assert_has("<!doctype html><title>Mine</title>\n<div id=\"a\"><div spark-component=\"tally:a\" "
               "spark-version=\"1\"><p>Count: 10</p></div></div>\n");
    assert_has("<div id=\"b\"><div spark-component=\"tally:b\" spark-version=\"0\"><p>Count: "
               "0</p></div></div>\n");
    /* Props never overwrite a stored state. */
    assert_has("<div id=\"c\"><div spark-component=\"tally:c\" spark-version=\"1\"><p>Count: "
               "5</p></div></div>\n<footer>end</footer>\n");
    ck_assert_ptr_null(strstr(body, "<!--spark-live-->"));
    /* The props are a's first version, over the type's initial state. */
    ck_assert_str_eq(value("SELECT version || ' ' || state::text FROM spark.components "
                           "WHERE id = 'tally:a'"),
                     "1 {\"step\": 1, \"count\": 10}");
    ck_assert_str_eq(value("SELECT string_agg(component_id || ' ' || event, ',') "
                           "FROM spark.events WHERE event = 'mount'"),
                     "tally:a mount");
    ck_assert_str_eq(value("SELECT count(*) FROM spark.components WHERE id = 'tally:b'"), "0");

    /* The other instance shows the stored version, and writes nothing. */
    ck_assert_int_eq(it_http_get(pair.port[1], "/home", body, sizeof body), 200);
    assert_has("<div spark-component=\"tally:a\" spark-version=\"1\"><p>Count: 10</p></div>");
    ck_assert_str_eq(value("SELECT count(*) FROM spark.events WHERE event = 'mount'"), "1");

    /* The root goes live on b at the page's version: nothing to send. */
    int status;
    it_ws *ws = it_ws_open(pair.port[1], "/spark", NULL, &status);
    ck_assert_msg(ws, "upgrade refused with %d", status);
    char *frames = join_at(ws, "tally:a", 1);
    ck_assert_msg(strstr(frames, "\"ok\":true") && !strstr(frames, "\"t\":\"render\"") &&
                      !strstr(frames, "\"t\":\"patch\""),
                  "%s", frames);
    free(frames);
    ck_assert_int_eq(
        it_ws_send_text(ws, "{\"t\":\"event\",\"ref\":2,\"cid\":\"tally:a\",\"e\":\"increment\"}"),
        0);
    char *patch = it_ws_recv_match(ws, "Count: 11", RECV_MS);
    ck_assert_ptr_nonnull(patch);
    free(patch);
    /* ... and a sees it (its notification arrives a moment later). */
    long long deadline = it_now_ms() + RECV_MS;
    do
        ck_assert_int_eq(it_http_get(pair.port[0], "/home", body, sizeof body), 200);
    while (!strstr(body, "Count: 11") && it_now_ms() < deadline);
    assert_has("<div spark-component=\"tally:a\" spark-version=\"2\"><p>Count: 11</p></div>");
    it_ws_close(ws);

    /* The app's mistakes are its own 500s, logged. */
    ck_assert_int_eq(it_http_get(pair.port[0], "/too-few", body, sizeof body), 500);
    ck_assert_int_eq(it_http_get(pair.port[0], "/unknown", body, sizeof body), 500);
    ck_assert_int_eq(it_http_get(pair.port[0], "/bad-props", body, sizeof body), 500);
    ck_assert_str_eq(value("SELECT count(*) FROM spark.components WHERE id = 'tally:d'"), "0");
    it_pair_stop(&pair);
}
END_TEST

#define SIGNING "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VERIFY  "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"

/* GET /home with a bearer token granting `scopes` (NULL: no token). */
static int get_home_as(int port, const char *const *scopes, size_t n) {
    char request[2048], auth[1600] = "";
    if (scopes) {
        spark_auth_signing_key *key;
        char err[256], *token = NULL;
        ck_assert_int_eq(spark_auth_signing_key_parse(SIGNING, &key, err, sizeof err), 0);
        ck_assert_int_eq(spark_token_mint(key, "ada", "Ada", 600, scopes, n, (int64_t)time(NULL),
                                          &token, err, sizeof err),
                         0);
        spark_auth_signing_key_free(key);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
        free(token);
    }
    snprintf(request, sizeof request, "GET /home HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", auth);
    return it_http_request(port, request, body, sizeof body);
}

START_TEST(the_visitor_needs_every_roots_scope) {
    it_one one;
    const char *env[] = {"SPARK_AUTH", "on", "SPARK_SIGNING_KEY", SIGNING, "SPARK_VERIFY_KEYS",
                         VERIFY,       NULL};
    it_one_start(&one, "own-html-auth", env);
    ck_assert_int_eq(get_home_as(one.port, NULL, 0), 401);
    const char *two[] = {"component:tally:a", "component:tally:b"};
    ck_assert_int_eq(get_home_as(one.port, two, 2), 403);
    /* Refused before anything loads: a's props were not stored. */
    PGconn *pg = it_connect(one.db);
    char n[16];
    ck_assert_str_eq(it_query_value(pg, "SELECT count(*) FROM spark.components", n, sizeof n), "0");
    PQfinish(pg);
    const char *three[] = {"component:tally:a", "component:tally:b", "component:tally:c"};
    ck_assert_int_eq(get_home_as(one.port, three, 3), 200);
    ck_assert_msg(strstr(body, "spark-component=\"tally:c\""), "%s", body);
    it_one_stop(&one);
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(the_apps_web_root_adds_to_the_runtimes) {
    /* The runtime's web root is found as ./web (a checkout) or the
     * installed one: here, the source's. */
    ck_assert_int_eq(chdir(it_source_dir), 0);
    char dir[] = "/tmp/spark-own-web-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/css", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    write_file(dir, "app.js", "console.log('mine');\n");
    write_file(dir, "index.html", "<p>my index</p>\n");
    write_file(dir, "css/spark.css", "/* my own spark.css */\n");
    char outside[1100];
    snprintf(outside, sizeof outside, "%s/outside", dir);
    ck_assert_int_eq(symlink("/etc/hostname", outside), 0);

    it_one one;
    const char *env[] = {"SPARK_WEB_ROOT", dir, NULL};
    it_one_start(&one, "own-web", env);
    ck_assert_int_eq(it_http_get(one.port, "/app.js", body, sizeof body), 200);
    ck_assert_str_eq(body, "console.log('mine');\n");
    ck_assert_int_eq(it_http_get(one.port, "/", body, sizeof body), 200);
    ck_assert_str_eq(body, "<p>my index</p>\n");
    /* The app's file wins... */
    ck_assert_int_eq(it_http_get(one.port, "/css/spark.css", body, sizeof body), 200);
    ck_assert_str_eq(body, "/* my own spark.css */\n");
    /* ... and what it lacks is the runtime's. */
    ck_assert_int_eq(it_http_get(one.port, "/js/spark.js", body, sizeof body), 200);
    ck_assert_msg(strstr(body, "spark-component"), "not the client: %.200s", body);
    ck_assert_int_eq(it_http_get(one.port, "/js/patch.js", body, sizeof body), 200);
    /* Neither lets a path out of its root. */
    ck_assert_int_eq(it_http_get(one.port, "/outside", body, sizeof body), 404);
    ck_assert_int_eq(it_http_get(one.port, "/../README.md", body, sizeof body), 404);
    ck_assert_int_eq(it_http_get(one.port, "/nothing.js", body, sizeof body), 404);
    it_one_stop(&one);
    unlink(outside);
    snprintf(sub, sizeof sub, "%s/css/spark.css", dir);
    unlink(sub);
    snprintf(sub, sizeof sub, "%s/css", dir);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/app.js", dir);
    unlink(sub);
    snprintf(sub, sizeof sub, "%s/index.html", dir);
    unlink(sub);
    rmdir(dir);
}
END_TEST

int main(int argc, char **argv) {
    if (it_serve(argc, argv)) return spark_main(argc, argv);
    Suite *s = suite_create("own_html");
    TCase *tc = tcase_create("own html");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, live_roots_in_a_routes_own_html);
    tcase_add_test(tc, the_visitor_needs_every_roots_scope);
    tcase_add_test(tc, the_apps_web_root_adds_to_the_runtimes);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
