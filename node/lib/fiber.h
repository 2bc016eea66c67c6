/* node/lib/fiber.h: fibers, a worker thread's pool of light coroutines
 * (docs/engine.md). Each request's pipeline runs on one (node/lib/http.c),
 * so that a call waiting on PostgreSQL or Redis suspends its fiber and the
 * worker serves other connections meanwhile.
 *
 * A pool belongs to the thread that created it: every call below happens
 * on that thread, and nothing locks. The thread's own context (its normal
 * stack) is the scheduler: it resumes fibers, a fiber suspends back to it.
 * Fibers never switch to each other directly.
 *
 * Each fiber runs on a stack of the pool: mmap'd, with a PROT_NONE guard
 * region below it. A fiber that overflows its stack stops the process with
 * a message on stderr naming the stack size (the guard's SIGSEGV handler,
 * on an alternate signal stack), never with silent corruption. A stack
 * whose fiber returned goes back to the pool for the next one. */
#ifndef SHOAL_FIBER_H
#define SHOAL_FIBER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct shoal_fiber_pool shoal_fiber_pool;
typedef struct shoal_fiber shoal_fiber;
typedef void (*shoal_fiber_fn)(void *arg);

/* Below this a fiber could not even run the sanitizers' bookkeeping. */
#define SHOAL_FIBER_STACK_MIN ((size_t)16 * 1024)

/* Address space only (PROT_NONE costs no memory): a frame that starts up to
 * this far below the end of its stack still faults inside the guard, so a
 * handler with large locals is caught even without stack probes
 * (-fstack-clash-protection, which catches any size). */
#define SHOAL_FIBER_GUARD_BYTES ((size_t)1024 * 1024)

/* A pool of at most max_fibers fibers alive at once, each with stack_size
 * bytes of stack (rounded up to whole pages, at least
 * SHOAL_FIBER_STACK_MIN). Stacks are mapped as fibers need them and kept
 * for reuse until the pool is destroyed. Also puts the guard's SIGSEGV
 * handler in place (the process's, unless it is there already) and an
 * alternate signal stack for this thread when it has none. NULL with errno set (EINVAL for a size or count out of
 * range, ENOMEM) on failure. */
shoal_fiber_pool *shoal_fiber_pool_create(size_t stack_size, size_t max_fibers);

/* Unmaps every stack. Call it from the scheduler on the pool's thread, after
 * every fiber has returned: a fiber still suspended never runs again (its
 * locals are gone; whatever it held leaks). NULL is allowed. */
void shoal_fiber_pool_destroy(shoal_fiber_pool *pool);

/* A fiber that will run fn(arg) on a stack of the pool once resumed; it
 * does not run yet. NULL with errno EAGAIN when max_fibers are alive,
 * ENOMEM when no stack could be mapped. */
shoal_fiber *shoal_fiber_new(shoal_fiber_pool *pool, shoal_fiber_fn fn, void *arg);

/* From the scheduler (never from a fiber): runs the fiber until it
 * suspends (true: resume it again later) or returns (false: its stack is
 * back in the pool and the handle is no longer valid). */
bool shoal_fiber_resume(shoal_fiber *fiber);

/* From a fiber: back to the scheduler, until someone resumes this fiber. */
void shoal_fiber_suspend(void);

/* The fiber running on this thread, NULL in the scheduler. */
shoal_fiber *shoal_fiber_current(void);
/* The arg the fiber was made with (shoal_fiber_new), for a scheduler that
 * keeps its own record of each fiber there. */
void *shoal_fiber_arg(const shoal_fiber *fiber);

/* The pool's usable stack size (after rounding), and how many stacks it has
 * mapped so far (alive or waiting for reuse): it never exceeds
 * max_fibers, and a steady load of short fibers keeps it where it is. */
size_t shoal_fiber_pool_stack_size(const shoal_fiber_pool *pool);
size_t shoal_fiber_pool_stacks(const shoal_fiber_pool *pool);

#endif
