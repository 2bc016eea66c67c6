/* tests/unit/node/lib/pipeline_test.c: node/lib/pipeline.c, a request through hooks, routing and overload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "app_fixture.h"

/* ---- hooks and handlers of these tests ------------------------------------ */

static shoal_flow answer_401_and_stop(shoal_ctx *ctx, void *label)
{
    note(label);
    shoal_error(ctx, 401, "auth.required", "token", "missing");
    return SHOAL_STOP;
}

static shoal_flow stop_without_answer(shoal_ctx *ctx, void *label)
{
    note(label);
    (void)ctx;
    return SHOAL_STOP;
}

static int answer_then_fail(shoal_ctx *ctx)
{
    note("handler");
    shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
    return -1;
}

static int return_without_answer(shoal_ctx *ctx)
{
    (void)ctx;
    note("handler");
    return 0;
}

static void register_traced_hooks(shoal_blueprint *bp, const char *name)
{
    static char labels[8][6][32];
    static int used;
    assert_true(used < 8);
    char (*l)[32] = labels[used++];
    snprintf(l[0], 32, "before.%s1", name);
    snprintf(l[1], 32, "before.%s2", name);
    snprintf(l[2], 32, "after.%s1", name);
    snprintf(l[3], 32, "after.%s2", name);
    snprintf(l[4], 32, "teardown.%s1", name);
    snprintf(l[5], 32, "teardown.%s2", name);
    assert_int_equal(shoal_before(bp, note_before, l[0]), 0);
    assert_int_equal(shoal_before(bp, note_before, l[1]), 0);
    assert_int_equal(shoal_after(bp, note_after, l[2]), 0);
    assert_int_equal(shoal_after(bp, note_after, l[3]), 0);
    assert_int_equal(shoal_teardown(bp, note_teardown, l[4]), 0);
    assert_int_equal(shoal_teardown(bp, note_teardown, l[5]), 0);
}

/* ---- hook order ------------------------------------------------------------ */

