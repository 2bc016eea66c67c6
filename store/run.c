/* store/run.c: running registered statements, alone, in batches (libpq
 * pipeline mode) and in transactions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

/* The server answered a statement with 57P01 (terminated by an
 * administrator or a fast shutdown) before anything else: the backend was
 * gone before it ran the statement, or rolled it back, so resending it on a
 * new connection cannot run it twice. */
static bool terminated_before_running(const PGresult *result)
{
    const char *sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    return sqlstate != NULL && strcmp(sqlstate, "57P01") == 0;
}

static const char *statement_name(store *s, store_statement statement)
{
    const char *name = store_registry_name(s->config.registry, statement);
    if (name == NULL)
        store_fail(s, STORE_ERROR, "statement %d is not registered", statement);
    return name;
}

/* One try: *resend is set when it failed before the statement could have
 * run, so that the caller may send it again on a new connection. */
static store_status run_once(store *s, store_statement statement, const char *name, const char *const *params,
                             PGresult **out, bool forced, bool *resend)
{
    *resend = false;
    if (!store_ready_connection(s, forced))
        return STORE_UNAVAILABLE;
    int param_count = store_registry_param_count(s->config.registry, statement);
    if (!PQsendQueryPrepared(s->connection, name, param_count, params, NULL, NULL, 0)) {
        /* Nothing reached the server, or it had already closed the socket. */
        *resend = PQstatus(s->connection) != CONNECTION_OK;
        store_fail(s, *resend ? STORE_UNAVAILABLE : STORE_ERROR, "cannot send %s: %s", name,
                   PQerrorMessage(s->connection));
        return s->last_error.status;
    }
    uint64_t deadline = store_monotonic_ms() + (uint64_t)s->config.answer_timeout_ms;
    PGresult *first = NULL;
    PGresult *after = NULL; /* the first failure after the statement's own result */
    for (;;) {
        if (!store_wait_ready(s, deadline)) {
            PQclear(first);
            PQclear(after);
            return STORE_UNAVAILABLE;
        }
        PGresult *result = PQgetResult(s->connection);
        if (result == NULL)
            break;
        if (first == NULL)
            first = result;
        else if (after == NULL && !store_result_succeeded(result))
            after = result;
        else
            PQclear(result);
    }
    /* Outside BEGIN a statement is its own transaction, which the server
     * commits at the protocol's Sync, after it has sent the statement's rows
     * and CommandComplete. The statement is done only when ReadyForQuery
     * follows (PQgetResult's NULL on a good connection). A failure after the
     * rows is the commit failing (a deferred constraint), and a connection
     * lost after them leaves the commit unknown (a crash, an immediate
     * shutdown): either way the caller must not be told it is stored (the
     * faults test lost an acknowledged comment to exactly this), and it is
     * never resent, since it may have committed. */
    if (first != NULL && store_result_succeeded(first) && (after != NULL || PQstatus(s->connection) != CONNECTION_OK)) {
        if (after != NULL)
            store_fail_result(s, after);
        else
            store_fail(s, STORE_UNAVAILABLE, "the connection to PostgreSQL was lost before %s was confirmed: %s",
                       name, PQerrorMessage(s->connection));
        PQclear(first);
        PQclear(after);
        return s->last_error.status;
    }
    PQclear(after);
    if (first != NULL && store_result_succeeded(first)) {
        *out = first;
        return STORE_OK;
    }
    if (first == NULL) {
        store_fail(s, PQstatus(s->connection) == CONNECTION_OK ? STORE_ERROR : STORE_UNAVAILABLE,
                   "no result for %s: %s", name, PQerrorMessage(s->connection));
        *resend = s->last_error.status == STORE_UNAVAILABLE;
        return s->last_error.status;
    }
    store_status status = store_fail_result(s, first);
    *resend = status == STORE_UNAVAILABLE && terminated_before_running(first);
    PQclear(first);
    return status;
}

/* ---- counting, for /metrics ---------------------------------------------------- */

