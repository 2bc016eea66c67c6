/* node/lib/tier_link.h: a worker loop's non-blocking connection to a tier
 * (private to libshoal): the PostgreSQL pipe (store/pipe.h) or a Redis
 * connection (cache/async.h), driven by node/lib/loop.c.
 *
 * Both connections own no loop and ask the same of theirs: watch a socket
 * that changes with every connection (and may come back under the number of
 * the last one, which epoll forgot when it closed), for writing while they
 * have more to send; call them when it is readable or writable and when
 * their timer is due; flush what requests queued once at the end of each
 * turn. A link does that for one connection, which it owns from creation
 * to shoal_tier_link_close (a pipe's link watches its spill lane's socket
 * and timer too). Everything is called on the loop's thread. */
#ifndef SHOAL_TIER_LINK_H
#define SHOAL_TIER_LINK_H

#include <stdbool.h>

#include "async.h"
#include "loop.h"
#include "pipe.h"

typedef struct shoal_tier_link shoal_tier_link;

/* A link for the connection, watched from now on; NULL when memory runs
 * out (the connection is closed then, answering what it holds). */
shoal_tier_link *shoal_tier_link_pipe(shoal_loop *loop, store_pipe *pipe);
shoal_tier_link *shoal_tier_link_redis(shoal_loop *loop, cache_async *redis);

/* The end of a turn: sends what requests queued this turn, then watches
 * what the connection asks for now. */
void shoal_tier_link_end_turn(shoal_tier_link *link);

/* Connected, or its attempt failed: not in the middle of connecting. */
bool shoal_tier_link_settled(const shoal_tier_link *link);

/* Stops watching and closes the connection, which answers every request
 * still waiting on it (unavailable: the outcome of what was sent is
 * unknown) through their callbacks, on this thread, before this returns.
 * NULL is allowed. */
void shoal_tier_link_close(shoal_tier_link *link);

#endif
