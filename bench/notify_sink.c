/*
 * notify_sink.c - the consuming side of bench/notify_scale.sh: N PostgreSQL
 * connections that really take in what the writers announce, as N sparkd
 * instances would, either by LISTEN or by logical decoding.
 *
 *   notify_sink listen --url URL --connections N [--channel spark]
 *   notify_sink decode --url URL --connections N --slot PREFIX --publication P
 *
 * listen: each connection LISTENs on the channel and reads every
 * notification (PQconsumeInput, PQnotifies), as bus.c does.
 * decode: each connection is a walsender on its own slot PREFIX_1..N
 * (pgoutput, proto_version 1, publication P, messages on) and reads every
 * XLogData message, counting transactions (B) and row changes (I, U, D),
 * and confirms what it read every second, as a bus on logical decoding would.
 *
 * Once all connections are ready it prints `ready pids=P1,P2,...` (their
 * backends). It stops when every
 * connection has seen the end marker (NOTIFY <channel>, 'end <µs>'; or
 * pg_logical_emit_message(true, 'spark_bench', 'end <µs>')), or after --timeout
 * seconds, and prints one line: counts, the CPU its backends used since
 * they were ready (from /proc: PostgreSQL on this machine), the lag of the slowest connection
 * (from the marker's sending, whose CLOCK_REALTIME in µs follows "end ", to
 * its arrival: the backlog the writers left behind), and its own CPU.
 */
#include <libpq-fe.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 256
#define END_PAYLOAD     "end " /* then the sender's CLOCK_REALTIME in µs */
#define MESSAGE_PREFIX  "spark_bench"
#define FEEDBACK_US     1000000LL
#define PG_EPOCH_OFFSET 946684800LL /* 2000-01-01 in Unix seconds */

typedef struct {
    PGconn *conn;
    bool done;         /* saw the end marker */
    double lag_ms;     /* from the end marker's sending to its arrival here */
    uint64_t items;    /* notifications, or decoded row changes */
    uint64_t txns;     /* decoded transactions */
    uint64_t received; /* decode: last WAL position received */
    long long last_feedback_us;
} sink;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long realtime_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* An end marker ("end <µs>") marks the sink done and gives its lag. */
static bool end_marker(sink *s, const char *text, size_t len) {
    size_t n = strlen(END_PAYLOAD);
    if (len <= n || len > 40 || memcmp(text, END_PAYLOAD, n) != 0) return false;
    char num[41];
    memcpy(num, text + n, len - n);
    num[len - n] = 0;
    s->done = true;
    s->lag_ms = (double)(realtime_us() - strtoll(num, NULL, 10)) / 1000.0;
    return true;
}

/* utime + stime of a backend, in seconds (PostgreSQL on this machine), or -1. */
static double backend_cpu_s(int pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the command's closing parenthesis: state is field 3,
     * utime and stime are fields 14 and 15. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double backends_cpu_s(const sink *sinks, int n) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double c = backend_cpu_s(PQbackendPID(sinks[i].conn));
        if (c < 0) return -1;
        total += c;
    }
    return total;
}

static void die(const char *what, PGconn *conn) {
    fprintf(stderr, "notify_sink: %s%s%s", what, conn ? ": " : "\n",
            conn ? PQerrorMessage(conn) : "");
    exit(2);
}

static uint64_t get_u64(const char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)p[i];
    return v;
}

static void put_u64(char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

/* libpq takes the last value of a key: the same URL, one more setting. */
static char *with_setting(const char *url, const char *setting) {
    size_t n = strlen(url) + strlen(setting) + 2;
    char *s = malloc(n);
    if (!s) die("out of memory", NULL);
    bool uri = strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
    snprintf(s, n, "%s%s%s", url, !uri ? " " : strchr(url, '?') ? "&" : "?", setting);
    return s;
}

static void exec_ok(PGconn *conn, const char *sql, ExecStatusType want) {
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != want) die(sql, conn);
    PQclear(res);
}

/* ---- listen ---------------------------------------------------------------- */

