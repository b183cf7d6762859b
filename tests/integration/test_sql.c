/*
 * test_sql.c - Spark from SQL: the walk-through of docs/sql.md run as
 * written in psql, every inspection function and view on a real history,
 * revert, fork, replay and retention, append-only history, presence
 * batches and crowded rooms' counts, and SQL writes
 * (broadcast, notify_user, INSERT) reaching clients of two running sparkd
 * instances, with rolled-back ones reaching no one.
 */
#include "harness.h"
#include "wsclient.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECV_MS 5000

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

/* The first value of `sql` as a malloc'd string ("<null>" for NULL). */
static char *value(PGconn *pg, const char *sql) {
    PGresult *r = it_exec(pg, sql);
    ck_assert_msg(PQntuples(r) == 1, "%s: %d rows", sql, PQntuples(r));
    char *v = strdup(PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

#define ck_value(pg, sql, expected)                                                                \
    do {                                                                                           \
        char *got_ = value(pg, sql);                                                               \
        ck_assert_msg(strcmp(got_, expected) == 0, "%s\n  got:      %s\n  expected: %s", sql,      \
                      got_, expected);                                                             \
        free(got_);                                                                                \
    } while (0)

/* Runs `sql` and asserts it fails with SQLSTATE `state`. */
static void expect_error(PGconn *pg, const char *sql, const char *state) {
    PGresult *r = PQexec(pg, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "%s: succeeded, expected %s", sql, state);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    ck_assert_msg(got && strcmp(got, state) == 0, "%s: SQLSTATE %s, expected %s (%s)", sql,
                  got ? got : "?", state, PQerrorMessage(pg));
    PQclear(r);
}

/* Runs psql on `db` with `script` on standard input, stderr merged into
 * stdout, as an operator's terminal shows it. Returns the output (kept out
 * of line: inlined, GCC's dangling-pointer check mistakes it for a local). */
__attribute__((noinline)) static char *psql_script(const char *db, const char *script) {
    char path[] = "/tmp/spark-sql-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(script);
    ck_assert_int_eq(write(fd, script, len), (ssize_t)len);
    close(fd);
    const char *argv[] = {
        "/bin/sh", "-c", "exec psql -X -v SHOW_CONTEXT=never \"$0\" < \"$1\" 2>&1", db, path, NULL};
    const char *env[] = {"LC_ALL=C", "PGTZ=UTC", NULL};
    char *out = NULL;
    int rc = it_run(argv, env, &out, NULL);
    unlink(path);
    ck_assert_msg(rc == 0, "psql exited with %d: %s", rc, out ? out : "");
    return out;
}

/* Runs psql -c for each of `commands` in one session, stopping at an error. */
static void psql_commands(const char *db, const char *const commands[]) {
    const char *argv[32] = {"/bin/sh", "-c", "exec psql -X -q -v ON_ERROR_STOP=1 \"$@\"", "sh", db};
    int n = 5;
    for (int i = 0; commands[i] && n < 29; i++) {
        argv[n++] = "-c";
        argv[n++] = commands[i];
    }
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = it_run(argv, NULL, &out, &err);
    ck_assert_msg(rc == 0, "psql exited with %d: %s%s", rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
}

/* ------------------------------------------------------------------------
 * docs/sql.md, run as written
 * ------------------------------------------------------------------------ */

typedef struct {
    int line;       /* of the opening fence */
    char *sql;      /* the block */
    char *expected; /* the text block right after it, or NULL */
    size_t actual;  /* offset of its output in psql's */
} doc_block;

/* Trims trailing spaces of every line and blank lines at both ends. */
static char *normalize(const char *text, size_t len) {
    char *out = malloc(len + 1);
    ck_assert_ptr_nonnull(out);
    size_t n = 0;
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        const char *last = stop;
        while (last > p && (last[-1] == ' ' || last[-1] == '\r'))
            last--;
        if (!(n == 0 && last == p)) { /* no leading blank lines */
            memcpy(out + n, p, (size_t)(last - p));
            n += (size_t)(last - p);
            out[n++] = '\n';
        }
        p = nl ? nl + 1 : end;
    }
    while (n > 0 && out[n - 1] == '\n')
        n--;
    out[n] = '\0';
    return out;
}

/* Splits markdown into its ```sql blocks, each with the ```text block that
 * follows it with nothing but blank lines between. */
static int parse_doc(char *doc, doc_block *blocks, int cap) {
    int count = 0, line = 1;
    bool last_was_sql = false;
    char *p = doc;
    while (*p) {
        char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len >= 3 && strncmp(p, "```", 3) == 0) {
            char lang[16] = "";
            snprintf(lang, sizeof lang, "%.*s", (int)(len - 3 < 15 ? len - 3 : 15), p + 3);
            int open_line = line;
            char *body = eol ? eol + 1 : p + len;
            char *q = body;
            line++;
            while (*q && strncmp(q, "```", 3) != 0) {
                char *nl = strchr(q, '\n');
                ck_assert_msg(nl, "docs/sql.md:%d: unterminated block", open_line);
                q = nl + 1;
                line++;
            }
            ck_assert_msg(*q, "docs/sql.md:%d: unterminated block", open_line);
            size_t body_len = (size_t)(q - body);
            if (strcmp(lang, "sql") == 0) {
                ck_assert_int_lt(count, cap);
                blocks[count].line = open_line;
                blocks[count].sql = strndup(body, body_len);
                blocks[count].expected = NULL;
                blocks[count].actual = 0;
                count++;
            } else if (strcmp(lang, "text") == 0 && last_was_sql) {
                blocks[count - 1].expected = normalize(body, body_len);
            }
            last_was_sql = strcmp(lang, "sql") == 0;
            char *close_eol = strchr(q, '\n');
            p = close_eol ? close_eol + 1 : q + strlen(q);
            line++;
            continue;
        }
        bool blank = true;
        for (size_t i = 0; i < len; i++)
            if (p[i] != ' ' && p[i] != '\t') blank = false;
        if (!blank) last_was_sql = false;
        p = eol ? eol + 1 : p + len;
        line++;
    }
    return count;
}

START_TEST(docs_walkthrough_runs_as_written) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    char *doc = read_text(SOURCE_DIR "/docs/sql.md");
    enum { MAX_BLOCKS = 128 };
    static doc_block blocks[MAX_BLOCKS];
    int count = parse_doc(doc, blocks, MAX_BLOCKS);
    int checked = 0;
    for (int i = 0; i < count; i++)
        checked += blocks[i].expected != NULL;
    /* The guide is a walk-through, not a stub: most blocks show output. */
    ck_assert_msg(count >= 20 && checked >= 15, "docs/sql.md: %d sql blocks, %d with output", count,
                  checked);

    /* One psql session runs every block in order, a marker before each. */
    size_t cap = 64;
    for (int i = 0; i < count; i++)
        cap += strlen(blocks[i].sql) + 48;
    char *script = malloc(cap);
    ck_assert_ptr_nonnull(script);
    size_t n = 0;
    for (int i = 0; i < count; i++)
        n += (size_t)snprintf(script + n, cap - n, "\\echo @@block %d@@\n%s\n", i, blocks[i].sql);
    char *out = psql_script(db, script);

    for (int i = 0; i < count; i++) {
        char marker[32];
        snprintf(marker, sizeof marker, "@@block %d@@\n", i);
        const char *at = strstr(out, marker);
        ck_assert_msg(at, "docs/sql.md:%d: psql never reached this block:\n%s", blocks[i].line,
                      out);
        blocks[i].actual = (size_t)(at - out) + strlen(marker);
    }
    for (int i = 0; i < count; i++) {
        const char *start = out + blocks[i].actual;
        const char *end = i + 1 < count ? strstr(start, "@@block ") : NULL;
        size_t len = end ? (size_t)(end - start) : strlen(start);
        char *actual = normalize(start, len);
        if (blocks[i].expected)
            ck_assert_msg(strcmp(actual, blocks[i].expected) == 0,
                          "docs/sql.md:%d: psql printed\n%s\n\nbut the guide shows\n%s\n",
                          blocks[i].line, actual, blocks[i].expected);
        else
            ck_assert_msg(!strstr(actual, "ERROR:") && !strstr(actual, "invalid command"),
                          "docs/sql.md:%d: the block failed:\n%s", blocks[i].line, actual);
        free(actual);
    }
    for (int i = 0; i < count; i++) {
        free(blocks[i].sql);
        free(blocks[i].expected);
    }
    free(script);
    free(out);
    free(doc);
}
END_TEST

