/*
 * diff_bench.c - what one toggle in a todo list costs the server: the
 * render and diff time, and the patch a viewer gets against the full HTML
 * it would get without a diff, for lists of 10 to 5,000 items.
 *
 * It renders the todo demo component (apps/todo.c, linked in as is) the
 * way the runtime does (render.c): keep the tree a viewer was sent, render
 * again after the event on a builder that reuses that tree (compacted as
 * the runtime compacts it), spark_diff() the two, keep the new one. Each
 * round toggles the middle item back or forth, so every round is a real
 * change and the chain of reusing builders grows and is compacted as in
 * the runtime. Not a test: it prints a table of medians over many rounds
 * (render and diff medians are taken apart, so they need not add up to the
 * total), the mean, which includes the rounds that compact, and the median
 * CPU time of a round (the thread's own clock): on a busy host a round of
 * milliseconds is often descheduled, which moves wall times, not CPU times.
 *
 * It builds against sources without reuse too (BENCH_SOURCE=an older
 * tree, with this file copied in): there each round renders afresh, so
 * before and after are measured by the same program.
 *
 * Build (after building the tree in build/):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -DSPARK_STATIC -I service -I service/include \
 *      -I build/generated bench/diff_bench.c build/libspark_internal.a \
 *      $(pkg-config --libs libwebsockets json-c libpq libsodium) -o build/diff_bench
 */
#include "diff.h"
#include "component_ctx.h"

#include "../apps/todo.c"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double clock_us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double now_us(void) { return clock_us(CLOCK_MONOTONIC); }

static double cpu_us(void) { return clock_us(CLOCK_THREAD_CPUTIME_ID); }

static json_object *todo_state(int n) {
    json_object *state = json_object_new_object(), *items = json_object_new_array();
    for (int i = 1; i <= n; i++) {
        char text[64];
        snprintf(text, sizeof text, "Buy item number %d & more", i);
        json_object *it = json_object_new_object();
        json_object_object_add(it, "id", json_object_new_int(i));
        json_object_object_add(it, "text", json_object_new_string(text));
        json_object_object_add(it, "done", json_object_new_boolean(i % 3 == 0));
        json_object_array_add(items, it);
    }
    json_object_object_add(state, "items", items);
    json_object_object_add(state, "next_id", json_object_new_int(n + 1));
    return state;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n timings: one slow round on a shared machine moves it
 * little, where it would move a mean a lot. */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* What a render or a handler run of the todo "todo:bench" sees. */
static spark_live bench_context(json_object *state, json_object *local) {
    const char *key;
    return (spark_live){.type = spark_component_of_id("todo:bench", &key),
                        .id = "todo:bench",
                        .key = key,
                        .state = state,
                        .local = local,
                        .viewer_id = "bench",
                        .viewer_name = "bench"};
}

/* The state after the todo's "toggle" of the middle item, made as the
 * runtime makes it (writes.c): the component's own handler, run on a fork
 * of the state (on a deep copy, in trees before forks). */
static json_object *toggled(json_object *before, json_object *local, int n) {
    json_object *data = json_object_new_object(), *l = NULL, *s = NULL;
    json_object_object_add(data, "id", json_object_new_int(n / 2 + 1));
    json_object_deep_copy(local, &l, NULL);
#ifdef SPARK_STATE_FORKS
    s = spark_state_fork(before);
#else
    json_object_deep_copy(before, &s, NULL);
#endif
    spark_live lv = bench_context(s, l);
    lv.shared_writable = lv.local_writable = true;
    lv.event = "toggle";
    lv.data = data;
    if (spark_live_dispatch(&lv) != SPARK_OK) {
        fprintf(stderr, "diff_bench: the toggle failed\n");
        exit(1);
    }
    spark_live_clear_outcome(&lv);
    json_object_put(l);
    json_object_put(data);
    return s;
}

/* The runtime keeps each render's builder as the tree (no copy), and
 * builds the next render on the viewer's tree (`prev`, may be NULL). */
static spark_html *render_tree(json_object *state, json_object *local, spark_html **prev) {
    spark_live lv = bench_context(state, local);
#ifdef SPARK_HTML_MAX_CHAIN
    if (prev) spark_html_compact(prev);
    lv.reuse = prev ? *prev : NULL;
#endif
    (void)prev;
    const char *error;
    return spark_live_render(&lv, &error);
}

/* Arguments, optional: the list sizes to run (default 10 100 500 5000),
 * e.g. `diff_bench 5000` under perf record. */
int main(int argc, char **argv) {
    double started = now_us();
    int sizes[16] = {10, 100, 500, 5000}, nsizes = 4;
    if (argc > 1)
        for (nsizes = 0; nsizes < argc - 1 && nsizes < 16; nsizes++)
            sizes[nsizes] = atoi(argv[nsizes + 1]) > 0 ? atoi(argv[nsizes + 1]) : 1;
    json_object *local = spark_component_initial(todo_component.initial_view);
    printf("| items | render+diff (µs) | render | diff | mean | CPU | patch bytes | full HTML "
           "bytes | patch / full |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int s = 0; s < nsizes; s++) {
        int n = sizes[s], rounds = n >= 5000 ? 40 : 200;
        json_object *before = todo_state(n), *after = toggled(before, local, n);
        spark_html *old = render_tree(before, local, NULL);
        size_t patch_bytes = 0, html_bytes = 0;
        double total[200] = {0}, render_only[200] = {0}, diff_only[200] = {0}, cpu[200] = {0},
               sum = 0;
        for (int r = 0; r < rounds; r++) {
            double start = now_us(), cpu_start = cpu_us();
            spark_html *fresh = render_tree(r % 2 ? before : after, local, &old);
            double rendered = now_us();
            spark_sbuf ops = {0};
            spark_diff(spark_html_root(old), spark_html_root(fresh), &ops);
            total[r] = now_us() - start;
            cpu[r] = cpu_us() - cpu_start;
            render_only[r] = rendered - start;
            diff_only[r] = total[r] - render_only[r];
            sum += total[r];
            if (r % 2 == 0) patch_bytes = ops.len; /* before -> after */
            spark_sbuf_free(&ops);
            spark_html_free(old);
            old = fresh;
        }
        double per = median(total, rounds), render_per = median(render_only, rounds),
               diff_per = median(diff_only, rounds), cpu_per = median(cpu, rounds);
        spark_html *full = render_tree(after, local, NULL);
        spark_sbuf html = {0};
        spark_node_serialize_children(spark_html_root(full), &html);
        html_bytes = html.len;
        spark_html_free(full);
        printf("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %zu | %zu | %.4f%% |\n", n, per,
               render_per, diff_per, sum / rounds, cpu_per, patch_bytes, html_bytes,
               100.0 * (double)patch_bytes / (double)html_bytes);
        spark_sbuf_free(&html);
        spark_html_free(old);
        json_object_put(before);
        json_object_put(after);
    }
    json_object_put(local);
    /* One thread, nothing to wait for: CPU close to wall time says the
     * figures are the code's, not the host's (a gap is time taken away). */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\nbench CPU: %.2f s user, %.2f s system, %.2f s wall\n",
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
           (now_us() - started) / 1e6);
    return 0;
}
