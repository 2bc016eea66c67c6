/* node/lib/http.c: libmicrohttpd glue. */
#include <shoal/http.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <shoal/version.h>

#include <shoal/log.h>

#include "clock.h"
#include "context.h"
#include "fiber.h"
#include "http_internal.h"
#include "log_lines.h"
#include "loop.h"
#include "pipe.h"
#include "side_pool.h"
#include "tier_link.h"
#include "url.h"

/* Most requests fit their whole arena in this block, inside the request,
 * which a connection allocates once and reuses for each of its requests. */
#define REQUEST_ARENA_BYTES 8192

/* What libmicrohttpd's connection pool holds beyond the request head (see
 * shoal_http_start). */
#define CONNECTION_ROOM_BYTES 4096

/* Every answer's Server header: the library's version, not the service's. */
#define SERVER_HEADER "shoal/" SHOAL_VERSION_STRING

/* Connections the admin listener takes at once: HAProxy's checks, the
 * kubelet's probes and Prometheus' scrapes each hold one for a moment. */
#define ADMIN_MAX_CONNECTIONS 64

/* The most memory a body gets before its bytes arrive. */
#define INITIAL_BODY_BYTES (64u * 1024)

/* How much of an oversized body is read and dropped (to answer 413 at its
 * end) before the connection is closed without an answer. */
#define DISCARD_LIMIT_BYTES (64u * 1024 * 1024)

/* How long shoal_http_stop_accepting waits for the workers to stop taking
 * connections before it shuts the listening socket anyway (a worker busy in
 * a long handler takes it up when that returns). */
#define QUIESCE_WAIT_MS 1000

/* How long a stopping worker goes on writing the answers of its last
 * requests (the parked ones answered 503 at the stop) before its
 * connections are closed. */
#define STOP_WRITE_WAIT_MS 200

typedef struct listener listener;
typedef struct request request;

/* A worker thread of the public listener: its own loop, and on it its own
 * libmicrohttpd daemon in external epoll mode, to which the worker hands
 * the connections it accepts from the listener's one socket (shared by
 * every worker), its PostgreSQL pipe, and the fibers its requests run on
 * (docs/engine.md). The admin listener's daemon has one
 * too, without a loop: its requests run on libmicrohttpd's thread. */
typedef struct http_worker {
    listener *from;
    unsigned index;
    struct MHD_Daemon *daemon;
    shoal_loop *loop;               /* NULL on the admin listener */
    shoal_loop_watch *watch;        /* the daemon's epoll fd */
    shoal_loop_watch *accepting;    /* the listening socket, while it takes connections */
    shoal_loop_timer accept_timer;  /* accepting again after the process ran out of fds */
    bool accept_paused;             /* until then */
    shoal_loop_timer timeout_timer; /* libmicrohttpd's connection timeouts */
    pthread_t thread;
    bool thread_started;
    atomic_bool quiesce_requested;
    atomic_bool stop_requested;
    bool quiesced;   /* by its own thread, or by shoal_http_stop after the join */
    bool settled;    /* its tier connections' first attempts ended */
    bool run_failed; /* logged once */

    /* Requests on fibers: one runs at a time; one that waits on a tier is
     * parked (its connection suspended) and becomes ready when its answer
     * comes, to be resumed at the end of the turn. */
    shoal_worker *app_worker; /* the app's worker this thread serves with */
    shoal_fiber_pool *fibers;
    request *running;
    request *ready_head;
    request *ready_tail;
    shoal_loop_timer ready_timer; /* the next turn must not wait: requests are ready */
    struct socket_wait *socket_waits; /* requests parked on a socket of the store's own connection */
    unsigned suspended;           /* connections suspended while their request waits */
    /* libmicrohttpd must run again at the end of the turn: a connection was
     * resumed (it takes one up only in MHD_run), or one was accepted (its
     * request may be in its socket already). */
    bool run_again;
    unsigned connections;      /* open on this worker's daemon */
    atomic_uint open;          /* the same, for the other workers' accept_one */
    uint64_t deferring_since_ns; /* accept_one left a connection to a worker with fewer */
    unsigned connection_limit; /* its share of --max-connections */
    uint64_t stop_by_ns;          /* stopping: the answers' last moment to go out */
    shoal_loop_timer stop_timer;

    /* Where the side pool's finished work comes back (shoal_ctx_run_blocking,
     * password hashing). */
    shoal_side_inbox *inbox;

    /* Its non-blocking tier connections: the PostgreSQL pipe (the store's
     * calls outside transactions; a transaction parks its request on the
     * store's own connection, socket_waits), a Redis connection to the sessions'
     * instance and, when the cache has its own instance, one to it. */
    shoal_tier_link *links[3];
    unsigned link_count;
} http_worker;

/* One listener: the public port with a worker per thread, or the admin port
 * with libmicrohttpd's thread of its own. */
struct listener {
    shoal_http *http;
    shoal_listener kind;
    int port;
    bool accepting;
    http_worker admin; /* the admin listener's daemon */
    /* public */
    int listen_socket;
    http_worker *workers;
    unsigned worker_count;
    /* What the workers' threads report back: that they stopped accepting
     * (shoal_http_stop_accepting waits for it) and that their tier
     * connections' first attempts ended (shoal_http_await_pipes waits). */
    pthread_mutex_t workers_lock;
    pthread_cond_t workers_changed;
    unsigned quiesced_workers;
    unsigned settled_workers;
    size_t worker_fibers; /* each worker's most fibers */
};

struct shoal_http {
    shoal_app *app;
    const shoal_config *config;
    shoal_side_pool *side_pool; /* blocking work of the public workers' requests */
    listener public_listener;
    listener admin_listener;
};

struct request {
    shoal_ctx ctx;
    http_worker *served_by;
    struct MHD_Connection *connection;
    shoal_fiber *fiber; /* while its pipeline runs on one */
    request *next_ready;
    bool ready;     /* in served_by's ready list */
    bool finished;  /* the pipeline ended: the answer can be queued */
    bool suspended; /* its connection, until the answer is queued */
    bool parked;    /* its fiber waits (a tier, the side pool) */
    /* The store's last error as this request left it when it parked: other
     * requests' calls overwrite the worker's store meanwhile. */
    store_error_copy store_error;
    uint64_t started_ns;
    char *body;
    size_t body_length;
    size_t body_capacity;
    size_t body_discarded;
    bool body_too_large;
    bool dispatched;
    bool admitted; /* counted against --max-in-flight (shoal_app_admit) */
    alignas(max_align_t) unsigned char arena_block[REQUEST_ARENA_BYTES];
};

/* ---- what the pipeline reads through the transport ---------------------- */

static const char *lookup_header(void *connection, const char *name)
{
    return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
}

static const char *lookup_query(void *connection, const char *name)
{
    return MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, name);
}

static const char *client_address(void *connection, shoal_arena *arena)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || info->client_addr == NULL)
        return NULL;
    char text[INET6_ADDRSTRLEN] = "";
    const struct sockaddr *address = info->client_addr;
    if (address->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)address)->sin_addr, text, sizeof text);
    else if (address->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)address)->sin6_addr, text, sizeof text);
    return shoal_arena_strdup(arena, text);
}

typedef struct joined_header {
    const char *name;
    shoal_arena *arena;
    char *text;
    bool failed;
} joined_header;

static enum MHD_Result join_header(void *context, enum MHD_ValueKind kind, const char *name, const char *value)
{
    (void)kind;
    joined_header *joined = context;
    if (strcasecmp(name, joined->name) != 0 || value == NULL)
        return MHD_YES;
    char *text = joined->text == NULL ? shoal_arena_strdup(joined->arena, value)
                                      : shoal_arena_printf(joined->arena, "%s, %s", joined->text, value);
    if (text == NULL) {
        joined->failed = true;
        return MHD_NO;
    }
    joined->text = text;
    return MHD_YES;
}

