/*
 * cli.c - sparkd's command line: picks the command, loads the
 * configuration, and runs it.
 *
 * Exit statuses: 0 success, 1 runtime failure, 2 bad usage or configuration
 * (one line on stderr that names the variable or flag at fault).
 */
#include <spark/spark.h>

#include "config.h"
#include "log.h"
#include "migrate.h"
#include "server.h"
#include "spark_build.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "Usage: sparkd [COMMAND] [OPTIONS]\n"
            "\n"
            "Spark %s: live components and channels backed by PostgreSQL.\n"
            "\n"
            "Commands:\n"
            "  serve       run the server (the default)\n"
            "  migrate     apply pending schema migrations, then re-apply sql/\n"
            "  --help      show this help\n"
            "  --version   print the version\n"
            "\n"
            "Options (each overrides its environment variable):\n",
            SPARK_VERSION);
    spark_config_usage(out);
}

const char *spark_version(void) { return SPARK_VERSION; }

int spark_main(int argc, char **argv) {
    const char *command = argc > 1 ? argv[1] : "serve";
    int first_option = argc > 1 ? 2 : 1;
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(command, "--version") == 0) {
        printf("sparkd %s\n", SPARK_VERSION);
        return 0;
    }
    if (strncmp(command, "--", 2) == 0) { /* options without a command */
        command = "serve";
        first_option = 1;
    }
    spark_command cmd;
    if (strcmp(command, "serve") == 0) {
        cmd = SPARK_CMD_SERVE;
    } else if (strcmp(command, "migrate") == 0) {
        cmd = SPARK_CMD_MIGRATE;
    } else {
        fprintf(stderr, "sparkd: %s: unknown command (see sparkd --help)\n", command);
        return 2;
    }
    for (int i = first_option; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }

    spark_config cfg;
    char err[512];
    if (spark_config_load(&cfg, cmd, argc - first_option, argv + first_option, NULL, err,
                          sizeof err)) {
        fprintf(stderr, "sparkd: %s\n", err);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "sparkd: libsodium failed to initialize\n");
        spark_config_free(&cfg);
        return 1;
    }
    spark_log_init((spark_log_level)cfg.log_level, cfg.instance);
    int rc = cmd == SPARK_CMD_MIGRATE ? spark_migrate(&cfg) : spark_serve(&cfg);
    spark_config_free(&cfg);
    return rc;
}
