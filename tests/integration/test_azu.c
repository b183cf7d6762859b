/*
 * test_azu.c - Azu's frames on /spark, on two real instances: a client
 * that speaks them (chosen by ?protocol=azu or by its first frame) gets
 * component_update for a change made on the other instance, with no join
 * of its own if it only sends component_event; each bad input gets its
 * error frame and the connection goes on; event ids, scopes, versions and
 * the size limit apply as in Spark's frames; no field of an event's data acts as a
 * field of the frame; what is sent to the user stays in its envelope; and
 * a client of Spark's frames on the same instance is unaffected.
 */
#include "auth.h"
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECV_MS 5000
#define SIGNING "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VERIFY  "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"

static it_pair pair;
#define port_a pair.port[0]
#define port_b pair.port[1]

static void use_keys(void) {
    setenv("SPARK_SIGNING_KEY", SIGNING, 1);
    setenv("SPARK_VERIFY_KEYS", VERIFY, 1);
    setenv("SPARK_AUTH", "on", 1);
}

/* A token for `sub` with the given scopes. */
static char *token_for(const char *sub, const char *const *scopes, size_t nscopes) {
    spark_auth_signing_key *key;
    char err[256];
    ck_assert_int_eq(spark_auth_signing_key_parse(SIGNING, &key, err, sizeof err), 0);
    char *token = NULL;
    ck_assert_int_eq(spark_token_mint(key, sub, sub, 600, scopes, nscopes, (int64_t)time(NULL),
                                      &token, err, sizeof err),
                     0);
    spark_auth_signing_key_free(key);
    return token;
}

static const char *const every[] = {"room:*", "component:*"};

static it_ws *open_with(int port, const char *target, const char *sub, const char *const *scopes,
                        size_t nscopes) {
    char headers[1024];
    char *token = token_for(sub, scopes, nscopes);
    snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", token);
    free(token);
    int status = 0;
    it_ws *ws = it_ws_open(port, target, headers, &status);
    ck_assert_msg(ws, "upgrade of %s refused with %d", target, status);
    return ws;
}

static it_ws *open_as(int port, const char *target, const char *sub) {
    return open_with(port, target, sub, every, 2);
}

/* The very next frame is `want` exactly. */
static void next_is(it_ws *ws, const char *want) {
    char *m = it_ws_recv(ws, RECV_MS);
    ck_assert_msg(m && strcmp(m, want) == 0, "got %s\n want %s", m ? m : "(nothing)", want);
    free(m);
}

