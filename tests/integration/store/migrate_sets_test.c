/* tests/integration/store/migrate_sets_test.c: each component's own
 * migrations (store_migrate_sets) against a real PostgreSQL, in scratch
 * databases of their own: a fresh database, a database made by 0.1's single
 * sequence and seeded (upgraded in place: every row kept, the legacy rows
 * adopted, schema_migrations untouched, a rollback applies nothing), a
 * legacy row this build does not know or calls otherwise (refused), a part
 * switched off, a service of its own on the demo's database, and migrators
 * of both releases racing under the one lock. */
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <shoal/store.h>

#include "demo_migrations.h"
#include "test_env.h"
#include "test_pg.h"

static void assert_text(const char *conninfo, const char *sql, const char *expected)
{
    char *text = test_pg_text(conninfo, sql);
    if (strcmp(text, expected) != 0)
        fail_msg("%s\n  gave     %s\n  expected %s", sql, text, expected);
    free(text);
}

static void migrate_legacy(const char *conninfo, int expected_applied)
{
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5};
    store_migration legacy[SHOAL_DEMO_LEGACY_COUNT];
    shoal_demo_legacy_migrations(legacy);
    store_migrate_report report;
    char error[512] = "";
    if (store_migrate(&config, legacy, SHOAL_DEMO_LEGACY_COUNT, &report, error, sizeof error) != STORE_OK)
        fail_msg("legacy migrate: %s", error);
    assert_int_equal(report.applied, expected_applied);
}

static void migrate_demo(const char *conninfo, store_migrate_report reports[2])
{
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5};
    char error[512] = "";
    if (shoal_demo_migrate(&config, reports, error, sizeof error) != STORE_OK)
        fail_msg("migrate: %s", error);
}

#define COMPONENT_ROWS                                                                                                 \
    "SELECT string_agg(component || ' ' || version || ' ' || name, ', ' ORDER BY component, version)"                \
    " FROM shoal_migrations"
#define LEGACY_ROWS "SELECT string_agg(version || ' ' || name, ', ' ORDER BY version) FROM schema_migrations"
/* Tables, columns, constraints, indexes and triggers of the public schema,
 * less the bookkeeping tables: the shape a service sees. */
static const char SHAPE[] =
    "SELECT (SELECT string_agg(table_name || '.' || column_name || ':' || data_type || ':' || is_nullable || ':'"
    " || coalesce(column_default, ''), ',' ORDER BY table_name, column_name) FROM information_schema.columns"
    " WHERE table_schema = 'public' AND table_name NOT IN ('shoal_migrations', 'schema_migrations'))"
    " || (SELECT string_agg(indexdef, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'"
    " AND tablename NOT IN ('shoal_migrations', 'schema_migrations'))"
    " || (SELECT string_agg(conname || ':' || pg_get_constraintdef(oid), ',' ORDER BY conname) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace"
    " AND conrelid::regclass::text NOT IN ('shoal_migrations', 'schema_migrations'))"
    " || (SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal)"
    " || (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension)";

/* ---- a fresh database ------------------------------------------------------------ */

static void a_fresh_database_gets_each_components_rows_and_the_legacy_rows(void **state)
{
    (void)state;
    char fresh[512], old[512];
    test_pg_scratch_create("shoal_test_sets_fresh", fresh, sizeof fresh);
    test_pg_scratch_create("shoal_test_sets_fresh_old", old, sizeof old);

    store_migrate_report reports[2];
    migrate_demo(fresh, reports);
    assert_int_equal(reports[0].applied, 2); /* conduit */
    assert_int_equal(reports[0].current_version, 2);
    assert_int_equal(reports[1].applied, 1); /* techempower */
    assert_int_equal(reports[1].current_version, 1);
    assert_int_equal(reports[0].adopted + reports[1].adopted, 0);
    assert_text(fresh, COMPONENT_ROWS, "conduit 1 baseline, conduit 2 conduit, techempower 1 techempower");
    /* Written too, so that the previous release finds everything applied. */
    assert_text(fresh, LEGACY_ROWS, "1 baseline, 2 techempower, 3 conduit");
    migrate_legacy(fresh, 0);

    /* The same schema as 0.1's single sequence makes. */
    migrate_legacy(old, 3);
    char *expected = test_pg_text(old, SHAPE);
    assert_text(fresh, SHAPE, expected);
    free(expected);

    /* Twice: nothing to do. */
    migrate_demo(fresh, reports);
    assert_int_equal(reports[0].applied + reports[1].applied + reports[0].adopted + reports[1].adopted, 0);
    assert_int_equal(reports[0].current_version, 2);
    assert_int_equal(test_pg_number(fresh, "SELECT count(*) FROM shoal_migrations"), 3);
    assert_int_equal(test_pg_number(fresh, "SELECT count(*) FROM world"), 10000);
    test_pg_scratch_drop("shoal_test_sets_fresh");
    test_pg_scratch_drop("shoal_test_sets_fresh_old");
}

