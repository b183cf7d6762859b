/*
 * auth.c - tokens, keys, scopes and the Cookie header (see auth.h and
 * docs/auth.md for the formats).
 *
 * A token is "KID.PAYLOAD.SIGNATURE": PAYLOAD is the unpadded URL-safe
 * base64 of a JSON object of claims, SIGNATURE the same encoding of an
 * Ed25519 signature over the ASCII text "KID.PAYLOAD". The key id stays
 * outside the payload and inside the signed text, so a verifier picks the
 * key and checks the signature before it parses a byte of JSON, and no one
 * can move a signature to another key id.
 *
 * Every check that could leak timing about a secret is libsodium's. Every
 * input has a size limit, and every rejection is a status, never a crash:
 * tokens come straight from the network.
 */
#include "auth.h"

#include <json-c/json.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUBLIC_KEY_BYTES crypto_sign_PUBLICKEYBYTES /* 32 */
#define SEED_BYTES       crypto_sign_SEEDBYTES      /* 32 */
#define SIG_BYTES        crypto_sign_BYTES          /* 64 */
#define B64_VARIANT      sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* Base64 text of a key is 43 characters; allow some slack so that a key of
 * the wrong length is reported as such rather than as bad base64. */
#define KEY_B64_MAX 128

struct spark_auth_keyring {
    size_t count;
    struct {
        char kid[SPARK_AUTH_KID_MAX + 1];
        unsigned char pk[PUBLIC_KEY_BYTES];
    } keys[SPARK_AUTH_MAX_KEYS];
};

