/* node/lib/tiers.c: the one place where a shared tier's failure becomes an HTTP
 * answer. Clients get a stable code and, for outages, Retry-After; never the
 * tier's own text, which goes to the log instead. */
#include <shoal/cache.h>
#include <shoal/log.h>
#include <shoal/shoal.h>
#include <shoal/store.h>

#include "errors_internal.h"

/* Outages of a shared tier last seconds (a restart, a failover): one second
 * spreads the retries without making clients wait longer than the outage. */
#define TIER_RETRY_AFTER_SECONDS "1"

static const shoal_error_code code_cache_unavailable = {503, "cache.unavailable", NULL,
                                                   "the cache is unavailable; retry shortly"};
static const shoal_error_code code_cache_error = {500, "cache.error", NULL, "internal error"};
static const shoal_error_code code_store_unavailable = {503, "store.unavailable", NULL,
                                                   "the database is unavailable; retry shortly"};
static const shoal_error_code code_store_timeout = {503, "store.timeout", NULL,
                                               "the database took too long; retry shortly"};
static const shoal_error_code code_store_busy = {503, "store.busy", NULL, "the database is busy; retry shortly"};
static const shoal_error_code code_store_conflict = {422, "store.conflict", NULL, "has already been taken"};
static const shoal_error_code code_store_invalid = {422, "store.invalid", NULL, "is invalid"};
static const shoal_error_code code_store_not_found = {404, "store.not_found", NULL, "not found"};
static const shoal_error_code code_store_error = {500, "store.error", NULL, "internal error"};

const shoal_error_table shoal_tier_errors = {
    "tiers",
    (const shoal_error_code *const[]){
        &code_cache_unavailable,
        &code_cache_error,
        &code_store_unavailable,
        &code_store_timeout,
        &code_store_busy,
        &code_store_conflict,
        &code_store_invalid,
        &code_store_not_found,
        &code_store_error,
        NULL,
    },
};

static int answer_retry_later(shoal_ctx *ctx, const shoal_error_code *error)
{
    if (shoal_fail(ctx, error) != 0)
        return -1;
    return shoal_set_header(ctx, "Retry-After", TIER_RETRY_AFTER_SECONDS);
}

int shoal_error_from_cache(shoal_ctx *ctx, int status)
{
    if (status == CACHE_UNAVAILABLE)
        return answer_retry_later(ctx, &code_cache_unavailable);
    return shoal_fail(ctx, &code_cache_error);
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
        return answer_retry_later(ctx, &code_store_unavailable);
    case STORE_TIMEOUT:
        return answer_retry_later(ctx, &code_store_timeout);
    case STORE_BUSY:
        return answer_retry_later(ctx, &code_store_busy);
    case STORE_CONFLICT:
        return shoal_fail_with(ctx, &code_store_conflict, error->field, NULL);
    case STORE_INVALID:
        return shoal_fail_with(ctx, &code_store_invalid, error->field, NULL);
    case STORE_NOT_FOUND:
        return shoal_fail(ctx, &code_store_not_found);
    case STORE_DEADLINE: /* answered above */
    case STORE_OK:
    case STORE_ERROR:
        break;
    }
    return shoal_fail(ctx, &code_store_error);
}
