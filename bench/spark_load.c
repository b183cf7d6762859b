/*
 * spark_load.c - load generator for sparkd: one process, one libwebsockets
 * client context, thousands of WebSocket connections on loopback.
 *
 * Scenarios (see --help and docs/benchmarks.md):
 *   fanout  one chat room, members split across instances A and B; senders on
 *           A post chat messages at a fixed rate; every member times each
 *           delivery against the send time carried in the message text.
 *   idle    N connections to instance A that say nothing; the time to open
 *           them all and the instance's RSS per connection (/proc/PID/status).
 *   events  senders on A send events to shared components (/spark protocol);
 *           observers on B (and the senders themselves on A) time each event
 *           until a patch carrying its version arrives; a series of rates.
 *
 * Connections use either libwebsockets' client or our own (--client; see
 * "our own WebSocket client" for why fanout uses its own by default); both
 * feed the same handlers, so the figures mean the same.
 *
 * Times are CLOCK_MONOTONIC in one process, so sender and receiver clocks
 * agree. Each send is timed from the moment it was scheduled, not from when
 * the socket took it, so a client that falls behind shows up as latency.
 */
#include <libwebsockets.h>

#include <json-c/json.h>

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_RX_BYTES    (1024 * 1024) /* larger messages are counted, not parsed */
#define MAX_STEPS       16
#define FANOUT_MARKER   "bench#"
#define US_PER_SEC      1000000LL
#define QUIET_SETTLE_US (500 * 1000LL)

/* ---- options ------------------------------------------------------------- */

typedef enum { SC_FANOUT, SC_IDLE, SC_EVENTS } scenario_kind;

typedef struct {
    scenario_kind scenario;
    const char *host;
    int port_a, port_b;
    int clients; /* fanout: members; idle: connections; events: components */
    double rate; /* fanout: messages/s */
    double rates[MAX_STEPS];
    int nrates;      /* events: target events/s, one step each */
    double duration; /* measured seconds (per step for events) */
    double warmup;
    double timeout;  /* hard bound on the whole run */
    double settle;   /* most seconds to wait for joins to quiet down */
    double hold;     /* idle: seconds held open before RSS is read */
    double drain;    /* most seconds to wait for the last deliveries */
    int concurrency; /* handshakes in flight */
    int senders;     /* fanout */
    int observers;   /* events: per component, on B */
    const char *room;
    const char *path; /* idle: path template, {i} is the connection index */
    const char *type, *event, *event_data;
    double max_p99_ms;  /* events: a step is sustained under this p99 */
    int ready_on_frame; /* idle: ready at the first frame (1), when open (0), -1 = by path */
    int pid_a, pid_b;
    const char *token;
    char **tokens;
    int ntokens;
    const char *json_path;
    double ceiling; /* events: pgbench transactions/s from the same run */
    bool quiet;
    int client; /* -1: by scenario, 0: lws, 1: our own */
    bool own_client;
} options;

static options opt = {
    .scenario = SC_FANOUT,
    .host = "127.0.0.1",
    .port_a = 8080,
    .port_b = 8081,
    .clients = -1,
    .rate = 10,
    .duration = 20,
    .warmup = 5,
    .timeout = 300,
    .settle = 120,
    .hold = 5,
    .drain = 5,
    .concurrency = 200,
    .senders = 1,
    .observers = 1,
    .room = "bench",
    .path = "/chat/idle-{i}",
    .type = "counter",
    .event = "increment",
    .event_data = "{}",
    .max_p99_ms = 100,
    .ready_on_frame = -1,
    .client = -1,
};

static const char *scenario_name(scenario_kind s) {
    return s == SC_FANOUT ? "fanout" : s == SC_IDLE ? "idle" : "events";
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: spark_load SCENARIO [options]\n"
            "\n"
            "Load generator for two sparkd instances (A and B) on loopback.\n"
            "\n"
            "Scenarios:\n"
            "  fanout   one chat room (/chat/ROOM), --clients members split across A and B;\n"
            "           --senders on A post --rate messages/s; delivery latency per receiver\n"
            "           (remote = members on B, local = members on A), and of each\n"
            "           message's first and last delivery; deliveries/s\n"
            "  idle     --clients connections to A (--path); time to open them all and A's\n"
            "           RSS per connection (needs --pid-a)\n"
            "  events   --clients components TYPE:bench-K, one sender each on A and\n"
            "           --observers on B (/spark protocol); event -> patch latency at each of\n"
            "           --rates; the highest rate sustained\n"
            "\n"
            "Options:\n"
            "  --host ADDR           server address (default 127.0.0.1; loopback only)\n"
            "  --port-a N, --port-b N  instance ports (default 8080, 8081)\n"
            "  --clients N           members / connections / components (default 1000 / 1000 / "
            "20)\n"
            "  --rate K              fanout: messages per second (default 10)\n"
            "  --rates R1,R2,...     events: target events per second, one step each\n"
            "                        (default 250,500,1000,2000)\n"
            "  --duration S          measured seconds (per step for events; default 20)\n"
            "  --warmup S            seconds of traffic before measuring (default 5)\n"
            "  --drain S             most seconds to wait for late deliveries (default 5)\n"
            "  --settle S            most seconds to wait for joins to quiet (default 120)\n"
            "  --hold S              idle: seconds to hold before reading RSS (default 5)\n"
            "  --timeout S           hard bound on the whole run (default 300)\n"
            "  --concurrency N       handshakes in flight at once (default 200)\n"
            "  --senders N           fanout: sending members on A (default 1)\n"
            "  --observers N         events: observers per component on B (default 1)\n"
            "  --room NAME           fanout: chat room (default bench)\n"
            "  --path TEMPLATE       idle: path, {i} = connection index (default "
            "/chat/idle-{i})\n"
            "  --ready open|frame    idle: a connection counts as ready once open, or once\n"
            "                        its first frame arrives (default: frame for /chat/ paths)\n"
            "  --type T, --event E, --event-data JSON\n"
            "                        events: component type, event name and data\n"
            "                        (default counter, increment, {})\n"
            "  --max-p99 MS          events: p99 bound of a sustained step (default 100)\n"
            "  --pid-a PID, --pid-b PID  sparkd processes whose RSS to report\n"
            "  --token TOKEN         bearer token for every connection (or SPARK_TOKEN)\n"
            "  --token-file FILE     one token per line, used round-robin\n"
            "  --ceiling TPS         events: pgbench transactions/s to compare against\n"
            "  --json FILE           write the results as JSON\n"
            "  --client own|lws      WebSocket client: our own (epoll, whole frames; the\n"
            "                        default for fanout) or libwebsockets' (the default\n"
            "                        for idle and events)\n"
            "  --quiet               no progress lines on stderr\n"
            "  --help                this text\n");
}

/* ---- time and samples ---------------------------------------------------- */

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

typedef struct {
    uint32_t *v;
    size_t n, cap;
    bool sorted;
} samples;

static void samples_add(samples *s, int64_t us) {
    if (us < 0) us = 0;
    if (us > UINT32_MAX) us = UINT32_MAX;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) return;
        s->v = v, s->cap = cap;
    }
    s->v[s->n++] = (uint32_t)us;
    s->sorted = false;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile in milliseconds (nearest rank), or -1 without samples. */
static double pct_ms(samples *s, double q) {
    if (!s->n) return -1;
    if (!s->sorted) qsort(s->v, s->n, sizeof *s->v, cmp_u32), s->sorted = true;
    size_t rank = (size_t)(q * (double)s->n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > s->n) rank = s->n;
    return s->v[rank - 1] / 1000.0;
}

static double mean_ms(const samples *s) {
    if (!s->n) return -1;
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->v[i];
    return sum / (double)s->n / 1000.0;
}

static json_object *samples_json(samples *s) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "n", json_object_new_int64((int64_t)s->n));
    if (s->n) {
        json_object_object_add(o, "p50_ms", json_object_new_double(pct_ms(s, 0.50)));
        json_object_object_add(o, "p95_ms", json_object_new_double(pct_ms(s, 0.95)));
        json_object_object_add(o, "p99_ms", json_object_new_double(pct_ms(s, 0.99)));
        json_object_object_add(o, "max_ms", json_object_new_double(pct_ms(s, 1.0)));
        json_object_object_add(o, "mean_ms", json_object_new_double(mean_ms(s)));
    }
    return o;
}

static void print_row(const char *name, samples *s) {
    if (!s->n) {
        printf("  %-22s %9s\n", name, "0");
        return;
    }
    printf("  %-22s %9zu %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, s->n, pct_ms(s, 0.5),
           pct_ms(s, 0.95), pct_ms(s, 0.99), pct_ms(s, 1.0), mean_ms(s));
}

static void print_header(void) {
    printf("  %-22s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "n", "p50", "p95", "p99", "max",
           "mean");
}

/* ---- connections --------------------------------------------------------- */

typedef struct outmsg {
    struct outmsg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
} outmsg;

typedef enum { C_NEW, C_CONNECTING, C_OPEN, C_CLOSED, C_FAILED } conn_state;
typedef enum { R_MEMBER, R_SENDER, R_OBSERVER } conn_role;

typedef struct conn {
    struct lws *wsi;
    int idx, inst; /* inst: 0 = A, 1 = B */
    conn_role role;
    conn_state state;
    bool ready, closing;
    char path[300];
    outmsg *qhead, *qtail;
    size_t qlen;
    char *rx;
    size_t rxlen, rxcap;
    bool rx_over;
    long long last_msg; /* fanout: last message id seen */
    int comp;           /* events: component index */
    long long cursor;   /* events: events of comp seen (version - base) */
    /* Our own client ("our own WebSocket client", below), not lws: */
    int fd;              /* our socket, or -1 (lws has the connection, or none) */
    bool requested;      /* connected, and the upgrade request queued */
    bool upgraded;       /* the server's 101 has been read */
    bool want_out;       /* EPOLLOUT asked for: output waits */
    bool in_msg;         /* a message's first frame came, not its last */
    bool skip_fin;       /* the frame being skipped ends its message */
    uint64_t skip;       /* payload bytes of an oversized frame to skip */
    unsigned char *pend; /* bytes read, not yet a whole frame */
    size_t pendlen, pendcap;
    unsigned char *out; /* bytes not yet taken by the socket */
    size_t outlen, outcap;
    int64_t connect_t;
} conn;

