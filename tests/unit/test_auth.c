/*
 * test_auth.c - tokens, keys, scopes and cookies: every way a token can be
 * refused is tested on its own, so that a check that stops working shows up
 * as exactly one failure; and a fixed test vector pins the format that
 * issuers in other languages reproduce (docs/auth.md).
 */
#include "auth.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test vector of docs/auth.md; tests/auth/mint_vector.js prints the
 * same token with Node's own crypto. */
#define VECTOR_SIGNING "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VECTOR_VERIFY  "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
#define VECTOR_TOKEN                                                                               \
    "vector1.eyJzdWIiOiI0MiIsIm5hbWUiOiJBZGEgTG92ZWxhY2UiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAw" \
    "MzYwMCwic2NvcGVzIjpbInJvb206bG9iYnkiLCJjb21wb25lbnQ6dG9kbzoqIl19.Xhnjs5S3AV4Gk3vxPNDOS5dh58Q" \
    "gFnOcsaFnRkzQ9HcJ08G_oTOwvnzdXqzLbDMcI4aPxxrGwqNjzRjDQQjvBA"
#define VECTOR_IAT 1700000000

#define NOW 1700000000

static char err[256];

/* A signing key for `kid` from a seed of 32 copies of `fill`, and the raw
 * secret key (libsodium form) to sign hand-made payloads with. */
typedef struct {
    spark_auth_signing_key *key;
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    char verify[SPARK_AUTH_KEY_TEXT_SIZE];
} test_key;

static test_key make_key(const char *kid, unsigned char fill) {
    test_key k;
    unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
    memset(seed, fill, sizeof seed);
    crypto_sign_seed_keypair(pk, k.sk, seed);
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(b64, sizeof b64, seed, sizeof seed, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char text[128];
    snprintf(text, sizeof text, "%s:%s", kid, b64);
    ck_assert_int_eq(spark_auth_signing_key_parse(text, &k.key, err, sizeof err), 0);
    ck_assert_int_eq(spark_auth_signing_key_public(k.key, k.verify, sizeof k.verify), 0);
    return k;
}

static spark_auth_keyring *ring_of(const char *text) {
    spark_auth_keyring *ring;
    ck_assert_msg(spark_auth_keyring_parse(text, &ring, err, sizeof err) == 0, "%s: %s", text, err);
    return ring;
}

/* "KID.b64(payload).b64(sig over KID.b64(payload))", for payloads that
 * mint would never produce. The caller frees. */
static char *sign_raw(const char *kid, const unsigned char *sk, const char *payload,
                      size_t payload_len) {
    const int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    size_t cap = strlen(kid) + 1 + sodium_base64_ENCODED_LEN(payload_len, v) + 1 +
                 sodium_base64_ENCODED_LEN(crypto_sign_BYTES, v);
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    size_t n = (size_t)snprintf(t, cap, "%s.", kid);
    sodium_bin2base64(t + n, cap - n, (const unsigned char *)payload, payload_len, v);
    n = strlen(t);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)t, n, sk);
    t[n++] = '.';
    sodium_bin2base64(t + n, cap - n, sig, sizeof sig, v);
    return t;
}

/* Mints into the caller's `*token`. (Not into a local of this helper that
 * it then returns: once the helper is inlined, GCC cannot rule out that the
 * library wrote that local's own address into it, a pointer that would
 * dangle after the return, and -Wdangling-pointer fires at -O3.) */
static void mint_ok(char **token, const test_key *k, const char *const *scopes, size_t nscopes,
                    long ttl, long now) {
    ck_assert_msg(spark_token_mint(k->key, "42", "Ada", ttl, scopes, nscopes, now, token, err,
                                   sizeof err) == 0,
                  "%s", err);
}

static bool claims_zeroed(const spark_token_claims *c) {
    return !c->sub && !c->name && !c->scopes && c->nscopes == 0 && c->iat == 0 && c->exp == 0 &&
           c->kid[0] == '\0';
}

/* ---- round trip and the test vector -------------------------------------- */

START_TEST(sign_verify_round_trip) {
    test_key k = make_key("k1", 7);
    spark_auth_keyring *ring = ring_of(k.verify);
    const char *scopes[] = {"room:lobby", "user:42"};
    char *token;
    ck_assert_int_eq(spark_token_mint(k.key, "user-42", "Zoë \"Z\" / O'Brien", 600, scopes, 2, NOW,
                                      &token, err, sizeof err),
                     0);
    ck_assert_int_le(strlen(token), SPARK_TOKEN_MAX);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, token, NOW + 1, &c), SPARK_TOKEN_OK);
    ck_assert_str_eq(c.kid, "k1");
    ck_assert_str_eq(c.sub, "user-42");
    ck_assert_str_eq(c.name, "Zoë \"Z\" / O'Brien");
    ck_assert_int_eq(c.iat, NOW);
    ck_assert_int_eq(c.exp, NOW + 600);
    ck_assert_int_eq(c.nbf, 0);
    ck_assert_uint_eq(c.nscopes, 2);
    ck_assert_str_eq(c.scopes[0], "room:lobby");
    ck_assert_str_eq(c.scopes[1], "user:42");
    spark_token_claims_free(&c);
    ck_assert(claims_zeroed(&c));
    spark_token_claims_free(&c); /* twice is harmless */
    spark_token_claims_free(NULL);

    /* No scopes at all is a valid token that grants nothing. */
    free(token);
    mint_ok(&token, &k, NULL, 0, 60, NOW);
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_OK);
    ck_assert_uint_eq(c.nscopes, 0);
    ck_assert(!spark_token_allows(&c, "room:lobby"));
    spark_token_claims_free(&c);
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

