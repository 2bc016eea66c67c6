/* node/services/techempower/query_count.h: the `queries` and `count` parameters of the
 * TechEmpower routes. */
#ifndef SHOAL_BENCH_QUERY_COUNT_H
#define SHOAL_BENCH_QUERY_COUNT_H

#define BENCH_QUERY_COUNT_MIN 1
#define BENCH_QUERY_COUNT_MAX 500

/* The specification's clamp: missing (NULL), empty, not a whole number, or
 * below 1 gives 1; above 500 (however many digits) gives 500. */
int bench_query_count(const char *text);

#endif
