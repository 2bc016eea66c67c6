/* tests/integration/node/services/conduit/schema_test.c: migration 0003 against the
 * fixture's PostgreSQL: emails unique regardless of case, usernames and
 * slugs unique, and favorites_count exact when many connections favourite
 * one article at once (and when the same favourite is sent twice). Every
 * run uses names of its own, since the database outlives a test run. */
#include <libpq-fe.h>
#include <pthread.h>
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

#include <shoal/config.h>
#include <shoal/store.h>

#include "demo_migrations.h"
#include "test_env.h"

#define FAVOURITING_USERS 100
#define CONNECTIONS 8

static char run_tag[64];

static PGconn *connect_database(void)
{
    PGconn *connection = PQconnectdb(TEST_DATABASE_URL());
    if (PQstatus(connection) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(connection));
    return connection;
}

/* Runs sql with params; returns the SQLSTATE ("" on success) into state. */
static PGresult *run(PGconn *connection, const char *sql, int count, const char *const *params)
{
    return PQexecParams(connection, sql, count, NULL, params, NULL, NULL, 0);
}

static void expect_ok(PGresult *result, PGconn *connection)
{
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg("%s", PQerrorMessage(connection));
}

static const char *sqlstate(const PGresult *result)
{
    const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    return state != NULL ? state : "";
}

static long long insert_user(PGconn *connection, const char *email, const char *username)
{
    const char *params[2] = {email, username};
    PGresult *result =
        run(connection, "INSERT INTO users (email, username, password_hash) VALUES ($1, $2, 'x') RETURNING id", 2,
            params);
    expect_ok(result, connection);
    long long id = atoll(PQgetvalue(result, 0, 0));
    PQclear(result);
    return id;
}

static int migrate(void **state)
{
    (void)state;
    snprintf(run_tag, sizeof run_tag, "%ld_%ld", (long)getpid(), (long)time(NULL));
    store_config config = {.conninfo = TEST_DATABASE_URL(), .connect_timeout_s = 5};
    store_migrate_report report[2];
    char error[512];
    if (shoal_demo_migrate(&config, report, error, sizeof error) != STORE_OK)
        fail_msg("migrate: %s", error);
    assert_true(report[0].current_version >= 2); /* conduit */
    return 0;
}

static void emails_are_unique_regardless_of_case(void **state)
{
    (void)state;
    PGconn *connection = connect_database();
    char email[128], shouted[128], username[96], other[96];
    snprintf(email, sizeof email, "case_%s@example.com", run_tag);
    snprintf(shouted, sizeof shouted, "CASE_%s@EXAMPLE.COM", run_tag);
    snprintf(username, sizeof username, "case_%s", run_tag);
    snprintf(other, sizeof other, "case2_%s", run_tag);
    insert_user(connection, email, username);
    const char *params[2] = {shouted, other};
    PGresult *result =
        run(connection, "INSERT INTO users (email, username, password_hash) VALUES ($1, $2, 'x')", 2, params);
    assert_string_equal(sqlstate(result), "23505");
    assert_string_equal(PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME), "users_email_key");
    PQclear(result);
    /* and found by either spelling */
    const char *lookup[1] = {shouted};
    result = run(connection, "SELECT username FROM users WHERE email = $1", 1, lookup);
    expect_ok(result, connection);
    assert_int_equal(PQntuples(result), 1);
    PQclear(result);
    PQfinish(connection);
}

static void usernames_and_slugs_are_unique(void **state)
{
    (void)state;
    PGconn *connection = connect_database();
    char email[128], email2[128], username[96];
    snprintf(email, sizeof email, "name_%s@example.com", run_tag);
    snprintf(email2, sizeof email2, "name2_%s@example.com", run_tag);
    snprintf(username, sizeof username, "name_%s", run_tag);
    long long author = insert_user(connection, email, username);
    const char *params[2] = {email2, username};
    PGresult *result =
        run(connection, "INSERT INTO users (email, username, password_hash) VALUES ($1, $2, 'x')", 2, params);
    assert_string_equal(sqlstate(result), "23505");
    assert_string_equal(PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME), "users_username_key");
    PQclear(result);

    char author_text[32], slug[96];
    snprintf(author_text, sizeof author_text, "%lld", author);
    snprintf(slug, sizeof slug, "slug-%s", run_tag);
    const char *article[2] = {slug, author_text};
    const char *insert_article =
        "INSERT INTO articles (slug, title, description, body, author_id) VALUES ($1, 't', 'd', 'b', $2)";
    result = run(connection, insert_article, 2, article);
    expect_ok(result, connection);
    PQclear(result);
    result = run(connection, insert_article, 2, article);
    assert_string_equal(sqlstate(result), "23505");
    assert_string_equal(PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME), "articles_slug_key");
    PQclear(result);
    PQfinish(connection);
}

