/* tests/deploy/consumer/consumer.c: a program built against the installed
 * library only (<shoal/...>, pkg-config or find_package), as a user's would
 * be. It serves one blueprint route with two standard extensions and
 * /metrics on the admin port, asks both itself over loopback, and exits 0
 * when the answers are right (1 otherwise, with the reason on stderr).
 *
 * It composes the node by hand, as far as the public headers allow today:
 * no PostgreSQL or Redis is needed because the route touches neither (a
 * worker connects on first use). What node/bin/main.c adds beyond this (warmed
 * workers, the drain, migrations) comes with shoal_main. */
#define _POSIX_C_SOURCE 200809L

#include <shoal/ext/request_id.h>
#include <shoal/ext/security_headers.h>
#include <shoal/http.h>
#include <shoal/metrics.h>
#include <shoal/shoal.h>
#include <shoal/version.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int hello(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:s}", "hello", shoal_param(ctx, "name")));
}

static int setup(shoal_app *app, void *data)
{
    (void)data;
    shoal_blueprint *bp = shoal_blueprint_new(app, "hello", "/hello");
    return bp != NULL && shoal_route(bp, "GET", "/:name", hello) == 0 ? 0 : -1;
}

static const shoal_extension hello_extension = {.name = "hello", .init = setup};

/* Settings come from the arguments alone, so that the caller's environment
 * (SHOAL_PORT, ...) cannot move the ports. */
static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

/* The whole answer to one request on a fresh connection, or NULL. */
static char *ask(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct timeval timeout = {5, 0};
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char request[256];
    int length = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: consumer\r\nConnection: close\r\n\r\n", path);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
        connect(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        write(fd, request, (size_t)length) != length) {
        close(fd);
        return NULL;
    }
    size_t size = 0, capacity = 65536;
    char *answer = malloc(capacity + 1);
    ssize_t got;
    while (answer != NULL && size < capacity && (got = read(fd, answer + size, capacity - size)) > 0)
        size += (size_t)got;
    close(fd);
    if (answer != NULL)
        answer[size] = '\0';
    return answer;
}

static int expect(const char *what, const char *answer, const char *needle)
{
    if (answer != NULL && strstr(answer, needle) != NULL)
        return 0;
    fprintf(stderr, "consumer: %s: no \"%s\" in:\n%s\n", what, needle, answer != NULL ? answer : "(no answer)");
    return 1;
}

int main(void)
{
    if (strcmp(shoal_version(), SHOAL_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: library %s, headers %s\n", shoal_version(), SHOAL_VERSION_STRING);
        return 1;
    }
    char *argv[] = {"consumer", "--bind", "127.0.0.1", "--port", "0", "--admin-port", "0", "--threads", "1", NULL};
    shoal_config config;
    char error[256];
    if (shoal_config_load(&config, 9, argv, no_environment, error, sizeof error) != 0) {
        fprintf(stderr, "consumer: %s\n", error);
        return 1;
    }
    shoal_app *app = shoal_app_new(&config);
    shoal_http *http = NULL;
    if (app == NULL || shoal_app_extend(app, &shoal_request_id_extension) != 0 ||
        shoal_app_extend(app, &shoal_security_headers_extension) != 0 ||
        shoal_app_extend(app, &shoal_metrics_extension) != 0 || shoal_app_extend(app, &hello_extension) != 0 ||
        (http = shoal_http_start(app, error, sizeof error)) == NULL) {
        fprintf(stderr, "consumer: setup failed: %s\n",
                app == NULL ? "out of memory" : shoal_app_failure(app) != NULL ? shoal_app_failure(app) : error);
        shoal_app_free(app);
        shoal_config_free(&config);
        return 1;
    }

    char *answer = ask(shoal_http_port(http), "/hello/world");
    int failed = expect("GET /hello/world", answer, "HTTP/1.1 200") +
                 expect("GET /hello/world", answer, "\r\n\r\n{\"hello\":\"world\"}") +
                 expect("GET /hello/world", answer, "X-Request-ID: ") +
                 expect("GET /hello/world", answer, "Server: shoal/" SHOAL_VERSION_STRING);
    free(answer);
    answer = ask(shoal_http_admin_port(http), "/metrics");
    failed += expect("GET /metrics (admin)", answer, "route=\"/hello/:name\"");
    free(answer);

    shoal_http_stop(http);
    shoal_app_free(app);
    shoal_config_free(&config);
    if (failed == 0)
        printf("consumer: served GET /hello/world and /metrics with libshoal %s\n", shoal_version());
    return failed == 0 ? 0 : 1;
}
