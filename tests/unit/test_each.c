/*
 * test_each.c - lists rendered row by row (spark_each) and the state forks
 * that handlers change (spark_state_fork).
 *
 * A render built on the last one gives an unchanged item's row again
 * without running it. The danger is a stale row: one whose item, argument
 * or row function changed, given again as it was. So every render here is
 * checked against a fresh render of the same inputs (same HTML, equal
 * trees) and the diff from the last tree is applied and must give the new
 * one; and the rows that ran are counted, so that the tests also fail if
 * nothing is reused. The edits come through the runtime's own paths: a
 * handler on a fork, and states read back from their text (every object
 * new, as after another instance's write).
 */
#include "component_ctx.h"
#include "diff.h"
#include "support.h"

/* The demo app uses only the public API; link it in. */
#include "../../apps/todo.c"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rows_run; /* rows whose function ran: counted, never rendered */

/* A row of the item's id, tag, text and nested object; with arg "text",
 * text around its element (a row that runs every time: the text joins the
 * next row's); with "odd", only the items of odd id. */
static bool plain_row(spark_html *h, const spark_item *it, const char *arg) {
    rows_run++;
    long long id = spark_item_int(it, "id", 0);
    if (strcmp(arg, "text") == 0) spark_textf(h, "#%lld", id);
    if (strcmp(arg, "odd") == 0 && id % 2 == 0) return false;
    LI(h, "spark-key", spark_itoa(h, id), "class", spark_item_str(it, "tag", "")) {
        spark_text(h, spark_item_str(it, "text", ""));
        const spark_item *sub = spark_item_obj(it, "sub");
        if (sub) SPAN(h) {
                spark_text(h, spark_item_str(sub, "x", ""));
            }
    }
    if (strcmp(arg, "text") == 0) spark_text(h, ";"); /* joins the next row's text */
    return spark_item_bool(it, "done", false);
}

/* The same list by another function: its rows are not plain_row's. */
static bool other_row(spark_html *h, const spark_item *it, const char *arg) {
    rows_run++;
    (void)arg;
    LI(h, "spark-key", spark_itoa(h, spark_item_int(it, "id", 0)), "data-other", "") {
        spark_text(h, spark_item_str(it, "text", ""));
    }
    return false;
}

static void rows_render(spark_html *h, const spark_view *v) {
    const char *arg = spark_local_str(v, "arg", "");
    spark_row_fn by = spark_local_bool(v, "other", false) ? other_row : plain_row;
    size_t done = 0;
    UL(h, "class", "list") { done = spark_each(h, v, "items", by, arg); }
    P(h) { spark_textf(h, "%zu done", done); }
    /* Two lists in one element, one of them by the same function. */
    OL(h) {
        spark_each(h, v, "more", plain_row, arg);
        spark_each(h, v, "items", plain_row, "odd");
    }
}

SPARK_COMPONENT(rows, .render = rows_render);

/* A list that is the component's top level, after text that a first row
 * of text would join. */
static void top_render(spark_html *h, const spark_view *v) {
    spark_text(h, "top");
    spark_each(h, v, "items", plain_row, spark_local_str(v, "arg", ""));
}

SPARK_COMPONENT(top, .render = top_render);

static spark_live context(const char *id, json_object *state, json_object *local) {
    const char *key;
    return (spark_live){.type = spark_component_of_id(id, &key),
                        .id = id,
                        .key = key,
                        .state = state,
                        .local = local,
                        .viewer_id = "u1",
                        .viewer_name = "Ann"};
}

/* Renders on *last (compacted first, as the runtime does; NULL: none) and
 * checks the render against a fresh one and the diff from *last, which it
 * replaces. Returns how many rows ran. */
static int render_on(spark_html **last, const char *id, json_object *state, json_object *local) {
    if (*last) spark_html_compact(last);
    spark_live lv = context(id, state, local);
    const char *error;
    spark_html *fresh = spark_live_render(&lv, &error);
    ck_assert_ptr_nonnull(fresh);
    lv.reuse = *last;
    rows_run = 0;
    spark_html *now = spark_live_render(&lv, &error);
    int ran = rows_run;
    ck_assert_ptr_nonnull(now);
    const char *why = spark_check_rerender(*last ? spark_html_root(*last) : NULL,
                                           spark_html_root(now), spark_html_root(fresh));
    ck_assert_msg(why == NULL, "%s", why);
    spark_html_free(fresh);
    spark_html_free(*last);
    *last = now;
    return ran;
}

