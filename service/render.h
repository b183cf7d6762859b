/*
 * render.h - renders of live component instances, the trees their viewers
 * were last sent, and the flush that turns a changed state into patches.
 *
 * A change marks viewers dirty; an instance renders on the loop's next turn
 * (so that what arrives together renders once) unless it rendered less than
 * 16 ms ago, then at 16 ms after that render. One render serves every
 * viewer with the same view state (and the same user, if the render looked
 * at who is viewing), and one diff every viewer that had the same tree.
 */
#ifndef SPARK_RENDER_H
#define SPARK_RENDER_H

#include "instance.h"
#include "protocol.h"

/* A render's tree, kept in the builder that made it (no copy), shared by
 * the viewers it was sent to. `h` may be replaced by an equal, compacted
 * one (spark_html_compact) before a render builds on it. */
struct shared_tree {
    spark_html *h;
    int refs;
};

/* Renders `in` on these states for `v` (NULL: a page, no viewer yet),
 * reusing the nodes of the tree v has, if any.
 * *used_viewer (may be NULL) tells whether the render read who is looking.
 * NULL when the render fails. The caller holds one reference. */
shared_tree *spark_render(instance *in, viewer *v, json_object *state, json_object *local,
                          bool *used_viewer);
void spark_tree_release(shared_tree *t);

/* What a viewer is sent; set_tree remembers what it now has. False when
 * the frame was too large for the connection: the viewer was sent an
 * "error" frame for this component instead. A patch names the tree it
 * leads to: a client of Azu's dialect is sent that tree's whole HTML
 * (component_update) when the ops change something, nothing otherwise. */
bool spark_viewer_send_render(viewer *v, shared_tree *t);
bool spark_viewer_send_patch(viewer *v, const char *ops, shared_tree *to);
void spark_viewer_set_tree(viewer *v, shared_tree *t);

/* Sends `b` on the connection and frees it. */
void spark_live_send(live_conn *lc, spark_sbuf *b);
/* Frames in the connection's dialect. In Azu's, a success is answered
 * only when the client gave a ref. */
void spark_live_reply_ok(live_conn *lc, long long ref);
void spark_live_reply_applied(live_conn *lc, long long ref, long long version);
void spark_live_reply_error(live_conn *lc, long long ref, const char *code, const char *message);
void spark_live_flash(live_conn *lc, const char *cid, const char *level, const char *message);
void spark_live_redirect(live_conn *lc, const char *url);

/* The viewer (every viewer of the instance) gets what changed, soon. */
void spark_viewer_mark_dirty(viewer *v);
void spark_instance_mark_dirty(instance *in);

#endif
