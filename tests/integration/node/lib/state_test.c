/* tests/integration/node/lib/state_test.c: whole nodes over real HTTP against
 * the fixture's real PostgreSQL and Redis, while those stop and start
 * again (issue 3, "Failure behaviour"), and two nodes sharing sessions and
 * cache invalidations. The routes are tests/support/state_routes.c. */
#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
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

#include <shoal/ext/request_id.h>
#include <shoal/ext/session.h>
#include <shoal/l1.h>
#include <shoal/metrics.h>

#include "http_client.h"
#include "spare_redis.h"
#include "state_routes.h"
#include "test_env.h"
#include "test_node.h"

#define WINDOW_ROUNDS 200

static long long user_base;
static char key_prefix[64];

static uint64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static double ms_since(uint64_t start)
{
    return (double)(now_ns() - start) / 1e6;
}

static void harness(const char *variable)
{
    assert_int_equal(system(test_env_require(variable)), 0);
}

static void sql(const char *statement)
{
    PGconn *connection = PQconnectdb(TEST_DATABASE_URL());
    assert_int_equal(PQstatus(connection), CONNECTION_OK);
    PGresult *result = PQexec(connection, statement);
    if (PQresultStatus(result) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", statement, PQerrorMessage(connection));
    PQclear(result);
    PQfinish(connection);
}

static void start(test_node *node, const char *const *args)
{
    static const shoal_extension *const extensions[] = {&shoal_request_id_extension, &shoal_session_extension,
                                                        &shoal_metrics_extension, &state_routes_extension,
                                                        NULL};
    test_node_start(node, args, extensions);
}

static bool wait_subscribed(const test_node *node, bool subscribed, int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)(timeout_ms * test_env_time_scale() * 1e6);
    while (now_ns() < deadline) {
        if (shoal_app_l1_subscribed(node->app) == subscribed)
            return true;
        usleep(1000);
    }
    return false;
}

/* ---- HTTP ------------------------------------------------------------------ */

static test_response call(const test_node *node, const char *method, const char *path, const char *authorization)
{
    char request[1024];
    snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n%s%s%s\r\n", method, path,
             authorization != NULL ? "Authorization: " : "", authorization != NULL ? authorization : "",
             authorization != NULL ? "\r\n" : "");
    test_response response;
    assert_true(test_http_request(node->port, request, &response));
    return response;
}

/* The body's string member, copied into out; false when there is none. */
static bool body_string(const test_response *response, const char *name, char *out, size_t size)
{
    json_error_t error;
    json_t *body = json_loads(response->body, 0, &error);
    const char *value = json_string_value(json_object_get(body, name));
    if (value != NULL)
        snprintf(out, size, "%s", value);
    json_decref(body);
    return value != NULL;
}

static void expect_503(const test_node *node, const char *method, const char *path, const char *authorization,
                       const char *code)
{
    test_response response = call(node, method, path, authorization);
    if (response.status != 503)
        fail_msg("%s %s: %d %s", method, path, response.status, response.body);
    char value[64];
    assert_true(body_string(&response, "code", value, sizeof value));
    assert_string_equal(value, code);
    assert_true(test_http_header(&response, "Retry-After", value, sizeof value));
    assert_string_equal(value, "1");
    test_http_response_free(&response);
}

static void expect_401(const test_node *node, const char *authorization)
{
    test_response response = call(node, "GET", "/test/me", authorization);
    assert_int_equal(response.status, 401);
    char code[64];
    assert_true(body_string(&response, "code", code, sizeof code));
    assert_string_equal(code, "auth.invalid");
    test_http_response_free(&response);
}

/* Logs user in; "Token <token>" in authorization. */
static void log_in(const test_node *node, long long user, char *authorization, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/test/login?user=%lld", user);
    test_response response = call(node, "POST", path, NULL);
    assert_int_equal(response.status, 201);
    char token[64];
    assert_true(body_string(&response, "token", token, sizeof token));
    snprintf(authorization, size, "Token %s", token);
    test_http_response_free(&response);
}

