/* tests/unit/node/lib/app_test.c: node/lib/app.c, the setup and the request
 * pipeline, driven through a fake transport (no HTTP server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_request.h"

/* ---- what hooks and handlers leave behind ------------------------------- */

static char trace[1024];

static void note(const char *event)
{
    if (trace[0] != '\0')
        strncat(trace, " ", sizeof trace - strlen(trace) - 1);
    strncat(trace, event, sizeof trace - strlen(trace) - 1);
}

static shoal_flow note_before(shoal_ctx *ctx, void *label)
{
    (void)ctx;
    note(label);
    return SHOAL_NEXT;
}

static void note_after(shoal_ctx *ctx, void *label)
{
    (void)ctx;
    note(label);
}

static void note_teardown(shoal_ctx *ctx, void *label)
{
    (void)ctx;
    note(label);
}

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

static int answer_ok(shoal_ctx *ctx)
{
    note("handler");
    return shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
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

static int answer_409(shoal_ctx *ctx)
{
    note("handler");
    return shoal_error(ctx, 409, "article.exists", "slug", "already taken");
}

/* Answers with its label as the body, so tests see which handler answered. */
static int labelled_error_handler(shoal_ctx *ctx, const shoal_error_info *error, void *label)
{
    note(label);
    return shoal_text(ctx, error->status, "text/plain", label, strlen(label));
}

static int declining_error_handler(shoal_ctx *ctx, const shoal_error_info *error, void *label)
{
    note(label);
    shoal_text(ctx, 418, "text/plain", "partial", 7);
    (void)error;
    return -1;
}

static int silent_error_handler(shoal_ctx *ctx, const shoal_error_info *error, void *label)
{
    (void)ctx;
    (void)error;
    note(label);
    return 0;
}

/* An error raised inside an error handler must not recurse into it. */
static int reraising_error_handler(shoal_ctx *ctx, const shoal_error_info *error, void *label)
{
    note(label);
    return shoal_error(ctx, error->status, "rewritten", "body", "rewritten by the handler");
}

/* ---- the fixture ---------------------------------------------------------- */

typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    fake_request request;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    fake_config_load(&f->config, NULL);
    f->app = shoal_app_new(&f->config);
    if (f->app == NULL)
        return -1;
    trace[0] = '\0';
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

static void serve(shoal_app *app)
{
    assert_int_equal(shoal_app_freeze(app), 0);
    assert_true(shoal_app_frozen(app));
}

/* Starts a request; the caller may add headers or a body, then dispatch. */
static fake_request *request(fixture *f, const char *method, const char *path)
{
    fake_request_init(&f->request, f->app, NULL, method, path);
    return &f->request;
}

static fake_request *dispatch(fixture *f, const char *method, const char *path)
{
    fake_request *r = request(f, method, path);
    fake_request_dispatch(r);
    return r;
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

static char seen_answer[128];

/* What an after hook can read of the answer, as the idempotency extension
 * reads it to store it. */
static void read_answer(shoal_ctx *ctx, void *data)
{
    (void)data;
    size_t length = 0;
    const char *body = shoal_response_body(ctx, &length);
    const char *type = shoal_response_content_type(ctx);
    snprintf(seen_answer, sizeof seen_answer, "%d %s %s %.*s", shoal_status(ctx), type != NULL ? type : "-",
             shoal_rejected(ctx) ? "rejected" : "dispatched", (int)length, body != NULL ? body : "");
}

static void test_after_hooks_read_the_status_content_type_and_body(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_after(shoal_app_root(f->app), read_answer, NULL), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET|POST", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/articles");
    assert_string_equal(seen_answer, "200 application/json dispatched {\"ok\":true}");
    fake_request_finish(r);

    r = request(f, "POST", "/articles");
    shoal_ctx_reject(&r->ctx, 413, "request.too_large", "the body is too large");
    fake_request_dispatch(r);
    assert_string_equal(seen_answer,
                        "413 application/json rejected {\"errors\":{\"body\":[\"the body is too large\"]},"
                        "\"code\":\"request.too_large\"}");
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

/* ---- blueprints -------------------------------------------------------------- */

static void test_blueprint_prefix_is_prepended_to_its_routes(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    shoal_blueprint *plain = shoal_blueprint_new(f->app, "plain", "");
    assert_non_null(plain);
    assert_int_equal(shoal_route(api, "GET", "/articles", answer_ok), 0);
    assert_int_equal(shoal_route(plain, "POST", "/login", answer_409), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/api/articles");
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
    r = dispatch(f, "GET", "/articles");
    assert_int_equal(r->ctx.status, 404);
    fake_request_finish(r);
    r = dispatch(f, "POST", "/login");
    assert_int_equal(r->ctx.status, 409);
    fake_request_finish(r);
}

static void test_invalid_blueprint_prefix_fails_setup(void **state)
{
    fixture *f = *state;
    assert_null(shoal_blueprint_new(f->app, "no-slash", "api"));
    assert_null(shoal_blueprint_new(f->app, "trailing", "/api/"));
    assert_null(shoal_blueprint_new(f->app, "root-slash", "/"));
    assert_null(shoal_blueprint_new(f->app, "null", NULL));
    assert_int_equal(shoal_app_freeze(f->app), -1);
}

/* A route's pattern is absolute inside its blueprint; gluing "articles" to
 * "/api" would silently serve /apiarticles. */
static void test_route_pattern_without_leading_slash_is_rejected_in_a_blueprint(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    assert_non_null(api);
    assert_int_equal(shoal_route(api, "GET", "articles", answer_ok), -1);
    assert_int_equal(shoal_app_freeze(f->app), -1);
}

/* ---- error handlers ---------------------------------------------------------- */

static void test_blueprint_error_handler_comes_before_the_apps(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 409, labelled_error_handler, "app-409"), 0);
    assert_int_equal(shoal_errorhandler(api, 409, labelled_error_handler, "bp-409"), 0);
    assert_int_equal(shoal_route(api, "POST", "/articles", answer_409), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", answer_409), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "POST", "/api/articles");
    assert_int_equal(r->ctx.status, 409);
    assert_string_equal(r->ctx.content_type, "text/plain");
    assert_string_equal(fake_response_body(r), "bp-409");
    fake_request_finish(r);

    /* The app's handler covers routes of blueprints that have none. */
    r = dispatch(f, "POST", "/articles");
    assert_string_equal(fake_response_body(r), "app-409");
    fake_request_finish(r);
}

static void test_app_error_handler_covers_404_and_405(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 404, labelled_error_handler, "app-404"), 0);
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 405, labelled_error_handler, "app-405"), 0);
    assert_int_equal(shoal_route(api, "GET", "/articles", answer_ok), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/api/nothing");
    assert_int_equal(r->ctx.status, 404);
    assert_string_equal(fake_response_body(r), "app-404");
    fake_request_finish(r);

    r = dispatch(f, "PUT", "/api/articles");
    assert_int_equal(r->ctx.status, 405);
    assert_string_equal(fake_response_body(r), "app-405");
    assert_string_equal(shoal_response_header(&r->ctx, "Allow"), "GET, HEAD, OPTIONS");
    fake_request_finish(r);
}

