/* node/lib/route_counters.c: each route's request counters in a worker:
 * counted on the request path by the worker's own thread (no lock, no
 * locked instruction) and summed for a scrape; the latency buckets they
 * count in. */
#include <stddef.h>
#include <stdint.h>

#include <shoal/metrics.h>

const uint64_t shoal_metrics_bucket_bounds_ns[SHOAL_METRICS_BUCKETS] = {
    500000,    1000000,    2500000,    5000000,    10000000,   25000000,   50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
};

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
