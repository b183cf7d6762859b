/*
 * secure_channel.c - the seed's SecureChannel, /secure/:channel_id: a
 * channel for signed-in users whose token grants "secure:<channel_id>"
 * (or "secure:*"). Anyone else is told why, in the seed's error frame,
 * and closed: "Authentication required" (4401) without a token,
 * "Access denied" (4403) without the scope. A missing or bad token from
 * a client that can read HTTP statuses is refused by the runtime with
 * 401 before the upgrade (docs/channels.md says why).
 *
 * Members talk: {"action":"chat","message":".."} goes to everyone in the
 * channel as {"type":"chat","user":..,"message":..,"timestamp":..}.
 */
#include <spark/channel.h>

#include <stdio.h>
#include <string.h>

static const char *room_of(spark_conn *c, char *buf, size_t len) {
    snprintf(buf, len, "secure:%s", spark_conn_param(c, "channel_id"));
    return buf;
}

static void close_with_error(spark_conn *c, int code, const char *message) {
    spark_conn_send_error(c, message);
    spark_conn_close(c, code, message);
}

static void on_connect(spark_conn *c) {
    char room[300];
    if (!spark_conn_authenticated(c)) {
        close_with_error(c, 4401, "Authentication required");
        return;
    }
    /* The scope names the channel as its room does: "secure:<id>". */
    if (!spark_conn_can(c, room_of(c, room, sizeof room))) {
        close_with_error(c, 4403, "Access denied");
        return;
    }
    spark_conn_join(c, room, spark_conn_since(c));
}

static void on_message(spark_conn *c, const char *text, size_t len) {
    spark_json *in = spark_json_parse(text, len);
    const char *action = spark_json_str(in, "action"), *message = spark_json_str(in, "message");
    char room[300], ts[SPARK_TIMESTAMP_LEN];
    if (!spark_json_is_object(in)) {
        spark_conn_send_error(c, "Invalid JSON format");
    } else if (!action || strcmp(action, "chat") != 0) {
        char error[300];
        snprintf(error, sizeof error, "Unknown action: %.200s", action ? action : "(none)");
        spark_conn_send_error(c, error);
    } else if (!message || !*message) {
        spark_conn_send_error(c, "Message is required");
    } else {
        spark_json *out = spark_json_object();
        spark_json_set_str(out, "type", "chat");
        spark_json_set_str(out, "user", spark_conn_user_name(c));
        spark_json_set_str(out, "message", message);
        spark_json_set_str(out, "timestamp", spark_timestamp(ts));
        spark_broadcast(c, room_of(c, room, sizeof room), spark_json_text(out, NULL), 0);
        spark_json_free(out);
    }
    spark_json_free(in);
}

SPARK_CHANNEL(secure, .route = "/secure/:channel_id", .on_connect = on_connect,
              .on_message = on_message);
