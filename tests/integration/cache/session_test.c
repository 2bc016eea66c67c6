/* tests/integration/cache/session_test.c: cache/session.c against the real
 * Redis of the "tiers" fixture, which some tests stop and start again
 * through the harness (tests/harness/tiers redis-stop / redis-start). */
#include <hiredis/hiredis.h>
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

#include <shoal/cache.h>

#include "session.h"
#include "session_internal.h"
#include "test_env.h"

#define TTL 1000

/* User ids of this run, apart from those of earlier runs on the same data. */
static int64_t user_base;

static redisContext *observer(void)
{
    cache_endpoint endpoint;
    char error[128];
    assert_int_equal(cache_url_parse(TEST_REDIS_URL(), &endpoint, error, sizeof error), 0);
    struct timeval timeout = {2, 0};
    redisContext *context = redisConnectWithTimeout(endpoint.host, endpoint.port, timeout);
    assert_non_null(context);
    assert_int_equal(context->err, 0);
    return context;
}

static long long integer_command(redisContext *context, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *reply = redisvCommand(context, format, args);
    va_end(args);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    long long value = reply->integer;
    freeReplyObject(reply);
    return value;
}

static cache *open_cache(void)
{
    char error[256];
    cache_config config = {.url = TEST_REDIS_URL(), .timeout_ms = 500};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    return c;
}

/* The Redis key a token's session lives under. */
static void key_of(const char *token, char key[CACHE_SESSION_KEY_SIZE])
{
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    char verifier[CACHE_SESSION_VERIFIER_SIZE];
    assert_int_equal(cache_session_token_decode(token, raw), 0);
    assert_int_equal(cache_session_derive("", raw, key, verifier), 0);
}

static void harness(const char *command)
{
    char line[1024];
    const char *port = strrchr(TEST_REDIS_URL(), ':') + 1;
    snprintf(line, sizeof line, "'%s' %s '%s' %d", test_env_require("SHOAL_TEST_TIERS"), command,
             test_env_require("SHOAL_TEST_TIERS_STATE"), atoi(port));
    assert_int_equal(system(line), 0);
}

/* Whatever a test did, the fixture's Redis runs afterwards. */
static int redis_running(void **state)
{
    (void)state;
    harness("redis-start");
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void a_created_session_is_found_with_its_user(void **state)
{
    (void)state;
    cache *c = open_cache();
    char token[CACHE_SESSION_TOKEN_SIZE];
    long long before = (long long)time(NULL);
    assert_int_equal(cache_session_create(c, user_base + 1, TTL, token), CACHE_SESSION_OK);
    assert_int_equal(strlen(token), CACHE_SESSION_TOKEN_LENGTH);
    assert_true(cache_session_token_well_formed(token));

    cache_session_info info;
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_OK);
    assert_int_equal(info.user_id, user_base + 1);
    assert_true(info.created >= before && info.created <= (long long)time(NULL));

    /* Each session gets its own token. */
    char other[CACHE_SESSION_TOKEN_SIZE];
    assert_int_equal(cache_session_create(c, user_base + 1, TTL, other), CACHE_SESSION_OK);
    assert_string_not_equal(token, other);

    char key[CACHE_SESSION_KEY_SIZE];
    key_of(token, key);
    redisContext *admin = observer();
    long long ttl = integer_command(admin, "TTL %s", key);
    assert_true(ttl > TTL - 5 && ttl <= TTL);
    assert_int_equal(integer_command(admin, "SISMEMBER session:user:%lld %s", (long long)(user_base + 1), key), 1);
    assert_true(integer_command(admin, "TTL session:user:%lld", (long long)(user_base + 1)) > TTL - 5);
    redisFree(admin);
    cache_close(c);
}

static void the_ttl_slides_on_use_but_not_on_every_use(void **state)
{
    (void)state;
    cache *c = open_cache();
    char token[CACHE_SESSION_TOKEN_SIZE];
    int64_t user = user_base + 2;
    assert_int_equal(cache_session_create(c, user, TTL, token), CACHE_SESSION_OK);
    char key[CACHE_SESSION_KEY_SIZE];
    key_of(token, key);
    redisContext *admin = observer();

    /* Used a while ago: the lookup slides both the session and its user's set. */
    integer_command(admin, "EXPIRE %s 100", key);
    integer_command(admin, "EXPIRE session:user:%lld 50", (long long)user);
    cache_session_info info;
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_OK);
    assert_true(integer_command(admin, "TTL %s", key) > TTL - 5);
    assert_true(integer_command(admin, "TTL session:user:%lld", (long long)user) > TTL - 5);

    /* Used seconds ago: no write, the TTL stays where it was. */
    integer_command(admin, "EXPIRE %s %d", key, TTL - 20);
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_OK);
    assert_true(integer_command(admin, "TTL %s", key) <= TTL - 20);
    redisFree(admin);
    cache_close(c);
}

