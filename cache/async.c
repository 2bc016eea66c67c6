/* cache/async.c: one pipelined Redis connection on a caller's loop
 * (cache/async.h says how it is driven). */
#include "async.h"

#include <fcntl.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One command, from its queueing until its callback and, when it was sent,
 * until hiredis hands its reply (or NULL, when the connection goes). */
typedef struct command {
    struct command *next;
    char *formatted; /* the RESP text until it is handed to hiredis */
    size_t length;
    cache_async_callback callback;
    void *cookie;
    uint64_t deadline_ms;
    uint64_t sent_ms;
    bool answered; /* its callback came (at its deadline): its reply is dropped */
} command;

typedef struct command_list {
    command *head;
    command *tail;
} command_list;

struct cache_async {
    cache_endpoint endpoint;
    int timeout_ms;
    redisAsyncContext *context;
    bool context_gone;   /* hiredis freed it inside one of its calls */
    bool wants_write;    /* hiredis asked our adapter to write */
    bool ready;          /* the handshake was answered */
    bool wrong_server;   /* NOT_HERE: the loss counts as a failed attempt */
    bool in_hiredis;     /* inside a hiredis call: flushes wait for its end */
    bool flush_deferred;
    bool closing;
    int handshake_waiting; /* handshake replies still to come */
    bool handshake_failed;
    uint64_t attempt_started_ms;
    uint64_t last_failure_ms;
    bool last_attempt_failed;
    /* The endpoint's reach count (protocol.c) when the last attempt failed:
     * when another connection reached the server since, the interval is
     * over. */
    atomic_ulong *reach;
    unsigned long reach_at_failure;
    uint64_t last_reply_ms;
    /* Commands not yet handed to hiredis, and those handed to it, in the
     * order hiredis answers them; both in queueing order, every sent one
     * older than every queued one, so deadlines come in list order. */
    command_list queued;
    command_list sent;
    /* The first sent command still waiting for its callback: those
     * before it were answered at their deadline (replies and deadlines
     * both answer in order, so the answered ones are a prefix). */
    command *first_unanswered;
    cache_async_stats stats;
};

static void list_push(command_list *list, command *c)
{
    c->next = NULL;
    if (list->tail != NULL)
        list->tail->next = c;
    else
        list->head = c;
    list->tail = c;
}

static command *list_pop(command_list *list)
{
    command *c = list->head;
    if (c != NULL) {
        list->head = c->next;
        if (list->head == NULL)
            list->tail = NULL;
        c->next = NULL;
    }
    return c;
}

static void command_free(command *c)
{
    if (c->formatted != NULL)
        redisFreeCommand(c->formatted);
    free(c);
}

/* ---- the adapter: hiredis' event hooks -------------------------------------------- */

/* Reading is always watched while there is a socket; writing only when
 * hiredis has something it could not write yet, or a connect to finish. */
static void hook_add_read(void *data)
{
    (void)data;
}

static void hook_del_read(void *data)
{
    (void)data;
}

static void hook_add_write(void *data)
{
    ((cache_async *)data)->wants_write = true;
}

static void hook_del_write(void *data)
{
    ((cache_async *)data)->wants_write = false;
}

static void hook_cleanup(void *data)
{
    ((cache_async *)data)->wants_write = false;
}

/* ---- answering ------------------------------------------------------------------- */

static void answer_unavailable(command *c)
{
    c->answered = true;
    c->callback(c->cookie, CACHE_UNAVAILABLE, NULL);
}

/* Every queued command, as after a failed attempt: none of them was sent. */
static void fail_queued(cache_async *a)
{
    command *c;
    while ((c = list_pop(&a->queued)) != NULL) {
        answer_unavailable(c);
        command_free(c);
    }
}

/* hiredis' callback for a sent command: its reply, or NULL when the
 * connection went before it came (outcome unknown). */