/* libmicrohttpd keeps header lines in the order received and
 * MHD_lookup_connection_value returns only the first. */
static const char *lookup_header_all(void *connection, const char *name, shoal_arena *arena)
{
    joined_header joined = {name, arena, NULL, false};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, join_header, &joined);
    return joined.failed ? NULL : joined.text;
}

static const shoal_transport mhd_transport = {
    .header = lookup_header,
    .query = lookup_query,
    .client_address = client_address,
    .header_all = lookup_header_all,
};

/* ---- answering ------------------------------------------------------------ */

static enum MHD_Result add_header(struct MHD_Response *response, const char *name, const char *value)
{
    if (MHD_add_response_header(response, name, value) == MHD_YES)
        return MHD_YES;
    /* libmicrohttpd refuses names or values with CR, LF or TAB: a header
     * built from client input must not split the response. */
    shoal_log(SHOAL_LOG_WARNING, "http", "dropped invalid response header '%s'", name);
    return MHD_NO;
}

static enum MHD_Result queue_answer(const shoal_http *http, request *r, struct MHD_Connection *connection)
{
    shoal_ctx *ctx = &r->ctx;

    /* The body lives in the request's arena, which is released only in
     * request_completed, after libmicrohttpd has sent it. */
    struct MHD_Response *response = MHD_create_response_from_buffer(
        ctx->response_length, (void *)(uintptr_t)ctx->response_body, MHD_RESPMEM_PERSISTENT);
    if (response == NULL)
        return MHD_NO;
    add_header(response, MHD_HTTP_HEADER_SERVER, SERVER_HEADER);
    if (ctx->content_type != NULL)
        add_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, ctx->content_type);
    for (const shoal_header_entry *entry = ctx->headers; entry != NULL; entry = entry->next)
        add_header(response, entry->name, entry->value);
    /* While draining, closing after each answer moves keep-alive clients
     * (HAProxy included) to other nodes sooner. */
    if (ctx->listener == SHOAL_LISTENER_PUBLIC && shoal_app_readiness(http->app) == SHOAL_DRAINING)
        add_header(response, MHD_HTTP_HEADER_CONNECTION, "close");

    enum MHD_Result result = MHD_queue_response(connection, (unsigned)ctx->status, response);
    MHD_destroy_response(response);
    return result;
}

/* ---- requests on fibers ------------------------------------------------------ */

static void run_pipeline(void *argument)
{
    request *r = argument;
    shoal_app_dispatch(r->served_by->from->http->app, &r->ctx);
    r->finished = true;
}

/* Runs r's fiber until it parks or ends. The worker's requests share its
 * store, whose deadline is r's again from here. */
static void resume_request(http_worker *worker, request *r)
{
    store *s = r->ctx.worker != NULL ? shoal_worker_store(r->ctx.worker) : NULL;
    if (s != NULL) {
        store_set_deadline(s, r->ctx.store_deadline_ns);
        if (r->parked)
            store_last_error_restore(s, &r->store_error);
    }
    worker->running = r;
    r->parked = shoal_fiber_resume(r->fiber);
    worker->running = NULL;
    if (!r->parked)
        r->fiber = NULL;
    else if (s != NULL)
        store_last_error_save(s, &r->store_error);
}

/* Dispatches the request: on a fiber of the worker's when it has them, so
 * that a wait on a tier parks it and the worker serves others meanwhile;
 * otherwise on this thread's stack (the admin listener, or every fiber in
 * use), where tier calls block. */
static enum MHD_Result respond(http_worker *worker, request *r, struct MHD_Connection *connection)
{
    const shoal_http *http = worker->from->http;
    r->dispatched = true;
    r->finished = false;
    r->fiber = worker->fibers != NULL ? shoal_fiber_new(worker->fibers, run_pipeline, r) : NULL;
    if (r->fiber == NULL) {
        shoal_app_dispatch(http->app, &r->ctx);
        r->finished = true;
        return queue_answer(http, r, connection);
    }
    resume_request(worker, r);
    if (r->finished)
        return queue_answer(http, r, connection);
    /* Answered after the resume, from the access handler's next call. */
    MHD_suspend_connection(connection);
    r->suspended = true;
    worker->suspended++;
    return MHD_YES;
}

/* The request running now may be parked, inside a transaction too: the
 * store's own connection stays the transaction's while it is parked (the
 * store hands it to one request at a time, and others' plain statements
 * go to the pipe). */
static bool request_may_park(void *context)
{
    http_worker *worker = context;
    return worker->running != NULL;
}

/* store_wait's and cache_wait's caller: the request to park, or NULL. */
static void *parkable_request(void *context)
{
    return request_may_park(context) ? ((http_worker *)context)->running : NULL;
}

typedef struct park_deadline {
    shoal_loop_timer timer;
    void (*expired)(void *argument);
    void *argument;
} park_deadline;

static void park_deadline_due(shoal_loop *loop, void *arg)
{
    (void)loop;
    park_deadline *deadline = arg;
    deadline->expired(deadline->argument);
}

static void park_request(void *context, void *caller, uint64_t deadline_ns, void (*expired)(void *argument),
                         void *argument)
{
    http_worker *worker = context;
    (void)caller;
    /* On the fiber's stack, which lives until the fiber runs again. */
    park_deadline deadline = {.expired = expired, .argument = argument};
    shoal_loop_timer_init(&deadline.timer);
    if (deadline_ns != 0) {
        uint64_t now = shoal_loop_now_ns();
        uint64_t after_ms = deadline_ns > now ? (deadline_ns - now + 999999u) / 1000000u : 0;
        if (shoal_loop_timer_start(worker->loop, &deadline.timer, after_ms, park_deadline_due, &deadline) != 0)
            shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: cannot arm a request's deadline", worker->index);
    }
    shoal_fiber_suspend();
    shoal_loop_timer_stop(worker->loop, &deadline.timer);
}

static void wake_request(void *context, void *caller);

/* A request parked until a socket of the store's own connection is ready
 * (store_wait's park_on_socket), on the fiber's stack, which lives until
 * the fiber runs again. */
typedef struct socket_wait {
    http_worker *worker;
    request *r;
    shoal_loop_watch *watch;
    shoal_loop_timer timer;
    bool ended;
    store_socket_wait outcome;
    struct socket_wait *next;
    struct socket_wait **previous_next;
} socket_wait;

/* From the loop's callbacks, or the stop: the fiber runs on at the end of
 * the turn, never inside a callback. */
static void end_socket_wait(socket_wait *wait, store_socket_wait outcome)
{
    if (wait->ended)
        return;
    wait->ended = true;
    wait->outcome = outcome;
    if (wait->watch != NULL)
        shoal_loop_watch_remove(wait->watch);
    wait->watch = NULL;
    shoal_loop_timer_stop(wait->worker->loop, &wait->timer);
    wake_request(wait->worker, wait->r);
}

static void socket_wait_ready(shoal_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events; /* a hang-up too: libpq finds out what happened when it reads */
    end_socket_wait(arg, STORE_SOCKET_READY);
}

static void socket_wait_due(shoal_loop *loop, void *arg)
{
    (void)loop;
    end_socket_wait(arg, STORE_SOCKET_TIMED_OUT);
}

/* Out of line: GCC's -Wdangling-pointer cannot see that a wait leaves the
 * list before its frame ends. */
__attribute__((noinline)) static void link_socket_wait(http_worker *worker, socket_wait *wait)
{
    wait->next = worker->socket_waits;
    wait->previous_next = &worker->socket_waits;
    if (wait->next != NULL)
        wait->next->previous_next = &wait->next;
    worker->socket_waits = wait;
}

