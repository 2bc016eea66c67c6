/* tests/support/test_node.c: see test_node.h. */
#include "test_node.h"

#include <stdio.h>
#include <string.h>

#include "ext/request_id.h"
#include "ext/session.h"
#include "test_env.h"

static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

bool test_node_start(test_node *node, const shoal_extension *routes, const char *const *args)
{
    memset(node, 0, sizeof *node);
    const char *argv[64] = {"shoal-node", "--port", "0", "--threads", "2", "--access-log-sample", "0",
                            "--database-url", TEST_DATABASE_URL(), "--redis-url", TEST_REDIS_URL(),
                            "--redis-timeout-ms", "300", "--database-connect-timeout", "1"};
    int argc = 15;
    for (int i = 0; args != NULL && args[i] != NULL; i++) {
        if (argc == (int)(sizeof argv / sizeof argv[0]) - 1) {
            fprintf(stderr, "test_node_start: too many flags\n");
            return false;
        }
        argv[argc++] = args[i];
    }
    char error[512];
    if (shoal_config_load(&node->config, argc, (char **)argv, no_environment, error, sizeof error) != 0) {
        fprintf(stderr, "test_node_start: %s\n", error);
        return false;
    }
    node->app = shoal_app_new(&node->config);
    if (node->app == NULL || shoal_app_extend(node->app, &shoal_request_id_extension) != 0 ||
        shoal_app_extend(node->app, &shoal_session_extension) != 0 ||
        (routes != NULL && shoal_app_extend(node->app, routes) != 0)) {
        fprintf(stderr, "test_node_start: setup failed\n");
        test_node_stop(node);
        return false;
    }
    if (shoal_app_start_invalidation(node->app, error, sizeof error) != 0 ||
        (node->http = shoal_http_start(node->app, error, sizeof error)) == NULL) {
        fprintf(stderr, "test_node_start: %s\n", error);
        test_node_stop(node);
        return false;
    }
    shoal_app_set_readiness(node->app, SHOAL_READY);
    node->port = shoal_http_port(node->http);
    return true;
}

void test_node_stop(test_node *node)
{
    if (node->http != NULL)
        shoal_http_stop(node->http);
    shoal_app_free(node->app); /* stops the subscriber too */
    shoal_config_free(&node->config);
    memset(node, 0, sizeof *node);
}
