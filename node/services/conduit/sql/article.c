/* node/services/conduit/sql/article.c */
#include "article.h"
#include "timestamp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISO(column) STORE_SQL_ISO8601(column)
/* Byte order ("C"), the same on every server whatever its locale. */
#define TAGS_OF(article)                                                                                        \
    "coalesce((SELECT json_agg(t.name ORDER BY t.name COLLATE \"C\") FROM article_tags at JOIN tags t "       \
    "ON t.id = at.tag_id WHERE at.article_id = " article ")::text, '[]')"
#define VIEWER_FLAGS(viewer)                                                                                    \
    "EXISTS (SELECT 1 FROM favorites f WHERE f.user_id = " viewer "::bigint AND f.article_id = a.id), "         \
    "EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = " viewer "::bigint AND f.followee_id = a.author_id)"
/* The columns of a view, in the order parse_article reads them. */
#define VIEW_COLUMNS(body, viewer)                                                                              \
    "a.id, a.slug, a.title, a.description, " body ", " TAGS_OF("a.id") ", " ISO("a.created_at") ", "           \
    ISO("a.updated_at") ", a.favorites_count, u.id, u.username, u.bio, u.image, " VIEWER_FLAGS(viewer)
#define VIEW_COLUMN_COUNT 15
#define VIEW(viewer) "SELECT " VIEW_COLUMNS("a.body", viewer) " FROM articles a JOIN users u ON u.id = a.author_id "

/* The list filters, in the order of their parameters: after the viewer,
 * the limit and the offset in a page ($4 on), alone in a count ($1 on). */
static const char *const list_filters[3] = {
    "a.id IN (SELECT at.article_id FROM article_tags at JOIN tags t ON t.id = at.tag_id WHERE t.name = $%d)",
    "a.author_id IN (SELECT id FROM users WHERE username = $%d)",
    "a.id IN (SELECT f.article_id FROM favorites f JOIN users fu ON fu.id = f.user_id WHERE fu.username = $%d)",
};
#define FEED_FILTER "a.author_id IN (SELECT followee_id FROM follows WHERE follower_id = $1::bigint)"

/* A page: its ids cut from an index on (created_at, id) by the query
 * `page` before anything is joined to them, each of its rows then
 * completed by primary key in a LATERAL subquery that OFFSET 0 keeps from
 * being flattened: a generic plan, which cannot know how small LIMIT $2
 * is, would otherwise join the whole table (measured on 100,000 articles:
 * 136 ms instead of 8). */
static store_statement add_page_of(store_registry *registry, const char *name, const char *page, int params)
{
    const char *format =
        "WITH page AS (%s) "
        "SELECT v.* FROM page p CROSS JOIN LATERAL (SELECT " VIEW_COLUMNS("NULL::text", "$1")
        " FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = p.id OFFSET 0) v "
        "ORDER BY p.created_at DESC, p.id DESC";
    char sql[4096];
    if ((size_t)snprintf(sql, sizeof sql, format, page) >= sizeof sql)
        return -1;
    return store_registry_add(registry, name, sql, params);
}

static store_statement add_page(store_registry *registry, const char *name, const char *filter, int params)
{
    char page[2048];
    if ((size_t)snprintf(page, sizeof page,
                         "SELECT a.id, a.created_at FROM articles a WHERE %s "
                         "ORDER BY a.created_at DESC, a.id DESC LIMIT $2::bigint OFFSET $3::bigint",
                         filter) >= sizeof page)
        return -1;
    return add_page_of(registry, name, page, params);
}

/* The feed's page takes at most offset + limit of each followed author's
 * newest articles from the (author_id, created_at, id) index and merges
 * those: the work grows with the number of authors followed, not with
 * what they wrote. "author_id IN (followees)" made PostgreSQL sort every
 * article of every followed author first (about 30 ms a page for a reader
 * of an author with 4,600 articles). */
#define FEED_PAGE                                                                                               \
    "SELECT c.id, c.created_at FROM follows f CROSS JOIN LATERAL (SELECT a.id, a.created_at FROM articles a "  \
    "WHERE a.author_id = f.followee_id ORDER BY a.created_at DESC, a.id DESC LIMIT $2::bigint + $3::bigint) c " \
    "WHERE f.follower_id = $1::bigint ORDER BY c.created_at DESC, c.id DESC LIMIT $2::bigint OFFSET $3::bigint"

