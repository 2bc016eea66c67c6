/* node/lib/ext/rate_limit.c: --rate-limits, its before hook, and limits on
 * handlers' own keys. */
#include <shoal/ext/rate_limit.h>

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shoal/cache.h>
#include <shoal/log.h>

#include "../errors_internal.h"
#include "cache/ratelimit.h"

#define MAX_COUNT 1000000LL
#define MAX_BURST 1000000LL
#define MAX_PERIOD_MS (7LL * 24 * 3600 * 1000)
#define MAX_NAME_LENGTH 64
#define MAX_KEY_LENGTH 512

static const shoal_error_code code_limited = {429, "rate.limited", NULL, "too many requests; retry later"};

const shoal_error_table shoal_rate_limit_errors = {
    "rate-limit",
    (const shoal_error_code *const[]){&code_limited, NULL},
};
#define ALL_METHODS                                                                                \
    (SHOAL_METHOD_GET | SHOAL_METHOD_HEAD | SHOAL_METHOD_POST | SHOAL_METHOD_PUT | SHOAL_METHOD_DELETE |      \
     SHOAL_METHOD_PATCH | SHOAL_METHOD_OPTIONS)

struct shoal_rate_limits {
    shoal_rate_limit_route *routes;
    size_t count;
    shoal_router *router; /* pattern and method to a route above */
};

/* ---- the grammar -------------------------------------------------------------- */

static const struct {
    const char *name;
    long long ms;
} units[] = {
    {"s", 1000},          {"sec", 1000},          {"second", 1000},      {"seconds", 1000},
    {"m", 60000},         {"min", 60000},         {"minute", 60000},     {"minutes", 60000},
    {"h", 3600000},       {"hour", 3600000},      {"hours", 3600000},    {"d", 86400000},
    {"day", 86400000},    {"days", 86400000},
};

/* Digits only, 1 to maximum; anything else is -1. */
static long long parse_number(const char *text, size_t length, long long maximum)
{
    if (length == 0 || length > 18)
        return -1;
    long long value = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value >= 1 && value <= maximum ? value : -1;
}

/* Splits text on blanks into at most max words; returns the count, or
 * max + 1 when there are more. */
static size_t split_words(const char *text, size_t length, const char **words, size_t *lengths, size_t max)
{
    size_t count = 0;
    size_t i = 0;
    while (i < length) {
        while (i < length && isspace((unsigned char)text[i]))
            i++;
        if (i == length)
            break;
        size_t start = i;
        while (i < length && !isspace((unsigned char)text[i]))
            i++;
        if (count == max)
            return max + 1;
        words[count] = text + start;
        lengths[count] = i - start;
        count++;
    }
    return count;
}

static bool word_is(const char *word, size_t length, const char *expected)
{
    return strlen(expected) == length && memcmp(word, expected, length) == 0;
}

/* "COUNT/[N]UNIT" */
static int parse_rate(const char *word, size_t length, shoal_rate_limit_rule *out, char *error, size_t error_size)
{
    const char *slash = memchr(word, '/', length);
    if (slash == NULL) {
        snprintf(error, error_size, "'%.*s' is not a rate like 10/min", (int)length, word);
        return -1;
    }
    long long count = parse_number(word, (size_t)(slash - word), MAX_COUNT);
    if (count < 0) {
        snprintf(error, error_size, "the count in '%.*s' must be a whole number from 1 to %lld", (int)length,
                 word, MAX_COUNT);
        return -1;
    }
    const char *period = slash + 1;
    size_t period_length = length - (size_t)(period - word);
    size_t digits = 0;
    while (digits < period_length && period[digits] >= '0' && period[digits] <= '9')
        digits++;
    long long multiple = 1;
    if (digits > 0 && (multiple = parse_number(period, digits, 100000)) < 0) {
        snprintf(error, error_size, "the period in '%.*s' must be a whole number of units from 1", (int)length,
                 word);
        return -1;
    }
    const char *unit = period + digits;
    size_t unit_length = period_length - digits;
    long long unit_ms = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (word_is(unit, unit_length, units[i].name))
            unit_ms = units[i].ms;
    if (unit_ms == 0) {
        snprintf(error, error_size, "unknown unit '%.*s' in '%.*s' (use s, min, h or day)", (int)unit_length, unit,
                 (int)length, word);
        return -1;
    }
    if (multiple > MAX_PERIOD_MS / unit_ms) {
        snprintf(error, error_size, "the period in '%.*s' is longer than 7 days", (int)length, word);
        return -1;
    }
    out->count = count;
    out->period_ms = multiple * unit_ms;
    out->burst = count;
    return 0;
}

