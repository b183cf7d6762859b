/*
 * pg.c - an asynchronous PostgreSQL connection driven by the lws event loop.
 *
 * libpq runs non-blocking; lws watches a dup() of libpq's socket as a raw
 * file descriptor (lws closes the descriptors it adopts, and libpq must keep
 * its own). PQconnectPoll may switch sockets while it tries addresses, so the
 * watched descriptor is compared with libpq's by identity (device, inode)
 * after every poll: a new socket can reuse the old one's number.
 *
 * Where to connect comes from pg_target.c: host names are resolved off the
 * loop and each address is tried in turn as libpq's `hostaddr`, with the
 * per-target deadline of connect_timeout (libpq's PQconnectPoll keeps none).
 *
 * Queries run in FIFO order, each in its own implicit transaction. By
 * default one is in flight at a time; with spark_pg_set_pipeline() up to N
 * are sent ahead in libpq's pipeline mode, each followed by its own sync so
 * that one failing statement never aborts the next. Order and callbacks are
 * the same either way; pipelining only removes the round trip between
 * queries, which is what bounds an instance that joins thousands of members
 * or writes hundreds of events per second. A lost connection fails
 * everything queued, since a statement in flight may or may not have
 * committed and only its caller knows whether retrying is safe.
 */
#include "pg.h"

#include "log.h"
#include "metrics.h"
#include "poll_epoll.h"
#include "pg_target.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_S 10 /* per target, where connect_timeout is not set */
#define LOOKUP_POLL_US    (2 * LWS_US_PER_MS)
#define PING_INTERVAL_US  (5 * LWS_US_PER_SEC)
#define PING_TIMEOUT_US   (10 * LWS_US_PER_SEC)
#define BACKOFF_FIRST_MS  100
#define BACKOFF_MAX_MS    5000
#define MAX_QUEUED        10000 /* queries waiting per connection; more are refused */

typedef struct query {
    struct query *next;
    spark_pg_result_fn cb;
    void *ud;
    bool is_ping;
    bool stalled;       /* counted as a stall already */
    lws_usec_t sent_at; /* 0 until sent */
    int nparams;
    char *sql;
    char **params;
} query;

struct spark_pg {
    struct lws_context *context;
    struct lws_vhost *vhost;
    char *conninfo;
    char name[16];
    spark_pg_events events;
    void *ud;

    spark_pg_state state;
    PGconn *conn;
    PostgresPollingStatusType poll; /* what PQconnectPoll last asked for */
    struct lws *wsi;                /* watches our dup of PQsocket() */
    dev_t sock_dev;
    ino_t sock_ino;

    query *head, *tail;  /* the first `in_flight` of them are sent */
    query *unsent;       /* first query not yet sent, or NULL */
    unsigned in_flight;  /* sent, their outcome not yet delivered */
    unsigned max_flight; /* 1: one at a time; more: pipeline mode */
    PGresult *result;    /* last result of the query in flight */
    char *error;         /* its first error */
    size_t pending;      /* user queries queued or in flight */
    lws_usec_t ping_sent_at;

    int timeout_s;              /* SPARK_DB_TIMEOUT: the session's timeouts, and a stall */
    char *options;              /* libpq "options" that set them, then the user's */
    lws_usec_t last_timeout_at; /* when a query last failed on one of them */
    bool failed_unknown;        /* in a failure callback: the query had been sent */

    spark_pg_lookup *lookup; /* where to connect, while connecting */
    size_t target;           /* the one being tried */
    char target_error[512];  /* why the last one failed */

    unsigned attempt; /* failed attempts since the last success */
    bool ever_up;
    lws_sorted_usec_list_t retry_timer, connect_timer, ping_timer, lookup_timer;
    lws_sorted_usec_list_t writable_timer; /* asks lws for POLLOUT, see want_writable() */
};

static void connection_lost(spark_pg *pg, const char *why);
static void begin_connect(spark_pg *pg);
static void connect_target(spark_pg *pg);
static void lookup_due(lws_sorted_usec_list_t *sul);

