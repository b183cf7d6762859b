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
 * Queries outlive the members that started them: each carries a ticket
 * that the member clears when it goes away, and a room stays allocated
 * while a query for it is in flight.
 *
 * Members are peers (rooms.h): connections and live components alike. A
 * watching component joins with the room's recent messages and presence,
 * read in one statement; a quiet member (a component's viewer) is only
 * present. The module knows nothing else of either. A peer may also ask
 * for a page of a room's history (spark_conn_history) without joining.
 */
#include "rooms.h"

#include "each_link.h"
#include "json_read.h"
#include "log.h"
#include "metrics.h"
#include "poll_epoll.h"
#include "table.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_LIMIT       500
#define FETCH_LIMIT_TEXT  "500"
#define MAX_ROOM_BYTES    255
#define MAX_EPHEMERAL     7168
#define PRUNE_INTERVAL_US (60 * LWS_US_PER_SEC)
#define MAC_VARIANT       sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define MAC_TEXT          43 /* crypto_auth_BYTES in unpadded base64url */
/* A room fetches again at most every PACE_US_PER_MEMBER x its local
 * members, and at least every PACE_MAX_US (see fetch_room). */
#define PACE_US_PER_MEMBER 100
#define PACE_MAX_US        (50 * LWS_US_PER_MS)

typedef enum { M_JOINING, M_CATCHUP, M_LIVE, M_STALLED } member_state;

typedef struct room room;
typedef struct ticket ticket;

typedef struct member {
    lws_dll2_t in_room, in_peer;
    room *room;
    spark_room_peer *peer;
    bool quiet; /* present only: nothing is delivered to it */
    int recent; /* > 0: a watching component, joined with this many */
    member_state state;
    long long cursor, since, presence_after;
    bool recovered, tracked;
    char *meta;             /* what was tracked, to track again after a reap */
    ticket *stream_q;       /* the stream query in flight for it */
    lws_dll2_t in_presence; /* waiting for the room's presence state */
    lws_dll2_t in_track;    /* in rooms->to_track */
} member;

struct room {
    spark_table_entry entry; /* in rooms->table, keyed by name */
    spark_rooms *rooms;
    char *name;
    lws_dll2_owner_t members;
    long long cursor;
    bool ready, fetching, dirty;
    bool paced;            /* a fetch waits for `pace` */
    lws_usec_t fetched_at; /* when the last fetch was sent */
    lws_sorted_usec_list_t pace;
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

/* How ephemeral notifications are authenticated (rooms.h). */
typedef enum {
    NOTIFY_OPEN,   /* no key, SPARK_AUTH=off: unauthenticated, as all else is */
    NOTIFY_CLOSED, /* no key, SPARK_AUTH=on: ephemeral messages are refused */
    NOTIFY_KEYED,  /* "s|MAC|origin|json", MAC = crypto_auth("origin|json") */
} notify_mode;

struct spark_rooms {
    struct lws_context *ctx;
    spark_pg *db;
    const spark_config *cfg;
    spark_table table; /* rooms with members or queries */
    bool started;
    lws_dll2_owner_t to_track; /* members whose track goes in the next batch */
    /* Connections gone whose presences go in the next untrack, as text:
     * "{serial,serial,...}" without its closing brace. */
    char *untracks;
    size_t untracks_len, untracks_cap;
    lws_sorted_usec_list_t heartbeat_timer, prune_timer, track_timer, untrack_timer;
    spark_rooms_post_failed_fn post_failed;
    void *post_failed_ud;
    notify_mode notify;
    unsigned char notify_key[crypto_auth_KEYBYTES];
    /* SPARK_CROWDED_ROOM as text: the p_most of every query that posts or
     * reads presence, so that SQL judges crowded rooms (sql/30_channels). */
    char most[16];
};

/* ---- the room table ------------------------------------------------------ */

static room *find_room(spark_rooms *rooms, const char *name) {
    spark_table_entry *e = spark_table_find(&rooms->table, name);
    return e ? lws_container_of(e, room, entry) : NULL;
}

static room *get_room(spark_rooms *rooms, const char *name) {
    room *r = find_room(rooms, name);
    if (r) return r;
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return NULL;
    }
    r->rooms = rooms;
    spark_table_add(&rooms->table, &r->entry, r->name);
    return r;
}

/* Frees a room nobody is in and no query refers to. */
static void release_room(spark_rooms *rooms, room *r) {
    if (r->members.count || r->queries) return;
    spark_table_remove(&rooms->table, &r->entry);
    free(r->name);
    free(r);
}

static bool valid_room(const char *name) {
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= MAX_ROOM_BYTES;
}

static member *find_member(spark_room_peer *p, const char *name) {
    EACH_LINK(d, &p->memberships) {
        member *m = lws_container_of(d, member, in_peer);
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

/* Compact JSON text of `o` as a frame with one reference; consumes `o`. */
static spark_frame *frame_text(json_object *o) {
    size_t len;
    const char *text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    spark_frame *f = text ? spark_frame_new(text, len) : NULL;
    json_object_put(o);
    return f;
}

/* The frame channel clients get for a stored message: the payload object
 * with its seq added, or {"seq":N,"room":R,"payload":P} for other values.
 * The runtime's "seq" is set after the payload's keys, so a payload's own
 * "seq" never survives (channels resume by it). It is re-encoded
 * compactly: PostgreSQL's jsonb text has spaces after ':' and ','. Built
 * once per message, however many members get it. */
static spark_frame *message_frame(const char *room_name, long long seq, const char *payload) {
    json_object *p = json_tokener_parse(payload), *out = json_object_new_object();
    if (json_object_is_type(p, json_type_object)) {
        json_object_object_foreach(p, key, value) {
            if (strcmp(key, "seq") != 0) json_object_object_add(out, key, json_object_get(value));
        }
    } else {
        json_object_object_add(out, "room", json_object_new_string(room_name));
        json_object_object_add(out, "payload", json_object_get(p));
    }
    json_object_object_add(out, "seq", json_object_new_int64(seq));
    json_object_put(p);
    return frame_text(out);
}

/* The frame an enveloped peer (a /spark connection) gets:
 * {"t":"msg","room":R,"kind":K,"seq":N,"data":P}, seq only when N >= 0.
 * Every key is the runtime's; the payload is nested whole under "data",
 * so nothing in it can become a control frame. Takes `data`. */
static spark_frame *envelope_frame(const char *room_name, const char *kind, long long seq,
                                   json_object *data) {
    json_object *out = json_object_new_object();
    json_object_object_add(out, "t", json_object_new_string("msg"));
    json_object_object_add(out, "room", json_object_new_string(room_name));
    json_object_object_add(out, "kind", json_object_new_string(kind));
    if (seq >= 0) json_object_object_add(out, "seq", json_object_new_int64(seq));
    json_object_object_add(out, "data", data);
    return frame_text(out);
}

static bool is_presence(const char *kind) { return kind && strcmp(kind, "presence") == 0; }

/* The kinds that are shown to members; any other is stored only. */
static bool is_shown(const char *kind) {
    return kind && (strcmp(kind, "message") == 0 || is_presence(kind));
}

/* One delivery to a peer: by reference where it takes shared frames. */
static void give(spark_room_peer *p, const char *kind, spark_frame *f) {
    if (p->deliver_frame)
        p->deliver_frame(p, kind, f);
    else
        p->deliver(p, kind, spark_frame_text(f), f->len);
}

/* Frames in a channel's own shape. An enveloped peer is given none of
 * them: it gets messages through send_enveloped() only. */
static void send_to(member *m, const char *kind, spark_frame *f) {
    if (f && !m->quiet && !m->peer->enveloped) give(m->peer, kind, f);
}

/* The same, for text not yet in a frame. */
static void send_text_to(member *m, const char *kind, const char *text, size_t len) {
    if (m->quiet || m->peer->enveloped) return;
    spark_frame *f = spark_frame_new(text, len);
    send_to(m, kind, f);
    spark_frame_unref(f);
}

/* Gives an enveloped member a "message" or "ephemeral"; the envelope is
 * built on first use into *env and shared by the members that follow. */
static bool send_enveloped(member *m, const char *kind, long long seq, const char *payload,
                           spark_frame **env) {
    if (!*env) {
        json_object *data = json_tokener_parse(payload);
        if (!data && strcmp(payload, "null") != 0) return false;
        if (!(*env = envelope_frame(m->room->name, kind, seq, data))) return false;
    }
    give(m->peer, kind, *env);
    return true;
}

/* Members are scattered over the heap, and a round's sends evict them
 * from cache: the walk asks for the member after next, and the next one's
 * peer, while it serves this one. */
static void prefetch_members(const struct lws_dll2 *next) {
    if (!next) return;
    const member *n = lws_container_of(next, member, in_room);
    __builtin_prefetch(n->peer);
    if (next->next) __builtin_prefetch(lws_container_of(next->next, member, in_room));
}

/* Gives one fetched message to every live member that has not had it. */
static void deliver(room *r, long long seq, const char *payload, const char *origin,
                    const char *kind) {
    spark_frame *text = NULL, *env = NULL;
    EACH_LINK(d, &r->members) {
        member *m = lws_container_of(d, member, in_room);
        prefetch_members(d_next);
        if (m->state != M_LIVE || seq <= m->cursor) continue;
        m->cursor = seq;
        if (m->quiet || !is_shown(kind)) continue;
        if (origin && strcmp(origin, m->peer->origin) == 0) continue;
        if (m->peer->enveloped) {
            /* Presence is for channels and components; a /spark socket
             * is only told what was sent to it. */
            if (is_presence(kind) || !send_enveloped(m, kind, seq, payload, &env)) continue;
        } else {
            if (is_presence(kind) && seq <= m->presence_after) continue;
            if (!text && !(text = message_frame(r->name, seq, payload))) continue;
            send_to(m, kind, text);
        }
        spark_metric_add(SPARK_M_ROOM_DELIVERIES, 1);
    }
    spark_frame_unref(text);
    spark_frame_unref(env);
}

/* spark.presence_message's {"type":"presence_state","room":R,"state":S,
 * ("crowded":true,)"count":U}, re-encoded compactly in its order, built
 * once for many. Every key is the runtime's: the state's users are nested
 * under "state". */
static spark_frame *presence_frame(const char *message) {
    json_object *o = json_tokener_parse(message);
    return o ? frame_text(o) : NULL;
}

static void send_resume(member *m) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("resume"));
    json_object_object_add(o, "room", json_object_new_string(m->room->name));
    json_object_object_add(o, "since", json_object_new_int64(m->since));
    json_object_object_add(o, "recovered", json_object_new_boolean(m->recovered));
    spark_frame *f = frame_text(o);
    send_to(m, "resume", f);
    spark_frame_unref(f);
}

/* A fetch of several messages that every member is shown alike (chat
 * messages, none held back from its sender) goes to each member that
 * takes rounds and has had none of them as one frame: the messages framed
 * once for the room, one entry in the member's queue, instead of a walk
 * of the members, a queue entry and a framing per message. Returns whether
 * every member had it; if not, the walk per message serves the others
 * (the cursor of those who had it skips them). */
#define ROUND_MAX 64

/* The fetched messages' frames, into parts, and the round that joins them;
 * NULL when one cannot be built or the round is longer than one write. */
static spark_frame *round_frame(room *r, const PGresult *res, int rows, spark_frame **parts) {
    for (int i = 0; i < rows; i++) {
        long long seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (!(parts[i] = message_frame(r->name, seq, PQgetvalue(res, i, 1)))) return NULL;
    }
    return spark_frame_join(parts, (size_t)rows);
}

static bool deliver_round(room *r, const PGresult *res, int rows) {
    if (rows < 2 || rows > ROUND_MAX) return false;
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(res, i, 2) || strcmp(PQgetvalue(res, i, 3), "message") != 0) return false;
    long long first = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    long long last = strtoll(PQgetvalue(res, rows - 1, 0), NULL, 10);
    spark_frame *parts[ROUND_MAX] = {0}, *round = NULL;
    bool all = true, built = false, given = false;
    EACH_LINK(d, &r->members) {
        member *m = lws_container_of(d, member, in_room);
        prefetch_members(d_next);
        if (m->state != M_LIVE || m->quiet || m->peer->enveloped || !m->peer->takes_rounds ||
            m->cursor >= first) {
            all = false;
            continue;
        }
        if (!built) {
            built = true;
            round = round_frame(r, res, rows, parts);
        }
        if (!round) { /* too long for one write, or out of memory */
            all = false;
            break;
        }
        m->cursor = last;
        give(m->peer, "message", round);
        given = true;
        spark_metric_add(SPARK_M_ROOM_DELIVERIES, rows);
    }
    if (given) spark_metric_add(SPARK_M_ROOM_ROUNDS, 1);
    for (int i = 0; i < rows; i++)
        spark_frame_unref(parts[i]);
    spark_frame_unref(round);
    return all;
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
        char q[600];
        spark_log(SPARK_LOG_WARN, "rooms.fetch_failed", error, "room=%s",
                  spark_log_value(q, sizeof q, r->name));
        r->dirty = true; /* fetched again when the database is back */
    }
    bool delivered = deliver_round(r, res, rows);
    for (int i = 0; i < rows; i++) {
        long long seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (!delivered)
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

static void on_pace(lws_sorted_usec_list_t *sul) {
    room *r = lws_container_of(sul, room, pace);
    r->paced = false;
    r->queries--;
    if (r->dirty && r->members.count) fetch_room(r->rooms, r);
    release_room(r->rooms, r);
}

/* Fetches run one at a time per room, and no sooner than the pace after
 * the last: notifications in between only mark the room dirty, and the
 * next fetch brings all of their messages at once. Every member then gets
 * them in one write instead of one write each: a fan-out round costs one
 * send per member, so the pace grows with the members (100 us each, up
 * to 50 ms). A room whose messages come further apart than its pace is
 * fetched at once, as before; a busier one trades up to a pace of latency
 * for rounds that carry several messages. */
static void fetch_room(spark_rooms *rooms, room *r) {
    if (!r->ready || r->fetching || r->paced) {
        r->dirty = true; /* the first join query, the fetch or the pace will look */
        return;
    }
    lws_usec_t pace = (lws_usec_t)r->members.count * PACE_US_PER_MEMBER;
    if (pace > PACE_MAX_US) pace = PACE_MAX_US;
    lws_usec_t now = lws_now_usecs();
    if (now < r->fetched_at + pace) {
        r->dirty = true;
        r->paced = true;
        r->queries++; /* kept until the pace ends */
        lws_sul_schedule(rooms->ctx, 0, &r->pace, on_pace, r->fetched_at + pace - now);
        return;
    }
    r->fetched_at = now;
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
    for (int i = 0; i < rows; i++) {
        long long seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        spark_frame *text = NULL;
        if (m->peer->enveloped)
            send_enveloped(m, "message", seq, PQgetvalue(res, i, 1), &text);
        else
            send_to(m, "message", text = message_frame(m->room->name, seq, PQgetvalue(res, i, 1)));
        spark_frame_unref(text);
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
                    " WHERE room = $1 AND seq > $2 AND kind = 'message'"
                    " ORDER BY seq LIMIT " FETCH_LIMIT_TEXT,
                    2, params, on_catch_up_rows, t))
        m->state = M_STALLED;
}

