/*
 * wsclient.c - the integration suites' WebSocket client (RFC 6455, client
 * side): handshake, masked frames out, fragmented frames in, ping answered.
 */
#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct it_ws {
    int fd;
    unsigned char *buf; /* bytes received, not yet parsed */
    size_t len, cap;
    char *msg; /* a message being assembled from fragments */
    size_t msg_len;
    bool closed;
    int close_code;
    char close_reason[128];
};

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads more bytes into ws->buf, waiting until `deadline`. Returns 1 on
 * data, 0 on timeout, -1 when the connection ended. */
static int fill(it_ws *ws, long long deadline) {
    int wait = (int)(deadline - now_ms());
    struct pollfd p = {.fd = ws->fd, .events = POLLIN};
    int r = poll(&p, 1, wait > 0 ? wait : 0);
    if (r == 0) return 0;
    if (r < 0) return errno == EINTR ? 0 : -1;
    if (ws->cap - ws->len < 65536) {
        size_t cap = ws->cap * 2 + 65536;
        unsigned char *b = realloc(ws->buf, cap);
        if (!b) return -1;
        ws->buf = b;
        ws->cap = cap;
    }
    ssize_t n = recv(ws->fd, ws->buf + ws->len, ws->cap - ws->len, 0);
    if (n <= 0) return -1;
    ws->len += (size_t)n;
    return 1;
}

static it_ws *open_ws(int port, const char *target, const char *headers, int *status, bool narrow) {
    if (status) *status = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && narrow) {
        /* Set before connect: the segment size is agreed in the handshake,
         * and the server sizes its send buffer by it. */
        int mss = 536, rcvbuf = 4096;
        setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     target, port, headers ? headers : "");
    it_ws *ws = calloc(1, sizeof *ws);
    ws->fd = fd;
    ws->close_code = 1006;
    if (n >= (int)sizeof req || write_all(fd, req, (size_t)n)) goto fail;
    long long deadline = now_ms() + 5000;
    char *end = NULL;
    while (!end) {
        if (fill(ws, deadline) <= 0) goto fail;
        ws->buf[ws->len < ws->cap ? ws->len : ws->cap - 1] = '\0';
        end = ws->len >= 4 ? memmem(ws->buf, ws->len, "\r\n\r\n", 4) : NULL;
    }
    int code = 0;
    if (sscanf((char *)ws->buf, "HTTP/1.%*d %d", &code) != 1) goto fail;
    if (status) *status = code;
    if (code != 101) goto fail;
    size_t used = (size_t)(end + 4 - (char *)ws->buf);
    memmove(ws->buf, ws->buf + used, ws->len - used);
    ws->len -= used;
    return ws;
fail:
    close(fd);
    free(ws->buf);
    free(ws);
    return NULL;
}

it_ws *it_ws_open(int port, const char *target, const char *headers, int *status) {
    return open_ws(port, target, headers, status, false);
}

it_ws *it_ws_open_narrow(int port, const char *target) {
    return open_ws(port, target, NULL, NULL, true);
}

