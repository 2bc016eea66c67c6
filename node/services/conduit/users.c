/* node/services/conduit/users.c: registration, login, logout and the current user. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/ext/session.h>
#include <shoal/log.h>

#include "api_internal.h"
#include "validate.h"

#define FAILURES_PER_ADDRESS "login-failure"
#define FAILURES_PER_ACCOUNT "login-failure-account"

/* {"user":{"email","token","username","bio","image"}}, bio and image null
 * when unset. */
static int answer_user(shoal_ctx *ctx, int status, const store_user *user, const char *token)
{
    json_t *body = json_pack("{s:{s:s, s:s, s:s, s:s?, s:s?}}", "user", "email", user->email, "token", token,
                             "username", user->username, "bio", user->bio, "image", user->image);
    if (body == NULL)
        return shoal_fail(ctx, &shoal_code_internal);
    return shoal_json(ctx, status, body);
}

/* The "user" object of the body, or NULL after answering. */
static json_t *user_object(shoal_ctx *ctx)
{
    json_t *body = NULL, *user = NULL;
    if (!shoal_json_body(ctx, &body) || !shoal_json_member(ctx, body, "user", JSON_OBJECT, true, &user))
        return NULL;
    return user;
}

/* A string member: true with *value (NULL when absent and not required),
 * or false after answering 422. */
static bool string_member(shoal_ctx *ctx, json_t *object, const char *key, bool required, const char **value,
                          size_t *length)
{
    json_t *member = NULL;
    if (!shoal_json_member(ctx, object, key, JSON_STRING, required, &member))
        return false;
    *value = member != NULL ? json_string_value(member) : NULL;
    if (length != NULL)
        *length = member != NULL ? json_string_length(member) : 0;
    if (member != NULL && strlen(*value) != json_string_length(member)) {
        /* A NUL inside would be cut short by every C string after this. */
        api_invalid(ctx, key, &api_code_invalid, "is invalid");
        return false;
    }
    return true;
}

/* Runs check's verdict: true when it passed, else answers 422 with the
 * code the check set. code is read through its address, after the check
 * ran: arguments are evaluated in no fixed order. */
static bool passes(shoal_ctx *ctx, const char *field, const char *message, const shoal_error_code *const *code)
{
    if (message == NULL)
        return true;
    api_invalid(ctx, field, *code, message);
    return false;
}

static int register_user(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    json_t *user = user_object(ctx);
    if (user == NULL)
        return 0;
    const char *email = NULL, *username = NULL, *password = NULL;
    const shoal_error_code *code = NULL;
    size_t password_length = 0;
    if (!string_member(ctx, user, "username", false, &username, NULL) ||
        !string_member(ctx, user, "email", false, &email, NULL) ||
        !string_member(ctx, user, "password", false, &password, &password_length))
        return 0;
    if (!passes(ctx, "username", api_check_username(username, &code), &code) ||
        !passes(ctx, "email", api_check_email(email, &code), &code) ||
        !passes(ctx, "password", api_check_password(password, password_length, &code), &code))
        return 0;
    /* A hash is the costliest work a request does: not after its deadline. */
    if (shoal_deadline_passed(ctx))
        return shoal_error_deadline(ctx);
    char hash[SHOAL_PASSWORD_HASH_SIZE];
    shoal_password_status hashed = shoal_password_hash(api->passwords, password, password_length, hash);
    if (hashed != SHOAL_PASSWORD_OK)
        return api_password_failure(ctx, hashed);
    store *s = shoal_store(ctx);
    store_user created;
    store_result *result = NULL;
    store_status status = store_user_create(s, &api->users, email, username, hash, &created, &result);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_user_not_found);
    shoal_keep_result(ctx, result);
    const char *token = NULL;
    shoal_session_status session = shoal_session_create(ctx, created.id, &token);
    if (session != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, session);
    return answer_user(ctx, 201, &created, token);
}

/* "alice@example.com|203.0.113.9": one bucket per account and address, so
 * that failures from one address never lock the account for the others.
 * The email is folded to lower case as the database compares it. */
static const char *account_key(shoal_ctx *ctx, const char *email)
{
    char *key = shoal_arena_printf(shoal_ctx_arena(ctx), "%s|%s", email, shoal_client_address(ctx));
    if (key == NULL)
        return NULL;
    for (char *c = key; *c != '\0' && *c != '|'; c++)
        *c = (char)tolower((unsigned char)*c);
    return key;
}