static long long me_as(const test_node *node, const char *authorization)
{
    test_response response = call(node, "GET", "/test/me", authorization);
    if (response.status != 200)
        fail_msg("GET /test/me: %d %s", response.status, response.body);
    json_error_t error;
    json_t *body = json_loads(response.body, 0, &error);
    long long user = (long long)json_integer_value(json_object_get(body, "user"));
    json_decref(body);
    test_http_response_free(&response);
    return user;
}

static void item_path(char *out, size_t size, const char *key, const char *suffix)
{
    snprintf(out, size, "/test/items/%s%s%s", key_prefix, key, suffix);
}

static void put_item(const test_node *node, const char *authorization, const char *key, const char *value)
{
    char path[256];
    item_path(path, sizeof path, key, "?value=");
    strncat(path, value, sizeof path - strlen(path) - 1);
    test_response response = call(node, "PUT", path, authorization);
    if (response.status != 200)
        fail_msg("PUT %s: %d %s", path, response.status, response.body);
    test_http_response_free(&response);
}

/* The item's value as a node serves it (cached or direct); the status is
 * returned, the value copied into out when it is 200. */
static int get_item(const test_node *node, const char *key, bool direct, char *out, size_t size)
{
    char path[256];
    item_path(path, sizeof path, key, direct ? "/direct" : "");
    test_response response = call(node, "GET", path, NULL);
    int status = response.status;
    out[0] = '\0';
    if (status == 200)
        assert_true(body_string(&response, "value", out, size));
    test_http_response_free(&response);
    return status;
}

static void expect_item(const test_node *node, const char *key, bool direct, const char *expected)
{
    char value[128];
    int status = get_item(node, key, direct, value, sizeof value);
    if (status != 200)
        fail_msg("GET %s%s: %d", key, direct ? "/direct" : "", status);
    assert_string_equal(value, expected);
}

