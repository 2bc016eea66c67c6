/* tests/unit/node/lib/random_test.c: node/lib/random.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/random.h>

static void test_draws_stay_within_the_bounds_and_reach_both(void **state)
{
    (void)state;
    shoal_random generator;
    shoal_random_seed_with(&generator, 42);
    bool low_seen = false, high_seen = false;
    for (int i = 0; i < 200000; i++) {
        int value = shoal_random_between(&generator, 1, 10000);
        assert_in_range(value, 1, 10000);
        low_seen |= value == 1;
        high_seen |= value == 10000;
    }
    assert_true(low_seen);
    assert_true(high_seen);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(shoal_random_between(&generator, 7, 7), 7);
}

static void test_draws_spread_evenly(void **state)
{
    (void)state;
    shoal_random generator;
    shoal_random_seed_with(&generator, 7);
    int buckets[10] = {0};
    const int draws = 100000;
    for (int i = 0; i < draws; i++)
        buckets[(shoal_random_between(&generator, 1, 10000) - 1) / 1000]++;
    /* 10000 expected per bucket; 5 % off is about 16 standard deviations. */
    for (int i = 0; i < 10; i++)
        assert_in_range(buckets[i], 9500, 10500);
}

static void test_seeds_give_distinct_streams(void **state)
{
    (void)state;
    shoal_random a, b, c, d;
    shoal_random_seed_with(&a, 1);
    shoal_random_seed_with(&b, 1);
    shoal_random_seed_with(&c, 2);
    assert_int_equal(shoal_random_next(&a), shoal_random_next(&b));
    assert_int_not_equal(shoal_random_next(&a), shoal_random_next(&c));
    shoal_random_seed(&d);
    assert_true((d.state[0] | d.state[1] | d.state[2] | d.state[3]) != 0);
    void *created = shoal_random_create(NULL);
    assert_non_null(created);
    free(created);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draws_stay_within_the_bounds_and_reach_both),
        cmocka_unit_test(test_draws_spread_evenly),
        cmocka_unit_test(test_seeds_give_distinct_streams),
    };
    return cmocka_run_group_tests_name("node/random", tests, NULL, NULL);
}
