/* tests/integration/node/lib/ext/idempotency_test.c: node/lib/ext/idempotency.c
 * over HTTP against the fixture's real Redis: a replay is the first answer
 * byte for byte, another body is 422, a retry during the first run is 409,
 * callers are kept apart, 5xx and crashes are not kept, the record is
 * shared by nodes and expires, and a hung Redis is 503 (SIGSTOP). Records
 * outlive a run in the fixture's Redis, so every test uses keys of its
 * own. */
#include <signal.h>
#include <stdatomic.h>
#include <sys/random.h>
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

#include <shoal/ext/idempotency.h>
#include <shoal/ext/request_id.h>

#include "test_env.h"
#include "test_node.h"

/* ---- routes that count their runs ------------------------------------------- */

static atomic_int runs;

static int create_thing(shoal_ctx *ctx)
{
    int run = atomic_fetch_add(&runs, 1) + 1;
    size_t length = 0;
    const char *body = shoal_body(ctx, &length);
    char location[32], etag[32];
    snprintf(location, sizeof location, "/test/things/%d", run);
    snprintf(etag, sizeof etag, "\"v%d\"", run);
    if (shoal_set_header(ctx, "Location", location) != 0 || shoal_set_header(ctx, "ETag", etag) != 0 ||
        shoal_set_header(ctx, "X-Not-Kept", "per request") != 0)
        return -1;
    return shoal_json(ctx, 201, json_pack("{s:i,s:s%}", "run", run, "echo", body != NULL ? body : "", length));
}

/* ms times SHOAL_TEST_TIME_SCALE: valgrind and the sanitizers run the node
 * several times slower. */
static int scaled_ms(int ms)
{
    return (int)(ms * test_env_time_scale());
}

static double now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

/* /test/slow counts its starts, then runs until the test lets it finish
 * (10 s at most, scaled, so that a failed test cannot hold the node): a
 * first request that is surely running while the retry comes, on any build,
 * without a fixed sleep. */
static atomic_int slow_started;
static atomic_bool slow_may_finish;

static int slow_thing(shoal_ctx *ctx)
{
    atomic_fetch_add(&slow_started, 1);
    for (int waited = 0; !atomic_load(&slow_may_finish) && waited < scaled_ms(10000); waited += 5)
        usleep(5 * 1000);
    return create_thing(ctx);
}

static int failing_thing(shoal_ctx *ctx)
{
    atomic_fetch_add(&runs, 1);
    return shoal_error(ctx, 503, "test.down", "body", "down for a moment");
}

static int crashing_thing(shoal_ctx *ctx)
{
    (void)ctx;
    atomic_fetch_add(&runs, 1);
    return -1; /* no answer: 500 */
}

static int invalid_thing(shoal_ctx *ctx)
{
    atomic_fetch_add(&runs, 1);
    return shoal_error(ctx, 422, "test.invalid", "name", "is invalid");
}

static int limited_thing(shoal_ctx *ctx)
{
    atomic_fetch_add(&runs, 1);
    return shoal_error(ctx, 429, "test.limited", "body", "later");
}

static int add_routes(shoal_app *app, void *data)
{
    (void)data;
    shoal_blueprint *bp = shoal_blueprint_new(app, "test", "/test");
    if (bp == NULL || shoal_route(bp, "POST|PATCH|PUT", "/things", create_thing) != 0 ||
        shoal_route(bp, "POST", "/slow", slow_thing) != 0 || shoal_route(bp, "POST", "/failing", failing_thing) != 0 ||
        shoal_route(bp, "POST", "/crashing", crashing_thing) != 0 ||
        shoal_route(bp, "POST", "/invalid", invalid_thing) != 0 ||
        shoal_route(bp, "POST", "/limited", limited_thing) != 0)
        return -1;
    return 0;
}

static const shoal_extension test_routes = {.name = "test-routes", .init = add_routes};
static const shoal_extension *const extensions[] = {&shoal_request_id_extension, &shoal_idempotency_extension,
                                                    &test_routes, NULL};

static void fresh_key(char *out, size_t size)
{
    unsigned long long nonce = 0;
    assert_int_equal(getrandom(&nonce, sizeof nonce, 0), (ssize_t)sizeof nonce);
    snprintf(out, size, "key-%016llx", nonce);
}

