/*
 * pg.h - one asynchronous PostgreSQL connection inside the event loop.
 *
 * A spark_pg connects without blocking (PQconnectStart/Poll), watches its
 * socket through libwebsockets, runs queued queries one after another, hands
 * notifications to its owner, pings when idle to notice a dead link, and
 * reconnects with exponential backoff and jitter whenever the link is lost.
 *
 * Ownership: the creator owns the spark_pg and frees it with spark_pg_free()
 * before destroying the lws context. Strings passed in are copied.
 *
 * Any libpq conninfo or URI works: unix sockets, TCP over IPv4 and IPv6,
 * host lists, passwords (in the conninfo, PGPASSWORD, PGPASSFILE) and TLS.
 * Host names are resolved on a thread (pg_target.h), never in the loop.
 */
#ifndef SPARK_PG_H
#define SPARK_PG_H

#include <libpq-fe.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct spark_pg spark_pg;

/* A query's outcome: on success `res` is its last result (borrowed: freed
 * when the callback returns) and `error` is NULL; on failure `res` is NULL
 * and `error` says why (PostgreSQL's message, or the lost connection). */
typedef void (*spark_pg_result_fn)(void *ud, const PGresult *res, const char *error);

typedef struct {
    void (*on_up)(void *ud);                    /* connected: queries may be sent */
    void (*on_down)(void *ud, const char *why); /* lost: queries failed, retry scheduled */
    void (*on_notify)(void *ud, const char *channel, const char *payload);
} spark_pg_events;

typedef enum { SPARK_PG_DOWN, SPARK_PG_CONNECTING, SPARK_PG_UP } spark_pg_state;

/* The raw-descriptor protocol that watches PostgreSQL sockets; it must be in
 * the protocol list of the vhost given to spark_pg_new(). */
extern const struct lws_protocols spark_pg_protocol;

/* `name` labels the connection in logs ("db", "bus"). `events` may be NULL. */
spark_pg *spark_pg_new(struct lws_context *context, struct lws_vhost *vhost, const char *conninfo,
                       const char *name, const spark_pg_events *events, void *ud);

/* Lets up to `max_in_flight` queries be sent before the first one's answer
 * (libpq pipeline mode; 0 or 1 turns it off). Order, transactions (each
 * query is its own unless it runs BEGIN) and callbacks do not change.
 * Call before spark_pg_start(); not for a connection that LISTENs. */
void spark_pg_set_pipeline(spark_pg *pg, unsigned max_in_flight);

/* Sets statement_timeout, lock_timeout and idle_in_transaction_session_timeout
 * of the sessions to `seconds` (options the conninfo sets itself win), and
 * makes spark_pg_stall() report queries outstanding longer than that. Call
 * before spark_pg_start(). Returns 0, or -1 when out of memory. */
int spark_pg_set_timeout(spark_pg *pg, int seconds);

typedef enum {
    SPARK_PG_FLOWING,     /* answers come back (or no timeout is set) */
    SPARK_PG_OUTSTANDING, /* a query was sent longer than the timeout ago, unanswered */
    SPARK_PG_TIMED_OUT,   /* a query failed on a timeout less than the timeout ago */
} spark_pg_stall_kind;

/* Whether the database is stalled for this connection (a lock held by
 * someone else, a server that stopped answering), and since when: `age_us`
 * is how long the query has been outstanding, or how long ago one timed out. */
spark_pg_stall_kind spark_pg_stall(spark_pg *pg, lws_usec_t *age_us);

/* Begins connecting; on failure keeps retrying until spark_pg_free(). */
void spark_pg_start(spark_pg *pg);

spark_pg_state spark_pg_get_state(const spark_pg *pg);
const char *spark_pg_state_name(spark_pg_state state);

/* Queries queued or in flight, not counting internal pings. */
size_t spark_pg_pending(const spark_pg *pg);

/* Of those, the ones sent and not yet answered (at most the pipeline depth). */
size_t spark_pg_in_flight(const spark_pg *pg);

/* What spark_pg_query() returns when the connection is up but too many
 * queries are waiting already: the caller should answer "busy". */
#define SPARK_PG_BUSY (-2)

/* Queues one statement with text parameters ($1...). Returns 0; -1 when the
 * connection is not up, SPARK_PG_BUSY when its queue is full (the callback
 * is then never called). */
int spark_pg_query(spark_pg *pg, const char *sql, int nparams, const char *const *params,
                   spark_pg_result_fn cb, void *ud);

/* The same, but ahead of every query not yet sent: for what must not wait
 * behind a backlog, like an instance's heartbeat. */
int spark_pg_query_first(spark_pg *pg, const char *sql, int nparams, const char *const *params,
                         spark_pg_result_fn cb, void *ud);

/* Inside a result callback with an error: whether the query had been sent
 * when the connection was lost, so that it may or may not have committed.
 * Any other failure (refused, timed out, never sent) changed nothing. */
bool spark_pg_failed_unknown(const spark_pg *pg);

/* Closes the connection. Queued queries are dropped without callbacks. */
void spark_pg_free(spark_pg *pg);

#endif
