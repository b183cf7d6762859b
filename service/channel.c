/*
 * channel.c - WebSocket connections of the channel API: upgrade routing,
 * message assembly, the send queue, limits, and the public spark_conn calls,
 * with the per-channel counts and the room everyone is in ("spark:all",
 * joined once per instance on behalf of every connection).
 *
 * Every limit is enforced here, before a channel sees anything:
 *  - an upgrade to an unknown route gets HTTP 404, a full or stopping
 *    instance 503, both before the handshake;
 *  - a message is assembled from lws's fragments up to SPARK_MAX_MESSAGE
 *    bytes; one byte more closes with 1009;
 *  - a token bucket of SPARK_RATE_LIMIT messages per second answers excess
 *    with an error, and closes with 1008 when the excess goes on;
 *  - the send queue holds at most SPARK_MAX_QUEUE bytes. A client that does
 *    not read is closed with 1008 and its queue freed, so one slow reader
 *    cannot grow the instance's memory.
 *
 * Sending: a message is queued, and what a turn of the loop queued is
 * written before the loop waits again (flush_due), one write a
 * connection. When several messages wait, that one write carries them all
 * (up to COALESCE_BYTES), framed here: a room of thousands would otherwise
 * cost one syscall per message per member. A message larger than that
 * leaves as fragments, one a write, so that lws never holds more than one
 * write's unsent rest. A connection whose rest lws still holds waits for
 * WRITEABLE instead, lws's rule. Closing from outside
 * the connection's callback works that way too: mark, ask for WRITEABLE,
 * return -1 there.
 */
#include "channel_internal.h"

#include "log.h"
#include "metrics.h"
#include "poll_epoll.h"
#include "rooms.h"
#include "router.h"
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CHANNELS     64
#define MAX_QUERY_BYTES  2048
#define MAX_REASON_BYTES 123
#define SLOW_KILL_SECS   2
#define CLOSE_ABNORMAL   1006
#define CLOSE_AUTH       4401
#define RX_KEEP_BYTES    4096
#define MAX_TOKEN_WAIT_S (400LL * 86400)
/* What one write hands lws at most, and so what lws may have to keep of a
 * write that a full socket took only part of: per connection, when
 * thousands fall behind at once (a join storm). */
#define COALESCE_BYTES   SPARK_FRAME_WRITE_MAX
#define SPARK_LIVE_ROUTE "/spark"
#define ALL_ROOM         "spark:all"

/* One link of a connection's send queue: references to shared frames
 * (frame.h), oldest first. A room's message is one frame that every
 * member's queue points to: a delivery adds a reference, not a copy of the
 * text, and a link serves QUEUE_LINK deliveries. Every link in a queue
 * holds at least one frame. Each connection has one link of its own
 * (spark_conn.own_link), used whenever it is free: a fan-out round queues
 * and writes a frame or a few for every member, and a link allocated and
 * freed per member per round was most of an instance's time in malloc.
 * Further links are allocated, and freed once emptied. */
#define QUEUE_LINK 14
typedef struct frame {
    struct frame *next;
    unsigned short first, end; /* refs[first, end) are queued */
    spark_frame *refs[QUEUE_LINK];
} frame;

struct spark_conn {
    spark_channels *owner;
    const spark_channel *channel;
    size_t channel_index; /* in the registry, for per-channel counts */
    bool counted;         /* in owner->open[channel_index] */
    struct lws *wsi;
    uint64_t serial;
    lws_dll2_t link;       /* in owner->conns */
    lws_dll2_t flush_link; /* in owner->to_flush while it has news to write */
    /* Fixed for the connection's life, in one allocation (names): each
     * connection sized to its own strings, since thousands sit idle. */
    char *names;
    const char *origin, *user_id, *user_name;
    const char *params; /* nparams pairs of NUL-ended name and value */
    unsigned nparams;
    char *query; /* "name=value" strings, each NUL-ended; NULL when none */
    size_t query_len;
    spark_identity identity;
    const char *refused; /* accepted only to say why: 4401 after the handshake */
    lws_sorted_usec_list_t expiry;

    /* receiving */
    char *rx;
    size_t rx_len, rx_cap;
    bool rx_binary;

    /* sending */
    frame *head, *tail;
    frame own_link; /* in the queue while own_link_used */
    bool own_link_used;
    size_t queued;
    size_t head_sent; /* bytes of the head frame out already, as fragments */
    bool lws_holds;   /* lws keeps part of the last write: wait for WRITEABLE */

    /* rate limit */
    double tokens;
    lws_usec_t refilled_at;
    int strikes;

    /* closing */
    bool upgrading, established, closing, kill, peer_closed;
    int close_code;
    char *close_reason; /* NULL until there is one */

    spark_room_peer peer;  /* what the rooms module knows of it */
    lws_dll2_owner_t refs; /* spark_conn_refs held on its behalf */
    void *data;
    void (*release)(void *data);
};

struct spark_channels {
    const spark_config *cfg;
    spark_rooms *rooms;
    spark_sessions *sessions;
    lws_dll2_owner_t conns;
    lws_dll2_owner_t to_flush;    /* connections queued to this turn of the loop */
    lws_sorted_usec_list_t flush; /* due at once while to_flush is not empty */
    size_t open[MAX_CHANNELS];    /* per channel: connections from on_connect to on_close */
    size_t upgrading;             /* accepted by the filter, not yet established */
    uint64_t next_serial;
    bool refusing;
    spark_components *components; /* serves the /spark route; opaque here */
    /* Members of ALL_ROOM on behalf of every connection: one for channel
     * clients, one (enveloped) for /spark ones. */
    spark_room_peer all_plain, all_enveloped;
};

