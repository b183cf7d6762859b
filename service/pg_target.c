/*
 * pg_target.c - the targets of a conninfo, with host names resolved on a
 * thread so that the event loop never waits for DNS.
 *
 * The conninfo is parsed on the caller's thread. When some host is a name,
 * a detached thread runs getaddrinfo() for each and builds the targets;
 * the caller polls spark_pg_lookup_done(). The lookup is shared with that
 * thread until it finishes, and whichever of the two lets go last frees it:
 * the `phase` word is swapped once, from RUNNING to DONE by the thread or to
 * ABANDONED by spark_pg_lookup_free(), and the loser of that race frees.
 */
#include "pg_target.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum { RUNNING, DONE, ABANDONED };

struct spark_pg_lookup {
    atomic_int phase;
    int timeout_s;
    size_t nhosts;
    char **hosts; /* one entry of the host list each */
    char **ports; /* one per host, NULL entries for libpq's default */
    char *error;
    spark_pg_target *targets;
    size_t ntargets, cap;
};

static void destroy(spark_pg_lookup *l) {
    for (size_t i = 0; i < l->ntargets; i++)
        free((char *)l->targets[i].hostaddr);
    for (size_t i = 0; i < l->nhosts; i++) {
        free(l->hosts[i]);
        free(l->ports[i]);
    }
    free(l->hosts);
    free(l->ports);
    free(l->targets);
    free(l->error);
    free(l);
}

static void set_error(spark_pg_lookup *l, const char *why) {
    free(l->error);
    l->error = strdup(why);
}

/* Adds a target; `hostaddr` (may be NULL) becomes the lookup's. */
static int add_target(spark_pg_lookup *l, const char *host, char *hostaddr, const char *port) {
    if (l->ntargets == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        spark_pg_target *grown = realloc(l->targets, cap * sizeof *grown);
        if (!grown) {
            free(hostaddr);
            return -1;
        }
        l->targets = grown;
        l->cap = cap;
    }
    l->targets[l->ntargets++] = (spark_pg_target){host, hostaddr, port};
    return 0;
}

static bool is_socket_path(const char *host) { return host[0] == '/' || host[0] == '@'; }

static bool is_address(const char *host) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static bool needs_dns(const spark_pg_lookup *l) {
    for (size_t i = 0; i < l->nhosts; i++)
        if (!is_socket_path(l->hosts[i]) && !is_address(l->hosts[i])) return true;
    return false;
}

/* Every address of one host name, in getaddrinfo's order (RFC 6724), the
 * way libpq tries them. */
static void resolve(spark_pg_lookup *l, const char *host, const char *port) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        char why[512];
        snprintf(why, sizeof why, "could not translate host name \"%s\" to address: %s", host,
                 gai_strerror(rc));
        set_error(l, why);
        return;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char addr[NI_MAXHOST];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST))
            continue;
        bool seen = false;
        for (size_t i = 0; i < l->ntargets && !seen; i++)
            seen = l->targets[i].host == host && l->targets[i].hostaddr &&
                   strcmp(l->targets[i].hostaddr, addr) == 0;
        if (!seen && add_target(l, host, strdup(addr), port)) break;
    }
    freeaddrinfo(res);
}

static void build_targets(spark_pg_lookup *l) {
    for (size_t i = 0; i < l->nhosts; i++) {
        const char *host = l->hosts[i], *port = l->ports[i];
        if (is_socket_path(host))
            add_target(l, host, NULL, port);
        else if (is_address(host))
            add_target(l, host, strdup(host), port);
        else
            resolve(l, host, port);
    }
    if (l->ntargets) {
        free(l->error); /* some host answered: the others were only skipped */
        l->error = NULL;
    } else if (!l->error) {
        set_error(l, "no host to connect to");
    }
}

static void *resolve_thread(void *arg) {
    spark_pg_lookup *l = arg;
    build_targets(l);
    int running = RUNNING;
    if (!atomic_compare_exchange_strong(&l->phase, &running, DONE)) destroy(l);
    return NULL;
}

/* Splits a comma-separated list; NULL when out of memory. */
static char **split(const char *list, size_t *count) {
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    char **parts = calloc(n, sizeof *parts);
    if (!parts) return NULL;
    const char *start = list;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(start, ",");
        if (!(parts[i] = strndup(start, len))) {
            for (size_t j = 0; j < i; j++)
                free(parts[j]);
            free(parts);
            return NULL;
        }
        start += len + 1;
    }
    *count = n;
    return parts;
}

