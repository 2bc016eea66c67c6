/* tests/integration/node/lib/http_test.c: the HTTP core over real sockets, with
 * real PostgreSQL and Redis behind /readyz, on both listeners (public and
 * admin). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
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

#include <shoal/ext/cors.h>
#include <shoal/ext/request_id.h>
#include <shoal/health.h>
#include <shoal/http.h>
#include <shoal/metrics.h>

#include "context.h"
#include "http_client.h"
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

static int echo_item(shoal_ctx *ctx)
{
    json_t *body = NULL;
    json_t *item = NULL;
    if (!shoal_json_body(ctx, &body) || !shoal_json_member(ctx, body, "item", JSON_OBJECT, true, &item))
        return 0;
    return shoal_json(ctx, 201, json_pack("{s:O}", "item", item));
}

static int item_by_id(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:s}", "id", shoal_param(ctx, "id")));
}

/* ms times SHOAL_TEST_TIME_SCALE: the waits here are written for a Release
 * build, and valgrind or the sanitizers run the node several times slower. */
static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static int scaled_ms(int ms)
{
    return (int)(ms * test_env_time_scale());
}

/* /test/slow runs until the test lets it finish (or 10 s, scaled, so that a
 * failed test cannot hold the node forever): a request that is in flight
 * for exactly as long as the test needs, without a fixed sleep. */
static atomic_bool slow_may_finish;

static int slow(shoal_ctx *ctx)
{
    for (int waited = 0; !atomic_load(&slow_may_finish) && waited < scaled_ms(10000); waited += 5)
        usleep(5 * 1000);
    return shoal_json(ctx, 200, json_pack("{s:b}", "slow", 1));
}

static int add_test_routes(shoal_app *app, void *data)
{
    (void)data;
    shoal_blueprint *bp = shoal_blueprint_new(app, "test", "/test");
    if (bp == NULL || shoal_route(bp, "POST", "/echo", echo_item) != 0 ||
        shoal_route(bp, "GET", "/items/:id", item_by_id) != 0 || shoal_route(bp, "GET", "/slow", slow) != 0)
        return -1;
    return 0;
}

static const shoal_extension test_routes = {.name = "test-routes", .init = add_test_routes};

/* The server a test started and has not stopped: a failed assertion leaves
 * the test at once, and stop_running_server, its teardown, stops it, so that
 * the tests after it do not run beside its threads (nor valgrind count its
 * memory as lost). Tests keep their server in static storage for that. */
static test_server *running;

/* Starts a node on a free port; extra holds more flags, NULL-terminated. */
static void start_server(test_server *server, const char *database_url, const char *redis_url,
                         const char *const *extra)
{
    const char *argv[64] = {"shoal-node", "--port", "0", "--admin-port", "0", "--threads", "2",
                            "--access-log-sample", "0", "--database-url", database_url, "--redis-url", redis_url,
                            "--redis-timeout-ms", "300", "--database-connect-timeout", "1"};
    int argc = 17;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[argc++] = extra[i];

    char error[256];
    assert_int_equal(shoal_config_load(&server->config, argc, (char **)argv, no_environment, error, sizeof error), 0);
    /* A short probe interval, so that tests see a tier change quickly. */
    server->monitor = shoal_tier_monitor_start(&server->config, 100);
    assert_non_null(server->monitor);
    server->app = shoal_app_new(&server->config);
    assert_non_null(server->app);
    shoal_extension health = shoal_health_extension(server->monitor);
    assert_int_equal(shoal_app_extend(server->app, &shoal_request_id_extension), 0);
    assert_int_equal(shoal_app_extend(server->app, &shoal_cors_extension), 0);
    assert_int_equal(shoal_app_extend(server->app, &health), 0);
    assert_int_equal(shoal_app_extend(server->app, &shoal_metrics_extension), 0);
    assert_int_equal(shoal_app_extend(server->app, &test_routes), 0);
    server->http = shoal_http_start(server->app, error, sizeof error);
    assert_non_null(server->http);
    shoal_app_set_readiness(server->app, SHOAL_READY);
    server->port = shoal_http_port(server->http);
    assert_true(server->port > 0);
    server->admin_port = shoal_http_admin_port(server->http);
    assert_true(server->admin_port > 0 && server->admin_port != server->port);
    running = server;
}

#define FLAGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void start_default(test_server *server, const char *const *extra)
{
    start_server(server, TEST_DATABASE_URL(), TEST_REDIS_URL(), extra);
}

/* Polls (scaled) until the node counts `wanted` requests in flight: the
 * count goes up when a handler is dispatched and down in libmicrohttpd's
 * completion callback, just after the answer went out, so a client can read
 * an answer before it drops. */
