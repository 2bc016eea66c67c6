/* tests/integration/node/lib/metrics_test.c: GET /metrics of a whole node over
 * real HTTP, against the fixture's real PostgreSQL and Redis: after some
 * requests the counters have moved by what was asked, routes are labelled by
 * pattern, cache reads and session lookups are counted, and the text passes
 * `promtool check metrics` and a strict line check of the exposition format. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <shoal/ext/session.h>
#include <shoal/metrics.h>
#include <shoal/store.h>

#include "conduit/api.h"
#include "context.h"
#include "http_client.h"
#include "techempower/bench.h"
#include "test_env.h"
#include "test_node.h"

static test_node server;

static int start(void **state)
{
    (void)state;
    /* The migrations first (they make the world table /db reads), as main
     * applies them before serving. */
    test_node_migrate();
    /* A cheap password hash: the test registers a user for a session. */
    const char *const flags[] = {"--redis-timeout-ms", "10000", "--password-ops-limit", "1",
                                 "--password-mem-limit", "64k", NULL};
    static const shoal_extension *const extensions[] = {&shoal_bench_extension, &shoal_session_extension,
                                                        &shoal_api_extension, &shoal_metrics_extension, NULL};
    test_node_start(&server, flags, extensions);
    return 0;
}

static int stop(void **state)
{
    (void)state;
    test_node_stop(&server);
    return 0;
}

/* A request is counted when libmicrohttpd says it is complete, which comes
 * on its worker's thread just after the answer's last byte went out: a
 * client that read the answer may scrape before that. So a scrape waits
 * (1 s at most, scaled) until no request is in flight. */
static void wait_for_requests_to_complete(void)
{
    for (int i = 0; i < 100 * test_env_time_scale() && shoal_app_in_flight(server.app) > 0; i++)
        usleep(10 * 1000);
}