static store_statement add_count(store_registry *registry, const char *name, const char *filter, int params)
{
    char sql[1024];
    if ((size_t)snprintf(sql, sizeof sql, "SELECT count(*) FROM articles a WHERE %s", filter) >= sizeof sql)
        return -1;
    return store_registry_add(registry, name, sql, params);
}

/* The filters of variant (bit i: list_filters[i]) with parameters from
 * first on, ANDed. */
static void variant_filter(int variant, int first, char *filter, size_t size)
{
    snprintf(filter, size, "true");
    for (int i = 0; i < 3; i++) {
        if (!(variant & (1 << i)))
            continue;
        size_t used = strlen(filter);
        snprintf(filter + used, size - used, " AND ");
        used = strlen(filter);
        snprintf(filter + used, size - used, list_filters[i], first++);
    }
}

static int register_lists(store_registry *registry, store_article_statements *statements)
{
    for (int variant = 0; variant < STORE_ARTICLE_LIST_VARIANTS; variant++) {
        int filters = __builtin_popcount((unsigned)variant);
        char filter[1024], name[32];
        variant_filter(variant, 4, filter, sizeof filter);
        snprintf(name, sizeof name, "article_list_%d", variant);
        statements->list[variant] = add_page(registry, name, filter, 3 + filters);
        variant_filter(variant, 1, filter, sizeof filter);
        snprintf(name, sizeof name, "article_count_%d", variant);
        statements->count[variant] = add_count(registry, name, filter, filters);
        if (statements->list[variant] < 0 || statements->count[variant] < 0)
            return -1;
    }
    statements->feed = add_page_of(registry, "article_feed", FEED_PAGE, 3);
    statements->feed_count = add_count(registry, "article_feed_count", FEED_FILTER, 1);
    return statements->feed < 0 || statements->feed_count < 0 ? -1 : 0;
}

int store_article_register(store_registry *registry, store_article_statements *statements)
{
    statements->by_slug = store_registry_add(registry, "article_by_slug", VIEW("$2") "WHERE a.slug = $1", 2);
    statements->by_id = store_registry_add(registry, "article_by_id", VIEW("$2") "WHERE a.id = $1::bigint", 2);
    statements->viewer_flags = store_registry_add(
        registry, "article_viewer_flags",
        "SELECT EXISTS (SELECT 1 FROM favorites WHERE user_id = $1::bigint AND article_id = $2::bigint), "
        "EXISTS (SELECT 1 FROM follows WHERE follower_id = $1::bigint AND followee_id = $3::bigint)",
        3);
    /* In name order, so that two writers with overlapping tags take the
     * rows' locks in the same order. */
    statements->add_tags = store_registry_add(
        registry, "article_add_tags",
        "INSERT INTO tags (name) SELECT DISTINCT value FROM json_array_elements_text($1::json) ORDER BY 1 "
        "ON CONFLICT (name) DO NOTHING",
        1);
    /* The tags exist by now (add_tags ran before, committed): this
     * statement's snapshot sees them, also those another writer made. The
     * outer SELECT cannot see the CTEs' rows in article_tags, so the
     * tagList comes from `wanted`. */
    statements->insert = store_registry_add(
        registry, "article_insert",
        "WITH inserted AS (INSERT INTO articles (slug, title, description, body, author_id) "
        "VALUES ($1, $2, $3, $4, $5::bigint) RETURNING *), "
        "wanted AS (SELECT t.id, t.name FROM tags t WHERE t.name IN (SELECT value FROM json_array_elements_text($6::json))), "
        "linked AS (INSERT INTO article_tags (article_id, tag_id) SELECT i.id, w.id FROM inserted i, wanted w) "
        "SELECT a.id, a.slug, a.title, a.description, a.body, "
        "coalesce((SELECT json_agg(w.name ORDER BY w.name COLLATE \"C\") FROM wanted w)::text, '[]'), " ISO(
            "a.created_at") ", " ISO("a.updated_at") ", a.favorites_count, u.id, u.username, u.bio, u.image, false, false "
                                                     "FROM inserted a JOIN users u ON u.id = a.author_id",
        6);
    statements->owner =
        store_registry_add(registry, "article_owner", "SELECT id, author_id, title FROM articles WHERE slug = $1", 1);
    statements->update = store_registry_add(
        registry, "article_update",
        "WITH updated AS (UPDATE articles SET slug = coalesce($3, slug), title = coalesce($4, title), "
        "description = coalesce($5, description), body = coalesce($6, body), updated_at = now() "
        "WHERE id = $1::bigint AND author_id = $2::bigint RETURNING id), "
        "wanted AS (SELECT t.id FROM tags t WHERE t.name IN (SELECT value FROM json_array_elements_text($7::json))), "
        "removed AS (DELETE FROM article_tags at USING updated u WHERE $7::json IS NOT NULL "
        "AND at.article_id = u.id AND at.tag_id NOT IN (SELECT id FROM wanted)), "
        "added AS (INSERT INTO article_tags (article_id, tag_id) SELECT u.id, w.id FROM updated u, wanted w "
        "ON CONFLICT DO NOTHING) "
        "SELECT count(*) FROM updated",
        7);
    statements->remove = store_registry_add(
        registry, "article_delete",
        "WITH target AS (SELECT id, author_id FROM articles WHERE slug = $1), "
        "removed AS (DELETE FROM articles a USING target t WHERE a.id = t.id AND t.author_id = $2::bigint "
        "RETURNING a.id) SELECT (SELECT count(*) FROM removed) FROM target",
        2);
    statements->favorite = store_registry_add(registry, "article_favorite",
                                              "INSERT INTO favorites (user_id, article_id) SELECT $1::bigint, id "
                                              "FROM articles WHERE slug = $2 ON CONFLICT DO NOTHING",
                                              2);
    statements->unfavorite = store_registry_add(
        registry, "article_unfavorite",
        "DELETE FROM favorites WHERE user_id = $1::bigint AND article_id IN (SELECT id FROM articles WHERE slug = $2)",
        2);
    if (statements->by_slug < 0 || statements->by_id < 0 || statements->viewer_flags < 0 ||
        statements->add_tags < 0 || statements->insert < 0 || statements->owner < 0 || statements->update < 0 ||
        statements->remove < 0 || statements->favorite < 0 || statements->unfavorite < 0)
        return -1;
    if (register_lists(registry, statements) != 0)
        return -1;
    return store_registry_constraint(registry, "articles_slug_key", "slug");
}

