/*
 * test_handshake.c - tokens on real WebSocket upgrades against two sparkd
 * instances with keys: every bad token refused (401 before the upgrade, or
 * 4401 after it for a browser), a foreign Origin refused for cookies, a
 * scope mismatch closed with 4403, a refresh that keeps the connection, an
 * expiry that ends it, the demo login and its cookie, and one user with two
 * tabs present once.
 */
#include "auth.h"
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECV_MS 5000

/* The test vector's key (docs/auth.md) signs; a second key is unknown. */
#define SIGNING  "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VERIFY   "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
#define STRANGER "other:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"

static it_pair pair;

static void start(void) {
    setenv("SPARK_SIGNING_KEY", SIGNING, 1);
    setenv("SPARK_VERIFY_KEYS", VERIFY, 1);
    setenv("SPARK_DEMO_LOGIN", "1", 1);
    it_pair_start(&pair, "handshake");
}

/* A token from `key` for sub/name, valid from `iat` for `ttl` seconds. */
static char *mint_with(const char *key_text, const char *sub, int64_t iat, int64_t ttl,
                       const char *scope) {
    return it_mint(key_text, sub, iat, ttl, scope);
}

static char *mint(const char *sub, int64_t ttl, const char *scope) {
    return mint_with(SIGNING, sub, (int64_t)time(NULL), ttl, scope);
}

