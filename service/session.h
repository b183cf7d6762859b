/*
 * session.h - who is on the other end of a request or a WebSocket: the
 * token it carries, verified, and the checks that go with where it came
 * from.
 *
 * A token may come in an "Authorization: Bearer" header, a "token" query
 * argument, or the session cookie. A cookie is sent by the browser on its
 * own, to any site's page that opens a socket to us, so a cookie-borne
 * token counts on a WebSocket upgrade only when the Origin is allowed
 * (SPARK_ALLOWED_ORIGINS, or else the request's own scheme and host, as a
 * trusted proxy reports them when there is one: see proxy.h).
 *
 * With SPARK_AUTH=off tokens are off: everyone is anonymous and every scope
 * is granted (a development setting; sparkd logs it at start). Otherwise
 * config refuses to serve without SPARK_VERIFY_KEYS.
 */
#ifndef SPARK_SESSION_H
#define SPARK_SESSION_H

#include "auth.h"
#include "config.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct spark_sessions spark_sessions;

typedef enum {
    SPARK_VIA_NONE,
    SPARK_VIA_HEADER,
    SPARK_VIA_QUERY,
    SPARK_VIA_COOKIE
} spark_token_via;

/* One verified caller. `claims` is owned: release with spark_identity_clear. */
typedef struct {
    bool authenticated;
    spark_token_via via;
    spark_token_claims claims;
} spark_identity;

/* Reads the keys from cfg (already validated by config). Returns NULL on
 * allocation failure. */
spark_sessions *spark_sessions_new(const spark_config *cfg);
void spark_sessions_free(spark_sessions *sessions);

/* True when tokens are verified (SPARK_AUTH on, SPARK_VERIFY_KEYS set). */
bool spark_sessions_enabled(const spark_sessions *sessions);

/* True when sign-in is on: SPARK_DEMO_LOGIN with a signing key and tokens
 * verified. Sign-in routes are served, session cookies may be issued, and
 * a page sends a signed-out visitor to /login. */
bool spark_sessions_login_enabled(const spark_sessions *sessions);

/* Finds and verifies the request's token. With tokens off, returns
 * SPARK_TOKEN_OK and an anonymous identity. */
spark_token_status spark_sessions_identify(const spark_sessions *sessions, struct lws *wsi,
                                           spark_identity *out);

/* Verifies a token handed over in a message (a refresh). */
spark_token_status spark_sessions_verify(const spark_sessions *sessions, const char *token,
                                         spark_identity *out);

/* For cookie-authenticated upgrades and the login form: is the request's
 * Origin allowed? */
bool spark_sessions_origin_allowed(const spark_sessions *sessions, struct lws *wsi);

/* Whether the browser reached us over HTTPS: this connection's TLS, or a
 * trusted proxy's word. A cookie set then is Secure. */
bool spark_sessions_https(const spark_sessions *sessions, struct lws *wsi);

/* Issues a session token for `sub` (display name `name`) granting
 * `scopes`, signed with SPARK_SIGNING_KEY, for sign-in routes (routes.c).
 * Returns 0 with a token to free() and its lifetime, or -1 when sign-in is
 * off or a field is refused (logged). */
int spark_sessions_issue(const spark_sessions *sessions, const char *sub, const char *name,
                         const char *const *scopes, size_t nscopes, char **token, int *ttl_seconds);

bool spark_identity_can(const spark_sessions *sessions, const spark_identity *id,
                        const char *scope);
void spark_identity_clear(spark_identity *id);

#endif
