/* node/lib/log.c: structured log lines. */
#include <shoal/log.h>

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shoal/json.h>

#include "log_lines.h"

static char node_name[128] = "node";

void shoal_log_set_node(const char *name)
{
    shoal_json_escape(name, node_name, sizeof node_name);
}

/* gmtime_r and strftime once a second per thread, not once a line: the
 * access log writes a line per request. */
typedef struct second_text {
    time_t second;
    char text[24]; /* 2026-11-24T07:22:56 */
    size_t length;
} second_text;

static _Thread_local second_text this_second = {.second = (time_t)-1};

void shoal_log_format_time(char *out, unsigned long size)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != this_second.second) {
        struct tm utc;
        gmtime_r(&now.tv_sec, &utc);
        this_second.length = strftime(this_second.text, sizeof this_second.text, "%Y-%m-%dT%H:%M:%S", &utc);
        this_second.second = now.tv_sec;
    }
    int milliseconds = (int)(now.tv_nsec / 1000000) % 1000;
    if (size < this_second.length + 6) {
        if (size > 0)
            out[0] = '\0';
        return;
    }
    memcpy(out, this_second.text, this_second.length);
    char *tail = out + this_second.length;
    tail[0] = '.';
    tail[1] = (char)('0' + milliseconds / 100);
    tail[2] = (char)('0' + milliseconds / 10 % 10);
    tail[3] = (char)('0' + milliseconds % 10);
    tail[4] = 'Z';
    tail[5] = '\0';
}

static void write_line(const char *line, size_t length)
{
    /* A short write of a log line is not worth retrying: the line is lost
     * either way and the request must not stall on stderr. */
    ssize_t ignored = write(STDERR_FILENO, line, length);
    (void)ignored;
}

/* A worker's access lines wait here until its loop turn ends: a write(2)
 * a request cost a node 10 to 25 % of its /json throughput. At most
 * PIPE_BUF bytes, so that a write to a pipe (a container's log) lands whole
 * among other threads' writes, as a single line's did. */
typedef struct held_lines {
    bool holding;
    size_t length;
    char data[PIPE_BUF];
} held_lines;

static _Thread_local held_lines held;

/* The longest access line, newline included: any one fits the held lines. */
#define ACCESS_LINE_MAX 1600
_Static_assert(ACCESS_LINE_MAX <= PIPE_BUF, "an access line must fit the held lines");

void shoal_log_flush_lines(void)
{
    if (held.length == 0)
        return;
    write_line(held.data, held.length);
    held.length = 0;
}

void shoal_log_hold_lines(bool hold)
{
    if (!hold)
        shoal_log_flush_lines();
    held.holding = hold;
}

static void write_access_line(const char *line, size_t length)
{
    if (!held.holding) {
        write_line(line, length);
        return;
    }
    if (held.length + length > sizeof held.data)
        shoal_log_flush_lines();
    memcpy(held.data + held.length, line, length);
    held.length += length;
}

static const char *level_name(shoal_log_level level)
{
    switch (level) {
    case SHOAL_LOG_WARNING:
        return "warning";
    case SHOAL_LOG_ERROR:
        return "error";
    case SHOAL_LOG_INFO:
        break;
    }
    return "info";
}

void shoal_log(shoal_log_level level, const char *event, const char *format, ...)
{
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);

    char escaped[2048];
    shoal_json_escape(message, escaped, sizeof escaped);
    char time_text[40];
    shoal_log_format_time(time_text, sizeof time_text);
    char line[2560];
    int length = snprintf(line, sizeof line,
                          "{\"time\":\"%s\",\"level\":\"%s\",\"node\":\"%s\",\"event\":\"%s\","
                          "\"message\":\"%s\"}\n",
                          time_text, level_name(level), node_name, event, escaped);
    shoal_log_flush_lines(); /* the access lines before it go first */
    if (length > 0)
        write_line(line, (size_t)length < sizeof line ? (size_t)length : sizeof line - 1);
}

/* A line under construction; appending past its end is cut off, and the
 * line then ends early but still with its newline. */
typedef struct line_buffer {
    char *data;
    size_t length;
    size_t size;
} line_buffer;

static void append_text(line_buffer *line, const char *text, size_t length)
{
    if (length > line->size - line->length)
        length = line->size - line->length;
    memcpy(line->data + line->length, text, length);
    line->length += length;
}

#define APPEND_LITERAL(line, literal) append_text((line), (literal), sizeof(literal) - 1)

static void append_unsigned(line_buffer *line, uint64_t value)
{
    char digits[24];
    size_t at = sizeof digits;
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    append_text(line, digits + at, sizeof digits - at);
}

/* text escaped as a JSON string's contents, in at most limit bytes. */
static void append_escaped(line_buffer *line, const char *text, size_t limit)
{
    size_t room = line->size - line->length;
    if (limit > room)
        limit = room;
    if (limit == 0)
        return;
    /* shoal_json_escape always writes a NUL, which the next append covers. */
    line->length += shoal_json_escape(text != NULL ? text : "", line->data + line->length, limit);
}

/* The line is assembled by hand rather than with snprintf: with the log on
 * it is written for every request, and formatting it was most of its cost. */
void shoal_log_access(const shoal_observation *observation)
{
    char data[ACCESS_LINE_MAX];
    line_buffer line = {data, 0, sizeof data - 1}; /* the last byte is for the newline */
    char time_text[40];
    shoal_log_format_time(time_text, sizeof time_text);

    APPEND_LITERAL(&line, "{\"time\":\"");
    append_text(&line, time_text, strlen(time_text));
    APPEND_LITERAL(&line, "\",\"level\":\"info\",\"node\":\"");
    append_text(&line, node_name, strlen(node_name));
    APPEND_LITERAL(&line, "\",\"event\":\"request\",\"method\":\"");
    append_escaped(&line, observation->method, 32);
    APPEND_LITERAL(&line, "\",\"path\":\"");
    append_escaped(&line, observation->path, 1024);
    APPEND_LITERAL(&line, "\",\"status\":");
    int status = observation->status;
    if (status < 0) {
        APPEND_LITERAL(&line, "-");
        status = -status;
    }
    append_unsigned(&line, (uint64_t)status);
    /* Milliseconds with three decimals, rounded to the microsecond. */
    uint64_t microseconds = (observation->duration_ns + 500) / 1000;
    APPEND_LITERAL(&line, ",\"duration_ms\":");
    append_unsigned(&line, microseconds / 1000);
    char fraction[4] = {'.', (char)('0' + microseconds / 100 % 10), (char)('0' + microseconds / 10 % 10),
                        (char)('0' + microseconds % 10)};
    append_text(&line, fraction, sizeof fraction);
    APPEND_LITERAL(&line, ",\"bytes\":");
    append_unsigned(&line, observation->response_bytes);
    APPEND_LITERAL(&line, ",\"request_id\":\"");
    append_escaped(&line, observation->request_id, 160);
    APPEND_LITERAL(&line, "\"}");
    data[line.length++] = '\n';
    write_access_line(data, line.length);
}