/* ------------------------------------------------------------------------
 * Functions and views on a history
 * ------------------------------------------------------------------------ */

/* counter:h, versions 1..5 and a delete at 6, each in its own transaction. */
static void build_history(PGconn *pg) {
    PQclear(
        it_exec(pg, "SELECT spark.set_state('counter:h', '{\"count\": 0}', 'create', 'alice')"));
    PQclear(it_exec(pg, "SELECT spark.set_state('counter:h', '{\"count\": 1}', 'increment', "
                        "'alice', '{\"by\": 1}')"));
    PQclear(it_exec(pg, "BEGIN; SELECT set_config('spark.event', 'increment', true),"
                        " set_config('spark.actor', 'bob', true),"
                        " set_config('spark.instance', 'sparkd-9', true);"
                        "UPDATE spark.components SET state = '{\"count\": 2}'"
                        " WHERE id = 'counter:h'; COMMIT"));
    PQclear(it_exec(pg, "UPDATE spark.components SET state = '{\"count\": 3, \"step\": 1}'"
                        " WHERE id = 'counter:h'"));
    PQclear(it_exec(pg, "SELECT spark.set_state('counter:h', '{\"count\": 4, \"step\": 1}', "
                        "'increment', 'carol')"));
    PQclear(it_exec(pg, "DELETE FROM spark.components WHERE id = 'counter:h'"));
}

START_TEST(inspection_on_a_history) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    build_history(pg);

    /* The view and spark.history agree, with every column recorded. */
    ck_value(pg,
             "SELECT string_agg(concat_ws('|', version, event, data, actor, instance, state), ' ; '"
             " ORDER BY version) FROM spark.component_history WHERE component_id = 'counter:h'",
             "1|create|alice|{\"count\": 0} ; 2|increment|{\"by\": 1}|alice|{\"count\": 1} ; "
             "3|increment|bob|sparkd-9|{\"count\": 2} ; 4|sql.update|postgres|{\"step\": 1, "
             "\"count\": 3} ; 5|increment|carol|{\"step\": 1, \"count\": 4} ; "
             "6|sql.delete|postgres");
    ck_value(
        pg,
        "SELECT string_agg(version::text, ',' ORDER BY version) FROM spark.history('counter:h', "
        "2, 4)",
        "2,3,4");
    ck_value(pg, "SELECT count(*) FROM spark.history('counter:h', 5)", "2");
    ck_value(pg,
             "SELECT bool_and(h.seq = e.seq) FROM spark.component_history h JOIN spark.events "
             "e USING (component_id, version)",
             "t");

    /* State at a version; at a deletion or an unknown version, null. */
    ck_value(pg, "SELECT spark.state_at('counter:h', 3)", "{\"count\": 2}");
    ck_value(pg, "SELECT spark.state_at('counter:h', 6)", "<null>");
    ck_value(pg, "SELECT spark.state_at('counter:h', 7)", "<null>");
    ck_value(pg, "SELECT spark.state_at('counter:nope', 1)", "<null>");

    /* State at a time: each version's own time gives that version. */
    ck_value(pg,
             "SELECT bool_and(spark.version_at('counter:h', e.at) = e.version"
             " AND spark.state_at_time('counter:h', e.at) IS NOT DISTINCT FROM e.state)"
             " FROM spark.component_history e WHERE e.component_id = 'counter:h'",
             "t");
    ck_value(pg, "SELECT spark.version_at('counter:h', now() - interval '1 day')", "<null>");
    ck_value(pg, "SELECT spark.state_at_time('counter:h', now() + interval '1 day')", "<null>");

    /* Replay: every step, its state before and after, and the patch. */
    ck_value(pg,
             "SELECT string_agg(concat_ws('|', version, event, actor, state_before, diff), ' ; '"
             " ORDER BY version) FROM spark.replay('counter:h', 3, 6)",
             "3|increment|bob|{\"count\": 1}|[{\"op\": \"replace\", \"path\": \"/count\", "
             "\"value\": 2}] ; 4|sql.update|postgres|{\"count\": 2}|[{\"op\": \"replace\", "
             "\"path\": \"/count\", \"value\": 3}, {\"op\": \"add\", \"path\": \"/step\", "
             "\"value\": 1}] ; 5|increment|carol|{\"step\": 1, \"count\": 3}|[{\"op\": "
             "\"replace\", \"path\": \"/count\", \"value\": 4}] ; 6|sql.delete|postgres|{\"step\": "
             "1, \"count\": 4}|[{\"op\": \"remove\", \"path\": \"\"}]");
    ck_value(pg, "SELECT diff FROM spark.replay('counter:h', 1, 1)",
             "[{\"op\": \"add\", \"path\": \"\", \"value\": {\"count\": 0}}]");
    ck_value(pg, "SELECT count(*) FROM spark.replay('counter:h')", "6");
    ck_value(pg, "SELECT spark.diff('counter:h', 1, 5)",
             "[{\"op\": \"replace\", \"path\": \"/count\", \"value\": 4}, {\"op\": \"add\", "
             "\"path\": \"/step\", \"value\": 1}]");
    ck_value(pg, "SELECT spark.diff('counter:h', 3, 3)", "[]");
    PQfinish(pg);
}
END_TEST

/* A JSON Patch applier written independently of spark.jsonb_diff. */
static const char apply_patch_sql[] =
    "CREATE FUNCTION pg_temp.apply_patch(doc jsonb, ops jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$"
    " DECLARE op jsonb; p text[]; parent jsonb;"
    " BEGIN"
    "  FOR op IN SELECT o FROM jsonb_array_elements(ops) AS o LOOP"
    "   IF op->>'path' = '' THEN"
    "    doc := CASE op->>'op' WHEN 'remove' THEN NULL ELSE op->'value' END; CONTINUE;"
    "   END IF;"
    "   SELECT array_agg(replace(replace(t, '~1', '/'), '~0', '~') ORDER BY k) INTO p"
    "     FROM unnest(string_to_array(substr(op->>'path', 2), '/')) WITH ORDINALITY AS u(t, k);"
    "   parent := doc #> p[1:cardinality(p) - 1];"
    "   IF op->>'op' = 'remove' THEN"
    "    IF doc #> p IS NULL THEN RAISE EXCEPTION 'remove of missing %', op; END IF;"
    "    doc := doc #- p;"
    "   ELSIF op->>'op' = 'replace' THEN"
    "    IF doc #> p IS NULL THEN RAISE EXCEPTION 'replace of missing %', op; END IF;"
    "    doc := jsonb_set(doc, p, op->'value', false);"
    "   ELSIF jsonb_typeof(parent) = 'array' THEN"
    "    IF p[cardinality(p)]::int > jsonb_array_length(parent) THEN"
    "     RAISE EXCEPTION 'add past the end %', op; END IF;"
    "    doc := jsonb_insert(doc, p, op->'value');"
    "   ELSE"
    "    IF doc #> p IS NOT NULL THEN RAISE EXCEPTION 'add of existing %', op; END IF;"
    "    doc := jsonb_set(doc, p, op->'value', true);"
    "   END IF;"
    "  END LOOP;"
    "  RETURN doc;"
    " END $$";

