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
 * The loop never waits for PostgreSQL: a component that is not in the
 * cache yet is loaded now, and the request is deferred and answered as
 * soon as the component is there (checked every few milliseconds, for at
 * most a few seconds).
 */
#include "pages.h"

#include "component_ctx.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_US    (5 * LWS_US_PER_MS)
#define MAX_WAIT_US (5 * LWS_US_PER_SEC)

typedef struct {
    const char *type, *param, *title_fmt;
} page_kind;

static const page_kind counter_kind = {"counter", "id", "Counter %.200s"};
static const page_kind todo_kind = {"todo", "list", "Todo: %.200s"};
static const page_kind chat_kind = {"chat", "room", "Chat: %.200s"};

/* A page waiting for its component to load. */
typedef struct {
    lws_sorted_usec_list_t sul;
    lws_dll2_t link; /* in waiting */
    spark_http_later *later;
    const page_kind *kind;
    spark_components *cs;
    lws_usec_t deadline;
} waiting_page;

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

/* Renders the page into the response. Returns 0 when the component is not
 * loaded yet (nothing was sent), 1 when the request was answered. */
static int try_page(spark_http_request *req, const page_kind *kind, spark_components *cs) {
    const char *key = spark_http_request_param(req, kind->param);
    char id[SPARK_MAX_CID_BYTES + 1], title[300];
    snprintf(id, sizeof id, "%s:%s", kind->type, key);
    char *html = NULL;
    long long version = 0;
    int r = spark_components_page(cs, id, spark_http_request_user_id(req),
                                  spark_http_request_user_name(req), &html, &version);
    if (r == 0) return 0;
    if (r < 0) {
        respond_text(req, 503, "the component is not available right now\n");
        return 1;
    }
    snprintf(title, sizeof title, kind->title_fmt, key);
    spark_sbuf out = {0};
    layout(&out, title, id, version, html);
    free(html);
    if (out.failed)
        respond_text(req, 500, "out of memory\n");
    else
        spark_http_respond(req, 200, "text/html; charset=utf-8", out.data, out.len);
    spark_sbuf_free(&out);
    return 1;
}

static lws_dll2_owner_t waiting;

static void stop_waiting(waiting_page *w) {
    lws_sul_cancel(&w->sul);
    lws_dll2_remove(&w->link);
    spark_http_later_free(w->later);
    free(w);
}

void spark_pages_abandon(void) {
    while (waiting.head) {
        waiting_page *w = lws_container_of(waiting.head, waiting_page, link);
        spark_http_request *req = spark_http_later_request(w->later);
        if (req) respond_text(req, 503, "the server is stopping\n");
        stop_waiting(w);
    }
}

static void retry_page(lws_sorted_usec_list_t *sul) {
    waiting_page *w = lws_container_of(sul, waiting_page, sul);
    spark_http_request *req = spark_http_later_request(w->later);
    if (req && !try_page(req, w->kind, w->cs)) {
        if (lws_now_usecs() < w->deadline) {
            lws_sul_schedule(lws_get_context(spark_http_request_wsi(req)), 0, &w->sul, retry_page,
                             RETRY_US);
            return;
        }
        respond_text(req, 503, "the component is not available right now\n");
    }
    stop_waiting(w);
}

static void page(spark_http_request *req, const page_kind *kind, spark_components *cs) {
    const char *key = spark_http_request_param(req, kind->param);
    char id[SPARK_MAX_CID_BYTES + 1], scope[SPARK_MAX_CID_BYTES + 16];
    if (!key || !*key || snprintf(id, sizeof id, "%s:%s", kind->type, key) >= (int)sizeof id) {
        respond_text(req, 404, "not found\n");
        return;
    }
    if (spark_http_require_user(req)) return;
    snprintf(scope, sizeof scope, "component:%s", id);
    if (!spark_http_request_can(req, scope)) {
        respond_text(req, 403, "forbidden\n");
        return;
    }
    if (try_page(req, kind, cs)) return;
    waiting_page *w = calloc(1, sizeof *w);
    if (!w || !(w->later = spark_http_defer(req))) {
        free(w);
        respond_text(req, 500, "out of memory\n");
        return;
    }
    w->kind = kind;
    w->cs = cs;
    w->deadline = lws_now_usecs() + MAX_WAIT_US;
    lws_dll2_add_tail(&w->link, &waiting);
    lws_sul_schedule(lws_get_context(spark_http_request_wsi(req)), 0, &w->sul, retry_page,
                     RETRY_US);
}

static void counter_page(spark_http_request *req, void *ud) { page(req, &counter_kind, ud); }

static void todo_page(spark_http_request *req, void *ud) { page(req, &todo_kind, ud); }

static void chat_page(spark_http_request *req, void *ud) { page(req, &chat_kind, ud); }

void spark_pages_register(spark_http *http, spark_components *cs) {
    if (!http) return;
    if (spark_http_get(http, "/counter/:id", counter_page, cs) ||
        spark_http_get(http, "/todo/:list", todo_page, cs) ||
        spark_http_get(http, "/chat/:room", chat_page, cs))
        spark_log(SPARK_LOG_ERROR, "pages.register_failed", "cannot route the demo pages", NULL);
}