START_TEST(fixed_test_vector) {
    spark_auth_signing_key *key;
    ck_assert_int_eq(spark_auth_signing_key_parse(VECTOR_SIGNING, &key, err, sizeof err), 0);
    char verify[SPARK_AUTH_KEY_TEXT_SIZE];
    ck_assert_int_eq(spark_auth_signing_key_public(key, verify, sizeof verify), 0);
    ck_assert_str_eq(verify, VECTOR_VERIFY);

    /* mint reproduces the vector byte for byte... */
    const char *scopes[] = {"room:lobby", "component:todo:*"};
    char *token;
    ck_assert_int_eq(spark_token_mint(key, "42", "Ada Lovelace", 3600, scopes, 2, VECTOR_IAT,
                                      &token, err, sizeof err),
                     0);
    ck_assert_str_eq(token, VECTOR_TOKEN);
    free(token);
    spark_auth_signing_key_free(key);

    /* ...and the vector verifies with the public key alone. */
    spark_auth_keyring *ring = ring_of(VECTOR_VERIFY);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, VECTOR_TOKEN, VECTOR_IAT + 100, &c), SPARK_TOKEN_OK);
    ck_assert_str_eq(c.kid, "vector1");
    ck_assert_str_eq(c.sub, "42");
    ck_assert_str_eq(c.name, "Ada Lovelace");
    ck_assert_int_eq(c.iat, VECTOR_IAT);
    ck_assert_int_eq(c.exp, VECTOR_IAT + 3600);
    ck_assert_uint_eq(c.nscopes, 2);
    ck_assert_str_eq(c.scopes[1], "component:todo:*");
    ck_assert(spark_token_allows_in(&c, "component", "todo:groceries"));
    ck_assert(!spark_token_allows_in(&c, "room", "other"));
    spark_token_claims_free(&c);
    ck_assert_int_eq(spark_token_verify(ring, VECTOR_TOKEN, VECTOR_IAT + 3600, &c),
                     SPARK_TOKEN_EXPIRED);
    spark_auth_keyring_free(ring);
}
END_TEST

/* ---- each rejection on its own ------------------------------------------- */

START_TEST(missing_token) {
    test_key k = make_key("k1", 1);
    spark_auth_keyring *ring = ring_of(k.verify);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, NULL, NOW, &c), SPARK_TOKEN_MISSING);
    ck_assert(claims_zeroed(&c));
    ck_assert_int_eq(spark_token_verify(ring, "", NOW, &c), SPARK_TOKEN_MISSING);
    ck_assert(claims_zeroed(&c));
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

/* Not a token at all: refused before any key is looked at. */
static const char *const not_tokens[] = {
    "garbage",
    "k1.nodot",
    "k1..c2ln",                                   /* empty payload */
    ".e30.c2ln",                                  /* empty key id */
    "k.1.e30.c2ln",                               /* key id with a dot: four segments */
    "k1.e30.c2ln.extra",                          /* four segments */
    "k$1.e30.c2ln",                               /* bad key id character */
    "k1.e3$0.c2ln",                               /* bad base64 in the payload */
    "k1.e30=.c2ln",                               /* padding */
    "k1.e30.c2ln",                                /* signature of 3 bytes */
    "k1.e30.c2l+",                                /* standard, not URL-safe, base64 */
    "k1.e30 .c2ln",                               /* space */
    "k1.e31.c2ln",                                /* non-canonical base64 ending */
    "abcdefghijklmnopqrstuvwxyz0123456.e30.c2ln", /* key id of 33 characters */
};

START_TEST(malformed_syntax) {
    test_key k = make_key("k1", 1);
    spark_auth_keyring *ring = ring_of(k.verify);
    spark_token_claims c;
    ck_assert_msg(spark_token_verify(ring, not_tokens[_i], NOW, &c) == SPARK_TOKEN_MALFORMED, "%s",
                  not_tokens[_i]);
    ck_assert(claims_zeroed(&c));
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

START_TEST(malformed_too_long) {
    test_key k = make_key("k1", 1);
    spark_auth_keyring *ring = ring_of(k.verify);
    char *big = malloc(SPARK_TOKEN_MAX + 2);
    memset(big, 'a', SPARK_TOKEN_MAX + 1);
    big[SPARK_TOKEN_MAX + 1] = '\0';
    memcpy(big, "k1.", 3);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, big, NOW, &c), SPARK_TOKEN_MALFORMED);

    /* A signed token over the limit too, however valid otherwise. */
    char name[SPARK_TOKEN_NAME_MAX + 1];
    memset(name, 'n', SPARK_TOKEN_NAME_MAX);
    name[SPARK_TOKEN_NAME_MAX] = '\0';
    char json[8192];
    int n = snprintf(json, sizeof json,
                     "{\"sub\":\"1\",\"name\":\"%s\",\"iat\":%d,\"exp\":%d,\"pad\":\"", name, NOW,
                     NOW + 60);
    memset(json + n, 'x', 3100);
    strcpy(json + n + 3100, "\"}");
    char *signed_big = sign_raw("k1", k.sk, json, strlen(json));
    ck_assert_int_gt(strlen(signed_big), SPARK_TOKEN_MAX);
    ck_assert_int_eq(spark_token_verify(ring, signed_big, NOW, &c), SPARK_TOKEN_MALFORMED);
    free(signed_big);
    free(big);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

/* Correctly signed by a trusted key, but the claims are wrong: what a
 * buggy issuer would send. Each must be refused as malformed. */
