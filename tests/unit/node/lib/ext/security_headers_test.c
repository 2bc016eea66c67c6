/* tests/unit/node/lib/ext/security_headers_test.c: node/lib/ext/security_headers.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <shoal/ext/cors.h>
#include <shoal/ext/security_headers.h>

#include "fake_request.h"

static int answer_ok(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
}

/* A handler that decides on caching itself. */
static int answer_cacheable(shoal_ctx *ctx)
{
    shoal_set_header(ctx, "Cache-Control", "public, max-age=60");
    return shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
}

typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    fake_request request;
} fixture;

static int make_fixture(void **state, const char *enabled)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    fake_config_load(&f->config, (const char *const[]){"--security-headers", enabled, "--cors-origins",
                                                       "https://app.example", NULL});
    f->app = shoal_app_new(&f->config);
    /* The order of main.c: request ids, then these headers, then CORS. */
    if (f->app == NULL || shoal_app_extend(f->app, &shoal_security_headers_extension) != 0 ||
        shoal_app_extend(f->app, &shoal_cors_extension) != 0 ||
        shoal_route(shoal_app_root(f->app), "GET|POST|PUT|DELETE", "/articles", answer_ok) != 0 ||
        shoal_route(shoal_app_root(f->app), "GET", "/cacheable", answer_cacheable) != 0 ||
        shoal_app_freeze(f->app) != 0)
        return -1;
    *state = f;
    return 0;
}

static int setup_on(void **state)
{
    return make_fixture(state, "true");
}

static int setup_off(void **state)
{
    return make_fixture(state, "false");
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

static void assert_security_headers(fake_request *r)
{
    assert_string_equal(header(r, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(header(r, "Content-Security-Policy"), "default-src 'none'; frame-ancestors 'none'");
    assert_string_equal(header(r, "Referrer-Policy"), "no-referrer");
}

static void test_every_answer_gets_them(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "GET", "/articles", NULL);
    assert_int_equal(r->ctx.status, 200);
    assert_security_headers(r);
    /* An anonymous read may be cached. */
    assert_null(header(r, "Cache-Control"));
    fake_request_finish(r);

    r = send(f, "GET", "/missing", NULL);
    assert_error_envelope(r, 404, "route.not_found", "body");
    assert_security_headers(r);
    fake_request_finish(r);

    r = send(f, "PATCH", "/articles", NULL);
    assert_error_envelope(r, 405, "route.method_not_allowed", "body");
    assert_security_headers(r);
    fake_request_finish(r);
}

static void test_credentials_or_writes_get_no_store(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "GET", "/articles", HEADERS("Authorization", "Token abc"));
    assert_string_equal(header(r, "Cache-Control"), "no-store");
    fake_request_finish(r);

    /* A login answers with a token to a request without one. */
    const char *methods[] = {"POST", "PUT", "DELETE"};
    for (size_t i = 0; i < 3; i++) {
        r = send(f, methods[i], "/articles", NULL);
        assert_int_equal(r->ctx.status, 200);
        assert_string_equal(header(r, "Cache-Control"), "no-store");
        assert_security_headers(r);
        fake_request_finish(r);
    }
}

static void test_a_handlers_own_header_is_kept(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "GET", "/cacheable", NULL);
    assert_string_equal(header(r, "Cache-Control"), "public, max-age=60");
    fake_request_finish(r);
    r = send(f, "GET", "/cacheable", HEADERS("Authorization", "Token abc"));
    assert_string_equal(header(r, "Cache-Control"), "public, max-age=60");
    fake_request_finish(r);
}

static void test_cors_preflight_and_expose_still_work(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "OPTIONS", "/articles",
                           HEADERS("Origin", "https://app.example", "Access-Control-Request-Method", "PUT"));
    assert_int_equal(r->ctx.status, 204);
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "https://app.example");
    assert_non_null(header(r, "Access-Control-Allow-Methods"));
    assert_security_headers(r);
    assert_null(header(r, "Cache-Control"));
    fake_request_finish(r);

    r = send(f, "GET", "/articles", HEADERS("Origin", "https://app.example", "Authorization", "Token abc"));
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "https://app.example");
    assert_non_null(strstr(header(r, "Access-Control-Expose-Headers"), "X-Request-ID"));
    assert_security_headers(r);
    assert_string_equal(header(r, "Cache-Control"), "no-store");
    fake_request_finish(r);
}

static void test_switched_off_adds_nothing(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "POST", "/articles", HEADERS("Authorization", "Token abc"));
    assert_int_equal(r->ctx.status, 200);
    assert_null(header(r, "X-Content-Type-Options"));
    assert_null(header(r, "Content-Security-Policy"));
    assert_null(header(r, "Referrer-Policy"));
    assert_null(header(r, "Cache-Control"));
    fake_request_finish(r);
}

int main(void)
{
#define ON(name) cmocka_unit_test_setup_teardown(name, setup_on, teardown)
    const struct CMUnitTest tests[] = {
        ON(test_every_answer_gets_them),
        ON(test_credentials_or_writes_get_no_store),
        ON(test_a_handlers_own_header_is_kept),
        ON(test_cors_preflight_and_expose_still_work),
        cmocka_unit_test_setup_teardown(test_switched_off_adds_nothing, setup_off, teardown),
    };
    return cmocka_run_group_tests_name("node/lib/ext/security_headers", tests, NULL, NULL);
}
