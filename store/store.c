/* store/store.c: a worker's PostgreSQL connection. */
#include <shoal/store.h>

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

static void ignore_notice(void *context, const char *message)
{
    (void)context;
    (void)message;
}

/* Starts a connection (blocking: PQconnectdbParams; or not: PQconnectStartParams)
 * with the timeouts and application name applied and notices silenced. */
static PGconn *connect_with(const store_config *config, bool blocking)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", config->connect_timeout_s > 0 ? config->connect_timeout_s : 2);
    /* Set at connect, the server applies it to every statement of the
     * session without a round trip of ours. */
    char options[64];
    snprintf(options, sizeof options, "-c statement_timeout=%d",
             config->statement_timeout_ms > 0 ? config->statement_timeout_ms : 0);
    /* dbname with expand_dbname=1 accepts a whole URI or conninfo string.
     * libpq lets later keywords override earlier ones, so the defaults come
     * first and whatever the URI says wins (an `options` in the URI replaces
     * ours entirely). */
    const char *keywords[] = {"connect_timeout", "application_name", "options", "dbname", NULL};
    const char *values[] = {timeout,
                            config->application_name != NULL ? config->application_name : "shoal-node",
                            options,
                            config->conninfo != NULL && config->conninfo[0] != '\0' ? config->conninfo : NULL,
                            NULL};
    PGconn *connection =
        blocking ? PQconnectdbParams(keywords, values, 1) : PQconnectStartParams(keywords, values, 1);
    if (connection != NULL)
        PQsetNoticeProcessor(connection, ignore_notice, NULL);
    return connection;
}

PGconn *store_connect(const store_config *config)
{
    return connect_with(config, true);
}

PGconn *store_connect_start(const store_config *config)
{
    return connect_with(config, false);
}

/* ---- reachability, shared by the stores of one server ------------------------ */

/* A store waits STORE_RECONNECT_INTERVAL_MS after a failed attempt, so that
 * an outage does not turn every request into a connect. When another store
 * (a worker's, or the readiness monitor's) reaches the server again, the
 * wait has no reason left: the stores of a conninfo count their successful
 * connects here, and one whose last attempt failed tries again at once when
 * the count moved since. A fixed table: a process has one or two conninfo
 * strings (tests a few more); a store of one beyond it waits as before. */
#define REACH_SLOTS 32

static struct {
    uint64_t key;
    atomic_ulong connects;
} reach_table[REACH_SLOTS];
static int reach_used;
static pthread_mutex_t reach_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_ulong *reach_of(const char *conninfo)
{
    uint64_t key = 14695981039346656037ULL; /* FNV-1a */
    for (const char *p = conninfo; *p != '\0'; p++)
        key = (key ^ (unsigned char)*p) * 1099511628211ULL;
    atomic_ulong *found = NULL;
    pthread_mutex_lock(&reach_lock);
    for (int i = 0; i < reach_used && found == NULL; i++)
        if (reach_table[i].key == key)
            found = &reach_table[i].connects;
    if (found == NULL && reach_used < REACH_SLOTS) {
        reach_table[reach_used].key = key;
        found = &reach_table[reach_used++].connects;
    }
    pthread_mutex_unlock(&reach_lock);
    return found;
}

/* ---- the connection ------------------------------------------------------------- */

PGconn *store_connect_or_explain(const store_config *config, char *error, size_t error_size)
{
    PGconn *connection = store_connect(config);
    if (connection != NULL && PQstatus(connection) == CONNECTION_OK)
        return connection;
    snprintf(error, error_size, "cannot connect to PostgreSQL: %s",
             connection != NULL ? PQerrorMessage(connection) : "out of memory");
    store_tidy_message(error);
    PQfinish(connection);
    return NULL;
}

bool store_config_copy(store_config *out, const store_config *config)
{
    *out = *config;
    out->conninfo = strdup(config->conninfo != NULL ? config->conninfo : "");
    out->application_name = strdup(config->application_name != NULL ? config->application_name : "shoal-node");
    if (out->answer_timeout_ms <= 0)
        out->answer_timeout_ms = 1000 * (config->connect_timeout_s > 0 ? config->connect_timeout_s : 2);
    return out->conninfo != NULL && out->application_name != NULL;
}

