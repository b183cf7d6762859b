/*
 * room_view.c - a room component's view of its room, fed by the rooms
 * module like any member.
 *
 * Who is online is kept as a count of presences per user, built from the
 * room's presence_state and moved by each presence_diff, so that a user
 * with two tabs stays online when one closes. A crowded room has no list:
 * its presence frames say "crowded" and how many users are present, and
 * the room sends its whole state again when it stops being crowded. Both
 * are read only from presence frames, which the runtime alone writes.
 * Typing is ephemeral: an entry lasts a few seconds unless renewed, and a
 * message from that user ends it.
 * A recent message that makes way for a newer one stays with each viewer
 * that paged back (room_older.c), so that what it sees has no gap.
 */
#include "room_view.h"

#include "render.h"
#include "room_older.h"

#include <stdlib.h>
#include <string.h>

#define TYPING_US (3 * LWS_US_PER_SEC)

typedef struct {
    char *user_id, *name;
    lws_usec_t until;
} typing_entry;

struct live_room {
    spark_room_peer peer;
    instance *in;
    json_object *presence; /* user id -> {"name":..,"n":presences} */
    long long count;       /* users present, as the last presence frame said */
    typing_entry *typing;
    size_t ntyping;
    lws_sorted_usec_list_t typing_timer;
    bool loaded;
};

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- who is online ---------------------------------------------------- */

static void rebuild_online(instance *in) {
    live_room *lr = in->room_state;
    size_t n = (size_t)json_object_object_length(lr->presence), k = 0;
    in->room.online_count = lr->count >= 0 ? (size_t)lr->count : n;
    char **names = calloc(n ? n : 1, sizeof *names);
    if (names) {
        json_object_object_foreach(lr->presence, user, entry) {
            json_object *name = NULL;
            json_object_object_get_ex(entry, "name", &name);
            const char *s =
                json_object_is_type(name, json_type_string) ? json_object_get_string(name) : user;
            if ((names[k] = strdup(s))) k++;
        }
        qsort(names, k, sizeof *names, by_name);
    }
    free_names(in->room.online, in->room.nonline);
    in->room.online = names;
    in->room.nonline = k;
}

/* Adds (sign 1) or removes (-1) the presences of a state or a diff part:
 * {"<user>":{"name":..,"metas":[..]}}, one meta per presence. */
static void count_presences(live_room *lr, json_object *users, int sign) {
    if (!json_object_is_type(users, json_type_object)) return;
    json_object_object_foreach(users, user, entry) {
        json_object *metas = NULL, *name = NULL, *have = NULL, *n = NULL;
        json_object_object_get_ex(entry, "metas", &metas);
        json_object_object_get_ex(entry, "name", &name);
        int count =
            json_object_is_type(metas, json_type_array) ? (int)json_object_array_length(metas) : 1;
        if (json_object_object_get_ex(lr->presence, user, &have))
            json_object_object_get_ex(have, "n", &n);
        int total = (n ? json_object_get_int(n) : 0) + sign * count;
        if (total <= 0) {
            json_object_object_del(lr->presence, user);
            continue;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "n", json_object_new_int(total));
        if (json_object_is_type(name, json_type_string))
            json_object_object_add(o, "name", json_object_get(name));
        else if (have && json_object_object_get_ex(have, "name", &name))
            json_object_object_add(o, "name", json_object_get(name));
        json_object_object_add(lr->presence, user, o);
    }
}

/* ---- who is typing -------------------------------------------------------- */

static void rebuild_typing(instance *in) {
    live_room *lr = in->room_state;
    free_names(in->room.typing, in->room.ntyping);
    in->room.typing = NULL;
    in->room.ntyping = 0;
    if (!lr->ntyping || !(in->room.typing = calloc(lr->ntyping, sizeof(char *)))) return;
    for (size_t i = 0; i < lr->ntyping; i++)
        if ((in->room.typing[in->room.ntyping] = strdup(lr->typing[i].name))) in->room.ntyping++;
}

