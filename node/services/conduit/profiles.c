/* node/services/conduit/profiles.c: profiles and follows. */
#include <inttypes.h>
#include <stdlib.h>

#include <shoal/ext/session.h>

#include "api_internal.h"
#include "record.h"

/* {"profile":{"username","bio","image","following"}} */
static int answer_profile(shoal_ctx *ctx, const store_profile *profile)
{
    json_t *body = json_pack("{s:{s:s, s:s?, s:s?, s:b}}", "profile", "username", profile->username, "bio",
                             profile->bio, "image", profile->image, "following", profile->following);
    if (body == NULL)
        return shoal_fail(ctx, &shoal_code_internal);
    return shoal_json(ctx, 200, body);
}

/* What a cached profile holds, in this order (node/services/conduit/record.h). */
enum cached_field { CACHED_ID, CACHED_USERNAME, CACHED_BIO, CACHED_IMAGE, CACHED_FIELDS };

static int fill_profile(shoal_ctx *ctx, const char *key, void *data, void **value, size_t *length)
{
    const api_state *api = data;
    store_profile profile;
    store_result *result = NULL;
    /* As nobody sees it: `following` never enters the cache. */
    store_status status = store_profile_get(shoal_store(ctx), &api->profiles, 0, key, &profile, &result);
    if (status != STORE_OK)
        return (int)status;
    shoal_keep_result(ctx, result);
    const char *fields[CACHED_FIELDS] = {
        [CACHED_ID] = shoal_arena_printf(shoal_ctx_arena(ctx), "%" PRId64, profile.id),
        [CACHED_USERNAME] = profile.username,
        [CACHED_BIO] = profile.bio,
        [CACHED_IMAGE] = profile.image,
    };
    if (fields[CACHED_ID] == NULL)
        return (int)STORE_ERROR;
    *value = api_record_encode(shoal_ctx_arena(ctx), fields, CACHED_FIELDS, length);
    return *value != NULL ? 0 : (int)STORE_ERROR;
}

static bool decode_profile(const void *bytes, size_t length, store_profile *out)
{
    const char *fields[CACHED_FIELDS];
    if (!api_record_decode(bytes, length, fields, CACHED_FIELDS) || fields[CACHED_ID] == NULL ||
        fields[CACHED_USERNAME] == NULL)
        return false;
    char *end = NULL;
    *out = (store_profile){.id = (int64_t)strtoll(fields[CACHED_ID], &end, 10),
                           .username = fields[CACHED_USERNAME],
                           .bio = fields[CACHED_BIO],
                           .image = fields[CACHED_IMAGE]};
    return end != fields[CACHED_ID] && *end == '\0';
}

static int get_profile(shoal_ctx *ctx)
{
    api_state *api = shoal_route_data(ctx);
    /* Anybody may look; a caller who sends a token gets `following` for
     * himself, and a bad token is refused rather than ignored. */
    const shoal_session_info *session = NULL;
    shoal_session_status status = shoal_session(ctx, &session);
    if (status != SHOAL_SESSION_OK && status != SHOAL_SESSION_NONE)
        return shoal_session_fail(ctx, status);
    int64_t viewer = session != NULL ? session->user_id : 0;
    const char *username = shoal_param(ctx, "username");
    store *s = shoal_store(ctx);
    const void *value = NULL;
    size_t length = 0;
    int rc = shoal_cached(ctx, API_CACHE_PROFILE, username, API_PROFILE_TTL_MS, fill_profile, api, &value, &length);
    if (rc < 0)
        return shoal_fail(ctx, &shoal_code_internal);
    if (rc > 0)
        return api_store_failure(ctx, (store_status)rc, &api_code_profile_not_found);
    store_profile profile;
    if (!decode_profile(value, length, &profile)) {
        /* Written by a node of another version, say: read it whole. */
        store_result *result = NULL;
        store_status found = store_profile_get(s, &api->profiles, viewer, username, &profile, &result);
        if (found != STORE_OK)
            return api_store_failure(ctx, found, &api_code_profile_not_found);
        shoal_keep_result(ctx, result);
        return answer_profile(ctx, &profile);
    }
    profile.following = false;
    if (viewer != 0 && viewer != profile.id) {
        store_status found = store_profile_following(s, &api->profiles, viewer, profile.id, &profile.following);
        if (found != STORE_OK)
            return api_store_failure(ctx, found, &api_code_profile_not_found);
    }
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
        return api_store_failure(ctx, status, &api_code_profile_not_found);
    shoal_keep_result(ctx, result);
    if (follow && profile.id == session->user_id)
        return api_invalid(ctx, "username", &api_code_self_follow, "cannot follow yourself");
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