void store_config_release(store_config *config)
{
    free((char *)config->conninfo);
    free((char *)config->application_name);
    config->conninfo = config->application_name = NULL;
}

store *store_open(const store_config *config)
{
    /* Workers read a registry without locks: it must not change any more. */
    if (config->registry != NULL && !store_registry_frozen(config->registry))
        return NULL;
    store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (!store_config_copy(&s->config, config)) {
        store_close(s);
        return NULL;
    }
    s->reach = reach_of(s->config.conninfo);
    return s;
}

void store_close(store *s)
{
    if (s == NULL)
        return;
    if (s->connection != NULL)
        PQfinish(s->connection);
    store_config_release(&s->config);
    free(s);
}

bool store_connected(const store *s)
{
    return s->connection != NULL && PQstatus(s->connection) == CONNECTION_OK;
}

unsigned long store_reconnect_count(const store *s)
{
    return atomic_load_explicit(&s->reconnects, memory_order_relaxed);
}

void store_stats_read(const store *s, store_stats *out)
{
    out->calls = atomic_load_explicit(&s->calls, memory_order_relaxed);
    out->errors = atomic_load_explicit(&s->errors, memory_order_relaxed);
    out->reconnects = atomic_load_explicit(&s->reconnects, memory_order_relaxed) +
                      atomic_load_explicit(&s->pipe_reconnects, memory_order_relaxed);
    out->duration_ns = atomic_load_explicit(&s->duration_ns, memory_order_relaxed);
}

int store_backend_pid(const store *s)
{
    return store_connected(s) ? PQbackendPID(s->connection) : 0;
}

const store_error *store_last_error(const store *s)
{
    return &s->last_error;
}

void store_drop_connection(store *s)
{
    PQfinish(s->connection);
    s->connection = NULL;
}

/* Records why the connection is unusable, from libpq when it knows. */
static void fail_unavailable(store *s, const char *what)
{
    const char *reason = s->connection != NULL ? PQerrorMessage(s->connection) : "";
    store_fail(s, STORE_UNAVAILABLE, "%s%s%s", what, reason[0] != '\0' ? ": " : "", reason);
}

/* Waits until fd is ready for events or deadline (ms): parked when the
 * caller can be (its thread serves others meanwhile), else in poll(). A
 * TIMED_OUT may come early (a signal): callers check the clock. */
static store_socket_wait wait_for_socket(store *s, int fd, unsigned events, uint64_t deadline)
{
    void *caller = s->wait.caller != NULL ? s->wait.caller(s->wait.context) : NULL;
    if (caller != NULL)
        return s->wait.park_on_socket(s->wait.context, caller, fd, events, deadline * 1000000u);
    uint64_t now = store_monotonic_ms();
    if (now >= deadline)
        return STORE_SOCKET_TIMED_OUT;
    short wanted = (short)(((events & STORE_SOCKET_READABLE) ? POLLIN : 0) | ((events & STORE_SOCKET_WRITABLE) ? POLLOUT : 0));
    struct pollfd ready_fd = {.fd = fd, .events = wanted};
    int ready = poll(&ready_fd, 1, (int)(deadline - now));
    if (ready > 0)
        return STORE_SOCKET_READY;
    if (ready == 0 || errno == EINTR)
        return STORE_SOCKET_TIMED_OUT;
    return STORE_SOCKET_FAILED;
}

/* Records why a wait on the connection ended it (it is dropped then). */
static void fail_wait(store *s, store_socket_wait waited, const char *what)
{
    int error = errno;
    if (s->connection != NULL)
        store_drop_connection(s);
    if (waited == STORE_SOCKET_STOPPING)
        store_fail(s, STORE_UNAVAILABLE, "%s: the node is stopping", what);
    else
        store_fail(s, STORE_UNAVAILABLE, "%s failed: %s", what, strerror(error));
}

