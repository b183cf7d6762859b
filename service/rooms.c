/*
 * rooms.c - rooms across instances: who is in which room here, what each
 * of them has been given, and the queries that move them forward.
 *
 * Delivery is driven by cursors, never by notification payloads:
 *  - a room with local members has a cursor, the last seq fetched for it;
 *    "m|<seq>|<room>" with seq past the cursor starts one fetch (never two
 *    at once: a notification during a fetch marks the room dirty);
 *  - each membership has its own cursor, the last seq this connection got.
 *    A fetched message goes to every live member whose cursor is behind it,
 *    so nothing is sent twice;
 *  - a member that resumes from an old seq catches up from the table on
 *    its own, and turns live when a fetch comes back short.
 * Migration 0002 makes seq order equal commit order within a room, so
 * "seq > cursor" never skips a message that commits late. All queries run
 * in order on one connection, so a member that turns live has seen
 * everything that any earlier room fetch delivered to the others.
 *
 * Queries outlive the connections that started them: each carries a ticket
 * that the member clears when it goes away, and a room stays allocated
 * while a query for it is in flight.
 */
#include "rooms.h"

#include "channel_internal.h"
#include "log.h"
#include "metrics.h"
#include "strhash.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS          1024
#define FETCH_LIMIT       500
#define FETCH_LIMIT_TEXT  "500"
#define MAX_ROOM_BYTES    255
#define MAX_EPHEMERAL     7168
#define PRUNE_INTERVAL_US (60 * LWS_US_PER_SEC)

typedef enum { M_JOINING, M_CATCHUP, M_LIVE, M_STALLED } member_state;

typedef struct room room;
typedef struct ticket ticket;

typedef struct member {
    lws_dll2_t in_room, in_conn;
    room *room;
    spark_conn *conn;
    member_state state;
    long long cursor, since, presence_after;
    bool recovered, tracked;
    char *meta;             /* what was tracked, to track again after a reap */
    ticket *stream_q;       /* the stream query in flight for it */
    lws_dll2_t in_presence; /* waiting for the room's presence state */
    lws_dll2_t in_track;    /* in rooms->to_track */
} member;

struct room {
    room *next;
    char *name;
    lws_dll2_owner_t members;
    long long cursor;
    bool ready, fetching, dirty;
    int queries; /* in flight; the room is kept while > 0 */
    /* Members who tracked and wait for the presence state: those the query
     * in flight will answer, and those who tracked after it was sent. */
    lws_dll2_owner_t presence_batch, presence_waiting;
    bool presence_querying;
};

struct ticket {
    spark_rooms *rooms;
    room *room;
    member *member;
    ticket **slot; /* the member's pointer to this ticket */
};

struct spark_rooms {
    struct lws_context *ctx;
    spark_pg *db;
    const spark_config *cfg;
    room *buckets[NBUCKETS];
    bool started;
    lws_dll2_owner_t to_track; /* members whose track goes in the next batch */
    lws_sorted_usec_list_t heartbeat_timer, prune_timer, track_timer;
    spark_rooms_post_failed_fn post_failed;
    void *post_failed_ud;
};

/* ---- the room table ------------------------------------------------------ */

static size_t bucket_of(const char *name) { return spark_strhash(name) % NBUCKETS; }

static room *find_room(spark_rooms *rooms, const char *name) {
    for (room *r = rooms->buckets[bucket_of(name)]; r; r = r->next)
        if (strcmp(r->name, name) == 0) return r;
    return NULL;
}

static room *get_room(spark_rooms *rooms, const char *name) {
    room *r = find_room(rooms, name);
    if (r) return r;
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return NULL;
    }
    size_t b = bucket_of(name);
    r->next = rooms->buckets[b];
    rooms->buckets[b] = r;
    return r;
}

