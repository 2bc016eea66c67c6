/* store/pipe.c: a worker's pipelined PostgreSQL connections: the main
 * lane, and the spill lane opened while the main one is stalled behind a
 * slow statement (store/pipe.h says what the caller sees).
 *
 * Each lane is one non-blocking connection in pipeline mode with a FIFO of
 * the requests whose statements it carries: a ring of waiters in the order
 * they were enqueued, which is the order they are sent and answered. A
 * request's place in its lane's ring is its lane ticket: the head's ticket
 * plus its offset, so a cancel finds it without a search; the ticket the
 * caller sees is the lane ticket with the lane in its low bit. The first
 * `passed` waiters are those the sender has gone past: sent, or skipped
 * because they were cancelled before going out. Only the head is ever
 * answered from the server; a waiter cancelled after it was sent stays in
 * place without a callback, so that its results, when they come, are read
 * and discarded and the FIFO stays in step with the server.
 *
 * A request's statements (one, or a batch) go into one lane when it
 * enqueues them, so they come back in order: the main lane unless its
 * oldest statement out has been running (since its send, or since the one
 * before it finished) longer than spill_after_ms; then the
 * spill lane (connecting it first if it is down: they wait for it, not
 * behind the stall); when both are stalled, the one whose oldest statement
 * is younger. The spill lane closes once nothing was sent on it for
 * STORE_PIPE_SPILL_IDLE_MS, so a pipe holds one connection while nothing
 * stalls. docs/engine.md, "Head-of-line on the pipe". */
#include "pipe.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* What comes back for one statement and its sync, in libpq's order: the
 * statement's result, the NULL that ends its results, then the sync's
 * PGRES_PIPELINE_SYNC; a failure at the sync (a deferred constraint at
 * the implicit commit) comes between, with a NULL of its own. */
typedef struct reading {
    PGresult *first;
    PGresult *after; /* the first failure after first */
    int empty_in_a_row;
} reading;

typedef enum waiter_state {
    WAITER_QUEUED,
    WAITER_SENT,
    WAITER_DROPPED, /* cancelled before it was sent: never will be */
} waiter_state;

/* A batch's items go into the ring one after another, each a waiter with
 * its own sync (store_batch's contract: each item succeeds or fails on its
 * own), all pointing here; the caller's callback comes once, when the last
 * is answered, or at once when the batch is lost or cancelled. */
typedef struct pipe_batch {
    store_pipe_batch_callback callback; /* NULL once answered */
    void *cookie;
    store_batch_item *items;
    size_t count;
    store_pipe_ticket first_ticket;
    size_t in_ring;      /* its waiters not popped yet: the last one frees it */
    size_t failed_item;  /* the first item, in order, that failed; count when none */
    store_error failure; /* that item's error */
    char field[64];      /* failure.field, when it came from the server */
} pipe_batch;

typedef struct waiter {
    store_pipe_callback callback; /* NULL once answered (cancelled); NULL for a batch's items */
    pipe_batch *batch;            /* the batch it is an item of, or NULL */
    size_t item;
    void *cookie;
    store_statement statement;
    /* One block: the pointers, then the texts; NULL without parameters. */
    const char **params;
    waiter_state state;
    reading reading;
    int attempts; /* runs that ended in a serialization failure or deadlock */
    /* The ticket its request was given, when it was queued again after a
     * serialization failure or deadlock (and its place changed); else 0. */
    store_pipe_ticket origin;
    uint64_t sent_ns; /* WAITER_SENT: when it went out (store_monotonic_ns) */
} waiter;

typedef enum pipe_state {
    PIPE_DOWN,       /* no connection */
    PIPE_CONNECTING, /* PQconnectPoll until PGRES_POLLING_OK */
    PIPE_PREPARING,  /* the registry's statements sent, their syncs awaited */
    PIPE_READY,
} pipe_state;

/* One connection and its FIFO; everything below works on one lane. */
typedef struct pipe_lane {
    int index; /* STORE_PIPE_MAIN or STORE_PIPE_SPILL */
    const store_config *config; /* the pipe's */
    PGconn *connection;
    pipe_state state;
    /* Bumped with every new connection: a caller of a callback checks it to
     * see whether the connection it was using is still the one. */
    unsigned long generation;
    unsigned long socket_serial; /* store_pipe_socket_serial */
    PostgresPollingStatusType polling; /* PIPE_CONNECTING: what PQconnectPoll waits for */
    bool flush_pending;                /* PQflush left data for a writable socket */
    /* PIPE_CONNECTING: the connect timeout; PIPE_PREPARING: the answer
     * timeout, as for any statements (preparing a service's statements is
     * work for the server, which the connect timeout does not measure). */
    uint64_t connect_deadline_ms;
    uint64_t progress_ms; /* the last answer, or the send that began a wait: the answer timeout counts from it */
    bool attempt_failed;
    uint64_t retry_after_ms;
    bool ever_attempted;
    bool attempt_is_reconnect; /* an attempt after a lost connection or a failed attempt */
    bool closing;
    uint64_t last_sent_ms; /* the last send, or the connection's start: the spill lane's idle time counts from it */
    /* The server said FATAL: it is closing the connection (a shutdown, a
     * terminated backend). Seen in the turn it comes, before libpq sees
     * the end of the stream, so that nothing more is sent on it. */
    bool server_closing;
    bool losing; /* answering a lost connection's requests: enqueue starts no attempt */
    unsigned long reconnects;

    int prepares_left;
    reading prepare_reading;
    bool prepare_transient;
    /* Why a statement failed to prepare on this connection, so that its
     * runs can say so instead of "prepared statement does not exist". */
    char prepare_failure[200];

    waiter *ring;
    size_t capacity; /* a power of two, or 0 */
    size_t head;
    size_t count;
    size_t passed;
    size_t sent_waiting; /* waiters in state WAITER_SENT */
    store_pipe_ticket head_ticket;

    store_error error; /* what a callback's error points to */
    char field[64];    /* error.field, when it came from the server */

    /* Head-of-line (store/pipe.h): where it counts, and the last statement
     * answered on this connection: when its sync came, the first ticket of
     * its batch (0: none), and when the last statement before that batch
     * was answered (what the batch's later items wait behind). */
    store_pipe_counters *counters;
    uint64_t last_done_ns;
    store_pipe_ticket last_done_batch;
    uint64_t before_batch_done_ns;
} pipe_lane;

