/* tests/integration/node/services/conduit/seed_test.c: `shoal-node seed` (node/services/conduit/seed_command.c,
 * node/services/conduit/seed.c) against the fixture's PostgreSQL, in scratch databases of
 * its own: the same options give the same data in two fresh databases and
 * another seed another data set; the invariants the API relies on hold
 * (favorites_count exact, slugs unique, authors present, tags unique per
 * article, nobody following himself); a seeded database is refused without
 * --reset; the favourite triggers work again afterwards; and a seeded user
 * logs in through POST /api/users/login on a node over HTTP. */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <shoal/ext/request_id.h>
#include <shoal/ext/session.h>
#include <shoal/store.h>

#include "conduit/api.h"
#include "conduit/seed_command.h"
#include "demo_migrations.h"
#include "demo_settings.h"
#include "test_env.h"
#include "test_node.h"
#include "test_pg.h"

#define SCRATCH_A "shoal_seed_test_a"
#define SCRATCH_B "shoal_seed_test_b"
#define USERS "50"
#define ARTICLES "200"

static char conninfo_a[512], conninfo_b[512];

static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

/* `shoal-node seed --database-url CONNINFO ARGS...` as main runs it, with
 * a cheap password hash (the node of the login test uses the same). */
static int seed(const char *conninfo, const char *const *args, store_seed_report *report)
{
    const char *argv[32] = {"shoal-node", "seed", "--database-url", conninfo, "--password-ops-limit", "1",
                            "--password-mem-limit", "64k"};
    int argc = 8;
    for (size_t i = 0; args[i] != NULL; i++)
        argv[argc++] = args[i];
    shoal_config config;
    char error[512];
    if (shoal_demo_config_load(&config, argc, (char **)argv, no_environment, error, sizeof error) != 0)
        fail_msg("config: %s", error);
    assert_int_equal(config.command, SHOAL_COMMAND_SEED);
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    int rc = shoal_seed_run(&config, config.settings, out, stderr, report);
    fclose(out);
    shoal_config_free(&config);
    return rc;
}

#define SEED_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void migrate(const char *conninfo)
{
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5};
    store_migrate_report report[2];
    char error[512];
    if (shoal_demo_migrate(&config, report, error, sizeof error) != STORE_OK)
        fail_msg("migrate: %s", error);
}

static int set_up(void **state)
{
    (void)state;
    test_pg_scratch_create(SCRATCH_A, conninfo_a, sizeof conninfo_a);
    test_pg_scratch_create(SCRATCH_B, conninfo_b, sizeof conninfo_b);
    migrate(conninfo_a);
    migrate(conninfo_b);
    store_seed_report report;
    if (seed(conninfo_a, SEED_ARGS("--users", USERS, "--articles", ARTICLES), &report) != 0)
        fail_msg("seeding %s failed", SCRATCH_A);
    return 0;
}

static int tear_down(void **state)
{
    test_node_stop_started(state);
    test_pg_scratch_drop(SCRATCH_A);
    test_pg_scratch_drop(SCRATCH_B);
    return 0;
}

/* A digest of every seeded row but the password hash (its salt is random),
 * with timestamps as offsets from user 1's (they count back from the day
 * of seeding). */
static char *digest(const char *conninfo)
{
    return test_pg_text(
        conninfo,
        "WITH base AS (SELECT min(created_at) AS t FROM users) SELECT md5(concat_ws(':',"
        " (SELECT string_agg(concat_ws('|', id, email, username, bio, image, created_at - t, updated_at - t), ','"
        "   ORDER BY id) FROM users, base),"
        " (SELECT string_agg(concat_ws('|', id, name), ',' ORDER BY id) FROM tags),"
        " (SELECT string_agg(concat_ws('|', id, slug, title, description, md5(body), author_id, favorites_count,"
        "   created_at - t, updated_at - t), ',' ORDER BY id) FROM articles, base),"
        " (SELECT string_agg(concat_ws('|', article_id, tag_id), ',' ORDER BY article_id, tag_id) FROM article_tags),"
        " (SELECT string_agg(concat_ws('|', follower_id, followee_id, created_at - t), ','"
        "   ORDER BY follower_id, followee_id) FROM follows, base),"
        " (SELECT string_agg(concat_ws('|', user_id, article_id, created_at - t), ',' ORDER BY user_id, article_id)"
        "   FROM favorites, base),"
        " (SELECT string_agg(concat_ws('|', id, article_id, author_id, body, created_at - t, updated_at - t), ','"
        "   ORDER BY id) FROM comments, base)))");
}

