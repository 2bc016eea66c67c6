/* node/lib/context.h: what the HTTP glue and the pipeline share. Handlers and
 * extensions use shoal.h; only node's own files (and tests) include this. */
#ifndef SHOAL_CONTEXT_H
#define SHOAL_CONTEXT_H

#include <stdint.h>

#include <shoal/cache.h>
#include <shoal/metrics.h>
#include <shoal/settings.h>
#include <shoal/shoal.h>
#include <shoal/store.h>

#include "errors_internal.h"

typedef struct shoal_worker shoal_worker;
typedef struct shoal_route_entry shoal_route_entry;

/* Which of the node's listeners a request arrived on: the public port
 * (--port), whose routes are the app's, or the admin port (--admin-port),
 * whose routes are shoal_app_admin's. Each has its own route table, so a
 * path is found only on the listener it was registered for. */
typedef enum shoal_listener {
    SHOAL_LISTENER_PUBLIC = 0, /* what shoal_ctx_init sets */
    SHOAL_LISTENER_ADMIN = 1,
} shoal_listener;

/* How the pipeline reads what only the transport knows. */
typedef struct shoal_transport {
    const char *(*header)(void *connection, const char *name);
    const char *(*query)(void *connection, const char *name);
    const char *(*client_address)(void *connection, shoal_arena *arena);
    /* Every line of a header, in order, joined with ", " (NULL when none):
     * a client may send its own X-Forwarded-For before the one HAProxy
     * adds, and only the whole list says which entry HAProxy wrote. May be
     * NULL: header() is used then. */
    const char *(*header_all)(void *connection, const char *name, shoal_arena *arena);
} shoal_transport;

typedef struct shoal_header_entry {
    struct shoal_header_entry *next;
    const char *name;
    const char *value;
} shoal_header_entry;

struct shoal_ctx {
    shoal_app *app;
    shoal_worker *worker;
    shoal_arena arena;
    const shoal_transport *transport;
    void *connection;

    shoal_listener listener;
    unsigned method;
    const char *method_name;
    const char *path;
    shoal_router_result route_result;
    shoal_router_match match;
    const shoal_route_entry *route;
    const char *body;
    size_t body_length;
    const char *peer_address;   /* the TCP peer, looked up on first use */
    const char *client_address; /* the peer, or whom a trusted proxy forwards */
    char *request_id;
    void **request_slots;

    /* An error found before dispatch (body too large), answered in place of
     * the handler so that hooks still run and see it. */
    int rejection_status;
    const char *rejection_code;
    const char *rejection_message;

    /* Overload (node/lib/overload.c): the moment (CLOCK_MONOTONIC ns; 0: none)
     * after which the request starts no more work, and whether it arrived
     * with the node already full. */
    uint64_t deadline_ns;
    bool shed;
    /* What the pipeline last gave store_set_deadline: deadline_ns while the
     * before hooks and the handler run, 0 after. Requests of one worker
     * share its store, so the HTTP layer sets it again whenever it resumes
     * this request. */
    uint64_t store_deadline_ns;

    /* the answer */
    unsigned answer_count;
    int status;
    const char *content_type;
    const char *response_body;
    size_t response_length;
    shoal_header_entry *headers;
    shoal_header_entry **headers_tail;
    bool in_error_handler;
};

void shoal_ctx_init(shoal_ctx *ctx, shoal_app *app, shoal_worker *worker,
                    const shoal_transport *transport, void *connection, const char *method,
                    const char *path, void *arena_block, size_t arena_block_size);
void shoal_ctx_set_body(shoal_ctx *ctx, const char *body, size_t length);
void shoal_ctx_reject(shoal_ctx *ctx, int status, const char *code, const char *message);
/* The same for a code of a table; message NULL: the code's. */
void shoal_ctx_reject_with(shoal_ctx *ctx, const shoal_error_code *error, const char *message);

/* Admission: counts a request into the node; false when --max-in-flight
 * requests were in it already (the request is counted all the same, and
 * leaves like the others). One counter for the node, not per worker: a
 * worker's connections are the ones it happened to accept. */
bool shoal_app_admit(shoal_app *app);
void shoal_app_leave(shoal_app *app);
/* Requests counted in and not yet left. */
int shoal_app_admitted(shoal_app *app);
/* Answers 503 node.overloaded with Retry-After and counts it (overload.c). */
int shoal_error_overloaded(shoal_ctx *ctx);
/* X-Request-Start, as HAProxy sets it ("t=" and microseconds since the
 * Unix epoch; the "t=" may be missing): true with *epoch_us, false for
 * anything else. */
bool shoal_request_start_parse(const char *text, uint64_t *epoch_us);
/* A request's deadline (CLOCK_MONOTONIC ns): it arrived at the node at
 * arrived_ns after waiting waited_ns in front of it (HAProxy's queue);
 * 0 when budget_ms is 0 (no deadline). */
uint64_t shoal_request_deadline(uint64_t arrived_ns, int budget_ms, uint64_t waited_ns);
/* True when the request's TCP peer is one of --trusted-proxies, whose
 * X-Forwarded-For and X-Request-Start are believed. */
bool shoal_ctx_peer_trusted(shoal_ctx *ctx);

/* The standard extensions whose instances the library's own request-time
 * helpers reach without a hook's data (the shoal_session_* calls): a slot
 * of the app's each, one pointer load away, which the extension's init
 * fills. A user's extension uses shoal_ctx_instance instead. */
typedef enum shoal_standard_instance {
    SHOAL_INSTANCE_SESSION,
    SHOAL_INSTANCE_COUNT,
} shoal_standard_instance;
/* Called from the extension's init with its instance; -1 (setup fails)
 * when the slot is taken: the extension is loaded twice. */