struct store_pipe {
    store_config config; /* its strings are this pipe's own copies */
    /* The same, named "<application_name> spill" in pg_stat_activity, so
     * that spill connections can be told from the main ones (and counted
     * apart: a node holds 2 x workers + 1 of the others at rest). */
    store_config spill_config;
    int spill_idle_ms;
    store_pipe_counters own_counters;
    pipe_lane lanes[STORE_PIPE_LANES];
};

const uint64_t store_pipe_wait_bounds_ns[STORE_PIPE_WAIT_BUCKETS] = {
    0,        100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
};

static void bump(atomic_ulong *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* ---- failures ---------------------------------------------------------------------- */

static void describe(pipe_lane *lane, store_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void describe(pipe_lane *lane, store_status status, const char *format, ...)
{
    store_error *error = &lane->error;
    memset(error, 0, sizeof *error);
    error->status = status;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof error->message, format, arguments);
    va_end(arguments);
    store_tidy_message(error->message);
}

static store_status describe_result(pipe_lane *lane, const PGresult *result)
{
    const char *sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    const char *message = primary != NULL ? primary : PQresultErrorMessage(result);
    if (message == NULL || message[0] == '\0')
        message = "no message from PostgreSQL";
    store_describe_failure(&lane->error, lane->field, sizeof lane->field, lane->config->registry, sqlstate,
                           PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME),
                           PQresultErrorField(result, PG_DIAG_COLUMN_NAME), message);
    /* 26000: the statement never prepared on this connection; the reason
     * it failed then is what a reader of the log needs. */
    if (sqlstate != NULL && strcmp(sqlstate, "26000") == 0 && lane->prepare_failure[0] != '\0') {
        /* memcpy: GCC's restrict check takes the two arrays of one lane for one object. */
        size_t length = strnlen(lane->prepare_failure, sizeof lane->error.message - 1);
        memcpy(lane->error.message, lane->prepare_failure, length);
        lane->error.message[length] = '\0';
    }
    return lane->error.status;
}

static const char *connection_message(const pipe_lane *lane)
{
    return lane->connection != NULL ? PQerrorMessage(lane->connection) : "no connection";
}

/* ---- the FIFO ----------------------------------------------------------------------- */

static waiter *waiter_at(pipe_lane *lane, size_t offset)
{
    return &lane->ring[(lane->head + offset) & (lane->capacity - 1)];
}

static bool grow(pipe_lane *lane)
{
    size_t capacity = lane->capacity != 0 ? lane->capacity * 2 : 64;
    waiter *ring = malloc(capacity * sizeof *ring);
    if (ring == NULL)
        return false;
    for (size_t i = 0; i < lane->count; i++)
        ring[i] = *waiter_at(lane, i);
    free(lane->ring);
    lane->ring = ring;
    lane->capacity = capacity;
    lane->head = 0;
    return true;
}

static bool make_room(pipe_lane *lane, size_t more)
{
    while (lane->capacity - lane->count < more)
        if (!grow(lane))
            return false;
    return true;
}

static void forget_reading(reading *r)
{
    PQclear(r->first);
    PQclear(r->after);
    *r = (reading){0};
}

/* Takes the head off the ring: the caller answers it, by value, so that a
 * callback that enqueues (and grows the ring) moves nothing under it. */
static waiter pop(pipe_lane *lane)
{
    waiter head = *waiter_at(lane, 0);
    lane->head = (lane->head + 1) & (lane->capacity - 1);
    lane->count--;
    lane->head_ticket++;
    if (lane->passed > 0)
        lane->passed--;
    if (head.state == WAITER_SENT)
        lane->sent_waiting--;
    return head;
}

static void answer_item(pipe_lane *lane, pipe_batch *batch, size_t item, store_status status, PGresult *result,
                        bool lost);

/* Gives a popped waiter its answer (result: NULL unless STORE_OK; the
 * callback takes it) with lane->error, and releases what it held. lost:
 * the answer is the connection's loss (or the pipe's end), not the
 * server's word on this statement. */
static void answer(pipe_lane *lane, waiter *w, store_status status, PGresult *result, bool lost)
{
    free(w->params);
    forget_reading(&w->reading);
    if (w->batch != NULL) {
        answer_item(lane, w->batch, w->item, status, result, lost);
        return;
    }
    if (w->callback == NULL) {
        PQclear(result);
        return;
    }
    if (status == STORE_OK)
        memset(&lane->error, 0, sizeof lane->error);
    w->callback(w->cookie, status, result != NULL ? store_result_of(result) : NULL, &lane->error);
}

/* The batch's items still queued are never sent: it was answered already. */
static void drop_unsent_items(pipe_lane *lane, pipe_batch *batch)
{
    for (size_t i = 0; i < batch->count; i++) {
        store_pipe_ticket ticket = batch->first_ticket + i;
        if (ticket < lane->head_ticket || ticket - lane->head_ticket >= lane->count)
            continue;
        waiter *w = waiter_at(lane, (size_t)(ticket - lane->head_ticket));
        if (w->batch == batch && w->state == WAITER_QUEUED)
            w->state = WAITER_DROPPED;
    }
}

/* Calls the batch's callback once. Any status but STORE_OK from a loss, a
 * cancel or the end of the pipe leaves no item a result, as store_batch
 * does; otherwise each item keeps its own answer. */
static void finish_batch(pipe_lane *lane, pipe_batch *batch, store_status status, bool whole)
{
    store_pipe_batch_callback callback = batch->callback;
    batch->callback = NULL;
    drop_unsent_items(lane, batch);
    if (whole)
        for (size_t i = 0; i < batch->count; i++) {
            store_result_free(batch->items[i].result);
            batch->items[i].result = NULL;
            batch->items[i].status = status;
        }
    callback(batch->cookie, status, &lane->error);
}

static void answer_item(pipe_lane *lane, pipe_batch *batch, size_t item, store_status status, PGresult *result,
                        bool lost)
{
    batch->in_ring--;
    if (batch->callback != NULL && lost) {
        finish_batch(lane, batch, status, true);
    } else if (batch->callback != NULL) {
        store_batch_item *answered = &batch->items[item];
        answered->status = status;
        answered->result = status == STORE_OK ? store_result_of(result) : NULL;
        result = NULL;
        if (status != STORE_OK && item < batch->failed_item) {
            batch->failed_item = item;
            batch->failure = lane->error;
            if (lane->error.field == lane->field) {
                snprintf(batch->field, sizeof batch->field, "%s", lane->field);
                batch->failure.field = batch->field;
            }
        }
        if (batch->in_ring == 0) {
            if (batch->failed_item < batch->count)
                lane->error = batch->failure;
            else
                memset(&lane->error, 0, sizeof lane->error);
            finish_batch(lane, batch, lane->error.status, false);
        }
    }
    PQclear(result);
    if (batch->in_ring == 0)
        free(batch);
}