static void same_options_give_the_same_data_and_another_seed_other_data(void **state)
{
    (void)state;
    store_seed_report first, second;
    assert_int_equal(seed(conninfo_b, SEED_ARGS("--users", USERS, "--articles", ARTICLES), &second), 0);
    /* A's report is gone with set_up; its counts are in its tables. */
    assert_int_equal(second.users, 50);
    assert_int_equal(second.articles, 200);
    assert_int_equal(second.tags, STORE_SEED_TAGS);
    assert_true(second.follows > 0 && second.favorites > 0 && second.comments > 0 && second.article_tags > 0);
    char *a = digest(conninfo_a), *b = digest(conninfo_b);
    assert_string_equal(a, b);
    assert_int_equal(test_pg_number(conninfo_a, "SELECT count(*) FROM favorites"), second.favorites);
    assert_int_equal(test_pg_number(conninfo_a, "SELECT count(*) FROM comments"), second.comments);

    /* --reset on a seeded database, with another seed: the same shape,
     * other rows, and nothing of the first left behind. */
    assert_int_equal(seed(conninfo_b, SEED_ARGS("--users", USERS, "--articles", ARTICLES, "--seed", "1", "--reset"),
                          &first),
                     0);
    assert_int_equal(first.removed_users, 50);
    assert_int_equal(first.users, 50);
    assert_int_equal(first.articles, 200);
    assert_int_equal(test_pg_number(conninfo_b, "SELECT count(*) FROM users"), 50);
    assert_int_equal(test_pg_number(conninfo_b, "SELECT count(*) FROM articles"), 200);
    assert_int_equal(test_pg_number(conninfo_b, "SELECT count(*) FROM favorites"), first.favorites);
    char *other = digest(conninfo_b);
    assert_string_not_equal(a, other);
    /* The texts differ, not only the ids (which moved on: --reset does not
     * restart identities, so no old session or cache entry names a new row). */
    static const char titles[] = "SELECT md5(string_agg(title, ',' ORDER BY title)) FROM articles";
    char *titles_a = test_pg_text(conninfo_a, titles), *titles_b = test_pg_text(conninfo_b, titles);
    assert_string_not_equal(titles_a, titles_b);
    assert_int_equal(test_pg_number(conninfo_b, "SELECT min(id) FROM users"), 51);
    free(titles_a);
    free(titles_b);
    free(a);
    free(b);
    free(other);
}

