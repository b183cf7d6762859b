/*
 * chat_channel.c - the chat room channel, /chat/:room_id.
 *
 * JSON in: {"action":"chat","message":"..."}; {"action":"typing"} (not
 * stored); {"action":"resume","since":N}. Out: user_joined, user_left, chat,
 * typing and error, each with type, user and timestamp. Messages live in
 * the room "chat:<room_id>", which the chat component of the same room
 * reads too.
 */
#include <spark/channel.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_CHAT_BYTES 32768

static const char *room_of(spark_conn *c, char *buf, size_t len) {
    snprintf(buf, len, "chat:%s", spark_conn_param(c, "room_id"));
    return buf;
}

static void now_iso8601(char out[32]) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Posts {"type":type,"user":..,"timestamp":..} plus an optional message. */
static void announce(spark_conn *c, const char *type, const char *message, unsigned flags) {
    char room[300], ts[32];
    now_iso8601(ts);
    spark_json *out = spark_json_object();
    spark_json_set_str(out, "type", type);
    spark_json_set_str(out, "user", spark_conn_user_name(c));
    spark_json_set_str(out, "user_id", spark_conn_user_id(c));
    if (message) spark_json_set_str(out, "message", message);
    spark_json_set_str(out, "timestamp", ts);
    spark_broadcast(c, room_of(c, room, sizeof room), spark_json_text(out, NULL), flags);
    spark_json_free(out);
}

static void on_connect(spark_conn *c) {
    char room[300], scope[300];
    snprintf(scope, sizeof scope, "room:%s", spark_conn_param(c, "room_id"));
    if (!spark_conn_can(c, scope)) {
        spark_conn_close(c, 4403, "not allowed in this room");
        return;
    }
    room_of(c, room, sizeof room);
    spark_conn_join(c, room, spark_conn_since(c));
    spark_conn_track(c, room, NULL);
    announce(c, "user_joined", NULL, 0);
}

static void on_message(spark_conn *c, const char *text, size_t len) {
    spark_json *in = spark_json_parse(text, len);
    const char *action = spark_json_str(in, "action");
    const char *message = spark_json_str(in, "message");
    long long since;
    char room[300], error[300];
    if (!spark_json_is_object(in)) {
        spark_conn_send_error(c, "Invalid JSON format");
    } else if (action && strcmp(action, "chat") == 0) {
        if (!message || !*message)
            spark_conn_send_error(c, "Message is required");
        else if (strlen(message) > MAX_CHAT_BYTES)
            spark_conn_send_error(c, "Message is too long");
        else
            announce(c, "chat", message, 0);
    } else if (action && strcmp(action, "typing") == 0) {
        announce(c, "typing", NULL, SPARK_EPHEMERAL | SPARK_EXCLUDE_SELF);
    } else if (action && strcmp(action, "resume") == 0 && spark_json_int(in, "since", &since)) {
        spark_conn_join(c, room_of(c, room, sizeof room), since);
    } else {
        snprintf(error, sizeof error, "Unknown action: %.200s", action ? action : "(none)");
        spark_conn_send_error(c, error);
    }
    spark_json_free(in);
}

static void on_close(spark_conn *c, int code, const char *reason) {
    (void)code, (void)reason;
    char scope[300];
    snprintf(scope, sizeof scope, "room:%s", spark_conn_param(c, "room_id"));
    if (spark_conn_can(c, scope)) announce(c, "user_left", NULL, 0);
}

SPARK_CHANNEL(chat, .route = "/chat/:room_id", .on_connect = on_connect, .on_message = on_message,
              .on_close = on_close);