static void *heap_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static bool in_l1(const test_node *node, const char *key)
{
    char full[128];
    snprintf(full, sizeof full, "%s%s", key_prefix, key);
    void *value = NULL;
    size_t length = 0;
    bool hit = cache_l1_get(shoal_app_l1(node->app), STATE_ROUTES_FAMILY, full, heap_alloc, NULL, &value, &length);
    free(value);
    return hit;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the figures, prints their p50, p99 and maximum; returns the p50. */
static double report(const char *what, double *figures)
{
    qsort(figures, WINDOW_ROUNDS, sizeof figures[0], compare_double);
    double p50 = figures[WINDOW_ROUNDS / 2];
    printf("two nodes over HTTP, %d rounds, %s: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", WINDOW_ROUNDS, what, p50,
           figures[WINDOW_ROUNDS * 99 / 100], figures[WINDOW_ROUNDS - 1]);
    fflush(stdout);
    return p50;
}

/* ---- two nodes ---------------------------------------------------------------- */

static void two_nodes_share_sessions_and_invalidations(void **state)
{
    (void)state;
    /* L1 entries that would live a minute: only the invalidation message
     * can explain node 2 serving a new value. */
    const char *args[] = {"--l1-ttl-ms", "60000", NULL};
    test_node one, two;
    start(&one, args);
    start(&two, args);
    assert_true(wait_subscribed(&one, true, 5000));
    assert_true(wait_subscribed(&two, true, 5000));

    /* A session made through node 1 is good on node 2. */
    char authorization[128];
    log_in(&one, user_base + 1, authorization, sizeof authorization);
    assert_int_equal(me_as(&two, authorization), user_base + 1);

    /* A write on node 1 reaches node 2's L1. The window runs from sending
     * the write to node 1 until node 2 first answers with the new value;
     * before each write node 2 holds the old value in its L1, and it never
     * answers anything but the old or the new value. */
    put_item(&one, authorization, "shared", "v0");
    static double windows[WINDOW_ROUNDS], writes[WINDOW_ROUNDS], after_writes[WINDOW_ROUNDS];
    for (int round = 0; round < WINDOW_ROUNDS; round++) {
        char old_value[32], new_value[32], got[128];
        snprintf(old_value, sizeof old_value, "v%d", round);
        snprintf(new_value, sizeof new_value, "v%d", round + 1);
        expect_item(&two, "shared", false, old_value);
        expect_item(&two, "shared", false, old_value);
        assert_true(in_l1(&two, "shared"));

        uint64_t start_ns = now_ns();
        put_item(&one, authorization, "shared", new_value);
        uint64_t written_ns = now_ns();
        writes[round] = (double)(written_ns - start_ns) / 1e6;
        for (;;) {
            assert_int_equal(get_item(&two, "shared", false, got, sizeof got), 200);
            if (strcmp(got, new_value) == 0)
                break;
            assert_string_equal(got, old_value);
            assert_true(ms_since(start_ns) < 2000.0 * test_env_time_scale());
            /* Not a busy loop: on a loaded 2-core machine one starves the
             * subscriber it is waiting for. */
            usleep(200);
        }
        windows[round] = ms_since(start_ns);
        after_writes[round] = ms_since(written_ns);
        expect_item(&two, "shared", false, new_value);
    }
    report("PUT sent to node 1 until node 2 answers the new value", windows);
    report("of which the PUT's own round trip", writes);
    double p50 = report("and from the PUT's answer until node 2 answers the new value", after_writes);
    /* Every round ended within 2 s where only the message could end it (the
     * L1 keeps entries a minute). The p99 target (100 ms) is asserted where
     * the window is measured alone, in tests/integration/cache/
     * invalidation_test.c: here the PUT and the HTTP round trips share the
     * machine's two cores with everything else, and a busy moment of the
     * machine (not of the node) can push a p99 of 200 rounds past it. */
    assert_true(p50 < 100.0 * test_env_time_scale());

    /* A revoked session fails on both. */
    test_response response = call(&one, "POST", "/test/logout", authorization);
    assert_int_equal(response.status, 204);
    test_http_response_free(&response);
    expect_401(&one, authorization);
    expect_401(&two, authorization);

    test_node_stop(&one);
    test_node_stop(&two);
}

/* ---- Redis stops and starts --------------------------------------------------- */

/* One series of the node's GET /metrics (on its admin port). */
static double metric(const test_node *node, const char *series)
{
    test_response response = test_node_admin_call(node, "GET", "/metrics", NULL, NULL);
    assert_int_equal(response.status, 200);
    double value = test_metric_value(response.body, series);
    test_http_response_free(&response);
    assert_true(value >= 0);
    return value;
}

#define SESSION_ERRORS "shoal_session_lookups_total{result=\"error\"}"
#define SESSIONS_FOUND "shoal_session_lookups_total{result=\"found\"}"

static int restart_redis(void **state)
{
    (void)state;
    return system(test_env_require("SHOAL_TEST_REDIS_START")) == 0 ? 0 : -1;
}

static void redis_stops_and_starts(void **state)
{
    (void)state;
    test_node node;
    start(&node, NULL);
    assert_true(wait_subscribed(&node, true, 5000));
    char authorization[128];
    log_in(&node, user_base + 2, authorization, sizeof authorization);
    put_item(&node, authorization, "a", "before");
    expect_item(&node, "a", false, "before");
    expect_item(&node, "a", false, "before");
    assert_true(in_l1(&node, "a"));

    double session_errors = metric(&node, SESSION_ERRORS);
    double redis_errors = metric(&node, "shoal_redis_errors_total");
    double redis_reconnects = metric(&node, "shoal_redis_reconnects_total");

    harness("SHOAL_TEST_REDIS_STOP");
    /* The subscriber sees the connection close and the L1 stops serving:
     * invalidations can no longer reach it. */
    assert_true(wait_subscribed(&node, false, 5000));
    assert_false(in_l1(&node, "a"));

    for (int i = 0; i < 3; i++) {
        /* What needs a session is 503 with Retry-After, logging in too... */
        expect_503(&node, "GET", "/test/me", authorization, "cache.unavailable");
        expect_503(&node, "POST", "/test/login?user=1", NULL, "cache.unavailable");
        /* ...and a public read that needs only PostgreSQL answers from it,
         * the cache bypassed: a row changed behind the node's back shows at
         * once. */
        char statement[256];
        snprintf(statement, sizeof statement,
                 "UPDATE state_test_items SET value = 'during %d' WHERE key = '%sa'", i, key_prefix);
        sql(statement);
        char expected[32];
        snprintf(expected, sizeof expected, "during %d", i);
        expect_item(&node, "a", false, expected);
        expect_item(&node, "a", true, expected);
    }

    /* What an operator watching /metrics sees during the outage: every
     * session lookup that Redis could not answer (three GET /test/me), and
     * Redis calls failing. */
    assert_true(metric(&node, SESSION_ERRORS) - session_errors >= 3);
    assert_true(metric(&node, "shoal_redis_errors_total") > redis_errors);

    harness("SHOAL_TEST_REDIS_START");
    uint64_t restarted = now_ns();
    int status = 0;
    /* Until one worker answers: which one takes a request is not ours to
     * know, and one 200 says only that its worker reached Redis. */
    while (status != 200 && ms_since(restarted) < 5000.0 * test_env_time_scale()) {
        test_response response = call(&node, "GET", "/test/me", authorization);
        status = response.status;
        test_http_response_free(&response);
        if (status != 200)
            usleep(20 * 1000);
    }
    printf("Redis restart: sessions answered again %.0f ms after it was back\n", ms_since(restarted));
    assert_int_equal(status, 200);
    /* From then on no request fails, whichever worker takes it: a worker
     * whose last attempt failed tries again at once now that another
     * connection reached Redis, and one whose connection broke while Redis
     * was away finds it dead before sending and sends on a new one (issue
     * 14; before, the worker that had not reconnected answered 503). */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(me_as(&node, authorization), user_base + 2);
        char value[16];
        snprintf(value, sizeof value, "back%d", i);
        put_item(&node, authorization, "a", value);
    }
    /* The session from before the restart, from the append-only file. */
    double found = metric(&node, SESSIONS_FOUND);
    assert_int_equal(me_as(&node, authorization), user_base + 2);
    assert_true(metric(&node, SESSIONS_FOUND) > found);
    assert_true(metric(&node, "shoal_redis_reconnects_total") > redis_reconnects);
    assert_true(wait_subscribed(&node, true, 5000));
    /* Writes and their invalidations work again, and the L1 fills again. */
    put_item(&node, authorization, "a", "after");
    expect_item(&node, "a", false, "after");
    expect_item(&node, "a", false, "after");
    assert_true(in_l1(&node, "a"));
    test_node_stop(&node);
}

