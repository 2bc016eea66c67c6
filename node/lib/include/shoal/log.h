/* node/lib/include/shoal/log.h: JSON lines on stderr, one per event.
 *
 * Lines are written whole, so lines from different threads never
 * interleave: each with a write(2) of its own, except a worker's access
 * lines, which wait for the end of its loop's turn and go out together in
 * writes of at most PIPE_BUF bytes (any other line writes them first). */
#ifndef SHOAL_LOG_H
#define SHOAL_LOG_H

#include <stdint.h>

typedef enum shoal_log_level { SHOAL_LOG_INFO, SHOAL_LOG_WARNING, SHOAL_LOG_ERROR } shoal_log_level;

/* The node name that every line carries; call once at start-up. */
void shoal_log_set_node(const char *node_name);

/* {"time":...,"level":...,"node":...,"event":event,"message":...} */
void shoal_log(shoal_log_level level, const char *event, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* What one request was, when it ends: the access log consumes it (and the
 * metrics will, from the same event). */
typedef struct shoal_observation {
    const char *method;
    const char *path;
    int status;
    uint64_t duration_ns;
    const char *request_id;
    uint64_t response_bytes;
} shoal_observation;

void shoal_log_access(const shoal_observation *observation);

/* UTC time as 2026-11-24T07:22:56.637Z into out (at least 25 bytes). */
void shoal_log_format_time(char *out, unsigned long size);

#endif
