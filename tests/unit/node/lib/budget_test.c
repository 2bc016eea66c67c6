/* tests/unit/node/lib/budget_test.c: node/lib/budget.c and store_capacity_free, the
 * arithmetic of the PostgreSQL connection budget (the server's side is read
 * by tests/integration/node/budget_test.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <shoal/budget.h>
#include <shoal/config.h>
#include <shoal/health.h>

static shoal_config with_threads(int threads)
{
    shoal_config config;
    memset(&config, 0, sizeof config);
    config.threads = threads;
    return config;
}

static void test_a_node_holds_two_connections_per_thread_and_one_for_its_monitor(void **state)
{
    (void)state;
    shoal_config one = with_threads(1);
    shoal_config four = with_threads(4);
    assert_int_equal(SHOAL_TIER_MONITOR_POSTGRES_CONNECTIONS, 1);
    assert_int_equal(shoal_budget_postgres_connections(&one), 3);
    assert_int_equal(shoal_budget_postgres_connections(&four), 9);
}

/* With the spill lane (--database-spill-after-ms, on by default) each
 * worker's pipe may hold a second connection while a statement stalls it:
 * the budget counts every worker's at once. */
static void test_the_spill_lane_makes_three_per_thread(void **state)
{
    (void)state;
    shoal_config four = with_threads(4);
    four.database_spill_after_ms = 20;
    assert_int_equal(shoal_budget_postgres_connections(&four), 13);
    char line[1024];
    shoal_budget_describe(&four, &(store_capacity){.max_connections = 20, .reserved = 3, .in_use = 12}, line,
                          sizeof line);
    const char *past[] = {"13 PostgreSQL connections", "3 for each of 4 worker threads", "spills", "8 of its connections",
                          "(3 x threads + 2)"};
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++)
        if (strstr(line, past[i]) == NULL)
            fail_msg("'%s' not in: %s", past[i], line);
}

static void test_free_connections_leave_out_reserved_slots_and_sessions_in_use(void **state)
{
    (void)state;
    assert_int_equal(store_capacity_free(&(store_capacity){.max_connections = 100}), 100);
    assert_int_equal(store_capacity_free(&(store_capacity){.max_connections = 100, .reserved = 3}), 97);
    assert_int_equal(store_capacity_free(&(store_capacity){.max_connections = 100, .reserved = 3, .in_use = 90}), 7);
    /* Superusers may be in the reserved slots: more in use than an
     * ordinary role could have opened is none free, not fewer than none. */
    assert_int_equal(store_capacity_free(&(store_capacity){.max_connections = 100, .reserved = 3, .in_use = 99}), 0);
}

static void test_a_node_fits_when_there_are_at_least_as_many_free(void **state)
{
    (void)state;
    store_capacity capacity = {.max_connections = 180, .reserved = 3, .in_use = 168}; /* 9 free */
    assert_true(shoal_budget_fits(8, &capacity));
    assert_true(shoal_budget_fits(9, &capacity));
    assert_false(shoal_budget_fits(10, &capacity));
    capacity.in_use = 169; /* 8 free: one more session elsewhere tips a node of 9 over */
    assert_false(shoal_budget_fits(9, &capacity));
    assert_true(shoal_budget_fits(0, &(store_capacity){.max_connections = 3, .reserved = 3}));
}

/* The compose stack: PostgreSQL with max_connections 180 (3 reserved),
 * nodes of 4 threads hold 13 each at most (the spill lane on, as by
 * default): the 14th node is the first that does not fit. */
static void test_the_compose_stack_feeds_thirteen_nodes_of_four_threads(void **state)
{
    (void)state;
    shoal_config node = with_threads(4);
    node.database_spill_after_ms = 20;
    int needed = shoal_budget_postgres_connections(&node);
    int nodes = 0;
    store_capacity capacity = {.max_connections = 180, .reserved = 3};
    while (shoal_budget_fits(needed, &capacity)) {
        capacity.in_use += needed;
        nodes++;
    }
    assert_int_equal(nodes, 13);
}

static void test_the_line_names_every_number_and_past_the_budget_the_fixes(void **state)
{
    (void)state;
    shoal_config config = with_threads(4);
    char line[1024];
    shoal_budget_describe(&config, &(store_capacity){.max_connections = 20, .reserved = 3, .in_use = 12}, line,
                          sizeof line);
    const char *past[] = {"9 PostgreSQL connections", "2 for each of 4 worker threads", "1 tier monitor", "5 free",
                          "max_connections 20", "3 reserved", "12 in use", "4 of its connections", "Raise max_connections",
                          "fewer --threads", "PgBouncer"};
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++)
        if (strstr(line, past[i]) == NULL)
            fail_msg("'%s' not in: %s", past[i], line);

    shoal_budget_describe(&config, &(store_capacity){.max_connections = 200, .reserved = 3, .in_use = 10}, line,
                          sizeof line);
    assert_non_null(strstr(line, "187 free"));
    assert_null(strstr(line, "PgBouncer")); /* it fits: no advice */

    /* A short buffer is cut, never overrun. */
    char short_line[16];
    shoal_budget_describe(&config, &(store_capacity){.max_connections = 20, .reserved = 3, .in_use = 12}, short_line,
                          sizeof short_line);
    assert_int_equal(strlen(short_line), sizeof short_line - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_node_holds_two_connections_per_thread_and_one_for_its_monitor),
        cmocka_unit_test(test_free_connections_leave_out_reserved_slots_and_sessions_in_use),
        cmocka_unit_test(test_a_node_fits_when_there_are_at_least_as_many_free),
        cmocka_unit_test(test_the_compose_stack_feeds_thirteen_nodes_of_four_threads),
        cmocka_unit_test(test_the_spill_lane_makes_three_per_thread),
        cmocka_unit_test(test_the_line_names_every_number_and_past_the_budget_the_fixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
