/* node/services/conduit/articles.c: articles, the feed, favourites and tags. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <shoal/ext/session.h>
#include <shoal/log.h>

#include "api_internal.h"
#include "article_rules.h"
#include "record.h"
#include "validate.h"

/* A slug taken by another article is tried again with a random suffix;
 * 36^6 suffixes make a second collision all but impossible, so running out
 * means something else is wrong. */
#define SLUG_ATTEMPTS 4

/* What a cached article holds, in this order (node/services/conduit/record.h). */
enum cached_field {
    CACHED_ID,
    CACHED_SLUG,
    CACHED_TITLE,
    CACHED_DESCRIPTION,
    CACHED_BODY,
    CACHED_TAGS,
    CACHED_CREATED,
    CACHED_UPDATED,
    CACHED_FAVORITES,
    CACHED_AUTHOR_ID,
    CACHED_AUTHOR_USERNAME,
    CACHED_AUTHOR_BIO,
    CACHED_AUTHOR_IMAGE,
    CACHED_FIELDS
};

/* Decimal text as a whole int64. */
static bool parse_id_text(const char *text, int64_t *out)
{
    if (text == NULL)
        return false;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    *out = (int64_t)value;
    return errno == 0 && end != text && *end == '\0';
}

static int internal_error(shoal_ctx *ctx)
{
    return shoal_fail(ctx, &shoal_code_internal);
}

/* ---- answers ---------------------------------------------------------------- */

static void write_article(shoal_json_writer *out, const store_article *article, bool with_body)
{
    shoal_json_open_object(out);
    shoal_json_write_key(out, "slug");
    shoal_json_write_string(out, article->slug);
    shoal_json_write_key(out, "title");
    shoal_json_write_string(out, article->title);
    shoal_json_write_key(out, "description");
    shoal_json_write_string(out, article->description);
    if (with_body) {
        shoal_json_write_key(out, "body");
        shoal_json_write_string(out, article->body);
    }
    /* PostgreSQL wrote it (json_agg), sorted. */
    shoal_json_write_key(out, "tagList");
    shoal_json_write_raw(out, article->tag_list, strlen(article->tag_list));
    shoal_json_write_key(out, "createdAt");
    shoal_json_write_string(out, article->created_at);
    shoal_json_write_key(out, "updatedAt");
    shoal_json_write_string(out, article->updated_at);
    shoal_json_write_key(out, "favorited");
    shoal_json_write_bool(out, article->favorited);
    shoal_json_write_key(out, "favoritesCount");
    shoal_json_write_integer(out, (long long)article->favorites_count);
    shoal_json_write_key(out, "author");
    api_write_author(out, article->author_username, article->author_bio, article->author_image,
                     article->following);
    shoal_json_close_object(out);
}

/* {"article": {...}} with the body. */
static int answer_article(shoal_ctx *ctx, int status, const store_article *article)
{
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "article");
    write_article(out, article, true);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, status, out);
}

/* ---- callers and input ---------------------------------------------------------- */

/* The viewer of a public read: 0 for nobody, or false after answering 401
 * for a token that is sent but not valid (a bad token is refused, not
 * ignored), or 503. */
static bool optional_viewer(shoal_ctx *ctx, int64_t *viewer)
{
    const shoal_session_info *session = NULL;
    shoal_session_status status = shoal_session(ctx, &session);
    if (status != SHOAL_SESSION_OK && status != SHOAL_SESSION_NONE) {
        shoal_session_fail(ctx, status);
        return false;
    }
    *viewer = session != NULL ? session->user_id : 0;
    return true;
}

static bool required_viewer(shoal_ctx *ctx, int64_t *viewer)
{
    const shoal_session_info *session = NULL;
    if (!shoal_session_require(ctx, &session))
        return false;
    *viewer = session->user_id;
    return true;
}

/* The "article" object of the body, or NULL after answering. */
static json_t *article_object(shoal_ctx *ctx)
{
    json_t *body = NULL, *article = NULL;
    if (!shoal_json_body(ctx, &body) || !shoal_json_member(ctx, body, "article", JSON_OBJECT, true, &article))
        return NULL;
    return article;
}

/* A text member checked by api_check_text: true with *value (NULL when
 * absent), or false after answering 422. Absent is blank when required. */
