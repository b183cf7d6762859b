/*
 * html_tree.h - the node tree behind the HTML builder, for the runtime only.
 *
 * Component authors see the opaque spark_html handle of <spark/html.h>; the
 * runtime needs more: walk what a render produced, serialize it, diff it
 * against the tree last sent to a viewer, and keep that tree after the
 * builder is gone. Every node and string of a tree lives in one arena, so a
 * tree is freed, or copied to outlive its builder, in one call.
 *
 * Invariants the builder guarantees and the diff relies on:
 *   - tag and attribute names are lowercase and match [a-z][a-z0-9-]*;
 *   - text and attribute values are valid UTF-8 without CR;
 *   - attributes passed the policy of <spark/html.h> (no on* handler, URL
 *     schemes checked), so a patch may set any of them through the DOM;
 *   - no text node is empty and no two text nodes are adjacent, so the
 *     browser's parse of the serialization has exactly the same children;
 *   - an element (or the root) with a raw child is `opaque`: the browser may
 *     parse raw HTML into any number of nodes, so nothing addresses inside it.
 */
#ifndef SPARK_HTML_TREE_H
#define SPARK_HTML_TREE_H

#include <spark/html.h>

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SPARK_NODE_FRAGMENT, /* the root: a component's children, no markup of its own */
    SPARK_NODE_ELEMENT,
    SPARK_NODE_TEXT, /* `text` unescaped; escaped when serialized */
    SPARK_NODE_RAW,  /* `text` trusted HTML, serialized verbatim */
} spark_node_kind;

typedef struct {
    const char *name;
    const char *value;
} spark_attr;

typedef struct spark_node spark_node;
struct spark_node {
    spark_node_kind kind;
    bool opaque;        /* element or fragment with a raw child */
    bool judged;        /* element with an attribute the policy judges (URL, trusted) */
    const char *tag;    /* element: lowercase tag name */
    const char *text;   /* text or raw node: its content */
    const char *key;    /* element: the value of its spark-key attribute, or NULL */
    unsigned tag_class; /* element built by spark_html: what its tag is to the parser */
    spark_attr *attrs;
    size_t nattrs, attrs_cap;
    spark_node **kids;
    size_t nkids, kids_cap;
};

/* The attribute that keys list children for the diff. */
#define SPARK_KEY_ATTR "spark-key"

/* ---- growable string buffer ---- */

/* A malloc'd, always NUL-terminated byte buffer. On allocation failure it
 * sets `failed` and ignores further appends, so callers check once at the
 * end. Zero-initialize it; release with spark_sbuf_free(). */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} spark_sbuf;

