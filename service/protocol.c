/*
 * protocol.c - the frames of the /spark protocol (docs/protocol.md): strict
 * parsing of what clients send, and writing what the server sends.
 *
 * Parsing is strict so that a client bug shows up as an error code right
 * away rather than as a silently ignored field: every known field must have
 * its type, and a frame that is not exactly one JSON object is refused.
 * Nothing here touches a connection, so the unit tests drive it directly.
 *
 * Azu's dialect (the frames of azu-spark.js) is parsed by the same code
 * under other field names, so that both get the same limits and checks.
 */
#include "protocol.h"

#include "json_read.h"

#include <stdio.h>
#include <string.h>

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int fail(const char **code, const char **message, const char *c, const char *m) {
    *code = c;
    *message = m;
    return -1;
}

/* A JSON integer (not a float, not a string of digits). */
static bool read_int(json_object *v, long long *out) {
    if (!json_object_is_type(v, json_type_int)) return false;
    *out = json_object_get_int64(v);
    return true;
}

/* The names a dialect gives the fields and kinds of a frame, and the
 * errors that name them. ref and id are the same in both. */
typedef struct {
    const char *kind, *cid, *v, *event, *data;
    const char *kinds[3]; /* join, event, leave */
    const char *bad_kind, *unknown_kind, *bad_cid, *bad_v, *bad_event, *bad_data;
} dialect_names;

static const dialect_names spark_names = {
    "t",
    "cid",
    "v",
    "e",
    "d",
    {"join", "event", "leave"},
    "t must be a string",
    "t is join, event or leave",
    "cid must be a component id",
    "v must be a non-negative integer",
    "e must be an event name",
    "d must be an object",
};

static const dialect_names azu_names = {
    "type",
    "component_id",
    "version",
    "event",
    "data",
    {"component_join", "component_event", "component_leave"},
    "type must be a string",
    "type is component_join, component_event or component_leave",
    "component_id must be a component id",
    "version must be a non-negative integer",
    "event must be an event name",
    "data must be an object",
};

/* A non-empty string without NUL bytes, of at most `max` bytes, copied. */
static bool read_str(json_object *v, char *out, size_t max) {
    if (!json_object_is_type(v, json_type_string)) return false;
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (n == 0 || n > max || strlen(s) != n) return false;
    memcpy(out, s, n + 1);
    return true;
}

static int parse_fields(json_object *o, const dialect_names *names, spark_msg *msg,
                        const char **code, const char **message) {
    json_object *ref = get(o, "ref"), *t = get(o, names->kind), *cid = get(o, names->cid);
    if (ref && !json_object_is_type(ref, json_type_null) &&
        (!read_int(ref, &msg->ref) || msg->ref < 0)) {
        msg->ref = -1;
        return fail(code, message, "invalid_message", "ref must be a non-negative integer");
    }
    if (!json_object_is_type(t, json_type_string))
        return fail(code, message, "invalid_message", names->bad_kind);
    const char *kind = json_object_get_string(t);
    if (strcmp(kind, names->kinds[0]) == 0)
        msg->kind = SPARK_MSG_JOIN;
    else if (strcmp(kind, names->kinds[1]) == 0)
        msg->kind = SPARK_MSG_EVENT;
    else if (strcmp(kind, names->kinds[2]) == 0)
        msg->kind = SPARK_MSG_LEAVE;
    else
        return fail(code, message, "unknown_type", names->unknown_kind);
    if (!read_str(cid, msg->cid, SPARK_MAX_CID_BYTES))
        return fail(code, message, "invalid_message", names->bad_cid);
    if (msg->kind == SPARK_MSG_JOIN) {
        json_object *v = get(o, names->v);
        if (v && !json_object_is_type(v, json_type_null) && (!read_int(v, &msg->v) || msg->v < 0)) {
            msg->v = -1;
            return fail(code, message, "invalid_message", names->bad_v);
        }
    } else if (msg->kind == SPARK_MSG_EVENT) {
        json_object *d = get(o, names->data), *id = get(o, "id");
        if (!read_str(get(o, names->event), msg->event, sizeof msg->event - 1))
            return fail(code, message, "invalid_message", names->bad_event);
        if (id && !json_object_is_type(id, json_type_null) &&
            !read_str(id, msg->event_id, SPARK_MAX_EVENT_ID_BYTES))
            return fail(code, message, "invalid_message", "id must be a string of 1 to 64 bytes");
        if (d && !json_object_is_type(d, json_type_null) &&
            !json_object_is_type(d, json_type_object))
            return fail(code, message, "invalid_data", names->bad_data);
        msg->data = d && json_object_is_type(d, json_type_object) ? json_object_get(d)
                                                                  : json_object_new_object();
    }
    return 0;
}

