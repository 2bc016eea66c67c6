/* tests/unit/node/lib/router_test.c: node/lib/router.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <shoal/router.h>

/* Distinct addresses to stand for handlers. */
static int target_a, target_b, target_c;
#define A (&target_a)
#define B (&target_b)
#define C (&target_c)

enum { GET = SHOAL_METHOD_GET, HEAD = SHOAL_METHOD_HEAD, POST = SHOAL_METHOD_POST,
       PUT = SHOAL_METHOD_PUT, DELETE = SHOAL_METHOD_DELETE, OPTIONS = SHOAL_METHOD_OPTIONS };

static int setup(void **state)
{
    *state = shoal_router_new();
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    shoal_router_free(*state);
    return 0;
}

static void add(shoal_router *router, unsigned methods, const char *pattern, void *target)
{
    char error[256] = "";
    if (shoal_router_add(router, methods, pattern, target, error, sizeof error) != 0)
        fail_msg("cannot add %s: %s", pattern, error);
}

/* Returns the reason, which must be non-empty. */
static const char *add_fails(shoal_router *router, unsigned methods, const char *pattern)
{
    static char error[256];
    error[0] = '\0';
    assert_int_equal(shoal_router_add(router, methods, pattern, A, error, sizeof error), -1);
    assert_true(error[0] != '\0');
    return error;
}

/* The path is copied: matching writes into it, and the parameters point
 * into that copy, so a routed result must not be moved. */
typedef struct routed {
    char path[256];
    shoal_router_result result;
    shoal_router_match match;
} routed;

static void route(routed *r, const shoal_router *router, unsigned method, const char *path)
{
    snprintf(r->path, sizeof r->path, "%s", path);
    r->result = shoal_router_match_path(router, method, r->path, &r->match);
}

static void assert_found(const routed *r, void *target)
{
    assert_int_equal(r->result, SHOAL_ROUTER_FOUND);
    assert_ptr_equal(r->match.target, target);
}

static void assert_param(const routed *r, const char *name, const char *value)
{
    const char *actual = shoal_router_param_value(&r->match, name);
    if (actual == NULL)
        fail_msg("no parameter '%s'", name);
    assert_string_equal(actual, value);
}

static void test_static_routes_match_exactly(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/", A);
    add(router, GET, "/articles", B);
    add(router, GET, "/articles/feed", C);

    routed r;
    route(&r, router, GET, "/");
    assert_found(&r, A);
    assert_int_equal(r.match.param_count, 0);
    route(&r, router, GET, "/articles");
    assert_found(&r, B);
    route(&r, router, GET, "/articles/feed");
    assert_found(&r, C);
    route(&r, router, GET, "/articles/fee");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
    route(&r, router, GET, "/articles/feeds");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
    route(&r, router, GET, "/Articles");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
}

static void test_parameters_capture_whole_segments(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles/:slug/comments/:id", A);

    routed r;
    route(&r, router, GET, "/articles/how-to/comments/17");
    assert_found(&r, A);
    assert_int_equal(r.match.param_count, 2);
    assert_param(&r, "slug", "how-to");
    assert_param(&r, "id", "17");
    assert_null(shoal_router_param_value(&r.match, "missing"));

    /* A parameter is never empty. */
    route(&r, router, GET, "/articles//comments/17");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
}

static void test_parameters_are_terminated_inside_the_callers_buffer(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/profiles/:username/follow", A);

    routed r;
    route(&r, router, GET, "/profiles/jake/follow");
    assert_found(&r, A);
    const char *value = shoal_router_param_value(&r.match, "username");
    assert_true(value >= r.path && value < r.path + sizeof r.path);
    assert_ptr_equal(value, r.path + strlen("/profiles/"));
    assert_string_equal(value, "jake");
}