/* The serving process's channels, for calls made without a connection
 * (spark_broadcast_all): one per process, like the registry. */
static spark_channels *serving;

static const spark_channel *registry[MAX_CHANNELS];
static size_t nregistered;

SPARK_API int spark_channel_register(const spark_channel *channel) {
    if (!channel || !spark_route_valid(channel->route) || nregistered == MAX_CHANNELS) {
        fprintf(stderr, "spark: cannot register channel route \"%s\"\n",
                channel && channel->route ? channel->route : "(null)");
        return -1;
    }
    registry[nregistered++] = channel;
    return 0;
}

static const spark_channel *find_channel(const char *path, spark_route_params *params,
                                         size_t *index) {
    for (size_t i = 0; i < nregistered; i++)
        if (spark_route_match(registry[i]->route, path, params)) {
            if (index) *index = i;
            return registry[i];
        }
    return NULL;
}

/* The live components' channel (live.c), whose client acts on a frame's
 * "t": its connections are given room and user messages only inside the
 * envelope of rooms.h, never in a shape a payload could choose. Matched
 * by route: the route is the runtime's, and so is the channel on it. */
static bool is_enveloped(const spark_channel *channel) {
    return strcmp(channel->route, SPARK_LIVE_ROUTE) == 0;
}

bool spark_channels_route_exists(const char *path) {
    return find_channel(path, NULL, NULL) != NULL;
}

/* The seed's answer to a message the server could not handle: here, one
 * that could not be stored. Found by serial, since the connection may have
 * closed while the database was failing. */
static void post_failed(void *ud, uint64_t serial) {
    spark_channels *channels = ud;
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&channels->conns)) {
        spark_conn *c = lws_container_of(d, spark_conn, link);
        if (c->serial == serial) {
            spark_conn_send_error(c, "Server error processing message");
            return;
        }
    }
    lws_end_foreach_dll(d);
}

static void deliver_to_all(spark_channels *channels, bool enveloped, const char *kind,
                           spark_frame *f);

static void deliver_all_plain(spark_room_peer *p, const char *kind, spark_frame *f) {
    deliver_to_all(lws_container_of(p, spark_channels, all_plain), false, kind, f);
}

static void deliver_all_enveloped(spark_room_peer *p, const char *kind, spark_frame *f) {
    deliver_to_all(lws_container_of(p, spark_channels, all_enveloped), true, kind, f);
}

spark_channels *spark_channels_new(const spark_config *cfg, spark_rooms *rooms,
                                   spark_sessions *sessions) {
    spark_channels *channels = calloc(1, sizeof *channels);
    if (!channels) return NULL;
    channels->cfg = cfg;
    channels->rooms = rooms;
    channels->sessions = sessions;
    spark_rooms_on_post_failed(rooms, post_failed, channels);
    /* Joined now; a join the database could not take yet is retried when
     * it comes up, like any member's. */
    channels->all_plain = (spark_room_peer){
        .deliver_frame = deliver_all_plain, .origin = "", .user_id = "", .user_name = ""};
    channels->all_enveloped = channels->all_plain;
    channels->all_enveloped.deliver_frame = deliver_all_enveloped;
    channels->all_enveloped.enveloped = true;
    spark_rooms_join(rooms, &channels->all_plain, ALL_ROOM, SPARK_LIVE);
    spark_rooms_join(rooms, &channels->all_enveloped, ALL_ROOM, SPARK_LIVE);
    serving = channels;
    return channels;
}

size_t spark_channels_count(const spark_channels *channels) {
    return channels ? (size_t)channels->conns.count : 0;
}

static int enqueue_frame(spark_conn *c, spark_frame *f);
static void flush_soon(spark_conn *c);

/* What the rooms deliver to a connection is what it is sent, whatever
 * the kind: a channel's client tells presence from messages by "type".
 * A round of messages framed already (frame.h) is queued the same way.
 * For an enveloped channel (/spark) the rooms module has already wrapped
 * it as {"t":"msg",...}: it is sent as it is too. Either way the queue
 * takes a reference to the frame the room built once for all members. */
static void deliver_shared(spark_room_peer *p, const char *kind, spark_frame *f) {
    (void)kind;
    enqueue_frame(lws_container_of(p, spark_conn, peer), f);
}

static int enqueue(spark_conn *c, const char *text, size_t len);

/* A message of ALL_ROOM reaches every open connection here, each in the
 * shape its channel's client reads: enveloped for /spark, as is for the
 * others. Connections refused at the handshake (closing with 4401) and
 * those closing get nothing. */
static void deliver_to_all(spark_channels *channels, bool enveloped, const char *kind,
                           spark_frame *f) {
    if (strcmp(kind, "message") != 0 && strcmp(kind, "ephemeral") != 0) return;
    EACH_LINK(d, &channels->conns) {
        spark_conn *c = lws_container_of(d, spark_conn, link);
        if (!c->refused && !c->closing && is_enveloped(c->channel) == enveloped)
            enqueue_frame(c, f);
    }
}

/* ---- sending ------------------------------------------------------------ */

/* The oldest queued frame, or NULL. */
static spark_frame *queue_head(const spark_conn *c) {
    return c->head ? c->head->refs[c->head->first] : NULL;
}

