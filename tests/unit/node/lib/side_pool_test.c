/* tests/unit/node/lib/side_pool_test.c: node/lib/side_pool.c with a real
 * loop (node/lib/loop.c) on the test's thread, real fibers on it
 * (node/lib/fiber.c) and real pool threads; the public call
 * (shoal_ctx_run_blocking) and password.c's use of the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shoal/password.h>

#include "context.h"
#include "fiber.h"
#include "loop.h"
#include "side_pool.h"

#define MS ((uint64_t)1000000)

/* tests/support/test_env.h's scale: tests/valgrind runs code tens of times
 * slower, and the bounds below are only there to fail instead of hang. */
static uint64_t scaled_ms(uint64_t ms)
{
    const char *text = getenv("SHOAL_TEST_TIME_SCALE");
    double scale = text != NULL ? strtod(text, NULL) : 1.0;
    return (uint64_t)((double)ms * (scale >= 1.0 ? scale : 1.0));
}

/* ---- a worker's loop, its fibers, a pool ------------------------------- */

typedef struct harness {
    shoal_loop *loop;
    shoal_fiber_pool *fibers;
    shoal_side_pool *pool;
    shoal_side_inbox *inbox;
} harness;

static void drain_on_wake(shoal_loop *loop, void *arg)
{
    (void)loop;
    shoal_side_inbox_drain(arg);
}

static void harness_open(harness *h, int threads)
{
    shoal_side_bind_thread(NULL, NULL); /* a failed test's binding stays behind */
    h->loop = shoal_loop_create();
    assert_non_null(h->loop);
    h->fibers = shoal_fiber_pool_create(64 * 1024, 512);
    assert_non_null(h->fibers);
    h->pool = shoal_side_pool_create(threads);
    assert_non_null(h->pool);
    h->inbox = shoal_side_inbox_create(h->loop);
    assert_non_null(h->inbox);
    shoal_loop_on_wake(h->loop, drain_on_wake, h->inbox);
}

static void harness_close(harness *h)
{
    assert_int_equal(shoal_side_inbox_waiting(h->inbox), 0);
    shoal_side_bind_thread(NULL, NULL);
    shoal_side_pool_destroy(h->pool);
    shoal_side_inbox_destroy(h->inbox);
    shoal_fiber_pool_destroy(h->fibers);
    shoal_loop_destroy(h->loop);
}

/* Starts fn(arg) on a fiber: it runs until its first suspension (the
 * handle is valid while it is suspended). */
static shoal_fiber *start_fiber(harness *h, shoal_fiber_fn fn, void *arg)
{
    shoal_fiber *fiber = shoal_fiber_new(h->fibers, fn, arg);
    assert_non_null(fiber);
    return shoal_fiber_resume(fiber) ? fiber : NULL;
}

/* Turns the loop until *count reaches target; a bound makes a lost
 * completion a failure rather than a hang. */
static void turn_until(harness *h, const int *count, int target)
{
    uint64_t give_up = shoal_loop_now_ns() + scaled_ms(5000) * MS;
    while (*count < target) {
        assert_true(shoal_loop_now_ns() < give_up);
        assert_int_equal(shoal_loop_turn(h->loop, 20), 0);
    }
}

static shoal_side_pool_stats stats_of(harness *h)
{
    shoal_side_pool_stats stats;
    shoal_side_pool_stats_read(h->pool, &stats);
    return stats;
}

/* ---- work ---------------------------------------------------------------- */

/* Blocks its pool thread until the test opens the gate (or a bound passes:
 * then timed_out says so, and the test fails instead of hanging). */
typedef struct gated_work {
    sem_t gate;
    pthread_t ran_on;
    bool timed_out;
    atomic_bool entered;
} gated_work;

static void gated_work_init(gated_work *work)
{
    memset(work, 0, sizeof *work);
    assert_int_equal(sem_init(&work->gate, 0, 0), 0);
}

static void wait_at_gate(void *arg)
{
    gated_work *work = arg;
    work->ran_on = pthread_self();
    atomic_store(&work->entered, true);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    uint64_t bound_ns = scaled_ms(3000) * MS;
    deadline.tv_sec += (time_t)(bound_ns / 1000000000u);
    deadline.tv_nsec += (long)(bound_ns % 1000000000u);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (sem_clockwait(&work->gate, CLOCK_MONOTONIC, &deadline) != 0)
        if (errno != EINTR) {
            work->timed_out = true;
            return;
        }
}

