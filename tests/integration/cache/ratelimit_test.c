/* tests/integration/cache/ratelimit_test.c: cache/ratelimit.c against a
 * real Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/cache.h>

#include "ratelimit.h"
#include "test_env.h"

static cache *open_cache(void)
{
    char error[256];
    cache_config config = {.url = TEST_REDIS_URL(), .timeout_ms = 1000};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    return c;
}

/* Each test gets keys of its own: the fixture's Redis outlives the run. */
static void unique_key(const char *name, char *out, size_t size)
{
    unsigned long long nonce = 0;
    assert_int_equal(getrandom(&nonce, sizeof nonce, 0), (ssize_t)sizeof nonce);
    snprintf(out, size, "rl:test:%s:%llx", name, nonce);
}

static cache_ratelimit_result check(cache *c, const char *key, const cache_ratelimit_limit *limit)
{
    cache_ratelimit_result result;
    assert_int_equal(cache_ratelimit_check(c, key, strlen(key), limit, &result), CACHE_OK);
    return result;
}

static void a_burst_is_allowed_then_limited(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[64];
    unique_key("burst", key, sizeof key);
    /* 5 per minute, 3 back to back. */
    cache_ratelimit_limit limit = {.count = 5, .period_ms = 60000, .burst = 3};
    for (int i = 0; i < 3; i++) {
        cache_ratelimit_result result = check(c, key, &limit);
        assert_true(result.allowed);
        assert_int_equal(result.remaining, 2 - i);
    }
    cache_ratelimit_result limited = check(c, key, &limit);
    assert_false(limited.allowed);
    assert_int_equal(limited.remaining, 0);
    /* One emission interval (12 s), less the little time the calls took. */
    assert_true(limited.retry_after_ms > 11000);
    assert_true(limited.retry_after_ms <= 12000);
    /* A limited request does not push the next slot further away. */
    cache_ratelimit_result again = check(c, key, &limit);
    assert_false(again.allowed);
    assert_true(again.retry_after_ms <= limited.retry_after_ms);
    cache_close(c);
}

static void the_bucket_refills_at_the_sustained_rate(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[64];
    unique_key("refill", key, sizeof key);
    /* 10 per period: one every 100 ms (times SHOAL_TEST_TIME_SCALE, so that
     * three calls fit in one interval on any build), 2 back to back. */
    long long interval_ms = (long long)(100 * test_env_time_scale());
    cache_ratelimit_limit limit = {.count = 10, .period_ms = 10 * interval_ms, .burst = 2};
    assert_true(check(c, key, &limit).allowed);
    assert_true(check(c, key, &limit).allowed);
    cache_ratelimit_result limited = check(c, key, &limit);
    assert_false(limited.allowed);
    assert_true(limited.retry_after_ms > 0 && limited.retry_after_ms <= interval_ms);
    usleep((useconds_t)(limited.retry_after_ms + interval_ms / 5) * 1000);
    assert_true(check(c, key, &limit).allowed);
    assert_false(check(c, key, &limit).allowed);
    cache_close(c);
}

static void two_connections_share_one_limit(void **state)
{
    (void)state;
    /* As two nodes: separate connections, one key. */
    cache *first = open_cache();
    cache *second = open_cache();
    char key[64];
    unique_key("shared", key, sizeof key);
    cache_ratelimit_limit limit = {.count = 4, .period_ms = 60000, .burst = 4};
    int allowed = 0;
    for (int i = 0; i < 8; i++)
        allowed += check(i % 2 == 0 ? first : second, key, &limit).allowed;
    assert_int_equal(allowed, 4);
    assert_false(check(first, key, &limit).allowed);
    assert_false(check(second, key, &limit).allowed);
    cache_close(first);
    cache_close(second);
}

