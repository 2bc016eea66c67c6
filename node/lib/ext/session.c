/* node/lib/ext/session.c: the request's session, looked up lazily. */
#include <shoal/ext/session.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <shoal/cache.h>
#include <shoal/log.h>
#include <shoal/metrics.h>

#include "../context.h"
#include "../errors_internal.h"
/* The cache tier's half of sessions, not <shoal/ext/session.h>. */
#include "cache/session.h"

_Static_assert(SHOAL_SESSION_TOKEN_SIZE == CACHE_SESSION_TOKEN_SIZE, "one token size");

const shoal_error_code shoal_session_code_required = {401, "auth.required", "token", "is missing"};
const shoal_error_code shoal_session_code_invalid = {401, "auth.invalid", "token", "is invalid or expired"};

const shoal_error_table shoal_session_errors = {
    "session",
    (const shoal_error_code *const[]){&shoal_session_code_required, &shoal_session_code_invalid, NULL},
};

/* The extension's instance: one per app, in the app's standard slot. */
typedef struct session_state {
    shoal_request_slot slot;
    int ttl_s;
    const shoal_counter *lookups; /* shoal_session_lookups_total{result} */
} session_state;

/* The values of shoal_session_lookups_total's result, in this order. */
typedef enum session_lookup {
    SESSION_LOOKUP_FOUND,   /* a live session */
    SESSION_LOOKUP_MISSING, /* malformed, unknown, expired or revoked token */
    SESSION_LOOKUP_ERROR,   /* Redis unreachable or answering garbage */
} session_lookup;
static const char *const session_lookup_results[] = {
    [SESSION_LOOKUP_FOUND] = "found",
    [SESSION_LOOKUP_MISSING] = "missing",
    [SESSION_LOOKUP_ERROR] = "error",
    NULL,
};
static const shoal_metric_spec session_lookups_spec = {
    .name = "shoal_session_lookups_total",
    .help = "Requests that presented a session token, by result: found, missing (malformed, unknown, expired or "
            "revoked) or error (Redis unreachable or broken).",
    .label = "result",
    .values = session_lookup_results,
};

/* What the request slot holds once anyone asked. */
typedef struct request_session {
    shoal_session_status status;
    shoal_session_info info;
    char token[SHOAL_SESSION_TOKEN_SIZE]; /* kept for logout; wiped at the end */
} request_session;

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

shoal_session_status shoal_session_parse_authorization(const char *value, char token[SHOAL_SESSION_TOKEN_SIZE])
{
    token[0] = '\0';
    if (value == NULL)
        return SHOAL_SESSION_NONE;
    while (blank(*value))
        value++;
    if (*value == '\0')
        return SHOAL_SESSION_NONE;
    size_t scheme = strncasecmp(value, "Token", 5) == 0 ? 5 : strncasecmp(value, "Bearer", 6) == 0 ? 6 : 0;
    if (scheme == 0 || !blank(value[scheme]))
        return SHOAL_SESSION_INVALID;
    value += scheme;
    while (blank(*value))
        value++;
    size_t length = strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
    const char *end = value + length;
    while (blank(*end))
        end++;
    if (*end != '\0' || length != SHOAL_SESSION_TOKEN_SIZE - 1)
        return SHOAL_SESSION_INVALID;
    memcpy(token, value, length);
    token[length] = '\0';
    return SHOAL_SESSION_OK;
}

static shoal_session_status from_cache(cache_session_status status, const char *operation)
{
    switch (status) {
    case CACHE_SESSION_OK:
        return SHOAL_SESSION_OK;
    case CACHE_SESSION_INVALID:
        return SHOAL_SESSION_INVALID;
    case CACHE_SESSION_UNAVAILABLE:
        return SHOAL_SESSION_UNAVAILABLE;
    case CACHE_SESSION_ERROR:
        break;
    }
    shoal_log(SHOAL_LOG_ERROR, "session", "%s: Redis answered with an error or an unexpected reply", operation);
    return SHOAL_SESSION_ERROR;
}

static const session_state *state_of(shoal_ctx *ctx)
{
    const session_state *state = shoal_ctx_standard_instance(ctx, SHOAL_INSTANCE_SESSION);
    if (state == NULL)
        shoal_log(SHOAL_LOG_ERROR, "session", "the session extension is not loaded");
    return state;
}

static void wipe(void *object)
{
    request_session *record = object;
    explicit_bzero(record->token, sizeof record->token);
}

/* A malformed token is as missing as an unknown one; only a token that was
 * sent counts. */
static session_lookup lookup_of(shoal_session_status status)
{
    switch (status) {
    case SHOAL_SESSION_OK:
        return SESSION_LOOKUP_FOUND;
    case SHOAL_SESSION_INVALID:
        return SESSION_LOOKUP_MISSING;
    default:
        return SESSION_LOOKUP_ERROR;
    }
}

/* The request's record, looked up on first use; NULL when out of memory or
 * when the extension is missing. */
static request_session *record_of(shoal_ctx *ctx)
{
    const session_state *state = state_of(ctx);
    if (state == NULL)
        return NULL;
    request_session *record = shoal_request_get(ctx, state->slot);
    if (record != NULL)
        return record;
    shoal_arena *arena = shoal_ctx_arena(ctx);
    record = shoal_arena_calloc(arena, 1, sizeof *record);
    if (record == NULL || shoal_arena_on_release(arena, wipe, record) != 0)
        return NULL;
    record->status = shoal_session_parse_authorization(shoal_header(ctx, "Authorization"), record->token);
    if (record->status == SHOAL_SESSION_OK) {
        cache_session_info info;
        record->status = from_cache(cache_session_lookup(shoal_cache(ctx), record->token, state->ttl_s, &info),
                                    "session lookup");
        record->info.user_id = info.user_id;
        record->info.created = info.created;
    }
    if (record->status != SHOAL_SESSION_NONE)
        shoal_count(ctx, state->lookups, lookup_of(record->status), 1);
    shoal_request_set(ctx, state->slot, record);
    return record;
}

