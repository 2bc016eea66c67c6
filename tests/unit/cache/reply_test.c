/* tests/unit/cache/reply_test.c: cache_reply_classify in cache/cache.c, the
 * one place that decides which Redis replies mean "not available now". The
 * texts are Redis 7's own (the integration test cache_unavailable_test
 * gets them from a real server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cache_internal.h"

static redisReply error_reply(const char *text)
{
    return (redisReply){.type = REDIS_REPLY_ERROR, .str = (char *)text, .len = strlen(text)};
}

static void expect(const char *text, cache_reply_kind kind)
{
    redisReply reply = error_reply(text);
    cache_reply_kind got = cache_reply_classify(&reply);
    if (got != kind)
        fail_msg("'%s' is %d, expected %d", text, got, kind);
}

static void replies_that_say_not_now(void **state)
{
    (void)state;
    expect("LOADING Redis is loading the dataset in memory", CACHE_REPLY_NOT_NOW);
    expect("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
           CACHE_REPLY_NOT_NOW);
    expect("TRYAGAIN Multiple keys request during rehashing of slot", CACHE_REPLY_NOT_NOW);
    expect("CLUSTERDOWN The cluster is down", CACHE_REPLY_NOT_NOW);
    expect("NOREPLICAS Not enough good replicas to write.", CACHE_REPLY_NOT_NOW);
    expect("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
           CACHE_REPLY_NOT_NOW);
    expect("OOM command not allowed when used memory > 'maxmemory'.", CACHE_REPLY_NOT_NOW);
    /* The code alone, as a proxy may shorten it. */
    expect("LOADING", CACHE_REPLY_NOT_NOW);
}

static void replies_that_say_not_here(void **state)
{
    (void)state;
    expect("READONLY You can't write against a read only replica.", CACHE_REPLY_NOT_HERE);
    /* From inside a script, the code still comes first. */
    expect("READONLY You can't write against a read only replica. script: 857ac3ec, on @user_script:1.",
           CACHE_REPLY_NOT_HERE);
    expect("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
           CACHE_REPLY_NOT_HERE);
    expect("ERR max number of clients reached", CACHE_REPLY_NOT_HERE);
}

static void other_errors_are_the_commands_own(void **state)
{
    (void)state;
    expect("NOSCRIPT No matching script. Please use EVAL.", CACHE_REPLY_NOSCRIPT);
    expect("ERR unknown command 'NOPE', with args beginning with: ", CACHE_REPLY_ERROR);
    expect("WRONGTYPE Operation against a key holding the wrong kind of value", CACHE_REPLY_ERROR);
    expect("NOAUTH Authentication required.", CACHE_REPLY_ERROR);
    expect("WRONGPASS invalid username-password pair or user is disabled.", CACHE_REPLY_ERROR);
    expect("NOPERM this user has no permissions to run the 'eval' command", CACHE_REPLY_ERROR);
    /* Whole words only: a code that starts like one of ours is not ours. */
    expect("BUSYKEY Target key name already exists.", CACHE_REPLY_ERROR);
    expect("LOADINGX", CACHE_REPLY_ERROR);
    expect("READ", CACHE_REPLY_ERROR);
    expect("ERR max number", CACHE_REPLY_ERROR);
    expect("", CACHE_REPLY_ERROR);
    expect("ERR Error running script (call to f_x): @user_script:1: LOADING", CACHE_REPLY_ERROR);
}

static void replies_that_are_not_errors(void **state)
{
    (void)state;
    redisReply status = {.type = REDIS_REPLY_STATUS, .str = "LOADING", .len = 7};
    redisReply string = {.type = REDIS_REPLY_STRING, .str = "READONLY", .len = 8};
    redisReply nil = {.type = REDIS_REPLY_NIL};
    redisReply integer = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    assert_int_equal(cache_reply_classify(&status), CACHE_REPLY_VALUE);
    assert_int_equal(cache_reply_classify(&string), CACHE_REPLY_VALUE);
    assert_int_equal(cache_reply_classify(&nil), CACHE_REPLY_VALUE);
    assert_int_equal(cache_reply_classify(&integer), CACHE_REPLY_VALUE);
    /* No reply at all is no server. */
    assert_int_equal(cache_reply_classify(NULL), CACHE_REPLY_NOT_NOW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replies_that_say_not_now),
        cmocka_unit_test(replies_that_say_not_here),
        cmocka_unit_test(other_errors_are_the_commands_own),
        cmocka_unit_test(replies_that_are_not_errors),
    };
    return cmocka_run_group_tests_name("unit.cache.reply", tests, NULL, NULL);
}