bool store_wait_ready(store *s, uint64_t deadline)
{
    PGconn *connection = s->connection;
    while (PQisBusy(connection) && PQsocket(connection) >= 0) {
        if (store_monotonic_ms() >= deadline) {
            store_drop_connection(s);
            store_fail(s, STORE_UNAVAILABLE, "PostgreSQL did not answer within %d ms", s->config.answer_timeout_ms);
            return false;
        }
        store_socket_wait waited = wait_for_socket(s, PQsocket(connection), STORE_SOCKET_READABLE, deadline);
        if (waited == STORE_SOCKET_TIMED_OUT)
            continue;
        if (waited != STORE_SOCKET_READY) {
            fail_wait(s, waited, "waiting for PostgreSQL");
            return false;
        }
        if (!PQconsumeInput(connection))
            return true; /* broken: PQgetResult reports it without waiting */
    }
    return true;
}

/* Sends sql and waits at most the answer timeout for all of its results;
 * returns the last one, or NULL when the connection broke or the server did
 * not answer in time. A server that stopped answering cannot be trusted
 * with the next statement either, so the connection is dropped then. */
PGresult *store_exec(store *s, const char *sql)
{
    if (!store_connected(s)) {
        fail_unavailable(s, "no connection to PostgreSQL");
        return NULL;
    }
    if (!PQsendQuery(s->connection, sql)) {
        fail_unavailable(s, "cannot send to PostgreSQL");
        return NULL;
    }
    uint64_t deadline = store_monotonic_ms() + (uint64_t)s->config.answer_timeout_ms;
    PGresult *last = NULL;
    for (;;) {
        if (!store_wait_ready(s, deadline)) {
            PQclear(last);
            return NULL;
        }
        PGresult *result = PQgetResult(s->connection);
        if (result == NULL)
            return last;
        PQclear(last);
        last = result;
    }
}

/* Prepares every registered statement in one round trip: pipeline mode,
 * with a sync after each, so that one statement that fails to prepare (a
 * table a migration has not created yet) does not abort the others. Such a
 * statement stays unprepared; its runs fail and say why. A failure that
 * passes with time (a lock held past statement_timeout, a server shutting
 * down) would leave the statement missing on a connection that lives on,
 * so it fails the connection instead: the next attempt prepares again.
 * false when the connection was lost or failed so (it is dropped). */
static bool prepare_statements(store *s)
{
    const store_registry *registry = s->config.registry;
    int count = store_registry_count(registry);
    s->prepare_failure[0] = '\0';
    if (count == 0)
        return true;
    PGconn *connection = s->connection;
    bool transient = false;
    if (!PQenterPipelineMode(connection))
        goto lost;
    for (int i = 0; i < count; i++)
        if (!PQsendPrepare(connection, store_registry_name(registry, i), store_registry_sql(registry, i),
                           store_registry_param_count(registry, i), NULL) ||
            !PQpipelineSync(connection))
            goto lost;
    uint64_t deadline = store_monotonic_ms() + (uint64_t)s->config.answer_timeout_ms;
    for (int i = 0; i < count; i++) {
        /* Each statement answers with its result, the end of its results
         * (NULL) and its sync point. */
        int empty_in_a_row = 0;
        for (;;) {
            if (!store_wait_ready(s, deadline))
                return false;
            PGresult *result = PQgetResult(connection);
            if (PQstatus(connection) != CONNECTION_OK) {
                PQclear(result);
                goto lost;
            }
            if (result == NULL) {
                if (++empty_in_a_row > 1)
                    goto lost; /* out of step with the pipeline: not safe to use */
                continue;
            }
            empty_in_a_row = 0;
            ExecStatusType status = PQresultStatus(result);
            if (status == PGRES_FATAL_ERROR) {
                store_status meaning = store_status_for_sqlstate(PQresultErrorField(result, PG_DIAG_SQLSTATE));
                bool passing = meaning == STORE_UNAVAILABLE || meaning == STORE_TIMEOUT || meaning == STORE_BUSY;
                if (s->prepare_failure[0] == '\0' || (passing && !transient)) {
                    snprintf(s->prepare_failure, sizeof s->prepare_failure, "statement %s did not prepare: %s",
                             store_registry_name(registry, i), PQresultErrorMessage(result));
                    store_tidy_message(s->prepare_failure);
                }
                transient = transient || passing;
            }
            PQclear(result);
            if (status == PGRES_PIPELINE_SYNC)
                break;
        }
    }
    if (!PQexitPipelineMode(connection))
        goto lost;
    if (transient) {
        store_fail(s, STORE_UNAVAILABLE, "cannot prepare statements now: %s", s->prepare_failure);
        store_drop_connection(s);
        return false;
    }
    return true;
lost:
    fail_unavailable(s, "cannot prepare statements");
    store_drop_connection(s);
    return false;
}

