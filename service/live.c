/*
 * live.c - the live component runtime of one instance: the /spark channel,
 * the component instances it serves, their viewers, events and
 * propagation.
 *
 * An instance ("todo:groceries") is cached while someone views it (and a
 * short grace after, so the socket of a page just served finds it warm).
 * It holds the shared state as last stored, and its viewers: one per
 * (connection, component), each with its view state and the tree it was
 * last sent.
 *
 * Events of one instance are handled strictly in arrival order. Those that
 * arrive while a write is in flight wait, and then go together: the
 * handlers run one after the other on copies of the cached state, and
 * every event that changed the state is stored, each as its own version and
 * history row. The batches of all components wait for one another: one
 * group write (spark.apply_batch) is in flight at a time, and the batches
 * that became ready meanwhile go together in the next, so one commit (one
 * fsync) serves every component that had events, whatever their number. If
 * another writer got to a component first, its part returns the current
 * state and its handlers run again on it, a bounded number of times.
 * Replies, flashes, redirects and room posts go out only once the batch is
 * stored, so a re-run never shows twice.
 *
 * Propagation never trusts a notification's payload beyond "this id is now
 * at version N": an instance behind it reloads the state once (a
 * notification during a load only marks it for one more), marks its
 * viewers dirty, and they render on the loop's next turn (at most once per
 * 16 ms per instance): once per distinct
 * (view state, viewer if the render looked at the viewer), and one diff
 * per distinct previous tree, since viewers who saw the same render share
 * its tree.
 */
#include "channel_internal.h"
#include "component_internal.h"
#include "live.h"
#include "log.h"
#include "diff.h"
#include "store.h"
#include "strhash.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS         1024
#define FLUSH_US         (16 * LWS_US_PER_MS)
#define SWEEP_US         (2 * LWS_US_PER_SEC)
#define GRACE_US         (10 * LWS_US_PER_SEC)
#define PAGE_GRACE_US    (30 * LWS_US_PER_SEC)
#define TYPING_US        (3 * LWS_US_PER_SEC)
#define MAX_ATTEMPTS     10
#define MAX_BATCH        256
#define MAX_GROUP        256
#define WRITE_RETRY_US   (10 * LWS_US_PER_MS)
#define MAX_QUEUE        4096
#define ROOM_MESSAGES    50
#define MAX_VIEWS_PER_WS 64

/* A render's tree, kept in the builder that made it (no copy), shared by
 * the viewers it was sent to. */
typedef struct shared_tree {
    spark_html *h;
    int refs;
} shared_tree;

typedef struct instance instance;
typedef struct live_conn live_conn;

typedef struct viewer {
    lws_dll2_t in_inst, in_conn;
    instance *inst;
    live_conn *lc;
    json_object *local, *work_local;
    shared_tree *tree; /* what the client has, once joined */
    long long sent_version;
    long long join_ref, join_v;
    bool joined, dirty, tracked, awaiting_old;
} viewer;

struct live_conn {
    spark_conn *conn;
    spark_components *cs;
    lws_dll2_owner_t viewers;
};

typedef struct pending {
    lws_dll2_t link;
    viewer *viewer; /* NULL once it went away */
    long long ref;
    char *name, *actor, *state_after;
    json_object *data;
    int rc;
    spark_live outcome; /* only the outcome fields are used */
} pending;

typedef struct {
    char *user_id, *name;
    lws_usec_t until;
} typing_entry;

struct instance {
    instance *next;
    spark_components *cs;
    lws_dll2_t in_dirty;
    char *id;
    const char *key;
    const spark_component *type;
    json_object *state;
    long long version;
    bool persisted, loaded, loading, reload;
    lws_dll2_owner_t viewers, queue, batch;
    json_object *batch_state;
    lws_dll2_t in_write;       /* in the components' write queue */
    json_object *write_events; /* the batch's changes, until the group goes */
    bool writing;
    int attempts, refs;
    lws_usec_t keep_until;
    lws_usec_t flushed_at, flush_due; /* last render of its viewers; the next */
    lws_sorted_usec_list_t tick_timer;
    /* rooms */
    spark_room_view room;
    long long room_cursor;
    bool room_loaded, room_fetching, room_dirty;
    typing_entry *typing;
    size_t ntyping;
};

struct spark_components {
    struct lws_context *ctx;
    spark_pg *db;
    const spark_config *cfg;
    instance *buckets[NBUCKETS];
    lws_dll2_owner_t dirty;
    lws_dll2_owner_t write_queue; /* instances whose batch waits for the next group */
    instance **group;             /* the group write in flight, or NULL */
    int ngroup;
    lws_usec_t flush_at; /* when flush_timer fires */
    lws_sorted_usec_list_t flush_timer, sweep_timer, typing_timer, write_timer;
    bool detached;
};

static spark_components *active;

/* ---- small helpers --------------------------------------------------------- */

static void send_buf(live_conn *lc, spark_sbuf *b) {
    if (!b->failed && b->data) spark_conn_send(lc->conn, b->data, b->len);
    spark_sbuf_free(b);
}

static void reply_ok(live_conn *lc, long long ref) {
    spark_sbuf b = {0};
    spark_frame_reply_ok(&b, ref);
    send_buf(lc, &b);
}

static void reply_error(live_conn *lc, long long ref, const char *code, const char *message) {
    spark_sbuf b = {0};
    spark_frame_reply_error(&b, ref, code, message);
    send_buf(lc, &b);
}

static json_object *deep_copy(json_object *o) {
    json_object *copy = NULL;
    if (json_object_deep_copy(o, &copy, NULL) != 0) return NULL;
    return copy;
}