static void an_expired_session_is_invalid(void **state)
{
    (void)state;
    cache *c = open_cache();
    char token[CACHE_SESSION_TOKEN_SIZE];
    assert_int_equal(cache_session_create(c, user_base + 3, TTL, token), CACHE_SESSION_OK);
    char key[CACHE_SESSION_KEY_SIZE];
    key_of(token, key);
    redisContext *admin = observer();
    integer_command(admin, "PEXPIRE %s 1", key);
    redisFree(admin);
    usleep(50 * 1000);
    cache_session_info info;
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_INVALID);
    assert_int_equal(info.user_id, 0);
    cache_close(c);
}

static void a_revoked_session_is_invalid_and_revoking_twice_is_fine(void **state)
{
    (void)state;
    cache *c = open_cache();
    int64_t user = user_base + 4;
    char token[CACHE_SESSION_TOKEN_SIZE], kept[CACHE_SESSION_TOKEN_SIZE];
    assert_int_equal(cache_session_create(c, user, TTL, token), CACHE_SESSION_OK);
    assert_int_equal(cache_session_create(c, user, TTL, kept), CACHE_SESSION_OK);
    assert_int_equal(cache_session_revoke(c, token), CACHE_SESSION_OK);
    cache_session_info info;
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_INVALID);
    assert_int_equal(cache_session_revoke(c, token), CACHE_SESSION_OK);
    assert_int_equal(cache_session_lookup(c, kept, TTL, &info), CACHE_SESSION_OK);

    char key[CACHE_SESSION_KEY_SIZE];
    key_of(token, key);
    redisContext *admin = observer();
    assert_int_equal(integer_command(admin, "EXISTS %s", key), 0);
    assert_int_equal(integer_command(admin, "SISMEMBER session:user:%lld %s", (long long)user, key), 0);
    assert_int_equal(integer_command(admin, "SCARD session:user:%lld", (long long)user), 1);
    redisFree(admin);
    cache_close(c);
}

static void revoking_a_user_ends_all_of_theirs_and_nobody_elses(void **state)
{
    (void)state;
    cache *c = open_cache();
    int64_t user = user_base + 5, bystander = user_base + 6;
    char tokens[3][CACHE_SESSION_TOKEN_SIZE], other[CACHE_SESSION_TOKEN_SIZE];
    for (int i = 0; i < 3; i++)
        assert_int_equal(cache_session_create(c, user, TTL, tokens[i]), CACHE_SESSION_OK);
    assert_int_equal(cache_session_create(c, bystander, TTL, other), CACHE_SESSION_OK);

    long long count = -1;
    assert_int_equal(cache_session_revoke_user(c, user, &count), CACHE_SESSION_OK);
    assert_int_equal(count, 3);
    cache_session_info info;
    for (int i = 0; i < 3; i++)
        assert_int_equal(cache_session_lookup(c, tokens[i], TTL, &info), CACHE_SESSION_INVALID);
    assert_int_equal(cache_session_lookup(c, other, TTL, &info), CACHE_SESSION_OK);
    assert_int_equal(info.user_id, bystander);

    /* Nothing left of the user, and a new login works as before. */
    redisContext *admin = observer();
    assert_int_equal(integer_command(admin, "EXISTS session:user:%lld", (long long)user), 0);
    redisFree(admin);
    assert_int_equal(cache_session_revoke_user(c, user, &count), CACHE_SESSION_OK);
    assert_int_equal(count, 0);
    assert_int_equal(cache_session_create(c, user, TTL, tokens[0]), CACHE_SESSION_OK);
    assert_int_equal(cache_session_lookup(c, tokens[0], TTL, &info), CACHE_SESSION_OK);
    cache_close(c);
}

static void expired_sessions_leave_the_users_set_at_the_next_login(void **state)
{
    (void)state;
    cache *c = open_cache();
    int64_t user = user_base + 7;
    char token[CACHE_SESSION_TOKEN_SIZE];
    assert_int_equal(cache_session_create(c, user, TTL, token), CACHE_SESSION_OK);
    char key[CACHE_SESSION_KEY_SIZE];
    key_of(token, key);
    redisContext *admin = observer();
    integer_command(admin, "DEL %s", key); /* as if it had expired */
    assert_int_equal(cache_session_create(c, user, TTL, token), CACHE_SESSION_OK);
    assert_int_equal(integer_command(admin, "SCARD session:user:%lld", (long long)user), 1);
    redisFree(admin);
    cache_close(c);
}

