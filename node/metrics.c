/* node/metrics.c */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "context.h"
#include "metrics_registry.h"
#include "store.h"

const uint64_t shoal_metrics_bucket_bounds_ns[SHOAL_METRICS_BUCKETS] = {
    500000,    1000000,    2500000,    5000000,    10000000,   25000000,   50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
};

/* ---- counting ------------------------------------------------------------------ */

static void bump(atomic_ulong *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1, memory_order_relaxed);
}

void shoal_route_counters_observe(shoal_route_counters *counters, int status, uint64_t duration_ns)
{
    int class = status / 100 - 1;
    if (class < 0 || class >= SHOAL_METRICS_STATUS_CLASSES)
        class = SHOAL_METRICS_STATUS_CLASSES - 1;
    bump(&counters->by_class[class]);
    size_t bucket = 0;
    while (bucket < SHOAL_METRICS_BUCKETS && duration_ns > shoal_metrics_bucket_bounds_ns[bucket])
        bucket++;
    bump(&counters->buckets[bucket]);
    atomic_store_explicit(&counters->duration_ns,
                          atomic_load_explicit(&counters->duration_ns, memory_order_relaxed) + duration_ns,
                          memory_order_relaxed);
}

void shoal_route_counters_add_to(const shoal_route_counters *counters, shoal_route_totals *totals)
{
    for (size_t i = 0; i < SHOAL_METRICS_STATUS_CLASSES; i++)
        totals->by_class[i] += atomic_load_explicit(&counters->by_class[i], memory_order_relaxed);
    for (size_t i = 0; i <= SHOAL_METRICS_BUCKETS; i++)
        totals->buckets[i] += atomic_load_explicit(&counters->buckets[i], memory_order_relaxed);
    totals->duration_ns += atomic_load_explicit(&counters->duration_ns, memory_order_relaxed);
}

/* ---- the text format ------------------------------------------------------------ */

static void append(shoal_metrics_text *text, const char *data, size_t length)
{
    if (text->failed)
        return;
    if (text->length + length + 1 > text->capacity) {
        size_t capacity = text->capacity > 0 ? text->capacity : 4096;
        while (text->length + length + 1 > capacity)
            capacity *= 2;
        char *grown = realloc(text->data, capacity);
        if (grown == NULL) {
            text->failed = 1;
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
    memcpy(text->data + text->length, data, length);
    text->length += length;
    text->data[text->length] = '\0';
}

static void append_text(shoal_metrics_text *text, const char *data)
{
    append(text, data, strlen(data));
}

/* The format escapes backslash and newline everywhere, and the double
 * quote in label values only. */
static void append_escaped(shoal_metrics_text *text, const char *data, int quote)
{
    for (const char *c = data; *c != '\0'; c++) {
        if (*c == '\\')
            append(text, "\\\\", 2);
        else if (*c == '\n')
            append(text, "\\n", 2);
        else if (*c == '"' && quote)
            append(text, "\\\"", 2);
        else
            append(text, c, 1);
    }
}

static void append_value(shoal_metrics_text *text, double value)
{
    char number[64];
    if (isinf(value))
        snprintf(number, sizeof number, "%s", value > 0 ? "+Inf" : "-Inf");
    else if (isnan(value))
        snprintf(number, sizeof number, "NaN");
    else if (value == floor(value) && fabs(value) < 1e15)
        snprintf(number, sizeof number, "%.0f", value);
    else
        snprintf(number, sizeof number, "%.17g", value);
    append_text(text, number);
}

void shoal_metrics_text_free(shoal_metrics_text *text)
{
    free(text->data);
    *text = (shoal_metrics_text){0};
}

void shoal_metrics_family(shoal_metrics_text *text, const char *name, const char *type, const char *help)
{
    append_text(text, "# HELP ");
    append_text(text, name);
    append(text, " ", 1);
    append_escaped(text, help, 0);
    append_text(text, "\n# TYPE ");
    append_text(text, name);
    append(text, " ", 1);
    append_text(text, type);
    append(text, "\n", 1);
}

static void sample_with(shoal_metrics_text *text, const char *name, const char *suffix,
                        const shoal_metrics_label *labels, size_t label_count, const char *le, double value)
{
    append_text(text, name);
    if (suffix != NULL)
        append_text(text, suffix);
    if (label_count > 0 || le != NULL) {
        append(text, "{", 1);
        for (size_t i = 0; i < label_count; i++) {
            if (i > 0)
                append(text, ",", 1);
            append_text(text, labels[i].name);
            append(text, "=\"", 2);
            append_escaped(text, labels[i].value != NULL ? labels[i].value : "", 1);
            append(text, "\"", 1);
        }
        if (le != NULL) {
            append_text(text, label_count > 0 ? ",le=\"" : "le=\"");
            append_text(text, le);
            append(text, "\"", 1);
        }
        append(text, "}", 1);
    }
    append(text, " ", 1);
    append_value(text, value);
    append(text, "\n", 1);
}

void shoal_metrics_sample(shoal_metrics_text *text, const char *name, const char *suffix,
                          const shoal_metrics_label *labels, size_t label_count, double value)
{
    sample_with(text, name, suffix, labels, label_count, NULL, value);
}

void shoal_metrics_histogram(shoal_metrics_text *text, const char *name, const shoal_metrics_label *labels,
                             size_t label_count, const unsigned long buckets[SHOAL_METRICS_BUCKETS + 1],
                             uint64_t duration_ns)
{
    unsigned long cumulative = 0;
    for (size_t i = 0; i <= SHOAL_METRICS_BUCKETS; i++) {
        cumulative += buckets[i];
        char le[32];
        if (i < SHOAL_METRICS_BUCKETS)
            snprintf(le, sizeof le, "%g", (double)shoal_metrics_bucket_bounds_ns[i] / 1e9);
        else
            snprintf(le, sizeof le, "+Inf");
        sample_with(text, name, "_bucket", labels, label_count, le, (double)cumulative);
    }
    sample_with(text, name, "_sum", labels, label_count, NULL, (double)duration_ns / 1e9);
    sample_with(text, name, "_count", labels, label_count, NULL, (double)cumulative);
}

/* The shortest text that reads back as bound: le="0.25", not le="0.25000000000000000". */
static void format_bound(char *out, size_t size, double bound)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(out, size, "%.*g", digits, bound);
        if (strtod(out, NULL) == bound)
            return;
    }
}