/* Answers every waiter in the ring (none was sent) with status and the
 * message lane->error holds. A callback's enqueue is refused or queued
 * behind: the loop ends at the count it started with. */
static void answer_all(pipe_lane *lane, store_status status)
{
    store_error failure = lane->error;
    for (size_t left = lane->count; left > 0 && lane->count > 0; left--) {
        waiter w = pop(lane);
        lane->error = failure;
        answer(lane, &w, status, NULL, true);
    }
}

/* ---- connecting --------------------------------------------------------------------- */

static void drop_connection(pipe_lane *lane)
{
    PQfinish(lane->connection);
    lane->connection = NULL;
    lane->state = PIPE_DOWN;
    lane->flush_pending = false;
    lane->prepares_left = 0;
    forget_reading(&lane->prepare_reading);
}

/* The attempt failed before anything of a request's was sent: every queued
 * request is answered unavailable now, and new ones are refused for the
 * reconnect interval (store/pipe.h). */
static void attempt_failed(pipe_lane *lane, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void attempt_failed(pipe_lane *lane, const char *format, ...)
{
    char reason[sizeof lane->error.message];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(reason, sizeof reason, format, arguments);
    va_end(arguments);
    drop_connection(lane);
    lane->attempt_failed = true;
    lane->retry_after_ms = store_monotonic_ms() + STORE_RECONNECT_INTERVAL_MS;
    describe(lane, STORE_UNAVAILABLE, "%s", reason);
    answer_all(lane, STORE_UNAVAILABLE);
}

static bool fatal(const PGresult *result)
{
    const char *severity = PQresultErrorField(result, PG_DIAG_SEVERITY_NONLOCALIZED);
    return severity != NULL && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);
}

/* libpq hands an error that comes while no statement is out (a shutdown
 * while idle) to the notice receiver. */
static void on_notice(void *context, const PGresult *result)
{
    pipe_lane *lane = context;
    if (fatal(result))
        lane->server_closing = true;
}

/* How long connecting may wait for the server without progress. */
static uint64_t connect_window_ms(const pipe_lane *lane)
{
    int timeout_s = lane->config->connect_timeout_s > 0 ? lane->config->connect_timeout_s : 2;
    return 1000u * (uint64_t)timeout_s;
}

static void start_attempt(pipe_lane *lane)
{
    lane->attempt_is_reconnect = lane->ever_attempted;
    lane->ever_attempted = true;
    lane->connection = store_connect_start(lane->config);
    lane->generation++;
    lane->last_sent_ms = store_monotonic_ms();
    /* A new connection: nothing on it ran before its first statement. */
    lane->last_done_ns = 0;
    lane->last_done_batch = 0;
    lane->before_batch_done_ns = 0;
    lane->socket_serial++;
    if (lane->connection == NULL) {
        attempt_failed(lane, "cannot connect to PostgreSQL: out of memory");
        return;
    }
    if (PQstatus(lane->connection) == CONNECTION_BAD) {
        attempt_failed(lane, "cannot connect to PostgreSQL: %s", PQerrorMessage(lane->connection));
        return;
    }
    PQsetNoticeReceiver(lane->connection, on_notice, lane);
    lane->server_closing = false;
    lane->state = PIPE_CONNECTING;
    /* PQconnectStartParams's contract: act as if PQconnectPoll had said
     * PGRES_POLLING_WRITING. */
    lane->polling = PGRES_POLLING_WRITING;
    lane->connect_deadline_ms = store_monotonic_ms() + connect_window_ms(lane);
}

static void send_queued(pipe_lane *lane);

/* Sends what libpq holds; 1 of PQflush means the socket is full. */
static bool push(pipe_lane *lane)
{
    int flushed = PQflush(lane->connection);
    lane->flush_pending = flushed > 0;
    return flushed >= 0;
}

