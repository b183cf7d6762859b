/*
 * test_config.c - configuration parsing: defaults, environment, flags
 * overriding the environment, a clear error naming the culprit for every
 * kind of bad value, and serve's refusal to run without keys unless
 * anonymous access is asked for.
 */
#include "config.h"
#include "log.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A fake environment: NULL-terminated name/value pairs; a later pair
 * overrides an earlier one of the same name. */
static const char *const *fake_env;

static const char *lookup(const char *name) {
    const char *found = NULL;
    for (const char *const *p = fake_env; p && *p; p += 2)
        if (strcmp(p[0], name) == 0) found = p[1];
    return found;
}

static spark_config cfg;
static char err[512];

static int load(spark_command cmd, const char *const *env, int argc, const char **argv) {
    fake_env = env;
    err[0] = '\0';
    return spark_config_load(&cfg, cmd, argc, (char **)argv, lookup, err, sizeof err);
}

/* The key pair of docs/auth.md's test vector. */
#define SEED   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define PUBLIC "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
#define VERIFY "k1:" PUBLIC

static const char *const minimal[] = {"DATABASE_URL",
                                      "postgresql:///spark",
                                      "SPARK_WEB_ROOT",
                                      ".",
                                      "SPARK_VERIFY_KEYS",
                                      VERIFY,
                                      NULL};

START_TEST(defaults) {
    ck_assert_int_eq(load(SPARK_CMD_SERVE, minimal, 0, NULL), 0);
    ck_assert_str_eq(cfg.database_url, "postgresql:///spark");
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_ptr_null(cfg.host);
    ck_assert_int_eq(cfg.log_level, SPARK_LOG_INFO);
    ck_assert(!cfg.demo_login);
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 10000);
    ck_assert_int_eq(cfg.max_message_bytes, 65536);
    ck_assert_int_eq(cfg.max_queue_bytes, 1048576);
    ck_assert_int_eq(cfg.rate_limit, 100);
    ck_assert_int_eq(cfg.room_history, 1000);
    ck_assert_int_eq(cfg.presence_timeout_ms, 30000);
    ck_assert_int_eq(cfg.token_grace_ms, 0);
    ck_assert(cfg.auth);
    ck_assert_ptr_null(cfg.trusted_proxies);
    ck_assert_int_eq(cfg.db_timeout_s, 5);
    ck_assert_ptr_nonnull(cfg.instance);
    ck_assert_int_gt(strlen(cfg.instance), 0);
    spark_config_free(&cfg);
}
END_TEST

START_TEST(environment_is_read) {
    const char *const env[] = {"DATABASE_URL",
                               "host=/tmp dbname=x",
                               "SPARK_PORT",
                               "9001",
                               "SPARK_HOST",
                               "127.0.0.1",
                               "SPARK_INSTANCE",
                               "node-a.1",
                               "SPARK_WEB_ROOT",
                               ".",
                               "SPARK_LOG_LEVEL",
                               "debug",
                               "SPARK_DEMO_LOGIN",
                               "true",
                               "SPARK_SHUTDOWN_TIMEOUT",
                               "3",
                               "SPARK_ALLOWED_ORIGINS",
                               "http://a.test",
                               "SPARK_MAX_MESSAGE",
                               "1024",
                               "SPARK_RATE_LIMIT",
                               "0",
                               "SPARK_ROOM_HISTORY_AGE",
                               "604800",
                               "SPARK_VERIFY_KEYS",
                               VERIFY,
                               "SPARK_AUTH",
                               "ON",
                               "SPARK_TRUSTED_PROXIES",
                               "127.0.0.1, 10.0.0.0/8,::1",
                               "SPARK_DB_TIMEOUT",
                               "30",
                               NULL};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), 0);
    ck_assert_int_eq(cfg.port, 9001);
    ck_assert_str_eq(cfg.host, "127.0.0.1");
    ck_assert_str_eq(cfg.instance, "node-a.1");
    ck_assert_int_eq(cfg.log_level, SPARK_LOG_DEBUG);
    ck_assert(cfg.demo_login);
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 3000);
    ck_assert_str_eq(cfg.allowed_origins, "http://a.test");
    ck_assert_int_eq(cfg.max_message_bytes, 1024);
    ck_assert_int_eq(cfg.rate_limit, 0);
    ck_assert_int_eq(cfg.room_history_age, 604800);
    ck_assert(cfg.auth);
    ck_assert_str_eq(cfg.trusted_proxies, "127.0.0.1, 10.0.0.0/8,::1");
    ck_assert_int_eq(cfg.db_timeout_s, 30);
    spark_config_free(&cfg);
}
END_TEST