/* ---- a database made by 0.1, upgraded in place ----------------------------------------- */

#define SEED_ROWS                                                                                                      \
    "INSERT INTO users (email, username, password_hash, bio) VALUES"                                                 \
    " ('ann@example.com', 'ann', '$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g', 'kept'),"                \
    " ('bob@example.com', 'bob', '$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g', NULL);"                  \
    "INSERT INTO follows (follower_id, followee_id) SELECT a.id, b.id FROM users a, users b"                         \
    " WHERE a.username = 'bob' AND b.username = 'ann';"                                                             \
    "INSERT INTO articles (slug, title, description, body, author_id)"                                               \
    " SELECT 'how-to-keep-data', 'How to keep data', 'd', 'every row', id FROM users WHERE username = 'ann';"        \
    "INSERT INTO tags (name) VALUES ('upgrades');"                                                                   \
    "INSERT INTO article_tags SELECT a.id, t.id FROM articles a, tags t;"                                            \
    "INSERT INTO favorites (user_id, article_id) SELECT u.id, a.id FROM users u, articles a"                         \
    " WHERE u.username = 'bob';"                                                                                     \
    "INSERT INTO comments (article_id, author_id, body) SELECT a.id, u.id, 'still here' FROM articles a, users u"    \
    " WHERE u.username = 'bob';"                                                                                     \
    "UPDATE world SET randomnumber = 4242 WHERE id = 7;"

#define DATA                                                                                                           \
    "SELECT (SELECT string_agg(id || email || username || password_hash || coalesce(bio, '-') || created_at, ','"    \
    " ORDER BY id) FROM users)"                                                                                      \
    " || (SELECT string_agg(slug || title || body || author_id || favorites_count || created_at, ',') FROM articles)" \
    " || (SELECT count(*) FROM follows) || (SELECT count(*) FROM article_tags) || (SELECT count(*) FROM favorites)"   \
    " || (SELECT string_agg(body, ',') FROM comments) || (SELECT sum(randomnumber::bigint) FROM world)"              \
    " || (SELECT count(*) FROM fortune)"

static void a_database_of_the_single_sequence_upgrades_in_place(void **state)
{
    (void)state;
    char conninfo[512];
    test_pg_scratch_create("shoal_test_sets_upgrade", conninfo, sizeof conninfo);
    migrate_legacy(conninfo, 3);
    test_pg_exec(conninfo, SEED_ROWS);
    char *data = test_pg_text(conninfo, DATA);
    char *legacy = test_pg_text(conninfo, "SELECT string_agg(version || name || applied_at, ',' ORDER BY version)"
                                          " FROM schema_migrations");

    store_migrate_report reports[2];
    migrate_demo(conninfo, reports);
    assert_int_equal(reports[0].adopted, 2);
    assert_int_equal(reports[1].adopted, 1);
    assert_int_equal(reports[0].applied + reports[1].applied, 0);
    assert_int_equal(reports[0].current_version, 2);
    assert_int_equal(reports[1].current_version, 1);
    assert_text(conninfo, COMPONENT_ROWS, "conduit 1 baseline, conduit 2 conduit, techempower 1 techempower");
    /* When each was applied stays what 0.1 recorded. */
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM shoal_migrations s JOIN schema_migrations l"
                                              " ON l.applied_at = s.applied_at"),
                     3);
    /* Every row kept, schema_migrations untouched. */
    assert_text(conninfo, DATA, data);
    assert_text(conninfo,
                "SELECT string_agg(version || name || applied_at, ',' ORDER BY version) FROM schema_migrations",
                legacy);
    assert_int_equal(test_pg_number(conninfo, "SELECT favorites_count FROM articles"), 1);

    /* Twice: nothing; and a rollback to 0.1 applies nothing either. */
    migrate_demo(conninfo, reports);
    assert_int_equal(reports[0].applied + reports[1].applied + reports[0].adopted + reports[1].adopted, 0);
    migrate_legacy(conninfo, 0);
    assert_text(conninfo, DATA, data);
    free(data);
    free(legacy);
    test_pg_scratch_drop("shoal_test_sets_upgrade");
}

