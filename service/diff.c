/*
 * diff.c - tree diff to patch ops.
 *
 * The diff works one parent at a time. Children equal at both ends (or with
 * the same key) are matched without search, which makes the common edits of
 * a list (one row changed, added at the top, removed from the middle) cost
 * one small op however long the list is. The rest is matched by spark-key,
 * and unkeyed children in order by kind; a longest increasing subsequence of
 * the matched children stays put and every other one moves, so a keyed move
 * costs one op. All structural ops of a parent come before the ops inside
 * its children, and each op's path is read against the tree as the earlier
 * ops left it (docs/patch.md): a child's final index is its path.
 *
 * A render built on the old tree (spark_html_new_reusing) holds the old
 * tree's very nodes where nothing changed: a node identical to its match
 * is skipped without looking inside, so the diff of a one-row change costs
 * a pass over the list's children by pointer and that row's ops.
 */
#include "diff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unkeyed children are matched in order; a child looks this far ahead for
 * an old child of its kind before taking the next one as a replacement. */
#define LOOKAHEAD 8

typedef struct {
    spark_sbuf *out;
    int nops;
    size_t *path;
    size_t depth, cap;
    bool oom;
} differ;

/* The state of the output, to undo a trial (the replace heuristic). */
typedef struct {
    size_t len;
    int nops;
} mark;

static mark save(const differ *d) { return (mark){d->out->len, d->nops}; }

static void restore(differ *d, mark m) {
    spark_sbuf_truncate(d->out, m.len);
    d->nops = m.nops;
}

static void push_path(differ *d, size_t index) {
    if (d->depth == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        size_t *p = realloc(d->path, cap * sizeof *p);
        if (!p) {
            d->oom = true;
            return;
        }
        d->path = p;
        d->cap = cap;
    }
    d->path[d->depth++] = index;
}

static void pop_path(differ *d) {
    if (d->depth) d->depth--;
}

/* Starts an op: `["code",[path...(,extra)]`. SIZE_MAX means no extra. */
static void op_begin(differ *d, const char *code, size_t extra) {
    spark_sbuf *o = d->out;
    if (d->nops++) spark_sbuf_putc(o, ',');
    spark_sbuf_puts(o, "[\"");
    spark_sbuf_puts(o, code);
    spark_sbuf_puts(o, "\",[");
    for (size_t i = 0; i < d->depth; i++)
        spark_sbuf_printf(o, i ? ",%zu" : "%zu", d->path[i]);
    if (extra != SIZE_MAX) spark_sbuf_printf(o, d->depth ? ",%zu" : "%zu", extra);
    spark_sbuf_putc(o, ']');
}

static void op_string(differ *d, const char *s) {
    spark_sbuf_putc(d->out, ',');
    spark_sbuf_json_string(d->out, s);
}

static void op_end(differ *d) { spark_sbuf_putc(d->out, ']'); }

/* An op carrying the HTML of kids[from..to) of `parent`. */
static void op_html(differ *d, const char *code, size_t extra, const spark_node *parent,
                    size_t from, size_t to) {
    spark_sbuf html = {0};
    spark_sbuf_append(&html, "", 0);
    for (size_t i = from; i < to; i++)
        spark_node_serialize(parent->kids[i], &html);
    if (html.failed) d->oom = true;
    op_begin(d, code, extra);
    op_string(d, html.data ? html.data : "");
    op_end(d);
    spark_sbuf_free(&html);
}

static bool same_kind(const spark_node *a, const spark_node *b) {
    if (a->kind != b->kind) return false;
    return a->kind != SPARK_NODE_ELEMENT || strcmp(a->tag, b->tag) == 0;
}

static bool same_key(const spark_node *a, const spark_node *b) {
    return a->key && b->key && strcmp(a->key, b->key) == 0;
}

/* May these two be matched at the same end of both lists without search? */
static bool trims(const spark_node *a, const spark_node *b) {
    if (a == b) return true; /* a node a render reused (spark_html_new_reusing) */
    if (a->key || b->key) return same_key(a, b) && same_kind(a, b);
    return spark_node_equal(a, b);
}

static size_t find_attr(const spark_node *el, const char *name) {
    for (size_t i = 0; i < el->nattrs; i++)
        if (strcmp(el->attrs[i].name, name) == 0) return i;
    return SIZE_MAX;
}

static void op_unset(differ *d, const char *name) {
    op_begin(d, "u", SIZE_MAX);
    op_string(d, name);
    op_end(d);
}

