/* tests/integration/node/services/conduit/articles_test.c: articles, the feed,
 * favourites and tags over real HTTP, on two in-process nodes that share
 * PostgreSQL and Redis: the shapes, slugs, every error path (401, 403, 404,
 * 422), lists with their filters and paging, the cache (per-viewer fields
 * never shared, every write seen at once on the writing node and within
 * moments on the other, whose L1 would otherwise keep a value for a
 * minute), and 100 users favouriting one article through both nodes at
 * once. */
#include <pthread.h>

#include "api_test_support.h"

#define FANS 100
#define FAN_THREADS 8

/* The second node: its L1 keeps entries for a minute, so only an
 * invalidation message can make it drop one in time, and its pages hold
 * at most 2 articles (--api-max-limit). */
static test_node second;

static int start_both(void **state)
{
    start(state);
    const char *const flags[] = {"--password-ops-limit", "1", "--password-mem-limit", "64k", "--l1-ttl-ms", "60000",
                                 "--api-max-limit", "2", "--redis-timeout-ms", "5000", NULL};
    static const shoal_extension *const extensions[] = {&shoal_request_id_extension, &shoal_session_extension,
                                                        &shoal_api_extension, NULL};
    test_node_start(&second, flags, extensions);
    return 0;
}

static int stop_both(void **state)
{
    test_node_stop(&second);
    return stop(state);
}

/* ---- helpers ------------------------------------------------------------------------ */

static test_response call_on(const test_node *node, const char *method, const char *path, const char *token,
                             const char *body)
{
    char headers[256] = "";
    if (token != NULL)
        snprintf(headers, sizeof headers, "Authorization: Token %s\r\n", token);
    return test_node_call(node, method, path, headers, body);
}

/* A registered user of this run: token (malloc'd) and username. */
typedef struct user {
    char name[96];
    char *token;
} user;

static user new_user(const char *who)
{
    user u;
    char email[160];
    names(who, email, sizeof email, u.name, sizeof u.name);
    u.token = register_user(email, u.name, "pw");
    return u;
}

/* The answer's JSON when it has status (fails otherwise); the caller
 * decrefs it. */
static json_t *expect_json(test_response response, int status)
{
    if (response.status != status)
        fail_msg("status %d, not %d: %s", response.status, status, response.body);
    json_t *body = parse(&response);
    test_http_response_free(&response);
    return body;
}

static void expect_timestamp(const char *text)
{
    assert_non_null(text);
    assert_int_equal(strlen(text), 24);
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < 24; i++) {
        if (shape[i] == 'd')
            assert_true(text[i] >= '0' && text[i] <= '9');
        else
            assert_int_equal(text[i], shape[i]);
    }
}

/* Checks an article object's shape (with or without the body). */
static void expect_article_shape(json_t *article, bool with_body)
{
    assert_true(json_is_object(article));
    assert_int_equal(json_object_size(article), with_body ? 10 : 9);
    const char *strings[] = {"slug", "title", "description"};
    for (size_t i = 0; i < 3; i++)
        assert_true(json_is_string(json_object_get(article, strings[i])));
    assert_int_equal(json_object_get(article, "body") != NULL, with_body);
    assert_true(json_is_array(json_object_get(article, "tagList")));
    expect_timestamp(json_string_value(json_object_get(article, "createdAt")));
    expect_timestamp(json_string_value(json_object_get(article, "updatedAt")));
    assert_true(json_is_boolean(json_object_get(article, "favorited")));
    assert_true(json_is_integer(json_object_get(article, "favoritesCount")));
    json_t *author = json_object_get(article, "author");
    assert_true(json_is_object(author));
    assert_int_equal(json_object_size(author), 4);
    assert_true(json_is_string(json_object_get(author, "username")));
    assert_non_null(json_object_get(author, "bio"));
    assert_non_null(json_object_get(author, "image"));
    assert_true(json_is_boolean(json_object_get(author, "following")));
}

/* {"article": ...} with status; returns the article (borrowed from *body). */
static json_t *expect_article(test_response response, int status, json_t **body)
{
    *body = expect_json(response, status);
    json_t *article = json_object_get(*body, "article");
    expect_article_shape(article, true);
    return article;
}

static const char *text_of(json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

/* Creates an article; returns its slug (malloc'd). */
static char *create_article(const user *author, const char *title, const char *tag_list_json)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"article\":{\"title\":\"%s\",\"description\":\"Ever wonder how?\",\"body\":\"Very carefully.\"%s%s}}",
             title, tag_list_json != NULL ? ",\"tagList\":" : "", tag_list_json != NULL ? tag_list_json : "");
    json_t *root = NULL;
    json_t *article = expect_article(call_on(&server, "POST", "/api/articles", author->token, body), 201, &root);
    char *slug = strdup(text_of(article, "slug"));
    json_decref(root);
    return slug;
}

