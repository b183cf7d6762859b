/*
 * test_router.c - route patterns, parameter extraction and percent-decoding.
 */
#include "router.h"

#include <check.h>
#include <stdlib.h>

START_TEST(valid_patterns) {
    ck_assert(spark_route_valid("/"));
    ck_assert(spark_route_valid("/spark"));
    ck_assert(spark_route_valid("/chat/:room_id"));
    ck_assert(spark_route_valid("/a/:x/b/:y"));
    ck_assert(!spark_route_valid(NULL));
    ck_assert(!spark_route_valid(""));
    ck_assert(!spark_route_valid("chat"));
    ck_assert(!spark_route_valid("/chat/"));
    ck_assert(!spark_route_valid("//chat"));
    ck_assert(!spark_route_valid("/chat/:"));
    ck_assert(!spark_route_valid("/chat/:room-id"));
    ck_assert(!spark_route_valid("/:a/:a"));
    ck_assert(spark_route_valid("/:a/:b/:c/:d"));
    ck_assert(!spark_route_valid("/:a/:b/:c/:d/:e"));
}
END_TEST

START_TEST(literal_routes) {
    ck_assert(spark_route_match("/spark", "/spark", NULL));
    ck_assert(!spark_route_match("/spark", "/spark/", NULL));
    ck_assert(!spark_route_match("/spark", "/sparks", NULL));
    ck_assert(!spark_route_match("/spark", "/", NULL));
    ck_assert(spark_route_match("/", "/", NULL));
}
END_TEST

START_TEST(params_are_extracted) {
    spark_route_params p;
    ck_assert(spark_route_match("/chat/:room_id", "/chat/lobby", &p));
    ck_assert_uint_eq(p.count, 1);
    ck_assert_str_eq(spark_route_param(&p, "room_id"), "lobby");
    ck_assert_ptr_null(spark_route_param(&p, "user_id"));

    ck_assert(spark_route_match("/a/:x/b/:y", "/a/1/b/two", &p));
    ck_assert_str_eq(spark_route_param(&p, "x"), "1");
    ck_assert_str_eq(spark_route_param(&p, "y"), "two");
}
END_TEST

START_TEST(segment_counts_must_agree) {
    ck_assert(!spark_route_match("/chat/:room_id", "/chat", NULL));
    ck_assert(!spark_route_match("/chat/:room_id", "/chat/", NULL));
    ck_assert(!spark_route_match("/chat/:room_id", "/chat/a/b", NULL));
    ck_assert(!spark_route_match("/chat/:room_id", "/notifications/a", NULL));
}
END_TEST

START_TEST(params_are_percent_decoded) {
    spark_route_params p;
    ck_assert(spark_route_match("/chat/:room", "/chat/caf%C3%A9%20bar", &p));
    ck_assert_str_eq(spark_route_param(&p, "room"), "caf\xc3\xa9 bar");
    /* Bad escapes, encoded slashes and control characters are refused. */
    ck_assert(!spark_route_match("/chat/:room", "/chat/a%2", &p));
    ck_assert(!spark_route_match("/chat/:room", "/chat/a%zz", &p));
    ck_assert(!spark_route_match("/chat/:room", "/chat/a%2Fb", &p));
    ck_assert(!spark_route_match("/chat/:room", "/chat/a%00", &p));
    ck_assert(!spark_route_match("/chat/:room", "/chat/a%0a", &p));
}
END_TEST

START_TEST(long_values_are_refused) {
    char path[600] = "/chat/";
    for (int i = 6; i < 6 + 300; i++)
        path[i] = 'x';
    path[306] = '\0';
    ck_assert(!spark_route_match("/chat/:room", path, NULL));
    path[6 + 255] = '\0';
    ck_assert(spark_route_match("/chat/:room", path, NULL));
}
END_TEST

/* The decoder that form fields share with path segments. */
START_TEST(form_values_decode_plus_as_space) {
    char out[16];
    ck_assert_int_eq(spark_url_decode("Ada+L%21", 8, true, out, sizeof out), 6);
    ck_assert_str_eq(out, "Ada L!");
    ck_assert_int_eq(spark_url_decode("a+b", 3, false, out, sizeof out), 3);
    ck_assert_str_eq(out, "a+b");
    /* Only n bytes are read: a field ends at its '&'. */
    ck_assert_int_eq(spark_url_decode("%2Fx&next=y", 4, true, out, sizeof out), 2);
    ck_assert_str_eq(out, "/x");
    ck_assert_int_eq(spark_url_decode("%2", 2, true, out, sizeof out), -1);
    ck_assert_int_eq(spark_url_decode("%g0", 3, true, out, sizeof out), -1);
    ck_assert_int_eq(spark_url_decode("0123456789abcdef", 16, true, out, sizeof out), -1);
    ck_assert_int_eq(spark_url_decode("0123456789abcde", 15, true, out, sizeof out), 15);
    ck_assert_int_eq(spark_url_decode("", 0, true, out, sizeof out), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

/* Where redirects may go: a path on this site, never one a browser
 * follows to another host. */
START_TEST(local_paths) {
    static const char *const local[] = {"/", "/login", "/todo/x?next=/a#b", "/a//b", "/%2F%2Fx"};
    for (size_t i = 0; i < sizeof local / sizeof *local; i++)
        ck_assert_msg(spark_path_is_local(local[i]), "%s", local[i]);
    static const char *const elsewhere[] = {NULL,
                                            "",
                                            "login",
                                            "https://evil.example/",
                                            "//evil.example",
                                            "/\\evil.example",
                                            "/a\\b",
                                            "javascript:alert(1)",
                                            "/a\nb",
                                            "/a\x7f"};
    for (size_t i = 0; i < sizeof elsewhere / sizeof *elsewhere; i++)
        ck_assert_msg(!spark_path_is_local(elsewhere[i]), "%s",
                      elsewhere[i] ? elsewhere[i] : "NULL");
}
END_TEST

int main(void) {
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("match");
    tcase_add_test(tc, valid_patterns);
    tcase_add_test(tc, literal_routes);
    tcase_add_test(tc, params_are_extracted);
    tcase_add_test(tc, segment_counts_must_agree);
    tcase_add_test(tc, params_are_percent_decoded);
    tcase_add_test(tc, long_values_are_refused);
    tcase_add_test(tc, form_values_decode_plus_as_space);
    tcase_add_test(tc, local_paths);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
