/* tests/support/test_node.h: a whole node served in-process over real HTTP,
 * with the fixture's PostgreSQL and Redis and the invalidation subscriber
 * for its L1, for integration tests of hooks, extensions and routes. Two of
 * them are two nodes: each has its own app, L1, subscriber and connections.
 * Include after cmocka.h: failures are cmocka assertions. */
#ifndef TEST_NODE_H
#define TEST_NODE_H

#include <shoal/http.h>
#include <shoal/shoal.h>

#include "http_client.h"

typedef struct test_node {
    shoal_config config;
    shoal_app *app;
    shoal_http *http;
    int port;       /* the public listener */
    int admin_port; /* the admin listener: /healthz, /readyz, /metrics */
} test_node;

/* Applies the built-in migrations to the fixture's database, as main does
 * before serving: for tests whose routes need the tables. */
void test_node_migrate(void);

/* Starts a node on free loopback ports (public and admin): 2 worker threads, no access log,
 * a 300 ms Redis timeout, then flags (NULL-terminated, may be NULL; later
 * flags win), with extensions loaded in order (NULL-terminated). */
void test_node_start(test_node *node, const char *const *flags, const shoal_extension *const *extensions);
void test_node_stop(test_node *node);
/* A cmocka teardown: stops every node started and not stopped yet. A failed
 * assertion leaves its test at once; without this its node would serve on
 * beside the tests after it (and valgrind would count its memory as lost).
 * The app points into the test_node, so a test that uses this keeps its
 * nodes in static storage. */
int test_node_stop_started(void **state);

/* One request on a fresh connection. headers is a raw block of
 * "Name: value\r\n" lines or NULL; body may be NULL. The caller frees the
 * response (test_http_response_free). */
test_response test_node_call(const test_node *node, const char *method, const char *path, const char *headers,
                             const char *body);
/* The same on the node's admin port. */
test_response test_node_admin_call(const test_node *node, const char *method, const char *path,
                                   const char *headers, const char *body);
/* The raw text of that request, for tests that send it themselves. */
char *test_node_request_text(const char *method, const char *path, const char *headers, const char *body);
/* Sends GET path on a connection of its own and leaves the answer unread:
 * the connection, for test_node_read_answer. */
int test_node_send_get(const test_node *node, const char *path);
/* The answer on fd within timeout_ms (stretched with the time scale); the
 * caller frees it and closes fd. */
test_response test_node_read_answer(int fd, long timeout_ms);
/* Waits (5 s at most, scaled) until the node holds no request. */
void test_node_wait_until_idle(const test_node *node);

/* Asserts status and the envelope's stable code. */
void test_expect_error(const test_response *response, int status, const char *code);
/* The value of a response header, or "" (a static buffer, valid until the
 * next call). */
const char *test_header(const test_response *response, const char *name);
/* The value of the line of a Prometheus text exposition that starts with
 * series (name and labels, exactly as the node writes them), or -1 when
 * there is none. */
double test_metric_value(const char *exposition, const char *series);

#endif
