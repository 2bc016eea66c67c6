/* store/pipe.h: one non-blocking PostgreSQL connection in pipeline mode,
 * shared by every request of one event loop (private to libshoal; the
 * engine's loop drives it, docs/engine.md).
 *
 * The pipe owns no loop. Its caller watches store_pipe_fd() for reading
 * (always) and for writing (while store_pipe_wants_write()), calls
 * store_pipe_on_readable / store_pipe_on_writable when it may, calls
 * store_pipe_flush once at the end of each loop turn, and
 * store_pipe_on_timer when store_pipe_timer_ms() says. The fd may change
 * after any call (a reconnect, or libpq trying the next address of a host):
 * read it again each turn.
 *
 * Requests queue statements during a turn; the flush sends them all, each
 * followed by its own sync, so that each is its own implicit transaction:
 * one request's failure (and the pipeline abort that follows it) stops at
 * its sync and touches no other request. Results come back in the order
 * sent and go to each request's callback, which is called exactly once for
 * every enqueue that returned STORE_OK, never from inside
 * store_pipe_enqueue.
 *
 * A statement counts as done only when its sync comes back (the server
 * commits an implicit transaction there). When the connection breaks,
 * every request that was sent and not done gets STORE_UNAVAILABLE: its
 * outcome is unknown, so it is never sent again. Requests queued but not
 * sent stay queued and go out on the next connection, which is started at
 * once, without blocking. A connect attempt that fails answers every
 * queued request STORE_UNAVAILABLE (nothing of theirs was sent), and for
 * STORE_RECONNECT_INTERVAL_MS after it store_pipe_enqueue refuses at once,
 * as store_run does, so that an outage is a quick 503 rather than a
 * request's whole deadline spent waiting; the next enqueue after the
 * interval starts the next attempt.
 *
 * The spill lane. With config.spill_after_ms > 0 the pipe has a second
 * connection for when the first is stalled: a request's statements (one,
 * or a whole batch, so that they come back in order) go on the main lane
 * unless its oldest statement out has been running longer than
 * spill_after_ms (since it was sent, or since the statement before it
 * finished when that was later: a queue that moves does not spill),
 * and then on the spill lane, which connects (without blocking) when first
 * needed: they wait for it rather than behind the stall. When both are
 * stalled they go on the lane whose oldest statement is younger; back on
 * the main lane once it has caught up. The spill lane closes after
 * STORE_PIPE_SPILL_IDLE_MS with nothing sent on it, so a pipe holds one
 * connection while nothing stalls and two at most. Each lane has its own
 * FIFO, answer timeout and loss (what was sent on a lost lane is answered
 * unavailable, what was not goes out on its next connection); a spill
 * connection that cannot be made sends to the main lane meanwhile. The
 * caller watches both lanes' sockets and timers (the store_pipe_lane_*
 * calls; the others are the main lane's). docs/engine.md, "Head-of-line on
 * the pipe".
 *
 * A pipe belongs to one thread. Callbacks may enqueue, flush and cancel;
 * they must not close the pipe. */
#ifndef STORE_PIPE_H
#define STORE_PIPE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <shoal/store.h>

typedef struct store_pipe store_pipe;

/* The lanes (above). */
enum { STORE_PIPE_MAIN = 0, STORE_PIPE_SPILL = 1, STORE_PIPE_LANES = 2 };
/* The spill lane closes after this long with nothing sent on it. */
#define STORE_PIPE_SPILL_IDLE_MS 10000

/* Names one enqueued request, for store_pipe_cancel; 0 is never one. */
typedef uint64_t store_pipe_ticket;

/* status STORE_OK: result is the statement's (the caller's, released with
 * store_result_free). Otherwise result is NULL and error says why (the
 * SQLSTATE, the constraint and the field it guards, a message for logs);
 * error is valid during the call only. */
typedef void (*store_pipe_callback)(void *cookie, store_status status, store_result *result,
                                    const store_error *error);

/* Starts connecting at once, without blocking, and prepares the config's
 * registry (frozen, as store_open requires) on every connection. NULL only
 * when memory runs out or the registry is not frozen; an unreachable
 * server shows in the requests' answers. The config's strings are copied. */
store_pipe *store_pipe_open(const store_config *config);
/* Every request still waiting is answered first: STORE_UNAVAILABLE if it
 * was sent (outcome unknown), STORE_UNAVAILABLE if it was only queued. */
void store_pipe_close(store_pipe *pipe);

/* What to watch: the connection's socket (-1 while there is none), always
 * for reading, and for writing while store_pipe_wants_write. */
int store_pipe_fd(const store_pipe *pipe);
bool store_pipe_wants_write(const store_pipe *pipe);
void store_pipe_on_readable(store_pipe *pipe);
void store_pipe_on_writable(store_pipe *pipe);

/* Milliseconds until store_pipe_on_timer must run (0: now), or -1 for no
 * timer: the connect timeout while connecting, and the answer timeout
 * while statements are out (a server that accepts and never answers must
 * not hold every request of the loop); the spill lane's idle time while it
 * has nothing. */