static const char *json_text(json_object *o) {
    return json_object_to_json_string_ext(o,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void tree_release(shared_tree *t) {
    if (t && --t->refs == 0) {
        spark_html_free(t->h);
        free(t);
    }
}

static size_t bucket_of(const char *id) { return spark_strhash(id) % NBUCKETS; }

static instance *find_instance(spark_components *cs, const char *id) {
    for (instance *in = cs->buckets[bucket_of(id)]; in; in = in->next)
        if (strcmp(in->id, id) == 0) return in;
    return NULL;
}

/* ---- rendering -------------------------------------------------------------- */

static spark_live context(instance *in, viewer *v, json_object *state, json_object *local) {
    spark_live lv = {.type = in->type,
                     .id = in->id,
                     .key = in->key,
                     .state = state,
                     .local = local,
                     .viewer_id = v ? spark_conn_user_id(v->lc->conn) : "anonymous",
                     .viewer_name = v ? spark_conn_user_name(v->lc->conn) : "anonymous",
                     .room = in->type->room ? &in->room : NULL};
    return lv;
}

static shared_tree *render(instance *in, viewer *v, json_object *state, json_object *local,
                           bool *used_viewer) {
    spark_live lv = context(in, v, state, local);
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

static void send_render(viewer *v, shared_tree *t) {
    spark_sbuf b = {0};
    spark_frame_render(&b, v->inst->id, v->inst->version, spark_html_root(t->h));
    send_buf(v->lc, &b);
}

static void send_patch(viewer *v, const char *ops) {
    spark_sbuf b = {0};
    spark_frame_patch(&b, v->inst->id, v->inst->version, ops);
    send_buf(v->lc, &b);
}

static void set_tree(viewer *v, shared_tree *t) {
    if (t) t->refs++;
    tree_release(v->tree);
    v->tree = t;
    v->sent_version = v->inst->version;
}

/* ---- the flush: dirty viewers get their patches ------------------------------- */

static void flush_cb(lws_sorted_usec_list_t *sul);

/* Timers are armed only while attached: after detach the lws context is
 * about to go, and a timer armed then would point into freed memory. */
static void arm(spark_components *cs, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us) {
    /* lws polls with a timeout in whole ms, rounded down: a wait of a
     * fraction of a ms would spin the loop until it is due. */
    if (us > 0) us = (us + LWS_US_PER_MS - 1) / LWS_US_PER_MS * LWS_US_PER_MS;
    if (!cs->detached) lws_sul_schedule(cs->ctx, 0, sul, cb, us);
}

/* An instance renders at once (on the loop's next turn, so that what
 * arrives together renders once) unless it rendered less than FLUSH_US
 * ago: then at FLUSH_US after that render. A lone change shows without
 * delay; a busy instance renders at most 1/FLUSH_US times a second. */
static void mark_dirty(viewer *v) {
    instance *in = v->inst;
    v->dirty = true;
    spark_components *cs = in->cs;
    if (!lws_dll2_is_detached(&in->in_dirty)) return;
    lws_usec_t now = lws_now_usecs();
    in->flush_due = in->flushed_at + FLUSH_US > now ? in->flushed_at + FLUSH_US : now;
    lws_dll2_add_tail(&in->in_dirty, &cs->dirty);
    if (lws_dll2_is_detached(&cs->flush_timer.list) || in->flush_due < cs->flush_at) {
        cs->flush_at = in->flush_due;
        arm(cs, &cs->flush_timer, flush_cb, in->flush_due - now);
    }
}

static void mark_all_dirty(instance *in) {
    EACH_LINK(d, &in->viewers) { mark_dirty(lws_container_of(d, viewer, in_inst)); }
}

typedef struct {
    char *local;
    const char *user; /* NULL: the render did not look at the viewer */
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
        const char *local = json_text(v->local), *user = spark_conn_user_id(v->lc->conn);
        render_memo *r = NULL;
        for (size_t i = 0; i < nrenders && !r; i++)
            if (strcmp(renders[i].local, local) == 0 &&
                (!renders[i].user || strcmp(renders[i].user, user) == 0))
                r = &renders[i];
        render_memo fresh = {0};
        if (!r) {
            bool used = false;
            fresh.tree = render(in, v, in->state, v->local, &used);
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
            if (v->sent_version != in->version) send_patch(v, "[]");
            v->sent_version = in->version;
        } else if (!v->tree) {
            send_render(v, r->tree);
            set_tree(v, r->tree);
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
            if (ops && (strcmp(ops, "[]") != 0 || v->sent_version != in->version))
                send_patch(v, ops);
            else if (!ops)
                send_render(v, r->tree);
            spark_sbuf_free(&b);
            set_tree(v, r->tree);
        }
        if (r == &fresh) {
            free(fresh.local);
            tree_release(fresh.tree);
        }
    }
    for (size_t i = 0; i < nrenders; i++) {
        free(renders[i].local);
        tree_release(renders[i].tree);
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
        arm(cs, &cs->flush_timer, flush_cb, next - now);
    }
}

/* ---- instances: creation, loading, eviction ------------------------------------ */

static void load(instance *in);
static void fetch_room(instance *in);
static void pump(instance *in);
static void complete_join(viewer *v);

static instance *get_instance(spark_components *cs, const char *id) {
    instance *in = find_instance(cs, id);
    if (in) return in;
    const char *key;
    const spark_component *type = spark_component_of_id(id, &key);
    if (!type || !(in = calloc(1, sizeof *in))) return NULL;
    if (!(in->id = strdup(id))) {
        free(in);
        return NULL;
    }
    in->cs = cs;
    in->type = type;
    in->key = in->id + (key - id);
    in->state = spark_component_initial(type->initial_state);
    if (type->room) in->room.messages = json_object_new_array();
    size_t b = bucket_of(id);
    in->next = cs->buckets[b];
    cs->buckets[b] = in;
    load(in);
    if (type->room) fetch_room(in);
    return in;
}

static void clear_typing(instance *in) {
    for (size_t i = 0; i < in->ntyping; i++) {
        free(in->typing[i].user_id);
        free(in->typing[i].name);
    }
    free(in->typing);
    in->typing = NULL;
    in->ntyping = 0;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void free_instance(instance *in) {
    for (instance **p = &in->cs->buckets[bucket_of(in->id)]; *p; p = &(*p)->next)
        if (*p == in) {
            *p = in->next;
            break;
        }
    lws_dll2_remove(&in->in_dirty);
    lws_dll2_remove(&in->in_write);
    lws_sul_cancel(&in->tick_timer);
    json_object_put(in->state);
    json_object_put(in->batch_state);
    json_object_put(in->write_events);
    json_object_put(in->room.messages);
    free_names(in->room.online, in->room.nonline);
    free_names(in->room.typing, in->room.ntyping);
    clear_typing(in);
    free(in->id);
    free(in);
}

static bool evictable(const instance *in, lws_usec_t now) {
    return !in->viewers.count && !in->refs && !in->writing && !in->queue.count &&
           !in->batch.count && now >= in->keep_until;
}

static void sweep_cb(lws_sorted_usec_list_t *sul) {
    spark_components *cs = lws_container_of(sul, spark_components, sweep_timer);
    lws_usec_t now = lws_now_usecs();
    for (size_t b = 0; b < NBUCKETS; b++)
        for (instance *in = cs->buckets[b], *next; in; in = next) {
            next = in->next;
            if (evictable(in, now)) free_instance(in);
        }
    arm(cs, &cs->sweep_timer, sweep_cb, SWEEP_US);
}

static void apply_state(instance *in, long long version, const char *state) {
    json_object *s = state ? json_tokener_parse(state) : NULL;
    if (!json_object_is_type(s, json_type_object)) {
        json_object_put(s);
        s = spark_component_initial(in->type->initial_state);
        in->persisted = false;
        version = 0;
    } else {
        in->persisted = true;
    }
    json_object_put(in->state);
    in->state = s;
    in->version = version;
}

static void fail_waiting_joins(instance *in, const char *why) {
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        if (!v->joined && v->join_ref != -2) {
            reply_error(v->lc, v->join_ref, "unavailable", why);
            v->join_ref = -2; /* answered; it joins when the state arrives */
        }
    }
}

static void on_loaded(void *ud, long long version, const char *state, const char *error) {
    instance *in = ud;
    in->refs--;
    in->loading = false;
    if (in->cs->detached) return;
    if (error) {
        spark_log(SPARK_LOG_WARN, "component.load_failed", error, "component=%s", in->id);
        if (!in->loaded) fail_waiting_joins(in, "the component's state cannot be read now");
        return; /* db_up or the bus's resync loads it again */
    }
    bool changed = !in->loaded || version != in->version || !state != !in->persisted;
    apply_state(in, version, state);
    bool first = !in->loaded;
    in->loaded = true;
    if (in->reload) {
        in->reload = false;
        load(in);
    }
    if (first) {
        EACH_LINK(d, &in->viewers) {
            viewer *v = lws_container_of(d, viewer, in_inst);
            if (!v->joined) complete_join(v);
        }
    } else if (changed) {
        mark_all_dirty(in);
    }
    pump(in);
}

static void load(instance *in) {
    if (in->loading) {
        in->reload = true;
        return;
    }
    if (spark_store_load(in->cs->db, in->id, on_loaded, in) == 0) {
        in->loading = true;
        in->refs++;
    }
}

/* ---- rooms ------------------------------------------------------------------------ */

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void set_online(instance *in, const char *presence) {
    json_object *p = json_tokener_parse(presence);
    size_t n = json_object_is_type(p, json_type_object) ? (size_t)json_object_object_length(p) : 0;
    char **names = calloc(n ? n : 1, sizeof *names);
    size_t k = 0;
    if (names && n) {
        json_object_object_foreach(p, user, entry) {
            json_object *name = NULL;
            json_object_object_get_ex(entry, "name", &name);
            const char *s =
                json_object_is_type(name, json_type_string) ? json_object_get_string(name) : user;
            if ((names[k] = strdup(s))) k++;
        }
        qsort(names, k, sizeof *names, by_name);
    }
    json_object_put(p);
    free_names(in->room.online, in->room.nonline);
    in->room.online = names;
    in->room.nonline = k;
}

static void rebuild_typing_names(instance *in) {
    free_names(in->room.typing, in->room.ntyping);
    in->room.typing = NULL;
    in->room.ntyping = 0;
    if (!in->ntyping || !(in->room.typing = calloc(in->ntyping, sizeof(char *)))) return;
    for (size_t i = 0; i < in->ntyping; i++)
        if ((in->room.typing[in->room.ntyping] = strdup(in->typing[i].name))) in->room.ntyping++;
}

static void drop_typing(instance *in, const char *user_id) {
    for (size_t i = 0; i < in->ntyping; i++)
        if (strcmp(in->typing[i].user_id, user_id) == 0) {
            free(in->typing[i].user_id);
            free(in->typing[i].name);
            in->typing[i] = in->typing[--in->ntyping];
            rebuild_typing_names(in);
            return;
        }
}

static void on_room(void *ud, const char *messages, const char *presence, long long last_seq,
                    const char *error) {
    instance *in = ud;
    in->refs--;
    in->room_fetching = false;
    if (in->cs->detached) return;
    if (error) {
        spark_log(SPARK_LOG_WARN, "component.room_failed", error, "component=%s", in->id);
        return;
    }
    json_object *fresh = json_tokener_parse(messages);
    size_t n = json_object_is_type(fresh, json_type_array) ? json_object_array_length(fresh) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(fresh, i), *uid = NULL;
        json_object_array_add(in->room.messages, json_object_get(m));
        if (json_object_object_get_ex(m, "user_id", &uid) &&
            json_object_is_type(uid, json_type_string))
            drop_typing(in, json_object_get_string(uid));
    }
    json_object_put(fresh);
    size_t total = json_object_array_length(in->room.messages);
    if (total > ROOM_MESSAGES)
        json_object_array_del_idx(in->room.messages, 0, total - ROOM_MESSAGES);
    set_online(in, presence);
    if (last_seq > in->room_cursor) in->room_cursor = last_seq;
    in->room_loaded = true;
    mark_all_dirty(in);
    if (in->room_dirty) {
        in->room_dirty = false;
        fetch_room(in);
    }
}

static void fetch_room(instance *in) {
    if (in->room_fetching) {
        in->room_dirty = true;
        return;
    }
    if (spark_store_room(in->cs->db, in->id, in->room_cursor, ROOM_MESSAGES, on_room, in) == 0) {
        in->room_fetching = true;
        in->refs++;
    }
}

static void typing_cb(lws_sorted_usec_list_t *sul) {
    spark_components *cs = lws_container_of(sul, spark_components, typing_timer);
    lws_usec_t now = lws_now_usecs(), next = 0;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (instance *in = cs->buckets[b]; in; in = in->next) {
            bool changed = false;
            for (size_t i = 0; i < in->ntyping;) {
                if (in->typing[i].until <= now) {
                    free(in->typing[i].user_id);
                    free(in->typing[i].name);
                    in->typing[i] = in->typing[--in->ntyping];
                    changed = true;
                    continue;
                }
                if (!next || in->typing[i].until < next) next = in->typing[i].until;
                i++;
            }
            if (changed) {
                rebuild_typing_names(in);
                mark_all_dirty(in);
            }
        }
    if (next) arm(cs, &cs->typing_timer, typing_cb, next - now);
}

/* An ephemeral room message: "e|<origin>|{"room":..,"kind":..,"payload":..}". */
static void on_ephemeral(spark_components *cs, const char *rest) {
    const char *bar = strchr(rest, '|');
    json_object *o = bar ? json_tokener_parse(bar + 1) : NULL, *room = NULL, *payload = NULL;
    /* Any role may NOTIFY: a room that is not a string is not ours. */
    if (json_object_object_get_ex(o, "room", &room) &&
        json_object_is_type(room, json_type_string) &&
        json_object_object_get_ex(o, "payload", &payload)) {
        instance *in = find_instance(cs, json_object_get_string(room));
        json_object *type = NULL, *user = NULL, *uid = NULL;
        json_object_object_get_ex(payload, "type", &type);
        json_object_object_get_ex(payload, "user", &user);
        json_object_object_get_ex(payload, "user_id", &uid);
        if (in && in->type->room && json_object_is_type(type, json_type_string) &&
            strcmp(json_object_get_string(type), "typing") == 0 &&
            json_object_is_type(uid, json_type_string)) {
            const char *id = json_object_get_string(uid);
            const char *name =
                json_object_is_type(user, json_type_string) ? json_object_get_string(user) : id;
            drop_typing(in, id);
            typing_entry *t = realloc(in->typing, (in->ntyping + 1) * sizeof *t);
            if (t) {
                in->typing = t;
                t[in->ntyping].user_id = strdup(id);
                t[in->ntyping].name = strdup(name);
                t[in->ntyping].until = lws_now_usecs() + TYPING_US;
                if (t[in->ntyping].user_id && t[in->ntyping].name) {
                    in->ntyping++;
                } else {
                    free(t[in->ntyping].user_id);
                    free(t[in->ntyping].name);
                }
                rebuild_typing_names(in);
                mark_all_dirty(in);
                if (lws_dll2_is_detached(&cs->typing_timer.list))
                    arm(cs, &cs->typing_timer, typing_cb, TYPING_US);
            }
        }
    }
    json_object_put(o);
}

/* ---- events: batches, writes, retries ---------------------------------------------- */

static void free_pending(pending *p) {
    free(p->name);
    free(p->actor);
    free(p->state_after);
    json_object_put(p->data);
    spark_live_clear_outcome(&p->outcome);
    free(p);
}

static void post_to_room(viewer *v, json_object *posts) {
    size_t n = posts ? json_object_array_length(posts) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *post = json_object_array_get_idx(posts, i), *eph = NULL, *payload = NULL;
        json_object_object_get_ex(post, "ephemeral", &eph);
        json_object_object_get_ex(post, "payload", &payload);
        spark_broadcast(v->lc->conn, v->inst->id, json_text(payload),
                        json_object_get_boolean(eph) ? SPARK_EPHEMERAL : 0);
    }
}

