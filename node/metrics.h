/* node/metrics.h: GET /metrics, the node's counters in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * Counting costs the request path no lock and no allocation: each worker
 * owns a slot per route, written by its own thread with relaxed atomics
 * (a load and a store, no locked add), and a scrape sums the slots of every
 * worker. Routes are labelled by their pattern, never the raw path, so the
 * series stay as many as the routes. */
#ifndef SHOAL_METRICS_H
#define SHOAL_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"
#include "shoal.h"

/* Upper bounds of the latency buckets, 0.5 ms to 5 s; +Inf follows. */
#define SHOAL_METRICS_BUCKETS 13
extern const uint64_t shoal_metrics_bucket_bounds_ns[SHOAL_METRICS_BUCKETS];

/* Status classes 1xx to 5xx; anything else counts as 5xx. */
#define SHOAL_METRICS_STATUS_CLASSES 5

/* One route's counters in one worker. */
typedef struct shoal_route_counters {
    atomic_ulong by_class[SHOAL_METRICS_STATUS_CLASSES];
    atomic_ulong buckets[SHOAL_METRICS_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    atomic_ullong duration_ns;
} shoal_route_counters;

/* The sum over the workers, as a scrape sees it. */
typedef struct shoal_route_totals {
    unsigned long by_class[SHOAL_METRICS_STATUS_CLASSES];
    unsigned long buckets[SHOAL_METRICS_BUCKETS + 1];
    uint64_t duration_ns;
} shoal_route_totals;

/* By the owning worker's thread only. */
void shoal_route_counters_observe(shoal_route_counters *counters, int status, uint64_t duration_ns);
/* From any thread. */
void shoal_route_counters_add_to(const shoal_route_counters *counters, shoal_route_totals *totals);

/* Cache-aside reads by where the value came from (cache_aside_source), and
 * session lookups by their result. Not by cache family: a family is any
 * name a caller passes, and a label from it would have no bound. */
#define SHOAL_METRICS_CACHE_SOURCES (CACHE_ASIDE_STALE_IF_ERROR + 1)

typedef enum shoal_session_lookup {
    SHOAL_SESSION_LOOKUP_FOUND,   /* a live session */
    SHOAL_SESSION_LOOKUP_MISSING, /* malformed, unknown, expired or revoked token */
    SHOAL_SESSION_LOOKUP_ERROR,   /* Redis unreachable or answering garbage */
} shoal_session_lookup;
#define SHOAL_METRICS_SESSION_RESULTS (SHOAL_SESSION_LOOKUP_ERROR + 1)

/* Why the node refused a request for its own load (node/overload.c). */
typedef enum shoal_shed_reason {
    SHOAL_SHED_IN_FLIGHT, /* --max-in-flight requests were already in the node when it arrived */
    SHOAL_SHED_DEADLINE,  /* its deadline passed before work it needed could start */
} shoal_shed_reason;
#define SHOAL_METRICS_SHED_REASONS (SHOAL_SHED_DEADLINE + 1)

/* One worker's counters beside the routes'. */
typedef struct shoal_worker_counters {
    atomic_ulong cache_reads[SHOAL_METRICS_CACHE_SOURCES];
    atomic_ulong session_lookups[SHOAL_METRICS_SESSION_RESULTS];
    atomic_ulong shed[SHOAL_METRICS_SHED_REASONS];
} shoal_worker_counters;

typedef struct shoal_worker_totals {
    unsigned long cache_reads[SHOAL_METRICS_CACHE_SOURCES];
    unsigned long session_lookups[SHOAL_METRICS_SESSION_RESULTS];
    unsigned long shed[SHOAL_METRICS_SHED_REASONS];
} shoal_worker_totals;

/* By the owning worker's thread only; counters may be NULL (a request
 * served without a worker), and a source out of range counts nowhere. */
void shoal_worker_counters_cache_read(shoal_worker_counters *counters, cache_aside_source source, unsigned long count);
void shoal_worker_counters_session_lookup(shoal_worker_counters *counters, shoal_session_lookup result);
void shoal_worker_counters_shed(shoal_worker_counters *counters, shoal_shed_reason reason);
/* From any thread. */
void shoal_worker_counters_add_to(const shoal_worker_counters *counters, shoal_worker_totals *totals);
/* The request's worker's counters; NULL when it has none. */
shoal_worker_counters *shoal_ctx_worker_counters(shoal_ctx *ctx);

/* ---- the text format (tested on its own) ------------------------------------ */

typedef struct shoal_metrics_text {
    char *data;
    size_t length;
    size_t capacity;
    int failed; /* memory ran out: the text is incomplete */
} shoal_metrics_text;

typedef struct shoal_metrics_label {
    const char *name;
    const char *value;
} shoal_metrics_label;

void shoal_metrics_text_free(shoal_metrics_text *text);
/* # HELP and # TYPE lines; help is escaped (backslash, newline). */
void shoal_metrics_family(shoal_metrics_text *text, const char *name, const char *type, const char *help);
/* name{label="value",...} value; label values escaped (backslash, quote,
 * newline). */
void shoal_metrics_sample(shoal_metrics_text *text, const char *name, const char *suffix,
                          const shoal_metrics_label *labels, size_t label_count, double value);
/* A histogram's _bucket (cumulative, with le), _sum (seconds) and _count
 * lines from per-bucket counts. */
void shoal_metrics_histogram(shoal_metrics_text *text, const char *name, const shoal_metrics_label *labels,
                             size_t label_count, const unsigned long buckets[SHOAL_METRICS_BUCKETS + 1],
                             uint64_t duration_ns);

/* The shoal_cache_reads_total, shoal_session_lookups_total and
 * shoal_http_requests_shed_total families,
 * every source and result always present (a series that appears late
 * makes rate() miss its first increase). */
void shoal_metrics_worker_totals(shoal_metrics_text *text, const shoal_worker_totals *totals);

/* Routes GET /metrics on the admin listener (shoal_app_admin). */
extern const shoal_extension shoal_metrics_extension;

#endif
