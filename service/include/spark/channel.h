/*
 * channel.h - WebSocket channels: a route, three callbacks, rooms.
 *
 * A channel answers WebSocket upgrades on a route pattern. Each accepted
 * connection is a spark_conn that lives from on_connect to on_close:
 *
 *     static void on_connect(spark_conn *c) {
 *         spark_conn_join(c, spark_conn_param(c, "room_id"), spark_conn_since(c));
 *     }
 *     static void on_message(spark_conn *c, const char *text, size_t len) {
 *         spark_broadcast(c, spark_conn_param(c, "room_id"), text, 0);
 *     }
 *     SPARK_CHANNEL(echo, .route = "/echo/:room_id", .on_connect = on_connect,
 *                   .on_message = on_message);
 *
 * Rooms span every instance: a broadcast is stored in spark.messages (unless
 * ephemeral) and delivered, on every instance, to the room's connections in
 * sequence order, exactly once each. A delivered message is the broadcast
 * JSON with the message's sequence added as "seq" (objects) or wrapped as
 * {"seq":N,"room":R,"payload":..} (other values); a client that reconnects
 * with ?since=<last seq> gets what it missed first (see spark_conn_join).
 *
 * All calls are made from the event loop (inside callbacks or timers).
 * Strings passed in are copied; strings returned belong to the connection
 * and live until on_close returns.
 */
#ifndef SPARK_CHANNEL_H
#define SPARK_CHANNEL_H

#include <spark/json.h>
#include <spark/spark.h>

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spark_conn spark_conn;

typedef struct spark_channel {
    const char *route; /* "/chat/:room_id": literal and :param segments */
    void (*on_connect)(spark_conn *c);
    /* A complete text message (valid UTF-8, at most SPARK_MAX_MESSAGE). */
    void (*on_message)(spark_conn *c, const char *text, size_t len);
    /* Binary messages; when NULL they close the connection with 1003. */
    void (*on_binary)(spark_conn *c, const void *data, size_t len);
    /* The connection is gone: the peer's close code, or 1006 when it
     * vanished. The conn may not be used after this returns. */
    void (*on_close)(spark_conn *c, int code, const char *reason);
} spark_channel;

/* Registers a channel (before spark_main). Routes are tried in order of
 * registration. The struct must outlive the program (a static). Returns 0,
 * or -1 if the route is malformed. */
SPARK_API int spark_channel_register(const spark_channel *channel);

/* Declares and registers a channel at program start. */
#define SPARK_CHANNEL(name, ...)                                                                   \
    static const spark_channel name##_channel = {__VA_ARGS__};                                     \
    __attribute__((constructor)) static void name##_channel_register(void) {                       \
        spark_channel_register(&name##_channel);                                                   \
    }

/* ---- the connection ----------------------------------------------------- */

/* A route parameter (":room_id" is "room_id"), or NULL. Percent-decoded. */
SPARK_API const char *spark_conn_param(const spark_conn *c, const char *name);

/* A query argument of the upgrade request ("?since=5"), or NULL. */
SPARK_API const char *spark_conn_query(const spark_conn *c, const char *name);

/* The "since" query argument as a sequence, or SPARK_LIVE when absent or
 * malformed. */
SPARK_API long long spark_conn_since(const spark_conn *c);

/* Who is connected: the token's subject and display name. Without tokens
 * (no SPARK_VERIFY_KEYS) every connection is its own anonymous user. */
SPARK_API const char *spark_conn_user_id(const spark_conn *c);
SPARK_API const char *spark_conn_user_name(const spark_conn *c);

/* True if the connection's token grants `scope` ("room:lobby"). Always true
 * without tokens. */
SPARK_API bool spark_conn_can(const spark_conn *c, const char *scope);

/* True if the connection carries a verified token. Without tokens
 * (SPARK_AUTH=off) every connection is anonymous: false. With tokens on, a
 * missing or bad token never reaches a channel (see docs/channels.md). */
SPARK_API bool spark_conn_authenticated(const spark_conn *c);

