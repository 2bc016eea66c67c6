/* tests/integration/cache/async_test.c: cache/async.c against a real Redis,
 * driven by a small poll() loop of the test's own: many requests' commands
 * pipelined and flushed once a turn, a deadline passing before its reply,
 * a Redis killed and started again mid-pipeline, an error reply that says
 * "not now", and a server that accepts and never answers.
 *
 * The restart uses a spare Redis of the test's own (spare_redis.h); the
 * rest the fixture's shared one, with keys of its own.
 *
 * SHOAL_TEST_CACHE_ASYNC_MEASURE=N (unset in CI) adds a measurement, not a
 * check: the spare Redis' CPU per GET (its INFO cpu) over N GETs, pipelined 100 a turn on
 * one connection against one blocking cache call at a time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/cache.h>

#include "async.h"
#include "spare_redis.h"
#include "http_client.h"
#include "test_env.h"

static spare_redis spare;

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static int scaled(int ms)
{
    return (int)(ms * test_env_time_scale());
}

static int tear_down(void **state)
{
    (void)state;
    spare_redis_stop(&spare);
    return 0;
}

/* ---- the loop ------------------------------------------------------------------------ */

/* One turn as the engine's loop makes it: wait for the socket (or the
 * timer), read or write, run the timer, then the end of the turn: flush
 * what was queued. */
static void turn(cache_async *a, int wait_ms)
{
    int timer = cache_async_timer_ms(a);
    int timeout = timer >= 0 && timer < wait_ms ? timer : wait_ms;
    int fd = cache_async_fd(a);
    if (fd >= 0) {
        struct pollfd watch = {.fd = fd, .events = POLLIN | (cache_async_wants_write(a) ? POLLOUT : 0)};
        int ready = poll(&watch, 1, timeout);
        assert_true(ready >= 0 || errno == EINTR);
        if (ready > 0 && (watch.revents & (POLLIN | POLLERR | POLLHUP)) != 0)
            cache_async_on_readable(a);
        if (ready > 0 && (watch.revents & POLLOUT) != 0 && cache_async_fd(a) == fd)
            cache_async_on_writable(a);
    } else if (timeout > 0) {
        usleep((useconds_t)timeout * 1000);
    }
    cache_async_on_timer(a);
    cache_async_flush(a);
}

/* Turns until *count reaches target; fails the test after bound_ms (times
 * the time scale): nothing may hang. Returns the turns it took. */
static int turn_until(cache_async *a, const int *count, int target, int bound_ms)
{
    uint64_t give_up = now_ms() + (uint64_t)scaled(bound_ms);
    int turns = 0;
    while (*count < target) {
        if (now_ms() > give_up)
            fail_msg("%d of %d answers after %d ms (%d turns)", *count, target, bound_ms, turns);
        turn(a, 50);
        turns++;
    }
    return turns;
}

static void turn_until_ready(cache_async *a)
{
    uint64_t give_up = now_ms() + (uint64_t)scaled(5000);
    while (!cache_async_ready(a)) {
        if (now_ms() > give_up)
            fail_msg("no connection to Redis");
        turn(a, 50);
    }
}

static cache_async *open_async(const char *url, int timeout_ms)
{
    cache_config config = {.url = url, .timeout_ms = timeout_ms};
    char error[256] = "";
    cache_async *a = cache_async_open(&config, error, sizeof error);
    if (a == NULL)
        fail_msg("cache_async_open: %s", error);
    return a;
}

/* ---- what the callbacks record ------------------------------------------------------------ */

typedef struct answer {
    int calls;
    cache_status status;
    int type; /* the reply's, -1 without one */
    long long integer;
    char text[64];
    int order; /* when it was answered, counting from 1 */
} answer;

static int answered; /* answers since the last reset, every request's */

static void record(void *cookie, cache_status status, const redisReply *reply)
{
    answer *a = cookie;
    a->calls++;
    a->status = status;
    a->order = ++answered;
    a->type = reply != NULL ? reply->type : -1;
    if (status == CACHE_UNAVAILABLE)
        assert_null(reply);
    else
        assert_non_null(reply);
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        a->integer = reply->integer;
    if (reply != NULL && reply->str != NULL)
        snprintf(a->text, sizeof a->text, "%.*s", (int)reply->len, reply->str);
}

