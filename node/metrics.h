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

/* Routes GET /metrics. */
extern const shoal_extension shoal_metrics_extension;

#endif
