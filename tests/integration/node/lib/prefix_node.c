/* tests/integration/node/lib/prefix_node.c: a service of its own ("prefix-node",
 * so its Redis prefix is "prefix-node:" unless --redis-prefix says
 * otherwise) for redis_prefix_test.sh, with a route for each kind of key:
 *
 *   POST /login/:id          a session for user :id: {"token": "..."}
 *   GET  /whoami             the session's user: {"user": id}, or 401
 *   POST /invalidate/:family shoal_cache_invalidate: 204
 *   GET  /limited            200, for a --rate-limits rule to count
 */
#include <stdint.h>
#include <stdlib.h>

#include <shoal/ext/session.h>
#include <shoal/shoal.h>

static int login(shoal_ctx *ctx)
{
    char *end = NULL;
    long long id = strtoll(shoal_param(ctx, "id"), &end, 10);
    if (end == NULL || *end != '\0' || id <= 0)
        return shoal_error(ctx, 400, "request.invalid_field", "id", "must be a positive user id");
    const char *token = NULL;
    shoal_session_status status = shoal_session_create(ctx, (int64_t)id, &token);
    if (status != SHOAL_SESSION_OK)
        return shoal_session_fail(ctx, status);
    return shoal_json(ctx, 200, json_pack("{s:s}", "token", token));
}

static int whoami(shoal_ctx *ctx)
{
    const shoal_session_info *session = NULL;
    if (!shoal_session_require(ctx, &session))
        return 0;
    return shoal_json(ctx, 200, json_pack("{s:I}", "user", (json_int_t)session->user_id));
}

static int invalidate(shoal_ctx *ctx)
{
    int status = shoal_cache_invalidate(ctx, shoal_param(ctx, "family"));
    return status != 0 ? shoal_error_from_cache(ctx, status) : shoal_empty(ctx, 204);
}

static int limited(shoal_ctx *ctx)
{
    return shoal_text(ctx, 200, "text/plain", "ok\n", 3);
}

static int setup(shoal_app *app, void *data)
{
    (void)data;
    shoal_blueprint *bp = shoal_blueprint_new(app, "prefix", "");
    if (bp == NULL || shoal_route(bp, "POST", "/login/:id", login) != 0 ||
        shoal_route(bp, "GET", "/whoami", whoami) != 0 ||
        shoal_route(bp, "POST", "/invalidate/:family", invalidate) != 0)
        return -1;
    return shoal_route(bp, "GET", "/limited", limited);
}

int main(int argc, char **argv)
{
    static const shoal_service service = {.name = "prefix-node", .version = "1", .setup = setup};
    return shoal_main(&service, argc, argv);
}