static void lose(pipe_lane *lane, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void become_ready(pipe_lane *lane)
{
    lane->state = PIPE_READY;
    if (lane->attempt_is_reconnect)
        lane->reconnects++;
    if (lane->index == STORE_PIPE_SPILL)
        bump(&lane->counters->spill_connections);
    lane->last_sent_ms = store_monotonic_ms();
    lane->attempt_failed = false;
    send_queued(lane);
}

/* Connected: non-blocking, pipeline mode, and every registered statement
 * prepared with a sync of its own, so that one that cannot prepare (a
 * table a migration has not made yet) does not abort the others. */
static void begin_session(pipe_lane *lane)
{
    PGconn *connection = lane->connection;
    if (PQsetnonblocking(connection, 1) != 0) {
        attempt_failed(lane, "cannot make the PostgreSQL connection non-blocking: %s", PQerrorMessage(connection));
        return;
    }
    if (PQenterPipelineMode(connection) != 1) {
        attempt_failed(lane, "cannot enter pipeline mode: %s", PQerrorMessage(connection));
        return;
    }
    const store_registry *registry = lane->config->registry;
    /* The spill lane prepares nothing: it is opened in a stall, which may
     * be a lock on a table the registry's statements name, and a prepare
     * waits for that lock as a statement does. Its statements go out with
     * their text (send_queued). */
    int count = lane->index == STORE_PIPE_SPILL ? 0 : store_registry_count(registry);
    lane->prepare_failure[0] = '\0';
    lane->prepare_transient = false;
    lane->state = PIPE_PREPARING;
    for (int i = 0; i < count; i++)
        if (!PQsendPrepare(connection, store_registry_name(registry, i), store_registry_sql(registry, i),
                           store_registry_param_count(registry, i), NULL) ||
            !PQpipelineSync(connection)) {
            attempt_failed(lane, "cannot prepare statements: %s", PQerrorMessage(connection));
            return;
        }
    lane->prepares_left = count;
    lane->connect_deadline_ms = store_monotonic_ms() + (uint64_t)lane->config->answer_timeout_ms;
    if (count == 0) {
        become_ready(lane);
        return;
    }
    if (!push(lane))
        attempt_failed(lane, "cannot prepare statements: %s", PQerrorMessage(connection));
}

static void poll_connect(pipe_lane *lane)
{
    lane->socket_serial++;
    PostgresPollingStatusType polled = PQconnectPoll(lane->connection);
    switch (polled) {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        /* A step done: the timeout is for a server that does not answer,
         * as libpq's connect_timeout, not for our own work between the
         * steps (SCRAM's key derivation took over a second under valgrind). */
        lane->polling = polled;
        lane->connect_deadline_ms = store_monotonic_ms() + connect_window_ms(lane);
        return;
    case PGRES_POLLING_OK:
        begin_session(lane);
        return;
    case PGRES_POLLING_FAILED:
    case PGRES_POLLING_ACTIVE: /* unused by libpq since 8.x */
        break;
    }
    attempt_failed(lane, "cannot connect to PostgreSQL: %s", PQerrorMessage(lane->connection));
}

/* One prepare's result and sync have come. A failure that passes with time
 * (a lock held past statement_timeout, a server shutting down) would leave
 * the statement missing on a connection that lives on, so it fails the
 * attempt instead, as store.c does: the next one prepares again. */
static void prepared_one(pipe_lane *lane)
{
    const store_registry *registry = lane->config->registry;
    int index = store_registry_count(registry) - lane->prepares_left;
    PGresult *result = lane->prepare_reading.after != NULL ? lane->prepare_reading.after : lane->prepare_reading.first;
    if (PQresultStatus(result) != PGRES_COMMAND_OK) {
        store_status meaning = store_status_for_sqlstate(PQresultErrorField(result, PG_DIAG_SQLSTATE));
        bool passing = meaning == STORE_UNAVAILABLE || meaning == STORE_TIMEOUT || meaning == STORE_BUSY;
        if (lane->prepare_failure[0] == '\0' || (passing && !lane->prepare_transient)) {
            snprintf(lane->prepare_failure, sizeof lane->prepare_failure, "statement %s did not prepare: %s",
                     store_registry_name(registry, index), PQresultErrorMessage(result));
            store_tidy_message(lane->prepare_failure);
        }
        lane->prepare_transient = lane->prepare_transient || passing;
    }
    forget_reading(&lane->prepare_reading);
    if (--lane->prepares_left > 0)
        return;
    if (lane->prepare_transient)
        attempt_failed(lane, "cannot prepare statements now: %s", lane->prepare_failure);
    else
        become_ready(lane);
}

/* ---- sending and reading -------------------------------------------------------------- */

static void send_queued(pipe_lane *lane)
{
    if (lane->state != PIPE_READY)
        return;
    PGconn *connection = lane->connection;
    const store_registry *registry = lane->config->registry;
    bool sent_any = false;
    /* One flush goes out in one go: its statements share a send time (one
     * clock read per flush, not one per statement). libpq 15's
     * PQpipelineSync sends at every sync, so that is still a send() per
     * statement (docs/engine.md, "libpq 15"). */
    uint64_t flushed_ns = store_monotonic_ns();
    while (lane->passed < lane->count) {
        waiter *w = waiter_at(lane, lane->passed);
        if (w->state == WAITER_DROPPED) {
            lane->passed++;
            continue;
        }
        const char *name = store_registry_name(registry, w->statement);
        int param_count = store_registry_param_count(registry, w->statement);
        /* On the spill lane, parsed and planned each time (only while the
         * main lane is stalled): nothing is prepared there. */
        int queued = lane->index == STORE_PIPE_SPILL
                         ? PQsendQueryParams(connection, store_registry_sql(registry, w->statement), param_count, NULL,
                                             w->params, NULL, NULL, 0)
                         : PQsendQueryPrepared(connection, name, param_count, w->params, NULL, NULL, 0);
        if (!queued) {
            /* Nothing of it went out: on a dead connection it waits for the
             * next one; on a live one it is this request's own failure. */
            if (PQstatus(connection) == CONNECTION_BAD) {
                lose(lane, "cannot send to PostgreSQL: %s", PQerrorMessage(connection));
                return;
            }
            describe(lane, STORE_ERROR, "cannot send %s: %s", name, PQerrorMessage(connection));
            store_pipe_callback callback = w->callback;
            void *cookie = w->cookie;
            pipe_batch *batch = w->batch;
            w->callback = NULL;
            w->state = WAITER_DROPPED;
            lane->passed++;
            unsigned long generation = lane->generation;
            if (batch != NULL && batch->callback != NULL)
                finish_batch(lane, batch, STORE_ERROR, true);
            else if (callback != NULL)
                callback(cookie, STORE_ERROR, NULL, &lane->error);
            if (lane->generation != generation || lane->state != PIPE_READY)
                return;
            continue;
        }
        w->state = WAITER_SENT;
        w->sent_ns = flushed_ns;
        if (lane->index == STORE_PIPE_SPILL)
            bump(&lane->counters->spilled);
        lane->passed++;
        if (lane->sent_waiting++ == 0)
            lane->progress_ms = store_monotonic_ms();
        sent_any = true;
        /* Its own sync: its own implicit transaction, so that its failure
         * (and the pipeline abort after it) ends here. */
        if (!PQpipelineSync(connection)) {
            lose(lane, "cannot send to PostgreSQL: %s", PQerrorMessage(connection));
            return;
        }
    }
    if (sent_any)
        lane->last_sent_ms = store_monotonic_ms();
    if ((sent_any || lane->flush_pending) && !push(lane))
        lose(lane, "cannot send to PostgreSQL: %s", PQerrorMessage(connection));
}

/* Takes one of PQgetResult's answers: 1 when the sync came (done), 0 when
 * more is to come, -1 when the answers are out of step with what was sent
 * (the connection cannot be trusted then). */
static int feed(reading *r, PGresult *result)
{
    if (result == NULL)
        return ++r->empty_in_a_row > 1 ? -1 : 0;
    r->empty_in_a_row = 0;
    if (PQresultStatus(result) == PGRES_PIPELINE_SYNC) {
        PQclear(result);
        return r->first != NULL ? 1 : -1;
    }
    if (r->first == NULL)
        r->first = result;
    else if (r->after == NULL && !store_result_succeeded(result))
        r->after = result;
    else
        PQclear(result);
    return 0;
}

/* A lone statement is its own transaction: a serialization failure or a
 * deadlock rolled all of it back, so it may run again, as store_run runs
 * it, up to STORE_TRANSACTION_ATTEMPTS times in all. It goes to the back
 * of the FIFO (out with the turn's flush) and its request's ticket
 * follows it (origin). false when it may not, or memory ran out. */
static bool queue_again(pipe_lane *lane, waiter *w, store_pipe_ticket ticket)
{
    if (w->batch != NULL || w->callback == NULL || w->attempts + 1 >= STORE_TRANSACTION_ATTEMPTS ||
        !make_room(lane, 1))
        return false;
    waiter again = *w;
    again.state = WAITER_QUEUED;
    again.reading = (reading){0};
    again.attempts++;
    again.origin = w->origin != 0 ? w->origin : ticket;
    *waiter_at(lane, lane->count) = again;
    lane->count++;
    return true;
}

static void add_ns(atomic_ullong *counter, uint64_t ns)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + ns, memory_order_relaxed);
}

