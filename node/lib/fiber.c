/* node/lib/fiber.c: a worker thread's pool of fibers (fiber.h).
 *
 * The switch. On x86-64 a few instructions of our own
 * (shoal_fiber_switch_x86_64 below): the callee-saved registers of the
 * System V ABI (rbx, rbp, r12-r15), the MXCSR and the x87 control word
 * (their control bits are callee-saved too: a fiber keeps its rounding
 * mode) are pushed on the stack being left, its stack pointer is stored,
 * and the other stack's pointer is loaded and popped the same way. Everything else is
 * caller-saved, so the compiler already keeps it around the call. No
 * signal mask is saved: swapcontext() makes a sigprocmask system call on
 * every switch, which is what this avoids (tests/load/fiber_bench.c
 * measures both). Other architectures, or -DSHOAL_FIBER_UCONTEXT, use
 * ucontext (getcontext/makecontext/swapcontext): correct, slower.
 *
 * The sanitizers. AddressSanitizer follows a switch only when told
 * (__sanitizer_start_switch_fiber before, __sanitizer_finish_switch_fiber
 * after, with each side's fake stack for use-after-return detection);
 * without that it takes a fiber's frames for overflows of the thread's
 * stack. valgrind learns each stack (VALGRIND_STACK_REGISTER), or it takes
 * a switch for a huge frame.
 *
 * The guard. Below each stack lies SHOAL_FIBER_GUARD_BYTES of PROT_NONE.
 * A fault there cannot run a handler on the overflowing stack, so each
 * thread with a pool gets an alternate signal stack, and the SIGSEGV
 * handler, when the address lies in the running fiber's guard, writes one
 * line with write(2) (async-signal-safe, unlike stdio) and aborts. Every
 * other fault goes to the handler that was there before (the default, or
 * AddressSanitizer's). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FIBER_ASAN)
#define FIBER_ASAN 1
#endif
#ifdef FIBER_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* node/CMakeLists.txt defines it when Debian's valgrind (valgrind.h) is
 * installed; the requests are a few no-op instructions outside valgrind. */
#ifdef SHOAL_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#if defined(__x86_64__) && !defined(SHOAL_FIBER_UCONTEXT)
#define FIBER_SWITCH_X86_64 1
#else
#include <ucontext.h>
#endif

#include "fiber.h"

#define STACK_MAX ((size_t)1 << 30)
#define FIBERS_MAX ((size_t)1 << 20)
/* The alternate signal stack: the guard handler needs little, a chained
 * handler (AddressSanitizer's report) more. */
#define ALTSTACK_BYTES ((size_t)64 * 1024)

struct shoal_fiber {
    shoal_fiber_pool *pool;
    shoal_fiber *next_free;
    shoal_fiber_fn fn;
    void *arg;
    unsigned char *mapping; /* the guard, then the stack */
    unsigned char *stack;   /* its lowest usable byte */
    bool finished;
#ifdef FIBER_SWITCH_X86_64
    void *sp;
#else
    ucontext_t context;
#endif
#ifdef FIBER_ASAN
    void *fake_stack;
#endif
#ifdef SHOAL_HAVE_VALGRIND_H
    unsigned valgrind_stack;
#endif
};

struct shoal_fiber_pool {
    size_t stack_size;
    size_t max_fibers;
    size_t stacks; /* mapped so far: the first ones of all[] */
    shoal_fiber **all;
    shoal_fiber *free; /* stacks whose fiber returned, latest first */
#ifdef FIBER_SWITCH_X86_64
    void *scheduler_sp;
#else
    ucontext_t scheduler;
#endif
#ifdef FIBER_ASAN
    void *scheduler_fake_stack;
    const void *scheduler_stack_bottom;
    size_t scheduler_stack_size;
#endif
};

static _Thread_local shoal_fiber *fiber_current;

/* This thread's pools and the alternate signal stack one of them put in
 * place (NULL when the thread had one already, e.g. AddressSanitizer's). */
static _Thread_local struct {
    size_t pools;
    void *altstack;
} thread_fibers;