/* A random JSON value of bounded depth, keys from a small set (including
 * ones that need JSON Pointer escapes) so that pairs overlap. */
static void random_json(char *out, size_t cap, size_t *n, int depth, unsigned *seed) {
    static const char *const keys[] = {"a", "b", "c", "a/b", "x~y", "items"};
    static const char *const atoms[] = {"1", "2", "\"s\"", "\"t\"", "true", "null", "{}", "[]"};
    int kind = depth > 2 ? 2 : (int)(rand_r(seed) % 3);
    if (kind == 0) {
        *n += (size_t)snprintf(out + *n, cap - *n, "{");
        int count = (int)(rand_r(seed) % 4);
        unsigned used = 0;
        for (int i = 0; i < count; i++) {
            unsigned k = (unsigned)rand_r(seed) % 6;
            if (used & (1u << k)) continue;
            used |= 1u << k;
            *n += (size_t)snprintf(out + *n, cap - *n, "%s\"%s\":", used == (1u << k) ? "" : ",",
                                   keys[k]);
            random_json(out, cap, n, depth + 1, seed);
        }
        *n += (size_t)snprintf(out + *n, cap - *n, "}");
    } else if (kind == 1) {
        *n += (size_t)snprintf(out + *n, cap - *n, "[");
        int count = (int)(rand_r(seed) % 6);
        for (int i = 0; i < count; i++) {
            if (i) *n += (size_t)snprintf(out + *n, cap - *n, ",");
            random_json(out, cap, n, depth + 1, seed);
        }
        *n += (size_t)snprintf(out + *n, cap - *n, "]");
    } else {
        *n += (size_t)snprintf(out + *n, cap - *n, "%s", atoms[rand_r(seed) % 8]);
    }
}

START_TEST(jsonb_diff_patches_apply_exactly) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, apply_patch_sql));
    /* Hand-picked cases: one removal in a list is one op; escapes; roots. */
    ck_value(pg, "SELECT spark.jsonb_diff('{\"l\":[1,2,3,4,5]}', '{\"l\":[1,2,4,5]}')",
             "[{\"op\": \"remove\", \"path\": \"/l/2\"}]");
    ck_value(pg, "SELECT spark.jsonb_diff('{\"l\":[1,2]}', '{\"l\":[0,1,2]}')",
             "[{\"op\": \"add\", \"path\": \"/l/0\", \"value\": 0}]");
    ck_value(pg, "SELECT spark.jsonb_diff('{\"a/b\":1,\"x~y\":2}', '{\"a/b\":2}')",
             "[{\"op\": \"replace\", \"path\": \"/a~1b\", \"value\": 2}, {\"op\": \"remove\", "
             "\"path\": \"/x~0y\"}]");
    ck_value(pg, "SELECT spark.jsonb_diff('[1]', '{\"a\":1}')",
             "[{\"op\": \"replace\", \"path\": \"\", \"value\": {\"a\": 1}}]");
    ck_value(pg, "SELECT spark.jsonb_diff(NULL, NULL)", "[]");

    /* Random pairs: applying the patch to the old value gives the new. */
    PGresult *stmt = PQprepare(pg, "check",
                               "SELECT pg_temp.apply_patch($1::jsonb, spark.jsonb_diff($1::jsonb, "
                               "$2::jsonb)) IS NOT DISTINCT FROM $2::jsonb, "
                               "spark.jsonb_diff($1::jsonb, $2::jsonb)::text",
                               2, NULL);
    ck_assert_int_eq(PQresultStatus(stmt), PGRES_COMMAND_OK);
    PQclear(stmt);
    unsigned seed = 7;
    for (int i = 0; i < 400; i++) {
        char a[4096], b[4096];
        size_t na = 0, nb = 0;
        random_json(a, sizeof a, &na, 0, &seed);
        random_json(b, sizeof b, &nb, 0, &seed);
        const char *params[] = {a, b};
        PGresult *r = PQexecPrepared(pg, "check", 2, params, NULL, NULL, 0);
        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s -> %s: %s", a, b,
                      PQerrorMessage(pg));
        ck_assert_msg(strcmp(PQgetvalue(r, 0, 0), "t") == 0, "%s -> %s: patch %s", a, b,
                      PQgetvalue(r, 0, 1));
        PQclear(r);
    }
    PQfinish(pg);
}
END_TEST

/* sparkd's group write: each element stands alone (applied, conflict with
 * the current state, or its own error), and the rest commit. */
START_TEST(apply_batch_isolates_each_component) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    ck_value(pg, "SELECT spark.set_state('counter:b', '{\"count\": 5}')", "1");
    ck_value(pg,
             "SELECT string_agg(concat_ws('|', i, applied, version, state, error IS NOT NULL),"
             " ' ; ' ORDER BY i) FROM spark.apply_batch('["
             "{\"id\": \"counter:z\", \"v\": 0, \"events\": ["
             "  {\"e\": \"increment\", \"d\": {}, \"a\": \"u1\", \"s\": {\"count\": 1}},"
             "  {\"e\": \"increment\", \"d\": {}, \"a\": \"u1\", \"s\": {\"count\": 2}}]},"
             "{\"id\": \"Not An Id\", \"v\": 0, \"events\": ["
             "  {\"e\": \"x\", \"d\": {}, \"a\": \"u1\", \"s\": {}}]},"
             "{\"id\": \"counter:b\", \"v\": 7, \"events\": ["
             "  {\"e\": \"increment\", \"d\": {}, \"a\": \"u2\", \"s\": {\"count\": 6}}]},"
             "{\"id\": \"counter:a\", \"v\": 0, \"events\": ["
             "  {\"e\": \"increment\", \"d\": {}, \"a\": \"u2\", \"s\": {\"count\": 1}}]}"
             "]', 'inst')",
             "1|t|2|f ; 2|t ; 3|f|1|{\"count\": 5}|f ; 4|t|1|f" /* concat_ws skips NULLs */);
    ck_value(
        pg,
        "SELECT string_agg(concat_ws('|', component_id, version, event, actor, instance), ' ; '"
        " ORDER BY seq) FROM spark.events WHERE instance = 'inst'",
        "counter:a|1|increment|u2|inst ; counter:z|1|increment|u1|inst ; "
        "counter:z|2|increment|u1|inst");
    /* The labels of the batch do not outlive it. */
    ck_value(pg, "SELECT coalesce(current_setting('spark.instance', true), '')", "");
    PQfinish(pg);
}
END_TEST

/* Two or more events of one component in a batch are written at once
 * (0005: their history rows in one INSERT, one UPDATE, one NOTIFY). The
 * history must be the one their UPDATEs one by one write: the same
 * versions, labels, snapshots or patches, states at every version and
 * event ids, with events that change nothing making no version. doc:x
 * gets batches of 1 to 6 events, doc:y the same events one per call. */
