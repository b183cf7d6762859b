/*
 * auth.h - who a connection is and what it may touch: Ed25519-signed
 * tokens, the keys that sign and verify them, scopes, and the Cookie
 * header that carries the session token.
 *
 * Everything here is pure: no sockets, no database, no clock. The caller
 * passes "now", so the rules can be tested at any instant and the network
 * code decides where a token comes from (docs/auth.md fixes the formats,
 * so a backend in another language can issue tokens too).
 *
 * Instances only ever need public keys to verify; the secret stays with
 * whoever issues tokens. Several public keys, each named by a key id, let
 * a new key roll out before the old one is withdrawn.
 */
#ifndef SPARK_AUTH_H
#define SPARK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The cookie that carries a session token (its value is the token). */
#define SPARK_AUTH_COOKIE "spark_session"

/* Limits; docs/auth.md repeats them for issuers in other languages. */
#define SPARK_AUTH_KID_MAX      32                 /* key id: 1-32 of A-Z a-z 0-9 _ - */
#define SPARK_AUTH_MAX_KEYS     16                 /* public keys in SPARK_VERIFY_KEYS */
#define SPARK_AUTH_KEYS_TEXT    4096               /* bytes of SPARK_VERIFY_KEYS */
#define SPARK_TOKEN_MAX         4096               /* bytes of a token */
#define SPARK_TOKEN_SUB_MAX     128                /* bytes of sub */
#define SPARK_TOKEN_NAME_MAX    128                /* bytes of name */
#define SPARK_TOKEN_SCOPE_MAX   128                /* bytes of one scope */
#define SPARK_TOKEN_MAX_SCOPES  64                 /* scopes in one token */
#define SPARK_TOKEN_CLOCK_SKEW  60                 /* seconds iat/nbf may lie in the future */
#define SPARK_TOKEN_MAX_TTL     (366 * 86400)      /* longest lifetime mint issues */
#define SPARK_TOKEN_MAX_SECONDS 9007199254740991LL /* 2^53-1: exact in JS */

/* "KID:BASE64URL" with a 32-byte key is at most this long, NUL included. */
#define SPARK_AUTH_KEY_TEXT_SIZE (SPARK_AUTH_KID_MAX + 1 + 43 + 1)

/* ---- keys ---------------------------------------------------------------- */

typedef struct spark_auth_keyring spark_auth_keyring;
typedef struct spark_auth_signing_key spark_auth_signing_key;

/* Parses SPARK_VERIFY_KEYS: one or more "KID:BASE64URL(public key)"
 * entries separated by commas and/or whitespace. Returns 0 and a keyring
 * the caller frees, or -1 with one line (no newline) in `err`. */
int spark_auth_keyring_parse(const char *text, spark_auth_keyring **out, char *err, size_t errlen);
void spark_auth_keyring_free(spark_auth_keyring *ring);
size_t spark_auth_keyring_count(const spark_auth_keyring *ring);

/* Parses SPARK_SIGNING_KEY: "KID:BASE64URL(32-byte Ed25519 seed)".
 * Returns 0 and a key the caller frees (which wipes it), or -1 with one
 * line in `err` that never quotes the secret. */
int spark_auth_signing_key_parse(const char *text, spark_auth_signing_key **out, char *err,
                                 size_t errlen);
void spark_auth_signing_key_free(spark_auth_signing_key *key);
const char *spark_auth_signing_key_kid(const spark_auth_signing_key *key);

/* Writes the "KID:BASE64URL(public key)" entry that verifies `key`.
 * Returns 0, or -1 if `outlen` is too small (SPARK_AUTH_KEY_TEXT_SIZE is
 * always enough). */
int spark_auth_signing_key_public(const spark_auth_signing_key *key, char *out, size_t outlen);

/* Whether `ring` verifies what `key` signs: 1 it does, 0 the ring has no
 * key of that id, -1 the ring has that id with a different public key. */
int spark_auth_keyring_matches(const spark_auth_keyring *ring, const spark_auth_signing_key *key);

/* Makes a fresh key: a random 8-hex-digit key id and a random seed.
 * Writes the SPARK_SIGNING_KEY and SPARK_VERIFY_KEYS values (without the
 * "NAME=" part). Needs sodium_init(). Returns 0, or -1 if a buffer is
 * smaller than SPARK_AUTH_KEY_TEXT_SIZE. */
