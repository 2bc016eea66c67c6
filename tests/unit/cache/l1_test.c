/* tests/unit/cache/l1_test.c: the in-process L1, with an injected clock. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <shoal/l1.h>

static uint64_t fake_now;

static uint64_t fake_clock(void *data)
{
    (void)data;
    return fake_now;
}

static void *heap_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static cache_l1 *new_l1(size_t entries, size_t bytes, int ttl_ms, int shards)
{
    cache_l1_config config = {.max_entries = entries, .max_bytes = bytes, .ttl_ms = ttl_ms, .shards = shards,
                              .clock = fake_clock};
    cache_l1 *l1 = cache_l1_new(&config);
    assert_non_null(l1);
    return l1;
}

static bool put(cache_l1 *l1, const char *family, uint64_t version, const char *key, const char *value)
{
    return cache_l1_put(l1, family, version, key, value, strlen(value), cache_l1_sequence(l1));
}

/* The value under key, as a string, or NULL on a miss. The caller frees. */
static char *get(cache_l1 *l1, const char *family, const char *key)
{
    void *value = NULL;
    size_t length = 0;
    if (!cache_l1_get(l1, family, key, heap_alloc, NULL, &value, &length))
        return NULL;
    char *text = malloc(length + 1);
    memcpy(text, value, length);
    text[length] = '\0';
    free(value);
    return text;
}

static void expect(cache_l1 *l1, const char *family, const char *key, const char *wanted)
{
    char *got = get(l1, family, key);
    if (wanted == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, wanted);
    free(got);
}

static void a_stored_value_is_copied_out(void **state)
{
    (void)state;
    fake_now = 1000;
    cache_l1 *l1 = new_l1(10, 0, 1000, 1);
    expect(l1, "article", "a", NULL);
    assert_true(put(l1, "article", 7, "a", "alpha"));
    expect(l1, "article", "a", "alpha");
    expect(l1, "tags", "a", NULL); /* another family is another key */
    assert_true(put(l1, "article", 7, "a", "again"));
    expect(l1, "article", "a", "again");
    cache_l1_stats stats;
    cache_l1_get_stats(l1, &stats);
    assert_int_equal(stats.entries, 1);
    assert_int_equal(stats.hits, 2);
    cache_l1_free(l1);
}

static void the_least_recently_used_goes_first(void **state)
{
    (void)state;
    fake_now = 1000;
    cache_l1 *l1 = new_l1(3, 0, 1000, 1);
    assert_true(put(l1, "f", 1, "a", "1"));
    assert_true(put(l1, "f", 1, "b", "2"));
    assert_true(put(l1, "f", 1, "c", "3"));
    expect(l1, "f", "a", "1"); /* a is now the newest; b the oldest */
    assert_true(put(l1, "f", 1, "d", "4"));
    expect(l1, "f", "b", NULL);
    expect(l1, "f", "a", "1");
    expect(l1, "f", "c", "3");
    expect(l1, "f", "d", "4");
    cache_l1_stats stats;
    cache_l1_get_stats(l1, &stats);
    assert_int_equal(stats.entries, 3);
    assert_int_equal(stats.evictions, 1);
    cache_l1_free(l1);
}

static void entries_and_bytes_are_bounded(void **state)
{
    (void)state;
    fake_now = 1000;
    cache_l1 *l1 = new_l1(64, 0, 1000, 4);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(l1, "f", 1, key, "value");
    }
    cache_l1_stats stats;
    cache_l1_get_stats(l1, &stats);
    assert_true(stats.entries <= 64);
    assert_true(stats.entries >= 60);
    cache_l1_free(l1);

    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    l1 = new_l1(1000, 4096, 1000, 1);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_true(put(l1, "f", 1, key, big));
    }
    cache_l1_get_stats(l1, &stats);
    assert_true(stats.bytes <= 4096);
    assert_true(stats.entries >= 3);
    expect(l1, "f", "k99", big);
    /* A value larger than the whole bound is refused, not stored alone. */
    char huge[5000];
    memset(huge, 'y', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_false(put(l1, "f", 1, "huge", huge));
    expect(l1, "f", "k99", big);
    cache_l1_free(l1);
}