/* A handler run on a fork of *state, as the runtime runs one (writes.c):
 * the fork replaces *state, which stays as it was for whoever holds it. */
typedef void (*edit_fn)(spark_event *e, int arg);

static void run_on_fork(json_object **state, edit_fn edit, int arg) {
    json_object *fork = spark_state_fork(*state);
    ck_assert_ptr_nonnull(fork);
    spark_live lv = context("rows:x", fork, NULL);
    lv.shared_writable = true;
    edit(&lv, arg);
    spark_live_clear_outcome(&lv);
    json_object_put(*state);
    *state = fork;
}

static void toggle(spark_event *e, int i) {
    spark_item *it = spark_list_edit(e, "items", (size_t)i);
    spark_item_set_bool(it, "done", !spark_item_bool(it, "done", false));
}

static void retext(spark_event *e, int i) {
    spark_item *it = spark_list_edit(e, "items", (size_t)i);
    spark_item_set_str(it, "text", spark_item_str(it, "text", "") + 1);
    /* A second edit of the same item changes the same copy. */
    ck_assert_ptr_eq(spark_list_edit(e, "items", (size_t)i), it);
}

static void resub(spark_event *e, int i) {
    spark_item *it = spark_list_edit(e, "items", (size_t)i);
    spark_item_set_int(spark_item_edit_obj(it, "sub"), "x", i + 100);
}

static void add(spark_event *e, int id) {
    spark_item *it = spark_list_add(e, id % 3 ? "items" : "more");
    spark_item_set_int(it, "id", id);
    spark_item_set_str(it, "text", "new item");
}

/* Thousands of items made and edited by one run: each edit finds its
 * copy (or the new item) among the run's own. */
static void add_and_edit_many(spark_event *e, int n) {
    size_t had = spark_list_len(e, "items");
    for (int k = 0; k < n; k++)
        spark_item_set_int(spark_list_add(e, "items"), "id", 1000 + k);
    for (size_t i = 0; i < had + (size_t)n; i++) {
        spark_item *it = spark_list_edit(e, "items", i);
        spark_item_set_str(it, "text", "edited");
        ck_assert_ptr_eq(spark_list_edit(e, "items", i), it);
    }
}

static void drop(spark_event *e, int i) { spark_list_remove(e, "items", (size_t)i); }

static void drop_done(spark_event *e, int unused) {
    (void)unused;
    spark_list_remove_where(e, "items", "done", true);
}

static json_object *rows_state(int n) {
    json_object *s = json_tokener_parse("{\"items\":[],\"more\":[{\"id\":1000,\"text\":\"m\"}]}");
    json_object *items = json_object_object_get(s, "items");
    for (int i = 1; i <= n; i++) {
        char text[32];
        snprintf(text, sizeof text, "item %d", i);
        json_object *it = json_object_new_object();
        json_object_object_add(it, "id", json_object_new_int(i));
        json_object_object_add(it, "text", json_object_new_string(text));
        json_object_object_add(it, "done", json_object_new_boolean(i % 4 == 0));
        json_object_array_add(items, it);
    }
    return s;
}

/* The state read back from its text with `from` replaced by `to` (NULL:
 * as it is): every object new, as after another instance's write. */
static void reload(json_object **state, const char *from, const char *to) {
    const char *text = json_object_to_json_string_ext(*state, JSON_C_TO_STRING_PLAIN);
    char *copy = strdup(text);
    if (from) {
        char *at = strstr(copy, from);
        ck_assert_ptr_nonnull(at);
        ck_assert_uint_eq(strlen(from), strlen(to));
        memcpy(at, to, strlen(to));
    }
    json_object *s = json_tokener_parse(copy);
    ck_assert_ptr_nonnull(s);
    free(copy);
    json_object_put(*state);
    *state = s;
}

static void set_local(json_object *local, const char *arg, bool other) {
    json_object_object_add(local, "arg", json_object_new_string(arg));
    json_object_object_add(local, "other", json_object_new_boolean(other));
}

static void finish(json_object *state, json_object *local, spark_html *last) {
    json_object_put(state);
    json_object_put(local);
    spark_html_free(last);
}

/* Rows run: the three lists' when nothing is reused (10 items, 1 more). */
#define ALL_ROWS (10 + 1 + 10)