static void unlink_socket_wait(socket_wait *wait)
{
    *wait->previous_next = wait->next;
    if (wait->next != NULL)
        wait->next->previous_next = wait->previous_next;
}

static store_socket_wait park_on_socket(void *context, void *caller, int fd, unsigned events, uint64_t deadline_ns)
{
    http_worker *worker = context;
    /* Stopping: what is still inside a transaction ends now (its
     * connection dropped, so nothing of it commits), rather than hold the
     * stop for as long as the statement or a lock takes. */
    if (worker->stop_by_ns != 0)
        return STORE_SOCKET_STOPPING;
    socket_wait wait = {.worker = worker, .r = caller};
    shoal_loop_timer_init(&wait.timer);
    unsigned interest = ((events & STORE_SOCKET_READABLE) ? SHOAL_LOOP_READ : 0) |
                        ((events & STORE_SOCKET_WRITABLE) ? SHOAL_LOOP_WRITE : 0);
    /* Watched only while parked (libpq opens and closes the connection's
     * sockets as it connects), and through a descriptor of its own: a tier
     * link that forgets its closed socket later (tier_link.c, at the end of
     * the turn) removes its watch by that number, which may be this
     * socket's by then, and epoll would drop this watch with it. */
    int watched = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    wait.watch = watched >= 0 ? shoal_loop_watch_add(worker->loop, watched, interest, socket_wait_ready, &wait) : NULL;
    if (wait.watch == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: cannot watch its PostgreSQL connection: %s", worker->index,
                  strerror(errno));
        if (watched >= 0)
            (void)close(watched); /* never written: nothing to lose */
        return STORE_SOCKET_FAILED;
    }
    store_socket_wait outcome = STORE_SOCKET_FAILED;
    if (deadline_ns != 0) {
        uint64_t now = shoal_loop_now_ns();
        uint64_t after_ms = deadline_ns > now ? (deadline_ns - now + 999999u) / 1000000u : 0;
        if (shoal_loop_timer_start(worker->loop, &wait.timer, after_ms, socket_wait_due, &wait) != 0) {
            shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: cannot arm its PostgreSQL connection's timeout",
                      worker->index);
            wait.ended = true;
        }
    }
    if (!wait.ended) {
        link_socket_wait(worker, &wait);
        while (!wait.ended)
            shoal_fiber_suspend();
        unlink_socket_wait(&wait);
        outcome = wait.outcome;
    }
    if (wait.watch != NULL)
        shoal_loop_watch_remove(wait.watch);
    (void)close(watched);
    return outcome;
}

/* The stop: every request parked on the store's own connection runs on,
 * to find it gone. */
static void end_socket_waits(http_worker *worker)
{
    for (socket_wait *wait = worker->socket_waits; wait != NULL; wait = wait->next)
        end_socket_wait(wait, STORE_SOCKET_STOPPING);
}

/* cache_wait's park (cache/async.h): the Redis connection enforces its
 * timeout itself. */
static void park_for_redis(void *context, void *caller)
{
    park_request(context, caller, 0, NULL, NULL);
}

static void wake_request(void *context, void *caller)
{
    http_worker *worker = context;
    request *r = caller;
    if (r->ready)
        return;
    r->ready = true;
    r->next_ready = NULL;
    if (worker->ready_tail != NULL)
        worker->ready_tail->next_ready = r;
    else
        worker->ready_head = r;
    worker->ready_tail = r;
}

/* The side pool finished a request's work: it runs on at the end of the
 * turn, as one whose statement was answered. */
static void side_work_done(void *context, shoal_fiber *fiber)
{
    wake_request(context, shoal_fiber_arg(fiber));
}

/* Resumes every ready request; one that ended gets its connection back,
 * which libmicrohttpd answers on its next run. */
static void run_ready(http_worker *worker)
{
    while (worker->ready_head != NULL) {
        request *r = worker->ready_head;
        worker->ready_head = r->next_ready;
        if (worker->ready_head == NULL)
            worker->ready_tail = NULL;
        r->ready = false;
        resume_request(worker, r);
        if (r->finished) {
            worker->suspended--;
            MHD_resume_connection(r->connection);
            worker->run_again = true;
        }
    }
}

static bool parse_content_length(const char *text, unsigned long long *out)
{
    if (text == NULL || *text < '0' || *text > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = value;
    return true;
}

static void reject_too_large(request *r, size_t limit)
{
    r->body_too_large = true;
    char *message = shoal_arena_printf(&r->ctx.arena, "the body is larger than %zu bytes", limit);
    shoal_ctx_reject_with(&r->ctx, &shoal_code_request_body_too_large, message);
}

static bool append_body(request *r, const char *data, size_t size)
{
    if (r->body_length + size > r->body_capacity) {
        size_t capacity = r->body_capacity > 0 ? r->body_capacity * 2 : 1024;
        while (capacity < r->body_length + size)
            capacity *= 2;
        char *grown = shoal_arena_alloc(&r->ctx.arena, capacity);
        if (grown == NULL)
            return false;
        if (r->body_length > 0)
            memcpy(grown, r->body, r->body_length);
        r->body = grown;
        r->body_capacity = capacity;
    }
    memcpy(r->body + r->body_length, data, size);
    r->body_length += size;
    return true;
}

/* The request line and headers as the client sent them, query included,
 * up to the blank line that ends them. */
static size_t header_bytes(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    return info != NULL ? info->header_size : 0;
}

/* What one pass over the request's header lines finds: what makes it
 * malformed (RFC 9112 3.2 and 6.3, RFC 9110 5.5), and how its body is
 * framed, so that nothing looks those headers up again. */
typedef struct header_census {
    unsigned hosts;
    unsigned content_lengths;
    const char *content_length; /* the last one's value, or NULL */
    bool transfer_encoding;
    bool control_bytes;
} header_census;

/* Whether a body follows the head: a Content-Length other than 0, or a
 * Transfer-Encoding (chunked). */
static bool body_follows(const header_census *census)
{
    unsigned long long declared = 0;
    if (census->content_length != NULL && !(parse_content_length(census->content_length, &declared) && declared == 0))
        return true;
    return census->transfer_encoding;
}

static enum MHD_Result count_header(void *context, enum MHD_ValueKind kind, const char *name, const char *value)
{
    (void)kind;
    header_census *census = context;
    if (strcasecmp(name, MHD_HTTP_HEADER_HOST) == 0)
        census->hosts++;
    else if (strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        census->content_lengths++;
        census->content_length = value;
    } else if (strcasecmp(name, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        census->transfer_encoding = true;
    for (const unsigned char *c = (const unsigned char *)value; c != NULL && *c != '\0'; c++) {
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
            census->control_bytes = true;
            break;
        }
    }
    return MHD_YES;
}

static enum MHD_Result check_argument(void *context, enum MHD_ValueKind kind, const char *name, const char *value)
{
    (void)kind;
    bool *valid = context;
    if (!shoal_utf8_valid(name, strlen(name)) || (value != NULL && !shoal_utf8_valid(value, strlen(value)))) {
        *valid = false;
        return MHD_NO;
    }
    return MHD_YES;
}

/* Requests libmicrohttpd 0.9.75 takes but HTTP does not: handlers and
 * PostgreSQL (which refuses invalid UTF-8 with an error, not a miss) must
 * never see them, and the client gets the envelope, not a 200 for a
 * request that means something else to a proxy in front. NULL when fine. */
static const char *malformed(struct MHD_Connection *connection, const char *url, const char *version,
                             header_census *census)
{
    *census = (header_census){0};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, count_header, census);
    /* Two lengths: the body ends where this node and a proxy disagree
     * (request smuggling); the connection cannot be trusted after it. */
    if (census->content_lengths > 1)
        return "more than one Content-Length";
    if (census->hosts > 1 || (census->hosts == 0 && version != NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0))
        return "an HTTP/1.1 request needs exactly one Host header";
    if (census->control_bytes)
        return "a header holds a control character";
    bool valid = url == NULL || shoal_utf8_valid(url, strlen(url));
    if (valid)
        MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, check_argument, &valid);
    if (!valid)
        return "the path or the query is not valid UTF-8";
    return NULL;
}

