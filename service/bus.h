/*
 * bus.h - the instance's LISTEN connection: PostgreSQL notifications in,
 * handed to the modules that subscribed to their channel.
 *
 * One dedicated connection per instance LISTENs on every subscribed channel.
 * When it reconnects (PostgreSQL restarted, network blip) it LISTENs again
 * and then calls every subscriber's resync: notifications sent while it was
 * away are gone for good, so subscribers reload what they serve from the
 * tables. A lost notification may delay an update; it never loses one.
 *
 * Publishing is not done here: writers notify through SQL (pg_notify or the
 * schema's triggers) inside their own transaction, so a notification goes
 * out exactly when, and only if, the data it announces is committed.
 */
#ifndef SPARK_BUS_H
#define SPARK_BUS_H

#include <libwebsockets.h>
#include <stdbool.h>

typedef struct spark_bus spark_bus;

/* A notification on a subscribed channel. Both strings are borrowed. */
typedef void (*spark_bus_notify_fn)(void *ud, const char *channel, const char *payload);

/* The bus is listening (again). `reconnected` is false the first time. */
typedef void (*spark_bus_resync_fn)(void *ud, bool reconnected);

spark_bus *spark_bus_new(struct lws_context *context, struct lws_vhost *vhost,
                         const char *conninfo);
/* The session timeouts of the LISTEN connection (spark_pg_set_timeout). */
int spark_bus_set_timeout(spark_bus *bus, int seconds);
void spark_bus_start(spark_bus *bus);

/* Subscribes to `channel` (1-63 of a-z 0-9 _, starting with a letter or _).
 * Either callback may be NULL. Returns 0, or -1 on a bad name or no memory. */
int spark_bus_subscribe(spark_bus *bus, const char *channel, spark_bus_notify_fn on_notify,
                        spark_bus_resync_fn on_resync, void *ud);

/* True while LISTEN is in force on every subscribed channel. */
bool spark_bus_is_listening(const spark_bus *bus);

/* "listening", "subscribing", "connecting" or "down". */
const char *spark_bus_state(const spark_bus *bus);

/* The subscribed channels, for health reports. */
size_t spark_bus_channel_count(const spark_bus *bus);
const char *spark_bus_channel(const spark_bus *bus, size_t i);

void spark_bus_free(spark_bus *bus);

#endif
