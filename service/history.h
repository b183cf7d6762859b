/*
 * history.h - one server's history pages (<spark/history.h>): the routes
 * of the enabled component types on its HTTP side, answered from its
 * database connection.
 */
#ifndef SPARK_HISTORY_INTERNAL_H
#define SPARK_HISTORY_INTERNAL_H

#include "http.h"
#include "pg.h"

#include <spark/history.h>

typedef struct spark_history spark_history;

/* Routes the history pages on `http` (when any type is enabled), querying
 * `db` and recording `instance` on reverts; all three must outlive the
 * result. Returns NULL, logged, when an enabled type is not a registered
 * component or on allocation failure. */
spark_history *spark_history_new(spark_http *http, spark_pg *db, const char *instance);

/* Answers (503) every request still waiting for the database, and frees.
 * Call after the db connection is freed (so no answer can arrive) and
 * before the lws context goes. Takes NULL. */
void spark_history_free(spark_history *history);

#endif
