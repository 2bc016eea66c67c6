/* node/lib/random.c */
#include <shoal/random.h>

#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

static uint64_t rotate_left(uint64_t value, int bits)
{
    return (value << bits) | (value >> (64 - bits));
}

/* splitmix64 spreads one seed over the four words, as xoshiro's authors
 * recommend: similar seeds must not give similar streams. */
static uint64_t splitmix(uint64_t *seed)
{
    uint64_t z = (*seed += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void shoal_random_seed_with(shoal_random *generator, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        generator->state[i] = splitmix(&seed);
}

void shoal_random_seed(shoal_random *generator)
{
    if (getrandom(generator->state, sizeof generator->state, 0) == (ssize_t)sizeof generator->state &&
        (generator->state[0] | generator->state[1] | generator->state[2] | generator->state[3]) != 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    shoal_random_seed_with(generator, (uint64_t)(uintptr_t)generator ^ (uint64_t)now.tv_nsec ^
                                          ((uint64_t)now.tv_sec << 32));
}

uint64_t shoal_random_next(shoal_random *generator)
{
    uint64_t *s = generator->state;
    uint64_t result = rotate_left(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotate_left(s[3], 45);
    return result;
}

int shoal_random_between(shoal_random *generator, int low, int high)
{
    uint64_t range = (uint64_t)((int64_t)high - (int64_t)low) + 1;
    /* Lemire's multiply-shift maps 32 random bits onto the range without a
     * division; the bias is below range / 2^32, invisible at 10000. */
    uint64_t bits = shoal_random_next(generator) >> 32;
    return (int)((int64_t)low + (int64_t)((bits * range) >> 32));
}

void *shoal_random_create(void *data)
{
    (void)data;
    shoal_random *generator = malloc(sizeof *generator);
    if (generator != NULL)
        shoal_random_seed(generator);
    return generator;
}
