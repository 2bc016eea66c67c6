/* node/lib/include/shoal/shoal.h: what handlers, hooks, blueprints and extensions see.
 *
 * The request context (shoal_ctx) is passed explicitly to everything that
 * runs for a request; nothing request-scoped is global. Its memory comes from
 * the request's arena (shoal_arena), released in one go when the request
 * ends, so handlers never free request data.
 *
 * The pipeline, as in Flask:
 *   1. the router picks the route (or notes 404/405);
 *   2. `before` hooks run in registration order, the app's first, then the
 *      route's blueprint's; one that answers and returns SHOAL_STOP ends the
 *      chain (the handler does not run);
 *   3. the handler runs (or 404, 405, or the automatic OPTIONS answer);
 *   4. `after` hooks run in reverse order, the blueprint's first, then the
 *      app's, on whatever answer there is;
 *   5. `teardown` hooks always run, in reverse order, also after errors.
 * Errors produced with shoal_error go through the error handler registered
 * for their status (blueprint first, then app) or become the JSON envelope
 *   {"errors": {"<field>": ["<message>"]}, "code": "<stable.code>"}.
 * Codes are declared in tables and answered with shoal_fail (errors.h).
 *
 * Setup (routes, hooks, blueprints, extensions, slots) must happen before
 * the node serves; afterwards every registration fails with -1 and a log
 * line, and the node refuses to start if any registration failed. */
#ifndef SHOAL_H
#define SHOAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <shoal/arena.h>
#include <shoal/config.h>
#include <shoal/errors.h>
#include <shoal/json.h>
#include <shoal/router.h>
#include <shoal/settings.h>

typedef struct shoal_app shoal_app;
typedef struct shoal_blueprint shoal_blueprint;
typedef struct shoal_ctx shoal_ctx;
typedef struct store store;
typedef struct cache cache;
typedef struct cache_l1 cache_l1;

/* ---- handlers and hooks ------------------------------------------------ */

typedef enum shoal_flow { SHOAL_NEXT = 0, SHOAL_STOP = 1 } shoal_flow;

/* A handler answers (shoal_json, shoal_error, shoal_text, ...) and returns 0.
 * Returning without an answer, or non-zero, gives 500. */
typedef int (*shoal_handler_fn)(shoal_ctx *ctx);
/* A before hook returns SHOAL_NEXT, or answers and returns SHOAL_STOP. */
typedef shoal_flow (*shoal_before_fn)(shoal_ctx *ctx, void *data);
/* After hooks may change the answer (headers, status, body). */
typedef void (*shoal_after_fn)(shoal_ctx *ctx, void *data);
/* Teardown hooks release what before hooks took; they cannot answer. */
typedef void (*shoal_teardown_fn)(shoal_ctx *ctx, void *data);

typedef struct shoal_error_info {
    int status;
    const char *code;    /* stable, machine-readable: "route.not_found" */
    const char *field;   /* the offending field, or "body" */
    const char *message; /* for humans */
} shoal_error_info;
/* An error handler answers as it likes and returns 0; non-zero falls back to
 * the default envelope. */
typedef int (*shoal_error_handler_fn)(shoal_ctx *ctx, const shoal_error_info *error, void *data);

/* ---- the application and blueprints ------------------------------------ */

shoal_app *shoal_app_new(const shoal_config *config);
/* Runs extension shutdowns (newest first), frees workers and the app. */
void shoal_app_free(shoal_app *app);
const shoal_config *shoal_app_config(const shoal_app *app);

/* The app itself is the root blueprint: its hooks run for every request
 * on the public port (--port). */
shoal_blueprint *shoal_app_root(shoal_app *app);
/* The admin listener's blueprint (--admin-bind, --admin-port): the node's
 * operational routes (/healthz, /readyz, /metrics) for HAProxy, the
 * kubelet and Prometheus on the private network. Its routes are served on
 * the admin port only (the public port answers them 404), are essential
 * (see shoal_route_essential), and run its own hooks alone: none of the
 * app's (request id, CORS, rate limits, sessions, ...) runs there. A route
 * registered on both (as /healthz is) counts as one in /metrics. */