static void test_wildcard_takes_the_rest_with_slashes(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/files/:bucket/*path", A);

    routed r;
    route(&r, router, GET, "/files/b1/a/b/c.txt");
    assert_found(&r, A);
    assert_param(&r, "bucket", "b1");
    assert_param(&r, "path", "a/b/c.txt");
}

static void test_wildcard_matches_an_empty_rest(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/static/*rest", A);

    routed r;
    route(&r, router, GET, "/static/");
    assert_found(&r, A);
    assert_param(&r, "rest", "");
    route(&r, router, GET, "/static");
    assert_found(&r, A);
    assert_param(&r, "rest", "");
}

static void test_bare_wildcard_is_named_star(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/*", A);

    routed r;
    route(&r, router, GET, "/anything/at/all");
    assert_found(&r, A);
    assert_param(&r, "*", "anything/at/all");
    route(&r, router, GET, "/");
    assert_found(&r, A);
    assert_param(&r, "*", "");
}

static void test_static_beats_parameter_beats_wildcard(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles/feed", A);
    add(router, GET, "/articles/:slug", B);
    add(router, GET, "/articles/*rest", C);

    routed r;
    route(&r, router, GET, "/articles/feed");
    assert_found(&r, A);
    assert_int_equal(r.match.param_count, 0);
    route(&r, router, GET, "/articles/other");
    assert_found(&r, B);
    assert_param(&r, "slug", "other");
    route(&r, router, GET, "/articles/other/deeper");
    assert_found(&r, C);
    assert_param(&r, "rest", "other/deeper");
}

static void test_backtracks_from_a_static_dead_end_to_a_parameter(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/a/c/d", A);
    add(router, GET, "/a/:x/b", B);

    routed r;
    route(&r, router, GET, "/a/c/b");
    assert_found(&r, B);
    assert_int_equal(r.match.param_count, 1);
    assert_param(&r, "x", "c");
    route(&r, router, GET, "/a/c/d");
    assert_found(&r, A);
    assert_int_equal(r.match.param_count, 0);
}

static void test_backtracks_when_the_static_route_lacks_the_method(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles/feed", A);
    add(router, DELETE, "/articles/:slug", B);

    routed r;
    route(&r, router, DELETE, "/articles/feed");
    assert_found(&r, B);
    assert_param(&r, "slug", "feed");
}

static void test_backtracking_drops_parameters_of_abandoned_branches(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/a/:x/:y/end", A);
    add(router, GET, "/a/*rest", B);

    routed r;
    route(&r, router, GET, "/a/1/2/other");
    assert_found(&r, B);
    assert_int_equal(r.match.param_count, 1);
    assert_param(&r, "rest", "1/2/other");
    assert_null(shoal_router_param_value(&r.match, "x"));
}

static void test_unknown_path_is_not_found_with_no_methods(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles", A);

    routed r;
    route(&r, router, GET, "/tags");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
    assert_null(r.match.target);
    assert_int_equal(r.match.allowed, 0);
    /* An intermediate node without targets is not a route. */
    add(router, GET, "/api/users/login", B);
    route(&r, router, GET, "/api/users");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
}

static void test_known_path_with_other_method_is_405_with_allowed_mask(void **state)
{
    shoal_router *router = *state;
    add(router, GET | POST, "/articles", A);
    add(router, PUT, "/articles", B);

    routed r;
    route(&r, router, DELETE, "/articles");
    assert_int_equal(r.result, SHOAL_ROUTER_METHOD_NOT_ALLOWED);
    assert_null(r.match.target);
    assert_int_equal(r.match.allowed, GET | HEAD | POST | PUT);

    route(&r, router, PUT, "/articles");
    assert_found(&r, B);
    assert_int_equal(r.match.allowed, GET | HEAD | POST | PUT);
}

