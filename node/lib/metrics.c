/* node/lib/metrics.c: the metrics extension, GET /metrics on the admin
 * listener: the scrape, which sums the workers' route counters and tier
 * stats, writes the core's families and then the registered ones
 * (metrics_registry.c), in the text format of metrics_text.c. */
#include <shoal/metrics.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <shoal/cache.h>
#include <shoal/store.h>

#include "context.h"
#include "metrics_registry.h"
#include "pipe.h"

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

/* Head-of-line on the workers' pipes (store/pipe.h): how long statements
 * waited behind other requests' on their loop's one connection. */
static void write_pipe(shoal_metrics_text *text, const store_pipe_stats *pipe)
{
    double bounds[STORE_PIPE_WAIT_BUCKETS];
    unsigned long long buckets[STORE_PIPE_WAIT_BUCKETS + 1];
    for (size_t i = 0; i < STORE_PIPE_WAIT_BUCKETS; i++)
        bounds[i] = (double)store_pipe_wait_bounds_ns[i] / 1e9;
    for (size_t i = 0; i <= STORE_PIPE_WAIT_BUCKETS; i++)
        buckets[i] = pipe->wait_buckets[i];
    shoal_metrics_family(text, "shoal_postgres_pipe_wait_seconds", "histogram",
                         "Time a statement waited behind other requests' statements on its worker's pipelined "
                         "PostgreSQL connection, from its send until the one before it finished.");
    shoal_metrics_histogram_of(text, "shoal_postgres_pipe_wait_seconds", NULL, 0, bounds, STORE_PIPE_WAIT_BUCKETS,
                               buckets, (double)pipe->wait_ns / 1e9);
    shoal_metrics_family(text, "shoal_postgres_pipe_seconds_total", "counter",
                         "Time statements spent on the workers' pipelined PostgreSQL connections, from send to "
                         "sync; shoal_postgres_pipe_wait_seconds_sum over it is the share spent waiting behind "
                         "others.");
    shoal_metrics_sample(text, "shoal_postgres_pipe_seconds_total", NULL, NULL, 0, (double)pipe->busy_ns / 1e9);
    shoal_metrics_family(text, "shoal_postgres_pipe_wait_max_seconds", "gauge",
                         "The longest wait of one statement behind others on a worker's pipelined PostgreSQL "
                         "connection since the node started.");
    shoal_metrics_sample(text, "shoal_postgres_pipe_wait_max_seconds", NULL, NULL, 0,
                         (double)pipe->max_wait_ns / 1e9);
    shoal_metrics_family(text, "shoal_postgres_pipe_spilled_total", "counter",
                         "Statements sent on a worker's spill connection because the oldest statement on its "
                         "pipelined connection had run past --database-spill-after-ms.");
    shoal_metrics_sample(text, "shoal_postgres_pipe_spilled_total", NULL, NULL, 0, (double)pipe->spilled);
    shoal_metrics_family(text, "shoal_postgres_pipe_spill_connections_total", "counter",
                         "Spill connections the workers opened (each closes after 10 s with nothing sent on it).");
    shoal_metrics_sample(text, "shoal_postgres_pipe_spill_connections_total", NULL, NULL, 0,
                         (double)pipe->spill_connections);
}

static void write_connections(unsigned index, unsigned open, void *data)
{
    char worker[16];
    snprintf(worker, sizeof worker, "%u", index);
    shoal_metrics_label label = {"worker", worker};
    shoal_metrics_sample(data, "shoal_http_connections", NULL, &label, 1, (double)open);
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
    shoal_metrics_family(&text, "shoal_http_connections", "gauge",
                         "Client connections open on each worker of the public listener.");
    shoal_app_connection_counts(app, write_connections, &text);

    store_stats postgres = {0};
    cache_stats redis = {0};
    shoal_app_tier_totals(app, &postgres, &redis);
    write_tier(&text, "postgres", "PostgreSQL", postgres.calls, postgres.errors, postgres.reconnects,
               postgres.duration_ns);
    store_pipe_stats pipe;
    shoal_app_pipe_totals(app, &pipe);
    write_pipe(&text, &pipe);
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