/* Makes s->connection: blocking (PQconnectdbParams) for a caller that
 * cannot be parked; otherwise without blocking the thread (as the pipe
 * connects), the caller parked on the socket between PQconnectPoll's
 * steps, each step within the connect timeout as libpq's connect_timeout
 * counts it. false with the failure recorded (a failed connection may
 * stay in s->connection, for the next attempt to drop). */
static bool open_connection(store *s)
{
    if (s->wait.caller == NULL || s->wait.caller(s->wait.context) == NULL) {
        s->connection = store_connect(&s->config);
        if (store_connected(s))
            return true;
        fail_unavailable(s, "cannot connect to PostgreSQL");
        return false;
    }
    s->connection = store_connect_start(&s->config);
    if (s->connection == NULL) {
        store_fail(s, STORE_UNAVAILABLE, "cannot connect to PostgreSQL: out of memory");
        return false;
    }
    int timeout_s = s->config.connect_timeout_s > 0 ? s->config.connect_timeout_s : 2;
    /* PQconnectStartParams's contract: as if PQconnectPoll had said WRITING. */
    PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
    while (polling != PGRES_POLLING_OK) {
        if (PQstatus(s->connection) == CONNECTION_BAD || polling == PGRES_POLLING_FAILED) {
            fail_unavailable(s, "cannot connect to PostgreSQL");
            return false;
        }
        uint64_t deadline = store_monotonic_ms() + 1000u * (uint64_t)timeout_s;
        unsigned events = polling == PGRES_POLLING_READING ? STORE_SOCKET_READABLE : STORE_SOCKET_WRITABLE;
        store_socket_wait waited;
        do
            waited = wait_for_socket(s, PQsocket(s->connection), events, deadline);
        while (waited == STORE_SOCKET_TIMED_OUT && store_monotonic_ms() < deadline);
        if (waited == STORE_SOCKET_TIMED_OUT) {
            store_drop_connection(s);
            store_fail(s, STORE_UNAVAILABLE, "cannot connect to PostgreSQL: no answer within %d s", timeout_s);
            return false;
        }
        if (waited != STORE_SOCKET_READY) {
            fail_wait(s, waited, "connecting to PostgreSQL");
            return false;
        }
        polling = PQconnectPoll(s->connection);
    }
    return store_connected(s);
}

/* Connects when there is no good connection, unless the last attempt
 * failed less than STORE_RECONNECT_INTERVAL_MS ago and no store has reached
 * the server since (forced attempts ignore the interval: a connection found
 * dead before a statement was sent deserves one at once). */
static bool ensure_connected(store *s, bool forced)
{
    if (store_connected(s))
        return true;
    uint64_t now = store_monotonic_ms();
    unsigned long reached = s->reach != NULL ? atomic_load(s->reach) : 0;
    bool waiting = s->last_attempt_failed && now - s->last_attempt_ms < STORE_RECONNECT_INTERVAL_MS &&
                   reached == s->reach_at_attempt;
    if (!forced && waiting) {
        store_fail(s, STORE_UNAVAILABLE, "PostgreSQL is unreachable; the next attempt comes within %d ms",
                   STORE_RECONNECT_INTERVAL_MS);
        return false;
    }
    s->last_attempt_ms = now;
    s->reach_at_attempt = reached;
    s->last_attempt_failed = true;
    bool again = s->ever_attempted;
    s->ever_attempted = true;
    if (s->connection != NULL)
        store_drop_connection(s);
    if (!open_connection(s))
        return false;
    if (!prepare_statements(s))
        return false;
    s->last_attempt_failed = false;
    if (s->reach != NULL)
        atomic_fetch_add(s->reach, 1);
    /* A connection made after a loss or after a failed attempt: what an
     * operator counts after an outage, whether or not this worker had
     * been connected before it. */
    if (again)
        atomic_fetch_add_explicit(&s->reconnects, 1, memory_order_relaxed);
    return true;
}

