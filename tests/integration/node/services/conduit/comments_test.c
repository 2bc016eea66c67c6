/* tests/integration/node/services/conduit/comments_test.c: comments over real HTTP: the
 * shape (id an integer, timestamps ISO 8601 with milliseconds), oldest
 * first, `following` per viewer, deletion by the author only, and every
 * error path (401, 403, 404 for an unknown article or comment, 422 for a
 * blank or too long body). The article is inserted with SQL: the articles
 * routes are not what is tested here. */
#include <libpq-fe.h>

#include "conduit/validate.h"
#include "api_test_support.h"

#define INVALID_TOKEN "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* An article by username, with a slug of this run made from name. */
static void insert_article(const char *username, const char *name, char *slug, size_t slug_size)
{
    snprintf(slug, slug_size, "%s-%s", name, tag);
    PGconn *connection = PQconnectdb(TEST_DATABASE_URL());
    if (PQstatus(connection) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(connection));
    const char *params[2] = {slug, username};
    PGresult *result = PQexecParams(connection,
                                    "INSERT INTO articles (slug, title, description, body, author_id) "
                                    "SELECT $1, $1, 'd', 'b', id FROM users WHERE username = $2",
                                    2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(result) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(result), "1") != 0)
        fail_msg("insert article: %s", PQerrorMessage(connection));
    PQclear(result);
    PQfinish(connection);
}

static void assert_iso8601(const char *text)
{
    assert_non_null(text);
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(text) != strlen(shape))
        fail_msg("not ISO 8601 with milliseconds: %s", text);
    for (size_t i = 0; shape[i] != '\0'; i++)
        if (shape[i] == 'd' ? (text[i] < '0' || text[i] > '9') : text[i] != shape[i])
            fail_msg("not ISO 8601 with milliseconds: %s", text);
}

/* Checks one comment object; returns its id. */
static json_int_t expect_comment(json_t *comment, const char *body, const char *author, bool following)
{
    assert_true(json_is_object(comment));
    assert_int_equal(json_object_size(comment), 5);
    json_t *id = json_object_get(comment, "id");
    assert_true(json_is_integer(id));
    assert_true(json_integer_value(id) > 0);
    assert_iso8601(json_string_value(json_object_get(comment, "createdAt")));
    assert_iso8601(json_string_value(json_object_get(comment, "updatedAt")));
    assert_string_equal(json_string_value(json_object_get(comment, "body")), body);
    json_t *profile = json_object_get(comment, "author");
    assert_true(json_is_object(profile));
    assert_int_equal(json_object_size(profile), 4);
    assert_string_equal(json_string_value(json_object_get(profile, "username")), author);
    assert_non_null(json_object_get(profile, "bio"));
    assert_non_null(json_object_get(profile, "image"));
    assert_true(json_is_boolean(json_object_get(profile, "following")));
    assert_int_equal(json_is_true(json_object_get(profile, "following")), following);
    return json_integer_value(id);
}

/* Posts a comment whose body is body (JSON text: a string's inside, as
 * sent) and reads back as decoded; returns its id. */
static json_int_t post_comment_as(const char *slug, const char *token, const char *body, const char *decoded,
                                  const char *author)
{
    char path[256], request[512];
    snprintf(path, sizeof path, "/api/articles/%s/comments", slug);
    snprintf(request, sizeof request, "{\"comment\":{\"body\":\"%s\"}}", body);
    test_response response = call("POST", path, token, NULL, request);
    if (response.status != 201)
        fail_msg("status %d, not 201: %s", response.status, response.body);
    json_t *answer = parse(&response);
    assert_int_equal(json_object_size(answer), 1);
    json_t *comment = json_object_get(answer, "comment");
    json_int_t id = expect_comment(comment, decoded, author, false);
    assert_string_equal(json_string_value(json_object_get(comment, "createdAt")),
                        json_string_value(json_object_get(comment, "updatedAt")));
    json_decref(answer);
    test_http_response_free(&response);
    return id;
}

static json_int_t post_comment(const char *slug, const char *token, const char *body, const char *author)
{
    return post_comment_as(slug, token, body, body, author);
}

/* GETs the comments as token's owner (NULL: anonymous); the caller
 * releases the array's owner with json_decref(*owner). */
static json_t *get_comments(const char *slug, const char *token, const char *extra, json_t **owner)
{
    char path[256];
    snprintf(path, sizeof path, "/api/articles/%s/comments", slug);
    test_response response = call("GET", path, token, extra, NULL);
    if (response.status != 200)
        fail_msg("status %d, not 200: %s", response.status, response.body);
    *owner = parse(&response);
    test_http_response_free(&response);
    assert_int_equal(json_object_size(*owner), 1);
    json_t *comments = json_object_get(*owner, "comments");
    assert_true(json_is_array(comments));
    return comments;
}

