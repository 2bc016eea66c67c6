/* tests/unit/node/lib/overload_test.c: node/lib/overload.c, the refusals for the
 * node's own load and how a request's deadline is set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fake_request.h"

static void request_start_is_microseconds_with_or_without_t(void **state)
{
    (void)state;
    uint64_t us = 0;
    assert_true(shoal_request_start_parse("t=1700000000123456", &us));
    assert_int_equal(us, 1700000000123456ull);
    assert_true(shoal_request_start_parse("1700000000123456", &us));
    assert_int_equal(us, 1700000000123456ull);
    static const char *const invalid[] = {"", "t=", "t=-5", "t= 5", "t=12x", "T=12", "1.5", "t=99999999999999999999999"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        assert_false(shoal_request_start_parse(invalid[i], &us));
    assert_false(shoal_request_start_parse(NULL, &us));
}

static void the_deadline_is_the_budget_less_the_wait(void **state)
{
    (void)state;
    const uint64_t ms = 1000000u;
    assert_int_equal(shoal_request_deadline(5000 * ms, 0, 0), 0); /* no deadline */
    assert_int_equal(shoal_request_deadline(5000 * ms, 200, 0), 5200 * ms);
    assert_int_equal(shoal_request_deadline(5000 * ms, 200, 150 * ms), 5050 * ms);
    /* Waited the whole budget or more: due on arrival. */
    assert_int_equal(shoal_request_deadline(5000 * ms, 200, 200 * ms), 5000 * ms);
    assert_int_equal(shoal_request_deadline(5000 * ms, 200, 900000 * ms), 5000 * ms);
    assert_int_equal(shoal_request_deadline(0, 200, 200 * ms), 1); /* never 0, which is "none" */
}

static void refusals_are_503_with_retry_after_and_a_code(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    assert_non_null(app);
    fake_request r;
    fake_request_init(&r, app, NULL, "GET", "/api/articles");
    assert_int_equal(shoal_error_overloaded(&r.ctx), 0);
    assert_error_envelope(&r, 503, "node.overloaded", "body");
    assert_string_equal(shoal_response_header(&r.ctx, "Retry-After"), "1");
    fake_request_finish(&r);
    fake_request_init(&r, app, NULL, "GET", "/api/articles");
    assert_false(shoal_deadline_passed(&r.ctx)); /* 0: none */
    assert_int_equal(shoal_error_deadline(&r.ctx), 0);
    assert_error_envelope(&r, 503, "request.deadline_exceeded", "body");
    assert_string_equal(shoal_response_header(&r.ctx, "Retry-After"), "1");
    fake_request_finish(&r);
    shoal_app_free(app);
    shoal_config_free(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_start_is_microseconds_with_or_without_t),
        cmocka_unit_test(the_deadline_is_the_budget_less_the_wait),
        cmocka_unit_test(refusals_are_503_with_retry_after_and_a_code),
    };
    return cmocka_run_group_tests_name("node/overload", tests, NULL, NULL);
}
