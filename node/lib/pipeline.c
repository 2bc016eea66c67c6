/* node/lib/pipeline.c: one request through the app: admission, then dispatch
 * (route, before hooks, handler or the error in its place, after and
 * teardown hooks, overload's shedding and deadlines), then finish (route
 * counters, access log, the arena released). */
#include <stdatomic.h>

#include <shoal/log.h>

#include "app_internal.h"

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
            shoal_answer_internal_error(ctx);
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
        shoal_answer_internal_error(ctx);
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
    shoal_blueprint *root = shoal_listener_root(ctx);
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
    if (guarded && ctx->worker != NULL) {
        ctx->store_deadline_ns = ctx->deadline_ns;
        store_set_deadline(ctx->worker->store, ctx->deadline_ns);
    }
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
    if (guarded && ctx->worker != NULL) {
        ctx->store_deadline_ns = 0;
        store_set_deadline(ctx->worker->store, 0);
    }

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
