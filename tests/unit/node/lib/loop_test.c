/* tests/unit/node/lib/loop_test.c: node/lib/loop.c with real fds (pipes,
 * socketpairs, the eventfd) and a real second thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

/* ---- fd readiness ----------------------------------------------------- */

typedef struct fd_seen {
    int calls;
    int fd;
    unsigned events;
    char last;
} fd_seen;

static void note_readable(shoal_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    fd_seen *seen = arg;
    seen->calls++;
    seen->fd = fd;
    seen->events = events;
    if (events & SHOAL_LOOP_READ)
        assert_int_equal(read(fd, &seen->last, 1), 1);
}

static void test_pipe_readiness(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fd_seen seen = {0};
    shoal_loop_watch *watch = shoal_loop_watch_add(loop, fds[0], SHOAL_LOOP_READ, note_readable, &seen);
    assert_non_null(watch);
    errno = 0;
    assert_null(shoal_loop_watch_add(loop, fds[0], SHOAL_LOOP_READ, note_readable, &seen));
    assert_int_equal(errno, EEXIST);

    /* Nothing to read: a turn bounded by its wait sees nothing. */
    assert_int_equal(shoal_loop_turn(loop, 0), 0);
    assert_int_equal(seen.calls, 0);

    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.fd, fds[0]);
    assert_true(seen.events & SHOAL_LOOP_READ);
    assert_int_equal(seen.last, 'x');

    /* Interest dropped: a byte waits unread and no callback comes. */
    assert_int_equal(shoal_loop_watch_modify(watch, 0), 0);
    assert_int_equal(write(fds[1], "y", 1), 1);
    assert_int_equal(shoal_loop_turn(loop, 20), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(shoal_loop_watch_modify(watch, SHOAL_LOOP_READ), 0);
    assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.last, 'y');

    /* The writer closes: a hang-up. */
    assert_int_equal(close(fds[1]), 0);
    seen.events = 0;
    assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    assert_int_equal(seen.calls, 3);
    assert_true(seen.events & SHOAL_LOOP_HANGUP);

    assert_int_equal(shoal_loop_watch_remove(watch), 0);
    assert_int_equal(close(fds[0]), 0);
    shoal_loop_destroy(loop);
}

static void note_writable(shoal_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    fd_seen *seen = arg;
    seen->calls++;
    seen->events = events;
}

static void test_socketpair_write_interest(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    fd_seen seen = {0};
    shoal_loop_watch *watch = shoal_loop_watch_add(loop, pair[0], SHOAL_LOOP_WRITE, note_writable, &seen);
    assert_non_null(watch);
    assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.events, SHOAL_LOOP_WRITE);
    /* Read and write: a byte from the peer makes both ready. */
    assert_int_equal(shoal_loop_watch_modify(watch, SHOAL_LOOP_READ | SHOAL_LOOP_WRITE), 0);
    assert_int_equal(write(pair[1], "z", 1), 1);
    assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.events, SHOAL_LOOP_READ | SHOAL_LOOP_WRITE);
    assert_int_equal(shoal_loop_watch_remove(watch), 0);
    /* Removing after the fd was closed reports epoll's EBADF and still
     * frees the handle (valgrind would see it leak). */
    watch = shoal_loop_watch_add(loop, pair[1], SHOAL_LOOP_READ, note_writable, &seen);
    assert_non_null(watch);
    assert_int_equal(close(pair[1]), 0);
    errno = 0;
    assert_int_equal(shoal_loop_watch_remove(watch), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(close(pair[0]), 0);
    shoal_loop_destroy(loop);
}

/* ---- removal during dispatch --------------------------------------------- */

typedef struct removal_case {
    shoal_loop_watch *watches[2];
    int fds[2][2];
    int calls[2];
} removal_case;

/* Whichever of the two runs first removes both watches (itself and the
 * other, whose event is in the same batch): the other must not run. */
