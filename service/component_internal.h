/*
 * component_internal.h - how the server drives live components: the
 * instance's database connection and HTTP routes go in, notifications and
 * the bus's resync come in, and a stop drains it.
 */
#ifndef SPARK_COMPONENT_INTERNAL_H
#define SPARK_COMPONENT_INTERNAL_H

#include "config.h"
#include "http.h"
#include "pg.h"

#include <libwebsockets.h>
#include <stdbool.h>

typedef struct spark_components spark_components;

/* Registers the /spark endpoint and the component pages on `http`. */
spark_components *spark_components_new(struct lws_context *ctx, struct lws_vhost *vhost,
                                       spark_pg *db, spark_http *http, const spark_config *cfg);
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

#endif