/* extra: more raw header lines, or NULL. */
static test_response post(const test_node *node, const char *path, const char *key, const char *extra,
                          const char *body)
{
    char headers[1024];
    snprintf(headers, sizeof headers, "Idempotency-Key: %s\r\n%s", key, extra != NULL ? extra : "");
    return test_node_call(node, "POST", path, headers, body);
}

static int status_of(const test_node *node, const char *path, const char *key, const char *extra, const char *body)
{
    test_response response = post(node, path, key, extra, body);
    int status = response.status;
    test_http_response_free(&response);
    return status;
}

/* The replay is the first answer: status, kept headers, body. */
static void expect_replay_of(const test_response *first, const test_response *again)
{
    assert_int_equal(again->status, first->status);
    assert_int_equal(again->body_length, first->body_length);
    assert_memory_equal(again->body, first->body, first->body_length);
    const char *const kept[] = {"Content-Type", "Location", "ETag"};
    for (size_t i = 0; i < 3; i++) {
        char value[256];
        snprintf(value, sizeof value, "%s", test_header(first, kept[i]));
        assert_string_equal(test_header(again, kept[i]), value);
    }
    assert_string_equal(test_header(again, "Idempotent-Replayed"), "true");
    assert_string_equal(test_header(again, "X-Not-Kept"), "");
    /* Per-request headers are this request's own. */
    char id[256];
    snprintf(id, sizeof id, "%s", test_header(first, "X-Request-ID"));
    assert_true(test_header(again, "X-Request-ID")[0] != '\0');
    assert_string_not_equal(test_header(again, "X-Request-ID"), id);
}

/* ---- tests ---------------------------------------------------------------------- */

static void a_retry_gets_the_first_answer_and_the_handler_runs_once(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    char key[64];
    fresh_key(key, sizeof key);
    int before = atomic_load(&runs);
    test_response first = post(&node, "/test/things", key, NULL, "{\"name\":\"a\"}");
    assert_int_equal(first.status, 201);
    assert_string_equal(test_header(&first, "Idempotent-Replayed"), "");
    assert_string_equal(test_header(&first, "X-Not-Kept"), "per request");
    assert_true(test_header(&first, "Location")[0] != '\0');
    for (int i = 0; i < 3; i++) {
        test_response again = post(&node, "/test/things", key, NULL, "{\"name\":\"a\"}");
        expect_replay_of(&first, &again);
        test_http_response_free(&again);
    }
    assert_int_equal(atomic_load(&runs) - before, 1);

    /* Without the header, or with another key, it runs again. */
    test_response plain = test_node_call(&node, "POST", "/test/things", NULL, "{\"name\":\"a\"}");
    assert_int_equal(plain.status, 201);
    test_http_response_free(&plain);
    char other[64];
    fresh_key(other, sizeof other);
    assert_int_equal(status_of(&node, "/test/things", other, NULL, "{\"name\":\"a\"}"), 201);
    /* PATCH is kept by path and method apart from POST: the same key there
     * is another request. */
    char headers[128];
    snprintf(headers, sizeof headers, "Idempotency-Key: %s\r\n", key);
    test_response patch = test_node_call(&node, "PATCH", "/test/things", headers, "{\"name\":\"a\"}");
    assert_int_equal(patch.status, 201);
    test_http_response_free(&patch);
    assert_int_equal(atomic_load(&runs) - before, 4);
    test_http_response_free(&first);
    test_node_stop(&node);
}

static void the_same_key_with_another_body_is_422(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    char key[64];
    fresh_key(key, sizeof key);
    int before = atomic_load(&runs);
    assert_int_equal(status_of(&node, "/test/things", key, NULL, "{\"name\":\"a\"}"), 201);
    test_response response = post(&node, "/test/things", key, NULL, "{\"name\":\"b\"}");
    test_expect_error(&response, 422, "idempotency.mismatch");
    test_http_response_free(&response);
    /* A byte is a byte: the same JSON spelled differently is another body. */
    response = post(&node, "/test/things", key, NULL, "{\"name\": \"a\"}");
    test_expect_error(&response, 422, "idempotency.mismatch");
    test_http_response_free(&response);
    assert_int_equal(atomic_load(&runs) - before, 1);
    test_node_stop(&node);
}

