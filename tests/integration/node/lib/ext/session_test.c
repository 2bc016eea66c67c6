/* tests/integration/node/lib/ext/session_test.c: node/lib/ext/session.c over HTTP,
 * with the fixture's real Redis behind it (stopped with SIGSTOP for the
 * outage, as a hung server looks to a client). */
#include <signal.h>
#include <sys/types.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/ext/request_id.h>
#include <shoal/ext/session.h>
#include <shoal/http.h>

#include "context.h"
#include "http_client.h"
#include "test_env.h"

typedef struct test_server {
    shoal_config config;
    shoal_app *app;
    shoal_http *http;
    int port;
} test_server;

static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

/* ---- routes: a login that trusts the query (no passwords here), and
 * pages that need a session or not ---------------------------------------- */

static int login(shoal_ctx *ctx)
{
    const char *user = shoal_query(ctx, "user");
    const char *token = NULL;
    shoal_session_status status = shoal_session_create(ctx, user != NULL ? atoll(user) : 0, &token);
    if (status != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, status);
    return shoal_json(ctx, 201, json_pack("{s:s}", "token", token));
}

static int me(shoal_ctx *ctx)
{
    const shoal_session_info *session = NULL;
    if (!shoal_session_require(ctx, &session))
        return 0;
    return shoal_json(ctx, 200, json_pack("{s:I}", "user", (json_int_t)session->user_id));
}

static int logout(shoal_ctx *ctx)
{
    shoal_session_status status = shoal_session_revoke(ctx);
    if (status != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, status);
    return shoal_empty(ctx, 204);
}

static int logout_everywhere(shoal_ctx *ctx)
{
    const shoal_session_info *session = NULL;
    if (!shoal_session_require(ctx, &session))
        return 0;
    shoal_session_status status = shoal_session_revoke_user(ctx, session->user_id);
    if (status != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, status);
    return shoal_empty(ctx, 204);
}

static int public_page(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:b}", "public", 1));
}

static int add_routes(shoal_app *app, void *data)
{
    (void)data;
    shoal_blueprint *bp = shoal_blueprint_new(app, "test", "/test");
    if (bp == NULL || shoal_route(bp, "POST", "/login", login) != 0 || shoal_route(bp, "GET", "/me", me) != 0 ||
        shoal_route(bp, "POST", "/logout", logout) != 0 ||
        shoal_route(bp, "POST", "/logout-everywhere", logout_everywhere) != 0 ||
        shoal_route(bp, "GET", "/public", public_page) != 0)
        return -1;
    return 0;
}

static const shoal_extension test_routes = {.name = "test-routes", .init = add_routes};

static void start_server(test_server *server)
{
    const char *argv[] = {"shoal-node", "--port", "0", "--admin-port", "0", "--threads", "2", "--access-log-sample", "0",
                          "--database-url", TEST_DATABASE_URL(), "--redis-url", TEST_REDIS_URL(),
                          "--redis-timeout-ms", "300", "--database-connect-timeout", "1"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    char error[256];
    assert_int_equal(shoal_config_load(&server->config, argc, (char **)argv, no_environment, error, sizeof error), 0);
    server->app = shoal_app_new(&server->config);
    assert_non_null(server->app);
    assert_int_equal(shoal_app_extend(server->app, &shoal_request_id_extension), 0);
    assert_int_equal(shoal_app_extend(server->app, &shoal_session_extension), 0);
    assert_int_equal(shoal_app_extend(server->app, &test_routes), 0);
    server->http = shoal_http_start(server->app, error, sizeof error);
    assert_non_null(server->http);
    shoal_app_set_readiness(server->app, SHOAL_READY);
    server->port = shoal_http_port(server->http);
    assert_true(server->port > 0);
}

static void stop_server(test_server *server)
{
    shoal_http_stop(server->http);
    shoal_app_free(server->app);
    shoal_config_free(&server->config);
}

/* One request; authorization may be NULL. The caller frees the response. */
static test_response call(const test_server *server, const char *method, const char *path,
                          const char *authorization)
{
    char request[1024];
    snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n%s%s%s\r\n", method, path,
             authorization != NULL ? "Authorization: " : "", authorization != NULL ? authorization : "",
             authorization != NULL ? "\r\n" : "");
    test_response response;
    assert_true(test_http_request(server->port, request, &response));
    return response;
}

static void expect_error(test_response *response, int status, const char *code)
{
    assert_int_equal(response->status, status);
    json_error_t error;
    json_t *body = json_loads(response->body, 0, &error);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "code")), code);
    json_decref(body);
}

static void expect_401(const test_server *server, const char *authorization, const char *code)
{
    test_response response = call(server, "GET", "/test/me", authorization);
    expect_error(&response, 401, code);
    char value[64];
    assert_true(test_http_header(&response, "WWW-Authenticate", value, sizeof value));
    assert_string_equal(value, "Token");
    test_http_response_free(&response);
}

/* Logs user in; returns "Token <token>" in authorization. */
static void log_in(const test_server *server, long long user, char *authorization, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/test/login?user=%lld", user);
    test_response response = call(server, "POST", path, NULL);
    assert_int_equal(response.status, 201);
    json_error_t error;
    json_t *body = json_loads(response.body, 0, &error);
    assert_non_null(body);
    const char *token = json_string_value(json_object_get(body, "token"));
    assert_non_null(token);
    assert_int_equal(strlen(token), 43);
    snprintf(authorization, size, "Token %s", token);
    json_decref(body);
    test_http_response_free(&response);
}

