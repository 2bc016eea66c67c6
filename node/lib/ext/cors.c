/* node/lib/ext/cors.c */
#include <shoal/ext/cors.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../context.h"

/* How long a browser may reuse a preflight's answer: Chromium caps it at
 * two hours, Firefox at a day. Every slug is a URL of its own, so a long
 * one saves many round trips; a removed origin is still refused at once,
 * since the real answer then lacks Access-Control-Allow-Origin. */
#define PREFLIGHT_MAX_AGE "7200"
/* Every method the router knows: the preflight approves the origin, and
 * the real request gets the real answer (404, 405 with the envelope, which
 * the page can read) instead of an opaque CORS failure. */
#define ALLOWED_METHODS "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
/* What the node reads besides the safelisted headers. */
#define ALLOWED_HEADERS "Authorization, Content-Type, X-Request-ID, Idempotency-Key"
/* Answer headers a page may read besides the safelisted ones. */
#define EXPOSED_HEADERS \
    "X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Idempotent-Replayed"

bool shoal_cors_origin_allowed(const char *origins, const char *origin)
{
    if (origins == NULL || origin == NULL || *origin == '\0')
        return false;
    size_t origin_length = strlen(origin);
    const char *cursor = origins;
    while (*cursor != '\0') {
        while (*cursor == ' ' || *cursor == ',')
            cursor++;
        size_t length = strcspn(cursor, ",");
        size_t trimmed = length;
        while (trimmed > 0 && cursor[trimmed - 1] == ' ')
            trimmed--;
        if (trimmed == 1 && cursor[0] == '*')
            return true;
        if (trimmed == origin_length && strncmp(cursor, origin, trimmed) == 0)
            return true;
        cursor += length;
    }
    return false;
}

/* The hooks' data is the configured list of origins. A preflight is an
 * OPTIONS with Access-Control-Request-Method; it is answered on any path,
 * known or not, for an allowed origin. Any other OPTIONS, and a preflight
 * from another origin, is the router's (204 with Allow, or 404). */
static shoal_flow answer_preflight(shoal_ctx *ctx, void *origins)
{
    if (shoal_method(ctx) != SHOAL_METHOD_OPTIONS || shoal_rejected(ctx) ||
        shoal_header(ctx, "Access-Control-Request-Method") == NULL ||
        !shoal_cors_origin_allowed(origins, shoal_header(ctx, "Origin")))
        return SHOAL_NEXT;
    if (shoal_ctx_set_header_kept(ctx, "Access-Control-Allow-Methods", ALLOWED_METHODS) != 0 ||
        shoal_ctx_set_header_kept(ctx, "Access-Control-Allow-Headers", ALLOWED_HEADERS) != 0 ||
        shoal_ctx_set_header_kept(ctx, "Access-Control-Max-Age", PREFLIGHT_MAX_AGE) != 0)
        return SHOAL_NEXT;
    shoal_empty(ctx, 204);
    return SHOAL_STOP;
}

/* Every answer, the preflight's included, to a request with an Origin.
 * Credentials are never allowed (tokens travel in Authorization, which a
 * page of another origin does not have, and there are no cookies), so "*"
 * is a valid answer and the same for every origin. */
static void allow_any_origin(shoal_ctx *ctx, void *data)
{
    (void)data;
    const char *origin = shoal_header(ctx, "Origin");
    if (origin == NULL || *origin == '\0')
        return;
    shoal_ctx_set_header_kept(ctx, "Access-Control-Allow-Origin", "*");
    shoal_ctx_set_header_kept(ctx, "Access-Control-Expose-Headers", EXPOSED_HEADERS);
}

/* With a list the answer depends on the Origin, so every answer says so
 * (Vary), also one without CORS headers: a shared cache must not hand an
 * answer made for one origin, or for none, to another. */
static void allow_listed_origin(shoal_ctx *ctx, void *origins)
{
    shoal_ctx_add_header_kept(ctx, "Vary", "Origin");
    const char *origin = shoal_header(ctx, "Origin");
    if (!shoal_cors_origin_allowed(origins, origin))
        return;
    shoal_set_header(ctx, "Access-Control-Allow-Origin", origin); /* the client's: copied */
    shoal_ctx_set_header_kept(ctx, "Access-Control-Expose-Headers", EXPOSED_HEADERS);
}

/* Each entry of the list is "*" or an origin as browsers send it:
 * scheme://host[:port], without a path. */
static bool valid_origins(const char *origins)
{
    const char *cursor = origins;
    while (*cursor != '\0') {
        cursor += strspn(cursor, " ,");
        size_t length = strcspn(cursor, ",");
        while (length > 0 && cursor[length - 1] == ' ')
            length--;
        if (length == 0)
            break;
        bool wildcard = length == 1 && cursor[0] == '*';
        bool web = (strncmp(cursor, "https://", 8) == 0 && length > 8) ||
                   (strncmp(cursor, "http://", 7) == 0 && length > 7);
        if (!wildcard && !web)
            return false;
        size_t scheme = wildcard ? 1 : strchr(cursor, '/') - cursor + 2;
        for (size_t i = scheme; i < length; i++)
            if (cursor[i] == '/' || cursor[i] == ' ')
                return false;
        cursor += length;
        cursor += strcspn(cursor, ",");
    }
    return true;
}

/* Checked at start, so that a typo exits 2 instead of refusing every
 * browser later. */
static int validate(void *values, char *error, size_t error_size)
{
    const shoal_cors_settings_values *cors = values;
    if (valid_origins(cors->origins))
        return 0;
    snprintf(error, error_size,
             "--cors-origins (SHOAL_CORS_ORIGINS): '%s' is not * or a list of origins like https://app.example",
             cors->origins);
    return -1;
}

static const shoal_setting cors_table[] = {
    {"cors-origins", "SHOAL_CORS_ORIGINS", SHOAL_SETTING_STRING, offsetof(shoal_cors_settings_values, origins), "*", 0,
     0,
     "origins whose pages may call the node: * (any; no credentials are ever allowed), a comma-separated "
     "list, or empty (CORS off)",
     NULL},
};
const shoal_settings shoal_cors_settings = SHOAL_SETTINGS("cors", shoal_cors_settings_values, cors_table, validate);

static int init(shoal_app *app, void *data)
{
    (void)data;
    /* An app made without the table parsed runs on its default. */
    const shoal_cors_settings_values *values = shoal_app_settings(app, &shoal_cors_settings);
    const char *origins = values != NULL ? values->origins : "*";
    if (origins == NULL || *origins == '\0')
        return 0; /* off */
    /* Only an entry that is "*" itself allows the origin "*". */
    shoal_after_fn allow = shoal_cors_origin_allowed(origins, "*") ? allow_any_origin : allow_listed_origin;
    shoal_blueprint *root = shoal_app_root(app);
    /* The hooks only read the list, which lives as long as the app. */
    void *list = (void *)(uintptr_t)origins;
    if (shoal_before(root, answer_preflight, list) != 0 || shoal_after(root, allow, list) != 0)
        return -1;
    return 0;
}

const shoal_extension shoal_cors_extension = {
    .name = "cors",
    .init = init,
    .settings = &shoal_cors_settings,
};