START_TEST(only_changed_rows_run_again) {
    json_object *state = rows_state(10), *local = json_object_new_object();
    set_local(local, "", false);
    spark_html *last = NULL;
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), ALL_ROWS);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 0);
    /* A toggle runs its row in both lists of items; past 8 renders the
     * chain is compacted, and the rows are still known. */
    for (int k = 0; k < 12; k++) {
        run_on_fork(&state, toggle, k % 10);
        ck_assert_int_eq(render_on(&last, "rows:x", state, local), 2);
    }
    run_on_fork(&state, retext, 3);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 2);
    run_on_fork(&state, resub, 5);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 2);
    run_on_fork(&state, add, 11);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 2);
    run_on_fork(&state, add, 12); /* into "more" */
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 1);
    run_on_fork(&state, drop, 0);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 0);
    run_on_fork(&state, drop, 4);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 0);
    /* Read back from text: every item is new, the equal ones are known. */
    reload(&state, NULL, NULL);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 0);
    reload(&state, "item 7", "item 8");
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 2);
    finish(state, local, last);
}
END_TEST

START_TEST(rows_of_another_argument_or_function_run_again) {
    json_object *state = rows_state(10), *local = json_object_new_object();
    set_local(local, "", false);
    spark_html *last = NULL;
    render_on(&last, "rows:x", state, local);
    set_local(local, "odd", false);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 11); /* the "odd" list is known */
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 0);
    set_local(local, "odd", true);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 10);
    set_local(local, "", false);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 11);
    /* Text beside a row's element: such rows run every time. */
    set_local(local, "text", false);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 11);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 11);
    run_on_fork(&state, toggle, 2);
    ck_assert_int_eq(render_on(&last, "rows:x", state, local), 12);
    finish(state, local, last);
}
END_TEST

START_TEST(a_list_at_the_top_level) {
    json_object *state = rows_state(10), *local = json_object_new_object();
    set_local(local, "", false);
    spark_html *last = NULL;
    ck_assert_int_eq(render_on(&last, "top:x", state, local), 10);
    for (int k = 0; k < 12; k++) { /* past a compaction */
        run_on_fork(&state, toggle, (3 * k) % 10);
        ck_assert_int_eq(render_on(&last, "top:x", state, local), 1);
    }
    set_local(local, "text", false);
    ck_assert_int_eq(render_on(&last, "top:x", state, local), 10);
    ck_assert_int_eq(render_on(&last, "top:x", state, local), 10);
    finish(state, local, last);
}
END_TEST

/* Items that are equal JSON in other places, and items that move. */
START_TEST(equal_and_moved_items) {
    json_object *state = json_tokener_parse(
        "{\"items\":[{\"id\":1,\"text\":\"a\"},{\"id\":1,\"text\":\"a\"},{\"id\":2,\"text\":\"b\"},"
        "{\"id\":3,\"text\":\"c\"}]}");
    json_object *local = json_object_new_object();
    set_local(local, "", false);
    spark_html *last = NULL;
    render_on(&last, "rows:x", state, local);
    reload(&state, "{\"id\":2,\"text\":\"b\"},{\"id\":3,\"text\":\"c\"}",
           "{\"id\":3,\"text\":\"c\"},{\"id\":2,\"text\":\"b\"}");
    render_on(&last, "rows:x", state, local);
    reload(&state, "{\"id\":1,\"text\":\"a\"},{\"id\":1", "{\"id\":3,\"text\":\"a\"},{\"id\":1");
    render_on(&last, "rows:x", state, local);
    finish(state, local, last);
}
END_TEST

/* Random edits, by handlers on forks and by states read back from text,
 * with the argument and row function changing now and then: every render
 * must be a fresh render's tree, and the diff must lead to it. */
START_TEST(random_edits_render_as_afresh) {
    srand(7 + (unsigned)_i);
    json_object *state = rows_state(12), *local = json_object_new_object();
    set_local(local, "", false);
    spark_html *last = NULL;
    int next_id = 100;
    for (int step = 0; step < 200; step++) {
        int n = (int)json_object_array_length(json_object_object_get(state, "items"));
        int i = n ? rand() % n : 0;
        switch (rand() % 10) {
        case 0:
        case 1:
            if (n) run_on_fork(&state, toggle, i);
            break;
        case 2:
            if (n) run_on_fork(&state, retext, i);
            break;
        case 3:
            if (n) run_on_fork(&state, resub, i);
            break;
        case 4:
            run_on_fork(&state, add, next_id++);
            break;
        case 5:
            if (n) run_on_fork(&state, drop, i);
            break;
        case 6:
            run_on_fork(&state, drop_done, 0);
            break;
        case 7:
            reload(&state, NULL, NULL);
            break;
        case 8: {
            static const char *const args[] = {"", "odd", "text"};
            set_local(local, args[rand() % 3], rand() % 4 == 0);
            break;
        }
        default:
            if (rand() % 2) spark_html_free(last), last = NULL; /* a new viewer */
            break;
        }
        render_on(&last, "rows:x", state, local);
    }
    finish(state, local, last);
}
END_TEST

