/*
 * config.c - parsing and validation of sparkd's settings.
 *
 * One table lists every setting with its environment variable and flag, so
 * that the two sources can never disagree on names, and every error names
 * the source it came from ("SPARK_PORT" or "--port").
 */
#include "config.h"

#include "auth.h"
#include "log.h"
#include "proxy.h"
#include "spark_build.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum {
    K_STRING,
    K_OPTIONAL,
    K_PORT,
    K_INSTANCE,
    K_DIR,
    K_LOG_LEVEL,
    K_BOOL,
    K_CONNINFO,
    K_SECONDS,
    K_COUNT,       /* 0..1e9, where 0 means no bound */
    K_SIZE,        /* 1..1e9 */
    K_SIGNING_KEY, /* optional; KID:BASE64URL, see docs/auth.md */
    K_VERIFY_KEYS, /* optional; KID:BASE64URL entries, see docs/auth.md */
    K_AUTH,        /* on or off; empty means the default, on */
    K_PROXIES,     /* optional; addresses and CIDR prefixes, see proxy.h */
    K_TIMEOUT,     /* 1..3600 seconds, kept in seconds */
    K_NOTIFY_KEY   /* optional; 32 bytes, unpadded base64url */
} kind;

typedef struct {
    const char *env;
    const char *flag;
    kind kind;
    size_t offset;
    const char *help;
} setting;

#define AT(field) offsetof(spark_config, field)