/* The queued frame after the oldest, or NULL. */
static spark_frame *queue_second(const spark_conn *c) {
    const frame *l = c->head;
    if (!l) return NULL;
    if (l->first + 1 < l->end) return l->refs[l->first + 1];
    return l->next ? l->next->refs[l->next->first] : NULL;
}

/* Unqueues the oldest frame and drops the queue's reference to it. */
static void queue_pop(spark_conn *c) {
    frame *l = c->head;
    spark_frame *f = l->refs[l->first++];
    c->queued -= f->len;
    spark_metric_add(SPARK_M_WS_QUEUED_BYTES, -(int64_t)f->len);
    spark_frame_unref(f);
    if (l->first < l->end) return;
    c->head = l->next;
    if (!c->head) c->tail = NULL;
    if (l == &c->own_link)
        c->own_link_used = false;
    else
        free(l);
}

static void drop_queue(spark_conn *c) {
    while (c->head)
        queue_pop(c);
    c->head_sent = 0;
}

/* Keeps why the connection closes (at most MAX_REASON_BYTES of it). */
static void set_close_reason(spark_conn *c, const char *reason, size_t len) {
    if (len > MAX_REASON_BYTES) len = MAX_REASON_BYTES;
    free(c->close_reason);
    c->close_reason = malloc(len + 1);
    if (!c->close_reason) return;
    memcpy(c->close_reason, reason, len);
    c->close_reason[len] = '\0';
}

static const char *close_reason(const spark_conn *c) {
    return c->close_reason ? c->close_reason : "";
}

static void request_close(spark_conn *c, int code, const char *reason) {
    if (c->closing) return;
    c->closing = true;
    c->close_code = code;
    if (reason) set_close_reason(c, reason, strlen(reason));
    if (c->wsi) lws_callback_on_writable(c->wsi);
}

/* A client that lets its queue fill is not reading: its socket is likely
 * full too, so a close frame may never get out. Free the queue, try to say
 * 1008, and cut the connection if that has not happened shortly. */
static void close_slow_consumer(spark_conn *c) {
    spark_metric_add(SPARK_M_WS_SLOW_CLOSED, 1);
    spark_log(SPARK_LOG_WARN, "ws.slow_consumer", "send queue full; closing",
              "conn=%" PRIu64 " queued=%zu", c->serial, c->queued);
    drop_queue(c);
    request_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue full");
    c->kill = true;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, SLOW_KILL_SECS);
}

/* A free link for the tail of the queue: the connection's own, if free. */
static frame *new_link(spark_conn *c) {
    if (c->own_link_used) return malloc(sizeof(frame));
    c->own_link_used = true;
    return &c->own_link;
}

/* Queues a reference to `f` (the caller keeps its own). The limit counts
 * each queued message whole, shared or not: it bounds how far behind a
 * client may fall, whatever the frames cost the instance. */
static int enqueue_frame(spark_conn *c, spark_frame *f) {
    if (!c || c->closing || !c->wsi) return -1;
    if (c->queued + f->len > (size_t)c->owner->cfg->max_queue_bytes) {
        close_slow_consumer(c);
        return -1;
    }
    frame *l = c->tail;
    if (!l || l->end == QUEUE_LINK) {
        if (!(l = new_link(c))) return -1;
        l->next = NULL;
        l->first = l->end = 0;
        if (c->tail)
            c->tail->next = l;
        else
            c->head = l;
        c->tail = l;
    }
    l->refs[l->end++] = spark_frame_ref(f);
    c->queued += f->len;
    spark_metric_add(SPARK_M_WS_QUEUED_BYTES, (int64_t)f->len);
    if (lws_dll2_is_detached(&c->flush_link)) flush_soon(c);
    return 0;
}

/* A message of its own for one connection: a frame with one holder. */
static int enqueue(spark_conn *c, const char *text, size_t len) {
    if (!c || c->closing || !c->wsi) return -1;
    spark_frame *f = spark_frame_new(text, len);
    if (!f) return -1;
    int r = enqueue_frame(c, f);
    spark_frame_unref(f);
    return r;
}

/* The head frame is out: unqueue it. */
static void sent(spark_conn *c) {
    unsigned messages = queue_head(c)->framed;
    queue_pop(c);
    c->head_sent = 0;
    spark_metric_add(SPARK_M_WS_MESSAGES_OUT, messages ? messages : 1);
}

#define MAX_FRAME_HEADER SPARK_FRAME_HEADER_MAX
#define WS_FIN           0x80
#define WS_TEXT          0x1
#define WS_CONTINUATION  0x0

/* Queued messages, each framed, in one raw write of at most COALESCE_BYTES.
 * lws passes raw writes on a ws connection through as they are, and keeps
 * a copy of what the socket did not take. A message larger than one write
 * (a big room's presence state) goes out as fragments, one a write, so
 * that copy stays under COALESCE_BYTES a connection: handed to lws whole,
 * a 200 KiB presence state for each of thousands of joining members was
 * most of an instance's memory. Fragments are whole frames, so lws's own
 * control frames (a pong, a close) may come between them. */