/* The text of a scrape, on the admin port; the caller frees the response. */
static test_response scrape(void)
{
    wait_for_requests_to_complete();
    test_response response = test_node_admin_call(&server, "GET", "/metrics", NULL, NULL);
    assert_int_equal(response.status, 200);
    assert_string_equal(test_header(&response, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    return response;
}

static void call(const char *method, const char *path, int status)
{
    test_response response = test_node_call(&server, method, path, NULL, NULL);
    assert_int_equal(response.status, status);
    test_http_response_free(&response);
}

static void counters_move_by_route_pattern_and_status(void **state)
{
    (void)state;
    test_response before = scrape();
    double db_before = test_metric_value(before.body, "shoal_http_requests_total{route=\"/db\",method=\"GET\",status=\"2xx\"}");
    double missing_before =
        test_metric_value(before.body, "shoal_http_requests_total{route=\"unmatched\",method=\"any\",status=\"4xx\"}");
    double postgres_before = test_metric_value(before.body, "shoal_postgres_calls_total");
    double pipe_before = test_metric_value(before.body, "shoal_postgres_pipe_wait_seconds_count");
    test_http_response_free(&before);

    for (int i = 0; i < 5; i++)
        call("GET", "/db", 200);
    call("GET", "/no/such/path/1", 404);
    call("GET", "/no/such/path/2", 404);
    call("GET", "/cached-queries?count=3", 200);

    test_response after = scrape();
    const char *text = after.body;
    double db_after = test_metric_value(text, "shoal_http_requests_total{route=\"/db\",method=\"GET\",status=\"2xx\"}");
    assert_true(db_after - (db_before < 0 ? 0 : db_before) == 5);
    double missing_after = test_metric_value(text, "shoal_http_requests_total{route=\"unmatched\",method=\"any\",status=\"4xx\"}");
    assert_true(missing_after - (missing_before < 0 ? 0 : missing_before) == 2);
    /* The raw paths never become labels. */
    assert_null(strstr(text, "/no/such/path"));
    /* Every /db ran at least one statement. */
    assert_true(test_metric_value(text, "shoal_postgres_calls_total") - postgres_before >= 5);
    assert_true(test_metric_value(text, "shoal_redis_calls_total") >= 1);
    assert_true(test_metric_value(text, "shoal_postgres_errors_total") == 0);
    assert_true(test_metric_value(text, "shoal_postgres_call_seconds_total") > 0);
    /* Their statements went over the workers' pipes, which count their
     * time there and their waits behind others'. */
    double pipe_count = test_metric_value(text, "shoal_postgres_pipe_wait_seconds_count");
    assert_true(pipe_count - pipe_before >= 5);
    assert_true(test_metric_value(text, "shoal_postgres_pipe_wait_seconds_bucket{le=\"+Inf\"}") == pipe_count);
    assert_true(test_metric_value(text, "shoal_postgres_pipe_wait_seconds_sum") >= 0);
    assert_true(test_metric_value(text, "shoal_postgres_pipe_seconds_total") > 0);
    assert_true(test_metric_value(text, "shoal_postgres_pipe_wait_max_seconds") >= 0);
    assert_true(test_metric_value(text, "shoal_postgres_pipe_spilled_total") >= 0);
    assert_true(test_metric_value(text, "shoal_postgres_pipe_spill_connections_total") >= 0);
    /* The histogram counts what the counter counts, and +Inf holds them all. */
    double count = test_metric_value(text, "shoal_http_request_duration_seconds_count{route=\"/db\",method=\"GET\"}");
    assert_true(count == db_after);
    assert_true(test_metric_value(text, "shoal_http_request_duration_seconds_bucket{route=\"/db\",method=\"GET\",le=\"+Inf\"}") ==
                count);
    assert_true(test_metric_value(text, "shoal_http_request_duration_seconds_sum{route=\"/db\",method=\"GET\"}") > 0);
    /* This scrape is in flight while it is written. */
    assert_true(test_metric_value(text, "shoal_http_requests_in_flight") >= 1);
    double started = test_metric_value(text, "shoal_process_start_time_seconds");
    assert_true(started > 1.7e9 && started <= (double)time(NULL) + 1);
    test_http_response_free(&after);
}

static double sum_of(const char *text, const char *name, const char *label, const char *const *values,
                     size_t count)
{
    double sum = 0;
    for (size_t i = 0; i < count; i++) {
        char series[160];
        snprintf(series, sizeof series, "%s{%s=\"%s\"}", name, label, values[i]);
        double value = test_metric_value(text, series);
        if (value < 0)
            fail_msg("no series %s", series);
        sum += value;
    }
    return sum;
}

static const char *const sources[] = {"l1", "redis", "stale", "filled", "bypassed", "stale_if_error"};
static const char *const results[] = {"found", "missing", "error"};

typedef struct cache_session_counts {
    double reads;
    double l1;
    double found;
    double missing;
    double error;
} cache_session_counts;

static cache_session_counts cache_session_scrape(void)
{
    test_response response = scrape();
    cache_session_counts counts = {
        .reads = sum_of(response.body, "shoal_cache_reads_total", "source", sources,
                        sizeof sources / sizeof sources[0]),
        .l1 = test_metric_value(response.body, "shoal_cache_reads_total{source=\"l1\"}"),
        .found = test_metric_value(response.body, "shoal_session_lookups_total{result=\"found\"}"),
        .missing = test_metric_value(response.body, "shoal_session_lookups_total{result=\"missing\"}"),
        .error = test_metric_value(response.body, "shoal_session_lookups_total{result=\"error\"}"),
    };
    sum_of(response.body, "shoal_session_lookups_total", "result", results, 3); /* every result is there */
    test_http_response_free(&response);
    return counts;
}

/* A user of this run's own, and its token (malloc'd). */
static char *register_user(void)
{
    char body[256];
    unsigned long tag = (unsigned long)time(NULL) * 100000ul + (unsigned long)getpid() % 100000ul;
    snprintf(body, sizeof body,
             "{\"user\":{\"username\":\"metrics_%lu\",\"email\":\"metrics_%lu@example.com\","
             "\"password\":\"a long enough password\"}}",
             tag, tag);
    test_response response = test_node_call(&server, "POST", "/api/users", NULL, body);
    if (response.status != 201)
        fail_msg("register: %d %s", response.status, response.body);
    json_t *answer = json_loads(response.body, 0, NULL);
    assert_non_null(answer);
    const char *token = json_string_value(json_object_get(json_object_get(answer, "user"), "token"));
    assert_non_null(token);
    char *copy = strdup(token);
    json_decref(answer);
    test_http_response_free(&response);
    return copy;
}

static int current_user(const char *token)
{
    char headers[128];
    snprintf(headers, sizeof headers, "Authorization: Token %s\r\n", token);
    test_response response = test_node_call(&server, "GET", "/api/user", headers, NULL);
    int status = response.status;
    test_http_response_free(&response);
    return status;
}

static void cache_reads_and_session_lookups_are_counted(void **state)
{
    (void)state;
    char *token = register_user();
    cache_session_counts before = cache_session_scrape();

    /* Every value of /cached-queries is one read, wherever it came from. */
    call("GET", "/cached-queries?count=3", 200);
    call("GET", "/cached-queries?count=2", 200);
    cache_session_counts after = cache_session_scrape();
    assert_true(after.reads - before.reads == 5);
    assert_true(after.found == before.found && after.missing == before.missing && after.error == before.error);

    /* /api/user reads the user through the cache: the first read fills the
     * node's L1 and a later one is served from it. Another test's write
     * may invalidate the family between two reads, so a few tries. */
    int reads = 0;
    cache_session_counts now = after;
    while (reads < 10 && now.l1 == after.l1) {
        assert_int_equal(current_user(token), 200);
        reads++;
        now = cache_session_scrape();
    }
    assert_true(now.l1 > after.l1);
    assert_true(reads >= 2);
    assert_true(now.reads - after.reads == reads);
    assert_true(now.found - after.found == reads);

    /* A well-formed token nobody issued, and a malformed one: both missing,
     * and neither reads the cache. */
    assert_int_equal(current_user("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 401);
    assert_int_equal(current_user("not-a-token"), 401);
    cache_session_counts last = cache_session_scrape();
    assert_true(last.missing - now.missing == 2);
    assert_true(last.found == now.found && last.error == now.error);
    assert_true(last.reads == now.reads);
    /* No Authorization header: no lookup. */
    call("GET", "/api/user", 401);
    cache_session_counts none = cache_session_scrape();
    assert_true(none.found == last.found && none.missing == last.missing && none.error == last.error);
    free(token);
}

/* Every line is a comment (HELP or TYPE of a valid name, a known type) or a
 * sample: a valid name, optional labels with quoted, escaped values, and a
 * float, as the text format 0.0.4 has them. */
static void every_line_is_valid_exposition(const char *text)
{
    regex_t comment;
    regex_t sample;
    assert_int_equal(regcomp(&comment,
                             "^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
                             "(counter|gauge|histogram|summary|untyped))$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regcomp(&sample,
                             "^[a-zA-Z_:][a-zA-Z0-9_:]*"
                             "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
                             "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\")*\\})? "
                             "([-+]?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    char *copy = strdup(text);
    assert_non_null(copy);
    int lines = 0;
    char *saved = NULL;
    for (char *line = strtok_r(copy, "\n", &saved); line != NULL; line = strtok_r(NULL, "\n", &saved)) {
        lines++;
        if (regexec(line[0] == '#' ? &comment : &sample, line, 0, NULL, 0) != 0)
            fail_msg("not in the exposition format: %s", line);
    }
    assert_true(lines > 20);
    assert_int_equal(text[strlen(text) - 1], '\n');
    free(copy);
    regfree(&comment);
    regfree(&sample);
}

static void the_text_passes_promtool(void **state)
{
    (void)state;
    call("GET", "/json", 200);
    test_response response = scrape();
    every_line_is_valid_exposition(response.body);
    char path[] = "/tmp/shoal-metrics-XXXXXX";
    int descriptor = mkstemp(path);
    assert_true(descriptor >= 0);
    assert_int_equal(write(descriptor, response.body, response.body_length), (ssize_t)response.body_length);
    close(descriptor);
    test_http_response_free(&response);
    /* deploy/local deps --tests installs promtool (Debian's prometheus). */
    assert_int_equal(system("command -v promtool >/dev/null"), 0);
    char command[128];
    snprintf(command, sizeof command, "promtool check metrics < %s", path);
    int status = system(command);
    unlink(path);
    assert_int_equal(status, 0);
}

/* The counters are for Prometheus on the private network, not for anyone
 * who can reach the public port (or HAProxy's, or the Ingress). */
static void the_public_port_does_not_serve_metrics(void **state)
{
    (void)state;
    test_response response = test_node_call(&server, "GET", "/metrics", NULL, NULL);
    test_expect_error(&response, 404, "route.not_found");
    assert_null(strstr(response.body, "shoal_"));
    test_http_response_free(&response);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_public_port_does_not_serve_metrics),
        cmocka_unit_test(counters_move_by_route_pattern_and_status),
        cmocka_unit_test(cache_reads_and_session_lookups_are_counted),
        cmocka_unit_test(the_text_passes_promtool),
    };
    return cmocka_run_group_tests_name("integration/node/metrics", tests, start, stop);
}