/* Ends the batch: stored (error NULL) or refused as a whole. */
static void finish_batch(instance *in, const char *code, const char *message) {
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        if (!v->work_local) continue;
        if (!code && !json_object_equal(v->work_local, v->local)) {
            json_object_put(v->local);
            v->local = v->work_local;
            mark_dirty(v);
        } else {
            json_object_put(v->work_local);
        }
        v->work_local = NULL;
    }
    EACH_LINK(d, &in->batch) {
        pending *p = lws_container_of(d, pending, link);
        lws_dll2_remove(&p->link);
        viewer *v = p->viewer;
        if (v && code) {
            reply_error(v->lc, p->ref, code, message);
        } else if (v && p->rc == SPARK_OK) {
            reply_ok(v->lc, p->ref);
            spark_sbuf b = {0};
            if (p->outcome.flash_message) {
                spark_frame_flash(&b, in->id, p->outcome.flash_level, p->outcome.flash_message);
                send_buf(v->lc, &b);
            }
            if (p->outcome.redirect) {
                spark_frame_redirect(&b, p->outcome.redirect);
                send_buf(v->lc, &b);
            }
            post_to_room(v, p->outcome.posts);
        } else if (v && p->rc == SPARK_UNKNOWN_EVENT) {
            char why[200];
            snprintf(why, sizeof why, "%.40s has no event %.100s", in->type->name, p->name);
            reply_error(v->lc, p->ref, "unknown_event", why);
        } else if (v) {
            reply_error(v->lc, p->ref, p->outcome.fail_code, p->outcome.fail_message);
        }
        free_pending(p);
    }
    json_object_put(in->batch_state);
    in->batch_state = NULL;
    in->writing = false;
}

