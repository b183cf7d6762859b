/*
 * patch_apply.c - the reference applier of patch ops over our own trees
 * (see support.h and docs/patch.md), for the tests.
 *
 * The applier is deliberately plain: it executes exactly the documented
 * semantics on a copy of a tree, as the browser does on the DOM.
 */
#include "support.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    spark_tree *tree;
    char *err;
    size_t errlen;
} applier;

static int fail(applier *ap, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(applier *ap, const char *fmt, ...) {
    va_list va;
    va_start(va, fmt);
    vsnprintf(ap->err, ap->errlen, fmt, va);
    va_end(va);
    return -1;
}

/* Walks `n` indices of `path` from the root. */
static spark_node *resolve(applier *ap, json_object *path, size_t n) {
    spark_node *node = spark_tree_root_mut(ap->tree);
    for (size_t i = 0; i < n; i++) {
        json_object *ix = json_object_array_get_idx(path, i);
        if (!json_object_is_type(ix, json_type_int)) return NULL;
        int64_t k = json_object_get_int64(ix);
        if (k < 0 || (size_t)k >= node->nkids) return NULL;
        node = node->kids[k];
    }
    return node;
}

static const char *arg_string(json_object *op, size_t i) {
    json_object *v = json_object_array_get_idx(op, i);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t arg_int(json_object *op, size_t i, int64_t dflt) {
    json_object *v = json_object_array_get_idx(op, i);
    if (!v) return dflt;
    return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

static void remove_kids(spark_node *parent, size_t at, size_t count) {
    memmove(parent->kids + at, parent->kids + at + count,
            (parent->nkids - at - count) * sizeof *parent->kids);
    parent->nkids -= count;
    spark_tree_refresh(parent);
}

static int insert_html(applier *ap, spark_node *parent, size_t at, const char *html) {
    spark_node *frag = spark_tree_parse(ap->tree, html, strlen(html));
    if (!frag) return fail(ap, "out of memory");
    for (size_t k = 0; k < frag->nkids; k++)
        if (spark_tree_insert_kid(ap->tree, parent, at + k, frag->kids[k]) != 0)
            return fail(ap, "out of memory");
    spark_tree_refresh(parent);
    return 0;
}

static int apply_op(applier *ap, json_object *op) {
    const char *code = arg_string(op, 0);
    json_object *path = json_object_array_get_idx(op, 1);
    if (!code || !json_object_is_type(path, json_type_array)) return fail(ap, "malformed op");
    size_t plen = json_object_array_length(path);
    bool child_op = strcmp(code, "i") == 0 || strcmp(code, "r") == 0 || strcmp(code, "p") == 0;
    if (child_op) {
        if (plen == 0) return fail(ap, "op %s needs a child index", code);
        spark_node *parent = resolve(ap, path, plen - 1);
        int64_t at = arg_int(path, plen - 1, -1);
        if (!parent || parent->kind == SPARK_NODE_TEXT || parent->kind == SPARK_NODE_RAW || at < 0)
            return fail(ap, "op %s: no such parent", code);
        if (strcmp(code, "i") == 0) {
            const char *html = arg_string(op, 2);
            if (!html || (size_t)at > parent->nkids) return fail(ap, "op i: bad index or html");
            return insert_html(ap, parent, (size_t)at, html);
        }
        if (strcmp(code, "r") == 0) {
            int64_t count = arg_int(op, 2, 1);
            if (count < 1 || (size_t)at + (size_t)count > parent->nkids)
                return fail(ap, "op r: bad range");
            remove_kids(parent, (size_t)at, (size_t)count);
            return 0;
        }
        const char *html = arg_string(op, 2);
        if (!html || (size_t)at >= parent->nkids) return fail(ap, "op p: bad index or html");
        remove_kids(parent, (size_t)at, 1);
        return insert_html(ap, parent, (size_t)at, html);
    }
    spark_node *node = resolve(ap, path, plen);
    if (!node) return fail(ap, "op %s: no such node", code);
    if (strcmp(code, "t") == 0) {
        const char *text = arg_string(op, 2);
        if (!text || node->kind != SPARK_NODE_TEXT) return fail(ap, "op t: not a text node");
        node->text = spark_tree_strdup(ap->tree, text, strlen(text));
        return node->text ? 0 : fail(ap, "out of memory");
    }
    if (strcmp(code, "s") == 0 || strcmp(code, "u") == 0) {
        const char *name = arg_string(op, 2), *value = arg_string(op, 3);
        if (node->kind != SPARK_NODE_ELEMENT || !name) return fail(ap, "op %s: bad target", code);
        if (code[0] == 'u') {
            spark_tree_remove_attr(node, name);
            return 0;
        }
        if (!value) return fail(ap, "op s: no value");
        return spark_tree_set_attr(ap->tree, node, name, value) == 0 ? 0
                                                                     : fail(ap, "out of memory");
    }
    if (node->kind == SPARK_NODE_TEXT || node->kind == SPARK_NODE_RAW)
        return fail(ap, "op %s: not a parent", code);
    if (strcmp(code, "m") == 0) {
        int64_t from = arg_int(op, 2, -1), to = arg_int(op, 3, -1);
        if (from < 0 || to < 0 || (size_t)from >= node->nkids || (size_t)to >= node->nkids)
            return fail(ap, "op m: bad index");
        spark_node *moved = node->kids[from];
        remove_kids(node, (size_t)from, 1);
        return spark_tree_insert_kid(ap->tree, node, (size_t)to, moved) == 0
                   ? 0
                   : fail(ap, "out of memory");
    }
    if (strcmp(code, "h") == 0) {
        const char *html = arg_string(op, 2);
        if (!html) return fail(ap, "op h: no html");
        node->nkids = 0;
        return insert_html(ap, node, 0, html);
    }
    return fail(ap, "unknown op \"%.8s\"", code);
}

spark_tree *spark_patch_apply(const spark_node *root, const char *ops_json, char *err,
                              size_t errlen) {
    applier ap = {.err = err, .errlen = errlen};
    json_object *ops = json_tokener_parse(ops_json);
    if (!json_object_is_type(ops, json_type_array)) {
        fail(&ap, "ops are not a JSON array");
        json_object_put(ops);
        return NULL;
    }
    ap.tree = spark_tree_copy(root);
    if (!ap.tree) {
        fail(&ap, "out of memory");
        json_object_put(ops);
        return NULL;
    }
    size_t n = json_object_array_length(ops);
    for (size_t i = 0; i < n; i++) {
        json_object *op = json_object_array_get_idx(ops, i);
        if (!json_object_is_type(op, json_type_array) || apply_op(&ap, op) != 0) {
            if (!json_object_is_type(op, json_type_array)) fail(&ap, "op %zu is not an array", i);
            spark_tree_free(ap.tree);
            ap.tree = NULL;
            break;
        }
    }
    json_object_put(ops);
    return ap.tree;
}