START_TEST(flags_override_environment) {
    const char *const env[] = {"DATABASE_URL",
                               "dbname=from_env",
                               "SPARK_PORT",
                               "9001",
                               "SPARK_WEB_ROOT",
                               ".",
                               "SPARK_INSTANCE",
                               "env",
                               "SPARK_TRUSTED_PROXIES",
                               "10.0.0.1",
                               "SPARK_DB_TIMEOUT",
                               "7",
                               NULL};
    const char *argv[] = {"--port",
                          "9002",
                          "--instance=flag",
                          "--database-url",
                          "dbname=from_flag",
                          "--log-level",
                          "error",
                          "--auth",
                          "off",
                          "--trusted-proxies=fd00::/8",
                          "--db-timeout",
                          "3600"};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 12, argv), 0);
    ck_assert_int_eq(cfg.port, 9002);
    ck_assert_str_eq(cfg.instance, "flag");
    ck_assert_str_eq(cfg.database_url, "dbname=from_flag");
    ck_assert_int_eq(cfg.log_level, SPARK_LOG_ERROR);
    ck_assert(!cfg.auth);
    ck_assert_str_eq(cfg.trusted_proxies, "fd00::/8");
    ck_assert_int_eq(cfg.db_timeout_s, 3600);
    spark_config_free(&cfg);
}
END_TEST

/* Each bad value must fail and name its source at the start of the line. */
static const struct {
    // cppcheck-suppress unusedStructMember ; read as bad_env[_i].var
    const char *var, *value, *expect_prefix;
} bad_env[] = {
    {"SPARK_PORT", "0", "SPARK_PORT: "},
    {"SPARK_PORT", "65536", "SPARK_PORT: "},
    {"SPARK_PORT", "80x", "SPARK_PORT: "},
    {"SPARK_PORT", "", "SPARK_PORT: "},
    {"SPARK_PORT", " 80", "SPARK_PORT: "},
    {"SPARK_LOG_LEVEL", "verbose", "SPARK_LOG_LEVEL: "},
    {"SPARK_DEMO_LOGIN", "maybe", "SPARK_DEMO_LOGIN: "},
    {"SPARK_INSTANCE", "has space", "SPARK_INSTANCE: "},
    {"SPARK_INSTANCE", "", "SPARK_INSTANCE: "},
    {"SPARK_SHUTDOWN_TIMEOUT", "-1", "SPARK_SHUTDOWN_TIMEOUT: "},
    {"SPARK_HOST", "", "SPARK_HOST: "},
    {"SPARK_MAX_MESSAGE", "0", "SPARK_MAX_MESSAGE: "},
    {"SPARK_MAX_QUEUE", "1k", "SPARK_MAX_QUEUE: "},
    {"SPARK_RATE_LIMIT", "-5", "SPARK_RATE_LIMIT: "},
    {"SPARK_ROOM_HISTORY", "1e3", "SPARK_ROOM_HISTORY: "},
    {"DATABASE_URL", "host='unterminated", "DATABASE_URL: "},
    {"DATABASE_URL", "postgresql://h/db?nosuchoption=1", "DATABASE_URL: "},
    {"DATABASE_URL", "dbname=x bogus_keyword=1", "DATABASE_URL: "},
    {"SPARK_WEB_ROOT", "/nonexistent/spark-web", "SPARK_WEB_ROOT: "},
    {"SPARK_SIGNING_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "SPARK_SIGNING_KEY: "},
    {"SPARK_SIGNING_KEY", "k1:AAECAwQF", "SPARK_SIGNING_KEY: "},
    {"SPARK_SIGNING_KEY", "k1:not base64!", "SPARK_SIGNING_KEY: "},
    {"SPARK_SIGNING_KEY", "k1:" SEED ",k2:" SEED, "SPARK_SIGNING_KEY: "},
    {"SPARK_VERIFY_KEYS", "k1", "SPARK_VERIFY_KEYS: "},
    {"SPARK_VERIFY_KEYS", " , ", "SPARK_VERIFY_KEYS: "},
    {"SPARK_VERIFY_KEYS", "k1:AAAA", "SPARK_VERIFY_KEYS: "},
    {"SPARK_VERIFY_KEYS", "k1:" PUBLIC ",k1:" PUBLIC, "SPARK_VERIFY_KEYS: "},
    {"SPARK_VERIFY_KEYS", "bad kid:" PUBLIC, "SPARK_VERIFY_KEYS: "},
    {"SPARK_VERIFY_KEYS", "k1:" PUBLIC "=", "SPARK_VERIFY_KEYS: "},
    {"SPARK_AUTH", "maybe", "SPARK_AUTH: "},
    {"SPARK_AUTH", "0", "SPARK_AUTH: "},
    {"SPARK_AUTH", "of", "SPARK_AUTH: "},
    {"SPARK_TRUSTED_PROXIES", "localhost", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "10.0.0.0/33", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "::1/129", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "10.0.0.0/", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "10.0.0.0/8x", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "10.1.2.3/8", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "1.2.3", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "127.0.0.1,,::1", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "127.0.0.1,", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "fe80::1%eth0", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_TRUSTED_PROXIES", "127.0.0.1 10.0.0.1", "SPARK_TRUSTED_PROXIES: "},
    {"SPARK_DB_TIMEOUT", "0", "SPARK_DB_TIMEOUT: "},
    {"SPARK_DB_TIMEOUT", "3601", "SPARK_DB_TIMEOUT: "},
    {"SPARK_DB_TIMEOUT", "5s", "SPARK_DB_TIMEOUT: "},
    {"SPARK_DB_TIMEOUT", "", "SPARK_DB_TIMEOUT: "},
};

START_TEST(bad_environment_value_names_the_variable) {
    const char *env[] = {
        "DATABASE_URL", "dbname=x", "SPARK_WEB_ROOT", ".", "SPARK_VERIFY_KEYS", VERIFY, NULL,
        NULL,           NULL};
    /* The bad pair goes last, so it overrides a good default above. */
    env[6] = bad_env[_i].var;
    env[7] = bad_env[_i].value;
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), -1);
    ck_assert_msg(strncmp(err, bad_env[_i].expect_prefix, strlen(bad_env[_i].expect_prefix)) == 0,
                  "%s=\"%s\" gave \"%s\"", bad_env[_i].var, bad_env[_i].value, err);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_ptr_null(strstr(err, "AAECAwQF")); /* a secret is never echoed */
}
END_TEST