/* Frees a room nobody is in and no query refers to. */
static void release_room(spark_rooms *rooms, room *r) {
    if (r->members.count || r->queries) return;
    for (room **p = &rooms->buckets[bucket_of(r->name)]; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    free(r->name);
    free(r);
}

static bool valid_room(const char *name) {
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= MAX_ROOM_BYTES;
}

static member *find_member(spark_conn *c, const char *name) {
    EACH_LINK(d, spark_conn_memberships(c)) {
        member *m = lws_container_of(d, member, in_conn);
        if (strcmp(m->room->name, name) == 0) return m;
    }
    return NULL;
}

/* ---- queries with tickets ------------------------------------------------- */

/* A ticket for a query about room r and, optionally, member m, whose
 * pointer to it is *slot. A ticket already in that slot is superseded: its
 * answer will no longer reach the member. */
static ticket *new_ticket(spark_rooms *rooms, room *r, member *m, ticket **slot) {
    ticket *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->rooms = rooms;
    t->room = r;
    if (m) {
        if (*slot) (*slot)->member = NULL;
        t->member = m;
        t->slot = slot;
        *slot = t;
    }
    if (r) r->queries++;
    return t;
}

/* Ends a ticket: detaches it from its member and room. Returns the member
 * (NULL if it went away meanwhile). */
static member *end_ticket(ticket *t) {
    member *m = t->member;
    if (m) *t->slot = NULL;
    if (t->room) {
        t->room->queries--;
        release_room(t->rooms, t->room);
    }
    free(t);
    return m;
}

/* Runs a query that reports to a ticket; the ticket ends if it cannot. */
static int query(spark_rooms *rooms, const char *sql, int n, const char *const *params,
                 spark_pg_result_fn cb, ticket *t) {
    if (rooms->db && spark_pg_query(rooms->db, sql, n, params, cb, t) == 0) return 0;
    end_ticket(t);
    return -1;
}

static int query_untracked(spark_rooms *rooms, const char *sql, int n, const char *const *params,
                           spark_pg_result_fn cb, void *ud) {
    return rooms->db ? spark_pg_query(rooms->db, sql, n, params, cb, ud) : -1;
}

/* A query whose only outcome worth noting is failure. */
static void log_failure(void *ud, const PGresult *res, const char *error) {
    (void)res;
    if (error) spark_log(SPARK_LOG_WARN, "rooms.query_failed", error, "what=%s", (char *)ud);
}

/* ---- delivery ------------------------------------------------------------ */

/* The frame clients get for a stored message: the payload object with its
 * seq added, or {"seq":N,"room":R,"payload":P} for other values. It is
 * re-encoded compactly: PostgreSQL's jsonb text has spaces after ':' and
 * ','. Built once per message, however many members get it. */
static char *message_frame(const char *room_name, long long seq, const char *payload, size_t *len) {
    json_object *p = json_tokener_parse(payload), *out = json_object_new_object();
    json_object_object_add(out, "seq", json_object_new_int64(seq));
    if (json_object_is_type(p, json_type_object)) {
        json_object_object_foreach(p, key, value) {
            if (strcmp(key, "seq") != 0) json_object_object_add(out, key, json_object_get(value));
        }
    } else {
        json_object_object_add(out, "room", json_object_new_string(room_name));
        json_object_object_add(out, "payload", json_object_get(p));
    }
    const char *text = json_object_to_json_string_length(
        out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
    char *copy = malloc(*len + 1);
    if (copy) memcpy(copy, text, *len + 1);
    json_object_put(out);
    json_object_put(p);
    return copy;
}

static bool is_presence(const char *kind) { return kind && strcmp(kind, "presence") == 0; }

/* Gives one fetched message to every live member that has not had it. */
static void deliver(room *r, long long seq, const char *payload, const char *origin,
                    const char *kind) {
    size_t len = 0;
    char *text = NULL;
    EACH_LINK(d, &r->members) {
        member *m = lws_container_of(d, member, in_room);
        if (m->state != M_LIVE || seq <= m->cursor) continue;
        m->cursor = seq;
        if (origin && strcmp(origin, spark_conn_origin(m->conn)) == 0) continue;
        if (is_presence(kind) && seq <= m->presence_after) continue;
        if (!text && !(text = message_frame(r->name, seq, payload, &len))) break;
        spark_conn_send(m->conn, text, len);
        spark_metric_add(SPARK_M_ROOM_DELIVERIES, 1);
    }
    free(text);
}

static void send_resume(member *m) {
    char *text = NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("resume"));
    json_object_object_add(o, "room", json_object_new_string(m->room->name));
    json_object_object_add(o, "since", json_object_new_int64(m->since));
    json_object_object_add(o, "recovered", json_object_new_boolean(m->recovered));
    size_t len;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    spark_conn_send(m->conn, s, len);
    json_object_put(o);
    free(text);
}

/* ---- fetching a room ------------------------------------------------------ */

static void fetch_room(spark_rooms *rooms, room *r);

static void on_room_rows(void *ud, const PGresult *res, const char *error) {
    ticket *t = ud;
    spark_rooms *rooms = t->rooms;
    room *r = t->room;
    r->queries++; /* hold the room through end_ticket */
    end_ticket(t);
    r->fetching = false;
    int rows = res ? PQntuples(res) : 0;
    if (error) {
        spark_log(SPARK_LOG_WARN, "rooms.fetch_failed", error, "room=%s", r->name);
        r->dirty = true; /* fetched again when the database is back */
    }
    for (int i = 0; i < rows; i++) {
        long long seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        deliver(r, seq, PQgetvalue(res, i, 1),
                PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
        if (seq > r->cursor) r->cursor = seq;
    }
    r->queries--;
    if (!error && (rows == FETCH_LIMIT || r->dirty) && r->members.count)
        fetch_room(rooms, r);
    else
        release_room(rooms, r);
}

static void fetch_room(spark_rooms *rooms, room *r) {
    if (!r->ready) {
        r->dirty = true; /* its first join query will look */
        return;
    }
    if (r->fetching) {
        r->dirty = true;
        return;
    }
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%lld", r->cursor);
    const char *params[] = {r->name, cursor};
    ticket *t = new_ticket(rooms, r, NULL, NULL);
    r->dirty = false;
    r->fetching = true;
    if (!t || query(rooms,
                    "SELECT seq, payload::text, origin, kind FROM spark.messages"
                    " WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT " FETCH_LIMIT_TEXT,
                    2, params, on_room_rows, t)) {
        r->fetching = false;
        r->dirty = true;
    }
}

/* ---- joining and catching up ---------------------------------------------- */

static void catch_up(spark_rooms *rooms, member *m);

static void go_live(member *m) {
    bool resumed = m->state == M_CATCHUP;
    m->state = M_LIVE;
    if (resumed) send_resume(m);
}

static void on_catch_up_rows(void *ud, const PGresult *res, const char *error) {
    ticket *t = ud;
    spark_rooms *rooms = t->rooms;
    member *m = end_ticket(t);
    if (!m) return;
    if (error) {
        m->state = M_STALLED;
        return;
    }
    int rows = PQntuples(res);
    size_t len;
    for (int i = 0; i < rows; i++) {
        long long seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        char *text = message_frame(m->room->name, seq, PQgetvalue(res, i, 1), &len);
        if (text) spark_conn_send(m->conn, text, len);
        free(text);
        m->cursor = seq;
    }
    if (rows == FETCH_LIMIT)
        catch_up(rooms, m);
    else
        go_live(m);
}

/* Presence diffs are not replayed: the state a tracking client gets is
 * current, and old diffs on top of it would be wrong. */
static void catch_up(spark_rooms *rooms, member *m) {
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%lld", m->cursor);
    const char *params[] = {m->room->name, cursor};
    m->state = M_CATCHUP;
    ticket *t = new_ticket(rooms, m->room, m, &m->stream_q);
    if (!t || query(rooms,
                    "SELECT seq, payload::text FROM spark.messages"
                    " WHERE room = $1 AND seq > $2 AND kind <> 'presence'"
                    " ORDER BY seq LIMIT " FETCH_LIMIT_TEXT,
                    2, params, on_catch_up_rows, t))
        m->state = M_STALLED;
}

static void on_join_bounds(void *ud, const PGresult *res, const char *error) {
    ticket *t = ud;
    spark_rooms *rooms = t->rooms;
    room *r = t->room;
    r->queries++;
    member *m = end_ticket(t);
    if (error) {
        if (m) m->state = M_STALLED;
    } else {
        long long pruned = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        long long last = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        if (!r->ready) {
            r->ready = true;
            r->cursor = last;
        }
        if (m && m->since == SPARK_LIVE) {
            m->cursor = last;
            go_live(m);
        } else if (m) {
            m->recovered = m->since >= pruned;
            m->cursor = m->since;
            catch_up(rooms, m);
        }
        if (r->dirty) fetch_room(rooms, r);
    }
    r->queries--;
    release_room(rooms, r);
}

static void start_join(spark_rooms *rooms, member *m) {
    const char *params[] = {m->room->name};
    m->state = M_JOINING;
    ticket *t = new_ticket(rooms, m->room, m, &m->stream_q);
    if (!t || query(rooms,
                    "SELECT coalesce((SELECT pruned_through FROM spark.rooms WHERE room = $1), 0),"
                    " coalesce((SELECT max(seq) FROM spark.messages WHERE room = $1), 0)",
                    1, params, on_join_bounds, t))
        m->state = M_STALLED;
}

int spark_rooms_join(spark_rooms *rooms, spark_conn *c, const char *name, long long since) {
    if (!valid_room(name) || since < SPARK_LIVE) return -1;
    member *m = find_member(c, name);
    if (!m) {
        room *r = get_room(rooms, name);
        if (!r || !(m = calloc(1, sizeof *m))) {
            if (r) release_room(rooms, r);
            return -1;
        }
        m->room = r;
        m->conn = c;
        lws_dll2_add_tail(&m->in_room, &r->members);
        lws_dll2_add_tail(&m->in_conn, spark_conn_memberships(c));
    }
    m->since = since;
    start_join(rooms, m);
    return 0;
}

/* ---- presence -------------------------------------------------------------- */

static void untrack(spark_rooms *rooms, spark_conn *c, const char *room_name) {
    char serial[24];
    snprintf(serial, sizeof serial, "%" PRIu64, spark_conn_serial(c));
    const char *params[] = {rooms->cfg->instance, serial, room_name};
    query_untracked(rooms, "SELECT spark.presence_untrack($1, $2, $3)", 3, params, log_failure,
                    (void *)"presence_untrack");
}

static void free_member(member *m) {
    if (m->stream_q) m->stream_q->member = NULL;
    lws_dll2_remove(&m->in_presence);
    lws_dll2_remove(&m->in_track);
    lws_dll2_remove(&m->in_room);
    lws_dll2_remove(&m->in_conn);
    free(m->meta);
    free(m);
}

int spark_rooms_leave(spark_rooms *rooms, spark_conn *c, const char *name) {
    member *m = name ? find_member(c, name) : NULL;
    if (!m) return -1;
    room *r = m->room;
    if (m->tracked) untrack(rooms, c, name);
    free_member(m);
    release_room(rooms, r);
    return 0;
}

void spark_rooms_conn_closed(spark_rooms *rooms, spark_conn *c) {
    bool tracked = false;
    EACH_LINK(d, spark_conn_memberships(c)) {
        member *m = lws_container_of(d, member, in_conn);
        room *r = m->room;
        tracked |= m->tracked;
        free_member(m);
        release_room(rooms, r);
    }
    if (tracked) untrack(rooms, c, NULL);
}

static void query_presence(spark_rooms *rooms, room *r);

/* One state answers every member of the batch: it was read after each of
 * their tracks committed, and the diffs up to its seq are in it. */
static void on_presence_state(void *ud, const PGresult *res, const char *error) {
    ticket *t = ud;
    spark_rooms *rooms = t->rooms;
    room *r = t->room;
    r->queries++; /* hold the room through end_ticket */
    end_ticket(t);
    r->presence_querying = false;
    json_object *o = NULL;
    const char *text = NULL;
    size_t len = 0;
    long long after = 0;
    if (!error) {
        after = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("presence_state"));
        json_object_object_add(o, "room", json_object_new_string(r->name));
        json_object_object_add(o, "state", json_tokener_parse(PQgetvalue(res, 0, 0)));
        text = json_object_to_json_string_length(
            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    }
    EACH_LINK(d, &r->presence_batch) {
        member *m = lws_container_of(d, member, in_presence);
        lws_dll2_remove(&m->in_presence);
        if (!text) continue;
        m->presence_after = after;
        spark_conn_send(m->conn, text, len);
    }
    json_object_put(o);
    if (r->presence_waiting.count) query_presence(rooms, r);
    r->queries--;
    release_room(rooms, r);
}

/* At most one presence query per room is in flight; members who track
 * meanwhile wait for the next, so a burst of joins costs a few queries of
 * the room's whole state, not one per member. */
static void query_presence(spark_rooms *rooms, room *r) {
    if (r->presence_querying) return;
    EACH_LINK(d, &r->presence_waiting) {
        lws_dll2_remove(d);
        lws_dll2_add_tail(d, &r->presence_batch);
    }
    const char *params[] = {r->name};
    ticket *t = new_ticket(rooms, r, NULL, NULL);
    r->presence_querying = true;
    if (!t || query(rooms,
                    "SELECT spark.presence_state($1)::text,"
                    " coalesce((SELECT max(seq) FROM spark.messages WHERE room = $1), 0)",
                    1, params, on_presence_state, t)) {
        r->presence_querying = false;
        EACH_LINK(d, &r->presence_batch) { lws_dll2_remove(d); }
    }
}

#define MAX_TRACK_BATCH 500

/* Sends the tracks that gathered since the loop's last turn in statements
 * of spark.presence_track_many (one commit, one diff per room for the
 * whole batch), then asks each room for the state its new members get:
 * queued after the tracks, so it includes them. */
static void send_tracks(lws_sorted_usec_list_t *sul) {
    spark_rooms *rooms = lws_container_of(sul, spark_rooms, track_timer);
    while (rooms->to_track.count) {
        json_object *items = json_object_new_array();
        lws_dll2_owner_t batch = {0};
        for (int n = 0; n < MAX_TRACK_BATCH && rooms->to_track.count; n++) {
            member *m = lws_container_of(lws_dll2_get_head(&rooms->to_track), member, in_track);
            lws_dll2_remove(&m->in_track);
            lws_dll2_add_tail(&m->in_track, &batch);
            json_object *it = json_object_new_object();
            json_object_object_add(it, "conn", json_object_new_uint64(spark_conn_serial(m->conn)));
            json_object_object_add(it, "room", json_object_new_string(m->room->name));
            const char *user = spark_conn_user_id(m->conn), *name = spark_conn_user_name(m->conn);
            json_object_object_add(it, "user", json_object_new_string(user ? user : ""));
            json_object_object_add(it, "name", json_object_new_string(name ? name : ""));
            json_object_object_add(
                it, "meta", m->meta ? json_tokener_parse(m->meta) : json_object_new_object());
            json_object_array_add(items, it);
        }
        const char *params[] = {rooms->cfg->instance,
                                json_object_to_json_string_ext(items, JSON_C_TO_STRING_PLAIN)};
        bool sent = query_untracked(rooms, "SELECT spark.presence_track_many($1, $2::jsonb)", 2,
                                    params, log_failure, (void *)"presence_track") == 0;
        json_object_put(items);
        /* All of them wait first, so that each room's query answers all. */
        EACH_LINK(d, &batch) {
            member *m = lws_container_of(d, member, in_track);
            if (!sent) {
                lws_dll2_remove(&m->in_track);
                continue;
            }
            lws_dll2_remove(&m->in_presence);
            lws_dll2_add_tail(&m->in_presence, &m->room->presence_waiting);
        }
        EACH_LINK(d, &batch) {
            member *m = lws_container_of(d, member, in_track);
            lws_dll2_remove(&m->in_track);
            query_presence(rooms, m->room);
        }
    }
}

/* Tracks from the same turn of the loop (a burst of joins) go together. */
static void schedule_track(spark_rooms *rooms, member *m) {
    lws_dll2_remove(&m->in_track);
    lws_dll2_add_tail(&m->in_track, &rooms->to_track);
    if (lws_dll2_is_detached(&rooms->track_timer.list))
        lws_sul_schedule(rooms->ctx, 0, &rooms->track_timer, send_tracks, 0);
}

int spark_rooms_track(spark_rooms *rooms, spark_conn *c, const char *name, const char *meta_json) {
    if (!valid_room(name)) return -1;
    if (!meta_json) meta_json = "{}";
    json_object *meta = json_tokener_parse(meta_json);
    bool object = json_object_is_type(meta, json_type_object);
    json_object_put(meta);
    if (!object) return -1;
    member *m = find_member(c, name);
    if (!m && (spark_rooms_join(rooms, c, name, SPARK_LIVE) || !(m = find_member(c, name))))
        return -1;
    char *copy = strdup(meta_json);
    if (!copy) return -1;
    free(m->meta);
    m->meta = copy;
    m->tracked = true;
    if (!rooms->db) return -1;
    schedule_track(rooms, m);
    return 0;
}

/* ---- posting ------------------------------------------------------------- */

/* A stored post in flight: who sent it, so that a failure reaches them. */
typedef struct {
    spark_rooms *rooms;
    uint64_t sender; /* 0: posted by no connection */
    char room[];
} post;

void spark_rooms_on_post_failed(spark_rooms *rooms, spark_rooms_post_failed_fn fn, void *ud) {
    rooms->post_failed = fn;
    rooms->post_failed_ud = ud;
}

static void post_failed(spark_rooms *rooms, uint64_t sender) {
    if (sender && rooms->post_failed) rooms->post_failed(rooms->post_failed_ud, sender);
}

static void on_posted(void *ud, const PGresult *res, const char *error) {
    post *p = ud;
    (void)res;
    if (error) {
        spark_log(SPARK_LOG_WARN, "rooms.post_failed", error, "room=%s", p->room);
        post_failed(p->rooms, p->sender);
    } else {
        spark_metric_add(SPARK_M_ROOM_POSTS, 1);
    }
    free(p);
}

static int post_ephemeral(spark_rooms *rooms, const char *origin, const char *name,
                          const char *kind, json_object *payload) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "room", json_object_new_string(name));
    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "payload", json_object_get(payload));
    char *text = NULL;
    const char *body =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int r = -1;
    if (strlen(body) <= MAX_EPHEMERAL && asprintf(&text, "e|%s|%s", origin, body) > 0) {
        const char *params[] = {text};
        r = query_untracked(rooms, "SELECT pg_notify('spark', $1)", 1, params, log_failure,
                            (void *)"ephemeral");
    }
    free(text);
    json_object_put(o);
    return r;
}

