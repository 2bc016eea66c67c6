/* tests/unit/node/lib/ext/session_test.c: node/lib/ext/session.c without Redis:
 * the Authorization header, and what a request without a worker (so
 * without a Redis connection) gets, which proves what never asks Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <shoal/ext/session.h>

#include "fake_request.h"

#define GOOD "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

static void the_token_scheme_and_bearer_are_accepted(void **state)
{
    (void)state;
    char token[SHOAL_SESSION_TOKEN_SIZE];
    const char *good[] = {"Token " GOOD, "Bearer " GOOD, "token " GOOD, "BEARER\t" GOOD,
                          "  Token   " GOOD "  ", "Token " GOOD "\t"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (shoal_session_parse_authorization(good[i], token) != SHOAL_SESSION_OK)
            fail_msg("refused '%s'", good[i]);
        assert_string_equal(token, GOOD);
    }
}

static void anything_else_is_none_or_invalid(void **state)
{
    (void)state;
    char token[SHOAL_SESSION_TOKEN_SIZE];
    assert_int_equal(shoal_session_parse_authorization(NULL, token), SHOAL_SESSION_NONE);
    assert_int_equal(shoal_session_parse_authorization("", token), SHOAL_SESSION_NONE);
    assert_int_equal(shoal_session_parse_authorization("   ", token), SHOAL_SESSION_NONE);
    const char *bad[] = {
        "Basic dXNlcjpwYXNz", GOOD, "Token", "Token ", "Token" GOOD, "Tokens " GOOD, "Bearer: " GOOD,
        "Token " GOOD "A", "Token " GOOD " x", "Token x" GOOD, "Token " GOOD ",", "Token a.b.c",
        "Token AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+", "Token " GOOD "\r\nX-Evil: 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (shoal_session_parse_authorization(bad[i], token) != SHOAL_SESSION_INVALID)
            fail_msg("accepted '%s'", bad[i]);
        assert_string_equal(token, "");
    }
}

/* ---- through the pipeline, with no worker (so no Redis) ----------------- */

static int public_calls;
static shoal_session_status seen[2];

static int public_page(shoal_ctx *ctx)
{
    public_calls++;
    return shoal_json(ctx, 200, json_pack("{s:b}", "public", 1));
}

static int private_page(shoal_ctx *ctx)
{
    seen[0] = shoal_session(ctx, NULL);
    seen[1] = shoal_session(ctx, NULL); /* the same answer, from the request slot */
    const shoal_session_info *info = NULL;
    if (!shoal_session_require(ctx, &info))
        return 0;
    return shoal_json(ctx, 200, json_pack("{s:I}", "user", (json_int_t)info->user_id));
}

static int guarded_page(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:b}", "guarded", 1));
}

typedef struct fixture {
    shoal_config config;
    shoal_app *app;
    fake_request request;
} fixture;

static int make_fixture(void **state, bool with_extension)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    fake_config_load(&f->config, NULL);
    f->app = shoal_app_new(&f->config);
    if (f->app == NULL || (with_extension && shoal_app_extend(f->app, &shoal_session_extension) != 0))
        return -1;
    shoal_blueprint *guarded = shoal_blueprint_new(f->app, "guarded", "/guarded");
    if (guarded == NULL || shoal_before(guarded, shoal_session_required, NULL) != 0 ||
        shoal_route(guarded, "GET", "/page", guarded_page) != 0 ||
        shoal_route(shoal_app_root(f->app), "GET", "/public", public_page) != 0 ||
        shoal_route(shoal_app_root(f->app), "GET", "/private", private_page) != 0 || shoal_app_freeze(f->app) != 0)
        return -1;
    public_calls = 0;
    seen[0] = seen[1] = -1;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return make_fixture(state, true);
}

static int setup_without_extension(void **state)
{
    return make_fixture(state, false);
}

static int teardown(void **state)
{
    fixture *f = *state;
    shoal_app_free(f->app);
    shoal_config_free(&f->config);
    free(f);
    return 0;
}

static fake_request *send(fixture *f, const char *path, const char *authorization)
{
    fake_request *r = &f->request;
    fake_request_init(r, f->app, NULL, "GET", path);
    if (authorization != NULL)
        fake_request_header(r, "Authorization", authorization);
    fake_request_dispatch(r);
    return r;
}

static void public_routes_never_ask(void **state)
{
    fixture *f = *state;
    /* Even a well-formed token, which would need Redis, is not looked at. */
    fake_request *r = send(f, "/public", "Token " GOOD);
    assert_int_equal(r->ctx.status, 200);
    assert_int_equal(public_calls, 1);
    fake_request_finish(r);
}

static void no_header_is_401_auth_required(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "/private", NULL);
    assert_error_envelope(r, 401, "auth.required", "token");
    assert_string_equal(shoal_response_header(&r->ctx, "WWW-Authenticate"), "Token");
    assert_int_equal(seen[0], SHOAL_SESSION_NONE);
    assert_int_equal(seen[1], SHOAL_SESSION_NONE);
    fake_request_finish(r);
}

static void malformed_tokens_are_401_without_asking_redis(void **state)
{
    fixture *f = *state;
    /* Without a worker, asking Redis would give 503: 401 shows it was not asked. */
    const char *values[] = {"Basic dXNlcjpwYXNz", "Token short",
                            "Token AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9" /* not canonical */};
    for (size_t i = 0; i < 3; i++) {
        fake_request *r = send(f, "/private", values[i]);
        assert_error_envelope(r, 401, "auth.invalid", "token");
        assert_string_equal(shoal_response_header(&r->ctx, "WWW-Authenticate"), "Token");
        fake_request_finish(r);
    }
}