static void free_list(char **list, size_t n) {
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

static const char *option(PQconninfoOption *opts, const char *key, const char *env) {
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0 && o->val && *o->val) return o->val;
    const char *v = getenv(env);
    return v && *v ? v : NULL;
}

/* Reads the host and port lists. Leaves nhosts at 0 where libpq must be
 * left to itself: no host given, a hostaddr given, or an empty entry (the
 * default socket directory) in the list. Returns -1 when out of memory. */
static int read_hosts(spark_pg_lookup *l, PQconninfoOption *opts) {
    const char *timeout = option(opts, "connect_timeout", "PGCONNECT_TIMEOUT");
    if (timeout && atoi(timeout) > 0) l->timeout_s = atoi(timeout) < 2 ? 2 : atoi(timeout);

    const char *hosts = option(opts, "host", "PGHOST");
    const char *ports = option(opts, "port", "PGPORT");
    if (!hosts || option(opts, "hostaddr", "PGHOSTADDR")) return 0;

    size_t nhosts = 0, nports = 0;
    char **host = split(hosts, &nhosts);
    char **port = ports ? split(ports, &nports) : NULL;
    char **port_of = calloc(nhosts, sizeof *port_of);
    int rc = -1;
    if (!host || (ports && !port) || !port_of) goto out;
    rc = 0;
    if (ports && nports != 1 && nports != nhosts) {
        char why[128];
        snprintf(why, sizeof why, "could not match %zu port numbers to %zu hosts", nports, nhosts);
        set_error(l, why);
        goto out;
    }
    for (size_t i = 0; i < nhosts; i++)
        if (!*host[i]) goto out; /* the default socket directory: libpq's own */
    for (size_t i = 0; i < nhosts && ports; i++)
        if (!(port_of[i] = strdup(port[nports == 1 ? 0 : i]))) {
            rc = -1;
            goto out;
        }
    l->hosts = host;
    l->ports = port_of;
    l->nhosts = nhosts;
    host = port_of = NULL;
out:
    free_list(host, nhosts);
    free_list(port_of, nhosts);
    free_list(port, nports);
    return rc;
}

spark_pg_lookup *spark_pg_lookup_start(const char *conninfo) {
    spark_pg_lookup *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    atomic_init(&l->phase, DONE);
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (!opts) {
        char msg[512];
        snprintf(msg, sizeof msg, "invalid connection string: %s", why ? why : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        set_error(l, msg);
        PQfreemem(why);
        return l;
    }
    int rc = read_hosts(l, opts);
    PQconninfoFree(opts);
    if (rc) {
        destroy(l);
        return NULL;
    }
    if (l->error) return l;
    if (!l->nhosts) {
        add_target(l, NULL, NULL, NULL); /* libpq reads the conninfo itself */
        return l;
    }
    if (!needs_dns(l)) {
        build_targets(l);
        return l;
    }
    atomic_store(&l->phase, RUNNING);
    pthread_attr_t attr;
    pthread_t thread;
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int started = pthread_create(&thread, &attr, resolve_thread, l);
        pthread_attr_destroy(&attr);
        if (started == 0) return l;
    }
    atomic_store(&l->phase, DONE);
    set_error(l, "cannot start a thread to resolve host names");
    return l;
}

bool spark_pg_lookup_done(const spark_pg_lookup *l) { return atomic_load(&l->phase) == DONE; }

const char *spark_pg_lookup_error(const spark_pg_lookup *l) { return l->error; }

size_t spark_pg_lookup_count(const spark_pg_lookup *l) { return l->error ? 0 : l->ntargets; }

const spark_pg_target *spark_pg_lookup_target(const spark_pg_lookup *l, size_t i) {
    return i < spark_pg_lookup_count(l) ? &l->targets[i] : NULL;
}

int spark_pg_lookup_timeout(const spark_pg_lookup *l) { return l->timeout_s; }

void spark_pg_lookup_free(spark_pg_lookup *l) {
    if (!l) return;
    int running = RUNNING;
    if (atomic_compare_exchange_strong(&l->phase, &running, ABANDONED))
        return; /* its thread frees */
    destroy(l);
}