int spark_rooms_post(spark_rooms *rooms, spark_conn *from, const char *name, const char *kind,
                     const char *json, unsigned flags) {
    if (!valid_room(name) || !json || !kind || !*kind) return -1;
    size_t len = strlen(json);
    if (len > (size_t)rooms->cfg->max_message_bytes) return -1;
    json_tokener *tok = json_tokener_new();
    json_object *payload = tok ? json_tokener_parse_ex(tok, json, (int)len) : NULL;
    bool ok = tok && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(payload);
        return -1;
    }
    const char *origin = from && (flags & SPARK_EXCLUDE_SELF) ? spark_conn_origin(from) : NULL;
    int r;
    if (flags & SPARK_EPHEMERAL) {
        r = post_ephemeral(rooms, origin ? origin : "", name, kind, payload);
    } else {
        const char *params[] = {name, kind, json, from ? spark_conn_user_id(from) : NULL, origin};
        post *p = malloc(sizeof *p + strlen(name) + 1);
        r = -1;
        if (p) {
            p->rooms = rooms;
            p->sender = from ? spark_conn_serial(from) : 0;
            strcpy(p->room, name);
            r = query_untracked(rooms,
                                "INSERT INTO spark.messages (room, kind, payload, actor, origin)"
                                " VALUES ($1, $2, $3::jsonb, $4, $5)",
                                5, params, on_posted, p);
            if (r) {
                post_failed(rooms, p->sender); /* no database now, or a full queue */
                free(p);
            }
        }
    }
    json_object_put(payload);
    return r;
}

