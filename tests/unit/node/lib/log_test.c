/* tests/unit/node/lib/log_test.c: node/lib/log.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include <shoal/log.h>

#include "main_capture.h"

static json_t *parse_line(const char *line)
{
    json_error_t error;
    json_t *value = json_loads(line, JSON_DISABLE_EOF_CHECK, &error);
    if (value == NULL)
        fail_msg("not a JSON line: %s (%s)", line, error.text);
    return value;
}

static void assert_time_format(const char *text)
{
    regex_t pattern;
    assert_int_equal(regcomp(&pattern, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                             REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&pattern, text, 0, NULL, 0) != 0)
        fail_msg("not a UTC time with milliseconds: %s", text);
    regfree(&pattern);
}

static void write_access_lines(void *unused)
{
    (void)unused;
    shoal_observation plain = {
        .method = "GET", .path = "/articles/feed", .status = 200, .duration_ns = 1234567,
        .request_id = "abc-123", .response_bytes = 27,
    };
    shoal_log_access(&plain);
    shoal_observation odd = {
        .method = "PO\"ST", .path = "/a\\b\n\x01\xff", .status = 499, .duration_ns = 999,
        .request_id = NULL, .response_bytes = (uint64_t)1 << 40,
    };
    shoal_log_access(&odd);
    shoal_observation slow = {.method = "GET", .path = "/", .status = 503, .duration_ns = 12000000000ull};
    shoal_log_access(&slow);
}

static void test_access_lines_are_json_with_every_field(void **state)
{
    (void)state;
    shoal_log_set_node("node \"7\"");
    char *output = capture_stderr(write_access_lines, NULL);
    char *lines[3];
    char *cursor = output;
    for (int i = 0; i < 3; i++) {
        char *end = strchr(cursor, '\n');
        assert_non_null(end);
        *end = '\0';
        lines[i] = cursor;
        cursor = end + 1;
    }
    assert_string_equal(cursor, "");

    json_t *first = parse_line(lines[0]);
    assert_time_format(json_string_value(json_object_get(first, "time")));
    assert_string_equal(json_string_value(json_object_get(first, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(first, "node")), "node \"7\"");
    assert_string_equal(json_string_value(json_object_get(first, "event")), "request");
    assert_string_equal(json_string_value(json_object_get(first, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(first, "path")), "/articles/feed");
    assert_int_equal(json_integer_value(json_object_get(first, "status")), 200);
    assert_string_equal(json_string_value(json_object_get(first, "request_id")), "abc-123");
    assert_int_equal(json_integer_value(json_object_get(first, "bytes")), 27);
    /* As printf's %.3f writes the milliseconds. */
    assert_non_null(strstr(lines[0], "\"duration_ms\":1.235,"));
    json_decref(first);

    json_t *second = parse_line(lines[1]);
    assert_string_equal(json_string_value(json_object_get(second, "method")), "PO\"ST");
    assert_string_equal(json_string_value(json_object_get(second, "path")), "/a\\b\n\x01\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(second, "request_id")), "");
    assert_non_null(strstr(lines[1], "\"duration_ms\":0.001,"));
    assert_non_null(strstr(lines[1], "\"bytes\":1099511627776,"));
    json_decref(second);

    assert_non_null(strstr(lines[2], "\"status\":503,\"duration_ms\":12000.000,"));
    shoal_log_set_node("node");
}

static void test_time_text_is_utc_with_milliseconds(void **state)
{
    (void)state;
    char text[40];
    shoal_log_format_time(text, sizeof text);
    assert_time_format(text);
    /* Twice within a second: the cached part is reused, the milliseconds not. */
    char again[40];
    shoal_log_format_time(again, sizeof again);
    assert_time_format(again);
    char small[10] = "unchanged";
    shoal_log_format_time(small, sizeof small);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_lines_are_json_with_every_field),
        cmocka_unit_test(test_time_text_is_utc_with_milliseconds),
    };
    return cmocka_run_group_tests_name("node/log", tests, NULL, NULL);
}