static void test_error_handler_for_another_status_is_not_used(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 404, labelled_error_handler, "app-404"), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", answer_409), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "POST", "/articles");
    assert_error_envelope(r, 409, "article.exists", "slug");
    assert_string_equal(trace, "handler");
    fake_request_finish(r);
}

static void test_declining_error_handler_falls_back_to_the_envelope(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 409, declining_error_handler, "decline"), 0);
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 404, silent_error_handler, "silent"), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", answer_409), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "POST", "/articles");
    assert_error_envelope(r, 409, "article.exists", "slug");
    assert_string_equal(trace, "handler decline");
    fake_request_finish(r);

    /* Returning 0 without answering also counts as declining. */
    trace[0] = '\0';
    r = dispatch(f, "GET", "/nothing");
    assert_error_envelope(r, 404, "route.not_found", "body");
    assert_string_equal(trace, "silent");
    fake_request_finish(r);
}

static void test_error_raised_inside_an_error_handler_does_not_recurse(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 409, reraising_error_handler, "reraise"), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", answer_409), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "POST", "/articles");
    assert_error_envelope(r, 409, "rewritten", "body");
    assert_string_equal(trace, "handler reraise");
    fake_request_finish(r);
}

/* ---- setup is frozen once serving starts ---------------------------------- */

static int extension_init_ok(shoal_app *app, void *data)
{
    (void)app;
    note(data);
    return 0;
}

static int extension_init_fails(shoal_app *app, void *data)
{
    (void)app;
    (void)data;
    return -1;
}

static void test_every_registration_fails_after_freeze(void **state)
{
    fixture *f = *state;
    shoal_blueprint *root = shoal_app_root(f->app);
    assert_int_equal(shoal_route(root, "GET", "/articles", answer_ok), 0);
    serve(f->app);

    assert_int_equal(shoal_route(root, "GET", "/tags", answer_ok), -1);
    assert_int_equal(shoal_before(root, note_before, "x"), -1);
    assert_int_equal(shoal_after(root, note_after, "x"), -1);
    assert_int_equal(shoal_teardown(root, note_teardown, "x"), -1);
    assert_int_equal(shoal_errorhandler(root, 404, labelled_error_handler, "x"), -1);
    assert_null(shoal_blueprint_new(f->app, "late", "/late"));
    shoal_extension late = {.name = "late", .init = extension_init_ok, .data = "init"};
    assert_int_equal(shoal_app_extend(f->app, &late), -1);
    assert_int_equal(shoal_app_request_slot(f->app), -1);
    assert_int_equal(shoal_app_worker_slot(f->app, NULL, NULL, NULL), -1);
    assert_string_equal(trace, "");

    fake_request *r = dispatch(f, "GET", "/tags");
    assert_int_equal(r->ctx.status, 404);
    fake_request_finish(r);
}

static void test_invalid_registrations_make_freeze_fail(void **state)
{
    (void)state;
    static const char *const cases[] = {"method", "handler", "duplicate", "pattern", "hook",
                                        "status", "extension"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        shoal_config config;
        fake_config_load(&config, NULL);
        shoal_app *app = shoal_app_new(&config);
        assert_non_null(app);
        shoal_blueprint *root = shoal_app_root(app);
        assert_int_equal(shoal_route(root, "GET", "/articles", answer_ok), 0);
        int rc = 0;
        const char *which = cases[i];
        if (strcmp(which, "method") == 0)
            rc = shoal_route(root, "FETCH", "/x", answer_ok);
        else if (strcmp(which, "handler") == 0)
            rc = shoal_route(root, "GET", "/x", NULL);
        else if (strcmp(which, "duplicate") == 0)
            rc = shoal_route(root, "GET", "/articles", answer_ok);
        else if (strcmp(which, "pattern") == 0)
            rc = shoal_route(root, "GET", "/files/*rest/more", answer_ok);
        else if (strcmp(which, "hook") == 0)
            rc = shoal_before(root, NULL, NULL);
        else if (strcmp(which, "status") == 0)
            rc = shoal_errorhandler(root, 200, labelled_error_handler, "x");
        else if (strcmp(which, "extension") == 0)
            rc = shoal_app_extend(app, &(shoal_extension){.name = "broken", .init = extension_init_fails});
        if (rc != -1)
            fail_msg("registration '%s' returned %d, not -1", which, rc);
        if (shoal_app_freeze(app) != -1)
            fail_msg("freeze accepted a setup with an invalid '%s' registration", which);
        shoal_app_free(app);
        shoal_config_free(&config);
    }
}

static void test_method_lists_accept_only_known_methods(void **state)
{
    fixture *f = *state;
    shoal_blueprint *root = shoal_app_root(f->app);
    assert_int_equal(shoal_route(root, "|GET", "/b", answer_ok), -1);
    assert_int_equal(shoal_route(root, "GET||POST", "/b", answer_ok), -1);
    assert_int_equal(shoal_route(root, "get", "/c", answer_ok), -1);
    assert_int_equal(shoal_route(root, "", "/d", answer_ok), -1);
    assert_int_equal(shoal_route(root, "PUT|PATCH", "/user", answer_ok), 0);
    assert_int_equal(shoal_app_freeze(f->app), -1);

    fake_request *r = dispatch(f, "PATCH", "/user");
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
}

/* "|GET" and "GET||POST" are refused for their empty method; "GET|" must be
 * too, or a truncated "GET|POST" would silently serve GET only. */
static void test_method_list_with_a_trailing_bar_is_rejected(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET|", "/a", answer_ok), -1);
    assert_int_equal(shoal_app_freeze(f->app), -1);
}

static void note_shutdown(shoal_app *app, void *data)
{
    (void)app;
    note(data);
}

static shoal_flow tag_request(shoal_ctx *ctx, void *data)
{
    shoal_set_header(ctx, "X-Extension", data);
    return SHOAL_NEXT;
}

