/* tests/integration/node/services/conduit/sql/comment_test.c: node/services/conduit/sql/comment.c against the
 * fixture's PostgreSQL: each call finds the article by slug itself, lists
 * are oldest first with `following` per viewer, timestamps are UTC with
 * milliseconds whatever the session's time zone, and a deletion tells a
 * missing article, a missing comment and somebody else's comment apart.
 * Users and articles are inserted with SQL here, not through their own
 * modules; every run uses names of its own, since the database outlives a
 * run. */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/store.h>

#include "conduit/sql/comment.h"
#include "demo_migrations.h"
#include "test_env.h"

static char run_tag[64];
static PGconn *connection;
static store_registry *registry;
static store_comment_statements statements;
static store *s;

static PGresult *run(const char *sql, int count, const char *const *params)
{
    PGresult *result = PQexecParams(connection, sql, count, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    return result;
}

static int64_t returned_id(PGresult *result)
{
    int64_t id = (int64_t)atoll(PQgetvalue(result, 0, 0));
    PQclear(result);
    return id;
}

static int64_t insert_user(const char *who)
{
    char email[128], username[96];
    snprintf(email, sizeof email, "%s_%s@example.com", who, run_tag);
    snprintf(username, sizeof username, "%s_%s", who, run_tag);
    const char *params[2] = {email, username};
    return returned_id(run("INSERT INTO users (email, username, password_hash, bio) VALUES ($1, $2, 'x', 'about "
                           "me') RETURNING id",
                           2, params));
}

/* An article by author; its slug goes into slug. */
static int64_t insert_article(int64_t author, const char *name, char *slug, size_t slug_size)
{
    snprintf(slug, slug_size, "%s-%s", name, run_tag);
    char author_text[24];
    snprintf(author_text, sizeof author_text, "%lld", (long long)author);
    const char *params[2] = {slug, author_text};
    return returned_id(run("INSERT INTO articles (slug, title, description, body, author_id) "
                           "VALUES ($1, $1, 'd', 'b', $2::bigint) RETURNING id",
                           2, params));
}

static void follow(int64_t follower, int64_t followee)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", (long long)follower);
    snprintf(b, sizeof b, "%lld", (long long)followee);
    const char *params[2] = {a, b};
    PQclear(run("INSERT INTO follows (follower_id, followee_id) VALUES ($1::bigint, $2::bigint)", 2, params));
}

static int setup(void **state)
{
    (void)state;
    snprintf(run_tag, sizeof run_tag, "%lx%lx", (long)getpid(), (long)time(NULL));
    store_config migrate_config = {.conninfo = TEST_DATABASE_URL(), .connect_timeout_s = 5};
    store_migrate_report report[2];
    char error[512];
    if (shoal_demo_migrate(&migrate_config, report, error, sizeof error) != STORE_OK)
        fail_msg("migrate: %s", error);
    connection = PQconnectdb(TEST_DATABASE_URL());
    if (PQstatus(connection) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(connection));
    registry = store_registry_new();
    assert_non_null(registry);
    assert_int_equal(store_comment_register(registry, &statements), 0);
    store_registry_freeze(registry);
    /* A session far from UTC: the timestamps must not follow it. */
    char conninfo[512];
    const char *url = TEST_DATABASE_URL();
    /* The URL may carry options of its own (tests/valgrind adds one). */
    snprintf(conninfo, sizeof conninfo, "%s%coptions=-c%%20TimeZone%%3DPacific%%2FChatham", url,
             strchr(url, '?') != NULL ? '&' : '?');
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5, .registry = registry};
    s = store_open(&config);
    assert_non_null(s);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(s);
    store_registry_free(registry);
    PQfinish(connection);
    return 0;
}

/* "2026-11-24T07:22:56.637Z" */
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

