/*
 * chat_channel.c - the chat room channel, /chat/:room_id.
 *
 * JSON in: {"action":"chat","message":"..."}; {"action":"typing"} (not
 * stored); {"action":"resume","since":N}; {"action":"load_history",
 * "before":N,"limit":M} (older messages, a page at a time);
 * {"action":"topic","topic":"..."} (changes the chat component's topic).
 * Out: user_joined, user_left, chat, typing, topic, history and error,
 * each with type, user and timestamp; user_joined and user_left only while
 * the room is not crowded (SPARK_CROWDED_ROOM presences, 100 by default),
 * past which presence tells joins and leaves, as a count of users. Messages live in the room
 * "chat:<room_id>", which the chat component of the same room reads too.
 */
#include <spark/channel.h>

#include <stdio.h>
#include <string.h>

#define MAX_CHAT_BYTES 32768
#define HISTORY_PAGE   50

static const char *room_of(spark_conn *c, char *buf, size_t len) {
    snprintf(buf, len, "chat:%s", spark_conn_param(c, "room_id"));
    return buf;
}

/* Posts {"type":type,"user":..,"user_id":..,key:value,"timestamp":..}.
 * If it cannot be stored, the runtime tells the sender the seed's "Server
 * error processing message". */
static int announce(spark_conn *c, const char *type, const char *key, const char *value,
                    unsigned flags) {
    char room[300], ts[SPARK_TIMESTAMP_LEN];
    spark_json *out = spark_json_object();
    spark_json_set_str(out, "type", type);
    spark_json_set_str(out, "user", spark_conn_user_name(c));
    spark_json_set_str(out, "user_id", spark_conn_user_id(c));
    if (key) spark_json_set_str(out, key, value);
    spark_json_set_str(out, "timestamp", spark_timestamp(ts));
    int r = spark_broadcast(c, room_of(c, room, sizeof room), spark_json_text(out, NULL), flags);
    spark_json_free(out);
    return r;
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
    /* In a crowded room every join would reach every member: the room's
     * presence diffs (one per room per loop turn) tell them instead. */
    announce(c, "user_joined", NULL, NULL, SPARK_UNLESS_CROWDED);
}

/* The seed's load_history: a page of older messages, newest page first. */
static int load_history(spark_conn *c, const spark_json *in) {
    long long before = SPARK_LIVE, limit = HISTORY_PAGE;
    char room[300];
    if ((spark_json_has(in, "before") && (!spark_json_int(in, "before", &before) || before < 1)) ||
        (spark_json_has(in, "limit") &&
         (!spark_json_int(in, "limit", &limit) || limit < 1 || limit > SPARK_HISTORY_MAX)))
        return spark_conn_send_error(c, "Invalid history request: before is a seq, limit 1 to 100");
    return spark_conn_history(c, room_of(c, room, sizeof room), before, (int)limit);
}

/* The chat component took the new topic (or refused it): tell the room. */
static void topic_set(spark_conn *c, const spark_event_result *r) {
    spark_json *data = spark_json_parse(r->data, strlen(r->data));
    if (r->ok)
        announce(c, "topic", "topic", spark_json_str(data, "topic"), 0);
    else
        spark_conn_send_error(c, r->refused ? r->message : "Server error processing message");
    spark_json_free(data);
}

static int set_topic(spark_conn *c, const spark_json *in) {
    const char *topic = spark_json_str(in, "topic");
    char id[300];
    if (!topic) return spark_conn_send_error(c, "Topic is required");
    spark_json *data = spark_json_object();
    spark_json_set_str(data, "topic", topic);
    int r = spark_conn_event(c, room_of(c, id, sizeof id), "set_topic", spark_json_text(data, NULL),
                             topic_set);
    spark_json_free(data);
    return r;
}

static void on_message(spark_conn *c, const char *text, size_t len) {
    spark_json *in = spark_json_parse(text, len);
    const char *action = spark_json_str(in, "action");
    const char *message = spark_json_str(in, "message");
    long long since;
    int failed = 0;
    char room[300], error[300];
    if (!spark_json_is_object(in)) {
        spark_conn_send_error(c, "Invalid JSON format");
    } else if (action && strcmp(action, "chat") == 0) {
        if (!message || !*message)
            spark_conn_send_error(c, "Message is required");
        else if (strlen(message) > MAX_CHAT_BYTES)
            spark_conn_send_error(c, "Message is too long");
        else
            announce(c, "chat", "message", message, 0); /* a failed post is told by the runtime */
    } else if (action && strcmp(action, "typing") == 0) {
        announce(c, "typing", NULL, NULL, SPARK_EPHEMERAL | SPARK_EXCLUDE_SELF);
    } else if (action && strcmp(action, "resume") == 0 && spark_json_int(in, "since", &since)) {
        spark_conn_join(c, room_of(c, room, sizeof room), since);
    } else if (action && strcmp(action, "load_history") == 0) {
        failed = load_history(c, in);
    } else if (action && strcmp(action, "topic") == 0) {
        failed = set_topic(c, in);
    } else {
        snprintf(error, sizeof error, "Unknown action: %.200s", action ? action : "(none)");
        spark_conn_send_error(c, error);
    }
    if (failed) spark_conn_send_error(c, "Server error processing message");
    spark_json_free(in);
}

static void on_close(spark_conn *c, int code, const char *reason) {
    (void)code, (void)reason;
    char scope[300];
    snprintf(scope, sizeof scope, "room:%s", spark_conn_param(c, "room_id"));
    if (spark_conn_can(c, scope)) announce(c, "user_left", NULL, NULL, SPARK_UNLESS_CROWDED);
}

SPARK_CHANNEL(chat, .route = "/chat/:room_id", .on_connect = on_connect, .on_message = on_message,
              .on_close = on_close);
