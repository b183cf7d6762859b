/*
 * fuzz_tree.c - the HTML tree parser of the tests (spark_tree_parse,
 * tests/support/tree_support.c) and the serializer behind it.
 *
 * Invariant: parse -> serialize -> parse -> serialize gives the same tree
 * and the same text the second time, and a copy of the tree is equal to it.
 * Markup outside the parser's subset becomes one raw node holding the input
 * as the builder stores text (control characters and invalid UTF-8
 * replaced), which may then parse as markup: there only the copy is checked.
 * The input ends at its first NUL: nodes hold C strings, so the verbatim
 * fallback for markup outside the parser's subset (a raw node) cannot keep
 * what follows a NUL, and the serializer never writes one.
 */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const spark_node empty = {.kind = SPARK_NODE_FRAGMENT};
    if (size > 16384) return 0;
    size = strnlen((const char *)data, size);
    spark_tree *t1 = spark_tree_copy(&empty), *t2 = spark_tree_copy(&empty);
    FUZZ_CHECK(t1 && t2);
    spark_node *first = spark_tree_parse(t1, (const char *)data, size);
    FUZZ_CHECK(first);
    char *html1 = serialize(first);
    bool fallback = first->nkids == 1 && first->kids[0]->kind == SPARK_NODE_RAW;
    spark_node *second = spark_tree_parse(t2, html1, strlen(html1));
    FUZZ_CHECK(second);
    char *html2 = serialize(second);
    if (!fallback && strcmp(html1, html2) != 0) {
        fprintf(stderr, "first:  %s\nsecond: %s\n", html1, html2);
        FUZZ_CHECK(!"serialize(parse(x)) is a fixed point");
    }
    FUZZ_CHECK(fallback || spark_node_equal(first, second));
    spark_tree *copy = spark_tree_copy(second);
    FUZZ_CHECK(copy && spark_node_equal(spark_tree_root(copy), second));
    spark_tree_free(copy);
    free(html1);
    free(html2);
    spark_tree_free(t1);
    spark_tree_free(t2);
    return 0;
}
