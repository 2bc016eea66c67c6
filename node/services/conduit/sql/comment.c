/* node/services/conduit/sql/comment.c */
#include "comment.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timestamp.h"

/* The columns a comment is read from, in store_comment_at's order. */
#define COLUMN_COUNT 9
#define COMMENT_COLUMNS(comment, user)                                                                       \
    comment ".id, " STORE_SQL_ISO8601(comment ".created_at") ", " STORE_SQL_ISO8601(comment ".updated_at") \
            ", " comment ".body, " user ".id, " user ".username, " user ".bio, " user ".image"

int store_comment_register(store_registry *registry, store_comment_statements *statements)
{
    /* The commenter is the caller, and nobody follows himself: following
     * is false without asking. */
    statements->create = store_registry_add(
        registry, "comment_create",
        "WITH article AS (SELECT id FROM articles WHERE slug = $1), "
        "inserted AS (INSERT INTO comments (article_id, author_id, body) SELECT id, $2::bigint, $3 FROM article "
        "RETURNING id, created_at, updated_at, body, author_id) "
        "SELECT " COMMENT_COLUMNS("i", "u") ", false FROM inserted i JOIN users u ON u.id = i.author_id",
        3);
    /* The article is the outer side of the joins, so that an article
     * without comments still gives one row (with a NULL comment id) and no
     * row at all means no article. comments_article_idx gives the order. */
    statements->list = store_registry_add(
        registry, "comment_list",
        "SELECT " COMMENT_COLUMNS("c", "u") ", EXISTS (SELECT 1 FROM follows f "
        "WHERE f.follower_id = $2::bigint AND f.followee_id = u.id) "
        "FROM articles a LEFT JOIN comments c ON c.article_id = a.id LEFT JOIN users u ON u.id = c.author_id "
        "WHERE a.slug = $1 ORDER BY c.created_at, c.id",
        2);
    /* One row always: whether the article exists, the comment's author
     * (NULL: no such comment on it), and whether it was deleted. */
    statements->remove = store_registry_add(
        registry, "comment_delete",
        "WITH article AS (SELECT id FROM articles WHERE slug = $1), "
        "target AS (SELECT c.id, c.author_id FROM comments c JOIN article a ON c.article_id = a.id "
        "WHERE c.id = $2::bigint), "
        "removed AS (DELETE FROM comments c USING target t WHERE c.id = t.id AND t.author_id = $3::bigint "
        "RETURNING c.id) "
        "SELECT EXISTS (SELECT 1 FROM article), (SELECT author_id FROM target), EXISTS (SELECT 1 FROM removed)",
        3);
    return statements->create >= 0 && statements->list >= 0 && statements->remove >= 0 ? 0 : -1;
}

store_status store_comment_at(const store_result *result, int index, store_comment *out)
{
    if (index < 0 || index >= store_result_rows(result) || store_result_columns(result) != COLUMN_COUNT)
        return STORE_ERROR;
    const char *following = store_result_value(result, index, 8);
    if (!store_result_int64(result, index, 0, &out->id) ||
        !store_result_int64(result, index, 4, &out->author.id) || following == NULL)
        return STORE_ERROR;
    out->created_at = store_result_value(result, index, 1);
    out->updated_at = store_result_value(result, index, 2);
    out->body = store_result_value(result, index, 3);
    out->author.username = store_result_value(result, index, 5);
    out->author.bio = store_result_value(result, index, 6);
    out->author.image = store_result_value(result, index, 7);
    out->author.following = strcmp(following, "t") == 0;
    if (out->created_at == NULL || out->updated_at == NULL || out->body == NULL || out->author.username == NULL)
        return STORE_ERROR;
    return STORE_OK;
}

store_status store_comment_create(store *s, const store_comment_statements *statements, const char *slug,
                                  int64_t author, const char *body, store_comment *out, store_result **result)
{
    *result = NULL;
    char author_text[24];
    snprintf(author_text, sizeof author_text, "%" PRId64, author);
    const char *params[3] = {slug, author_text, body};
    store_result *created = NULL;
    store_status status = store_run(s, statements->create, params, &created);
    if (status != STORE_OK)
        return status;
    if (store_result_rows(created) < 1) {
        store_result_free(created);
        return STORE_NOT_FOUND;
    }
    status = store_comment_at(created, 0, out);
    if (status != STORE_OK) {
        store_result_free(created);
        return status;
    }
    *result = created;
    return STORE_OK;
}

store_status store_comment_list(store *s, const store_comment_statements *statements, const char *slug,
                                int64_t viewer, store_result **result, int *count)
{
    *result = NULL;
    *count = 0;
    char viewer_text[24];
    snprintf(viewer_text, sizeof viewer_text, "%" PRId64, viewer);
    const char *params[2] = {slug, viewer_text};
    store_result *found = NULL;
    store_status status = store_run(s, statements->list, params, &found);
    if (status != STORE_OK)
        return status;
    int rows = store_result_rows(found);
    if (rows < 1) {
        store_result_free(found);
        return STORE_NOT_FOUND;
    }
    if (store_result_columns(found) != COLUMN_COUNT) {
        store_result_free(found);
        return STORE_ERROR;
    }
    /* The one row of an article without comments has no comment in it. */
    *count = rows == 1 && store_result_is_null(found, 0, 0) ? 0 : rows;
    *result = found;
    return STORE_OK;
}

store_status store_comment_delete(store *s, const store_comment_statements *statements, const char *slug,
                                  int64_t id, int64_t caller, store_comment_deletion *outcome)
{
    char id_text[24], caller_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    snprintf(caller_text, sizeof caller_text, "%" PRId64, caller);
    const char *params[3] = {slug, id_text, caller_text};
    store_result *found = NULL;
    store_status status = store_run(s, statements->remove, params, &found);
    if (status != STORE_OK)
        return status;
    const char *article = store_result_value(found, 0, 0);
    const char *author = store_result_value(found, 0, 1);
    const char *removed = store_result_value(found, 0, 2);
    int64_t author_id = 0;
    if (store_result_rows(found) != 1 || store_result_columns(found) != 3 || article == NULL || removed == NULL ||
        (author != NULL && !store_result_int64(found, 0, 1, &author_id))) {
        store_result_free(found);
        return STORE_ERROR;
    }
    if (strcmp(article, "t") != 0)
        *outcome = STORE_COMMENT_NO_ARTICLE;
    else if (strcmp(removed, "t") == 0)
        *outcome = STORE_COMMENT_DELETED;
    else if (author == NULL || author_id == caller)
        /* The caller's own comment that his DELETE did not remove was
         * removed by another request of his in the meantime. */
        *outcome = STORE_COMMENT_NO_COMMENT;
    else
        *outcome = STORE_COMMENT_NOT_AUTHOR;
    store_result_free(found);
    return STORE_OK;
}