/* words: RATE [burst B] [fail-open]; fail_open may be NULL (not allowed). */
static int parse_rule_words(const char **words, const size_t *lengths, size_t count, shoal_rate_limit_rule *out,
                            bool *fail_open, char *error, size_t error_size)
{
    if (count == 0) {
        snprintf(error, error_size, "a rate like 10/min is missing");
        return -1;
    }
    shoal_rate_limit_rule rule;
    if (parse_rate(words[0], lengths[0], &rule, error, error_size) != 0)
        return -1;
    size_t i = 1;
    if (i < count && word_is(words[i], lengths[i], "burst")) {
        if (i + 1 == count || (rule.burst = parse_number(words[i + 1], lengths[i + 1], MAX_BURST)) < 0) {
            snprintf(error, error_size, "burst needs a whole number from 1 to %lld", MAX_BURST);
            return -1;
        }
        i += 2;
    }
    if (fail_open != NULL) {
        *fail_open = false;
        if (i < count && word_is(words[i], lengths[i], "fail-open")) {
            *fail_open = true;
            i++;
        }
    }
    if (i < count) {
        snprintf(error, error_size, "unexpected '%.*s' (after the rate: burst N%s)", (int)lengths[i], words[i],
                 fail_open != NULL ? ", then fail-open" : "");
        return -1;
    }
    *out = rule;
    return 0;
}

int shoal_rate_limit_parse_rule(const char *text, shoal_rate_limit_rule *out, char *error, size_t error_size)
{
    const char *words[4];
    size_t lengths[4];
    size_t count = split_words(text, strlen(text), words, lengths, 3);
    if (count > 3) {
        snprintf(error, error_size, "'%s' is not COUNT/UNIT [burst N]", text);
        return -1;
    }
    return parse_rule_words(words, lengths, count, out, NULL, error, error_size);
}

static unsigned parse_methods(const char *text, size_t length)
{
    if (word_is(text, length, "*"))
        return ALL_METHODS;
    static const struct {
        const char *name;
        unsigned bit;
    } methods[] = {{"GET", SHOAL_METHOD_GET},       {"HEAD", SHOAL_METHOD_HEAD},
                   {"POST", SHOAL_METHOD_POST},     {"PUT", SHOAL_METHOD_PUT},
                   {"DELETE", SHOAL_METHOD_DELETE}, {"PATCH", SHOAL_METHOD_PATCH},
                   {"OPTIONS", SHOAL_METHOD_OPTIONS}};
    unsigned bits = 0;
    size_t start = 0;
    while (start <= length) {
        const char *bar = memchr(text + start, '|', length - start);
        size_t end = bar != NULL ? (size_t)(bar - text) : length;
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
            if (word_is(text + start, end - start, methods[i].name))
                bit = methods[i].bit;
        if (bit == 0)
            return 0;
        bits |= bit;
        start = end + 1;
    }
    return bits;
}

