/* store/pipe.c: one non-blocking PostgreSQL connection in pipeline mode,
 * with a FIFO of the requests whose statements it carries (store/pipe.h
 * says what the caller sees).
 *
 * The FIFO is a ring of waiters in the order they were enqueued, which is
 * the order they are sent and answered. A request's ticket is its place:
 * the head's ticket plus its offset, so a cancel finds it without a search.
 * The first `passed` waiters are those the sender has gone past: sent, or
 * skipped because they were cancelled before going out. Only the head is
 * ever answered from the server; a waiter cancelled after it was sent stays
 * in place without a callback, so that its results, when they come, are
 * read and discarded and the FIFO stays in step with the server. */
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

struct store_pipe {
    store_config config; /* its strings are this pipe's own copies */
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
    store_pipe_counters own_counters;
    store_pipe_counters *counters;
    uint64_t last_done_ns;
    store_pipe_ticket last_done_batch;
    uint64_t before_batch_done_ns;
};

const uint64_t store_pipe_wait_bounds_ns[STORE_PIPE_WAIT_BUCKETS] = {
    0,        100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
};

/* ---- failures ---------------------------------------------------------------------- */

static void describe(store_pipe *pipe, store_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void describe(store_pipe *pipe, store_status status, const char *format, ...)
{
    store_error *error = &pipe->error;
    memset(error, 0, sizeof *error);
    error->status = status;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof error->message, format, arguments);
    va_end(arguments);
    store_tidy_message(error->message);
}

static store_status describe_result(store_pipe *pipe, const PGresult *result)
{
    const char *sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    const char *message = primary != NULL ? primary : PQresultErrorMessage(result);
    if (message == NULL || message[0] == '\0')
        message = "no message from PostgreSQL";
    store_describe_failure(&pipe->error, pipe->field, sizeof pipe->field, pipe->config.registry, sqlstate,
                           PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME),
                           PQresultErrorField(result, PG_DIAG_COLUMN_NAME), message);
    /* 26000: the statement never prepared on this connection; the reason
     * it failed then is what a reader of the log needs. */
    if (sqlstate != NULL && strcmp(sqlstate, "26000") == 0 && pipe->prepare_failure[0] != '\0')
        snprintf(pipe->error.message, sizeof pipe->error.message, "%s", pipe->prepare_failure);
    return pipe->error.status;
}

static const char *connection_message(const store_pipe *pipe)
{
    return pipe->connection != NULL ? PQerrorMessage(pipe->connection) : "no connection";
}

/* ---- the FIFO ----------------------------------------------------------------------- */

static waiter *waiter_at(store_pipe *pipe, size_t offset)
{
    return &pipe->ring[(pipe->head + offset) & (pipe->capacity - 1)];
}

static bool grow(store_pipe *pipe)
{
    size_t capacity = pipe->capacity != 0 ? pipe->capacity * 2 : 64;
    waiter *ring = malloc(capacity * sizeof *ring);
    if (ring == NULL)
        return false;
    for (size_t i = 0; i < pipe->count; i++)
        ring[i] = *waiter_at(pipe, i);
    free(pipe->ring);
    pipe->ring = ring;
    pipe->capacity = capacity;
    pipe->head = 0;
    return true;
}

