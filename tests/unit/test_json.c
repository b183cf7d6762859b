/*
 * test_json.c - the public JSON helpers (json.c): what spark_json_parse
 * accepts, and that spark_json_text writes what parses again.
 */
#include <spark/json.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

static spark_json *parse(const char *text) { return spark_json_parse(text, strlen(text)); }

/* Found by tests/fuzz/fuzz_json.c: a number or literal that ends the text
 * was refused, so "0 " parsed and its own text "0" did not. */
START_TEST(scalars_at_the_end_of_the_text) {
    static const char *const ok[] = {"0",     "42",   "-1.5", "1e3",  "true",
                                     "false", "null", "0 ",   "\"s\""};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        spark_json *j = parse(ok[i]);
        ck_assert_msg(j != NULL, "%s", ok[i]);
        size_t len = 0;
        const char *text = spark_json_text(j, &len);
        spark_json *again = spark_json_parse(text, len);
        ck_assert_msg(again != NULL, "%s -> %s", ok[i], text);
        ck_assert_str_eq(spark_json_text(again, NULL), text);
        spark_json_free(again);
        spark_json_free(j);
    }
    /* Also found by the fuzzer: json-c alone reads "-06e" and writes it back
     * as "-06", which reads as -6. */
    static const char *const bad[] = {"",  "nul", "tru",  "[1", "1 2", "{}x",
                                      "-", "\"s", "-06e", "06", "1e",  "[1,]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse(bad[i]) == NULL, "%s", bad[i]);
}
END_TEST

/* json-c reads these and cannot write them back as they came: NaN and
 * Infinity come out as bare words that JSON.parse and PostgreSQL refuse,
 * 1e999 is no double, and integers past 64 bits are clamped in silence. */
START_TEST(numbers_that_would_change_are_refused) {
    static const char *const bad[] = {"NaN",
                                      "Infinity",
                                      "-Infinity",
                                      "{\"a\":[1,NaN]}",
                                      "1e999",
                                      "-1e999",
                                      "9223372036854775808",
                                      "18446744073709551616",
                                      "-9223372036854775809",
                                      "{\"deep\":{\"n\":123456789012345678901234567890}}",
                                      "\"\xc3\x28\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse(bad[i]) == NULL, "%s", bad[i]);
    static const char *const ok[] = {"9223372036854775807", "-9223372036854775807", "1e308", "-0.0",
                                     "\"caf\xc3\xa9\""};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        spark_json *j = parse(ok[i]);
        ck_assert_msg(j != NULL, "%s", ok[i]);
        spark_json_free(j);
    }
}
END_TEST

START_TEST(objects_and_fields) {
    spark_json *j = parse("{\"action\":\"resume\",\"since\":42}");
    ck_assert(spark_json_is_object(j));
    long long since = 0;
    ck_assert_str_eq(spark_json_str(j, "action"), "resume");
    ck_assert(spark_json_int(j, "since", &since));
    ck_assert_int_eq(since, 42);
    ck_assert_int_eq(spark_json_set_raw(j, "n", "7"), 0);
    ck_assert(spark_json_int(j, "n", &since));
    ck_assert_int_eq(since, 7);
    spark_json_free(j);
}
END_TEST

int main(void) {
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, scalars_at_the_end_of_the_text);
    tcase_add_test(tc, objects_and_fields);
    tcase_add_test(tc, numbers_that_would_change_are_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
