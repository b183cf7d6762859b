/*
 * server.c - the single-threaded event loop of one sparkd instance.
 *
 * Owns the lws context and the two PostgreSQL connections every instance
 * has: "db" for queries and "bus" for LISTEN. Nothing here blocks: HTTP,
 * WebSocket and PostgreSQL traffic all wait in lws's one poll().
 *
 * Shutdown is a small state machine. SIGTERM/SIGINT only set a flag and
 * wake the loop (lws_cancel_service is the one lws call that is safe there);
 * the loop then stops accepting work, lets queued queries finish, and
 * leaves when nothing is in flight or the shutdown timeout has passed.
 */
#include "server.h"

#include "bus.h"
#include "channel_internal.h"
#include "component_internal.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "history.h"
#include "pages.h"
#include "pg.h"
#include "poll_epoll.h"
#include "rooms.h"
#include "routes.h"
#include "session.h"
#include "spark_build.h"

#include <json-c/json.h>
#include <libwebsockets.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#define DRAIN_POLL_US (20 * LWS_US_PER_MS)
#define FD_LIMIT_CAP  100000
/* Queries sent ahead on the main connection: enough to hide the round trip
 * behind a burst of joins or writes, few enough to keep the backlog small. */
#define DB_PIPELINE_DEPTH 64

typedef struct {
    const spark_config *cfg;
    struct lws_context *ctx;
    spark_http *http;
    spark_sessions *sessions;
    spark_pg *db;
    spark_bus *bus;
    spark_rooms *rooms;
    spark_channels *channels;
    spark_components *components;
    spark_pages *pages;
    spark_history *history;
    lws_usec_t started_at;
    lws_usec_t drain_deadline;
    bool draining, instance_stopped, stopped;
    lws_sorted_usec_list_t drain_timer;
} server;

static volatile sig_atomic_t stop_requested;
static struct lws_context *signal_context;
static server *the_server; /* for the control protocol's wake-ups */

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
    if (signal_context) lws_cancel_service(signal_context);
}

static void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- health and metrics ------------------------------------------------ */

/* A database that answers nothing (a lock held in psql, a frozen server)
 * leaves the connection up; other instances would reap our presences while
 * this one still said 200. */
static const char *db_stall(const server *s, lws_usec_t *age_us) {
    switch (spark_pg_stall(s->db, age_us)) {
    case SPARK_PG_OUTSTANDING:
        return "query_outstanding";
    case SPARK_PG_TIMED_OUT:
        return "query_timed_out";
    default:
        return NULL;
    }
}

static bool is_healthy(const server *s) {
    lws_usec_t age;
    return !s->draining && spark_pg_get_state(s->db) == SPARK_PG_UP &&
           spark_bus_is_listening(s->bus) && !db_stall(s, &age);
}

static double uptime_seconds(const server *s) {
    return (double)(lws_now_usecs() - s->started_at) / LWS_US_PER_SEC;
}