START_TEST(apply_batch_writes_a_batch_as_its_events_one_by_one) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    PGconn *listener = it_connect(db);
    PQclear(it_exec(listener, "LISTEN spark"));
    static const char *const every[] = {"1", "3", "32"};
    for (size_t k = 0; k < sizeof every / sizeof every[0]; k++) {
        char sql[2600];
        snprintf(
            sql, sizeof sql,
            "DO $$ DECLARE"
            "  n int := 0; vx bigint; vy bigint; batch jsonb; ev jsonb; size int; r record;"
            "  st jsonb := jsonb_build_object('items', '[]'::jsonb, 'pad', repeat('p', 300));"
            " BEGIN"
            "  PERFORM setseed(0.%zu), set_config('spark.snapshot_every', '%s', false);"
            "  DELETE FROM spark.components WHERE id IN ('doc:x', 'doc:y');"
            "  PERFORM spark.set_state('doc:x', st), spark.set_state('doc:y', st);"
            "  FOR b IN 1..40 LOOP"
            "    batch := '[]'; size := 1 + floor(random() * 6)::int;"
            "    FOR i IN 1..size LOOP"
            "      n := n + 1;"
            "      IF random() > 0.2 THEN" /* one in five changes nothing */
            "        st := jsonb_set(st, '{items}', (st->'items') || jsonb_build_array("
            "              jsonb_build_object('id', n, 'done', random() > 0.5)));"
            "        IF random() > 0.7 THEN st := st - 'pad' || jsonb_build_object("
            "              'pad', repeat(chr(97 + n %% 26), 300 + n)); END IF;"
            "      END IF;"
            "      batch := batch || jsonb_build_array(jsonb_build_object('e', 'step',"
            "               'd', jsonb_build_object('n', n), 'a', 'u' || n %% 3, 's', st,"
            "               'i', 'r%zu-' || n));"
            "    END LOOP;"
            "    SELECT version INTO vx FROM spark.components WHERE id = 'doc:x';"
            "    SELECT * INTO r FROM spark.apply_batch(jsonb_build_array(jsonb_build_object("
            "      'id', 'doc:x', 'v', vx, 'events', batch)), 'inst');"
            "    IF NOT r.applied THEN RAISE 'batch %% not applied: %%', b, r.error; END IF;"
            "    FOR ev IN SELECT * FROM jsonb_array_elements(batch) LOOP"
            "      SELECT version INTO vy FROM spark.components WHERE id = 'doc:y';"
            "      SELECT * INTO r FROM spark.apply_batch(jsonb_build_array(jsonb_build_object("
            "        'id', 'doc:y', 'v', vy, 'events', jsonb_build_array(ev))), 'inst');"
            "      IF NOT r.applied THEN RAISE 'event not applied: %%', r.error; END IF;"
            "    END LOOP;"
            "  END LOOP;"
            " END $$",
            k + 1, every[k], k);
        PQclear(it_exec(pg, sql));
        /* The same rows, apart from the component's id. Whether a row is a
         * snapshot or a patch may differ: the trigger weighs a patch against
         * the state as stored (compressed once it is large), the batch
         * against the state itself; the state at every version may not. */
        ck_value(pg,
                 "SELECT count(*) FROM ((SELECT version, event, data, actor, instance FROM"
                 " spark.events WHERE component_id = 'doc:x' EXCEPT ALL SELECT version, event,"
                 " data, actor, instance FROM spark.events WHERE component_id = 'doc:y') UNION"
                 " ALL (SELECT version, event, data, actor, instance FROM spark.events WHERE"
                 " component_id = 'doc:y' EXCEPT ALL SELECT version, event, data, actor,"
                 " instance FROM spark.events WHERE component_id = 'doc:x')) d",
                 "0");
        ck_value(pg,
                 "SELECT count(*) FROM spark.events WHERE component_id = 'doc:x' AND event ="
                 " 'step' AND state IS NULL AND (version % current_setting("
                 "'spark.snapshot_every')::int = 0 OR pg_column_size(patch) IS NULL) AND"
                 " version > (SELECT max(version) FROM spark.events WHERE component_id ="
                 " 'doc:x' AND event = 'sql.set_state')",
                 "0");
        ck_value(pg,
                 "SELECT count(*) FROM spark.events e WHERE e.component_id = 'doc:x' AND"
                 " e.event = 'step' AND (spark.state_at('doc:x', e.version) IS DISTINCT FROM"
                 " spark.state_at('doc:y', e.version) OR spark.state_at('doc:x', e.version) IS"
                 " NULL)",
                 "0");
        ck_value(pg,
                 "SELECT (SELECT string_agg(event_id || '=' || version, ',' ORDER BY event_id)"
                 " FROM spark.event_ids WHERE component_id = 'doc:x') = (SELECT"
                 " string_agg(event_id || '=' || version, ',' ORDER BY event_id) FROM"
                 " spark.event_ids WHERE component_id = 'doc:y')",
                 "t");
        /* Most batches went the one-statement way: fewer notifications for
         * doc:x than versions, each version notified for doc:y. */
        int nx = 0, ny = 0;
        long long last_x = 0;
        PQconsumeInput(listener);
        for (PGnotify *note; (note = PQnotifies(listener)); PQfreemem(note)) {
            long long v;
            char id[16];
            if (sscanf(note->extra, "c|%lld|%15s", &v, id) != 2) continue;
            if (!strcmp(id, "doc:x")) nx++, last_x = v;
            if (!strcmp(id, "doc:y")) ny++;
        }
        ck_assert_msg(nx > 0 && nx < ny, "notifications: doc:x %d, doc:y %d", nx, ny);
        char version[24];
        snprintf(version, sizeof version, "%lld", last_x);
        ck_value(pg, "SELECT version FROM spark.components WHERE id = 'doc:x'", version);
    }
    /* The jump is kept only over versions that have their rows: a plain
     * UPDATE asking for one moves by one, and is recorded. */
    ck_value(pg,
             "WITH u AS (UPDATE spark.components SET state = '{\"a\": 1}', version = version + 5"
             " WHERE id = 'doc:x' RETURNING version) SELECT (SELECT version FROM u) -"
             " (SELECT max(version) FROM spark.events WHERE component_id = 'doc:y')",
             "1");
    ck_value(pg,
             "SELECT event FROM spark.events WHERE component_id = 'doc:x' ORDER BY version DESC"
             " LIMIT 1",
             "sql.update");
    PQfinish(listener);
    PQfinish(pg);
}
END_TEST

/* Many tracks in one statement: one diff per room, grouped by user, and a
 * (conn, room) given twice keeps its last meta. */
START_TEST(presence_track_many_posts_one_diff_per_room) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT spark.instance_start('i1')"));
    ck_value(
        pg,
        "SELECT spark.presence_track_many('i1', '["
        "{\"conn\": 1, \"room\": \"r1\", \"user\": \"u1\", \"name\": \"Ann\", \"meta\": {}},"
        "{\"conn\": 2, \"room\": \"r1\", \"user\": \"u1\", \"name\": \"Ann\", \"meta\": {}},"
        "{\"conn\": 3, \"room\": \"r2\", \"user\": \"u2\", \"name\": \"Bo\", \"meta\": {\"a\": 1}},"
        "{\"conn\": 3, \"room\": \"r2\", \"user\": \"u2\", \"name\": \"Bo\", \"meta\": {\"a\": "
        "2}}]')",
        "2");
    ck_value(pg,
             "SELECT string_agg(room || ':' || (SELECT string_agg(k || '=' ||"
             " jsonb_array_length(payload->'joins'->k->'metas'), ',') FROM jsonb_object_keys("
             "payload->'joins') k), ' ' ORDER BY seq) FROM spark.messages WHERE kind = 'presence'",
             "r1:u1=2 r2:u2=1");
    ck_value(pg, "SELECT meta->>'a' FROM spark.presence WHERE conn = 3", "2");
    ck_value(pg, "SELECT count(*) FROM spark.presence WHERE instance = 'i1'", "3");
    PQfinish(pg);
}
END_TEST

/* Above p_most connections a room's presence messages are a count of its
 * users, "crowded" and no list; leaves that take it back to p_most post
 * the whole state. The runtime's keys are outside the metas, so a tracked
 * meta cannot set them. p_most 0 (the default): never crowded. */
