/* tests/load/side_pool_bench.c: what handing work to the side pool costs
 * (node/lib/side_pool.c), on a real loop with real fibers. A benchmark that
 * prints figures, not a test: nothing here passes or fails.
 *
 *   build/tests/load/side_pool_bench [JOBS] [RUNS] [THREADS]    (200000, 5 and 2 by default)
 *
 * The work itself is empty, so what is timed is the hand-over alone: the
 * queue, a pool thread's wake-up, the post to the inbox, the loop's
 * eventfd wake and drain, and the fiber's resume.
 *   one at a time  one fiber submitting JOBS jobs in a row: the latency a
 *                  request pays on top of its work when nothing else runs;
 *   64 fibers      64 fibers submitting JOBS in all: the cost per job when
 *                  completions share wakes and drains (the loop's view
 *                  under load).
 * The fastest of RUNS runs of each is printed (the least disturbed). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fiber.h"
#include "loop.h"
#include "side_pool.h"

typedef struct bench {
    shoal_loop *loop;
    shoal_fiber_pool *fibers;
    shoal_side_pool *pool;
    shoal_side_inbox *inbox;
    uint64_t jobs_each;
    int running; /* fibers not finished */
    int failures;
} bench;

static void nothing(void *arg)
{
    (void)arg;
}

static void submit_jobs(void *arg)
{
    bench *b = arg;
    for (uint64_t i = 0; i < b->jobs_each; i++)
        if (shoal_side_pool_run(b->pool, b->inbox, 0, nothing, NULL) != 0)
            b->failures++;
    b->running--;
}

static void drain(shoal_loop *loop, void *arg)
{
    (void)loop;
    shoal_side_inbox_drain(arg);
}

/* ns per job with `fibers` fibers submitting jobs / fibers each. */
static double time_jobs(bench *b, int fibers, uint64_t jobs)
{
    b->jobs_each = jobs / (uint64_t)fibers;
    b->running = fibers;
    uint64_t start = shoal_loop_now_ns();
    for (int i = 0; i < fibers; i++) {
        shoal_fiber *fiber = shoal_fiber_new(b->fibers, submit_jobs, b);
        if (fiber == NULL) {
            perror("shoal_fiber_new");
            exit(1);
        }
        shoal_fiber_resume(fiber);
    }
    while (b->running > 0)
        if (shoal_loop_turn(b->loop, -1) != 0) {
            perror("shoal_loop_turn");
            exit(1);
        }
    uint64_t elapsed = shoal_loop_now_ns() - start;
    if (b->failures != 0) {
        fprintf(stderr, "%d jobs failed\n", b->failures);
        exit(1);
    }
    return (double)elapsed / (double)(b->jobs_each * (uint64_t)fibers);
}

int main(int argc, char **argv)
{
    uint64_t jobs = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    if (argc > 4 || jobs < 64 || runs < 1 || threads < 1) {
        fprintf(stderr, "usage: %s [JOBS] [RUNS] [THREADS]\n", argv[0]);
        return 2;
    }
    bench b = {0};
    b.loop = shoal_loop_create();
    b.fibers = shoal_fiber_pool_create(64 * 1024, 64);
    b.pool = shoal_side_pool_create(threads);
    b.inbox = b.loop != NULL ? shoal_side_inbox_create(b.loop) : NULL;
    if (b.loop == NULL || b.fibers == NULL || b.pool == NULL || b.inbox == NULL) {
        perror("setting up");
        return 1;
    }
    shoal_loop_on_wake(b.loop, drain, b.inbox);

    double best_one = 0, best_many = 0;
    for (int run = 0; run < runs; run++) {
        double one = time_jobs(&b, 1, jobs);
        double many = time_jobs(&b, 64, jobs);
        if (run == 0 || one < best_one)
            best_one = one;
        if (run == 0 || many < best_many)
            best_many = many;
    }
    printf("%llu empty jobs, %d pool threads, fastest of %d runs\n", (unsigned long long)jobs, threads, runs);
    printf("%-16s %12s %12s\n", "", "jobs/s", "ns/job");
    printf("%-16s %12.0f %12.0f\n", "one at a time", 1e9 / best_one, best_one);
    printf("%-16s %12.0f %12.0f\n", "64 fibers", 1e9 / best_many, best_many);

    shoal_side_pool_destroy(b.pool);
    shoal_side_inbox_destroy(b.inbox);
    shoal_fiber_pool_destroy(b.fibers);
    shoal_loop_destroy(b.loop);
    return 0;
}
