/* tests/integration/cache/unavailable_test.c: every Redis use of cache/
 * against a real Redis that cannot serve now (issue 14): loading its data
 * set after a restart (LOADING), a replica (READONLY), a replica that lost
 * its primary (MASTERDOWN), one running a long script (BUSY). Each is the
 * same outcome as a refused connection: CACHE_UNAVAILABLE (the node's 503
 * with Retry-After), reads through the cache go to their fill, and the
 * call counts as an error; never CACHE_ERROR (a 500). Then the connection
 * itself: one found dead before a command is replaced at once, a command
 * that timed out is not sent again, and a connection waiting out its
 * reconnect interval tries at once when another one reached the server.
 * The servers are a spare Redis of the test's own (spare_redis.h). */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/aside.h>
#include <shoal/cache.h>

#include "cache_internal.h"
#include "idempotency.h"
#include "ratelimit.h"
#include "session.h"
#include "session_internal.h"
#include "spare_redis.h"
#include "test_env.h"

/* Large enough that loading the append-only file takes a second or more
 * (about 2 s on the 2-core development machine), so that the test can act
 * inside the window; filled inside Redis by one script in a few seconds. */
#define LOADING_KEYS 500000

static spare_redis spare;

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static int stop_spare(void **state)
{
    (void)state;
    spare_redis_stop(&spare);
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", spare.dir);
    if (spare.dir[0] != '\0' && system(command) != 0)
        fprintf(stderr, "could not remove %s\n", spare.dir);
    return 0;
}

static cache *open_cache(const char *url, int timeout_ms)
{
    char error[256];
    cache_config config = {.url = url, .timeout_ms = timeout_ms};
    cache *c = cache_open(&config, error, sizeof error);
    assert_non_null(c);
    return c;
}

/* A plain connection of the test's own. */
static redisContext *observer(int port, int timeout_s)
{
    struct timeval timeout = {timeout_s, 0};
    redisContext *context = redisConnectWithTimeout("127.0.0.1", port, timeout);
    assert_non_null(context);
    assert_int_equal(context->err, 0);
    assert_int_equal(redisSetTimeout(context, timeout), REDIS_OK);
    return context;
}

static bool info_has(redisContext *context, const char *section, const char *line)
{
    redisReply *reply = redisCommand(context, "INFO %s", section);
    bool found = reply != NULL && reply->type == REDIS_REPLY_STRING && strstr(reply->str, line) != NULL;
    freeReplyObject(reply);
    return found;
}

