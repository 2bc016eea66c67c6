/* node/app.c: registration (setup) and the request pipeline. */
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache.h"
#include "context.h"
#include "invalidation.h"
#include "json.h"
#include "l1.h"
#include "log.h"
#include "metrics.h"
#include "metrics_registry.h"
#include "proxy.h"
#include "store.h"

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

static atomic_ulong next_generation = 1;
static _Thread_local shoal_worker *thread_worker;
/* Kept apart from the worker: the worker is freed with its app, and a later
 * app's lookup must not read it. */
static _Thread_local unsigned long thread_worker_generation;

static const char internal_error_body[] =
    "{\"errors\":{\"body\":[\"internal error\"]},\"code\":\"internal\"}";

/* ---- setup -------------------------------------------------------------- */

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

static void free_blueprint_contents(shoal_blueprint *bp)
{
    free(bp->name);
    free(bp->prefix);
    free(bp->before.items);
    free(bp->after.items);
    free(bp->teardown.items);
    free(bp->error_handlers.items);
}

static void free_worker(shoal_app *app, shoal_worker *worker)
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

void shoal_app_free(shoal_app *app)
{
    if (app == NULL)
        return;
    /* Worker threads have stopped by now (the HTTP layer stops first).
     * Workers go before the extensions shut down, since a worker slot's
     * destroy may use what its extension owns. */
    for (shoal_worker *worker = app->workers; worker != NULL;) {
        shoal_worker *next = worker->next;
        free_worker(app, worker);
        worker = next;
    }
    for (extension_entry *entry = app->extensions; entry != NULL;) {
        if (entry->extension.shutdown != NULL)
            entry->extension.shutdown(app, entry->extension.data);
        extension_entry *next = entry->next;
        free(entry);
        entry = next;
    }
    for (shoal_blueprint *bp = app->blueprints; bp != NULL;) {
        shoal_blueprint *next = bp->next;
        free_blueprint_contents(bp);
        free(bp);
        bp = next;
    }
    free_blueprint_contents(&app->root);
    free_blueprint_contents(&app->admin);
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

const shoal_config *shoal_app_config(const shoal_app *app)
{
    return app->config;
}

shoal_blueprint *shoal_app_root(shoal_app *app)
{
    return &app->root;
}

shoal_blueprint *shoal_app_admin(shoal_app *app)
{
    return &app->admin;
}

/* Registration after serving started is a programming error: say so loudly.
 * Registration that is merely invalid marks the setup as failed, so that
 * shoal_app_freeze refuses to serve a half-registered app. */
static bool setup_open(shoal_app *app, const char *what)
{
    if (!app->frozen)
        return true;
    shoal_log(SHOAL_LOG_ERROR, "setup_after_start",
              "cannot register %s: setup is frozen once the node serves", what);
    return false;
}

int shoal_app_fail(shoal_app *app, const char *format, ...)
{
    /* Named after the extension whose init runs; the first reason is kept
     * for shoal_app_failure. */
    char message[sizeof app->first_failure];
    int prefix = 0;
    if (app->initializing != NULL) {
        prefix = snprintf(message, sizeof message, "extension %s: ", app->initializing);
        if (prefix < 0 || (size_t)prefix >= sizeof message)
            prefix = (int)sizeof message - 1;
    }
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message + prefix, sizeof message - (size_t)prefix, format, arguments);
    va_end(arguments);
    app->setup_failed = true;
    app->setup_failures++;
    if (app->first_failure[0] == '\0')
        memcpy(app->first_failure, message, sizeof message);
    shoal_log(SHOAL_LOG_ERROR, "setup_invalid", "%s", message);
    return -1;
}

const char *shoal_app_failure(const shoal_app *app)
{
    return app->first_failure[0] != '\0' ? app->first_failure : NULL;
}

static int setup_error(shoal_app *app, const char *what, const char *reason)
{
    return shoal_app_fail(app, "cannot register %s: %s", what, reason);
}

shoal_blueprint *shoal_blueprint_new(shoal_app *app, const char *name, const char *prefix)
{
    if (!setup_open(app, "a blueprint"))
        return NULL;
    size_t length = prefix != NULL ? strlen(prefix) : 0;
    if (prefix == NULL || (length > 0 && (prefix[0] != '/' || prefix[length - 1] == '/'))) {
        setup_error(app, "a blueprint", "the prefix must be empty or start with '/' and not end with one");
        return NULL;
    }
    shoal_blueprint *bp = calloc(1, sizeof *bp);
    if (bp == NULL) {
        setup_error(app, "a blueprint", "out of memory");
        return NULL;
    }
    bp->app = app;
    bp->name = strdup(name != NULL ? name : prefix);
    bp->prefix = strdup(prefix);
    if (bp->name == NULL || bp->prefix == NULL) {
        free_blueprint_contents(bp);
        free(bp);
        setup_error(app, "a blueprint", "out of memory");
        return NULL;
    }
    bp->next = app->blueprints;
    app->blueprints = bp;
    return bp;
}