/* GET /api/articles/<slug> on node as token sees it: 200's article (the
 * caller decrefs *root), or NULL for 404. */
static json_t *read_article(const test_node *node, const char *slug, const char *token, json_t **root)
{
    char path[512];
    snprintf(path, sizeof path, "/api/articles/%s", slug);
    test_response response = call_on(node, "GET", path, token, NULL);
    if (response.status == 404) {
        test_expect_error(&response, 404, "article.not_found");
        test_http_response_free(&response);
        *root = NULL;
        return NULL;
    }
    return expect_article(response, 200, root);
}

static void expect_viewer_flags(const test_node *node, const char *slug, const char *token, bool favorited,
                                bool following, long long count)
{
    json_t *root = NULL;
    json_t *article = read_article(node, slug, token, &root);
    assert_non_null(article);
    assert_int_equal(json_is_true(json_object_get(article, "favorited")), favorited);
    assert_int_equal(json_is_true(json_object_get(json_object_get(article, "author"), "following")), following);
    assert_int_equal(json_integer_value(json_object_get(article, "favoritesCount")), count);
    json_decref(root);
}

static int status_on(const test_node *node, const char *method, const char *path, const char *token, const char *body)
{
    return status_of(call_on(node, method, path, token, body));
}

/* ---- tests ------------------------------------------------------------------------------ */

static void create_read_update_delete(void **state)
{
    (void)state;
    user author = new_user("writer");
    char title[128], path[512];
    snprintf(title, sizeof title, "How to train your dragon %s", tag);
    char *slug = create_article(&author, title, "[\"training\",\" dragons\",\"dragons\"]");
    char wanted[256];
    snprintf(wanted, sizeof wanted, "how-to-train-your-dragon-%s", tag);
    assert_string_equal(slug, wanted);

    /* Anybody reads it: tags sorted, without repeats, trimmed. */
    json_t *root = NULL;
    json_t *article = read_article(&server, slug, NULL, &root);
    assert_non_null(article);
    assert_string_equal(text_of(article, "title"), title);
    assert_string_equal(text_of(article, "body"), "Very carefully.");
    json_t *tags = json_object_get(article, "tagList");
    assert_int_equal(json_array_size(tags), 2);
    assert_string_equal(json_string_value(json_array_get(tags, 0)), "dragons");
    assert_string_equal(json_string_value(json_array_get(tags, 1)), "training");
    assert_int_equal(json_integer_value(json_object_get(article, "favoritesCount")), 0);
    assert_string_equal(text_of(json_object_get(article, "author"), "username"), author.name);
    json_decref(root);

    /* The same title again: a slug of its own, from the same title. */
    char *again = create_article(&author, title, NULL);
    assert_string_not_equal(again, slug);
    assert_memory_equal(again, slug, strlen(slug));
    assert_int_equal(again[strlen(slug)], '-');
    assert_int_equal(strlen(again), strlen(slug) + 7);
    /* A title with no ASCII letter still gets a slug. */
    char *unicode = create_article(&author, "\\u65e5\\u672c\\u8a9e", NULL);
    assert_memory_equal(unicode, "article", 7);

    /* The body alone: the slug stays, updatedAt moves on. */
    snprintf(path, sizeof path, "/api/articles/%s", slug);
    article = expect_article(call_on(&server, "PUT", path, author.token, "{\"article\":{\"body\":\"With two hands\"}}"),
                             200, &root);
    assert_string_equal(text_of(article, "slug"), slug);
    assert_string_equal(text_of(article, "body"), "With two hands");
    assert_true(strcmp(text_of(article, "updatedAt"), text_of(article, "createdAt")) >= 0);
    assert_int_equal(json_array_size(json_object_get(article, "tagList")), 2);
    json_decref(root);
    /* The same title: the slug stays too. */
    char body[512];
    snprintf(body, sizeof body, "{\"article\":{\"title\":\"%s\"}}", title);
    article = expect_article(call_on(&server, "PUT", path, author.token, body), 200, &root);
    assert_string_equal(text_of(article, "slug"), slug);
    json_decref(root);
    /* A new title: a new slug; the old one is gone. New tags replace the old. */
    snprintf(body, sizeof body, "{\"article\":{\"title\":\"Retitled %s\",\"tagList\":[\"zeta\",\"alpha\"]}}", tag);
    article = expect_article(call_on(&server, "PUT", path, author.token, body), 200, &root);
    char renamed[256];
    snprintf(renamed, sizeof renamed, "retitled-%s", tag);
    assert_string_equal(text_of(article, "slug"), renamed);
    assert_string_equal(text_of(article, "body"), "With two hands");
    tags = json_object_get(article, "tagList");
    assert_int_equal(json_array_size(tags), 2);
    assert_string_equal(json_string_value(json_array_get(tags, 0)), "alpha");
    json_decref(root);
    assert_null(read_article(&server, slug, NULL, &root));
    assert_non_null(read_article(&server, renamed, author.token, &root));
    json_decref(root);

    /* Deleted: 204, then 404 everywhere. */
    snprintf(path, sizeof path, "/api/articles/%s", renamed);
    test_response response = call_on(&server, "DELETE", path, author.token, NULL);
    assert_int_equal(response.status, 204);
    test_http_response_free(&response);
    assert_null(read_article(&server, renamed, NULL, &root));
    assert_null(read_article(&second, renamed, NULL, &root));
    assert_int_equal(status_on(&server, "DELETE", path, author.token, NULL), 404);
    free(slug);
    free(again);
    free(unicode);
    free(author.token);
}