/* The todo demo, driven by its own handlers on forks of the state. */
static void todo_event(json_object **state, json_object *local, const char *name,
                       const char *data) {
    json_object *fork = spark_state_fork(*state), *d = json_tokener_parse(data);
    spark_live lv = context("todo:x", fork, local);
    lv.shared_writable = lv.local_writable = true;
    lv.event = name;
    lv.data = d;
    spark_live_dispatch(&lv);
    spark_live_clear_outcome(&lv);
    json_object_put(d);
    json_object_put(*state);
    *state = fork;
}

START_TEST(todo_renders_as_afresh) {
    srand(11);
    json_object *state = spark_component_initial(todo_component.initial_state);
    json_object *local = spark_component_initial(todo_component.initial_view);
    spark_html *last = NULL;
    for (int i = 0; i < 30; i++)
        todo_event(&state, local, "add_todo", "{\"text\":\"buy milk & <bread>\"}");
    render_on(&last, "todo:x", state, local);

    for (int step = 0; step < 150; step++) {
        char data[64];
        snprintf(data, sizeof data, "{\"id\":%d}", 1 + rand() % 40);
        switch (rand() % 8) {
        case 0:
            todo_event(&state, local, "add_todo", "{\"text\":\"more\"}");
            break;
        case 1:
            todo_event(&state, local, "delete", data);
            break;
        case 2:
            todo_event(&state, local, "clear_completed", "{}");
            break;
        case 3:
            snprintf(data, sizeof data, "{\"filter\":\"%s\"}", filters[rand() % 3]);
            todo_event(&state, local, "filter", data);
            break;
        default:
            todo_event(&state, local, "toggle", data);
            break;
        }
        render_on(&last, "todo:x", state, local);
    }
    finish(state, local, last);
}
END_TEST

/* A handler changes copies: the state it was forked from stays as it was,
 * and shares every item the handler did not change. */
START_TEST(handlers_change_copies) {
    json_object *before = rows_state(5), *state = json_object_get(before);
    char *text = strdup(json_object_to_json_string(before));
    run_on_fork(&state, toggle, 2);
    run_on_fork(&state, add, 7);
    run_on_fork(&state, drop, 0);
    ck_assert_str_eq(json_object_to_json_string(before), text);
    json_object *was = json_object_object_get(before, "items"),
                *now = json_object_object_get(state, "items");
    ck_assert_uint_eq(json_object_array_length(now), 5);
    ck_assert_ptr_eq(json_object_array_get_idx(now, 0), json_object_array_get_idx(was, 1));
    ck_assert_ptr_ne(json_object_array_get_idx(now, 1), json_object_array_get_idx(was, 2));
    ck_assert_ptr_eq(json_object_array_get_idx(now, 2), json_object_array_get_idx(was, 3));
    /* Clearing and nested edits too. */
    json_object *mid = json_object_get(state);
    free(text);
    text = strdup(json_object_to_json_string(mid));
    run_on_fork(&state, resub, 1);
    run_on_fork(&state, drop_done, 0);
    size_t had = json_object_array_length(json_object_object_get(state, "items"));
    run_on_fork(&state, add_and_edit_many, 3000);
    ck_assert_str_eq(json_object_to_json_string(mid), text);
    ck_assert_uint_eq(json_object_array_length(json_object_object_get(state, "items")), had + 3000);
    free(text);
    json_object_put(mid);
    json_object_put(before);
    json_object_put(state);
}
END_TEST

int main(void) {
    Suite *s = suite_create("each");
    TCase *tc = tcase_create("each");
    tcase_add_test(tc, only_changed_rows_run_again);
    tcase_add_test(tc, rows_of_another_argument_or_function_run_again);
    tcase_add_test(tc, equal_and_moved_items);
    tcase_add_test(tc, a_list_at_the_top_level);
    tcase_add_loop_test(tc, random_edits_render_as_afresh, 0, 8);
    tcase_add_test(tc, todo_renders_as_afresh);
    tcase_add_test(tc, handlers_change_copies);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
