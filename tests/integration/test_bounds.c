/*
 * test_bounds.c - what one client cannot make an instance hold: a shared
 * state past SPARK_MAX_STATE, a cache of every id anyone names past
 * SPARK_MAX_COMPONENTS, an id with control characters, and a render larger
 * than the connection's send queue, which fails alone while the
 * connection's other components go on.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void join(it_ws *ws, const char *cid, int ref) {
    char frame[256], reply[64];
    snprintf(frame, sizeof frame, "{\"t\":\"join\",\"ref\":%d,\"cid\":\"%s\"}", ref, cid);
    it_send(ws, frame);
    snprintf(reply, sizeof reply, "\"ref\":%d,\"ok\":true", ref);
    free(it_expect(ws, reply));
}

static void add_todo(it_ws *ws, const char *cid, int ref, int len) {
    char frame[1024], text[600];
    memset(text, 'x', (size_t)len);
    text[len] = '\0';
    snprintf(
        frame, sizeof frame,
        "{\"t\":\"event\",\"ref\":%d,\"cid\":\"%s\",\"e\":\"add_todo\",\"d\":{\"text\":\"%s\"}}",
        ref, cid, text);
    it_send(ws, frame);
}

START_TEST(a_state_past_max_state_is_refused_and_nothing_changes) {
    it_one o;
    it_one_start(&o, "bounds", (const char *const[]){"SPARK_MAX_STATE", "3000", NULL});
    it_ws *ws = it_ws_open(o.port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    join(ws, "todo:big", 1);
    int ref = 10;
    char *m = NULL;
    for (; ref < 40; ref++) { /* 400 bytes each: the 8th or so passes 3000 */
        add_todo(ws, "todo:big", ref, 400);
        char want[64];
        snprintf(want, sizeof want, "\"ref\":%d,", ref);
        m = it_expect(ws, want);
        if (strstr(m, "\"ok\":false")) break;
        free(m);
        m = NULL;
    }
    ck_assert_msg(m && strstr(m, "\"code\":\"too_large\""), "never refused: %s", m ? m : "");
    free(m);
    PGconn *pg = it_connect(o.db);
    char n[32], v[32];
    it_query_value(pg, "SELECT jsonb_array_length(state->'items') FROM spark.components", n,
                   sizeof n);
    it_query_value(pg, "SELECT version FROM spark.components", v, sizeof v);
    ck_assert_int_eq(atoi(n), ref - 10); /* every one before the refused one */
    ck_assert_int_eq(atoi(v), ref - 10);
    ck_assert_int_le(atoi(n) * 400, 3000);
    PQfinish(pg);
    it_ws_close(ws);
    it_one_stop(&o);
}
END_TEST

START_TEST(the_cache_keeps_at_most_max_components_that_nobody_views) {
    it_one o;
    it_one_start(&o, "bounds", (const char *const[]){"SPARK_MAX_COMPONENTS", "3", NULL});
    it_ws *ws = it_ws_open(o.port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    join(ws, "counter:viewed", 1);
    static char body[8192];
    for (int i = 0; i < 12; i++) {
        char path[64];
        snprintf(path, sizeof path, "/counter/named-%d", i);
        ck_assert_int_eq(it_http_get(o.port, path, body, sizeof body), 200);
    }
    ck_assert_int_eq(it_http_get(o.port, "/healthz", body, sizeof body), 200);
    const char *c = strstr(body, "\"components\":{\"cached\":");
    ck_assert_msg(c, "%s", body);
    int cached = atoi(c + strlen("\"components\":{\"cached\":"));
    ck_assert_msg(cached >= 1 && cached <= 3, "cached %d: %s", cached, body);
    /* The viewed one stayed, and still works. */
    it_send(ws, "{\"t\":\"event\",\"ref\":2,\"cid\":\"counter:viewed\",\"e\":\"increment\"}");
    free(it_expect(ws, "\"ref\":2,\"ok\":true"));
    free(it_expect(ws, "Count: 1"));
    it_ws_close(ws);
    it_one_stop(&o);
}
END_TEST

START_TEST(ids_with_control_characters_are_refused) {
    it_one o;
    it_one_start(&o, "bounds", NULL);
    it_ws *ws = it_ws_open(o.port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    it_send(ws, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:a\\nlevel=error event=forged\"}");
    free(it_expect(ws, "\"ref\":1,\"ok\":false,\"error\":{\"code\":\"unknown_component\""));
    it_send(ws, "{\"t\":\"join\",\"ref\":2,\"cid\":\"counter:a\\u0007b\"}");
    free(it_expect(ws, "\"ref\":2,\"ok\":false,\"error\":{\"code\":\"unknown_component\""));
    join(ws, "counter:a b", 3); /* printable, spaces included, is fine */
    it_ws_close(ws);
    it_one_stop(&o);
}
END_TEST

/* A render larger than the send queue would close the connection and every
 * component on it; instead that component gets an error. */
START_TEST(a_render_too_large_for_the_queue_fails_alone) {
    it_one o;
    it_one_start(&o, "bounds", (const char *const[]){"SPARK_MAX_QUEUE", "6000", NULL});
    it_ws *writer = it_ws_open(o.port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(writer);
    join(writer, "todo:huge", 1);
    for (int i = 0; i < 20; i++) {
        add_todo(writer, "todo:huge", 10 + i, 450);
        char want[64];
        snprintf(want, sizeof want, "\"ref\":%d,\"ok\":true", 10 + i);
        free(it_ws_recv_match(writer, want, 10000));
    }
    it_ws_close(writer);

    it_ws *ws = it_ws_open(o.port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    join(ws, "counter:small", 1);
    it_send(ws, "{\"t\":\"join\",\"ref\":2,\"cid\":\"todo:huge\"}");
    free(it_expect(ws, "\"ref\":2,\"ok\":false,\"error\":{\"code\":\"too_large\""));
    it_send(ws, "{\"t\":\"event\",\"ref\":3,\"cid\":\"counter:small\",\"e\":\"increment\"}");
    free(it_expect(ws, "\"ref\":3,\"ok\":true"));
    free(it_expect(ws, "Count: 1"));
    it_ws_close(ws);
    it_one_stop(&o);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bounds");
    TCase *tc = tcase_create("bounds");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_state_past_max_state_is_refused_and_nothing_changes);
    tcase_add_test(tc, the_cache_keeps_at_most_max_components_that_nobody_views);
    tcase_add_test(tc, ids_with_control_characters_are_refused);
    tcase_add_test(tc, a_render_too_large_for_the_queue_fails_alone);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
