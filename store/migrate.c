/* store/migrate.c: numbered migrations, applied once, in order, by one node
 * at a time: each component's own sequence (store_migrate_sets, recorded in
 * shoal_migrations) or, deprecated, one sequence for all (store_migrate,
 * recorded in schema_migrations, as 0.1 did). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/store.h>

#include "store_internal.h"

/* Any constant works as long as nothing else uses it: "shoal" in ASCII. */
#define MIGRATION_LOCK_KEY "469786816876"

/* 0.1's single sequence (store_migrate), kept as it is: 0.1 nodes read it,
 * and store_migrate_sets writes its rows too. */
#define LEGACY_TABLE                                                                                                   \
    "CREATE TABLE IF NOT EXISTS schema_migrations ("                                                                   \
    " version integer PRIMARY KEY,"                                                                                    \
    " name text NOT NULL,"                                                                                             \
    " applied_at timestamptz NOT NULL DEFAULT now())"

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

/* A statement run in a migration's transaction after its SQL: the rows
 * that record it. */
typedef struct record_statement {
    const char *sql;
    int count;
    const char *params[4];
} record_statement;

static bool run_params(PGconn *connection, const record_statement *statement, char *reason, size_t reason_size)
{
    PGresult *result =
        PQexecParams(connection, statement->sql, statement->count, NULL, statement->params, NULL, NULL, 0);
    ExecStatusType status = result != NULL ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    PQclear(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return true;
    snprintf(reason, reason_size, "%s", PQerrorMessage(connection));
    return false;
}

/* The migration and its records in one transaction; label prefixes the
 * message ("conduit " for a set, "" for the single sequence). */
static bool apply_one(PGconn *connection, const char *label, const store_migration *migration,
                      const record_statement *records, size_t record_count, char *error, size_t error_size)
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
    for (size_t i = 0; i < record_count; i++)
        if (!run_params(connection, &records[i], reason, sizeof reason)) {
            run(connection, "ROLLBACK", PGRES_COMMAND_OK, error, error_size);
            goto fail;
        }
    if (!run(connection, "COMMIT", PGRES_COMMAND_OK, reason, sizeof reason))
        goto fail;
    return true;
fail:
    store_tidy_message(reason);
    snprintf(error, error_size, "migration %s%04d_%s failed: %s", label, migration->version, migration->name, reason);
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
        !run(connection, LEGACY_TABLE, PGRES_COMMAND_OK, reason, sizeof reason)) {
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
        char version[16];
        snprintf(version, sizeof version, "%d", migrations[i].version);
        const record_statement record = {
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, {version, migrations[i].name}};
        if (!apply_one(connection, "", &migrations[i], &record, 1, error, error_size))
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

/* ---- one sequence per component ------------------------------------------ */

static bool valid_component(const char *name)
{
    if (name == NULL || !(name[0] >= 'a' && name[0] <= 'z') || strlen(name) > 32)
        return false;
    for (const char *c = name; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return false;
    return true;
}

static const store_migration *find_version(const store_migration_set *set, int version)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->list[i].version == version)
            return &set->list[i];
    return NULL;
}

static bool validate_sets(const store_migration_set *sets, size_t count, char *error, size_t error_size)
{
    for (size_t s = 0; s < count; s++) {
        const store_migration_set *set = &sets[s];
        if (!valid_component(set->component)) {
            snprintf(error, error_size, "migrations: component '%s' is not [a-z][a-z0-9_-]{0,31}",
                     set->component != NULL ? set->component : "(none)");
            return false;
        }
        char reason[200] = "";
        if ((set->count > 0 && set->list == NULL) || !validate_list(set->list, set->count, reason, sizeof reason)) {
            snprintf(error, error_size, "migrations of %s: %s", set->component,
                     reason[0] != '\0' ? reason : "no list");
            return false;
        }
        for (size_t t = 0; t < s; t++)
            if (strcmp(sets[t].component, set->component) == 0) {
                snprintf(error, error_size, "migrations: component '%s' is declared twice", set->component);
                return false;
            }
        for (size_t a = 0; a < set->adopt_count; a++) {
            const store_migration_adopt *adopt = &set->adopt[a];
            if (adopt->legacy_version <= 0 || adopt->legacy_name == NULL || find_version(set, adopt->version) == NULL) {
                snprintf(error, error_size, "migrations of %s: adopt entry #%zu names no migration of its own",
                         set->component, a);
                return false;
            }
            /* Two claims on one legacy row, or on one version, would make
             * the adoption depend on the order of the sets. */
            for (size_t t = 0; t <= s; t++)
                for (size_t b = 0; b < (t == s ? a : sets[t].adopt_count); b++)
                    if (sets[t].adopt[b].legacy_version == adopt->legacy_version ||
                        (t == s && sets[t].adopt[b].version == adopt->version)) {
                        snprintf(error, error_size, "migrations of %s: legacy version %04d or version %04d is "
                                                    "adopted twice", set->component, adopt->legacy_version,
                                 adopt->version);
                        return false;
                    }
        }
    }
    return true;
}