/* Queues a command given as words (no spaces inside one). */
static void queue(cache_async *async, answer *a, const char *format, ...)
{
    char line[256];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    const char *argv[8];
    size_t lengths[8];
    int argc = 0;
    for (char *word = strtok(line, " "); word != NULL && argc < 8; word = strtok(NULL, " ")) {
        argv[argc] = word;
        lengths[argc] = strlen(word);
        argc++;
    }
    memset(a, 0, sizeof *a);
    assert_int_equal(cache_async_command(async, argc, argv, lengths, record, a), CACHE_OK);
}

/* The kernel's count of this process' write() calls (/proc/self/io). */
static unsigned long long write_syscalls(void)
{
    FILE *file = fopen("/proc/self/io", "r");
    assert_non_null(file);
    char line[128];
    unsigned long long count = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, file) != NULL)
        found = sscanf(line, "syscw: %llu", &count) == 1;
    fclose(file);
    assert_true(found);
    return count;
}

/* ---- many requests, one pipeline ------------------------------------------------------------ */

#define REQUESTS 100
#define PER_REQUEST 5
#define TURNS 5

/* 500 commands from 100 requests over 5 turns: each request's answers come
 * in its order and carry its own values, and each turn's commands go out
 * in one write. */
static void many_requests_share_one_pipeline(void **state)
{
    (void)state;
    cache_async *async = open_async(TEST_REDIS_URL(), scaled(2000));
    turn_until_ready(async);
    static answer cleared[REQUESTS];
    answered = 0;
    for (int r = 0; r < REQUESTS; r++)
        queue(async, &cleared[r], "DEL shoal-async-test:value:%d shoal-async-test:count:%d", r, r);
    turn_until(async, &answered, REQUESTS, 5000);

    cache_async_stats before;
    cache_async_stats_read(async, &before);
    static answer answers[REQUESTS][PER_REQUEST];
    answered = 0;
    int per_turn = REQUESTS / TURNS;
    unsigned long long kernel_writes = 0;
    for (int t = 0; t < TURNS; t++) {
        for (int r = t * per_turn; r < (t + 1) * per_turn; r++) {
            queue(async, &answers[r][0], "SET shoal-async-test:value:%d value-%d", r, r);
            queue(async, &answers[r][1], "INCR shoal-async-test:count:%d", r);
            queue(async, &answers[r][2], "INCR shoal-async-test:count:%d", r);
            queue(async, &answers[r][3], "GET shoal-async-test:value:%d", r);
            queue(async, &answers[r][4], "INCRBY shoal-async-test:count:%d 10", r);
        }
        /* The end of this turn: its 100 commands in one write. */
        unsigned long long writes_before = write_syscalls();
        cache_async_flush(async);
        kernel_writes += write_syscalls() - writes_before;
    }
    int turns = turn_until(async, &answered, REQUESTS * PER_REQUEST, 5000);
    cache_async_stats after;
    cache_async_stats_read(async, &after);
    printf("500 commands: %lu flushes, %lu writes (the kernel counted %llu), answered over %d more turns\n",
           after.flushes - before.flushes, after.writes - before.writes, kernel_writes, turns);
    assert_int_equal(after.flushes - before.flushes, TURNS);
    assert_int_equal(after.sent - before.sent, REQUESTS * PER_REQUEST);
    assert_int_equal(after.writes - before.writes, TURNS);
    assert_int_equal(kernel_writes, TURNS);

    for (int r = 0; r < REQUESTS; r++) {
        char value[32];
        snprintf(value, sizeof value, "value-%d", r);
        for (int i = 0; i < PER_REQUEST; i++) {
            assert_int_equal(answers[r][i].calls, 1);
            assert_int_equal(answers[r][i].status, CACHE_OK);
            if (i > 0)
                assert_true(answers[r][i].order > answers[r][i - 1].order);
        }
        assert_string_equal(answers[r][0].text, "OK");
        assert_int_equal(answers[r][1].integer, 1);
        assert_int_equal(answers[r][2].integer, 2);
        assert_string_equal(answers[r][3].text, value);
        assert_int_equal(answers[r][4].integer, 12);
    }
    assert_int_equal(cache_async_waiting(async), 0);
    cache_async_close(async);
}

