/*
 * test_secure.c - sparkd behind a TLS-terminating proxy, and secure by
 * default, on real processes: a trusted peer's X-Forwarded-Proto or
 * Forwarded makes the login cookie Secure and the same-origin checks
 * (login form, cookie-authenticated WebSocket) expect https://; the same
 * headers from an untrusted peer change nothing. serve refuses to start
 * without keys unless SPARK_AUTH=off, and a bad SPARK_TRUSTED_PROXIES
 * stops it at once.
 */
#include "auth.h"
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SIGNING "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VERIFY  "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"

/* Instance 0 trusts the test's own address, 127.0.0.1; instance 1 does
 * not (it trusts other proxies only). */
static const char *const trusted_proxies[2] = {"::1, 127.0.0.0/8", "10.0.0.0/8,::1"};
static int port[2];
static pid_t pid[2];
static char logs[2][128];

static void use_keys(void) {
    setenv("SPARK_SIGNING_KEY", SIGNING, 1);
    setenv("SPARK_VERIFY_KEYS", VERIFY, 1);
    setenv("SPARK_DEMO_LOGIN", "1", 1);
    setenv("SPARK_AUTH", "on", 1);
}

static void start(void) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    use_keys();
    for (int i = 0; i < 2; i++) {
        setenv("SPARK_TRUSTED_PROXIES", trusted_proxies[i], 1);
        port[i] = it_free_port();
        snprintf(logs[i], sizeof logs[i], "/tmp/sparkd-proxy-%d-%d.log", (int)getpid(), i);
        pid[i] = it_start_sparkd(db, port[i], i ? "untrusting" : "trusting", logs[i]);
    }
    for (int i = 0; i < 2; i++)
        ck_assert_msg(it_wait_status(port[i], "/healthz", 200, 15000), "never healthy (see %s)",
                      logs[i]);
}

static void stop(void) {
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(it_stop_sparkd(pid[i], 8000) == 0, "did not stop cleanly (see %s)", logs[i]);
        unlink(logs[i]);
    }
}

/* POSTs the login form with `headers` (Host, Origin, forwarding...), each
 * line ending in \r\n. Returns the status; the response in `resp`. */
