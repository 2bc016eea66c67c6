/* tests/unit/store/run_test.c: store/run.c's deadline, which refuses work
 * before anything reaches PostgreSQL, so no server is needed: the store
 * points at a port where none listens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include <shoal/store.h>

static uint64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static store *open_nowhere(void)
{
    store_config config = {.conninfo = "postgresql://127.0.0.1:1/none", .connect_timeout_s = 1};
    store *s = store_open(&config);
    assert_non_null(s);
    return s;
}

static store_status never_called(store *s, void *data)
{
    (void)s;
    *(int *)data = 1;
    return STORE_OK;
}

static void past_the_deadline_nothing_is_sent(void **state)
{
    (void)state;
    store *s = open_nowhere();
    store_set_deadline(s, now_ns() - 1);

    store_result *result = (store_result *)(uintptr_t)1;
    assert_int_equal(store_run(s, 0, NULL, &result), STORE_DEADLINE);
    assert_null(result);
    assert_int_equal(store_last_error(s)->status, STORE_DEADLINE);

    store_batch_item items[2] = {{.statement = 0}, {.statement = 1}};
    assert_int_equal(store_batch(s, items, 2), STORE_DEADLINE);
    assert_int_equal(items[0].status, STORE_DEADLINE);
    assert_int_equal(items[1].status, STORE_DEADLINE);
    assert_null(items[1].result);

    int called = 0;
    assert_int_equal(store_transaction(s, STORE_READ_COMMITTED, never_called, &called), STORE_DEADLINE);
    assert_int_equal(called, 0);

    /* Refused work is no call, and no connection was tried. */
    store_stats stats;
    store_stats_read(s, &stats);
    assert_int_equal(stats.calls, 0);
    assert_int_equal(stats.errors, 0);
    assert_false(store_connected(s));
    store_close(s);
}

static void before_the_deadline_or_without_one_the_call_goes_out(void **state)
{
    (void)state;
    store *s = open_nowhere();
    store_result *result = NULL;
    /* The call is made (and fails: no statement is registered here). */
    store_set_deadline(s, now_ns() + 60ull * 1000000000u);
    assert_int_equal(store_run(s, 0, NULL, &result), STORE_ERROR);
    store_set_deadline(s, 0);
    assert_int_equal(store_ping(s), STORE_UNAVAILABLE);
    store_stats stats;
    store_stats_read(s, &stats);
    assert_int_equal(stats.calls, 1);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(past_the_deadline_nothing_is_sent),
        cmocka_unit_test(before_the_deadline_or_without_one_the_call_goes_out),
    };
    return cmocka_run_group_tests_name("store/run", tests, NULL, NULL);
}
