/* node/lib/side_pool.c: the side pool (side_pool.h). */
#include "side_pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fiber.h"

/* One hand-over, on the suspended fiber's stack: the pool's queue links it,
 * then the inbox's stack. */
typedef struct side_job {
    shoal_side_work_fn work;
    void *arg;
    uint64_t deadline_ns;
    shoal_fiber *fiber;
    shoal_side_inbox *inbox;
    int outcome; /* 0 or an errno, written by the pool thread */
    bool done;   /* written by the drain, on the loop's thread */
    struct side_job *next;
} side_job;

struct shoal_side_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    side_job *head, *tail; /* FIFO */
    size_t queued, running;
    uint64_t ran, late;
    bool stopping;
    int thread_count;
    pthread_t threads[];
};

struct shoal_side_inbox {
    /* Finished jobs, newest first: pool threads push, the loop takes all. */
    _Atomic(side_job *) finished;
    shoal_loop *loop;
    size_t waiting; /* the loop's thread only */
    void (*resume)(void *context, shoal_fiber *fiber); /* NULL: shoal_fiber_resume */
    void *resume_context;
    bool (*may_park)(void *context); /* NULL: always */
};

static _Thread_local struct {
    shoal_side_pool *pool;
    shoal_side_inbox *inbox;
} thread_binding;

static void post_finished(side_job *job)
{
    /* Read before the push: once the job is on the inbox the loop may
     * resume its fiber, which returns and reuses the stack it lives on. */
    shoal_side_inbox *inbox = job->inbox;
    shoal_loop *loop = inbox->loop;
    side_job *previous = atomic_load_explicit(&inbox->finished, memory_order_relaxed);
    do
        job->next = previous;
    while (!atomic_compare_exchange_weak_explicit(&inbox->finished, &previous, job, memory_order_release,
                                                  memory_order_relaxed));
    /* A push onto a non-empty inbox needs no wake: whoever pushed onto the
     * empty one wakes the loop, and its drain takes the whole stack. */
    if (previous == NULL && shoal_loop_wake(loop) != 0) {
        /* An eventfd write fails only on a closed fd or a counter at its
         * maximum: the loop is gone, and its fiber would wait forever. */
        fprintf(stderr, "shoal: side pool: cannot wake a worker's loop: %s\n", strerror(errno));
        abort();
    }
}

static void *pool_thread(void *arg)
{
    shoal_side_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->head == NULL && !pool->stopping)
            pthread_cond_wait(&pool->work_ready, &pool->lock);
        side_job *job = pool->head;
        if (job == NULL)
            break; /* stopping, and nothing left */
        pool->head = job->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pool->queued--;
        bool late = job->deadline_ns != 0 && shoal_monotonic_ns() >= job->deadline_ns;
        if (late) {
            pool->late++;
        } else {
            pool->running++;
            pthread_mutex_unlock(&pool->lock);
            job->work(job->arg);
            pthread_mutex_lock(&pool->lock);
            pool->running--;
            pool->ran++;
        }
        /* Posted outside the lock: a wake is a system call. */
        pthread_mutex_unlock(&pool->lock);
        job->outcome = late ? ETIMEDOUT : 0;
        post_finished(job);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void stop_threads(shoal_side_pool *pool, int started)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < started; i++)
        pthread_join(pool->threads[i], NULL);
}

shoal_side_pool *shoal_side_pool_create(int threads)
{
    if (threads < 1 || threads > SHOAL_SIDE_POOL_MAX_THREADS) {
        errno = EINVAL;
        return NULL;
    }
    shoal_side_pool *pool = calloc(1, sizeof *pool + (size_t)threads * sizeof pool->threads[0]);
    if (pool == NULL)
        return NULL;
    int rc = pthread_mutex_init(&pool->lock, NULL);
    if (rc != 0) {
        free(pool);
        errno = rc;
        return NULL;
    }
    rc = pthread_cond_init(&pool->work_ready, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&pool->lock);
        free(pool);
        errno = rc;
        return NULL;
    }
    /* The threads inherit the mask: SIGTERM and the like stay the main
     * thread's (runtime.c's sigwait), whatever thread creates the pool. */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int started = 0;
    for (; started < threads; started++) {
        rc = pthread_create(&pool->threads[started], NULL, pool_thread, pool);
        if (rc != 0)
            break;
        (void)pthread_setname_np(pool->threads[started], "shoal-side"); /* a name for top and gdb only */
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (started < threads) {
        stop_threads(pool, started);
        pthread_cond_destroy(&pool->work_ready);
        pthread_mutex_destroy(&pool->lock);
        free(pool);
        errno = rc;
        return NULL;
    }
    pool->thread_count = threads;
    return pool;
}

