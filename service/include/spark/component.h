/*
 * component.h - live components: shared state in, markup out, events in,
 * state changed. The runtime does the rest (loading, versions, retries,
 * PostgreSQL, diffs, every instance and every viewer).
 *
 *     static void render(spark_html *h, const spark_view *v) {
 *         DIV(h, "class", "counter") {
 *             H2(h) { spark_textf(h, "Count: %lld", spark_state_int(v, "count", 0)); }
 *             BUTTON(h, "spark-click", "increment") { spark_text(h, "+"); }
 *         }
 *     }
 *     static int on_event(spark_event *e) {
 *         if (spark_event_is(e, "increment")) return spark_state_add(e, "count", 1);
 *         return SPARK_UNKNOWN_EVENT;
 *     }
 *     SPARK_COMPONENT(counter, .render = render, .on_event = on_event,
 *                     .initial_state = "{\"count\":0}");
 *
 * Two kinds of state. The shared state is one JSON object per component
 * instance ("counter:home"), stored and versioned, seen by every viewer.
 * The view state is one JSON object per viewer (a browser tab's join), in
 * memory only: a filter, the text being typed. Render reads both, and who
 * is looking; a handler may change either or both.
 *
 * Handlers are re-runnable: when another writer got there first, the
 * runtime runs the handler again on the fresh state. So a handler reads
 * and writes state only through these calls and has no other effect; what
 * it asks for (a flash, a redirect, a room post) happens once, after the
 * change is stored. A handler that fails (returns spark_fail) changes
 * nothing. An event that leaves the shared state as it was writes nothing.
 *
 * Ownership: strings passed in are copied; strings and items returned
 * belong to the view or event and live until the callback returns.
 */
#ifndef SPARK_COMPONENT_H
#define SPARK_COMPONENT_H

#include <spark/html.h>
#include <spark/spark.h>

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One name, two promises: render gets a `const spark_view *` and may only
 * read; a handler gets a `spark_event *` and may also change things. */
typedef struct spark_live spark_view;
typedef struct spark_live spark_event;

/* An object inside the state: a list element, a room message. */
typedef struct spark_item spark_item;

typedef struct spark_component {
    const char *name;          /* the type: [a-z][a-z0-9_]*, set by SPARK_COMPONENT */
    const char *initial_state; /* JSON object of a new instance; NULL is {} */
    const char *initial_view;  /* JSON object of a new viewer; NULL is {} */
    void (*render)(spark_html *h, const spark_view *v);
    /* SPARK_OK, SPARK_UNKNOWN_EVENT, or spark_fail(...). */
    int (*on_event)(spark_event *e);
    /* Events from server code, never from browsers: a channel's
     * spark_conn_event (the seed's handle_external_event). Same results
     * and calls as on_event, on the shared state only (there is no view
     * state); the viewer is the channel connection's user. */
    int (*on_external)(spark_event *e);
    /* A viewer joined: runs once the stored state has loaded and the join's
     * render succeeded (a join that fails never mounts), before the viewer
     * is sent its first render. Only view state may change here. */
    void (*on_mount)(spark_event *e);
    /* A viewer that mounted left (leave, a new join of the same id, or its
     * connection closed): once per on_mount. */
    void (*on_unmount)(const spark_view *v);
    /* Every tick_ms, per joined viewer, while viewed. Only view state may
     * change. */
    void (*on_tick)(spark_event *e);
    int tick_ms;
    /* The instance id ("chat:lobby") is also a room: render sees its recent
     * messages, who is online and who is typing; viewers count as online. */
    bool room;
} spark_component;

/* Registers a component type (before spark_main). The struct must outlive
 * the program. Returns 0, or -1 on a bad or duplicate name. */
SPARK_API int spark_component_register(const spark_component *component);

#define SPARK_COMPONENT(ident, ...)                                                                \
    static const spark_component ident##_component = {.name = #ident, __VA_ARGS__};                \
    __attribute__((constructor)) static void ident##_component_register(void) {                    \
        spark_component_register(&ident##_component);                                              \
    }

/* ---- handler results ------------------------------------------------------ */

enum { SPARK_OK = 0, SPARK_FAILED = -1, SPARK_UNKNOWN_EVENT = -2 };

/* Refuses the event: the client gets {"ok":false,"error":{code,message}}
 * and nothing changes. Returns SPARK_FAILED, for `return spark_fail(...)`. */
SPARK_API int spark_fail(spark_event *e, const char *code, const char *message);

/* Shown to the viewer who sent the event, once the event succeeded.
 * `level` is "info", "success", "warning" or "error". */
SPARK_API void spark_flash(spark_event *e, const char *level, const char *message);

/* Sends the viewer who sent the event to `url`, once the event succeeded.
 * Only a path on this site ("/done?x=1"): an off-site URL ("https://..",
 * "//host", "/\host") is not sent, and is logged; the event still counts. */
SPARK_API void spark_redirect(spark_event *e, const char *url);

/* ---- the event ------------------------------------------------------------- */

SPARK_API bool spark_event_is(const spark_event *e, const char *name);
SPARK_API const char *spark_event_name(const spark_event *e);

