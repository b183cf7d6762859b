/*
 * test_idempotent.c - events that carry an id are applied once. A client
 * that lost its connection cannot know whether its event was stored, so it
 * sends it again with the same id, perhaps to another instance: the second
 * sending is answered ok with the version the first produced, and the
 * history has one row.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static it_ws *joined(int port, const char *cid) {
    it_ws *ws = it_ws_open(port, "/spark", NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    char frame[256];
    snprintf(frame, sizeof frame, "{\"t\":\"join\",\"ref\":1,\"cid\":\"%s\"}", cid);
    ck_assert_int_eq(it_ws_send_text(ws, frame), 0);
    free(it_expect(ws, "\"ref\":1,\"ok\":true"));
    return ws;
}

static void add(it_ws *ws, int ref, const char *id, const char *text) {
    char frame[512];
    snprintf(frame, sizeof frame,
             "{\"t\":\"event\",\"ref\":%d,\"cid\":\"todo:idem\",\"e\":\"add_todo\",\"id\":\"%s\","
             "\"d\":{\"text\":\"%s\"}}",
             ref, id, text);
    ck_assert_int_eq(it_ws_send_text(ws, frame), 0);
}

START_TEST(the_same_id_on_two_instances_is_applied_once) {
    it_pair pair;
    it_pair_start(&pair, "idempotent");
    it_ws *a = joined(pair.port[0], "todo:idem"), *b = joined(pair.port[1], "todo:idem");

    add(a, 2, "evt-1", "milk");
    free(it_expect(a, "\"ref\":2,\"ok\":true"));
    /* Resent elsewhere, as after a reconnect: ok, with the version it made. */
    add(b, 7, "evt-1", "milk");
    char *m = it_expect(b, "\"ref\":7,");
    ck_assert_msg(strstr(m, "\"ok\":true,\"v\":1"), "%s", m);
    free(m);
    /* And again on the first connection, in one batch with a new event. */
    add(a, 3, "evt-1", "milk");
    add(a, 4, "evt-2", "eggs");
    free(it_expect(a, "\"ref\":3,\"ok\":true,\"v\":1"));
    free(it_expect(a, "\"ref\":4,\"ok\":true"));

    PGconn *pg = it_connect(pair.db);
    char n[32];
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT count(*) FROM spark.events WHERE component_id = "
                                    "'todo:idem' AND event = 'add_todo'",
                                    n, sizeof n),
                     "2");
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT string_agg(x->>'text', ',') FROM spark.components, "
                                    "jsonb_array_elements(state->'items') x WHERE id = 'todo:idem'",
                                    n, sizeof n),
                     "milk,eggs");
    PQfinish(pg);
    /* An id that is not a short string is refused. */
    ck_assert_int_eq(it_ws_send_text(a, "{\"t\":\"event\",\"ref\":9,\"cid\":\"todo:idem\","
                                        "\"e\":\"add_todo\",\"id\":5,\"d\":{\"text\":\"x\"}}"),
                     0);
    free(it_expect(a, "\"ref\":9,\"ok\":false,\"error\":{\"code\":\"invalid_message\""));
    it_ws_close(a);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    Suite *s = suite_create("idempotent");
    TCase *tc = tcase_create("idempotent");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_same_id_on_two_instances_is_applied_once);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
