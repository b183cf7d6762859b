/*
 * test_lifecycle.c - a component's hooks as a viewer meets them: on_mount
 * once its stored state has loaded and only for a join that succeeds,
 * on_unmount when it leaves, on_tick while viewed, on_event with its
 * flash and redirect reaching the client as docs/protocol.md says, and
 * redirects that would leave the site refused.
 *
 * This program serves its own component (it_serve): the hooks write a line
 * to the server's log, which the tests read, and into the view state,
 * which the render shows.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <spark/component.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECV_MS 5000

/* ---- the component ------------------------------------------------------- */

static void render(spark_html *h, const spark_view *v) {
    if (spark_state_bool(v, "broken", false)) {
        DIV(h, "onfocus", "x") {} /* refused by the attribute policy: the render fails */
        return;
    }
    DIV(h, "class", "hooks") {
        SPAN(h) { spark_textf(h, "n=%lld", spark_state_int(v, "n", 0)); }
        SPAN(h) { spark_textf(h, "mounted at n=%lld", spark_local_int(v, "mounted_at", -1)); }
        SPAN(h) { spark_textf(h, "ticks=%lld", spark_local_int(v, "ticks", 0)); }
    }
}

static void hook_line(const char *hook, const spark_view *v) {
    fprintf(stderr, "hook %s %s n=%lld ticks=%lld\n", hook, spark_component_id(v),
            spark_state_int(v, "n", 0), spark_local_int(v, "ticks", 0));
    fflush(stderr);
}

static void on_mount(spark_event *e) {
    hook_line("mount", e);
    spark_local_set_int(e, "mounted_at", spark_state_int(e, "n", 0));
}

static void on_unmount(const spark_view *v) { hook_line("unmount", v); }

static void on_tick(spark_event *e) {
    long long ticks = spark_local_int(e, "ticks", 0);
    if (ticks < 3) spark_local_set_int(e, "ticks", ticks + 1);
}

static int on_event(spark_event *e) {
    if (spark_event_is(e, "bump")) return spark_state_add(e, "n", 1);
    if (spark_event_is(e, "save")) {
        spark_flash(e, "success", "Saved");
        return spark_state_add(e, "n", 1);
    }
    if (spark_event_is(e, "go")) {
        spark_redirect(e, spark_data_str(e, "url"));
        return SPARK_OK;
    }
    return SPARK_UNKNOWN_EVENT;
}

SPARK_COMPONENT(hooks, .render = render, .on_event = on_event, .on_mount = on_mount,
                .on_unmount = on_unmount, .on_tick = on_tick, .tick_ms = 40,
                .initial_state = "{\"n\":0}");

/* ---- helpers ---------------------------------------------------------------- */

static it_one one;

static it_ws *open_spark(void) {
    int status;
    it_ws *ws = it_ws_open(one.port, "/spark", NULL, &status);
    ck_assert_msg(ws, "upgrade of /spark refused with %d", status);
    return ws;
}

static void join(it_ws *ws, const char *cid, int ref) {
    char frame[256];
    snprintf(frame, sizeof frame, "{\"t\":\"join\",\"ref\":%d,\"cid\":\"%s\"}", ref, cid);
    it_send(ws, frame);
}

/* Sends an event and returns every frame up to and including its reply,
 * concatenated (malloc'd). */
static char *event_frames(it_ws *ws, const char *cid, int ref, const char *name, const char *d) {
    char frame[512], reply[64];
    snprintf(frame, sizeof frame,
             "{\"t\":\"event\",\"ref\":%d,\"cid\":\"%s\",\"e\":\"%s\",\"d\":%s}", ref, cid, name,
             d ? d : "{}");
    it_send(ws, frame);
    snprintf(reply, sizeof reply, "\"t\":\"reply\",\"ref\":%d,", ref);
    char *all = it_ws_recv_through(ws, reply, RECV_MS);
    ck_assert_msg(all, "no reply to %s", name);
    return all;
}

