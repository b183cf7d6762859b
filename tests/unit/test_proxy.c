/*
 * test_proxy.c - SPARK_TRUSTED_PROXIES and the forwarding headers: which
 * peers are trusted (IPv4, IPv6, prefixes, IPv4 on an IPv6 socket), and
 * what Forwarded and X-Forwarded-Proto/-Host say, the last word counting.
 * tests/integration/test_secure.c checks the same rule on a live sparkd.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static spark_proxies *parse(const char *text) {
    spark_proxies *p = NULL;
    char err[256] = "";
    ck_assert_msg(spark_proxies_parse(text, &p, err, sizeof err) == 0, "%s: %s",
                  text ? text : "(unset)", err);
    return p;
}

/* Whether `proxies` trusts the peer `addr`, given as text (v4 or v6). */
static bool trusts(const spark_proxies *proxies, const char *addr) {
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, addr, &v4.sin_addr) == 1)
        return spark_proxies_trust(proxies, (struct sockaddr *)&v4, sizeof v4);
    ck_assert_msg(inet_pton(AF_INET6, addr, &v6.sin6_addr) == 1, "%s", addr);
    return spark_proxies_trust(proxies, (struct sockaddr *)&v6, sizeof v6);
}

START_TEST(addresses_and_prefixes) {
    spark_proxies *p = parse("127.0.0.1, 10.0.0.0/8,172.16.0.0/12 ,::1,fd00:1::/32");
    ck_assert(trusts(p, "127.0.0.1"));
    ck_assert(!trusts(p, "127.0.0.2"));
    ck_assert(trusts(p, "10.0.0.0"));
    ck_assert(trusts(p, "10.255.255.255"));
    ck_assert(!trusts(p, "11.0.0.0"));
    ck_assert(!trusts(p, "9.255.255.255"));
    /* A prefix that ends inside a byte. */
    ck_assert(trusts(p, "172.16.0.1"));
    ck_assert(trusts(p, "172.31.255.255"));
    ck_assert(!trusts(p, "172.32.0.0"));
    ck_assert(!trusts(p, "172.15.255.255"));
    ck_assert(trusts(p, "::1"));
    ck_assert(!trusts(p, "::2"));
    ck_assert(trusts(p, "fd00:1:ffff::7"));
    ck_assert(!trusts(p, "fd00:2::1"));
    /* An IPv4 client as an IPv6 socket reports it. */
    ck_assert(trusts(p, "::ffff:10.1.2.3"));
    ck_assert(trusts(p, "::ffff:127.0.0.1"));
    ck_assert(!trusts(p, "::ffff:127.0.0.2"));
    /* ...but not an IPv6 address that merely ends in the same bytes. */
    ck_assert(!trusts(p, "::7f00:1"));
    spark_proxies_free(p);
}
END_TEST

START_TEST(everyone_and_no_one) {
    spark_proxies *v4 = parse("0.0.0.0/0"), *all = parse("::/0");
    ck_assert(trusts(v4, "203.0.113.9"));
    ck_assert(!trusts(v4, "2001:db8::1"));
    ck_assert(trusts(all, "2001:db8::1"));
    ck_assert(trusts(all, "203.0.113.9"));
    spark_proxies_free(v4);
    spark_proxies_free(all);
    /* Unset or empty: nobody, and no list is allocated. */
    ck_assert_ptr_null(parse(NULL));
    ck_assert_ptr_null(parse(""));
    ck_assert(!trusts(NULL, "127.0.0.1"));
    /* A unix socket peer has no address to trust. */
    spark_proxies *p = parse("127.0.0.1");
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    ck_assert(!spark_proxies_trust(p, (struct sockaddr *)&un, sizeof un));
    spark_proxies_free(p);
}
END_TEST

static const char *const bad_lists[] = {"localhost",
                                        "10.0.0.0/33",
                                        "::1/129",
                                        "10.0.0.0/",
                                        "10.0.0.0/8x",
                                        "10.0.0.0/-1",
                                        "1.2.3",
                                        "10.1.2.3/8",
                                        "fd00::1/8",
                                        ",",
                                        "127.0.0.1,",
                                        "127.0.0.1,,::1",
                                        " , ",
                                        "fe80::1%eth0",
                                        "1.2.3.4 5.6.7.8",
                                        "10.0.0.0/0008",
                                        "*"};

START_TEST(bad_lists_are_refused) {
    spark_proxies *p = (spark_proxies *)1;
    char err[256] = "";
    ck_assert_int_eq(spark_proxies_parse(bad_lists[_i], &p, err, sizeof err), -1);
    ck_assert_ptr_null(p);
    ck_assert_msg(err[0] && !strchr(err, '\n'), "\"%s\": \"%s\"", bad_lists[_i], err);
}
END_TEST