typedef struct computed_work {
    long in, out;
    pthread_t ran_on;
    bool on_fiber; /* ran inside a fiber: inline on the loop's thread */
} computed_work;

static void compute(void *arg)
{
    computed_work *work = arg;
    work->ran_on = pthread_self();
    work->on_fiber = shoal_fiber_current() != NULL;
    /* Some work takes a while, so that completions come back in another
     * order than they went out. */
    if (work->in % 3 == 0) {
        struct timespec pause = {0, (long)(work->in % 7) * 20000};
        nanosleep(&pause, NULL);
    }
    work->out = work->in * 7 + 1;
}

/* ---- the loop keeps turning while work blocks --------------------------- */

typedef struct blocking_case {
    harness *h;
    gated_work work;
    int submitted_rc;
    int done;
    int ticks_when_resumed;
    int progress_when_resumed;
    /* a second fiber the timer moves on, one step a tick */
    shoal_fiber *progressing;
    int progress;
    int ticks;
    shoal_loop_timer timer;
} blocking_case;

static void submit_gated(void *arg)
{
    blocking_case *c = arg;
    c->submitted_rc = shoal_side_pool_run(c->h->pool, c->h->inbox, 0, wait_at_gate, &c->work);
    c->ticks_when_resumed = c->ticks;
    c->progress_when_resumed = c->progress;
    c->done++;
}

static void make_progress(void *arg)
{
    blocking_case *c = arg;
    for (int step = 0; step < 5; step++) {
        c->progress++;
        shoal_fiber_suspend();
    }
    c->progressing = NULL;
}

static void tick(shoal_loop *loop, void *arg)
{
    blocking_case *c = arg;
    c->ticks++;
    if (c->progressing != NULL)
        shoal_fiber_resume(c->progressing);
    /* Opened only once the loop has turned while the work was blocked. */
    if (c->ticks == 10)
        assert_int_equal(sem_post(&c->work.gate), 0);
    if (c->done == 0)
        assert_int_equal(shoal_loop_timer_start(loop, &c->timer, 1, tick, c), 0);
}

static void test_loop_turns_while_work_blocks(void **state)
{
    (void)state;
    harness h;
    harness_open(&h, 2);
    blocking_case c = {.h = &h};
    gated_work_init(&c.work);
    shoal_loop_timer_init(&c.timer);

    shoal_fiber *submitter = start_fiber(&h, submit_gated, &c);
    assert_non_null(submitter); /* suspended, not blocked in the call */
    assert_int_equal(shoal_side_inbox_waiting(h.inbox), 1);
    /* Resumed by anyone but the drain, it waits on: its job is not done. */
    assert_true(shoal_fiber_resume(submitter));
    assert_int_equal(c.done, 0);
    c.progressing = shoal_fiber_new(h.fibers, make_progress, &c);
    assert_non_null(c.progressing);
    assert_int_equal(shoal_loop_timer_start(h.loop, &c.timer, 1, tick, &c), 0);

    turn_until(&h, &c.done, 1);
    assert_false(c.work.timed_out);
    assert_int_equal(c.submitted_rc, 0);
    assert_false(pthread_equal(c.work.ran_on, pthread_self()));
    assert_true(c.ticks_when_resumed >= 10);
    assert_int_equal(c.progress_when_resumed, 5);
    assert_null(c.progressing);
    shoal_side_pool_stats stats = stats_of(&h);
    assert_int_equal(stats.ran, 1);
    assert_int_equal(stats.queued + stats.running, 0);
    shoal_loop_timer_stop(h.loop, &c.timer);
    sem_destroy(&c.work.gate);
    harness_close(&h);
}

/* ---- many fibers, many submissions --------------------------------------- */

#define MANY_FIBERS 100
#define SUBMISSIONS_EACH 20

typedef struct many_case {
    harness *h;
    int finished;
    int wrong;
    int failed;
    int off_pool; /* work that ran on the loop's thread */
    pthread_t loop_thread;
} many_case;

typedef struct many_fiber {
    many_case *c;
    long id;
} many_fiber;