START_TEST(an_event_on_a_reaches_an_azu_client_on_b) {
    use_keys();
    it_pair_start(&pair, "azu-cross");
    /* b: Azu's frames, chosen by the first frame. */
    it_ws *b = open_as(port_b, "/spark", "bea");
    it_send(b, "{\"type\":\"component_join\",\"ref\":1,\"component_id\":\"counter:azu\"}");
    char *m = it_expect(b, "\"type\":\"component_update\"");
    ck_assert_msg(strstr(m, "{\"type\":\"component_update\",\"component_id\":\"counter:azu\","
                            "\"version\":0,\"html\":\"<div class=\\\"counter-widget\\\"><h2>Count: "
                            "0</h2>") == m,
                  "b got %s", m);
    free(m);
    next_is(b, "{\"type\":\"reply\",\"ref\":1,\"ok\":true}");

    /* a: Spark's frames, unaffected on the same instances. */
    it_ws *a = open_as(port_a, "/spark", "ada");
    it_send(a, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:azu\"}");
    free(it_expect(a, "{\"t\":\"render\",\"cid\":\"counter:azu\",\"v\":0,"));
    next_is(a, "{\"t\":\"reply\",\"ref\":1,\"ok\":true}");
    it_send(a, "{\"t\":\"event\",\"ref\":2,\"cid\":\"counter:azu\",\"e\":\"increment\"}");
    next_is(a, "{\"t\":\"reply\",\"ref\":2,\"ok\":true}");
    free(it_expect(a, "{\"t\":\"patch\",\"cid\":\"counter:azu\",\"v\":1,\"ops\":[[\"t\""));

    /* b gets the whole new HTML, at the new version. */
    m = it_expect(b, "\"type\":\"component_update\"");
    ck_assert_msg(strstr(m, "\"version\":1,") && strstr(m, "Count: 1") && !strstr(m, "\"t\""),
                  "b got %s", m);
    free(m);

    /* And the reverse: b's event, with its ref, reaches a as a patch. */
    it_send(b, "{\"type\":\"component_event\",\"ref\":2,\"component_id\":\"counter:azu\","
               "\"event\":\"increment\",\"data\":{}}");
    next_is(b, "{\"type\":\"reply\",\"ref\":2,\"ok\":true}");
    m = it_expect(b, "\"type\":\"component_update\"");
    ck_assert_msg(strstr(m, "Count: 2"), "b got %s", m);
    free(m);
    free(it_expect(a, "{\"t\":\"patch\",\"cid\":\"counter:azu\",\"v\":2,"));

    /* Versions: a join at the current one is only answered; one at an older
     * version gets the current HTML. */
    it_ws *c = open_as(port_a, "/spark?protocol=azu", "cy");
    it_send(c, "{\"type\":\"component_join\",\"ref\":1,\"component_id\":\"counter:azu\","
               "\"version\":2}");
    next_is(c, "{\"type\":\"reply\",\"ref\":1,\"ok\":true}");
    it_send(c, "{\"type\":\"component_join\",\"ref\":2,\"component_id\":\"counter:azu\","
               "\"version\":1}");
    m = it_ws_recv(c, RECV_MS);
    ck_assert_msg(m &&
                      strstr(m, "{\"type\":\"component_update\",\"component_id\":\"counter:azu\","
                                "\"version\":2,") == m &&
                      strstr(m, "Count: 2"),
                  "c got %s", m ? m : "(nothing)");
    free(m);
    next_is(c, "{\"type\":\"reply\",\"ref\":2,\"ok\":true}");
    it_ws_close(c);
    it_ws_close(a);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

/* The seed's client as written: no join, no ref, no id; component_event
 * alone. */
START_TEST(an_event_alone_joins_and_updates) {
    use_keys();
    it_pair_start(&pair, "azu-event-only");
    it_ws *b = open_as(port_b, "/spark", "bea");
    it_send(b, "{\"type\":\"component_event\",\"component_id\":\"counter:alone\","
               "\"event\":\"set_step\",\"data\":{\"value\":\"5\"}}");
    /* Its join's render, then its change; no reply (it gave no ref). */
    char *m = it_ws_recv(b, RECV_MS);
    ck_assert_msg(m &&
                      strstr(m, "{\"type\":\"component_update\",\"component_id\":\"counter:alone\","
                                "\"version\":0,") == m,
                  "b got %s", m ? m : "(nothing)");
    free(m);
    m = it_ws_recv(b, RECV_MS);
    ck_assert_msg(m && strstr(m, "\"version\":1,") && strstr(m, "value=\\\"5\\\""), "b got %s",
                  m ? m : "(nothing)");
    free(m);

    /* Since it joined, a change on a reaches it. */
    it_ws *a = open_as(port_a, "/spark", "ada");
    it_send(a, "{\"type\":\"component_event\",\"ref\":7,\"component_id\":\"counter:alone\","
               "\"event\":\"increment\"}");
    free(it_expect(a, "{\"type\":\"reply\",\"ref\":7,\"ok\":true}"));
    m = it_expect(b, "\"version\":2,");
    ck_assert_msg(strstr(m, "Count: 5"), "b got %s", m);
    free(m);
    it_ws_close(a);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(bad_inputs_get_error_frames) {
    use_keys();
    it_pair_start(&pair, "azu-errors");
    it_ws *b = open_as(port_b, "/spark?protocol=azu", "bea");
    /* Chosen by the query: the first frame, not JSON, is answered in Azu's. */
    it_send(b, "not json");
    next_is(b, "{\"type\":\"error\",\"ref\":null,\"code\":\"invalid_json\","
               "\"message\":\"a frame is one JSON object\"}");
    static const struct {
        const char *frame, *reply;
    } cases[] = {
        {"[1,2]", "{\"type\":\"error\",\"ref\":null,\"code\":\"invalid_json\","
                  "\"message\":\"a frame is one JSON object\"}"},
        {"{\"type\":7,\"ref\":3}", "{\"type\":\"error\",\"ref\":3,\"code\":\"invalid_message\","
                                   "\"message\":\"type must be a string\"}"},
        /* Spark's frame on an Azu connection. */
        {"{\"t\":\"join\",\"ref\":4,\"cid\":\"counter:x\"}",
         "{\"type\":\"error\",\"ref\":4,\"code\":\"invalid_message\","
         "\"message\":\"type must be a string\"}"},
        {"{\"type\":\"wave\",\"ref\":5}",
         "{\"type\":\"error\",\"ref\":5,\"code\":\"unknown_type\",\"message\":\"type is "
         "component_join, component_event or component_leave\"}"},
        {"{\"type\":\"component_event\",\"ref\":6,\"event\":\"increment\"}",
         "{\"type\":\"error\",\"ref\":6,\"code\":\"invalid_message\","
         "\"message\":\"component_id must be a component id\"}"},
        {"{\"type\":\"component_event\",\"ref\":7,\"component_id\":\"counter:x\"}",
         "{\"type\":\"error\",\"ref\":7,\"code\":\"invalid_message\","
         "\"message\":\"event must be an event name\"}"},
        {"{\"type\":\"component_event\",\"ref\":8,\"component_id\":\"counter:x\","
         "\"event\":\"increment\",\"data\":[1]}",
         "{\"type\":\"error\",\"ref\":8,\"code\":\"invalid_data\","
         "\"message\":\"data must be an object\"}"},
        {"{\"type\":\"component_join\",\"ref\":9,\"component_id\":\"counter:x\",\"version\":-1}",
         "{\"type\":\"error\",\"ref\":9,\"code\":\"invalid_message\","
         "\"message\":\"version must be a non-negative integer\"}"},
        {"{\"type\":\"component_event\",\"ref\":10,\"component_id\":\"counter:x\","
         "\"event\":\"increment\",\"id\":\"\"}",
         "{\"type\":\"error\",\"ref\":10,\"code\":\"invalid_message\","
         "\"message\":\"id must be a string of 1 to 64 bytes\"}"},
        {"{\"type\":\"component_event\",\"ref\":11,\"component_id\":\"nope:x\",\"event\":\"go\"}",
         "{\"type\":\"error\",\"ref\":11,\"code\":\"unknown_component\","
         "\"message\":\"no component type of that name\"}"},
        {"{\"type\":\"component_leave\",\"ref\":12,\"component_id\":\"counter:x\"}",
         "{\"type\":\"error\",\"ref\":12,\"code\":\"not_joined\","
         "\"message\":\"that component was not joined\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        it_send(b, cases[i].frame);
        next_is(b, cases[i].reply);
    }
    /* Over 32 KiB (and under SPARK_MAX_MESSAGE): too_large, the socket stays. */
    size_t n = 40000;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    static const char head[] = "{\"type\":\"component_event\"";
    memcpy(big, head, sizeof head - 1);
    big[n - 1] = '}';
    big[n] = '\0';
    it_send(b, big);
    free(big);
    next_is(b, "{\"type\":\"error\",\"ref\":null,\"code\":\"too_large\","
               "\"message\":\"frames are limited to 32768 bytes\"}");
    /* An unknown event of a real component: its join's render, then the
     * event's error; the connection still works. */
    it_send(b, "{\"type\":\"component_event\",\"ref\":13,\"component_id\":\"counter:e\","
               "\"event\":\"jump\"}");
    free(it_expect(b, "\"type\":\"component_update\""));
    next_is(b, "{\"type\":\"error\",\"ref\":13,\"code\":\"unknown_event\","
               "\"message\":\"counter has no event jump\"}");
    it_send(b, "{\"type\":\"component_event\",\"ref\":14,\"component_id\":\"counter:e\","
               "\"event\":\"increment\"}");
    next_is(b, "{\"type\":\"reply\",\"ref\":14,\"ok\":true}");
    it_ws_close(b);

    /* A token without the component's scope: forbidden, nothing joined. */
    static const char *const rooms_only[] = {"room:*"};
    it_ws *r = open_with(port_a, "/spark?protocol=azu", "rob", rooms_only, 1);
    it_send(r, "{\"type\":\"component_event\",\"ref\":1,\"component_id\":\"counter:e\","
               "\"event\":\"increment\"}");
    next_is(r, "{\"type\":\"error\",\"ref\":1,\"code\":\"forbidden\","
               "\"message\":\"the token does not grant this component\"}");
    it_ws_close(r);

    /* ?protocol=spark: Azu's frames are Spark's errors there. */
    it_ws *s = open_as(port_a, "/spark?protocol=spark", "sam");
    it_send(s, "{\"type\":\"component_join\",\"ref\":1,\"component_id\":\"counter:e\"}");
    next_is(s, "{\"t\":\"reply\",\"ref\":1,\"ok\":false,\"error\":{\"code\":\"invalid_message\","
               "\"message\":\"t must be a string\"}}");
    it_ws_close(s);

    /* Any other protocol: closed with a reason. */
    it_ws *x = open_as(port_a, "/spark?protocol=phoenix", "xav");
    ck_assert_int_eq(it_ws_wait_close(x, RECV_MS), 1008);
    ck_assert_str_eq(it_ws_close_reason(x), "protocol is spark or azu");
    it_ws_close(x);

    /* A Spark client's first frame keeps Spark's dialect: its bad frame
     * after is answered in Spark's. */
    it_ws *a = open_as(port_a, "/spark", "ada");
    it_send(a, "{\"t\":\"join\",\"ref\":1,\"cid\":\"counter:e\"}");
    free(it_expect(a, "{\"t\":\"reply\",\"ref\":1,\"ok\":true}"));
    it_send(a, "{\"type\":\"component_event\",\"ref\":2,\"component_id\":\"counter:e\"}");
    next_is(a, "{\"t\":\"reply\",\"ref\":2,\"ok\":false,\"error\":{\"code\":\"invalid_message\","
               "\"message\":\"t must be a string\"}}");
    it_ws_close(a);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(ids_apply_once_and_data_is_never_control) {
    use_keys();
    it_pair_start(&pair, "azu-ids");
    it_ws *b = open_as(port_b, "/spark?protocol=azu", "bea");
    it_send(b, "{\"type\":\"component_join\",\"ref\":1,\"component_id\":\"counter:ids\"}");
    free(it_expect(b, "{\"type\":\"reply\",\"ref\":1,\"ok\":true}"));
    /* The data names another kind, component, event and id: only the
     * frame's own fields count. */
    static const char ev[] =
        "{\"type\":\"component_event\",\"ref\":%d,\"component_id\":\"counter:ids\","
        "\"event\":\"increment\",\"id\":\"once-1\",\"data\":{\"type\":\"component_leave\","
        "\"component_id\":\"counter:other\",\"event\":\"reset\",\"id\":\"other\",\"ref\":99,"
        "\"t\":\"redirect\",\"url\":\"https://evil.example/\"}}";
    char frame[512];
    snprintf(frame, sizeof frame, ev, 2);
    it_send(b, frame);
    next_is(b, "{\"type\":\"reply\",\"ref\":2,\"ok\":true}");
    char *m = it_expect(b, "\"type\":\"component_update\"");
    ck_assert_msg(strstr(m, "\"component_id\":\"counter:ids\",\"version\":1,") &&
                      strstr(m, "Count: 1"),
                  "b got %s", m);
    free(m);
    /* The same id again, from another instance: applied once; the reply
     * tells the version it made. */
    it_ws *a = open_as(port_a, "/spark?protocol=azu", "bea");
    snprintf(frame, sizeof frame, ev, 3);
    it_send(a, frame);
    m = it_expect(a, "\"type\":\"reply\"");
    ck_assert_str_eq(m, "{\"type\":\"reply\",\"ref\":3,\"ok\":true,\"version\":1}");
    free(m);
    /* Nothing else happened: counter:other was never written. */
    PGconn *pg = it_connect(pair.db);
    char out[64];
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT count(*) FROM spark.components WHERE id = "
                                    "'counter:other'",
                                    out, sizeof out),
                     "0");
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT state->>'count' FROM spark.components WHERE id = "
                                    "'counter:ids'",
                                    out, sizeof out),
                     "1");

    /* What is sent to the user reaches an Azu socket in its envelope, whose
     * top level has no "type": a payload posing as Azu's redirect is data. */
    static const char evil[] = "SELECT spark.notify_user('bea', '{\"type\":\"component_redirect\","
                               "\"url\":\"https://evil.example/\"}')";
    char *got = NULL;
    long long deadline = it_now_ms() + RECV_MS;
    while (!got && it_now_ms() < deadline) {
        PQclear(it_exec(pg, evil)); /* the user room is joined asynchronously */
        for (char *f; !got && (f = it_ws_recv(b, 200));) {
            ck_assert_msg(strncmp(f, "{\"type\":\"component_redirect\"", 28) != 0, "b got %s", f);
            if (strstr(f, "evil.example"))
                got = f;
            else
                free(f);
        }
    }
    ck_assert_msg(got, "the message never arrived");
    const char *data = strstr(got, ",\"data\":{");
    ck_assert_msg(strncmp(got, "{\"t\":\"msg\",\"room\":\"user:bea\",", 29) == 0 && data &&
                      strstr(got, "\"type\":\"component_redirect\"") > data,
                  "b got %s", got);
    free(got);
    PQfinish(pg);
    it_ws_close(a);
    it_ws_close(b);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    Suite *s = suite_create("azu");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, an_event_on_a_reaches_an_azu_client_on_b);
    tcase_add_test(tc, an_event_alone_joins_and_updates);
    tcase_add_test(tc, bad_inputs_get_error_frames);
    tcase_add_test(tc, ids_apply_once_and_data_is_never_control);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