/* ---- notifications --------------------------------------------------------- */

static void on_ephemeral(spark_rooms *rooms, const char *rest) {
    const char *bar = strchr(rest, '|');
    if (!bar) return;
    size_t origin_len = (size_t)(bar - rest);
    json_object *o = json_tokener_parse(bar + 1), *name = NULL, *payload = NULL;
    /* Any role may NOTIFY: the payload is checked like any other input. */
    if (json_object_object_get_ex(o, "room", &name) &&
        json_object_is_type(name, json_type_string) && valid_room(json_object_get_string(name)) &&
        json_object_object_get_ex(o, "payload", &payload)) {
        room *r = find_room(rooms, json_object_get_string(name));
        const char *text = json_object_to_json_string_ext(
            payload, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t len = strlen(text);
        if (r) EACH_LINK(d, &r->members) {
                member *m = lws_container_of(d, member, in_room);
                const char *own = spark_conn_origin(m->conn);
                if (m->state == M_LIVE && !(origin_len && strlen(own) == origin_len &&
                                            memcmp(own, rest, origin_len) == 0))
                    spark_conn_send(m->conn, text, len);
            }
    }
    json_object_put(o);
}

void spark_rooms_on_notify(spark_rooms *rooms, const char *payload) {
    if (strncmp(payload, "e|", 2) == 0) {
        on_ephemeral(rooms, payload + 2);
        return;
    }
    if (strncmp(payload, "m|", 2) != 0) return;
    char *end;
    long long seq = strtoll(payload + 2, &end, 10);
    if (*end != '|') return;
    room *r = find_room(rooms, end + 1);
    if (r && r->members.count && (!r->ready || seq > r->cursor)) fetch_room(rooms, r);
}

/* Every room and member that a lost connection may have left behind. */
static void restart_all(spark_rooms *rooms) {
    for (size_t b = 0; b < NBUCKETS; b++)
        for (room *r = rooms->buckets[b], *next; r; r = next) {
            next = r->next;
            EACH_LINK(d, &r->members) {
                member *m = lws_container_of(d, member, in_room);
                if (m->state == M_STALLED) start_join(rooms, m);
            }
            if (r->ready && !r->fetching) fetch_room(rooms, r);
        }
}

void spark_rooms_on_resync(spark_rooms *rooms, bool reconnected) {
    if (reconnected) restart_all(rooms);
}

/* ---- instance liveness and retention -------------------------------------- */

static void retrack_all(spark_rooms *rooms) {
    for (size_t b = 0; b < NBUCKETS; b++)
        for (room *r = rooms->buckets[b]; r; r = r->next) {
            EACH_LINK(d, &r->members) {
                member *m = lws_container_of(d, member, in_room);
                if (m->tracked) schedule_track(rooms, m);
            }
        }
}

static void on_heartbeat(void *ud, const PGresult *res, const char *error) {
    spark_rooms *rooms = ud;
    if (error) {
        spark_log(SPARK_LOG_WARN, "rooms.heartbeat_failed", error, NULL);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "f") == 0) {
        spark_log(SPARK_LOG_WARN, "rooms.presumed_dead", "presences were reaped; tracking again",
                  NULL);
        retrack_all(rooms);
    }
}

