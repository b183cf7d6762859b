/*
 * router.h - route patterns such as "/chat/:room_id" and their parameters.
 *
 * A pattern is a path of literal segments and ":name" segments. A request
 * path matches when it has as many segments, every literal is equal, and
 * every parameter segment is non-empty. Parameter values are
 * percent-decoded, and a value that decodes to a control character or a
 * "/" is refused rather than passed on to a channel.
 */
#ifndef SPARK_ROUTER_H
#define SPARK_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#define SPARK_ROUTE_MAX_PARAMS 4
#define SPARK_ROUTE_MAX_NAME   32
#define SPARK_ROUTE_MAX_VALUE  256

typedef struct {
    size_t count;
    struct {
        char name[SPARK_ROUTE_MAX_NAME];
        char value[SPARK_ROUTE_MAX_VALUE];
    } param[SPARK_ROUTE_MAX_PARAMS];
} spark_route_params;

/* True if `pattern` is well formed: starts with "/", has no empty segment,
 * parameter names are 1-31 of [A-Za-z0-9_], at most 4 of them, no repeats. */
bool spark_route_valid(const char *pattern);

/* Matches `path` (no query string) against a valid `pattern`, filling `out`
 * (may be NULL). Returns true on a match. */
bool spark_route_match(const char *pattern, const char *path, spark_route_params *out);

/* The value of parameter `name`, or NULL. */
const char *spark_route_param(const spark_route_params *params, const char *name);

/* Percent-decodes the n bytes at s into out (cap bytes, NUL-terminated);
 * with plus_is_space, '+' is a space (form bodies). Returns the decoded
 * length, or -1 when an escape is malformed or out is too small. What the
 * bytes decode to is the caller's to check. */
long spark_url_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t cap);

/* True if `path` is a path on this site that a browser cannot follow
 * elsewhere: it starts with one "/" (not "//host" or "/\host") and has no
 * control character or backslash. Where redirects may go. */
bool spark_path_is_local(const char *path);

#endif