static int login(int p, const char *headers, char *resp, size_t cap) {
    static const char form[] = "name=Ada&next=%2F";
    char req[2048];
    snprintf(req, sizeof req,
             "POST /login HTTP/1.1\r\n%sContent-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             headers, strlen(form), form);
    return it_http_exchange(p, req, resp, cap);
}

/* The Set-Cookie line of a response, up to its end. */
static const char *cookie_line(const char *resp, char *out, size_t cap) {
    const char *set = strstr(resp, "set-cookie: spark_session=");
    ck_assert_msg(set, "no session cookie: %s", resp);
    snprintf(out, cap, "%.*s", (int)strcspn(set, "\r\n"), set);
    return out;
}

static bool secure(const char *resp) {
    char line[4400];
    return strstr(cookie_line(resp, line, sizeof line), "; Secure") != NULL;
}

/* A session token for the cookie of a WebSocket upgrade. */
static char *session_token(void) {
    spark_auth_signing_key *key;
    char err[256];
    ck_assert_int_eq(spark_auth_signing_key_parse(SIGNING, &key, err, sizeof err), 0);
    const char *scopes[] = {"room:*"};
    char *token = NULL;
    ck_assert_int_eq(spark_token_mint(key, "ada", "Ada", 600, scopes, 1, (int64_t)time(NULL),
                                      &token, err, sizeof err),
                     0);
    spark_auth_signing_key_free(key);
    return token;
}

/* Opens /chat/lobby with the session cookie and `extra` headers; returns
 * the HTTP status (101 when upgraded). */
static int upgrade(int p, const char *token, const char *extra) {
    char headers[6000];
    snprintf(headers, sizeof headers, "Cookie: %s=%s\r\n%s", SPARK_AUTH_COOKIE, token, extra);
    int status = 0;
    it_ws *ws = it_ws_open(p, "/chat/lobby", headers, &status);
    if (!ws) return status;
    it_ws_close(ws);
    return 101;
}

START_TEST(a_trusted_proxy_reports_https) {
    start();
    int p = port[0];
    static char resp[16384];
    char h[1024];

    /* X-Forwarded-Proto: the cookie is Secure, and the form's https
     * Origin is our own. */
    snprintf(h, sizeof h,
             "Host: spark.example\r\nOrigin: https://spark.example\r\n"
             "X-Forwarded-Proto: https\r\n");
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 303);
    ck_assert_msg(secure(resp), "%s", resp);
    /* Header names are case-insensitive. */
    snprintf(h, sizeof h,
             "Host: spark.example\r\nOrigin: https://spark.example\r\n"
             "x-forwarded-proto: https\r\n");
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 303);
    ck_assert_msg(secure(resp), "%s", resp);
    /* RFC 7239, with the public host the proxy was asked for. */
    snprintf(h, sizeof h,
             "Host: 127.0.0.1:%d\r\nOrigin: https://spark.example\r\n"
             "Forwarded: for=203.0.113.9;proto=https;host=spark.example\r\n",
             p);
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 303);
    ck_assert_msg(secure(resp), "%s", resp);
    /* The proxy's default port is the browser's origin without one. */
    snprintf(h, sizeof h,
             "Host: 127.0.0.1:%d\r\nOrigin: https://spark.example\r\n"
             "X-Forwarded-Proto: https\r\nX-Forwarded-Host: spark.example:443\r\n",
             p);
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 303);
    /* Without the proxy's word, an https Origin is another site... */
    snprintf(h, sizeof h, "Host: spark.example\r\nOrigin: https://spark.example\r\n");
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 403);
    /* ...and with it, a plain-http Origin is. */
    snprintf(h, sizeof h,
             "Host: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\nX-Forwarded-Proto: https\r\n", p,
             p);
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 403);
    /* A direct request is what it is: http, no Secure. */
    snprintf(h, sizeof h, "Host: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n", p, p);
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 303);
    ck_assert_msg(!secure(resp), "%s", resp);

    /* A cookie-authenticated WebSocket from the https page. */
    char *token = session_token();
    snprintf(h, sizeof h, "Origin: https://127.0.0.1:%d\r\nX-Forwarded-Proto: https\r\n", p);
    ck_assert_int_eq(upgrade(p, token, h), 101);
    snprintf(h, sizeof h,
             "Origin: https://spark.example\r\nX-Forwarded-Proto: https\r\n"
             "X-Forwarded-Host: spark.example\r\n");
    ck_assert_int_eq(upgrade(p, token, h), 101);
    snprintf(h, sizeof h, "Origin: https://127.0.0.1:%d\r\n", p);
    ck_assert_int_eq(upgrade(p, token, h), 403);
    snprintf(h, sizeof h, "Origin: https://evil.example\r\nX-Forwarded-Proto: https\r\n");
    ck_assert_int_eq(upgrade(p, token, h), 403);
    free(token);
    stop();
}
END_TEST

START_TEST(an_untrusted_peer_is_not_believed) {
    start();
    int p = port[1];
    static char resp[16384];
    char h[1024];
    snprintf(
        h, sizeof h,
        "Host: spark.example\r\nOrigin: https://spark.example\r\nX-Forwarded-Proto: https\r\n");
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 403);
    snprintf(h, sizeof h,
             "Host: 127.0.0.1:%d\r\nOrigin: https://spark.example\r\n"
             "Forwarded: proto=https;host=spark.example\r\n",
             p);
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 403);
    /* The connection's own scheme still counts: http, so no Secure. */
    snprintf(h, sizeof h,
             "Host: spark.example\r\nOrigin: http://spark.example\r\nX-Forwarded-Proto: https\r\n");
    ck_assert_int_eq(login(p, h, resp, sizeof resp), 303);
    ck_assert_msg(!secure(resp), "%s", resp);

    char *token = session_token();
    snprintf(h, sizeof h, "Origin: https://127.0.0.1:%d\r\nX-Forwarded-Proto: https\r\n", p);
    ck_assert_int_eq(upgrade(p, token, h), 403);
    snprintf(h, sizeof h,
             "Origin: http://spark.example\r\nX-Forwarded-Host: spark.example\r\n"
             "Forwarded: host=spark.example\r\n");
    ck_assert_int_eq(upgrade(p, token, h), 403);
    snprintf(h, sizeof h, "Origin: http://127.0.0.1:%d\r\nX-Forwarded-Proto: https\r\n", p);
    ck_assert_int_eq(upgrade(p, token, h), 101);
    free(token);

    /* The operator is told, once, where the headers were ignored. */
    FILE *f = fopen(logs[1], "r");
    ck_assert_ptr_nonnull(f);
    static char log[1 << 16];
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    const char *warn = strstr(log, "proxy.untrusted");
    ck_assert_msg(warn && strstr(warn, "peer=127.0.0.1") && !strstr(warn + 1, "proxy.untrusted"),
                  "%s", log);
    stop();
}
END_TEST

