/* tests/integration/store/store_test.c: connections and migrations against
 * a real PostgreSQL. Each migration test works in a scratch database of its
 * own, so runs never see each other's schema_migrations. */
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/store.h>

#include "demo_migrations.h"
#include "test_env.h"

/* ---- helpers over a superuser connection ---------------------------------- */

static void ignore_notice(void *context, const char *message)
{
    (void)context;
    (void)message;
}

static PGconn *admin_connect(void)
{
    PGconn *connection = PQconnectdb(TEST_ADMIN_DATABASE_URL());
    assert_int_equal(PQstatus(connection), CONNECTION_OK);
    /* "database ... does not exist, skipping" is expected noise here. */
    PQsetNoticeProcessor(connection, ignore_notice, NULL);
    return connection;
}

static void admin_exec(const char *sql)
{
    PGconn *connection = admin_connect();
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    PQclear(result);
    PQfinish(connection);
}

/* The one boolean a query answers, as the superuser. */
static bool admin_true(const char *sql)
{
    PGconn *connection = admin_connect();
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    bool yes = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    PQclear(result);
    PQfinish(connection);
    return yes;
}

/* A conninfo for the scratch database name, as the shoal role. */
static void scratch_conninfo(const char *name, char *out, size_t size)
{
    /* The test URL ends in /shoal; swap the database name via a keyword,
     * which libpq lets a later dbname override. */
    snprintf(out, size, "%s", TEST_DATABASE_URL());
    char *slash = strrchr(out, '/');
    assert_non_null(slash);
    char *query = strchr(slash, '?');
    char rest[256] = "";
    if (query != NULL)
        snprintf(rest, sizeof rest, "%s", query);
    snprintf(slash + 1, size - (size_t)(slash + 1 - out), "%s%s", name, rest);
}

static void create_scratch(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    admin_exec(sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s OWNER shoal", name);
    admin_exec(sql);
}

static void drop_scratch(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    admin_exec(sql);
}

static long long scalar(const char *conninfo, const char *sql)
{
    PGconn *connection = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(connection), CONNECTION_OK);
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    long long value = atoll(PQgetvalue(result, 0, 0));
    PQclear(result);
    PQfinish(connection);
    return value;
}

static const store_migration three_migrations[] = {
    {1, "create_notes", "CREATE TABLE notes (id serial PRIMARY KEY, text text NOT NULL);"},
    {2, "seed_note", "INSERT INTO notes (text) VALUES ('applied once');"},
    {3, "add_index", "CREATE INDEX notes_text ON notes (text); ALTER TABLE notes ADD COLUMN tag text;"},
};

/* ---- migrations ---------------------------------------------------------------- */

static void migrations_apply_in_order_and_only_once(void **state)
{
    (void)state;
    create_scratch("shoal_test_migrate_once");
    char conninfo[512];
    scratch_conninfo("shoal_test_migrate_once", conninfo, sizeof conninfo);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 2};
    char error[512] = "";
    store_migrate_report report;

    assert_int_equal(store_migrate(&config, three_migrations, 3, &report, error, sizeof error), STORE_OK);
    assert_int_equal(report.applied, 3);
    assert_int_equal(report.current_version, 3);
    assert_int_equal(store_migrate(&config, three_migrations, 3, &report, error, sizeof error), STORE_OK);
    assert_int_equal(report.applied, 0);
    assert_int_equal(report.current_version, 3);

    assert_int_equal(scalar(conninfo, "SELECT count(*) FROM notes"), 1);
    assert_int_equal(scalar(conninfo, "SELECT count(*) FROM schema_migrations"), 3);
    assert_int_equal(scalar(conninfo, "SELECT max(version) FROM schema_migrations"), 3);
    drop_scratch("shoal_test_migrate_once");
}

typedef struct racer {
    const store_config *config;
    store_status status;
} racer;

static void *race(void *argument)
{
    racer *r = argument;
    char error[512];
    store_migrate_report report;
    r->status = store_migrate(r->config, three_migrations, 3, &report, error, sizeof error);
    return NULL;
}

