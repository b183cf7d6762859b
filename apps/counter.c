/*
 * counter.c - the seed's CounterComponent: a shared count and step.
 * Its page, /counter/:id, is declared in site.c.
 */
#include <spark/component.h>

static void render(spark_html *h, const spark_view *v) {
    long long count = spark_state_int(v, "count", 0), step = spark_state_int(v, "step", 1);
    DIV(h, "class", "counter-widget") {
        H2(h) { spark_textf(h, "Count: %lld", count); }
        DIV(h, "class", "controls") {
            BUTTON(h, "spark-click", "decrement") { spark_text(h, "-"); }
            INPUT(h, "type", "number", "min", "1", "spark-change", "set_step", "name", "step",
                  "value", spark_itoa(h, step));
            BUTTON(h, "spark-click", "increment") { spark_text(h, "+"); }
        }
        BUTTON(h, "spark-click", "reset", "class", "reset") { spark_text(h, "Reset"); }
    }
}

static int on_event(spark_event *e) {
    long long step = spark_state_int(e, "step", 1);
    if (spark_event_is(e, "increment")) return spark_state_add(e, "count", step);
    if (spark_event_is(e, "decrement")) return spark_state_add(e, "count", -step);
    if (spark_event_is(e, "reset")) return spark_state_set_int(e, "count", 0);
    if (spark_event_is(e, "set_step")) {
        long long n = 0;
        if (!spark_data_int(e, "value", &n) || n < 1 || n > 1000000)
            return spark_fail(e, "invalid_step", "step is 1 to 1000000");
        return spark_state_set_int(e, "step", n);
    }
    return SPARK_UNKNOWN_EVENT;
}

SPARK_COMPONENT(counter, .render = render, .on_event = on_event,
                .initial_state = "{\"count\":0,\"step\":1}");
