/* tests/integration/node/services/conduit/users_test.c: the RealWorld user endpoints
 * over real HTTP, against the fixture's PostgreSQL and Redis: shapes,
 * every validation error, tokens, password changes that end other
 * sessions, logout, and login failures limited per address and per
 * account-and-address. Every run uses accounts and client addresses of its
 * own, since the servers outlive a run. */
#include <libpq-fe.h>

#include "api_test_support.h"

/* ---- tests -------------------------------------------------------------------- */

static void registration_gives_a_user_with_a_working_token(void **state)
{
    (void)state;
    char email[128], username[96];
    names("reg", email, sizeof email, username, sizeof username);
    char *token = register_user(email, username, "secret-1");
    test_response response = call("GET", "/api/user", token, NULL, NULL);
    char *same = expect_user(&response, 200, email, username);
    assert_string_equal(same, token);
    json_t *body = parse(&response);
    assert_true(json_is_null(json_object_get(json_object_get(body, "user"), "bio")));
    assert_true(json_is_null(json_object_get(json_object_get(body, "user"), "image")));
    json_decref(body);
    test_http_response_free(&response);
    /* Bearer works too, and a JSON Content-Type on a GET is fine. */
    char bearer[128];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", token);
    assert_int_equal(status_of(call("GET", "/api/user", NULL, bearer, NULL)), 200);
    free(same);
    free(token);
}

