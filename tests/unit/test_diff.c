/*
 * test_diff.c - the tree diff and the reference applier.
 *
 * The main check is a property: for many random pairs of trees (seeded, so
 * every run sees the same pairs), applying diff(old, new) to old yields a
 * tree that serializes exactly like new; also when old is first parsed back
 * from its HTML, as the browser does. The list edits a live component makes
 * all the time are pinned with their op counts and sizes.
 *
 * SPARK_DIFF_ITERATIONS=N changes the number of random pairs (valgrind runs
 * use fewer). SPARK_DIFF_VECTORS=path also writes 200 of the pairs as
 * {"vectors":[{"old":html,"ops":[...],"new":html},...]} for the browser test
 * of the applier in web/js/spark.js.
 */
#include "diff.h"
#include "html_tree.h"
#include "support.h"

#include <spark/html.h>

#include <check.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static char *serialize(const spark_node *n) {
    spark_sbuf b = {0};
    spark_sbuf_append(&b, "", 0);
    spark_node_serialize(n, &b);
    if (b.failed) ck_abort_msg("out of memory");
    return b.data;
}

/* Diffs, applies to `old` and (when `reparse`) to `old` parsed back from its
 * HTML as the browser has it, and checks both serialize as `new`. Returns
 * the ops (malloc'd) and their count. The hot paths of this file test with
 * `if` and ck_abort_msg: Check records every passing ck_assert, which would
 * dominate the run time of the random pairs. */
static char *check_patch_ex(const spark_node *old, const spark_node *new, int *nops, bool reparse) {
    spark_sbuf ops = {0};
    int n = spark_diff(old, new, &ops);
    if (n < 0) ck_abort_msg("spark_diff failed");
    char *want = serialize(new), *old_html = serialize(old), err[200] = "";

    spark_tree *got = spark_patch_apply(old, ops.data, err, sizeof err);
    if (!got) ck_abort_msg("apply failed: %s\nold: %s\nops: %s", err, old_html, ops.data);
    char *html = serialize(spark_tree_root(got));
    if (strcmp(html, want) != 0)
        ck_abort_msg("\nold:  %s\nnew:  %s\ngot:  %s\nops:  %s", old_html, want, html, ops.data);
    free(html);
    spark_tree_free(got);
    if (!reparse) goto done;

    static const spark_node empty = {.kind = SPARK_NODE_FRAGMENT};
    spark_tree *scratch = spark_tree_copy(&empty);
    spark_node *parsed = spark_tree_parse(scratch, old_html, strlen(old_html));
    if (!parsed) ck_abort_msg("parse failed");
    got = spark_patch_apply(parsed, ops.data, err, sizeof err);
    if (!got) ck_abort_msg("apply to parsed failed: %s\nold: %s\nops: %s", err, old_html, ops.data);
    html = serialize(spark_tree_root(got));
    if (strcmp(html, want) != 0)
        ck_abort_msg("parsed\nold:  %s\nnew:  %s\ngot:  %s\nops:  %s", old_html, want, html,
                     ops.data);
    free(html);
    spark_tree_free(got);
    spark_tree_free(scratch);

done:
    free(want);
    free(old_html);
    if (nops) *nops = n;
    return ops.data;
}

static char *check_patch(const spark_node *old, const spark_node *new, int *nops) {
    return check_patch_ex(old, new, nops, true);
}

/* ---- a todo list, the shape the size assertions are about ---- */

typedef struct {
    int id;
    int done;
    char text[32];
} row;

static void todo_list(spark_html *h, const row *rows, int n, int keyed) {
    SECTION(h, "class", "todoapp") {
        H1(h) { spark_text(h, "todos"); }
        UL(h, "class", "todo-list") {
            for (int i = 0; i < n; i++) {
                const row *r = &rows[i];
                LI(h, "spark-key", keyed ? spark_itoa(h, r->id) : SPARK_OMIT, "class",
                   SPARK_IF(r->done, "completed")) {
                    INPUT(h, "type", "checkbox", "spark-change", "toggle", "spark-value-id",
                          spark_itoa(h, r->id), "checked", SPARK_BOOL(r->done));
                    LABEL(h) { spark_text(h, r->text); }
                    BUTTON(h, "class", "destroy", "spark-click", "remove", "spark-value-id",
                           spark_itoa(h, r->id)) {}
                }
            }
        }
        SPAN(h, "class", "todo-count") { spark_textf(h, "%d items left", n); }
    }
}

