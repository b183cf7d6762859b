/*
 * component.c - the component registry and the author API of
 * <spark/component.h>.
 *
 * Every render and every handler run gets one spark_live: the shared state
 * and view state it may read (and, for a handler, change in place: the
 * runtime hands it copies and keeps them only if the run succeeds), who is
 * looking, and slots for what the run asks for. Keeping the author API a
 * thin layer over json-c objects lets the runtime compare, copy and store
 * states without converting them.
 *
 * Writes where they are not allowed (render, a mount or a tick changing
 * shared state) are ignored and logged: a render must be a function of its
 * inputs, and only events are stored and retried.
 */
#include "component_ctx.h"

#include "json_number.h"
#include "log.h"
#include "router.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMPONENTS 64

static const spark_component *registry[MAX_COMPONENTS];
static size_t nregistered;

static bool valid_type_name(const char *name) {
    if (!name || !(*name >= 'a' && *name <= 'z')) return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    return strlen(name) < 64;
}

SPARK_API int spark_component_register(const spark_component *component) {
    if (!component || !valid_type_name(component->name) || !component->render ||
        nregistered == MAX_COMPONENTS ||
        spark_component_lookup(component->name, strlen(component->name))) {
        fprintf(stderr, "spark: cannot register component \"%s\"\n",
                component && component->name ? component->name : "(null)");
        return -1;
    }
    registry[nregistered++] = component;
    return 0;
}

const spark_component *spark_component_lookup(const char *name, size_t len) {
    for (size_t i = 0; i < nregistered; i++)
        if (strlen(registry[i]->name) == len && memcmp(registry[i]->name, name, len) == 0)
            return registry[i];
    return NULL;
}

/* Ids reach logs, SQL and the DOM: no control characters in them. */
static bool printable(const char *id) {
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    return true;
}

const spark_component *spark_component_of_id(const char *id, const char **key) {
    const char *colon = id ? strchr(id, ':') : NULL;
    if (!colon || !colon[1] || strlen(id) > SPARK_MAX_CID_BYTES || !printable(id)) return NULL;
    if (key) *key = colon + 1;
    return spark_component_lookup(id, (size_t)(colon - id));
}

json_object *spark_component_initial(const char *json_text) {
    json_object *o = json_text ? json_tokener_parse(json_text) : NULL;
    if (json_object_is_type(o, json_type_object)) return o;
    json_object_put(o);
    return json_object_new_object();
}

/* ---- running callbacks --------------------------------------------------- */

spark_html *spark_live_render(spark_live *lv, const char **error) {
    spark_html *h = spark_html_new_reusing(lv->reuse);
    if (!h) {
        *error = "out of memory";
        return NULL;
    }
    bool shared = lv->shared_writable, local = lv->local_writable;
    lv->shared_writable = lv->local_writable = false;
    lv->type->render(h, lv);
    lv->shared_writable = shared;
    lv->local_writable = local;
    if (spark_html_error(h)) {
        *error = spark_html_error(h);
        spark_log(SPARK_LOG_WARN, "component.render_refused", *error, "component=%s", lv->id);
        spark_html_free(h);
        return NULL;
    }
    return h;
}

int spark_live_dispatch(spark_live *lv) {
    int (*handler)(spark_event * e) = lv->external ? lv->type->on_external : lv->type->on_event;
    if (!handler) return SPARK_UNKNOWN_EVENT;
    int r = handler(lv);
    free(lv->owned); /* the run is over: nothing more to change in place */
    lv->owned = NULL;
    lv->nowned = lv->owned_cap = 0;
    if (r == SPARK_OK || r == SPARK_UNKNOWN_EVENT) return r;
    if (!lv->fail_code) spark_fail(lv, "failed", "the event could not be handled");
    return SPARK_FAILED;
}

void spark_live_clear_outcome(spark_live *lv) {
    free(lv->fail_code);
    free(lv->fail_message);
    free(lv->flash_level);
    free(lv->flash_message);
    free(lv->redirect);
    json_object_put(lv->posts);
    free(lv->owned);
    lv->owned = NULL;
    lv->nowned = lv->owned_cap = 0;
    lv->fail_code = lv->fail_message = lv->flash_level = lv->flash_message = lv->redirect = NULL;
    lv->posts = NULL;
    lv->load_older = 0;
}

