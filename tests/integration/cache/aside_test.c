/* tests/integration/cache/aside_test.c: cache-aside against the fixture's
 * real Redis: fill once then hit, invalidation, stampedes, stale copies,
 * batches, and a Redis that hangs. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/aside.h>
#include <shoal/cache.h>

#include "test_env.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* milliseconds times SHOAL_TEST_TIME_SCALE: valgrind and the sanitizers
 * run this code several times slower. */
static int scaled(int milliseconds)
{
    return (int)(milliseconds * test_env_time_scale());
}

/* Every allocation of a test, freed at its end (what the request arena
 * does in the node). */
typedef struct pool {
    void *items[4096];
    size_t count;
    pthread_mutex_t lock;
} pool;

static void *pool_alloc(void *data, size_t size)
{
    pool *p = data;
    void *memory = malloc(size);
    pthread_mutex_lock(&p->lock);
    assert_true(p->count < sizeof p->items / sizeof p->items[0]);
    p->items[p->count++] = memory;
    pthread_mutex_unlock(&p->lock);
    return memory;
}

static void pool_release(pool *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->items[i]);
    p->count = 0;
}

static pool test_pool = {.lock = PTHREAD_MUTEX_INITIALIZER};
static const cache_aside_allocator allocator = {pool_alloc, &test_pool};

/* The "database": the current value of every key is "<prefix>:<key>"; the
 * fill counts its calls and may be slow. */
typedef struct source {
    atomic_int calls;
    int delay_ms;
    char prefix[32];
    int fail_with; /* non-zero: the fill fails with this code */
} source;

static int fill_from(void *data, const char *key, const cache_aside_allocator *alloc, void **value, size_t *length)
{
    source *s = data;
    atomic_fetch_add(&s->calls, 1);
    if (s->delay_ms > 0)
        usleep((useconds_t)s->delay_ms * 1000);
    if (s->fail_with != 0)
        return s->fail_with;
    char text[256];
    int n = snprintf(text, sizeof text, "%s:%s", s->prefix, key);
    *value = alloc->alloc(alloc->data, (size_t)n);
    memcpy(*value, text, (size_t)n);
    *length = (size_t)n;
    return 0;
}

static cache *open_cache(int timeout_ms)
{
    char error[256];
    cache_config config = {.url = TEST_REDIS_URL(), .timeout_ms = timeout_ms};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    return c;
}

/* A family no other test (or earlier run) has used. */
static void fresh_family(char *out, size_t size)
{
    static int counter;
    snprintf(out, size, "t%d_%d_%ld", (int)getpid(), ++counter, (long)time(NULL));
}

static void assert_value(const cache_aside_value *value, const char *expected)
{
    assert_int_equal(value->length, strlen(expected));
    assert_memory_equal(value->bytes, expected, value->length);
}

static redisContext *observer(void)
{
    cache_endpoint endpoint;
    char error[128];
    assert_int_equal(cache_url_parse(TEST_REDIS_URL(), &endpoint, error, sizeof error), 0);
    redisContext *context = redisConnect(endpoint.host, endpoint.port);
    assert_non_null(context);
    assert_int_equal(context->err, 0);
    return context;
}

static const cache_aside_options options = {.ttl_ms = 60000, .stale_ms = 10000};

