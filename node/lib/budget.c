/* node/lib/budget.c */
#include <shoal/budget.h>

#include <stdio.h>

#include <shoal/health.h>
#include <shoal/log.h>

/* Per worker thread: its pipe, which carries every request's statements,
 * and its own connection for transactions (whose statements must not mix
 * with other requests'); and, with --database-spill-after-ms, its pipe's
 * spill lane while a slow statement stalls the pipe (docs/engine.md). The
 * budget is for the worst case, every worker's pipe stalled at once. */
static int per_thread(const shoal_config *config)
{
    return config->database_spill_after_ms > 0 ? 3 : 2;
}

int shoal_budget_postgres_connections(const shoal_config *config)
{
    return per_thread(config) * config->threads + SHOAL_TIER_MONITOR_POSTGRES_CONNECTIONS;
}

bool shoal_budget_fits(int needed, const store_capacity *capacity)
{
    return needed <= store_capacity_free(capacity);
}

void shoal_budget_describe(const shoal_config *config, const store_capacity *capacity, char *out, size_t size)
{
    int needed = shoal_budget_postgres_connections(config);
    int written = snprintf(out, size,
                           "this node holds %d PostgreSQL connections (%d for each of %d worker threads%s + %d tier "
                           "monitor); the server has %d free (max_connections %d - %d reserved for superusers - %d in "
                           "use)",
                           needed, per_thread(config), config->threads,
                           per_thread(config) == 3 ? ", the third while its pipe spills" : "",
                           SHOAL_TIER_MONITOR_POSTGRES_CONNECTIONS,
                           store_capacity_free(capacity), capacity->max_connections, capacity->reserved,
                           capacity->in_use);
    if (shoal_budget_fits(needed, capacity) || written < 0 || (size_t)written >= size)
        return;
    snprintf(out + written, size - (size_t)written,
             ", so %d of its connections will fail to open and the requests that need them answer 503. Raise "
             "max_connections (nodes x "
             "(%d x threads + 2) + 20), run fewer --threads (SHOAL_THREADS), or put PgBouncer in transaction mode "
             "between the nodes and PostgreSQL (docs/operations.md, the connection budget)",
             needed - store_capacity_free(capacity), per_thread(config));
}

shoal_budget_outcome shoal_budget_check(const shoal_config *config)
{
    store_config database = shoal_config_store(config);
    store_capacity capacity;
    char error[512] = "";
    store_status status = store_capacity_read(&database, &capacity, error, sizeof error);
    if (status != STORE_OK) {
        shoal_log(SHOAL_LOG_WARNING, "budget", "PostgreSQL connection budget not checked: %s", error);
        return status == STORE_UNAVAILABLE ? SHOAL_BUDGET_UNREACHABLE : SHOAL_BUDGET_UNCHECKED;
    }
    char line[1024];
    shoal_budget_describe(config, &capacity, line, sizeof line);
    if (shoal_budget_fits(shoal_budget_postgres_connections(config), &capacity)) {
        shoal_log(SHOAL_LOG_INFO, "budget", "PostgreSQL connection budget: %s", line);
        return SHOAL_BUDGET_FITS;
    }
    shoal_log(config->strict ? SHOAL_LOG_ERROR : SHOAL_LOG_WARNING, "budget",
              "PostgreSQL connection budget exceeded%s: %s", config->strict ? " (--strict: not starting)" : "",
              line);
    return SHOAL_BUDGET_EXCEEDED;
}