struct spark_auth_signing_key {
    char kid[SPARK_AUTH_KID_MAX + 1];
    unsigned char pk[PUBLIC_KEY_BYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES]; /* seed || pk, libsodium's form */
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_kid_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool valid_kid(const char *s, size_t len) {
    if (len == 0 || len > SPARK_AUTH_KID_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if (!is_kid_char(s[i])) return false;
    return true;
}

static bool is_separator(char c) {
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- keys ---------------------------------------------------------------- */

/* Parses one "KID:BASE64URL" entry of exactly 32 key bytes. On error,
 * writes why (without the key material) and returns -1. */
static int parse_entry(const char *s, size_t len, char kid[SPARK_AUTH_KID_MAX + 1],
                       unsigned char key[32], char *why, size_t whylen) {
    const char *colon = memchr(s, ':', len);
    if (!colon) return fail(why, whylen, "expected KID:BASE64URL");
    size_t kid_len = (size_t)(colon - s);
    if (!valid_kid(s, kid_len))
        return fail(why, whylen, "the key id must be 1-%d of A-Z a-z 0-9 _ -", SPARK_AUTH_KID_MAX);
    const char *b64 = colon + 1;
    size_t b64_len = len - kid_len - 1;
    if (b64_len == 0) return fail(why, whylen, "no key after \"%.*s:\"", (int)kid_len, s);
    if (b64_len > KEY_B64_MAX)
        return fail(why, whylen, "key %.*s is too long (expected 32 bytes)", (int)kid_len, s);
    unsigned char buf[KEY_B64_MAX];
    size_t n = 0;
    if (sodium_base642bin(buf, sizeof buf, b64, b64_len, NULL, &n, NULL, B64_VARIANT) != 0) {
        sodium_memzero(buf, sizeof buf);
        return fail(why, whylen, "key %.*s is not unpadded URL-safe base64", (int)kid_len, s);
    }
    if (n != 32) {
        sodium_memzero(buf, sizeof buf);
        return fail(why, whylen, "key %.*s is %zu bytes, expected 32", (int)kid_len, s, n);
    }
    memcpy(kid, s, kid_len);
    kid[kid_len] = '\0';
    memcpy(key, buf, 32);
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int spark_auth_keyring_parse(const char *text, spark_auth_keyring **out, char *err, size_t errlen) {
    *out = NULL;
    if (!text) return fail(err, errlen, "no keys");
    if (strlen(text) > SPARK_AUTH_KEYS_TEXT)
        return fail(err, errlen, "longer than %d bytes", SPARK_AUTH_KEYS_TEXT);
    spark_auth_keyring *ring = calloc(1, sizeof *ring);
    if (!ring) return fail(err, errlen, "out of memory");
    const char *p = text;
    for (;;) {
        while (*p && is_separator(*p))
            p++;
        if (!*p) break;
        size_t len = 0;
        while (p[len] && !is_separator(p[len]))
            len++;
        size_t entry = ring->count + 1;
        if (ring->count == SPARK_AUTH_MAX_KEYS) {
            free(ring);
            return fail(err, errlen, "more than %d keys", SPARK_AUTH_MAX_KEYS);
        }
        char why[160];
        if (parse_entry(p, len, ring->keys[ring->count].kid, ring->keys[ring->count].pk, why,
                        sizeof why)) {
            free(ring);
            return fail(err, errlen, "entry %zu: %s", entry, why);
        }
        for (size_t i = 0; i < ring->count; i++)
            if (strcmp(ring->keys[i].kid, ring->keys[ring->count].kid) == 0) {
                fail(err, errlen, "entry %zu: key id %s appears twice", entry, ring->keys[i].kid);
                free(ring);
                return -1;
            }
        ring->count++;
        p += len;
    }
    if (ring->count == 0) {
        free(ring);
        return fail(err, errlen, "no keys (expected KID:BASE64URL, ...)");
    }
    *out = ring;
    return 0;
}

void spark_auth_keyring_free(spark_auth_keyring *ring) { free(ring); }

size_t spark_auth_keyring_count(const spark_auth_keyring *ring) { return ring ? ring->count : 0; }

static const unsigned char *keyring_find(const spark_auth_keyring *ring, const char *kid,
                                         size_t kid_len) {
    if (!ring) return NULL;
    for (size_t i = 0; i < ring->count; i++)
        if (strlen(ring->keys[i].kid) == kid_len && memcmp(ring->keys[i].kid, kid, kid_len) == 0)
            return ring->keys[i].pk;
    return NULL;
}

int spark_auth_signing_key_parse(const char *text, spark_auth_signing_key **out, char *err,
                                 size_t errlen) {
    *out = NULL;
    if (!text) return fail(err, errlen, "not set");
    size_t len = strlen(text);
    /* Tolerate the stray newline or spaces an env file leaves around it. */
    while (len && is_separator(text[len - 1]) && text[len - 1] != ',')
        len--;
    while (len && is_separator(*text) && *text != ',')
        text++, len--;
    if (len == 0) return fail(err, errlen, "empty (expected KID:BASE64URL)");
    for (size_t i = 0; i < len; i++)
        if (is_separator(text[i]))
            return fail(err, errlen, "expected one KID:BASE64URL, not a list");
    spark_auth_signing_key *key = calloc(1, sizeof *key);
    if (!key) return fail(err, errlen, "out of memory");
    unsigned char seed[SEED_BYTES];
    char why[160];
    if (parse_entry(text, len, key->kid, seed, why, sizeof why)) {
        free(key);
        return fail(err, errlen, "%s", why);
    }
    crypto_sign_seed_keypair(key->pk, key->sk, seed);
    sodium_memzero(seed, sizeof seed);
    *out = key;
    return 0;
}

void spark_auth_signing_key_free(spark_auth_signing_key *key) {
    if (!key) return;
    sodium_memzero(key, sizeof *key);
    free(key);
}

const char *spark_auth_signing_key_kid(const spark_auth_signing_key *key) { return key->kid; }

static int format_entry(const char *kid, const unsigned char key[32], char *out, size_t outlen) {
    char b64[sodium_base64_ENCODED_LEN(32, B64_VARIANT)];
    sodium_bin2base64(b64, sizeof b64, key, 32, B64_VARIANT);
    int n = snprintf(out, outlen, "%s:%s", kid, b64);
    sodium_memzero(b64, sizeof b64);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen) sodium_memzero(out, outlen);
        return -1;
    }
    return 0;
}

int spark_auth_signing_key_public(const spark_auth_signing_key *key, char *out, size_t outlen) {
    return format_entry(key->kid, key->pk, out, outlen);
}

int spark_auth_keyring_matches(const spark_auth_keyring *ring, const spark_auth_signing_key *key) {
    const unsigned char *pk = keyring_find(ring, key->kid, strlen(key->kid));
    if (!pk) return 0;
    return sodium_memcmp(pk, key->pk, PUBLIC_KEY_BYTES) == 0 ? 1 : -1;
}

int spark_auth_keygen(char *signing, size_t signing_len, char *verify, size_t verify_len) {
    unsigned char id[4], seed[SEED_BYTES], pk[PUBLIC_KEY_BYTES], sk[crypto_sign_SECRETKEYBYTES];
    char kid[2 * sizeof id + 1];
    randombytes_buf(id, sizeof id);
    sodium_bin2hex(kid, sizeof kid, id, sizeof id);
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    int rc =
        format_entry(kid, seed, signing, signing_len) || format_entry(kid, pk, verify, verify_len)
            ? -1
            : 0;
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

/* ---- text rules shared by mint and verify -------------------------------- */

/* Valid UTF-8 without control characters (C0, DEL, C1): sub and name end
 * up in HTML, logs and JSON frames, where such bytes only cause harm. */
static bool valid_text(const char *s, size_t len, size_t max) {
    if (len == 0 || len > max) return false;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return false;
            p++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0)
            n = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            n = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            n = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if ((size_t)(end - p) < n) return false;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        if (cp >= 0x80 && cp <= 0x9f) return false;
        p += n;
    }
    return true;
}

bool spark_token_scope_valid(const char *scope) {
    if (!scope) return false;
    size_t len = strlen(scope);
    if (len == 0 || len > SPARK_TOKEN_SCOPE_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)scope[i];
        if (c <= 0x20 || c >= 0x7f) return false;
        /* A wildcard anywhere but a whole last segment would read as a
         * pattern yet only ever match itself. */
        if (c == '*' && (i + 1 != len || i == 0 || scope[i - 1] != ':')) return false;
    }
    return true;
}

