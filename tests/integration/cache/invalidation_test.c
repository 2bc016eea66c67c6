/* tests/integration/cache/invalidation_test.c: two nodes' L1s kept
 * coherent through the fixture's real Redis, the window measured, and the
 * subscriber through lost connections and a Redis restart. */
#include <hiredis/hiredis.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
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

#include "invalidation.h"
#include "test_env.h"

#define ROUNDS 1000

static uint64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void *heap_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static const cache_aside_allocator allocator = {heap_alloc, NULL};

/* The "database": one current value for every key. */
typedef struct source {
    char value[64];
    int calls;
} source;

static int fill_from(void *data, const char *key, const cache_aside_allocator *alloc, void **value, size_t *length)
{
    (void)key;
    source *s = data;
    s->calls++;
    size_t n = strlen(s->value);
    *value = alloc->alloc(alloc->data, n);
    memcpy(*value, s->value, n);
    *length = n;
    return 0;
}

/* One node: its worker's connection, its L1 and its subscriber. */
typedef struct node {
    cache *cache;
    cache_l1 *l1;
    cache_invalidation *subscriber;
} node;

static void node_start(node *n, int l1_ttl_ms)
{
    char error[256];
    cache_config config = {.url = TEST_REDIS_URL(), .timeout_ms = 500};
    n->cache = cache_open(&config, error, sizeof error);
    assert_non_null(n->cache);
    cache_l1_config l1_config = {.max_entries = 1000, .ttl_ms = l1_ttl_ms};
    n->l1 = cache_l1_new(&l1_config);
    assert_non_null(n->l1);
    n->subscriber = cache_invalidation_start(&config, n->l1, error, sizeof error);
    assert_non_null(n->subscriber);
}

static void node_stop(node *n)
{
    cache_invalidation_stop(n->subscriber);
    cache_l1_free(n->l1);
    cache_close(n->cache);
}

/* At most timeout_ms, times the suite's time scale. */
static bool wait_subscribed(node *n, unsigned long subscriptions, int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)(timeout_ms * 1e6 * test_env_time_scale());
    while (now_ns() < deadline) {
        if (cache_invalidation_subscribed(n->subscriber) &&
            cache_invalidation_subscriptions(n->subscriber) >= subscriptions)
            return true;
        usleep(1000);
    }
    return false;
}

/* Reads through the node; returns the value (freed by the caller). */
static char *read_through(node *n, const char *family, const char *key, source *db, cache_aside_source *from)
{
    cache_aside_options options = {.ttl_ms = 60000, .stale_ms = 0};
    cache_aside_value value;
    assert_int_equal(cache_aside_get(n->cache, n->l1, family, key, &options, fill_from, db, &allocator, &value), 0);
    char *text = malloc(value.length + 1);
    memcpy(text, value.bytes, value.length);
    text[value.length] = '\0';
    free(value.bytes);
    if (from != NULL)
        *from = value.source;
    return text;
}

static bool in_l1(node *n, const char *family, const char *key)
{
    void *value = NULL;
    size_t length = 0;
    bool hit = cache_l1_get(n->l1, family, key, heap_alloc, NULL, &value, &length);
    free(value);
    return hit;
}

/* Waits until key has left n's L1, for at most timeout_ms (times the
 * suite's time scale); false if it is still there. Yields while it waits,
 * so that the subscriber's thread runs where threads take turns (valgrind
 * runs one at a time). */
static bool wait_gone_from_l1(node *n, const char *family, const char *key, int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)(timeout_ms * 1e6 * test_env_time_scale());
    while (in_l1(n, family, key)) {
        if (now_ns() >= deadline)
            return false;
        sched_yield();
    }
    return true;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void fresh_family(char *out, size_t size)
{
    static int counter;
    snprintf(out, size, "inv%d_%d_%ld", (int)getpid(), ++counter, (long)time(NULL));
}