char *spark_component_render_html(const char *id, const char *state_json, const char *view_json) {
    const char *key;
    const spark_component *type = spark_component_of_id(id, &key);
    if (!type) return NULL;
    json_object *state = spark_component_initial(state_json ? state_json : type->initial_state);
    json_object *local = spark_component_initial(view_json ? view_json : type->initial_view);
    spark_room_view room = {0};
    spark_live lv = {.type = type,
                     .id = id,
                     .key = key,
                     .state = state,
                     .local = local,
                     .viewer_id = "anonymous",
                     .viewer_name = "anonymous",
                     .room = type->room ? &room : NULL};
    const char *error;
    spark_html *h = spark_live_render(&lv, &error);
    char *html = h ? spark_html_render(h, NULL) : NULL;
    spark_html_free(h);
    json_object_put(state);
    json_object_put(local);
    return html;
}

/* ---- results ------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

SPARK_API int spark_fail(spark_event *e, const char *code, const char *message) {
    free(e->fail_code);
    free(e->fail_message);
    e->fail_code = strdup(code && *code ? code : "failed");
    e->fail_message = dup_or_null(message ? message : "");
    return SPARK_FAILED;
}

SPARK_API void spark_flash(spark_event *e, const char *level, const char *message) {
    free(e->flash_level);
    free(e->flash_message);
    e->flash_level = strdup(level ? level : "info");
    e->flash_message = dup_or_null(message ? message : "");
}

/* A URL a handler redirects to often comes from the event's data (a
 * "next" field), which any client writes: an off-site one would make the
 * site an open redirect, so only paths on this site are sent. */
SPARK_API void spark_redirect(spark_event *e, const char *url) {
    free(e->redirect);
    e->redirect = NULL;
    if (spark_path_is_local(url)) {
        e->redirect = strdup(url);
        return;
    }
    char buf[2 * 200 + 3];
    spark_log(SPARK_LOG_WARN, "component.redirect_refused", "not a path on this site",
              "component=%s url=%s", e->id, spark_log_value(buf, sizeof buf, url ? url : ""));
}

/* ---- the event ------------------------------------------------------------- */

SPARK_API bool spark_event_is(const spark_event *e, const char *name) {
    return e->event && name && strcmp(e->event, name) == 0;
}

SPARK_API const char *spark_event_name(const spark_event *e) { return e->event; }

