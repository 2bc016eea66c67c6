/* node/lib/ext/idempotency.c: claim before the handler, keep the answer after
 * it, release the claim when the answer is not kept. */
#include <shoal/ext/idempotency.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <shoal/cache.h>
#include <shoal/ext/session.h>
#include <shoal/log.h>

#include "../errors_internal.h"
/* The cache tier's half of idempotency keys, not <shoal/ext/idempotency.h>. */
#include "cache/idempotency.h"

static const shoal_error_code code_invalid_key = {400, "idempotency.invalid_key", "Idempotency-Key",
                                                  "must be 1 to 255 printable ASCII characters"};
static const shoal_error_code code_in_progress = {409, "idempotency.in_progress", "Idempotency-Key",
                                                  "a request with this key is still running; retry shortly"};
static const shoal_error_code code_mismatch = {422, "idempotency.mismatch", "Idempotency-Key",
                                               "was used with a different request body"};

const shoal_error_table shoal_idempotency_errors = {
    "idempotency",
    (const shoal_error_code *const[]){&code_invalid_key, &code_in_progress, &code_mismatch, NULL},
};

/* Besides Content-Type, what a replay repeats: what the client may act on.
 * Per-request headers (X-Request-ID, RateLimit-*, CORS) are made fresh. */
static const char *const kept_headers[] = {"Location", "ETag", "Last-Modified", "Content-Location"};

/* The extension's instance, which its hooks receive as their data. */
typedef struct idempotency_state {
    shoal_request_slot slot;
    long long ttl_ms;
} idempotency_state;

/* What the request slot holds while this request owns a key. */
typedef struct claim {
    char key[CACHE_IDEMPOTENCY_KEY_SIZE];
    unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES];
    bool settled; /* stored, or no longer ours */
} claim;

bool shoal_idempotency_key_valid(const char *key)
{
    if (key == NULL)
        return false;
    size_t length = strlen(key);
    if (length == 0 || length > SHOAL_IDEMPOTENCY_MAX_KEY_LENGTH)
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return false;
    return true;
}

bool shoal_idempotency_status_kept(int status)
{
    if (status >= 200 && status <= 299)
        return true;
    return status >= 400 && status <= 499 && status != 408 && status != 429;
}

/* Sets the stored header lines on the answer; Content-Type is returned
 * apart, since it is not a header the context keeps in its list. */
static int replay_headers(shoal_ctx *ctx, char *headers, const char **content_type)
{
    *content_type = NULL;
    for (char *line = headers; *line != '\0';) {
        char *end = strchr(line, '\n');
        if (end == NULL)
            return -1;
        *end = '\0';
        char *colon = strchr(line, ':');
        if (colon == NULL)
            return -1;
        *colon = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        if (strcasecmp(line, "Content-Type") == 0)
            *content_type = value;
        else if (shoal_set_header(ctx, line, value) != 0)
            return -1;
        line = end + 1;
    }
    return 0;
}

static void replay(shoal_ctx *ctx, cache_idempotency_response *stored)
{
    shoal_arena *arena = shoal_ctx_arena(ctx);
    char *headers = shoal_arena_strdup(arena, stored->headers);
    char *body = stored->body_length > 0 ? shoal_arena_alloc(arena, stored->body_length) : NULL;
    const char *content_type = NULL;
    if (headers == NULL || (stored->body_length > 0 && body == NULL) ||
        replay_headers(ctx, headers, &content_type) != 0) {
        shoal_log(SHOAL_LOG_ERROR, "idempotency", "cannot replay a stored answer (out of memory or malformed)");
        shoal_fail(ctx, &shoal_code_internal);
        return;
    }
    if (body != NULL)
        memcpy(body, stored->body, stored->body_length);
    shoal_text(ctx, stored->status, content_type, body, stored->body_length);
    shoal_set_header(ctx, "Idempotent-Replayed", "true");
}