enum { ROWS = 500 };
static row base[ROWS + 1], edited[ROWS + 1];

static void fill(void) {
    for (int i = 0; i < ROWS; i++) {
        base[i].id = i + 1;
        base[i].done = i % 3 == 0;
        snprintf(base[i].text, sizeof base[i].text, "Buy item number %d", i + 1);
    }
}

/* Rows of the last list_patch's reusing render that are the old render's
 * very nodes (what the diff skips without looking). */
static size_t shared_rows;

/* Diffs the 500-row list against an edited copy; checks exactness. The
 * edited copy is rendered twice, afresh and reusing the old render as the
 * runtime does: both must give the very same ops. */
static char *list_patch(int keyed, int n_new, int *nops) {
    spark_html *a = spark_html_new(), *b = spark_html_new();
    todo_list(a, base, ROWS, keyed);
    todo_list(b, edited, n_new, keyed);
    spark_html *r = spark_html_new_reusing(a);
    todo_list(r, edited, n_new, keyed);
    ck_assert_ptr_null(spark_html_error(a));
    ck_assert_ptr_null(spark_html_error(b));
    ck_assert_ptr_null(spark_html_error(r));
    char *ops = check_patch(spark_html_root(a), spark_html_root(b), nops);
    int n;
    char *reused = check_patch(spark_html_root(a), spark_html_root(r), &n);
    ck_assert_str_eq(reused, ops);
    const spark_node *ul0 = spark_html_root(a)->kids[0]->kids[1];
    const spark_node *ul1 = spark_html_root(r)->kids[0]->kids[1];
    shared_rows = 0;
    for (size_t j = 0; j < ul1->nkids; j++)
        for (size_t i = 0; i < ul0->nkids; i++)
            shared_rows += ul1->kids[j] == ul0->kids[i];
    free(reused);
    spark_html_free(a);
    spark_html_free(b);
    spark_html_free(r);
    return ops;
}

START_TEST(one_changed_text_in_500_rows) {
    for (int keyed = 0; keyed < 2; keyed++) {
        fill();
        memcpy(edited, base, sizeof base);
        snprintf(edited[437].text, sizeof edited[437].text, "Buy milk");
        int n;
        char *ops = list_patch(keyed, ROWS, &n);
        ck_assert_int_eq(n, 1);
        ck_assert_str_eq(ops, "[[\"t\",[0,1,437,1,0],\"Buy milk\"]]");
        ck_assert_uint_lt(strlen(ops), 100);
        ck_assert_uint_eq(shared_rows, ROWS - 1);
        free(ops);
    }
}
END_TEST

START_TEST(toggle_one_row) {
    for (int keyed = 0; keyed < 2; keyed++) {
        fill();
        memcpy(edited, base, sizeof base);
        edited[250].done = 1;
        int n;
        char *ops = list_patch(keyed, ROWS, &n);
        ck_assert_int_eq(n, 2); /* class on the li, checked on the input */
        ck_assert_uint_lt(strlen(ops), 100);
        ck_assert_uint_eq(shared_rows, ROWS - 1);
        free(ops);
    }
}
END_TEST

START_TEST(keyed_insert_at_top) {
    fill();
    edited[0] = (row){.id = 9999, .done = 0, .text = "New first"};
    memcpy(edited + 1, base, sizeof base[0] * ROWS);
    int n;
    char *ops = list_patch(1, ROWS + 1, &n);
    /* The new row, and the count below the list. */
    ck_assert_int_eq(n, 2);
    ck_assert_ptr_nonnull(strstr(ops, "[\"i\",[0,1,0],\"<li spark-key=\\\"9999\\\">"));
    ck_assert_uint_lt(strlen(ops), 320);
    ck_assert_uint_eq(shared_rows, ROWS); /* found by key */
    free(ops);
}
END_TEST

