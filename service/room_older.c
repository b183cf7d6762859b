/*
 * room_older.c - the older room messages each viewer of a room component
 * paged back to.
 *
 * A viewer that loads a page gets a peer of its own in the rooms module,
 * only to be answered (spark_rooms_history, the channels' history query):
 * it joins no room. The page asked for is the one before the oldest
 * message the viewer has, its older ones or else the room view's recent
 * ones; an answer that no longer joins up with them (the oldest went
 * meanwhile) is dropped. One page at a time per viewer.
 */
#include "room_older.h"

#include "render.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    spark_room_older pub; /* what render sees (viewer->older) */
    spark_room_peer peer;
    viewer *v;
    long long before; /* the page on its way is before this seq; 0: none */
    bool more;        /* the last page said that older ones remain */
} older;

static older *of(const viewer *v) {
    return v->older ? lws_container_of(v->older, older, pub) : NULL;
}

static size_t count(const older *o) { return json_object_array_length(o->pub.messages); }

static long long seq_of(json_object *m) {
    json_object *seq = NULL;
    json_object_object_get_ex(m, "seq", &seq);
    return json_object_is_type(seq, json_type_int) ? json_object_get_int64(seq) : 0;
}

/* The seq of the oldest message the viewer sees, 0 when it sees none. */
static long long oldest_seen(const viewer *v) {
    const older *o = of(v);
    json_object *recent = v->inst->room.messages;
    if (o && count(o)) return seq_of(json_object_array_get_idx(o->pub.messages, 0));
    return recent && json_object_array_length(recent) ? seq_of(json_object_array_get_idx(recent, 0))
                                                      : 0;
}

/* Drops the oldest beyond the bound (they can be loaded again no more:
 * has_older is false at the bound) and says whether a page may follow. */
static void settle(older *o) {
    size_t n = count(o);
    if (n > SPARK_ROOM_OLDER_MAX) {
        json_object_array_del_idx(o->pub.messages, 0, n - SPARK_ROOM_OLDER_MAX);
        o->more = true;
    }
    o->pub.more = o->more && count(o) < SPARK_ROOM_OLDER_MAX;
}

/* {"type":"history","room":R,"messages":[..],"more":b}: the page goes
 * before the older messages the viewer has. */
static void on_page(spark_room_peer *p, const char *kind, const char *frame, size_t len) {
    older *o = lws_container_of(p, older, peer);
    long long before = o->before;
    o->before = 0;
    if (strcmp(kind, "history_page") != 0 || before != oldest_seen(o->v)) return;
    json_tokener *tok = json_tokener_new();
    json_object *page = tok ? json_tokener_parse_ex(tok, frame, (int)len) : NULL;
    json_tokener_free(tok);
    json_object *messages = NULL, *more = NULL, *joined = json_object_new_array();
    json_object_object_get_ex(page, "messages", &messages);
    json_object_object_get_ex(page, "more", &more);
    if (!joined || !json_object_is_type(messages, json_type_array)) {
        json_object_put(joined);
        json_object_put(page);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(messages); i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        long long seq = seq_of(m);
        if (json_object_is_type(m, json_type_object) && seq > 0 && seq < before)
            json_object_array_add(joined, json_object_get(m));
    }
    for (size_t i = 0; i < count(o); i++)
        json_object_array_add(joined,
                              json_object_get(json_object_array_get_idx(o->pub.messages, i)));
    json_object_put(o->pub.messages);
    o->pub.messages = joined;
    o->more = json_object_get_boolean(more);
    json_object_put(page);
    settle(o);
    spark_viewer_mark_dirty(o->v);
}

static void on_page_failed(spark_room_peer *p) { lws_container_of(p, older, peer)->before = 0; }

void spark_room_older_load(viewer *v, int limit) {
    instance *in = v->inst;
    older *o = of(v);
    if (!in->type->room || (o ? o->before || !o->pub.more : !in->room.full)) return;
    long long before = oldest_seen(v);
    if (before <= 0) return;
    if (!o) {
        if (!(o = calloc(1, sizeof *o)) || !(o->pub.messages = json_object_new_array())) {
            free(o);
            return;
        }
        o->v = v;
        o->more = true;
        o->peer = (spark_room_peer){
            .deliver = on_page, .history_failed = on_page_failed, .origin = "", .user_id = in->id};
        settle(o);
        v->older = &o->pub;
    }
    size_t room = SPARK_ROOM_OLDER_MAX - count(o);
    if ((size_t)limit > room) limit = (int)room;
    if (spark_rooms_history(in->cs->rooms, &o->peer, in->id, before, limit) == 0)
        o->before = before;
}

void spark_room_older_keep(instance *in, json_object *m) {
    EACH_LINK(d, &in->viewers) {
        older *o = of(lws_container_of(d, viewer, in_inst));
        if (!o) continue;
        json_object_array_add(o->pub.messages, json_object_get(m));
        settle(o);
    }
}

void spark_room_older_reset(instance *in) {
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        if (!v->older) continue;
        spark_room_older_free(v);
        spark_viewer_mark_dirty(v);
    }
}

void spark_room_older_free(viewer *v) {
    older *o = of(v);
    if (!o) return;
    spark_rooms_peer_gone(v->inst->cs->rooms, &o->peer);
    json_object_put(o->pub.messages);
    free(o);
    v->older = NULL;
}
