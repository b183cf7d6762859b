/*
 * metrics.c - counters and their Prometheus exposition.
 *
 * One table describes every metric (name, type, help), so adding a metric is
 * one enum value and one row here.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t values[SPARK_M_COUNT];

static const struct {
    const char *name, *type, *help;
} descriptors[SPARK_M_COUNT] = {
    [SPARK_M_HTTP_REQUESTS] = {"spark_http_requests_total", "counter", "HTTP requests answered."},
    [SPARK_M_WS_CONNECTIONS] = {"spark_ws_connections", "gauge", "WebSocket connections open."},
    [SPARK_M_WS_ACCEPTED] = {"spark_ws_connections_total", "counter",
                             "WebSocket connections accepted."},
    [SPARK_M_WS_MESSAGES_IN] = {"spark_ws_messages_in_total", "counter",
                                "WebSocket messages received."},
    [SPARK_M_WS_MESSAGES_OUT] = {"spark_ws_messages_out_total", "counter",
                                 "WebSocket messages sent."},
    [SPARK_M_WS_WRITES] = {"spark_ws_writes_total", "counter",
                           "Socket writes that carried them (queued messages go together)."},
    [SPARK_M_WS_WRITES_PARTIAL] = {"spark_ws_writes_partial_total", "counter",
                                   "Socket writes the socket took only part of; the rest "
                                   "waits for it to drain."},
    [SPARK_M_DB_QUERIES] = {"spark_db_queries_total", "counter", "PostgreSQL queries completed."},
    [SPARK_M_DB_QUERY_ERRORS] = {"spark_db_query_errors_total", "counter",
                                 "PostgreSQL queries that failed."},
    [SPARK_M_NOTIFICATIONS] = {"spark_notifications_total", "counter",
                               "PostgreSQL notifications received."},
    [SPARK_M_DB_RECONNECTS] = {"spark_db_reconnects_total", "counter",
                               "PostgreSQL connections re-established after a loss."},
    [SPARK_M_DB_CONNECT_FAILURES] = {"spark_db_connect_failures_total", "counter",
                                     "PostgreSQL connection attempts that failed."},
    [SPARK_M_WS_REFUSED] = {"spark_ws_refused_total", "counter",
                            "WebSocket upgrades refused (instance full or stopping)."},
    [SPARK_M_WS_TOO_LARGE] = {"spark_ws_too_large_total", "counter",
                              "Connections closed for an oversized message (1009)."},
    [SPARK_M_WS_SLOW_CLOSED] = {"spark_ws_slow_consumers_total", "counter",
                                "Connections closed because their send queue was full (1008)."},
    [SPARK_M_WS_RATE_LIMITED] = {"spark_ws_rate_limited_total", "counter",
                                 "Messages refused by the per-connection rate limit."},
    [SPARK_M_WS_QUEUED_BYTES] = {"spark_ws_queued_bytes", "gauge",
                                 "Bytes waiting in WebSocket send queues."},
    [SPARK_M_ROOM_POSTS] = {"spark_room_posts_total", "counter",
                            "Messages posted to rooms by this instance."},
    [SPARK_M_ROOM_DELIVERIES] = {"spark_room_deliveries_total", "counter",
                                 "Room messages delivered to local connections."},
    [SPARK_M_ROOM_ROUNDS] = {"spark_room_rounds_total", "counter",
                             "Fetches of several messages given to members as one frame."},
    [SPARK_M_PRESENCE_REAPED] = {"spark_presence_reaped_total", "counter",
                                 "Dead instances whose presences this instance removed."},
    [SPARK_M_DB_STALLS] = {"spark_db_stalls_total", "counter",
                           "PostgreSQL queries that hit a timeout or went unanswered past it."},
    [SPARK_M_DB_BUSY] = {"spark_db_busy_total", "counter",
                         "PostgreSQL queries refused because the connection's queue was full."},
    [SPARK_M_NOTIFY_FORGED] = {"spark_notify_forged_total", "counter",
                               "Ephemeral notifications dropped for a missing or bad MAC."},
};

void spark_metric_add(spark_metric m, int64_t delta) { values[m] += delta; }

int64_t spark_metric_get(spark_metric m) { return values[m]; }

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} text_buffer;

static void appendf(text_buffer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void appendf(text_buffer *t, const char *fmt, ...) {
    if (t->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static void append_metric(text_buffer *t, const char *name, const char *type, const char *help,
                          const char *instance, double value) {
    appendf(t, "# HELP %s %s\n# TYPE %s %s\n%s{instance=\"%s\"} %.15g\n", name, help, name, type,
            name, instance, value);
}

char *spark_metrics_render(const spark_metrics_live *live, const char *instance, size_t *len) {
    text_buffer t = {.buf = malloc(2048), .cap = 2048};
    if (!t.buf) return NULL;
    t.buf[0] = '\0';
    for (int i = 0; i < SPARK_M_COUNT; i++)
        append_metric(&t, descriptors[i].name, descriptors[i].type, descriptors[i].help, instance,
                      (double)values[i]);
    append_metric(&t, "spark_database_up", "gauge", "1 when the query connection is up.", instance,
                  live->database_up);
    append_metric(&t, "spark_listener_up", "gauge", "1 when the LISTEN connection is listening.",
                  instance, live->listener_up);
    append_metric(&t, "spark_loop_epoll", "gauge",
                  "1 while the event loop waits on its epoll set, 0 when it waits in poll().",
                  instance, live->loop_epoll);
    append_metric(&t, "spark_uptime_seconds", "gauge", "Seconds since the server started.",
                  instance, live->uptime_seconds);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}
