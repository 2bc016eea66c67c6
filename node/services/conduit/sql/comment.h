/* node/services/conduit/sql/comment.h: RealWorld comments on articles. Each call is one
 * statement (one round trip) that finds the article by its slug itself.
 * As in node/services/conduit/sql/user.h, strings live in *result, which the caller releases. */
#ifndef STORE_COMMENT_H
#define STORE_COMMENT_H

#include <stdbool.h>
#include <stdint.h>

#include <shoal/store.h>

#include "profile.h"

/* The schema's bound (comments_body_length), in characters. */
#define STORE_COMMENT_BODY_MAX 65536

typedef struct store_comment {
    int64_t id;
    const char *created_at; /* ISO 8601, UTC, milliseconds (node/services/conduit/sql/timestamp.h) */
    const char *updated_at;
    const char *body;
    store_profile author; /* following: by the viewer */
} store_comment;

typedef struct store_comment_statements {
    store_statement create;
    store_statement list;
    store_statement remove;
} store_comment_statements;

int store_comment_register(store_registry *registry, store_comment_statements *statements);

/* author comments on the article slug. STORE_NOT_FOUND: no such article. */
store_status store_comment_create(store *s, const store_comment_statements *statements, const char *slug,
                                  int64_t author, const char *body, store_comment *out, store_result **result);

/* Every comment of the article slug, oldest first, with `following` as
 * viewer sees it (viewer 0: nobody). *count comments are then read with
 * store_comment_at. STORE_NOT_FOUND: no such article. */
store_status store_comment_list(store *s, const store_comment_statements *statements, const char *slug,
                                int64_t viewer, store_result **result, int *count);
/* The index-th comment of a list's result (0 <= index < count). */
store_status store_comment_at(const store_result *result, int index, store_comment *out);

typedef enum store_comment_deletion {
    STORE_COMMENT_DELETED,
    STORE_COMMENT_NO_ARTICLE,
    STORE_COMMENT_NO_COMMENT, /* none with that id on that article */
    STORE_COMMENT_NOT_AUTHOR, /* it exists, and it is somebody else's: kept */
} store_comment_deletion;

/* Deletes comment id of the article slug when caller wrote it; *outcome
 * says what happened when the status is STORE_OK. Ids start at 1, so 0
 * names no comment (for an id that is not a number). */
store_status store_comment_delete(store *s, const store_comment_statements *statements, const char *slug,
                                  int64_t id, int64_t caller, store_comment_deletion *outcome);

#endif
