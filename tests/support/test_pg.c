/* tests/support/test_pg.c: see test_pg.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_env.h"
#include "test_pg.h"

static void ignore_notice(void *context, const char *message)
{
    (void)context;
    (void)message;
}

PGconn *test_pg_connect(const char *conninfo)
{
    PGconn *connection = PQconnectdb(conninfo);
    if (connection == NULL || PQstatus(connection) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", conninfo,
                 connection != NULL ? PQerrorMessage(connection) : "out of memory");
    PQsetNoticeProcessor(connection, ignore_notice, NULL);
    return connection;
}

void test_pg_exec(const char *conninfo, const char *sql)
{
    PGconn *connection = test_pg_connect(conninfo);
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    PQclear(result);
    PQfinish(connection);
}

char *test_pg_text(const char *conninfo, const char *sql)
{
    PGconn *connection = test_pg_connect(conninfo);
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1)
        fail_msg("%s: %s (%d rows)", sql, PQerrorMessage(connection), PQntuples(result));
    char *value = strdup(PQgetisnull(result, 0, 0) ? "(null)" : PQgetvalue(result, 0, 0));
    assert_non_null(value);
    PQclear(result);
    PQfinish(connection);
    return value;
}

long long test_pg_number(const char *conninfo, const char *sql)
{
    char *text = test_pg_text(conninfo, sql);
    long long value = atoll(text);
    free(text);
    return value;
}

void test_pg_scratch_create(const char *name, char *conninfo, size_t size)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    test_pg_exec(TEST_ADMIN_DATABASE_URL(), sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s OWNER shoal", name);
    test_pg_exec(TEST_ADMIN_DATABASE_URL(), sql);
    /* The test URL ends in /shoal[?options]: swap the database's name. */
    snprintf(conninfo, size, "%s", TEST_DATABASE_URL());
    char *slash = strrchr(conninfo, '/');
    assert_non_null(slash);
    const char *options = strchr(TEST_DATABASE_URL(), '?');
    int written = snprintf(slash + 1, size - (size_t)(slash + 1 - conninfo), "%s%s", name,
                           options != NULL ? options : "");
    assert_true(written > 0 && (size_t)written < size - (size_t)(slash + 1 - conninfo));
}

void test_pg_scratch_drop(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    test_pg_exec(TEST_ADMIN_DATABASE_URL(), sql);
}

static bool postgres_stopped;

static void harness(const char *variable)
{
    const char *command = test_env_require(variable);
    if (system(command) != 0)
        fail_msg("%s failed", command);
}

int test_pg_restart(void **state)
{
    (void)state;
    if (postgres_stopped) {
        postgres_stopped = false;
        if (system(test_env_require("SHOAL_TEST_PG_START")) != 0)
            fprintf(stderr, "could not start PostgreSQL again\n");
    }
    return 0;
}

static void restart_at_exit(void)
{
    test_pg_restart(NULL);
}

void test_pg_stop(void)
{
    static bool exit_handler;
    if (!exit_handler)
        exit_handler = atexit(restart_at_exit) == 0;
    postgres_stopped = true;
    harness("SHOAL_TEST_PG_STOP");
}

void test_pg_start(void)
{
    harness("SHOAL_TEST_PG_START");
    postgres_stopped = false;
}
