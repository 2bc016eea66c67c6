/* node/services/conduit/comments.c: comments on articles. */
#include <string.h>

#include <shoal/ext/session.h>

#include "api_internal.h"
#include "validate.h"

/* {"id","createdAt","updatedAt","body","author":{profile}} */
static void write_comment(shoal_json_writer *out, const store_comment *comment)
{
    shoal_json_open_object(out);
    shoal_json_write_key(out, "id");
    shoal_json_write_integer(out, (long long)comment->id);
    shoal_json_write_key(out, "createdAt");
    shoal_json_write_string(out, comment->created_at);
    shoal_json_write_key(out, "updatedAt");
    shoal_json_write_string(out, comment->updated_at);
    shoal_json_write_key(out, "body");
    shoal_json_write_string(out, comment->body);
    shoal_json_write_key(out, "author");
    api_write_author(out, comment->author.username, comment->author.bio, comment->author.image,
                     comment->author.following);
    shoal_json_close_object(out);
}

static int article_missing(shoal_ctx *ctx)
{
    return shoal_fail(ctx, &api_code_article_not_found);
}

static int comment_missing(shoal_ctx *ctx)
{
    return shoal_fail(ctx, &api_code_comment_not_found);
}

/* The body's comment.body, or NULL after answering 4xx. A missing body is
 * as blank as an empty one. */
static const char *comment_body(shoal_ctx *ctx)
{
    json_t *request = NULL, *comment = NULL, *body = NULL;
    if (!shoal_json_body(ctx, &request) || !shoal_json_member(ctx, request, "comment", JSON_OBJECT, true, &comment) ||
        !shoal_json_member(ctx, comment, "body", JSON_STRING, false, &body))
        return NULL;
    /* The parser refuses "\u0000", so the text is whole as a C string. */
    const char *text = body != NULL ? json_string_value(body) : NULL;
    const shoal_error_code *code = NULL;
    const char *message = api_check_text(text, API_COMMENT_BODY_MAX, &code);
    if (message != NULL) {
        api_invalid(ctx, "body", code, message);
        return NULL;
    }
    return text;
}

static int add_comment(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    const shoal_session_info *session = NULL;
    if (!shoal_session_require(ctx, &session))
        return 0;
    const char *text = comment_body(ctx);
    if (text == NULL)
        return 0;
    store_comment comment;
    store_result *result = NULL;
    store_status status = store_comment_create(shoal_store(ctx), &api->comments, shoal_param(ctx, "slug"),
                                               session->user_id, text, &comment, &result);
    if (status == STORE_NOT_FOUND)
        return article_missing(ctx);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_article_not_found);
    shoal_keep_result(ctx, result);
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "comment");
    write_comment(out, &comment);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, 201, out);
}

static int list_comments(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    /* Anybody may read; a caller who sends a token gets `following` for
     * himself, and a bad token is refused rather than ignored. */
    const shoal_session_info *session = NULL;
    shoal_session_status session_status = shoal_session(ctx, &session);
    if (session_status != SHOAL_SESSION_OK && session_status != SHOAL_SESSION_NONE)
        return shoal_session_fail(ctx, session_status);
    store_result *result = NULL;
    int count = 0;
    store_status status = store_comment_list(shoal_store(ctx), &api->comments, shoal_param(ctx, "slug"),
                                             session != NULL ? session->user_id : 0, &result, &count);
    if (status == STORE_NOT_FOUND)
        return article_missing(ctx);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_article_not_found);
    shoal_keep_result(ctx, result);
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "comments");
    shoal_json_open_array(out);
    for (int i = 0; i < count; i++) {
        store_comment comment;
        if (store_comment_at(result, i, &comment) != STORE_OK)
            return api_store_failure(ctx, STORE_ERROR, &api_code_article_not_found);
        write_comment(out, &comment);
    }
    shoal_json_close_array(out);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, 200, out);
}

/* A comment id as the path gives it: 1 to 18 digits (any bigint that
 * could exist), else 0, which names no comment. */
static int64_t comment_id(const char *text)
{
    int64_t id = 0;
    size_t length = text != NULL ? strlen(text) : 0;
    if (length == 0 || length > 18)
        return 0;
    for (const char *c = text; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return 0;
        id = id * 10 + (*c - '0');
    }
    return id;
}

static int delete_comment(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    const shoal_session_info *session = NULL;
    if (!shoal_session_require(ctx, &session))
        return 0;
    store_comment_deletion outcome = STORE_COMMENT_NO_COMMENT;
    /* An id that is no number still asks about the article, so that an
     * unknown slug is always article.not_found. */
    store_status status = store_comment_delete(shoal_store(ctx), &api->comments, shoal_param(ctx, "slug"),
                                               comment_id(shoal_param(ctx, "id")), session->user_id, &outcome);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_comment_not_found);
    switch (outcome) {
    case STORE_COMMENT_DELETED:
        return shoal_empty(ctx, 204);
    case STORE_COMMENT_NO_ARTICLE:
        return article_missing(ctx);
    case STORE_COMMENT_NOT_AUTHOR:
        return shoal_fail(ctx, &api_code_comment_forbidden);
    case STORE_COMMENT_NO_COMMENT:
        break;
    }
    return comment_missing(ctx);
}

int api_comments_register(shoal_blueprint *bp, api_state *state)
{
    if (shoal_route_with(bp, "POST", "/articles/:slug/comments", add_comment, state) != 0 ||
        shoal_route_with(bp, "GET", "/articles/:slug/comments", list_comments, state) != 0 ||
        shoal_route_with(bp, "DELETE", "/articles/:slug/comments/:id", delete_comment, state) != 0)
        return -1;
    return 0;
}