int store_pipe_timer_ms(const store_pipe *pipe);
void store_pipe_on_timer(store_pipe *pipe);

/* The same for one lane (STORE_PIPE_MAIN or STORE_PIPE_SPILL): the calls
 * above are the main lane's. The spill lane's socket is -1 while it has no
 * connection. */
int store_pipe_lane_fd(const store_pipe *pipe, int lane);
bool store_pipe_lane_wants_write(const store_pipe *pipe, int lane);
void store_pipe_lane_on_readable(store_pipe *pipe, int lane);
void store_pipe_lane_on_writable(store_pipe *pipe, int lane);
int store_pipe_lane_timer_ms(const store_pipe *pipe, int lane);
void store_pipe_lane_on_timer(store_pipe *pipe, int lane);
unsigned long store_pipe_lane_socket_serial(const store_pipe *pipe, int lane);
/* The lane's backend PID (0 when not connected), for tests. */
int store_pipe_lane_backend_pid(const store_pipe *pipe, int lane);
/* The spill lane's idle time (0: STORE_PIPE_SPILL_IDLE_MS), for tests. */
void store_pipe_set_spill_idle_ms(store_pipe *pipe, int idle_ms);

/* Queues one registered statement; params (text, NULL for SQL NULL, as
 * many as the statement takes) are copied. STORE_OK: callback(cookie, ...)
 * comes later, exactly once, and *ticket (may be NULL) names the request.
 * A serialization failure or deadlock (STORE_BUSY) runs it again, as
 * store_run does (the statement was its own transaction, rolled back
 * whole), up to STORE_TRANSACTION_ATTEMPTS runs in all; the ticket still
 * names it.
 * Otherwise nothing was queued and the callback never comes:
 * STORE_UNAVAILABLE within the reconnect interval after a failed attempt,
 * STORE_ERROR for a statement the registry does not have or when memory
 * runs out. */
store_status store_pipe_enqueue(store_pipe *pipe, store_statement statement, const char *const *params,
                                store_pipe_callback callback, void *cookie, store_pipe_ticket *ticket);

/* The caller's callback for a batch: each item's status and result (the
 * caller's, released with store_result_free) are in the items it gave, as
 * store_batch leaves them; status is STORE_OK when every item succeeded,
 * else the first failed item's (error says why). A batch lost with its
 * connection, cancelled or refused leaves no item a result, every item
 * with that status. */
typedef void (*store_pipe_batch_callback)(void *cookie, store_status status, const store_error *error);

/* Queues count (> 0) registered statements as one request: each with a
 * sync of its own, so that each succeeds or fails on its own, as
 * store_batch's items do; their answers come back in order into items,
 * which the caller keeps until its callback comes (their params are
 * copied). The callback comes once, after the last item, or at once when
 * the batch is cancelled (the ticket names the whole batch) or lost; a
 * batch that is lost is not sent again, not even its unsent items.
 * Returns as store_pipe_enqueue; an unregistered statement refuses the
 * whole batch (STORE_ERROR). */
store_status store_pipe_enqueue_batch(store_pipe *pipe, store_batch_item *items, size_t count,
                                      store_pipe_batch_callback callback, void *cookie, store_pipe_ticket *ticket);

/* Sends every request queued so far (the end of a loop turn): libpq 15's
 * PQpipelineSync writes at each sync, so the sends are gathered here
 * rather than made as requests come. */
void store_pipe_flush(store_pipe *pipe);

/* The request's deadline passed: its callback comes now, STORE_DEADLINE if
 * it was not sent (and it never will be), STORE_UNAVAILABLE if it was (its
 * outcome is unknown, as for a lost connection). Its result, when it comes,
 * is discarded. A ticket already answered or unknown is ignored. */
void store_pipe_cancel(store_pipe *pipe, store_pipe_ticket ticket);

/* The main lane connected, statements prepared, in pipeline mode. */
bool store_pipe_ready(const store_pipe *pipe);
/* The main lane's backend PID (0 when not connected), for tests. */
int store_pipe_backend_pid(const store_pipe *pipe);
/* Requests waiting: queued or sent, answered or cancelled or not. */
size_t store_pipe_waiting(const store_pipe *pipe);
/* Main connections made after a lost one or after a failed attempt. */
unsigned long store_pipe_reconnect_count(const store_pipe *pipe);
/* Changes whenever the socket may have changed, even to one with the same
 * number (libpq closes and opens sockets while it connects; epoll forgets a
 * closed one): a loop watching store_pipe_fd registers it again then. */
unsigned long store_pipe_socket_serial(const store_pipe *pipe);

/* ---- head-of-line on the pipe ---------------------------------------------
 *
 * PostgreSQL runs a pipeline's statements one after another, so a statement
 * sent while an earlier one (another request's) still runs waits for it.
 * For each statement whose sync comes back the pipe counts its time on the
 * connection (send to sync) and, of that, its wait behind others: the time
 * from its send until the statement answered before it finished, when that
 * was later (0 otherwise). A batch's items do not wait "behind" their own
 * batch: an item counts the wait behind what came before the batch. Every
 * run of a statement run again counts; a statement lost with its
 * connection does not (it never finished). docs/engine.md, "Head-of-line
 * on the pipe". */

