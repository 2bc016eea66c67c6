/* cache/aside.c: get-or-fill with versions, jitter and one filler per key. */
#include <shoal/aside.h>

#include "cache_internal.h"
#include "cache_script.h"
#include "invalidation.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define DEFAULT_LOCK_MS 2000
#define DEFAULT_WAIT_MS 100
/* Key names: a family's prefix (cache_aside_keys), a 20-digit version,
 * ':', the key. */
#define MAX_REDIS_KEY (CACHE_ASIDE_KEY_PREFIX_SIZE + 20 + 1 + CACHE_INVALIDATION_MAX_KEY + 1)

/* Seeds a family's missing version from the server's clock (microseconds),
 * so that a version evicted or lost in a restart never comes back smaller.
 * TIME and string building stay in Lua: Lua 5.1 numbers print 16-digit
 * integers in exponent form, so versions are handled as strings here. */
#define SEED_VERSION                                                                               \
    "local v = redis.call('GET', KEYS[1]) "                                                        \
    "if not v then "                                                                               \
    "  local t = redis.call('TIME') "                                                              \
    "  v = t[1] .. string.format('%06d', tonumber(t[2])) "                                        \
    "  redis.call('SET', KEYS[1], v) "                                                             \
    "end "

/* Reads a stored value ("<tail_ms>:<bytes>") and how long ago it stopped
 * being fresh: tail_ms - PTTL, below 0 while fresh. A value without a tail
 * is not one of ours and counts as missing. */
#define READ_VALUE                                                                                 \
    "local function read(k) "                                                                      \
    "  local value = redis.call('GET', k) "                                                        \
    "  if not value then return false, 0 end "                                                    \
    "  local tail = tonumber(string.match(value, '^(%d+):')) "                                    \
    "  if not tail then return false, 0 end "                                                     \
    "  local ttl = redis.call('PTTL', k) "                                                         \
    "  if ttl < 0 then return value, -1 end "                                                     \
    "  return value, tail - ttl "                                                                  \
    "end "

/* KEYS[1] version key; ARGV: data prefix, ":key", lock prefix, lock token,
 * lock_ms. Returns {version, value or nil, past freshness ms, locked}. */
static cache_script get_script = CACHE_SCRIPT(
    SEED_VERSION
    READ_VALUE
    "local value, past = read(ARGV[1] .. v .. ARGV[2]) "
    "local locked = 0 "
    "if (not value or past >= 0) and "
    "   redis.call('SET', ARGV[3] .. v .. ARGV[2], ARGV[4], 'NX', 'PX', ARGV[5]) then "
    "  locked = 1 "
    "end "
    "return {v, value, past, locked}");

/* KEYS[1] version key; ARGV: data prefix, then ":key" per key.
 * Returns {version, value1, past1, value2, past2, ...}. */
static cache_script get_many_script = CACHE_SCRIPT(
    SEED_VERSION
    READ_VALUE
    "local out = {v} "
    "for i = 2, #ARGV do "
    "  local value, past = read(ARGV[1] .. v .. ARGV[i]) "
    "  out[#out + 1] = value "
    "  out[#out + 1] = past "
    "end "
    "return out");

/* ARGV[1] a value's key, polled while another fills it. Returns {value or
 * nil, past freshness ms}. */
static cache_script peek_script = CACHE_SCRIPT(
    READ_VALUE
    "local value, past = read(ARGV[1]) "
    "return {value, past}");

/* KEYS[1] version key; ARGV: family, channel. The message format is
 * cache_invalidation_encode_family's. Returns the new version as text. */
static cache_script invalidate_family_script = CACHE_SCRIPT(
    SEED_VERSION
    "redis.call('INCR', KEYS[1]) "
    "v = redis.call('GET', KEYS[1]) "
    "redis.call('PUBLISH', ARGV[2], 'F ' .. v .. ' ' .. ARGV[1]) "
    "return v");

/* KEYS[1] version key; ARGV: data prefix, ":key", channel, message. */
static cache_script invalidate_key_script = CACHE_SCRIPT(
    "local v = redis.call('GET', KEYS[1]) "
    "if v then redis.call('DEL', ARGV[1] .. v .. ARGV[2]) end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) "
    "return 1");