static void schedule(spark_pg *pg, lws_sorted_usec_list_t *timer, sul_cb_t cb, lws_usec_t us) {
    lws_sul_schedule(pg->context, 0, timer, cb, us);
    if (us == 0) spark_poll_epoll_due_now();
}

static void ask_for_writable(lws_sorted_usec_list_t *sul) {
    spark_pg *pg = lws_container_of(sul, spark_pg, writable_timer);
    if (pg->wsi) lws_callback_on_writable(pg->wsi);
}

/* libpq has bytes it could not write yet (a query larger than the socket
 * buffer, or a connect step that waits for writable again). lws 4.1 drops a
 * writable request made inside a raw file's WRITEABLE callback: no second
 * callback ever comes, the rest of the query is never sent and the server
 * waits for it for ever. So the request is always made from a timer, which
 * runs outside any socket callback, on the loop's next turn. */
static void want_writable(spark_pg *pg) {
    if (lws_dll2_is_detached(&pg->writable_timer.list))
        schedule(pg, &pg->writable_timer, ask_for_writable, 0);
}

/* ---- queries ---------------------------------------------------------- */

static void query_free(query *q) {
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q);
}

static query *query_new(const char *sql, int nparams, const char *const *params) {
    query *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->sql = strdup(sql);
    q->params = nparams ? calloc((size_t)nparams, sizeof *q->params) : NULL;
    if (!q->sql || (nparams && !q->params)) goto oom;
    q->nparams = nparams;
    for (int i = 0; i < nparams; i++)
        if (params[i] && !(q->params[i] = strdup(params[i]))) goto oom;
    return q;
oom:
    query_free(q);
    return NULL;
}

static void enqueue(spark_pg *pg, query *q) {
    if (pg->tail)
        pg->tail->next = q;
    else
        pg->head = q;
    pg->tail = q;
    if (!pg->unsent) pg->unsent = q;
    if (!q->is_ping) pg->pending++;
}

static query *dequeue(spark_pg *pg) {
    query *q = pg->head;
    pg->head = q->next;
    if (!pg->head) pg->tail = NULL;
    if (pg->unsent == q)
        pg->unsent = q->next;
    else if (pg->in_flight)
        pg->in_flight--;
    if (!q->is_ping) pg->pending--;
    return q;
}

static void flush_output(spark_pg *pg) {
    int r = PQflush(pg->conn);
    if (r == 1)
        want_writable(pg);
    else if (r < 0)
        connection_lost(pg, PQerrorMessage(pg->conn));
}

static bool pipelined(const spark_pg *pg) { return pg->max_flight > 1; }

static void send_next(spark_pg *pg) {
    bool sent_any = false;
    while (pg->state == SPARK_PG_UP && pg->unsent && pg->in_flight < pg->max_flight) {
        query *q = pg->unsent;
        if (!PQsendQueryParams(pg->conn, q->sql, q->nparams, NULL, (const char *const *)q->params,
                               NULL, NULL, 0) ||
            (pipelined(pg) && !PQpipelineSync(pg->conn))) {
            connection_lost(pg, PQerrorMessage(pg->conn));
            return;
        }
        pg->unsent = q->next;
        pg->in_flight++;
        q->sent_at = lws_now_usecs();
        if (q->is_ping) pg->ping_sent_at = q->sent_at;
        sent_any = true;
    }
    if (sent_any) flush_output(pg);
}

/* Delivers the outcome of the query at the head, then sends the next. */
static void complete_head(spark_pg *pg) {
    query *q = dequeue(pg);
    PGresult *res = pg->result;
    char *error = pg->error;
    pg->result = NULL;
    pg->error = NULL;
    if (!q->is_ping) {
        spark_metric_add(error ? SPARK_M_DB_QUERY_ERRORS : SPARK_M_DB_QUERIES, 1);
        if (q->cb) q->cb(q->ud, error ? NULL : res, error);
    }
    PQclear(res);
    free(error);
    query_free(q);
    send_next(pg);
}