static void listen_read(sink *s) {
    if (!PQconsumeInput(s->conn)) die("reading notifications", s->conn);
    PGnotify *n;
    while ((n = PQnotifies(s->conn)) != NULL) {
        if (!end_marker(s, n->extra, strlen(n->extra))) s->items++;
        PQfreemem(n);
    }
}

/* ---- decode ---------------------------------------------------------------- */

/* Standby status update: written, flushed and applied up to what we read. */
static void send_feedback(sink *s, bool force) {
    long long now = now_us();
    if (!force && now - s->last_feedback_us < FEEDBACK_US) return;
    char msg[34];
    uint64_t pg_now = (uint64_t)(realtime_us() - PG_EPOCH_OFFSET * 1000000LL);
    msg[0] = 'r';
    put_u64(msg + 1, s->received);
    put_u64(msg + 9, s->received);
    put_u64(msg + 17, s->received);
    put_u64(msg + 25, pg_now);
    msg[33] = 0;
    if (PQputCopyData(s->conn, msg, sizeof msg) != 1 || PQflush(s->conn) < 0)
        die("sending feedback", s->conn);
    s->last_feedback_us = now;
}

/* One pgoutput message (protocol version 1). */
static void decode_message(sink *s, const char *m, int len) {
    switch (m[0]) {
    case 'B':
        s->txns++;
        break;
    case 'I':
    case 'U':
    case 'D':
        s->items++;
        break;
    case 'M': {
        /* 'M', flags (1), LSN (8), prefix\0, length (4), content */
        const char *prefix = m + 10;
        const char *end = memchr(prefix, 0, (size_t)(len - 10));
        if (len > 10 && end && strcmp(prefix, MESSAGE_PREFIX) == 0 && end + 5 <= m + len) {
            const char *content = end + 5;
            end_marker(s, content, (size_t)(m + len - content));
        }
        break;
    }
    default:
        break; /* C, R, Y, O, T: nothing to count */
    }
}

static void decode_read(sink *s) {
    if (!PQconsumeInput(s->conn)) die("reading the replication stream", s->conn);
    for (;;) {
        char *buf = NULL;
        int len = PQgetCopyData(s->conn, &buf, 1);
        if (len == 0) break; /* nothing more yet */
        if (len < 0) die("the replication stream ended", s->conn);
        if (buf[0] == 'w' && len > 25) {
            /* 'w', start (8), end (8), send time (8), then the message */
            uint64_t start = get_u64(buf + 1);
            if (start > s->received) s->received = start;
            decode_message(s, buf + 25, len - 25);
        } else if (buf[0] == 'k' && len >= 18) {
            uint64_t end = get_u64(buf + 1);
            if (end > s->received) s->received = end;
            if (buf[17]) send_feedback(s, true);
        }
        PQfreemem(buf);
    }
    send_feedback(s, false);
}

/* ---- main ------------------------------------------------------------------- */

/* Slot and publication names go into the replication command as they are. */
static bool plain_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 40) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
    return true;
}