/* Queues a text message to this client. Returns 0, or -1 if the
 * connection is closing (a full queue closes it with 1008). */
SPARK_API int spark_conn_send(spark_conn *c, const char *text, size_t len);
SPARK_API int spark_conn_send_json(spark_conn *c, spark_json *json);

/* Sends {"type":"error","message":...} (the connection stays open). */
SPARK_API int spark_conn_send_error(spark_conn *c, const char *message);

/* Closes after what is queued has been sent. `reason` is cut to 123 bytes. */
SPARK_API void spark_conn_close(spark_conn *c, int code, const char *reason);

/* Connections open on this instance, not the cluster (counting another
 * instance's would mean waiting for the database): with `room` NULL, those
 * of the connection's own channel (route), from their on_connect to their
 * on_close; else those that joined `room` here (a /spark connection whose
 * room component shows the room counts too). Kept as they change: a call
 * costs nothing with NULL, and the room's members here otherwise. */
SPARK_API size_t spark_conn_count(const spark_conn *c, const char *room);

/* One pointer for the channel's own per-connection data; `release` (may be
 * NULL) is called with it after on_close. */
SPARK_API void spark_conn_set_data(spark_conn *c, void *data, void (*release)(void *data));
SPARK_API void *spark_conn_data(const spark_conn *c);

/* Now in UTC, ISO 8601 with milliseconds ("2026-12-02T08:41:49.123Z"), as
 * the seed's frames carry it in "timestamp". Returns `out`. */
#define SPARK_TIMESTAMP_LEN 32
SPARK_API const char *spark_timestamp(char out[SPARK_TIMESTAMP_LEN]);

/* ---- rooms -------------------------------------------------------------- */

#define SPARK_LIVE (-1LL)

/* Joins `room` (1-255 bytes). With `since` = SPARK_LIVE the connection gets
 * messages posted from now on. With a sequence it first gets every message
 * of the room after it, in order, then live ones, with no gap and no
 * duplicate, followed by
 *     {"type":"resume","room":R,"since":S,"recovered":true|false}
 * where recovered is false when retention already dropped some of them.
 * Joining a room again restarts its stream from `since`. Returns 0 or -1.
 *
 * Two kinds of names belong to the runtime. "spark:..." rooms are its own:
 * joining, tracking, reading or posting to them is refused (-1).
 * "user:<id>" is that user's private room (spark_send_user): a connection
 * joins it, tracks in it or reads its history only as that user or with
 * the scope "user:<id>", so a room named after a route parameter cannot be
 * turned into someone else's inbox. Posting to it is allowed. */
SPARK_API int spark_conn_join(spark_conn *c, const char *room, long long since);
SPARK_API int spark_conn_leave(spark_conn *c, const char *room);

enum {
    SPARK_EXCLUDE_SELF = 1, /* not delivered to the sending connection */
    SPARK_EPHEMERAL = 2,    /* not stored, no seq, not resumable (typing...) */
    /* Not posted at all when the room is crowded: more connections present
     * in it (spark_conn_track, every instance) than SPARK_CROWDED_ROOM, as
     * the database counts them when the message would be stored. For
     * announcements that every member would get from every other (joins
     * and leaves), which presence tells a large room anyway. Stored
     * messages only: with SPARK_EPHEMERAL the post is refused (-1). */
    SPARK_UNLESS_CROWDED = 4,
};

/* Posts `json` (a JSON value, at most SPARK_MAX_MESSAGE bytes; ephemeral
 * ones at most 7 KiB) to `room` on every instance. `from` is the sending
 * connection: its user is the message's actor, and if the message cannot
 * be stored it is sent {"type":"error","message":"Server error processing
 * message"}. Returns 0, or -1 when `from` is NULL, the payload is not JSON
 * or too large, or the database cannot take it now. Delivery is
 * asynchronous. */
SPARK_API int spark_broadcast(spark_conn *from, const char *room, const char *json, unsigned flags);

/* The same with a kind other than "message": stored in spark.messages.kind
 * for SQL and replay, and delivered to no client. */
