/* tests/unit/node/lib/log_test.c: node/lib/log.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shoal/log.h>

#include "log_lines.h"
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

/* stderr into a pipe whose read end does not block, so that a test can
 * look at what has been written so far, step by step. */
typedef struct stderr_pipe {
    int saved;
    int read_end;
    char text[3 * PIPE_BUF];
    size_t length;
} stderr_pipe;

static void stderr_into_pipe(stderr_pipe *p)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    fflush(stderr);
    p->saved = dup(STDERR_FILENO);
    assert_true(p->saved >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    close(fds[1]);
    p->read_end = fds[0];
    p->length = 0;
}

/* Everything written since the last call, as text. */
static const char *written_since(stderr_pipe *p)
{
    p->length = 0;
    ssize_t got;
    while (p->length < sizeof p->text - 1 &&
           (got = read(p->read_end, p->text + p->length, sizeof p->text - 1 - p->length)) > 0)
        p->length += (size_t)got;
    p->text[p->length] = '\0';
    return p->text;
}

static void stderr_back(stderr_pipe *p)
{
    assert_true(dup2(p->saved, STDERR_FILENO) >= 0);
    close(p->saved);
    close(p->read_end);
}

static void log_request(const char *path)
{
    shoal_observation observation = {.method = "GET", .path = path, .status = 200, .request_id = "r"};
    shoal_log_access(&observation);
}

static size_t count_lines(const char *text)
{
    size_t lines = 0;
    for (; *text != '\0'; text++)
        lines += *text == '\n';
    return lines;
}

static void test_held_access_lines_wait_for_the_flush(void **state)
{
    (void)state;
    stderr_pipe p;
    stderr_into_pipe(&p);
    shoal_log_hold_lines(true);
    log_request("/first");
    log_request("/second");
    assert_string_equal(written_since(&p), "");
    shoal_log_flush_lines();
    const char *both = written_since(&p);
    assert_int_equal(count_lines(both), 2);
    assert_true(strstr(both, "/first") < strstr(both, "/second"));
    shoal_log_flush_lines(); /* nothing held: nothing written */
    assert_string_equal(written_since(&p), "");

    /* Any other line writes the held ones first, keeping the order. */
    log_request("/third");
    shoal_log(SHOAL_LOG_WARNING, "test", "after the third");
    const char *ordered = written_since(&p);
    assert_int_equal(count_lines(ordered), 2);
    assert_non_null(strstr(ordered, "/third"));
    assert_true(strstr(ordered, "/third") < strstr(ordered, "after the third"));

    /* Past PIPE_BUF bytes the held lines go out before the next is held:
     * whole lines, none lost. */
    char path[64];
    int sent = 0;
    for (;;) {
        assert_true(sent < 200); /* a line is about 130 bytes */
        snprintf(path, sizeof path, "/many/%d", sent++);
        log_request(path);
        if (strlen(written_since(&p)) > 0)
            break;
    }
    size_t out_first = p.length;
    assert_true(out_first > 0 && out_first <= PIPE_BUF);
    assert_int_equal(p.text[out_first - 1], '\n');
    assert_int_equal(count_lines(p.text), sent - 1);

    /* Holding no more writes what was held, then a line at a time. */
    shoal_log_hold_lines(false);
    assert_int_equal(count_lines(written_since(&p)), 1);
    log_request("/unheld");
    assert_non_null(strstr(written_since(&p), "/unheld"));
    stderr_back(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_lines_are_json_with_every_field),
        cmocka_unit_test(test_time_text_is_utc_with_milliseconds),
        cmocka_unit_test(test_held_access_lines_wait_for_the_flush),
    };
    return cmocka_run_group_tests_name("node/log", tests, NULL, NULL);
}