static long long redis_integer(redisContext *context, const char *command)
{
    redisReply *reply = redisCommand(context, command);
    assert_non_null(reply);
    if (reply->type != REDIS_REPLY_INTEGER)
        fail_msg("%s: reply type %d %s", command, reply->type, reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    long long value = reply->integer;
    freeReplyObject(reply);
    return value;
}

/* ---- every use of Redis ------------------------------------------------------------ */

static int fills;

static int fill(void *data, const char *key, const cache_aside_allocator *allocator, void **value, size_t *length)
{
    (void)data;
    (void)key;
    fills++;
    *value = allocator->alloc(allocator->data, 4);
    memcpy(*value, "row!", 4);
    *length = 4;
    return 0;
}

static void *heap_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

/* What each use of cache/ came to in one round. */
typedef struct uses {
    cache_status ping;
    cache_session_status session_create, session_lookup, session_revoke;
    cache_status rate_check, rate_peek;
    cache_status claim, release;
    cache_status invalidate;
    cache_status pipeline;
    cache_aside_source aside_source;
    int aside_rc, aside_fills;
    unsigned long errors; /* calls counted as errors in the round */
} uses;

/* Uses each way in turn, pause_ms apart: a server that makes the
 * connection drop after each (READONLY, MASTERDOWN) is then reached by
 * every one of them, not only by the first. */
static void use_everything(cache *c, int pause_ms, uses *out)
{
    memset(out, 0, sizeof *out);
    cache_stats before;
    cache_stats_read(c, &before);
    out->ping = cache_ping(c);
    usleep((useconds_t)pause_ms * 1000);

    char token[CACHE_SESSION_TOKEN_SIZE];
    out->session_create = cache_session_create(c, 42, 60, token);
    usleep((useconds_t)pause_ms * 1000);
    /* Well-formed, unknown: a served lookup says INVALID. */
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (unsigned char)(now_ms() + i * 7);
    char unknown[CACHE_SESSION_TOKEN_SIZE];
    cache_session_token_encode(raw, unknown);
    cache_session_info info;
    out->session_lookup = cache_session_lookup(c, unknown, 60, &info);
    usleep((useconds_t)pause_ms * 1000);
    out->session_revoke = cache_session_revoke(c, unknown);
    usleep((useconds_t)pause_ms * 1000);

    cache_ratelimit_limit limit = {.count = 10, .period_ms = 1000, .burst = 10};
    cache_ratelimit_result result;
    out->rate_check = cache_ratelimit_check(c, "rl:unavailable-test", 19, &limit, &result);
    usleep((useconds_t)pause_ms * 1000);
    out->rate_peek = cache_ratelimit_peek(c, "rl:unavailable-test", 19, &limit, &result);
    usleep((useconds_t)pause_ms * 1000);

    unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES];
    assert_int_equal(cache_idempotency_fingerprint("{}", 2, fingerprint), 0);
    char key[64];
    snprintf(key, sizeof key, "idem:unavailable-test-%llu", (unsigned long long)now_ms());
    cache_idempotency_state held;
    cache_idempotency_response stored;
    out->claim = cache_idempotency_claim(c, key, fingerprint, 60000, &held, &stored);
    if (out->claim == CACHE_OK)
        cache_idempotency_response_free(&stored);
    usleep((useconds_t)pause_ms * 1000);
    out->release = cache_idempotency_release(c, key, fingerprint);
    usleep((useconds_t)pause_ms * 1000);

    /* A family never used: its version is seeded, a write. */
    char family[48];
    snprintf(family, sizeof family, "u%d_%llu", (int)getpid(), (unsigned long long)now_ms());
    cache_aside_options options = {.ttl_ms = 60000};
    cache_aside_allocator allocator = {heap_alloc, NULL};
    cache_aside_value value = {0};
    int before_fills = fills;
    out->aside_rc = cache_aside_get(c, NULL, family, "k", &options, fill, NULL, &allocator, &value);
    out->aside_source = value.source;
    out->aside_fills = fills - before_fills;
    usleep((useconds_t)pause_ms * 1000);
    free(value.bytes);
    out->invalidate = cache_aside_invalidate_family(c, NULL, family, NULL);
    usleep((useconds_t)pause_ms * 1000);

    const char *set[] = {"SET", "unavailable-test", "1"};
    const size_t set_lengths[] = {3, 16, 1};
    const char **argvs[] = {set};
    const size_t *lengths[] = {set_lengths};
    int argcs[] = {3};
    redisReply *replies[1] = {NULL};
    out->pipeline = cache_pipeline(c, 1, argcs, (const char **const *)argvs, lengths, replies);
    freeReplyObject(replies[0]);

    cache_stats after;
    cache_stats_read(c, &after);
    out->errors = after.errors - before.errors;
}

/* Every use answered as if Redis could not be reached. */
static void expect_unavailable(const uses *got, const char *server)
{
    if (got->ping != CACHE_UNAVAILABLE || got->session_create != CACHE_SESSION_UNAVAILABLE ||
        got->session_lookup != CACHE_SESSION_UNAVAILABLE || got->session_revoke != CACHE_SESSION_UNAVAILABLE ||
        got->rate_check != CACHE_UNAVAILABLE || got->rate_peek != CACHE_UNAVAILABLE ||
        got->claim != CACHE_UNAVAILABLE || got->release != CACHE_UNAVAILABLE ||
        got->invalidate != CACHE_UNAVAILABLE || got->pipeline != CACHE_UNAVAILABLE)
        fail_msg("%s: ping %d, session create %d lookup %d revoke %d, rate check %d peek %d, claim %d release %d, "
                 "invalidate %d, pipeline %d (%d is unavailable, %d an error)",
                 server, got->ping, got->session_create, got->session_lookup, got->session_revoke, got->rate_check,
                 got->rate_peek, got->claim, got->release, got->invalidate, got->pipeline, CACHE_UNAVAILABLE,
                 CACHE_ERROR);
    /* A read through the cache is filled directly. */
    assert_int_equal(got->aside_rc, 0);
    assert_int_equal(got->aside_source, CACHE_ASIDE_BYPASSED);
    assert_int_equal(got->aside_fills, 1);
    /* Counted on /metrics as refused connections are: every call but the
     * ping (the monitor's probe, not a worker's call). */
    assert_true(got->errors >= 10);
}