START_TEST(presence_in_a_crowded_room_is_a_count) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT spark.instance_start('i1', 2)"));
    const char *steps[] = {
        "SELECT spark.presence_track_many('i1', '["
        "{\"conn\": 1, \"room\": \"r\", \"user\": \"u1\", \"name\": \"Ann\","
        " \"meta\": {\"crowded\": true, \"count\": 99}},"
        "{\"conn\": 2, \"room\": \"r\", \"user\": \"u1\", \"name\": \"Ann\", \"meta\": {}}]', 2)",
        "SELECT spark.presence_track_many('i1', '[{\"conn\": 3, \"room\": \"r\", \"user\": \"u2\","
        " \"name\": \"Bo\", \"meta\": {}}]', 2)",
        "SELECT spark.presence_untrack_many('i1', '{3}', NULL, 2)",
        "SELECT spark.presence_untrack_many('i1', '{2}', NULL, 2)",
        "SELECT spark.presence_track_many('i1', '["
        "{\"conn\": 4, \"room\": \"r0\", \"user\": \"u1\", \"name\": \"Ann\", \"meta\": {}},"
        "{\"conn\": 5, \"room\": \"r0\", \"user\": \"u2\", \"name\": \"Bo\", \"meta\": {}},"
        "{\"conn\": 6, \"room\": \"r0\", \"user\": \"u3\", \"name\": \"Cy\", \"meta\": {}}]')",
    };
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        PQclear(it_exec(pg, steps[i]));
    /* room|type|crowded|count|joins|leaves|state of each message, in order */
    ck_value(pg,
             "SELECT string_agg(concat_ws('|', room, payload->>'type',"
             " coalesce(payload->>'crowded', '-'), payload->>'count',"
             " (SELECT coalesce(string_agg(k, ',' ORDER BY k), '') FROM jsonb_object_keys("
             "   coalesce(payload->'joins', '{}')) k),"
             " (SELECT coalesce(string_agg(k, ',' ORDER BY k), '') FROM jsonb_object_keys("
             "   coalesce(payload->'leaves', '{}')) k),"
             " (SELECT coalesce(string_agg(k, ',' ORDER BY k), '') FROM jsonb_object_keys("
             "   coalesce(payload->'state', '{}')) k)), ' ; ' ORDER BY seq)"
             " FROM spark.messages WHERE kind = 'presence'",
             "r|presence_diff|-|1|u1|| ; r|presence_diff|true|2||| ; "
             "r|presence_state|-|1|||u1 ; r|presence_diff|-|1||u1| ; "
             "r0|presence_diff|-|3|u1,u2,u3||");
    ck_value(pg,
             "SELECT payload->'joins'->'u1'->'metas'->0->>'count' FROM spark.messages"
             " WHERE kind = 'presence' ORDER BY seq LIMIT 1",
             "99");
    /* What a joiner is given, crowded or not. */
    ck_value(pg, "SELECT spark.presence_message('r0', 2)::jsonb::text",
             "{\"room\": \"r0\", \"type\": \"presence_state\", \"count\": 3, \"state\": {}, "
             "\"crowded\": true}");
    ck_value(pg, "SELECT spark.presence_message('r0')::jsonb - 'state'",
             "{\"room\": \"r0\", \"type\": \"presence_state\", \"count\": 3}");
    PQfinish(pg);
}
END_TEST

START_TEST(writes_revert_and_fork) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    build_history(pg);

    /* Revert of a deleted component recreates it, as a revert event. */
    ck_value(pg, "SELECT spark.revert('counter:h', 3, 'ops')", "7");
    ck_value(pg,
             "SELECT concat_ws('|', c.version, c.state, e.event, e.data, e.actor) FROM "
             "spark.components c JOIN spark.events e ON e.component_id = c.id AND e.version = "
             "c.version WHERE c.id = 'counter:h'",
             "7|{\"count\": 2}|revert|{\"to_version\": 3}|ops");
    /* Reverting to the state it already has writes nothing. */
    ck_value(pg, "SELECT spark.revert('counter:h', 3)", "7");
    ck_value(pg, "SELECT count(*) FROM spark.events WHERE component_id = 'counter:h'", "7");
    expect_error(pg, "SELECT spark.revert('counter:h', 6)", "P0002"); /* the delete */
    expect_error(pg, "SELECT spark.revert('counter:h', 99)", "P0002");

    /* set_state records event, actor and data; equal state writes nothing. */
    ck_value(pg, "SELECT spark.set_state('counter:h', '{\"count\": 9}', 'set', 'ops', '{\"n\":9}')",
             "8");
    ck_value(pg, "SELECT spark.set_state('counter:h', '{\"count\": 9}')", "8");
    ck_value(pg,
             "SELECT concat_ws('|', event, data, actor) FROM spark.events WHERE component_id = "
             "'counter:h' AND version = 8",
             "set|{\"n\": 9}|ops");
    ck_value(pg, "SELECT spark.set_state('counter:new', '{}')", "1");

    /* Their labels do not leak into the caller's later writes. */
    PQclear(it_exec(pg, "BEGIN; SELECT set_config('spark.event', 'outer', true),"
                        " set_config('spark.actor', 'outer-actor', true);"
                        "SELECT spark.set_state('counter:new', '{\"count\": 1}', 'inner', 'x');"
                        "SELECT spark.revert('counter:h', 1, 'y');"
                        "SELECT spark.fork('counter:h', 'counter:leak', 1, 'z');"
                        "UPDATE spark.components SET state = '{\"count\": 2}'"
                        " WHERE id = 'counter:new'; COMMIT"));
    ck_value(pg,
             "SELECT string_agg(concat_ws('|', version, event, data, actor), ' ; ' ORDER BY "
             "version) FROM spark.events WHERE component_id = 'counter:new'",
             "1|sql.set_state|postgres ; 2|inner|x ; 3|outer|outer-actor");

    /* Fork: current state, or a version; same type; a new id only. */
    ck_value(pg, "SELECT spark.fork('counter:h', 'counter:copy')", "1");
    ck_value(pg,
             "SELECT concat_ws('|', c.state, e.event, e.data) FROM spark.components c JOIN "
             "spark.events e ON e.component_id = c.id WHERE c.id = 'counter:copy'",
             "{\"count\": 0}|fork|{\"from\": \"counter:h\", \"version\": 9}");
    ck_value(pg, "SELECT spark.fork('counter:h', 'counter:old', 4, 'ops')", "1");
    ck_value(pg,
             "SELECT concat_ws('|', c.state, e.actor, e.data) FROM spark.components c JOIN "
             "spark.events e ON e.component_id = c.id WHERE c.id = 'counter:old'",
             "{\"step\": 1, \"count\": 3}|ops|{\"from\": \"counter:h\", \"version\": 4}");
    expect_error(pg, "SELECT spark.fork('counter:h', 'counter:copy')", "23505");
    expect_error(pg, "SELECT spark.fork('counter:h', 'todo:copy')", "22023");
    expect_error(pg, "SELECT spark.fork('counter:h', 'counter:x', 6)", "P0002");
    expect_error(pg, "SELECT spark.fork('counter:nope', 'counter:x')", "P0002");
    PQfinish(pg);
}
END_TEST

/* ------------------------------------------------------------------------
 * History storage: snapshots and patches (0004)
 * ------------------------------------------------------------------------ */

/* Writes `state` (padded, unless it is "{}", so that most patches are
 * smaller than the state) or, for NULL, deletes the component; records the
 * true state after it in pg_temp.truth. */
static void write_and_record(PGconn *pg, const char *id, const char *state) {
    const char *params[] = {id, state};
    PGresult *r;
    if (state) {
        r = PQexecParams(pg,
                         "SELECT spark.set_state($1, CASE WHEN $2::jsonb = '{}' THEN '{}'::jsonb"
                         " ELSE $2::jsonb || jsonb_build_object('pad', repeat('p', 300)) END)",
                         2, NULL, params, NULL, NULL, 0);
        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", state, PQerrorMessage(pg));
        PQclear(r);
        r = PQexecParams(pg,
                         "INSERT INTO pg_temp.truth SELECT c.id, c.version, c.state FROM"
                         " spark.components c WHERE c.id = $1 ON CONFLICT DO NOTHING",
                         1, NULL, params, NULL, NULL, 0);
    } else {
        PQclear(PQexecParams(pg, "DELETE FROM spark.components WHERE id = $1", 1, NULL, params,
                             NULL, NULL, 0));
        r = PQexecParams(pg,
                         "INSERT INTO pg_temp.truth SELECT $1, max(e.version), NULL FROM"
                         " spark.events e WHERE e.component_id = $1",
                         1, NULL, params, NULL, NULL, 0);
    }
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(pg));
    PQclear(r);
}

