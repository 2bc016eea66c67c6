/* tests/unit/node/lib/fiber_test.c: node/lib/fiber.c. Built twice: as
 * unit.node.lib.fiber against libshoal (on x86-64 its own context switch)
 * and as unit.node.lib.fiber_ucontext with fiber.c compiled for the
 * ucontext fallback of other architectures. The deaths (a stack overflow,
 * a misuse) happen in a forked child whose stderr and signal are checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber.h"

#define KIB ((size_t)1024)
#define LARGE_LOCALS (256 * KIB)

/* ---- running a fiber to its end ------------------------------------- */

static size_t resume_until_done(shoal_fiber *fiber)
{
    size_t suspensions = 0;
    while (shoal_fiber_resume(fiber))
        suspensions++;
    return suspensions;
}

static void test_pool_arguments(void **state)
{
    (void)state;
    errno = 0;
    assert_null(shoal_fiber_pool_create(SHOAL_FIBER_STACK_MIN - 1, 4));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(shoal_fiber_pool_create(64 * KIB, 0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(shoal_fiber_pool_create((size_t)2 << 30, 4));
    assert_int_equal(errno, EINVAL);

    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    shoal_fiber_pool *pool = shoal_fiber_pool_create(20000, 4);
    assert_non_null(pool);
    assert_int_equal(shoal_fiber_pool_stack_size(pool), (20000 + page - 1) / page * page);
    assert_int_equal(shoal_fiber_pool_stacks(pool), 0);
    shoal_fiber_pool_destroy(pool);
    shoal_fiber_pool_destroy(NULL);
}

/* ---- who runs, in which order, with which values --------------------- */

struct current_probe {
    shoal_fiber *seen[3];
    int arg_seen;
};

static void probe_current(void *arg)
{
    struct current_probe *probe = arg;
    probe->arg_seen = 42;
    probe->seen[0] = shoal_fiber_current();
    shoal_fiber_suspend();
    probe->seen[1] = shoal_fiber_current();
    shoal_fiber_suspend();
    probe->seen[2] = shoal_fiber_current();
}

static void test_current_fiber_and_resume_results(void **state)
{
    (void)state;
    shoal_fiber_pool *pool = shoal_fiber_pool_create(64 * KIB, 2);
    assert_non_null(pool);
    struct current_probe probe = {{NULL}, 0};
    assert_null(shoal_fiber_current());
    shoal_fiber *fiber = shoal_fiber_new(pool, probe_current, &probe);
    assert_non_null(fiber);
    assert_int_equal(probe.arg_seen, 0); /* not run before the first resume */
    assert_true(shoal_fiber_resume(fiber));
    assert_null(shoal_fiber_current());
    assert_ptr_equal(probe.seen[0], fiber);
    assert_true(shoal_fiber_resume(fiber));
    assert_false(shoal_fiber_resume(fiber));
    assert_ptr_equal(probe.seen[1], fiber);
    assert_ptr_equal(probe.seen[2], fiber);
    assert_int_equal(probe.arg_seen, 42);
    assert_null(shoal_fiber_current());
    shoal_fiber_pool_destroy(pool);
}

#define INTERLEAVED 64
#define LOG_CAP (INTERLEAVED * 16)

static int order_log[LOG_CAP];
static size_t order_log_length;

struct stepper {
    int id;
    int steps;
    uint64_t value; /* a hash of everything it saw, kept in its frame */
};

static uint64_t step_hash(uint64_t value, int id, int step)
{
    return value * 1099511628211u + (uint64_t)id * 31u + (uint64_t)step;
}

static void stepper_run(void *arg)
{
    struct stepper *self = arg;
    uint64_t value = 14695981039346656037u;
    for (int step = 0; step < self->steps; step++) {
        order_log[order_log_length++] = self->id * 100 + step;
        value = step_hash(value, self->id, step);
        shoal_fiber_suspend();
    }
    self->value = value;
}

static void test_many_fibers_interleave_in_order(void **state)
{
    (void)state;
    shoal_fiber_pool *pool = shoal_fiber_pool_create(32 * KIB, INTERLEAVED);
    assert_non_null(pool);
    struct stepper steppers[INTERLEAVED];
    shoal_fiber *fibers[INTERLEAVED];
    bool alive[INTERLEAVED];
    int resumes[INTERLEAVED] = {0};
    order_log_length = 0;
    for (int i = 0; i < INTERLEAVED; i++) {
        steppers[i] = (struct stepper){.id = i, .steps = 1 + i % 7, .value = 0};
        fibers[i] = shoal_fiber_new(pool, stepper_run, &steppers[i]);
        assert_non_null(fibers[i]);
        alive[i] = true;
    }
    for (bool any = true; any;) {
        any = false;
        for (int i = 0; i < INTERLEAVED; i++) {
            if (!alive[i])
                continue;
            resumes[i]++;
            alive[i] = shoal_fiber_resume(fibers[i]);
            any = any || alive[i];
        }
    }
    /* Round r logged, in the scheduler's order, every fiber with more than
     * r steps; each needed one resume per step and one to return. */
    size_t at = 0;
    for (int round = 0; round < 7; round++)
        for (int i = 0; i < INTERLEAVED; i++)
            if (round < steppers[i].steps) {
                assert_true(at < order_log_length);
                assert_int_equal(order_log[at], i * 100 + round);
                at++;
            }
    assert_int_equal(at, order_log_length);
    for (int i = 0; i < INTERLEAVED; i++) {
        assert_int_equal(resumes[i], steppers[i].steps + 1);
        uint64_t expected = 14695981039346656037u;
        for (int step = 0; step < steppers[i].steps; step++)
            expected = step_hash(expected, i, step);
        assert_true(steppers[i].value == expected);
    }
    assert_int_equal(shoal_fiber_pool_stacks(pool), INTERLEAVED);
    shoal_fiber_pool_destroy(pool);
}

/* ---- stacks come back ------------------------------------------------ */

static void record_frame(void *arg)
{
    *(void **)arg = __builtin_frame_address(0);
    shoal_fiber_suspend();
}

static void test_stacks_are_reused(void **state)
{
    (void)state;
    shoal_fiber_pool *pool = shoal_fiber_pool_create(32 * KIB, 16);
    assert_non_null(pool);
    void *first_frame = NULL;
    for (int i = 0; i < 10000; i++) {
        void *frame = NULL;
        shoal_fiber *fiber = shoal_fiber_new(pool, record_frame, &frame);
        assert_non_null(fiber);
        assert_int_equal(resume_until_done(fiber), 1);
        if (i == 0)
            first_frame = frame;
        /* The same stack, the same depth: the very same frame. */
        assert_ptr_equal(frame, first_frame);
    }
    assert_int_equal(shoal_fiber_pool_stacks(pool), 1);

    /* 16 alive at once, 625 times over: 16 stacks, never more. */
    void *frames[16];
    shoal_fiber *fibers[16];
    for (int round = 0; round < 625; round++) {
        for (int i = 0; i < 16; i++) {
            fibers[i] = shoal_fiber_new(pool, record_frame, &frames[i]);
            assert_non_null(fibers[i]);
            assert_true(shoal_fiber_resume(fibers[i]));
        }
        for (int i = 0; i < 16; i++)
            assert_false(shoal_fiber_resume(fibers[i]));
    }
    assert_int_equal(shoal_fiber_pool_stacks(pool), 16);

    /* At max_fibers alive, no more; one returning makes room again. */
    for (int i = 0; i < 16; i++) {
        fibers[i] = shoal_fiber_new(pool, record_frame, &frames[i]);
        assert_true(shoal_fiber_resume(fibers[i]));
    }
    errno = 0;
    assert_null(shoal_fiber_new(pool, record_frame, &frames[0]));
    assert_int_equal(errno, EAGAIN);
    assert_false(shoal_fiber_resume(fibers[3]));
    fibers[3] = shoal_fiber_new(pool, record_frame, &frames[3]);
    assert_non_null(fibers[3]);
    for (int i = 0; i < 16; i++)
        assert_int_equal(resume_until_done(fibers[i]), i == 3 ? 1 : 0);
    assert_int_equal(shoal_fiber_pool_stacks(pool), 16);
    shoal_fiber_pool_destroy(pool);
}

/* Destroying a pool with a fiber still suspended frees its stack (valgrind
 * and LeakSanitizer would see a leak otherwise). */
static void test_destroy_with_a_suspended_fiber(void **state)
{
    (void)state;
    shoal_fiber_pool *pool = shoal_fiber_pool_create(32 * KIB, 2);
    assert_non_null(pool);
    void *frame = NULL;
    shoal_fiber *fiber = shoal_fiber_new(pool, record_frame, &frame);
    assert_true(shoal_fiber_resume(fiber));
    shoal_fiber_pool_destroy(pool);
}

/* ---- registers and floating point survive switches ------------------- */

#if defined(__x86_64__)
/* registers_across(call, seed): loads rbx, rbp, r12-r15 with seed,
 * seed + 1, ..., seed + 5, calls call(), and returns the OR of each
 * register XOR what it held before: 0 when all six survived. The caller's
 * own values are saved around it, as the ABI requires. */
uint64_t fiber_test_registers_across(void (*call)(void), uint64_t seed);
__asm__(".text\n"
        ".globl fiber_test_registers_across\n"
        ".type fiber_test_registers_across, @function\n"
        "fiber_test_registers_across:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    movq %rsi, (%rsp)\n"
        "    movq %rsi, %rbx\n"
        "    leaq 1(%rsi), %rbp\n"
        "    leaq 2(%rsi), %r12\n"
        "    leaq 3(%rsi), %r13\n"
        "    leaq 4(%rsi), %r14\n"
        "    leaq 5(%rsi), %r15\n"
        "    call *%rdi\n"
        "    movq (%rsp), %rsi\n"
        "    movq %rbx, %rax\n"
        "    xorq %rsi, %rax\n"
        "    leaq 1(%rsi), %rcx\n"
        "    xorq %rbp, %rcx\n"
        "    orq %rcx, %rax\n"
        "    leaq 2(%rsi), %rcx\n"
        "    xorq %r12, %rcx\n"
        "    orq %rcx, %rax\n"
        "    leaq 3(%rsi), %rcx\n"
        "    xorq %r13, %rcx\n"
        "    orq %rcx, %rax\n"
        "    leaq 4(%rsi), %rcx\n"
        "    xorq %r14, %rcx\n"
        "    orq %rcx, %rax\n"
        "    leaq 5(%rsi), %rcx\n"
        "    xorq %r15, %rcx\n"
        "    orq %rcx, %rax\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size fiber_test_registers_across, .-fiber_test_registers_across\n");

struct register_fiber {
    uint64_t seed;
    uint64_t differences;
};

static void registers_fiber_run(void *arg)
{
    struct register_fiber *self = arg;
    for (int i = 0; i < 3; i++)
        self->differences |= fiber_test_registers_across(shoal_fiber_suspend, self->seed + (uint64_t)i * 16);
}

static shoal_fiber *register_fiber_to_resume;
static bool register_fiber_alive;

static void resume_register_fiber(void)
{
    register_fiber_alive = shoal_fiber_resume(register_fiber_to_resume);
}
#endif

static void test_callee_saved_registers_survive(void **state)
{
    (void)state;
#if defined(__x86_64__)
    shoal_fiber_pool *pool = shoal_fiber_pool_create(32 * KIB, 4);
    assert_non_null(pool);
    struct register_fiber selves[4];
    shoal_fiber *fibers[4];
    for (int i = 0; i < 4; i++) {
        selves[i] = (struct register_fiber){.seed = 0x1111111111111111u * (uint64_t)(i + 1), .differences = 0};
        fibers[i] = shoal_fiber_new(pool, registers_fiber_run, &selves[i]);
        assert_true(shoal_fiber_resume(fibers[i]));
    }
    /* The scheduler holds values of its own in the same registers while it
     * resumes each fiber; both sides must find theirs again. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 4; i++) {
            register_fiber_to_resume = fibers[i];
            uint64_t seed = 0xa0a0a0a0a0a0a0a0u + (uint64_t)(round * 4 + i) * 64;
            assert_true(fiber_test_registers_across(resume_register_fiber, seed) == 0);
            assert_int_equal(register_fiber_alive, round < 2);
        }
    for (int i = 0; i < 4; i++)
        assert_true(selves[i].differences == 0);
    shoal_fiber_pool_destroy(pool);
#else
    skip();
#endif
}

struct float_fiber {
    int mode;
    int mode_lost;      /* times fegetround() was not its mode after a switch */
    long rounded[4];    /* lrint and lrintl of 2.5 and -2.5, in its mode */
    double sum;         /* computed across suspends, checked by the scheduler */
    long double product;
};

static volatile double two_and_a_half = 2.5;

static void rounded_in_current_mode(long out[4])
{
    out[0] = lrint(two_and_a_half);
    out[1] = lrint(-two_and_a_half);
    out[2] = lrintl((long double)two_and_a_half);
    out[3] = lrintl(-(long double)two_and_a_half);
}

static void float_fiber_run(void *arg)
{
    struct float_fiber *self = arg;
    fesetround(self->mode);
    double sum = 0;
    long double product = 1;
    for (int i = 1; i <= 20; i++) {
        sum += sqrt((double)i) / (double)(i + 1);
        product *= 1.0L + 1.0L / (long double)i;
        shoal_fiber_suspend();
        if (fegetround() != self->mode)
            self->mode_lost++;
    }
    rounded_in_current_mode(self->rounded);
    self->sum = sum;
    self->product = product;
}

/* What float_fiber_run computes, straight through on the scheduler. */
static void float_expected(int mode, long rounded[4], double *sum, long double *product)
{
    int saved = fegetround();
    fesetround(mode);
    *sum = 0;
    *product = 1;
    for (int i = 1; i <= 20; i++) {
        *sum += sqrt((double)i) / (double)(i + 1);
        *product *= 1.0L + 1.0L / (long double)i;
    }
    rounded_in_current_mode(rounded);
    fesetround(saved);
}

static void test_floating_point_state_survives(void **state)
{
    (void)state;
    const int modes[4] = {FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO, FE_TONEAREST};
    shoal_fiber_pool *pool = shoal_fiber_pool_create(32 * KIB, 4);
    assert_non_null(pool);
    struct float_fiber selves[4];
    shoal_fiber *fibers[4];
    for (int i = 0; i < 4; i++) {
        selves[i] = (struct float_fiber){.mode = modes[i]};
        fibers[i] = shoal_fiber_new(pool, float_fiber_run, &selves[i]);
    }
    /* The scheduler rounds its own way meanwhile, and keeps it. */
    fesetround(FE_DOWNWARD);
    for (bool any = true; any;) {
        any = false;
        for (int i = 0; i < 4; i++) {
            if (fibers[i] == NULL)
                continue;
            if (!shoal_fiber_resume(fibers[i]))
                fibers[i] = NULL;
            assert_int_equal(fegetround(), FE_DOWNWARD);
            any = true;
        }
    }
    fesetround(FE_TONEAREST);
    for (int i = 0; i < 4; i++) {
        long rounded[4];
        double sum;
        long double product;
        float_expected(modes[i], rounded, &sum, &product);
        assert_int_equal(selves[i].mode_lost, 0);
        for (int k = 0; k < 4; k++)
            assert_int_equal(selves[i].rounded[k], rounded[k]);
        assert_true(selves[i].sum == sum);
        assert_true(selves[i].product == product);
    }
    /* The modes really differ (2.5 upward is 3, downward 2). */
    assert_int_equal(selves[0].rounded[0], 3);
    assert_int_equal(selves[1].rounded[1], -3);
    shoal_fiber_pool_destroy(pool);
}

/* ---- large locals, and the guard ------------------------------------- */

/* 256 KiB of locals, written from the lowest address up (where an
 * overflowing frame lands first), kept across a suspend and summed. */
static __attribute__((noinline)) unsigned long large_locals(unsigned seed)
{
    volatile unsigned char buffer[LARGE_LOCALS];
    for (size_t i = 0; i < sizeof buffer; i++)
        buffer[i] = (unsigned char)(seed + i * 7);
    shoal_fiber_suspend();
    unsigned long sum = 0;
    for (size_t i = 0; i < sizeof buffer; i++)
        sum += buffer[i];
    return sum;
}

static unsigned long large_locals_expected(unsigned seed)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < LARGE_LOCALS; i++)
        sum += (unsigned char)(seed + i * 7);
    return sum;
}

