/*
 * metrics.h - process-wide counters and gauges, rendered as Prometheus text.
 *
 * The event loop is single-threaded, so the counters are plain integers that
 * any module bumps with spark_metric_add(). Gauges that mirror live state
 * (database up, listener up) are read at render time through the source
 * callback given to spark_metrics_render().
 */
#ifndef SPARK_METRICS_H
#define SPARK_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SPARK_M_HTTP_REQUESTS,       /* HTTP requests answered */
    SPARK_M_WS_CONNECTIONS,      /* WebSocket connections open now (gauge) */
    SPARK_M_WS_ACCEPTED,         /* WebSocket connections accepted */
    SPARK_M_WS_MESSAGES_IN,      /* WebSocket messages received */
    SPARK_M_WS_MESSAGES_OUT,     /* WebSocket messages sent */
    SPARK_M_WS_WRITES,           /* socket writes that carried them */
    SPARK_M_WS_WRITES_PARTIAL,   /* of which the socket took part: lws keeps the rest */
    SPARK_M_DB_QUERIES,          /* queries completed */
    SPARK_M_DB_QUERY_ERRORS,     /* queries that failed */
    SPARK_M_NOTIFICATIONS,       /* notifications received by the bus */
    SPARK_M_DB_RECONNECTS,       /* PostgreSQL connections re-established */
    SPARK_M_DB_CONNECT_FAILURES, /* PostgreSQL connection attempts that failed */
    SPARK_M_WS_REFUSED,          /* upgrades refused: instance full or draining */
    SPARK_M_WS_TOO_LARGE,        /* connections closed for an oversized message (1009) */
    SPARK_M_WS_SLOW_CLOSED,      /* connections closed for a full send queue (1008) */
    SPARK_M_WS_RATE_LIMITED,     /* messages refused by the rate limit */
    SPARK_M_WS_QUEUED_BYTES,     /* bytes waiting in send queues now (gauge) */
    SPARK_M_ROOM_POSTS,          /* messages posted to rooms by this instance */
    SPARK_M_ROOM_DELIVERIES,     /* room messages delivered to local connections */
    SPARK_M_ROOM_ROUNDS,         /* fetches given to members as one frame each */
    SPARK_M_PRESENCE_REAPED,     /* dead instances whose presences this one removed */
    SPARK_M_DB_STALLS,           /* queries that timed out or stayed unanswered too long */
    SPARK_M_DB_BUSY,             /* queries refused because the queue was full */
    SPARK_M_NOTIFY_FORGED,       /* ephemeral notifications dropped: no valid MAC */
    SPARK_M_COUNT
} spark_metric;

void spark_metric_add(spark_metric m, int64_t delta);
int64_t spark_metric_get(spark_metric m);

/* Live gauges that the renderer asks for: 1/0 for up/down. */
typedef struct {
    int database_up;
    int listener_up;
    int loop_epoll; /* 1 while the loop waits on its epoll set (poll_epoll.h) */
    double uptime_seconds;
} spark_metrics_live;

/* Renders all metrics as Prometheus text into a malloc'd string; the caller
 * frees it. Returns NULL on allocation failure. */
char *spark_metrics_render(const spark_metrics_live *live, const char *instance, size_t *len);

#endif
