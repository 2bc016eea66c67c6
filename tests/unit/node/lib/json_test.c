/* tests/unit/node/lib/json_test.c: node/lib/json.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/json.h>

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

/* shoal_json_dump must write what jansson writes, byte for byte. */
static void assert_dump_matches_jansson(shoal_arena *arena, json_t *value)
{
    char *expected = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(expected);
    size_t length = 0;
    char *text = shoal_json_dump(arena, value, &length);
    if (text == NULL || strcmp(text, expected) != 0)
        fail_msg("jansson wrote '%s', shoal_json_dump '%s'", expected, text != NULL ? text : "(NULL)");
    assert_int_equal(length, strlen(expected));
    free(expected);
}

static void test_dump_matches_jansson_byte_for_byte(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{}", "[]", "[[],{},[{}]]", "0", "-1", "9223372036854775807", "-9223372036854775808",
        "0.0", "1.0", "-0.0", "0.1", "1.5e300", "-2.5e-7", "1e20", "1e-5", "123456789012345678.0",
        "5e-324", "1.7976931348623157e308", "3.141592653589793", "100000000000000000000000.0",
        "true", "false", "null", "\"\"",
        "\"plain ascii text with spaces\"",
        "\"\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\/ and \\u007f\"",
        "\"caf\\u00e9 \\u20ac \\ud83d\\ude00 \\u2028\\u2029 \\uffff\"",
        "{\"key \\\"quoted\\\"\":1,\"\\n\":[true,false,null],\"nested\":{\"a\":{\"b\":[1,2.5,\"x\"]}}}",
        "[1,-2,3.25,\"four\",{\"five\":5},[6]]",
    };
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_error_t error;
        json_t *value = json_loads(texts[i], JSON_DECODE_ANY, &error);
        if (value == NULL)
            fail_msg("test input '%s' does not parse: %s", texts[i], error.text);
        assert_dump_matches_jansson(&arena, value);
        json_decref(value);
    }

    /* A NUL inside a string or a key, which only jansson's length-aware
     * calls make. */
    json_t *with_nul = json_object();
    json_object_setn_new(with_nul, "a\0b", 3, json_stringn("x\0y", 3));
    assert_dump_matches_jansson(&arena, with_nul);
    json_decref(with_nul);

    /* Many reals and integers from a fixed pseudo-random sequence: every
     * bit pattern that is a finite double, and integers of every size. */
    uint64_t seed = 0x9e3779b97f4a7c15u;
    json_t *numbers = json_array();
    for (int i = 0; i < 20000; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        double real;
        memcpy(&real, &seed, sizeof real);
        if (real == real && real - real == 0) /* finite */
            json_array_append_new(numbers, json_real(real));
        json_array_append_new(numbers, json_integer((json_int_t)seed >> (seed % 64)));
    }
    assert_dump_matches_jansson(&arena, numbers);
    json_decref(numbers);
    shoal_arena_release(&arena);
}

