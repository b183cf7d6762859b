/*
 * chat_component.c - the seed's ChatComponent. Its messages are the room
 * "chat:<room>" that the /chat/:room_id channel posts to, so each sees
 * the other's messages; who is online comes from the room's presence (a
 * crowded room shows how many instead);
 * typing is signalled to the room but never stored; "Load earlier
 * messages" pages back, for that viewer only. The topic is its
 * shared state, set from the chat channel ({"action":"topic"}): the
 * seed's handle_external_event.
 * Its page, /chat/:room, is declared in site.c.
 */
#include <spark/component.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_MESSAGE_CHARS 2000
#define MAX_TOPIC_CHARS   200
#define TYPING_EVERY_MS   2000
#define HISTORY_PAGE      20

static void render(spark_html *h, const spark_view *v) {
    size_t online = spark_room_online_len(v), typing = spark_room_typing_len(v);
    DIV(h, "class", "chat") {
        const char *topic = spark_state_str(v, "topic", "");
        if (*topic) P(h, "class", "topic") {
                spark_textf(h, "Topic: %s", topic);
            }
        /* A crowded room has no list of who is online, only how many. */
        if (spark_room_crowded(v)) P(h, "class", "online crowded") {
                spark_textf(h, "%zu online", spark_room_online_count(v));
            }
        else
            P(h, "class", "online") {
                spark_textf(h, "Online (%zu):", online);
                for (size_t i = 0; i < online; i++)
                    SPAN(h, "class", "user") { spark_textf(h, " %s", spark_room_online(v, i)); }
            }
        if (spark_room_has_older(v))
            BUTTON(h, "class", "load-history", "spark-click", "load_history") {
                spark_text(h, "Load earlier messages");
            }
        UL(h, "class", "messages") {
            for (size_t i = 0; i < spark_room_len(v); i++) {
                const spark_item *m = spark_room_at(v, i);
                const char *type = spark_item_str(m, "type", "");
                const char *key = spark_itoa(h, spark_item_int(m, "seq", 0));
                const char *user = spark_item_str(m, "user", "someone");
                if (strcmp(type, "chat") == 0) LI(h, "spark-key", key, "class", "message") {
                        STRONG(h) { spark_text(h, user); }
                        spark_textf(h, ": %s", spark_item_str(m, "message", ""));
                    }
                else if (strcmp(type, "user_joined") == 0 || strcmp(type, "user_left") == 0)
                    LI(h, "spark-key", key, "class", "system") {
                        spark_textf(h, "%s %s", user, type[5] == 'j' ? "joined" : "left");
                    }
            }
        }
        if (typing > 0) P(h, "class", "typing") {
                for (size_t i = 0; i < typing; i++)
                    spark_textf(h, "%s%s", i ? ", " : "", spark_room_typing(v, i));
                spark_text(h, typing == 1 ? " is typing…" : " are typing…");
            }
        FORM(h, "class", "send", "spark-submit", "send_message") {
            INPUT(h, "name", "message", "placeholder", "Message", "autocomplete", "off",
                  "spark-input", "typing", "value", spark_local_str(v, "draft", ""));
            BUTTON(h, "type", "submit") { spark_text(h, "Send"); }
        }
    }
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void now_iso8601(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A room message as the chat channel writes them. */
static spark_item *post(spark_event *e, const char *type, bool ephemeral) {
    char ts[32];
    now_iso8601(ts);
    spark_item *m = spark_room_post(e, ephemeral);
    spark_item_set_str(m, "type", type);
    spark_item_set_str(m, "user", spark_viewer_name(e));
    spark_item_set_str(m, "user_id", spark_viewer_id(e));
    spark_item_set_str(m, "timestamp", ts);
    return m;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += (*s & 0xC0) != 0x80;
    return n;
}

static int send_message(spark_event *e) {
    const char *text = spark_data_str(e, "message");
    if (!text) text = spark_local_str(e, "draft", "");
    if (strspn(text, " \t\r\n") == strlen(text)) return SPARK_OK;
    if (utf8_chars(text) > MAX_MESSAGE_CHARS)
        return spark_fail(e, "too_long", "a message is at most 2000 characters");
    spark_item_set_str(post(e, "chat", false), "message", text);
    return spark_local_set_str(e, "draft", "");
}

static int on_event(spark_event *e) {
    if (spark_event_is(e, "send_message")) return send_message(e);
    if (spark_event_is(e, "load_history")) return spark_room_load_older(e, HISTORY_PAGE);
    if (spark_event_is(e, "typing")) {
        const char *value = spark_data_str(e, "value");
        if (!value) return spark_fail(e, "invalid_data", "value must be a string");
        long long now = now_ms();
        if (*value && now - spark_local_int(e, "signalled_at", 0) >= TYPING_EVERY_MS) {
            post(e, "typing", true);
            spark_local_set_int(e, "signalled_at", now);
        }
        return spark_local_set_str(e, "draft", value);
    }
    return SPARK_UNKNOWN_EVENT;
}

/* Events from the chat channel: the seed's handle_external_event. */
static int on_external(spark_event *e) {
    if (spark_event_is(e, "set_topic")) {
        const char *topic = spark_data_str(e, "topic");
        if (!topic || utf8_chars(topic) > MAX_TOPIC_CHARS)
            return spark_fail(e, "invalid_topic", "A topic is at most 200 characters");
        return spark_state_set_str(e, "topic", topic);
    }
    return SPARK_UNKNOWN_EVENT;
}

SPARK_COMPONENT(chat, .render = render, .on_event = on_event, .on_external = on_external,
                .room = true, .initial_view = "{\"draft\":\"\"}");
