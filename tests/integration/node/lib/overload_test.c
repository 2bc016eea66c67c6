/* tests/integration/node/lib/overload_test.c: a node that is full sheds new
 * requests with 503, Retry-After and the envelope while health checks and
 * metrics still answer; a request past its deadline starts no before hook,
 * handler or PostgreSQL call. Real sockets, real PostgreSQL and Redis. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/health.h>
#include <shoal/http.h>
#include <shoal/metrics.h>
#include <shoal/store.h>

#include "context.h"
#include "http_client.h"
#include "metrics_registry.h"
#include "test_env.h"

typedef struct test_server {
    shoal_config config;
    shoal_tier_monitor *monitor;
    shoal_app *app;
    shoal_http *http;
    int port;
    int admin_port;
} test_server;

static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

/* ---- routes only these tests use ---------------------------------------- */

/* ms times SHOAL_TEST_TIME_SCALE: valgrind and the sanitizers run the node
 * several times slower, and the deadlines below must stretch with it. */
static long scaled_ms(long ms)
{
    return (long)(ms * test_env_time_scale());
}

/* /test/block holds its worker until released (at most 10 s, scaled, so that
 * a failing test cannot hang), which fills the node deterministically. */
static pthread_mutex_t block_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_changed = PTHREAD_COND_INITIALIZER;
static int blocked_now;
static bool released;

static atomic_int handler_runs;
static store_statement select_one = -1;

static int block(shoal_ctx *ctx)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += scaled_ms(10000) / 1000;
    pthread_mutex_lock(&block_lock);
    blocked_now++;
    pthread_cond_broadcast(&block_changed);
    while (!released && pthread_cond_timedwait(&block_changed, &block_lock, &until) == 0)
        ;
    blocked_now--;
    pthread_mutex_unlock(&block_lock);
    return shoal_json(ctx, 200, json_pack("{s:b}", "blocked", 1));
}

static int quick(shoal_ctx *ctx)
{
    atomic_fetch_add(&handler_runs, 1);
    return shoal_json(ctx, 200, json_pack("{s:b}", "quick", 1));
}

