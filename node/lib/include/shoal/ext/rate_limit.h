/* node/lib/include/shoal/ext/rate_limit.h: rate limits shared by every node (GCRA in Redis,
 * cache/ratelimit.h), applied per route by configuration and available to
 * handlers for keys of their own.
 *
 * --rate-limits (SHOAL_RATE_LIMITS) is a comma-separated list of rules:
 *
 *   METHODS PATTERN=COUNT/[N]UNIT [burst B] [fail-open]
 *
 *   METHODS  GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS, several joined
 *            with '|', or '*' for all; a GET rule covers HEAD too
 *   PATTERN  a route pattern as the router reads it: /api/users/login,
 *            /api/articles/:slug/comments (a trailing *name
 *            matches the rest of the path)
 *   COUNT/[N]UNIT  COUNT requests per N (default 1) UNITs: s, min, h or day
 *            (also sec, second, m, minute, hour, d and plurals): 10/min,
 *            100/15min, 1000/day. Sustained rate; at most 1,000,000 per
 *            period, periods from 1 s to 7 days.
 *   burst B  how many may come back to back from a full bucket (default:
 *            COUNT)
 *   fail-open  let requests through while Redis is unreachable (default:
 *            answer 503, since a limit nobody enforces protects nothing)
 *
 * Example: POST /api/users/login=10/min burst 5,POST /api/users=20/h burst 10
 *
 * Each client (shoal_client_address: the peer, or whom a trusted proxy
 * forwards) has its own bucket per rule. A request over the limit gets 429
 * `rate.limited` with Retry-After; every limited route's answer carries
 * RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset. An empty list
 * limits nothing. A rule's path is matched the way the router matches, so a
 * limit cannot be stepped around with a trailing slash that no route
 * accepts either. */
#ifndef SHOAL_RATE_LIMIT_H
#define SHOAL_RATE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include <shoal/shoal.h>


typedef struct shoal_rate_limit_rule {
    long long count;     /* requests ... */
    long long period_ms; /* ... per this period, sustained */
    long long burst;     /* back to back from a full bucket, >= 1 */
} shoal_rate_limit_rule;

/* Parses "COUNT/[N]UNIT [burst B]" (the right-hand side of a rule, without
 * fail-open). 0, or -1 with the reason in error. */
int shoal_rate_limit_parse_rule(const char *text, shoal_rate_limit_rule *out, char *error, size_t error_size);

/* ---- the --rate-limits list ------------------------------------------------ */

typedef struct shoal_rate_limit_route {
    unsigned methods;    /* SHOAL_METHOD_* bits */
    const char *pattern;
    shoal_rate_limit_rule rule;
    bool fail_open;
    const char *name;    /* the bucket's name: "route:POST:/api/users/login" */
} shoal_rate_limit_route;

typedef struct shoal_rate_limits shoal_rate_limits;

/* NULL with the reason in error (naming the rule by its position and
 * text) when text does not follow the grammar above, a pattern is invalid,
 * or two rules cover one method on one pattern. */
shoal_rate_limits *shoal_rate_limits_parse(const char *text, char *error, size_t error_size);
void shoal_rate_limits_free(shoal_rate_limits *limits);
size_t shoal_rate_limits_count(const shoal_rate_limits *limits);
const shoal_rate_limit_route *shoal_rate_limits_at(const shoal_rate_limits *limits, size_t index);
/* The rule for a request, or NULL. path is a writable copy of the request
 * path; it is modified (the router splits it in place). */
const shoal_rate_limit_route *shoal_rate_limits_find(const shoal_rate_limits *limits, unsigned method,
                                                     char *path);

/* Applies --rate-limits with a before hook on the root blueprint; registers
 * nothing when the list is empty. Load it after the request id and before
 * the extensions whose work it protects. */
extern const shoal_extension shoal_rate_limit_extension;

/* --rate-limits (SHOAL_RATE_LIMITS): the rules above. The library's
 * default is "" (no limits); a service sets its own with shoal_service's
 * defaults (shoal-node: Conduit's credential endpoints). */
typedef struct shoal_rate_limit_settings_values {
    const char *rules;
} shoal_rate_limit_settings_values;
extern const shoal_settings shoal_rate_limit_settings;

/* ---- for handlers: limits on keys of their own ------------------------------ */

typedef enum shoal_rate_limit_status {
    SHOAL_RATE_LIMIT_ALLOWED = 0,
    SHOAL_RATE_LIMIT_LIMITED,
    SHOAL_RATE_LIMIT_UNAVAILABLE, /* Redis cannot be reached: the caller decides */
    SHOAL_RATE_LIMIT_ERROR,       /* Redis answered with an error; a bad name or rule */
} shoal_rate_limit_status;

typedef struct shoal_rate_limit_result {
    long long retry_after_ms; /* LIMITED: until one more is allowed */
    long long remaining;      /* allowed right now (check: after this one) */
    long long reset_ms;       /* until the bucket is full again */
} shoal_rate_limit_result;

/* Counts one event for key in the bucket family name, unless it is over
 * rule, and says whether it was allowed. name is [a-z0-9._-]{1,64}, not
 * "route" (which route rules use): e.g. "login-failure", with key the
 * client address, or the account and the address. key is any bytes up to
 * 512. The Redis key is "<prefix>rl:<name>:<key>" (--redis-prefix), shared
 * by every node of the service. out may be NULL. */
shoal_rate_limit_status shoal_rate_limit_check(shoal_ctx *ctx, const char *name, const char *key,
                                               const shoal_rate_limit_rule *rule, shoal_rate_limit_result *out);
/* The same without counting: would one more be allowed now? Peek before
 * the work, check once the event to limit happened (a failed login). */
shoal_rate_limit_status shoal_rate_limit_peek(shoal_ctx *ctx, const char *name, const char *key,
                                              const shoal_rate_limit_rule *rule, shoal_rate_limit_result *out);

/* Sets RateLimit-Limit (the burst), RateLimit-Remaining and RateLimit-Reset
 * (whole seconds until the bucket is full). 0 or -1. */
int shoal_rate_limit_headers(shoal_ctx *ctx, const shoal_rate_limit_rule *rule, const shoal_rate_limit_result *result);
/* Answers 429 rate.limited with Retry-After (whole seconds, rounded up, at
 * least 1) and the headers above; returns what shoal_error returns. */
int shoal_rate_limit_reject(shoal_ctx *ctx, const shoal_rate_limit_rule *rule, const shoal_rate_limit_result *result);

#endif