START_TEST(bad_flags_name_the_flag) {
    const char *argv1[] = {"--port", "http"};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, minimal, 2, argv1), -1);
    ck_assert_msg(strncmp(err, "--port: ", 8) == 0, "%s", err);

    const char *argv2[] = {"--bogus", "1"};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, minimal, 2, argv2), -1);
    ck_assert_msg(strstr(err, "--bogus") && strstr(err, "unknown option"), "%s", err);

    const char *argv3[] = {"--port"};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, minimal, 1, argv3), -1);
    ck_assert_msg(strstr(err, "--port") && strstr(err, "needs a value"), "%s", err);

    const char *argv4[] = {"stray"};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, minimal, 1, argv4), -1);
    ck_assert_msg(strstr(err, "stray"), "%s", err);
}
END_TEST

START_TEST(empty_optional_values_count_as_unset) {
    const char *const env[] = {"DATABASE_URL",
                               "dbname=x",
                               "SPARK_WEB_ROOT",
                               ".",
                               "SPARK_SIGNING_KEY",
                               "",
                               "SPARK_VERIFY_KEYS",
                               "",
                               "SPARK_ALLOWED_ORIGINS",
                               "",
                               "SPARK_TRUSTED_PROXIES",
                               "",
                               "SPARK_AUTH",
                               "off",
                               NULL};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), 0);
    ck_assert_ptr_null(cfg.signing_key);
    ck_assert_ptr_null(cfg.verify_keys);
    ck_assert_ptr_null(cfg.allowed_origins);
    ck_assert_ptr_null(cfg.trusted_proxies);
    spark_config_free(&cfg);
}
END_TEST

START_TEST(token_keys_are_checked_together) {
    const char *env[] = {"DATABASE_URL",
                         "dbname=x",
                         "SPARK_WEB_ROOT",
                         ".",
                         "SPARK_SIGNING_KEY",
                         "k1:" SEED,
                         "SPARK_VERIFY_KEYS",
                         "k0:" PUBLIC ", k1:" PUBLIC,
                         NULL};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), 0);
    ck_assert_str_eq(cfg.signing_key, "k1:" SEED);
    ck_assert_str_eq(cfg.verify_keys, "k0:" PUBLIC ", k1:" PUBLIC);
    spark_config_free(&cfg);

    /* Another instance may verify what this one does not sign. */
    env[7] = "k0:" PUBLIC;
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), 0);
    spark_config_free(&cfg);

    /* The same key id with another public key can only be a mistake. */
    env[5] = "k0:" SEED;
    env[7] = "k0:adaYvTsAXUvPZzuyZoX53osP4odc1RIfwaBGe-fmi_U";
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), -1);
    ck_assert_msg(strncmp(err, "SPARK_VERIFY_KEYS: ", 19) == 0, "%s", err);
    ck_assert_ptr_null(strstr(err, SEED));
}
END_TEST

