/*
 * fuzz_each.c - lists rendered row by row (spark_each) under any sequence
 * of edits: the input is a program, two bytes an op, of edits to a list of
 * items (handlers on forks of the state, as the runtime runs them, and the
 * state read back from its text, as after another instance's write), of
 * the row's argument, and of new viewers. After each op the component is
 * rendered on the last render, as the runtime renders (compacted first),
 * and afresh: both must serialize the same and be equal trees, and the
 * diff from the last render must apply to it and give the new HTML. A row
 * given again when its item, argument or function changed shows here.
 */
#include "component_ctx.h"
#include "diff.h"
#include "fuzz.h"
#include "support.h"

/* Items {"id":n,"t":text,"d":bool,"s":{"x":n}}; the argument picks which
 * items show, whether text stands beside the element, and the function. */
static bool row(spark_html *h, const spark_item *it, const char *arg) {
    long long id = spark_item_int(it, "id", 0);
    bool done = spark_item_bool(it, "d", false);
    if (arg[0] == 't') spark_textf(h, "%lld", id);
    if (arg[0] == 'o' && id % 2 == 0) return done;
    LI(h, "spark-key", spark_itoa(h, id), "class", SPARK_IF(done, "done")) {
        spark_text(h, spark_item_str(it, "t", ""));
        const spark_item *sub = spark_item_obj(it, "s");
        if (sub) EM(h) {
                spark_textf(h, "%lld", spark_item_int(sub, "x", 0));
            }
    }
    if (arg[0] == 't') spark_text(h, ";");
    return done;
}

static bool other_row(spark_html *h, const spark_item *it, const char *arg) {
    (void)arg;
    LI(h, "data-id", spark_itoa(h, spark_item_int(it, "id", 0))) {
        spark_text(h, spark_item_str(it, "t", ""));
    }
    return false;
}

static void render(spark_html *h, const spark_view *v) {
    const char *arg = spark_local_str(v, "arg", "");
    spark_row_fn by = arg[0] == 'f' ? other_row : row;
    size_t done = 0;
    UL(h) { done = spark_each(h, v, "items", by, arg); }
    P(h) { spark_textf(h, "%zu", done); }
    OL(h) { spark_each(h, v, "items", row, "o"); }
}

SPARK_COMPONENT(each, .render = render);

static spark_live context(json_object *state, json_object *local) {
    const char *key;
    return (spark_live){.type = spark_component_of_id("each:f", &key),
                        .id = "each:f",
                        .key = key,
                        .state = state,
                        .local = local,
                        .viewer_id = "u",
                        .viewer_name = "u"};
}

static void check_render(spark_html **last, json_object *state, json_object *local) {
    if (*last) spark_html_compact(last);
    spark_live lv = context(state, local);
    const char *error;
    spark_html *fresh = spark_live_render(&lv, &error);
    lv.reuse = *last;
    spark_html *now = spark_live_render(&lv, &error);
    FUZZ_CHECK(fresh && now);
    FUZZ_CHECK(!spark_check_rerender(*last ? spark_html_root(*last) : NULL, spark_html_root(now),
                                     spark_html_root(fresh)));
    spark_html_free(fresh);
    spark_html_free(*last);
    *last = now;
}

/* Op `op` with parameter `p` in a handler run on a fork of *state. */
static void edit(json_object **state, int op, int p) {
    json_object *fork = spark_state_fork(*state);
    FUZZ_CHECK(fork);
    spark_live e = context(fork, NULL);
    e.shared_writable = true;
    size_t n = spark_list_len(&e, "items"), i = n ? (size_t)p % n : 0;
    spark_item *it;
    switch (op) {
    case 0: /* toggle */
        if ((it = spark_list_edit(&e, "items", i)))
            spark_item_set_bool(it, "d", !spark_item_bool(it, "d", false));
        break;
    case 1: /* retext: texts repeat, so equal items appear */
        if ((it = spark_list_edit(&e, "items", i))) spark_item_set_str(it, "t", p % 3 ? "a" : "b");
        break;
    case 2: /* nested */
        if ((it = spark_list_edit(&e, "items", i)))
            spark_item_set_int(spark_item_edit_obj(it, "s"), "x", p % 4);
        break;
    case 3: /* add; ids repeat too */
        it = spark_list_add(&e, "items");
        spark_item_set_int(it, "id", p % 16);
        spark_item_set_str(it, "t", "a");
        break;
    case 4:
        if (n) spark_list_remove(&e, "items", i);
        break;
    default:
        spark_list_remove_where(&e, "items", "d", p % 2 == 0);
        break;
    }
    spark_live_clear_outcome(&e);
    json_object_put(*state);
    *state = fork;
}

/* The state read back from its text, with items i and j swapped (a move,
 * every object new). */
static void reload(json_object **state, int i, int j) {
    json_object *s = json_tokener_parse(json_object_to_json_string(*state));
    json_object *items = json_object_object_get(s, "items");
    size_t n = json_object_array_length(items);
    if (n) {
        json_object *a = json_object_get(json_object_array_get_idx(items, (size_t)i % n));
        json_object *b = json_object_get(json_object_array_get_idx(items, (size_t)j % n));
        json_object_array_put_idx(items, (size_t)i % n, b);
        json_object_array_put_idx(items, (size_t)j % n, a);
    }
    json_object_put(*state);
    *state = s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_object *state = json_tokener_parse("{\"items\":[{\"id\":1,\"t\":\"a\"},{\"id\":2,"
                                            "\"t\":\"b\",\"d\":true},{\"id\":3,\"t\":\"a\"}]}");
    json_object *local = json_object_new_object();
    json_object_object_add(local, "arg", json_object_new_string(""));
    spark_html *last = NULL;
    check_render(&last, state, local);
    for (size_t k = 0; k + 1 < size && k < 2 * 64; k += 2) {
        int op = data[k] % 10, p = data[k + 1];
        if (op < 6) {
            edit(&state, op, p);
        } else if (op == 6) {
            reload(&state, p & 15, p >> 4);
        } else if (op == 7) {
            static const char *const args[] = {"", "o", "t", "f"};
            json_object_object_add(local, "arg", json_object_new_string(args[p % 4]));
        } else if (op == 8) {
            spark_html_free(last); /* a new viewer */
            last = NULL;
        }
        check_render(&last, state, local);
    }
    spark_html_free(last);
    json_object_put(state);
    json_object_put(local);
    return 0;
}