int spark_auth_keygen(char *signing, size_t signing_len, char *verify, size_t verify_len);

/* ---- tokens -------------------------------------------------------------- */

typedef enum {
    SPARK_TOKEN_OK = 0,
    SPARK_TOKEN_MISSING,       /* NULL or empty */
    SPARK_TOKEN_MALFORMED,     /* not a token, or its claims are wrong */
    SPARK_TOKEN_BAD_SIGNATURE, /* forged or tampered with */
    SPARK_TOKEN_EXPIRED,       /* now >= exp */
    SPARK_TOKEN_NOT_YET_VALID, /* iat or nbf beyond now + clock skew */
    SPARK_TOKEN_UNKNOWN_KEY,   /* no verify key of its key id */
} spark_token_status;

/* A verified token's claims. The strings and the scope array are owned by
 * the struct: release them with spark_token_claims_free(). */
typedef struct spark_token_claims {
    char kid[SPARK_AUTH_KID_MAX + 1];
    char *sub;     /* user id */
    char *name;    /* display name, UTF-8 */
    int64_t iat;   /* issued at, seconds since the epoch */
    int64_t exp;   /* expires at */
    int64_t nbf;   /* not before; 0 when the token has none */
    char **scopes; /* e.g. "room:lobby", "component:todo:*" */
    size_t nscopes;
} spark_token_claims;

/* Checks `token` against `ring` at `now` (seconds since the epoch). On
 * SPARK_TOKEN_OK fills `out` (which the caller then frees); on any other
 * status leaves `out` zeroed, so freeing it anyway is harmless. `ring` may
 * be NULL (no keys: every token has an unknown key). */
spark_token_status spark_token_verify(const spark_auth_keyring *ring, const char *token,
                                      int64_t now, spark_token_claims *out);

/* A short reason for `status`, at most 123 bytes: fit for a WebSocket
 * close frame. Static storage. */
const char *spark_token_status_reason(spark_token_status status);

/* Releases the claims' strings and zeroes the struct. Takes NULL. */
void spark_token_claims_free(spark_token_claims *claims);

/* Issues a token for `sub` valid from `now` for `ttl_seconds`
 * (1..SPARK_TOKEN_MAX_TTL). On success returns 0 and a NUL-terminated
 * token in *out_token that the caller free()s. On bad input returns -1
 * with one line in `err` that starts with the culprit's name: "sub: ",
 * "name: ", "ttl: " or "scope: ". */
int spark_token_mint(const spark_auth_signing_key *key, const char *sub, const char *name,
                     int64_t ttl_seconds, const char *const *scopes, size_t nscopes, int64_t now,
                     char **out_token, char *err, size_t errlen);

/* Whether a scope is well formed: 1-128 printable ASCII characters, no
 * space, and '*' only as a whole last segment (":*"). */
bool spark_token_scope_valid(const char *scope);

/* Whether the claims grant `scope` ("room:lobby"): a granted scope equal
 * to it, or a granted "PREFIX:*" whose PREFIX: starts it. "room:*" grants
 * every room, "component:todo:*" every todo component. NULL claims grant
 * nothing. */
bool spark_token_allows(const spark_token_claims *claims, const char *scope);

/* The same for the scope "KIND:ID", e.g. ("room", "lobby"). */
bool spark_token_allows_in(const spark_token_claims *claims, const char *kind, const char *id);

/* ---- cookies ------------------------------------------------------------- */

enum {
    SPARK_COOKIE_ABSENT = -1,   /* no cookie of that name */
    SPARK_COOKIE_TOO_LONG = -2, /* the value does not fit in `out` */
    SPARK_COOKIE_INVALID = -3,  /* an unbalanced quote or a control char */
};

/* Finds the cookie `name` in a Cookie header value (or several joined by
 * ", " or ","), matching the name exactly. The first cookie of that name
 * wins. Copies its value, unquoted, into `out` and returns its length
 * (0 for an empty value), or returns a negative SPARK_COOKIE_* with `out`
 * set to "". */
int spark_cookie_get(const char *header, const char *name, char *out, size_t outlen);

#endif