SPARK_API int spark_broadcast_kind(spark_conn *from, const char *room, const char *kind,
                                   const char *json, unsigned flags);

/* Sends `json` to every connection of `user_id`, on every instance (each
 * connection is in the room "user:<user_id>"). */
SPARK_API int spark_send_user(spark_conn *from, const char *user_id, const char *json);

/* Posts `json` to every connection of every channel on every instance (the
 * room "spark:all", which each instance serves to all its connections): a
 * channel client gets it as a room message, with "seq"; a /spark client in
 * the envelope {"t":"msg","room":"spark:all",...}. From SQL:
 * spark.broadcast_all(payload). Callable from any callback or timer of a
 * serving program. Returns 0, or -1 as spark_broadcast (and when nothing is
 * being served). */
SPARK_API int spark_broadcast_all(const char *json);

/* Sends this connection one page of the room's stored messages, those
 * with seq < `before` (SPARK_LIVE: the newest), at most `limit` (1 to
 * SPARK_HISTORY_MAX), oldest first:
 *     {"type":"history","room":R,"messages":[{..,"seq":N},..],"more":true|false}
 * "more" says whether older ones remain; page on with the first seq as
 * the next `before`. Returns 0, or -1 on bad arguments or no database. */
#define SPARK_HISTORY_MAX 100
SPARK_API int spark_conn_history(spark_conn *c, const char *room, long long before, int limit);

/* ---- live components ------------------------------------------------------ */

/* How an event sent to a component by spark_conn_event ended. */
typedef struct spark_event_result {
    bool ok;                    /* stored (or it changed nothing) */
    bool refused;               /* the handler refused it (spark_fail) or has no such event */
    const char *code, *message; /* why not: the handler's, or the runtime's (below) */
    const char *event, *data;   /* what was sent (data: JSON text) */
    const char *state;          /* the component's shared state after it, JSON text */
    long long version;          /* its version */
} spark_event_result;

typedef void (*spark_event_done)(spark_conn *c, const spark_event_result *r);

/* Sends event `event` with `data_json` (an object; NULL is {}) to the live
 * component `component_id` ("game:42"), the seed's handle_external_event:
 * its on_external handler (component.h) runs on this instance, exactly as
 * a viewer's event runs on_event: in order with them, as one stored
 * version with a history row, retried on conflicts, and every viewer on
 * every instance gets the patch. The connection's user is the actor and
 * what spark_viewer_id/name read. The channel authorizes: the runtime
 * checks no scope here.
 *
 * `done` (may be NULL) is called once it is stored or refused, unless the
 * connection closed meanwhile (the event is applied even so); for an event
 * that changes nothing, or is refused, that may be before this returns.
 * When it could not be stored (no database, too much waiting, a conflict
 * that would not settle) r->ok and r->refused are both false and r->code
 * is the runtime's: "unavailable", "busy", "conflict" or "unknown_outcome".
 *
 * Returns 0, or -1 (and `done` is not called) when the id names no
 * component type, the data is not an object, the connection is closing or
 * the database cannot take it now. */
SPARK_API int spark_conn_event(spark_conn *c, const char *component_id, const char *event,
                               const char *data_json, spark_event_done done);

/* ---- presence ------------------------------------------------------------ */

/* Makes the connection present in `room` (it should have joined it) with
 * `meta_json` (an object, or NULL). Members of the room receive
 *     {"type":"presence_diff","count":U,"joins":{"<user>":{"name":..,"metas":[..]}},"leaves":{}}
 * and this connection first gets {"type":"presence_state","room":R,"state":{..},"count":U}
 * with one key per user and one meta per connection, U users in all. In a
 * crowded room (SPARK_CROWDED_ROOM) both carry "crowded":true and the count
 * with no users listed, and a room that stops being crowded sends every
 * member its presence_state again. Presence ends when
 * the connection closes, or within SPARK_PRESENCE_TIMEOUT when its instance
 * dies. Returns 0 or -1. */
SPARK_API int spark_conn_track(spark_conn *c, const char *room, const char *meta_json);

#ifdef __cplusplus
}
#endif

#endif