START_TEST(database_url_is_required) {
    const char *const env[] = {"SPARK_WEB_ROOT", ".", NULL};
    ck_assert_int_eq(load(SPARK_CMD_MIGRATE, env, 0, NULL), -1);
    ck_assert_msg(strncmp(err, "DATABASE_URL: ", 14) == 0, "%s", err);
}
END_TEST

START_TEST(migrate_needs_its_directories) {
    const char *const env[] = {"DATABASE_URL",
                               "dbname=x",
                               "SPARK_MIGRATIONS_DIR",
                               "/nonexistent/migrations",
                               "SPARK_SQL_DIR",
                               ".",
                               NULL};
    ck_assert_int_eq(load(SPARK_CMD_MIGRATE, env, 0, NULL), -1);
    ck_assert_msg(strncmp(err, "SPARK_MIGRATIONS_DIR: ", 22) == 0, "%s", err);

    /* serve does not need them, and migrate does not need a web root */
    const char *const env2[] = {"DATABASE_URL",
                                "dbname=x",
                                "SPARK_MIGRATIONS_DIR",
                                ".",
                                "SPARK_SQL_DIR",
                                ".",
                                "SPARK_WEB_ROOT",
                                "/nonexistent",
                                NULL};
    ck_assert_int_eq(load(SPARK_CMD_MIGRATE, env2, 0, NULL), 0);
    spark_config_free(&cfg);
}
END_TEST

START_TEST(boolean_spellings) {
    static const char *const yes[] = {"1", "true", "YES", "on"}, *const no[] = {"0", "false", "No",
                                                                                "off"};
    for (int i = 0; i < 4; i++) {
        const char *const env[] = {
            "DATABASE_URL", "dbname=x",         "SPARK_WEB_ROOT", ".", "SPARK_VERIFY_KEYS",
            VERIFY,         "SPARK_DEMO_LOGIN", yes[i],           NULL};
        ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), 0);
        ck_assert(cfg.demo_login);
        spark_config_free(&cfg);
        const char *const env2[] = {"DATABASE_URL",
                                    "dbname=x",
                                    "SPARK_WEB_ROOT",
                                    ".",
                                    "SPARK_VERIFY_KEYS",
                                    VERIFY,
                                    "SPARK_DEMO_LOGIN",
                                    no[i],
                                    NULL};
        ck_assert_int_eq(load(SPARK_CMD_SERVE, env2, 0, NULL), 0);
        ck_assert(!cfg.demo_login);
        spark_config_free(&cfg);
    }
}
END_TEST

START_TEST(serve_needs_keys_unless_auth_is_off) {
    const char *env[] = {"DATABASE_URL", "dbname=x", "SPARK_WEB_ROOT", ".", NULL, NULL, NULL,
                         NULL,           NULL};
    /* Nothing said: refused, naming the variable and the way out. */
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), -1);
    ck_assert_msg(strncmp(err, "SPARK_VERIFY_KEYS: ", 19) == 0 && strstr(err, "SPARK_AUTH=off"),
                  "%s", err);
    ck_assert_ptr_null(strchr(err, '\n'));
    /* Empty keys are no keys, and "on" is the default said aloud. */
    env[4] = "SPARK_VERIFY_KEYS", env[5] = "";
    env[6] = "SPARK_AUTH", env[7] = "on";
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), -1);
    ck_assert_msg(strncmp(err, "SPARK_VERIFY_KEYS: ", 19) == 0, "%s", err);
    /* An empty SPARK_AUTH is the default too. */
    env[7] = "";
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), -1);
    ck_assert_msg(strncmp(err, "SPARK_VERIFY_KEYS: ", 19) == 0, "%s", err);

    /* Anonymous access, asked for by variable or flag. */
    env[7] = "off";
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), 0);
    ck_assert(!cfg.auth);
    spark_config_free(&cfg);
    env[7] = "OFF";
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), 0);
    ck_assert(!cfg.auth);
    spark_config_free(&cfg);
    env[6] = NULL;
    const char *off[] = {"--auth", "off"};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 2, off), 0);
    ck_assert(!cfg.auth);
    spark_config_free(&cfg);
    const char *bad[] = {"--auth=yes"};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 1, bad), -1);
    ck_assert_msg(strncmp(err, "--auth: ", 8) == 0, "%s", err);

    /* With keys: on, whether said or not. */
    env[5] = VERIFY;
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), 0);
    ck_assert(cfg.auth);
    spark_config_free(&cfg);

    /* Keys and off: which was meant? Neither is guessed. */
    env[6] = "SPARK_AUTH", env[7] = "off";
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 0, NULL), -1);
    ck_assert_msg(strncmp(err, "SPARK_AUTH: ", 12) == 0 && strstr(err, "SPARK_VERIFY_KEYS"), "%s",
                  err);
    ck_assert_int_eq(load(SPARK_CMD_SERVE, env, 2, off), -1);
    ck_assert_msg(strstr(err, "SPARK_VERIFY_KEYS"), "%s", err);
}
END_TEST