/* Only the store's own thread writes: a load and a store, no locked add. */
static void bump(atomic_ulong *counter, unsigned long by)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + by, memory_order_relaxed);
}

static void count_call(store *s, uint64_t started_ns, store_status status)
{
    bump(&s->calls, 1);
    if (status == STORE_UNAVAILABLE || status == STORE_ERROR || status == STORE_TIMEOUT || status == STORE_BUSY)
        bump(&s->errors, 1);
    uint64_t spent = store_monotonic_ns() - started_ns;
    atomic_store_explicit(&s->duration_ns, atomic_load_explicit(&s->duration_ns, memory_order_relaxed) + spent,
                          memory_order_relaxed);
}

/* The request's deadline (store_set_deadline) has passed: a statement that
 * failed before it ran is not sent again, whatever the reason. */
static bool deadline_reached(const store *s)
{
    return s->deadline_ns != 0 && store_monotonic_ns() >= s->deadline_ns;
}

static store_status run_statement(store *s, store_statement statement, const char *const *params,
                                  store_result **result)
{
    *result = NULL;
    const char *name = statement_name(s, statement);
    if (name == NULL)
        return STORE_ERROR;
    int resent = 0;
    int busy = 0;
    for (;;) {
        bool was_connected = store_connected(s);
        bool resend = false;
        PGresult *answer = NULL;
        store_status status = run_once(s, statement, name, params, &answer, resent > 0, &resend);
        if (status == STORE_OK) {
            store_succeed(s);
            *result = store_result_of(answer);
            return STORE_OK;
        }
        if (store_in_transaction(s))
            return status; /* store_transaction decides about retries */
        if (resend && was_connected && !deadline_reached(s) && resent++ == 0)
            continue;
        /* Alone, a statement is its own transaction: a serialization
         * failure or deadlock rolled all of it back, so it may run again. */
        if (status == STORE_BUSY && ++busy < STORE_TRANSACTION_ATTEMPTS)
            continue;
        return status;
    }
}

void store_set_deadline(store *s, uint64_t deadline_ns)
{
    if (s != NULL)
        s->deadline_ns = deadline_ns;
}

/* Work that would start after the deadline is refused before it reaches
 * PostgreSQL; inside a transaction the statements go on, so that the
 * transaction ends as a whole. Not a call for /metrics: nothing was sent. */
static bool past_deadline(store *s)
{
    if (s->deadline_ns == 0 || store_monotonic_ns() < s->deadline_ns || store_in_transaction(s))
        return false;
    store_fail(s, STORE_DEADLINE, "the request's deadline passed before the call was sent");
    return true;
}

/* ---- on the pipe (store_use_pipe) ------------------------------------------------ */

void store_use_pipe(store *s, store_pipe *pipe)
{
    s->pipe = pipe;
}

/* One parked call: its answer lands here from the pipe's callback, on the
 * parked caller's stack, which lives until the caller runs again. */
typedef struct pipe_call {
    store *s;
    void *caller;
    store_pipe_ticket ticket;
    bool answered;
    store_status status;
    store_result *result;
    store_error error;
    char field[sizeof ((store *)0)->field];
} pipe_call;

/* The pipe's error is valid during its callback only. */
static void keep_failure(pipe_call *call, store_status status, const store_error *error)
{
    if (error != NULL) {
        call->error = *error;
        if (error->field != NULL) {
            snprintf(call->field, sizeof call->field, "%s", error->field);
            call->error.field = call->field;
        }
    } else {
        call->error = (store_error){.status = status};
    }
    call->error.status = status;
}

static void answered(pipe_call *call, store_status status, const store_error *error)
{
    call->answered = true;
    call->status = status;
    if (status != STORE_OK)
        keep_failure(call, status, error);
    call->s->wait.wake(call->s->wait.context, call->caller);
}

static void statement_answered(void *cookie, store_status status, store_result *result, const store_error *error)
{
    pipe_call *call = cookie;
    call->result = result;
    answered(call, status, error);
}

