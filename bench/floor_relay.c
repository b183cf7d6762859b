/*
 * floor_relay.c - the least a chat room's server can do: the floor that
 * bench/run.sh floor measures the fanout scenario against.
 *
 * Two processes, A and B, each on its own port, joined by a socket pair,
 * as sparkd's two instances are joined by PostgreSQL. Every WebSocket
 * upgrade is accepted without a check, and the member is told at once
 * that it is live (a presence state). Every chat message that comes in is
 * relayed to the other process and sent to every member of both, as one
 * frame built once: one send() a member, from an epoll loop. No database,
 * no queue, no JSON. With a pace, the frames wait and go out together
 * every PACE_MS, one send() a member for all of them, as sparkd's rounds
 * do in a busy room. What is left is what spark_load and the
 * kernel's loopback cost on this machine, so sparkd's fan-out figures can be
 * read against it (docs/benchmarks.md).
 *
 *   floor_relay PORT_A PORT_B [PACE_MS]
 *       prints "PID_A PID_B PORT_A PORT_B" (a port 0 is the kernel's
 *       choice), then serves until killed
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MARKER      "bench#"
#define MAX_IN      65536
#define MAX_PAYLOAD 4096
#define MAX_PENDING 65536
#define UPGRADED                                                                                   \
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"                                   \
    "Connection: Upgrade\r\n\r\n"
#define LIVE_PAYLOAD "{\"type\":\"presence_state\",\"state\":{}}"

typedef struct {
    bool open, upgraded;
    int member; /* index in members[], -1 before the upgrade */
    size_t len;
    unsigned char *in; /* MAX_IN bytes while open */
} conn;

static conn *conns; /* by descriptor */
static size_t nconns;
static int *members, nmembers;
static long long seq, short_sends;
static int pace_ms;
static unsigned char pending[MAX_PENDING]; /* frames waiting for the pace */
static size_t npending;

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* A server's frame (unmasked, RFC 6455 5.2) for a text of len bytes. */
static size_t frame(unsigned char *out, const char *text, size_t len) {
    size_t h = 2;
    out[0] = 0x81;
    if (len < 126) {
        out[1] = (unsigned char)len;
    } else {
        out[1] = 126, out[2] = (unsigned char)(len >> 8), out[3] = (unsigned char)len;
        h = 4;
    }
    memcpy(out + h, text, len);
    return h + len;
}

static void send_all(int fd, const unsigned char *b, size_t len) {
    ssize_t n = send(fd, b, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != (ssize_t)len) short_sends++;
}

static void send_pending(void) {
    for (int i = 0; i < nmembers && npending; i++)
        send_all(members[i], pending, npending);
    npending = 0;
}

/* One delivery to every member of this process: now, or with the pace. */
static void deliver(const char *payload, size_t len) {
    if (npending + len + 4 > MAX_PENDING) send_pending();
    npending += frame(pending + npending, payload, len);
    if (!pace_ms) send_pending();
}

static void drop(int ep, int fd) {
    conn *c = &conns[fd];
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if (c->member >= 0) {
        int last = members[--nmembers];
        members[c->member] = last;
        conns[last].member = c->member;
    }
    free(c->in);
    memset(c, 0, sizeof *c);
}

/* A chat message from a member: {"action":"chat","message":"bench#ID#T#"}.
 * Delivered as {"seq":N,"type":"chat","message":"bench#ID#T#"}. */
static void chat(int peer, const char *text, size_t len) {
    const char *m = memmem(text, len, MARKER, sizeof MARKER - 1);
    const char *end = m ? memchr(m, '"', len - (size_t)(m - text)) : NULL;
    if (!end) return;
    char payload[MAX_PAYLOAD];
    int n =
        snprintf(payload, sizeof payload, "{\"seq\":%lld,\"type\":\"chat\",\"message\":\"%.*s\"}",
                 ++seq, (int)(end - m), m);
    if (n <= 0 || (size_t)n >= sizeof payload) return;
    if (send(peer, payload, (size_t)n, MSG_NOSIGNAL) != n) short_sends++;
    deliver(payload, (size_t)n);
}

/* Whole client frames at the start of b: the bytes they take, or -1 when
 * the member closes. Client frames are masked. */
