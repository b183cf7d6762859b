/*
 * routes.c - apps' own HTTP routes (<spark/route.h>): the registry of
 * declared routes, installing them on a server, and what a handler reads
 * and answers, signing a visitor in included.
 *
 * What is easy to get wrong stays here rather than in each app: the
 * same-origin rule for every POST, the session cookie's flags (HttpOnly so
 * scripts cannot read the token, SameSite=Lax so other sites' forms cannot
 * post with it, Secure when the browser came over HTTPS, to us or to a
 * trusted proxy), the token's signature, and redirects that cannot leave
 * the site.
 */
#include "routes.h"

#include "auth.h"
#include "router.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES 64

static const spark_route *registry[MAX_ROUTES];
static size_t nregistered;

SPARK_API int spark_route_register(const spark_route *route) {
    if (!route || !route->handler || !spark_route_valid(route->path) ||
        (route->method != SPARK_GET && route->method != SPARK_POST) || nregistered == MAX_ROUTES) {
        fprintf(stderr, "spark: cannot register route \"%s\"\n",
                route && route->path ? route->path : "(null)");
        return -1;
    }
    registry[nregistered++] = route;
    return 0;
}

bool spark_routes_posted_by_us(spark_request *req) {
    struct lws *wsi = spark_http_request_wsi(req);
    char site[32] = "";
    static const char fetch_site[] = "sec-fetch-site:";
    bool same_site =
        lws_hdr_custom_copy(wsi, site, sizeof site, fetch_site, sizeof fetch_site - 1) > 0 &&
        strcmp(site, "same-origin") == 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0
            ? spark_sessions_origin_allowed(spark_http_request_sessions(req), wsi)
            : same_site)
        return true;
    spark_http_respond_text(req, 403, "origin not allowed\n");
    return false;
}

static void run_route(spark_http_request *req, void *ud) {
    const spark_route *route = ud;
    if (route->method == SPARK_POST && !spark_routes_posted_by_us(req)) return;
    route->handler(req);
}

int spark_routes_install(spark_http *http, const spark_sessions *sessions) {
    bool sign_in = spark_sessions_login_enabled(sessions);
    for (size_t i = 0; i < nregistered; i++) {
        const spark_route *route = registry[i];
        void *ud = (void *)(uintptr_t)route;
        if (route->sign_in && !sign_in) continue;
        if (route->method == SPARK_POST ? spark_http_post(http, route->path, run_route, ud)
                                        : spark_http_get(http, route->path, run_route, ud))
            return -1;
    }
    return 0;
}

/* ---- the request ------------------------------------------------------------- */

SPARK_API const char *spark_request_param(const spark_request *req, const char *name) {
    return spark_http_request_param(req, name);
}

SPARK_API int spark_request_query(const spark_request *req, const char *name, char *out,
                                  size_t cap) {
    if (!cap) return -1;
    if (spark_http_request_query(req, name, out, cap) == 0) return 0;
    out[0] = '\0';
    return -1;
}

SPARK_API int spark_request_form(const spark_request *req, const char *name, char *out,
                                 size_t cap) {
    size_t n = strlen(name);
    if (!cap) return -1;
    out[0] = '\0';
    for (const char *p = spark_http_request_body(req, NULL); *p;) {
        size_t len = strcspn(p, "&");
        if (len > n && p[n] == '=' && strncmp(p, name, n) == 0) {
            if (spark_url_decode(p + n + 1, len - n - 1, true, out, cap) >= 0) return 0;
            out[0] = '\0';
            return -1;
        }
        p += len;
        if (*p == '&') p++;
    }
    return -1;
}

SPARK_API const char *spark_request_user_id(const spark_request *req) {
    return spark_http_request_user_id(req);
}

SPARK_API const char *spark_request_user_name(const spark_request *req) {
    return spark_http_request_user_name(req);
}

/* ---- the response ------------------------------------------------------------- */

SPARK_API void spark_respond(spark_request *req, int status, const char *content_type,
                             const char *body, size_t len) {
    spark_http_respond(req, status, content_type, body, len);
}

/* A local path, or "/": never "//host" or "/\host", which browsers follow
 * off-site, nor anything with control characters. */
static const char *local_path(const char *path) {
    if (!path || path[0] != '/' || path[1] == '/' || path[1] == '\\') return "/";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\') return "/";
    return path;
}

SPARK_API int spark_respond_sign_in(spark_request *req, const char *user_id, const char *name,
                                    const char *const *scopes, size_t nscopes, const char *path) {
    const spark_sessions *sessions = spark_http_request_sessions(req);
    char *token = NULL;
    int ttl = 0;
    if (!user_id || !name ||
        spark_sessions_issue(sessions, user_id, name, scopes, nscopes, &token, &ttl))
        return -1;
    char cookie[SPARK_TOKEN_MAX + 128];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%d%s",
             SPARK_AUTH_COOKIE, token, ttl,
             spark_sessions_https(sessions, spark_http_request_wsi(req)) ? "; Secure" : "");
    free(token);
    const char *headers[] = {"set-cookie:", cookie, "location:", local_path(path), NULL};
    spark_http_respond_with(req, 303, "text/plain; charset=utf-8", "", 0, headers);
    return 0;
}

SPARK_API void spark_respond_sign_out(spark_request *req, const char *path) {
    const char *headers[] = {
        "set-cookie:", SPARK_AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
        "location:", local_path(path), NULL};
    spark_http_respond_with(req, 303, "text/plain; charset=utf-8", "", 0, headers);
}
