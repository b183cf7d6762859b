/*
 * fuzz_route.c - route patterns, path matching and percent-decoding
 * (router.c).
 *
 * Input: PATTERN '\n' PATH. The path is matched against the pattern when
 * spark_route_valid accepts it, and always against the demo apps' routes;
 * the whole input is percent-decoded both ways. Invariants: a parameter
 * value is non-empty, fits, and has no control character or '/'; a decoded
 * string re-encoded with %XX escapes decodes to itself.
 */
#include "fuzz.h"
#include "router.h"

static void match(const char *pattern, const char *path) {
    spark_route_params params;
    if (!spark_route_match(pattern, path, &params)) return;
    FUZZ_CHECK(params.count <= SPARK_ROUTE_MAX_PARAMS);
    for (size_t i = 0; i < params.count; i++) {
        const char *v = params.param[i].value;
        size_t len = strnlen(v, SPARK_ROUTE_MAX_VALUE);
        FUZZ_CHECK(len > 0 && len < SPARK_ROUTE_MAX_VALUE);
        for (size_t j = 0; j < len; j++) {
            unsigned char c = (unsigned char)v[j];
            FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '/');
        }
        FUZZ_CHECK(spark_route_param(&params, params.param[i].name) != NULL);
    }
    FUZZ_CHECK(spark_route_match(pattern, path, NULL));
}

static void decode(const char *s, size_t n, int plus_is_space) {
    size_t cap = n + 1;
    char *out = malloc(cap);
    FUZZ_CHECK(out);
    long len = spark_url_decode(s, n, plus_is_space, out, cap);
    if (len >= 0) {
        FUZZ_CHECK((size_t)len <= n && out[len] == '\0');
        /* Re-encode every byte and decode again. */
        char *enc = malloc((size_t)len * 3 + 1), *back = malloc((size_t)len + 1);
        FUZZ_CHECK(enc && back);
        for (long i = 0; i < len; i++)
            snprintf(enc + i * 3, 4, "%%%02X", (unsigned char)out[i]);
        FUZZ_CHECK(spark_url_decode(enc, (size_t)len * 3, plus_is_space, back, (size_t)len + 1) ==
                   len);
        FUZZ_CHECK(memcmp(back, out, (size_t)len) == 0);
        /* One byte less room than needed is refused, not overrun. */
        if (len > 0) FUZZ_CHECK(spark_url_decode(s, n, plus_is_space, out, (size_t)len) == -1);
        free(enc);
        free(back);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const routes[] = {"/chat/:room_id", "/counter/:id", "/todo/:list/item/:id",
                                         "/a/:b/:c/:d/:e", "/"};
    char *parts[FUZZ_MAX_PARTS];
    char *block = fuzz_split(data, size, '\n', 2, parts);
    if (spark_route_valid(parts[0])) match(parts[0], parts[1]);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        match(routes[i], parts[1]);
    free(block);
    decode((const char *)data, size, 0);
    decode((const char *)data, size, 1);
    return 0;
}