static void a_write_on_a_is_not_served_stale_by_b(void **state)
{
    (void)state;
    node a, b;
    node_start(&a, 60000);
    node_start(&b, 60000);
    assert_true(wait_subscribed(&a, 1, 5000));
    assert_true(wait_subscribed(&b, 1, 5000));
    char family[64];
    fresh_family(family, sizeof family);
    source db = {.value = "v0"};

    static uint64_t windows[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        /* B holds the current value in its L1. */
        char expected[64];
        snprintf(expected, sizeof expected, "v%d", round);
        cache_aside_source from;
        char *got = read_through(&b, family, "article", &db, &from);
        assert_string_equal(got, expected);
        free(got);
        got = read_through(&b, family, "article", &db, &from);
        assert_string_equal(got, expected);
        assert_int_equal(from, CACHE_ASIDE_L1);
        free(got);

        /* A writes and invalidates; the clock runs from just before A's call
         * until B's L1 no longer has the entry. */
        snprintf(db.value, sizeof db.value, "v%d", round + 1);
        uint64_t start = now_ns();
        assert_int_equal(cache_aside_invalidate_family(a.cache, a.l1, family, NULL), CACHE_OK);
        uint64_t deadline = start + (uint64_t)(2e9 * test_env_time_scale());
        while (in_l1(&b, family, "article")) {
            assert_true(now_ns() < deadline);
            /* Lets the subscriber's thread run where threads take turns
             * (valgrind runs one at a time). */
            sched_yield();
        }
        windows[round] = now_ns() - start;
        /* and from then on B serves the new value, never the old one */
        snprintf(expected, sizeof expected, "v%d", round + 1);
        got = read_through(&b, family, "article", &db, &from);
        assert_string_equal(got, expected);
        free(got);
    }
    qsort(windows, ROUNDS, sizeof windows[0], compare_u64);
    double p50 = (double)windows[ROUNDS / 2] / 1e6, p99 = (double)windows[ROUNDS * 99 / 100] / 1e6,
           max = (double)windows[ROUNDS - 1] / 1e6;
    printf("invalidation window over %d rounds (A's invalidate call to B's L1 dropping the entry): "
           "p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           ROUNDS, p50, p99, max);
    fflush(stdout);
    assert_true(p99 < 100.0 * test_env_time_scale());
    node_stop(&a);
    node_stop(&b);
}

static void a_key_invalidation_reaches_the_other_node(void **state)
{
    (void)state;
    node a, b;
    node_start(&a, 60000);
    node_start(&b, 60000);
    assert_true(wait_subscribed(&a, 1, 5000));
    assert_true(wait_subscribed(&b, 1, 5000));
    char family[64];
    fresh_family(family, sizeof family);
    source db = {.value = "before"};
    free(read_through(&b, family, "one key", &db, NULL));
    free(read_through(&b, family, "other", &db, NULL));
    assert_true(in_l1(&b, family, "one key"));
    strcpy(db.value, "after");
    assert_int_equal(cache_aside_invalidate_key(a.cache, a.l1, family, "one key"), CACHE_OK);
    assert_true(wait_gone_from_l1(&b, family, "one key", 2000));
    assert_true(in_l1(&b, family, "other"));
    char *got = read_through(&b, family, "one key", &db, NULL);
    assert_string_equal(got, "after");
    free(got);
    node_stop(&a);
    node_stop(&b);
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

static void a_lost_subscription_flushes_and_resubscribes(void **state)
{
    (void)state;
    node a, b;
    node_start(&a, 60000);
    node_start(&b, 60000);
    assert_true(wait_subscribed(&a, 1, 5000));
    assert_true(wait_subscribed(&b, 1, 5000));
    char family[64];
    fresh_family(family, sizeof family);
    source db = {.value = "x"};
    free(read_through(&b, family, "k", &db, NULL));
    assert_true(in_l1(&b, family, "k"));

    long long id = cache_invalidation_client_id(b.subscriber);
    assert_true(id > 0);
    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "CLIENT KILL ID %lld", id);
    assert_non_null(reply);
    assert_int_equal(reply->integer, 1);
    freeReplyObject(reply);
    redisFree(admin);

    assert_true(wait_subscribed(&b, 2, 5000));
    assert_false(in_l1(&b, family, "k")); /* flushed: messages may have been missed */
    cache_l1_stats stats;
    cache_l1_get_stats(b.l1, &stats);
    assert_true(stats.flushes >= 2);

    /* and it works as before */
    free(read_through(&b, family, "k", &db, NULL));
    assert_true(in_l1(&b, family, "k"));
    assert_int_equal(cache_aside_invalidate_family(a.cache, a.l1, family, NULL), CACHE_OK);
    assert_true(wait_gone_from_l1(&b, family, "k", 2000));
    node_stop(&a);
    node_stop(&b);
}

/* Pub/sub may lose a message without the subscriber noticing at once (a
 * partition that sends no EOF lasts until the idle PING times out). The
 * L1's TTL bounds what such a loss costs: here the family's version moves
 * in Redis without a message, and B serves its old copy no longer than its
 * L1 TTL after storing it. */
static void a_missed_message_is_served_stale_no_longer_than_the_l1_ttl(void **state)
{
    (void)state;
    /* 300 ms, times the time scale: the premise read below (after a
     * connection and an INCR) must come inside it on any build. The bound
     * checked at the end is exact, whatever the TTL. */
    const int L1_TTL_MS = (int)(300 * test_env_time_scale());
    node b;
    node_start(&b, L1_TTL_MS);
    assert_true(wait_subscribed(&b, 1, 5000));
    char family[64];
    fresh_family(family, sizeof family);
    source db = {.value = "old"};
    free(read_through(&b, family, "k", &db, NULL));
    uint64_t stored = now_ns(); /* not before the entry was: its TTL runs from earlier */
    assert_true(in_l1(&b, family, "k"));

    /* The write: PostgreSQL changes and the version moves, but the message
     * never reaches B. */
    strcpy(db.value, "new");
    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "INCR shoal:cv:%s", family);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
    redisFree(admin);

    cache_aside_source from;
    char *got = read_through(&b, family, "k", &db, &from);
    assert_string_equal(got, "old"); /* the premise: B did not hear of it */
    assert_int_equal(from, CACHE_ASIDE_L1);
    free(got);
    uint64_t deadline = stored + (uint64_t)((L1_TTL_MS + 5000 * test_env_time_scale()) * 1e6);
    uint64_t last_stale = 0;
    for (;;) {
        uint64_t before = now_ns();
        got = read_through(&b, family, "k", &db, &from);
        bool fresh = strcmp(got, "new") == 0;
        free(got);
        if (fresh)
            break;
        last_stale = before;
        assert_true(now_ns() < deadline);
        usleep(5000);
    }
    double stale_ms = (double)(last_stale - stored) / 1e6;
    printf("a missed message: served stale for %.1f ms with an L1 TTL of %d ms\n", stale_ms, L1_TTL_MS);
    /* The L1's clock counts whole milliseconds. */
    assert_true(last_stale - stored <= (uint64_t)(L1_TTL_MS + 2) * 1000000u);
    /* and the new value is what B keeps from now on */
    got = read_through(&b, family, "k", &db, &from);
    assert_string_equal(got, "new");
    free(got);
    node_stop(&b);
}