static int extension_adds_hook(shoal_app *app, void *data)
{
    return shoal_before(shoal_app_root(app), tag_request, data);
}

static void test_extensions_register_at_init_and_shut_down_newest_first(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension first = {.name = "first", .init = extension_adds_hook, .shutdown = note_shutdown, .data = "first"};
    shoal_extension second = {.name = "second", .init = extension_init_ok, .shutdown = note_shutdown, .data = "second"};
    shoal_extension third = {.name = "third", .init = NULL, .shutdown = NULL};
    assert_int_equal(shoal_app_extend(app, &first), 0);
    assert_int_equal(shoal_app_extend(app, &second), 0);
    assert_int_equal(shoal_app_extend(app, &third), 0);
    assert_int_equal(shoal_route(shoal_app_root(app), "GET", "/x", answer_ok), 0);
    assert_int_equal(shoal_app_freeze(app), 0);

    fake_request r;
    fake_request_init(&r, app, NULL, "GET", "/x");
    fake_request_dispatch(&r);
    assert_string_equal(shoal_response_header(&r.ctx, "X-Extension"), "first");
    fake_request_finish(&r);

    trace[0] = '\0';
    shoal_app_free(app);
    assert_string_equal(trace, "second first");
    shoal_config_free(&config);
}

/* ---- extensions that fail, and who frees what ------------------------------ */

/* Published state that notes its release; its label is its name. */
static void release_noted(void *state)
{
    char event[48];
    snprintf(event, sizeof event, "release:%s", (const char *)state);
    note(event);
    free(state);
}

static int publish_labelled(shoal_app *app, const char *label)
{
    char *state = strdup(label);
    assert_non_null(state);
    return shoal_app_publish(app, label, state, release_noted);
}

/* A shutdown still finds its extension's published state. */
static void note_shutdown_with_state(shoal_app *app, void *data)
{
    const char *state = shoal_app_published(app, data);
    char event[48];
    snprintf(event, sizeof event, "shutdown:%s", state != NULL ? state : "(gone)");
    note(event);
}

static int publish(shoal_app *app, void *data)
{
    return publish_labelled(app, data);
}

/* The order shoal.h asks for: publish, then register what points to it;
 * here the registration fails. */
static int publish_then_fail_to_register(shoal_app *app, void *data)
{
    if (publish_labelled(app, data) != 0)
        return -1;
    return shoal_before(shoal_app_root(app), NULL, data);
}

static int publish_then_fail_with_a_reason(shoal_app *app, void *data)
{
    if (publish_labelled(app, data) != 0)
        return -1;
    return shoal_app_fail(app, "--widgets: %s is not a widget", "sprocket");
}

static int ignore_a_failed_registration(shoal_app *app, void *data)
{
    note(data);
    shoal_before(shoal_app_root(app), NULL, NULL);
    return 0;
}

static void test_published_state_is_released_with_the_app_after_the_shutdowns(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension first = {.name = "first", .init = publish, .shutdown = note_shutdown_with_state, .data = "first"};
    shoal_extension second = {.name = "second", .init = publish, .shutdown = note_shutdown_with_state, .data = "second"};
    assert_int_equal(shoal_app_extend(app, &first), 0);
    assert_int_equal(shoal_app_extend(app, &second), 0);
    assert_string_equal(shoal_app_published(app, "second"), "second");
    assert_null(shoal_app_failure(app));
    assert_int_equal(shoal_app_freeze(app), 0);
    trace[0] = '\0';
    shoal_app_free(app);
    assert_string_equal(trace, "shutdown:second shutdown:first release:second release:first");
    shoal_config_free(&config);
}

/* Runs fn with stderr going into a pipe; returns what came out. */
static const char *capture_stderr(void (*fn)(void *), void *argument)
{
    static char output[4096];
    int pipe_ends[2];
    assert_int_equal(pipe(pipe_ends), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(pipe_ends[1], STDERR_FILENO) >= 0);
    fn(argument);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(pipe_ends[1]);
    size_t length = 0;
    ssize_t n;
    while ((n = read(pipe_ends[0], output + length, sizeof output - 1 - length)) > 0)
        length += (size_t)n;
    close(pipe_ends[0]);
    output[length] = '\0';
    return output;
}

typedef struct extend_call {
    shoal_app *app;
    const shoal_extension *extension;
    int rc;
} extend_call;

static void call_extend(void *argument)
{
    extend_call *call = argument;
    call->rc = shoal_app_extend(call->app, call->extension);
}

static void test_a_failed_init_is_not_kept_and_its_state_is_released_with_the_app(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension kept = {.name = "kept", .init = publish, .shutdown = note_shutdown_with_state, .data = "kept"};
    shoal_extension broken = {.name = "broken", .init = publish_then_fail_to_register,
                              .shutdown = note_shutdown_with_state, .data = "broken"};
    assert_int_equal(shoal_app_extend(app, &kept), 0);
    extend_call call = {app, &broken, 0};
    const char *log = capture_stderr(call_extend, &call);
    assert_int_equal(call.rc, -1);
    /* Named, with the registration's own reason, once. */
    static const char expected[] = "\"event\":\"setup_invalid\",\"message\":\"extension broken: cannot register "
                                   "a before hook: the hook is NULL\"";
    const char *line = strstr(log, expected);
    bool only_line = line != NULL && strstr(log, "setup_invalid") == line + strlen("\"event\":\"") &&
                     strstr(line + sizeof expected - 1, "setup_invalid") == NULL;
    if (!only_line)
        fail_msg("expected one setup_invalid line naming the extension, got:\n%s", log);
    assert_string_equal(shoal_app_failure(app), "extension broken: cannot register a before hook: the hook is NULL");
    /* What it published is still the app's, alive, not a dangling pointer. */
    assert_string_equal(shoal_app_published(app, "broken"), "broken");
    assert_int_equal(shoal_app_freeze(app), -1);
    trace[0] = '\0';
    shoal_app_free(app);
    /* No shutdown for the failed init; its state is released all the same. */
    assert_string_equal(trace, "shutdown:kept release:broken release:kept");
    shoal_config_free(&config);
}