static const char *const scripted_states[] = {
    "{\"items\": [], \"meta\": {\"title\": \"a\", \"tags\": [\"x\"]}, \"n\": 1}",
    "{\"items\": [{\"id\": 1, \"text\": \"milk\", \"done\": false}], \"meta\": {\"title\": \"a\","
    " \"tags\": [\"x\"]}, \"n\": 1}",
    "{\"items\": [{\"id\": 1, \"text\": \"milk\", \"done\": false}, {\"id\": 2, \"text\": "
    "\"eggs\", \"done\": false}], \"meta\": {\"title\": \"a\", \"tags\": [\"x\"]}, \"n\": 1}",
    /* a key set to null */
    "{\"items\": [{\"id\": 1, \"text\": \"milk\", \"done\": false}, {\"id\": 2, \"text\": "
    "\"eggs\", \"done\": false}], \"meta\": {\"title\": \"a\", \"tags\": [\"x\"]}, \"n\": null}",
    /* nested: a nested key to null, a new nested object */
    "{\"items\": [{\"id\": 1, \"text\": \"milk\", \"done\": false}, {\"id\": 2, \"text\": "
    "\"eggs\", \"done\": false}], \"meta\": {\"title\": null, \"tags\": [\"x\"], \"sub\": "
    "{\"deep\": {\"x\": 1}}}, \"n\": null}",
    /* numbers exactly as written; an element in the middle of an array */
    "{\"items\": [{\"id\": 1, \"text\": \"milk\", \"done\": true}, {\"id\": 2, \"text\": "
    "\"eggs\", \"done\": false}], \"meta\": {\"title\": null, \"tags\": [\"x\", \"y\"], \"sub\": "
    "{\"deep\": {\"x\": 1.0}}}, \"n\": 1.50}",
    /* a key removed */
    "{\"items\": [{\"id\": 1, \"text\": \"milk\", \"done\": true}, {\"id\": 2, \"text\": "
    "\"eggs\", \"done\": false}], \"n\": 1.50}",
    "{\"items\": [{\"id\": 2, \"text\": \"eggs\", \"done\": false}], \"n\": 1.5, \"grid\": "
    "[[1, 2], [3, 4]]}",
    "{\"items\": [{\"id\": 2, \"text\": \"eggs\", \"done\": false}], \"n\": \"one\", \"grid\": "
    "[[1, 2], [3, 5], []]}",
    "{}",
    "{\"a\": {\"b\": {\"c\": [null, {\"d\": null}]}}, \"items\": null}",
    "{\"a\": {\"b\": {\"c\": [null, {\"d\": 0}], \"e\": {}}}, \"items\": []}",
    NULL,               /* deleted */
    "{\"items\": [1]}", /* re-created */
    "{\"items\": [1, 2]}",
    "{\"items\": [2], \"x\": {\"y\": [null]}}",
    NULL,
    "{\"items\": [3]}",
};

START_TEST(history_patches_rebuild_every_version) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "CREATE TEMP TABLE truth (id text, version bigint, state jsonb,"
                        " PRIMARY KEY (id, version))"));
    static const int every[] = {1, 2, 3, 5, 32};
    unsigned seed = 11;
    for (size_t k = 0; k < sizeof every / sizeof every[0]; k++) {
        char sql[160], id[32];
        snprintf(sql, sizeof sql, "SELECT set_config('spark.snapshot_every', '%d', false)",
                 every[k]);
        PQclear(it_exec(pg, sql));
        snprintf(id, sizeof id, "doc:every%d", every[k]);
        for (size_t i = 0; i < sizeof scripted_states / sizeof scripted_states[0]; i++)
            write_and_record(pg, id, scripted_states[i]);
        /* Then random states, so that pairs overlap in every way. */
        for (int i = 0; i < 60; i++) {
            char a[4096], b[4096], doc[8400];
            size_t na = 0, nb = 0;
            random_json(a, sizeof a, &na, 0, &seed);
            random_json(b, sizeof b, &nb, 0, &seed);
            snprintf(doc, sizeof doc, "{\"r\": %s, \"s\": {\"t\": %s}}", a, b);
            write_and_record(pg, id, doc);
        }
    }
    /* Every version of every component rebuilds exactly (as text: numbers
     * as written), through state_at, the view, history and replay. */
    ck_value(pg, "SELECT count(*) = (SELECT count(*) FROM truth) FROM spark.events", "t");
    ck_value(pg,
             "SELECT count(*) = (SELECT count(*) FROM truth) FROM spark.events e JOIN truth t"
             " ON t.id = e.component_id AND t.version = e.version",
             "t");
    ck_value(pg,
             "SELECT count(*) FROM truth t WHERE spark.state_at(t.id, t.version)::text"
             " IS DISTINCT FROM t.state::text",
             "0");
    ck_value(pg,
             "SELECT count(*) FROM truth t JOIN spark.component_history h ON h.component_id ="
             " t.id AND h.version = t.version WHERE h.state::text IS DISTINCT FROM t.state::text",
             "0");
    ck_value(pg,
             "SELECT count(*) FROM truth t JOIN spark.history('doc:every32') h ON h.version ="
             " t.version WHERE t.id = 'doc:every32' AND h.state::text IS DISTINCT FROM"
             " t.state::text",
             "0");
    ck_value(pg,
             "SELECT count(*) FROM truth t JOIN spark.replay('doc:every5') r ON r.version ="
             " t.version LEFT JOIN truth p ON p.id = t.id AND p.version = t.version - 1"
             " WHERE t.id = 'doc:every5' AND (r.state::text IS DISTINCT FROM t.state::text"
             " OR r.state_before::text IS DISTINCT FROM p.state::text)",
             "0");
    /* Snapshots where asked (every version with 1), patches in between. */
    ck_value(pg,
             "SELECT count(*) FROM spark.events WHERE component_id = 'doc:every1' AND patch IS"
             " NOT NULL",
             "0");
    ck_value(pg,
             "SELECT count(*) > 30 FROM spark.events WHERE component_id = 'doc:every32' AND"
             " patch IS NOT NULL AND state IS NULL",
             "t");
    /* The first version and the first after a delete are snapshots. */
    ck_value(pg,
             "SELECT count(*) FROM truth t JOIN truth d ON d.id = t.id AND d.version ="
             " t.version - 1 AND d.state IS NULL JOIN spark.events e ON e.component_id = t.id"
             " AND e.version = t.version WHERE e.state IS NULL",
             "0");
    /* Revert and fork to a patch version give its exact state. */
    PQclear(it_exec(pg, "SELECT set_config('spark.snapshot_every', '', false)"));
    PQclear(it_exec(pg, "CREATE TEMP TABLE pick AS SELECT e.version FROM spark.events e WHERE"
                        " e.component_id = 'doc:every32' AND e.patch IS NOT NULL ORDER BY"
                        " e.version DESC LIMIT 1 OFFSET 3"));
    PQclear(it_exec(pg, "SELECT spark.revert('doc:every32', (SELECT version FROM pick))"));
    ck_value(pg,
             "SELECT c.state::text = t.state::text FROM spark.components c, truth t WHERE c.id"
             " = 'doc:every32' AND t.id = c.id AND t.version = (SELECT version FROM pick)",
             "t");
    PQclear(it_exec(pg, "SELECT spark.fork('doc:every32', 'doc:forked', (SELECT version FROM"
                        " pick))"));
    ck_value(pg,
             "SELECT c.state::text = t.state::text FROM spark.components c, truth t WHERE c.id"
             " = 'doc:forked' AND t.id = 'doc:every32' AND t.version = (SELECT version FROM"
             " pick)",
             "t");
    /* Retention keeps every kept version rebuildable: the oldest kept row
     * becomes a snapshot. */
    ck_value(pg, "SELECT spark.prune_history(7, NULL, 'doc:every32') > 0", "t");
    ck_value(pg,
             "SELECT count(*) FROM spark.events e JOIN truth t ON t.id = e.component_id AND"
             " t.version = e.version WHERE e.component_id = 'doc:every32' AND"
             " spark.state_at(e.component_id, e.version)::text IS DISTINCT FROM t.state::text",
             "0");
    ck_value(pg,
             "SELECT state IS NOT NULL FROM spark.events WHERE component_id = 'doc:every32'"
             " ORDER BY version LIMIT 1",
             "t");
    PQfinish(pg);
}
END_TEST

