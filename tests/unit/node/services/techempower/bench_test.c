/* tests/unit/node/services/techempower/bench_test.c: node/services/techempower/bench.c through the
 * pipeline, for what needs no server (the routes that read PostgreSQL are
 * in tests/integration/node/services/techempower/bench_test.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "techempower/bench.h"
#include "fake_request.h"

typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    fake_request request;
} fixture;

static int setup_with(void **state, const char *const *flags)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    fake_config_load(&f.config, flags);
    f.app = shoal_app_new(&f.config);
    assert_non_null(f.app);
    assert_int_equal(shoal_app_extend(f.app, &shoal_bench_extension), 0);
    assert_int_equal(shoal_app_freeze(f.app), 0);
    *state = &f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

static int setup_disabled(void **state)
{
    return setup_with(state, (const char *const[]){"--bench", "false", NULL});
}

static int teardown(void **state)
{
    fixture *f = *state;
    shoal_app_free(f->app);
    shoal_config_free(&f->config);
    return 0;
}

static fake_request *get(fixture *f, const char *path)
{
    fake_request_init(&f->request, f->app, NULL, "GET", path);
    fake_request_dispatch(&f->request);
    return &f->request;
}

static void test_json_is_the_message_object(void **state)
{
    fixture *f = *state;
    fake_request *r = get(f, "/json");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(r->ctx.content_type, "application/json");
    assert_string_equal(fake_response_body(r), "{\"message\":\"Hello, World!\"}");
    assert_int_equal(r->ctx.response_length, strlen("{\"message\":\"Hello, World!\"}"));
    /* Serialised per request: the bytes are written into this request's
     * own memory, not served from a prepared buffer. */
    assert_true((const unsigned char *)r->ctx.response_body >= r->arena_block &&
                (const unsigned char *)r->ctx.response_body < r->arena_block + sizeof r->arena_block);
    fake_request_finish(r);
}

static void test_plaintext_is_hello_world(void **state)
{
    fixture *f = *state;
    fake_request *r = get(f, "/plaintext");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(r->ctx.content_type, "text/plain");
    assert_int_equal(r->ctx.response_length, 13);
    assert_memory_equal(r->ctx.response_body, "Hello, World!", 13);
    fake_request_finish(r);
}

static void test_head_is_served_like_get(void **state)
{
    fixture *f = *state;
    fake_request_init(&f->request, f->app, NULL, "HEAD", "/plaintext");
    fake_request_dispatch(&f->request);
    assert_int_equal(f->request.ctx.status, 200);
    assert_string_equal(f->request.ctx.content_type, "text/plain");
    fake_request_finish(&f->request);
}

static void test_other_methods_get_405(void **state)
{
    fixture *f = *state;
    fake_request_init(&f->request, f->app, NULL, "POST", "/json");
    fake_request_dispatch(&f->request);
    assert_error_envelope(&f->request, 405, "route.method_not_allowed", "body");
    fake_request_finish(&f->request);
}

static void test_database_routes_without_a_worker_answer_500(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"/db", "/queries", "/updates", "/fortunes", "/cached-queries"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        fake_request *r = get(f, paths[i]);
        assert_error_envelope(r, 500, "internal", "body");
        fake_request_finish(r);
    }
}

static void test_disabled_routes_are_not_there(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"/json", "/plaintext", "/db", "/queries", "/updates", "/fortunes", "/cached-queries"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        fake_request *r = get(f, paths[i]);
        assert_error_envelope(r, 404, "route.not_found", "body");
        fake_request_finish(r);
    }
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_json_is_the_message_object),
        TEST(test_plaintext_is_hello_world),
        TEST(test_head_is_served_like_get),
        TEST(test_other_methods_get_405),
        TEST(test_database_routes_without_a_worker_answer_500),
        cmocka_unit_test_setup_teardown(test_disabled_routes_are_not_there, setup_disabled, teardown),
    };
    return cmocka_run_group_tests_name("node/services/techempower/bench", tests, NULL, NULL);
}
