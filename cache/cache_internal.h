/* cache/cache_internal.h: shared by cache's own files only; the only
 * header besides cache.c that may include hiredis.h. */
#ifndef CACHE_INTERNAL_H
#define CACHE_INTERNAL_H

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <shoal/cache.h>

/* CLOCK_MONOTONIC readings (inline: every command is timed). */
static inline uint64_t cache_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static inline uint64_t cache_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Whether a command may be sent a second time when the connection broke
 * after it went out (so it may have run): only when running it twice does
 * no harm (a read, a SET of the same value). Whatever this says, a command
 * is sent again on a new connection when the old one is found dead before
 * the command reached Redis, and never after a timeout. */
typedef enum cache_resend {
    CACHE_SEND_ONCE = 0,
    CACHE_RESEND_SAFE,
} cache_resend;

/* Sends one command (binary-safe arguments) on the worker's connection,
 * connecting first when needed. CACHE_OK or CACHE_ERROR (Redis refused the
 * command) hand the reply to the caller, who frees it with
 * freeReplyObject; CACHE_UNAVAILABLE leaves it NULL: Redis could not be
 * reached, or answered that it cannot serve now (cache_reply_classify), as
 * it also does for a NULL cache. */
cache_status cache_command_run(cache *c, cache_resend resend, int argc, const char **argv, const size_t *lengths,
                               redisReply **reply);
/* The same, CACHE_SEND_ONCE. */
cache_status cache_command_argv(cache *c, int argc, const char **argv, const size_t *lengths,
                                redisReply **reply);

/* Sends count commands in one round trip and reads every reply, in order,
 * into replies (each freed by the caller). CACHE_ERROR when any reply is an
 * error (the others are still there); CACHE_UNAVAILABLE leaves all NULL.
 * Sent again only when the connection was found dead before sending: the
 * caller decides whether its commands may run twice. */
cache_status cache_pipeline(cache *c, int count, const int *argcs, const char **const *argvs,
                            const size_t *const *lengths, redisReply **replies);

/* What a reply means to its caller: the one place that reads Redis' error
 * codes. Every Redis use goes through it (the worker connection's calls
 * apply it themselves; the subscriber asks it), so that an error reply that
 * says "not now" is an outage wherever it comes, never a failure. */
typedef enum cache_reply_kind {
    CACHE_REPLY_VALUE,    /* not an error */
    CACHE_REPLY_ERROR,    /* the command was refused for what it is: a bug or bad data */
    CACHE_REPLY_NOT_NOW,  /* this server cannot serve now (LOADING, BUSY, OOM, ...): as if unreachable */
    CACHE_REPLY_NOT_HERE, /* this server will not serve this connection (READONLY, MASTERDOWN,
                             maxclients): as if unreachable, and worth a new connection */
    CACHE_REPLY_NOSCRIPT, /* EVALSHA of a script the server does not have */
} cache_reply_kind;
cache_reply_kind cache_reply_classify(const redisReply *reply);

/* Where this cache connects, for modules that open a connection of their
 * own (the invalidation subscriber). */
const cache_endpoint *cache_endpoint_of(const cache *c);
int cache_timeout_ms(const cache *c);
/* Tells the connections to endpoint that it answers again, as their own
 * connects do: those waiting out their reconnect interval try at once. */
void cache_endpoint_reached(const cache_endpoint *endpoint);
/* The endpoint's count of connections that reached it (protocol.c), for a
 * connection waiting out its reconnect interval: when it moved since its
 * attempt failed, the wait has no reason left. NULL when the table is full. */
atomic_ulong *cache_endpoint_reach(const cache_endpoint *endpoint);

/* A connection waiting for its next command has nothing to read unless
 * the server closed it (a restart, CLIENT KILL, its timeout: end of file)
 * or said something unasked (maxclients). Looking just before sending finds
 * a dead connection while sending on a new one is still certainly safe
 * (cache.c, async.c). */
static inline bool cache_idle_socket_open(int fd)
{
    struct pollfd readable = {.fd = fd, .events = POLLIN};
    int ready = poll(&readable, 1, 0);
    return ready == 0 || (ready < 0 && errno == EINTR);
}

#endif