/* setAttribute keeps an existing attribute in place and appends a new one,
 * and serialization follows that order. So the longest prefix of the new
 * attributes that the old ones hold in the same relative order stays where
 * it is; every other old attribute is removed, and the rest of the new ones
 * set, in order, which appends them. */
static void diff_attrs(differ *d, const spark_node *a, const spark_node *b) {
    size_t keep = 0;
    for (size_t i = 0; i < a->nattrs; i++) {
        if (find_attr(b, a->attrs[i].name) == SIZE_MAX) continue;
        if (keep < b->nattrs && strcmp(a->attrs[i].name, b->attrs[keep].name) == 0) keep++;
    }
    for (size_t i = 0; i < a->nattrs; i++) {
        size_t at = find_attr(b, a->attrs[i].name);
        if (at == SIZE_MAX || at >= keep) op_unset(d, a->attrs[i].name);
    }
    for (size_t i = 0; i < b->nattrs; i++) {
        if (i < keep) {
            size_t at = find_attr(a, b->attrs[i].name);
            if (strcmp(a->attrs[at].value, b->attrs[i].value) == 0) continue;
        }
        op_begin(d, "s", SIZE_MAX);
        op_string(d, b->attrs[i].name);
        op_string(d, b->attrs[i].value);
        op_end(d);
    }
}

static void diff_children(differ *d, const spark_node *a, const spark_node *b);

/* A matched pair of the same kind (and tag) at the current path. */
static void diff_node(differ *d, const spark_node *a, const spark_node *b) {
    if (d->oom) return;
    if (a->kind == SPARK_NODE_TEXT || a->kind == SPARK_NODE_RAW) {
        if (strcmp(a->text, b->text) == 0) return;
        /* Raw nodes live in opaque parents, diffed whole; replace one anyway. */
        op_begin(d, a->kind == SPARK_NODE_TEXT ? "t" : "p", SIZE_MAX);
        op_string(d, b->text);
        op_end(d);
        return;
    }
    if (a->kind == SPARK_NODE_ELEMENT) diff_attrs(d, a, b);
    if (a->opaque || b->opaque) {
        spark_sbuf x = {0}, y = {0};
        spark_sbuf_append(&x, "", 0);
        spark_sbuf_append(&y, "", 0);
        spark_node_serialize_children(a, &x);
        spark_node_serialize_children(b, &y);
        if (x.failed || y.failed) d->oom = true;
        if (!d->oom && strcmp(x.data, y.data) != 0) {
            op_begin(d, "h", SIZE_MAX);
            op_string(d, y.data);
            op_end(d);
        }
        spark_sbuf_free(&x);
        spark_sbuf_free(&y);
        return;
    }
    diff_children(d, a, b);
}

/* Whether `n` serializes to at least `limit` bytes, counting only what
 * its HTML must hold (names, values, texts and the brackets of start tags;
 * escaping only adds), and stopping as soon as it is known. A node whose
 * ops are cheaper than its HTML is then never serialized: for a list of
 * thousands, that serialization cost more than the whole diff. */
static size_t html_size_upto(const spark_node *n, size_t size, size_t limit) {
    if (n->kind == SPARK_NODE_ELEMENT) {
        size += strlen(n->tag) + 2; /* "<tag>"; the end tag may be void */
        for (size_t i = 0; i < n->nattrs; i++)
            size += strlen(n->attrs[i].name) + strlen(n->attrs[i].value) + 1;
    } else if (n->text) {
        size += strlen(n->text);
    }
    for (size_t i = 0; i < n->nkids && size < limit; i++)
        size = html_size_upto(n->kids[i], size, limit);
    return size;
}

static bool html_at_least(const spark_node *n, size_t limit) {
    return html_size_upto(n, 0, limit) >= limit;
}

/* Diffs the pair at child index `j` of the current path, replacing the new
 * node whole when that is shorter than the ops or the kinds differ. */
static void diff_pair(differ *d, const spark_node *a, const spark_node *b, const spark_node *parent,
                      size_t j) {
    if (a == b) return; /* the same node: nothing inside can differ */
    if (!same_kind(a, b)) {
        op_html(d, "p", j, parent, j, j + 1);
        return;
    }
    push_path(d, j);
    mark m = save(d);
    diff_node(d, a, b);
    size_t cost = d->out->len - m.len;
    pop_path(d);
    if (b->kind != SPARK_NODE_ELEMENT || cost < 48 || d->oom || html_at_least(b, cost)) return;
    mark after = save(d);
    op_html(d, "p", j, parent, j, j + 1);
    size_t replace = d->out->len - after.len;
    restore(d, after);
    if (replace < cost) {
        restore(d, m);
        op_html(d, "p", j, parent, j, j + 1);
    }
}