/* ---- verify -------------------------------------------------------------- */

const char *spark_token_status_reason(spark_token_status status) {
    switch (status) {
    case SPARK_TOKEN_OK:
        return "ok";
    case SPARK_TOKEN_MISSING:
        return "missing token";
    case SPARK_TOKEN_MALFORMED:
        return "malformed token";
    case SPARK_TOKEN_BAD_SIGNATURE:
        return "bad token signature";
    case SPARK_TOKEN_EXPIRED:
        return "token expired";
    case SPARK_TOKEN_NOT_YET_VALID:
        return "token not yet valid";
    case SPARK_TOKEN_UNKNOWN_KEY:
        return "token signed by an unknown key";
    }
    return "invalid token";
}

void spark_token_claims_free(spark_token_claims *claims) {
    if (!claims) return;
    free(claims->sub);
    free(claims->name);
    for (size_t i = 0; i < claims->nscopes; i++)
        free(claims->scopes[i]);
    free(claims->scopes);
    memset(claims, 0, sizeof *claims);
}

static bool b64_char(char c) { return is_kid_char(c); }

static bool all_b64(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (!b64_char(s[i])) return false;
    return true;
}

/* A string member within limits, copied; NULL if absent, wrong or bad. */
static char *get_text(json_object *obj, const char *member, size_t max) {
    json_object *v;
    if (!json_object_object_get_ex(obj, member, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (strlen(s) != len || !valid_text(s, len, max)) return NULL; /* no NUL inside */
    return strdup(s);
}

/* An integral number of seconds in 0..2^53-1. */
static bool get_seconds(json_object *obj, const char *member, bool required, int64_t *out) {
    json_object *v;
    *out = 0;
    if (!json_object_object_get_ex(obj, member, &v)) return !required;
    if (!json_object_is_type(v, json_type_int)) return false;
    /* Beyond int64, json-c saturates to INT64_MAX: still out of range. */
    int64_t n = json_object_get_int64(v);
    if (n < 0 || n > SPARK_TOKEN_MAX_SECONDS) return false;
    *out = n;
    return true;
}

static bool get_scopes(json_object *obj, spark_token_claims *c) {
    json_object *v;
    if (!json_object_object_get_ex(obj, "scopes", &v)) return true; /* none */
    if (!json_object_is_type(v, json_type_array)) return false;
    size_t n = json_object_array_length(v);
    if (n > SPARK_TOKEN_MAX_SCOPES) return false;
    if (n == 0) return true;
    c->scopes = calloc(n, sizeof *c->scopes);
    if (!c->scopes) return false;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(v, i);
        if (!json_object_is_type(s, json_type_string)) return false;
        const char *text = json_object_get_string(s);
        if ((size_t)json_object_get_string_len(s) != strlen(text) || !spark_token_scope_valid(text))
            return false;
        c->scopes[i] = strdup(text);
        if (!c->scopes[i]) return false;
        c->nscopes = i + 1;
    }
    return true;
}

static bool parse_claims(const unsigned char *json, size_t len, spark_token_claims *c) {
    json_tokener *tok = json_tokener_new_ex(8);
    if (!tok) return false;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, (const char *)json, (int)len);
    bool ok = obj && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == len && json_object_is_type(obj, json_type_object);
    json_tokener_free(tok);
    ok = ok && (c->sub = get_text(obj, "sub", SPARK_TOKEN_SUB_MAX)) != NULL &&
         (c->name = get_text(obj, "name", SPARK_TOKEN_NAME_MAX)) != NULL &&
         get_seconds(obj, "iat", true, &c->iat) && get_seconds(obj, "exp", true, &c->exp) &&
         get_seconds(obj, "nbf", false, &c->nbf) && c->exp > c->iat && get_scopes(obj, c);
    json_object_put(obj);
    return ok;
}

