/* tests/unit/node/json_test.c: node/json.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int depth(const char *text, int limit)
{
    return shoal_json_depth(text, strlen(text), limit);
}

/* "[[[...]]]" nested n deep, in a heap buffer the caller frees. */
static char *nested_arrays(int n)
{
    char *text = malloc((size_t)n * 2 + 1);
    assert_non_null(text);
    memset(text, '[', (size_t)n);
    memset(text + n, ']', (size_t)n);
    text[2 * n] = '\0';
    return text;
}

static shoal_json_result parse(const char *text, int max_depth, json_t **out)
{
    char message[256];
    return shoal_json_parse(text, strlen(text), max_depth, out, message, sizeof message);
}

static void assert_parse_result(const char *text, int max_depth, shoal_json_result expected)
{
    json_t *value = (json_t *)1;
    char message[256] = "";
    shoal_json_result result = shoal_json_parse(text, strlen(text), max_depth, &value, message, sizeof message);
    if (result != expected)
        fail_msg("parsing '%s' gave %d, not %d (%s)", text, result, expected, message);
    if (expected == SHOAL_JSON_OK) {
        assert_non_null(value);
        json_decref(value);
    } else {
        assert_null(value);
        assert_true(message[0] != '\0');
    }
}

static void test_depth_counts_open_arrays_and_objects(void **state)
{
    (void)state;
    assert_int_equal(depth("1", 10), 0);
    assert_int_equal(depth("\"text\"", 10), 0);
    assert_int_equal(depth("[]", 10), 1);
    assert_int_equal(depth("{\"a\":[{\"b\":[]}]}", 10), 4);
    /* The maximum at any moment, not the number of brackets. */
    assert_int_equal(depth("[[],[],[[]]]", 10), 3);
}

static void test_depth_ignores_brackets_inside_strings(void **state)
{
    (void)state;
    assert_int_equal(depth("[\"[[[{{{\"]", 10), 1);
    assert_int_equal(depth("{\"a]}\":\"}}]]\"}", 10), 1);
    /* An escaped quote does not end the string, an escaped backslash does not escape the quote. */
    assert_int_equal(depth("[\"\\\"[[[\"]", 10), 1);
    assert_int_equal(depth("[\"\\\\\",[[1]]]", 10), 3);
}

static void test_depth_stops_counting_past_the_limit(void **state)
{
    (void)state;
    char *deep = nested_arrays(10000);
    assert_int_equal(shoal_json_depth(deep, strlen(deep), 32), 33);
    assert_int_equal(shoal_json_depth(deep, strlen(deep), 10000), 10000);
    free(deep);
    /* Only length bytes are read. */
    assert_int_equal(shoal_json_depth("[[[[", 2, 10), 2);
}

static void test_parse_accepts_any_top_level_value(void **state)
{
    (void)state;
    json_t *value = NULL;
    assert_int_equal(parse("{\"title\":\"How to\",\"n\":[1,2.5,true,null]}", 32, &value), SHOAL_JSON_OK);
    assert_string_equal(json_string_value(json_object_get(value, "title")), "How to");
    assert_int_equal(json_array_size(json_object_get(value, "n")), 4);
    json_decref(value);

    assert_parse_result("42", 32, SHOAL_JSON_OK);
    assert_parse_result("\"text\"", 32, SHOAL_JSON_OK);
    assert_parse_result("null", 32, SHOAL_JSON_OK);
    assert_parse_result("  [ ]\r\n", 32, SHOAL_JSON_OK);
    assert_parse_result("\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\"", 32, SHOAL_JSON_OK);
}

static void test_parse_reports_empty_for_no_bytes_or_only_whitespace(void **state)
{
    (void)state;
    assert_parse_result("", 32, SHOAL_JSON_EMPTY);
    assert_parse_result(" \t\r\n", 32, SHOAL_JSON_EMPTY);
    json_t *value = (json_t *)1;
    assert_int_equal(shoal_json_parse(NULL, 0, 32, &value, NULL, 0), SHOAL_JSON_EMPTY);
    assert_null(value);
}

