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
 *         have to apply.
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
        spark_tree_free(b);
    }
    spark_tree_free(a);
    free(block);
    return 0;
}
