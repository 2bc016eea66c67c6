/* node/lib/worker.c: the workers, one per HTTP thread: each holds the thread's
 * PostgreSQL and Redis connections, its slots' state and its counters.
 * Made at start and warmed (connected) before serving, taken by the
 * threads on their first request; /metrics and draining read the sums. */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/log.h>

#include "app_internal.h"
#include "clock.h"
#include "async.h"
#include "pipe.h"

static _Thread_local shoal_worker *thread_worker;
/* Kept apart from the worker: the worker is freed with its app, and a later
 * app's lookup must not read it. */
static _Thread_local unsigned long thread_worker_generation;

void shoal_worker_free(shoal_app *app, shoal_worker *worker)
{
    for (int i = 0; i < app->worker_slot_count; i++)
        if (app->worker_slots[i].destroy != NULL && worker->slots[i] != NULL)
            app->worker_slots[i].destroy(worker->slots[i]);
    free(worker->slots);
    free(worker->route_counters);
    free(worker->metric_cells);
    store_close(worker->store);
    if (worker->cache_tier != worker->cache)
        cache_close(worker->cache_tier);
    cache_close(worker->cache);
    free(worker);
}

int shoal_app_in_flight(shoal_app *app)
{
    int total = 0;
    pthread_mutex_lock(&app->workers_lock);
    for (shoal_worker *worker = app->workers; worker != NULL; worker = worker->next)
        total += atomic_load_explicit(&worker->in_flight, memory_order_relaxed);
    pthread_mutex_unlock(&app->workers_lock);
    return total;
}

void shoal_app_route_totals(shoal_app *app, shoal_route_totals_fn fn, void *data)
{
    shoal_route_entry unmatched = {.pattern = "unmatched", .methods = "any", .metrics_index = 0};
    for (shoal_route_entry *route = &unmatched; route != NULL;
         route = route == &unmatched ? app->routes : route->next) {
        if (route->metrics_shared)
            continue;
        shoal_route_totals totals = {0};
        pthread_mutex_lock(&app->workers_lock);
        for (shoal_worker *worker = app->workers; worker != NULL; worker = worker->next)
            if (route->metrics_index < worker->route_counter_count)
                shoal_route_counters_add_to(&worker->route_counters[route->metrics_index], &totals);
        pthread_mutex_unlock(&app->workers_lock);
        fn(route->pattern, route->methods, &totals, data);
    }
}

void shoal_app_tier_totals(shoal_app *app, store_stats *postgres, cache_stats *redis)
{
    *postgres = (store_stats){0};
    *redis = (cache_stats){0};
    pthread_mutex_lock(&app->workers_lock);
    for (shoal_worker *worker = app->workers; worker != NULL; worker = worker->next) {
        store_stats one_store;
        store_stats_read(worker->store, &one_store);
        postgres->calls += one_store.calls;
        postgres->errors += one_store.errors;
        postgres->reconnects += one_store.reconnects;
        postgres->duration_ns += one_store.duration_ns;
        cache *caches[2] = {worker->cache, worker->cache_tier != worker->cache ? worker->cache_tier : NULL};
        for (size_t i = 0; i < 2 && caches[i] != NULL; i++) {
            cache_stats one_cache;
            cache_stats_read(caches[i], &one_cache);
            redis->calls += one_cache.calls;
            redis->errors += one_cache.errors;
            redis->reconnects += one_cache.reconnects;
            redis->duration_ns += one_cache.duration_ns;
        }
    }
    pthread_mutex_unlock(&app->workers_lock);
}

/* Relaxed: the count orders nothing else, and draining polls it. */
void shoal_worker_request_started(shoal_worker *worker)
{
    atomic_fetch_add_explicit(&worker->in_flight, 1, memory_order_relaxed);
}

void shoal_worker_request_finished(shoal_worker *worker)
{
    atomic_fetch_sub_explicit(&worker->in_flight, 1, memory_order_relaxed);
}

void shoal_worker_serve_public(shoal_worker *worker, unsigned index)
{
    pthread_mutex_lock(&worker->app->workers_lock);
    worker->public_index = (int)index;
    pthread_mutex_unlock(&worker->app->workers_lock);
}

void shoal_worker_set_connections(shoal_worker *worker, unsigned open)
{
    atomic_store_explicit(&worker->connections, open, memory_order_relaxed);
}

void shoal_app_connection_counts(shoal_app *app, shoal_connections_fn fn, void *data)
{
    pthread_mutex_lock(&app->workers_lock);
    for (shoal_worker *worker = app->workers; worker != NULL; worker = worker->next)
        if (worker->public_index >= 0)
            fn((unsigned)worker->public_index, atomic_load_explicit(&worker->connections, memory_order_relaxed),
               data);
    pthread_mutex_unlock(&app->workers_lock);
}