static void test_405_mask_unites_every_route_matching_the_path(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles/feed", A);
    add(router, DELETE, "/articles/:slug", B);

    routed r;
    route(&r, router, POST, "/articles/feed");
    assert_int_equal(r.result, SHOAL_ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(r.match.allowed, GET | HEAD | DELETE);
}

static void test_unroutable_method_token_is_405_on_a_known_path(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles", A);

    routed r;
    route(&r, router, shoal_router_method_from_name("BREW"), "/articles");
    assert_int_equal(r.result, SHOAL_ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(r.match.allowed, GET | HEAD);
}

static void test_head_falls_back_to_get(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles", A);
    add(router, GET, "/tags", B);
    add(router, HEAD, "/tags", C);

    routed r;
    route(&r, router, HEAD, "/articles");
    assert_found(&r, A);
    assert_int_equal(r.match.allowed, GET | HEAD);
    /* An explicit HEAD route wins over the fallback. */
    route(&r, router, HEAD, "/tags");
    assert_found(&r, C);
}

static void test_head_without_get_is_not_allowed(void **state)
{
    shoal_router *router = *state;
    add(router, POST, "/users", A);

    routed r;
    route(&r, router, HEAD, "/users");
    assert_int_equal(r.result, SHOAL_ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(r.match.allowed, POST);
}

static void test_trailing_slash_is_a_distinct_path(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles", A);

    routed r;
    route(&r, router, GET, "/articles/");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);

    add(router, GET, "/articles/", B);
    route(&r, router, GET, "/articles/");
    assert_found(&r, B);
    route(&r, router, GET, "/articles");
    assert_found(&r, A);
}

static void test_empty_segments_are_static_and_literal(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/a//b", A);

    routed r;
    route(&r, router, GET, "/a//b");
    assert_found(&r, A);
    route(&r, router, GET, "/a/b");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
}

static void test_paths_must_be_absolute(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/", A);
    routed r;
    route(&r, router, GET, "");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
    route(&r, router, GET, "relative");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
    shoal_router_match match;
    assert_int_equal(shoal_router_match_path(router, GET, NULL, &match), SHOAL_ROUTER_NOT_FOUND);
}

static void test_invalid_patterns_are_rejected(void **state)
{
    shoal_router *router = *state;
    add_fails(router, GET, "articles");
    add_fails(router, GET, "");
    char error[64];
    assert_int_equal(shoal_router_add(router, GET, NULL, A, error, sizeof error), -1);
    add_fails(router, GET, "/articles/:");
    add_fails(router, GET, "/:/x");
    add_fails(router, GET, "/files/*rest/more");
    add_fails(router, GET, "/files/*/more");
    add_fails(router, 0, "/no-method");
    add_fails(router, SHOAL_METHOD_OTHER, "/other-method");
}

static void test_conflicting_parameter_names_are_rejected(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles/:slug", A);
    const char *reason = add_fails(router, DELETE, "/articles/:id");
    assert_non_null(strstr(reason, "slug"));
    add(router, DELETE, "/articles/:slug", B);

    add(router, GET, "/files/*path", C);
    add_fails(router, POST, "/files/*other");
    add_fails(router, POST, "/files/*");
}

static void test_a_method_is_registered_once_per_pattern(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles", A);
    add_fails(router, GET, "/articles");
    add_fails(router, POST | GET, "/articles");
    /* The failed add must not have taken POST. */
    add(router, POST, "/articles", B);

    routed r;
    route(&r, router, GET, "/articles");
    assert_found(&r, A);
    route(&r, router, POST, "/articles");
    assert_found(&r, B);
}

static void test_frozen_router_rejects_additions_but_still_matches(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/articles", A);
    shoal_router_freeze(router);
    const char *reason = add_fails(router, GET, "/tags");
    assert_non_null(strstr(reason, "frozen"));

    routed r;
    route(&r, router, GET, "/articles");
    assert_found(&r, A);
    route(&r, router, GET, "/tags");
    assert_int_equal(r.result, SHOAL_ROUTER_NOT_FOUND);
}

static void test_at_most_max_params_per_pattern(void **state)
{
    shoal_router *router = *state;
    add(router, GET, "/:a/:b/:c/:d/:e/:f/:g/*h", A);
    add_fails(router, GET, "/x/:a/:b/:c/:d/:e/:f/:g/:h/:i");

    routed r;
    route(&r, router, GET, "/1/2/3/4/5/6/7/8/9");
    assert_found(&r, A);
    assert_int_equal(r.match.param_count, SHOAL_ROUTER_MAX_PARAMS);
    assert_param(&r, "a", "1");
    assert_param(&r, "g", "7");
    assert_param(&r, "h", "8/9");
}

static void test_method_names_round_trip(void **state)
{
    (void)state;
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        unsigned method = shoal_router_method_from_name(names[i]);
        assert_int_equal(method, 1u << i);
        assert_string_equal(shoal_router_method_name(method), names[i]);
    }
    assert_int_equal(shoal_router_method_from_name("get"), SHOAL_METHOD_OTHER);
    assert_int_equal(shoal_router_method_from_name("BREW"), SHOAL_METHOD_OTHER);
    assert_int_equal(shoal_router_method_from_name(""), SHOAL_METHOD_OTHER);
    assert_int_equal(shoal_router_method_from_name(NULL), 0);
    assert_null(shoal_router_method_name(0));
    assert_null(shoal_router_method_name(GET | POST));
    assert_null(shoal_router_method_name(SHOAL_METHOD_OTHER));
}

static void test_format_allow_lists_methods_in_fixed_order(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(shoal_router_format_allow(POST | GET | OPTIONS | HEAD, out, sizeof out),
                     strlen("GET, HEAD, POST, OPTIONS"));
    assert_string_equal(out, "GET, HEAD, POST, OPTIONS");

    assert_int_equal(shoal_router_format_allow(DELETE | SHOAL_METHOD_OTHER, out, sizeof out), 6);
    assert_string_equal(out, "DELETE");
    assert_int_equal(shoal_router_format_allow(0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void test_format_allow_truncates_like_snprintf(void **state)
{
    (void)state;
    char out[8];
    memset(out, 'x', sizeof out);
    size_t needed = shoal_router_format_allow(GET | HEAD | POST, out, sizeof out);
    assert_int_equal(needed, strlen("GET, HEAD, POST"));
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_memory_equal(out, "GET, HE", sizeof out);

    assert_int_equal(shoal_router_format_allow(GET, NULL, 0), 3);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_static_routes_match_exactly),
        TEST(test_parameters_capture_whole_segments),
        TEST(test_parameters_are_terminated_inside_the_callers_buffer),
        TEST(test_wildcard_takes_the_rest_with_slashes),
        TEST(test_wildcard_matches_an_empty_rest),
        TEST(test_bare_wildcard_is_named_star),
        TEST(test_static_beats_parameter_beats_wildcard),
        TEST(test_backtracks_from_a_static_dead_end_to_a_parameter),
        TEST(test_backtracks_when_the_static_route_lacks_the_method),
        TEST(test_backtracking_drops_parameters_of_abandoned_branches),
        TEST(test_unknown_path_is_not_found_with_no_methods),
        TEST(test_known_path_with_other_method_is_405_with_allowed_mask),
        TEST(test_405_mask_unites_every_route_matching_the_path),
        TEST(test_unroutable_method_token_is_405_on_a_known_path),
        TEST(test_head_falls_back_to_get),
        TEST(test_head_without_get_is_not_allowed),
        TEST(test_trailing_slash_is_a_distinct_path),
        TEST(test_empty_segments_are_static_and_literal),
        TEST(test_paths_must_be_absolute),
        TEST(test_invalid_patterns_are_rejected),
        TEST(test_conflicting_parameter_names_are_rejected),
        TEST(test_a_method_is_registered_once_per_pattern),
        TEST(test_frozen_router_rejects_additions_but_still_matches),
        TEST(test_at_most_max_params_per_pattern),
        cmocka_unit_test(test_method_names_round_trip),
        cmocka_unit_test(test_format_allow_lists_methods_in_fixed_order),
        cmocka_unit_test(test_format_allow_truncates_like_snprintf),
    };
    return cmocka_run_group_tests_name("node/router", tests, NULL, NULL);
}
