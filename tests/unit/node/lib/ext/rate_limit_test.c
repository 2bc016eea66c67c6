/* tests/unit/node/lib/ext/rate_limit_test.c: node/lib/ext/rate_limit.c, the
 * --rate-limits grammar, which rule a request meets, and what the hook does
 * when there is no Redis to ask (no worker: the cache is unavailable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/ext/rate_limit.h>

#include "conduit/api.h"
#include "fake_request.h"

static char error[512];

static shoal_rate_limit_rule rule_of(const char *text)
{
    shoal_rate_limit_rule rule;
    error[0] = '\0';
    if (shoal_rate_limit_parse_rule(text, &rule, error, sizeof error) != 0)
        fail_msg("'%s' refused: %s", text, error);
    return rule;
}

static void assert_rule_refused(const char *text, const char *named)
{
    shoal_rate_limit_rule rule;
    error[0] = '\0';
    if (shoal_rate_limit_parse_rule(text, &rule, error, sizeof error) == 0)
        fail_msg("'%s' accepted", text);
    if (strstr(error, named) == NULL)
        fail_msg("message '%s' for '%s' does not say '%s'", error, text, named);
}

static shoal_rate_limits *limits_of(const char *text)
{
    error[0] = '\0';
    shoal_rate_limits *limits = shoal_rate_limits_parse(text, error, sizeof error);
    if (limits == NULL)
        fail_msg("'%s' refused: %s", text, error);
    return limits;
}

static void assert_limits_refused(const char *text, const char *named)
{
    error[0] = '\0';
    shoal_rate_limits *limits = shoal_rate_limits_parse(text, error, sizeof error);
    if (limits != NULL) {
        shoal_rate_limits_free(limits);
        fail_msg("'%s' accepted", text);
    }
    if (strstr(error, named) == NULL)
        fail_msg("message '%s' for '%s' does not say '%s'", error, text, named);
}

/* The rule a request meets, by its name, or "none". */
static const char *found(const shoal_rate_limits *limits, unsigned method, const char *path)
{
    static char copy[256];
    snprintf(copy, sizeof copy, "%s", path);
    const shoal_rate_limit_route *route = shoal_rate_limits_find(limits, method, copy);
    return route != NULL ? route->name : "none";
}

/* ---- one rate ------------------------------------------------------------------ */

static void rates_are_a_count_per_period_with_an_optional_burst(void **state)
{
    (void)state;
    shoal_rate_limit_rule rule = rule_of("10/min");
    assert_int_equal(rule.count, 10);
    assert_int_equal(rule.period_ms, 60000);
    assert_int_equal(rule.burst, 10); /* the count, when not given */

    rule = rule_of("10/min burst 5");
    assert_int_equal(rule.count, 10);
    assert_int_equal(rule.burst, 5);

    rule = rule_of("  100/15min   burst 1 ");
    assert_int_equal(rule.count, 100);
    assert_int_equal(rule.period_ms, 15 * 60000);
    assert_int_equal(rule.burst, 1);

    assert_int_equal(rule_of("1/s").period_ms, 1000);
    assert_int_equal(rule_of("1/sec").period_ms, 1000);
    assert_int_equal(rule_of("1/30seconds").period_ms, 30000);
    assert_int_equal(rule_of("1/m").period_ms, 60000);
    assert_int_equal(rule_of("1/minute").period_ms, 60000);
    assert_int_equal(rule_of("1/2h").period_ms, 2 * 3600000);
    assert_int_equal(rule_of("1/hours").period_ms, 3600000);
    assert_int_equal(rule_of("1/day").period_ms, 86400000);
    assert_int_equal(rule_of("1/7d").period_ms, 7LL * 86400000);
    assert_int_equal(rule_of("1000000/s").count, 1000000);
    assert_int_equal(rule_of("1/s burst 1000000").burst, 1000000);
}

