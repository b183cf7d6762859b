/*
 * fuzz_json.c - the channels' JSON handling: spark_json_parse and the
 * getters a channel calls on a message (as apps/chat_channel.c does with
 * action, message and since), then setters and spark_json_text.
 *
 * Invariant: what spark_json_text writes parses again and writes the same
 * text.
 */
#include "fuzz.h"

#include <spark/json.h>

#include <stdbool.h>

static void check_text_round_trip(spark_json *json) {
    size_t len = 0;
    const char *text = spark_json_text(json, &len);
    FUZZ_CHECK(text && strlen(text) == len);
    spark_json *again = spark_json_parse(text, len);
    FUZZ_CHECK(again);
    size_t len2 = 0;
    const char *text2 = spark_json_text(again, &len2);
    FUZZ_CHECK(text2 && len2 == len && memcmp(text, text2, len) == 0);
    spark_json_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    spark_json *in = spark_json_parse((const char *)data, size);
    /* The getters take NULL and any JSON value. */
    const char *action = spark_json_str(in, "action");
    const char *message = spark_json_str(in, "message");
    long long since = 0;
    bool flag = false;
    bool has_since = spark_json_int(in, "since", &since);
    (void)spark_json_bool(in, "typing", &flag);
    (void)spark_json_has(in, "room");
    if (action) FUZZ_CHECK(spark_json_has(in, "action"));
    if (message) (void)strlen(message);
    if (has_since) FUZZ_CHECK(spark_json_has(in, "since"));
    if (!in) return 0;
    check_text_round_trip(in);
    if (spark_json_is_object(in)) {
        /* What a channel does with it: answer with fields added. */
        FUZZ_CHECK(spark_json_set_str(in, "type", action ? action : "chat") == 0);
        FUZZ_CHECK(spark_json_set_int(in, "since", since) == 0);
        FUZZ_CHECK(spark_json_set_bool(in, "ok", flag) == 0);
        long long got = 0;
        FUZZ_CHECK(spark_json_int(in, "since", &got) && got == since);
        check_text_round_trip(in);
    }
    /* The input as a raw field value: accepted exactly when it still
     * parses inside an object (it parsed alone; inside, it is one level
     * deeper), if the text has no NUL inside (set_raw would see less). */
    spark_json *out = spark_json_object();
    FUZZ_CHECK(out);
    char *text = fuzz_cstr(data, size);
    if (strlen(text) == size) {
        char *inside = malloc(size + sizeof "{\"data\":}");
        FUZZ_CHECK(inside);
        int n = sprintf(inside, "{\"data\":%s}", text);
        spark_json *whole = spark_json_parse(inside, (size_t)n);
        FUZZ_CHECK((spark_json_set_raw(out, "data", text) == 0) == (whole != NULL));
        if (whole) check_text_round_trip(out);
        spark_json_free(whole);
        free(inside);
    }
    free(text);
    spark_json_free(out);
    spark_json_free(in);
    return 0;
}
