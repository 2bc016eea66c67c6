/* node/lib/tier_link.c: see tier_link.h. */
#include "tier_link.h"

#include <stdint.h>
#include <stdlib.h>

#include <shoal/log.h>

/* What a link asks of its connection; one table per kind, over adapters,
 * since the two modules' calls take their own types. */
typedef struct link_kind {
    const char *name; /* for the log */
    int (*fd)(const void *connection);
    bool (*wants_write)(const void *connection);
    unsigned long (*socket_serial)(const void *connection);
    int (*timer_ms)(const void *connection);
    bool (*ready)(const void *connection);
    void (*on_readable)(void *connection);
    void (*on_writable)(void *connection);
    void (*on_timer)(void *connection);
    void (*flush)(void *connection);
    void (*close)(void *connection);
} link_kind;

struct shoal_tier_link {
    const link_kind *kind;
    void *connection;
    shoal_loop *loop;
    shoal_loop_watch *watch;
    int fd;
    unsigned long socket_serial;
    unsigned interest;
    shoal_loop_timer timer;
    /* A pipe's spill lane (store/pipe.h): a socket and a timer of its own,
     * watched by a link that flushes and closes nothing; NULL otherwise. */
    shoal_tier_link *spill;
};

/* ---- the two kinds ------------------------------------------------------------- */

static int pipe_fd(const void *c) { return store_pipe_fd(c); }
static bool pipe_wants_write(const void *c) { return store_pipe_wants_write(c); }
static unsigned long pipe_serial(const void *c) { return store_pipe_socket_serial(c); }
static int pipe_timer_ms(const void *c) { return store_pipe_timer_ms(c); }
static bool pipe_ready(const void *c) { return store_pipe_ready(c); }
static void pipe_on_readable(void *c) { store_pipe_on_readable(c); }
static void pipe_on_writable(void *c) { store_pipe_on_writable(c); }
static void pipe_on_timer(void *c) { store_pipe_on_timer(c); }
static void pipe_flush(void *c) { store_pipe_flush(c); }
static void pipe_close(void *c) { store_pipe_close(c); }

static const link_kind pipe_kind = {
    "PostgreSQL", pipe_fd, pipe_wants_write, pipe_serial, pipe_timer_ms, pipe_ready,
    pipe_on_readable, pipe_on_writable, pipe_on_timer, pipe_flush, pipe_close,
};

/* The spill lane: the pipe's flush sends on both lanes and its close
 * closes both, so this kind's do nothing. */
static int spill_fd(const void *c) { return store_pipe_lane_fd(c, STORE_PIPE_SPILL); }
static bool spill_wants_write(const void *c) { return store_pipe_lane_wants_write(c, STORE_PIPE_SPILL); }
static unsigned long spill_serial(const void *c) { return store_pipe_lane_socket_serial(c, STORE_PIPE_SPILL); }
static int spill_timer_ms(const void *c) { return store_pipe_lane_timer_ms(c, STORE_PIPE_SPILL); }
static bool spill_ready(const void *c) { return store_pipe_ready(c); }
static void spill_on_readable(void *c) { store_pipe_lane_on_readable(c, STORE_PIPE_SPILL); }
static void spill_on_writable(void *c) { store_pipe_lane_on_writable(c, STORE_PIPE_SPILL); }
static void spill_on_timer(void *c) { store_pipe_lane_on_timer(c, STORE_PIPE_SPILL); }
static void spill_nothing(void *c) { (void)c; }

static const link_kind spill_kind = {
    "PostgreSQL spill", spill_fd, spill_wants_write, spill_serial, spill_timer_ms, spill_ready,
    spill_on_readable, spill_on_writable, spill_on_timer, spill_nothing, spill_nothing,
};

static int redis_fd(const void *c) { return cache_async_fd(c); }
static bool redis_wants_write(const void *c) { return cache_async_wants_write(c); }
static unsigned long redis_serial(const void *c) { return cache_async_socket_serial(c); }
static int redis_timer_ms(const void *c) { return cache_async_timer_ms(c); }
static bool redis_ready(const void *c) { return cache_async_ready(c); }
static void redis_on_readable(void *c) { cache_async_on_readable(c); }
static void redis_on_writable(void *c) { cache_async_on_writable(c); }
static void redis_on_timer(void *c) { cache_async_on_timer(c); }
static void redis_flush(void *c) { cache_async_flush(c); }
static void redis_close(void *c) { cache_async_close(c); }

static const link_kind redis_kind = {
    "Redis", redis_fd, redis_wants_write, redis_serial, redis_timer_ms, redis_ready,
    redis_on_readable, redis_on_writable, redis_on_timer, redis_flush, redis_close,
};

/* ---- driving one ------------------------------------------------------------------ */

