/*
 * proxy.c - SPARK_TRUSTED_PROXIES and the forwarding headers of the
 * proxies it names, so that the login cookie and the same-origin checks
 * see the scheme and host the browser used, not the proxy's hop.
 *
 * Every address is kept as 16 bytes, IPv4 ones mapped into IPv6
 * (::ffff:a.b.c.d with the prefix length + 96), so that one comparison
 * serves both families and an IPv4 client on a dual-stack socket matches
 * an IPv4 entry. Nothing is resolved: names are refused, not looked up.
 *
 * A proxy adds its own word last, so only the last Forwarded element or
 * the last X-Forwarded-* entry counts: anything before it came from
 * further away, the client included.
 */
#include "proxy.h"

#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_ENTRY_BYTES  64   /* longest address/prefix text */
#define MAX_FORWARDED    1024 /* longest Forwarded header read */
#define MAX_X_FORWARDED  512  /* longest X-Forwarded-Proto/-Host read */
#define MAX_SCHEME_BYTES 16

typedef struct {
    uint8_t addr[16];
    int bits;
} network;

struct spark_proxies {
    size_t count;
    network nets[];
};

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ---- SPARK_TRUSTED_PROXIES -------------------------------------------- */

static bool in_network(const network *n, const uint8_t addr[16]) {
    int full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->addr, addr, (size_t)full) != 0) return false;
    if (!rest) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (n->addr[full] & mask) == (addr[full] & mask);
}

/* Clears the bits past the prefix; returns true if any was set. */
static bool clear_host_bits(network *n) {
    bool had = false;
    for (int i = 0; i < 16; i++) {
        int keep = n->bits - i * 8;
        uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        had |= (n->addr[i] & ~mask) != 0;
        n->addr[i] &= mask;
    }
    return had;
}

/* Writes a network's address in its own family, for a message. */
static void network_text(const network *n, char *out, size_t cap) {
    if (memcmp(n->addr, v4_mapped, sizeof v4_mapped) == 0 && n->bits >= 96)
        inet_ntop(AF_INET, n->addr + 12, out, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, n->addr, out, (socklen_t)cap);
}

static int parse_entry(const char *text, size_t len, network *n, char *err, size_t errlen) {
    char buf[MAX_ENTRY_BYTES + 1];
    if (len == 0) {
        snprintf(err, errlen, "empty entry (addresses or CIDR prefixes, separated by commas)");
        return -1;
    }
    if (len > MAX_ENTRY_BYTES) {
        snprintf(err, errlen, "\"%.32s...\" is too long for an address", text);
        return -1;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    if (slash) *slash = '\0';
    int max_bits;
    memset(n, 0, sizeof *n);
    if (inet_pton(AF_INET, buf, n->addr + 12) == 1) {
        memcpy(n->addr, v4_mapped, sizeof v4_mapped);
        max_bits = 32;
    } else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
        max_bits = 128;
    } else {
        snprintf(err, errlen, "\"%.*s\" is not an IPv4 or IPv6 address (names are not resolved)",
                 (int)len, text);
        return -1;
    }
    n->bits = max_bits;
    if (slash) {
        const char *p = slash + 1;
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 3 || p[digits] || atoi(p) > max_bits) {
            snprintf(err, errlen, "\"%.*s\": the prefix length must be 0 to %d", (int)len, text,
                     max_bits);
            return -1;
        }
        n->bits = atoi(p);
    }
    if (max_bits == 32) n->bits += 96;
    if (clear_host_bits(n)) {
        /* 10.1.2.3/8 trusts far more than 10.1.2.3: a likely slip. */
        char net[INET6_ADDRSTRLEN];
        network_text(n, net, sizeof net);
        snprintf(err, errlen, "\"%.*s\" has bits set past the prefix (the network is %s/%d)",
                 (int)len, text, net, n->bits - (max_bits == 32 ? 96 : 0));
        return -1;
    }
    return 0;
}

int spark_proxies_parse(const char *text, spark_proxies **out, char *err, size_t errlen) {
    *out = NULL;
    if (!text || !*text) return 0;
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ',';
    spark_proxies *list = calloc(1, sizeof *list + count * sizeof list->nets[0]);
    if (!list) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (const char *p = text;; p++) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ",");
        const char *next = p + len;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (parse_entry(p, len, &list->nets[list->count], err, errlen)) {
            free(list);
            return -1;
        }
        list->count++;
        if (!*next) break;
        p = next;
    }
    *out = list;
    return 0;
}