static void run_batch(instance *in);

static void on_applied(void *ud, spark_store_outcome outcome, long long version, const char *state,
                       const char *error) {
    instance *in = ud;
    in->refs--;
    if (in->cs->detached) return;
    if (outcome == SPARK_STORE_APPLIED) {
        json_object_put(in->state);
        in->state = in->batch_state;
        in->batch_state = NULL;
        in->version = version;
        in->persisted = true;
        mark_all_dirty(in);
        finish_batch(in, NULL, NULL);
    } else if (outcome == SPARK_STORE_CONFLICT && ++in->attempts < MAX_ATTEMPTS) {
        apply_state(in, version, state);
        mark_all_dirty(in);
        run_batch(in);
        return;
    } else if (outcome == SPARK_STORE_CONFLICT) {
        apply_state(in, version, state);
        mark_all_dirty(in);
        spark_log(SPARK_LOG_WARN, "component.conflict", "gave up after repeated conflicts",
                  "component=%s attempts=%d", in->id, in->attempts);
        finish_batch(in, "conflict", "the component kept changing; try again");
    } else if (outcome == SPARK_STORE_BUSY) {
        finish_batch(in, "busy", "the database has too much work waiting; try again");
    } else if (outcome == SPARK_STORE_UNKNOWN) {
        spark_log(SPARK_LOG_WARN, "component.write_unknown", error, "component=%s", in->id);
        finish_batch(in, "unknown_outcome",
                     "the database connection was lost during the write: the change may or may "
                     "not have been stored");
        load(in); /* the stored state tells, and viewers see it */
    } else {
        spark_log(SPARK_LOG_WARN, "component.write_failed", error, "component=%s", in->id);
        finish_batch(in, "unavailable", "the change could not be stored");
        load(in);
    }
    pump(in);
}