static void test_a_failed_init_says_why_under_its_name(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);

    shoal_app *app = shoal_app_new(&config);
    shoal_extension widgets = {.name = "widgets", .init = publish_then_fail_with_a_reason, .data = "widgets"};
    assert_int_equal(shoal_app_extend(app, &widgets), -1);
    assert_string_equal(shoal_app_failure(app), "extension widgets: --widgets: sprocket is not a widget");
    /* The first reason is the one kept. */
    assert_int_equal(shoal_before(shoal_app_root(app), NULL, NULL), -1);
    assert_string_equal(shoal_app_failure(app), "extension widgets: --widgets: sprocket is not a widget");
    trace[0] = '\0';
    shoal_app_free(app);
    assert_string_equal(trace, "release:widgets");

    app = shoal_app_new(&config);
    shoal_extension silent = {.name = "silent", .init = extension_init_fails};
    assert_int_equal(shoal_app_extend(app, &silent), -1);
    assert_string_equal(shoal_app_failure(app), "extension silent: its init failed without saying why");
    shoal_app_free(app);

    /* Outside an extension's init no name is added. */
    app = shoal_app_new(&config);
    assert_int_equal(shoal_route(shoal_app_root(app), "FETCH", "/x", answer_ok), -1);
    assert_string_equal(shoal_app_failure(app), "cannot register a route: unknown method");
    shoal_app_free(app);
    shoal_config_free(&config);
}

static void test_an_init_that_ignores_a_failed_registration_still_fails_the_setup(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension careless = {.name = "careless", .init = ignore_a_failed_registration, .shutdown = note_shutdown,
                                .data = "careless"};
    trace[0] = '\0';
    assert_int_equal(shoal_app_extend(app, &careless), -1);
    assert_string_equal(shoal_app_failure(app), "extension careless: cannot register a before hook: the hook is NULL");
    assert_int_equal(shoal_app_freeze(app), -1);
    /* Its init returned 0, so it is kept and its shutdown runs. */
    shoal_app_free(app);
    assert_string_equal(trace, "careless careless");
    shoal_config_free(&config);
}

static void test_state_that_cannot_be_published_is_released_at_once(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    trace[0] = '\0';
    assert_int_equal(publish_labelled(app, "taken"), 0);
    assert_string_equal(trace, "");
    /* A name taken twice: the second state is released, the first stays. */
    char *second = strdup("taken");
    assert_non_null(second);
    assert_int_equal(shoal_app_publish(app, "taken", second, release_noted), -1);
    assert_string_equal(trace, "release:taken");
    assert_non_null(shoal_app_published(app, "taken"));
    char *unnamed = strdup("unnamed");
    assert_non_null(unnamed);
    assert_int_equal(shoal_app_publish(app, NULL, unnamed, release_noted), -1);
    assert_string_equal(trace, "release:taken release:unnamed");
    /* State that lives elsewhere is published without a release. */
    static char elsewhere[] = "elsewhere";
    assert_int_equal(shoal_app_publish(app, "elsewhere", elsewhere, NULL), 0);
    assert_ptr_equal(shoal_app_published(app, "elsewhere"), elsewhere);
    assert_int_equal(shoal_app_freeze(app), -1); /* the name taken twice */
    char *late = strdup("late");
    assert_non_null(late);
    assert_int_equal(shoal_app_publish(app, "late", late, release_noted), -1);
    assert_string_equal(trace, "release:taken release:unnamed release:late");
    assert_null(shoal_app_published(app, "late"));
    shoal_app_free(app);
    assert_string_equal(trace, "release:taken release:unnamed release:late release:taken");
    shoal_config_free(&config);
}

/* ---- extension instances ------------------------------------------------- */

/* A user's extension with an instance: a counter of the requests its app
 * served, labelled with the extension's data. */
typedef struct counter_instance {
    char label[16];
    int requests;
    int hook_calls; /* the before hook, which gets the instance as its data */
} counter_instance;

static const shoal_extension counter_extension;

static void *counter_create(shoal_app *app, void *data)
{
    (void)app;
    counter_instance *counter = calloc(1, sizeof *counter);
    if (counter != NULL)
        snprintf(counter->label, sizeof counter->label, "%s", (const char *)data);
    char event[48];
    snprintf(event, sizeof event, "create:%s", (const char *)data);
    note(event);
    return counter;
}

static void counter_destroy(void *instance)
{
    counter_instance *counter = instance;
    char event[48];
    snprintf(event, sizeof event, "destroy:%s", counter->label);
    note(event);
    free(counter);
}

static shoal_flow counter_hook(shoal_ctx *ctx, void *data)
{
    counter_instance *counter = data;
    counter->hook_calls++;
    /* The hook's data and the accessor agree. */
    if (shoal_ctx_instance(ctx, &counter_extension) != data)
        note("hook-data-is-not-the-instance");
    return SHOAL_NEXT;
}

/* Reaches the instance with only the request in hand. */
static int counter_handler(shoal_ctx *ctx)
{
    counter_instance *counter = shoal_ctx_instance(ctx, &counter_extension);
    if (counter == NULL)
        return shoal_error(ctx, 500, "test.no_instance", "body", "no instance");
    counter->requests++;
    return shoal_json(ctx, 200, json_pack("{s:s,s:i}", "label", counter->label, "requests", counter->requests));
}

static int counter_init(shoal_app *app, void *instance)
{
    /* init gets the instance, not the extension's data. */
    if (instance != shoal_app_instance(app, &counter_extension))
        return shoal_app_fail(app, "init did not get the instance");
    if (shoal_before(shoal_app_root(app), counter_hook, instance) != 0)
        return -1;
    return shoal_route(shoal_app_root(app), "GET", "/count", counter_handler);
}

static void counter_shutdown(shoal_app *app, void *instance)
{
    (void)app;
    char event[48];
    snprintf(event, sizeof event, "shutdown:%s", ((counter_instance *)instance)->label);
    note(event);
}

static const shoal_extension counter_extension = {
    .name = "counter",
    .init = counter_init,
    .shutdown = counter_shutdown,
    .data = "counter",
    .create = counter_create,
    .destroy = counter_destroy,
};

/* GET /count on app: the label and the count its instance answers. */
static void expect_count(shoal_app *app, const char *label, int requests)
{
    fake_request r;
    fake_request_init(&r, app, NULL, "GET", "/count");
    fake_request_dispatch(&r);
    assert_int_equal(shoal_status(&r.ctx), 200);
    json_t *body = json_loads(fake_response_body(&r), 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "label")), label);
    assert_int_equal(json_integer_value(json_object_get(body, "requests")), requests);
    json_decref(body);
    fake_request_finish(&r);
}