static struct sigaction previous_segv;
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the switch ---------------------------------------------------- */

#ifdef FIBER_SWITCH_X86_64
/* shoal_fiber_switch_x86_64(&save, load): what this file's first comment
 * says. The pushes and the pops are mirror images; stack_prepare lays out
 * a new stack the same way, with fiber_entry where the return address
 * goes. MXCSR and the control word are loaded only when they differ from
 * the side being left (rax and rcx are scratch): loading them costs more
 * than comparing, and nearly every switch finds them equal (about 2 of
 * 14 ns per switch on the 2-core machine). */
void shoal_fiber_switch_x86_64(void **save, void *load) __attribute__((visibility("hidden")));
__asm__(".text\n"
        ".globl shoal_fiber_switch_x86_64\n"
        ".hidden shoal_fiber_switch_x86_64\n"
        ".type shoal_fiber_switch_x86_64, @function\n"
        ".p2align 4\n"
        "shoal_fiber_switch_x86_64:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $16, %rsp\n"
        "    stmxcsr 8(%rsp)\n"
        "    fnstcw (%rsp)\n"
        "    movl 8(%rsp), %eax\n"
        "    movzwl (%rsp), %ecx\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    cmpl 8(%rsp), %eax\n"
        "    je 1f\n"
        "    ldmxcsr 8(%rsp)\n"
        "1:\n"
        "    cmpw (%rsp), %cx\n"
        "    je 2f\n"
        "    fldcw (%rsp)\n"
        "2:\n"
        "    addq $16, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size shoal_fiber_switch_x86_64, .-shoal_fiber_switch_x86_64\n");
#endif

static void switch_to_fiber(shoal_fiber_pool *pool, shoal_fiber *fiber)
{
#ifdef FIBER_SWITCH_X86_64
    shoal_fiber_switch_x86_64(&pool->scheduler_sp, fiber->sp);
#else
    if (swapcontext(&pool->scheduler, &fiber->context) != 0)
        abort(); /* only for a context that makecontext did not make */
#endif
}

static void switch_to_scheduler(shoal_fiber_pool *pool, shoal_fiber *fiber)
{
#ifdef FIBER_SWITCH_X86_64
    shoal_fiber_switch_x86_64(&fiber->sp, pool->scheduler_sp);
#else
    if (swapcontext(&fiber->context, &pool->scheduler) != 0)
        abort();
#endif
}

/* ---- messages the process stops with -------------------------------- */

static size_t text_append(char *out, size_t at, size_t cap, const char *text)
{
    while (*text != '\0' && at < cap)
        out[at++] = *text++;
    return at;
}

static size_t number_append(char *out, size_t at, size_t cap, uintptr_t value, unsigned base)
{
    char digits[64];
    size_t count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value != 0);
    while (count > 0 && at < cap)
        out[at++] = digits[--count];
    return at;
}

