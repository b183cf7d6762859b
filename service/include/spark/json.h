/*
 * json.h - just enough JSON for channel and component authors: read the
 * fields of a message, build an object to send.
 *
 *     spark_json *in = spark_json_parse(data, len);       // NULL: not JSON
 *     const char *action = spark_json_str(in, "action");  // NULL: absent
 *     spark_json *out = spark_json_object();
 *     spark_json_set_str(out, "type", "chat");
 *     spark_conn_send_json(c, out);
 *     spark_json_free(out);
 *     spark_json_free(in);
 *
 * Ownership: every spark_json is freed by its creator with spark_json_free.
 * Strings returned by getters belong to the spark_json and live until it is
 * changed or freed.
 */
#ifndef SPARK_JSON_H
#define SPARK_JSON_H

#include <spark/spark.h>

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spark_json spark_json;

/* Parses `len` bytes of JSON text. NULL if it is not exactly one JSON
 * value (trailing garbage included) in strict JSON: valid UTF-8, no NaN or
 * Infinity, every number finite and every integer within +-(2^63 - 1), so
 * that what parses is written back with the same meaning. */
SPARK_API spark_json *spark_json_parse(const char *text, size_t len);

/* A new empty object. */
SPARK_API spark_json *spark_json_object(void);

SPARK_API void spark_json_free(spark_json *json);

SPARK_API bool spark_json_is_object(const spark_json *json);

/* Reading fields of an object. Absent keys and wrong types read as absent.
 * The number getters also take a string that is a number and nothing else
 * ("42", "-1.5"), as browsers send form values; spark_json_int takes no
 * fraction. */
SPARK_API bool spark_json_has(const spark_json *json, const char *key);
SPARK_API const char *spark_json_str(const spark_json *json, const char *key);
SPARK_API bool spark_json_int(const spark_json *json, const char *key, long long *out);
SPARK_API bool spark_json_double(const spark_json *json, const char *key, double *out);
SPARK_API bool spark_json_bool(const spark_json *json, const char *key, bool *out);

/* Setting fields of an object (replacing any old value). set_raw parses
 * `json_text` and returns -1 if it is not JSON, or nests more than 31
 * levels deep (with the object around it, 32: the most a parse reads); the
 * others return 0, or -1 when `json` is not an object (or the double is
 * not finite). */
SPARK_API int spark_json_set_str(spark_json *json, const char *key, const char *value);
SPARK_API int spark_json_set_int(spark_json *json, const char *key, long long value);
SPARK_API int spark_json_set_double(spark_json *json, const char *key, double value);
SPARK_API int spark_json_set_bool(spark_json *json, const char *key, bool value);
SPARK_API int spark_json_set_raw(spark_json *json, const char *key, const char *json_text);

/* The compact text of the value; valid until the next change or free. */
SPARK_API const char *spark_json_text(spark_json *json, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