static bool make_room(store_pipe *pipe, size_t more)
{
    while (pipe->capacity - pipe->count < more)
        if (!grow(pipe))
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
static waiter pop(store_pipe *pipe)
{
    waiter head = *waiter_at(pipe, 0);
    pipe->head = (pipe->head + 1) & (pipe->capacity - 1);
    pipe->count--;
    pipe->head_ticket++;
    if (pipe->passed > 0)
        pipe->passed--;
    if (head.state == WAITER_SENT)
        pipe->sent_waiting--;
    return head;
}

static void answer_item(store_pipe *pipe, pipe_batch *batch, size_t item, store_status status, PGresult *result,
                        bool lost);

/* Gives a popped waiter its answer (result: NULL unless STORE_OK; the
 * callback takes it) with pipe->error, and releases what it held. lost:
 * the answer is the connection's loss (or the pipe's end), not the
 * server's word on this statement. */
static void answer(store_pipe *pipe, waiter *w, store_status status, PGresult *result, bool lost)
{
    free(w->params);
    forget_reading(&w->reading);
    if (w->batch != NULL) {
        answer_item(pipe, w->batch, w->item, status, result, lost);
        return;
    }
    if (w->callback == NULL) {
        PQclear(result);
        return;
    }
    if (status == STORE_OK)
        memset(&pipe->error, 0, sizeof pipe->error);
    w->callback(w->cookie, status, result != NULL ? store_result_of(result) : NULL, &pipe->error);
}

/* The batch's items still queued are never sent: it was answered already. */
static void drop_unsent_items(store_pipe *pipe, pipe_batch *batch)
{
    for (size_t i = 0; i < batch->count; i++) {
        store_pipe_ticket ticket = batch->first_ticket + i;
        if (ticket < pipe->head_ticket || ticket - pipe->head_ticket >= pipe->count)
            continue;
        waiter *w = waiter_at(pipe, (size_t)(ticket - pipe->head_ticket));
        if (w->batch == batch && w->state == WAITER_QUEUED)
            w->state = WAITER_DROPPED;
    }
}

/* Calls the batch's callback once. Any status but STORE_OK from a loss, a
 * cancel or the end of the pipe leaves no item a result, as store_batch
 * does; otherwise each item keeps its own answer. */
static void finish_batch(store_pipe *pipe, pipe_batch *batch, store_status status, bool whole)
{
    store_pipe_batch_callback callback = batch->callback;
    batch->callback = NULL;
    drop_unsent_items(pipe, batch);
    if (whole)
        for (size_t i = 0; i < batch->count; i++) {
            store_result_free(batch->items[i].result);
            batch->items[i].result = NULL;
            batch->items[i].status = status;
        }
    callback(batch->cookie, status, &pipe->error);
}

static void answer_item(store_pipe *pipe, pipe_batch *batch, size_t item, store_status status, PGresult *result,
                        bool lost)
{
    batch->in_ring--;
    if (batch->callback != NULL && lost) {
        finish_batch(pipe, batch, status, true);
    } else if (batch->callback != NULL) {
        store_batch_item *answered = &batch->items[item];
        answered->status = status;
        answered->result = status == STORE_OK ? store_result_of(result) : NULL;
        result = NULL;
        if (status != STORE_OK && item < batch->failed_item) {
            batch->failed_item = item;
            batch->failure = pipe->error;
            if (pipe->error.field == pipe->field) {
                snprintf(batch->field, sizeof batch->field, "%s", pipe->field);
                batch->failure.field = batch->field;
            }
        }
        if (batch->in_ring == 0) {
            if (batch->failed_item < batch->count)
                pipe->error = batch->failure;
            else
                memset(&pipe->error, 0, sizeof pipe->error);
            finish_batch(pipe, batch, pipe->error.status, false);
        }
    }
    PQclear(result);
    if (batch->in_ring == 0)
        free(batch);
}

/* Answers every waiter in the ring (none was sent) with status and the
 * message pipe->error holds. A callback's enqueue is refused or queued
 * behind: the loop ends at the count it started with. */
static void answer_all(store_pipe *pipe, store_status status)
{
    store_error failure = pipe->error;
    for (size_t left = pipe->count; left > 0 && pipe->count > 0; left--) {
        waiter w = pop(pipe);
        pipe->error = failure;
        answer(pipe, &w, status, NULL, true);
    }
}

/* ---- connecting --------------------------------------------------------------------- */

static void drop_connection(store_pipe *pipe)
{
    PQfinish(pipe->connection);
    pipe->connection = NULL;
    pipe->state = PIPE_DOWN;
    pipe->flush_pending = false;
    pipe->prepares_left = 0;
    forget_reading(&pipe->prepare_reading);
}

/* The attempt failed before anything of a request's was sent: every queued
 * request is answered unavailable now, and new ones are refused for the
 * reconnect interval (store/pipe.h). */
static void attempt_failed(store_pipe *pipe, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void attempt_failed(store_pipe *pipe, const char *format, ...)
{
    char reason[sizeof pipe->error.message];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(reason, sizeof reason, format, arguments);
    va_end(arguments);
    drop_connection(pipe);
    pipe->attempt_failed = true;
    pipe->retry_after_ms = store_monotonic_ms() + STORE_RECONNECT_INTERVAL_MS;
    describe(pipe, STORE_UNAVAILABLE, "%s", reason);
    answer_all(pipe, STORE_UNAVAILABLE);
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
    store_pipe *pipe = context;
    if (fatal(result))
        pipe->server_closing = true;
}

/* How long connecting may wait for the server without progress. */
static uint64_t connect_window_ms(const store_pipe *pipe)
{
    int timeout_s = pipe->config.connect_timeout_s > 0 ? pipe->config.connect_timeout_s : 2;
    return 1000u * (uint64_t)timeout_s;
}

static void start_attempt(store_pipe *pipe)
{
    pipe->attempt_is_reconnect = pipe->ever_attempted;
    pipe->ever_attempted = true;
    pipe->connection = store_connect_start(&pipe->config);
    pipe->generation++;
    /* A new connection: nothing on it ran before its first statement. */
    pipe->last_done_ns = 0;
    pipe->last_done_batch = 0;
    pipe->before_batch_done_ns = 0;
    pipe->socket_serial++;
    if (pipe->connection == NULL) {
        attempt_failed(pipe, "cannot connect to PostgreSQL: out of memory");
        return;
    }
    if (PQstatus(pipe->connection) == CONNECTION_BAD) {
        attempt_failed(pipe, "cannot connect to PostgreSQL: %s", PQerrorMessage(pipe->connection));
        return;
    }
    PQsetNoticeReceiver(pipe->connection, on_notice, pipe);
    pipe->server_closing = false;
    pipe->state = PIPE_CONNECTING;
    /* PQconnectStartParams's contract: act as if PQconnectPoll had said
     * PGRES_POLLING_WRITING. */
    pipe->polling = PGRES_POLLING_WRITING;
    pipe->connect_deadline_ms = store_monotonic_ms() + connect_window_ms(pipe);
}

static void send_queued(store_pipe *pipe);

/* Sends what libpq holds; 1 of PQflush means the socket is full. */
static bool push(store_pipe *pipe)
{
    int flushed = PQflush(pipe->connection);
    pipe->flush_pending = flushed > 0;
    return flushed >= 0;
}

static void lose(store_pipe *pipe, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void become_ready(store_pipe *pipe)
{
    pipe->state = PIPE_READY;
    if (pipe->attempt_is_reconnect)
        pipe->reconnects++;
    pipe->attempt_failed = false;
    send_queued(pipe);
}

/* Connected: non-blocking, pipeline mode, and every registered statement
 * prepared with a sync of its own, so that one that cannot prepare (a
 * table a migration has not made yet) does not abort the others. */
static void begin_session(store_pipe *pipe)
{
    PGconn *connection = pipe->connection;
    if (PQsetnonblocking(connection, 1) != 0) {
        attempt_failed(pipe, "cannot make the PostgreSQL connection non-blocking: %s", PQerrorMessage(connection));
        return;
    }
    if (PQenterPipelineMode(connection) != 1) {
        attempt_failed(pipe, "cannot enter pipeline mode: %s", PQerrorMessage(connection));
        return;
    }
    const store_registry *registry = pipe->config.registry;
    int count = store_registry_count(registry);
    pipe->prepare_failure[0] = '\0';
    pipe->prepare_transient = false;
    pipe->state = PIPE_PREPARING;
    for (int i = 0; i < count; i++)
        if (!PQsendPrepare(connection, store_registry_name(registry, i), store_registry_sql(registry, i),
                           store_registry_param_count(registry, i), NULL) ||
            !PQpipelineSync(connection)) {
            attempt_failed(pipe, "cannot prepare statements: %s", PQerrorMessage(connection));
            return;
        }
    pipe->prepares_left = count;
    pipe->connect_deadline_ms = store_monotonic_ms() + (uint64_t)pipe->config.answer_timeout_ms;
    if (count == 0) {
        become_ready(pipe);
        return;
    }
    if (!push(pipe))
        attempt_failed(pipe, "cannot prepare statements: %s", PQerrorMessage(connection));
}

static void poll_connect(store_pipe *pipe)
{
    pipe->socket_serial++;
    PostgresPollingStatusType polled = PQconnectPoll(pipe->connection);
    switch (polled) {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        /* A step done: the timeout is for a server that does not answer,
         * as libpq's connect_timeout, not for our own work between the
         * steps (SCRAM's key derivation took over a second under valgrind). */
        pipe->polling = polled;
        pipe->connect_deadline_ms = store_monotonic_ms() + connect_window_ms(pipe);
        return;
    case PGRES_POLLING_OK:
        begin_session(pipe);
        return;
    case PGRES_POLLING_FAILED:
    case PGRES_POLLING_ACTIVE: /* unused by libpq since 8.x */
        break;
    }
    attempt_failed(pipe, "cannot connect to PostgreSQL: %s", PQerrorMessage(pipe->connection));
}

/* One prepare's result and sync have come. A failure that passes with time
 * (a lock held past statement_timeout, a server shutting down) would leave
 * the statement missing on a connection that lives on, so it fails the
 * attempt instead, as store.c does: the next one prepares again. */
static void prepared_one(store_pipe *pipe)
{
    const store_registry *registry = pipe->config.registry;
    int index = store_registry_count(registry) - pipe->prepares_left;
    PGresult *result = pipe->prepare_reading.after != NULL ? pipe->prepare_reading.after : pipe->prepare_reading.first;
    if (PQresultStatus(result) != PGRES_COMMAND_OK) {
        store_status meaning = store_status_for_sqlstate(PQresultErrorField(result, PG_DIAG_SQLSTATE));
        bool passing = meaning == STORE_UNAVAILABLE || meaning == STORE_TIMEOUT || meaning == STORE_BUSY;
        if (pipe->prepare_failure[0] == '\0' || (passing && !pipe->prepare_transient)) {
            snprintf(pipe->prepare_failure, sizeof pipe->prepare_failure, "statement %s did not prepare: %s",
                     store_registry_name(registry, index), PQresultErrorMessage(result));
            store_tidy_message(pipe->prepare_failure);
        }
        pipe->prepare_transient = pipe->prepare_transient || passing;
    }
    forget_reading(&pipe->prepare_reading);
    if (--pipe->prepares_left > 0)
        return;
    if (pipe->prepare_transient)
        attempt_failed(pipe, "cannot prepare statements now: %s", pipe->prepare_failure);
    else
        become_ready(pipe);
}

/* ---- sending and reading -------------------------------------------------------------- */

static void send_queued(store_pipe *pipe)
{
    if (pipe->state != PIPE_READY)
        return;
    PGconn *connection = pipe->connection;
    const store_registry *registry = pipe->config.registry;
    bool sent_any = false;
    /* One flush goes out in one write: its statements share a send time
     * (one clock read per flush, not one per statement). */
    uint64_t flushed_ns = store_monotonic_ns();
    while (pipe->passed < pipe->count) {
        waiter *w = waiter_at(pipe, pipe->passed);
        if (w->state == WAITER_DROPPED) {
            pipe->passed++;
            continue;
        }
        const char *name = store_registry_name(registry, w->statement);
        int param_count = store_registry_param_count(registry, w->statement);
        if (!PQsendQueryPrepared(connection, name, param_count, w->params, NULL, NULL, 0)) {
            /* Nothing of it went out: on a dead connection it waits for the
             * next one; on a live one it is this request's own failure. */
            if (PQstatus(connection) == CONNECTION_BAD) {
                lose(pipe, "cannot send to PostgreSQL: %s", PQerrorMessage(connection));
                return;
            }
            describe(pipe, STORE_ERROR, "cannot send %s: %s", name, PQerrorMessage(connection));
            store_pipe_callback callback = w->callback;
            void *cookie = w->cookie;
            pipe_batch *batch = w->batch;
            w->callback = NULL;
            w->state = WAITER_DROPPED;
            pipe->passed++;
            unsigned long generation = pipe->generation;
            if (batch != NULL && batch->callback != NULL)
                finish_batch(pipe, batch, STORE_ERROR, true);
            else if (callback != NULL)
                callback(cookie, STORE_ERROR, NULL, &pipe->error);
            if (pipe->generation != generation || pipe->state != PIPE_READY)
                return;
            continue;
        }
        w->state = WAITER_SENT;
        w->sent_ns = flushed_ns;
        pipe->passed++;
        if (pipe->sent_waiting++ == 0)
            pipe->progress_ms = store_monotonic_ms();
        sent_any = true;
        /* Its own sync: its own implicit transaction, so that its failure
         * (and the pipeline abort after it) ends here. */
        if (!PQpipelineSync(connection)) {
            lose(pipe, "cannot send to PostgreSQL: %s", PQerrorMessage(connection));
            return;
        }
    }
    if ((sent_any || pipe->flush_pending) && !push(pipe))
        lose(pipe, "cannot send to PostgreSQL: %s", PQerrorMessage(connection));
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
static bool queue_again(store_pipe *pipe, waiter *w, store_pipe_ticket ticket)
{
    if (w->batch != NULL || w->callback == NULL || w->attempts + 1 >= STORE_TRANSACTION_ATTEMPTS ||
        !make_room(pipe, 1))
        return false;
    waiter again = *w;
    again.state = WAITER_QUEUED;
    again.reading = (reading){0};
    again.attempts++;
    again.origin = w->origin != 0 ? w->origin : ticket;
    *waiter_at(pipe, pipe->count) = again;
    pipe->count++;
    return true;
}

static void bump(atomic_ulong *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1, memory_order_relaxed);
}

static void add_ns(atomic_ullong *counter, uint64_t ns)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + ns, memory_order_relaxed);
}

/* A statement's sync came back (w is popped, its batch not yet answered):
 * its time on the connection and its wait behind others'. */
static void count_done(store_pipe *pipe, const waiter *w)
{
    uint64_t done_ns = store_monotonic_ns();
    store_pipe_ticket batch = w->batch != NULL ? w->batch->first_ticket : 0;
    bool same_batch = batch != 0 && batch == pipe->last_done_batch;
    uint64_t behind_ns = same_batch ? pipe->before_batch_done_ns : pipe->last_done_ns;
    uint64_t wait_ns = behind_ns > w->sent_ns ? behind_ns - w->sent_ns : 0;
    uint64_t busy_ns = done_ns > w->sent_ns ? done_ns - w->sent_ns : 0;
    if (!same_batch)
        pipe->before_batch_done_ns = pipe->last_done_ns;
    pipe->last_done_ns = done_ns;
    pipe->last_done_batch = batch;

    store_pipe_counters *c = pipe->counters;
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
static void answer_head(store_pipe *pipe)
{
    store_pipe_ticket ticket = pipe->head_ticket;
    waiter w = pop(pipe);
    count_done(pipe, &w);
    PGresult *first = w.reading.first;
    PGresult *after = w.reading.after;
    w.reading = (reading){0};
    if (store_result_succeeded(first) && after == NULL) {
        answer(pipe, &w, STORE_OK, first, false);
        return;
    }
    store_status status;
    if (!store_result_succeeded(first) && PQresultStatus(first) == PGRES_PIPELINE_ABORTED) {
        describe(pipe, STORE_ERROR, "skipped: an earlier statement of the pipeline failed");
        status = STORE_ERROR;
    } else {
        status = describe_result(pipe, store_result_succeeded(first) ? after : first);
    }
    PQclear(first);
    PQclear(after);
    if (status == STORE_BUSY && queue_again(pipe, &w, ticket))
        return;
    answer(pipe, &w, status, NULL, false);
}

static bool expecting(store_pipe *pipe)
{
    if (pipe->state == PIPE_PREPARING)
        return pipe->prepares_left > 0;
    if (pipe->state != PIPE_READY)
        return false;
    /* Cancelled before they went out: nothing of theirs will come. */
    while (pipe->count > 0 && waiter_at(pipe, 0)->state == WAITER_DROPPED) {
        waiter w = pop(pipe);
        answer(pipe, &w, STORE_DEADLINE, NULL, true);
    }
    return pipe->count > 0 && waiter_at(pipe, 0)->state == WAITER_SENT;
}

/* Reads every answer libpq holds complete, in order, to whoever awaits it. */
static void drain(store_pipe *pipe)
{
    unsigned long generation = pipe->generation;
    while (pipe->generation == generation && expecting(pipe)) {
        PGconn *connection = pipe->connection;
        /* False on a broken connection too: PQgetResult then returns what
         * it still holds, then libpq's own error, then NULL. */
        if (PQisBusy(connection))
            return;
        PGresult *result = PQgetResult(connection);
        if (result == NULL && PQstatus(connection) == CONNECTION_BAD) {
            lose(pipe, "the connection to PostgreSQL was lost: %s", PQerrorMessage(connection));
            return;
        }
        pipe->progress_ms = store_monotonic_ms();
        if (result != NULL && fatal(result))
            pipe->server_closing = true;
        reading *r = pipe->state == PIPE_PREPARING ? &pipe->prepare_reading : &waiter_at(pipe, 0)->reading;
        int step = feed(r, result);
        if (step < 0) {
            lose(pipe, "out of step with PostgreSQL's pipeline");
            return;
        }
        if (step > 0) {
            if (pipe->state == PIPE_PREPARING)
                prepared_one(pipe);
            else
                answer_head(pipe);
        }
    }
}

/* The connection broke (or stopped answering) while it was good: what was
 * sent has an unknown outcome, what was not goes out on a new connection,
 * started at once. */
static void lose(store_pipe *pipe, const char *format, ...)
{
    char reason[sizeof pipe->error.message];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(reason, sizeof reason, format, arguments);
    va_end(arguments);
    if (pipe->state != PIPE_READY) {
        attempt_failed(pipe, "%s", reason);
        return;
    }
    drop_connection(pipe);
    pipe->losing = true;
    while (pipe->passed > 0) {
        waiter w = pop(pipe);
        describe(pipe, STORE_UNAVAILABLE, "%s (the statement was sent: its outcome is unknown)", reason);
        answer(pipe, &w, STORE_UNAVAILABLE, NULL, true);
    }
    pipe->losing = false;
    start_attempt(pipe);
}

/* ---- the caller's side ---------------------------------------------------------------- */

store_pipe *store_pipe_open(const store_config *config)
{
    if (config->registry != NULL && !store_registry_frozen(config->registry))
        return NULL;
    store_pipe *pipe = calloc(1, sizeof *pipe);
    if (pipe == NULL)
        return NULL;
    bool copied = store_config_copy(&pipe->config, config);
    pipe->head_ticket = 1;
    pipe->counters = &pipe->own_counters;
    if (!copied) {
        store_pipe_close(pipe);
        return NULL;
    }
    start_attempt(pipe);
    return pipe;
}

void store_pipe_close(store_pipe *pipe)
{
    if (pipe == NULL)
        return;
    bool was_ready = pipe->state == PIPE_READY;
    drop_connection(pipe);
    pipe->closing = true; /* a callback's enqueue is refused */
    while (pipe->count > 0) {
        waiter w = pop(pipe);
        if (was_ready && w.state == WAITER_SENT)
            describe(pipe, STORE_UNAVAILABLE, "the pipe closed (the statement was sent: its outcome is unknown)");
        else
            describe(pipe, STORE_UNAVAILABLE, "the pipe closed before the statement was sent");
        answer(pipe, &w, STORE_UNAVAILABLE, NULL, true);
    }
    free(pipe->ring);
    store_config_release(&pipe->config);
    free(pipe);
}

int store_pipe_fd(const store_pipe *pipe)
{
    return pipe->connection != NULL ? PQsocket(pipe->connection) : -1;
}

bool store_pipe_wants_write(const store_pipe *pipe)
{
    if (pipe->state == PIPE_CONNECTING)
        return pipe->polling == PGRES_POLLING_WRITING;
    return pipe->state != PIPE_DOWN && pipe->flush_pending;
}

void store_pipe_on_readable(store_pipe *pipe)
{
    if (pipe->state == PIPE_DOWN)
        return;
    if (pipe->state == PIPE_CONNECTING) {
        if (pipe->polling == PGRES_POLLING_READING)
            poll_connect(pipe);
        return;
    }
    unsigned long generation = pipe->generation;
    bool consumed = PQconsumeInput(pipe->connection) == 1;
    /* What arrived complete before a break is still answered. */
    drain(pipe);
    if (pipe->generation != generation || pipe->state == PIPE_DOWN)
        return;
    if (!consumed) {
        lose(pipe, "the connection to PostgreSQL was lost: %s", connection_message(pipe));
        return;
    }
    /* With nothing out, libpq parses what came only when asked: this asks
     * (a FATAL then reaches on_notice), and drops notifications, which no
     * one here listens for. */
    for (PGnotify *notify = PQnotifies(pipe->connection); notify != NULL; notify = PQnotifies(pipe->connection))
        PQfreemem(notify);
    if (pipe->server_closing) {
        lose(pipe, "PostgreSQL is closing the connection");
        return;
    }
    /* libpq's rule for non-blocking sends: after reading, flush again. */
    if (pipe->flush_pending && !push(pipe))
        lose(pipe, "cannot send to PostgreSQL: %s", connection_message(pipe));
}

void store_pipe_on_writable(store_pipe *pipe)
{
    if (pipe->state == PIPE_CONNECTING) {
        if (pipe->polling == PGRES_POLLING_WRITING)
            poll_connect(pipe);
        return;
    }
    if (pipe->state != PIPE_DOWN && pipe->flush_pending && !push(pipe))
        lose(pipe, "cannot send to PostgreSQL: %s", connection_message(pipe));
}

static int until(uint64_t deadline_ms)
{
    uint64_t now = store_monotonic_ms();
    if (deadline_ms <= now)
        return 0;
    return deadline_ms - now > INT_MAX ? INT_MAX : (int)(deadline_ms - now);
}

int store_pipe_timer_ms(const store_pipe *pipe)
{
    if (pipe->state == PIPE_CONNECTING || pipe->state == PIPE_PREPARING)
        return until(pipe->connect_deadline_ms);
    if (pipe->state == PIPE_READY && pipe->sent_waiting > 0)
        return until(pipe->progress_ms + (uint64_t)pipe->config.answer_timeout_ms);
    return -1;
}

void store_pipe_on_timer(store_pipe *pipe)
{
    if (store_pipe_timer_ms(pipe) != 0)
        return;
    if (pipe->state == PIPE_READY)
        lose(pipe, "PostgreSQL did not answer within %d ms", pipe->config.answer_timeout_ms);
    else if (pipe->state == PIPE_PREPARING)
        attempt_failed(pipe, "cannot prepare statements: no answer within %d ms", pipe->config.answer_timeout_ms);
    else
        attempt_failed(pipe, "cannot connect to PostgreSQL: no answer within %d s",
                       pipe->config.connect_timeout_s > 0 ? pipe->config.connect_timeout_s : 2);
}

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

/* Whether a request may queue now; starts a connection when there is
 * none and none failed within the reconnect interval. */
static store_status admit(store_pipe *pipe)
{
    if (pipe->closing)
        return STORE_UNAVAILABLE;
    if (pipe->state != PIPE_DOWN || pipe->losing)
        return STORE_OK;
    if (pipe->attempt_failed && store_monotonic_ms() < pipe->retry_after_ms)
        return STORE_UNAVAILABLE;
    start_attempt(pipe);
    return pipe->state == PIPE_DOWN ? STORE_UNAVAILABLE : STORE_OK;
}

store_status store_pipe_enqueue(store_pipe *pipe, store_statement statement, const char *const *params,
                                store_pipe_callback callback, void *cookie, store_pipe_ticket *ticket)
{
    if (ticket != NULL)
        *ticket = 0;
    if (store_registry_name(pipe->config.registry, statement) == NULL || callback == NULL)
        return STORE_ERROR;
    store_status admitted = admit(pipe);
    if (admitted != STORE_OK)
        return admitted;
    const char **copied = NULL;
    if (!copy_params(store_registry_param_count(pipe->config.registry, statement), params, &copied))
        return STORE_ERROR;
    if (!make_room(pipe, 1)) {
        free(copied);
        return STORE_ERROR;
    }
    *waiter_at(pipe, pipe->count) = (waiter){
        .callback = callback, .cookie = cookie, .statement = statement, .params = copied, .state = WAITER_QUEUED};
    pipe->count++;
    if (ticket != NULL)
        *ticket = pipe->head_ticket + pipe->count - 1;
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
    store_status admitted = admit(pipe);
    if (admitted != STORE_OK)
        return admitted;
    pipe_batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL || !make_room(pipe, count)) {
        free(batch);
        return STORE_ERROR;
    }
    *batch = (pipe_batch){.callback = callback,
                          .cookie = cookie,
                          .items = items,
                          .count = count,
                          .first_ticket = pipe->head_ticket + pipe->count,
                          .in_ring = count,
                          .failed_item = count};
    for (size_t i = 0; i < count; i++) {
        const char **copied = NULL;
        if (!copy_params(store_registry_param_count(pipe->config.registry, items[i].statement), items[i].params,
                         &copied)) {
            for (size_t j = 0; j < i; j++)
                free(waiter_at(pipe, pipe->count + j)->params);
            free(batch);
            return STORE_ERROR;
        }
        *waiter_at(pipe, pipe->count + i) = (waiter){.batch = batch,
                                                     .item = i,
                                                     .statement = items[i].statement,
                                                     .params = copied,
                                                     .state = WAITER_QUEUED};
        items[i].result = NULL;
        items[i].status = STORE_OK;
    }
    pipe->count += count;
    if (ticket != NULL)
        *ticket = batch->first_ticket;
    return STORE_OK;
}

void store_pipe_flush(store_pipe *pipe)
{
    send_queued(pipe);
}

static void cancel_batch(store_pipe *pipe, pipe_batch *batch)
{
    bool sent = false;
    for (size_t i = 0; i < batch->count; i++) {
        store_pipe_ticket ticket = batch->first_ticket + i;
        if (ticket >= pipe->head_ticket && ticket - pipe->head_ticket < pipe->count &&
            waiter_at(pipe, (size_t)(ticket - pipe->head_ticket))->state == WAITER_SENT)
            sent = true;
    }
    if (sent)
        describe(pipe, STORE_UNAVAILABLE,
                 "the request's deadline passed while PostgreSQL had the batch: its outcome is unknown");
    else
        describe(pipe, STORE_DEADLINE, "the request's deadline passed before the batch was sent");
    finish_batch(pipe, batch, pipe->error.status, true);
}

/* Where a request's ticket is now: its place, or, when that is gone, the
 * place of the statement it queued again (rare: a search). */
static waiter *find(store_pipe *pipe, store_pipe_ticket ticket)
{
    if (ticket >= pipe->head_ticket && ticket - pipe->head_ticket < pipe->count)
        return waiter_at(pipe, (size_t)(ticket - pipe->head_ticket));
    if (ticket == 0 || ticket >= pipe->head_ticket)
        return NULL;
    for (size_t i = 0; i < pipe->count; i++)
        if (waiter_at(pipe, i)->origin == ticket)
            return waiter_at(pipe, i);
    return NULL;
}

void store_pipe_cancel(store_pipe *pipe, store_pipe_ticket ticket)
{
    waiter *w = find(pipe, ticket);
    if (w == NULL)
        return;
    if (w->batch != NULL) {
        if (w->batch->callback != NULL)
            cancel_batch(pipe, w->batch);
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
        describe(pipe, status, "the request's deadline passed while PostgreSQL had the statement: its outcome is unknown");
    } else {
        status = STORE_DEADLINE;
        w->state = WAITER_DROPPED;
        describe(pipe, status, "the request's deadline passed before the statement was sent");
    }
    callback(cookie, status, NULL, &pipe->error);
}

bool store_pipe_ready(const store_pipe *pipe)
{
    return pipe->state == PIPE_READY;
}

int store_pipe_backend_pid(const store_pipe *pipe)
{
    return pipe->state == PIPE_READY ? PQbackendPID(pipe->connection) : 0;
}

size_t store_pipe_waiting(const store_pipe *pipe)
{
    return pipe->count;
}

unsigned long store_pipe_reconnect_count(const store_pipe *pipe)
{
    return pipe->reconnects;
}

unsigned long store_pipe_socket_serial(const store_pipe *pipe)
{
    return pipe->socket_serial;
}

void store_pipe_count_into(store_pipe *pipe, store_pipe_counters *counters)
{
    pipe->counters = counters != NULL ? counters : &pipe->own_counters;
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
}

void store_pipe_stats_read(const store_pipe *pipe, store_pipe_stats *out)
{
    *out = (store_pipe_stats){0};
    store_pipe_counters_add_to(pipe->counters, out);
}
