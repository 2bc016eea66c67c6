/* tests/integration/node/lib/engine_test.c: the engine (docs/engine.md) as a
 * service sees it. Each request runs on a fiber of its worker's loop, and a
 * store_run parks it on the worker's PostgreSQL pipe, so one worker thread
 * answers other connections while a statement runs; answers go back to the
 * right requests; a deadline ends a wait; a PostgreSQL restart, a client
 * that leaves and a node that stops answer or release every parked request.
 * Redis likewise, on the worker's own Redis connection.
 * One worker thread throughout: what a test sees is one loop's doing. Real
 * sockets, real PostgreSQL and Redis. */
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/store.h>

#include "cache_internal.h"
#include "context.h"
#include "http_client.h"
#include "test_env.h"
#include "test_node.h"
#include "test_pg.h"

#define SLEEP_STATEMENT "engine_test_sleep"
#define ECHO_STATEMENT "engine_test_echo"

/* ---- routes ------------------------------------------------------------------ */

static store_statement statement(shoal_ctx *ctx, const char *name)
{
    return store_registry_find(shoal_app_statements(shoal_ctx_app(ctx)), name);
}

/* GET /engine/sleep?ms=N: a statement that holds PostgreSQL for N ms. */
static int sleep_route(shoal_ctx *ctx)
{
    const char *ms = shoal_query(ctx, "ms");
    const char *params[] = {ms != NULL ? ms : "0"};
    store_result *result = NULL;
    if (store_run(shoal_store(ctx), statement(ctx, SLEEP_STATEMENT), params, &result) != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    store_result_free(result);
    return shoal_json(ctx, 200, json_pack("{s:s}", "slept", params[0]));
}

/* GET /engine/echo?n=K: K back from PostgreSQL, so that each answer shows
 * whose statement it was. */
static int echo_route(shoal_ctx *ctx)
{
    const char *n = shoal_query(ctx, "n");
    const char *params[] = {n != NULL ? n : "0"};
    store_result *result = NULL;
    if (store_run(shoal_store(ctx), statement(ctx, ECHO_STATEMENT), params, &result) != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    json_t *body = json_pack("{s:s}", "n", store_result_value(result, 0, 0));
    store_result_free(result);
    return shoal_json(ctx, 200, body);
}

/* GET /engine/redis?n=K: K back from Redis (ECHO), on the worker's
 * connection to the sessions' instance. */
static int redis_route(shoal_ctx *ctx)
{
    const char *n = shoal_query(ctx, "n");
    const char *argv[] = {"ECHO", n != NULL ? n : "0"};
    size_t lengths[] = {4, strlen(argv[1])};
    redisReply *reply = NULL;
    cache_status status = cache_command_argv(shoal_cache(ctx), 2, argv, lengths, &reply);
    if (status != CACHE_OK) {
        freeReplyObject(reply);
        return shoal_error(ctx, 503, "cache.unavailable", "body", "Redis did not answer");
    }
    json_t *body = json_pack("{s:s}", "n", reply->str);
    freeReplyObject(reply);
    return shoal_json(ctx, 200, body);
}

/* GET /engine/transaction: a transaction whose body also calls Redis,
 * which parks the request inside its transaction. */
static store_status transaction_body(store *s, void *data)
{
    shoal_ctx *ctx = data;
    const char *params[] = {"1"};
    for (int i = 0; i < 3; i++) {
        store_result *result = NULL;
        store_status status = store_run(s, statement(ctx, ECHO_STATEMENT), params, &result);
        if (status != STORE_OK)
            return status;
        store_result_free(result);
        const char *argv[] = {"ECHO", "in a transaction"};
        size_t lengths[] = {4, strlen(argv[1])};
        redisReply *reply = NULL;
        cache_status cached = cache_command_argv(shoal_cache(ctx), 2, argv, lengths, &reply);
        freeReplyObject(reply);
        if (cached != CACHE_OK)
            return STORE_UNAVAILABLE;
    }
    return STORE_OK;
}

static int transaction_route(shoal_ctx *ctx)
{
    if (store_transaction(shoal_store(ctx), STORE_READ_COMMITTED, transaction_body, ctx) != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    return shoal_json(ctx, 200, json_pack("{s:b}", "committed", 1));
}

/* GET /engine/fast: no tier at all. */
static int fast_route(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:b}", "fast", 1));
}

static int init(shoal_app *app, void *data)
{
    (void)data;
    store_registry *statements = shoal_app_statements(app);
    if (store_registry_add(statements, SLEEP_STATEMENT, "SELECT pg_sleep($1::float8 / 1000)", 1) < 0 ||
        store_registry_add(statements, ECHO_STATEMENT, "SELECT $1::int::text", 1) < 0)
        return -1;
    shoal_blueprint *bp = shoal_blueprint_new(app, "engine-test", "/engine");
    if (bp == NULL || shoal_route(bp, "GET", "/sleep", sleep_route) != 0 ||
        shoal_route(bp, "GET", "/echo", echo_route) != 0 || shoal_route(bp, "GET", "/fast", fast_route) != 0 ||
        shoal_route(bp, "GET", "/redis", redis_route) != 0 ||
        shoal_route(bp, "GET", "/transaction", transaction_route) != 0)
        return -1;
    return 0;
}

static const shoal_extension engine_routes = {.name = "engine-test", .init = init};

/* ---- helpers ------------------------------------------------------------------- */

static test_node node;

static long scaled_ms(long ms)
{
    return (long)(ms * test_env_time_scale());
}

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static void start(const char *deadline_ms)
{
    const char *flags[] = {"--threads", "1", "--max-in-flight", "1000", "--request-deadline-ms", deadline_ms, NULL};
    const shoal_extension *extensions[] = {&engine_routes, NULL};
    test_node_start(&node, flags, extensions);
}

/* GET path until it answers 200 (a tier coming back), at most 10 s
 * (scaled); the body holds expected. */
static void expect_200_again(const char *path, const char *expected)
{
    uint64_t until = now_ms() + (uint64_t)scaled_ms(10000);
    int status = 0;
    while (status != 200 && now_ms() < until) {
        test_response response = test_node_call(&node, "GET", path, NULL, NULL);
        status = response.status;
        if (status == 200 && strstr(response.body, expected) == NULL)
            fail_msg("%s: %s", path, response.body);
        test_http_response_free(&response);
        if (status != 200)
            usleep(100 * 1000);
    }
    assert_int_equal(status, 200);
}

/* ---- tests --------------------------------------------------------------------- */

/* The worker's one thread answers /fast on other connections while a
 * statement of another request runs: blocking, they would wait for it. */
static void a_slow_statement_does_not_hold_its_worker(void **state)
{
    (void)state;
    start("0");
    int slow = test_node_send_get(&node, "/engine/sleep?ms=800");
    usleep(100 * 1000);
    for (int i = 0; i < 3; i++) {
        uint64_t began = now_ms();
        test_response fast = test_node_call(&node, "GET", "/engine/fast", NULL, NULL);
        uint64_t took = now_ms() - began;
        assert_int_equal(fast.status, 200);
        test_http_response_free(&fast);
        if ((long)took > scaled_ms(400))
            fail_msg("/engine/fast took %llu ms beside an 800 ms statement", (unsigned long long)took);
    }
    test_response answer = test_node_read_answer(slow, 5000);
    assert_int_equal(answer.status, 200);
    test_http_response_free(&answer);
    close(slow);
    test_node_stop(&node);
}

/* A plain read beside another request's slow statement on the one worker:
 * it goes on the pipe's spill lane (docs/engine.md, "Head-of-line on the
 * pipe") and is answered long before the slow one ends, not behind it. */
static void a_plain_read_does_not_wait_behind_a_slow_statement(void **state)
{
    (void)state;
    char statement_timeout[32], answer_timeout[32], slow_path[64];
    snprintf(statement_timeout, sizeof statement_timeout, "%ld", scaled_ms(4000));
    snprintf(answer_timeout, sizeof answer_timeout, "%ld", scaled_ms(5000));
    snprintf(slow_path, sizeof slow_path, "/engine/sleep?ms=%ld", scaled_ms(1000));
    const char *flags[] = {"--threads", "1", "--max-in-flight", "1000", "--database-spill-after-ms", "20",
                           "--database-statement-timeout-ms", statement_timeout, "--database-timeout-ms",
                           answer_timeout, NULL};
    const shoal_extension *extensions[] = {&engine_routes, NULL};
    test_node_start(&node, flags, extensions);
    int slow = test_node_send_get(&node, slow_path);
    usleep(100 * 1000);
    uint64_t began = now_ms();
    test_response read = test_node_call(&node, "GET", "/engine/echo?n=11", NULL, NULL);
    uint64_t took = now_ms() - began;
    assert_int_equal(read.status, 200);
    assert_non_null(strstr(read.body, "\"11\""));
    test_http_response_free(&read);
    if ((long)took > scaled_ms(300))
        fail_msg("/engine/echo took %llu ms beside a %ld ms statement", (unsigned long long)took, scaled_ms(1000));
    test_response answer = test_node_read_answer(slow, 5000);
    assert_int_equal(answer.status, 200);
    test_http_response_free(&answer);
    close(slow);
    test_node_stop(&node);
}

/* Many requests parked on the one pipe at once: each gets its own
 * statement's answer. */
static void answers_go_back_to_their_requests(void **state)
{
    (void)state;
    start("0");
    enum { COUNT = 60 };
    int fds[COUNT];
    for (int i = 0; i < COUNT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/engine/echo?n=%d", 1000 + i);
        fds[i] = test_node_send_get(&node, path);
    }
    for (int i = 0; i < COUNT; i++) {
        test_response answer = test_node_read_answer(fds[i], 5000);
        assert_int_equal(answer.status, 200);
        char expected[32];
        snprintf(expected, sizeof expected, "\"%d\"", 1000 + i);
        if (strstr(answer.body, expected) == NULL)
            fail_msg("request %d got %s", 1000 + i, answer.body);
        test_http_response_free(&answer);
        close(fds[i]);
    }
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* A request whose deadline passes while its statement runs is answered 503
 * then, not when the statement ends; the statement's late answer does not
 * go to the next request. */
static void the_deadline_ends_a_wait(void **state)
{
    (void)state;
    char deadline[32];
    snprintf(deadline, sizeof deadline, "%ld", scaled_ms(400));
    start(deadline);
    uint64_t began = now_ms();
    int slow = test_node_send_get(&node, "/engine/sleep?ms=3000");
    test_response answer = test_node_read_answer(slow, 5000);
    uint64_t took = now_ms() - began;
    /* Sent, so its outcome is unknown: unavailable at the deadline, or a
     * timeout when the pipe's answer timeout (2 s) comes first (a slow
     * build's scaled deadline). */
    assert_int_equal(answer.status, 503);
    if (strstr(answer.body, "\"store.unavailable\"") == NULL && strstr(answer.body, "\"store.timeout\"") == NULL)
        fail_msg("not the store's 503: %s", answer.body);
    test_http_response_free(&answer);
    close(slow);
    if ((long)took > scaled_ms(800))
        fail_msg("a 400 ms deadline was answered after %llu ms", (unsigned long long)took);
    /* Statements behind the cancelled one wait for it on the pipe (it still
     * runs in PostgreSQL); once it ends, answers go to their own requests. */
    expect_200_again("/engine/echo?n=42", "\"42\"");
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* Requests parked inside their transactions (on Redis, on the store's own
 * connection) beside plain ones: each of the others runs outside them (a
 * transaction of its own waits for the connection, never refused as
 * nested: 500 before the connection had a holder; a plain statement goes to
 * the pipe, never into another's transaction). More of this in
 * engine_transaction_test. */
static void transactions_mix_with_plain_requests(void **state)
{
    (void)state;
    start("0");
    enum { COUNT = 10 };
    int fds[COUNT];
    for (int i = 0; i < COUNT; i++)
        fds[i] = test_node_send_get(&node, i % 2 == 0 ? "/engine/transaction" : "/engine/echo?n=5");
    for (int i = 0; i < COUNT; i++) {
        test_response answer = test_node_read_answer(fds[i], 5000);
        if (answer.status != 200)
            fail_msg("request %d answered %d: %s", i, answer.status, answer.body);
        test_http_response_free(&answer);
        close(fds[i]);
    }
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* HTTP-pipelined requests behind a parked one wait in libmicrohttpd's
 * buffer and are answered in order on the same connection. */
static void pipelined_requests_behind_a_parked_one(void **state)
{
    (void)state;
    start("0");
    int fd = test_http_connect(node.port);
    assert_true(fd >= 0);
    const char *text = "GET /engine/sleep?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /engine/fast HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /engine/echo?n=7 HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_true(test_http_send(fd, text, strlen(text)));
    const char *expected[] = {"\"slept\"", "\"fast\"", "\"7\""};
    for (int i = 0; i < 3; i++) {
        test_response answer = test_node_read_answer(fd, 5000);
        assert_int_equal(answer.status, 200);
        if (strstr(answer.body, expected[i]) == NULL)
            fail_msg("answer %d: %s", i, answer.body);
        test_http_response_free(&answer);
    }
    close(fd);
    test_node_stop(&node);
}

/* A client that leaves while its request is parked: the request ends, its
 * memory goes back, and the worker serves on. */
static void a_client_leaves_while_parked(void **state)
{
    (void)state;
    start("0");
    for (int i = 0; i < 5; i++)
        close(test_node_send_get(&node, "/engine/sleep?ms=100"));
    usleep((useconds_t)scaled_ms(800) * 1000);
    test_node_wait_until_idle(&node);
    test_response echo = test_node_call(&node, "GET", "/engine/echo?n=5", NULL, NULL);
    assert_int_equal(echo.status, 200);
    test_http_response_free(&echo);
    test_node_stop(&node);
}

/* A PostgreSQL restart with many statements in the pipeline (one holding
 * it, the rest sent behind): every request is answered, its result or 503,
 * none hangs; then the pipe connects again. */
static void a_postgres_restart_answers_every_parked_request(void **state)
{
    (void)state;
    start("0");
    enum { COUNT = 20 };
    int fds[COUNT + 1];
    fds[0] = test_node_send_get(&node, "/engine/sleep?ms=4000");
    usleep(100 * 1000);
    for (int i = 1; i <= COUNT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/engine/echo?n=%d", i);
        fds[i] = test_node_send_get(&node, path);
    }
    usleep(200 * 1000);
    test_pg_stop();
    test_pg_start();
    for (int i = 0; i <= COUNT; i++) {
        test_response answer = test_node_read_answer(fds[i], 10000);
        if (answer.status != 200 && answer.status != 503)
            fail_msg("request %d answered %d: %s", i, answer.status, answer.body);
        test_http_response_free(&answer);
        close(fds[i]);
    }
    expect_200_again("/engine/echo?n=9", "\"9\"");
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* Stopping the node with requests parked (libmicrohttpd 0.9.75 must not be
 * stopped with suspended connections): each is answered first. */
static void stopping_answers_parked_requests(void **state)
{
    (void)state;
    start("0");
    enum { COUNT = 3 };
    int fds[COUNT];
    for (int i = 0; i < COUNT; i++)
        fds[i] = test_node_send_get(&node, "/engine/sleep?ms=3000");
    usleep(200 * 1000);
    uint64_t began = now_ms();
    test_node_stop(&node);
    uint64_t took = now_ms() - began;
    for (int i = 0; i < COUNT; i++) {
        test_response answer = test_node_read_answer(fds[i], 5000);
        assert_int_equal(answer.status, 503);
        test_http_response_free(&answer);
        close(fds[i]);
    }
    if ((long)took > scaled_ms(2000))
        fail_msg("stopping took %llu ms", (unsigned long long)took);
}

/* Redis stopped (SIGSTOP) with requests waiting on it: each is answered
 * 503 at the Redis timeout (300 ms), and the worker answers /fast
 * meanwhile; once Redis goes on, answers go back to their requests. */
static void a_hung_redis_holds_only_its_own_requests(void **state)
{
    (void)state;
    start("0");
    pid_t redis = test_env_redis_pid();
    assert_int_equal(kill(redis, SIGSTOP), 0);
    enum { COUNT = 10 };
    int fds[COUNT];
    for (int i = 0; i < COUNT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/engine/redis?n=%d", i);
        fds[i] = test_node_send_get(&node, path);
    }
    uint64_t began = now_ms();
    test_response fast = test_node_call(&node, "GET", "/engine/fast", NULL, NULL);
    uint64_t took = now_ms() - began;
    assert_int_equal(fast.status, 200);
    test_http_response_free(&fast);
    for (int i = 0; i < COUNT; i++) {
        test_response answer = test_node_read_answer(fds[i], 5000);
        assert_int_equal(answer.status, 503);
        test_http_response_free(&answer);
        close(fds[i]);
    }
    assert_int_equal(kill(redis, SIGCONT), 0);
    if ((long)took > scaled_ms(250))
        fail_msg("/engine/fast took %llu ms beside a hung Redis", (unsigned long long)took);
    expect_200_again("/engine/redis?n=77", "\"77\"");
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* A Redis restart with commands out (stopped, then asked to shut down and
 * started again): every request is answered, its value or 503, none hangs;
 * then the worker's connection comes back. */
static void a_redis_restart_answers_every_parked_request(void **state)
{
    (void)state;
    start("0");
    pid_t redis = test_env_redis_pid();
    assert_int_equal(kill(redis, SIGSTOP), 0);
    enum { COUNT = 20 };
    int fds[COUNT];
    for (int i = 0; i < COUNT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/engine/redis?n=%d", i);
        fds[i] = test_node_send_get(&node, path);
    }
    usleep(100 * 1000);
    assert_int_equal(kill(redis, SIGCONT), 0);
    assert_int_equal(system(test_env_require("SHOAL_TEST_REDIS_STOP")), 0);
    assert_int_equal(system(test_env_require("SHOAL_TEST_REDIS_START")), 0);
    for (int i = 0; i < COUNT; i++) {
        test_response answer = test_node_read_answer(fds[i], 5000);
        if (answer.status != 200 && answer.status != 503)
            fail_msg("request %d answered %d: %s", i, answer.status, answer.body);
        test_http_response_free(&answer);
        close(fds[i]);
    }
    expect_200_again("/engine/redis?n=78", "\"78\"");
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* Redis running whatever a failed test left it: going on after a SIGSTOP,
 * and started again after a stop. */
static int stop_node_and_start_redis(void **state)
{
    test_node_stop_started(state);
    kill(test_env_redis_pid(), SIGCONT);
    if (system(test_env_require("SHOAL_TEST_REDIS_START")) != 0)
        return -1;
    return 0;
}

/* The node first: a failed assertion leaves PostgreSQL stopped maybe, and
 * the node with it. */
static int stop_node_and_start_postgres(void **state)
{
    test_node_stop_started(state);
    return test_pg_restart(state);
}

int main(void)
{
    test_env_require("SHOAL_TEST_DATABASE_URL");
    test_node_migrate();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(a_slow_statement_does_not_hold_its_worker, test_node_stop_started),
        cmocka_unit_test_teardown(a_plain_read_does_not_wait_behind_a_slow_statement, test_node_stop_started),
        cmocka_unit_test_teardown(answers_go_back_to_their_requests, test_node_stop_started),
        cmocka_unit_test_teardown(the_deadline_ends_a_wait, test_node_stop_started),
        cmocka_unit_test_teardown(transactions_mix_with_plain_requests, test_node_stop_started),
        cmocka_unit_test_teardown(pipelined_requests_behind_a_parked_one, test_node_stop_started),
        cmocka_unit_test_teardown(a_client_leaves_while_parked, test_node_stop_started),
        cmocka_unit_test_teardown(a_postgres_restart_answers_every_parked_request, stop_node_and_start_postgres),
        cmocka_unit_test_teardown(stopping_answers_parked_requests, test_node_stop_started),
        cmocka_unit_test_teardown(a_hung_redis_holds_only_its_own_requests, stop_node_and_start_redis),
        cmocka_unit_test_teardown(a_redis_restart_answers_every_parked_request, stop_node_and_start_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