static void send_group(lws_sorted_usec_list_t *sul);

/* The batch waits for the next group write, sent from the loop (never from
 * inside a handler's pump) once no other group is in flight. */
static void queue_write(instance *in, json_object *events) {
    spark_components *cs = in->cs;
    in->write_events = json_object_get(events);
    in->refs++;
    lws_dll2_add_tail(&in->in_write, &cs->write_queue);
    if (!cs->group) arm(cs, &cs->write_timer, send_group, 0);
}

static void on_group_applied(void *ud, int n, const spark_store_result *results, const char *error,
                             bool unknown) {
    spark_components *cs = ud;
    instance **group = cs->group;
    int ngroup = cs->ngroup;
    cs->group = NULL;
    cs->ngroup = 0;
    if (!error && n != ngroup) error = "the group write answered for other components";
    for (int i = 0; i < ngroup; i++) {
        if (error)
            on_applied(group[i], unknown ? SPARK_STORE_UNKNOWN : SPARK_STORE_ERROR, 0, NULL, error);
        else
            on_applied(group[i], results[i].outcome, results[i].version, results[i].state,
                       results[i].error);
    }
    free(group);
    if (cs->write_queue.count) arm(cs, &cs->write_timer, send_group, 0);
}

static void send_group(lws_sorted_usec_list_t *sul) {
    spark_components *cs = lws_container_of(sul, spark_components, write_timer);
    if (cs->group || !cs->write_queue.count) return;
    int n = cs->write_queue.count < MAX_GROUP ? (int)cs->write_queue.count : MAX_GROUP;
    instance **group = calloc((size_t)n, sizeof *group);
    if (!group) {
        arm(cs, &cs->write_timer, send_group, WRITE_RETRY_US); /* out of memory: later */
        return;
    }
    json_object *batch = json_object_new_array();
    for (int i = 0; i < n; i++) {
        instance *in = lws_container_of(lws_dll2_get_head(&cs->write_queue), instance, in_write);
        lws_dll2_remove(&in->in_write);
        json_object *item = json_object_new_object();
        json_object_object_add(item, "id", json_object_new_string(in->id));
        json_object_object_add(item, "v", json_object_new_int64(in->persisted ? in->version : 0));
        json_object_object_add(item, "events", in->write_events);
        in->write_events = NULL;
        json_object_array_add(batch, item);
        group[i] = in;
    }
    int rc =
        spark_store_apply_batch(cs->db, json_text(batch), cs->cfg->instance, on_group_applied, cs);
    if (rc == 0) {
        cs->group = group;
        cs->ngroup = n;
    } else {
        for (int i = 0; i < n; i++)
            on_applied(group[i], rc == SPARK_PG_BUSY ? SPARK_STORE_BUSY : SPARK_STORE_ERROR, 0,
                       NULL, "the database is not reachable");
        free(group);
    }
    json_object_put(batch);
}

/* Runs every handler of the batch on the cached state, then stores what
 * changed. Called again, on the fresh state, after a conflict. */
