/*
 * fuzz_proxy.c - the forwarding headers and SPARK_TRUSTED_PROXIES
 * (proxy.c).
 *
 * Input: FORWARDED '\n' X-FORWARDED-PROTO '\n' X-FORWARDED-HOST '\n'
 * PROXIES. Invariants: the origin's host is what it was or a clean
 * host[:port] that fits; a proxy list that parses trusts what it names.
 */
#include "fuzz.h"
#include "proxy.h"

#include <arpa/inet.h>
#include <ctype.h>

static void check_host(const char *host) {
    size_t n = strnlen(host, SPARK_ORIGIN_HOST_MAX + 1);
    FUZZ_CHECK(n <= SPARK_ORIGIN_HOST_MAX);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(isalnum((unsigned char)host[i]) || strchr(".-_:[]", host[i]));
}

static void origin(const char *forwarded, const char *x_proto, const char *x_host) {
    spark_origin o = {.https = false, .host = "example.org"};
    spark_origin_from_headers(forwarded, x_proto, x_host, &o);
    check_host(o.host);
    FUZZ_CHECK(o.host[0] != '\0');
}

static void proxies(const char *text) {
    spark_proxies *p = NULL;
    char err[256] = "";
    if (spark_proxies_parse(text, &p, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0' && p == NULL);
        return;
    }
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr);
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &v6.sin6_addr);
    /* An IPv4 peer and the same peer seen on an IPv6 socket agree. */
    bool a = spark_proxies_trust(p, (const struct sockaddr *)&v4, sizeof v4);
    bool b = spark_proxies_trust(p, (const struct sockaddr *)&v6, sizeof v6);
    FUZZ_CHECK(a == b);
    spark_proxies_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *parts[FUZZ_MAX_PARTS];
    char *block = fuzz_split(data, size, '\n', 4, parts);
    origin(parts[0], parts[1], parts[2]);
    origin(parts[0], NULL, NULL);
    origin(NULL, parts[1], parts[2]);
    proxies(parts[3]);
    free(block);
    return 0;
}