static void a_comment_is_created_on_an_existing_article_only(void **state)
{
    (void)state;
    int64_t author = insert_user("writer");
    int64_t commenter = insert_user("critic");
    char slug[128];
    insert_article(author, "created", slug, sizeof slug);
    store_comment comment;
    store_result *result = NULL;
    assert_int_equal(store_comment_create(s, &statements, "no-such-article-at-all", commenter, "hello", &comment,
                                          &result),
                     STORE_NOT_FOUND);
    assert_null(result);

    assert_int_equal(store_comment_create(s, &statements, slug, commenter, "first!", &comment, &result), STORE_OK);
    assert_true(comment.id > 0);
    assert_string_equal(comment.body, "first!");
    assert_iso8601(comment.created_at);
    assert_string_equal(comment.created_at, comment.updated_at);
    assert_int_equal(comment.author.id, commenter);
    char username[96];
    snprintf(username, sizeof username, "critic_%s", run_tag);
    assert_string_equal(comment.author.username, username);
    assert_string_equal(comment.author.bio, "about me");
    assert_null(comment.author.image);
    assert_false(comment.author.following);
    store_result_free(result);
}

static void timestamps_are_utc_with_milliseconds(void **state)
{
    (void)state;
    int64_t author = insert_user("clock");
    char slug[128], author_text[24];
    int64_t article = insert_article(author, "clock", slug, sizeof slug);
    char article_text[24];
    snprintf(article_text, sizeof article_text, "%lld", (long long)article);
    snprintf(author_text, sizeof author_text, "%lld", (long long)author);
    const char *params[2] = {article_text, author_text};
    /* Microseconds are cut, not rounded: .637891 is .637. */
    PQclear(run("INSERT INTO comments (article_id, author_id, body, created_at, updated_at) VALUES ($1::bigint, "
                "$2::bigint, 'tick', '2026-11-24 09:22:56.637891+02', '2026-11-24 07:22:57.000001+00')",
                2, params));
    store_result *result = NULL;
    int count = 0;
    assert_int_equal(store_comment_list(s, &statements, slug, 0, &result, &count), STORE_OK);
    assert_int_equal(count, 1);
    store_comment comment;
    assert_int_equal(store_comment_at(result, 0, &comment), STORE_OK);
    assert_string_equal(comment.created_at, "2026-11-24T07:22:56.637Z");
    assert_string_equal(comment.updated_at, "2026-11-24T07:22:57.000Z");
    store_result_free(result);
}

static void lists_are_oldest_first_with_following_per_viewer(void **state)
{
    (void)state;
    int64_t author = insert_user("host");
    int64_t followed = insert_user("loud");
    int64_t other = insert_user("quiet");
    int64_t viewer = insert_user("reader");
    follow(viewer, followed);
    char slug[128], empty_slug[128];
    insert_article(author, "listed", slug, sizeof slug);
    insert_article(author, "unread", empty_slug, sizeof empty_slug);

    store_result *result = NULL;
    int count = -1;
    assert_int_equal(store_comment_list(s, &statements, "no-such-article-at-all", viewer, &result, &count),
                     STORE_NOT_FOUND);
    assert_null(result);
    assert_int_equal(store_comment_list(s, &statements, empty_slug, viewer, &result, &count), STORE_OK);
    assert_int_equal(count, 0);
    store_result_free(result);

    const int64_t writers[4] = {followed, other, followed, author};
    const char *bodies[4] = {"one", "two", "three", "four"};
    int64_t ids[4];
    for (int i = 0; i < 4; i++) {
        store_comment comment;
        assert_int_equal(store_comment_create(s, &statements, slug, writers[i], bodies[i], &comment, &result),
                         STORE_OK);
        ids[i] = comment.id;
        store_result_free(result);
    }
    /* A comment on another article stays there. */
    store_comment elsewhere;
    assert_int_equal(store_comment_create(s, &statements, empty_slug, other, "elsewhere", &elsewhere, &result),
                     STORE_OK);
    store_result_free(result);

    const int64_t viewers[2] = {viewer, 0};
    for (int v = 0; v < 2; v++) {
        assert_int_equal(store_comment_list(s, &statements, slug, viewers[v], &result, &count), STORE_OK);
        assert_int_equal(count, 4);
        for (int i = 0; i < 4; i++) {
            store_comment comment;
            assert_int_equal(store_comment_at(result, i, &comment), STORE_OK);
            assert_int_equal(comment.id, ids[i]);
            assert_string_equal(comment.body, bodies[i]);
            assert_int_equal(comment.author.id, writers[i]);
            assert_iso8601(comment.created_at);
            assert_int_equal(comment.author.following, viewers[v] == viewer && writers[i] == followed);
        }
        store_comment beyond;
        assert_int_equal(store_comment_at(result, 4, &beyond), STORE_ERROR);
        store_result_free(result);
    }
}

