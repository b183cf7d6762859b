/*
 * rooms.h - rooms that span instances: membership, ordered delivery,
 * resume, presence, instance heartbeats and retention.
 *
 * A room's truth is spark.messages. This module keeps, per room with local
 * members, the last sequence it fetched, and per membership the last
 * sequence delivered; a notification ("m|seq|room") only says "fetch
 * after your cursor". All queries go through the one "db" connection, in
 * order, which is what makes the hand-over from catch-up to live exact.
 */
#ifndef SPARK_ROOMS_H
#define SPARK_ROOMS_H

#include "bus.h"
#include "config.h"
#include "pg.h"

#include <libwebsockets.h>
#include <spark/channel.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct spark_rooms spark_rooms;

spark_rooms *spark_rooms_new(struct lws_context *ctx, spark_pg *db, const spark_config *cfg);
void spark_rooms_free(spark_rooms *rooms);

/* The db connection is up: register the instance, start heartbeats. */
void spark_rooms_db_up(spark_rooms *rooms);

/* Notifications on channel "spark" and the bus's resync. */
void spark_rooms_on_notify(spark_rooms *rooms, const char *payload);
void spark_rooms_on_resync(spark_rooms *rooms, bool reconnected);

int spark_rooms_join(spark_rooms *rooms, spark_conn *c, const char *room, long long since);
int spark_rooms_leave(spark_rooms *rooms, spark_conn *c, const char *room);
int spark_rooms_track(spark_rooms *rooms, spark_conn *c, const char *room, const char *meta_json);
int spark_rooms_post(spark_rooms *rooms, spark_conn *from, const char *room, const char *kind,
                     const char *json, unsigned flags);

/* Called with the serial of the local connection whose message could not
 * be stored (the database refused it, timed out, or was not there), so
 * that its sender hears of it. */
typedef void (*spark_rooms_post_failed_fn)(void *ud, uint64_t serial);
void spark_rooms_on_post_failed(spark_rooms *rooms, spark_rooms_post_failed_fn fn, void *ud);

/* The connection is gone: drop its memberships and presences. */
void spark_rooms_conn_closed(spark_rooms *rooms, spark_conn *c);

/* A clean stop: remove this instance and its presences now. */
void spark_rooms_stop(spark_rooms *rooms);

/* The db connection is about to be freed: query nothing from now on. */
void spark_rooms_detach(spark_rooms *rooms);

#endif
