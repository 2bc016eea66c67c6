/* node/lib/app_internal.h: what app.c, app_lifecycle.c, worker.c, ctx.c,
 * answer.c, body.c and pipeline.c share: the layouts of the app, its
 * blueprints, routes and workers, and the helpers more than one of them
 * calls on the request path, inline so that splitting app.c by job added
 * no call there. Only those files include it; the rest of node/ sees
 * context.h. */
#ifndef SHOAL_APP_INTERNAL_H
#define SHOAL_APP_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <shoal/cache.h>
#include <shoal/l1.h>
#include <shoal/metrics.h>
#include <shoal/store.h>

#include "cache/invalidation.h"
#include "context.h"
#include "metrics_registry.h"
#include "proxy.h"

/* Growable arrays of hooks; only touched during setup. */
#define DEFINE_LIST(type, name)                                                                    \
    typedef struct name {                                                                          \
        type *items;                                                                               \
        size_t count;                                                                              \
    } name;

typedef struct before_hook {
    shoal_before_fn fn;
    void *data;
} before_hook;
typedef struct after_hook {
    shoal_after_fn fn;
    void *data;
} after_hook;
typedef struct teardown_hook {
    shoal_teardown_fn fn;
    void *data;
} teardown_hook;
typedef struct error_handler {
    int status;
    shoal_error_handler_fn fn;
    void *data;
} error_handler;

DEFINE_LIST(before_hook, before_list)
DEFINE_LIST(after_hook, after_list)
DEFINE_LIST(teardown_hook, teardown_list)
DEFINE_LIST(error_handler, error_handler_list)

struct shoal_blueprint {
    shoal_app *app;
    char *name;
    char *prefix;
    shoal_listener listener; /* where its routes are served */
    before_list before;
    after_list after;
    teardown_list teardown;
    error_handler_list error_handlers;
    shoal_blueprint *next;
};

struct shoal_route_entry {
    shoal_handler_fn handler;
    void *data;
    shoal_blueprint *blueprint;
    shoal_route_entry *next;
    char *pattern; /* the full pattern and the methods, as /metrics labels them */
    char *methods;
    size_t metrics_index; /* 0 counts requests no route matched */
    bool metrics_shared;  /* another entry (the same route on the other listener) reports the counters */
    bool essential;       /* never shed, no deadline (shoal_route_essential) */
};

typedef struct worker_slot_spec {
    void *(*create)(void *data);
    void (*destroy)(void *state);
    void *data;
} worker_slot_spec;

typedef struct published_entry {
    char *name;
    void *state;
    void (*release)(void *state); /* may be NULL */
    struct published_entry *next;
} published_entry;

/* An extension's instance (its create's), destroyed with the app. */
typedef struct instance_entry {
    const shoal_extension *extension; /* the address given to shoal_app_extend */
    void *instance;
    void (*destroy)(void *instance); /* may be NULL */
} instance_entry;

typedef struct extension_entry {
    shoal_extension extension;
    struct extension_entry *next;
} extension_entry;

/* Workers sit on cache lines of their own: each is written on every
 * request by its own thread, and a line shared with a worker on another
 * core would travel between the cores on every request. */
#define CACHE_LINE_BYTES 64

struct shoal_worker {
    shoal_app *app;
    store *store;
    cache *cache;
    cache *cache_tier; /* == cache unless the cache has its own instance */
    void **slots;
    shoal_worker *next;
    shoal_worker *next_spare; /* in app->spares until a thread takes it */
    alignas(CACHE_LINE_BYTES) atomic_int in_flight; /* written by the worker's thread, read when draining */
    atomic_uint connections;                        /* the same, read by /metrics */
    int public_index;                               /* its public listener worker's, or -1 */
    unsigned long request_counter;
    shoal_route_counters *route_counters; /* by metrics_index, on lines of their own */
    size_t route_counter_count;
    atomic_ullong *metric_cells; /* the registered metrics' (metrics_registry.c), on lines of their own */
    size_t metric_cell_count;
};

struct shoal_app {
    const shoal_config *config;
    unsigned long generation;
    shoal_router *router; /* the public listener's routes */
    shoal_blueprint root;
    shoal_router *admin_router; /* the admin listener's (shoal_app_admin) */
    shoal_blueprint admin;
    shoal_blueprint *blueprints; /* others, newest first */
    shoal_route_entry *routes;
    size_t route_count;
    extension_entry *extensions; /* newest first */
    published_entry *published;
    instance_entry *instances; /* oldest first */
    size_t instance_count;
    void *standard_instances[SHOAL_INSTANCE_COUNT]; /* shoal_app_set_standard_instance */
    worker_slot_spec *worker_slots;
    int worker_slot_count;
    int request_slot_count;
    bool frozen;
    bool setup_failed;
    unsigned setup_failures;
    char first_failure[512]; /* "" until setup fails */
    const char *initializing; /* the extension whose init runs, or NULL */
    atomic_int readiness;
    /* Requests in the node, for admission: on a cache line of its own,
     * since every request on every core writes it twice. */
    atomic_int *admitted;

    pthread_mutex_t workers_lock; /* only taken when a thread creates or takes its worker */
    shoal_worker *workers;
    shoal_worker *spares; /* made (and connected) at start, not yet a thread's */
    /* The loops' pipes count into these (worker.c): they live as long as
     * the app, so a scrape never reads a pipe its loop is closing. */
    struct pipe_counters_entry *pipe_counters;
    store_registry *statements;
    store_config store_config; /* its registry is set when setup freezes */
    cache_config cache_config;
    shoal_proxies *trusted_proxies;
    cache_config cache_tier_config;
    bool cache_separate;
    cache_l1 *l1; /* shared by the workers; NULL when memory ran out at start */
    cache_invalidation *subscriber; /* keeps l1 coherent; NULL until started */
    const shoal_settings_values *settings; /* shoal_main's tables; NULL otherwise */
    shoal_metric_registry *metrics; /* what shoal_app_counter and _histogram registered */
    shoal_core_metrics core_metrics;
};

/* The root blueprint of the listener the request arrived on: its hooks and
 * error handlers are the ones every request there sees. */
static inline shoal_blueprint *shoal_listener_root(shoal_ctx *ctx)
{
    return ctx->listener == SHOAL_LISTENER_ADMIN ? &ctx->app->admin : &ctx->app->root;
}

/* The answer when building the real one failed (memory): a constant, so
 * that it cannot fail in turn. */
static inline void shoal_answer_internal_error(shoal_ctx *ctx)
{
    static const char body[] = "{\"errors\":{\"body\":[\"internal error\"]},\"code\":\"internal\"}";
    shoal_text(ctx, 500, "application/json", body, sizeof body - 1);
}

/* app.c: frees what a blueprint holds, not the blueprint (shoal_app_free
 * and a failed shoal_blueprint_new). */
void shoal_blueprint_free_contents(shoal_blueprint *bp);

/* worker.c: closes a worker's connections and frees it, with its slots'
 * state (shoal_app_free, once the threads have stopped). */
void shoal_worker_free(shoal_app *app, shoal_worker *worker);
/* worker.c: the loops' pipe counters (shoal_app_free, once the loops and
 * their pipes are gone). */
void shoal_app_pipe_counters_free(shoal_app *app);

#endif
