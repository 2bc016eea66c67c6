/* tests/support/test_pg.h: SQL on the suite's PostgreSQL from integration
 * tests, failing the cmocka test (fail_msg) on any error, and scratch
 * databases of a test's own.
 *
 * Each call opens and closes a connection of its own: tests use these for
 * setting up and checking, never on a path they measure. Notices (DROP ...
 * IF EXISTS) are not printed. */
#ifndef TEST_PG_H
#define TEST_PG_H

#include <stddef.h>

#include <libpq-fe.h>

/* A connection with notices ignored; fails the test when it cannot connect. */
PGconn *test_pg_connect(const char *conninfo);

/* Runs sql (one or more statements). */
void test_pg_exec(const char *conninfo, const char *sql);

/* The one value the query answers (exactly one row), as text, malloc'd:
 * the caller frees it. SQL NULL gives "(null)". */
char *test_pg_text(const char *conninfo, const char *sql);

/* The same value as a number (atoll of the text). */
long long test_pg_number(const char *conninfo, const char *sql);

/* Drops and creates database name, owned by the application role (shoal),
 * and writes into conninfo the test URL with that database, keeping the
 * URL's options (tests/valgrind adds a connect_timeout). */
void test_pg_scratch_create(const char *name, char *conninfo, size_t size);

/* Drops database name, even with connections still open to it. */
void test_pg_scratch_drop(const char *name);

/* The suite's PostgreSQL stopped and started through the tiers harness
 * (SHOAL_TEST_PG_STOP, SHOAL_TEST_PG_START); a failure fails the test.
 * While it is stopped, test_pg_restart (a cmocka teardown) and an exit
 * handler start it again, whatever the test did, so that the tests after
 * it find it running. */
void test_pg_stop(void);
void test_pg_start(void);
int test_pg_restart(void **state);

#endif
