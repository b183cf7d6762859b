/*
 * http.c - HTTP requests on the lws loop: routing, static files, responses.
 *
 * Dynamic responses are buffered whole and written in chunks from
 * WRITEABLE callbacks, as lws requires. The body is stored after LWS_PRE
 * bytes of headroom, so each chunk can be handed to lws_write() in place:
 * the bytes lws may scribble on before a chunk were already sent.
 *
 * Static files are confined to the web root by resolving the requested path
 * with realpath() and checking the result still lies below the root, which
 * also refuses symlinks that point out of it.
 */
#include "http.h"

#include "log.h"
#include "metrics.h"
#include "router.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_PATH_BYTES 1024
#define WRITE_CHUNK    16384

typedef struct {
    char *path;
    spark_http_handler handler;
    void *ud;
} route;

struct spark_http {
    char root[PATH_MAX];
    route *routes;
    size_t nroutes;
    bool accepting;
    spark_http_ws_fn ws;
    void *ws_ud;
};

/* Per-connection state (lws allocates it); reused across keep-alive
 * requests on one connection. */
struct spark_http_request {
    struct lws *wsi;
    char path[MAX_PATH_BYTES];
    spark_route_params params;
    int status;
    unsigned char *buf; /* LWS_PRE headroom, then the body */
    size_t len, sent;
    bool responded;
    void *ws; /* the WebSocket connection, once upgraded */
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

spark_http *spark_http_new(const char *web_root) {
    spark_http *http = calloc(1, sizeof *http);
    if (!http) return NULL;
    if (!realpath(web_root, http->root)) {
        free(http);
        return NULL;
    }
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

int spark_http_get(spark_http *http, const char *path, spark_http_handler handler, void *ud) {
    if (!spark_route_valid(path)) return -1;
    route r = {strdup(path), handler, ud};
    route *routes = r.path ? realloc(http->routes, (http->nroutes + 1) * sizeof *routes) : NULL;
    if (!routes) {
        free(r.path);
        return -1;
    }
    http->routes = routes;
    routes[http->nroutes++] = r;
    return 0;
}

void spark_http_set_ws(spark_http *http, spark_http_ws_fn cb, void *ud) {
    http->ws = cb;
    http->ws_ud = ud;
}

void spark_http_set_accepting(spark_http *http, bool accepting) { http->accepting = accepting; }

const char *spark_http_request_path(const spark_http_request *req) { return req->path; }

const char *spark_http_request_param(const spark_http_request *req, const char *name) {
    return spark_route_param(&req->params, name);
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

static void release_body(spark_http_request *req) {
    free(req->buf);
    req->buf = NULL;
    req->len = req->sent = 0;
}

void spark_http_respond(spark_http_request *req, int status, const char *content_type,
                        const char *body, size_t len) {
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

    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                                       *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(req->wsi, (unsigned)status, content_type, req->len, &p, end) ||
        lws_add_http_header_by_name(req->wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)"nosniff", 7, &p, end) ||
        lws_add_http_header_by_name(req->wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(req->wsi, start, &p, end)) {
        release_body(req);
        return;
    }
    lws_callback_on_writable(req->wsi);
}

static void respond_text(spark_http_request *req, int status, const char *text) {
    spark_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
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

/* Maps a request path to a regular file below the root. Returns 0 or -1. */
static int resolve_static(const spark_http *http, const char *path, char *out) {
    char joined[PATH_MAX];
    size_t root_len = strlen(http->root), path_len = strlen(path);
    if (strstr(path, "..") || root_len + path_len + 12 >= sizeof joined) return -1;
    memcpy(joined, http->root, root_len);
    memcpy(joined + root_len, path, path_len + 1);
    struct stat st;
    if (stat(joined, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(joined);
        snprintf(joined + n, sizeof joined - n, "%sindex.html", joined[n - 1] == '/' ? "" : "/");
    }
    if (!realpath(joined, out) || strncmp(out, http->root, root_len) != 0 || out[root_len] != '/')
        return -1;
    return stat(out, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}

static int serve_static(spark_http *http, spark_http_request *req) {
    char file[PATH_MAX];
    if (resolve_static(http, req->path, file)) {
        respond_text(req, 404, "not found\n");
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

static int handle_request(spark_http *http, spark_http_request *req, const char *uri) {
    release_body(req);
    req->responded = false;
    if (strlen(uri) >= sizeof req->path || uri[0] != '/') {
        snprintf(req->path, sizeof req->path, "/");
        respond_text(req, 414, "request path too long\n");
        return 0;
    }
    snprintf(req->path, sizeof req->path, "%s", uri);
    if (!http->accepting) {
        respond_text(req, 503, "shutting down\n");
        return 0;
    }
    bool is_get = lws_hdr_total_length(req->wsi, WSI_TOKEN_GET_URI) > 0;
    for (size_t i = 0; i < http->nroutes; i++) {
        if (!spark_route_match(http->routes[i].path, req->path, &req->params)) continue;
        if (!is_get) {
            respond_text(req, 405, "method not allowed\n");
            return 0;
        }
        http->routes[i].handler(req, http->routes[i].ud);
        if (!req->responded) respond_text(req, 500, "no response\n");
        return 0;
    }
    if (!is_get) {
        respond_text(req, 405, "method not allowed\n");
        return 0;
    }
    return serve_static(http, req);
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
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return write_body(req);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (req) release_body(req);
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
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols spark_http_protocol(spark_http *http) {
    struct lws_protocols p = {"http", http_callback, sizeof(spark_http_request), 0, 0, http, 0};
    return p;
}
