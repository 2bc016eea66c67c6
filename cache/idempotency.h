/* cache/idempotency.h: idempotency keys, shared by every node, in Redis.
 *
 * One Redis string per (caller, method, path, client key), named
 * "<prefix>idem:<64 hex digits>" (cache_idempotency_key), goes through two
 * states:
 *   running  "R" + the body's fingerprint, set with SET NX (only one request
 *            claims the key), with a short TTL so that a node that dies
 *            mid-request blocks the key for that long, not for a day;
 *   done     "D" + the fingerprint + the status (3 digits) + the headers to
 *            replay, one "Name: value\n" line each, + "\n" + the body,
 *            with the long TTL.
 * Moving from running to done, and releasing a claim, only happen while the
 * key still holds this request's running marker (a Lua compare-and-set), so
 * a claim that expired and was taken by another request is left alone.
 * Needs Redis 7 (SET with both NX and GET). */
#ifndef CACHE_IDEMPOTENCY_H
#define CACHE_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

#include <shoal/cache.h>

#define CACHE_IDEMPOTENCY_KEY_SIZE (CACHE_KEY_PREFIX_MAX + 5 + 64 + 1) /* prefix, "idem:", hex, NUL */
#define CACHE_IDEMPOTENCY_FINGERPRINT_BYTES 32

/* The Redis key for a client's key, after prefix (the connection's
 * cache_key_prefix; "" in the 0.1 layout). The caller's scope is the BLAKE2b hash
 * of authorization when it is given (not NULL, not empty), so the token is
 * never stored nor recoverable, else client_address; method, path and the
 * client's key follow, each length-prefixed so no two inputs collide by
 * concatenation. Returns 0, or -1 when libsodium fails or the prefix is
 * longer than CACHE_KEY_PREFIX_MAX. */
int cache_idempotency_key(const char *prefix, const char *authorization, const char *client_address,
                          const char *method, const char *path, const char *client_key,
                          char out[CACHE_IDEMPOTENCY_KEY_SIZE]);

/* BLAKE2b-256 of a request body; 0 or -1. */
int cache_idempotency_fingerprint(const char *body, size_t length,
                                  unsigned char out[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES]);

typedef enum cache_idempotency_state {
    CACHE_IDEMPOTENCY_CLAIMED,  /* ours now: run the request, then store or release */
    CACHE_IDEMPOTENCY_DONE,     /* finished before: replay the stored response */
    CACHE_IDEMPOTENCY_RUNNING,  /* another request with this key is running */
    CACHE_IDEMPOTENCY_MISMATCH, /* the key was used with a different body */
} cache_idempotency_state;

typedef struct cache_idempotency_response {
    int status;
    /* "Name: value\n" lines (Content-Type, Location, ...), no CR; "" when
     * none. NUL-terminated; malloc'd by claim. */
    char *headers;
    char *body; /* malloc'd by claim, NUL-terminated after body_length bytes */
    size_t body_length;
} cache_idempotency_response;

/* Claims key with a running marker for running_ttl_ms, or reports what
 * holds it. On CACHE_OK and CACHE_IDEMPOTENCY_DONE, stored holds the
 * response (free it with cache_idempotency_response_free). */
cache_status cache_idempotency_claim(cache *c, const char *key,
                                     const unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES],
                                     long long running_ttl_ms, cache_idempotency_state *state,
                                     cache_idempotency_response *stored);

/* Replaces this request's running marker with the finished response, kept
 * ttl_ms. *stored is false when the marker was no longer there (it expired).
 * CACHE_ERROR, without writing, for headers that are not whole lines or
 * hold an empty line. */
cache_status cache_idempotency_store(cache *c, const char *key,
                                     const unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES],
                                     const cache_idempotency_response *response, long long ttl_ms,
                                     bool *stored);

/* Drops this request's running marker, so that the client may retry. */
cache_status cache_idempotency_release(cache *c, const char *key,
                                       const unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES]);

void cache_idempotency_response_free(cache_idempotency_response *response);

#endif