/* ---- deadlines --------------------------------------------------------------------------------- */

/* A BLPOP that waits past the deadline is answered at it; its reply, which
 * comes later, is dropped and the GET sent after it gets its own. */
static void a_deadline_answers_before_the_reply(void **state)
{
    (void)state;
    int timeout_ms = scaled(300);
    cache_async *async = open_async(TEST_REDIS_URL(), timeout_ms);
    turn_until_ready(async);
    answer set, popped, got;
    answered = 0;
    queue(async, &set, "SET shoal-async-test:deadline own-value");
    queue(async, &popped, "DEL shoal-async-test:list");
    turn_until(async, &answered, 2, 5000);
    assert_int_equal(set.status, CACHE_OK);

    answered = 0;
    uint64_t started = now_ms();
    queue(async, &popped, "BLPOP shoal-async-test:list 0");
    turn_until(async, &answered, 1, 5000);
    uint64_t waited = now_ms() - started;
    assert_int_equal(popped.status, CACHE_UNAVAILABLE);
    assert_true(waited + 5 >= (uint64_t)timeout_ms);
    cache_async_stats stats;
    cache_async_stats_read(async, &stats);
    assert_int_equal(stats.timeouts, 1);

    /* Behind the BLPOP on the same connection, then the BLPOP's late
     * reply ("pushed"), pushed from a connection of its own. */
    queue(async, &got, "GET shoal-async-test:deadline");
    cache_async_flush(async);
    cache_config config = {.url = TEST_REDIS_URL(), .timeout_ms = scaled(2000)};
    char error[256];
    cache *blocking = cache_open(&config, error, sizeof error);
    assert_non_null(blocking);
    const char *push[] = {"LPUSH", "shoal-async-test:list", "pushed"};
    const size_t push_lengths[] = {5, 21, 6};
    redisReply *reply = NULL;
    assert_int_equal(cache_command_argv(blocking, 3, push, push_lengths, &reply), CACHE_OK);
    freeReplyObject(reply);
    turn_until(async, &answered, 2, 5000);
    assert_int_equal(got.status, CACHE_OK);
    assert_string_equal(got.text, "own-value");
    assert_int_equal(popped.calls, 1);
    cache_async_stats_read(async, &stats);
    assert_int_equal(stats.late_replies, 1);
    assert_int_equal(stats.lost, 0);
    cache_close(blocking);
    cache_async_close(async);
}

/* The loop comes to its timers late (a long turn; a thread under valgrind
 * waiting to run): the reply that came meanwhile is the answer, not a
 * timeout. The command goes out, then nothing drives the connection until
 * well past its deadline, with the reply in the socket's buffer. */
static void a_reply_that_came_before_a_late_timer_is_the_answer(void **state)
{
    (void)state;
    int timeout_ms = scaled(100);
    cache_async *async = open_async(TEST_REDIS_URL(), timeout_ms);
    turn_until_ready(async);
    answer pinged;
    answered = 0;
    queue(async, &pinged, "ECHO came-in-time");
    cache_async_flush(async);
    usleep((useconds_t)(3 * timeout_ms) * 1000);
    assert_int_equal(cache_async_timer_ms(async), 0);
    cache_async_on_timer(async);
    assert_int_equal(pinged.calls, 1);
    assert_int_equal(pinged.status, CACHE_OK);
    assert_string_equal(pinged.text, "came-in-time");
    cache_async_stats stats;
    cache_async_stats_read(async, &stats);
    assert_int_equal(stats.timeouts, 0);
    cache_async_close(async);
}

/* ---- a flush bigger than the socket's buffer --------------------------------------------------- */

#define BIG_VALUES 100
#define BIG_VALUE_BYTES (40 * 1024)

/* 4 MiB in one flush through a 4 KiB send buffer: the write is partial,
 * the rest goes out as the socket takes it, and every answer comes. */