static void on_reply(redisAsyncContext *context, void *reply_object, void *privdata)
{
    cache_async *a = context->data;
    command *c = privdata;
    /* hiredis answers in the order sent: always our head. */
    command *head = list_pop(&a->sent);
    if (head != c)
        abort();
    if (a->first_unanswered == c)
        a->first_unanswered = a->sent.head;
    redisReply *reply = reply_object;
    if (reply != NULL)
        a->last_reply_ms = cache_monotonic_ms();
    if (c->answered) {
        if (reply != NULL)
            a->stats.late_replies++;
        command_free(c);
        return;
    }
    c->answered = true;
    if (reply == NULL) {
        a->stats.lost++;
        c->callback(c->cookie, CACHE_UNAVAILABLE, NULL);
        command_free(c);
        return;
    }
    switch (cache_reply_classify(reply)) {
    case CACHE_REPLY_VALUE:
        c->callback(c->cookie, CACHE_OK, reply);
        break;
    case CACHE_REPLY_NOSCRIPT:
    case CACHE_REPLY_ERROR:
        c->callback(c->cookie, CACHE_ERROR, reply);
        break;
    case CACHE_REPLY_NOT_HERE:
        /* A replica, or a full server: a new connection may reach the
         * primary; this one never will. Freed once this callback returns,
         * the commands after it lost (they met the same server). */
        if (!a->wrong_server) {
            a->wrong_server = true;
            redisAsyncFree(context);
        }
        c->callback(c->cookie, CACHE_UNAVAILABLE, NULL);
        break;
    case CACHE_REPLY_NOT_NOW:
        c->callback(c->cookie, CACHE_UNAVAILABLE, NULL);
        break;
    }
    command_free(c);
}

/* ---- the connection ----------------------------------------------------------------- */

static void on_handshake_reply(redisAsyncContext *context, void *reply_object, void *privdata)
{
    (void)privdata;
    cache_async *a = context->data;
    if (reply_object == NULL)
        return; /* the connection went: on_disconnect or on_connect says so */
    a->last_reply_ms = cache_monotonic_ms();
    if (cache_reply_classify(reply_object) != CACHE_REPLY_VALUE && !a->handshake_failed) {
        a->handshake_failed = true; /* a wrong password, LOADING, a replica: a failed attempt */
        redisAsyncFree(context);
        return;
    }
    if (--a->handshake_waiting == 0 && !a->handshake_failed) {
        a->ready = true;
        if (a->stats.connects > 1)
            a->stats.reconnects++;
        a->last_attempt_failed = false;
        if (a->reach != NULL)
            atomic_fetch_add(a->reach, 1);
    }
}

static void on_connect(const redisAsyncContext *context, int status)
{
    cache_async *a = context->data;
    if (status != REDIS_OK)
        a->context_gone = true; /* hiredis frees it when this returns */
}

static void on_disconnect(const redisAsyncContext *context, int status)
{
    (void)status;
    cache_async *a = context->data;
    a->context_gone = true;
}

static bool handshake_send(cache_async *a, int argc, const char **argv)
{
    size_t lengths[3];
    for (int i = 0; i < argc; i++)
        lengths[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(a->context, on_handshake_reply, NULL, argc, argv, lengths) != REDIS_OK)
        return false;
    a->handshake_waiting++;
    return true;
}

/* Starts an attempt, without blocking: the socket connects, then the
 * handshake goes out with the first write, and is answered before any
 * command is sent. False when it failed at once. */