/* Answers 429 when either bucket is empty; true when the login may go on.
 * With Redis unreachable the login goes on: it needs Redis for the session
 * anyway, and will answer 503 there if it is still down. */
static bool login_allowed(shoal_ctx *ctx, const api_state *api, const char *account)
{
    shoal_rate_limit_result result;
    if (shoal_rate_limit_peek(ctx, FAILURES_PER_ADDRESS, shoal_client_address(ctx), &api->failures_per_address,
                              &result) == SHOAL_RATE_LIMIT_LIMITED) {
        shoal_rate_limit_reject(ctx, &api->failures_per_address, &result);
        shoal_count(ctx, api->logins, API_LOGIN_LIMITED, 1);
        return false;
    }
    if (shoal_rate_limit_peek(ctx, FAILURES_PER_ACCOUNT, account, &api->failures_per_account, &result) ==
        SHOAL_RATE_LIMIT_LIMITED) {
        shoal_rate_limit_reject(ctx, &api->failures_per_account, &result);
        shoal_count(ctx, api->logins, API_LOGIN_LIMITED, 1);
        return false;
    }
    return true;
}

static int login_failed(shoal_ctx *ctx, const api_state *api, const char *account)
{
    shoal_rate_limit_check(ctx, FAILURES_PER_ADDRESS, shoal_client_address(ctx), &api->failures_per_address, NULL);
    shoal_rate_limit_check(ctx, FAILURES_PER_ACCOUNT, account, &api->failures_per_account, NULL);
    shoal_count(ctx, api->logins, API_LOGIN_WRONG_CREDENTIALS, 1);
    shoal_set_header(ctx, "WWW-Authenticate", "Token");
    return shoal_fail(ctx, &api_code_invalid_credentials);
}

static int login(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    json_t *user = user_object(ctx);
    if (user == NULL)
        return 0;
    const char *email = NULL, *password = NULL;
    const shoal_error_code *code = NULL;
    size_t password_length = 0;
    if (!string_member(ctx, user, "email", false, &email, NULL) ||
        !string_member(ctx, user, "password", false, &password, &password_length))
        return 0;
    if (!passes(ctx, "email", api_check_email(email, &code), &code) ||
        !passes(ctx, "password", api_check_password(password, password_length, &code), &code))
        return 0;
    const char *account = account_key(ctx, email);
    if (account == NULL)
        return shoal_fail(ctx, &shoal_code_internal);
    if (!login_allowed(ctx, api, account))
        return 0;
    store *s = shoal_store(ctx);
    store_user found;
    store_result *result = NULL;
    store_status status = store_user_by_email(s, &api->users, email, &found, &result);
    if (shoal_deadline_passed(ctx))
        return shoal_error_deadline(ctx);
    if (status == STORE_NOT_FOUND) {
        /* As long as a wrong password takes, so that the answer's time does
         * not tell which emails have accounts. */
        char ignored[SHOAL_PASSWORD_HASH_SIZE];
        shoal_password_status hashed = shoal_password_hash(api->passwords, password, password_length, ignored);
        if (hashed != SHOAL_PASSWORD_OK)
            return api_password_failure(ctx, hashed);
        return login_failed(ctx, api, account);
    }
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_user_not_found);
    shoal_keep_result(ctx, result);
    shoal_password_status verified = shoal_password_verify(api->passwords, found.password_hash, password,
                                                           password_length);
    if (verified == SHOAL_PASSWORD_MISMATCH)
        return login_failed(ctx, api, account);
    if (verified != SHOAL_PASSWORD_OK)
        return api_password_failure(ctx, verified);
    const char *token = NULL;
    shoal_session_status session = shoal_session_create(ctx, found.id, &token);
    if (session != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, session);
    shoal_count(ctx, api->logins, API_LOGIN_SUCCEEDED, 1);
    return answer_user(ctx, 200, &found, token);
}

