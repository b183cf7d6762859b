/*
 * protocol.h - the /spark wire format (protocol.c): parsing the client's
 * frames, writing the server's. docs/protocol.md describes it.
 *
 * A connection speaks one of two dialects: Spark's own frames ({"t":...})
 * or Azu's ({"type":"component_event",...}, the frames of azu-spark.js).
 * Both parse into the same spark_msg; only the wire differs.
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

/* UNKNOWN: not chosen yet; the first frame that is a JSON object chooses
 * (one with "type" and no "t" is Azu's). Until then, frames are answered
 * in Spark's dialect. */
typedef enum { SPARK_DIALECT_UNKNOWN, SPARK_DIALECT_SPARK, SPARK_DIALECT_AZU } spark_dialect;

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
/* The same in the connection's dialect; an UNKNOWN *dialect is settled by
 * this frame when it is a JSON object. */
int spark_msg_parse_dialect(const char *text, size_t len, spark_dialect *dialect, spark_msg *msg,
                            const char **code, const char **message);
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

/* Azu's frames. A version or ref < 0 is left out (ref: written as null in
 * an error). A cid may be NULL in an error. */
void spark_frame_azu_reply(spark_sbuf *out, long long ref, long long version);
void spark_frame_azu_error(spark_sbuf *out, long long ref, const char *cid, const char *code,
                           const char *message);
void spark_frame_azu_update(spark_sbuf *out, const char *cid, long long v, const spark_node *root);
void spark_frame_azu_flash(spark_sbuf *out, const char *cid, const char *level,
                           const char *message);
void spark_frame_azu_redirect(spark_sbuf *out, const char *url);

#endif