/* ---- fanout state ---------------------------------------------------------- */

typedef struct {
    long long total, warm; /* message ids [warm, total) are measured */
    long long sent;
    int64_t start;        /* schedule of id k: start + k / rate */
    uint32_t *deliveries; /* per message id */
    /* Per message id, the latency of its first and its last delivery: the
     * first tells the time before a round's sends begin, the last when the
     * round ended; UINT32_MAX and 0 until one arrives. */
    uint32_t *first_us, *last_us;
    samples remote, local, all;
    long long dups, stray;
    int64_t measure_start, measure_end;
    /* CPU (user + system, clock ticks) of A, B and the generator itself
     * when the measured window opened and when its last message had reached
     * every member: [0] at the start, [1] at the end; -1 unknown. */
    long long cpu_a[2], cpu_b[2], cpu_self[2];
    int64_t cpu_t[2];
    bool cpu_started;
} fanout_state;

/* ---- events state ---------------------------------------------------------- */

typedef struct {
    int comp;
    int step;
    bool measured, acked;
    int64_t t;
    uint16_t seen; /* observers (on B) that saw its version */
} event_rec;

typedef struct {
    long long base; /* version at the first render, -1 before */
    long long sent; /* events sent: versions base+1 .. base+sent */
    long long *idx; /* k (1-based) -> index in events[] */
    size_t cap;
    int sender; /* conn index */
} component;

typedef struct {
    double rate;
    int64_t start, measure_start, measure_end, drain_end;
    long long total, warm, sent;
    long long acks_in_window, acked, errors;
    samples remote, local, ack;
    int64_t worst, worst_due; /* the slowest patch on B, and when its event was due */
    long long missing;
    bool sustained;
} step_state;

typedef struct {
    component *comps;
    event_rec *events;
    size_t nevents, cap;
    step_state steps[MAX_STEPS];
    int step;
    long long next_comp;
    char first_error[200];
} events_state;

/* ---- the run --------------------------------------------------------------- */

typedef enum { P_CONNECT, P_SETTLE, P_SEND, P_DRAIN, P_HOLD, P_DONE } phase;

