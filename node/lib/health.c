/* node/lib/health.c */
#include <shoal/health.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <shoal/cache.h>
#include <shoal/log.h>
#include <shoal/store.h>

#include "clock.h"

struct shoal_tier_monitor {
    pthread_t thread;
    pthread_mutex_t lock; /* guards stopping, and is what wake waits with */
    pthread_cond_t wake;
    bool stopping;
    int interval_ms;
    store *store; /* used by the monitor thread only */
    cache *cache;
    cache *cache_tier; /* NULL unless the cache has its own instance */
    atomic_bool postgres_up;
    atomic_bool redis_up;
    atomic_bool cache_up;
};

static void probe(shoal_tier_monitor *monitor)
{
    bool postgres_up = store_ping(monitor->store) == STORE_OK;
    bool redis_up = cache_ping(monitor->cache) == CACHE_OK;
    /* Log changes only: one line when a tier goes, one when it comes back. */
    if (atomic_exchange(&monitor->postgres_up, postgres_up) != postgres_up)
        shoal_log(postgres_up ? SHOAL_LOG_INFO : SHOAL_LOG_WARNING, "tier", "PostgreSQL is %s",
                  postgres_up ? "up" : "down");
    if (atomic_exchange(&monitor->redis_up, redis_up) != redis_up)
        shoal_log(redis_up ? SHOAL_LOG_INFO : SHOAL_LOG_WARNING, "tier", "Redis is %s", redis_up ? "up" : "down");
    if (monitor->cache_tier == NULL)
        return;
    bool cache_up = cache_ping(monitor->cache_tier) == CACHE_OK;
    if (atomic_exchange(&monitor->cache_up, cache_up) != cache_up)
        shoal_log(cache_up ? SHOAL_LOG_INFO : SHOAL_LOG_WARNING, "tier", "the cache's Redis is %s",
                  cache_up ? "up" : "down");
}

static void *run(void *argument)
{
    shoal_tier_monitor *monitor = argument;
    pthread_mutex_lock(&monitor->lock);
    while (!monitor->stopping) {
        struct timespec deadline = shoal_monotonic_deadline(monitor->interval_ms);
        pthread_cond_timedwait(&monitor->wake, &monitor->lock, &deadline);
        if (monitor->stopping)
            break;
        pthread_mutex_unlock(&monitor->lock);
        probe(monitor);
        pthread_mutex_lock(&monitor->lock);
    }
    pthread_mutex_unlock(&monitor->lock);
    return NULL;
}

shoal_tier_monitor *shoal_tier_monitor_start(const shoal_config *config, int interval_ms)
{
    shoal_tier_monitor *monitor = calloc(1, sizeof *monitor);
    if (monitor == NULL)
        return NULL;
    monitor->interval_ms = interval_ms > 0 ? interval_ms : SHOAL_TIER_PROBE_INTERVAL_MS;
    store_config database = shoal_config_store(config);
    cache_config redis = shoal_config_cache(config);
    char error[256] = "";
    monitor->store = store_open(&database);
    monitor->cache = cache_open(&redis, error, sizeof error);
    if (shoal_config_cache_separate(config) && monitor->cache != NULL) {
        cache_config tier = shoal_config_cache_tier(config);
        monitor->cache_tier = cache_open(&tier, error, sizeof error);
    }
    if (monitor->store == NULL || monitor->cache == NULL ||
        (shoal_config_cache_separate(config) && monitor->cache_tier == NULL)) {
        if (error[0] != '\0')
            shoal_log(SHOAL_LOG_ERROR, "tier", "cannot watch Redis: %s", error);
        store_close(monitor->store);
        cache_close(monitor->cache);
        cache_close(monitor->cache_tier);
        free(monitor);
        return NULL;
    }
    atomic_init(&monitor->postgres_up, true);
    atomic_init(&monitor->redis_up, true);
    atomic_init(&monitor->cache_up, true);
    probe(monitor);

    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&monitor->wake, &attributes);
    pthread_condattr_destroy(&attributes);
    pthread_mutex_init(&monitor->lock, NULL);
    if (pthread_create(&monitor->thread, NULL, run, monitor) != 0) {
        pthread_cond_destroy(&monitor->wake);
        pthread_mutex_destroy(&monitor->lock);
        store_close(monitor->store);
        cache_close(monitor->cache);
        cache_close(monitor->cache_tier);
        free(monitor);
        return NULL;
    }
    return monitor;
}