static int teardown_pool(void **state)
{
    (void)state;
    pool_release(&test_pool);
    return 0;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void fills_once_then_hits(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    source db = {.prefix = "one"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &options, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_FILLED);
    assert_value(&value, "one:k");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cache_aside_get(c, NULL, family, "k", &options, fill_from, &db, &allocator, &value), 0);
        assert_int_equal(value.source, CACHE_ASIDE_REDIS);
        assert_value(&value, "one:k");
    }
    assert_int_equal(atomic_load(&db.calls), 1);

    /* With an L1 in front, the second read does not reach Redis. */
    cache_l1_config l1_config = {.max_entries = 100, .ttl_ms = 60000};
    cache_l1 *l1 = cache_l1_new(&l1_config);
    assert_int_equal(cache_aside_get(c, l1, family, "k", &options, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_REDIS);
    assert_int_equal(cache_aside_get(c, l1, family, "k", &options, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_L1);
    assert_value(&value, "one:k");
    assert_int_equal(atomic_load(&db.calls), 1);

    /* A failing fill is passed back and caches nothing. */
    source missing = {.prefix = "none", .fail_with = 404};
    assert_int_equal(cache_aside_get(c, l1, family, "gone", &options, fill_from, &missing, &allocator, &value), 404);
    assert_int_equal(cache_aside_get(c, l1, family, "gone", &options, fill_from, &missing, &allocator, &value), 404);
    assert_int_equal(atomic_load(&missing.calls), 2);
    cache_l1_free(l1);
    cache_close(c);
}

static void invalidating_the_family_refills(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    cache_l1_config l1_config = {.max_entries = 100, .ttl_ms = 60000};
    cache_l1 *l1 = cache_l1_new(&l1_config);
    source db = {.prefix = "v1"};
    cache_aside_value value;
    const char *keys[] = {"a", "b"};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(cache_aside_get(c, l1, family, keys[i], &options, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(atomic_load(&db.calls), 2);

    strcpy(db.prefix, "v2"); /* the write */
    uint64_t before = cache_l1_family_version(l1, family), after = 0;
    assert_int_equal(cache_aside_invalidate_family(c, l1, family, &after), CACHE_OK);
    assert_true(after == before + 1);
    assert_true(cache_l1_family_version(l1, family) == after); /* this node at once */
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cache_aside_get(c, l1, family, keys[i], &options, fill_from, &db, &allocator, &value), 0);
        assert_int_equal(value.source, CACHE_ASIDE_FILLED);
        char expected[16];
        snprintf(expected, sizeof expected, "v2:%s", keys[i]);
        assert_value(&value, expected);
    }
    assert_int_equal(atomic_load(&db.calls), 4);

    /* One key alone. */
    strcpy(db.prefix, "v3");
    assert_int_equal(cache_aside_invalidate_key(c, l1, family, "a"), CACHE_OK);
    assert_int_equal(cache_aside_get(c, l1, family, "a", &options, fill_from, &db, &allocator, &value), 0);
    assert_value(&value, "v3:a");
    assert_int_equal(cache_aside_get(c, l1, family, "b", &options, fill_from, &db, &allocator, &value), 0);
    assert_value(&value, "v2:b");
    assert_int_equal(value.source, CACHE_ASIDE_L1);

    /* The layout docs/state.md describes: the version key and the value
     * under it, "<tail>:<bytes>", with a TTL of about ttl + the tail (here
     * the stale window: this reader has no stale-if-error). */
    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "GET shoal:cv:%s", family);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_true(strtoull(reply->str, NULL, 10) == after);
    freeReplyObject(reply);
    reply = redisCommand(admin, "PTTL shoal:c2:%s:%llu:b", family, (unsigned long long)after);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    assert_true(reply->integer > 54000 + 10000 - 1000 && reply->integer <= 66000 + 10000);
    freeReplyObject(reply);
    reply = redisCommand(admin, "GET shoal:c2:%s:%llu:b", family, (unsigned long long)after);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, "10000:v2:b");
    freeReplyObject(reply);
    redisFree(admin);
    cache_l1_free(l1);
    cache_close(c);
}

typedef struct racer {
    const char *family;
    source *db;
    cache_aside_value value;
    int rc;
    pthread_barrier_t *start;
} racer;