static void batch_answered(void *cookie, store_status status, const store_error *error)
{
    answered(cookie, status, error);
}

/* The request's deadline passed while its statement waited: cancelling
 * answers it at once (STORE_DEADLINE when unsent, STORE_UNAVAILABLE when
 * its outcome is unknown), which wakes the caller. */
static void call_expired(void *argument)
{
    pipe_call *call = argument;
    /* Already answered in this turn (the pipe closed at a stop, answering
     * every call, before the timers fired): nothing to cancel. */
    if (call->answered || call->s->pipe == NULL)
        return;
    store_pipe_cancel(call->s->pipe, call->ticket);
}

void store_last_error_save(const store *s, store_error_copy *out)
{
    out->error = s->last_error;
    out->field[0] = '\0';
    if (s->last_error.field == s->field) {
        memcpy(out->field, s->field, sizeof out->field);
        out->error.field = NULL; /* restored to the store's own buffer */
    }
}

void store_last_error_restore(store *s, const store_error_copy *saved)
{
    s->last_error = saved->error;
    if (saved->field[0] != '\0') {
        memcpy(s->field, saved->field, sizeof s->field);
        s->last_error.field = s->field;
    }
}

/* The caller, when this call can go through the pipe: one that can be
 * parked and is not inside a transaction of its own (another request's
 * transaction holding the store's connection meanwhile is not its). */
static void *pipe_caller(store *s)
{
    if (s->pipe == NULL || s->wait.caller == NULL || store_in_transaction(s))
        return NULL;
    return s->wait.caller(s->wait.context);
}

static store_status refused_by_pipe(store *s, store_status status)
{
    if (status == STORE_UNAVAILABLE)
        store_fail(s, status, "PostgreSQL is unreachable: a connection attempt failed moments ago");
    else
        store_fail(s, status, "the statement could not be queued (not registered, or out of memory)");
    return status;
}

/* Parks the caller until the answer; s->deadline_ns is the caller's (the
 * engine restores it whenever it resumes a request). */
static store_status wait_for_answer(store *s, pipe_call *call)
{
    while (!call->answered)
        s->wait.park(s->wait.context, call->caller, s->deadline_ns, call_expired, call);
    if (s->pipe != NULL) /* gone when the node stops: closing it answered this call */
        atomic_store_explicit(&s->pipe_reconnects, store_pipe_reconnect_count(s->pipe), memory_order_relaxed);
    if (call->status == STORE_OK) {
        store_succeed(s);
        return STORE_OK;
    }
    s->last_error = call->error;
    if (call->error.field != NULL) {
        snprintf(s->field, sizeof s->field, "%s", call->field);
        s->last_error.field = s->field;
    }
    return call->status;
}

static store_status run_on_pipe(store *s, void *caller, store_statement statement, const char *const *params,
                                store_result **result)
{
    pipe_call call = {.s = s, .caller = caller};
    store_status status = store_pipe_enqueue(s->pipe, statement, params, statement_answered, &call, &call.ticket);
    if (status != STORE_OK)
        return refused_by_pipe(s, status);
    status = wait_for_answer(s, &call);
    *result = status == STORE_OK ? call.result : NULL;
    return status;
}

static store_status batch_on_pipe(store *s, void *caller, store_batch_item *items, size_t count)
{
    pipe_call call = {.s = s, .caller = caller};
    store_status status = store_pipe_enqueue_batch(s->pipe, items, count, batch_answered, &call, &call.ticket);
    if (status != STORE_OK) {
        for (size_t i = 0; i < count; i++) {
            items[i].result = NULL;
            items[i].status = status;
        }
        return refused_by_pipe(s, status);
    }
    return wait_for_answer(s, &call);
}