static bool parse_flag(const char *text, bool *out)
{
    if (text == NULL)
        return false;
    *out = strcmp(text, "t") == 0;
    return true;
}

/* The view's columns of row, from column first on. */
static store_status parse_article(const store_result *result, int row, int first, store_article *out)
{
    if (store_result_columns(result) != first + VIEW_COLUMN_COUNT)
        return STORE_ERROR;
    const char *(*value)(const store_result *, int, int) = store_result_value;
    *out = (store_article){
        .slug = value(result, row, first + 1),
        .title = value(result, row, first + 2),
        .description = value(result, row, first + 3),
        .body = value(result, row, first + 4),
        .tag_list = value(result, row, first + 5),
        .created_at = value(result, row, first + 6),
        .updated_at = value(result, row, first + 7),
        .author_username = value(result, row, first + 10),
        .author_bio = value(result, row, first + 11),
        .author_image = value(result, row, first + 12),
    };
    if (!store_result_int64(result, row, first, &out->id) ||
        !store_result_int64(result, row, first + 8, &out->favorites_count) ||
        !store_result_int64(result, row, first + 9, &out->author_id) ||
        !parse_flag(value(result, row, first + 13), &out->favorited) ||
        !parse_flag(value(result, row, first + 14), &out->following) || out->slug == NULL || out->title == NULL ||
        out->description == NULL || out->tag_list == NULL || out->created_at == NULL || out->updated_at == NULL ||
        out->author_username == NULL)
        return STORE_ERROR;
    return STORE_OK;
}

/* The first row of found into *out, handing found to *result; found is
 * released on failure. */
static store_status one_article(store_result *found, store_article *out, store_result **result)
{
    if (store_result_rows(found) < 1) {
        store_result_free(found);
        return STORE_NOT_FOUND;
    }
    store_status status = parse_article(found, 0, 0, out);
    if (status != STORE_OK) {
        store_result_free(found);
        return status;
    }
    *result = found;
    return STORE_OK;
}

store_status store_article_get(store *s, const store_article_statements *statements, int64_t viewer,
                               const char *slug, store_article *out, store_result **result)
{
    *result = NULL;
    char viewer_text[24];
    snprintf(viewer_text, sizeof viewer_text, "%" PRId64, viewer);
    const char *params[2] = {slug, viewer_text};
    store_result *found = NULL;
    store_status status = store_run(s, statements->by_slug, params, &found);
    if (status != STORE_OK)
        return status;
    return one_article(found, out, result);
}