static void entries_expire_after_the_ttl(void **state)
{
    (void)state;
    fake_now = 5000;
    cache_l1 *l1 = new_l1(10, 0, 200, 1);
    assert_true(put(l1, "f", 1, "a", "1"));
    fake_now += 199;
    expect(l1, "f", "a", "1");
    fake_now += 1;
    expect(l1, "f", "a", NULL);
    cache_l1_stats stats;
    cache_l1_get_stats(l1, &stats);
    assert_int_equal(stats.expirations, 1);
    assert_int_equal(stats.entries, 0);
    cache_l1_free(l1);
}

/* The copy for errors (cache_l1_get_stale), as a string, or NULL. */
static char *get_stale(cache_l1 *l1, const char *family, const char *key, int max_past_ms)
{
    void *value = NULL;
    size_t length = 0;
    if (!cache_l1_get_stale(l1, family, key, max_past_ms, heap_alloc, NULL, &value, &length))
        return NULL;
    char *text = malloc(length + 1);
    memcpy(text, value, length);
    text[length] = '\0';
    free(value);
    return text;
}

static void expect_stale(cache_l1 *l1, const char *family, const char *key, int max_past_ms, const char *wanted)
{
    char *got = get_stale(l1, family, key, max_past_ms);
    if (wanted == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, wanted);
    free(got);
}

static cache_l1 *new_keeping_l1(int ttl_ms, int stale_if_error_ms)
{
    cache_l1_config config = {.max_entries = 10, .ttl_ms = ttl_ms, .stale_if_error_ms = stale_if_error_ms,
                              .shards = 1, .clock = fake_clock};
    cache_l1 *l1 = cache_l1_new(&config);
    assert_non_null(l1);
    return l1;
}

/* Past its TTL an entry is no hit, but it is kept stale_if_error_ms longer
 * for the copy a failed fill may answer, bounded by the caller's window
 * too. */
static void past_the_ttl_an_entry_is_kept_for_errors_only(void **state)
{
    (void)state;
    fake_now = 5000;
    cache_l1 *l1 = new_keeping_l1(200, 1000);
    assert_true(put(l1, "f", 1, "a", "1"));
    expect_stale(l1, "f", "a", 1000, "1"); /* fresh is good for errors too */
    fake_now += 200;
    expect(l1, "f", "a", NULL);
    expect_stale(l1, "f", "a", 1000, "1");
    fake_now += 499; /* 499 ms past the TTL */
    expect_stale(l1, "f", "a", 500, "1");
    expect_stale(l1, "f", "a", 499, NULL); /* the caller's window */
    expect_stale(l1, "f", "a", 0, NULL);
    expect(l1, "f", "a", NULL);
    cache_l1_stats stats;
    cache_l1_get_stats(l1, &stats);
    assert_int_equal(stats.entries, 1);
    assert_int_equal(stats.expirations, 0);
    assert_int_equal(stats.hits, 0); /* get_stale counts neither */
    assert_int_equal(stats.misses, 2);
    /* The L1's own keep bounds a longer window. */
    fake_now += 500; /* 999 ms past */
    expect_stale(l1, "f", "a", 60000, "1");
    fake_now += 1; /* 1000 */
    expect_stale(l1, "f", "a", 60000, NULL);
    cache_l1_get_stats(l1, &stats);
    assert_int_equal(stats.entries, 0);
    assert_int_equal(stats.expirations, 1);
    /* A new value replaces a kept one and is fresh again. */
    assert_true(put(l1, "f", 1, "b", "old"));
    fake_now += 300;
    expect(l1, "f", "b", NULL);
    assert_true(put(l1, "f", 1, "b", "new"));
    expect(l1, "f", "b", "new");
    cache_l1_free(l1);
}

/* Kept copies follow the rules of fresh ones: a newer version hides them,
 * a drop or a flush removes them, a suspended L1 gives none. */