/* How long the request waited before the node saw it: HAProxy stamps it
 * with X-Request-Start when it arrives there, so the time it spent in
 * HAProxy's queue counts against its deadline too. Believed from trusted
 * proxies only, and only as far as the clocks agree: a stamp from the
 * future counts as no wait at all. */
static uint64_t request_waited_ns(shoal_ctx *ctx)
{
    uint64_t stamp_us = 0;
    if (!shoal_request_start_parse(lookup_header(ctx->connection, "X-Request-Start"), &stamp_us) ||
        !shoal_ctx_peer_trusted(ctx))
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    return now_us > stamp_us ? (now_us - stamp_us) * 1000u : 0;
}

static enum MHD_Result begin_request(http_worker *served_by, struct MHD_Connection *connection,
                                     const char *url, const char *method, const char *version,
                                     void **request_state)
{
    const listener *from = served_by->from;
    const shoal_http *http = from->http;
    shoal_worker *worker = from->kind == SHOAL_LISTENER_ADMIN ? shoal_app_admin_thread_worker(http->app)
                                                              : shoal_app_thread_worker(http->app);
    if (worker == NULL)
        return MHD_NO;
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    request *r = info != NULL ? info->socket_context : NULL;
    if (r == NULL)
        return MHD_NO;
    /* Read always: the latency histograms of /metrics need it. */
    r->started_ns = shoal_monotonic_ns();
    r->served_by = served_by;
    r->connection = connection;
    r->fiber = NULL;
    r->ready = false;
    r->finished = false;
    r->suspended = false;
    r->parked = false;
    r->body = NULL;
    r->body_length = 0;
    r->body_capacity = 0;
    r->body_discarded = 0;
    r->body_too_large = false;
    r->dispatched = false;
    shoal_ctx_init(&r->ctx, http->app, worker, &mhd_transport, connection, method, url,
                   r->arena_block, sizeof r->arena_block);
    r->ctx.listener = from->kind;
    shoal_worker_request_started(worker);
    *request_state = r;
    bool admin = from->kind == SHOAL_LISTENER_ADMIN;
    /* The admin listener's requests have no deadline and are never counted
     * against --max-in-flight: they must be answered when the node is full. */
    r->ctx.deadline_ns = admin ? 0
                               : shoal_request_deadline(r->started_ns, http->config->request_deadline_ms,
                                                        request_waited_ns(&r->ctx));
    r->admitted = false;

    if (header_bytes(connection) > http->config->max_header_bytes) {
        char *message = shoal_arena_printf(&r->ctx.arena, "the request line and headers exceed %zu bytes",
                                           http->config->max_header_bytes);
        shoal_ctx_reject_with(&r->ctx, &shoal_code_request_headers_too_large, message);
        return respond(served_by, r, connection);
    }

    header_census census;
    const char *problem = malformed(connection, url, version, &census);
    if (problem != NULL) {
        shoal_ctx_reject_with(&r->ctx, &shoal_code_request_malformed, problem);
        /* Answered on this first call, libmicrohttpd closes the connection
         * after the answer: what follows an ambiguous body is not read as
         * a request. Otherwise the request goes on as usual (its body read
         * and ignored) and is answered at its end. */
        if (census.content_lengths > 1)
            return respond(served_by, r, connection);
    }

    /* Counted against --max-in-flight from when the whole request is here
     * (now, when it has no body) until request_completed, shed or not. A
     * client still sending its body holds no worker; counting it would let
     * a few hundred slow uploads shed everyone else (tests/e2e/faults_test.py
     * slow_clients, straight at a node). */
    r->admitted = !admin && !body_follows(&census);
    r->ctx.shed = r->admitted && !shoal_app_admit(http->app);

    /* Shed on arrival (it has no body): answered on the next call, which
     * keeps the connection alive. */
    if (r->ctx.shed && problem == NULL)
        return MHD_YES;

    size_t limit = http->config->max_body_bytes;
    unsigned long long declared = 0;
    if (parse_content_length(census.content_length, &declared)) {
        if (declared > limit) {
            reject_too_large(r, limit);
            /* With "Expect: 100-continue" the client waits for a go-ahead
             * before sending the body, so answering now costs nothing. Any
             * other client is already sending it: answering now makes
             * libmicrohttpd close with unread data, the kernel then resets
             * the connection, and the reset can destroy the answer before
             * the client (or HAProxy) reads it. So the body is read and
             * dropped, up to a bound, and answered at its end. */
            const char *expect = lookup_header(connection, MHD_HTTP_HEADER_EXPECT);
            if ((expect != NULL && strcasecmp(expect, "100-continue") == 0) ||
                declared - limit > DISCARD_LIMIT_BYTES)
                return respond(served_by, r, connection);
            return MHD_YES;
        }
        if (declared > 0) {
            /* Trust the announced size only so far: a client that announces
             * a large body and sends it slowly must not pin that memory. */
            size_t first = declared < INITIAL_BODY_BYTES ? (size_t)declared : INITIAL_BODY_BYTES;
            r->body = shoal_arena_alloc(&r->ctx.arena, first);
            if (r->body == NULL)
                return MHD_NO;
            r->body_capacity = first;
        }
    }
    /* libmicrohttpd keeps the connection alive only when the answer comes on
     * a later call than the first (../shared/design.md, measured facts). */
    return MHD_YES;
}

static enum MHD_Result handle_access(void *context, struct MHD_Connection *connection,
                                     const char *url, const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **request_state)
{
    http_worker *served_by = context;
    const listener *from = served_by->from;
    const shoal_http *http = from->http;
    request *r = *request_state;
    if (r == NULL)
        return begin_request(served_by, connection, url, method, version, request_state);

    if (*upload_data_size > 0) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (r->body_too_large) {
            /* libmicrohttpd 0.9.75 cannot answer in the middle of an upload
             * (queueing fails and the connection drops without an answer),
             * so an oversized body is read and thrown away up to a bound,
             * answered 413 at its end, or cut off past the bound. */
            r->body_discarded += size;
            return r->body_discarded <= DISCARD_LIMIT_BYTES ? MHD_YES : MHD_NO;
        }
        if (r->body_length + size > http->config->max_body_bytes) {
            reject_too_large(r, http->config->max_body_bytes);
            r->body_discarded = size;
            return MHD_YES;
        }
        return append_body(r, upload_data, size) ? MHD_YES : MHD_NO;
    }
    if (r->dispatched) {
        /* Called again after the resume: its pipeline has ended. */
        if (r->suspended && r->finished) {
            r->suspended = false;
            return queue_answer(http, r, connection);
        }
        return MHD_YES;
    }
    if (!r->admitted && from->kind == SHOAL_LISTENER_PUBLIC) {
        r->admitted = true;
        r->ctx.shed = !shoal_app_admit(http->app);
    }
    shoal_ctx_set_body(&r->ctx, r->body, r->body_length);
    return respond(served_by, r, connection);
}

