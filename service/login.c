/*
 * login.c - the demo sign-in form and its session cookie.
 *
 * The cookie is HttpOnly (scripts cannot read the token), SameSite=Lax
 * (other sites' forms cannot post with it), and Secure when the browser
 * came over HTTPS, to us or to a trusted proxy; a POST whose Origin is not
 * ours is refused all the same. "next" may only name a path on this site, so
 * the form cannot be used to send people elsewhere.
 */
#include "login.h"

#include "auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME_BYTES 64

static const char page_head[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Sign in - Spark</title><link rel=\"stylesheet\" href=\"/css/spark.css\"></head>"
    "<body><main class=\"login\">";

/* Escapes text for an HTML attribute or text node into out. */
static void escape_html(const char *in, char *out, size_t cap) {
    size_t o = 0;
    for (; *in && o + 7 < cap; in++) {
        const char *rep = *in == '&'    ? "&amp;"
                          : *in == '<'  ? "&lt;"
                          : *in == '>'  ? "&gt;"
                          : *in == '"'  ? "&quot;"
                          : *in == '\'' ? "&#39;"
                                        : NULL;
        if (rep) {
            o += (size_t)snprintf(out + o, cap - o, "%s", rep);
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

/* A local path, or "/": never "//host" or "/\host", which browsers follow
 * off-site, nor anything with control characters. */
static const char *safe_next(const char *next) {
    if (!next || next[0] != '/' || next[1] == '/' || next[1] == '\\') return "/";
    for (const unsigned char *p = (const unsigned char *)next; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\') return "/";
    return next;
}

static void show_form(spark_http_request *req, const char *next, const char *error) {
    char next_html[3200], page[8192];
    escape_html(safe_next(next), next_html, sizeof next_html);
    int n = snprintf(
        page, sizeof page,
        "%s<h1>Sign in</h1>%s<form method=\"post\" action=\"/login\">"
        "<label for=\"name\">Your name</label>"
        "<input id=\"name\" name=\"name\" maxlength=\"%d\" required autofocus>"
        "<input type=\"hidden\" name=\"next\" value=\"%s\">"
        "<button type=\"submit\">Sign in</button></form></main></body></html>\n",
        page_head, error ? "<p class=\"error\">Please enter a name of 1 to 64 characters.</p>" : "",
        MAX_NAME_BYTES, next_html);
    spark_http_respond(req, error ? 400 : 200, "text/html; charset=utf-8", page,
                       (size_t)(n < (int)sizeof page ? n : (int)sizeof page - 1));
}

static void get_login(spark_http_request *req, void *ud) {
    (void)ud;
    char next[1024] = "/";
    spark_http_request_query(req, "next", next, sizeof next);
    show_form(req, next, NULL);
}

static int hex_value(char ch) {
    return isdigit((unsigned char)ch)    ? ch - '0'
           : isxdigit((unsigned char)ch) ? tolower((unsigned char)ch) - 'a' + 10
                                         : -1;
}

/* Finds `name` in an application/x-www-form-urlencoded body and decodes
 * it into out. Returns 0, or -1 if absent, badly encoded or too long. */
static int form_field(const char *body, const char *name, char *out, size_t cap) {
    size_t n = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, n) != 0 || p[n] != '=') continue;
        size_t o = 0;
        for (const char *v = p + n + 1; *v && *v != '&'; v++) {
            int ch = (unsigned char)*v;
            if (ch == '+') {
                ch = ' ';
            } else if (ch == '%') {
                int hi = hex_value(v[1]), lo = hi >= 0 ? hex_value(v[2]) : -1;
                if (lo < 0) return -1;
                ch = hi * 16 + lo;
                v += 2;
            }
            if (o + 1 >= cap) return -1;
            out[o++] = (char)ch;
        }
        out[o] = '\0';
        return 0;
    }
    return -1;
}

/* Trims spaces and refuses control characters. */
static bool clean_name(char *name) {
    char *start = name;
    while (*start == ' ')
        start++;
    memmove(name, start, strlen(start) + 1);
    size_t n = strlen(name);
    while (n && name[n - 1] == ' ')
        name[--n] = '\0';
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    return n > 0 && n <= MAX_NAME_BYTES;
}

/* Whether a form POST comes from our own pages: browsers send Origin with
 * one; without it, only a browser's own word that it is same-origin counts.
 * Answers 403 and returns false otherwise. */
static bool posted_by_us(spark_http_request *req, const spark_sessions *sessions) {
    struct lws *wsi = spark_http_request_wsi(req);
    char site[32] = "";
    static const char fetch_site[] = "sec-fetch-site:";
    bool same_site =
        lws_hdr_custom_copy(wsi, site, sizeof site, fetch_site, sizeof fetch_site - 1) > 0 &&
        strcmp(site, "same-origin") == 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0
            ? spark_sessions_origin_allowed(sessions, wsi)
            : same_site)
        return true;
    spark_http_respond(req, 403, "text/plain; charset=utf-8", "origin not allowed\n", 19);
    return false;
}

static void post_login(spark_http_request *req, void *ud) {
    const spark_sessions *sessions = ud;
    struct lws *wsi = spark_http_request_wsi(req);
    if (!posted_by_us(req, sessions)) return;
    const char *body = spark_http_request_body(req, NULL);
    char name[MAX_NAME_BYTES * 4 + 1], next[1024] = "/";
    form_field(body, "next", next, sizeof next);
    char *token = NULL;
    int ttl = 0;
    if (form_field(body, "name", name, sizeof name) || !clean_name(name) ||
        spark_sessions_issue_login(sessions, name, &token, &ttl)) {
        show_form(req, next, "bad name");
        return;
    }
    char cookie[SPARK_TOKEN_MAX + 128];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%d%s",
             SPARK_AUTH_COOKIE, token, ttl, spark_sessions_https(sessions, wsi) ? "; Secure" : "");
    free(token);
    const char *headers[] = {"set-cookie:", cookie, "location:", safe_next(next), NULL};
    spark_http_respond_with(req, 303, "text/plain; charset=utf-8", "", 0, headers);
}

/* Signing out is a POST too, so that another site cannot do it with a
 * link or an image; GET shows the button. */
static void get_logout(spark_http_request *req, void *ud) {
    (void)ud;
    static const char page[] = "<h1>Sign out</h1><form method=\"post\" action=\"/logout\">"
                               "<button type=\"submit\">Sign out</button></form></main></body>"
                               "</html>\n";
    char html[sizeof page_head + sizeof page];
    int n = snprintf(html, sizeof html, "%s%s", page_head, page);
    spark_http_respond(req, 200, "text/html; charset=utf-8", html, (size_t)n);
}

static void post_logout(spark_http_request *req, void *ud) {
    if (!posted_by_us(req, ud)) return;
    const char *headers[] = {
        "set-cookie:", SPARK_AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
        "location:", "/", NULL};
    spark_http_respond_with(req, 303, "text/plain; charset=utf-8", "", 0, headers);
}

int spark_login_routes(spark_http *http, const spark_sessions *sessions) {
    if (!spark_sessions_login_enabled(sessions)) return 0;
    void *ud = (void *)(uintptr_t)sessions;
    return spark_http_get(http, "/login", get_login, ud) ||
                   spark_http_post(http, "/login", post_login, ud) ||
                   spark_http_get(http, "/logout", get_logout, ud) ||
                   spark_http_post(http, "/logout", post_logout, ud)
               ? -1
               : 0;
}