static void submit_many(void *arg)
{
    many_fiber *self = arg;
    many_case *c = self->c;
    for (long i = 0; i < SUBMISSIONS_EACH; i++) {
        computed_work work = {.in = self->id * 1000 + i};
        if (shoal_side_pool_run(c->h->pool, c->h->inbox, 0, compute, &work) != 0)
            c->failed++;
        else if (work.out != work.in * 7 + 1)
            c->wrong++;
        if (pthread_equal(work.ran_on, c->loop_thread))
            c->off_pool++;
    }
    c->finished++;
}

static void test_many_fibers_get_their_own_results(void **state)
{
    (void)state;
    harness h;
    harness_open(&h, 4);
    many_case c = {.h = &h, .loop_thread = pthread_self()};
    static many_fiber fibers[MANY_FIBERS];
    for (long i = 0; i < MANY_FIBERS; i++) {
        fibers[i] = (many_fiber){.c = &c, .id = i};
        start_fiber(&h, submit_many, &fibers[i]);
    }
    assert_int_equal(shoal_side_inbox_waiting(h.inbox), MANY_FIBERS);
    turn_until(&h, &c.finished, MANY_FIBERS);
    assert_int_equal(c.failed, 0);
    assert_int_equal(c.wrong, 0);
    assert_int_equal(c.off_pool, 0);
    assert_int_equal(stats_of(&h).ran, MANY_FIBERS * SUBMISSIONS_EACH);
    harness_close(&h);
}

/* ---- the drain's order -------------------------------------------------------- */

#define IN_ORDER 5

typedef struct order_case {
    harness *h;
    int resumed[IN_ORDER];
    int done;
} order_case;

typedef struct order_fiber {
    order_case *c;
    int index;
} order_fiber;

static void submit_in_order(void *arg)
{
    order_fiber *self = arg;
    computed_work work = {.in = 1};
    assert_int_equal(shoal_side_pool_run(self->c->h->pool, self->c->h->inbox, 0, compute, &work), 0);
    self->c->resumed[self->c->done++] = self->index;
}

/* One thread finishes the jobs in the order they were queued, all before
 * the loop looks: one drain resumes them in that order, not the inbox's
 * newest first. */