/* A statement cancelled by statement_timeout, lock_timeout or
 * idle_in_transaction_session_timeout means the database is stalled for
 * us, even though the connection is fine: /healthz says so for a while. */
static void note_timeout(spark_pg *pg, const char *sqlstate) {
    if (!sqlstate || (strcmp(sqlstate, "57014") != 0 && strcmp(sqlstate, "55P03") != 0 &&
                      strcmp(sqlstate, "25P03") != 0))
        return;
    pg->last_timeout_at = lws_now_usecs();
    if (pg->head && !pg->head->stalled) {
        pg->head->stalled = true;
        spark_metric_add(SPARK_M_DB_STALLS, 1);
    }
}

/* A query's results end with a NULL result; in pipeline mode its sync's
 * PGRES_PIPELINE_SYNC follows, and only then is the query complete. */
static void collect_results(spark_pg *pg) {
    while (pg->state == SPARK_PG_UP && pg->in_flight && !PQisBusy(pg->conn)) {
        PGresult *res = PQgetResult(pg->conn);
        if (!res) {
            if (!pipelined(pg)) complete_head(pg);
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            complete_head(pg);
            continue;
        }
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY &&
            !pg->error) {
            pg->error = strdup(st == PGRES_PIPELINE_ABORTED ? "pipeline aborted"
                                                            : PQresultErrorMessage(res));
            note_timeout(pg, PQresultErrorField(res, PG_DIAG_SQLSTATE));
        }
        PQclear(pg->result);
        pg->result = res;
    }
}

static void deliver_notifications(spark_pg *pg) {
    PGnotify *n;
    while (pg->state == SPARK_PG_UP && (n = PQnotifies(pg->conn))) {
        if (pg->events.on_notify) pg->events.on_notify(pg->ud, n->relname, n->extra);
        PQfreemem(n);
    }
}

/* Drops everything queued. With `why`, callers hear of the failure. */
static void drain_queue(spark_pg *pg, const char *why) {
    PQclear(pg->result);
    pg->result = NULL;
    free(pg->error);
    pg->error = NULL;
    while (pg->head) {
        query *q = dequeue(pg);
        if (why && q->cb && !q->is_ping) {
            spark_metric_add(SPARK_M_DB_QUERY_ERRORS, 1);
            pg->failed_unknown = q->sent_at != 0;
            q->cb(q->ud, NULL, why);
            pg->failed_unknown = false;
        }
        query_free(q);
    }
}

/* ---- the watched socket ---------------------------------------------- */

