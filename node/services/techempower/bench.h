/* node/services/techempower/bench.h: the TechEmpower Framework Benchmarks' test types, a
 * blueprint at the root:
 *
 *   GET /json            {"message":"Hello, World!"}, serialised per request
 *   GET /plaintext       Hello, World!
 *   GET /db              one random world row as an object
 *   GET /queries?queries=N   N random rows (clamped to 1..500) as an array
 *   GET /updates?queries=N   N random rows, each given a new random number,
 *                            written before the answer
 *   GET /fortunes        every fortune plus one added in memory, sorted, as
 *                        an escaped HTML table
 *   GET /cached-queries?count=N   N random rows (clamped to 1..500) through
 *                        the cache: the node's L1, then Redis (one round
 *                        trip), then PostgreSQL for what neither holds
 *
 * Every row is read by its own statement; the statements of one request go
 * out in one pipeline (node/services/techempower/sql/world.h). /updates invalidates the cached
 * worlds after it commits. --bench=false (SHOAL_BENCH) leaves the routes
 * out. */
#ifndef SHOAL_BENCH_H
#define SHOAL_BENCH_H

#include <shoal/service.h>
#include <shoal/shoal.h>

/* Registers the statements (node/services/techempower/sql/world.h, node/services/techempower/sql/fortune.h), a worker slot
 * for each thread's random generator and the routes; nothing when --bench
 * is false. Its state is its instance (shoal_app_instance). */
extern const shoal_extension shoal_bench_extension;

/* --bench (SHOAL_BENCH): serve the routes at all (default true). */
typedef struct shoal_techempower_settings_values {
    bool bench;
} shoal_techempower_settings_values;
extern const shoal_settings shoal_techempower_settings;

/* Its schema, component "techempower": 1 techempower (world, fortune);
 * adopts 0.1's schema_migrations row 2 techempower. */
extern const shoal_migrations shoal_techempower_migrations;

#endif