static bool wait_in_flight(test_server *server, int wanted, int timeout_ms)
{
    for (int waited = 0; waited < scaled_ms(timeout_ms); waited += 5) {
        if (shoal_app_in_flight(server->app) == wanted)
            return true;
        usleep(5 * 1000);
    }
    return shoal_app_in_flight(server->app) == wanted;
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

static int stop_running_server(void **state)
{
    (void)state;
    atomic_store(&slow_may_finish, true); /* or stopping would wait for it */
    if (running != NULL)
        stop_server(running);
    return 0;
}

static void expect_standard_headers(const test_response *response)
{
    char value[128];
    assert_true(test_http_header(response, "Date", value, sizeof value));
    assert_true(strstr(value, "GMT") != NULL);
    assert_true(test_http_header(response, "Server", value, sizeof value));
    assert_true(strncmp(value, "shoal/", 6) == 0);
}

static void expect_error(const test_response *response, int status, const char *code)
{
    assert_int_equal(response->status, status);
    char type[64];
    assert_true(test_http_header(response, "Content-Type", type, sizeof type));
    assert_string_equal(type, "application/json");
    json_error_t error;
    json_t *body = json_loads(response->body, 0, &error);
    assert_non_null(body);
    assert_true(json_is_object(json_object_get(body, "errors")));
    assert_string_equal(json_string_value(json_object_get(body, "code")), code);
    json_decref(body);
}

/* GET path on port, answered with status; the caller frees the response. */
static test_response get(int port, const char *path, const char *headers, int status)
{
    char request[512];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", path, headers);
    test_response response;
    assert_true(test_http_request(port, request, &response));
    if (response.status != status)
        fail_msg("GET %s on port %d: %d, not %d: %s", path, port, response.status, status, response.body);
    return response;
}

/* ---- tests ---------------------------------------------------------------- */

static void every_answer_carries_date_and_server(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--max-body-bytes", "1k"));
    const char *requests[] = {
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    };
    const int statuses[] = {200, 404, 413};
    for (size_t i = 0; i < 3; i++) {
        test_response response;
        assert_true(test_http_request(server.port, requests[i], &response));
        assert_int_equal(response.status, statuses[i]);
        expect_standard_headers(&response);
        test_http_response_free(&response);
    }
    stop_server(&server);
}

static void keep_alive_and_pipelining_share_one_connection(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    int fd = test_http_connect(server.port);
    assert_true(fd >= 0);
    /* Three requests in one write: the server must answer all, in order. */
    const char *pipelined = "GET /test/items/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /test/items/2 HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /test/items/3 HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_true(test_http_send(fd, pipelined, strlen(pipelined)));
    for (int i = 1; i <= 3; i++) {
        test_response response;
        assert_true(test_http_read(fd, &response, false, 3000));
        assert_int_equal(response.status, 200);
        char expected[32];
        snprintf(expected, sizeof expected, "{\"id\":\"%d\"}", i);
        assert_string_equal(response.body, expected);
        char connection[32];
        assert_false(test_http_header(&response, "Connection", connection, sizeof connection) &&
                     strcmp(connection, "close") == 0);
        test_http_response_free(&response);
    }
    /* And the connection is still usable afterwards. */
    const char *again = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_true(test_http_send(fd, again, strlen(again)));
    test_response response;
    assert_true(test_http_read(fd, &response, false, 3000));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    close(fd);
    stop_server(&server);
}

static void unknown_paths_and_methods_get_404_405_and_options(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    test_response response;
    assert_true(test_http_request(server.port, "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    expect_error(&response, 404, "route.not_found");
    test_http_response_free(&response);

    assert_true(test_http_request(server.port, "DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    expect_error(&response, 405, "route.method_not_allowed");
    char allow[64];
    assert_true(test_http_header(&response, "Allow", allow, sizeof allow));
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
    test_http_response_free(&response);

    assert_true(test_http_request(server.port, "OPTIONS /test/echo HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 204);
    assert_true(test_http_header(&response, "Allow", allow, sizeof allow));
    assert_string_equal(allow, "POST, OPTIONS");
    test_http_response_free(&response);

    assert_true(test_http_request(server.port, "HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    assert_int_equal(response.body_length, 0);
    test_http_response_free(&response);
    stop_server(&server);
}

static void oversized_bodies_get_413_with_the_envelope(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--max-body-bytes", "1k"));
    test_response response;

    /* A client that waits for 100 Continue is answered before it sends. */
    assert_true(test_http_request(server.port,
                                  "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 8388608\r\nExpect: 100-continue\r\n\r\n",
                                  &response));
    expect_error(&response, 413, "request.body_too_large");
    test_http_response_free(&response);

    /* So is one announcing more than the node would ever read and drop. */
    assert_true(test_http_request(server.port,
                                  "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1073741824\r\n\r\n",
                                  &response));
    expect_error(&response, 413, "request.body_too_large");
    test_http_response_free(&response);

    /* Any other client is already sending: the body is read and dropped,
     * then answered, and the connection stays usable. */
    int fd = test_http_connect(server.port);
    assert_true(fd >= 0);
    static char oversized[5000];
    memset(oversized, 'x', sizeof oversized);
    const char *announced = "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n";
    assert_true(test_http_send(fd, announced, strlen(announced)));
    assert_true(test_http_send(fd, oversized, sizeof oversized));
    assert_true(test_http_read(fd, &response, false, 3000));
    expect_error(&response, 413, "request.body_too_large");
    test_http_response_free(&response);
    const char *next = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_true(test_http_send(fd, next, strlen(next)));
    assert_true(test_http_read(fd, &response, false, 3000));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    close(fd);

    /* Chunked, so the size is only known while reading. */
    fd = test_http_connect(server.port);
    assert_true(fd >= 0);
    const char *head = "POST /test/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_true(test_http_send(fd, head, strlen(head)));
    char chunk[600 + 16];
    int header_length = snprintf(chunk, sizeof chunk, "%x\r\n", 600);
    memset(chunk + header_length, 'x', 600);
    memcpy(chunk + header_length + 600, "\r\n", 2);
    for (int i = 0; i < 3; i++)
        assert_true(test_http_send(fd, chunk, (size_t)header_length + 602));
    assert_true(test_http_send(fd, "0\r\n\r\n", 5));
    assert_true(test_http_read(fd, &response, false, 3000));
    expect_error(&response, 413, "request.body_too_large");
    test_http_response_free(&response);
    close(fd);

    /* A body within the limit still works. */
    const char *small = "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        "Content-Length: 16\r\n\r\n{\"item\":{\"a\":1}}";
    assert_true(test_http_request(server.port, small, &response));
    assert_int_equal(response.status, 201);
    assert_string_equal(response.body, "{\"item\":{\"a\":1}}");
    test_http_response_free(&response);
    stop_server(&server);
}

static void oversized_headers_get_431_with_the_envelope(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--max-header-bytes", "2k"));
    char request[4096];
    char filler[2500];
    memset(filler, 'a', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    snprintf(request, sizeof request, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: %s\r\n\r\n", filler);
    test_response response;
    assert_true(test_http_request(server.port, request, &response));
    expect_error(&response, 431, "request.headers_too_large");
    test_http_response_free(&response);

    filler[1500] = '\0';
    snprintf(request, sizeof request, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: %s\r\n\r\n", filler);
    assert_true(test_http_request(server.port, request, &response));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    stop_server(&server);
}

/* The connection's memory holds a head at the limit plus some room (the
 * answer's headers); a head far beyond that cannot even be parsed, and
 * libmicrohttpd answers 431 itself (without the envelope) and closes. It
 * must still be an answer, not a dropped connection. */
static void headers_far_past_the_limit_still_get_431(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--max-header-bytes", "2k"));
    static char request[16 * 1024];
    static char filler[12 * 1024];
    memset(filler, 'a', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    snprintf(request, sizeof request, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: %s\r\n\r\n", filler);
    test_response response;
    assert_true(test_http_request(server.port, request, &response));
    assert_int_equal(response.status, 431);
    test_http_response_free(&response);

    /* The node goes on answering. */
    assert_true(test_http_request(server.port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    stop_server(&server);
}

static void long_queries_count_against_the_header_limit(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--max-header-bytes", "2k"));
    char request[4096];
    char filler[1500];
    memset(filler, 'q', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    /* 1.5 kB of query plus 1.5 kB of header: each fits, together they do not. */
    snprintf(request, sizeof request, "GET /healthz?padding=%s HTTP/1.1\r\nHost: t\r\nX-Filler: %s\r\n\r\n",
             filler, filler);
    test_response response;
    assert_true(test_http_request(server.port, request, &response));
    expect_error(&response, 431, "request.headers_too_large");
    test_http_response_free(&response);
    stop_server(&server);
}

static void an_encoded_nul_never_cuts_the_path_short(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    test_response response;
    /* Decoded to a NUL, this would route and log as "/healthz". */
    assert_true(test_http_request(server.port, "GET /healthz%00.json HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    expect_error(&response, 404, "route.not_found");
    test_http_response_free(&response);

    /* Other escapes are decoded, in the path and in parameters. */
    assert_true(test_http_request(server.port, "GET /test/items/caf%C3%A9%20au%20lait HTTP/1.1\r\nHost: t\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 200);
    assert_string_equal(response.body, "{\"id\":\"caf\u00e9 au lait\"}");
    test_http_response_free(&response);
    assert_true(test_http_request(server.port, "GET /test/items/a%00b HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    assert_string_equal(response.body, "{\"id\":\"a%00b\"}");
    test_http_response_free(&response);
    stop_server(&server);
}

/* Found by tests/e2e/hostile_test.py: invalid UTF-8 in a path parameter
 * or a filter went to PostgreSQL, which refused it (500 store.error); a
 * second Content-Length framed the body one way here and possibly another
 * way in a proxy in front. Each is refused before any handler. */
static void malformed_requests_get_400_with_the_envelope(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    test_response response;
    const char *malformed[] = {
        "GET /test/items/%ff%fe HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /test/items/x?filter=%c0%af HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /test/items/x?%ed%a0%80=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /test/items/x HTTP/1.1\r\n\r\n",
        "GET /test/items/x HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
        "GET /test/items/x HTTP/1.1\r\nHost: t\r\nX-Control: a\001b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        assert_true(test_http_request(server.port, malformed[i], &response));
        expect_error(&response, 400, "request.malformed");
        test_http_response_free(&response);
    }

    /* Two lengths: answered at once, and the connection is closed, so what
     * follows the shorter body is never read as a request. */
    int fd = test_http_connect(server.port);
    assert_true(fd >= 0);
    const char *smuggled = "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n"
                           "{}GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_true(test_http_send(fd, smuggled, strlen(smuggled)));
    assert_true(test_http_read(fd, &response, false, 3000));
    expect_error(&response, 400, "request.malformed");
    test_http_response_free(&response);
    assert_true(test_http_closed_within(fd, 3000));
    close(fd);

    /* Valid UTF-8 and HTTP/1.0 without Host are fine. */
    assert_true(test_http_request(server.port, "GET /test/items/caf%C3%A9?q=%E2%82%AC HTTP/1.1\r\nHost: t\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    assert_true(test_http_request(server.port, "GET /healthz HTTP/1.0\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    stop_server(&server);
}

static void post_json(int port, const char *body, test_response *response)
{
    char request[2048];
    snprintf(request, sizeof request,
             "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    assert_true(test_http_request(port, request, response));
}

static void malformed_json_is_400_and_wrong_shape_is_422(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--max-json-depth", "4"));
    test_response response;
    post_json(server.port, "{\"item\": ", &response);
    expect_error(&response, 400, "request.malformed_json");
    test_http_response_free(&response);

    post_json(server.port, "{\"item\":{\"a\":[[[[1]]]]}}", &response);
    expect_error(&response, 400, "request.json_too_deep");
    test_http_response_free(&response);

    post_json(server.port, "{\"other\":{}}", &response);
    expect_error(&response, 422, "request.missing_field");
    assert_non_null(strstr(response.body, "\"item\""));
    test_http_response_free(&response);

    post_json(server.port, "{\"item\":\"text\"}", &response);
    expect_error(&response, 422, "request.invalid_field");
    test_http_response_free(&response);

    const char *form = "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                       "Content-Length: 2\r\n\r\n{}";
    assert_true(test_http_request(server.port, form, &response));
    expect_error(&response, 415, "request.unsupported_media_type");
    test_http_response_free(&response);
    stop_server(&server);
}

static void slow_clients_are_dropped_while_others_are_served(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--connection-timeout", "1"));
    int slow_fd = test_http_connect(server.port);
    assert_true(slow_fd >= 0);
    assert_true(test_http_send(slow_fd, "GET /healthz HTTP/1.1\r\nHo", 25));

    test_response response;
    assert_true(test_http_request(server.port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);

    assert_true(test_http_closed_within(slow_fd, 4000));
    close(slow_fd);
    stop_server(&server);
}

static void connections_past_the_limit_are_refused(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--max-connections", "2", "--threads", "1"));
    int first = test_http_connect(server.port);
    int second = test_http_connect(server.port);
    assert_true(first >= 0 && second >= 0);
    /* Make sure both are accepted before the third knocks. */
    const char *request = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    test_response response;
    assert_true(test_http_send(first, request, strlen(request)) && test_http_read(first, &response, false, 3000));
    test_http_response_free(&response);
    assert_true(test_http_send(second, request, strlen(request)) && test_http_read(second, &response, false, 3000));
    test_http_response_free(&response);

    int third = test_http_connect(server.port);
    assert_true(third >= 0); /* the kernel accepts; the server closes it */
    test_http_send(third, request, strlen(request));
    /* Nothing comes back on it (or it is closed) while the worker is at
     * its limit: a wait for nothing, so not stretched with the time scale. */
    struct pollfd waiting = {.fd = third, .events = POLLIN};
    if (poll(&waiting, 1, 1500) == 1) {
        char byte;
        assert_true(recv(third, &byte, 1, 0) <= 0);
    }
    close(third);

    /* The slot is free once the node's one thread has seen the close: until
     * then a new connection waits as the third did. Then the worker accepts
     * again at once (it stops watching the listening socket at its limit
     * and watches it again when one of its connections closes; when
     * libmicrohttpd accepted, a new connection waited for its next timeout,
     * 30 s). */
    close(first);
    bool served = false;
    uint64_t until = monotonic_ms() + (uint64_t)scaled_ms(3000);
    while (!served && monotonic_ms() < until)
        if (!(served = test_http_request(server.port, request, &response)))
            usleep(20 * 1000);
    assert_true(served);
    assert_true(monotonic_ms() < until);
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    close(second);
    stop_server(&server);
}

/* The connections one worker holds, from /metrics; -1 when not listed. */
static int worker_connections(const test_server *server, unsigned worker)
{
    test_response response = get(server->admin_port, "/metrics", "", 200);
    char sample[64];
    snprintf(sample, sizeof sample, "shoal_http_connections{worker=\"%u\"} ", worker);
    const char *at = strstr(response.body, sample);
    int open = at != NULL ? atoi(at + strlen(sample)) : -1;
    test_http_response_free(&response);
    return open;
}

/* Connections opened at once (as wrk, or HAProxy at a surge, opens them)
 * are spread over the workers: when libmicrohttpd accepted, whichever
 * worker woke first took them ten at a time. */
static void new_connections_are_spread_over_the_workers(void **state)
{
    (void)state;
    enum { CONNECTIONS = 128 };
    static test_server server;
    start_default(&server, FLAGS("--threads", "2"));
    int fds[CONNECTIONS];
    for (int i = 0; i < CONNECTIONS; i++) {
        fds[i] = test_http_connect(server.port);
        assert_true(fds[i] >= 0);
    }
    const char *request = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < CONNECTIONS; i++)
        assert_true(test_http_send(fds[i], request, strlen(request)));
    for (int i = 0; i < CONNECTIONS; i++) {
        test_response response;
        assert_true(test_http_read(fds[i], &response, false, scaled_ms(3000)));
        assert_int_equal(response.status, 200);
        test_http_response_free(&response);
    }
    /* Every connection is open and answered: each worker counts its own. A
     * fair split is 64 each. With libmicrohttpd accepting, 5 runs in 6
     * split 85/43 to 128/0. */
    int first = worker_connections(&server, 0);
    int second = worker_connections(&server, 1);
    assert_int_equal(first + second, CONNECTIONS);
    if (first < 40 || second < 40)
        fail_msg("%d connections split %d and %d between two workers", CONNECTIONS, first, second);
    for (int i = 0; i < CONNECTIONS; i++)
        close(fds[i]);
    stop_server(&server);
}

static void request_ids_are_kept_or_made_and_echoed(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    test_response response;
    char id[160];
    assert_true(test_http_request(server.port, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-ID: client-42\r\n\r\n",
                                  &response));
    assert_true(test_http_header(&response, "X-Request-ID", id, sizeof id));
    assert_string_equal(id, "client-42");
    test_http_response_free(&response);

    assert_true(test_http_request(server.port, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_true(test_http_header(&response, "X-Request-ID", id, sizeof id));
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    test_http_response_free(&response);

    /* A forged id with a quote would break the JSON log line: replaced. */
    assert_true(test_http_request(server.port, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-ID: a\"b\r\n\r\n",
                                  &response));
    assert_true(test_http_header(&response, "X-Request-ID", id, sizeof id));
    assert_int_equal(strlen(id), 32);
    test_http_response_free(&response);
    stop_server(&server);
}

static json_t *readyz(int port, int *status)
{
    test_response response;
    assert_true(test_http_request(port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    *status = response.status;
    json_t *body = json_loads(response.body, 0, NULL);
    test_http_response_free(&response);
    assert_non_null(body);
    return body;
}

static void readyz_reports_both_tiers_up(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    int status = 0;
    json_t *body = readyz(server.admin_port, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "ready");
    assert_string_equal(json_string_value(json_object_get(body, "postgres")), "up");
    assert_string_equal(json_string_value(json_object_get(body, "redis")), "up");
    json_decref(body);
    stop_server(&server);
}

static void readyz_stays_ready_when_the_tiers_are_down(void **state)
{
    (void)state;
    static test_server server;
    /* Port 1 on loopback: nothing listens, connections are refused at once. */
    start_server(&server, "postgresql://shoal:shoal@127.0.0.1:1/shoal", "redis://127.0.0.1:1/0", NULL);
    int status = 0;
    json_t *body = readyz(server.admin_port, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(body, "postgres")), "down");
    assert_string_equal(json_string_value(json_object_get(body, "redis")), "down");
    json_decref(body);
    stop_server(&server);
}

/* Whatever happened in the test, the fixture's Redis runs again afterwards,
 * and the test's server stops. */
static int resume_redis(void **state)
{
    kill(test_env_redis_pid(), SIGCONT);
    return stop_running_server(state);
}

/* /readyz with the client's deadline of HAProxy's check timeout (1 s). */
static bool readyz_within_a_second(int port, const char *redis_state)
{
    int fd = test_http_connect(port);
    assert_true(fd >= 0);
    const char *request = "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_true(test_http_send(fd, request, strlen(request)));
    test_response response;
    assert_true(test_http_read(fd, &response, false, 1000));
    close(fd);
    assert_int_equal(response.status, 200);
    char expected[32];
    snprintf(expected, sizeof expected, "\"redis\":\"%s\"", redis_state);
    bool matches = strstr(response.body, expected) != NULL;
    test_http_response_free(&response);
    return matches;
}

static void readyz_answers_at_once_while_redis_hangs(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    assert_true(readyz_within_a_second(server.admin_port, "up"));

    /* A stopped process keeps its socket open and answers nothing: the way
     * a hung server looks to a client. */
    pid_t redis = test_env_redis_pid();
    assert_int_equal(kill(redis, SIGSTOP), 0);
    bool reported_down = false;
    for (int i = 0; i < 30 * test_env_time_scale() && !reported_down; i++) {
        reported_down = readyz_within_a_second(server.admin_port, "down");
        usleep(100 * 1000);
    }
    assert_true(reported_down);

    assert_int_equal(kill(redis, SIGCONT), 0);
    bool reported_up = false;
    for (int i = 0; i < 50 * test_env_time_scale() && !reported_up; i++) {
        reported_up = readyz_within_a_second(server.admin_port, "up");
        usleep(100 * 1000);
    }
    assert_true(reported_up);
    stop_server(&server);
}

static void draining_turns_readyz_503_and_closes_connections(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    shoal_app_set_readiness(server.app, SHOAL_DRAINING);
    int status = 0;
    json_t *body = readyz(server.admin_port, &status);
    assert_int_equal(status, 503);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "draining");
    json_decref(body);

    test_response response;
    assert_true(test_http_request(server.port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &response));
    assert_int_equal(response.status, 200);
    char connection[32];
    assert_true(test_http_header(&response, "Connection", connection, sizeof connection));
    assert_string_equal(connection, "close");
    test_http_response_free(&response);
    stop_server(&server);
}

static void stopping_to_accept_lets_in_flight_requests_finish(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    int fd = test_http_connect(server.port);
    assert_true(fd >= 0);
    const char *request = "GET /test/slow HTTP/1.1\r\nHost: t\r\n\r\n";
    atomic_store(&slow_may_finish, false);
    assert_true(test_http_send(fd, request, strlen(request)));
    assert_true(wait_in_flight(&server, 1, 2000)); /* the slow handler runs, and waits for us */

    shoal_http_stop_accepting(server.http);
    assert_int_equal(test_http_connect(server.port), -1);
    /* The admin port stays open to the end: health checks must see the
     * drain until the process exits. */
    shoal_app_set_readiness(server.app, SHOAL_DRAINING);
    test_response admin = get(server.admin_port, "/readyz", "", 503);
    test_http_response_free(&admin);
    /* The slow request still runs; the admin one counts until libmicrohttpd
     * reports it complete, a moment after its answer. */
    assert_true(wait_in_flight(&server, 1, 1000));

    atomic_store(&slow_may_finish, true);
    test_response response;
    assert_true(test_http_read(fd, &response, false, 5000));
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    close(fd);
    assert_true(wait_in_flight(&server, 0, 1000));
    stop_server(&server);
}

static void operational_routes_are_served_on_the_admin_port_only(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);

    /* The public port: /readyz and /metrics are not there, with the usual
     * 404 envelope (and the public pipeline's request id). */
    const char *internal[] = {"/readyz", "/metrics"};
    for (size_t i = 0; i < 2; i++) {
        test_response response = get(server.port, internal[i], "", 404);
        expect_error(&response, 404, "route.not_found");
        char id[64];
        assert_true(test_http_header(&response, "X-Request-ID", id, sizeof id));
        test_http_response_free(&response);
    }
    /* /healthz is, for clients and simple checks, naming no tier. */
    test_response response = get(server.port, "/healthz", "", 200);
    json_t *body = json_loads(response.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "alive");
    assert_null(json_object_get(body, "postgres"));
    assert_null(json_object_get(body, "redis"));
    json_decref(body);
    test_http_response_free(&response);

    /* The admin port serves all three. */
    response = get(server.admin_port, "/healthz", "", 200);
    test_http_response_free(&response);
    response = get(server.admin_port, "/readyz", "", 200);
    assert_non_null(strstr(response.body, "\"postgres\""));
    test_http_response_free(&response);
    /* /healthz, on both, is one series: a request is counted once it has
     * been answered, so wait for it to appear, then count its lines. */
    const char *series = "shoal_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"2xx\"}";
    int lines = 0;
    int attempts = (int)(100 * test_env_time_scale());
    for (int attempt = 0; attempt < attempts && lines == 0; attempt++) {
        if (attempt > 0)
            usleep(20 * 1000);
        response = get(server.admin_port, "/metrics", "", 200);
        lines = 0;
        for (const char *at = strstr(response.body, series); at != NULL; at = strstr(at + 1, series))
            lines++;
        test_http_response_free(&response);
    }
    assert_int_equal(lines, 1);

    /* And nothing else: the public routes are not found there. */
    response = get(server.admin_port, "/test/items/1", "", 404);
    expect_error(&response, 404, "route.not_found");
    test_http_response_free(&response);

    /* None of the public pipeline's hooks runs there: no request id is
     * made, and CORS answers no origin. */
    char value[128];
    response = get(server.admin_port, "/readyz", "Origin: https://anyone.example\r\n", 200);
    assert_false(test_http_header(&response, "X-Request-ID", value, sizeof value));
    assert_false(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    test_http_response_free(&response);
    response = get(server.port, "/healthz", "Origin: https://anyone.example\r\n", 200);
    assert_true(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    test_http_response_free(&response);
    stop_server(&server);
}

static void the_admin_port_needs_a_port_of_its_own(void **state)
{
    (void)state;
    shoal_config config;
    char error[256];
    const char *same[] = {"shoal-node", "--port", "18999", "--admin-port", "18999"};
    assert_int_equal(shoal_config_load(&config, 5, (char **)same, no_environment, error, sizeof error), -1);
    assert_non_null(strstr(error, "--admin-port"));
    const char *invalid[] = {"shoal-node", "--admin-bind", "nowhere"};
    assert_int_equal(shoal_config_load(&config, 3, (char **)invalid, no_environment, error, sizeof error), -1);
    assert_non_null(strstr(error, "--admin-bind"));

    /* A port that is taken: the node does not start, and says which. */
    static test_server first;
    start_default(&first, NULL);
    char port[16];
    snprintf(port, sizeof port, "%d", first.admin_port);
    const char *taken[] = {"shoal-node", "--port", "0", "--admin-port", port};
    assert_int_equal(shoal_config_load(&config, 5, (char **)taken, no_environment, error, sizeof error), 0);
    shoal_app *app = shoal_app_new(&config);
    assert_non_null(app);
    assert_null(shoal_http_start(app, error, sizeof error));
    assert_non_null(strstr(error, "admin"));
    shoal_app_free(app);
    shoal_config_free(&config);
    stop_server(&first);
}

static void cors_answers_preflight_for_allowed_origins_only(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, FLAGS("--cors-origins", "https://app.example, https://admin.example"));
    test_response response;
    char value[128];
    assert_true(test_http_request(server.port,
                                  "OPTIONS /test/echo HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n"
                                  "Access-Control-Request-Method: POST\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 204);
    assert_true(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    assert_string_equal(value, "https://app.example");
    assert_true(test_http_header(&response, "Access-Control-Allow-Methods", value, sizeof value));
    assert_string_equal(value, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    assert_true(test_http_header(&response, "Access-Control-Allow-Headers", value, sizeof value));
    assert_non_null(strstr(value, "Authorization"));
    assert_true(test_http_header(&response, "Access-Control-Max-Age", value, sizeof value));
    test_http_response_free(&response);

    /* On any path: the real request then gets the real 404, readable. */
    assert_true(test_http_request(server.port,
                                  "OPTIONS /no/such/path HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n"
                                  "Access-Control-Request-Method: DELETE\r\n"
                                  "Access-Control-Request-Headers: authorization,content-type\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 204);
    assert_true(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    assert_string_equal(value, "https://app.example");
    test_http_response_free(&response);
    assert_true(test_http_request(server.port,
                                  "DELETE /no/such/path HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 404);
    assert_true(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    assert_true(test_http_header(&response, "Access-Control-Expose-Headers", value, sizeof value));
    assert_non_null(strstr(value, "X-Request-ID"));
    test_http_response_free(&response);

    /* A foreign origin's preflight is no preflight: the router's OPTIONS. */
    assert_true(test_http_request(server.port,
                                  "OPTIONS /test/echo HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n"
                                  "Access-Control-Request-Method: POST\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 204);
    assert_false(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    assert_false(test_http_header(&response, "Access-Control-Allow-Methods", value, sizeof value));
    assert_true(test_http_header(&response, "Allow", value, sizeof value));
    assert_string_equal(value, "POST, OPTIONS");
    test_http_response_free(&response);

    assert_true(test_http_request(server.port,
                                  "GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 200);
    assert_false(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    test_http_response_free(&response);

    assert_true(test_http_request(server.port,
                                  "GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: https://admin.example\r\n\r\n",
                                  &response));
    assert_true(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    assert_string_equal(value, "https://admin.example");
    assert_true(test_http_header(&response, "Vary", value, sizeof value));
    assert_string_equal(value, "Origin");
    test_http_response_free(&response);
    stop_server(&server);
}

static void cors_allows_any_origin_by_default(void **state)
{
    (void)state;
    static test_server server;
    start_default(&server, NULL);
    test_response response;
    char value[128];
    assert_true(test_http_request(server.port,
                                  "OPTIONS /test/items/7 HTTP/1.1\r\nHost: t\r\nOrigin: http://localhost:4200\r\n"
                                  "Access-Control-Request-Method: GET\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 204);
    assert_true(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    assert_string_equal(value, "*");
    test_http_response_free(&response);

    assert_true(test_http_request(server.port,
                                  "GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: https://anyone.example\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 200);
    assert_true(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    assert_string_equal(value, "*");
    assert_false(test_http_header(&response, "Vary", value, sizeof value));
    assert_false(test_http_header(&response, "Access-Control-Allow-Credentials", value, sizeof value));
    test_http_response_free(&response);
    stop_server(&server);

    /* Empty: off. */
    start_default(&server, FLAGS("--cors-origins", ""));
    assert_true(test_http_request(server.port,
                                  "GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: https://anyone.example\r\n\r\n",
                                  &response));
    assert_int_equal(response.status, 200);
    assert_false(test_http_header(&response, "Access-Control-Allow-Origin", value, sizeof value));
    test_http_response_free(&response);
    stop_server(&server);
}

#define SERVER_TEST(test) cmocka_unit_test_teardown(test, stop_running_server)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SERVER_TEST(every_answer_carries_date_and_server),
        SERVER_TEST(keep_alive_and_pipelining_share_one_connection),
        SERVER_TEST(unknown_paths_and_methods_get_404_405_and_options),
        SERVER_TEST(oversized_bodies_get_413_with_the_envelope),
        SERVER_TEST(oversized_headers_get_431_with_the_envelope),
        SERVER_TEST(headers_far_past_the_limit_still_get_431),
        SERVER_TEST(long_queries_count_against_the_header_limit),
        SERVER_TEST(an_encoded_nul_never_cuts_the_path_short),
        SERVER_TEST(malformed_requests_get_400_with_the_envelope),
        SERVER_TEST(malformed_json_is_400_and_wrong_shape_is_422),
        SERVER_TEST(slow_clients_are_dropped_while_others_are_served),
        SERVER_TEST(connections_past_the_limit_are_refused),
        SERVER_TEST(new_connections_are_spread_over_the_workers),
        SERVER_TEST(request_ids_are_kept_or_made_and_echoed),
        SERVER_TEST(readyz_reports_both_tiers_up),
        SERVER_TEST(readyz_stays_ready_when_the_tiers_are_down),
        cmocka_unit_test_teardown(readyz_answers_at_once_while_redis_hangs, resume_redis),
        SERVER_TEST(draining_turns_readyz_503_and_closes_connections),
        SERVER_TEST(operational_routes_are_served_on_the_admin_port_only),
        SERVER_TEST(the_admin_port_needs_a_port_of_its_own),
        SERVER_TEST(stopping_to_accept_lets_in_flight_requests_finish),
        SERVER_TEST(cors_answers_preflight_for_allowed_origins_only),
        SERVER_TEST(cors_allows_any_origin_by_default),
    };
    return cmocka_run_group_tests_name("integration.node.http", tests, NULL, NULL);
}
