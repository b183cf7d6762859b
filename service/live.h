/*
 * live.h - the inside of live components, shared by the runtime's files:
 *
 *   component.c  the registry and the author API of <spark/component.h>,
 *                over one spark_live context per render or handler run;
 *   protocol.c   parsing /spark frames and writing the server's frames;
 *   store.c      the PostgreSQL side: loads, batched writes, room reads;
 *   live.c       instances, viewers, events, propagation, the /spark channel;
 *   pages.c      server-rendered pages.
 *
 * Nothing here is public: authors see only spark_view / spark_event.
 */
#ifndef SPARK_LIVE_H
#define SPARK_LIVE_H

#include "html_tree.h"
#include "http.h"

#include <json-c/json.h>
#include <spark/channel.h>
#include <spark/component.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- component.c: registry and the author's context ---------------------- */

#define SPARK_MAX_CID_BYTES 255

/* What a room component's render sees of its room (owned by the runtime). */
typedef struct {
    json_object *messages; /* array of payload objects, oldest first */
    char **online;
    size_t nonline;
    char **typing;
    size_t ntyping;
} spark_room_view;

typedef struct spark_live spark_live;
struct spark_live {
    const spark_component *type;
    const char *id, *key;
    json_object *state; /* shared state (not owned) */
    json_object *local; /* view state (not owned) */
    const char *viewer_id, *viewer_name;
    const spark_room_view *room;
    bool shared_writable, local_writable;
    bool used_viewer; /* render read who is looking: not shareable */

    /* the event of a handler run */
    const char *event;
    json_object *data;

    /* what a run asked for (owned; spark_live_clear_outcome) */
    char *fail_code, *fail_message;
    char *flash_level, *flash_message, *redirect;
    json_object *posts; /* [{"ephemeral":b,"payload":{..}}] */
};

/* The type named by the first `len` bytes of `name`, or NULL. */
const spark_component *spark_component_lookup(const char *name, size_t len);

/* Parses an initial state (NULL: {}); a malformed one is {} too. */
json_object *spark_component_initial(const char *json_text);

/* Splits "type:key": the type, or NULL when the id is malformed or names
 * no registered type. *key points into id. */
const spark_component *spark_component_of_id(const char *id, const char **key);

/* Runs render into a new builder. NULL with *error set when the markup is
 * refused (the builder's error) or out of memory. */
spark_html *spark_live_render(spark_live *lv, const char **error);

/* Runs on_event. Returns SPARK_OK, SPARK_FAILED (fail_code set) or
 * SPARK_UNKNOWN_EVENT. */
int spark_live_dispatch(spark_live *lv);

void spark_live_clear_outcome(spark_live *lv);

/* Renders `type` on a state and a view state as an anonymous viewer and
 * returns the component's HTML (malloc'd), or NULL. For tests and tools. */
char *spark_component_render_html(const char *id, const char *state_json, const char *view_json);

/* ---- protocol.c: /spark frames -------------------------------------------- */

#define SPARK_LIVE_MAX_FRAME 32768

typedef enum { SPARK_MSG_JOIN, SPARK_MSG_EVENT, SPARK_MSG_LEAVE } spark_msg_kind;

typedef struct {
    spark_msg_kind kind;
    long long ref; /* -1 when absent */
    char cid[SPARK_MAX_CID_BYTES + 1];
    long long v; /* join: -1 when absent */
    char event[128];
    json_object *data; /* event: owned, an object ({} when absent) */
} spark_msg;

/* Parses one client frame. Returns 0, or -1 with an error code and
 * message (static strings) and msg->ref set when the frame had one. */
int spark_msg_parse(const char *text, size_t len, spark_msg *msg, const char **code,
                    const char **message);
void spark_msg_clear(spark_msg *msg);

/* Server frames, appended to `out`. A ref < 0 is written as null. */
void spark_frame_reply_ok(spark_sbuf *out, long long ref);
void spark_frame_reply_error(spark_sbuf *out, long long ref, const char *code, const char *message);
void spark_frame_render(spark_sbuf *out, const char *cid, long long v, const spark_node *root);
void spark_frame_patch(spark_sbuf *out, const char *cid, long long v, const char *ops);
void spark_frame_flash(spark_sbuf *out, const char *cid, const char *level, const char *message);
void spark_frame_redirect(spark_sbuf *out, const char *url);

/* ---- live.c and pages.c: server-rendered pages ------------------------------ */

/* Renders component `id` as a page shows it to this user (initial view
 * state). Returns 1 with the HTML (malloc'd) and its version; 0 while the
 * state is being loaded (ask again shortly); -1 when it cannot be served. */
int spark_live_page(const char *id, const char *viewer_id, const char *viewer_name, char **html,
                    long long *version);

/* Routes the demo pages (/counter/:id, /todo/:list, /chat/:room). */
void spark_pages_register(spark_http *http);

/* Answers (503) and forgets every page still waiting for its component:
 * called before the lws context goes, which owns their timers. */
void spark_pages_abandon(void);

#endif