static void *race(void *argument)
{
    racer *r = argument;
    cache *c = open_cache(2000);
    assert_int_equal(cache_ping(c), CACHE_OK); /* connected before the start line */
    pthread_barrier_wait(r->start);
    /* The filler must finish, and the others see its value, within the
     * lock's life and their wait: 16 threads take turns under valgrind. */
    cache_aside_options slow = {.ttl_ms = 60000, .stale_ms = 0, .lock_ms = scaled(2000), .wait_ms = scaled(2000)};
    r->rc = cache_aside_get(c, NULL, r->family, "hot", &slow, fill_from, r->db, &allocator, &r->value);
    cache_close(c);
    return NULL;
}

static void a_stampede_fills_once(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    source db = {.prefix = "hot", .delay_ms = 50};
    enum { RACERS = 16 };
    pthread_t threads[RACERS];
    racer racers[RACERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (racer){.family = family, .db = &db, .start = &start};
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    int filled = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(racers[i].rc, 0);
        assert_value(&racers[i].value, "hot:hot");
        filled += racers[i].value.source == CACHE_ASIDE_FILLED;
    }
    pthread_barrier_destroy(&start);
    printf("stampede: %d threads on a cold key, the fill ran %d time(s)\n", RACERS, atomic_load(&db.calls));
    assert_int_equal(atomic_load(&db.calls), 1);
    assert_int_equal(filled, 1);
}

static void a_stale_copy_is_served_while_another_fills(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    source db = {.prefix = "old"};
    cache_aside_options short_lived = {.ttl_ms = 100, .stale_ms = 30000};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &short_lived, fill_from, &db, &allocator, &value), 0);
    usleep(150 * 1000); /* past ttl + 10 %: stale now */

    /* Another node holds the fill lock. */
    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "GET shoal:cv:%s", family);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    char lock[256];
    snprintf(lock, sizeof lock, "shoal:cl:%s:%s:k", family, reply->str);
    freeReplyObject(reply);
    reply = redisCommand(admin, "SET %s other PX 5000", lock);
    assert_non_null(reply);
    freeReplyObject(reply);

    strcpy(db.prefix, "new");
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &short_lived, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_STALE);
    assert_value(&value, "old:k");
    assert_int_equal(atomic_load(&db.calls), 1);

    /* The lock gone, the next read refreshes it. */
    reply = redisCommand(admin, "DEL %s", lock);
    assert_non_null(reply);
    freeReplyObject(reply);
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &short_lived, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_FILLED);
    assert_value(&value, "new:k");
    /* and releases its lock */
    reply = redisCommand(admin, "EXISTS %s", lock);
    assert_non_null(reply);
    assert_int_equal(reply->integer, 0);
    freeReplyObject(reply);
    redisFree(admin);
    cache_close(c);
}

static void a_batch_takes_one_round_trip_and_fills_what_is_missing(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    source db = {.prefix = "w"};
    enum { N = 20 };
    char names[N][16];
    const char *keys[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "%d", i + 1);
        keys[i] = names[i];
    }
    cache_aside_value values[N];
    /* Half of them cached first, one by one. */
    for (int i = 0; i < N; i += 2)
        assert_int_equal(cache_aside_get(c, NULL, family, keys[i], &options, fill_from, &db, &allocator, &values[i]), 0);
    assert_int_equal(atomic_load(&db.calls), N / 2);

    assert_int_equal(cache_aside_get_many(c, NULL, family, keys, N, &options, fill_from, &db, &allocator, values), 0);
    for (int i = 0; i < N; i++) {
        char expected[32];
        snprintf(expected, sizeof expected, "w:%s", keys[i]);
        assert_value(&values[i], expected);
        assert_int_equal(values[i].source, i % 2 == 0 ? CACHE_ASIDE_REDIS : CACHE_ASIDE_FILLED);
    }
    assert_int_equal(atomic_load(&db.calls), N);

    /* One shard: with the default 16, each holds 7 of the 100 entries, and
     * the family's random name puts 8 of the 20 keys in one shard about once
     * in 4,000 runs, which evicts one and fails the L1 check below. */
    cache_l1_config l1_config = {.max_entries = 100, .ttl_ms = 60000, .shards = 1};
    cache_l1 *l1 = cache_l1_new(&l1_config);
    assert_int_equal(cache_aside_get_many(c, l1, family, keys, N, &options, fill_from, &db, &allocator, values), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(values[i].source, CACHE_ASIDE_REDIS);
    assert_int_equal(cache_aside_get_many(c, l1, family, keys, N, &options, fill_from, &db, &allocator, values), 0);
    for (int i = 0; i < N; i++) {
        if (values[i].source != CACHE_ASIDE_L1)
            printf("key %s came from %d\n", keys[i], values[i].source);
        assert_int_equal(values[i].source, CACHE_ASIDE_L1);
    }
    assert_int_equal(atomic_load(&db.calls), N);
    cache_l1_free(l1);
    cache_close(c);
}

