/* node/lib/app.c: the app itself: what setup registers (blueprints, routes,
 * hooks, extensions and their instances, slots, published state), the
 * freeze that ends setup,
 * setup failures, readiness, and the state the whole node shares
 * (statements, the L1 and its subscriber, metrics). Making and freeing
 * it, which compose the pieces, are app_lifecycle.c's. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/log.h>

#include "app_internal.h"

void shoal_blueprint_free_contents(shoal_blueprint *bp)
{
    free(bp->name);
    free(bp->prefix);
    free(bp->before.items);
    free(bp->after.items);
    free(bp->teardown.items);
    free(bp->error_handlers.items);
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
        shoal_blueprint_free_contents(bp);
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

/* Room for one more instance, made before create runs so that an instance
 * once created is always kept (and destroyed with the app). */
static int reserve_instance(shoal_app *app)
{
    instance_entry *grown = realloc(app->instances, (app->instance_count + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    app->instances = grown;
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
    if (extension->create != NULL) {
        void *instance = reserve_instance(app) == 0 ? extension->create(app, extension->data) : NULL;
        if (instance == NULL) {
            if (app->setup_failures == failures_before)
                shoal_app_fail(app, "cannot create its instance: out of memory");
            app->initializing = outer;
            free(entry);
            return -1;
        }
        app->instances[app->instance_count++] = (instance_entry){extension, instance, extension->destroy};
        entry->extension.data = instance; /* what init and shutdown receive */
    }
    int rc = extension->init != NULL ? extension->init(app, entry->extension.data) : 0;
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

static published_entry *find_published(const shoal_app *app, const char *name)
{
    published_entry *entry = app->published;
    while (entry != NULL && strcmp(entry->name, name) != 0)
        entry = entry->next;
    return entry;
}

static int add_published(shoal_app *app, const char *name, void *state, void (*release)(void *state))
{
    if (!setup_open(app, "published state"))
        return -1;
    if (name == NULL || find_published(app, name) != NULL)
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
    const published_entry *entry = find_published(app, name);
    return entry != NULL ? entry->state : NULL;
}

void *shoal_app_instance(const shoal_app *app, const shoal_extension *extension)
{
    /* Newest first, as an extension loaded twice would be found. */
    for (size_t i = app->instance_count; i > 0; i--)
        if (app->instances[i - 1].extension == extension)
            return app->instances[i - 1].instance;
    return NULL;
}

int shoal_app_set_standard_instance(shoal_app *app, shoal_standard_instance which, void *instance)
{
    if (!setup_open(app, "a standard instance"))
        return -1;
    if (app->standard_instances[which] != NULL)
        return shoal_app_fail(app, "is loaded twice");
    app->standard_instances[which] = instance;
    return 0;
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

shoal_metric_registry *shoal_app_metric_registry(shoal_app *app)
{
    return app->metrics;
}

void shoal_app_metric_cells_each(shoal_app *app, shoal_metric_cells_fn fn, void *data)
{
    pthread_mutex_lock(&app->workers_lock);
    for (shoal_worker *worker = app->workers; worker != NULL; worker = worker->next)
        if (worker->metric_cell_count > 0)
            fn(worker->metric_cells, worker->metric_cell_count, data);
    pthread_mutex_unlock(&app->workers_lock);
}

shoal_core_metrics *shoal_app_core_metrics(shoal_app *app)
{
    return &app->core_metrics;
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