static void request_completed(void *context, struct MHD_Connection *connection, void **request_state,
                              enum MHD_RequestTerminationCode termination)
{
    const shoal_http *http = ((const http_worker *)context)->from->http;
    (void)connection;
    (void)termination;
    request *r = *request_state;
    if (r == NULL)
        return;
    if (!r->dispatched)
        r->ctx.status = 499; /* the client went away before it was answered */
    shoal_worker *worker = r->ctx.worker;
    shoal_ctx_finish(&r->ctx, shoal_monotonic_ns() - r->started_ns);
    shoal_worker_request_finished(worker);
    if (r->admitted)
        shoal_app_leave(http->app);
    *request_state = NULL; /* the connection keeps r for its next request */
}

static void update_accepting(http_worker *worker);

/* Each connection gets its request (with the arena's first block) when it
 * opens and gives it back when it closes, so requests on a keep-alive
 * connection allocate nothing of their own. */
static void connection_changed(void *context, struct MHD_Connection *connection, void **connection_state,
                               enum MHD_ConnectionNotificationCode change)
{
    http_worker *worker = context;
    (void)connection;
    /* Counted on the loops' daemons only: the admin listener's threads
     * share one worker. */
    bool counted = worker->loop != NULL;
    if (change == MHD_CONNECTION_NOTIFY_STARTED) {
        /* NULL when memory ran out: begin_request then refuses the
         * connection's requests. */
        *connection_state = malloc(sizeof(request));
        if (counted)
            worker->connections++;
    } else if (change == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*connection_state);
        *connection_state = NULL;
        if (counted)
            worker->connections--;
    }
    if (counted) {
        atomic_store_explicit(&worker->open, worker->connections, memory_order_relaxed);
        if (worker->app_worker != NULL)
            shoal_worker_set_connections(worker->app_worker, worker->connections);
        update_accepting(worker);
    }
}

/* libmicrohttpd calls this for the path and for each query name and value. */
static size_t unescape_without_nul(void *context, struct MHD_Connection *connection, char *text)
{
    (void)context;
    (void)connection;
    return shoal_url_unescape(text);
}

static void log_from_library(void *context, const char *format, va_list args)
{
    (void)context;
    char message[512];
    vsnprintf(message, sizeof message, format, args);
    size_t length = strlen(message);
    while (length > 0 && (message[length - 1] == '\n' || message[length - 1] == '\r'))
        message[--length] = '\0';
    shoal_log(SHOAL_LOG_WARNING, "libmicrohttpd", "%s", message);
}

/* ---- lifecycle ------------------------------------------------------------- */

static int socket_port(int fd)
{
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    if (getsockname(fd, (struct sockaddr *)&address, &length) != 0)
        return -1;
    if (address.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&address)->sin_port);
    if (address.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
    return -1;
}

static int bound_port(struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (info == NULL)
        return -1;
    return socket_port(info->listen_fd);
}

/* Fills address from text and port; false when text is no IP address. */
static bool parse_address(const char *text, int port, struct sockaddr_storage *address, unsigned *flags)
{
    memset(address, 0, sizeof *address);
    struct sockaddr_in *v4 = (struct sockaddr_in *)address;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)address;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return true;
    }
    if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *flags |= MHD_USE_IPv6;
        return true;
    }
    return false;
}

/* libmicrohttpd keeps the request line, the headers, a record per header and
 * the response's own header block in one pool per connection, and clears all
 * of it after every request (0.9.75 writes zeros over the whole pool, then
 * again over the unused half of the read buffer): its size is paid per
 * request. The header limit is enforced exactly, with the JSON envelope, in
 * begin_request; the pool holds a request at the limit plus room for the
 * records and the answer's headers, and a request too large for even that
 * gets libmicrohttpd's own 431 and a closed connection. */
static size_t connection_memory(const shoal_config *config)
{
    return config->max_header_bytes + CONNECTION_ROOM_BYTES;
}

static void cannot_listen(const char *address_text, int port, shoal_listener kind, char *error, size_t error_size)
{
    snprintf(error, error_size, "cannot listen on %s port %d for the %s listener (in use, or not permitted)",
             address_text, port, kind == SHOAL_LISTENER_ADMIN ? "admin" : "public");
}

/* The admin listener: a daemon with its own epoll thread. */
static bool start_admin_listener(shoal_http *http, listener *l, const char *address_text, char *error,
                                 size_t error_size)
{
    const shoal_config *config = http->config;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_storage address;
    if (!parse_address(address_text, config->admin_port, &address, &flags)) {
        snprintf(error, error_size, "--admin-bind: '%s' is not an IPv4 or IPv6 address", address_text);
        return false;
    }
    l->http = http;
    l->kind = SHOAL_LISTENER_ADMIN;
    l->listen_socket = -1;
    http_worker *admin = &l->admin;
    admin->from = l;
    l->admin.daemon = MHD_start_daemon(
        flags, (uint16_t)config->admin_port, NULL, NULL, &handle_access, admin,
        MHD_OPTION_EXTERNAL_LOGGER, &log_from_library, http, /* first, or early messages escape */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)config->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory(config),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)config->listen_backlog,
        MHD_OPTION_NOTIFY_COMPLETED, &request_completed, admin,
        MHD_OPTION_NOTIFY_CONNECTION, &connection_changed, admin,
        MHD_OPTION_UNESCAPE_CALLBACK, &unescape_without_nul, admin,
        MHD_OPTION_END);
    if (admin->daemon == NULL) {
        cannot_listen(address_text, config->admin_port, SHOAL_LISTENER_ADMIN, error, error_size);
        return false;
    }
    l->port = bound_port(admin->daemon);
    l->accepting = true;
    return true;
}

/* The public listener's socket, made here rather than by libmicrohttpd so
 * that every worker's daemon accepts from it. Not SO_REUSEPORT (a socket per
 * daemon): with it, a second node started on the same port by mistake would
 * silently take half the connections instead of failing to start. */
static int open_listen_socket(const struct sockaddr_storage *address, int backlog)
{
    int family = address->ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    /* As libmicrohttpd does: a restarted node binds while the old one's
     * connections sit in TIME_WAIT; and an IPv6 address means IPv6 only. */
    bool ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
              (family != AF_INET6 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == 0);
    socklen_t length = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (!ok || bind(fd, (const struct sockaddr *)address, length) != 0 || listen(fd, backlog) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}


/* ---- a worker's loop -------------------------------------------------------- */

static void run_daemon(http_worker *worker)
{
    if (MHD_run(worker->daemon) != MHD_YES && !worker->run_failed) {
        worker->run_failed = true;
        shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: libmicrohttpd could not run its connections", worker->index);
    }
}

static void daemon_ready(shoal_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    run_daemon(arg);
}

static void daemon_timeout_due(shoal_loop *loop, void *arg)
{
    (void)loop;
    run_daemon(arg);
}

/* How long a worker stops accepting after accept() found the process or
 * the system out of file descriptors or memory (the socket stays readable,
 * and accepting again at once would spin). */
#define ACCEPT_PAUSE_MS 100

/* How long a worker leaves a new connection to a worker holding fewer,
 * before it takes it anyway (that one may be stuck in a long handler). */
#define ACCEPT_DEFER_NS 1000000u

/* Workers accept from the shared listening socket themselves, one
 * connection per turn, and hand each to their daemon (MHD_add_connection).
 * A new connection wakes every worker waiting; one holding more than the
 * fewest any worker holds plus one leaves it to the others for up to
 * ACCEPT_DEFER_NS; a worker busy with its requests takes none meanwhile;
 * one at its share of --max-connections stops watching. libmicrohttpd's own
 * accept took up to ten a turn for whichever worker woke first: a burst of
 * connections (wrk's 64) split 54 and 10 between two workers, one busy and
 * the other idle half the time. */
static void accept_one(shoal_loop *loop, int fd, unsigned events, void *arg);

static void set_accepting(http_worker *worker, bool wanted)
{
    if (wanted && worker->accepting == NULL) {
        worker->accepting = shoal_loop_watch_add(worker->loop, worker->from->listen_socket,
                                                 SHOAL_LOOP_READ, accept_one, worker);
        if (worker->accepting == NULL)
            shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: cannot watch the listening socket: %s", worker->index,
                      strerror(errno));
    } else if (!wanted && worker->accepting != NULL) {
        shoal_loop_watch_remove(worker->accepting);
        worker->accepting = NULL;
    }
}