static void test_hooks_wrap_the_handler_app_outside_blueprint_inside(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    assert_non_null(api);
    register_traced_hooks(shoal_app_root(f->app), "app");
    register_traced_hooks(api, "bp");
    assert_int_equal(shoal_route(api, "GET", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/api/articles");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(fake_response_body(r), "{\"ok\":true}");
    assert_string_equal(trace, "before.app1 before.app2 before.bp1 before.bp2 handler "
                               "after.bp2 after.bp1 after.app2 after.app1 "
                               "teardown.bp2 teardown.bp1 teardown.app2 teardown.app1");
    fake_request_finish(r);
}

static void test_other_blueprints_hooks_do_not_run(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    shoal_blueprint *admin = shoal_blueprint_new(f->app, "admin", "/admin");
    assert_int_equal(shoal_before(admin, note_before, "before.admin"), 0);
    assert_int_equal(shoal_after(admin, note_after, "after.admin"), 0);
    assert_int_equal(shoal_teardown(admin, note_teardown, "teardown.admin"), 0);
    assert_int_equal(shoal_before(shoal_app_root(f->app), note_before, "before.app"), 0);
    assert_int_equal(shoal_route(api, "GET", "/articles", answer_ok), 0);
    assert_int_equal(shoal_route(admin, "GET", "/stats", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/api/articles");
    assert_string_equal(trace, "before.app handler");
    fake_request_finish(r);

    /* Without a route, only the app's hooks apply. */
    trace[0] = '\0';
    r = dispatch(f, "GET", "/admin/nothing");
    assert_int_equal(r->ctx.status, 404);
    assert_string_equal(trace, "before.app");
    fake_request_finish(r);
}

static void test_before_hook_that_answers_and_stops_skips_the_handler_only(void **state)
{
    fixture *f = *state;
    shoal_blueprint *root = shoal_app_root(f->app);
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    assert_int_equal(shoal_before(root, answer_401_and_stop, "guard"), 0);
    assert_int_equal(shoal_before(root, note_before, "before.app.later"), 0);
    assert_int_equal(shoal_before(api, note_before, "before.bp"), 0);
    assert_int_equal(shoal_after(root, note_after, "after.app"), 0);
    assert_int_equal(shoal_after(api, note_after, "after.bp"), 0);
    assert_int_equal(shoal_teardown(root, note_teardown, "teardown.app"), 0);
    assert_int_equal(shoal_teardown(api, note_teardown, "teardown.bp"), 0);
    assert_int_equal(shoal_route(api, "GET", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/api/articles");
    assert_error_envelope(r, 401, "auth.required", "token");
    assert_string_equal(trace, "guard after.bp after.app teardown.bp teardown.app");
    fake_request_finish(r);
}

static void test_before_hook_stopping_without_an_answer_gives_500(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_before(shoal_app_root(f->app), stop_without_answer, "mute"), 0);
    assert_int_equal(shoal_teardown(shoal_app_root(f->app), note_teardown, "teardown"), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/articles");
    assert_error_envelope(r, 500, "internal", "body");
    assert_string_equal(trace, "mute teardown");
    fake_request_finish(r);
}

static void test_handler_failing_after_answering_gives_500_and_teardown_runs(void **state)
{
    fixture *f = *state;
    register_traced_hooks(shoal_app_root(f->app), "app");
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", answer_then_fail), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "POST", "/articles");
    assert_error_envelope(r, 500, "internal", "body");
    assert_string_equal(trace, "before.app1 before.app2 handler after.app2 after.app1 "
                               "teardown.app2 teardown.app1");
    fake_request_finish(r);
}

static void test_handler_returning_without_an_answer_gives_500(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_teardown(shoal_app_root(f->app), note_teardown, "teardown"), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/articles", return_without_answer), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/articles");
    assert_error_envelope(r, 500, "internal", "body");
    assert_string_equal(trace, "handler teardown");
    fake_request_finish(r);
}

static void add_header_and_201(shoal_ctx *ctx, void *data)
{
    (void)data;
    shoal_set_header(ctx, "X-After", "seen");
    shoal_set_status(ctx, 201);
}

static void test_after_hooks_can_change_the_answer(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_after(shoal_app_root(f->app), add_header_and_201, NULL), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/articles");
    assert_int_equal(shoal_status(&r->ctx), 201);
    assert_string_equal(shoal_response_header(&r->ctx, "x-after"), "seen");
    assert_string_equal(fake_response_body(r), "{\"ok\":true}");
    fake_request_finish(r);
}

/* ---- routing outcomes ------------------------------------------------------ */

static void test_unknown_path_is_404_route_not_found(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/articles", answer_ok), 0);
    assert_int_equal(shoal_teardown(shoal_app_root(f->app), note_teardown, "teardown"), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/nothing-here");
    assert_error_envelope(r, 404, "route.not_found", "body");
    assert_null(shoal_response_header(&r->ctx, "Allow"));
    assert_false(shoal_route_matched(&r->ctx));
    assert_string_equal(trace, "teardown");
    fake_request_finish(r);
}

static void test_known_path_with_other_method_is_405_with_allow(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET|POST", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "DELETE", "/articles");
    assert_error_envelope(r, 405, "route.method_not_allowed", "body");
    assert_string_equal(shoal_response_header(&r->ctx, "Allow"), "GET, HEAD, POST, OPTIONS");
    assert_false(shoal_route_matched(&r->ctx));
    assert_string_equal(trace, "");
    fake_request_finish(r);

    r = dispatch(f, "BREW", "/articles");
    assert_error_envelope(r, 405, "route.method_not_allowed", "body");
    fake_request_finish(r);
}

static void test_options_is_answered_automatically_with_allow(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "PUT", "/user", answer_ok), 0);
    assert_int_equal(shoal_after(shoal_app_root(f->app), note_after, "after"), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "OPTIONS", "/user");
    assert_int_equal(r->ctx.status, 204);
    assert_int_equal(r->ctx.response_length, 0);
    assert_string_equal(shoal_response_header(&r->ctx, "Allow"), "PUT, OPTIONS");
    assert_string_equal(trace, "after");
    fake_request_finish(r);

    r = dispatch(f, "OPTIONS", "/unknown");
    assert_error_envelope(r, 404, "route.not_found", "body");
    fake_request_finish(r);
}

static void test_an_explicit_options_route_wins(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/user", answer_ok), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "OPTIONS", "/user", answer_409), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "OPTIONS", "/user");
    assert_error_envelope(r, 409, "article.exists", "slug");
    assert_string_equal(trace, "handler");
    fake_request_finish(r);
}

static void test_head_is_served_by_the_get_handler(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "HEAD", "/articles");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(trace, "handler");
    fake_request_finish(r);
}

/* ---- rejections made before dispatch ---------------------------------------- */

static void test_rejection_is_answered_in_place_of_the_handler_with_hooks(void **state)
{
    fixture *f = *state;
    register_traced_hooks(shoal_app_root(f->app), "app");
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = request(f, "POST", "/articles");
    shoal_ctx_reject(&r->ctx, 413, "request.too_large", "the body is too large");
    fake_request_dispatch(r);
    assert_error_envelope(r, 413, "request.too_large", "body");
    assert_string_equal(trace, "before.app1 before.app2 after.app2 after.app1 "
                               "teardown.app2 teardown.app1");
    fake_request_finish(r);
}

static void test_rejection_goes_through_the_error_handler(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 413, labelled_error_handler, "app-413"), 0);
    serve(f->app);

    fake_request *r = request(f, "POST", "/nowhere");
    shoal_ctx_reject(&r->ctx, 413, "request.too_large", "the body is too large");
    fake_request_dispatch(r);
    assert_int_equal(r->ctx.status, 413);
    assert_string_equal(fake_response_body(r), "app-413");
    fake_request_finish(r);
}

/* ---- overload: shedding and deadlines ---------------------------------------- */

static void test_admission_refuses_past_the_cap_and_counts_every_request(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, (const char *const[]){"--max-in-flight", "2", NULL});
    shoal_app *app = shoal_app_new(&config);
    assert_non_null(app);
    assert_true(shoal_app_admit(app));
    assert_true(shoal_app_admit(app));
    assert_false(shoal_app_admit(app)); /* the third, with two in */
    assert_int_equal(shoal_app_admitted(app), 3);
    shoal_app_leave(app);
    assert_false(shoal_app_admit(app)); /* still two in: a refused one is in until it leaves */
    shoal_app_leave(app);
    shoal_app_leave(app);
    assert_int_equal(shoal_app_admitted(app), 1);
    assert_true(shoal_app_admit(app));
    shoal_app_leave(app);
    shoal_app_leave(app);
    assert_int_equal(shoal_app_admitted(app), 0);
    shoal_app_free(app);
    shoal_config_free(&config);
}