static void a_partly_migrated_old_database_is_completed(void **state)
{
    (void)state;
    char conninfo[512];
    test_pg_scratch_create("shoal_test_sets_partial", conninfo, sizeof conninfo);
    /* 0.1 applied 1 and 2 only (an older build, or a failed 3). */
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5};
    store_migration legacy[SHOAL_DEMO_LEGACY_COUNT];
    shoal_demo_legacy_migrations(legacy);
    char error[512] = "";
    assert_int_equal(store_migrate(&config, legacy, 2, NULL, error, sizeof error), STORE_OK);

    store_migrate_report reports[2];
    migrate_demo(conninfo, reports);
    assert_int_equal(reports[0].adopted, 1);
    assert_int_equal(reports[0].applied, 1);
    assert_int_equal(reports[1].adopted, 1);
    assert_int_equal(reports[1].applied, 0);
    assert_text(conninfo, COMPONENT_ROWS, "conduit 1 baseline, conduit 2 conduit, techempower 1 techempower");
    assert_text(conninfo, LEGACY_ROWS, "1 baseline, 2 techempower, 3 conduit");
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM users"), 0);
    test_pg_scratch_drop("shoal_test_sets_partial");
}

static void an_old_database_with_a_part_switched_off_adopts_it_all(void **state)
{
    (void)state;
    char conninfo[512];
    test_pg_scratch_create("shoal_test_sets_old_off", conninfo, sizeof conninfo);
    migrate_legacy(conninfo, 3);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5};
    char error[512] = "";
    /* shoal-node --api=false on 0.1's database: Conduit's legacy rows are
     * the database's truth, so they are adopted; nothing runs. */
    store_migration_set sets[2] = {
        {.component = "conduit",
         .list = shoal_conduit_migrations.list,
         .count = shoal_conduit_migrations.count,
         .adopt = shoal_conduit_migrations.adopt,
         .adopt_count = shoal_conduit_migrations.adopt_count,
         .skip = true},
        {.component = "techempower",
         .list = shoal_techempower_migrations.list,
         .count = shoal_techempower_migrations.count,
         .adopt = shoal_techempower_migrations.adopt,
         .adopt_count = shoal_techempower_migrations.adopt_count,
         .skip = true},
    };
    store_migrate_report reports[2];
    assert_int_equal(store_migrate_sets(&config, sets, 2, reports, error, sizeof error), STORE_OK);
    assert_int_equal(reports[0].adopted + reports[1].adopted, 3);
    assert_int_equal(reports[0].applied + reports[1].applied, 0);
    migrate_demo(conninfo, reports);
    assert_int_equal(reports[0].applied + reports[1].applied + reports[0].adopted + reports[1].adopted, 0);
    test_pg_scratch_drop("shoal_test_sets_old_off");
}

/* ---- what stops -------------------------------------------------------------------- */

