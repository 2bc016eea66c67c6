/* node/services/techempower/query_count.c */
#include "query_count.h"

#include <stdbool.h>
#include <stddef.h>

int bench_query_count(const char *text)
{
    if (text == NULL)
        return BENCH_QUERY_COUNT_MIN;
    bool negative = *text == '-';
    if (*text == '-' || *text == '+')
        text++;
    if (*text < '0' || *text > '9')
        return BENCH_QUERY_COUNT_MIN;
    /* Accumulating only up to just past the maximum keeps any number of
     * digits from overflowing. */
    int value = 0;
    for (; *text >= '0' && *text <= '9'; text++)
        if (value <= BENCH_QUERY_COUNT_MAX)
            value = value * 10 + (*text - '0');
    if (*text != '\0' || negative || value < BENCH_QUERY_COUNT_MIN)
        return BENCH_QUERY_COUNT_MIN;
    return value > BENCH_QUERY_COUNT_MAX ? BENCH_QUERY_COUNT_MAX : value;
}