static void expect_served(const uses *got)
{
    assert_int_equal(got->ping, CACHE_OK);
    assert_int_equal(got->session_create, CACHE_SESSION_OK);
    assert_int_equal(got->session_lookup, CACHE_SESSION_INVALID);
    assert_int_equal(got->session_revoke, CACHE_SESSION_OK); /* nothing to revoke is done */
    assert_int_equal(got->rate_check, CACHE_OK);
    assert_int_equal(got->rate_peek, CACHE_OK);
    assert_int_equal(got->claim, CACHE_OK);
    assert_int_equal(got->release, CACHE_OK);
    assert_int_equal(got->aside_rc, 0);
    assert_int_equal(got->aside_source, CACHE_ASIDE_FILLED);
    assert_int_equal(got->invalidate, CACHE_OK);
    assert_int_equal(got->pipeline, CACHE_OK);
    assert_int_equal(got->errors, 0);
}

/* ---- the servers ------------------------------------------------------------------------ */

static void a_loading_server_is_unavailable_to_every_use(void **state)
{
    (void)state;
    const char *args[] = {"--appendonly", "yes", "--aof-use-rdb-preamble", "no", NULL};
    spare_redis_start(&spare, args);
    redisContext *admin = observer(spare.port, 60);
    /* Filled without the AOF (each SET appended would take much longer),
     * then one rewrite writes it all as commands, which load slower than
     * an RDB preamble would. */
    freeReplyObject(redisCommand(admin, "CONFIG SET appendonly no"));
    freeReplyObject(redisCommand(admin, "SELECT 15"));
    redisReply *filled = redisCommand(admin, "EVAL %s 0 %d",
                                      "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'fill:' .. i, 'x') end "
                                      "return 1",
                                      LOADING_KEYS);
    assert_non_null(filled);
    assert_int_equal(filled->type, REDIS_REPLY_INTEGER);
    freeReplyObject(filled);
    freeReplyObject(redisCommand(admin, "CONFIG SET appendonly yes"));
    uint64_t deadline = now_ms() + 60000;
    while (!(info_has(admin, "persistence", "aof_enabled:1") &&
             info_has(admin, "persistence", "aof_rewrite_in_progress:0") &&
             info_has(admin, "persistence", "aof_rewrite_scheduled:0")) &&
           now_ms() < deadline)
        usleep(50 * 1000);
    assert_true(info_has(admin, "persistence", "aof_last_bgrewrite_status:ok"));
    redisFree(admin);

    cache *c = open_cache(spare.url, 2000);
    assert_int_equal(cache_ping(c), CACHE_OK);
    spare_redis_restart(&spare);

    /* Loading is over once, never again: a round between two probes that
     * both saw LOADING ran wholly inside the window. */
    int probes_loading = 0, rounds_inside = 0;
    char answer[256];
    spare_redis_ping(&spare, answer, sizeof answer);
    uint64_t window_start = now_ms();
    while (strncmp(answer, "LOADING", 7) == 0) {
        probes_loading++;
        uses round;
        use_everything(c, 0, &round);
        spare_redis_ping(&spare, answer, sizeof answer);
        if (strncmp(answer, "LOADING", 7) == 0) {
            expect_unavailable(&round, "loading");
            /* Not the wrong server: the connection stays for afterwards. */
            assert_true(cache_connected(c));
            rounds_inside++;
        }
    }
    printf("LOADING seen by %d probes over %llu ms; %d rounds of every use inside the window\n", probes_loading,
           (unsigned long long)(now_ms() - window_start), rounds_inside);
    assert_true(probes_loading >= 1);
    assert_true(rounds_inside >= 1);

    while (strcmp(answer, "PONG") != 0 && now_ms() < deadline) {
        usleep(20 * 1000);
        spare_redis_ping(&spare, answer, sizeof answer);
    }
    assert_string_equal(answer, "PONG");
    uses after;
    use_everything(c, 0, &after);
    expect_served(&after);
    /* It did load the data set from the file. */
    admin = observer(spare.port, 10);
    freeReplyObject(redisCommand(admin, "SELECT 15"));
    assert_int_equal(redis_integer(admin, "DBSIZE"), LOADING_KEYS);
    redisFree(admin);
    cache_close(c);
}

static void a_replica_without_its_primary_is_unavailable_to_every_use(void **state)
{
    (void)state;
    /* Port 1: a primary that is never there. */
    const char *args[] = {"--replicaof", "127.0.0.1", "1", "--replica-serve-stale-data", "no", NULL};
    spare_redis_start(&spare, args);
    char answer[256];
    spare_redis_ping(&spare, answer, sizeof answer);
    assert_int_equal(strncmp(answer, "MASTERDOWN", 10), 0);

    cache *c = open_cache(spare.url, 1000);
    uses round;
    use_everything(c, CACHE_RECONNECT_INTERVAL_MS + 20, &round);
    expect_unavailable(&round, "a replica without its primary");
    /* The wrong server: the connection is dropped, so that the next one
     * may reach the primary (a failover moves a name, not a connection). */
    assert_false(cache_connected(c));
    cache_close(c);
}