static const struct {
    // cppcheck-suppress unusedStructMember ; read as bad_claims[_i].why
    const char *why, *json;
} bad_claims[] = {
    {"not JSON", "hello"},
    {"truncated JSON", "{\"sub\":\"1\""},
    {"an array", "[1,2,3]"},
    {"a string", "\"sub\""},
    {"empty object", "{}"},
    {"trailing bytes", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600}x"},
    {"two objects",
     "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600}{\"a\":1}"},
    {"single quotes", "{'sub':'1','name':'A','iat':1700000000,'exp':1700000600}"},
    {"no sub", "{\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"no name", "{\"sub\":\"1\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"no iat", "{\"sub\":\"1\",\"name\":\"A\",\"exp\":1700000600}"},
    {"no exp", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000}"},
    {"sub a number", "{\"sub\":1,\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"sub null", "{\"sub\":null,\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"name an object", "{\"sub\":\"1\",\"name\":{},\"iat\":1700000000,\"exp\":1700000600}"},
    {"iat a string", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":\"1700000000\",\"exp\":1700000600}"},
    {"iat a fraction", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000.5,\"exp\":1700000600}"},
    {"exp in exponent form", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1.7e9}"},
    {"exp a boolean", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":true}"},
    {"negative iat", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":-1,\"exp\":1700000600}"},
    {"huge exp", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1,\"exp\":99999999999999999999}"},
    {"exp before iat", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000600,\"exp\":1700000000}"},
    {"exp equal to iat", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000000}"},
    {"nbf a string",
     "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600,\"nbf\":\"0\"}"},
    {"empty sub", "{\"sub\":\"\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"empty name", "{\"sub\":\"1\",\"name\":\"\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"control char in sub",
     "{\"sub\":\"1\\u0007\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"newline in name", "{\"sub\":\"1\",\"name\":\"A\\nB\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"NUL in sub", "{\"sub\":\"1\\u0000x\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"C1 control in name",
     "{\"sub\":\"1\",\"name\":\"A\\u0085\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"DEL in name", "{\"sub\":\"1\",\"name\":\"A\x7f\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"invalid UTF-8 in name",
     "{\"sub\":\"1\",\"name\":\"A\xff\",\"iat\":1700000000,\"exp\":1700000600}"},
    {"scopes a string",
     "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600,\"scopes\":\"room:*\"}"},
    {"scope a number",
     "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600,\"scopes\":[1]}"},
    {"scope with a space",
     "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600,\"scopes\":[\"a b\"]}"},
    {"scope empty",
     "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600,\"scopes\":[\"\"]}"},
    {"wildcard inside a scope", "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":"
                                "1700000600,\"scopes\":[\"room:l*\"]}"},
    {"lone wildcard scope",
     "{\"sub\":\"1\",\"name\":\"A\",\"iat\":1700000000,\"exp\":1700000600,\"scopes\":[\"*\"]}"},
};

START_TEST(malformed_claims) {
    test_key k = make_key("k1", 3);
    spark_auth_keyring *ring = ring_of(k.verify);
    char *token = sign_raw("k1", k.sk, bad_claims[_i].json, strlen(bad_claims[_i].json));
    spark_token_claims c;
    spark_token_status st = spark_token_verify(ring, token, NOW, &c);
    ck_assert_msg(st == SPARK_TOKEN_MALFORMED, "%s: status %d", bad_claims[_i].why, (int)st);
    ck_assert(claims_zeroed(&c));
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

/* The helper above makes good tokens too, else the table proves nothing;
 * unknown members are ignored and an nbf is read. */
START_TEST(hand_made_claims_accepted) {
    test_key k = make_key("k1", 3);
    spark_auth_keyring *ring = ring_of(k.verify);
    const char *json = "{\"sub\":\"1\",\"name\":\"A\\u00e9\",\"iat\":1700000000,\"exp\":1700000600,"
                       "\"nbf\":1700000010,\"extra\":{\"x\":[1]},\"scopes\":[\"room:*\"]}";
    char *token = sign_raw("k1", k.sk, json, strlen(json));
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_OK);
    ck_assert_str_eq(c.name, "A\xc3\xa9");
    ck_assert_int_eq(c.nbf, NOW + 10);
    ck_assert(spark_token_allows(&c, "room:lobby"));
    spark_token_claims_free(&c);
    free(token);

    /* A lone surrogate escape decodes to U+FFFD, never to invalid UTF-8. */
    json = "{\"sub\":\"1\",\"name\":\"\\ud800\",\"iat\":1700000000,\"exp\":1700000600}";
    token = sign_raw("k1", k.sk, json, strlen(json));
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_OK);
    ck_assert_str_eq(c.name, "\xef\xbf\xbd");
    spark_token_claims_free(&c);
    free(token);

    /* 64 scopes is the most a token may carry; 65 is too many. */
    char many[4096];
    size_t n = (size_t)snprintf(many, sizeof many,
                                "{\"sub\":\"1\",\"name\":\"A\",\"iat\":%d,\"exp\":%d,\"scopes\":[",
                                NOW, NOW + 60);
    for (int i = 0; i < SPARK_TOKEN_MAX_SCOPES; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s\"room:r%d\"", i ? "," : "", i);
    strcpy(many + n, "]}");
    token = sign_raw("k1", k.sk, many, strlen(many));
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_OK);
    ck_assert_uint_eq(c.nscopes, SPARK_TOKEN_MAX_SCOPES);
    spark_token_claims_free(&c);
    free(token);
    snprintf(many + n, sizeof many - n, ",\"room:x\"]}");
    token = sign_raw("k1", k.sk, many, strlen(many));
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_MALFORMED);
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

/* Changes the character at `at` to another base64 character. */
static void flip(char *s, size_t at) { s[at] = s[at] == 'A' ? 'B' : 'A'; }

START_TEST(tampered_payload) {
    test_key k = make_key("k1", 1);
    spark_auth_keyring *ring = ring_of(k.verify);
    char *token;
    mint_ok(&token, &k, NULL, 0, 60, NOW);
    const char *payload = strchr(token, '.') + 1;
    size_t at = (size_t)(payload - token) + 10;
    flip(token, at);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_BAD_SIGNATURE);
    ck_assert(claims_zeroed(&c));
    free(token);

    /* A payload with other claims under the original signature. */
    mint_ok(&token, &k, NULL, 0, 60, NOW);
    char *other;
    mint_ok(&other, &k, NULL, 0, 3600, NOW);
    char *sig = strrchr(token, '.'), *other_sig = strrchr(other, '.');
    ck_assert_uint_eq(strlen(sig), strlen(other_sig));
    memcpy(other_sig, sig, strlen(sig));
    ck_assert_int_eq(spark_token_verify(ring, other, NOW, &c), SPARK_TOKEN_BAD_SIGNATURE);
    free(other);
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

START_TEST(tampered_signature) {
    test_key k = make_key("k1", 1);
    spark_auth_keyring *ring = ring_of(k.verify);
    char *token;
    mint_ok(&token, &k, NULL, 0, 60, NOW);
    size_t at = (size_t)(strrchr(token, '.') - token) + 5;
    flip(token, at);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_BAD_SIGNATURE);
    ck_assert(claims_zeroed(&c));
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

START_TEST(forged_with_another_key) {
    test_key real = make_key("k1", 1), forger = make_key("k1", 2);
    spark_auth_keyring *ring = ring_of(real.verify);
    char *token;
    mint_ok(&token, &forger, NULL, 0, 60, NOW);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_BAD_SIGNATURE);
    free(token);
    spark_auth_keyring_free(ring);

    /* Relabelling a genuine token with another trusted key id fails too:
     * the key id is part of what was signed. */
    test_key second = make_key("k2", 2);
    char both[256];
    snprintf(both, sizeof both, "%s,%s", real.verify, second.verify);
    ring = ring_of(both);
    mint_ok(&token, &real, NULL, 0, 60, NOW);
    token[1] = '2';
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_BAD_SIGNATURE);
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(real.key);
    spark_auth_signing_key_free(forger.key);
    spark_auth_signing_key_free(second.key);
}
END_TEST

START_TEST(expired) {
    test_key k = make_key("k1", 1);
    spark_auth_keyring *ring = ring_of(k.verify);
    char *token;
    mint_ok(&token, &k, NULL, 0, 60, NOW);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, token, NOW + 59, &c), SPARK_TOKEN_OK);
    spark_token_claims_free(&c);
    /* No clock skew on exp: a token is dead at its exp second. */
    ck_assert_int_eq(spark_token_verify(ring, token, NOW + 60, &c), SPARK_TOKEN_EXPIRED);
    ck_assert(claims_zeroed(&c));
    ck_assert_int_eq(spark_token_verify(ring, token, NOW + 86400, &c), SPARK_TOKEN_EXPIRED);
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

START_TEST(not_yet_valid) {
    test_key k = make_key("k1", 1);
    spark_auth_keyring *ring = ring_of(k.verify);
    spark_token_claims c;
    /* Issued by a clock a little ahead: fine within the skew. */
    char *token;
    mint_ok(&token, &k, NULL, 0, 600, NOW + SPARK_TOKEN_CLOCK_SKEW);
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_OK);
    spark_token_claims_free(&c);
    free(token);
    mint_ok(&token, &k, NULL, 0, 600, NOW + SPARK_TOKEN_CLOCK_SKEW + 1);
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_NOT_YET_VALID);
    ck_assert(claims_zeroed(&c));
    free(token);

    /* nbf: the same rule. */
    char json[256];
    snprintf(json, sizeof json, "{\"sub\":\"1\",\"name\":\"A\",\"iat\":%d,\"exp\":%d,\"nbf\":%d}",
             NOW, NOW + 600, NOW + 300);
    token = sign_raw("k1", k.sk, json, strlen(json));
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_NOT_YET_VALID);
    ck_assert_int_eq(spark_token_verify(ring, token, NOW + 300 - SPARK_TOKEN_CLOCK_SKEW, &c),
                     SPARK_TOKEN_OK);
    spark_token_claims_free(&c);
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
}
END_TEST