store_status store_run(store *s, store_statement statement, const char *const *params, store_result **result)
{
    if (past_deadline(s)) {
        *result = NULL;
        return STORE_DEADLINE;
    }
    uint64_t started_ns = store_monotonic_ns();
    *result = NULL;
    void *caller = pipe_caller(s);
    store_status status;
    if (caller != NULL) {
        status = run_on_pipe(s, caller, statement, params, result);
    } else {
        bool took = false;
        status = store_hold_connection(s, store_current_caller(s), &took);
        if (status == STORE_OK)
            status = run_statement(s, statement, params, result);
        if (took)
            store_release_connection(s);
    }
    count_call(s, started_ns, status);
    return status;
}

/* ---- batches ------------------------------------------------------------------ */

static void forget_results(store_batch_item *items, size_t count, store_status status)
{
    for (size_t i = 0; i < count; i++) {
        store_result_free(items[i].result);
        items[i].result = NULL;
        if (items[i].status != STORE_ERROR || status == STORE_UNAVAILABLE)
            items[i].status = status;
    }
}

/* Reads one item's answer: its result, the end of its results, then its
 * sync point. false when the connection was lost. */
static bool read_item(store *s, store_batch_item *item, uint64_t deadline, store_error *first_failure,
                      bool *terminated)
{
    PGresult *answer = NULL;
    int empty_in_a_row = 0;
    for (;;) {
        if (!store_wait_ready(s, deadline)) {
            PQclear(answer);
            return false;
        }
        PGresult *result = PQgetResult(s->connection);
        if (PQstatus(s->connection) != CONNECTION_OK) {
            if (result != NULL && terminated_before_running(result))
                *terminated = true;
            if (result != NULL)
                store_fail_result(s, result);
            else
                store_fail(s, STORE_UNAVAILABLE, "the connection to PostgreSQL was lost: %s",
                           PQerrorMessage(s->connection));
            PQclear(result);
            PQclear(answer);
            return false;
        }
        if (result == NULL) {
            if (++empty_in_a_row > 1) {
                store_fail(s, STORE_UNAVAILABLE, "out of step with PostgreSQL's pipeline");
                PQclear(answer);
                store_drop_connection(s);
                return false;
            }
            continue;
        }
        empty_in_a_row = 0;
        if (PQresultStatus(result) == PGRES_PIPELINE_SYNC) {
            PQclear(result);
            break;
        }
        /* Outside BEGIN the item commits at its sync, after its rows: an
         * error between them is the commit failing (a deferred
         * constraint), and it is the item's answer, as in run_once. */
        if (answer == NULL || (store_result_succeeded(answer) && !store_result_succeeded(result))) {
            PQclear(answer);
            answer = result;
        } else
            PQclear(result);
    }
    if (answer != NULL && store_result_succeeded(answer)) {
        item->result = store_result_of(answer);
        item->status = STORE_OK;
        return true;
    }
    if (answer == NULL)
        store_fail(s, STORE_ERROR, "no result for a batch item");
    else if (PQresultStatus(answer) == PGRES_PIPELINE_ABORTED)
        store_fail(s, STORE_ERROR, "skipped: an earlier statement of the pipeline failed");
    else
        store_fail_result(s, answer);
    item->status = s->last_error.status;
    if (first_failure->status == STORE_OK)
        *first_failure = s->last_error;
    PQclear(answer);
    return true;
}

