/*
 * test_live.c - live components without a server: parsing /spark frames
 * (every kind of bad input gets its error code), the server's frames, the
 * author API's rules (a room viewer's older messages among them), and the
 * todo demo's rendering and escaping.
 */
#include "protocol.h"

/* The demo app uses only the public API; link it in. */
#include "../../apps/todo.c"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const char *parse_error(const char *frame, long long *ref) {
    spark_msg m;
    const char *code = NULL, *message = NULL;
    int r = spark_msg_parse(frame, strlen(frame), &m, &code, &message);
    if (ref) *ref = m.ref;
    spark_msg_clear(&m);
    return r == 0 ? NULL : code;
}

START_TEST(bad_frames_get_codes) {
    static const struct {
        const char *frame, *code;
    } cases[] = {
        {"", "invalid_json"},
        {"not json", "invalid_json"},
        {"{\"t\":\"join\"", "invalid_json"},
        {"{\"t\":\"join\",\"cid\":\"a:b\"} trailing", "invalid_json"},
        {"[]", "invalid_json"},
        {"42", "invalid_json"},
        {"null", "invalid_json"},
        /* Not JSON, though json-c reads them: numbers it cannot give back
         * as they came, and what only its lenient mode takes. */
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"x\",\"d\":{\"n\":NaN}}", "invalid_json"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"x\",\"d\":{\"n\":Infinity}}", "invalid_json"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"x\",\"d\":{\"n\":[-Infinity]}}", "invalid_json"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"x\",\"d\":{\"n\":1e999}}", "invalid_json"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"x\",\"d\":{\"n\":9223372036854775808}}",
         "invalid_json"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"x\",\"d\":{\"n\":-99999999999999999999}}",
         "invalid_json"},
        {"{\"t\":\"join\",\"cid\":\"a:b\",}", "invalid_json"},
        {"{\"t\":\"join\",\"cid\":\"a:b\",\"v\":012}", "invalid_json"},
        {"{\"t\":\"join\",\"cid\":\"a:\xff\"}", "invalid_json"},
        {"{}", "invalid_message"},
        {"{\"t\":7,\"cid\":\"a:b\"}", "invalid_message"},
        {"{\"t\":\"wave\",\"cid\":\"a:b\"}", "unknown_type"},
        {"{\"t\":\"join\"}", "invalid_message"},
        {"{\"t\":\"join\",\"cid\":\"\"}", "invalid_message"},
        {"{\"t\":\"join\",\"cid\":[\"a:b\"]}", "invalid_message"},
        {"{\"t\":\"join\",\"cid\":\"a\\u0000b\"}", "invalid_message"},
        {"{\"t\":\"join\",\"cid\":\"a:b\",\"v\":\"12\"}", "invalid_message"},
        {"{\"t\":\"join\",\"cid\":\"a:b\",\"v\":-1}", "invalid_message"},
        {"{\"t\":\"join\",\"cid\":\"a:b\",\"v\":1.5}", "invalid_message"},
        {"{\"t\":\"join\",\"cid\":\"a:b\",\"ref\":\"1\"}", "invalid_message"},
        {"{\"t\":\"join\",\"cid\":\"a:b\",\"ref\":-3}", "invalid_message"},
        {"{\"t\":\"event\",\"cid\":\"a:b\"}", "invalid_message"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"\"}", "invalid_message"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":5}", "invalid_message"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"x\",\"d\":[1]}", "invalid_data"},
        {"{\"t\":\"event\",\"cid\":\"a:b\",\"e\":\"x\",\"d\":\"text\"}", "invalid_data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *code = parse_error(cases[i].frame, NULL);
        ck_assert_msg(code && strcmp(code, cases[i].code) == 0, "%s: got %s, want %s",
                      cases[i].frame, code ? code : "(ok)", cases[i].code);
    }
    char *big = malloc(SPARK_LIVE_MAX_FRAME + 2);
    memset(big, ' ', SPARK_LIVE_MAX_FRAME + 1);
    big[SPARK_LIVE_MAX_FRAME + 1] = '\0';
    ck_assert_str_eq(parse_error(big, NULL), "too_large");
    free(big);
    /* The ref comes back with the error when it could be read. */
    long long ref = 0;
    ck_assert_str_eq(parse_error("{\"t\":\"wave\",\"ref\":9,\"cid\":\"a:b\"}", &ref),
                     "unknown_type");
    ck_assert_int_eq(ref, 9);
    ck_assert_str_eq(parse_error("garbage", &ref), "invalid_json");
    ck_assert_int_eq(ref, -1);
}
END_TEST

