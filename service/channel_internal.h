/*
 * channel_internal.h - the runtime's side of channels: how the server hands
 * WebSocket traffic to them, and the connection as a peer of rooms.
 */
#ifndef SPARK_CHANNEL_INTERNAL_H
#define SPARK_CHANNEL_INTERNAL_H

#include "config.h"
#include "each_link.h"
#include "rooms.h"

#include <libwebsockets.h>
#include <spark/channel.h>
#include <stdint.h>

typedef struct spark_sessions spark_sessions;

/* The instance's channels: every open connection, the limits, the rooms.
 * One per serving process; the public API reaches it implicitly. */
typedef struct spark_channels spark_channels;

spark_channels *spark_channels_new(const spark_config *cfg, spark_rooms *rooms,
                                   spark_sessions *sessions);
void spark_channels_free(spark_channels *channels);

/* The WebSocket half of the HTTP protocol's callback. `slot` is the
 * connection's per-session pointer, owned by this module. Returns what the
 * lws callback must return. */
int spark_channels_callback(void *ud, struct lws *wsi, enum lws_callback_reasons reason,
                            void **slot, void *in, size_t len);

/* True when `path` names a channel (for telling pages from upgrades). */
bool spark_channels_route_exists(const char *path);

/* Open connections (accepted and not yet closed). */
size_t spark_channels_count(const spark_channels *channels);

/* Refuses new upgrades and closes every connection with `code`. */
void spark_channels_close_all(spark_channels *channels, int code, const char *reason);

/* The connection as the rooms module knows it: live components track
 * their viewers' presence with it. */
spark_room_peer *spark_conn_peer(spark_conn *c);

/* True once the connection is closing or closed: queue nothing for it. */
bool spark_conn_closing(const spark_conn *c);

/* Something held on a connection's behalf (an event it sent to a
 * component): its `conn` is set to NULL, not freed, when the connection
 * goes, so the holder may outlive it. */
typedef struct spark_conn_ref {
    lws_dll2_t link;
    spark_conn *conn;
} spark_conn_ref;
void spark_conn_ref_hold(spark_conn_ref *ref, spark_conn *c);
void spark_conn_ref_drop(spark_conn_ref *ref);

/* The live component runtime of the connection's server, for the /spark
 * channel (registered once per process, served by each server). */
typedef struct spark_components spark_components;
void spark_channels_set_components(spark_channels *channels, spark_components *components);
spark_components *spark_conn_components(const spark_conn *c);

#endif
