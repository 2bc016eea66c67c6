/* node/services/conduit/api.c: the extension, and answers every handler shares. */
#include "api.h"

#include <stdlib.h>

#include <shoal/log.h>

#include "api_internal.h"

void api_write_author(shoal_json_writer *out, const char *username, const char *bio, const char *image,
                      bool following)
{
    shoal_json_open_object(out);
    shoal_json_write_key(out, "username");
    shoal_json_write_string(out, username);
    shoal_json_write_key(out, "bio");
    shoal_json_write_string(out, bio);
    shoal_json_write_key(out, "image");
    shoal_json_write_string(out, image);
    shoal_json_write_key(out, "following");
    shoal_json_write_bool(out, following);
    shoal_json_close_object(out);
}

int api_invalid(shoal_ctx *ctx, const char *field, const shoal_error_code *code, const char *message)
{
    shoal_fail_with(ctx, code, field, message);
    return 0;
}

int api_store_failure(shoal_ctx *ctx, store_status status, const shoal_error_code *not_found)
{
    store *s = shoal_store(ctx);
    if (status == STORE_NOT_FOUND)
        return shoal_fail(ctx, not_found);
    if (s != NULL && store_last_error(s)->status == status)
        return shoal_error_from_store(ctx, s);
    shoal_log(SHOAL_LOG_ERROR, "api", "%s: store status %d", shoal_path(ctx), (int)status);
    return shoal_fail(ctx, &shoal_code_internal);
}

int api_password_failure(shoal_ctx *ctx, shoal_password_status status)
{
    if (status == SHOAL_PASSWORD_BUSY) {
        shoal_set_header(ctx, "Retry-After", "1");
        return shoal_fail(ctx, &shoal_password_code_busy);
    }
    shoal_log(SHOAL_LOG_ERROR, "api", "%s: password hashing failed", shoal_path(ctx));
    return shoal_fail(ctx, &shoal_code_internal);
}

void api_author_changed(shoal_ctx *ctx)
{
    /* One INCR each: cheaper than finding every article of the author, and
     * a changed profile is rare. Failures are logged by the helper; the
     * values then live until their TTL. */
    shoal_cache_invalidate(ctx, API_CACHE_PROFILE);
    shoal_cache_invalidate(ctx, API_CACHE_ARTICLE);
    shoal_cache_invalidate(ctx, API_CACHE_COUNT);
}

static void free_state(void *data)
{
    api_state *state = data;
    shoal_password_free(state->passwords);
    free(state);
}

/* Logins by outcome: a rise of wrong credentials or limited ones is
 * someone guessing passwords, which no route counter shows (every login is
 * POST /api/users/login, answered 200, 401 or 429 alike for other reasons). */
static const char *const login_results[] = {
    [API_LOGIN_SUCCEEDED] = "succeeded", [API_LOGIN_WRONG_CREDENTIALS] = "wrong_credentials",
    [API_LOGIN_LIMITED] = "limited", NULL};
static const shoal_metric_spec logins_spec = {
    .name = "conduit_logins_total",
    .help = "Logins by result: succeeded, wrong_credentials (no such email, or a wrong password), limited "
            "(refused by the login failure limits).",
    .label = "result",
    .values = login_results,
};

static int register_all(shoal_app *app, api_state *state)
{
    const shoal_conduit_settings_values *settings = shoal_app_settings(app, &shoal_conduit_settings);
    char reason[256];
    if (settings == NULL)
        return shoal_app_fail(app, "its settings were not parsed: list shoal_conduit_settings among the service's");
    if (shoal_rate_limit_parse_rule(settings->login_failures_per_address, &state->failures_per_address, reason,
                                    sizeof reason) != 0 ||
        shoal_rate_limit_parse_rule(settings->login_failures_per_account, &state->failures_per_account, reason,
                                    sizeof reason) != 0) {
        return shoal_app_fail(app, "login failure limits: %s", reason);
    }
    state->max_limit = settings->max_limit;
    state->logins = shoal_app_counter(app, &logins_spec);
    if (state->logins == NULL)
        return -1;
    /* Without the password table: its defaults. */
    shoal_password_config passwords = shoal_password_config_of(shoal_app_settings(app, &shoal_password_settings));
    state->passwords = shoal_password_new(&passwords);
    if (state->passwords == NULL)
        /* The configuration checked the costs against libsodium's bounds. */
        return shoal_app_fail(app, "password hashing: out of memory, or libsodium failed to initialise");
    struct store_registry *statements = shoal_app_statements(app);
    if (statements == NULL || store_user_register(statements, &state->users) != 0 ||
        store_profile_register(statements, &state->profiles) != 0 ||
        store_article_register(statements, &state->articles) != 0 || store_tag_register(statements, &state->tags) != 0 ||
        store_comment_register(statements, &state->comments) != 0)
        return shoal_app_fail(app, "cannot register its SQL statements: out of memory, or a name taken twice");
    shoal_blueprint *api = shoal_blueprint_new(app, "realworld", "/api");
    if (api == NULL || api_users_register(api, state) != 0 || api_profiles_register(api, state) != 0 ||
        api_articles_register(api, state) != 0 || api_comments_register(api, state) != 0)
        return -1;
    return 0;
}

/* The instance: the app frees it (and what register_all puts in it) from
 * create on, so the routes that keep a pointer to it never outlive it,
 * whatever fails in init. */
static void *create(shoal_app *app, void *data)
{
    (void)app;
    (void)data;
    return calloc(1, sizeof(api_state));
}

static int init(shoal_app *app, void *instance)
{
    const shoal_conduit_settings_values *settings = shoal_app_settings(app, &shoal_conduit_settings);
    if (settings != NULL && !settings->api)
        return 0;
    return register_all(app, instance);
}

const shoal_extension shoal_api_extension = {
    .name = "realworld",
    .init = init,
    .create = create,
    .destroy = free_state,
};
