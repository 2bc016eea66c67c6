/* tests/support/state_routes.c: see state_routes.h. */
#include "state_routes.h"

#include <stdlib.h>
#include <string.h>

#include <shoal/ext/session.h>
#include <shoal/store.h>

#define GET_ITEM "state_routes_get_item"
#define PUT_ITEM "state_routes_put_item"

static store_statement statement(shoal_ctx *ctx, const char *name)
{
    return store_registry_find(shoal_app_statements(shoal_ctx_app(ctx)), name);
}

static int login(shoal_ctx *ctx)
{
    const char *user = shoal_query(ctx, "user");
    const char *token = NULL;
    shoal_session_status status = shoal_session_create(ctx, user != NULL ? atoll(user) : 0, &token);
    if (status != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, status);
    return shoal_json(ctx, 201, json_pack("{s:s}", "token", token));
}

static int me(shoal_ctx *ctx)
{
    const shoal_session_info *session = NULL;
    if (!shoal_session_require(ctx, &session))
        return 0;
    return shoal_json(ctx, 200, json_pack("{s:I}", "user", (json_int_t)session->user_id));
}

static int logout(shoal_ctx *ctx)
{
    shoal_session_status status = shoal_session_revoke(ctx);
    if (status != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, status);
    return shoal_empty(ctx, 204);
}

/* The value in the arena; a store_status for a miss or a failure. */
static int read_item(shoal_ctx *ctx, const char *key, void *data, void **value, size_t *length)
{
    (void)data;
    store *s = shoal_store(ctx);
    const char *params[] = {key};
    store_result *result = NULL;
    store_status status = store_run(s, statement(ctx, GET_ITEM), params, &result);
    if (status != STORE_OK)
        return (int)status;
    if (shoal_keep_result(ctx, result) == NULL)
        return (int)STORE_ERROR;
    if (store_result_rows(result) == 0)
        return (int)STORE_NOT_FOUND;
    size_t size = (size_t)store_result_length(result, 0, 0);
    char *copy = shoal_arena_alloc(shoal_ctx_arena(ctx), size + 1);
    if (copy == NULL)
        return (int)STORE_ERROR;
    memcpy(copy, store_result_value(result, 0, 0), size);
    *value = copy;
    *length = size;
    return 0;
}

static int answer_item(shoal_ctx *ctx, const char *key, int rc, const void *value, size_t length)
{
    if (rc == (int)STORE_NOT_FOUND)
        return shoal_error(ctx, 404, "item.not_found", "key", "no such item");
    if (rc > 0)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    if (rc < 0)
        return shoal_error(ctx, 500, "item.error", "body", "out of memory");
    return shoal_json(ctx, 200, json_pack("{s:s,s:s%}", "key", key, "value", (const char *)value, length));
}

static int get_item(shoal_ctx *ctx)
{
    const char *key = shoal_param(ctx, "key");
    /* Tests of what happens past a TTL pick a short one. */
    int ttl_ms = STATE_ROUTES_TTL_MS;
    const char *ttl_text = shoal_query(ctx, "ttl_ms");
    if (ttl_text != NULL) {
        char *end = NULL;
        long parsed = strtol(ttl_text, &end, 10);
        if (end == ttl_text || *end != '\0' || parsed < 1 || parsed > STATE_ROUTES_TTL_MS)
            return shoal_error(ctx, 400, "request.invalid", "ttl_ms", "is not a TTL");
        ttl_ms = (int)parsed;
    }
    const void *value = NULL;
    size_t length = 0;
    int rc = shoal_cached(ctx, STATE_ROUTES_FAMILY, key, ttl_ms, read_item, NULL, &value, &length);
    return answer_item(ctx, key, rc, value, length);
}

static int get_item_direct(shoal_ctx *ctx)
{
    const char *key = shoal_param(ctx, "key");
    void *value = NULL;
    size_t length = 0;
    int rc = read_item(ctx, key, NULL, &value, &length);
    return answer_item(ctx, key, rc, value, length);
}

static int put_item(shoal_ctx *ctx)
{
    if (!shoal_session_require(ctx, NULL))
        return 0;
    const char *key = shoal_param(ctx, "key");
    const char *value = shoal_query(ctx, "value");
    if (value == NULL)
        return shoal_error(ctx, 422, "request.missing_field", "value", "is missing");
    const char *params[] = {key, value};
    store_result *result = NULL;
    if (store_run(shoal_store(ctx), statement(ctx, PUT_ITEM), params, &result) != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    store_result_free(result);
    /* After the commit: a reader that refills now reads the new row. */
    shoal_cache_invalidate(ctx, STATE_ROUTES_FAMILY);
    return shoal_json(ctx, 200, json_pack("{s:s,s:s}", "key", key, "value", value));
}

static int init(shoal_app *app, void *data)
{
    (void)data;
    store_registry *statements = shoal_app_statements(app);
    if (store_registry_add(statements, GET_ITEM, "SELECT value FROM state_test_items WHERE key = $1", 1) < 0 ||
        store_registry_add(statements, PUT_ITEM,
                           "INSERT INTO state_test_items (key, value) VALUES ($1, $2) "
                           "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                           2) < 0)
        return -1;
    shoal_blueprint *bp = shoal_blueprint_new(app, "state-test", "/test");
    if (bp == NULL || shoal_route(bp, "POST", "/login", login) != 0 || shoal_route(bp, "GET", "/me", me) != 0 ||
        shoal_route(bp, "POST", "/logout", logout) != 0 || shoal_route(bp, "GET", "/items/:key", get_item) != 0 ||
        shoal_route(bp, "GET", "/items/:key/direct", get_item_direct) != 0 ||
        shoal_route(bp, "PUT", "/items/:key", put_item) != 0)
        return -1;
    return 0;
}

const shoal_extension state_routes_extension = {.name = "state-routes", .init = init};