static const setting settings[] = {
    {"DATABASE_URL", "--database-url", K_CONNINFO, AT(database_url),
     "PostgreSQL conninfo or URI (required)"},
    {"SPARK_HOST", "--host", K_STRING, AT(host), "interface to listen on (default: all)"},
    {"SPARK_PORT", "--port", K_PORT, AT(port), "port to listen on (default: 8080)"},
    {"SPARK_INSTANCE", "--instance", K_INSTANCE, AT(instance),
     "instance id for logs, metrics, presence (default: host-pid)"},
    {"SPARK_WEB_ROOT", "--web-root", K_DIR, AT(web_root),
     "static files, over the installed web root (default: ./web)"},
    {"SPARK_MIGRATIONS_DIR", "--migrations", K_DIR, AT(migrations_dir),
     "schema migrations (default: ./migrations)"},
    {"SPARK_SQL_DIR", "--sql", K_DIR, AT(sql_dir), "views and functions (default: ./sql)"},
    {"SPARK_LOG_LEVEL", "--log-level", K_LOG_LEVEL, AT(log_level),
     "debug, info, warn or error (default: info)"},
    {"SPARK_AUTH", "--auth", K_AUTH, AT(auth),
     "on: tokens required (default); off: every connection is anonymous and allowed"},
    {"SPARK_SIGNING_KEY", NULL, K_SIGNING_KEY, AT(signing_key),
     "KID:KEY that signs session tokens (see sparkd keygen)"},
    {"SPARK_VERIFY_KEYS", NULL, K_VERIFY_KEYS, AT(verify_keys),
     "KID:KEY,... that verify session tokens (required unless SPARK_AUTH=off)"},
    {"SPARK_NOTIFY_KEY", NULL, K_NOTIFY_KEY, AT(notify_key),
     "32 bytes, base64url: authenticates ephemeral messages between instances "
     "(default: derived from SPARK_SIGNING_KEY)"},
    {"SPARK_ALLOWED_ORIGINS", "--allowed-origins", K_OPTIONAL, AT(allowed_origins),
     "origins allowed to open cookie-authenticated sockets"},
    {"SPARK_TRUSTED_PROXIES", "--trusted-proxies", K_PROXIES, AT(trusted_proxies),
     "addresses/CIDRs whose X-Forwarded-Proto and Forwarded count (default: none)"},
    {"SPARK_DEMO_LOGIN", "--demo-login", K_BOOL, AT(demo_login),
     "1 turns sign-in on: sign-in routes such as the demo /login (default: 0)"},
    {"SPARK_EPOLL", "--epoll", K_BOOL, AT(epoll),
     "0 makes the event loop wait with poll() instead of epoll (default: 1)"},
    {"SPARK_SHUTDOWN_TIMEOUT", "--shutdown-timeout", K_SECONDS, AT(shutdown_timeout_ms),
     "seconds a graceful stop may take (default: 10)"},
    {"SPARK_MAX_MESSAGE", "--max-message", K_SIZE, AT(max_message_bytes),
     "largest WebSocket message and broadcast payload in bytes (default: 65536)"},
    {"SPARK_MAX_QUEUE", "--max-queue", K_SIZE, AT(max_queue_bytes),
     "unsent bytes per connection before it is closed (default: 1048576)"},
    {"SPARK_RATE_LIMIT", "--rate-limit", K_COUNT, AT(rate_limit),
     "messages per second per connection, 0 for none (default: 100)"},
    {"SPARK_MAX_CONNECTIONS", "--max-connections", K_SIZE, AT(max_connections),
     "WebSocket connections per instance (default: 10000)"},
    {"SPARK_ROOM_HISTORY", "--room-history", K_COUNT, AT(room_history),
     "messages kept per room, 0 for all (default: 1000)"},
    {"SPARK_ROOM_HISTORY_AGE", "--room-history-age", K_COUNT, AT(room_history_age),
     "seconds a room message is kept, 0 for ever (default: 86400)"},
    {"SPARK_CROWDED_ROOM", "--crowded-room", K_COUNT, AT(crowded_room),
     "present connections above which a room is crowded: the chat channel's user_joined "
     "and user_left are skipped there, and presence is a count of users, not a list; 0 for "
     "none (default: 100)"},
    {"SPARK_PRESENCE_TIMEOUT", "--presence-timeout", K_SECONDS, AT(presence_timeout_ms),
     "seconds before a silent instance's presences expire (default: 30)"},
    {"SPARK_TOKEN_GRACE", "--token-grace", K_SECONDS, AT(token_grace_ms),
     "seconds a connection outlives its expired token (default: 0)"},
    {"SPARK_DB_TIMEOUT", "--db-timeout", K_TIMEOUT, AT(db_timeout_s),
     "seconds a database statement or lock wait may take (default: 5)"},
    {"SPARK_MAX_STATE", "--max-state", K_SIZE, AT(max_state_bytes),
     "largest shared state of a component, as JSON bytes (default: 1048576)"},
    {"SPARK_MAX_COMPONENTS", "--max-components", K_SIZE, AT(max_components),
     "component instances cached per instance; the least recently used unviewed go first "
     "(default: 10000)"},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

void spark_config_usage(FILE *out) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        char flag[40] = "";
        if (settings[i].flag) snprintf(flag, sizeof flag, "%s", settings[i].flag);
        fprintf(out, "  %-20s %-22s %s\n", flag, settings[i].env, settings[i].help);
    }
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
    return -1;
}

static bool valid_instance(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s)) return false;
    return true;
}

static bool is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Stores one value into the field its setting names, after validating it.
 * `source` is the variable or flag the value came from, for the message. */