store_status store_article_viewer(store *s, const store_article_statements *statements, int64_t viewer,
                                  int64_t article, int64_t author, bool *favorited, bool *following)
{
    char texts[3][24];
    snprintf(texts[0], sizeof texts[0], "%" PRId64, viewer);
    snprintf(texts[1], sizeof texts[1], "%" PRId64, article);
    snprintf(texts[2], sizeof texts[2], "%" PRId64, author);
    const char *params[3] = {texts[0], texts[1], texts[2]};
    store_result *found = NULL;
    store_status status = store_run(s, statements->viewer_flags, params, &found);
    if (status != STORE_OK)
        return status;
    if (store_result_rows(found) != 1 || store_result_columns(found) != 2 ||
        !parse_flag(store_result_value(found, 0, 0), favorited) ||
        !parse_flag(store_result_value(found, 0, 1), following))
        status = STORE_ERROR;
    store_result_free(found);
    return status;
}

store_status store_article_create(store *s, const store_article_statements *statements, int64_t author,
                                  const char *slug, const store_article_input *input, store_article *out,
                                  store_result **result)
{
    *result = NULL;
    char author_text[24];
    snprintf(author_text, sizeof author_text, "%" PRId64, author);
    const char *tags = input->tags != NULL ? input->tags : "[]";
    const char *tag_params[1] = {tags};
    const char *params[6] = {slug, input->title, input->description, input->body, author_text, tags};
    store_batch_item items[2] = {
        {.statement = statements->add_tags, .params = tag_params},
        {.statement = statements->insert, .params = params},
    };
    /* Without tags the first item has nothing to do: leave it out. */
    store_batch_item *first = input->tags != NULL ? &items[0] : &items[1];
    size_t count = input->tags != NULL ? 2 : 1;
    store_status status = store_batch(s, first, count);
    store_result_free(items[0].result);
    if (status != STORE_OK) {
        store_result_free(items[1].result);
        return status;
    }
    return one_article(items[1].result, out, result);
}

store_status store_article_owner(store *s, const store_article_statements *statements, const char *slug,
                                 int64_t *id, int64_t *author, const char **title, store_result **result)
{
    *result = NULL;
    const char *params[1] = {slug};
    store_result *found = NULL;
    store_status status = store_run(s, statements->owner, params, &found);
    if (status != STORE_OK)
        return status;
    if (store_result_rows(found) < 1) {
        store_result_free(found);
        return STORE_NOT_FOUND;
    }
    *title = store_result_value(found, 0, 2);
    if (store_result_columns(found) != 3 || !store_result_int64(found, 0, 0, id) ||
        !store_result_int64(found, 0, 1, author) || *title == NULL) {
        store_result_free(found);
        return STORE_ERROR;
    }
    *result = found;
    return STORE_OK;
}

store_status store_article_update(store *s, const store_article_statements *statements, int64_t id,
                                  int64_t author, const char *slug, const store_article_input *input,
                                  store_article *out, store_result **result)
{
    *result = NULL;
    char id_text[24], author_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    snprintf(author_text, sizeof author_text, "%" PRId64, author);
    const char *tag_params[1] = {input->tags};
    const char *params[7] = {id_text, author_text, slug, input->title, input->description, input->body, input->tags};
    const char *view_params[2] = {id_text, author_text};
    store_batch_item items[3] = {
        {.statement = statements->add_tags, .params = tag_params},
        {.statement = statements->update, .params = params},
        {.statement = statements->by_id, .params = view_params},
    };
    store_batch_item *first = input->tags != NULL ? &items[0] : &items[1];
    size_t count = input->tags != NULL ? 3 : 2;
    store_status status = store_batch(s, first, count);
    store_result_free(items[0].result);
    int64_t updated = 0;
    if (status == STORE_OK && (store_result_rows(items[1].result) != 1 ||
                               !store_result_int64(items[1].result, 0, 0, &updated)))
        status = STORE_ERROR;
    store_result_free(items[1].result);
    if (status == STORE_OK && updated == 0)
        status = STORE_NOT_FOUND;
    if (status != STORE_OK) {
        store_result_free(items[2].result);
        return status;
    }
    return one_article(items[2].result, out, result);
}