/* A worker with its connections' settings, not connected yet (store/ and
 * cache/ connect on first use), listed in app->workers. */
static shoal_worker *worker_new(shoal_app *app)
{
    shoal_worker *worker = aligned_alloc(alignof(shoal_worker), sizeof *worker);
    if (worker == NULL)
        return NULL;
    memset(worker, 0, sizeof *worker);
    atomic_init(&worker->in_flight, 0);
    atomic_init(&worker->connections, 0);
    worker->public_index = -1;
    worker->app = app;
    worker->slots = calloc((size_t)app->worker_slot_count + 1, sizeof *worker->slots);
    /* Every route known now has a slot (after freeze, every route there is). */
    size_t counters_bytes = (app->route_count + 1) * sizeof *worker->route_counters;
    counters_bytes = (counters_bytes + CACHE_LINE_BYTES - 1) / CACHE_LINE_BYTES * CACHE_LINE_BYTES;
    worker->route_counters = aligned_alloc(CACHE_LINE_BYTES, counters_bytes);
    if (worker->route_counters != NULL) {
        memset(worker->route_counters, 0, counters_bytes);
        worker->route_counter_count = app->route_count + 1;
    }
    /* Every metric registered now has its cells (after freeze, every one
     * there is). */
    size_t cells = shoal_metric_registry_cells(app->metrics);
    if (cells > 0) {
        size_t cells_bytes = cells * sizeof *worker->metric_cells;
        cells_bytes = (cells_bytes + CACHE_LINE_BYTES - 1) / CACHE_LINE_BYTES * CACHE_LINE_BYTES;
        worker->metric_cells = aligned_alloc(CACHE_LINE_BYTES, cells_bytes);
        if (worker->metric_cells != NULL) {
            memset(worker->metric_cells, 0, cells_bytes);
            worker->metric_cell_count = cells;
        }
    }
    worker->store = store_open(&app->store_config);
    char reason[256] = "";
    worker->cache = cache_open(&app->cache_config, reason, sizeof reason);
    /* A second connection only when the cache has its own instance. */
    worker->cache_tier = app->cache_separate && worker->cache != NULL
                             ? cache_open(&app->cache_tier_config, reason, sizeof reason)
                             : worker->cache;
    if (worker->slots == NULL || worker->route_counters == NULL || (cells > 0 && worker->metric_cells == NULL) ||
        worker->store == NULL || worker->cache == NULL || worker->cache_tier == NULL) {
        if ((worker->cache == NULL || worker->cache_tier == NULL) && reason[0] != '\0')
            shoal_log(SHOAL_LOG_ERROR, "worker", "cannot set up Redis: %s", reason);
        store_close(worker->store);
        if (worker->cache_tier != worker->cache)
            cache_close(worker->cache_tier);
        cache_close(worker->cache);
        free(worker->slots);
        free(worker->route_counters);
        free(worker->metric_cells);
        free(worker);
        return NULL;
    }
    for (int i = 0; i < app->worker_slot_count; i++)
        if (app->worker_slots[i].create != NULL)
            worker->slots[i] = app->worker_slots[i].create(app->worker_slots[i].data);

    pthread_mutex_lock(&app->workers_lock);
    worker->next = app->workers;
    app->workers = worker;
    pthread_mutex_unlock(&app->workers_lock);
    return worker;
}

static shoal_worker *thread_worker_of(shoal_app *app, bool take_warmed)
{
    /* The generation, not the pointer, identifies the app: a later app may
     * be allocated at a freed one's address on a reused thread. */
    if (thread_worker != NULL && thread_worker_generation == app->generation)
        return thread_worker;

    /* A worker warmed at start, if one is left: its connections (made by
     * the thread that warmed it, which touches it no more) become this
     * thread's; the lock orders that thread's writes before this one's. */
    shoal_worker *worker = NULL;
    pthread_mutex_lock(&app->workers_lock);
    if (take_warmed && app->spares != NULL) {
        worker = app->spares;
        app->spares = worker->next_spare;
        worker->next_spare = NULL;
    }
    pthread_mutex_unlock(&app->workers_lock);
    if (worker == NULL)
        worker = worker_new(app);
    if (worker == NULL)
        return NULL;
    thread_worker = worker;
    thread_worker_generation = app->generation;
    return worker;
}

shoal_worker *shoal_app_thread_worker(shoal_app *app)
{
    return thread_worker_of(app, true);
}