static void on_reaped(void *ud, const PGresult *res, const char *error) {
    (void)ud;
    for (int i = 0; !error && i < PQntuples(res); i++) {
        spark_metric_add(SPARK_M_PRESENCE_REAPED, 1);
        spark_log(SPARK_LOG_INFO, "rooms.reaped", "removed a silent instance's presences",
                  "instance=%s", PQgetvalue(res, i, 0));
    }
}

static void heartbeat(lws_sorted_usec_list_t *sul) {
    spark_rooms *rooms = lws_container_of(sul, spark_rooms, heartbeat_timer);
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%d milliseconds", rooms->cfg->presence_timeout_ms);
    const char *id[] = {rooms->cfg->instance}, *reap[] = {timeout};
    /* Ahead of any backlog (a storm of joins): a heartbeat that waits
     * longer than the timeout gets this instance's presences reaped. */
    spark_pg_query_first(rooms->db, "SELECT spark.instance_heartbeat($1)", 1, id, on_heartbeat,
                         rooms);
    spark_pg_query(rooms->db, "SELECT spark.reap_instances($1::interval)", 1, reap, on_reaped,
                   rooms);
    int every_ms = rooms->cfg->presence_timeout_ms / 3;
    lws_sul_schedule(rooms->ctx, 0, &rooms->heartbeat_timer, heartbeat,
                     (lws_usec_t)(every_ms > 100 ? every_ms : 100) * LWS_US_PER_MS);
}