static void test_an_extension_reaches_its_instance_from_its_hooks_and_handlers(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *first = shoal_app_new(&config);
    shoal_app *second = shoal_app_new(&config);
    trace[0] = '\0';
    assert_int_equal(shoal_app_extend(first, &counter_extension), 0);
    assert_int_equal(shoal_app_extend(second, &counter_extension), 0);
    assert_string_equal(trace, "create:counter create:counter");
    serve(first);
    serve(second);
    counter_instance *first_counter = shoal_app_instance(first, &counter_extension);
    counter_instance *second_counter = shoal_app_instance(second, &counter_extension);
    assert_non_null(first_counter);
    assert_non_null(second_counter);
    assert_ptr_not_equal(first_counter, second_counter);
    /* Each app counts in its own instance. */
    expect_count(first, "counter", 1);
    expect_count(first, "counter", 2);
    expect_count(second, "counter", 1);
    assert_int_equal(first_counter->hook_calls, 2);
    assert_int_equal(second_counter->hook_calls, 1);
    /* A copy of the extension is another extension: found by address. */
    shoal_extension copy = counter_extension;
    assert_null(shoal_app_instance(first, &copy));
    assert_string_equal(trace, "create:counter create:counter");
    trace[0] = '\0';
    shoal_app_free(first);
    assert_string_equal(trace, "shutdown:counter destroy:counter");
    expect_count(second, "counter", 2);
    shoal_app_free(second);
    shoal_config_free(&config);
}

static void test_instances_are_destroyed_once_each_newest_first_after_the_shutdowns(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension first = {.name = "first", .create = counter_create, .destroy = counter_destroy,
                             .shutdown = counter_shutdown, .data = "first"};
    shoal_extension second = first;
    second.name = "second";
    second.data = "second";
    /* Published state (deprecated) is released before the instances: its
     * init publishes under its instance's label ("third", the first field). */
    shoal_extension third = {.name = "third", .init = publish, .create = counter_create,
                             .destroy = counter_destroy, .data = "third"};
    trace[0] = '\0';
    assert_int_equal(shoal_app_extend(app, &first), 0);
    assert_int_equal(shoal_app_extend(app, &second), 0);
    assert_int_equal(shoal_app_extend(app, &third), 0);
    assert_string_equal(trace, "create:first create:second create:third");
    assert_string_equal(shoal_app_published(app, "third"), "third");
    assert_null(shoal_app_failure(app));
    trace[0] = '\0';
    shoal_app_free(app);
    assert_string_equal(trace,
                        "shutdown:second shutdown:first release:third destroy:third destroy:second destroy:first");
    shoal_config_free(&config);
}

static void *create_nothing(shoal_app *app, void *data)
{
    (void)app;
    note(data);
    return NULL;
}

static void *create_nothing_with_a_reason(shoal_app *app, void *data)
{
    (void)data;
    shoal_app_fail(app, "--widgets: %s", "none to make");
    return NULL;
}

static int init_never_runs(shoal_app *app, void *data)
{
    (void)app;
    (void)data;
    note("init-ran");
    return 0;
}

static void test_an_instance_that_cannot_be_created_fails_the_setup_without_init(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension nothing = {.name = "nothing", .init = init_never_runs, .shutdown = note_shutdown,
                               .create = create_nothing, .destroy = counter_destroy, .data = "create-ran"};
    trace[0] = '\0';
    assert_int_equal(shoal_app_extend(app, &nothing), -1);
    assert_string_equal(shoal_app_failure(app), "extension nothing: cannot create its instance: out of memory");
    assert_null(shoal_app_instance(app, &nothing));
    assert_int_equal(shoal_app_freeze(app), -1);
    shoal_app_free(app);
    /* No init, no shutdown, nothing to destroy. */
    assert_string_equal(trace, "create-ran");

    app = shoal_app_new(&config);
    shoal_extension reasoned = {.name = "reasoned", .init = init_never_runs, .create = create_nothing_with_a_reason};
    assert_int_equal(shoal_app_extend(app, &reasoned), -1);
    assert_string_equal(shoal_app_failure(app), "extension reasoned: --widgets: none to make");
    shoal_app_free(app);
    assert_string_equal(trace, "create-ran");
    shoal_config_free(&config);
}

/* ---- request and worker state --------------------------------------------- */

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

typedef struct worker_report {
    shoal_app *app;
    shoal_worker_slot slot;
    shoal_worker *first;
    shoal_worker *second;
    void *slot_value;
    bool has_store;
    bool has_cache;
    int status;
} worker_report;

static int created_states;
static int destroyed_states;

static void *create_state(void *data)
{
    created_states++;
    int *value = malloc(sizeof *value);
    if (value != NULL)
        *value = *(int *)data;
    return value;
}

static void destroy_state(void *state)
{
    destroyed_states++;
    free(state);
}

static worker_report *current_report;

static int answer_with_worker_state(shoal_ctx *ctx)
{
    current_report->slot_value = shoal_worker_get(ctx, current_report->slot);
    current_report->has_store = shoal_store(ctx) != NULL;
    current_report->has_cache = shoal_cache(ctx) != NULL;
    return shoal_empty(ctx, 204);
}

/* cmocka cannot assert off the main thread: the thread only records. */
static void *use_worker_on_fresh_thread(void *argument)
{
    worker_report *report = argument;
    report->first = shoal_app_thread_worker(report->app);
    report->second = shoal_app_thread_worker(report->app);
    if (report->first == NULL)
        return NULL;
    fake_request r;
    fake_request_init(&r, report->app, report->first, "GET", "/state");
    current_report = report;
    fake_request_dispatch(&r);
    report->status = r.ctx.status;
    fake_request_finish(&r);
    return NULL;
}

/* A fresh thread keeps the main thread free of a cached worker, which the
 * next test's app must not see. */
static void run_on_fresh_thread(void *(*body)(void *), void *argument)
{
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, body, argument), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
}

