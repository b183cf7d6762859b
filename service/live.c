/*
 * live.c - the /spark channel: viewers joining, leaving and sending events,
 * ticks; server-rendered pages of components, and the props a page stores
 * as a never-written component's first version; and the hooks by which the
 * server drives the component runtime (see instance.h for its layers).
 *
 * A join is answered once the instance's state has loaded; the viewer
 * mounts then (on_mount), only if the join renders, and unmounts once when
 * it goes. The client is sent what it lacks: nothing when its page is
 * current, a patch from the version its page was rendered at when that
 * render can be redone exactly, or a whole render.
 */
#include "channel_internal.h"
#include "component_internal.h"
#include "diff.h"
#include "log.h"
#include "protocol.h"
#include "render.h"
#include "room_older.h"
#include "room_view.h"
#include "store.h"
#include "writes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRACE_US         (10 * LWS_US_PER_SEC)
#define PAGE_GRACE_US    (30 * LWS_US_PER_SEC)
#define MAX_VIEWS_PER_WS 64

static void fail_waiting_joins(instance *in, const char *why) {
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        if (!v->joined && v->join_ref != -2) {
            spark_live_reply_error(v->lc, v->join_ref, "unavailable", why);
            v->join_ref = -2; /* answered; it joins when the state arrives */
        }
    }
}

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
    bool sent;
    if (old) {
        spark_sbuf b = {0};
        spark_diff(spark_html_root(old->h), spark_html_root(now->h), &b);
        if (b.failed)
            sent = spark_viewer_send_render(v, now);
        else
            sent = spark_viewer_send_patch(v, b.data, now);
        spark_sbuf_free(&b);
    } else {
        sent = spark_viewer_send_render(v, now);
    }
    spark_viewer_set_tree(v, sent ? now : NULL);
    v->joined = true;
    if (v->join_ref == -2) return;
    if (sent)
        spark_live_reply_ok(v->lc, v->join_ref);
    else
        spark_live_reply_error(v->lc, v->join_ref, "too_large",
                               "the component's render is larger than SPARK_MAX_QUEUE");
}

/* The tree a page rendered at the given state showed: the initial view
 * state (a page has no viewer yet). */
static shared_tree *page_render(instance *in, viewer *v, json_object *state) {
    json_object *local = spark_component_initial(in->type->initial_view);
    shared_tree *t = spark_render(in, v, state, local, NULL);
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
    shared_tree *now = spark_render(in, v, in->state, v->local, &used), *old = NULL;
    json_object *s = !error && state ? json_tokener_parse(state) : NULL;
    if (now && json_object_is_type(s, json_type_object) && !used) old = page_render(in, v, s);
    json_object_put(s);
    if (now) {
        join_with(v, now, old);
    } else if (v->join_ref != -2) {
        spark_live_reply_error(v->lc, v->join_ref, "render_failed",
                               "the component cannot be rendered");
    }
    spark_tree_release(now);
    spark_tree_release(old);
}

/* The join rendered: the viewer mounts. on_mount may change the view
 * state; then `now` is rendered again with it. Returns the render to send
 * (NULL: the render with the mounted view state failed). */
static shared_tree *mount(viewer *v, shared_tree *now, bool *used) {
    instance *in = v->inst;
    v->mounted = true;
    json_object *l = in->type->on_mount ? spark_json_deep_copy(v->local) : NULL;
    if (!l) return now;
    spark_live lv = spark_instance_context(in, v, in->state, l);
    lv.local_writable = true;
    lv.event = "mount";
    in->type->on_mount(&lv);
    spark_live_clear_outcome(&lv);
    if (json_object_equal(l, v->local)) {
        json_object_put(l);
        return now;
    }
    json_object_put(v->local);
    v->local = l;
    spark_tree_release(now);
    *used = false;
    return spark_render(in, v, in->state, v->local, used);
}

/* The state has loaded: the viewer mounts, and is sent what it lacks. A
 * join whose render fails does not mount (no on_mount, no on_unmount). */