static void unwatch_socket(spark_pg *pg) {
    if (!pg->wsi) return;
    lws_set_opaque_user_data(pg->wsi, NULL);
    lws_set_timeout(pg->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    pg->wsi = NULL;
}

/* Makes sure lws watches libpq's current socket. Returns 0 or -1. */
static int watch_socket(spark_pg *pg) {
    int fd = PQsocket(pg->conn);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return -1;
    if (pg->wsi && st.st_dev == pg->sock_dev && st.st_ino == pg->sock_ino) return 0;
    unwatch_socket(pg);
    lws_sock_file_fd_type u;
    u.filefd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (u.filefd < 0) return -1;
    pg->wsi = lws_adopt_descriptor_vhost(pg->vhost, LWS_ADOPT_RAW_FILE_DESC, u,
                                         spark_pg_protocol.name, NULL);
    if (!pg->wsi) {
        close(u.filefd);
        return -1;
    }
    lws_set_opaque_user_data(pg->wsi, pg);
    pg->sock_dev = st.st_dev;
    pg->sock_ino = st.st_ino;
    return 0;
}

/* ---- connection lifecycle -------------------------------------------- */

static void ping_due(lws_sorted_usec_list_t *sul) {
    spark_pg *pg = lws_container_of(sul, spark_pg, ping_timer);
    if (pg->state != SPARK_PG_UP) return;
    if (pg->head && pg->head->is_ping && pg->in_flight &&
        lws_now_usecs() - pg->ping_sent_at > PING_TIMEOUT_US) {
        connection_lost(pg, "no answer to ping");
        return;
    }
    if (!pg->head) {
        query *q = query_new("SELECT 1", 0, NULL);
        if (q) {
            q->is_ping = true;
            enqueue(pg, q);
            send_next(pg);
        }
    }
    if (pg->state == SPARK_PG_UP) schedule(pg, &pg->ping_timer, ping_due, PING_INTERVAL_US);
}

static void became_up(spark_pg *pg) {
    lws_sul_cancel(&pg->connect_timer);
    const spark_pg_target *t = spark_pg_lookup_target(pg->lookup, pg->target);
    char where[300];
    const char *host = t && t->host ? t->host : PQhost(pg->conn);
    bool named = t && t->hostaddr && strcmp(t->hostaddr, host) != 0;
    snprintf(where, sizeof where, "%s%s%s", host, named ? "@" : "", named ? t->hostaddr : "");
    spark_pg_lookup_free(pg->lookup);
    pg->lookup = NULL;
    if (PQsetnonblocking(pg->conn, 1) != 0) {
        connection_lost(pg, PQerrorMessage(pg->conn));
        return;
    }
    if (pipelined(pg) && !PQenterPipelineMode(pg->conn)) {
        connection_lost(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->state = SPARK_PG_UP;
    if (pg->ever_up) spark_metric_add(SPARK_M_DB_RECONNECTS, 1);
    spark_log(SPARK_LOG_INFO, pg->ever_up ? "pg.reconnected" : "pg.connected", NULL,
              "conn=%s attempts=%u server_version=%d host=%s tls=%s", pg->name, pg->attempt + 1,
              PQserverVersion(pg->conn), where, PQsslInUse(pg->conn) ? "on" : "off");
    pg->ever_up = true;
    pg->attempt = 0;
    schedule(pg, &pg->ping_timer, ping_due, PING_INTERVAL_US);
    if (pg->events.on_up) pg->events.on_up(pg->ud);
    send_next(pg);
}

static void advance_connect(spark_pg *pg) {
    pg->poll = PQconnectPoll(pg->conn);
    if (pg->poll == PGRES_POLLING_FAILED) {
        connection_lost(pg, PQerrorMessage(pg->conn));
        return;
    }
    if (watch_socket(pg)) {
        connection_lost(pg, "cannot watch the connection's socket");
        return;
    }
    if (pg->poll == PGRES_POLLING_OK)
        became_up(pg);
    else if (pg->poll == PGRES_POLLING_WRITING)
        want_writable(pg);
}

static unsigned backoff_ms(unsigned attempt) {
    unsigned ceiling = BACKOFF_MAX_MS;
    if (attempt < 16 && (BACKOFF_FIRST_MS << attempt) < BACKOFF_MAX_MS)
        ceiling = BACKOFF_FIRST_MS << attempt;
    /* "Equal jitter": half fixed, half random, so instances that lost the
     * same server do not reconnect in lockstep. */
    return ceiling / 2 + randombytes_uniform(ceiling / 2 + 1);
}

static void retry_due(lws_sorted_usec_list_t *sul) {
    begin_connect(lws_container_of(sul, spark_pg, retry_timer));
}

static void connect_timed_out(lws_sorted_usec_list_t *sul) {
    connection_lost(lws_container_of(sul, spark_pg, connect_timer), "connection timed out");
}

/* Lets go of the current PGconn and its socket. */
static void close_conn(spark_pg *pg) {
    lws_sul_cancel(&pg->connect_timer);
    lws_sul_cancel(&pg->ping_timer);
    lws_sul_cancel(&pg->writable_timer);
    unwatch_socket(pg);
    PQfinish(pg->conn);
    pg->conn = NULL;
}

/* While connecting, a target that failed hands over to the next one, the
 * way libpq goes down its host list. Returns whether there was one. */
static bool try_next_target(spark_pg *pg, const char *why) {
    if (pg->state != SPARK_PG_CONNECTING || !pg->lookup ||
        pg->target + 1 >= spark_pg_lookup_count(pg->lookup))
        return false;
    const spark_pg_target *t = spark_pg_lookup_target(pg->lookup, pg->target);
    snprintf(pg->target_error, sizeof pg->target_error, "%s%s%s: %s", t->host ? t->host : "default",
             t->hostaddr ? "@" : "", t->hostaddr ? t->hostaddr : "", why);
    pg->target_error[strcspn(pg->target_error, "\n")] = '\0';
    spark_log(SPARK_LOG_DEBUG, "pg.target_failed", pg->target_error, "conn=%s", pg->name);
    close_conn(pg);
    pg->target++;
    connect_target(pg);
    return true;
}

static void connection_lost(spark_pg *pg, const char *why) {
    if (pg->state == SPARK_PG_DOWN) return;
    if (try_next_target(pg, why && *why ? why : "connection lost")) return;
    bool was_up = pg->state == SPARK_PG_UP;
    /* libpq's message lives in the PGconn we are about to finish. */
    char reason[1024];
    if (pg->target_error[0] && pg->state == SPARK_PG_CONNECTING)
        snprintf(reason, sizeof reason, "%s (before: %s)", why && *why ? why : "connection lost",
                 pg->target_error);
    else
        snprintf(reason, sizeof reason, "%s", why && *why ? why : "connection lost");
    reason[strcspn(reason, "\n")] = '\0';

    close_conn(pg);
    lws_sul_cancel(&pg->lookup_timer);
    spark_pg_lookup_free(pg->lookup);
    pg->lookup = NULL;
    pg->state = SPARK_PG_DOWN;

    unsigned delay = backoff_ms(pg->attempt++);
    if (was_up) {
        spark_log(SPARK_LOG_WARN, "pg.lost", reason, "conn=%s retry_ms=%u", pg->name, delay);
    } else {
        spark_metric_add(SPARK_M_DB_CONNECT_FAILURES, 1);
        spark_log(SPARK_LOG_WARN, "pg.connect_failed", reason, "conn=%s attempt=%u retry_ms=%u",
                  pg->name, pg->attempt, delay);
    }
    schedule(pg, &pg->retry_timer, retry_due, (lws_usec_t)delay * LWS_US_PER_MS);
    drain_queue(pg, was_up ? reason : NULL);
    if (was_up && pg->events.on_down) pg->events.on_down(pg->ud, reason);
}

static void notice_to_log(void *arg, const char *message) {
    spark_pg *pg = arg;
    spark_log(SPARK_LOG_DEBUG, "pg.notice", message, "conn=%s", pg->name);
}

/* Starts connecting to the current target: the address found by the
 * lookup goes in as hostaddr, so that libpq does not resolve the name
 * itself, inside the loop. */
static void connect_target(spark_pg *pg) {
    const spark_pg_target *t = spark_pg_lookup_target(pg->lookup, pg->target);
    /* Our defaults come first so that the user's conninfo, expanded from
     * "dbname", overrides them; the target comes last and overrides it. */
    const char *keys[12] = {"fallback_application_name", "keepalives",       "keepalives_idle",
                            "keepalives_interval",       "keepalives_count", "dbname"};
    const char *values[12] = {"sparkd", "1", "10", "5", "3", pg->conninfo};
    int n = 6;
    if (pg->options) keys[n] = "options", values[n++] = pg->options;
    if (t->host) keys[n] = "host", values[n++] = t->host;
    if (t->hostaddr) keys[n] = "hostaddr", values[n++] = t->hostaddr;
    if (t->port) keys[n] = "port", values[n++] = t->port;
    keys[n] = values[n] = NULL;

    pg->conn = PQconnectStartParams(keys, values, 1);
    if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD) {
        connection_lost(pg, pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
        return;
    }
    PQsetNoticeProcessor(pg->conn, notice_to_log, pg);
    int timeout_s = spark_pg_lookup_timeout(pg->lookup);
    schedule(pg, &pg->connect_timer, connect_timed_out,
             (lws_usec_t)(timeout_s ? timeout_s : CONNECT_TIMEOUT_S) * LWS_US_PER_SEC);
    pg->poll = PGRES_POLLING_WRITING; /* libpq's rule for the first poll */
    if (watch_socket(pg)) {
        connection_lost(pg, "cannot watch the connection's socket");
        return;
    }
    want_writable(pg);
}

static void lookup_progress(spark_pg *pg) {
    if (!spark_pg_lookup_done(pg->lookup)) {
        schedule(pg, &pg->lookup_timer, lookup_due, LOOKUP_POLL_US);
        return;
    }
    const char *error = spark_pg_lookup_error(pg->lookup);
    if (error)
        connection_lost(pg, error);
    else
        connect_target(pg);
}

static void lookup_due(lws_sorted_usec_list_t *sul) {
    lookup_progress(lws_container_of(sul, spark_pg, lookup_timer));
}

static void begin_connect(spark_pg *pg) {
    pg->state = SPARK_PG_CONNECTING;
    pg->target = 0;
    pg->target_error[0] = '\0';
    /* Names are looked up again on every attempt: a restarted server (a
     * container, a failover) may come back at another address. */
    pg->lookup = spark_pg_lookup_start(pg->conninfo);
    if (!pg->lookup) {
        connection_lost(pg, "out of memory");
        return;
    }
    lookup_progress(pg);
}

/* ---- lws protocol ------------------------------------------------------ */

static void on_readable(spark_pg *pg) {
    if (pg->state == SPARK_PG_CONNECTING) {
        if (pg->poll == PGRES_POLLING_READING) advance_connect(pg);
        return;
    }
    if (pg->state != SPARK_PG_UP) return;
    if (!PQconsumeInput(pg->conn)) {
        connection_lost(pg, PQerrorMessage(pg->conn));
        return;
    }
    collect_results(pg);
    deliver_notifications(pg);
    if (pg->state == SPARK_PG_UP) flush_output(pg);
}

static void on_writable(spark_pg *pg) {
    if (pg->state == SPARK_PG_CONNECTING) {
        if (pg->poll == PGRES_POLLING_WRITING) advance_connect(pg);
        return;
    }
    if (pg->state == SPARK_PG_UP) flush_output(pg);
}

static int pg_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len) {
    (void)user, (void)in, (void)len;
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) return -1; /* not a ws protocol */
    spark_pg *pg = lws_get_opaque_user_data(wsi);
    if (!pg || pg->wsi != wsi) return 0; /* adopting, or a socket we let go */
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        on_readable(pg);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        on_writable(pg);
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        pg->wsi = NULL; /* lws is closing it */
        connection_lost(pg, "connection closed");
        break;
    default:
        break;
    }
    return 0;
}

