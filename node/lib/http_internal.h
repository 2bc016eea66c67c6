/* node/lib/http_internal.h: what the runtime asks of the HTTP layer beyond
 * <shoal/http.h> (private to libshoal). */
#ifndef SHOAL_HTTP_INTERNAL_H
#define SHOAL_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <shoal/http.h>

/* Waits until every worker's PostgreSQL pipe connected, or failed its
 * first attempt, at most until deadline_ms (CLOCK_MONOTONIC); true when all
 * did. shoal_main's warm-up ends with it, so that a node that says it is
 * ready holds every connection it will hold. */
bool shoal_http_await_pipes(shoal_http *http, uint64_t deadline_ms);

#endif