START_TEST(good_frames_parse) {
    spark_msg m;
    const char *code, *message;
    const char *join = "{\"t\":\"join\",\"ref\":1,\"cid\":\"todo:groceries\",\"v\":12}";
    ck_assert_int_eq(spark_msg_parse(join, strlen(join), &m, &code, &message), 0);
    ck_assert_int_eq(m.kind, SPARK_MSG_JOIN);
    ck_assert_int_eq(m.ref, 1);
    ck_assert_int_eq(m.v, 12);
    ck_assert_str_eq(m.cid, "todo:groceries");
    spark_msg_clear(&m);
    const char *ev = "{\"t\":\"event\",\"ref\":2,\"cid\":\"todo:g\",\"e\":\"add_todo\","
                     "\"d\":{\"text\":\"milk\"}}";
    ck_assert_int_eq(spark_msg_parse(ev, strlen(ev), &m, &code, &message), 0);
    ck_assert_int_eq(m.kind, SPARK_MSG_EVENT);
    ck_assert_str_eq(m.event, "add_todo");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(m.data, "text")), "milk");
    spark_msg_clear(&m);
    const char *leave = "{\"t\":\"leave\",\"cid\":\"todo:g\"}";
    ck_assert_int_eq(spark_msg_parse(leave, strlen(leave), &m, &code, &message), 0);
    ck_assert_int_eq(m.kind, SPARK_MSG_LEAVE);
    ck_assert_int_eq(m.ref, -1);
    spark_msg_clear(&m);
}
END_TEST

START_TEST(server_frames) {
    spark_sbuf b = {0};
    spark_frame_reply_ok(&b, 2);
    ck_assert_str_eq(b.data, "{\"t\":\"reply\",\"ref\":2,\"ok\":true}");
    spark_sbuf_free(&b);
    spark_frame_reply_error(&b, -1, "invalid_json", "a \"frame\"");
    ck_assert_str_eq(b.data, "{\"t\":\"reply\",\"ref\":null,\"ok\":false,\"error\":{\"code\":"
                             "\"invalid_json\",\"message\":\"a \\\"frame\\\"\"}}");
    spark_sbuf_free(&b);
    spark_frame_patch(&b, "counter:x", 4, "[]");
    ck_assert_str_eq(b.data, "{\"t\":\"patch\",\"cid\":\"counter:x\",\"v\":4,\"ops\":[]}");
    spark_sbuf_free(&b);
    spark_frame_redirect(&b, "/login");
    ck_assert_str_eq(b.data, "{\"t\":\"redirect\",\"url\":\"/login\"}");
    spark_sbuf_free(&b);
}
END_TEST

static const char *parse_azu(const char *frame, spark_dialect *d, spark_msg *m) {
    const char *code = NULL, *message = NULL;
    int r = spark_msg_parse_dialect(frame, strlen(frame), d, m, &code, &message);
    return r == 0 ? NULL : code;
}

START_TEST(azu_frames_parse) {
    spark_msg m;
    /* The first object frame chooses: "type" without "t" is Azu's. */
    spark_dialect d = SPARK_DIALECT_UNKNOWN;
    ck_assert_str_eq(parse_azu("nope", &d, &m), "invalid_json");
    ck_assert_int_eq(d, SPARK_DIALECT_UNKNOWN);
    ck_assert_ptr_null(parse_azu("{\"type\":\"component_event\",\"ref\":4,\"component_id\":"
                                 "\"todo:g\",\"event\":\"delete_todo\",\"id\":\"e1\","
                                 "\"data\":{\"id\":\"3\",\"event\":\"clear\"}}",
                                 &d, &m));
    ck_assert_int_eq(d, SPARK_DIALECT_AZU);
    ck_assert_int_eq(m.kind, SPARK_MSG_EVENT);
    ck_assert_int_eq(m.ref, 4);
    ck_assert_str_eq(m.cid, "todo:g");
    ck_assert_str_eq(m.event, "delete_todo"); /* the data's "event" is data */
    ck_assert_str_eq(m.event_id, "e1");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(m.data, "id")), "3");
    spark_msg_clear(&m);
    ck_assert_ptr_null(parse_azu("{\"type\":\"component_join\",\"component_id\":\"todo:g\","
                                 "\"version\":3}",
                                 &d, &m));
    ck_assert_int_eq(m.kind, SPARK_MSG_JOIN);
    ck_assert_int_eq(m.v, 3);
    ck_assert_int_eq(m.ref, -1);
    spark_msg_clear(&m);
    ck_assert_str_eq(parse_azu("{\"t\":\"join\",\"cid\":\"todo:g\"}", &d, &m), "invalid_message");
    /* A frame with "t" chooses Spark's, even with a "type". */
    d = SPARK_DIALECT_UNKNOWN;
    ck_assert_ptr_null(
        parse_azu("{\"t\":\"leave\",\"type\":\"component_event\",\"cid\":\"a:b\"}", &d, &m));
    ck_assert_int_eq(d, SPARK_DIALECT_SPARK);
    ck_assert_int_eq(m.kind, SPARK_MSG_LEAVE);
    spark_msg_clear(&m);
}
END_TEST