static void a_legacy_row_this_build_does_not_know_stops(void **state)
{
    (void)state;
    char conninfo[512];
    test_pg_scratch_create("shoal_test_sets_foreign", conninfo, sizeof conninfo);
    migrate_legacy(conninfo, 3);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5};
    char error[512] = "";

    /* A later 0.1.x numbered one more: the database is ahead of us. */
    test_pg_exec(conninfo, "INSERT INTO schema_migrations (version, name) VALUES (4, 'reactions')");
    assert_int_equal(shoal_demo_migrate(&config, NULL, error, sizeof error), STORE_ERROR);
    assert_non_null(strstr(error, "0004_reactions"));
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM shoal_migrations"), 0);
    test_pg_exec(conninfo, "DELETE FROM schema_migrations WHERE version = 4");

    /* Another branch's 3: recorded under another name. */
    test_pg_exec(conninfo, "UPDATE schema_migrations SET name = 'comments' WHERE version = 3");
    assert_int_equal(shoal_demo_migrate(&config, NULL, error, sizeof error), STORE_ERROR);
    assert_non_null(strstr(error, "recorded as 'comments'"));
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM shoal_migrations"), 0);
    test_pg_scratch_drop("shoal_test_sets_foreign");
}

static void a_component_recorded_under_another_name_stops(void **state)
{
    (void)state;
    char conninfo[512];
    test_pg_scratch_create("shoal_test_sets_renamed", conninfo, sizeof conninfo);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5};
    char error[512] = "";
    const store_migration notes[] = {{1, "notes", "CREATE TABLE notes (id int);"}};
    const store_migration other[] = {{1, "something_else", "SELECT 1;"}};
    store_migration_set set = {.component = "notes", .list = notes, .count = 1};
    assert_int_equal(store_migrate_sets(&config, &set, 1, NULL, error, sizeof error), STORE_OK);
    set.list = other;
    assert_int_equal(store_migrate_sets(&config, &set, 1, NULL, error, sizeof error), STORE_ERROR);
    assert_non_null(strstr(error, "recorded as 'notes'"));
    /* The same versions under another component are another sequence. */
    set.component = "other";
    assert_int_equal(store_migrate_sets(&config, &set, 1, NULL, error, sizeof error), STORE_OK);
    /* A component declared twice is the caller's bug. */
    const store_migration_set twice[] = {{.component = "a", .list = notes, .count = 1},
                                         {.component = "a", .list = other, .count = 1}};
    assert_int_equal(store_migrate_sets(&config, twice, 2, NULL, error, sizeof error), STORE_ERROR);
    assert_non_null(strstr(error, "twice"));
    test_pg_scratch_drop("shoal_test_sets_renamed");
}

/* ---- parts and services of their own ------------------------------------------------------ */

static void a_part_switched_off_and_a_service_of_its_own_get_only_their_tables(void **state)
{
    (void)state;
    char conninfo[512];
    test_pg_scratch_create("shoal_test_sets_parts", conninfo, sizeof conninfo);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 5};
    char error[512] = "";
    const store_migration greetings[] = {{1, "greetings", "CREATE TABLE greetings (name text PRIMARY KEY);"}};
    store_migration_set hello = {.component = "hello", .list = greetings, .count = 1};

    /* A service of its own: its table, no demo table, nothing legacy. */
    store_migrate_report report;
    assert_int_equal(store_migrate_sets(&config, &hello, 1, &report, error, sizeof error), STORE_OK);
    assert_int_equal(report.applied, 1);
    assert_text(conninfo, COMPONENT_ROWS, "hello 1 greetings");
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 2);
    assert_int_equal(test_pg_number(conninfo, "SELECT (to_regclass('schema_migrations') IS NULL)::int"), 1);

    /* shoal-node --api=false: Conduit's set is declared, not applied. */
    store_migration_set sets[3] = {
        {.component = shoal_conduit_migrations.component,
         .list = shoal_conduit_migrations.list,
         .count = shoal_conduit_migrations.count,
         .adopt = shoal_conduit_migrations.adopt,
         .adopt_count = shoal_conduit_migrations.adopt_count,
         .skip = true},
        {.component = shoal_techempower_migrations.component,
         .list = shoal_techempower_migrations.list,
         .count = shoal_techempower_migrations.count,
         .adopt = shoal_techempower_migrations.adopt,
         .adopt_count = shoal_techempower_migrations.adopt_count},
        hello,
    };
    store_migrate_report reports[3];
    assert_int_equal(store_migrate_sets(&config, sets, 3, reports, error, sizeof error), STORE_OK);
    assert_int_equal(reports[0].applied, 0);
    assert_int_equal(reports[1].applied, 1);
    assert_int_equal(reports[2].applied, 0);
    assert_int_equal(test_pg_number(conninfo, "SELECT (to_regclass('users') IS NULL)::int"), 1);
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM fortune"), 12);
    assert_text(conninfo, LEGACY_ROWS, "2 techempower");
    /* Switched on later, the part gets its tables. */
    sets[0].skip = false;
    assert_int_equal(store_migrate_sets(&config, sets, 3, reports, error, sizeof error), STORE_OK);
    assert_int_equal(reports[0].applied, 2);
    assert_text(conninfo, COMPONENT_ROWS,
                "conduit 1 baseline, conduit 2 conduit, hello 1 greetings, techempower 1 techempower");

    /* hello alone on the demo's database: the legacy rows are none of its
     * business. */
    assert_int_equal(store_migrate_sets(&config, &hello, 1, &report, error, sizeof error), STORE_OK);
    assert_int_equal(report.applied, 0);
    test_pg_scratch_drop("shoal_test_sets_parts");
}

