/*
 * component.c - live components: in progress.
 */
#include "component_internal.h"

#include <stdlib.h>

struct spark_components {
    int unused;
};

spark_components *spark_components_new(struct lws_context *ctx, struct lws_vhost *vhost,
                                       spark_pg *db, spark_http *http, const spark_config *cfg) {
    (void)ctx, (void)vhost, (void)db, (void)http, (void)cfg;
    return calloc(1, sizeof(spark_components));
}

void spark_components_free(spark_components *components) { free(components); }
void spark_components_db_up(spark_components *components) { (void)components; }

void spark_components_on_notify(spark_components *components, const char *payload) {
    (void)components, (void)payload;
}

void spark_components_on_resync(spark_components *components, bool reconnected) {
    (void)components, (void)reconnected;
}

void spark_components_detach(spark_components *components) { (void)components; }