static unsigned parse_methods(const char *text)
{
    unsigned methods = 0;
    char token[16];
    while (text != NULL) {
        const char *bar = strchr(text, '|');
        size_t length = bar != NULL ? (size_t)(bar - text) : strlen(text);
        if (length == 0 || length >= sizeof token)
            return 0;
        memcpy(token, text, length);
        token[length] = '\0';
        unsigned method = shoal_router_method_from_name(token);
        if (method == SHOAL_METHOD_OTHER)
            return 0;
        methods |= method;
        text = bar != NULL ? bar + 1 : NULL;
    }
    return methods;
}

int shoal_route(shoal_blueprint *bp, const char *method, const char *pattern, shoal_handler_fn handler)
{
    return shoal_route_with(bp, method, pattern, handler, NULL);
}

int shoal_route_with(shoal_blueprint *bp, const char *method, const char *pattern,
                     shoal_handler_fn handler, void *data)
{
    shoal_app *app = bp->app;
    if (!setup_open(app, "a route"))
        return -1;
    unsigned methods = parse_methods(method);
    if (methods == 0)
        return setup_error(app, "a route", "unknown method");
    if (handler == NULL || pattern == NULL || pattern[0] != '/')
        return setup_error(app, "a route", "a route needs a handler and a pattern starting with '/'");

    size_t length = strlen(bp->prefix) + strlen(pattern) + 1;
    char *full = malloc(length);
    shoal_route_entry *route = calloc(1, sizeof *route);
    if (full == NULL || route == NULL) {
        free(full);
        free(route);
        return setup_error(app, "a route", "out of memory");
    }
    snprintf(full, length, "%s%s", bp->prefix, pattern);
    route->methods = strdup(method);
    if (route->methods == NULL) {
        free(full);
        free(route);
        return setup_error(app, "a route", "out of memory");
    }
    route->handler = handler;
    route->data = data;
    route->blueprint = bp;
    /* What the admin listener serves is for HAProxy, the kubelet and
     * Prometheus: a busy node must still answer them. */
    route->essential = bp->listener == SHOAL_LISTENER_ADMIN;
    shoal_router *router = bp->listener == SHOAL_LISTENER_ADMIN ? app->admin_router : app->router;
    char reason[256];
    int rc = shoal_router_add(router, methods, full, route, reason, sizeof reason);
    if (rc != 0) {
        free(full);
        free(route->methods);
        free(route);
        return setup_error(app, "a route", reason);
    }
    route->pattern = full;
    /* The same route on both listeners (/healthz) is one series in /metrics:
     * two with the same labels would be a duplicate to Prometheus. */
    const shoal_route_entry *twin = app->routes;
    while (twin != NULL && (strcmp(twin->pattern, full) != 0 || strcmp(twin->methods, route->methods) != 0))
        twin = twin->next;
    route->metrics_shared = twin != NULL;
    route->metrics_index = twin != NULL ? twin->metrics_index : ++app->route_count;
    route->next = app->routes;
    app->routes = route;
    return 0;
}

int shoal_route_essential(shoal_blueprint *bp, const char *method, const char *pattern,
                          shoal_handler_fn handler, void *data)
{
    if (shoal_route_with(bp, method, pattern, handler, data) != 0)
        return -1;
    bp->app->routes->essential = true; /* the newest route comes first */
    return 0;
}

/* Appends one item to a hook list of app's (every list has the same
 * shape), returning from the calling function when memory runs out. */
#define APPEND(app, what, list, item)                                                              \
    do {                                                                                           \
        void *grown = realloc((list).items, ((list).count + 1) * sizeof *(list).items);            \
        if (grown == NULL)                                                                         \
            return setup_error((app), (what), "out of memory");                                    \
        (list).items = grown;                                                                      \
        (list).items[(list).count++] = (item);                                                     \
    } while (0)

int shoal_before(shoal_blueprint *bp, shoal_before_fn hook, void *data)
{
    if (!setup_open(bp->app, "a before hook"))
        return -1;
    if (hook == NULL)
        return setup_error(bp->app, "a before hook", "the hook is NULL");
    APPEND(bp->app, "a before hook", bp->before, ((before_hook){hook, data}));
    return 0;
}

int shoal_after(shoal_blueprint *bp, shoal_after_fn hook, void *data)
{
    if (!setup_open(bp->app, "an after hook"))
        return -1;
    if (hook == NULL)
        return setup_error(bp->app, "an after hook", "the hook is NULL");
    APPEND(bp->app, "an after hook", bp->after, ((after_hook){hook, data}));
    return 0;
}

int shoal_teardown(shoal_blueprint *bp, shoal_teardown_fn hook, void *data)
{
    if (!setup_open(bp->app, "a teardown hook"))
        return -1;
    if (hook == NULL)
        return setup_error(bp->app, "a teardown hook", "the hook is NULL");
    APPEND(bp->app, "a teardown hook", bp->teardown, ((teardown_hook){hook, data}));
    return 0;
}