void shoal_side_pool_destroy(shoal_side_pool *pool)
{
    if (pool == NULL)
        return;
    stop_threads(pool, pool->thread_count);
    pthread_cond_destroy(&pool->work_ready);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

void shoal_side_pool_stats_read(shoal_side_pool *pool, shoal_side_pool_stats *stats)
{
    pthread_mutex_lock(&pool->lock);
    *stats = (shoal_side_pool_stats){.queued = pool->queued,
                                     .running = pool->running,
                                     .ran = pool->ran,
                                     .late = pool->late,
                                     .stopping = pool->stopping};
    pthread_mutex_unlock(&pool->lock);
}

shoal_side_inbox *shoal_side_inbox_create(shoal_loop *loop)
{
    shoal_side_inbox *inbox = calloc(1, sizeof *inbox);
    if (inbox == NULL)
        return NULL;
    atomic_init(&inbox->finished, NULL);
    inbox->loop = loop;
    return inbox;
}

void shoal_side_inbox_drain(shoal_side_inbox *inbox)
{
    side_job *newest_first = atomic_exchange_explicit(&inbox->finished, NULL, memory_order_acquire);
    side_job *oldest_first = NULL;
    while (newest_first != NULL) {
        side_job *next = newest_first->next;
        newest_first->next = oldest_first;
        oldest_first = newest_first;
        newest_first = next;
    }
    while (oldest_first != NULL) {
        /* next is read before the resume, after which the job is gone. */
        side_job *job = oldest_first;
        oldest_first = job->next;
        job->done = true;
        inbox->waiting--;
        if (inbox->resume != NULL)
            inbox->resume(inbox->resume_context, job->fiber);
        else
            shoal_fiber_resume(job->fiber);
    }
}

void shoal_side_inbox_resume_with(shoal_side_inbox *inbox, void (*resume)(void *context, shoal_fiber *fiber),
                                  void *context)
{
    inbox->resume = resume;
    inbox->resume_context = context;
}

size_t shoal_side_inbox_waiting(const shoal_side_inbox *inbox)
{
    return inbox->waiting;
}

void shoal_side_inbox_destroy(shoal_side_inbox *inbox)
{
    free(inbox);
}

int shoal_side_pool_run(shoal_side_pool *pool, shoal_side_inbox *inbox, uint64_t deadline_ns, shoal_side_work_fn work,
                        void *arg)
{
    shoal_fiber *self = shoal_fiber_current();
    if (self == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (deadline_ns != 0 && shoal_monotonic_ns() >= deadline_ns) {
        errno = ETIMEDOUT;
        return -1;
    }
    side_job job = {.work = work, .arg = arg, .deadline_ns = deadline_ns, .fiber = self, .inbox = inbox};
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        errno = ECANCELED;
        return -1;
    }
    if (pool->tail != NULL)
        pool->tail->next = &job;
    else
        pool->head = &job;
    pool->tail = &job;
    pool->queued++;
    pthread_cond_signal(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    inbox->waiting++;
    while (!job.done)
        shoal_fiber_suspend();
    if (job.outcome != 0) {
        errno = job.outcome;
        return -1;
    }
    return 0;
}

void shoal_side_bind_thread(shoal_side_pool *pool, shoal_side_inbox *inbox)
{
    thread_binding.pool = pool;
    thread_binding.inbox = inbox;
}

void shoal_side_inbox_may_park(shoal_side_inbox *inbox, bool (*may_park)(void *context))
{
    inbox->may_park = may_park;
}

static bool may_park(const shoal_side_inbox *inbox)
{
    return inbox->may_park == NULL || inbox->may_park(inbox->resume_context);
}

int shoal_side_run(uint64_t deadline_ns, shoal_side_work_fn work, void *arg)
{
    if (thread_binding.pool != NULL && shoal_fiber_current() != NULL && may_park(thread_binding.inbox))
        return shoal_side_pool_run(thread_binding.pool, thread_binding.inbox, deadline_ns, work, arg);
    if (deadline_ns != 0 && shoal_monotonic_ns() >= deadline_ns) {
        errno = ETIMEDOUT;
        return -1;
    }
    work(arg);
    return 0;
}