int shoal_app_set_standard_instance(shoal_app *app, shoal_standard_instance which, void *instance);
/* The instance in which's slot of the request's app, or NULL (not loaded,
 * or replaced by a service's own). */
void *shoal_ctx_standard_instance(const shoal_ctx *ctx, shoal_standard_instance which);

/* shoal_add_header and shoal_set_header without the copies, for the
 * library's own hooks, which add the same headers to every answer: name
 * and value must outlive the request (string literals, or the request's
 * arena), and are kept as pointers. */
int shoal_ctx_add_header_kept(shoal_ctx *ctx, const char *name, const char *value);
int shoal_ctx_set_header_kept(shoal_ctx *ctx, const char *name, const char *value);

/* shoal_set_request_id without the copy: id is in the request's arena. */
void shoal_ctx_set_request_id_kept(shoal_ctx *ctx, char *id);

/* Runs the whole pipeline; afterwards ctx holds an answer. */
void shoal_app_dispatch(shoal_app *app, shoal_ctx *ctx);

/* Ends the request: one observation (access log), then the arena goes. */
void shoal_ctx_finish(shoal_ctx *ctx, uint64_t duration_ns);

/* This thread's worker for app, bound to the thread on its first request:
 * one warmed at start when one is left, else a new one, which connects on
 * first use. NULL when memory runs out. */
shoal_worker *shoal_app_thread_worker(shoal_app *app);
/* The same for the admin listener's thread, which never takes a warmed
 * worker: health checks arrive first, and the warmed ones are counted for
 * the public threads (the connection budget). Its worker connects only if
 * an admin route uses a tier, which the built-in ones never do. */
shoal_worker *shoal_app_admin_thread_worker(shoal_app *app);
/* A PostgreSQL pipe (store/pipe.h) with the app's store settings and
 * statements, for a worker's loop; NULL when memory runs out. */
struct store_pipe *shoal_app_store_pipe_open(shoal_app *app);
/* The worker's store (its PostgreSQL connection, and its pipe once a loop
 * gave it one). */
store *shoal_worker_store(shoal_worker *worker);
/* Its requests begun and not completed (answers not all written yet). */
int shoal_worker_in_flight(shoal_worker *worker);
/* Its Redis connection to the sessions' instance (cache_tier false) or to
 * the cache's (true; the same one when the cache shares the instance). */
cache *shoal_worker_cache(shoal_worker *worker, bool cache_tier);
/* A Redis connection of a worker's loop (cache/async.h) to the sessions'
 * instance or the cache's; NULL when memory runs out (logged). */
struct cache_async *shoal_app_redis_open(shoal_app *app, bool cache_tier);

/* What warming the workers came to. */
typedef struct shoal_warm_report {
    int workers;  /* made and waiting for their threads */
    int postgres; /* with PostgreSQL connected and every statement prepared */
    int redis;    /* with Redis connected (both instances when the cache has its own) */
    bool timed_out; /* the deadline came before every worker was connected */
    char postgres_error[256]; /* why PostgreSQL was given up, or "" */
} shoal_warm_report;

/* Makes count workers (one per HTTP thread) on the calling thread before
 * serving, connects each one's PostgreSQL (preparing the statements) and
 * Redis, and keeps them for the threads' first requests, so that no request
 * pays for connecting. A tier that fails once is left for the workers to
 * reach on their first requests (a shared tier down at start must not keep
 * the node from serving), and so is everything after deadline_ms
 * (CLOCK_MONOTONIC); skip_postgres leaves PostgreSQL out from the start.
 * Past the deadline the call still returns within one connect timeout per
 * tier. The app must be frozen (-1 otherwise, or when memory runs out).
 * Call it before the HTTP threads start: each worker's connections are its
 * thread's own from the moment that thread takes it. */
int shoal_app_warm_workers(shoal_app *app, int count, uint64_t deadline_ms, bool skip_postgres,
                           shoal_warm_report *report);

/* Requests started and not yet finished, for draining: each worker counts
 * its own, so that requests on different cores share no counter. */
int shoal_app_in_flight(shoal_app *app);
/* For /metrics: fn runs for every route, first once for the requests no
 * route matched (pattern "unmatched", methods "any"), with the sums over
 * every worker. Takes the workers lock, never held by a request. */
typedef void (*shoal_route_totals_fn)(const char *pattern, const char *methods, const shoal_route_totals *totals,
                                      void *data);
void shoal_app_route_totals(shoal_app *app, shoal_route_totals_fn fn, void *data);
/* Every worker's PostgreSQL and Redis counters, summed. */
void shoal_app_tier_totals(shoal_app *app, store_stats *postgres, cache_stats *redis);
/* Every loop's pipe counters (store/pipe.h: head-of-line), summed. */
struct store_pipe_stats;
void shoal_app_pipe_totals(shoal_app *app, struct store_pipe_stats *totals);
void shoal_worker_request_started(shoal_worker *worker);
void shoal_worker_request_finished(shoal_worker *worker);
/* The public listener's worker `index` serves with this worker, and how
 * many connections it holds now (written by that worker's thread only). */
void shoal_worker_serve_public(shoal_worker *worker, unsigned index);
void shoal_worker_set_connections(shoal_worker *worker, unsigned open);
/* Each public worker's connections, by its index (/metrics). */
typedef void (*shoal_connections_fn)(unsigned index, unsigned open, void *data);
void shoal_app_connection_counts(shoal_app *app, shoal_connections_fn fn, void *data);

/* The values shoal_app_settings reads (shoal_main's tables); they must
 * outlive the app. */
void shoal_app_set_settings(shoal_app *app, const shoal_settings_values *settings);

#endif
