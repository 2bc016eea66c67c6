/* node/ext/cors.c */
#include "cors.h"

#include <string.h>

/* Preflight answers may be cached by browsers for this many seconds. */
#define PREFLIGHT_MAX_AGE "600"
#define ALLOWED_HEADERS "Authorization, Content-Type, X-Request-ID, Idempotency-Key"

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

/* The hooks' data is the configured list of origins. */
static shoal_flow answer_preflight(shoal_ctx *ctx, void *origins)
{
    if (shoal_method(ctx) != SHOAL_METHOD_OPTIONS)
        return SHOAL_NEXT;
    const char *origin = shoal_header(ctx, "Origin");
    const char *requested = shoal_header(ctx, "Access-Control-Request-Method");
    const char *allow = shoal_allowed_methods(ctx);
    if (requested == NULL || allow == NULL || !shoal_cors_origin_allowed(origins, origin))
        return SHOAL_NEXT;
    if (shoal_set_header(ctx, "Access-Control-Allow-Methods", allow) != 0 ||
        shoal_set_header(ctx, "Access-Control-Allow-Headers", ALLOWED_HEADERS) != 0 ||
        shoal_set_header(ctx, "Access-Control-Max-Age", PREFLIGHT_MAX_AGE) != 0)
        return SHOAL_NEXT;
    shoal_empty(ctx, 204);
    return SHOAL_STOP;
}

static void allow_origin(shoal_ctx *ctx, void *origins)
{
    const char *origin = shoal_header(ctx, "Origin");
    if (!shoal_cors_origin_allowed(origins, origin))
        return;
    /* Echoing the origin (rather than "*") with Vary keeps shared caches
     * from serving one origin's answer to another. */
    shoal_set_header(ctx, "Access-Control-Allow-Origin", origin);
    shoal_add_header(ctx, "Vary", "Origin");
    shoal_set_header(ctx, "Access-Control-Expose-Headers", "X-Request-ID, Retry-After");
}

static int init(shoal_app *app, void *data)
{
    (void)data;
    char *origins = shoal_app_config(app)->cors_origins;
    if (origins == NULL || *origins == '\0')
        return 0; /* off */
    shoal_blueprint *root = shoal_app_root(app);
    if (shoal_before(root, answer_preflight, origins) != 0 || shoal_after(root, allow_origin, origins) != 0)
        return -1;
    return 0;
}

const shoal_extension shoal_cors_extension = {
    .name = "cors",
    .init = init,
};