static int write_coalesced(spark_conn *c) {
    static unsigned char buf[LWS_PRE + COALESCE_BYTES];
    unsigned char *out = buf + LWS_PRE;
    size_t n = 0;
    for (spark_frame *f = queue_head(c); f; f = queue_head(c)) {
        if (f->framed) { /* a round, framed already: it fits in one write */
            if (n + f->len > COALESCE_BYTES) break;
            memcpy(out + n, spark_frame_text(f), f->len);
            n += f->len;
            sent(c);
            continue;
        }
        const char *rest = spark_frame_text(f) + c->head_sent;
        size_t left = f->len - c->head_sent;
        unsigned char op = c->head_sent ? WS_CONTINUATION : WS_TEXT;
        if (n + MAX_FRAME_HEADER + left <= COALESCE_BYTES) {
            n += spark_frame_header(out + n, WS_FIN | op, left);
            memcpy(out + n, rest, left);
            n += left;
            sent(c);
            continue;
        }
        if (n == 0) { /* larger than a write: its next fragment */
            size_t part = COALESCE_BYTES - MAX_FRAME_HEADER;
            n += spark_frame_header(out, op, part);
            memcpy(out + n, rest, part);
            n += part;
            c->head_sent += part;
        }
        break; /* the rest goes in the next write */
    }
    spark_metric_add(SPARK_M_WS_WRITES, 1);
    return lws_write(c->wsi, out, n, LWS_WRITE_RAW) < (int)n ? -1 : 0;
}

/* Writes the head of the queue: one message, or as many as one write
 * carries. Asks for WRITEABLE if more is left. */
static int write_queue(spark_conn *c) {
    spark_frame *f = queue_head(c);
    if (!f) return 0;
    if (!queue_second(c) && f->framed) {
        /* A round alone: its bytes are the write. */
        if (lws_write(c->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_RAW) < (int)f->len) return -1;
        spark_metric_add(SPARK_M_WS_WRITES, 1);
        sent(c);
    } else if (!queue_second(c) && !c->head_sent && f->len + MAX_FRAME_HEADER <= COALESCE_BYTES) {
        /* One message alone: lws writes the header into the headroom in
         * front of the text, the same bytes for every holder of a shared
         * frame, and nothing is copied. */
        if (lws_write(c->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) < (int)f->len) return -1;
        spark_metric_add(SPARK_M_WS_WRITES, 1);
        sent(c);
    } else if (write_coalesced(c)) {
        return -1;
    }
    /* Read while lws's object is still in cache from the write. */
    c->lws_holds = lws_partial_buffered(c->wsi);
    if (c->lws_holds) spark_metric_add(SPARK_M_WS_WRITES_PARTIAL, 1);
    if (c->head) lws_callback_on_writable(c->wsi);
    return 0;
}

static int on_writeable(spark_conn *c) {
    c->lws_holds = false; /* lws calls WRITEABLE only once it has sent all it held */
    if (c->kill || (c->closing && !c->head)) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)close_reason(c), strlen(close_reason(c)));
        return -1;
    }
    if (write_queue(c)) return -1;
    if (c->closing) lws_callback_on_writable(c->wsi);
    return 0;
}

/* A hint, never a read: a prefetch of an address does not fault. lws's
 * connection object is opaque; the fields lws_write() reads are in its
 * first WSI_HOT_BYTES (lws 4.1), and the wsi pointer is read from `c`,
 * which the previous pass of this loop asked for. */
#define WSI_HOT_BYTES 1024
static void prefetch_conn(const spark_conn *c, const spark_conn *after) {
    for (size_t at = 0; c->wsi && at < WSI_HOT_BYTES; at += 64)
        __builtin_prefetch((const char *)c->wsi + at);
    for (size_t at = 0; after && at < sizeof *after; at += 64)
        __builtin_prefetch((const char *)after + at);
}

/* Writes what this turn of the loop queued, before the loop waits again:
 * a timer due now, which lws runs before it polls, whether the messages
 * came in a socket's callback (the turn before) or in another timer (just
 * before). The socket nearly always has room: asking lws for WRITEABLE
 * instead would cost every member of a fan-out another turn of the loop
 * and, on an epoll loop, two changes of its interest set. A connection
 * that is closing, or whose last write lws still holds part of
 * (lws_holds: its socket was full), waits for WRITEABLE as before. A
 * socket that fills up with this write leaves its rest with lws, at most
 * COALESCE_BYTES, as a write from WRITEABLE would. (lws may also hold
 * part of a control frame of its own, a pong or a close: a write then
 * goes behind it in lws's buffer, in order.)
 *
 * A round writes to hundreds or thousands of connections, and each send
 * runs the kernel's TCP path, which evicts what the loop had in cache: so
 * the next connection is fetched ahead while this one is sent. */