static void malformed_rates_say_what_is_wrong(void **state)
{
    (void)state;
    assert_rule_refused("", "missing");
    assert_rule_refused("10", "not a rate");
    assert_rule_refused("10/", "unknown unit ''");
    assert_rule_refused("10/fortnight", "unknown unit 'fortnight'");
    assert_rule_refused("10/MIN", "unknown unit 'MIN'");
    assert_rule_refused("10/ min", "unknown unit ''");
    assert_rule_refused("0/s", "from 1 to 1000000");
    assert_rule_refused("-1/s", "from 1 to 1000000");
    assert_rule_refused("1000001/s", "from 1 to 1000000");
    assert_rule_refused("1.5/s", "whole number");
    assert_rule_refused("10/0min", "whole number of units");
    assert_rule_refused("10/8day", "longer than 7 days");
    assert_rule_refused("10/min burst", "burst needs");
    assert_rule_refused("10/min burst 0", "burst needs");
    assert_rule_refused("10/min burst five", "burst needs");
    assert_rule_refused("10/min burst 1000001", "burst needs");
    assert_rule_refused("10/min 5", "unexpected '5'");
    /* fail-open belongs to route rules, not to a handler's own. */
    assert_rule_refused("10/min fail-open", "unexpected 'fail-open'");
    assert_rule_refused("10/min burst 5 burst 6", "COUNT/UNIT [burst N]");
}

/* ---- the list ------------------------------------------------------------------- */

static void conduits_rules_guard_login_and_registration_only(void **state)
{
    (void)state;
    shoal_rate_limits *limits = limits_of(SHOAL_CONDUIT_RATE_LIMITS);
    assert_int_equal(shoal_rate_limits_count(limits), 2);
    const shoal_rate_limit_route *login = shoal_rate_limits_at(limits, 0);
    assert_int_equal(login->methods, SHOAL_METHOD_POST);
    assert_string_equal(login->pattern, "/api/users/login");
    assert_string_equal(login->name, "route:POST:/api/users/login");
    assert_int_equal(login->rule.count, 10);
    assert_int_equal(login->rule.period_ms, 60000);
    assert_int_equal(login->rule.burst, 5);
    assert_false(login->fail_open);
    assert_null(shoal_rate_limits_at(limits, 2));

    assert_string_equal(found(limits, SHOAL_METHOD_POST, "/api/users/login"), "route:POST:/api/users/login");
    assert_string_equal(found(limits, SHOAL_METHOD_POST, "/api/users"), "route:POST:/api/users");
    /* Reads are not limited, nor other paths. */
    assert_string_equal(found(limits, SHOAL_METHOD_GET, "/api/users"), "none");
    assert_string_equal(found(limits, SHOAL_METHOD_GET, "/api/user"), "none");
    assert_string_equal(found(limits, SHOAL_METHOD_GET, "/api/articles"), "none");
    assert_string_equal(found(limits, SHOAL_METHOD_PUT, "/api/users/login"), "none");
    assert_string_equal(found(limits, SHOAL_METHOD_POST, "/api/users/login/more"), "none");
    assert_string_equal(found(limits, SHOAL_METHOD_OTHER, "/api/users/login"), "none");
    shoal_rate_limits_free(limits);
}

static void patterns_match_as_the_router_matches(void **state)
{
    (void)state;
    shoal_rate_limits *limits =
        limits_of("POST /api/articles/:slug/comments=5/min, GET /feed=2/s fail-open ,* /api/*rest=100/s,"
                  "PUT|POST /api/user=1/h burst 2");
    assert_int_equal(shoal_rate_limits_count(limits), 4);
    assert_string_equal(found(limits, SHOAL_METHOD_POST, "/api/articles/how-to/comments"),
                        "route:POST:/api/articles/:slug/comments");
    /* A parameter is one whole segment. */
    assert_string_equal(found(limits, SHOAL_METHOD_POST, "/api/articles//comments"), "route:*:/api/*rest");
    /* Static segments win over the wildcard, as routes do. */
    assert_string_equal(found(limits, SHOAL_METHOD_PUT, "/api/user"), "route:POST|PUT:/api/user");
    assert_string_equal(found(limits, SHOAL_METHOD_DELETE, "/api/user"), "route:*:/api/*rest");
    assert_string_equal(found(limits, SHOAL_METHOD_GET, "/api/tags"), "route:*:/api/*rest");
    /* A GET rule covers HEAD, as GET routes serve it. */
    assert_string_equal(found(limits, SHOAL_METHOD_HEAD, "/feed"), "route:GET:/feed");
    assert_string_equal(found(limits, SHOAL_METHOD_POST, "/feed"), "none");
    assert_true(shoal_rate_limits_at(limits, 1)->fail_open);
    assert_false(shoal_rate_limits_at(limits, 2)->fail_open);
    assert_int_equal(shoal_rate_limits_at(limits, 3)->rule.burst, 2);
    /* Method names come in a fixed order whatever the rule says. */
    shoal_rate_limits_free(limits);
    limits = limits_of("POST|GET /x=1/s");
    assert_string_equal(shoal_rate_limits_at(limits, 0)->name, "route:GET|POST:/x");
    shoal_rate_limits_free(limits);
}