void spark_sbuf_append(spark_sbuf *b, const char *s, size_t n);
void spark_sbuf_puts(spark_sbuf *b, const char *s);
void spark_sbuf_putc(spark_sbuf *b, char c);
void spark_sbuf_printf(spark_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Shortens the buffer to `len` bytes (len <= b->len): undo after a trial. */
void spark_sbuf_truncate(spark_sbuf *b, size_t len);
/* Appends `s` as a JSON string literal, quotes included. */
void spark_sbuf_json_string(spark_sbuf *b, const char *s);
void spark_sbuf_free(spark_sbuf *b);

/* ---- trees ---- */

/* A tree that owns its arena: the result of a copy or of a patch. */
typedef struct spark_tree spark_tree;

/* The builder's root fragment (borrowed: valid until spark_html_free). */
const spark_node *spark_html_root(const spark_html *h);

/* ---- renders that reuse the last one ----
 *
 * A builder for the next render of what `base` rendered (NULL: none; a
 * base with an error is not used). Where the render gives what base holds,
 * the new tree holds base's very nodes: unchanged subtrees cost a compare
 * to build and nothing to diff (spark_diff skips identical nodes). The
 * tree built is exactly the one spark_html_new() would build; only the
 * sharing differs. The builder holds a reference on base (spark_html_free
 * drops it), so base may be freed by its owner at any time. */
spark_html *spark_html_new_reusing(spark_html *base);
/* Each builder keeps its base, and so the bases before it, alive. Call
 * spark_html_compact() on a render before building on it: it lets the
 * base go when the render took nothing from it, and once
 * SPARK_HTML_MAX_CHAIN builders lean on each other, or they hold more
 * than three times what the first of them holds, it replaces *h
 * (released) by a builder with an equal tree: standalone, or, while the
 * chain holds at most twice the first tree, one that keeps the first
 * tree's nodes and copies only the rest (up to SPARK_HTML_MAX_CHAIN times
 * for one first tree). Keep the result in *h's place: the next render
 * shares nodes with it. Lists (spark_each) go with it. */
#define SPARK_HTML_MAX_CHAIN 8
void spark_html_compact(spark_html **h);

/* ---- rows of a list (spark_each, component.c; html.c, "Rows") ----
 *
 * Begins a list in the open element: its rows are the markup of the items
 * of state list `name` by `fn` (with `arg`; both copied), a function of
 * those only. `hold`, released
 * by `release` with the builder's rows, keeps the items alive and
 * unchanged. Returns false (and releases hold) when rows cannot be
 * recorded here (inside another list, after an error, out of memory):
 * then give the rows as plain markup. */
bool spark_html_rows_begin(spark_html *h, void *hold, void (*release)(void *), void (*fn)(void),
                           const char *name, const char *arg);
/* The base's row, of the list matched to this one, that `item` may take
 * again: the row of the same item (the same object), or else one of the
 * next two rows in order whose item `same` (may be NULL) finds equal; -1
 * for none. */
long spark_html_rows_find(spark_html *h, const void *item,
                          bool (*same)(const void *a, const void *b));
/* Gives base row `k` (from spark_html_rows_find) again, as `item`'s row.
 * Returns what its row function returned. */
bool spark_html_row_reuse(spark_html *h, long k, const void *item);
/* Brackets a row given by running its function, which returned `counted`. */
void spark_html_row_begin(spark_html *h);
void spark_html_row_end(spark_html *h, const void *item, bool counted);
void spark_html_rows_end(spark_html *h);

const spark_node *spark_tree_root(const spark_tree *t);
/* The root for in-place edits. */
spark_node *spark_tree_root_mut(spark_tree *t);
void spark_tree_free(spark_tree *t);

/* An empty tree whose root is a new node of `root_kind`; NULL when out of
 * memory. Freed with spark_tree_free. */
spark_tree *spark_tree_new(spark_node_kind root_kind);

/* Allocation inside a tree's arena, for code that edits a tree in place.
 * The nodes and strings are freed with the tree. NULL when out of memory. */
spark_node *spark_tree_new_node(spark_tree *t, spark_node_kind kind);
char *spark_tree_strdup(spark_tree *t, const char *s, size_t n);
/* Inserts `kid` as child number `at` (0..nkids) of `parent`. 0 or -1. */
int spark_tree_insert_kid(spark_tree *t, spark_node *parent, size_t at, spark_node *kid);
/* Sets, replacing in place or appending, an attribute (as setAttribute). */
int spark_tree_set_attr(spark_tree *t, spark_node *el, const char *name, const char *value);
/* Removes an attribute if present (as removeAttribute). */
void spark_tree_remove_attr(spark_node *el, const char *name);
/* Recomputes `key` and `opaque` of one node after its attrs or kids changed. */
void spark_tree_refresh(spark_node *n);

/* ---- inspection and serialization ---- */

bool spark_html_is_void(const char *tag);
/* Whether the element holds text only (script, style, textarea, title...);
 * *escaped (may be NULL) tells whether that text has character references. */
bool spark_html_holds_text_only(const char *tag, bool *escaped);
/* A copy of `s` in the tree's arena with invalid UTF-8 and the control
 * characters the builder refuses replaced, as the builder stores text. */
char *spark_tree_clean_copy(spark_tree *t, const char *s, size_t n);
const char *spark_node_attr(const spark_node *el, const char *name);

/* Deep equality of two subtrees: kinds, tags, attributes in order, text. */
bool spark_node_equal(const spark_node *a, const spark_node *b);

/* Appends the node as a browser's outerHTML would render it (a fragment:
 * its children, as innerHTML). One deliberate difference: the first text
 * of a pre, textarea or listing that starts with a line feed gets one more
 * line feed, which the parser eats, so the parsed DOM keeps the text. */
void spark_node_serialize(const spark_node *n, spark_sbuf *out);
/* Appends the children only (innerHTML). */
void spark_node_serialize_children(const spark_node *n, spark_sbuf *out);

/* Appends `s` escaped as the serializer escapes text (attr false) or a
 * double-quoted attribute value (attr true): the runtime's one escaper,
 * also used for the markup that pages.c writes around a component. */
void spark_html_escape(spark_sbuf *out, const char *s, bool attr);

#endif
