/* store/result.c: a statement's result, libpq's own under the opaque name
 * (store_result_of in store_internal.h), read by the services through
 * these calls; shared by the blocking connection (run.c) and the pipe. */
#include <errno.h>
#include <stdlib.h>

#include "store_internal.h"

/* The other way round from store_result_of (store_internal.h). */
static PGresult *native(const store_result *result)
{
    return (PGresult *)(void *)result;
}

int store_result_rows(const store_result *result)
{
    return PQntuples(native(result));
}

int store_result_columns(const store_result *result)
{
    return PQnfields(native(result));
}

const char *store_result_value(const store_result *result, int row, int column)
{
    if (row < 0 || row >= PQntuples(native(result)) || column < 0 || column >= PQnfields(native(result)) ||
        PQgetisnull(native(result), row, column))
        return NULL;
    return PQgetvalue(native(result), row, column);
}

int store_result_length(const store_result *result, int row, int column)
{
    return PQgetlength(native(result), row, column);
}

bool store_result_is_null(const store_result *result, int row, int column)
{
    return PQgetisnull(native(result), row, column) != 0;
}

bool store_result_int64(const store_result *result, int row, int column, int64_t *out)
{
    if (PQgetisnull(native(result), row, column))
        return false;
    const char *text = PQgetvalue(native(result), row, column);
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE)
        return false;
    *out = (int64_t)value;
    return true;
}

long long store_result_affected(const store_result *result)
{
    return atoll(PQcmdTuples(native(result)));
}

void store_result_free(store_result *result)
{
    PQclear(native(result));
}