/* A joining member goes live at the room's last seq, or catches up from
 * the seq it asked for. */
static void start_streaming(spark_rooms *rooms, member *m, const PGresult *res, long long last) {
    long long pruned = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (m->since == SPARK_LIVE) {
        m->cursor = last;
        go_live(m);
    } else {
        m->recovered = m->since >= pruned;
        m->cursor = m->since;
        catch_up(rooms, m);
    }
}

/* A watching component gets the room's recent messages and presence, read
 * together with `last`, and goes live there. */
static void start_watching(member *m, const PGresult *res, long long last) {
    const char *history = PQgetvalue(res, 0, 0);
    send_text_to(m, "history", history, strlen(history));
    spark_frame *state = presence_frame(PQgetvalue(res, 0, 1));
    send_to(m, "presence_state", state);
    spark_frame_unref(state);
    m->cursor = m->presence_after = last;
    m->state = M_LIVE;
}

/* The answer to a member's first query: its join's bounds (pruned, last),
 * or its watch (history, presence, last). The room is at `last` at least. */
static void on_join_answer(void *ud, const PGresult *res, const char *error) {
    ticket *t = ud;
    spark_rooms *rooms = t->rooms;
    room *r = t->room;
    r->queries++; /* hold the room through end_ticket */
    member *m = end_ticket(t);
    if (error) {
        if (m) m->state = M_STALLED;
    } else {
        bool watch = PQnfields(res) == 3;
        long long last = strtoll(PQgetvalue(res, 0, watch ? 2 : 1), NULL, 10);
        if (!r->ready) {
            r->ready = true;
            r->cursor = last;
        }
        if (m && watch)
            start_watching(m, res, last);
        else if (m)
            start_streaming(rooms, m, res, last);
        if (r->dirty) fetch_room(rooms, r);
    }
    r->queries--;
    release_room(rooms, r);
}