static void a_retry_while_the_first_runs_is_409_then_replayed(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    char key[64];
    fresh_key(key, sizeof key);
    int before = atomic_load(&runs);
    char headers[128];
    snprintf(headers, sizeof headers, "Idempotency-Key: %s\r\n", key);
    char *text = test_node_request_text("POST", "/test/slow", headers, "{}");
    atomic_store(&slow_may_finish, false);
    int started_before = atomic_load(&slow_started);
    int fd = test_http_connect(node.port);
    assert_true(fd >= 0);
    assert_true(test_http_send(fd, text, strlen(text)));
    free(text);
    /* Its handler has started, so the before hook has claimed the key. */
    for (int waited = 0; atomic_load(&slow_started) == started_before && waited < scaled_ms(5000); waited += 5)
        usleep(5 * 1000);
    assert_int_equal(atomic_load(&slow_started), started_before + 1);

    test_response busy = post(&node, "/test/slow", key, NULL, "{}");
    test_expect_error(&busy, 409, "idempotency.in_progress");
    assert_string_equal(test_header(&busy, "Retry-After"), "1");
    test_http_response_free(&busy);
    assert_int_equal(atomic_load(&slow_started), started_before + 1); /* the retry ran nothing */

    atomic_store(&slow_may_finish, true);
    test_response first;
    assert_true(test_http_read(fd, &first, false, 5000));
    close(fd);
    assert_int_equal(first.status, 201);
    test_response again = post(&node, "/test/slow", key, NULL, "{}");
    expect_replay_of(&first, &again);
    test_http_response_free(&again);
    test_http_response_free(&first);
    assert_int_equal(atomic_load(&runs) - before, 1);
    test_node_stop(&node);
}

static void callers_are_kept_apart(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    char key[64];
    fresh_key(key, sizeof key);
    int before = atomic_load(&runs);
    /* Two clients behind the trusted proxy (loopback), the same key. */
    test_response first = post(&node, "/test/things", key, "X-Forwarded-For: 198.51.100.7\r\n", "{}");
    test_response second = post(&node, "/test/things", key, "X-Forwarded-For: 198.51.100.8\r\n", "{}");
    assert_int_equal(first.status, 201);
    assert_int_equal(second.status, 201);
    assert_string_equal(test_header(&second, "Idempotent-Replayed"), "");
    assert_int_equal(atomic_load(&runs) - before, 2);
    test_http_response_free(&second);
    second = post(&node, "/test/things", key, "X-Forwarded-For: 198.51.100.7\r\n", "{}");
    expect_replay_of(&first, &second);
    test_http_response_free(&second);
    test_http_response_free(&first);

    /* With a session token the token is the caller, wherever it comes from;
     * another token is another caller. */
    const char *token = "Authorization: Token AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\r\n";
    char headers[256];
    snprintf(headers, sizeof headers, "%sX-Forwarded-For: 198.51.100.7\r\n", token);
    first = post(&node, "/test/things", key, headers, "{}");
    assert_int_equal(first.status, 201);
    assert_string_equal(test_header(&first, "Idempotent-Replayed"), "");
    snprintf(headers, sizeof headers, "%sX-Forwarded-For: 203.0.113.9\r\n", token);
    second = post(&node, "/test/things", key, headers, "{}");
    expect_replay_of(&first, &second);
    test_http_response_free(&second);
    second = post(&node, "/test/things", key,
                  "Authorization: Bearer AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\r\n", "{}");
    expect_replay_of(&first, &second); /* Bearer or Token: the same token */
    test_http_response_free(&second);
    second = post(&node, "/test/things", key,
                  "Authorization: Token BAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\r\n", "{}");
    assert_int_equal(second.status, 201);
    assert_string_equal(test_header(&second, "Idempotent-Replayed"), "");
    test_http_response_free(&second);
    test_http_response_free(&first);
    assert_int_equal(atomic_load(&runs) - before, 4);
    test_node_stop(&node);
}