/* The caller's session and token (arena memory), or false after answering. */
static bool caller(shoal_ctx *ctx, const shoal_session_info **session, const char **token)
{
    if (!shoal_session_require(ctx, session))
        return false;
    char *copy = shoal_arena_alloc(shoal_ctx_arena(ctx), SHOAL_SESSION_TOKEN_SIZE);
    if (copy == NULL ||
        shoal_session_parse_authorization(shoal_header(ctx, "Authorization"), copy) != SHOAL_SESSION_OK) {
        shoal_fail(ctx, &shoal_code_internal);
        return false;
    }
    *token = copy;
    return true;
}

/* A session whose user is gone is no session. */
static int user_gone(shoal_ctx *ctx)
{
    shoal_session_revoke(ctx);
    shoal_set_header(ctx, "WWW-Authenticate", "Token");
    return shoal_fail_with(ctx, &shoal_session_code_invalid, NULL, "is invalid");
}

/* The user as GET /api/user shows it, cached: every authenticated client
 * asks for it on each page, and the row changes only through PUT
 * /api/user, which invalidates the family. A whole family (one INCR)
 * rather than the key, because a fill that read the old row before the
 * write could put it back under the key (cache/include/shoal/aside.h), and the user
 * would then see his own change undone. */
#define USER_FAMILY "user"
#define USER_TTL_MS 60000

/* The cached bytes: email, username, bio, image, each as a presence byte
 * ('1' or '0') and a NUL-terminated string. */
static size_t packed_size(const char *field)
{
    return 1 + (field != NULL ? strlen(field) : 0) + 1;
}

static char *pack_field(char *out, const char *field)
{
    *out++ = field != NULL ? '1' : '0';
    size_t length = field != NULL ? strlen(field) : 0;
    memcpy(out, field != NULL ? field : "", length);
    out[length] = '\0';
    return out + length + 1;
}

static bool unpack_field(const char **cursor, const char *end, const char **field)
{
    const char *at = *cursor;
    if (end - at < 2 || (at[0] != '0' && at[0] != '1'))
        return false;
    const char *nul = memchr(at + 1, '\0', (size_t)(end - at - 1));
    if (nul == NULL)
        return false;
    *field = at[0] == '1' ? at + 1 : NULL;
    *cursor = nul + 1;
    return true;
}

static int fill_user(shoal_ctx *ctx, const char *key, void *data, void **value, size_t *length)
{
    const api_state *api = data;
    store_user found;
    store_result *result = NULL;
    store_status status = store_user_by_id(shoal_store(ctx), &api->users, strtoll(key, NULL, 10), &found, &result);
    if (status != STORE_OK)
        return (int)status;
    shoal_keep_result(ctx, result);
    size_t size = packed_size(found.email) + packed_size(found.username) + packed_size(found.bio) +
                  packed_size(found.image);
    char *packed = shoal_arena_alloc(shoal_ctx_arena(ctx), size);
    if (packed == NULL)
        return (int)STORE_ERROR;
    char *end = pack_field(pack_field(pack_field(pack_field(packed, found.email), found.username), found.bio),
                           found.image);
    *value = packed;
    *length = (size_t)(end - packed);
    return 0;
}

/* STORE_OK, STORE_NOT_FOUND, or the store's failure (and STORE_ERROR for
 * memory or a value that does not unpack). */
static store_status cached_user(shoal_ctx *ctx, const api_state *api, int64_t id, store_user *out)
{
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, id);
    const void *value = NULL;
    size_t length = 0;
    int rc = shoal_cached(ctx, USER_FAMILY, key, USER_TTL_MS, fill_user, (void *)api, &value, &length);
    if (rc != 0)
        return rc > 0 ? (store_status)rc : STORE_ERROR;
    const char *cursor = value, *end = cursor + length;
    *out = (store_user){.id = id};
    if (!unpack_field(&cursor, end, &out->email) || !unpack_field(&cursor, end, &out->username) ||
        !unpack_field(&cursor, end, &out->bio) || !unpack_field(&cursor, end, &out->image) ||
        out->email == NULL || out->username == NULL)
        return STORE_ERROR;
    return STORE_OK;
}

static int get_current_user(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    const shoal_session_info *session = NULL;
    const char *token = NULL;
    if (!caller(ctx, &session, &token))
        return 0;
    store_user found;
    store_status status = cached_user(ctx, api, session->user_id, &found);
    if (status == STORE_NOT_FOUND)
        return user_gone(ctx);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_user_not_found);
    return answer_user(ctx, 200, &found, token);
}

