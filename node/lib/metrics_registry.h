/* node/lib/metrics_registry.h: the app's registered metrics (shoal_app_counter,
 * shoal_app_histogram in metrics.h), as node's own files see them: the
 * registry the app keeps, the cells each worker holds for it, and what the
 * core's own modules registered. Private: never installed. */
#ifndef SHOAL_METRICS_REGISTRY_H
#define SHOAL_METRICS_REGISTRY_H

#include <stdatomic.h>
#include <stddef.h>

#include <shoal/metrics.h>
#include <shoal/shoal.h>

typedef struct shoal_metric_registry shoal_metric_registry;

shoal_metric_registry *shoal_metric_registry_new(void);
void shoal_metric_registry_free(shoal_metric_registry *registry);
/* The cells a worker holds: every series' counter, and a histogram's
 * buckets and sum. Registration stops at freeze, before the workers are
 * made, so every worker has them all (one made earlier, in tests only,
 * counts nothing past its own). */
size_t shoal_metric_registry_cells(const shoal_metric_registry *registry);
/* Every registered family, summed over the workers, in the order they
 * were registered. */
void shoal_metric_registry_write(shoal_app *app, shoal_metrics_text *text);

/* ---- what app.c and ctx.c offer the registry ------------------------------ */

shoal_metric_registry *shoal_app_metric_registry(shoal_app *app);
/* The request's worker's cells (*count of them); NULL and 0 without one. */
atomic_ullong *shoal_ctx_metric_cells(shoal_ctx *ctx, size_t *count);
/* fn on every worker's cells, under the workers lock (which no request
 * takes). */
typedef void (*shoal_metric_cells_fn)(const atomic_ullong *cells, size_t count, void *data);
void shoal_app_metric_cells_each(shoal_app *app, shoal_metric_cells_fn fn, void *data);

/* ---- the core's own modules' metrics ---------------------------------------- */

/* Registered by their owners when the app is made (shoal_app_new), before
 * any extension's, and kept by the app for them. */
typedef struct shoal_core_metrics {
    const shoal_counter *shed;        /* overload.c: shoal_http_requests_shed_total{reason} */
    const shoal_counter *cache_reads; /* cached.c: shoal_cache_reads_total{source} */
} shoal_core_metrics;
shoal_core_metrics *shoal_app_core_metrics(shoal_app *app);
int shoal_overload_register_metrics(shoal_app *app);
int shoal_cached_register_metrics(shoal_app *app);

/* Why the node refused a request for its own load (overload.c): the
 * values of shoal_http_requests_shed_total's reason, in this order. */
typedef enum shoal_shed_reason {
    SHOAL_SHED_IN_FLIGHT, /* --max-in-flight requests were already in the node when it arrived */
    SHOAL_SHED_DEADLINE,  /* its deadline passed before work it needed could start */
} shoal_shed_reason;

/* The families the core writes by hand (metrics.c; the list is in
 * metrics_text.c), whose names no registration may take. Exact names are enough: a counter's name ends in
 * _total and a histogram's never does, nor in _bucket, _sum or _count, so
 * no series of one family can be named like another family. */
bool shoal_metrics_core_name_taken(const char *name);

#endif