int shoal_errorhandler(shoal_blueprint *bp, int status, shoal_error_handler_fn handler, void *data)
{
    if (!setup_open(bp->app, "an error handler"))
        return -1;
    if (handler == NULL || status < 400 || status > 599)
        return setup_error(bp->app, "an error handler", "needs a handler and a status from 400 to 599");
    APPEND(bp->app, "an error handler", bp->error_handlers, ((error_handler){status, handler, data}));
    return 0;
}

int shoal_app_extend(shoal_app *app, const shoal_extension *extension)
{
    if (!setup_open(app, "an extension"))
        return -1;
    const char *name = extension->name != NULL ? extension->name : "(unnamed)";
    extension_entry *entry = calloc(1, sizeof *entry);
    if (entry == NULL)
        return shoal_app_fail(app, "extension %s: cannot be loaded: out of memory", name);
    entry->extension = *extension;
    /* Whatever init registers or publishes is the app's from then on and is
     * released with it, whether init succeeds or not (shoal.h); so a failed
     * init is simply not kept: it gets no shutdown, and there is nothing to
     * roll back. */
    unsigned failures_before = app->setup_failures;
    const char *outer = app->initializing; /* an init may load another extension */
    app->initializing = name;
    int rc = extension->init != NULL ? extension->init(app, extension->data) : 0;
    if (rc != 0 && app->setup_failures == failures_before)
        shoal_app_fail(app, "its init failed without saying why");
    app->initializing = outer;
    if (rc != 0) {
        free(entry);
        return -1;
    }
    entry->next = app->extensions;
    app->extensions = entry;
    /* An init that went on after a registration failed is kept (it
     * succeeded, so its shutdown runs) but the node still must not start. */
    if (app->setup_failures != failures_before)
        return -1;
    shoal_log(SHOAL_LOG_INFO, "extension", "loaded %s", name);
    return 0;
}

shoal_worker_slot shoal_app_worker_slot(shoal_app *app, void *(*create)(void *data),
                                        void (*destroy)(void *state), void *data)
{
    if (!setup_open(app, "a worker slot"))
        return -1;
    worker_slot_spec *grown = realloc(app->worker_slots, (size_t)(app->worker_slot_count + 1) * sizeof *grown);
    if (grown == NULL)
        return setup_error(app, "a worker slot", "out of memory");
    app->worker_slots = grown;
    app->worker_slots[app->worker_slot_count] = (worker_slot_spec){create, destroy, data};
    return app->worker_slot_count++;
}

static int add_published(shoal_app *app, const char *name, void *state, void (*release)(void *state))
{
    if (!setup_open(app, "published state"))
        return -1;
    if (name == NULL || shoal_app_published(app, name) != NULL)
        return setup_error(app, "published state", "the name is missing or taken");
    published_entry *entry = calloc(1, sizeof *entry);
    char *copy = strdup(name);
    if (entry == NULL || copy == NULL) {
        free(entry);
        free(copy);
        return setup_error(app, "published state", "out of memory");
    }
    entry->name = copy;
    entry->state = state;
    entry->release = release;
    entry->next = app->published;
    app->published = entry;
    return 0;
}

int shoal_app_publish(shoal_app *app, const char *name, void *state, void (*release)(void *state))
{
    /* The app owns state from here on: what it cannot keep it releases now,
     * so that the caller never has to tell the two cases apart. */
    int rc = add_published(app, name, state, release);
    if (rc != 0 && release != NULL)
        release(state);
    return rc;
}

void shoal_app_set_settings(shoal_app *app, const shoal_settings_values *settings)
{
    app->settings = settings;
}

const void *shoal_app_settings(const shoal_app *app, const shoal_settings *settings)
{
    return app != NULL ? shoal_settings_of(app->settings, settings) : NULL;
}

void *shoal_app_published(const shoal_app *app, const char *name)
{
    for (const published_entry *entry = app->published; entry != NULL; entry = entry->next)
        if (strcmp(entry->name, name) == 0)
            return entry->state;
    return NULL;
}

shoal_request_slot shoal_app_request_slot(shoal_app *app)
{
    if (!setup_open(app, "a request slot"))
        return -1;
    return app->request_slot_count++;
}

int shoal_app_freeze(shoal_app *app)
{
    app->frozen = true;
    shoal_router_freeze(app->router);
    shoal_router_freeze(app->admin_router);
    /* Workers open their stores after this, with every statement the
     * extensions registered; a worker made before (only tests do) gets none. */
    store_registry_freeze(app->statements);
    app->store_config.registry = app->statements;
    return app->setup_failed ? -1 : 0;
}

bool shoal_app_frozen(const shoal_app *app)
{
    return app->frozen;
}

shoal_readiness shoal_app_readiness(const shoal_app *app)
{
    return (shoal_readiness)atomic_load(&app->readiness);
}