static void expect_error_on(const test_node *node, const char *method, const char *path, const char *token,
                            const char *body, int status, const char *code)
{
    test_response response = call_on(node, method, path, token, body);
    test_expect_error(&response, status, code);
    test_http_response_free(&response);
}

static void errors(void **state)
{
    (void)state;
    user owner = new_user("owner"), stranger = new_user("stranger");
    char title[64], path[512], favorite[512];
    snprintf(title, sizeof title, "Mine %s", tag);
    char *slug = create_article(&owner, title, NULL);
    snprintf(path, sizeof path, "/api/articles/%s", slug);
    snprintf(favorite, sizeof favorite, "/api/articles/%s/favorite", slug);
    const char *bad_token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    /* 401: no token where one is needed, and a bad one anywhere. */
    const char *valid = "{\"article\":{\"title\":\"t\",\"description\":\"d\",\"body\":\"b\"}}";
    expect_error_on(&server, "POST", "/api/articles", NULL, valid, 401, "auth.required");
    expect_error_on(&server, "PUT", path, NULL, "{\"article\":{}}", 401, "auth.required");
    expect_error_on(&server, "DELETE", path, NULL, NULL, 401, "auth.required");
    expect_error_on(&server, "POST", favorite, NULL, NULL, 401, "auth.required");
    expect_error_on(&server, "DELETE", favorite, bad_token, NULL, 401, "auth.invalid");
    expect_error_on(&server, "GET", "/api/articles/feed", NULL, NULL, 401, "auth.required");
    expect_error_on(&server, "GET", path, bad_token, NULL, 401, "auth.invalid");
    expect_error_on(&server, "GET", "/api/articles", bad_token, NULL, 401, "auth.invalid");

    /* 403: somebody else's article; it stays as it was. */
    expect_error_on(&server, "PUT", path, stranger.token, "{\"article\":{\"body\":\"mine now\"}}", 403,
                    "article.forbidden");
    expect_error_on(&server, "DELETE", path, stranger.token, NULL, 403, "article.forbidden");
    json_t *root = NULL;
    json_t *article = read_article(&server, slug, NULL, &root);
    assert_string_equal(text_of(article, "body"), "Very carefully.");
    json_decref(root);

    /* 404: no such slug. */
    const char *unknown = "/api/articles/no-such-article-anywhere";
    expect_error_on(&server, "GET", unknown, NULL, NULL, 404, "article.not_found");
    expect_error_on(&server, "PUT", unknown, owner.token, "{\"article\":{\"body\":\"x\"}}", 404, "article.not_found");
    expect_error_on(&server, "DELETE", unknown, owner.token, NULL, 404, "article.not_found");
    expect_error_on(&server, "POST", "/api/articles/no-such-article-anywhere/favorite", owner.token, NULL, 404,
                    "article.not_found");
    expect_error_on(&server, "DELETE", "/api/articles/no-such-article-anywhere/favorite", owner.token, NULL, 404,
                    "article.not_found");

    /* 422: blank, missing, too long, wrong types. */
    test_response response = call_on(&server, "POST", "/api/articles", owner.token,
                                      "{\"article\":{\"description\":\"d\",\"body\":\"b\"}}");
    expect_invalid(&response, "title", "can't be blank");
    test_http_response_free(&response);
    response = call_on(&server, "POST", "/api/articles", owner.token,
                       "{\"article\":{\"title\":\"t\",\"description\":\"  \",\"body\":\"b\"}}");
    expect_invalid(&response, "description", "can't be blank");
    test_http_response_free(&response);
    response = call_on(&server, "POST", "/api/articles", owner.token,
                       "{\"article\":{\"title\":\"t\",\"description\":\"d\",\"body\":\"\"}}");
    expect_invalid(&response, "body", "can't be blank");
    test_http_response_free(&response);
    expect_error_on(&server, "POST", "/api/articles", owner.token,
                    "{\"article\":{\"title\":\"t\",\"description\":\"d\",\"body\":\"b\",\"tagList\":\"one\"}}", 422,
                    "request.invalid_field");
    expect_error_on(&server, "POST", "/api/articles", owner.token,
                    "{\"article\":{\"title\":\"t\",\"description\":\"d\",\"body\":\"b\",\"tagList\":[1]}}", 422,
                    "request.invalid_field");
    expect_error_on(&server, "POST", "/api/articles", owner.token,
                    "{\"article\":{\"title\":\"t\",\"description\":\"d\",\"body\":\"b\",\"tagList\":[\" \"]}}", 422,
                    "api.blank");
    char *long_title = malloc(400), *body = malloc(600);
    memset(long_title, 'x', 256);
    long_title[256] = '\0';
    snprintf(body, 600, "{\"article\":{\"title\":\"%s\",\"description\":\"d\",\"body\":\"b\"}}", long_title);
    response = call_on(&server, "POST", "/api/articles", owner.token, body);
    expect_invalid(&response, "title", "is too long (maximum is 255 characters)");
    test_http_response_free(&response);
    long_title[65] = '\0';
    snprintf(body, 600, "{\"article\":{\"title\":\"t\",\"description\":\"d\",\"body\":\"b\",\"tagList\":[\"%s\"]}}",
             long_title);
    expect_error_on(&server, "POST", "/api/articles", owner.token, body, 422, "api.too_long");
    free(long_title);
    free(body);
    expect_error_on(&server, "POST", "/api/articles", owner.token, "{\"title\":\"t\"}", 422, "request.missing_field");
    expect_error_on(&server, "PUT", path, owner.token, "{\"article\":{\"title\":\"\"}}", 422, "api.blank");
    expect_error_on(&server, "GET", "/api/articles?limit=abc", NULL, NULL, 422, "api.invalid");
    expect_error_on(&server, "GET", "/api/articles?limit=-1", NULL, NULL, 422, "api.invalid");
    expect_error_on(&server, "GET", "/api/articles?offset=1.5", NULL, NULL, 422, "api.invalid");
    /* A JSON Content-Type on a GET or DELETE is accepted. */
    response = test_node_call(&server, "GET", path, "Content-Type: application/json\r\n", NULL);
    assert_int_equal(response.status, 200);
    test_http_response_free(&response);
    free(slug);
    free(owner.token);
    free(stranger.token);
}