/* A list that grows by one item per change, like add_todo: what each
 * change stores stays the size of the item, while the state grows. */
START_TEST(history_storage_grows_with_the_change) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    PQclear(it_exec(pg, "SELECT spark.set_state('todo:big', '{\"items\": []}')"));
    PQclear(it_exec(pg,
                    "DO $$ BEGIN FOR i IN 1..300 LOOP"
                    " UPDATE spark.components SET state = jsonb_set(state, '{items}',"
                    " (state->'items') || jsonb_build_object('id', i, 'text', 'item number ' || i"
                    " || ' ' || md5(i::text), 'done', false)) WHERE id = 'todo:big';"
                    " END LOOP; END $$"));
    ck_value(pg, "SELECT spark.state_at('todo:big', 301) = state FROM spark.components", "t");
    /* Each patch row holds one item: as small late as early. */
    ck_value(pg,
             "SELECT max(pg_column_size(patch)) < 200 FROM spark.events WHERE component_id ="
             " 'todo:big' AND patch IS NOT NULL",
             "t");
    ck_value(pg,
             "SELECT (SELECT avg(pg_column_size(patch)) FROM spark.events WHERE version > 250"
             " AND patch IS NOT NULL) < 1.2 * (SELECT avg(pg_column_size(patch)) FROM"
             " spark.events WHERE version BETWEEN 2 AND 50 AND patch IS NOT NULL)",
             "t");
    /* Only every 32nd version (and the first) holds the whole state. */
    ck_value(pg, "SELECT count(*) BETWEEN 10 AND 14 FROM spark.events WHERE state IS NOT NULL",
             "t");
    ck_value(pg,
             "SELECT sum(coalesce(pg_column_size(e.state), 0) + coalesce(pg_column_size(e.patch),"
             " 0)) * 5 < sum(pg_column_size(spark.state_at(e.component_id, e.version)))"
             " FROM spark.events e",
             "t");
    PQfinish(pg);
}
END_TEST

static const char *const history_tables[] = {"spark.events", "spark.messages"};

START_TEST(history_is_append_only_and_retention_keeps_current_state) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db);
    build_history(pg);
    for (int i = 1; i <= 6; i++)
        PQclear(it_exec(pg, "SELECT spark.set_state('counter:live', jsonb_build_object('count', "
                            "(SELECT count(*) FROM spark.events)))"));
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:x', '{\"m\": 1}')"));

    for (int i = 0; i < 2; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE %s SET at = now()", history_tables[i]);
        expect_error(pg, sql, "23001");
        snprintf(sql, sizeof sql, "DELETE FROM %s", history_tables[i]);
        expect_error(pg, sql, "23001");
        snprintf(sql, sizeof sql, "TRUNCATE %s", history_tables[i]);
        expect_error(pg, sql, "23001");
    }

    /* The guard is off only inside prune_history, and restored after. */
    PQclear(it_exec(pg, "BEGIN"));
    ck_value(pg, "SELECT spark.prune_history(3, NULL, 'counter:live')", "3");
    expect_error(pg, "DELETE FROM spark.events", "23001");
    PQclear(it_exec(pg, "ROLLBACK"));
    PQclear(it_exec(pg, "BEGIN; SELECT set_config('spark.allow_prune', 'on', true)"));
    PQclear(it_exec(pg, "SELECT spark.prune_history(3)"));
    ck_value(pg, "SELECT current_setting('spark.allow_prune')", "on");
    PQclear(it_exec(pg, "ROLLBACK"));
    expect_error(pg, "SELECT spark.prune_history(-1)", "22023");

    /* Keep 2 per component: counter:live keeps 5..6, the deleted
     * counter:h keeps 5 and its deletion. */
    ck_value(pg, "SELECT spark.prune_history(2)", "8");
    ck_value(pg,
             "SELECT string_agg(component_id || ':' || version, ',' ORDER BY component_id, "
             "version) FROM spark.events",
             "counter:h:5,counter:h:6,counter:live:5,counter:live:6");
    ck_value(pg, "SELECT spark.state_at('counter:live', 5) IS NOT NULL", "t");
    ck_value(pg,
             "SELECT spark.state_at('counter:live', 6) = state FROM spark.components WHERE id = "
             "'counter:live'",
             "t");
    ck_value(pg, "SELECT version FROM spark.components WHERE id = 'counter:live'", "6");
    ck_value(pg, "SELECT spark.revert('counter:live', 5)", "7");
    expect_error(pg, "SELECT spark.revert('counter:live', 4)", "P0002");
    /* A recreated component still continues its versions. */
    ck_value(pg, "SELECT spark.set_state('counter:h', '{}')", "7");

    /* Keep 1: only each component's current version is left. */
    ck_value(pg, "SELECT spark.prune_history(1)", "4");
    ck_value(pg,
             "SELECT bool_and(e.state = c.state) AND count(*) = 2 FROM spark.components c JOIN "
             "spark.events e ON e.component_id = c.id AND e.version = c.version",
             "t");
    ck_value(pg, "SELECT count(*) FROM spark.events", "2");

    /* By age: nothing is younger than a day; the newest rows stay. */
    PQclear(it_exec(pg, "SELECT spark.set_state('counter:live', '{\"n\": 1}')"));
    ck_value(pg, "SELECT spark.prune_history(0, interval '1 day')", "0");
    ck_value(pg, "SELECT spark.prune_history(0, interval '0 seconds')", "1");
    ck_value(pg, "SELECT count(*) FROM spark.events", "2");
    /* Room messages are untouched by component retention. */
    ck_value(pg, "SELECT count(*) FROM spark.messages", "1");
    PQfinish(pg);
}
END_TEST

static PGnotify *next_notify(PGconn *pg, int timeout_ms) {
    long long deadline = it_now_ms() + timeout_ms;
    for (;;) {
        ck_assert_int_eq(PQconsumeInput(pg), 1);
        PGnotify *n = PQnotifies(pg);
        if (n || it_now_ms() >= deadline) return n;
        usleep(10000);
    }
}

START_TEST(sql_broadcast_commits_with_its_transaction) {
    char name[64];
    const char *db = it_create_migrated_database(name);
    PGconn *pg = it_connect(db), *listener = it_connect(db);
    PQclear(it_exec(listener, "LISTEN spark"));
    PQclear(it_exec(pg, "BEGIN; SELECT spark.broadcast('chat:a', '{\"n\": 1}');"
                        "SELECT spark.notify_user('u1', '{\"n\": 2}');"
                        "SELECT spark.set_state('counter:a', '{}'); ROLLBACK"));
    PQclear(it_exec(pg, "SELECT spark.broadcast('chat:a', '{\"n\": 3}', 'note', 'ops')"));
    PGnotify *n = next_notify(listener, 2000);
    ck_assert_ptr_nonnull(n);
    char *seq = value(pg, "SELECT 'm|' || max(seq) || '|chat:a' FROM spark.messages");
    ck_assert_str_eq(n->extra, seq); /* the first thing heard is the committed one */
    free(seq);
    PQfreemem(n);
    ck_assert_ptr_null(next_notify(listener, 300));
    ck_value(pg,
             "SELECT string_agg(concat_ws('|', room, kind, payload, actor), ';') FROM "
             "spark.room_history",
             "chat:a|note|{\"n\": 3}|ops");
    ck_value(pg, "SELECT count(*) FROM spark.events", "0");
    PQfinish(pg);
    PQfinish(listener);
}
END_TEST