static void flush_due(lws_sorted_usec_list_t *sul) {
    spark_channels *channels = lws_container_of(sul, spark_channels, flush);
    EACH_LINK(d, &channels->to_flush) {
        spark_conn *c = lws_container_of(d, spark_conn, flush_link);
        if (d_next)
            prefetch_conn(lws_container_of(d_next, spark_conn, flush_link),
                          d_next->next ? lws_container_of(d_next->next, spark_conn, flush_link)
                                       : NULL);
        lws_dll2_remove(d);
        if (!c->wsi) continue;
        if (c->closing || c->kill || c->peer_closed || c->lws_holds) {
            lws_callback_on_writable(c->wsi);
        } else if (write_queue(c)) {
            /* The socket failed: lws closes it on its next turn. */
            drop_queue(c);
            c->closing = true;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
}

static void flush_soon(spark_conn *c) {
    spark_channels *channels = c->owner;
    if (!channels->to_flush.count) {
        lws_sul_schedule(lws_get_context(c->wsi), 0, &channels->flush, flush_due, 0);
        spark_poll_epoll_due_now();
    }
    lws_dll2_add_tail(&c->flush_link, &channels->to_flush);
}

/* ---- the upgrade -------------------------------------------------------- */

static int refuse(struct lws *wsi, int status, const char *why, const char *path) {
    char q[2200];
    spark_log(SPARK_LOG_DEBUG, "ws.refused", why, "status=%d path=%s", status,
              spark_log_value(q, sizeof q, path));
    lws_return_http_status(wsi, (unsigned)status, NULL);
    return -1;
}

/* Copies the query arguments ("a=1", "b=2"), as lws decoded them, into
 * a buffer of their size: most connections have none or a short one. */
static void copy_query(spark_conn *c, struct lws *wsi) {
    char all[MAX_QUERY_BYTES], arg[512];
    size_t len = 0;
    for (int i = 0; lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
         i++) {
        size_t n = strlen(arg) + 1;
        if (len + n > sizeof all) break;
        memcpy(all + len, arg, n);
        len += n;
    }
    if (len && (c->query = malloc(len))) {
        memcpy(c->query, all, len);
        c->query_len = len;
    }
}

static void free_conn(spark_conn *c);

/* Who is connecting. A bad token is refused with 401 before the handshake
 * when the client can read it; a browser (it sends an Origin) cannot, so it
 * is accepted and then closed with 4401 and the reason. A cookie-borne
 * token from a foreign Origin is refused outright. Returns -1 to refuse. */
static int authenticate(spark_channels *channels, spark_conn *c, struct lws *wsi,
                        const char *path) {
    spark_token_status st = spark_sessions_identify(channels->sessions, wsi, &c->identity);
    if (st != SPARK_TOKEN_OK) {
        if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
            return refuse(wsi, 401, spark_token_status_reason(st), path);
        c->refused = spark_token_status_reason(st);
    } else if (c->identity.via == SPARK_VIA_COOKIE &&
               !spark_sessions_origin_allowed(channels->sessions, wsi)) {
        char q1[2200], q2[600];
        spark_log(SPARK_LOG_WARN, "auth.bad_origin", "cookie-authenticated upgrade refused",
                  "path=%s sub=%s", spark_log_value(q1, sizeof q1, path),
                  spark_log_value(q2, sizeof q2, c->identity.claims.sub));
        return refuse(wsi, 403, "origin not allowed", path);
    }
    return 0;
}

/* origin, user id and name, then the route's parameters: one allocation
 * that the connection's const char pointers point into. */
static int keep_names(spark_conn *c, const spark_route_params *params) {
    char origin[96], anon[160];
    const char *user_id = anon, *user_name = "anonymous";
    snprintf(origin, sizeof origin, "%s/%" PRIu64, c->owner->cfg->instance, c->serial);
    if (c->identity.authenticated) {
        user_id = c->identity.claims.sub;
        user_name = c->identity.claims.name;
    } else {
        snprintf(anon, sizeof anon, "anon-%s-%" PRIu64, c->owner->cfg->instance, c->serial);
    }
    size_t size = strlen(origin) + strlen(user_id) + strlen(user_name) + 3;
    for (size_t i = 0; i < params->count; i++)
        size += strlen(params->param[i].name) + strlen(params->param[i].value) + 2;
    char *p = c->names = malloc(size);
    if (!p) return -1;
    const char *parts[3] = {origin, user_id, user_name},
               **fields[3] = {&c->origin, &c->user_id, &c->user_name};
    for (int i = 0; i < 3; i++) {
        *fields[i] = p;
        p = stpcpy(p, parts[i]) + 1;
    }
    c->params = p;
    c->nparams = (unsigned)params->count;
    for (size_t i = 0; i < params->count; i++) {
        p = stpcpy(p, params->param[i].name) + 1;
        p = stpcpy(p, params->param[i].value) + 1;
    }
    return 0;
}

static spark_conn *accept_upgrade(spark_channels *channels, struct lws *wsi) {
    char path[1024];
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0) {
        refuse(wsi, 400, "no path", "");
        return NULL;
    }
    spark_route_params params;
    size_t index = 0;
    const spark_channel *channel = find_channel(path, &params, &index);
    if (!channel) {
        refuse(wsi, 404, "no channel on this route", path);
        return NULL;
    }
    /* Handshakes in progress count too, or a burst could pass the limit. */
    if (channels->refusing ||
        channels->conns.count + channels->upgrading >= (size_t)channels->cfg->max_connections) {
        spark_metric_add(SPARK_M_WS_REFUSED, 1);
        refuse(wsi, 503, channels->refusing ? "stopping" : "connection limit reached", path);
        return NULL;
    }
    spark_conn *c = calloc(1, sizeof *c);
    if (!c) {
        refuse(wsi, 500, "out of memory", path);
        return NULL;
    }
    c->owner = channels;
    c->channel = channel;
    c->channel_index = index;
    c->serial = ++channels->next_serial;
    copy_query(c, wsi);
    if (authenticate(channels, c, wsi, path)) {
        free_conn(c);
        return NULL;
    }
    if (keep_names(c, &params)) {
        free_conn(c);
        refuse(wsi, 500, "out of memory", path);
        return NULL;
    }
    c->peer = (spark_room_peer){.deliver_frame = deliver_shared,
                                .origin = c->origin,
                                .serial = c->serial,
                                .user_id = c->user_id,
                                .user_name = c->user_name,
                                .enveloped = is_enveloped(channel),
                                .takes_rounds = true};
    c->tokens = channels->cfg->rate_limit;
    c->refilled_at = lws_now_usecs();
    c->close_code = CLOSE_ABNORMAL;
    c->upgrading = true;
    channels->upgrading++;
    return c;
}

static void upgrade_done(spark_conn *c) {
    if (!c->upgrading) return;
    c->upgrading = false;
    c->owner->upgrading--;
}

static void free_conn(spark_conn *c) {
    upgrade_done(c);
    if (!lws_dll2_is_detached(&c->flush_link)) lws_dll2_remove(&c->flush_link);
    lws_sul_cancel(&c->expiry);
    spark_identity_clear(&c->identity);
    free(c->names);
    free(c->close_reason);
    free(c->query);
    drop_queue(c);
    free(c->rx);
    if (c->release) c->release(c->data);
    free(c);
}

/* A token that expires without a refresh ends its connection, after the
 * configured grace. */
static void on_token_expired(lws_sorted_usec_list_t *sul) {
    spark_conn *c = lws_container_of(sul, spark_conn, expiry);
    char q[600];
    spark_log(SPARK_LOG_INFO, "auth.expired", "token expired; closing", "conn=%" PRIu64 " sub=%s",
              c->serial, spark_log_value(q, sizeof q, c->user_id));
    request_close(c, CLOSE_AUTH, "token expired");
}

static void schedule_expiry(spark_conn *c) {
    if (!c->identity.authenticated) return;
    int64_t left = c->identity.claims.exp - (int64_t)time(NULL);
    if (left > MAX_TOKEN_WAIT_S) left = MAX_TOKEN_WAIT_S; /* a far exp must not overflow */
    lws_usec_t us = (lws_usec_t)(left > 0 ? left : 0) * LWS_US_PER_SEC +
                    (lws_usec_t)c->owner->cfg->token_grace_ms * LWS_US_PER_MS;
    lws_sul_schedule(lws_get_context(c->wsi), 0, &c->expiry, on_token_expired, us);
}

static void on_established(spark_conn *c, struct lws *wsi) {
    upgrade_done(c);
    c->wsi = wsi;
    c->established = true;
    lws_dll2_add_tail(&c->link, &c->owner->conns);
    spark_metric_add(SPARK_M_WS_ACCEPTED, 1);
    spark_metric_add(SPARK_M_WS_CONNECTIONS, 1);
    if (c->refused) {
        /* The seed's close_with_error: a channel client is told why in a
         * frame too; a /spark client reads the close code alone. */
        if (!is_enveloped(c->channel)) spark_conn_send_error(c, "Authentication required");
        request_close(c, CLOSE_AUTH, c->refused);
        return;
    }
    c->counted = true;
    c->owner->open[c->channel_index]++;
    char q[600];
    spark_log(SPARK_LOG_DEBUG, "ws.open", NULL, "conn=%" PRIu64 " route=%s user=%s", c->serial,
              c->channel->route, spark_log_value(q, sizeof q, c->user_id));
    schedule_expiry(c);
    /* Every connection of a signed-in user hears what is sent to the user. */
    if (c->identity.authenticated) {
        char room[SPARK_TOKEN_SUB_MAX + 8];
        snprintf(room, sizeof room, "user:%s", c->user_id);
        spark_rooms_join(c->owner->rooms, &c->peer, room, SPARK_LIVE);
    }
    if (c->channel->on_connect) c->channel->on_connect(c);
}

static void on_closed(spark_conn *c) {
    spark_channels *channels = c->owner;
    lws_dll2_remove(&c->link);
    spark_metric_add(SPARK_M_WS_CONNECTIONS, -1);
    spark_log(SPARK_LOG_DEBUG, "ws.close", NULL, "conn=%" PRIu64 " code=%d", c->serial,
              c->close_code);
    c->closing = true; /* nothing more may be queued */
    c->wsi = NULL;
    if (c->counted) channels->open[c->channel_index]--;
    if (c->channel->on_close && !c->refused)
        c->channel->on_close(c, c->close_code, close_reason(c));
    EACH_LINK(d, &c->refs) {
        lws_container_of(d, spark_conn_ref, link)->conn = NULL;
        lws_dll2_remove(d);
    }
    spark_rooms_peer_gone(channels->rooms, &c->peer);
    free_conn(c);
}

/* ---- receiving ---------------------------------------------------------- */

static bool within_rate(spark_conn *c) {
    int rate = c->owner->cfg->rate_limit;
    if (rate <= 0) return true;
    lws_usec_t now = lws_now_usecs();
    c->tokens += (double)(now - c->refilled_at) * rate / LWS_US_PER_SEC;
    c->refilled_at = now;
    if (c->tokens >= rate) {
        c->tokens = rate;
        c->strikes = 0; /* a full second of calm forgives */
    }
    if (c->tokens >= 1) {
        c->tokens -= 1;
        return true;
    }
    spark_metric_add(SPARK_M_WS_RATE_LIMITED, 1);
    if (++c->strikes > (rate > 10 ? rate : 10))
        request_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded");
    else
        spark_conn_send_error(c, "Rate limit exceeded");
    return false;
}

/* {"t":"refresh","token":"..."} on any endpoint swaps in a fresh token for
 * the same user, keeping the connection, its rooms and components. */
static bool is_refresh(const char *text, size_t len) {
    static const char prefix[] = "{\"t\":\"refresh\"";
    return len >= sizeof prefix - 1 && memcmp(text, prefix, sizeof prefix - 1) == 0;
}

static void refresh(spark_conn *c, const char *text, size_t len) {
    spark_json *in = spark_json_parse(text, len);
    const char *token = spark_json_str(in, "token");
    spark_identity fresh;
    spark_token_status st = spark_sessions_verify(c->owner->sessions, token, &fresh);
    spark_json *out = spark_json_object();
    if (st != SPARK_TOKEN_OK || !spark_sessions_enabled(c->owner->sessions)) {
        spark_json_set_str(out, "t", "refresh_error");
        spark_json_set_str(out, "reason",
                           token ? spark_token_status_reason(st) : "a refresh needs a token");
    } else if (!c->identity.authenticated || strcmp(fresh.claims.sub, c->user_id) != 0) {
        spark_json_set_str(out, "t", "refresh_error");
        spark_json_set_str(out, "reason", "the token is for another user");
    } else {
        spark_identity_clear(&c->identity);
        c->identity = fresh;
        memset(&fresh, 0, sizeof fresh);
        schedule_expiry(c);
        spark_json_set_str(out, "t", "refreshed");
        spark_json_set_int(out, "exp", (long long)c->identity.claims.exp);
    }
    spark_identity_clear(&fresh);
    spark_conn_send_json(c, out);
    spark_json_free(out);
    spark_json_free(in);
}

static void dispatch(spark_conn *c) {
    spark_metric_add(SPARK_M_WS_MESSAGES_IN, 1);
    if (c->closing || !within_rate(c)) return;
    if (!c->rx_binary && is_refresh(c->rx, c->rx_len)) {
        refresh(c, c->rx, c->rx_len);
        return;
    }
    if (c->rx_binary) {
        if (c->channel->on_binary)
            c->channel->on_binary(c, c->rx, c->rx_len);
        else
            request_close(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "binary messages not accepted");
        return;
    }
    if (c->channel->on_message) c->channel->on_message(c, c->rx ? c->rx : "", c->rx_len);
}

/* Returns -1 to drop the connection (an oversized message). */
static int on_receive(spark_conn *c, struct lws *wsi, const void *in, size_t len) {
    if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_binary = lws_frame_is_binary(wsi);
    }
    size_t limit = (size_t)c->owner->cfg->max_message_bytes;
    if (c->rx_len + len > limit) {
        spark_metric_add(SPARK_M_WS_TOO_LARGE, 1);
        char why[64];
        int n = snprintf(why, sizeof why, "message larger than %zu bytes", limit);
        c->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
        set_close_reason(c, why, (size_t)n);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why, (size_t)n);
        return -1;
    }
    /* The buffer grows with the message and a big one is let go after
     * use: thousands of mostly idle sockets must not each keep 64 KiB. */
    if (c->rx_len + len + 1 > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 256;
        while (cap < c->rx_len + len + 1)
            cap *= 2;
        char *rx = realloc(c->rx, cap);
        if (!rx) return -1;
        c->rx = rx;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        c->rx[c->rx_len] = '\0';
        dispatch(c);
        c->rx_len = 0;
        if (c->rx_cap > RX_KEEP_BYTES) {
            free(c->rx);
            c->rx = NULL;
            c->rx_cap = 0;
        }
    }
    return 0;
}