static struct {
    struct lws_context *ctx;
    conn *conns;
    int nconns, next_connect, inflight;
    int opened, failed, ready, closed;
    long long closes[5000 + 1]; /* by close code; [0] = unknown */
    char first_failure[200];
    phase phase;
    int64_t t0, deadline, connect_start, all_open, all_ready, phase_start, last_rx;
    int64_t own_checked;          /* when the own client's handshakes were last checked */
    long long turns, turn_events; /* our own client's loop: its turns, the events served */
    long long frames_rx, bytes_rx, frames_tx, parse_errors;
    bool timed_out;
    long rss_a0, rss_b0, rss_a1, rss_b1, hwm_a1;
    volatile sig_atomic_t interrupted;
    fanout_state f;
    events_state e;
} g;

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...) {
    if (opt.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spark_load: [%6.1fs] ", (double)(now_us() - g.t0) / 1e6);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* /proc/PID/<file> of a process, or of this one when pid <= 0. */
static FILE *proc_open(int pid, const char *file) {
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    else
        snprintf(path, sizeof path, "/proc/self/%s", file);
    return fopen(path, "r");
}

/* VmRSS or VmHWM of a process in KiB, or -1. */
static long proc_kib(int pid, const char *field) {
    char line[256];
    size_t flen = strlen(field);
    FILE *f = proc_open(pid, "status");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kib = strtol(line + flen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* utime + stime of a process (or of this one, pid <= 0) in clock ticks,
 * from /proc/PID/stat; -1 when unreadable. */
static long long proc_cpu_ticks(int pid) {
    char buf[1024];
    FILE *f = proc_open(pid, "stat");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces: fields count from after its ')'.
     * utime and stime are fields 14 and 15, the 12th and 13th after it. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p++;
    for (int field = 3; field < 14 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p) return -1;
    char *end;
    long long utime = strtoll(p, &end, 10), stime = strtoll(end, NULL, 10);
    return utime + stime;
}

static void sample_cpu(int at) {
    g.f.cpu_a[at] = proc_cpu_ticks(opt.pid_a);
    g.f.cpu_b[at] = opt.pid_b > 0 ? proc_cpu_ticks(opt.pid_b) : -1;
    g.f.cpu_self[at] = proc_cpu_ticks(0);
    g.f.cpu_t[at] = now_us();
}

static const char *token_for(int idx) {
    if (opt.ntokens) return opt.tokens[idx % opt.ntokens];
    return opt.token;
}

static int own_frame(conn *c, int opcode, const void *payload, size_t len);

static int conn_send(conn *c, const char *text, size_t len) {
    if (c->state == C_OPEN && c->fd >= 0) return own_frame(c, 1, text, len);
    if (c->state != C_OPEN || !c->wsi) return -1;
    outmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) return -1;
    m->next = NULL;
    m->len = len;
    memcpy(m->buf + LWS_PRE, text, len);
    if (c->qtail)
        c->qtail->next = m;
    else
        c->qhead = m;
    c->qtail = m;
    c->qlen++;
    lws_callback_on_writable(c->wsi);
    return 0;
}

static void conn_free_queue(conn *c) {
    while (c->qhead) {
        outmsg *m = c->qhead;
        c->qhead = m->next;
        free(m);
    }
    c->qtail = NULL;
    c->qlen = 0;
}

static void mark_ready(conn *c) {
    if (c->ready) return;
    c->ready = true;
    g.ready++;
    if (g.ready + g.failed + g.closed >= g.nconns && !g.all_ready) g.all_ready = now_us();
}

/* ---- fanout messages ------------------------------------------------------- */

static void fanout_send(long long id) {
    fanout_state *f = &g.f;
    int64_t t = f->start + (int64_t)((double)id * US_PER_SEC / opt.rate);
    int sender = (int)(id % opt.senders) * 2; /* even indexes are on A */
    char text[160];
    /* The due time has a fixed width: a message's length (and so the bytes
     * every member receives) must not depend on how long the clock has run. */
    int n = snprintf(text, sizeof text,
                     "{\"action\":\"chat\",\"message\":\"" FANOUT_MARKER "%lld#%019" PRId64 "#\"}",
                     id, t);
    if (conn_send(&g.conns[sender], text, (size_t)n) == 0) g.frames_tx++;
}

#define PRESENCE_STATE "{\"type\":\"presence_state\""

/* A member is live at its first room message (it has "seq"), or at its
 * presence state: the instance answers the member's join query before its
 * presence query (one connection, in order), so the state comes to a
 * member that is live already. In a crowded room (SPARK_CROWDED_ROOM) the
 * last members to join get no room message until the first chat. */
static bool live_frame(const char *msg, size_t len) {
    return (len >= sizeof PRESENCE_STATE - 1 &&
            memcmp(msg, PRESENCE_STATE, sizeof PRESENCE_STATE - 1) == 0) ||
           memmem(msg, len, "\"seq\":", 6);
}

/* A chat delivery: {"seq":..,"type":"chat",..,"message":"bench#ID#T#",..} */
static void fanout_receive(conn *c, const char *msg, size_t len) {
    if (!c->ready && live_frame(msg, len)) mark_ready(c);
    const char *p = memmem(msg, len, FANOUT_MARKER, sizeof FANOUT_MARKER - 1);
    if (!p) return;
    int64_t now = now_us();
    p += sizeof FANOUT_MARKER - 1;
    char *end;
    long long id = strtoll(p, &end, 10);
    if (*end != '#') {
        g.parse_errors++;
        return;
    }
    int64_t t = strtoll(end + 1, &end, 10);
    if (*end != '#') {
        g.parse_errors++;
        return;
    }
    fanout_state *f = &g.f;
    if (id < 0 || id >= f->total) {
        f->stray++;
        return;
    }
    if (id <= c->last_msg) {
        f->dups++;
        return;
    }
    c->last_msg = id;
    f->deliveries[id]++;
    if (id < f->warm) return;
    samples_add(c->inst ? &f->remote : &f->local, now - t);
    samples_add(&f->all, now - t);
    uint32_t us = now - t < 0 ? 0 : now - t > UINT32_MAX ? UINT32_MAX : (uint32_t)(now - t);
    if (us < f->first_us[id]) f->first_us[id] = us;
    if (us > f->last_us[id]) f->last_us[id] = us;
}

/* ---- events ---------------------------------------------------------------- */

static int comp_of_cid(const char *cid) {
    size_t tl = strlen(opt.type);
    if (strncmp(cid, opt.type, tl) != 0 || strncmp(cid + tl, ":bench-", 7) != 0) return -1;
    char *end;
    long k = strtol(cid + tl + 7, &end, 10);
    if (*end || k < 0 || k >= opt.clients) return -1;
    return (int)k;
}

static void events_join(conn *c) {
    char text[300];
    int n = snprintf(text, sizeof text, "{\"t\":\"join\",\"ref\":1,\"cid\":\"%s:bench-%d\"}",
                     opt.type, c->comp);
    if (conn_send(c, text, (size_t)n) == 0) g.frames_tx++;
}

static event_rec *event_new(void) {
    events_state *e = &g.e;
    if (e->nevents == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 65536;
        event_rec *v = realloc(e->events, cap * sizeof *v);
        if (!v) return NULL;
        e->events = v, e->cap = cap;
    }
    event_rec *r = &e->events[e->nevents++];
    memset(r, 0, sizeof *r);
    return r;
}

static void events_send(step_state *s, long long j) {
    events_state *e = &g.e;
    int k = (int)(e->next_comp++ % opt.clients);
    component *cp = &e->comps[k];
    conn *c = &g.conns[cp->sender];
    if (c->state != C_OPEN || cp->base < 0) return;
    event_rec *r = event_new();
    if (!r) return;
    if ((size_t)cp->sent + 2 > cp->cap) {
        size_t cap = cp->cap ? cp->cap * 2 : 1024;
        long long *v = realloc(cp->idx, cap * sizeof *v);
        if (!v) return;
        cp->idx = v, cp->cap = cap;
    }
    r->comp = k;
    r->step = e->step;
    r->measured = j >= s->warm;
    r->t = s->start + (int64_t)((double)j * US_PER_SEC / s->rate);
    cp->idx[++cp->sent] = (long long)(e->nevents - 1);
    char text[512];
    int n = snprintf(text, sizeof text,
                     "{\"t\":\"event\",\"ref\":%lld,\"cid\":\"%s:bench-%d\",\"e\":\"%s\",\"d\":%s}",
                     cp->sent + 1, opt.type, k, opt.event, opt.event_data);
    if (n > 0 && (size_t)n < sizeof text && conn_send(c, text, (size_t)n) == 0) g.frames_tx++;
}

/* A render or patch at version v reached c: every event up to v is seen. */
static void events_seen(conn *c, component *cp, long long v) {
    int64_t now = now_us();
    long long upto = v - cp->base;
    if (upto > cp->sent) upto = cp->sent;
    for (long long k = c->cursor + 1; k <= upto; k++) {
        event_rec *r = &g.e.events[cp->idx[k]];
        step_state *s = &g.e.steps[r->step];
        if (c->role == R_OBSERVER) {
            r->seen++;
            if (r->measured) samples_add(&s->remote, now - r->t);
            if (r->measured && now - r->t > s->worst) {
                s->worst = now - r->t;
                s->worst_due = r->t;
            }
        } else if (r->measured) {
            samples_add(&s->local, now - r->t);
        }
    }
    if (upto > c->cursor) c->cursor = upto;
}

static void events_receive(conn *c, const char *msg, size_t len) {
    struct json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, msg, (int)len);
    json_tokener_free(tok);
    if (!o || !json_object_is_type(o, json_type_object)) {
        g.parse_errors++;
        json_object_put(o);
        return;
    }
    json_object *jt, *jcid, *jv, *jref, *jok;
    const char *t = json_object_object_get_ex(o, "t", &jt) ? json_object_get_string(jt) : "";
    const char *cid =
        json_object_object_get_ex(o, "cid", &jcid) ? json_object_get_string(jcid) : NULL;
    int k = cid ? comp_of_cid(cid) : c->comp;
    component *cp = k >= 0 ? &g.e.comps[k] : NULL;
    if ((!strcmp(t, "render") || !strcmp(t, "patch")) && cp &&
        json_object_object_get_ex(o, "v", &jv)) {
        long long v = json_object_get_int64(jv);
        if (!strcmp(t, "render") && !c->ready) {
            if (cp->base < 0) cp->base = v;
            c->cursor = v - cp->base;
            mark_ready(c);
        } else if (c->ready) {
            events_seen(c, cp, v);
        }
    } else if (!strcmp(t, "reply") && json_object_object_get_ex(o, "ref", &jref) && cp) {
        long long ref = json_object_get_int64(jref);
        bool ok = json_object_object_get_ex(o, "ok", &jok) && json_object_get_boolean(jok);
        if (ref >= 2 && ref - 1 <= cp->sent && c->role == R_SENDER) {
            event_rec *r = &g.e.events[cp->idx[ref - 1]];
            step_state *s = &g.e.steps[r->step];
            int64_t now = now_us();
            if (ok) {
                r->acked = true;
                s->acked++;
                if (now >= s->measure_start && now < s->measure_end) s->acks_in_window++;
                if (r->measured) samples_add(&s->ack, now - r->t);
            } else {
                s->errors++;
            }
        }
        if (!ok && !g.e.first_error[0])
            snprintf(g.e.first_error, sizeof g.e.first_error, "%.*s", (int)(len < 190 ? len : 190),
                     msg);
    } else if (!strcmp(t, "error") || !strcmp(t, "redirect")) {
        if (!g.e.first_error[0])
            snprintf(g.e.first_error, sizeof g.e.first_error, "%.*s", (int)(len < 190 ? len : 190),
                     msg);
    }
    json_object_put(o);
}

/* ---- the lws callback ------------------------------------------------------ */

static void on_message(conn *c, const char *msg, size_t len) {
    g.frames_rx++;
    g.bytes_rx += (long long)len;
    g.last_rx = now_us();
    if (opt.scenario == SC_FANOUT)
        fanout_receive(c, msg, len);
    else if (opt.scenario == SC_EVENTS)
        events_receive(c, msg, len);
    else
        mark_ready(c);
}

static void conn_failed(conn *c, const char *why) {
    if (c->state != C_CONNECTING) return;
    c->state = C_FAILED;
    c->wsi = NULL;
    g.inflight--;
    g.failed++;
    if (g.opened + g.failed >= g.nconns && !g.all_open) g.all_open = now_us();
    if (!g.first_failure[0])
        snprintf(g.first_failure, sizeof g.first_failure, "%s", why && *why ? why : "unknown");
    if (g.ready + g.failed + g.closed >= g.nconns && !g.all_ready) g.all_ready = now_us();
}

/* The handshake is done: lws's and our own client alike. */
static void conn_opened(conn *c) {
    c->state = C_OPEN;
    g.inflight--;
    g.opened++;
    if (g.opened + g.failed >= g.nconns) g.all_open = now_us();
    if (opt.scenario == SC_IDLE && !opt.ready_on_frame) mark_ready(c);
    if (opt.scenario == SC_EVENTS) events_join(c);
}

/* The connection is gone (by the server, or by a protocol error). */
static void conn_closed(conn *c) {
    if (c->state == C_CONNECTING) {
        conn_failed(c, "closed during the handshake");
        return;
    }
    if (c->state == C_OPEN) {
        c->state = C_CLOSED;
        g.closed++;
        if (!c->ready && g.ready + g.failed + g.closed >= g.nconns && !g.all_ready)
            g.all_ready = now_us();
    }
}

/* The server's close frame: its status code, if it has one. */
static void count_close(const unsigned char *payload, size_t len) {
    if (payload && len >= 2) {
        int code = payload[0] << 8 | payload[1];
        g.closes[code <= 5000 ? code : 0]++;
    } else {
        g.closes[0]++;
    }
}

/* One frame's payload (or part of it) of a message: handed over in place
 * when it is the whole message, else gathered in c->rx up to MAX_RX_BYTES;
 * a larger message is counted, not parsed. -1: out of memory. */
static int conn_rx(conn *c, const char *in, size_t len, bool first, bool final) {
    if (first) c->rxlen = 0, c->rx_over = false;
    if (final && c->rxlen == 0 && !c->rx_over) {
        on_message(c, in, len);
        return 0;
    }
    if (!c->rx_over) {
        if (c->rxlen + len > MAX_RX_BYTES) {
            c->rx_over = true;
        } else if (len) {
            if (c->rxlen + len > c->rxcap) {
                size_t cap = c->rxcap ? c->rxcap : 8192;
                while (cap < c->rxlen + len)
                    cap *= 2;
                char *rx = realloc(c->rx, cap);
                if (!rx) return -1;
                c->rx = rx, c->rxcap = cap;
            }
            memcpy(c->rx + c->rxlen, in, len);
            c->rxlen += len;
        }
    }
    if (final) {
        if (!c->rx_over)
            on_message(c, c->rx, c->rxlen);
        else
            g.frames_rx++;
        c->rxlen = 0;
        c->rx_over = false;
        /* A crowded room's presence state (about 45 bytes a member) comes
         * once to every member: its room is not kept for the small frames
         * that follow. */
        if (c->rxcap > 65536) free(c->rx), c->rx = NULL, c->rxcap = 0;
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        const char *token = c ? token_for(c->idx) : NULL;
        if (!token) break;
        unsigned char **p = in, *end = *p + len;
        char value[2048];
        int n = snprintf(value, sizeof value, "Bearer %s", token);
        if (n < 0 || (size_t)n >= sizeof value ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                         (const unsigned char *)value, n, p, end))
            return -1;
        break;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) conn_failed(c, in ? (const char *)in : NULL);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c || c->state != C_CONNECTING) break;
        c->wsi = wsi;
        conn_opened(c);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c) break;
        if (conn_rx(c, in, len, lws_is_first_fragment(wsi),
                    lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)))
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (!c) break;
        if (c->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        outmsg *m = c->qhead;
        if (!m) break;
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        if (n < (int)m->len) return -1;
        c->qhead = m->next;
        if (!c->qhead) c->qtail = NULL;
        c->qlen--;
        free(m);
        if (c->qhead) lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        count_close(c ? in : NULL, c ? len : 0);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!c) break;
        conn_closed(c);
        c->wsi = NULL;
        conn_free_queue(c);
        break;
    default:
        break;
    }
    return 0;
}

static int tick_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);

