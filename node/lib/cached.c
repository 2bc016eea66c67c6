/* node/lib/cached.c: cache-aside for handlers, with the request's arena as
 * the memory and the node's L1 in front. */
#include <shoal/aside.h>
#include <shoal/config.h>
#include <shoal/log.h>
#include <shoal/metrics.h>
#include <shoal/shoal.h>
#include <shoal/store.h>

#include "context.h"
#include "metrics_registry.h"

/* cache_aside_source's values, in its order; one past the last counts
 * nowhere. Not by cache family: a family is any name a caller passes,
 * and a label from it would have no bound. */
#define CACHE_SOURCES (CACHE_ASIDE_STALE_IF_ERROR + 1)
static const char *const cache_sources[CACHE_SOURCES + 1] = {
    [CACHE_ASIDE_L1] = "l1",
    [CACHE_ASIDE_REDIS] = "redis",
    [CACHE_ASIDE_STALE] = "stale",
    [CACHE_ASIDE_FILLED] = "filled",
    [CACHE_ASIDE_BYPASSED] = "bypassed",
    [CACHE_ASIDE_STALE_IF_ERROR] = "stale_if_error",
    [CACHE_SOURCES] = NULL,
};

int shoal_cached_register_metrics(shoal_app *app)
{
    static const shoal_metric_spec reads = {
        .name = "shoal_cache_reads_total",
        .help = "Values read through the cache-aside helper, by where they came from: l1 and redis are hits, "
                "stale a stale copy served while another fills, filled and bypassed misses that PostgreSQL "
                "answered (bypassed: Redis unreachable), stale_if_error a copy past its freshness answered "
                "because PostgreSQL could not.",
        .label = "source",
        .values = cache_sources,
    };
    shoal_app_core_metrics(app)->cache_reads = shoal_app_counter(app, &reads);
    return shoal_app_core_metrics(app)->cache_reads != NULL ? 0 : -1;
}

typedef struct fill_call {
    shoal_ctx *ctx;
    shoal_fill_fn fill;
    void *data;
} fill_call;

static void *arena_alloc(void *arena, size_t size)
{
    return shoal_arena_alloc(arena, size);
}

/* cache/ knows nothing of requests: the handler's fill gets its ctx back
 * through this. */
static int call_fill(void *data, const char *key, const cache_aside_allocator *allocator, void **value,
                     size_t *length)
{
    (void)allocator; /* the arena, which the handler's fill reaches through ctx */
    fill_call *call = data;
    return call->fill(call->ctx, key, call->data, value, length);
}

/* The fill codes that say PostgreSQL could not answer now, each a 503 of
 * shoal_error_from_store; a stale copy is a better answer than those. Not
 * STORE_NOT_FOUND, CONFLICT or INVALID (answers about the data) and not
 * STORE_ERROR (a bug or a broken statement, which a copy would hide). */
static bool store_could_not_answer(int code)
{
    switch ((store_status)code) {
    case STORE_UNAVAILABLE:
    case STORE_TIMEOUT:
    case STORE_BUSY:
    case STORE_DEADLINE:
        return true;
    case STORE_OK:
    case STORE_ERROR:
    case STORE_CONFLICT:
    case STORE_INVALID:
    case STORE_NOT_FOUND:
        break;
    }
    return false;
}

static cache_aside_options options_for(shoal_ctx *ctx, int ttl_ms)
{
    return (cache_aside_options){
        .ttl_ms = ttl_ms,
        .stale_ms = ttl_ms / 5,
        .stale_if_error_ms = shoal_app_config(shoal_ctx_app(ctx))->cache_stale_if_error_ms,
        .tier_failure = store_could_not_answer,
    };
}

int shoal_cached(shoal_ctx *ctx, const char *family, const char *key, int ttl_ms, shoal_fill_fn fill,
                 void *data, const void **value, size_t *length)
{
    fill_call call = {ctx, fill, data};
    cache_aside_allocator allocator = {arena_alloc, shoal_ctx_arena(ctx)};
    cache_aside_options options = options_for(ctx, ttl_ms);
    /* Past the deadline no Redis call starts: the L1 answers from memory,
     * else the fill goes straight to its store, which refuses too
     * (STORE_DEADLINE), and the L1's copy kept for errors may answer that. */
    cache *tier = shoal_deadline_passed(ctx) ? NULL : shoal_cache_tier(ctx);
    /* Out of range until a value (or a fill that found nothing) names it. */
    cache_aside_value out = {.source = (cache_aside_source)CACHE_SOURCES};
    int rc = cache_aside_get(tier, shoal_app_l1(shoal_ctx_app(ctx)), family, key, &options, call_fill, &call,
                             &allocator, &out);
    /* A fill that found nothing (rc > 0) was a miss all the same. */
    if (rc >= 0)
        shoal_count(ctx, shoal_app_core_metrics(shoal_ctx_app(ctx))->cache_reads, (size_t)out.source, 1);
    *value = rc == 0 ? out.bytes : NULL;
    *length = rc == 0 ? out.length : 0;
    return rc;
}

int shoal_cached_many(shoal_ctx *ctx, const char *family, const char *const *keys, size_t count, int ttl_ms,
                      shoal_fill_fn fill, void *data, shoal_cached_value *values)
{
    fill_call call = {ctx, fill, data};
    cache_aside_allocator allocator = {arena_alloc, shoal_ctx_arena(ctx)};
    cache_aside_options options = options_for(ctx, ttl_ms);
    cache_aside_value *out = shoal_arena_calloc(shoal_ctx_arena(ctx), count > 0 ? count : 1, sizeof *out);
    if (out == NULL)
        return -1;
    /* Past the deadline no Redis call starts, as in shoal_cached. */
    cache *tier = shoal_deadline_passed(ctx) ? NULL : shoal_cache_tier(ctx);
    int rc = cache_aside_get_many(tier, shoal_app_l1(shoal_ctx_app(ctx)), family, keys, count, &options, call_fill,
                                  &call, &allocator, out);
    /* After a failed fill the later values have no source: nothing counts. */
    if (rc == 0) {
        const shoal_counter *reads = shoal_app_core_metrics(shoal_ctx_app(ctx))->cache_reads;
        for (size_t i = 0; i < count; i++)
            shoal_count(ctx, reads, (size_t)out[i].source, 1);
    }
    for (size_t i = 0; i < count; i++)
        values[i] = rc == 0 ? (shoal_cached_value){out[i].bytes, out[i].length} : (shoal_cached_value){NULL, 0};
    return rc;
}

int shoal_cache_invalidate(shoal_ctx *ctx, const char *family)
{
    cache_status status =
        cache_aside_invalidate_family(shoal_cache_tier(ctx), shoal_app_l1(shoal_ctx_app(ctx)), family, NULL);
    if (status != CACHE_OK)
        shoal_log(SHOAL_LOG_WARNING, "cache", "cannot invalidate %s: cached values live until their TTL", family);
    return (int)status;
}

int shoal_cache_invalidate_key(shoal_ctx *ctx, const char *family, const char *key)
{
    cache_status status =
        cache_aside_invalidate_key(shoal_cache_tier(ctx), shoal_app_l1(shoal_ctx_app(ctx)), family, key);
    if (status != CACHE_OK)
        shoal_log(SHOAL_LOG_WARNING, "cache", "cannot invalidate %s %s: its value lives until its TTL", family, key);
    return (int)status;
}