/* 0 while there is no pid file (a restarted Redis writes it shortly
 * after it answers). */
static int resume_redis(void **state)
{
    (void)state;
    pid_t pid = test_env_read_redis_pid();
    if (pid > 1)
        kill(pid, SIGCONT);
    return 0;
}

static void harness(const char *variable)
{
    assert_int_equal(system(test_env_require(variable)), 0);
}

/* Restarts the fixture's Redis for real, through the harness: SIGTERM (it
 * writes its append-only file), then the same command line on the same
 * folder. */
static void restart_redis(void)
{
    pid_t pid = test_env_redis_pid();
    harness("SHOAL_TEST_REDIS_STOP");
    assert_int_not_equal(kill(pid, 0), 0);
    harness("SHOAL_TEST_REDIS_START");
    pid_t now = test_env_redis_pid();
    assert_true(now != pid);
}

/* Reads "k" through b until b's L1 holds it (at most 5 s, scaled): after a Redis
 * restart or hang, b's command connection reconnects at its own pace, and
 * until then a read bypasses the cache and fills no L1. */
static void read_until_cached(node *b, const char *family, source *db)
{
    uint64_t deadline = now_ns() + (uint64_t)(5e9 * test_env_time_scale());
    do
        free(read_through(b, family, "k", db, NULL));
    while (!in_l1(b, family, "k") && now_ns() < deadline);
    assert_true(in_l1(b, family, "k"));
}