int it_ws_send(it_ws *ws, int opcode, const void *data, size_t len) {
    unsigned char head[14];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        head[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(len >> 8);
        head[h++] = (unsigned char)len;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            head[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(head + h, mask, 4);
    h += 4;
    unsigned char *frame = malloc(h + len);
    if (!frame) return -1;
    memcpy(frame, head, h);
    for (size_t i = 0; i < len; i++)
        frame[h + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    int r = write_all(ws->fd, frame, h + len);
    free(frame);
    return r;
}

int it_ws_send_text(it_ws *ws, const char *text) {
    return it_ws_send(ws, IT_WS_TEXT, text, strlen(text));
}

/* Parses one frame from the buffer. Returns its opcode and payload, or -1
 * when the buffer holds no complete frame. */
static int take_frame(it_ws *ws, bool *fin, unsigned char **payload, size_t *plen) {
    if (ws->len < 2) return -1;
    const unsigned char *b = ws->buf;
    size_t h = 2, len = b[1] & 0x7f;
    if (len == 126) {
        if (ws->len < 4) return -1;
        len = (size_t)b[2] << 8 | b[3];
        h = 4;
    } else if (len == 127) {
        if (ws->len < 10) return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b[2 + i];
        h = 10;
    }
    if (ws->len < h + len) return -1;
    *fin = b[0] & 0x80;
    int opcode = b[0] & 0x0f;
    *payload = malloc(len + 1);
    memcpy(*payload, b + h, len);
    (*payload)[len] = '\0';
    *plen = len;
    memmove(ws->buf, ws->buf + h + len, ws->len - h - len);
    ws->len -= h + len;
    return opcode;
}

static char *append(char *msg, size_t *msg_len, const unsigned char *p, size_t n) {
    char *m = realloc(msg, *msg_len + n + 1);
    memcpy(m + *msg_len, p, n);
    *msg_len += n;
    m[*msg_len] = '\0';
    return m;
}

char *it_ws_recv(it_ws *ws, int timeout_ms) {
    long long deadline = now_ms() + timeout_ms;
    while (!ws->closed) {
        bool fin;
        unsigned char *p;
        size_t n;
        int op = take_frame(ws, &fin, &p, &n);
        if (op < 0) {
            int r = fill(ws, deadline);
            if (r == 0) return NULL;
            if (r < 0) ws->closed = true;
            continue;
        }
        if (op == IT_WS_CLOSE) {
            ws->closed = true;
            ws->close_code = n >= 2 ? (p[0] << 8 | p[1]) : 1005;
            snprintf(ws->close_reason, sizeof ws->close_reason, "%s", n > 2 ? (char *)p + 2 : "");
        } else if (op == 9) {
            it_ws_send(ws, 10, p, n);
        } else if (op == 0 || op == IT_WS_TEXT || op == IT_WS_BINARY) {
            ws->msg = append(ws->msg, &ws->msg_len, p, n);
            if (fin) {
                char *m = ws->msg;
                ws->msg = NULL;
                ws->msg_len = 0;
                free(p);
                return m;
            }
        }
        free(p);
    }
    return NULL;
}

char *it_ws_recv_match(it_ws *ws, const char *needle, int timeout_ms) {
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - now_ms());
        char *m = it_ws_recv(ws, left > 0 ? left : 0);
        if (!m || strstr(m, needle)) return m;
        free(m);
    }
}

char *it_ws_recv_through(it_ws *ws, const char *needle, int timeout_ms) {
    long long deadline = now_ms() + timeout_ms;
    char *all = calloc(1, 1);
    size_t len = 0;
    for (;;) {
        int left = (int)(deadline - now_ms());
        char *m = all ? it_ws_recv(ws, left > 0 ? left : 0) : NULL;
        size_t k = m ? strlen(m) : 0;
        char *grown = m ? realloc(all, len + k + 2) : NULL;
        if (!grown) {
            free(m);
            free(all);
            return NULL;
        }
        all = grown;
        memcpy(all + len, m, k);
        memcpy(all + len + k, "\n", 2);
        len += k + 1;
        bool found = strstr(m, needle) != NULL;
        free(m);
        if (found) return all;
    }
}

int it_ws_wait_close(it_ws *ws, int timeout_ms) {
    long long deadline = now_ms() + timeout_ms;
    while (!ws->closed) {
        int left = (int)(deadline - now_ms());
        if (left <= 0) return -1;
        free(it_ws_recv(ws, left));
    }
    return ws->close_code;
}

int it_ws_close_code(const it_ws *ws) { return ws->close_code; }
const char *it_ws_close_reason(const it_ws *ws) { return ws->close_reason; }
int it_ws_fd(const it_ws *ws) { return ws->fd; }

static void release(it_ws *ws) {
    close(ws->fd);
    free(ws->buf);
    free(ws->msg);
    free(ws);
}

void it_ws_close(it_ws *ws) {
    if (!ws) return;
    if (!ws->closed) {
        unsigned char code[2] = {1000 >> 8, 1000 & 0xff};
        it_ws_send(ws, IT_WS_CLOSE, code, 2);
        it_ws_wait_close(ws, 2000);
    }
    release(ws);
}

void it_ws_drop(it_ws *ws) {
    if (ws) release(ws);
}

it_ws *it_ws_open_bearer(int port, const char *target, const char *token, const char *extra,
                         int *status) {
    char headers[8192] = "";
    if (token) snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", token);
    if (extra) strncat(headers, extra, sizeof headers - strlen(headers) - 1);
    return it_ws_open(port, target, headers, status);
}