/* The name recorded for (component, version) in rows of (component,
 * version, name), or NULL. */
static const char *recorded_in(PGresult *rows, const char *component, int version)
{
    for (int row = 0; row < PQntuples(rows); row++)
        if (strcmp(PQgetvalue(rows, row, 0), component) == 0 && atoi(PQgetvalue(rows, row, 1)) == version)
            return PQgetvalue(rows, row, 2);
    return NULL;
}

static PGresult *query(PGconn *connection, const char *sql, const char *what, char *error, size_t error_size)
{
    PGresult *result = PQexec(connection, sql);
    if (result != NULL && PQresultStatus(result) == PGRES_TUPLES_OK)
        return result;
    snprintf(error, error_size, "cannot read %s: %s", what, PQerrorMessage(connection));
    store_tidy_message(error);
    PQclear(result);
    return NULL;
}

/* Every row of schema_migrations has its claim (an adopt entry of some set
 * with that legacy version and name), or, when no set adopts, is none of
 * our business (a service of its own on the demo's database). */
static bool check_legacy(const store_migration_set *sets, size_t count, PGresult *legacy, char *error,
                         size_t error_size)
{
    bool any_adopts = false;
    for (size_t s = 0; s < count; s++)
        any_adopts = any_adopts || sets[s].adopt_count > 0;
    for (int row = 0; row < PQntuples(legacy); row++) {
        int version = atoi(PQgetvalue(legacy, row, 0));
        const char *name = PQgetvalue(legacy, row, 1);
        const store_migration_adopt *claim = NULL;
        const store_migration_set *claimer = NULL;
        for (size_t s = 0; s < count && claim == NULL; s++)
            for (size_t a = 0; a < sets[s].adopt_count && claim == NULL; a++)
                if (sets[s].adopt[a].legacy_version == version) {
                    claim = &sets[s].adopt[a];
                    claimer = &sets[s];
                }
        if (claim != NULL && strcmp(claim->legacy_name, name) != 0) {
            snprintf(error, error_size,
                     "migration %04d is recorded as '%s' but this build calls it '%s' (%s %04d)", version, name,
                     claim->legacy_name, claimer->component, claim->version);
            return false;
        }
        if (claim == NULL && any_adopts) {
            snprintf(error, error_size,
                     "schema_migrations records %04d_%s, which no component of this build adopts: the database "
                     "is ahead of this build", version, name);
            return false;
        }
    }
    return true;
}

/* Records, in one transaction, each adopt entry whose legacy row is there
 * and whose (component, version) is not; the legacy row's applied_at is
 * kept. Nothing runs: the schema is already there. */
static bool adopt_legacy(PGconn *connection, const store_migration_set *sets, size_t count, PGresult *legacy,
                         PGresult *recorded, store_migrate_report *reports, char *error, size_t error_size)
{
    char reason[400] = "";
    bool open = false;
    for (size_t s = 0; s < count; s++)
        for (size_t a = 0; a < sets[s].adopt_count; a++) {
            const store_migration_adopt *adopt = &sets[s].adopt[a];
            bool present = false;
            for (int row = 0; row < PQntuples(legacy) && !present; row++)
                present = atoi(PQgetvalue(legacy, row, 0)) == adopt->legacy_version;
            if (!present || recorded_in(recorded, sets[s].component, adopt->version) != NULL)
                continue;
            if (!open && !run(connection, "BEGIN", PGRES_COMMAND_OK, reason, sizeof reason))
                goto fail;
            open = true;
            char version[16], legacy_version[16];
            snprintf(version, sizeof version, "%d", adopt->version);
            snprintf(legacy_version, sizeof legacy_version, "%d", adopt->legacy_version);
            const record_statement insert = {
                "INSERT INTO shoal_migrations (component, version, name, applied_at)"
                " SELECT $1, $2, $3, applied_at FROM schema_migrations WHERE version = $4",
                4,
                {sets[s].component, version, find_version(&sets[s], adopt->version)->name, legacy_version}};
            if (!run_params(connection, &insert, reason, sizeof reason)) {
                run(connection, "ROLLBACK", PGRES_COMMAND_OK, error, error_size);
                goto fail;
            }
            reports[s].adopted++;
        }
    if (open && !run(connection, "COMMIT", PGRES_COMMAND_OK, reason, sizeof reason))
        goto fail;
    return true;
fail:
    for (size_t s = 0; s < count; s++)
        reports[s].adopted = 0;
    store_tidy_message(reason);
    snprintf(error, error_size, "cannot adopt schema_migrations: %s", reason);
    return false;
}