static void registration_errors_name_the_field(void **state)
{
    (void)state;
    char email[128], username[96], long_name[128];
    names("dup", email, sizeof email, username, sizeof username);
    free(register_user(email, username, "pw"));
    struct {
        const char *body;
        const char *field, *message;
    } cases[] = {
        {"{\"user\":{\"username\":\"\",\"email\":\"a@b.co\",\"password\":\"p\"}}", "username", "can't be blank"},
        {"{\"user\":{\"username\":\"  \",\"email\":\"a@b.co\",\"password\":\"p\"}}", "username", "can't be blank"},
        {"{\"user\":{\"email\":\"a@b.co\",\"password\":\"p\"}}", "username", "can't be blank"},
        {"{\"user\":{\"username\":\"x y\",\"email\":\"a@b.co\",\"password\":\"p\"}}", "username", "is invalid"},
        {"{\"user\":{\"username\":\"ok_name\",\"email\":\"\",\"password\":\"p\"}}", "email", "can't be blank"},
        {"{\"user\":{\"username\":\"ok_name\",\"email\":\"not-an-email\",\"password\":\"p\"}}", "email",
         "is invalid"},
        {"{\"user\":{\"username\":\"ok_name\",\"email\":\"a@b\",\"password\":\"p\"}}", "email", "is invalid"},
        {"{\"user\":{\"username\":\"ok_name\",\"email\":\"a@b.co\",\"password\":\"\"}}", "password",
         "can't be blank"},
        {"{\"user\":{\"username\":\"ok_name\",\"email\":\"a@b.co\"}}", "password", "can't be blank"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_response response = call("POST", "/api/users", NULL, NULL, cases[i].body);
        expect_invalid(&response, cases[i].field, cases[i].message);
        test_http_response_free(&response);
    }
    /* Too long: 65 characters. */
    memset(long_name, 'n', 65);
    long_name[65] = '\0';
    char body[512];
    snprintf(body, sizeof body, "{\"user\":{\"username\":\"%s\",\"email\":\"a@b.co\",\"password\":\"p\"}}", long_name);
    test_response response = call("POST", "/api/users", NULL, NULL, body);
    expect_invalid(&response, "username", "is too long (maximum is 64 characters)");
    test_http_response_free(&response);
    /* Taken: the email in other case, then the username. */
    char shouted[128];
    snprintf(shouted, sizeof shouted, "DUP_%s@EXAMPLE.com", tag);
    snprintf(body, sizeof body, "{\"user\":{\"username\":\"other_%s\",\"email\":\"%s\",\"password\":\"p\"}}", tag,
             shouted);
    response = call("POST", "/api/users", NULL, NULL, body);
    expect_invalid(&response, "email", "has already been taken");
    test_http_response_free(&response);
    snprintf(body, sizeof body, "{\"user\":{\"username\":\"%s\",\"email\":\"other_%s@example.com\",\"password\":\"p\"}}",
             username, tag);
    response = call("POST", "/api/users", NULL, NULL, body);
    expect_invalid(&response, "username", "has already been taken");
    test_http_response_free(&response);
    /* Not JSON, and no user object. */
    assert_int_equal(status_of(call("POST", "/api/users", NULL, NULL, "{")), 400);
    response = call("POST", "/api/users", NULL, NULL, "{\"person\":{}}");
    expect_invalid(&response, "user", "is required");
    test_http_response_free(&response);
}

static void login_with_the_right_password_only(void **state)
{
    (void)state;
    char email[128], username[96], extra[64];
    names("login", email, sizeof email, username, sizeof username);
    free(register_user(email, username, "right"));
    forwarded_for(1, extra, sizeof extra);
    test_response response = login(email, "right", extra);
    char *token = expect_user(&response, 200, email, username);
    test_http_response_free(&response);
    /* The email in another case finds the same account. */
    char shouted[128];
    snprintf(shouted, sizeof shouted, "LOGIN_%s@example.COM", tag);
    response = login(shouted, "right", extra);
    free(expect_user(&response, 200, email, username));
    test_http_response_free(&response);
    response = login(email, "wrong", extra);
    test_expect_error(&response, 401, "auth.invalid_credentials");
    expect_invalid(&(test_response){.status = 422, .body = response.body}, "email or password", "is invalid");
    test_http_response_free(&response);
    response = login("nobody@example.com", "right", extra);
    test_expect_error(&response, 401, "auth.invalid_credentials");
    test_http_response_free(&response);
    response = call("POST", "/api/users/login", NULL, extra, "{\"user\":{\"email\":\"\",\"password\":\"x\"}}");
    expect_invalid(&response, "email", "can't be blank");
    test_http_response_free(&response);
    assert_int_equal(status_of(call("GET", "/api/user", token, NULL, NULL)), 200);
    free(token);
}

static void protected_calls_need_a_valid_token(void **state)
{
    (void)state;
    test_response response = call("GET", "/api/user", NULL, NULL, NULL);
    test_expect_error(&response, 401, "auth.required");
    test_http_response_free(&response);
    response = call("GET", "/api/user", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL);
    test_expect_error(&response, 401, "auth.invalid");
    test_http_response_free(&response);
    response = call("PUT", "/api/user", "not-a-token", NULL, "{\"user\":{\"bio\":\"x\"}}");
    test_expect_error(&response, 401, "auth.invalid");
    test_http_response_free(&response);
    response = call("POST", "/api/users/logout", NULL, NULL, NULL);
    test_expect_error(&response, 401, "auth.required");
    test_http_response_free(&response);
}

static void update_changes_what_is_given(void **state)
{
    (void)state;
    char email[128], username[96], body[512];
    names("upd", email, sizeof email, username, sizeof username);
    char *token = register_user(email, username, "pw");
    test_response response =
        call("PUT", "/api/user", token, NULL, "{\"user\":{\"bio\":\"I write\",\"image\":\"https://i.example/a.png\"}}");
    free(expect_user(&response, 200, email, username));
    json_t *answer = parse(&response);
    json_t *user = json_object_get(answer, "user");
    assert_string_equal(json_string_value(json_object_get(user, "bio")), "I write");
    assert_string_equal(json_string_value(json_object_get(user, "image")), "https://i.example/a.png");
    json_decref(answer);
    test_http_response_free(&response);
    /* null clears; an absent member stays. */
    response = call("PUT", "/api/user", token, NULL, "{\"user\":{\"image\":null}}");
    answer = parse(&response);
    user = json_object_get(answer, "user");
    assert_string_equal(json_string_value(json_object_get(user, "bio")), "I write");
    assert_true(json_is_null(json_object_get(user, "image")));
    json_decref(answer);
    test_http_response_free(&response);
    /* New email and username. */
    char new_email[128], new_username[96];
    names("upd2", new_email, sizeof new_email, new_username, sizeof new_username);
    snprintf(body, sizeof body, "{\"user\":{\"email\":\"%s\",\"username\":\"%s\"}}", new_email, new_username);
    response = call("PUT", "/api/user", token, NULL, body);
    free(expect_user(&response, 200, new_email, new_username));
    test_http_response_free(&response);
    /* Errors: blank, invalid, taken, too long. */
    response = call("PUT", "/api/user", token, NULL, "{\"user\":{\"email\":\"\"}}");
    expect_invalid(&response, "email", "can't be blank");
    test_http_response_free(&response);
    response = call("PUT", "/api/user", token, NULL, "{\"user\":{\"username\":\"a/b\"}}");
    expect_invalid(&response, "username", "is invalid");
    test_http_response_free(&response);
    char other_email[128], other_username[96];
    names("updother", other_email, sizeof other_email, other_username, sizeof other_username);
    free(register_user(other_email, other_username, "pw"));
    snprintf(body, sizeof body, "{\"user\":{\"username\":\"%s\"}}", other_username);
    response = call("PUT", "/api/user", token, NULL, body);
    expect_invalid(&response, "username", "has already been taken");
    test_http_response_free(&response);
    char *long_bio = malloc(4200);
    memset(long_bio, 'b', 4097);
    long_bio[4097] = '\0';
    char *big = malloc(4400);
    snprintf(big, 4400, "{\"user\":{\"bio\":\"%s\"}}", long_bio);
    response = call("PUT", "/api/user", token, NULL, big);
    expect_invalid(&response, "bio", "is too long (maximum is 4096 characters)");
    test_http_response_free(&response);
    free(big);
    free(long_bio);
    free(token);
}

/* Runs one statement behind the node's back. */
static void execute(const char *statement)
{
    PGconn *connection = PQconnectdb(TEST_DATABASE_URL());
    assert_int_equal(PQstatus(connection), CONNECTION_OK);
    PGresult *result = PQexec(connection, statement);
    if (PQresultStatus(result) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", statement, PQerrorMessage(connection));
    PQclear(result);
    PQfinish(connection);
}

static const char *bio_of(json_t *answer)
{
    return json_string_value(json_object_get(json_object_get(answer, "user"), "bio"));
}

/* GET /api/user comes from the cache: a change made behind the node's back
 * stays unseen, while a change through PUT /api/user shows at once. */
static void the_current_user_is_cached_and_a_change_shows_at_once(void **state)
{
    (void)state;
    char email[128], username[96], statement[256];
    names("cached", email, sizeof email, username, sizeof username);
    char *token = register_user(email, username, "pw");
    test_response response = call("GET", "/api/user", token, NULL, NULL);
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    snprintf(statement, sizeof statement, "UPDATE users SET bio = 'behind the back' WHERE username = '%s'",
             username);
    execute(statement);
    response = call("GET", "/api/user", token, NULL, NULL);
    json_t *answer = parse(&response);
    assert_null(bio_of(answer));
    json_decref(answer);
    test_http_response_free(&response);
    response = call("PUT", "/api/user", token, NULL, "{\"user\":{\"bio\":\"through the API\"}}");
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    response = call("GET", "/api/user", token, NULL, NULL);
    answer = parse(&response);
    assert_string_equal(bio_of(answer), "through the API");
    json_decref(answer);
    test_http_response_free(&response);
    free(token);
}

static void a_new_password_ends_every_other_session(void **state)
{
    (void)state;
    char email[128], username[96], extra[64];
    names("pwchange", email, sizeof email, username, sizeof username);
    char *first = register_user(email, username, "old-password");
    forwarded_for(2, extra, sizeof extra);
    test_response response = login(email, "old-password", extra);
    char *second = expect_user(&response, 200, email, username);
    test_http_response_free(&response);
    response = call("PUT", "/api/user", first, NULL, "{\"user\":{\"password\":\"new-password\"}}");
    char *renewed = expect_user(&response, 200, email, username);
    test_http_response_free(&response);
    assert_string_not_equal(renewed, first);
    assert_int_equal(status_of(call("GET", "/api/user", second, NULL, NULL)), 401);
    assert_int_equal(status_of(call("GET", "/api/user", first, NULL, NULL)), 401);
    assert_int_equal(status_of(call("GET", "/api/user", renewed, NULL, NULL)), 200);
    assert_int_equal(status_of(login(email, "old-password", extra)), 401);
    assert_int_equal(status_of(login(email, "new-password", extra)), 200);
    free(first);
    free(second);
    free(renewed);
}

static void logout_ends_this_session_only(void **state)
{
    (void)state;
    char email[128], username[96], extra[64];
    names("logout", email, sizeof email, username, sizeof username);
    char *first = register_user(email, username, "pw");
    forwarded_for(3, extra, sizeof extra);
    test_response response = login(email, "pw", extra);
    char *second = expect_user(&response, 200, email, username);
    test_http_response_free(&response);
    response = call("POST", "/api/users/logout", first, NULL, NULL);
    assert_int_equal(response.status, 204);
    test_http_response_free(&response);
    assert_int_equal(status_of(call("GET", "/api/user", first, NULL, NULL)), 401);
    assert_int_equal(status_of(call("GET", "/api/user", second, NULL, NULL)), 200);
    free(first);
    free(second);
}

/* Three failures for one account from one address: that pair is refused,
 * even with the right password, while the owner logs in from elsewhere. */
static void failures_lock_an_account_for_one_address_only(void **state)
{
    (void)state;
    char email[128], username[96], attacker[64], owner[64];
    names("target", email, sizeof email, username, sizeof username);
    free(register_user(email, username, "right"));
    forwarded_for(10, attacker, sizeof attacker);
    forwarded_for(11, owner, sizeof owner);
    for (int i = 0; i < 3; i++)
        assert_int_equal(status_of(login(email, "wrong", attacker)), 401);
    test_response response = login(email, "right", attacker);
    test_expect_error(&response, 429, "rate.limited");
    assert_true(atoi(test_header(&response, "Retry-After")) >= 1);
    test_http_response_free(&response);
    /* The same account in other case is the same bucket. */
    char shouted[128];
    snprintf(shouted, sizeof shouted, "TARGET_%s@example.com", tag);
    assert_int_equal(status_of(login(shouted, "right", attacker)), 429);
    assert_int_equal(status_of(login(email, "right", owner)), 200);
}

/* Six failures from one address, each against another account: the
 * address is refused for every account, others are not. */
static void failures_from_one_address_are_limited(void **state)
{
    (void)state;
    char spray[64], other[64], email[128];
    forwarded_for(20, spray, sizeof spray);
    forwarded_for(21, other, sizeof other);
    for (int i = 0; i < 6; i++) {
        snprintf(email, sizeof email, "spray%d_%s@example.com", i, tag);
        assert_int_equal(status_of(login(email, "guess", spray)), 401);
    }
    char username[96];
    names("sprayed", email, sizeof email, username, sizeof username);
    free(register_user(email, username, "right"));
    test_response response = login(email, "right", spray);
    test_expect_error(&response, 429, "rate.limited");
    test_http_response_free(&response);
    assert_int_equal(status_of(login(email, "right", other)), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registration_gives_a_user_with_a_working_token),
        cmocka_unit_test(registration_errors_name_the_field),
        cmocka_unit_test(login_with_the_right_password_only),
        cmocka_unit_test(protected_calls_need_a_valid_token),
        cmocka_unit_test(update_changes_what_is_given),
        cmocka_unit_test(the_current_user_is_cached_and_a_change_shows_at_once),
        cmocka_unit_test(a_new_password_ends_every_other_session),
        cmocka_unit_test(logout_ends_this_session_only),
        cmocka_unit_test(failures_lock_an_account_for_one_address_only),
        cmocka_unit_test(failures_from_one_address_are_limited),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
