/*
 * instance.h - live component instances and who views them: the types that
 * the component runtime's files share, and the instance cache.
 *
 * The runtime is layered; each file uses only the ones above it:
 *   instance.c   the cache: an instance per served id, its stored state,
 *                loading and eviction (this header);
 *   render.c     renders, the trees viewers were sent, dirty viewers and
 *                the flush that sends them patches;
 *   room_view.c  what a room component shows of its room, as a peer of
 *                the rooms module;
 *   room_older.c the older room messages a viewer paged back to;
 *   writes.c     events: batches, the group write, conflicts, replies;
 *   live.c       the /spark channel: joins, events in, leaves, ticks;
 *                server-rendered pages; the hooks the server calls.
 * What a lower file must tell a higher one (a state arrived, an instance
 * is made or freed) goes through the hooks below, set by live.c.
 */
#ifndef SPARK_INSTANCE_H
#define SPARK_INSTANCE_H

#include "component_ctx.h"
#include "config.h"
#include "each_link.h"
#include "pg.h"
#include "protocol.h"
#include "rooms.h"
#include "store.h"
#include "table.h"

#include <libwebsockets.h>
#include <stdbool.h>

typedef struct spark_components spark_components;
typedef struct instance instance;
typedef struct viewer viewer;
typedef struct live_conn live_conn;
typedef struct shared_tree shared_tree; /* render.h */
typedef struct live_room live_room;     /* room_view.h */

/* One /spark connection. */
struct live_conn {
    spark_conn *conn;
    spark_components *cs;
    spark_dialect dialect; /* the frames it speaks: render.c writes in it */
    lws_dll2_owner_t viewers;
};

/* One (connection, component): its view state and what it was last sent. */
struct viewer {
    lws_dll2_t in_inst, in_conn;
    instance *inst;
    live_conn *lc;
    json_object *local, *work_local;
    shared_tree *tree; /* what the client has, once joined */
    long long sent_version;
    long long join_ref, join_v;
    bool joined, dirty, tracked, awaiting_old;
    bool mounted;            /* on_mount ran: the state had loaded and the join rendered */
    spark_room_older *older; /* room_older.c: its older room messages, or NULL */
};

struct instance {
    spark_table_entry entry; /* in cs->instances, keyed by id */
    lws_dll2_t in_lru;       /* in cs->lru: least recently used first */
    spark_components *cs;
    char *id;
    const char *key;
    const spark_component *type;
    /* the shared state as last stored */
    json_object *state;
    long long version;
    bool persisted, loaded, loading, reload;
    bool seeding, seed_failed; /* live.c: a page's props being stored as version 1 */
    int refs;                  /* queries in flight that point here: not evicted meanwhile */
    lws_usec_t keep_until;
    lws_dll2_owner_t viewers;
    /* writes.c */
    lws_dll2_owner_t queue, batch;
    json_object *batch_state;
    long long batch_base;      /* the version batch_state was computed from (0: none) */
    lws_dll2_t in_write;       /* in the components' write queue */
    json_object *write_events; /* the batch's changes, until the group goes */
    bool writing;
    int attempts;                       /* of the batch, after conflicts */
    lws_usec_t conflict_since;          /* the batch's first conflict */
    lws_sorted_usec_list_t retry_timer; /* a retry after a pause */
    /* render.c */
    lws_dll2_t in_dirty;
    lws_usec_t flushed_at, flush_due; /* last render of its viewers; the next */
    /* live.c */
    lws_sorted_usec_list_t tick_timer;
    /* room_view.c: what render sees, and the rest */
    spark_room_view room;
    live_room *room_state;
};

typedef struct {
    /* The stored state arrived (`first`: the instance was not loaded yet;
     * `changed`: it differs from the cached one), or it could not be read. */
    void (*state_arrived)(instance *in, bool first, bool changed);
    void (*state_failed)(instance *in, const char *why);
    void (*created)(instance *in);
    void (*freeing)(instance *in);
    void (*room_loaded)(instance *in); /* room_view.c: the room arrived once */
} spark_instance_hooks;

#define SPARK_GROUP_MAX 256

struct spark_components {
    struct lws_context *ctx;
    spark_pg *db;
    spark_store *store; /* its statements, on db */
    spark_rooms *rooms;
    const spark_config *cfg;
    const spark_instance_hooks *hooks;
    void (*ready)(void *ud, const char *id); /* live.c: pages waiting */
    void *ready_ud;
    spark_table instances;
    lws_dll2_owner_t lru; /* every instance, least recently used first */
    lws_sorted_usec_list_t sweep_timer;
    bool detached; /* the db connection is going: no queries, no timers */
    /* render.c */
    lws_dll2_owner_t dirty;
    lws_usec_t flush_at; /* when flush_timer fires */
    lws_sorted_usec_list_t flush_timer;
    /* writes.c */
    lws_dll2_owner_t write_queue; /* instances whose batch waits for the next group */
    instance **group;             /* the group write in flight, or NULL */
    int ngroup;
    lws_sorted_usec_list_t write_timer;
};

/* Sets up the cache of `cs` (its other fields are the caller's). */
int spark_instances_init(spark_components *cs);
/* Frees every instance left (their viewers are gone) and the cache. */
void spark_instances_free(spark_components *cs);

instance *spark_instance_find(spark_components *cs, const char *id);
/* The cached instance, or a new one that starts loading. NULL when the id
 * names no component type, or out of memory. */
instance *spark_instance_get(spark_components *cs, const char *id);

/* Reads the stored state again (once more, if a load is in flight). */
void spark_instance_load(instance *in);
/* Takes a stored state: JSON text, or NULL for a component never written. */
void spark_instance_apply_state(instance *in, long long version, const char *state);

/* Keeps the instance cached at least `us` from now. */
void spark_instance_keep(instance *in, lws_usec_t us);

/* Loads every instance again, after the database came back. */
void spark_instances_reload_all(spark_components *cs);

/* The context of a render or a handler run on this instance. */
spark_live spark_instance_context(instance *in, viewer *v, json_object *state, json_object *local);

/* Arms a timer of the runtime unless it is detached (the lws context is
 * about to go, and a timer armed then would point into freed memory). */
void spark_components_arm(spark_components *cs, lws_sorted_usec_list_t *sul, sul_cb_t cb,
                          lws_usec_t us);

/* json-c helpers the runtime's files share. */
json_object *spark_json_deep_copy(json_object *o);
const char *spark_json_plain(json_object *o);

#endif
