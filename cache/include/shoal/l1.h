/* cache/include/shoal/l1.h: a node's in-process cache, in front of Redis.
 *
 * One L1 per node, shared by every worker thread. It is sharded by key
 * hash (each shard its own mutex, hash table and LRU list), bounded by
 * entry count and bytes, and every entry has a TTL. Hits copy the value
 * out into the caller's memory, so nothing the L1 holds is ever shared.
 *
 * Coherence across nodes: entries belong to a family ("article", "world")
 * and remember the family version they were filled under. The L1 keeps
 * each family's current version; an entry whose version is not the
 * family's current one is invisible. The invalidation subscriber
 * (cache/invalidation.h) raises versions and drops keys as messages
 * arrive, so an L1 hit never needs a Redis round trip.
 *
 * Races with the subscriber: a worker may read a value from Redis, then an
 * invalidation for it arrives, then the worker stores what it read. Family
 * versions only ever grow, so an entry stored under an older version stays
 * invisible. Key drops and flushes bump a sequence number instead:
 * callers take cache_l1_sequence before reading Redis and pass it to
 * cache_l1_put, which refuses the entry when the sequence moved.
 *
 * Stale if error: an entry past its TTL is no longer served, but it is kept
 * stale_if_error_ms longer (or until the LRU evicts it) for
 * cache_l1_get_stale, which cache-aside asks only after a fill failed
 * because PostgreSQL was unavailable. Such a copy obeys the same rules as a
 * fresh one: under the family's current version only, gone with a key
 * drop or a flush, and nothing while the L1 is suspended.
 *
 * Every function accepts NULL for the L1 and then behaves as a switched-off
 * one: lookups miss, stores do nothing. */
#ifndef CACHE_L1_H
#define CACHE_L1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cache_l1 cache_l1;

/* Milliseconds on a monotonic clock; injectable for tests. */
typedef uint64_t (*cache_l1_clock_fn)(void *data);

typedef struct cache_l1_config {
    /* 0 switches the L1 off. Enforced per shard (max_entries / shards,
     * rounded up), so the total may exceed it by less than one per shard. */
    size_t max_entries;
    size_t max_bytes;   /* keys + values + bookkeeping; 0: no byte bound */
    int ttl_ms;         /* every entry's lifetime; 0: 1000 */
    int stale_if_error_ms; /* then kept this long for cache_l1_get_stale; 0: dropped at ttl_ms */
    int shards;         /* rounded up to a power of two; 0: 16 */
    cache_l1_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
    void *clock_data;
} cache_l1_config;

/* Family names are short identifiers: letters, digits, '_' and '.'. */
#define CACHE_L1_MAX_FAMILIES 64
#define CACHE_L1_MAX_FAMILY_LENGTH 48

/* Whether name (NULL allowed) is a family name; cache-aside and the
 * invalidation messages check with this too, so that a name one accepts is
 * one the others accept. */
bool cache_l1_family_valid(const char *name);

/* NULL when memory runs out. With max_entries 0 the result is a valid,
 * switched-off L1. */
cache_l1 *cache_l1_new(const cache_l1_config *config);
void cache_l1_free(cache_l1 *l1);
bool cache_l1_enabled(const cache_l1 *l1);

/* Copies the value out on a hit. alloc gives the memory (for example the
 * request arena); a hit whose copy cannot be allocated is a miss. */
typedef void *(*cache_l1_alloc_fn)(void *data, size_t size);
bool cache_l1_get(cache_l1 *l1, const char *family, const char *key, cache_l1_alloc_fn alloc,
                  void *alloc_data, void **value, size_t *length);
/* The same, but an entry past its TTL by less than max_past_ms (and less
 * than the config's stale_if_error_ms) is a hit too: the copy to answer
 * when a fill failed for its tier. Neither a hit nor a miss in the stats. */
bool cache_l1_get_stale(cache_l1 *l1, const char *family, const char *key, int max_past_ms,
                        cache_l1_alloc_fn alloc, void *alloc_data, void **value, size_t *length);

/* Stores a copy of value under family (version: what the value was read
 * or filled under) unless sequence differs from cache_l1_sequence now, the
 * version is older than the family's, or the entry is larger than a
 * shard's share of max_bytes. Returns whether it was stored. */
bool cache_l1_put(cache_l1 *l1, const char *family, uint64_t version, const char *key,
                  const void *value, size_t length, uint64_t sequence);
uint64_t cache_l1_sequence(const cache_l1 *l1);

/* The family's version as the L1 knows it; 0 when unknown (never learned,
 * or forgotten by a flush). */
uint64_t cache_l1_family_version(cache_l1 *l1, const char *family);
/* Raises the family's version to at least version (versions never go
 * down; a lower one is ignored). Entries under older versions become
 * invisible at once and are reclaimed by the LRU. */
void cache_l1_learn_version(cache_l1 *l1, const char *family, uint64_t version);

/* Drops one key (whatever its version). */
void cache_l1_drop(cache_l1 *l1, const char *family, const char *key);
/* Drops every entry and forgets every family version. */
void cache_l1_flush(cache_l1 *l1);
/* While suspended every lookup misses and every store is refused: for the
 * time the invalidation subscriber is not connected, when messages may be
 * missed. */
void cache_l1_suspend(cache_l1 *l1, bool suspended);

typedef struct cache_l1_stats {
    uint64_t hits, misses, stores, evictions, expirations, drops, flushes;
    size_t entries, bytes;
} cache_l1_stats;
void cache_l1_get_stats(cache_l1 *l1, cache_l1_stats *out);

#endif