/* "route:" + the methods ('*' or joined with '|') + ":" + the pattern. */
static char *route_name(unsigned methods, const char *pattern)
{
    char joined[64] = "";
    if (methods == ALL_METHODS) {
        strcpy(joined, "*");
    } else {
        for (unsigned bit = 1; bit < SHOAL_METHOD_OTHER; bit <<= 1) {
            if ((methods & bit) == 0)
                continue;
            if (joined[0] != '\0')
                strcat(joined, "|");
            strcat(joined, shoal_router_method_name(bit));
        }
    }
    size_t size = strlen("route:") + strlen(joined) + 1 + strlen(pattern) + 1;
    char *name = malloc(size);
    if (name != NULL)
        snprintf(name, size, "route:%s:%s", joined, pattern);
    return name;
}

void shoal_rate_limits_free(shoal_rate_limits *limits)
{
    if (limits == NULL)
        return;
    for (size_t i = 0; i < limits->count; i++) {
        free((char *)limits->routes[i].pattern);
        free((char *)limits->routes[i].name);
    }
    free(limits->routes);
    shoal_router_free(limits->router);
    free(limits);
}

/* One rule: "METHODS PATTERN=RATE [burst B] [fail-open]". */
static int parse_route(const char *text, size_t length, shoal_rate_limit_route *out, char *reason,
                       size_t reason_size)
{
    const char *equals = memchr(text, '=', length);
    if (equals == NULL) {
        snprintf(reason, reason_size, "expected METHODS PATTERN=RATE, like POST /api/users/login=10/min");
        return -1;
    }
    const char *left[3];
    size_t left_lengths[3];
    if (split_words(text, (size_t)(equals - text), left, left_lengths, 2) != 2) {
        snprintf(reason, reason_size, "before '=' come a method and a path pattern, like POST /api/users/login");
        return -1;
    }
    out->methods = parse_methods(left[0], left_lengths[0]);
    if (out->methods == 0) {
        snprintf(reason, reason_size, "'%.*s' is not *, a method (GET, HEAD, POST, PUT, DELETE, PATCH, "
                                      "OPTIONS) or several joined with |",
                 (int)left_lengths[0], left[0]);
        return -1;
    }
    const char *right[5];
    size_t right_lengths[5];
    const char *rate = equals + 1;
    size_t count = split_words(rate, length - (size_t)(rate - text), right, right_lengths, 4);
    if (count > 4) {
        snprintf(reason, reason_size, "after '=' come a rate, then optionally burst N and fail-open");
        return -1;
    }
    if (parse_rule_words(right, right_lengths, count, &out->rule, &out->fail_open, reason, reason_size) != 0)
        return -1;
    char *pattern = strndup(left[1], left_lengths[1]);
    char *name = pattern != NULL ? route_name(out->methods, pattern) : NULL;
    if (name == NULL) {
        free(pattern);
        snprintf(reason, reason_size, "out of memory");
        return -1;
    }
    out->pattern = pattern;
    out->name = name;
    return 0;
}

