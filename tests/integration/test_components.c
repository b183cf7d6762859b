/*
 * test_components.c - live components on two sparkd instances sharing one
 * PostgreSQL: pages, the /spark protocol and its errors, propagation as
 * patches, stored state and history, concurrent increments, joins at old
 * versions, view state isolation, SQL writes reaching clients, and the
 * chat component meeting the chat channel, in a small room and a crowded
 * one.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECV_MS 5000

static it_pair pair;
#define db     pair.db
#define port_a pair.port[0]
#define port_b pair.port[1]

static it_ws *open_spark(int port) {
    int status;
    it_ws *ws = it_ws_open(port, "/spark", NULL, &status);
    ck_assert_msg(ws, "upgrade of /spark refused with %d", status);
    return ws;
}

/* Joins without a version and waits for the render and the reply. */
static char *join(it_ws *ws, const char *cid, int ref) {
    char frame[512], reply[64];
    snprintf(frame, sizeof frame, "{\"t\":\"join\",\"ref\":%d,\"cid\":\"%s\"}", ref, cid);
    it_send(ws, frame);
    char *render = it_expect(ws, "\"t\":\"render\"");
    snprintf(reply, sizeof reply, "\"ref\":%d,\"ok\":true", ref);
    it_expect_free(ws, reply);
    return render;
}

static void event(it_ws *ws, const char *cid, int ref, const char *name, const char *data) {
    char frame[1024];
    snprintf(frame, sizeof frame,
             "{\"t\":\"event\",\"ref\":%d,\"cid\":\"%s\",\"e\":\"%s\",\"d\":%s}", ref, cid, name,
             data ? data : "{}");
    it_send(ws, frame);
}

static void event_ok(it_ws *ws, const char *cid, int ref, const char *name, const char *data) {
    char reply[64];
    event(ws, cid, ref, name, data);
    snprintf(reply, sizeof reply, "\"ref\":%d,\"ok\":true", ref);
    it_expect_free(ws, reply);
}

static const char *value(PGconn *pg, const char *sql) {
    static char out[4096];
    return it_query_value(pg, sql, out, sizeof out);
}

/* GETs a page, coming back while the instance loads the component. */
static int get_page(int port, const char *path, char *body, size_t cap) {
    long long deadline = it_now_ms() + RECV_MS;
    int status;
    while ((status = it_http_get(port, path, body, cap)) == 303 && it_now_ms() < deadline)
        ;
    return status;
}

START_TEST(pages_render_before_the_socket) {
    it_pair_start(&pair, "components-pages");
    static char body[65536];
    ck_assert_int_eq(get_page(port_a, "/counter/home", body, sizeof body), 200);
    ck_assert_msg(strstr(body, "<div spark-component=\"counter:home\" spark-version=\"0\">"), "%s",
                  body);
    ck_assert_ptr_nonnull(strstr(body, "Count: 0"));
    ck_assert_ptr_nonnull(strstr(body, "/js/spark.js"));
    ck_assert_ptr_nonnull(strstr(body, "/css/spark.css"));
    ck_assert_int_eq(get_page(port_b, "/todo/groceries", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "0 items left"));
    ck_assert_ptr_null(strstr(body, "Clear completed"));
    ck_assert_int_eq(get_page(port_a, "/chat/lobby", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "spark-component=\"chat:lobby\""));

    /* A todo with markup in it is text, and completing it shows the button. */
    it_ws *ws = open_spark(port_a);
    free(join(ws, "todo:groceries", 1));
    event_ok(ws, "todo:groceries", 2, "add_todo", "{\"text\":\"<img src=x onerror=alert(1)>\"}");
    event_ok(ws, "todo:groceries", 3, "toggle", "{\"id\":\"1\"}");
    it_ws_close(ws);
    /* b learns of the change from its notification, a moment later. */
    long long deadline = it_now_ms() + RECV_MS;
    do
        ck_assert_int_eq(get_page(port_b, "/todo/groceries", body, sizeof body), 200);
    while (!strstr(body, "spark-version=\"2\"") && it_now_ms() < deadline);
    ck_assert_msg(strstr(body, "&lt;img src=x onerror=alert(1)&gt;"), "%s", body);
    ck_assert_ptr_null(strstr(body, "<img"));
    ck_assert_ptr_nonnull(strstr(body, "0 items left"));
    ck_assert_ptr_nonnull(strstr(body, "Clear completed"));
    ck_assert_ptr_nonnull(strstr(body, "spark-version=\"2\""));
    it_pair_stop(&pair);
}
END_TEST