static void run_batch(instance *in) {
    json_object *working = deep_copy(in->state);
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        json_object_put(v->work_local);
        v->work_local = NULL;
    }
    json_object *events = json_object_new_array();
    EACH_LINK(d, &in->batch) {
        pending *p = lws_container_of(d, pending, link);
        spark_live_clear_outcome(&p->outcome);
        free(p->state_after);
        p->state_after = NULL;
        viewer *v = p->viewer;
        if (!v || !working) continue;
        json_object *base = v->work_local ? v->work_local : v->local;
        json_object *s = deep_copy(working), *l = deep_copy(base);
        spark_live lv = context(in, v, s, l);
        lv.shared_writable = lv.local_writable = true;
        lv.event = p->name;
        lv.data = p->data;
        p->rc = s && l ? spark_live_dispatch(&lv) : SPARK_FAILED;
        if (!(s && l) && !lv.fail_code) spark_fail(&lv, "unavailable", "out of memory");
        p->outcome.fail_code = lv.fail_code;
        p->outcome.fail_message = lv.fail_message;
        p->outcome.flash_level = lv.flash_level;
        p->outcome.flash_message = lv.flash_message;
        p->outcome.redirect = lv.redirect;
        p->outcome.posts = lv.posts;
        if (p->rc != SPARK_OK) {
            json_object_put(s);
            json_object_put(l);
            continue;
        }
        if (!json_object_equal(s, working)) {
            p->state_after = strdup(json_text(s));
            json_object *e = json_object_new_object();
            json_object_object_add(e, "e", json_object_new_string(p->name));
            json_object_object_add(e, "d", json_object_get(p->data));
            json_object_object_add(e, "a", json_object_new_string(p->actor));
            json_object_object_add(e, "s", json_object_get(s));
            json_object_array_add(events, e);
            json_object_put(working);
            working = s;
        } else {
            json_object_put(s);
        }
        if (!json_object_equal(l, base)) {
            json_object_put(v->work_local);
            v->work_local = l;
        } else {
            json_object_put(l);
        }
    }
    json_object_put(in->batch_state);
    in->batch_state = working;
    in->writing = true;
    if (!working) {
        finish_batch(in, "unavailable", "out of memory");
    } else if (json_object_array_length(events) == 0) {
        finish_batch(in, NULL, NULL); /* nothing to store: a no-op writes nothing */
    } else {
        queue_write(in, events);
    }
    json_object_put(events);
}

static void pump(instance *in) {
    while (in->loaded && !in->writing && in->queue.count) {
        for (int n = 0; n < MAX_BATCH && in->queue.count; n++) {
            lws_dll2_t *d = lws_dll2_get_head(&in->queue);
            lws_dll2_remove(d);
            lws_dll2_add_tail(d, &in->batch);
        }
        in->attempts = 0;
        run_batch(in);
    }
}

/* ---- viewers ------------------------------------------------------------------------ */

static viewer *find_viewer(live_conn *lc, const char *id) {
    EACH_LINK(d, &lc->viewers) {
        viewer *v = lws_container_of(d, viewer, in_conn);
        if (strcmp(v->inst->id, id) == 0) return v;
    }
    return NULL;
}

/* Sends the client what it lacks: nothing when it joined at the current
 * version, a patch from the version its page showed, or a whole render. */
static void join_with(viewer *v, shared_tree *now, shared_tree *old) {
    if (old) {
        spark_sbuf b = {0};
        spark_diff(spark_html_root(old->h), spark_html_root(now->h), &b);
        if (b.failed)
            send_render(v, now);
        else
            send_patch(v, b.data);
        spark_sbuf_free(&b);
    } else {
        send_render(v, now);
    }
    set_tree(v, now);
    v->joined = true;
    if (v->join_ref != -2) reply_ok(v->lc, v->join_ref);
}

/* The tree a page rendered at the given state showed: the initial view
 * state (a page has no viewer yet). */
static shared_tree *page_render(instance *in, viewer *v, json_object *state) {
    json_object *local = spark_component_initial(in->type->initial_view);
    shared_tree *t = render(in, v, state, local, NULL);
    json_object_put(local);
    return t;
}

/* The state a page was rendered at has arrived: patch from its render. */
static void on_old_state(void *ud, long long version, const char *state, const char *error) {
    instance *in = ud;
    in->refs--;
    if (in->cs->detached) return;
    viewer *v = NULL;
    EACH_LINK(d, &in->viewers) {
        viewer *w = lws_container_of(d, viewer, in_inst);
        if (!v && w->awaiting_old && w->join_v == version) v = w;
    }
    if (!v) return; /* it went away meanwhile */
    v->awaiting_old = false;
    bool used = false;
    shared_tree *now = render(in, v, in->state, v->local, &used), *old = NULL;
    json_object *s = !error && state ? json_tokener_parse(state) : NULL;
    if (now && json_object_is_type(s, json_type_object) && !used) old = page_render(in, v, s);
    json_object_put(s);
    if (now) {
        join_with(v, now, old);
    } else if (v->join_ref != -2) {
        reply_error(v->lc, v->join_ref, "render_failed", "the component cannot be rendered");
    }
    tree_release(now);
    tree_release(old);
}

static void complete_join(viewer *v) {
    instance *in = v->inst;
    bool used = false;
    shared_tree *now = render(in, v, in->state, v->local, &used), *old = NULL;
    if (!now) {
        if (v->join_ref != -2)
            reply_error(v->lc, v->join_ref, "render_failed", "the component cannot be rendered");
        v->join_ref = -2;
        return;
    }
    /* A page rendered at version join_v showed the initial view state; a
     * render that depends on who is looking, or on a room, cannot be redone
     * exactly, so that client gets a whole render. */
    bool exact = v->join_v >= 0 && !used && !in->type->room && v->join_v <= in->version;
    if (!exact) {
        join_with(v, now, NULL);
    } else if (v->join_v == in->version || v->join_v == 0 || !in->persisted) {
        json_object *s = v->join_v == in->version
                             ? json_object_get(in->state)
                             : spark_component_initial(in->type->initial_state);
        old = page_render(in, v, s);
        json_object_put(s);
        if (old && spark_node_equal(spark_html_root(old->h), spark_html_root(now->h))) {
            set_tree(v, now); /* the page is current: nothing to send */
            v->joined = true;
            if (v->join_ref != -2) reply_ok(v->lc, v->join_ref);
        } else {
            join_with(v, now, old);
        }
    } else {
        if (spark_store_state_at(in->cs->db, in->id, v->join_v, on_old_state, in) == 0) {
            in->refs++;
            v->awaiting_old = true;
        } else {
            join_with(v, now, NULL);
        }
    }
    tree_release(now);
    tree_release(old);
}