struct large_fiber {
    unsigned seed;
    unsigned long sum;
};

static void large_fiber_run(void *arg)
{
    struct large_fiber *self = arg;
    self->sum = large_locals(self->seed);
}

static void test_large_locals_fit_a_large_stack(void **state)
{
    (void)state;
    shoal_fiber_pool *pool = shoal_fiber_pool_create(512 * KIB, 2);
    assert_non_null(pool);
    struct large_fiber a = {.seed = 3}, b = {.seed = 11};
    shoal_fiber *fa = shoal_fiber_new(pool, large_fiber_run, &a);
    shoal_fiber *fb = shoal_fiber_new(pool, large_fiber_run, &b);
    assert_true(shoal_fiber_resume(fa));
    assert_true(shoal_fiber_resume(fb));
    assert_false(shoal_fiber_resume(fa));
    assert_false(shoal_fiber_resume(fb));
    assert_true(a.sum == large_locals_expected(3));
    assert_true(b.sum == large_locals_expected(11));
    shoal_fiber_pool_destroy(pool);
}

/* Runs body in a forked child with stderr into a pipe; returns the wait
 * status, the child's stderr in output. The child never returns. It starts
 * with SIGSEGV's default action: cmocka's handler, there while a test
 * runs, would carry on with the remaining tests inside the child. */
