/* tests/unit/cache/invalidation_test.c: the invalidation messages, and the
 * TTL jitter of cache-aside (no servers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <shoal/aside.h>

#include "invalidation.h"

static void family_messages_round_trip(void **state)
{
    (void)state;
    char text[128];
    int length = cache_invalidation_encode_family(text, sizeof text, "article", 1700000000123456ULL);
    assert_int_equal(length, (int)strlen("F 1700000000123456 article"));
    assert_string_equal(text, "F 1700000000123456 article");
    cache_invalidation_message message;
    assert_int_equal(cache_invalidation_decode(text, (size_t)length, &message), 0);
    assert_int_equal(message.kind, CACHE_INVALIDATION_FAMILY);
    assert_string_equal(message.family, "article");
    assert_true(message.version == 1700000000123456ULL);
}

static void key_messages_keep_spaces_in_the_key(void **state)
{
    (void)state;
    char text[128];
    int length = cache_invalidation_encode_key(text, sizeof text, "tags", "a key with spaces");
    assert_true(length > 0);
    cache_invalidation_message message;
    assert_int_equal(cache_invalidation_decode(text, (size_t)length, &message), 0);
    assert_int_equal(message.kind, CACHE_INVALIDATION_KEY);
    assert_string_equal(message.family, "tags");
    assert_string_equal(message.key, "a key with spaces");
}

static void what_is_not_ours_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "F", "F ", "F 12", "F 0 article", "F x article", "F 12 bad family", "F 99999999999999999999 a",
        "K article", "K  key", "K bad/family key", "X 1 article", "F12 article",
    };
    cache_invalidation_message message;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cache_invalidation_decode(bad[i], strlen(bad[i]), &message), -1);
    assert_int_equal(cache_invalidation_decode("F 1 a\0b", 7, &message), -1);
    char long_key[CACHE_INVALIDATION_MAX_KEY + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    char text[1024];
    assert_int_equal(cache_invalidation_encode_key(text, sizeof text, "f", long_key), -1);
    assert_int_equal(cache_invalidation_encode_family(text, sizeof text, "with space", 1), -1);
    assert_int_equal(cache_invalidation_encode_family(text, 8, "article", 123456), -1);
}

static void *heap_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void applying_a_message_updates_the_l1(void **state)
{
    (void)state;
    cache_l1_config config = {.max_entries = 10, .ttl_ms = 60000};
    cache_l1 *l1 = cache_l1_new(&config);
    assert_true(cache_l1_put(l1, "article", 3, "a", "x", 1, cache_l1_sequence(l1)));
    assert_true(cache_l1_put(l1, "tags", 3, "t", "y", 1, cache_l1_sequence(l1)));
    cache_invalidation_message message;
    assert_int_equal(cache_invalidation_decode("F 4 article", 11, &message), 0);
    cache_invalidation_apply(l1, &message);
    assert_int_equal(cache_l1_family_version(l1, "article"), 4);
    assert_int_equal(cache_invalidation_decode("K tags t", 8, &message), 0);
    cache_invalidation_apply(l1, &message);
    void *value = NULL;
    size_t length = 0;
    assert_false(cache_l1_get(l1, "article", "a", heap_alloc, NULL, &value, &length));
    assert_false(cache_l1_get(l1, "tags", "t", heap_alloc, NULL, &value, &length));
    cache_l1_free(l1);
}

static void jitter_stays_within_ten_percent(void **state)
{
    (void)state;
    int64_t lowest = INT64_MAX, highest = 0;
    uint64_t random = 88172645463325252ULL;
    for (int i = 0; i < 100000; i++) {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        int64_t ttl = cache_aside_jitter_ms(10000, random);
        assert_true(ttl >= 9000 && ttl <= 11000);
        if (ttl < lowest)
            lowest = ttl;
        if (ttl > highest)
            highest = ttl;
    }
    /* Spread over the whole range, not stuck in one spot. */
    assert_true(lowest < 9050);
    assert_true(highest > 10950);
    assert_int_equal(cache_aside_jitter_ms(10000, 0), 9000);
    assert_int_equal(cache_aside_jitter_ms(10000, 2000), 11000);
    assert_int_equal(cache_aside_jitter_ms(5, 12345), 5); /* below 10 ms there is no room */
    assert_int_equal(cache_aside_jitter_ms(0, 1), 1);
    assert_int_equal(cache_aside_jitter_ms(-5, 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(family_messages_round_trip),
        cmocka_unit_test(key_messages_keep_spaces_in_the_key),
        cmocka_unit_test(what_is_not_ours_is_refused),
        cmocka_unit_test(applying_a_message_updates_the_l1),
        cmocka_unit_test(jitter_stays_within_ten_percent),
    };
    return cmocka_run_group_tests_name("unit.cache.invalidation", tests, NULL, NULL);
}
