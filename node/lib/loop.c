/* node/lib/loop.c: a worker thread's event loop on epoll (loop.h). */
#include "loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Events taken per epoll_wait: more wait in the kernel for the next turn. */
#define LOOP_BATCH 64
#define LOOP_TIMER_MAX_MS ((uint64_t)365 * 24 * 3600 * 1000)

struct shoal_loop_watch {
    shoal_loop *loop;
    int fd;
    shoal_loop_fd_fn fn;
    void *arg;
    bool removed;
    /* Live watches (for destroy), or removed ones waiting for the turns
     * whose events may still name them to pass (loop.dead). */
    shoal_loop_watch *prev, *next;
};

typedef struct loop_hook {
    shoal_loop_fn fn;
    void *arg;
} loop_hook;

struct shoal_loop {
    int epoll_fd;
    int wake_fd;
    shoal_loop_watch *wake_watch;
    shoal_loop_fn wake_fn;
    void *wake_arg;
    shoal_loop_fn before_wait_fn;
    void *before_wait_arg;
    atomic_bool stopping;
    /* Set by shoal_loop_wake before it writes the eventfd, which a stop
     * writes too: only a wake runs the wake callback. */
    atomic_bool wake_pending;
    uint64_t turns;
    shoal_loop_watch *live;
    /* Removed watches, freed two turns later rather than at once: epoll
     * keeps a registration as long as its socket's file is open anywhere,
     * and a child between fork and exec holds every socket for a moment,
     * so an event may still come for a watch whose fd was closed and whose
     * removal could not reach epoll (EBADF). Marked, it is skipped. */
    shoal_loop_watch *dead;
    shoal_loop_watch *dead_last_turn;
    /* Min-heap of armed timers by (deadline, sequence). */
    shoal_loop_timer **heap;
    size_t heap_count, heap_capacity;
    uint64_t next_sequence;
    loop_hook *hooks;
    size_t hook_count, hook_capacity;
    bool running_hooks, hooks_removed;
};

uint64_t shoal_loop_now_ns(void)
{
    struct timespec now;
    /* CLOCK_MONOTONIC cannot fail with a valid pointer; 0 would only make
     * timers fire early, never late. */
    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
        return 0;
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static uint32_t epoll_interest(unsigned interest)
{
    uint32_t events = 0;
    if (interest & SHOAL_LOOP_READ)
        events |= EPOLLIN | EPOLLRDHUP;
    if (interest & SHOAL_LOOP_WRITE)
        events |= EPOLLOUT;
    return events;
}

static unsigned loop_events(uint32_t events)
{
    unsigned out = 0;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
        out |= SHOAL_LOOP_READ;
    if (events & EPOLLOUT)
        out |= SHOAL_LOOP_WRITE;
    if (events & (EPOLLERR | EPOLLHUP))
        out |= SHOAL_LOOP_HANGUP;
    return out;
}

static void list_push(shoal_loop_watch **head, shoal_loop_watch *watch)
{
    watch->prev = NULL;
    watch->next = *head;
    if (*head != NULL)
        (*head)->prev = watch;
    *head = watch;
}

static void list_unlink(shoal_loop_watch **head, shoal_loop_watch *watch)
{
    if (watch->prev != NULL)
        watch->prev->next = watch->next;
    else
        *head = watch->next;
    if (watch->next != NULL)
        watch->next->prev = watch->prev;
    watch->prev = watch->next = NULL;
}

static void free_list(shoal_loop_watch *watch)
{
    while (watch != NULL) {
        shoal_loop_watch *next = watch->next;
        free(watch);
        watch = next;
    }
}

static void wake_ready(shoal_loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    uint64_t count;
    /* Resets the counter: wakes that came meanwhile are served by this one
     * call. EAGAIN: a stop's write raced the flag, nothing to read. */
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
        return;
    if (atomic_exchange(&loop->wake_pending, false) && loop->wake_fn != NULL)
        loop->wake_fn(loop, loop->wake_arg);
}

shoal_loop *shoal_loop_create(void)
{
    shoal_loop *loop = calloc(1, sizeof *loop);
    if (loop == NULL)
        return NULL;
    atomic_init(&loop->stopping, false);
    atomic_init(&loop->wake_pending, false);
    loop->wake_fd = -1;
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd < 0)
        goto fail;
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0)
        goto fail;
    loop->wake_watch = shoal_loop_watch_add(loop, loop->wake_fd, SHOAL_LOOP_READ, wake_ready, NULL);
    if (loop->wake_watch == NULL)
        goto fail;
    return loop;
