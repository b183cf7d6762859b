/*
 * pg_target.h - where a PostgreSQL connection goes, found without blocking.
 *
 * libpq resolves host names inside PQconnectStart, with a blocking
 * getaddrinfo(), which would stop every socket of the instance for as long
 * as DNS takes. A lookup therefore reads the conninfo (and PGHOST, PGPORT,
 * PGHOSTADDR, PGCONNECT_TIMEOUT, as libpq would), resolves the names on a
 * thread of its own, and yields targets: one (host, hostaddr, port) each,
 * one per address, in the order libpq itself would try them. The connection
 * then tries them one at a time, passing the address as `hostaddr` so that
 * libpq never resolves, and the name as `host` so that TLS verify-full and
 * the password file still see it. Unix socket paths and IP literals need no
 * lookup and are ready at once; so is a conninfo that gives `hostaddr`
 * itself, which is passed through whole.
 *
 * Ownership: the caller owns the lookup and frees it with
 * spark_pg_lookup_free(), which may be called while the thread still runs.
 */
#ifndef SPARK_PG_TARGET_H
#define SPARK_PG_TARGET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *host;     /* the name or path as written, or NULL: libpq's own */
    const char *hostaddr; /* a numeric address, or NULL */
    const char *port;     /* or NULL: libpq's own */
} spark_pg_target;

typedef struct spark_pg_lookup spark_pg_lookup;

/* Starts finding the targets of `conninfo`. NULL only when out of memory. */
spark_pg_lookup *spark_pg_lookup_start(const char *conninfo);

/* Whether the lookup has finished; then the functions below may be used. */
bool spark_pg_lookup_done(const spark_pg_lookup *lookup);

/* NULL, or why there is nowhere to connect (a bad conninfo, no host name
 * that resolved). Owned by the lookup. */
const char *spark_pg_lookup_error(const spark_pg_lookup *lookup);

size_t spark_pg_lookup_count(const spark_pg_lookup *lookup);
const spark_pg_target *spark_pg_lookup_target(const spark_pg_lookup *lookup, size_t i);

/* How long one target may take to connect, in seconds: connect_timeout as
 * libpq reads it (at least 2), or 0 where none is set. */
int spark_pg_lookup_timeout(const spark_pg_lookup *lookup);

void spark_pg_lookup_free(spark_pg_lookup *lookup);

#endif
