/* tests/integration/cache/cache_test.c: the worker's Redis connection
 * against a real Redis. */
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/cache.h>

#include "test_env.h"

/* A second, plain connection: the test's view of the server. */
static redisContext *observer(void)
{
    cache_endpoint endpoint;
    char error[128];
    assert_int_equal(cache_url_parse(TEST_REDIS_URL(), &endpoint, error, sizeof error), 0);
    redisContext *context = redisConnect(endpoint.host, endpoint.port);
    assert_non_null(context);
    assert_int_equal(context->err, 0);
    return context;
}

static void ping_answers_and_a_killed_connection_is_replaced(void **state)
{
    (void)state;
    char error[256];
    cache_config config = {.url = TEST_REDIS_URL(), .timeout_ms = 500};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    assert_int_equal(cache_ping(c), CACHE_OK);
    long long id = cache_client_id(c);
    assert_true(id > 0);

    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "CLIENT KILL ID %lld", id);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(reply->integer, 1);
    freeReplyObject(reply);
    redisFree(admin);

    assert_int_equal(cache_ping(c), CACHE_OK);
    assert_int_equal(cache_reconnect_count(c), 1);
    assert_true(cache_client_id(c) != id);
    cache_close(c);
}

static void the_url_database_is_selected(void **state)
{
    (void)state;
    char url[300];
    snprintf(url, sizeof url, "%s", TEST_REDIS_URL());
    char *slash = strrchr(url + 8, '/');
    if (slash != NULL)
        *slash = '\0';
    strncat(url, "/3", sizeof url - strlen(url) - 1);

    char error[256];
    cache_config config = {.url = url, .timeout_ms = 500};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    long long id = cache_client_id(c);
    assert_true(id > 0);

    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "CLIENT LIST ID %lld", id);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(reply->str, " db=3 "));
    freeReplyObject(reply);
    redisFree(admin);
    cache_close(c);
}

static void an_unreachable_server_is_unavailable(void **state)
{
    (void)state;
    char error[256];
    cache_config config = {.url = "redis://127.0.0.1:1/0", .timeout_ms = 300};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    assert_int_equal(cache_ping(c), CACHE_UNAVAILABLE);
    assert_false(cache_connected(c));
    for (int i = 0; i < 100; i++)
        assert_int_equal(cache_ping(c), CACHE_UNAVAILABLE);
    cache_close(c);
}

static void a_bad_url_is_refused_at_open(void **state)
{
    (void)state;
    char error[256] = "";
    cache_config config = {.url = "http://127.0.0.1:6379", .timeout_ms = 300};
    assert_null(cache_open(&config, error, sizeof error));
    assert_true(strlen(error) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ping_answers_and_a_killed_connection_is_replaced),
        cmocka_unit_test(the_url_database_is_selected),
        cmocka_unit_test(an_unreachable_server_is_unavailable),
        cmocka_unit_test(a_bad_url_is_refused_at_open),
    };
    return cmocka_run_group_tests_name("integration.cache", tests, NULL, NULL);
}