static void complete_join(viewer *v) {
    instance *in = v->inst;
    bool used = false;
    shared_tree *now = spark_render(in, v, in->state, v->local, &used), *old = NULL;
    if (now) now = mount(v, now, &used);
    if (!now) {
        if (v->join_ref != -2)
            spark_live_reply_error(v->lc, v->join_ref, "render_failed",
                                   "the component cannot be rendered");
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
            spark_viewer_set_tree(v, now); /* the page is current: nothing to send */
            v->joined = true;
            if (v->join_ref != -2) spark_live_reply_ok(v->lc, v->join_ref);
        } else {
            join_with(v, now, old);
        }
    } else {
        if (spark_store_state_at(in->cs->store, in->id, v->join_v, on_old_state, in) == 0) {
            in->refs++;
            v->awaiting_old = true;
        } else {
            join_with(v, now, NULL);
        }
    }
    spark_tree_release(now);
    spark_tree_release(old);
}

static void remove_viewer(viewer *v) {
    instance *in = v->inst;
    spark_components *cs = in->cs;
    if (v->mounted && in->type->on_unmount) {
        spark_live lv = spark_instance_context(in, v, in->state, v->local);
        in->type->on_unmount(&lv);
    }
    spark_writes_forget_viewer(v);
    spark_room_older_free(v);
    if (v->tracked) spark_rooms_leave(cs->rooms, spark_conn_peer(v->lc->conn), in->id);
    lws_dll2_remove(&v->in_inst);
    lws_dll2_remove(&v->in_conn);
    json_object_put(v->local);
    json_object_put(v->work_local);
    spark_tree_release(v->tree);
    free(v);
    if (!in->viewers.count) {
        lws_sul_cancel(&in->tick_timer);
        spark_instance_keep(in, GRACE_US);
    }
}

static void tick_cb(lws_sorted_usec_list_t *sul) {
    instance *in = lws_container_of(sul, instance, tick_timer);
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        if (!v->joined) continue;
        json_object *l = spark_json_deep_copy(v->local);
        if (!l) continue;
        spark_live lv = spark_instance_context(in, v, in->state, l);
        lv.local_writable = true;
        lv.event = "tick";
        in->type->on_tick(&lv);
        spark_live_clear_outcome(&lv);
        if (!json_object_equal(l, v->local)) {
            json_object_put(v->local);
            v->local = l;
            spark_viewer_mark_dirty(v);
        } else {
            json_object_put(l);
        }
    }
    if (in->viewers.count)
        spark_components_arm(in->cs, &in->tick_timer, tick_cb,
                             (lws_usec_t)in->type->tick_ms * LWS_US_PER_MS);
}

/* Joins m->cid. `quiet`: the join of an Azu event, whose success is not
 * answered (the event is). Returns the viewer, or NULL when the join was
 * refused or failed (and answered so). */
static viewer *on_join(live_conn *lc, spark_msg *m, bool quiet) {
    spark_components *cs = lc->cs;
    const char *key;
    const spark_component *type = spark_component_of_id(m->cid, &key);
    if (!type) {
        spark_live_reply_error(lc, m->ref, "unknown_component", "no component type of that name");
        return NULL;
    }
    char scope[SPARK_MAX_CID_BYTES + 16];
    snprintf(scope, sizeof scope, "component:%s", m->cid);
    if (!spark_conn_can(lc->conn, scope)) {
        spark_live_reply_error(lc, m->ref, "forbidden", "the token does not grant this component");
        return NULL;
    }
    viewer *v = find_viewer(lc, m->cid);
    if (v) remove_viewer(v); /* a join again starts over */
    if (lc->viewers.count >= MAX_VIEWS_PER_WS) {
        spark_live_reply_error(lc, m->ref, "too_many", "too many components on one connection");
        return NULL;
    }
    instance *in = spark_instance_get(cs, m->cid);
    if (!in || !(v = calloc(1, sizeof *v))) {
        spark_live_reply_error(lc, m->ref, "unavailable", "out of memory");
        return NULL;
    }
    v->inst = in;
    v->lc = lc;
    v->join_ref = quiet ? -2 : m->ref;
    v->join_v = m->v;
    v->local = spark_component_initial(type->initial_view);
    lws_dll2_add_tail(&v->in_inst, &in->viewers);
    lws_dll2_add_tail(&v->in_conn, &lc->viewers);
    /* The viewer is present in the component's room; the component shows it. */
    if (type->room && spark_rooms_track_quietly(cs->rooms, spark_conn_peer(lc->conn), in->id) == 0)
        v->tracked = true;
    if (type->on_tick && type->tick_ms > 0 && lws_dll2_is_detached(&in->tick_timer.list))
        spark_components_arm(cs, &in->tick_timer, tick_cb,
                             (lws_usec_t)type->tick_ms * LWS_US_PER_MS);
    if (in->loaded)
        complete_join(v);
    else if (!in->loading)
        spark_instance_load(in);
    if (!in->loaded && !in->loading) {
        spark_live_reply_error(lc, m->ref, "unavailable", "the database is not reachable");
        v->join_ref = -2;
        if (quiet) return NULL; /* the event was answered: it is not queued */
    }
    return v;
}

