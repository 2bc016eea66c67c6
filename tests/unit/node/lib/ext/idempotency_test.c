/* tests/unit/node/lib/ext/idempotency_test.c: node/lib/ext/idempotency.c without
 * Redis: which keys are accepted, which answers are kept, and which
 * requests never ask Redis at all (no worker: the cache is unavailable, so
 * any request that asks answers 503). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <shoal/ext/idempotency.h>

#include "fake_request.h"

static void keys_are_1_to_255_printable_ascii_bytes(void **state)
{
    (void)state;
    assert_true(shoal_idempotency_key_valid("8e03978e-40d5-43e8-bc93-6894a57f9324"));
    assert_true(shoal_idempotency_key_valid("a"));
    assert_true(shoal_idempotency_key_valid("\"quoted\" and ~spaced~"));
    char longest[256];
    memset(longest, 'k', 255);
    longest[255] = '\0';
    assert_true(shoal_idempotency_key_valid(longest));

    char too_long[257];
    memset(too_long, 'k', 256);
    too_long[256] = '\0';
    assert_false(shoal_idempotency_key_valid(too_long));
    assert_false(shoal_idempotency_key_valid(NULL));
    assert_false(shoal_idempotency_key_valid(""));
    assert_false(shoal_idempotency_key_valid("tab\there"));
    assert_false(shoal_idempotency_key_valid("del\x7f"));
    assert_false(shoal_idempotency_key_valid("caf\xc3\xa9"));
}

static void successes_and_client_errors_are_kept_but_not_try_again_later(void **state)
{
    (void)state;
    const int kept[] = {200, 201, 204, 299, 400, 401, 404, 409, 422, 499};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (!shoal_idempotency_status_kept(kept[i]))
            fail_msg("%d is not kept", kept[i]);
    const int dropped[] = {100, 199, 301, 304, 408, 429, 500, 502, 503, 504};
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (shoal_idempotency_status_kept(dropped[i]))
            fail_msg("%d is kept", dropped[i]);
}

static int handler_runs;

static int count_and_answer(shoal_ctx *ctx)
{
    handler_runs++;
    return shoal_json(ctx, 201, json_pack("{s:i}", "run", handler_runs));
}

typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    fake_request request;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fake_config_load(&f->config, NULL);
    f->app = shoal_app_new(&f->config);
    assert_non_null(f->app);
    assert_int_equal(shoal_app_extend(f->app, &shoal_idempotency_extension), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET|POST|PUT|PATCH", "/things", count_and_answer), 0);
    assert_int_equal(shoal_app_freeze(f->app), 0);
    handler_runs = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    shoal_app_free(f->app);
    shoal_config_free(&f->config);
    free(f);
    return 0;
}

static fake_request *send(fixture *f, const char *method, const char *path, const char *key)
{
    fake_request_init(&f->request, f->app, NULL, method, path);
    if (key != NULL)
        fake_request_header(&f->request, "Idempotency-Key", key);
    fake_request_body(&f->request, "{\"thing\":{}}");
    return &f->request;
}

static void a_bad_key_is_400_before_anything_runs(void **state)
{
    fixture *f = *state;
    const char *const bad[] = {"", "line\nbreak", "\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fake_request *r = send(f, "POST", "/things", bad[i]);
        fake_request_dispatch(r);
        assert_error_envelope(r, 400, "idempotency.invalid_key", "Idempotency-Key");
        fake_request_finish(r);
    }
    assert_int_equal(handler_runs, 0);
}

static void a_post_or_patch_with_a_key_needs_redis(void **state)
{
    fixture *f = *state;
    const char *const methods[] = {"POST", "PATCH"};
    for (size_t i = 0; i < 2; i++) {
        fake_request *r = send(f, methods[i], "/things", "k-1");
        fake_request_dispatch(r);
        /* Once-only cannot be promised without Redis: retry later. */
        assert_error_envelope(r, 503, "cache.unavailable", "body");
        assert_string_equal(shoal_response_header(&r->ctx, "Retry-After"), "1");
        fake_request_finish(r);
    }
    assert_int_equal(handler_runs, 0);
}

