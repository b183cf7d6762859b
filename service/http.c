/*
 * http.c - HTTP requests on the lws loop: routing, static files, responses.
 *
 * Dynamic responses are buffered whole and written in chunks from
 * WRITEABLE callbacks, as lws requires. The body is stored after LWS_PRE
 * bytes of headroom, so each chunk can be handed to lws_write() in place:
 * the bytes lws may scribble on before a chunk were already sent.
 *
 * Static files come from the app's web root, then the runtime's own (the
 * installed one, with spark.js and spark.css): a file in the app's wins,
 * and everything else is still there. Each is confined to its root by
 * resolving the requested path with realpath() and checking the result
 * still lies below that root, which also refuses symlinks that point out
 * of it.
 */
#include "http.h"

#include "log.h"
#include "metrics.h"
#include "router.h"
#include "session.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_PATH_BYTES 1024
#define WRITE_CHUNK    16384
#define MAX_BODY_BYTES 8192
#define RX_CHUNK       1024
/* What lws hands send() of one lws_write at most; the rest it keeps and
 * sends on the next POLLOUT. Left 0, lws takes RX_CHUNK: every larger
 * write, a file's WRITE_CHUNK or a channel's coalesced messages (16 KiB at
 * most, channel.c), left in 1 KiB sends a turn of the loop apart. */
#define TX_CHUNK 16384

typedef struct {
    char *path;
    bool post;
    spark_http_handler handler;
    void *ud;
} route;

struct spark_http {
    char root[2][PATH_MAX]; /* the app's, then the runtime's */
    int nroots;
    route *routes;
    size_t nroutes;
    bool accepting;
    spark_http_ws_fn ws;
    void *ws_ud;
    const spark_sessions *sessions;
    struct spark_pages *pages;
};

/* What an HTTP request asked for: allocated by its connection's first
 * request, and never by a WebSocket connection, which is upgraded before
 * any and lives on idle (thousands of them at once). */
typedef struct {
    char path[MAX_PATH_BYTES];
    spark_route_params params;
} http_target;

/* Per-connection state (lws allocates it); reused across keep-alive
 * requests on one connection. Kept small: every WebSocket has one. */
struct spark_request {
    struct lws *wsi;
    http_target *target; /* NULL until the first HTTP request */
    int status;
    unsigned char *buf; /* LWS_PRE headroom, then the body */
    size_t len, sent;
    bool responded;
    void *ws; /* the WebSocket connection, once upgraded */
    spark_identity identity;
    const route *pending; /* a POST route waiting for its body */
    char *body;           /* a POST's body, allocated when one comes: most sockets never have one */
    size_t body_len;
    spark_http_later *later; /* deferred: the handler answers later */
};

struct spark_http_later {
    spark_http_request *req; /* NULL once the connection is gone */
};

static const struct {
    const char *ext, *type;
} mime_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
    {".map", "application/json"},
};

static const char *mime_type(const char *path) {
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof mime_types / sizeof *mime_types; i++)
        if (strcmp(dot, mime_types[i].ext) == 0) return mime_types[i].type;
    return "application/octet-stream";
}

spark_http *spark_http_new(const char *web_root, const char *base_root) {
    spark_http *http = calloc(1, sizeof *http);
    if (!http) return NULL;
    if (!realpath(web_root, http->root[0])) {
        free(http);
        return NULL;
    }
    http->nroots = 1;
    if (base_root && realpath(base_root, http->root[1]) && strcmp(http->root[0], http->root[1]))
        http->nroots = 2;
    http->accepting = true;
    return http;
}

void spark_http_free(spark_http *http) {
    if (!http) return;
    for (size_t i = 0; i < http->nroutes; i++)
        free(http->routes[i].path);
    free(http->routes);
    free(http);
}

static int add_route(spark_http *http, const char *path, bool post, spark_http_handler handler,
                     void *ud) {
    if (!spark_route_valid(path)) return -1;
    route r = {strdup(path), post, handler, ud};
    route *routes = r.path ? realloc(http->routes, (http->nroutes + 1) * sizeof *routes) : NULL;
    if (!routes) {
        free(r.path);
        return -1;
    }
    http->routes = routes;
    routes[http->nroutes++] = r;
    return 0;
}

int spark_http_get(spark_http *http, const char *path, spark_http_handler handler, void *ud) {
    return add_route(http, path, false, handler, ud);
}

int spark_http_post(spark_http *http, const char *path, spark_http_handler handler, void *ud) {
    return add_route(http, path, true, handler, ud);
}

