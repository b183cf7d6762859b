/*
 * page.h - a page for a component: a route whose answer is the component,
 * rendered on the server inside the runtime's layout.
 *
 *     SPARK_COMPONENT(poll, .render = render, .on_event = on_event);
 *     SPARK_PAGE(poll, .route = "/poll/:id", .component = "poll:{id}", .title = "Poll {id}");
 *
 * GET /poll/lunch then answers a whole HTML document: the stylesheet
 * (/css/spark.css), the client (/js/spark.js), the navigation, the title as
 * <title> and <h1>, and the component poll:lunch's render as it stands,
 * inside its root element (docs/pages.md gives the markup). The page works
 * before its socket opens; once open, the client joins at the version the
 * page showed and the page stays live.
 *
 * The answer waits, without blocking the loop, until the component's state
 * has loaded from PostgreSQL: up to 5 seconds, then 503 (as when
 * PostgreSQL is down). The visitor needs the scope component:<id>: a
 * signed-out visitor is sent to /login?next=<path> while sign-in is on
 * (spark/route.h), or answered 401 otherwise; a visitor without the scope
 * gets 403. A component id longer than 255 bytes is 404.
 *
 * A page of one's own, with components mounted where the app's HTML says:
 * spark_respond_live() in spark/route.h.
 *
 * Ownership: the struct and its strings must outlive the program (a
 * static, as the macro declares); the runtime copies nothing.
 */
#ifndef SPARK_PAGE_H
#define SPARK_PAGE_H

#include <spark/spark.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spark_page {
    /* "/poll/:id": literal and :param segments, as for routes. */
    const char *route;
    /* "poll:{id}": the component's id, each {param} replaced by the
     * route's value. Its type must be a registered component. */
    const char *component;
    /* "Poll {id}": the page's title and heading, {param} as above (each
     * value cut at 200 bytes). NULL: the component id. */
    const char *title;
    /* A link in the navigation of every page (optional): its text and
     * where it goes ("Polls", "/poll/lunch"), in order of registration. */
    const char *nav;
    const char *nav_path;
} spark_page;

/* Registers a page (before spark_main). Returns 0, or -1 when the route
 * is malformed, the component template names no type or a {param} the
 * route lacks, or there are too many pages. */
SPARK_API int spark_page_register(const spark_page *page);

/* Declares and registers a page at program start. */
#define SPARK_PAGE(ident, ...)                                                                     \
    static const spark_page ident##_page = {__VA_ARGS__};                                          \
    __attribute__((constructor)) static void ident##_page_register(void) {                         \
        spark_page_register(&ident##_page);                                                        \
    }

#ifdef __cplusplus
}
#endif

#endif