START_TEST(unknown_key_id) {
    test_key k = make_key("k1", 1), other = make_key("k2", 2);
    spark_auth_keyring *ring = ring_of(other.verify);
    char *token;
    mint_ok(&token, &k, NULL, 0, 60, NOW);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_UNKNOWN_KEY);
    ck_assert(claims_zeroed(&c));
    /* No keys at all: every key id is unknown. */
    ck_assert_int_eq(spark_token_verify(NULL, token, NOW, &c), SPARK_TOKEN_UNKNOWN_KEY);
    free(token);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(k.key);
    spark_auth_signing_key_free(other.key);
}
END_TEST

START_TEST(rotated_keys) {
    test_key old_key = make_key("2024a", 10), new_key = make_key("2025a", 11);
    char both[256];
    snprintf(both, sizeof both, "  %s,\n\t%s  ", new_key.verify, old_key.verify);
    spark_auth_keyring *during = ring_of(both), *after = ring_of(new_key.verify);
    ck_assert_uint_eq(spark_auth_keyring_count(during), 2);
    char *old_token;
    mint_ok(&old_token, &old_key, NULL, 0, 600, NOW);
    char *new_token;
    mint_ok(&new_token, &new_key, NULL, 0, 600, NOW);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(during, old_token, NOW, &c), SPARK_TOKEN_OK);
    ck_assert_str_eq(c.kid, "2024a");
    spark_token_claims_free(&c);
    ck_assert_int_eq(spark_token_verify(during, new_token, NOW, &c), SPARK_TOKEN_OK);
    ck_assert_str_eq(c.kid, "2025a");
    spark_token_claims_free(&c);
    /* Once the old key is withdrawn, its tokens stop working. */
    ck_assert_int_eq(spark_token_verify(after, old_token, NOW, &c), SPARK_TOKEN_UNKNOWN_KEY);
    ck_assert_int_eq(spark_token_verify(after, new_token, NOW, &c), SPARK_TOKEN_OK);
    spark_token_claims_free(&c);
    free(old_token);
    free(new_token);
    spark_auth_keyring_free(during);
    spark_auth_keyring_free(after);
    spark_auth_signing_key_free(old_key.key);
    spark_auth_signing_key_free(new_key.key);
}
END_TEST

