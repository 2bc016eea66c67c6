/* tests/support/test_node.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shoal/config.h>
#include <shoal/store.h>

#include "clock.h"
#include "context.h"
#include "demo_migrations.h"
#include "demo_settings.h"
#include "http_internal.h"
#include "test_env.h"

static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

void test_node_migrate(void)
{
    shoal_config config;
    const char *argv[] = {"shoal-node", "--database-url", TEST_DATABASE_URL()};
    char error[512];
    if (shoal_demo_config_load(&config, 3, (char **)argv, no_environment, error, sizeof error) != 0)
        fail_msg("config: %s", error);
    store_config store = shoal_config_store(&config);
    store_migrate_report report[2];
    store_status migrated = shoal_demo_migrate(&store, report, error, sizeof error);
    shoal_config_free(&config);
    if (migrated != STORE_OK)
        fail_msg("migrate: %s", error);
}

/* The nodes started and not stopped yet, for test_node_stop_started. */
static test_node *started[8];

void test_node_start(test_node *node, const char *const *flags, const shoal_extension *const *extensions)
{
    /* Timeouts short enough for outage tests. PostgreSQL's connect timeout
     * stretches with the build's time scale (libpq's SCRAM work under
     * valgrind); Redis' need not: a reply that came while the loop thread
     * waited its turn is read before anything expires (cache/async.c), and
     * every hung-Redis test waits this long per request. */
    static char connect_timeout[16];
    snprintf(connect_timeout, sizeof connect_timeout, "%d", (int)(test_env_time_scale() + 0.999));
    char *argv[48] = {"shoal-node", "--port", "0", "--admin-port", "0", "--threads", "2", "--access-log-sample",
                      "0", "--database-url", (char *)TEST_DATABASE_URL(), "--redis-url", (char *)TEST_REDIS_URL(),
                      "--redis-timeout-ms", "300", "--database-connect-timeout", connect_timeout};
    int argc = 17;
    for (size_t i = 0; flags != NULL && flags[i] != NULL; i++) {
        assert_true(argc < 48);
        argv[argc++] = (char *)flags[i];
    }
    char error[512];
    if (shoal_demo_config_load(&node->config, argc, argv, no_environment, error, sizeof error) != 0)
        fail_msg("configuration: %s", error);
    node->app = shoal_app_new(&node->config);
    assert_non_null(node->app);
    for (size_t i = 0; extensions != NULL && extensions[i] != NULL; i++)
        assert_int_equal(shoal_app_extend(node->app, extensions[i]), 0);
    /* As main.c does: the L1 serves nothing until its subscriber listens. */
    if (shoal_app_start_invalidation(node->app, error, sizeof error) != 0)
        fail_msg("invalidation subscriber: %s", error);
    node->http = shoal_http_start(node->app, error, sizeof error);
    if (node->http == NULL)
        fail_msg("start: %s", error);
    /* As shoal_main's warm-up ends: the workers' own connections up (or
     * failed) before the first request, so that no test meets a worker
     * still connecting (a slow build takes seconds to). */
    shoal_http_await_pipes(node->http, shoal_monotonic_ms() + (uint64_t)(10000 * test_env_time_scale()));
    shoal_app_set_readiness(node->app, SHOAL_READY);
    node->port = shoal_http_port(node->http);
    assert_true(node->port > 0);
    node->admin_port = shoal_http_admin_port(node->http);
    assert_true(node->admin_port > 0 && node->admin_port != node->port);
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++)
        if (started[i] == NULL) {
            started[i] = node;
            break;
        }
}

void test_node_stop(test_node *node)
{
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++)
        if (started[i] == node)
            started[i] = NULL;
    shoal_http_stop(node->http);
    shoal_app_free(node->app);
    shoal_config_free(&node->config);
}

int test_node_stop_started(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++)
        if (started[i] != NULL)
            test_node_stop(started[i]);
    return 0;
}

char *test_node_request_text(const char *method, const char *path, const char *headers, const char *body)
{
    size_t body_length = body != NULL ? strlen(body) : 0;
    size_t size = strlen(method) + strlen(path) + (headers != NULL ? strlen(headers) : 0) + body_length + 128;
    char *text = malloc(size);
    assert_non_null(text);
    snprintf(text, size, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n%s%s\r\n%s", method, path, body_length,
             body != NULL ? "Content-Type: application/json\r\n" : "", headers != NULL ? headers : "",
             body != NULL ? body : "");
    return text;
}

static test_response call_port(int port, const char *method, const char *path, const char *headers,
                               const char *body)
{
    char *text = test_node_request_text(method, path, headers, body);
    test_response response;
    assert_true(test_http_request(port, text, &response));
    free(text);
    return response;
}

test_response test_node_call(const test_node *node, const char *method, const char *path, const char *headers,
                             const char *body)
{
    return call_port(node->port, method, path, headers, body);
}

test_response test_node_admin_call(const test_node *node, const char *method, const char *path,
                                   const char *headers, const char *body)
{
    return call_port(node->admin_port, method, path, headers, body);
}

void test_expect_error(const test_response *response, int status, const char *code)
{
    if (response->status != status)
        fail_msg("status %d, not %d: %s", response->status, status, response->body);
    json_error_t error;
    json_t *body = json_loads(response->body, 0, &error);
    assert_non_null(body);
    const char *found = json_string_value(json_object_get(body, "code"));
    assert_non_null(found);
    assert_string_equal(found, code);
    json_decref(body);
}

const char *test_header(const test_response *response, const char *name)
{
    static char value[512];
    if (!test_http_header(response, name, value, sizeof value))
        value[0] = '\0';
    return value;
}

double test_metric_value(const char *exposition, const char *series)
{
    size_t length = strlen(series);
    for (const char *line = exposition; line != NULL && *line != '\0';) {
        if (strncmp(line, series, length) == 0 && line[length] == ' ')
            return strtod(line + length + 1, NULL);
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return -1;
}

int test_node_send_get(const test_node *node, const char *path)
{
    int fd = test_http_connect(node->port);
    assert_true(fd >= 0);
    char *text = test_node_request_text("GET", path, NULL, NULL);
    assert_true(test_http_send(fd, text, strlen(text)));
    free(text);
    return fd;
}

test_response test_node_read_answer(int fd, long timeout_ms)
{
    test_response response;
    assert_true(test_http_read(fd, &response, false, (int)timeout_ms));
    return response;
}

void test_node_wait_until_idle(const test_node *node)
{
    uint64_t until = shoal_monotonic_ms() + (uint64_t)(5000 * test_env_time_scale());
    while (shoal_app_in_flight(node->app) > 0 && shoal_monotonic_ms() < until)
        usleep(10 * 1000);
    assert_int_equal(shoal_app_in_flight(node->app), 0);
}
