/* store/migrate.c: numbered migrations, applied once, in order, by one node
 * at a time. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_internal.h"

/* Any constant works as long as nothing else uses it: "shoal" in ASCII. */
#define MIGRATION_LOCK_KEY "469786816876"

static bool run(PGconn *connection, const char *sql, ExecStatusType expected, char *error, size_t error_size)
{
    PGresult *result = PQexec(connection, sql);
    bool ok = result != NULL && PQresultStatus(result) == expected;
    if (!ok)
        snprintf(error, error_size, "%s", PQerrorMessage(connection));
    PQclear(result);
    return ok;
}

static bool validate_list(const store_migration *migrations, size_t count, char *error, size_t error_size)
{
    for (size_t i = 0; i < count; i++) {
        if (migrations[i].version <= 0 || migrations[i].name == NULL || migrations[i].sql == NULL) {
            snprintf(error, error_size, "migration #%zu is incomplete", i);
            return false;
        }
        if (i > 0 && migrations[i].version <= migrations[i - 1].version) {
            snprintf(error, error_size, "migration %04d is out of order or duplicated", migrations[i].version);
            return false;
        }
    }
    return true;
}

/* The recorded name of version, or NULL; result holds (version, name) rows. */
static const char *recorded_name(PGresult *result, int version)
{
    for (int row = 0; row < PQntuples(result); row++)
        if (atoi(PQgetvalue(result, row, 0)) == version)
            return PQgetvalue(result, row, 1);
    return NULL;
}

static bool apply_one(PGconn *connection, const store_migration *migration, char *error, size_t error_size)
{
    char reason[400] = "";
    if (!run(connection, "BEGIN", PGRES_COMMAND_OK, reason, sizeof reason))
        goto fail;
    /* PQexec takes several statements at once (the simple query protocol),
     * which is what a migration file is. */
    PGresult *result = PQexec(connection, migration->sql);
    ExecStatusType status = result != NULL ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    PQclear(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
        snprintf(reason, sizeof reason, "%s", PQerrorMessage(connection));
        run(connection, "ROLLBACK", PGRES_COMMAND_OK, error, error_size);
        goto fail;
    }
    char version[16];
    snprintf(version, sizeof version, "%d", migration->version);
    const char *params[] = {version, migration->name};
    result = PQexecParams(connection, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                          NULL, params, NULL, NULL, 0);
    status = result != NULL ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    PQclear(result);
    if (status != PGRES_COMMAND_OK) {
        snprintf(reason, sizeof reason, "%s", PQerrorMessage(connection));
        run(connection, "ROLLBACK", PGRES_COMMAND_OK, error, error_size);
        goto fail;
    }
    if (!run(connection, "COMMIT", PGRES_COMMAND_OK, reason, sizeof reason))
        goto fail;
    return true;
fail:
    store_tidy_message(reason);
    snprintf(error, error_size, "migration %04d_%s failed: %s", migration->version, migration->name, reason);
    return false;
}

store_status store_migrate(const store_config *config, const store_migration *migrations, size_t count,
                           store_migrate_report *report, char *error, size_t error_size)
{
    store_migrate_report local = {0};
    if (report == NULL)
        report = &local;
    memset(report, 0, sizeof *report);
    if (!validate_list(migrations, count, error, error_size))
        return STORE_ERROR;

    /* A migration may rewrite a whole table: the per-statement limit meant
     * for requests does not apply to it. */
    store_config unlimited = *config;
    unlimited.statement_timeout_ms = 0;
    PGconn *connection = store_connect_or_explain(&unlimited, error, error_size);
    if (connection == NULL)
        return STORE_UNAVAILABLE;

    store_status outcome = STORE_ERROR;
    char reason[400] = "";
    PGresult *applied = NULL;
    /* The session lock makes nodes that start together take turns; the
     * table is created under it, since CREATE TABLE IF NOT EXISTS itself
     * races between sessions. */
    if (!run(connection, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", PGRES_TUPLES_OK, reason, sizeof reason) ||
        !run(connection,
             "CREATE TABLE IF NOT EXISTS schema_migrations ("
             " version integer PRIMARY KEY,"
             " name text NOT NULL,"
             " applied_at timestamptz NOT NULL DEFAULT now())",
             PGRES_COMMAND_OK, reason, sizeof reason)) {
        store_tidy_message(reason);
        snprintf(error, error_size, "cannot prepare migrations: %s", reason);
        goto done;
    }
    applied = PQexec(connection, "SELECT version, name FROM schema_migrations ORDER BY version");
    if (applied == NULL || PQresultStatus(applied) != PGRES_TUPLES_OK) {
        snprintf(error, error_size, "cannot read schema_migrations: %s", PQerrorMessage(connection));
        store_tidy_message(error);
        goto done;
    }
    for (int row = 0; row < PQntuples(applied); row++) {
        int version = atoi(PQgetvalue(applied, row, 0));
        if (version > report->current_version)
            report->current_version = version;
    }
    for (size_t i = 0; i < count; i++) {
        const char *name = recorded_name(applied, migrations[i].version);
        if (name != NULL) {
            if (strcmp(name, migrations[i].name) != 0) {
                snprintf(error, error_size,
                         "migration %04d is recorded as '%s' but this build calls it '%s'",
                         migrations[i].version, name, migrations[i].name);
                goto done;
            }
            continue;
        }
        if (!apply_one(connection, &migrations[i], error, error_size))
            goto done;
        report->applied++;
        if (migrations[i].version > report->current_version)
            report->current_version = migrations[i].version;
    }
    outcome = STORE_OK;

done:
    PQclear(applied);
    if (PQstatus(connection) == CONNECTION_OK)
        run(connection, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", PGRES_TUPLES_OK, reason, sizeof reason);
    else if (outcome != STORE_OK)
        outcome = STORE_UNAVAILABLE;
    PQfinish(connection);
    return outcome;
}