static void test_parse_reports_malformed_json(void **state)
{
    (void)state;
    static const char *const malformed[] = {
        "{",
        "[1,]",
        "{'a':1}",
        "[1] [2]",
        "nul",
        "{\"a\":1,\"a\":2}",  /* duplicate keys */
        "\"\\u0000\"",        /* NUL, which C strings cannot carry */
        "\"\xff\"",           /* not UTF-8 */
        "\"\xc3\"",           /* truncated UTF-8 */
        "\"\xc0\xaf\"",       /* overlong UTF-8 */
        "\"\\ud800\"",        /* lone surrogate */
        "\"tab\there\"",      /* raw control character */
        " \v ",               /* vertical tab is not JSON whitespace */
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert_parse_result(malformed[i], 32, SHOAL_JSON_MALFORMED);
}

static void test_parse_rejects_a_raw_nul_byte(void **state)
{
    (void)state;
    static const char text[] = "[1,\0 2]";
    json_t *value = NULL;
    assert_int_equal(shoal_json_parse(text, sizeof text - 1, 32, &value, NULL, 0), SHOAL_JSON_MALFORMED);
    assert_null(value);
}

static void test_parse_depth_limit_is_inclusive(void **state)
{
    (void)state;
    char *at_limit = nested_arrays(32);
    char *past_limit = nested_arrays(33);
    assert_parse_result(at_limit, 32, SHOAL_JSON_OK);
    assert_parse_result(past_limit, 32, SHOAL_JSON_TOO_DEEP);
    free(at_limit);
    free(past_limit);

    assert_parse_result("{\"a\":{\"b\":{}}}", 3, SHOAL_JSON_OK);
    assert_parse_result("{\"a\":{\"b\":{\"c\":[]}}}", 3, SHOAL_JSON_TOO_DEEP);
    /* Far deeper than jansson's own limit: refused before parsing. */
    char *huge = nested_arrays(100000);
    assert_parse_result(huge, 32, SHOAL_JSON_TOO_DEEP);
    free(huge);
}

static void test_dump_is_compact_and_arena_owned(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[256];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    json_t *value = json_pack("{s:s, s:[i,b,n]}", "title", "a \"b\"", "list", 1, 1);
    size_t length = 0;
    char *text = shoal_json_dump(&arena, value, &length);
    assert_non_null(text);
    assert_string_equal(text, "{\"title\":\"a \\\"b\\\"\",\"list\":[1,true,null]}");
    assert_int_equal(length, strlen(text));
    /* The value is not stolen. */
    assert_int_equal(value->refcount, 1);
    json_decref(value);

    json_t *scalar = json_integer(-7);
    assert_string_equal(shoal_json_dump(&arena, scalar, NULL), "-7");
    json_decref(scalar);
    shoal_arena_release(&arena);
}

static void test_dump_grows_past_its_first_guess(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    json_t *list = json_array();
    for (int i = 0; i < 5000; i++)
        json_array_append_new(list, json_integer(i));
    char *big_string = malloc(100001);
    memset(big_string, 'x', 100000);
    big_string[100000] = '\0';
    json_t *value = json_pack("{s:o, s:s}", "list", list, "text", big_string);

    size_t length = 0;
    char *text = shoal_json_dump(&arena, value, &length);
    assert_non_null(text);
    assert_int_equal(length, strlen(text));
    json_t *again = json_loads(text, 0, NULL);
    assert_non_null(again);
    assert_true(json_equal(again, value));
    json_decref(again);
    json_decref(value);
    free(big_string);
    shoal_arena_release(&arena);
}

static size_t escape(const char *text, char *out, size_t size)
{
    size_t written = shoal_json_escape(text, out, size);
    assert_int_equal(written, strlen(out));
    assert_true(written < size);
    return written;
}

static void test_escape_quotes_backslashes_and_control_characters(void **state)
{
    (void)state;
    char out[128];
    escape("plain text", out, sizeof out);
    assert_string_equal(out, "plain text");
    escape("say \"hi\" \\ bye", out, sizeof out);
    assert_string_equal(out, "say \\\"hi\\\" \\\\ bye");
    escape("line\nbreak\ttab\r\x01\x1f\x7f", out, sizeof out);
    assert_string_equal(out, "line\\u000abreak\\u0009tab\\u000d\\u0001\\u001f\\u007f");
    escape("", out, sizeof out);
    assert_string_equal(out, "");
}

static void test_escape_keeps_utf8_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    char out[128];
    escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", out, sizeof out);
    assert_string_equal(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    escape("a\xff" "b", out, sizeof out);
    assert_string_equal(out, "a\\ufffdb");
    /* A lead byte without its continuation. */
    escape("\xc3(", out, sizeof out);
    assert_string_equal(out, "\\ufffd(");
    escape("\xe2\x82", out, sizeof out);
    assert_string_equal(out, "\\ufffd\\ufffd");
    escape("\x80", out, sizeof out);
    assert_string_equal(out, "\\ufffd");
}

/* The output goes between quotes in a log line, so it must be a valid JSON
 * string body for any input, including byte sequences that look like UTF-8
 * but are not: overlong forms, surrogates, code points past U+10FFFF. */
static void test_escape_output_is_valid_json_for_malformed_utf8(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "\xc0\xaf",             /* overlong '/' */
        "\xc1\xbf",             /* overlong */
        "\xe0\x80\xaf",         /* overlong '/' in three bytes */
        "\xed\xa0\x80",         /* UTF-16 surrogate U+D800 */
        "\xf4\x90\x80\x80",     /* U+110000 */
        "\xf5\x80\x80\x80",     /* lead byte never valid */
        "\xf8\x88\x80\x80\x80", /* five-byte form */
    };
    int invalid = 0;
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char out[64];
        char quoted[70];
        escape(inputs[i], out, sizeof out);
        snprintf(quoted, sizeof quoted, "\"%s\"", out);
        json_error_t error;
        json_t *value = json_loads(quoted, JSON_DECODE_ANY, &error);
        if (value == NULL) {
            print_error("input %zu escaped to invalid JSON: %s\n", i, error.text);
            invalid++;
        }
        json_decref(value);
    }
    assert_int_equal(invalid, 0);
}

