/*
 * test_migrate.c - `sparkd migrate` against a real PostgreSQL: an empty
 * database is brought up to date, a second run changes nothing, a broken
 * migration leaves the schema exactly as it was and says which file failed
 * and why, and the schema's triggers version, record and announce writes.
 */
#include "harness.h"

#include <check.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes a temporary migrations directory and what it holds. */
static void remove_dir(const char *dir) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Everything in schema spark that a migration could change, as one string. */
static char *schema_fingerprint(PGconn *pg) {
    PGresult *r = it_exec(
        pg,
        "SELECT coalesce(string_agg(x, ',' ORDER BY x), '') FROM ("
        "  SELECT 'rel:' || relname || ':' || relkind::text AS x FROM pg_class c"
        "   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'spark'"
        "  UNION ALL SELECT 'col:' || relname || '.' || attname FROM pg_attribute a"
        "   JOIN pg_class c ON c.oid = attrelid JOIN pg_namespace n ON n.oid = relnamespace"
        "   WHERE nspname = 'spark' AND attnum > 0 AND NOT attisdropped"
        "  UNION ALL SELECT 'fn:' || p.oid::regprocedure::text FROM pg_proc p"
        "   JOIN pg_namespace n ON n.oid = p.pronamespace WHERE nspname = 'spark'"
        "  UNION ALL SELECT 'tg:' || tgname FROM pg_trigger t JOIN pg_class c ON c.oid = tgrelid"
        "   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'spark'"
        "  UNION ALL SELECT 'mig:' || name || '@' || applied_at FROM spark.schema_migrations"
        ") s");
    char *s = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return s;
}

START_TEST(migrates_an_empty_database_then_changes_nothing) {
    char name[64], v[256];
    const char *db = it_create_database(name);
    const char *args[] = {"migrate", NULL};
    char *out, *err;
    ck_assert_int_eq(it_sparkd(db, args, &out, &err), 0);
    ck_assert_msg(strstr(out, "applied 0001_schema.sql"), "stdout: %s\nstderr: %s", out, err);
    free(out), free(err);

    PGconn *pg = it_connect(db);
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'spark' "
                                    "AND tablename IN ('components', 'events', 'messages')",
                                    v, sizeof v),
                     "3");
    /* Every file of migrations/ is recorded, none twice. */
    glob_t files;
    ck_assert_int_eq(glob(SOURCE_DIR "/migrations/[0-9][0-9][0-9][0-9]_*.sql", 0, NULL, &files), 0);
    char expected[16];
    snprintf(expected, sizeof expected, "%zu", files.gl_pathc);
    globfree(&files);
    ck_assert_str_eq(
        it_query_value(pg, "SELECT count(DISTINCT name) FROM spark.schema_migrations", v, sizeof v),
        expected);
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT to_regprocedure('spark.state_at(text,bigint)') "
                                    "IS NOT NULL",
                                    v, sizeof v),
                     "t");
    char *before = schema_fingerprint(pg);

    ck_assert_int_eq(it_sparkd(db, args, &out, &err), 0);
    ck_assert_msg(strstr(out, "0 migrations applied now"), "stdout: %s", out);
    ck_assert_ptr_null(strstr(out, "applied 0001"));
    char *after = schema_fingerprint(pg);
    ck_assert_str_eq(before, after);
    free(out), free(err), free(before), free(after);
    PQfinish(pg);
}
END_TEST

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert(in && out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* A migrations directory with the project's migrations plus `extra`. */
static const char *migrations_with(const char *extra_name, const char *extra_text) {
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/spark-migrations-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char from[1200], to[1200];
    snprintf(from, sizeof from, "%s/migrations/0001_schema.sql", it_source_dir);
    snprintf(to, sizeof to, "%s/0001_schema.sql", dir);
    copy_file(from, to);
    if (extra_name && extra_text) {
        snprintf(to, sizeof to, "%s/%s", dir, extra_name);
        write_file(to, extra_text);
    }
    return dir;
}

START_TEST(a_broken_migration_leaves_the_schema_unchanged) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    char *before = schema_fingerprint(pg);

    const char *dir =
        migrations_with("0002_broken.sql", "CREATE TABLE spark.half_done (x int);\n"
                                           "ALTER TABLE spark.components ADD COLUMN extra int;\n"
                                           "SELECT no_such_column FROM spark.components;\n");
    char flag[300];
    snprintf(flag, sizeof flag, "--migrations=%s", dir);
    const char *args[] = {"migrate", flag, NULL};
    char *out, *err;
    ck_assert_int_eq(it_sparkd(db, args, &out, &err), 1);
    ck_assert_msg(strstr(err, "0002_broken.sql") && strstr(err, "no_such_column") &&
                      strstr(err, "line 3"),
                  "stderr: %s", err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "one line expected: %s", err);
    char *after = schema_fingerprint(pg);
    ck_assert_str_eq(before, after);
    char v[16];
    ck_assert_str_eq(
        it_query_value(pg, "SELECT to_regclass('spark.half_done') IS NULL", v, sizeof v), "t");
    free(out), free(err), free(before), free(after);
    PQfinish(pg);
    remove_dir(dir);
}
END_TEST