void spark_http_set_sessions(spark_http *http, const spark_sessions *sessions) {
    http->sessions = sessions;
}

const char *spark_http_request_body(const spark_http_request *req, size_t *len) {
    if (len) *len = req->body_len;
    return req->body ? req->body : "";
}

void spark_http_set_ws(spark_http *http, spark_http_ws_fn cb, void *ud) {
    http->ws = cb;
    http->ws_ud = ud;
}

void spark_http_set_accepting(spark_http *http, bool accepting) { http->accepting = accepting; }

const char *spark_http_request_path(const spark_http_request *req) {
    return req->target ? req->target->path : "/";
}

const char *spark_http_request_param(const spark_http_request *req, const char *name) {
    return req->target ? spark_route_param(&req->target->params, name) : NULL;
}

int spark_http_request_query(const spark_http_request *req, const char *name, char *out,
                             size_t len) {
    char key[64];
    if (snprintf(key, sizeof key, "%s=", name) >= (int)sizeof key) return -1;
    /* lws copies "name=value" and points at the value inside it. */
    const char *value = lws_get_urlarg_by_name(req->wsi, key, out, (int)len);
    if (!value) return -1;
    memmove(out, value, strlen(value) + 1);
    return 0;
}

int spark_http_request_header(const spark_http_request *req, enum lws_token_indexes token,
                              char *out, size_t len) {
    int n = lws_hdr_total_length(req->wsi, token);
    if (n <= 0 || (size_t)n >= len) return -1;
    return lws_hdr_copy(req->wsi, out, (int)len, token) < 0 ? -1 : 0;
}

struct lws *spark_http_request_wsi(const spark_http_request *req) {
    return req->wsi;
}

void spark_http_set_pages(spark_http *http, struct spark_pages *pages) { http->pages = pages; }

struct spark_pages *spark_http_request_pages(const spark_http_request *req) {
    return ((const spark_http *)lws_get_protocol(req->wsi)->user)->pages;
}

const spark_sessions *spark_http_request_sessions(const spark_http_request *req) {
    return ((const spark_http *)lws_get_protocol(req->wsi)->user)->sessions;
}

const char *spark_http_request_user_id(const spark_http_request *req) {
    return req->identity.authenticated ? req->identity.claims.sub : "anonymous";
}

const char *spark_http_request_user_name(const spark_http_request *req) {
    return req->identity.authenticated ? req->identity.claims.name : "anonymous";
}

bool spark_http_request_authenticated(const spark_http_request *req) {
    return req->identity.authenticated;
}

bool spark_http_request_can(const spark_http_request *req, const char *scope) {
    return spark_identity_can(spark_http_request_sessions(req), &req->identity, scope);
}

bool spark_http_require_user(spark_http_request *req) {
    const spark_sessions *sessions = spark_http_request_sessions(req);
    if (!spark_sessions_enabled(sessions) || req->identity.authenticated) return false;
    if (!spark_sessions_login_enabled(sessions)) {
        spark_http_respond(req, 401, "text/plain; charset=utf-8", "sign-in required\n", 17);
        return true;
    }
    char next[MAX_PATH_BYTES * 3 + 32] = "/login?next=", *o = next + strlen(next);
    for (const unsigned char *p = (const unsigned char *)spark_http_request_path(req); *p; p++)
        o += isalnum(*p) || strchr("/-_.~", *p) ? sprintf(o, "%c", *p) : sprintf(o, "%%%02X", *p);
    spark_http_redirect(req, next);
    return true;
}

void spark_http_redirect(spark_http_request *req, const char *location) {
    const char *headers[] = {"location:", location, NULL};
    spark_http_respond_with(req, 303, "text/plain; charset=utf-8", "", 0, headers);
}

static void release_body(spark_http_request *req) {
    free(req->buf);
    req->buf = NULL;
    req->len = req->sent = 0;
}

void spark_http_respond(spark_http_request *req, int status, const char *content_type,
                        const char *body, size_t len) {
    spark_http_respond_with(req, status, content_type, body, len, NULL);
}

