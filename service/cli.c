/*
 * cli.c - sparkd's command line: picks the command, loads the
 * configuration, and runs it.
 *
 * Exit statuses: 0 success, 1 runtime failure, 2 bad usage or configuration
 * (one line on stderr that names the variable or flag at fault).
 */
#include <spark/spark.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "migrate.h"
#include "server.h"
#include "spark_build.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The program's own name in messages: sparkd, or a user's program built
 * on libspark. Per process, like argv[0]. */
static const char *prog = "sparkd";

static void usage(FILE *out) {
    fprintf(out,
            "Usage: %s [COMMAND] [OPTIONS]\n"
            "\n"
            "Spark %s: live components and channels backed by PostgreSQL.\n"
            "\n"
            "Commands:\n"
            "  serve       run the server (the default)\n"
            "  migrate     apply pending schema migrations, then re-apply sql/\n"
            "  keygen      print a new SPARK_SIGNING_KEY and SPARK_VERIFY_KEYS pair\n"
            "  token --sub ID --name NAME [--ttl SECONDS] [--scope SCOPE]...\n"
            "              print a token signed with SPARK_SIGNING_KEY (ttl default\n"
            "              3600; scopes such as room:lobby, room:*, component:todo:*)\n"
            "  --help      show this help\n"
            "  --version   print the version\n"
            "\n"
            "Options of serve and migrate (each overrides its environment variable):\n",
            prog, SPARK_VERSION);
    spark_config_usage(out);
}

const char *spark_version(void) { return SPARK_VERSION; }