static void update_accepting(http_worker *worker)
{
    if (worker->loop != NULL)
        set_accepting(worker, !worker->quiesced && !worker->accept_paused &&
                                  worker->connections < worker->connection_limit);
}

static void accept_pause_over(shoal_loop *loop, void *arg)
{
    (void)loop;
    http_worker *worker = arg;
    worker->accept_paused = false;
    update_accepting(worker);
}

/* Whether another worker holds at least two connections fewer. */
static bool others_hold_fewer(const http_worker *worker)
{
    const listener *l = worker->from;
    for (unsigned i = 0; i < l->worker_count; i++)
        if (atomic_load_explicit(&l->workers[i].open, memory_order_relaxed) + 1 < worker->connections)
            return true;
    return false;
}

static void accept_one(shoal_loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    http_worker *worker = arg;
    if (others_hold_fewer(worker)) {
        uint64_t now = shoal_loop_now_ns();
        /* Not called for a while: the last connection it deferred went
         * elsewhere, this is a new one. */
        if (now - worker->deferring_since_ns > 10 * ACCEPT_DEFER_NS)
            worker->deferring_since_ns = now;
        if (now - worker->deferring_since_ns < ACCEPT_DEFER_NS)
            return;
    }
    worker->deferring_since_ns = 0;
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    int client = accept4(fd, (struct sockaddr *)&address, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
            return; /* another worker took it, or the client gave up */
        if (errno == EINVAL) {
            /* Shut down by shoal_http_stop_accepting: this worker is quiescing too. */
            set_accepting(worker, false);
            return;
        }
        shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: cannot accept a connection (%s); accepting again in %d ms",
                  worker->index, strerror(errno), ACCEPT_PAUSE_MS);
        worker->accept_paused = true;
        set_accepting(worker, false);
        if (shoal_loop_timer_start(loop, &worker->accept_timer, ACCEPT_PAUSE_MS, accept_pause_over, worker) != 0)
            worker->accept_paused = false; /* better to spin than to stop accepting for good */
        return;
    }
    /* libmicrohttpd closes the socket itself when it cannot take it. */
    if (MHD_add_connection(worker->daemon, client, (const struct sockaddr *)&address, length) != MHD_YES) {
        shoal_log(SHOAL_LOG_WARNING, "http", "worker %u: libmicrohttpd refused a connection: %s", worker->index,
                  strerror(errno));
        return;
    }
    /* Its request may be in its socket already: serve it this turn. */
    worker->run_again = true;
}

/* A CLOCK_REALTIME moment ms from now, for pthread_cond_timedwait. */
static struct timespec realtime_after_ms(long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

static void report_to_listener(listener *l, unsigned *count)
{
    pthread_mutex_lock(&l->workers_lock);
    (*count)++;
    pthread_cond_broadcast(&l->workers_changed);
    pthread_mutex_unlock(&l->workers_lock);
}

/* ---- the worker's tier connections --------------------------------------------- */

/* Connected or failed: the node's readiness need not wait for this worker
 * (its warm-up includes the pipes, so that a ready node holds every
 * connection it will hold). */
static void note_settled(http_worker *worker)
{
    if (worker->settled)
        return;
    for (unsigned i = 0; i < worker->link_count; i++)
        if (!shoal_tier_link_settled(worker->links[i]))
            return;
    worker->settled = true;
    report_to_listener(worker->from, &worker->from->settled_workers);
}

/* From here on every request waiting on a tier connection is answered
 * (unavailable: the outcome of what was sent is unknown), and the store's
 * and the caches' calls block on their own connections. */
static void close_links(http_worker *worker)
{
    if (worker->link_count == 0)
        return;
    /* Closing answers the waiting requests through the store and the
     * caches, which wake them: only then are those let go of the links. */
    for (unsigned i = 0; i < worker->link_count; i++)
        shoal_tier_link_close(worker->links[i]);
    worker->link_count = 0;
    if (worker->app_worker != NULL) {
        store_use_pipe(shoal_worker_store(worker->app_worker), NULL);
        cache_use_async(shoal_worker_cache(worker->app_worker, false), NULL, NULL);
        cache_use_async(shoal_worker_cache(worker->app_worker, true), NULL, NULL);
    }
}

static void ready_due(shoal_loop *loop, void *arg)
{
    (void)loop;
    (void)arg; /* only so that the turn does not wait: the end of it resumes them */
}

/* The end of every turn: parked requests whose answers came run on;
 * libmicrohttpd runs again when one of them ended (it takes a resumed
 * connection up only in MHD_run); the statements queued this turn go out
 * in one go; then libmicrohttpd's own timeouts (idle connections), which in
 * external epoll mode nothing else wakes it for. */
static void end_of_turn(shoal_loop *loop, void *arg)
{
    http_worker *worker = arg;
    run_ready(worker);
    if (worker->run_again) {
        worker->run_again = false;
        run_daemon(worker);
    }
    for (unsigned i = 0; i < worker->link_count; i++)
        shoal_tier_link_end_turn(worker->links[i]);
    note_settled(worker);
    /* A flush that found the connection lost answered requests now; or
     * libmicrohttpd's run just now closed a connection at the limit. */
    if ((worker->ready_head != NULL || worker->run_again) &&
        shoal_loop_timer_start(loop, &worker->ready_timer, 0, ready_due, worker) != 0)
        shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: cannot arm its ready timer", worker->index);
    MHD_UNSIGNED_LONG_LONG timeout = 0;
    if (MHD_get_timeout(worker->daemon, &timeout) == MHD_YES) {
        if (shoal_loop_timer_start(loop, &worker->timeout_timer, (uint64_t)timeout, daemon_timeout_due, worker) != 0)
            shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: cannot arm the connections' timeout", worker->index);
    } else {
        shoal_loop_timer_stop(loop, &worker->timeout_timer);
    }
    /* Stopping: once no request is parked and every answer went out (no
     * request in flight), or the answers' time is up. */
    if (worker->stop_by_ns != 0 && worker->suspended == 0 &&
        (shoal_worker_in_flight(worker->app_worker) == 0 || shoal_loop_now_ns() >= worker->stop_by_ns))
        shoal_loop_stop(loop);
}

/* Quiescing stops the worker watching the listening socket: on its own
 * thread, which runs its loop. */
static void quiesce_worker(http_worker *worker)
{
    if (worker->quiesced)
        return;
    worker->quiesced = true;
    update_accepting(worker);
}

static void woken(shoal_loop *loop, void *arg)
{
    (void)loop;
    http_worker *worker = arg;
    if (worker->inbox != NULL)
        shoal_side_inbox_drain(worker->inbox);
    if (atomic_load_explicit(&worker->quiesce_requested, memory_order_acquire) && !worker->quiesced) {
        quiesce_worker(worker);
        report_to_listener(worker->from, &worker->from->quiesced_workers);
    }
    /* Stopping: libmicrohttpd 0.9.75 must not be stopped with suspended
     * connections, so every request still parked is answered first (the
     * end of the turn resumes them and stops the loop when none is left). */
    if (atomic_load_explicit(&worker->stop_requested, memory_order_acquire) && worker->stop_by_ns == 0) {
        /* A stop without a drain first: no new connections either. */
        quiesce_worker(worker);
        close_links(worker);
        worker->stop_by_ns = shoal_loop_now_ns() + STOP_WRITE_WAIT_MS * 1000000u;
        end_socket_waits(worker);
        if (shoal_loop_timer_start(loop, &worker->stop_timer, STOP_WRITE_WAIT_MS, ready_due, worker) != 0)
            shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: cannot arm its stop timer", worker->index);
    }
}

/* What a worker's thread sets up before serving: pools belong to the thread
 * that uses them (the fiber pool installs its stack-overflow handler's
 * signal stack on it). Without fibers or a pipe the worker still serves,
 * its requests blocking on the tiers as on the admin listener. */
static void set_up_thread(http_worker *worker, size_t max_fibers)
{
    const shoal_http *http = worker->from->http;
    worker->app_worker = shoal_app_thread_worker(http->app);
    if (worker->app_worker != NULL)
        shoal_worker_serve_public(worker->app_worker, worker->index);
    worker->fibers = shoal_fiber_pool_create(http->config->fiber_stack_bytes, max_fibers);
    if (worker->fibers == NULL)
        shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: no fibers (out of memory?); its requests block", worker->index);
    if (worker->app_worker == NULL || worker->fibers == NULL)
        return;
    if (http->side_pool != NULL) {
        worker->inbox = shoal_side_inbox_create(worker->loop);
        if (worker->inbox != NULL) {
            shoal_side_inbox_resume_with(worker->inbox, side_work_done, worker);
            shoal_side_inbox_may_park(worker->inbox, request_may_park);
            shoal_side_bind_thread(http->side_pool, worker->inbox);
        } else {
            shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: no side pool inbox (out of memory?); its blocking work "
                      "runs on the loop", worker->index);
        }
    }
    /* Requests park on the store's own connection (transactions) from
     * here on, and on the pipe when there is one. */
    store *s = shoal_worker_store(worker->app_worker);
    store_wait wait = {.context = worker,
                       .caller = parkable_request,
                       .park = park_request,
                       .wake = wake_request,
                       .park_on_socket = park_on_socket};
    store_use_wait(s, &wait);
    store_pipe *pipe = shoal_app_store_pipe_open(http->app);
    shoal_tier_link *link = pipe != NULL ? shoal_tier_link_pipe(worker->loop, pipe) : NULL;
    if (link != NULL) {
        worker->links[worker->link_count++] = link;
        store_use_pipe(s, pipe);
    } else {
        shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: no PostgreSQL pipe (out of memory?)", worker->index);
    }
    /* The sessions' Redis, and the cache's own when it has one. */
    for (int tier = 0; tier < 2; tier++) {
        cache *blocking = shoal_worker_cache(worker->app_worker, tier == 1);
        if (tier == 1 && blocking == shoal_worker_cache(worker->app_worker, false))
            break;
        cache_async *redis = shoal_app_redis_open(http->app, tier == 1);
        link = redis != NULL ? shoal_tier_link_redis(worker->loop, redis) : NULL;
        if (link == NULL) {
            shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: no Redis connection of its loop (out of memory?)",
                      worker->index);
            continue;
        }
        worker->links[worker->link_count++] = link;
        cache_wait redis_wait = {
            .context = worker, .caller = parkable_request, .park = park_for_redis, .wake = wake_request};
        cache_use_async(blocking, redis, &redis_wait);
    }
}