START_TEST(bad_input_gets_error_codes_and_the_connection_stays) {
    it_pair_start(&pair, "components-bad");
    it_ws *ws = open_spark(port_a);
    it_send(ws, "not json");
    it_expect_free(ws, "\"code\":\"invalid_json\"");
    it_send(ws, "[1,2]");
    it_expect_free(ws, "\"code\":\"invalid_json\"");
    it_send(ws, "{\"t\":\"join\",\"ref\":\"x\",\"cid\":\"counter:a\"}");
    it_expect_free(ws, "\"code\":\"invalid_message\"");
    it_send(ws, "{\"t\":\"dance\",\"ref\":4,\"cid\":\"counter:a\"}");
    it_expect_free(ws, "\"ref\":4,\"ok\":false,\"error\":{\"code\":\"unknown_type\"");
    it_send(ws, "{\"t\":\"join\",\"ref\":5,\"cid\":\"nope:a\"}");
    it_expect_free(ws, "\"ref\":5,\"ok\":false,\"error\":{\"code\":\"unknown_component\"");
    it_send(ws, "{\"t\":\"join\",\"ref\":6,\"cid\":42}");
    it_expect_free(ws, "\"ref\":6,\"ok\":false,\"error\":{\"code\":\"invalid_message\"");
    event(ws, "counter:a", 7, "increment", NULL);
    it_expect_free(ws, "\"ref\":7,\"ok\":false,\"error\":{\"code\":\"not_joined\"");
    free(join(ws, "counter:a", 8));
    event(ws, "counter:a", 9, "explode", NULL);
    it_expect_free(ws, "\"ref\":9,\"ok\":false,\"error\":{\"code\":\"unknown_event\"");
    it_send(ws, "{\"t\":\"event\",\"ref\":10,\"cid\":\"counter:a\",\"e\":\"increment\",\"d\":[1]}");
    it_expect_free(ws, "\"ref\":10,\"ok\":false,\"error\":{\"code\":\"invalid_data\"");
    event(ws, "counter:a", 11, "set_step", "{\"value\":\"-4\"}");
    it_expect_free(ws, "\"ref\":11,\"ok\":false,\"error\":{\"code\":\"invalid_step\"");
    static char big[40000];
    memset(big, 'x', sizeof big - 1);
    memcpy(big, "{\"t\":\"event\",\"ref\":12,\"cid\":\"counter:a\",\"e\":\"", 45);
    it_send(ws, big);
    it_expect_free(ws, "\"code\":\"too_large\"");
    /* A todo over the limit is refused; an empty one is ignored. */
    free(join(ws, "todo:bad", 13));
    char text[700] = "{\"text\":\"";
    memset(text + 9, 'a', 600);
    strcpy(text + 609, "\"}");
    event(ws, "todo:bad", 14, "add_todo", text);
    it_expect_free(ws, "\"ref\":14,\"ok\":false,\"error\":{\"code\":\"too_long\"");
    event_ok(ws, "todo:bad", 15, "add_todo", "{\"text\":\"   \"}");
    /* Everything still works. */
    event_ok(ws, "counter:a", 16, "increment", NULL);
    it_expect_free(ws, "Count: 1");
    PGconn *pg = it_connect(db);
    ck_assert_str_eq(value(pg, "SELECT count(*) FROM spark.events"), "1");
    ck_assert_str_eq(value(pg, "SELECT count(*) FROM spark.components WHERE id = 'todo:bad'"), "0");
    /* A no-op event writes nothing. */
    event_ok(ws, "counter:a", 17, "reset", NULL);
    event_ok(ws, "counter:a", 18, "reset", NULL);
    ck_assert_str_eq(value(pg, "SELECT count(*) FROM spark.events"), "2");
    PQfinish(pg);
    it_ws_close(ws);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(an_event_reaches_both_instances_and_history_matches) {
    it_pair_start(&pair, "components-propagate");
    it_ws *a = open_spark(port_a), *b = open_spark(port_b);
    char *r = join(a, "counter:p", 1);
    ck_assert_ptr_nonnull(strstr(r, "Count: 0"));
    free(r);
    free(join(b, "counter:p", 1));
    event_ok(a, "counter:p", 2, "increment", NULL);
    char *pa = it_expect(a, "\"t\":\"patch\""), *pb = it_expect(b, "\"t\":\"patch\"");
    ck_assert_msg(strstr(pa, "\"v\":1") && strstr(pa, "Count: 1"), "a got %s", pa);
    ck_assert_msg(strstr(pb, "\"v\":1") && strstr(pb, "Count: 1"), "b got %s", pb);
    /* A patch is small: one text op, not the component. */
    ck_assert_msg(strstr(pb, "\"ops\":[[\"t\",[0,0,0],\"Count: 1\"]]"), "b got %s", pb);
    free(pa);
    free(pb);
    event_ok(b, "counter:p", 3, "set_step", "{\"value\":\"5\"}");
    event_ok(b, "counter:p", 4, "increment", NULL);
    /* Promptly, on an instance with nothing else to do: its patch must not
     * wait in a queue for the loop's next reason to wake. */
    char *p6 = it_ws_recv_match(a, "Count: 6", 1000);
    ck_assert_msg(p6, "the patch for Count: 6 did not reach a within a second");
    free(p6);
    PGconn *pg = it_connect(db);
    ck_assert_str_eq(value(pg,
                           "SELECT version || ' ' || (state->>'count') || ' ' || (state->>'step')"
                           " FROM spark.components WHERE id = 'counter:p'"),
                     "3 6 5");
    ck_assert_str_eq(value(pg, "SELECT string_agg(version || ':' || event || ':' || instance || ':'"
                               " || (state->>'count') || ':' || coalesce(data::text, ''), ','"
                               " ORDER BY version) FROM spark.events"
                               " WHERE component_id = 'counter:p'"),
                     "1:increment:a:1:{},2:set_step:b:1:{\"value\": \"5\"},3:increment:b:6:{}");
    ck_assert_str_eq(value(pg, "SELECT count(DISTINCT actor) FROM spark.events"), "2");
    PQfinish(pg);
    it_ws_close(a);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(two_instances_forty_clients_two_thousand_increments) {
    it_pair_start(&pair, "components-load");
    enum { CLIENTS = 40, EACH = 50 };
    it_ws *ws[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        ws[i] = open_spark(i % 2 ? port_b : port_a);
        free(join(ws[i], "counter:load", 1));
    }
    for (int n = 0; n < EACH; n++)
        for (int i = 0; i < CLIENTS; i++)
            event(ws[i], "counter:load", 100 + n, "increment", NULL);
    for (int i = 0; i < CLIENTS; i++)
        for (int n = 0; n < EACH; n++) {
            char reply[64];
            snprintf(reply, sizeof reply, "\"ref\":%d,\"ok\":true", 100 + n);
            char *m = it_ws_recv_match(ws[i], reply, 20000);
            ck_assert_msg(m, "client %d: no reply %d", i, 100 + n);
            free(m);
        }
    /* Every viewer ends up showing the final count. */
    for (int i = 0; i < CLIENTS; i++) {
        char *m = it_ws_recv_match(ws[i], "Count: 2000", 10000);
        ck_assert_msg(m, "client %d never showed 2000", i);
        free(m);
        it_ws_close(ws[i]);
    }
    PGconn *pg = it_connect(db);
    ck_assert_str_eq(value(pg, "SELECT state->>'count' FROM spark.components"
                               " WHERE id = 'counter:load'"),
                     "2000");
    ck_assert_str_eq(value(pg, "SELECT count(*) || ' ' || max(version) FROM spark.events"
                               " WHERE component_id = 'counter:load' AND event = 'increment'"),
                     "2000 2000");
    PQfinish(pg);
    it_pair_stop(&pair);
}
END_TEST

/* Two instances that write one component without pause: each sender on
 * each instance sends its next event as soon as the last is answered, so
 * every write of one instance meets a write of the other. Each loss runs
 * the handlers again on the winner's state; none may end in "conflict",
 * however long the other instance keeps winning. */
START_TEST(steady_writers_on_two_instances_all_get_through) {
    /* As fast as replies come: past the per-connection rate limit. */
    setenv("SPARK_RATE_LIMIT", "0", 1);
    it_pair_start(&pair, "components-contend");
    unsetenv("SPARK_RATE_LIMIT");
    enum { SENDERS = 4, SECONDS = 3 };
    it_ws *ws[SENDERS];
    int sent[SENDERS] = {0};
    for (int i = 0; i < SENDERS; i++) {
        ws[i] = open_spark(i % 2 ? port_b : port_a);
        free(join(ws[i], "counter:contend", 1));
        event(ws[i], "counter:contend", 100 + sent[i]++, "increment", NULL);
    }
    long long until = it_now_ms() + SECONDS * 1000;
    int total = 0;
    for (bool going = true; going;) {
        ck_assert_msg(it_now_ms() < until + 10000, "replies missing: %d of %d+", total,
                      sent[0] + sent[1] + sent[2] + sent[3]);
        going = false;
        for (int i = 0; i < SENDERS; i++) {
            if (!ws[i]) continue;
            char *m = it_ws_recv(ws[i], 1);
            if (!m) {
                going = true;
                continue;
            }
            if (strstr(m, "\"t\":\"reply\"")) {
                ck_assert_msg(strstr(m, "\"ok\":true"), "sender %d: %s", i, m);
                total++;
                if (it_now_ms() < until) {
                    event(ws[i], "counter:contend", 100 + sent[i]++, "increment", NULL);
                } else {
                    it_ws_close(ws[i]);
                    ws[i] = NULL;
                }
            }
            free(m);
            going = true;
        }
    }
    int asked = 0;
    for (int i = 0; i < SENDERS; i++)
        asked += sent[i];
    ck_assert_int_eq(total, asked);
    PGconn *pg = it_connect(db);
    char want[32];
    snprintf(want, sizeof want, "%d %d", asked, asked);
    ck_assert_str_eq(value(pg, "SELECT (state->>'count') || ' ' || version FROM spark.components"
                               " WHERE id = 'counter:contend'"),
                     want);
    printf("steady writers: %d events from %d senders on two instances in %d s, all applied\n",
           asked, SENDERS, SECONDS);
    PQfinish(pg);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(a_join_at_an_old_version_gets_the_difference) {
    it_pair_start(&pair, "components-old");
    static char body[65536];
    it_ws *w = open_spark(port_a);
    free(join(w, "counter:old", 1));
    event_ok(w, "counter:old", 2, "increment", NULL);
    ck_assert_int_eq(get_page(port_b, "/counter/old", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "spark-version=\"1\""));
    for (int i = 3; i < 6; i++)
        event_ok(w, "counter:old", i, "increment", NULL);
    /* A page at version 1 showed "Count: 1"; the join gets one text op. */
    it_ws *late = open_spark(port_a);
    it_send(late, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:old\",\"v\":1}");
    char *m = it_expect(late, "\"cid\":\"counter:old\"");
    ck_assert_msg(strstr(m, "{\"t\":\"patch\",\"cid\":\"counter:old\",\"v\":4,"
                            "\"ops\":[[\"t\",[0,0,0],\"Count: 4\"]]}"),
                  "got %s", m);
    free(m);
    it_expect_free(late, "\"ref\":1,\"ok\":true");
    /* At the current version: nothing to send but the reply. */
    it_ws *now = open_spark(port_a);
    it_send(now, "{\"t\":\"join\",\"ref\":7,\"cid\":\"counter:old\",\"v\":4}");
    m = it_expect(now, "\"t\":");
    ck_assert_msg(strstr(m, "\"ref\":7,\"ok\":true"), "got %s", m);
    free(m);
    /* From version 0 (a page rendered before the first write). */
    it_ws *zero = open_spark(port_b);
    it_send(zero, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:old\",\"v\":0}");
    it_expect_free(zero, "\"Count: 4\"");
    it_ws_close(w);
    it_ws_close(late);
    it_ws_close(now);
    it_ws_close(zero);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(view_state_never_leaks_to_another_viewer) {
    it_pair_start(&pair, "components-view");
    it_ws *one = open_spark(port_a), *two = open_spark(port_a), *far = open_spark(port_b);
    free(join(one, "todo:iso", 1));
    free(join(two, "todo:iso", 1));
    free(join(far, "todo:iso", 1));
    event_ok(one, "todo:iso", 2, "draft", "{\"value\":\"secret draft\"}");
    it_expect_free(one, "secret draft");
    event_ok(one, "todo:iso", 3, "filter", "{\"filter\":\"completed\"}");
    it_expect_free(one, "\"t\":\"patch\"");
    event_ok(two, "todo:iso", 2, "add_todo", "{\"text\":\"milk\"}");
    /* The others see milk; one, filtering completed todos, sees the count. */
    it_expect_free(two, "milk");
    it_expect_free(far, "milk");
    it_expect_free(one, "1 items left");
    for (it_ws **c = (it_ws *[]){two, far, NULL}; *c; c++) {
        char *m;
        while ((m = it_ws_recv(*c, 300))) {
            ck_assert_msg(!strstr(m, "secret") && !strstr(m, "selected\",\"completed"), "leak: %s",
                          m);
            free(m);
        }
    }
    /* View-only events write nothing. */
    PGconn *pg = it_connect(db);
    ck_assert_str_eq(value(pg, "SELECT count(*) FROM spark.events"), "1");
    PQfinish(pg);
    it_ws_close(one);
    it_ws_close(two);
    it_ws_close(far);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(an_update_from_psql_reaches_a_client) {
    it_pair_start(&pair, "components-sql");
    it_ws *a = open_spark(port_a), *b = open_spark(port_b);
    free(join(a, "counter:sql", 1));
    free(join(b, "counter:sql", 1));
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "INSERT INTO spark.components (id, state)"
                        " VALUES ('counter:sql', '{\"count\":41,\"step\":1}')"));
    it_expect_free(a, "Count: 41");
    it_expect_free(b, "Count: 41");
    PQclear(it_exec(pg, "UPDATE spark.components SET state = jsonb_set(state, '{count}', '42')"
                        " WHERE id = 'counter:sql'"));
    it_expect_free(a, "Count: 42");
    it_expect_free(b, "Count: 42");
    /* And the runtime's next write builds on it. */
    event_ok(b, "counter:sql", 2, "increment", NULL);
    it_expect_free(a, "Count: 43");
    it_expect_free(b, "Count: 43");
    ck_assert_str_eq(value(pg, "SELECT version FROM spark.components WHERE id = 'counter:sql'"),
                     "3");
    /* A write that rolls back reaches no one: the next count both see is
     * the one committed after it. */
    PQclear(it_exec(pg, "BEGIN"));
    PQclear(it_exec(pg, "UPDATE spark.components SET state = jsonb_set(state, '{count}', '999')"
                        " WHERE id = 'counter:sql'"));
    PQclear(it_exec(pg, "ROLLBACK"));
    PQclear(it_exec(pg, "SELECT spark.revert('counter:sql', 2)"));
    it_ws *clients[] = {a, b};
    for (int k = 0; k < 2; k++) {
        char *m = it_expect(clients[k], "Count: ");
        ck_assert_msg(strstr(m, "Count: 42") && !strstr(m, "999"), "client %d got %s", k, m);
        free(m);
    }
    ck_assert_str_eq(value(pg, "SELECT event FROM spark.events WHERE component_id = 'counter:sql'"
                               " ORDER BY version DESC LIMIT 1"),
                     "revert");
    PQfinish(pg);
    it_ws_close(a);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(the_chat_component_and_the_chat_channel_see_each_other) {
    it_pair_start(&pair, "components-chat");
    it_ws *chan = it_ws_open(port_b, "/chat/meet", NULL, NULL);
    ck_assert_ptr_nonnull(chan);
    it_expect_free(chan, "\"user_joined\"");
    it_ws *comp = open_spark(port_a);
    free(join(comp, "chat:meet", 1));
    /* The component's viewer is online for the channel... */
    it_expect_free(chan, "\"presence_diff\"");
    /* ...the channel's message shows in the component... */
    it_send(chan, "{\"action\":\"chat\",\"message\":\"from the channel\"}");
    it_expect_free(comp, "from the channel");
    /* ...and the component's message reaches the channel. */
    event_ok(comp, "chat:meet", 2, "send_message", "{\"message\":\"from <b>the</b> component\"}");
    char *m = it_expect(chan, "from <b>the</b> component");
    ck_assert_ptr_nonnull(strstr(m, "\"type\":\"chat\""));
    free(m);
    it_expect_free(comp, "from &lt;b&gt;the&lt;/b&gt; component");
    /* Typing is signalled to the channel, not stored. */
    event_ok(comp, "chat:meet", 3, "typing", "{\"value\":\"h\"}");
    it_expect_free(chan, "\"type\":\"typing\"");
    it_send(chan, "{\"action\":\"typing\"}");
    it_expect_free(comp, "class=\\\"typing\\\"");
    PGconn *pg = it_connect(db);
    ck_assert_str_eq(value(pg, "SELECT count(*) FROM spark.messages WHERE room = 'chat:meet'"
                               " AND payload->>'type' = 'chat'"),
                     "2");
    ck_assert_str_eq(value(pg, "SELECT count(*) FROM spark.events"), "0");
    PQfinish(pg);
    it_ws_close(comp);
    it_ws_close(chan);
    it_pair_stop(&pair);
}
END_TEST

/* Reads `ws` up to the frame that has `needle`; none before it may have
 * `never`. */
static void expect_without(it_ws *ws, const char *needle, const char *never) {
    for (;;) {
        char *m = it_ws_recv(ws, RECV_MS);
        ck_assert_msg(m, "never received %s", needle);
        ck_assert_msg(!strstr(m, never), "received %s before %s: %s", never, needle, m);
        bool found = strstr(m, needle) != NULL;
        free(m);
        if (found) return;
    }
}

/* Past SPARK_CROWDED_ROOM connections (2: the component's viewer and two
 * channel clients make 3) the chat component shows how many are online
 * instead of who, and the list again once the room is small. Only the
 * room's presence frames say so: a message shaped like one changes
 * nothing. */
START_TEST(the_chat_component_counts_a_crowded_room) {
    setenv("SPARK_CROWDED_ROOM", "2", 1);
    it_pair_start(&pair, "components-crowd");
    it_ws *comp = open_spark(port_a);
    char *render = join(comp, "chat:tally", 1);
    free(render);
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:tally', '{\"type\":\"presence_state\","
                        "\"room\":\"chat:tally\",\"state\":{},\"crowded\":true,\"count\":99}')"));
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:tally', '{\"type\":\"presence_diff\","
                        "\"joins\":{},\"leaves\":{},\"crowded\":true,\"count\":98}')"));
    it_ws *one = it_ws_open_ok(port_b, "/chat/tally", NULL);
    expect_without(comp, "Online (2):", " online");
    it_ws *two = it_ws_open_ok(port_b, "/chat/tally", NULL);
    expect_without(comp, "3 online", "Online (");
    it_ws_close(two);
    expect_without(comp, "Online (2):", " online");
    PQfinish(pg);
    it_ws_close(one);
    it_ws_close(comp);
    it_pair_stop(&pair);
}
END_TEST

/* While one group write waits on a row lock, the events of two other
 * components queue up; they then go together in the next group: one
 * transaction (one commit) for both, seen as one transaction start time
 * (now(), the history's `at`) on their rows. Each component writes in a
 * subtransaction of its own, so xmin would differ. */
START_TEST(components_waiting_together_share_one_commit) {
    it_pair_start(&pair, "components-group");
    it_ws *a = open_spark(port_a);
    const char *ids[] = {"counter:g1", "counter:g2", "counter:g3"};
    for (int i = 0; i < 3; i++) {
        free(join(a, ids[i], 1 + i));
        event_ok(a, ids[i], 10 + i, "increment", NULL);
    }
    PGconn *lock = it_connect(db), *pg = it_connect(db);
    PQclear(it_exec(lock, "BEGIN"));
    PQclear(it_exec(lock, "SELECT 1 FROM spark.components WHERE id = 'counter:g1' FOR UPDATE"));
    event(a, "counter:g1", 20, "increment", NULL);
    long long deadline = it_now_ms() + RECV_MS;
    while (strcmp(value(pg, "SELECT count(*) FROM pg_stat_activity"
                            " WHERE wait_event_type = 'Lock' AND datname = current_database()"),
                  "1") != 0)
        ck_assert_msg(it_now_ms() < deadline, "the first group never waited on the lock");
    event(a, "counter:g2", 21, "increment", NULL);
    event(a, "counter:g3", 22, "increment", NULL);
    /* Answered at once, after the two events before it on this socket. */
    event(a, "counter:none", 23, "increment", NULL);
    it_expect_free(a, "\"ref\":23,\"ok\":false");
    PQclear(it_exec(lock, "COMMIT"));
    for (int ref = 20; ref <= 22; ref++) {
        char reply[64];
        snprintf(reply, sizeof reply, "\"ref\":%d,\"ok\":true", ref);
        it_expect_free(a, reply);
    }
    ck_assert_str_eq(value(pg,
                           "SELECT count(DISTINCT at) FROM spark.events"
                           " WHERE version = 2 AND component_id IN ('counter:g2', 'counter:g3')"),
                     "1");
    ck_assert_str_eq(value(pg, "SELECT count(DISTINCT at) FROM spark.events WHERE version = 2"),
                     "2");
    PQfinish(lock);
    PQfinish(pg);
    it_ws_close(a);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    Suite *s = suite_create("components");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pages_render_before_the_socket);
    tcase_add_test(tc, bad_input_gets_error_codes_and_the_connection_stays);
    tcase_add_test(tc, an_event_reaches_both_instances_and_history_matches);
    tcase_add_test(tc, two_instances_forty_clients_two_thousand_increments);
    tcase_add_test(tc, steady_writers_on_two_instances_all_get_through);
    tcase_add_test(tc, components_waiting_together_share_one_commit);
    tcase_add_test(tc, a_join_at_an_old_version_gets_the_difference);
    tcase_add_test(tc, view_state_never_leaks_to_another_viewer);
    tcase_add_test(tc, an_update_from_psql_reaches_a_client);
    tcase_add_test(tc, the_chat_component_and_the_chat_channel_see_each_other);
    tcase_add_test(tc, the_chat_component_counts_a_crowded_room);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