/* keygen needs no configuration: a fresh key is what one writes into it. */
static int run_keygen(int argc, char **argv) {
    if (argc > 0) {
        fprintf(stderr, "%s: keygen: %.64s: unknown option (keygen takes none)\n", prog, argv[0]);
        return 2;
    }
    char signing[SPARK_AUTH_KEY_TEXT_SIZE], verify[SPARK_AUTH_KEY_TEXT_SIZE];
    if (spark_auth_keygen(signing, sizeof signing, verify, sizeof verify)) {
        fprintf(stderr, "%s: keygen: could not format the key\n", prog);
        return 1;
    }
    printf("SPARK_SIGNING_KEY=%s\nSPARK_VERIFY_KEYS=%s\n", signing, verify);
    sodium_memzero(signing, sizeof signing);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* Accepts "--flag VALUE" and "--flag=VALUE", as the serve options do.
 * Returns the value, or NULL if argv[*i] is not `flag`; sets *missing when
 * it is `flag` without a value. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag, bool *missing) {
    size_t n = strlen(flag);
    const char *arg = argv[*i];
    if (strncmp(arg, flag, n) != 0) return NULL;
    if (arg[n] == '=') return arg + n + 1;
    if (arg[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int run_token(int argc, char **argv) {
    const char *sub = NULL, *name = NULL, *ttl_text = "3600";
    const char *scopes[SPARK_TOKEN_MAX_SCOPES];
    size_t nscopes = 0;
    for (int i = 0; i < argc; i++) {
        static const char *const flags[] = {"--sub", "--name", "--ttl", "--scope"};
        const char *value = NULL;
        bool missing = false;
        size_t f = 0;
        for (; f < sizeof flags / sizeof *flags; f++)
            if ((value = flag_value(argc, argv, &i, flags[f], &missing)) || missing) break;
        if (f == sizeof flags / sizeof *flags) {
            fprintf(stderr, "%s: token: %.64s: unknown option (see %s --help)\n", prog, argv[i],
                    prog);
            return 2;
        }
        if (missing) {
            fprintf(stderr, "%s: %s: needs a value\n", prog, flags[f]);
            return 2;
        }
        if (f == 0)
            sub = value;
        else if (f == 1)
            name = value;
        else if (f == 2)
            ttl_text = value;
        else if (nscopes == SPARK_TOKEN_MAX_SCOPES) {
            fprintf(stderr, "%s: --scope: more than %d scopes\n", prog, SPARK_TOKEN_MAX_SCOPES);
            return 2;
        } else
            scopes[nscopes++] = value;
    }
    if (!sub) {
        fprintf(stderr, "%s: --sub: required (the user id)\n", prog);
        return 2;
    }
    if (!name) {
        fprintf(stderr, "%s: --name: required (the display name)\n", prog);
        return 2;
    }
    char *end;
    errno = 0;
    long long ttl = strtoll(ttl_text, &end, 10);
    if (errno || !*ttl_text || *end || ttl < 1 || ttl > SPARK_TOKEN_MAX_TTL) {
        fprintf(stderr, "%s: --ttl: \"%.64s\" is not a number of seconds (1-%d)\n", prog, ttl_text,
                SPARK_TOKEN_MAX_TTL);
        return 2;
    }
    const char *key_text = getenv("SPARK_SIGNING_KEY");
    if (!key_text || !*key_text) {
        fprintf(stderr, "%s: SPARK_SIGNING_KEY: not set (make one with %s keygen)\n", prog, prog);
        return 2;
    }
    spark_auth_signing_key *key;
    char err[256];
    if (spark_auth_signing_key_parse(key_text, &key, err, sizeof err)) {
        fprintf(stderr, "%s: SPARK_SIGNING_KEY: %s\n", prog, err);
        return 2;
    }
    char *token;
    int rc = spark_token_mint(key, sub, name, ttl, scopes, nscopes, (int64_t)time(NULL), &token,
                              err, sizeof err);
    spark_auth_signing_key_free(key);
    if (rc) {
        /* mint names its culprit "sub: ", "name: "...: the flag without
         * its dashes; anything else is not the caller's fault. */
        bool flag = strncmp(err, "sub:", 4) == 0 || strncmp(err, "name:", 5) == 0 ||
                    strncmp(err, "ttl:", 4) == 0 || strncmp(err, "scope:", 6) == 0;
        fprintf(stderr, "%s: %s%s\n", prog, flag ? "--" : "token: ", err);
        return flag ? 2 : 1;
    }
    printf("%s\n", token);
    free(token);
    return fflush(stdout) == 0 ? 0 : 1;
}

int spark_main(int argc, char **argv) {
    if (argc > 0 && argv[0] && *argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        prog = slash && slash[1] ? slash + 1 : argv[0];
    }
    const char *command = argc > 1 ? argv[1] : "serve";
    int first_option = argc > 1 ? 2 : 1;
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(command, "--version") == 0) {
        printf("%s %s\n", prog, SPARK_VERSION);
        return 0;
    }
    if (strncmp(command, "--", 2) == 0) { /* options without a command */
        command = "serve";
        first_option = 1;
    }
    /* keygen and token run without the server's configuration. */
    bool keygen = strcmp(command, "keygen") == 0, token = strcmp(command, "token") == 0;
    spark_command cmd = strcmp(command, "migrate") == 0 ? SPARK_CMD_MIGRATE : SPARK_CMD_SERVE;
    if (strcmp(command, "serve") != 0 && cmd != SPARK_CMD_MIGRATE && !keygen && !token) {
        fprintf(stderr, "%s: %s: unknown command (see %s --help)\n", prog, command, prog);
        return 2;
    }
    for (int i = first_option; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    if (keygen || token) {
        if (sodium_init() < 0) {
            fprintf(stderr, "%s: libsodium failed to initialize\n", prog);
            return 1;
        }
        return keygen ? run_keygen(argc - first_option, argv + first_option)
                      : run_token(argc - first_option, argv + first_option);
    }

    spark_config cfg;
    char err[512];
    if (spark_config_load(&cfg, cmd, argc - first_option, argv + first_option, NULL, err,
                          sizeof err)) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "%s: libsodium failed to initialize\n", prog);
        spark_config_free(&cfg);
        return 1;
    }
    spark_log_init((spark_log_level)cfg.log_level, cfg.instance);
    int rc = cmd == SPARK_CMD_MIGRATE ? spark_migrate(&cfg) : spark_serve(&cfg);
    spark_config_free(&cfg);
    return rc;
}