/* KEYS[1] lock; ARGV[1] our token: only the holder releases it. */
static cache_script unlock_script = CACHE_SCRIPT(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0");

/* ---- randomness and jitter ------------------------------------------------------ */

static _Thread_local uint64_t rng_state;

static uint64_t next_random(void)
{
    if (rng_state == 0) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            seed = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 20) ^ (uint64_t)(uintptr_t)&rng_state;
        }
        rng_state = seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
    }
    /* xorshift64*: jitter and lock tokens need spread, not secrecy. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

int64_t cache_aside_jitter_ms(int64_t ttl_ms, uint64_t random)
{
    if (ttl_ms <= 0)
        return 1;
    int64_t span = ttl_ms / 10;
    int64_t result = ttl_ms - span + (int64_t)(random % (uint64_t)(2 * span + 1));
    return result > 0 ? result : 1;
}

/* ---- helpers ------------------------------------------------------------------------ */

static bool cacheable(const char *family, const char *key)
{
    return cache_l1_family_valid(family) && key != NULL && strlen(key) <= CACHE_INVALIDATION_MAX_KEY;
}

static uint64_t parse_version(const redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_STRING)
        return 0;
    char text[32];
    if (reply->len == 0 || reply->len >= sizeof text)
        return 0;
    memcpy(text, reply->str, reply->len);
    text[reply->len] = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    return errno == 0 && *end == '\0' ? (uint64_t)v : 0;
}