static long long me_as(const test_server *server, const char *authorization)
{
    test_response response = call(server, "GET", "/test/me", authorization);
    assert_int_equal(response.status, 200);
    json_error_t error;
    json_t *body = json_loads(response.body, 0, &error);
    assert_non_null(body);
    long long user = (long long)json_integer_value(json_object_get(body, "user"));
    json_decref(body);
    test_http_response_free(&response);
    return user;
}

static long long user_base;

/* ---- tests ---------------------------------------------------------------- */

static void a_session_is_required_and_a_good_token_is_accepted(void **state)
{
    (void)state;
    test_server server;
    start_server(&server);
    expect_401(&server, NULL, "auth.required");
    expect_401(&server, "Basic dXNlcjpwYXNz", "auth.invalid");
    expect_401(&server, "Token nonsense", "auth.invalid");
    expect_401(&server, "Token AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "auth.invalid"); /* nobody's */

    char authorization[128];
    log_in(&server, user_base + 1, authorization, sizeof authorization);
    assert_int_equal(me_as(&server, authorization), user_base + 1);
    /* Bearer works the same, and another node would say the same: the
     * token is all it takes. */
    char bearer[160];
    snprintf(bearer, sizeof bearer, "Bearer %s", authorization + 6);
    assert_int_equal(me_as(&server, bearer), user_base + 1);
    stop_server(&server);

    start_server(&server);
    assert_int_equal(me_as(&server, authorization), user_base + 1);
    stop_server(&server);
}

static void logout_ends_one_session_and_revoking_a_user_all_of_them(void **state)
{
    (void)state;
    test_server server;
    start_server(&server);
    char first[128], second[128], third[128], other[128];
    log_in(&server, user_base + 2, first, sizeof first);
    log_in(&server, user_base + 2, second, sizeof second);
    log_in(&server, user_base + 2, third, sizeof third);
    log_in(&server, user_base + 3, other, sizeof other);

    test_response response = call(&server, "POST", "/test/logout", first);
    assert_int_equal(response.status, 204);
    test_http_response_free(&response);
    expect_401(&server, first, "auth.invalid");
    assert_int_equal(me_as(&server, second), user_base + 2);

    response = call(&server, "POST", "/test/logout-everywhere", second);
    assert_int_equal(response.status, 204);
    test_http_response_free(&response);
    expect_401(&server, second, "auth.invalid");
    expect_401(&server, third, "auth.invalid");
    assert_int_equal(me_as(&server, other), user_base + 3);
    stop_server(&server);
}

static int resume_redis(void **state)
{
    (void)state;
    kill(test_env_redis_pid(), SIGCONT);
    return 0;
}

static void a_hung_redis_is_503_for_sessions_only_and_the_token_works_after(void **state)
{
    (void)state;
    test_server server;
    start_server(&server);
    char authorization[128];
    log_in(&server, user_base + 4, authorization, sizeof authorization);
    assert_int_equal(me_as(&server, authorization), user_base + 4);

    pid_t redis = test_env_redis_pid();
    assert_int_equal(kill(redis, SIGSTOP), 0);
    test_response response = call(&server, "GET", "/test/me", authorization);
    expect_error(&response, 503, "cache.unavailable");
    char value[16];
    assert_true(test_http_header(&response, "Retry-After", value, sizeof value));
    assert_string_equal(value, "1");
    assert_null(strstr(response.body, authorization + 6));
    test_http_response_free(&response);
    /* Pages that do not ask for a session do not wait for Redis. */
    response = call(&server, "GET", "/test/public", authorization);
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    /* A missing or malformed token is still the client's problem, not a 503. */
    expect_401(&server, NULL, "auth.required");
    expect_401(&server, "Token nonsense", "auth.invalid");
    response = call(&server, "POST", "/test/login?user=5", NULL);
    expect_error(&response, 503, "cache.unavailable");
    test_http_response_free(&response);

    assert_int_equal(kill(redis, SIGCONT), 0);
    int status = 0;
    for (int i = 0; i < 50 * test_env_time_scale() && status != 200; i++) {
        response = call(&server, "GET", "/test/me", authorization);
        status = response.status;
        test_http_response_free(&response);
        if (status != 200)
            usleep(100 * 1000);
    }
    assert_int_equal(status, 200);
    /* Whichever worker takes it: one whose last attempt failed tries again
     * at once now that another connection reached Redis. */
    assert_int_equal(me_as(&server, authorization), user_base + 4);
    stop_server(&server);
}

int main(void)
{
    user_base = (long long)time(NULL) * 1000 + 500;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_session_is_required_and_a_good_token_is_accepted),
        cmocka_unit_test(logout_ends_one_session_and_revoking_a_user_all_of_them),
        cmocka_unit_test_teardown(a_hung_redis_is_503_for_sessions_only_and_the_token_works_after, resume_redis),
    };
    return cmocka_run_group_tests_name("integration.node.ext.session", tests, NULL, NULL);
}