static void test_drain_resumes_in_finishing_order(void **state)
{
    (void)state;
    harness h;
    harness_open(&h, 1);
    order_case c = {.h = &h};
    order_fiber fibers[IN_ORDER];
    for (int i = 0; i < IN_ORDER; i++) {
        fibers[i] = (order_fiber){.c = &c, .index = i};
        assert_non_null(start_fiber(&h, submit_in_order, &fibers[i]));
    }
    uint64_t give_up = shoal_loop_now_ns() + scaled_ms(5000) * MS;
    while (stats_of(&h).ran < IN_ORDER) {
        assert_true(shoal_loop_now_ns() < give_up);
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    assert_int_equal(c.done, 0);
    shoal_side_inbox_drain(h.inbox);
    assert_int_equal(c.done, IN_ORDER);
    for (int i = 0; i < IN_ORDER; i++)
        assert_int_equal(c.resumed[i], i);
    harness_close(&h);
}

/* ---- destroy with work queued -------------------------------------------- */

#define QUEUED_BEHIND 4

typedef struct destroy_case {
    harness *h;
    gated_work blocker;
    computed_work queued[QUEUED_BEHIND];
    int rc[QUEUED_BEHIND + 1];
    int done;
    int late_rc, late_errno;
    bool late_done;
} destroy_case;

typedef struct destroy_fiber {
    destroy_case *c;
    int index; /* 0: the blocker */
} destroy_fiber;

static void submit_for_destroy(void *arg)
{
    destroy_fiber *self = arg;
    destroy_case *c = self->c;
    if (self->index == 0)
        c->rc[0] = shoal_side_pool_run(c->h->pool, c->h->inbox, 0, wait_at_gate, &c->blocker);
    else
        c->rc[self->index] = shoal_side_pool_run(c->h->pool, c->h->inbox, 0, compute, &c->queued[self->index - 1]);
    c->done++;
}

static void submit_while_stopping(void *arg)
{
    destroy_case *c = arg;
    computed_work work = {.in = 5};
    errno = 0;
    c->late_rc = shoal_side_pool_run(c->h->pool, c->h->inbox, 0, compute, &work);
    c->late_errno = errno;
    c->late_done = work.out == 0; /* refused: the work never ran */
}

static void *destroy_pool(void *arg)
{
    shoal_side_pool_destroy(arg);
    return NULL;
}

static void wait_for_stats(harness *h, size_t running, size_t queued, bool stopping)
{
    uint64_t give_up = shoal_loop_now_ns() + scaled_ms(5000) * MS;
    for (;;) {
        shoal_side_pool_stats stats = stats_of(h);
        if (stats.running == running && stats.queued == queued && stats.stopping == stopping)
            return;
        assert_true(shoal_loop_now_ns() < give_up);
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

static void test_destroy_finishes_queued_work_and_refuses_new(void **state)
{
    (void)state;
    harness h;
    harness_open(&h, 1);
    destroy_case c = {.h = &h};
    gated_work_init(&c.blocker);
    destroy_fiber fibers[QUEUED_BEHIND + 1];
    for (int i = 0; i <= QUEUED_BEHIND; i++) {
        if (i > 0)
            c.queued[i - 1].in = 100 + i;
        fibers[i] = (destroy_fiber){.c = &c, .index = i};
        start_fiber(&h, submit_for_destroy, &fibers[i]);
    }
    wait_for_stats(&h, 1, QUEUED_BEHIND, false);

    /* Destroy on another thread: it waits for the blocker, which waits for
     * us; the loop here still has to drain what the pool finishes. */
    pthread_t destroyer;
    assert_int_equal(pthread_create(&destroyer, NULL, destroy_pool, h.pool), 0);
    wait_for_stats(&h, 1, QUEUED_BEHIND, true);
    start_fiber(&h, submit_while_stopping, &c);
    assert_int_equal(c.late_rc, -1);
    assert_int_equal(c.late_errno, ECANCELED);
    assert_true(c.late_done);

    assert_int_equal(sem_post(&c.blocker.gate), 0);
    assert_int_equal(pthread_join(destroyer, NULL), 0);
    h.pool = NULL;
    /* Every accepted job ran and was posted before the threads ended; the
     * fibers resume at the next drain. */
    assert_int_equal(c.done, 0);
    turn_until(&h, &c.done, QUEUED_BEHIND + 1);
    assert_false(c.blocker.timed_out);
    for (int i = 0; i <= QUEUED_BEHIND; i++)
        assert_int_equal(c.rc[i], 0);
    for (int i = 0; i < QUEUED_BEHIND; i++)
        assert_int_equal(c.queued[i].out, c.queued[i].in * 7 + 1);
    sem_destroy(&c.blocker.gate);
    harness_close(&h);
}

/* ---- a deadline that passes in the queue ---------------------------------- */

typedef struct deadline_case {
    harness *h;
    gated_work blocker;
    computed_work late_work;
    uint64_t deadline_ns;
    int rc[2], error[2];
    int done;
} deadline_case;

static void submit_blocker(void *arg)
{
    deadline_case *c = arg;
    c->rc[0] = shoal_side_pool_run(c->h->pool, c->h->inbox, 0, wait_at_gate, &c->blocker);
    c->done++;
}

static void submit_with_deadline(void *arg)
{
    deadline_case *c = arg;
    errno = 0;
    c->rc[1] = shoal_side_pool_run(c->h->pool, c->h->inbox, c->deadline_ns, compute, &c->late_work);
    c->error[1] = errno;
    c->done++;
}

static void test_deadline_passed_in_queue(void **state)
{
    (void)state;
    harness h;
    harness_open(&h, 1);
    deadline_case c = {.h = &h, .late_work = {.in = 2}};
    gated_work_init(&c.blocker);
    start_fiber(&h, submit_blocker, &c);
    c.deadline_ns = shoal_loop_now_ns() + 30 * MS;
    start_fiber(&h, submit_with_deadline, &c);
    wait_for_stats(&h, 1, 1, false);
    /* The gate opens only after the second job's deadline. */
    while (shoal_loop_now_ns() <= c.deadline_ns)
        assert_int_equal(shoal_loop_turn(h.loop, 5), 0);
    assert_int_equal(sem_post(&c.blocker.gate), 0);
    turn_until(&h, &c.done, 2);
    assert_int_equal(c.rc[0], 0);
    assert_int_equal(c.rc[1], -1);
    assert_int_equal(c.error[1], ETIMEDOUT);
    assert_int_equal(c.late_work.out, 0);
    shoal_side_pool_stats stats = stats_of(&h);
    assert_int_equal(stats.ran, 1);
    assert_int_equal(stats.late, 1);

    /* Already past: refused at once, without suspending or queueing. */
    c.done = 0;
    c.deadline_ns = shoal_loop_now_ns() - 1;
    start_fiber(&h, submit_with_deadline, &c);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.rc[1], -1);
    assert_int_equal(c.error[1], ETIMEDOUT);
    stats = stats_of(&h);
    assert_int_equal(stats.ran, 1);
    assert_int_equal(stats.late, 1);
    sem_destroy(&c.blocker.gate);
    harness_close(&h);
}

/* ---- inline where there is no loop --------------------------------------- */

typedef struct inline_case {
    shoal_ctx *ctx;
    computed_work work;
    int rc;
    int done;
} inline_case;

static void run_blocking_on_fiber(void *arg)
{
    inline_case *c = arg;
    c->rc = shoal_ctx_run_blocking(c->ctx, compute, &c->work);
    c->done++;
}

static void test_inline_without_a_loop(void **state)
{
    (void)state;
    harness h;
    harness_open(&h, 2);
    struct shoal_ctx ctx;
    memset(&ctx, 0, sizeof ctx);

    /* Not on a fiber, no pool bound: today's thread-per-request model. */
    computed_work work = {.in = 3};
    assert_int_equal(shoal_ctx_run_blocking(&ctx, compute, &work), 0);
    assert_int_equal(work.out, 22);
    assert_true(pthread_equal(work.ran_on, pthread_self()));
    assert_false(work.on_fiber);

    /* The pool needs a fiber to suspend. */
    errno = 0;
    assert_int_equal(shoal_side_pool_run(h.pool, h.inbox, 0, compute, &work), -1);
    assert_int_equal(errno, EINVAL);

    /* On a fiber of a thread with no pool bound: inline, on the fiber. */
    inline_case c = {.ctx = &ctx, .work = {.in = 4}};
    start_fiber(&h, run_blocking_on_fiber, &c);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.work.out, 29);
    assert_true(c.work.on_fiber);

    /* Bound, but from the loop's scheduler (a hook, a callback): inline. */
    shoal_side_bind_thread(h.pool, h.inbox);
    work = (computed_work){.in = 5};
    assert_int_equal(shoal_ctx_run_blocking(&ctx, compute, &work), 0);
    assert_int_equal(work.out, 36);
    assert_true(pthread_equal(work.ran_on, pthread_self()));
    assert_int_equal(stats_of(&h).ran, 0);

    /* Bound and on a fiber: the pool. */
    c = (inline_case){.ctx = &ctx, .work = {.in = 6}};
    start_fiber(&h, run_blocking_on_fiber, &c);
    assert_int_equal(c.done, 0);
    turn_until(&h, &c.done, 1);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.work.out, 43);
    assert_false(pthread_equal(c.work.ran_on, pthread_self()));
    assert_int_equal(stats_of(&h).ran, 1);

    /* Past the request's deadline nothing starts, inline or not. */
    ctx.deadline_ns = 1;
    work = (computed_work){.in = 7};
    errno = 0;
    assert_int_equal(shoal_ctx_run_blocking(&ctx, compute, &work), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(work.out, 0);
    c = (inline_case){.ctx = &ctx, .work = {.in = 8}};
    start_fiber(&h, run_blocking_on_fiber, &c);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.rc, -1);
    assert_int_equal(c.work.out, 0);
    assert_int_equal(stats_of(&h).ran, 1);
    harness_close(&h);
}