static bool contains(const char *haystack, size_t length, const void *needle, size_t needle_length)
{
    return haystack != NULL && memmem(haystack, length, needle, needle_length) != NULL;
}

static void no_token_is_stored_in_clear(void **state)
{
    (void)state;
    cache *c = open_cache();
    char token[CACHE_SESSION_TOKEN_SIZE];
    assert_int_equal(cache_session_create(c, user_base + 8, TTL, token), CACHE_SESSION_OK);
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    assert_int_equal(cache_session_token_decode(token, raw), 0);

    /* Every key and every value in the database: neither the token's text
     * nor its bytes, nor a long part of the text, anywhere. */
    redisContext *admin = observer();
    char cursor[32] = "0";
    int keys_seen = 0;
    do {
        redisReply *page = redisCommand(admin, "SCAN %s COUNT 1000", cursor);
        assert_non_null(page);
        assert_int_equal(page->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof cursor, "%s", page->element[0]->str);
        redisReply *keys = page->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *name = keys->element[i];
            keys_seen++;
            assert_false(contains(name->str, name->len, token, 16));
            assert_false(contains(name->str, name->len, raw, 16));
            redisReply *dump = redisCommand(admin, "DUMP %b", name->str, name->len);
            assert_non_null(dump);
            if (dump->type == REDIS_REPLY_STRING) {
                assert_false(contains(dump->str, dump->len, token, 16));
                assert_false(contains(dump->str, dump->len, raw, 16));
            }
            freeReplyObject(dump);
            redisReply *hash = redisCommand(admin, "TYPE %b", name->str, name->len);
            assert_non_null(hash);
            if (strcmp(hash->str, "hash") == 0) {
                redisReply *fields = redisCommand(admin, "HGETALL %b", name->str, name->len);
                assert_non_null(fields);
                for (size_t f = 0; f < fields->elements; f++) {
                    assert_false(contains(fields->element[f]->str, fields->element[f]->len, token, 16));
                    assert_false(contains(fields->element[f]->str, fields->element[f]->len, raw, 16));
                }
                freeReplyObject(fields);
            }
            freeReplyObject(hash);
        }
        freeReplyObject(page);
    } while (strcmp(cursor, "0") != 0);
    assert_true(keys_seen >= 2);
    redisFree(admin);
    cache_close(c);
}

static void the_right_key_with_a_wrong_verifier_is_invalid(void **state)
{
    (void)state;
    cache *c = open_cache();
    char token[CACHE_SESSION_TOKEN_SIZE];
    assert_int_equal(cache_session_create(c, user_base + 9, TTL, token), CACHE_SESSION_OK);
    char key[CACHE_SESSION_KEY_SIZE];
    key_of(token, key);
    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "HSET %s verifier %s", key, "00000000000000000000000000000000");
    assert_non_null(reply);
    freeReplyObject(reply);
    cache_session_info info;
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_INVALID);
    assert_int_equal(info.user_id, 0);
    /* A truncated verifier is not a prefix match either. */
    reply = redisCommand(admin, "HSET %s verifier %s", key, "");
    assert_non_null(reply);
    freeReplyObject(reply);
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_INVALID);
    /* And garbage where the user id belongs is the server's fault, not the client's. */
    reply = redisCommand(admin, "HSET %s user %s", key, "x1");
    assert_non_null(reply);
    freeReplyObject(reply);
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_ERROR);
    redisFree(admin);

    /* A well-formed token nobody made. */
    char unknown[CACHE_SESSION_TOKEN_SIZE];
    memcpy(unknown, token, sizeof unknown);
    unknown[0] = unknown[0] == 'A' ? 'B' : 'A';
    assert_int_equal(cache_session_lookup(c, unknown, TTL, &info), CACHE_SESSION_INVALID);
    cache_close(c);
}

static void scripts_are_sent_again_after_redis_forgets_them(void **state)
{
    (void)state;
    cache *c = open_cache();
    char token[CACHE_SESSION_TOKEN_SIZE];
    cache_session_info info;
    /* Known by SHA-1 now: the next calls go out as EVALSHA. */
    assert_int_equal(cache_session_create(c, user_base + 10, TTL, token), CACHE_SESSION_OK);
    redisContext *admin = observer();
    redisReply *reply = redisCommand(admin, "SCRIPT FLUSH");
    assert_non_null(reply);
    freeReplyObject(reply);
    /* NOSCRIPT, then EVAL, for each script in turn. */
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_OK);
    assert_int_equal(info.user_id, user_base + 10);
    assert_int_equal(cache_session_create(c, user_base + 10, TTL, token), CACHE_SESSION_OK);
    assert_int_equal(cache_session_revoke(c, token), CACHE_SESSION_OK);
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_INVALID);
    /* EVAL cached them again. */
    reply = redisCommand(admin, "SCRIPT FLUSH");
    assert_non_null(reply);
    freeReplyObject(reply);
    long long revoked = 0;
    assert_int_equal(cache_session_revoke_user(c, user_base + 10, &revoked), CACHE_SESSION_OK);
    assert_int_equal(revoked, 1);
    redisFree(admin);
    cache_close(c);
}