/* The peer's close frame: a 2-byte code, then the reason. */
static void on_peer_close(spark_conn *c, const unsigned char *in, size_t len) {
    c->peer_closed = true; /* lws answers it; nothing more goes out directly */
    c->close_code = len >= 2 ? (in[0] << 8 | in[1]) : LWS_CLOSE_STATUS_NO_STATUS;
    set_close_reason(c, (const char *)in + 2 * (len >= 2), len > 2 ? len - 2 : 0);
}

int spark_channels_callback(void *ud, struct lws *wsi, enum lws_callback_reasons reason,
                            void **slot, void *in, size_t len) {
    spark_channels *channels = ud;
    spark_conn *c = *slot;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        *slot = accept_upgrade(channels, wsi);
        return *slot ? 0 : -1;
    case LWS_CALLBACK_ESTABLISHED:
        if (!c) return -1;
        on_established(c, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return c ? on_receive(c, wsi, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? on_writeable(c) : -1;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c) on_peer_close(c, in, len);
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c && c->established)
            on_closed(c);
        else if (c)
            free_conn(c);
        *slot = NULL;
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /* An upgrade accepted by the filter whose handshake never finished. */
        if (c && !c->established) free_conn(c);
        *slot = NULL;
        return 0;
    default:
        return 0;
    }
}