static bool text_member(shoal_ctx *ctx, json_t *object, const char *key, size_t maximum, bool required,
                        const char **value)
{
    json_t *member = NULL;
    if (!shoal_json_member(ctx, object, key, JSON_STRING, false, &member))
        return false;
    *value = member != NULL ? json_string_value(member) : NULL;
    if (member != NULL && strlen(*value) != json_string_length(member)) {
        /* A NUL inside would be cut short by every C string after this. */
        api_invalid(ctx, key, &api_code_invalid, "is invalid");
        return false;
    }
    if (*value == NULL && !required)
        return true;
    const shoal_error_code *code = NULL;
    const char *message = api_check_text(*value, maximum, &code);
    if (message != NULL) {
        api_invalid(ctx, key, code, message);
        return false;
    }
    return true;
}

/* tagList: absent or null leaves *tags NULL; an array of strings becomes
 * the JSON array the store takes, trimmed, sorted and without repeats
 * (arena memory). False after answering 422. */
static bool tag_list_member(shoal_ctx *ctx, json_t *object, const char **tags)
{
    *tags = NULL;
    json_t *list = json_object_get(object, "tagList");
    if (list == NULL || json_is_null(list))
        return true;
    size_t count = json_array_size(list);
    if (!json_is_array(list))
        return api_invalid(ctx, "tagList", &shoal_code_request_invalid_field, "must be an array of strings"), false;
    /* Repeats are dropped below; the bound before that keeps the sort
     * short whatever is sent. */
    if (count > 4 * API_TAGS_MAX)
        return api_invalid(ctx, "tagList", &api_code_too_long, "has too many tags (maximum is 32)"), false;
    shoal_arena *arena = shoal_ctx_arena(ctx);
    const char **names = shoal_arena_calloc(arena, count + 1, sizeof *names);
    size_t *lengths = shoal_arena_calloc(arena, count + 1, sizeof *lengths);
    if (names == NULL || lengths == NULL)
        return internal_error(ctx), false;
    for (size_t i = 0; i < count; i++) {
        json_t *tag = json_array_get(list, i);
        if (!json_is_string(tag) || strlen(json_string_value(tag)) != json_string_length(tag))
            return api_invalid(ctx, "tagList", &shoal_code_request_invalid_field, "must be an array of strings"), false;
        names[i] = json_string_value(tag);
        lengths[i] = json_string_length(tag);
    }
    count = api_article_tags(names, lengths, count);
    if (count > API_TAGS_MAX)
        return api_invalid(ctx, "tagList", &api_code_too_long, "has too many tags (maximum is 32)"), false;
    shoal_json_writer *out = shoal_json_writer_new(arena);
    shoal_json_open_array(out);
    for (size_t i = 0; i < count; i++) {
        char *name = shoal_arena_strndup(arena, names[i], lengths[i]);
        if (name == NULL)
            return internal_error(ctx), false;
        const shoal_error_code *code = NULL;
        const char *message = api_check_text(name, API_TAG_MAX, &code);
        if (message != NULL)
            return api_invalid(ctx, "tagList", code, message), false;
        shoal_json_write_string_n(out, names[i], lengths[i]);
    }
    shoal_json_close_array(out);
    size_t length = 0;
    *tags = shoal_json_writer_text(out, &length);
    if (*tags == NULL)
        return internal_error(ctx), false;
    return true;
}

/* ?limit= and ?offset=: absent is the default; anything but digits is 422;
 * a limit above --api-max-limit is cut to it. */
static bool paging(shoal_ctx *ctx, int64_t *limit, int64_t *offset)
{
    const char *names[2] = {"limit", "offset"};
    int64_t *values[2] = {limit, offset};
    *limit = 20;
    *offset = 0;
    for (int i = 0; i < 2; i++) {
        const char *text = shoal_query(ctx, names[i]);
        if (text == NULL)
            continue;
        size_t length = strlen(text);
        bool digits = length > 0 && length <= 18 && strspn(text, "0123456789") == length;
        if (!digits) {
            api_invalid(ctx, names[i], &api_code_invalid, "must be a whole number of at least 0");
            return false;
        }
        *values[i] = (int64_t)strtoll(text, NULL, 10);
    }
    const api_state *api = shoal_route_data(ctx);
    int64_t maximum = api->max_limit;
    if (*limit > maximum)
        *limit = maximum;
    return true;
}

/* A filter's value, or NULL when absent or empty (as clients send it when
 * a field of a search form is empty). */
static const char *filter(shoal_ctx *ctx, const char *name)
{
    const char *value = shoal_query(ctx, name);
    return value != NULL && *value != '\0' ? value : NULL;
}

/* ---- lists ------------------------------------------------------------------------- */