typedef struct favouriter {
    long long article;
    const long long *users;
    size_t first, count;
    const char *sql;
} favouriter;

/* Each thread has its own connection, as each node's worker has: the
 * statements race in PostgreSQL, not in the client. */
static void *favourite_all(void *data)
{
    const favouriter *work = data;
    PGconn *connection = PQconnectdb(TEST_DATABASE_URL());
    if (PQstatus(connection) != CONNECTION_OK) {
        PQfinish(connection);
        return (void *)1;
    }
    char article[32];
    snprintf(article, sizeof article, "%lld", work->article);
    void *failed = NULL;
    for (size_t i = work->first; i < work->first + work->count; i++) {
        char user[32];
        snprintf(user, sizeof user, "%lld", work->users[i]);
        const char *params[2] = {user, article};
        PGresult *result = PQexecParams(connection, work->sql, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK)
            failed = (void *)1;
        PQclear(result);
    }
    PQfinish(connection);
    return failed;
}

static long long favorites_count(PGconn *connection, long long article)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", article);
    const char *params[1] = {text};
    PGresult *result = run(connection, "SELECT favorites_count FROM articles WHERE id = $1", 1, params);
    expect_ok(result, connection);
    long long count = atoll(PQgetvalue(result, 0, 0));
    PQclear(result);
    return count;
}

/* Every user favourites from CONNECTIONS connections at once, each user
 * twice (the second is a no-op), then all unfavourite the same way. */
static void run_everywhere(const char *sql, long long article, const long long *users)
{
    pthread_t threads[2 * CONNECTIONS];
    favouriter work[2 * CONNECTIONS];
    size_t share = FAVOURITING_USERS / CONNECTIONS;
    for (size_t t = 0; t < 2 * CONNECTIONS; t++) {
        size_t slice = t % CONNECTIONS;
        size_t first = slice * share;
        size_t count = slice == CONNECTIONS - 1 ? FAVOURITING_USERS - first : share;
        work[t] = (favouriter){.article = article, .users = users, .first = first, .count = count, .sql = sql};
        assert_int_equal(pthread_create(&threads[t], NULL, favourite_all, &work[t]), 0);
    }
    for (size_t t = 0; t < 2 * CONNECTIONS; t++) {
        void *failed = NULL;
        assert_int_equal(pthread_join(threads[t], &failed), 0);
        assert_null(failed);
    }
}

static void favorites_count_is_exact_under_concurrency(void **state)
{
    (void)state;
    PGconn *connection = connect_database();
    long long users[FAVOURITING_USERS];
    for (size_t i = 0; i < FAVOURITING_USERS; i++) {
        char email[128], username[96];
        snprintf(email, sizeof email, "fan%zu_%s@example.com", i, run_tag);
        snprintf(username, sizeof username, "fan%zu_%s", i, run_tag);
        users[i] = insert_user(connection, email, username);
    }
    char author_text[32], slug[96];
    snprintf(author_text, sizeof author_text, "%lld", users[0]);
    snprintf(slug, sizeof slug, "popular-%s", run_tag);
    const char *article_params[2] = {slug, author_text};
    PGresult *result = run(connection,
                           "INSERT INTO articles (slug, title, description, body, author_id) "
                           "VALUES ($1, 't', 'd', 'b', $2) RETURNING id",
                           2, article_params);
    expect_ok(result, connection);
    long long article = atoll(PQgetvalue(result, 0, 0));
    PQclear(result);

    run_everywhere("INSERT INTO favorites (user_id, article_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", article,
                   users);
    assert_int_equal(favorites_count(connection, article), FAVOURITING_USERS);
    run_everywhere("DELETE FROM favorites WHERE user_id = $1 AND article_id = $2", article, users);
    assert_int_equal(favorites_count(connection, article), 0);
    PQfinish(connection);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emails_are_unique_regardless_of_case),
        cmocka_unit_test(usernames_and_slugs_are_unique),
        cmocka_unit_test(favorites_count_is_exact_under_concurrency),
    };
    return cmocka_run_group_tests(tests, migrate, NULL);
}
