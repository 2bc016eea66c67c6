/* node/lib/include/shoal/metrics.h: GET /metrics, the node's counters in the Prometheus text
 * exposition format (version 0.0.4), and the metrics services and
 * extensions register for themselves (shoal_app_counter, below).
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

#include <shoal/shoal.h>

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

/* ---- metrics of services and extensions --------------------------------------
 *
 * A service or extension registers its own counters and histograms at
 * setup (its setup function or an extension's init), keeps the handle and
 * counts with it on the request path; GET /metrics writes every registered
 * family, each of its series always present (a series that appears late
 * makes rate() miss its first increase), in the order they were
 * registered.
 *
 *   static const char *const results[] = {"found", "missing", NULL};
 *   static const shoal_metric_spec spec = {
 *       .name = "myservice_lookups_total", .help = "Lookups by result.",
 *       .label = "result", .values = results};
 *   const shoal_counter *lookups = shoal_app_counter(app, &spec);   (setup)
 *   shoal_count(ctx, lookups, 1, 1);            (a request: result="missing")
 *
 * The series are bounded by construction: one label at most, whose values
 * are a fixed list given at registration; a request picks one by its index
 * and never names a new one. Counting takes no lock and no allocation: each
 * worker (one per HTTP thread) owns its cells, written by its own thread
 * only (a relaxed load and store), and a scrape sums every worker's. */

/* A label's values and a histogram's buckets, at most. */
#define SHOAL_METRIC_VALUES_MAX 32
#define SHOAL_METRIC_BUCKETS_MAX 32

typedef struct shoal_metric_spec {
    const char *name;  /* [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's ends in _total */
    const char *help;  /* one line for # HELP; not empty */
    const char *label; /* [a-zA-Z_][a-zA-Z0-9_]*, or NULL: one series without labels */
    const char *const *values; /* the label's values, NULL-terminated, distinct, not empty */
} shoal_metric_spec;

typedef struct shoal_counter shoal_counter;
typedef struct shoal_histogram shoal_histogram;

/* Registers a counter (the spec's strings are copied). NULL, and the setup
 * fails with a reason (shoal_app_fail) naming the metric, for a name that
 * is malformed or taken (by another registration or by the core's own
 * families), a malformed label or value list, memory running out, or a
 * call after setup (shoal_app_freeze). The app owns the handle. */
const shoal_counter *shoal_app_counter(shoal_app *app, const shoal_metric_spec *spec);

/* Registers a histogram with its buckets' upper bounds (finite, increasing,
 * 1 to SHOAL_METRIC_BUCKETS_MAX; +Inf follows) in the unit the name says
 * (_seconds, _bytes); bounds NULL gives the request latency's buckets, 0.5 ms
 * to 5 s. Its label, if any, may not be "le". Fails as shoal_app_counter. */
const shoal_histogram *shoal_app_histogram(shoal_app *app, const shoal_metric_spec *spec, const double *bounds,
                                           size_t bound_count);

/* Adds n to the series of the label's value number value (its index in the
 * spec's values; 0 without a label), in the request's worker. A value out
 * of range, a NULL handle or a ctx without a worker counts nowhere. */
void shoal_count(shoal_ctx *ctx, const shoal_counter *counter, size_t value, unsigned long n);

/* One observation of observed (in the histogram's unit) in the series of
 * value, as shoal_count; NaN counts nowhere. */
void shoal_observe(shoal_ctx *ctx, const shoal_histogram *histogram, size_t value, double observed);

/* The series' sum over the workers, as a scrape would read it (tests,
 * and anyone who reads the app's counters in the process); 0 for a value
 * out of range or a NULL handle. */
unsigned long long shoal_counter_total(shoal_app *app, const shoal_counter *counter, size_t value);

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

/* The same from any upper bounds (bound_count of them, +Inf after) and
 * per-bucket counts (bound_count + 1, not cumulative), with the sum as is;
 * each le is the shortest text that reads back as its bound. */
void shoal_metrics_histogram_of(shoal_metrics_text *text, const char *name, const shoal_metrics_label *labels,
                                size_t label_count, const double *bounds, size_t bound_count,
                                const unsigned long long *buckets, double sum);

/* Routes GET /metrics on the admin listener (shoal_app_admin). */
extern const shoal_extension shoal_metrics_extension;

#endif
