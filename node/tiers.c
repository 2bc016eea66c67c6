/* node/tiers.c: the one place where a shared tier's failure becomes an HTTP
 * answer. Clients get a stable code and, for outages, Retry-After; never the
 * tier's own text, which goes to the log instead. */
#include "cache.h"
#include "shoal.h"

/* Outages of a shared tier last seconds (a restart, a failover): one second
 * spreads the retries without making clients wait longer than the outage. */
#define TIER_RETRY_AFTER_SECONDS "1"

int shoal_error_from_cache(shoal_ctx *ctx, int status)
{
    if (status == CACHE_UNAVAILABLE) {
        if (shoal_error(ctx, 503, "cache.unavailable", "body", "the session store is unavailable; retry shortly") != 0)
            return -1;
        return shoal_set_header(ctx, "Retry-After", TIER_RETRY_AFTER_SECONDS);
    }
    return shoal_error(ctx, 500, "cache.error", "body", "internal error");
}
