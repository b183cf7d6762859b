/*
 * table.h - the runtime's one hash table: string keys to entries that the
 * caller embeds in its own structs (rooms, component instances).
 *
 * Keys are chosen by clients (a room name, a component id), so they are
 * hashed with SipHash under a key drawn at random per table: nobody outside
 * can aim many keys at one bucket. The table doubles when it holds more
 * entries than buckets, so a lookup stays a short list whatever the load.
 *
 * Ownership: the table owns only its bucket array. Entries belong to their
 * structs; the key string must live as long as the entry is in the table.
 */
#ifndef SPARK_TABLE_H
#define SPARK_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct spark_table_entry {
    struct spark_table_entry *next;
    const char *key;
    uint64_t hash;
} spark_table_entry;

typedef struct {
    spark_table_entry **buckets;
    size_t nbuckets, count;
    unsigned char seed[16];
} spark_table;

/* Returns 0, or -1 when out of memory. */
int spark_table_init(spark_table *t);
void spark_table_free(spark_table *t);

spark_table_entry *spark_table_find(const spark_table *t, const char *key);

/* Adds `e` under `key` (not copied; not already present). Never fails: a
 * table that cannot grow just gets longer lists. */
void spark_table_add(spark_table *t, spark_table_entry *e, const char *key);
void spark_table_remove(spark_table *t, spark_table_entry *e);

/* Walks every entry; the current one may be removed (even freed). */
#define SPARK_TABLE_EACH(t, e)                                                                     \
    for (size_t e##_b = 0; e##_b < (t)->nbuckets; e##_b++)                                         \
        for (spark_table_entry *e = (t)->buckets[e##_b], *e##_next = e ? e->next : NULL; e;        \
             e = e##_next, e##_next = e ? e->next : NULL)

#endif