static void a_kept_copy_obeys_versions_drops_flushes_and_suspension(void **state)
{
    (void)state;
    fake_now = 1000;
    cache_l1 *l1 = new_keeping_l1(100, 10000);
    assert_true(put(l1, "f", 1, "a", "1"));
    assert_true(put(l1, "f", 1, "b", "2"));
    assert_true(put(l1, "g", 1, "c", "3"));
    fake_now += 500;
    expect_stale(l1, "f", "a", 10000, "1");
    cache_l1_suspend(l1, true);
    expect_stale(l1, "f", "a", 10000, NULL);
    cache_l1_suspend(l1, false);
    cache_l1_drop(l1, "f", "a");
    expect_stale(l1, "f", "a", 10000, NULL);
    expect_stale(l1, "f", "b", 10000, "2");
    cache_l1_learn_version(l1, "f", 2);
    expect_stale(l1, "f", "b", 10000, NULL);
    expect_stale(l1, "g", "c", 10000, "3");
    cache_l1_flush(l1);
    expect_stale(l1, "g", "c", 10000, NULL);
    cache_l1_free(l1);
    /* Without a keep (the default) nothing outlives its TTL. */
    cache_l1 *plain = new_l1(10, 0, 100, 1);
    assert_true(put(plain, "f", 1, "a", "1"));
    fake_now += 100;
    expect_stale(plain, "f", "a", 10000, NULL);
    cache_l1_free(plain);
    expect_stale(NULL, "f", "a", 10000, NULL);
}

static void a_newer_family_version_hides_older_entries(void **state)
{
    (void)state;
    fake_now = 1000;
    cache_l1 *l1 = new_l1(10, 0, 1000, 2);
    assert_int_equal(cache_l1_family_version(l1, "article"), 0);
    assert_true(put(l1, "article", 5, "a", "old"));
    assert_true(put(l1, "world", 3, "1", "w"));
    assert_int_equal(cache_l1_family_version(l1, "article"), 5);
    cache_l1_learn_version(l1, "article", 6);
    expect(l1, "article", "a", NULL);
    expect(l1, "world", "1", "w"); /* other families are untouched */
    /* Versions never go down, and a value read under an old one is refused. */
    cache_l1_learn_version(l1, "article", 4);
    assert_int_equal(cache_l1_family_version(l1, "article"), 6);
    assert_false(put(l1, "article", 5, "a", "old"));
    assert_true(put(l1, "article", 6, "a", "new"));
    expect(l1, "article", "a", "new");
    /* A version unknown to the L1 (never learned) never hits. */
    expect(l1, "unknown", "a", NULL);
    /* Invalid family names are never stored. */
    assert_false(put(l1, "bad family", 1, "a", "x"));
    cache_l1_free(l1);
}

static void drops_and_flushes_refuse_stores_that_raced_them(void **state)
{
    (void)state;
    fake_now = 1000;
    cache_l1 *l1 = new_l1(10, 0, 1000, 2);
    assert_true(put(l1, "f", 1, "a", "1"));
    assert_true(put(l1, "f", 1, "b", "2"));
    uint64_t before = cache_l1_sequence(l1);
    cache_l1_drop(l1, "f", "a");
    expect(l1, "f", "a", NULL);
    expect(l1, "f", "b", "2");
    /* Read from Redis before the drop, stored after it: refused. */
    assert_false(cache_l1_put(l1, "f", 1, "a", "1", 1, before));
    assert_true(put(l1, "f", 1, "a", "1"));

    before = cache_l1_sequence(l1);
    cache_l1_flush(l1);
    expect(l1, "f", "b", NULL);
    assert_int_equal(cache_l1_family_version(l1, "f"), 0);
    assert_false(cache_l1_put(l1, "f", 1, "b", "2", 1, before));
    assert_int_equal(cache_l1_family_version(l1, "f"), 0); /* not relearned by the refused store */
    cache_l1_stats stats;
    cache_l1_get_stats(l1, &stats);
    assert_int_equal(stats.entries, 0);
    assert_int_equal(stats.flushes, 1);
    cache_l1_free(l1);
}

