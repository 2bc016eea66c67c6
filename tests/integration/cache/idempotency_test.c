/* tests/integration/cache/idempotency_test.c: cache/idempotency.c against a
 * real Redis. */
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/cache.h>

#include "idempotency.h"
#include "test_env.h"

static cache *open_cache(void)
{
    char error[256];
    cache_config config = {.url = TEST_REDIS_URL(), .timeout_ms = 1000};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    return c;
}

static void fresh_key(char out[CACHE_IDEMPOTENCY_KEY_SIZE])
{
    char client_key[40];
    unsigned long long nonce = 0;
    assert_int_equal(getrandom(&nonce, sizeof nonce, 0), (ssize_t)sizeof nonce);
    snprintf(client_key, sizeof client_key, "key-%llx", nonce);
    assert_int_equal(cache_idempotency_key("", NULL, "192.0.2.1", "POST", "/things", client_key, out), 0);
}

static void fingerprint(const char *body, unsigned char out[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES])
{
    assert_int_equal(cache_idempotency_fingerprint(body, strlen(body), out), 0);
}

static cache_idempotency_state claim(cache *c, const char *key, const unsigned char *print,
                                     cache_idempotency_response *stored)
{
    cache_idempotency_state state;
    assert_int_equal(cache_idempotency_claim(c, key, print, 60000, &state, stored), CACHE_OK);
    return state;
}

static void a_key_is_claimed_once_then_replayed(void **state)
{
    (void)state;
    cache *first = open_cache();
    cache *second = open_cache(); /* another node */
    char key[CACHE_IDEMPOTENCY_KEY_SIZE];
    fresh_key(key);
    unsigned char print[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES];
    fingerprint("{\"a\":1}", print);
    cache_idempotency_response stored;

    assert_int_equal(claim(first, key, print, &stored), CACHE_IDEMPOTENCY_CLAIMED);
    assert_int_equal(claim(second, key, print, &stored), CACHE_IDEMPOTENCY_RUNNING);

    /* A body with a NUL and a newline survives. */
    static const char body[] = "{\"id\":7}\n\0tail";
    cache_idempotency_response response = {
        .status = 201,
        .headers = "Content-Type: application/json\nLocation: /things/7\n",
        .body = (char *)body, .body_length = sizeof body - 1};
    bool kept = false;
    assert_int_equal(cache_idempotency_store(first, key, print, &response, 60000, &kept), CACHE_OK);
    assert_true(kept);

    assert_int_equal(claim(second, key, print, &stored), CACHE_IDEMPOTENCY_DONE);
    assert_int_equal(stored.status, 201);
    assert_string_equal(stored.headers, "Content-Type: application/json\nLocation: /things/7\n");
    assert_int_equal(stored.body_length, sizeof body - 1);
    assert_memory_equal(stored.body, body, sizeof body - 1);
    cache_idempotency_response_free(&stored);
    cache_close(first);
    cache_close(second);
}

static void a_different_body_is_a_mismatch(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[CACHE_IDEMPOTENCY_KEY_SIZE];
    fresh_key(key);
    unsigned char one[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES], other[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES];
    fingerprint("{\"a\":1}", one);
    fingerprint("{\"a\":2}", other);
    cache_idempotency_response stored;
    assert_int_equal(claim(c, key, one, &stored), CACHE_IDEMPOTENCY_CLAIMED);
    assert_int_equal(claim(c, key, other, &stored), CACHE_IDEMPOTENCY_MISMATCH);
    cache_idempotency_response response = {.status = 200, .headers = "", .body = "", .body_length = 0};
    bool kept = false;
    assert_int_equal(cache_idempotency_store(c, key, one, &response, 60000, &kept), CACHE_OK);
    assert_true(kept);
    assert_int_equal(claim(c, key, other, &stored), CACHE_IDEMPOTENCY_MISMATCH);
    assert_int_equal(claim(c, key, one, &stored), CACHE_IDEMPOTENCY_DONE);
    assert_string_equal(stored.headers, "");
    assert_int_equal(stored.body_length, 0);
    cache_idempotency_response_free(&stored);
    cache_close(c);
}

static void a_released_claim_can_be_claimed_again(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[CACHE_IDEMPOTENCY_KEY_SIZE];
    fresh_key(key);
    unsigned char print[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES];
    fingerprint("x", print);
    cache_idempotency_response stored;
    assert_int_equal(claim(c, key, print, &stored), CACHE_IDEMPOTENCY_CLAIMED);
    assert_int_equal(cache_idempotency_release(c, key, print), CACHE_OK);
    assert_int_equal(claim(c, key, print, &stored), CACHE_IDEMPOTENCY_CLAIMED);
    cache_close(c);
}

