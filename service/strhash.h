/*
 * strhash.h - the string hash of the runtime's own hash tables (rooms,
 * component instances): FNV-1a, short and good enough for keys that clients
 * choose but cannot make collide on purpose at any useful scale, since each
 * bucket is a plain list that stays correct however long it gets.
 */
#ifndef SPARK_STRHASH_H
#define SPARK_STRHASH_H

#include <stdint.h>

static inline uint32_t spark_strhash(const char *s) {
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

#endif