static void test_escape_truncates_on_a_character_boundary(void **state)
{
    (void)state;
    char out[8];
    /* "abc" + "\u000a" would need 9 bytes with the NUL. */
    assert_int_equal(shoal_json_escape("abc\nxyz", out, sizeof out), 3);
    assert_string_equal(out, "abc");

    char small[5];
    /* "ab" + the 3-byte euro sign leaves no room for the NUL: the sign goes whole. */
    assert_int_equal(shoal_json_escape("ab\xe2\x82\xac", small, sizeof small), 2);
    assert_string_equal(small, "ab");

    char four[4];
    assert_int_equal(shoal_json_escape("a\"b", four, sizeof four), 3);
    assert_string_equal(four, "a\\\"");
    assert_int_equal(shoal_json_escape("abcdef", four, sizeof four), 3);
    assert_string_equal(four, "abc");

    char one[1] = {'x'};
    assert_int_equal(shoal_json_escape("abc", one, sizeof one), 0);
    assert_int_equal(one[0], '\0');
    char none = 'x';
    assert_int_equal(shoal_json_escape("abc", &none, 0), 0);
    assert_int_equal(none, 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_counts_open_arrays_and_objects),
        cmocka_unit_test(test_depth_ignores_brackets_inside_strings),
        cmocka_unit_test(test_depth_stops_counting_past_the_limit),
        cmocka_unit_test(test_parse_accepts_any_top_level_value),
        cmocka_unit_test(test_parse_reports_empty_for_no_bytes_or_only_whitespace),
        cmocka_unit_test(test_parse_reports_malformed_json),
        cmocka_unit_test(test_parse_rejects_a_raw_nul_byte),
        cmocka_unit_test(test_parse_depth_limit_is_inclusive),
        cmocka_unit_test(test_dump_is_compact_and_arena_owned),
        cmocka_unit_test(test_dump_grows_past_its_first_guess),
        cmocka_unit_test(test_escape_quotes_backslashes_and_control_characters),
        cmocka_unit_test(test_escape_keeps_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(test_escape_output_is_valid_json_for_malformed_utf8),
        cmocka_unit_test(test_escape_truncates_on_a_character_boundary),
    };
    return cmocka_run_group_tests_name("node/json", tests, NULL, NULL);
}