static void test_dump_fails_like_jansson_on_invalid_utf8(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    static const char *const invalid[] = {
        "\xff", "a\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        json_t *value = json_pack("[s#]", "ok", 2);
        json_array_append_new(value, json_stringn_nocheck(invalid[i], strlen(invalid[i])));
        char *from_jansson = json_dumps(value, JSON_COMPACT);
        assert_null(from_jansson);
        assert_null(shoal_json_dump(&arena, value, NULL));
        json_decref(value);
    }
    shoal_arena_release(&arena);
}

static void test_dump_fails_on_a_value_that_contains_itself(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    json_t *array = json_array();
    json_t *object = json_object();
    json_object_set(object, "array", array);
    json_array_append(array, object);
    assert_null(shoal_json_dump(&arena, array, NULL));
    json_array_clear(array); /* breaks the cycle, so both can be freed */
    json_decref(object);
    json_decref(array);
    shoal_arena_release(&arena);
}

static void test_writer_writes_compact_json(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[4096];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    shoal_json_writer *out = shoal_json_writer_new(&arena);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "message");
    shoal_json_write_string(out, "Hello, World!");
    shoal_json_write_key(out, "list");
    shoal_json_open_array(out);
    shoal_json_write_integer(out, -42);
    shoal_json_write_real(out, 0.5);
    shoal_json_write_bool(out, true);
    shoal_json_write_bool(out, false);
    shoal_json_write_null(out);
    shoal_json_write_string(out, NULL);
    shoal_json_write_string_n(out, "ab\"cd", 3);
    shoal_json_open_object(out);
    shoal_json_close_object(out);
    shoal_json_open_array(out);
    shoal_json_close_array(out);
    shoal_json_write_raw(out, "{\"cached\":1}", 12);
    json_t *value = json_pack("{s:[i,s]}", "from", 1, "jansson");
    shoal_json_write_value(out, value);
    json_decref(value);
    shoal_json_close_array(out);
    shoal_json_write_key(out, "tab\there");
    shoal_json_write_integer(out, 0);
    shoal_json_close_object(out);
    size_t length = 0;
    const char *text = shoal_json_writer_text(out, &length);
    assert_non_null(text);
    assert_string_equal(text, "{\"message\":\"Hello, World!\",\"list\":[-42,0.5,true,false,null,null,\"ab\\\"\","
                              "{},[],{\"cached\":1},{\"from\":[1,\"jansson\"]}],\"tab\\there\":0}");
    assert_int_equal(length, strlen(text));
    /* All of it came from the arena's own block. */
    assert_null(arena.blocks);

    shoal_json_writer *scalar = shoal_json_writer_new(&arena);
    shoal_json_write_integer(scalar, INT64_MIN);
    assert_string_equal(shoal_json_writer_text(scalar, NULL), "-9223372036854775808");
    shoal_arena_release(&arena);
}

static void test_writer_fails_on_misuse_and_stays_failed(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    shoal_json_writer *out;

    out = shoal_json_writer_new(&arena); /* a key in an array */
    shoal_json_open_array(out);
    shoal_json_write_key(out, "k");
    shoal_json_close_array(out);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* a value without its key */
    shoal_json_open_object(out);
    shoal_json_write_integer(out, 1);
    shoal_json_close_object(out);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* a key without its value */
    shoal_json_open_object(out);
    shoal_json_write_key(out, "k");
    shoal_json_close_object(out);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* the wrong closing bracket */
    shoal_json_open_object(out);
    shoal_json_close_array(out);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* still open */
    shoal_json_open_array(out);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* nothing written */
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* two values at the top */
    shoal_json_write_integer(out, 1);
    shoal_json_write_integer(out, 2);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* numbers JSON does not have */
    shoal_json_write_real(out, 0.0 / 0.0);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* invalid UTF-8, then valid calls */
    shoal_json_open_array(out);
    shoal_json_write_string(out, "\xc3\x28");
    shoal_json_write_string(out, "fine");
    shoal_json_close_array(out);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* deeper than the limit */
    for (int i = 0; i <= SHOAL_JSON_WRITER_MAX_DEPTH; i++)
        shoal_json_open_array(out);
    for (int i = 0; i <= SHOAL_JSON_WRITER_MAX_DEPTH; i++)
        shoal_json_close_array(out);
    assert_null(shoal_json_writer_text(out, NULL));

    out = shoal_json_writer_new(&arena); /* exactly at the limit is fine */
    for (int i = 0; i < SHOAL_JSON_WRITER_MAX_DEPTH; i++)
        shoal_json_open_array(out);
    for (int i = 0; i < SHOAL_JSON_WRITER_MAX_DEPTH; i++)
        shoal_json_close_array(out);
    assert_non_null(shoal_json_writer_text(out, NULL));

    /* A NULL writer (out of memory) takes every call and yields no text. */
    shoal_json_open_object(NULL);
    shoal_json_write_key(NULL, "k");
    shoal_json_write_string(NULL, "v");
    shoal_json_write_value(NULL, NULL);
    shoal_json_close_object(NULL);
    assert_null(shoal_json_writer_text(NULL, NULL));
    shoal_arena_release(&arena);
}