static int run_child(void (*body)(void), char *output, size_t cap)
{
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    fflush(NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        signal(SIGSEGV, SIG_DFL);
        dup2(pipe_fds[1], STDERR_FILENO);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        body();
        _exit(3); /* the body should have died */
    }
    close(pipe_fds[1]);
    size_t length = 0;
    for (;;) {
        ssize_t got = read(pipe_fds[0], output + length, cap - 1 - length);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        length += (size_t)got;
        if (length == cap - 1)
            break;
    }
    output[length] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return status;
}

static void overflow_on_this_thread(void)
{
    shoal_fiber_pool *pool = shoal_fiber_pool_create(64 * KIB, 2);
    if (pool == NULL)
        _exit(4);
    struct large_fiber fiber = {.seed = 5};
    shoal_fiber_resume(shoal_fiber_new(pool, large_fiber_run, &fiber));
}

static void *overflow_thread(void *arg)
{
    (void)arg;
    overflow_on_this_thread();
    return NULL;
}

/* A thread of its own: its own alternate signal stack must catch it. */
static void overflow_on_another_thread(void)
{
    shoal_fiber_pool *main_pool = shoal_fiber_pool_create(64 * KIB, 2);
    pthread_t thread;
    if (main_pool == NULL || pthread_create(&thread, NULL, overflow_thread, NULL) != 0)
        _exit(4);
    pthread_join(thread, NULL);
}

