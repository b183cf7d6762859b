/*
 * json_read.h - reading JSON that arrives from outside (json.c): client
 * frames, room payloads, channel messages.
 *
 * json-c alone reads more than JSON and changes some of what it reads:
 * NaN and Infinity are taken as numbers (then written back as bare words
 * that browsers and PostgreSQL refuse), an integer past 64 bits becomes
 * 18446744073709551615, and without its strict flag leading zeros and
 * trailing commas pass. Every reader of untrusted bytes goes through here,
 * so a value is either exactly JSON that keeps its meaning or refused.
 */
#ifndef SPARK_JSON_READ_H
#define SPARK_JSON_READ_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* The deepest nesting read: json-c's default, kept so that what one reader
 * accepts every other reads too. */
#define SPARK_JSON_MAX_DEPTH 32

/* Reads the whole of text[0..len) as one JSON value: RFC 8259 syntax,
 * valid UTF-8, at most SPARK_JSON_MAX_DEPTH levels deep, every number finite and every
 * integer from -(2^63 - 1) to 2^63 - 1. Returns true with *out set (NULL for JSON null;
 * the caller puts it), or false and *out NULL. */
bool spark_json_read(const char *text, size_t len, json_object **out);

/* The same, at most `depth` levels deep: for a value that will be written
 * inside others, so that the whole still reads. */
bool spark_json_read_nested(const char *text, size_t len, int depth, json_object **out);

#endif