static void the_data_keeps_the_invariants_the_api_relies_on(void **state)
{
    (void)state;
    const char *db = conninfo_a;
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM users"), 50);
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM articles"), 200);
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM tags"), STORE_SEED_TAGS);
    /* Users: user00001..user00050, one shared argon2id hash, some bios. */
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM users WHERE username::text ~ '^user000[0-9][0-9]$'"
                                        " AND email::text = username::text || '@example.com'"),
                     50);
    assert_int_equal(test_pg_number(db, "SELECT count(DISTINCT password_hash) FROM users"), 1);
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM users WHERE password_hash LIKE '$argon2id$%'"), 50);
    long long bios = test_pg_number(db, "SELECT count(bio) FROM users");
    assert_true(bios > 10 && bios < 50);
    /* favorites_count is exactly the favourite rows, and there are some. */
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM articles a WHERE favorites_count <>"
                                        " (SELECT count(*) FROM favorites f WHERE f.article_id = a.id)"),
                     0);
    assert_true(test_pg_number(db, "SELECT sum(favorites_count) FROM articles") > 200);
    /* Slugs: unique, URL-safe, from the title. */
    assert_int_equal(test_pg_number(db, "SELECT count(DISTINCT slug) FROM articles"), 200);
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM articles WHERE slug !~ '^[a-z0-9]+(-[a-z0-9]+)*$'"), 0);
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM articles WHERE slug NOT LIKE"
                                        " lower(left(regexp_replace(title, '[^A-Za-z0-9]+', '-', 'g'), 4)) || '%'"),
                     0);
    /* Every article has an author, every comment an article and an author,
     * and text of a realistic length. */
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM articles a JOIN users u ON u.id = a.author_id"), 200);
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM articles WHERE length(body) < 200 OR length(title) < 10"
                                        " OR length(description) < 10"),
                     0);
    assert_true(test_pg_number(db, "SELECT count(DISTINCT author_id) FROM articles") > 5);
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM comments c JOIN articles a ON a.id = c.article_id"
                                        " JOIN users u ON u.id = c.author_id WHERE c.created_at >= a.created_at"),
                     test_pg_number(db, "SELECT count(*) FROM comments"));
    /* Tags: 0 to 5 per article, each once, some articles with none. */
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM (SELECT DISTINCT article_id, tag_id"
                                        " FROM article_tags) t"),
                     test_pg_number(db, "SELECT count(*) FROM article_tags"));
    assert_int_equal(test_pg_number(db, "SELECT (max(n) > 5)::int FROM (SELECT count(*) AS n FROM article_tags"
                                        " GROUP BY article_id) t"),
                     0);
    assert_true(test_pg_number(db, "SELECT count(*) FROM articles a WHERE NOT EXISTS"
                                   " (SELECT 1 FROM article_tags t WHERE t.article_id = a.id)") > 0);
    /* Follows: some for most users, never oneself. */
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM follows WHERE follower_id = followee_id"), 0);
    assert_true(test_pg_number(db, "SELECT count(DISTINCT follower_id) FROM follows") > 25);
    /* Timestamps: articles within the past year, users before them. */
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM articles WHERE created_at > now()"
                                        " OR created_at < now() - interval '367 days' OR updated_at < created_at"),
                     0);
    assert_int_equal(test_pg_number(db, "SELECT count(*) FROM articles a JOIN users u ON u.id = a.author_id"
                                        " WHERE u.created_at >= a.created_at"),
                     0);
}

static void a_seeded_database_is_refused_without_reset(void **state)
{
    (void)state;
    store_seed_report report;
    assert_int_equal(seed(conninfo_a, SEED_ARGS("--users", "5", "--articles", "5"), &report), SHOAL_SEED_REFUSED);
    assert_int_equal(report.removed_users, 50);
    assert_int_equal(test_pg_number(conninfo_a, "SELECT count(*) FROM users"), 50);
    assert_int_equal(test_pg_number(conninfo_a, "SELECT count(*) FROM articles"), 200);
}

/* The triggers were off for the seed's own insert only. */
static void favourites_count_again_after_seeding(void **state)
{
    (void)state;
    const char *db = conninfo_a;
    char *slug = test_pg_text(db, "SELECT slug FROM articles a WHERE NOT EXISTS"
                                  " (SELECT 1 FROM favorites f JOIN users u ON u.id = f.user_id"
                                  "  WHERE f.article_id = a.id AND u.username = 'user00001') ORDER BY id LIMIT 1");
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT favorites_count FROM articles WHERE slug = '%s'", slug);
    long long before = test_pg_number(db, sql);
    char insert[512];
    snprintf(insert, sizeof insert,
             "INSERT INTO favorites (user_id, article_id) SELECT u.id, a.id FROM users u, articles a"
             " WHERE u.username = 'user00001' AND a.slug = '%s'",
             slug);
    test_pg_exec(db, insert);
    assert_int_equal(test_pg_number(db, sql), before + 1);
    char delete[512];
    snprintf(delete, sizeof delete,
             "DELETE FROM favorites WHERE user_id = (SELECT id FROM users WHERE username = 'user00001')"
             " AND article_id = (SELECT id FROM articles WHERE slug = '%s')",
             slug);
    test_pg_exec(db, delete);
    assert_int_equal(test_pg_number(db, sql), before);
    free(slug);
}