static void on_event(live_conn *lc, spark_msg *m) {
    viewer *v = find_viewer(lc, m->cid);
    /* Azu's clients need not join: an event joins its component first (its
     * render is sent, no reply), with the same checks as a join. A refused
     * join answers the event. */
    if (!v && lc->dialect == SPARK_DIALECT_AZU && !(v = on_join(lc, m, true))) return;
    if (!v) {
        spark_live_reply_error(
            lc, m->ref, spark_component_of_id(m->cid, NULL) ? "not_joined" : "unknown_component",
            "join the component first");
        return;
    }
    spark_writes_event(v, m->ref, m->event, m->event_id[0] ? m->event_id : NULL, m->data);
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
    spark_components *cs = spark_conn_components(c);
    if (!lc || !cs) {
        free(lc);
        spark_conn_close(c, 1011, "live components are not available");
        return;
    }
    lc->conn = c;
    lc->cs = cs;
    /* ?protocol=azu or ?protocol=spark fixes the dialect up front; without
     * it, the first frame chooses (docs/protocol.md). */
    const char *dialect = spark_conn_query(c, "protocol");
    if (dialect && strcmp(dialect, "azu") == 0) {
        lc->dialect = SPARK_DIALECT_AZU;
    } else if (dialect && strcmp(dialect, "spark") == 0) {
        lc->dialect = SPARK_DIALECT_SPARK;
    } else if (dialect) {
        free(lc);
        spark_conn_close(c, 1008, "protocol is spark or azu");
        return;
    }
    spark_conn_set_data(c, lc, free);
}