static void test_writer_grows_in_place_while_nothing_else_is_allocated(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[8192];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    shoal_json_writer *out = shoal_json_writer_new(&arena);
    shoal_json_open_array(out);
    for (int i = 0; i < 1000; i++)
        shoal_json_write_integer(out, i);
    shoal_json_close_array(out);
    size_t length = 0;
    const char *text = shoal_json_writer_text(out, &length);
    assert_non_null(text);
    assert_int_equal(length, 3891); /* 10 + 90 * 2 + 900 * 3 digits, 999 commas, 2 brackets */
    /* Grown from 256 bytes to past 3,891 without leaving old copies behind:
     * what the arena handed out is the writer and one buffer. */
    assert_true(arena.inline_used < 4096 + 512);
    assert_null(arena.blocks);
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
    /* A run of plain text that fills the room exactly, then one past it. */
    assert_int_equal(shoal_json_escape("abc", four, sizeof four), 3);
    assert_string_equal(four, "abc");
    assert_int_equal(shoal_json_escape("ab\"", four, sizeof four), 2);
    assert_string_equal(four, "ab");
    assert_int_equal(shoal_json_escape("\"abcd", four, sizeof four), 3);
    assert_string_equal(four, "\\\"a");

    char one[1] = {'x'};
    assert_int_equal(shoal_json_escape("abc", one, sizeof one), 0);
    assert_int_equal(one[0], '\0');
    char none = 'x';
    assert_int_equal(shoal_json_escape("abc", &none, 0), 0);
    assert_int_equal(none, 'x');
}

static void test_utf8_valid_follows_jansson(void **state)
{
    (void)state;
    assert_true(shoal_utf8_valid("", 0));
    assert_true(shoal_utf8_valid("plain", 5));
    assert_true(shoal_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9f", 14));
    /* A stray continuation byte, a lead without its continuation, an
     * overlong '/', a surrogate, past U+10FFFF, 0xff. */
    assert_false(shoal_utf8_valid("\x80", 1));
    assert_false(shoal_utf8_valid("a\xc3", 2));
    assert_false(shoal_utf8_valid("\xc0\xaf", 2));
    assert_false(shoal_utf8_valid("\xed\xa0\x80", 3));
    assert_false(shoal_utf8_valid("\xf4\x90\x80\x80", 4));
    assert_false(shoal_utf8_valid("\xff\xfe", 2));
    /* Only length bytes count. */
    assert_true(shoal_utf8_valid("ok\xff", 2));
    assert_true(shoal_utf8_valid("/articles\xff", 9));
    /* Past and across the eight-byte steps of plain ASCII. */
    assert_true(shoal_utf8_valid("/articles/how-to-train", 22));
    assert_true(shoal_utf8_valid("/article\xc3\xa9s/caf\xc3\xa9", 17));
    assert_true(shoal_utf8_valid("/artic\xf0\x9f\x98\x80les/", 14));
    assert_false(shoal_utf8_valid("/article\xff", 9));
    assert_false(shoal_utf8_valid("/articles/longer\x80", 17));
    assert_false(shoal_utf8_valid("/article\xc3/", 10));
    assert_false(shoal_utf8_valid("/artic\xf0\x9f\x98", 9));
}

static void test_valid_utf8_replaces_only_what_is_not(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[256];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    const char *valid = "caf\xc3\xa9 \xf0\x9f\x98\x80";
    assert_ptr_equal(shoal_json_valid_utf8(&arena, valid), valid); /* no copy when nothing is wrong */
    /* A lone continuation byte, a cut sequence, an overlong form, a surrogate. */
    const char *fixed = shoal_json_valid_utf8(&arena, "a\x80" "b\xc3\xc0\xaf" "c\xed\xa0\x80" "d");
    assert_string_equal(fixed, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "d");
    shoal_arena_release(&arena);
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
        cmocka_unit_test(test_dump_matches_jansson_byte_for_byte),
        cmocka_unit_test(test_dump_fails_like_jansson_on_invalid_utf8),
        cmocka_unit_test(test_dump_fails_on_a_value_that_contains_itself),
        cmocka_unit_test(test_writer_writes_compact_json),
        cmocka_unit_test(test_writer_fails_on_misuse_and_stays_failed),
        cmocka_unit_test(test_writer_grows_in_place_while_nothing_else_is_allocated),
        cmocka_unit_test(test_escape_quotes_backslashes_and_control_characters),
        cmocka_unit_test(test_escape_keeps_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(test_escape_output_is_valid_json_for_malformed_utf8),
        cmocka_unit_test(test_escape_truncates_on_a_character_boundary),
        cmocka_unit_test(test_utf8_valid_follows_jansson),
        cmocka_unit_test(test_valid_utf8_replaces_only_what_is_not),
    };
    return cmocka_run_group_tests_name("node/json", tests, NULL, NULL);
}