START_TEST(an_edited_migration_is_refused) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    const char *dir = migrations_with(NULL, NULL);
    char path[400];
    snprintf(path, sizeof path, "%s/0001_schema.sql", dir);
    FILE *f = fopen(path, "a");
    fputs("\n-- edited after being applied\n", f);
    fclose(f);
    char flag[300];
    snprintf(flag, sizeof flag, "--migrations=%s", dir);
    const char *args[] = {"migrate", flag, NULL};
    char *out, *err;
    ck_assert_int_eq(it_sparkd(db, args, &out, &err), 1);
    ck_assert_msg(strstr(err, "0001_schema.sql") && strstr(err, "changed after it was applied"),
                  "stderr: %s", err);
    free(out), free(err);
    remove_dir(dir);
}
END_TEST

START_TEST(bad_names_and_unreachable_databases_are_clear_errors) {
    char *out, *err;
    const char *dir = migrations_with("2_no description.sql", "SELECT 1;");
    char flag[300];
    snprintf(flag, sizeof flag, "--migrations=%s", dir);
    char name[64];
    const char *db = it_create_database(name);
    const char *args[] = {"migrate", flag, NULL};
    ck_assert_int_eq(it_sparkd(db, args, &out, &err), 1);
    ck_assert_msg(strstr(err, "NNNN_description.sql"), "stderr: %s", err);
    free(out), free(err);
    remove_dir(dir);

    const char *args2[] = {"migrate", NULL};
    ck_assert_int_eq(it_sparkd("host=/nonexistent-socket-dir dbname=x", args2, &out, &err), 1);
    ck_assert_msg(strstr(err, "cannot connect"), "stderr: %s", err);
    free(out), free(err);

    ck_assert_int_eq(it_sparkd(NULL, args2, &out, &err), 2);
    ck_assert_msg(strncmp(err, "sparkd: DATABASE_URL: ", 22) == 0, "stderr: %s", err);
    free(out), free(err);
}
END_TEST

/* Waits for one notification on the connection, up to `ms`. */
static PGnotify *next_notify(PGconn *pg, int ms) {
    long long deadline = it_now_ms() + ms;
    for (;;) {
        PQconsumeInput(pg);
        PGnotify *n = PQnotifies(pg);
        if (n || it_now_ms() > deadline) return n;
        struct timeval tv = {0, 50000};
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(PQsocket(pg), &fds);
        select(PQsocket(pg) + 1, &fds, NULL, NULL, &tv);
    }
}

static void expect_notify(PGconn *pg, const char *payload) {
    PGnotify *n = next_notify(pg, 2000);
    ck_assert_msg(n != NULL, "no notification, expected %s", payload);
    ck_assert_str_eq(n->relname, "spark");
    ck_assert_str_eq(n->extra, payload);
    PQfreemem(n);
}

START_TEST(writes_are_versioned_recorded_and_announced) {
    char name[64], v[256];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db), *listener = it_connect(db);
    PQclear(it_exec(listener, "LISTEN spark"));

    PQclear(it_exec(pg, "INSERT INTO spark.components (id, state) VALUES ('todo:a', '{\"n\":1}')"));
    expect_notify(listener, "c|1|todo:a");
    PQclear(it_exec(pg, "BEGIN; SELECT set_config('spark.event', 'add_todo', true),"
                        " set_config('spark.actor', 'alice', true);"
                        "UPDATE spark.components SET state = '{\"n\":2}' WHERE id = 'todo:a';"
                        "COMMIT"));
    expect_notify(listener, "c|2|todo:a");
    /* A write that changes nothing bumps nothing and tells no one. */
    PQclear(it_exec(pg, "UPDATE spark.components SET state = '{\"n\":2}' WHERE id = 'todo:a'"));
    PQclear(it_exec(pg, "BEGIN; UPDATE spark.components SET state = '{\"n\":9}'"
                        " WHERE id = 'todo:a'; ROLLBACK"));
    PQclear(it_exec(pg, "INSERT INTO spark.messages (room, payload) VALUES ('lobby', '{}')"));
    PGnotify *n = next_notify(listener, 2000);
    ck_assert_ptr_nonnull(n);
    ck_assert_msg(strncmp(n->extra, "m|", 2) == 0 && strstr(n->extra, "|lobby"), "%s", n->extra);
    PQfreemem(n);

    ck_assert_str_eq(
        it_query_value(pg, "SELECT version FROM spark.components WHERE id='todo:a'", v, sizeof v),
        "2");
    ck_assert_str_eq(it_query_value(pg,
                                    "SELECT string_agg(version || ':' || event || ':' || "
                                    "coalesce(actor, '-'), ',' ORDER BY version) "
                                    "FROM spark.events WHERE component_id = 'todo:a'",
                                    v, sizeof v),
                     "1:sql.insert:postgres,2:add_todo:alice");
    ck_assert_str_eq(it_query_value(pg, "SELECT spark.state_at('todo:a', 1)::text", v, sizeof v),
                     "{\"n\": 1}");
    /* History is append-only. */
    PGresult *r = PQexec(pg, "DELETE FROM spark.events");
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    PQfinish(pg);
    PQfinish(listener);
}
END_TEST

static Suite *migrate_suite(void) {
    Suite *s = suite_create("migrate");
    TCase *tc = tcase_create("migrate");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, migrates_an_empty_database_then_changes_nothing);
    tcase_add_test(tc, a_broken_migration_leaves_the_schema_unchanged);
    tcase_add_test(tc, an_edited_migration_is_refused);
    tcase_add_test(tc, bad_names_and_unreachable_databases_are_clear_errors);
    tcase_add_test(tc, writes_are_versioned_recorded_and_announced);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return it_run_suite(migrate_suite()); }