spark_token_status spark_token_verify(const spark_auth_keyring *ring, const char *token,
                                      int64_t now, spark_token_claims *out) {
    memset(out, 0, sizeof *out);
    if (!token || !*token) return SPARK_TOKEN_MISSING;
    size_t len = strnlen(token, SPARK_TOKEN_MAX + 1);
    if (len > SPARK_TOKEN_MAX) return SPARK_TOKEN_MALFORMED;

    /* Syntax first, so that what is not a token never reaches a key. */
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2) return SPARK_TOKEN_MALFORMED;
    const char *payload = dot1 + 1, *sig = dot2 + 1;
    size_t kid_len = (size_t)(dot1 - token), payload_len = (size_t)(dot2 - payload),
           sig_len = len - (size_t)(sig - token);
    if (!valid_kid(token, kid_len) || payload_len == 0 || !all_b64(payload, payload_len) ||
        !all_b64(sig, sig_len))
        return SPARK_TOKEN_MALFORMED;
    unsigned char json[SPARK_TOKEN_MAX], signature[SIG_BYTES];
    size_t json_len = 0, signature_len = 0;
    if (sodium_base642bin(json, sizeof json, payload, payload_len, NULL, &json_len, NULL,
                          B64_VARIANT) != 0 ||
        sodium_base642bin(signature, sizeof signature, sig, sig_len, NULL, &signature_len, NULL,
                          B64_VARIANT) != 0 ||
        signature_len != SIG_BYTES)
        return SPARK_TOKEN_MALFORMED;

    const unsigned char *pk = keyring_find(ring, token, kid_len);
    if (!pk) return SPARK_TOKEN_UNKNOWN_KEY;
    if (crypto_sign_verify_detached(signature, (const unsigned char *)token,
                                    kid_len + 1 + payload_len, pk) != 0)
        return SPARK_TOKEN_BAD_SIGNATURE;

    /* Signed by a trusted key: the claims may still be wrong, as a bug in
     * an issuer in another language would make them. */
    spark_token_claims c = {0};
    if (!parse_claims(json, json_len, &c)) {
        spark_token_claims_free(&c);
        return SPARK_TOKEN_MALFORMED;
    }
    if (now >= c.exp) {
        spark_token_claims_free(&c);
        return SPARK_TOKEN_EXPIRED;
    }
    /* Written so that no sum can overflow whatever `now` is. */
    if (c.iat - SPARK_TOKEN_CLOCK_SKEW > now || c.nbf - SPARK_TOKEN_CLOCK_SKEW > now) {
        spark_token_claims_free(&c);
        return SPARK_TOKEN_NOT_YET_VALID;
    }
    memcpy(c.kid, token, kid_len);
    c.kid[kid_len] = '\0';
    *out = c;
    return SPARK_TOKEN_OK;
}