static void healthz(spark_http_request *req, void *ud) {
    server *s = ud;
    bool healthy = is_healthy(s);
    json_object *root = json_object_new_object(), *db = json_object_new_object(),
                *listener = json_object_new_object(), *channels = json_object_new_array();
    json_object_object_add(root, "status",
                           json_object_new_string(s->draining ? "stopping"
                                                  : healthy   ? "ok"
                                                              : "unavailable"));
    json_object_object_add(root, "instance", json_object_new_string(s->cfg->instance));
    json_object_object_add(root, "version", json_object_new_string(SPARK_VERSION));
    json_object_object_add(root, "uptime_seconds",
                           json_object_new_int64((int64_t)uptime_seconds(s)));
    json_object_object_add(db, "state",
                           json_object_new_string(spark_pg_state_name(spark_pg_get_state(s->db))));
    json_object_object_add(db, "pending_queries",
                           json_object_new_int64((int64_t)spark_pg_pending(s->db)));
    lws_usec_t stall_age;
    const char *stall = db_stall(s, &stall_age);
    if (stall) {
        json_object *st = json_object_new_object();
        json_object_object_add(st, "reason", json_object_new_string(stall));
        json_object_object_add(st, "age_ms",
                               json_object_new_int64((int64_t)(stall_age / LWS_US_PER_MS)));
        json_object_object_add(st, "timeout_s", json_object_new_int(s->cfg->db_timeout_s));
        json_object_object_add(db, "stalled", st);
    }
    json_object_object_add(root, "database", db);
    json_object_object_add(listener, "state", json_object_new_string(spark_bus_state(s->bus)));
    for (size_t i = 0; i < spark_bus_channel_count(s->bus); i++)
        json_object_array_add(channels, json_object_new_string(spark_bus_channel(s->bus, i)));
    json_object_object_add(listener, "channels", channels);
    json_object_object_add(listener, "notifications",
                           json_object_new_int64(spark_metric_get(SPARK_M_NOTIFICATIONS)));
    json_object_object_add(root, "listener", listener);
    json_object *components = json_object_new_object();
    json_object_object_add(components, "cached",
                           json_object_new_int64((int64_t)spark_components_cached(s->components)));
    json_object_object_add(root, "components", components);

    size_t len;
    const char *text = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
    spark_http_respond(req, healthy ? 200 : 503, "application/json", text, len);
    json_object_put(root);
}

static void metrics(spark_http_request *req, void *ud) {
    server *s = ud;
    spark_metrics_live live = {
        .database_up = spark_pg_get_state(s->db) == SPARK_PG_UP,
        .listener_up = spark_bus_is_listening(s->bus),
        .loop_epoll = spark_poll_epoll_active(),
        .uptime_seconds = uptime_seconds(s),
    };
    size_t len = 0;
    char *text = spark_metrics_render(&live, s->cfg->instance, &len);
    if (!text) {
        spark_http_respond(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    spark_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

/* ---- the bus's own subscription ----------------------------------------- */

/* Changes announced on the "spark" channel go to the modules that serve
 * them: "m|" and "e|" to rooms. */
static void on_spark_notify(void *ud, const char *channel, const char *payload) {
    server *s = ud;
    spark_log(SPARK_LOG_DEBUG, "notify", payload, "channel=%s", channel);
    spark_rooms_on_notify(s->rooms, payload);
    spark_components_on_notify(s->components, payload);
}

static void on_spark_resync(void *ud, bool reconnected) {
    server *s = ud;
    spark_rooms_on_resync(s->rooms, reconnected);
    spark_components_on_resync(s->components, reconnected);
}

static void on_db_up(void *ud) {
    server *s = ud;
    if (s->draining) return;
    spark_rooms_db_up(s->rooms);
    spark_components_db_up(s->components);
}

/* ---- graceful stop ------------------------------------------------------ */

/* The stop goes in steps: WebSocket clients are closed (1001) and their
 * presences removed; then the instance removes itself; then the queries
 * still queued finish. Each step waits for the one before, up to the
 * deadline. */
static void drain_check(lws_sorted_usec_list_t *sul) {
    server *s = lws_container_of(sul, server, drain_timer);
    bool timed_out = lws_now_usecs() >= s->drain_deadline;
    size_t clients = spark_channels_count(s->channels);
    if (clients && !timed_out) {
        lws_sul_schedule(s->ctx, 0, &s->drain_timer, drain_check, DRAIN_POLL_US);
        return;
    }
    if (!s->instance_stopped) {
        s->instance_stopped = true;
        if (spark_pg_get_state(s->db) == SPARK_PG_UP) spark_rooms_stop(s->rooms);
    }
    size_t pending = spark_pg_pending(s->db);
    if (pending == 0 || timed_out) {
        if (timed_out && clients)
            spark_log(SPARK_LOG_WARN, "shutdown.timeout", "clients still open", "clients=%zu",
                      clients);
        if (timed_out && pending)
            spark_log(SPARK_LOG_WARN, "shutdown.timeout", NULL, "pending_queries=%zu", pending);
        s->stopped = true;
        /* Timers run before lws's poll: wake it, or it sleeps to the next. */
        lws_cancel_service(s->ctx);
        return;
    }
    lws_sul_schedule(s->ctx, 0, &s->drain_timer, drain_check, DRAIN_POLL_US);
}

static void begin_drain(server *s) {
    if (s->draining) return;
    s->draining = true;
    spark_http_set_accepting(s->http, false);
    spark_channels_close_all(s->channels, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    s->drain_deadline = lws_now_usecs() + (lws_usec_t)s->cfg->shutdown_timeout_ms * LWS_US_PER_MS;
    spark_log(SPARK_LOG_INFO, "shutdown.begin", NULL,
              "clients=%zu pending_queries=%zu timeout_ms=%d", spark_channels_count(s->channels),
              spark_pg_pending(s->db), s->cfg->shutdown_timeout_ms);
    drain_check(&s->drain_timer);
}

static int control_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len) {
    (void)wsi, (void)user, (void)in, (void)len;
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) return -1; /* not a ws protocol */
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED && stop_requested && the_server)
        begin_drain(the_server);
    return 0;
}

/* ---- startup ------------------------------------------------------------ */

/* lws sizes its tables by the descriptor limit: raise the soft limit to the
 * hard one, but cap what lws allocates for. */
static unsigned int raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > FD_LIMIT_CAP ? FD_LIMIT_CAP : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > FD_LIMIT_CAP ? FD_LIMIT_CAP : (unsigned int)rl.rlim_cur;
}