static shoal_flow claim_key(shoal_ctx *ctx, void *data)
{
    if ((shoal_method(ctx) & (SHOAL_METHOD_POST | SHOAL_METHOD_PATCH)) == 0)
        return SHOAL_NEXT;
    const char *client_key = shoal_header(ctx, "Idempotency-Key");
    /* Unknown paths and refused bodies get their usual answer: there is
     * nothing to run once. */
    if (client_key == NULL || !shoal_route_matched(ctx) || shoal_rejected(ctx))
        return SHOAL_NEXT;
    if (!shoal_idempotency_key_valid(client_key)) {
        shoal_fail(ctx, &code_invalid_key);
        return SHOAL_STOP;
    }
    const idempotency_state *state = data;
    claim *record = shoal_arena_calloc(shoal_ctx_arena(ctx), 1, sizeof *record);
    if (record == NULL) {
        shoal_fail(ctx, &shoal_code_internal);
        return SHOAL_STOP;
    }

    /* The caller: the session token when there is one (a malformed header
     * counts as itself), else the client address. */
    const char *authorization = shoal_header(ctx, "Authorization");
    char token[SHOAL_SESSION_TOKEN_SIZE];
    const char *scope = NULL;
    if (authorization != NULL && authorization[0] != '\0')
        scope = shoal_session_parse_authorization(authorization, token) == SHOAL_SESSION_OK ? token : authorization;
    size_t body_length = 0;
    const char *body = shoal_body(ctx, &body_length);
    int derived = cache_idempotency_key(cache_key_prefix(shoal_cache(ctx)), scope, shoal_client_address(ctx),
                                        shoal_method_name(ctx), shoal_path(ctx), client_key, record->key);
    explicit_bzero(token, sizeof token);
    if (derived != 0 || cache_idempotency_fingerprint(body, body_length, record->fingerprint) != 0) {
        shoal_log(SHOAL_LOG_ERROR, "idempotency", "libsodium failed");
        shoal_fail(ctx, &shoal_code_internal);
        return SHOAL_STOP;
    }

    cache_idempotency_state held;
    cache_idempotency_response stored;
    cache_status status = cache_idempotency_claim(shoal_cache(ctx), record->key, record->fingerprint,
                                                  SHOAL_IDEMPOTENCY_RUNNING_TTL_MS, &held, &stored);
    if (status != CACHE_OK) {
        /* Without Redis nothing can promise once-only: the client retries. */
        if (status == CACHE_ERROR)
            shoal_log(SHOAL_LOG_ERROR, "idempotency", "claim: Redis answered with an error or a foreign value");
        shoal_error_from_cache(ctx, status);
        return SHOAL_STOP;
    }
    switch (held) {
    case CACHE_IDEMPOTENCY_CLAIMED:
        shoal_request_set(ctx, state->slot, record);
        return SHOAL_NEXT;
    case CACHE_IDEMPOTENCY_DONE:
        replay(ctx, &stored);
        cache_idempotency_response_free(&stored);
        return SHOAL_STOP;
    case CACHE_IDEMPOTENCY_RUNNING:
        if (shoal_fail(ctx, &code_in_progress) == 0)
            shoal_set_header(ctx, "Retry-After", "1");
        return SHOAL_STOP;
    case CACHE_IDEMPOTENCY_MISMATCH:
        shoal_fail(ctx, &code_mismatch);
        return SHOAL_STOP;
    }
    return SHOAL_NEXT;
}

/* Appends "Name: value\n" unless the value could break the line format. */
static char *append_header(shoal_arena *arena, char *block, const char *name, const char *value)
{
    if (value == NULL || strpbrk(value, "\r\n") != NULL)
        return block;
    return shoal_arena_printf(arena, "%s%s: %s\n", block, name, value);
}