static bool apply_set(PGconn *connection, const store_migration_set *set, PGresult *recorded,
                      store_migrate_report *report, char *error, size_t error_size)
{
    char label[48];
    snprintf(label, sizeof label, "%s/", set->component);
    for (size_t i = 0; i < set->count; i++) {
        const store_migration *migration = &set->list[i];
        const char *name = recorded_in(recorded, set->component, migration->version);
        if (name != NULL) {
            if (strcmp(name, migration->name) != 0) {
                snprintf(error, error_size, "migration %s %04d is recorded as '%s' but this build calls it '%s'",
                         set->component, migration->version, name, migration->name);
                return false;
            }
            continue;
        }
        if (set->skip)
            continue;
        char version[16], legacy_version[16] = "";
        snprintf(version, sizeof version, "%d", migration->version);
        record_statement records[3] = {
            {"INSERT INTO shoal_migrations (component, version, name) VALUES ($1, $2, $3)",
             3,
             {set->component, version, migration->name}},
        };
        size_t record_count = 1;
        /* The previous release reads schema_migrations only: written
         * too, a rollback to it finds this migration applied. */
        for (size_t a = 0; a < set->adopt_count; a++)
            if (set->adopt[a].version == migration->version) {
                snprintf(legacy_version, sizeof legacy_version, "%d", set->adopt[a].legacy_version);
                records[1] = (record_statement){LEGACY_TABLE, 0, {NULL}};
                records[2] = (record_statement){
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
                    2,
                    {legacy_version, set->adopt[a].legacy_name}};
                record_count = 3;
                break;
            }
        if (!apply_one(connection, label, migration, records, record_count, error, error_size))
            return false;
        report->applied++;
        if (migration->version > report->current_version)
            report->current_version = migration->version;
    }
    return true;
}

store_status store_migrate_sets(const store_config *config, const store_migration_set *sets, size_t count,
                                store_migrate_report *reports, char *error, size_t error_size)
{
    store_migrate_report *local = NULL;
    if (reports == NULL) {
        local = calloc(count > 0 ? count : 1, sizeof *local);
        if (local == NULL) {
            snprintf(error, error_size, "out of memory");
            return STORE_ERROR;
        }
        reports = local;
    }
    memset(reports, 0, count * sizeof *reports);
    if (!validate_sets(sets, count, error, error_size)) {
        free(local);
        return STORE_ERROR;
    }

    store_config unlimited = *config;
    unlimited.statement_timeout_ms = 0;
    PGconn *connection = store_connect_or_explain(&unlimited, error, error_size);
    if (connection == NULL) {
        free(local);
        return STORE_UNAVAILABLE;
    }

    store_status outcome = STORE_ERROR;
    char reason[400] = "";
    PGresult *recorded = NULL, *exists = NULL, *legacy = NULL;
    /* The lock store_migrate takes: a 0.1 node starting beside this one
     * waits too. Tables are created under it (CREATE TABLE IF NOT EXISTS
     * races between sessions). */
    if (!run(connection, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", PGRES_TUPLES_OK, reason, sizeof reason) ||
        !run(connection,
             "CREATE TABLE IF NOT EXISTS shoal_migrations ("
             " component text NOT NULL,"
             " version integer NOT NULL,"
             " name text NOT NULL,"
             " applied_at timestamptz NOT NULL DEFAULT now(),"
             " PRIMARY KEY (component, version))",
             PGRES_COMMAND_OK, reason, sizeof reason)) {
        store_tidy_message(reason);
        snprintf(error, error_size, "cannot prepare migrations: %s", reason);
        goto done;
    }
    exists = query(connection, "SELECT to_regclass('schema_migrations') IS NOT NULL", "the catalog", error,
                   error_size);
    if (exists == NULL)
        goto done;
    if (strcmp(PQgetvalue(exists, 0, 0), "t") == 0) {
        legacy = query(connection, "SELECT version, name FROM schema_migrations ORDER BY version",
                       "schema_migrations", error, error_size);
        recorded = legacy != NULL ? query(connection, "SELECT component, version, name FROM shoal_migrations",
                                          "shoal_migrations", error, error_size)
                                  : NULL;
        if (recorded == NULL || !check_legacy(sets, count, legacy, error, error_size) ||
            !adopt_legacy(connection, sets, count, legacy, recorded, reports, error, error_size))
            goto done;
        PQclear(recorded);
    }
    recorded = query(connection, "SELECT component, version, name FROM shoal_migrations", "shoal_migrations", error,
                     error_size);
    if (recorded == NULL)
        goto done;
    for (size_t s = 0; s < count; s++)
        for (int row = 0; row < PQntuples(recorded); row++)
            if (strcmp(PQgetvalue(recorded, row, 0), sets[s].component) == 0 &&
                atoi(PQgetvalue(recorded, row, 1)) > reports[s].current_version)
                reports[s].current_version = atoi(PQgetvalue(recorded, row, 1));
    for (size_t s = 0; s < count; s++)
        if (!apply_set(connection, &sets[s], recorded, &reports[s], error, error_size))
            goto done;
    outcome = STORE_OK;

done:
    PQclear(recorded);
    PQclear(legacy);
    PQclear(exists);
    if (PQstatus(connection) == CONNECTION_OK)
        run(connection, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", PGRES_TUPLES_OK, reason, sizeof reason);
    else if (outcome != STORE_OK)
        outcome = STORE_UNAVAILABLE;
    PQfinish(connection);
    free(local);
    return outcome;
}