static void sleep_ms(int milliseconds)
{
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

static int copy_out(const cache_aside_allocator *allocator, const char *bytes, size_t length,
                    cache_aside_source source, cache_aside_value *out)
{
    void *copy = allocator->alloc(allocator->data, length > 0 ? length : 1);
    if (copy == NULL)
        return CACHE_ASIDE_NO_MEMORY;
    if (length > 0)
        memcpy(copy, bytes, length);
    out->bytes = copy;
    out->length = length;
    out->source = source;
    return 0;
}

/* A value as Redis returned it: the caller's bytes (inside the reply) and
 * how long ago it stopped being fresh, as of read_at. */
typedef struct stored_copy {
    bool present;
    const char *bytes;
    size_t length;
    int64_t past_ms; /* below 0 while fresh */
    uint64_t read_at;
} stored_copy;

static stored_copy read_copy(const redisReply *value, const redisReply *past, uint64_t read_at)
{
    stored_copy copy = {.present = false};
    if (value == NULL || value->type != REDIS_REPLY_STRING || past == NULL || past->type != REDIS_REPLY_INTEGER)
        return copy;
    /* The script vouched for "<digits>:"; a tail has at most 20 digits. */
    const char *colon = memchr(value->str, ':', value->len < 21 ? value->len : 21);
    if (colon == NULL)
        return copy;
    copy.present = true;
    copy.bytes = colon + 1;
    copy.length = value->len - (size_t)(copy.bytes - value->str);
    copy.past_ms = past->integer;
    copy.read_at = read_at;
    return copy;
}

static bool fresh_copy(const stored_copy *copy)
{
    return copy->present && copy->past_ms < 0;
}

/* How long Redis keeps a value after its freshness. */
static int64_t tail_ms(const cache_aside_options *options)
{
    return options->stale_if_error_ms > options->stale_ms ? options->stale_if_error_ms : options->stale_ms;
}

/* "<tail_ms>:" and bytes, malloc'd; NULL when memory runs out. */
static char *encode_stored(const void *bytes, size_t length, int64_t tail, size_t *stored_length)
{
    char header[24];
    int header_length = snprintf(header, sizeof header, "%" PRId64 ":", tail);
    char *stored = malloc((size_t)header_length + length);
    if (stored == NULL)
        return NULL;
    memcpy(stored, header, (size_t)header_length);
    if (length > 0)
        memcpy(stored + header_length, bytes, length);
    *stored_length = (size_t)header_length + length;
    return stored;
}

/* The fill failed with rc. When that is its tier's failure, a copy at most
 * stale_if_error_ms past its freshness answers instead: Redis' (copy, may
 * be NULL) or else the L1's. Returns 0 with out set, or rc. */
static int answer_stale_if_error(int rc, const cache_aside_options *options, const stored_copy *copy, cache_l1 *l1,
                                 const char *family, const char *key, const cache_aside_allocator *allocator,
                                 cache_aside_value *out)
{
    if (rc <= 0 || options == NULL || options->stale_if_error_ms <= 0 || options->tier_failure == NULL ||
        !options->tier_failure(rc))
        return rc;
    /* The fill may have waited for the database: the copy aged meanwhile. */
    if (copy != NULL && copy->present &&
        copy->past_ms + (int64_t)(cache_monotonic_ms() - copy->read_at) < (int64_t)options->stale_if_error_ms)
        return copy_out(allocator, copy->bytes, copy->length, CACHE_ASIDE_STALE_IF_ERROR, out);
    void *bytes = NULL;
    size_t length = 0;
    if (cache_l1_get_stale(l1, family, key, options->stale_if_error_ms, (cache_l1_alloc_fn)allocator->alloc,
                           allocator->data, &bytes, &length)) {
        *out = (cache_aside_value){bytes, length, CACHE_ASIDE_STALE_IF_ERROR};
        return 0;
    }
    return rc;
}

static int fill_into(cache_aside_fill_fn fill, void *fill_data, const char *key,
                     const cache_aside_allocator *allocator, cache_aside_source source, cache_aside_value *out)
{
    void *bytes = NULL;
    size_t length = 0;
    /* Set first: a fill that finds nothing was still a miss from there. */
    out->source = source;
    int rc = fill(fill_data, key, allocator, &bytes, &length);
    if (rc != 0)
        return rc;
    out->bytes = bytes;
    out->length = length;
    return 0;
}

void cache_aside_family_keys(cache_aside_keys *names, const char *prefix, const char *family)
{
    snprintf(names->version, sizeof names->version, "%.*sshoal:cv:%s", CACHE_KEY_PREFIX_MAX, prefix, family);
    snprintf(names->data_prefix, sizeof names->data_prefix, "%.*sshoal:c2:%s:", CACHE_KEY_PREFIX_MAX, prefix, family);
    snprintf(names->lock_prefix, sizeof names->lock_prefix, "%.*sshoal:cl:%s:", CACHE_KEY_PREFIX_MAX, prefix, family);
}

/* "<prefix>shoal:c2:<family>:<version>:<key>" */
static void data_key(char *out, size_t size, const cache_aside_keys *names, uint64_t version, const char *key)
{
    snprintf(out, size, "%s%" PRIu64 ":%s", names->data_prefix, version, key);
}

static void normalise(const cache_aside_options *options, cache_aside_options *out)
{
    *out = *options;
    if (out->ttl_ms <= 0)
        out->ttl_ms = 1000;
    if (out->stale_ms < 0)
        out->stale_ms = 0;
    if (out->lock_ms <= 0)
        out->lock_ms = DEFAULT_LOCK_MS;
    if (out->wait_ms <= 0)
        out->wait_ms = DEFAULT_WAIT_MS;
    if (out->stale_if_error_ms < 0 || out->tier_failure == NULL)
        out->stale_if_error_ms = 0;
}

/* SET the value with its tail and its jittered TTL (plus the tail), and
 * release our lock when we hold one, in one round trip. Failures only cost
 * a later refill, so they are not reported. */
static void write_back(cache *c, const char *key_name, const void *bytes, size_t length,
                       const cache_aside_options *options, const char *lock_name, const char *token)
{
    int64_t tail = tail_ms(options);
    size_t stored_length = 0;
    char *stored = encode_stored(bytes, length, tail, &stored_length);
    char px[32];
    snprintf(px, sizeof px, "%" PRId64, cache_aside_jitter_ms(options->ttl_ms, next_random()) + tail);
    const char *set_argv[] = {"SET", key_name, stored, "PX", px};
    size_t set_lengths[] = {3, strlen(key_name), stored_length, 2, strlen(px)};
    /* EVAL inside the pipeline: EVALSHA's NOSCRIPT could not be answered
     * there, and this runs once per fill, not per read. */
    const char *unlock_argv[] = {"EVAL", unlock_script.source, "1", lock_name, token};
    size_t unlock_lengths[] = {4, strlen(unlock_script.source), 1, lock_name != NULL ? strlen(lock_name) : 0,
                               token != NULL ? strlen(token) : 0};
    int argcs[] = {5, 5};
    const char **argvs[] = {set_argv, unlock_argv};
    const size_t *lengths[] = {set_lengths, unlock_lengths};
    redisReply *replies[2] = {NULL, NULL};
    if (stored != NULL)
        cache_pipeline(c, lock_name != NULL ? 2 : 1, argcs, (const char **const *)argvs, lengths, replies);
    else if (lock_name != NULL)
        cache_pipeline(c, 1, &argcs[1], (const char **const *)&argvs[1], &lengths[1], replies);
    freeReplyObject(replies[0]);
    freeReplyObject(replies[1]);
    free(stored);
}

static void unlock(cache *c, const char *lock_name, const char *token)
{
    const char *argv[] = {lock_name, token};
    size_t lengths[] = {strlen(lock_name), strlen(token)};
    redisReply *reply = NULL;
    cache_script_run(c, &unlock_script, 1, 2, argv, lengths, &reply);
    freeReplyObject(reply);
}

/* ---- get ------------------------------------------------------------------------------- */

int cache_aside_get(cache *c, cache_l1 *l1, const char *family, const char *key,
                    const cache_aside_options *given, cache_aside_fill_fn fill, void *fill_data,
                    const cache_aside_allocator *allocator, cache_aside_value *out)
{
    memset(out, 0, sizeof *out);
    if (!cacheable(family, key))
        return fill_into(fill, fill_data, key, allocator, CACHE_ASIDE_BYPASSED, out);
    cache_aside_options options;
    normalise(given, &options);

    /* Taken before Redis is read: a key dropped meanwhile must not be
     * stored with what we read before the drop. */
    uint64_t sequence = cache_l1_sequence(l1);
    void *bytes = NULL;
    size_t length = 0;
    if (cache_l1_get(l1, family, key, (cache_l1_alloc_fn)allocator->alloc, allocator->data, &bytes, &length)) {
        *out = (cache_aside_value){bytes, length, CACHE_ASIDE_L1};
        return 0;
    }

    redisReply *reply = NULL;
    uint64_t version = 0;
    cache_aside_keys names;
    cache_aside_family_keys(&names, cache_key_prefix(c), family);
    char suffix[CACHE_INVALIDATION_MAX_KEY + 2];
    snprintf(suffix, sizeof suffix, ":%s", key);
    char lock_ms[16], token[40];
    snprintf(lock_ms, sizeof lock_ms, "%d", options.lock_ms);
    snprintf(token, sizeof token, "%016" PRIx64 "%016" PRIx64, next_random(), next_random());
    if (c != NULL) {
        const char *argv[] = {names.version, names.data_prefix, suffix, names.lock_prefix, token, lock_ms};
        size_t lengths[6];
        for (int i = 0; i < 6; i++)
            lengths[i] = strlen(argv[i]);
        cache_status status = cache_script_run(c, &get_script, 1, 6, argv, lengths, &reply);
        if (status == CACHE_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4)
            version = parse_version(reply->element[0]);
    }
    if (version == 0) {
        /* No Redis: PostgreSQL answers, or, when it cannot, the L1. */
        freeReplyObject(reply);
        int rc = fill_into(fill, fill_data, key, allocator, CACHE_ASIDE_BYPASSED, out);
        return answer_stale_if_error(rc, &options, NULL, l1, family, key, allocator, out);
    }
    cache_l1_learn_version(l1, family, version);
    stored_copy copy = read_copy(reply->element[1], reply->element[2], cache_monotonic_ms());
    bool locked = reply->element[3]->type == REDIS_REPLY_INTEGER && reply->element[3]->integer == 1;

    char key_name[MAX_REDIS_KEY], lock_name[MAX_REDIS_KEY];
    data_key(key_name, sizeof key_name, &names, version, key);
    snprintf(lock_name, sizeof lock_name, "%s%" PRIu64 ":%s", names.lock_prefix, version, key);

    int rc;
    if (fresh_copy(&copy)) {
        rc = copy_out(allocator, copy.bytes, copy.length, CACHE_ASIDE_REDIS, out);
        if (rc == 0)
            cache_l1_put(l1, family, version, key, out->bytes, out->length, sequence);
        freeReplyObject(reply);
        return rc;
    }
    if (locked) {
        rc = fill_into(fill, fill_data, key, allocator, CACHE_ASIDE_FILLED, out);
        if (rc != 0) {
            unlock(c, lock_name, token);
            rc = answer_stale_if_error(rc, &options, &copy, l1, family, key, allocator, out);
            freeReplyObject(reply);
            return rc;
        }
        freeReplyObject(reply);
        write_back(c, key_name, out->bytes, out->length, &options, lock_name, token);
        cache_l1_put(l1, family, version, key, out->bytes, out->length, sequence);
        return 0;
    }
    if (copy.present && copy.past_ms < options.stale_ms) {
        rc = copy_out(allocator, copy.bytes, copy.length, CACHE_ASIDE_STALE, out);
        freeReplyObject(reply);
        return rc;
    }

    /* Somebody else fills and there is nothing to serve meanwhile (a copy
     * kept only for errors is not served while the database may answer):
     * wait for the fresh value, a little longer each time, up to wait_ms. */
    uint64_t deadline = cache_monotonic_ms() + (uint64_t)options.wait_ms;
    int pause = 1;
    const char *peek_argv[] = {key_name};
    size_t peek_lengths[] = {strlen(key_name)};
    while (cache_monotonic_ms() < deadline) {
        sleep_ms(pause);
        if (pause < 8)
            pause *= 2;
        redisReply *answer = NULL;
        if (cache_script_run(c, &peek_script, 0, 1, peek_argv, peek_lengths, &answer) != CACHE_OK ||
            answer->type != REDIS_REPLY_ARRAY || answer->elements != 2) {
            freeReplyObject(answer);
            break;
        }
        stored_copy polled = read_copy(answer->element[0], answer->element[1], cache_monotonic_ms());
        if (fresh_copy(&polled)) {
            rc = copy_out(allocator, polled.bytes, polled.length, CACHE_ASIDE_REDIS, out);
            freeReplyObject(answer);
            freeReplyObject(reply);
            if (rc == 0)
                cache_l1_put(l1, family, version, key, out->bytes, out->length, sequence);
            return rc;
        }
        freeReplyObject(answer);
    }
    rc = fill_into(fill, fill_data, key, allocator, CACHE_ASIDE_FILLED, out);
    if (rc == 0)
        write_back(c, key_name, out->bytes, out->length, &options, NULL, NULL);
    else
        rc = answer_stale_if_error(rc, &options, &copy, l1, family, key, allocator, out);
    freeReplyObject(reply);
    return rc;
}

/* ---- get many -------------------------------------------------------------------------- */

/* Fills every key not done without Redis; options NULL: nothing was
 * cached, so no copy can answer a failure. */
static int fill_each_directly(cache_l1 *l1, const char *family, const char *const *keys, size_t count,
                              const bool *done, const cache_aside_options *options, cache_aside_fill_fn fill,
                              void *fill_data, const cache_aside_allocator *allocator, cache_aside_value *out)
{
    for (size_t i = 0; i < count; i++) {
        if (done != NULL && done[i])
            continue;
        int rc = fill_into(fill, fill_data, keys[i], allocator, CACHE_ASIDE_BYPASSED, &out[i]);
        rc = answer_stale_if_error(rc, options, NULL, l1, family, keys[i], allocator, &out[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cache_aside_get_many(cache *c, cache_l1 *l1, const char *family, const char *const *keys,
                         size_t count, const cache_aside_options *given, cache_aside_fill_fn fill,
                         void *fill_data, const cache_aside_allocator *allocator, cache_aside_value *out)
{
    memset(out, 0, count * sizeof *out);
    if (count == 0)
        return 0;
    bool all_cacheable = cache_l1_family_valid(family);
    for (size_t i = 0; i < count && all_cacheable; i++)
        all_cacheable = keys[i] != NULL && strlen(keys[i]) <= CACHE_INVALIDATION_MAX_KEY;
    if (!all_cacheable)
        return fill_each_directly(l1, family, keys, count, NULL, NULL, fill, fill_data, allocator, out);
    cache_aside_options options;
    normalise(given, &options);

    /* Bookkeeping on the heap: count is the caller's (up to 500 in
     * TechEmpower), too many for the stack. */
    bool *done = calloc(count, sizeof *done);
    size_t *missing = malloc(count * sizeof *missing);
    char **suffixes = calloc(count, sizeof *suffixes);
    const char **argv = malloc((count + 2) * sizeof *argv);
    size_t *lengths = malloc((count + 2) * sizeof *lengths);
    int rc = 0;
    redisReply *reply = NULL;
    if (done == NULL || missing == NULL || suffixes == NULL || argv == NULL || lengths == NULL) {
        rc = CACHE_ASIDE_NO_MEMORY;
        goto out;
    }

    uint64_t sequence = cache_l1_sequence(l1);
    size_t misses = 0;
    for (size_t i = 0; i < count; i++) {
        void *bytes = NULL;
        size_t length = 0;
        if (cache_l1_get(l1, family, keys[i], (cache_l1_alloc_fn)allocator->alloc, allocator->data, &bytes,
                         &length)) {
            out[i] = (cache_aside_value){bytes, length, CACHE_ASIDE_L1};
            done[i] = true;
        } else {
            missing[misses++] = i;
        }
    }
    if (misses == 0)
        goto out;
    if (c == NULL) {
        rc = fill_each_directly(l1, family, keys, count, done, &options, fill, fill_data, allocator, out);
        goto out;
    }

    cache_aside_keys names;
    cache_aside_family_keys(&names, cache_key_prefix(c), family);
    argv[0] = names.version;
    argv[1] = names.data_prefix;
    for (size_t m = 0; m < misses; m++) {
        size_t length = strlen(keys[missing[m]]) + 2;
        suffixes[m] = malloc(length);
        if (suffixes[m] == NULL) {
            rc = CACHE_ASIDE_NO_MEMORY;
            goto out;
        }
        snprintf(suffixes[m], length, ":%s", keys[missing[m]]);
        argv[2 + m] = suffixes[m];
    }
    /* Over CACHE_SCRIPT_MAX_ARGUMENTS the script is refused and every key is
     * filled directly: right, only uncached (no caller asks for that many). */
    int argc = (int)(2 + misses);
    for (int i = 0; i < argc; i++)
        lengths[i] = strlen(argv[i]);
    cache_status status = cache_script_run(c, &get_many_script, 1, argc, argv, lengths, &reply);
    if (status != CACHE_OK || reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 + 2 * misses ||
        parse_version(reply->element[0]) == 0) {
        rc = fill_each_directly(l1, family, keys, count, done, &options, fill, fill_data, allocator, out);
        goto out;
    }
    uint64_t version = parse_version(reply->element[0]);
    cache_l1_learn_version(l1, family, version);
    uint64_t read_at = cache_monotonic_ms();

    size_t filled = 0;
    for (size_t m = 0; m < misses; m++) {
        size_t i = missing[m];
        stored_copy copy = read_copy(reply->element[1 + 2 * m], reply->element[2 + 2 * m], read_at);
        if (fresh_copy(&copy)) {
            rc = copy_out(allocator, copy.bytes, copy.length, CACHE_ASIDE_REDIS, &out[i]);
            if (rc != 0)
                goto out;
            cache_l1_put(l1, family, version, keys[i], out[i].bytes, out[i].length, sequence);
            continue;
        }
        rc = fill_into(fill, fill_data, keys[i], allocator, CACHE_ASIDE_FILLED, &out[i]);
        if (rc != 0) {
            rc = answer_stale_if_error(rc, &options, &copy, l1, family, keys[i], allocator, &out[i]);
            if (rc != 0)
                goto out;
            continue; /* a copy kept for errors is not written back */
        }
        missing[filled++] = i; /* reuses the array: m >= filled always */
    }
    if (filled == 0)
        goto out;

    /* One pipeline of SETs for everything we filled. */
    int64_t tail = tail_ms(&options);
    char (*names_buffer)[MAX_REDIS_KEY] = malloc(filled * sizeof *names_buffer);
    char (*px)[24] = malloc(filled * sizeof *px);
    char **stored = calloc(filled, sizeof *stored);
    const char ***set_argvs = malloc(filled * sizeof *set_argvs);
    const char **set_storage = malloc(filled * 5 * sizeof *set_storage);
    size_t **set_lengths = malloc(filled * sizeof *set_lengths);
    size_t *length_storage = malloc(filled * 5 * sizeof *length_storage);
    int *argcs = malloc(filled * sizeof *argcs);
    redisReply **replies = calloc(filled, sizeof *replies);
    bool ready = names_buffer != NULL && px != NULL && stored != NULL && set_argvs != NULL && set_storage != NULL &&
                 set_lengths != NULL && length_storage != NULL && argcs != NULL && replies != NULL;
    for (size_t f = 0; f < filled && ready; f++) {
        size_t i = missing[f];
        size_t stored_length = 0;
        stored[f] = encode_stored(out[i].bytes, out[i].length, tail, &stored_length);
        if (stored[f] == NULL) {
            ready = false;
            break;
        }
        data_key(names_buffer[f], sizeof names_buffer[f], &names, version, keys[i]);
        snprintf(px[f], sizeof px[f], "%" PRId64, cache_aside_jitter_ms(options.ttl_ms, next_random()) + tail);
        const char **a = &set_storage[f * 5];
        size_t *l = &length_storage[f * 5];
        a[0] = "SET", l[0] = 3;
        a[1] = names_buffer[f], l[1] = strlen(names_buffer[f]);
        a[2] = stored[f], l[2] = stored_length;
        a[3] = "PX", l[3] = 2;
        a[4] = px[f], l[4] = strlen(px[f]);
        set_argvs[f] = a;
        set_lengths[f] = l;
        argcs[f] = 5;
    }
    if (ready) {
        cache_pipeline(c, (int)filled, argcs, (const char **const *)set_argvs, (const size_t *const *)set_lengths,
                       replies);
        for (size_t f = 0; f < filled; f++)
            freeReplyObject(replies[f]);
        for (size_t f = 0; f < filled; f++) {
            size_t i = missing[f];
            cache_l1_put(l1, family, version, keys[i], out[i].bytes, out[i].length, sequence);
        }
    }
    if (stored != NULL)
        for (size_t f = 0; f < filled; f++)
            free(stored[f]);
    free(stored);
    free(names_buffer);
    free(px);
    free(set_argvs);
    free(set_storage);
    free(set_lengths);
    free(length_storage);
    free(argcs);
    free(replies);

out:
    freeReplyObject(reply);
    if (suffixes != NULL)
        for (size_t m = 0; m < count; m++)
            free(suffixes[m]);
    free(suffixes);
    free(done);
    free(missing);
    free(argv);
    free(lengths);
    return rc;
}

/* ---- invalidation ---------------------------------------------------------------------- */

cache_status cache_aside_invalidate_family(cache *c, cache_l1 *l1, const char *family, uint64_t *version)
{
    if (version != NULL)
        *version = 0;
    if (!cache_l1_family_valid(family))
        return CACHE_ERROR;
    cache_aside_keys names;
    cache_aside_family_keys(&names, cache_key_prefix(c), family);
    char channel[CACHE_INVALIDATION_CHANNEL_SIZE];
    cache_invalidation_channel(cache_key_prefix(c), channel);
    const char *argv[] = {names.version, family, channel};
    size_t lengths[3];
    for (int i = 0; i < 3; i++)
        lengths[i] = strlen(argv[i]);
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, &invalidate_family_script, 1, 3, argv, lengths, &reply);
    uint64_t new_version = status == CACHE_OK ? parse_version(reply) : 0;
    freeReplyObject(reply);
    if (status != CACHE_OK)
        return status;
    if (new_version == 0)
        return CACHE_ERROR;
    /* This node reads its own write at once, without waiting for the
     * message to come back. */
    cache_l1_learn_version(l1, family, new_version);
    if (version != NULL)
        *version = new_version;
    return CACHE_OK;
}

cache_status cache_aside_invalidate_key(cache *c, cache_l1 *l1, const char *family, const char *key)
{
    char message[CACHE_L1_MAX_FAMILY_LENGTH + CACHE_INVALIDATION_MAX_KEY + 8];
    int message_length = cache_invalidation_encode_key(message, sizeof message, family, key);
    if (message_length < 0)
        return CACHE_ERROR;
    cache_l1_drop(l1, family, key);
    cache_aside_keys names;
    cache_aside_family_keys(&names, cache_key_prefix(c), family);
    char suffix[CACHE_INVALIDATION_MAX_KEY + 2];
    snprintf(suffix, sizeof suffix, ":%s", key);
    char channel[CACHE_INVALIDATION_CHANNEL_SIZE];
    cache_invalidation_channel(cache_key_prefix(c), channel);
    const char *argv[] = {names.version, names.data_prefix, suffix, channel, message};
    size_t lengths[5];
    for (int i = 0; i < 4; i++)
        lengths[i] = strlen(argv[i]);
    lengths[4] = (size_t)message_length;
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, &invalidate_key_script, 1, 5, argv, lengths, &reply);
    freeReplyObject(reply);
    return status;
}
