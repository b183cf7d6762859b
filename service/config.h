/*
 * config.h - sparkd's configuration: environment variables, overridden by
 * command-line flags, validated up front.
 *
 * Loading never exits: it returns an error line that names the variable (or
 * flag) at fault, so the caller prints it and exits 2, and tests can check
 * every rule without forking.
 */
#ifndef SPARK_CONFIG_H
#define SPARK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    SPARK_CMD_SERVE,
    SPARK_CMD_MIGRATE,
} spark_command;

typedef struct spark_config {
    char *database_url;      /* libpq conninfo or URI; required */
    char *host;              /* interface to bind; NULL means all */
    int port;                /* 1..65535, default 8080 */
    char *instance;          /* id in logs, metrics, presence */
    char *web_root;          /* static files: the app's, over base_web_root */
    char *base_web_root;     /* the runtime's own (js/spark.js...); NULL: none found */
    char *migrations_dir;    /* numbered, forward-only schema changes */
    char *sql_dir;           /* views and functions, re-applied */
    int log_level;           /* spark_log_level */
    bool auth;               /* tokens required (SPARK_AUTH=on, the default) */
    char *signing_key;       /* issues tokens; optional */
    char *verify_keys;       /* verifies tokens; required by serve unless auth is off */
    char *notify_key;        /* MACs ephemeral NOTIFYs; optional, see rooms.h */
    char *allowed_origins;   /* Origin allow-list for cookie auth */
    char *trusted_proxies;   /* peers whose Forwarded/X-Forwarded-* count; NULL: none */
    bool demo_login;         /* /login issues session cookies */
    int shutdown_timeout_ms; /* bound on a graceful stop */
    bool epoll;              /* the loop waits on epoll (poll_epoll.c); on by default */

    /* WebSocket limits; every one is counted in /metrics when it bites. */
    int max_message_bytes;   /* largest frame in, largest broadcast payload */
    int max_queue_bytes;     /* unsent bytes per connection before 1008 */
    int rate_limit;          /* messages per second per connection; 0 = none */
    int max_connections;     /* WebSocket connections per instance */
    int room_history;        /* messages kept per room; 0 = no bound */
    int room_history_age;    /* seconds a room message is kept; 0 = no bound */
    int crowded_room;        /* present connections a room may have before
                                SPARK_UNLESS_CROWDED posts are skipped; 0 = none */
    int presence_timeout_ms; /* a silent instance's presences expire after */
    int token_grace_ms;      /* an expired token's connection lives this long */

    /* statement_timeout, lock_timeout and idle_in_transaction_session_timeout
     * of the database sessions, and how long a query may be outstanding
     * before /healthz calls the database stalled. 1..3600. */
    int db_timeout_s;
    int max_state_bytes; /* a component's shared state, as JSON */
    int max_components;  /* instances cached; viewed ones are never evicted */
} spark_config;

/* Looks up an environment variable; returns NULL when unset. */
typedef const char *(*spark_env_fn)(const char *name);

/* Fills `cfg` from `env` (getenv when NULL) and then from argv[0..argc),
 * the flags that follow the command. Returns 0, or -1 with one line
 * describing the first bad value in `err`. On success the caller owns
 * cfg's strings and releases them with spark_config_free(). */
int spark_config_load(spark_config *cfg, spark_command cmd, int argc, char **argv, spark_env_fn env,
                      char *err, size_t errlen);

void spark_config_free(spark_config *cfg);

/* Prints every setting (flag, variable, meaning), one per line, for --help. */
void spark_config_usage(FILE *out);

#endif
