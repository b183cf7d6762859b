/*
 * component_internal.h - how the server drives live components: the
 * instance's database connection and HTTP routes go in, notifications and
 * the bus's resync come in, and a stop drains it.
 */
#ifndef SPARK_COMPONENT_INTERNAL_H
#define SPARK_COMPONENT_INTERNAL_H

#include "config.h"
#include "pg.h"
#include "rooms.h"

#include <libwebsockets.h>
#include <stdbool.h>

typedef struct spark_components spark_components;

/* Serves the /spark endpoint (a channel, registered for every process)
 * with this server's database connection and rooms. */
spark_components *spark_components_new(struct lws_context *ctx, spark_pg *db, spark_rooms *rooms,
                                       const spark_config *cfg);
void spark_components_free(spark_components *components);

/* The db connection is up (again). */
void spark_components_db_up(spark_components *components);

/* A notification on channel "spark" ("c|<version>|<id>" concerns us). */
void spark_components_on_notify(spark_components *components, const char *payload);

/* The bus listens again; after a reconnect every served component is
 * checked against its stored version. */
void spark_components_on_resync(spark_components *components, bool reconnected);

/* The db connection is about to be freed: query nothing from now on. */
void spark_components_detach(spark_components *components);

/* Component instances in the cache (at most SPARK_MAX_COMPONENTS, unless
 * more than that are being viewed). */
size_t spark_components_cached(const spark_components *components);

/* Called with an instance's id when a page waiting for it may be served
 * now: its state (and, for a room component, its room) arrived, or could
 * not be read. One callback per server (the pages module's). */
typedef void (*spark_components_ready_fn)(void *ud, const char *id);
void spark_components_on_ready(spark_components *components, spark_components_ready_fn fn,
                               void *ud);

/* Renders component `id` as a page shows it to this user (initial view
 * state). `props` (JSON object text, or NULL) is the initial shared state
 * of a component never written, over its type's: it is stored as the
 * component's first version (event "mount"), so that every instance shows
 * the same; a stored state is never overwritten. Returns 1 with the HTML
 * (malloc'd) and its version; 0 while the state is being loaded or the
 * props stored (the ready callback tells when to ask again); -1 when it
 * cannot be served. */
int spark_components_page(spark_components *components, const char *id, const char *props,
                          const char *viewer_id, const char *viewer_name, char **html,
                          long long *version);

#endif
