/*
 * todo.c - the seed's TodoListComponent. The items are shared by everyone
 * on the list; the filter and the text being typed are each viewer's own.
 * Its page, /todo/:list, is declared in site.c.
 */
#include <spark/component.h>

#include <stdlib.h>
#include <string.h>

#define MAX_TODO_CHARS 500

static const char *const filters[] = {"all", "active", "completed"};

/* One todo, as a function of the item and the filter only: spark_each
 * gives an unchanged item's row again without running this. Returns
 * whether the todo is left to do. */
static bool row(spark_html *h, const spark_item *it, const char *filter) {
    bool done = spark_item_bool(it, "done", false);
    bool shown = strcmp(filter, "all") == 0 || done == (strcmp(filter, "completed") == 0);
    if (shown) {
        const char *id = spark_itoa(h, spark_item_int(it, "id", 0));
        LI(h, "spark-key", id, "class", done ? "done" : SPARK_OMIT) {
            INPUT(h, "type", "checkbox", "spark-click", "toggle", "spark-value-id", id, "checked",
                  SPARK_BOOL(done));
            LABEL(h) { spark_text(h, spark_item_str(it, "text", "")); }
            BUTTON(h, "class", "destroy", "spark-click", "delete", "spark-value-id", id) {
                spark_text(h, "×");
            }
        }
    }
    return !done;
}

static void render(spark_html *h, const spark_view *v) {
    const char *filter = spark_local_str(v, "filter", "all");
    size_t n = spark_list_len(v, "items"), left = 0;
    SECTION(h, "class", "todoapp") {
        FORM(h, "class", "new-todo", "spark-submit", "add_todo") {
            INPUT(h, "name", "text", "placeholder", "What needs to be done?", "autocomplete", "off",
                  "spark-input", "draft", "value", spark_local_str(v, "draft", ""));
            BUTTON(h, "type", "submit") { spark_text(h, "Add"); }
        }
        UL(h, "class", "todo-list") { left = spark_each(h, v, "items", row, filter); }
        FOOTER(h, "class", "footer") {
            SPAN(h, "class", "todo-count") { spark_textf(h, "%zu items left", left); }
            DIV(h, "class", "filters") {
                for (size_t f = 0; f < 3; f++)
                    BUTTON(h, "spark-click", "filter", "spark-value-filter", filters[f], "class",
                           SPARK_IF(strcmp(filter, filters[f]) == 0, "selected")) {
                        spark_text(h, filters[f]);
                    }
            }
            if (left < n) BUTTON(h, "class", "clear-completed", "spark-click", "clear_completed") {
                    spark_text(h, "Clear completed");
                }
        }
    }
}

/* The item whose "id" the event names (a number, or digits from a
 * spark-value-id attribute), as its index; -1 if there is none. */
static long find(spark_event *e) {
    long long id;
    return spark_data_int(e, "id", &id) ? spark_list_find_int(e, "items", "id", id) : -1;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += (*s & 0xC0) != 0x80;
    return n;
}

static int add_todo(spark_event *e) {
    const char *text = spark_data_str(e, "text");
    if (!text) text = spark_local_str(e, "draft", "");
    if (strspn(text, " \t\r\n") == strlen(text)) return SPARK_OK; /* nothing to add */
    if (utf8_chars(text) > MAX_TODO_CHARS)
        return spark_fail(e, "too_long", "a todo is at most 500 characters");
    long long id = spark_state_int(e, "next_id", 1);
    spark_item *it = spark_list_add(e, "items");
    spark_item_set_int(it, "id", id);
    spark_item_set_str(it, "text", text);
    spark_item_set_bool(it, "done", false);
    spark_state_set_int(e, "next_id", id + 1);
    return spark_local_set_str(e, "draft", "");
}

static int on_event(spark_event *e) {
    if (spark_event_is(e, "add_todo")) return add_todo(e);
    if (spark_event_is(e, "draft")) {
        const char *value = spark_data_str(e, "value");
        return value ? spark_local_set_str(e, "draft", value)
                     : spark_fail(e, "invalid_data", "value must be a string");
    }
    if (spark_event_is(e, "filter")) {
        const char *f = spark_data_str(e, "filter");
        for (size_t i = 0; f && i < 3; i++)
            if (strcmp(f, filters[i]) == 0) return spark_local_set_str(e, "filter", f);
        return spark_fail(e, "invalid_data", "filter is all, active or completed");
    }
    if (spark_event_is(e, "clear_completed")) {
        spark_list_remove_where(e, "items", "done", true);
        return SPARK_OK;
    }
    if (spark_event_is(e, "toggle") || spark_event_is(e, "delete")) {
        long i = find(e);
        if (i < 0) return spark_fail(e, "not_found", "no such todo");
        if (spark_event_is(e, "delete")) {
            spark_list_remove(e, "items", (size_t)i);
        } else {
            spark_item *it = spark_list_edit(e, "items", (size_t)i);
            spark_item_set_bool(it, "done", !spark_item_bool(it, "done", false));
        }
        return SPARK_OK;
    }
    return SPARK_UNKNOWN_EVENT;
}

SPARK_COMPONENT(todo, .render = render, .on_event = on_event,
                .initial_state = "{\"items\":[],\"next_id\":1}",
                .initial_view = "{\"filter\":\"all\",\"draft\":\"\"}");
