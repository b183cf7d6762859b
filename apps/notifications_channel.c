/*
 * notifications_channel.c - the seed's NotificationChannel,
 * /notifications/:user_id: whatever is sent to that user, from C
 * (spark_send_user) or SQL (spark.notify_user), on every instance and in
 * every tab, and what is sent to everyone (spark_broadcast_all,
 * spark.broadcast_all). Only the user, or a token with the scope
 * "user:<id>", may listen; a token with "notifications:all" may also send
 * to everyone. It confirms the connection with the seed's "connected"
 * frame and this instance's counts: its notification sockets, and the
 * sockets of that user.
 */
#include <spark/channel.h>

#include <stdio.h>
#include <string.h>

static void on_connect(spark_conn *c) {
    const char *user = spark_conn_param(c, "user_id");
    char scope[300], room[300], message[400], ts[SPARK_TIMESTAMP_LEN];
    snprintf(scope, sizeof scope, "user:%s", user);
    if (strcmp(user, spark_conn_user_id(c)) != 0 && !spark_conn_can(c, scope)) {
        spark_conn_close(c, 4403, "not this user's notifications");
        return;
    }
    snprintf(room, sizeof room, "user:%s", user);
    spark_conn_join(c, room, spark_conn_since(c));

    snprintf(message, sizeof message, "Connected to notifications for user %s", user);
    spark_json *out = spark_json_object();
    spark_json_set_str(out, "type", "connected");
    spark_json_set_str(out, "message", message);
    spark_json_set_str(out, "timestamp", spark_timestamp(ts));
    /* The seed's total_connections and CONNECTIONS[user_id].size, here. */
    spark_json_set_int(out, "connections", (long long)spark_conn_count(c, NULL));
    spark_json_set_int(out, "user_connections", (long long)spark_conn_count(c, room));
    spark_conn_send_json(c, out);
    spark_json_free(out);
}

/* The seed's broadcast_to_all, for tokens with the scope
 * "notifications:all": {"action":"broadcast_all","message":".."} reaches
 * every connection on every instance. Otherwise this channel only sends. */
static void on_message(spark_conn *c, const char *text, size_t len) {
    spark_json *in = spark_json_parse(text, len);
    const char *action = spark_json_str(in, "action"), *message = spark_json_str(in, "message");
    char ts[SPARK_TIMESTAMP_LEN];
    if (!action || strcmp(action, "broadcast_all") != 0) {
        spark_conn_send_error(c, "This channel only sends");
    } else if (!spark_conn_can(c, "notifications:all")) {
        spark_conn_send_error(c, "Access denied");
    } else if (!message || !*message) {
        spark_conn_send_error(c, "Message is required");
    } else {
        spark_json *out = spark_json_object();
        spark_json_set_str(out, "type", "notification");
        spark_json_set_str(out, "message", message);
        spark_json_set_str(out, "from", spark_conn_user_name(c));
        spark_json_set_str(out, "timestamp", spark_timestamp(ts));
        if (spark_broadcast_all(spark_json_text(out, NULL)))
            spark_conn_send_error(c, "Server error processing message");
        spark_json_free(out);
    }
    spark_json_free(in);
}

SPARK_CHANNEL(notifications, .route = "/notifications/:user_id", .on_connect = on_connect,
              .on_message = on_message);