static void remove_viewer(viewer *v) {
    instance *in = v->inst;
    spark_components *cs = in->cs;
    if (in->type->on_unmount) {
        spark_live lv = context(in, v, in->state, v->local);
        in->type->on_unmount(&lv);
    }
    EACH_LINK(d, &in->queue) {
        pending *p = lws_container_of(d, pending, link);
        if (p->viewer == v) {
            lws_dll2_remove(&p->link);
            free_pending(p);
        }
    }
    EACH_LINK(d, &in->batch) {
        pending *p = lws_container_of(d, pending, link);
        if (p->viewer == v) p->viewer = NULL;
    }
    if (v->tracked && !cs->detached)
        spark_store_untrack(cs->db, cs->cfg->instance, spark_conn_serial(v->lc->conn), in->id);
    lws_dll2_remove(&v->in_inst);
    lws_dll2_remove(&v->in_conn);
    json_object_put(v->local);
    json_object_put(v->work_local);
    tree_release(v->tree);
    free(v);
    if (!in->viewers.count) {
        lws_sul_cancel(&in->tick_timer);
        lws_usec_t until = lws_now_usecs() + GRACE_US;
        if (until > in->keep_until) in->keep_until = until;
    }
}

static void tick_cb(lws_sorted_usec_list_t *sul) {
    instance *in = lws_container_of(sul, instance, tick_timer);
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        if (!v->joined) continue;
        json_object *l = deep_copy(v->local);
        if (!l) continue;
        spark_live lv = context(in, v, in->state, l);
        lv.local_writable = true;
        lv.event = "tick";
        in->type->on_tick(&lv);
        spark_live_clear_outcome(&lv);
        if (!json_object_equal(l, v->local)) {
            json_object_put(v->local);
            v->local = l;
            mark_dirty(v);
        } else {
            json_object_put(l);
        }
    }
    if (in->viewers.count)
        arm(in->cs, &in->tick_timer, tick_cb, (lws_usec_t)in->type->tick_ms * LWS_US_PER_MS);
}

/* ---- the /spark channel --------------------------------------------------------------- */

static void on_join(live_conn *lc, spark_msg *m) {
    spark_components *cs = lc->cs;
    const char *key;
    const spark_component *type = spark_component_of_id(m->cid, &key);
    if (!type) {
        reply_error(lc, m->ref, "unknown_component", "no component type of that name");
        return;
    }
    char scope[SPARK_MAX_CID_BYTES + 16];
    snprintf(scope, sizeof scope, "component:%s", m->cid);
    if (!spark_conn_can(lc->conn, scope)) {
        reply_error(lc, m->ref, "forbidden", "the token does not grant this component");
        return;
    }
    viewer *v = find_viewer(lc, m->cid);
    if (v) remove_viewer(v); /* a join again starts over */
    if (lc->viewers.count >= MAX_VIEWS_PER_WS) {
        reply_error(lc, m->ref, "too_many", "too many components on one connection");
        return;
    }
    instance *in = get_instance(cs, m->cid);
    if (!in || !(v = calloc(1, sizeof *v))) {
        reply_error(lc, m->ref, "unavailable", "out of memory");
        return;
    }
    v->inst = in;
    v->lc = lc;
    v->join_ref = m->ref;
    v->join_v = m->v;
    v->local = spark_component_initial(type->initial_view);
    lws_dll2_add_tail(&v->in_inst, &in->viewers);
    lws_dll2_add_tail(&v->in_conn, &lc->viewers);
    if (type->on_mount) {
        spark_live lv = context(in, v, in->state, v->local);
        lv.local_writable = true;
        lv.event = "mount";
        type->on_mount(&lv);
        spark_live_clear_outcome(&lv);
    }
    if (type->room && !cs->detached &&
        spark_store_track(cs->db, cs->cfg->instance, spark_conn_serial(lc->conn), in->id,
                          spark_conn_user_id(lc->conn), spark_conn_user_name(lc->conn)) == 0)
        v->tracked = true;
    if (type->on_tick && type->tick_ms > 0 && lws_dll2_is_detached(&in->tick_timer.list))
        arm(cs, &in->tick_timer, tick_cb, (lws_usec_t)type->tick_ms * LWS_US_PER_MS);
    if (in->loaded)
        complete_join(v);
    else if (!in->loading)
        load(in);
    if (!in->loaded && !in->loading) {
        reply_error(lc, m->ref, "unavailable", "the database is not reachable");
        v->join_ref = -2;
    }
}

static void on_event(live_conn *lc, spark_msg *m) {
    viewer *v = find_viewer(lc, m->cid);
    if (!v) {
        reply_error(lc, m->ref,
                    spark_component_of_id(m->cid, NULL) ? "not_joined" : "unknown_component",
                    "join the component first");
        return;
    }
    instance *in = v->inst;
    if (in->queue.count >= MAX_QUEUE) {
        reply_error(lc, m->ref, "busy", "too many events waiting");
        return;
    }
    pending *p = calloc(1, sizeof *p);
    if (!p || !(p->name = strdup(m->event)) || !(p->actor = strdup(spark_conn_user_id(lc->conn)))) {
        if (p) free_pending(p);
        reply_error(lc, m->ref, "unavailable", "out of memory");
        return;
    }
    p->viewer = v;
    p->ref = m->ref;
    p->data = json_object_get(m->data);
    lws_dll2_add_tail(&p->link, &in->queue);
    pump(in);
}

static void live_on_connect(spark_conn *c);
static void live_on_message(spark_conn *c, const char *text, size_t len);
static void live_on_close(spark_conn *c, int code, const char *reason);

static const spark_channel live_channel = {.route = "/spark",
                                           .on_connect = live_on_connect,
                                           .on_message = live_on_message,
                                           .on_close = live_on_close};

__attribute__((constructor)) static void register_live_channel(void) {
    spark_channel_register(&live_channel);
}

