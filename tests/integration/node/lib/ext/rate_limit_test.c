/* tests/integration/node/lib/ext/rate_limit_test.c: node/lib/ext/rate_limit.c over
 * HTTP against the fixture's real Redis: the default rules, 429 with
 * Retry-After, one bucket per client as a trusted proxy names it, a spoofed
 * X-Forwarded-For ignored, nodes sharing one limit, and Redis hung
 * (SIGSTOP, as a hung server looks to a client). Buckets outlive a run in
 * the fixture's Redis, so every test uses client addresses or paths of its
 * own. */
#include <signal.h>
#include <sys/random.h>
#include <sys/types.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/ext/rate_limit.h>
#include <shoal/ext/request_id.h>

#include "test_env.h"
#include "test_node.h"

/* ---- routes: the credential endpoints and a read, as the API will have
 * them, and a login under a per-run prefix ----------------------------------- */

static int answer_ok(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
}

static int add_routes(shoal_app *app, void *data)
{
    (void)data;
    shoal_blueprint *api = shoal_blueprint_new(app, "api", "/api");
    if (api == NULL || shoal_route(api, "POST", "/users/login", answer_ok) != 0 ||
        shoal_route(api, "POST", "/users", answer_ok) != 0 || shoal_route(api, "GET|PUT", "/user", answer_ok) != 0 ||
        shoal_route(api, "GET", "/articles", answer_ok) != 0 ||
        shoal_route(shoal_app_root(app), "POST", "/test/:run/login", answer_ok) != 0 ||
        shoal_route(shoal_app_root(app), "POST", "/test/:run/open", answer_ok) != 0)
        return -1;
    return 0;
}

static const shoal_extension test_routes = {.name = "test-routes", .init = add_routes};
static const shoal_extension *const extensions[] = {&shoal_request_id_extension, &shoal_rate_limit_extension,
                                                    &test_routes, NULL};

static unsigned long long nonce(void)
{
    unsigned long long value = 0;
    assert_int_equal(getrandom(&value, sizeof value, 0), (ssize_t)sizeof value);
    return value;
}

/* A client address nobody else uses, from the IPv6 documentation prefix. */
static void fresh_client(char *out, size_t size)
{
    unsigned long long value = nonce();
    /* Each group at least 0x1000, so the text is already canonical. */
    snprintf(out, size, "2001:db8::%x:%x:%x", ((unsigned)(value >> 32) & 0xffff) | 0x1000,
             ((unsigned)(value >> 16) & 0xffff) | 0x1000, ((unsigned)value & 0xffff) | 0x1000);
}

/* A request as HAProxy would pass it on: from loopback (trusted by
 * default), naming the client. forwarded may be NULL. */
static test_response send_as(const test_node *node, const char *method, const char *path, const char *forwarded)
{
    char headers[256] = "";
    if (forwarded != NULL)
        snprintf(headers, sizeof headers, "X-Forwarded-For: %s\r\n", forwarded);
    return test_node_call(node, method, path, headers, NULL);
}

static int status_of(const test_node *node, const char *method, const char *path, const char *forwarded)
{
    test_response response = send_as(node, method, path, forwarded);
    int status = response.status;
    test_http_response_free(&response);
    return status;
}

static void expect_429(test_response *response, long long max_retry_after)
{
    test_expect_error(response, 429, "rate.limited");
    long long retry_after = atoll(test_header(response, "Retry-After"));
    if (retry_after < 1 || retry_after > max_retry_after)
        fail_msg("Retry-After %lld is not within 1..%lld", retry_after, max_retry_after);
    assert_string_equal(test_header(response, "RateLimit-Remaining"), "0");
}

/* ---- tests -------------------------------------------------------------------- */

