/*
 * instance.c - the cache of live component instances of one server.
 *
 * An instance ("todo:groceries") is cached while someone views it, and a
 * short grace after (so that the socket of a page just served finds it
 * warm). It holds the shared state as last stored. Loads never trust a
 * notification's payload beyond "this id is now at version N": a load in
 * flight when another is asked for is followed by one more, so the cache
 * ends at the newest state whatever the order of events.
 *
 * The cache is bounded (SPARK_MAX_COMPONENTS): any client can name new ids,
 * and each costs a load and memory. Past the bound, the least recently used
 * instances that nobody views and nothing holds are dropped at once, grace
 * or not; viewed ones always stay.
 *
 * The layers above are told what happened through the hooks of
 * spark_components (instance.h), never called directly.
 */
#include "instance.h"

#include "log.h"
#include "poll_epoll.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define SWEEP_US (2 * LWS_US_PER_SEC)

json_object *spark_json_deep_copy(json_object *o) {
    json_object *copy = NULL;
    if (json_object_deep_copy(o, &copy, NULL) != 0) return NULL;
    return copy;
}

const char *spark_json_plain(json_object *o) {
    return json_object_to_json_string_ext(o,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

void spark_components_arm(spark_components *cs, lws_sorted_usec_list_t *sul, sul_cb_t cb,
                          lws_usec_t us) {
    /* lws polls with a timeout in whole ms, rounded down: a wait of a
     * fraction of a ms would spin the loop until it is due. */
    if (us > 0) us = (us + LWS_US_PER_MS - 1) / LWS_US_PER_MS * LWS_US_PER_MS;
    if (cs->detached) return;
    lws_sul_schedule(cs->ctx, 0, sul, cb, us);
    if (us <= 0) spark_poll_epoll_due_now();
}

spark_live spark_instance_context(instance *in, viewer *v, json_object *state, json_object *local) {
    spark_live lv = {.type = in->type,
                     .id = in->id,
                     .key = in->key,
                     .state = state,
                     .local = local,
                     .viewer_id = v ? spark_conn_user_id(v->lc->conn) : "anonymous",
                     .viewer_name = v ? spark_conn_user_name(v->lc->conn) : "anonymous",
                     .room = in->type->room ? &in->room : NULL,
                     .older = v && in->type->room ? v->older : NULL};
    return lv;
}

instance *spark_instance_find(spark_components *cs, const char *id) {
    spark_table_entry *e = spark_table_find(&cs->instances, id);
    return e ? lws_container_of(e, instance, entry) : NULL;
}

static void free_instance(instance *in);

static bool busy(const instance *in) {
    return in->viewers.count || in->refs || in->writing || in->queue.count || in->batch.count;
}

/* Drops the least recently used idle instances while there are too many;
 * never `keep`, which the caller is about to hand out. */
static void trim(spark_components *cs, const instance *keep) {
    EACH_LINK(d, &cs->lru) {
        if (cs->instances.count <= (size_t)cs->cfg->max_components) return;
        instance *in = lws_container_of(d, instance, in_lru);
        if (in != keep && !busy(in)) free_instance(in);
    }
}

instance *spark_instance_get(spark_components *cs, const char *id) {
    instance *in = spark_instance_find(cs, id);
    if (in) {
        lws_dll2_remove(&in->in_lru);
        lws_dll2_add_tail(&in->in_lru, &cs->lru);
        return in;
    }
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
    spark_table_add(&cs->instances, &in->entry, in->id);
    lws_dll2_add_tail(&in->in_lru, &cs->lru);
    if (cs->hooks->created) cs->hooks->created(in);
    spark_instance_load(in);
    trim(cs, in);
    return in;
}

static void free_instance(instance *in) {
    spark_components *cs = in->cs;
    if (cs->hooks->freeing) cs->hooks->freeing(in);
    spark_table_remove(&cs->instances, &in->entry);
    lws_dll2_remove(&in->in_lru);
    lws_dll2_remove(&in->in_dirty);
    lws_dll2_remove(&in->in_write);
    lws_sul_cancel(&in->tick_timer);
    lws_sul_cancel(&in->retry_timer);
    json_object_put(in->state);
    json_object_put(in->batch_state);
    json_object_put(in->write_events);
    free(in->id);
    free(in);
}

static bool evictable(const instance *in, lws_usec_t now) {
    return !busy(in) && now >= in->keep_until;
}

static void sweep_cb(lws_sorted_usec_list_t *sul) {
    spark_components *cs = lws_container_of(sul, spark_components, sweep_timer);
    lws_usec_t now = lws_now_usecs();
    SPARK_TABLE_EACH(&cs->instances, e) {
        instance *in = lws_container_of(e, instance, entry);
        if (evictable(in, now)) free_instance(in);
    }
    spark_components_arm(cs, &cs->sweep_timer, sweep_cb, SWEEP_US);
}

int spark_instances_init(spark_components *cs) {
    if (spark_table_init(&cs->instances)) return -1;
    spark_components_arm(cs, &cs->sweep_timer, sweep_cb, SWEEP_US);
    return 0;
}

void spark_instances_free(spark_components *cs) {
    SPARK_TABLE_EACH(&cs->instances, e) { free_instance(lws_container_of(e, instance, entry)); }
    spark_table_free(&cs->instances);
}

void spark_instance_keep(instance *in, lws_usec_t us) {
    lws_usec_t until = lws_now_usecs() + us;
    if (until > in->keep_until) in->keep_until = until;
}

void spark_instance_apply_state(instance *in, long long version, const char *state) {
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

static void on_loaded(void *ud, long long version, const char *state, const char *error) {
    instance *in = ud;
    in->refs--;
    in->loading = false;
    if (in->cs->detached) return;
    if (error) {
        char idbuf[2 * SPARK_MAX_CID_BYTES + 3];
        spark_log(SPARK_LOG_WARN, "component.load_failed", error, "component=%s",
                  spark_log_value(idbuf, sizeof idbuf, in->id));
        /* the database's return, or the bus's resync, loads it again */
        if (in->cs->hooks->state_failed) in->cs->hooks->state_failed(in, error);
        return;
    }
    bool changed = !in->loaded || version != in->version || !state != !in->persisted;
    spark_instance_apply_state(in, version, state);
    bool first = !in->loaded;
    in->loaded = true;
    if (in->reload) {
        in->reload = false;
        spark_instance_load(in);
    }
    if (in->cs->hooks->state_arrived) in->cs->hooks->state_arrived(in, first, changed);
}

void spark_instance_load(instance *in) {
    if (in->loading) {
        in->reload = true;
        return;
    }
    if (spark_store_load(in->cs->store, in->id, on_loaded, in) == 0) {
        in->loading = true;
        in->refs++;
    }
}

void spark_instances_reload_all(spark_components *cs) {
    SPARK_TABLE_EACH(&cs->instances, e) {
        spark_instance_load(lws_container_of(e, instance, entry));
    }
}