/* Scripts go by SHA-1; after SCRIPT FLUSH (as after a Redis restart)
 * Redis answers NOSCRIPT, and the source is sent again, transparently. A
 * TechEmpower-sized batch (500 keys) still fits one script call. */
static void flushed_scripts_are_sent_again_and_big_batches_fit(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    source db = {.prefix = "s"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &options, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_FILLED);

    redisContext *redis = observer();
    redisReply *reply = redisCommand(redis, "SCRIPT FLUSH");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(redis);

    for (int i = 0; i < 2; i++) {
        assert_int_equal(cache_aside_get(c, NULL, family, "k", &options, fill_from, &db, &allocator, &value), 0);
        assert_int_equal(value.source, CACHE_ASIDE_REDIS);
        assert_value(&value, "s:k");
    }
    assert_int_equal(atomic_load(&db.calls), 1);

    enum { N = 500 };
    static char names[N][16];
    const char *keys[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "b%d", i);
        keys[i] = names[i];
    }
    static cache_aside_value values[N];
    assert_int_equal(cache_aside_get_many(c, NULL, family, keys, N, &options, fill_from, &db, &allocator, values), 0);
    assert_int_equal(cache_aside_get_many(c, NULL, family, keys, N, &options, fill_from, &db, &allocator, values), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(values[i].source, CACHE_ASIDE_REDIS);
    assert_int_equal(atomic_load(&db.calls), 1 + N);
    cache_close(c);
}

/* Whatever happened in the test, the fixture's Redis runs again afterwards. */
static int resume_redis(void **state)
{
    kill(test_env_redis_pid(), SIGCONT);
    return teardown_pool(state);
}

static void a_hung_redis_is_bypassed_and_caching_resumes(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(200);
    source db = {.prefix = "pg"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &options, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(atomic_load(&db.calls), 1);

    pid_t redis = test_env_redis_pid();
    assert_int_equal(kill(redis, SIGSTOP), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cache_aside_get(c, NULL, family, "k", &options, fill_from, &db, &allocator, &value), 0);
        assert_int_equal(value.source, CACHE_ASIDE_BYPASSED);
        assert_value(&value, "pg:k");
    }
    assert_int_equal(atomic_load(&db.calls), 4);
    uint64_t version = 0;
    assert_int_equal(cache_aside_invalidate_family(c, NULL, family, &version), CACHE_UNAVAILABLE);
    assert_int_equal(kill(redis, SIGCONT), 0);

    bool cached = false;
    for (int i = 0; i < 50 * test_env_time_scale() && !cached; i++) {
        assert_int_equal(cache_aside_get(c, NULL, family, "k", &options, fill_from, &db, &allocator, &value), 0);
        assert_value(&value, "pg:k");
        cached = value.source == CACHE_ASIDE_REDIS;
        usleep(50 * 1000);
    }
    assert_true(cached);
    cache_close(c);
}

