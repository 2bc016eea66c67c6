/* tests/integration/node/services/conduit/sql/article_test.c: node/services/conduit/sql/article.c and node/services/conduit/sql/tag.c
 * against a real PostgreSQL, in a scratch database of their own (so that
 * totals and the tag list are this test's alone), migrated as a node does:
 * the view's shape (tags sorted, ISO timestamps, the author), taken slugs,
 * every list filter alone and together with totals and paging, the feed,
 * updates that move the slug and replace tags, deletes by the owner only,
 * and favourites whose count stays exact when 100 users favourite one
 * article from 8 connections at once. */
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conduit/sql/article.h"
#include "demo_migrations.h"
#include "conduit/sql/tag.h"
#include "test_env.h"
#include "test_pg.h"
#include "conduit/sql/user.h"

#define SCRATCH "shoal_test_store_article"
#define FAVOURITING_USERS 100
#define CONNECTIONS 8

static char conninfo[512];
static store_registry *registry;
static store_user_statements users;
static store_article_statements articles;
static store_tag_statements tags;
static store *shared;

static store *open_store(void)
{
    store_config config = {.conninfo = conninfo,
                           .connect_timeout_s = 2,
                           .answer_timeout_ms = 10000,
                           .application_name = "store-article-test",
                           .registry = registry};
    store *s = store_open(&config);
    assert_non_null(s);
    return s;
}

static int64_t new_user(const char *name)
{
    char email[128];
    snprintf(email, sizeof email, "%s@example.com", name);
    store_user user;
    store_result *result = NULL;
    store_status status = store_user_create(shared, &users, email, name, "x", &user, &result);
    if (status != STORE_OK)
        fail_msg("user %s: %d %s", name, status, store_last_error(shared)->message);
    store_result_free(result);
    return user.id;
}

static void follow(int64_t follower, int64_t followee)
{
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO follows (follower_id, followee_id) VALUES (%lld, %lld)",
             (long long)follower, (long long)followee);
    test_pg_exec(conninfo, sql);
}

/* Creates an article; its slug into slug (64 bytes). */
static void create(int64_t author, const char *slug, const char *title, const char *tag_json, char *out_slug)
{
    store_article_input input = {.title = title, .description = "about it", .body = "the body", .tags = tag_json};
    store_article article;
    store_result *result = NULL;
    store_status status = store_article_create(shared, &articles, author, slug, &input, &article, &result);
    if (status != STORE_OK)
        fail_msg("create %s: %d %s", slug, status, store_last_error(shared)->message);
    if (out_slug != NULL)
        snprintf(out_slug, 64, "%s", article.slug);
    store_result_free(result);
}

/* 2026-11-24T07:22:56.637Z */
static void expect_timestamp(const char *text)
{
    assert_int_equal(strlen(text), 24);
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < 24; i++) {
        if (shape[i] == 'd')
            assert_true(text[i] >= '0' && text[i] <= '9');
        else
            assert_int_equal(text[i], shape[i]);
    }
}

typedef struct page {
    store_article items[16];
    int count;
    int64_t total;
    store_result *result;
} page;

static void list(const store_article_query *query, page *out)
{
    assert_true(query->limit <= 16);
    store_status status = store_article_list(shared, &articles, query, out->items, &out->count, &out->total, &out->result);
    if (status != STORE_OK)
        fail_msg("list: %d %s", status, store_last_error(shared)->message);
}

static void expect_slugs(page *got, int64_t total, const char *const *slugs, int count)
{
    assert_int_equal(got->total, total);
    assert_int_equal(got->count, count);
    for (int i = 0; i < count; i++) {
        assert_string_equal(got->items[i].slug, slugs[i]);
        assert_null(got->items[i].body); /* lists leave it out */
    }
    store_result_free(got->result);
}

/* ---- set-up ------------------------------------------------------------------------- */

