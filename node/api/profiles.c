/* node/api/profiles.c: profiles and follows. */
#include "api_internal.h"
#include "ext/session.h"

/* {"profile":{"username","bio","image","following"}} */
static int answer_profile(shoal_ctx *ctx, const store_profile *profile)
{
    json_t *body = json_pack("{s:{s:s, s:s?, s:s?, s:b}}", "profile", "username", profile->username, "bio",
                             profile->bio, "image", profile->image, "following", profile->following);
    if (body == NULL)
        return shoal_error(ctx, 500, "internal", "body", "internal error");
    return shoal_json(ctx, 200, body);
}

static int get_profile(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    /* Anybody may look; a caller who sends a token gets `following` for
     * himself, and a bad token is refused rather than ignored. */
    const shoal_session_info *session = NULL;
    shoal_session_status status = shoal_session(ctx, &session);
    if (status != SHOAL_SESSION_OK && status != SHOAL_SESSION_NONE)
        return shoal_session_fail(ctx, status);
    store_profile profile;
    store_result *result = NULL;
    store_status found = store_profile_get(shoal_store(ctx), &api->profiles, session != NULL ? session->user_id : 0,
                                           shoal_param(ctx, "username"), &profile, &result);
    if (found != STORE_OK)
        return api_store_failure(ctx, found, "profile.not_found", "profile");
    shoal_keep_result(ctx, result);
    return answer_profile(ctx, &profile);
}

static int change_follow(shoal_ctx *ctx, bool follow)
{
    const api_state *api = shoal_route_data(ctx);
    const shoal_session_info *session = NULL;
    if (!shoal_session_require(ctx, &session))
        return 0;
    store_profile profile;
    store_result *result = NULL;
    store *s = shoal_store(ctx);
    const char *username = shoal_param(ctx, "username");
    store_status status = follow ? store_profile_follow(s, &api->profiles, session->user_id, username, &profile, &result)
                                 : store_profile_unfollow(s, &api->profiles, session->user_id, username, &profile, &result);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, "profile.not_found", "profile");
    shoal_keep_result(ctx, result);
    if (follow && profile.id == session->user_id)
        return api_invalid(ctx, "username", "api.self_follow", "cannot follow yourself");
    return answer_profile(ctx, &profile);
}

static int follow(shoal_ctx *ctx)
{
    return change_follow(ctx, true);
}

static int unfollow(shoal_ctx *ctx)
{
    return change_follow(ctx, false);
}

int api_profiles_register(shoal_blueprint *bp, api_state *state)
{
    if (shoal_route_with(bp, "GET", "/profiles/:username", get_profile, state) != 0 ||
        shoal_route_with(bp, "POST", "/profiles/:username/follow", follow, state) != 0 ||
        shoal_route_with(bp, "DELETE", "/profiles/:username/follow", unfollow, state) != 0)
        return -1;
    return 0;
}