START_TEST(azu_server_frames) {
    spark_sbuf b = {0};
    spark_html *h = spark_html_new();
    H2(h) { spark_text(h, "Count: <1>"); }
    spark_frame_azu_update(&b, "counter:x", 4, spark_html_root(h));
    ck_assert_str_eq(b.data, "{\"type\":\"component_update\",\"component_id\":\"counter:x\","
                             "\"version\":4,\"html\":\"<h2>Count: &lt;1&gt;</h2>\"}");
    spark_sbuf_free(&b);
    spark_html_free(h);
    spark_frame_azu_flash(&b, "todo:g", "info", "Saved \"it\"");
    ck_assert_str_eq(b.data, "{\"type\":\"component_flash\",\"component_id\":\"todo:g\","
                             "\"level\":\"info\",\"message\":\"Saved \\\"it\\\"\"}");
    spark_sbuf_free(&b);
    spark_frame_azu_redirect(&b, "/login");
    ck_assert_str_eq(b.data, "{\"type\":\"component_redirect\",\"url\":\"/login\"}");
    spark_sbuf_free(&b);
    spark_frame_azu_reply(&b, 2, -1);
    ck_assert_str_eq(b.data, "{\"type\":\"reply\",\"ref\":2,\"ok\":true}");
    spark_sbuf_free(&b);
    spark_frame_azu_reply(&b, 2, 7);
    ck_assert_str_eq(b.data, "{\"type\":\"reply\",\"ref\":2,\"ok\":true,\"version\":7}");
    spark_sbuf_free(&b);
    spark_frame_azu_error(&b, -1, "todo:g", "too_large", "big");
    ck_assert_str_eq(b.data, "{\"type\":\"error\",\"ref\":null,\"component_id\":\"todo:g\","
                             "\"code\":\"too_large\",\"message\":\"big\"}");
    spark_sbuf_free(&b);
}
END_TEST

START_TEST(component_ids) {
    const char *key;
    ck_assert_ptr_eq(spark_component_of_id("todo:groceries", &key), &todo_component);
    ck_assert_str_eq(key, "groceries");
    ck_assert_ptr_eq(spark_component_of_id("todo:a:b|c", &key), &todo_component);
    ck_assert_str_eq(key, "a:b|c");
    ck_assert_ptr_null(spark_component_of_id("todo:", NULL));
    ck_assert_ptr_null(spark_component_of_id("todo", NULL));
    ck_assert_ptr_null(spark_component_of_id("nope:x", NULL));
    ck_assert_ptr_null(spark_component_of_id(":x", NULL));
    /* A second registration of a name is refused. */
    ck_assert_int_eq(spark_component_register(&todo_component), -1);
}
END_TEST

START_TEST(todo_text_is_escaped) {
    char *html = spark_component_render_html(
        "todo:x",
        "{\"items\":[{\"id\":1,\"text\":\"<img src=x onerror=alert(1)>\",\"done\":false}],"
        "\"next_id\":2}",
        NULL);
    ck_assert_ptr_nonnull(html);
    ck_assert_msg(strstr(html, "<label>&lt;img src=x onerror=alert(1)&gt;</label>"), "%s", html);
    ck_assert_ptr_null(strstr(html, "<img"));
    ck_assert_ptr_nonnull(strstr(html, "1 items left"));
    ck_assert_ptr_null(strstr(html, "Clear completed"));
    free(html);
    /* Quotes in a draft stay inside the attribute. */
    html = spark_component_render_html("todo:x", NULL, "{\"draft\":\"\\\" autofocus x=\\\"\"}");
    ck_assert_msg(strstr(html, "value=\"&quot; autofocus x=&quot;\""), "%s", html);
    free(html);
}
END_TEST

