/*
 * writes.c - batches of events and the group write (see writes.h).
 *
 * A batch's handlers run on the loop, each on a copy of the state the one
 * before it left, so that a failing handler changes nothing and a conflict
 * can run them all again on fresher state. What a handler asked for (a
 * reply, a flash, a redirect, a post) waits in its pending until the batch
 * is stored.
 */
#include "writes.h"

#include "channel_internal.h"
#include "log.h"
#include "render.h"
#include "room_older.h"
#include "store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A batch that keeps losing to other writers tries again for this long.
 * Each loss means another writer stored a change, so the component moves
 * on; the pauses below make sure this instance's turn comes too. */
#define CONFLICT_BUDGET_US (5 * LWS_US_PER_SEC)
#define CONFLICT_EAGER     2  /* retries sent at once */
#define CONFLICT_PAUSE_MAX 32 /* ms, the most a pause can grow to */
#define MAX_BATCH          256
#define WRITE_RETRY_US     (10 * LWS_US_PER_MS)
#define MAX_QUEUE          4096

typedef struct pending {
    lws_dll2_t link;
    viewer *viewer; /* NULL once it went away */
    long long ref;
    char *name, *actor, *state_after;
    char *event_id; /* the client's id for it, or NULL */
    json_object *data;
    int rc;
    spark_live outcome; /* only the outcome fields are used */
    /* An external event (spark_conn_event): no viewer, its sender instead. */
    bool external;
    char *actor_name;
    spark_conn_ref caller;
    spark_event_done done;
} pending;

static void run_batch(instance *in);
static void send_group(lws_sorted_usec_list_t *sul);

static void free_pending(pending *p) {
    spark_conn_ref_drop(&p->caller);
    free(p->actor_name);
    free(p->event_id);
    free(p->name);
    free(p->actor);
    free(p->state_after);
    json_object_put(p->data);
    spark_live_clear_outcome(&p->outcome);
    free(p);
}

static void post_to_room(spark_conn *from, const char *room, json_object *posts) {
    size_t n = posts ? json_object_array_length(posts) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *post = json_object_array_get_idx(posts, i), *eph = NULL, *payload = NULL;
        json_object_object_get_ex(post, "ephemeral", &eph);
        json_object_object_get_ex(post, "payload", &payload);
        spark_broadcast(from, room, spark_json_plain(payload),
                        json_object_get_boolean(eph) ? SPARK_EPHEMERAL : 0);
    }
}

/* Tells an external event's sender how it ended: stored (`code` NULL
 * and rc SPARK_OK), refused by its handler, or not stored (`code`). */
static void finish_external(instance *in, pending *p, const char *code, const char *message) {
    spark_conn *c = p->caller.conn;
    if (!c) return;
    bool ok = !code && p->rc == SPARK_OK;
    if (ok) post_to_room(c, in->id, p->outcome.posts);
    if (!p->done) return;
    spark_event_result r = {.ok = ok,
                            .refused = !code && p->rc != SPARK_OK,
                            .code = code,
                            .message = message,
                            .event = p->name,
                            .data = spark_json_plain(p->data),
                            .state = spark_json_plain(in->state),
                            .version = in->version};
    char why[200];
    if (r.refused && p->rc == SPARK_UNKNOWN_EVENT) {
        snprintf(why, sizeof why, "%.40s has no external event %.100s", in->type->name, p->name);
        r.code = "unknown_event";
        r.message = why;
    } else if (r.refused) {
        r.code = p->outcome.fail_code;
        r.message = p->outcome.fail_message;
    }
    p->done(c, &r);
}

/* Ends the batch: stored (error NULL) or refused as a whole. */
static void finish_batch(instance *in, const char *code, const char *message) {
    EACH_LINK(d, &in->viewers) {
        viewer *v = lws_container_of(d, viewer, in_inst);
        if (!v->work_local) continue;
        if (!code && !json_object_equal(v->work_local, v->local)) {
            json_object_put(v->local);
            v->local = v->work_local;
            spark_viewer_mark_dirty(v);
        } else {
            json_object_put(v->work_local);
        }
        v->work_local = NULL;
    }
    EACH_LINK(d, &in->batch) {
        pending *p = lws_container_of(d, pending, link);
        lws_dll2_remove(&p->link);
        viewer *v = p->viewer;
        if (p->external) {
            finish_external(in, p, code, message);
            free_pending(p);
            continue;
        }
        if (v && code) {
            spark_live_reply_error(v->lc, p->ref, code, message);
        } else if (v && p->rc == SPARK_OK) {
            spark_live_reply_ok(v->lc, p->ref);
            if (p->outcome.flash_message)
                spark_live_flash(v->lc, in->id, p->outcome.flash_level, p->outcome.flash_message);
            if (p->outcome.redirect) spark_live_redirect(v->lc, p->outcome.redirect);
            post_to_room(v->lc->conn, in->id, p->outcome.posts);
            if (p->outcome.load_older) spark_room_older_load(v, p->outcome.load_older);
        } else if (v && p->rc == SPARK_UNKNOWN_EVENT) {
            char why[200];
            snprintf(why, sizeof why, "%.40s has no event %.100s", in->type->name, p->name);
            spark_live_reply_error(v->lc, p->ref, "unknown_event", why);
        } else if (v) {
            spark_live_reply_error(v->lc, p->ref, p->outcome.fail_code, p->outcome.fail_message);
        }
        free_pending(p);
    }
    json_object_put(in->batch_state);
    in->batch_state = NULL;
    in->writing = false;
}