static void an_empty_list_limits_nothing(void **state)
{
    (void)state;
    const char *const empty[] = {"", "   "};
    for (size_t i = 0; i < 2; i++) {
        shoal_rate_limits *limits = limits_of(empty[i]);
        assert_int_equal(shoal_rate_limits_count(limits), 0);
        assert_string_equal(found(limits, SHOAL_METHOD_POST, "/api/users/login"), "none");
        shoal_rate_limits_free(limits);
    }
}

static void malformed_lists_name_the_rule_and_the_problem(void **state)
{
    (void)state;
    assert_limits_refused("POST /x", "rule 1 'POST /x': expected METHODS PATTERN=RATE");
    assert_limits_refused("POST /a=1/s,,POST /b=1/s", "rule 2 is empty");
    assert_limits_refused("POST /a=1/s,", "rule 2 is empty");
    assert_limits_refused(",POST /a=1/s", "rule 1 is empty");
    assert_limits_refused("GET /a=1/s,POST /b=1/fortnight", "rule 2 'POST /b=1/fortnight': unknown unit");
    assert_limits_refused("post /x=1/s", "'post' is not *, a method");
    assert_limits_refused("GET|/x=1/s", "before '=' come a method and a path pattern");
    assert_limits_refused("GET| /x=1/s", "'GET|' is not *, a method");
    assert_limits_refused("FETCH /x=1/s", "'FETCH' is not *, a method");
    assert_limits_refused("/x=1/s", "before '=' come a method and a path pattern");
    assert_limits_refused("GET /x /y=1/s", "before '=' come a method and a path pattern");
    assert_limits_refused("GET x=1/s", "must start with '/'");
    assert_limits_refused("GET /a/*rest/b=1/s", "wildcard");
    assert_limits_refused("GET /x=1/s burst 2 fail-open now", "after '=' come a rate");
    assert_limits_refused("GET /x=1/s fail-closed", "unexpected 'fail-closed'");
    /* One method on one pattern has one limit. */
    assert_limits_refused("GET /x=1/s,GET|POST /x=2/s", "rule 2 'GET|POST /x=2/s': rule 1 already limits route:GET:/x");
    assert_limits_refused("* /x=1/s,DELETE /x=2/s", "rule 1 already limits route:*:/x");
}

/* ---- the hook without Redis ------------------------------------------------------ */

static int answer_ok(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:b}", "ok", 1));
}

static shoal_app *app_with(shoal_config *config, const char *rules)
{
    const char *flags[] = {"--rate-limits", rules, NULL};
    fake_config_load(config, flags);
    shoal_app *app = shoal_app_new(config);
    assert_non_null(app);
    assert_int_equal(shoal_app_extend(app, &shoal_rate_limit_extension), 0);
    assert_int_equal(shoal_route(shoal_app_root(app), "GET|POST", "/api/users/login", answer_ok), 0);
    assert_int_equal(shoal_route(shoal_app_root(app), "GET|POST", "/open", answer_ok), 0);
    assert_int_equal(shoal_app_freeze(app), 0);
    return app;
}

static void without_redis_a_limited_route_is_503_unless_it_fails_open(void **state)
{
    (void)state;
    shoal_config config;
    shoal_app *app = app_with(&config, "POST /api/users/login=10/min burst 5,POST /open=1/s fail-open");
    fake_request request;

    fake_request_init(&request, app, NULL, "POST", "/api/users/login");
    fake_request_dispatch(&request);
    assert_error_envelope(&request, 503, "cache.unavailable", "body");
    assert_string_equal(shoal_response_header(&request.ctx, "Retry-After"), "1");
    fake_request_finish(&request);

    fake_request_init(&request, app, NULL, "POST", "/open");
    fake_request_dispatch(&request);
    assert_int_equal(shoal_status(&request.ctx), 200);
    assert_null(shoal_response_header(&request.ctx, "RateLimit-Remaining"));
    fake_request_finish(&request);

    /* A route no rule names never asks Redis. */
    fake_request_init(&request, app, NULL, "GET", "/api/users/login");
    fake_request_dispatch(&request);
    assert_int_equal(shoal_status(&request.ctx), 200);
    fake_request_finish(&request);
    shoal_app_free(app);
    shoal_config_free(&config);
}

