/*
 * route.h - HTTP routes of one's own: a path, a method, a handler.
 *
 * For what is not a live component: an index, a sign-in form, a JSON
 * endpoint. A handler runs in the event loop, must not block, and answers
 * before it returns:
 *
 *     static void hello(spark_request *req) {
 *         static const char text[] = "hello\n";
 *         spark_respond(req, 200, "text/plain; charset=utf-8", text, sizeof text - 1);
 *     }
 *     SPARK_ROUTE(hello, .method = SPARK_GET, .path = "/hello", .handler = hello);
 *
 * Routes are tried in order of registration, before the static files of
 * the web root. A route's own HTML may hold live components:
 * spark_respond_live() below. A POST is handled only when it comes from this site's own
 * pages (its Origin is this site's or one of SPARK_ALLOWED_ORIGINS; without
 * an Origin, the browser says Sec-Fetch-Site: same-origin): others get 403,
 * so another site cannot post a form in a visitor's name.
 *
 * Signing in. Pages (spark/page.h) and sockets know a visitor by the token
 * in the session cookie. An app issues that cookie from its own sign-in
 * route with spark_respond_sign_in(), while sign-in is on: SPARK_DEMO_LOGIN=1
 * with SPARK_SIGNING_KEY (and tokens verified). Routes declared with
 * .sign_in = true are served only then, and a page then sends a signed-out
 * visitor to GET /login?next=<the page's path>, which the app serves.
 *
 * Ownership: the request belongs to the runtime and is valid only during
 * the handler call; strings read from it are copied into the caller's
 * buffers; response bodies are copied.
 */
#ifndef SPARK_ROUTE_H
#define SPARK_ROUTE_H

#include <spark/spark.h>

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spark_request spark_request;

typedef enum { SPARK_GET, SPARK_POST } spark_method;

typedef struct spark_route {
    spark_method method;
    const char *path; /* "/login", "/api/:id": literal and :param segments */
    void (*handler)(spark_request *req);
    /* Part of signing in (the form, signing out): served only while
     * sign-in is on; otherwise the path is not routed at all. */
    bool sign_in;
} spark_route;

/* Registers a route (before spark_main). The struct must outlive the
 * program (a static). Returns 0, or -1 if the path is malformed, the
 * handler is missing or there are too many routes. */
SPARK_API int spark_route_register(const spark_route *route);

/* Declares and registers a route at program start. */
#define SPARK_ROUTE(ident, ...)                                                                    \
    static const spark_route ident##_route = {__VA_ARGS__};                                        \
    __attribute__((constructor)) static void ident##_route_register(void) {                        \
        spark_route_register(&ident##_route);                                                      \
    }

/* ---- the request ---------------------------------------------------------- */

/* A route parameter (":id" is "id"), percent-decoded, or NULL. Belongs to
 * the request. */
SPARK_API const char *spark_request_param(const spark_request *req, const char *name);

/* Copy a query argument ("?next=/x") or a field of a POST's form body
 * (application/x-www-form-urlencoded, at most 8 KiB), decoded, into out
 * (cap bytes). Return 0, or -1 when absent, badly encoded or too long
 * (out is then ""). */
SPARK_API int spark_request_query(const spark_request *req, const char *name, char *out,
                                  size_t cap);
SPARK_API int spark_request_form(const spark_request *req, const char *name, char *out, size_t cap);

/* Who is asking: the session's user, or "anonymous". Belong to the request. */
SPARK_API const char *spark_request_user_id(const spark_request *req);
SPARK_API const char *spark_request_user_name(const spark_request *req);

/* ---- the response (exactly one per request) -------------------------------- */
/* spark_respond, spark_respond_live, spark_respond_sign_in or _sign_out. */

SPARK_API void spark_respond(spark_request *req, int status, const char *content_type,
                             const char *body, size_t len);

/* ---- live components in one's own HTML --------------------------------------- */

/* A live root to put into a page of one's own: the seed's
 * `CounterComponent.mount(count: 10).render` inside a template. */
typedef struct spark_live_root {
    const char *id; /* "counter:home": a registered type and a key */
    /* NULL, or a JSON object (at most 64 KiB): the initial shared state of
     * a component never written, over its type's initial_state. The first
     * page that shows such a component stores it as its version 1 (event
     * "mount"), so that every instance and viewer sees the same; a stored
     * state is never overwritten. */
    const char *props;
} spark_live_root;

/* Answers 200 text/html with `html`, in which each "<!--spark-live-->"
 * is replaced, in order, by the root of the next of `roots`: the component
 * rendered on the server as this visitor sees it, in the markup spark.js
 * picks up and makes live (docs/pages.md). `html` and the roots are
 * copied. It does not block: the request waits for the components' states
 * (and props being stored) while the loop goes on, and is answered 503
 * after 5 s or when PostgreSQL is down. The visitor needs each root's scope
 * `component:<id>`, as on a declared page (signed out: the sign-in
 * redirect while sign-in is on, else 401; without the scope: 403). `html`
 * is sent as it is: escape what is not markup. A marker count other than
 * `nroots`, an unknown type, props that are not a JSON object, more than
 * 16 roots: 500, logged (pages.live_refused).
 *
 *     static void home(spark_request *req) {
 *         static const spark_live_root counter = {"counter:widget", "{\"count\":10}"};
 *         spark_respond_live(req, "<!doctype html><title>Home</title>"
 *                                 "<script src=\"/js/spark.js\" defer></script>"
 *                                 "<div id=\"counter-widget\"><!--spark-live--></div>",
 *                            &counter, 1);
 *     }
 */
SPARK_API void spark_respond_live(spark_request *req, const char *html,
                                  const spark_live_root *roots, size_t nroots);

/* Signs the visitor in and sends them to `path` (303 See Other): the
 * session cookie (HttpOnly, SameSite=Lax, and Secure when the browser came
 * over HTTPS) holds a token for `user_id` with display name `name`,
 * granting the `nscopes` scopes ("component:*", "room:lobby"), signed with
 * SPARK_SIGNING_KEY and valid for 12 hours. A `path` that is not a path on
 * this site ("//host", "/\host", control characters) sends them to "/".
 * Returns 0, or -1 when sign-in is off or the token is refused (a field
 * too long: the reason is logged); nothing is sent then. */
SPARK_API int spark_respond_sign_in(spark_request *req, const char *user_id, const char *name,
                                    const char *const *scopes, size_t nscopes, const char *path);

/* Clears the session cookie and sends the visitor to `path` (as above). */
SPARK_API void spark_respond_sign_out(spark_request *req, const char *path);

#ifdef __cplusplus
}
#endif

#endif