START_TEST(reasons_fit_a_close_frame) {
    const char *seen[8] = {0};
    for (int s = SPARK_TOKEN_OK; s <= SPARK_TOKEN_UNKNOWN_KEY; s++) {
        const char *r = spark_token_status_reason((spark_token_status)s);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_gt(strlen(r), 0);
        ck_assert_int_le(strlen(r), 123);
        for (int j = 0; j < s; j++)
            ck_assert_str_ne(seen[j], r);
        seen[s] = r;
    }
    ck_assert_str_eq(spark_token_status_reason(SPARK_TOKEN_EXPIRED), "token expired");
}
END_TEST

/* ---- mint ---------------------------------------------------------------- */

START_TEST(mint_refuses_bad_input) {
    test_key k = make_key("k1", 1);
    char *token = (char *)"sentinel";
    const char *ok_scope[] = {"room:lobby"}, *bad_scope[] = {"room:lobby", "room: x"},
               *star_scope[] = {"room*"};
    char long_sub[SPARK_TOKEN_SUB_MAX + 2];
    memset(long_sub, 's', sizeof long_sub - 1);
    long_sub[sizeof long_sub - 1] = '\0';
    const struct {
        const char *sub, *name;
        long ttl;
        const char *const *scopes;
        size_t nscopes;
        const char *prefix;
    } cases[] = {
        {NULL, "A", 60, NULL, 0, "sub: "},
        {"", "A", 60, NULL, 0, "sub: "},
        {long_sub, "A", 60, NULL, 0, "sub: "},
        {"a\tb", "A", 60, NULL, 0, "sub: "},
        {"1", "", 60, NULL, 0, "name: "},
        {"1", "bad\xc3", 60, NULL, 0, "name: "},
        {"1", "A\r\n", 60, NULL, 0, "name: "},
        {"1", "A", 0, NULL, 0, "ttl: "},
        {"1", "A", -5, NULL, 0, "ttl: "},
        {"1", "A", SPARK_TOKEN_MAX_TTL + 1, NULL, 0, "ttl: "},
        {"1", "A", 60, bad_scope, 2, "scope: "},
        {"1", "A", 60, star_scope, 1, "scope: "},
        {"1", "A", 60, ok_scope, SPARK_TOKEN_MAX_SCOPES + 1, "scope: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        ck_assert_int_eq(spark_token_mint(k.key, cases[i].sub, cases[i].name, cases[i].ttl,
                                          cases[i].scopes, cases[i].nscopes, NOW, &token, err,
                                          sizeof err),
                         -1);
        ck_assert_ptr_null(token);
        ck_assert_msg(strncmp(err, cases[i].prefix, strlen(cases[i].prefix)) == 0,
                      "case %zu gave \"%s\"", i, err);
        ck_assert_ptr_null(strchr(err, '\n'));
    }

    /* Scopes that each pass but together overflow the token. */
    char scope_text[SPARK_TOKEN_MAX_SCOPES][SPARK_TOKEN_SCOPE_MAX + 1];
    const char *big[SPARK_TOKEN_MAX_SCOPES];
    for (int i = 0; i < SPARK_TOKEN_MAX_SCOPES; i++) {
        memset(scope_text[i], 'x', SPARK_TOKEN_SCOPE_MAX);
        scope_text[i][SPARK_TOKEN_SCOPE_MAX] = '\0';
        big[i] = scope_text[i];
    }
    ck_assert_int_eq(spark_token_mint(k.key, "1", "A", 60, big, SPARK_TOKEN_MAX_SCOPES, NOW, &token,
                                      err, sizeof err),
                     -1);
    ck_assert_msg(strncmp(err, "scope: ", 7) == 0, "%s", err);
    spark_auth_signing_key_free(k.key);
}
END_TEST

/* ---- keys ---------------------------------------------------------------- */

START_TEST(keygen_makes_a_working_pair) {
    char signing[SPARK_AUTH_KEY_TEXT_SIZE], verify[SPARK_AUTH_KEY_TEXT_SIZE];
    ck_assert_int_eq(spark_auth_keygen(signing, sizeof signing, verify, sizeof verify), 0);
    /* Same 8-hex-digit key id on both. */
    ck_assert_ptr_nonnull(strchr(signing, ':'));
    ck_assert_int_eq(strchr(signing, ':') - signing, 8);
    ck_assert_int_eq(strncmp(signing, verify, 9), 0);
    ck_assert_str_ne(signing, verify);
    spark_auth_signing_key *key;
    ck_assert_int_eq(spark_auth_signing_key_parse(signing, &key, err, sizeof err), 0);
    char derived[SPARK_AUTH_KEY_TEXT_SIZE];
    ck_assert_int_eq(spark_auth_signing_key_public(key, derived, sizeof derived), 0);
    ck_assert_str_eq(derived, verify);
    spark_auth_keyring *ring = ring_of(verify);
    ck_assert_int_eq(spark_auth_keyring_matches(ring, key), 1);
    char *token;
    ck_assert_int_eq(spark_token_mint(key, "1", "A", 60, NULL, 0, NOW, &token, err, sizeof err), 0);
    spark_token_claims c;
    ck_assert_int_eq(spark_token_verify(ring, token, NOW, &c), SPARK_TOKEN_OK);
    spark_token_claims_free(&c);
    free(token);

    /* Two runs never share a key. */
    char signing2[SPARK_AUTH_KEY_TEXT_SIZE], verify2[SPARK_AUTH_KEY_TEXT_SIZE];
    ck_assert_int_eq(spark_auth_keygen(signing2, sizeof signing2, verify2, sizeof verify2), 0);
    ck_assert_str_ne(signing, signing2);
    ck_assert_int_eq(spark_auth_keygen(signing2, 10, verify2, sizeof verify2), -1);
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(key);
}
END_TEST