/* The cap admission counts against, as config.c sets it by default. */
static void test_the_default_cap_is_per_worker_thread(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, (const char *const[]){"--threads", "5", NULL});
    assert_int_equal(config.max_in_flight, 5 * SHOAL_IN_FLIGHT_PER_THREAD);
    shoal_config_free(&config);
}

static void expect_retry_after(fake_request *r)
{
    const char *retry = shoal_response_header(&r->ctx, "Retry-After");
    assert_non_null(retry);
    assert_string_equal(retry, "1");
}

static void test_a_shed_request_runs_no_before_hook_nor_handler(void **state)
{
    fixture *f = *state;
    register_traced_hooks(shoal_app_root(f->app), "app");
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/articles", answer_ok), 0);
    assert_int_equal(shoal_route_essential(shoal_app_root(f->app), "GET", "/healthz", answer_ok, NULL), 0);
    serve(f->app);

    fake_request *r = request(f, "GET", "/articles");
    r->ctx.shed = true;
    fake_request_dispatch(r);
    assert_error_envelope(r, 503, "node.overloaded", "body");
    expect_retry_after(r);
    assert_string_equal(trace, "after.app2 after.app1 teardown.app2 teardown.app1");
    fake_request_finish(r);

    /* Unknown paths are shed too: matching them costs as much as a 503. */
    r = request(f, "GET", "/nowhere");
    r->ctx.shed = true;
    fake_request_dispatch(r);
    assert_error_envelope(r, 503, "node.overloaded", "body");
    fake_request_finish(r);

    trace[0] = '\0';
    r = request(f, "GET", "/healthz");
    r->ctx.shed = true;
    fake_request_dispatch(r);
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(trace, "before.app1 before.app2 handler after.app2 after.app1 "
                               "teardown.app2 teardown.app1");
    fake_request_finish(r);
}

static shoal_flow note_and_expire(shoal_ctx *ctx, void *label)
{
    note(label);
    ctx->deadline_ns = 1; /* long past */
    return SHOAL_NEXT;
}

static void test_past_the_deadline_no_hook_or_handler_starts(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_before(shoal_app_root(f->app), note_and_expire, "expire"), 0);
    assert_int_equal(shoal_before(shoal_app_root(f->app), note_before, "before.second"), 0);
    assert_int_equal(shoal_after(shoal_app_root(f->app), note_after, "after"), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/articles", answer_ok), 0);
    assert_int_equal(shoal_route_essential(shoal_app_root(f->app), "GET", "/readyz", answer_ok, NULL), 0);
    serve(f->app);

    /* Expired on arrival: nothing runs but the after hooks. */
    fake_request *r = request(f, "GET", "/articles");
    r->ctx.deadline_ns = 1;
    assert_true(shoal_deadline_passed(&r->ctx));
    fake_request_dispatch(r);
    assert_error_envelope(r, 503, "request.deadline_exceeded", "body");
    expect_retry_after(r);
    assert_string_equal(trace, "after");
    fake_request_finish(r);

    /* Expiring inside a hook: the next hook and the handler do not start. */
    trace[0] = '\0';
    r = request(f, "GET", "/articles");
    fake_request_dispatch(r);
    assert_error_envelope(r, 503, "request.deadline_exceeded", "body");
    assert_string_equal(trace, "expire after");
    fake_request_finish(r);

    /* No deadline at all (0): everything runs. */
    trace[0] = '\0';
    r = request(f, "GET", "/readyz");
    assert_false(shoal_deadline_passed(&r->ctx));
    r->ctx.deadline_ns = 1;
    fake_request_dispatch(r);
    assert_int_equal(r->ctx.status, 200); /* essential: no deadline */
    assert_string_equal(trace, "expire before.second handler after");
    fake_request_finish(r);
}

