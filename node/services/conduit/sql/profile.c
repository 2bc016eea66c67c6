/* node/services/conduit/sql/profile.c */
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

/* Runs statement with params and reads the one profile it answers with:
 * id, username, bio, image, following. */
static store_status run_for_profile(store *s, store_statement statement, const char *const *params,
                                    store_profile *out, store_result **result)
{
    *result = NULL;
    store_result *found = NULL;
    store_status status = store_run(s, statement, params, &found);
    if (status != STORE_OK)
        return status;
    if (store_result_rows(found) < 1) {
        store_result_free(found);
        return STORE_NOT_FOUND;
    }
    const char *following = store_result_value(found, 0, 4);
    if (store_result_columns(found) != 5 || !store_result_int64(found, 0, 0, &out->id) || following == NULL) {
        store_result_free(found);
        return STORE_ERROR;
    }
    out->username = store_result_value(found, 0, 1);
    out->bio = store_result_value(found, 0, 2);
    out->image = store_result_value(found, 0, 3);
    out->following = strcmp(following, "t") == 0;
    *result = found;
    return STORE_OK;
}

/* The writes take the user first, then the username. */
static store_status change_follow(store *s, store_statement statement, int64_t follower, const char *username,
                                  store_profile *out, store_result **result)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, follower);
    const char *params[2] = {text, username};
    return run_for_profile(s, statement, params, out, result);
}

store_status store_profile_get(store *s, const store_profile_statements *statements, int64_t viewer,
                               const char *username, store_profile *out, store_result **result)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, viewer);
    const char *params[2] = {username, text};
    return run_for_profile(s, statements->by_username, params, out, result);
}

store_status store_profile_follow(store *s, const store_profile_statements *statements, int64_t follower,
                                  const char *username, store_profile *out, store_result **result)
{
    return change_follow(s, statements->follow, follower, username, out, result);
}

store_status store_profile_unfollow(store *s, const store_profile_statements *statements, int64_t follower,
                                    const char *username, store_profile *out, store_result **result)
{
    return change_follow(s, statements->unfollow, follower, username, out, result);
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