void spark_channels_close_all(spark_channels *channels, int code, const char *reason) {
    channels->refusing = true;
    EACH_LINK(d, &channels->conns) {
        request_close(lws_container_of(d, spark_conn, link), code, reason);
    }
}

void spark_channels_free(spark_channels *channels) {
    if (!channels) return;
    spark_rooms_peer_gone(channels->rooms, &channels->all_plain);
    spark_rooms_peer_gone(channels->rooms, &channels->all_enveloped);
    if (serving == channels) serving = NULL;
    lws_sul_cancel(&channels->flush);
    free(channels);
}

/* ---- for the rooms module ------------------------------------------------ */

spark_room_peer *spark_conn_peer(spark_conn *c) { return &c->peer; }

void spark_channels_set_components(spark_channels *channels, spark_components *components) {
    channels->components = components;
}

spark_components *spark_conn_components(const spark_conn *c) { return c->owner->components; }

bool spark_conn_closing(const spark_conn *c) { return !c || c->closing; }

void spark_conn_ref_hold(spark_conn_ref *ref, spark_conn *c) {
    ref->conn = c;
    if (c) lws_dll2_add_tail(&ref->link, &c->refs);
}

void spark_conn_ref_drop(spark_conn_ref *ref) {
    lws_dll2_remove(&ref->link);
    ref->conn = NULL;
}

/* ---- the public connection API ------------------------------------------ */