static void an_unreachable_redis_is_bypassed(void **state)
{
    (void)state;
    char error[256];
    cache_config config = {.url = "redis://127.0.0.1:1/0", .timeout_ms = 200};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    source db = {.prefix = "pg"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, NULL, "article", "k", &options, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_BYPASSED);
    const char *keys[] = {"1", "2", "3"};
    cache_aside_value values[3];
    assert_int_equal(cache_aside_get_many(c, NULL, "world", keys, 3, &options, fill_from, &db, &allocator, values), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(values[i].source, CACHE_ASIDE_BYPASSED);
    assert_int_equal(atomic_load(&db.calls), 4);
    cache_close(c);
}

/* ---- stale if error ------------------------------------------------------------------ */

/* The caller's codes here: 503 is the database's trouble, 404 an answer. */
#define UNAVAILABLE 503
#define NOT_FOUND 404

static bool database_could_not_answer(int code)
{
    return code == UNAVAILABLE;
}

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static void sleep_until_ms(uint64_t when)
{
    uint64_t now = now_ms();
    if (when > now)
        usleep((useconds_t)((when - now) * 1000u));
}

/* A stored value's remaining TTL and its tail, as docs/state.md shows them. */
static void expect_stored(const char *family, const char *key, const char *expected, long long min_pttl,
                          long long max_pttl)
{
    redisContext *admin = observer();
    redisReply *version = redisCommand(admin, "GET shoal:cv:%s", family);
    assert_non_null(version);
    assert_int_equal(version->type, REDIS_REPLY_STRING);
    redisReply *reply = redisCommand(admin, "GET shoal:c2:%s:%s:%s", family, version->str, key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, expected);
    freeReplyObject(reply);
    reply = redisCommand(admin, "PTTL shoal:c2:%s:%s:%s", family, version->str, key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    if (reply->integer < min_pttl || reply->integer > max_pttl)
        fail_msg("PTTL %lld, not in [%lld, %lld]", reply->integer, min_pttl, max_pttl);
    freeReplyObject(reply);
    freeReplyObject(version);
    redisFree(admin);
}

static void a_failed_fill_is_answered_by_a_stale_copy_within_the_window(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    int ttl = scaled(100), window = scaled(800);
    cache_aside_options o = {.ttl_ms = ttl, .stale_ms = ttl / 5, .stale_if_error_ms = window,
                             .tier_failure = database_could_not_answer};
    source db = {.prefix = "old"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    uint64_t filled = now_ms();
    assert_int_equal(value.source, CACHE_ASIDE_FILLED);
    /* Redis keeps it the TTL (+/- 10 %) plus the window, which the value
     * carries. */
    char expected[64];
    snprintf(expected, sizeof expected, "%d:old:k", window);
    expect_stored(family, "k", expected, (long long)(0.9 * ttl) + window - scaled(100),
                  (long long)(1.1 * ttl) + window);

    /* Past its freshness (and the stale window) the database fails. */
    sleep_until_ms(filled + (uint64_t)(1.1 * ttl + ttl / 5 + scaled(30)));
    db.fail_with = UNAVAILABLE;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_STALE_IF_ERROR);
    assert_value(&value, "old:k");
    assert_int_equal(atomic_load(&db.calls), 2); /* it was asked first */
    /* A key never read has nothing to answer with. */
    assert_int_equal(cache_aside_get(c, NULL, family, "never", &o, fill_from, &db, &allocator, &value), UNAVAILABLE);
    /* An answer of the database ("not found") is passed on, never hidden. */
    db.fail_with = NOT_FOUND;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), NOT_FOUND);
    /* Without tier_failure no code is the tier's. */
    db.fail_with = UNAVAILABLE;
    cache_aside_options unaware = o;
    unaware.tier_failure = NULL;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &unaware, fill_from, &db, &allocator, &value),
                     UNAVAILABLE);

    /* The reader's own window bounds what it takes: one of 100 ms refuses a
     * copy more than that past its freshness, which a longer one takes. */
    sleep_until_ms(filled + (uint64_t)(1.1 * ttl + scaled(150)));
    cache_aside_options narrow = o;
    narrow.stale_if_error_ms = scaled(100);
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &narrow, fill_from, &db, &allocator, &value),
                     UNAVAILABLE);
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_STALE_IF_ERROR);

    /* Past the window: 503, the copy is gone. */
    sleep_until_ms(filled + (uint64_t)(1.1 * ttl + window + scaled(50)));
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), UNAVAILABLE);

    /* The database back: filled afresh. */
    db.fail_with = 0;
    strcpy(db.prefix, "new");
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_FILLED);
    assert_value(&value, "new:k");
    cache_close(c);
}