shoal_blueprint *shoal_app_admin(shoal_app *app);
/* A path prefix ("/api"; "" for the root) with its own routes and hooks,
 * on the public port. NULL after setup froze or when the prefix is invalid. */
shoal_blueprint *shoal_blueprint_new(shoal_app *app, const char *name, const char *prefix);

/* method is "GET", "POST", ... or several separated by '|' ("GET|POST"). */
int shoal_route(shoal_blueprint *bp, const char *method, const char *pattern,
                shoal_handler_fn handler);
/* The same, with data the handler reads back with shoal_route_data: the
 * state a handler needs beyond the request (Flask's class-based views).
 * data must outlive the app. */
int shoal_route_with(shoal_blueprint *bp, const char *method, const char *pattern,
                     shoal_handler_fn handler, void *data);
/* The same for a route the node's load must not refuse (health checks,
 * metrics): it is answered when the node sheds load and past its deadline,
 * so that HAProxy and Prometheus still see a busy node. Its hooks and
 * handler must be cheap. */
int shoal_route_essential(shoal_blueprint *bp, const char *method, const char *pattern,
                          shoal_handler_fn handler, void *data);
int shoal_before(shoal_blueprint *bp, shoal_before_fn hook, void *data);
int shoal_after(shoal_blueprint *bp, shoal_after_fn hook, void *data);
int shoal_teardown(shoal_blueprint *bp, shoal_teardown_fn hook, void *data);
int shoal_errorhandler(shoal_blueprint *bp, int status, shoal_error_handler_fn handler, void *data);

/* An extension registers routes, hooks, slots and state from init, before
 * serving.
 *
 * init returns 0, or -1 when it cannot set up: the node then does not
 * start (shoal_app_extend returns -1, and so does shoal_app_freeze), and
 * the reason is logged with the extension's name. A registration that
 * fails gives its own reason; init gives any other with shoal_app_fail.
 *
 * Whatever init hands to the app is the app's from then on and is
 * released with it, whether init succeeds or fails: hooks, routes, slots,
 * statements, its instance, and state published with its release
 * function. So a failed init is not undone and gets no shutdown: init
 * never frees its instance or what it published, and before returning -1
 * frees only what it still holds itself. The safe order is to let create make the state (the app holds
 * it before init runs), then register from init the hooks and routes that
 * point to it.
 *
 * shutdown (may be NULL) runs in shoal_app_free for each extension whose
 * init succeeded, newest first, after the worker threads stopped and
 * before published state and instances are released. */
typedef struct shoal_extension {
    const char *name;
    int (*init)(shoal_app *app, void *data);      /* 0 or -1 */
    void (*shutdown)(shoal_app *app, void *data); /* may be NULL */
    void *data;
    /* Its settings table (<shoal/settings.h>), or NULL: shoal_main parses
     * it with the node's when the extension is a standard one or listed in
     * the service's extensions; init reads the values with
     * shoal_app_settings(app, settings). */
    const shoal_settings *settings;
    /* Its instance (since 0.2.0; both may be NULL): the extension's state
     * in this app, so that two apps in one process never share it.
     * create runs in shoal_app_extend before init, with data; it returns
     * the instance, or NULL to fail setup (with a reason given by
     * shoal_app_fail, else "out of memory"). init and shutdown then
     * receive the instance as their data, and init hands it on as the
     * data of the hooks and routes it registers, so that they never look
     * it up. The app owns the instance from create on, whether init
     * succeeds or not: destroy runs once in shoal_app_free, after every
     * shutdown and after the published state is released, newest instance
     * first. Code that has only the app or the request reaches it with
     * shoal_app_instance or shoal_ctx_instance. */
    void *(*create)(shoal_app *app, void *data);
    void (*destroy)(void *instance);
} shoal_extension;
/* 0, or -1 when init failed or a registration it made failed. */
int shoal_app_extend(shoal_app *app, const shoal_extension *extension);
/* Makes setup fail for a reason (printf-style), logged as setup_invalid
 * under the name of the extension whose init runs; returns -1, so that
 * init can `return shoal_app_fail(app, "--my-setting: %s", why);`. */