/* Sleeps ?sleep_ms, then asks PostgreSQL. */
static int late_store(shoal_ctx *ctx)
{
    atomic_fetch_add(&handler_runs, 1);
    const char *text = shoal_query(ctx, "sleep_ms");
    long sleep_ms = text != NULL ? strtol(text, NULL, 10) : 0;
    struct timespec pause = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    store_result *result = NULL;
    store_status status = store_run(shoal_store(ctx), select_one, NULL, &result);
    if (status != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    shoal_keep_result(ctx, result);
    return shoal_json(ctx, 200, json_pack("{s:s}", "one", store_result_value(result, 0, 0)));
}

/* A before hook that takes its time on /test/slow-hook: hook_pause_ms,
 * which the test sets longer than the deadline. */
static long hook_pause_ms;

static shoal_flow slow_hook(shoal_ctx *ctx, void *data)
{
    (void)data;
    if (strcmp(shoal_path(ctx), "/test/slow-hook") == 0) {
        struct timespec pause = {hook_pause_ms / 1000, (hook_pause_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    return SHOAL_NEXT;
}

static int add_test_routes(shoal_app *app, void *data)
{
    (void)data;
    select_one = store_registry_add(shoal_app_statements(app), "overload_test_select_one", "SELECT 1", 0);
    shoal_blueprint *bp = shoal_blueprint_new(app, "test", "/test");
    if (select_one < 0 || bp == NULL || shoal_before(bp, slow_hook, NULL) != 0 ||
        shoal_route(bp, "GET", "/block", block) != 0 || shoal_route(bp, "GET|POST", "/quick", quick) != 0 ||
        shoal_route(bp, "GET", "/slow-hook", quick) != 0 || shoal_route(bp, "GET", "/store", late_store) != 0)
        return -1;
    return 0;
}

static const shoal_extension test_routes = {.name = "test-routes", .init = add_test_routes};

#define FLAGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The server a test started and has not stopped: a failed assertion leaves
 * the test at once, and stop_running_server, its teardown, stops it, so that
 * the tests after it do not run beside its threads (nor valgrind count its
 * memory as lost). Tests keep their server in static storage for that. */
static test_server *running;

static void start_server(test_server *server, const char *const *extra)
{
    const char *argv[64] = {"shoal-node", "--port", "0", "--admin-port", "0", "--access-log-sample", "0",
                            "--database-url", TEST_DATABASE_URL(), "--redis-url", TEST_REDIS_URL()};
    int argc = 11;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[argc++] = extra[i];
    char error[256];
    assert_int_equal(shoal_config_load(&server->config, argc, (char **)argv, no_environment, error, sizeof error), 0);
    server->monitor = shoal_tier_monitor_start(&server->config, 100);
    assert_non_null(server->monitor);
    server->app = shoal_app_new(&server->config);
    assert_non_null(server->app);
    shoal_extension health = shoal_health_extension(server->monitor);
    assert_int_equal(shoal_app_extend(server->app, &health), 0);
    assert_int_equal(shoal_app_extend(server->app, &shoal_metrics_extension), 0);
    assert_int_equal(shoal_app_extend(server->app, &test_routes), 0);
    server->http = shoal_http_start(server->app, error, sizeof error);
    assert_non_null(server->http);
    shoal_app_set_readiness(server->app, SHOAL_READY);
    server->port = shoal_http_port(server->http);
    assert_true(server->port > 0);
    server->admin_port = shoal_http_admin_port(server->http);
    atomic_store(&handler_runs, 0);
    blocked_now = 0;
    released = false;
    running = server;
}

static void stop_server(test_server *server)
{
    if (running == server)
        running = NULL;
    shoal_http_stop(server->http);
    shoal_app_free(server->app);
    shoal_tier_monitor_stop(server->monitor);
    shoal_config_free(&server->config);
}

/* 503, Retry-After, the JSON envelope with code. */
static void expect_refusal(const test_response *response, const char *code)
{
    assert_int_equal(response->status, 503);
    char value[64];
    assert_true(test_http_header(response, "Retry-After", value, sizeof value));
    assert_string_equal(value, "1");
    assert_true(test_http_header(response, "Content-Type", value, sizeof value));
    assert_string_equal(value, "application/json");
    json_error_t error;
    json_t *body = json_loads(response->body, 0, &error);
    assert_non_null(body);
    assert_true(json_is_array(json_object_get(json_object_get(body, "errors"), "body")));
    assert_string_equal(json_string_value(json_object_get(body, "code")), code);
    json_decref(body);
}

static void wait_blocked(int count)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += scaled_ms(5000) / 1000;
    pthread_mutex_lock(&block_lock);
    while (blocked_now < count && pthread_cond_timedwait(&block_changed, &block_lock, &until) == 0)
        ;
    int now = blocked_now;
    pthread_mutex_unlock(&block_lock);
    assert_int_equal(now, count);
}

static void release_blocked(void)
{
    pthread_mutex_lock(&block_lock);
    released = true;
    pthread_cond_broadcast(&block_changed);
    pthread_mutex_unlock(&block_lock);
}

static unsigned long shed_count(test_server *server, shoal_shed_reason reason)
{
    return (unsigned long)shoal_counter_total(server->app, shoal_app_core_metrics(server->app)->shed, reason);
}

static void wait_until_nothing_admitted(test_server *server)
{
    for (long waited = 0; shoal_app_admitted(server->app) > 0 && waited < scaled_ms(2000); waited += 2)
        usleep(2 * 1000);
    assert_int_equal(shoal_app_admitted(server->app), 0);
}

static void a_full_node_sheds_new_requests_and_serves_the_rest(void **state)
{
    (void)state;
    static test_server server;
    /* Four threads and room for two: two blocked requests fill the node
     * while two threads are still free to take (and refuse) more. */
    start_server(&server, FLAGS("--threads", "4", "--max-in-flight", "2"));

    const char *blocking = "GET /test/block HTTP/1.1\r\nHost: t\r\n\r\n";
    int held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = test_http_connect(server.port);
        assert_true(held[i] >= 0);
        assert_true(test_http_send(held[i], blocking, strlen(blocking)));
        /* One at a time: a busy thread accepts no connection, so each lands on a free one. */
        wait_blocked(i + 1);
    }

    test_response response;
    for (int i = 0; i < 3; i++) {
        assert_true(test_http_request(server.port, "GET /test/quick HTTP/1.1\r\nHost: t\r\n\r\n", &response));
        expect_refusal(&response, "node.overloaded");
        test_http_response_free(&response);
    }
    /* A body is read and dropped, and its connection stays usable. */
    int fd = test_http_connect(server.port);
    assert_true(fd >= 0);
    const char *post = "POST /test/quick HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                       "Content-Length: 13\r\n\r\n{\"a\":\"bcdef\"}GET /test/quick HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_true(test_http_send(fd, post, strlen(post)));
    for (int i = 0; i < 2; i++) {
        assert_true(test_http_read(fd, &response, false, 5000));
        expect_refusal(&response, "node.overloaded");
        test_http_response_free(&response);
    }
    close(fd);
    assert_int_equal(atomic_load(&handler_runs), 0); /* no refused request ran its handler */

    /* HAProxy and Prometheus still see the node, on the admin port, and
     * a client's simple check still gets the public /healthz. */
    assert_true(test_http_request(server.port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    assert_true(test_http_request(server.admin_port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    assert_true(test_http_request(server.admin_port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    assert_non_null(strstr(response.body, "shoal_http_requests_shed_total{reason=\"in_flight\"} 5\n"));
    assert_non_null(strstr(response.body, "shoal_http_requests_in_flight_limit 2\n"));
    test_http_response_free(&response);
    assert_int_equal(shed_count(&server, SHOAL_SHED_IN_FLIGHT), 5);

    /* The held requests finish, and the node takes new ones again. */
    release_blocked();
    for (int i = 0; i < 2; i++) {
        assert_true(test_http_read(held[i], &response, false, 5000));
        assert_int_equal(response.status, 200);
        test_http_response_free(&response);
        close(held[i]);
    }
    /* A request stops counting against --max-in-flight in libmicrohttpd's
     * completion callback, just after its answer went out, on its worker's
     * thread: the client may have read the answer (and sent the next request,
     * to another worker) first. So each waits for the one before to count
     * out, as two lagging ones would fill this node of two (seen under ASan). */
    for (int i = 0; i < 5; i++) {
        wait_until_nothing_admitted(&server);
        assert_true(test_http_request(server.port, "GET /test/quick HTTP/1.1\r\nHost: t\r\n\r\n", &response));
        assert_int_equal(response.status, 200);
        test_http_response_free(&response);
    }
    assert_int_equal(atomic_load(&handler_runs), 5);
    assert_int_equal(shed_count(&server, SHOAL_SHED_IN_FLIGHT), 5);
    stop_server(&server);
}

static void the_default_cap_follows_the_threads(void **state)
{
    (void)state;
    static test_server server;
    /* Past the floor of 128 (SHOAL_IN_FLIGHT_MIN): 5 x 32. */
    start_server(&server, FLAGS("--threads", "5"));
    assert_int_equal(server.config.max_in_flight, 5 * SHOAL_IN_FLIGHT_PER_THREAD);
    /* Well below the cap, nothing is shed. */
    test_response response;
    for (int i = 0; i < 20; i++) {
        assert_true(test_http_request(server.port, "GET /test/quick HTTP/1.1\r\nHost: t\r\n\r\n", &response));
        assert_int_equal(response.status, 200);
        test_http_response_free(&response);
    }
    assert_int_equal(shed_count(&server, SHOAL_SHED_IN_FLIGHT), 0);
    stop_server(&server);
}

static unsigned long postgres_calls(test_server *server)
{
    store_stats postgres;
    cache_stats redis;
    shoal_app_tier_totals(server->app, &postgres, &redis);
    return postgres.calls;
}

/* GET path with ?sleep_ms=ms appended when ms > 0. */
static void get_store(test_server *server, long sleep_ms, test_response *response)
{
    char request[128];
    if (sleep_ms > 0)
        snprintf(request, sizeof request, "GET /test/store?sleep_ms=%ld HTTP/1.1\r\nHost: t\r\n\r\n", sleep_ms);
    else
        snprintf(request, sizeof request, "GET /test/store HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(test_http_request(server->port, request, response));
}

static void past_its_deadline_a_request_starts_no_more_work(void **state)
{
    (void)state;
    static test_server server;
    /* The deadline, and every pause measured against it, in one scale: a
     * pause longer than the deadline passes it on any build, a short one
     * leaves it room. */
    long deadline_ms = scaled_ms(250);
    char deadline[32];
    snprintf(deadline, sizeof deadline, "%ld", deadline_ms);
    hook_pause_ms = deadline_ms * 8 / 5;
    start_server(&server, FLAGS("--threads", "2", "--request-deadline-ms", deadline));
    test_response response;

    /* In time: the statement runs. */
    get_store(&server, 0, &response);
    assert_int_equal(response.status, 200);
    assert_non_null(strstr(response.body, "\"one\""));
    test_http_response_free(&response);
    unsigned long calls = postgres_calls(&server);
    assert_true(calls >= 1);

    /* The handler outlives the deadline: its PostgreSQL call is not sent. */
    get_store(&server, deadline_ms * 8 / 5, &response);
    expect_refusal(&response, "request.deadline_exceeded");
    test_http_response_free(&response);
    assert_int_equal(postgres_calls(&server), calls);

    /* A before hook outlives it: the handler does not start. */
    int runs = atomic_load(&handler_runs);
    assert_true(test_http_request(server.port, "GET /test/slow-hook HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    expect_refusal(&response, "request.deadline_exceeded");
    test_http_response_free(&response);
    assert_int_equal(atomic_load(&handler_runs), runs);
    assert_int_equal(shed_count(&server, SHOAL_SHED_DEADLINE), 2);

    /* The worker's store keeps no deadline of a finished request. */
    get_store(&server, deadline_ms * 2 / 5, &response);
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    stop_server(&server);

    /* 0 switches the deadline off. */
    start_server(&server, FLAGS("--threads", "1", "--request-deadline-ms", "0"));
    get_store(&server, deadline_ms * 8 / 5, &response);
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    stop_server(&server);
}

/* GET /test/quick stamped by a proxy offset_ms from now. */
static void quick_stamped(test_server *server, long long offset_ms, test_response *response)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long stamp_us = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000 + offset_ms * 1000;
    char request[256];
    snprintf(request, sizeof request, "GET /test/quick HTTP/1.1\r\nHost: t\r\nX-Request-Start: t=%lld\r\n\r\n",
             stamp_us);
    assert_true(test_http_request(server->port, request, response));
}

static void time_waited_in_front_of_the_node_counts_against_the_deadline(void **state)
{
    (void)state;
    static test_server server;
    /* The test's client is on loopback, which --trusted-proxies trusts by
     * default. The deadline and the stamps' ages in one scale. */
    long deadline_ms = scaled_ms(500);
    char deadline[32];
    snprintf(deadline, sizeof deadline, "%ld", deadline_ms);
    start_server(&server, FLAGS("--threads", "2", "--request-deadline-ms", deadline));
    test_response response;
    quick_stamped(&server, -4 * deadline_ms, &response); /* waited in HAProxy's queue: 2 s in Release */
    expect_refusal(&response, "request.deadline_exceeded");
    test_http_response_free(&response);
    assert_int_equal(atomic_load(&handler_runs), 0);
    quick_stamped(&server, -deadline_ms / 5, &response);
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    quick_stamped(&server, 60000, &response); /* a proxy whose clock is ahead: no wait */
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    stop_server(&server);

    /* From a peer that is not a trusted proxy the stamp is not believed. */
    start_server(&server, FLAGS("--threads", "2", "--request-deadline-ms", deadline, "--trusted-proxies", ""));
    quick_stamped(&server, -4 * deadline_ms, &response);
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    stop_server(&server);
}

/* The teardown: lets held requests finish first, or stopping would wait for them. */
static int stop_running_server(void **state)
{
    (void)state;
    release_blocked();
    if (running != NULL)
        stop_server(running);
    return 0;
}

#define SERVER_TEST(test) cmocka_unit_test_teardown(test, stop_running_server)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SERVER_TEST(a_full_node_sheds_new_requests_and_serves_the_rest),
        SERVER_TEST(the_default_cap_follows_the_threads),
        SERVER_TEST(past_its_deadline_a_request_starts_no_more_work),
        SERVER_TEST(time_waited_in_front_of_the_node_counts_against_the_deadline),
    };
    return cmocka_run_group_tests_name("integration.node.overload", tests, NULL, NULL);
}