void spark_proxies_free(spark_proxies *proxies) { free(proxies); }

bool spark_proxies_trust(const spark_proxies *proxies, const struct sockaddr *addr, socklen_t len) {
    if (!proxies || !addr) return false;
    uint8_t a[16];
    if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(a, v4_mapped, sizeof v4_mapped);
        memcpy(a + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    } else if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        memcpy(a, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
    } else {
        return false; /* a unix socket, or nothing we know */
    }
    for (size_t i = 0; i < proxies->count; i++)
        if (in_network(&proxies->nets[i], a)) return true;
    return false;
}

/* ---- the headers ------------------------------------------------------ */

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

/* Trims optional whitespace from both ends of [*start, *end). */
static void trim(const char **start, const char **end) {
    while (*start < *end && is_ows(**start))
        (*start)++;
    while (*end > *start && is_ows((*end)[-1]))
        (*end)--;
}

/* Where the last comma-separated element starts, skipping commas inside
 * quoted strings; NULL if a quote is left open. */
static const char *last_element(const char *h) {
    const char *start = h;
    bool quoted = false;
    for (const char *p = h; *p; p++) {
        if (quoted && *p == '\\' && p[1]) {
            p++;
        } else if (*p == '"') {
            quoted = !quoted;
        } else if (!quoted && *p == ',') {
            start = p + 1;
        }
    }
    return quoted ? NULL : start;
}

/* Copies a Forwarded value (a token or a quoted string) into out.
 * Returns 0, or -1 if malformed or too long. */
static int forwarded_value(const char *v, const char *end, char *out, size_t cap) {
    size_t o = 0;
    if (v < end && *v == '"') {
        if (end - v < 2 || end[-1] != '"') return -1;
        for (v++, end--; v < end; v++) {
            if (*v == '\\' && v + 1 < end) v++;
            if (o + 1 >= cap) return -1;
            out[o++] = *v;
        }
    } else {
        for (; v < end; v++) {
            if (*v <= ' ' || *v == 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *v)) return -1;
            if (o + 1 >= cap) return -1;
            out[o++] = *v;
        }
    }
    out[o] = '\0';
    return 0;
}

/* The proto and host of the last element of a Forwarded header, each ""
 * when the element does not name it. Returns -1 if the element is
 * malformed (then neither counts). */