static void socket_ready(shoal_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    shoal_tier_link *link = arg;
    unsigned long serial = link->kind->socket_serial(link->connection);
    if (events & (SHOAL_LOOP_READ | SHOAL_LOOP_HANGUP))
        link->kind->on_readable(link->connection);
    /* Not on a socket that replaced the one the event was for. */
    if ((events & SHOAL_LOOP_WRITE) && serial == link->kind->socket_serial(link->connection))
        link->kind->on_writable(link->connection);
}

static void timer_due(shoal_loop *loop, void *arg)
{
    (void)loop;
    shoal_tier_link *link = arg;
    link->kind->on_timer(link->connection);
}

/* Removes the watch of a socket that may be gone. A pipe's two lanes do
 * this both before either watches its new socket: epoll removes a watch by
 * the socket's number, which one lane's new socket may have taken from the
 * other's closed one in the same turn. */
static void forget_replaced(shoal_tier_link *link)
{
    const link_kind *kind = link->kind;
    if (link->watch != NULL &&
        (kind->fd(link->connection) != link->fd || kind->socket_serial(link->connection) != link->socket_serial)) {
        shoal_loop_watch_remove(link->watch);
        link->watch = NULL;
    }
}

/* Watches what the connection asks for now. */
static void follow(shoal_tier_link *link)
{
    const link_kind *kind = link->kind;
    int fd = kind->fd(link->connection);
    unsigned long serial = kind->socket_serial(link->connection);
    unsigned interest = SHOAL_LOOP_READ | (kind->wants_write(link->connection) ? SHOAL_LOOP_WRITE : 0);
    if (fd != link->fd || serial != link->socket_serial) {
        /* Removing a closed socket's watch fails (epoll forgot it when it
         * closed) and frees the watch all the same. */
        if (link->watch != NULL)
            shoal_loop_watch_remove(link->watch);
        link->watch = fd >= 0 ? shoal_loop_watch_add(link->loop, fd, interest, socket_ready, link) : NULL;
        if (fd >= 0 && link->watch == NULL)
            shoal_log(SHOAL_LOG_ERROR, "engine", "cannot watch a %s connection", kind->name);
        link->fd = fd;
        link->socket_serial = serial;
        link->interest = interest;
    } else if (link->watch != NULL && interest != link->interest) {
        if (shoal_loop_watch_modify(link->watch, interest) == 0)
            link->interest = interest;
    }
    int after_ms = kind->timer_ms(link->connection);
    if (after_ms < 0)
        shoal_loop_timer_stop(link->loop, &link->timer);
    else if (shoal_loop_timer_start(link->loop, &link->timer, (uint64_t)after_ms, timer_due, link) != 0)
        shoal_log(SHOAL_LOG_ERROR, "engine", "cannot arm a %s connection's timer", kind->name);
}

static shoal_tier_link *link_new(shoal_loop *loop, const link_kind *kind, void *connection)
{
    shoal_tier_link *link = calloc(1, sizeof *link);
    if (link == NULL) {
        kind->close(connection);
        return NULL;
    }
    link->kind = kind;
    link->connection = connection;
    link->loop = loop;
    link->fd = -1;
    shoal_loop_timer_init(&link->timer);
    follow(link);
    return link;
}

shoal_tier_link *shoal_tier_link_pipe(shoal_loop *loop, store_pipe *pipe)
{
    shoal_tier_link *spill = calloc(1, sizeof *spill);
    if (spill == NULL) {
        store_pipe_close(pipe);
        return NULL;
    }
    shoal_tier_link *link = link_new(loop, &pipe_kind, pipe);
    if (link == NULL) {
        free(spill);
        return NULL;
    }
    *spill = (shoal_tier_link){.kind = &spill_kind, .connection = pipe, .loop = loop, .fd = -1};
    shoal_loop_timer_init(&spill->timer);
    follow(spill);
    link->spill = spill;
    return link;
}

shoal_tier_link *shoal_tier_link_redis(shoal_loop *loop, cache_async *redis)
{
    return link_new(loop, &redis_kind, redis);
}

void shoal_tier_link_end_turn(shoal_tier_link *link)
{
    link->kind->flush(link->connection);
    if (link->spill != NULL) {
        forget_replaced(link);
        forget_replaced(link->spill);
        follow(link->spill);
    }
    follow(link);
}

bool shoal_tier_link_settled(const shoal_tier_link *link)
{
    return link->kind->ready(link->connection) || link->kind->fd(link->connection) < 0;
}

void shoal_tier_link_close(shoal_tier_link *link)
{
    if (link == NULL)
        return;
    shoal_tier_link_close(link->spill); /* its kind closes nothing */
    if (link->watch != NULL)
        shoal_loop_watch_remove(link->watch);
    shoal_loop_timer_stop(link->loop, &link->timer);
    link->kind->close(link->connection);
    free(link);
}
