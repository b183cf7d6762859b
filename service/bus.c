/*
 * bus.c - LISTEN/NOTIFY over one dedicated spark_pg connection.
 *
 * The connection stays in autocommit (inside a transaction nothing would be
 * delivered until it ended) and runs nothing but LISTEN and the idle pings
 * that spark_pg sends to notice a half-dead link.
 */
#include "bus.h"

#include "log.h"
#include "metrics.h"
#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char channel[64];
    spark_bus_notify_fn on_notify;
    spark_bus_resync_fn on_resync;
    void *ud;
} subscriber;

#define RELISTEN_US (1 * LWS_US_PER_SEC)

struct spark_bus {
    struct lws_context *context;
    spark_pg *pg;
    lws_sorted_usec_list_t relisten_timer; /* a LISTEN failed: all are sent again */
    subscriber *subs;
    size_t nsubs;
    char (*channels)[64]; /* distinct channels, in subscription order */
    size_t nchannels;
    size_t listens_pending; /* LISTEN statements sent and not yet answered */
    bool listening;
    bool resync_due; /* set on (re)connect: subscribers must reload */
    bool ever_listened;
};

static void relisten_due(lws_sorted_usec_list_t *sul);

static bool valid_channel(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 63 || !(name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z'))) return false;
    for (const char *p = name; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) return false;
    return true;
}

static void now_listening(spark_bus *bus) {
    bus->listening = true;
    if (!bus->resync_due) return; /* only a new channel was added */
    bus->resync_due = false;
    bool reconnected = bus->ever_listened;
    bus->ever_listened = true;
    spark_log(SPARK_LOG_INFO, "bus.listening", NULL, "channels=%zu resync=%s", bus->nchannels,
              reconnected ? "yes" : "no");
    /* Subscribers may subscribe from inside resync; iterate by index. */
    for (size_t i = 0; i < bus->nsubs; i++)
        if (bus->subs[i].on_resync) bus->subs[i].on_resync(bus->subs[i].ud, reconnected);
}

static void relisten_later(spark_bus *bus) {
    bus->listening = false;
    if (lws_dll2_is_detached(&bus->relisten_timer.list))
        lws_sul_schedule(bus->context, 0, &bus->relisten_timer, relisten_due, RELISTEN_US);
}

static void listen_done(void *ud, const PGresult *res, const char *error) {
    spark_bus *bus = ud;
    (void)res;
    if (error) {
        /* A lost connection reports here too; on_down has reset the count,
         * and on_up will send them all again. A refused LISTEN (a timeout,
         * a full queue) is retried: without it, nothing would wake us. */
        if (spark_pg_get_state(bus->pg) == SPARK_PG_UP) {
            spark_log(SPARK_LOG_ERROR, "bus.listen_failed", error, "retry_ms=%d",
                      (int)(RELISTEN_US / LWS_US_PER_MS));
            relisten_later(bus);
        }
        return;
    }
    if (bus->listens_pending > 0 && --bus->listens_pending == 0 &&
        lws_dll2_is_detached(&bus->relisten_timer.list))
        now_listening(bus);
}

static int send_listen(spark_bus *bus, const char *channel) {
    char sql[80];
    /* Channel names are validated to [a-z0-9_], so quoting is enough. */
    snprintf(sql, sizeof sql, "LISTEN \"%s\"", channel);
    if (spark_pg_query(bus->pg, sql, 0, NULL, listen_done, bus)) {
        relisten_later(bus);
        return -1;
    }
    bus->listens_pending++;
    return 0;
}

/* LISTEN on every channel; the bus listens once all have answered. */
static void listen_all(spark_bus *bus) {
    bus->listening = false;
    bus->listens_pending = 0;
    for (size_t i = 0; i < bus->nchannels; i++)
        send_listen(bus, bus->channels[i]);
    if (bus->nchannels == 0) now_listening(bus);
}

static void relisten_due(lws_sorted_usec_list_t *sul) {
    spark_bus *bus = lws_container_of(sul, spark_bus, relisten_timer);
    if (spark_pg_get_state(bus->pg) == SPARK_PG_UP) listen_all(bus);
}

static void pg_up(void *ud) {
    spark_bus *bus = ud;
    bus->resync_due = true;
    lws_sul_cancel(&bus->relisten_timer);
    listen_all(bus);
}

static void pg_down(void *ud, const char *why) {
    spark_bus *bus = ud;
    (void)why;
    bus->listening = false;
    bus->listens_pending = 0;
    lws_sul_cancel(&bus->relisten_timer);
}

static void pg_notify(void *ud, const char *channel, const char *payload) {
    spark_bus *bus = ud;
    spark_metric_add(SPARK_M_NOTIFICATIONS, 1);
    spark_log(SPARK_LOG_DEBUG, "bus.notify", NULL, "channel=%s bytes=%zu", channel,
              strlen(payload));
    for (size_t i = 0; i < bus->nsubs; i++)
        if (bus->subs[i].on_notify && strcmp(bus->subs[i].channel, channel) == 0)
            bus->subs[i].on_notify(bus->subs[i].ud, channel, payload);
}

spark_bus *spark_bus_new(struct lws_context *context, struct lws_vhost *vhost,
                         const char *conninfo) {
    static const spark_pg_events events = {pg_up, pg_down, pg_notify};
    spark_bus *bus = calloc(1, sizeof *bus);
    if (!bus) return NULL;
    bus->context = context;
    bus->pg = spark_pg_new(context, vhost, conninfo, "bus", &events, bus);
    if (!bus->pg) {
        free(bus);
        return NULL;
    }
    return bus;
}

int spark_bus_set_timeout(spark_bus *bus, int seconds) {
    return spark_pg_set_timeout(bus->pg, seconds);
}

void spark_bus_start(spark_bus *bus) { spark_pg_start(bus->pg); }

static bool has_channel(const spark_bus *bus, const char *channel) {
    for (size_t i = 0; i < bus->nchannels; i++)
        if (strcmp(bus->channels[i], channel) == 0) return true;
    return false;
}

int spark_bus_subscribe(spark_bus *bus, const char *channel, spark_bus_notify_fn on_notify,
                        spark_bus_resync_fn on_resync, void *ud) {
    if (!valid_channel(channel)) return -1;
    subscriber *subs = realloc(bus->subs, (bus->nsubs + 1) * sizeof *subs);
    if (!subs) return -1;
    bus->subs = subs;
    subscriber *s = &subs[bus->nsubs];
    memset(s, 0, sizeof *s);
    snprintf(s->channel, sizeof s->channel, "%s", channel);
    s->on_notify = on_notify;
    s->on_resync = on_resync;
    s->ud = ud;

    if (!has_channel(bus, channel)) {
        char(*channels)[64] = realloc(bus->channels, (bus->nchannels + 1) * sizeof *channels);
        if (!channels) return -1;
        bus->channels = channels;
        snprintf(channels[bus->nchannels++], sizeof *channels, "%s", channel);
        /* Already connected: LISTEN now. Otherwise on_up will. Until this
         * LISTEN is answered the bus does not claim to be listening. */
        if (spark_pg_get_state(bus->pg) == SPARK_PG_UP && send_listen(bus, channel) == 0)
            bus->listening = false;
    }
    bus->nsubs++;
    return 0;
}

bool spark_bus_is_listening(const spark_bus *bus) { return bus->listening; }

const char *spark_bus_state(const spark_bus *bus) {
    if (bus->listening) return "listening";
    spark_pg_state st = spark_pg_get_state(bus->pg);
    return st == SPARK_PG_UP ? "subscribing" : spark_pg_state_name(st);
}

size_t spark_bus_channel_count(const spark_bus *bus) { return bus->nchannels; }

const char *spark_bus_channel(const spark_bus *bus, size_t i) {
    return i < bus->nchannels ? bus->channels[i] : NULL;
}

void spark_bus_free(spark_bus *bus) {
    if (!bus) return;
    lws_sul_cancel(&bus->relisten_timer);
    spark_pg_free(bus->pg);
    free(bus->subs);
    free(bus->channels);
    free(bus);
}