/* Runs `sparkd serve` that is expected to stop at its configuration. */
static void refused(const char *db, const char *prefix, const char *also) {
    char p[16], *out = NULL, *err = NULL;
    snprintf(p, sizeof p, "%d", it_free_port());
    const char *args[] = {"serve", "--port", p, "--host", "127.0.0.1", NULL};
    ck_assert_int_eq(it_sparkd(db, args, &out, &err), 2);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, also) &&
                      strchr(err, '\n') == err + strlen(err) - 1,
                  "stderr: %s", err);
    free(out);
    free(err);
}

START_TEST(serve_is_secure_by_default) {
    char name[64];
    const char *db = it_create_migrated_database(name); /* migrate needs no keys */
    unsetenv("SPARK_VERIFY_KEYS");
    unsetenv("SPARK_SIGNING_KEY");
    unsetenv("SPARK_TRUSTED_PROXIES");
    /* Empty is the default, on; and a SPARK_AUTH of ours, set, is one the
     * harness leaves alone when it makes keyless suites anonymous. */
    setenv("SPARK_AUTH", "", 1);
    refused(db, "sparkd: SPARK_VERIFY_KEYS: ", "SPARK_AUTH=off");
    setenv("SPARK_AUTH", "of", 1);
    refused(db, "sparkd: SPARK_AUTH: ", "of");
    setenv("SPARK_AUTH", "off", 1);
    setenv("SPARK_VERIFY_KEYS", VERIFY, 1);
    refused(db, "sparkd: SPARK_AUTH: ", "SPARK_VERIFY_KEYS");
    use_keys();
    setenv("SPARK_TRUSTED_PROXIES", "127.0.0.1,proxy.internal", 1);
    refused(db, "sparkd: SPARK_TRUSTED_PROXIES: ", "proxy.internal");

    /* Asked for, anonymous access works, and the log says so. */
    unsetenv("SPARK_VERIFY_KEYS");
    unsetenv("SPARK_TRUSTED_PROXIES");
    setenv("SPARK_AUTH", "off", 1);
    int p = it_free_port();
    char log_path[128];
    snprintf(log_path, sizeof log_path, "/tmp/sparkd-proxy-%d-off.log", (int)getpid());
    pid_t child = it_start_sparkd(db, p, "anonymous", log_path);
    ck_assert_msg(it_wait_status(p, "/healthz", 200, 15000), "never healthy (see %s)", log_path);
    int status = 0;
    it_ws *ws = it_ws_open(p, "/chat/lobby", NULL, &status);
    ck_assert_msg(ws, "anonymous upgrade refused: %d", status);
    it_ws_close(ws);
    ck_assert_int_eq(it_stop_sparkd(child, 8000), 0);
    FILE *f = fopen(log_path, "r");
    ck_assert_ptr_nonnull(f);
    static char log[1 << 16];
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    ck_assert_msg(strstr(log, "auth.off"), "%s", log);
    unlink(log_path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("secure");
    TCase *tc = tcase_create("proxy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_trusted_proxy_reports_https);
    tcase_add_test(tc, an_untrusted_peer_is_not_believed);
    tcase_add_test(tc, serve_is_secure_by_default);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