/* Events of the batch that were applied before (resent by a client that
 * could not know): each is answered ok with the version it produced, and
 * leaves the batch. Returns how many. */
static int answer_duplicates(instance *in, const char *dups_json) {
    json_object *dups = json_tokener_parse(dups_json), *v = NULL;
    int n = 0;
    EACH_LINK(d, &in->batch) {
        pending *p = lws_container_of(d, pending, link);
        if (!p->event_id || !json_object_object_get_ex(dups, p->event_id, &v)) continue;
        if (p->viewer) spark_live_reply_applied(p->viewer->lc, p->ref, json_object_get_int64(v));
        lws_dll2_remove(&p->link);
        free_pending(p);
        n++;
    }
    json_object_put(dups);
    return n;
}

/* True while a batch that met a conflict may try again: counts the
 * attempt, and starts the clock at the first conflict. */
static bool conflict_budget_left(instance *in) {
    lws_usec_t now = lws_now_usecs();
    if (in->attempts++ == 0) in->conflict_since = now;
    return now - in->conflict_since < CONFLICT_BUDGET_US;
}

static void retry_cb(lws_sorted_usec_list_t *sul) {
    instance *in = lws_container_of(sul, instance, retry_timer);
    run_batch(in);
}

/* Runs the batch again on the state the other writer stored. Two instances
 * that write one component steadily both send as soon as they hear back,
 * so their writes meet in the same order again and again: a loser that
 * only ever retries at once can lose every time. After the first retries,
 * a random pause that grows with each loss lands the next try at another
 * point of the other writer's cycle. */
static void retry_batch(instance *in) {
    if (in->attempts <= CONFLICT_EAGER) {
        run_batch(in);
        return;
    }
    int shift = in->attempts - CONFLICT_EAGER > 5 ? 5 : in->attempts - CONFLICT_EAGER;
    uint32_t most_ms = 1u << shift;
    if (most_ms > CONFLICT_PAUSE_MAX) most_ms = CONFLICT_PAUSE_MAX;
    lws_usec_t pause = (lws_usec_t)randombytes_uniform(most_ms * 1000 + 1);
    spark_components_arm(in->cs, &in->retry_timer, retry_cb, pause);
}

static void on_applied(void *ud, spark_store_outcome outcome, long long version, const char *state,
                       const char *error) {
    char idbuf[2 * SPARK_MAX_CID_BYTES + 3];
    instance *in = ud;
    in->refs--;
    if (in->cs->detached) return;
    if (outcome == SPARK_STORE_APPLIED) {
        json_object_put(in->state);
        in->state = in->batch_state;
        in->batch_state = NULL;
        in->version = version;
        in->persisted = true;
        spark_instance_mark_dirty(in);
        finish_batch(in, NULL, NULL);
    } else if (outcome == SPARK_STORE_DUPLICATE && answer_duplicates(in, error) > 0) {
        spark_instance_apply_state(in, version, state);
        spark_instance_mark_dirty(in);
        if (!in->batch.count) {
            finish_batch(in, "duplicate", NULL); /* nothing left: no reply, no view change */
        } else {
            run_batch(in); /* the others, on the state the first sending made */
            return;
        }
    } else if ((outcome == SPARK_STORE_CONFLICT || outcome == SPARK_STORE_DUPLICATE) &&
               conflict_budget_left(in)) {
        spark_instance_apply_state(in, version, state);
        spark_instance_mark_dirty(in);
        retry_batch(in);
        return;
    } else if (outcome == SPARK_STORE_CONFLICT) {
        spark_instance_apply_state(in, version, state);
        spark_instance_mark_dirty(in);
        spark_log(SPARK_LOG_WARN, "component.conflict", "gave up after repeated conflicts",
                  "component=%s attempts=%d", spark_log_value(idbuf, sizeof idbuf, in->id),
                  in->attempts);
        finish_batch(in, "conflict", "the component kept changing; try again");
    } else if (outcome == SPARK_STORE_BUSY) {
        finish_batch(in, "busy", "the database has too much work waiting; try again");
    } else if (outcome == SPARK_STORE_UNKNOWN) {
        spark_log(SPARK_LOG_WARN, "component.write_unknown", error, "component=%s",
                  spark_log_value(idbuf, sizeof idbuf, in->id));
        finish_batch(in, "unknown_outcome",
                     "the database connection was lost during the write: the change may or may "
                     "not have been stored");
        spark_instance_load(in); /* the stored state tells, and viewers see it */
    } else {
        spark_log(SPARK_LOG_WARN, "component.write_failed", error, "component=%s",
                  spark_log_value(idbuf, sizeof idbuf, in->id));
        finish_batch(in, "unavailable", "the change could not be stored");
        spark_instance_load(in);
    }
    spark_writes_pump(in);
}

