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

/* "[[...]]" nested `levels` deep, in a buffer the caller frees. */
static char *nested_arrays(int levels) {
    char *text = malloc((size_t)levels * 2 + 1);
    ck_assert_ptr_nonnull(text);
    for (int i = 0; i < levels; i++)
        text[i] = '[', text[levels * 2 - 1 - i] = ']';
    text[levels * 2] = '\0';
    return text;
}

/* A raw value goes one level deeper than it was: set_raw takes what still
 * parses once inside the object, and what spark_json_text then writes
 * parses again. */
START_TEST(a_raw_value_nests_no_deeper_than_a_parse_reads) {
    char *deepest = nested_arrays(31), *too_deep = nested_arrays(32);
    spark_json *whole = spark_json_parse(too_deep, strlen(too_deep));
    ck_assert_ptr_nonnull(whole); /* alone, 32 levels read */
    spark_json_free(whole);
    spark_json *j = spark_json_object();
    ck_assert_int_eq(spark_json_set_raw(j, "data", too_deep), -1);
    ck_assert(!spark_json_has(j, "data"));
    ck_assert_int_eq(spark_json_set_raw(j, "data", deepest), 0);
    size_t len = 0;
    const char *text = spark_json_text(j, &len);
    whole = spark_json_parse(text, len);
    ck_assert_ptr_nonnull(whole);
    spark_json_free(whole);
    spark_json_free(j);
    free(deepest);
    free(too_deep);
}
END_TEST

/* Numbers read from numbers and from strings that are numbers, as
 * browsers send form values; anything else is absent. */
START_TEST(numbers_from_numbers_and_numeric_strings) {
    spark_json *j = parse("{\"i\":42,\"s\":\"-7\",\"f\":1.5,\"fs\":\"2.5e1\",\"sp\":\" 4\","
                          "\"x\":\"4x\",\"inf\":\"inf\",\"nan\":\"nan\",\"hex\":\"0x10\","
                          "\"big\":\"1e999\",\"b\":true,\"e\":\"\"}");
    long long n = 0;
    double d = 0;
    ck_assert(spark_json_int(j, "i", &n) && n == 42);
    ck_assert(spark_json_int(j, "s", &n) && n == -7);
    ck_assert(!spark_json_int(j, "f", &n));  /* a fraction is not an integer */
    ck_assert(!spark_json_int(j, "fs", &n)); /* nor an exponent */
    ck_assert(spark_json_double(j, "i", &d) && d == 42);
    ck_assert(spark_json_double(j, "s", &d) && d == -7);
    ck_assert(spark_json_double(j, "f", &d) && d == 1.5);
    ck_assert(spark_json_double(j, "fs", &d) && d == 25);
    static const char *const absent[] = {"sp", "x", "inf", "nan", "hex", "big", "b", "e", "none"};
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++) {
        ck_assert_msg(!spark_json_int(j, absent[i], &n), "%s", absent[i]);
        ck_assert_msg(!spark_json_double(j, absent[i], &d), "%s", absent[i]);
    }
    ck_assert_int_eq(spark_json_set_double(j, "d", 0.25), 0);
    ck_assert(spark_json_double(j, "d", &d) && d == 0.25);
    ck_assert_int_eq(spark_json_set_double(j, "d", 1.0 / 0.0), -1);
    spark_json_free(j);
}
END_TEST

int main(void) {
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, scalars_at_the_end_of_the_text);
    tcase_add_test(tc, objects_and_fields);
    tcase_add_test(tc, a_raw_value_nests_no_deeper_than_a_parse_reads);
    tcase_add_test(tc, numbers_that_would_change_are_refused);
    tcase_add_test(tc, numbers_from_numbers_and_numeric_strings);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