/* Fields of the event's data object (the client's "d"). Absent or of
 * another type: NULL / false.
 *
 * Numbers: every getter of a number, here and below, also takes a string
 * that is a number and nothing else ("42", "-7", "1.5e3"; not " 4", "4x",
 * "inf"), since browsers send every spark-value-* and input value as a
 * string. An int getter takes no fraction (1.5 is absent); a double
 * getter takes integers too. */
SPARK_API const char *spark_data_str(const spark_event *e, const char *key);
SPARK_API bool spark_data_int(const spark_event *e, const char *key, long long *out);
SPARK_API bool spark_data_double(const spark_event *e, const char *key, double *out);
SPARK_API bool spark_data_bool(const spark_event *e, const char *key, bool *out);

/* ---- who and what ---------------------------------------------------------- */

/* The viewer's user id and display name (anonymous viewers have ids too).
 * A render that reads them is rendered per user, not shared. */
SPARK_API const char *spark_viewer_id(const spark_view *v);
SPARK_API const char *spark_viewer_name(const spark_view *v);

/* "todo:groceries" and "groceries". */
SPARK_API const char *spark_component_id(const spark_view *v);
SPARK_API const char *spark_component_key(const spark_view *v);

/* ---- shared state: top-level fields ---------------------------------------- */

/* Reading: the value, or `fallback` when absent or of another type. */
SPARK_API long long spark_state_int(const spark_view *v, const char *key, long long fallback);
SPARK_API double spark_state_double(const spark_view *v, const char *key, double fallback);
SPARK_API bool spark_state_bool(const spark_view *v, const char *key, bool fallback);
SPARK_API const char *spark_state_str(const spark_view *v, const char *key, const char *fallback);

/* Writing (handlers only). Each returns SPARK_OK. A double that is not
 * finite is stored as 0 (JSON has no NaN). */
SPARK_API int spark_state_set_int(spark_event *e, const char *key, long long value);
SPARK_API int spark_state_set_double(spark_event *e, const char *key, double value);
SPARK_API int spark_state_set_bool(spark_event *e, const char *key, bool value);
SPARK_API int spark_state_set_str(spark_event *e, const char *key, const char *value);
SPARK_API int spark_state_add(spark_event *e, const char *key, long long delta);

/* ---- shared state: lists of objects ("items":[{..},{..}]) ------------------ */

SPARK_API size_t spark_list_len(const spark_view *v, const char *list);
/* Element i, or NULL past the end (or when it is not an object). */
SPARK_API const spark_item *spark_list_at(const spark_view *v, const char *list, size_t i);
/* The same element, to change (handlers only). */
SPARK_API spark_item *spark_list_edit(spark_event *e, const char *list, size_t i);
/* Appends a new empty object and returns it to fill in. */
SPARK_API spark_item *spark_list_add(spark_event *e, const char *list);
/* Removes element i (later ones move up). */
SPARK_API void spark_list_remove(spark_event *e, const char *list, size_t i);

/* The index of the first element whose field `key` equals `value` (for
 * find_int, a number or a numeric string), or -1: the seed's
 * `@todos.find(&.id.== id)` is
 *     long i = spark_list_find_int(e, "items", "id", id);  */
SPARK_API long spark_list_find_int(const spark_view *v, const char *list, const char *key,
                                   long long value);
SPARK_API long spark_list_find_str(const spark_view *v, const char *list, const char *key,
                                   const char *value);
/* Removes every element whose boolean field `key` is `value`; returns how
 * many (the seed's `@todos.reject!(&.completed)`). Handlers only. */
SPARK_API size_t spark_list_remove_where(spark_event *e, const char *list, const char *key,
                                         bool value);
/* Removes every element. Handlers only. */
SPARK_API void spark_list_clear(spark_event *e, const char *list);

/* Fields of an item, read as the state's are. */
SPARK_API long long spark_item_int(const spark_item *it, const char *key, long long fallback);
SPARK_API double spark_item_double(const spark_item *it, const char *key, double fallback);
SPARK_API bool spark_item_bool(const spark_item *it, const char *key, bool fallback);
SPARK_API const char *spark_item_str(const spark_item *it, const char *key, const char *fallback);
/* Setting them: only on an item a handler got to change (spark_list_edit,
 * spark_list_add, or inside one of those): those are the event's own
 * copies, where an item from spark_list_at is shared with the state that
 * viewers were rendered from. */
SPARK_API void spark_item_set_int(spark_item *it, const char *key, long long value);
SPARK_API void spark_item_set_double(spark_item *it, const char *key, double value);
SPARK_API void spark_item_set_bool(spark_item *it, const char *key, bool value);
SPARK_API void spark_item_set_str(spark_item *it, const char *key, const char *value);

/* Items nest: an item's field may be an object or a list of objects,
 *     {"id":1,"author":{"name":"ana"},"comments":[{"text":"hi"}]}
 * read with spark_item_obj(it, "author") and spark_item_list_len/at(it,
 * "comments", i), changed with spark_item_edit_obj (the object, made empty
 * if absent or not an object) and spark_item_list_add/remove. */