/* An idle connection has nothing to read unless the server is closing it
 * (a restart, pg_terminate_backend: an error, then end of file) or sent a
 * notification. Reading it now finds a dead connection before a statement
 * is sent on it, when resending is still certainly safe. */
static bool idle_connection_alive(store *s)
{
    PGconn *connection = s->connection;
    for (int round = 0; round < 4 && PQstatus(connection) == CONNECTION_OK; round++) {
        struct pollfd readable = {.fd = PQsocket(connection), .events = POLLIN};
        int ready = poll(&readable, 1, 0);
        if (ready == 0 || (ready < 0 && errno == EINTR))
            return true;
        if (ready < 0 || !PQconsumeInput(connection))
            return false;
        for (PGnotify *notify = PQnotifies(connection); notify != NULL; notify = PQnotifies(connection))
            PQfreemem(notify);
    }
    return PQstatus(connection) == CONNECTION_OK;
}

bool store_ready_connection(store *s, bool forced)
{
    /* Only a connection that was good: what is left of a failed attempt is
     * ensure_connected's to replace, within its interval. */
    if (store_connected(s) && !idle_connection_alive(s)) {
        store_drop_connection(s);
        forced = true;
    }
    if (store_in_transaction(s)) {
        /* A new connection would run the rest outside the transaction. */
        if (!store_connected(s)) {
            store_fail(s, STORE_UNAVAILABLE, "the connection to PostgreSQL was lost inside a transaction");
            return false;
        }
        return true;
    }
    if (!ensure_connected(s, forced))
        return false;
    PGTransactionStatusType state = PQtransactionStatus(s->connection);
    if (state != PQTRANS_INTRANS && state != PQTRANS_INERROR)
        return true;
    /* A caller left a transaction open: no request may inherit it. */
    PGresult *result = store_exec(s, "ROLLBACK");
    bool rolled_back = result != NULL && PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    if (rolled_back)
        return true;
    if (s->connection != NULL)
        store_drop_connection(s);
    return ensure_connected(s, true);
}

static store_status ping_held(store *s)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = store_connected(s);
        if (!ensure_connected(s, attempt > 0))
            return STORE_UNAVAILABLE;
        /* The empty query is the cheapest real round trip. */
        PGresult *result = store_exec(s, "");
        ExecStatusType status = result != NULL ? PQresultStatus(result) : PGRES_FATAL_ERROR;
        if (status == PGRES_EMPTY_QUERY) {
            PQclear(result);
            store_succeed(s);
            return STORE_OK;
        }
        if (result != NULL)
            store_fail_result(s, result);
        PQclear(result);
        if (s->connection == NULL)
            return STORE_UNAVAILABLE; /* no answer in time: not worth a retry now */
        if (PQstatus(s->connection) == CONNECTION_OK)
            return STORE_ERROR;
        /* The connection died under us (a server restart): retry once on a
         * fresh one, but only if it had been good before this call. */
        if (!was_connected)
            break;
    }
    return STORE_UNAVAILABLE;
}

int store_conninfo_check(const char *conninfo, char *error, size_t error_size)
{
    if (conninfo == NULL || conninfo[0] == '\0')
        return 0; /* libpq's PG* variables */
    char *reason = NULL;
    PQconninfoOption *options = PQconninfoParse(conninfo, &reason);
    if (options == NULL) {
        snprintf(error, error_size, "%s", reason != NULL ? reason : "out of memory");
        store_tidy_message(error);
        PQfreemem(reason);
        return -1;
    }
    PQconninfoFree(options);
    return 0;
}

store_status store_ping(store *s)
{
    bool took = false;
    store_status status = store_hold_connection(s, store_current_caller(s), &took);
    if (status != STORE_OK)
        return status;
    status = ping_held(s);
    if (took)
        store_release_connection(s);
    return status;
}

