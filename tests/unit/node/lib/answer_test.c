/* tests/unit/node/lib/answer_test.c: node/lib/answer.c, answers, headers, the error envelope and handlers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app_fixture.h"

/* ---- answering ----------------------------------------------------------- */

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

static int answer_with_lookalike_names(shoal_ctx *ctx)
{
    shoal_set_header(ctx, "X-Trace[1]", "brackets");
    shoal_set_header(ctx, "X-Trace{1}", "braces"); /* '[' and '{' differ by 0x20 too, but are no letters */
    shoal_set_header(ctx, "X-Tracer", "longer");
    shoal_set_header(ctx, "X-TRACE", "upper");
    return shoal_empty(ctx, 204);
}

/* Names match whole and without regard to the case of letters only. */
static void test_header_names_fold_letters_only(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/lookalikes", answer_with_lookalike_names), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/lookalikes");
    assert_string_equal(shoal_response_header(&r->ctx, "x-trace[1]"), "brackets");
    assert_string_equal(shoal_response_header(&r->ctx, "X-TRACE{1}"), "braces");
    assert_string_equal(shoal_response_header(&r->ctx, "x-tracer"), "longer");
    assert_string_equal(shoal_response_header(&r->ctx, "x-trace"), "upper");
    assert_null(shoal_response_header(&r->ctx, "X-Trac"));
    assert_null(shoal_response_header(&r->ctx, "X-Trace[1]x"));
    int count = 0;
    for (shoal_header_entry *h = r->ctx.headers; h != NULL; h = h->next)
        count++;
    assert_int_equal(count, 4);
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

/* ---- what after hooks read back ------------------------------------------ */

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

/* ---- error handlers ------------------------------------------------------ */

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

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_answering_twice_keeps_the_last_answer),
        TEST(test_set_header_replaces_and_add_header_appends),
        TEST(test_header_names_fold_letters_only),
        TEST(test_json_answer_of_null_value_is_500),
        TEST(test_json_writer_answers_and_an_unfinished_one_is_500),
        TEST(test_error_envelope_escapes_its_texts),
        TEST(test_after_hooks_read_the_status_content_type_and_body),
        TEST(test_blueprint_error_handler_comes_before_the_apps),
        TEST(test_app_error_handler_covers_404_and_405),
        TEST(test_error_handler_for_another_status_is_not_used),
        TEST(test_declining_error_handler_falls_back_to_the_envelope),
        TEST(test_error_raised_inside_an_error_handler_does_not_recurse),
        TEST(test_each_listener_has_its_own_error_handlers),
    };
    return cmocka_run_group_tests_name("node/lib/answer", tests, NULL, NULL);
}