int shoal_app_fail(shoal_app *app, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* The first reason setup failed, with the extension's name
 * ("extension idempotency: cannot register a before hook: out of memory"),
 * or NULL while nothing failed. */
const char *shoal_app_failure(const shoal_app *app);

/* The instance create made for extension in app, or NULL (not loaded, no
 * create). extension is the address given to shoal_app_extend: the
 * extension's own, not a copy. A walk over the app's instances comparing
 * addresses, no strings; a hook already has its instance as its data. */
void *shoal_app_instance(const shoal_app *app, const shoal_extension *extension);
/* The same for the app that serves the request. */
void *shoal_ctx_instance(const shoal_ctx *ctx, const shoal_extension *extension);

/* Per-worker state, typed per extension: create runs once for each worker
 * before its thread's first request (for the workers warmed at start, on
 * the thread that warms them), destroy at shutdown. A worker runs one
 * request at a time but has many in flight: while one waits on a tier
 * (store_run, store_batch, shoal_ctx_run_blocking) another runs, so a
 * request must not keep the state in the middle of a change across such a
 * call. */
typedef int shoal_worker_slot;
shoal_worker_slot shoal_app_worker_slot(shoal_app *app, void *(*create)(void *data),
                                        void (*destroy)(void *state), void *data);
/* Per-request state, cleared to NULL at the start of every request. */
typedef int shoal_request_slot;
shoal_request_slot shoal_app_request_slot(shoal_app *app);

/* Deprecated since 0.2.0: give the extension an instance (create and
 * destroy above) and reach it with shoal_app_instance or
 * shoal_ctx_instance, which find it by address, not by a string compared
 * on every call. Both calls below keep working as before.
 *
 * App-wide state an extension publishes under its name from init, for code
 * that later has only the request (the session helpers find their request
 * slot and TTL this way). The app owns state from this call on, whether
 * publishing succeeds or not: it calls release(state) in shoal_app_free
 * (after the extensions' shutdowns, newest first), or at once when it
 * cannot publish (a name taken twice, no memory, setup frozen). release
 * may be NULL for state that lives elsewhere. */
int shoal_app_publish(shoal_app *app, const char *name, void *state, void (*release)(void *state));
/* NULL when nothing was published under name. */
void *shoal_app_published(const shoal_app *app, const char *name);

/* Freezes setup; returns -1 if any registration failed (the node must not
 * serve then). Called by the HTTP layer when serving starts. */
int shoal_app_freeze(shoal_app *app);
bool shoal_app_frozen(const shoal_app *app);

typedef enum shoal_readiness {
    SHOAL_STARTING,
    SHOAL_READY,
    SHOAL_DRAINING,
} shoal_readiness;
shoal_readiness shoal_app_readiness(const shoal_app *app);
void shoal_app_set_readiness(shoal_app *app, shoal_readiness readiness);

/* ---- the request ------------------------------------------------------- */

shoal_app *shoal_ctx_app(shoal_ctx *ctx);
shoal_arena *shoal_ctx_arena(shoal_ctx *ctx);
unsigned shoal_method(const shoal_ctx *ctx);        /* SHOAL_METHOD_* */
const char *shoal_method_name(const shoal_ctx *ctx); /* as sent */
const char *shoal_path(const shoal_ctx *ctx);        /* decoded, without query */
const char *shoal_param(const shoal_ctx *ctx, const char *name); /* route :name */
const char *shoal_query(shoal_ctx *ctx, const char *name);       /* first value */
const char *shoal_header(shoal_ctx *ctx, const char *name);      /* case-insensitive */
const char *shoal_body(const shoal_ctx *ctx, size_t *length);    /* raw bytes */
/* The client: the TCP peer, or, when the peer is a trusted proxy
 * (--trusted-proxies), the right-most X-Forwarded-For entry that is not
 * itself a trusted proxy. Canonical text (inet_ntop); "" when unknown. */
const char *shoal_client_address(shoal_ctx *ctx);
/* The TCP peer itself, as text; "" when unknown. */
const char *shoal_peer_address(shoal_ctx *ctx);
/* Methods the matched path answers to, as an Allow value; NULL on 404. */
const char *shoal_allowed_methods(shoal_ctx *ctx);
/* The data given to shoal_route_with for the matched route, or NULL. */
void *shoal_route_data(const shoal_ctx *ctx);
/* True when a route matched (not 404/405). */
bool shoal_route_matched(const shoal_ctx *ctx);
/* True when the HTTP layer refused the request before dispatch (413 body
 * too large, 431 headers too large): hooks still run and see it, but the
 * body is not there and the 4xx answer follows the before hooks. */
bool shoal_rejected(const shoal_ctx *ctx);

const char *shoal_request_id(const shoal_ctx *ctx);
void shoal_set_request_id(shoal_ctx *ctx, const char *request_id); /* copied */

void *shoal_request_get(const shoal_ctx *ctx, shoal_request_slot slot);
void shoal_request_set(shoal_ctx *ctx, shoal_request_slot slot, void *value);
void *shoal_worker_get(shoal_ctx *ctx, shoal_worker_slot slot);

/* This worker thread's PostgreSQL and Redis connections. shoal_cache is
 * the sessions' instance (REDIS_URL: sessions, rate limits, idempotency
 * keys); shoal_cache_tier the cache's (SHOAL_CACHE_URL), the same object
 * when both URLs name one instance. */
store *shoal_store(shoal_ctx *ctx);
cache *shoal_cache(shoal_ctx *ctx);
cache *shoal_cache_tier(shoal_ctx *ctx);

/* The node's in-process cache (cache/include/shoal/l1.h), shared by every worker; it is
 * switched off (but not NULL) with --l1-entries 0. */
cache_l1 *shoal_app_l1(shoal_app *app);
/* Starts the thread that keeps the L1 coherent with the other nodes
 * (cache/invalidation.h): it subscribes to the cache instance's
 * invalidation channel, by itself and again after every loss. Until it is
 * subscribed the L1 serves and stores nothing, so an app that never calls
 * this simply runs without an L1. The app stops the thread when it is
 * freed. 0 (also when the L1 is off), or -1 with the reason in error. */
int shoal_app_start_invalidation(shoal_app *app, char *error, size_t error_size);
/* Whether the subscriber is subscribed now (the L1 serves only then). */
bool shoal_app_l1_subscribed(const shoal_app *app);

/* ---- cache-aside (cache/include/shoal/aside.h), with the request's memory -------------- */

/* Produces key's value from PostgreSQL (or wherever) into memory from the
 * request's arena; returns 0, or a positive code of the caller's, a
 * store_status (say STORE_NOT_FOUND), that shoal_cached passes back,
 * caching nothing. */
typedef int (*shoal_fill_fn)(shoal_ctx *ctx, const char *key, void *data, void **value, size_t *length);

/* Get-or-fill through the node's L1, then the cache instance, then fill.
 * The value (opaque bytes) lives in the request's arena. Fresh for ttl_ms
 * (+/- 10 %), then served stale for ttl_ms / 5 more while one filler
 * refreshes it. With Redis down, fill is called directly; past the
 * request's deadline Redis is not asked (the L1 may answer).
 *
 * Stale if error: when fill returns STORE_UNAVAILABLE, STORE_TIMEOUT,
 * STORE_BUSY or STORE_DEADLINE (PostgreSQL could not answer now: the codes
 * shoal_error_from_store answers with 503) and a copy of key from the L1
 * or Redis stopped being fresh at most --cache-stale-if-error-ms ago, under
 * the family's current version, that copy is the value (0; counted as
 * source="stale_if_error"). Other codes are answers (STORE_NOT_FOUND) or
 * faults (STORE_ERROR) and pass back as they are. After
 * shoal_cache_invalidate no earlier copy ever answers.
 *
 * Returns 0, the fill's code, or -1 when memory ran out. */
int shoal_cached(shoal_ctx *ctx, const char *family, const char *key, int ttl_ms, shoal_fill_fn fill,
                 void *data, const void **value, size_t *length);

typedef struct shoal_cached_value {
    const void *bytes;
    size_t length;
} shoal_cached_value;
/* The same for count keys of one family in one round trip (values[i] for
 * keys[i]); each failed fill may take its key's stale copy as above. */
int shoal_cached_many(shoal_ctx *ctx, const char *family, const char *const *keys, size_t count,
                      int ttl_ms, shoal_fill_fn fill, void *data, shoal_cached_value *values);

/* After a write to PostgreSQL: every cached value of family is stale, on
 * every node (this one at once, the others when the message arrives).
 * Returns a cache_status; on failure values live until their TTL. */
int shoal_cache_invalidate(shoal_ctx *ctx, const char *family);
/* One key only; see cache_aside_invalidate_key for its race. */
int shoal_cache_invalidate_key(shoal_ctx *ctx, const char *family, const char *key);

/* The app's registry of prepared statements: extensions add theirs from
 * init (store_registry_add); it freezes with the app, and every worker's
 * connection prepares them all. */
struct store_registry *shoal_app_statements(shoal_app *app);

/* Answers for the store's last failure, in the one place that maps tier
 * failures to HTTP: 503 with Retry-After when PostgreSQL is unreachable,
 * timed out or busy; 422 naming the field for a unique ("taken") or check
 * ("invalid") violation; 404 for STORE_NOT_FOUND; 500 otherwise. Never
 * PostgreSQL's own text. Returns what shoal_error returns. */
int shoal_error_from_store(shoal_ctx *ctx, store *s);
/* The same for a cache_status that is not CACHE_OK: 503 with Retry-After
 * when Redis is unreachable, 500 when it answered with an error. */
int shoal_error_from_cache(shoal_ctx *ctx, int status);
/* Releases a store result when the request ends; returns it. */
struct store_result *shoal_keep_result(shoal_ctx *ctx, struct store_result *result);

/* ---- deadlines (node/lib/overload.c) ----------------------------------------- */

/* Every request has a deadline, --request-deadline-ms after it arrived.
 * The pipeline refuses to run a before hook or the handler past it, and the
 * store refuses to start a statement past it (STORE_DEADLINE, which
 * shoal_error_from_store answers); other work that takes a while (a
 * password hash) checks here first. Essential routes have none. */
bool shoal_deadline_passed(const shoal_ctx *ctx);
/* Answers 503 request.deadline_exceeded with Retry-After and counts it in
 * /metrics. Returns what shoal_error returns. */
int shoal_error_deadline(shoal_ctx *ctx);

/* ---- blocking work (node/lib/side_pool.c) -------------------------------------- */

/* Runs work(arg), something that blocks for long (a CPU-heavy hash, a
 * library call that waits on the network or a file), without stalling the
 * other requests of the worker. When the request runs on a worker's event
 * loop (docs/engine.md) the work goes to the node's side pool, a few
 * threads of its own, and the request waits suspended while the worker
 * serves its other connections; otherwise (a worker thread per request, as
 * today) it runs right here, on the request's thread. Either way the call
 * returns after work returned: 0.
 *
 * work may run on another thread: it may use what arg points to (the
 * handler's locals included, which stay valid) and thread-safe libraries,
 * but no shoal_* call with the request, its arena, store or cache.
 *
 * -1 when work did not run: the request's deadline passed before it could
 * start (errno ETIMEDOUT; `return shoal_error_deadline(ctx);`), or the
 * node is stopping (ECANCELED; answer 503). */
int shoal_ctx_run_blocking(shoal_ctx *ctx, void (*work)(void *arg), void *arg);

/* ---- answering --------------------------------------------------------- */

/* All return 0, or -1 when memory ran out (the request then gets 500).
 * Answering twice replaces the first answer. */
int shoal_json(shoal_ctx *ctx, int status, json_t *value); /* steals value */
/* A JSON answer written straight into the request's arena, without jansson
 * values or their heap allocations (the writer's calls are in json.h):
 *
 *     shoal_json_writer *out = shoal_json_begin(ctx);
 *     shoal_json_open_object(out);
 *     shoal_json_write_key(out, "message");
 *     shoal_json_write_string(out, "Hello, World!");
 *     shoal_json_close_object(out);
 *     return shoal_json_send(ctx, 200, out);
 *
 * shoal_json_begin returns NULL when memory ran out, and every writer call
 * accepts NULL; shoal_json_send answers 500 (and returns -1) when the
 * writer failed or the text is incomplete. */
shoal_json_writer *shoal_json_begin(shoal_ctx *ctx);
int shoal_json_send(shoal_ctx *ctx, int status, shoal_json_writer *writer);
/* body must outlive the request: static text or arena memory. */
int shoal_text(shoal_ctx *ctx, int status, const char *content_type, const char *body,
               size_t length);
int shoal_empty(shoal_ctx *ctx, int status);
/* field may be NULL for "body". Runs the error handler for status. The
 * library and the demo services declare their codes in tables and answer
 * with shoal_fail (errors.h), so that each code is listed once; this call
 * stays for any code. */
int shoal_error(shoal_ctx *ctx, int status, const char *code, const char *field,
                const char *message);

/* Sets (replacing) a response header; name and value are copied. */
int shoal_set_header(shoal_ctx *ctx, const char *name, const char *value);
/* Adds a header even if one of that name exists (Vary, Set-Cookie). */
int shoal_add_header(shoal_ctx *ctx, const char *name, const char *value);
const char *shoal_response_header(const shoal_ctx *ctx, const char *name);
/* The answer so far, for after and teardown hooks: its Content-Type (NULL
 * for none; it is not among the headers above) and its body (NULL with
 * *length 0 for none; not NUL-terminated). Valid until the request ends. */
const char *shoal_response_content_type(const shoal_ctx *ctx);
const char *shoal_response_body(const shoal_ctx *ctx, size_t *length);
bool shoal_answered(const shoal_ctx *ctx);
int shoal_status(const shoal_ctx *ctx);
void shoal_set_status(shoal_ctx *ctx, int status);

/* ---- JSON bodies --------------------------------------------------------- */

/* Parses the request body within the configured size and depth limits. On
 * success *out is a value owned by the request (do not decref it) and the
 * result is true. On failure the request has been answered (400 malformed
 * or empty, 415 for a non-JSON Content-Type) and the result is false. */
bool shoal_json_body(shoal_ctx *ctx, json_t **out);
/* Fetches object[key] with the expected type (JSON_STRING, JSON_OBJECT, ...;
 * JSON_REAL accepts any number, integers included; JSON_TRUE and JSON_FALSE
 * accept either boolean).
 * Missing and not required: true with *out NULL. Missing and required, or
 * the wrong type: answers 422 naming the field, returns false. */
bool shoal_json_member(shoal_ctx *ctx, json_t *object, const char *key, json_type type,
                       bool required, json_t **out);

/* A whole node from one call: shoal_service, shoal_main. */
#include <shoal/service.h>

#endif