static void failures_are_not_kept_and_client_errors_are(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    char key[64];
    int before = atomic_load(&runs);
    /* 5xx: a retry after the outage runs again. */
    fresh_key(key, sizeof key);
    for (int i = 0; i < 2; i++) {
        test_response response = post(&node, "/test/failing", key, NULL, "{}");
        test_expect_error(&response, 503, "test.down");
        assert_string_equal(test_header(&response, "Idempotent-Replayed"), "");
        test_http_response_free(&response);
    }
    assert_int_equal(atomic_load(&runs) - before, 2);
    /* A handler that fails without answering: its claim is released too. */
    fresh_key(key, sizeof key);
    for (int i = 0; i < 2; i++) {
        test_response response = post(&node, "/test/crashing", key, NULL, "{}");
        test_expect_error(&response, 500, "internal");
        test_http_response_free(&response);
    }
    assert_int_equal(atomic_load(&runs) - before, 4);
    /* 429 says "later": not kept either. */
    fresh_key(key, sizeof key);
    assert_int_equal(status_of(&node, "/test/limited", key, NULL, "{}"), 429);
    assert_int_equal(status_of(&node, "/test/limited", key, NULL, "{}"), 429);
    assert_int_equal(atomic_load(&runs) - before, 6);
    /* A 422 is an answer: kept and replayed. */
    fresh_key(key, sizeof key);
    test_response first = post(&node, "/test/invalid", key, NULL, "{}");
    test_expect_error(&first, 422, "test.invalid");
    test_response again = post(&node, "/test/invalid", key, NULL, "{}");
    expect_replay_of(&first, &again);
    test_http_response_free(&again);
    test_http_response_free(&first);
    assert_int_equal(atomic_load(&runs) - before, 7);
    test_node_stop(&node);
}

static void bad_keys_are_400(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    int before = atomic_load(&runs);
    char key[300];
    memset(key, 'k', 256);
    key[256] = '\0';
    test_response response = post(&node, "/test/things", key, NULL, "{}");
    test_expect_error(&response, 400, "idempotency.invalid_key");
    test_http_response_free(&response);
    response = test_node_call(&node, "POST", "/test/things", "Idempotency-Key:\r\n", "{}");
    test_expect_error(&response, 400, "idempotency.invalid_key");
    test_http_response_free(&response);
    assert_int_equal(atomic_load(&runs) - before, 0);
    key[255] = '\0';
    assert_int_equal(status_of(&node, "/test/things", key, NULL, "{}"), 201);
    test_node_stop(&node);
}

static void nodes_share_the_record(void **state)
{
    (void)state;
    static test_node first_node, second_node;
    test_node_start(&first_node, NULL, extensions);
    test_node_start(&second_node, NULL, extensions);
    char key[64];
    fresh_key(key, sizeof key);
    int before = atomic_load(&runs);
    test_response first = post(&first_node, "/test/things", key, NULL, "{\"n\":1}");
    assert_int_equal(first.status, 201);
    test_response again = post(&second_node, "/test/things", key, NULL, "{\"n\":1}");
    expect_replay_of(&first, &again);
    test_http_response_free(&again);
    test_http_response_free(&first);
    test_response other = post(&second_node, "/test/things", key, NULL, "{\"n\":2}");
    test_expect_error(&other, 422, "idempotency.mismatch");
    test_http_response_free(&other);
    assert_int_equal(atomic_load(&runs) - before, 1);
    test_node_stop(&first_node);
    test_node_stop(&second_node);
}

static void a_record_lives_for_the_configured_ttl(void **state)
{
    (void)state;
    /* 1 s in a Release build, whole seconds times the scale elsewhere: the
     * replay must come inside it on any build. */
    int ttl_s = (int)test_env_time_scale();
    if (ttl_s < test_env_time_scale())
        ttl_s++;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *const flags[] = {"--idempotency-ttl", ttl, NULL};
    static test_node node;
    test_node_start(&node, flags, extensions);
    char key[64];
    fresh_key(key, sizeof key);
    int before = atomic_load(&runs);
    assert_int_equal(status_of(&node, "/test/things", key, NULL, "{}"), 201);
    /* The record was stored with its TTL before that answer went out. */
    double stored_by = now_ms();
    test_response again = post(&node, "/test/things", key, NULL, "{}");
    assert_string_equal(test_header(&again, "Idempotent-Replayed"), "true");
    test_http_response_free(&again);
    double expired_by = stored_by + ttl_s * 1000.0 + 50.0;
    while (now_ms() < expired_by)
        usleep((useconds_t)((expired_by - now_ms()) * 1000.0) + 1000);
    again = post(&node, "/test/things", key, NULL, "{}");
    assert_int_equal(again.status, 201);
    assert_string_equal(test_header(&again, "Idempotent-Replayed"), "");
    test_http_response_free(&again);
    assert_int_equal(atomic_load(&runs) - before, 2);
    test_node_stop(&node);
}

