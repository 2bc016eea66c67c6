/* node/lib/loop.h: a worker thread's event loop on epoll (docs/engine.md).
 * Each HTTP worker (node/lib/http.c) runs one: its libmicrohttpd daemon,
 * its PostgreSQL pipe and its Redis connections are watched here.
 *
 * A loop belongs to the thread that runs it: every call below happens on
 * that thread, except shoal_loop_wake and shoal_loop_stop, which any
 * thread may call. A turn is: wait for events (epoll_wait, bounded by the
 * nearest timer), call the watches' callbacks for that batch, fire the
 * timers that are due, then run the end-of-turn hooks once each (where
 * queued PostgreSQL and Redis commands get flushed in one write). */
#ifndef SHOAL_LOOP_H
#define SHOAL_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct shoal_loop shoal_loop;
typedef struct shoal_loop_watch shoal_loop_watch;

/* Interest in, and readiness of, a watched fd. SHOAL_LOOP_HANGUP is only
 * ever reported (an error or a hang-up, which epoll reports unasked); the
 * callback then finds out which by reading or writing. */
enum {
    SHOAL_LOOP_READ = 1u << 0,
    SHOAL_LOOP_WRITE = 1u << 1,
    SHOAL_LOOP_HANGUP = 1u << 2,
};

typedef void (*shoal_loop_fd_fn)(shoal_loop *loop, int fd, unsigned events, void *arg);
typedef void (*shoal_loop_fn)(shoal_loop *loop, void *arg);

/* A timer lives in its owner's memory (a request's, a connection's), so
 * arming one allocates nothing beyond the loop's heap array. Fields are
 * the loop's: shoal_loop_timer_init, then the calls below. */
typedef struct shoal_loop_timer {
    uint64_t deadline_ns; /* CLOCK_MONOTONIC */
    uint64_t sequence;    /* equal deadlines fire in the order they were set */
    size_t heap_index;    /* SIZE_MAX while not armed */
    shoal_loop_fn fn;
    void *arg;
} shoal_loop_timer;

/* NULL with errno set when epoll or the eventfd cannot be had. */
shoal_loop *shoal_loop_create(void);
/* Frees every watch (the fds stay open: they are their owners') and
 * forgets every timer and hook. Not from inside a callback. NULL is
 * allowed. */
void shoal_loop_destroy(shoal_loop *loop);

/* Watches fd for `interest` (SHOAL_LOOP_READ and/or WRITE; 0 watches
 * hang-ups only), level-triggered: fn(loop, fd, events, arg) runs in every
 * turn while the fd is ready. NULL with errno set on failure (epoll_ctl's,
 * e.g. EEXIST for an fd already watched, or ENOMEM). */
shoal_loop_watch *shoal_loop_watch_add(shoal_loop *loop, int fd, unsigned interest, shoal_loop_fd_fn fn, void *arg);
/* 0, or -1 with errno from epoll_ctl. */
int shoal_loop_watch_modify(shoal_loop_watch *watch, unsigned interest);
/* Stops watching and frees the handle; call it before closing the fd. Safe
 * inside any callback, for any watch, including one whose event is still
 * waiting in the same batch: that event is dropped. Returns -1 with errno
 * when epoll_ctl failed (EBADF: the fd was closed first), the handle is
 * freed either way. */
int shoal_loop_watch_remove(shoal_loop_watch *watch);

void shoal_loop_timer_init(shoal_loop_timer *timer);
/* Arms (or re-arms) the timer to call fn(loop, arg) once, after_ms (at most a year)
 * milliseconds from now; it is disarmed before fn runs, so fn may arm it
 * again or free it. O(log n). -1 with errno ENOMEM when the heap could not
 * grow (the timer stays as it was). */
int shoal_loop_timer_start(shoal_loop *loop, shoal_loop_timer *timer, uint64_t after_ms, shoal_loop_fn fn, void *arg);
/* Disarms it if armed; O(log n). */
void shoal_loop_timer_stop(shoal_loop *loop, shoal_loop_timer *timer);
bool shoal_loop_timer_armed(const shoal_loop_timer *timer);

/* Runs fn(loop, arg) once at the end of every turn, in the order added.
 * -1 with errno ENOMEM. Removing one (the same fn and arg) is safe inside
 * a hook; 0 when removed, -1 when there was none. */
int shoal_loop_hook_add(shoal_loop *loop, shoal_loop_fn fn, void *arg);
int shoal_loop_hook_remove(shoal_loop *loop, shoal_loop_fn fn, void *arg);

/* Runs fn(loop, arg) right before each turn waits for events: after every
 * hook and timer of the turn before, so it sees all that turn did (the
 * worker writes its held access lines there). One per loop; NULL removes. */
void shoal_loop_before_wait(shoal_loop *loop, shoal_loop_fn fn, void *arg);

/* What a wake runs on the loop's thread (the side pool's finished work).
 * Wakes that arrive before the loop gets to them run fn once. */
void shoal_loop_on_wake(shoal_loop *loop, shoal_loop_fn fn, void *arg);
/* From any thread: the loop's next turn runs the wake callback. 0, or -1
 * with errno from write(2). Async-signal-safe. */
int shoal_loop_wake(shoal_loop *loop);

/* One turn, waiting at most max_wait_ms for events (-1: until an event or
 * the nearest timer). 0, or -1 with errno when epoll_wait failed (EINTR
 * is a turn without events). */
int shoal_loop_turn(shoal_loop *loop, int max_wait_ms);
/* Turns until shoal_loop_stop; 0 then (the stop is consumed, run may be
 * called again), -1 with errno when a turn failed. */
int shoal_loop_run(shoal_loop *loop);
/* From any thread, or from a callback: run returns after the current turn. */
void shoal_loop_stop(shoal_loop *loop);

/* How many turns the loop has made, and its clock (CLOCK_MONOTONIC, ns). */
uint64_t shoal_loop_turns(const shoal_loop *loop);
uint64_t shoal_loop_now_ns(void);

#endif
