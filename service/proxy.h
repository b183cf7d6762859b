/*
 * proxy.h - the original scheme and host of a request.
 *
 * Behind a TLS-terminating proxy, sparkd sees plain HTTP from the proxy,
 * while the browser spoke HTTPS to a public host name. The session cookie
 * must then be Secure and the same-origin checks must compare against
 * https://that-host. Only the proxy knows them, and it says so in
 * "Forwarded: proto=...;host=..." (RFC 7239) or "X-Forwarded-Proto" and
 * "X-Forwarded-Host". Anyone can send those headers, so they count only
 * when the TCP peer is one of SPARK_TRUSTED_PROXIES.
 */
#ifndef SPARK_PROXY_H
#define SPARK_PROXY_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Longest host[:port] taken from a Host or forwarded host value. */
#define SPARK_ORIGIN_HOST_MAX 262

/* The addresses and networks whose forwarding headers are believed. */
typedef struct spark_proxies spark_proxies;

/* Parses SPARK_TRUSTED_PROXIES: comma-separated IPv4 or IPv6 addresses or
 * CIDR prefixes ("127.0.0.1,10.0.0.0/8,::1"). NULL or "" trusts no one
 * (*out is then NULL). Returns 0, or -1 with one line in `err` naming the
 * bad entry. */
int spark_proxies_parse(const char *text, spark_proxies **out, char *err, size_t errlen);
void spark_proxies_free(spark_proxies *proxies);

/* Whether `addr` is a trusted proxy. An IPv4 peer seen on an IPv6 socket
 * (::ffff:a.b.c.d) is the same peer as a.b.c.d. */
bool spark_proxies_trust(const spark_proxies *proxies, const struct sockaddr *addr, socklen_t len);

/* How the client reached us. */
typedef struct {
    bool https;
    char host[SPARK_ORIGIN_HOST_MAX + 1]; /* host[:port]; "" when unknown */
} spark_origin;

/* What a trusted proxy's headers say, given their raw values (NULL when
 * absent): each of scheme and host is taken from the last element of
 * Forwarded when it names one, else from the last entry of
 * X-Forwarded-Proto / X-Forwarded-Host. What neither names, or names in a
 * malformed way, is left as `out` had it. */
void spark_origin_from_headers(const char *forwarded, const char *x_proto, const char *x_host,
                               spark_origin *out);

/* The request's original scheme and host: the connection's own (its TLS,
 * its Host header), corrected by the forwarding headers when the peer is
 * trusted. */
void spark_origin_of(const spark_proxies *proxies, struct lws *wsi, spark_origin *out);

#endif
