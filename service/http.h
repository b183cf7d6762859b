/*
 * http.h - the HTTP side of the server: exact-path routes answered by C
 * handlers, and static files from the web roots for everything else.
 *
 * A handler runs inside the event loop, must not block, and answers with
 * spark_http_respond() before it returns. Bodies are copied; the request is
 * valid only during the handler call.
 */
#ifndef SPARK_HTTP_H
#define SPARK_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct spark_http spark_http;
/* The same struct as <spark/route.h>'s spark_request: apps' handlers get
 * the request that the runtime's own handlers get. */
typedef struct spark_request spark_http_request;
typedef void (*spark_http_handler)(spark_http_request *req, void *ud);

/* Serves static files below `web_root` (resolved now; must exist), and
 * those it lacks from below `base_root` (the runtime's own; NULL, or a
 * directory that does not exist: none). Returns NULL if `web_root` cannot
 * be resolved or on allocation failure. */
spark_http *spark_http_new(const char *web_root, const char *base_root);
void spark_http_free(spark_http *http);

/* Routes GET requests for `path`, a pattern with :params as for channels
 * ("/todo/:list"), to `handler`. Returns 0, or -1 on a malformed pattern. */
int spark_http_get(spark_http *http, const char *path, spark_http_handler handler, void *ud);

/* Routes POST requests (bodies up to 8 KiB; larger get 413). */
int spark_http_post(spark_http *http, const char *path, spark_http_handler handler, void *ud);

/* The sessions that identify each request's user (NULL: everyone is
 * anonymous). */
struct spark_sessions;
void spark_http_set_sessions(spark_http *http, const struct spark_sessions *sessions);
const struct spark_sessions *spark_http_request_sessions(const spark_http_request *req);

/* The pages that live roots in routes' own HTML go through (pages.c;
 * NULL: live components are not served). */
struct spark_pages;
void spark_http_set_pages(spark_http *http, struct spark_pages *pages);
struct spark_pages *spark_http_request_pages(const spark_http_request *req);

/* WebSocket upgrades and the traffic of upgraded connections go to `cb`
 * (without one, every upgrade is refused). `slot` is a per-connection
 * pointer that belongs to the callee. */
typedef int (*spark_http_ws_fn)(void *ud, struct lws *wsi, enum lws_callback_reasons reason,
                                void **slot, void *in, size_t len);
void spark_http_set_ws(spark_http *http, spark_http_ws_fn cb, void *ud);

/* While not accepting (a graceful stop), every request gets 503. */
void spark_http_set_accepting(spark_http *http, bool accepting);

/* The lws protocol (list entry 0) serving HTTP for this spark_http. */
struct lws_protocols spark_http_protocol(spark_http *http);

const char *spark_http_request_path(const spark_http_request *req);

/* A route parameter, percent-decoded, or NULL. */
const char *spark_http_request_param(const spark_http_request *req, const char *name);

/* Copies the query argument `name` (decoded) into out. Returns 0, or -1 if
 * absent or longer than len - 1. */
int spark_http_request_query(const spark_http_request *req, const char *name, char *out,
                             size_t len);

/* Copies a request header (WSI_TOKEN_HTTP_COOKIE...) into out. Returns 0,
 * or -1 if absent or longer than len - 1. */
int spark_http_request_header(const spark_http_request *req, enum lws_token_indexes token,
                              char *out, size_t len);

struct lws *spark_http_request_wsi(const spark_http_request *req);

/* Who made the request: the session cookie's or bearer token's user, or
 * an anonymous viewer when there is none (or tokens are not configured). */
const char *spark_http_request_user_id(const spark_http_request *req);
const char *spark_http_request_user_name(const spark_http_request *req);
bool spark_http_request_authenticated(const spark_http_request *req);

/* True if the request's token grants `scope` (always, without tokens). */
bool spark_http_request_can(const spark_http_request *req, const char *scope);

/* For pages that need a user: when login is on and nobody is logged in,
 * answers with a redirect to /login?next=<this path> and returns true (the
 * handler then returns at once). */
bool spark_http_require_user(spark_http_request *req);

/* Answers 303 See Other to `location` (a path on this site). */
void spark_http_redirect(spark_http_request *req, const char *location);

/* Answers the request. `body` (len bytes) is copied. */
void spark_http_respond(spark_http_request *req, int status, const char *content_type,
                        const char *body, size_t len);

/* A plain-text answer ("not found\n"). */
void spark_http_respond_text(spark_http_request *req, int status, const char *text);

/* The same with extra headers: NULL-terminated pairs such as
 * {"set-cookie:", "a=b", NULL}. */
void spark_http_respond_with(spark_http_request *req, int status, const char *content_type,
                             const char *body, size_t len, const char *const *headers);

/* Answering later: a handler that must wait for something (a component
 * loading from PostgreSQL) defers the request and returns; the loop goes
 * on. spark_http_later_request() gives the request back, or NULL once the
 * client has gone; the holder answers it and frees the handle either way. */
typedef struct spark_http_later spark_http_later;
spark_http_later *spark_http_defer(spark_http_request *req);
spark_http_request *spark_http_later_request(const spark_http_later *later);
void spark_http_later_free(spark_http_later *later);

/* A POST request's body (NUL-terminated), valid during the handler. */
const char *spark_http_request_body(const spark_http_request *req, size_t *len);

#endif