static int fill_count(shoal_ctx *ctx, const char *key, void *data, void **value, size_t *length)
{
    (void)key;
    const store_article_query *query = data;
    const api_state *api = shoal_route_data(ctx);
    int64_t total = 0;
    store_status status = store_article_count(shoal_store(ctx), &api->articles, query, &total);
    if (status != STORE_OK)
        return (int)status;
    char *text = shoal_arena_printf(shoal_ctx_arena(ctx), "%" PRId64, total);
    if (text == NULL)
        return (int)STORE_ERROR;
    *value = text;
    *length = strlen(text);
    return 0;
}

/* The cache key of a count: each filter's length before it, so that no
 * two filters give one key ("t3:red|a-" is tag red, no author). */
static const char *count_key(shoal_ctx *ctx, const store_article_query *query)
{
    shoal_arena *arena = shoal_ctx_arena(ctx);
    const char *tag = query->tag != NULL ? shoal_arena_printf(arena, "t%zu:%s", strlen(query->tag), query->tag) : "t-";
    const char *author =
        query->author != NULL ? shoal_arena_printf(arena, "a%zu:%s", strlen(query->author), query->author) : "a-";
    return tag != NULL && author != NULL ? shoal_arena_printf(arena, "%s|%s", tag, author) : NULL;
}

/* articlesCount. Counting every match is most of a list's cost (the whole
 * list of 100,000 articles: about 8 ms of the 9), and the count by tag and
 * author changes only when an article is created, deleted or retagged or
 * an author renamed, so it is cached; the feed's and the favourites' change
 * with every follow and favourite and are counted with the page. true with
 * *total set (or *failure, a code to answer), or false: count with the
 * page. */
static bool cached_count(shoal_ctx *ctx, store_article_query *query, int64_t *total, int *failure)
{
    *failure = 0;
    if (query->feed || query->favorited != NULL)
        return false;
    const char *key = count_key(ctx, query);
    if (key == NULL)
        return false;
    const void *value = NULL;
    size_t length = 0;
    int rc = shoal_cached(ctx, API_CACHE_COUNT, key, API_COUNT_TTL_MS, fill_count, query, &value, &length);
    if (rc != 0) {
        *failure = rc;
        return true;
    }
    char text[24];
    if (length == 0 || length >= sizeof text)
        return false;
    memcpy(text, value, length);
    text[length] = '\0';
    return parse_id_text(text, total);
}

static int answer_list(shoal_ctx *ctx, store_article_query *query)
{
    const api_state *api = shoal_route_data(ctx);
    store_article *articles = shoal_arena_calloc(shoal_ctx_arena(ctx), (size_t)query->limit + 1, sizeof *articles);
    if (articles == NULL)
        return internal_error(ctx);
    int count = 0, failure = 0;
    int64_t total = 0;
    bool counted = cached_count(ctx, query, &total, &failure);
    if (failure < 0)
        return internal_error(ctx);
    if (failure > 0)
        return api_store_failure(ctx, (store_status)failure, &api_code_article_not_found);
    store_result *result = NULL;
    store_status status = store_article_list(shoal_store(ctx), &api->articles, query, articles, &count,
                                             counted ? NULL : &total, &result);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_article_not_found);
    shoal_keep_result(ctx, result);
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "articles");
    shoal_json_open_array(out);
    for (int i = 0; i < count; i++)
        write_article(out, &articles[i], false);
    shoal_json_close_array(out);
    shoal_json_write_key(out, "articlesCount");
    shoal_json_write_integer(out, (long long)total);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, 200, out);
}

static int list_articles(shoal_ctx *ctx)
{
    store_article_query query = {
        .tag = filter(ctx, "tag"),
        .author = filter(ctx, "author"),
        .favorited = filter(ctx, "favorited"),
    };
    if (!paging(ctx, &query.limit, &query.offset) || !optional_viewer(ctx, &query.viewer))
        return 0;
    return answer_list(ctx, &query);
}

static int feed(shoal_ctx *ctx)
{
    store_article_query query = {.feed = true};
    if (!required_viewer(ctx, &query.viewer) || !paging(ctx, &query.limit, &query.offset))
        return 0;
    return answer_list(ctx, &query);
}

/* ---- one article, through the cache ------------------------------------------------- */

