/* tests/unit/cache/keys_test.c: every Redis key name and the invalidation
 * channel, byte for byte, with the empty prefix (0.1's layout, which
 * shoal-node keeps so that a rolling upgrade keeps its users' sessions)
 * and with a service's ("hello:"); and the prefixes a connection refuses.
 * The 0.1 literals were read from the v0.1 code (the idempotency keys
 * printed by its cache_idempotency_key). No Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <shoal/aside.h>
#include <shoal/cache.h>

#include "idempotency.h"
#include "invalidation.h"
#include "ratelimit.h"
#include "session_internal.h"

static const char hash_half[] = "cb2f5160fc1f7e05a55ef49d340b48da";

/* BLAKE2b-256 of the bytes 00..1f; its first half names the key. */
static void session_key(const char *prefix, char key[CACHE_SESSION_KEY_SIZE])
{
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    for (int i = 0; i < CACHE_SESSION_RAW_BYTES; i++)
        raw[i] = (unsigned char)i;
    char verifier[CACHE_SESSION_VERIFIER_SIZE];
    assert_int_equal(cache_session_derive(prefix, raw, key, verifier), 0);
    assert_string_equal(verifier, "2e5a78099d53393351cd579dd42503d6");
}

static void session_keys(void **state)
{
    (void)state;
    char key[CACHE_SESSION_KEY_SIZE];
    session_key("", key);
    assert_string_equal(key, "session:cb2f5160fc1f7e05a55ef49d340b48da");
    session_key("hello:", key);
    assert_string_equal(key, "hello:session:cb2f5160fc1f7e05a55ef49d340b48da");

    char owner[CACHE_SESSION_USER_KEY_SIZE];
    cache_session_user_key("", 42, owner);
    assert_string_equal(owner, "session:user:42");
    cache_session_user_key("hello:", 9223372036854775807LL, owner);
    assert_string_equal(owner, "hello:session:user:9223372036854775807");

    /* The longest prefix still fits the stack buffers. */
    char longest[CACHE_KEY_PREFIX_MAX + 1];
    memset(longest, 'p', CACHE_KEY_PREFIX_MAX);
    longest[CACHE_KEY_PREFIX_MAX] = '\0';
    session_key(longest, key);
    assert_int_equal(strlen(key), CACHE_KEY_PREFIX_MAX + strlen("session:") + 32);
    assert_string_equal(key + CACHE_KEY_PREFIX_MAX + strlen("session:"), hash_half);
    cache_session_user_key(longest, 9223372036854775807LL, owner);
    assert_int_equal(strlen(owner), CACHE_KEY_PREFIX_MAX + strlen("session:user:") + 19);
}

static void idempotency_keys(void **state)
{
    (void)state;
    char key[CACHE_IDEMPOTENCY_KEY_SIZE];
    assert_int_equal(cache_idempotency_key("", NULL, "192.0.2.1", "POST", "/api/articles", "k-1", key), 0);
    assert_string_equal(key, "idem:efb5d654d6979e6f936f7b695fb732434c590bd95668b4d1837555044856926b");
    assert_int_equal(cache_idempotency_key("", "tok", "192.0.2.1", "POST", "/api/articles", "k-1", key), 0);
    assert_string_equal(key, "idem:0385286b330da0ccccf5a312fb69ac8e08692b98fb8c155c49b008c280d13c4e");
    assert_int_equal(cache_idempotency_key("hello:", "tok", "192.0.2.1", "POST", "/api/articles", "k-1", key), 0);
    assert_string_equal(key, "hello:idem:0385286b330da0ccccf5a312fb69ac8e08692b98fb8c155c49b008c280d13c4e");
}

static void rate_limit_keys(void **state)
{
    (void)state;
    /* Binary-safe: the key's bytes as given, NUL included, and no NUL after. */
    char key[CACHE_RATELIMIT_KEY_SIZE(6, 13, 9) + 1]; /* the longest below, and a guard byte */
    memset(key, '#', sizeof key);
    size_t length = cache_ratelimit_key("", "route", "0:a\0b.c.d", 9, key);
    assert_int_equal(length, 3 + 5 + 1 + 9);
    assert_memory_equal(key, "rl:route:0:a\0b.c.d", length);
    assert_int_equal(key[length], '#');
    length = cache_ratelimit_key("hello:", "route", "0:a\0b.c.d", 9, key);
    assert_int_equal(length, CACHE_RATELIMIT_KEY_SIZE(6, 5, 9));
    assert_memory_equal(key, "hello:rl:route:0:a\0b.c.d", length);
    memset(key, '#', sizeof key);
    length = cache_ratelimit_key("hello:", "login-failure", "192.0.2.1", 9, key);
    assert_int_equal(length, sizeof key - 1);
    assert_memory_equal(key, "hello:rl:login-failure:192.0.2.1", length);
    assert_int_equal(key[length], '#');
}

