/* node/log.c: structured log lines. */
#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

static char node_name[128] = "node";

void shoal_log_set_node(const char *name)
{
    shoal_json_escape(name, node_name, sizeof node_name);
}

void shoal_log_format_time(char *out, unsigned long size)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char seconds[32];
    size_t length = strftime(seconds, sizeof seconds, "%Y-%m-%dT%H:%M:%S", &utc);
    int milliseconds = (int)(now.tv_nsec / 1000000) % 1000;
    snprintf(out, size, "%.*s.%03dZ", (int)length, seconds, milliseconds);
}

static void write_line(const char *line, size_t length)
{
    /* A short write of a log line is not worth retrying: the line is lost
     * either way and the request must not stall on stderr. */
    ssize_t ignored = write(STDERR_FILENO, line, length);
    (void)ignored;
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
    if (length > 0)
        write_line(line, (size_t)length < sizeof line ? (size_t)length : sizeof line - 1);
}

void shoal_log_access(const shoal_observation *observation)
{
    char path[1024];
    shoal_json_escape(observation->path != NULL ? observation->path : "", path, sizeof path);
    char method[32];
    shoal_json_escape(observation->method != NULL ? observation->method : "", method, sizeof method);
    char request_id[160];
    shoal_json_escape(observation->request_id != NULL ? observation->request_id : "", request_id,
                      sizeof request_id);
    char time_text[40];
    shoal_log_format_time(time_text, sizeof time_text);

    char line[1600];
    int length = snprintf(line, sizeof line,
                          "{\"time\":\"%s\",\"level\":\"info\",\"node\":\"%s\",\"event\":\"request\","
                          "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"duration_ms\":%.3f,"
                          "\"bytes\":%" PRIu64 ",\"request_id\":\"%s\"}\n",
                          time_text, node_name, method, path, observation->status,
                          (double)observation->duration_ns / 1e6, observation->response_bytes,
                          request_id);
    if (length > 0)
        write_line(line, (size_t)length < sizeof line ? (size_t)length : sizeof line - 1);
}
