/*
 * store.c - live components' statements, and turning their results into
 * plain values so that the runtime never handles a PGresult.
 *
 * The write goes through spark.apply_batch (sql/40_components.sql): the
 * pending events of many components in one statement, so one transaction,
 * one commit and one round trip, and the check of each expected version
 * happens under that row's lock.
 */
#include "store.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A call in flight. They are listed so that those a closing connection
 * drops without an answer can still be freed (spark_store_free). */
typedef struct call {
    struct call *prev, *next;
    spark_store *store;
    void (*fn)(void);
    void *ud;
} call;

struct spark_store {
    spark_pg *db; /* NULL once detached */
    call *calls;
};

spark_store *spark_store_new(spark_pg *db) {
    spark_store *store = calloc(1, sizeof *store);
    if (store) store->db = db;
    return store;
}

void spark_store_detach(spark_store *store) { store->db = NULL; }

static call *new_call(spark_store *store, void (*fn)(void), void *ud) {
    call *c = calloc(1, sizeof *c);
    if (c) {
        c->store = store;
        c->fn = fn;
        c->ud = ud;
    }
    return c;
}

static void end_call(call *c) {
    if (c->prev)
        c->prev->next = c->next;
    else if (c->store->calls == c)
        c->store->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

/* Returns 0, -1 (no connection, or out of memory) or SPARK_PG_BUSY. */
static int run(spark_store *store, const char *sql, int n, const char *const *params,
               spark_pg_result_fn done, call *c) {
    int rc = c && store->db ? spark_pg_query(store->db, sql, n, params, done, c) : -1;
    if (rc == 0) {
        c->next = store->calls;
        if (store->calls) store->calls->prev = c;
        store->calls = c;
        return 0;
    }
    free(c);
    return rc;
}

void spark_store_free(spark_store *store) {
    if (!store) return;
    while (store->calls)
        end_call(store->calls);
    free(store);
}

static long long num(const PGresult *res, int row, int col) {
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *text_or_null(const PGresult *res, int row, int col) {
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* ---- states ------------------------------------------------------------- */

static void on_state(void *ud, const PGresult *res, const char *error) {
    call *c = ud;
    spark_store_state_fn cb = (spark_store_state_fn)c->fn;
    if (error)
        cb(c->ud, 0, NULL, error);
    else if (PQntuples(res) == 0)
        cb(c->ud, 0, NULL, NULL);
    else
        cb(c->ud, num(res, 0, 0), text_or_null(res, 0, 1), NULL);
    end_call(c);
}

int spark_store_load(spark_store *store, const char *id, spark_store_state_fn cb, void *ud) {
    const char *params[] = {id};
    return run(store, "SELECT version, state::text FROM spark.components WHERE id = $1", 1, params,
               on_state, new_call(store, (void (*)(void))cb, ud));
}

int spark_store_state_at(spark_store *store, const char *id, long long version,
                         spark_store_state_fn cb, void *ud) {
    char v[24];
    snprintf(v, sizeof v, "%lld", version);
    const char *params[] = {id, v};
    return run(store, "SELECT $2::bigint, spark.state_at($1, $2::bigint)::text", 2, params,
               on_state, new_call(store, (void (*)(void))cb, ud));
}

/* ---- writes --------------------------------------------------------------- */

static void on_batch_applied(void *ud, const PGresult *res, const char *error) {
    call *c = ud;
    spark_store_batch_fn cb = (spark_store_batch_fn)c->fn;
    int n = error ? 0 : PQntuples(res);
    spark_store_result *results = n ? calloc((size_t)n, sizeof *results) : NULL;
    if (n && !results) error = "out of memory";
    for (int i = 0; !error && i < n; i++)
        results[i] = (spark_store_result){SPARK_STORE_ERROR, 0, NULL, "no result", NULL};
    for (int row = 0; !error && row < n; row++) {
        long long i = num(res, row, 0);
        if (i < 1 || i > n) {
            error = "apply_batch answered out of order";
            break;
        }
        spark_store_result *r = &results[i - 1];
        r->error = text_or_null(res, row, 4);
        r->dups = text_or_null(res, row, 5);
        r->outcome = r->error                                    ? SPARK_STORE_ERROR
                     : strcmp(PQgetvalue(res, row, 1), "t") == 0 ? SPARK_STORE_APPLIED
                     : r->dups                                   ? SPARK_STORE_DUPLICATE
                                                                 : SPARK_STORE_CONFLICT;
        r->version = num(res, row, 2);
        r->state = text_or_null(res, row, 3);
    }
    cb(c->ud, error ? 0 : n, error ? NULL : results, error,
       error && !res && c->store->db && spark_pg_failed_unknown(c->store->db));
    free(results);
    end_call(c);
}

int spark_store_apply_batch(spark_store *store, const char *batch_json, const char *instance,
                            spark_store_batch_fn cb, void *ud) {
    const char *params[] = {batch_json, instance};
    return run(store,
               "SELECT i, applied, version, state::text, error, dups::text"
               " FROM spark.apply_batch($1::jsonb, $2)",
               2, params, on_batch_applied, new_call(store, (void (*)(void))cb, ud));
}