/* One try at the whole batch; *resend as for run_once. */
static store_status batch_once(store *s, store_batch_item *items, size_t count, bool forced, bool *resend)
{
    *resend = false;
    /* The batch reports the failure of the first item that failed, in the
     * items' order: an unregistered one, or one the server refused. */
    store_error first_failure = {.status = STORE_OK};
    size_t first_unregistered = count;
    for (size_t i = 0; i < count; i++) {
        items[i].result = NULL;
        items[i].status = store_registry_name(s->config.registry, items[i].statement) != NULL ? STORE_OK
                                                                                             : STORE_ERROR;
        if (items[i].status != STORE_OK && first_unregistered == count)
            first_unregistered = i;
    }
    if (!store_ready_connection(s, forced)) {
        forget_results(items, count, STORE_UNAVAILABLE);
        return STORE_UNAVAILABLE;
    }
    PGconn *connection = s->connection;
    if (!PQenterPipelineMode(connection)) {
        store_fail(s, STORE_ERROR, "cannot enter pipeline mode: %s", PQerrorMessage(connection));
        forget_results(items, count, STORE_ERROR);
        return STORE_ERROR;
    }
    /* A sync after each item makes it its own implicit transaction, so that
     * a failure aborts only that item. Inside BEGIN a sync ends nothing: the
     * items share the caller's transaction, as they should. */
    for (size_t i = 0; i < count; i++) {
        if (items[i].status != STORE_OK)
            continue;
        const char *name = store_registry_name(s->config.registry, items[i].statement);
        int param_count = store_registry_param_count(s->config.registry, items[i].statement);
        if (!PQsendQueryPrepared(connection, name, param_count, items[i].params, NULL, NULL, 0) ||
            !PQpipelineSync(connection)) {
            /* Nothing was read yet: whether earlier items ran is unknown
             * unless the server had closed the connection already. */
            store_fail(s, STORE_UNAVAILABLE, "cannot send a batch: %s", PQerrorMessage(connection));
            *resend = i == 0 && PQstatus(connection) != CONNECTION_OK;
            store_drop_connection(s);
            forget_results(items, count, STORE_UNAVAILABLE);
            return STORE_UNAVAILABLE;
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (items[i].status != STORE_OK)
            continue;
        /* Each item gets the whole answer timeout: the limit is on a server
         * that stopped answering, not on the size of the batch. */
        uint64_t deadline = store_monotonic_ms() + (uint64_t)s->config.answer_timeout_ms;
        bool terminated = false;
        store_error *failure = i < first_unregistered ? &first_failure : &(store_error){.status = STORE_ERROR};
        if (!read_item(s, &items[i], deadline, failure, &terminated)) {
            *resend = terminated && i == 0;
            store_error lost = s->last_error;
            if (s->connection != NULL)
                store_drop_connection(s);
            forget_results(items, count, STORE_UNAVAILABLE);
            s->last_error = lost;
            s->last_error.status = STORE_UNAVAILABLE;
            return STORE_UNAVAILABLE;
        }
    }
    if (!PQexitPipelineMode(connection)) {
        store_fail(s, STORE_UNAVAILABLE, "cannot leave pipeline mode: %s", PQerrorMessage(connection));
        store_drop_connection(s);
        forget_results(items, count, STORE_UNAVAILABLE);
        return STORE_UNAVAILABLE;
    }
    if (first_failure.status == STORE_OK && first_unregistered < count)
        statement_name(s, items[first_unregistered].statement); /* records why */
    else
        s->last_error = first_failure;
    return s->last_error.status;
}

static store_status run_batch(store *s, store_batch_item *items, size_t count)
{
    if (count == 0) {
        store_succeed(s);
        return STORE_OK;
    }
    for (int resent = 0;; resent++) {
        bool was_connected = store_connected(s);
        bool resend = false;
        store_status status = batch_once(s, items, count, resent > 0, &resend);
        if (resend && was_connected && !store_in_transaction(s) && !deadline_reached(s) && resent == 0)
            continue;
        return status;
    }
}

store_status store_batch(store *s, store_batch_item *items, size_t count)
{
    if (past_deadline(s)) {
        for (size_t i = 0; i < count; i++) {
            items[i].result = NULL;
            items[i].status = STORE_DEADLINE;
        }
        return STORE_DEADLINE;
    }
    uint64_t started_ns = store_monotonic_ns();
    void *caller = count > 0 ? pipe_caller(s) : NULL;
    store_status status;
    if (caller != NULL) {
        status = batch_on_pipe(s, caller, items, count);
    } else {
        bool took = false;
        status = count > 0 ? store_hold_connection(s, store_current_caller(s), &took) : STORE_OK;
        if (status == STORE_OK)
            status = run_batch(s, items, count);
        else
            for (size_t i = 0; i < count; i++) {
                items[i].result = NULL;
                items[i].status = status;
            }
        if (took)
            store_release_connection(s);
    }
    count_call(s, started_ns, status);
    return status;
}

/* ---- transactions ------------------------------------------------------------ */

static const char *begin_statement(store_isolation isolation)
{
    switch (isolation) {
    case STORE_REPEATABLE_READ:
        return "BEGIN ISOLATION LEVEL REPEATABLE READ";
    case STORE_SERIALIZABLE:
        return "BEGIN ISOLATION LEVEL SERIALIZABLE";
    case STORE_READ_COMMITTED:
        break;
    }
    return "BEGIN ISOLATION LEVEL READ COMMITTED";
}

/* Runs a transaction-control command; STORE_OK or the failure recorded. */
static store_status control(store *s, const char *sql, const char *expected_tag)
{
    PGresult *result = store_exec(s, sql);
    if (result == NULL)
        return s->last_error.status;
    store_status status = STORE_OK;
    if (PQresultStatus(result) != PGRES_COMMAND_OK)
        status = store_fail_result(s, result);
    else if (expected_tag != NULL && strcmp(PQcmdStatus(result), expected_tag) != 0)
        /* COMMIT of a transaction that failed earlier succeeds as ROLLBACK. */
        store_fail(s, status = STORE_ERROR, "the transaction had failed and was rolled back");
    PQclear(result);
    return status;
}

/* Ends a failed attempt. The body's failure is what the caller needs to
 * see, so it survives a successful rollback. */
static void roll_back(store *s)
{
    if (!store_connected(s))
        return;
    store_error failure = s->last_error;
    if (control(s, "ROLLBACK", NULL) == STORE_OK)
        s->last_error = failure;
    else if (s->connection != NULL)
        store_drop_connection(s); /* its transaction state is unknown */
}

/* The attempts of a transaction, its caller holding the connection. */
static store_status run_transaction(store *s, store_isolation isolation, store_transaction_fn body, void *data)
{
    for (int attempt = 1;; attempt++) {
        /* A retry is new work too. */
        if (past_deadline(s))
            return STORE_DEADLINE;
        /* Connecting (and a lost idle connection) is handled here, before the
         * transaction exists; once it does, a lost connection ends it. */
        if (!store_ready_connection(s, false))
            return STORE_UNAVAILABLE;
        store_status status = control(s, begin_statement(isolation), NULL);
        if (status != STORE_OK)
            return status;
        s->holder_in_transaction = true;
        s->transaction_retryable = false;
        status = body(s, data);
        if (status == STORE_OK) {
            status = control(s, "COMMIT", "COMMIT");
            if (status != STORE_OK && s->transaction_retryable)
                status = STORE_BUSY;
        } else {
            roll_back(s);
        }
        bool retry = status != STORE_OK && s->transaction_retryable;
        s->holder_in_transaction = false;
        s->transaction_retryable = false;
        if (status == STORE_OK) {
            store_succeed(s);
            return STORE_OK;
        }
        if (!retry)
            return status;
        if (attempt >= STORE_TRANSACTION_ATTEMPTS) {
            s->last_error.status = STORE_BUSY;
            return STORE_BUSY;
        }
    }
}

store_status store_transaction(store *s, store_isolation isolation, store_transaction_fn body, void *data)
{
    void *caller = store_current_caller(s);
    if (s->holder == caller && s->holder_in_transaction) {
        store_fail(s, STORE_ERROR, "store_transaction cannot nest");
        return STORE_ERROR;
    }
    /* Not worth waiting for the connection. */
    if (past_deadline(s))
        return STORE_DEADLINE;
    /* The connection is the transaction's from BEGIN to its end, while its
     * caller may be parked (a statement, Redis, the side pool) and others
     * of its thread run: theirs wait for it, first come first served. */
    bool took = false;
    store_status status = store_hold_connection(s, caller, &took);
    if (status != STORE_OK)
        return status;
    status = run_transaction(s, isolation, body, data);
    if (took)
        store_release_connection(s);
    return status;
}
