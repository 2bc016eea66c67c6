/* tests/unit/node/lib/ext/cors_test.c: node/lib/ext/cors.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <shoal/ext/cors.h>

#include "fake_request.h"

static void test_origin_must_match_an_entry_exactly(void **state)
{
    (void)state;
    const char *list = "https://app.example, https://admin.example";
    assert_true(shoal_cors_origin_allowed(list, "https://app.example"));
    assert_true(shoal_cors_origin_allowed(list, "https://admin.example"));
    assert_false(shoal_cors_origin_allowed(list, "https://app.example.evil"));
    assert_false(shoal_cors_origin_allowed(list, "https://app.exampl"));
    assert_false(shoal_cors_origin_allowed(list, "https://app"));
    assert_false(shoal_cors_origin_allowed(list, "http://app.example"));
    assert_false(shoal_cors_origin_allowed(list, "HTTPS://APP.EXAMPLE"));
    assert_false(shoal_cors_origin_allowed(list, "https://app.example, https://admin.example"));
}

static void test_spaces_and_empty_entries_in_the_list_are_ignored(void **state)
{
    (void)state;
    const char *list = "  https://a.example  ,,https://b.example ,";
    assert_true(shoal_cors_origin_allowed(list, "https://a.example"));
    assert_true(shoal_cors_origin_allowed(list, "https://b.example"));
    assert_false(shoal_cors_origin_allowed(list, " https://a.example"));
    assert_false(shoal_cors_origin_allowed(list, ""));
}

static void test_wildcard_allows_any_origin(void **state)
{
    (void)state;
    assert_true(shoal_cors_origin_allowed("*", "https://anything.example"));
    assert_true(shoal_cors_origin_allowed("https://a.example, *", "null"));
    assert_true(shoal_cors_origin_allowed(" * ", "https://x.example"));
    /* "*" is only a wildcard as a whole entry. */
    assert_false(shoal_cors_origin_allowed("https://*.example", "https://a.example"));
}

static void test_nothing_is_allowed_without_a_list_or_an_origin(void **state)
{
    (void)state;
    assert_false(shoal_cors_origin_allowed("", "https://a.example"));
    assert_false(shoal_cors_origin_allowed(NULL, "https://a.example"));
    assert_false(shoal_cors_origin_allowed("*", NULL));
    assert_false(shoal_cors_origin_allowed("*", ""));
}

/* ---- through the pipeline ------------------------------------------------- */

static bool handler_ran;

static int answer_ok(shoal_ctx *ctx)
{
    handler_ran = true;
    return shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
}

typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    fake_request request;
} fixture;

static int make_fixture(void **state, const char *origins)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    fake_config_load(&f->config, (const char *const[]){"--cors-origins", origins, NULL});
    f->app = shoal_app_new(&f->config);
    if (f->app == NULL || shoal_app_extend(f->app, &shoal_cors_extension) != 0 ||
        shoal_route(shoal_app_root(f->app), "GET|POST", "/articles", answer_ok) != 0 ||
        shoal_app_freeze(f->app) != 0)
        return -1;
    handler_ran = false;
    *state = f;
    return 0;
}

static int setup_with_origins(void **state)
{
    return make_fixture(state, "https://app.example, https://admin.example");
}

static int setup_disabled(void **state)
{
    return make_fixture(state, "");
}

static int setup_any(void **state)
{
    return make_fixture(state, "*");
}

static int teardown(void **state)
{
    fixture *f = *state;
    shoal_app_free(f->app);
    shoal_config_free(&f->config);
    free(f);
    return 0;
}

/* headers: name/value pairs, NULL-terminated. */
static fake_request *send(fixture *f, const char *method, const char *path, const char *const *headers)
{
    fake_request *r = &f->request;
    fake_request_init(r, f->app, NULL, method, path);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
        fake_request_header(r, headers[i], headers[i + 1]);
    fake_request_dispatch(r);
    return r;
}