/* ------------------------------------------------------------------------
 * Live: two running instances and their clients
 * ------------------------------------------------------------------------ */

static it_pair pair;

static it_ws *join_chat(int port, const char *target) {
    it_ws *ws = it_ws_open_ok(port, target, NULL);
    char *m = it_ws_recv_match(ws, "\"user_joined\"", RECV_MS);
    ck_assert_msg(m, "no user_joined on %s", target);
    free(m);
    return ws;
}

START_TEST(psql_broadcasts_reach_both_instances_and_rollbacks_none) {
    it_pair_start(&pair, "sql");
    it_ws *clients[2] = {join_chat(pair.port[0], "/chat/lobby"),
                         join_chat(pair.port[1], "/chat/lobby")};
    PGconn *pg = it_connect(pair.db);

    /* A rolled-back broadcast, then one that commits, both from psql. */
    const char *const rolled_back[] = {
        "BEGIN",
        "SELECT spark.broadcast('chat:lobby', '{\"type\":\"chat\",\"user\":\"ops\","
        "\"message\":\"never sent\"}')",
        "ROLLBACK", NULL};
    psql_commands(pair.db, rolled_back);
    const char *const committed[] = {
        "SELECT spark.broadcast('chat:lobby', '{\"type\":\"chat\",\"user\":\"ops\","
        "\"message\":\"maintenance at 18:00\"}', 'message', 'ops')",
        NULL};
    psql_commands(pair.db, committed);
    char *seq = value(pg, "SELECT max(seq) FROM spark.messages WHERE actor = 'ops'");
    for (int k = 0; k < 2; k++) {
        char *m = it_ws_recv_match(clients[k], "\"user\":\"ops\"", RECV_MS);
        ck_assert_msg(m, "instance %c: the broadcast never arrived", 'a' + k);
        ck_assert_msg(strstr(m, "maintenance at 18:00"), "instance %c first got %s", 'a' + k, m);
        char want[48];
        snprintf(want, sizeof want, "\"seq\":%s", seq);
        ck_assert_msg(strstr(m, want), "instance %c: %s lacks %s", 'a' + k, m, want);
        free(m);
    }
    free(seq);

    /* A plain INSERT from psql is live too, and a rolled-back one is not. */
    const char *const inserts[] = {
        "BEGIN",
        "INSERT INTO spark.messages (room, payload) VALUES ('chat:lobby', "
        "'{\"type\":\"chat\",\"user\":\"ops\",\"message\":\"rolled back insert\"}')",
        "ROLLBACK",
        "INSERT INTO spark.messages (room, payload, actor) VALUES ('chat:lobby', "
        "'{\"type\":\"chat\",\"user\":\"ops\",\"message\":\"inserted\"}', 'ops')",
        NULL};
    psql_commands(pair.db, inserts);
    for (int k = 0; k < 2; k++) {
        char *m = it_ws_recv_match(clients[k], "\"user\":\"ops\"", RECV_MS);
        ck_assert_msg(m && strstr(m, "\"message\":\"inserted\""), "instance %c got %s", 'a' + k,
                      m ? m : "nothing");
        free(m);
    }

    /* A message sent by a client is in the room's history, with its actor. */
    ck_assert_int_eq(
        it_ws_send_text(clients[0], "{\"action\":\"chat\",\"message\":\"from a browser\"}"), 0);
    char *m = it_ws_recv_match(clients[1], "from a browser", RECV_MS);
    ck_assert_ptr_nonnull(m);
    free(m);
    ck_value(pg,
             "SELECT count(*) FROM spark.room_history WHERE room = 'chat:lobby' AND "
             "payload->>'message' = 'from a browser' AND actor IS NOT NULL",
             "1");
    ck_value(pg,
             "SELECT string_agg(payload->>'message', ',' ORDER BY seq) FROM spark.room_history "
             "WHERE room = 'chat:lobby' AND payload->>'user' = 'ops'",
             "maintenance at 18:00,inserted");

    /* The views see both instances and both connections. */
    ck_value(pg,
             "SELECT string_agg(instance || ':' || (connections >= 1) || ':' || (silent_for < "
             "interval '1 minute'), ',' ORDER BY instance) FROM spark.live_instances",
             "a:true:true,b:true:true");
    ck_value(pg,
             "SELECT sum(connections) || '|' || (SELECT string_agg(DISTINCT i, ',' ORDER BY i)"
             " FROM spark.room_presence, unnest(instances) AS i WHERE room = 'chat:lobby')"
             " FROM spark.room_presence WHERE room = 'chat:lobby'",
             "2|a,b");
    it_ws_close(clients[0]);
    it_ws_close(clients[1]);
    PQfinish(pg);
    it_pair_stop(&pair);
}
END_TEST

START_TEST(notify_user_from_sql_is_atomic_too) {
    it_pair_start(&pair, "sqlnotify");
    it_ws *a = it_ws_open_ok(pair.port[0], "/notifications/u9", NULL);
    it_ws *b = it_ws_open_ok(pair.port[1], "/notifications/u9", NULL);
    PGconn *pg = it_connect(pair.db);
    /* The joins are asynchronous: ping until both tabs have heard one. */
    char *ma = NULL, *mb = NULL;
    long long deadline = it_now_ms() + RECV_MS;
    while ((!ma || !mb) && it_now_ms() < deadline) {
        PQclear(it_exec(pg, "SELECT spark.notify_user('u9', '{\"type\":\"ping\"}')"));
        if (!ma) ma = it_ws_recv_match(a, "\"ping\"", 200);
        if (!mb) mb = it_ws_recv_match(b, "\"ping\"", 200);
    }
    ck_assert_msg(ma && mb, "the tabs never joined");
    free(ma);
    free(mb);
    PQclear(it_exec(pg, "BEGIN; SELECT spark.notify_user('u9', '{\"type\":\"note\",\"n\":1}');"
                        "ROLLBACK"));
    PQclear(it_exec(pg, "SELECT spark.notify_user('u9', '{\"type\":\"note\",\"n\":2}')"));
    it_ws *tabs[] = {a, b};
    for (int k = 0; k < 2; k++) {
        char *m = it_ws_recv_match(tabs[k], "\"note\"", RECV_MS);
        ck_assert_msg(m && strstr(m, "\"n\":2"), "tab %d first got %s", k, m ? m : "nothing");
        free(m);
    }
    it_ws_close(a);
    it_ws_close(b);
    PQfinish(pg);
    it_pair_stop(&pair);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sql");
    TCase *tc = tcase_create("sql");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, docs_walkthrough_runs_as_written);
    tcase_add_test(tc, inspection_on_a_history);
    tcase_add_test(tc, jsonb_diff_patches_apply_exactly);
    tcase_add_test(tc, writes_revert_and_fork);
    tcase_add_test(tc, presence_track_many_posts_one_diff_per_room);
    tcase_add_test(tc, presence_in_a_crowded_room_is_a_count);
    tcase_add_test(tc, apply_batch_isolates_each_component);
    tcase_add_test(tc, apply_batch_writes_a_batch_as_its_events_one_by_one);
    tcase_add_test(tc, history_is_append_only_and_retention_keeps_current_state);
    tcase_add_test(tc, history_patches_rebuild_every_version);
    tcase_add_test(tc, history_storage_grows_with_the_change);
    tcase_add_test(tc, sql_broadcast_commits_with_its_transaction);
    tcase_add_test(tc, psql_broadcasts_reach_both_instances_and_rollbacks_none);
    tcase_add_test(tc, notify_user_from_sql_is_atomic_too);
    suite_add_tcase(s, tc);
    return it_run_suite(s);
}