static void a_flush_bigger_than_the_socket_buffer_goes_out_over_turns(void **state)
{
    (void)state;
    cache_async *async = open_async(TEST_REDIS_URL(), scaled(5000));
    turn_until_ready(async);
    int small = 4096;
    assert_int_equal(setsockopt(cache_async_fd(async), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    static char value[BIG_VALUE_BYTES];
    memset(value, 'v', sizeof value);
    static answer stored[BIG_VALUES];
    answer length;
    answered = 0;
    for (int i = 0; i < BIG_VALUES; i++) {
        char key[64];
        snprintf(key, sizeof key, "shoal-async-test:big:%d", i % 4);
        const char *argv[] = {"SET", key, value};
        const size_t lengths[] = {3, strlen(key), sizeof value};
        memset(&stored[i], 0, sizeof stored[i]);
        assert_int_equal(cache_async_command(async, 3, argv, lengths, record, &stored[i]), CACHE_OK);
    }
    queue(async, &length, "STRLEN shoal-async-test:big:3");
    cache_async_flush(async);
    assert_true(cache_async_wants_write(async));
    turn_until(async, &answered, BIG_VALUES + 1, 10000);
    for (int i = 0; i < BIG_VALUES; i++)
        assert_int_equal(stored[i].status, CACHE_OK);
    assert_int_equal(length.integer, BIG_VALUE_BYTES);
    assert_false(cache_async_wants_write(async));
    cache_async_stats stats;
    cache_async_stats_read(async, &stats);
    printf("4 MiB went out in %lu writes\n", stats.writes);
    assert_true(stats.writes > 2);
    cache_async_close(async);
}

/* ---- a connection that died while idle ---------------------------------------------------------- */

/* Killed by the server between two turns, after the loop last looked: the
 * flush finds it closed before sending, and the command goes out on a new
 * connection instead of being lost with the old one. */
static void a_connection_found_dead_before_sending_is_replaced(void **state)
{
    (void)state;
    cache_async *async = open_async(TEST_REDIS_URL(), scaled(2000));
    turn_until_ready(async);
    answer id, set, got;
    answered = 0;
    queue(async, &id, "CLIENT ID");
    queue(async, &set, "SET shoal-async-test:idle still-here");
    turn_until(async, &answered, 2, 5000);
    assert_int_equal(id.status, CACHE_OK);

    cache_config config = {.url = TEST_REDIS_URL(), .timeout_ms = scaled(2000)};
    char error[256];
    cache *blocking = cache_open(&config, error, sizeof error);
    assert_non_null(blocking);
    char id_text[32];
    snprintf(id_text, sizeof id_text, "%lld", id.integer);
    const char *kill_argv[] = {"CLIENT", "KILL", "ID", id_text};
    const size_t kill_lengths[] = {6, 4, 2, strlen(id_text)};
    redisReply *reply = NULL;
    assert_int_equal(cache_command_argv(blocking, 4, kill_argv, kill_lengths, &reply), CACHE_OK);
    assert_int_equal(reply->integer, 1);
    freeReplyObject(reply);
    cache_close(blocking);
    /* Its end reaches our socket; the loop does not look. */
    usleep(50 * 1000);

    answered = 0;
    queue(async, &got, "GET shoal-async-test:idle");
    cache_async_flush(async);
    turn_until(async, &answered, 1, 5000);
    assert_int_equal(got.status, CACHE_OK);
    assert_string_equal(got.text, "still-here");
    cache_async_stats stats;
    cache_async_stats_read(async, &stats);
    assert_int_equal(stats.lost, 0);
    assert_int_equal(stats.reconnects, 1);
    cache_async_close(async);
}

/* ---- a hung server ------------------------------------------------------------------------------ */

/* A Redis that stops answering (SIGSTOP): the command is answered at its
 * deadline, the connection is replaced after twice the timeout without an
 * answer, and commands are served again once the server resumes. */
static void a_hung_server_times_out_and_is_recovered_from(void **state)
{
    (void)state;
    spare_redis_start(&spare, NULL);
    int timeout_ms = scaled(300);
    cache_async *async = open_async(spare.url, timeout_ms);
    turn_until_ready(async);
    assert_int_equal(kill(spare.pid, SIGSTOP), 0);
    answer hung;
    answered = 0;
    queue(async, &hung, "SET shoal-async-test:hung never");
    turn_until(async, &answered, 1, 5000);
    assert_int_equal(hung.status, CACHE_UNAVAILABLE);

    cache_async_stats stats;
    cache_async_stats_read(async, &stats);
    unsigned long connects = stats.connects;
    uint64_t give_up = now_ms() + (uint64_t)scaled(5000);
    while (stats.connects == connects) {
        if (now_ms() > give_up)
            fail_msg("the hung connection was not replaced");
        turn(async, 50);
        cache_async_stats_read(async, &stats);
    }
    assert_int_equal(kill(spare.pid, SIGCONT), 0);

    /* Commands are refused during a reconnect interval, if the new
     * connection's handshake timed out first: ask until one is taken. */
    answer back;
    memset(&back, 0, sizeof back);
    const char *argv[] = {"PING"};
    const size_t lengths[] = {4};
    bool waiting = false;
    give_up = now_ms() + (uint64_t)scaled(5000);
    while (back.calls == 0 || back.status != CACHE_OK) {
        if (now_ms() > give_up)
            fail_msg("no answer after the server resumed");
        if (!waiting || back.calls > 0) {
            memset(&back, 0, sizeof back);
            waiting = cache_async_command(async, 1, argv, lengths, record, &back) == CACHE_OK;
        }
        turn(async, 50);
    }
    assert_string_equal(back.text, "PONG");
    cache_async_close(async);
    spare_redis_stop(&spare);
}

/* ---- a restart mid-pipeline ----------------------------------------------------------------- */

#define HALF 100

/* Commands sent to a Redis that is then killed are answered unavailable
 * (they may have run: never sent again); those queued and not sent go out
 * on the connection to the restarted server; none hangs. */
static void a_restart_fails_what_was_sent_and_resends_the_rest(void **state)
{
    (void)state;
    spare_redis_start(&spare, NULL);
    cache_async *async = open_async(spare.url, scaled(1000));
    turn_until_ready(async);
    static answer warm[HALF], sent[HALF], unsent[HALF];
    answered = 0;
    for (int i = 0; i < HALF; i++)
        queue(async, &warm[i], "INCR shoal-async-test:before");
    turn_until(async, &answered, HALF, 5000);
    assert_int_equal(warm[HALF - 1].integer, HALF);

    /* Stopped, the server reads nothing: the flush's write lands in its
     * socket's buffer, sent and never answered. */
    assert_int_equal(kill(spare.pid, SIGSTOP), 0);
    answered = 0;
    for (int i = 0; i < HALF; i++)
        queue(async, &sent[i], "INCR shoal-async-test:sent");
    cache_async_flush(async);
    cache_async_stats stats;
    cache_async_stats_read(async, &stats);
    assert_int_equal(stats.sent, 2 * HALF); /* warm and these */
    assert_int_equal(stats.lost, 0);
    for (int i = 0; i < HALF; i++)
        queue(async, &unsent[i], "INCR shoal-async-test:unsent");
    assert_int_equal(cache_async_waiting(async), 2 * HALF);

    /* Killed, so that it cannot answer what it holds, then started again. */
    assert_int_equal(kill(spare.pid, SIGKILL), 0);
    int status = 0;
    while (waitpid(spare.pid, &status, 0) < 0 && errno == EINTR) {
    }
    spare.pid = 0;
    spare_redis_restart(&spare);

    uint64_t started = now_ms();
    turn_until(async, &answered, 2 * HALF, 5000);
    printf("all %d answered %llu ms after the restart\n", 2 * HALF, (unsigned long long)(now_ms() - started));
    for (int i = 0; i < HALF; i++) {
        assert_int_equal(sent[i].calls, 1);
        assert_int_equal(sent[i].status, CACHE_UNAVAILABLE);
        assert_int_equal(unsent[i].calls, 1);
        assert_int_equal(unsent[i].status, CACHE_OK);
        /* A fresh server: each sent once, in order. */
        assert_int_equal(unsent[i].integer, i + 1);
        assert_true(unsent[i].order > sent[HALF - 1].order);
    }
    cache_async_stats_read(async, &stats);
    assert_int_equal(stats.lost, HALF);
    assert_int_equal(stats.reconnects, 1);
    assert_int_equal(cache_async_waiting(async), 0);
    cache_async_close(async);
    spare_redis_stop(&spare);
}

/* ---- what a reply means ----------------------------------------------------------------------- */

/* An error reply that says "not now" (here from a script, as a loading
 * server's comes) is CACHE_UNAVAILABLE, a refusal is CACHE_ERROR with its
 * reply, and the connection goes on serving. */
static void a_loading_reply_is_unavailable(void **state)
{
    (void)state;
    cache_async *async = open_async(TEST_REDIS_URL(), scaled(2000));
    turn_until_ready(async);
    answer loading, refused, value, set;
    answered = 0;
    queue(async, &set, "SET shoal-async-test:word word");
    const char *script[] = {"EVAL", "return {err='LOADING Redis is loading the dataset in memory'}", "0"};
    const size_t script_lengths[] = {4, strlen(script[1]), 1};
    memset(&loading, 0, sizeof loading);
    assert_int_equal(cache_async_command(async, 3, script, script_lengths, record, &loading), CACHE_OK);
    queue(async, &refused, "INCR shoal-async-test:word");
    queue(async, &value, "GET shoal-async-test:word");
    turn_until(async, &answered, 4, 5000);
    assert_int_equal(loading.status, CACHE_UNAVAILABLE);
    assert_int_equal(refused.status, CACHE_ERROR);
    assert_int_equal(refused.type, REDIS_REPLY_ERROR);
    assert_int_equal(value.status, CACHE_OK);
    assert_string_equal(value.text, "word");
    assert_true(cache_async_ready(async));
    cache_async_close(async);
}

/* ---- a server that never answers ------------------------------------------------------------ */

/* A socket that listens and never accepts: the kernel completes the
 * connect, nobody answers the handshake. */
static void a_server_that_never_answers_times_out_the_connect(void **state)
{
    (void)state;
    int port = 0;
    int listener = test_silent_listener(&port);
    assert_true(listener >= 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);

    int timeout_ms = scaled(300);
    uint64_t started = now_ms();
    cache_async *async = open_async(url, timeout_ms);
    uint64_t opened = now_ms() - started;
    answer got;
    answered = 0;
    queue(async, &got, "GET shoal-async-test:never");
    turn_until(async, &answered, 1, 5000);
    uint64_t waited = now_ms() - started;
    printf("open took %llu ms; the queued GET was answered after %llu ms (timeout %d)\n",
           (unsigned long long)opened, (unsigned long long)waited, timeout_ms);
    assert_true(opened < (uint64_t)scaled(100));
    assert_int_equal(got.status, CACHE_UNAVAILABLE);
    assert_true(waited + 5 >= (uint64_t)timeout_ms);
    cache_async_stats stats;
    cache_async_stats_read(async, &stats);
    assert_int_equal(stats.sent, 0);
    /* Within the reconnect interval: refused at once. */
    const char *ping[] = {"PING"};
    const size_t ping_length[] = {4};
    assert_int_equal(cache_async_command(async, 1, ping, ping_length, record, &got), CACHE_UNAVAILABLE);
    assert_int_equal(cache_async_waiting(async), 0);
    cache_async_close(async);
    close(listener);
}

/* ---- the measurement (SHOAL_TEST_CACHE_ASYNC_MEASURE=N) ------------------------------------ */

/* Redis' own CPU time (INFO cpu: getrusage, to the microsecond), in
 * microseconds; /proc's clock ticks are too coarse for the pipelined run. */
static double redis_cpu_us(cache *c)
{
    const char *argv[] = {"INFO", "cpu"};
    const size_t lengths[] = {4, 3};
    redisReply *reply = NULL;
    assert_int_equal(cache_command_argv(c, 2, argv, lengths, &reply), CACHE_OK);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    const char *user = strstr(reply->str, "used_cpu_user:");
    const char *system = strstr(reply->str, "used_cpu_sys:");
    assert_non_null(user);
    assert_non_null(system);
    double seconds = strtod(user + strlen("used_cpu_user:"), NULL) + strtod(system + strlen("used_cpu_sys:"), NULL);
    freeReplyObject(reply);
    return seconds * 1e6;
}

static int got_values;

static void count_value(void *cookie, cache_status status, const redisReply *reply)
{
    (void)cookie;
    if (status == CACHE_OK && reply->type == REDIS_REPLY_STRING)
        got_values++;
}

static void measure_redis_cpu_per_get(void **state)
{
    (void)state;
    const char *text = getenv("SHOAL_TEST_CACHE_ASYNC_MEASURE");
    int total = text != NULL ? atoi(text) : 0;
    if (total <= 0) {
        printf("SHOAL_TEST_CACHE_ASYNC_MEASURE unset: nothing measured\n");
        return;
    }
    spare_redis_start(&spare, NULL);
    const char *argv[] = {"GET", "shoal-async-test:measured"};
    const size_t lengths[] = {3, 25};
    cache_config config = {.url = spare.url, .timeout_ms = scaled(5000)};
    char error[256];
    cache *blocking = cache_open(&config, error, sizeof error);
    assert_non_null(blocking);
    const char *set[] = {"SET", "shoal-async-test:measured", "a value of some thirty bytes.."};
    const size_t set_lengths[] = {3, 25, 30};
    redisReply *reply = NULL;
    assert_int_equal(cache_command_argv(blocking, 3, set, set_lengths, &reply), CACHE_OK);
    freeReplyObject(reply);

    double cpu_before = redis_cpu_us(blocking);
    uint64_t started = now_ms();
    for (int i = 0; i < total; i++) {
        reply = NULL;
        assert_int_equal(cache_command_argv(blocking, 2, argv, lengths, &reply), CACHE_OK);
        freeReplyObject(reply);
    }
    double blocking_us = (redis_cpu_us(blocking) - cpu_before) / total;
    uint64_t blocking_ms = now_ms() - started;

    cache_async *async = open_async(spare.url, scaled(5000));
    turn_until_ready(async);
    got_values = 0;
    cpu_before = redis_cpu_us(blocking);
    started = now_ms();
    int queued = 0;
    while (got_values < total) {
        /* 100 a turn, at most 1000 out. */
        for (int i = 0; i < 100 && queued < total && queued - got_values < 1000; i++, queued++)
            assert_int_equal(cache_async_command(async, 2, argv, lengths, count_value, NULL), CACHE_OK);
        turn(async, 50);
    }
    double pipelined_us = (redis_cpu_us(blocking) - cpu_before) / total;
    uint64_t pipelined_ms = now_ms() - started;
    cache_async_close(async);
    cache_close(blocking);
    printf("Redis CPU per GET over %d GETs: one blocking call at a time %.2f us (%llu ms in all); "
           "pipelined 100 a turn %.2f us (%llu ms in all)\n",
           total, blocking_us, (unsigned long long)blocking_ms, pipelined_us, (unsigned long long)pipelined_ms);
    spare_redis_stop(&spare);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_requests_share_one_pipeline),
        cmocka_unit_test(a_deadline_answers_before_the_reply),
        cmocka_unit_test(a_reply_that_came_before_a_late_timer_is_the_answer),
        cmocka_unit_test(a_flush_bigger_than_the_socket_buffer_goes_out_over_turns),
        cmocka_unit_test(a_connection_found_dead_before_sending_is_replaced),
        cmocka_unit_test_teardown(a_hung_server_times_out_and_is_recovered_from, tear_down),
        cmocka_unit_test_teardown(a_restart_fails_what_was_sent_and_resends_the_rest, tear_down),
        cmocka_unit_test(a_loading_reply_is_unavailable),
        cmocka_unit_test(a_server_that_never_answers_times_out_the_connect),
        cmocka_unit_test_teardown(measure_redis_cpu_per_get, tear_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