START_TEST(todo_counts_and_filters) {
    const char *state = "{\"items\":[{\"id\":1,\"text\":\"milk\",\"done\":true},"
                        "{\"id\":2,\"text\":\"eggs\",\"done\":false},"
                        "{\"id\":3,\"text\":\"tea\",\"done\":false}],\"next_id\":4}";
    char *html = spark_component_render_html("todo:x", state, NULL);
    ck_assert_ptr_nonnull(strstr(html, "2 items left"));
    ck_assert_ptr_nonnull(strstr(html, "Clear completed"));
    ck_assert_ptr_nonnull(
        strstr(html, "<li spark-key=\"1\" class=\"done\"><input type=\"checkbox\""));
    ck_assert_ptr_nonnull(strstr(html, "checked=\"\""));
    ck_assert_ptr_nonnull(strstr(html, "eggs"));
    free(html);
    html = spark_component_render_html("todo:x", state, "{\"filter\":\"completed\"}");
    ck_assert_ptr_nonnull(strstr(html, "milk"));
    ck_assert_ptr_null(strstr(html, "eggs"));
    ck_assert_ptr_nonnull(strstr(html, "2 items left"));
    free(html);
}
END_TEST

/* Runs one todo event on a state the way the runtime does. */
static int run_event(json_object *state, json_object *local, const char *name, const char *data,
                     spark_live *out) {
    const char *key;
    const spark_component *type = spark_component_of_id("todo:x", &key);
    json_object *d = json_tokener_parse(data);
    *out = (spark_live){.type = type,
                        .id = "todo:x",
                        .key = key,
                        .state = state,
                        .local = local,
                        .viewer_id = "u1",
                        .viewer_name = "Ann",
                        .shared_writable = true,
                        .local_writable = true,
                        .event = name,
                        .data = d};
    int r = spark_live_dispatch(out);
    json_object_put(d);
    out->data = NULL;
    return r;
}

START_TEST(todo_events) {
    json_object *state = spark_component_initial(todo_component.initial_state);
    json_object *local = spark_component_initial(todo_component.initial_view);
    spark_live lv;
    ck_assert_int_eq(run_event(state, local, "add_todo", "{\"text\":\"milk\"}", &lv), SPARK_OK);
    ck_assert_int_eq(run_event(state, local, "add_todo", "{\"text\":\" \\t \"}", &lv), SPARK_OK);
    ck_assert_int_eq(json_object_array_length(json_object_object_get(state, "items")), 1);
    char long_text[1200] = "{\"text\":\"";
    memset(long_text + 9, 'a', 501);
    strcpy(long_text + 510, "\"}");
    ck_assert_int_eq(run_event(state, local, "add_todo", long_text, &lv), SPARK_FAILED);
    ck_assert_str_eq(lv.fail_code, "too_long");
    spark_live_clear_outcome(&lv);
    ck_assert_int_eq(run_event(state, local, "toggle", "{\"id\":\"1\"}", &lv), SPARK_OK);
    ck_assert(json_object_get_boolean(json_object_object_get(
        json_object_array_get_idx(json_object_object_get(state, "items"), 0), "done")));
    ck_assert_int_eq(run_event(state, local, "toggle", "{\"id\":99}", &lv), SPARK_FAILED);
    ck_assert_str_eq(lv.fail_code, "not_found");
    spark_live_clear_outcome(&lv);
    ck_assert_int_eq(run_event(state, local, "filter", "{\"filter\":\"bogus\"}", &lv),
                     SPARK_FAILED);
    spark_live_clear_outcome(&lv);
    ck_assert_int_eq(run_event(state, local, "filter", "{\"filter\":\"active\"}", &lv), SPARK_OK);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(local, "filter")), "active");
    ck_assert_int_eq(run_event(state, local, "clear_completed", "{}", &lv), SPARK_OK);
    ck_assert_int_eq(json_object_array_length(json_object_object_get(state, "items")), 0);
    ck_assert_int_eq(run_event(state, local, "fly", "{}", &lv), SPARK_UNKNOWN_EVENT);
    json_object_put(state);
    json_object_put(local);
}
END_TEST

