/*
 * fuzz_token.c - tokens and keys (auth.c).
 *
 * The first byte picks what the rest is:
 *   0: a token, verified against the key ring of docs/auth.md's test vector
 *      (random bytes almost never pass the signature: this covers syntax);
 *   1: a claims payload, signed here with that vector's secret key, so the
 *      claim parser behind the signature check is reached; a token it
 *      accepts is minted again from its claims, which must verify equal;
 *   2: SPARK_VERIFY_KEYS text; 3: SPARK_SIGNING_KEY text.
 */
#include "auth.h"
#include "fuzz.h"

#include <sodium.h>

#define VECTOR_SEED "vector1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define VECTOR_KEYS "vector1:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
#define VARIANT     sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define NOW         1700000000LL

static spark_auth_keyring *ring;
static spark_auth_signing_key *key;
static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

static void setup(void) {
    char err[200];
    if (ring) return;
    FUZZ_CHECK(sodium_init() >= 0);
    FUZZ_CHECK(spark_auth_keyring_parse(VECTOR_KEYS, &ring, err, sizeof err) == 0);
    FUZZ_CHECK(spark_auth_signing_key_parse(VECTOR_SEED, &key, err, sizeof err) == 0);
    unsigned char seed[crypto_sign_SEEDBYTES];
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (unsigned char)i;
    crypto_sign_seed_keypair(pk, sk, seed);
}

static void check_claims(const spark_token_claims *c) {
    FUZZ_CHECK(strcmp(c->kid, "vector1") == 0);
    FUZZ_CHECK(c->sub && *c->sub && strlen(c->sub) <= SPARK_TOKEN_SUB_MAX);
    FUZZ_CHECK(c->name && *c->name && strlen(c->name) <= SPARK_TOKEN_NAME_MAX);
    FUZZ_CHECK(c->exp > c->iat && c->iat >= 0 && c->exp <= SPARK_TOKEN_MAX_SECONDS);
    FUZZ_CHECK(c->nscopes <= SPARK_TOKEN_MAX_SCOPES);
    for (size_t i = 0; i < c->nscopes; i++) {
        FUZZ_CHECK(spark_token_scope_valid(c->scopes[i]));
        FUZZ_CHECK(spark_token_allows(c, c->scopes[i]));
    }
}

/* Mints a token from verified claims and checks it verifies the same. */
static void check_remint(const spark_token_claims *c) {
    int64_t ttl = c->exp - c->iat;
    if (ttl > SPARK_TOKEN_MAX_TTL || c->iat > SPARK_TOKEN_MAX_SECONDS - ttl) return;
    char *token = NULL, err[200];
    int rc = spark_token_mint(key, c->sub, c->name, ttl, (const char *const *)c->scopes, c->nscopes,
                              c->iat, &token, err, sizeof err);
    if (rc != 0) {
        /* Only a token too long to mint may be refused. */
        FUZZ_CHECK(strstr(err, "exceed") != NULL);
        return;
    }
    spark_token_claims again;
    FUZZ_CHECK(spark_token_verify(ring, token, c->iat, &again) == SPARK_TOKEN_OK);
    FUZZ_CHECK(strcmp(again.sub, c->sub) == 0 && strcmp(again.name, c->name) == 0);
    FUZZ_CHECK(again.iat == c->iat && again.exp == c->exp && again.nscopes == c->nscopes);
    for (size_t i = 0; i < c->nscopes; i++)
        FUZZ_CHECK(strcmp(again.scopes[i], c->scopes[i]) == 0);
    spark_token_claims_free(&again);
    free(token);
}

static void verify(const char *token, int64_t now) {
    spark_token_claims c;
    spark_token_status st = spark_token_verify(ring, token, now, &c);
    FUZZ_CHECK(strlen(spark_token_status_reason(st)) <= 123);
    if (st != SPARK_TOKEN_OK) {
        FUZZ_CHECK(c.sub == NULL && c.name == NULL && c.scopes == NULL && c.nscopes == 0);
        spark_token_claims_free(&c);
        return;
    }
    check_claims(&c);
    check_remint(&c);
    spark_token_claims_free(&c);
}

/* Signs `json` as the payload of a vector1 token and verifies it. */
static void verify_signed(const uint8_t *json, size_t len) {
    if (len == 0 || len > 3000) return;
    size_t payload_size = sodium_base64_ENCODED_LEN(len, VARIANT);
    size_t sig_size = sodium_base64_ENCODED_LEN(crypto_sign_BYTES, VARIANT);
    char *token = malloc(8 + payload_size + sig_size);
    FUZZ_CHECK(token);
    memcpy(token, "vector1.", 8);
    sodium_bin2base64(token + 8, payload_size, json, len, VARIANT);
    size_t signed_len = strlen(token);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)token, signed_len, sk);
    token[signed_len] = '.';
    sodium_bin2base64(token + signed_len + 1, sig_size, sig, sizeof sig, VARIANT);
    verify(token, NOW);
    /* The same token at other instants: expired and not yet valid. */
    verify(token, 0);
    verify(token, INT64_MAX);
    verify(token, INT64_MIN);
    free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size == 0) return 0;
    char err[200];
    char *text = fuzz_cstr(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        verify(text, NOW);
        break;
    case 1:
        verify_signed(data + 1, size - 1);
        break;
    case 2: {
        spark_auth_keyring *r = NULL;
        if (spark_auth_keyring_parse(text, &r, err, sizeof err) == 0) {
            FUZZ_CHECK(r);
            size_t n = spark_auth_keyring_count(r);
            FUZZ_CHECK(n >= 1 && n <= SPARK_AUTH_MAX_KEYS);
            FUZZ_CHECK(spark_auth_keyring_matches(r, key) >= -1);
            spark_auth_keyring_free(r);
        } else {
            FUZZ_CHECK(strchr(err, '\n') == NULL);
        }
        break;
    }
    default: {
        spark_auth_signing_key *k = NULL;
        if (spark_auth_signing_key_parse(text, &k, err, sizeof err) == 0) {
            char pub[SPARK_AUTH_KEY_TEXT_SIZE];
            FUZZ_CHECK(spark_auth_signing_key_public(k, pub, sizeof pub) == 0);
            spark_auth_keyring *r = NULL;
            FUZZ_CHECK(spark_auth_keyring_parse(pub, &r, err, sizeof err) == 0);
            FUZZ_CHECK(spark_auth_keyring_matches(r, k) == 1);
            spark_auth_keyring_free(r);
            spark_auth_signing_key_free(k);
        } else {
            FUZZ_CHECK(strchr(err, '\n') == NULL);
        }
        break;
    }
    }
    free(text);
    return 0;
}
