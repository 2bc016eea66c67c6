/* tests/unit/node/services/techempower/json_text_test.c: node/services/techempower/json_text.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <string.h>

#include "techempower/json_text.h"

static shoal_arena arena;

static int setup(void **state)
{
    (void)state;
    shoal_arena_init(&arena, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    shoal_arena_release(&arena);
    return 0;
}

static void test_message_object(void **state)
{
    (void)state;
    size_t length = 0;
    const char *text = bench_json_message(&arena, "Hello, World!", &length);
    assert_string_equal(text, "{\"message\":\"Hello, World!\"}");
    assert_int_equal(length, strlen(text));
}

static void test_message_is_escaped_and_parses_back(void **state)
{
    (void)state;
    const char *message = "quote \" backslash \\ newline \n tab \t bell \a UTF-8 \xe3\x83\x95";
    size_t length = 0;
    const char *text = bench_json_message(&arena, message, &length);
    assert_string_equal(text, "{\"message\":\"quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007 "
                              "UTF-8 \xe3\x83\x95\"}");
    json_error_t error;
    json_t *parsed = json_loadb(text, length, 0, &error);
    assert_non_null(parsed);
    assert_string_equal(json_string_value(json_object_get(parsed, "message")), message);
    json_decref(parsed);
}

static void test_one_world_has_exactly_id_and_random_number(void **state)
{
    (void)state;
    store_world world = {.id = 4174, .random_number = 331};
    size_t length = 0;
    const char *text = bench_json_world(&arena, &world, &length);
    assert_string_equal(text, "{\"id\":4174,\"randomNumber\":331}");
    assert_int_equal(length, strlen(text));
    store_world extremes = {.id = INT_MIN, .random_number = INT_MAX};
    assert_string_equal(bench_json_world(&arena, &extremes, &length),
                        "{\"id\":-2147483648,\"randomNumber\":2147483647}");
}

static void test_worlds_are_an_array_of_any_length(void **state)
{
    (void)state;
    size_t length = 0;
    assert_string_equal(bench_json_worlds(&arena, NULL, 0, &length), "[]");
    store_world worlds[3] = {{1, 10000}, {10000, 1}, {0, 0}};
    const char *text = bench_json_worlds(&arena, worlds, 3, &length);
    assert_string_equal(text, "[{\"id\":1,\"randomNumber\":10000},{\"id\":10000,\"randomNumber\":1},"
                              "{\"id\":0,\"randomNumber\":0}]");
    assert_int_equal(length, strlen(text));

    /* The largest answer fits the size reserved for it. */
    store_world many[500];
    for (int i = 0; i < 500; i++)
        many[i] = (store_world){INT_MIN, INT_MIN};
    text = bench_json_worlds(&arena, many, 500, &length);
    json_error_t error;
    json_t *parsed = json_loadb(text, length, 0, &error);
    assert_non_null(parsed);
    assert_int_equal(json_array_size(parsed), 500);
    json_decref(parsed);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_message_object),
        TEST(test_message_is_escaped_and_parses_back),
        TEST(test_one_world_has_exactly_id_and_random_number),
        TEST(test_worlds_are_an_array_of_any_length),
    };
    return cmocka_run_group_tests_name("node/services/techempower/json_text", tests, NULL, NULL);
}