const struct lws_protocols spark_pg_protocol = {"spark-pg", pg_callback, 0, 0, 0, NULL, 0};

/* ---- public ------------------------------------------------------------ */

spark_pg *spark_pg_new(struct lws_context *context, struct lws_vhost *vhost, const char *conninfo,
                       const char *name, const spark_pg_events *events, void *ud) {
    spark_pg *pg = calloc(1, sizeof *pg);
    if (!pg) return NULL;
    pg->conninfo = strdup(conninfo);
    if (!pg->conninfo) {
        free(pg);
        return NULL;
    }
    pg->context = context;
    pg->vhost = vhost;
    snprintf(pg->name, sizeof pg->name, "%s", name);
    if (events) pg->events = *events;
    pg->ud = ud;
    pg->max_flight = 1;
    return pg;
}

void spark_pg_set_pipeline(spark_pg *pg, unsigned max_in_flight) {
    pg->max_flight = max_in_flight ? max_in_flight : 1;
}

int spark_pg_set_timeout(spark_pg *pg, int seconds) {
    /* The user's own options (conninfo, else PGOPTIONS) come after ours,
     * so that a setting they chose wins. */
    PQconninfoOption *opts = PQconninfoParse(pg->conninfo, NULL);
    const char *theirs = getenv("PGOPTIONS");
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val && *o->val) theirs = o->val;
    char *options = NULL;
    int rc = asprintf(&options,
                      "-c statement_timeout=%ds -c lock_timeout=%ds"
                      " -c idle_in_transaction_session_timeout=%ds %s",
                      seconds, seconds, seconds, theirs ? theirs : "");
    PQconninfoFree(opts);
    if (rc < 0) return -1;
    free(pg->options);
    pg->options = options;
    pg->timeout_s = seconds;
    return 0;
}

