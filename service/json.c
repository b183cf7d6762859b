/*
 * json.c - the public JSON helpers, a thin layer over json-c.
 *
 * Authors of channels and components get a handful of calls instead of
 * json-c's reference counting: a spark_json owns one json-c value and the
 * text last rendered from it.
 */
#include <spark/json.h>

#include "json_number.h"
#include "json_read.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct spark_json {
    json_object *value;
};

/* ---- numbers, for every getter (json_number.h) ------------------------------ */

static bool signed_start(const char *s) {
    return *s == '-' || *s == '+' || (*s >= '0' && *s <= '9');
}

bool spark_json_as_int(json_object *v, long long *out) {
    if (json_object_is_type(v, json_type_int)) {
        *out = (long long)json_object_get_int64(v);
        return true;
    }
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    if (!s || !signed_start(s)) return false;
    errno = 0;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (*end || end == s || errno == ERANGE) return false;
    *out = n;
    return true;
}

bool spark_json_as_double(json_object *v, double *out) {
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        *out = json_object_get_double(v);
        return true;
    }
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    /* strtod also reads "inf", "nan", hex and leading spaces: not numbers here. */
    if (!s || !(signed_start(s) || *s == '.') || s[strspn(s, "0123456789+-.eE")]) return false;
    errno = 0;
    char *end;
    double d = strtod(s, &end);
    if (*end || end == s || errno == ERANGE || !isfinite(d)) return false;
    *out = d;
    return true;
}

static spark_json *wrap(json_object *value) {
    spark_json *json = malloc(sizeof *json);
    if (!json) {
        json_object_put(value);
        return NULL;
    }
    json->value = value;
    return json;
}

/* Numbers that json-c took in but cannot give back as they were: NaN,
 * Infinity, an overflowing exponent (a double that is not finite) and an
 * integer beyond int64: json-c keeps a large one as uint64 (clamped) and
 * clamps a small one to INT64_MIN without a word, so INT64_MIN itself
 * cannot be told apart and is refused too. */
static bool representable(json_object *v) {
    switch (json_object_get_type(v)) {
    case json_type_double:
        return isfinite(json_object_get_double(v));
    case json_type_int:
        return json_object_get_int64(v) != INT64_MIN &&
               (json_object_get_int64(v) != INT64_MAX || json_object_get_uint64(v) == INT64_MAX);
    case json_type_array: {
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++)
            if (!representable(json_object_array_get_idx(v, i))) return false;
        return true;
    }
    case json_type_object: {
        json_object_object_foreach(v, key, child) {
            (void)key;
            if (!representable(child)) return false;
        }
        return true;
    }
    default:
        return true;
    }
}

bool spark_json_read(const char *text, size_t len, json_object **out) {
    return spark_json_read_nested(text, len, SPARK_JSON_MAX_DEPTH, out);
}

bool spark_json_read_nested(const char *text, size_t len, int depth, json_object **out) {
    *out = NULL;
    if (!text || len > (size_t)INT32_MAX || depth < 1) return false;
    json_tokener *tok = json_tokener_new_ex(depth);
    if (!tok) return false;
    /* Strict: no leading zeros, cut exponents, trailing commas, which
     * json-c otherwise reads and writes back as other numbers. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *value = json_tokener_parse_ex(tok, text, (int)len);
    bool complete = json_tokener_get_error(tok) == json_tokener_success &&
                    json_tokener_get_parse_end(tok) == len;
    /* A number or literal that ends the text ("42", "true", "null") could
     * go on in a next chunk, so json-c waits for more: the end of the text
     * is the end of the value. */
    if (json_tokener_get_error(tok) == json_tokener_continue &&
        json_tokener_get_parse_end(tok) == len) {
        value = json_tokener_parse_ex(tok, "", 1);
        complete = json_tokener_get_error(tok) == json_tokener_success;
    }
    json_tokener_free(tok);
    if (!complete || !representable(value)) {
        json_object_put(value);
        return false;
    }
    *out = value;
    return true;
}

SPARK_API spark_json *spark_json_parse(const char *text, size_t len) {
    json_object *value;
    /* JSON "null" reads as a NULL json_object: keep it as a value. */
    return spark_json_read(text, len, &value) ? wrap(value) : NULL;
}

SPARK_API spark_json *spark_json_object(void) {
    json_object *value = json_object_new_object();
    return value ? wrap(value) : NULL;
}

SPARK_API void spark_json_free(spark_json *json) {
    if (!json) return;
    json_object_put(json->value);
    free(json);
}

SPARK_API bool spark_json_is_object(const spark_json *json) {
    return json && json_object_is_type(json->value, json_type_object);
}

static json_object *any_field(const spark_json *json, const char *key);

static json_object *field(const spark_json *json, const char *key, json_type type) {
    json_object *v = any_field(json, key);
    return json_object_is_type(v, type) ? v : NULL;
}

SPARK_API bool spark_json_has(const spark_json *json, const char *key) {
    return spark_json_is_object(json) && key && json_object_object_get_ex(json->value, key, NULL);
}

SPARK_API const char *spark_json_str(const spark_json *json, const char *key) {
    json_object *v = field(json, key, json_type_string);
    return v ? json_object_get_string(v) : NULL;
}

static json_object *any_field(const spark_json *json, const char *key) {
    json_object *v = NULL;
    return spark_json_is_object(json) && key && json_object_object_get_ex(json->value, key, &v)
               ? v
               : NULL;
}

SPARK_API bool spark_json_int(const spark_json *json, const char *key, long long *out) {
    return spark_json_as_int(any_field(json, key), out);
}

SPARK_API bool spark_json_double(const spark_json *json, const char *key, double *out) {
    return spark_json_as_double(any_field(json, key), out);
}

SPARK_API bool spark_json_bool(const spark_json *json, const char *key, bool *out) {
    json_object *v = field(json, key, json_type_boolean);
    if (!v) return false;
    *out = json_object_get_boolean(v);
    return true;
}

static int set(spark_json *json, const char *key, json_object *value) {
    if (!spark_json_is_object(json) || !key || !value) {
        json_object_put(value);
        return -1;
    }
    return json_object_object_add(json->value, key, value) == 0 ? 0 : -1;
}

SPARK_API int spark_json_set_str(spark_json *json, const char *key, const char *value) {
    return set(json, key, value ? json_object_new_string(value) : NULL);
}

SPARK_API int spark_json_set_int(spark_json *json, const char *key, long long value) {
    return set(json, key, json_object_new_int64((int64_t)value));
}

SPARK_API int spark_json_set_double(spark_json *json, const char *key, double value) {
    return set(json, key, isfinite(value) ? json_object_new_double(value) : NULL);
}

SPARK_API int spark_json_set_bool(spark_json *json, const char *key, bool value) {
    return set(json, key, json_object_new_boolean(value));
}

SPARK_API int spark_json_set_raw(spark_json *json, const char *key, const char *json_text) {
    json_object *value;
    /* One level less than a parse reads: the object it goes in is one more,
     * and what spark_json_text writes must parse again. */
    if (!json_text ||
        !spark_json_read_nested(json_text, strlen(json_text), SPARK_JSON_MAX_DEPTH - 1, &value))
        return -1;
    if (!spark_json_is_object(json) || !key) {
        json_object_put(value);
        return -1;
    }
    return json_object_object_add(json->value, key, value) == 0 ? 0 : -1;
}

SPARK_API const char *spark_json_text(spark_json *json, size_t *len) {
    size_t n = 4;
    const char *text =
        json ? json_object_to_json_string_length(
                   json->value, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n)
             : "null";
    if (len) *len = n;
    return text;
}