void shoal_app_set_readiness(shoal_app *app, shoal_readiness readiness)
{
    atomic_store(&app->readiness, (int)readiness);
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

shoal_metric_registry *shoal_app_metric_registry(shoal_app *app)
{
    return app->metrics;
}

shoal_core_metrics *shoal_app_core_metrics(shoal_app *app)
{
    return &app->core_metrics;
}

atomic_ullong *shoal_ctx_metric_cells(shoal_ctx *ctx, size_t *count)
{
    if (ctx == NULL || ctx->worker == NULL) {
        *count = 0;
        return NULL;
    }
    *count = ctx->worker->metric_cell_count;
    return ctx->worker->metric_cells;
}

void shoal_app_metric_cells_each(shoal_app *app, shoal_metric_cells_fn fn, void *data)
{
    pthread_mutex_lock(&app->workers_lock);
    for (shoal_worker *worker = app->workers; worker != NULL; worker = worker->next)
        if (worker->metric_cell_count > 0)
            fn(worker->metric_cells, worker->metric_cell_count, data);
    pthread_mutex_unlock(&app->workers_lock);
}

/* Relaxed: the count orders nothing else. */
bool shoal_app_admit(shoal_app *app)
{
    int before = atomic_fetch_add_explicit(app->admitted, 1, memory_order_relaxed);
    int limit = app->config->max_in_flight;
    return limit <= 0 || before < limit;
}

void shoal_app_leave(shoal_app *app)
{
    atomic_fetch_sub_explicit(app->admitted, 1, memory_order_relaxed);
}

int shoal_app_admitted(shoal_app *app)
{
    return atomic_load_explicit(app->admitted, memory_order_relaxed);
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

/* ---- workers ------------------------------------------------------------ */

/* A worker with its connections' settings, not connected yet (store/ and
 * cache/ connect on first use), listed in app->workers. */
static shoal_worker *worker_new(shoal_app *app)
{
    shoal_worker *worker = aligned_alloc(alignof(shoal_worker), sizeof *worker);
    if (worker == NULL)
        return NULL;
    memset(worker, 0, sizeof *worker);
    atomic_init(&worker->in_flight, 0);
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

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
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
        if (monotonic_ms() >= deadline_ms) {
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
            if (redis_reachable && monotonic_ms() < deadline_ms) {
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

/* ---- the request context -------------------------------------------------- */

void shoal_ctx_init(shoal_ctx *ctx, shoal_app *app, shoal_worker *worker,
                    const shoal_transport *transport, void *connection, const char *method,
                    const char *path, void *arena_block, size_t arena_block_size)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->app = app;
    ctx->worker = worker;
    shoal_arena_init(&ctx->arena, arena_block, arena_block_size);
    ctx->transport = transport;
    ctx->connection = connection;
    ctx->method_name = method;
    ctx->method = shoal_router_method_from_name(method);
    ctx->path = path;
    ctx->route_result = SHOAL_ROUTER_NOT_FOUND;
    ctx->headers_tail = &ctx->headers;
    ctx->status = 500;
}

void shoal_ctx_set_body(shoal_ctx *ctx, const char *body, size_t length)
{
    ctx->body = body;
    ctx->body_length = length;
}

void shoal_ctx_reject(shoal_ctx *ctx, int status, const char *code, const char *message)
{
    ctx->rejection_status = status;
    ctx->rejection_code = code;
    ctx->rejection_message = message;
}

void shoal_ctx_reject_with(shoal_ctx *ctx, const shoal_error_code *error, const char *message)
{
    shoal_ctx_reject(ctx, error->status, error->code, message != NULL ? message : error->message);
}

shoal_app *shoal_ctx_app(shoal_ctx *ctx)
{
    return ctx->app;
}

shoal_arena *shoal_ctx_arena(shoal_ctx *ctx)
{
    return &ctx->arena;
}

unsigned shoal_method(const shoal_ctx *ctx)
{
    return ctx->method;
}

const char *shoal_method_name(const shoal_ctx *ctx)
{
    return ctx->method_name;
}

const char *shoal_path(const shoal_ctx *ctx)
{
    return ctx->path;
}

const char *shoal_param(const shoal_ctx *ctx, const char *name)
{
    return shoal_router_param_value(&ctx->match, name);
}

const char *shoal_query(shoal_ctx *ctx, const char *name)
{
    return ctx->transport != NULL && ctx->transport->query != NULL
               ? ctx->transport->query(ctx->connection, name)
               : NULL;
}

const char *shoal_header(shoal_ctx *ctx, const char *name)
{
    return ctx->transport != NULL && ctx->transport->header != NULL
               ? ctx->transport->header(ctx->connection, name)
               : NULL;
}

const char *shoal_body(const shoal_ctx *ctx, size_t *length)
{
    if (length != NULL)
        *length = ctx->body_length;
    return ctx->body;
}

const char *shoal_peer_address(shoal_ctx *ctx)
{
    if (ctx->peer_address == NULL && ctx->transport != NULL && ctx->transport->client_address != NULL)
        ctx->peer_address = ctx->transport->client_address(ctx->connection, &ctx->arena);
    return ctx->peer_address != NULL ? ctx->peer_address : "";
}

static const char *forwarded_for(shoal_ctx *ctx)
{
    if (ctx->transport == NULL)
        return NULL;
    if (ctx->transport->header_all != NULL)
        return ctx->transport->header_all(ctx->connection, "X-Forwarded-For", &ctx->arena);
    return shoal_header(ctx, "X-Forwarded-For");
}

bool shoal_ctx_peer_trusted(shoal_ctx *ctx)
{
    return shoal_proxies_contains(ctx->app->trusted_proxies, shoal_peer_address(ctx));
}

const char *shoal_client_address(shoal_ctx *ctx)
{
    if (ctx->client_address != NULL)
        return ctx->client_address;
    const char *peer = shoal_peer_address(ctx);
    /* Untrusted peers never get their X-Forwarded-For read at all. */
    const char *forwarded = shoal_proxies_contains(ctx->app->trusted_proxies, peer) ? forwarded_for(ctx) : NULL;
    ctx->client_address = shoal_proxies_client(ctx->app->trusted_proxies, peer, forwarded, &ctx->arena);
    return ctx->client_address != NULL ? ctx->client_address : "";
}

const char *shoal_allowed_methods(shoal_ctx *ctx)
{
    if (ctx->route_result == SHOAL_ROUTER_NOT_FOUND)
        return NULL;
    char text[96];
    /* OPTIONS is always answered, automatically if no route claims it. */
    shoal_router_format_allow(ctx->match.allowed | SHOAL_METHOD_OPTIONS, text, sizeof text);
    return shoal_arena_strdup(&ctx->arena, text);
}

void *shoal_route_data(const shoal_ctx *ctx)
{
    return ctx->route != NULL ? ctx->route->data : NULL;
}

bool shoal_route_matched(const shoal_ctx *ctx)
{
    return ctx->route_result == SHOAL_ROUTER_FOUND;
}

bool shoal_rejected(const shoal_ctx *ctx)
{
    return ctx->rejection_status != 0;
}

const char *shoal_request_id(const shoal_ctx *ctx)
{
    return ctx->request_id;
}

void shoal_set_request_id(shoal_ctx *ctx, const char *request_id)
{
    ctx->request_id = shoal_arena_strdup(&ctx->arena, request_id);
}

void *shoal_request_get(const shoal_ctx *ctx, shoal_request_slot slot)
{
    if (ctx->request_slots == NULL || slot < 0 || slot >= ctx->app->request_slot_count)
        return NULL;
    return ctx->request_slots[slot];
}

void shoal_request_set(shoal_ctx *ctx, shoal_request_slot slot, void *value)
{
    if (slot < 0 || slot >= ctx->app->request_slot_count)
        return;
    if (ctx->request_slots == NULL) {
        ctx->request_slots = shoal_arena_calloc(&ctx->arena, (size_t)ctx->app->request_slot_count,
                                                sizeof *ctx->request_slots);
        if (ctx->request_slots == NULL)
            return;
    }
    ctx->request_slots[slot] = value;
}

void *shoal_worker_get(shoal_ctx *ctx, shoal_worker_slot slot)
{
    if (ctx->worker == NULL || slot < 0 || slot >= ctx->app->worker_slot_count)
        return NULL;
    return ctx->worker->slots[slot];
}

store *shoal_store(shoal_ctx *ctx)
{
    return ctx->worker != NULL ? ctx->worker->store : NULL;
}

cache *shoal_cache(shoal_ctx *ctx)
{
    return ctx->worker != NULL ? ctx->worker->cache : NULL;
}

cache *shoal_cache_tier(shoal_ctx *ctx)
{
    return ctx->worker != NULL ? ctx->worker->cache_tier : NULL;
}

cache_l1 *shoal_app_l1(shoal_app *app)
{
    return app->l1;
}

int shoal_app_start_invalidation(shoal_app *app, char *error, size_t error_size)
{
    if (!cache_l1_enabled(app->l1) || app->subscriber != NULL)
        return 0;
    app->subscriber = cache_invalidation_start(&app->cache_tier_config, app->l1, error, error_size);
    return app->subscriber != NULL ? 0 : -1;
}

bool shoal_app_l1_subscribed(const shoal_app *app)
{
    return app->subscriber != NULL && cache_invalidation_subscribed(app->subscriber);
}

store_registry *shoal_app_statements(shoal_app *app)
{
    return app->statements;
}

static void release_result(void *result)
{
    store_result_free(result);
}

store_result *shoal_keep_result(shoal_ctx *ctx, store_result *result)
{
    /* When the bookkeeping cannot be allocated the arena frees the result
     * at once: the caller then gets NULL rather than a dangling result. */
    if (result != NULL && shoal_arena_on_release(&ctx->arena, release_result, result) != 0)
        return NULL;
    return result;
}

/* ---- answering ------------------------------------------------------------ */

int shoal_text(shoal_ctx *ctx, int status, const char *content_type, const char *body, size_t length)
{
    ctx->status = status;
    ctx->content_type = content_type;
    ctx->response_body = body;
    ctx->response_length = length;
    ctx->answer_count++;
    return 0;
}

int shoal_empty(shoal_ctx *ctx, int status)
{
    return shoal_text(ctx, status, NULL, NULL, 0);
}

static void answer_internal_error(shoal_ctx *ctx)
{
    shoal_text(ctx, 500, "application/json", internal_error_body, sizeof internal_error_body - 1);
}

int shoal_json(shoal_ctx *ctx, int status, json_t *value)
{
    if (value == NULL) {
        answer_internal_error(ctx);
        return -1;
    }
    size_t length = 0;
    char *text = shoal_json_dump(&ctx->arena, value, &length);
    json_decref(value);
    if (text == NULL) {
        answer_internal_error(ctx);
        return -1;
    }
    return shoal_text(ctx, status, "application/json", text, length);
}

shoal_json_writer *shoal_json_begin(shoal_ctx *ctx)
{
    return shoal_json_writer_new(&ctx->arena);
}

int shoal_json_send(shoal_ctx *ctx, int status, shoal_json_writer *writer)
{
    size_t length = 0;
    const char *text = shoal_json_writer_text(writer, &length);
    if (text == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "json", "%s %s: the JSON writer failed (memory, invalid UTF-8, or "
                  "keys, values and brackets out of order)", ctx->method_name, ctx->path);
        answer_internal_error(ctx);
        return -1;
    }
    return shoal_text(ctx, status, "application/json", text, length);
}

/* The root blueprint of the listener the request arrived on: its hooks and
 * error handlers are the ones every request there sees. */
static shoal_blueprint *listener_root(shoal_ctx *ctx)
{
    return ctx->listener == SHOAL_LISTENER_ADMIN ? &ctx->app->admin : &ctx->app->root;
}

static const error_handler *find_error_handler(const shoal_blueprint *bp, int status)
{
    for (size_t i = 0; bp != NULL && i < bp->error_handlers.count; i++)
        if (bp->error_handlers.items[i].status == status)
            return &bp->error_handlers.items[i];
    return NULL;
}

int shoal_error(shoal_ctx *ctx, int status, const char *code, const char *field, const char *message)
{
    /* A message may quote what the client sent (a parse error does), and
     * the envelope must be JSON whatever that was. */
    const char *valid_message = shoal_json_valid_utf8(&ctx->arena, message != NULL ? message : "");
    const char *valid_field = shoal_json_valid_utf8(&ctx->arena, field != NULL ? field : "body");
    shoal_error_info info = {
        .status = status,
        .code = code != NULL ? code : "error",
        .field = valid_field != NULL ? valid_field : "body",
        .message = valid_message != NULL ? valid_message : "",
    };
    if (!ctx->in_error_handler) {
        const error_handler *handler = NULL;
        if (ctx->route != NULL)
            handler = find_error_handler(ctx->route->blueprint, status);
        if (handler == NULL)
            handler = find_error_handler(listener_root(ctx), status);
        if (handler != NULL) {
            unsigned answers_before = ctx->answer_count;
            ctx->in_error_handler = true;
            int rc = handler->fn(ctx, &info, handler->data);
            ctx->in_error_handler = false;
            if (rc == 0 && ctx->answer_count != answers_before)
                return 0;
        }
    }
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "errors");
    shoal_json_open_object(out);
    shoal_json_write_key(out, info.field);
    shoal_json_open_array(out);
    shoal_json_write_string(out, info.message);
    shoal_json_close_array(out);
    shoal_json_close_object(out);
    shoal_json_write_key(out, "code");
    shoal_json_write_string(out, info.code);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, status, out);
}

static shoal_header_entry *find_header(const shoal_ctx *ctx, const char *name)
{
    for (shoal_header_entry *entry = ctx->headers; entry != NULL; entry = entry->next)
        if (strcasecmp(entry->name, name) == 0)
            return entry;
    return NULL;
}

int shoal_add_header(shoal_ctx *ctx, const char *name, const char *value)
{
    shoal_header_entry *entry = shoal_arena_alloc(&ctx->arena, sizeof *entry);
    if (entry == NULL)
        return -1;
    entry->name = shoal_arena_strdup(&ctx->arena, name);
    entry->value = shoal_arena_strdup(&ctx->arena, value);
    if (entry->name == NULL || entry->value == NULL)
        return -1;
    entry->next = NULL;
    *ctx->headers_tail = entry;
    ctx->headers_tail = &entry->next;
    return 0;
}

int shoal_set_header(shoal_ctx *ctx, const char *name, const char *value)
{
    shoal_header_entry *existing = find_header(ctx, name);
    if (existing == NULL)
        return shoal_add_header(ctx, name, value);
    const char *copy = shoal_arena_strdup(&ctx->arena, value);
    if (copy == NULL)
        return -1;
    existing->value = copy;
    return 0;
}

const char *shoal_response_header(const shoal_ctx *ctx, const char *name)
{
    const shoal_header_entry *entry = find_header(ctx, name);
    return entry != NULL ? entry->value : NULL;
}

const char *shoal_response_content_type(const shoal_ctx *ctx)
{
    return ctx->content_type;
}

const char *shoal_response_body(const shoal_ctx *ctx, size_t *length)
{
    if (length != NULL)
        *length = ctx->response_length;
    return ctx->response_body;
}

bool shoal_answered(const shoal_ctx *ctx)
{
    return ctx->answer_count > 0;
}

int shoal_status(const shoal_ctx *ctx)
{
    return ctx->status;
}

void shoal_set_status(shoal_ctx *ctx, int status)
{
    ctx->status = status;
}

/* ---- JSON bodies ------------------------------------------------------------ */

static void release_json(void *value)
{
    json_decref(value);
}

static bool is_json_media_type(const char *content_type)
{
    /* application/json, application/json; charset=utf-8, application/x+json */
    size_t length = strcspn(content_type, ";");
    while (length > 0 && (content_type[length - 1] == ' ' || content_type[length - 1] == '\t'))
        length--;
    if (length == 16 && strncasecmp(content_type, "application/json", 16) == 0)
        return true;
    return length > 17 && strncasecmp(content_type, "application/", 12) == 0 &&
           strncasecmp(content_type + length - 5, "+json", 5) == 0;
}

bool shoal_json_body(shoal_ctx *ctx, json_t **out)
{
    *out = NULL;
    const char *content_type = shoal_header(ctx, "Content-Type");
    if (content_type != NULL && *content_type != '\0' && !is_json_media_type(content_type)) {
        shoal_fail(ctx, &shoal_code_request_unsupported_media_type);
        return false;
    }
    char message[256];
    json_t *value = NULL;
    switch (shoal_json_parse(ctx->body, ctx->body_length, ctx->app->config->max_json_depth, &value,
                             message, sizeof message)) {
    case SHOAL_JSON_OK:
        break;
    case SHOAL_JSON_EMPTY:
        shoal_fail_with(ctx, &shoal_code_request_empty_body, NULL, message);
        return false;
    case SHOAL_JSON_TOO_DEEP:
        shoal_fail_with(ctx, &shoal_code_request_json_too_deep, NULL, message);
        return false;
    case SHOAL_JSON_MALFORMED:
        shoal_fail_with(ctx, &shoal_code_request_malformed_json, NULL, message);
        return false;
    }
    if (shoal_arena_on_release(&ctx->arena, release_json, value) != 0) {
        answer_internal_error(ctx);
        return false;
    }
    *out = value;
    return true;
}

static const char *type_name(json_type type)
{
    switch (type) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

static bool has_type(const json_t *value, json_type type)
{
    switch (type) {
    case JSON_TRUE:
    case JSON_FALSE:
        return json_is_boolean(value);
    case JSON_REAL:
        return json_is_number(value);
    default:
        return json_typeof(value) == type;
    }
}

bool shoal_json_member(shoal_ctx *ctx, json_t *object, const char *key, json_type type, bool required,
                       json_t **out)
{
    *out = NULL;
    json_t *value = json_is_object(object) ? json_object_get(object, key) : NULL;
    if (value == NULL) {
        if (!required)
            return true;
        shoal_fail_with(ctx, &shoal_code_request_missing_field, key, NULL);
        return false;
    }
    if (!has_type(value, type)) {
        char *message = shoal_arena_printf(&ctx->arena, "must be %s", type_name(type));
        shoal_fail_with(ctx, &shoal_code_request_invalid_field, key, message);
        return false;
    }
    *out = value;
    return true;
}

/* ---- the pipeline --------------------------------------------------------- */

static void answer_without_handler(shoal_ctx *ctx)
{
    if (ctx->rejection_status != 0) {
        shoal_error(ctx, ctx->rejection_status, ctx->rejection_code, "body", ctx->rejection_message);
        return;
    }
    switch (ctx->route_result) {
    case SHOAL_ROUTER_FOUND:
        break;
    case SHOAL_ROUTER_NOT_FOUND:
        shoal_fail(ctx, &shoal_code_route_not_found);
        return;
    case SHOAL_ROUTER_METHOD_NOT_ALLOWED: {
        const char *allow = shoal_allowed_methods(ctx);
        if (allow == NULL || shoal_set_header(ctx, "Allow", allow) != 0) {
            answer_internal_error(ctx);
            return;
        }
        if (ctx->method == SHOAL_METHOD_OPTIONS)
            shoal_empty(ctx, 204);
        else
            shoal_fail(ctx, &shoal_code_route_method_not_allowed);
        return;
    }
    }
    unsigned answers_before = ctx->answer_count;
    int rc = ctx->route->handler(ctx);
    if (rc != 0 || ctx->answer_count == answers_before) {
        shoal_log(SHOAL_LOG_ERROR, "handler", "%s %s returned %d%s", ctx->method_name, ctx->path, rc,
                  ctx->answer_count == answers_before ? " without answering" : "");
        shoal_fail(ctx, &shoal_code_internal);
    }
}

void shoal_app_dispatch(shoal_app *app, shoal_ctx *ctx)
{
    char *route_path = shoal_arena_strdup(&ctx->arena, ctx->path != NULL ? ctx->path : "");
    if (route_path == NULL) {
        answer_internal_error(ctx);
        return;
    }
    /* Each listener has its own routes: the admin's are not found on the
     * public port, nor the public's on the admin port. */
    bool admin = ctx->listener == SHOAL_LISTENER_ADMIN;
    ctx->route_result =
        shoal_router_match_path(admin ? app->admin_router : app->router, ctx->method, route_path, &ctx->match);
    ctx->route = ctx->route_result == SHOAL_ROUTER_FOUND ? ctx->match.target : NULL;

    /* The app's hooks wrap the blueprint's, as in Flask. On the admin
     * listener the admin blueprint's hooks alone run: nothing of the public
     * pipeline (rate limits, sessions, CORS, ...) can refuse or slow a
     * health check or a scrape. */
    shoal_blueprint *root = listener_root(ctx);
    shoal_blueprint *chain[2] = {root, NULL};
    size_t chain_length = 1;
    if (ctx->route != NULL && ctx->route->blueprint != root)
        chain[chain_length++] = ctx->route->blueprint;

    /* A request shed at arrival, or one whose deadline passed, runs no
     * before hook and no handler (their work is what the node has no room
     * or time for); after and teardown hooks run on its 503 as on any
     * answer. Essential routes, and everything on the admin listener, are
     * exempt. */
    bool guarded = !admin && (ctx->route == NULL || !ctx->route->essential);
    bool stopped = false;
    bool refused = false;
    if (guarded && ctx->shed) {
        shoal_error_overloaded(ctx);
        stopped = refused = true;
    }
    if (guarded && ctx->worker != NULL)
        store_set_deadline(ctx->worker->store, ctx->deadline_ns);
    for (size_t b = 0; b < chain_length && !stopped; b++) {
        const before_list *hooks = &chain[b]->before;
        for (size_t i = 0; i < hooks->count; i++) {
            if (guarded && shoal_deadline_passed(ctx)) {
                shoal_error_deadline(ctx);
                stopped = refused = true;
                break;
            }
            if (hooks->items[i].fn(ctx, hooks->items[i].data) == SHOAL_STOP) {
                stopped = true;
                break;
            }
        }
    }
    if (stopped) {
        if (!refused && !shoal_answered(ctx)) {
            shoal_log(SHOAL_LOG_ERROR, "hook", "a before hook stopped %s %s without answering",
                      ctx->method_name, ctx->path);
            shoal_fail(ctx, &shoal_code_internal);
        }
    } else if (guarded && shoal_deadline_passed(ctx)) {
        shoal_error_deadline(ctx);
    } else {
        answer_without_handler(ctx);
    }
    /* After the handler, work finishes what it did (an idempotent answer
     * kept, a claim released), whatever the time. */
    if (guarded && ctx->worker != NULL)
        store_set_deadline(ctx->worker->store, 0);

    for (size_t b = chain_length; b-- > 0;) {
        const after_list *hooks = &chain[b]->after;
        for (size_t i = hooks->count; i-- > 0;)
            hooks->items[i].fn(ctx, hooks->items[i].data);
    }
    for (size_t b = chain_length; b-- > 0;) {
        const teardown_list *hooks = &chain[b]->teardown;
        for (size_t i = hooks->count; i-- > 0;)
            hooks->items[i].fn(ctx, hooks->items[i].data);
    }
}

void shoal_ctx_finish(shoal_ctx *ctx, uint64_t duration_ns)
{
    int sample = ctx->app->config->access_log_sample;
    shoal_worker *worker = ctx->worker;
    if (worker != NULL) {
        size_t index = ctx->route != NULL ? ctx->route->metrics_index : 0;
        if (index < worker->route_counter_count)
            shoal_route_counters_observe(&worker->route_counters[index], ctx->status, duration_ns);
    }
    if (sample > 0 && worker != NULL && worker->request_counter++ % (unsigned long)sample == 0) {
        shoal_observation observation = {
            .method = ctx->method_name,
            .path = ctx->path,
            .status = ctx->status,
            .duration_ns = duration_ns,
            .request_id = ctx->request_id,
            .response_bytes = ctx->response_length,
        };
        shoal_log_access(&observation);
    }
    shoal_arena_release(&ctx->arena);
}