static void a_replica_serves_reads_and_refuses_writes_as_unavailable(void **state)
{
    (void)state;
    cache_endpoint fixture;
    char error[128];
    assert_int_equal(cache_url_parse(TEST_REDIS_URL(), &fixture, error, sizeof error), 0);
    char primary_port[16];
    snprintf(primary_port, sizeof primary_port, "%d", fixture.port);
    const char *args[] = {"--replicaof", "127.0.0.1", primary_port, NULL};
    spare_redis_start(&spare, args);
    /* A replica answers LOADING while it loads its primary's data set:
     * wait until it is in sync. */
    redisContext *admin = observer(spare.port, 10);
    uint64_t deadline = now_ms() + 20000;
    while (!(info_has(admin, "replication", "master_link_status:up") && info_has(admin, "persistence", "loading:0")) &&
           now_ms() < deadline)
        usleep(50 * 1000);
    assert_true(info_has(admin, "replication", "master_link_status:up"));
    redisFree(admin);

    cache *c = open_cache(spare.url, 1000);
    assert_int_equal(cache_ping(c), CACHE_OK);
    cache_session_info info;
    unsigned char raw[CACHE_SESSION_RAW_BYTES] = {1, 2, 3};
    char unknown[CACHE_SESSION_TOKEN_SIZE];
    cache_session_token_encode(raw, unknown);
    /* Reads are served... */
    assert_int_equal(cache_session_lookup(c, unknown, 60, &info), CACHE_SESSION_INVALID);
    cache_ratelimit_limit limit = {.count = 10, .period_ms = 1000, .burst = 10};
    cache_ratelimit_result result;
    assert_int_equal(cache_ratelimit_peek(c, "rl:replica-test", 15, &limit, &result), CACHE_OK);
    assert_true(cache_connected(c));
    /* ...writes are refused by the replica (READONLY), directly or from
     * inside a script, and the connection is dropped each time. */
    char token[CACHE_SESSION_TOKEN_SIZE];
    assert_int_equal(cache_session_create(c, 42, 60, token), CACHE_SESSION_UNAVAILABLE);
    assert_false(cache_connected(c));
    usleep((CACHE_RECONNECT_INTERVAL_MS + 20) * 1000);
    assert_int_equal(cache_ratelimit_check(c, "rl:replica-test", 15, &limit, &result), CACHE_UNAVAILABLE);
    assert_false(cache_connected(c));
    usleep((CACHE_RECONNECT_INTERVAL_MS + 20) * 1000);
    unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES] = {0};
    cache_idempotency_state held;
    cache_idempotency_response stored;
    assert_int_equal(cache_idempotency_claim(c, "idem:replica-test", fingerprint, 60000, &held, &stored),
                     CACHE_UNAVAILABLE);
    assert_false(cache_connected(c));
    cache_close(c);
}

/* Runs a script that never ends, on a connection of its own, until SCRIPT
 * KILL ends it. */
static void *run_forever(void *argument)
{
    (void)argument;
    redisContext *context = observer(spare.port, 30);
    freeReplyObject(redisCommand(context, "EVAL %s 0", "while true do end"));
    redisFree(context);
    return NULL;
}

static void a_busy_server_is_unavailable_to_every_use(void **state)
{
    (void)state;
    const char *args[] = {"--busy-reply-threshold", "100", NULL};
    spare_redis_start(&spare, args);
    cache *c = open_cache(spare.url, 2000);
    assert_int_equal(cache_ping(c), CACHE_OK);

    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, run_forever, NULL), 0);
    char answer[256] = "";
    uint64_t deadline = now_ms() + 10000;
    while (strncmp(answer, "BUSY", 4) != 0 && now_ms() < deadline) {
        usleep(20 * 1000);
        spare_redis_ping(&spare, answer, sizeof answer);
    }
    bool busy = strncmp(answer, "BUSY", 4) == 0;
    uses round;
    if (busy)
        use_everything(c, 0, &round);
    bool connected = cache_connected(c);
    /* Ended before anything is asserted: a server left busy would not stop. */
    redisContext *admin = observer(spare.port, 10);
    freeReplyObject(redisCommand(admin, "SCRIPT KILL"));
    redisFree(admin);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_true(busy);
    expect_unavailable(&round, "busy");
    assert_true(connected);
    /* The same connection serves again. */
    use_everything(c, 0, &round);
    expect_served(&round);
    assert_int_equal(cache_reconnect_count(c), 0);
    cache_close(c);
}

