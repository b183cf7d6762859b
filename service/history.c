/*
 * history.c - history pages (<spark/history.h>): for each enabled
 * component type, a page listing a component's versions, a server render
 * of any past version, and a revert.
 *
 *     GET  /history/:type/:key               the page (?v= ?upto= ?n=)
 *     GET  /history/:type/:key/at/:version   the preview of one version
 *     POST /history/:type/:key/revert        version=N: revert to it
 *
 * Each request is one statement on the server's db connection; the
 * request is deferred and answered from the statement's callback, so the
 * loop never waits for PostgreSQL. The statement does the bounded work:
 * one page of versions through spark.replay (which walks from the nearest
 * snapshot, at most spark.snapshot_every rows back), their data and diffs
 * cut at a fixed length, and the states of just the versions shown. A
 * past state is rendered here by the component's own render, as an
 * anonymous viewer, inside an inert element that spark.js never joins;
 * the current state is the component's live root, joined like any page's.
 */
#include "history.h"

#include "component_ctx.h"
#include "log.h"
#include "routes.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TYPES       64
#define DEFAULT_PAGE    20
#define MAX_PAGE        100
#define MAX_DIGITS      15  /* of a version: below 2^53, exact in JavaScript */
#define MAX_DATA_CHARS  300 /* of an event's data as shown */
#define MAX_DIFF_CHARS  1000
#define MAX_ENCODED_KEY (SPARK_MAX_CID_BYTES * 3 + 1)

static const char *enabled[MAX_TYPES];
static size_t nenabled;

struct spark_history {
    spark_pg *db;
    const char *instance;
    lws_dll2_owner_t waiting; /* of waiting_request */
};

typedef enum { PAGE, PREVIEW, REVERT } request_kind;

/* A request waiting for its statement's answer. */
typedef struct {
    lws_dll2_t link; /* in history->waiting */
    spark_history *history;
    spark_http_later *later;
    request_kind kind;
    bool can_revert;
    long long asked; /* the ?v= of a page, 0 when none */
    char id[SPARK_MAX_CID_BYTES + 1];
    char base[sizeof "/history//" + 2 * MAX_ENCODED_KEY]; /* the page's path */
} waiting_request;

/* ---- registration ---------------------------------------------------------- */

static bool type_name_valid(const char *s) {
    if (!s || !islower((unsigned char)*s)) return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_') return false;
    return true;
}

static bool type_enabled(const char *type) {
    for (size_t i = 0; i < nenabled; i++)
        if (strcmp(enabled[i], type) == 0) return true;
    return false;
}

SPARK_API int spark_history_enable(const char *type) {
    if (!type_name_valid(type) || nenabled == MAX_TYPES) {
        fprintf(stderr, "spark: cannot enable the history of \"%s\"\n", type ? type : "(null)");
        return -1;
    }
    if (!type_enabled(type)) enabled[nenabled++] = type;
    return 0;
}

/* ---- inputs ------------------------------------------------------------------ */

/* A version: 1 to MAX_DIGITS decimal digits, not 0. */
static bool parse_version(const char *s, long long *out) {
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > MAX_DIGITS || s[n] != '\0') return false;
    *out = strtoll(s, NULL, 10);
    return *out > 0;
}

/* A query argument that must be a version when present: 1 present and
 * good, 0 absent, -1 present and bad. */
static int query_version(spark_http_request *req, const char *name, long long *out) {
    char text[64];
    if (spark_http_request_query(req, name, text, sizeof text)) return 0;
    return parse_version(text, out) ? 1 : -1;
}

/* Percent-encodes a path segment. */
static void encode_segment(spark_sbuf *out, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-_.~", *p))
            spark_sbuf_putc(out, (char)*p);
        else
            spark_sbuf_printf(out, "%%%02X", *p);
    }
}

/* The component id of /history/:type/:key into w->id, and the page's path
 * into w->base. Returns 0, or -1 (answered 404) when the type has no
 * history page or the id is too long. */