static int apply(spark_config *cfg, const setting *s, const char *source, const char *value,
                 char *err, size_t errlen) {
    void *field = (char *)cfg + s->offset;
    long n;
    switch (s->kind) {
    case K_PORT:
        if (parse_int(value, 1, 65535, &n))
            return fail(err, errlen, "%s: \"%.64s\" is not a port number (1-65535)", source, value);
        *(int *)field = (int)n;
        return 0;
    case K_SECONDS:
        if (parse_int(value, 0, 3600, &n))
            return fail(err, errlen, "%s: \"%.64s\" is not a number of seconds (0-3600)", source,
                        value);
        *(int *)field = (int)n * 1000;
        return 0;
    case K_TIMEOUT:
        if (parse_int(value, 1, 3600, &n))
            return fail(err, errlen, "%s: \"%.64s\" is not a number of seconds (1-3600)", source,
                        value);
        *(int *)field = (int)n;
        return 0;
    case K_AUTH:
        /* Only the two words: a typo must not turn authentication off. */
        if (!*value || strcasecmp(value, "on") == 0) {
            *(bool *)field = true;
        } else if (strcasecmp(value, "off") == 0) {
            *(bool *)field = false;
        } else {
            return fail(err, errlen, "%s: \"%.64s\" is neither on nor off", source, value);
        }
        return 0;
    case K_COUNT:
    case K_SIZE:
        if (parse_int(value, s->kind == K_SIZE ? 1 : 0, 1000000000, &n))
            return fail(err, errlen, "%s: \"%.64s\" is not a whole number (%d-1000000000)", source,
                        value, s->kind == K_SIZE ? 1 : 0);
        *(int *)field = (int)n;
        return 0;
    case K_LOG_LEVEL:
        n = spark_log_level_parse(value);
        if (n < 0)
            return fail(err, errlen, "%s: \"%.64s\" is not a log level (debug, info, warn, error)",
                        source, value);
        *(int *)field = (int)n;
        return 0;
    case K_BOOL:
        if (parse_bool(value, (bool *)field))
            return fail(err, errlen, "%s: \"%.64s\" is not a boolean (1 or 0)", source, value);
        return 0;
    case K_INSTANCE:
        if (!valid_instance(value))
            return fail(err, errlen,
                        "%s: \"%.64s\" is not an instance id (1-64 of A-Z a-z 0-9 . _ -)", source,
                        value);
        break;
    case K_CONNINFO: {
        char *why = NULL;
        PQconninfoOption *opts = PQconninfoParse(value, &why);
        if (!opts) {
            /* libpq's message may quote the value; it holds no password
             * when parsing failed before reaching one, but stay safe and
             * report only the reason's first line. */
            int r = fail(err, errlen, "%s: not a valid PostgreSQL connection string: %.*s", source,
                         why ? (int)strcspn(why, "\n") : 7, why ? why : "unknown");
            PQfreemem(why);
            return r;
        }
        PQconninfoFree(opts);
        break;
    }
    case K_NOTIFY_KEY:
    case K_SIGNING_KEY:
    case K_VERIFY_KEYS: {
        /* Parsed here only to refuse a bad key at startup; the server
         * parses the stored text again when it needs the keys. */
        char why[256];
        int bad;
        if (!*value) {
            bad = 0;
        } else if (s->kind == K_NOTIFY_KEY) {
            unsigned char key[32];
            size_t decoded = 0;
            bad = sodium_base642bin(key, sizeof key, value, strlen(value), NULL, &decoded, NULL,
                                    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
                  decoded != sizeof key;
            sodium_memzero(key, sizeof key);
            snprintf(why, sizeof why, "not 32 bytes of unpadded base64url");
        } else if (s->kind == K_SIGNING_KEY) {
            spark_auth_signing_key *key;
            bad = spark_auth_signing_key_parse(value, &key, why, sizeof why);
            spark_auth_signing_key_free(key);
        } else {
            spark_auth_keyring *ring;
            bad = spark_auth_keyring_parse(value, &ring, why, sizeof why);
            spark_auth_keyring_free(ring);
        }
        if (bad) return fail(err, errlen, "%s: %s", source, why);
    }
        /* fall through */
    case K_PROXIES:
        if (s->kind == K_PROXIES) {
            spark_proxies *proxies;
            char why[256];
            int bad = spark_proxies_parse(value, &proxies, why, sizeof why);
            spark_proxies_free(proxies);
            if (bad) return fail(err, errlen, "%s: %s", source, why);
        }
        /* fall through */
    case K_OPTIONAL:
        /* Empty means unset, as `${VAR:-}` in a compose file passes it. */
        if (!*value) {
            free(*(char **)field);
            *(char **)field = NULL;
            return 0;
        }
        /* fall through */
    case K_STRING:
    case K_DIR:
        if (!*value) return fail(err, errlen, "%s: must not be empty", source);
        if (strlen(value) > 4096) return fail(err, errlen, "%s: longer than 4096 bytes", source);
        break;
    }
    char **slot = (char **)field;
    free(*slot);
    *slot = strdup(value);
    if (!*slot) return fail(err, errlen, "%s: out of memory", source);
    return 0;
}

static const setting *find_flag(const char *arg, size_t len) {
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].flag && strlen(settings[i].flag) == len &&
            strncmp(settings[i].flag, arg, len) == 0)
            return &settings[i];
    return NULL;
}

