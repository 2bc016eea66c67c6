/* store/admin.c: a connection of its own for work that is not a request.
 *
 * Requests go through prepared statements on the workers' connections,
 * bounded by the request's deadline. Seeding a data set, a backfill or a
 * maintenance command runs for minutes, in one transaction, with SQL
 * assembled at run time: it needs its own connection and no statement
 * timeout, and a service should not need libpq to get one. */
#include <shoal/store.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_internal.h"

struct store_admin {
    PGconn *connection;
};

store_admin *store_admin_open(const store_config *config, char *error, size_t error_size)
{
    store_admin *admin = calloc(1, sizeof *admin);
    if (admin == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    admin->connection = store_connect_or_explain(config, error, error_size);
    if (admin->connection == NULL) {
        free(admin);
        return NULL;
    }
    return admin;
}

void store_admin_close(store_admin *admin)
{
    if (admin == NULL)
        return;
    PQfinish(admin->connection);
    free(admin);
}

/* A failed command: the server's reason, and whether the connection is
 * still there to say it (an error) or gone (unavailable). */
static store_status explain(const store_admin *admin, char *error, size_t error_size)
{
    snprintf(error, error_size, "%s", PQerrorMessage(admin->connection));
    store_tidy_message(error);
    return PQstatus(admin->connection) == CONNECTION_OK ? STORE_ERROR : STORE_UNAVAILABLE;
}

store_status store_admin_exec(store_admin *admin, const char *sql, int param_count, const char *const *params,
                              long long *affected, char *error, size_t error_size)
{
    PGresult *result = param_count > 0 ? PQexecParams(admin->connection, sql, param_count, NULL, params, NULL,
                                                      NULL, 0)
                                       : PQexec(admin->connection, sql);
    ExecStatusType status = result != NULL ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        PQclear(result);
        return explain(admin, error, error_size);
    }
    if (affected != NULL) {
        /* "" for commands that count nothing (ANALYZE, SET). */
        const char *tuples = PQcmdTuples(result);
        *affected = tuples[0] != '\0' ? atoll(tuples) : -1;
    }
    PQclear(result);
    return STORE_OK;
}

store_status store_admin_number(store_admin *admin, const char *sql, long long *value, char *error,
                                size_t error_size)
{
    PGresult *result = PQexec(admin->connection, sql);
    if (result == NULL || PQresultStatus(result) != PGRES_TUPLES_OK) {
        PQclear(result);
        return explain(admin, error, error_size);
    }
    store_status status = STORE_OK;
    if (PQntuples(result) != 1 || PQnfields(result) < 1 || PQgetisnull(result, 0, 0)) {
        snprintf(error, error_size, "expected one number, got %d rows", PQntuples(result));
        status = STORE_ERROR;
    } else {
        char *end;
        *value = strtoll(PQgetvalue(result, 0, 0), &end, 10);
        if (*end != '\0') {
            snprintf(error, error_size, "expected one number, got \"%.40s\"", PQgetvalue(result, 0, 0));
            status = STORE_ERROR;
        }
    }
    PQclear(result);
    return status;
}