store_status store_article_delete(store *s, const store_article_statements *statements, const char *slug,
                                  int64_t author, bool *deleted)
{
    *deleted = false;
    char author_text[24];
    snprintf(author_text, sizeof author_text, "%" PRId64, author);
    const char *params[2] = {slug, author_text};
    store_result *found = NULL;
    store_status status = store_run(s, statements->remove, params, &found);
    if (status != STORE_OK)
        return status;
    int64_t removed = 0;
    if (store_result_rows(found) < 1)
        status = STORE_NOT_FOUND;
    else if (!store_result_int64(found, 0, 0, &removed))
        status = STORE_ERROR;
    store_result_free(found);
    *deleted = removed > 0;
    return status;
}

store_status store_article_favorite(store *s, const store_article_statements *statements, int64_t user,
                                    const char *slug, bool favorite, store_article *out, store_result **result)
{
    *result = NULL;
    char user_text[24];
    snprintf(user_text, sizeof user_text, "%" PRId64, user);
    const char *params[2] = {user_text, slug};
    const char *view_params[2] = {slug, user_text};
    /* Each item commits on its own, in order: the view sees the count the
     * trigger left, and a favourite that changed nothing is still read. */
    store_batch_item items[2] = {
        {.statement = favorite ? statements->favorite : statements->unfavorite, .params = params},
        {.statement = statements->by_slug, .params = view_params},
    };
    store_status status = store_batch(s, items, 2);
    store_result_free(items[0].result);
    if (status != STORE_OK) {
        store_result_free(items[1].result);
        return status;
    }
    return one_article(items[1].result, out, result);
}

/* The statements and parameters of query: the page's (viewer, limit,
 * offset, filters) and the count's (the filters, or the viewer for the
 * feed). texts holds the numbers as text (3 x 24 bytes). */
typedef struct list_call {
    store_statement page, count;
    const char *page_params[6];
    const char *count_params[3];
} list_call;

static void prepare_list(const store_article_statements *statements, const store_article_query *query,
                         char texts[3][24], list_call *call)
{
    snprintf(texts[0], 24, "%" PRId64, query->viewer);
    snprintf(texts[1], 24, "%" PRId64, query->limit);
    snprintf(texts[2], 24, "%" PRId64, query->offset);
    *call = (list_call){.page_params = {texts[0], texts[1], texts[2]}};
    if (query->feed) {
        call->page = statements->feed;
        call->count = statements->feed_count;
        call->count_params[0] = texts[0];
        return;
    }
    const char *filters[3] = {query->tag, query->author, query->favorited};
    int variant = 0, used = 0;
    for (int i = 0; i < 3; i++) {
        if (filters[i] == NULL)
            continue;
        variant |= 1 << i;
        call->page_params[3 + used] = filters[i];
        call->count_params[used++] = filters[i];
    }
    call->page = statements->list[variant];
    call->count = statements->count[variant];
}

static store_status read_count(store_result *found, int64_t *total)
{
    store_status status = store_result_rows(found) == 1 && store_result_int64(found, 0, 0, total)
                              ? STORE_OK
                              : STORE_ERROR;
    store_result_free(found);
    return status;
}

store_status store_article_count(store *s, const store_article_statements *statements,
                                 const store_article_query *query, int64_t *total)
{
    char texts[3][24];
    list_call call;
    prepare_list(statements, query, texts, &call);
    store_result *found = NULL;
    store_status status = store_run(s, call.count, call.count_params, &found);
    if (status != STORE_OK)
        return status;
    return read_count(found, total);
}

store_status store_article_list(store *s, const store_article_statements *statements,
                                const store_article_query *query, store_article *out, int *count,
                                int64_t *total, store_result **result)
{
    *result = NULL;
    *count = 0;
    char texts[3][24];
    list_call call;
    prepare_list(statements, query, texts, &call);
    store_batch_item items[2] = {
        {.statement = call.page, .params = call.page_params},
        {.statement = call.count, .params = call.count_params},
    };
    store_status status = store_batch(s, items, total != NULL ? 2 : 1);
    if (status == STORE_OK && total != NULL)
        status = read_count(items[1].result, total);
    else
        store_result_free(items[1].result);
    store_result *found = items[0].result;
    if (status != STORE_OK) {
        store_result_free(found);
        return status;
    }
    int rows = store_result_rows(found);
    for (int row = 0; row < rows && row < query->limit; row++) {
        status = parse_article(found, row, 0, &out[*count]);
        if (status != STORE_OK) {
            store_result_free(found);
            *count = 0;
            return status;
        }
        (*count)++;
    }
    *result = found;
    return STORE_OK;
}
