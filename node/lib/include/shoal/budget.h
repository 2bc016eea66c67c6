/* node/lib/include/shoal/budget.h: the PostgreSQL connection budget, checked at start.
 *
 * While it serves, a node holds one PostgreSQL connection per worker thread
 * (each opened before the node turns ready, node/app.h) and one for its
 * tier monitor (node/lib/include/shoal/health.h); migrating at start takes one more, closed
 * before this check. A node past what the server has free would still
 * start, and its last workers would fail to connect and answer 503 on every
 * request they get. So before serving it asks the server (store_capacity_read)
 * and says at once, naming the numbers and the ways out; with --strict it
 * refuses to start instead. docs/operations.md, "The PostgreSQL connection
 * budget". */
#ifndef SHOAL_BUDGET_H
#define SHOAL_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

#include <shoal/config.h>
#include <shoal/store.h>

typedef enum shoal_budget_outcome {
    SHOAL_BUDGET_FITS,
    SHOAL_BUDGET_EXCEEDED,
    SHOAL_BUDGET_UNREACHABLE, /* PostgreSQL cannot be reached (or is full): not checked */
    SHOAL_BUDGET_UNCHECKED,   /* it answered, but not with what the check needs */
} shoal_budget_outcome;

/* The PostgreSQL connections this node holds while it serves. */
int shoal_budget_postgres_connections(const shoal_config *config);

/* needed connections against what capacity has free: they fit when there
 * are at least as many free. */
bool shoal_budget_fits(int needed, const store_capacity *capacity);

/* One log line with every number behind the outcome; past the budget it
 * also names the fixes. */
void shoal_budget_describe(const shoal_config *config, const store_capacity *capacity, char *out, size_t size);

/* Asks PostgreSQL and logs the outcome: a warning past the budget (an error
 * with --strict, when the caller then refuses to start), an info line
 * otherwise, and a warning saying the check was skipped when PostgreSQL
 * cannot be asked (the node starts all the same; its workers connect
 * later). */
shoal_budget_outcome shoal_budget_check(const shoal_config *config);

#endif