static void live_on_connect(spark_conn *c) {
    live_conn *lc = calloc(1, sizeof *lc);
    if (!lc || !active) {
        free(lc);
        spark_conn_close(c, 1011, "live components are not available");
        return;
    }
    lc->conn = c;
    lc->cs = active;
    spark_conn_set_data(c, lc, free);
}

static void live_on_message(spark_conn *c, const char *text, size_t len) {
    live_conn *lc = spark_conn_data(c);
    if (!lc) return;
    spark_msg m;
    const char *code, *message;
    if (spark_msg_parse(text, len, &m, &code, &message)) {
        reply_error(lc, m.ref, code, message);
        return;
    }
    switch (m.kind) {
    case SPARK_MSG_JOIN:
        on_join(lc, &m);
        break;
    case SPARK_MSG_EVENT:
        on_event(lc, &m);
        break;
    case SPARK_MSG_LEAVE: {
        viewer *v = find_viewer(lc, m.cid);
        if (v) remove_viewer(v);
        if (m.ref >= 0) {
            if (v)
                reply_ok(lc, m.ref);
            else
                reply_error(lc, m.ref, "not_joined", "that component was not joined");
        }
        break;
    }
    }
    spark_msg_clear(&m);
}

static void live_on_close(spark_conn *c, int code, const char *reason) {
    (void)code, (void)reason;
    live_conn *lc = spark_conn_data(c);
    if (!lc) return;
    EACH_LINK(d, &lc->viewers) { remove_viewer(lws_container_of(d, viewer, in_conn)); }
}

/* ---- pages -------------------------------------------------------------------------------- */

int spark_live_page(const char *id, const char *viewer_id, const char *viewer_name, char **html,
                    long long *version) {
    spark_components *cs = active;
    if (!cs || cs->detached) return -1;
    instance *in = get_instance(cs, id);
    if (!in) return -1;
    lws_usec_t until = lws_now_usecs() + PAGE_GRACE_US;
    if (until > in->keep_until) in->keep_until = until;
    if (!in->loaded || (in->type->room && !in->room_loaded)) {
        if (!in->loading) load(in);
        if (in->type->room && !in->room_fetching) fetch_room(in);
        return spark_pg_get_state(cs->db) == SPARK_PG_UP ? 0 : -1;
    }
    json_object *local = spark_component_initial(in->type->initial_view);
    spark_live lv = context(in, NULL, in->state, local);
    lv.viewer_id = viewer_id;
    lv.viewer_name = viewer_name;
    const char *error;
    spark_html *h = spark_live_render(&lv, &error);
    *html = h ? spark_html_render(h, NULL) : NULL;
    *version = in->version;
    spark_html_free(h);
    json_object_put(local);
    return *html ? 1 : -1;
}

/* ---- the hooks the server calls ------------------------------------------------------------ */

spark_components *spark_components_new(struct lws_context *ctx, struct lws_vhost *vhost,
                                       spark_pg *db, spark_http *http, const spark_config *cfg) {
    (void)vhost;
    spark_components *cs = calloc(1, sizeof *cs);
    if (!cs) return NULL;
    cs->ctx = ctx;
    cs->db = db;
    cs->cfg = cfg;
    active = cs;
    spark_pages_register(http);
    lws_sul_schedule(ctx, 0, &cs->sweep_timer, sweep_cb, SWEEP_US);
    return cs;
}

void spark_components_free(spark_components *cs) {
    if (!cs) return;
    /* The timers were cancelled by detach, before the context went. */
    /* Connections are closed by now: whatever is left is held by queries
     * that will never answer. */
    for (size_t b = 0; b < NBUCKETS; b++)
        for (instance *in = cs->buckets[b], *next; in; in = next) {
            next = in->next;
            EACH_LINK(d, &in->queue) {
                pending *p = lws_container_of(d, pending, link);
                free_pending(p);
            }
            EACH_LINK(d, &in->batch) {
                pending *p = lws_container_of(d, pending, link);
                free_pending(p);
            }
            free_instance(in);
        }
    free(cs->group);
    spark_store_abandon();
    if (active == cs) active = NULL;
    free(cs);
}

static void recheck_all(spark_components *cs) {
    for (size_t b = 0; b < NBUCKETS; b++)
        for (instance *in = cs->buckets[b]; in; in = in->next) {
            load(in);
            if (in->type->room) fetch_room(in);
        }
}

void spark_components_db_up(spark_components *cs) {
    if (cs && !cs->detached) recheck_all(cs);
}

void spark_components_on_notify(spark_components *cs, const char *payload) {
    if (!cs || cs->detached || !payload) return;
    if (strncmp(payload, "e|", 2) == 0) {
        on_ephemeral(cs, payload + 2);
        return;
    }
    bool component = strncmp(payload, "c|", 2) == 0;
    if (!component && strncmp(payload, "m|", 2) != 0) return;
    char *end;
    long long n = strtoll(payload + 2, &end, 10);
    if (*end != '|') return;
    instance *in = find_instance(cs, end + 1);
    if (!in) return;
    if (component && (!in->persisted || n > in->version || !in->loaded)) load(in);
    if (!component && in->type->room && n > in->room_cursor) fetch_room(in);
}

void spark_components_on_resync(spark_components *cs, bool reconnected) {
    if (cs && reconnected && !cs->detached) recheck_all(cs);
}

void spark_components_detach(spark_components *cs) {
    if (!cs) return;
    cs->detached = true;
    cs->db = NULL;
    spark_pages_abandon();
    lws_sul_cancel(&cs->flush_timer);
    lws_sul_cancel(&cs->sweep_timer);
    lws_sul_cancel(&cs->typing_timer);
    lws_sul_cancel(&cs->write_timer);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (instance *in = cs->buckets[b]; in; in = in->next)
            lws_sul_cancel(&in->tick_timer);
}