void shoal_tier_monitor_stop(shoal_tier_monitor *monitor)
{
    if (monitor == NULL)
        return;
    pthread_mutex_lock(&monitor->lock);
    monitor->stopping = true;
    pthread_cond_signal(&monitor->wake);
    pthread_mutex_unlock(&monitor->lock);
    pthread_join(monitor->thread, NULL);
    pthread_cond_destroy(&monitor->wake);
    pthread_mutex_destroy(&monitor->lock);
    store_close(monitor->store);
    cache_close(monitor->cache);
    cache_close(monitor->cache_tier);
    free(monitor);
}

bool shoal_tier_monitor_postgres_up(const shoal_tier_monitor *monitor)
{
    return atomic_load(&monitor->postgres_up);
}

bool shoal_tier_monitor_redis_up(const shoal_tier_monitor *monitor)
{
    return atomic_load(&monitor->redis_up);
}

bool shoal_tier_monitor_cache_separate(const shoal_tier_monitor *monitor)
{
    return monitor->cache_tier != NULL;
}

bool shoal_tier_monitor_cache_up(const shoal_tier_monitor *monitor)
{
    return monitor->cache_tier != NULL ? atomic_load(&monitor->cache_up) : atomic_load(&monitor->redis_up);
}

/* ---- the routes ------------------------------------------------------------ */

static int healthz(shoal_ctx *ctx)
{
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "status");
    shoal_json_write_string(out, "alive");
    shoal_json_write_key(out, "node");
    shoal_json_write_string(out, shoal_app_config(shoal_ctx_app(ctx))->node_name);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, 200, out);
}

static const char *readiness_name(shoal_readiness readiness)
{
    switch (readiness) {
    case SHOAL_READY:
        return "ready";
    case SHOAL_DRAINING:
        return "draining";
    case SHOAL_STARTING:
        break;
    }
    return "starting";
}

static int readyz(shoal_ctx *ctx)
{
    const shoal_tier_monitor *monitor = shoal_route_data(ctx);
    shoal_app *app = shoal_ctx_app(ctx);
    shoal_readiness readiness = shoal_app_readiness(app);
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "status");
    shoal_json_write_string(out, readiness_name(readiness));
    shoal_json_write_key(out, "node");
    shoal_json_write_string(out, shoal_app_config(app)->node_name);
    shoal_json_write_key(out, "postgres");
    shoal_json_write_string(out, shoal_tier_monitor_postgres_up(monitor) ? "up" : "down");
    shoal_json_write_key(out, "redis");
    shoal_json_write_string(out, shoal_tier_monitor_redis_up(monitor) ? "up" : "down");
    /* Only when there are two instances, so that one-instance bodies keep
     * their shape. */
    if (shoal_tier_monitor_cache_separate(monitor)) {
        shoal_json_write_key(out, "cache");
        shoal_json_write_string(out, shoal_tier_monitor_cache_up(monitor) ? "up" : "down");
    }
    shoal_json_close_object(out);
    /* Health checks run every second on every node: keep them out of caches. */
    shoal_set_header(ctx, "Cache-Control", "no-store");
    return shoal_json_send(ctx, readiness == SHOAL_READY ? 200 : 503, out);
}

static int init(shoal_app *app, void *monitor)
{
    shoal_blueprint *admin = shoal_app_admin(app);
    if (monitor == NULL)
        return shoal_app_fail(app, "no tier monitor for /readyz");
    /* /readyz names the tiers as this node sees them: for HAProxy and the
     * kubelet on the admin port only. /healthz tells nothing but that the
     * process answers, so clients and simple checks may have it on the
     * public port too, essential there as well: a busy node is alive. */
    if (shoal_route(admin, "GET", "/healthz", healthz) != 0 ||
        shoal_route_with(admin, "GET", "/readyz", readyz, monitor) != 0 ||
        shoal_route_essential(shoal_app_root(app), "GET", "/healthz", healthz, NULL) != 0)
        return -1;
    return 0;
}

shoal_extension shoal_health_extension(shoal_tier_monitor *monitor)
{
    return (shoal_extension){.name = "health", .init = init, .data = monitor};
}