#define HEADERS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *header(fake_request *r, const char *name)
{
    return shoal_response_header(&r->ctx, name);
}

static void test_allowed_origin_is_echoed_with_vary(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "GET", "/articles", HEADERS("Origin", "https://admin.example"));
    assert_int_equal(r->ctx.status, 200);
    assert_true(handler_ran);
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "https://admin.example");
    assert_string_equal(header(r, "Vary"), "Origin");
    assert_non_null(strstr(header(r, "Access-Control-Expose-Headers"), "X-Request-ID"));
    fake_request_finish(r);
}

static void test_other_or_missing_origin_gets_no_cors_headers(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "GET", "/articles", HEADERS("Origin", "https://evil.example"));
    assert_int_equal(r->ctx.status, 200);
    assert_true(handler_ran);
    assert_null(header(r, "Access-Control-Allow-Origin"));
    assert_null(header(r, "Access-Control-Expose-Headers"));
    /* The answer would differ for a listed origin: caches must know. */
    assert_string_equal(header(r, "Vary"), "Origin");
    fake_request_finish(r);

    r = send(f, "GET", "/articles", NULL);
    assert_null(header(r, "Access-Control-Allow-Origin"));
    assert_string_equal(header(r, "Vary"), "Origin");
    fake_request_finish(r);
}

static void test_error_answers_carry_cors_headers_too(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "GET", "/missing", HEADERS("Origin", "https://app.example"));
    assert_error_envelope(r, 404, "route.not_found", "body");
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "https://app.example");
    fake_request_finish(r);
}

static void test_preflight_is_answered_204_without_the_handler(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "OPTIONS", "/articles",
                           HEADERS("Origin", "https://app.example", "Access-Control-Request-Method", "POST"));
    assert_int_equal(r->ctx.status, 204);
    assert_false(handler_ran);
    assert_string_equal(header(r, "Access-Control-Allow-Methods"), "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    assert_string_equal(header(r, "Access-Control-Allow-Headers"),
                        "Authorization, Content-Type, X-Request-ID, Idempotency-Key");
    assert_string_equal(header(r, "Access-Control-Max-Age"), "7200");
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "https://app.example");
    assert_string_equal(header(r, "Vary"), "Origin");
    assert_null(header(r, "Allow"));
    fake_request_finish(r);
}

static void test_preflight_for_any_path_is_answered_and_the_real_request_gets_the_real_answer(void **state)
{
    fixture *f = *state;
    /* An unknown path and a method the path does not serve: the origin is
     * approved, and the page then reads the 404 or 405 itself. */
    fake_request *r = send(f, "OPTIONS", "/missing",
                           HEADERS("Origin", "https://app.example", "Access-Control-Request-Method", "DELETE"));
    assert_int_equal(r->ctx.status, 204);
    assert_non_null(header(r, "Access-Control-Allow-Methods"));
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "https://app.example");
    fake_request_finish(r);

    r = send(f, "DELETE", "/missing", HEADERS("Origin", "https://app.example"));
    assert_error_envelope(r, 404, "route.not_found", "body");
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "https://app.example");
    fake_request_finish(r);

    r = send(f, "DELETE", "/articles", HEADERS("Origin", "https://app.example"));
    assert_error_envelope(r, 405, "route.method_not_allowed", "body");
    assert_false(handler_ran);
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "https://app.example");
    assert_string_equal(header(r, "Allow"), "GET, HEAD, POST, OPTIONS");
    fake_request_finish(r);
}

