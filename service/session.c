/*
 * session.c - finding a request's token, verifying it, and the Origin rule
 * for tokens that arrive in a cookie.
 *
 * Nothing about a token is logged but its subject and key id: a token in a
 * log is a credential in a log.
 */
#include "session.h"

#include "log.h"
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGIN_TTL_SECONDS (12 * 3600)
#define MAX_HEADER_BYTES  8192

struct spark_sessions {
    spark_auth_keyring *ring;
    spark_auth_signing_key *signing;
    bool demo_login;
    char *allowed_origins;  /* NULL: same origin only */
    spark_proxies *proxies; /* NULL: no one's forwarding headers count */
};

spark_sessions *spark_sessions_new(const spark_config *cfg) {
    spark_sessions *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    char err[256];
    /* config already refused malformed keys and proxies; a failure here is
     * memory. */
    if ((cfg->auth && cfg->verify_keys &&
         spark_auth_keyring_parse(cfg->verify_keys, &s->ring, err, sizeof err) != 0) ||
        (cfg->signing_key &&
         spark_auth_signing_key_parse(cfg->signing_key, &s->signing, err, sizeof err) != 0) ||
        (cfg->allowed_origins && !(s->allowed_origins = strdup(cfg->allowed_origins))) ||
        spark_proxies_parse(cfg->trusted_proxies, &s->proxies, err, sizeof err) != 0) {
        spark_sessions_free(s);
        return NULL;
    }
    s->demo_login = cfg->demo_login;
    return s;
}

void spark_sessions_free(spark_sessions *s) {
    if (!s) return;
    spark_auth_keyring_free(s->ring);
    spark_auth_signing_key_free(s->signing);
    free(s->allowed_origins);
    spark_proxies_free(s->proxies);
    free(s);
}

bool spark_sessions_enabled(const spark_sessions *s) { return s && s->ring; }

bool spark_sessions_login_enabled(const spark_sessions *s) {
    return s && s->demo_login && s->signing && s->ring;
}

static int64_t now_seconds(void) { return (int64_t)time(NULL); }

spark_token_status spark_sessions_verify(const spark_sessions *s, const char *token,
                                         spark_identity *out) {
    memset(out, 0, sizeof *out);
    if (!spark_sessions_enabled(s)) return SPARK_TOKEN_OK;
    spark_token_status st = spark_token_verify(s->ring, token, now_seconds(), &out->claims);
    out->authenticated = st == SPARK_TOKEN_OK;
    return st;
}

/* Copies a header into buf; "" when absent or too long. */
static const char *header(struct lws *wsi, enum lws_token_indexes token, char *buf, size_t len) {
    int n = lws_hdr_total_length(wsi, token);
    buf[0] = '\0';
    if (n > 0 && (size_t)n < len) lws_hdr_copy(wsi, buf, (int)len, token);
    return buf;
}

/* The token and where it came from: header, then query, then cookie. */
static spark_token_via find_token(struct lws *wsi, char *buf, size_t len) {
    static const char bearer[] = "Bearer ";
    header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, buf, len);
    if (strncasecmp(buf, bearer, sizeof bearer - 1) == 0) {
        memmove(buf, buf + sizeof bearer - 1, strlen(buf) - (sizeof bearer - 1) + 1);
        return SPARK_VIA_HEADER;
    }
    const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, (int)len);
    if (v) {
        memmove(buf, v, strlen(v) + 1);
        return SPARK_VIA_QUERY;
    }
    char cookies[MAX_HEADER_BYTES];
    header(wsi, WSI_TOKEN_HTTP_COOKIE, cookies, sizeof cookies);
    if (cookies[0] && spark_cookie_get(cookies, SPARK_AUTH_COOKIE, buf, len) > 0)
        return SPARK_VIA_COOKIE;
    buf[0] = '\0';
    return SPARK_VIA_NONE;
}

spark_token_status spark_sessions_identify(const spark_sessions *s, struct lws *wsi,
                                           spark_identity *out) {
    memset(out, 0, sizeof *out);
    if (!spark_sessions_enabled(s)) return SPARK_TOKEN_OK;
    char token[SPARK_TOKEN_MAX + 1];
    spark_token_via via = find_token(wsi, token, sizeof token);
    spark_token_status st = spark_sessions_verify(s, token, out);
    out->via = via;
    if (st != SPARK_TOKEN_OK && st != SPARK_TOKEN_MISSING)
        spark_log(SPARK_LOG_INFO, "auth.rejected", spark_token_status_reason(st), "via=%d", via);
    return st;
}

/* Whether `origin` is one of the comma- or space-separated `list`. */
static bool listed(const char *list, const char *origin) {
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == n && len && strncasecmp(p, origin, n) == 0) return true;
        p += len;
    }
    return false;
}

bool spark_sessions_origin_allowed(const spark_sessions *s, struct lws *wsi) {
    char origin[512], same[SPARK_ORIGIN_HOST_MAX + 16];
    header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin);
    if (!origin[0]) return false;
    if (s->allowed_origins) return listed(s->allowed_origins, origin);
    /* Same origin: the scheme and host the browser used, which behind a
     * trusted proxy are the proxy's, not this connection's. */
    spark_origin o;
    spark_origin_of(s->proxies, wsi, &o);
    if (!o.host[0]) return false;
    /* A browser leaves the default port out of Origin; a proxy may not. */
    size_t n = strlen(o.host);
    const char *port = o.https ? ":443" : ":80";
    size_t plen = strlen(port);
    if (n > plen && strcmp(o.host + n - plen, port) == 0) o.host[n - plen] = '\0';
    snprintf(same, sizeof same, "%s://%s", o.https ? "https" : "http", o.host);
    return strcasecmp(origin, same) == 0;
}

bool spark_sessions_https(const spark_sessions *s, struct lws *wsi) {
    spark_origin o;
    spark_origin_of(s ? s->proxies : NULL, wsi, &o);
    return o.https;
}

int spark_sessions_issue(const spark_sessions *s, const char *sub, const char *name,
                         const char *const *scopes, size_t nscopes, char **token,
                         int *ttl_seconds) {
    char err[256];
    if (!spark_sessions_login_enabled(s)) return -1;
    if (spark_token_mint(s->signing, sub, name, LOGIN_TTL_SECONDS, scopes, nscopes, now_seconds(),
                         token, err, sizeof err) != 0) {
        spark_log(SPARK_LOG_INFO, "auth.login_refused", err, NULL);
        return -1;
    }
    char q[600];
    spark_log(SPARK_LOG_INFO, "auth.login", NULL, "sub=%s kid=%s",
              spark_log_value(q, sizeof q, sub), spark_auth_signing_key_kid(s->signing));
    *ttl_seconds = LOGIN_TTL_SECONDS;
    return 0;
}

bool spark_identity_can(const spark_sessions *s, const spark_identity *id, const char *scope) {
    if (!spark_sessions_enabled(s)) return true;
    return id->authenticated && spark_token_allows(&id->claims, scope);
}

void spark_identity_clear(spark_identity *id) {
    if (!id) return;
    spark_token_claims_free(&id->claims);
    id->authenticated = false;
    id->via = SPARK_VIA_NONE;
}