static void live_on_message(spark_conn *c, const char *text, size_t len) {
    live_conn *lc = spark_conn_data(c);
    if (!lc) return;
    spark_msg m;
    const char *code, *message;
    if (spark_msg_parse_dialect(text, len, &lc->dialect, &m, &code, &message)) {
        spark_live_reply_error(lc, m.ref, code, message);
        return;
    }
    switch (m.kind) {
    case SPARK_MSG_JOIN:
        on_join(lc, &m, false);
        break;
    case SPARK_MSG_EVENT:
        on_event(lc, &m);
        break;
    case SPARK_MSG_LEAVE: {
        viewer *v = find_viewer(lc, m.cid);
        if (v) remove_viewer(v);
        if (m.ref >= 0) {
            if (v)
                spark_live_reply_ok(lc, m.ref);
            else
                spark_live_reply_error(lc, m.ref, "not_joined", "that component was not joined");
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

/* ---- events from channels ------------------------------------------------------ */

#define MAX_EVENT_NAME 64

SPARK_API int spark_conn_event(spark_conn *c, const char *component_id, const char *event,
                               const char *data_json, spark_event_done done) {
    spark_components *cs = c ? spark_conn_components(c) : NULL;
    if (!cs || cs->detached || spark_conn_closing(c) || !event || !*event ||
        strlen(event) > MAX_EVENT_NAME || !spark_component_of_id(component_id, NULL))
        return -1;
    json_object *data = data_json ? json_tokener_parse(data_json) : json_object_new_object();
    instance *in =
        json_object_is_type(data, json_type_object) ? spark_instance_get(cs, component_id) : NULL;
    /* Kept warm for the next one (a game's moves), as after a viewer leaves. */
    if (in) spark_instance_keep(in, GRACE_US);
    int r = in ? spark_writes_external(in, c, event, data, done) : -1;
    json_object_put(data);
    return r;
}

/* ---- what lower layers tell ------------------------------------------------- */

/* Pages wait for a component's state, and a room component's room. */
static void tell_pages(instance *in) {
    spark_components *cs = in->cs;
    if (cs->ready && (!in->type->room || spark_room_view_loaded(in)))
        cs->ready(cs->ready_ud, in->id);
}

static void state_arrived(instance *in, bool first, bool changed) {
    if (first) {
        tell_pages(in);
        EACH_LINK(d, &in->viewers) {
            viewer *v = lws_container_of(d, viewer, in_inst);
            if (!v->joined) complete_join(v);
        }
    } else if (changed) {
        spark_instance_mark_dirty(in);
    }
    spark_writes_pump(in);
}

static void state_failed(instance *in, const char *why) {
    (void)why;
    if (in->loaded) return;
    fail_waiting_joins(in, "the component's state cannot be read now");
    spark_writes_fail_external(in, "unavailable", "the component's state cannot be read now");
    if (in->cs->ready) in->cs->ready(in->cs->ready_ud, in->id); /* they answer 503 */
}

static void room_loaded(instance *in) {
    if (in->loaded) tell_pages(in);
}

static void created(instance *in) {
    if (in->type->room) spark_room_view_open(in);
}

static void freeing(instance *in) {
    if (in->type->room) spark_room_view_close(in);
}

static const spark_instance_hooks hooks = {state_arrived, state_failed, created, freeing,
                                           room_loaded};

size_t spark_components_cached(const spark_components *cs) { return cs ? cs->instances.count : 0; }

void spark_components_on_ready(spark_components *cs, spark_components_ready_fn fn, void *ud) {
    cs->ready = fn;
    cs->ready_ud = ud;
}

/* ---- pages -------------------------------------------------------------------------------- */

/* A page's props were stored as the component's first version, or the
 * component turned out to have one already: either way the stored state is
 * what the page shows. */
typedef struct {
    instance *in;
    char *state; /* what the props write stored */
} seeding;

static void on_seeded(void *ud, int n, const spark_store_result *results, const char *error,
                      bool unknown) {
    seeding *sd = ud;
    instance *in = sd->in;
    in->refs--;
    in->seeding = false;
    if (!in->cs->detached) {
        const spark_store_result *r = !error && n == 1 ? &results[0] : NULL;
        const char *state = !r                                   ? NULL
                            : r->outcome == SPARK_STORE_APPLIED  ? sd->state
                            : r->outcome == SPARK_STORE_CONFLICT ? r->state
                                                                 : NULL;
        if (state && (!in->persisted || r->version > in->version)) {
            spark_instance_apply_state(in, r->version, state);
            spark_instance_mark_dirty(in);
        } else if (!state) {
            char idbuf[2 * SPARK_MAX_CID_BYTES + 3];
            spark_log(SPARK_LOG_WARN, "component.props_failed",
                      error           ? error
                      : r && r->error ? r->error
                                      : "not stored",
                      "component=%s", spark_log_value(idbuf, sizeof idbuf, in->id));
            in->seed_failed = true;
            if (unknown || (r && r->outcome == SPARK_STORE_UNKNOWN)) spark_instance_load(in);
        }
        tell_pages(in);
    }
    free(sd->state);
    free(sd);
}

/* Stores `props` over the type's initial state as the first version of a
 * component never written, so that every instance shows what the page
 * showed. Returns 0 (the page waits), or -1 when it cannot. */
static int seed(instance *in, const char *props, const char *actor) {
    if (in->seeding) return 0;
    json_object *p = json_tokener_parse(props), *state = NULL, *batch = NULL;
    int rc = -1;
    if (!json_object_is_type(p, json_type_object)) {
        spark_log(SPARK_LOG_WARN, "component.props_refused", "props are not a JSON object",
                  "component=%s", in->type->name);
        goto out;
    }
    state = spark_component_initial(in->type->initial_state);
    json_object_object_foreach(p, key, value) {
        json_object_object_add(state, key, json_object_get(value));
    }
    const char *text = spark_json_plain(state);
    if (strlen(text) > (size_t)in->cs->cfg->max_state_bytes) {
        spark_log(SPARK_LOG_WARN, "component.props_refused", "props would exceed SPARK_MAX_STATE",
                  "component=%s", in->type->name);
        goto out;
    }
    seeding *sd = calloc(1, sizeof *sd);
    if (!sd || !(sd->state = strdup(text))) {
        free(sd);
        goto out;
    }
    sd->in = in;
    json_object *event = json_object_new_object(), *events = json_object_new_array(),
                *item = json_object_new_object();
    json_object_object_add(event, "e", json_object_new_string("mount"));
    json_object_object_add(event, "d", json_object_get(p));
    json_object_object_add(event, "a", json_object_new_string(actor));
    json_object_object_add(event, "s", json_object_get(state));
    json_object_array_add(events, event);
    json_object_object_add(item, "id", json_object_new_string(in->id));
    json_object_object_add(item, "v", json_object_new_int64(0));
    json_object_object_add(item, "events", events);
    batch = json_object_new_array();
    json_object_array_add(batch, item);
    if (spark_store_apply_batch(in->cs->store, spark_json_plain(batch), in->cs->cfg->instance,
                                on_seeded, sd) == 0) {
        in->refs++;
        in->seeding = true;
        rc = 0;
    } else {
        free(sd->state);
        free(sd);
    }
out:
    json_object_put(p);
    json_object_put(state);
    json_object_put(batch);
    return rc;
}

int spark_components_page(spark_components *cs, const char *id, const char *props,
                          const char *viewer_id, const char *viewer_name, char **html,
                          long long *version) {
    if (!cs || cs->detached) return -1;
    instance *in = spark_instance_get(cs, id);
    if (!in) return -1;
    spark_instance_keep(in, PAGE_GRACE_US);
    if (!in->loaded || (in->type->room && !spark_room_view_loaded(in))) {
        if (!in->loading) spark_instance_load(in);
        return spark_pg_get_state(cs->db) == SPARK_PG_UP ? 0 : -1;
    }
    if (props && !in->persisted) {
        if (!in->seed_failed) return seed(in, props, viewer_id);
        in->seed_failed = false; /* this page says so; the next one tries again */
        return -1;
    }
    json_object *local = spark_component_initial(in->type->initial_view);
    spark_live lv = spark_instance_context(in, NULL, in->state, local);
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

spark_components *spark_components_new(struct lws_context *ctx, spark_pg *db, spark_rooms *rooms,
                                       const spark_config *cfg) {
    spark_components *cs = calloc(1, sizeof *cs);
    if (!cs) return NULL;
    cs->ctx = ctx;
    cs->db = db;
    cs->store = spark_store_new(db);
    cs->rooms = rooms;
    cs->cfg = cfg;
    cs->hooks = &hooks;
    if (!cs->store || spark_instances_init(cs)) {
        spark_store_free(cs->store);
        free(cs);
        return NULL;
    }
    return cs;
}

void spark_components_free(spark_components *cs) {
    if (!cs) return;
    /* The timers were cancelled by detach, before the context went.
     * Connections are closed by now: whatever is left is held by queries
     * that will never answer. */
    SPARK_TABLE_EACH(&cs->instances, e) {
        spark_writes_drop_all(lws_container_of(e, instance, entry));
    }
    spark_instances_free(cs);
    free(cs->group);
    spark_store_free(cs->store);
    free(cs);
}

void spark_components_db_up(spark_components *cs) {
    if (cs && !cs->detached) spark_instances_reload_all(cs);
}

/* Only "c|<version>|<id>" concerns components: room messages reach room
 * components through the rooms module, like any member. */
void spark_components_on_notify(spark_components *cs, const char *payload) {
    if (!cs || cs->detached || !payload || strncmp(payload, "c|", 2) != 0) return;
    char *end;
    long long n = strtoll(payload + 2, &end, 10);
    if (*end != '|') return;
    instance *in = spark_instance_find(cs, end + 1);
    if (in && (!in->persisted || n > in->version || !in->loaded)) spark_instance_load(in);
}

void spark_components_on_resync(spark_components *cs, bool reconnected) {
    if (cs && reconnected && !cs->detached) spark_instances_reload_all(cs);
}

void spark_components_detach(spark_components *cs) {
    if (!cs) return;
    cs->detached = true;
    cs->db = NULL;
    spark_store_detach(cs->store);
    lws_sul_cancel(&cs->flush_timer);
    lws_sul_cancel(&cs->sweep_timer);
    lws_sul_cancel(&cs->write_timer);
    SPARK_TABLE_EACH(&cs->instances, e) {
        instance *in = lws_container_of(e, instance, entry);
        lws_sul_cancel(&in->tick_timer);
        if (in->type->room) spark_room_view_detach(in);
    }
}