/* A statement's sync came back (w is popped, its batch not yet answered):
 * its time on the connection and its wait behind others'. */
static void count_done(pipe_lane *lane, const waiter *w)
{
    uint64_t done_ns = store_monotonic_ns();
    store_pipe_ticket batch = w->batch != NULL ? w->batch->first_ticket : 0;
    bool same_batch = batch != 0 && batch == lane->last_done_batch;
    uint64_t behind_ns = same_batch ? lane->before_batch_done_ns : lane->last_done_ns;
    uint64_t wait_ns = behind_ns > w->sent_ns ? behind_ns - w->sent_ns : 0;
    uint64_t busy_ns = done_ns > w->sent_ns ? done_ns - w->sent_ns : 0;
    if (!same_batch)
        lane->before_batch_done_ns = lane->last_done_ns;
    lane->last_done_ns = done_ns;
    lane->last_done_batch = batch;

    store_pipe_counters *c = lane->counters;
    bump(&c->statements);
    add_ns(&c->busy_ns, busy_ns);
    add_ns(&c->wait_ns, wait_ns);
    if (wait_ns > atomic_load_explicit(&c->max_wait_ns, memory_order_relaxed))
        atomic_store_explicit(&c->max_wait_ns, wait_ns, memory_order_relaxed);
    size_t bucket = 0;
    while (bucket < STORE_PIPE_WAIT_BUCKETS && wait_ns > store_pipe_wait_bounds_ns[bucket])
        bucket++;
    bump(&c->wait_buckets[bucket]);
}

/* The head's sync came: its answer. Outside BEGIN the statement was its own
 * transaction, committed at the sync; a failure after its rows is the
 * commit failing, and the rows must not be taken for success. */
static void answer_head(pipe_lane *lane)
{
    store_pipe_ticket ticket = lane->head_ticket;
    waiter w = pop(lane);
    count_done(lane, &w);
    PGresult *first = w.reading.first;
    PGresult *after = w.reading.after;
    w.reading = (reading){0};
    if (store_result_succeeded(first) && after == NULL) {
        answer(lane, &w, STORE_OK, first, false);
        return;
    }
    store_status status;
    if (!store_result_succeeded(first) && PQresultStatus(first) == PGRES_PIPELINE_ABORTED) {
        describe(lane, STORE_ERROR, "skipped: an earlier statement of the pipeline failed");
        status = STORE_ERROR;
    } else {
        status = describe_result(lane, store_result_succeeded(first) ? after : first);
    }
    PQclear(first);
    PQclear(after);
    if (status == STORE_BUSY && queue_again(lane, &w, ticket))
        return;
    answer(lane, &w, status, NULL, false);
}

static bool expecting(pipe_lane *lane)
{
    if (lane->state == PIPE_PREPARING)
        return lane->prepares_left > 0;
    if (lane->state != PIPE_READY)
        return false;
    /* Cancelled before they went out: nothing of theirs will come. */
    while (lane->count > 0 && waiter_at(lane, 0)->state == WAITER_DROPPED) {
        waiter w = pop(lane);
        answer(lane, &w, STORE_DEADLINE, NULL, true);
    }
    return lane->count > 0 && waiter_at(lane, 0)->state == WAITER_SENT;
}

/* Reads every answer libpq holds complete, in order, to whoever awaits it. */
static void drain(pipe_lane *lane)
{
    unsigned long generation = lane->generation;
    while (lane->generation == generation && expecting(lane)) {
        PGconn *connection = lane->connection;
        /* False on a broken connection too: PQgetResult then returns what
         * it still holds, then libpq's own error, then NULL. */
        if (PQisBusy(connection))
            return;
        PGresult *result = PQgetResult(connection);
        if (result == NULL && PQstatus(connection) == CONNECTION_BAD) {
            lose(lane, "the connection to PostgreSQL was lost: %s", PQerrorMessage(connection));
            return;
        }
        lane->progress_ms = store_monotonic_ms();
        if (result != NULL && fatal(result))
            lane->server_closing = true;
        reading *r = lane->state == PIPE_PREPARING ? &lane->prepare_reading : &waiter_at(lane, 0)->reading;
        int step = feed(r, result);
        if (step < 0) {
            lose(lane, "out of step with PostgreSQL's pipeline");
            return;
        }
        if (step > 0) {
            if (lane->state == PIPE_PREPARING)
                prepared_one(lane);
            else
                answer_head(lane);
        }
    }
}

/* The connection broke (or stopped answering) while it was good: what was
 * sent has an unknown outcome, what was not goes out on a new connection,
 * started at once. */
static void lose(pipe_lane *lane, const char *format, ...)
{
    char reason[sizeof lane->error.message];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(reason, sizeof reason, format, arguments);
    va_end(arguments);
    if (lane->state != PIPE_READY) {
        attempt_failed(lane, "%s", reason);
        return;
    }
    drop_connection(lane);
    lane->losing = true;
    while (lane->passed > 0) {
        waiter w = pop(lane);
        describe(lane, STORE_UNAVAILABLE, "%s (the statement was sent: its outcome is unknown)", reason);
        answer(lane, &w, STORE_UNAVAILABLE, NULL, true);
    }
    lane->losing = false;
    /* The spill lane connects again only when something waits for it. */
    if (lane->index == STORE_PIPE_MAIN || lane->count > 0)
        start_attempt(lane);
}

/* ---- the caller's side ---------------------------------------------------------------- */

static void lane_init(store_pipe *pipe, int index)
{
    pipe_lane *lane = &pipe->lanes[index];
    lane->index = index;
    lane->config = index == STORE_PIPE_SPILL ? &pipe->spill_config : &pipe->config;
    lane->head_ticket = 1;
    lane->counters = &pipe->own_counters;
}

