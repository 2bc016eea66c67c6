/* cache/include/shoal/aside.h: cache-aside reads in front of PostgreSQL.
 *
 * A value belongs to a family ("article", "tags", "world") and has a key
 * within it. Each family has a version counter in Redis, and a value lives
 * under the version it was filled under:
 *
 *   <prefix>shoal:cv:<family>                 the family's version
 *   <prefix>shoal:c2:<family>:<version>:<key> a value: "<tail_ms>:<bytes>"
 *   <prefix>shoal:cl:<family>:<version>:<key> its filler's lock
 *
 * (<prefix>: the connection's key prefix, cache.h; "" in the 0.1 layout)
 * so one INCR of the version (cache_aside_invalidate_family) makes every
 * value of the family unreachable at once; the old ones expire by TTL. A
 * version key that is missing (never written, or evicted by allkeys-lru)
 * is seeded from the server's clock in microseconds, so a family's version
 * never goes back to one that was used before.
 *
 * A value is stored as "<tail_ms>:" followed by the caller's bytes, with a
 * PX of its freshness (ttl_ms +/- 10 %) plus tail_ms, the time Redis keeps
 * it after that: max(stale_ms, stale_if_error_ms). A reader learns how long
 * ago a value stopped being fresh from the tail and the key's PTTL, so
 * nodes with other settings still agree on freshness. (Earlier nodes kept
 * bare values under shoal:c:; the new name keeps old and new nodes from
 * reading each other's values during a rolling upgrade.)
 *
 * A read (cache_aside_get) asks, in one round trip (a Lua script): the
 * version, the value under it, how long ago it stopped being fresh, and,
 * when it is not fresh, for the fill lock (SET NX PX). Then:
 *   - fresh: served;
 *   - we got the lock: the fill runs, its result is written back (SET PX
 *     plus the lock's release, one round trip) and served;
 *   - somebody else is filling and a copy at most stale_ms past its
 *     freshness exists: that stale copy is served at once (waiting would
 *     only trade latency for a copy that is a few milliseconds fresher);
 *   - somebody else is filling and there is no such copy: poll with short
 *     sleeps up to wait_ms for the filler's fresh value, then fill ourselves.
 * Values stay fresh for ttl_ms +/- 10 % (the jitter spreads the expiry of
 * values filled together) and may be served stale for stale_ms after that.
 *
 * Stale if error: when a fill fails with a code the caller's tier_failure
 * accepts (PostgreSQL unavailable, timed out, busy; not "not found", which
 * is an answer), a copy of the key that stopped being fresh at most
 * stale_if_error_ms ago answers instead: the one Redis returned with the
 * read, else the L1's (cache_l1_get_stale). Only copies under the family's
 * current version qualify, so nothing from before an invalidation is ever
 * served this way. Freshness does not change; only the copy kept for errors
 * lives longer.
 *
 * When Redis cannot be reached the fill is called directly and its result
 * returned: reads that only need PostgreSQL keep working. Nothing here
 * fails because of Redis.
 *
 * With an L1 (cache/include/shoal/l1.h) in front, a hit there answers without Redis.
 *
 * The scripts name keys they compute inside (the value under a version
 * read in the same script), which Redis Cluster would refuse: shoal runs
 * one Redis for the cache, not a cluster. */
#ifndef CACHE_ASIDE_H
#define CACHE_ASIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <shoal/cache.h>
#include <shoal/l1.h>

typedef struct cache_aside_allocator {
    void *(*alloc)(void *data, size_t size); /* NULL when memory runs out */
    void *data;
} cache_aside_allocator;

/* Produces the value of key with memory from allocator. Returns 0, or a
 * positive code of the caller's (for example "not found"), which the
 * helper passes back untouched; nothing is cached then. */
typedef int (*cache_aside_fill_fn)(void *data, const char *key, const cache_aside_allocator *allocator,
                                   void **value, size_t *length);