static int set_default(char **slot, const char *value) {
    if (*slot) return 0;
    *slot = strdup(value);
    return *slot ? 0 : -1;
}

/* The installed data directory as seen from the file this code was loaded
 * from (libspark.so, or a program linking it statically), for an install
 * that is not where it was configured to go. Writes "" when unknown. */
static void relocated_datadir(char *out, size_t cap) {
    Dl_info info;
    out[0] = '\0';
    if (!dladdr((void *)relocated_datadir, &info) || !info.dli_fname) return;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash) return;
    snprintf(out, cap, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname,
             SPARK_LIBDIR_TO_DATADIR);
}

/* A data directory defaults to ./NAME when the working directory has one
 * (a source checkout), else to the installed copy: where the build was
 * configured to install it, or where the loaded library says it is. */
static int default_dir(char **slot, const char *name) {
    if (*slot) return 0;
    if (is_directory(name)) return set_default(slot, name);
    char path[4096], moved[3072];
    snprintf(path, sizeof path, "%s/%s", SPARK_DATADIR, name);
    if (is_directory(path)) return set_default(slot, path);
    relocated_datadir(moved, sizeof moved);
    snprintf(path, sizeof path, "%s/%s", moved, name);
    return set_default(slot, moved[0] && is_directory(path) ? path : name);
}

/* The runtime's own web root, under the app's: ./web or the installed
 * copy (as configured, or where the loaded library says it is), the first
 * that holds the client (an app's ./web of its own does not), or none. */
static int default_base_web_root(spark_config *cfg) {
    char installed[4096], moved[3072], relocated[3200];
    snprintf(installed, sizeof installed, "%s/web", SPARK_DATADIR);
    relocated_datadir(moved, sizeof moved);
    snprintf(relocated, sizeof relocated, "%s/web", moved);
    const char *candidates[] = {"web", installed, moved[0] ? relocated : "web"};
    for (size_t i = 0; i < 3; i++) {
        char client[4200];
        snprintf(client, sizeof client, "%s/js/spark.js", candidates[i]);
        if (access(client, R_OK) == 0) return set_default(&cfg->base_web_root, candidates[i]);
    }
    return 0;
}

static int apply_defaults(spark_config *cfg) {
    char host[64] = "sparkd", id[80];
    if (gethostname(host, sizeof host) != 0) strcpy(host, "sparkd");
    host[sizeof host - 1] = '\0';
    snprintf(id, sizeof id, "%s-%ld", host, (long)getpid());
    for (char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) *p = '-';
    if (strlen(id) > 64) id[64] = '\0';
    if (set_default(&cfg->instance, id)) return -1;
    if (default_dir(&cfg->web_root, "web") || default_base_web_root(cfg)) return -1;
    if (default_dir(&cfg->migrations_dir, "migrations")) return -1;
    if (default_dir(&cfg->sql_dir, "sql")) return -1;
    return 0;
}

static int check_required(const spark_config *cfg, spark_command cmd, char *err, size_t errlen) {
    if (!cfg->database_url)
        return fail(err, errlen,
                    "DATABASE_URL: not set (a PostgreSQL conninfo or URI is required)");
    if (cmd == SPARK_CMD_SERVE && !is_directory(cfg->web_root))
        return fail(err, errlen, "SPARK_WEB_ROOT: \"%.200s\" is not a directory", cfg->web_root);
    if (cmd == SPARK_CMD_MIGRATE && !is_directory(cfg->migrations_dir))
        return fail(err, errlen, "SPARK_MIGRATIONS_DIR: \"%.200s\" is not a directory",
                    cfg->migrations_dir);
    if (cmd == SPARK_CMD_MIGRATE && !is_directory(cfg->sql_dir))
        return fail(err, errlen, "SPARK_SQL_DIR: \"%.200s\" is not a directory", cfg->sql_dir);
    /* Secure by default: a server that would let everyone in says so only
     * when asked to. */
    if (cmd == SPARK_CMD_SERVE && cfg->auth && !cfg->verify_keys)
        return fail(err, errlen,
                    "SPARK_VERIFY_KEYS: not set; sparkd serve needs keys to verify tokens "
                    "(sparkd keygen makes a pair), or SPARK_AUTH=off to allow anonymous access");
    /* Keys that would be ignored are a deployment that believes it is
     * protected while it is not. */
    if (cmd == SPARK_CMD_SERVE && !cfg->auth && cfg->verify_keys)
        return fail(err, errlen,
                    "SPARK_AUTH: off conflicts with SPARK_VERIFY_KEYS (unset one of them)");
    return 0;
}