static void drop_typing_at(live_room *lr, size_t i) {
    free(lr->typing[i].user_id);
    free(lr->typing[i].name);
    lr->typing[i] = lr->typing[--lr->ntyping];
}

static bool drop_typing(live_room *lr, const char *user_id) {
    for (size_t i = 0; i < lr->ntyping; i++)
        if (strcmp(lr->typing[i].user_id, user_id) == 0) {
            drop_typing_at(lr, i);
            return true;
        }
    return false;
}

static void typing_expired(lws_sorted_usec_list_t *sul) {
    live_room *lr = lws_container_of(sul, live_room, typing_timer);
    lws_usec_t now = lws_now_usecs(), next = 0;
    bool changed = false;
    for (size_t i = 0; i < lr->ntyping;) {
        if (lr->typing[i].until <= now) {
            drop_typing_at(lr, i);
            changed = true;
            continue;
        }
        if (!next || lr->typing[i].until < next) next = lr->typing[i].until;
        i++;
    }
    if (changed) {
        rebuild_typing(lr->in);
        spark_instance_mark_dirty(lr->in);
    }
    if (next) spark_components_arm(lr->in->cs, &lr->typing_timer, typing_expired, next - now);
}

/* {"type":"typing","user_id":..,"user":..}, renewed by every repeat. */
static void typing(live_room *lr, json_object *o) {
    json_object *type = NULL, *user = NULL, *uid = NULL;
    json_object_object_get_ex(o, "type", &type);
    json_object_object_get_ex(o, "user", &user);
    json_object_object_get_ex(o, "user_id", &uid);
    if (!json_object_is_type(type, json_type_string) ||
        strcmp(json_object_get_string(type), "typing") != 0 ||
        !json_object_is_type(uid, json_type_string))
        return;
    const char *id = json_object_get_string(uid);
    const char *name =
        json_object_is_type(user, json_type_string) ? json_object_get_string(user) : id;
    drop_typing(lr, id);
    typing_entry *t = realloc(lr->typing, (lr->ntyping + 1) * sizeof *t);
    if (!t) return;
    lr->typing = t;
    t[lr->ntyping] = (typing_entry){strdup(id), strdup(name), lws_now_usecs() + TYPING_US};
    if (t[lr->ntyping].user_id && t[lr->ntyping].name) {
        lr->ntyping++;
    } else {
        free(t[lr->ntyping].user_id);
        free(t[lr->ntyping].name);
    }
    if (lws_dll2_is_detached(&lr->typing_timer.list))
        spark_components_arm(lr->in->cs, &lr->typing_timer, typing_expired, TYPING_US);
}

/* ---- what the room delivers ------------------------------------------------ */

static void add_message(instance *in, json_object *m) {
    live_room *lr = in->room_state;
    json_object *uid = NULL;
    json_object_array_add(in->room.messages, json_object_get(m));
    size_t total = json_object_array_length(in->room.messages);
    if (total > SPARK_ROOM_VIEW_MESSAGES) {
        for (size_t i = 0; i < total - SPARK_ROOM_VIEW_MESSAGES; i++)
            spark_room_older_keep(in, json_object_array_get_idx(in->room.messages, i));
        json_object_array_del_idx(in->room.messages, 0, total - SPARK_ROOM_VIEW_MESSAGES);
    }
    if (json_object_object_get_ex(m, "user_id", &uid) && json_object_is_type(uid, json_type_string))
        drop_typing(lr, json_object_get_string(uid));
}

/* A stored presence message that is a whole state: a room that stopped
 * being crowded sends one to every member. */
static bool is_state(const char *kind, json_object *o) {
    json_object *type = NULL;
    return strcmp(kind, "presence") == 0 && json_object_object_get_ex(o, "type", &type) &&
           json_object_is_type(type, json_type_string) &&
           strcmp(json_object_get_string(type), "presence_state") == 0;
}

/* Takes a presence frame's "crowded" and "count" (-1 when it has none:
 * the list's length is the count then). Returns whether it is crowded. */
