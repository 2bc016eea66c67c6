/* node/lib/side_pool.h: the side pool, a few threads of the process for work
 * that blocks for long (argon2id, a service's blocking library call), so
 * that a worker's loop keeps serving its other connections meanwhile
 * (docs/engine.md). Services reach it through shoal_ctx_run_blocking
 * (<shoal/shoal.h>).
 *
 * A request's fiber hands work over with shoal_side_pool_run and suspends;
 * a pool thread runs it, then posts the finished job to the inbox of the
 * fiber's loop and wakes that loop (shoal_loop_wake). The loop owns its one
 * wake callback, and calls shoal_side_inbox_drain from it, which resumes
 * every fiber whose work is done. Nothing is allocated per job: the job
 * lives on the suspended fiber's stack.
 *
 * The pool's queue is a mutex and a condition (taken once per job on each
 * side, never held while work runs); an inbox is a lock-free stack that
 * pool threads push onto and its loop takes whole, and only the push onto
 * an empty inbox wakes the loop. */
#ifndef SHOAL_SIDE_POOL_H
#define SHOAL_SIDE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fiber.h"
#include "loop.h"

typedef struct shoal_side_pool shoal_side_pool;
typedef struct shoal_side_inbox shoal_side_inbox;
typedef void (*shoal_side_work_fn)(void *arg);

#define SHOAL_SIDE_POOL_MAX_THREADS 256

/* threads (1 to SHOAL_SIDE_POOL_MAX_THREADS) started at once, signals
 * blocked in each (they are the main thread's to take). NULL with errno
 * set: EINVAL for a count out of range, or pthread_create's. */
shoal_side_pool *shoal_side_pool_create(int threads);
/* Refuses new work (shoal_side_pool_run fails with ECANCELED), lets the
 * threads finish what is running and queued (each job posted to its inbox
 * as usual, or ETIMEDOUT past its deadline), joins them and frees the
 * pool. Call it once no thread can submit any more (the loops have
 * stopped, or will submit nothing) and before their inboxes go. NULL is
 * allowed. */
void shoal_side_pool_destroy(shoal_side_pool *pool);

typedef struct shoal_side_pool_stats {
    size_t queued;  /* waiting for a thread */
    size_t running; /* a thread runs their work now */
    uint64_t ran;   /* work that ran to its end, since the start */
    uint64_t late;  /* refused with ETIMEDOUT: a thread got to it past its deadline */
    bool stopping;  /* destroy has begun: new work is refused */
} shoal_side_pool_stats;
void shoal_side_pool_stats_read(shoal_side_pool *pool, shoal_side_pool_stats *stats);

/* A loop's inbox; create it, drain it and destroy it on the loop's thread. NULL with errno ENOMEM. */
shoal_side_inbox *shoal_side_inbox_create(shoal_loop *loop);
/* Resumes (shoal_fiber_resume) every fiber whose work was done since the
 * last drain, in the order the pool finished them. Call it from the loop's
 * wake callback, on the loop's thread, outside any fiber; a drain that
 * finds nothing is a single atomic exchange. */
void shoal_side_inbox_drain(shoal_side_inbox *inbox);
/* Instead of resuming a finished fiber itself, the drain hands it to
 * resume(context, fiber): a loop that resumes its fibers at a moment of its
 * own choosing (the HTTP workers, at the end of a turn) sets this once,
 * after create. The fiber's work is done by then; resuming it later is
 * fine. */
void shoal_side_inbox_resume_with(shoal_side_inbox *inbox, void (*resume)(void *context, shoal_fiber *fiber),
                                  void *context);
/* Whether the running fiber may be parked now (may_park(context), the
 * context of shoal_side_inbox_resume_with); when it says no,
 * shoal_side_run runs the work inline. The HTTP workers say yes for any
 * request on a fiber, inside a transaction too (its connection stays its
 * own while it is parked). */
void shoal_side_inbox_may_park(shoal_side_inbox *inbox, bool (*may_park)(void *context));
/* Fibers that handed work over through this inbox and were not resumed
 * yet (the loop's owner waits for 0 before it stops). */
size_t shoal_side_inbox_waiting(const shoal_side_inbox *inbox);
/* Frees it. No fiber may wait on it any more (waiting is 0): a pool thread
 * would post to freed memory. NULL is allowed. */
void shoal_side_inbox_destroy(shoal_side_inbox *inbox);

/* From a fiber on inbox's loop: queues work(arg) on the pool, suspends the
 * fiber and returns once the work ran on a pool thread and the inbox's
 * drain resumed the fiber: 0. Other resumes of the fiber meanwhile are
 * ignored (it suspends again). -1 with errno, work not run: EINVAL outside
 * a fiber; ECANCELED when the pool is being destroyed; ETIMEDOUT when no
 * thread took it before deadline_ns (CLOCK_MONOTONIC; 0: none), which is
 * checked again when a thread takes it, so that a request past its
 * deadline starts no long work. work runs on another thread: it may touch
 * what arg points to (the fiber's locals included), nothing of the
 * request's worker (its connections, arena, thread-locals). */
int shoal_side_pool_run(shoal_side_pool *pool, shoal_side_inbox *inbox, uint64_t deadline_ns, shoal_side_work_fn work,
                        void *arg);

/* The pool and inbox of the calling thread's loop, for library code that
 * has no request at hand (password.c): set on the loop's thread when it
 * starts (NULL, NULL when it stops). */
void shoal_side_bind_thread(shoal_side_pool *pool, shoal_side_inbox *inbox);
/* work(arg) through this thread's pool when called on a fiber of a thread
 * bound above, else on the calling thread (the thread-per-request model,
 * a thread without a loop, the loop's own scheduler). 0 when it ran; -1
 * with errno ETIMEDOUT (deadline_ns passed before it could start; the
 * inline path checks it too) or ECANCELED (the pool is being destroyed). */
int shoal_side_run(uint64_t deadline_ns, shoal_side_work_fn work, void *arg);

#endif
