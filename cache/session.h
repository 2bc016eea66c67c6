/* cache/session.h: sessions in Redis, shared by every node.
 *
 * A session is an opaque token: 32 bytes from the OS's random source
 * (libsodium's randombytes, getrandom on Linux), sent as 43 characters of
 * unpadded base64url. Redis never sees the token. BLAKE2b-256 of its bytes
 * is split in two: the first 16 bytes name the key ("session:<hex>"), the
 * last 16 are the verifier stored inside it, compared in constant time
 * here, so the one comparison that involves a secret does not depend on
 * Redis' hash table lookup. The key also holds the user id and the creation
 * time; its TTL slides on use. A per-user set lists the user's session keys
 * for revoking them all (a password change).
 *
 * Everything needed to validate a token lives in Redis (persisted by its
 * AOF): any node validates any token, also after a Redis restart.
 * Tokens never reach a log; a malformed one never reaches Redis. */
#ifndef CACHE_SESSION_H
#define CACHE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <shoal/cache.h>

#define CACHE_SESSION_TOKEN_LENGTH 43 /* characters, base64url of 32 bytes */
#define CACHE_SESSION_TOKEN_SIZE (CACHE_SESSION_TOKEN_LENGTH + 1)

/* Sessions live this long after their last use, unless configured. */
#define CACHE_SESSION_DEFAULT_TTL_S (14 * 86400)

/* The first three are cache_status' values, so that CACHE_SESSION_OK ==
 * CACHE_OK and a failure can go to shoal_error_from_cache as it is. */
typedef enum cache_session_status {
    CACHE_SESSION_OK = CACHE_OK,
    CACHE_SESSION_UNAVAILABLE = CACHE_UNAVAILABLE, /* cannot reach Redis now */
    CACHE_SESSION_ERROR = CACHE_ERROR,             /* Redis answered with an error, or garbage */
    CACHE_SESSION_INVALID = 100, /* malformed, unknown, expired or revoked token */
} cache_session_status;

typedef struct cache_session_info {
    int64_t user_id;
    int64_t created; /* Unix seconds */
} cache_session_info;

/* Initialises libsodium; idempotent and thread-safe. Every function below
 * calls it on first use, so calling it at start only moves the cost (and a
 * failure, which is fatal for sessions) to a predictable moment.
 * 0, or -1 when libsodium cannot start. */
int cache_session_init(void);

/* True when token has the shape of a token: 43 base64url characters that
 * decode canonically to 32 bytes. Says nothing about Redis. */
bool cache_session_token_well_formed(const char *token);

/* Makes a session for user_id (> 0) that lives ttl_s seconds after its last
 * use, and writes its token (NUL-terminated) to token. OK, UNAVAILABLE or
 * ERROR (then token is empty). */
cache_session_status cache_session_create(cache *c, int64_t user_id, int ttl_s,
                                          char token[CACHE_SESSION_TOKEN_SIZE]);

/* Validates token and, when it names a live session, fills out and slides
 * the session's TTL back to ttl_s seconds (at most about once a minute per
 * session, so that busy sessions do not write to Redis' AOF on every
 * request). INVALID for a malformed, unknown, expired or revoked token,
 * without asking Redis when it is malformed. */
cache_session_status cache_session_lookup(cache *c, const char *token, int ttl_s,
                                          cache_session_info *out);

/* Ends the session of token (logout). OK also when it did not exist
 * (revoking is idempotent); INVALID when the token is malformed. */
cache_session_status cache_session_revoke(cache *c, const char *token);

/* Ends every session of user_id, atomically (a password change); *count,
 * when not NULL, gets how many there were. OK, UNAVAILABLE or ERROR. */
cache_session_status cache_session_revoke_user(cache *c, int64_t user_id, long long *count);

#endif