static void a_suspended_l1_misses_and_refuses(void **state)
{
    (void)state;
    fake_now = 1000;
    cache_l1 *l1 = new_l1(10, 0, 1000, 1);
    assert_true(put(l1, "f", 1, "a", "1"));
    cache_l1_suspend(l1, true);
    expect(l1, "f", "a", NULL);
    assert_false(put(l1, "f", 1, "b", "2"));
    cache_l1_suspend(l1, false);
    expect(l1, "f", "a", "1");
    cache_l1_free(l1);
}

static void switched_off_it_stores_nothing(void **state)
{
    (void)state;
    cache_l1 *l1 = new_l1(0, 0, 1000, 0);
    assert_false(cache_l1_enabled(l1));
    assert_false(put(l1, "f", 1, "a", "1"));
    expect(l1, "f", "a", NULL);
    cache_l1_drop(l1, "f", "a");
    cache_l1_flush(l1);
    cache_l1_free(l1);
    /* NULL is an L1 that is off. */
    assert_false(cache_l1_enabled(NULL));
    assert_false(put(NULL, "f", 1, "a", "1"));
    expect(NULL, "f", "a", NULL);
    cache_l1_learn_version(NULL, "f", 3);
    cache_l1_drop(NULL, "f", "a");
    cache_l1_flush(NULL);
    cache_l1_free(NULL);
}

/* ---- concurrency ----------------------------------------------------------------------- */

typedef struct worker_args {
    cache_l1 *l1;
    int id;
    long wrong; /* values that did not match their key */
} worker_args;

static void *hammer(void *argument)
{
    worker_args *args = argument;
    char key[32], value[64];
    for (int i = 0; i < 20000; i++) {
        int k = (i * 7 + args->id * 13) % 300;
        snprintf(key, sizeof key, "k%d", k);
        snprintf(value, sizeof value, "value of k%d", k);
        switch (i % 4) {
        case 0:
            cache_l1_put(args->l1, "f", 1 + (uint64_t)(i / 5000), key, value, strlen(value) + 1,
                         cache_l1_sequence(args->l1));
            break;
        case 3:
            if (i % 400 == 3)
                cache_l1_drop(args->l1, "f", key);
            if (i % 5000 == 3)
                cache_l1_learn_version(args->l1, "f", 1 + (uint64_t)(i / 5000));
            break;
        default: {
            void *got = NULL;
            size_t length = 0;
            if (cache_l1_get(args->l1, "f", key, heap_alloc, NULL, &got, &length)) {
                if (length != strlen(value) + 1 || memcmp(got, value, length) != 0)
                    args->wrong++;
                free(got);
            }
        }
        }
    }
    return NULL;
}

static void many_threads_share_it(void **state)
{
    (void)state;
    cache_l1_config config = {.max_entries = 128, .max_bytes = 64 * 1024, .ttl_ms = 10000, .shards = 8};
    cache_l1 *l1 = cache_l1_new(&config);
    assert_non_null(l1);
    enum { THREADS = 8 };
    pthread_t threads[THREADS];
    worker_args args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_args){.l1 = l1, .id = t};
        assert_int_equal(pthread_create(&threads[t], NULL, hammer, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(args[t].wrong, 0);
    }
    cache_l1_stats stats;
    cache_l1_get_stats(l1, &stats);
    assert_true(stats.entries <= 128);
    assert_true(stats.bytes <= 64 * 1024);
    assert_true(stats.hits > 0);
    cache_l1_free(l1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_stored_value_is_copied_out),
        cmocka_unit_test(the_least_recently_used_goes_first),
        cmocka_unit_test(entries_and_bytes_are_bounded),
        cmocka_unit_test(entries_expire_after_the_ttl),
        cmocka_unit_test(past_the_ttl_an_entry_is_kept_for_errors_only),
        cmocka_unit_test(a_kept_copy_obeys_versions_drops_flushes_and_suspension),
        cmocka_unit_test(a_newer_family_version_hides_older_entries),
        cmocka_unit_test(drops_and_flushes_refuse_stores_that_raced_them),
        cmocka_unit_test(a_suspended_l1_misses_and_refuses),
        cmocka_unit_test(switched_off_it_stores_nothing),
        cmocka_unit_test(many_threads_share_it),
    };
    return cmocka_run_group_tests_name("unit.cache.l1", tests, NULL, NULL);
}