static int fill_article(shoal_ctx *ctx, const char *key, void *data, void **value, size_t *length)
{
    const api_state *api = data;
    store_article article;
    store_result *result = NULL;
    /* As nobody sees it: the viewer's flags never enter the cache. */
    store_status status = store_article_get(shoal_store(ctx), &api->articles, 0, key, &article, &result);
    if (status != STORE_OK)
        return (int)status;
    shoal_keep_result(ctx, result);
    shoal_arena *arena = shoal_ctx_arena(ctx);
    const char *fields[CACHED_FIELDS] = {
        [CACHED_ID] = shoal_arena_printf(arena, "%" PRId64, article.id),
        [CACHED_SLUG] = article.slug,
        [CACHED_TITLE] = article.title,
        [CACHED_DESCRIPTION] = article.description,
        [CACHED_BODY] = article.body,
        [CACHED_TAGS] = article.tag_list,
        [CACHED_CREATED] = article.created_at,
        [CACHED_UPDATED] = article.updated_at,
        [CACHED_FAVORITES] = shoal_arena_printf(arena, "%" PRId64, article.favorites_count),
        [CACHED_AUTHOR_ID] = shoal_arena_printf(arena, "%" PRId64, article.author_id),
        [CACHED_AUTHOR_USERNAME] = article.author_username,
        [CACHED_AUTHOR_BIO] = article.author_bio,
        [CACHED_AUTHOR_IMAGE] = article.author_image,
    };
    if (fields[CACHED_ID] == NULL || fields[CACHED_FAVORITES] == NULL || fields[CACHED_AUTHOR_ID] == NULL)
        return (int)STORE_ERROR;
    *value = api_record_encode(arena, fields, CACHED_FIELDS, length);
    return *value != NULL ? 0 : (int)STORE_ERROR;
}

static bool decode_article(const void *bytes, size_t length, store_article *out)
{
    const char *fields[CACHED_FIELDS];
    if (!api_record_decode(bytes, length, fields, CACHED_FIELDS))
        return false;
    *out = (store_article){
        .slug = fields[CACHED_SLUG],
        .title = fields[CACHED_TITLE],
        .description = fields[CACHED_DESCRIPTION],
        .body = fields[CACHED_BODY],
        .tag_list = fields[CACHED_TAGS],
        .created_at = fields[CACHED_CREATED],
        .updated_at = fields[CACHED_UPDATED],
        .author_username = fields[CACHED_AUTHOR_USERNAME],
        .author_bio = fields[CACHED_AUTHOR_BIO],
        .author_image = fields[CACHED_AUTHOR_IMAGE],
    };
    return parse_id_text(fields[CACHED_ID], &out->id) && parse_id_text(fields[CACHED_FAVORITES], &out->favorites_count) &&
           parse_id_text(fields[CACHED_AUTHOR_ID], &out->author_id) && out->slug != NULL && out->title != NULL &&
           out->description != NULL && out->body != NULL && out->tag_list != NULL && out->created_at != NULL &&
           out->updated_at != NULL && out->author_username != NULL;
}

static int get_article(shoal_ctx *ctx)
{
    api_state *api = shoal_route_data(ctx);
    int64_t viewer = 0;
    if (!optional_viewer(ctx, &viewer))
        return 0;
    const char *slug = shoal_param(ctx, "slug");
    store *s = shoal_store(ctx);
    const void *value = NULL;
    size_t length = 0;
    int rc = shoal_cached(ctx, API_CACHE_ARTICLE, slug, API_ARTICLE_TTL_MS, fill_article, api, &value, &length);
    if (rc < 0)
        return internal_error(ctx);
    if (rc > 0)
        return api_store_failure(ctx, (store_status)rc, &api_code_article_not_found);
    store_article article;
    if (!decode_article(value, length, &article)) {
        /* Written by a node of another version, say: read it whole. */
        shoal_log(SHOAL_LOG_WARNING, "api", "cached article %s is unreadable; reading PostgreSQL", slug);
        store_result *result = NULL;
        store_status status = store_article_get(s, &api->articles, viewer, slug, &article, &result);
        if (status != STORE_OK)
            return api_store_failure(ctx, status, &api_code_article_not_found);
        shoal_keep_result(ctx, result);
        return answer_article(ctx, 200, &article);
    }
    if (viewer != 0) {
        store_status status = store_article_viewer(s, &api->articles, viewer, article.id, article.author_id,
                                                   &article.favorited, &article.following);
        if (status != STORE_OK)
            return api_store_failure(ctx, status, &api_code_article_not_found);
    }
    return answer_article(ctx, 200, &article);
}

/* ---- writes ------------------------------------------------------------------------ */

