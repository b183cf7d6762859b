/*
 * diff.h - the ops of the /spark `patch` message: from one tree to the next.
 *
 * The runtime keeps the tree it last sent to a viewer, renders again, and
 * sends spark_diff() of the two; the browser applies the ops to the DOM it
 * parsed from the earlier HTML (the applier in web/js/spark.js). The op
 * format, the order ops apply in and how paths are read are specified in
 * docs/patch.md; tests/support/patch_apply.c is the same applier in C.
 */
#ifndef SPARK_DIFF_H
#define SPARK_DIFF_H

#include "html_tree.h"

#include <stddef.h>

/* Appends to `out` a JSON array of the ops that turn the children of
 * `old_root` into those of `new_root` (the component's root: fragments, or
 * elements with the same tag whose attributes are diffed too). Returns the
 * number of ops (0 for "[]"), or -1 when out of memory. */
int spark_diff(const spark_node *old_root, const spark_node *new_root, spark_sbuf *out);

#endif