static void by_default_login_is_limited_after_its_burst_and_reads_never(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    char client[64];
    fresh_client(client, sizeof client);
    /* 10/min burst 5: five back to back, then one every 6 s. */
    for (int i = 0; i < 5; i++) {
        test_response response = send_as(&node, "POST", "/api/users/login", client);
        assert_int_equal(response.status, 200);
        assert_string_equal(test_header(&response, "RateLimit-Limit"), "5");
        char remaining[8];
        snprintf(remaining, sizeof remaining, "%d", 4 - i);
        assert_string_equal(test_header(&response, "RateLimit-Remaining"), remaining);
        test_http_response_free(&response);
    }
    test_response response = send_as(&node, "POST", "/api/users/login", client);
    expect_429(&response, 6);
    assert_string_equal(test_header(&response, "RateLimit-Limit"), "5");
    /* The other hooks still ran: the answer has its request id. */
    assert_true(test_header(&response, "X-Request-ID")[0] != '\0');
    test_http_response_free(&response);

    /* Registration is its own bucket; reads have none. */
    response = send_as(&node, "POST", "/api/users", client);
    assert_int_equal(response.status, 200);
    assert_string_equal(test_header(&response, "RateLimit-Limit"), "10");
    test_http_response_free(&response);
    for (int i = 0; i < 30; i++) {
        /* Nor do other writes unless a rule names them. */
        const char *method = i % 3 == 0 ? "PUT" : "GET";
        response = send_as(&node, method, i % 3 == 1 ? "/api/articles" : "/api/user", client);
        assert_int_equal(response.status, 200);
        assert_string_equal(test_header(&response, "RateLimit-Limit"), "");
        test_http_response_free(&response);
    }
    test_node_stop(&node);
}

static void each_client_a_trusted_proxy_names_has_its_own_bucket(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    char first[64], second[64];
    fresh_client(first, sizeof first);
    fresh_client(second, sizeof second);
    for (int i = 0; i < 5; i++)
        assert_int_equal(status_of(&node, "POST", "/api/users/login", first), 200);
    assert_int_equal(status_of(&node, "POST", "/api/users/login", first), 429);
    assert_int_equal(status_of(&node, "POST", "/api/users/login", second), 200);
    /* The right-most entry that is not a trusted proxy is the client: what
     * the client itself wrote before it does not matter. */
    char chain[160];
    snprintf(chain, sizeof chain, "%s, %s", second, first);
    assert_int_equal(status_of(&node, "POST", "/api/users/login", chain), 429);
    snprintf(chain, sizeof chain, "%s, %s, 127.0.0.1", first, second);
    assert_int_equal(status_of(&node, "POST", "/api/users/login", chain), 200);
    test_node_stop(&node);
}

static void an_untrusted_peer_cannot_choose_its_address(void **state)
{
    (void)state;
    char rule[128], path[64];
    unsigned long long run = nonce();
    snprintf(rule, sizeof rule, "POST /test/%llx/login=2/min", run);
    snprintf(path, sizeof path, "/test/%llx/login", run);
    const char *const flags[] = {"--trusted-proxies", "", "--rate-limits", rule, NULL};
    static test_node node;
    test_node_start(&node, flags, extensions);
    /* Three made-up clients, all from the one untrusted peer: one bucket. */
    char client[64];
    for (int i = 0; i < 2; i++) {
        fresh_client(client, sizeof client);
        assert_int_equal(status_of(&node, "POST", path, client), 200);
    }
    fresh_client(client, sizeof client);
    test_response response = send_as(&node, "POST", path, client);
    expect_429(&response, 30);
    test_http_response_free(&response);
    assert_int_equal(status_of(&node, "POST", path, NULL), 429);
    test_node_stop(&node);
}

static void nodes_share_one_limit(void **state)
{
    (void)state;
    char rule[128], path[64];
    unsigned long long run = nonce();
    snprintf(rule, sizeof rule, "POST /test/%llx/login=4/min", run);
    snprintf(path, sizeof path, "/test/%llx/login", run);
    const char *const flags[] = {"--rate-limits", rule, NULL};
    static test_node first, second;
    test_node_start(&first, flags, extensions);
    test_node_start(&second, flags, extensions);
    char client[64];
    fresh_client(client, sizeof client);
    int allowed = 0;
    for (int i = 0; i < 8; i++)
        allowed += status_of(i % 2 == 0 ? &first : &second, "POST", path, client) == 200;
    assert_int_equal(allowed, 4);
    assert_int_equal(status_of(&first, "POST", path, client), 429);
    assert_int_equal(status_of(&second, "POST", path, client), 429);
    test_node_stop(&first);
    test_node_stop(&second);
}