store_pipe *store_pipe_open(const store_config *config)
{
    if (config->registry != NULL && !store_registry_frozen(config->registry))
        return NULL;
    store_pipe *pipe = calloc(1, sizeof *pipe);
    if (pipe == NULL)
        return NULL;
    bool copied = store_config_copy(&pipe->config, config) && store_config_copy(&pipe->spill_config, config);
    if (copied) {
        size_t length = strlen(pipe->config.application_name) + sizeof " spill";
        char *spill_name = malloc(length);
        if (spill_name != NULL)
            snprintf(spill_name, length, "%s spill", pipe->config.application_name);
        free((char *)pipe->spill_config.application_name);
        pipe->spill_config.application_name = spill_name;
        copied = spill_name != NULL;
    }
    pipe->spill_idle_ms = STORE_PIPE_SPILL_IDLE_MS;
    for (int i = 0; i < STORE_PIPE_LANES; i++)
        lane_init(pipe, i);
    if (!copied) {
        store_pipe_close(pipe);
        return NULL;
    }
    start_attempt(&pipe->lanes[STORE_PIPE_MAIN]);
    return pipe;
}

static void lane_close(pipe_lane *lane)
{
    bool was_ready = lane->state == PIPE_READY;
    drop_connection(lane);
    while (lane->count > 0) {
        waiter w = pop(lane);
        if (was_ready && w.state == WAITER_SENT)
            describe(lane, STORE_UNAVAILABLE, "the pipe closed (the statement was sent: its outcome is unknown)");
        else
            describe(lane, STORE_UNAVAILABLE, "the pipe closed before the statement was sent");
        answer(lane, &w, STORE_UNAVAILABLE, NULL, true);
    }
    free(lane->ring);
}

void store_pipe_close(store_pipe *pipe)
{
    if (pipe == NULL)
        return;
    /* A callback's enqueue is refused, on either lane. */
    for (int i = 0; i < STORE_PIPE_LANES; i++)
        pipe->lanes[i].closing = true;
    for (int i = 0; i < STORE_PIPE_LANES; i++)
        lane_close(&pipe->lanes[i]);
    store_config_release(&pipe->config);
    store_config_release(&pipe->spill_config);
    free(pipe);
}

static const pipe_lane *lane_of(const store_pipe *pipe, int index)
{
    return &pipe->lanes[index == STORE_PIPE_SPILL ? STORE_PIPE_SPILL : STORE_PIPE_MAIN];
}

static pipe_lane *lane_at(store_pipe *pipe, int index)
{
    return &pipe->lanes[index == STORE_PIPE_SPILL ? STORE_PIPE_SPILL : STORE_PIPE_MAIN];
}

int store_pipe_lane_fd(const store_pipe *pipe, int index)
{
    const pipe_lane *lane = lane_of(pipe, index);
    return lane->connection != NULL ? PQsocket(lane->connection) : -1;
}

bool store_pipe_lane_wants_write(const store_pipe *pipe, int index)
{
    const pipe_lane *lane = lane_of(pipe, index);
    if (lane->state == PIPE_CONNECTING)
        return lane->polling == PGRES_POLLING_WRITING;
    return lane->state != PIPE_DOWN && lane->flush_pending;
}

void store_pipe_lane_on_readable(store_pipe *pipe, int index)
{
    pipe_lane *lane = lane_at(pipe, index);
    if (lane->state == PIPE_DOWN)
        return;
    if (lane->state == PIPE_CONNECTING) {
        if (lane->polling == PGRES_POLLING_READING)
            poll_connect(lane);
        return;
    }
    unsigned long generation = lane->generation;
    bool consumed = PQconsumeInput(lane->connection) == 1;
    /* What arrived complete before a break is still answered. */
    drain(lane);
    if (lane->generation != generation || lane->state == PIPE_DOWN)
        return;
    if (!consumed) {
        lose(lane, "the connection to PostgreSQL was lost: %s", connection_message(lane));
        return;
    }
    /* With nothing out, libpq parses what came only when asked: this asks
     * (a FATAL then reaches on_notice), and drops notifications, which no
     * one here listens for. */
    for (PGnotify *notify = PQnotifies(lane->connection); notify != NULL; notify = PQnotifies(lane->connection))
        PQfreemem(notify);
    if (lane->server_closing) {
        lose(lane, "PostgreSQL is closing the connection");
        return;
    }
    /* libpq's rule for non-blocking sends: after reading, flush again. */
    if (lane->flush_pending && !push(lane))
        lose(lane, "cannot send to PostgreSQL: %s", connection_message(lane));
}

void store_pipe_lane_on_writable(store_pipe *pipe, int index)
{
    pipe_lane *lane = lane_at(pipe, index);
    if (lane->state == PIPE_CONNECTING) {
        if (lane->polling == PGRES_POLLING_WRITING)
            poll_connect(lane);
        return;
    }
    if (lane->state != PIPE_DOWN && lane->flush_pending && !push(lane))
        lose(lane, "cannot send to PostgreSQL: %s", connection_message(lane));
}

static int until(uint64_t deadline_ms)
{
    uint64_t now = store_monotonic_ms();
    if (deadline_ms <= now)
        return 0;
    return deadline_ms - now > INT_MAX ? INT_MAX : (int)(deadline_ms - now);
}

/* The spill lane with nothing in it: it closes after its idle time. */
static bool idle_spill(const pipe_lane *lane)
{
    return lane->index == STORE_PIPE_SPILL && lane->state == PIPE_READY && lane->count == 0;
}

int store_pipe_lane_timer_ms(const store_pipe *pipe, int index)
{
    const pipe_lane *lane = lane_of(pipe, index);
    if (lane->state == PIPE_CONNECTING || lane->state == PIPE_PREPARING)
        return until(lane->connect_deadline_ms);
    if (lane->state == PIPE_READY && lane->sent_waiting > 0)
        return until(lane->progress_ms + (uint64_t)lane->config->answer_timeout_ms);
    if (idle_spill(lane))
        return until(lane->last_sent_ms + (uint64_t)pipe->spill_idle_ms);
    return -1;
}

void store_pipe_lane_on_timer(store_pipe *pipe, int index)
{
    pipe_lane *lane = lane_at(pipe, index);
    if (store_pipe_lane_timer_ms(pipe, index) != 0)
        return;
    if (idle_spill(lane)) {
        /* Nothing went out on it for its idle time: the main lane has kept
         * up since, and the server gets its connection back. */
        drop_connection(lane);
        lane->socket_serial++;
    } else if (lane->state == PIPE_READY) {
        lose(lane, "PostgreSQL did not answer within %d ms", lane->config->answer_timeout_ms);
    } else if (lane->state == PIPE_PREPARING) {
        attempt_failed(lane, "cannot prepare statements: no answer within %d ms", lane->config->answer_timeout_ms);
    } else {
        attempt_failed(lane, "cannot connect to PostgreSQL: no answer within %d s",
                       lane->config->connect_timeout_s > 0 ? lane->config->connect_timeout_s : 2);
    }
}