shoal_rate_limits *shoal_rate_limits_parse(const char *text, char *error, size_t error_size)
{
    shoal_rate_limits *limits = calloc(1, sizeof *limits);
    if (limits == NULL || (limits->router = shoal_router_new()) == NULL) {
        free(limits);
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    size_t rules = 0;
    for (const char *p = text; *p != '\0'; p++)
        rules += *p == ',';
    limits->routes = calloc(rules + 1, sizeof *limits->routes);
    if (limits->routes == NULL) {
        shoal_rate_limits_free(limits);
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    const char *cursor = text;
    size_t position = 0;
    for (;;) {
        size_t length = strcspn(cursor, ",");
        position++;
        const char *words[1];
        size_t lengths[1];
        bool blank = split_words(cursor, length, words, lengths, 1) == 0;
        /* An empty list limits nothing; an empty rule inside one is a typo. */
        if (blank && !(position == 1 && cursor[length] == '\0')) {
            snprintf(error, error_size, "rule %zu is empty", position);
            shoal_rate_limits_free(limits);
            return NULL;
        }
        if (!blank) {
            char reason[256];
            shoal_rate_limit_route *route = &limits->routes[limits->count];
            int rc = parse_route(cursor, length, route, reason, sizeof reason);
            if (rc == 0) {
                limits->count++;
                for (size_t i = 0; i + 1 < limits->count && rc == 0; i++) {
                    unsigned both = limits->routes[i].methods & route->methods;
                    if (both != 0 && strcmp(limits->routes[i].pattern, route->pattern) == 0) {
                        snprintf(reason, sizeof reason, "rule %zu already limits %s", i + 1, limits->routes[i].name);
                        rc = -1;
                    }
                }
                if (rc == 0 && shoal_router_add(limits->router, route->methods, route->pattern, route, reason,
                                                sizeof reason) != 0)
                    rc = -1;
            }
            if (rc != 0) {
                snprintf(error, error_size, "rule %zu '%.*s': %s", position, (int)length, cursor, reason);
                shoal_rate_limits_free(limits);
                return NULL;
            }
        }
        if (cursor[length] == '\0')
            break;
        cursor += length + 1;
    }
    shoal_router_freeze(limits->router);
    return limits;
}

size_t shoal_rate_limits_count(const shoal_rate_limits *limits)
{
    return limits->count;
}

const shoal_rate_limit_route *shoal_rate_limits_at(const shoal_rate_limits *limits, size_t index)
{
    return index < limits->count ? &limits->routes[index] : NULL;
}

const shoal_rate_limit_route *shoal_rate_limits_find(const shoal_rate_limits *limits, unsigned method, char *path)
{
    if (limits->count == 0)
        return NULL;
    shoal_router_match match;
    if (shoal_router_match_path(limits->router, method, path, &match) != SHOAL_ROUTER_FOUND)
        return NULL;
    return match.target;
}

/* ---- checks ---------------------------------------------------------------------- */

static bool valid_name(const char *name)
{
    size_t length = name != NULL ? strlen(name) : 0;
    if (length == 0 || length > MAX_NAME_LENGTH)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") == length;
}

/* True at most once a second for the whole process: an outage under load
 * would otherwise write a log line per request. */
static bool log_due(void)
{
    static atomic_llong last_second;
    long long now = (long long)time(NULL);
    long long last = atomic_load(&last_second);
    return now != last && atomic_compare_exchange_strong(&last_second, &last, now);
}

static shoal_rate_limit_status run(shoal_ctx *ctx, const char *name, const char *key, size_t key_length,
                                   const shoal_rate_limit_rule *rule, bool peek, shoal_rate_limit_result *out)
{
    shoal_rate_limit_result ignored;
    if (out == NULL)
        out = &ignored;
    *out = (shoal_rate_limit_result){0};
    if (key_length > MAX_KEY_LENGTH || rule == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "rate_limit", "%s: the key is longer than %d bytes or the rule is missing", name,
                  MAX_KEY_LENGTH);
        return SHOAL_RATE_LIMIT_ERROR;
    }
    /* "<prefix>rl:<name>:<key>": the prefix keeps services on one Redis
     * out of each other's buckets. */
    const char *prefix = cache_key_prefix(shoal_cache(ctx));
    char *redis_key = shoal_arena_alloc(shoal_ctx_arena(ctx),
                                        CACHE_RATELIMIT_KEY_SIZE(strlen(prefix), strlen(name), key_length));
    if (redis_key == NULL)
        return SHOAL_RATE_LIMIT_ERROR;
    size_t size = cache_ratelimit_key(prefix, name, key, key_length, redis_key);
    cache_ratelimit_limit limit = {.count = rule->count, .period_ms = rule->period_ms, .burst = rule->burst};
    cache_ratelimit_result result;
    cache_status status = peek ? cache_ratelimit_peek(shoal_cache(ctx), redis_key, size, &limit, &result)
                               : cache_ratelimit_check(shoal_cache(ctx), redis_key, size, &limit, &result);
    if (status == CACHE_UNAVAILABLE)
        return SHOAL_RATE_LIMIT_UNAVAILABLE;
    if (status != CACHE_OK) {
        if (log_due())
            shoal_log(SHOAL_LOG_ERROR, "rate_limit", "%s: Redis answered with an error or the rule is out of range",
                      name);
        return SHOAL_RATE_LIMIT_ERROR;
    }
    out->retry_after_ms = result.retry_after_ms;
    out->remaining = result.remaining;
    out->reset_ms = result.reset_ms;
    return result.allowed ? SHOAL_RATE_LIMIT_ALLOWED : SHOAL_RATE_LIMIT_LIMITED;
}

static shoal_rate_limit_status check_named(shoal_ctx *ctx, const char *name, const char *key,
                                           const shoal_rate_limit_rule *rule, bool peek, shoal_rate_limit_result *out)
{
    if (!valid_name(name) || strcmp(name, "route") == 0 || key == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "rate_limit", "'%s' is not a limit name ([a-z0-9._-]{1,64}, not route) or the "
                  "key is missing", name != NULL ? name : "(null)");
        if (out != NULL)
            *out = (shoal_rate_limit_result){0};
        return SHOAL_RATE_LIMIT_ERROR;
    }
    return run(ctx, name, key, strlen(key), rule, peek, out);
}