static void assert_overflow_reported(int status, const char *output)
{
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("the child did not abort (status %#x); its stderr: %s", status, output);
    if (strstr(output, "shoal: fiber stack overflow: a fiber ran past the end of its 65536-byte (64 KiB) stack") ==
            NULL ||
        strstr(output, "give fibers a larger stack size") == NULL)
        fail_msg("no overflow message on stderr: %s", output);
}

static void test_overflow_stops_with_a_message(void **state)
{
    (void)state;
    char output[8192];
    assert_overflow_reported(run_child(overflow_on_this_thread, output, sizeof output), output);
    assert_overflow_reported(run_child(overflow_on_another_thread, output, sizeof output), output);
}

/* A fault outside every guard (here a PROT_NONE page of the test's own,
 * from inside a fiber) is not ours: the handler that was there before gets
 * it, the default action or a handler of the program's. */
static void stray_fault_run(void *arg)
{
    *(volatile int *)arg = 1;
}

static void stray_fault_in_a_fiber(void)
{
    shoal_fiber_pool *pool = shoal_fiber_pool_create(64 * KIB, 2);
    void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pool == NULL || page == MAP_FAILED)
        _exit(4);
    shoal_fiber_resume(shoal_fiber_new(pool, stray_fault_run, page));
}

static void fault_with_the_default_action(void)
{
    signal(SIGSEGV, SIG_DFL);
    stray_fault_in_a_fiber();
}

