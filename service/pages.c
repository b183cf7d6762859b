/*
 * pages.c - pages for components (<spark/page.h>): the registry of
 * declared pages and, per server, their routes, the layout around a
 * component's render, and the requests waiting for a component to load.
 *
 * The page markup contract (docs/pages.md) is what the browser client
 * reads: every component root is
 *     <div spark-component="todo:groceries" spark-version="12">...</div>
 * and its children are exactly the component's render, so the client can
 * join at that version and apply patches to that element.
 *
 * The loop never waits for PostgreSQL: a component that is not in the
 * cache yet is loaded now, and the request is deferred and answered as
 * soon as the component is there: the runtime wakes it when the state (and
 * a room component's room) has arrived, or could not be read; after a few
 * seconds it is answered 503. The waiting requests belong to the server's
 * spark_pages, whose timers live in that server's lws context.
 */
#include "pages.h"

#include "component_ctx.h"
#include "each_link.h"
#include "html_tree.h"
#include "log.h"
#include "router.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAGES       64
#define MAX_TITLE_VALUE 200 /* bytes of one route value in a title */
#define MAX_WAIT_US     (5 * LWS_US_PER_SEC)

static const spark_page *registry[MAX_PAGES];
static size_t nregistered;

/* One declared page on one server: the route's user data. */
typedef struct {
    spark_pages *pages;
    const spark_page *def;
} page_route;

struct spark_pages {
    spark_components *components;
    lws_dll2_owner_t waiting; /* of waiting_page */
    char *nav;                /* the navigation's markup, the same on every page */
    size_t nroutes;
    page_route routes[];
};

/* A page waiting for its component to load. */
typedef struct {
    lws_sorted_usec_list_t sul;
    lws_dll2_t link; /* in pages->waiting */
    spark_http_later *later;
    const page_route *route;
    lws_usec_t deadline;
    char id[SPARK_MAX_CID_BYTES + 1];
} waiting_page;

/* ---- registration ---------------------------------------------------------- */

/* Whether `route` has the segment ":name" (name is n bytes). */
static bool route_has_param(const char *route, const char *name, size_t n) {
    for (const char *p = strstr(route, "/:"); p; p = strstr(p + 1, "/:"))
        if (strncmp(p + 2, name, n) == 0 && (p[2 + n] == '/' || p[2 + n] == '\0')) return true;
    return false;
}

/* Whether every {param} of `tmpl` is one of the route's. */
static bool template_valid(const char *tmpl, const char *route) {
    for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        if (!close || close == p + 1 || !route_has_param(route, p + 1, (size_t)(close - p - 1)))
            return false;
    }
    return true;
}

SPARK_API int spark_page_register(const spark_page *page) {
    const char *colon = page && page->component ? strchr(page->component, ':') : NULL;
    if (!page || !spark_route_valid(page->route) || !colon || colon == page->component ||
        memchr(page->component, '{', (size_t)(colon - page->component)) ||
        !template_valid(page->component, page->route) ||
        (page->title && !template_valid(page->title, page->route)) ||
        (page->nav && !page->nav_path) || nregistered == MAX_PAGES) {
        fprintf(stderr, "spark: cannot register page \"%s\"\n",
                page && page->route ? page->route : "(null)");
        return -1;
    }
    registry[nregistered++] = page;
    return 0;
}

/* ---- rendering ------------------------------------------------------------- */

/* Appends `tmpl` with each {param} replaced by the request's value, cut at
 * `max` bytes. Registration checked that the route has every param. */
static void expand(spark_sbuf *out, const char *tmpl, const spark_http_request *req, size_t max) {
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            spark_sbuf_putc(out, *p++);
            continue;
        }
        char name[SPARK_ROUTE_MAX_NAME] = "";
        snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
        const char *value = spark_http_request_param(req, name);
        size_t n = value ? strlen(value) : 0;
        spark_sbuf_append(out, value ? value : "", n < max ? n : max);
        p = close + 1;
    }
}