/* ---- argon2id goes to the pool ---------------------------------------------- */

typedef struct password_case {
    shoal_password *passwords;
    char hash[SHOAL_PASSWORD_HASH_SIZE];
    shoal_password_status hashed, right, wrong;
    int done;
} password_case;

static void hash_and_verify(void *arg)
{
    password_case *c = arg;
    c->hashed = shoal_password_hash(c->passwords, "correct horse", 13, c->hash);
    c->right = shoal_password_verify(c->passwords, c->hash, "correct horse", 13);
    c->wrong = shoal_password_verify(c->passwords, c->hash, "battery staple", 14);
    c->done++;
}

static void test_password_hashing_goes_to_the_pool(void **state)
{
    (void)state;
    harness h;
    harness_open(&h, 2);
    shoal_password_config config = {.ops_limit = 1, .mem_limit = 64 * 1024, .concurrency = 2, .queue_timeout_ms = 1000};
    password_case c = {.passwords = shoal_password_new(&config)};
    assert_non_null(c.passwords);

    /* No pool bound: on the fiber itself, as in today's model. */
    start_fiber(&h, hash_and_verify, &c);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.hashed, SHOAL_PASSWORD_OK);
    assert_int_equal(c.right, SHOAL_PASSWORD_OK);
    assert_int_equal(c.wrong, SHOAL_PASSWORD_MISMATCH);
    assert_int_equal(stats_of(&h).ran, 0);

    shoal_side_bind_thread(h.pool, h.inbox);
    c = (password_case){.passwords = c.passwords};
    start_fiber(&h, hash_and_verify, &c);
    assert_int_equal(c.done, 0);
    turn_until(&h, &c.done, 1);
    assert_int_equal(c.hashed, SHOAL_PASSWORD_OK);
    assert_int_equal(c.right, SHOAL_PASSWORD_OK);
    assert_int_equal(c.wrong, SHOAL_PASSWORD_MISMATCH);
    assert_int_equal(stats_of(&h).ran, 3);
    assert_int_equal(shoal_password_in_progress(c.passwords), 0);
    shoal_password_free(c.passwords);
    harness_close(&h);
}