void spark_http_respond_text(spark_http_request *req, int status, const char *text) {
    spark_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end) {
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

void spark_http_respond_with(spark_http_request *req, int status, const char *content_type,
                             const char *body, size_t len, const char *const *headers) {
    if (req->responded) return;
    req->responded = true;
    spark_metric_add(SPARK_M_HTTP_REQUESTS, 1);
    release_body(req);
    req->status = status;
    req->buf = malloc(LWS_PRE + len + 1);
    if (req->buf) {
        memcpy(req->buf + LWS_PRE, body, len);
        req->len = len;
    }

    unsigned char hdr[LWS_PRE + 8192], *start = hdr + LWS_PRE, *p = start,
                                       *end = hdr + sizeof hdr - 1;
    int bad =
        lws_add_http_common_headers(req->wsi, (unsigned)status, content_type, req->len, &p, end) ||
        add_header(req->wsi, "x-content-type-options:", "nosniff", &p, end) ||
        add_header(req->wsi, "cache-control:", "no-store", &p, end);
    for (size_t i = 0; !bad && headers && headers[i]; i += 2)
        bad = add_header(req->wsi, headers[i], headers[i + 1], &p, end);
    if (bad || lws_finalize_write_http_header(req->wsi, start, &p, end)) {
        release_body(req);
        return;
    }
    lws_callback_on_writable(req->wsi);
}

/* Writes the next chunk of a buffered body. Returns -1 to close. */
static int write_body(spark_http_request *req) {
    if (!req->responded) return 0;
    size_t left = req->len - req->sent;
    size_t n = left < WRITE_CHUNK ? left : WRITE_CHUNK;
    bool last = n == left;
    // cppcheck-suppress knownConditionTrueFalse ; an empty body ends at once
    if (n > 0 && lws_write(req->wsi, req->buf + LWS_PRE + req->sent, n,
                           last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
        return -1;
    req->sent += n;
    if (!last) {
        lws_callback_on_writable(req->wsi);
        return 0;
    }
    release_body(req);
    req->responded = false;
    return lws_http_transaction_completed(req->wsi) ? -1 : 0;
}

/* Maps a request path to a regular file below `root`. Returns 0 or -1. */
static int resolve_in(const char *root, const char *path, char *out) {
    char joined[PATH_MAX];
    size_t root_len = strlen(root), path_len = strlen(path);
    if (strstr(path, "..") || root_len + path_len + 12 >= sizeof joined) return -1;
    memcpy(joined, root, root_len);
    memcpy(joined + root_len, path, path_len + 1);
    struct stat st;
    if (stat(joined, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(joined);
        snprintf(joined + n, sizeof joined - n, "%sindex.html", joined[n - 1] == '/' ? "" : "/");
    }
    if (!realpath(joined, out) || strncmp(out, root, root_len) != 0 || out[root_len] != '/')
        return -1;
    return stat(out, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}

/* The app's file, or else the runtime's. */
static int resolve_static(const spark_http *http, const char *path, char *out) {
    for (int i = 0; i < http->nroots; i++)
        if (resolve_in(http->root[i], path, out) == 0) return 0;
    return -1;
}

/* Paths served as another file of the web root: azu-spark.js, the name
 * Azu's pages load the client by, is spark.js itself, never a copy. */
static const char *const aliases[][2] = {{"/js/azu-spark.js", "/js/spark.js"}};

static int serve_static(spark_http *http, spark_http_request *req) {
    char file[PATH_MAX];
    const char *path = req->target->path;
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(path, aliases[i][0]) == 0) path = aliases[i][1];
    if (resolve_static(http, path, file)) {
        spark_http_respond_text(req, 404, "not found\n");
        return 0;
    }
    static const char headers[] = "x-content-type-options: nosniff\r\n"
                                  "cache-control: no-cache\r\n";
    spark_metric_add(SPARK_M_HTTP_REQUESTS, 1);
    int n = lws_serve_http_file(req->wsi, file, mime_type(file), headers, (int)strlen(headers));
    if (n < 0) return -1;
    // cppcheck-suppress knownConditionTrueFalse ; an empty body ends at once
    if (n > 0 && lws_http_transaction_completed(req->wsi)) return -1;
    return 0;
}

/* Runs a route's handler, with the caller's identity at hand. */
static void run_route(spark_http *http, spark_http_request *req, const route *r) {
    spark_identity_clear(&req->identity);
    spark_sessions_identify(http->sessions, req->wsi, &req->identity);
    r->handler(req, r->ud);
    if (!req->responded && !req->later) spark_http_respond_text(req, 500, "no response\n");
}

spark_http_later *spark_http_defer(spark_http_request *req) {
    if (req->responded || req->later) return NULL;
    spark_http_later *later = calloc(1, sizeof *later);
    if (later) {
        later->req = req;
        req->later = later;
    }
    return later;
}

spark_http_request *spark_http_later_request(const spark_http_later *later) {
    return later ? later->req : NULL;
}

void spark_http_later_free(spark_http_later *later) {
    if (!later) return;
    if (later->req) {
        if (!later->req->responded) spark_http_respond_text(later->req, 500, "no response\n");
        later->req->later = NULL;
    }
    free(later);
}

/* The client went away: a deferred answer has no one to go to. */
static void forget_later(spark_http_request *req) {
    if (req->later) req->later->req = NULL;
    req->later = NULL;
}

static int handle_request(spark_http *http, spark_http_request *req, const char *uri) {
    release_body(req);
    req->responded = false;
    req->pending = NULL;
    free(req->body);
    req->body = NULL;
    req->body_len = 0;
    if (!req->target && !(req->target = malloc(sizeof *req->target))) {
        spark_http_respond_text(req, 500, "out of memory\n");
        return 0;
    }
    http_target *t = req->target;
    t->params.count = 0;
    if (strlen(uri) >= sizeof t->path || uri[0] != '/') {
        snprintf(t->path, sizeof t->path, "/");
        spark_http_respond_text(req, 414, "request path too long\n");
        return 0;
    }
    snprintf(t->path, sizeof t->path, "%s", uri);
    if (!http->accepting) {
        spark_http_respond_text(req, 503, "shutting down\n");
        return 0;
    }
    bool is_get = lws_hdr_total_length(req->wsi, WSI_TOKEN_GET_URI) > 0;
    bool is_post = lws_hdr_total_length(req->wsi, WSI_TOKEN_POST_URI) > 0;
    bool path_known = false;
    for (size_t i = 0; i < http->nroutes; i++) {
        const route *r = &http->routes[i];
        if (!spark_route_match(r->path, t->path, &t->params)) continue;
        path_known = true;
        if (r->post ? !is_post : !is_get) continue;
        if (!r->post) {
            run_route(http, req, r);
            return 0;
        }
        char length[24] = "";
        long body_bytes =
            lws_hdr_copy(req->wsi, length, sizeof length, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0
                ? atol(length)
                : 0;
        if (body_bytes > MAX_BODY_BYTES) {
            spark_http_respond_text(req, 413, "request body too large\n");
            return 0;
        }
        /* With no body to wait for, lws may not report one as complete. */
        if (body_bytes <= 0) {
            run_route(http, req, r);
            return 0;
        }
        req->pending = r; /* the handler runs once the body is in */
        return 0;
    }
    if (path_known || !is_get) {
        spark_http_respond_text(req, 405, "method not allowed\n");
        return 0;
    }
    return serve_static(http, req);
}

static int on_body(spark_http_request *req, const char *in, size_t len) {
    if (!req->pending) return 0;
    if (req->body_len + len > MAX_BODY_BYTES) {
        req->pending = NULL;
        spark_http_respond_text(req, 413, "request body too large\n");
        return 0;
    }
    if (!req->body && !(req->body = malloc(MAX_BODY_BYTES + 1))) {
        req->pending = NULL;
        spark_http_respond_text(req, 500, "out of memory\n");
        return 0;
    }
    memcpy(req->body + req->body_len, in, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len) {
    const struct lws_protocols *proto = lws_get_protocol(wsi);
    spark_http *http = proto ? proto->user : NULL;
    spark_http_request *req = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        req->wsi = wsi;
        return handle_request(http, req, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(req, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (req->pending) {
            const route *r = req->pending;
            req->pending = NULL;
            run_route(http, req, r);
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return write_body(req);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (req) {
            release_body(req);
            spark_identity_clear(&req->identity);
            forget_later(req);
            free(req->body);
            req->body = NULL;
            free(req->target);
            req->target = NULL;
        }
        break;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (!http->ws) return -1;
        req->wsi = wsi;
        /* fall through */
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    case LWS_CALLBACK_CLOSED:
        return http && http->ws && req ? http->ws(http->ws_ud, wsi, reason, &req->ws, in, len) : 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (http && http->ws && req && req->ws)
            http->ws(http->ws_ud, wsi, reason, &req->ws, in, len);
        /* A keep-alive connection upgraded after a request of its own. */
        if (req) {
            free(req->target);
            req->target = NULL;
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols spark_http_protocol(spark_http *http) {
    /* rx_buffer_size is what lws gives each socket for reading; WebSocket
     * messages arrive in chunks of it and are joined by the channel layer. */
    struct lws_protocols p = {"http", http_callback, sizeof(spark_http_request), RX_CHUNK, 0,
                              http,   TX_CHUNK};
    return p;
}