/* The slugs of a list answer, checked for shape; returns articlesCount. */
static long long list_slugs(const test_node *node, const char *path, const char *token, char slugs[][256],
                            size_t *count)
{
    json_t *body = expect_json(call_on(node, "GET", path, token, NULL), 200);
    json_t *articles = json_object_get(body, "articles");
    assert_true(json_is_array(articles));
    assert_int_equal(json_object_size(body), 2);
    *count = json_array_size(articles);
    for (size_t i = 0; i < *count; i++) {
        json_t *article = json_array_get(articles, i);
        expect_article_shape(article, false);
        snprintf(slugs[i], 256, "%s", text_of(article, "slug"));
    }
    json_t *total = json_object_get(body, "articlesCount");
    assert_true(json_is_integer(total));
    long long result = json_integer_value(total);
    json_decref(body);
    return result;
}

/* Polls path's articlesCount on node for up to 2 s. */
static bool eventually_count(const test_node *node, const char *path, long long wanted)
{
    char got[8][256];
    size_t count = 0;
    for (int i = 0; i < 100; i++) {
        if (list_slugs(node, path, NULL, got, &count) == wanted)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

static void lists_and_feed(void **state)
{
    (void)state;
    user ann = new_user("ann"), bob = new_user("bob");
    char red[64], blue[64], tags_json[160], title[96], path[512];
    snprintf(red, sizeof red, "red%s", tag);
    snprintf(blue, sizeof blue, "blue%s", tag);
    char *slugs[4];
    /* a0 (red, ann), a1 (red+blue, bob), a2 (blue, ann), a3 (red, ann): newest last. */
    const char *colours[4][2] = {{red, NULL}, {red, blue}, {blue, NULL}, {red, NULL}};
    const user *authors[4] = {&ann, &bob, &ann, &ann};
    for (int i = 0; i < 4; i++) {
        if (colours[i][1] != NULL)
            snprintf(tags_json, sizeof tags_json, "[\"%s\",\"%s\"]", colours[i][0], colours[i][1]);
        else
            snprintf(tags_json, sizeof tags_json, "[\"%s\"]", colours[i][0]);
        snprintf(title, sizeof title, "List %d %s", i, tag);
        slugs[i] = create_article(authors[i], title, tags_json);
    }
    char got[8][256];
    size_t count = 0;
    snprintf(path, sizeof path, "/api/articles?tag=%s", red);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 3);
    assert_int_equal(count, 3);
    assert_string_equal(got[0], slugs[3]);
    assert_string_equal(got[1], slugs[1]);
    assert_string_equal(got[2], slugs[0]);
    snprintf(path, sizeof path, "/api/articles?tag=%s&author=%s", red, ann.name);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 2);
    assert_string_equal(got[0], slugs[3]);
    assert_string_equal(got[1], slugs[0]);
    snprintf(path, sizeof path, "/api/articles?author=%s", ann.name);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 3);
    /* Paging: the count is every match. */
    snprintf(path, sizeof path, "/api/articles?tag=%s&limit=1&offset=1", red);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 3);
    assert_int_equal(count, 1);
    assert_string_equal(got[0], slugs[1]);
    snprintf(path, sizeof path, "/api/articles?tag=%s&offset=10", red);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 3);
    assert_int_equal(count, 0);
    /* The second node's pages hold at most 2 (--api-max-limit 2). */
    snprintf(path, sizeof path, "/api/articles?tag=%s&limit=50", red);
    assert_int_equal(list_slugs(&second, path, NULL, got, &count), 3);
    assert_int_equal(count, 2);
    snprintf(path, sizeof path, "/api/articles?tag=%s", red);
    assert_int_equal(list_slugs(&second, path, NULL, got, &count), 3);
    assert_int_equal(count, 2);

    /* The counts are cached: a new article, and a deleted one, show in
     * them at once on the writer's node and within moments on the other,
     * which holds the old count in its L1. */
    snprintf(tags_json, sizeof tags_json, "[\"%s\"]", red);
    char *extra = create_article(&bob, "One more red", tags_json);
    snprintf(path, sizeof path, "/api/articles?tag=%s", red);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 4);
    assert_true(eventually_count(&second, path, 4));
    snprintf(path, sizeof path, "/api/articles?tag=%s&author=%s", red, bob.name);
    assert_int_equal(list_slugs(&second, path, NULL, got, &count), 2);
    snprintf(path, sizeof path, "/api/articles/%s", extra);
    assert_int_equal(status_on(&server, "DELETE", path, bob.token, NULL), 204);
    snprintf(path, sizeof path, "/api/articles?tag=%s", red);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 3);
    assert_true(eventually_count(&second, path, 3));
    snprintf(path, sizeof path, "/api/articles?tag=%s&author=%s", red, bob.name);
    assert_true(eventually_count(&second, path, 1));
    free(extra);

    /* favorited=: bob favourites a0 and a2. */
    for (int i = 0; i < 4; i += 2) {
        snprintf(path, sizeof path, "/api/articles/%s/favorite", slugs[i]);
        assert_int_equal(status_on(&server, "POST", path, bob.token, NULL), 200);
    }
    snprintf(path, sizeof path, "/api/articles?favorited=%s", bob.name);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 2);
    assert_string_equal(got[0], slugs[2]);
    assert_string_equal(got[1], slugs[0]);
    snprintf(path, sizeof path, "/api/articles?favorited=%s&tag=%s", bob.name, blue);
    assert_int_equal(list_slugs(&server, path, NULL, got, &count), 1);
    assert_string_equal(got[0], slugs[2]);
    /* In a list, `favorited` is the caller's. */
    snprintf(path, sizeof path, "/api/articles?tag=%s", blue);
    json_t *body = expect_json(call_on(&server, "GET", path, bob.token, NULL), 200);
    json_t *first = json_array_get(json_object_get(body, "articles"), 0);
    assert_true(json_is_true(json_object_get(first, "favorited")));
    assert_int_equal(json_integer_value(json_object_get(first, "favoritesCount")), 1);
    json_decref(body);
    body = expect_json(call_on(&server, "GET", path, ann.token, NULL), 200);
    first = json_array_get(json_object_get(body, "articles"), 0);
    assert_false(json_is_true(json_object_get(first, "favorited")));
    json_decref(body);

    /* The feed: nothing until bob follows ann, then ann's articles. */
    assert_int_equal(list_slugs(&server, "/api/articles/feed", bob.token, got, &count), 0);
    snprintf(path, sizeof path, "/api/profiles/%s/follow", ann.name);
    assert_int_equal(status_on(&server, "POST", path, bob.token, NULL), 200);
    assert_int_equal(list_slugs(&server, "/api/articles/feed", bob.token, got, &count), 3);
    assert_string_equal(got[0], slugs[3]);
    assert_string_equal(got[2], slugs[0]);
    assert_int_equal(list_slugs(&server, "/api/articles/feed?limit=1&offset=2", bob.token, got, &count), 3);
    assert_int_equal(count, 1);
    assert_string_equal(got[0], slugs[0]);
    body = expect_json(call_on(&server, "GET", "/api/articles/feed", bob.token, NULL), 200);
    first = json_array_get(json_object_get(body, "articles"), 0);
    assert_true(json_is_true(json_object_get(json_object_get(first, "author"), "following")));
    json_decref(body);
    for (int i = 0; i < 4; i++)
        free(slugs[i]);
    free(ann.token);
    free(bob.token);
}