static void the_bucket_refills_at_the_configured_rate(void **state)
{
    (void)state;
    char rule[128], path[64];
    unsigned long long run = nonce();
    /* Two per second in a Release build (a slot every 500 ms), two per
     * `seconds` with SHOAL_TEST_TIME_SCALE: the second request must come
     * within a slot of the first on any build, and each may be a worker's
     * first use of Redis. */
    int seconds = (int)test_env_time_scale();
    if (seconds < test_env_time_scale())
        seconds++;
    snprintf(rule, sizeof rule, "POST /test/%llx/login=2/%ds burst 1", run, seconds);
    snprintf(path, sizeof path, "/test/%llx/login", run);
    const char *const flags[] = {"--rate-limits", rule, NULL};
    static test_node node;
    test_node_start(&node, flags, extensions);
    assert_int_equal(status_of(&node, "POST", path, NULL), 200);
    test_response response = send_as(&node, "POST", path, NULL);
    /* At most a slot to the next one, rounded up to a whole second. */
    expect_429(&response, (seconds + 1) / 2);
    test_http_response_free(&response);
    usleep((useconds_t)seconds * 600 * 1000);
    assert_int_equal(status_of(&node, "POST", path, NULL), 200);
    test_node_stop(&node);
}

/* Whatever happened in the test, the fixture's Redis runs again, and the
 * test's node stops. */
static int resume_redis(void **state)
{
    kill(test_env_redis_pid(), SIGCONT);
    return test_node_stop_started(state);
}

static void with_redis_hung_a_rule_fails_closed_unless_it_says_fail_open(void **state)
{
    (void)state;
    char rules[256], closed[64], open[64];
    unsigned long long run = nonce();
    snprintf(rules, sizeof rules, "POST /test/%llx/login=5/min,POST /test/%llx/open=5/min fail-open", run, run);
    snprintf(closed, sizeof closed, "/test/%llx/login", run);
    snprintf(open, sizeof open, "/test/%llx/open", run);
    const char *const flags[] = {"--rate-limits", rules, NULL};
    static test_node node;
    test_node_start(&node, flags, extensions);
    assert_int_equal(status_of(&node, "POST", closed, NULL), 200);

    pid_t redis = test_env_redis_pid();
    assert_int_equal(kill(redis, SIGSTOP), 0);
    test_response response = send_as(&node, "POST", closed, NULL);
    test_expect_error(&response, 503, "cache.unavailable");
    assert_string_equal(test_header(&response, "Retry-After"), "1");
    test_http_response_free(&response);
    response = send_as(&node, "POST", open, NULL);
    assert_int_equal(response.status, 200);
    assert_string_equal(test_header(&response, "RateLimit-Remaining"), "");
    test_http_response_free(&response);
    /* Routes without a rule never wait for Redis. */
    assert_int_equal(status_of(&node, "GET", "/api/articles", NULL), 200);

    assert_int_equal(kill(redis, SIGCONT), 0);
    int status = 0;
    for (int i = 0; i < 50 * test_env_time_scale() && status != 200; i++) {
        status = status_of(&node, "POST", closed, NULL);
        if (status != 200)
            usleep(100 * 1000);
    }
    assert_int_equal(status, 200);
    test_node_stop(&node);
}

/* Each test's node is stopped after it, also when an assertion failed. */
#define NODE_TEST(test) cmocka_unit_test_teardown(test, test_node_stop_started)

int main(void)
{
    const struct CMUnitTest tests[] = {
        NODE_TEST(by_default_login_is_limited_after_its_burst_and_reads_never),
        NODE_TEST(each_client_a_trusted_proxy_names_has_its_own_bucket),
        NODE_TEST(an_untrusted_peer_cannot_choose_its_address),
        NODE_TEST(nodes_share_one_limit),
        NODE_TEST(the_bucket_refills_at_the_configured_rate),
        cmocka_unit_test_teardown(with_redis_hung_a_rule_fails_closed_unless_it_says_fail_open, resume_redis),
    };
    return cmocka_run_group_tests_name("integration.node.ext.rate_limit", tests, NULL, NULL);
}