static void a_seeded_user_logs_in_over_http(void **state)
{
    (void)state;
    /* Redis database 9: this node's cache entries (users by id, profiles
     * by name) must not meet those of nodes on the shared database. */
    char redis_url[256];
    snprintf(redis_url, sizeof redis_url, "%s", TEST_REDIS_URL());
    char *slash = strrchr(redis_url, '/');
    assert_non_null(slash);
    if (slash > redis_url && slash[-1] != '/')
        snprintf(slash, sizeof redis_url - (size_t)(slash - redis_url), "/9");
    else
        strncat(redis_url, "/9", sizeof redis_url - strlen(redis_url) - 1);
    const char *const flags[] = {"--database-url", conninfo_a, "--redis-url", redis_url, "--password-ops-limit", "1",
                                 "--password-mem-limit", "64k", "--redis-timeout-ms", "5000", NULL};
    static const shoal_extension *const extensions[] = {&shoal_request_id_extension, &shoal_session_extension,
                                                        &shoal_api_extension, NULL};
    static test_node node; /* static: the group's teardown stops it after a failure */
    test_node_start(&node, flags, extensions);

    test_response response = test_node_call(
        &node, "POST", "/api/users/login", NULL,
        "{\"user\":{\"email\":\"user00007@example.com\",\"password\":\"" SHOAL_SEED_PASSWORD "\"}}");
    if (response.status != 200)
        fail_msg("login: %d %s", response.status, response.body);
    json_error_t error;
    json_t *body = json_loads(response.body, 0, &error);
    assert_non_null(body);
    json_t *user = json_object_get(body, "user");
    assert_string_equal(json_string_value(json_object_get(user, "username")), "user00007");
    assert_string_equal(json_string_value(json_object_get(user, "email")), "user00007@example.com");
    char headers[256];
    snprintf(headers, sizeof headers, "Authorization: Token %s\r\n",
             json_string_value(json_object_get(user, "token")));
    json_decref(body);
    test_http_response_free(&response);

    response = test_node_call(&node, "GET", "/api/user", headers, NULL);
    assert_int_equal(response.status, 200);
    assert_non_null(strstr(response.body, "\"username\":\"user00007\""));
    test_http_response_free(&response);
    /* Another seeded user's profile, as that session sees it. */
    response = test_node_call(&node, "GET", "/api/profiles/user00001", headers, NULL);
    assert_int_equal(response.status, 200);
    assert_non_null(strstr(response.body, "\"username\":\"user00001\""));
    test_http_response_free(&response);
    /* The seeded articles as the API lists them: all counted, tag lists
     * sorted without repeats, counts as in the favourite rows. */
    response = test_node_call(&node, "GET", "/api/articles?limit=100", headers, NULL);
    if (response.status != 200)
        fail_msg("articles: %d %s", response.status, response.body);
    body = json_loads(response.body, 0, &error);
    assert_non_null(body);
    assert_int_equal(json_integer_value(json_object_get(body, "articlesCount")), 200);
    json_t *articles = json_object_get(body, "articles");
    assert_int_equal(json_array_size(articles), 100);
    long long favourites = 0;
    size_t index;
    json_t *article;
    json_array_foreach(articles, index, article) {
        json_t *tag_list = json_object_get(article, "tagList");
        assert_true(json_array_size(tag_list) <= 5);
        for (size_t k = 1; k < json_array_size(tag_list); k++)
            assert_true(strcmp(json_string_value(json_array_get(tag_list, k - 1)),
                               json_string_value(json_array_get(tag_list, k))) < 0);
        favourites += json_integer_value(json_object_get(article, "favoritesCount"));
    }
    json_decref(body);
    test_http_response_free(&response);
    long long favourites_stored =
        test_pg_number(conninfo_a, "SELECT count(*) FROM favorites WHERE article_id IN"
                                   " (SELECT id FROM articles ORDER BY created_at DESC, id DESC LIMIT 100)");
    assert_int_equal(favourites, favourites_stored);
    /* Only that password. */
    response = test_node_call(&node, "POST", "/api/users/login", NULL,
                              "{\"user\":{\"email\":\"user00008@example.com\",\"password\":\"Password\"}}");
    assert_int_equal(response.status, 401);
    test_http_response_free(&response);
    test_node_stop(&node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_options_give_the_same_data_and_another_seed_other_data),
        cmocka_unit_test(the_data_keeps_the_invariants_the_api_relies_on),
        cmocka_unit_test(a_seeded_database_is_refused_without_reset),
        cmocka_unit_test(favourites_count_again_after_seeding),
        cmocka_unit_test(a_seeded_user_logs_in_over_http),
    };
    return cmocka_run_group_tests_name("node/seed", tests, set_up, tear_down);
}