/* ---- signals ------------------------------------------------------------------ */

typedef struct mask_case {
    harness *h;
    int rc;
    int done;
    bool term_blocked, int_blocked;
} mask_case;

static void read_signal_mask(void *arg)
{
    mask_case *c = arg;
    sigset_t mask;
    if (pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0) {
        c->term_blocked = sigismember(&mask, SIGTERM) == 1;
        c->int_blocked = sigismember(&mask, SIGINT) == 1;
    }
}

static void submit_mask_reading(void *arg)
{
    mask_case *c = arg;
    c->rc = shoal_side_pool_run(c->h->pool, c->h->inbox, 0, read_signal_mask, c);
    c->done++;
}

/* Signals are the main thread's (runtime.c's sigwait): a pool thread
 * blocks them even when the thread that made the pool did not. */
static void test_pool_threads_block_signals(void **state)
{
    (void)state;
    sigset_t mine;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &mine), 0);
    assert_int_equal(sigismember(&mine, SIGTERM), 0);
    harness h;
    harness_open(&h, 1);
    mask_case c = {.h = &h};
    start_fiber(&h, submit_mask_reading, &c);
    turn_until(&h, &c.done, 1);
    assert_int_equal(c.rc, 0);
    assert_true(c.term_blocked);
    assert_true(c.int_blocked);
    /* and the creator's mask is as it was */
    sigset_t after;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    assert_int_equal(sigismember(&after, SIGTERM), 0);
    harness_close(&h);
}

/* ---- arguments ---------------------------------------------------------------- */

static void test_pool_arguments(void **state)
{
    (void)state;
    errno = 0;
    assert_null(shoal_side_pool_create(0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(shoal_side_pool_create(SHOAL_SIDE_POOL_MAX_THREADS + 1));
    assert_int_equal(errno, EINVAL);
    shoal_side_pool *pool = shoal_side_pool_create(3);
    assert_non_null(pool);
    shoal_side_pool_destroy(pool); /* idle threads are woken and joined */
    shoal_side_pool_destroy(NULL);
    shoal_side_inbox_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_arguments),
        cmocka_unit_test(test_loop_turns_while_work_blocks),
        cmocka_unit_test(test_many_fibers_get_their_own_results),
        cmocka_unit_test(test_drain_resumes_in_finishing_order),
        cmocka_unit_test(test_destroy_finishes_queued_work_and_refuses_new),
        cmocka_unit_test(test_deadline_passed_in_queue),
        cmocka_unit_test(test_inline_without_a_loop),
        cmocka_unit_test(test_password_hashing_goes_to_the_pool),
        cmocka_unit_test(test_pool_threads_block_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