static void test_options_without_a_preflight_is_left_to_the_router(void **state)
{
    fixture *f = *state;
    /* No Access-Control-Request-Method: a plain OPTIONS. */
    fake_request *r = send(f, "OPTIONS", "/articles", HEADERS("Origin", "https://app.example"));
    assert_int_equal(r->ctx.status, 204);
    assert_string_equal(header(r, "Allow"), "GET, HEAD, POST, OPTIONS");
    assert_null(header(r, "Access-Control-Allow-Methods"));
    fake_request_finish(r);

    /* A preflight from a foreign origin gets no CORS approval. */
    r = send(f, "OPTIONS", "/articles",
             HEADERS("Origin", "https://evil.example", "Access-Control-Request-Method", "POST"));
    assert_null(header(r, "Access-Control-Allow-Methods"));
    assert_null(header(r, "Access-Control-Allow-Origin"));
    fake_request_finish(r);

    /* A preflight from a foreign origin for an unknown path is the
     * router's 404. */
    r = send(f, "OPTIONS", "/missing",
             HEADERS("Origin", "https://evil.example", "Access-Control-Request-Method", "GET"));
    assert_int_equal(r->ctx.status, 404);
    assert_null(header(r, "Access-Control-Allow-Methods"));
    assert_null(header(r, "Access-Control-Allow-Origin"));
    fake_request_finish(r);
}

static void test_any_origin_gets_a_star_without_vary(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "GET", "/articles", HEADERS("Origin", "https://anyone.example"));
    assert_int_equal(r->ctx.status, 200);
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "*");
    assert_non_null(strstr(header(r, "Access-Control-Expose-Headers"), "Retry-After"));
    /* The same answer for every origin: nothing for caches to tell apart. */
    assert_null(header(r, "Vary"));
    fake_request_finish(r);

    handler_ran = false;
    r = send(f, "OPTIONS", "/articles",
             HEADERS("Origin", "http://localhost:4200", "Access-Control-Request-Method", "PUT"));
    assert_int_equal(r->ctx.status, 204);
    assert_false(handler_ran);
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "*");
    assert_non_null(header(r, "Access-Control-Allow-Methods"));
    fake_request_finish(r);

    /* No Origin, no CORS: not a cross-origin request. */
    r = send(f, "GET", "/articles", NULL);
    assert_int_equal(r->ctx.status, 200);
    assert_null(header(r, "Access-Control-Allow-Origin"));
    assert_null(header(r, "Vary"));
    fake_request_finish(r);
}

static void test_disabled_cors_adds_nothing(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "GET", "/articles", HEADERS("Origin", "https://app.example"));
    assert_int_equal(r->ctx.status, 200);
    assert_null(header(r, "Access-Control-Allow-Origin"));
    assert_null(header(r, "Vary"));
    fake_request_finish(r);

    r = send(f, "OPTIONS", "/articles",
             HEADERS("Origin", "https://app.example", "Access-Control-Request-Method", "POST"));
    assert_null(header(r, "Access-Control-Allow-Methods"));
    assert_null(header(r, "Access-Control-Allow-Origin"));
    assert_string_equal(header(r, "Allow"), "GET, HEAD, POST, OPTIONS");
    fake_request_finish(r);
}

int main(void)
{
#define WITH_ORIGINS(name) cmocka_unit_test_setup_teardown(name, setup_with_origins, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_must_match_an_entry_exactly),
        cmocka_unit_test(test_spaces_and_empty_entries_in_the_list_are_ignored),
        cmocka_unit_test(test_wildcard_allows_any_origin),
        cmocka_unit_test(test_nothing_is_allowed_without_a_list_or_an_origin),
        WITH_ORIGINS(test_allowed_origin_is_echoed_with_vary),
        WITH_ORIGINS(test_other_or_missing_origin_gets_no_cors_headers),
        WITH_ORIGINS(test_error_answers_carry_cors_headers_too),
        WITH_ORIGINS(test_preflight_is_answered_204_without_the_handler),
        WITH_ORIGINS(test_preflight_for_any_path_is_answered_and_the_real_request_gets_the_real_answer),
        WITH_ORIGINS(test_options_without_a_preflight_is_left_to_the_router),
        cmocka_unit_test_setup_teardown(test_any_origin_gets_a_star_without_vary, setup_any, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_cors_adds_nothing, setup_disabled, teardown),
    };
    return cmocka_run_group_tests_name("node/lib/ext/cors", tests, NULL, NULL);
}