spark_pg_stall_kind spark_pg_stall(spark_pg *pg, lws_usec_t *age_us) {
    lws_usec_t now = lws_now_usecs(), limit = (lws_usec_t)pg->timeout_s * LWS_US_PER_SEC;
    *age_us = 0;
    if (!pg->timeout_s || pg->state != SPARK_PG_UP) return SPARK_PG_FLOWING;
    query *oldest = pg->in_flight ? pg->head : NULL;
    if (oldest && now - oldest->sent_at > limit) {
        if (!oldest->stalled) {
            oldest->stalled = true;
            spark_metric_add(SPARK_M_DB_STALLS, 1);
        }
        *age_us = now - oldest->sent_at;
        return SPARK_PG_OUTSTANDING;
    }
    if (pg->last_timeout_at && now - pg->last_timeout_at < limit) {
        *age_us = now - pg->last_timeout_at;
        return SPARK_PG_TIMED_OUT;
    }
    return SPARK_PG_FLOWING;
}

bool spark_pg_failed_unknown(const spark_pg *pg) { return pg->failed_unknown; }

void spark_pg_start(spark_pg *pg) {
    if (pg->state == SPARK_PG_DOWN) begin_connect(pg);
}

spark_pg_state spark_pg_get_state(const spark_pg *pg) { return pg->state; }