static int component_of(spark_http_request *req, waiting_request *w) {
    const char *type = spark_http_request_param(req, "type");
    const char *key = spark_http_request_param(req, "key");
    spark_sbuf base = {0};
    spark_sbuf_puts(&base, "/history/");
    encode_segment(&base, type);
    spark_sbuf_putc(&base, '/');
    encode_segment(&base, key);
    int n = snprintf(w->id, sizeof w->id, "%s:%s", type, key);
    int r = type_enabled(type) && n > 0 && (size_t)n < sizeof w->id && !base.failed &&
                    base.len < sizeof w->base
                ? 0
                : -1;
    if (r == 0)
        memcpy(w->base, base.data, base.len + 1);
    else
        spark_http_respond_text(req, 404, "not found\n");
    spark_sbuf_free(&base);
    return r;
}

/* Whether the visitor may read the component (and, with `revert`, revert
 * it). Answers 401 or 403 and returns false otherwise. */
static bool allowed(spark_http_request *req, const char *id, bool revert) {
    char scope[SPARK_MAX_CID_BYTES + 16];
    snprintf(scope, sizeof scope, "component:%s", id);
    bool ok = spark_http_request_can(req, scope);
    snprintf(scope, sizeof scope, "revert:%s", id);
    if (ok && (!revert || spark_http_request_can(req, scope))) return true;
    if (!spark_http_request_authenticated(req))
        spark_http_respond_text(req, 401, "sign-in required\n");
    else
        spark_http_respond_text(req, 403, "forbidden\n");
    return false;
}

/* ---- markup ------------------------------------------------------------------ */

static void put_escaped(spark_sbuf *out, const char *s) { spark_html_escape(out, s, false); }