static bool start_connecting(cache_async *a)
{
    a->stats.connects++;
    a->attempt_started_ms = cache_monotonic_ms();
    a->ready = false;
    a->wrong_server = false;
    a->handshake_failed = false;
    a->handshake_waiting = 0;
    a->context_gone = false;
    a->wants_write = false;
    redisAsyncContext *context = redisAsyncConnect(a->endpoint.host, a->endpoint.port);
    if (context == NULL)
        return false;
    if (context->err != 0) {
        redisAsyncFree(context);
        return false;
    }
    /* hiredis 0.14 does not: a child process (a test's system()) must not
     * keep the socket, and with it its registration in our loop's epoll,
     * alive after we close it. */
    if (fcntl(context->c.fd, F_SETFD, FD_CLOEXEC) != 0) {
        redisAsyncFree(context);
        return false;
    }
    context->data = a;
    context->ev.data = a;
    context->ev.addRead = hook_add_read;
    context->ev.delRead = hook_del_read;
    context->ev.addWrite = hook_add_write;
    context->ev.delWrite = hook_del_write;
    context->ev.cleanup = hook_cleanup;
    a->context = context;
    /* Setting the connect callback asks for a write event: the socket's
     * first writability says the connect is done. */
    bool ok = redisAsyncSetConnectCallback(context, on_connect) == REDIS_OK &&
              redisAsyncSetDisconnectCallback(context, on_disconnect) == REDIS_OK;
    if (ok && a->endpoint.password[0] != '\0') {
        const char *auth_user[] = {"AUTH", a->endpoint.username, a->endpoint.password};
        const char *auth[] = {"AUTH", a->endpoint.password};
        ok = a->endpoint.username[0] != '\0' ? handshake_send(a, 3, auth_user) : handshake_send(a, 2, auth);
    }
    if (ok && a->endpoint.database != 0) {
        char database[16];
        snprintf(database, sizeof database, "%d", a->endpoint.database);
        const char *select[] = {"SELECT", database};
        ok = handshake_send(a, 2, select);
    }
    /* PING too: a server that accepts and never answers (hung, or not
     * Redis) fails the attempt at its timeout, before any command is
     * sent to it. */
    const char *ping[] = {"PING"};
    if (ok)
        ok = handshake_send(a, 1, ping);
    if (!ok) {
        a->context = NULL;
        redisAsyncFree(context);
        return false;
    }
    return true;
}

/* A failed attempt: the queued commands were never sent, and the next
 * attempt waits for the interval. */
static void attempt_failed(cache_async *a)
{
    a->last_attempt_failed = true;
    a->last_failure_ms = cache_monotonic_ms();
    a->reach_at_failure = a->reach != NULL ? atomic_load(a->reach) : 0;
    fail_queued(a);
}

/* Drops the connection now (outside any hiredis callback): the sent
 * commands not answered get CACHE_UNAVAILABLE through on_reply. */
static void drop_connection(cache_async *a)
{
    if (a->context == NULL)
        return;
    redisAsyncContext *context = a->context;
    a->in_hiredis = true;
    redisAsyncFree(context);
    a->in_hiredis = false;
    a->context = NULL;
    a->context_gone = false;
    a->wants_write = false;
}

static void flush_now(cache_async *a);

/* Lets hiredis write its output buffer: one write() when there is
 * something in it and the socket is connected (or connects now), counted
 * as it happens. */
static void write_out(cache_async *a)
{
    redisAsyncContext *context = a->context;
    bool pending = sdslen(context->c.obuf) > 0;
    bool was_connected = (context->c.flags & REDIS_CONNECTED) != 0;
    a->in_hiredis = true;
    redisAsyncHandleWrite(context);
    a->in_hiredis = false;
    /* Freed inside (context_gone): a write, or a connect, that failed. */
    bool connected = was_connected || (!a->context_gone && (context->c.flags & REDIS_CONNECTED) != 0);
    if (pending && connected)
        a->stats.writes++;
}

/* After every call into hiredis: a connection it freed is forgotten, and
 * what follows its loss happens here, where hiredis is no longer on the
 * stack: a failed attempt fails the queue, a lost connection is replaced
 * at once (the queue goes out on the new one). */
static void settle(cache_async *a)
{
    if (a->context_gone) {
        a->context = NULL;
        a->context_gone = false;
        a->wants_write = false;
        bool failed = !a->ready || a->wrong_server;
        a->ready = false;
        if (a->closing)
            return;
        if (failed)
            attempt_failed(a);
        else if (!start_connecting(a))
            attempt_failed(a);
    }
    if (a->flush_deferred && !a->closing) {
        a->flush_deferred = false;
        flush_now(a);
    }
}