/* ---- mint ---------------------------------------------------------------- */

/* Builds the exact payload bytes docs/auth.md specifies: compact JSON,
 * members in the order sub, name, iat, exp, scopes, '/' unescaped, so
 * that JSON.stringify and json.dumps reproduce it byte for byte. */
static char *claims_json(const char *sub, const char *name, int64_t iat, int64_t exp,
                         const char *const *scopes, size_t nscopes) {
    json_object *obj = json_object_new_object(), *arr = json_object_new_array();
    char *out = NULL;
    if (!obj || !arr) goto done;
    json_object_object_add(obj, "sub", json_object_new_string(sub));
    json_object_object_add(obj, "name", json_object_new_string(name));
    json_object_object_add(obj, "iat", json_object_new_int64(iat));
    json_object_object_add(obj, "exp", json_object_new_int64(exp));
    for (size_t i = 0; i < nscopes; i++)
        json_object_array_add(arr, json_object_new_string(scopes[i]));
    json_object_object_add(obj, "scopes", arr);
    arr = NULL; /* owned by obj now */
    const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text) out = strdup(text);
done:
    json_object_put(arr);
    json_object_put(obj);
    return out;
}

int spark_token_mint(const spark_auth_signing_key *key, const char *sub, const char *name,
                     int64_t ttl_seconds, const char *const *scopes, size_t nscopes, int64_t now,
                     char **out_token, char *err, size_t errlen) {
    *out_token = NULL;
    if (!key) return fail(err, errlen, "key: no signing key");
    if (!sub || !valid_text(sub, strlen(sub), SPARK_TOKEN_SUB_MAX))
        return fail(err, errlen, "sub: must be 1-%d bytes of UTF-8 without control characters",
                    SPARK_TOKEN_SUB_MAX);
    if (!name || !valid_text(name, strlen(name), SPARK_TOKEN_NAME_MAX))
        return fail(err, errlen, "name: must be 1-%d bytes of UTF-8 without control characters",
                    SPARK_TOKEN_NAME_MAX);
    if (ttl_seconds < 1 || ttl_seconds > SPARK_TOKEN_MAX_TTL)
        return fail(err, errlen, "ttl: must be 1-%d seconds", SPARK_TOKEN_MAX_TTL);
    if (now < 0 || now > SPARK_TOKEN_MAX_SECONDS - ttl_seconds)
        return fail(err, errlen, "now: out of range");
    if (nscopes > SPARK_TOKEN_MAX_SCOPES)
        return fail(err, errlen, "scope: more than %d scopes", SPARK_TOKEN_MAX_SCOPES);
    for (size_t i = 0; i < nscopes; i++)
        if (!spark_token_scope_valid(scopes[i]))
            return fail(err, errlen,
                        "scope: \"%.*s\" is not 1-%d printable characters with '*' only as "
                        "a last segment",
                        scopes[i] ? 64 : 0, scopes[i] ? scopes[i] : "", SPARK_TOKEN_SCOPE_MAX);

    char *json = claims_json(sub, name, now, now + ttl_seconds, scopes, nscopes);
    if (!json) return fail(err, errlen, "out of memory");
    size_t json_len = strlen(json), kid_len = strlen(key->kid);
    size_t payload_size = sodium_base64_ENCODED_LEN(json_len, B64_VARIANT);
    size_t sig_size = sodium_base64_ENCODED_LEN(SIG_BYTES, B64_VARIANT);
    /* kid '.' payload '.' signature, each ENCODED_LEN counting one NUL */
    size_t total = kid_len + 1 + (payload_size - 1) + 1 + (sig_size - 1);
    if (total > SPARK_TOKEN_MAX) {
        free(json);
        return fail(err, errlen, "scope: the token would exceed %d bytes", SPARK_TOKEN_MAX);
    }
    char *token = malloc(total + 1);
    if (!token) {
        free(json);
        return fail(err, errlen, "out of memory");
    }
    memcpy(token, key->kid, kid_len);
    token[kid_len] = '.';
    sodium_bin2base64(token + kid_len + 1, payload_size, (const unsigned char *)json, json_len,
                      B64_VARIANT);
    free(json);
    size_t signed_len = strlen(token);
    unsigned char signature[SIG_BYTES];
    crypto_sign_detached(signature, NULL, (const unsigned char *)token, signed_len, key->sk);
    token[signed_len] = '.';
    sodium_bin2base64(token + signed_len + 1, sig_size, signature, sizeof signature, B64_VARIANT);
    *out_token = token;
    return 0;
}

