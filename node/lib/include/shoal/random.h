/* node/lib/include/shoal/random.h: fast random numbers that need not be secret (request ids, TechEmpower ids).
 *
 * Each worker thread owns one generator (a worker slot), so drawing needs
 * no lock and no system call. xoshiro256** is statistically sound and costs
 * a few nanoseconds; it is not for secrets (session tokens come from the
 * OS). */
#ifndef SHOAL_RANDOM_H
#define SHOAL_RANDOM_H

#include <stdint.h>

typedef struct shoal_random {
    uint64_t state[4];
} shoal_random;

/* Seeds from the OS (getrandom); falls back to the address and the clock
 * if that fails, which is good enough for benchmark ids. */
void shoal_random_seed(shoal_random *generator);
/* Seeds deterministically, for tests. */
void shoal_random_seed_with(shoal_random *generator, uint64_t seed);
uint64_t shoal_random_next(shoal_random *generator);
/* Uniform in [low, high]; low <= high. */
int shoal_random_between(shoal_random *generator, int low, int high);

/* For shoal_app_worker_slot: a seeded generator on the heap, or NULL. */
void *shoal_random_create(void *data);

#endif