static int set_up(void **state)
{
    (void)state;
    test_pg_scratch_create(SCRATCH, conninfo, sizeof conninfo);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 2};
    store_migrate_report report[2];
    char error[512];
    if (shoal_demo_migrate(&config, report, error, sizeof error) != STORE_OK)
        fail_msg("migrate: %s", error);
    registry = store_registry_new();
    assert_int_equal(store_user_register(registry, &users), 0);
    assert_int_equal(store_article_register(registry, &articles), 0);
    assert_int_equal(store_tag_register(registry, &tags), 0);
    store_registry_freeze(registry);
    shared = open_store();
    return 0;
}

static int tear_down(void **state)
{
    (void)state;
    store_close(shared);
    store_registry_free(registry);
    test_pg_scratch_drop(SCRATCH);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void create_read_and_taken_slugs(void **state)
{
    (void)state;
    int64_t writer = new_user("writer");
    int64_t reader = new_user("reader");
    store_article_input input = {.title = "How to train your dragon",
                                 .description = "Ever wonder how?",
                                 .body = "Very carefully.",
                                 .tags = "[\"training\",\"dragons\",\"\\\"quoted\\\"\"]"};
    store_article article;
    store_result *result = NULL;
    assert_int_equal(store_article_create(shared, &articles, writer, "how-to-train-your-dragon", &input, &article,
                                          &result),
                     STORE_OK);
    assert_string_equal(article.slug, "how-to-train-your-dragon");
    assert_string_equal(article.body, "Very carefully.");
    /* Sorted by bytes, escaped as JSON. */
    assert_string_equal(article.tag_list, "[\"\\\"quoted\\\"\", \"dragons\", \"training\"]");
    assert_int_equal(article.favorites_count, 0);
    assert_string_equal(article.author_username, "writer");
    assert_null(article.author_bio);
    assert_false(article.favorited);
    expect_timestamp(article.created_at);
    expect_timestamp(article.updated_at);
    int64_t id = article.id;
    store_result_free(result);

    /* Read back by slug: the same, with tags from article_tags now. */
    assert_int_equal(store_article_get(shared, &articles, reader, "how-to-train-your-dragon", &article, &result),
                     STORE_OK);
    assert_int_equal(article.id, id);
    assert_string_equal(article.tag_list, "[\"\\\"quoted\\\"\", \"dragons\", \"training\"]");
    assert_string_equal(article.description, "Ever wonder how?");
    assert_int_equal(article.author_id, writer);
    store_result_free(result);
    assert_int_equal(store_article_get(shared, &articles, 0, "no-such-article", &article, &result), STORE_NOT_FOUND);
    assert_null(result);

    /* The same slug again is taken, and says so; the tags stay. */
    input.tags = NULL;
    assert_int_equal(store_article_create(shared, &articles, reader, "how-to-train-your-dragon", &input, &article,
                                          &result),
                     STORE_CONFLICT);
    assert_null(result);
    assert_string_equal(store_last_error(shared)->field, "slug");
    /* Without tags: an empty list. */
    assert_int_equal(store_article_create(shared, &articles, reader, "how-to-train-your-dragon-abc123", &input,
                                          &article, &result),
                     STORE_OK);
    assert_string_equal(article.tag_list, "[]");
    store_result_free(result);

    /* The tag list: every tag in use, sorted. */
    const char *list_text = NULL;
    assert_int_equal(store_tag_list(shared, &tags, &list_text, &result), STORE_OK);
    assert_string_equal(list_text, "[\"\\\"quoted\\\"\", \"dragons\", \"training\"]");
    store_result_free(result);
}

static void lists_filters_and_paging(void **state)
{
    (void)state;
    int64_t ann = new_user("ann"), bob = new_user("bob"), cid = new_user("cid");
    /* Created in this order, so newest first is the reverse. */
    create(ann, "l1", "L1", "[\"red\"]", NULL);
    create(bob, "l2", "L2", "[\"red\",\"blue\"]", NULL);
    create(ann, "l3", "L3", "[\"blue\"]", NULL);
    create(cid, "l4", "L4", NULL, NULL);
    create(ann, "l5", "L5", "[\"red\"]", NULL);
    store_article article;
    store_result *result = NULL;
    /* bob favourites l1 and l5, cid favourites l5. */
    assert_int_equal(store_article_favorite(shared, &articles, bob, "l1", true, &article, &result), STORE_OK);
    store_result_free(result);
    assert_int_equal(store_article_favorite(shared, &articles, bob, "l5", true, &article, &result), STORE_OK);
    store_result_free(result);
    assert_int_equal(store_article_favorite(shared, &articles, cid, "l5", true, &article, &result), STORE_OK);
    store_result_free(result);

    page got;
    list(&(store_article_query){.tag = "red", .limit = 10}, &got);
    expect_slugs(&got, 3, (const char *[]){"l5", "l2", "l1"}, 3);
    list(&(store_article_query){.author = "ann", .limit = 10}, &got);
    expect_slugs(&got, 3, (const char *[]){"l5", "l3", "l1"}, 3);
    /* Usernames are citext: any case finds them. */
    list(&(store_article_query){.author = "ANN", .tag = "red", .limit = 10}, &got);
    expect_slugs(&got, 2, (const char *[]){"l5", "l1"}, 2);
    list(&(store_article_query){.favorited = "bob", .limit = 10}, &got);
    expect_slugs(&got, 2, (const char *[]){"l5", "l1"}, 2);
    list(&(store_article_query){.favorited = "bob", .author = "ann", .tag = "red", .limit = 10}, &got);
    expect_slugs(&got, 2, (const char *[]){"l5", "l1"}, 2);
    list(&(store_article_query){.favorited = "cid", .tag = "blue", .limit = 10}, &got);
    expect_slugs(&got, 0, NULL, 0);
    list(&(store_article_query){.author = "nobody-at-all", .limit = 10}, &got);
    expect_slugs(&got, 0, NULL, 0);

    /* Paging: the total counts every match, the page only its share; past
     * the end is an empty page that still has the total. */
    list(&(store_article_query){.tag = "red", .limit = 2, .offset = 1}, &got);
    expect_slugs(&got, 3, (const char *[]){"l2", "l1"}, 2);
    list(&(store_article_query){.tag = "red", .limit = 2, .offset = 5}, &got);
    expect_slugs(&got, 3, NULL, 0);
    list(&(store_article_query){.tag = "red", .limit = 0}, &got);
    expect_slugs(&got, 3, NULL, 0);
    /* The count alone, for the cache; a page without it. */
    int64_t total = -1;
    assert_int_equal(store_article_count(shared, &articles, &(store_article_query){.tag = "red", .author = "ann"},
                                         &total),
                     STORE_OK);
    assert_int_equal(total, 2);
    assert_int_equal(store_article_count(shared, &articles, &(store_article_query){.limit = 1}, &total), STORE_OK);
    assert_true(total >= 5);
    assert_int_equal(store_article_list(shared, &articles, &(store_article_query){.author = "bob", .limit = 5},
                                        got.items, &got.count, NULL, &got.result),
                     STORE_OK);
    assert_int_equal(got.count, 1);
    assert_string_equal(got.items[0].slug, "l2");
    store_result_free(got.result);

    /* The viewer's flags in a list, and the count of favourites. */
    list(&(store_article_query){.tag = "red", .viewer = bob, .limit = 3}, &got);
    assert_true(got.items[0].favorited);
    assert_int_equal(got.items[0].favorites_count, 2);
    assert_false(got.items[1].favorited); /* his own l2 */
    assert_true(got.items[2].favorited);
    assert_string_equal(got.items[0].tag_list, "[\"red\"]");
    assert_string_equal(got.items[1].tag_list, "[\"blue\", \"red\"]");
    store_result_free(got.result);

    /* The feed: articles by whom the viewer follows, with `following`. */
    follow(cid, ann);
    follow(cid, bob);
    list(&(store_article_query){.feed = true, .viewer = cid, .limit = 10}, &got);
    assert_int_equal(got.total, 4);
    assert_true(got.items[0].following);
    assert_true(got.items[0].favorited); /* cid favourited l5 */
    expect_slugs(&got, 4, (const char *[]){"l5", "l3", "l2", "l1"}, 4);
    list(&(store_article_query){.feed = true, .viewer = ann, .limit = 10}, &got);
    expect_slugs(&got, 0, NULL, 0);
    assert_int_equal(store_article_count(shared, &articles, &(store_article_query){.feed = true, .viewer = cid},
                                         &total),
                     STORE_OK);
    assert_int_equal(total, 4);

    /* The viewer's flags alone, for a cached article. */
    bool favorited = false, following = false;
    assert_int_equal(store_article_viewer(shared, &articles, cid, got.items[0].id, ann, &favorited, &following),
                     STORE_OK);
    list(&(store_article_query){.author = "ann", .limit = 1}, &got);
    assert_int_equal(store_article_viewer(shared, &articles, cid, got.items[0].id, got.items[0].author_id,
                                          &favorited, &following),
                     STORE_OK);
    assert_true(favorited);
    assert_true(following);
    assert_int_equal(store_article_viewer(shared, &articles, bob, got.items[0].id, got.items[0].author_id,
                                          &favorited, &following),
                     STORE_OK);
    assert_true(favorited);
    assert_false(following);
    store_result_free(got.result);
}

static void updates_and_deletes(void **state)
{
    (void)state;
    int64_t owner = new_user("owner"), other = new_user("other");
    create(owner, "first-title", "First title", "[\"one\",\"two\"]", NULL);
    int64_t id = 0, author = 0;
    const char *title = NULL;
    store_result *result = NULL;
    assert_int_equal(store_article_owner(shared, &articles, "first-title", &id, &author, &title, &result), STORE_OK);
    assert_int_equal(author, owner);
    assert_string_equal(title, "First title");
    store_result_free(result);
    assert_int_equal(store_article_owner(shared, &articles, "nothing-here", &id, &author, &title, &result),
                     STORE_NOT_FOUND);

    /* The body alone: slug and tags stay. */
    store_article article;
    store_article_input input = {.body = "new body"};
    assert_int_equal(store_article_update(shared, &articles, id, owner, NULL, &input, &article, &result), STORE_OK);
    assert_string_equal(article.slug, "first-title");
    assert_string_equal(article.body, "new body");
    assert_string_equal(article.title, "First title");
    assert_string_equal(article.tag_list, "[\"one\", \"two\"]");
    store_result_free(result);
    /* A new title and slug, and new tags replacing the old. */
    input = (store_article_input){.title = "Second title", .tags = "[\"three\",\"two\"]"};
    assert_int_equal(store_article_update(shared, &articles, id, owner, "second-title", &input, &article, &result),
                     STORE_OK);
    assert_string_equal(article.slug, "second-title");
    assert_string_equal(article.body, "new body");
    assert_string_equal(article.tag_list, "[\"three\", \"two\"]");
    store_result_free(result);
    assert_int_equal(store_article_get(shared, &articles, 0, "first-title", &article, &result), STORE_NOT_FOUND);
    assert_int_equal(store_article_get(shared, &articles, 0, "second-title", &article, &result), STORE_OK);
    assert_string_equal(article.tag_list, "[\"three\", \"two\"]");
    store_result_free(result);
    /* No tags at all. */
    input = (store_article_input){.tags = "[]"};
    assert_int_equal(store_article_update(shared, &articles, id, owner, NULL, &input, &article, &result), STORE_OK);
    assert_string_equal(article.tag_list, "[]");
    store_result_free(result);
    /* A slug another article has is a conflict naming the slug. */
    create(other, "taken-slug", "Taken slug", NULL, NULL);
    input = (store_article_input){.title = "Taken slug"};
    assert_int_equal(store_article_update(shared, &articles, id, owner, "taken-slug", &input, &article, &result),
                     STORE_CONFLICT);
    assert_string_equal(store_last_error(shared)->field, "slug");
    /* Not the author's: nothing changes. */
    input = (store_article_input){.body = "vandalised"};
    assert_int_equal(store_article_update(shared, &articles, id, other, NULL, &input, &article, &result),
                     STORE_NOT_FOUND);
    assert_int_equal(store_article_get(shared, &articles, 0, "second-title", &article, &result), STORE_OK);
    assert_string_equal(article.body, "new body");
    store_result_free(result);

    /* Deletes: somebody else's is refused, the owner's goes, twice is 404. */
    bool deleted = true;
    assert_int_equal(store_article_delete(shared, &articles, "second-title", other, &deleted), STORE_OK);
    assert_false(deleted);
    assert_int_equal(store_article_delete(shared, &articles, "second-title", owner, &deleted), STORE_OK);
    assert_true(deleted);
    assert_int_equal(store_article_delete(shared, &articles, "second-title", owner, &deleted), STORE_NOT_FOUND);
    assert_int_equal(store_article_get(shared, &articles, 0, "second-title", &article, &result), STORE_NOT_FOUND);
    /* Its tags are no longer listed; the others' are. */
    const char *list_text = NULL;
    assert_int_equal(store_tag_list(shared, &tags, &list_text, &result), STORE_OK);
    assert_null(strstr(list_text, "\"three\""));
    assert_non_null(strstr(list_text, "\"red\""));
    store_result_free(result);
}

typedef struct favouriter {
    const int64_t *users;
    int first, count;
    bool favorite;
    int failures;
} favouriter;

static void *favourite_all(void *data)
{
    favouriter *work = data;
    store *s = open_store();
    for (int i = work->first; i < work->first + work->count; i++) {
        /* Each user twice: the second changes nothing. */
        for (int again = 0; again < 2; again++) {
            store_article article;
            store_result *result = NULL;
            if (store_article_favorite(s, &articles, work->users[i], "popular", work->favorite, &article, &result) !=
                    STORE_OK ||
                article.favorited != work->favorite)
                work->failures++;
            store_result_free(result);
        }
    }
    store_close(s);
    return NULL;
}

static int64_t count_of_popular(void)
{
    store_article article;
    store_result *result = NULL;
    assert_int_equal(store_article_get(shared, &articles, 0, "popular", &article, &result), STORE_OK);
    int64_t count = article.favorites_count;
    store_result_free(result);
    return count;
}

static void run_favouriters(const int64_t *users, bool favorite)
{
    pthread_t threads[CONNECTIONS];
    favouriter work[CONNECTIONS];
    int share = FAVOURITING_USERS / CONNECTIONS;
    for (int t = 0; t < CONNECTIONS; t++) {
        int first = t * share;
        int count = t == CONNECTIONS - 1 ? FAVOURITING_USERS - first : share;
        work[t] = (favouriter){.users = users, .first = first, .count = count, .favorite = favorite};
        assert_int_equal(pthread_create(&threads[t], NULL, favourite_all, &work[t]), 0);
    }
    for (int t = 0; t < CONNECTIONS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(work[t].failures, 0);
    }
}

static void favourites_are_exact_under_concurrency(void **state)
{
    (void)state;
    int64_t author = new_user("celebrity");
    create(author, "popular", "Popular", NULL, NULL);
    int64_t users_ids[FAVOURITING_USERS];
    for (int i = 0; i < FAVOURITING_USERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "fan%03d", i);
        users_ids[i] = new_user(name);
    }
    run_favouriters(users_ids, true);
    assert_int_equal(count_of_popular(), FAVOURITING_USERS);
    run_favouriters(users_ids, false);
    assert_int_equal(count_of_popular(), 0);
    /* An unknown slug is not found, and favourites nothing. */
    store_article article;
    store_result *result = NULL;
    assert_int_equal(store_article_favorite(shared, &articles, author, "no-such-slug", true, &article, &result),
                     STORE_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_read_and_taken_slugs),
        cmocka_unit_test(lists_filters_and_paging),
        cmocka_unit_test(updates_and_deletes),
        cmocka_unit_test(favourites_are_exact_under_concurrency),
    };
    return cmocka_run_group_tests(tests, set_up, tear_down);
}