static const struct lws_protocols protocols[] = {
    {"spark-load", callback, 0, 0, 0, NULL, 0},
    {"spark-load-tick", tick_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- our own WebSocket client ------------------------------------------------
 *
 * Why not lws here: with 5,000 members a profile of this process put half
 * its CPU in poll() (lws 4.1 hands the kernel every socket on every turn of
 * its loop, and at 10 msg/s a turn finds a few of 5,000 ready) and a
 * quarter in lws's client frame parser, which takes the payload a byte at a
 * time; our own code was under 2 %. So, for the scenarios that use it
 * (--client own; fanout's default), each connection is a plain socket on
 * loopback in an epoll set of ours: the HTTP upgrade with the headers the
 * lws client sends (the same Host, Origin, Authorization and version), then
 * one read() of up to a megabyte per ready socket and whole frames parsed
 * in place. Fragmented messages, partial reads, pings and the server's
 * close are handled; anything else from the server is a protocol error that
 * closes the connection (1002), as lws does. The loop is then that epoll
 * set, with the tick's timerfd in it: the phases and the tick are the same
 * as under lws's loop.
 */

#define OWN_HANDSHAKE_MAX 8192
#define OWN_TIMEOUT_US    (30 * US_PER_SEC) /* as lws's timeout_secs below */

static int own_epfd = -1;
static struct sockaddr_storage own_addr[2]; /* A and B */
static socklen_t own_addrlen[2];
static uint64_t own_seed = 0x9e3779b97f4a7c15ULL;
/* One read lands here: a whole frame of up to MAX_RX_BYTES and what came
 * after it. A partial frame left at the end is kept in the connection. */
static unsigned char own_buf[MAX_RX_BYTES + 65536];

/* Masking keys (RFC 6455 5.3) need not be secret on loopback: xorshift. */
static uint32_t own_random(void) {
    own_seed ^= own_seed << 13;
    own_seed ^= own_seed >> 7;
    own_seed ^= own_seed << 17;
    return (uint32_t)(own_seed >> 16);
}

static int own_reserve(unsigned char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    unsigned char *b = realloc(*buf, n);
    if (!b) return -1;
    *buf = b, *cap = n;
    return 0;
}

static void own_watch(conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(own_epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Closes the socket and frees what the connection held. */
static void own_drop(conn *c) {
    if (c->fd >= 0) close(c->fd); /* leaves the epoll set with it */
    c->fd = -1;
    free(c->pend), c->pend = NULL, c->pendlen = c->pendcap = 0;
    free(c->out), c->out = NULL, c->outlen = c->outcap = 0;
    c->skip = 0, c->in_msg = c->want_out = false;
}

/* The socket failed or the server hung up without a close frame. */
static void own_lost(conn *c) {
    own_drop(c);
    conn_closed(c); /* failed, if during the handshake */
}

/* Writes what is queued; what the socket does not take waits for EPOLLOUT.
 * -1: the connection is gone. */
static int own_flush(conn *c) {
    size_t off = 0;
    while (off < c->outlen) {
        ssize_t n = send(c->fd, c->out + off, c->outlen - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else
            return -1;
    }
    memmove(c->out, c->out + off, c->outlen - off);
    c->outlen -= off;
    if ((c->outlen > 0) != c->want_out) {
        c->want_out = c->outlen > 0;
        own_watch(c, c->want_out ? EPOLLIN | EPOLLOUT : EPOLLIN);
    }
    return 0;
}

/* Queues one masked frame (a client's frames are masked) and writes it. */
static int own_frame(conn *c, int opcode, const void *payload, size_t len) {
    unsigned char head[14];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        head[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(len >> 8), head[h++] = (unsigned char)len;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            head[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t key = own_random();
    memcpy(head + h, &key, 4);
    const unsigned char *mask = head + h;
    h += 4;
    if (own_reserve(&c->out, &c->outcap, c->outlen + h + len)) return -1;
    unsigned char *o = c->out + c->outlen;
    memcpy(o, head, h);
    for (size_t i = 0; i < len; i++)
        o[h + i] = ((const unsigned char *)payload)[i] ^ mask[i & 3];
    c->outlen += h + len;
    return own_flush(c);
}

/* The connection ends here: a close frame if it was open (best effort),
 * then the socket. */
static void own_close(conn *c, int code) {
    if (c->fd < 0) return;
    if (c->upgraded && code) {
        unsigned char b[2] = {(unsigned char)(code >> 8), (unsigned char)code};
        own_frame(c, 8, b, sizeof b);
    }
    own_drop(c);
}

static void own_connect(conn *c) {
    int inst = c->inst;
    c->state = C_CONNECTING;
    c->connect_t = now_us();
    c->upgraded = c->requested = c->want_out = false;
    g.inflight++;
    c->fd = socket(own_addr[inst].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_failed(c, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if ((connect(c->fd, (struct sockaddr *)&own_addr[inst], own_addrlen[inst]) < 0 &&
         errno != EINPROGRESS) ||
        epoll_ctl(own_epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        own_drop(c);
        conn_failed(c, why);
    }
}

/* Connected: the upgrade request, as the lws client words it. */
static void own_connected(conn *c) {
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) err = errno;
    if (err) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", strerror(err));
        own_drop(c);
        conn_failed(c, why);
        return;
    }
    unsigned char nonce[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t r = own_random();
        memcpy(nonce + i, &r, 4);
    }
    char key[32];
    lws_b64_encode_string((const char *)nonce, sizeof nonce, key, sizeof key);
    const char *token = token_for(c->idx);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n"
                     "Host: %s\r\nOrigin: http://%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     c->path, opt.host, opt.host, key, token ? "authorization: Bearer " : "",
                     token ? token : "", token ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req || own_reserve(&c->out, &c->outcap, (size_t)n)) {
        own_drop(c);
        conn_failed(c, "upgrade request too long");
        return;
    }
    memcpy(c->out, req, (size_t)n);
    c->outlen = (size_t)n;
    c->requested = c->want_out = true;
    own_watch(c, EPOLLIN | EPOLLOUT);
    if (own_flush(c)) own_lost(c);
}

static void own_protocol_error(conn *c) {
    g.parse_errors++;
    own_close(c, 1002);
    conn_closed(c);
}

/* Parses the whole frames at the start of b; returns the bytes used, or -1
 * when the connection ended (closed by the server, or a protocol error). */
static long own_frames(conn *c, const unsigned char *b, size_t len) {
    size_t pos = 0;
    while (pos < len) {
        if (c->skip) { /* the rest of a frame too large to keep */
            size_t n = len - pos < c->skip ? len - pos : (size_t)c->skip;
            pos += n;
            c->skip -= n;
            if (!c->skip && c->skip_fin) conn_rx(c, "", 0, false, true);
            continue;
        }
        size_t avail = len - pos, h = 2;
        if (avail < 2) break;
        const unsigned char *f = b + pos;
        bool fin = f[0] & 0x80;
        int opcode = f[0] & 0x0f;
        uint64_t plen = f[1] & 0x7f;
        if ((f[0] & 0x70) || (f[1] & 0x80)) { /* no extensions; a server does not mask */
            own_protocol_error(c);
            return -1;
        }
        if (plen == 126) {
            if (avail < 4) break;
            plen = (uint64_t)f[2] << 8 | f[3];
            h = 4;
        } else if (plen == 127) {
            if (avail < 10) break;
            plen = 0;
            for (int i = 2; i < 10; i++)
                plen = plen << 8 | f[i];
            h = 10;
        }
        bool control = opcode & 8;
        if (control ? (!fin || plen > 125 || opcode > 10)
                    : (opcode > 2 || (opcode == 0) != c->in_msg)) {
            own_protocol_error(c);
            return -1;
        }
        if (!control && plen > MAX_RX_BYTES) { /* counted, not parsed */
            if (opcode) c->rxlen = 0;
            c->rx_over = true;
            c->in_msg = !fin;
            c->skip = plen;
            c->skip_fin = fin;
            pos += h;
            continue;
        }
        if (avail - h < plen) break;
        const unsigned char *p = f + h;
        pos += h + (size_t)plen;
        if (opcode == 8) { /* the server closes: answer, then hang up */
            count_close(p, (size_t)plen);
            own_close(c, 1000);
            conn_closed(c);
            return -1;
        } else if (opcode == 9) {
            if (own_frame(c, 10, p, (size_t)plen)) {
                own_lost(c);
                return -1;
            }
        } else if (!control) {
            c->in_msg = !fin;
            if (conn_rx(c, (const char *)p, (size_t)plen, opcode != 0, fin)) {
                own_close(c, 1011);
                conn_closed(c);
                return -1;
            }
        }
    }
    return (long)pos;
}

/* The server's answer to the upgrade, at the start of b: the bytes it
 * takes, 0 while incomplete, -1 when refused (the connection failed). */
static long own_upgrade(conn *c, const unsigned char *b, size_t len) {
    const unsigned char *end = memmem(b, len, "\r\n\r\n", 4);
    if (!end) {
        if (len < OWN_HANDSHAKE_MAX) return 0;
        own_drop(c);
        conn_failed(c, "upgrade response too long");
        return -1;
    }
    if (len < 12 || memcmp(b, "HTTP/1.1 101", 12) != 0) {
        char why[160];
        size_t line = strcspn((const char *)b, "\r");
        snprintf(why, sizeof why, "upgrade refused: %.*s", (int)(line < 100 ? line : 100), b);
        own_drop(c);
        conn_failed(c, why);
        return -1;
    }
    c->upgraded = true;
    conn_opened(c);
    return end + 4 - b;
}

/* A readable socket: what was kept from before, then one read. */
static void own_read(conn *c) {
    size_t have = c->pendlen;
    if (have) memcpy(own_buf, c->pend, have);
    ssize_t n;
    do
        n = read(c->fd, own_buf + have, sizeof own_buf - have);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) { /* the server hung up without a close frame */
        own_lost(c);
        return;
    }
    size_t len = have + (size_t)n, pos = 0;
    if (!c->upgraded) {
        long used = own_upgrade(c, own_buf, len);
        if (used <= 0) {
            if (used == 0 && !own_reserve(&c->pend, &c->pendcap, len))
                memcpy(c->pend, own_buf, len), c->pendlen = len;
            return;
        }
        pos = (size_t)used;
    }
    long used = own_frames(c, own_buf + pos, len - pos);
    if (used < 0) return;
    pos += (size_t)used;
    c->pendlen = 0;
    if (pos < len) {
        if (own_reserve(&c->pend, &c->pendcap, len - pos)) {
            own_close(c, 1011);
            conn_closed(c);
            return;
        }
        memcpy(c->pend, own_buf + pos, len - pos);
        c->pendlen = len - pos;
    } else if (c->pendcap > 65536) { /* a large frame's room, not needed now */
        free(c->pend), c->pend = NULL, c->pendcap = 0;
    }
}

static void tick_fired(void);

/* One turn of the loop: waits for the epoll set (the sockets and the
 * tick's timerfd, whose entry has no connection), then serves what is
 * ready. */
static void own_service(void) {
    struct epoll_event evs[256];
    int n = epoll_wait(own_epfd, evs, 256, -1);
    g.turns++;
    g.turn_events += n > 0 ? n : 0;
    for (int i = 0; i < n; i++) {
        conn *c = evs[i].data.ptr;
        if (!c) {
            tick_fired();
            continue;
        }
        if (c->fd < 0) continue;
        if (!c->requested) {
            own_connected(c);
            continue;
        }
        if (evs[i].events & EPOLLOUT && own_flush(c)) {
            own_lost(c);
            continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) own_read(c);
    }
}

/* Handshakes that took longer than lws would wait fail as they would. */
static void own_timeouts(int64_t now) {
    for (int i = 0; i < g.next_connect; i++) {
        conn *c = &g.conns[i];
        if (c->state == C_CONNECTING && c->fd >= 0 && now - c->connect_t > OWN_TIMEOUT_US) {
            own_drop(c);
            conn_failed(c, "timed out opening the connection");
        }
    }
}

/* The addresses of A and B, and the epoll set. */
static int own_setup(void) {
    for (int inst = 0; inst < 2; inst++) {
        char port[16];
        snprintf(port, sizeof port, "%d", inst ? opt.port_b : opt.port_a);
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
        if (getaddrinfo(opt.host, port, &hints, &ai) != 0) {
            fprintf(stderr, "spark_load: cannot resolve %s\n", opt.host);
            return -1;
        }
        memcpy(&own_addr[inst], ai->ai_addr, ai->ai_addrlen);
        own_addrlen[inst] = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    own_seed ^= (uint64_t)now_us() * 0x2545f4914f6cdd1dULL;
    own_epfd = epoll_create1(EPOLL_CLOEXEC);
    return own_epfd < 0 ? -1 : 0;
}

/* ---- connecting ---------------------------------------------------------- */

static void start_connect(conn *c) {
    if (opt.own_client) {
        own_connect(c);
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = g.ctx;
    ci.address = opt.host;
    ci.port = c->inst ? opt.port_b : opt.port_a;
    ci.path = c->path;
    ci.host = opt.host;
    ci.origin = opt.host;
    ci.ietf_version_or_minus_one = -1;
    ci.userdata = c;
    ci.local_protocol_name = "spark-load";
    ci.pwsi = &c->wsi;
    c->state = C_CONNECTING;
    g.inflight++;
    if (!lws_client_connect_via_info(&ci)) conn_failed(c, "connect failed");
}

static void pump_connects(void) {
    while (g.next_connect < g.nconns && g.inflight < opt.concurrency)
        start_connect(&g.conns[g.next_connect++]);
}

/* ---- phases ---------------------------------------------------------------- */

static void stop_run(void) {
    g.phase = P_DONE;
    lws_cancel_service(g.ctx);
}

static void begin_send(void) {
    g.phase = P_SEND;
    g.phase_start = now_us();
    if (opt.scenario == SC_FANOUT) {
        g.f.start = g.phase_start;
        g.f.measure_start = g.f.start + (int64_t)(opt.warmup * US_PER_SEC);
        g.f.measure_end = g.f.measure_start + (int64_t)(opt.duration * US_PER_SEC);
        progress("fanout: %d members ready; sending %.0f msg/s (%.0f s warm-up, %.0f s measured)",
                 g.ready, opt.rate, opt.warmup, opt.duration);
    } else {
        step_state *s = &g.e.steps[g.e.step];
        s->rate = opt.rates[g.e.step];
        s->start = g.phase_start;
        s->warm = (long long)(opt.warmup * s->rate);
        s->total = (long long)((opt.warmup + opt.duration) * s->rate);
        s->measure_start = s->start + (int64_t)(opt.warmup * US_PER_SEC);
        s->measure_end = s->measure_start + (int64_t)(opt.duration * US_PER_SEC);
        progress("events: step %d, %.0f events/s over %d components", g.e.step + 1, s->rate,
                 opt.clients);
    }
}

/* True when every measured message has reached every ready member. */
static bool fanout_complete(void) {
    for (long long id = g.f.warm; id < g.f.total; id++)
        if (g.f.deliveries[id] < (uint32_t)g.ready) return false;
    return true;
}

static bool step_complete(const step_state *s) {
    for (size_t i = 0; i < g.e.nevents; i++) {
        const event_rec *r = &g.e.events[i];
        if (r->step != g.e.step) continue;
        if (!r->acked || r->seen < (uint16_t)opt.observers) return false;
    }
    (void)s;
    return true;
}

static void finish_step(void) {
    step_state *s = &g.e.steps[g.e.step];
    s->drain_end = now_us();
    long long expected = 0, seen = 0;
    for (size_t i = 0; i < g.e.nevents; i++) {
        const event_rec *r = &g.e.events[i];
        if (r->step != g.e.step || !r->measured) continue;
        expected += opt.observers;
        seen += r->seen;
    }
    s->missing = expected - seen;
    double achieved = (double)s->acks_in_window / opt.duration;
    double p99 = pct_ms(&s->remote, 0.99);
    s->sustained = s->remote.n > 0 && s->missing == 0 && achieved >= 0.95 * s->rate &&
                   p99 <= opt.max_p99_ms && s->errors == 0;
    /* When the slowest patch's event was due: a stall shows where it fell
     * in the step (its start, a heartbeat's period, ...). */
    progress("events: step %d done: %.0f acked/s, remote p99 %.2f ms, %lld missing, %s; "
             "slowest %.1f ms, due at +%.2f s of the measured window",
             g.e.step + 1, achieved, p99, s->missing, s->sustained ? "sustained" : "not sustained",
             (double)s->worst / 1000, (double)(s->worst_due - s->measure_start) / US_PER_SEC);
}

/* While sending, the next tick is when the next message is due, so that a
 * message leaves at its scheduled time: latency is measured from that time,
 * and a coarser tick would add up to one period of lateness to every
 * figure. */
static int64_t next_tick_us(void) {
    if (g.phase == P_CONNECT) return 2000;
    if (g.phase == P_SEND) {
        bool fanout = opt.scenario == SC_FANOUT;
        double rate = fanout ? opt.rate : opt.rates[g.e.step];
        int64_t start = fanout ? g.f.start : g.e.steps[g.e.step].start;
        long long sent = fanout ? g.f.sent : g.e.steps[g.e.step].sent;
        int64_t us = start + (int64_t)((double)sent * US_PER_SEC / rate) - now_us();
        return us < 1 ? 1 : us > 50000 ? 50000 : us;
    }
    return 20000;
}

/* The tick runs from a timerfd that lws watches, not from an lws timer:
 * lws 4.1 polls with its next timer's delay in whole ms, rounded down, so
 * the last fraction of a ms before every timer is a busy loop. At 1,000
 * messages a second that loop took most of a core from the servers under
 * test. A timerfd wakes poll at the exact time instead. */
static int tick_fd = -1;

static void schedule_tick(int64_t us) {
    struct itimerspec it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = us / US_PER_SEC;
    it.it_value.tv_nsec = (long)(us % US_PER_SEC) * 1000;
    if (!it.it_value.tv_sec && !it.it_value.tv_nsec) it.it_value.tv_nsec = 1;
    timerfd_settime(tick_fd, 0, &it, NULL);
}

static void tick(void) {
    int64_t now = now_us();
    if (g.interrupted) {
        progress("interrupted");
        stop_run();
        return;
    }
    if (now >= g.deadline) {
        progress("time bound of %.0f s reached", opt.timeout);
        g.timed_out = true;
        stop_run();
        return;
    }
    switch (g.phase) {
    case P_CONNECT:
        pump_connects();
        if (opt.own_client && now - g.own_checked >= US_PER_SEC) {
            g.own_checked = now;
            own_timeouts(now);
        }
        /* Every connection live (or failed), or the settle bound passed since
         * the last handshake ended: go on with those that are ready. */
        if (g.all_ready || (g.next_connect >= g.nconns && g.inflight == 0 && g.all_open &&
                            now - g.all_open > (int64_t)(opt.settle * US_PER_SEC))) {
            if (!g.all_ready) g.all_ready = now;
            progress("%d open, %d ready, %d failed, %d closed (opening took %.2f s)", g.opened,
                     g.ready, g.failed, g.closed,
                     (double)((g.all_open ? g.all_open : now) - g.connect_start) / 1e6);
            g.phase = opt.scenario == SC_IDLE ? P_HOLD : P_SETTLE;
            g.phase_start = now;
        }
        break;
    case P_SETTLE:
        /* Joins broadcast to the room: wait until they stop arriving. */
        if (now - g.last_rx >= QUIET_SETTLE_US ||
            now - g.phase_start >= (int64_t)(opt.settle * US_PER_SEC)) {
            progress("settled after %.2f s (%lld frames received so far)",
                     (double)(now - g.phase_start) / 1e6, g.frames_rx);
            if (!g.ready) {
                progress("no connection is ready; giving up");
                stop_run();
                return;
            }
            begin_send();
        }
        break;
    case P_SEND:
        if (opt.scenario == SC_FANOUT) {
            if (!g.f.cpu_started && now >= g.f.measure_start && opt.pid_a > 0) {
                g.f.cpu_started = true;
                sample_cpu(0);
            }
            long long due = (long long)((double)(now - g.f.start) * opt.rate / US_PER_SEC) + 1;
            if (due > g.f.total) due = g.f.total;
            while (g.f.sent < due)
                fanout_send(g.f.sent++);
            if (g.f.sent >= g.f.total) {
                g.phase = P_DRAIN;
                g.phase_start = now;
            }
        } else {
            step_state *s = &g.e.steps[g.e.step];
            long long due = (long long)((double)(now - s->start) * s->rate / US_PER_SEC) + 1;
            if (due > s->total) due = s->total;
            while (s->sent < due)
                events_send(s, s->sent++);
            if (s->sent >= s->total) {
                g.phase = P_DRAIN;
                g.phase_start = now;
            }
        }
        break;
    case P_DRAIN: {
        bool done = now - g.phase_start >= (int64_t)(opt.drain * US_PER_SEC);
        if (opt.scenario == SC_FANOUT) {
            if (done || fanout_complete()) {
                if (g.f.cpu_started) sample_cpu(1);
                stop_run();
            }
        } else if (done || step_complete(&g.e.steps[g.e.step])) {
            finish_step();
            if (++g.e.step >= opt.nrates) {
                stop_run();
            } else {
                begin_send();
            }
        }
        break;
    }
    case P_HOLD:
        if (now - g.phase_start >= (int64_t)(opt.hold * US_PER_SEC)) stop_run();
        break;
    case P_DONE:
        return;
    }
    if (g.phase != P_DONE) schedule_tick(next_tick_us());
}

static void tick_fired(void) {
    uint64_t expirations;
    if (read(tick_fd, &expirations, sizeof expirations) == (ssize_t)sizeof expirations) tick();
}

static int tick_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len) {
    (void)wsi, (void)user, (void)in, (void)len;
    if (reason == LWS_CALLBACK_RAW_RX_FILE) tick_fired();
    return 0;
}

static void on_signal(int sig) {
    (void)sig;
    g.interrupted = 1;
    if (g.ctx) lws_cancel_service(g.ctx);
}

/* ---- setup ---------------------------------------------------------------- */

static void expand_path(char *out, size_t len, const char *tmpl, int i) {
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < len; p++) {
        if (strncmp(p, "{i}", 3) == 0) {
            int n = snprintf(out + o, len - o, "%d", i);
            if (n < 0 || (size_t)n >= len - o) break;
            o += (size_t)n;
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static int setup_conns(void) {
    switch (opt.scenario) {
    case SC_FANOUT:
        g.nconns = opt.clients;
        break;
    case SC_IDLE:
        g.nconns = opt.clients;
        break;
    case SC_EVENTS:
        g.nconns = opt.clients * (1 + opt.observers);
        break;
    }
    g.conns = calloc((size_t)g.nconns, sizeof *g.conns);
    if (!g.conns) return -1;
    for (int i = 0; i < g.nconns; i++) {
        conn *c = &g.conns[i];
        c->idx = i;
        c->last_msg = -1;
        c->fd = -1;
        switch (opt.scenario) {
        case SC_FANOUT:
            /* Alternate A and B so both fill at the same pace. */
            c->inst = i % 2;
            c->role = (!c->inst && i / 2 < opt.senders) ? R_SENDER : R_MEMBER;
            snprintf(c->path, sizeof c->path, "/chat/%s", opt.room);
            break;
        case SC_IDLE:
            c->inst = 0;
            c->role = R_MEMBER;
            expand_path(c->path, sizeof c->path, opt.path, i);
            break;
        case SC_EVENTS:
            /* Connection i: component i % clients; the first of each is its
             * sender on A, the rest observers on B. */
            c->comp = i % opt.clients;
            c->inst = i < opt.clients ? 0 : 1;
            c->role = c->inst ? R_OBSERVER : R_SENDER;
            snprintf(c->path, sizeof c->path, "/spark");
            break;
        }
    }
    if (opt.scenario == SC_FANOUT) {
        g.f.total = (long long)((opt.warmup + opt.duration) * opt.rate);
        g.f.warm = (long long)(opt.warmup * opt.rate);
        g.f.deliveries = calloc((size_t)g.f.total + 1, sizeof *g.f.deliveries);
        g.f.first_us = malloc(((size_t)g.f.total + 1) * sizeof *g.f.first_us);
        g.f.last_us = calloc((size_t)g.f.total + 1, sizeof *g.f.last_us);
        if (!g.f.deliveries || !g.f.first_us || !g.f.last_us) return -1;
        for (long long id = 0; id <= g.f.total; id++)
            g.f.first_us[id] = UINT32_MAX;
    }
    if (opt.scenario == SC_EVENTS) {
        g.e.comps = calloc((size_t)opt.clients, sizeof *g.e.comps);
        if (!g.e.comps) return -1;
        for (int k = 0; k < opt.clients; k++) {
            g.e.comps[k].base = -1;
            g.e.comps[k].sender = k;
        }
    }
    return 0;
}

static unsigned raise_fd_limit(int need) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t)need + 64)
        fprintf(stderr,
                "spark_load: warning: file descriptor limit %llu is below the %d connections "
                "asked for (raise the hard limit: ulimit -Hn)\n",
                (unsigned long long)rl.rlim_cur, need);
    return rl.rlim_cur > 1000000 ? 1000000 : (unsigned)rl.rlim_cur;
}

/* ---- report ---------------------------------------------------------------- */

static json_object *closes_json(void) {
    json_object *o = json_object_new_object();
    for (int code = 0; code <= 5000; code++)
        if (g.closes[code]) {
            char k[16];
            snprintf(k, sizeof k, "%d", code);
            json_object_object_add(o, k, json_object_new_int64(g.closes[code]));
        }
    return o;
}

static void print_common(void) {
    printf("  connections: %d asked, %d opened, %d ready, %d failed, %d closed by the server\n",
           g.nconns, g.opened, g.ready, g.failed, g.closed);
    if (g.first_failure[0]) printf("  first failure: %s\n", g.first_failure);
    for (int code = 0; code <= 5000; code++)
        if (g.closes[code]) printf("  close code %d: %lld\n", code, g.closes[code]);
    if (g.timed_out) printf("  STOPPED BY THE TIME BOUND (--timeout %.0f)\n", opt.timeout);
}

static json_object *report_fanout(void) {
    fanout_state *f = &g.f;
    long long measured = f->total - f->warm, delivered = 0, complete = 0;
    for (long long id = f->warm; id < f->total; id++) {
        delivered += f->deliveries[id];
        if (f->deliveries[id] >= (uint32_t)g.ready) complete++;
    }
    long long expected = measured * g.ready;
    double per_s = (double)delivered / opt.duration;
    samples first = {0}, last = {0};
    for (long long id = f->warm; id < f->total; id++) {
        if (f->first_us[id] == UINT32_MAX) continue;
        samples_add(&first, f->first_us[id]);
        samples_add(&last, f->last_us[id]);
    }
    int64_t join_us = (g.all_ready ? g.all_ready : now_us()) - g.connect_start;

    printf("\nfanout: room %s, %d members (%d on A, %d on B), %d sender(s) on A, %.0f msg/s,\n"
           "        %.0f s measured after %.0f s warm-up\n",
           opt.room, g.nconns, (g.nconns + 1) / 2, g.nconns / 2, opt.senders, opt.rate,
           opt.duration, opt.warmup);
    print_header();
    print_row("remote (members on B)", &f->remote);
    print_row("local (members on A)", &f->local);
    print_row("all members", &f->all);
    print_row("first of each message", &first);
    print_row("last of each message", &last);
    printf("  messages measured: %lld; deliveries %lld of %lld (%.0f/s); missing %lld; "
           "duplicates %lld\n",
           measured, delivered, expected, per_s, expected - delivered, f->dups);
    if (g.ready < g.nconns)
        printf("  joining: only %d of %d members were live in the room after %.2f s\n", g.ready,
               g.nconns, (double)join_us / 1e6);
    else
        printf("  joining: %.2f s for all members to be live in the room\n", (double)join_us / 1e6);
    double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
    bool cpu_known = f->cpu_started && f->cpu_a[0] >= 0 && f->cpu_a[1] >= 0 && f->cpu_b[0] >= 0 &&
                     f->cpu_b[1] >= 0 && delivered > 0;
    double cpu_a = 0, cpu_b = 0, cpu_self = 0, window_s = 0, per_delivery = 0;
    if (cpu_known) {
        cpu_a = (double)(f->cpu_a[1] - f->cpu_a[0]) * tick_us / 1e6;
        cpu_b = (double)(f->cpu_b[1] - f->cpu_b[0]) * tick_us / 1e6;
        cpu_self = (double)(f->cpu_self[1] - f->cpu_self[0]) * tick_us / 1e6;
        window_s = (double)(f->cpu_t[1] - f->cpu_t[0]) / 1e6;
        per_delivery = (cpu_a + cpu_b) * 1e6 / (double)delivered;
        printf("  CPU over the measured window (%.2f s, until its last delivery): A %.2f s, "
               "B %.2f s,\n  generator %.2f s; sparkd CPU per delivery (A + B): %.2f us; "
               "generator's: %.2f us\n",
               window_s, cpu_a, cpu_b, cpu_self, per_delivery, cpu_self * 1e6 / (double)delivered);
    }
    long hwm_a = proc_kib(opt.pid_a, "VmHWM"), hwm_b = proc_kib(opt.pid_b, "VmHWM");
    long hwm_self = proc_kib(0, "VmHWM");
    if (opt.pid_a > 0 && opt.pid_b > 0)
        printf("  sparkd peak RSS: A %ld KiB, B %ld KiB; the generator's %ld KiB\n", hwm_a, hwm_b,
               hwm_self);
    print_common();

    json_object *o = json_object_new_object();
    if (cpu_known) {
        json_object_object_add(o, "cpu_window_s", json_object_new_double(window_s));
        json_object_object_add(o, "cpu_a_s", json_object_new_double(cpu_a));
        json_object_object_add(o, "cpu_b_s", json_object_new_double(cpu_b));
        json_object_object_add(o, "cpu_generator_s", json_object_new_double(cpu_self));
        json_object_object_add(o, "cpu_per_delivery_us", json_object_new_double(per_delivery));
        json_object_object_add(o, "cpu_generator_per_delivery_us",
                               json_object_new_double(cpu_self * 1e6 / (double)delivered));
    }
    if (opt.pid_a > 0 && opt.pid_b > 0) {
        json_object_object_add(o, "peak_rss_a_kib", json_object_new_int64(hwm_a));
        json_object_object_add(o, "peak_rss_b_kib", json_object_new_int64(hwm_b));
        json_object_object_add(o, "generator_peak_rss_kib", json_object_new_int64(hwm_self));
    }
    json_object_object_add(o, "members", json_object_new_int(g.nconns));
    json_object_object_add(o, "members_ready", json_object_new_int(g.ready));
    json_object_object_add(o, "senders", json_object_new_int(opt.senders));
    json_object_object_add(o, "rate", json_object_new_double(opt.rate));
    json_object_object_add(o, "messages_measured", json_object_new_int64(measured));
    json_object_object_add(o, "messages_complete", json_object_new_int64(complete));
    json_object_object_add(o, "deliveries_expected", json_object_new_int64(expected));
    json_object_object_add(o, "deliveries", json_object_new_int64(delivered));
    json_object_object_add(o, "deliveries_per_s", json_object_new_double(per_s));
    json_object_object_add(o, "missing", json_object_new_int64(expected - delivered));
    json_object_object_add(o, "duplicates", json_object_new_int64(f->dups));
    json_object_object_add(o, "join_s", json_object_new_double((double)join_us / 1e6));
    json_object_object_add(o, "latency_remote", samples_json(&f->remote));
    json_object_object_add(o, "latency_local", samples_json(&f->local));
    json_object_object_add(o, "latency_all", samples_json(&f->all));
    json_object_object_add(o, "latency_first", samples_json(&first));
    json_object_object_add(o, "latency_last", samples_json(&last));
    free(first.v);
    free(last.v);
    return o;
}

static json_object *report_idle(void) {
    int64_t open_us = (g.all_open ? g.all_open : now_us()) - g.connect_start;
    double per_conn = g.opened && g.rss_a1 >= 0 && g.rss_a0 >= 0
                          ? (double)(g.rss_a1 - g.rss_a0) * 1024.0 / g.opened
                          : -1;
    long self = proc_kib(0, "VmHWM");
    printf("\nidle: %d connections to A (%s)\n", g.nconns, opt.path);
    int64_t ready_us = (g.all_ready ? g.all_ready : now_us()) - g.connect_start;
    printf("  opened %d in %.2f s (%.0f/s); %d ready (%s) after %.2f s\n", g.opened,
           (double)open_us / 1e6, open_us > 0 ? g.opened / ((double)open_us / 1e6) : 0, g.ready,
           opt.ready_on_frame ? "first frame received" : "open", (double)ready_us / 1e6);
    if (opt.pid_a > 0) {
        printf("  sparkd A RSS: %ld KiB before, %ld KiB after (peak %ld KiB)\n", g.rss_a0, g.rss_a1,
               g.hwm_a1);
        printf("  RSS per connection: %.0f bytes (%.2f KiB)\n", per_conn, per_conn / 1024);
    }
    printf("  load generator peak RSS: %ld KiB\n", self);
    print_common();
    json_object *o = json_object_new_object();
    json_object_object_add(o, "connections", json_object_new_int(g.nconns));
    json_object_object_add(o, "opened", json_object_new_int(g.opened));
    json_object_object_add(o, "open_s", json_object_new_double((double)open_us / 1e6));
    json_object_object_add(o, "ready", json_object_new_int(g.ready));
    json_object_object_add(o, "ready_s", json_object_new_double((double)ready_us / 1e6));
    json_object_object_add(o, "rss_before_kib", json_object_new_int64(g.rss_a0));
    json_object_object_add(o, "rss_after_kib", json_object_new_int64(g.rss_a1));
    json_object_object_add(o, "rss_peak_kib", json_object_new_int64(g.hwm_a1));
    json_object_object_add(o, "rss_per_conn_bytes", json_object_new_double(per_conn));
    json_object_object_add(o, "generator_peak_rss_kib", json_object_new_int64(self));
    return o;
}

static json_object *report_events(void) {
    printf("\nevents: %d components %s:bench-K, one sender each on A, %d observer(s) each on B\n",
           opt.clients, opt.type, opt.observers);
    json_object *steps = json_object_new_array();
    double best = 0, best_durable = 0;
    for (int i = 0; i < g.e.step && i < opt.nrates; i++) {
        step_state *s = &g.e.steps[i];
        double achieved = (double)s->acks_in_window / opt.duration;
        if (achieved > best_durable) best_durable = achieved;
        if (s->sustained && s->rate > best) best = s->rate;
        printf("\n  step %d: target %.0f events/s, acked %.0f/s, %lld errors, %lld patches "
               "missing: %s\n",
               i + 1, s->rate, achieved, s->errors, s->missing,
               s->sustained ? "sustained" : "NOT sustained");
        print_header();
        print_row("event -> patch on B", &s->remote);
        print_row("event -> patch on A", &s->local);
        print_row("event -> reply", &s->ack);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "rate", json_object_new_double(s->rate));
        json_object_object_add(o, "sent", json_object_new_int64(s->sent));
        json_object_object_add(o, "acked", json_object_new_int64(s->acked));
        json_object_object_add(o, "acked_per_s", json_object_new_double(achieved));
        json_object_object_add(o, "errors", json_object_new_int64(s->errors));
        json_object_object_add(o, "patches_missing", json_object_new_int64(s->missing));
        json_object_object_add(o, "sustained", json_object_new_boolean(s->sustained));
        json_object_object_add(o, "latency_remote", samples_json(&s->remote));
        json_object_object_add(o, "slowest_remote_ms",
                               json_object_new_double((double)s->worst / 1000));
        json_object_object_add(
            o, "slowest_remote_due_s",
            json_object_new_double((double)(s->worst_due - s->measure_start) / US_PER_SEC));
        json_object_object_add(o, "latency_local", samples_json(&s->local));
        json_object_object_add(o, "latency_reply", samples_json(&s->ack));
        json_object_array_add(steps, o);
    }
    printf("\n  highest sustained rate: %.0f events/s (p99 <= %.0f ms, >= 95%% acked, none "
           "missing)\n",
           best, opt.max_p99_ms);
    printf("  most durable events/s: %.0f\n", best_durable);
    if (opt.ceiling > 0)
        printf("  pgbench ceiling: %.0f tx/s; ratio %.2f\n", opt.ceiling,
               best_durable / opt.ceiling);
    if (g.e.first_error[0]) printf("  first error: %s\n", g.e.first_error);
    print_common();
    json_object *o = json_object_new_object();
    json_object_object_add(o, "components", json_object_new_int(opt.clients));
    json_object_object_add(o, "observers", json_object_new_int(opt.observers));
    json_object_object_add(o, "steps", steps);
    json_object_object_add(o, "highest_sustained_rate", json_object_new_double(best));
    json_object_object_add(o, "durable_events_per_s", json_object_new_double(best_durable));
    if (opt.ceiling > 0) {
        json_object_object_add(o, "pgbench_tps", json_object_new_double(opt.ceiling));
        json_object_object_add(o, "ratio_to_pgbench",
                               json_object_new_double(best_durable / opt.ceiling));
    }
    if (g.e.first_error[0])
        json_object_object_add(o, "first_error", json_object_new_string(g.e.first_error));
    return o;
}

static int report(void) {
    json_object *res = opt.scenario == SC_FANOUT ? report_fanout()
                       : opt.scenario == SC_IDLE ? report_idle()
                                                 : report_events();
    if (opt.pid_b > 0 && opt.scenario != SC_IDLE)
        printf("  sparkd RSS: A %ld KiB, B %ld KiB\n", proc_kib(opt.pid_a, "VmRSS"),
               proc_kib(opt.pid_b, "VmRSS"));
    printf("  frames: %lld received (%lld bytes), %lld sent\n", g.frames_rx, g.bytes_rx,
           g.frames_tx);
    if (g.parse_errors) printf("  frames not understood: %lld\n", g.parse_errors);
    if (g.turns)
        printf("  own client: %lld turns of its loop, %.1f ready descriptors a turn\n", g.turns,
               (double)g.turn_events / (double)g.turns);
    json_object_object_add(res, "connections_opened", json_object_new_int(g.opened));
    json_object_object_add(res, "connections_failed", json_object_new_int(g.failed));
    json_object_object_add(res, "connections_closed", json_object_new_int(g.closed));
    json_object_object_add(res, "close_codes", closes_json());
    json_object_object_add(res, "frames_received", json_object_new_int64(g.frames_rx));
    json_object_object_add(res, "frames_sent", json_object_new_int64(g.frames_tx));
    json_object_object_add(res, "frames_not_understood", json_object_new_int64(g.parse_errors));
    json_object_object_add(res, "timed_out", json_object_new_boolean(g.timed_out));
    if (!opt.json_path) {
        json_object_put(res);
        return 0;
    }
    json_object *top = json_object_new_object();
    json_object *cfg = json_object_new_object();
    json_object_object_add(top, "scenario", json_object_new_string(scenario_name(opt.scenario)));
    json_object_object_add(cfg, "clients", json_object_new_int(opt.clients));
    json_object_object_add(cfg, "duration_s", json_object_new_double(opt.duration));
    json_object_object_add(cfg, "warmup_s", json_object_new_double(opt.warmup));
    json_object_object_add(cfg, "port_a", json_object_new_int(opt.port_a));
    json_object_object_add(cfg, "port_b", json_object_new_int(opt.port_b));
    json_object_object_add(cfg, "auth", json_object_new_boolean(opt.token || opt.ntokens));
    json_object_object_add(top, "config", cfg);
    json_object_object_add(top, "results", res);
    int rc = json_object_to_file_ext(opt.json_path, top, JSON_C_TO_STRING_PRETTY);
    if (rc) fprintf(stderr, "spark_load: cannot write %s\n", opt.json_path);
    json_object_put(top);
    return rc ? -1 : 0;
}

/* ---- options parsing ------------------------------------------------------ */

static int parse_double(const char *name, const char *s, double min, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min) {
        fprintf(stderr, "spark_load: %s: bad value '%s'\n", name, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int(const char *name, const char *s, int min, int *out) {
    double v;
    if (parse_double(name, s, min, &v) || v != (int)v || v > 10000000) {
        if (!errno) fprintf(stderr, "spark_load: %s: not an integer '%s'\n", name, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_rates(const char *s) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    opt.nrates = 0;
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (opt.nrates == MAX_STEPS) {
            fprintf(stderr, "spark_load: --rates: at most %d steps\n", MAX_STEPS);
            return -1;
        }
        if (parse_double("--rates", p, 0.001, &opt.rates[opt.nrates])) return -1;
        opt.nrates++;
    }
    return opt.nrates ? 0 : -1;
}

static int read_tokens(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "spark_load: --token-file: cannot open %s\n", file);
        return -1;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        char **t = realloc(opt.tokens, (size_t)(opt.ntokens + 1) * sizeof *t);
        if (!t) break;
        opt.tokens = t;
        opt.tokens[opt.ntokens++] = strdup(line);
    }
    fclose(f);
    if (!opt.ntokens) fprintf(stderr, "spark_load: --token-file: no tokens in %s\n", file);
    return opt.ntokens ? 0 : -1;
}

static int parse_args(int argc, char **argv) {
    enum {
        O_HOST = 256,
        O_PORT_A,
        O_PORT_B,
        O_CLIENTS,
        O_RATE,
        O_RATES,
        O_DURATION,
        O_WARMUP,
        O_DRAIN,
        O_SETTLE,
        O_HOLD,
        O_TIMEOUT,
        O_CONC,
        O_SENDERS,
        O_OBSERVERS,
        O_ROOM,
        O_PATH,
        O_TYPE,
        O_EVENT,
        O_EVENT_DATA,
        O_MAXP99,
        O_PID_A,
        O_PID_B,
        O_TOKEN,
        O_TOKEN_FILE,
        O_CEILING,
        O_JSON,
        O_QUIET,
        O_HELP,
        O_SCENARIO,
        O_READY,
        O_CLIENT
    };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port-a", required_argument, NULL, O_PORT_A},
        {"port-b", required_argument, NULL, O_PORT_B},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"rate", required_argument, NULL, O_RATE},
        {"rates", required_argument, NULL, O_RATES},
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"drain", required_argument, NULL, O_DRAIN},
        {"settle", required_argument, NULL, O_SETTLE},
        {"hold", required_argument, NULL, O_HOLD},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"concurrency", required_argument, NULL, O_CONC},
        {"senders", required_argument, NULL, O_SENDERS},
        {"observers", required_argument, NULL, O_OBSERVERS},
        {"room", required_argument, NULL, O_ROOM},
        {"path", required_argument, NULL, O_PATH},
        {"type", required_argument, NULL, O_TYPE},
        {"event", required_argument, NULL, O_EVENT},
        {"event-data", required_argument, NULL, O_EVENT_DATA},
        {"max-p99", required_argument, NULL, O_MAXP99},
        {"pid-a", required_argument, NULL, O_PID_A},
        {"pid-b", required_argument, NULL, O_PID_B},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"ceiling", required_argument, NULL, O_CEILING},
        {"json", required_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {"scenario", required_argument, NULL, O_SCENARIO},
        {"ready", required_argument, NULL, O_READY},
        {"client", required_argument, NULL, O_CLIENT},
        {NULL, 0, NULL, 0},
    };
    const char *scenario = NULL, *rates = "250,500,1000,2000";
    int ch, rc = 0;
    opt.token = getenv("SPARK_TOKEN");
    if (opt.token && !*opt.token) opt.token = NULL;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1 && !rc) {
        switch (ch) {
        case O_HOST:
            opt.host = optarg;
            break;
        case O_PORT_A:
            rc = parse_int("--port-a", optarg, 1, &opt.port_a);
            break;
        case O_PORT_B:
            rc = parse_int("--port-b", optarg, 1, &opt.port_b);
            break;
        case O_CLIENTS:
            rc = parse_int("--clients", optarg, 1, &opt.clients);
            break;
        case O_RATE:
            rc = parse_double("--rate", optarg, 0.001, &opt.rate);
            break;
        case O_RATES:
            rates = optarg;
            break;
        case O_DURATION:
            rc = parse_double("--duration", optarg, 0.1, &opt.duration);
            break;
        case O_WARMUP:
            rc = parse_double("--warmup", optarg, 0, &opt.warmup);
            break;
        case O_DRAIN:
            rc = parse_double("--drain", optarg, 0, &opt.drain);
            break;
        case O_SETTLE:
            rc = parse_double("--settle", optarg, 0, &opt.settle);
            break;
        case O_HOLD:
            rc = parse_double("--hold", optarg, 0, &opt.hold);
            break;
        case O_TIMEOUT:
            rc = parse_double("--timeout", optarg, 1, &opt.timeout);
            break;
        case O_CONC:
            rc = parse_int("--concurrency", optarg, 1, &opt.concurrency);
            break;
        case O_SENDERS:
            rc = parse_int("--senders", optarg, 1, &opt.senders);
            break;
        case O_OBSERVERS:
            rc = parse_int("--observers", optarg, 1, &opt.observers);
            break;
        case O_ROOM:
            opt.room = optarg;
            break;
        case O_PATH:
            opt.path = optarg;
            break;
        case O_READY:
            if (!strcmp(optarg, "open")) {
                opt.ready_on_frame = 0;
            } else if (!strcmp(optarg, "frame")) {
                opt.ready_on_frame = 1;
            } else {
                fprintf(stderr, "spark_load: --ready: open or frame, not '%s'\n", optarg);
                rc = -1;
            }
            break;
        case O_TYPE:
            opt.type = optarg;
            break;
        case O_EVENT:
            opt.event = optarg;
            break;
        case O_EVENT_DATA:
            opt.event_data = optarg;
            break;
        case O_MAXP99:
            rc = parse_double("--max-p99", optarg, 0, &opt.max_p99_ms);
            break;
        case O_PID_A:
            rc = parse_int("--pid-a", optarg, 1, &opt.pid_a);
            break;
        case O_PID_B:
            rc = parse_int("--pid-b", optarg, 1, &opt.pid_b);
            break;
        case O_TOKEN:
            opt.token = optarg;
            break;
        case O_TOKEN_FILE:
            rc = read_tokens(optarg);
            break;
        case O_CEILING:
            rc = parse_double("--ceiling", optarg, 0, &opt.ceiling);
            break;
        case O_JSON:
            opt.json_path = optarg;
            break;
        case O_QUIET:
            opt.quiet = true;
            break;
        case O_SCENARIO:
            scenario = optarg;
            break;
        case O_CLIENT:
            if (!strcmp(optarg, "own") || !strcmp(optarg, "lws")) {
                opt.client = !strcmp(optarg, "own");
            } else {
                fprintf(stderr, "spark_load: --client: own or lws, not '%s'\n", optarg);
                rc = -1;
            }
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            rc = -1;
            break;
        }
    }
    if (rc) return -1;
    if (!scenario && optind < argc) scenario = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "spark_load: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!scenario) {
        fprintf(stderr, "spark_load: name a scenario: fanout, idle or events\n");
        return -1;
    }
    if (!strcmp(scenario, "fanout"))
        opt.scenario = SC_FANOUT;
    else if (!strcmp(scenario, "idle"))
        opt.scenario = SC_IDLE;
    else if (!strcmp(scenario, "events"))
        opt.scenario = SC_EVENTS;
    else {
        fprintf(stderr, "spark_load: unknown scenario '%s'\n", scenario);
        return -1;
    }
    if (parse_rates(rates)) {
        fprintf(stderr, "spark_load: --rates: bad list '%s'\n", rates);
        return -1;
    }
    opt.own_client = opt.client < 0 ? opt.scenario == SC_FANOUT : opt.client == 1;
    if (opt.ready_on_frame < 0) opt.ready_on_frame = strncmp(opt.path, "/chat/", 6) == 0;
    if (opt.clients < 0) opt.clients = opt.scenario == SC_EVENTS ? 20 : 1000;
    if (opt.scenario == SC_FANOUT && opt.senders > (opt.clients + 1) / 2) {
        fprintf(stderr, "spark_load: --senders: at most half the members (those on A)\n");
        return -1;
    }
    if (opt.observers > 60000) {
        fprintf(stderr, "spark_load: --observers: at most 60000\n");
        return -1;
    }
    /* Loopback only: refuse anything that is not a 127.x or ::1 address. */
    if (strncmp(opt.host, "127.", 4) != 0 && strcmp(opt.host, "::1") != 0 &&
        strcmp(opt.host, "localhost") != 0) {
        fprintf(stderr, "spark_load: --host: loopback addresses only (got %s)\n", opt.host);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (parse_args(argc, argv)) {
        fprintf(stderr, "spark_load: see --help\n");
        return 2;
    }
    g.t0 = now_us();
    if (setup_conns()) {
        fprintf(stderr, "spark_load: out of memory\n");
        return 1;
    }
    unsigned fds = raise_fd_limit(g.nconns);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.fd_limit_per_thread = fds;
    info.timeout_secs = 30;
    g.ctx = lws_create_context(&info);
    if (!g.ctx) {
        fprintf(stderr, "spark_load: cannot create the libwebsockets context\n");
        return 1;
    }
    if (opt.own_client && own_setup()) {
        fprintf(stderr, "spark_load: cannot set up the own client's epoll set\n");
        return 1;
    }
    g.deadline = g.t0 + (int64_t)(opt.timeout * US_PER_SEC);
    g.rss_a0 = proc_kib(opt.pid_a, "VmRSS");
    g.rss_b0 = proc_kib(opt.pid_b, "VmRSS");
    progress("%s: opening %d connections (fd limit %u)", scenario_name(opt.scenario), g.nconns,
             fds);
    g.connect_start = now_us();
    g.last_rx = g.connect_start;
    g.phase = P_CONNECT;
    /* Our own client's loop is its epoll set alone (lws then has no
     * connection to serve); lws's client runs from lws's loop. */
    lws_sock_file_fd_type tfd;
    tfd.filefd = tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    if (tick_fd < 0 ||
        (opt.own_client ? epoll_ctl(own_epfd, EPOLL_CTL_ADD, tick_fd, &tev) < 0
                        : !lws_adopt_descriptor_vhost(lws_get_vhost_by_name(g.ctx, "default"),
                                                      LWS_ADOPT_RAW_FILE_DESC, tfd,
                                                      "spark-load-tick", NULL))) {
        fprintf(stderr, "spark_load: cannot watch a timerfd\n");
        return 1;
    }
    schedule_tick(1);
    while (g.phase != P_DONE && !g.interrupted) {
        if (opt.own_client)
            own_service();
        else if (lws_service(g.ctx, 0) < 0)
            break;
    }
    if (opt.pid_a > 0) {
        g.rss_a1 = proc_kib(opt.pid_a, "VmRSS");
        g.hwm_a1 = proc_kib(opt.pid_a, "VmHWM");
    }
    if (opt.pid_b > 0) g.rss_b1 = proc_kib(opt.pid_b, "VmRSS");
    int rc = report();
    lws_context_destroy(g.ctx);
    for (int i = 0; i < g.nconns; i++) {
        own_close(&g.conns[i], 1001); /* going away */
        conn_free_queue(&g.conns[i]);
        free(g.conns[i].rx);
    }
    if (own_epfd >= 0) close(own_epfd);
    free(g.conns);
    free(g.f.deliveries);
    free(g.f.first_us);
    free(g.f.last_us);
    if (g.e.comps)
        for (int k = 0; k < opt.clients; k++)
            free(g.e.comps[k].idx);
    free(g.e.comps);
    free(g.e.events);
    bool ok = !g.timed_out && !g.interrupted && g.ready > 0 && rc == 0;
    return ok ? 0 : 1;
}