const char *spark_pg_state_name(spark_pg_state state) {
    switch (state) {
    case SPARK_PG_UP:
        return "up";
    case SPARK_PG_CONNECTING:
        return "connecting";
    default:
        return "down";
    }
}

size_t spark_pg_pending(const spark_pg *pg) { return pg->pending; }

size_t spark_pg_in_flight(const spark_pg *pg) {
    return pg->in_flight - (pg->head && pg->head->is_ping && pg->in_flight);
}

static int submit(spark_pg *pg, const char *sql, int nparams, const char *const *params,
                  spark_pg_result_fn cb, void *ud, bool first) {
    if (pg->state != SPARK_PG_UP) return -1;
    if (pg->pending >= MAX_QUEUED) {
        spark_metric_add(SPARK_M_DB_BUSY, 1);
        return SPARK_PG_BUSY;
    }
    query *q = query_new(sql, nparams, params);
    if (!q) return -1;
    q->cb = cb;
    q->ud = ud;
    if (first && pg->unsent) {
        /* After the queries already sent, before every other. */
        query **at = &pg->head;
        for (unsigned i = 0; i < pg->in_flight; i++)
            at = &(*at)->next;
        q->next = *at;
        *at = q;
        pg->unsent = q;
        pg->pending++;
    } else {
        enqueue(pg, q);
    }
    send_next(pg);
    return 0;
}

int spark_pg_query(spark_pg *pg, const char *sql, int nparams, const char *const *params,
                   spark_pg_result_fn cb, void *ud) {
    return submit(pg, sql, nparams, params, cb, ud, false);
}

int spark_pg_query_first(spark_pg *pg, const char *sql, int nparams, const char *const *params,
                         spark_pg_result_fn cb, void *ud) {
    return submit(pg, sql, nparams, params, cb, ud, true);
}

void spark_pg_free(spark_pg *pg) {
    if (!pg) return;
    lws_sul_cancel(&pg->retry_timer);
    lws_sul_cancel(&pg->connect_timer);
    lws_sul_cancel(&pg->ping_timer);
    lws_sul_cancel(&pg->writable_timer);
    lws_sul_cancel(&pg->lookup_timer);
    drain_queue(pg, NULL);
    unwatch_socket(pg);
    spark_pg_lookup_free(pg->lookup);
    PQfinish(pg->conn);
    free(pg->options);
    free(pg->conninfo);
    free(pg);
}