SPARK_API const spark_item *spark_item_obj(const spark_item *it, const char *key);
SPARK_API spark_item *spark_item_edit_obj(spark_item *it, const char *key);
SPARK_API size_t spark_item_list_len(const spark_item *it, const char *list);
SPARK_API const spark_item *spark_item_list_at(const spark_item *it, const char *list, size_t i);
SPARK_API spark_item *spark_item_list_add(spark_item *it, const char *list);
SPARK_API void spark_item_list_remove(spark_item *it, const char *list, size_t i);

/* ---- rendering a list row by row ------------------------------------------ */

/* Renders a list of the shared state one row per item, as LiveView
 * renders a comprehension: row(h, item, arg) gives the markup of one item
 * and returns whether the item counts; spark_each returns how many did.
 *
 *     static bool row(spark_html *h, const spark_item *it, const char *filter) {
 *         LI(h, "spark-key", spark_itoa(h, spark_item_int(it, "id", 0))) { .. }
 *         return !spark_item_bool(it, "done", false);
 *     }
 *     size_t left = spark_each(h, v, "items", row, filter);
 *
 * What for: a render runs again after every change, and the runtime
 * gives the row of an item that did not change (the same JSON) with the
 * same row function and `arg` from the viewer's last render, without
 * calling row. So a toggle in a list of thousands runs one row. For that,
 * a row is a function of its item and `arg` (a string, may be NULL) and
 * nothing else: it reads no view, no other state, no globals. Elements
 * only: text given directly in the row, outside any element, is allowed
 * but makes that row run every time. Items that are not objects are
 * skipped. */
typedef bool (*spark_row_fn)(spark_html *h, const spark_item *it, const char *arg);
SPARK_API size_t spark_each(spark_html *h, const spark_view *v, const char *list, spark_row_fn row,
                            const char *arg);

/* ---- view state: this viewer's, in memory ----------------------------------- */

SPARK_API long long spark_local_int(const spark_view *v, const char *key, long long fallback);
SPARK_API double spark_local_double(const spark_view *v, const char *key, double fallback);
SPARK_API bool spark_local_bool(const spark_view *v, const char *key, bool fallback);
SPARK_API const char *spark_local_str(const spark_view *v, const char *key, const char *fallback);
SPARK_API int spark_local_set_int(spark_event *e, const char *key, long long value);
SPARK_API int spark_local_set_double(spark_event *e, const char *key, double value);
SPARK_API int spark_local_set_bool(spark_event *e, const char *key, bool value);
SPARK_API int spark_local_set_str(spark_event *e, const char *key, const char *value);

/* ---- rooms (components declared with .room = true) -------------------------- */

/* The room's messages, oldest first (payload objects, as the room's
 * channel posted them, each with its "seq"): the recent ones, after the
 * older ones this viewer loaded (below), if any. */
SPARK_API size_t spark_room_len(const spark_view *v);
SPARK_API const spark_item *spark_room_at(const spark_view *v, size_t i);

/* Paging back, per viewer (the seed's "load_history"). Once the event
 * succeeds, up to `limit` (1 to SPARK_ROOM_PAGE_MAX) messages older than
 * the ones the sender sees are read from the database, without waiting
 * for them; when they arrive that viewer alone is rendered again, with
 * them before the recent ones. They are kept in memory for that viewer
 * (at most SPARK_ROOM_OLDER_MAX) and go when it leaves. A load already
 * under way, or nothing older, makes it do nothing. In on_event only.
 * Returns SPARK_OK, or spark_fail(...) for a bad limit or outside a
 * room's on_event. */
#define SPARK_ROOM_PAGE_MAX  100
#define SPARK_ROOM_OLDER_MAX 1000
SPARK_API int spark_room_load_older(spark_event *e, int limit);
/* Whether an older page may be loaded (for a "Load earlier messages"
 * button): the viewer has not reached the room's first message, nor
 * SPARK_ROOM_OLDER_MAX. Before a first load: whether the recent messages
 * fill what a room component shows of them. */
SPARK_API bool spark_room_has_older(const spark_view *v);
/* Who is online (display names, one per user), and who is typing now.
 * A crowded room (more than SPARK_CROWDED_ROOM connections present) has
 * no list, only the count: spark_room_online_len is 0 there. */
SPARK_API size_t spark_room_online_len(const spark_view *v);
SPARK_API const char *spark_room_online(const spark_view *v, size_t i);
SPARK_API size_t spark_room_online_count(const spark_view *v);
SPARK_API bool spark_room_crowded(const spark_view *v);
SPARK_API size_t spark_room_typing_len(const spark_view *v);
SPARK_API const char *spark_room_typing(const spark_view *v, size_t i);

/* A message to post to the room once the event succeeds: fill in the
 * returned object. Ephemeral ones are not stored (a typing signal is
 * {"type":"typing","user":..,"user_id":..}). */
SPARK_API spark_item *spark_room_post(spark_event *e, bool ephemeral);

#ifdef __cplusplus
}
#endif

#endif