/* bio and image may be a string or null (to clear them). */
static bool nullable_member(shoal_ctx *ctx, json_t *object, const char *key, size_t maximum, bool *set,
                            const char **value)
{
    json_t *member = json_object_get(object, key);
    *set = member != NULL;
    *value = NULL;
    if (member == NULL || json_is_null(member))
        return true;
    if (!json_is_string(member) || strlen(json_string_value(member)) != json_string_length(member)) {
        api_invalid(ctx, key, &shoal_code_request_invalid_field, "must be a string or null");
        return false;
    }
    *value = json_string_value(member);
    const shoal_error_code *code = NULL;
    return passes(ctx, key, api_check_optional(*value, maximum, &code), &code);
}

static int update_current_user(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    const shoal_session_info *session = NULL;
    const char *token = NULL;
    if (!caller(ctx, &session, &token))
        return 0;
    json_t *user = user_object(ctx);
    if (user == NULL)
        return 0;
    store_user_change change = {0};
    const char *password = NULL;
    const shoal_error_code *code = NULL;
    size_t password_length = 0;
    if (!string_member(ctx, user, "email", false, &change.email, NULL) ||
        !string_member(ctx, user, "username", false, &change.username, NULL) ||
        !string_member(ctx, user, "password", false, &password, &password_length) ||
        !nullable_member(ctx, user, "bio", API_BIO_MAX, &change.set_bio, &change.bio) ||
        !nullable_member(ctx, user, "image", API_IMAGE_MAX, &change.set_image, &change.image))
        return 0;
    if ((change.email != NULL && !passes(ctx, "email", api_check_email(change.email, &code), &code)) ||
        (change.username != NULL && !passes(ctx, "username", api_check_username(change.username, &code), &code)) ||
        (password != NULL && !passes(ctx, "password", api_check_password(password, password_length, &code), &code)))
        return 0;
    char hash[SHOAL_PASSWORD_HASH_SIZE];
    if (password != NULL) {
        if (shoal_deadline_passed(ctx))
            return shoal_error_deadline(ctx);
        shoal_password_status hashed = shoal_password_hash(api->passwords, password, password_length, hash);
        if (hashed != SHOAL_PASSWORD_OK)
            return api_password_failure(ctx, hashed);
        change.password_hash = hash;
    }
    store_user updated;
    store_result *result = NULL;
    store_status status = store_user_update(shoal_store(ctx), &api->users, session->user_id, &change, &updated, &result);
    if (status == STORE_NOT_FOUND)
        return user_gone(ctx);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_user_not_found);
    shoal_keep_result(ctx, result);
    /* Should Redis miss this, the old row lives at most USER_TTL_MS in the
     * other nodes' caches; PostgreSQL has the change either way. */
    shoal_cache_invalidate(ctx, USER_FAMILY);
    if (change.username != NULL || change.set_bio || change.set_image)
        api_author_changed(ctx);
    if (password != NULL) {
        /* Whoever knew the old password may hold a session: every session
         * of the user ends, and this caller continues with a new one, whose
         * token the answer carries. */
        shoal_session_status revoked = shoal_session_revoke_user(ctx, updated.id);
        if (revoked != SHOAL_SESSION_OK)
            return shoal_session_fail(ctx, revoked);
        shoal_session_status created = shoal_session_create(ctx, updated.id, &token);
        if (created != SHOAL_SESSION_OK)
            return shoal_session_fail(ctx, created);
    }
    return answer_user(ctx, 200, &updated, token);
}

static int logout(shoal_ctx *ctx)
{
    if (!shoal_session_require(ctx, NULL))
        return 0;
    shoal_session_status status = shoal_session_revoke(ctx);
    if (status != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, status);
    return shoal_empty(ctx, 204);
}

int api_users_register(shoal_blueprint *bp, api_state *state)
{
    if (shoal_route_with(bp, "POST", "/users", register_user, state) != 0 ||
        shoal_route_with(bp, "POST", "/users/login", login, state) != 0 ||
        shoal_route_with(bp, "POST", "/users/logout", logout, state) != 0 ||
        shoal_route_with(bp, "GET", "/user", get_current_user, state) != 0 ||
        shoal_route_with(bp, "PUT", "/user", update_current_user, state) != 0)
        return -1;
    return 0;
}