static cache_session_status lookup_within(cache *c, const char *token, cache_session_info *info, int ms)
{
    cache_session_status status = CACHE_SESSION_UNAVAILABLE;
    for (int waited = 0; waited < ms; waited += 100) {
        status = cache_session_lookup(c, token, TTL, info);
        if (status != CACHE_SESSION_UNAVAILABLE)
            break;
        usleep(100 * 1000);
    }
    return status;
}

static void sessions_survive_a_redis_restart_and_an_outage_is_unavailable(void **state)
{
    (void)state;
    cache *c = open_cache();
    int64_t user = user_base + 11;
    char token[CACHE_SESSION_TOKEN_SIZE];
    assert_int_equal(cache_session_create(c, user, TTL, token), CACHE_SESSION_OK);

    harness("redis-stop");
    cache_session_info info;
    char another[CACHE_SESSION_TOKEN_SIZE];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_UNAVAILABLE);
        assert_int_equal(cache_session_create(c, user, TTL, another), CACHE_SESSION_UNAVAILABLE);
        assert_string_equal(another, "");
        assert_int_equal(cache_session_revoke(c, token), CACHE_SESSION_UNAVAILABLE);
        assert_int_equal(cache_session_revoke_user(c, user, NULL), CACHE_SESSION_UNAVAILABLE);
    }

    /* The same data folder, with its append-only file: nothing the node
     * held in memory is needed to validate the token again. */
    harness("redis-start");
    assert_int_equal(lookup_within(c, token, &info, 3000), CACHE_SESSION_OK);
    assert_int_equal(info.user_id, user);
    /* And a fresh connection (another node) too, with the scripts that the
     * restart forgot loaded again on the way. */
    cache *fresh = open_cache();
    assert_int_equal(cache_session_lookup(fresh, token, TTL, &info), CACHE_SESSION_OK);
    assert_int_equal(cache_session_revoke_user(fresh, user, NULL), CACHE_SESSION_OK);
    assert_int_equal(cache_session_lookup(c, token, TTL, &info), CACHE_SESSION_INVALID);
    cache_close(fresh);
    cache_close(c);
}

static void an_unreachable_redis_is_unavailable_for_every_operation(void **state)
{
    (void)state;
    char error[256];
    cache_config config = {.url = "redis://127.0.0.1:1/0", .timeout_ms = 300};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    char token[CACHE_SESSION_TOKEN_SIZE];
    cache_session_info info;
    assert_int_equal(cache_session_create(c, 1, TTL, token), CACHE_SESSION_UNAVAILABLE);
    assert_int_equal(cache_session_lookup(c, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", TTL, &info),
                     CACHE_SESSION_UNAVAILABLE);
    assert_int_equal(cache_session_lookup(c, "short", TTL, &info), CACHE_SESSION_INVALID);
    assert_int_equal(cache_session_revoke_user(c, 1, NULL), CACHE_SESSION_UNAVAILABLE);
    cache_close(c);
}

int main(void)
{
    assert_int_equal(cache_session_init(), 0);
    user_base = (int64_t)time(NULL) * 1000;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_created_session_is_found_with_its_user),
        cmocka_unit_test(the_ttl_slides_on_use_but_not_on_every_use),
        cmocka_unit_test(an_expired_session_is_invalid),
        cmocka_unit_test(a_revoked_session_is_invalid_and_revoking_twice_is_fine),
        cmocka_unit_test(revoking_a_user_ends_all_of_theirs_and_nobody_elses),
        cmocka_unit_test(expired_sessions_leave_the_users_set_at_the_next_login),
        cmocka_unit_test(no_token_is_stored_in_clear),
        cmocka_unit_test(the_right_key_with_a_wrong_verifier_is_invalid),
        cmocka_unit_test(scripts_are_sent_again_after_redis_forgets_them),
        cmocka_unit_test_teardown(sessions_survive_a_redis_restart_and_an_outage_is_unavailable, redis_running),
        cmocka_unit_test(an_unreachable_redis_is_unavailable_for_every_operation),
    };
    return cmocka_run_group_tests_name("integration.cache.session", tests, NULL, NULL);
}