static bool crowd(instance *in, json_object *o) {
    live_room *lr = in->room_state;
    json_object *crowded = NULL, *count = NULL;
    json_object_object_get_ex(o, "crowded", &crowded);
    json_object_object_get_ex(o, "count", &count);
    in->room.crowded =
        json_object_is_type(crowded, json_type_boolean) && json_object_get_boolean(crowded);
    lr->count = json_object_is_type(count, json_type_int) ? json_object_get_int64(count) : -1;
    return in->room.crowded;
}

static void on_room_frame(spark_room_peer *p, const char *kind, const char *frame, size_t len) {
    live_room *lr = lws_container_of(p, live_room, peer);
    instance *in = lr->in;
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, frame, (int)len) : NULL, *part = NULL;
    json_tokener_free(tok);
    if (!o) return;
    if (strcmp(kind, "history") == 0 && json_object_is_type(o, json_type_array)) {
        json_object_put(in->room.messages);
        in->room.messages = json_object_get(o);
        spark_room_older_reset(in);
    } else if (strcmp(kind, "message") == 0 && json_object_is_type(o, json_type_object)) {
        add_message(in, o);
    } else if (strcmp(kind, "presence_state") == 0 || is_state(kind, o)) {
        json_object_put(lr->presence);
        lr->presence = json_object_new_object();
        if (!crowd(in, o) && json_object_object_get_ex(o, "state", &part))
            count_presences(lr, part, 1);
        if (!lr->loaded && in->cs->hooks->room_loaded) {
            lr->loaded = true;
            in->cs->hooks->room_loaded(in);
        }
        lr->loaded = true;
    } else if (strcmp(kind, "presence") == 0) {
        if (crowd(in, o)) {
            json_object_put(lr->presence); /* no list while crowded */
            lr->presence = json_object_new_object();
        }
        if (json_object_object_get_ex(o, "joins", &part)) count_presences(lr, part, 1);
        if (json_object_object_get_ex(o, "leaves", &part)) count_presences(lr, part, -1);
    } else if (strcmp(kind, "ephemeral") == 0) {
        typing(lr, o);
    } else {
        json_object_put(o);
        return; /* "resume": nothing a view shows */
    }
    json_object_put(o);
    in->room.full = json_object_array_length(in->room.messages) >= SPARK_ROOM_VIEW_MESSAGES;
    rebuild_online(in);
    rebuild_typing(in);
    spark_instance_mark_dirty(in);
}

void spark_room_view_open(instance *in) {
    live_room *lr = calloc(1, sizeof *lr);
    if (!lr || !(lr->presence = json_object_new_object()) ||
        !(in->room.messages = json_object_new_array())) {
        if (lr) json_object_put(lr->presence);
        free(lr);
        return;
    }
    lr->in = in;
    lr->count = -1;
    lr->peer = (spark_room_peer){.deliver = on_room_frame, .origin = "", .user_id = in->id};
    in->room_state = lr;
    spark_rooms_watch(in->cs->rooms, &lr->peer, in->id, SPARK_ROOM_VIEW_MESSAGES);
}

void spark_room_view_close(instance *in) {
    live_room *lr = in->room_state;
    if (lr) {
        spark_rooms_peer_gone(in->cs->rooms, &lr->peer);
        lws_sul_cancel(&lr->typing_timer);
        while (lr->ntyping)
            drop_typing_at(lr, 0);
        free(lr->typing);
        json_object_put(lr->presence);
        free(lr);
        in->room_state = NULL;
    }
    json_object_put(in->room.messages);
    in->room.messages = NULL;
    free_names(in->room.online, in->room.nonline);
    free_names(in->room.typing, in->room.ntyping);
    in->room.online = in->room.typing = NULL;
    in->room.nonline = in->room.ntyping = in->room.online_count = 0;
    in->room.crowded = false;
}

void spark_room_view_detach(instance *in) {
    if (in->room_state) lws_sul_cancel(&in->room_state->typing_timer);
}

bool spark_room_view_loaded(const instance *in) { return in->room_state && in->room_state->loaded; }