fail:;
    int saved = errno;
    shoal_loop_destroy(loop);
    errno = saved;
    return NULL;
}

void shoal_loop_destroy(shoal_loop *loop)
{
    if (loop == NULL)
        return;
    free_list(loop->live);
    free_list(loop->dead);
    free_list(loop->dead_last_turn);
    for (size_t i = 0; i < loop->heap_count; i++)
        loop->heap[i]->heap_index = SIZE_MAX;
    free(loop->heap);
    free(loop->hooks);
    /* close(2) frees the descriptor even when it reports an error, and
     * these two never had data to lose: nothing to do about one. */
    if (loop->wake_fd >= 0)
        (void)close(loop->wake_fd);
    if (loop->epoll_fd >= 0)
        (void)close(loop->epoll_fd);
    free(loop);
}

/* ---- watches -------------------------------------------------------- */

shoal_loop_watch *shoal_loop_watch_add(shoal_loop *loop, int fd, unsigned interest, shoal_loop_fd_fn fn, void *arg)
{
    shoal_loop_watch *watch = calloc(1, sizeof *watch);
    if (watch == NULL)
        return NULL;
    *watch = (shoal_loop_watch){.loop = loop, .fd = fd, .fn = fn, .arg = arg};
    struct epoll_event event = {.events = epoll_interest(interest), .data.ptr = watch};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        int saved = errno;
        free(watch);
        errno = saved;
        return NULL;
    }
    list_push(&loop->live, watch);
    return watch;
}

int shoal_loop_watch_modify(shoal_loop_watch *watch, unsigned interest)
{
    struct epoll_event event = {.events = epoll_interest(interest), .data.ptr = watch};
    return epoll_ctl(watch->loop->epoll_fd, EPOLL_CTL_MOD, watch->fd, &event) == 0 ? 0 : -1;
}

int shoal_loop_watch_remove(shoal_loop_watch *watch)
{
    shoal_loop *loop = watch->loop;
    int rc = epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL) == 0 ? 0 : -1;
    int saved = errno;
    list_unlink(&loop->live, watch);
    /* The batch being dispatched, or the next one, may still hold this
     * pointer (loop.dead). */
    watch->removed = true;
    list_push(&loop->dead, watch);
    errno = saved;
    return rc;
}

/* ---- timers: a binary min-heap -------------------------------------- */

static bool timer_before(const shoal_loop_timer *a, const shoal_loop_timer *b)
{
    return a->deadline_ns != b->deadline_ns ? a->deadline_ns < b->deadline_ns : a->sequence < b->sequence;
}

static void heap_place(shoal_loop *loop, size_t index, shoal_loop_timer *timer)
{
    loop->heap[index] = timer;
    timer->heap_index = index;
}

static void heap_up(shoal_loop *loop, size_t index)
{
    shoal_loop_timer *timer = loop->heap[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!timer_before(timer, loop->heap[parent]))
            break;
        heap_place(loop, index, loop->heap[parent]);
        index = parent;
    }
    heap_place(loop, index, timer);
}

static void heap_down(shoal_loop *loop, size_t index)
{
    shoal_loop_timer *timer = loop->heap[index];
    for (;;) {
        size_t child = 2 * index + 1;
        if (child >= loop->heap_count)
            break;
        if (child + 1 < loop->heap_count && timer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_before(loop->heap[child], timer))
            break;
        heap_place(loop, index, loop->heap[child]);
        index = child;
    }
    heap_place(loop, index, timer);
}

