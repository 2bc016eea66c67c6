/* tests/integration/node/services/conduit/stale_test.c: issue 14, "stale beats an
 * error", with the RealWorld API's own articles over real HTTP: with
 * PostgreSQL stopped past an article's TTL, an article read before the
 * outage still answers 200 from its stale copy; one never read answers 503.
 *
 * The article family's TTL is 30 s, compiled in. Rather than wait that
 * long, the test moves the one cached copy past its freshness by giving
 * its Redis key the remaining lifetime it would have one second after its
 * TTL (PEXPIRE to tail - 1000; the tail is the time a value is kept after
 * its freshness, stored in front of it). The node's L1 lives 100 ms here.
 * tests/integration/node/lib/state_test.c shows the same with a short TTL in
 * real time. Stops and starts the fixture's PostgreSQL: runs alone. */
#include <hiredis/hiredis.h>

#include <shoal/cache.h>

#include "api_test_support.h"

static int start_node(void **state)
{
    (void)state;
    snprintf(tag, sizeof tag, "%x%x", (unsigned)getpid(), (unsigned)time(NULL));
    test_node_migrate();
    const char *const flags[] = {"--password-ops-limit", "1", "--password-mem-limit", "64k", "--l1-ttl-ms", "100",
                                 NULL};
    static const shoal_extension *const extensions[] = {&shoal_request_id_extension, &shoal_session_extension,
                                                        &shoal_api_extension, NULL};
    test_node_start(&server, flags, extensions);
    return 0;
}

static int start_postgres(void **state)
{
    (void)state;
    /* pg_ctl refuses to start a running server, which is fine here. */
    char command[1024];
    snprintf(command, sizeof command, "%s >/dev/null 2>&1", test_env_require("SHOAL_TEST_PG_START"));
    int rc = system(command);
    (void)rc;
    return 0;
}

static char *create_article(const char *token, const char *title)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"article\":{\"title\":\"%s\",\"description\":\"stale\",\"body\":\"kept for errors\"}}", title);
    test_response response = call("POST", "/api/articles", token, NULL, body);
    if (response.status != 201)
        fail_msg("POST /api/articles: %d %s", response.status, response.body);
    json_t *root = parse(&response);
    char *slug = strdup(json_string_value(json_object_get(json_object_get(root, "article"), "slug")));
    json_decref(root);
    test_http_response_free(&response);
    return slug;
}

/* GET /api/articles/<slug>, anonymous: the status, and the title into out
 * on 200. */
static int read_title(const char *slug, char *out, size_t size)
{
    char path[256];
    snprintf(path, sizeof path, "/api/articles/%s", slug);
    test_response response = call("GET", path, NULL, NULL, NULL);
    int status = response.status;
    out[0] = '\0';
    if (status == 200) {
        json_t *root = parse(&response);
        snprintf(out, size, "%s", json_string_value(json_object_get(json_object_get(root, "article"), "title")));
        json_decref(root);
    } else if (status == 503) {
        test_expect_error(&response, 503, "store.unavailable");
        assert_string_equal(test_header(&response, "Retry-After"), "1");
    }
    test_http_response_free(&response);
    return status;
}

/* Gives the article's cached copy the lifetime it has past_ms after its
 * freshness ended. */
static void age_cached_article(const char *slug, int past_ms)
{
    cache_endpoint endpoint;
    char error[128];
    assert_int_equal(cache_url_parse(TEST_REDIS_URL(), &endpoint, error, sizeof error), 0);
    redisContext *redis = redisConnect(endpoint.host, endpoint.port);
    assert_non_null(redis);
    assert_int_equal(redis->err, 0);
    redisReply *version = redisCommand(redis, "GET shoal:cv:article");
    assert_non_null(version);
    assert_int_equal(version->type, REDIS_REPLY_STRING);
    char key[512];
    snprintf(key, sizeof key, "shoal:c2:article:%s:%s", version->str, slug);
    redisReply *value = redisCommand(redis, "GET %s", key);
    assert_non_null(value);
    if (value->type != REDIS_REPLY_STRING)
        fail_msg("%s is not cached", key);
    long long tail = atoll(value->str); /* "<tail>:<value>" */
    /* The default --cache-stale-if-error-ms, 5 minutes. */
    assert_int_equal(tail, 300000);
    redisReply *expired = redisCommand(redis, "PEXPIRE %s %lld", key, tail - past_ms);
    assert_non_null(expired);
    assert_int_equal(expired->integer, 1);
    freeReplyObject(expired);
    freeReplyObject(value);
    freeReplyObject(version);
    redisFree(redis);
}

static void an_article_read_before_the_outage_answers_from_its_stale_copy(void **state)
{
    (void)state;
    char email[160], username[96];
    names("stale", email, sizeof email, username, sizeof username);
    char *token = register_user(email, username, "pw");
    char read_title_text[64], never_title[64];
    snprintf(read_title_text, sizeof read_title_text, "read before %s", tag);
    snprintf(never_title, sizeof never_title, "never read %s", tag);
    char *read_slug = create_article(token, read_title_text);
    char *never_slug = create_article(token, never_title);

    char title[128];
    assert_int_equal(read_title(read_slug, title, sizeof title), 200);
    assert_string_equal(title, read_title_text);
    age_cached_article(read_slug, 1000);
    usleep((useconds_t)(300 * test_env_time_scale()) * 1000u); /* past the L1's 100 ms */

    assert_int_equal(system(test_env_require("SHOAL_TEST_PG_STOP")), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(read_title(read_slug, title, sizeof title), 200);
        assert_string_equal(title, read_title_text);
        assert_int_equal(read_title(never_slug, title, sizeof title), 503);
    }
    start_postgres(state);
    /* Back: the never-read article answers again once a worker reconnects. */
    int status = 0;
    for (int i = 0; i < 250 && status != 200; i++) {
        status = read_title(never_slug, title, sizeof title);
        if (status != 200)
            usleep(20 * 1000);
    }
    assert_int_equal(status, 200);
    assert_string_equal(title, never_title);
    free(read_slug);
    free(never_slug);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(an_article_read_before_the_outage_answers_from_its_stale_copy, start_postgres),
    };
    return cmocka_run_group_tests_name("integration.node.api.stale", tests, start_node, stop);
}
