/* store/store_internal.h: shared by store's own files only (and by the
 * unit tests, which check the registry and the error mapping without a
 * server). */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <shoal/store.h>

#include "pipe.h"

struct store {
    PGconn *connection;
    store_config config; /* its strings are this store's own copies */
    uint64_t last_attempt_ms;
    bool last_attempt_failed;
    /* The server's count of connections made by any store of the process
     * (store.c, reach_of), as it was when our last attempt started; NULL
     * when the table was full. */
    atomic_ulong *reach;
    unsigned long reach_at_attempt;
    bool ever_attempted; /* a connection made after this is a reconnect */
    /* Relaxed atomics: only this store's thread writes them, and /metrics
     * reads them from another. */
    atomic_ulong reconnects;
    atomic_ulong calls;
    atomic_ulong errors;
    atomic_ullong duration_ns;
    /* Who uses the connection now (store_hold_connection): a caller that
     * can be parked, or STORE_BLOCKING_CALLER; NULL while it is free. The
     * engine runs other requests while its holder is parked, so the
     * connection's state (a transaction open on it) is its holder's alone.
     * Callers waiting for it queue here, first come first served. */
    void *holder;
    struct store_connection_waiter *waiters_head;
    struct store_connection_waiter *waiters_tail;
    /* The holder is inside store_transaction: no reconnects, no rollback of
     * "leftover" transactions, and a serialization failure or deadlock
     * marks the attempt for a retry. */
    bool holder_in_transaction;
    bool transaction_retryable;
    uint64_t deadline_ns; /* store_set_deadline; 0: none */
    /* store_use_wait: how callers are parked; store_use_pipe: where calls
     * outside a transaction go when the caller can be parked. */
    store_wait wait;
    store_pipe *pipe;
    /* The pipe's reconnects as last seen on this thread, for /metrics. */
    atomic_ulong pipe_reconnects;
    store_error last_error;
    /* last_error.field points here when the field came from the server (a
     * column name) rather than from the registry. */
    char field[64];
    /* Why a statement failed to prepare on this connection, so that its
     * runs can say so instead of "prepared statement does not exist". */
    char prepare_failure[200];
};

/* A new connection with the timeouts and application name applied and
 * notices silenced; check PQstatus. */
PGconn *store_connect(const store_config *config);
/* The same without blocking (PQconnectStartParams): the caller drives
 * PQconnectPoll. libpq does not enforce connect_timeout then; the caller
 * must. */
PGconn *store_connect_start(const store_config *config);
/* The same for a connection of its own (migrations, seeding, the budget
 * check): NULL with "cannot connect to PostgreSQL: <libpq's reason>" in
 * error when there is no good one. */
PGconn *store_connect_or_explain(const store_config *config, char *error, size_t error_size);

/* A result is libpq's own, handed out under the opaque name (run.c):
 * wrapping it would cost an allocation per statement for nothing. */
static inline store_result *store_result_of(PGresult *result)
{
    return (store_result *)(void *)result;
}

/* A statement's result that carries rows or a command tag (not an error,
 * not a pipeline's abort or sync). */
static inline bool store_result_succeeded(const PGresult *result)
{
    ExecStatusType status = PQresultStatus(result);
    return status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
}

/* A connection owner's own copy of config (store_open, store_pipe_open):
 * the strings duplicated, the application name and the answer timeout
 * defaulted. false when out of memory (out then holds what it could copy;
 * store_config_release frees it either way). */
bool store_config_copy(store_config *out, const store_config *config);
void store_config_release(store_config *config);

/* CLOCK_MONOTONIC readings (inline: every statement reads the clock). */
static inline uint64_t store_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static inline uint64_t store_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* ---- the connection (store.c) ----------------------------------------------- */

/* The holder of a call that cannot be parked: it runs to its end before
 * anything else of its thread runs. */
extern char store_blocking_caller_token;
#define STORE_BLOCKING_CALLER ((void *)&store_blocking_caller_token)

/* The caller now: the request to park (store_wait's caller), or
 * STORE_BLOCKING_CALLER. */
void *store_current_caller(const store *s);
/* The calling request is inside its own store_transaction. */
bool store_in_transaction(const store *s);
/* Takes the connection for caller, waiting (parked, in turn) while another
 * caller holds it; *took says whether this call took it (false when the
 * caller held it already), and then store_release_connection gives it
 * back. STORE_OK, or a failure recorded: STORE_UNAVAILABLE for a caller
 * that cannot be parked while another holds it, STORE_DEADLINE when the
 * request's deadline passed while it waited. */
store_status store_hold_connection(store *s, void *caller, bool *took);
/* Hands the connection to the first caller waiting, if any. */
void store_release_connection(store *s);

/* Makes the connection ready for a statement: drops one that died while
 * idle (that statement could not have run, so a new connection is made at
 * once), connects when there is none (prepares the registry's statements),
 * and, outside store_transaction, rolls back a transaction a caller left
 * open. false with last_error set (STORE_UNAVAILABLE) when there is no
 * usable connection. */
bool store_ready_connection(store *s, bool forced);
void store_drop_connection(store *s);
/* Waits until PQgetResult will not block, at most until deadline. false
 * when the server did not answer in time (the connection is dropped then,
 * with last_error set). A connection that broke is not an error here: its
 * next PQgetResult returns the failure without blocking. */
bool store_wait_ready(store *s, uint64_t deadline);
/* Runs one simple-protocol command (BEGIN, COMMIT, ROLLBACK) within the
 * answer timeout; the last result, or NULL when the server did not answer
 * in time or the connection is gone (last_error set). */
PGresult *store_exec(store *s, const char *sql);

/* ---- failures (errors.c) --------------------------------------------------- */

/* The status a SQLSTATE stands for: the one place that knows which class
 * means what. NULL or "" (no server answer) gives STORE_ERROR; the caller
 * knows whether the connection was lost. */
store_status store_status_for_sqlstate(const char *sqlstate);
/* True for 40001 and 40P01: the transaction may succeed when run again. */
bool store_sqlstate_retryable(const char *sqlstate);

/* Fills error from the server's fields (any may be NULL). The field comes
 * from the registry's constraint map, else, for a not-null violation, from
 * the column name (copied into field_storage). */
void store_describe_failure(store_error *error, char *field_storage, size_t field_size,
                            const store_registry *registry, const char *sqlstate,
                            const char *constraint, const char *column, const char *message);

/* Records a failure without a server answer (unreachable, timed out, misuse). */
void store_fail(store *s, store_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* Records the failure a result carries; returns its status. A failure on a
 * connection that broke is STORE_UNAVAILABLE whatever the SQLSTATE. */
store_status store_fail_result(store *s, const PGresult *result);
void store_succeed(store *s);

/* libpq's messages span lines ("...failed\n\tIs the server running..."):
 * makes one a single line for logs and error strings, in place. */
void store_tidy_message(char *text);

/* ---- the registry (statements.c) ------------------------------------------- */

int store_registry_count(const store_registry *registry);
bool store_registry_frozen(const store_registry *registry);
/* NULL when statement is not an id of this registry. */
const char *store_registry_name(const store_registry *registry, store_statement statement);
const char *store_registry_sql(const store_registry *registry, store_statement statement);
int store_registry_param_count(const store_registry *registry, store_statement statement);
/* The field a constraint guards, or NULL. */
const char *store_registry_field(const store_registry *registry, const char *constraint);

#endif