static void usage(FILE *f) {
    fputs("usage: notify_sink listen|decode --url URL --connections N\n"
          "         [--channel NAME] [--slot PREFIX --publication NAME] [--timeout S]\n",
          f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    bool decode = strcmp(mode, "decode") == 0;
    if (!decode && strcmp(mode, "listen") != 0) {
        usage(stderr);
        return 2;
    }
    const char *url = NULL, *channel = "spark", *slot = NULL, *publication = NULL;
    int nconn = 1, timeout_s = 120;
    static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
                                         {"connections", required_argument, NULL, 'n'},
                                         {"channel", required_argument, NULL, 'c'},
                                         {"slot", required_argument, NULL, 's'},
                                         {"publication", required_argument, NULL, 'p'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'u':
            url = optarg;
            break;
        case 'n':
            nconn = atoi(optarg);
            break;
        case 'c':
            channel = optarg;
            break;
        case 's':
            slot = optarg;
            break;
        case 'p':
            publication = optarg;
            break;
        case 't':
            timeout_s = atoi(optarg);
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!url || nconn < 1 || nconn > MAX_CONNECTIONS || timeout_s < 1 ||
        (decode && (!slot || !publication))) {
        usage(stderr);
        return 2;
    }
    if (decode && (!plain_name(slot) || !plain_name(publication))) {
        fputs("notify_sink: --slot and --publication take 1 to 40 of a-z 0-9 _\n", stderr);
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    sink *sinks = calloc((size_t)nconn, sizeof *sinks);
    if (!sinks) die("out of memory", NULL);
    char *conninfo =
        with_setting(url, decode ? "replication=database" : "application_name=notify_sink");
    for (int i = 0; i < nconn; i++) {
        sink *s = &sinks[i];
        s->conn = PQconnectdb(conninfo);
        if (PQstatus(s->conn) != CONNECTION_OK) die("connecting", s->conn);
        char sql[512];
        if (decode) {
            /* Names checked by plain_name: quoting them is enough. */
            snprintf(sql, sizeof sql,
                     "START_REPLICATION SLOT \"%s_%d\" LOGICAL 0/0 (proto_version '1', "
                     "publication_names '%s', messages 'true')",
                     slot, i + 1, publication);
            exec_ok(s->conn, sql, PGRES_COPY_BOTH);
        } else {
            char *ident = PQescapeIdentifier(s->conn, channel, strlen(channel));
            if (!ident) die("quoting the channel", s->conn);
            snprintf(sql, sizeof sql, "LISTEN %s", ident);
            PQfreemem(ident);
            exec_ok(s->conn, sql, PGRES_COMMAND_OK);
        }
        if (PQsetnonblocking(s->conn, 1) != 0) die("non-blocking mode", s->conn);
    }
    free(conninfo);
    printf("ready pids=");
    for (int i = 0; i < nconn; i++)
        printf("%s%d", i ? "," : "", PQbackendPID(sinks[i].conn));
    printf("\n");
    fflush(stdout);
    double backends_start = backends_cpu_s(sinks, nconn);

    struct pollfd *fds = calloc((size_t)nconn, sizeof *fds);
    if (!fds) die("out of memory", NULL);
    long long deadline = now_us() + (long long)timeout_s * 1000000LL;
    int done = 0;
    while (done < nconn && !stop_requested && now_us() < deadline) {
        for (int i = 0; i < nconn; i++)
            fds[i] = (struct pollfd){.fd = PQsocket(sinks[i].conn), .events = POLLIN};
        int rc = poll(fds, (nfds_t)nconn, 200);
        if (rc < 0 && errno != EINTR) die("poll", NULL);
        for (int i = 0; rc > 0 && i < nconn; i++) {
            sink *s = &sinks[i];
            if (!(fds[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            bool was_done = s->done;
            if (decode)
                decode_read(s);
            else
                listen_read(s);
            if (s->done && !was_done) done++;
        }
        if (decode)
            for (int i = 0; i < nconn; i++)
                send_feedback(&sinks[i], false);
    }

    double backends_end = backends_cpu_s(sinks, nconn);
    uint64_t items_min = UINT64_MAX, items_max = 0, txns = 0;
    double lag_max = -1;
    for (int i = 0; i < nconn; i++) {
        sink *s = &sinks[i];
        if (decode) send_feedback(s, true);
        if (s->items < items_min) items_min = s->items;
        if (s->items > items_max) items_max = s->items;
        txns += s->txns;
        if (s->done && s->lag_ms > lag_max) lag_max = s->lag_ms;
        PQfinish(s->conn);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("done connections=%d finished=%d items_min=%" PRIu64 " items_max=%" PRIu64
           " txns=%" PRIu64 " lag_ms=%.1f backends_cpu_s=%.3f cpu_s=%.3f\n",
           nconn, done, items_min, items_max, txns, lag_max,
           backends_start < 0 || backends_end < 0 ? -1.0 : backends_end - backends_start,
           (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    free(fds);
    free(sinks);
    return done == nconn ? 0 : 1;
}
