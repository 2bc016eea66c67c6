/* node/lib/clock.h: CLOCK_MONOTONIC readings for node/'s own files (store/
 * and cache/ have their own in their internal headers: they include
 * nothing of node/). Inline: the request path reads the clock. */
#ifndef SHOAL_CLOCK_H
#define SHOAL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t shoal_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static inline uint64_t shoal_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* milliseconds from now, as the absolute CLOCK_MONOTONIC time that
 * sem_clockwait and pthread_cond_timedwait (on a CLOCK_MONOTONIC
 * condition) take. */
static inline struct timespec shoal_monotonic_deadline(int milliseconds)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += milliseconds / 1000;
    deadline.tv_nsec += (long)(milliseconds % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    return deadline;
}

#endif
