/* cache/async.h: one non-blocking Redis connection (hiredis async), shared
 * by every request of one event loop, its commands pipelined across
 * requests (private to libshoal; the engine's loop drives it,
 * docs/engine.md).
 *
 * It owns no loop, as store/pipe.h does not. Its caller watches
 * cache_async_fd() for reading (always, POLLERR and POLLHUP included) and
 * for writing (while cache_async_wants_write()), calls
 * cache_async_on_readable / cache_async_on_writable when it may,
 * cache_async_on_timer when cache_async_timer_ms() says, and
 * cache_async_flush once at the end of each loop turn. The fd changes with
 * every new connection: read it again each turn.
 *
 * Commands are queued during a turn and handed to hiredis only by the
 * flush, which writes all of them with one write() (hiredis writes only
 * when our adapter is asked to, and the adapter writes only there, or
 * when a previous write was partial). Replies come back in the order sent:
 * each request's callbacks come in the order it queued its commands. A
 * reply goes through cache_reply_classify, as on a worker's blocking
 * connection: LOADING, BUSY, READONLY and the like are CACHE_UNAVAILABLE.
 *
 * Every command gets the config's timeout_ms as its deadline; past it,
 * its callback comes at once with CACHE_UNAVAILABLE, and its reply, when
 * it comes, is dropped, so the FIFO stays in step. When nothing at all
 * has been answered for twice the timeout while commands are out, the
 * server is taken as hung and the connection dropped.
 *
 * When the connection breaks, every command sent and not answered gets
 * CACHE_UNAVAILABLE: its outcome is unknown, so it is never sent again.
 * Commands queued but not sent stay queued and go out on the next
 * connection, started at once without blocking (redisAsyncConnect; a host
 * name is resolved with a blocking getaddrinfo: give an address). A
 * connection counts as made when its handshake (AUTH and SELECT when the
 * URL says, then PING) is answered, within timeout_ms; an attempt that
 * fails answers every queued command CACHE_UNAVAILABLE (none was sent),
 * and for CACHE_RECONNECT_INTERVAL_MS after it cache_async_command refuses
 * at once, so an outage is a quick answer; the next command after the
 * interval starts the next attempt.
 *
 * A cache_async belongs to one thread. Callbacks may queue commands and
 * flush; they must not close it. */
#ifndef CACHE_ASYNC_H
#define CACHE_ASYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "cache_internal.h"

typedef struct cache_async cache_async;

/* CACHE_OK or CACHE_ERROR (Redis refused the command): reply is Redis'
 * answer, valid during the call only (hiredis frees it after). Otherwise
 * (CACHE_UNAVAILABLE: not reachable, not serving now, past the deadline,
 * or lost with its connection) reply is NULL. */
typedef void (*cache_async_callback)(void *cookie, cache_status status, const redisReply *reply);

/* Starts connecting at once, without blocking. NULL when the URL is
 * invalid (reason in error) or memory runs out; an unreachable server
 * shows in the commands' answers. Only the config's url and timeout_ms are
 * used (timeout_ms <= 0: 1000). */
cache_async *cache_async_open(const cache_config *config, char *error, size_t error_size);
/* Every command still waiting is answered CACHE_UNAVAILABLE first. */
void cache_async_close(cache_async *a);

/* The connection's socket, -1 while there is none. */
int cache_async_fd(const cache_async *a);
bool cache_async_wants_write(const cache_async *a);
void cache_async_on_readable(cache_async *a);
void cache_async_on_writable(cache_async *a);

/* Milliseconds until cache_async_on_timer must run (0: now), or -1 for
 * none: the connect timeout, the first waiting command's deadline, the
 * hung-server check. */
int cache_async_timer_ms(const cache_async *a);
void cache_async_on_timer(cache_async *a);

/* Queues one command (binary-safe arguments, copied). CACHE_OK: the
 * callback comes later, exactly once, never from inside this call.
 * CACHE_UNAVAILABLE within the reconnect interval after a failed attempt,
 * CACHE_ERROR when memory runs out: nothing was queued, no callback. */
cache_status cache_async_command(cache_async *a, int argc, const char **argv, const size_t *lengths,
                                 cache_async_callback callback, void *cookie);

/* Sends every command queued so far in one write (the end of a loop turn);
 * nothing before the connection's handshake is answered. */
void cache_async_flush(cache_async *a);

/* Connected and its handshake answered. */
bool cache_async_ready(const cache_async *a);
/* Commands waiting: queued, or sent and not yet answered. */
size_t cache_async_waiting(const cache_async *a);

/* What it did since it opened, for tests and later /metrics. */
typedef struct cache_async_stats {
    unsigned long writes;      /* write() calls hiredis made for us, the handshakes' included */
    unsigned long flushes;     /* flushes that handed commands to hiredis */
    unsigned long sent;        /* commands handed to hiredis */
    unsigned long timeouts;    /* commands answered at their deadline */
    unsigned long lost;        /* commands sent and lost with their connection */
    unsigned long connects;    /* attempts started */
    unsigned long reconnects;  /* connections made after a lost one or a failed attempt */
    unsigned long late_replies; /* replies dropped because their command was answered at its deadline */
} cache_async_stats;
void cache_async_stats_read(const cache_async *a, cache_async_stats *out);
/* Changes with every new connection's socket, even one that got the number
 * of the last (epoll forgot that one when it closed): a loop watching
 * cache_async_fd registers it again then. */
unsigned long cache_async_socket_serial(const cache_async *a);

/* ---- a cache's calls on it ---------------------------------------------------
 *
 * How cache_command_run and cache_pipeline wait for the async connection
 * without blocking their thread: the engine parks the calling request (a
 * fiber) and runs others meanwhile. Every function is called on the
 * cache's thread. */
typedef struct cache_wait {
    void *context;
    /* The caller, when it can be parked (a fiber of the loop that drives
     * the connection), else NULL: the call takes the cache's own blocking
     * connection. */
    void *(*caller)(void *context);
    /* Parks caller until wake(context, caller). */
    void (*park)(void *context, void *caller);
    void (*wake)(void *context, void *caller);
} cache_wait;

/* From now on c's commands go through a when wait->caller says they can
 * (NULL a: never again). c does not own a; wait is copied. The replies
 * handed back are copies the caller frees with freeReplyObject, as the
 * blocking connection's. */
void cache_use_async(cache *c, cache_async *a, const cache_wait *wait);

#endif