static void previous_handler(int signal_number, siginfo_t *info, void *context)
{
    (void)context;
    static const char line[] = "previous handler: SIGSEGV\n";
    if (signal_number == SIGSEGV && info->si_addr != NULL)
        (void)!write(STDERR_FILENO, line, sizeof line - 1);
    /* A death of its own, not an exit status: valgrind turns the status of
     * a process with errors (this deliberate invalid write is one) into 99. */
    signal(SIGUSR2, SIG_DFL);
    raise(SIGUSR2);
}

static void fault_with_a_handler_before(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = previous_handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, NULL) != 0)
        _exit(4);
    stray_fault_in_a_fiber();
}

static void test_other_faults_go_to_the_previous_handler(void **state)
{
    (void)state;
    char output[8192];
    int status = run_child(fault_with_the_default_action, output, sizeof output);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV || strstr(output, "overflow") != NULL)
        fail_msg("expected death by SIGSEGV and no overflow message, status %#x; stderr: %s", status, output);
    status = run_child(fault_with_a_handler_before, output, sizeof output);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGUSR2 ||
        strncmp(output, "previous handler: SIGSEGV\n", strlen("previous handler: SIGSEGV\n")) != 0)
        fail_msg("expected the previous handler's SIGUSR2, status %#x; stderr: %s", status, output);
}