int spark_msg_parse_dialect(const char *text, size_t len, spark_dialect *dialect, spark_msg *msg,
                            const char **code, const char **message) {
    memset(msg, 0, sizeof *msg);
    msg->ref = -1;
    msg->v = -1;
    if (len > SPARK_LIVE_MAX_FRAME)
        return fail(code, message, "too_large", "frames are limited to 32768 bytes");
    json_object *o;
    bool whole = spark_json_read(text, len, &o);
    int r;
    if (!whole || !json_object_is_type(o, json_type_object)) {
        r = fail(code, message, "invalid_json", "a frame is one JSON object");
    } else {
        /* Azu's frames name their kind "type" and have no "t"; a frame of
         * Spark's always has "t". */
        if (*dialect == SPARK_DIALECT_UNKNOWN)
            *dialect = !get(o, "t") && get(o, "type") ? SPARK_DIALECT_AZU : SPARK_DIALECT_SPARK;
        r = parse_fields(o, *dialect == SPARK_DIALECT_AZU ? &azu_names : &spark_names, msg, code,
                         message);
    }
    if (r) spark_msg_clear(msg);
    json_object_put(o);
    return r;
}

int spark_msg_parse(const char *text, size_t len, spark_msg *msg, const char **code,
                    const char **message) {
    spark_dialect d = SPARK_DIALECT_SPARK;
    return spark_msg_parse_dialect(text, len, &d, msg, code, message);
}

void spark_msg_clear(spark_msg *msg) {
    json_object_put(msg->data);
    msg->data = NULL;
}

/* ---- server frames -------------------------------------------------------- */

static void put_ref(spark_sbuf *out, long long ref) {
    if (ref < 0)
        spark_sbuf_puts(out, "null");
    else
        spark_sbuf_printf(out, "%lld", ref);
}

void spark_frame_reply_ok(spark_sbuf *out, long long ref) {
    spark_sbuf_puts(out, "{\"t\":\"reply\",\"ref\":");
    put_ref(out, ref);
    spark_sbuf_puts(out, ",\"ok\":true}");
}

void spark_frame_reply_applied(spark_sbuf *out, long long ref, long long version) {
    spark_sbuf_puts(out, "{\"t\":\"reply\",\"ref\":");
    put_ref(out, ref);
    spark_sbuf_printf(out, ",\"ok\":true,\"v\":%lld}", version);
}

void spark_frame_reply_error(spark_sbuf *out, long long ref, const char *code,
                             const char *message) {
    spark_sbuf_puts(out, "{\"t\":\"reply\",\"ref\":");
    put_ref(out, ref);
    spark_sbuf_puts(out, ",\"ok\":false,\"error\":{\"code\":");
    spark_sbuf_json_string(out, code);
    spark_sbuf_puts(out, ",\"message\":");
    spark_sbuf_json_string(out, message ? message : "");
    spark_sbuf_puts(out, "}}");
}

void spark_frame_component_error(spark_sbuf *out, const char *cid, const char *code,
                                 const char *message) {
    spark_sbuf_puts(out, "{\"t\":\"error\",\"cid\":");
    spark_sbuf_json_string(out, cid);
    spark_sbuf_puts(out, ",\"error\":{\"code\":");
    spark_sbuf_json_string(out, code);
    spark_sbuf_puts(out, ",\"message\":");
    spark_sbuf_json_string(out, message);
    spark_sbuf_puts(out, "}}");
}