START_TEST(keyring_matches_signing_key) {
    test_key a = make_key("a", 1), a_other = make_key("a", 2), b = make_key("b", 3);
    spark_auth_keyring *ring = ring_of(a.verify);
    ck_assert_int_eq(spark_auth_keyring_matches(ring, a.key), 1);
    ck_assert_int_eq(spark_auth_keyring_matches(ring, a_other.key), -1);
    ck_assert_int_eq(spark_auth_keyring_matches(ring, b.key), 0);
    ck_assert_str_eq(spark_auth_signing_key_kid(b.key), "b");
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(a.key);
    spark_auth_signing_key_free(a_other.key);
    spark_auth_signing_key_free(b.key);
}
END_TEST

#define PK_A "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
#define PK_B "adaYvTsAXUvPZzuyZoX53osP4odc1RIfwaBGe-fmi_U"

START_TEST(keyring_parses_lists) {
    static const struct {
        const char *text;
        size_t count;
    } good[] = {
        {"a:" PK_A, 1},
        {"a:" PK_A ",b:" PK_B, 2},
        {"a:" PK_A " b:" PK_B, 2},
        {" \n a:" PK_A " ,\n\t b:" PK_B ",, \n", 2},
        {"Key_2025-01:" PK_A, 1},
        {"abcdefghijklmnopqrstuvwxyz012345:" PK_A, 1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        spark_auth_keyring *ring = ring_of(good[i].text);
        ck_assert_uint_eq(spark_auth_keyring_count(ring), good[i].count);
        spark_auth_keyring_free(ring);
    }
    /* Sixteen keys is the most. */
    char many[4096] = "";
    for (int i = 0; i < SPARK_AUTH_MAX_KEYS; i++) {
        char entry[64];
        snprintf(entry, sizeof entry, "%sk%d:%s", i ? "," : "", i, PK_A);
        strcat(many, entry);
    }
    spark_auth_keyring *ring = ring_of(many);
    ck_assert_uint_eq(spark_auth_keyring_count(ring), SPARK_AUTH_MAX_KEYS);
    spark_auth_keyring_free(ring);
    strcat(many, ",k99:" PK_A);
    ck_assert_int_eq(spark_auth_keyring_parse(many, &ring, err, sizeof err), -1);
    ck_assert_ptr_null(ring);
    ck_assert_msg(strstr(err, "more than"), "%s", err);
}
END_TEST

static const struct {
    // cppcheck-suppress unusedStructMember ; read as bad_rings[_i].text
    const char *text, *expect;
} bad_rings[] = {
    {"", "no keys"},
    {" , \n", "no keys"},
    {PK_A, "KID:BASE64URL"},
    {":" PK_A, "key id"},
    {"a.b:" PK_A, "key id"},
    {"a b:" PK_A, "KID:BASE64URL"},
    {"abcdefghijklmnopqrstuvwxyz0123456:" PK_A, "key id"},
    {"a:", "no key"},
    {"a:not*base64", "base64"},
    {"a:" PK_A "=", "base64"},
    {"a:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg", "base64"},
    {"a:AAAA", "3 bytes"},
    {"a:" PK_A "AAAA", "35 bytes"},
    {"a:" PK_A ",a:" PK_B, "appears twice"},
    {"a:" PK_A ",b:nope!", "entry 2"},
};

START_TEST(keyring_parse_errors) {
    spark_auth_keyring *ring;
    err[0] = '\0';
    ck_assert_int_eq(spark_auth_keyring_parse(bad_rings[_i].text, &ring, err, sizeof err), -1);
    ck_assert_ptr_null(ring);
    ck_assert_msg(strstr(err, bad_rings[_i].expect), "\"%s\" gave \"%s\"", bad_rings[_i].text, err);
    ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

START_TEST(signing_key_parse_errors) {
    static const struct {
        const char *text, *expect;
    } bad[] = {
        {"", "empty"},
        {"  \n", "empty"},
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "KID:BASE64URL"},
        {"k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8,j:AAEC", "not a list"},
        {"k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 j:AAEC", "not a list"},
        {"k$:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "key id"},
        {"k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh", "base64"},
        {"k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8AAAA", "35 bytes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spark_auth_signing_key *key;
        err[0] = '\0';
        ck_assert_int_eq(spark_auth_signing_key_parse(bad[i].text, &key, err, sizeof err), -1);
        ck_assert_ptr_null(key);
        ck_assert_msg(strstr(err, bad[i].expect), "\"%s\" gave \"%s\"", bad[i].text, err);
        /* The secret never appears in the message. */
        ck_assert_ptr_null(strstr(err, "AAECAwQF"));
    }
    /* The newline an env file leaves is tolerated. */
    spark_auth_signing_key *key;
    ck_assert_int_eq(spark_auth_signing_key_parse(VECTOR_SIGNING "\n", &key, err, sizeof err), 0);
    ck_assert_str_eq(spark_auth_signing_key_kid(key), "vector1");
    spark_auth_signing_key_free(key);
    spark_auth_signing_key_free(NULL);
}
END_TEST

/* ---- scopes -------------------------------------------------------------- */

static const struct {
    // cppcheck-suppress unusedStructMember ; read as scope_cases[_i].grant
    const char *grant, *want;
    // cppcheck-suppress unusedStructMember ; read as scope_cases[_i].allowed
    bool allowed;
} scope_cases[] = {
    {"room:lobby", "room:lobby", true},
    {"room:lobby", "room:lobby2", false},
    {"room:lobby", "room:lobb", false},
    {"room:lobby", "Room:lobby", false},
    {"room:*", "room:lobby", true},
    {"room:*", "room:a:b", true},
    {"room:*", "room:", false},
    {"room:*", "roomx:lobby", false},
    {"room:*", "room", false},
    {"room:*", "component:todo:x", false},
    {"room:*", "room:*", true},
    {"room:lobby", "room:*", false},
    {"component:*", "component:todo:groceries", true},
    {"component:*", "component:counter:1", true},
    {"component:todo:*", "component:todo:groceries", true},
    {"component:todo:*", "component:todo:", false},
    {"component:todo:*", "component:todos:x", false},
    {"component:todo:*", "component:counter:1", false},
    {"component:todo:groceries", "component:todo:groceries", true},
    {"component:todo:groceries", "component:todo:other", false},
    {"user:42", "user:42", true},
    {"user:42", "user:420", false},
    {"user:42", "user:4", false},
    {"room:lobby", "", false},
};

START_TEST(scope_matching) {
    char *scope = strdup(scope_cases[_i].grant);
    spark_token_claims c = {.scopes = &scope, .nscopes = 1};
    ck_assert_msg(spark_token_allows(&c, scope_cases[_i].want) == scope_cases[_i].allowed,
                  "%s vs %s", scope_cases[_i].grant, scope_cases[_i].want);
    const char *colon = strchr(scope_cases[_i].want, ':');
    if (colon) {
        char kind[64];
        snprintf(kind, sizeof kind, "%.*s", (int)(colon - scope_cases[_i].want),
                 scope_cases[_i].want);
        ck_assert_msg(spark_token_allows_in(&c, kind, colon + 1) == scope_cases[_i].allowed,
                      "%s vs (%s, %s)", scope_cases[_i].grant, kind, colon + 1);
    }
    free(scope);
}
END_TEST

START_TEST(scope_edge_cases) {
    char *scopes[] = {"user:42", "room:*"};
    spark_token_claims c = {.scopes = scopes, .nscopes = 2};
    ck_assert(spark_token_allows(&c, "room:x"));
    ck_assert(spark_token_allows(&c, "user:42"));
    ck_assert(!spark_token_allows(&c, NULL));
    ck_assert(!spark_token_allows(NULL, "room:x"));
    ck_assert(!spark_token_allows_in(&c, "room", ""));
    ck_assert(!spark_token_allows_in(&c, "", "x"));
    ck_assert(!spark_token_allows_in(&c, NULL, "x"));
    ck_assert(!spark_token_allows_in(NULL, "room", "x"));
    ck_assert(spark_token_scope_valid("room:*"));
    ck_assert(spark_token_scope_valid("component:todo:*"));
    ck_assert(spark_token_scope_valid("user:42"));
    ck_assert(!spark_token_scope_valid("*"));
    ck_assert(!spark_token_scope_valid("room*"));
    ck_assert(!spark_token_scope_valid("room:*:x"));
    ck_assert(!spark_token_scope_valid("room:\xc3\xa9"));
    ck_assert(!spark_token_scope_valid(""));
    ck_assert(!spark_token_scope_valid(NULL));
}
END_TEST

/* ---- cookies ------------------------------------------------------------- */

static const struct {
    // cppcheck-suppress unusedStructMember ; read as cookie_cases[_i].header
    const char *header, *name;
    // cppcheck-suppress unusedStructMember ; read as cookie_cases[_i].rc
    int rc;
    // cppcheck-suppress unusedStructMember ; read as cookie_cases[_i].value
    const char *value;
} cookie_cases[] = {
    {"sid=GOOD", "sid", 4, "GOOD"},
    {"xsid=EVIL; sid=GOOD", "sid", 4, "GOOD"},
    {"sid=GOOD; xsid=EVIL", "sid", 4, "GOOD"},
    {"xsid=EVIL", "sid", SPARK_COOKIE_ABSENT, ""},
    {"sidx=EVIL; sid=GOOD", "sid", 4, "GOOD"},
    {"a=1; sid=GOOD; b=2", "sid", 4, "GOOD"},
    {"a=1;sid=GOOD;b=2", "sid", 4, "GOOD"},
    {"  a=1 ;\t sid = GOOD  ; b=2", "sid", 4, "GOOD"},
    {"a=1; b=2, sid=GOOD; c=3", "sid", 4, "GOOD"}, /* two headers joined by ", " */
    {"a=1; b=2,sid=GOOD", "sid", 4, "GOOD"},       /* ... or by "," */
    {"a=1,sid=GOOD,c=3", "sid", 4, "GOOD"},
    {"sid=FIRST; sid=SECOND", "sid", 5, "FIRST"},
    {"sid=FIRST, sid=SECOND", "sid", 5, "FIRST"},
    {"sid=\"abc\"", "sid", 3, "abc"},
    {"a=1; sid=\"abc\"; b=2", "sid", 3, "abc"},
    {"sid=\"\"", "sid", 0, ""},
    {"sid=", "sid", 0, ""},
    {"sid=; other=x", "sid", 0, ""},
    {"sid=\"abc", "sid", SPARK_COOKIE_INVALID, ""},
    {"sid=\"", "sid", SPARK_COOKIE_INVALID, ""},
    {"sid=a\"b", "sid", SPARK_COOKIE_INVALID, ""},
    {"sid=a\x01z", "sid", SPARK_COOKIE_INVALID, ""},
    {"sid", "sid", SPARK_COOKIE_ABSENT, ""},
    {"sid; x=1", "sid", SPARK_COOKIE_ABSENT, ""},
    {"", "sid", SPARK_COOKIE_ABSENT, ""},
    {";;, ,", "sid", SPARK_COOKIE_ABSENT, ""},
    {"SID=upper", "sid", SPARK_COOKIE_ABSENT, ""},
    {"=nameless; sid=GOOD", "sid", 4, "GOOD"},
    {"spark_session=k1.e30.c2ln; theme=dark", "spark_session", 11, "k1.e30.c2ln"},
    {"a=b=c; sid=x=y", "sid", 3, "x=y"},
    {"sid=0123456789abcdef", "sid", SPARK_COOKIE_TOO_LONG, ""}, /* out has 16 bytes */
    {"sid=0123456789abcde", "sid", 15, "0123456789abcde"},
};

START_TEST(cookie_parsing) {
    char out[16];
    memset(out, 'z', sizeof out);
    int rc = spark_cookie_get(cookie_cases[_i].header, cookie_cases[_i].name, out, sizeof out);
    ck_assert_msg(rc == cookie_cases[_i].rc, "[%s] gave %d, expected %d", cookie_cases[_i].header,
                  rc, cookie_cases[_i].rc);
    ck_assert_str_eq(out, cookie_cases[_i].value);
}
END_TEST

START_TEST(cookie_edge_cases) {
    char out[8] = "zzz";
    ck_assert_int_eq(spark_cookie_get(NULL, "sid", out, sizeof out), SPARK_COOKIE_ABSENT);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(spark_cookie_get("sid=1", "", out, sizeof out), SPARK_COOKIE_ABSENT);
    ck_assert_int_eq(spark_cookie_get("sid=1", NULL, out, sizeof out), SPARK_COOKIE_ABSENT);
    ck_assert_int_eq(spark_cookie_get("sid=1", "sid", out, 0), SPARK_COOKIE_TOO_LONG);
    ck_assert_int_eq(spark_cookie_get("sid=1", "sid", out, 1), SPARK_COOKIE_TOO_LONG);
    ck_assert_int_eq(spark_cookie_get("sid=", "sid", out, 1), 0);

    /* A real token in a long header among other cookies. */
    size_t n = 10000;
    char *header = malloc(n);
    snprintf(header, n, "a=%0500d; %s=%s; b=2", 7, SPARK_AUTH_COOKIE, VECTOR_TOKEN);
    char token[SPARK_TOKEN_MAX + 1];
    ck_assert_int_eq(spark_cookie_get(header, SPARK_AUTH_COOKIE, token, sizeof token),
                     (int)strlen(VECTOR_TOKEN));
    ck_assert_str_eq(token, VECTOR_TOKEN);
    free(header);
}
END_TEST

static Suite *auth_suite(void) {
    Suite *s = suite_create("auth");
    TCase *tokens = tcase_create("tokens");
    tcase_add_test(tokens, sign_verify_round_trip);
    tcase_add_test(tokens, fixed_test_vector);
    tcase_add_test(tokens, missing_token);
    tcase_add_loop_test(tokens, malformed_syntax, 0,
                        (int)(sizeof not_tokens / sizeof not_tokens[0]));
    tcase_add_test(tokens, malformed_too_long);
    tcase_add_loop_test(tokens, malformed_claims, 0,
                        (int)(sizeof bad_claims / sizeof bad_claims[0]));
    tcase_add_test(tokens, hand_made_claims_accepted);
    tcase_add_test(tokens, tampered_payload);
    tcase_add_test(tokens, tampered_signature);
    tcase_add_test(tokens, forged_with_another_key);
    tcase_add_test(tokens, expired);
    tcase_add_test(tokens, not_yet_valid);
    tcase_add_test(tokens, unknown_key_id);
    tcase_add_test(tokens, rotated_keys);
    tcase_add_test(tokens, reasons_fit_a_close_frame);
    tcase_add_test(tokens, mint_refuses_bad_input);
    suite_add_tcase(s, tokens);

    TCase *keys = tcase_create("keys");
    tcase_add_test(keys, keygen_makes_a_working_pair);
    tcase_add_test(keys, keyring_matches_signing_key);
    tcase_add_test(keys, keyring_parses_lists);
    tcase_add_loop_test(keys, keyring_parse_errors, 0,
                        (int)(sizeof bad_rings / sizeof bad_rings[0]));
    tcase_add_test(keys, signing_key_parse_errors);
    suite_add_tcase(s, keys);

    TCase *scopes = tcase_create("scopes");
    tcase_add_loop_test(scopes, scope_matching, 0,
                        (int)(sizeof scope_cases / sizeof scope_cases[0]));
    tcase_add_test(scopes, scope_edge_cases);
    suite_add_tcase(s, scopes);

    TCase *cookies = tcase_create("cookies");
    tcase_add_loop_test(cookies, cookie_parsing, 0,
                        (int)(sizeof cookie_cases / sizeof cookie_cases[0]));
    tcase_add_test(cookies, cookie_edge_cases);
    suite_add_tcase(s, cookies);
    return s;
}

int main(void) {
    if (sodium_init() < 0) return 1;
    SRunner *sr = srunner_create(auth_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
