/*
 * fuzz_patch.c - the reference patch applier (spark_patch_apply,
 * tests/support/patch_apply.c) and, through it, the diff.
 *
 * The first byte picks what the rest is:
 *   even: HTML '\0' OPS: the HTML is parsed and the ops (any bytes) applied,
 *         which must either succeed or give a reason;
 *   odd:  OLD '\0' NEW: both parsed, diffed, and the ops applied to OLD and
 *         to OLD parsed back from its HTML; both results must serialize
 *         exactly as NEW. Markup outside the parser's subset becomes one
 *         raw node of cleaned text (see fuzz_tree.c), which the applier may
 *         parse as markup, as a browser would: with such a tree the ops only
 *         have to apply. When the builder accepts both trees, they are
 *         also built again through it (spark_html), NEW once afresh and
 *         once reusing OLD's build (spark_html_new_reusing), as the runtime
 *         renders: both builds must be equal and diff to the same ops.
 */
#include "diff.h"
#include "fuzz.h"
#include "support.h"

#include <stdbool.h>

static char *serialize(const spark_node *n) {
    spark_sbuf b = {0};
    spark_sbuf_append(&b, "", 0);
    spark_node_serialize(n, &b);
    FUZZ_CHECK(!b.failed);
    return b.data;
}

static void apply_ops(const spark_node *root, const char *ops) {
    char err[200] = "";
    spark_tree *got = spark_patch_apply(root, ops, err, sizeof err);
    if (!got) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    free(serialize(spark_tree_root(got)));
    spark_tree_free(got);
}

static bool fallback(const spark_node *frag) {
    return frag->nkids == 1 && frag->kids[0]->kind == SPARK_NODE_RAW;
}

static void check_diff(const spark_node *old, const spark_node *new) {
    bool exact = !fallback(old) && !fallback(new);
    spark_sbuf ops = {0};
    FUZZ_CHECK(spark_diff(old, new, &ops) >= 0 && !ops.failed);
    char *want = serialize(new), *old_html = serialize(old), err[200] = "";
    spark_tree *got = spark_patch_apply(old, ops.data, err, sizeof err);
    if (!got) fprintf(stderr, "apply: %s\nops: %s\n", err, ops.data);
    FUZZ_CHECK(got);
    char *html = serialize(spark_tree_root(got));
    if (exact && strcmp(html, want) != 0) fprintf(stderr, "want: %s\ngot:  %s\n", want, html);
    FUZZ_CHECK(!exact || strcmp(html, want) == 0);
    free(html);
    spark_tree_free(got);

    static const spark_node empty = {.kind = SPARK_NODE_FRAGMENT};
    spark_tree *scratch = spark_tree_copy(&empty);
    FUZZ_CHECK(scratch);
    spark_node *parsed = spark_tree_parse(scratch, old_html, strlen(old_html));
    FUZZ_CHECK(parsed);
    got = spark_patch_apply(parsed, ops.data, err, sizeof err);
    if (!got) fprintf(stderr, "apply to parsed: %s\nold: %s\nops: %s\n", err, old_html, ops.data);
    FUZZ_CHECK(got);
    html = serialize(spark_tree_root(got));
    if (exact && strcmp(html, want) != 0)
        fprintf(stderr, "parsed: want: %s\ngot:  %s\n", want, html);
    FUZZ_CHECK(!exact || strcmp(html, want) == 0);
    free(html);
    spark_tree_free(got);
    spark_tree_free(scratch);
    free(want);
    free(old_html);
    spark_sbuf_free(&ops);
}

#define MAX_BUILD_ATTRS 16

/* Gives the children of `n` to the builder, as a render would. False when
 * an element has more attributes than one call here passes. */
static bool build(spark_html *h, const spark_node *n) {
    for (size_t i = 0; i < n->nkids; i++) {
        const spark_node *k = n->kids[i];
        if (k->kind == SPARK_NODE_TEXT) {
            spark_text(h, k->text);
            continue;
        }
        if (k->kind == SPARK_NODE_RAW) {
            spark_raw(h, k->text);
            continue;
        }
        if (k->nattrs > MAX_BUILD_ATTRS) return false;
        const char *a[2 * MAX_BUILD_ATTRS + 1] = {0};
        for (size_t j = 0; j < k->nattrs; j++) {
            a[2 * j] = k->attrs[j].name;
            a[2 * j + 1] = k->attrs[j].value;
        }
        spark_open(h, k->tag, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10],
                   a[11], a[12], a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21],
                   a[22], a[23], a[24], a[25], a[26], a[27], a[28], a[29], a[30], a[31],
                   (const char *)NULL);
        bool ok = build(h, k);
        spark_close(h);
        if (!ok) return false;
    }
    return true;
}

static char *diff_text(const spark_node *old, const spark_node *new) {
    spark_sbuf ops = {0};
    FUZZ_CHECK(spark_diff(old, new, &ops) >= 0 && !ops.failed);
    return ops.data;
}

static void check_reuse(const spark_node *old, const spark_node *new) {
    spark_html *a = spark_html_new(), *b = spark_html_new();
    FUZZ_CHECK(a && b);
    if (build(a, old) && build(b, new) && !spark_html_error(a) && !spark_html_error(b)) {
        spark_html *r = spark_html_new_reusing(a);
        FUZZ_CHECK(r && build(r, new));
        FUZZ_CHECK(!spark_html_error(r));
        FUZZ_CHECK(spark_node_equal(spark_html_root(r), spark_html_root(b)));
        char *want = serialize(spark_html_root(b)), *got = serialize(spark_html_root(r));
        FUZZ_CHECK(strcmp(want, got) == 0);
        char *fresh = diff_text(spark_html_root(a), spark_html_root(b));
        char *reused = diff_text(spark_html_root(a), spark_html_root(r));
        if (strcmp(fresh, reused) != 0) fprintf(stderr, "ops: %s\nreusing: %s\n", fresh, reused);
        FUZZ_CHECK(strcmp(fresh, reused) == 0);
        free(want);
        free(got);
        free(fresh);
        free(reused);
        spark_html_free(r);
    }
    spark_html_free(a);
    spark_html_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const spark_node empty = {.kind = SPARK_NODE_FRAGMENT};
    if (size == 0 || size > 16384) return 0;
    char *parts[FUZZ_MAX_PARTS];
    char *block = fuzz_split(data + 1, size - 1, '\0', 2, parts);
    spark_tree *a = spark_tree_copy(&empty);
    FUZZ_CHECK(a);
    spark_node *old = spark_tree_parse(a, parts[0], strlen(parts[0]));
    FUZZ_CHECK(old);
    if (data[0] % 2 == 0) {
        apply_ops(old, parts[1]);
    } else {
        spark_tree *b = spark_tree_copy(&empty);
        FUZZ_CHECK(b);
        spark_node *new = spark_tree_parse(b, parts[1], strlen(parts[1]));
        FUZZ_CHECK(new);
        check_diff(old, new);
        check_reuse(old, new);
        spark_tree_free(b);
    }
    spark_tree_free(a);
    free(block);
    return 0;
}