/* Whether a failed write was for a slug that is taken. */
static bool slug_taken(store *s, store_status status)
{
    const store_error *error = store_last_error(s);
    return status == STORE_CONFLICT && error->field != NULL && strcmp(error->field, "slug") == 0;
}

static void next_slug(const char *title, char *slug)
{
    /* Slugs are public: the suffix need only be unlikely to repeat. The
     * kernel's generator does not fail for 8 bytes once booted; if it did,
     * the clock still differs between tries. */
    uint64_t random = 0;
    if (getrandom(&random, sizeof random, 0) != (ssize_t)sizeof random) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        random = ((uint64_t)now.tv_sec << 30) ^ (uint64_t)now.tv_nsec;
    }
    api_article_slug(title, slug);
    api_article_slug_suffix(slug, random);
}

static int create_article(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    int64_t author = 0;
    if (!required_viewer(ctx, &author))
        return 0;
    json_t *object = article_object(ctx);
    if (object == NULL)
        return 0;
    store_article_input input = {0};
    if (!text_member(ctx, object, "title", API_TITLE_MAX, true, &input.title) ||
        !text_member(ctx, object, "description", API_DESCRIPTION_MAX, true, &input.description) ||
        !text_member(ctx, object, "body", API_ARTICLE_BODY_MAX, true, &input.body) ||
        !tag_list_member(ctx, object, &input.tags))
        return 0;
    store *s = shoal_store(ctx);
    char slug[API_SLUG_SIZE];
    api_article_slug(input.title, slug);
    store_article created;
    store_result *result = NULL;
    store_status status = STORE_ERROR;
    /* Two nodes may create the same title at once: the unique constraint
     * decides, and the loser takes a suffix. */
    for (int attempt = 0; attempt < SLUG_ATTEMPTS; attempt++) {
        status = store_article_create(s, &api->articles, author, slug, &input, &created, &result);
        if (!slug_taken(s, status))
            break;
        next_slug(input.title, slug);
    }
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_article_not_found);
    shoal_keep_result(ctx, result);
    shoal_cache_invalidate(ctx, API_CACHE_COUNT);
    if (strcmp(created.tag_list, "[]") != 0)
        shoal_cache_invalidate(ctx, API_CACHE_TAGS);
    return answer_article(ctx, 201, &created);
}

/* The article's id and current title when the caller owns it, or false
 * after answering 404 or 403. */
static bool owned(shoal_ctx *ctx, const api_state *api, int64_t caller, const char *slug, int64_t *id,
                  const char **title)
{
    int64_t author = 0;
    store_result *result = NULL;
    store_status status = store_article_owner(shoal_store(ctx), &api->articles, slug, id, &author, title, &result);
    if (status != STORE_OK) {
        api_store_failure(ctx, status, &api_code_article_not_found);
        return false;
    }
    shoal_keep_result(ctx, result);
    if (author != caller) {
        shoal_fail(ctx, &api_code_article_forbidden);
        return false;
    }
    return true;
}

static int update_article(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    int64_t caller = 0;
    if (!required_viewer(ctx, &caller))
        return 0;
    json_t *object = article_object(ctx);
    if (object == NULL)
        return 0;
    store_article_input input = {0};
    if (!text_member(ctx, object, "title", API_TITLE_MAX, false, &input.title) ||
        !text_member(ctx, object, "description", API_DESCRIPTION_MAX, false, &input.description) ||
        !text_member(ctx, object, "body", API_ARTICLE_BODY_MAX, false, &input.body) ||
        !tag_list_member(ctx, object, &input.tags))
        return 0;
    const char *slug = shoal_param(ctx, "slug");
    int64_t id = 0;
    const char *title = NULL;
    if (!owned(ctx, api, caller, slug, &id, &title))
        return 0;
    /* A new title is a new slug; the same title (or none) keeps it, so
     * that links to an article survive edits of its text. */
    char new_slug[API_SLUG_SIZE];
    bool retitled = input.title != NULL && strcmp(input.title, title) != 0;
    if (retitled)
        api_article_slug(input.title, new_slug);
    store *s = shoal_store(ctx);
    store_article updated;
    store_result *result = NULL;
    store_status status = STORE_ERROR;
    for (int attempt = 0; attempt < SLUG_ATTEMPTS; attempt++) {
        status = store_article_update(s, &api->articles, id, caller, retitled ? new_slug : NULL, &input, &updated,
                                      &result);
        if (!slug_taken(s, status))
            break;
        next_slug(input.title, new_slug);
    }
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_article_not_found);
    shoal_keep_result(ctx, result);
    /* The whole family, not the old slug's key: an edit is rare, and a
     * family's version cannot be raced by a fill that read the old row
     * (docs/api.md#caching). */
    shoal_cache_invalidate(ctx, API_CACHE_ARTICLE);
    if (input.tags != NULL) {
        shoal_cache_invalidate(ctx, API_CACHE_TAGS);
        shoal_cache_invalidate(ctx, API_CACHE_COUNT);
    }
    return answer_article(ctx, 200, &updated);
}

