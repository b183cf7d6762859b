/*
 * protocol.c - the frames of the /spark protocol (docs/protocol.md): strict
 * parsing of what clients send, and writing what the server sends.
 *
 * Parsing is strict so that a client bug shows up as an error code right
 * away rather than as a silently ignored field: every known field must have
 * its type, and a frame that is not exactly one JSON object is refused.
 * Nothing here touches a connection, so the unit tests drive it directly.
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

int spark_msg_parse(const char *text, size_t len, spark_msg *msg, const char **code,
                    const char **message) {
    memset(msg, 0, sizeof *msg);
    msg->ref = -1;
    msg->v = -1;
    if (len > SPARK_LIVE_MAX_FRAME)
        return fail(code, message, "too_large", "frames are limited to 32768 bytes");
    json_object *o;
    bool whole = spark_json_read(text, len, &o);
    int r = -1;
    if (!whole || !json_object_is_type(o, json_type_object)) {
        fail(code, message, "invalid_json", "a frame is one JSON object");
        goto done;
    }
    json_object *ref = get(o, "ref"), *t = get(o, "t"), *cid = get(o, "cid");
    if (ref && !json_object_is_type(ref, json_type_null) &&
        (!read_int(ref, &msg->ref) || msg->ref < 0)) {
        msg->ref = -1;
        fail(code, message, "invalid_message", "ref must be a non-negative integer");
        goto done;
    }
    if (!json_object_is_type(t, json_type_string)) {
        fail(code, message, "invalid_message", "t must be a string");
        goto done;
    }
    const char *kind = json_object_get_string(t);
    if (strcmp(kind, "join") == 0)
        msg->kind = SPARK_MSG_JOIN;
    else if (strcmp(kind, "event") == 0)
        msg->kind = SPARK_MSG_EVENT;
    else if (strcmp(kind, "leave") == 0)
        msg->kind = SPARK_MSG_LEAVE;
    else {
        fail(code, message, "unknown_type", "t is join, event or leave");
        goto done;
    }
    if (!json_object_is_type(cid, json_type_string) || json_object_get_string_len(cid) == 0 ||
        json_object_get_string_len(cid) > SPARK_MAX_CID_BYTES) {
        fail(code, message, "invalid_message", "cid must be a component id");
        goto done;
    }
    snprintf(msg->cid, sizeof msg->cid, "%s", json_object_get_string(cid));
    if (strlen(msg->cid) != (size_t)json_object_get_string_len(cid)) {
        fail(code, message, "invalid_message", "cid must be a component id");
        goto done;
    }
    if (msg->kind == SPARK_MSG_JOIN) {
        json_object *v = get(o, "v");
        if (v && !json_object_is_type(v, json_type_null) && (!read_int(v, &msg->v) || msg->v < 0)) {
            msg->v = -1;
            fail(code, message, "invalid_message", "v must be a non-negative integer");
            goto done;
        }
    } else if (msg->kind == SPARK_MSG_EVENT) {
        json_object *e = get(o, "e"), *d = get(o, "d");
        if (!json_object_is_type(e, json_type_string) || json_object_get_string_len(e) == 0 ||
            (size_t)json_object_get_string_len(e) >= sizeof msg->event) {
            fail(code, message, "invalid_message", "e must be an event name");
            goto done;
        }
        snprintf(msg->event, sizeof msg->event, "%s", json_object_get_string(e));
        json_object *id = get(o, "id");
        if (id && !json_object_is_type(id, json_type_null)) {
            size_t n = json_object_is_type(id, json_type_string)
                           ? (size_t)json_object_get_string_len(id)
                           : 0;
            const char *given = n ? json_object_get_string(id) : "";
            if (n == 0 || n > SPARK_MAX_EVENT_ID_BYTES || strlen(given) != n) {
                fail(code, message, "invalid_message", "id must be a string of 1 to 64 bytes");
                goto done;
            }
            memcpy(msg->event_id, given, n + 1);
        }
        if (d && !json_object_is_type(d, json_type_null) &&
            !json_object_is_type(d, json_type_object)) {
            fail(code, message, "invalid_data", "d must be an object");
            goto done;
        }
        msg->data = d && json_object_is_type(d, json_type_object) ? json_object_get(d)
                                                                  : json_object_new_object();
    }
    r = 0;
done:
    json_object_put(o);
    return r;
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

void spark_frame_render(spark_sbuf *out, const char *cid, long long v, const spark_node *root) {
    spark_sbuf html = {0};
    spark_node_serialize_children(root, &html);
    spark_sbuf_puts(out, "{\"t\":\"render\",\"cid\":");
    spark_sbuf_json_string(out, cid);
    spark_sbuf_printf(out, ",\"v\":%lld,\"html\":", v);
    spark_sbuf_json_string(out, html.data ? html.data : "");
    spark_sbuf_putc(out, '}');
    if (html.failed) out->failed = true;
    spark_sbuf_free(&html);
}

void spark_frame_patch(spark_sbuf *out, const char *cid, long long v, const char *ops) {
    spark_sbuf_puts(out, "{\"t\":\"patch\",\"cid\":");
    spark_sbuf_json_string(out, cid);
    spark_sbuf_printf(out, ",\"v\":%lld,\"ops\":", v);
    spark_sbuf_puts(out, ops);
    spark_sbuf_putc(out, '}');
}

void spark_frame_flash(spark_sbuf *out, const char *cid, const char *level, const char *message) {
    spark_sbuf_puts(out, "{\"t\":\"flash\",\"cid\":");
    spark_sbuf_json_string(out, cid);
    spark_sbuf_puts(out, ",\"level\":");
    spark_sbuf_json_string(out, level);
    spark_sbuf_puts(out, ",\"message\":");
    spark_sbuf_json_string(out, message);
    spark_sbuf_putc(out, '}');
}

void spark_frame_redirect(spark_sbuf *out, const char *url) {
    spark_sbuf_puts(out, "{\"t\":\"redirect\",\"url\":");
    spark_sbuf_json_string(out, url);
    spark_sbuf_putc(out, '}');
}