/* spark_data_int reads what browsers send: numbers, and decimal strings. */
START_TEST(data_int_reads_numeric_strings) {
    static const struct {
        const char *data;
        bool ok;
        long long value;
    } cases[] = {
        {"{\"n\":42}", true, 42},     {"{\"n\":\"42\"}", true, 42},
        {"{\"n\":\"-7\"}", true, -7}, {"{\"n\":\"+3\"}", true, 3},
        {"{\"n\":\"\"}", false, 0},   {"{\"n\":\"4x\"}", false, 0},
        {"{\"n\":\" 4\"}", false, 0}, {"{\"n\":\"99999999999999999999\"}", false, 0},
        {"{\"n\":true}", false, 0},   {"{}", false, 0},
        {"{\"n\":1.5}", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        spark_live lv = {.data = json_tokener_parse(cases[i].data)};
        long long n = 0;
        ck_assert_msg(spark_data_int(&lv, "n", &n) == cases[i].ok, "%s", cases[i].data);
        if (cases[i].ok) ck_assert_int_eq(n, cases[i].value);
        json_object_put(lv.data);
    }
}
END_TEST

/* The state's getters read numbers as spark_data_int does, doubles too. */
START_TEST(state_numbers_read_numeric_strings) {
    json_object *state = json_tokener_parse("{\"n\":\"42\",\"f\":\"1.5\",\"i\":3,\"x\":\"4x\","
                                            "\"items\":[{\"price\":\"9.5\",\"qty\":\"2\"}]}");
    json_object *local = json_tokener_parse("{\"zoom\":\"1.25\"}");
    spark_live lv = {.type = &todo_component, .id = "todo:x", .state = state, .local = local};
    ck_assert_int_eq(spark_state_int(&lv, "n", 0), 42);
    ck_assert_int_eq(spark_state_int(&lv, "f", -1), -1);
    ck_assert_int_eq(spark_state_int(&lv, "x", -1), -1);
    ck_assert(spark_state_double(&lv, "f", 0) == 1.5);
    ck_assert(spark_state_double(&lv, "i", 0) == 3);
    ck_assert(spark_state_double(&lv, "x", -2) == -2);
    ck_assert(spark_local_double(&lv, "zoom", 0) == 1.25);
    const spark_item *it = spark_list_at(&lv, "items", 0);
    ck_assert(spark_item_double(it, "price", 0) == 9.5);
    ck_assert_int_eq(spark_item_int(it, "qty", 0), 2);
    lv.data = json_tokener_parse("{\"v\":\"-0.5\",\"w\":2,\"bad\":\"nan\"}");
    double d = 0;
    ck_assert(spark_data_double(&lv, "v", &d) && d == -0.5);
    ck_assert(spark_data_double(&lv, "w", &d) && d == 2);
    ck_assert(!spark_data_double(&lv, "bad", &d));
    lv.shared_writable = lv.local_writable = true;
    ck_assert_int_eq(spark_state_set_double(&lv, "f", 2.5), SPARK_OK);
    ck_assert(spark_state_double(&lv, "f", 0) == 2.5);
    ck_assert_int_eq(spark_local_set_double(&lv, "zoom", 1.0 / 0.0), SPARK_OK);
    ck_assert(spark_local_double(&lv, "zoom", -1) == 0); /* JSON has no infinity */
    json_object_put(lv.data);
    json_object_put(state);
    json_object_put(local);
}
END_TEST

/* Finding, removing where, clearing; nested objects and lists in items. */
START_TEST(list_helpers_and_nested_items) {
    json_object *state = json_tokener_parse(
        "{\"items\":[{\"id\":1,\"tag\":\"a\",\"done\":true},{\"id\":\"2\",\"tag\":\"b\"},"
        "{\"id\":3,\"tag\":\"c\",\"done\":true},{\"id\":4,\"done\":false},7]}");
    spark_live lv = {.type = &todo_component, .id = "todo:x", .state = state};
    ck_assert_int_eq(spark_list_find_int(&lv, "items", "id", 3), 2);
    ck_assert_int_eq(spark_list_find_int(&lv, "items", "id", 2), 1); /* "2" is 2 */
    ck_assert_int_eq(spark_list_find_int(&lv, "items", "id", 9), -1);
    ck_assert_int_eq(spark_list_find_int(&lv, "nothing", "id", 1), -1);
    ck_assert_int_eq(spark_list_find_str(&lv, "items", "tag", "b"), 1);
    ck_assert_int_eq(spark_list_find_str(&lv, "items", "tag", "z"), -1);
    ck_assert_int_eq(spark_list_find_str(&lv, "items", "id", "2"), 1);
    /* Render cannot remove. */
    ck_assert_uint_eq(spark_list_remove_where(&lv, "items", "done", true), 0);
    spark_list_clear(&lv, "items");
    ck_assert_uint_eq(spark_list_len(&lv, "items"), 5);
    lv.shared_writable = true;
    ck_assert_uint_eq(spark_list_remove_where(&lv, "items", "done", true), 2);
    ck_assert_uint_eq(spark_list_len(&lv, "items"), 3);
    ck_assert_int_eq(spark_list_find_int(&lv, "items", "id", 4), 1);
    ck_assert_ptr_null(spark_list_at(&lv, "items", 2)); /* 7 is not an object */

    /* Nesting: an object and a list of objects inside an item. */
    spark_item *it = spark_list_add(&lv, "items");
    spark_item_set_int(it, "id", 5);
    spark_item_set_str(spark_item_edit_obj(it, "author"), "name", "ana");
    spark_item_set_str(spark_item_list_add(it, "comments"), "text", "first");
    spark_item *second = spark_item_list_add(it, "comments");
    spark_item_set_str(second, "text", "second");
    spark_item_set_str(spark_item_list_add(second, "replies"), "text", "deep");
    const spark_item *found =
        spark_list_at(&lv, "items", (size_t)spark_list_find_int(&lv, "items", "id", 5));
    ck_assert_str_eq(spark_item_str(spark_item_obj(found, "author"), "name", ""), "ana");
    ck_assert_uint_eq(spark_item_list_len(found, "comments"), 2);
    ck_assert_str_eq(spark_item_str(spark_item_list_at(found, "comments", 1), "text", ""),
                     "second");
    const spark_item *c = spark_item_list_at(found, "comments", 1);
    ck_assert_str_eq(spark_item_str(spark_item_list_at(c, "replies", 0), "text", ""), "deep");
    ck_assert_ptr_null(spark_item_list_at(found, "comments", 2));
    ck_assert_ptr_null(spark_item_obj(found, "comments")); /* a list is not an object */
    ck_assert_ptr_null(spark_item_obj(found, "missing"));
    /* edit_obj keeps an object that is there, and replaces what is not one. */
    spark_item_set_str(spark_item_edit_obj(it, "author"), "role", "owner");
    ck_assert_str_eq(spark_item_str(spark_item_obj(found, "author"), "name", ""), "ana");
    spark_item_set_int(it, "n", 1);
    ck_assert_ptr_nonnull(spark_item_edit_obj(it, "n"));
    ck_assert_ptr_nonnull(spark_item_obj(found, "n"));
    spark_item_list_remove(it, "comments", 0);
    ck_assert_str_eq(spark_item_str(spark_item_list_at(found, "comments", 0), "text", ""),
                     "second");
    ck_assert_str_eq(json_object_to_json_string_ext(
                         json_object_array_get_idx(json_object_object_get(state, "items"), 3),
                         JSON_C_TO_STRING_PLAIN),
                     "{\"id\":5,\"author\":{\"name\":\"ana\",\"role\":\"owner\"},\"comments\":[{"
                     "\"text\":\"second\",\"replies\":[{\"text\":\"deep\"}]}],\"n\":{}}");
    spark_list_clear(&lv, "items");
    ck_assert_uint_eq(spark_list_len(&lv, "items"), 0);
    spark_live_clear_outcome(&lv); /* what the run copied, as after a dispatch */
    json_object_put(state);
}
END_TEST

START_TEST(render_cannot_write) {
    /* A render is read-only: shared state writes are refused. */
    json_object *state = json_tokener_parse("{\"count\":3}");
    spark_live lv = {.type = &todo_component, .id = "todo:x", .state = state};
    ck_assert_int_eq(spark_state_set_int(&lv, "count", 9), SPARK_FAILED);
    ck_assert_int_eq(spark_state_int(&lv, "count", 0), 3);
    lv.shared_writable = true;
    ck_assert_int_eq(spark_state_add(&lv, "count", 2), SPARK_OK);
    ck_assert_int_eq(spark_state_int(&lv, "count", 0), 5);
    ck_assert_int_eq(spark_state_int(&lv, "missing", -7), -7);
    ck_assert_str_eq(spark_state_str(&lv, "count", "not a string"), "not a string");
    json_object_put(state);
}
END_TEST

START_TEST(room_older_messages_come_first_and_loads_are_bounded) {
    static const spark_component room = {.name = "room", .room = true};
    spark_room_view recent = {.messages = json_tokener_parse("[{\"seq\":41},{\"seq\":42}]")};
    spark_room_older older = {.messages = json_tokener_parse("[{\"seq\":7},{\"seq\":9}]")};
    spark_live lv = {.type = &room, .id = "room:x", .room = &recent};
    /* Before a load: the recent ones, and older ones if they fill the view. */
    ck_assert_uint_eq(spark_room_len(&lv), 2);
    ck_assert(!spark_room_has_older(&lv));
    recent.full = true;
    ck_assert(spark_room_has_older(&lv));
    /* The viewer's older ones go first; has_older is theirs. */
    lv.older = &older;
    ck_assert_uint_eq(spark_room_len(&lv), 4);
    long long seqs[] = {7, 9, 41, 42};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(spark_item_int(spark_room_at(&lv, i), "seq", 0), seqs[i]);
    ck_assert_ptr_null(spark_room_at(&lv, 4));
    ck_assert(!spark_room_has_older(&lv));
    spark_room_older more = {.messages = older.messages, .more = true};
    lv.older = &more;
    ck_assert(spark_room_has_older(&lv));

    /* Asked for in on_event only, 1 to SPARK_ROOM_PAGE_MAX. */
    ck_assert_int_eq(spark_room_load_older(&lv, 20), SPARK_FAILED);
    ck_assert_str_eq(lv.fail_code, "invalid_call");
    spark_live_clear_outcome(&lv);
    lv.shared_writable = lv.local_writable = true;
    int bad[] = {0, -1, SPARK_ROOM_PAGE_MAX + 1};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(spark_room_load_older(&lv, bad[i]), SPARK_FAILED);
        ck_assert_str_eq(lv.fail_code, "invalid_limit");
        ck_assert_int_eq(lv.load_older, 0);
        spark_live_clear_outcome(&lv);
    }
    ck_assert_int_eq(spark_room_load_older(&lv, SPARK_ROOM_PAGE_MAX), SPARK_OK);
    ck_assert_int_eq(lv.load_older, SPARK_ROOM_PAGE_MAX);
    spark_live_clear_outcome(&lv);
    ck_assert_int_eq(lv.load_older, 0);
    lv.external = true;
    ck_assert_int_eq(spark_room_load_older(&lv, 1), SPARK_FAILED);
    spark_live_clear_outcome(&lv);
    /* A component that is no room has no older messages to load. */
    spark_live todo = {.type = &todo_component, .id = "todo:x"};
    todo.shared_writable = todo.local_writable = true;
    ck_assert_int_eq(spark_room_load_older(&todo, 1), SPARK_FAILED);
    ck_assert(!spark_room_has_older(&todo));
    ck_assert_uint_eq(spark_room_len(&todo), 0);
    spark_live_clear_outcome(&todo);
    json_object_put(recent.messages);
    json_object_put(older.messages);
}
END_TEST

int main(void) {
    Suite *s = suite_create("live");
    TCase *tc = tcase_create("live");
    tcase_add_test(tc, bad_frames_get_codes);
    tcase_add_test(tc, good_frames_parse);
    tcase_add_test(tc, server_frames);
    tcase_add_test(tc, azu_frames_parse);
    tcase_add_test(tc, azu_server_frames);
    tcase_add_test(tc, component_ids);
    tcase_add_test(tc, todo_text_is_escaped);
    tcase_add_test(tc, todo_counts_and_filters);
    tcase_add_test(tc, todo_events);
    tcase_add_test(tc, data_int_reads_numeric_strings);
    tcase_add_test(tc, state_numbers_read_numeric_strings);
    tcase_add_test(tc, list_helpers_and_nested_items);
    tcase_add_test(tc, render_cannot_write);
    tcase_add_test(tc, room_older_messages_come_first_and_loads_are_bounded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