static void remove_both(shoal_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)events;
    removal_case *c = arg;
    int me = fd == c->fds[0][0] ? 0 : 1;
    c->calls[me]++;
    for (int i = 0; i < 2; i++) {
        if (c->watches[i] != NULL) {
            assert_int_equal(shoal_loop_watch_remove(c->watches[i]), 0);
            c->watches[i] = NULL;
        }
    }
}

static void test_removal_during_dispatch(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    removal_case c = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(c.fds[i]), 0);
        c.watches[i] = shoal_loop_watch_add(loop, c.fds[i][0], SHOAL_LOOP_READ, remove_both, &c);
        assert_non_null(c.watches[i]);
        assert_int_equal(write(c.fds[i][1], "r", 1), 1);
    }
    assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    /* Both were ready in one batch; exactly one callback ran. */
    assert_int_equal(c.calls[0] + c.calls[1], 1);
    assert_null(c.watches[0]);
    assert_null(c.watches[1]);
    /* The bytes are still there, and nothing watches them any more. */
    assert_int_equal(shoal_loop_turn(loop, 20), 0);
    assert_int_equal(c.calls[0] + c.calls[1], 1);
    /* The fds can be watched again. */
    fd_seen seen = {0};
    shoal_loop_watch *again = shoal_loop_watch_add(loop, c.fds[1][0], SHOAL_LOOP_READ, note_readable, &seen);
    assert_non_null(again);
    assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(shoal_loop_watch_remove(again), 0);
    for (int i = 0; i < 2; i++) {
        close(c.fds[i][0]);
        close(c.fds[i][1]);
    }
    shoal_loop_destroy(loop);
}

/* ---- timers ------------------------------------------------------------ */

typedef struct timer_log {
    int order[16];
    int count;
    uint64_t fired_ns[16];
} timer_log;

typedef struct logged_timer {
    shoal_loop_timer timer;
    timer_log *log;
    int id;
} logged_timer;

static void log_fire(shoal_loop *loop, void *arg)
{
    (void)loop;
    logged_timer *t = arg;
    assert_false(shoal_loop_timer_armed(&t->timer));
    t->log->fired_ns[t->log->count] = shoal_loop_now_ns();
    t->log->order[t->log->count++] = t->id;
}

static void turn_until(shoal_loop *loop, const timer_log *log, int count)
{
    uint64_t give_up = shoal_loop_now_ns() + 5000000000u;
    while (log->count < count && shoal_loop_now_ns() < give_up)
        assert_int_equal(shoal_loop_turn(loop, 1000), 0);
}

static void test_timers_in_order_and_cancel(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    timer_log log = {0};
    /* Deadlines set out of order, two of them equal (those fire in the
     * order set), one cancelled, one re-armed later. */
    static const int delays[] = {30, 10, 20, 10, 5, 40, 15};
    logged_timer timers[7];
    uint64_t start = shoal_loop_now_ns();
    for (int i = 0; i < 7; i++) {
        timers[i] = (logged_timer){.log = &log, .id = i};
        shoal_loop_timer_init(&timers[i].timer);
        assert_false(shoal_loop_timer_armed(&timers[i].timer));
        assert_int_equal(shoal_loop_timer_start(loop, &timers[i].timer, (uint64_t)delays[i], log_fire, &timers[i]), 0);
        assert_true(shoal_loop_timer_armed(&timers[i].timer));
    }
    shoal_loop_timer_stop(loop, &timers[2].timer);
    shoal_loop_timer_stop(loop, &timers[2].timer); /* twice: nothing */
    assert_false(shoal_loop_timer_armed(&timers[2].timer));
    assert_int_equal(shoal_loop_timer_start(loop, &timers[4].timer, 45, log_fire, &timers[4]), 0);

    turn_until(loop, &log, 6);
    assert_int_equal(log.count, 6);
    static const int expected[] = {1, 3, 6, 0, 5, 4};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(log.order[i], expected[i]);
        /* never early */
        int id = expected[i];
        uint64_t delay = id == 4 ? 45 : (uint64_t)delays[id];
        assert_true(log.fired_ns[i] - start >= delay * 1000000u);
    }
    /* Nothing armed: a turn waits only its own bound. */
    assert_int_equal(shoal_loop_turn(loop, 0), 0);
    assert_int_equal(log.count, 6);
    /* A delay whose nanoseconds would wrap waits (a year), not fires now. */
    assert_int_equal(shoal_loop_timer_start(loop, &timers[0].timer, UINT64_MAX, log_fire, &timers[0]), 0);
    assert_int_equal(shoal_loop_turn(loop, 0), 0);
    assert_int_equal(log.count, 6);
    assert_true(shoal_loop_timer_armed(&timers[0].timer));
    shoal_loop_destroy(loop);
    /* destroy disarmed it */
    assert_false(shoal_loop_timer_armed(&timers[0].timer));
}

