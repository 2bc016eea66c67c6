/* tests/unit/node/lib/tiers_test.c: node/lib/tiers.c, how store failures answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <shoal/shoal.h>

#include "fake_request.h"
#include "store_internal.h"

typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    store *store;
    fake_request request;
} fixture;

static int set_up(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fake_config_load(&f->config, NULL);
    f->app = shoal_app_new(&f->config);
    assert_non_null(f->app);
    /* Nothing connects at open: failures are recorded by hand below. */
    store_config config = {.conninfo = "postgresql://127.0.0.1:1/none"};
    f->store = store_open(&config);
    assert_non_null(f->store);
    fake_request_init(&f->request, f->app, NULL, "POST", "/api/users");
    *state = f;
    return 0;
}

static int tear_down(void **state)
{
    fixture *f = *state;
    fake_request_finish(&f->request);
    store_close(f->store);
    shoal_app_free(f->app);
    shoal_config_free(&f->config);
    free(f);
    return 0;
}

static void fail_with(fixture *f, store_status status, const char *field)
{
    store_fail(f->store, status, "PostgreSQL's secret text");
    f->store->last_error.field = field;
}

static void assert_not_leaked(fixture *f)
{
    assert_null(strstr(fake_response_body(&f->request), "secret"));
}

static void outages_answer_503_with_retry_after(void **state)
{
    fixture *f = *state;
    static const struct {
        store_status status;
        const char *code;
    } cases[] = {
        {STORE_UNAVAILABLE, "store.unavailable"},
        {STORE_TIMEOUT, "store.timeout"},
        {STORE_BUSY, "store.busy"},
    };
    for (size_t i = 0; i < 3; i++) {
        fake_request_finish(&f->request);
        fake_request_init(&f->request, f->app, NULL, "GET", "/db");
        fail_with(f, cases[i].status, NULL);
        assert_int_equal(shoal_error_from_store(&f->request.ctx, f->store), 0);
        assert_error_envelope(&f->request, 503, cases[i].code, "body");
        assert_string_equal(shoal_response_header(&f->request.ctx, "Retry-After"), "1");
        assert_not_leaked(f);
    }
}

static void a_deadline_answers_503_with_its_own_code(void **state)
{
    fixture *f = *state;
    fail_with(f, STORE_DEADLINE, NULL);
    assert_int_equal(shoal_error_from_store(&f->request.ctx, f->store), 0);
    assert_error_envelope(&f->request, 503, "request.deadline_exceeded", "body");
    assert_string_equal(shoal_response_header(&f->request.ctx, "Retry-After"), "1");
    assert_not_leaked(f);
}

static void violations_answer_422_naming_the_field(void **state)
{
    fixture *f = *state;
    fail_with(f, STORE_CONFLICT, "email");
    shoal_error_from_store(&f->request.ctx, f->store);
    assert_error_envelope(&f->request, 422, "store.conflict", "email");
    assert_non_null(strstr(fake_response_body(&f->request), "has already been taken"));
    assert_null(shoal_response_header(&f->request.ctx, "Retry-After"));

    fake_request_finish(&f->request);
    fake_request_init(&f->request, f->app, NULL, "POST", "/api/users");
    fail_with(f, STORE_INVALID, "bio");
    shoal_error_from_store(&f->request.ctx, f->store);
    assert_error_envelope(&f->request, 422, "store.invalid", "bio");
    assert_non_null(strstr(fake_response_body(&f->request), "is invalid"));

    /* Without a mapped field the body is at fault. */
    fake_request_finish(&f->request);
    fake_request_init(&f->request, f->app, NULL, "POST", "/api/users");
    fail_with(f, STORE_CONFLICT, NULL);
    shoal_error_from_store(&f->request.ctx, f->store);
    assert_error_envelope(&f->request, 422, "store.conflict", "body");
}

static void not_found_answers_404_and_the_rest_500(void **state)
{
    fixture *f = *state;
    fail_with(f, STORE_NOT_FOUND, NULL);
    shoal_error_from_store(&f->request.ctx, f->store);
    assert_error_envelope(&f->request, 404, "store.not_found", "body");

    fake_request_finish(&f->request);
    fake_request_init(&f->request, f->app, NULL, "GET", "/db");
    fail_with(f, STORE_ERROR, NULL);
    shoal_error_from_store(&f->request.ctx, f->store);
    assert_error_envelope(&f->request, 500, "store.error", "body");
    assert_not_leaked(f);

    /* No store at all (a request without a worker) is an internal error. */
    fake_request_finish(&f->request);
    fake_request_init(&f->request, f->app, NULL, "GET", "/db");
    shoal_error_from_store(&f->request.ctx, NULL);
    assert_error_envelope(&f->request, 500, "store.error", "body");
}

static void the_app_owns_the_registry(void **state)
{
    fixture *f = *state;
    store_registry *registry = shoal_app_statements(f->app);
    assert_non_null(registry);
    assert_int_equal(store_registry_add(registry, "one", "SELECT 1", 0), 0);
    assert_int_equal(shoal_app_freeze(f->app), 0);
    assert_true(store_registry_frozen(registry));
    assert_int_equal(store_registry_add(registry, "two", "SELECT 2", 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(outages_answer_503_with_retry_after, set_up, tear_down),
        cmocka_unit_test_setup_teardown(a_deadline_answers_503_with_its_own_code, set_up, tear_down),
        cmocka_unit_test_setup_teardown(violations_answer_422_naming_the_field, set_up, tear_down),
        cmocka_unit_test_setup_teardown(not_found_answers_404_and_the_rest_500, set_up, tear_down),
        cmocka_unit_test_setup_teardown(the_app_owns_the_registry, set_up, tear_down),
    };
    return cmocka_run_group_tests_name("unit.node.tiers", tests, NULL, NULL);
}
