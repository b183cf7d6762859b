/*
 * render.c - renders, shared trees, dirty viewers and the flush.
 *
 * Renders run on the loop and cost the most of anything the runtime does
 * per change, so they are shared: within one flush of an instance, a
 * render is reused by every viewer whose view state (and, if the render
 * looked, whose user) is the same, and a diff by every viewer that had the
 * same previous tree. Trees are reference-counted. A render is built on
 * the tree its viewer has (spark_html_new_reusing): what did not change is
 * that tree's very nodes, so the render compares instead of building, and
 * the diff skips them; a tree is compacted only when 8 renders lean on each
 * other (spark_html_compact), to let the older ones go.
 */
#include "render.h"

#include "diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLUSH_US (16 * LWS_US_PER_MS)

static void flush_cb(lws_sorted_usec_list_t *sul);

void spark_live_send(live_conn *lc, spark_sbuf *b) {
    if (!b->failed && b->data) spark_conn_send(lc->conn, b->data, b->len);
    spark_sbuf_free(b);
}

static bool azu(const live_conn *lc) { return lc->dialect == SPARK_DIALECT_AZU; }

void spark_live_reply_ok(live_conn *lc, long long ref) { spark_live_reply_applied(lc, ref, -1); }

void spark_live_reply_applied(live_conn *lc, long long ref, long long version) {
    spark_sbuf b = {0};
    if (azu(lc)) {
        if (ref >= 0) spark_frame_azu_reply(&b, ref, version);
    } else if (version < 0) {
        spark_frame_reply_ok(&b, ref);
    } else {
        spark_frame_reply_applied(&b, ref, version);
    }
    spark_live_send(lc, &b);
}

void spark_live_reply_error(live_conn *lc, long long ref, const char *code, const char *message) {
    spark_sbuf b = {0};
    if (azu(lc))
        spark_frame_azu_error(&b, ref, NULL, code, message);
    else
        spark_frame_reply_error(&b, ref, code, message);
    spark_live_send(lc, &b);
}

void spark_live_flash(live_conn *lc, const char *cid, const char *level, const char *message) {
    spark_sbuf b = {0};
    if (azu(lc))
        spark_frame_azu_flash(&b, cid, level, message);
    else
        spark_frame_flash(&b, cid, level, message);
    spark_live_send(lc, &b);
}

void spark_live_redirect(live_conn *lc, const char *url) {
    spark_sbuf b = {0};
    if (azu(lc))
        spark_frame_azu_redirect(&b, url);
    else
        spark_frame_redirect(&b, url);
    spark_live_send(lc, &b);
}

void spark_tree_release(shared_tree *t) {
    if (t && --t->refs == 0) {
        spark_html_free(t->h);
        free(t);
    }
}

shared_tree *spark_render(instance *in, viewer *v, json_object *state, json_object *local,
                          bool *used_viewer) {
    spark_live lv = spark_instance_context(in, v, state, local);
    /* Build on what the viewer has: what did not change is its very nodes,
     * which the diff then skips. Compacted in place (an equal tree), so
     * the viewer's tree and the new one still share. */
    if (v && v->tree) {
        spark_html_compact(&v->tree->h);
        lv.reuse = v->tree->h;
    }
    const char *error;
    spark_html *h = spark_live_render(&lv, &error);
    if (!h) return NULL;
    shared_tree *t = malloc(sizeof *t);
    if (!t) {
        spark_html_free(h);
        return NULL;
    }
    t->h = h;
    t->refs = 1;
    if (used_viewer) *used_viewer = lv.used_viewer;
    return t;
}

/* A frame larger than the connection's whole send queue would close it
 * (1008) and every component on it, and the client would reconnect into
 * the same render: this component gets an error instead, and the others
 * go on. */
static bool send_frame(viewer *v, spark_sbuf *b) {
    if (!b->failed && b->len > (size_t)v->inst->cs->cfg->max_queue_bytes) {
        spark_sbuf_free(b);
        static const char why[] = "the component's render is larger than SPARK_MAX_QUEUE";
        if (azu(v->lc))
            spark_frame_azu_error(b, -1, v->inst->id, "too_large", why);
        else
            spark_frame_component_error(b, v->inst->id, "too_large", why);
        spark_live_send(v->lc, b);
        return false;
    }
    bool ok = !b->failed;
    spark_live_send(v->lc, b);
    return ok;
}

bool spark_viewer_send_render(viewer *v, shared_tree *t) {
    spark_sbuf b = {0};
    if (azu(v->lc))
        spark_frame_azu_update(&b, v->inst->id, v->inst->version, spark_html_root(t->h));
    else
        spark_frame_render(&b, v->inst->id, v->inst->version, spark_html_root(t->h));
    return send_frame(v, &b);
}

bool spark_viewer_send_patch(viewer *v, const char *ops, shared_tree *to) {
    if (azu(v->lc)) return strcmp(ops, "[]") == 0 || spark_viewer_send_render(v, to);
    spark_sbuf b = {0};
    spark_frame_patch(&b, v->inst->id, v->inst->version, ops);
    return send_frame(v, &b);
}

