/* tests/unit/node/services/techempower/query_count_test.c: node/services/techempower/query_count.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "techempower/query_count.h"

static void test_missing_empty_and_non_numeric_give_one(void **state)
{
    (void)state;
    assert_int_equal(bench_query_count(NULL), 1);
    assert_int_equal(bench_query_count(""), 1);
    assert_int_equal(bench_query_count("foo"), 1);
    assert_int_equal(bench_query_count("-"), 1);
    assert_int_equal(bench_query_count("+"), 1);
    assert_int_equal(bench_query_count("12abc"), 1);
    assert_int_equal(bench_query_count(" 5"), 1);
    assert_int_equal(bench_query_count("5 "), 1);
    assert_int_equal(bench_query_count("1.5"), 1);
    assert_int_equal(bench_query_count("0x10"), 1);
}

static void test_below_one_gives_one(void **state)
{
    (void)state;
    assert_int_equal(bench_query_count("0"), 1);
    assert_int_equal(bench_query_count("-5"), 1);
    assert_int_equal(bench_query_count("-0"), 1);
    assert_int_equal(bench_query_count("-99999999999999999999999"), 1);
}

static void test_in_range_is_taken_as_it_is(void **state)
{
    (void)state;
    assert_int_equal(bench_query_count("1"), 1);
    assert_int_equal(bench_query_count("20"), 20);
    assert_int_equal(bench_query_count("+20"), 20);
    assert_int_equal(bench_query_count("007"), 7);
    assert_int_equal(bench_query_count("499"), 499);
    assert_int_equal(bench_query_count("500"), 500);
}

static void test_above_five_hundred_gives_five_hundred(void **state)
{
    (void)state;
    assert_int_equal(bench_query_count("501"), 500);
    assert_int_equal(bench_query_count("100000"), 500);
    assert_int_equal(bench_query_count("2147483648"), 500);
    assert_int_equal(bench_query_count("99999999999999999999999999999999"), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_empty_and_non_numeric_give_one),
        cmocka_unit_test(test_below_one_gives_one),
        cmocka_unit_test(test_in_range_is_taken_as_it_is),
        cmocka_unit_test(test_above_five_hundred_gives_five_hundred),
    };
    return cmocka_run_group_tests_name("node/services/techempower/query_count", tests, NULL, NULL);
}