/* The access lines of the turn that just ended, in one write(2). */
static void write_held_lines(shoal_loop *loop, void *unused)
{
    (void)loop;
    (void)unused;
    shoal_log_flush_lines();
}

static void *serve_worker(void *arg)
{
    http_worker *worker = arg;
    char name[16];
    snprintf(name, sizeof name, "shoal-http-%u", worker->index);
    pthread_setname_np(pthread_self(), name); /* for top -H and gdb; a failure changes nothing */
    set_up_thread(worker, worker->from->worker_fibers);
    note_settled(worker);
    shoal_log_hold_lines(true);
    if (shoal_loop_run(worker->loop) != 0)
        shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: its loop failed", worker->index);
    shoal_log_hold_lines(false);
    close_links(worker);
    /* The store outlives this thread's loop: its calls block from here on. */
    if (worker->app_worker != NULL)
        store_use_wait(shoal_worker_store(worker->app_worker), NULL);
    shoal_side_bind_thread(NULL, NULL);
    if (worker->suspended > 0)
        shoal_log(SHOAL_LOG_ERROR, "http", "worker %u: %u requests still parked at stop", worker->index,
                  worker->suspended);
    else if (worker->fibers != NULL) {
        shoal_fiber_pool_destroy(worker->fibers);
        worker->fibers = NULL;
    }
    return NULL;
}

static bool start_worker(listener *l, http_worker *worker, unsigned index, unsigned flags, unsigned max_connections)
{
    const shoal_config *config = l->http->config;
    worker->from = l;
    worker->index = index;
    worker->connection_limit = max_connections;
    atomic_init(&worker->quiesce_requested, false);
    atomic_init(&worker->stop_requested, false);
    atomic_init(&worker->open, 0);
    shoal_loop_timer_init(&worker->timeout_timer);
    shoal_loop_timer_init(&worker->accept_timer);
    shoal_loop_timer_init(&worker->ready_timer);
    shoal_loop_timer_init(&worker->stop_timer);
    worker->loop = shoal_loop_create();
    if (worker->loop == NULL)
        return false;
    worker->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, &handle_access, worker,
        MHD_OPTION_EXTERNAL_LOGGER, &log_from_library, l->http, /* first, or early messages escape */
        MHD_OPTION_CONNECTION_LIMIT, max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)config->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory(config),
        MHD_OPTION_NOTIFY_COMPLETED, &request_completed, worker,
        MHD_OPTION_NOTIFY_CONNECTION, &connection_changed, worker,
        MHD_OPTION_UNESCAPE_CALLBACK, &unescape_without_nul, worker,
        MHD_OPTION_END);
    if (worker->daemon == NULL)
        return false;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(worker->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL)
        return false;
    worker->watch = shoal_loop_watch_add(worker->loop, info->epoll_fd, SHOAL_LOOP_READ, daemon_ready, worker);
    if (worker->watch == NULL || shoal_loop_hook_add(worker->loop, end_of_turn, worker) != 0)
        return false;
    update_accepting(worker);
    if (worker->accepting == NULL)
        return false;
    shoal_loop_on_wake(worker->loop, woken, worker);
    shoal_loop_before_wait(worker->loop, write_held_lines, NULL);
    if (pthread_create(&worker->thread, NULL, serve_worker, worker) != 0)
        return false;
    worker->thread_started = true;
    return true;
}

/* Asks the worker to answer what it has parked and stop; stop_worker joins. */
static void ask_to_stop(http_worker *worker)
{
    if (!worker->thread_started)
        return;
    atomic_store_explicit(&worker->stop_requested, true, memory_order_release);
    if (shoal_loop_wake(worker->loop) != 0)
        shoal_loop_stop(worker->loop);
}

/* Joins the worker's thread and frees what it had; the listening socket is
 * the listener's (the daemon never had it). MHD_stop_daemon closes the
 * connections left, their requests ending as completed calls, on this
 * thread. */
static void join_worker(http_worker *worker)
{
    if (!worker->thread_started)
        return;
    ask_to_stop(worker);
    pthread_join(worker->thread, NULL);
    worker->thread_started = false;
}

/* After every worker's thread was joined and the side pool stopped (its
 * threads may still touch an inbox and wake a loop just after the loop's
 * last request ended). */
