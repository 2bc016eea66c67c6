/* tests/load/fiber_bench.c: what a fiber switch costs, shoal's
 * (node/lib/fiber.c) beside glibc's swapcontext, in one run. A benchmark
 * that prints figures, not a test: nothing here passes or fails.
 *
 *   build/tests/load/fiber_bench [ROUND_TRIPS] [RUNS]    (10000000 and 5 by default)
 *
 * A round trip is a resume and a suspend: two switches. Each way is timed
 * RUNS times, the ways taking turns so that a busy machine weighs on both
 * alike, and the fastest run of each is printed (the least disturbed).
 * "fiber lifetimes" is shoal_fiber_new plus running a fiber that returns
 * at once, on a pooled stack: what a request will pay once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ucontext.h>

#include "fiber.h"

static uint64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* ---- shoal's fibers ---- */

static void suspend_forever(void *arg)
{
    volatile uint64_t *count = arg;
    for (;;) {
        (*count)++;
        shoal_fiber_suspend();
    }
}

static uint64_t time_shoal(shoal_fiber_pool *pool, uint64_t round_trips)
{
    volatile uint64_t count = 0;
    shoal_fiber *fiber = shoal_fiber_new(pool, suspend_forever, (void *)&count);
    if (fiber == NULL) {
        perror("shoal_fiber_new");
        exit(1);
    }
    shoal_fiber_resume(fiber); /* on its stack now, as every later resume finds it */
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < round_trips; i++)
        shoal_fiber_resume(fiber);
    uint64_t elapsed = now_ns() - start;
    if (count != round_trips + 1) {
        fprintf(stderr, "fiber ran %llu times, not %llu\n", (unsigned long long)count,
                (unsigned long long)round_trips + 1);
        exit(1);
    }
    /* It never returns: its stack is unmapped with the pool. */
    return elapsed;
}

static void return_at_once(void *arg)
{
    (*(volatile uint64_t *)arg)++;
}

static uint64_t time_lifetimes(shoal_fiber_pool *pool, uint64_t fibers)
{
    volatile uint64_t count = 0;
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < fibers; i++) {
        shoal_fiber *fiber = shoal_fiber_new(pool, return_at_once, (void *)&count);
        if (fiber == NULL || shoal_fiber_resume(fiber)) {
            fprintf(stderr, "a fiber did not run to its end\n");
            exit(1);
        }
    }
    uint64_t elapsed = now_ns() - start;
    if (count != fibers)
        exit(1);
    return elapsed;
}

/* ---- swapcontext ---- */

static ucontext_t scheduler_context, fiber_context;
static volatile uint64_t context_count;

static void swapcontext_forever(void)
{
    for (;;) {
        context_count++;
        swapcontext(&fiber_context, &scheduler_context);
    }
}

static uint64_t time_swapcontext(void *stack, size_t stack_size, uint64_t round_trips)
{
    context_count = 0;
    if (getcontext(&fiber_context) != 0) {
        perror("getcontext");
        exit(1);
    }
    fiber_context.uc_stack.ss_sp = stack;
    fiber_context.uc_stack.ss_size = stack_size;
    fiber_context.uc_link = NULL;
    makecontext(&fiber_context, swapcontext_forever, 0);
    swapcontext(&scheduler_context, &fiber_context);
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < round_trips; i++)
        swapcontext(&scheduler_context, &fiber_context);
    uint64_t elapsed = now_ns() - start;
    if (context_count != round_trips + 1)
        exit(1);
    return elapsed;
}

static void print_row(const char *what, uint64_t best_ns, uint64_t switches)
{
    double ns = (double)best_ns / (double)switches;
    printf("%-26s %14.0f %12.1f\n", what, 1e9 / ns, ns);
}

int main(int argc, char **argv)
{
    uint64_t round_trips = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000u;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (round_trips == 0 || runs <= 0) {
        fprintf(stderr, "usage: %s [ROUND_TRIPS] [RUNS]\n", argv[0]);
        return 2;
    }
    uint64_t lifetimes_count = round_trips / 4 > 0 ? round_trips / 4 : 1;
    const size_t stack_size = 64 * 1024;
    void *context_stack = malloc(stack_size);
    if (context_stack == NULL)
        return 1;
    uint64_t best_shoal = UINT64_MAX, best_context = UINT64_MAX, best_lifetimes = UINT64_MAX;
    for (int run = 0; run < runs; run++) {
        /* A fresh pool each run: the fiber of the last one never returned. */
        shoal_fiber_pool *pool = shoal_fiber_pool_create(stack_size, 4);
        if (pool == NULL) {
            perror("shoal_fiber_pool_create");
            return 1;
        }
        uint64_t shoal = time_shoal(pool, round_trips);
        uint64_t lifetimes = time_lifetimes(pool, lifetimes_count);
        shoal_fiber_pool_destroy(pool);
        uint64_t context = time_swapcontext(context_stack, stack_size, round_trips);
        best_shoal = shoal < best_shoal ? shoal : best_shoal;
        best_context = context < best_context ? context : best_context;
        best_lifetimes = lifetimes < best_lifetimes ? lifetimes : best_lifetimes;
    }
    free(context_stack);
    printf("%llu round trips (2 switches each), fastest of %d runs\n", (unsigned long long)round_trips, runs);
    printf("%-26s %14s %12s\n", "", "switches/s", "ns/switch");
    print_row("shoal_fiber", best_shoal, 2 * round_trips);
    print_row("swapcontext", best_context, 2 * round_trips);
    printf("%-26s %14.1fx\n", "swapcontext / shoal_fiber", (double)best_context / (double)best_shoal);
    double lifetime_ns = (double)best_lifetimes / (double)lifetimes_count;
    printf("%-26s %14.0f %12.1f  (new + run to the end, pooled stack; per second, ns each)\n", "fiber lifetimes",
           1e9 / lifetime_ns, lifetime_ns);
    return 0;
}