/* ---- Redis answers, but cannot serve --------------------------------------------- */

static spare_redis spare;

static int stop_spare(void **state)
{
    (void)state;
    spare_redis_stop(&spare);
    return 0;
}

/* The node's Redis is a replica that lost its primary: every command is
 * answered MASTERDOWN, as a loading server answers LOADING. For the node
 * that is Redis being unavailable, as if it refused connections: 503 with
 * Retry-After where a session is needed (it was 500 cache.error), and
 * public reads from PostgreSQL. */
static void redis_answering_that_it_cannot_serve_is_unavailable(void **state)
{
    (void)state;
    const char *replica[] = {"--replicaof", "127.0.0.1", "1", "--replica-serve-stale-data", "no", NULL};
    spare_redis_start(&spare, replica);
    const char *args[] = {"--redis-url", spare.url, NULL};
    test_node node;
    start(&node, args);
    char authorization[128];
    snprintf(authorization, sizeof authorization, "Token %s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    double redis_errors = metric(&node, "shoal_redis_errors_total");
    for (int i = 0; i < 3; i++) {
        expect_503(&node, "GET", "/test/me", authorization, "cache.unavailable");
        expect_503(&node, "POST", "/test/login?user=1", NULL, "cache.unavailable");
        char statement[256];
        snprintf(statement, sizeof statement,
                 "INSERT INTO state_test_items VALUES ('%sm', 'from postgres %d') "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 key_prefix, i);
        sql(statement);
        char expected[32];
        snprintf(expected, sizeof expected, "from postgres %d", i);
        expect_item(&node, "m", false, expected);
    }
    /* Counted as Redis errors, as refused connections are. */
    assert_true(metric(&node, "shoal_redis_errors_total") > redis_errors);
    test_node_stop(&node);
}

/* ---- PostgreSQL stops and starts ----------------------------------------------- */

static int restart_postgres(void **state)
{
    (void)state;
    /* pg_ctl refuses to start a running server, which is fine here: the
     * test may have failed before stopping it or after starting it. */
    char command[1024];
    snprintf(command, sizeof command, "%s >/dev/null 2>&1", test_env_require("SHOAL_TEST_PG_START"));
    int rc = system(command);
    (void)rc;
    return 0;
}

static void postgres_stops_and_starts(void **state)
{
    (void)state;
    test_node node;
    start(&node, NULL);
    char authorization[128];
    log_in(&node, user_base + 3, authorization, sizeof authorization);
    put_item(&node, authorization, "p", "one");
    expect_item(&node, "p", false, "one"); /* now cached */
    expect_item(&node, "p", true, "one");

    harness("SHOAL_TEST_PG_STOP");
    for (int i = 0; i < 3; i++) {
        /* What needs PostgreSQL is 503 with Retry-After... */
        expect_503(&node, "GET", "/test/items/nothing-cached/direct", NULL, "store.unavailable");
        char path[256];
        item_path(path, sizeof path, "p", "/direct");
        expect_503(&node, "GET", path, NULL, "store.unavailable");
        item_path(path, sizeof path, "p", "?value=two");
        expect_503(&node, "PUT", path, authorization, "store.unavailable");
        item_path(path, sizeof path, "never-read", "");
        expect_503(&node, "GET", path, NULL, "store.unavailable");
        /* ...while what does not keeps working: sessions, and a read whose
         * value is in the cache. */
        assert_int_equal(me_as(&node, authorization), user_base + 3);
        expect_item(&node, "p", false, "one");
    }

    harness("SHOAL_TEST_PG_START");
    uint64_t restarted = now_ns();
    char value[128];
    int status = 0;
    while (status != 200 && ms_since(restarted) < 5000.0 * test_env_time_scale()) {
        status = get_item(&node, "p", true, value, sizeof value);
        if (status != 200)
            usleep(20 * 1000);
    }
    printf("PostgreSQL restart: reads answered again %.0f ms after it was back\n", ms_since(restarted));
    assert_int_equal(status, 200);
    assert_string_equal(value, "one");
    /* Every worker recovers, not only the one that answered: from then on
     * no read fails, whichever worker takes it (one whose last attempt
     * failed tries again at once now that another connection got through). */
    for (int i = 0; i < 8; i++)
        expect_item(&node, "p", true, "one");
    put_item(&node, authorization, "p", "two");
    expect_item(&node, "p", false, "two");
    test_node_stop(&node);
}

/* ---- stale if error: PostgreSQL down past a TTL ---------------------------------- */

#define STALE_IF_ERROR_READS "shoal_cache_reads_total{source=\"stale_if_error\"}"

static void sleep_until(uint64_t when_ns)
{
    uint64_t now = now_ns();
    if (when_ns > now)
        usleep((useconds_t)((when_ns - now) / 1000u));
}

static void insert_item(const char *key, const char *value)
{
    char statement[256];
    snprintf(statement, sizeof statement,
             "INSERT INTO state_test_items (key, value) VALUES ('%s%s', '%s') "
             "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
             key_prefix, key, value);
    sql(statement);
}

/* GET /test/items/<key>?ttl_ms=<ttl>: the status, the value into out. */
static int get_short_lived(const test_node *node, const char *key, int ttl_ms, char *out, size_t size)
{
    char path[256], suffix[32];
    snprintf(suffix, sizeof suffix, "?ttl_ms=%d", ttl_ms);
    item_path(path, sizeof path, key, suffix);
    test_response response = call(node, "GET", path, NULL);
    int status = response.status;
    out[0] = '\0';
    if (status == 200)
        assert_true(body_string(&response, "value", out, size));
    test_http_response_free(&response);
    return status;
}

static void expect_short_lived(const test_node *node, const char *key, int ttl_ms, const char *expected)
{
    char value[128];
    int status = get_short_lived(node, key, ttl_ms, value, sizeof value);
    if (status != 200)
        fail_msg("GET %s?ttl_ms=%d: %d, not 200 %s", key, ttl_ms, status, expected);
    assert_string_equal(value, expected);
}

static void expect_short_lived_503(const test_node *node, const char *key, int ttl_ms)
{
    char path[256], suffix[32];
    snprintf(suffix, sizeof suffix, "?ttl_ms=%d", ttl_ms);
    item_path(path, sizeof path, key, suffix);
    expect_503(node, "GET", path, NULL, "store.unavailable");
}

/* After a restart: the first 200 for key on node. */
static void wait_postgres_back(const test_node *node, const char *key, int ttl_ms, const char *expected)
{
    uint64_t restarted = now_ns();
    char value[128];
    int status = 0;
    while (status != 200 && ms_since(restarted) < 5000.0 * test_env_time_scale()) {
        status = get_short_lived(node, key, ttl_ms, value, sizeof value);
        if (status != 200)
            usleep(20 * 1000);
    }
    assert_int_equal(status, 200);
    assert_string_equal(value, expected);
}

/* Issue 14: a read whose fill fails because PostgreSQL is down answers the
 * copy it had, past that copy's TTL, rather than 503 (the default window,
 * --cache-stale-if-error-ms, is 5 minutes), and a key never read is 503.
 * Values are read with a short TTL and the L1 is short, so that "past the
 * TTL" takes a fraction of a second (times the scale under valgrind). */
static void postgres_down_past_the_ttl_answers_the_stale_copy(void **state)
{
    (void)state;
    double scale = test_env_time_scale();
    int ttl_ms = (int)(200 * scale), l1_ttl_ms = (int)(100 * scale);
    char l1_ttl[16];
    snprintf(l1_ttl, sizeof l1_ttl, "%d", l1_ttl_ms);
    const char *args[] = {"--l1-ttl-ms", l1_ttl, NULL};
    test_node node;
    start(&node, args);
    assert_true(wait_subscribed(&node, true, 5000));
    insert_item("read", "one");
    insert_item("never-read", "there");

    /* While PostgreSQL is up freshness is what it was: a row changed behind
     * the node's back shows once the TTL (+10 %) and the L1's TTL are over,
     * not after the longer life of the copy kept for errors. */
    expect_short_lived(&node, "read", ttl_ms, "one");
    uint64_t changed = now_ns();
    insert_item("read", "two");
    char value[128];
    for (;;) {
        assert_int_equal(get_short_lived(&node, "read", ttl_ms, value, sizeof value), 200);
        if (strcmp(value, "two") == 0)
            break;
        assert_string_equal(value, "one");
        if (ms_since(changed) > 1.1 * ttl_ms + l1_ttl_ms + 500 * scale)
            fail_msg("the changed row was not seen %.0f ms after the change (TTL %d ms)", ms_since(changed), ttl_ms);
        usleep(5 * 1000);
    }
    uint64_t read = now_ns();
    printf("stale if error: a changed row seen %.0f ms after the change (TTL %d ms)\n", ms_since(changed), ttl_ms);
    /* Its series is checked below, after what a client sees. */
    double stale_answers = metric(&node, STALE_IF_ERROR_READS);

    harness("SHOAL_TEST_PG_STOP");
    /* Past the TTL, the stale window (TTL / 5) and the L1's TTL. */
    sleep_until(read + (uint64_t)(1.1 * ttl_ms + ttl_ms / 5 + l1_ttl_ms + 100 * scale) * 1000000u);
    for (int i = 0; i < 3; i++) {
        /* Read before the outage: the stale copy. */
        expect_short_lived(&node, "read", ttl_ms, "two");
        /* Never read: nothing to answer with. */
        expect_short_lived_503(&node, "never-read", ttl_ms);
        /* What reads PostgreSQL itself is 503 as before. */
        char path[256];
        item_path(path, sizeof path, "read", "/direct");
        expect_503(&node, "GET", path, NULL, "store.unavailable");
    }
    /* Each such answer counts on /metrics. */
    assert_true(stale_answers >= 0);
    assert_true(metric(&node, STALE_IF_ERROR_READS) - stale_answers >= 3);

    harness("SHOAL_TEST_PG_START");
    wait_postgres_back(&node, "never-read", ttl_ms, "there");
    /* Back to fresh copies: a change shows within the TTL again. */
    insert_item("read", "three");
    changed = now_ns();
    for (;;) {
        int status = get_short_lived(&node, "read", ttl_ms, value, sizeof value);
        if (status == 200 && strcmp(value, "three") == 0)
            break;
        if (ms_since(changed) > 5000.0 * test_env_time_scale())
            fail_msg("after PostgreSQL came back the change was not seen: %d %s", status, value);
        usleep(20 * 1000);
    }
    test_node_stop(&node);
}

/* The copy answers within --cache-stale-if-error-ms past its freshness, not
 * after: then it is 503 again. */
static void past_the_stale_if_error_window_it_is_503_again(void **state)
{
    (void)state;
    double scale = test_env_time_scale();
    /* The window outlasts stopping PostgreSQL (pg_ctl -m fast -w, well under
     * a second, and no slower under valgrind) and the reads after it. */
    int ttl_ms = (int)(200 * scale), l1_ttl_ms = (int)(100 * scale), window_ms = (int)(2000 + 500 * scale);
    char l1_ttl[16], window[16];
    snprintf(l1_ttl, sizeof l1_ttl, "%d", l1_ttl_ms);
    snprintf(window, sizeof window, "%d", window_ms);
    const char *args[] = {"--l1-ttl-ms", l1_ttl, "--cache-stale-if-error-ms", window, NULL};
    test_node node;
    start(&node, args);
    assert_true(wait_subscribed(&node, true, 5000));
    insert_item("bounded", "kept");
    expect_short_lived(&node, "bounded", ttl_ms, "kept");
    uint64_t read = now_ns();

    harness("SHOAL_TEST_PG_STOP");
    sleep_until(read + (uint64_t)(1.1 * ttl_ms + ttl_ms / 5 + l1_ttl_ms + 100 * scale) * 1000000u);
    /* The copy stopped being fresh at least 0.9 x TTL after the read. */
    if (ms_since(read) > 0.9 * ttl_ms + window_ms - 100 * scale)
        fail_msg("%.0f ms after the read: past the window before the test could look", ms_since(read));
    expect_short_lived(&node, "bounded", ttl_ms, "kept");
    sleep_until(read + (uint64_t)(1.1 * ttl_ms + window_ms + 200 * scale) * 1000000u);
    expect_short_lived_503(&node, "bounded", ttl_ms);

    harness("SHOAL_TEST_PG_START");
    wait_postgres_back(&node, "bounded", ttl_ms, "kept");
    test_node_stop(&node);
}

static int setup(void **state)
{
    (void)state;
    sql(STATE_ROUTES_TABLE_SQL);
    return 0;
}

int main(void)
{
    user_base = (long long)time(NULL) * 1000 + 700;
    snprintf(key_prefix, sizeof key_prefix, "k%ld-%d-", (long)time(NULL), (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_nodes_share_sessions_and_invalidations),
        cmocka_unit_test_teardown(redis_stops_and_starts, restart_redis),
        cmocka_unit_test_teardown(redis_answering_that_it_cannot_serve_is_unavailable, stop_spare),
        cmocka_unit_test_teardown(postgres_stops_and_starts, restart_postgres),
        cmocka_unit_test_teardown(postgres_down_past_the_ttl_answers_the_stale_copy, restart_postgres),
        cmocka_unit_test_teardown(past_the_stale_if_error_window_it_is_503_again, restart_postgres),
    };
    return cmocka_run_group_tests_name("integration.node.state", tests, setup, NULL);
}