static void stderr_write(const char *text, size_t length)
{
    while (length > 0) {
        ssize_t written = write(STDERR_FILENO, text, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return;
        text += written;
        length -= (size_t)written;
    }
}

/* A misuse of the API (a resume from inside a fiber, a suspend outside
 * one) would corrupt the scheduler's context: stop before that. */
static void fiber_misuse(const char *what) __attribute__((noreturn));
static void fiber_misuse(const char *what)
{
    char line[256];
    size_t at = text_append(line, 0, sizeof line, "shoal: fiber misuse: ");
    at = text_append(line, at, sizeof line, what);
    at = text_append(line, at, sizeof line, "\n");
    stderr_write(line, at);
    abort();
}

/* ---- the guard's SIGSEGV handler ----------------------------------- */

static void stack_overflow_report(const shoal_fiber *fiber, uintptr_t address)
{
    size_t size = fiber->pool->stack_size;
    char line[320];
    size_t at = text_append(line, 0, sizeof line, "shoal: fiber stack overflow: a fiber ran past the end of its ");
    at = number_append(line, at, sizeof line, size, 10);
    at = text_append(line, at, sizeof line, "-byte (");
    at = number_append(line, at, sizeof line, size / 1024, 10);
    at = text_append(line, at, sizeof line, " KiB) stack, fault at 0x");
    at = number_append(line, at, sizeof line, address, 16);
    at = text_append(line, at, sizeof line, " in its guard page; give fibers a larger stack size\n");
    stderr_write(line, at);
}

static void guard_segv_handler(int signal_number, siginfo_t *info, void *context)
{
    const shoal_fiber *fiber = fiber_current;
    uintptr_t address = (uintptr_t)info->si_addr;
    if (fiber != NULL && address >= (uintptr_t)fiber->mapping && address < (uintptr_t)fiber->stack) {
        stack_overflow_report(fiber, address);
        abort();
    }
    if (previous_segv.sa_flags & SA_SIGINFO) {
        previous_segv.sa_sigaction(signal_number, info, context);
        return;
    }
    if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
        previous_segv.sa_handler(signal_number);
        return;
    }
    /* The default action: back to it, and the faulting instruction runs
     * again on return and takes it. A SIGSEGV sent by kill() has no
     * instruction to repeat; it is sent again (delivered after return). */
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGSEGV, &fallback, NULL);
    if (info->si_code <= 0)
        raise(SIGSEGV);
}

/* Puts the handler in place unless it is there already: checked at every
 * pool's creation, since whoever set SIGSEGV's action after us (a test
 * framework restoring its own, say) took ours away. What was there
 * becomes the previous handler; ours never does, or a stray fault would
 * chase its own tail. */
static int guard_install(void)
{
    int error = 0;
    pthread_mutex_lock(&guard_lock);
    struct sigaction present;
    if (sigaction(SIGSEGV, NULL, &present) != 0) {
        error = errno;
    } else if (!(present.sa_flags & SA_SIGINFO) || present.sa_sigaction != guard_segv_handler) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = guard_segv_handler;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        if (sigaction(SIGSEGV, &action, &present) != 0)
            error = errno;
        else
            previous_segv = present;
    }
    pthread_mutex_unlock(&guard_lock);
    return error;
}

/* An alternate signal stack for this thread unless it has one. */
static int thread_altstack_acquire(void)
{
    if (thread_fibers.pools++ > 0)
        return 0;
    stack_t present;
    if (sigaltstack(NULL, &present) != 0)
        goto failed;
    if (!(present.ss_flags & SS_DISABLE))
        return 0;
    void *memory = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (memory == MAP_FAILED)
        goto failed;
    stack_t ours = {.ss_sp = memory, .ss_size = ALTSTACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ours, NULL) != 0) {
        int error = errno;
        munmap(memory, ALTSTACK_BYTES);
        errno = error;
        goto failed;
    }
    thread_fibers.altstack = memory;
    return 0;
failed:
    thread_fibers.pools--;
    return -1;
}

static void thread_altstack_release(void)
{
    if (--thread_fibers.pools > 0 || thread_fibers.altstack == NULL)
        return;
    stack_t present;
    /* Someone may have put another in place since: leave theirs alone. */
    if (sigaltstack(NULL, &present) == 0 && present.ss_sp == thread_fibers.altstack) {
        stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        if (sigaltstack(&off, NULL) != 0)
            return; /* still in use: keep it mapped */
    }
    munmap(thread_fibers.altstack, ALTSTACK_BYTES);
    thread_fibers.altstack = NULL;
}

/* ---- the pool ------------------------------------------------------- */

static size_t page_size(void)
{
    long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? (size_t)size : 4096;
}