static void prune(lws_sorted_usec_list_t *sul) {
    spark_rooms *rooms = lws_container_of(sul, spark_rooms, prune_timer);
    const spark_config *cfg = rooms->cfg;
    if (cfg->room_history > 0 || cfg->room_history_age > 0) {
        char count[16], age[32];
        snprintf(count, sizeof count, "%d", cfg->room_history);
        snprintf(age, sizeof age, "%d seconds", cfg->room_history_age);
        const char *params[] = {count, cfg->room_history_age > 0 ? age : NULL};
        spark_pg_query(rooms->db, "SELECT spark.prune_messages($1, $2::interval)", 2, params,
                       log_failure, (void *)"prune_messages");
    }
    lws_sul_schedule(rooms->ctx, 0, &rooms->prune_timer, prune, PRUNE_INTERVAL_US);
}

void spark_rooms_db_up(spark_rooms *rooms) {
    if (!rooms->started) {
        /* A restart under the same id first clears what the last life left. */
        const char *id[] = {rooms->cfg->instance};
        spark_pg_query(rooms->db, "SELECT spark.instance_start($1)", 1, id, log_failure,
                       (void *)"instance_start");
        rooms->started = true;
        heartbeat(&rooms->heartbeat_timer);
        prune(&rooms->prune_timer);
    }
    restart_all(rooms);
}