SPARK_API const char *spark_conn_param(const spark_conn *c, const char *name) {
    if (!c || !name) return NULL;
    const char *p = c->params;
    for (unsigned i = 0; i < c->nparams; i++) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, name) == 0) return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

SPARK_API const char *spark_conn_query(const spark_conn *c, const char *name) {
    if (!c || !name) return NULL;
    size_t n = strlen(name);
    for (size_t at = 0; at < c->query_len; at += strlen(c->query + at) + 1) {
        const char *arg = c->query + at;
        if (strncmp(arg, name, n) == 0 && arg[n] == '=') return arg + n + 1;
    }
    return NULL;
}

SPARK_API long long spark_conn_since(const spark_conn *c) {
    const char *s = spark_conn_query(c, "since");
    if (!s || *s < '0' || *s > '9') return SPARK_LIVE;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    return errno || *end ? SPARK_LIVE : v;
}

SPARK_API const char *spark_conn_user_id(const spark_conn *c) { return c ? c->user_id : NULL; }
SPARK_API const char *spark_conn_user_name(const spark_conn *c) { return c ? c->user_name : NULL; }

SPARK_API bool spark_conn_can(const spark_conn *c, const char *scope) {
    return c && scope && spark_identity_can(c->owner->sessions, &c->identity, scope);
}

SPARK_API const char *spark_timestamp(char out[SPARK_TIMESTAMP_LEN]) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, SPARK_TIMESTAMP_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, SPARK_TIMESTAMP_LEN - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return out;
}

SPARK_API bool spark_conn_authenticated(const spark_conn *c) {
    return c && c->identity.authenticated;
}

SPARK_API size_t spark_conn_count(const spark_conn *c, const char *room) {
    if (!c) return 0;
    return room ? spark_rooms_count(c->owner->rooms, room) : c->owner->open[c->channel_index];
}

SPARK_API int spark_conn_send(spark_conn *c, const char *text, size_t len) {
    return text ? enqueue(c, text, len) : -1;
}

SPARK_API int spark_conn_send_json(spark_conn *c, spark_json *json) {
    size_t len;
    const char *text = spark_json_text(json, &len);
    return enqueue(c, text, len);
}

SPARK_API int spark_conn_send_error(spark_conn *c, const char *message) {
    spark_json *json = spark_json_object();
    spark_json_set_str(json, "type", "error");
    spark_json_set_str(json, "message", message);
    int r = spark_conn_send_json(c, json);
    spark_json_free(json);
    return r;
}

SPARK_API void spark_conn_close(spark_conn *c, int code, const char *reason) {
    if (c) request_close(c, code, reason);
}

SPARK_API void spark_conn_set_data(spark_conn *c, void *data, void (*release)(void *data)) {
    if (!c) return;
    c->data = data;
    c->release = release;
}

SPARK_API void *spark_conn_data(const spark_conn *c) { return c ? c->data : NULL; }

/* ---- rooms, through the rooms module ------------------------------------ */

/* Rooms the runtime gives a meaning to. "spark:..." are its own (ALL_ROOM).
 * "user:<id>" carries one user's private messages (spark_send_user), so
 * a channel that names its room after a route parameter cannot hand them
 * to whoever types /route/user:alice: only that user, or a connection
 * holding the scope "user:<id>", may read it. */
static bool may_read(const spark_conn *c, const char *room) {
    if (!room || strncmp(room, "spark:", 6) == 0) return false;
    if (strncmp(room, "user:", 5) == 0)
        return strcmp(room + 5, c->user_id) == 0 || spark_conn_can(c, room);
    return true;
}

static bool may_write(const char *room) { return room && strncmp(room, "spark:", 6) != 0; }

SPARK_API int spark_conn_join(spark_conn *c, const char *room, long long since) {
    if (!c || c->closing || !may_read(c, room)) return -1;
    return spark_rooms_join(c->owner->rooms, &c->peer, room, since);
}

SPARK_API int spark_conn_leave(spark_conn *c, const char *room) {
    return c ? spark_rooms_leave(c->owner->rooms, &c->peer, room) : -1;
}

SPARK_API int spark_conn_track(spark_conn *c, const char *room, const char *meta_json) {
    if (!c || c->closing || !may_read(c, room)) return -1;
    return spark_rooms_track(c->owner->rooms, &c->peer, room, meta_json);
}

SPARK_API int spark_broadcast_kind(spark_conn *from, const char *room, const char *kind,
                                   const char *json, unsigned flags) {
    if (!from || !may_write(room)) return -1;
    return spark_rooms_post(from->owner->rooms, &from->peer, room, kind, json, flags);
}

SPARK_API int spark_broadcast(spark_conn *from, const char *room, const char *json,
                              unsigned flags) {
    return spark_broadcast_kind(from, room, "message", json, flags);
}

SPARK_API int spark_broadcast_all(const char *json) {
    return serving ? spark_rooms_post(serving->rooms, NULL, ALL_ROOM, "message", json, 0) : -1;
}

SPARK_API int spark_conn_history(spark_conn *c, const char *room, long long before, int limit) {
    if (!c || c->closing || limit < 1 || limit > SPARK_HISTORY_MAX || !may_read(c, room)) return -1;
    return spark_rooms_history(c->owner->rooms, &c->peer, room, before, limit);
}

SPARK_API int spark_send_user(spark_conn *from, const char *user_id, const char *json) {
    char room[300];
    if (!user_id || snprintf(room, sizeof room, "user:%s", user_id) >= 256) return -1;
    return spark_broadcast(from, room, json, 0);
}
