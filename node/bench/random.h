/* node/bench/random.h: fast random numbers for the TechEmpower routes.
 *
 * Each worker thread owns one generator (a worker slot), so drawing needs
 * no lock and no system call. xoshiro256** is statistically sound and costs
 * a few nanoseconds; it is not for secrets (session tokens come from the
 * OS). */
#ifndef SHOAL_BENCH_RANDOM_H
#define SHOAL_BENCH_RANDOM_H

#include <stdint.h>

typedef struct bench_random {
    uint64_t state[4];
} bench_random;

/* Seeds from the OS (getrandom); falls back to the address and the clock
 * if that fails, which is good enough for benchmark ids. */
void bench_random_seed(bench_random *generator);
/* Seeds deterministically, for tests. */
void bench_random_seed_with(bench_random *generator, uint64_t seed);
uint64_t bench_random_next(bench_random *generator);
/* Uniform in [low, high]; low <= high. */
int bench_random_between(bench_random *generator, int low, int high);

/* For shoal_app_worker_slot: a seeded generator on the heap, or NULL. */
void *bench_random_create(void *data);

#endif
