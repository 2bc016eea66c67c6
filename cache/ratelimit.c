/* cache/ratelimit.c: GCRA in one Lua script. */
#include "ratelimit.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cache_script.h"

/* KEYS[1]: the bucket. ARGV[1]: the emission interval and ARGV[2] the burst
 * tolerance, both in microseconds; ARGV[3]: "1" to peek (decide without
 * counting). Returns {allowed, retry_after_ms, remaining, reset_ms}. Redis 7
 * replicates a script's effects, not the script, so reading TIME before
 * writing is allowed and replicas get the SET as computed. Times are
 * microseconds since the epoch, about 2^51: exact in Lua's doubles;
 * string.format("%.0f") writes them without an exponent. */
#define GCRA_SOURCE \
    "local t = redis.call('TIME')\n" \
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n" \
    "local interval = tonumber(ARGV[1])\n" \
    "local tolerance = tonumber(ARGV[2])\n" \
    "local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now\n" \
    "if tat < now then tat = now end\n" \
    "local next_tat = tat + interval\n" \
    "local allow_at = next_tat - tolerance\n" \
    "if allow_at > now then\n" \
    "  return {0, math.ceil((allow_at - now) / 1000), 0, math.ceil((tat - now) / 1000)}\n" \
    "end\n" \
    "if ARGV[3] == '1' then\n" \
    "  return {1, 0, math.floor((now - allow_at) / interval) + 1, math.ceil((tat - now) / 1000)}\n" \
    "end\n" \
    "redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX',\n" \
    "           math.max(1, math.ceil((next_tat - now) / 1000)))\n" \
    "return {1, 0, math.floor((now - allow_at) / interval), math.ceil((next_tat - now) / 1000)}\n"

/* A check counts the request: run twice it counts twice, so it is not
 * resent after a lost reply. A peek writes nothing and is. Two objects for
 * one source: each learns the same SHA-1. */
static cache_script gcra = CACHE_SCRIPT(GCRA_SOURCE);
static cache_script gcra_peek = CACHE_SCRIPT_RESENDABLE(GCRA_SOURCE);

static cache_status run(cache *c, const char *key, size_t key_length, const cache_ratelimit_limit *limit,
                        bool peek, cache_ratelimit_result *result)
{
    *result = (cache_ratelimit_result){.allowed = true};
    if (limit->count < 1 || limit->period_ms < 1 || limit->burst < 1 || limit->period_ms > LLONG_MAX / 1000)
        return CACHE_ERROR;
    /* At least one microsecond, or a huge count would never advance TAT. */
    long long interval_us = limit->period_ms * 1000 / limit->count;
    if (interval_us < 1)
        interval_us = 1;
    if (limit->burst > LLONG_MAX / interval_us)
        return CACHE_ERROR;
    long long tolerance_us = interval_us * limit->burst;
    char interval[32], tolerance[32];
    snprintf(interval, sizeof interval, "%lld", interval_us);
    snprintf(tolerance, sizeof tolerance, "%lld", tolerance_us);
    const char *argv[] = {key, interval, tolerance, peek ? "1" : "0"};
    size_t lengths[] = {key_length, strlen(interval), strlen(tolerance), 1};
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, peek ? &gcra_peek : &gcra, 1, 4, argv, lengths, &reply);
    if (status != CACHE_OK) {
        freeReplyObject(reply);
        return status;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        freeReplyObject(reply);
        return CACHE_ERROR;
    }
    for (size_t i = 0; i < 4; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(reply);
            return CACHE_ERROR;
        }
    }
    result->allowed = reply->element[0]->integer == 1;
    result->retry_after_ms = reply->element[1]->integer;
    result->remaining = reply->element[2]->integer;
    result->reset_ms = reply->element[3]->integer;
    freeReplyObject(reply);
    return CACHE_OK;
}

size_t cache_ratelimit_key(const char *prefix, const char *name, const char *key, size_t key_length, char *out)
{
    size_t prefix_length = strlen(prefix), name_length = strlen(name);
    char *cursor = out;
    memcpy(cursor, prefix, prefix_length);
    cursor += prefix_length;
    memcpy(cursor, "rl:", 3);
    cursor += 3;
    memcpy(cursor, name, name_length);
    cursor += name_length;
    *cursor++ = ':';
    memcpy(cursor, key, key_length);
    return CACHE_RATELIMIT_KEY_SIZE(prefix_length, name_length, key_length);
}

cache_status cache_ratelimit_check(cache *c, const char *key, size_t key_length,
                                   const cache_ratelimit_limit *limit, cache_ratelimit_result *result)
{
    return run(c, key, key_length, limit, false, result);
}

cache_status cache_ratelimit_peek(cache *c, const char *key, size_t key_length,
                                  const cache_ratelimit_limit *limit, cache_ratelimit_result *result)
{
    return run(c, key, key_length, limit, true, result);
}
