/*
 * tree_support.c - copying trees, parsing the serializer's output, and
 * checking a render built on the last one, for the tests (see support.h).
 */
#include "support.h"

#include "diff.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Copies what `n` holds into `c`, a node of the same kind in `t`. */
static int copy_into(spark_tree *t, spark_node *c, const spark_node *n) {
    c->opaque = n->opaque;
    if (n->tag && !(c->tag = spark_tree_strdup(t, n->tag, strlen(n->tag)))) return -1;
    if (n->text && !(c->text = spark_tree_strdup(t, n->text, strlen(n->text)))) return -1;
    for (size_t i = 0; i < n->nattrs; i++)
        if (spark_tree_set_attr(t, c, n->attrs[i].name, n->attrs[i].value) != 0) return -1;
    for (size_t i = 0; i < n->nkids; i++) {
        spark_node *k = spark_tree_new_node(t, n->kids[i]->kind);
        if (!k || copy_into(t, k, n->kids[i]) != 0 || spark_tree_insert_kid(t, c, c->nkids, k) != 0)
            return -1;
    }
    c->opaque = n->opaque;
    return 0;
}

spark_tree *spark_tree_copy(const spark_node *root) {
    spark_tree *t = spark_tree_new(root->kind);
    if (t && copy_into(t, spark_tree_root_mut(t), root) != 0) {
        spark_tree_free(t);
        return NULL;
    }
    return t;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f'; }

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Appends the UTF-8 of code point `cp` to `out`. */
static void put_utf8(spark_sbuf *out, unsigned long cp) {
    char u[4];
    size_t n;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    spark_sbuf_append(out, u, n);
}

static int digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) with the references the serializer writes, plus numeric
 * ones, into an arena string. */
static char *decode(spark_tree *t, const char *s, size_t n) {
    static const struct {
        const char *name;
        const char *text;
    } refs[] = {{"&amp;", "&"},   {"&lt;", "<"},          {"&gt;", ">"},
                {"&quot;", "\""}, {"&nbsp;", "\xC2\xA0"}, {"&#39;", "'"}};
    spark_sbuf b = {0};
    spark_sbuf_append(&b, "", 0);
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&') {
            size_t j = i;
            while (j < n && s[j] != '&')
                j++;
            spark_sbuf_append(&b, s + i, j - i);
            i = j;
            continue;
        }
        bool done = false;
        for (size_t r = 0; r < sizeof refs / sizeof refs[0] && !done; r++) {
            size_t len = strlen(refs[r].name);
            if (n - i >= len && memcmp(s + i, refs[r].name, len) == 0) {
                spark_sbuf_puts(&b, refs[r].text);
                i += len;
                done = true;
            }
        }
        if (!done && i + 2 < n && s[i + 1] == '#') {
            size_t j = i + 2;
            int base = 10;
            if (s[j] == 'x' || s[j] == 'X') base = 16, j++;
            unsigned long cp = 0;
            size_t digits = 0;
            for (; j < n && digits < 8; j++, digits++) {
                int d = digit_value(s[j]);
                if (d < 0 || d >= base) break;
                cp = cp * (unsigned long)base + (unsigned long)d;
            }
            if (digits && j < n && s[j] == ';') {
                put_utf8(&b, cp);
                i = j + 1;
                done = true;
            }
        }
        if (!done) spark_sbuf_putc(&b, s[i++]);
    }
    char *d = b.failed ? NULL : spark_tree_clean_copy(t, b.data, b.len);
    spark_sbuf_free(&b);
    return d;
}

/* Finds the end tag `</tag` (any case) from s[i]; returns its offset or n. */
static size_t find_end_tag(const char *s, size_t i, size_t n, const char *tag) {
    size_t tl = strlen(tag);
    for (; i + 2 + tl <= n; i++) {
        if (s[i] != '<' || s[i + 1] != '/') continue;
        size_t k = 0;
        while (k < tl && (s[i + 2 + k] | 0x20) == tag[k])
            k++;
        if (k == tl) return i;
    }
    return n;
}

typedef enum { PARSE_OK, PARSE_UNSUPPORTED, PARSE_OOM } parse_result;

static parse_result append_text_kid(spark_tree *t, spark_node *parent, const char *s, size_t n,
                                    spark_node_kind kind) {
    if (n == 0) return PARSE_OK;
    spark_node *k = spark_tree_new_node(t, kind);
    if (!k) return PARSE_OOM;
    k->text = kind == SPARK_NODE_TEXT ? decode(t, s, n) : spark_tree_clean_copy(t, s, n);
    if (!k->text) return PARSE_OOM;
    spark_node *last = parent->nkids ? parent->kids[parent->nkids - 1] : NULL;
    if (kind == SPARK_NODE_TEXT && last && last->kind == SPARK_NODE_TEXT) return PARSE_UNSUPPORTED;
    return spark_tree_insert_kid(t, parent, parent->nkids, k) == 0 ? PARSE_OK : PARSE_OOM;
}