store_status store_connect_now(store *s)
{
    bool took = false;
    store_status status = store_hold_connection(s, store_current_caller(s), &took);
    if (status != STORE_OK)
        return status;
    status = store_ready_connection(s, true) ? STORE_OK : STORE_UNAVAILABLE;
    if (took)
        store_release_connection(s);
    return status;
}

/* ---- who holds the connection ------------------------------------------------- */

char store_blocking_caller_token;

void *store_current_caller(const store *s)
{
    void *caller = s->wait.caller != NULL ? s->wait.caller(s->wait.context) : NULL;
    return caller != NULL ? caller : STORE_BLOCKING_CALLER;
}

bool store_in_transaction(const store *s)
{
    return s->holder_in_transaction && s->holder == store_current_caller(s);
}

/* A caller waiting for the connection, on its own stack, which lives until
 * it runs again. */
typedef struct store_connection_waiter {
    struct store_connection_waiter *next;
    store *s;
    void *caller;
    bool granted; /* the connection is its now */
    bool expired; /* its deadline came first: it left the queue */
} store_connection_waiter;

static void waiter_expired(void *argument)
{
    store_connection_waiter *waiter = argument;
    if (waiter->granted || waiter->expired)
        return;
    store *s = waiter->s;
    store_connection_waiter *previous = NULL;
    for (store_connection_waiter *at = s->waiters_head; at != NULL; previous = at, at = at->next) {
        if (at != waiter)
            continue;
        if (previous != NULL)
            previous->next = waiter->next;
        else
            s->waiters_head = waiter->next;
        if (s->waiters_tail == waiter)
            s->waiters_tail = previous;
        break;
    }
    waiter->expired = true;
    s->wait.wake(s->wait.context, waiter->caller);
}

store_status store_hold_connection(store *s, void *caller, bool *took)
{
    *took = false;
    if (s->holder == caller)
        return STORE_OK;
    if (s->holder == NULL) {
        s->holder = caller;
        *took = true;
        return STORE_OK;
    }
    /* Held by a request parked inside its transaction: only a caller that
     * can be parked can wait for it. */
    if (caller == STORE_BLOCKING_CALLER) {
        store_fail(s, STORE_UNAVAILABLE, "the worker's PostgreSQL connection is held by another request's "
                                         "transaction, and this request cannot wait for it");
        return STORE_UNAVAILABLE;
    }
    store_connection_waiter waiter = {.s = s, .caller = caller};
    if (s->waiters_tail != NULL)
        s->waiters_tail->next = &waiter;
    else
        s->waiters_head = &waiter;
    s->waiters_tail = &waiter;
    while (!waiter.granted && !waiter.expired)
        s->wait.park(s->wait.context, caller, s->deadline_ns, waiter_expired, &waiter);
    if (!waiter.granted) {
        store_fail(s, STORE_DEADLINE, "the request's deadline passed while it waited for its worker's PostgreSQL "
                                      "connection (another request's transaction held it)");
        return STORE_DEADLINE;
    }
    *took = true;
    return STORE_OK;
}

void store_release_connection(store *s)
{
    store_connection_waiter *next = s->waiters_head;
    if (next == NULL) {
        s->holder = NULL;
        return;
    }
    s->waiters_head = next->next;
    if (s->waiters_head == NULL)
        s->waiters_tail = NULL;
    /* Handed over, so that no caller that comes meanwhile goes first. */
    s->holder = next->caller;
    next->granted = true;
    s->wait.wake(s->wait.context, next->caller);
}

void store_use_wait(store *s, const store_wait *wait)
{
    /* A parked holder's fiber never ran to its end (its engine gave up on
     * it): its transaction's state is unknown, so its connection goes. */
    if (s->holder != NULL && s->holder != STORE_BLOCKING_CALLER) {
        if (s->connection != NULL)
            store_drop_connection(s);
        s->holder = NULL;
        s->holder_in_transaction = false;
        s->waiters_head = s->waiters_tail = NULL;
    }
    s->wait = wait != NULL ? *wait : (store_wait){0};
}
