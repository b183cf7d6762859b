/*
 * migrate.c - the schema migration runner (see migrate.h for the rules).
 *
 * Concurrent runs (two instances started together) serialize on a
 * session-level advisory lock, so each file is applied exactly once.
 */
#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_KEY   "7350626561726b" /* any constant shared by all runs */
#define MAX_SQL_FILE_BYTES (16 * 1024 * 1024)

typedef struct {
    char *name;  /* file name, e.g. 0001_schema.sql */
    long number; /* its numeric prefix */
    char *text;  /* contents */
    char checksum[crypto_hash_sha256_BYTES * 2 + 1];
} sql_file;

typedef struct {
    sql_file *files;
    size_t count;
} sql_list;

static void list_free(sql_list *l) {
    for (size_t i = 0; i < l->count; i++) {
        free(l->files[i].name);
        free(l->files[i].text);
    }
    free(l->files);
    l->files = NULL;
    l->count = 0;
}

static char *read_file(const char *path, char *why, size_t whylen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "%s", strerror(errno));
        return NULL;
    }
    char *text = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || size > MAX_SQL_FILE_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(why, whylen, "unreadable or larger than %d bytes", MAX_SQL_FILE_BYTES);
    } else if (!(text = malloc((size_t)size + 1))) {
        snprintf(why, whylen, "out of memory");
    } else if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        snprintf(why, whylen, "read error");
        free(text);
        text = NULL;
    } else {
        text[size] = '\0';
        if (strlen(text) != (size_t)size) {
            snprintf(why, whylen, "contains a NUL byte");
            free(text);
            text = NULL;
        }
    }
    fclose(f);
    return text;
}

static void hex_sha256(const char *text, char out[crypto_hash_sha256_BYTES * 2 + 1]) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)text, strlen(text));
    sodium_bin2hex(out, crypto_hash_sha256_BYTES * 2 + 1, digest, sizeof digest);
}

/* A migration's name is digits, '_', then [A-Za-z0-9_-]+, then ".sql". */
static bool migration_name(const char *name, long *number) {
    const char *p = name;
    if (!isdigit((unsigned char)*p)) return false;
    char *end;
    *number = strtol(p, &end, 10);
    if (*end != '_' || end - p > 9) return false;
    for (p = end + 1; *p && *p != '.'; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') return false;
    return p > end + 1 && strcmp(p, ".sql") == 0;
}

static int by_number_then_name(const void *a, const void *b) {
    const sql_file *x = a, *y = b;
    if (x->number != y->number) return x->number < y->number ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Reads every *.sql file of `dir`. For migrations (`numbered`), names must
 * follow the pattern and numbers must be unique. */
static int list_dir(const char *dir, bool numbered, sql_list *out) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "sparkd: migrate: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".sql") != 0) continue;
        long number = 0;
        if (numbered && !migration_name(e->d_name, &number)) {
            fprintf(stderr, "sparkd: migrate: %s/%s: a migration is named NNNN_description.sql\n",
                    dir, e->d_name);
            rc = -1;
            break;
        }
        sql_file *grown = realloc(out->files, (out->count + 1) * sizeof *grown);
        if (!grown) {
            rc = -1;
            break;
        }
        out->files = grown;
        sql_file *f = &out->files[out->count];
        memset(f, 0, sizeof *f);
        f->number = number;
        f->name = strdup(e->d_name);
        char path[4096], why[128];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (f->name) out->count++;
        if (!f->name || !(f->text = read_file(path, why, sizeof why))) {
            fprintf(stderr, "sparkd: migrate: %s: %s\n", path, f->name ? why : "out of memory");
            rc = -1;
            break;
        }
        hex_sha256(f->text, f->checksum);
    }
    closedir(d);
    if (rc == 0) qsort(out->files, out->count, sizeof *out->files, by_number_then_name);
    for (size_t i = 1; rc == 0 && numbered && i < out->count; i++)
        if (out->files[i].number == out->files[i - 1].number) {
            fprintf(stderr, "sparkd: migrate: %s and %s share the number %ld\n",
                    out->files[i - 1].name, out->files[i].name, out->files[i].number);
            rc = -1;
        }
    return rc;
}

/* Runs `sql` and reports failure as one line naming `what`. The error's
 * position, when PostgreSQL gives one, becomes a line number in the file. */