static void deletion_tells_what_it_found(void **state)
{
    (void)state;
    int64_t author = insert_user("poster");
    int64_t commenter = insert_user("remover");
    int64_t stranger = insert_user("stranger");
    char slug[128], other_slug[128];
    insert_article(author, "deleting", slug, sizeof slug);
    insert_article(author, "keeping", other_slug, sizeof other_slug);
    store_comment comment, other;
    store_result *result = NULL;
    assert_int_equal(store_comment_create(s, &statements, slug, commenter, "mine", &comment, &result), STORE_OK);
    store_result_free(result);
    assert_int_equal(store_comment_create(s, &statements, other_slug, commenter, "there", &other, &result), STORE_OK);
    store_result_free(result);

    store_comment_deletion outcome;
    assert_int_equal(store_comment_delete(s, &statements, "no-such-article-at-all", comment.id, commenter, &outcome),
                     STORE_OK);
    assert_int_equal(outcome, STORE_COMMENT_NO_ARTICLE);
    /* Another article's comment is not on this one. */
    assert_int_equal(store_comment_delete(s, &statements, slug, other.id, commenter, &outcome), STORE_OK);
    assert_int_equal(outcome, STORE_COMMENT_NO_COMMENT);
    assert_int_equal(store_comment_delete(s, &statements, slug, 0, commenter, &outcome), STORE_OK);
    assert_int_equal(outcome, STORE_COMMENT_NO_COMMENT);
    /* Neither the stranger nor the article's author may delete it. */
    assert_int_equal(store_comment_delete(s, &statements, slug, comment.id, stranger, &outcome), STORE_OK);
    assert_int_equal(outcome, STORE_COMMENT_NOT_AUTHOR);
    assert_int_equal(store_comment_delete(s, &statements, slug, comment.id, author, &outcome), STORE_OK);
    assert_int_equal(outcome, STORE_COMMENT_NOT_AUTHOR);

    int count = 0;
    assert_int_equal(store_comment_list(s, &statements, slug, 0, &result, &count), STORE_OK);
    assert_int_equal(count, 1);
    store_result_free(result);

    assert_int_equal(store_comment_delete(s, &statements, slug, comment.id, commenter, &outcome), STORE_OK);
    assert_int_equal(outcome, STORE_COMMENT_DELETED);
    assert_int_equal(store_comment_delete(s, &statements, slug, comment.id, commenter, &outcome), STORE_OK);
    assert_int_equal(outcome, STORE_COMMENT_NO_COMMENT);
    assert_int_equal(store_comment_list(s, &statements, slug, 0, &result, &count), STORE_OK);
    assert_int_equal(count, 0);
    store_result_free(result);
    assert_int_equal(store_comment_list(s, &statements, other_slug, 0, &result, &count), STORE_OK);
    assert_int_equal(count, 1);
    store_result_free(result);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_comment_is_created_on_an_existing_article_only),
        cmocka_unit_test(timestamps_are_utc_with_milliseconds),
        cmocka_unit_test(lists_are_oldest_first_with_following_per_viewer),
        cmocka_unit_test(deletion_tells_what_it_found),
    };
    return cmocka_run_group_tests_name("integration.store.comment", tests, setup, teardown);
}