/* The children of `root` as a JSON string. */
static void put_html(spark_sbuf *out, const spark_node *root) {
    spark_sbuf html = {0};
    spark_node_serialize_children(root, &html);
    spark_sbuf_json_string(out, html.data ? html.data : "");
    if (html.failed) out->failed = true;
    spark_sbuf_free(&html);
}

/* A whole render: `head` opens the frame up to the cid's value, `vkey`
 * names the version. */
static void html_frame(spark_sbuf *out, const char *head, const char *vkey, const char *cid,
                       long long v, const spark_node *root) {
    spark_sbuf_puts(out, head);
    spark_sbuf_json_string(out, cid);
    spark_sbuf_printf(out, ",\"%s\":%lld,\"html\":", vkey, v);
    put_html(out, root);
    spark_sbuf_putc(out, '}');
}

void spark_frame_render(spark_sbuf *out, const char *cid, long long v, const spark_node *root) {
    html_frame(out, "{\"t\":\"render\",\"cid\":", "v", cid, v, root);
}

void spark_frame_patch(spark_sbuf *out, const char *cid, long long v, const char *ops) {
    spark_sbuf_puts(out, "{\"t\":\"patch\",\"cid\":");
    spark_sbuf_json_string(out, cid);
    spark_sbuf_printf(out, ",\"v\":%lld,\"ops\":", v);
    spark_sbuf_puts(out, ops);
    spark_sbuf_putc(out, '}');
}

static void flash_frame(spark_sbuf *out, const char *head, const char *cid, const char *level,
                        const char *message) {
    spark_sbuf_puts(out, head);
    spark_sbuf_json_string(out, cid);
    spark_sbuf_puts(out, ",\"level\":");
    spark_sbuf_json_string(out, level);
    spark_sbuf_puts(out, ",\"message\":");
    spark_sbuf_json_string(out, message);
    spark_sbuf_putc(out, '}');
}

void spark_frame_flash(spark_sbuf *out, const char *cid, const char *level, const char *message) {
    flash_frame(out, "{\"t\":\"flash\",\"cid\":", cid, level, message);
}

void spark_frame_redirect(spark_sbuf *out, const char *url) {
    spark_sbuf_puts(out, "{\"t\":\"redirect\",\"url\":");
    spark_sbuf_json_string(out, url);
    spark_sbuf_putc(out, '}');
}

/* ---- Azu's frames ------------------------------------------------------------ */

void spark_frame_azu_reply(spark_sbuf *out, long long ref, long long version) {
    spark_sbuf_puts(out, "{\"type\":\"reply\",\"ref\":");
    put_ref(out, ref);
    spark_sbuf_puts(out, ",\"ok\":true");
    if (version >= 0) spark_sbuf_printf(out, ",\"version\":%lld", version);
    spark_sbuf_putc(out, '}');
}

void spark_frame_azu_error(spark_sbuf *out, long long ref, const char *cid, const char *code,
                           const char *message) {
    spark_sbuf_puts(out, "{\"type\":\"error\",\"ref\":");
    put_ref(out, ref);
    if (cid) {
        spark_sbuf_puts(out, ",\"component_id\":");
        spark_sbuf_json_string(out, cid);
    }
    spark_sbuf_puts(out, ",\"code\":");
    spark_sbuf_json_string(out, code);
    spark_sbuf_puts(out, ",\"message\":");
    spark_sbuf_json_string(out, message ? message : "");
    spark_sbuf_putc(out, '}');
}

void spark_frame_azu_update(spark_sbuf *out, const char *cid, long long v, const spark_node *root) {
    html_frame(out, "{\"type\":\"component_update\",\"component_id\":", "version", cid, v, root);
}

void spark_frame_azu_flash(spark_sbuf *out, const char *cid, const char *level,
                           const char *message) {
    flash_frame(out, "{\"type\":\"component_flash\",\"component_id\":", cid, level, message);
}

void spark_frame_azu_redirect(spark_sbuf *out, const char *url) {
    spark_sbuf_puts(out, "{\"type\":\"component_redirect\",\"url\":");
    spark_sbuf_json_string(out, url);
    spark_sbuf_putc(out, '}');
}
