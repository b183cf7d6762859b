/*
 * fuzz_cookie.c - the Cookie header (spark_cookie_get, auth.c).
 *
 * Input: NAME '\n' HEADER, or a bare header looked up for the session
 * cookie. Each lookup runs with a roomy and a tight output buffer.
 * Invariants: a found value is exactly as long as returned, has no
 * separator, quote or control character, and fits; a failed lookup leaves
 * "" behind.
 */
#include "auth.h"
#include "fuzz.h"

static void lookup(const char *header, const char *name, size_t cap) {
    char *out = malloc(cap);
    FUZZ_CHECK(out);
    int rc = spark_cookie_get(header, name, out, cap);
    if (rc >= 0) {
        FUZZ_CHECK((size_t)rc == strlen(out) && (size_t)rc < cap);
        for (int i = 0; i < rc; i++) {
            unsigned char c = (unsigned char)out[i];
            FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '"' && c != ';' && c != ',');
        }
    } else {
        FUZZ_CHECK(rc == SPARK_COOKIE_ABSENT || rc == SPARK_COOKIE_TOO_LONG ||
                   rc == SPARK_COOKIE_INVALID);
        FUZZ_CHECK(out[0] == '\0');
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *parts[FUZZ_MAX_PARTS];
    char *block = fuzz_split(data, size, '\n', 2, parts);
    lookup(parts[1], parts[0], 4096);
    lookup(parts[1], parts[0], 8);
    lookup(parts[1], parts[0], 1);
    free(block);
    char *header = fuzz_cstr(data, size);
    lookup(header, SPARK_AUTH_COOKIE, 4096);
    lookup(header, SPARK_AUTH_COOKIE, 16);
    free(header);
    return 0;
}