static void test_worker_is_made_once_per_thread_with_its_slots(void **state)
{
    fixture *f = *state;
    static int initial = 42;
    created_states = destroyed_states = 0;
    worker_report report = {.app = f->app};
    report.slot = shoal_app_worker_slot(f->app, create_state, destroy_state, &initial);
    assert_int_equal(report.slot, 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/state", answer_with_worker_state), 0);
    serve(f->app);

    run_on_fresh_thread(use_worker_on_fresh_thread, &report);
    assert_non_null(report.first);
    assert_ptr_equal(report.first, report.second);
    assert_int_equal(report.status, 204);
    assert_non_null(report.slot_value);
    assert_int_equal(*(int *)report.slot_value, 42);
    /* Handles exist without connecting: no server is needed for this. */
    assert_true(report.has_store);
    assert_true(report.has_cache);
    assert_int_equal(created_states, 1);

    run_on_fresh_thread(use_worker_on_fresh_thread, &report);
    assert_int_equal(created_states, 2);
    assert_int_equal(destroyed_states, 0);

    shoal_app_free(f->app);
    f->app = NULL;
    assert_int_equal(destroyed_states, 2);
}

static void test_without_a_worker_there_is_no_store_cache_or_worker_state(void **state)
{
    fixture *f = *state;
    static int initial = 1;
    worker_report report = {.app = f->app};
    report.slot = shoal_app_worker_slot(f->app, create_state, destroy_state, &initial);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/state", answer_with_worker_state), 0);
    serve(f->app);

    current_report = &report;
    report.has_store = report.has_cache = true;
    fake_request *r = dispatch(f, "GET", "/state");
    assert_int_equal(r->ctx.status, 204);
    assert_null(report.slot_value);
    assert_false(report.has_store);
    assert_false(report.has_cache);
    fake_request_finish(r);
}

/* The thread's cached worker outlives the app that made it; asking a later
 * app for this thread's worker must not read the freed one. Only a memory
 * checker sees the read, so the scenario runs in a child and the test
 * fails when AddressSanitizer kills it. */
static void test_thread_worker_lookup_survives_a_freed_app(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        const char *argv[] = {"shoal-node", NULL};
        char error[256];
        shoal_config config;
        if (shoal_config_load(&config, 1, (char **)argv, NULL, error, sizeof error) != 0)
            _exit(10);
        shoal_app *first = shoal_app_new(&config);
        if (first == NULL || shoal_app_thread_worker(first) == NULL)
            _exit(11);
        shoal_app_free(first);
        shoal_app *second = shoal_app_new(&config);
        shoal_worker *worker = second != NULL ? shoal_app_thread_worker(second) : NULL;
        int rc = worker != NULL && shoal_app_thread_worker(second) == worker ? 0 : 12;
        shoal_app_free(second);
        shoal_config_free(&config);
        _exit(rc);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child failed (%s %d): see the sanitizer report above",
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void test_in_flight_and_readiness_are_tracked(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_app_readiness(f->app), SHOAL_STARTING);
    shoal_app_set_readiness(f->app, SHOAL_READY);
    assert_int_equal(shoal_app_readiness(f->app), SHOAL_READY);
    shoal_app_set_readiness(f->app, SHOAL_DRAINING);
    assert_int_equal(shoal_app_readiness(f->app), SHOAL_DRAINING);

    assert_int_equal(shoal_app_in_flight(f->app), 0);
    shoal_worker *worker = shoal_app_thread_worker(f->app);
    assert_non_null(worker);
    shoal_worker_request_started(worker);
    shoal_worker_request_started(worker);
    shoal_worker_request_finished(worker);
    assert_int_equal(shoal_app_in_flight(f->app), 1);
    shoal_worker_request_finished(worker);
    assert_int_equal(shoal_app_in_flight(f->app), 0);
    assert_ptr_equal(shoal_app_config(f->app), &f->config);
}

/* ---- answering ------------------------------------------------------------------ */

static int answer_twice(shoal_ctx *ctx)
{
    shoal_text(ctx, 200, "text/plain", "first", 5);
    return shoal_text(ctx, 202, "text/plain", "second", 6);
}

static void test_answering_twice_keeps_the_last_answer(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/twice", answer_twice), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/twice");
    assert_int_equal(r->ctx.status, 202);
    assert_string_equal(fake_response_body(r), "second");
    assert_true(shoal_answered(&r->ctx));
    fake_request_finish(r);
}

static int answer_with_headers(shoal_ctx *ctx)
{
    char value[] = "first";
    shoal_set_header(ctx, "Cache-Control", value);
    value[0] = 'F'; /* headers are copied */
    shoal_set_header(ctx, "cache-control", "no-store");
    shoal_add_header(ctx, "Vary", "Origin");
    shoal_add_header(ctx, "Vary", "Accept");
    return shoal_empty(ctx, 204);
}

static void test_set_header_replaces_and_add_header_appends(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/headers", answer_with_headers), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/headers");
    assert_int_equal(r->ctx.status, 204);
    assert_null(r->ctx.response_body);
    assert_string_equal(shoal_response_header(&r->ctx, "CACHE-CONTROL"), "no-store");
    int cache_control = 0;
    const char *vary[2] = {NULL, NULL};
    int vary_count = 0;
    for (shoal_header_entry *h = r->ctx.headers; h != NULL; h = h->next) {
        if (strcasecmp(h->name, "Cache-Control") == 0)
            cache_control++;
        if (strcmp(h->name, "Vary") == 0 && vary_count < 2)
            vary[vary_count++] = h->value;
    }
    assert_int_equal(cache_control, 1);
    assert_int_equal(vary_count, 2);
    assert_string_equal(vary[0], "Origin");
    assert_string_equal(vary[1], "Accept");
    fake_request_finish(r);
}

static int answer_with_null_json(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, NULL) == -1 ? 0 : -1;
}

static void test_json_answer_of_null_value_is_500(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/null", answer_with_null_json), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/null");
    assert_error_envelope(r, 500, "internal", "body");
    fake_request_finish(r);
}

static int answer_with_writer(shoal_ctx *ctx)
{
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "path");
    shoal_json_write_string(out, shoal_path(ctx));
    shoal_json_write_key(out, "n");
    shoal_json_write_integer(out, 3);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, 201, out);
}

static int answer_with_unfinished_writer(shoal_ctx *ctx)
{
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "left");
    shoal_json_write_string(out, "open");
    return shoal_json_send(ctx, 200, out) == -1 ? 0 : -1;
}

static void test_json_writer_answers_and_an_unfinished_one_is_500(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/written", answer_with_writer), 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/unfinished", answer_with_unfinished_writer), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/written");
    assert_int_equal(r->ctx.status, 201);
    assert_string_equal(r->ctx.content_type, "application/json");
    assert_string_equal(fake_response_body(r), "{\"path\":\"/written\",\"n\":3}");
    fake_request_finish(r);

    r = dispatch(f, "GET", "/unfinished");
    assert_error_envelope(r, 500, "internal", "body");
    fake_request_finish(r);
}