void shoal_loop_timer_init(shoal_loop_timer *timer)
{
    *timer = (shoal_loop_timer){.heap_index = SIZE_MAX};
}

bool shoal_loop_timer_armed(const shoal_loop_timer *timer)
{
    return timer->heap_index != SIZE_MAX;
}

void shoal_loop_timer_stop(shoal_loop *loop, shoal_loop_timer *timer)
{
    size_t index = timer->heap_index;
    if (index == SIZE_MAX)
        return;
    timer->heap_index = SIZE_MAX;
    shoal_loop_timer *last = loop->heap[--loop->heap_count];
    if (index == loop->heap_count)
        return;
    heap_place(loop, index, last);
    if (index > 0 && timer_before(last, loop->heap[(index - 1) / 2]))
        heap_up(loop, index);
    else
        heap_down(loop, index);
}

int shoal_loop_timer_start(shoal_loop *loop, shoal_loop_timer *timer, uint64_t after_ms, shoal_loop_fn fn, void *arg)
{
    if (!shoal_loop_timer_armed(timer) && loop->heap_count == loop->heap_capacity) {
        size_t capacity = loop->heap_capacity != 0 ? loop->heap_capacity * 2 : 16;
        shoal_loop_timer **grown = realloc(loop->heap, capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        loop->heap = grown;
        loop->heap_capacity = capacity;
    }
    shoal_loop_timer_stop(loop, timer);
    /* Beyond about 584 years the nanoseconds would wrap: a year will do. */
    if (after_ms > LOOP_TIMER_MAX_MS)
        after_ms = LOOP_TIMER_MAX_MS;
    timer->deadline_ns = shoal_loop_now_ns() + after_ms * 1000000u;
    timer->sequence = loop->next_sequence++;
    timer->fn = fn;
    timer->arg = arg;
    loop->heap[loop->heap_count] = timer;
    timer->heap_index = loop->heap_count++;
    heap_up(loop, timer->heap_index);
    return 0;
}

/* epoll_wait's timeout for the nearest timer, rounded up so that the loop
 * never wakes just before a deadline and spins. */
static int wait_ms(const shoal_loop *loop, int max_wait_ms)
{
    if (loop->heap_count == 0)
        return max_wait_ms;
    uint64_t now = shoal_loop_now_ns();
    uint64_t deadline = loop->heap[0]->deadline_ns;
    uint64_t ms = deadline <= now ? 0 : (deadline - now + 999999u) / 1000000u;
    if (ms > (uint64_t)INT32_MAX)
        ms = INT32_MAX;
    return max_wait_ms >= 0 && (uint64_t)max_wait_ms < ms ? max_wait_ms : (int)ms;
}

static void fire_timers(shoal_loop *loop)
{
    uint64_t now = shoal_loop_now_ns();
    /* Timers armed by these callbacks wait for the next turn, even at 0 ms:
     * a timer that re-arms itself must not keep this turn going forever. */
    uint64_t sequence_limit = loop->next_sequence;
    while (loop->heap_count > 0) {
        shoal_loop_timer *timer = loop->heap[0];
        if (timer->deadline_ns > now || timer->sequence >= sequence_limit)
            break;
        shoal_loop_timer_stop(loop, timer);
        timer->fn(loop, timer->arg);
    }
}

/* ---- end-of-turn hooks ---------------------------------------------- */

int shoal_loop_hook_add(shoal_loop *loop, shoal_loop_fn fn, void *arg)
{
    if (loop->hook_count == loop->hook_capacity) {
        size_t capacity = loop->hook_capacity != 0 ? loop->hook_capacity * 2 : 4;
        loop_hook *grown = realloc(loop->hooks, capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        loop->hooks = grown;
        loop->hook_capacity = capacity;
    }
    loop->hooks[loop->hook_count++] = (loop_hook){fn, arg};
    return 0;
}

int shoal_loop_hook_remove(shoal_loop *loop, shoal_loop_fn fn, void *arg)
{
    for (size_t i = 0; i < loop->hook_count; i++) {
        if (loop->hooks[i].fn != fn || loop->hooks[i].arg != arg)
            continue;
        if (loop->running_hooks) {
            /* A tombstone: run_hooks is walking the array by index. */
            loop->hooks[i].fn = NULL;
            loop->hooks_removed = true;
        } else {
            memmove(&loop->hooks[i], &loop->hooks[i + 1], (loop->hook_count - i - 1) * sizeof *loop->hooks);
            loop->hook_count--;
        }
        return 0;
    }
    return -1;
}

static void run_hooks(shoal_loop *loop)
{
    /* By index, re-reading the array: a hook may add hooks (they run this
     * turn too) or remove any (it does not run again). */
    loop->running_hooks = true;
    for (size_t i = 0; i < loop->hook_count; i++) {
        loop_hook hook = loop->hooks[i];
        if (hook.fn != NULL)
            hook.fn(loop, hook.arg);
    }
    loop->running_hooks = false;
    if (loop->hooks_removed) {
        size_t kept = 0;
        for (size_t i = 0; i < loop->hook_count; i++)
            if (loop->hooks[i].fn != NULL)
                loop->hooks[kept++] = loop->hooks[i];
        loop->hook_count = kept;
        loop->hooks_removed = false;
    }
}

/* ---- wake and run ----------------------------------------------------- */

void shoal_loop_before_wait(shoal_loop *loop, shoal_loop_fn fn, void *arg)
{
    loop->before_wait_fn = fn;
    loop->before_wait_arg = arg;
}

void shoal_loop_on_wake(shoal_loop *loop, shoal_loop_fn fn, void *arg)
{
    loop->wake_fn = fn;
    loop->wake_arg = arg;
}

static int signal_wake_fd(shoal_loop *loop)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is at its maximum, so a wake is pending anyway. */
    if (write(loop->wake_fd, &one, sizeof one) == (ssize_t)sizeof one || errno == EAGAIN)
        return 0;
    return -1;
}

int shoal_loop_wake(shoal_loop *loop)
{
    atomic_store(&loop->wake_pending, true);
    return signal_wake_fd(loop);
}

int shoal_loop_turn(shoal_loop *loop, int max_wait_ms)
{
    free_list(loop->dead_last_turn);
    loop->dead_last_turn = loop->dead;
    loop->dead = NULL;
    if (loop->before_wait_fn != NULL)
        loop->before_wait_fn(loop, loop->before_wait_arg);
    struct epoll_event events[LOOP_BATCH];
    int count = epoll_wait(loop->epoll_fd, events, LOOP_BATCH, wait_ms(loop, max_wait_ms));
    if (count < 0) {
        if (errno != EINTR)
            return -1;
        count = 0;
    }
    loop->turns++;
    for (int i = 0; i < count; i++) {
        shoal_loop_watch *watch = events[i].data.ptr;
        if (watch->removed)
            continue;
        watch->fn(loop, watch->fd, loop_events(events[i].events), watch->arg);
    }
    fire_timers(loop);
    run_hooks(loop);
    return 0;
}

int shoal_loop_run(shoal_loop *loop)
{
    int rc = 0;
    while (!atomic_load(&loop->stopping)) {
        if (shoal_loop_turn(loop, -1) != 0) {
            rc = -1;
            break;
        }
    }
    int saved = errno;
    atomic_store(&loop->stopping, false);
    errno = saved;
    return rc;
}

void shoal_loop_stop(shoal_loop *loop)
{
    atomic_store(&loop->stopping, true);
    /* From another thread the loop may be asleep in epoll_wait. A failed
     * write leaves the flag, seen at the end of the current turn. */
    (void)signal_wake_fd(loop);
}

uint64_t shoal_loop_turns(const shoal_loop *loop)
{
    return loop->turns;
}