/* Many timers in random order come out sorted: the heap under load. */
static void test_timer_heap_many(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    enum { N = 500 };
    shoal_loop_timer *timers = calloc(N, sizeof *timers);
    assert_non_null(timers);
    srand(16);
    for (int i = 0; i < N; i++) {
        shoal_loop_timer_init(&timers[i]);
        assert_int_equal(shoal_loop_timer_start(loop, &timers[i], (uint64_t)(rand() % 1000), log_fire, NULL), 0);
    }
    /* Stop every third, in a scattered order. */
    for (int i = 0; i < N; i += 3)
        shoal_loop_timer_stop(loop, &timers[(i * 7) % N]);
    /* The heap's order: pop by stopping the earliest each time. */
    uint64_t last_deadline = 0, last_sequence = 0;
    int armed = 0;
    for (int i = 0; i < N; i++)
        armed += shoal_loop_timer_armed(&timers[i]);
    for (int popped = 0; popped < armed; popped++) {
        shoal_loop_timer *earliest = NULL;
        for (int i = 0; i < N; i++) {
            if (shoal_loop_timer_armed(&timers[i]) && timers[i].heap_index == 0)
                earliest = &timers[i];
        }
        assert_non_null(earliest);
        assert_true(earliest->deadline_ns > last_deadline ||
                    (earliest->deadline_ns == last_deadline && earliest->sequence > last_sequence) || popped == 0);
        last_deadline = earliest->deadline_ns;
        last_sequence = earliest->sequence;
        shoal_loop_timer_stop(loop, earliest);
    }
    for (int i = 0; i < N; i++)
        assert_false(shoal_loop_timer_armed(&timers[i]));
    free(timers);
    shoal_loop_destroy(loop);
}

/* A timer that re-arms itself at 0 ms fires once per turn, not forever. */
static void rearm_zero(shoal_loop *loop, void *arg)
{
    logged_timer *t = arg;
    t->log->count++;
    assert_int_equal(shoal_loop_timer_start(loop, &t->timer, 0, rearm_zero, t), 0);
}