void spark_viewer_set_tree(viewer *v, shared_tree *t) {
    if (t) t->refs++;
    spark_tree_release(v->tree);
    v->tree = t;
    v->sent_version = v->inst->version;
}

/* An instance renders at once (on the loop's next turn, so that what
 * arrives together renders once) unless it rendered less than FLUSH_US
 * ago: then at FLUSH_US after that render. A lone change shows without
 * delay; a busy instance renders at most 1/FLUSH_US times a second. */
void spark_viewer_mark_dirty(viewer *v) {
    instance *in = v->inst;
    v->dirty = true;
    spark_components *cs = in->cs;
    if (!lws_dll2_is_detached(&in->in_dirty)) return;
    lws_usec_t now = lws_now_usecs();
    in->flush_due = in->flushed_at + FLUSH_US > now ? in->flushed_at + FLUSH_US : now;
    lws_dll2_add_tail(&in->in_dirty, &cs->dirty);
    if (lws_dll2_is_detached(&cs->flush_timer.list) || in->flush_due < cs->flush_at) {
        cs->flush_at = in->flush_due;
        spark_components_arm(cs, &cs->flush_timer, flush_cb, in->flush_due - now);
    }
}

void spark_instance_mark_dirty(instance *in) {
    EACH_LINK(d, &in->viewers) { spark_viewer_mark_dirty(lws_container_of(d, viewer, in_inst)); }
}

typedef struct {
    char *local;
    const char *user;  /* NULL: the render did not look at the viewer */
    const viewer *own; /* a viewer with older room messages: only its own */
    shared_tree *tree;
} render_memo;

typedef struct {
    shared_tree *from, *to;
    char *ops;
} diff_memo;

static void flush_instance(instance *in) {
    render_memo renders[32];
    diff_memo diffs[32];
    size_t nrenders = 0, ndiffs = 0;
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        if (!v->dirty || !v->joined) continue;
        v->dirty = false;
        const char *local = spark_json_plain(v->local), *user = spark_conn_user_id(v->lc->conn);
        const viewer *own = v->older ? v : NULL;
        render_memo *r = NULL;
        for (size_t i = 0; i < nrenders && !r; i++)
            if (strcmp(renders[i].local, local) == 0 && renders[i].own == own &&
                (!renders[i].user || strcmp(renders[i].user, user) == 0))
                r = &renders[i];
        render_memo fresh = {.own = own};
        if (!r) {
            bool used = false;
            fresh.tree = spark_render(in, v, in->state, v->local, &used);
            if (!fresh.tree) continue;
            fresh.local = strdup(local);
            fresh.user = used ? user : NULL;
            if (nrenders < sizeof renders / sizeof *renders && fresh.local) {
                renders[nrenders] = fresh;
                r = &renders[nrenders++];
            } else {
                r = &fresh;
            }
        }
        if (v->tree == r->tree) {
            if (v->sent_version != in->version) spark_viewer_send_patch(v, "[]", r->tree);
            v->sent_version = in->version;
        } else if (!v->tree) {
            if (spark_viewer_send_render(v, r->tree)) spark_viewer_set_tree(v, r->tree);
        } else {
            const char *ops = NULL;
            for (size_t i = 0; i < ndiffs && !ops; i++)
                if (diffs[i].from == v->tree && diffs[i].to == r->tree) ops = diffs[i].ops;
            spark_sbuf b = {0};
            if (!ops) {
                spark_diff(spark_html_root(v->tree->h), spark_html_root(r->tree->h), &b);
                ops = b.failed ? NULL : b.data;
                if (ops && ndiffs < sizeof diffs / sizeof *diffs) {
                    diffs[ndiffs++] = (diff_memo){v->tree, r->tree, b.data};
                    b.data = NULL;
                }
            }
            bool sent = true;
            if (ops && (strcmp(ops, "[]") != 0 || v->sent_version != in->version))
                sent = spark_viewer_send_patch(v, ops, r->tree);
            else if (!ops)
                sent = spark_viewer_send_render(v, r->tree);
            spark_sbuf_free(&b);
            /* Not sent: the client keeps what it had, and the next change
             * sends a whole render. */
            spark_viewer_set_tree(v, sent ? r->tree : NULL);
        }
        if (r == &fresh) {
            free(fresh.local);
            spark_tree_release(fresh.tree);
        }
    }
    for (size_t i = 0; i < nrenders; i++) {
        free(renders[i].local);
        spark_tree_release(renders[i].tree);
    }
    for (size_t i = 0; i < ndiffs; i++)
        free(diffs[i].ops);
}

static void flush_cb(lws_sorted_usec_list_t *sul) {
    spark_components *cs = lws_container_of(sul, spark_components, flush_timer);
    lws_usec_t now = lws_now_usecs(), next = 0;
    EACH_LINK(d, &cs->dirty) {
        instance *in = lws_container_of(d, instance, in_dirty);
        if (in->flush_due > now) {
            if (!next || in->flush_due < next) next = in->flush_due;
        } else {
            lws_dll2_remove(&in->in_dirty);
            in->flushed_at = now;
            if (in->loaded) flush_instance(in);
        }
    }
    if (next) {
        cs->flush_at = next;
        spark_components_arm(cs, &cs->flush_timer, flush_cb, next - now);
    }
}