static int create_context(server *s, struct lws_protocols *protocols) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = s->cfg->port;
    info.iface = s->cfg->host;
    info.protocols = protocols;
    info.vhost_name = "sparkd";
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.fd_limit_per_thread = raise_fd_limit();
    info.user = s;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) return -1;
    /* An explicit vhost, so that a failure to bind is reported here. */
    if (!lws_create_vhost(s->ctx, &info)) return -1;
    return 0;
}

static int start(server *s, struct lws_protocols *protocols) {
    s->http = spark_http_new(s->cfg->web_root, s->cfg->base_web_root);
    if (!s->http) {
        spark_log(SPARK_LOG_ERROR, "start.failed", "cannot resolve the web root", "web_root=%s",
                  s->cfg->web_root);
        return -1;
    }
    s->sessions = spark_sessions_new(s->cfg);
    if (!s->sessions || spark_http_get(s->http, "/healthz", healthz, s) ||
        spark_http_get(s->http, "/metrics", metrics, s) ||
        spark_routes_install(s->http, s->sessions))
        return -1;
    spark_http_set_sessions(s->http, s->sessions);
    /* config refuses this already; a configuration built another way must
     * not serve everyone by accident either. */
    if (s->cfg->auth && !spark_sessions_enabled(s->sessions)) {
        spark_log(SPARK_LOG_ERROR, "start.failed",
                  "SPARK_VERIFY_KEYS is not set (SPARK_AUTH=off allows anonymous access)", NULL);
        return -1;
    }
    if (!spark_sessions_enabled(s->sessions))
        spark_log(SPARK_LOG_WARN, "auth.off",
                  "SPARK_AUTH=off: every connection is anonymous and allowed", NULL);
    else if (s->cfg->demo_login && !spark_sessions_login_enabled(s->sessions))
        spark_log(SPARK_LOG_WARN, "auth.no_login", "SPARK_DEMO_LOGIN needs SPARK_SIGNING_KEY",
                  NULL);
    protocols[0] = spark_http_protocol(s->http);
    if (create_context(s, protocols)) {
        spark_log(SPARK_LOG_ERROR, "start.failed", "cannot listen (is the port in use?)", "port=%d",
                  s->cfg->port);
        return -1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(s->ctx, "sparkd");
    static const spark_pg_events db_events = {.on_up = on_db_up};
    s->db = spark_pg_new(s->ctx, vh, s->cfg->database_url, "db", &db_events, s);
    if (s->db) spark_pg_set_pipeline(s->db, DB_PIPELINE_DEPTH);
    s->bus = spark_bus_new(s->ctx, vh, s->cfg->database_url);
    if (!s->db || !s->bus || spark_pg_set_timeout(s->db, s->cfg->db_timeout_s) ||
        spark_bus_set_timeout(s->bus, s->cfg->db_timeout_s))
        return -1;
    s->rooms = s->db ? spark_rooms_new(s->ctx, s->db, s->cfg) : NULL;
    s->channels = s->rooms ? spark_channels_new(s->cfg, s->rooms, s->sessions) : NULL;
    s->components = s->rooms ? spark_components_new(s->ctx, s->db, s->rooms, s->cfg) : NULL;
    if (s->components) {
        spark_channels_set_components(s->channels, s->components);
        s->pages = spark_pages_new(s->http, s->components);
        spark_http_set_pages(s->http, s->pages);
        s->history = spark_history_new(s->http, s->db, s->cfg->instance);
    }
    if (!s->channels || !s->components || !s->pages || !s->history || !s->bus ||
        spark_bus_subscribe(s->bus, "spark", on_spark_notify, on_spark_resync, s))
        return -1;
    spark_http_set_ws(s->http, spark_channels_callback, s->channels);
    spark_pg_start(s->db);
    spark_bus_start(s->bus);
    return 0;
}

static void stop(server *s) {
    lws_sul_cancel(&s->drain_timer);
    /* Connections still open close with the context and tell rooms, which
     * must not query a freed connection by then. */
    if (s->rooms) spark_rooms_detach(s->rooms);
    if (s->http) spark_http_set_pages(s->http, NULL);
    spark_pages_free(s->pages);
    if (s->components) spark_components_detach(s->components);
    /* PostgreSQL connections before the context: their sockets live in it. */
    spark_bus_free(s->bus);
    spark_pg_free(s->db);
    spark_history_free(s->history); /* after its connection: no answer comes now */
    if (s->ctx) lws_context_destroy(s->ctx);
    spark_channels_free(s->channels);
    spark_components_free(s->components);
    spark_rooms_free(s->rooms);
    spark_http_free(s->http);
    spark_sessions_free(s->sessions);
}

/* lws has a connection that needs service at once (buffered input it must
 * hand over): its poll() without a wait is meant (poll_epoll.h). */
static bool lws_work_pending(void *ctx) { return lws_service_adjust_timeout(ctx, 1, 0) == 0; }

int spark_serve(const spark_config *cfg) {
    server s = {.cfg = cfg, .started_at = lws_now_usecs()};
    struct lws_protocols protocols[] = {
        {0}, /* http, filled in by start() */
        spark_pg_protocol,
        {"spark-control", control_callback, 0, 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    spark_log_capture_lws();
    install_signal_handlers();
    the_server = &s;
    if (start(&s, protocols)) {
        stop(&s);
        the_server = NULL;
        return 1;
    }
    signal_context = s.ctx;
    spark_log(SPARK_LOG_INFO, "start", NULL, "version=%s port=%d pid=%ld", SPARK_VERSION, cfg->port,
              (long)getpid());
    if (stop_requested) begin_drain(&s); /* a signal that came during startup */

    if (cfg->epoll && spark_poll_epoll_begin(lws_work_pending, s.ctx))
        spark_log(SPARK_LOG_WARN, "loop.epoll", "no epoll set; waiting with poll()", NULL);
    while (!s.stopped && lws_service(s.ctx, 0) >= 0)
        ;
    spark_poll_epoll_end();

    signal_context = NULL;
    stop(&s);
    the_server = NULL;
    spark_log(SPARK_LOG_INFO, "stop", NULL, "uptime_s=%.1f",
              (double)(lws_now_usecs() - s.started_at) / LWS_US_PER_SEC);
    return 0;
}