static void test_timer_rearm_in_callback(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    timer_log log = {0};
    logged_timer t = {.log = &log};
    shoal_loop_timer_init(&t.timer);
    assert_int_equal(shoal_loop_timer_start(loop, &t.timer, 0, rearm_zero, &t), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    assert_int_equal(log.count, 3);
    shoal_loop_timer_stop(loop, &t.timer);
    shoal_loop_destroy(loop);
}

/* ---- end-of-turn hooks ------------------------------------------------- */

typedef struct hook_state {
    int runs[3];
    int order[32];
    int ran;
    uint64_t turn_seen[8];
    shoal_loop *loop;
} hook_state;

static void hook_a(shoal_loop *loop, void *arg)
{
    hook_state *h = arg;
    h->turn_seen[h->runs[0]] = shoal_loop_turns(loop);
    h->runs[0]++;
    h->order[h->ran++] = 0;
}

static void hook_c(shoal_loop *loop, void *arg)
{
    hook_state *h = arg;
    h->runs[2]++;
    h->order[h->ran++] = 2;
    (void)loop;
}

static void hook_b(shoal_loop *loop, void *arg)
{
    hook_state *h = arg;
    h->runs[1]++;
    h->order[h->ran++] = 1;
    /* On its second run it removes itself and hook_c, which comes after
     * it in this very turn and must not run. */
    if (h->runs[1] == 2) {
        assert_int_equal(shoal_loop_hook_remove(loop, hook_b, h), 0);
        assert_int_equal(shoal_loop_hook_remove(loop, hook_c, h), 0);
        assert_int_equal(shoal_loop_hook_remove(loop, hook_c, h), -1);
    }
}

static void test_hooks_once_per_turn(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    hook_state h = {.loop = loop};
    assert_int_equal(shoal_loop_hook_add(loop, hook_a, &h), 0);
    assert_int_equal(shoal_loop_hook_add(loop, hook_b, &h), 0);
    assert_int_equal(shoal_loop_hook_add(loop, hook_c, &h), 0);

    /* A turn with two fds ready and a timer due still runs each hook once. */
    int fds[2][2];
    fd_seen seen[2] = {{0}};
    shoal_loop_watch *watches[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        watches[i] = shoal_loop_watch_add(loop, fds[i][0], SHOAL_LOOP_READ, note_readable, &seen[i]);
        assert_non_null(watches[i]);
        assert_int_equal(write(fds[i][1], "h", 1), 1);
    }
    timer_log log = {0};
    logged_timer t = {.log = &log};
    shoal_loop_timer_init(&t.timer);
    assert_int_equal(shoal_loop_timer_start(loop, &t.timer, 0, log_fire, &t), 0);
    uint64_t before = shoal_loop_turns(loop);
    assert_int_equal(shoal_loop_turn(loop, 1000), 0);
    assert_int_equal(shoal_loop_turns(loop), before + 1);
    assert_int_equal(seen[0].calls + seen[1].calls, 2);
    assert_int_equal(log.count, 1);
    assert_int_equal(h.runs[0], 1);
    assert_int_equal(h.runs[1], 1);
    assert_int_equal(h.runs[2], 1);
    assert_int_equal(h.turn_seen[0], before + 1);

    /* An idle turn is a turn too. */
    assert_int_equal(shoal_loop_turn(loop, 0), 0);
    assert_int_equal(h.runs[0], 2);
    assert_int_equal(h.runs[1], 2);
    assert_int_equal(h.runs[2], 1); /* removed by hook_b before its turn */
    assert_int_equal(shoal_loop_turn(loop, 0), 0);
    assert_int_equal(h.runs[0], 3);
    assert_int_equal(h.runs[1], 2);
    assert_int_equal(h.runs[2], 1);
    static const int expected[] = {0, 1, 2, 0, 1, 0};
    assert_int_equal(h.ran, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(h.order[i], expected[i]);
    assert_int_equal(h.turn_seen[2], before + 3);

    for (int i = 0; i < 2; i++) {
        assert_int_equal(shoal_loop_watch_remove(watches[i]), 0);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    shoal_loop_destroy(loop);
}

/* The callback before each wait sees every hook of the turn before it: the
 * worker writes the access lines its turn held there. */
static void before_wait(shoal_loop *loop, void *arg)
{
    hook_state *h = arg;
    h->order[h->ran++] = 9;
    (void)loop;
}

static void test_before_wait_after_the_turns_hooks(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    hook_state h = {.loop = loop};
    assert_int_equal(shoal_loop_hook_add(loop, hook_a, &h), 0);
    shoal_loop_before_wait(loop, before_wait, &h);
    assert_int_equal(shoal_loop_turn(loop, 0), 0);
    assert_int_equal(shoal_loop_turn(loop, 0), 0);
    shoal_loop_before_wait(loop, NULL, NULL);
    assert_int_equal(shoal_loop_turn(loop, 0), 0);
    static const int expected[] = {9, 0, 9, 0, 0};
    assert_int_equal(h.ran, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(h.order[i], expected[i]);
    shoal_loop_destroy(loop);
}

/* ---- another thread: wake and stop --------------------------------------- */

typedef struct wake_state {
    shoal_loop *loop;
    int wakes_sent;
    int woken;
    pthread_t loop_thread;
    bool on_loop_thread;
} wake_state;

static void on_wake(shoal_loop *loop, void *arg)
{
    wake_state *w = arg;
    w->woken++;
    w->on_loop_thread = pthread_equal(pthread_self(), w->loop_thread);
    shoal_loop_stop(loop);
}

static void *send_wake(void *arg)
{
    wake_state *w = arg;
    struct timespec pause = {0, 20 * 1000000};
    nanosleep(&pause, NULL);
    assert_int_equal(shoal_loop_wake(w->loop), 0);
    return NULL;
}

static void test_cross_thread_wake(void **state)
{
    (void)state;
    wake_state w = {.loop = shoal_loop_create(), .loop_thread = pthread_self()};
    assert_non_null(w.loop);
    shoal_loop_on_wake(w.loop, on_wake, &w);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, send_wake, &w), 0);
    /* Sleeps in epoll_wait with nothing armed until the other thread's wake. */
    assert_int_equal(shoal_loop_run(w.loop), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(w.woken, 1);
    assert_true(w.on_loop_thread);

    /* Three wakes before the loop looks: one callback. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(shoal_loop_wake(w.loop), 0);
    assert_int_equal(shoal_loop_turn(w.loop, 1000), 0);
    assert_int_equal(w.woken, 2);
    assert_int_equal(shoal_loop_turn(w.loop, 0), 0);
    assert_int_equal(w.woken, 2);
    shoal_loop_destroy(w.loop);
}

static void *send_stop(void *arg)
{
    shoal_loop *loop = arg;
    struct timespec pause = {0, 20 * 1000000};
    nanosleep(&pause, NULL);
    shoal_loop_stop(loop);
    return NULL;
}

static void stop_from_timer(shoal_loop *loop, void *arg)
{
    (void)arg;
    shoal_loop_stop(loop);
}

static void count_turn(shoal_loop *loop, void *arg)
{
    (void)loop;
    (*(int *)arg)++;
}

static void test_stop(void **state)
{
    (void)state;
    shoal_loop *loop = shoal_loop_create();
    assert_non_null(loop);
    int turns = 0;
    assert_int_equal(shoal_loop_hook_add(loop, count_turn, &turns), 0);
    /* From another thread, while the loop sleeps with nothing to do. */
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, send_stop, loop), 0);
    assert_int_equal(shoal_loop_run(loop), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_true(turns >= 1);

    /* From a callback: run returns at the end of that turn (the hooks ran),
     * and the stop was consumed, so run can go again. */
    shoal_loop_timer timer;
    shoal_loop_timer_init(&timer);
    for (int round = 0; round < 2; round++) {
        turns = 0;
        assert_int_equal(shoal_loop_timer_start(loop, &timer, 5, stop_from_timer, NULL), 0);
        assert_int_equal(shoal_loop_run(loop), 0);
        assert_true(turns >= 1);
        assert_false(shoal_loop_timer_armed(&timer));
    }
    shoal_loop_destroy(loop);
    shoal_loop_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_readiness),
        cmocka_unit_test(test_socketpair_write_interest),
        cmocka_unit_test(test_removal_during_dispatch),
        cmocka_unit_test(test_timers_in_order_and_cancel),
        cmocka_unit_test(test_timer_heap_many),
        cmocka_unit_test(test_timer_rearm_in_callback),
        cmocka_unit_test(test_hooks_once_per_turn),
        cmocka_unit_test(test_before_wait_after_the_turns_hooks),
        cmocka_unit_test(test_cross_thread_wake),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
