/* node/services/conduit/sql/user.h: the RealWorld users (table `users`, migration 0003).
 *
 * Emails and usernames are citext: found and kept unique regardless of
 * case. A call that finds a user fills a store_user whose strings live in
 * *result, which the caller releases with store_result_free (node/ ties it
 * to the request with shoal_keep_result), so nothing is copied. */
#ifndef STORE_USER_H
#define STORE_USER_H

#include <stdbool.h>
#include <stdint.h>

#include <shoal/store.h>

typedef struct store_user {
    int64_t id;
    const char *email;
    const char *username;
    const char *password_hash;
    const char *bio;   /* NULL for none */
    const char *image; /* NULL for none */
} store_user;

typedef struct store_user_statements {
    store_statement insert;
    store_statement by_email;
    store_statement by_id;
    store_statement by_username;
    store_statement update;
} store_user_statements;

/* Adds the statements, and names the fields the unique constraints guard
 * (users_email_key -> email, users_username_key -> username), so that a
 * taken one becomes 422 naming it. 0 or -1. */
int store_user_register(store_registry *registry, store_user_statements *statements);

/* A new user. STORE_CONFLICT (field email or username) when taken. */
store_status store_user_create(store *s, const store_user_statements *statements, const char *email,
                               const char *username, const char *password_hash, store_user *out,
                               store_result **result);
/* STORE_NOT_FOUND when there is no such user. */
store_status store_user_by_email(store *s, const store_user_statements *statements, const char *email,
                                 store_user *out, store_result **result);
store_status store_user_by_id(store *s, const store_user_statements *statements, int64_t id, store_user *out,
                              store_result **result);
store_status store_user_by_username(store *s, const store_user_statements *statements, const char *username,
                                    store_user *out, store_result **result);

/* What an update changes: NULL strings keep the stored value, except bio
 * and image, which are set (to NULL too) when their flag says so. */
typedef struct store_user_change {
    const char *email;
    const char *username;
    const char *password_hash;
    bool set_bio;
    const char *bio;
    bool set_image;
    const char *image;
} store_user_change;

/* The user as it is after the change. STORE_NOT_FOUND when id is gone,
 * STORE_CONFLICT when the new email or username is taken. */
store_status store_user_update(store *s, const store_user_statements *statements, int64_t id,
                               const store_user_change *change, store_user *out, store_result **result);

#endif