/* Each test's node is stopped after it, also when an assertion failed; a
 * slow request still running finishes first, or stopping would wait for it. */
static int stop_node(void **state)
{
    atomic_store(&slow_may_finish, true);
    return test_node_stop_started(state);
}

/* Whatever happened in the test, the fixture's Redis runs again, and the
 * test's node stops. */
static int resume_redis(void **state)
{
    kill(test_env_redis_pid(), SIGCONT);
    return stop_node(state);
}

static void with_redis_hung_a_keyed_request_is_503_and_does_not_run(void **state)
{
    (void)state;
    static test_node node;
    test_node_start(&node, NULL, extensions);
    char key[64];
    fresh_key(key, sizeof key);
    int before = atomic_load(&runs);
    pid_t redis = test_env_redis_pid();
    assert_int_equal(kill(redis, SIGSTOP), 0);
    test_response response = post(&node, "/test/things", key, NULL, "{}");
    test_expect_error(&response, 503, "cache.unavailable");
    assert_string_equal(test_header(&response, "Retry-After"), "1");
    test_http_response_free(&response);
    /* Without the header nothing waits for Redis. */
    response = test_node_call(&node, "POST", "/test/things", NULL, "{}");
    assert_int_equal(response.status, 201);
    test_http_response_free(&response);
    assert_int_equal(atomic_load(&runs) - before, 1);

    assert_int_equal(kill(redis, SIGCONT), 0);
    char fresh[64];
    fresh_key(fresh, sizeof fresh);
    int status = 0;
    for (int i = 0; i < 50 * test_env_time_scale() && status != 201; i++) {
        status = status_of(&node, "/test/things", fresh, NULL, "{}");
        if (status != 201)
            usleep(100 * 1000);
    }
    assert_int_equal(status, 201);
    assert_int_equal(atomic_load(&runs) - before, 2);
    /* Redis ran the claim it had been sent once it woke, after the node had
     * answered 503. On a blocking connection the node dropped the
     * connection at the timeout and could not release the claim: the key
     * counts as running until it expires, and a retry gets 409. On a
     * worker loop's connection the release went out behind the claim and
     * ran after it: the key is free, and a retry runs, for the first time
     * (docs/state.md). Either way the request never runs twice. */
    response = post(&node, "/test/things", key, NULL, "{}");
    if (response.status == 409) {
        test_expect_error(&response, 409, "idempotency.in_progress");
        assert_int_equal(atomic_load(&runs) - before, 2);
    } else {
        assert_int_equal(response.status, 201);
        assert_int_equal(atomic_load(&runs) - before, 3);
        test_http_response_free(&response);
        response = post(&node, "/test/things", key, NULL, "{}");
        assert_string_equal(test_header(&response, "Idempotent-Replayed"), "true");
        assert_int_equal(atomic_load(&runs) - before, 3);
    }
    test_http_response_free(&response);
    test_node_stop(&node);
}

#define NODE_TEST(test) cmocka_unit_test_teardown(test, stop_node)

int main(void)
{
    const struct CMUnitTest tests[] = {
        NODE_TEST(a_retry_gets_the_first_answer_and_the_handler_runs_once),
        NODE_TEST(the_same_key_with_another_body_is_422),
        NODE_TEST(a_retry_while_the_first_runs_is_409_then_replayed),
        NODE_TEST(callers_are_kept_apart),
        NODE_TEST(failures_are_not_kept_and_client_errors_are),
        NODE_TEST(bad_keys_are_400),
        NODE_TEST(nodes_share_the_record),
        NODE_TEST(a_record_lives_for_the_configured_ttl),
        cmocka_unit_test_teardown(with_redis_hung_a_keyed_request_is_503_and_does_not_run, resume_redis),
    };
    return cmocka_run_group_tests_name("integration.node.ext.idempotency", tests, NULL, NULL);
}