/* A watching component's view of the room and the seq it is current at,
 * read in one statement: history, presence and cursor agree. */
static void start_watch(spark_rooms *rooms, member *m) {
    char recent[16];
    snprintf(recent, sizeof recent, "%d", m->recent);
    const char *params[] = {m->room->name, recent, rooms->most};
    m->state = M_JOINING;
    ticket *t = new_ticket(rooms, m->room, m, &m->stream_q);
    if (!t || query(rooms,
                    "SELECT (SELECT coalesce(json_agg(CASE WHEN jsonb_typeof(x.payload) = 'object'"
                    "                 THEN x.payload || jsonb_build_object('seq', x.seq)"
                    "                 ELSE jsonb_build_object('seq', x.seq, 'room', $1::text,"
                    "                                         'payload', x.payload) END"
                    "                 ORDER BY x.seq), '[]')"
                    "          FROM (SELECT seq, payload FROM spark.messages"
                    "                 WHERE room = $1 AND kind = 'message'"
                    "                 ORDER BY seq DESC LIMIT $2::int) x)::text,"
                    " spark.presence_message($1, $3::int)::text,"
                    " coalesce((SELECT max(seq) FROM spark.messages WHERE room = $1), 0)",
                    3, params, on_join_answer, t))
        m->state = M_STALLED;
}

