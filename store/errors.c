/* store/errors.c: what PostgreSQL's failures mean to a caller, decided in
 * one place from the SQLSTATE, never from the message text, and their
 * messages made into one line for logs and error strings. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

store_status store_status_for_sqlstate(const char *sqlstate)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return STORE_ERROR;
    if (strcmp(sqlstate, "23505") == 0)
        return STORE_CONFLICT;
    if (strcmp(sqlstate, "23514") == 0 || strcmp(sqlstate, "23502") == 0 || strcmp(sqlstate, "23503") == 0)
        return STORE_INVALID;
    /* Text that is not UTF-8 (22021) or has no UTF-8 form (22P05): a
     * client's bytes in a path or query parameter, refused by PostgreSQL
     * before the statement ran (found by tests/fuzz/node/services/conduit/request). */
    if (strcmp(sqlstate, "22021") == 0 || strcmp(sqlstate, "22P05") == 0)
        return STORE_INVALID;
    if (strcmp(sqlstate, "57014") == 0)
        return STORE_TIMEOUT;
    if (store_sqlstate_retryable(sqlstate))
        return STORE_BUSY;
    /* Class 08 is the connection's own failure; the rest of class 57 (57014
     * is above) is an operator or the server ending the work: shutting down
     * (57P01), crashing (57P02), still starting or in recovery (57P03), the
     * database dropped (57P04), the session timed out idle (57P05). 25006 is
     * a write sent to a server that is read-only now (a standby after a
     * failover, a primary in maintenance). None is the request's fault, and
     * none is a bug: the tier is not there for it now. */
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57", 2) == 0 || strcmp(sqlstate, "25006") == 0)
        return STORE_UNAVAILABLE;
    return STORE_ERROR;
}

bool store_sqlstate_retryable(const char *sqlstate)
{
    return sqlstate != NULL && (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0);
}

void store_tidy_message(char *text)
{
    for (char *p = text; *p != '\0'; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    size_t length = strlen(text);
    while (length > 0 && text[length - 1] == ' ')
        text[--length] = '\0';
}

static void copy_text(char *out, size_t size, const char *text)
{
    snprintf(out, size, "%s", text != NULL ? text : "");
}

void store_describe_failure(store_error *error, char *field_storage, size_t field_size,
                            const store_registry *registry, const char *sqlstate, const char *constraint,
                            const char *column, const char *message)
{
    error->status = store_status_for_sqlstate(sqlstate);
    copy_text(error->sqlstate, sizeof error->sqlstate, sqlstate);
    copy_text(error->constraint, sizeof error->constraint, constraint);
    copy_text(error->message, sizeof error->message, message);
    store_tidy_message(error->message);
    error->field = NULL;
    if (error->status != STORE_CONFLICT && error->status != STORE_INVALID)
        return;
    error->field = store_registry_field(registry, constraint);
    /* A not-null violation names no constraint, only the column, which the
     * map may still translate; otherwise the column is the best name. */
    if (error->field == NULL && column != NULL && column[0] != '\0') {
        error->field = store_registry_field(registry, column);
        if (error->field == NULL && field_storage != NULL && field_size > 0) {
            copy_text(field_storage, field_size, column);
            error->field = field_storage;
        }
    }
}

void store_fail(store *s, store_status status, const char *format, ...)
{
    store_error *error = &s->last_error;
    error->status = status;
    error->sqlstate[0] = '\0';
    error->constraint[0] = '\0';
    error->field = NULL;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof error->message, format, arguments);
    va_end(arguments);
    store_tidy_message(error->message);
}

store_status store_fail_result(store *s, const PGresult *result)
{
    const char *sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    const char *message = primary != NULL ? primary : PQresultErrorMessage(result);
    if (message == NULL || message[0] == '\0')
        message = s->connection != NULL ? PQerrorMessage(s->connection) : "no answer from PostgreSQL";
    store_describe_failure(&s->last_error, s->field, sizeof s->field, s->config.registry, sqlstate,
                           PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME),
                           PQresultErrorField(result, PG_DIAG_COLUMN_NAME), message);
    if (s->connection == NULL || PQstatus(s->connection) != CONNECTION_OK)
        s->last_error.status = STORE_UNAVAILABLE;
    /* 26000: the statement never prepared on this connection; the reason
     * it failed then is what a reader of the log needs. */
    if (sqlstate != NULL && strcmp(sqlstate, "26000") == 0 && s->prepare_failure[0] != '\0')
        snprintf(s->last_error.message, sizeof s->last_error.message, "%s", s->prepare_failure);
    /* Only the connection's holder reads a result from it. */
    if (s->holder_in_transaction && store_sqlstate_retryable(sqlstate))
        s->transaction_retryable = true;
    return s->last_error.status;
}

void store_succeed(store *s)
{
    memset(&s->last_error, 0, sizeof s->last_error);
}