/* ---- the admin listener ------------------------------------------------------ */

static void test_admin_routes_are_found_on_the_admin_listener_only(void **state)
{
    fixture *f = *state;
    shoal_blueprint *admin = shoal_app_admin(f->app);
    assert_non_null(admin);
    assert_true(admin != shoal_app_root(f->app));
    assert_int_equal(shoal_before(shoal_app_root(f->app), note_before, "before.app"), 0);
    assert_int_equal(shoal_after(shoal_app_root(f->app), note_after, "after.app"), 0);
    assert_int_equal(shoal_before(admin, note_before, "before.admin"), 0);
    assert_int_equal(shoal_teardown(admin, note_teardown, "teardown.admin"), 0);
    assert_int_equal(shoal_route(admin, "GET", "/readyz", answer_ok), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/articles", answer_ok), 0);
    serve(f->app);

    /* The public listener does not know the admin's routes... */
    fake_request *r = dispatch(f, "GET", "/readyz");
    assert_error_envelope(r, 404, "route.not_found", "body");
    assert_string_equal(trace, "before.app after.app");
    fake_request_finish(r);

    /* ...nor the admin listener the public's, and only the admin
     * blueprint's hooks run there. */
    trace[0] = '\0';
    r = dispatch_admin(f, "GET", "/readyz");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(trace, "before.admin handler teardown.admin");
    fake_request_finish(r);
    trace[0] = '\0';
    r = dispatch_admin(f, "GET", "/articles");
    assert_error_envelope(r, 404, "route.not_found", "body");
    assert_string_equal(trace, "before.admin teardown.admin");
    fake_request_finish(r);
    r = dispatch_admin(f, "POST", "/readyz");
    assert_error_envelope(r, 405, "route.method_not_allowed", "body");
    fake_request_finish(r);
}

static void test_admin_requests_are_never_shed_nor_past_a_deadline(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_admin(f->app), "GET", "/metrics", answer_ok), 0);
    serve(f->app);
    fake_request *r = request(f, "GET", "/metrics");
    r->ctx.listener = SHOAL_LISTENER_ADMIN;
    r->ctx.shed = true;
    r->ctx.deadline_ns = 1; /* long past */
    fake_request_dispatch(r);
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_hooks_wrap_the_handler_app_outside_blueprint_inside),
        TEST(test_other_blueprints_hooks_do_not_run),
        TEST(test_before_hook_that_answers_and_stops_skips_the_handler_only),
        TEST(test_before_hook_stopping_without_an_answer_gives_500),
        TEST(test_handler_failing_after_answering_gives_500_and_teardown_runs),
        TEST(test_handler_returning_without_an_answer_gives_500),
        TEST(test_after_hooks_can_change_the_answer),
        TEST(test_unknown_path_is_404_route_not_found),
        TEST(test_known_path_with_other_method_is_405_with_allow),
        TEST(test_options_is_answered_automatically_with_allow),
        TEST(test_an_explicit_options_route_wins),
        TEST(test_head_is_served_by_the_get_handler),
        TEST(test_rejection_is_answered_in_place_of_the_handler_with_hooks),
        TEST(test_rejection_goes_through_the_error_handler),
        cmocka_unit_test(test_admission_refuses_past_the_cap_and_counts_every_request),
        cmocka_unit_test(test_the_default_cap_is_per_worker_thread),
        TEST(test_a_shed_request_runs_no_before_hook_nor_handler),
        TEST(test_past_the_deadline_no_hook_or_handler_starts),
        TEST(test_admin_routes_are_found_on_the_admin_listener_only),
        TEST(test_admin_requests_are_never_shed_nor_past_a_deadline),
    };
    return cmocka_run_group_tests_name("node/lib/pipeline", tests, NULL, NULL);
}