static long frames(int peer, unsigned char *b, size_t len) {
    size_t pos = 0;
    while (len - pos >= 6) {
        unsigned char *f = b + pos;
        int opcode = f[0] & 0x0f;
        size_t plen = f[1] & 0x7f, h = 2;
        if (plen == 126) {
            plen = (size_t)f[2] << 8 | f[3];
            h = 4;
        } else if (plen == 127) {
            return -1; /* no chat message is that large */
        }
        if (len - pos < h + 4 + plen) break;
        unsigned char *mask = f + h, *p = f + h + 4;
        for (size_t i = 0; i < plen; i++)
            p[i] ^= mask[i & 3];
        if (opcode == 8) return -1;
        if (opcode == 1) chat(peer, (const char *)p, plen);
        pos += h + 4 + plen;
    }
    return (long)pos;
}

static void readable(int ep, int peer, int fd) {
    conn *c = &conns[fd];
    ssize_t n = read(fd, c->in + c->len, MAX_IN - c->len);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
        drop(ep, fd);
        return;
    }
    c->len += (size_t)n;
    size_t used = 0;
    if (!c->upgraded) {
        unsigned char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (!end) {
            if (c->len == MAX_IN) drop(ep, fd);
            return;
        }
        unsigned char live[sizeof UPGRADED + sizeof LIVE_PAYLOAD + 4];
        memcpy(live, UPGRADED, sizeof UPGRADED - 1);
        size_t k = sizeof UPGRADED - 1;
        k += frame(live + k, LIVE_PAYLOAD, sizeof LIVE_PAYLOAD - 1);
        send_all(fd, live, k);
        c->upgraded = true;
        c->member = nmembers;
        members[nmembers++] = fd;
        used = (size_t)(end + 4 - c->in);
    }
    long f = frames(peer, c->in + used, c->len - used);
    if (f < 0) {
        drop(ep, fd);
        return;
    }
    used += (size_t)f;
    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;
}

static void accept_all(int ep, int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if ((size_t)fd >= nconns || !(conns[fd].in = malloc(MAX_IN))) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[fd].open = true;
        conns[fd].member = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096))
        die("listen");
    return fd;
}

static int port_of(int lfd) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    return getsockname(lfd, (struct sockaddr *)&a, &len) ? -1 : ntohs(a.sin_port);
}

static void serve(int lfd, int peer) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = peer;
    epoll_ctl(ep, EPOLL_CTL_ADD, peer, &ev);
    int tfd = -1;
    if (pace_ms) {
        long ns = pace_ms * 1000000L;
        struct itimerspec every = {{ns / 1000000000L, ns % 1000000000L},
                                   {ns / 1000000000L, ns % 1000000000L}};
        if ((tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
            timerfd_settime(tfd, 0, &every, NULL))
            die("timerfd");
        ev.data.fd = tfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    }
    for (;;) {
        struct epoll_event evs[512];
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                accept_all(ep, lfd);
            } else if (fd == tfd) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) > 0) send_pending();
            } else if (fd == peer) {
                char payload[MAX_PAYLOAD];
                ssize_t k = recv(peer, payload, sizeof payload, 0);
                if (k < 0 && errno == EAGAIN) continue;
                if (k <= 0) exit(0); /* the other process is gone */
                deliver(payload, (size_t)k);
            } else if (conns[fd].open) {
                readable(ep, peer, fd);
            }
        }
    }
}

static void report(int sig) {
    (void)sig;
    char line[120];
    int n = snprintf(line, sizeof line, "floor_relay %ld: %lld short sends\n", (long)getpid(),
                     short_sends);
    if (n > 0) (void)!write(2, line, (size_t)n);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: floor_relay PORT_A PORT_B [PACE_MS]\n");
        return 2;
    }
    pace_ms = argc == 4 ? atoi(argv[3]) : 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    nconns = rl.rlim_cur > 1 << 20 ? 1 << 20 : rl.rlim_cur;
    if (!(conns = calloc(nconns, sizeof *conns)) || !(members = calloc(nconns, sizeof *members)))
        die("calloc");
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair))
        die("socketpair");
    signal(SIGTERM, report);
    signal(SIGINT, report);
    /* Both listen before the process ids are out: a client may connect at once. */
    int lfd_a = listen_on(atoi(argv[1])), lfd_b = listen_on(atoi(argv[2]));
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) return 1;
        close(pair[0]);
        close(lfd_a);
        serve(lfd_b, pair[1]);
    }
    close(pair[1]);
    printf("%ld %ld %d %d\n", (long)parent, (long)pid, port_of(lfd_a), port_of(lfd_b));
    fflush(stdout);
    close(lfd_b);
    serve(lfd_a, pair[0]);
    return 0;
}
