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
 * Routes of one's own put live roots into their own HTML the same way
 * (spark_respond_live): a declared page is the runtime's layout with one
 * root in it, so both are an HTML text with a marker per root, and the
 * roots' ids and props.
 *
 * The loop never waits for PostgreSQL: a component that is not in the
 * cache yet is loaded now (and a root's props stored, for a component never
 * written), and the request is deferred and answered as soon as every root
 * is there: the runtime wakes it when a state (and a room component's room)
 * has arrived, or could not be read; after a few seconds it is answered
 * 503. The waiting requests belong to the server's spark_pages, whose
 * timers live in that server's lws context.
 */
#include "pages.h"

#include "component_ctx.h"
#include "each_link.h"
#include "html_tree.h"
#include "log.h"
#include "poll_epoll.h"
#include "router.h"

#include <spark/route.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAGES       64
#define MAX_TITLE_VALUE 200 /* bytes of one route value in a title */
#define MAX_WAIT_US     (5 * LWS_US_PER_SEC)
#define MAX_ROOTS       16 /* live roots in one answer */
#define MAX_PROPS_BYTES 65536
#define MARKER          "<!--spark-live-->"

static const spark_page *registry[MAX_PAGES];
static size_t nregistered;

/* One declared page on one server: the route's user data. */
typedef struct {
    spark_pages *pages;
    const spark_page *def;
} page_route;

struct spark_pages {
    spark_components *components;
    lws_dll2_owner_t waiting; /* of live_answer */
    char *nav;                /* the navigation's markup, the same on every page */
    size_t nroutes;
    page_route routes[];
};

/* One live root of an answer. */
typedef struct {
    char id[SPARK_MAX_CID_BYTES + 1];
    char *props; /* JSON object text, or NULL */
} live_root;

/* An answer made of HTML with a MARKER per root, and those roots: it is
 * sent once every root has rendered. Waiting, it is in pages->waiting. */
typedef struct {
    lws_sorted_usec_list_t sul;
    lws_dll2_t link; /* in pages->waiting */
    spark_http_later *later;
    spark_pages *pages;
    lws_usec_t deadline;
    char *html;
    size_t nroots;
    live_root roots[];
} live_answer;

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

/* The runtime's page around one root (a MARKER). */
static void layout(spark_sbuf *out, const spark_pages *pages, const char *title) {
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
    spark_sbuf_puts(out, "</h1>\n" MARKER "\n</main>\n</body>\n</html>\n");
}

/* A component's root as the client finds it (docs/pages.md). */
static void root_markup(spark_sbuf *out, const char *id, long long version, const char *body) {
    spark_sbuf_puts(out, "<div spark-component=\"");
    spark_html_escape(out, id, true);
    spark_sbuf_printf(out, "\" spark-version=\"%lld\">", version);
    spark_sbuf_puts(out, body);
    spark_sbuf_puts(out, "</div>");
}

static size_t count_markers(const char *html) {
    size_t n = 0;
    for (const char *p = strstr(html, MARKER); p; p = strstr(p + 1, MARKER))
        n++;
    return n;
}

/* Renders every root into the answer's HTML and sends it. Returns 0 when a
 * root is not ready yet (nothing was sent), 1 when the request was
 * answered. */
static int try_answer(spark_http_request *req, const live_answer *a) {
    char *bodies[MAX_ROOTS] = {0};
    long long versions[MAX_ROOTS];
    int ready = 1;
    for (size_t i = 0; i < a->nroots; i++) { /* each is asked: they all load at once */
        int r = spark_components_page(a->pages->components, a->roots[i].id, a->roots[i].props,
                                      spark_http_request_user_id(req),
                                      spark_http_request_user_name(req), &bodies[i], &versions[i]);
        if (r < ready) ready = r;
    }
    if (ready == 1) {
        spark_sbuf out = {0};
        const char *p = a->html;
        for (size_t i = 0; i < a->nroots; i++) {
            const char *m = strstr(p, MARKER);
            spark_sbuf_append(&out, p, (size_t)(m - p));
            root_markup(&out, a->roots[i].id, versions[i], bodies[i]);
            p = m + strlen(MARKER);
        }
        spark_sbuf_puts(&out, p);
        if (out.failed)
            spark_http_respond_text(req, 500, "out of memory\n");
        else
            spark_http_respond(req, 200, "text/html; charset=utf-8", out.data, out.len);
        spark_sbuf_free(&out);
    } else if (ready < 0) {
        spark_http_respond_text(req, 503, "the component is not available right now\n");
    }
    for (size_t i = 0; i < a->nroots; i++)
        free(bodies[i]);
    return ready != 0;
}

/* ---- waiting for a component ------------------------------------------------ */

static void free_answer(live_answer *a) {
    lws_sul_cancel(&a->sul);
    lws_dll2_remove(&a->link);
    spark_http_later_free(a->later);
    for (size_t i = 0; i < a->nroots; i++)
        free(a->roots[i].props);
    free(a->html);
    free(a);
}

/* Woken when one of its components is ready (or failed), or at its
 * deadline. */
static void retry_answer(lws_sorted_usec_list_t *sul) {
    live_answer *a = lws_container_of(sul, live_answer, sul);
    spark_http_request *req = spark_http_later_request(a->later);
    if (req && !try_answer(req, a)) {
        lws_usec_t now = lws_now_usecs();
        if (now < a->deadline) {
            lws_sul_schedule(lws_get_context(spark_http_request_wsi(req)), 0, &a->sul, retry_answer,
                             a->deadline - now);
            return;
        }
        spark_http_respond_text(req, 503, "the component is not available right now\n");
    }
    free_answer(a);
}

/* The component runtime says `id` can be served: the answers waiting for
 * it try again on the loop's next turn (not from inside the runtime's
 * callback). */
static void wake_pages(void *ud, const char *id) {
    spark_pages *pages = ud;
    EACH_LINK(d, &pages->waiting) {
        live_answer *a = lws_container_of(d, live_answer, link);
        spark_http_request *req = spark_http_later_request(a->later);
        for (size_t i = 0; req && i < a->nroots; i++)
            if (strcmp(a->roots[i].id, id) == 0) {
                lws_sul_schedule(lws_get_context(spark_http_request_wsi(req)), 0, &a->sul,
                                 retry_answer, 0);
                spark_poll_epoll_due_now();
                break;
            }
    }
}

/* Answers now, or defers the request until every root is ready. Takes
 * `a` (its roots filled in, its HTML with a marker each). */
static void answer(spark_http_request *req, spark_pages *pages, live_answer *a) {
    a->pages = pages;
    if (try_answer(req, a)) {
        free_answer(a);
        return;
    }
    if (!(a->later = spark_http_defer(req))) {
        free_answer(a);
        spark_http_respond_text(req, 500, "out of memory\n");
        return;
    }
    a->deadline = lws_now_usecs() + MAX_WAIT_US;
    lws_dll2_add_tail(&a->link, &pages->waiting);
    lws_sul_schedule(lws_get_context(spark_http_request_wsi(req)), 0, &a->sul, retry_answer,
                     MAX_WAIT_US);
}

/* Whether this request may see component `id`; answers (a redirect to
 * sign in, 403) and returns false otherwise. */
static bool may_see(spark_http_request *req, const char *id) {
    char scope[SPARK_MAX_CID_BYTES + 16];
    if (spark_http_require_user(req)) return false;
    snprintf(scope, sizeof scope, "component:%s", id);
    if (spark_http_request_can(req, scope)) return true;
    spark_http_respond_text(req, 403, "forbidden\n");
    return false;
}

static void serve_page(spark_http_request *req, void *ud) {
    const page_route *r = ud;
    char id[SPARK_MAX_CID_BYTES + 1];
    if (component_id(r->def, req, id)) {
        spark_http_respond_text(req, 404, "not found\n");
        return;
    }
    if (!may_see(req, id)) return;
    spark_sbuf title = {0}, html = {0};
    if (r->def->title)
        expand(&title, r->def->title, req, MAX_TITLE_VALUE);
    else
        spark_sbuf_puts(&title, id);
    if (!title.failed) layout(&html, r->pages, title.data);
    live_answer *a = !title.failed && !html.failed ? calloc(1, sizeof *a + sizeof *a->roots) : NULL;
    spark_sbuf_free(&title);
    if (!a) {
        spark_sbuf_free(&html);
        spark_http_respond_text(req, 500, "out of memory\n");
        return;
    }
    a->html = html.data;
    a->nroots = 1;
    memcpy(a->roots[0].id, id, sizeof id);
    answer(req, r->pages, a);
}

/* ---- live roots in a route's own HTML ------------------------------------------ */

static bool is_object(const char *json_text) {
    json_object *o = json_tokener_parse(json_text);
    bool yes = json_object_is_type(o, json_type_object);
    json_object_put(o);
    return yes;
}

SPARK_API void spark_respond_live(spark_request *req, const char *html,
                                  const spark_live_root *roots, size_t nroots) {
    spark_pages *pages = spark_http_request_pages(req);
    const char *why = !pages                          ? "live components are not served here"
                      : !html || nroots > MAX_ROOTS   ? "no HTML, or more than 16 roots"
                      : count_markers(html) != nroots ? "the HTML needs one " MARKER " per root"
                                                      : NULL;
    for (size_t i = 0; !why && i < nroots; i++) {
        const char *id = roots[i].id;
        if (!id || !spark_component_of_id(id, NULL))
            why = "a root's id names no registered component";
        else if (roots[i].props && strlen(roots[i].props) > MAX_PROPS_BYTES)
            why = "a root's props exceed 64 KiB";
        else if (roots[i].props && !is_object(roots[i].props))
            why = "a root's props are not a JSON object";
    }
    if (why) {
        spark_log(SPARK_LOG_ERROR, "pages.live_refused", why, "path=%s",
                  spark_http_request_path(req));
        spark_http_respond_text(req, 500, "the page cannot be rendered\n");
        return;
    }
    for (size_t i = 0; i < nroots; i++)
        if (!may_see(req, roots[i].id)) return;
    live_answer *a = calloc(1, sizeof *a + nroots * sizeof *a->roots);
    bool ok = a && (a->html = strdup(html));
    for (size_t i = 0; ok && i < nroots; i++) {
        a->nroots++;
        snprintf(a->roots[i].id, sizeof a->roots[i].id, "%s", roots[i].id);
        ok = !roots[i].props || (a->roots[i].props = strdup(roots[i].props));
    }
    if (!ok) {
        if (a) free_answer(a);
        spark_http_respond_text(req, 500, "out of memory\n");
        return;
    }
    answer(req, pages, a);
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
        live_answer *a = lws_container_of(pages->waiting.head, live_answer, link);
        spark_http_request *req = spark_http_later_request(a->later);
        if (req) spark_http_respond_text(req, 503, "the server is stopping\n");
        free_answer(a);
    }
    free(pages->nav);
    free(pages);
}
