/*
 * support.h - test support: a parser for the serializer's own output, a
 * deep copy of a tree, and the reference applier of patch ops.
 *
 * None of this ships in libspark: the runtime never parses HTML or applies
 * patches (browsers do). The unit suites and benchmarks use them to check,
 * on many random pairs, that spark_diff's ops rebuild the new tree exactly,
 * and the applier documents docs/patch.md in executable form.
 */
#ifndef SPARK_TEST_SUPPORT_H
#define SPARK_TEST_SUPPORT_H

#include "html_tree.h"

#include <stddef.h>

/* Deep-copies `root` (any node kind) into a new tree that owns all of it;
 * NULL when out of memory. */
spark_tree *spark_tree_copy(const spark_node *root);

/* Parses HTML as the serializer writes it (double-quoted attributes, the
 * five entities it emits, numeric references, void and raw-text elements)
 * into the children of a new fragment allocated in `t`. Markup outside that
 * subset yields a fragment holding one raw node with the input verbatim, so
 * the serialization still round-trips. NULL only when out of memory. */
spark_node *spark_tree_parse(spark_tree *t, const char *html, size_t len);

/* Applies a JSON array of ops to a copy of `root`. Returns the new tree
 * (the caller frees it with spark_tree_free), or NULL with a reason in
 * `err` when an op is malformed or does not fit the tree. */
spark_tree *spark_patch_apply(const spark_node *root, const char *ops_json, char *err,
                              size_t errlen);

/* Checks `now`, a render built on `last` (spark_html_new_reusing; last may
 * be NULL), against `fresh`, a fresh render of the same inputs: the same
 * HTML, equal trees, and spark_diff(last, now) applied to last gives that
 * HTML. NULL when all hold, else which failed (the HTML to stderr). */
const char *spark_check_rerender(const spark_node *last, const spark_node *now,
                                 const spark_node *fresh);

#endif