/* ---- keyed matching ---- */

static uint64_t hash_key(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Longest strictly increasing subsequence of seq[0..n); sets keep[i] for
 * its members. O(n log n). */
static int mark_lis(const size_t *seq, size_t n, bool *keep) {
    if (!n) return 0;
    size_t *tails = malloc(n * sizeof *tails), *prev = malloc(n * sizeof *prev);
    if (!tails || !prev) {
        free(tails);
        free(prev);
        return -1;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t lo = 0, hi = len;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (seq[tails[mid]] < seq[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        prev[i] = lo ? tails[lo - 1] : SIZE_MAX;
        tails[lo] = i;
        if (lo == len) len++;
    }
    for (size_t i = tails[len - 1]; i != SIZE_MAX; i = prev[i])
        keep[i] = true;
    free(tails);
    free(prev);
    return 0;
}

static size_t index_of(const size_t *live, size_t n, size_t label) {
    for (size_t i = 0; i < n; i++)
        if (live[i] == label) return i;
    return n;
}

/* The children of a matched pair. See the comment atop the file. */
static void diff_children(differ *d, const spark_node *a, const spark_node *b) {
    size_t n = a->nkids, m = b->nkids, p = 0, s = 0;
    while (p < n && p < m && trims(a->kids[p], b->kids[p]))
        p++;
    while (p + s < n && p + s < m && trims(a->kids[n - 1 - s], b->kids[m - 1 - s]))
        s++;
    size_t on = n - p - s, nn = m - p - s;

    /* Match the middle: old_to_new[i] / new_to_old[j] relative to p. */
    size_t *old_to_new = malloc((on + 1) * sizeof *old_to_new);
    size_t *new_to_old = malloc((nn + 1) * sizeof *new_to_old);
    size_t *live = malloc((n + m + 1) * sizeof *live);
    size_t *seq = malloc((on + 1) * sizeof *seq);
    bool *in_lis = calloc(nn + 1, sizeof *in_lis), *seq_keep = calloc(on + 1, sizeof *seq_keep);
    size_t hcap = 16;
    while (hcap < 2 * on)
        hcap *= 2;
    size_t *table = malloc(hcap * sizeof *table);
    if (!old_to_new || !new_to_old || !live || !seq || !in_lis || !seq_keep || !table) {
        d->oom = true;
        goto done;
    }
    for (size_t i = 0; i < on; i++)
        old_to_new[i] = SIZE_MAX;
    for (size_t j = 0; j < nn; j++)
        new_to_old[j] = SIZE_MAX;

    for (size_t i = 0; i < hcap; i++)
        table[i] = SIZE_MAX;
    for (size_t i = 0; i < on; i++) {
        const spark_node *o = a->kids[p + i];
        if (!o->key) continue;
        size_t h = (size_t)hash_key(o->key) & (hcap - 1);
        while (table[h] != SIZE_MAX && !same_key(a->kids[p + table[h]], o))
            h = (h + 1) & (hcap - 1);
        if (table[h] == SIZE_MAX) table[h] = i; /* a duplicate key matches only once */
    }
    size_t cursor = 0;
    for (size_t j = 0; j < nn; j++) {
        const spark_node *x = b->kids[p + j];
        if (x->key) {
            size_t h = (size_t)hash_key(x->key) & (hcap - 1);
            while (table[h] != SIZE_MAX && !same_key(a->kids[p + table[h]], x))
                h = (h + 1) & (hcap - 1);
            size_t i = table[h];
            if (i != SIZE_MAX && old_to_new[i] == SIZE_MAX) {
                old_to_new[i] = j;
                new_to_old[j] = i;
            }
            continue;
        }
        /* Unkeyed: the next old unkeyed child of the same kind, nearby. */
        size_t seen = 0, found = SIZE_MAX, first = SIZE_MAX;
        for (size_t i = cursor; i < on && seen < LOOKAHEAD; i++) {
            const spark_node *o = a->kids[p + i];
            if (o->key || old_to_new[i] != SIZE_MAX) continue;
            if (first == SIZE_MAX) first = i;
            seen++;
            if (same_kind(o, x)) {
                found = i;
                break;
            }
        }
        if (found == SIZE_MAX) found = first; /* replaced in place */
        if (found != SIZE_MAX) {
            old_to_new[found] = j;
            new_to_old[j] = found;
            cursor = found + 1;
        }
    }

    /* Remove unmatched old children, last first, runs as one op. */
    for (size_t i = on; i-- > 0;) {
        if (old_to_new[i] != SIZE_MAX) continue;
        size_t hi = i;
        while (i > 0 && old_to_new[i - 1] == SIZE_MAX)
            i--;
        if (hi == i) {
            op_begin(d, "r", p + i);
            op_end(d);
        } else {
            op_begin(d, "r", p + i);
            spark_sbuf_printf(d->out, ",%zu", hi - i + 1);
            op_end(d);
        }
    }

    /* Label every remaining child by its final index. */
    size_t nlive = 0, nseq = 0;
    for (size_t k = 0; k < p; k++)
        live[nlive++] = k;
    for (size_t i = 0; i < on; i++)
        if (old_to_new[i] != SIZE_MAX) live[nlive++] = seq[nseq++] = p + old_to_new[i];
    for (size_t k = 0; k < s; k++)
        live[nlive++] = m - s + k;
    if (mark_lis(seq, nseq, seq_keep) != 0) {
        d->oom = true;
        goto done;
    }
    for (size_t k = 0; k < nseq; k++)
        if (seq_keep[k]) in_lis[seq[k] - p] = true;

    /* From the end: each child that is not in place goes right before its
     * successor, which is already final. */
    for (size_t j = nn; j-- > 0;) {
        size_t label = p + j;
        size_t anchor = label + 1 == m ? nlive : index_of(live, nlive, label + 1);
        if (new_to_old[j] == SIZE_MAX) {
            size_t lo = j;
            while (lo > 0 && new_to_old[lo - 1] == SIZE_MAX)
                lo--;
            op_html(d, "i", anchor, b, p + lo, p + j + 1);
            size_t count = j - lo + 1;
            memmove(live + anchor + count, live + anchor, (nlive - anchor) * sizeof *live);
            for (size_t k = 0; k < count; k++)
                live[anchor + k] = p + lo + k;
            nlive += count;
            j = lo;
            continue;
        }
        if (in_lis[j]) continue;
        size_t at = index_of(live, nlive, label);
        if (at + 1 == anchor) continue;
        size_t to = at < anchor ? anchor - 1 : anchor;
        op_begin(d, "m", SIZE_MAX);
        spark_sbuf_printf(d->out, ",%zu,%zu", at, to);
        op_end(d);
        memmove(live + at, live + at + 1, (nlive - at - 1) * sizeof *live);
        memmove(live + to + 1, live + to, (nlive - 1 - to) * sizeof *live);
        live[to] = label;
    }

    /* Now inside the matched children, at their final indices. */
    for (size_t j = 0; j < m && !d->oom; j++) {
        const spark_node *x = b->kids[j], *o;
        if (j < p)
            o = a->kids[j];
        else if (j >= m - s)
            o = a->kids[j - m + n];
        else if (new_to_old[j - p] != SIZE_MAX)
            o = a->kids[p + new_to_old[j - p]];
        else
            continue;
        /* Trimmed unkeyed children are equal already. */
        if ((j < p || j >= m - s) && !x->key) continue;
        diff_pair(d, o, x, b, j);
    }

done:
    free(old_to_new);
    free(new_to_old);
    free(live);
    free(seq);
    free(in_lis);
    free(seq_keep);
    free(table);
}

int spark_diff(const spark_node *old_root, const spark_node *new_root, spark_sbuf *out) {
    differ d = {.out = out};
    size_t start = out->len;
    spark_sbuf_putc(out, '[');
    if (same_kind(old_root, new_root) && old_root->kind != SPARK_NODE_TEXT &&
        old_root->kind != SPARK_NODE_RAW) {
        diff_node(&d, old_root, new_root);
    } else {
        /* Roots of different kinds: nothing to address but the content. */
        spark_sbuf html = {0};
        spark_sbuf_append(&html, "", 0);
        spark_node_serialize_children(new_root, &html);
        op_begin(&d, "h", SIZE_MAX);
        op_string(&d, html.data ? html.data : "");
        op_end(&d);
        if (html.failed) d.oom = true;
        spark_sbuf_free(&html);
    }
    spark_sbuf_putc(out, ']');
    free(d.path);
    if (d.oom || out->failed) {
        if (!out->failed) spark_sbuf_truncate(out, start);
        return -1;
    }
    return d.nops;
}
