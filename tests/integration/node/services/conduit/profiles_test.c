/* tests/integration/node/services/conduit/profiles_test.c: profiles and follows over
 * real HTTP: the shape, `following` per viewer, follow and unfollow (each
 * twice), 404 for an unknown user, 401 without a valid token, and no
 * following oneself. */
#include "api_test_support.h"

/* Checks a profile answer; returns `following`. */
static bool expect_profile(const test_response *response, const char *username)
{
    if (response->status != 200)
        fail_msg("status %d, not 200: %s", response->status, response->body);
    json_t *body = parse(response);
    json_t *profile = json_object_get(body, "profile");
    assert_true(json_is_object(profile));
    assert_int_equal(json_object_size(profile), 4);
    assert_string_equal(json_string_value(json_object_get(profile, "username")), username);
    assert_non_null(json_object_get(profile, "bio"));
    assert_non_null(json_object_get(profile, "image"));
    json_t *following = json_object_get(profile, "following");
    assert_true(json_is_boolean(following));
    bool result = json_is_true(following);
    json_decref(body);
    return result;
}

static bool profile_following(const char *method, const char *path, const char *token, const char *username)
{
    test_response response = call(method, path, token, NULL, NULL);
    bool following = expect_profile(&response, username);
    test_http_response_free(&response);
    return following;
}

static void follow_and_unfollow(void **state)
{
    (void)state;
    char email[128], star[96], fan_email[128], fan[96], path[256], follow_path[256];
    names("star", email, sizeof email, star, sizeof star);
    names("fan", fan_email, sizeof fan_email, fan, sizeof fan);
    char *star_token = register_user(email, star, "pw");
    char *fan_token = register_user(fan_email, fan, "pw");
    test_response response = call("PUT", "/api/user", star_token, NULL, "{\"user\":{\"bio\":\"shining\"}}");
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    snprintf(path, sizeof path, "/api/profiles/%s", star);
    snprintf(follow_path, sizeof follow_path, "/api/profiles/%s/follow", star);

    /* Anonymous, then the fan before following. */
    response = call("GET", path, NULL, NULL, NULL);
    assert_false(expect_profile(&response, star));
    json_t *body = parse(&response);
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "profile"), "bio")), "shining");
    assert_true(json_is_null(json_object_get(json_object_get(body, "profile"), "image")));
    json_decref(body);
    test_http_response_free(&response);
    assert_false(profile_following("GET", path, fan_token, star));

    /* Follow, twice: the same answer, one row. */
    assert_true(profile_following("POST", follow_path, fan_token, star));
    assert_true(profile_following("POST", follow_path, fan_token, star));
    assert_true(profile_following("GET", path, fan_token, star));
    /* Another viewer's answer is his own. */
    assert_false(profile_following("GET", path, NULL, star));
    assert_false(profile_following("GET", path, star_token, star));

    /* Unfollow, twice. */
    assert_false(profile_following("DELETE", follow_path, fan_token, star));
    assert_false(profile_following("DELETE", follow_path, fan_token, star));
    assert_false(profile_following("GET", path, fan_token, star));
    free(star_token);
    free(fan_token);
}

static void errors(void **state)
{
    (void)state;
    char email[128], username[96], path[256];
    names("lonely", email, sizeof email, username, sizeof username);
    char *token = register_user(email, username, "pw");
    test_response response = call("GET", "/api/profiles/nobody_at_all_here", NULL, NULL, NULL);
    test_expect_error(&response, 404, "profile.not_found");
    test_http_response_free(&response);
    response = call("POST", "/api/profiles/nobody_at_all_here/follow", token, NULL, NULL);
    test_expect_error(&response, 404, "profile.not_found");
    test_http_response_free(&response);
    response = call("DELETE", "/api/profiles/nobody_at_all_here/follow", token, NULL, NULL);
    test_expect_error(&response, 404, "profile.not_found");
    test_http_response_free(&response);

    snprintf(path, sizeof path, "/api/profiles/%s/follow", username);
    response = call("POST", path, NULL, NULL, NULL);
    test_expect_error(&response, 401, "auth.required");
    test_http_response_free(&response);
    response = call("DELETE", path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL);
    test_expect_error(&response, 401, "auth.invalid");
    test_http_response_free(&response);
    /* A bad token on a public read is refused, not ignored. */
    snprintf(path, sizeof path, "/api/profiles/%s", username);
    response = call("GET", path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL);
    test_expect_error(&response, 401, "auth.invalid");
    test_http_response_free(&response);

    /* Nobody follows himself. */
    snprintf(path, sizeof path, "/api/profiles/%s/follow", username);
    response = call("POST", path, token, NULL, NULL);
    expect_invalid(&response, "username", "cannot follow yourself");
    test_http_response_free(&response);
    snprintf(path, sizeof path, "/api/profiles/%s", username);
    assert_false(profile_following("GET", path, token, username));
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(follow_and_unfollow),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
