/* node/cached.c: cache-aside for handlers, with the request's arena as
 * the memory and the node's L1 in front. */
#include "aside.h"
#include "log.h"
#include "metrics.h"
#include "shoal.h"

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

static cache_aside_options options_for(int ttl_ms)
{
    return (cache_aside_options){.ttl_ms = ttl_ms, .stale_ms = ttl_ms / 5};
}

int shoal_cached(shoal_ctx *ctx, const char *family, const char *key, int ttl_ms, shoal_fill_fn fill,
                 void *data, const void **value, size_t *length)
{
    /* Past the deadline no Redis call starts: the fill goes straight to
     * its store, which refuses too (STORE_DEADLINE), and the handler
     * answers that as it answers any store failure. */
    if (shoal_deadline_passed(ctx)) {
        void *filled = NULL;
        size_t filled_length = 0;
        int rc = fill(ctx, key, data, &filled, &filled_length);
        *value = rc == 0 ? filled : NULL;
        *length = rc == 0 ? filled_length : 0;
        return rc;
    }
    fill_call call = {ctx, fill, data};
    cache_aside_allocator allocator = {arena_alloc, shoal_ctx_arena(ctx)};
    cache_aside_options options = options_for(ttl_ms);
    /* Out of range until a value (or a fill that found nothing) names it. */
    cache_aside_value out = {.source = (cache_aside_source)SHOAL_METRICS_CACHE_SOURCES};
    int rc = cache_aside_get(shoal_cache_tier(ctx), shoal_app_l1(shoal_ctx_app(ctx)), family, key, &options,
                             call_fill, &call, &allocator, &out);
    /* A fill that found nothing (rc > 0) was a miss all the same. */
    if (rc >= 0)
        shoal_worker_counters_cache_read(shoal_ctx_worker_counters(ctx), out.source, 1);
    *value = rc == 0 ? out.bytes : NULL;
    *length = rc == 0 ? out.length : 0;
    return rc;
}

int shoal_cached_many(shoal_ctx *ctx, const char *family, const char *const *keys, size_t count, int ttl_ms,
                      shoal_fill_fn fill, void *data, shoal_cached_value *values)
{
    if (shoal_deadline_passed(ctx)) {
        for (size_t i = 0; i < count; i++) {
            void *filled = NULL;
            size_t filled_length = 0;
            int rc = fill(ctx, keys[i], data, &filled, &filled_length);
            if (rc != 0) {
                for (size_t j = 0; j < count; j++)
                    values[j] = (shoal_cached_value){NULL, 0};
                return rc;
            }
            values[i] = (shoal_cached_value){filled, filled_length};
        }
        return 0;
    }
    fill_call call = {ctx, fill, data};
    cache_aside_allocator allocator = {arena_alloc, shoal_ctx_arena(ctx)};
    cache_aside_options options = options_for(ttl_ms);
    cache_aside_value *out = shoal_arena_calloc(shoal_ctx_arena(ctx), count > 0 ? count : 1, sizeof *out);
    if (out == NULL)
        return -1;
    int rc = cache_aside_get_many(shoal_cache_tier(ctx), shoal_app_l1(shoal_ctx_app(ctx)), family, keys, count,
                                  &options, call_fill, &call, &allocator, out);
    /* After a failed fill the later values have no source: nothing counts. */
    if (rc == 0) {
        shoal_worker_counters *counters = shoal_ctx_worker_counters(ctx);
        for (size_t i = 0; i < count; i++)
            shoal_worker_counters_cache_read(counters, out[i].source, 1);
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
