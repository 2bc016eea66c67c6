/* node/services/conduit/sql/user.c */
#include "user.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define COLUMNS "id, email, username, password_hash, bio, image"

int store_user_register(store_registry *registry, store_user_statements *statements)
{
    statements->insert = store_registry_add(
        registry, "user_insert",
        "INSERT INTO users (email, username, password_hash) VALUES ($1, $2, $3) RETURNING " COLUMNS, 3);
    statements->by_email =
        store_registry_add(registry, "user_by_email", "SELECT " COLUMNS " FROM users WHERE email = $1", 1);
    statements->by_id = store_registry_add(registry, "user_by_id", "SELECT " COLUMNS " FROM users WHERE id = $1", 1);
    statements->by_username =
        store_registry_add(registry, "user_by_username", "SELECT " COLUMNS " FROM users WHERE username = $1", 1);
    statements->update = store_registry_add(
        registry, "user_update",
        "UPDATE users SET email = coalesce($2, email), username = coalesce($3, username), "
        "password_hash = coalesce($4, password_hash), "
        "bio = CASE WHEN $5::boolean THEN $6 ELSE bio END, "
        "image = CASE WHEN $7::boolean THEN $8 ELSE image END, updated_at = now() "
        "WHERE id = $1 RETURNING " COLUMNS,
        8);
    if (statements->insert < 0 || statements->by_email < 0 || statements->by_id < 0 || statements->by_username < 0 ||
        statements->update < 0)
        return -1;
    if (store_registry_constraint(registry, "users_email_key", "email") != 0 ||
        store_registry_constraint(registry, "users_username_key", "username") != 0)
        return -1;
    return 0;
}

/* The first row of result into *out; the result stays the caller's. */
static store_status user_from_result(const store_result *result, store_user *out)
{
    if (store_result_rows(result) < 1)
        return STORE_NOT_FOUND;
    if (store_result_columns(result) != 6)
        return STORE_ERROR;
    if (!store_result_int64(result, 0, 0, &out->id))
        return STORE_ERROR;
    out->email = store_result_value(result, 0, 1);
    out->username = store_result_value(result, 0, 2);
    out->password_hash = store_result_value(result, 0, 3);
    out->bio = store_result_value(result, 0, 4);
    out->image = store_result_value(result, 0, 5);
    return STORE_OK;
}

static store_status run_for_user(store *s, store_statement statement, const char *const *params, store_user *out,
                                 store_result **result)
{
    *result = NULL;
    store_result *found = NULL;
    store_status status = store_run(s, statement, params, &found);
    if (status != STORE_OK)
        return status;
    status = user_from_result(found, out);
    if (status != STORE_OK) {
        store_result_free(found);
        return status;
    }
    *result = found;
    return STORE_OK;
}

store_status store_user_create(store *s, const store_user_statements *statements, const char *email,
                               const char *username, const char *password_hash, store_user *out,
                               store_result **result)
{
    const char *params[3] = {email, username, password_hash};
    return run_for_user(s, statements->insert, params, out, result);
}

store_status store_user_by_email(store *s, const store_user_statements *statements, const char *email,
                                 store_user *out, store_result **result)
{
    const char *params[1] = {email};
    return run_for_user(s, statements->by_email, params, out, result);
}

store_status store_user_by_id(store *s, const store_user_statements *statements, int64_t id, store_user *out,
                              store_result **result)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, id);
    const char *params[1] = {text};
    return run_for_user(s, statements->by_id, params, out, result);
}

store_status store_user_by_username(store *s, const store_user_statements *statements, const char *username,
                                    store_user *out, store_result **result)
{
    const char *params[1] = {username};
    return run_for_user(s, statements->by_username, params, out, result);
}

store_status store_user_update(store *s, const store_user_statements *statements, int64_t id,
                               const store_user_change *change, store_user *out, store_result **result)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, id);
    const char *params[8] = {text,
                             change->email,
                             change->username,
                             change->password_hash,
                             change->set_bio ? "true" : "false",
                             change->bio,
                             change->set_image ? "true" : "false",
                             change->image};
    return run_for_user(s, statements->update, params, out, result);
}