/* The reconnect interval after a failed attempt. */
static bool waiting_out_interval(const cache_async *a, uint64_t now)
{
    return a->last_attempt_failed && now - a->last_failure_ms < CACHE_RECONNECT_INTERVAL_MS &&
           (a->reach == NULL || atomic_load(a->reach) == a->reach_at_failure);
}

/* ---- the public calls ------------------------------------------------------------------- */

cache_async *cache_async_open(const cache_config *config, char *error, size_t error_size)
{
    cache_async *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    if (cache_url_parse(config->url, &a->endpoint, error, error_size) != 0) {
        free(a);
        return NULL;
    }
    a->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : 1000;
    a->reach = cache_endpoint_reach(&a->endpoint);
    if (!start_connecting(a))
        attempt_failed(a);
    return a;
}

void cache_async_close(cache_async *a)
{
    if (a == NULL)
        return;
    a->closing = true;
    fail_queued(a);
    drop_connection(a);
    command *c;
    while ((c = list_pop(&a->sent)) != NULL) /* none left: hiredis answered every one */
        command_free(c);
    free(a);
}

int cache_async_fd(const cache_async *a)
{
    return a->context != NULL ? a->context->c.fd : -1;
}

bool cache_async_wants_write(const cache_async *a)
{
    return a->context != NULL && a->wants_write;
}

bool cache_async_ready(const cache_async *a)
{
    return a->context != NULL && a->ready;
}

void cache_async_on_readable(cache_async *a)
{
    if (a->context == NULL)
        return;
    a->in_hiredis = true;
    redisAsyncHandleRead(a->context);
    a->in_hiredis = false;
    settle(a);
}

void cache_async_on_writable(cache_async *a)
{
    if (a->context == NULL)
        return;
    write_out(a);
    settle(a);
}

cache_status cache_async_command(cache_async *a, int argc, const char **argv, const size_t *lengths,
                                 cache_async_callback callback, void *cookie)
{
    if (a->closing)
        return CACHE_UNAVAILABLE;
    uint64_t now = cache_monotonic_ms();
    if (a->context == NULL) {
        if (waiting_out_interval(a, now))
            return CACHE_UNAVAILABLE;
        if (!start_connecting(a)) {
            attempt_failed(a);
            return CACHE_UNAVAILABLE;
        }
    }
    command *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CACHE_ERROR;
    int length = redisFormatCommandArgv(&c->formatted, argc, argv, lengths);
    if (length < 0) {
        free(c);
        return CACHE_ERROR;
    }
    c->length = (size_t)length;
    c->callback = callback;
    c->cookie = cookie;
    c->deadline_ms = now + (uint64_t)a->timeout_ms;
    list_push(&a->queued, c);
    return CACHE_OK;
}

/* Hands every queued command to hiredis, which only appends it to its
 * output buffer and asks our adapter for a write, then writes that buffer
 * with one write(). */
static void flush_now(cache_async *a)
{
    if (a->context == NULL || !a->ready || a->queued.head == NULL)
        return;
    /* With nothing out, the server may have closed the connection since
     * the turn's poll looked: look again before sending on it. */
    if (a->sent.head == NULL && !cache_idle_socket_open(a->context->c.fd)) {
        /* Read what it said (its end, or maxclients) now, while the
         * commands are certainly unsent: they go out on the next
         * connection instead of being lost with this one. */
        cache_async_on_readable(a);
        if (a->context == NULL || !a->ready)
            return;
    }
    uint64_t now = cache_monotonic_ms();
    command *c;
    while ((c = a->queued.head) != NULL) {
        if (redisAsyncFormattedCommand(a->context, on_reply, c, c->formatted, c->length) != REDIS_OK)
            break; /* the context is going: the rest stay queued */
        list_pop(&a->queued);
        redisFreeCommand(c->formatted);
        c->formatted = NULL;
        c->sent_ms = now;
        list_push(&a->sent, c);
        if (a->first_unanswered == NULL)
            a->first_unanswered = c;
        a->stats.sent++;
    }
    a->stats.flushes++;
    write_out(a);
    settle(a);
}