static void an_empty_list_registers_no_hook(void **state)
{
    (void)state;
    shoal_config config;
    shoal_app *app = app_with(&config, "");
    assert_null(shoal_app_published(app, "rate-limit"));
    fake_request request;
    fake_request_init(&request, app, NULL, "POST", "/api/users/login");
    fake_request_dispatch(&request);
    assert_int_equal(shoal_status(&request.ctx), 200);
    fake_request_finish(&request);
    shoal_app_free(app);
    shoal_config_free(&config);
}

static int check_a_bad_name(shoal_ctx *ctx)
{
    shoal_rate_limit_rule rule = {.count = 1, .period_ms = 1000, .burst = 1};
    shoal_rate_limit_result result = {.remaining = 7};
    /* Refused before Redis is asked: names are part of the key layout. */
    assert_int_equal(shoal_rate_limit_check(ctx, "Login", "k", &rule, &result), SHOAL_RATE_LIMIT_ERROR);
    assert_int_equal(result.remaining, 0);
    assert_int_equal(shoal_rate_limit_check(ctx, "route", "k", &rule, NULL), SHOAL_RATE_LIMIT_ERROR);
    assert_int_equal(shoal_rate_limit_check(ctx, "a:b", "k", &rule, NULL), SHOAL_RATE_LIMIT_ERROR);
    assert_int_equal(shoal_rate_limit_check(ctx, "", "k", &rule, NULL), SHOAL_RATE_LIMIT_ERROR);
    assert_int_equal(shoal_rate_limit_peek(ctx, "login-failure", NULL, &rule, NULL), SHOAL_RATE_LIMIT_ERROR);
    /* A good name without Redis is UNAVAILABLE: the caller decides. */
    assert_int_equal(shoal_rate_limit_check(ctx, "login-failure", "k", &rule, NULL), SHOAL_RATE_LIMIT_UNAVAILABLE);
    assert_int_equal(shoal_rate_limit_peek(ctx, "login-failure", "k", &rule, NULL), SHOAL_RATE_LIMIT_UNAVAILABLE);
    /* The 429 a handler answers with. */
    result = (shoal_rate_limit_result){.retry_after_ms = 2001, .remaining = 0, .reset_ms = 59001};
    shoal_rate_limit_reject(ctx, &rule, &result);
    return 0;
}

static void handlers_check_their_own_keys_and_answer_429(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    assert_non_null(app);
    assert_int_equal(shoal_route(shoal_app_root(app), "POST", "/login", check_a_bad_name), 0);
    assert_int_equal(shoal_app_freeze(app), 0);
    fake_request request;
    fake_request_init(&request, app, NULL, "POST", "/login");
    fake_request_dispatch(&request);
    assert_error_envelope(&request, 429, "rate.limited", "body");
    /* Whole seconds, rounded up. */
    assert_string_equal(shoal_response_header(&request.ctx, "Retry-After"), "3");
    assert_string_equal(shoal_response_header(&request.ctx, "RateLimit-Limit"), "1");
    assert_string_equal(shoal_response_header(&request.ctx, "RateLimit-Remaining"), "0");
    assert_string_equal(shoal_response_header(&request.ctx, "RateLimit-Reset"), "60");
    fake_request_finish(&request);
    shoal_app_free(app);
    shoal_config_free(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rates_are_a_count_per_period_with_an_optional_burst),
        cmocka_unit_test(malformed_rates_say_what_is_wrong),
        cmocka_unit_test(conduits_rules_guard_login_and_registration_only),
        cmocka_unit_test(patterns_match_as_the_router_matches),
        cmocka_unit_test(an_empty_list_limits_nothing),
        cmocka_unit_test(malformed_lists_name_the_rule_and_the_problem),
        cmocka_unit_test(without_redis_a_limited_route_is_503_unless_it_fails_open),
        cmocka_unit_test(an_empty_list_registers_no_hook),
        cmocka_unit_test(handlers_check_their_own_keys_and_answer_429),
    };
    return cmocka_run_group_tests_name("unit.node.ext.rate_limit", tests, NULL, NULL);
}