/* ---- scopes -------------------------------------------------------------- */

static bool grant_covers(const char *grant, const char *want) {
    if (strcmp(grant, want) == 0) return true;
    size_t glen = strlen(grant);
    if (glen < 2 || grant[glen - 1] != '*' || grant[glen - 2] != ':') return false;
    size_t prefix = glen - 1; /* keeps the ':' so "room:*" never grants "roomx:y" */
    return strncmp(grant, want, prefix) == 0 && want[prefix] != '\0';
}

bool spark_token_allows(const spark_token_claims *claims, const char *scope) {
    if (!claims || !scope || !*scope) return false;
    for (size_t i = 0; i < claims->nscopes; i++)
        if (grant_covers(claims->scopes[i], scope)) return true;
    return false;
}

bool spark_token_allows_in(const spark_token_claims *claims, const char *kind, const char *id) {
    if (!claims || !kind || !*kind || !id || !*id) return false;
    size_t klen = strlen(kind), ilen = strlen(id);
    char *scope = malloc(klen + 1 + ilen + 1);
    if (!scope) return false; /* fail closed */
    memcpy(scope, kind, klen);
    scope[klen] = ':';
    memcpy(scope + klen + 1, id, ilen + 1);
    bool ok = spark_token_allows(claims, scope);
    free(scope);
    return ok;
}

/* ---- cookies ------------------------------------------------------------- */

static bool is_space(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **b, const char **e) {
    while (*b < *e && is_space(**b))
        (*b)++;
    while (*e > *b && is_space((*e)[-1]))
        (*e)--;
}

static int copy_value(const char *b, const char *e, char *out, size_t outlen) {
    if (b < e && *b == '"') {
        if (e - b < 2 || e[-1] != '"') return SPARK_COOKIE_INVALID;
        b++, e--;
    }
    for (const char *p = b; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == '"') return SPARK_COOKIE_INVALID;
    }
    size_t len = (size_t)(e - b);
    if (len >= outlen || len > INT_MAX) return SPARK_COOKIE_TOO_LONG;
    memcpy(out, b, len);
    out[len] = '\0';
    return (int)len;
}

int spark_cookie_get(const char *header, const char *name, char *out, size_t outlen) {
    if (!out || outlen == 0) return SPARK_COOKIE_TOO_LONG;
    out[0] = '\0';
    if (!header || !name || !*name) return SPARK_COOKIE_ABSENT;
    size_t name_len = strlen(name);
    /* Cookie values may hold neither ';' nor ',', so both separate pairs:
     * ';' within one header, ',' where lws joined repeated headers. */
    for (const char *p = header; *p;) {
        const char *end = p + strcspn(p, ";,");
        const char *b = p, *e = end;
        trim(&b, &e);
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (eq) {
            const char *nb = b, *ne = eq;
            trim(&nb, &ne);
            if ((size_t)(ne - nb) == name_len && memcmp(nb, name, name_len) == 0) {
                const char *vb = eq + 1, *ve = e;
                trim(&vb, &ve);
                int rc = copy_value(vb, ve, out, outlen);
                if (rc < 0) out[0] = '\0';
                return rc;
            }
        }
        p = *end ? end + 1 : end;
    }
    return SPARK_COOKIE_ABSENT;
}
