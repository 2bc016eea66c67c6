/* tests/load/hotpath/hotpath_node.c: the node's core with nothing but the
 * TechEmpower-shaped routes, for measuring the request hot path (callgrind,
 * malloc counts, wrk) without PostgreSQL or Redis. It takes shoal-node's
 * flags (--port, --threads, --access-log-sample, ...) and serves until
 * SIGINT or SIGTERM:
 *   /plaintext  "Hello, World!" as text/plain (a static body)
 *   /json       {"message":"Hello, World!"} serialised with jansson per request
 *   /json-writer the same body from shoal_json_begin's writer (no jansson value)
 *   /healthz    the node's own body, written with the arena JSON writer
 * The extensions shoal-node loads are loaded in the same order (request id,
 * CORS, rate limits, sessions, idempotency keys), so every answer pays what
 * a real one pays (the default rate limits name only POST routes, so no
 * Redis call is made). Workers open their tier connections lazily, so none
 * is made here. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <shoal/config.h>
#include <shoal/ext/cors.h>
#include <shoal/ext/idempotency.h>
#include <shoal/ext/rate_limit.h>
#include <shoal/ext/request_id.h>
#include <shoal/ext/security_headers.h>
#include <shoal/ext/session.h>
#include <shoal/http.h>
#include <shoal/log.h>

static const char hello[] = "Hello, World!";

static int plaintext(shoal_ctx *ctx)
{
    return shoal_text(ctx, 200, "text/plain", hello, sizeof hello - 1);
}

static int json(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:s}", "message", hello));
}

/* The same body as shoal-node's /healthz, with the same writer calls. */
/* The same body as /json, written without jansson values. */
static int json_writer(shoal_ctx *ctx)
{
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "message");
    shoal_json_write_string(out, hello);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, 200, out);
}

static int healthz(shoal_ctx *ctx)
{
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "status");
    shoal_json_write_string(out, "alive");
    shoal_json_write_key(out, "node");
    shoal_json_write_string(out, shoal_app_config(shoal_ctx_app(ctx))->node_name);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, 200, out);
}

static const char *environment(const char *name)
{
    return getenv(name);
}

int main(int argc, char **argv)
{
    shoal_config config;
    char error[512];
    if (shoal_config_load(&config, argc, argv, environment, error, sizeof error) != 0) {
        fprintf(stderr, "hotpath_node: %s\n", error);
        return 2;
    }
    shoal_log_set_node(config.node_name);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    shoal_app *app = shoal_app_new(&config);
    shoal_blueprint *root = app != NULL ? shoal_app_root(app) : NULL;
    if (root == NULL || shoal_app_extend(app, &shoal_request_id_extension) != 0 ||
        shoal_app_extend(app, &shoal_security_headers_extension) != 0 ||
        shoal_app_extend(app, &shoal_cors_extension) != 0 || shoal_app_extend(app, &shoal_rate_limit_extension) != 0 ||
        shoal_app_extend(app, &shoal_session_extension) != 0 ||
        shoal_app_extend(app, &shoal_idempotency_extension) != 0 ||
        shoal_route(root, "GET", "/plaintext", plaintext) != 0 ||
        shoal_route(root, "GET", "/json", json) != 0 || shoal_route(root, "GET", "/json-writer", json_writer) != 0 ||
        shoal_route(root, "GET", "/healthz", healthz) != 0) {
        fprintf(stderr, "hotpath_node: setup failed\n");
        return 1;
    }
    shoal_http *http = shoal_http_start(app, error, sizeof error);
    if (http == NULL) {
        fprintf(stderr, "hotpath_node: %s\n", error);
        return 1;
    }
    shoal_app_set_readiness(app, SHOAL_READY);
    fprintf(stderr, "hotpath_node: serving on port %d\n", shoal_http_port(http));
    int received = 0;
    while (sigwait(&stop, &received) != 0) {
    }
    shoal_http_stop(http);
    shoal_app_free(app);
    shoal_config_free(&config);
    return 0;
}