static void stop_worker(http_worker *worker)
{
    join_worker(worker);
    if (worker->suspended == 0) {
        shoal_side_inbox_destroy(worker->inbox);
        worker->inbox = NULL;
    }
    if (worker->daemon != NULL && worker->suspended == 0) {
        quiesce_worker(worker);
        if (worker->watch != NULL)
            shoal_loop_watch_remove(worker->watch);
        MHD_stop_daemon(worker->daemon);
        worker->daemon = NULL;
    }
    worker->watch = NULL;
    if (worker->loop != NULL && worker->daemon == NULL)
        shoal_loop_destroy(worker->loop);
    worker->loop = NULL;
}

static void stop_public_listener(listener *l, shoal_side_pool **side_pool)
{
    /* All asked first, so that they finish their parked requests at once. */
    for (unsigned i = 0; i < l->worker_count; i++)
        ask_to_stop(&l->workers[i]);
    for (unsigned i = 0; i < l->worker_count; i++)
        join_worker(&l->workers[i]);
    shoal_side_pool_destroy(*side_pool);
    *side_pool = NULL;
    for (unsigned i = 0; i < l->worker_count; i++)
        stop_worker(&l->workers[i]);
    free(l->workers);
    l->workers = NULL;
    l->worker_count = 0;
    if (l->listen_socket >= 0)
        close(l->listen_socket);
    l->listen_socket = -1;
    pthread_cond_destroy(&l->workers_changed);
    pthread_mutex_destroy(&l->workers_lock);
}

/* The public listener: --threads workers, each a loop thread with its own
 * daemon on the one listening socket. */
static bool start_public_listener(shoal_http *http, listener *l, char *error, size_t error_size)
{
    const shoal_config *config = http->config;
    /* The workers accept, libmicrohttpd does not (accept_one). */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
    struct sockaddr_storage address;
    if (!parse_address(config->bind_address, config->port, &address, &flags)) {
        snprintf(error, error_size, "--bind: '%s' is not an IPv4 or IPv6 address", config->bind_address);
        return false;
    }
    l->http = http;
    l->kind = SHOAL_LISTENER_PUBLIC;
    if (pthread_mutex_init(&l->workers_lock, NULL) != 0 || pthread_cond_init(&l->workers_changed, NULL) != 0) {
        snprintf(error, error_size, "cannot start the HTTP workers' lock");
        return false;
    }
    l->listen_socket = open_listen_socket(&address, config->listen_backlog);
    if (l->listen_socket < 0) {
        cannot_listen(config->bind_address, config->port, SHOAL_LISTENER_PUBLIC, error, error_size);
        stop_public_listener(l, &http->side_pool);
        return false;
    }
    l->port = socket_port(l->listen_socket);
    unsigned count = (unsigned)config->threads;
    l->workers = calloc(count, sizeof *l->workers);
    if (l->workers == NULL) {
        snprintf(error, error_size, "out of memory");
        stop_public_listener(l, &http->side_pool);
        return false;
    }
    l->worker_count = count;
    /* --max-connections in all, shared out as libmicrohttpd's pool does. */
    unsigned total = (unsigned)config->max_connections;
    /* A connection has one request in flight at a time. */
    l->worker_fibers = total / count + 1;
    for (unsigned i = 0; i < count; i++) {
        unsigned share = total / count + (i < total % count ? 1 : 0);
        if (!start_worker(l, &l->workers[i], i, flags, share > 0 ? share : 1)) {
            snprintf(error, error_size, "cannot start HTTP worker %u of %u (out of memory or file descriptors)",
                     i + 1, count);
            stop_public_listener(l, &http->side_pool);
            return false;
        }
    }
    l->accepting = true;
    return true;
}

static void stop_admin_listener(listener *l)
{
    if (l->admin.daemon == NULL)
        return;
    MHD_stop_daemon(l->admin.daemon);
    l->admin.daemon = NULL;
}

shoal_http *shoal_http_start(shoal_app *app, char *error, size_t error_size)
{
    const shoal_config *config = shoal_app_config(app);
    if (shoal_app_freeze(app) != 0) {
        snprintf(error, error_size, "the app's setup failed (see the log lines above)");
        return NULL;
    }
    shoal_http *http = calloc(1, sizeof *http);
    if (http == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    http->app = app;
    http->config = config;
    /* As many side threads as workers: blocking work (a password hash)
     * keeps at most that many cores busy, whatever it costs. */
    http->side_pool = shoal_side_pool_create(config->threads);
    if (http->side_pool == NULL)
        shoal_log(SHOAL_LOG_ERROR, "http", "no side pool (out of memory?): blocking work runs on the loops");
    /* The admin listener first: HAProxy and the kubelet ask it whether the
     * node is ready, and it answers 503 until main says so. */
    const char *admin_address = config->admin_bind_address != NULL && config->admin_bind_address[0] != '\0'
                                    ? config->admin_bind_address
                                    : config->bind_address;
    if (!start_admin_listener(http, &http->admin_listener, admin_address, error, error_size) ||
        !start_public_listener(http, &http->public_listener, error, error_size)) {
        stop_admin_listener(&http->admin_listener);
        shoal_side_pool_destroy(http->side_pool);
        free(http);
        return NULL;
    }
    return http;
}

bool shoal_http_await_pipes(shoal_http *http, uint64_t deadline_ms)
{
    listener *l = &http->public_listener;
    uint64_t now = shoal_monotonic_ms();
    struct timespec until = realtime_after_ms(deadline_ms > now ? (long)(deadline_ms - now) : 0);
    pthread_mutex_lock(&l->workers_lock);
    while (l->settled_workers < l->worker_count)
        if (pthread_cond_timedwait(&l->workers_changed, &l->workers_lock, &until) != 0)
            break;
    bool settled = l->settled_workers == l->worker_count;
    pthread_mutex_unlock(&l->workers_lock);
    return settled;
}

int shoal_http_port(const shoal_http *http)
{
    return http->public_listener.port;
}

int shoal_http_admin_port(const shoal_http *http)
{
    return http->admin_listener.port;
}

void shoal_http_stop_accepting(shoal_http *http)
{
    listener *l = &http->public_listener;
    if (!l->accepting)
        return;
    l->accepting = false;
    for (unsigned i = 0; i < l->worker_count; i++) {
        atomic_store_explicit(&l->workers[i].quiesce_requested, true, memory_order_release);
        if (shoal_loop_wake(l->workers[i].loop) != 0)
            shoal_log(SHOAL_LOG_ERROR, "http", "cannot wake worker %u to stop accepting", i);
    }
    struct timespec until = realtime_after_ms(QUIESCE_WAIT_MS);
    pthread_mutex_lock(&l->workers_lock);
    while (l->quiesced_workers < l->worker_count)
        if (pthread_cond_timedwait(&l->workers_changed, &l->workers_lock, &until) != 0)
            break;
    unsigned quiesced = l->quiesced_workers;
    pthread_mutex_unlock(&l->workers_lock);
    if (quiesced < l->worker_count)
        shoal_log(SHOAL_LOG_WARNING, "http", "%u of %u workers still busy; the listener closes anyway",
                  l->worker_count - quiesced, l->worker_count);
    /* Quiescing only stops the workers calling accept(); the kernel would
     * go on completing handshakes into the backlog, where clients hang.
     * Shutting the listener down makes new connections fail at once, so
     * HAProxy retries them on another node. The socket stays open (a worker
     * that did not quiesce in time still watches it) until shoal_http_stop. */
    if (shutdown(l->listen_socket, SHUT_RDWR) != 0)
        shoal_log(SHOAL_LOG_WARNING, "http", "cannot shut the listening socket down: %s", strerror(errno));
}

void shoal_http_stop(shoal_http *http)
{
    if (http == NULL)
        return;
    stop_public_listener(&http->public_listener, &http->side_pool);
    stop_admin_listener(&http->admin_listener);
    free(http);
}