/* Upper bounds of the wait buckets, 0 (no wait at all) to 5 s; +Inf follows. */
#define STORE_PIPE_WAIT_BUCKETS 16
extern const uint64_t store_pipe_wait_bounds_ns[STORE_PIPE_WAIT_BUCKETS];

/* Written by the pipe's thread only (relaxed loads and stores), read by
 * any thread. */
typedef struct store_pipe_counters {
    atomic_ulong statements;
    atomic_ullong busy_ns;     /* send to sync, summed */
    atomic_ullong wait_ns;     /* of which waiting behind others' statements */
    atomic_ullong max_wait_ns; /* the longest one wait */
    atomic_ulong wait_buckets[STORE_PIPE_WAIT_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    atomic_ulong spilled;           /* statements sent on the spill lane (each run) */
    atomic_ulong spill_connections; /* spill connections made (ready) */
} store_pipe_counters;

typedef struct store_pipe_stats {
    unsigned long statements;
    uint64_t busy_ns;
    uint64_t wait_ns;
    uint64_t max_wait_ns;
    unsigned long wait_buckets[STORE_PIPE_WAIT_BUCKETS + 1];
    unsigned long spilled;
    unsigned long spill_connections;
} store_pipe_stats;

/* Where the pipe counts from now on (NULL: its own counters again); they
 * must outlive the pipe. The engine keeps its pipes' counters in the app,
 * so that a scrape never reads a pipe its loop is closing. */
void store_pipe_count_into(store_pipe *pipe, store_pipe_counters *counters);
/* Adds counters to totals (the max is the larger of the two); any thread. */
void store_pipe_counters_add_to(const store_pipe_counters *counters, store_pipe_stats *totals);
/* What the pipe counted where it counts now; its own thread, or while it
 * lives. */
void store_pipe_stats_read(const store_pipe *pipe, store_pipe_stats *out);

/* ---- a store's calls without blocking its thread ---------------------------
 *
 * How a store waits without blocking its thread: the engine parks the
 * calling request (a fiber) and runs others meanwhile. store_run and
 * store_batch outside a transaction wait for the pipe; a transaction (and
 * any call when there is no pipe) waits on the store's own connection,
 * which one caller holds at a time: the others' transactions wait for it
 * in turn. Every function is called on the store's thread. */

/* How a wait on a socket ended (store_wait's park_on_socket). */
typedef enum store_socket_wait {
    STORE_SOCKET_READY,     /* the socket is ready */
    STORE_SOCKET_TIMED_OUT, /* the deadline came first */
    STORE_SOCKET_STOPPING,  /* the engine stops: no more waits on the connection */
    STORE_SOCKET_FAILED,    /* the engine could not watch it (out of memory) */
} store_socket_wait;

enum {
    STORE_SOCKET_READABLE = 1u << 0,
    STORE_SOCKET_WRITABLE = 1u << 1,
};

typedef struct store_wait {
    void *context;
    /* The caller, when it can be parked (it runs on a fiber of the loop
     * that drives the pipe), else NULL: the call then blocks its thread. */
    void *(*caller)(void *context);
    /* Parks caller until wake(context, caller). When deadline_ns (0: none)
     * passes first, expired(argument) runs on the loop (it cancels the
     * statement, or ends the wait, and wakes the caller). */
    void (*park)(void *context, void *caller, uint64_t deadline_ns, void (*expired)(void *argument),
                 void *argument);
    /* Makes a parked caller runnable; from the pipe's callbacks. */
    void (*wake)(void *context, void *caller);
    /* Parks caller until fd is ready for events (STORE_SOCKET_READABLE,
     * STORE_SOCKET_WRITABLE) or deadline_ns (CLOCK_MONOTONIC, 0: none)
     * passes; how it ended. The store's own connection waits so instead of
     * poll(). */
    store_socket_wait (*park_on_socket)(void *context, void *caller, int fd, unsigned events, uint64_t deadline_ns);
} store_wait;

/* How the store parks its callers from now on (NULL: never again; every
 * call blocks its thread). wait is copied; every member is needed. */
void store_use_wait(store *s, const store_wait *wait);
/* From now on the store's calls outside a transaction go through pipe
 * when the caller can be parked (NULL pipe: never again; they wait on the
 * store's own connection). The store does not own the pipe. A
 * transaction's statements keep the store's own connection: they must not
 * mix with other requests'. */
void store_use_pipe(store *s, store_pipe *pipe);

/* store_last_error as one request left it, kept while the request is
 * parked and others run on the same store (their calls overwrite it). */
typedef struct store_error_copy {
    store_error error;
    char field[64];
} store_error_copy;
void store_last_error_save(const store *s, store_error_copy *out);
void store_last_error_restore(store *s, const store_error_copy *saved);

#endif
