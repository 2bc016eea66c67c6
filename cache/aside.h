/* cache/aside.h: cache-aside reads in front of PostgreSQL.
 *
 * A value belongs to a family ("article", "tags", "world") and has a key
 * within it. Each family has a version counter in Redis, and a value lives
 * under the version it was filled under:
 *
 *   shoal:cv:<family>                         the family's version
 *   shoal:c:<family>:<version>:<key>          a value (opaque bytes)
 *   shoal:cl:<family>:<version>:<key>         its filler's lock
 *
 * so one INCR of the version (cache_aside_invalidate_family) makes every
 * value of the family unreachable at once; the old ones expire by TTL. A
 * version key that is missing (never written, or evicted by allkeys-lru)
 * is seeded from the server's clock in microseconds, so a family's version
 * never goes back to one that was used before.
 *
 * A read (cache_aside_get) asks, in one round trip (a Lua script): the
 * version, the value under it, whether it is still fresh, and, when it is
 * not, for the fill lock (SET NX PX). Then:
 *   - fresh: served;
 *   - we got the lock: the fill runs, its result is written back (SET PX
 *     plus the lock's release, one round trip) and served;
 *   - somebody else is filling and a stale copy exists: the stale copy is
 *     served at once (waiting would only trade latency for a copy that is
 *     a few milliseconds fresher);
 *   - somebody else is filling and there is no copy: poll with short sleeps
 *     up to wait_ms for the filler's value, then fill ourselves.
 * Values stay fresh for ttl_ms +/- 10 % (the jitter spreads the expiry of
 * values filled together) and may be served stale for stale_ms after that.
 *
 * When Redis cannot be reached the fill is called directly and its result
 * returned: reads that only need PostgreSQL keep working. Nothing here
 * fails because of Redis.
 *
 * With an L1 (cache/l1.h) in front, a hit there answers without Redis.
 *
 * The scripts name keys they compute inside (the value under a version
 * read in the same script), which Redis Cluster would refuse: shoal runs
 * one Redis for the cache, not a cluster. */
#ifndef CACHE_ASIDE_H
#define CACHE_ASIDE_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "l1.h"

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
} cache_aside_options;

typedef enum cache_aside_source {
    CACHE_ASIDE_L1,       /* the node's L1 */
    CACHE_ASIDE_REDIS,    /* a fresh value in Redis */
    CACHE_ASIDE_STALE,    /* a stale copy, while another filler refreshes it */
    CACHE_ASIDE_FILLED,   /* filled by us and written back */
    CACHE_ASIDE_BYPASSED, /* filled by us, Redis unreachable (or the key too long) */
} cache_aside_source;

typedef struct cache_aside_value {
    void *bytes; /* from the allocator */
    size_t length;
    cache_aside_source source;
} cache_aside_value;

/* The helper's own failure: the allocator returned NULL. */
#define CACHE_ASIDE_NO_MEMORY (-1)

/* l1 may be NULL. Returns 0 with out filled, the fill's code (out->source
 * then says whether the fill ran filled or bypassed), or
 * CACHE_ASIDE_NO_MEMORY. family: letters, digits, '_' and '.'. */
int cache_aside_get(cache *c, cache_l1 *l1, const char *family, const char *key,
                    const cache_aside_options *options, cache_aside_fill_fn fill, void *fill_data,
                    const cache_aside_allocator *allocator, cache_aside_value *out);

/* The same for count keys of one family at once (TechEmpower's
 * /cached-queries): one round trip for every key the L1 does not have;
 * values that are missing or no longer fresh are filled one by one,
 * without the stampede lock (a batch's keys are spread; the hot single key
 * is what the lock is for), and written back in one round trip. Stops at
 * the first fill that fails and returns its code. */
int cache_aside_get_many(cache *c, cache_l1 *l1, const char *family, const char *const *keys,
                         size_t count, const cache_aside_options *options, cache_aside_fill_fn fill,
                         void *fill_data, const cache_aside_allocator *allocator, cache_aside_value *out);

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
