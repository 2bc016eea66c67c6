/* tests/support/test_node.h: a whole node inside the test process, on a
 * free loopback port, with what main.c gives a node that the tests need:
 * request ids, sessions, the invalidation subscriber for its L1, and the
 * caller's routes. Two of them are two nodes: each has its own app, L1,
 * subscriber and connections. */
#ifndef TEST_NODE_H
#define TEST_NODE_H

#include <stdbool.h>

#include "config.h"
#include "http.h"
#include "shoal.h"

typedef struct test_node {
    shoal_config config;
    shoal_app *app;
    shoal_http *http;
    int port;
} test_node;

/* Flags in args (NULL-terminated, may be NULL) come after the defaults:
 * port 0, 2 threads, no access log, the fixture's PostgreSQL and Redis,
 * short timeouts. false with the reason on stderr. */
bool test_node_start(test_node *node, const shoal_extension *routes, const char *const *args);
void test_node_stop(test_node *node);

#endif