static void test_error_envelope_escapes_its_texts(void **state)
{
    fixture *f = *state;
    serve(f->app);
    fake_request *r = dispatch(f, "GET", "/missing");
    assert_string_equal(fake_response_body(r),
                        "{\"errors\":{\"body\":[\"no such path\"]},\"code\":\"route.not_found\"}");
    shoal_error(&r->ctx, 422, "request.invalid_field", "na\"me", "a \\ b\n");
    assert_string_equal(fake_response_body(r),
                        "{\"errors\":{\"na\\\"me\":[\"a \\\\ b\\n\"]},\"code\":\"request.invalid_field\"}");
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

/* ---- JSON bodies -------------------------------------------------------------- */

static int echo_json_body(shoal_ctx *ctx)
{
    json_t *body = NULL;
    if (!shoal_json_body(ctx, &body))
        return 0;
    return shoal_json(ctx, 200, json_incref(body));
}

static fake_request *post_json(fixture *f, const char *content_type, const char *body)
{
    fake_request *r = request(f, "POST", "/echo");
    if (content_type != NULL)
        fake_request_header(r, "Content-Type", content_type);
    fake_request_body(r, body);
    fake_request_dispatch(r);
    return r;
}

static void serve_echo(fixture *f)
{
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/echo", echo_json_body), 0);
    serve(f->app);
}

static void test_json_body_is_parsed_and_owned_by_the_request(void **state)
{
    fixture *f = *state;
    serve_echo(f);

    fake_request *r = post_json(f, "application/json", "{\"article\": {\"title\": \"How to\", \"tags\": [1, 2]}}");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(fake_response_body(r), "{\"article\":{\"title\":\"How to\",\"tags\":[1,2]}}");
    fake_request_finish(r);
}

static void test_json_media_types_are_accepted(void **state)
{
    fixture *f = *state;
    serve_echo(f);
    static const char *const accepted[] = {NULL, "", "application/json", "Application/JSON",
                                           "application/json; charset=utf-8", "application/json ;charset=utf-8",
                                           "application/vnd.api+json", "application/merge-patch+json"};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        fake_request *r = post_json(f, accepted[i], "[true]");
        if (r->ctx.status != 200)
            fail_msg("Content-Type '%s' got %d", accepted[i] != NULL ? accepted[i] : "(none)", r->ctx.status);
        fake_request_finish(r);
    }
}

static void test_non_json_content_type_is_415(void **state)
{
    fixture *f = *state;
    serve_echo(f);
    static const char *const refused[] = {"text/plain", "application/jsonx", "application/x-www-form-urlencoded",
                                          "text/json", "application/+json", "multipart/form-data; boundary=json"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        fake_request *r = post_json(f, refused[i], "{}");
        assert_error_envelope(r, 415, "request.unsupported_media_type", "body");
        fake_request_finish(r);
    }
}

static void test_malformed_json_body_is_400(void **state)
{
    fixture *f = *state;
    serve_echo(f);
    static const char *const malformed[] = {"{", "{\"a\":1,}", "{'a':1}", "{\"a\":1,\"a\":2}", "[1] [2]",
                                            "\"\\u0000\"", "\"\xff\""};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        fake_request *r = post_json(f, "application/json", malformed[i]);
        assert_error_envelope(r, 400, "request.malformed_json", "body");
        fake_request_finish(r);
    }
}

static void test_empty_json_body_is_400(void **state)
{
    fixture *f = *state;
    serve_echo(f);

    fake_request *r = post_json(f, "application/json", NULL);
    assert_error_envelope(r, 400, "request.empty_body", "body");
    fake_request_finish(r);
    r = post_json(f, "application/json", " \r\n\t ");
    assert_error_envelope(r, 400, "request.empty_body", "body");
    fake_request_finish(r);
}

static void test_json_body_deeper_than_the_limit_is_400(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, (const char *const[]){"--max-json-depth", "3", NULL});
    shoal_app *app = shoal_app_new(&config);
    assert_int_equal(shoal_route(shoal_app_root(app), "POST", "/echo", echo_json_body), 0);
    assert_int_equal(shoal_app_freeze(app), 0);

    fake_request r;
    fake_request_init(&r, app, NULL, "POST", "/echo");
    fake_request_body(&r, "{\"a\":[{\"b\":1}]}");
    fake_request_dispatch(&r);
    assert_int_equal(r.ctx.status, 200);
    fake_request_finish(&r);

    fake_request_init(&r, app, NULL, "POST", "/echo");
    fake_request_body(&r, "{\"a\":[{\"b\":[]}]}");
    fake_request_dispatch(&r);
    assert_error_envelope(&r, 400, "request.json_too_deep", "body");
    fake_request_finish(&r);

    shoal_app_free(app);
    shoal_config_free(&config);
}

static int read_article(shoal_ctx *ctx)
{
    json_t *body, *article, *title, *count, *draft, *rating;
    if (!shoal_json_body(ctx, &body) ||
        !shoal_json_member(ctx, body, "article", JSON_OBJECT, true, &article) ||
        !shoal_json_member(ctx, article, "title", JSON_STRING, true, &title) ||
        !shoal_json_member(ctx, article, "count", JSON_INTEGER, false, &count) ||
        !shoal_json_member(ctx, article, "draft", JSON_TRUE, false, &draft) ||
        !shoal_json_member(ctx, article, "rating", JSON_REAL, false, &rating))
        return 0;
    return shoal_json(ctx, 200, json_pack("{s:s, s:b, s:b, s:b}", "title", json_string_value(title),
                                          "count", count != NULL, "draft", draft != NULL,
                                          "rating", rating != NULL));
}

static fake_request *post_article(fixture *f, const char *body)
{
    fake_request *r = request(f, "POST", "/articles");
    fake_request_header(r, "Content-Type", "application/json");
    fake_request_body(r, body);
    fake_request_dispatch(r);
    return r;
}

static void test_json_members_are_checked_by_type(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", read_article), 0);
    serve(f->app);

    fake_request *r = post_article(f, "{\"article\":{\"title\":\"T\"}}");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(fake_response_body(r), "{\"title\":\"T\",\"count\":false,\"draft\":false,\"rating\":false}");
    fake_request_finish(r);

    /* JSON_TRUE takes either boolean; JSON_REAL takes any number. */
    r = post_article(f, "{\"article\":{\"title\":\"T\",\"count\":3,\"draft\":false,\"rating\":4}}");
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(fake_response_body(r), "{\"title\":\"T\",\"count\":true,\"draft\":true,\"rating\":true}");
    fake_request_finish(r);
}

