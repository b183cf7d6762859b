/*
 * router.c - matching request paths against "/chat/:room_id" patterns.
 *
 * Patterns are few and short, so matching walks the two strings segment by
 * segment instead of compiling anything; the cost is a few comparisons per
 * registered channel on each upgrade request.
 *
 * The one percent-decoder of the runtime lives here too: path segments and
 * form fields (routes.c) are decoded alike, and differ only in '+'.
 */
#include "router.h"

#include <ctype.h>
#include <string.h>

static bool is_name_char(char ch) { return isalnum((unsigned char)ch) || ch == '_'; }

/* Length of the segment starting at s (up to the next '/' or the end). */
static size_t segment_len(const char *s) { return strcspn(s, "/"); }

bool spark_route_valid(const char *pattern) {
    if (!pattern || pattern[0] != '/') return false;
    if (strcmp(pattern, "/") == 0) return true;
    char names[SPARK_ROUTE_MAX_PARAMS][SPARK_ROUTE_MAX_NAME];
    size_t nparams = 0;
    const char *p = pattern + 1;
    for (;;) {
        size_t n = segment_len(p);
        if (n == 0) return false;
        if (p[0] == ':') {
            if (n < 2 || n - 1 >= SPARK_ROUTE_MAX_NAME || nparams == SPARK_ROUTE_MAX_PARAMS)
                return false;
            for (size_t i = 1; i < n; i++)
                if (!is_name_char(p[i])) return false;
            for (size_t i = 0; i < nparams; i++)
                if (strlen(names[i]) == n - 1 && memcmp(names[i], p + 1, n - 1) == 0) return false;
            memcpy(names[nparams], p + 1, n - 1);
            names[nparams++][n - 1] = '\0';
        }
        if (p[n] == '\0') return true;
        p += n + 1;
    }
}

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

long spark_url_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hex_value(s[i + 1]) : -1, lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
            if (lo < 0) return -1;
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (o + 1 >= cap) return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (long)o;
}

/* Percent-decodes one path segment into out. Returns false if it is badly
 * encoded, too long, or decodes to a control character or a slash. */
static bool decode_segment(const char *s, size_t n, char *out) {
    long len = spark_url_decode(s, n, false, out, SPARK_ROUTE_MAX_VALUE);
    for (long i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (ch < 0x20 || ch == 0x7f || ch == '/') return false;
    }
    return len > 0;
}

bool spark_route_match(const char *pattern, const char *path, spark_route_params *out) {
    spark_route_params scratch;
    if (!out) out = &scratch;
    out->count = 0;
    if (!pattern || !path || pattern[0] != '/' || path[0] != '/') return false;
    const char *p = pattern + 1, *s = path + 1;
    for (;;) {
        size_t pn = segment_len(p), sn = segment_len(s);
        if (pn > 0 && p[0] == ':') {
            if (sn == 0 || out->count == SPARK_ROUTE_MAX_PARAMS) return false;
            memcpy(out->param[out->count].name, p + 1, pn - 1);
            out->param[out->count].name[pn - 1] = '\0';
            if (!decode_segment(s, sn, out->param[out->count].value)) return false;
            out->count++;
        } else if (pn != sn || memcmp(p, s, pn) != 0) {
            return false;
        }
        if (p[pn] == '\0' || s[sn] == '\0') return p[pn] == '\0' && s[sn] == '\0';
        p += pn + 1;
        s += sn + 1;
    }
}

const char *spark_route_param(const spark_route_params *params, const char *name) {
    for (size_t i = 0; params && name && i < params->count; i++)
        if (strcmp(params->param[i].name, name) == 0) return params->param[i].value;
    return NULL;
}

bool spark_path_is_local(const char *path) {
    if (!path || path[0] != '/' || path[1] == '/' || path[1] == '\\') return false;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\') return false;
    return true;
}