static void the_key_expires_when_the_bucket_is_full_again(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[64];
    unique_key("expiry", key, sizeof key);
    /* 200 ms, times the scale: the two calls come within it on any build. */
    long long period_ms = (long long)(200 * test_env_time_scale());
    cache_ratelimit_limit limit = {.count = 1, .period_ms = period_ms, .burst = 1};
    assert_true(check(c, key, &limit).allowed);
    assert_false(check(c, key, &limit).allowed);
    usleep((useconds_t)(period_ms * 5 / 4) * 1000);
    assert_true(check(c, key, &limit).allowed);
    cache_close(c);
}

static cache_ratelimit_result peek(cache *c, const char *key, const cache_ratelimit_limit *limit)
{
    cache_ratelimit_result result;
    assert_int_equal(cache_ratelimit_peek(c, key, strlen(key), limit, &result), CACHE_OK);
    return result;
}

static void peeking_decides_without_counting(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[64];
    unique_key("peek", key, sizeof key);
    /* 3 per minute, all 3 back to back: one every 20 s. */
    cache_ratelimit_limit limit = {.count = 3, .period_ms = 60000, .burst = 3};
    for (int i = 0; i < 5; i++) {
        cache_ratelimit_result looked = peek(c, key, &limit);
        assert_true(looked.allowed);
        assert_int_equal(looked.remaining, 3);
        assert_int_equal(looked.reset_ms, 0);
    }
    cache_ratelimit_result counted = check(c, key, &limit);
    assert_true(counted.allowed);
    assert_int_equal(counted.remaining, 2);
    /* Full again one interval after the one request. */
    assert_true(counted.reset_ms > 19000 && counted.reset_ms <= 20000);
    assert_int_equal(peek(c, key, &limit).remaining, 2);
    assert_true(check(c, key, &limit).allowed);
    counted = check(c, key, &limit);
    assert_true(counted.allowed);
    assert_int_equal(counted.remaining, 0);
    assert_true(counted.reset_ms > 59000 && counted.reset_ms <= 60000);
    cache_ratelimit_result looked = peek(c, key, &limit);
    assert_false(looked.allowed);
    assert_true(looked.retry_after_ms > 19000 && looked.retry_after_ms <= 20000);
    assert_true(looked.reset_ms > 59000 && looked.reset_ms <= 60000);
    cache_close(c);
}

static void limits_that_would_overflow_are_refused(void **state)
{
    (void)state;
    cache *c = open_cache();
    cache_ratelimit_limit limit = {.count = 1, .period_ms = 86400000LL * 365, .burst = 1LL << 40};
    cache_ratelimit_result result;
    assert_int_equal(cache_ratelimit_check(c, "rl:test:overflow", 16, &limit, &result), CACHE_ERROR);
    limit = (cache_ratelimit_limit){.count = 0, .period_ms = 1000, .burst = 1};
    assert_int_equal(cache_ratelimit_check(c, "rl:test:overflow", 16, &limit, &result), CACHE_ERROR);
    cache_close(c);
}

static void an_unreachable_redis_is_reported_and_allowed(void **state)
{
    (void)state;
    char error[256];
    cache_config config = {.url = "redis://127.0.0.1:1/0", .timeout_ms = 200};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    cache_ratelimit_limit limit = {.count = 1, .period_ms = 1000, .burst = 1};
    cache_ratelimit_result result;
    assert_int_equal(cache_ratelimit_check(c, "rl:x", 4, &limit, &result), CACHE_UNAVAILABLE);
    assert_true(result.allowed);
    cache_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_burst_is_allowed_then_limited),
        cmocka_unit_test(the_bucket_refills_at_the_sustained_rate),
        cmocka_unit_test(two_connections_share_one_limit),
        cmocka_unit_test(the_key_expires_when_the_bucket_is_full_again),
        cmocka_unit_test(peeking_decides_without_counting),
        cmocka_unit_test(limits_that_would_overflow_are_refused),
        cmocka_unit_test(an_unreachable_redis_is_reported_and_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
