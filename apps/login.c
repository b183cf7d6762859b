/*
 * login.c - sparkd's demo sign-in: a name is all it asks. GET /login shows
 * the form, POST /login signs the person in and sends them back where they
 * came from, GET /logout shows a button and POST /logout signs out.
 *
 * Served only while sign-in is on (SPARK_DEMO_LOGIN=1 with a signing key),
 * through the public API alone: the runtime refuses cross-site POSTs, sets
 * the cookie's flags and keeps redirects on the site; this file decides who
 * someone is and what they may do.
 */
#include <spark/html.h>
#include <spark/route.h>

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME_BYTES 64
#define MAX_PATH_BYTES 1024

static const char page_head[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Sign in - Spark</title><link rel=\"stylesheet\" href=\"/css/spark.css\"></head>"
    "<body>";
static const char page_tail[] = "</body></html>\n";

/* Answers the markup built in h inside the page, and frees h. */
static void respond_page(spark_request *req, int status, spark_html *h) {
    size_t len = 0;
    char *main_html = h ? spark_html_render(h, &len) : NULL;
    size_t total = sizeof page_head - 1 + len + sizeof page_tail - 1;
    char *page = main_html ? malloc(total + 1) : NULL;
    if (page) {
        snprintf(page, total + 1, "%s%s%s", page_head, main_html, page_tail);
        spark_respond(req, status, "text/html; charset=utf-8", page, total);
    } else {
        static const char oom[] = "out of memory\n";
        spark_respond(req, 500, "text/plain; charset=utf-8", oom, sizeof oom - 1);
    }
    free(page);
    free(main_html);
    spark_html_free(h);
}

static void login_form(spark_html *h, const char *next, bool refused) {
    MAIN(h, "class", "login") {
        H1(h) { spark_text(h, "Sign in"); }
        if (refused) {
            P(h, "class", "error") { spark_text(h, "Please enter a name of 1 to 64 characters."); }
        }
        FORM(h, "method", "post", "action", "/login") {
            LABEL(h, "for", "name") { spark_text(h, "Your name"); }
            INPUT(h, "id", "name", "name", "name", "maxlength", spark_itoa(h, MAX_NAME_BYTES),
                  "required", "", "autofocus", "");
            INPUT(h, "type", "hidden", "name", "next", "value", next);
            BUTTON(h, "type", "submit") { spark_text(h, "Sign in"); }
        }
    }
}

static void show_form(spark_request *req, const char *next, bool refused) {
    spark_html *h = spark_html_new();
    if (h) login_form(h, next, refused);
    respond_page(req, refused ? 400 : 200, h);
}

static void get_login(spark_request *req) {
    char next[MAX_PATH_BYTES] = "/";
    if (spark_request_query(req, "next", next, sizeof next)) snprintf(next, sizeof next, "/");
    show_form(req, next, false);
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

/* The same name (ignoring case and surrounding space) is the same user:
 * a short hash of it, so that ids say nothing and stay URL-safe. */
static void user_id_for(const char *name, char out[32]) {
    unsigned char lower[MAX_NAME_BYTES + 1], hash[8];
    size_t n = strlen(name);
    for (size_t i = 0; i < n; i++)
        lower[i] = (unsigned char)tolower((unsigned char)name[i]);
    crypto_generichash(hash, sizeof hash, lower, n, NULL, 0);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    snprintf(out, 32, "u-%s", hex);
}

static void post_login(spark_request *req) {
    char name[MAX_NAME_BYTES * 4 + 1], next[MAX_PATH_BYTES] = "/", sub[32], user_scope[40];
    if (spark_request_form(req, "next", next, sizeof next)) snprintf(next, sizeof next, "/");
    if (spark_request_form(req, "name", name, sizeof name) || !clean_name(name)) {
        show_form(req, next, true);
        return;
    }
    /* Everyone may see every demo and room and revert a demo to an earlier
     * version (its history page); only you get your notifications. */
    user_id_for(name, sub);
    snprintf(user_scope, sizeof user_scope, "user:%s", sub);
    const char *scopes[] = {"room:*", "component:*", "revert:*", user_scope};
    if (spark_respond_sign_in(req, sub, name, scopes, 4, next)) show_form(req, next, true);
}

/* Signing out is a POST too, so that another site cannot do it with a
 * link or an image; GET shows the button. */
static void get_logout(spark_request *req) {
    spark_html *h = spark_html_new();
    if (h) {
        MAIN(h, "class", "login") {
            H1(h) { spark_text(h, "Sign out"); }
            FORM(h, "method", "post", "action", "/logout") {
                BUTTON(h, "type", "submit") { spark_text(h, "Sign out"); }
            }
        }
    }
    respond_page(req, 200, h);
}

static void post_logout(spark_request *req) { spark_respond_sign_out(req, "/"); }

SPARK_ROUTE(login_form, .method = SPARK_GET, .path = "/login", .handler = get_login,
            .sign_in = true);
SPARK_ROUTE(login, .method = SPARK_POST, .path = "/login", .handler = post_login, .sign_in = true);
SPARK_ROUTE(logout_form, .method = SPARK_GET, .path = "/logout", .handler = get_logout,
            .sign_in = true);
SPARK_ROUTE(logout, .method = SPARK_POST, .path = "/logout", .handler = post_logout,
            .sign_in = true);
