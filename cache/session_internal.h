/* cache/session_internal.h: the pieces of cache/session.c that tests check
 * one by one; nothing outside cache/ and tests uses them. */
#ifndef CACHE_SESSION_INTERNAL_H
#define CACHE_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

#define CACHE_SESSION_RAW_BYTES 32
#define CACHE_SESSION_KEY_PREFIX "session:"
#define CACHE_SESSION_USER_PREFIX "session:user:"
/* The connection's session prefix (cache_session_prefix: "" in the 0.1
 * layout), "session:" and 32 hex digits of the hash's first half. */
#define CACHE_SESSION_KEY_SIZE (CACHE_KEY_PREFIX_MAX + sizeof CACHE_SESSION_KEY_PREFIX - 1 + 32 + 1)
/* The prefix, "session:user:" and a user id. */
#define CACHE_SESSION_USER_KEY_SIZE (CACHE_KEY_PREFIX_MAX + sizeof CACHE_SESSION_USER_PREFIX - 1 + 20 + 1)
/* 32 hex digits of the hash's second half. */
#define CACHE_SESSION_VERIFIER_SIZE (32 + 1)

/* Checks length and alphabet first, then decodes canonically (the two
 * unused low bits of the last character must be zero, so one session has
 * exactly one token). 0, or -1 for anything malformed. */
int cache_session_token_decode(const char *token, unsigned char raw[CACHE_SESSION_RAW_BYTES]);

/* Encodes raw as a token: the inverse of cache_session_token_decode. */
void cache_session_token_encode(const unsigned char raw[CACHE_SESSION_RAW_BYTES],
                                char token[CACHE_SESSION_TOKEN_SIZE]);

/* The Redis key and the verifier of a token's bytes: prefix (a valid key
 * prefix, cache.h) + "session:" + hex of the first half of
 * BLAKE2b-256(raw), and hex of its second half. 0, or -1 if libsodium
 * failed or the prefix is too long. */
int cache_session_derive(const char *prefix, const unsigned char raw[CACHE_SESSION_RAW_BYTES],
                         char key[CACHE_SESSION_KEY_SIZE], char verifier[CACHE_SESSION_VERIFIER_SIZE]);

/* prefix + "session:user:" + user_id: the set of the user's session keys. */
void cache_session_user_key(const char *prefix, int64_t user_id, char out[CACHE_SESSION_USER_KEY_SIZE]);

/* Constant-time comparison of a verifier read from Redis (stored_length
 * bytes, not NUL-terminated) with the expected one. */
bool cache_session_verifier_matches(const char *stored, size_t stored_length,
                                    const char expected[CACHE_SESSION_VERIFIER_SIZE]);

#endif
