/*
 * table.c - a chained hash table with keyed hashes that doubles as it fills.
 */
#include "table.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_BUCKETS 64

static uint64_t hash_of(const spark_table *t, const char *key) {
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)key, strlen(key), t->seed);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

int spark_table_init(spark_table *t) {
    memset(t, 0, sizeof *t);
    if (sodium_init() < 0) return -1;
    randombytes_buf(t->seed, sizeof t->seed);
    t->buckets = calloc(FIRST_BUCKETS, sizeof *t->buckets);
    if (!t->buckets) return -1;
    t->nbuckets = FIRST_BUCKETS;
    return 0;
}

void spark_table_free(spark_table *t) {
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
}

spark_table_entry *spark_table_find(const spark_table *t, const char *key) {
    uint64_t h = hash_of(t, key);
    for (spark_table_entry *e = t->buckets[h % t->nbuckets]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0) return e;
    return NULL;
}

static void grow(spark_table *t) {
    size_t n = t->nbuckets * 2;
    spark_table_entry **b = calloc(n, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (spark_table_entry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash % n];
            b[e->hash % n] = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

void spark_table_add(spark_table *t, spark_table_entry *e, const char *key) {
    if (t->count >= t->nbuckets) grow(t);
    e->key = key;
    e->hash = hash_of(t, key);
    e->next = t->buckets[e->hash % t->nbuckets];
    t->buckets[e->hash % t->nbuckets] = e;
    t->count++;
}

void spark_table_remove(spark_table *t, spark_table_entry *e) {
    for (spark_table_entry **p = &t->buckets[e->hash % t->nbuckets]; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            t->count--;
            return;
        }
}