void spark_rooms_stop(spark_rooms *rooms) {
    lws_sul_cancel(&rooms->heartbeat_timer);
    lws_sul_cancel(&rooms->prune_timer);
    lws_sul_cancel(&rooms->track_timer); /* instance_stop removes every presence */
    const char *id[] = {rooms->cfg->instance};
    spark_pg_query(rooms->db, "SELECT spark.instance_stop($1)", 1, id, log_failure,
                   (void *)"instance_stop");
}

void spark_rooms_detach(spark_rooms *rooms) {
    lws_sul_cancel(&rooms->heartbeat_timer);
    lws_sul_cancel(&rooms->prune_timer);
    lws_sul_cancel(&rooms->track_timer);
    rooms->db = NULL;
}

spark_rooms *spark_rooms_new(struct lws_context *ctx, spark_pg *db, const spark_config *cfg) {
    spark_rooms *rooms = calloc(1, sizeof *rooms);
    if (!rooms) return NULL;
    rooms->ctx = ctx;
    rooms->db = db;
    rooms->cfg = cfg;
    return rooms;
}

void spark_rooms_free(spark_rooms *rooms) {
    if (!rooms) return;
    lws_sul_cancel(&rooms->heartbeat_timer);
    lws_sul_cancel(&rooms->prune_timer);
    lws_sul_cancel(&rooms->track_timer);
    /* Connections are gone by now; rooms kept only by lost queries remain. */
    for (size_t b = 0; b < NBUCKETS; b++)
        for (room *r = rooms->buckets[b], *next; r; r = next) {
            next = r->next;
            free(r->name);
            free(r);
        }
    free(rooms);
}
