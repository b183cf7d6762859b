/*
 * fuzz.h - what the libFuzzer targets in tests/fuzz share: the entry point's
 * prototype, splitting one input into NUL-terminated parts, and a check that
 * aborts (so libFuzzer records a crash) when an invariant breaks.
 */
#ifndef SPARK_FUZZ_H
#define SPARK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define FUZZ_MAX_PARTS 4

/* Splits data at the first (n - 1) bytes equal to `sep` into n malloc'd,
 * NUL-terminated parts (the last takes the rest; missing parts are "").
 * Returns one block the caller frees; parts[i] point into it. */
static inline char *fuzz_split(const uint8_t *data, size_t size, char sep, size_t n,
                               char *parts[FUZZ_MAX_PARTS]) {
    char *block = malloc(size + n);
    if (!block) abort();
    size_t at = 0, part = 0;
    parts[0] = block;
    for (size_t i = 0; i < size; i++) {
        if ((char)data[i] == sep && part + 1 < n) {
            block[at++] = '\0';
            parts[++part] = block + at;
        } else {
            block[at++] = (char)data[i];
        }
    }
    block[at++] = '\0';
    while (++part < n) {
        parts[part] = block + at;
        block[at++] = '\0';
    }
    return block;
}

/* A malloc'd copy of the input with a NUL after it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
