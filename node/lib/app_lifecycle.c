/* node/lib/app_lifecycle.c: the app made and freed (shoal_app_new,
 * shoal_app_free), the one place that composes the pieces (routers,
 * statements, the L1, the metric registry, the core's own metrics, the
 * workers) and takes them apart again: those pieces call app.c (setup and
 * the state the node shares), so app.c calls none of them. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/log.h>

#include "app_internal.h"

static atomic_ulong next_generation = 1;

/* What shoal_app_new allocates before the trusted proxies, for its failures. */
static void free_app_basics(shoal_app *app)
{
    free(app->admitted);
    shoal_router_free(app->router);
    shoal_router_free(app->admin_router);
    store_registry_free(app->statements);
    shoal_metric_registry_free(app->metrics);
    free(app->root.name);
    free(app->root.prefix);
    free(app->admin.name);
    free(app->admin.prefix);
    free(app);
}

shoal_app *shoal_app_new(const shoal_config *config)
{
    shoal_app *app = calloc(1, sizeof *app);
    if (app == NULL)
        return NULL;
    app->router = shoal_router_new();
    app->admin_router = shoal_router_new();
    app->statements = store_registry_new();
    app->root.name = strdup("app");
    app->root.prefix = strdup("");
    app->admin.name = strdup("admin");
    app->admin.prefix = strdup("");
    app->admitted = aligned_alloc(CACHE_LINE_BYTES, CACHE_LINE_BYTES);
    app->metrics = shoal_metric_registry_new();
    if (app->router == NULL || app->admin_router == NULL || app->statements == NULL || app->root.name == NULL ||
        app->root.prefix == NULL || app->admin.name == NULL || app->admin.prefix == NULL || app->admitted == NULL ||
        app->metrics == NULL) {
        free_app_basics(app);
        return NULL;
    }
    app->config = config;
    app->settings = config->settings; /* shoal_config_load's tables; shoal_main sets its own */
    app->generation = atomic_fetch_add(&next_generation, 1);
    app->root.app = app;
    app->root.listener = SHOAL_LISTENER_PUBLIC;
    app->admin.app = app;
    app->admin.listener = SHOAL_LISTENER_ADMIN;
    atomic_init(&app->readiness, SHOAL_STARTING);
    atomic_init(app->admitted, 0);
    pthread_mutex_init(&app->workers_lock, NULL);
    app->store_config = shoal_config_store(config);
    app->cache_config = shoal_config_cache(config);
    char reason[256];
    /* Validated with the configuration; parsing again cannot fail but for
     * memory. */
    app->trusted_proxies = shoal_proxies_parse(config->trusted_proxies != NULL ? config->trusted_proxies : "",
                                               reason, sizeof reason);
    if (app->trusted_proxies == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "setup_invalid", "--trusted-proxies: %s", reason);
        pthread_mutex_destroy(&app->workers_lock);
        free_app_basics(app);
        return NULL;
    }
    app->cache_tier_config = shoal_config_cache_tier(config);
    app->cache_separate = shoal_config_cache_separate(config);
    cache_l1_config l1_config = {
        .max_entries = config->l1_entries > 0 ? (size_t)config->l1_entries : 0,
        .max_bytes = config->l1_bytes,
        .ttl_ms = config->l1_ttl_ms,
        .stale_if_error_ms = config->cache_stale_if_error_ms,
    };
    app->l1 = cache_l1_new(&l1_config);
    if (app->l1 == NULL)
        shoal_log(SHOAL_LOG_WARNING, "l1", "out of memory: the per-node cache is off");
    /* An L1 without its subscriber would serve other nodes' overwritten
     * values until they expire: it serves nothing until one subscribes. */
    cache_l1_suspend(app->l1, true);
    /* The core's own modules register their metrics as any extension
     * does, first: /metrics lists them before the extensions'. */
    if (shoal_overload_register_metrics(app) != 0 || shoal_cached_register_metrics(app) != 0) {
        shoal_app_free(app);
        return NULL;
    }
    return app;
}

void shoal_app_free(shoal_app *app)
{
    if (app == NULL)
        return;
    /* Worker threads have stopped by now (the HTTP layer stops first).
     * Workers go before the extensions shut down, since a worker slot's
     * destroy may use what its extension owns. */
    for (shoal_worker *worker = app->workers; worker != NULL;) {
        shoal_worker *next = worker->next;
        shoal_worker_free(app, worker);
        worker = next;
    }
    shoal_app_pipe_counters_free(app);
    for (extension_entry *entry = app->extensions; entry != NULL;) {
        if (entry->extension.shutdown != NULL)
            entry->extension.shutdown(app, entry->extension.data);
        extension_entry *next = entry->next;
        free(entry);
        entry = next;
    }
    for (shoal_blueprint *bp = app->blueprints; bp != NULL;) {
        shoal_blueprint *next = bp->next;
        shoal_blueprint_free_contents(bp);
        free(bp);
        bp = next;
    }
    shoal_blueprint_free_contents(&app->root);
    shoal_blueprint_free_contents(&app->admin);
    for (shoal_route_entry *route = app->routes; route != NULL;) {
        shoal_route_entry *next = route->next;
        free(route->pattern);
        free(route->methods);
        free(route);
        route = next;
    }
    /* After the shutdowns, which may still read it; newest first. */
    for (published_entry *entry = app->published; entry != NULL;) {
        published_entry *next = entry->next;
        if (entry->release != NULL)
            entry->release(entry->state);
        free(entry->name);
        free(entry);
        entry = next;
    }
    /* Last, newest first: an extension's published state and hooks may
     * point into its instance, never the other way round. */
    for (size_t i = app->instance_count; i > 0; i--)
        if (app->instances[i - 1].destroy != NULL)
            app->instances[i - 1].destroy(app->instances[i - 1].instance);
    free(app->instances);
    free(app->worker_slots);
    shoal_proxies_free(app->trusted_proxies);
    cache_invalidation_stop(app->subscriber); /* it writes to the L1 until it stops */
    cache_l1_free(app->l1);
    shoal_router_free(app->router);
    shoal_router_free(app->admin_router);
    /* After the workers: their stores read it until they close. */
    store_registry_free(app->statements);
    shoal_metric_registry_free(app->metrics);
    pthread_mutex_destroy(&app->workers_lock);
    free(app->admitted);
    free(app);
}