unsigned long store_pipe_lane_socket_serial(const store_pipe *pipe, int index)
{
    return lane_of(pipe, index)->socket_serial;
}

int store_pipe_lane_backend_pid(const store_pipe *pipe, int index)
{
    const pipe_lane *lane = lane_of(pipe, index);
    return lane->state == PIPE_READY ? PQbackendPID(lane->connection) : 0;
}

int store_pipe_fd(const store_pipe *pipe) { return store_pipe_lane_fd(pipe, STORE_PIPE_MAIN); }
bool store_pipe_wants_write(const store_pipe *pipe) { return store_pipe_lane_wants_write(pipe, STORE_PIPE_MAIN); }
void store_pipe_on_readable(store_pipe *pipe) { store_pipe_lane_on_readable(pipe, STORE_PIPE_MAIN); }
void store_pipe_on_writable(store_pipe *pipe) { store_pipe_lane_on_writable(pipe, STORE_PIPE_MAIN); }
int store_pipe_timer_ms(const store_pipe *pipe) { return store_pipe_lane_timer_ms(pipe, STORE_PIPE_MAIN); }
void store_pipe_on_timer(store_pipe *pipe) { store_pipe_lane_on_timer(pipe, STORE_PIPE_MAIN); }

/* The parameters in one block of their own: the request may be gone (its
 * fiber's stack reused) by the time they are sent, or sent again. */
static bool copy_params(int count, const char *const *params, const char ***out)
{
    *out = NULL;
    if (count <= 0)
        return true;
    size_t size = (size_t)count * sizeof(char *);
    for (int i = 0; i < count; i++)
        if (params != NULL && params[i] != NULL)
            size += strlen(params[i]) + 1;
    const char **copy = malloc(size);
    if (copy == NULL)
        return false;
    char *text = (char *)(copy + count);
    for (int i = 0; i < count; i++) {
        if (params == NULL || params[i] == NULL) {
            copy[i] = NULL;
            continue;
        }
        size_t length = strlen(params[i]) + 1;
        memcpy(text, params[i], length);
        copy[i] = text;
        text += length;
    }
    *out = copy;
    return true;
}

/* Whether a request may queue on the lane now; starts a connection when
 * there is none and none failed within the reconnect interval. */
static store_status admit(pipe_lane *lane)
{
    if (lane->closing)
        return STORE_UNAVAILABLE;
    if (lane->state != PIPE_DOWN || lane->losing)
        return STORE_OK;
    if (lane->attempt_failed && store_monotonic_ms() < lane->retry_after_ms)
        return STORE_UNAVAILABLE;
    start_attempt(lane);
    return lane->state == PIPE_DOWN ? STORE_UNAVAILABLE : STORE_OK;
}

/* How long the lane's oldest statement out has been running (0: none
 * out): since it was sent, or since the statement before it finished when
 * that was later. Not since its send: a lane that answers statement after
 * statement is a queue moving, which a second connection would not shorten
 * (PostgreSQL's CPU is what they wait for), while a statement that holds
 * the connection (a lock wait, a slow plan) shows as no answer at all. */
static uint64_t oldest_running_ns(const pipe_lane *lane, uint64_t now_ns)
{
    if (lane->state != PIPE_READY || lane->sent_waiting == 0)
        return 0;
    for (size_t i = 0; i < lane->passed; i++) {
        const waiter *w = &lane->ring[(lane->head + i) & (lane->capacity - 1)];
        if (w->state != WAITER_SENT)
            continue;
        uint64_t started = w->sent_ns > lane->last_done_ns ? w->sent_ns : lane->last_done_ns;
        return now_ns > started ? now_ns - started : 0;
    }
    return 0;
}

/* The lane a request's statements go on (store/pipe.h, the spill lane),
 * admitted; NULL with *refused when neither may take them. */
static pipe_lane *choose_lane(store_pipe *pipe, store_status *refused)
{
    pipe_lane *main_lane = &pipe->lanes[STORE_PIPE_MAIN];
    pipe_lane *spill = &pipe->lanes[STORE_PIPE_SPILL];
    uint64_t after_ns = pipe->config.spill_after_ms > 0 ? (uint64_t)pipe->config.spill_after_ms * 1000000u : 0;
    uint64_t now_ns = store_monotonic_ns();
    uint64_t main_age = after_ns > 0 ? oldest_running_ns(main_lane, now_ns) : 0;
    pipe_lane *chosen = main_lane;
    if (main_age > after_ns) {
        uint64_t spill_age = oldest_running_ns(spill, now_ns);
        if (spill_age <= after_ns || spill_age < main_age)
            chosen = spill;
    }
    *refused = admit(chosen);
    if (*refused == STORE_OK)
        return chosen;
    /* A spill connection that cannot be made (the server full, say): the
     * main lane still serves, behind its stall. */
    if (chosen == spill && (*refused = admit(main_lane)) == STORE_OK)
        return main_lane;
    return NULL;
}

static store_pipe_ticket ticket_of(const pipe_lane *lane, store_pipe_ticket lane_ticket)
{
    return lane_ticket << 1 | (store_pipe_ticket)lane->index;
}

store_status store_pipe_enqueue(store_pipe *pipe, store_statement statement, const char *const *params,
                                store_pipe_callback callback, void *cookie, store_pipe_ticket *ticket)
{
    if (ticket != NULL)
        *ticket = 0;
    if (store_registry_name(pipe->config.registry, statement) == NULL || callback == NULL)
        return STORE_ERROR;
    store_status admitted;
    pipe_lane *lane = choose_lane(pipe, &admitted);
    if (lane == NULL)
        return admitted;
    const char **copied = NULL;
    if (!copy_params(store_registry_param_count(pipe->config.registry, statement), params, &copied))
        return STORE_ERROR;
    if (!make_room(lane, 1)) {
        free(copied);
        return STORE_ERROR;
    }
    *waiter_at(lane, lane->count) = (waiter){
        .callback = callback, .cookie = cookie, .statement = statement, .params = copied, .state = WAITER_QUEUED};
    lane->count++;
    if (ticket != NULL)
        *ticket = ticket_of(lane, lane->head_ticket + lane->count - 1);
    return STORE_OK;
}

