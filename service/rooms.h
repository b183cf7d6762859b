/*
 * rooms.h - rooms that span instances: membership, ordered delivery,
 * resume, presence, instance heartbeats and retention.
 *
 * A room's truth is spark.messages. This module keeps, per room with local
 * members, the last sequence it fetched, and per membership the last
 * sequence delivered; a notification ("m|seq|room") only says "fetch
 * after your cursor". All queries go through the one "db" connection, in
 * order, which is what makes the hand-over from catch-up to live exact.
 *
 * Who is in a room is a peer: a channel's WebSocket connection, or a live
 * component that shows a room (its recent messages, who is online, who is
 * typing). Both are fed by the same cursors and the same fetches, and see
 * the same kinds of message:
 *   "message"         a stored message (spark_broadcast, spark.broadcast);
 *   "presence"        a stored presence_diff (or, when a room stops being
 *                     crowded, its presence_state), to every member;
 *   "presence_state"  the room's presence, to a member that tracked, and
 *                     to a watching component, once;
 *   "ephemeral"       an ephemeral message, never stored;
 *   "resume"          the end of a catch-up (spark_conn_join with a seq);
 *   "history"         a watching component's recent messages, as an array.
 * Messages of any other kind are stored for SQL and replay, and delivered
 * to no one.
 *
 * An enveloped peer (a /spark connection) is given only "message" and
 * "ephemeral", each wrapped so that no payload can pass for a control
 * frame: {"t":"msg","room":R,"kind":K,"seq":N,"data":P} (no seq for an
 * ephemeral message). P is the payload as it was posted, nested.
 *
 * Ephemeral messages travel in NOTIFY, which any role that can connect may
 * send; they carry a MAC (crypto_auth) under the deployment's notify key:
 * SPARK_NOTIFY_KEY, or else one derived from SPARK_SIGNING_KEY. Without
 * either, they are unauthenticated when SPARK_AUTH=off and refused when it
 * is on. Forged or malformed ones count in spark_notify_forged_total.
 */
#ifndef SPARK_ROOMS_H
#define SPARK_ROOMS_H

#include "bus.h"
#include "config.h"
#include "frame.h"
#include "pg.h"

#include <libwebsockets.h>
#include <spark/channel.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct spark_rooms spark_rooms;

/* Someone in rooms. Its owner fills in every field before the first join,
 * keeps it alive while it is in any room, and calls spark_rooms_peer_gone()
 * before freeing it. */
typedef struct spark_room_peer spark_room_peer;
struct spark_room_peer {
    /* Takes one delivery: its kind (above) and the JSON a client is sent.
     * Not called when deliver_frame is set. */
    void (*deliver)(spark_room_peer *p, const char *kind, const char *frame, size_t len);
    /* Optional, used instead of deliver: the same delivery as a shared
     * frame (frame.h), built once for every member. The peer takes its
     * own reference if it keeps the frame past the call. */
    void (*deliver_frame)(spark_room_peer *p, const char *kind, spark_frame *frame);
    /* Optional: a page it asked for (spark_rooms_history) will not come. */
    void (*history_failed)(spark_room_peer *p);
    const char *origin; /* "instance/serial": SPARK_EXCLUDE_SELF posts skip it */
    uint64_t serial;    /* names its presence, unique in the instance */
    const char *user_id, *user_name;
    bool enveloped; /* wrap deliveries as {"t":"msg",...} (above) */
    /* deliver_frame also takes a round: several messages in one frame,
     * framed already (frame.h, spark_frame_join), written as they are. */
    bool takes_rounds;
    lws_dll2_owner_t memberships; /* the rooms module's */
    lws_dll2_owner_t requests;    /* the rooms module's: history pages asked for */
};

spark_rooms *spark_rooms_new(struct lws_context *ctx, spark_pg *db, const spark_config *cfg);
void spark_rooms_free(spark_rooms *rooms);

/* The db connection is up: register the instance, start heartbeats. */
void spark_rooms_db_up(spark_rooms *rooms);

/* Notifications on channel "spark" and the bus's resync. */
void spark_rooms_on_notify(spark_rooms *rooms, const char *payload);
void spark_rooms_on_resync(spark_rooms *rooms, bool reconnected);

/* The channel API's spark_conn_join, spark_conn_leave and spark_conn_track. */
int spark_rooms_join(spark_rooms *rooms, spark_room_peer *p, const char *room, long long since);
int spark_rooms_leave(spark_rooms *rooms, spark_room_peer *p, const char *room);
int spark_rooms_track(spark_rooms *rooms, spark_room_peer *p, const char *room,
                      const char *meta_json);

/* Joins as a component that shows the room: one "history" delivery with
 * the newest `recent` messages and one "presence_state", read together,
 * then everything live. Joined again after the database comes back. */
int spark_rooms_watch(spark_rooms *rooms, spark_room_peer *p, const char *room, int recent);

/* Connections of this instance in `room`: its members that are channel
 * connections (a peer with a serial), /spark viewers of a room component
 * included. */
size_t spark_rooms_count(spark_rooms *rooms, const char *room);

/* Delivers to the peer, as kind "history_page", one page of the room's
 * stored messages before `before` (SPARK_LIVE: the newest), at most
 * `limit`, oldest first (the frame of spark_conn_history). Returns 0, or
 * -1 when the room or before is invalid, the peer is enveloped, or the
 * database cannot take the query. */
int spark_rooms_history(spark_rooms *rooms, spark_room_peer *p, const char *room, long long before,
                        int limit);

/* Makes the peer present in the room without delivering anything to it:
 * a live component's viewer, whom the component shows. */
int spark_rooms_track_quietly(spark_rooms *rooms, spark_room_peer *p, const char *room);

/* Stores (or, with SPARK_EPHEMERAL, only notifies) a message from `from`
 * (may be NULL); with SPARK_UNLESS_CROWDED, stores it only if the room has
 * at most SPARK_CROWDED_ROOM presences. Returns 0, or -1 when it is not
 * JSON, too large, the flags conflict, or the database cannot take it now. */
int spark_rooms_post(spark_rooms *rooms, const spark_room_peer *from, const char *room,
                     const char *kind, const char *json, unsigned flags);

/* Called with the serial of the local connection whose message could not
 * be stored (the database refused it, timed out, or was not there), so
 * that its sender hears of it. */
typedef void (*spark_rooms_post_failed_fn)(void *ud, uint64_t serial);
void spark_rooms_on_post_failed(spark_rooms *rooms, spark_rooms_post_failed_fn fn, void *ud);

/* The peer is going away: drop its memberships and presences. */
void spark_rooms_peer_gone(spark_rooms *rooms, spark_room_peer *p);

/* A clean stop: remove this instance and its presences now. */
void spark_rooms_stop(spark_rooms *rooms);

/* The db connection is about to be freed: query nothing from now on. */
void spark_rooms_detach(spark_rooms *rooms);

#endif