/* A signing key whose key id the verify keys also name, with another
 * public key, makes every token this instance issues fail its own check. */
static int check_keys_agree(const spark_config *cfg, char *err, size_t errlen) {
    if (!cfg->signing_key || !cfg->verify_keys) return 0;
    spark_auth_signing_key *key;
    spark_auth_keyring *ring;
    char why[256];
    if (spark_auth_signing_key_parse(cfg->signing_key, &key, why, sizeof why))
        return fail(err, errlen, "SPARK_SIGNING_KEY: %s", why);
    if (spark_auth_keyring_parse(cfg->verify_keys, &ring, why, sizeof why)) {
        spark_auth_signing_key_free(key);
        return fail(err, errlen, "SPARK_VERIFY_KEYS: %s", why);
    }
    int match = spark_auth_keyring_matches(ring, key);
    int r = match >= 0 ? 0
                       : fail(err, errlen,
                              "SPARK_VERIFY_KEYS: key %s is not the public half of "
                              "SPARK_SIGNING_KEY's key %s",
                              spark_auth_signing_key_kid(key), spark_auth_signing_key_kid(key));
    spark_auth_keyring_free(ring);
    spark_auth_signing_key_free(key);
    return r;
}

static const char *system_env(const char *name) { return getenv(name); }

int spark_config_load(spark_config *cfg, spark_command cmd, int argc, char **argv, spark_env_fn env,
                      char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    cfg->port = 8080;
    cfg->log_level = SPARK_LOG_INFO;
    cfg->shutdown_timeout_ms = 10000;
    cfg->max_message_bytes = 65536;
    cfg->max_queue_bytes = 1048576;
    cfg->rate_limit = 100;
    cfg->max_connections = 10000;
    cfg->room_history = 1000;
    cfg->room_history_age = 86400;
    cfg->crowded_room = 100;
    cfg->presence_timeout_ms = 30000;
    cfg->auth = true;
    cfg->epoll = true;
    cfg->db_timeout_s = 5;
    cfg->max_state_bytes = 1048576;
    cfg->max_components = 10000;
    if (!env) env = system_env;

    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *value = env(settings[i].env);
        if (value && apply(cfg, &settings[i], settings[i].env, value, err, errlen)) goto bad;
    }
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const setting *s = strncmp(arg, "--", 2) == 0 ? find_flag(arg, name_len) : NULL;
        if (!s) {
            fail(err, errlen, "%.64s: unknown option (see sparkd --help)", arg);
            goto bad;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            fail(err, errlen, "%s: needs a value", s->flag);
            goto bad;
        }
        if (apply(cfg, s, s->flag, value, err, errlen)) goto bad;
    }
    if (apply_defaults(cfg)) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    if (check_required(cfg, cmd, err, errlen) || check_keys_agree(cfg, err, errlen)) goto bad;
    return 0;
bad:
    spark_config_free(cfg);
    return -1;
}

void spark_config_free(spark_config *cfg) {
    char **owned[] = {
        &cfg->database_url,  &cfg->host,           &cfg->instance,        &cfg->web_root,
        &cfg->base_web_root, &cfg->migrations_dir, &cfg->sql_dir,         &cfg->signing_key,
        &cfg->verify_keys,   &cfg->notify_key,     &cfg->allowed_origins, &cfg->trusted_proxies};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) {
        char **slot = owned[i];
        free(*slot);
        *slot = NULL;
    }
}
