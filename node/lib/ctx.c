/* node/lib/ctx.c: the request context: made per request by the HTTP glue, and
 * what handlers and hooks read from it (method, path, parameters, query,
 * headers, body, client address, request id and slots, the worker's
 * tiers). */
#include <string.h>

#include "app_internal.h"
#include "side_pool.h"

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

void *shoal_ctx_instance(const shoal_ctx *ctx, const shoal_extension *extension)
{
    return shoal_app_instance(ctx->app, extension);
}

void *shoal_ctx_standard_instance(const shoal_ctx *ctx, shoal_standard_instance which)
{
    return ctx->app->standard_instances[which];
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

void shoal_ctx_set_request_id_kept(shoal_ctx *ctx, char *id)
{
    ctx->request_id = id;
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

atomic_ullong *shoal_ctx_metric_cells(shoal_ctx *ctx, size_t *count)
{
    if (ctx == NULL || ctx->worker == NULL) {
        *count = 0;
        return NULL;
    }
    *count = ctx->worker->metric_cell_count;
    return ctx->worker->metric_cells;
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

int shoal_ctx_run_blocking(shoal_ctx *ctx, void (*work)(void *arg), void *arg)
{
    return shoal_side_run(ctx->deadline_ns, work, arg);
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