/* ---- racing ------------------------------------------------------------------------------ */

typedef struct racer {
    const char *conninfo;
    bool legacy; /* a 0.1 node (store_migrate) */
    store_status status;
    char error[512];
} racer;

static void *race(void *argument)
{
    racer *r = argument;
    store_config config = {.conninfo = r->conninfo, .connect_timeout_s = 10};
    if (r->legacy) {
        store_migration legacy[SHOAL_DEMO_LEGACY_COUNT];
        shoal_demo_legacy_migrations(legacy);
        r->status = store_migrate(&config, legacy, SHOAL_DEMO_LEGACY_COUNT, NULL, r->error, sizeof r->error);
    } else {
        r->status = shoal_demo_migrate(&config, NULL, r->error, sizeof r->error);
    }
    return NULL;
}

static void migrators_of_both_releases_take_turns(void **state)
{
    (void)state;
    char conninfo[512];
    test_pg_scratch_create("shoal_test_sets_race", conninfo, sizeof conninfo);
    enum { NODES = 6 };
    pthread_t threads[NODES];
    racer racers[NODES];
    for (int i = 0; i < NODES; i++) {
        racers[i] = (racer){.conninfo = conninfo, .legacy = i % 3 == 1, .status = STORE_ERROR};
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < NODES; i++) {
        pthread_join(threads[i], NULL);
        if (racers[i].status != STORE_OK)
            fail_msg("migrator %d (%s): %s", i, racers[i].legacy ? "0.1" : "sets", racers[i].error);
    }
    /* Each migration ran once: world's and fortune's rows would double (or
     * their primary keys fail a migrator) otherwise. */
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM world"), 10000);
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM fortune"), 12);
    assert_text(conninfo, COMPONENT_ROWS, "conduit 1 baseline, conduit 2 conduit, techempower 1 techempower");
    assert_text(conninfo, LEGACY_ROWS, "1 baseline, 2 techempower, 3 conduit");
    test_pg_scratch_drop("shoal_test_sets_race");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_fresh_database_gets_each_components_rows_and_the_legacy_rows),
        cmocka_unit_test(a_database_of_the_single_sequence_upgrades_in_place),
        cmocka_unit_test(a_partly_migrated_old_database_is_completed),
        cmocka_unit_test(an_old_database_with_a_part_switched_off_adopts_it_all),
        cmocka_unit_test(a_legacy_row_this_build_does_not_know_stops),
        cmocka_unit_test(a_component_recorded_under_another_name_stops),
        cmocka_unit_test(a_part_switched_off_and_a_service_of_its_own_get_only_their_tables),
        cmocka_unit_test(migrators_of_both_releases_take_turns),
    };
    return cmocka_run_group_tests_name("integration.store.migrate_sets", tests, NULL, NULL);
}