static int delete_status(const char *slug, const char *id, const char *token, const char *code)
{
    char path[256];
    snprintf(path, sizeof path, "/api/articles/%s/comments/%s", slug, id);
    test_response response = call("DELETE", path, token, NULL, NULL);
    int status = response.status;
    if (code != NULL)
        test_expect_error(&response, status, code);
    else
        assert_int_equal(response.body_length, 0);
    test_http_response_free(&response);
    return status;
}

static void comment_list_and_delete(void **state)
{
    (void)state;
    char email[128], author[96], critic_email[128], critic[96], reader_email[128], reader[96];
    char slug[128], path[256], id_text[32];
    names("author", email, sizeof email, author, sizeof author);
    names("critic", critic_email, sizeof critic_email, critic, sizeof critic);
    names("reader", reader_email, sizeof reader_email, reader, sizeof reader);
    char *author_token = register_user(email, author, "pw");
    char *critic_token = register_user(critic_email, critic, "pw");
    char *reader_token = register_user(reader_email, reader, "pw");
    snprintf(path, sizeof path, "/api/profiles/%s/follow", critic);
    assert_int_equal(status_of(call("POST", path, reader_token, NULL, NULL)), 200);
    insert_article(author, "commented", slug, sizeof slug);

    json_t *owner = NULL;
    json_t *comments = get_comments(slug, NULL, NULL, &owner);
    assert_int_equal(json_array_size(comments), 0);
    json_decref(owner);

    json_int_t first = post_comment_as(slug, critic_token, "first, and \\\"quoted\\\" \\u00e9", "first, and \"quoted\" \u00e9",
                                       critic);
    json_int_t second = post_comment(slug, author_token, "thanks", author);
    json_int_t third = post_comment(slug, critic_token, "again", critic);
    assert_true(first < second && second < third);

    /* Oldest first; following is the viewer's own: anonymous, the reader
     * (who follows the critic), the critic himself. A JSON Content-Type on
     * a GET is accepted. */
    const char *viewers[3] = {NULL, reader_token, critic_token};
    for (int v = 0; v < 3; v++) {
        comments = get_comments(slug, viewers[v], "Content-Type: application/json\r\n", &owner);
        assert_int_equal(json_array_size(comments), 3);
        bool follows_critic = v == 1;
        assert_int_equal(expect_comment(json_array_get(comments, 0), "first, and \"quoted\" \u00e9", critic,
                                                follows_critic),
                         first);
        assert_int_equal(expect_comment(json_array_get(comments, 1), "thanks", author, false), second);
        assert_int_equal(expect_comment(json_array_get(comments, 2), "again", critic, follows_critic), third);
        json_decref(owner);
    }

    /* Only the comment's author deletes it; not the article's author. */
    snprintf(id_text, sizeof id_text, "%lld", (long long)first);
    assert_int_equal(delete_status(slug, id_text, reader_token, "comment.forbidden"), 403);
    assert_int_equal(delete_status(slug, id_text, author_token, "comment.forbidden"), 403);
    assert_int_equal(delete_status(slug, id_text, critic_token, NULL), 204);
    assert_int_equal(delete_status(slug, id_text, critic_token, "comment.not_found"), 404);
    comments = get_comments(slug, reader_token, NULL, &owner);
    assert_int_equal(json_array_size(comments), 2);
    assert_int_equal(expect_comment(json_array_get(comments, 0), "thanks", author, false), second);
    json_decref(owner);
    free(author_token);
    free(critic_token);
    free(reader_token);
}

static void expect_blank(const char *path, const char *token, const char *body)
{
    test_response response = call("POST", path, token, NULL, body);
    expect_invalid(&response, "body", "can't be blank");
    test_expect_error(&response, 422, "api.blank");
    test_http_response_free(&response);
}