static void nodes_starting_together_apply_each_migration_once(void **state)
{
    (void)state;
    create_scratch("shoal_test_migrate_race");
    char conninfo[512];
    scratch_conninfo("shoal_test_migrate_race", conninfo, sizeof conninfo);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 2};
    enum { NODES = 6 };
    pthread_t threads[NODES];
    racer racers[NODES];
    for (int i = 0; i < NODES; i++) {
        racers[i] = (racer){.config = &config, .status = STORE_ERROR};
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < NODES; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(racers[i].status, STORE_OK);
    }
    /* The seed row would appear once per node without the lock. */
    assert_int_equal(scalar(conninfo, "SELECT count(*) FROM notes"), 1);
    assert_int_equal(scalar(conninfo, "SELECT count(*) FROM schema_migrations"), 3);
    drop_scratch("shoal_test_migrate_race");
}

static void a_failing_migration_rolls_back_and_stops(void **state)
{
    (void)state;
    create_scratch("shoal_test_migrate_fail");
    char conninfo[512];
    scratch_conninfo("shoal_test_migrate_fail", conninfo, sizeof conninfo);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 2};
    const store_migration broken[] = {
        three_migrations[0],
        {2, "half_broken", "CREATE TABLE half (id int); INSERT INTO missing_table VALUES (1);"},
        {3, "never", "CREATE TABLE never (id int);"},
    };
    char error[512] = "";
    store_migrate_report report;
    assert_int_equal(store_migrate(&config, broken, 3, &report, error, sizeof error), STORE_ERROR);
    assert_non_null(strstr(error, "0002_half_broken"));
    assert_int_equal(report.applied, 1);
    assert_int_equal(scalar(conninfo, "SELECT count(*) FROM schema_migrations"), 1);
    /* Nothing of migration 2 survives, and 3 was never tried. */
    assert_int_equal(scalar(conninfo, "SELECT count(*) FROM pg_tables WHERE tablename IN ('half', 'never')"), 0);
    drop_scratch("shoal_test_migrate_fail");
}

static void a_renamed_migration_is_refused(void **state)
{
    (void)state;
    create_scratch("shoal_test_migrate_rename");
    char conninfo[512];
    scratch_conninfo("shoal_test_migrate_rename", conninfo, sizeof conninfo);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 2};
    char error[512] = "";
    assert_int_equal(store_migrate(&config, three_migrations, 1, NULL, error, sizeof error), STORE_OK);
    const store_migration renamed[] = {{1, "something_else", "SELECT 1;"}};
    assert_int_equal(store_migrate(&config, renamed, 1, NULL, error, sizeof error), STORE_ERROR);
    assert_non_null(strstr(error, "create_notes"));
    drop_scratch("shoal_test_migrate_rename");
}

/* store_migrate is deprecated but kept: 0.1's single sequence, as the
 * previous release applies it (a rollback, integration.migrate_sets_test). */
static void the_legacy_sequence_applies_to_an_empty_database(void **state)
{
    (void)state;
    create_scratch("shoal_test_migrate_builtin");
    char conninfo[512];
    scratch_conninfo("shoal_test_migrate_builtin", conninfo, sizeof conninfo);
    store_config config = {.conninfo = conninfo, .connect_timeout_s = 2};
    char error[512] = "";
    store_migrate_report report;
    store_migration legacy[SHOAL_DEMO_LEGACY_COUNT];
    shoal_demo_legacy_migrations(legacy);
    assert_int_equal(store_migrate(&config, legacy, SHOAL_DEMO_LEGACY_COUNT, &report, error, sizeof error), STORE_OK);
    assert_int_equal(report.applied, SHOAL_DEMO_LEGACY_COUNT);
    assert_int_equal(report.current_version, 3);
    assert_int_equal(scalar(conninfo, "SELECT count(*) FROM schema_migrations"), 3);
    assert_int_equal(scalar(conninfo, "SELECT count(*) FROM pg_tables WHERE tablename = 'shoal_migrations'"), 0);
    drop_scratch("shoal_test_migrate_builtin");
}