START_TEST(unkeyed_insert_at_top) {
    fill();
    edited[0] = (row){.id = 9999, .done = 0, .text = "New first"};
    memcpy(edited + 1, base, sizeof base[0] * ROWS);
    int n;
    char *ops = list_patch(0, ROWS + 1, &n);
    ck_assert_int_eq(n, 2); /* equal rows match from the end */
    ck_assert_uint_lt(strlen(ops), 320);
    free(ops);
}
END_TEST

START_TEST(keyed_remove_from_the_middle) {
    fill();
    memcpy(edited, base, sizeof base[0] * 200);
    memcpy(edited + 200, base + 201, sizeof base[0] * (ROWS - 201));
    int n;
    char *ops = list_patch(1, ROWS - 1, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_ptr_nonnull(strstr(ops, "[\"r\",[0,1,200]]"));
    ck_assert_uint_lt(strlen(ops), 80);
    ck_assert_uint_eq(shared_rows, ROWS - 1);
    free(ops);
}
END_TEST

START_TEST(keyed_move) {
    fill();
    memcpy(edited, base, sizeof base);
    row moved = edited[300];
    memmove(edited + 11, edited + 10, sizeof base[0] * 290);
    edited[10] = moved;
    int n;
    char *ops = list_patch(1, ROWS, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(ops, "[[\"m\",[0,1],300,10]]");
    ck_assert_uint_eq(shared_rows, ROWS);
    free(ops);

    /* A swap is two moves; the rows in between stay. */
    memcpy(edited, base, sizeof base);
    edited[5] = base[400];
    edited[400] = base[5];
    ops = list_patch(1, ROWS, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_lt(strlen(ops), 60);
    free(ops);
}
END_TEST

START_TEST(keyed_rows_keep_identity_across_a_reverse) {
    fill();
    for (int i = 0; i < 20; i++)
        edited[i] = base[19 - i];
    spark_html *a = spark_html_new(), *b = spark_html_new();
    todo_list(a, base, 20, 1);
    todo_list(b, edited, 20, 1);
    int n;
    char *ops = check_patch(spark_html_root(a), spark_html_root(b), &n);
    ck_assert_int_eq(n, 19); /* moves, and nothing inside the rows */
    ck_assert_ptr_null(strstr(ops, "\"i\""));
    free(ops);
    spark_html_free(a);
    spark_html_free(b);
}
END_TEST

/* ---- the op format, pinned on small cases ---- */

typedef void (*render_fn)(spark_html *h);

static char *patch_of(render_fn old_fn, render_fn new_fn, int *n) {
    spark_html *a = spark_html_new(), *b = spark_html_new();
    old_fn(a);
    new_fn(b);
    ck_assert_ptr_null(spark_html_error(a));
    ck_assert_ptr_null(spark_html_error(b));
    char *ops = check_patch(spark_html_root(a), spark_html_root(b), n);
    spark_html_free(a);
    spark_html_free(b);
    return ops;
}

static const char long_text[] = "a sentence long enough that replacing the p costs more";
static void p_a(spark_html *h) {
    P(h, "class", "x") {
        spark_text(h, "a");
        EM(h) { spark_text(h, long_text); }
    }
}
static void p_b(spark_html *h) {
    P(h, "class", "y", "title", "t") {
        spark_text(h, "b");
        EM(h) { spark_text(h, long_text); }
    }
}
static void p_reordered(spark_html *h) {
    P(h, "title", "t", "class", "y") {
        spark_text(h, "b");
        EM(h) { spark_text(h, long_text); }
    }
}
static void div_raw1(spark_html *h) {
    DIV(h) { spark_raw(h, "<b>1</b>"); }
}
static void div_raw2(spark_html *h) {
    DIV(h) { spark_raw(h, "<i>2</i>"); }
}
static void nothing(spark_html *h) { (void)h; }
static void two(spark_html *h) {
    SPAN(h) { spark_text(h, "1"); }
    BR(h);
}

START_TEST(op_format) {
    int n;
    char *ops = patch_of(p_a, p_a, &n);
    ck_assert_str_eq(ops, "[]");
    ck_assert_int_eq(n, 0);
    free(ops);

    ops = patch_of(p_a, p_b, &n);
    ck_assert_str_eq(ops, "[[\"s\",[0],\"class\",\"y\"],[\"s\",[0],\"title\",\"t\"],"
                          "[\"t\",[0,0],\"b\"]]");
    free(ops);

    ops = patch_of(p_b, p_reordered, &n); /* attribute order is serialized: redo it */
    ck_assert_str_eq(ops, "[[\"u\",[0],\"class\"],[\"s\",[0],\"class\",\"y\"]]");
    free(ops);

    ops = patch_of(div_raw1, div_raw2, &n);
    ck_assert_str_eq(ops, "[[\"h\",[0],\"<i>2</i>\"]]");
    free(ops);

    ops = patch_of(nothing, two, &n);
    ck_assert_str_eq(ops, "[[\"i\",[0],\"<span>1</span><br>\"]]");
    free(ops);

    ops = patch_of(two, nothing, &n);
    ck_assert_str_eq(ops, "[[\"r\",[0],2]]");
    free(ops);

    ops = patch_of(p_a, two, &n);
    ck_assert_int_le(n, 2);
    free(ops);
}
END_TEST

START_TEST(applier_refuses_bad_ops) {
    spark_html *h = spark_html_new();
    p_a(h);
    const char *bad[] = {"{}",
                         "[1]",
                         "[[\"t\",[5],\"x\"]]",
                         "[[\"t\",[0],\"x\"]]",
                         "[[\"s\",[0,0],\"a\",\"b\"]]",
                         "[[\"r\",[0,3]]]",
                         "[[\"r\",[0],2]]",
                         "[[\"i\",[2],\"x\"]]",
                         "[[\"m\",[0],0,2]]",
                         "[[\"z\",[0]]]",
                         "[[\"i\",[],\"x\"]]",
                         "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        spark_tree *t = spark_patch_apply(spark_html_root(h), bad[i], err, sizeof err);
        ck_assert_msg(t == NULL, "accepted %s", bad[i]);
        ck_assert_msg(err[0] != '\0', "no reason for %s", bad[i]);
    }
    spark_html_free(h);
}
END_TEST

/* ---- random trees ---- */

static uint64_t rng;

static uint32_t next_u32(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}

static int pick(int n) { return (int)(next_u32() % (uint32_t)n); }

typedef enum { CTX_BLOCK, CTX_INLINE, CTX_LIST } ctx;
typedef enum { T_ELEMENT, T_TEXT, T_RAW } tkind;

#define MAX_KIDS  10
#define MAX_ATTRS 4

typedef struct tnode tnode;
struct tnode {
    tkind kind;
    const char *tag;
    const char *text;
    int nattrs;
    const char *names[MAX_ATTRS];
    const char *values[MAX_ATTRS];
    int key; /* > 0: spark-key */
    int keyed_list;
    int nkids;
    tnode *kids[MAX_KIDS];
};

static const char *const texts[] = {
    "a",
    "b",
    "hello",
    "<img src=x onerror=alert(1)>",
    "Tom & Jerry",
    "\"q\" 'q'",
    "\xC2\xA0",
    " ",
    "caf\xC3\xA9",
    "x\ny",
    "\xF0\x9F\x98\x80",
    "1 < 2 > 0",
    "&amp;",
    "a longer sentence, so that replacing a subtree is not always the cheapest op"};
static const char *const attr_names[] = {"class",       "id",       "title", "data-x",
                                         "spark-click", "disabled", "value"};
static const char *const attr_values[] = {"",    "a",        "b c", "x\"y",
                                          "<&>", "\xC2\xA0", "go",  "caf\xC3\xA9"};
static const char *const raws[] = {"<b>r1</b>", "<i>r2</i> tail", "plain &amp; raw"};
static const char *const block_tags[] = {"div", "section", "ul", "span", "em", "li"};
static const char *const inline_tags[] = {"span", "em", "strong"};
static const char *const void_tags[] = {"br", "img", "input", "hr"};

static int next_key;

static ctx ctx_of(const tnode *n) {
    if (strcmp(n->tag, "ul") == 0) return CTX_LIST;
    if (strcmp(n->tag, "span") == 0 || strcmp(n->tag, "em") == 0 || strcmp(n->tag, "strong") == 0)
        return CTX_INLINE;
    return CTX_BLOCK;
}

static tnode *new_tnode(tkind kind) {
    tnode *n = calloc(1, sizeof *n);
    if (!n) ck_abort_msg("out of memory");
    n->kind = kind;
    return n;
}

static void random_attrs(tnode *n) {
    int k = pick(4) == 0 ? 0 : pick(MAX_ATTRS);
    for (int i = 0; i < k; i++) {
        n->names[n->nattrs] = attr_names[pick(7)];
        n->values[n->nattrs] = attr_values[pick(8)];
        n->nattrs++;
    }
}

static tnode *random_tree(ctx c, int depth, int keyed_parent);

static void random_kids(tnode *n, int depth) {
    ctx c = ctx_of(n);
    if (c == CTX_LIST) n->keyed_list = pick(3) != 0;
    int k = depth <= 0 ? 0 : pick(c == CTX_LIST ? MAX_KIDS : 5);
    for (int i = 0; i < k; i++)
        n->kids[n->nkids++] = random_tree(c, depth - 1, n->keyed_list);
}

static tnode *random_tree(ctx c, int depth, int keyed_parent) {
    if (c == CTX_LIST) {
        tnode *li = new_tnode(T_ELEMENT);
        li->tag = "li";
        if (keyed_parent) li->key = ++next_key;
        random_attrs(li);
        random_kids(li, depth);
        return li;
    }
    int r = pick(20);
    if (r < 6) {
        tnode *t = new_tnode(T_TEXT);
        t->text = texts[pick(14)];
        return t;
    }
    if (r < 8) {
        tnode *v = new_tnode(T_ELEMENT);
        v->tag = void_tags[pick(c == CTX_INLINE ? 3 : 4)];
        random_attrs(v);
        return v;
    }
    if (r == 8 && c == CTX_BLOCK) {
        tnode *raw = new_tnode(T_RAW);
        raw->text = raws[pick(3)];
        return raw;
    }
    tnode *e = new_tnode(T_ELEMENT);
    e->tag = c == CTX_INLINE ? inline_tags[pick(3)] : block_tags[pick(5)];
    random_attrs(e);
    random_kids(e, depth);
    return e;
}

static tnode *copy_tnode(const tnode *n) {
    tnode *c = new_tnode(n->kind);
    *c = *n;
    for (int i = 0; i < n->nkids; i++)
        c->kids[i] = copy_tnode(n->kids[i]);
    return c;
}

static void free_tnode(tnode *n) {
    for (int i = 0; i < n->nkids; i++)
        free_tnode(n->kids[i]);
    free(n);
}

/* A random element of the tree (the root included), by a random walk. */
static tnode *random_element(tnode *root) {
    tnode *n = root;
    while (pick(3) != 0) {
        tnode *elements[MAX_KIDS];
        int k = 0;
        for (int i = 0; i < n->nkids; i++)
            if (n->kids[i]->kind == T_ELEMENT) elements[k++] = n->kids[i];
        if (!k) break;
        n = elements[pick(k)];
    }
    return n;
}

/* Every list of the tree, for the edits a live list sees most. */
static int lists_of(tnode *n, tnode **out, int max) {
    int k = 0;
    if (n->kind == T_ELEMENT && n->tag && strcmp(n->tag, "ul") == 0 && k < max) out[k++] = n;
    for (int i = 0; i < n->nkids && k < max; i++)
        k += lists_of(n->kids[i], out + k, max - k);
    return k;
}

/* Moves (mostly), inserts, removes or restyles list items. */
static void mutate_list(tnode *ul) {
    int r = pick(20);
    if (r < 10 && ul->nkids > 1) {
        int from = pick(ul->nkids), to = pick(ul->nkids);
        tnode *m = ul->kids[from];
        memmove(ul->kids + from, ul->kids + from + 1,
                sizeof ul->kids[0] * (size_t)(ul->nkids - from - 1));
        memmove(ul->kids + to + 1, ul->kids + to,
                sizeof ul->kids[0] * (size_t)(ul->nkids - 1 - to));
        ul->kids[to] = m;
    } else if (r < 14 && ul->nkids < MAX_KIDS) {
        int at = pick(ul->nkids + 1);
        memmove(ul->kids + at + 1, ul->kids + at, sizeof ul->kids[0] * (size_t)(ul->nkids - at));
        ul->kids[at] = random_tree(CTX_LIST, 1, ul->keyed_list);
        ul->nkids++;
    } else if (r < 17 && ul->nkids) {
        int at = pick(ul->nkids);
        free_tnode(ul->kids[at]);
        memmove(ul->kids + at, ul->kids + at + 1,
                sizeof ul->kids[0] * (size_t)(ul->nkids - at - 1));
        ul->nkids--;
    } else if (ul->nkids) {
        tnode *li = ul->kids[pick(ul->nkids)];
        if (li->nattrs)
            li->values[0] = attr_values[pick(8)];
        else
            li->names[0] = "class", li->values[0] = "done", li->nattrs = 1;
    }
}

static void mutate(tnode *root) {
    tnode *lists[16];
    int nl = lists_of(root, lists, 16);
    if (nl && pick(3) == 0) {
        mutate_list(lists[pick(nl)]);
        return;
    }
    tnode *n = random_element(root);
    int depth = 1 + pick(2);
    ctx c = n == root ? CTX_BLOCK : ctx_of(n);
    if (spark_html_is_void(n->tag ? n->tag : "")) c = CTX_BLOCK, n = root;
    switch (pick(8)) {
    case 0: /* text */
        for (int i = 0; i < n->nkids; i++)
            if (n->kids[i]->kind == T_TEXT) {
                n->kids[i]->text = texts[pick(14)];
                return;
            }
        /* fall through */
    case 1: /* attributes */
        if (n != root) {
            if (n->nattrs && pick(2)) {
                int i = pick(n->nattrs);
                if (pick(2)) {
                    n->values[i] = attr_values[pick(8)];
                } else {
                    n->nattrs--;
                    n->names[i] = n->names[n->nattrs];
                    n->values[i] = n->values[n->nattrs];
                }
            } else if (n->nattrs < MAX_ATTRS) {
                n->names[n->nattrs] = attr_names[pick(7)];
                n->values[n->nattrs++] = attr_values[pick(8)];
            }
            return;
        }
        /* fall through */
    case 2:
    case 3: /* insert */
        if (n->nkids < MAX_KIDS) {
            int at = pick(n->nkids + 1);
            memmove(n->kids + at + 1, n->kids + at, sizeof n->kids[0] * (size_t)(n->nkids - at));
            n->kids[at] = random_tree(c, depth, n->keyed_list);
            n->nkids++;
        }
        return;
    case 4: /* remove */
        if (n->nkids) {
            int at = pick(n->nkids);
            free_tnode(n->kids[at]);
            memmove(n->kids + at, n->kids + at + 1,
                    sizeof n->kids[0] * (size_t)(n->nkids - at - 1));
            n->nkids--;
        }
        return;
    case 5: /* move */
        if (n->nkids > 1) {
            int from = pick(n->nkids), to = pick(n->nkids);
            tnode *m = n->kids[from];
            memmove(n->kids + from, n->kids + from + 1,
                    sizeof n->kids[0] * (size_t)(n->nkids - from - 1));
            memmove(n->kids + to + 1, n->kids + to,
                    sizeof n->kids[0] * (size_t)(n->nkids - 1 - to));
            n->kids[to] = m;
        }
        return;
    case 6: /* replace a child */
        if (n->nkids) {
            int at = pick(n->nkids);
            free_tnode(n->kids[at]);
            n->kids[at] = random_tree(c, depth, n->keyed_list);
        }
        return;
    default: /* retag, keeping the content model */
        if (n != root && c != CTX_LIST && strcmp(n->tag, "li") != 0)
            n->tag = c == CTX_INLINE ? inline_tags[pick(3)] : (pick(2) ? "div" : "section");
        return;
    }
}

/* Text and raw leaves go straight to the builder. */
static void build_leaf(spark_html *h, const tnode *n) {
    if (n->kind == T_TEXT)
        spark_text(h, n->text);
    else
        spark_raw(h, n->text);
}

/* Renders a tnode's children into `h` through the public builder API. */
static void render_tnode(spark_html *h, const tnode *n) {
    for (int i = 0; i < n->nkids; i++) {
        const tnode *k = n->kids[i];
        if (k->kind != T_ELEMENT) {
            build_leaf(h, k);
            continue;
        }
        const char *a[2 * MAX_ATTRS + 3] = {0};
        int na = 0;
        if (k->key) {
            a[na++] = "spark-key";
            a[na++] = spark_itoa(h, k->key);
        }
        for (int j = 0; j < k->nattrs; j++) {
            a[na++] = k->names[j];
            a[na++] = k->values[j];
        }
        if (spark_html_is_void(k->tag)) {
            spark_leaf(h, k->tag, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
                       (const char *)NULL);
            continue;
        }
        SPARK_EL(h, k->tag, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]) {
            render_tnode(h, k);
        }
    }
}

static spark_html *render_random_on(const tnode *root, spark_html *prev) {
    spark_html *h = spark_html_new_reusing(prev);
    render_tnode(h, root);
    if (spark_html_error(h)) ck_abort_msg("builder: %s", spark_html_error(h));
    return h;
}

static spark_html *render_random(const tnode *root) { return render_random_on(root, NULL); }

/* Whether `n` is a node of the tree under `t`. */
static bool in_tree(const spark_node *n, const spark_node *t) {
    if (n == t) return true;
    for (size_t i = 0; i < t->nkids; i++)
        if (in_tree(n, t->kids[i])) return true;
    return false;
}

/* Whether some node under `n` is a node of the tree under `t` too. */
static bool shares(const spark_node *n, const spark_node *t) {
    if (in_tree(n, t)) return true;
    for (size_t i = 0; i < n->nkids; i++)
        if (shares(n->kids[i], t)) return true;
    return false;
}

static tnode *random_root(void) {
    tnode *root = new_tnode(T_ELEMENT);
    root->tag = "div";
    random_kids(root, 1 + pick(4));
    return root;
}

/* The pair number `i` of the stream seeded by `seed` is always the same. */
static void random_pair(tnode **old, tnode **new) {
    *old = random_root();
    if (pick(20) == 0) {
        *new = random_root();
        return;
    }
    *new = copy_tnode(*old);
    int edits = 1 + pick(5);
    for (int e = 0; e < edits; e++)
        mutate(*new);
}

static int iterations(void) {
    const char *env = getenv("SPARK_DIFF_ITERATIONS");
    int n = env ? atoi(env) : 0;
    return n > 0 ? n : 10000;
}

START_TEST(random_pairs_patch_exactly) {
    rng = 0x9E3779B97F4A7C15ull;
    next_key = 0;
    int n = iterations();
    long total_ops = 0;
    static const char codes[] = "tsuirpmh";
    long seen[8] = {0}, pairs_sharing = 0;
    for (int i = 0; i < n; i++) {
        tnode *a, *b;
        random_pair(&a, &b);
        spark_html *ha = render_random(a), *hb = render_random(b);
        int nops;
        /* One pair in four also goes through a parse of the old HTML: it
         * doubles the cost, and the structure it checks varies little. */
        char *ops = check_patch_ex(spark_html_root(ha), spark_html_root(hb), &nops, i % 4 == 0);
        /* The new tree again, reusing the old render as the runtime does:
         * the same tree and the very same ops; and back to the old tree on
         * that one, which takes nodes of both. */
        spark_html *hr = render_random_on(b, ha);
        if (!spark_node_equal(spark_html_root(hr), spark_html_root(hb)))
            ck_abort_msg("a reusing render differs from a fresh one");
        char *reused = check_patch_ex(spark_html_root(ha), spark_html_root(hr), NULL, false);
        if (strcmp(reused, ops) != 0) ck_abort_msg("ops %s\nreusing: %s", ops, reused);
        spark_html *back = render_random_on(a, hr);
        if (!spark_node_equal(spark_html_root(back), spark_html_root(ha)))
            ck_abort_msg("a render back on a reusing one differs");
        free(check_patch_ex(spark_html_root(hr), spark_html_root(back), NULL, false));
        pairs_sharing += shares(spark_html_root(hr), spark_html_root(ha));
        free(reused);
        spark_html_free(back);
        spark_html_free(hr);
        for (int c = 0; codes[c]; c++) {
            char pat[8];
            snprintf(pat, sizeof pat, "[\"%c\",[", codes[c]);
            for (const char *p = strstr(ops, pat); p; p = strstr(p + 1, pat))
                seen[c]++;
        }
        free(ops);
        total_ops += nops;
        spark_html_free(ha);
        spark_html_free(hb);
        free_tnode(a);
        free_tnode(b);
    }
    /* The pairs must exercise every kind of op, or the property says little. */
    for (int c = 0; c < 8 && n >= 1000; c++)
        ck_assert_msg(seen[c] >= n / 100, "only %ld ops \"%c\"", seen[c], codes[c]);
    ck_assert_int_ge(total_ops, n / 2);
    /* and reuse must happen, or its half of the property says nothing */
    ck_assert_int_ge(pairs_sharing, n / 2);
}
END_TEST

/* ---- vectors for the browser test of the applier in web/js/spark.js ---- */

START_TEST(write_vectors_for_the_browser) {
    const char *path = getenv("SPARK_DIFF_VECTORS");
    if (!path || !*path) return;
    rng = 0xD1B54A32D192ED03ull;
    next_key = 0;
    json_object *list = json_object_new_array();
    for (int i = 0; i < 200; i++) {
        tnode *a, *b;
        random_pair(&a, &b);
        spark_html *ha = render_random(a), *hb = render_random(b);
        char *ops = check_patch(spark_html_root(ha), spark_html_root(hb), NULL);
        char *old_html = serialize(spark_html_root(ha)), *new_html = serialize(spark_html_root(hb));
        json_object *v = json_object_new_object();
        json_object_object_add(v, "old", json_object_new_string(old_html));
        json_object_object_add(v, "ops", json_tokener_parse(ops));
        json_object_object_add(v, "new", json_object_new_string(new_html));
        json_object_array_add(list, v);
        free(ops);
        free(old_html);
        free(new_html);
        spark_html_free(ha);
        spark_html_free(hb);
        free_tnode(a);
        free_tnode(b);
    }
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "container", json_object_new_string("div"));
    json_object_object_add(doc, "vectors", list);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(json_object_to_json_string_ext(doc,
                                         JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
          f);
    fputc('\n', f);
    ck_assert_int_eq(fclose(f), 0);
    json_object_put(doc);
}
END_TEST

static Suite *diff_suite(void) {
    Suite *s = suite_create("diff");
    TCase *lists = tcase_create("lists");
    tcase_add_test(lists, one_changed_text_in_500_rows);
    tcase_add_test(lists, toggle_one_row);
    tcase_add_test(lists, keyed_insert_at_top);
    tcase_add_test(lists, unkeyed_insert_at_top);
    tcase_add_test(lists, keyed_remove_from_the_middle);
    tcase_add_test(lists, keyed_move);
    tcase_add_test(lists, keyed_rows_keep_identity_across_a_reverse);
    suite_add_tcase(s, lists);
    TCase *format = tcase_create("format");
    tcase_add_test(format, op_format);
    tcase_add_test(format, applier_refuses_bad_ops);
    suite_add_tcase(s, format);
    TCase *prop = tcase_create("property");
    tcase_set_timeout(prop, 120);
    tcase_add_test(prop, random_pairs_patch_exactly);
    tcase_add_test(prop, write_vectors_for_the_browser);
    suite_add_tcase(s, prop);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(diff_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