static int forwarded_last(const char *h, char *proto, size_t pcap, char *host, size_t hcap) {
    proto[0] = host[0] = '\0';
    const char *p = last_element(h);
    if (!p) return -1;
    bool seen_proto = false, seen_host = false;
    while (*p) {
        /* One pair: up to the next ';' outside quotes. */
        const char *end = p;
        for (bool quoted = false; *end && (quoted || *end != ';'); end++) {
            if (quoted && *end == '\\' && end[1]) {
                end++;
            } else if (*end == '"') {
                quoted = !quoted;
            }
        }
        const char *name = p, *name_end = memchr(p, '=', (size_t)(end - p));
        if (name_end) {
            const char *value = name_end + 1, *value_end = end;
            trim(&name, &name_end);
            trim(&value, &value_end);
            size_t n = (size_t)(name_end - name);
            char scratch[SPARK_ORIGIN_HOST_MAX + 1], *dst = scratch;
            size_t cap = sizeof scratch;
            /* A parameter given twice is not the proxy's unambiguous word. */
            if (n == 5 && strncasecmp(name, "proto", 5) == 0) {
                if (seen_proto) return -1;
                seen_proto = true;
                dst = proto, cap = pcap;
            } else if (n == 4 && strncasecmp(name, "host", 4) == 0) {
                if (seen_host) return -1;
                seen_host = true;
                dst = host, cap = hcap;
            }
            /* Other parameters (for, by) are not ours to judge. */
            if (forwarded_value(value, value_end, dst, cap) && dst != scratch) return -1;
        } else {
            const char *q = p, *q_end = end;
            trim(&q, &q_end);
            if (q != q_end) return -1; /* a pair without '=' */
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* The last comma-separated entry of an X-Forwarded-* value, trimmed. */
static void last_entry(const char *h, char *out, size_t cap) {
    const char *start = strrchr(h, ',');
    start = start ? start + 1 : h;
    const char *end = start + strlen(start);
    trim(&start, &end);
    size_t n = (size_t)(end - start);
    if (n >= cap) n = 0;
    memcpy(out, start, n);
    out[n] = '\0';
}

/* 1 for https, 0 for http, -1 for anything else. */
static int scheme_is_https(const char *s) {
    if (strcasecmp(s, "https") == 0 || strcasecmp(s, "wss") == 0) return 1;
    if (strcasecmp(s, "http") == 0 || strcasecmp(s, "ws") == 0) return 0;
    return -1;
}

/* A host[:port] or [v6]:port, and nothing that could smuggle more into
 * the origin compared against it. */
static bool valid_host(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > SPARK_ORIGIN_HOST_MAX) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(".-_:[]", *s)) return false;
    return true;
}

void spark_origin_from_headers(const char *forwarded, const char *x_proto, const char *x_host,
                               spark_origin *out) {
    char proto[MAX_SCHEME_BYTES] = "", host[SPARK_ORIGIN_HOST_MAX + 1] = "";
    if (forwarded && forwarded_last(forwarded, proto, sizeof proto, host, sizeof host) != 0)
        proto[0] = host[0] = '\0';
    if (!proto[0] && x_proto) last_entry(x_proto, proto, sizeof proto);
    if (!host[0] && x_host) last_entry(x_host, host, sizeof host);
    int https = proto[0] ? scheme_is_https(proto) : -1;
    if (https >= 0) out->https = https == 1;
    if (valid_host(host)) snprintf(out->host, sizeof out->host, "%s", host);
}

/* ---- a request -------------------------------------------------------- */

/* Copies a header lws does not know by name (`name` lower-case, with its
 * colon); NULL when absent or longer than cap - 1. */
static const char *custom_header(struct lws *wsi, const char *name, char *buf, size_t cap) {
    int nlen = (int)strlen(name);
    int n = lws_hdr_custom_length(wsi, name, nlen);
    if (n <= 0 || (size_t)n >= cap) return NULL;
    return lws_hdr_custom_copy(wsi, buf, (int)cap, name, nlen) < 0 ? NULL : buf;
}

/* Says once per process that forwarding headers came from a peer that is
 * not trusted: behind a proxy, SPARK_TRUSTED_PROXIES is probably missing,
 * and the Secure flag and same-origin checks are then wrong. */
static void warn_untrusted(const struct sockaddr_storage *peer) {
    static bool warned;
    if (warned) return;
    warned = true;
    char text[INET6_ADDRSTRLEN] = "?";
    if (peer->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, text, sizeof text);
    } else if (peer->ss_family == AF_INET6) {
        /* As the operator would write it in SPARK_TRUSTED_PROXIES. */
        network n = {.bits = 128};
        memcpy(n.addr, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
        network_text(&n, text, sizeof text);
    }
    spark_log(SPARK_LOG_WARN, "proxy.untrusted",
              "forwarding headers from a peer not in SPARK_TRUSTED_PROXIES are ignored", "peer=%s",
              text);
}

void spark_origin_of(const spark_proxies *proxies, struct lws *wsi, spark_origin *out) {
    out->https = lws_is_ssl(wsi) != 0;
    out->host[0] = '\0';
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HOST);
    if (n > 0 && n <= SPARK_ORIGIN_HOST_MAX)
        lws_hdr_copy(wsi, out->host, (int)sizeof out->host, WSI_TOKEN_HOST);

    char forwarded[MAX_FORWARDED], x_proto[MAX_X_FORWARDED], x_host[MAX_X_FORWARDED];
    const char *f = custom_header(wsi, "forwarded:", forwarded, sizeof forwarded);
    const char *xp = custom_header(wsi, "x-forwarded-proto:", x_proto, sizeof x_proto);
    const char *xh = custom_header(wsi, "x-forwarded-host:", x_host, sizeof x_host);
    if (!f && !xp && !xh) return;

    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    memset(&peer, 0, sizeof peer);
    int fd = lws_get_socket_fd(wsi);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&peer, &len) != 0) return;
    if (!spark_proxies_trust(proxies, (const struct sockaddr *)&peer, len)) {
        warn_untrusted(&peer);
        return;
    }
    spark_origin_from_headers(f, xp, xh, out);
}
