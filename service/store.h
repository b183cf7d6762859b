/*
 * store.h - the PostgreSQL side of live components: load a state, read an
 * old version, store a batch of events.
 *
 * Every call queues one statement on the instance's "db" connection and
 * answers through a callback from the event loop; calls answer in the
 * order they were made (the connection pipelines them, but in order, each in
 * its own transaction), which the runtime relies on: a load queued after a
 * write sees that write.
 * A call returns -1 when the connection is not up; the callback then never
 * runs.
 */
#ifndef SPARK_STORE_H
#define SPARK_STORE_H

#include "pg.h"

#include <stdbool.h>

/* The statements of one server's components, on its db connection. */
typedef struct spark_store spark_store;

spark_store *spark_store_new(spark_pg *db);
/* The connection is about to be freed: every call fails from now on. */
void spark_store_detach(spark_store *store);
/* Frees the store and the bookkeeping of calls that will never be answered
 * (their connection was freed with them queued). */
void spark_store_free(spark_store *store);

/* A component's stored state: `state` is JSON text, or NULL when the
 * component does not exist (or, for a version, has no such version).
 * `error` is non-NULL when the query failed. Strings are borrowed. */
typedef void (*spark_store_state_fn)(void *ud, long long version, const char *state,
                                     const char *error);

int spark_store_load(spark_store *store, const char *id, spark_store_state_fn cb, void *ud);
/* Answers with `version` as asked, and its state or NULL. */
int spark_store_state_at(spark_store *store, const char *id, long long version,
                         spark_store_state_fn cb, void *ud);

typedef enum {
    SPARK_STORE_APPLIED,
    SPARK_STORE_CONFLICT,
    SPARK_STORE_ERROR,     /* nothing was written */
    SPARK_STORE_BUSY,      /* not sent: the connection's queue is full */
    SPARK_STORE_UNKNOWN,   /* sent, and the connection was lost before the answer */
    SPARK_STORE_DUPLICATE, /* events whose ids were applied before: nothing written */
} spark_store_outcome;

/* The writes of several components in one statement and one commit. Each
 * element of `batch_json` is {"id","v":expected,"events":[...]}, where
 * events are [{"e":name,"d":data,"a":actor,"s":state,"i":id}] ("i" when the
 * client gave one), each a change on top of the one before, the first on
 * top of `v` (0: absent). DUPLICATE, like CONFLICT, writes nothing and
 * returns the current version and state, with the ids already applied. The callback gets
 * one result per element, in the order of `batch_json`: APPLIED with the
 * last version written; CONFLICT with the current version and state (NULL:
 * absent) and nothing written; ERROR with a reason. `error` (and n = 0)
 * when the statement as a whole failed; then `unknown` says whether the
 * connection was lost after it was sent, so that it may have committed.
 * Returns 0, -1 when the connection is not up, or SPARK_PG_BUSY. */
typedef struct {
    spark_store_outcome outcome;
    long long version;
    const char *state, *error; /* borrowed, as above */
    const char *dups;          /* DUPLICATE: {"<event id>": version it produced, ...} */
} spark_store_result;

typedef void (*spark_store_batch_fn)(void *ud, int n, const spark_store_result *results,
                                     const char *error, bool unknown);

int spark_store_apply_batch(spark_store *store, const char *batch_json, const char *instance,
                            spark_store_batch_fn cb, void *ud);

#endif
