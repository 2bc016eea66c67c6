/* node/health.c */
#include "health.h"

#include "cache.h"
#include "store.h"

static int healthz(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:s,s:s}", "status", "alive", "node",
                                          shoal_app_config(shoal_ctx_app(ctx))->node_name));
}

static const char *readiness_name(shoal_readiness readiness)
{
    switch (readiness) {
    case SHOAL_READY:
        return "ready";
    case SHOAL_DRAINING:
        return "draining";
    case SHOAL_STARTING:
        break;
    }
    return "starting";
}

static int readyz(shoal_ctx *ctx)
{
    shoal_app *app = shoal_ctx_app(ctx);
    shoal_readiness readiness = shoal_app_readiness(app);
    bool postgres_up = shoal_store(ctx) != NULL && store_ping(shoal_store(ctx)) == STORE_OK;
    bool redis_up = shoal_cache(ctx) != NULL && cache_ping(shoal_cache(ctx)) == CACHE_OK;
    json_t *body = json_pack("{s:s,s:s,s:s,s:s}", "status", readiness_name(readiness), "node",
                             shoal_app_config(app)->node_name, "postgres", postgres_up ? "up" : "down",
                             "redis", redis_up ? "up" : "down");
    /* Health checks run every second on every node: keep them out of caches. */
    shoal_set_header(ctx, "Cache-Control", "no-store");
    return shoal_json(ctx, readiness == SHOAL_READY ? 200 : 503, body);
}

static int init(shoal_app *app, void *data)
{
    (void)data;
    shoal_blueprint *root = shoal_app_root(app);
    if (shoal_route(root, "GET", "/healthz", healthz) != 0 || shoal_route(root, "GET", "/readyz", readyz) != 0)
        return -1;
    return 0;
}

const shoal_extension shoal_health_extension = {
    .name = "health",
    .init = init,
};
