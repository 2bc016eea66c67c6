/* cache/session.c: sessions in Redis (see session.h for the scheme). */
#include "session.h"
#include "cache_internal.h"
#include "cache_script.h"
#include "session_internal.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- libsodium ------------------------------------------------------------ */

static atomic_bool sodium_ready;

int cache_session_init(void)
{
    if (atomic_load_explicit(&sodium_ready, memory_order_acquire))
        return 0;
    /* sodium_init is idempotent and thread-safe; the flag only spares its
     * lock on every later call. */
    if (sodium_init() < 0)
        return -1;
    atomic_store_explicit(&sodium_ready, true, memory_order_release);
    return 0;
}

/* ---- tokens ---------------------------------------------------------------- */

/* The value of a base64url character, or -1. */
static int base64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int cache_session_token_decode(const char *token, unsigned char raw[CACHE_SESSION_RAW_BYTES])
{
    if (token == NULL || strnlen(token, CACHE_SESSION_TOKEN_SIZE) != CACHE_SESSION_TOKEN_LENGTH)
        return -1;
    int value = 0;
    for (size_t i = 0; i < CACHE_SESSION_TOKEN_LENGTH; i++)
        if ((value = base64url_value(token[i])) < 0)
            return -1;
    /* 43 characters carry 258 bits for 256: the last one's low two bits are
     * padding and must be zero, or several texts would be one token. */
    if ((value & 3) != 0)
        return -1;
    if (cache_session_init() != 0)
        return -1;
    size_t decoded = 0;
    const char *end = NULL;
    if (sodium_base642bin(raw, CACHE_SESSION_RAW_BYTES, token, CACHE_SESSION_TOKEN_LENGTH, NULL, &decoded, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        decoded != CACHE_SESSION_RAW_BYTES || end != token + CACHE_SESSION_TOKEN_LENGTH) {
        sodium_memzero(raw, CACHE_SESSION_RAW_BYTES);
        return -1;
    }
    return 0;
}

bool cache_session_token_well_formed(const char *token)
{
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    bool ok = cache_session_token_decode(token, raw) == 0;
    sodium_memzero(raw, sizeof raw);
    return ok;
}

void cache_session_token_encode(const unsigned char raw[CACHE_SESSION_RAW_BYTES], char token[CACHE_SESSION_TOKEN_SIZE])
{
    /* Cannot fail: the output size is exactly what 32 bytes need. */
    sodium_bin2base64(token, CACHE_SESSION_TOKEN_SIZE, raw, CACHE_SESSION_RAW_BYTES,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int cache_session_derive(const char *prefix, const unsigned char raw[CACHE_SESSION_RAW_BYTES],
                         char key[CACHE_SESSION_KEY_SIZE], char verifier[CACHE_SESSION_VERIFIER_SIZE])
{
    size_t prefix_length = strnlen(prefix, CACHE_KEY_PREFIX_MAX + 1);
    if (prefix_length > CACHE_KEY_PREFIX_MAX || cache_session_init() != 0)
        return -1;
    unsigned char hash[32];
    /* Unkeyed: a token has 256 random bits, so there is nothing to guess
     * from its hash, and no shared secret for every node to carry. */
    if (crypto_generichash(hash, sizeof hash, raw, CACHE_SESSION_RAW_BYTES, NULL, 0) != 0)
        return -1;
    size_t head = prefix_length + sizeof CACHE_SESSION_KEY_PREFIX - 1;
    memcpy(key, prefix, prefix_length);
    memcpy(key + prefix_length, CACHE_SESSION_KEY_PREFIX, sizeof CACHE_SESSION_KEY_PREFIX - 1);
    sodium_bin2hex(key + head, CACHE_SESSION_KEY_SIZE - head, hash, 16);
    sodium_bin2hex(verifier, CACHE_SESSION_VERIFIER_SIZE, hash + 16, 16);
    sodium_memzero(hash, sizeof hash);
    return 0;
}

void cache_session_user_key(const char *prefix, int64_t user_id, char out[CACHE_SESSION_USER_KEY_SIZE])
{
    snprintf(out, CACHE_SESSION_USER_KEY_SIZE, "%.*s" CACHE_SESSION_USER_PREFIX "%lld", CACHE_KEY_PREFIX_MAX, prefix,
             (long long)user_id);
}

bool cache_session_verifier_matches(const char *stored, size_t stored_length,
                                    const char expected[CACHE_SESSION_VERIFIER_SIZE])
{
    /* The length is not secret (always 32); the contents are. */
    if (stored == NULL || stored_length != CACHE_SESSION_VERIFIER_SIZE - 1)
        return false;
    return sodium_memcmp(stored, expected, CACHE_SESSION_VERIFIER_SIZE - 1) == 0;
}

/* ---- scripts --------------------------------------------------------------- */

/* Each operation is one script, so that it is atomic and one round trip,
 * and each does the same when it runs twice (the same fields, TTLs and
 * deletions): a call whose connection broke after sending is sent again.
 * The lookup and revoke scripts derive the user's set key from the
 * session's user field, after the sets' prefix they are given (prefix +
 * "session:user:"; never a literal, so that services with other prefixes
 * share the scripts): keys a script does not declare are fine on one
 * Redis, not on Redis Cluster (docs/state.md, Sessions). */
static cache_script create_script = CACHE_SCRIPT_RESENDABLE(
    "-- KEYS: the session, its user's set; ARGV: user, created, verifier, ttl\n"
    "redis.call('HSET', KEYS[1], 'user', ARGV[1], 'created', ARGV[2], 'verifier', ARGV[3])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
    "for _, key in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "  if redis.call('EXISTS', key) == 0 then redis.call('SREM', KEYS[2], key) end\n"
    "end\n"
    "redis.call('SADD', KEYS[2], KEYS[1])\n"
    "if redis.call('TTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('EXPIRE', KEYS[2], ARGV[4]) end\n"
    "return 1\n");

static cache_script lookup_script = CACHE_SCRIPT_RESENDABLE(
    "-- KEYS: the session; ARGV: ttl, slide when the TTL left is below this, the users' sets' prefix\n"
    "local fields = redis.call('HMGET', KEYS[1], 'user', 'created', 'verifier')\n"
    "if not fields[1] then return false end\n"
    "if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
    "  local owner = ARGV[3] .. fields[1]\n"
    "  if redis.call('TTL', owner) < tonumber(ARGV[1]) then redis.call('EXPIRE', owner, ARGV[1]) end\n"
    "end\n"
    "return fields\n");

static cache_script revoke_script = CACHE_SCRIPT_RESENDABLE(
    "-- KEYS: the session; ARGV: the users' sets' prefix\n"
    "local user = redis.call('HGET', KEYS[1], 'user')\n"
    "if not user then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', ARGV[1] .. user, KEYS[1])\n"
    "return 1\n");

static cache_script revoke_user_script = CACHE_SCRIPT_RESENDABLE(
    "-- KEYS: the user's set\n"
    "local keys = redis.call('SMEMBERS', KEYS[1])\n"
    "local deleted = 0\n"
    "for i = 1, #keys, 500 do\n"
    "  deleted = deleted + redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys)))\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return deleted\n");

/* Decimal digits only, no sign, no leading zero, at most INT64_MAX. */
static bool parse_positive(const char *text, size_t length, int64_t *out)
{
    if (text == NULL || length == 0 || length > 19 || (length > 1 && text[0] == '0'))
        return false;
    int64_t value = 0;
    for (size_t i = 0; i < length; i++) {
        int digit = text[i] - '0';
        if (digit < 0 || digit > 9 || value > (INT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *out = value;
    return true;
}

/* What the lookup and revoke scripts put before a user id: the
 * connection's session prefix and "session:user:". */
static void user_set_prefix(const cache *c, char out[CACHE_SESSION_USER_KEY_SIZE])
{
    snprintf(out, CACHE_SESSION_USER_KEY_SIZE, "%s" CACHE_SESSION_USER_PREFIX, cache_session_prefix(c));
}

/* ---- operations ------------------------------------------------------------- */

cache_session_status cache_session_create(cache *c, int64_t user_id, int ttl_s, char token[CACHE_SESSION_TOKEN_SIZE])
{
    token[0] = '\0';
    if (c == NULL)
        return CACHE_SESSION_UNAVAILABLE;
    if (user_id <= 0 || ttl_s <= 0 || cache_session_init() != 0)
        return CACHE_SESSION_ERROR;
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    randombytes_buf(raw, sizeof raw);
    char key[CACHE_SESSION_KEY_SIZE];
    char verifier[CACHE_SESSION_VERIFIER_SIZE];
    if (cache_session_derive(cache_session_prefix(c), raw, key, verifier) != 0) {
        sodium_memzero(raw, sizeof raw);
        return CACHE_SESSION_ERROR;
    }
    char owner[CACHE_SESSION_USER_KEY_SIZE], user[24], created[24], ttl[16];
    cache_session_user_key(cache_session_prefix(c), user_id, owner);
    snprintf(user, sizeof user, "%lld", (long long)user_id);
    snprintf(created, sizeof created, "%lld", (long long)time(NULL));
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *args[] = {key, owner, user, created, verifier, ttl};
    size_t lengths[6];
    for (int i = 0; i < 6; i++)
        lengths[i] = strlen(args[i]);
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, &create_script, 2, 6, args, lengths, &reply);
    bool ok = status == CACHE_OK && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    freeReplyObject(reply);
    sodium_memzero(verifier, sizeof verifier);
    if (ok)
        cache_session_token_encode(raw, token);
    sodium_memzero(raw, sizeof raw);
    if (status == CACHE_UNAVAILABLE)
        return CACHE_SESSION_UNAVAILABLE;
    return ok ? CACHE_SESSION_OK : CACHE_SESSION_ERROR;
}

/* A reply element that is a string, or NULL. */
static const redisReply *string_element(const redisReply *array, size_t index)
{
    const redisReply *element = array->element[index];
    return element != NULL && element->type == REDIS_REPLY_STRING ? element : NULL;
}

cache_session_status cache_session_lookup(cache *c, const char *token, int ttl_s, cache_session_info *out)
{
    memset(out, 0, sizeof *out);
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    if (cache_session_token_decode(token, raw) != 0)
        return CACHE_SESSION_INVALID;
    char key[CACHE_SESSION_KEY_SIZE];
    char verifier[CACHE_SESSION_VERIFIER_SIZE];
    int derived = cache_session_derive(cache_session_prefix(c), raw, key, verifier);
    sodium_memzero(raw, sizeof raw);
    if (derived != 0 || c == NULL || ttl_s <= 0)
        return c == NULL ? CACHE_SESSION_UNAVAILABLE : CACHE_SESSION_ERROR;

    /* Slide only when a good part of a minute has passed since the last
     * slide: TTLs in seconds need no more precision, and a lookup that does
     * not write costs Redis no AOF append. */
    int slack = ttl_s / 10 < 60 ? ttl_s / 10 : 60;
    char ttl[16], threshold[16], owners[CACHE_SESSION_USER_KEY_SIZE];
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    snprintf(threshold, sizeof threshold, "%d", ttl_s - slack);
    user_set_prefix(c, owners);
    const char *args[] = {key, ttl, threshold, owners};
    const size_t lengths[] = {strlen(key), strlen(ttl), strlen(threshold), strlen(owners)};
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, &lookup_script, 1, 4, args, lengths, &reply);
    cache_session_status result = CACHE_SESSION_ERROR;
    if (status != CACHE_OK) {
        result = status == CACHE_UNAVAILABLE ? CACHE_SESSION_UNAVAILABLE : CACHE_SESSION_ERROR;
    } else if (reply->type == REDIS_REPLY_NIL) {
        result = CACHE_SESSION_INVALID;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
        const redisReply *user = string_element(reply, 0);
        const redisReply *created = string_element(reply, 1);
        const redisReply *stored = string_element(reply, 2);
        int64_t user_id = 0, created_at = 0;
        if (user == NULL || created == NULL || stored == NULL || !parse_positive(user->str, user->len, &user_id) ||
            !parse_positive(created->str, created->len, &created_at)) {
            result = CACHE_SESSION_ERROR; /* not what create writes */
        } else if (!cache_session_verifier_matches(stored->str, stored->len, verifier)) {
            result = CACHE_SESSION_INVALID;
        } else {
            out->user_id = user_id;
            out->created = created_at;
            result = CACHE_SESSION_OK;
        }
    }
    freeReplyObject(reply);
    sodium_memzero(verifier, sizeof verifier);
    return result;
}

cache_session_status cache_session_revoke(cache *c, const char *token)
{
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    if (cache_session_token_decode(token, raw) != 0)
        return CACHE_SESSION_INVALID;
    char key[CACHE_SESSION_KEY_SIZE];
    char verifier[CACHE_SESSION_VERIFIER_SIZE];
    int derived = cache_session_derive(cache_session_prefix(c), raw, key, verifier);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(verifier, sizeof verifier);
    if (derived != 0 || c == NULL)
        return c == NULL ? CACHE_SESSION_UNAVAILABLE : CACHE_SESSION_ERROR;
    char owners[CACHE_SESSION_USER_KEY_SIZE];
    user_set_prefix(c, owners);
    const char *args[] = {key, owners};
    const size_t lengths[] = {strlen(key), strlen(owners)};
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, &revoke_script, 1, 2, args, lengths, &reply);
    bool ok = status == CACHE_OK && reply->type == REDIS_REPLY_INTEGER;
    freeReplyObject(reply);
    if (status == CACHE_UNAVAILABLE)
        return CACHE_SESSION_UNAVAILABLE;
    return ok ? CACHE_SESSION_OK : CACHE_SESSION_ERROR;
}

cache_session_status cache_session_revoke_user(cache *c, int64_t user_id, long long *count)
{
    if (count != NULL)
        *count = 0;
    if (c == NULL)
        return CACHE_SESSION_UNAVAILABLE;
    if (user_id <= 0)
        return CACHE_SESSION_ERROR;
    char owner[CACHE_SESSION_USER_KEY_SIZE];
    cache_session_user_key(cache_session_prefix(c), user_id, owner);
    const char *args[] = {owner};
    const size_t lengths[] = {strlen(owner)};
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, &revoke_user_script, 1, 1, args, lengths, &reply);
    bool ok = status == CACHE_OK && reply->type == REDIS_REPLY_INTEGER;
    if (ok && count != NULL)
        *count = reply->integer;
    freeReplyObject(reply);
    if (status == CACHE_UNAVAILABLE)
        return CACHE_SESSION_UNAVAILABLE;
    return ok ? CACHE_SESSION_OK : CACHE_SESSION_ERROR;
}
