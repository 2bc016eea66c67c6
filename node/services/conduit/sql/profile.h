/* node/services/conduit/sql/profile.h: RealWorld profiles (a user as others see them) and
 * follows. As in node/services/conduit/sql/user.h, strings live in *result, which the caller
 * releases. */
#ifndef STORE_PROFILE_H
#define STORE_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include <shoal/store.h>

typedef struct store_profile {
    int64_t id;
    const char *username;
    const char *bio;   /* NULL for none */
    const char *image; /* NULL for none */
    bool following;    /* by the viewer */
} store_profile;

typedef struct store_profile_statements {
    store_statement by_username;
    store_statement follow;
    store_statement unfollow;
    store_statement following;
} store_profile_statements;

int store_profile_register(store_registry *registry, store_profile_statements *statements);

/* The profile of username as viewer sees it (viewer 0: nobody, following
 * false). STORE_NOT_FOUND when there is no such user. */
store_status store_profile_get(store *s, const store_profile_statements *statements, int64_t viewer,
                               const char *username, store_profile *out, store_result **result);
/* Whether viewer follows user id followee, for a profile read from the
 * cache: one statement on the primary key. */
store_status store_profile_following(store *s, const store_profile_statements *statements, int64_t viewer,
                                     int64_t followee, bool *following);
/* follower follows username (again is no change) and gets the profile.
 * Following oneself changes nothing: the profile comes back with
 * following false and out->id == follower. STORE_NOT_FOUND: no such user. */
store_status store_profile_follow(store *s, const store_profile_statements *statements, int64_t follower,
                                  const char *username, store_profile *out, store_result **result);
/* The reverse; not following already is no change. */
store_status store_profile_unfollow(store *s, const store_profile_statements *statements, int64_t follower,
                                    const char *username, store_profile *out, store_result **result);

#endif