/* ---- the connection ------------------------------------------------------------------- */

static void a_connection_dead_before_sending_is_replaced_at_once(void **state)
{
    (void)state;
    spare_redis_start(&spare, NULL);
    cache *c = open_cache(spare.url, 1000);
    assert_int_equal(cache_ping(c), CACHE_OK);
    spare_redis_restart(&spare);
    /* A write that may not run twice still goes out on a new connection:
     * the old one was found closed before it was sent. */
    unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES] = {0};
    cache_idempotency_state held;
    cache_idempotency_response stored;
    assert_int_equal(cache_idempotency_claim(c, "idem:dead-before-send", fingerprint, 60000, &held, &stored),
                     CACHE_OK);
    assert_int_equal(held, CACHE_IDEMPOTENCY_CLAIMED);
    assert_int_equal(cache_reconnect_count(c), 1);
    cache_close(c);
}

static void a_command_that_timed_out_is_not_sent_again(void **state)
{
    (void)state;
    spare_redis_start(&spare, NULL);
    cache *c = open_cache(spare.url, 200);
    assert_int_equal(cache_ping(c), CACHE_OK);
    /* Hung: connections are still accepted (the kernel's backlog), nothing
     * is answered; what was sent runs when it goes on. */
    assert_int_equal(kill(spare.pid, SIGSTOP), 0);
    const char *argv[] = {"INCR", "sent-once"};
    const size_t lengths[] = {4, 9};
    redisReply *reply = NULL;
    cache_status status = cache_command_argv(c, 2, argv, lengths, &reply);
    assert_int_equal(kill(spare.pid, SIGCONT), 0);
    assert_int_equal(status, CACHE_UNAVAILABLE);
    assert_null(reply);
    redisContext *admin = observer(spare.port, 10);
    /* Whatever was queued has run once the server answers us. */
    freeReplyObject(redisCommand(admin, "PING"));
    usleep(100 * 1000);
    redisReply *count = redisCommand(admin, "GET sent-once");
    assert_non_null(count);
    assert_int_equal(count->type, REDIS_REPLY_STRING);
    assert_string_equal(count->str, "1");
    freeReplyObject(count);
    redisFree(admin);
    cache_close(c);
}

static void another_connection_reaching_the_server_ends_the_wait(void **state)
{
    (void)state;
    spare_redis_start(&spare, NULL);
    cache *waiting = open_cache(spare.url, 1000);
    assert_int_equal(cache_ping(waiting), CACHE_OK);
    spare_redis_stop(&spare);
    /* Refused: the attempt failed, and the next waits its interval. */
    uint64_t failed_at = now_ms();
    assert_int_equal(cache_ping(waiting), CACHE_UNAVAILABLE);
    spare_redis_restart(&spare);
    uint64_t back_after = now_ms() - failed_at;
    if (back_after + 50 < CACHE_RECONNECT_INTERVAL_MS)
        assert_int_equal(cache_ping(waiting), CACHE_UNAVAILABLE); /* nobody has said it is back */
    /* Another connection (a worker's, the monitor's) reaches it... */
    cache *other = open_cache(spare.url, 1000);
    assert_int_equal(cache_ping(other), CACHE_OK);
    /* ...and the waiting one tries at once instead of answering 503 for the
     * rest of its interval. */
    uint64_t since_failure = now_ms() - failed_at;
    assert_int_equal(cache_ping(waiting), CACHE_OK);
    printf("the waiting connection reconnected %llu ms after its failed attempt (its interval: %d ms)\n",
           (unsigned long long)since_failure, CACHE_RECONNECT_INTERVAL_MS);
    cache_close(other);
    cache_close(waiting);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(a_loading_server_is_unavailable_to_every_use, stop_spare),
        cmocka_unit_test_teardown(a_replica_without_its_primary_is_unavailable_to_every_use, stop_spare),
        cmocka_unit_test_teardown(a_replica_serves_reads_and_refuses_writes_as_unavailable, stop_spare),
        cmocka_unit_test_teardown(a_busy_server_is_unavailable_to_every_use, stop_spare),
        cmocka_unit_test_teardown(a_connection_dead_before_sending_is_replaced_at_once, stop_spare),
        cmocka_unit_test_teardown(a_command_that_timed_out_is_not_sent_again, stop_spare),
        cmocka_unit_test_teardown(another_connection_reaching_the_server_ends_the_wait, stop_spare),
    };
    return cmocka_run_group_tests_name("integration.cache.unavailable", tests, NULL, NULL);
}
