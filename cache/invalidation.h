/* cache/invalidation.h: keeps a node's L1 coherent with the other nodes'.
 *
 * Writers publish on one channel (the key prefix, then
 * CACHE_INVALIDATION_CHANNEL: cache_invalidation_channel) of the cache
 * instance, from their worker's connection (cache_aside_invalidate_*). Each
 * node runs one subscriber thread with its own connection that applies
 * every message to the node's L1:
 *
 *   "F <version> <family>"  the family's version is now <version>: every
 *                           entry filled under an older one is stale
 *   "K <family> <key>"      drop that one key (the rest of the message is
 *                           the key, spaces included)
 *
 * Pub/sub delivers at most once: a message sent while the subscriber is
 * disconnected is lost for it. So while it is not subscribed the L1 is
 * suspended (every lookup misses), and on every (re)subscription the L1 is
 * flushed before it serves again: whatever was missed cannot be served. */
#ifndef CACHE_INVALIDATION_H
#define CACHE_INVALIDATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <shoal/cache.h>
#include <shoal/l1.h>

#define CACHE_INVALIDATION_CHANNEL "shoal:invalidate"
#define CACHE_INVALIDATION_CHANNEL_SIZE (CACHE_KEY_PREFIX_MAX + sizeof CACHE_INVALIDATION_CHANNEL)
/* Keys longer than this are never kept in the L1 (cache_aside bypasses the
 * L1 for them), so a message never needs to name one. */
#define CACHE_INVALIDATION_MAX_KEY 512
/* The subscriber PINGs after this long without traffic, and gives the
 * connection up when the answer takes longer than the Redis timeout. */
#define CACHE_INVALIDATION_IDLE_PING_MS 1000
#define CACHE_INVALIDATION_BACKOFF_MIN_MS 50
#define CACHE_INVALIDATION_BACKOFF_MAX_MS 2000

typedef enum cache_invalidation_kind {
    CACHE_INVALIDATION_FAMILY,
    CACHE_INVALIDATION_KEY,
} cache_invalidation_kind;

typedef struct cache_invalidation_message {
    cache_invalidation_kind kind;
    char family[CACHE_L1_MAX_FAMILY_LENGTH + 1];
    uint64_t version;                          /* FAMILY */
    char key[CACHE_INVALIDATION_MAX_KEY + 1]; /* KEY */
} cache_invalidation_message;

/* Each writes the message into out and returns its length, or -1 when it
 * does not fit or the family or key is invalid. */
int cache_invalidation_encode_family(char *out, size_t size, const char *family, uint64_t version);
int cache_invalidation_encode_key(char *out, size_t size, const char *family, const char *key);
/* 0, or -1 for a message that is not one of ours (it is then ignored). */
int cache_invalidation_decode(const char *message, size_t length, cache_invalidation_message *out);
void cache_invalidation_apply(cache_l1 *l1, const cache_invalidation_message *message);

/* The channel of the services whose key prefix is prefix (NULL: ""):
 * prefix + CACHE_INVALIDATION_CHANNEL. */
void cache_invalidation_channel(const char *prefix, char out[CACHE_INVALIDATION_CHANNEL_SIZE]);

typedef struct cache_invalidation cache_invalidation;

/* Suspends l1 and starts the subscriber thread on config's channel
 * (config->key_prefix; session_prefix is not used), which connects (and
 * reconnects, with backoff from CACHE_INVALIDATION_BACKOFF_MIN_MS to _MAX_MS)
 * by itself; Redis need not be up yet. NULL when the URL or the prefix is invalid (reason
 * in error) or the thread cannot start. l1 must outlive the subscriber. */
cache_invalidation *cache_invalidation_start(const cache_config *config, cache_l1 *l1, char *error,
                                             size_t error_size);
/* Wakes the thread, joins it and closes its connection. */
void cache_invalidation_stop(cache_invalidation *subscriber);

bool cache_invalidation_subscribed(const cache_invalidation *subscriber);
/* How many times it has subscribed (the first time included), and how many
 * messages it has applied: for tests and metrics. */
unsigned long cache_invalidation_subscriptions(const cache_invalidation *subscriber);
unsigned long cache_invalidation_messages(const cache_invalidation *subscriber);
/* Redis' id for the subscriber's connection (0 while not connected), so
 * that tests can kill it from outside. */
long long cache_invalidation_client_id(const cache_invalidation *subscriber);

#endif
