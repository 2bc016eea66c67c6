/* node/tiers.c: the one place where a shared tier's failure becomes an HTTP
 * answer. Clients get a stable code and, for outages, Retry-After; never the
 * tier's own text, which goes to the log instead. */
#include "cache.h"
#include "log.h"
#include "shoal.h"
#include "store.h"

/* Outages of a shared tier last seconds (a restart, a failover): one second
 * spreads the retries without making clients wait longer than the outage. */
#define TIER_RETRY_AFTER_SECONDS "1"

static int answer_retry_later(shoal_ctx *ctx, const char *code, const char *message)
{
    if (shoal_error(ctx, 503, code, "body", message) != 0)
        return -1;
    return shoal_set_header(ctx, "Retry-After", TIER_RETRY_AFTER_SECONDS);
}

int shoal_error_from_cache(shoal_ctx *ctx, int status)
{
    if (status == CACHE_UNAVAILABLE)
        return answer_retry_later(ctx, "cache.unavailable", "the cache is unavailable; retry shortly");
    return shoal_error(ctx, 500, "cache.error", "body", "internal error");
}

int shoal_error_from_store(shoal_ctx *ctx, store *s)
{
    static const store_error unknown = {.status = STORE_ERROR, .message = "no store for this request"};
    const store_error *error = s != NULL ? store_last_error(s) : &unknown;
    /* What the client is not told, the log keeps; NOT_FOUND is an answer,
     * not a failure. */
    shoal_log_level level = SHOAL_LOG_WARNING;
    if (error->status == STORE_CONFLICT || error->status == STORE_INVALID)
        level = SHOAL_LOG_INFO; /* the client's mistake */
    else if (error->status != STORE_UNAVAILABLE && error->status != STORE_TIMEOUT && error->status != STORE_BUSY)
        level = SHOAL_LOG_ERROR;
    /* A deadline is the node's own load, counted in /metrics, not a fault. */
    if (error->status == STORE_DEADLINE)
        return shoal_error_deadline(ctx);
    if (error->status != STORE_NOT_FOUND)
        shoal_log(level, "store",
                  "%s %s: sqlstate=%s constraint=%s: %s", shoal_method_name(ctx), shoal_path(ctx),
                  error->sqlstate[0] != '\0' ? error->sqlstate : "-",
                  error->constraint[0] != '\0' ? error->constraint : "-", error->message);
    switch (error->status) {
    case STORE_UNAVAILABLE:
        return answer_retry_later(ctx, "store.unavailable", "the database is unavailable; retry shortly");
    case STORE_TIMEOUT:
        return answer_retry_later(ctx, "store.timeout", "the database took too long; retry shortly");
    case STORE_BUSY:
        return answer_retry_later(ctx, "store.busy", "the database is busy; retry shortly");
    case STORE_CONFLICT:
        return shoal_error(ctx, 422, "store.conflict", error->field, "has already been taken");
    case STORE_INVALID:
        return shoal_error(ctx, 422, "store.invalid", error->field, "is invalid");
    case STORE_NOT_FOUND:
        return shoal_error(ctx, 404, "store.not_found", "body", "not found");
    case STORE_DEADLINE: /* answered above */
    case STORE_OK:
    case STORE_ERROR:
        break;
    }
    return shoal_error(ctx, 500, "store.error", "body", "internal error");
}
