/*
 * protocol.h - the /spark wire format (protocol.c): parsing the client's
 * frames, writing the server's. docs/protocol.md describes it.
 */
#ifndef SPARK_PROTOCOL_H
#define SPARK_PROTOCOL_H

#include "component_ctx.h"
#include "html_tree.h"

#include <json-c/json.h>
#include <stddef.h>

#define SPARK_LIVE_MAX_FRAME     32768
#define SPARK_MAX_EVENT_ID_BYTES 64

typedef enum { SPARK_MSG_JOIN, SPARK_MSG_EVENT, SPARK_MSG_LEAVE } spark_msg_kind;

typedef struct {
    spark_msg_kind kind;
    long long ref; /* -1 when absent */
    char cid[SPARK_MAX_CID_BYTES + 1];
    long long v; /* join: -1 when absent */
    char event[128];
    char event_id[SPARK_MAX_EVENT_ID_BYTES + 1]; /* event: "" when absent */
    json_object *data;                           /* event: owned, an object ({} when absent) */
} spark_msg;

/* Parses one client frame. Returns 0, or -1 with an error code and
 * message (static strings) and msg->ref set when the frame had one. */
int spark_msg_parse(const char *text, size_t len, spark_msg *msg, const char **code,
                    const char **message);
void spark_msg_clear(spark_msg *msg);

/* Server frames, appended to `out`. A ref < 0 is written as null. */
void spark_frame_reply_ok(spark_sbuf *out, long long ref);
/* {"t":"reply","ref":..,"ok":true,"v":version}: an event applied before. */
void spark_frame_reply_applied(spark_sbuf *out, long long ref, long long version);
void spark_frame_reply_error(spark_sbuf *out, long long ref, const char *code, const char *message);
/* {"t":"error","cid":..,"error":{"code":..,"message":..}}: a component
 * could not be sent what changed (its render is too large). */
void spark_frame_component_error(spark_sbuf *out, const char *cid, const char *code,
                                 const char *message);
void spark_frame_render(spark_sbuf *out, const char *cid, long long v, const spark_node *root);
void spark_frame_patch(spark_sbuf *out, const char *cid, long long v, const char *ops);
void spark_frame_flash(spark_sbuf *out, const char *cid, const char *level, const char *message);
void spark_frame_redirect(spark_sbuf *out, const char *url);

#endif
