/*
 * migrate.h - `sparkd migrate`: brings a database's schema up to date.
 *
 * Files in the migrations directory, named NNNN_description.sql, are applied
 * once each, in numeric order, each in its own transaction together with
 * its row in spark.schema_migrations, so a failing file leaves nothing
 * behind. Applied files are checksummed: editing one afterwards is an error
 * (migrations are forward-only: add a new file instead). Then every file of
 * the SQL directory (views, functions) is re-applied, each in a transaction;
 * they must be idempotent.
 *
 * This runs as a command before serving, never inside the event loop, so it
 * uses libpq synchronously.
 */
#ifndef SPARK_MIGRATE_H
#define SPARK_MIGRATE_H

#include "config.h"

/* Returns the exit status: 0 when the schema is current, 1 on failure (a
 * line on stderr names the file and PostgreSQL's error). */
int spark_migrate(const spark_config *cfg);

#endif