static json_object *field(json_object *o, const char *key) {
    json_object *v = NULL;
    return o && key && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

SPARK_API const char *spark_data_str(const spark_event *e, const char *key) {
    json_object *v = field(e->data, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

SPARK_API bool spark_data_int(const spark_event *e, const char *key, long long *out) {
    return spark_json_as_int(field(e->data, key), out);
}

SPARK_API bool spark_data_double(const spark_event *e, const char *key, double *out) {
    return spark_json_as_double(field(e->data, key), out);
}

SPARK_API bool spark_data_bool(const spark_event *e, const char *key, bool *out) {
    json_object *v = field(e->data, key);
    if (!json_object_is_type(v, json_type_boolean)) return false;
    *out = json_object_get_boolean(v);
    return true;
}

/* ---- who and what ------------------------------------------------------------ */

SPARK_API const char *spark_viewer_id(const spark_view *v) {
    ((spark_live *)v)->used_viewer = true;
    return v->viewer_id;
}

SPARK_API const char *spark_viewer_name(const spark_view *v) {
    ((spark_live *)v)->used_viewer = true;
    return v->viewer_name;
}

SPARK_API const char *spark_component_id(const spark_view *v) { return v->id; }
SPARK_API const char *spark_component_key(const spark_view *v) { return v->key; }

/* ---- plain values inside an object ------------------------------------------ */

static long long get_int(json_object *o, const char *key, long long fallback) {
    long long n;
    return spark_json_as_int(field(o, key), &n) ? n : fallback;
}

static double get_double(json_object *o, const char *key, double fallback) {
    double d;
    return spark_json_as_double(field(o, key), &d) ? d : fallback;
}

/* A number to store: JSON has no NaN or infinity, so those store 0. */
static json_object *new_double(double value) {
    return json_object_new_double(isfinite(value) ? value : 0);
}

static bool get_bool(json_object *o, const char *key, bool fallback) {
    json_object *v = field(o, key);
    return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : fallback;
}

static const char *get_str(json_object *o, const char *key, const char *fallback) {
    json_object *v = field(o, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : fallback;
}

static bool allowed(const spark_live *lv, bool shared) {
    if (shared ? lv->shared_writable : lv->local_writable) return true;
    spark_log(SPARK_LOG_WARN, "component.write_ignored",
              shared ? "shared state can only change in on_event" : "view state is read-only here",
              "component=%s", lv->id);
    return false;
}

static int put(spark_live *lv, bool shared, const char *key, json_object *value) {
    if (!key || !allowed(lv, shared)) {
        json_object_put(value);
        return SPARK_FAILED;
    }
    json_object_object_add(shared ? lv->state : lv->local, key, value);
    return SPARK_OK;
}

/* ---- shared state ----------------------------------------------------------- */

SPARK_API long long spark_state_int(const spark_view *v, const char *key, long long fallback) {
    return get_int(v->state, key, fallback);
}

SPARK_API double spark_state_double(const spark_view *v, const char *key, double fallback) {
    return get_double(v->state, key, fallback);
}

SPARK_API bool spark_state_bool(const spark_view *v, const char *key, bool fallback) {
    return get_bool(v->state, key, fallback);
}

SPARK_API const char *spark_state_str(const spark_view *v, const char *key, const char *fallback) {
    return get_str(v->state, key, fallback);
}

SPARK_API int spark_state_set_int(spark_event *e, const char *key, long long value) {
    return put(e, true, key, json_object_new_int64(value));
}

SPARK_API int spark_state_set_double(spark_event *e, const char *key, double value) {
    return put(e, true, key, new_double(value));
}

SPARK_API int spark_state_set_bool(spark_event *e, const char *key, bool value) {
    return put(e, true, key, json_object_new_boolean(value));
}

SPARK_API int spark_state_set_str(spark_event *e, const char *key, const char *value) {
    return put(e, true, key, json_object_new_string(value ? value : ""));
}

SPARK_API int spark_state_add(spark_event *e, const char *key, long long delta) {
    return spark_state_set_int(e, key, spark_state_int(e, key, 0) + delta);
}

/* ---- lists --------------------------------------------------------------------- */

static json_object *list_of(json_object *state, const char *list) {
    json_object *a = field(state, list);
    return json_object_is_type(a, json_type_array) ? a : NULL;
}

/* Writes. A handler changes a fork of the state (spark_state_fork): the
 * top-level object is its own, and every list and item in it is shared
 * with the state it was forked from, which renders have seen and may
 * still compare with (spark_each keeps the items of a rendered list and
 * takes an item that is the same object as unchanged). So nothing of a
 * state changes in place: a handler's first write to a list copies the
 * list (its items shared), and its first edit of an item copies the item
 * (deeply). What the run made or copied is recorded in e->owned, so a
 * second write changes the same copy. */

json_object *spark_state_fork(json_object *state) {
    json_object *fork = json_object_new_object();
    if (!fork) return NULL;
    json_object_object_foreach(state, key, value) {
        if (json_object_object_add(fork, key, json_object_get(value)) != 0) {
            json_object_put(value);
            json_object_put(fork);
            return NULL;
        }
    }
    return fork;
}

/* e->owned is a set by address (open addressing, at most half full): a
 * handler may add or edit thousands of items. */
static size_t owned_slot(const json_object *o, size_t cap) {
    return (size_t)((((uintptr_t)o >> 4) * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static bool owns(const spark_live *e, const json_object *o) {
    if (!e->owned_cap) return false;
    for (size_t s = owned_slot(o, e->owned_cap); e->owned[s]; s = (s + 1) & (e->owned_cap - 1))
        if (e->owned[s] == o) return true;
    return false;
}

static void owned_put(json_object **set, size_t cap, json_object *o) {
    size_t s = owned_slot(o, cap);
    while (set[s])
        s = (s + 1) & (cap - 1);
    set[s] = o;
}

/* Records `o` as the run's own; false when out of memory. */
static bool own(spark_live *e, json_object *o) {
    if (2 * (e->nowned + 1) > e->owned_cap) {
        size_t cap = e->owned_cap ? 2 * e->owned_cap : 16;
        json_object **set = calloc(cap, sizeof *set);
        if (!set) return false;
        for (size_t i = 0; i < e->owned_cap; i++)
            if (e->owned[i]) owned_put(set, cap, e->owned[i]);
        free(e->owned);
        e->owned = set;
        e->owned_cap = cap;
    }
    owned_put(e->owned, e->owned_cap, o);
    e->nowned++;
    return true;
}

/* The list to change in place (NULL: absent and not `create`d, or out of
 * memory): the run's own copy, made on its first write. */
static json_object *own_list(spark_live *e, const char *list, bool create) {
    json_object *a = list_of(e->state, list);
    if (a ? owns(e, a) : !create) return a;
    size_t n = a ? json_object_array_length(a) : 0;
    json_object *copy = json_object_new_array_ext((int)(n ? n : 1));
    if (!copy || !own(e, copy)) {
        json_object_put(copy);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        json_object_array_add(copy, json_object_get(json_object_array_get_idx(a, i)));
    json_object_object_add(e->state, list, copy);
    return copy;
}

SPARK_API size_t spark_list_len(const spark_view *v, const char *list) {
    return spark_item_list_len((const spark_item *)v->state, list);
}

SPARK_API const spark_item *spark_list_at(const spark_view *v, const char *list, size_t i) {
    return spark_item_list_at((const spark_item *)v->state, list, i);
}

SPARK_API spark_item *spark_list_edit(spark_event *e, const char *list, size_t i) {
    if (!list || !allowed(e, true) || !spark_list_at(e, list, i)) return NULL;
    json_object *a = own_list(e, list, false), *it = a ? json_object_array_get_idx(a, i) : NULL;
    if (!it || owns(e, it)) return (spark_item *)it;
    json_object *copy = NULL;
    if (json_object_deep_copy(it, &copy, NULL) != 0 || !own(e, copy)) {
        json_object_put(copy);
        return NULL;
    }
    json_object_array_put_idx(a, i, copy);
    return (spark_item *)copy;
}

SPARK_API spark_item *spark_list_add(spark_event *e, const char *list) {
    json_object *a = list && allowed(e, true) ? own_list(e, list, true) : NULL;
    json_object *it = a ? json_object_new_object() : NULL;
    if (!it || !own(e, it)) {
        json_object_put(it);
        return NULL;
    }
    json_object_array_add(a, it);
    return (spark_item *)it;
}

SPARK_API void spark_list_remove(spark_event *e, const char *list, size_t i) {
    json_object *a =
        allowed(e, true) && i < spark_list_len(e, list) ? own_list(e, list, false) : NULL;
    if (a) json_object_array_del_idx(a, i, 1);
}

/* The index of the first object of `a` whose `key` satisfies `eq`. */
static long find_in(json_object *a, const char *key, bool (*eq)(json_object *, const void *),
                    const void *value) {
    size_t n = a && key ? json_object_array_length(a) : 0;
    for (size_t i = 0; i < n; i++)
        if (eq(field(json_object_array_get_idx(a, i), key), value)) return (long)i;
    return -1;
}

static bool int_equal(json_object *v, const void *value) {
    long long n;
    return spark_json_as_int(v, &n) && n == *(const long long *)value;
}

static bool str_equal(json_object *v, const void *value) {
    return json_object_is_type(v, json_type_string) && value &&
           strcmp(json_object_get_string(v), value) == 0;
}

static bool bool_equal(json_object *v, const void *value) {
    return json_object_is_type(v, json_type_boolean) &&
           (bool)json_object_get_boolean(v) == *(const bool *)value;
}

SPARK_API long spark_list_find_int(const spark_view *v, const char *list, const char *key,
                                   long long value) {
    return find_in(list_of(v->state, list), key, int_equal, &value);
}

SPARK_API long spark_list_find_str(const spark_view *v, const char *list, const char *key,
                                   const char *value) {
    return find_in(list_of(v->state, list), key, str_equal, value);
}

SPARK_API size_t spark_list_remove_where(spark_event *e, const char *list, const char *key,
                                         bool value) {
    json_object *a = allowed(e, true) ? list_of(e->state, list) : NULL;
    if (find_in(a, key, bool_equal, &value) < 0) return 0;
    a = own_list(e, list, false);
    size_t removed = 0;
    for (long i; (i = find_in(a, key, bool_equal, &value)) >= 0; removed++)
        json_object_array_del_idx(a, (size_t)i, 1);
    return removed;
}

SPARK_API void spark_list_clear(spark_event *e, const char *list) {
    json_object *a = allowed(e, true) && spark_list_len(e, list) ? own_list(e, list, false) : NULL;
    if (a) json_object_array_del_idx(a, 0, json_object_array_length(a));
}

SPARK_API long long spark_item_int(const spark_item *it, const char *key, long long fallback) {
    return get_int((json_object *)it, key, fallback);
}

SPARK_API double spark_item_double(const spark_item *it, const char *key, double fallback) {
    return get_double((json_object *)it, key, fallback);
}

SPARK_API bool spark_item_bool(const spark_item *it, const char *key, bool fallback) {
    return get_bool((json_object *)it, key, fallback);
}

SPARK_API const char *spark_item_str(const spark_item *it, const char *key, const char *fallback) {
    return get_str((json_object *)it, key, fallback);
}

SPARK_API void spark_item_set_int(spark_item *it, const char *key, long long value) {
    if (it && key) json_object_object_add((json_object *)it, key, json_object_new_int64(value));
}

SPARK_API void spark_item_set_double(spark_item *it, const char *key, double value) {
    if (it && key) json_object_object_add((json_object *)it, key, new_double(value));
}

SPARK_API void spark_item_set_bool(spark_item *it, const char *key, bool value) {
    if (it && key) json_object_object_add((json_object *)it, key, json_object_new_boolean(value));
}

SPARK_API void spark_item_set_str(spark_item *it, const char *key, const char *value) {
    if (it && key)
        json_object_object_add((json_object *)it, key, json_object_new_string(value ? value : ""));
}

/* ---- inside an item: objects and lists of objects --------------------------------- */

SPARK_API const spark_item *spark_item_obj(const spark_item *it, const char *key) {
    json_object *o = field((json_object *)it, key);
    return json_object_is_type(o, json_type_object) ? (const spark_item *)o : NULL;
}

/* The value under `key` if it has `type`; otherwise a new one replaces it. */
static json_object *child(spark_item *it, const char *key, json_type type) {
    json_object *o = field((json_object *)it, key);
    if (!it || !key || json_object_is_type(o, type)) return o;
    o = type == json_type_array ? json_object_new_array() : json_object_new_object();
    json_object_object_add((json_object *)it, key, o);
    return o;
}

SPARK_API spark_item *spark_item_edit_obj(spark_item *it, const char *key) {
    return (spark_item *)child(it, key, json_type_object);
}

SPARK_API size_t spark_item_list_len(const spark_item *it, const char *list) {
    json_object *a = list_of((json_object *)it, list);
    return a ? json_object_array_length(a) : 0;
}

SPARK_API const spark_item *spark_item_list_at(const spark_item *it, const char *list, size_t i) {
    json_object *a = list_of((json_object *)it, list);
    json_object *o = a && i < json_object_array_length(a) ? json_object_array_get_idx(a, i) : NULL;
    return json_object_is_type(o, json_type_object) ? (const spark_item *)o : NULL;
}

SPARK_API spark_item *spark_item_list_add(spark_item *it, const char *list) {
    json_object *a = child(it, list, json_type_array), *o = a ? json_object_new_object() : NULL;
    if (o) json_object_array_add(a, o);
    return (spark_item *)o;
}

SPARK_API void spark_item_list_remove(spark_item *it, const char *list, size_t i) {
    json_object *a = list_of((json_object *)it, list);
    if (a && i < json_object_array_length(a)) json_object_array_del_idx(a, i, 1);
}

/* ---- lists, row by row ---------------------------------------------------------- */

/* The builder keeps the list (and so its items) until no render will
 * compare with its rows: objects of a rendered state never change (see
 * "Writes" above), so an item that is the same object is the same JSON. */
static void put_list(void *a) { json_object_put(a); }

static bool same_item(const void *a, const void *b) {
    return json_object_equal((json_object *)a, (json_object *)b);
}

SPARK_API size_t spark_each(spark_html *h, const spark_view *v, const char *list, spark_row_fn row,
                            const char *arg) {
    json_object *a = list_of(v->state, list);
    size_t n = a && h && row ? json_object_array_length(a) : 0, counted = 0;
    bool rows =
        n && spark_html_rows_begin(h, json_object_get(a), put_list, (void (*)(void))row, list, arg);
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(a, i);
        /* An item a row was made from is an object: found by its address,
         * it is not read at all. */
        long k = rows ? spark_html_rows_find(h, it, same_item) : -1;
        if (k >= 0) {
            counted += spark_html_row_reuse(h, k, it);
            continue;
        }
        if (!json_object_is_type(it, json_type_object)) continue;
        if (rows) spark_html_row_begin(h);
        bool c = row(h, (const spark_item *)it, arg);
        if (rows) spark_html_row_end(h, it, c);
        counted += c;
    }
    if (rows) spark_html_rows_end(h);
    return counted;
}

/* ---- view state ------------------------------------------------------------------ */

SPARK_API long long spark_local_int(const spark_view *v, const char *key, long long fallback) {
    return get_int(v->local, key, fallback);
}

SPARK_API double spark_local_double(const spark_view *v, const char *key, double fallback) {
    return get_double(v->local, key, fallback);
}

SPARK_API bool spark_local_bool(const spark_view *v, const char *key, bool fallback) {
    return get_bool(v->local, key, fallback);
}

SPARK_API const char *spark_local_str(const spark_view *v, const char *key, const char *fallback) {
    return get_str(v->local, key, fallback);
}

SPARK_API int spark_local_set_int(spark_event *e, const char *key, long long value) {
    return put(e, false, key, json_object_new_int64(value));
}

SPARK_API int spark_local_set_double(spark_event *e, const char *key, double value) {
    return put(e, false, key, new_double(value));
}

SPARK_API int spark_local_set_bool(spark_event *e, const char *key, bool value) {
    return put(e, false, key, json_object_new_boolean(value));
}

SPARK_API int spark_local_set_str(spark_event *e, const char *key, const char *value) {
    return put(e, false, key, json_object_new_string(value ? value : ""));
}

/* ---- rooms ------------------------------------------------------------------------- */

static size_t older_len(const spark_view *v) {
    return v->older && v->older->messages ? json_object_array_length(v->older->messages) : 0;
}

SPARK_API size_t spark_room_len(const spark_view *v) {
    size_t recent = v->room && v->room->messages ? json_object_array_length(v->room->messages) : 0;
    return older_len(v) + recent;
}

SPARK_API const spark_item *spark_room_at(const spark_view *v, size_t i) {
    if (i >= spark_room_len(v)) return NULL;
    size_t older = older_len(v);
    json_object *m = i < older ? json_object_array_get_idx(v->older->messages, i)
                               : json_object_array_get_idx(v->room->messages, i - older);
    return json_object_is_type(m, json_type_object) ? (const spark_item *)m : NULL;
}

SPARK_API int spark_room_load_older(spark_event *e, int limit) {
    if (!e->type->room || !e->shared_writable || !e->local_writable || e->external)
        return spark_fail(e, "invalid_call", "older messages load in a room's on_event only");
    if (limit < 1 || limit > SPARK_ROOM_PAGE_MAX)
        return spark_fail(e, "invalid_limit", "a page of older messages is 1 to 100");
    e->load_older = limit;
    return SPARK_OK;
}

SPARK_API bool spark_room_has_older(const spark_view *v) {
    if (v->older) return v->older->more;
    return v->room && v->room->full;
}

SPARK_API size_t spark_room_online_len(const spark_view *v) {
    return v->room ? v->room->nonline : 0;
}

SPARK_API const char *spark_room_online(const spark_view *v, size_t i) {
    return i < spark_room_online_len(v) ? v->room->online[i] : NULL;
}

SPARK_API size_t spark_room_online_count(const spark_view *v) {
    return v->room ? v->room->online_count : 0;
}

SPARK_API bool spark_room_crowded(const spark_view *v) { return v->room && v->room->crowded; }

SPARK_API size_t spark_room_typing_len(const spark_view *v) {
    return v->room ? v->room->ntyping : 0;
}

SPARK_API const char *spark_room_typing(const spark_view *v, size_t i) {
    return i < spark_room_typing_len(v) ? v->room->typing[i] : NULL;
}

SPARK_API spark_item *spark_room_post(spark_event *e, bool ephemeral) {
    if (!e->type->room || !e->local_writable) return NULL;
    if (!e->posts) e->posts = json_object_new_array();
    json_object *post = json_object_new_object(), *payload = json_object_new_object();
    json_object_object_add(post, "ephemeral", json_object_new_boolean(ephemeral));
    json_object_object_add(post, "payload", payload);
    json_object_array_add(e->posts, post);
    return (spark_item *)payload;
}