static void the_subscriber_survives_a_redis_restart_and_a_hang(void **state)
{
    (void)state;
    node a, b;
    node_start(&a, 60000);
    node_start(&b, 60000);
    assert_true(wait_subscribed(&a, 1, 5000));
    assert_true(wait_subscribed(&b, 1, 5000));
    char family[64];
    fresh_family(family, sizeof family);
    source db = {.value = "x"};
    free(read_through(&b, family, "k", &db, NULL));
    assert_true(in_l1(&b, family, "k"));

    restart_redis();
    assert_true(wait_subscribed(&b, 2, 10000));
    assert_false(in_l1(&b, family, "k"));
    read_until_cached(&b, family, &db);

    /* A hung Redis sends no EOF: the unanswered PING finds it. While the
     * subscriber is not subscribed the L1 serves nothing. */
    pid_t redis = test_env_redis_pid();
    assert_int_equal(kill(redis, SIGSTOP), 0);
    uint64_t deadline = now_ns() + (uint64_t)(5e9 * test_env_time_scale());
    while (cache_invalidation_subscribed(b.subscriber)) {
        assert_true(now_ns() < deadline);
        sched_yield();
    }
    assert_false(in_l1(&b, family, "k"));
    assert_int_equal(kill(redis, SIGCONT), 0);
    assert_true(wait_subscribed(&b, 3, 10000));

    /* coherent again, once b's command connection is back as well */
    read_until_cached(&b, family, &db);
    assert_true(wait_subscribed(&a, 2, 10000));
    assert_int_equal(cache_aside_invalidate_family(a.cache, a.l1, family, NULL), CACHE_OK);
    assert_true(wait_gone_from_l1(&b, family, "k", 2000));
    node_stop(&a);
    node_stop(&b);
}

static void stop_is_prompt_without_redis(void **state)
{
    (void)state;
    char error[256];
    cache_config config = {.url = "redis://127.0.0.1:1/0", .timeout_ms = 200};
    cache_l1_config l1_config = {.max_entries = 10, .ttl_ms = 1000};
    cache_l1 *l1 = cache_l1_new(&l1_config);
    cache_invalidation *subscriber = cache_invalidation_start(&config, l1, error, sizeof error);
    assert_non_null(subscriber);
    usleep(300 * 1000);
    assert_false(cache_invalidation_subscribed(subscriber));
    /* suspended: nothing stored while no messages can arrive */
    assert_false(cache_l1_put(l1, "f", 1, "k", "v", 1, cache_l1_sequence(l1)));
    uint64_t start = now_ns();
    cache_invalidation_stop(subscriber);
    assert_true(now_ns() - start < (uint64_t)(5e8 * test_env_time_scale()));
    assert_null(cache_invalidation_start(&(cache_config){.url = "http://nope"}, l1, error, sizeof error));
    cache_l1_free(l1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_write_on_a_is_not_served_stale_by_b),
        cmocka_unit_test(a_key_invalidation_reaches_the_other_node),
        cmocka_unit_test(a_lost_subscription_flushes_and_resubscribes),
        cmocka_unit_test(a_missed_message_is_served_stale_no_longer_than_the_l1_ttl),
        cmocka_unit_test_teardown(the_subscriber_survives_a_redis_restart_and_a_hang, resume_redis),
        cmocka_unit_test(stop_is_prompt_without_redis),
    };
    return cmocka_run_group_tests_name("integration.cache.invalidation", tests, NULL, NULL);
}
