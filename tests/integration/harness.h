/*
 * harness.h - what the integration suites share: real sparkd processes,
 * fresh databases on the PostgreSQL that DATABASE_URL names, HTTP over
 * plain sockets, and waiting on conditions with a deadline (never a bare
 * sleep).
 */
#ifndef SPARK_TEST_HARNESS_H
#define SPARK_TEST_HARNESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The URL of the test PostgreSQL, as a superuser: DATABASE_URL (TCP with a
 * password), or by SPARK_TEST_DB: "tls" takes SPARK_TEST_URL_TLS
 * (sslmode=verify-full), "socket" SPARK_TEST_URL_SOCKET (the unix socket).
 * Every database the harness creates, and every sparkd it starts on one,
 * uses the same server address and options. Aborts the test if unset. */
const char *it_admin_url(void);

/* Creates an empty database and returns a conninfo string for it (static
 * storage, valid until the next call). The name is written to `name`. */
const char *it_create_database(char name[64]);

/* Creates a database and migrates it with sparkd. */
const char *it_create_migrated_database(char name[64]);

/* Connects synchronously (the tests may block); aborts on failure. */
PGconn *it_connect(const char *conninfo);

/* Runs `sql` and aborts the test unless it succeeds; returns the result. */
PGresult *it_exec(PGconn *pg, const char *sql);

/* The first column of the first row of `sql`, copied into `out`. */
const char *it_query_value(PGconn *pg, const char *sql, char *out, size_t cap);

/* Runs a program to completion, capturing stdout and stderr (malloc'd,
 * may be NULL). `env` holds extra NAME=VALUE entries. Returns the exit
 * status, or -1 if it did not exit normally. */
int it_run(const char *const argv[], const char *const env[], char **out, char **err);

/* Runs sparkd with `args` and DATABASE_URL=`db` (NULL to leave it out). */
int it_sparkd(const char *db, const char *const args[], char **out, char **err);

/* Starts `sparkd serve` on `port` as `instance`, its log in `log_path`.
 * The child dies with the test process. */
pid_t it_start_sparkd(const char *db, int port, const char *instance, const char *log_path);

/* Two instances, "a" and "b", on one fresh migrated database. */
typedef struct {
    const char *db;
    int port[2];
    pid_t pid[2]; /* 0 once stopped or killed by the test */
    char log[2][128];
} it_pair;

/* Starts both and waits until both are healthy. `tag` names the logs. */
void it_pair_start(it_pair *pair, const char *tag);

/* Stops each instance still running, asserting a clean exit, and removes
 * the logs (a failed assertion keeps them for reading). */
void it_pair_stop(it_pair *pair);

/* One instance, "one", on a fresh migrated database. */
typedef struct {
    const char *db;
    int port;
    pid_t pid;
    char log[128];
} it_one;

/* Starts it with the settings `env` ({"NAME", "value", ..., NULL}; may be
 * NULL) in its environment, and waits until it is healthy. */
void it_one_start(it_one *one, const char *tag, const char *const env[]);

/* Stops it, asserting a clean exit, and removes its log. */
void it_one_stop(it_one *one);

/* Sends SIGTERM and waits up to `timeout_ms`. Returns the exit status, or
 * -1 if it did not exit in time (it is then killed). */
int it_stop_sparkd(pid_t pid, int timeout_ms);

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
int it_free_port(void);

/* GET http://127.0.0.1:port/path. Returns the status code (or -1 when the
 * server cannot be reached) and the body in `body` (NUL-terminated). */
int it_http_get(int port, const char *path, char *body, size_t cap);

/* Sends a raw HTTP request; returns the status code, as it_http_get(). */
int it_http_request(int port, const char *request, char *body, size_t cap);

/* The same, returning the whole response, headers included. */
int it_http_exchange(int port, const char *request, char *response, size_t cap);

/* Polls GET path until it answers `status`. Returns true if it did within
 * `timeout_ms`. */
bool it_wait_status(int port, const char *path, int status, int timeout_ms);

/* The value of a Prometheus metric from /metrics, or -1. */
double it_metric(int port, const char *name);

/* Polls a metric until it is at least `at_least`. */
bool it_wait_metric(int port, const char *name, double at_least, int timeout_ms);

/* A token signed with `signing_key` ("KID:SEED") for `sub` (also its
 * name), valid from `iat` for `ttl` seconds, granting `scope` (NULL:
 * none). malloc'd; aborts the test if it cannot be made. */
char *it_mint(const char *signing_key, const char *sub, int64_t iat, int64_t ttl,
              const char *scope);

/* Stops or starts the test PostgreSQL server (SPARK_TEST_PG_CTL). */
int it_pg_ctl(const char *action);

/* Runs a suite (each test forked, as Check does by default) and returns
 * the process exit status: 0 when every test passed. Frees the suite. */
struct Suite;
int it_run_suite(struct Suite *suite);

/* Milliseconds on a monotonic clock. */
long long it_now_ms(void);

/* A suite that brings its own components serves them itself: its main
 * starts with `if (it_serve(argc, argv)) return spark_main(argc, argv);`,
 * and from then on every server the harness starts is this program (with
 * its components, without the demo apps) instead of sparkd. */
bool it_serve(int argc, char **argv);

/* Checked shorthands for a test's WebSocket (wsclient.h): each fails the
 * test, saying what it waited for, instead of returning an error. */
typedef struct it_ws it_ws;
#define IT_EXPECT_MS 10000
/* Sends a text message. */
void it_send(it_ws *ws, const char *text);
/* The first message within IT_EXPECT_MS that contains `needle` (earlier
 * ones are dropped); the caller frees it. */
char *it_expect(it_ws *ws, const char *needle);
void it_expect_free(it_ws *ws, const char *needle);
/* An upgrade that must succeed; `headers` as for it_ws_open. */
it_ws *it_ws_open_ok(int port, const char *target, const char *headers);

/* Where this test build keeps its files. */
extern const char it_sparkd_path[];
extern const char it_source_dir[];

#endif