static void keep_answer(shoal_ctx *ctx, void *data)
{
    const idempotency_state *state = data;
    claim *record = shoal_request_get(ctx, state->slot);
    if (record == NULL || record->settled || !shoal_idempotency_status_kept(shoal_status(ctx)))
        return; /* the teardown releases what is not kept */
    shoal_arena *arena = shoal_ctx_arena(ctx);
    char *headers = append_header(arena, "", "Content-Type", shoal_response_content_type(ctx));
    for (size_t i = 0; headers != NULL && i < sizeof kept_headers / sizeof kept_headers[0]; i++)
        headers = append_header(arena, headers, kept_headers[i], shoal_response_header(ctx, kept_headers[i]));
    if (headers == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "idempotency", "out of memory keeping an answer");
        return;
    }
    cache_idempotency_response response = {.status = shoal_status(ctx), .headers = headers};
    const char *body = shoal_response_body(ctx, &response.body_length);
    response.body = (char *)body;
    bool stored = false;
    cache_status status = cache_idempotency_store(shoal_cache(ctx), record->key, record->fingerprint, &response,
                                                  state->ttl_ms, &stored);
    if (status != CACHE_OK) {
        shoal_log(SHOAL_LOG_WARNING, "idempotency",
                  "%s %s: the answer could not be kept (Redis %s); the claim is released or expires",
                  shoal_method_name(ctx), shoal_path(ctx), status == CACHE_UNAVAILABLE ? "unreachable" : "error");
        return;
    }
    if (!stored)
        shoal_log(SHOAL_LOG_WARNING, "idempotency",
                  "%s %s ran longer than the claim (%d ms): a retry may have run it again", shoal_method_name(ctx),
                  shoal_path(ctx), SHOAL_IDEMPOTENCY_RUNNING_TTL_MS);
    record->settled = true;
}

static void release_claim(shoal_ctx *ctx, void *data)
{
    const idempotency_state *state = data;
    claim *record = shoal_request_get(ctx, state->slot);
    if (record == NULL || record->settled)
        return;
    record->settled = true;
    if (cache_idempotency_release(shoal_cache(ctx), record->key, record->fingerprint) != CACHE_OK)
        shoal_log(SHOAL_LOG_WARNING, "idempotency", "%s %s: the claim could not be released; it expires in %d ms",
                  shoal_method_name(ctx), shoal_path(ctx), SHOAL_IDEMPOTENCY_RUNNING_TTL_MS);
}

static const shoal_setting idempotency_table[] = {
    {"idempotency-ttl", "SHOAL_IDEMPOTENCY_TTL", SHOAL_SETTING_INT, offsetof(shoal_idempotency_settings_values, ttl_s),
     "86400", 1, 2592000, "seconds a POST or PATCH sent with an Idempotency-Key is answered from its first run", NULL},
};
const shoal_settings shoal_idempotency_settings =
    SHOAL_SETTINGS("idempotency keys", shoal_idempotency_settings_values, idempotency_table, NULL);

static void *create(shoal_app *app, void *data)
{
    (void)data;
    idempotency_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return NULL;
    /* An app made without the table parsed runs on its default. */
    const shoal_idempotency_settings_values *values = shoal_app_settings(app, &shoal_idempotency_settings);
    state->ttl_ms = (long long)(values != NULL ? values->ttl_s : 86400) * 1000;
    return state;
}

/* The app holds the instance from create on, so the hooks that point to it
 * never outlive it, whatever fails here. */
static int init(shoal_app *app, void *instance)
{
    idempotency_state *state = instance;
    state->slot = shoal_app_request_slot(app);
    shoal_blueprint *root = shoal_app_root(app);
    if (state->slot < 0 || shoal_before(root, claim_key, state) != 0 || shoal_after(root, keep_answer, state) != 0 ||
        shoal_teardown(root, release_claim, state) != 0)
        return -1;
    return 0;
}

const shoal_extension shoal_idempotency_extension = {
    .name = "idempotency",
    .init = init,
    .settings = &shoal_idempotency_settings,
    .create = create,
    .destroy = free,
};