static parse_result parse_into(spark_tree *t, spark_node *frag, const char *s, size_t n) {
    spark_node *stack[256];
    size_t depth = 0;
    spark_node *top = frag;
    size_t i = 0;
    while (i < n) {
        if (s[i] != '<') {
            size_t j = i;
            while (j < n && s[j] != '<')
                j++;
            parse_result r = append_text_kid(t, top, s + i, j - i, SPARK_NODE_TEXT);
            if (r != PARSE_OK) return r;
            i = j;
            continue;
        }
        if (i + 1 < n && s[i + 1] == '/') {
            size_t j = i + 2, start = j;
            while (j < n && s[j] != '>')
                j++;
            if (j == n || top == frag || j - start != strlen(top->tag) ||
                strncasecmp(s + start, top->tag, j - start) != 0)
                return PARSE_UNSUPPORTED;
            top = --depth ? stack[depth - 1] : frag;
            i = j + 1;
            continue;
        }
        if (i + 1 >= n || !is_alpha(s[i + 1])) return PARSE_UNSUPPORTED;
        size_t j = i + 1;
        while (j < n && !is_space(s[j]) && s[j] != '>' && s[j] != '/')
            j++;
        spark_node *el = spark_tree_new_node(t, SPARK_NODE_ELEMENT);
        char *tag = el ? spark_tree_strdup(t, s + i + 1, j - i - 1) : NULL;
        if (!tag) return PARSE_OOM;
        for (char *c = tag; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
        el->tag = tag;
        for (;;) {
            while (j < n && is_space(s[j]))
                j++;
            if (j < n && s[j] == '>') {
                j++;
                break;
            }
            if (j + 1 < n && s[j] == '/' && s[j + 1] == '>') {
                j += 2;
                break;
            }
            if (j >= n) return PARSE_UNSUPPORTED;
            size_t ns = j;
            while (j < n && !is_space(s[j]) && s[j] != '>' && s[j] != '/' && s[j] != '=')
                j++;
            if (j == ns) return PARSE_UNSUPPORTED;
            char *name = spark_tree_strdup(t, s + ns, j - ns);
            char *value;
            if (!name) return PARSE_OOM;
            for (char *c = name; *c; c++)
                if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
            if (j < n && s[j] == '=') {
                j++;
                if (j >= n || (s[j] != '"' && s[j] != '\'')) return PARSE_UNSUPPORTED;
                char q = s[j++];
                size_t vs = j;
                while (j < n && s[j] != q)
                    j++;
                if (j == n) return PARSE_UNSUPPORTED;
                value = decode(t, s + vs, j - vs);
                j++;
            } else {
                value = spark_tree_strdup(t, "", 0);
            }
            if (!value) return PARSE_OOM;
            if (!spark_node_attr(el, name) && spark_tree_set_attr(t, el, name, value) != 0)
                return PARSE_OOM;
        }
        if (spark_tree_insert_kid(t, top, top->nkids, el) != 0) return PARSE_OOM;
        i = j;
        if (spark_html_is_void(tag)) continue;
        bool rcdata = false, raw = spark_html_holds_text_only(tag, &rcdata) && !rcdata;
        bool lf =
            strcmp(tag, "pre") == 0 || strcmp(tag, "textarea") == 0 || strcmp(tag, "listing") == 0;
        if (lf && i < n && s[i] == '\n') i++;
        if (spark_html_holds_text_only(tag, NULL)) {
            size_t end = find_end_tag(s, i, n, tag);
            if (end == n) return PARSE_UNSUPPORTED;
            parse_result r =
                append_text_kid(t, el, s + i, end - i, raw ? SPARK_NODE_RAW : SPARK_NODE_TEXT);
            if (r != PARSE_OK) return r;
            i = end + 2 + strlen(tag);
            if (i >= n || s[i] != '>') return PARSE_UNSUPPORTED;
            i++;
            continue;
        }
        if (depth == sizeof stack / sizeof stack[0]) return PARSE_UNSUPPORTED;
        stack[depth++] = el;
        top = el;
    }
    return depth == 0 ? PARSE_OK : PARSE_UNSUPPORTED;
}

spark_node *spark_tree_parse(spark_tree *t, const char *html, size_t len) {
    spark_node *frag = spark_tree_new_node(t, SPARK_NODE_FRAGMENT);
    if (!frag) return NULL;
    parse_result r = parse_into(t, frag, html, len);
    if (r == PARSE_OOM) return NULL;
    if (r == PARSE_UNSUPPORTED) {
        /* Keep the markup verbatim: it still serializes byte for byte. */
        frag->nkids = 0;
        frag->opaque = false;
        if (append_text_kid(t, frag, html, len, SPARK_NODE_RAW) != PARSE_OK) return NULL;
    }
    return frag;
}

/* ---- renders built on the last one ---- */

static char *html_of(const spark_node *root) {
    spark_sbuf b = {0};
    spark_sbuf_append(&b, "", 0);
    spark_node_serialize(root, &b);
    if (b.failed) spark_sbuf_free(&b);
    return b.data;
}

const char *spark_check_rerender(const spark_node *last, const spark_node *now,
                                 const spark_node *fresh) {
    const char *why = NULL;
    char *want = html_of(fresh), *got = html_of(now), *applied = NULL, err[200] = "";
    spark_sbuf ops = {0};
    spark_tree *patched = NULL;
    if (!want || !got) {
        why = "out of memory";
    } else if (strcmp(want, got) != 0) {
        why = "the render differs from a fresh one";
        fprintf(stderr, "want: %s\ngot:  %s\n", want, got);
    } else if (!spark_node_equal(now, fresh)) {
        why = "the render is not a fresh one's tree";
    } else if (last && (spark_diff(last, now, &ops) < 0 || ops.failed)) {
        why = "the diff failed";
    } else if (last && !(patched = spark_patch_apply(last, ops.data, err, sizeof err))) {
        why = "the diff does not apply";
        fprintf(stderr, "%s\nops: %s\n", err, ops.data);
    } else if (last &&
               (!(applied = html_of(spark_tree_root(patched))) || strcmp(applied, want) != 0)) {
        why = "the diff applied does not give the render";
        fprintf(stderr, "want: %s\ngot:  %s\n", want, applied ? applied : "");
    }
    free(want);
    free(got);
    free(applied);
    spark_tree_free(patched);
    spark_sbuf_free(&ops);
    return why;
}
