/* cache/cache_internal.h: shared by cache's own files only; the only
 * header besides cache.c that may include hiredis.h. */
#ifndef CACHE_INTERNAL_H
#define CACHE_INTERNAL_H

#include <hiredis/hiredis.h>

#include "cache.h"

/* Sends one command (binary-safe arguments) on the worker's connection,
 * connecting first when needed, and retrying once on a fresh connection
 * when a good one broke under it (a Redis restart). CACHE_OK or
 * CACHE_ERROR (Redis answered with an error) hand the reply to the caller,
 * who frees it with freeReplyObject; CACHE_UNAVAILABLE (also for a NULL
 * cache) leaves it NULL. */
cache_status cache_command_argv(cache *c, int argc, const char **argv, const size_t *lengths,
                                redisReply **reply);

/* Sends count commands in one round trip and reads every reply, in order,
 * into replies (each freed by the caller). CACHE_ERROR when any reply is an
 * error (the others are still there); CACHE_UNAVAILABLE leaves all NULL.
 * Not retried: the caller decides whether its commands may run twice. */
cache_status cache_pipeline(cache *c, int count, const int *argcs, const char **const *argvs,
                            const size_t *const *lengths, redisReply **replies);

/* Where this cache connects, for modules that open a connection of their
 * own (the invalidation subscriber). */
const cache_endpoint *cache_endpoint_of(const cache *c);
int cache_timeout_ms(const cache *c);

#endif