static const char *value(const PGresult *res, int row, int col) {
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* One version as the slider shows it. */
typedef struct {
    long long version, latest;
    const char *event, *actor, *at, *state; /* state NULL: the component's deletion */
} shown_version;

/* The preview of one version: who, when, what, the component's render of
 * its state, and the revert button. */
static void preview(spark_sbuf *out, const waiting_request *w, const shown_version *s) {
    spark_sbuf_printf(out, "<div class=\"history-preview\" data-version=\"%lld\">\n", s->version);
    spark_sbuf_printf(out, "<p class=\"history-meta\">Version <strong>%lld</strong> of %lld: ",
                      s->version, s->latest);
    put_escaped(out, s->event ? s->event : "");
    spark_sbuf_puts(out, " by ");
    put_escaped(out, s->actor ? s->actor : "");
    spark_sbuf_puts(out, ", ");
    put_escaped(out, s->at ? s->at : "");
    spark_sbuf_puts(out, "</p>\n");
    char *html = s->state ? spark_component_render_html(w->id, s->state, NULL) : NULL;
    if (!s->state)
        spark_sbuf_puts(out, "<p class=\"history-deleted\">The component was deleted here.</p>\n");
    else if (!html)
        spark_sbuf_puts(out, "<p class=\"history-deleted\">This state cannot be rendered.</p>\n");
    else {
        spark_sbuf_puts(out, "<div class=\"history-render\" inert>");
        spark_sbuf_puts(out, html);
        spark_sbuf_puts(out, "</div>\n");
    }
    free(html);
    if (w->can_revert && s->state && s->version != s->latest) {
        spark_sbuf_puts(out, "<form method=\"post\" class=\"history-revert\" action=\"");
        spark_html_escape(out, w->base, true);
        spark_sbuf_printf(out,
                          "/revert\"><input type=\"hidden\" name=\"version\" value=\"%lld\">"
                          "<button type=\"submit\">Revert to version %lld</button></form>\n",
                          s->version, s->version);
    }
    spark_sbuf_puts(out, "</div>\n");
}

/* A link to the page with ?upto= and the page's other arguments. */
static void page_link(spark_sbuf *out, const waiting_request *w, long long upto, long long n,
                      const char *text) {
    spark_sbuf_puts(out, "<a href=\"");
    spark_html_escape(out, w->base, true);
    spark_sbuf_printf(out, "?upto=%lld&amp;n=%lld", upto, n);
    if (w->asked) spark_sbuf_printf(out, "&amp;v=%lld", w->asked);
    spark_sbuf_printf(out, "\">%s</a>", text);
}

/* Columns of the page's statement (PAGE_SQL). */
enum {
    C_LO,
    C_HI,
    C_TOP,
    C_PV,
    C_PEVENT,
    C_PACTOR,
    C_PAT,
    C_PSTATE,
    C_NOW,
    C_N,
    C_VERSION,
    C_EVENT,
    C_DATA,
    C_DATA_CUT,
    C_ACTOR,
    C_INSTANCE,
    C_AT,
    C_DIFF,
    C_DIFF_CUT,
    C_FOUND
};

static void cut_code(spark_sbuf *out, const char *text, bool cut) {
    spark_sbuf_puts(out, "<code>");
    put_escaped(out, text);
    if (cut) spark_sbuf_puts(out, "…");
    spark_sbuf_puts(out, "</code>");
}

static void versions_table(spark_sbuf *out, const PGresult *res) {
    spark_sbuf_puts(out, "<table class=\"history-versions\">\n<thead><tr><th>Version</th>"
                         "<th>Who</th><th>When</th><th>Event</th><th>What changed</th></tr>"
                         "</thead>\n<tbody>\n");
    for (int row = 0; row < PQntuples(res); row++) {
        if (!value(res, row, C_VERSION)) continue;
        const char *v = value(res, row, C_VERSION);
        spark_sbuf_puts(out, "<tr data-version=\"");
        put_escaped(out, v);
        spark_sbuf_puts(out, "\"><td><a href=\"?v=");
        put_escaped(out, v);
        spark_sbuf_puts(out, "\">");
        put_escaped(out, v);
        spark_sbuf_puts(out, "</a></td><td>");
        put_escaped(out, value(res, row, C_ACTOR) ? value(res, row, C_ACTOR) : "");
        spark_sbuf_puts(out, "</td><td>");
        put_escaped(out, value(res, row, C_AT));
        spark_sbuf_puts(out, "</td><td>");
        put_escaped(out, value(res, row, C_EVENT));
        if (value(res, row, C_DATA)) {
            spark_sbuf_putc(out, ' ');
            cut_code(out, value(res, row, C_DATA), *PQgetvalue(res, row, C_DATA_CUT) == 't');
        }
        spark_sbuf_puts(out, "</td><td>");
        cut_code(out, value(res, row, C_DIFF) ? value(res, row, C_DIFF) : "",
                 *PQgetvalue(res, row, C_DIFF_CUT) == 't');
        spark_sbuf_puts(out, "</td></tr>\n");
    }
    spark_sbuf_puts(out, "</tbody>\n</table>\n");
}

static void page(spark_sbuf *out, const waiting_request *w, const PGresult *res) {
    long long lo = strtoll(PQgetvalue(res, 0, C_LO), NULL, 10);
    long long hi = strtoll(PQgetvalue(res, 0, C_HI), NULL, 10);
    long long top = strtoll(PQgetvalue(res, 0, C_TOP), NULL, 10);
    long long n = strtoll(PQgetvalue(res, 0, C_N), NULL, 10);
    shown_version s = {strtoll(PQgetvalue(res, 0, C_PV), NULL, 10),
                       hi,
                       value(res, 0, C_PEVENT),
                       value(res, 0, C_PACTOR),
                       value(res, 0, C_PAT),
                       value(res, 0, C_PSTATE)};
    spark_sbuf_puts(out,
                    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>History: ");
    put_escaped(out, w->id);
    spark_sbuf_puts(out, " · Spark</title>\n<link rel=\"stylesheet\" href=\"/css/spark.css\">\n"
                         "<script src=\"/js/spark.js\" defer></script>\n"
                         "<script src=\"/js/history.js\" defer></script>\n</head>\n<body>\n"
                         "<nav class=\"spark-nav\"><a href=\"/\">Spark</a></nav>\n"
                         "<main class=\"history\">\n<h1>History: ");
    put_escaped(out, w->id);
    spark_sbuf_puts(out, "</h1>\n");
    if (value(res, 0, C_NOW)) {
        char *now = spark_component_render_html(w->id, value(res, 0, C_NOW), NULL);
        spark_sbuf_puts(out, "<h2>Now</h2>\n<div class=\"history-now\" spark-component=\"");
        spark_html_escape(out, w->id, true);
        spark_sbuf_printf(out, "\">%s</div>\n", now ? now : "");
        free(now);
    }
    spark_sbuf_puts(out, "<h2>Time travel</h2>\n<form class=\"history-slider\" method=\"get\" "
                         "action=\"");
    spark_html_escape(out, w->base, true);
    spark_sbuf_printf(out,
                      "\"><input type=\"range\" name=\"v\" min=\"%lld\" max=\"%lld\" "
                      "value=\"%lld\" aria-label=\"Version\"> <output>%lld</output> "
                      "<button type=\"submit\">Show</button></form>\n",
                      lo, hi, s.version, s.version);
    spark_sbuf_puts(out, "<div id=\"history-preview\" data-at=\"");
    spark_html_escape(out, w->base, true);
    spark_sbuf_puts(out, "/at/\">\n");
    preview(out, w, &s);
    spark_sbuf_printf(out, "</div>\n<h2 class=\"history-range\">Versions %lld to %lld</h2>\n",
                      top - n + 1 > lo ? top - n + 1 : lo, top);
    versions_table(out, res);
    spark_sbuf_puts(out, "<nav class=\"history-pages\">");
    if (top < hi) page_link(out, w, top + n < hi ? top + n : hi, n, "Newer");
    if (top < hi && top - n >= lo) spark_sbuf_puts(out, " ");
    if (top - n >= lo) page_link(out, w, top - n, n, "Older");
    spark_sbuf_puts(out, "</nav>\n</main>\n</body>\n</html>\n");
}

/* ---- statements -------------------------------------------------------------- */

/* $1 id, $2 upto (NULL: the latest), $3 page size, $4 the version to show
 * (NULL: the latest). One row per version shown, newest first (or one row
 * with a NULL version); the shown version's state and the current state
 * only on the first row. */
static const char PAGE_SQL[] =
    "WITH b AS MATERIALIZED (SELECT min(e.version) AS lo, max(e.version) AS hi"
    "  FROM spark.events e WHERE e.component_id = $1),"
    " t AS MATERIALIZED (SELECT b.lo, b.hi,"
    "  greatest(least(coalesce($2::bigint, b.hi), b.hi), b.lo) AS top,"
    "  coalesce($4::bigint, b.hi) AS pv FROM b),"
    " p AS MATERIALIZED (SELECT e.event, e.actor, e.at,"
    "  spark.state_at(e.component_id, e.version)::text AS state"
    "  FROM spark.events e, t WHERE e.component_id = $1 AND e.version = t.pv),"
    " c AS MATERIALIZED (SELECT c.state::text AS state FROM spark.components c WHERE c.id = $1)"
    " SELECT t.lo, t.hi, t.top, t.pv, p.event, p.actor,"
    "  to_char(p.at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',"
    "  CASE WHEN coalesce(r.n, 1) = 1 THEN p.state END,"
    "  CASE WHEN coalesce(r.n, 1) = 1 THEN c.state END, $3::bigint,"
    "  r.version, r.event, left(r.data::text, 300), length(r.data::text) > 300, r.actor,"
    "  r.instance, to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',"
    "  left(r.diff::text, 1000), length(r.diff::text) > 1000, p.event IS NOT NULL"
    " FROM t LEFT JOIN p ON true LEFT JOIN c ON true"
    " LEFT JOIN LATERAL (SELECT x.*, row_number() OVER (ORDER BY x.version DESC) AS n"
    "  FROM spark.replay($1, greatest(t.lo, t.top - $3::bigint + 1), t.top) x"
    "  WHERE t.lo IS NOT NULL) r ON true"
    " ORDER BY r.version DESC";

/* $1 id, $2 version: the latest version, and that version with its state. */
static const char PREVIEW_SQL[] =
    "SELECT (SELECT max(h.version) FROM spark.events h WHERE h.component_id = $1),"
    " e.version, e.event, e.actor,"
    " to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',"
    " spark.state_at(e.component_id, e.version)::text"
    " FROM spark.events e WHERE e.component_id = $1 AND e.version = $2::bigint";

/* $1 id, $2 version, $3 actor, $4 instance: the version written, -1 when
 * there is no such version, -2 when it is the component's deletion. The
 * instance is set first, for the history row the revert appends. */
static const char REVERT_SQL[] = "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM spark.events e"
                                 "   WHERE e.component_id = $1 AND e.version = $2::bigint) THEN -1"
                                 "  WHEN spark.state_at($1, $2::bigint) IS NULL THEN -2"
                                 "  ELSE spark.revert($1, $2::bigint, $3) END"
                                 " FROM (SELECT set_config('spark.instance', $4, true)) s";

/* ---- answers ------------------------------------------------------------------ */

static void stop_waiting(waiting_request *w) {
    lws_dll2_remove(&w->link);
    spark_http_later_free(w->later);
    free(w);
}

static void respond_html(spark_http_request *req, spark_sbuf *out) {
    if (out->failed)
        spark_http_respond_text(req, 500, "out of memory\n");
    else
        spark_http_respond(req, 200, "text/html; charset=utf-8", out->data, out->len);
    spark_sbuf_free(out);
}

static void answer(spark_http_request *req, waiting_request *w, const PGresult *res) {
    spark_sbuf out = {0};
    if (w->kind != PREVIEW && PQntuples(res) == 0) /* they answer one row at least */
        spark_http_respond_text(req, 500, "the history statement answered nothing\n");
    else if (w->kind == PAGE) {
        if (PQgetisnull(res, 0, C_LO))
            spark_http_respond_text(req, 404, "no history\n");
        else if (w->asked && *PQgetvalue(res, 0, C_FOUND) != 't')
            spark_http_respond_text(req, 404, "no such version\n");
        else {
            page(&out, w, res);
            respond_html(req, &out);
        }
    } else if (w->kind == PREVIEW) {
        if (PQntuples(res) == 0) {
            spark_http_respond_text(req, 404, "no such version\n");
            return;
        }
        shown_version s = {strtoll(PQgetvalue(res, 0, 1), NULL, 10),
                           strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                           value(res, 0, 2),
                           value(res, 0, 3),
                           value(res, 0, 4),
                           value(res, 0, 5)};
        preview(&out, w, &s);
        respond_html(req, &out);
    } else {
        long long written = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (written == -1)
            spark_http_respond_text(req, 404, "no such version\n");
        else if (written == -2)
            spark_http_respond_text(req, 409, "that version is the component's deletion\n");
        else
            spark_http_redirect(req, w->base);
    }
}

static void on_result(void *ud, const PGresult *res, const char *error) {
    waiting_request *w = ud;
    spark_http_request *req = spark_http_later_request(w->later);
    if (req && error) {
        spark_log(SPARK_LOG_WARN, "history.query_failed", error, "component=%s", w->id);
        spark_http_respond_text(req, 503, "the history is not available right now\n");
    } else if (req)
        answer(req, w, res);
    stop_waiting(w);
}

/* Sends the request's statement and defers the request until it answers. */
static void query(spark_http_request *req, waiting_request *w, const char *sql, int n,
                  const char *const *params) {
    if (!(w->later = spark_http_defer(req))) {
        spark_http_respond_text(req, 500, "out of memory\n");
        free(w);
        return;
    }
    lws_dll2_add_tail(&w->link, &w->history->waiting);
    int rc = spark_pg_query(w->history->db, sql, n, params, on_result, w);
    if (rc == 0) return;
    spark_http_respond_text(req, 503,
                            rc == SPARK_PG_BUSY ? "busy, try again\n"
                                                : "the history is not available right now\n");
    stop_waiting(w);
}

/* The start of every handler: the component, and the visitor's right to
 * it. NULL when answered already. */
static waiting_request *start(spark_http_request *req, void *ud, request_kind kind) {
    waiting_request *w = calloc(1, sizeof *w);
    if (!w) {
        spark_http_respond_text(req, 500, "out of memory\n");
        return NULL;
    }
    w->history = ud;
    w->kind = kind;
    char scope[SPARK_MAX_CID_BYTES + 16];
    if (component_of(req, w) || (kind == PAGE && spark_http_require_user(req)) ||
        !allowed(req, w->id, kind == REVERT)) {
        free(w);
        return NULL;
    }
    snprintf(scope, sizeof scope, "revert:%s", w->id);
    w->can_revert = spark_http_request_can(req, scope);
    return w;
}

static void serve_page(spark_http_request *req, void *ud) {
    waiting_request *w = start(req, ud, PAGE);
    if (!w) return;
    long long upto = 0, n = DEFAULT_PAGE;
    char nbuf[16] = "", ubuf[24], vbuf[24], sbuf[8];
    int has_upto = query_version(req, "upto", &upto), has_v = query_version(req, "v", &w->asked);
    bool bad_n = spark_http_request_query(req, "n", nbuf, sizeof nbuf) == 0 &&
                 (!parse_version(nbuf, &n) || n > MAX_PAGE);
    if (has_upto < 0 || has_v < 0 || bad_n) {
        spark_http_respond_text(req, 400,
                                bad_n ? "n must be a page size from 1 to 100\n"
                                      : "a version is a whole number from 1, at most 15 digits\n");
        free(w);
        return;
    }
    snprintf(ubuf, sizeof ubuf, "%lld", upto);
    snprintf(vbuf, sizeof vbuf, "%lld", w->asked);
    snprintf(sbuf, sizeof sbuf, "%lld", n);
    const char *params[] = {w->id, has_upto ? ubuf : NULL, sbuf, has_v ? vbuf : NULL};
    query(req, w, PAGE_SQL, 4, params);
}

/* The version `text` as a statement parameter into vbuf. Answers 400 and
 * frees w when it is not a version. */
static bool version_param(spark_http_request *req, waiting_request *w, const char *text,
                          char vbuf[24]) {
    long long v;
    if (text && parse_version(text, &v)) {
        snprintf(vbuf, 24, "%lld", v);
        return true;
    }
    spark_http_respond_text(req, 400, "a version is a whole number from 1, at most 15 digits\n");
    free(w);
    return false;
}

static void serve_preview(spark_http_request *req, void *ud) {
    waiting_request *w = start(req, ud, PREVIEW);
    char vbuf[24];
    if (!w || !version_param(req, w, spark_http_request_param(req, "version"), vbuf)) return;
    const char *params[] = {w->id, vbuf};
    query(req, w, PREVIEW_SQL, 2, params);
}

static void serve_revert(spark_http_request *req, void *ud) {
    if (!spark_routes_posted_by_us(req)) return;
    waiting_request *w = start(req, ud, REVERT);
    char text[64], vbuf[24];
    if (!w) return;
    if (!version_param(req, w, spark_request_form(req, "version", text, sizeof text) ? NULL : text,
                       vbuf))
        return;
    const char *params[] = {w->id, vbuf, spark_http_request_user_id(req), w->history->instance};
    query(req, w, REVERT_SQL, 4, params);
}

/* ---- per server ----------------------------------------------------------- */

spark_history *spark_history_new(spark_http *http, spark_pg *db, const char *instance) {
    spark_history *history = calloc(1, sizeof *history);
    if (!history) return NULL;
    history->db = db;
    history->instance = instance;
    for (size_t i = 0; i < nenabled; i++) {
        if (!spark_component_lookup(enabled[i], strlen(enabled[i]))) {
            spark_log(SPARK_LOG_ERROR, "history.register_failed",
                      "a history page's component type is not registered", "type=%s", enabled[i]);
            free(history);
            return NULL;
        }
    }
    if (nenabled &&
        (spark_http_get(http, "/history/:type/:key", serve_page, history) ||
         spark_http_get(http, "/history/:type/:key/at/:version", serve_preview, history) ||
         spark_http_post(http, "/history/:type/:key/revert", serve_revert, history))) {
        spark_log(SPARK_LOG_ERROR, "history.register_failed", "out of memory", NULL);
        free(history);
        return NULL;
    }
    return history;
}

void spark_history_free(spark_history *history) {
    if (!history) return;
    while (history->waiting.head) {
        waiting_request *w = lws_container_of(history->waiting.head, waiting_request, link);
        spark_http_request *req = spark_http_later_request(w->later);
        if (req) spark_http_respond_text(req, 503, "the server is stopping\n");
        stop_waiting(w);
    }
    free(history);
}