/* The batch waits for the next group write, sent from the loop (never from
 * inside a handler's pump) once no other group is in flight. */
static void queue_write(instance *in, json_object *events) {
    spark_components *cs = in->cs;
    in->write_events = json_object_get(events);
    in->refs++;
    lws_dll2_add_tail(&in->in_write, &cs->write_queue);
    if (!cs->group) spark_components_arm(cs, &cs->write_timer, send_group, 0);
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
                       results[i].outcome == SPARK_STORE_DUPLICATE ? results[i].dups
                                                                   : results[i].error);
    }
    free(group);
    if (cs->write_queue.count) spark_components_arm(cs, &cs->write_timer, send_group, 0);
}

static void send_group(lws_sorted_usec_list_t *sul) {
    spark_components *cs = lws_container_of(sul, spark_components, write_timer);
    if (cs->group || !cs->write_queue.count) return;
    int n = cs->write_queue.count < SPARK_GROUP_MAX ? (int)cs->write_queue.count : SPARK_GROUP_MAX;
    instance **group = calloc((size_t)n, sizeof *group);
    if (!group) {
        spark_components_arm(cs, &cs->write_timer, send_group,
                             WRITE_RETRY_US); /* out of memory: later */
        return;
    }
    json_object *batch = json_object_new_array();
    for (int i = 0; i < n; i++) {
        instance *in = lws_container_of(lws_dll2_get_head(&cs->write_queue), instance, in_write);
        lws_dll2_remove(&in->in_write);
        json_object *item = json_object_new_object();
        json_object_object_add(item, "id", json_object_new_string(in->id));
        json_object_object_add(item, "v", json_object_new_int64(in->batch_base));
        json_object_object_add(item, "events", in->write_events);
        in->write_events = NULL;
        json_object_array_add(batch, item);
        group[i] = in;
    }
    int rc = spark_store_apply_batch(cs->store, spark_json_plain(batch), cs->cfg->instance,
                                     on_group_applied, cs);
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

/* Whether a handler made the shared state larger than the bound (a state
 * that was already larger, from SQL, may still shrink). */
static bool too_large(const instance *in, json_object *after, json_object *before) {
    if (after == before || json_object_equal(after, before)) return false;
    size_t limit = (size_t)in->cs->cfg->max_state_bytes;
    return strlen(spark_json_plain(after)) > limit &&
           strlen(spark_json_plain(after)) > strlen(spark_json_plain(before));
}

/* Runs every handler of the batch on the cached state, then stores what
 * changed. Called again, on the fresh state, after a conflict. */
static void run_batch(instance *in) {
    /* Handlers change forks, never the state a render saw (component.c,
     * "Writes"): an event copies what it changes, not the whole state. */
    json_object *working = json_object_get(in->state);
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
        if ((!v && !p->external) || !working) continue;
        /* An external event has no viewer, so no view state. */
        json_object *base = v ? (v->work_local ? v->work_local : v->local) : NULL;
        json_object *s = spark_state_fork(working), *l = v ? spark_json_deep_copy(base) : NULL;
        spark_live lv = spark_instance_context(in, v, s, l);
        lv.shared_writable = true;
        lv.local_writable = v != NULL;
        if (p->external) {
            lv.external = true;
            lv.viewer_id = p->actor;
            lv.viewer_name = p->actor_name;
        }
        lv.event = p->name;
        lv.data = p->data;
        bool ready = s && (l || !v);
        p->rc = ready ? spark_live_dispatch(&lv) : SPARK_FAILED;
        if (!ready && !lv.fail_code) spark_fail(&lv, "unavailable", "out of memory");
        if (p->rc == SPARK_OK && too_large(in, s, working)) {
            /* Every event copies the state and every viewer renders it: a
             * bound keeps one component from taking the instance down. */
            spark_live_clear_outcome(&lv);
            p->rc =
                spark_fail(&lv, "too_large", "the component's state would exceed SPARK_MAX_STATE");
        }
        p->outcome.fail_code = lv.fail_code;
        p->outcome.fail_message = lv.fail_message;
        p->outcome.flash_level = lv.flash_level;
        p->outcome.flash_message = lv.flash_message;
        p->outcome.redirect = lv.redirect;
        p->outcome.posts = lv.posts;
        p->outcome.load_older = lv.load_older;
        if (p->rc != SPARK_OK) {
            json_object_put(s);
            json_object_put(l);
            continue;
        }
        if (!json_object_equal(s, working)) {
            p->state_after = strdup(spark_json_plain(s));
            json_object *e = json_object_new_object();
            json_object_object_add(e, "e", json_object_new_string(p->name));
            json_object_object_add(e, "d", json_object_get(p->data));
            json_object_object_add(e, "a", json_object_new_string(p->actor));
            if (p->event_id) json_object_object_add(e, "i", json_object_new_string(p->event_id));
            json_object_object_add(e, "s", json_object_get(s));
            json_object_array_add(events, e);
            json_object_put(working);
            working = s;
        } else {
            json_object_put(s);
        }
        if (v && !json_object_equal(l, base)) {
            json_object_put(v->work_local);
            v->work_local = l;
        } else {
            json_object_put(l);
        }
    }
    json_object_put(in->batch_state);
    in->batch_state = working;
    /* The version the handlers ran on, taken now: a load that lands before
     * the group goes out moves in->version, and writing these states at
     * that newer version would drop the change it brought. */
    in->batch_base = in->persisted ? in->version : 0;
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

void spark_writes_pump(instance *in) {
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

void spark_writes_event(viewer *v, long long ref, const char *name, const char *event_id,
                        json_object *data) {
    instance *in = v->inst;
    if (in->queue.count >= MAX_QUEUE) {
        spark_live_reply_error(v->lc, ref, "busy", "too many events waiting");
        return;
    }
    pending *p = calloc(1, sizeof *p);
    if (!p || !(p->name = strdup(name)) || !(p->actor = strdup(spark_conn_user_id(v->lc->conn)))) {
        if (p) free_pending(p);
        spark_live_reply_error(v->lc, ref, "unavailable", "out of memory");
        return;
    }
    if (event_id && *event_id && !(p->event_id = strdup(event_id))) {
        free_pending(p);
        spark_live_reply_error(v->lc, ref, "unavailable", "out of memory");
        return;
    }
    p->viewer = v;
    p->ref = ref;
    p->data = json_object_get(data);
    lws_dll2_add_tail(&p->link, &in->queue);
    spark_writes_pump(in);
}

int spark_writes_external(instance *in, spark_conn *c, const char *name, json_object *data,
                          spark_event_done done) {
    if ((!in->loaded && !in->loading) || in->queue.count >= MAX_QUEUE) return -1;
    pending *p = calloc(1, sizeof *p);
    if (!p || !(p->name = strdup(name)) || !(p->actor = strdup(spark_conn_user_id(c))) ||
        !(p->actor_name = strdup(spark_conn_user_name(c)))) {
        if (p) free_pending(p);
        return -1;
    }
    p->external = true;
    p->done = done;
    spark_conn_ref_hold(&p->caller, c);
    p->data = json_object_get(data);
    lws_dll2_add_tail(&p->link, &in->queue);
    spark_writes_pump(in);
    return 0;
}

void spark_writes_fail_external(instance *in, const char *code, const char *message) {
    /* Taken out first: a sender told of the failure may send again, and
     * that one waits for the next load instead of failing in this loop. */
    lws_dll2_owner_t failed = {0};
    EACH_LINK(d, &in->queue) {
        if (!lws_container_of(d, pending, link)->external) continue;
        lws_dll2_remove(d);
        lws_dll2_add_tail(d, &failed);
    }
    EACH_LINK(d, &failed) {
        pending *p = lws_container_of(d, pending, link);
        lws_dll2_remove(&p->link);
        p->rc = SPARK_FAILED;
        finish_external(in, p, code, message);
        free_pending(p);
    }
}

void spark_writes_forget_viewer(viewer *v) {
    instance *in = v->inst;
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
}

void spark_writes_drop_all(instance *in) {
    EACH_LINK(d, &in->queue) { free_pending(lws_container_of(d, pending, link)); }
    EACH_LINK(d, &in->batch) { free_pending(lws_container_of(d, pending, link)); }
}