static void start_join(spark_rooms *rooms, member *m) {
    if (m->recent) {
        start_watch(rooms, m);
        return;
    }
    const char *params[] = {m->room->name};
    m->state = M_JOINING;
    ticket *t = new_ticket(rooms, m->room, m, &m->stream_q);
    if (!t || query(rooms,
                    "SELECT coalesce((SELECT pruned_through FROM spark.rooms WHERE room = $1), 0),"
                    " coalesce((SELECT max(seq) FROM spark.messages WHERE room = $1), 0)",
                    1, params, on_join_answer, t))
        m->state = M_STALLED;
}

/* The peer's member of the room, made if it has none. */
static member *membership(spark_rooms *rooms, spark_room_peer *p, const char *name) {
    member *m = find_member(p, name);
    if (m) return m;
    room *r = get_room(rooms, name);
    if (!r || !(m = calloc(1, sizeof *m))) {
        if (r) release_room(rooms, r);
        return NULL;
    }
    m->room = r;
    m->peer = p;
    lws_dll2_add_tail(&m->in_room, &r->members);
    lws_dll2_add_tail(&m->in_peer, &p->memberships);
    return m;
}

int spark_rooms_join(spark_rooms *rooms, spark_room_peer *p, const char *name, long long since) {
    if (!valid_room(name) || since < SPARK_LIVE) return -1;
    member *m = membership(rooms, p, name);
    if (!m) return -1;
    m->quiet = false;
    m->since = since;
    start_join(rooms, m);
    return 0;
}

int spark_rooms_watch(spark_rooms *rooms, spark_room_peer *p, const char *name, int recent) {
    if (!valid_room(name) || recent < 1) return -1;
    member *m = membership(rooms, p, name);
    if (!m) return -1;
    m->quiet = false;
    m->recent = recent;
    start_join(rooms, m);
    return 0;
}

int spark_rooms_track_quietly(spark_rooms *rooms, spark_room_peer *p, const char *name) {
    if (!valid_room(name)) return -1;
    member *m = find_member(p, name);
    if (!m) {
        if (!(m = membership(rooms, p, name))) return -1;
        m->quiet = true;
        m->state = M_LIVE; /* nothing to catch up on: it is given nothing */
    }
    return spark_rooms_track(rooms, p, name, NULL);
}

size_t spark_rooms_count(spark_rooms *rooms, const char *name) {
    room *r = valid_room(name) ? find_room(rooms, name) : NULL;
    size_t n = 0;
    if (r) EACH_LINK(d, &r->members) {
            n += lws_container_of(d, member, in_room)->peer->serial != 0;
        }
    return n;
}

/* ---- history pages --------------------------------------------------------- */

/* A page asked for: the peer is cleared if it goes before the answer. */
typedef struct {
    lws_dll2_t in_peer;
    spark_room_peer *peer;
} page_request;