static void suspend_outside_a_fiber(void)
{
    shoal_fiber_suspend();
}

static void nested_resume_run(void *arg)
{
    shoal_fiber_resume(arg);
}

static void resume_inside_a_fiber(void)
{
    shoal_fiber_pool *pool = shoal_fiber_pool_create(64 * KIB, 2);
    if (pool == NULL)
        _exit(4);
    void *frame;
    shoal_fiber *other = shoal_fiber_new(pool, record_frame, &frame);
    shoal_fiber_resume(shoal_fiber_new(pool, nested_resume_run, other));
}

static void test_misuse_stops_with_a_message(void **state)
{
    (void)state;
    char output[8192];
    int status = run_child(suspend_outside_a_fiber, output, sizeof output);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(output, "shoal: fiber misuse: shoal_fiber_suspend called outside a fiber"));
    status = run_child(resume_inside_a_fiber, output, sizeof output);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(output, "shoal: fiber misuse: shoal_fiber_resume called from inside a fiber"));
}

/* ---- the sanitizers know where a fiber's stack is -------------------- */

/* A longjmp inside a fiber, with fibers suspended around it: the compiler
 * has AddressSanitizer unpoison the stack before every noreturn call, and
 * without the switch annotations it does not know which stack that is
 * ("ASan is ignoring requested __asan_handle_no_return ... False positive
 * error reports may follow"). Checked on the child's stderr, which must
 * stay empty; the other builds run the same code. */
static __attribute__((noinline)) int nested_locals(int depth, volatile char *outer)
{
    volatile char local[64];
    memset((char *)local, depth, sizeof local);
    if (depth == 0)
        return local[3] + outer[0];
    return nested_locals(depth - 1, local) + local[5];
}

static void jumping_fiber_run(void *arg)
{
    jmp_buf back;
    volatile char mine[100];
    volatile int jumps = 0;
    memset((char *)mine, 1, sizeof mine);
    if (setjmp(back) == 0) {
        shoal_fiber_suspend();
        nested_locals(20, mine);
        longjmp(back, 1);
    }
    jumps++;
    shoal_fiber_suspend();
    *(int *)arg = mine[7] + jumps + nested_locals(10, mine);
}