/* How many lines of the server's log contain `needle`. */
static int log_count(const char *needle) {
    FILE *f = fopen(one.log, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Waits until the log has `count` lines with `needle`. */
static void wait_log(const char *needle, int count) {
    long long deadline = it_now_ms() + RECV_MS;
    while (log_count(needle) < count && it_now_ms() < deadline)
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL); /* between polls */
    ck_assert_msg(log_count(needle) == count, "%d lines with \"%s\", not %d (see %s)",
                  log_count(needle), needle, count, one.log);
}

/* Starts the server, then runs `sql` on its database. */
static void start_with(const char *tag, const char *sql) {
    it_one_start(&one, tag, NULL);
    PGconn *pg = it_connect(one.db);
    PQclear(it_exec(pg, sql));
    PQfinish(pg);
}

/* ---- the tests ---------------------------------------------------------------- */

START_TEST(mount_runs_once_the_stored_state_has_loaded) {
    start_with("lifecycle-mount", "INSERT INTO spark.components (id, state) VALUES "
                                  "('hooks:stored', '{\"n\":5}')");
    it_ws *ws = open_spark();
    join(ws, "hooks:stored", 1);
    char *first = it_expect(ws, "\"t\":\"render\"");
    ck_assert_msg(strstr(first, "mounted at n=5"), "on_mount ran before the state: %s", first);
    free(first);
    it_expect_free(ws, "\"ref\":1,\"ok\":true");
    wait_log("hook mount hooks:stored n=5", 1);
    ck_assert_int_eq(log_count("hook mount"), 1);
    /* Ticks change the view state, while viewed, and stop where the hook does. */
    it_expect_free(ws, "ticks=3");
    /* Joining again starts over: the old viewer unmounts, a new one mounts. */
    join(ws, "hooks:stored", 2);
    it_expect_free(ws, "\"ref\":2,\"ok\":true");
    wait_log("hook unmount hooks:stored n=5 ticks=3", 1);
    wait_log("hook mount hooks:stored", 2);
    /* Leaving unmounts, with the view state it had. */
    it_expect_free(ws, "ticks=3");
    it_send(ws, "{\"t\":\"leave\",\"ref\":3,\"cid\":\"hooks:stored\"}");
    it_expect_free(ws, "\"ref\":3,\"ok\":true");
    wait_log("hook unmount hooks:stored n=5 ticks=3", 2);
    it_ws_close(ws);
    it_one_stop(&one);
}
END_TEST

START_TEST(a_join_that_fails_neither_mounts_nor_unmounts) {
    start_with("lifecycle-fail", "INSERT INTO spark.components (id, state) VALUES "
                                 "('hooks:broken', '{\"broken\":true}')");
    it_ws *ws = open_spark();
    join(ws, "hooks:broken", 1);
    it_expect_free(ws, "\"ref\":1,\"ok\":false,\"error\":{\"code\":\"render_failed\"");
    /* An unknown type fails before anything loads. */
    join(ws, "nosuch:x", 2);
    it_expect_free(ws, "\"ref\":2,\"ok\":false,\"error\":{\"code\":\"unknown_component\"");
    /* A join that succeeds after them on the same connection: its mount is
     * logged after theirs would have been. */
    join(ws, "hooks:fine", 3);
    it_expect_free(ws, "\"ref\":3,\"ok\":true");
    wait_log("hook mount hooks:fine", 1);
    it_ws_close(ws);
    wait_log("hook unmount hooks:fine", 1);
    ck_assert_int_eq(log_count("hook mount hooks:broken"), 0);
    ck_assert_int_eq(log_count("hook unmount hooks:broken"), 0);
    ck_assert_int_eq(log_count("hook mount"), 1);
    ck_assert_int_eq(log_count("hook unmount"), 1);
    it_one_stop(&one);
}
END_TEST

START_TEST(events_flash_and_redirect_reach_their_sender_only) {
    it_one_start(&one, "lifecycle-events", NULL);
    it_ws *ws = open_spark(), *other = open_spark();
    join(ws, "hooks:ev", 1);
    it_expect_free(ws, "\"ref\":1,\"ok\":true");
    join(other, "hooks:ev", 1);
    it_expect_free(other, "\"ref\":1,\"ok\":true");

    char *frames = event_frames(ws, "hooks:ev", 2, "save", NULL);
    ck_assert_msg(strstr(frames, "\"ref\":2,\"ok\":true"), "%s", frames);
    free(frames);
    it_expect_free(ws, "{\"t\":\"flash\",\"cid\":\"hooks:ev\",\"level\":\"success\","
                       "\"message\":\"Saved\"}");
    /* The other viewer sees the change, not the flash. */
    char *patch = it_expect(other, "n=1");
    ck_assert_ptr_null(strstr(patch, "flash"));
    free(patch);

    frames = event_frames(ws, "hooks:ev", 3, "go", "{\"url\":\"/next?x=1\"}");
    free(frames);
    it_expect_free(ws, "{\"t\":\"redirect\",\"url\":\"/next?x=1\"}");

    /* Off-site: refused. The event itself succeeds; no redirect is sent
     * (a later flash shows the frames in between). */
    const char *offsite[] = {"https://evil.example/", "//evil.example/", "/\\\\evil.example",
                             "javascript:alert(1)", "next"};
    for (int i = 0; i < 5; i++) {
        char d[128];
        snprintf(d, sizeof d, "{\"url\":\"%s\"}", offsite[i]);
        frames = event_frames(ws, "hooks:ev", 10 + i, "go", d);
        ck_assert_msg(strstr(frames, "\"ok\":true"), "%s", frames);
        free(frames);
        frames = event_frames(ws, "hooks:ev", 20 + i, "save", NULL);
        char *flash = it_expect(ws, "\"t\":\"flash\"");
        ck_assert_msg(!strstr(frames, "redirect"), "%s redirected: %s", offsite[i], frames);
        free(flash);
        free(frames);
    }
    ck_assert_int_eq(log_count("component.redirect_refused"), 5);
    /* The other viewer saw every change (n=6 after six saves), never a
     * flash or a redirect. */
    for (;;) {
        char *m = it_ws_recv(other, RECV_MS);
        ck_assert_msg(m, "the other viewer never saw n=6");
        ck_assert_msg(!strstr(m, "\"t\":\"flash\"") && !strstr(m, "\"t\":\"redirect\""), "%s", m);
        bool last = strstr(m, "n=6") != NULL;
        free(m);
        if (last) break;
    }
    it_ws_close(ws);
    it_ws_close(other);
    it_one_stop(&one);
}
END_TEST

int main(int argc, char **argv) {
    if (it_serve(argc, argv)) return spark_main(argc, argv);
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("hooks");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mount_runs_once_the_stored_state_has_loaded);
    tcase_add_test(tc, a_join_that_fails_neither_mounts_nor_unmounts);
    tcase_add_test(tc, events_flash_and_redirect_reach_their_sender_only);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