typedef struct cache_aside_options {
    int ttl_ms;   /* fresh this long, +/- 10 %; must be > 0 */
    int stale_ms; /* then served stale while one filler refreshes it; 0: never stale */
    int lock_ms;  /* the fill lock's lifetime (bounds a filler that died); 0: 2000 */
    int wait_ms;  /* how long others wait for the filler when no stale copy exists; 0: 100 */
    /* A fill that failed with a code tier_failure accepts is answered by a
     * copy at most this long past its freshness, from Redis or the L1.
     * 0, or tier_failure NULL: never (and Redis keeps values stale_ms). */
    int stale_if_error_ms;
    bool (*tier_failure)(int code); /* whether a fill's code is its tier's failure, not an answer */
} cache_aside_options;

typedef enum cache_aside_source {
    CACHE_ASIDE_L1,       /* the node's L1 */
    CACHE_ASIDE_REDIS,    /* a fresh value in Redis */
    CACHE_ASIDE_STALE,    /* a stale copy, while another filler refreshes it */
    CACHE_ASIDE_FILLED,   /* filled by us and written back */
    CACHE_ASIDE_BYPASSED, /* filled by us, Redis unreachable (or the key too long) */
    CACHE_ASIDE_STALE_IF_ERROR, /* our fill failed for its tier; a copy past its freshness answered */
} cache_aside_source;

typedef struct cache_aside_value {
    void *bytes; /* from the allocator */
    size_t length;
    cache_aside_source source;
} cache_aside_value;

/* The helper's own failure: the allocator returned NULL. */
#define CACHE_ASIDE_NO_MEMORY (-1)

/* l1 may be NULL; c may be NULL too, for a read that must not wait for
 * Redis (the L1 answers, else the fill). Returns 0 with out filled, the
 * fill's code (out->source then says whether the fill ran filled or
 * bypassed), or CACHE_ASIDE_NO_MEMORY. family: letters, digits, '_' and
 * '.'. */
int cache_aside_get(cache *c, cache_l1 *l1, const char *family, const char *key,
                    const cache_aside_options *options, cache_aside_fill_fn fill, void *fill_data,
                    const cache_aside_allocator *allocator, cache_aside_value *out);

/* The same for count keys of one family at once (TechEmpower's
 * /cached-queries): one round trip for every key the L1 does not have;
 * values that are missing or no longer fresh are filled one by one,
 * without the stampede lock (a batch's keys are spread; the hot single key
 * is what the lock is for), and written back in one round trip. A failed
 * fill is answered stale if error as above; otherwise it stops there and
 * returns its code. */
int cache_aside_get_many(cache *c, cache_l1 *l1, const char *family, const char *const *keys,
                         size_t count, const cache_aside_options *options, cache_aside_fill_fn fill,
                         void *fill_data, const cache_aside_allocator *allocator, cache_aside_value *out);

/* A family's key names after prefix (a valid key prefix, cache.h; the
 * connection's cache_key_prefix): its version key, and what comes before
 * "<version>:<key>" for a value and for its filler's lock. */
#define CACHE_ASIDE_KEY_PREFIX_SIZE (CACHE_KEY_PREFIX_MAX + 16 + CACHE_L1_MAX_FAMILY_LENGTH)
typedef struct cache_aside_keys {
    char version[CACHE_ASIDE_KEY_PREFIX_SIZE];     /* <prefix>shoal:cv:<family> */
    char data_prefix[CACHE_ASIDE_KEY_PREFIX_SIZE]; /* <prefix>shoal:c2:<family>: */
    char lock_prefix[CACHE_ASIDE_KEY_PREFIX_SIZE]; /* <prefix>shoal:cl:<family>: */
} cache_aside_keys;
void cache_aside_family_keys(cache_aside_keys *names, const char *prefix, const char *family);

/* After a write: INCR the family's version and publish it, one round
 * trip; this node's L1 learns the new version at once, the others' when
 * the message arrives. *version (may be NULL) gets the new version. */
cache_status cache_aside_invalidate_family(cache *c, cache_l1 *l1, const char *family, uint64_t *version);
/* Deletes one key's value under the current version and publishes its
 * drop. Racier than the family's version: a fill that read PostgreSQL
 * before the write may still write its old value back afterwards, which
 * then lives until its TTL. Prefer invalidating the family. */
cache_status cache_aside_invalidate_key(cache *c, cache_l1 *l1, const char *family, const char *key);

/* ttl_ms +/- 10 %, chosen by random (any 64-bit value); never below 1. */
int64_t cache_aside_jitter_ms(int64_t ttl_ms, uint64_t random);

#endif