static void migrating_an_unreachable_server_is_unavailable(void **state)
{
    (void)state;
    store_config config = {.conninfo = "postgresql://shoal:shoal@127.0.0.1:1/shoal", .connect_timeout_s = 1};
    char error[512] = "";
    assert_int_equal(store_migrate(&config, three_migrations, 3, NULL, error, sizeof error), STORE_UNAVAILABLE);
    assert_non_null(strstr(error, "cannot connect"));
}

/* ---- the worker connection --------------------------------------------------- */

static void a_killed_connection_is_replaced_without_the_caller_noticing(void **state)
{
    (void)state;
    store_config config = {.conninfo = TEST_DATABASE_URL(), .connect_timeout_s = 2, .application_name = "store-test"};
    store *s = store_open(&config);
    assert_non_null(s);
    assert_int_equal(store_ping(s), STORE_OK);
    int pid = store_backend_pid(s);
    assert_true(pid > 0);

    char sql[128];
    /* With a timeout, PostgreSQL returns once the backend has exited (or
     * says false): its socket is closed before the store is used again. */
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 10000)", pid);
    assert_true(admin_true(sql));

    assert_int_equal(store_ping(s), STORE_OK);
    assert_int_not_equal(store_backend_pid(s), pid);
    assert_int_equal(store_reconnect_count(s), 1);
    store_close(s);
}

static int stopped_backend = 0;

/* Whatever happened in the test, the stopped backend runs again. */
static int resume_backend(void **state)
{
    (void)state;
    if (stopped_backend > 0)
        kill(stopped_backend, SIGCONT);
    stopped_backend = 0;
    return 0;
}

static void a_server_that_stops_answering_is_given_up_on_in_time(void **state)
{
    (void)state;
    store_config config = {.conninfo = TEST_DATABASE_URL(), .connect_timeout_s = 1, .answer_timeout_ms = 300};
    store *s = store_open(&config);
    assert_non_null(s);
    assert_int_equal(store_ping(s), STORE_OK);

    /* The backend process serving this connection stops: the socket stays
     * open and nothing answers, as with a hung server or a cut network. */
    stopped_backend = store_backend_pid(s);
    assert_true(stopped_backend > 0);
    assert_int_equal(kill(stopped_backend, SIGSTOP), 0);
    assert_int_equal(store_ping(s), STORE_UNAVAILABLE);
    assert_false(store_connected(s));
    assert_int_equal(kill(stopped_backend, SIGCONT), 0);
    stopped_backend = 0;

    /* After the reconnect interval, a fresh connection works. */
    usleep((STORE_RECONNECT_INTERVAL_MS + 50) * 1000);
    assert_int_equal(store_ping(s), STORE_OK);
    store_close(s);
}

static void an_unreachable_server_is_unavailable_and_retried_sparingly(void **state)
{
    (void)state;
    store_config config = {.conninfo = "postgresql://shoal:shoal@127.0.0.1:1/shoal", .connect_timeout_s = 1};
    store *s = store_open(&config);
    assert_non_null(s);
    assert_int_equal(store_ping(s), STORE_UNAVAILABLE);
    assert_false(store_connected(s));
    /* Within the reconnect interval, calls fail fast without dialling. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(store_ping(s), STORE_UNAVAILABLE);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrations_apply_in_order_and_only_once),
        cmocka_unit_test(nodes_starting_together_apply_each_migration_once),
        cmocka_unit_test(a_failing_migration_rolls_back_and_stops),
        cmocka_unit_test(a_renamed_migration_is_refused),
        cmocka_unit_test(the_legacy_sequence_applies_to_an_empty_database),
        cmocka_unit_test(migrating_an_unreachable_server_is_unavailable),
        cmocka_unit_test(a_killed_connection_is_replaced_without_the_caller_noticing),
        cmocka_unit_test_teardown(a_server_that_stops_answering_is_given_up_on_in_time, resume_backend),
        cmocka_unit_test(an_unreachable_server_is_unavailable_and_retried_sparingly),
    };
    return cmocka_run_group_tests_name("integration.store", tests, NULL, NULL);
}