shoal_session_status shoal_session(shoal_ctx *ctx, const shoal_session_info **out)
{
    if (out != NULL)
        *out = NULL;
    request_session *record = record_of(ctx);
    if (record == NULL)
        return SHOAL_SESSION_ERROR;
    if (record->status == SHOAL_SESSION_OK && out != NULL)
        *out = &record->info;
    return record->status;
}

int shoal_session_fail(shoal_ctx *ctx, shoal_session_status status)
{
    int rc;
    switch (status) {
    case SHOAL_SESSION_NONE:
        rc = shoal_fail(ctx, &shoal_session_code_required);
        break;
    case SHOAL_SESSION_INVALID:
        rc = shoal_fail(ctx, &shoal_session_code_invalid);
        break;
    case SHOAL_SESSION_UNAVAILABLE:
        return shoal_error_from_cache(ctx, CACHE_UNAVAILABLE);
    default:
        return shoal_error_from_cache(ctx, CACHE_ERROR);
    }
    if (rc != 0)
        return rc;
    return shoal_set_header(ctx, "WWW-Authenticate", "Token");
}

bool shoal_session_require(shoal_ctx *ctx, const shoal_session_info **out)
{
    const shoal_session_info *info = NULL;
    shoal_session_status status = shoal_session(ctx, &info);
    if (out != NULL)
        *out = info;
    if (status == SHOAL_SESSION_OK)
        return true;
    shoal_session_fail(ctx, status);
    return false;
}

shoal_flow shoal_session_required(shoal_ctx *ctx, void *data)
{
    (void)data;
    return shoal_session_require(ctx, NULL) ? SHOAL_NEXT : SHOAL_STOP;
}

shoal_session_status shoal_session_create(shoal_ctx *ctx, int64_t user_id, const char **token)
{
    *token = NULL;
    const session_state *state = state_of(ctx);
    if (state == NULL)
        return SHOAL_SESSION_ERROR;
    char made[CACHE_SESSION_TOKEN_SIZE];
    shoal_session_status status =
        from_cache(cache_session_create(shoal_cache(ctx), user_id, state->ttl_s, made), "session create");
    if (status == SHOAL_SESSION_OK) {
        *token = shoal_arena_strdup(shoal_ctx_arena(ctx), made);
        if (*token == NULL)
            status = SHOAL_SESSION_ERROR; /* the session expires unused */
    }
    explicit_bzero(made, sizeof made);
    return status;
}

shoal_session_status shoal_session_revoke(shoal_ctx *ctx)
{
    request_session *record = record_of(ctx);
    if (record == NULL)
        return SHOAL_SESSION_ERROR;
    if (record->status != SHOAL_SESSION_OK)
        return record->status;
    shoal_session_status status = from_cache(cache_session_revoke(shoal_cache(ctx), record->token), "session revoke");
    if (status == SHOAL_SESSION_OK) {
        record->status = SHOAL_SESSION_INVALID;
        explicit_bzero(record->token, sizeof record->token);
    }
    return status;
}

shoal_session_status shoal_session_revoke_user(shoal_ctx *ctx, int64_t user_id)
{
    shoal_session_status status =
        from_cache(cache_session_revoke_user(shoal_cache(ctx), user_id, NULL), "session revoke-user");
    const session_state *state = shoal_ctx_standard_instance(ctx, SHOAL_INSTANCE_SESSION);
    request_session *record = state != NULL ? shoal_request_get(ctx, state->slot) : NULL;
    if (status == SHOAL_SESSION_OK && record != NULL && record->status == SHOAL_SESSION_OK &&
        record->info.user_id == user_id)
        record->status = SHOAL_SESSION_INVALID;
    return status;
}

static const shoal_setting session_table[] = {
    {"session-ttl", "SHOAL_SESSION_TTL", SHOAL_SETTING_INT, offsetof(shoal_session_settings_values, ttl_s), "1209600",
     60, 31536000, "seconds a session lives after its last use (14 days; each use slides it)", NULL},
};
const shoal_settings shoal_session_settings =
    SHOAL_SETTINGS("sessions", shoal_session_settings_values, session_table, NULL);

static void *create(shoal_app *app, void *data)
{
    (void)data;
    session_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return NULL;
    /* An app made without the table parsed runs on its default. */
    const shoal_session_settings_values *values = shoal_app_settings(app, &shoal_session_settings);
    state->ttl_s = values != NULL ? values->ttl_s : 1209600;
    return state;
}

static int init(shoal_app *app, void *instance)
{
    session_state *state = instance;
    if (cache_session_init() != 0)
        return shoal_app_fail(app, "libsodium failed to initialise");
    if (shoal_app_set_standard_instance(app, SHOAL_INSTANCE_SESSION, state) != 0)
        return -1;
    state->lookups = shoal_app_counter(app, &session_lookups_spec);
    if (state->lookups == NULL)
        return -1;
    state->slot = shoal_app_request_slot(app);
    return state->slot < 0 ? -1 : 0;
}

const shoal_extension shoal_session_extension = {
    .name = "session",
    .init = init,
    .settings = &shoal_session_settings,
    .create = create,
    .destroy = free,
};
