/* node/lib/overload.c: the answers a node gives for its own load, as opposed
 * to a shared tier's failure (tiers.c): a request that arrived with the
 * node full, and one whose deadline passed before its work could start.
 * Both are 503 with Retry-After and a stable code, counted in /metrics, so
 * that clients back off and operators see why. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "context.h"
#include "metrics_registry.h"

/* A full node drains within a fraction of a second; one second spreads the
 * retries without making clients wait long. */
#define OVERLOAD_RETRY_AFTER_SECONDS "1"

/* shoal_shed_reason's values, in its order. */
static const char *const shed_reasons[] = {
    [SHOAL_SHED_IN_FLIGHT] = "in_flight",
    [SHOAL_SHED_DEADLINE] = "deadline",
    NULL,
};

int shoal_overload_register_metrics(shoal_app *app)
{
    static const shoal_metric_spec shed = {
        .name = "shoal_http_requests_shed_total",
        .help = "Requests answered 503 with Retry-After for the node's own load, by reason: in_flight "
                "(--max-in-flight requests were already in the node when it arrived) or deadline "
                "(--request-deadline-ms passed before work it needed could start).",
        .label = "reason",
        .values = shed_reasons,
    };
    shoal_app_core_metrics(app)->shed = shoal_app_counter(app, &shed);
    return shoal_app_core_metrics(app)->shed != NULL ? 0 : -1;
}

static int refuse(shoal_ctx *ctx, shoal_shed_reason reason, const shoal_error_code *error)
{
    shoal_count(ctx, shoal_app_core_metrics(ctx->app)->shed, reason, 1);
    if (shoal_fail(ctx, error) != 0)
        return -1;
    return shoal_set_header(ctx, "Retry-After", OVERLOAD_RETRY_AFTER_SECONDS);
}

bool shoal_deadline_passed(const shoal_ctx *ctx)
{
    return ctx->deadline_ns != 0 && shoal_monotonic_ns() >= ctx->deadline_ns;
}

int shoal_error_deadline(shoal_ctx *ctx)
{
    return refuse(ctx, SHOAL_SHED_DEADLINE, &shoal_code_request_deadline_exceeded);
}

int shoal_error_overloaded(shoal_ctx *ctx)
{
    return refuse(ctx, SHOAL_SHED_IN_FLIGHT, &shoal_code_node_overloaded);
}

bool shoal_request_start_parse(const char *text, uint64_t *epoch_us)
{
    if (text == NULL)
        return false;
    if (text[0] == 't' && text[1] == '=')
        text += 2;
    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *epoch_us = (uint64_t)value;
    return true;
}

uint64_t shoal_request_deadline(uint64_t arrived_ns, int budget_ms, uint64_t waited_ns)
{
    if (budget_ms <= 0)
        return 0;
    uint64_t budget_ns = (uint64_t)budget_ms * 1000000u;
    if (waited_ns > budget_ns)
        waited_ns = budget_ns;
    /* Never 0, which means no deadline: a request with all of its budget
     * spent gets the moment it arrived, long past by the time it is read. */
    uint64_t deadline = arrived_ns + budget_ns - waited_ns;
    return deadline != 0 ? deadline : 1;
}