static int delete_article(shoal_ctx *ctx)
{
    const api_state *api = shoal_route_data(ctx);
    int64_t caller = 0;
    if (!required_viewer(ctx, &caller))
        return 0;
    bool deleted = false;
    store_status status =
        store_article_delete(shoal_store(ctx), &api->articles, shoal_param(ctx, "slug"), caller, &deleted);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_article_not_found);
    if (!deleted)
        return shoal_fail(ctx, &api_code_article_forbidden);
    shoal_cache_invalidate(ctx, API_CACHE_ARTICLE);
    shoal_cache_invalidate(ctx, API_CACHE_TAGS);
    shoal_cache_invalidate(ctx, API_CACHE_COUNT);
    return shoal_empty(ctx, 204);
}

static int change_favorite(shoal_ctx *ctx, bool favorite)
{
    const api_state *api = shoal_route_data(ctx);
    int64_t caller = 0;
    if (!required_viewer(ctx, &caller))
        return 0;
    const char *slug = shoal_param(ctx, "slug");
    store_article article;
    store_result *result = NULL;
    store_status status =
        store_article_favorite(shoal_store(ctx), &api->articles, caller, slug, favorite, &article, &result);
    if (status != STORE_OK)
        return api_store_failure(ctx, status, &api_code_article_not_found);
    shoal_keep_result(ctx, result);
    /* Only the count changed, and favourites are frequent: dropping the
     * one key keeps every other article cached. */
    shoal_cache_invalidate_key(ctx, API_CACHE_ARTICLE, slug);
    return answer_article(ctx, 200, &article);
}

static int favorite(shoal_ctx *ctx)
{
    return change_favorite(ctx, true);
}

static int unfavorite(shoal_ctx *ctx)
{
    return change_favorite(ctx, false);
}

/* ---- tags ------------------------------------------------------------------------------ */

static int fill_tags(shoal_ctx *ctx, const char *key, void *data, void **value, size_t *length)
{
    (void)key;
    const api_state *api = data;
    const char *tags = NULL;
    store_result *result = NULL;
    store_status status = store_tag_list(shoal_store(ctx), &api->tags, &tags, &result);
    if (status != STORE_OK)
        return (int)status;
    shoal_keep_result(ctx, result);
    *value = (void *)tags;
    *length = strlen(tags);
    return 0;
}

static int list_tags(shoal_ctx *ctx)
{
    api_state *api = shoal_route_data(ctx);
    const void *value = NULL;
    size_t length = 0;
    int rc = shoal_cached(ctx, API_CACHE_TAGS, API_CACHE_TAGS_KEY, API_TAGS_TTL_MS, fill_tags, api, &value, &length);
    if (rc < 0)
        return internal_error(ctx);
    if (rc > 0)
        return api_store_failure(ctx, (store_status)rc, &api_code_tag_not_found);
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "tags");
    shoal_json_write_raw(out, value, length);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, 200, out);
}

int api_articles_register(shoal_blueprint *bp, api_state *state)
{
    if (shoal_route_with(bp, "GET", "/articles", list_articles, state) != 0 ||
        shoal_route_with(bp, "GET", "/articles/feed", feed, state) != 0 ||
        shoal_route_with(bp, "POST", "/articles", create_article, state) != 0 ||
        shoal_route_with(bp, "GET", "/articles/:slug", get_article, state) != 0 ||
        shoal_route_with(bp, "PUT", "/articles/:slug", update_article, state) != 0 ||
        shoal_route_with(bp, "DELETE", "/articles/:slug", delete_article, state) != 0 ||
        shoal_route_with(bp, "POST", "/articles/:slug/favorite", favorite, state) != 0 ||
        shoal_route_with(bp, "DELETE", "/articles/:slug/favorite", unfavorite, state) != 0 ||
        shoal_route_with(bp, "GET", "/tags", list_tags, state) != 0)
        return -1;
    return 0;
}