shoal_fiber_pool *shoal_fiber_pool_create(size_t stack_size, size_t max_fibers)
{
    if (stack_size < SHOAL_FIBER_STACK_MIN || stack_size > STACK_MAX || max_fibers == 0 ||
        max_fibers > FIBERS_MAX) {
        errno = EINVAL;
        return NULL;
    }
    int error = guard_install();
    if (error != 0) {
        errno = error;
        return NULL;
    }
    size_t page = page_size();
    shoal_fiber_pool *pool = calloc(1, sizeof *pool);
    shoal_fiber **all = calloc(max_fibers, sizeof *all);
    if (pool == NULL || all == NULL) {
        free(pool);
        free(all);
        errno = ENOMEM;
        return NULL;
    }
    if (thread_altstack_acquire() != 0) {
        error = errno;
        free(pool);
        free(all);
        errno = error;
        return NULL;
    }
    pool->stack_size = (stack_size + page - 1) / page * page;
    pool->max_fibers = max_fibers;
    pool->all = all;
    return pool;
}

static void stack_unmap(shoal_fiber_pool *pool, shoal_fiber *fiber)
{
#ifdef SHOAL_HAVE_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(fiber->valgrind_stack);
#endif
#ifdef FIBER_ASAN
    /* The shadow outlives the mapping: whatever maps these addresses next
     * must not inherit the redzones of a suspended fiber's frames. */
    __asan_unpoison_memory_region(fiber->stack, pool->stack_size);
#endif
    munmap(fiber->mapping, SHOAL_FIBER_GUARD_BYTES + pool->stack_size);
    free(fiber);
}

void shoal_fiber_pool_destroy(shoal_fiber_pool *pool)
{
    if (pool == NULL)
        return;
    if (fiber_current != NULL && fiber_current->pool == pool)
        fiber_misuse("shoal_fiber_pool_destroy called from one of the pool's fibers");
    for (size_t i = 0; i < pool->stacks; i++)
        stack_unmap(pool, pool->all[i]);
    free(pool->all);
    free(pool);
    thread_altstack_release();
}

size_t shoal_fiber_pool_stack_size(const shoal_fiber_pool *pool)
{
    return pool->stack_size;
}

size_t shoal_fiber_pool_stacks(const shoal_fiber_pool *pool)
{
    return pool->stacks;
}

/* ---- fibers --------------------------------------------------------- */

static shoal_fiber *stack_map(shoal_fiber_pool *pool)
{
    shoal_fiber *fiber = calloc(1, sizeof *fiber);
    if (fiber == NULL)
        return NULL;
    size_t length = SHOAL_FIBER_GUARD_BYTES + pool->stack_size;
    /* All of it PROT_NONE first, then the stack part opened: the guard is
     * never writable, not even for an instant. */
    unsigned char *mapping = mmap(NULL, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) {
        free(fiber);
        return NULL;
    }
    if (mprotect(mapping + SHOAL_FIBER_GUARD_BYTES, pool->stack_size, PROT_READ | PROT_WRITE) != 0) {
        munmap(mapping, length);
        free(fiber);
        return NULL;
    }
    fiber->pool = pool;
    fiber->mapping = mapping;
    fiber->stack = mapping + SHOAL_FIBER_GUARD_BYTES;
#ifdef SHOAL_HAVE_VALGRIND_H
    fiber->valgrind_stack = VALGRIND_STACK_REGISTER(fiber->stack, fiber->stack + pool->stack_size);
#endif
    return fiber;
}

/* The first code on a new fiber's stack, reached by the switch's return
 * (x86-64) or by makecontext's call. It has no locals of its own, so that
 * AddressSanitizer never needs a fake frame for it; it never returns. */
static void fiber_entry(void) __attribute__((noreturn));
static void fiber_entry(void)
{
    shoal_fiber *fiber = fiber_current;
    shoal_fiber_pool *pool = fiber->pool;
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(NULL, &pool->scheduler_stack_bottom, &pool->scheduler_stack_size);
#endif
    fiber->fn(fiber->arg);
    fiber->finished = true;
    fiber_current = NULL;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(NULL, pool->scheduler_stack_bottom, pool->scheduler_stack_size);
#endif
    switch_to_scheduler(pool, fiber);
    abort(); /* a finished fiber is never resumed */
}