store_status store_pipe_enqueue_batch(store_pipe *pipe, store_batch_item *items, size_t count,
                                      store_pipe_batch_callback callback, void *cookie, store_pipe_ticket *ticket)
{
    if (ticket != NULL)
        *ticket = 0;
    if (count == 0 || callback == NULL)
        return STORE_ERROR;
    for (size_t i = 0; i < count; i++)
        if (store_registry_name(pipe->config.registry, items[i].statement) == NULL)
            return STORE_ERROR;
    store_status admitted;
    pipe_lane *lane = choose_lane(pipe, &admitted);
    if (lane == NULL)
        return admitted;
    pipe_batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL || !make_room(lane, count)) {
        free(batch);
        return STORE_ERROR;
    }
    *batch = (pipe_batch){.callback = callback,
                          .cookie = cookie,
                          .items = items,
                          .count = count,
                          .first_ticket = lane->head_ticket + lane->count,
                          .in_ring = count,
                          .failed_item = count};
    for (size_t i = 0; i < count; i++) {
        const char **copied = NULL;
        if (!copy_params(store_registry_param_count(pipe->config.registry, items[i].statement), items[i].params,
                         &copied)) {
            for (size_t j = 0; j < i; j++)
                free(waiter_at(lane, lane->count + j)->params);
            free(batch);
            return STORE_ERROR;
        }
        *waiter_at(lane, lane->count + i) = (waiter){.batch = batch,
                                                     .item = i,
                                                     .statement = items[i].statement,
                                                     .params = copied,
                                                     .state = WAITER_QUEUED};
        items[i].result = NULL;
        items[i].status = STORE_OK;
    }
    lane->count += count;
    if (ticket != NULL)
        *ticket = ticket_of(lane, batch->first_ticket);
    return STORE_OK;
}

void store_pipe_flush(store_pipe *pipe)
{
    for (int i = 0; i < STORE_PIPE_LANES; i++)
        send_queued(&pipe->lanes[i]);
}

static void cancel_batch(pipe_lane *lane, pipe_batch *batch)
{
    bool sent = false;
    for (size_t i = 0; i < batch->count; i++) {
        store_pipe_ticket ticket = batch->first_ticket + i;
        if (ticket >= lane->head_ticket && ticket - lane->head_ticket < lane->count &&
            waiter_at(lane, (size_t)(ticket - lane->head_ticket))->state == WAITER_SENT)
            sent = true;
    }
    if (sent)
        describe(lane, STORE_UNAVAILABLE,
                 "the request's deadline passed while PostgreSQL had the batch: its outcome is unknown");
    else
        describe(lane, STORE_DEADLINE, "the request's deadline passed before the batch was sent");
    finish_batch(lane, batch, lane->error.status, true);
}

/* Where a request's lane ticket is now: its place, or, when that is gone,
 * the place of the statement it queued again (rare: a search). */
static waiter *find(pipe_lane *lane, store_pipe_ticket ticket)
{
    if (ticket >= lane->head_ticket && ticket - lane->head_ticket < lane->count)
        return waiter_at(lane, (size_t)(ticket - lane->head_ticket));
    if (ticket == 0 || ticket >= lane->head_ticket)
        return NULL;
    for (size_t i = 0; i < lane->count; i++)
        if (waiter_at(lane, i)->origin == ticket)
            return waiter_at(lane, i);
    return NULL;
}

void store_pipe_cancel(store_pipe *pipe, store_pipe_ticket ticket)
{
    pipe_lane *lane = lane_at(pipe, (int)(ticket & 1));
    waiter *w = find(lane, ticket >> 1);
    if (w == NULL)
        return;
    if (w->batch != NULL) {
        if (w->batch->callback != NULL)
            cancel_batch(lane, w->batch);
        return;
    }
    store_pipe_callback callback = w->callback;
    if (callback == NULL)
        return;
    void *cookie = w->cookie;
    w->callback = NULL;
    store_status status;
    if (w->state == WAITER_SENT) {
        status = STORE_UNAVAILABLE;
        describe(lane, status, "the request's deadline passed while PostgreSQL had the statement: its outcome is unknown");
    } else {
        status = STORE_DEADLINE;
        w->state = WAITER_DROPPED;
        describe(lane, status, "the request's deadline passed before the statement was sent");
    }
    callback(cookie, status, NULL, &lane->error);
}

bool store_pipe_ready(const store_pipe *pipe)
{
    return pipe->lanes[STORE_PIPE_MAIN].state == PIPE_READY;
}

int store_pipe_backend_pid(const store_pipe *pipe)
{
    return store_pipe_lane_backend_pid(pipe, STORE_PIPE_MAIN);
}

size_t store_pipe_waiting(const store_pipe *pipe)
{
    return pipe->lanes[STORE_PIPE_MAIN].count + pipe->lanes[STORE_PIPE_SPILL].count;
}

unsigned long store_pipe_reconnect_count(const store_pipe *pipe)
{
    return pipe->lanes[STORE_PIPE_MAIN].reconnects;
}

unsigned long store_pipe_socket_serial(const store_pipe *pipe)
{
    return store_pipe_lane_socket_serial(pipe, STORE_PIPE_MAIN);
}

void store_pipe_set_spill_idle_ms(store_pipe *pipe, int idle_ms)
{
    pipe->spill_idle_ms = idle_ms > 0 ? idle_ms : STORE_PIPE_SPILL_IDLE_MS;
}

void store_pipe_count_into(store_pipe *pipe, store_pipe_counters *counters)
{
    for (int i = 0; i < STORE_PIPE_LANES; i++)
        pipe->lanes[i].counters = counters != NULL ? counters : &pipe->own_counters;
}

void store_pipe_counters_add_to(const store_pipe_counters *counters, store_pipe_stats *totals)
{
    totals->statements += atomic_load_explicit(&counters->statements, memory_order_relaxed);
    totals->busy_ns += atomic_load_explicit(&counters->busy_ns, memory_order_relaxed);
    totals->wait_ns += atomic_load_explicit(&counters->wait_ns, memory_order_relaxed);
    uint64_t max_wait_ns = atomic_load_explicit(&counters->max_wait_ns, memory_order_relaxed);
    if (max_wait_ns > totals->max_wait_ns)
        totals->max_wait_ns = max_wait_ns;
    for (size_t i = 0; i <= STORE_PIPE_WAIT_BUCKETS; i++)
        totals->wait_buckets[i] += atomic_load_explicit(&counters->wait_buckets[i], memory_order_relaxed);
    totals->spilled += atomic_load_explicit(&counters->spilled, memory_order_relaxed);
    totals->spill_connections += atomic_load_explicit(&counters->spill_connections, memory_order_relaxed);
}

void store_pipe_stats_read(const store_pipe *pipe, store_pipe_stats *out)
{
    *out = (store_pipe_stats){0};
    store_pipe_counters_add_to(pipe->lanes[STORE_PIPE_MAIN].counters, out);
}
