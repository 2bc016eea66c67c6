/* node/services/conduit/sql/article.h: RealWorld articles (tables articles, article_tags,
 * favorites; migration 0003), each read as the API shows it: with its
 * author, its tags and, for a viewer, whether he favourited it and follows
 * its author. As in node/services/conduit/sql/user.h, strings live in *result, which the
 * caller releases (node/ ties it to the request with shoal_keep_result).
 *
 * Every read of articles is one statement: a page of a list carries the
 * authors, the tags (aggregated) and the viewer's flags; its total is one
 * more statement in the same round trip, or counted alone for a cache. */
#ifndef STORE_ARTICLE_H
#define STORE_ARTICLE_H

#include <stdbool.h>
#include <stdint.h>

#include <shoal/store.h>

typedef struct store_article {
    int64_t id;
    const char *slug;
    const char *title;
    const char *description;
    const char *body;     /* NULL in lists */
    const char *tag_list; /* a JSON array of strings, sorted by bytes: ["dragons","training"] */
    const char *created_at; /* ISO 8601 in UTC with milliseconds: 2026-11-24T07:22:56.637Z */
    const char *updated_at;
    int64_t favorites_count; /* kept exact by the schema's triggers */
    int64_t author_id;
    const char *author_username;
    const char *author_bio;   /* NULL for none */
    const char *author_image; /* NULL for none */
    bool favorited; /* by the viewer; false without one */
    bool following; /* the viewer follows the author; false without one */
} store_article;

/* The list filters, one statement for each combination, so that no plan
 * is made for a filter that is not there. */
#define STORE_ARTICLE_LIST_VARIANTS 8

typedef struct store_article_statements {
    store_statement by_slug;
    store_statement by_id;
    store_statement viewer_flags;
    store_statement add_tags;
    store_statement insert;
    store_statement owner;
    store_statement update;
    store_statement remove;
    store_statement favorite;
    store_statement unfavorite;
    store_statement list[STORE_ARTICLE_LIST_VARIANTS];
    store_statement count[STORE_ARTICLE_LIST_VARIANTS];
    store_statement feed;
    store_statement feed_count;
} store_article_statements;

/* Adds the statements, and names the field the slug's unique constraint
 * guards (articles_slug_key -> slug). 0 or -1. */
int store_article_register(store_registry *registry, store_article_statements *statements);

/* The article of slug as viewer sees it (viewer 0: nobody). STORE_NOT_FOUND
 * when there is none. */
store_status store_article_get(store *s, const store_article_statements *statements, int64_t viewer,
                               const char *slug, store_article *out, store_result **result);
/* The viewer's flags alone, for an article read from the cache: one
 * statement on two primary keys. */
store_status store_article_viewer(store *s, const store_article_statements *statements, int64_t viewer,
                                  int64_t article, int64_t author, bool *favorited, bool *following);

/* What a write sets. tags is a JSON array of distinct strings (the node
 * checked them), or NULL: none on create, unchanged on update. On update a
 * NULL title, description or body keeps the stored one. */
typedef struct store_article_input {
    const char *title;
    const char *description;
    const char *body;
    const char *tags;
} store_article_input;

/* A new article of author under slug, and the article as its author sees
 * it. STORE_CONFLICT (field "slug") when the slug is taken: the caller
 * tries another. Its tags are created first, each committed on its own,
 * in the same round trip. */
store_status store_article_create(store *s, const store_article_statements *statements, int64_t author,
                                  const char *slug, const store_article_input *input, store_article *out,
                                  store_result **result);

/* Who owns slug, and its title: STORE_NOT_FOUND when there is no such
 * article. title lives in *result. */
store_status store_article_owner(store *s, const store_article_statements *statements, const char *slug,
                                 int64_t *id, int64_t *author, const char **title, store_result **result);
/* Changes article id of author (slug NULL: kept) and reads it back as the
 * author sees it, in one round trip. STORE_NOT_FOUND when it is gone or
 * not the author's; STORE_CONFLICT (field "slug") when slug is taken. */
store_status store_article_update(store *s, const store_article_statements *statements, int64_t id,
                                  int64_t author, const char *slug, const store_article_input *input,
                                  store_article *out, store_result **result);
/* Deletes slug if author owns it. STORE_NOT_FOUND when there is no such
 * article; STORE_OK with *deleted false when it is somebody else's. */
store_status store_article_delete(store *s, const store_article_statements *statements, const char *slug,
                                  int64_t author, bool *deleted);

/* user favourites slug (again is no change), or no longer (again is no
 * change), then the article as user sees it: one round trip, the count as
 * the triggers left it. STORE_NOT_FOUND when there is no such article. */
store_status store_article_favorite(store *s, const store_article_statements *statements, int64_t user,
                                    const char *slug, bool favorite, store_article *out, store_result **result);

/* A page of a list, newest first (created_at, then id). NULL filters are
 * not applied; with feed set only articles by authors viewer follows are
 * listed, and the filters are ignored. */
typedef struct store_article_query {
    const char *tag;
    const char *author;    /* username */
    const char *favorited; /* by this username */
    bool feed;
    int64_t viewer; /* 0: nobody */
    int64_t limit;
    int64_t offset;
} store_article_query;

/* Fills out[0..*count) (out holds query->limit articles, body NULL) and,
 * unless total is NULL, *total, the number of all matches, counted in the
 * same round trip. */
store_status store_article_list(store *s, const store_article_statements *statements,
                                const store_article_query *query, store_article *out, int *count,
                                int64_t *total, store_result **result);
/* The number of all matches alone (limit, offset and, except for the
 * feed, the viewer do not matter). */
store_status store_article_count(store *s, const store_article_statements *statements,
                                 const store_article_query *query, int64_t *total);

#endif
