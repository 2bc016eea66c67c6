/* node/lib/include/shoal/ext/idempotency.h: `Idempotency-Key` for POST and PATCH, shared by
 * every node through Redis (cache/idempotency.h).
 *
 * A POST or PATCH that carries the header runs once. A retry with the same
 * key from the same caller to the same method and path, on any node, gets
 * the first answer again (status, Content-Type, Location, ETag,
 * Last-Modified and body) with `Idempotent-Replayed: true`, for
 * --idempotency-ttl seconds. The caller is the session token when the
 * request carries one (only its hash is used), else the client address.
 *
 *   a retry while the first run is still going   409 idempotency.in_progress, Retry-After: 1
 *   the same key with another body (BLAKE2b)     422 idempotency.mismatch
 *   a key that is empty, longer than 255 bytes
 *   or not printable ASCII                       400 idempotency.invalid_key
 *   Redis unreachable                            503 cache.unavailable, Retry-After: 1
 *
 * Only 2xx and 4xx answers are kept, except 408 and 429, which say "try
 * again later"; after a 5xx (or those) the claim is released and a retry
 * runs again. A node that dies mid-request leaves its claim to expire after
 * SHOAL_IDEMPOTENCY_RUNNING_TTL_MS. Other methods ignore the header: GET,
 * PUT and DELETE are idempotent already. */
#ifndef SHOAL_IDEMPOTENCY_H
#define SHOAL_IDEMPOTENCY_H

#include <stdbool.h>

#include <shoal/shoal.h>

#define SHOAL_IDEMPOTENCY_MAX_KEY_LENGTH 255
/* Longer than any request may run (each PostgreSQL and Redis call is
 * bounded by its timeout); a retry meanwhile gets 409. */
#define SHOAL_IDEMPOTENCY_RUNNING_TTL_MS 60000

/* Registers the before, after and teardown hooks on the root blueprint.
 * Load it after the rate limits (a replay counts as a request) and after
 * the extensions whose headers should be fresh on a replay. */
extern const shoal_extension shoal_idempotency_extension;

/* --idempotency-ttl (SHOAL_IDEMPOTENCY_TTL): seconds a finished request's
 * answer is replayed. */
typedef struct shoal_idempotency_settings_values {
    int ttl_s;
} shoal_idempotency_settings_values;
extern const shoal_settings shoal_idempotency_settings;

/* 1 to 255 bytes of printable ASCII (space to '~'). */
bool shoal_idempotency_key_valid(const char *key);

/* Whether an answer with this status is kept for replay. */
bool shoal_idempotency_status_kept(int status);

#endif