#ifdef FIBER_SWITCH_X86_64
/* What shoal_fiber_switch_x86_64 pops, from the lowest address up: the x87
 * control word, MXCSR, r15, r14, r13, r12, rbx, rbp, then the address it
 * returns to. Above that one more slot, a zero where fiber_entry's return
 * address would be, so that the entry starts as a called function does
 * (rsp + 8 a multiple of 16) and a backtrace ends there. */
static void stack_prepare(shoal_fiber_pool *pool, shoal_fiber *fiber)
{
    uint32_t mxcsr;
    uint16_t x87_control;
    /* The scheduler's modes, as a called function would inherit them. */
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(x87_control));
    uintptr_t top = ((uintptr_t)fiber->stack + pool->stack_size) & ~(uintptr_t)15;
    uint64_t *slot = (uint64_t *)top;
    *--slot = 0;
    *--slot = (uint64_t)(uintptr_t)fiber_entry;
    for (int i = 0; i < 6; i++)
        *--slot = 0; /* rbp (0 ends frame-pointer walks), rbx, r12-r15 */
    *--slot = mxcsr;
    *--slot = x87_control;
    fiber->sp = slot;
}
#else
static void stack_prepare(shoal_fiber_pool *pool, shoal_fiber *fiber)
{
    if (getcontext(&fiber->context) != 0)
        abort(); /* cannot fail on Linux */
    fiber->context.uc_stack.ss_sp = fiber->stack;
    fiber->context.uc_stack.ss_size = pool->stack_size;
    fiber->context.uc_link = NULL;
    makecontext(&fiber->context, fiber_entry, 0);
}
#endif

shoal_fiber *shoal_fiber_new(shoal_fiber_pool *pool, shoal_fiber_fn fn, void *arg)
{
    shoal_fiber *fiber = pool->free;
    if (fiber != NULL) {
        pool->free = fiber->next_free;
    } else {
        if (pool->stacks == pool->max_fibers) {
            errno = EAGAIN;
            return NULL;
        }
        fiber = stack_map(pool);
        if (fiber == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        pool->all[pool->stacks++] = fiber;
    }
    fiber->next_free = NULL;
    fiber->fn = fn;
    fiber->arg = arg;
    fiber->finished = false;
#ifdef FIBER_ASAN
    fiber->fake_stack = NULL;
#endif
    stack_prepare(pool, fiber);
    return fiber;
}

bool shoal_fiber_resume(shoal_fiber *fiber)
{
    if (fiber_current != NULL)
        fiber_misuse("shoal_fiber_resume called from inside a fiber (only the scheduler resumes)");
    if (fiber->finished)
        fiber_misuse("shoal_fiber_resume of a fiber that has returned");
    shoal_fiber_pool *pool = fiber->pool;
    fiber_current = fiber;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(&pool->scheduler_fake_stack, fiber->stack, pool->stack_size);
#endif
    switch_to_fiber(pool, fiber);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(pool->scheduler_fake_stack, NULL, NULL);
#endif
    if (!fiber->finished)
        return true;
#ifdef FIBER_ASAN
    /* Every frame returned but fiber_entry's, which had nothing to poison;
     * the next fiber on this stack starts clean all the same. */
    __asan_unpoison_memory_region(fiber->stack, pool->stack_size);
#endif
    fiber->next_free = pool->free;
    pool->free = fiber;
    return false;
}

void shoal_fiber_suspend(void)
{
    shoal_fiber *fiber = fiber_current;
    if (fiber == NULL)
        fiber_misuse("shoal_fiber_suspend called outside a fiber");
    shoal_fiber_pool *pool = fiber->pool;
    fiber_current = NULL;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(&fiber->fake_stack, pool->scheduler_stack_bottom, pool->scheduler_stack_size);
#endif
    switch_to_scheduler(pool, fiber);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(fiber->fake_stack, &pool->scheduler_stack_bottom, &pool->scheduler_stack_size);
#endif
}

shoal_fiber *shoal_fiber_current(void)
{
    return fiber_current;
}

void *shoal_fiber_arg(const shoal_fiber *fiber)
{
    return fiber->arg;
}