static void cache_aside_keys_and_the_channel(void **state)
{
    (void)state;
    cache_aside_keys names;
    cache_aside_family_keys(&names, "", "article");
    assert_string_equal(names.version, "shoal:cv:article");
    assert_string_equal(names.data_prefix, "shoal:c2:article:");
    assert_string_equal(names.lock_prefix, "shoal:cl:article:");
    cache_aside_family_keys(&names, "hello:", "article");
    assert_string_equal(names.version, "hello:shoal:cv:article");
    assert_string_equal(names.data_prefix, "hello:shoal:c2:article:");
    assert_string_equal(names.lock_prefix, "hello:shoal:cl:article:");

    char channel[CACHE_INVALIDATION_CHANNEL_SIZE];
    cache_invalidation_channel("", channel);
    assert_string_equal(channel, "shoal:invalidate");
    cache_invalidation_channel(NULL, channel);
    assert_string_equal(channel, "shoal:invalidate");
    cache_invalidation_channel("hello:", channel);
    assert_string_equal(channel, "hello:shoal:invalidate");
}

static void prefixes_are_checked(void **state)
{
    (void)state;
    char error[256];
    assert_int_equal(cache_key_prefix_check(NULL, error, sizeof error), 0);
    assert_int_equal(cache_key_prefix_check("", error, sizeof error), 0);
    assert_int_equal(cache_key_prefix_check("hello:", error, sizeof error), 0);
    assert_int_equal(cache_key_prefix_check("A-z_0.9:", error, sizeof error), 0);
    char longest[CACHE_KEY_PREFIX_MAX + 2];
    memset(longest, 'p', sizeof longest - 1);
    longest[CACHE_KEY_PREFIX_MAX] = '\0';
    assert_int_equal(cache_key_prefix_check(longest, error, sizeof error), 0);
    longest[CACHE_KEY_PREFIX_MAX] = 'p';
    longest[CACHE_KEY_PREFIX_MAX + 1] = '\0';
    assert_int_equal(cache_key_prefix_check(longest, error, sizeof error), -1);
    assert_non_null(strstr(error, "longer than 40 bytes"));
    static const char *const refused[] = {"a b", "a*", "a?", "[a]", "a\"", "a'", "a\\", "a\n", "é", "a{b}", "@redis"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        error[0] = '\0';
        assert_int_equal(cache_key_prefix_check(refused[i], error, sizeof error), -1);
        assert_non_null(strstr(error, "has a character other than"));
    }

    /* A connection does not open with a bad prefix, nor a subscriber. */
    cache_config config = {.url = "redis://127.0.0.1:1/0", .timeout_ms = 100, .key_prefix = "a b"};
    assert_null(cache_open(&config, error, sizeof error));
    assert_non_null(strstr(error, "key prefix"));
    config = (cache_config){.url = "redis://127.0.0.1:1/0", .key_prefix = "ok:", .session_prefix = "*"};
    assert_null(cache_open(&config, error, sizeof error));
    assert_null(cache_invalidation_start(&(cache_config){.url = "redis://127.0.0.1:1/0", .key_prefix = "a*"}, NULL,
                                         error, sizeof error));

    /* Sessions take the key prefix unless told otherwise. */
    config = (cache_config){.url = "redis://127.0.0.1:1/0", .key_prefix = "hello:"};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    assert_string_equal(cache_key_prefix(c), "hello:");
    assert_string_equal(cache_session_prefix(c), "hello:");
    cache_close(c);
    config.session_prefix = "";
    c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    assert_string_equal(cache_key_prefix(c), "hello:");
    assert_string_equal(cache_session_prefix(c), "");
    cache_close(c);
    c = cache_open(&(cache_config){.url = "redis://127.0.0.1:1/0"}, error, sizeof error);
    assert_non_null(c);
    assert_string_equal(cache_key_prefix(c), "");
    assert_string_equal(cache_session_prefix(c), "");
    cache_close(c);
    assert_string_equal(cache_key_prefix(NULL), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(session_keys),
        cmocka_unit_test(idempotency_keys),
        cmocka_unit_test(rate_limit_keys),
        cmocka_unit_test(cache_aside_keys_and_the_channel),
        cmocka_unit_test(prefixes_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