static void jumps_in_fibers(void)
{
    enum { COUNT = 50 };
    shoal_fiber_pool *pool = shoal_fiber_pool_create(64 * KIB, COUNT);
    if (pool == NULL)
        _exit(4);
    int results[COUNT];
    shoal_fiber *fibers[COUNT];
    for (int i = 0; i < COUNT; i++) {
        fibers[i] = shoal_fiber_new(pool, jumping_fiber_run, &results[i]);
        if (fibers[i] == NULL || !shoal_fiber_resume(fibers[i]))
            _exit(5);
    }
    volatile char scheduler_local[8] = {0};
    for (int alive = COUNT; alive > 0;)
        for (int i = 0; i < COUNT; i++)
            if (fibers[i] != NULL && !shoal_fiber_resume(fibers[i])) {
                fibers[i] = NULL;
                alive--;
                nested_locals(30, scheduler_local);
            }
    for (int i = 0; i < COUNT; i++)
        if (results[i] != 1 + 1 + nested_locals(10, (volatile char[1]){1}))
            _exit(6);
    shoal_fiber_pool_destroy(pool);
    _exit(0);
}

static void test_sanitizers_follow_the_switches(void **state)
{
    (void)state;
    char output[8192];
    int status = run_child(jumps_in_fibers, output, sizeof output);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || output[0] != '\0')
        fail_msg("status %#x; stderr: %s", status, output);
}

/* ---- one pool per thread --------------------------------------------- */

struct thread_run {
    int id;
    uint64_t total;
    bool current_ok;
};

struct counter_fiber {
    struct thread_run *thread;
    int k;
};

static void counter_fiber_run(void *arg)
{
    struct counter_fiber *self = arg;
    shoal_fiber *me = shoal_fiber_current();
    for (int i = 0; i < 100; i++) {
        self->thread->total += (uint64_t)(self->thread->id * 1000 + self->k);
        shoal_fiber_suspend();
        if (shoal_fiber_current() != me)
            self->thread->current_ok = false;
    }
}

static void *thread_with_a_pool(void *arg)
{
    struct thread_run *run = arg;
    shoal_fiber_pool *pool = shoal_fiber_pool_create(32 * KIB, 8);
    if (pool == NULL)
        return NULL;
    struct counter_fiber selves[8];
    shoal_fiber *fibers[8];
    for (int k = 0; k < 8; k++) {
        selves[k] = (struct counter_fiber){.thread = run, .k = k};
        fibers[k] = shoal_fiber_new(pool, counter_fiber_run, &selves[k]);
    }
    for (int alive = 8; alive > 0;) {
        for (int k = 0; k < 8; k++) {
            if (fibers[k] != NULL && !shoal_fiber_resume(fibers[k])) {
                fibers[k] = NULL;
                alive--;
            }
            sched_yield(); /* let the other thread's switches interleave */
        }
    }
    shoal_fiber_pool_destroy(pool);
    return run;
}

static void test_pools_on_two_threads(void **state)
{
    (void)state;
    struct thread_run runs[2] = {{.id = 1, .current_ok = true}, {.id = 2, .current_ok = true}};
    pthread_t threads[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, thread_with_a_pool, &runs[t]), 0);
    for (int t = 0; t < 2; t++) {
        void *result = NULL;
        assert_int_equal(pthread_join(threads[t], &result), 0);
        assert_ptr_equal(result, &runs[t]);
        uint64_t expected = 0;
        for (int k = 0; k < 8; k++)
            expected += 100u * (uint64_t)(runs[t].id * 1000 + k);
        assert_true(runs[t].total == expected);
        assert_true(runs[t].current_ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_arguments),
        cmocka_unit_test(test_current_fiber_and_resume_results),
        cmocka_unit_test(test_many_fibers_interleave_in_order),
        cmocka_unit_test(test_stacks_are_reused),
        cmocka_unit_test(test_destroy_with_a_suspended_fiber),
        cmocka_unit_test(test_callee_saved_registers_survive),
        cmocka_unit_test(test_floating_point_state_survives),
        cmocka_unit_test(test_large_locals_fit_a_large_stack),
        cmocka_unit_test(test_overflow_stops_with_a_message),
        cmocka_unit_test(test_other_faults_go_to_the_previous_handler),
        cmocka_unit_test(test_misuse_stops_with_a_message),
        cmocka_unit_test(test_sanitizers_follow_the_switches),
        cmocka_unit_test(test_pools_on_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