START_TEST(bad_tokens_are_refused_before_the_upgrade) {
    start();
    int64_t now = (int64_t)time(NULL);
    char *good = mint("alice", 600, "room:*");
    char *tampered = strdup(good);
    char *dot = strchr(tampered, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A'; /* a payload byte */
    char *forged = mint_with(STRANGER, "alice", now, 600, "room:*");
    /* Relabel the stranger's token with a known kid: a forgery. */
    char relabelled[4096];
    snprintf(relabelled, sizeof relabelled, "vector1%s", strchr(forged, '.'));
    char *expired = mint_with(SIGNING, "alice", now - 7200, 3600, "room:*");
    char *early = mint_with(SIGNING, "alice", now + 3600, 3600, "room:*");
    const char *cases[] = {NULL,   "",         "garbage", "a.b.c", tampered,
                           forged, relabelled, expired,   early};
    const char *targets[] = {"/chat/lobby", "/notifications/alice", "/spark"};
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            int status = 0;
            it_ws *ws = it_ws_open_bearer(pair.port[0], targets[t], cases[i], NULL, &status);
            ck_assert_msg(!ws && status == 401, "%s case %zu: status %d", targets[t], i, status);
        }
    /* The good one, by header, query argument and as the right user. */
    int status;
    it_ws *ws = it_ws_open_bearer(pair.port[0], "/chat/lobby", good, NULL, &status);
    ck_assert_msg(ws, "good token refused: %d", status);
    char *m = it_ws_recv_match(ws, "\"user_joined\"", RECV_MS);
    ck_assert_msg(m && strstr(m, "\"user_id\":\"alice\""), "%s", m ? m : "nothing");
    free(m);
    it_ws_close(ws);
    char target[4096];
    snprintf(target, sizeof target, "/chat/lobby?token=%s", good);
    ws = it_ws_open(pair.port[1], target, NULL, &status);
    ck_assert_msg(ws, "token in the query refused: %d", status);
    it_ws_close(ws);
    free(good), free(tampered), free(forged), free(expired), free(early);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(browsers_are_told_4401_after_the_upgrade) {
    start();
    char origin[128];
    snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d\r\n", pair.port[0]);
    it_ws *ws = it_ws_open_bearer(pair.port[0], "/chat/lobby", "garbage", origin, NULL);
    ck_assert_ptr_nonnull(ws);
    ck_assert_int_eq(it_ws_wait_close(ws, RECV_MS), 4401);
    ck_assert_msg(strlen(it_ws_close_reason(ws)) > 0, "no reason given");
    it_ws_drop(ws);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(a_scope_mismatch_closes_4403) {
    start();
    char *token = mint("bob", 600, "room:kitchen");
    /* On /spark, a component the token does not grant is refused by reply,
     * and the connection stays usable. */
    it_ws *live = it_ws_open_bearer(pair.port[1], "/spark", token, NULL, NULL);
    ck_assert_ptr_nonnull(live);
    it_ws_send_text(live, "{\"t\":\"join\",\"ref\":1,\"cid\":\"todo:secret\"}");
    char *reply = it_ws_recv_match(live, "\"t\":\"reply\"", RECV_MS);
    ck_assert_msg(reply && strstr(reply, "\"ok\":false") && strstr(reply, "\"forbidden\""), "%s",
                  reply ? reply : "nothing");
    free(reply);
    it_ws_close(live);
    it_ws *ws = it_ws_open_bearer(pair.port[0], "/chat/lobby", token, NULL, NULL);
    ck_assert_ptr_nonnull(ws);
    ck_assert_int_eq(it_ws_wait_close(ws, RECV_MS), 4403);
    it_ws_drop(ws);
    ws = it_ws_open_bearer(pair.port[0], "/chat/kitchen", token, NULL, NULL);
    free(it_ws_recv_match(ws, "\"user_joined\"", RECV_MS));
    it_ws_close(ws);
    /* Someone else's notifications are not bob's to read. */
    ws = it_ws_open_bearer(pair.port[0], "/notifications/carol", token, NULL, NULL);
    ck_assert_int_eq(it_ws_wait_close(ws, RECV_MS), 4403);
    it_ws_drop(ws);
    free(token);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(refresh_keeps_the_connection_and_expiry_ends_it) {
    start();
    char *brief = mint("dora", 2, "room:*");
    it_ws *kept = it_ws_open_bearer(pair.port[0], "/chat/refresh", brief, NULL, NULL);
    it_ws *dropped = it_ws_open_bearer(pair.port[1], "/chat/refresh", brief, NULL, NULL);
    ck_assert(kept && dropped);
    free(it_ws_recv_match(kept, "\"user_joined\"", RECV_MS));

    char *fresh = mint("dora", 600, "room:*"), frame[4200];
    snprintf(frame, sizeof frame, "{\"t\":\"refresh\",\"token\":\"%s\"}", fresh);
    ck_assert_int_eq(it_ws_send_text(kept, frame), 0);
    char *m = it_ws_recv_match(kept, "\"t\":\"refresh", RECV_MS);
    ck_assert_msg(m && strstr(m, "\"t\":\"refreshed\""), "%s", m ? m : "nothing");
    free(m);
    /* Another user's token is not a refresh of this one. */
    char *other = mint("eve", 600, "room:*");
    snprintf(frame, sizeof frame, "{\"t\":\"refresh\",\"token\":\"%s\"}", other);
    it_ws_send_text(kept, frame);
    m = it_ws_recv_match(kept, "\"t\":\"refresh", RECV_MS);
    ck_assert_msg(m && strstr(m, "refresh_error"), "%s", m ? m : "nothing");
    free(m);

    /* The unrefreshed one is closed when its token runs out... */
    ck_assert_int_eq(it_ws_wait_close(dropped, 6000), 4401);
    ck_assert_str_eq(it_ws_close_reason(dropped), "token expired");
    /* ...while the refreshed one, past the same moment, still chats. */
    it_ws_send_text(kept, "{\"action\":\"chat\",\"message\":\"still here\"}");
    m = it_ws_recv_match(kept, "still here", RECV_MS);
    ck_assert_msg(m, "the refreshed connection did not survive");
    free(m);
    it_ws_close(kept);
    it_ws_drop(dropped);
    free(brief), free(fresh), free(other);
    it_pair_stop(&pair);
}
END_TEST

/* POSTs the login form; returns the response with headers. */
static int login(int port, const char *form, char *resp, size_t cap) {
    char req[2048];
    snprintf(req, sizeof req,
             "POST /login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             port, port, strlen(form), form);
    return it_http_exchange(port, req, resp, cap);
}

START_TEST(demo_login_sets_a_cookie_that_opens_sockets) {
    start();
    static char resp[16384];
    int port = pair.port[0];
    /* A page that needs a user sends a stranger to sign in first. */
    static char req[512];
    snprintf(req, sizeof req,
             "GET /todo/groceries HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             port);
    ck_assert_int_eq(it_http_exchange(port, req, resp, sizeof resp), 303);
    ck_assert_msg(strstr(resp, "location: /login?next=/todo/groceries\r\n"), "%s", resp);
    ck_assert_int_eq(it_http_get(port, "/login?next=/chat/x", resp, sizeof resp), 200);
    ck_assert_msg(strstr(resp, "name=\"name\"") && strstr(resp, "value=\"/chat/x\""), "%s", resp);

    ck_assert_int_eq(login(port, "name=Ada+L&next=%2Fchat%2Fx", resp, sizeof resp), 303);
    ck_assert_msg(strstr(resp, "location: /chat/x\r\n"), "%s", resp);
    const char *set = strstr(resp, "set-cookie: spark_session=");
    ck_assert_msg(set && strstr(set, "HttpOnly") && strstr(set, "SameSite=Lax"), "%s", resp);
    char cookie[4200];
    snprintf(cookie, sizeof cookie, "%.*s", (int)strcspn(set + 12, ";"), set + 12);

    /* Off-site and malformed destinations go home instead. */
    ck_assert_int_eq(login(port, "name=Ada&next=%2F%2Fevil.example", resp, sizeof resp), 303);
    ck_assert_msg(strstr(resp, "location: /\r\n"), "%s", resp);
    ck_assert_int_eq(login(port, "name=&next=/", resp, sizeof resp), 400);
    /* A form post from nowhere (no Origin, no same-origin fetch) is refused. */
    static char bare[512];
    snprintf(bare, sizeof bare,
             "POST /login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 8\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n"
             "name=Eve",
             port);
    ck_assert_int_eq(it_http_exchange(port, bare, resp, sizeof resp), 403);
    /* Signing out is a POST from our own origin: a GET only shows the
     * button, and a cross-site POST is refused. */
    ck_assert_int_eq(it_http_get(port, "/logout", resp, sizeof resp), 200);
    ck_assert_msg(strstr(resp, "action=\"/logout\"") && !strstr(resp, "set-cookie"), "%s", resp);
    static char out_req[512];
    snprintf(out_req, sizeof out_req,
             "POST /logout HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://evil.example\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n",
             port);
    ck_assert_int_eq(it_http_exchange(port, out_req, resp, sizeof resp), 403);
    snprintf(out_req, sizeof out_req,
             "POST /logout HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n",
             port, port);
    ck_assert_int_eq(it_http_exchange(port, out_req, resp, sizeof resp), 303);
    ck_assert_msg(strstr(resp, "set-cookie: spark_session=;") && strstr(resp, "Max-Age=0"), "%s",
                  resp);
    ck_assert_int_eq(login(port, "nothing", resp, sizeof resp), 400);

    /* The cookie opens a socket from our own origin, on either instance,
     * and the same person in two tabs is present once, with two metas. */
    char headers[4400];
    snprintf(headers, sizeof headers, "Cookie: theme=dark; %s\r\nOrigin: http://127.0.0.1:%d\r\n",
             cookie, pair.port[0]);
    it_ws *tab1 = it_ws_open(pair.port[0], "/chat/two-tabs", headers, NULL);
    ck_assert_ptr_nonnull(tab1);
    free(it_ws_recv_match(tab1, "\"user_joined\"", RECV_MS));
    snprintf(headers, sizeof headers, "Cookie: %s\r\nOrigin: http://127.0.0.1:%d\r\n", cookie,
             pair.port[1]);
    it_ws *tab2 = it_ws_open(pair.port[1], "/chat/two-tabs", headers, NULL);
    ck_assert_ptr_nonnull(tab2);
    char *state = it_ws_recv_match(tab2, "\"presence_state\"", RECV_MS);
    ck_assert_msg(state && strstr(state, "\"name\":\"Ada L\""), "%s", state ? state : "nothing");
    /* One key (one user) with two metas (two tabs). */
    const char *metas = strstr(state, "\"metas\":[");
    ck_assert_ptr_nonnull(metas);
    ck_assert_msg(strstr(metas, "},{") && !strstr(strstr(metas, "]"), "\"metas\""),
                  "expected one user with two metas: %s", state);
    free(state);
    it_ws_close(tab1);
    it_ws_close(tab2);

    /* The same cookie from another site's page is refused. */
    snprintf(headers, sizeof headers, "Cookie: %s\r\nOrigin: http://evil.example\r\n", cookie);
    int status = 0;
    ck_assert_ptr_null(it_ws_open(pair.port[0], "/chat/two-tabs", headers, &status));
    ck_assert_int_eq(status, 403);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    Suite *s = suite_create("handshake");
    TCase *tc = tcase_create("tokens");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bad_tokens_are_refused_before_the_upgrade);
    tcase_add_test(tc, browsers_are_told_4401_after_the_upgrade);
    tcase_add_test(tc, a_scope_mismatch_closes_4403);
    tcase_add_test(tc, refresh_keeps_the_connection_and_expiry_ends_it);
    tcase_add_test(tc, demo_login_sets_a_cookie_that_opens_sockets);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
