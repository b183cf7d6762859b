/*
 * component_ctx.h - the component registry and the context of one render or
 * handler run (component.c), under the author API of <spark/component.h>.
 *
 * Nothing here is public: authors see only spark_view / spark_event, which
 * are this spark_live.
 */
#ifndef SPARK_COMPONENT_CTX_H
#define SPARK_COMPONENT_CTX_H

#include "html_tree.h"

#include <json-c/json.h>
#include <spark/component.h>
#include <stdbool.h>
#include <stddef.h>

#define SPARK_MAX_CID_BYTES 255

/* What a room component's render sees of its room (owned by the runtime). */
typedef struct {
    json_object *messages; /* array of payload objects, oldest first */
    char **online;         /* none in a crowded room: there is only the count */
    size_t nonline;
    size_t online_count; /* users present, every instance (the runtime's "count") */
    bool crowded;        /* the room is crowded (SPARK_CROWDED_ROOM) */
    char **typing;
    size_t ntyping;
    bool full; /* as many as it keeps: older ones may exist */
} spark_room_view;

/* A viewer's older room messages, loaded page by page (room_older.c). */
typedef struct {
    json_object *messages; /* array of payload objects, oldest first */
    bool more;             /* a further page may be loaded */
} spark_room_older;

typedef struct spark_live spark_live;
struct spark_live {
    const spark_component *type;
    const char *id, *key;
    json_object *state; /* shared state (not owned) */
    json_object *local; /* view state (not owned) */
    const char *viewer_id, *viewer_name;
    const spark_room_view *room;
    const spark_room_older *older; /* NULL: the viewer loaded no older page */
    bool shared_writable, local_writable;
    bool used_viewer;  /* render read who is looking: not shareable */
    bool external;     /* a handler run of on_external (spark_conn_event) */
    spark_html *reuse; /* render: an earlier render to take unchanged nodes from, or NULL */

    /* the event of a handler run */
    const char *event;
    json_object *data;

    /* what a run asked for (owned; spark_live_clear_outcome) */
    char *fail_code, *fail_message;
    char *flash_level, *flash_message, *redirect;
    json_object *posts; /* [{"ephemeral":b,"payload":{..}}] */
    int load_older;     /* spark_room_load_older's limit, or 0 */

    /* lists and items of the state this handler run made or copied, which
     * it may change in place (component.c, "Writes"): a set by address */
    json_object **owned;
    size_t nowned, owned_cap;
};

/* A state for a handler to change (spark_live.state): a new object that
 * shares every value with `state`. The handler's writes copy what they
 * change, list by list and item by item, so `state` stays as it was and
 * the new state shares every item the handler did not change with it:
 * the renders that follow know those items' rows by identity. NULL when
 * out of memory. */
json_object *spark_state_fork(json_object *state);
/* For tools built against trees before and after forks (bench/diff_bench.c). */
#define SPARK_STATE_FORKS 1

/* The type named by the first `len` bytes of `name`, or NULL. */
const spark_component *spark_component_lookup(const char *name, size_t len);

/* Parses an initial state (NULL: {}); a malformed one is {} too. */
json_object *spark_component_initial(const char *json_text);

/* Splits "type:key": the type, or NULL when the id is malformed or names
 * no registered type. *key points into id. */
const spark_component *spark_component_of_id(const char *id, const char **key);

/* Runs render into a new builder (one reusing lv->reuse when set). NULL
 * with *error set when the markup is refused (the builder's error) or out
 * of memory. */
spark_html *spark_live_render(spark_live *lv, const char **error);

/* Runs on_event (on_external for an external run). Returns SPARK_OK, SPARK_FAILED (fail_code set)
 * or SPARK_UNKNOWN_EVENT. */
int spark_live_dispatch(spark_live *lv);

void spark_live_clear_outcome(spark_live *lv);

/* Renders `type` on a state and a view state as an anonymous viewer and
 * returns the component's HTML (malloc'd), or NULL. For tests and tools. */
char *spark_component_render_html(const char *id, const char *state_json, const char *view_json);

#endif
