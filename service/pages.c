/*
 * pages.c - the demo pages: /counter/:id, /todo/:list and /chat/:room,
 * rendered on the server so that a page works before its socket opens.
 *
 * The page markup contract (docs/components.md) is what the browser
 * client reads: every component root is
 *     <div spark-component="todo:groceries" spark-version="12">...</div>
 * and its children are exactly the component's render, so the client can
 * join at that version and apply patches to that element.
 *
 * HTTP handlers must answer before they return, and the loop never waits
 * for PostgreSQL. A component that is not in the cache yet is loaded now,
 * and the browser is sent to the same page again (303, counted in the
 * query so that it cannot loop): the second request finds it warm.
 */
#include "live.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WAIT_HOPS 20

static void attr_escape(spark_sbuf *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&':
            spark_sbuf_puts(out, "&amp;");
            break;
        case '"':
            spark_sbuf_puts(out, "&quot;");
            break;
        case '<':
            spark_sbuf_puts(out, "&lt;");
            break;
        case '>':
            spark_sbuf_puts(out, "&gt;");
            break;
        default:
            spark_sbuf_putc(out, *s);
        }
    }
}

static void url_escape(spark_sbuf *out, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            spark_sbuf_putc(out, (char)*p);
        } else {
            spark_sbuf_putc(out, '%');
            spark_sbuf_putc(out, hex[*p >> 4]);
            spark_sbuf_putc(out, hex[*p & 15]);
        }
    }
}

static void respond_text(spark_http_request *req, int status, const char *text) {
    spark_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void layout(spark_sbuf *out, const char *title, const char *id, long long version,
                   const char *body) {
    spark_sbuf_puts(out,
                    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>");
    attr_escape(out, title);
    spark_sbuf_puts(out, " · Spark</title>\n<link rel=\"stylesheet\" href=\"/css/spark.css\">\n"
                         "<script src=\"/js/spark.js\" defer></script>\n</head>\n<body>\n"
                         "<nav class=\"spark-nav\"><a href=\"/\">Spark</a> "
                         "<a href=\"/counter/home\">Counter</a> "
                         "<a href=\"/todo/groceries\">Todo</a> "
                         "<a href=\"/chat/lobby\">Chat</a></nav>\n<main>\n<h1>");
    attr_escape(out, title);
    spark_sbuf_puts(out, "</h1>\n<div spark-component=\"");
    attr_escape(out, id);
    spark_sbuf_printf(out, "\" spark-version=\"%lld\">", version);
    spark_sbuf_puts(out, body);
    spark_sbuf_puts(out, "</div>\n</main>\n</body>\n</html>\n");
}

/* Sends the browser to this page again while its component loads. */
static void come_back(spark_http_request *req, const char *prefix, const char *key) {
    char hops[16];
    int n = spark_http_request_query(req, "spark_wait", hops, sizeof hops) == 0 ? atoi(hops) : 0;
    if (n >= MAX_WAIT_HOPS) {
        respond_text(req, 503, "the component is not available right now\n");
        return;
    }
    spark_sbuf loc = {0};
    spark_sbuf_puts(&loc, prefix);
    url_escape(&loc, key);
    spark_sbuf_printf(&loc, "?spark_wait=%d", n + 1);
    if (loc.failed)
        respond_text(req, 500, "out of memory\n");
    else
        spark_http_redirect(req, loc.data);
    spark_sbuf_free(&loc);
}

static void page(spark_http_request *req, const char *type, const char *param, const char *prefix,
                 const char *title_fmt) {
    const char *key = spark_http_request_param(req, param);
    char id[SPARK_MAX_CID_BYTES + 1], scope[SPARK_MAX_CID_BYTES + 16], title[300];
    if (!key || !*key || snprintf(id, sizeof id, "%s:%s", type, key) >= (int)sizeof id) {
        respond_text(req, 404, "not found\n");
        return;
    }
    if (spark_http_require_user(req)) return;
    snprintf(scope, sizeof scope, "component:%s", id);
    if (!spark_http_request_can(req, scope)) {
        respond_text(req, 403, "forbidden\n");
        return;
    }
    char *html = NULL;
    long long version = 0;
    int r = spark_live_page(id, spark_http_request_user_id(req), spark_http_request_user_name(req),
                            &html, &version);
    if (r == 0) {
        come_back(req, prefix, key);
        return;
    }
    if (r < 0) {
        respond_text(req, 503, "the component is not available right now\n");
        return;
    }
    snprintf(title, sizeof title, title_fmt, key);
    spark_sbuf out = {0};
    layout(&out, title, id, version, html);
    free(html);
    if (out.failed)
        respond_text(req, 500, "out of memory\n");
    else
        spark_http_respond(req, 200, "text/html; charset=utf-8", out.data, out.len);
    spark_sbuf_free(&out);
}

static void counter_page(spark_http_request *req, void *ud) {
    (void)ud;
    page(req, "counter", "id", "/counter/", "Counter %.200s");
}

static void todo_page(spark_http_request *req, void *ud) {
    (void)ud;
    page(req, "todo", "list", "/todo/", "Todo: %.200s");
}

static void chat_page(spark_http_request *req, void *ud) {
    (void)ud;
    page(req, "chat", "room", "/chat/", "Chat: %.200s");
}

void spark_pages_register(spark_http *http) {
    if (!http) return;
    if (spark_http_get(http, "/counter/:id", counter_page, NULL) ||
        spark_http_get(http, "/todo/:list", todo_page, NULL) ||
        spark_http_get(http, "/chat/:room", chat_page, NULL))
        spark_log(SPARK_LOG_ERROR, "pages.register_failed", "cannot route the demo pages", NULL);
}
