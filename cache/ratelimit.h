/* cache/ratelimit.h: rate limits shared by every node, in Redis.
 *
 * GCRA (the generic cell rate algorithm): each key holds one number, the
 * theoretical arrival time (TAT) of the next request, in microseconds of
 * Redis' own clock. A request is allowed when it arrives no earlier than
 * TAT minus the burst tolerance, and then moves TAT on by one emission
 * interval (period / count). The check and the update are one Lua script, so
 * nodes racing on one key cannot both take the last slot, and the time is
 * Redis' TIME, so nodes' clocks never matter. A key expires when its bucket
 * is full again, so idle clients cost no memory. */
#ifndef CACHE_RATELIMIT_H
#define CACHE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include <shoal/cache.h>

typedef struct cache_ratelimit_limit {
    long long count;     /* requests ... */
    long long period_ms; /* ... per this period, sustained */
    long long burst;     /* requests allowed back to back from a full bucket (>= 1) */
} cache_ratelimit_limit;

typedef struct cache_ratelimit_result {
    bool allowed;
    long long retry_after_ms; /* when limited: until one more request is allowed */
    long long remaining;      /* check: requests allowed right now after this one;
                                 peek: requests allowed right now */
    long long reset_ms;       /* until the bucket is full again (0: it is) */
} cache_ratelimit_result;

/* A bucket's Redis key: prefix (a valid key prefix, cache.h; the
 * connection's cache_key_prefix), "rl:", name, ':', then key_length bytes
 * of key (binary-safe). out holds CACHE_RATELIMIT_KEY_SIZE(strlen(prefix),
 * strlen(name), key_length) bytes; returns the key's length (there is no
 * NUL). */
#define CACHE_RATELIMIT_KEY_SIZE(prefix_length, name_length, key_length) \
    ((prefix_length) + 3 + (name_length) + 1 + (key_length))
size_t cache_ratelimit_key(const char *prefix, const char *name, const char *key, size_t key_length, char *out);

/* Counts one request against key (binary-safe), unless it is limited.
 * CACHE_OK fills result; otherwise Redis could not decide, and result says
 * allowed (the caller chooses whether to fail open). */
cache_status cache_ratelimit_check(cache *c, const char *key, size_t key_length,
                                   const cache_ratelimit_limit *limit, cache_ratelimit_result *result);

/* The same question without counting: would a request be allowed now? For
 * limits on events known only afterwards (failed logins): peek before,
 * check when the event happened. */
cache_status cache_ratelimit_peek(cache *c, const char *key, size_t key_length,
                                  const cache_ratelimit_limit *limit, cache_ratelimit_result *result);

#endif