void shoal_metrics_histogram_of(shoal_metrics_text *text, const char *name, const shoal_metrics_label *labels,
                                size_t label_count, const double *bounds, size_t bound_count,
                                const unsigned long long *buckets, double sum)
{
    unsigned long long cumulative = 0;
    for (size_t i = 0; i <= bound_count; i++) {
        cumulative += buckets[i];
        char le[32];
        if (i < bound_count)
            format_bound(le, sizeof le, bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        sample_with(text, name, "_bucket", labels, label_count, le, (double)cumulative);
    }
    sample_with(text, name, "_sum", labels, label_count, NULL, sum);
    sample_with(text, name, "_count", labels, label_count, NULL, (double)cumulative);
}

/* ---- the names the core writes by hand ---------------------------------------- */

static const char *const core_families[] = {
    "shoal_http_requests_total",
    "shoal_http_request_duration_seconds",
    "shoal_http_requests_in_flight",
    "shoal_http_requests_in_flight_limit",
    "shoal_process_start_time_seconds",
    "shoal_postgres_calls_total",
    "shoal_postgres_errors_total",
    "shoal_postgres_call_seconds_total",
    "shoal_postgres_reconnects_total",
    "shoal_redis_calls_total",
    "shoal_redis_errors_total",
    "shoal_redis_call_seconds_total",
    "shoal_redis_reconnects_total",
};

bool shoal_metrics_core_name_taken(const char *name)
{
    for (size_t i = 0; i < sizeof core_families / sizeof core_families[0]; i++)
        if (strcmp(name, core_families[i]) == 0)
            return true;
    return false;
}

/* ---- the route ------------------------------------------------------------------- */

static double process_start_seconds;

static const char *const status_classes[SHOAL_METRICS_STATUS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

static void write_route_counts(const char *pattern, const char *methods, const shoal_route_totals *totals,
                               void *data)
{
    shoal_metrics_text *text = data;
    for (size_t i = 0; i < SHOAL_METRICS_STATUS_CLASSES; i++) {
        if (totals->by_class[i] == 0)
            continue;
        shoal_metrics_label labels[] = {{"route", pattern}, {"method", methods}, {"status", status_classes[i]}};
        shoal_metrics_sample(text, "shoal_http_requests_total", NULL, labels, 3, (double)totals->by_class[i]);
    }
}

static void write_route_latency(const char *pattern, const char *methods, const shoal_route_totals *totals,
                                void *data)
{
    unsigned long count = 0;
    for (size_t i = 0; i <= SHOAL_METRICS_BUCKETS; i++)
        count += totals->buckets[i];
    if (count == 0)
        return;
    shoal_metrics_label labels[] = {{"route", pattern}, {"method", methods}};
    shoal_metrics_histogram(data, "shoal_http_request_duration_seconds", labels, 2, totals->buckets,
                            totals->duration_ns);
}

static void write_tier(shoal_metrics_text *text, const char *tier, const char *label, unsigned long calls,
                       unsigned long errors, unsigned long reconnects, uint64_t duration_ns)
{
    char name[64];
    char help[160];
    snprintf(name, sizeof name, "shoal_%s_calls_total", tier);
    snprintf(help, sizeof help, "%s round trips from the workers (a statement or pipeline each).", label);
    shoal_metrics_family(text, name, "counter", help);
    shoal_metrics_sample(text, name, NULL, NULL, 0, (double)calls);
    snprintf(name, sizeof name, "shoal_%s_errors_total", tier);
    snprintf(help, sizeof help, "%s calls that failed for the tier's sake (unreachable, timed out, refused).",
             label);
    shoal_metrics_family(text, name, "counter", help);
    shoal_metrics_sample(text, name, NULL, NULL, 0, (double)errors);
    snprintf(name, sizeof name, "shoal_%s_call_seconds_total", tier);
    snprintf(help, sizeof help, "Time the workers spent in %s calls; divided by the calls, the mean latency.",
             label);
    shoal_metrics_family(text, name, "counter", help);
    shoal_metrics_sample(text, name, NULL, NULL, 0, (double)duration_ns / 1e9);
    snprintf(name, sizeof name, "shoal_%s_reconnects_total", tier);
    snprintf(help, sizeof help, "Times a worker's %s connection was made again after a loss.", label);
    shoal_metrics_family(text, name, "counter", help);
    shoal_metrics_sample(text, name, NULL, NULL, 0, (double)reconnects);
}

static int metrics(shoal_ctx *ctx)
{
    shoal_app *app = shoal_ctx_app(ctx);
    shoal_metrics_text text = {0};
    shoal_metrics_family(&text, "shoal_http_requests_total", "counter",
                         "Requests answered, by route pattern (unmatched: no route), method and status class.");
    shoal_app_route_totals(app, write_route_counts, &text);
    shoal_metrics_family(&text, "shoal_http_request_duration_seconds", "histogram",
                         "Time from the request's headers to its answer, by route pattern and method.");
    shoal_app_route_totals(app, write_route_latency, &text);
    shoal_metrics_family(&text, "shoal_http_requests_in_flight", "gauge",
                         "Requests started and not yet answered (this scrape included).");
    shoal_metrics_sample(&text, "shoal_http_requests_in_flight", NULL, NULL, 0, (double)shoal_app_in_flight(app));

    store_stats postgres = {0};
    cache_stats redis = {0};
    shoal_app_tier_totals(app, &postgres, &redis);
    write_tier(&text, "postgres", "PostgreSQL", postgres.calls, postgres.errors, postgres.reconnects,
               postgres.duration_ns);
    write_tier(&text, "redis", "Redis", redis.calls, redis.errors, redis.reconnects, redis.duration_ns);

    /* What the core's modules, the extensions and the service registered. */
    shoal_metric_registry_write(app, &text);

    shoal_metrics_family(&text, "shoal_http_requests_in_flight_limit", "gauge",
                         "--max-in-flight: requests the node holds (shoal_http_requests_in_flight) before it "
                         "sheds new ones with 503.");
    shoal_metrics_sample(&text, "shoal_http_requests_in_flight_limit", NULL, NULL, 0,
                         (double)shoal_app_config(app)->max_in_flight);

    shoal_metrics_family(&text, "shoal_process_start_time_seconds", "gauge",
                         "When the node started, in seconds since the Unix epoch.");
    shoal_metrics_sample(&text, "shoal_process_start_time_seconds", NULL, NULL, 0, process_start_seconds);

    if (text.failed || text.data == NULL) {
        shoal_metrics_text_free(&text);
        return shoal_fail_with(ctx, &shoal_code_internal, NULL, "out of memory");
    }
    if (shoal_arena_on_release(shoal_ctx_arena(ctx), free, text.data) != 0)
        return shoal_fail_with(ctx, &shoal_code_internal, NULL, "out of memory");
    shoal_set_header(ctx, "Cache-Control", "no-store");
    return shoal_text(ctx, 200, "text/plain; version=0.0.4; charset=utf-8", text.data, text.length);
}

static int init(shoal_app *app, void *data)
{
    (void)data;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    process_start_seconds = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    /* On the admin listener, where Prometheus scrapes: the node's counters
     * are not for the public, and its routes are essential (a busy node is
     * when its metrics matter most). */
    return shoal_route(shoal_app_admin(app), "GET", "/metrics", metrics);
}

const shoal_extension shoal_metrics_extension = {.name = "metrics", .init = init};
