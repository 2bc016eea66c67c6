/* tests/unit/node/lib/ctx_test.c: node/lib/ctx.c, what hooks and handlers read of their request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "app_fixture.h"

/* ---- parameters, query, headers and client ------------------------------- */

static int report_request(shoal_ctx *ctx)
{
    json_t *report = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s?, s:b}",
                               "method", shoal_method_name(ctx), "path", shoal_path(ctx),
                               "slug", shoal_param(ctx, "slug"), "limit", shoal_query(ctx, "limit"),
                               "auth", shoal_header(ctx, "authorization"), "client",
                               shoal_client_address(ctx), "allow", shoal_allowed_methods(ctx),
                               "matched", shoal_route_matched(ctx));
    return shoal_json(ctx, 200, report);
}

static void test_handler_sees_params_query_headers_and_client(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    assert_int_equal(shoal_route(api, "GET|DELETE", "/articles/:slug", report_request), 0);
    serve(f->app);

    fake_request *r = request(f, "GET", "/api/articles/how-to");
    fake_request_query(r, "limit", "20");
    fake_request_header(r, "Authorization", "Token abc");
    r->connection.client_address = "203.0.113.9";
    fake_request_dispatch(r);
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(fake_response_body(r),
                        "{\"method\":\"GET\",\"path\":\"/api/articles/how-to\",\"slug\":\"how-to\","
                        "\"limit\":\"20\",\"auth\":\"Token abc\",\"client\":\"203.0.113.9\","
                        "\"allow\":\"GET, HEAD, DELETE, OPTIONS\",\"matched\":true}");
    /* Routing works on a copy: the request's own path is left whole. */
    assert_string_equal(shoal_path(&r->ctx), "/api/articles/how-to");
    fake_request_finish(r);
}

/* ---- request slots ------------------------------------------------------- */

static shoal_request_slot user_slot = -1;
static shoal_request_slot other_slot = -1;

static shoal_flow remember_user(shoal_ctx *ctx, void *data)
{
    (void)data;
    /* Each request starts with empty slots. */
    if (shoal_request_get(ctx, user_slot) != NULL)
        note("stale-slot");
    const char *user = shoal_header(ctx, "X-User");
    if (user != NULL)
        shoal_request_set(ctx, user_slot, (void *)user);
    return SHOAL_NEXT;
}

static int answer_with_user(shoal_ctx *ctx)
{
    const char *user = shoal_request_get(ctx, user_slot);
    if (shoal_request_get(ctx, other_slot) != NULL)
        note("other-slot-set");
    return shoal_json(ctx, 200, json_pack("{s:s?}", "user", user));
}

static void test_request_slots_are_per_request(void **state)
{
    fixture *f = *state;
    user_slot = shoal_app_request_slot(f->app);
    other_slot = shoal_app_request_slot(f->app);
    assert_int_equal(user_slot, 0);
    assert_int_equal(other_slot, 1);
    assert_int_equal(shoal_before(shoal_app_root(f->app), remember_user, NULL), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/user", answer_with_user), 0);
    serve(f->app);

    fake_request *r = request(f, "GET", "/user");
    fake_request_header(r, "X-User", "jake");
    fake_request_dispatch(r);
    assert_string_equal(fake_response_body(r), "{\"user\":\"jake\"}");
    /* Slots outside the registered range are ignored, not written. */
    shoal_request_set(&r->ctx, 2, "x");
    shoal_request_set(&r->ctx, -1, "x");
    assert_null(shoal_request_get(&r->ctx, 2));
    assert_null(shoal_request_get(&r->ctx, -1));
    fake_request_finish(r);

    r = dispatch(f, "GET", "/user");
    assert_string_equal(fake_response_body(r), "{\"user\":null}");
    assert_string_equal(trace, "");
    fake_request_finish(r);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_handler_sees_params_query_headers_and_client),
        TEST(test_request_slots_are_per_request),
    };
    return cmocka_run_group_tests_name("node/lib/ctx", tests, NULL, NULL);
}