shoal_worker *shoal_app_admin_thread_worker(shoal_app *app)
{
    return thread_worker_of(app, false);
}

store *shoal_worker_store(shoal_worker *worker)
{
    return worker->store;
}

int shoal_worker_in_flight(shoal_worker *worker)
{
    return atomic_load_explicit(&worker->in_flight, memory_order_relaxed);
}

cache *shoal_worker_cache(shoal_worker *worker, bool cache_tier)
{
    return cache_tier ? worker->cache_tier : worker->cache;
}

struct cache_async *shoal_app_redis_open(shoal_app *app, bool cache_tier)
{
    char reason[256] = "";
    cache_async *redis = cache_async_open(cache_tier ? &app->cache_tier_config : &app->cache_config, reason,
                                          sizeof reason);
    if (redis == NULL)
        shoal_log(SHOAL_LOG_ERROR, "worker", "cannot set up its loop's Redis connection: %s", reason);
    return redis;
}

struct pipe_counters_entry {
    store_pipe_counters counters; /* first: the block is aligned for it */
    struct pipe_counters_entry *next;
};

/* On cache lines of their own: each is written by its loop's thread on
 * every statement. */
static struct pipe_counters_entry *pipe_counters_new(void)
{
    size_t line = 64;
    size_t size = (sizeof(struct pipe_counters_entry) + line - 1) / line * line;
    struct pipe_counters_entry *entry = aligned_alloc(line, size);
    if (entry != NULL)
        memset(entry, 0, size);
    return entry;
}

struct store_pipe *shoal_app_store_pipe_open(shoal_app *app)
{
    struct pipe_counters_entry *entry = pipe_counters_new();
    if (entry == NULL)
        return NULL;
    store_pipe *pipe = store_pipe_open(&app->store_config);
    if (pipe == NULL) {
        free(entry);
        return NULL;
    }
    store_pipe_count_into(pipe, &entry->counters);
    pthread_mutex_lock(&app->workers_lock);
    entry->next = app->pipe_counters;
    app->pipe_counters = entry;
    pthread_mutex_unlock(&app->workers_lock);
    return pipe;
}

void shoal_app_pipe_totals(shoal_app *app, store_pipe_stats *totals)
{
    *totals = (store_pipe_stats){0};
    pthread_mutex_lock(&app->workers_lock);
    for (struct pipe_counters_entry *entry = app->pipe_counters; entry != NULL; entry = entry->next)
        store_pipe_counters_add_to(&entry->counters, totals);
    pthread_mutex_unlock(&app->workers_lock);
}

void shoal_app_pipe_counters_free(shoal_app *app)
{
    while (app->pipe_counters != NULL) {
        struct pipe_counters_entry *next = app->pipe_counters->next;
        free(app->pipe_counters);
        app->pipe_counters = next;
    }
}

/* Both of a worker's Redis connections (one when the cache shares the
 * sessions' instance). */
static bool warm_redis(shoal_worker *worker)
{
    if (cache_ping(worker->cache) != CACHE_OK)
        return false;
    return worker->cache_tier == worker->cache || cache_ping(worker->cache_tier) == CACHE_OK;
}

int shoal_app_warm_workers(shoal_app *app, int count, uint64_t deadline_ms, bool skip_postgres,
                           shoal_warm_report *report)
{
    *report = (shoal_warm_report){0};
    if (!app->frozen)
        return -1; /* a store needs the frozen registry to prepare its statements */
    bool postgres_reachable = !skip_postgres;
    bool redis_reachable = true;
    for (int i = 0; i < count; i++) {
        shoal_worker *worker = worker_new(app);
        if (worker == NULL)
            return -1;
        /* Its first connection attempts, when they fail, happen now; the
         * next ones wait for a request, as on any worker. */
        if (shoal_monotonic_ms() >= deadline_ms) {
            report->timed_out = true;
        } else {
            if (postgres_reachable) {
                /* Connecting prepares every registered statement. */
                if (store_connect_now(worker->store) == STORE_OK) {
                    report->postgres++;
                } else {
                    postgres_reachable = false;
                    snprintf(report->postgres_error, sizeof report->postgres_error, "%s",
                             store_last_error(worker->store)->message);
                }
            }
            if (redis_reachable && shoal_monotonic_ms() < deadline_ms) {
                if (warm_redis(worker))
                    report->redis++;
                else
                    redis_reachable = false;
            }
        }
        pthread_mutex_lock(&app->workers_lock);
        worker->next_spare = app->spares;
        app->spares = worker;
        pthread_mutex_unlock(&app->workers_lock);
        report->workers++;
    }
    return 0;
}