static void a_good_token_without_redis_is_503_with_retry_after(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "/private", "Bearer " GOOD);
    assert_error_envelope(r, 503, "cache.unavailable", "body");
    assert_string_equal(shoal_response_header(&r->ctx, "Retry-After"), "1");
    assert_null(shoal_response_header(&r->ctx, "WWW-Authenticate"));
    assert_int_equal(seen[0], SHOAL_SESSION_UNAVAILABLE);
    assert_int_equal(seen[1], SHOAL_SESSION_UNAVAILABLE);
    /* The token is nowhere in the answer. */
    assert_null(strstr(fake_response_body(r), GOOD));
    fake_request_finish(r);
}

static void the_before_hook_guards_a_whole_blueprint(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "/guarded/page", NULL);
    assert_error_envelope(r, 401, "auth.required", "token");
    fake_request_finish(r);
    r = send(f, "/guarded/page", "Token nonsense");
    assert_error_envelope(r, 401, "auth.invalid", "token");
    fake_request_finish(r);
}

static void without_the_extension_asking_is_a_500(void **state)
{
    fixture *f = *state;
    fake_request *r = send(f, "/private", "Token " GOOD);
    assert_error_envelope(r, 500, "cache.error", "body");
    assert_int_equal(seen[0], SHOAL_SESSION_ERROR);
    fake_request_finish(r);
}

/* ---- one instance per app ------------------------------------------------ */

/* The request's own app's instance, the one the app hands out, or a 500. */
static int instance_page(shoal_ctx *ctx)
{
    void *mine = shoal_ctx_instance(ctx, &shoal_session_extension);
    if (mine == NULL || mine != shoal_app_instance(shoal_ctx_app(ctx), &shoal_session_extension))
        return shoal_error(ctx, 500, "test.instance", "body", "not the app's own instance");
    return private_page(ctx);
}

/* An app with the session extension after slots_before request slots of
 * its own, so that its session slot is another app's neighbour's. */
static shoal_app *app_with_sessions(const shoal_config *config, int slots_before)
{
    shoal_app *app = shoal_app_new(config);
    assert_non_null(app);
    for (int i = 0; i < slots_before; i++)
        assert_true(shoal_app_request_slot(app) >= 0);
    assert_int_equal(shoal_app_extend(app, &shoal_session_extension), 0);
    assert_int_equal(shoal_route(shoal_app_root(app), "GET", "/private", instance_page), 0);
    assert_int_equal(shoal_app_freeze(app), 0);
    return app;
}

/* A malformed token: 401 auth.invalid, the second question answered from
 * the app's own request slot. */
static void ask_with_a_malformed_token(shoal_app *app)
{
    fake_request r;
    seen[0] = seen[1] = -1;
    fake_request_init(&r, app, NULL, "GET", "/private");
    fake_request_header(&r, "Authorization", "Token short");
    fake_request_dispatch(&r);
    assert_error_envelope(&r, 401, "auth.invalid", "token");
    assert_int_equal(seen[0], SHOAL_SESSION_INVALID);
    assert_int_equal(seen[1], SHOAL_SESSION_INVALID);
    fake_request_finish(&r);
}

static void two_apps_each_have_their_own_session_instance(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *first = app_with_sessions(&config, 0);
    shoal_app *second = app_with_sessions(&config, 3);
    void *first_instance = shoal_app_instance(first, &shoal_session_extension);
    void *second_instance = shoal_app_instance(second, &shoal_session_extension);
    assert_non_null(first_instance);
    assert_non_null(second_instance);
    assert_ptr_not_equal(first_instance, second_instance);
    ask_with_a_malformed_token(first);
    ask_with_a_malformed_token(second);
    /* The second serves on once the first is freed: nothing of the
     * first's is reached from it (ASan and valgrind would see a read). */
    shoal_app_free(first);
    ask_with_a_malformed_token(second);
    shoal_app_free(second);
    shoal_config_free(&config);
}

static void loading_it_twice_fails_setup(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    assert_non_null(app);
    assert_int_equal(shoal_app_extend(app, &shoal_session_extension), 0);
    assert_int_equal(shoal_app_extend(app, &shoal_session_extension), -1);
    assert_non_null(strstr(shoal_app_failure(app), "extension session: "));
    assert_int_equal(shoal_app_freeze(app), -1);
    shoal_app_free(app);
    shoal_config_free(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_token_scheme_and_bearer_are_accepted),
        cmocka_unit_test(anything_else_is_none_or_invalid),
        cmocka_unit_test_setup_teardown(public_routes_never_ask, setup, teardown),
        cmocka_unit_test_setup_teardown(no_header_is_401_auth_required, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_tokens_are_401_without_asking_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(a_good_token_without_redis_is_503_with_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(the_before_hook_guards_a_whole_blueprint, setup, teardown),
        cmocka_unit_test_setup_teardown(without_the_extension_asking_is_a_500, setup_without_extension, teardown),
        cmocka_unit_test(two_apps_each_have_their_own_session_instance),
        cmocka_unit_test(loading_it_twice_fails_setup),
    };
    return cmocka_run_group_tests_name("unit.node.ext.session", tests, NULL, NULL);
}