static int exec_ok(PGconn *pg, const char *sql, const char *what, const char *file_text) {
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
        PQclear(r);
        return 0;
    }
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
    if (!msg) msg = PQerrorMessage(pg);
    long line = 0;
    if (pos && file_text) {
        long offset = strtol(pos, NULL, 10); /* 1-based, in characters */
        line = 1;
        for (const unsigned char *p = (const unsigned char *)file_text; *p && offset > 1; p++) {
            if ((*p & 0xC0) != 0x80) offset--; /* count UTF-8 characters */
            if (*p == '\n') line++;
        }
    }
    if (line)
        fprintf(stderr, "sparkd: migrate: %s failed at line %ld: %.*s\n", what, line,
                (int)strcspn(msg, "\n"), msg);
    else
        fprintf(stderr, "sparkd: migrate: %s failed: %.*s\n", what, (int)strcspn(msg, "\n"), msg);
    PQclear(r);
    return -1;
}

/* Applies one file in its own transaction, with `record` (a parameterized
 * INSERT) when it is a migration. */
static int apply_file(PGconn *pg, const char *dir, const sql_file *f, bool record) {
    char what[4200];
    snprintf(what, sizeof what, "%s/%s", dir, f->name);
    if (exec_ok(pg, "BEGIN", what, NULL)) return -1;
    if (exec_ok(pg, f->text, what, f->text)) goto rollback;
    if (record) {
        const char *params[] = {f->name, f->checksum};
        PGresult *r = PQexecParams(pg,
                                   "INSERT INTO spark.schema_migrations (name, checksum) "
                                   "VALUES ($1, $2)",
                                   2, NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            fprintf(stderr, "sparkd: migrate: %s: cannot record it: %s", what, PQerrorMessage(pg));
            goto rollback;
        }
    }
    if (exec_ok(pg, "COMMIT", what, NULL)) goto rollback;
    return 0;
rollback:
    PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}

static const char *applied_checksum(PGresult *applied, const char *name) {
    for (int i = 0; i < PQntuples(applied); i++)
        if (strcmp(PQgetvalue(applied, i, 0), name) == 0) return PQgetvalue(applied, i, 1);
    return NULL;
}

static int run(PGconn *pg, const spark_config *cfg) {
    static const char setup[] = "SET client_min_messages = warning;"
                                "CREATE SCHEMA IF NOT EXISTS spark;"
                                "CREATE TABLE IF NOT EXISTS spark.schema_migrations ("
                                "  name text PRIMARY KEY,"
                                "  checksum text NOT NULL,"
                                "  applied_at timestamptz NOT NULL DEFAULT now());";
    if (exec_ok(pg, "SELECT pg_advisory_lock(x'" MIGRATE_LOCK_KEY "'::bigint)", "locking", NULL) ||
        exec_ok(pg, setup, "creating spark.schema_migrations", NULL))
        return -1;

    sql_list migrations = {0}, functions = {0};
    PGresult *applied = NULL;
    int rc = -1, newly = 0;
    if (list_dir(cfg->migrations_dir, true, &migrations) ||
        list_dir(cfg->sql_dir, false, &functions))
        goto done;
    applied = PQexec(pg, "SELECT name, checksum FROM spark.schema_migrations");
    if (PQresultStatus(applied) != PGRES_TUPLES_OK) {
        fprintf(stderr, "sparkd: migrate: cannot read spark.schema_migrations: %s",
                PQerrorMessage(pg));
        goto done;
    }
    for (size_t i = 0; i < migrations.count; i++) {
        const sql_file *f = &migrations.files[i];
        const char *sum = applied_checksum(applied, f->name);
        if (sum && strcmp(sum, f->checksum) != 0) {
            fprintf(stderr,
                    "sparkd: migrate: %s/%s changed after it was applied; migrations are "
                    "forward-only: restore it and add a new file\n",
                    cfg->migrations_dir, f->name);
            goto done;
        }
        if (sum) continue;
        if (apply_file(pg, cfg->migrations_dir, f, true)) goto done;
        printf("applied %s\n", f->name);
        newly++;
    }
    for (size_t i = 0; i < functions.count; i++)
        if (apply_file(pg, cfg->sql_dir, &functions.files[i], false)) goto done;
    printf("schema up to date: %d migration%s applied now, %zu in all; %zu sql file%s "
           "re-applied\n",
           newly, newly == 1 ? "" : "s", migrations.count, functions.count,
           functions.count == 1 ? "" : "s");
    rc = 0;
done:
    PQclear(applied);
    list_free(&migrations);
    list_free(&functions);
    return rc;
}

int spark_migrate(const spark_config *cfg) {
    const char *keys[] = {"fallback_application_name", "dbname", NULL};
    const char *values[] = {"sparkd-migrate", cfg->database_url, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "sparkd: migrate: cannot connect to PostgreSQL: %.*s\n",
                (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
        PQfinish(pg);
        return 1;
    }
    int rc = run(pg, cfg);
    PQfinish(pg);
    return rc ? 1 : 0;
}
