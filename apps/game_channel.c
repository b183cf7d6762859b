/*
 * game_channel.c - the seed's GameChannel, /game/:game_id.
 *
 * JSON in: {"action":"join"} takes a seat, {"action":"move","position":N}
 * plays square N (0-8, rows left to right), {"action":"chat","message":..},
 * {"action":"ping"}, {"action":"leave"} gives the seat up. The game is the
 * live component game:<game_id> (game_component.c): its state is in
 * PostgreSQL, so players on different instances play the same board, and
 * the component decides whether a move is valid. Out, to the room
 * "game:<game_id>": player_joined, player_move (to the others: the mover
 * knows), chat, player_left; to the sender alone: pong and error.
 */
#include <spark/channel.h>

#include <stdio.h>
#include <string.h>

static const char *game_of(spark_conn *c, char *buf, size_t len) {
    snprintf(buf, len, "game:%s", spark_conn_param(c, "game_id"));
    return buf;
}

/* {"type":type,"game_id":..,"player":..,"user":..,"timestamp":..} */
static spark_json *game_event(spark_conn *c, const char *type) {
    char ts[SPARK_TIMESTAMP_LEN];
    spark_json *out = spark_json_object();
    spark_json_set_str(out, "type", type);
    spark_json_set_str(out, "game_id", spark_conn_param(c, "game_id"));
    spark_json_set_str(out, "player", spark_conn_user_id(c));
    spark_json_set_str(out, "user", spark_conn_user_name(c));
    spark_json_set_str(out, "timestamp", spark_timestamp(ts));
    return out;
}

static void broadcast_to_game(spark_conn *c, spark_json *data, unsigned flags) {
    char game[300];
    spark_broadcast(c, game_of(c, game, sizeof game), spark_json_text(data, NULL), flags);
    spark_json_free(data);
}

/* A change the game refused is an invalid move; one it could not store is
 * the server's failure. */
static bool stored(spark_conn *c, const spark_event_result *r) {
    if (!r->ok)
        spark_conn_send_error(c, r->refused ? "Invalid move" : "Server error processing message");
    return r->ok;
}

static void moved(spark_conn *c, const spark_event_result *r) {
    if (!stored(c, r)) return;
    spark_json *data = spark_json_parse(r->data, strlen(r->data)),
               *move = game_event(c, "player_move");
    long long position = 0;
    spark_json_int(data, "position", &position);
    spark_json_set_int(move, "position", position);
    spark_json_free(data);
    broadcast_to_game(c, move, SPARK_EXCLUDE_SELF);
}

static void joined(spark_conn *c, const spark_event_result *r) {
    if (!stored(c, r)) return;
    spark_json *state = spark_json_parse(r->state, strlen(r->state)),
               *out = game_event(c, "player_joined");
    const char *x = spark_json_str(state, "x"), *o = spark_json_str(state, "o"),
               *me = spark_conn_user_id(c);
    spark_json_set_str(out, "mark",
                       x && !strcmp(x, me)   ? "x"
                       : o && !strcmp(o, me) ? "o"
                                             : "spectator");
    spark_json_free(state);
    broadcast_to_game(c, out, 0);
}

static void left(spark_conn *c, const spark_event_result *r) {
    if (stored(c, r)) broadcast_to_game(c, game_event(c, "player_left"), 0);
}

static int handle_player_move(spark_conn *c, const spark_json *in) {
    long long position;
    char game[300], data[64];
    if (!spark_json_int(in, "position", &position)) return spark_conn_send_error(c, "Invalid move");
    snprintf(data, sizeof data, "{\"position\":%lld}", position);
    return spark_conn_event(c, game_of(c, game, sizeof game), "move", data, moved);
}

static int handle_chat_message(spark_conn *c, const spark_json *in) {
    const char *message = spark_json_str(in, "message");
    if (!message || !*message) return spark_conn_send_error(c, "Message is required");
    spark_json *chat = game_event(c, "chat");
    spark_json_set_str(chat, "message", message);
    broadcast_to_game(c, chat, 0); /* a failed post is told by the runtime */
    return 0;
}

static int handle_ping(spark_conn *c) {
    static const char pong[] = "{\"type\":\"pong\"}";
    return spark_conn_send(c, pong, sizeof pong - 1);
}

static int change_seat(spark_conn *c, const char *event, spark_event_done done) {
    char game[300];
    return spark_conn_event(c, game_of(c, game, sizeof game), event, NULL, done);
}

static void on_connect(spark_conn *c) {
    char game[300];
    spark_conn_join(c, game_of(c, game, sizeof game), spark_conn_since(c));
}

static void on_message(spark_conn *c, const char *text, size_t len) {
    spark_json *in = spark_json_parse(text, len);
    const char *action = spark_json_str(in, "action");
    char error[300];
    int failed = 0;
    if (!spark_json_is_object(in))
        spark_conn_send_error(c, "Invalid JSON format");
    else if (action && strcmp(action, "move") == 0)
        failed = handle_player_move(c, in);
    else if (action && strcmp(action, "chat") == 0)
        failed = handle_chat_message(c, in);
    else if (action && strcmp(action, "ping") == 0)
        failed = handle_ping(c);
    else if (action && strcmp(action, "join") == 0)
        failed = change_seat(c, "join", joined);
    else if (action && strcmp(action, "leave") == 0)
        failed = change_seat(c, "leave", left);
    else {
        snprintf(error, sizeof error, "Unknown action: %.200s", action ? action : "(none)");
        spark_conn_send_error(c, error);
    }
    if (failed) spark_conn_send_error(c, "Server error processing message");
    spark_json_free(in);
}

SPARK_CHANNEL(game, .route = "/game/:game_id", .on_connect = on_connect, .on_message = on_message);