void cache_async_flush(cache_async *a)
{
    if (a->in_hiredis) {
        a->flush_deferred = true; /* from a callback: after hiredis returns */
        return;
    }
    flush_now(a);
}

/* The earliest of the deadlines the timer watches. */
static bool next_deadline(const cache_async *a, uint64_t *at)
{
    bool any = false;
    uint64_t earliest = UINT64_MAX;
    if (a->context != NULL && !a->ready) {
        earliest = a->attempt_started_ms + (uint64_t)a->timeout_ms;
        any = true;
    }
    const command *first = a->first_unanswered != NULL ? a->first_unanswered : a->queued.head;
    if (first != NULL && first->deadline_ms < earliest) {
        earliest = first->deadline_ms;
        any = true;
    }
    if (a->sent.head != NULL) {
        uint64_t since = a->sent.head->sent_ms > a->last_reply_ms ? a->sent.head->sent_ms : a->last_reply_ms;
        uint64_t hung_at = since + 2 * (uint64_t)a->timeout_ms;
        if (hung_at < earliest)
            earliest = hung_at;
        any = true;
    }
    *at = earliest;
    return any;
}

int cache_async_timer_ms(const cache_async *a)
{
    uint64_t at = 0;
    if (!next_deadline(a, &at))
        return -1;
    uint64_t now = cache_monotonic_ms();
    return at <= now ? 0 : (int)(at - now);
}

/* What the server sent before the loop came to its timers is an answer, not
 * a timeout: a loop late to them (a long turn; under valgrind, a thread that
 * waited for its turn to run) reads first, then expires what is still
 * unanswered. A readable socket is a connected one (or a failed one, which
 * reading reports), so this never reads a connect still under way. */
static void read_what_came(cache_async *a)
{
    if (a->context == NULL)
        return;
    struct pollfd readable = {.fd = a->context->c.fd, .events = POLLIN};
    if (poll(&readable, 1, 0) == 1)
        cache_async_on_readable(a);
}

void cache_async_on_timer(cache_async *a)
{
    read_what_came(a);
    uint64_t now = cache_monotonic_ms();
    if (a->context != NULL && !a->ready && now >= a->attempt_started_ms + (uint64_t)a->timeout_ms) {
        /* Connect timeout: nothing of the queue went out on it. */
        drop_connection(a);
        attempt_failed(a);
    }
    /* The sent commands past their deadline: answered now, their replies
     * dropped when they come. */
    while (a->first_unanswered != NULL && a->first_unanswered->deadline_ms <= now) {
        command *c = a->first_unanswered;
        a->first_unanswered = c->next;
        a->stats.timeouts++;
        answer_unavailable(c);
    }
    /* Queued ones past theirs will never be sent. */
    while (a->first_unanswered == NULL && a->queued.head != NULL && a->queued.head->deadline_ms <= now) {
        command *c = list_pop(&a->queued);
        a->stats.timeouts++;
        answer_unavailable(c);
        command_free(c);
    }
    /* Nothing answered for twice the timeout with commands out: a hung
     * server, or a network that drops everything. A new connection's
     * handshake finds out which, at its own timeout. */
    if (a->context != NULL && a->sent.head != NULL) {
        uint64_t since = a->sent.head->sent_ms > a->last_reply_ms ? a->sent.head->sent_ms : a->last_reply_ms;
        if (now >= since + 2 * (uint64_t)a->timeout_ms) {
            drop_connection(a);
            if (!start_connecting(a))
                attempt_failed(a);
        }
    }
}

size_t cache_async_waiting(const cache_async *a)
{
    size_t count = 0;
    for (const command *c = a->sent.head; c != NULL; c = c->next)
        count++;
    for (const command *c = a->queued.head; c != NULL; c = c->next)
        count++;
    return count;
}

void cache_async_stats_read(const cache_async *a, cache_async_stats *out)
{
    *out = a->stats;
}

unsigned long cache_async_socket_serial(const cache_async *a)
{
    return a->stats.connects;
}