static void other_requests_never_ask(void **state)
{
    fixture *f = *state;
    /* No key; idempotent methods; an unknown path. */
    fake_request *r = send(f, "POST", "/things", NULL);
    fake_request_dispatch(r);
    assert_int_equal(shoal_status(&r->ctx), 201);
    assert_null(shoal_response_header(&r->ctx, "Idempotent-Replayed"));
    fake_request_finish(r);
    r = send(f, "PUT", "/things", "k-2");
    fake_request_dispatch(r);
    assert_int_equal(shoal_status(&r->ctx), 201);
    fake_request_finish(r);
    r = send(f, "GET", "/things", "");
    fake_request_dispatch(r);
    assert_int_equal(shoal_status(&r->ctx), 201);
    fake_request_finish(r);
    assert_int_equal(handler_runs, 3);
    r = send(f, "POST", "/elsewhere", "k-3");
    fake_request_dispatch(r);
    assert_error_envelope(r, 404, "route.not_found", "body");
    fake_request_finish(r);
    /* A body the HTTP layer refused keeps its 413. */
    r = send(f, "POST", "/things", "k-4");
    shoal_ctx_reject(&r->ctx, 413, "request.body_too_large", "too large");
    fake_request_dispatch(r);
    assert_error_envelope(r, 413, "request.body_too_large", "body");
    fake_request_finish(r);
    assert_int_equal(handler_runs, 3);
}

/* An app with the extension after slots_before request slots of its own. */
static shoal_app *app_with_keys(const shoal_config *config, int slots_before)
{
    shoal_app *app = shoal_app_new(config);
    assert_non_null(app);
    for (int i = 0; i < slots_before; i++)
        assert_true(shoal_app_request_slot(app) >= 0);
    assert_int_equal(shoal_app_extend(app, &shoal_idempotency_extension), 0);
    assert_int_equal(shoal_route(shoal_app_root(app), "GET|POST|PUT|PATCH", "/things", count_and_answer), 0);
    assert_int_equal(shoal_app_freeze(app), 0);
    return app;
}

/* A keyed POST (503 without Redis) and a plain one (201): the hooks run
 * before and after the handler and in the teardown, on the app's instance. */
static void post_twice(shoal_app *app)
{
    fake_request r;
    fake_request_init(&r, app, NULL, "POST", "/things");
    fake_request_header(&r, "Idempotency-Key", "k-1");
    fake_request_dispatch(&r);
    assert_error_envelope(&r, 503, "cache.unavailable", "body");
    fake_request_finish(&r);
    fake_request_init(&r, app, NULL, "POST", "/things");
    fake_request_dispatch(&r);
    assert_int_equal(shoal_status(&r.ctx), 201);
    fake_request_finish(&r);
}

static void two_apps_each_have_their_own_instance(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *first = app_with_keys(&config, 0);
    shoal_app *second = app_with_keys(&config, 2);
    void *first_instance = shoal_app_instance(first, &shoal_idempotency_extension);
    void *second_instance = shoal_app_instance(second, &shoal_idempotency_extension);
    assert_non_null(first_instance);
    assert_non_null(second_instance);
    assert_ptr_not_equal(first_instance, second_instance);
    handler_runs = 0;
    post_twice(first);
    post_twice(second);
    /* The second serves on once the first is freed: its hooks hold its own
     * instance (ASan and valgrind would see a read of the first's). */
    shoal_app_free(first);
    post_twice(second);
    assert_int_equal(handler_runs, 3);
    shoal_app_free(second);
    shoal_config_free(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_1_to_255_printable_ascii_bytes),
        cmocka_unit_test(successes_and_client_errors_are_kept_but_not_try_again_later),
        cmocka_unit_test_setup_teardown(a_bad_key_is_400_before_anything_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(a_post_or_patch_with_a_key_needs_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(other_requests_never_ask, setup, teardown),
        cmocka_unit_test(two_apps_each_have_their_own_instance),
    };
    return cmocka_run_group_tests_name("unit.node.ext.idempotency", tests, NULL, NULL);
}