START_TEST(migrate_needs_no_keys) {
    const char *env[] = {
        "DATABASE_URL", "dbname=x", "SPARK_MIGRATIONS_DIR", ".", "SPARK_SQL_DIR", ".", NULL,
        NULL,           NULL};
    ck_assert_int_eq(load(SPARK_CMD_MIGRATE, env, 0, NULL), 0);
    ck_assert(cfg.auth);
    spark_config_free(&cfg);
    /* A file shared with the instances may carry both: migrate serves no
     * one, so there is nothing to refuse. */
    env[6] = "SPARK_AUTH", env[7] = "off";
    ck_assert_int_eq(load(SPARK_CMD_MIGRATE, env, 0, NULL), 0);
    spark_config_free(&cfg);
}
END_TEST

START_TEST(trusted_proxy_lists) {
    static const char *const good[] = {"127.0.0.1",
                                       "127.0.0.1,10.0.0.0/8,::1",
                                       " 192.168.0.0/16 , fd00::/8 ",
                                       "0.0.0.0/0",
                                       "::/0",
                                       "::ffff:10.0.0.0/104",
                                       "2001:db8::/32,172.16.0.0/12,10.0.0.1/32"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        const char *const env[] = {"DATABASE_URL",
                                   "dbname=x",
                                   "SPARK_WEB_ROOT",
                                   ".",
                                   "SPARK_VERIFY_KEYS",
                                   VERIFY,
                                   "SPARK_TRUSTED_PROXIES",
                                   good[i],
                                   NULL};
        ck_assert_msg(load(SPARK_CMD_SERVE, env, 0, NULL) == 0, "%s: %s", good[i], err);
        ck_assert_str_eq(cfg.trusted_proxies, good[i]);
        spark_config_free(&cfg);
    }
    /* The error names the entry at fault, and the network meant. */
    const char *argv[] = {"--trusted-proxies", "127.0.0.1,10.1.2.3/8"};
    ck_assert_int_eq(load(SPARK_CMD_SERVE, minimal, 2, argv), -1);
    ck_assert_msg(strncmp(err, "--trusted-proxies: ", 19) == 0 && strstr(err, "10.1.2.3/8") &&
                      strstr(err, "10.0.0.0/8"),
                  "%s", err);
    argv[1] = "proxy.internal";
    ck_assert_int_eq(load(SPARK_CMD_SERVE, minimal, 2, argv), -1);
    ck_assert_msg(strstr(err, "\"proxy.internal\"") && strstr(err, "not an IPv4 or IPv6"), "%s",
                  err);
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, environment_is_read);
    tcase_add_test(tc, flags_override_environment);
    tcase_add_loop_test(tc, bad_environment_value_names_the_variable, 0,
                        (int)(sizeof bad_env / sizeof bad_env[0]));
    tcase_add_test(tc, bad_flags_name_the_flag);
    tcase_add_test(tc, empty_optional_values_count_as_unset);
    tcase_add_test(tc, token_keys_are_checked_together);
    tcase_add_test(tc, database_url_is_required);
    tcase_add_test(tc, migrate_needs_its_directories);
    tcase_add_test(tc, boolean_spellings);
    tcase_add_test(tc, serve_needs_keys_unless_auth_is_off);
    tcase_add_test(tc, migrate_needs_no_keys);
    tcase_add_test(tc, trusted_proxy_lists);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