static void on_history_page(void *ud, const PGresult *res, const char *error) {
    page_request *q = ud;
    spark_room_peer *p = q->peer;
    lws_dll2_remove(&q->in_peer);
    free(q);
    if (!p) return;
    if (error) {
        spark_log(SPARK_LOG_WARN, "rooms.query_failed", error, "what=history");
        if (p->history_failed) p->history_failed(p);
        return;
    }
    json_object *page = json_tokener_parse(PQgetvalue(res, 0, 0)), *messages = NULL;
    /* "seq" goes last, where live frames have it (jsonb sorts keys). */
    json_object_object_get_ex(page, "messages", &messages);
    for (size_t i = 0; i < json_object_array_length(messages); i++) {
        json_object *m = json_object_array_get_idx(messages, i), *seq = NULL;
        if (!json_object_object_get_ex(m, "seq", &seq)) continue;
        json_object_get(seq);
        json_object_object_del(m, "seq");
        json_object_object_add(m, "seq", seq);
    }
    spark_frame *text = page ? frame_text(page) : NULL;
    if (text)
        give(p, "history_page", text);
    else if (p->history_failed)
        p->history_failed(p);
    spark_frame_unref(text);
}

int spark_rooms_history(spark_rooms *rooms, spark_room_peer *p, const char *name, long long before,
                        int limit) {
    if (!valid_room(name) || p->enveloped || (before < 1 && before != SPARK_LIVE) || limit < 1)
        return -1;
    page_request *q = calloc(1, sizeof *q);
    if (!q) return -1;
    q->peer = p;
    lws_dll2_add_tail(&q->in_peer, &p->requests);
    char b[24], n[16];
    snprintf(b, sizeof b, "%lld", before);
    snprintf(n, sizeof n, "%d", limit);
    const char *params[] = {name, b, n};
    /* One more row than asked tells whether older ones remain. Payloads
     * get their seq as live frames do (message_frame). */
    if (query_untracked(
            rooms,
            "SELECT json_build_object('type', 'history', 'room', $1::text,"
            "  'messages', coalesce(json_agg(CASE WHEN jsonb_typeof(x.payload) = 'object'"
            "      THEN (x.payload - 'seq') || jsonb_build_object('seq', x.seq)"
            "      ELSE jsonb_build_object('room', $1::text, 'payload', x.payload, 'seq', x.seq) "
            "END"
            "    ORDER BY x.seq) FILTER (WHERE x.rn <= $3::int), '[]'),"
            "  'more', count(*) > $3::int)::text"
            " FROM (SELECT seq, payload, row_number() OVER (ORDER BY seq DESC) AS rn"
            "         FROM spark.messages"
            "        WHERE room = $1 AND kind = 'message' AND ($2::bigint < 0 OR seq < $2::bigint)"
            "        ORDER BY seq DESC LIMIT $3::int + 1) x",
            3, params, on_history_page, q)) {
        lws_dll2_remove(&q->in_peer);
        free(q);
        return -1;
    }
    return 0;
}

/* ---- presence -------------------------------------------------------------- */

static void untrack(spark_rooms *rooms, spark_room_peer *p, const char *room_name) {
    char serial[24];
    snprintf(serial, sizeof serial, "%" PRIu64, p->serial);
    const char *params[] = {rooms->cfg->instance, serial, room_name, rooms->most};
    query_untracked(rooms, "SELECT spark.presence_untrack($1, $2, $3, $4::int)", 4, params,
                    log_failure, (void *)"presence_untrack");
}

static void free_member(member *m) {
    if (m->stream_q) m->stream_q->member = NULL;
    lws_dll2_remove(&m->in_presence);
    lws_dll2_remove(&m->in_track);
    lws_dll2_remove(&m->in_room);
    lws_dll2_remove(&m->in_peer);
    free(m->meta);
    free(m);
}

int spark_rooms_leave(spark_rooms *rooms, spark_room_peer *p, const char *name) {
    member *m = name ? find_member(p, name) : NULL;
    if (!m) return -1;
    room *r = m->room;
    if (m->tracked) untrack(rooms, p, name);
    free_member(m);
    release_room(rooms, r);
    return 0;
}

/* Sends the untracks of the connections that closed since the loop's last
 * turn in one statement: one commit and one leave diff per room, however
 * many left together (an instance's clients all going at once would
 * otherwise be a diff each to every member left). */
static void send_untracks(lws_sorted_usec_list_t *sul) {
    spark_rooms *rooms = lws_container_of(sul, spark_rooms, untrack_timer);
    if (!rooms->untracks_len) return;
    rooms->untracks[rooms->untracks_len - 1] = '}'; /* the last ',' */
    const char *params[] = {rooms->cfg->instance, rooms->untracks, rooms->most};
    query_untracked(rooms, "SELECT spark.presence_untrack_many($1, $2::bigint[], NULL, $3::int)", 3,
                    params, log_failure, (void *)"presence_untrack");
    rooms->untracks_len = 0;
}

/* Closes from the same turn of the loop go together. Without the memory
 * to batch it, the untrack goes alone. */
static void schedule_untrack(spark_rooms *rooms, spark_room_peer *p) {
    char serial[24];
    int n = snprintf(serial, sizeof serial, "%" PRIu64 ",", p->serial);
    size_t need = rooms->untracks_len + (size_t)n + (rooms->untracks_len ? 0 : 1) + 1;
    if (need > rooms->untracks_cap) {
        size_t cap = rooms->untracks_cap ? rooms->untracks_cap * 2 : 1024;
        while (cap < need)
            cap *= 2;
        char *grown = realloc(rooms->untracks, cap);
        if (!grown) {
            untrack(rooms, p, NULL);
            return;
        }
        rooms->untracks = grown;
        rooms->untracks_cap = cap;
    }
    if (!rooms->untracks_len) rooms->untracks[rooms->untracks_len++] = '{';
    memcpy(rooms->untracks + rooms->untracks_len, serial, (size_t)n + 1);
    rooms->untracks_len += (size_t)n;
    if (lws_dll2_is_detached(&rooms->untrack_timer.list)) {
        lws_sul_schedule(rooms->ctx, 0, &rooms->untrack_timer, send_untracks, 0);
        spark_poll_epoll_due_now();
    }
}