static void test_missing_or_mistyped_json_member_is_422_naming_the_field(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "POST", "/articles", read_article), 0);
    serve(f->app);

    fake_request *r = post_article(f, "{\"article\":{}}");
    assert_error_envelope(r, 422, "request.missing_field", "title");
    fake_request_finish(r);

    r = post_article(f, "{\"article\":[]}");
    assert_error_envelope(r, 422, "request.invalid_field", "article");
    assert_non_null(strstr(fake_response_body(r), "must be an object"));
    fake_request_finish(r);

    r = post_article(f, "{\"article\":{\"title\":7}}");
    assert_error_envelope(r, 422, "request.invalid_field", "title");
    assert_non_null(strstr(fake_response_body(r), "must be a string"));
    fake_request_finish(r);

    r = post_article(f, "{\"article\":{\"title\":\"T\",\"count\":1.5}}");
    assert_error_envelope(r, 422, "request.invalid_field", "count");
    fake_request_finish(r);

    r = post_article(f, "{\"article\":{\"title\":\"T\",\"draft\":\"yes\"}}");
    assert_error_envelope(r, 422, "request.invalid_field", "draft");
    fake_request_finish(r);

    /* A non-object body has no members at all. */
    r = post_article(f, "[1]");
    assert_error_envelope(r, 422, "request.missing_field", "article");
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

static fake_request *dispatch_admin(fixture *f, const char *method, const char *path)
{
    fake_request *r = request(f, method, path);
    r->ctx.listener = SHOAL_LISTENER_ADMIN;
    fake_request_dispatch(r);
    return r;
}

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

static void test_each_listener_has_its_own_error_handlers(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_errorhandler(shoal_app_root(f->app), 404, labelled_error_handler, "app404"), 0);
    assert_int_equal(shoal_errorhandler(shoal_app_admin(f->app), 404, labelled_error_handler, "admin404"), 0);
    serve(f->app);
    fake_request *r = dispatch(f, "GET", "/nothing");
    assert_string_equal(fake_response_body(r), "app404");
    fake_request_finish(r);
    r = dispatch_admin(f, "GET", "/nothing");
    assert_string_equal(fake_response_body(r), "admin404");
    fake_request_finish(r);
}

static void count_healthz(const char *pattern, const char *methods, const shoal_route_totals *totals, void *data)
{
    (void)totals;
    if (strcmp(pattern, "/healthz") == 0 && strcmp(methods, "GET") == 0)
        (*(int *)data)++;
}

static void test_a_route_on_both_listeners_is_one_metrics_series(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/healthz", answer_ok), 0);
    assert_int_equal(shoal_route(shoal_app_admin(f->app), "GET", "/healthz", answer_ok), 0);
    serve(f->app);
    fake_request *r = dispatch(f, "GET", "/healthz");
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
    r = dispatch_admin(f, "GET", "/healthz");
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
    int series = 0;
    shoal_app_route_totals(f->app, count_healthz, &series);
    assert_int_equal(series, 1);
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
        TEST(test_handler_sees_params_query_headers_and_client),
        TEST(test_blueprint_prefix_is_prepended_to_its_routes),
        TEST(test_invalid_blueprint_prefix_fails_setup),
        TEST(test_route_pattern_without_leading_slash_is_rejected_in_a_blueprint),
        TEST(test_blueprint_error_handler_comes_before_the_apps),
        TEST(test_app_error_handler_covers_404_and_405),
        TEST(test_error_handler_for_another_status_is_not_used),
        TEST(test_declining_error_handler_falls_back_to_the_envelope),
        TEST(test_error_raised_inside_an_error_handler_does_not_recurse),
        TEST(test_every_registration_fails_after_freeze),
        cmocka_unit_test(test_invalid_registrations_make_freeze_fail),
        TEST(test_method_lists_accept_only_known_methods),
        TEST(test_method_list_with_a_trailing_bar_is_rejected),
        TEST(test_extensions_register_at_init_and_shut_down_newest_first),
        cmocka_unit_test(test_published_state_is_released_with_the_app_after_the_shutdowns),
        cmocka_unit_test(test_a_failed_init_is_not_kept_and_its_state_is_released_with_the_app),
        cmocka_unit_test(test_a_failed_init_says_why_under_its_name),
        cmocka_unit_test(test_an_init_that_ignores_a_failed_registration_still_fails_the_setup),
        cmocka_unit_test(test_state_that_cannot_be_published_is_released_at_once),
        cmocka_unit_test(test_an_extension_reaches_its_instance_from_its_hooks_and_handlers),
        cmocka_unit_test(test_instances_are_destroyed_once_each_newest_first_after_the_shutdowns),
        cmocka_unit_test(test_an_instance_that_cannot_be_created_fails_the_setup_without_init),
        TEST(test_request_slots_are_per_request),
        TEST(test_worker_is_made_once_per_thread_with_its_slots),
        TEST(test_without_a_worker_there_is_no_store_cache_or_worker_state),
        cmocka_unit_test(test_thread_worker_lookup_survives_a_freed_app),
        TEST(test_in_flight_and_readiness_are_tracked),
        TEST(test_answering_twice_keeps_the_last_answer),
        TEST(test_set_header_replaces_and_add_header_appends),
        TEST(test_json_answer_of_null_value_is_500),
        TEST(test_json_writer_answers_and_an_unfinished_one_is_500),
        TEST(test_error_envelope_escapes_its_texts),
        TEST(test_rejection_is_answered_in_place_of_the_handler_with_hooks),
        TEST(test_after_hooks_read_the_status_content_type_and_body),
        TEST(test_rejection_goes_through_the_error_handler),
        TEST(test_json_body_is_parsed_and_owned_by_the_request),
        TEST(test_json_media_types_are_accepted),
        TEST(test_non_json_content_type_is_415),
        TEST(test_malformed_json_body_is_400),
        TEST(test_empty_json_body_is_400),
        cmocka_unit_test(test_json_body_deeper_than_the_limit_is_400),
        TEST(test_json_members_are_checked_by_type),
        TEST(test_missing_or_mistyped_json_member_is_422_naming_the_field),
        cmocka_unit_test(test_admission_refuses_past_the_cap_and_counts_every_request),
        cmocka_unit_test(test_the_default_cap_is_per_worker_thread),
        TEST(test_a_shed_request_runs_no_before_hook_nor_handler),
        TEST(test_past_the_deadline_no_hook_or_handler_starts),
        TEST(test_admin_routes_are_found_on_the_admin_listener_only),
        TEST(test_admin_requests_are_never_shed_nor_past_a_deadline),
        TEST(test_each_listener_has_its_own_error_handlers),
        TEST(test_a_route_on_both_listeners_is_one_metrics_series),
    };
    return cmocka_run_group_tests_name("node/app", tests, NULL, NULL);
}