/* The copy kept for errors changes nothing while the database answers: a
 * value is fresh for its TTL only, whoever wrote it with whatever window. */
static void freshness_does_not_change(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    int ttl = scaled(100);
    cache_aside_options long_window = {.ttl_ms = ttl, .stale_ms = ttl / 5, .stale_if_error_ms = 60000,
                                       .tier_failure = database_could_not_answer};
    cache_aside_options no_window = {.ttl_ms = ttl, .stale_ms = ttl / 5};
    source db = {.prefix = "v1"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, NULL, family, "a", &long_window, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(cache_aside_get(c, NULL, family, "b", &no_window, fill_from, &db, &allocator, &value), 0);
    uint64_t filled = now_ms();
    strcpy(db.prefix, "v2"); /* changed behind the cache's back */
    /* Within the TTL: the cached value, for either reader. */
    assert_int_equal(cache_aside_get(c, NULL, family, "a", &no_window, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_REDIS);
    assert_value(&value, "v1:a");
    assert_int_equal(cache_aside_get(c, NULL, family, "b", &long_window, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_REDIS);
    assert_value(&value, "v1:b");
    if (now_ms() - filled >= (uint64_t)(0.9 * ttl))
        fail_msg("too slow to read within the TTL: %d ms", (int)(now_ms() - filled));

    /* Past it: the change, filled, for both readers and both writers. */
    sleep_until_ms(filled + (uint64_t)(1.1 * ttl) + 5);
    const char *keys[] = {"a", "b"};
    const cache_aside_options *readers[] = {&no_window, &long_window};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cache_aside_get(c, NULL, family, keys[i], readers[i], fill_from, &db, &allocator, &value), 0);
        assert_int_equal(value.source, CACHE_ASIDE_FILLED);
        char expected[16];
        snprintf(expected, sizeof expected, "v2:%s", keys[i]);
        assert_value(&value, expected);
    }
    cache_close(c);
}

/* An invalidation wins: after a write, the copy from before it is never an
 * answer, in Redis or in the L1, even with the database down. */
static void an_invalidated_copy_never_answers(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    cache_l1_config l1_config = {.max_entries = 100, .ttl_ms = 60000, .stale_if_error_ms = 60000};
    cache_l1 *l1 = cache_l1_new(&l1_config);
    cache_aside_options o = {.ttl_ms = 60000, .stale_ms = 10000, .stale_if_error_ms = 60000,
                             .tier_failure = database_could_not_answer};
    source db = {.prefix = "before"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, l1, family, "f", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(cache_aside_get(c, l1, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(cache_aside_get(c, l1, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_L1);

    /* A write to k, then the database goes. */
    assert_int_equal(cache_aside_invalidate_key(c, l1, family, "k"), CACHE_OK);
    db.fail_with = UNAVAILABLE;
    assert_int_equal(cache_aside_get(c, l1, family, "k", &o, fill_from, &db, &allocator, &value), UNAVAILABLE);
    assert_int_equal(cache_aside_get(c, l1, family, "f", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_L1);

    /* A write to the family: f's copies (Redis' and the L1's) are under the
     * old version now. */
    assert_int_equal(cache_aside_invalidate_family(c, l1, family, NULL), CACHE_OK);
    assert_int_equal(cache_aside_get(c, l1, family, "f", &o, fill_from, &db, &allocator, &value), UNAVAILABLE);
    const char *keys[] = {"f"};
    assert_int_equal(cache_aside_get_many(c, l1, family, keys, 1, &o, fill_from, &db, &allocator, &value),
                     UNAVAILABLE);
    cache_l1_free(l1);
    cache_close(c);
}

/* With Redis unreachable (or not asked, past a request's deadline) the
 * L1's copy answers for the database, within its window. */
static void the_l1_copy_answers_when_redis_cannot(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    char error[256];
    cache_config nowhere = {.url = "redis://127.0.0.1:1/0", .timeout_ms = 200};
    cache *dead = cache_open(&nowhere, error, sizeof error);
    assert_non_null(dead);
    int l1_ttl = scaled(50), window = scaled(600);
    cache_l1_config l1_config = {.max_entries = 100, .ttl_ms = l1_ttl, .stale_if_error_ms = window};
    cache_l1 *l1 = cache_l1_new(&l1_config);
    cache_aside_options o = {.ttl_ms = 60000, .stale_ms = 10000, .stale_if_error_ms = window,
                             .tier_failure = database_could_not_answer};
    source db = {.prefix = "l1"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, l1, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    uint64_t stored = now_ms();
    const char *keys[] = {"k"};
    assert_int_equal(cache_aside_get(dead, l1, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_L1);

    sleep_until_ms(stored + (uint64_t)l1_ttl + 5);
    db.fail_with = UNAVAILABLE;
    cache *tiers[] = {dead, NULL};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cache_aside_get(tiers[i], l1, family, "k", &o, fill_from, &db, &allocator, &value), 0);
        assert_int_equal(value.source, CACHE_ASIDE_STALE_IF_ERROR);
        assert_value(&value, "l1:k");
        assert_int_equal(cache_aside_get_many(tiers[i], l1, family, keys, 1, &o, fill_from, &db, &allocator, &value),
                         0);
        assert_int_equal(value.source, CACHE_ASIDE_STALE_IF_ERROR);
        assert_value(&value, "l1:k");
    }
    /* While the database answers it does, not the old copy. */
    db.fail_with = 0;
    strcpy(db.prefix, "pg");
    assert_int_equal(cache_aside_get(dead, l1, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_BYPASSED);
    assert_value(&value, "pg:k");

    /* Past the window the L1 has nothing. */
    sleep_until_ms(stored + (uint64_t)(l1_ttl + window) + 5);
    db.fail_with = UNAVAILABLE;
    assert_int_equal(cache_aside_get(dead, l1, family, "k", &o, fill_from, &db, &allocator, &value), UNAVAILABLE);
    cache_l1_free(l1);
    cache_close(dead);
    cache_close(c);
}

/* A batch: each key whose fill fails takes its own copy; one without a
 * copy fails the batch, as a failed fill always did. */
static void a_batch_answers_stale_copies_for_a_failed_database(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    int ttl = scaled(100);
    cache_aside_options o = {.ttl_ms = ttl, .stale_ms = ttl / 5, .stale_if_error_ms = 60000,
                             .tier_failure = database_could_not_answer};
    source db = {.prefix = "w"};
    const char *keys[] = {"1", "2", "3", "4"};
    cache_aside_value values[4];
    assert_int_equal(cache_aside_get_many(c, NULL, family, keys, 3, &o, fill_from, &db, &allocator, values), 0);
    uint64_t filled = now_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(values[i].source, CACHE_ASIDE_FILLED);
    sleep_until_ms(filled + (uint64_t)(1.1 * ttl) + 5);
    db.fail_with = UNAVAILABLE;
    assert_int_equal(cache_aside_get_many(c, NULL, family, keys, 3, &o, fill_from, &db, &allocator, values), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(values[i].source, CACHE_ASIDE_STALE_IF_ERROR);
        char expected[16];
        snprintf(expected, sizeof expected, "w:%s", keys[i]);
        assert_value(&values[i], expected);
    }
    assert_int_equal(cache_aside_get_many(c, NULL, family, keys, 4, &o, fill_from, &db, &allocator, values),
                     UNAVAILABLE);
    db.fail_with = NOT_FOUND;
    assert_int_equal(cache_aside_get_many(c, NULL, family, keys, 1, &o, fill_from, &db, &allocator, values),
                     NOT_FOUND);
    cache_close(c);
}

/* A copy kept only for errors is not served as "stale" while another
 * filler works: the database may well answer, so the reader waits for the
 * filler, then fills itself, and takes the old copy only if that fails. */
static void a_copy_kept_for_errors_is_no_stale_answer(void **state)
{
    (void)state;
    char family[64];
    fresh_family(family, sizeof family);
    cache *c = open_cache(1000);
    int ttl = scaled(100);
    cache_aside_options o = {.ttl_ms = ttl, .stale_ms = ttl / 5, .wait_ms = 20, .stale_if_error_ms = 60000,
                             .tier_failure = database_could_not_answer};
    source db = {.prefix = "old"};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    uint64_t filled = now_ms();
    sleep_until_ms(filled + (uint64_t)(1.1 * ttl + ttl / 5) + 10);

    /* Another node holds the fill lock. */
    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "GET shoal:cv:%s", family);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    char lock[256];
    snprintf(lock, sizeof lock, "shoal:cl:%s:%s:k", family, reply->str);
    freeReplyObject(reply);
    reply = redisCommand(admin, "SET %s other PX 60000", lock);
    assert_non_null(reply);
    freeReplyObject(reply);

    strcpy(db.prefix, "new");
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_FILLED);
    assert_value(&value, "new:k");
    /* It wrote back what it filled: fresh again. */
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_REDIS);
    assert_value(&value, "new:k");

    /* Once more past freshness, now with the database down. */
    sleep_until_ms(now_ms() + (uint64_t)(1.1 * ttl + ttl / 5) + 10);
    db.fail_with = UNAVAILABLE;
    assert_int_equal(cache_aside_get(c, NULL, family, "k", &o, fill_from, &db, &allocator, &value), 0);
    assert_int_equal(value.source, CACHE_ASIDE_STALE_IF_ERROR);
    assert_value(&value, "new:k");
    reply = redisCommand(admin, "DEL %s", lock);
    freeReplyObject(reply);
    redisFree(admin);
    cache_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(fills_once_then_hits, teardown_pool),
        cmocka_unit_test_teardown(invalidating_the_family_refills, teardown_pool),
        cmocka_unit_test_teardown(a_stampede_fills_once, teardown_pool),
        cmocka_unit_test_teardown(a_stale_copy_is_served_while_another_fills, teardown_pool),
        cmocka_unit_test_teardown(a_batch_takes_one_round_trip_and_fills_what_is_missing, teardown_pool),
        cmocka_unit_test_teardown(flushed_scripts_are_sent_again_and_big_batches_fit, teardown_pool),
        cmocka_unit_test_teardown(a_hung_redis_is_bypassed_and_caching_resumes, resume_redis),
        cmocka_unit_test_teardown(an_unreachable_redis_is_bypassed, teardown_pool),
        cmocka_unit_test_teardown(a_failed_fill_is_answered_by_a_stale_copy_within_the_window, teardown_pool),
        cmocka_unit_test_teardown(freshness_does_not_change, teardown_pool),
        cmocka_unit_test_teardown(an_invalidated_copy_never_answers, teardown_pool),
        cmocka_unit_test_teardown(the_l1_copy_answers_when_redis_cannot, teardown_pool),
        cmocka_unit_test_teardown(a_batch_answers_stale_copies_for_a_failed_database, teardown_pool),
        cmocka_unit_test_teardown(a_copy_kept_for_errors_is_no_stale_answer, teardown_pool),
    };
    return cmocka_run_group_tests_name("integration.cache.aside", tests, NULL, NULL);
}