/* GET /api/tags on node: does it list name? Checks the order too. */
static bool tags_include(const test_node *node, const char *name)
{
    json_t *body = expect_json(call_on(node, "GET", "/api/tags", NULL, NULL), 200);
    json_t *tags = json_object_get(body, "tags");
    assert_true(json_is_array(tags));
    bool found = false;
    for (size_t i = 0; i < json_array_size(tags); i++) {
        const char *tag_name = json_string_value(json_array_get(tags, i));
        assert_non_null(tag_name);
        if (i > 0)
            assert_true(strcmp(json_string_value(json_array_get(tags, i - 1)), tag_name) < 0);
        found = found || strcmp(tag_name, name) == 0;
    }
    json_decref(body);
    return found;
}

/* Polls for up to 2 s (the second node's L1 would keep a value for a
 * minute): the other node sees a write once the invalidation message has
 * arrived, moments after the write. */
static bool eventually_tags_include(const test_node *node, const char *name, bool wanted)
{
    for (int i = 0; i < 100; i++) {
        if (tags_include(node, name) == wanted)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

static void tags_follow_writes(void **state)
{
    (void)state;
    user author = new_user("tagger");
    char fresh[64], tags_json[96];
    snprintf(fresh, sizeof fresh, "fresh%s", tag);
    /* Read on both nodes first, so both have the list cached. */
    assert_false(tags_include(&server, fresh));
    assert_false(tags_include(&second, fresh));
    snprintf(tags_json, sizeof tags_json, "[\"%s\"]", fresh);
    char *slug = create_article(&author, "Tagged", tags_json);
    assert_true(tags_include(&server, fresh)); /* the writer's node: at once */
    assert_true(eventually_tags_include(&second, fresh, true));
    char path[512];
    snprintf(path, sizeof path, "/api/articles/%s", slug);
    assert_int_equal(status_on(&server, "DELETE", path, author.token, NULL), 204);
    assert_false(tags_include(&server, fresh));
    assert_true(eventually_tags_include(&second, fresh, false));
    free(slug);
    free(author.token);
}

static void per_viewer_fields_are_never_shared(void **state)
{
    (void)state;
    user author = new_user("star"), fan = new_user("fan"), other = new_user("other");
    char *slug = create_article(&author, "Shared by all", NULL);
    char path[512];
    /* Filled into the cache by an anonymous read first. */
    expect_viewer_flags(&server, slug, NULL, false, false, 0);
    snprintf(path, sizeof path, "/api/articles/%s/favorite", slug);
    json_t *root = NULL;
    json_t *article = expect_article(call_on(&server, "POST", path, fan.token, NULL), 200, &root);
    assert_true(json_is_true(json_object_get(article, "favorited")));
    assert_int_equal(json_integer_value(json_object_get(article, "favoritesCount")), 1);
    json_decref(root);
    snprintf(path, sizeof path, "/api/profiles/%s/follow", author.name);
    assert_int_equal(status_on(&server, "POST", path, fan.token, NULL), 200);

    /* One cached article, four viewers, each with his own flags, in every
     * order, on both nodes. */
    for (int round = 0; round < 2; round++) {
        const test_node *node = round == 0 ? &server : &second;
        expect_viewer_flags(node, slug, fan.token, true, true, 1);
        expect_viewer_flags(node, slug, other.token, false, false, 1);
        expect_viewer_flags(node, slug, NULL, false, false, 1);
        expect_viewer_flags(node, slug, author.token, false, false, 1);
        expect_viewer_flags(node, slug, fan.token, true, true, 1);
    }
    /* Profiles the same way. */
    snprintf(path, sizeof path, "/api/profiles/%s", author.name);
    const char *tokens[4] = {NULL, fan.token, other.token, fan.token};
    const bool following[4] = {false, true, false, true};
    for (int i = 0; i < 4; i++) {
        json_t *body = expect_json(call_on(&server, "GET", path, tokens[i], NULL), 200);
        json_t *profile = json_object_get(body, "profile");
        assert_int_equal(json_object_size(profile), 4);
        assert_int_equal(json_is_true(json_object_get(profile, "following")), following[i]);
        json_decref(body);
    }

    /* Unfavourite and unfollow: every viewer sees the new count at once. */
    snprintf(path, sizeof path, "/api/articles/%s/favorite", slug);
    article = expect_article(call_on(&server, "DELETE", path, fan.token, NULL), 200, &root);
    assert_false(json_is_true(json_object_get(article, "favorited")));
    assert_int_equal(json_integer_value(json_object_get(article, "favoritesCount")), 0);
    json_decref(root);
    snprintf(path, sizeof path, "/api/profiles/%s/follow", author.name);
    assert_int_equal(status_on(&server, "DELETE", path, fan.token, NULL), 200);
    expect_viewer_flags(&server, slug, fan.token, false, false, 0);
    expect_viewer_flags(&server, slug, NULL, false, false, 0);
    free(slug);
    free(author.token);
    free(fan.token);
    free(other.token);
}

/* Reads slug on node until check(article) holds, for up to 2 s; true when
 * it did. */
typedef bool (*article_check)(json_t *article, const void *wanted);

static bool eventually(const test_node *node, const char *slug, article_check check, const void *wanted)
{
    for (int i = 0; i < 100; i++) {
        json_t *root = NULL;
        json_t *article = read_article(node, slug, NULL, &root);
        bool done = check(article, wanted);
        json_decref(root);
        if (done)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

static bool body_is(json_t *article, const void *wanted)
{
    return article != NULL && strcmp(text_of(article, "body"), wanted) == 0;
}

static bool count_is(json_t *article, const void *wanted)
{
    return article != NULL && json_integer_value(json_object_get(article, "favoritesCount")) == *(const int *)wanted;
}

static bool author_bio_is(json_t *article, const void *wanted)
{
    return article != NULL && json_is_string(json_object_get(json_object_get(article, "author"), "bio")) &&
           strcmp(text_of(json_object_get(article, "author"), "bio"), wanted) == 0;
}

static bool gone(json_t *article, const void *wanted)
{
    (void)wanted;
    return article == NULL;
}

/* The writer's node sees a write at once; the second node, which read the
 * value before the write and would keep it in its L1 for a minute, sees it
 * within 2 s only if the invalidation reached it. */
static void expect_both_nodes(const char *slug, article_check check, const void *wanted)
{
    json_t *root = NULL;
    assert_true(check(read_article(&server, slug, NULL, &root), wanted)); /* the writer's node: at once */
    json_decref(root);
    assert_true(eventually(&second, slug, check, wanted));
}

static void writes_invalidate_on_every_node(void **state)
{
    (void)state;
    user author = new_user("editor"), fan = new_user("reader");
    char *slug = create_article(&author, "Cached everywhere", NULL);
    char path[512];
    snprintf(path, sizeof path, "/api/articles/%s", slug);
    json_t *root = NULL;
    /* Both nodes have it and its author's profile cached (L1 and Redis). */
    snprintf(path, sizeof path, "/api/profiles/%s", author.name);
    json_t *body = expect_json(call_on(&second, "GET", path, NULL, NULL), 200);
    assert_true(json_is_null(json_object_get(json_object_get(body, "profile"), "bio")));
    json_decref(body);
    snprintf(path, sizeof path, "/api/articles/%s", slug);
    assert_true(body_is(read_article(&second, slug, NULL, &root), "Very carefully."));
    json_decref(root);
    assert_true(body_is(read_article(&server, slug, NULL, &root), "Very carefully."));
    json_decref(root);

    /* An edit of the body. */
    assert_int_equal(status_on(&server, "PUT", path, author.token, "{\"article\":{\"body\":\"Edited\"}}"), 200);
    expect_both_nodes(slug, body_is, "Edited");
    /* A favourite changes the count. */
    snprintf(path, sizeof path, "/api/articles/%s/favorite", slug);
    assert_int_equal(status_on(&server, "POST", path, fan.token, NULL), 200);
    const int one = 1;
    expect_both_nodes(slug, count_is, &one);
    /* The author changes his bio: his articles and his profile show it. */
    assert_int_equal(status_on(&server, "PUT", "/api/user", author.token, "{\"user\":{\"bio\":\"New bio\"}}"), 200);
    expect_both_nodes(slug, author_bio_is, "New bio");
    snprintf(path, sizeof path, "/api/profiles/%s", author.name);
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        body = expect_json(call_on(&second, "GET", path, NULL, NULL), 200);
        const char *bio = text_of(json_object_get(body, "profile"), "bio");
        seen = bio != NULL && strcmp(bio, "New bio") == 0;
        json_decref(body);
        if (!seen)
            usleep(20 * 1000);
    }
    assert_true(seen);
    /* Deleted: 404 on both. */
    snprintf(path, sizeof path, "/api/articles/%s", slug);
    assert_int_equal(status_on(&server, "DELETE", path, author.token, NULL), 204);
    expect_both_nodes(slug, gone, NULL);
    free(slug);
    free(author.token);
    free(fan.token);
}

/* ---- 100 favourites at once, through both nodes ---------------------------------------- */

typedef struct fan_work {
    char **tokens;
    const char *slug;
    int first, count;
    const char *method;
    int failures;
} fan_work;

/* No cmocka assertions here: they must not jump out of another thread. */
static void *favourite_from_fans(void *data)
{
    fan_work *work = data;
    char path[512], headers[256];
    snprintf(path, sizeof path, "/api/articles/%s/favorite", work->slug);
    for (int i = work->first; i < work->first + work->count; i++) {
        const test_node *node = i % 2 == 0 ? &server : &second;
        snprintf(headers, sizeof headers, "Authorization: Token %s\r\n", work->tokens[i]);
        char request[1024];
        snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n%s\r\n", work->method,
                 path, headers);
        test_response response;
        if (!test_http_request(node->port, request, &response)) {
            work->failures++;
            continue;
        }
        if (response.status != 200)
            work->failures++;
        test_http_response_free(&response);
    }
    return NULL;
}

static void run_fans(char **tokens, const char *slug, const char *method)
{
    pthread_t threads[FAN_THREADS];
    fan_work work[FAN_THREADS];
    int share = FANS / FAN_THREADS;
    for (int t = 0; t < FAN_THREADS; t++) {
        int first = t * share;
        work[t] = (fan_work){.tokens = tokens,
                             .slug = slug,
                             .first = first,
                             .count = t == FAN_THREADS - 1 ? FANS - first : share,
                             .method = method};
        assert_int_equal(pthread_create(&threads[t], NULL, favourite_from_fans, &work[t]), 0);
    }
    for (int t = 0; t < FAN_THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(work[t].failures, 0);
    }
}

static void hundred_favourites_over_two_nodes(void **state)
{
    (void)state;
    user author = new_user("popular");
    char *slug = create_article(&author, "Everybody likes this", NULL);
    char *tokens[FANS];
    for (int i = 0; i < FANS; i++) {
        char who[16];
        snprintf(who, sizeof who, "f%03d", i);
        tokens[i] = new_user(who).token;
    }
    const int hundred = FANS, none = 0;
    run_fans(tokens, slug, "POST");
    expect_both_nodes(slug, count_is, &hundred);
    /* Again: nothing changes. */
    run_fans(tokens, slug, "POST");
    expect_both_nodes(slug, count_is, &hundred);
    expect_viewer_flags(&second, slug, tokens[7], true, false, FANS);
    run_fans(tokens, slug, "DELETE");
    expect_both_nodes(slug, count_is, &none);
    for (int i = 0; i < FANS; i++)
        free(tokens[i]);
    free(slug);
    free(author.token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_read_update_delete),
        cmocka_unit_test(errors),
        cmocka_unit_test(lists_and_feed),
        cmocka_unit_test(tags_follow_writes),
        cmocka_unit_test(per_viewer_fields_are_never_shared),
        cmocka_unit_test(writes_invalidate_on_every_node),
        cmocka_unit_test(hundred_favourites_over_two_nodes),
    };
    return cmocka_run_group_tests(tests, start_both, stop_both);
}