/* What the headers make of a plain-HTTP request to "internal:8080". */
static spark_origin seen(const char *forwarded, const char *x_proto, const char *x_host) {
    spark_origin o = {.https = false, .host = "internal:8080"};
    spark_origin_from_headers(forwarded, x_proto, x_host, &o);
    return o;
}

START_TEST(x_forwarded_headers) {
    ck_assert(seen(NULL, "https", NULL).https);
    ck_assert(seen(NULL, "HTTPS", NULL).https);
    ck_assert(seen(NULL, " wss ", NULL).https);
    ck_assert(!seen(NULL, "http", NULL).https);
    /* The nearest proxy's entry is the last. */
    ck_assert(seen(NULL, "http, https", NULL).https);
    ck_assert(!seen(NULL, "https,http", NULL).https);
    /* Nonsense changes nothing. */
    ck_assert(!seen(NULL, "gopher", NULL).https);
    ck_assert(!seen(NULL, "", NULL).https);
    ck_assert_str_eq(seen(NULL, NULL, "spark.example").host, "spark.example");
    ck_assert_str_eq(seen(NULL, NULL, "a.example, spark.example:8443").host, "spark.example:8443");
    ck_assert_str_eq(seen(NULL, NULL, "[2001:db8::1]:8443").host, "[2001:db8::1]:8443");
    ck_assert_str_eq(seen(NULL, NULL, "evil.example/path").host, "internal:8080");
    ck_assert_str_eq(seen(NULL, NULL, "a b").host, "internal:8080");
    ck_assert_str_eq(seen(NULL, NULL, "x@evil.example").host, "internal:8080");
    ck_assert_str_eq(seen(NULL, NULL, "").host, "internal:8080");
    char long_host[400];
    memset(long_host, 'a', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    ck_assert_str_eq(seen(NULL, NULL, long_host).host, "internal:8080");
}
END_TEST

START_TEST(forwarded_header) {
    ck_assert(seen("proto=https", NULL, NULL).https);
    ck_assert(seen("Proto=HTTPS", NULL, NULL).https);
    spark_origin o =
        seen("for=192.0.2.60;proto=https;by=203.0.113.43;host=spark.example", NULL, NULL);
    ck_assert(o.https);
    ck_assert_str_eq(o.host, "spark.example");
    o = seen("for=\"[2001:db8:cafe::17]:4711\"; proto=https; host=\"spark.example:8443\"", NULL,
             NULL);
    ck_assert(o.https);
    ck_assert_str_eq(o.host, "spark.example:8443");
    /* Only the last element counts: the one the nearest proxy added. */
    o = seen("proto=https;host=evil.example, for=10.0.0.1;proto=http", NULL, NULL);
    ck_assert(!o.https);
    ck_assert_str_eq(o.host, "internal:8080");
    ck_assert(seen("proto=http, proto=https", NULL, NULL).https);
    /* A comma inside quotes does not start an element. */
    ck_assert(seen("for=\"a,b\";proto=https", NULL, NULL).https);
    /* Forwarded names it: X-Forwarded-* do not count. */
    ck_assert(!seen("proto=http", "https", NULL).https);
    ck_assert_str_eq(seen("host=a.example", NULL, "b.example").host, "a.example");
    /* Forwarded does not name it: they do. */
    ck_assert(seen("for=10.0.0.1", "https", NULL).https);
    ck_assert_str_eq(seen("proto=https", NULL, "b.example").host, "b.example");
    /* A malformed element names nothing. */
    static const char *const malformed[] = {
        "proto=https;proto=http", "proto=\"https", "proto",
        "proto=https;junk",       "proto=ht tps",  "proto=\"https\"x"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        ck_assert_msg(!seen(malformed[i], NULL, NULL).https, "%s", malformed[i]);
        ck_assert_msg(seen(malformed[i], "https", NULL).https, "%s with X-Forwarded-Proto",
                      malformed[i]);
    }
    ck_assert_str_eq(seen("host=\"evil.example/x\"", NULL, NULL).host, "internal:8080");
}
END_TEST

int main(void) {
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, addresses_and_prefixes);
    tcase_add_test(tc, everyone_and_no_one);
    tcase_add_loop_test(tc, bad_lists_are_refused, 0,
                        (int)(sizeof bad_lists / sizeof bad_lists[0]));
    tcase_add_test(tc, x_forwarded_headers);
    tcase_add_test(tc, forwarded_header);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