shoal_rate_limit_status shoal_rate_limit_check(shoal_ctx *ctx, const char *name, const char *key,
                                               const shoal_rate_limit_rule *rule, shoal_rate_limit_result *out)
{
    return check_named(ctx, name, key, rule, false, out);
}

shoal_rate_limit_status shoal_rate_limit_peek(shoal_ctx *ctx, const char *name, const char *key,
                                              const shoal_rate_limit_rule *rule, shoal_rate_limit_result *out)
{
    return check_named(ctx, name, key, rule, true, out);
}

/* Whole seconds, rounded up. */
static long long seconds_up(long long ms)
{
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

int shoal_rate_limit_headers(shoal_ctx *ctx, const shoal_rate_limit_rule *rule, const shoal_rate_limit_result *result)
{
    char limit[24], remaining[24], reset[24];
    snprintf(limit, sizeof limit, "%lld", rule->burst);
    snprintf(remaining, sizeof remaining, "%lld", result->remaining > 0 ? result->remaining : 0);
    snprintf(reset, sizeof reset, "%lld", seconds_up(result->reset_ms));
    if (shoal_set_header(ctx, "RateLimit-Limit", limit) != 0 ||
        shoal_set_header(ctx, "RateLimit-Remaining", remaining) != 0 ||
        shoal_set_header(ctx, "RateLimit-Reset", reset) != 0)
        return -1;
    return 0;
}

int shoal_rate_limit_reject(shoal_ctx *ctx, const shoal_rate_limit_rule *rule, const shoal_rate_limit_result *result)
{
    int rc = shoal_fail(ctx, &code_limited);
    if (rc != 0)
        return rc;
    char retry_after[24];
    long long seconds = seconds_up(result->retry_after_ms);
    snprintf(retry_after, sizeof retry_after, "%lld", seconds > 0 ? seconds : 1);
    if (shoal_set_header(ctx, "Retry-After", retry_after) != 0)
        return -1;
    return shoal_rate_limit_headers(ctx, rule, result);
}

/* ---- the extension ------------------------------------------------------------------ */

static shoal_flow limit_route(shoal_ctx *ctx, void *data)
{
    const shoal_rate_limits *limits = data;
    char *path = shoal_arena_strdup(shoal_ctx_arena(ctx), shoal_path(ctx));
    if (path == NULL) {
        shoal_fail(ctx, &shoal_code_internal);
        return SHOAL_STOP;
    }
    const shoal_rate_limit_route *route = shoal_rate_limits_find(limits, shoal_method(ctx), path);
    if (route == NULL)
        return SHOAL_NEXT;
    /* An empty address is a transport that cannot say; they share one bucket. */
    const char *client = shoal_client_address(ctx);
    if (client[0] == '\0')
        client = "unknown";
    shoal_rate_limit_result result;
    switch (run(ctx, route->name, client, strlen(client), &route->rule, false, &result)) {
    case SHOAL_RATE_LIMIT_ALLOWED:
        shoal_rate_limit_headers(ctx, &route->rule, &result);
        return SHOAL_NEXT;
    case SHOAL_RATE_LIMIT_LIMITED:
        shoal_rate_limit_reject(ctx, &route->rule, &result);
        return SHOAL_STOP;
    case SHOAL_RATE_LIMIT_UNAVAILABLE:
        break;
    case SHOAL_RATE_LIMIT_ERROR:
        shoal_error_from_cache(ctx, CACHE_ERROR);
        return SHOAL_STOP;
    }
    if (log_due())
        shoal_log(SHOAL_LOG_WARNING, "rate_limit", "Redis is unreachable: %s %s", route->name,
                  route->fail_open ? "is not limited now (fail-open)" : "answers 503");
    if (route->fail_open)
        return SHOAL_NEXT;
    shoal_error_from_cache(ctx, CACHE_UNAVAILABLE);
    return SHOAL_STOP;
}

/* The rules parse at start, so that a typo exits 2 rather than limiting
 * nothing (or everything) later. */
static int validate(void *values, char *error, size_t error_size)
{
    const shoal_rate_limit_settings_values *settings = values;
    char reason[512];
    shoal_rate_limits *limits = shoal_rate_limits_parse(settings->rules, reason, sizeof reason);
    if (limits == NULL) {
        snprintf(error, error_size, "--rate-limits (SHOAL_RATE_LIMITS): %s", reason);
        return -1;
    }
    shoal_rate_limits_free(limits);
    return 0;
}

static const shoal_setting rate_limit_table[] = {
    {"rate-limits", "SHOAL_RATE_LIMITS", SHOAL_SETTING_STRING, offsetof(shoal_rate_limit_settings_values, rules), "", 0,
     0,
     "per-client limits shared by all nodes, comma-separated rules "
     "'METHODS PATTERN=COUNT/[N]UNIT [burst B] [fail-open]' (units s, min, h, day); empty: none",
     NULL},
};
const shoal_settings shoal_rate_limit_settings =
    SHOAL_SETTINGS("rate limits", shoal_rate_limit_settings_values, rate_limit_table, validate);

/* The instance: the parsed rules, which the hook reads as its data. */
static void *create(shoal_app *app, void *data)
{
    (void)data;
    /* An app made without the table parsed limits nothing (the default). */
    const shoal_rate_limit_settings_values *values = shoal_app_settings(app, &shoal_rate_limit_settings);
    const char *text = values != NULL ? values->rules : "";
    char error[512];
    shoal_rate_limits *limits = shoal_rate_limits_parse(text != NULL ? text : "", error, sizeof error);
    if (limits == NULL)
        shoal_app_fail(app, "--rate-limits: %s", error);
    return limits;
}

static void destroy(void *limits)
{
    shoal_rate_limits_free(limits);
}

static int init(shoal_app *app, void *instance)
{
    const shoal_rate_limits *limits = instance;
    if (limits->count == 0)
        return 0;
    if (shoal_before(shoal_app_root(app), limit_route, instance) != 0)
        return -1;
    for (size_t i = 0; i < limits->count; i++)
        shoal_log(SHOAL_LOG_INFO, "rate_limit", "%s: %lld per %lld ms, burst %lld%s", limits->routes[i].name,
                  limits->routes[i].rule.count, limits->routes[i].rule.period_ms, limits->routes[i].rule.burst,
                  limits->routes[i].fail_open ? ", fail-open" : "");
    return 0;
}

const shoal_extension shoal_rate_limit_extension = {
    .name = "rate-limit",
    .init = init,
    .settings = &shoal_rate_limit_settings,
    .create = create,
    .destroy = destroy,
};