static void errors(void **state)
{
    (void)state;
    char email[128], username[96], other_email[128], other[96], slug[128], other_slug[128], path[256];
    names("grumpy", email, sizeof email, username, sizeof username);
    names("bystander", other_email, sizeof other_email, other, sizeof other);
    char *token = register_user(email, username, "pw");
    char *other_token = register_user(other_email, other, "pw");
    insert_article(username, "errors", slug, sizeof slug);
    insert_article(username, "elsewhere", other_slug, sizeof other_slug);
    snprintf(path, sizeof path, "/api/articles/%s/comments", slug);

    /* 401: no token, or a bad one, also on the public read. */
    test_response response = call("POST", path, NULL, NULL, "{\"comment\":{\"body\":\"hi\"}}");
    test_expect_error(&response, 401, "auth.required");
    test_http_response_free(&response);
    response = call("POST", path, INVALID_TOKEN, NULL, "{\"comment\":{\"body\":\"hi\"}}");
    test_expect_error(&response, 401, "auth.invalid");
    test_http_response_free(&response);
    response = call("GET", path, INVALID_TOKEN, NULL, NULL);
    test_expect_error(&response, 401, "auth.invalid");
    test_http_response_free(&response);
    assert_int_equal(delete_status(slug, "1", NULL, "auth.required"), 401);

    /* 422: blank, missing, too long, the wrong shape. */
    expect_blank(path, token, "{\"comment\":{\"body\":\"\"}}");
    expect_blank(path, token, "{\"comment\":{\"body\":\" \\n\\t \"}}");
    expect_blank(path, token, "{\"comment\":{}}");
    response = call("POST", path, token, NULL, "{\"body\":\"hi\"}");
    test_expect_error(&response, 422, "request.missing_field");
    test_http_response_free(&response);
    response = call("POST", path, token, NULL, "{\"comment\":{\"body\":42}}");
    test_expect_error(&response, 422, "request.invalid_field");
    test_http_response_free(&response);
    /* The parser refuses a NUL, which every C string would cut short. */
    response = call("POST", path, token, NULL, "{\"comment\":{\"body\":\"a\\u0000b\"}}");
    test_expect_error(&response, 400, "request.malformed_json");
    test_http_response_free(&response);
    /* 65536 characters fit (the schema's bound), 65537 do not. */
    size_t prefix = strlen("{\"comment\":{\"body\":\"");
    char *body = malloc(prefix + API_COMMENT_BODY_MAX + 1 + 8);
    assert_non_null(body);
    memcpy(body, "{\"comment\":{\"body\":\"", prefix);
    memset(body + prefix, 'x', API_COMMENT_BODY_MAX + 1);
    strcpy(body + prefix + API_COMMENT_BODY_MAX + 1, "\"}}");
    response = call("POST", path, token, NULL, body);
    expect_invalid(&response, "body", "is too long (maximum is 65536 characters)");
    test_expect_error(&response, 422, "api.too_long");
    test_http_response_free(&response);
    strcpy(body + prefix + API_COMMENT_BODY_MAX, "\"}}");
    response = call("POST", path, token, NULL, body);
    assert_int_equal(response.status, 201);
    test_http_response_free(&response);
    free(body);

    /* 404: an unknown article, for every route. */
    response = call("POST", "/api/articles/no-such-article-at-all/comments", token, NULL,
                    "{\"comment\":{\"body\":\"hi\"}}");
    test_expect_error(&response, 404, "article.not_found");
    test_http_response_free(&response);
    response = call("GET", "/api/articles/no-such-article-at-all/comments", NULL, NULL, NULL);
    test_expect_error(&response, 404, "article.not_found");
    test_http_response_free(&response);
    assert_int_equal(delete_status("no-such-article-at-all", "1", token, "article.not_found"), 404);
    assert_int_equal(delete_status("no-such-article-at-all", "abc", token, "article.not_found"), 404);

    /* 404: an unknown comment, one that is not a number, one too large for
     * any id, and one that belongs to another article. */
    json_int_t elsewhere = post_comment(other_slug, token, "over there", username);
    char id_text[32];
    snprintf(id_text, sizeof id_text, "%lld", (long long)elsewhere);
    assert_int_equal(delete_status(slug, id_text, token, "comment.not_found"), 404);
    assert_int_equal(delete_status(slug, "abc", token, "comment.not_found"), 404);
    assert_int_equal(delete_status(slug, "-1", token, "comment.not_found"), 404);
    assert_int_equal(delete_status(slug, "1e3", token, "comment.not_found"), 404);
    assert_int_equal(delete_status(slug, "99999999999999999999999", token, "comment.not_found"), 404);
    assert_int_equal(delete_status(slug, "0", token, "comment.not_found"), 404);
    /* Still there for its author, and a JSON Content-Type on DELETE is
     * accepted. */
    assert_int_equal(delete_status(other_slug, id_text, other_token, "comment.forbidden"), 403);
    snprintf(path, sizeof path, "/api/articles/%s/comments/%s", other_slug, id_text);
    response = call("DELETE", path, token, "Content-Type: application/json\r\n", NULL);
    assert_int_equal(response.status, 204);
    test_http_response_free(&response);
    free(token);
    free(other_token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comment_list_and_delete),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