void spark_rooms_peer_gone(spark_rooms *rooms, spark_room_peer *p) {
    bool tracked = false;
    EACH_LINK(d, &p->requests) {
        lws_container_of(d, page_request, in_peer)->peer = NULL;
        lws_dll2_remove(d);
    }
    EACH_LINK(d, &p->memberships) {
        member *m = lws_container_of(d, member, in_peer);
        room *r = m->room;
        tracked |= m->tracked;
        free_member(m);
        release_room(rooms, r);
    }
    if (tracked) schedule_untrack(rooms, p);
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
    spark_frame *text = NULL;
    long long after = 0;
    if (!error) {
        after = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        text = presence_frame(PQgetvalue(res, 0, 0));
    }
    EACH_LINK(d, &r->presence_batch) {
        member *m = lws_container_of(d, member, in_presence);
        lws_dll2_remove(&m->in_presence);
        if (!text) continue;
        m->presence_after = after;
        send_to(m, "presence_state", text);
    }
    spark_frame_unref(text);
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
    const char *params[] = {r->name, rooms->most};
    ticket *t = new_ticket(rooms, r, NULL, NULL);
    r->presence_querying = true;
    if (!t || query(rooms,
                    "SELECT spark.presence_message($1, $2::int)::text,"
                    " coalesce((SELECT max(seq) FROM spark.messages WHERE room = $1), 0)",
                    2, params, on_presence_state, t)) {
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
            json_object_object_add(it, "conn", json_object_new_uint64(m->peer->serial));
            json_object_object_add(it, "room", json_object_new_string(m->room->name));
            const char *user = m->peer->user_id, *name = m->peer->user_name;
            json_object_object_add(it, "user", json_object_new_string(user ? user : ""));
            json_object_object_add(it, "name", json_object_new_string(name ? name : ""));
            json_object_object_add(
                it, "meta", m->meta ? json_tokener_parse(m->meta) : json_object_new_object());
            json_object_array_add(items, it);
        }
        const char *params[] = {rooms->cfg->instance,
                                json_object_to_json_string_ext(items, JSON_C_TO_STRING_PLAIN),
                                rooms->most};
        bool sent =
            query_untracked(rooms, "SELECT spark.presence_track_many($1, $2::jsonb, $3::int)", 3,
                            params, log_failure, (void *)"presence_track") == 0;
        json_object_put(items);
        /* All of them wait first, so that each room's query answers all. */
        EACH_LINK(d, &batch) {
            member *m = lws_container_of(d, member, in_track);
            if (!sent || m->quiet) { /* a quiet member is given no state */
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
    if (lws_dll2_is_detached(&rooms->track_timer.list)) {
        lws_sul_schedule(rooms->ctx, 0, &rooms->track_timer, send_tracks, 0);
        spark_poll_epoll_due_now();
    }
}

int spark_rooms_track(spark_rooms *rooms, spark_room_peer *p, const char *name,
                      const char *meta_json) {
    if (!valid_room(name)) return -1;
    if (!meta_json) meta_json = "{}";
    json_object *meta = json_tokener_parse(meta_json);
    bool object = json_object_is_type(meta, json_type_object);
    json_object_put(meta);
    if (!object) return -1;
    member *m = find_member(p, name);
    if (!m && (spark_rooms_join(rooms, p, name, SPARK_LIVE) || !(m = find_member(p, name))))
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
    if (error) {
        char q[600];
        spark_log(SPARK_LOG_WARN, "rooms.post_failed", error, "room=%s",
                  spark_log_value(q, sizeof q, p->room));
        post_failed(p->rooms, p->sender);
    } else if (strcmp(PQcmdTuples((PGresult *)res), "1") == 0) { /* not skipped as crowded */
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
    bool made = false;
    if (strlen(body) > MAX_EPHEMERAL || rooms->notify == NOTIFY_CLOSED) {
        made = false; /* too large, or no key to make it trustworthy with */
    } else if (rooms->notify == NOTIFY_OPEN) {
        made = asprintf(&text, "e|%s|%s", origin, body) > 0;
    } else if (asprintf(&text, "s|%*s|%s|%s", (int)MAC_TEXT, "", origin, body) > 0) {
        /* The MAC covers "origin|body", written in place of the blanks. */
        const char *signed_part = text + 2 + MAC_TEXT + 1;
        unsigned char mac[crypto_auth_BYTES];
        char b64[MAC_TEXT + 1];
        crypto_auth(mac, (const unsigned char *)signed_part, strlen(signed_part),
                    rooms->notify_key);
        sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, MAC_VARIANT);
        memcpy(text + 2, b64, MAC_TEXT);
        made = true;
    }
    if (made) {
        const char *params[] = {text};
        r = query_untracked(rooms, "SELECT pg_notify('spark', $1)", 1, params, log_failure,
                            (void *)"ephemeral");
    }
    free(text);
    json_object_put(o);
    return r;
}

/* Inserts the message; its sender hears if that fails. Unless crowded:
 * only while the room has at most cfg->crowded_room presences, counted by
 * the insert itself (spark.room_crowded), so that every instance judges a
 * room by the same rows. */
static int store_post(spark_rooms *rooms, const spark_room_peer *from, const char *name,
                      const char *kind, const char *json, const char *origin, bool unless_crowded) {
    post *p = malloc(sizeof *p + strlen(name) + 1);
    if (!p) return -1;
    p->rooms = rooms;
    p->sender = from ? from->serial : 0;
    strcpy(p->room, name);
    const char *params[] = {name, kind, json, from ? from->user_id : NULL, origin, rooms->most};
    bool check = unless_crowded && rooms->cfg->crowded_room > 0;
    int r =
        query_untracked(rooms,
                        check ? "INSERT INTO spark.messages (room, kind, payload, actor, origin)"
                                " SELECT $1, $2, $3::jsonb, $4, $5"
                                " WHERE NOT spark.room_crowded($1, $6::int)"
                              : "INSERT INTO spark.messages (room, kind, payload, actor, origin)"
                                " VALUES ($1, $2, $3::jsonb, $4, $5)",
                        check ? 6 : 5, params, on_posted, p);
    if (r) {
        post_failed(rooms, p->sender); /* no database now, or a full queue */
        free(p);
    }
    return r;
}

int spark_rooms_post(spark_rooms *rooms, const spark_room_peer *from, const char *name,
                     const char *kind, const char *json, unsigned flags) {
    if (!valid_room(name) || !json || !kind || !*kind) return -1;
    size_t len = strlen(json);
    if (len > (size_t)rooms->cfg->max_message_bytes) return -1;
    json_object *payload;
    if (!spark_json_read(json, len, &payload)) return -1;
    const char *origin = from && (flags & SPARK_EXCLUDE_SELF) ? from->origin : NULL;
    int r;
    if ((flags & SPARK_EPHEMERAL) && (flags & SPARK_UNLESS_CROWDED)) {
        r = -1; /* nothing stored to count presences against */
    } else if (flags & SPARK_EPHEMERAL) {
        r = post_ephemeral(rooms, origin ? origin : "", name, kind, payload);
    } else {
        r = store_post(rooms, from, name, kind, json, origin, flags & SPARK_UNLESS_CROWDED);
    }
    json_object_put(payload);
    return r;
}

/* ---- notifications --------------------------------------------------------- */

/* Delivers "origin|json", already authenticated (or unauthenticated by
 * choice). Returns false when it is malformed. */
static bool on_ephemeral(spark_rooms *rooms, const char *rest) {
    const char *bar = strchr(rest, '|');
    if (!bar) return false;
    size_t origin_len = (size_t)(bar - rest);
    json_object *o = json_tokener_parse(bar + 1), *name = NULL, *payload = NULL;
    /* Checked like any other input, MAC or not. */
    bool ok = json_object_object_get_ex(o, "room", &name) &&
              json_object_is_type(name, json_type_string) &&
              valid_room(json_object_get_string(name)) &&
              json_object_object_get_ex(o, "payload", &payload);
    if (ok) {
        room *r = find_room(rooms, json_object_get_string(name));
        const char *text = json_object_to_json_string_ext(
            payload, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        spark_frame *plain = r ? spark_frame_new(text, strlen(text)) : NULL, *env = NULL;
        if (r) EACH_LINK(d, &r->members) {
                member *m = lws_container_of(d, member, in_room);
                const char *own = m->peer->origin;
                if (m->state != M_LIVE || m->quiet ||
                    (origin_len && strlen(own) == origin_len && memcmp(own, rest, origin_len) == 0))
                    continue;
                if (m->peer->enveloped)
                    send_enveloped(m, "ephemeral", -1, text, &env);
                else
                    send_to(m, "ephemeral", plain);
            }
        spark_frame_unref(plain);
        spark_frame_unref(env);
    }
    json_object_put(o);
    return ok;
}

/* "s|MAC|origin|json": true when MAC is crypto_auth("origin|json") under
 * the notify key. crypto_auth_verify compares in constant time. */
static bool authentic(const spark_rooms *rooms, const char *rest) {
    unsigned char mac[crypto_auth_BYTES];
    size_t n = 0;
    if (strlen(rest) <= MAC_TEXT || rest[MAC_TEXT] != '|' ||
        sodium_base642bin(mac, sizeof mac, rest, MAC_TEXT, NULL, &n, NULL, MAC_VARIANT) != 0 ||
        n != sizeof mac)
        return false;
    const char *signed_part = rest + MAC_TEXT + 1;
    return crypto_auth_verify(mac, (const unsigned char *)signed_part, strlen(signed_part),
                              rooms->notify_key) == 0;
}

/* Any role that can connect may NOTIFY: with a key, only what carries its
 * MAC is believed; anything else on the "e|" or "s|" prefixes is counted
 * and dropped. */
static void on_ephemeral_notify(spark_rooms *rooms, const char *payload) {
    bool ok = false;
    if (rooms->notify == NOTIFY_KEYED && payload[0] == 's')
        ok = authentic(rooms, payload + 2) && on_ephemeral(rooms, payload + 2 + MAC_TEXT + 1);
    else if (rooms->notify == NOTIFY_OPEN && payload[0] == 'e')
        ok = on_ephemeral(rooms, payload + 2);
    if (!ok) {
        spark_metric_add(SPARK_M_NOTIFY_FORGED, 1);
        spark_log(SPARK_LOG_DEBUG, "rooms.notify_dropped",
                  "an ephemeral notification without a valid MAC", "len=%zu", strlen(payload));
    }
}

void spark_rooms_on_notify(spark_rooms *rooms, const char *payload) {
    if (strncmp(payload, "e|", 2) == 0 || strncmp(payload, "s|", 2) == 0) {
        on_ephemeral_notify(rooms, payload);
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
    SPARK_TABLE_EACH(&rooms->table, e) {
        room *r = lws_container_of(e, room, entry);
        r->queries++; /* a failing query must not free it under us */
        EACH_LINK(d, &r->members) {
            member *m = lws_container_of(d, member, in_room);
            if (m->state == M_STALLED) start_join(rooms, m);
        }
        if (r->ready && !r->fetching) fetch_room(rooms, r);
        r->queries--;
        release_room(rooms, r);
    }
}

void spark_rooms_on_resync(spark_rooms *rooms, bool reconnected) {
    if (reconnected) restart_all(rooms);
}

/* ---- instance liveness and retention -------------------------------------- */

static void retrack_all(spark_rooms *rooms) {
    SPARK_TABLE_EACH(&rooms->table, e) {
        room *r = lws_container_of(e, room, entry);
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
    const char *id[] = {rooms->cfg->instance}, *reap[] = {timeout, rooms->most};
    /* Ahead of any backlog (a storm of joins): a heartbeat that waits
     * longer than the timeout gets this instance's presences reaped. */
    spark_pg_query_first(rooms->db, "SELECT spark.instance_heartbeat($1)", 1, id, on_heartbeat,
                         rooms);
    spark_pg_query(rooms->db, "SELECT spark.reap_instances($1::interval, $2::int)", 2, reap,
                   on_reaped, rooms);
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
        const char *params[] = {rooms->cfg->instance, rooms->most};
        spark_pg_query(rooms->db, "SELECT spark.instance_start($1, $2::int)", 2, params,
                       log_failure, (void *)"instance_start");
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
    lws_sul_cancel(&rooms->untrack_timer);
    rooms->untracks_len = 0;
    const char *params[] = {rooms->cfg->instance, rooms->most};
    spark_pg_query(rooms->db, "SELECT spark.instance_stop($1, $2::int)", 2, params, log_failure,
                   (void *)"instance_stop");
}

void spark_rooms_detach(spark_rooms *rooms) {
    lws_sul_cancel(&rooms->heartbeat_timer);
    lws_sul_cancel(&rooms->prune_timer);
    lws_sul_cancel(&rooms->track_timer);
    lws_sul_cancel(&rooms->untrack_timer);
    rooms->db = NULL;
}

/* The deployment's notify key: SPARK_NOTIFY_KEY, else derived from
 * SPARK_SIGNING_KEY (its text, under a context of its own, so the MAC key
 * is never the signing key itself). A role that can only NOTIFY has
 * neither. Without both, say once what that means. */
static int setup_notify_key(spark_rooms *rooms) {
    static bool warned;
    const spark_config *cfg = rooms->cfg;
    static const char context[] = "spark.notify-key.v1|";
    if (sodium_init() < 0) return -1;
    if (cfg->notify_key) {
        size_t n = 0;
        if (sodium_base642bin(rooms->notify_key, sizeof rooms->notify_key, cfg->notify_key,
                              strlen(cfg->notify_key), NULL, &n, NULL, MAC_VARIANT) != 0 ||
            n != sizeof rooms->notify_key)
            return -1; /* config.c has refused it already */
        rooms->notify = NOTIFY_KEYED;
    } else if (cfg->signing_key) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, sizeof rooms->notify_key);
        crypto_generichash_update(&st, (const unsigned char *)context, sizeof context - 1);
        crypto_generichash_update(&st, (const unsigned char *)cfg->signing_key,
                                  strlen(cfg->signing_key));
        crypto_generichash_final(&st, rooms->notify_key, sizeof rooms->notify_key);
        sodium_memzero(&st, sizeof st);
        rooms->notify = NOTIFY_KEYED;
    } else {
        rooms->notify = cfg->auth ? NOTIFY_CLOSED : NOTIFY_OPEN;
        if (!warned)
            spark_log(SPARK_LOG_WARN, "rooms.no_notify_key",
                      cfg->auth ? "neither SPARK_NOTIFY_KEY nor SPARK_SIGNING_KEY is set: "
                                  "ephemeral messages are refused"
                                : "SPARK_AUTH=off and no SPARK_NOTIFY_KEY: ephemeral "
                                  "messages are not authenticated",
                      NULL);
        warned = true;
    }
    return 0;
}

spark_rooms *spark_rooms_new(struct lws_context *ctx, spark_pg *db, const spark_config *cfg) {
    spark_rooms *rooms = calloc(1, sizeof *rooms);
    if (!rooms) return NULL;
    if (spark_table_init(&rooms->table)) {
        free(rooms);
        return NULL;
    }
    rooms->ctx = ctx;
    rooms->db = db;
    rooms->cfg = cfg;
    snprintf(rooms->most, sizeof rooms->most, "%d", cfg->crowded_room);
    if (setup_notify_key(rooms)) {
        spark_rooms_free(rooms);
        return NULL;
    }
    return rooms;
}

void spark_rooms_free(spark_rooms *rooms) {
    if (!rooms) return;
    lws_sul_cancel(&rooms->heartbeat_timer);
    lws_sul_cancel(&rooms->prune_timer);
    lws_sul_cancel(&rooms->track_timer);
    lws_sul_cancel(&rooms->untrack_timer);
    free(rooms->untracks);
    /* Connections are gone by now; rooms kept only by lost queries remain. */
    SPARK_TABLE_EACH(&rooms->table, e) {
        room *r = lws_container_of(e, room, entry);
        lws_sul_cancel(&r->pace);
        free(r->name);
        free(r);
    }
    spark_table_free(&rooms->table);
    sodium_memzero(rooms->notify_key, sizeof rooms->notify_key);
    free(rooms);
}