static void an_expired_claim_is_not_overwritten_by_its_late_owner(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[CACHE_IDEMPOTENCY_KEY_SIZE];
    fresh_key(key);
    unsigned char print[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES], other[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES];
    fingerprint("x", print);
    fingerprint("y", other);
    cache_idempotency_state state_now;
    cache_idempotency_response stored;
    assert_int_equal(cache_idempotency_claim(c, key, print, 50, &state_now, &stored), CACHE_OK);
    assert_int_equal(state_now, CACHE_IDEMPOTENCY_CLAIMED);
    usleep(120 * 1000);
    /* The marker expired; another request (another body) took the key. */
    assert_int_equal(claim(c, key, other, &stored), CACHE_IDEMPOTENCY_CLAIMED);
    cache_idempotency_response response = {.status = 201, .headers = "Content-Type: text/plain\n", .body = "late", .body_length = 4};
    bool kept = true;
    assert_int_equal(cache_idempotency_store(c, key, print, &response, 60000, &kept), CACHE_OK);
    assert_false(kept);
    assert_int_equal(cache_idempotency_release(c, key, print), CACHE_OK);
    assert_int_equal(claim(c, key, other, &stored), CACHE_IDEMPOTENCY_RUNNING);
    cache_close(c);
}

static void header_blocks_that_would_not_read_back_are_refused(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[CACHE_IDEMPOTENCY_KEY_SIZE];
    fresh_key(key);
    unsigned char print[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES];
    fingerprint("x", print);
    cache_idempotency_response stored;
    assert_int_equal(claim(c, key, print, &stored), CACHE_IDEMPOTENCY_CLAIMED);
    /* An empty line would end the headers early; a missing newline would
     * join the last header to the body; CR could split a replayed answer. */
    static char *const bad[] = {"Location: /a\n\nX: y\n", "Location: /a", "\n", "Location: /a\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cache_idempotency_response response = {.status = 200, .headers = bad[i], .body = "ok", .body_length = 2};
        bool kept = true;
        assert_int_equal(cache_idempotency_store(c, key, print, &response, 60000, &kept), CACHE_ERROR);
        assert_false(kept);
    }
    /* Nothing was written: the claim still runs. */
    assert_int_equal(claim(c, key, print, &stored), CACHE_IDEMPOTENCY_RUNNING);
    assert_int_equal(cache_idempotency_release(c, key, print), CACHE_OK);
    cache_close(c);
}

static void a_flushed_script_cache_falls_back_to_eval(void **state)
{
    (void)state;
    cache *c = open_cache();
    char key[CACHE_IDEMPOTENCY_KEY_SIZE];
    fresh_key(key);
    unsigned char print[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES];
    fingerprint("x", print);
    cache_idempotency_response stored;
    assert_int_equal(claim(c, key, print, &stored), CACHE_IDEMPOTENCY_CLAIMED);
    assert_int_equal(cache_idempotency_release(c, key, print), CACHE_OK); /* loads the script */

    cache_endpoint endpoint;
    char error[128];
    assert_int_equal(cache_url_parse(TEST_REDIS_URL(), &endpoint, error, sizeof error), 0);
    redisContext *admin = redisConnect(endpoint.host, endpoint.port);
    assert_non_null(admin);
    assert_int_equal(admin->err, 0);
    redisReply *reply = redisCommand(admin, "SCRIPT FLUSH");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(admin);

    assert_int_equal(claim(c, key, print, &stored), CACHE_IDEMPOTENCY_CLAIMED);
    cache_idempotency_response response = {.status = 200, .headers = "Content-Type: text/plain\n", .body = "ok", .body_length = 2};
    bool kept = false;
    assert_int_equal(cache_idempotency_store(c, key, print, &response, 60000, &kept), CACHE_OK);
    assert_true(kept);
    cache_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_key_is_claimed_once_then_replayed),
        cmocka_unit_test(a_different_body_is_a_mismatch),
        cmocka_unit_test(a_released_claim_can_be_claimed_again),
        cmocka_unit_test(an_expired_claim_is_not_overwritten_by_its_late_owner),
        cmocka_unit_test(header_blocks_that_would_not_read_back_are_refused),
        cmocka_unit_test(a_flushed_script_cache_falls_back_to_eval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
