/* store/profile.c */
#include "profile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each statement is one round trip: the write, if any, and the profile
 * after it come from one statement, with the user looked up once. */
int store_profile_register(store_registry *registry, store_profile_statements *statements)
{
    statements->by_username = store_registry_add(
        registry, "profile_by_username",
        "SELECT u.id, u.username, u.bio, u.image, EXISTS (SELECT 1 FROM follows f "
        "WHERE f.follower_id = $2::bigint AND f.followee_id = u.id) FROM users u WHERE u.username = $1",
        2);
    statements->follow = store_registry_add(
        registry, "profile_follow",
        "WITH target AS (SELECT id, username, bio, image FROM users WHERE username = $2), "
        "added AS (INSERT INTO follows (follower_id, followee_id) SELECT $1::bigint, id FROM target "
        "WHERE id <> $1::bigint ON CONFLICT DO NOTHING) "
        "SELECT id, username, bio, image, id <> $1::bigint FROM target",
        2);
    statements->unfollow = store_registry_add(
        registry, "profile_unfollow",
        "WITH target AS (SELECT id, username, bio, image FROM users WHERE username = $2), "
        "removed AS (DELETE FROM follows WHERE follower_id = $1::bigint AND followee_id IN (SELECT id FROM target)) "
        "SELECT id, username, bio, image, false FROM target",
        2);
    statements->following = store_registry_add(
        registry, "profile_following",
        "SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = $1::bigint AND followee_id = $2::bigint)", 2);
    return statements->by_username >= 0 && statements->follow >= 0 && statements->unfollow >= 0 &&
                   statements->following >= 0
               ? 0
               : -1;
}

static store_status run_for_profile(store *s, store_statement statement, int64_t user, const char *username,
                                    store_profile *out, store_result **result)
{
    *result = NULL;
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, user);
    /* The first parameter of by_username is the username; of the writes,
     * the user. */
    const char *params[2] = {text, username};
    store_result *found = NULL;
    store_status status = store_run(s, statement, params, &found);
    if (status != STORE_OK)
        return status;
    if (store_result_rows(found) < 1) {
        store_result_free(found);
        return STORE_NOT_FOUND;
    }
    const char *id = store_result_value(found, 0, 0);
    const char *following = store_result_value(found, 0, 4);
    char *end = NULL;
    if (store_result_columns(found) != 5 || id == NULL || following == NULL) {
        store_result_free(found);
        return STORE_ERROR;
    }
    out->id = (int64_t)strtoll(id, &end, 10);
    out->username = store_result_value(found, 0, 1);
    out->bio = store_result_value(found, 0, 2);
    out->image = store_result_value(found, 0, 3);
    out->following = strcmp(following, "t") == 0;
    *result = found;
    return STORE_OK;
}

store_status store_profile_get(store *s, const store_profile_statements *statements, int64_t viewer,
                               const char *username, store_profile *out, store_result **result)
{
    *result = NULL;
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, viewer);
    const char *params[2] = {username, text};
    store_result *found = NULL;
    store_status status = store_run(s, statements->by_username, params, &found);
    if (status != STORE_OK)
        return status;
    if (store_result_rows(found) < 1) {
        store_result_free(found);
        return STORE_NOT_FOUND;
    }
    const char *id = store_result_value(found, 0, 0);
    const char *following = store_result_value(found, 0, 4);
    if (store_result_columns(found) != 5 || id == NULL || following == NULL) {
        store_result_free(found);
        return STORE_ERROR;
    }
    out->id = (int64_t)strtoll(id, NULL, 10);
    out->username = store_result_value(found, 0, 1);
    out->bio = store_result_value(found, 0, 2);
    out->image = store_result_value(found, 0, 3);
    out->following = strcmp(following, "t") == 0;
    *result = found;
    return STORE_OK;
}

store_status store_profile_follow(store *s, const store_profile_statements *statements, int64_t follower,
                                  const char *username, store_profile *out, store_result **result)
{
    return run_for_profile(s, statements->follow, follower, username, out, result);
}

store_status store_profile_unfollow(store *s, const store_profile_statements *statements, int64_t follower,
                                    const char *username, store_profile *out, store_result **result)
{
    return run_for_profile(s, statements->unfollow, follower, username, out, result);
}

store_status store_profile_following(store *s, const store_profile_statements *statements, int64_t viewer,
                                     int64_t followee, bool *following)
{
    char texts[2][24];
    snprintf(texts[0], sizeof texts[0], "%" PRId64, viewer);
    snprintf(texts[1], sizeof texts[1], "%" PRId64, followee);
    const char *params[2] = {texts[0], texts[1]};
    store_result *found = NULL;
    store_status status = store_run(s, statements->following, params, &found);
    if (status != STORE_OK)
        return status;
    const char *value = store_result_rows(found) == 1 ? store_result_value(found, 0, 0) : NULL;
    if (value == NULL)
        status = STORE_ERROR;
    else
        *following = strcmp(value, "t") == 0;
    store_result_free(found);
    return status;
}
