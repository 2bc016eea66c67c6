/* tests/unit/node/lib/ext/request_id_test.c: node/lib/ext/request_id.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <shoal/ext/request_id.h>

#include "fake_request.h"

static void test_valid_ids_use_a_safe_alphabet(void **state)
{
    (void)state;
    assert_true(shoal_request_id_valid("a"));
    assert_true(shoal_request_id_valid("0123456789abcdef0123456789abcdef"));
    assert_true(shoal_request_id_valid("Root=1-5759e988-bd862e3fe1be46a994272793"));
    assert_true(shoal_request_id_valid("req_2024.11:node@lb/+x-y"));
}

static void test_invalid_ids_are_refused(void **state)
{
    (void)state;
    assert_false(shoal_request_id_valid(""));
    assert_false(shoal_request_id_valid("two words"));
    assert_false(shoal_request_id_valid("id\r\nX-Injected: 1"));
    assert_false(shoal_request_id_valid("quote\"d"));
    assert_false(shoal_request_id_valid("back\\slash"));
    assert_false(shoal_request_id_valid("caf\xc3\xa9"));
    assert_false(shoal_request_id_valid("semi;colon"));
}

static void test_ids_are_at_most_128_characters(void **state)
{
    (void)state;
    char id[130];
    memset(id, 'a', sizeof id);
    id[128] = '\0';
    assert_true(shoal_request_id_valid(id));
    id[128] = 'a';
    id[129] = '\0';
    assert_false(shoal_request_id_valid(id));
}

/* ---- through the pipeline ------------------------------------------------- */

/* One app and one worker for the whole group: the worker is cached per
 * thread, and a cached worker must not outlive its app on this thread. */
typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    shoal_worker *worker;
    fake_request request;
} fixture;

static const char *seen_by_handler;

static int answer_ok(shoal_ctx *ctx)
{
    seen_by_handler = shoal_request_id(ctx);
    return shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
}

static int group_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    fake_config_load(&f->config, NULL);
    f->app = shoal_app_new(&f->config);
    if (f->app == NULL || shoal_app_extend(f->app, &shoal_request_id_extension) != 0 ||
        shoal_route(shoal_app_root(f->app), "GET", "/articles", answer_ok) != 0 ||
        shoal_app_freeze(f->app) != 0)
        return -1;
    f->worker = shoal_app_thread_worker(f->app);
    if (f->worker == NULL)
        return -1;
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    shoal_app_free(f->app);
    shoal_config_free(&f->config);
    free(f);
    return 0;
}

static fake_request *send(fixture *f, shoal_worker *worker, const char *path, const char *given)
{
    fake_request *r = &f->request;
    fake_request_init(r, f->app, worker, "GET", path);
    if (given != NULL)
        fake_request_header(r, "X-Request-ID", given);
    seen_by_handler = NULL;
    fake_request_dispatch(r);
    return r;
}

static void assert_generated_id(const char *id)
{
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
}

static void test_an_id_is_generated_and_echoed_when_absent(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, f->worker, "/articles", NULL);
    assert_int_equal(r->ctx.status, 200);
    const char *id = shoal_request_id(&r->ctx);
    assert_generated_id(id);
    assert_string_equal(shoal_response_header(&r->ctx, "X-Request-ID"), id);
    assert_string_equal(seen_by_handler, id);
    fake_request_finish(r);
}

static void test_generated_ids_differ_between_requests(void **state)
{
    fixture *f = *state;
    char previous[33] = "";
    for (int i = 0; i < 50; i++) {
        fake_request *r = send(f, f->worker, "/articles", NULL);
        const char *id = shoal_request_id(&r->ctx);
        assert_generated_id(id);
        assert_string_not_equal(id, previous);
        strcpy(previous, id);
        fake_request_finish(r);
    }
}

static void test_a_valid_client_id_is_adopted(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, f->worker, "/articles", "lb-7f3a:42");
    assert_string_equal(shoal_request_id(&r->ctx), "lb-7f3a:42");
    assert_string_equal(shoal_response_header(&r->ctx, "X-Request-ID"), "lb-7f3a:42");
    assert_string_equal(seen_by_handler, "lb-7f3a:42");
    fake_request_finish(r);
}

static void test_an_invalid_client_id_is_replaced(void **state)
{
    fixture *f = *state;
    char too_long[200];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    const char *const invalid[] = {"forged\r\nX-Admin: yes", "", "has space", too_long};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        fake_request *r = send(f, f->worker, "/articles", invalid[i]);
        assert_generated_id(shoal_request_id(&r->ctx));
        assert_string_equal(shoal_response_header(&r->ctx, "X-Request-ID"), shoal_request_id(&r->ctx));
        fake_request_finish(r);
    }
}

static void test_error_answers_carry_the_id(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, f->worker, "/missing", "trace-404");
    assert_error_envelope(r, 404, "route.not_found", "body");
    assert_string_equal(shoal_response_header(&r->ctx, "X-Request-ID"), "trace-404");
    fake_request_finish(r);
}

static void test_without_a_worker_ids_are_adopted_but_not_generated(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, NULL, "/articles", "given-id");
    assert_string_equal(shoal_response_header(&r->ctx, "X-Request-ID"), "given-id");
    fake_request_finish(r);

    r = send(f, NULL, "/articles", NULL);
    assert_int_equal(r->ctx.status, 200);
    assert_null(shoal_request_id(&r->ctx));
    assert_null(shoal_response_header(&r->ctx, "X-Request-ID"));
    fake_request_finish(r);
}

int main(void)
{
    const struct CMUnitTest validation[] = {
        cmocka_unit_test(test_valid_ids_use_a_safe_alphabet),
        cmocka_unit_test(test_invalid_ids_are_refused),
        cmocka_unit_test(test_ids_are_at_most_128_characters),
    };
    const struct CMUnitTest pipeline[] = {
        cmocka_unit_test(test_an_id_is_generated_and_echoed_when_absent),
        cmocka_unit_test(test_generated_ids_differ_between_requests),
        cmocka_unit_test(test_a_valid_client_id_is_adopted),
        cmocka_unit_test(test_an_invalid_client_id_is_replaced),
        cmocka_unit_test(test_error_answers_carry_the_id),
        cmocka_unit_test(test_without_a_worker_ids_are_adopted_but_not_generated),
    };
    int failed = cmocka_run_group_tests_name("node/lib/ext/request_id", validation, NULL, NULL);
    failed += cmocka_run_group_tests_name("node/lib/ext/request_id pipeline", pipeline, group_setup, group_teardown);
    return failed;
}