/* The component id of this request's page into id. Returns 0, or -1 when
 * it is too long to be an id. */
static int component_id(const spark_page *def, const spark_http_request *req,
                        char id[SPARK_MAX_CID_BYTES + 1]) {
    spark_sbuf b = {0};
    expand(&b, def->component, req, SIZE_MAX);
    int r = !b.failed && b.len <= SPARK_MAX_CID_BYTES ? 0 : -1;
    if (r == 0) memcpy(id, b.data, b.len + 1);
    spark_sbuf_free(&b);
    return r;
}

static void layout(spark_sbuf *out, const spark_pages *pages, const char *title, const char *id,
                   long long version, const char *body) {
    spark_sbuf_puts(out,
                    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>");
    spark_html_escape(out, title, false);
    spark_sbuf_puts(out, " · Spark</title>\n<link rel=\"stylesheet\" href=\"/css/spark.css\">\n"
                         "<script src=\"/js/spark.js\" defer></script>\n</head>\n<body>\n");
    spark_sbuf_puts(out, pages->nav);
    spark_sbuf_puts(out, "\n<main>\n<h1>");
    spark_html_escape(out, title, false);
    spark_sbuf_puts(out, "</h1>\n<div spark-component=\"");
    spark_html_escape(out, id, true);
    spark_sbuf_printf(out, "\" spark-version=\"%lld\">", version);
    spark_sbuf_puts(out, body);
    spark_sbuf_puts(out, "</div>\n</main>\n</body>\n</html>\n");
}

/* Renders the page into the response. Returns 0 when the component is not
 * loaded yet (nothing was sent), 1 when the request was answered. */
static int try_page(spark_http_request *req, const page_route *r, const char *id) {
    char *html = NULL;
    long long version = 0;
    int loaded = spark_components_page(r->pages->components, id, spark_http_request_user_id(req),
                                       spark_http_request_user_name(req), &html, &version);
    if (loaded == 0) return 0;
    if (loaded < 0) {
        spark_http_respond_text(req, 503, "the component is not available right now\n");
        return 1;
    }
    spark_sbuf title = {0}, out = {0};
    if (r->def->title)
        expand(&title, r->def->title, req, MAX_TITLE_VALUE);
    else
        spark_sbuf_puts(&title, id);
    if (!title.failed) layout(&out, r->pages, title.data, id, version, html);
    free(html);
    if (title.failed || out.failed)
        spark_http_respond_text(req, 500, "out of memory\n");
    else
        spark_http_respond(req, 200, "text/html; charset=utf-8", out.data, out.len);
    spark_sbuf_free(&title);
    spark_sbuf_free(&out);
    return 1;
}

/* ---- waiting for a component ------------------------------------------------ */

static void stop_waiting(waiting_page *w) {
    lws_sul_cancel(&w->sul);
    lws_dll2_remove(&w->link);
    spark_http_later_free(w->later);
    free(w);
}

/* Woken when its component is ready (or failed), or at its deadline. */
static void retry_page(lws_sorted_usec_list_t *sul) {
    waiting_page *w = lws_container_of(sul, waiting_page, sul);
    spark_http_request *req = spark_http_later_request(w->later);
    if (req && !try_page(req, w->route, w->id)) {
        lws_usec_t now = lws_now_usecs();
        if (now < w->deadline) {
            lws_sul_schedule(lws_get_context(spark_http_request_wsi(req)), 0, &w->sul, retry_page,
                             w->deadline - now);
            return;
        }
        spark_http_respond_text(req, 503, "the component is not available right now\n");
    }
    stop_waiting(w);
}

/* The component runtime says `id` can be served: its waiting pages try
 * again on the loop's next turn (not from inside the runtime's callback). */
static void wake_pages(void *ud, const char *id) {
    spark_pages *pages = ud;
    EACH_LINK(d, &pages->waiting) {
        waiting_page *w = lws_container_of(d, waiting_page, link);
        spark_http_request *req = spark_http_later_request(w->later);
        if (req && strcmp(w->id, id) == 0)
            lws_sul_schedule(lws_get_context(spark_http_request_wsi(req)), 0, &w->sul, retry_page,
                             0);
    }
}

static void serve_page(spark_http_request *req, void *ud) {
    const page_route *r = ud;
    char id[SPARK_MAX_CID_BYTES + 1], scope[SPARK_MAX_CID_BYTES + 16];
    if (component_id(r->def, req, id)) {
        spark_http_respond_text(req, 404, "not found\n");
        return;
    }
    if (spark_http_require_user(req)) return;
    snprintf(scope, sizeof scope, "component:%s", id);
    if (!spark_http_request_can(req, scope)) {
        spark_http_respond_text(req, 403, "forbidden\n");
        return;
    }
    if (try_page(req, r, id)) return;
    waiting_page *w = calloc(1, sizeof *w);
    if (!w || !(w->later = spark_http_defer(req))) {
        free(w);
        spark_http_respond_text(req, 500, "out of memory\n");
        return;
    }
    w->route = r;
    w->deadline = lws_now_usecs() + MAX_WAIT_US;
    memcpy(w->id, id, sizeof id);
    lws_dll2_add_tail(&w->link, &r->pages->waiting);
    lws_sul_schedule(lws_get_context(spark_http_request_wsi(req)), 0, &w->sul, retry_page,
                     MAX_WAIT_US);
}

/* ---- per server ----------------------------------------------------------- */

static char *nav_markup(void) {
    spark_sbuf b = {0};
    spark_sbuf_puts(&b, "<nav class=\"spark-nav\"><a href=\"/\">Spark</a>");
    for (size_t i = 0; i < nregistered; i++) {
        if (!registry[i]->nav) continue;
        spark_sbuf_puts(&b, " <a href=\"");
        spark_html_escape(&b, registry[i]->nav_path, true);
        spark_sbuf_puts(&b, "\">");
        spark_html_escape(&b, registry[i]->nav, false);
        spark_sbuf_puts(&b, "</a>");
    }
    spark_sbuf_puts(&b, "</nav>");
    if (!b.failed) return b.data;
    spark_sbuf_free(&b);
    return NULL;
}

/* Whether the type named before the template's ':' is registered. */
static bool type_known(const spark_page *def) {
    return spark_component_lookup(def->component,
                                  (size_t)(strchr(def->component, ':') - def->component)) != NULL;
}

spark_pages *spark_pages_new(spark_http *http, spark_components *components) {
    spark_pages *pages = calloc(1, sizeof *pages + nregistered * sizeof *pages->routes);
    if (!pages || !(pages->nav = nav_markup())) {
        free(pages);
        spark_log(SPARK_LOG_ERROR, "pages.register_failed", "out of memory", NULL);
        return NULL;
    }
    pages->components = components;
    spark_components_on_ready(components, wake_pages, pages);
    for (size_t i = 0; i < nregistered; i++) {
        page_route *r = &pages->routes[pages->nroutes++];
        r->pages = pages;
        r->def = registry[i];
        if (!type_known(r->def) || spark_http_get(http, r->def->route, serve_page, r)) {
            spark_log(SPARK_LOG_ERROR, "pages.register_failed",
                      "a page's component type is not registered, or out of memory",
                      "route=%s component=%s", r->def->route, r->def->component);
            spark_pages_free(pages);
            return NULL;
        }
    }
    return pages;
}

void spark_pages_free(spark_pages *pages) {
    if (!pages) return;
    if (pages->components) spark_components_on_ready(pages->components, NULL, NULL);
    while (pages->waiting.head) {
        waiting_page *w = lws_container_of(pages->waiting.head, waiting_page, link);
        spark_http_request *req = spark_http_later_request(w->later);
        if (req) spark_http_respond_text(req, 503, "the server is stopping\n");
        stop_waiting(w);
    }
    free(pages->nav);
    free(pages);
}
