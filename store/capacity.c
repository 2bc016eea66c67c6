/* store/capacity.c: what a PostgreSQL server can still take, for the
 * connection budget check at a node's start (node/lib/include/shoal/budget.h). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include <shoal/store.h>

#include "store_internal.h"

/* reserved_connections exists from PostgreSQL 16 on; current_setting's
 * missing_ok gives NULL before. The count leaves this session out, since it
 * closes before the node opens its own. */
static const char capacity_sql[] =
    "SELECT current_setting('max_connections')::int,"
    " current_setting('superuser_reserved_connections')::int"
    "   + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0),"
    " (SELECT count(*) FROM pg_stat_activity"
    "   WHERE pid <> pg_backend_pid()"
    "     AND (backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL)))::int";

store_status store_capacity_read(const store_config *config, store_capacity *out, char *error, size_t error_size)
{
    *out = (store_capacity){0};
    PGconn *connection = store_connect_or_explain(config, error, error_size);
    if (connection == NULL)
        return STORE_UNAVAILABLE;
    store_status status = STORE_OK;
    PGresult *result = PQexec(connection, capacity_sql);
    if (result == NULL || PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1 ||
        PQnfields(result) != 3 || PQgetisnull(result, 0, 0) || PQgetisnull(result, 0, 1) ||
        PQgetisnull(result, 0, 2)) {
        snprintf(error, error_size, "cannot read max_connections and pg_stat_activity: %s",
                 PQerrorMessage(connection));
        store_tidy_message(error);
        status = PQstatus(connection) == CONNECTION_OK ? STORE_ERROR : STORE_UNAVAILABLE;
    } else {
        out->max_connections = atoi(PQgetvalue(result, 0, 0));
        out->reserved = atoi(PQgetvalue(result, 0, 1));
        out->in_use = atoi(PQgetvalue(result, 0, 2));
    }
    PQclear(result);
    PQfinish(connection);
    return status;
}

int store_capacity_free(const store_capacity *capacity)
{
    int free_slots = capacity->max_connections - capacity->reserved - capacity->in_use;
    return free_slots > 0 ? free_slots : 0;
}
