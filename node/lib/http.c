/* node/lib/http.c: libmicrohttpd glue. */
#include <shoal/http.h>

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdarg.h>
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

/* One libmicrohttpd daemon: the public port with the worker pool, or the
 * admin port with a thread of its own. */
typedef struct listener {
    shoal_http *http;
    struct MHD_Daemon *daemon;
    shoal_listener kind;
    int port;
    bool accepting;
    int quiesced_socket; /* closed only after MHD_stop_daemon, as the manual asks */
} listener;

struct shoal_http {
    shoal_app *app;
    const shoal_config *config;
    listener public_listener;
    listener admin_listener;
};

typedef struct request {
    shoal_ctx ctx;
    uint64_t started_ns;
    char *body;
    size_t body_length;
    size_t body_capacity;
    size_t body_discarded;
    bool body_too_large;
    bool dispatched;
    bool admitted; /* counted against --max-in-flight (shoal_app_admit) */
    alignas(max_align_t) unsigned char arena_block[REQUEST_ARENA_BYTES];
} request;

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

static enum MHD_Result respond(const shoal_http *http, request *r, struct MHD_Connection *connection)
{
    shoal_ctx *ctx = &r->ctx;
    r->dispatched = true;
    shoal_app_dispatch(http->app, ctx);

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

static enum MHD_Result begin_request(const listener *from, struct MHD_Connection *connection,
                                     const char *url, const char *method, const char *version,
                                     void **request_state)
{
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
        return respond(http, r, connection);
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
            return respond(http, r, connection);
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
                return respond(http, r, connection);
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
    const listener *from = context;
    const shoal_http *http = from->http;
    request *r = *request_state;
    if (r == NULL)
        return begin_request(from, connection, url, method, version, request_state);

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
    if (r->dispatched)
        return MHD_YES;
    if (!r->admitted && from->kind == SHOAL_LISTENER_PUBLIC) {
        r->admitted = true;
        r->ctx.shed = !shoal_app_admit(http->app);
    }
    shoal_ctx_set_body(&r->ctx, r->body, r->body_length);
    return respond(http, r, connection);
}

static void request_completed(void *context, struct MHD_Connection *connection, void **request_state,
                              enum MHD_RequestTerminationCode termination)
{
    const shoal_http *http = ((const listener *)context)->http;
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

/* Each connection gets its request (with the arena's first block) when it
 * opens and gives it back when it closes, so requests on a keep-alive
 * connection allocate nothing of their own. */
static void connection_changed(void *context, struct MHD_Connection *connection, void **connection_state,
                               enum MHD_ConnectionNotificationCode change)
{
    (void)context;
    (void)connection;
    if (change == MHD_CONNECTION_NOTIFY_STARTED) {
        /* NULL when memory ran out: begin_request then refuses the
         * connection's requests. */
        *connection_state = malloc(sizeof(request));
    } else if (change == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*connection_state);
        *connection_state = NULL;
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

static int bound_port(struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (info == NULL)
        return -1;
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    if (getsockname(info->listen_fd, (struct sockaddr *)&address, &length) != 0)
        return -1;
    if (address.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&address)->sin_port);
    if (address.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
    return -1;
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

/* Starts one listener's daemon: threads > 1 is a pool of epoll loops, 1 the
 * daemon's own epoll thread. */
static bool start_listener(shoal_http *http, listener *l, shoal_listener kind, const char *address_text, int port,
                           unsigned threads, unsigned max_connections, char *error, size_t error_size)
{
    const shoal_config *config = http->config;
    const char *setting = kind == SHOAL_LISTENER_ADMIN ? "--admin-bind" : "--bind";
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_storage address;
    if (!parse_address(address_text, port, &address, &flags)) {
        snprintf(error, error_size, "%s: '%s' is not an IPv4 or IPv6 address", setting, address_text);
        return false;
    }
    l->http = http;
    l->kind = kind;
    l->quiesced_socket = -1;

    /* libmicrohttpd keeps the request line, the headers, a record per
     * header and the response's own header block in one pool per
     * connection, and clears all of it after every request (0.9.75 writes
     * zeros over the whole pool, then again over the unused half of the
     * read buffer): its size is paid per request. The header limit is
     * enforced exactly, with the JSON envelope, in begin_request; the pool
     * holds a request at the limit plus room for the records and the
     * answer's headers, and a request too large for even that gets
     * libmicrohttpd's own 431 and a closed connection. */
    size_t connection_memory = config->max_header_bytes + CONNECTION_ROOM_BYTES;
    l->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, &handle_access, l,
        MHD_OPTION_EXTERNAL_LOGGER, &log_from_library, http, /* first, or early messages escape */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
        MHD_OPTION_CONNECTION_LIMIT, max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)config->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)config->listen_backlog,
        MHD_OPTION_NOTIFY_COMPLETED, &request_completed, l,
        MHD_OPTION_NOTIFY_CONNECTION, &connection_changed, l,
        MHD_OPTION_UNESCAPE_CALLBACK, &unescape_without_nul, l,
        /* Last: one thread means the daemon's own epoll thread, and naming a
         * pool of one draws a warning, so the list ends early instead. */
        threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads,
        MHD_OPTION_END);
    if (l->daemon == NULL) {
        snprintf(error, error_size, "cannot listen on %s port %d for the %s listener (in use, or not permitted)",
                 address_text, port, kind == SHOAL_LISTENER_ADMIN ? "admin" : "public");
        return false;
    }
    l->port = bound_port(l->daemon);
    l->accepting = true;
    return true;
}

static void stop_listener(listener *l)
{
    if (l->daemon == NULL)
        return;
    MHD_stop_daemon(l->daemon);
    if (l->quiesced_socket >= 0)
        close(l->quiesced_socket);
    l->daemon = NULL;
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
    /* The admin listener first: HAProxy and the kubelet ask it whether the
     * node is ready, and it answers 503 until main says so. */
    const char *admin_address = config->admin_bind_address != NULL && config->admin_bind_address[0] != '\0'
                                    ? config->admin_bind_address
                                    : config->bind_address;
    if (!start_listener(http, &http->admin_listener, SHOAL_LISTENER_ADMIN, admin_address, config->admin_port, 1,
                        ADMIN_MAX_CONNECTIONS, error, error_size) ||
        !start_listener(http, &http->public_listener, SHOAL_LISTENER_PUBLIC, config->bind_address, config->port,
                        (unsigned)config->threads, (unsigned)config->max_connections, error, error_size)) {
        stop_listener(&http->admin_listener);
        free(http);
        return NULL;
    }
    return http;
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
    MHD_socket socket = MHD_quiesce_daemon(l->daemon);
    if (socket == MHD_INVALID_SOCKET)
        return;
    /* Quiescing only stops libmicrohttpd from calling accept(); the kernel
     * would go on completing handshakes into the backlog, where clients
     * hang. Shutting the listener down makes new connections fail at once,
     * so HAProxy retries them on another node. */
    shutdown(socket, SHUT_RDWR);
    l->quiesced_socket = socket;
}

void shoal_http_stop(shoal_http *http)
{
    if (http == NULL)
        return;
    stop_listener(&http->public_listener);
    stop_listener(&http->admin_listener);
    free(http);
}
