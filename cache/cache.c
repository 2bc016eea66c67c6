/* cache/cache.c: a worker's Redis connection. */
#include <shoal/cache.h>

#include "async.h"
#include "cache_internal.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cache {
    redisContext *connection;
    cache_endpoint endpoint;
    int timeout_ms;
    uint64_t last_attempt_ms;
    bool last_attempt_failed;
    /* The endpoint's count of connections made, as it was when our last
     * attempt started; NULL reach when the table was full (see reach_of). */
    atomic_ulong *reach;
    unsigned long reach_at_attempt;
    bool served; /* this connection got an answer that was not "not now" */
    bool ever_attempted; /* a connection made after this is a reconnect */
    /* Relaxed atomics: only this connection's thread writes them, and
     * /metrics reads them from another. */
    atomic_ulong reconnects;
    atomic_ulong calls;
    atomic_ulong errors;
    atomic_ullong duration_ns;
    char key_prefix[CACHE_KEY_PREFIX_MAX + 1];
    char session_prefix[CACHE_KEY_PREFIX_MAX + 1];
    /* cache_use_async: where commands go when the caller can be parked. */
    cache_async *async;
    cache_wait wait;
    /* The async connection's reconnects as last seen on this thread, for
     * /metrics (cache_async's own count is not for other threads). */
    atomic_ulong async_reconnects;
};


/* ---- key prefixes -------------------------------------------------------------- */

int cache_key_prefix_check(const char *prefix, char *error, size_t error_size)
{
    if (prefix == NULL)
        return 0;
    size_t length = strlen(prefix);
    if (length > CACHE_KEY_PREFIX_MAX) {
        snprintf(error, error_size, "'%s' is longer than %d bytes", prefix, CACHE_KEY_PREFIX_MAX);
        return -1;
    }
    /* No space, quote or glob character: keys stay one word in redis-cli,
     * and a SCAN pattern of the prefix matches only its own keys. */
    size_t valid = strspn(prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-");
    if (valid != length) {
        snprintf(error, error_size, "'%s' has a character other than A-Z a-z 0-9 _ . : - (at byte %zu)", prefix,
                 valid);
        return -1;
    }
    return 0;
}

const char *cache_key_prefix(const cache *c)
{
    return c != NULL ? c->key_prefix : "";
}

const char *cache_session_prefix(const cache *c)
{
    return c != NULL ? c->session_prefix : "";
}

/* ---- the connection ---------------------------------------------------------- */

cache *cache_open(const cache_config *config, char *error, size_t error_size)
{
    char reason[160];
    const char *key_prefix = config->key_prefix != NULL ? config->key_prefix : "";
    const char *session_prefix = config->session_prefix != NULL ? config->session_prefix : key_prefix;
    if (cache_key_prefix_check(key_prefix, reason, sizeof reason) != 0 ||
        cache_key_prefix_check(session_prefix, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "key prefix %s", reason);
        return NULL;
    }
    cache *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    if (cache_url_parse(config->url, &c->endpoint, error, error_size) != 0) {
        free(c);
        return NULL;
    }
    strcpy(c->key_prefix, key_prefix);
    strcpy(c->session_prefix, session_prefix);
    c->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : 1000;
    c->reach = cache_endpoint_reach(&c->endpoint);
    return c;
}

static void drop_connection(cache *c)
{
    if (c->connection != NULL)
        redisFree(c->connection);
    c->connection = NULL;
}

void cache_close(cache *c)
{
    if (c == NULL)
        return;
    drop_connection(c);
    free(c);
}

bool cache_connected(const cache *c)
{
    return c->connection != NULL && c->connection->err == 0;
}

unsigned long cache_reconnect_count(const cache *c)
{
    return atomic_load_explicit(&c->reconnects, memory_order_relaxed);
}

/* Runs a command of the handshake; a NULL reply means the connection is
 * broken. */
static redisReply *command(cache *c, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *reply = redisvCommand(c->connection, format, args);
    va_end(args);
    return reply;
}

static bool handshake(cache *c)
{
    redisReply *reply = NULL;
    if (c->endpoint.password[0] != '\0') {
        reply = c->endpoint.username[0] != '\0'
                    ? command(c, "AUTH %s %s", c->endpoint.username, c->endpoint.password)
                    : command(c, "AUTH %s", c->endpoint.password);
        bool ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
        freeReplyObject(reply);
        if (!ok)
            return false;
    }
    if (c->endpoint.database != 0) {
        reply = command(c, "SELECT %d", c->endpoint.database);
        bool ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
        freeReplyObject(reply);
        if (!ok)
            return false;
    }
    return true;
}

/* Connects when there is no good connection, unless the last attempt failed
 * less than CACHE_RECONNECT_INTERVAL_MS ago and nobody has reached the
 * server since (forced attempts ignore the interval: a connection found
 * dead before a command was sent deserves one at once). */
static bool ensure_connected(cache *c, bool forced)
{
    if (cache_connected(c))
        return true;
    uint64_t now = cache_monotonic_ms();
    unsigned long reached = c->reach != NULL ? atomic_load(c->reach) : 0;
    bool waiting = c->last_attempt_failed && now - c->last_attempt_ms < CACHE_RECONNECT_INTERVAL_MS &&
                   reached == c->reach_at_attempt;
    if (!forced && waiting)
        return false;
    c->last_attempt_ms = now;
    c->reach_at_attempt = reached;
    c->last_attempt_failed = true;
    bool again = c->ever_attempted;
    c->ever_attempted = true;
    drop_connection(c);
    struct timeval timeout = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
    c->connection = redisConnectWithTimeout(c->endpoint.host, c->endpoint.port, timeout);
    if (c->connection == NULL || c->connection->err != 0 ||
        redisSetTimeout(c->connection, timeout) != REDIS_OK || !handshake(c)) {
        drop_connection(c);
        return false;
    }
    c->last_attempt_failed = false;
    c->served = false;
    /* A connection made after a loss or after a failed attempt: what an
     * operator counts after an outage, whether or not this worker had
     * been connected before it. */
    if (again)
        atomic_fetch_add_explicit(&c->reconnects, 1, memory_order_relaxed);
    return true;
}

/* Drops a connection that died while idle; true when it did. */
static bool dropped_dead_connection(cache *c)
{
    if (c->connection == NULL || cache_idle_socket_open(c->connection->fd))
        return false;
    drop_connection(c);
    return true;
}

/* How one try of a command went. */
typedef enum try_outcome {
    TRY_ANSWERED,  /* a reply came */
    TRY_NOT_SENT,  /* the command never reached the server whole: it did not run */
    TRY_LOST,      /* the connection broke after the command went out: it may have run */
    TRY_TIMED_OUT, /* no reply within the timeout: it may have run, or be running */
} try_outcome;

static bool timed_out(const redisContext *context, int error)
{
#ifdef REDIS_ERR_TIMEOUT
    if (context->err == REDIS_ERR_TIMEOUT)
        return true;
#endif
    return context->err == REDIS_ERR_IO && (error == EAGAIN || error == EWOULDBLOCK || error == ETIMEDOUT);
}

/* Writes the commands queued with redisAppendCommandArgv, then reads count
 * replies into replies (NULL until read). */
static try_outcome send_and_receive(cache *c, int count, redisReply **replies)
{
    redisContext *context = c->connection;
    int done = 0;
    while (!done)
        if (redisBufferWrite(context, &done) != REDIS_OK)
            return TRY_NOT_SENT; /* Redis runs a command only once all of it came */
    for (int i = 0; i < count; i++) {
        void *answer = NULL;
        if (redisGetReply(context, &answer) != REDIS_OK || answer == NULL) {
            int error = errno;
            return timed_out(context, error) ? TRY_TIMED_OUT : TRY_LOST;
        }
        replies[i] = answer;
    }
    return TRY_ANSWERED;
}

static void free_replies(int count, redisReply **replies)
{
    for (int i = 0; i < count; i++) {
        freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

/* CACHE_OK, CACHE_ERROR (an error reply among them, kept for the caller), or
 * CACHE_UNAVAILABLE when any reply says the server cannot serve now: the
 * replies are freed then, and the connection dropped when it is the wrong
 * server. */
static cache_status judge(cache *c, int count, redisReply **replies)
{
    cache_status status = CACHE_OK;
    bool wrong_server = false;
    for (int i = 0; i < count; i++) {
        switch (cache_reply_classify(replies[i])) {
        case CACHE_REPLY_VALUE:
            break;
        case CACHE_REPLY_NOT_HERE:
            wrong_server = true;
            /* fall through */
        case CACHE_REPLY_NOT_NOW:
            status = CACHE_UNAVAILABLE;
            break;
        case CACHE_REPLY_NOSCRIPT:
        case CACHE_REPLY_ERROR:
            if (status == CACHE_OK)
                status = CACHE_ERROR;
            break;
        }
    }
    if (wrong_server) {
        /* Counts as a failed attempt: the wait applies before the next. */
        drop_connection(c);
        c->last_attempt_failed = true;
    } else if (status != CACHE_UNAVAILABLE && !c->served) {
        c->served = true;
        /* Our own count is no news to us: only others' end our wait. */
        if (c->reach != NULL)
            c->reach_at_attempt = atomic_fetch_add(c->reach, 1) + 1;
    }
    if (status == CACHE_UNAVAILABLE)
        free_replies(count, replies);
    return status;
}

/* ---- on the async connection (cache_use_async) ------------------------------ */

void cache_use_async(cache *c, cache_async *a, const cache_wait *wait)
{
    c->async = a;
    if (a != NULL && wait != NULL)
        c->wait = *wait;
    else
        c->wait = (cache_wait){0};
}

/* hiredis frees an async reply when its callback returns; the callers of
 * run() own theirs (freeReplyObject, which frees what this allocates the
 * way hiredis 0.14's reader does: malloc'd strings, calloc'd arrays). */
static redisReply *copy_reply(const redisReply *reply)
{
    redisReply *copy = calloc(1, sizeof *copy);
    if (copy == NULL)
        return NULL;
    copy->type = reply->type;
    copy->integer = reply->integer;
    if (reply->str != NULL) {
        copy->str = malloc(reply->len + 1);
        if (copy->str == NULL) {
            free(copy);
            return NULL;
        }
        memcpy(copy->str, reply->str, reply->len);
        copy->str[reply->len] = '\0';
        copy->len = reply->len;
    }
    if (reply->elements > 0) {
        copy->element = calloc(reply->elements, sizeof *copy->element);
        if (copy->element == NULL) {
            freeReplyObject(copy);
            return NULL;
        }
        copy->elements = reply->elements;
        for (size_t i = 0; i < reply->elements; i++)
            if ((copy->element[i] = copy_reply(reply->element[i])) == NULL) {
                freeReplyObject(copy);
                return NULL;
            }
    }
    return copy;
}

/* One parked call: its replies land here from the connection's callbacks,
 * on the parked caller's stack. */
typedef struct async_call {
    cache *c;
    void *caller;
    redisReply **replies;
    int left;
    bool unavailable;
    bool refused; /* an error reply among them */
} async_call;

typedef struct async_command {
    async_call *call;
    int index;
} async_command;

static void command_answered(void *cookie, cache_status status, const redisReply *reply)
{
    async_command *command = cookie;
    async_call *call = command->call;
    if (status == CACHE_UNAVAILABLE || reply == NULL) {
        call->unavailable = true;
    } else {
        call->replies[command->index] = copy_reply(reply);
        if (call->replies[command->index] == NULL)
            call->unavailable = true; /* out of memory: no answer to give */
        else if (status == CACHE_ERROR)
            call->refused = true;
    }
    if (--call->left == 0)
        call->c->wait.wake(call->c->wait.context, call->caller);
}

/* More commands than this in one call take the blocking connection: their
 * cookies live on the caller's stack. */
#define ASYNC_MAX_COMMANDS 16

/* As run() answers: CACHE_OK, CACHE_ERROR (an error reply among them, kept),
 * or CACHE_UNAVAILABLE with every reply freed. A command sent and lost is
 * never sent again (its outcome is unknown); one not sent yet goes out on
 * the next connection (cache/async.h). */
static cache_status run_on_async(cache *c, void *caller, int count, const int *argcs, const char **const *argvs,
                                 const size_t *const *lengths, redisReply **replies)
{
    async_call call = {.c = c, .caller = caller, .replies = replies};
    async_command commands[ASYNC_MAX_COMMANDS];
    for (int i = 0; i < count; i++) {
        commands[i] = (async_command){&call, i};
        if (cache_async_command(c->async, argcs[i], argvs[i], lengths[i], command_answered, &commands[i]) !=
            CACHE_OK) {
            call.unavailable = true;
            break;
        }
        call.left++;
    }
    while (call.left > 0)
        c->wait.park(c->wait.context, caller);
    if (c->async != NULL) { /* gone when the node stops: closing it answered this call */
        cache_async_stats stats;
        cache_async_stats_read(c->async, &stats);
        atomic_store_explicit(&c->async_reconnects, stats.reconnects, memory_order_relaxed);
    }
    if (call.unavailable) {
        free_replies(count, replies);
        return CACHE_UNAVAILABLE;
    }
    return call.refused ? CACHE_ERROR : CACHE_OK;
}

/* The commands of one call, sent once on a good connection, and again on a
 * new one when the first connection turned out to be dead and the commands
 * certainly did not run (found dead before sending, or not sent whole), or
 * may have run but the caller says running them twice is harmless. Never
 * after a timeout: a server that hangs would cost the caller two. */
static cache_status run(cache *c, cache_resend resend, int count, const int *argcs, const char **const *argvs,
                        const size_t *const *lengths, redisReply **replies)
{
    for (int i = 0; i < count; i++)
        replies[i] = NULL;
    if (c == NULL)
        return CACHE_UNAVAILABLE; /* a request served without a worker */
    void *caller = c->async != NULL && count <= ASYNC_MAX_COMMANDS ? c->wait.caller(c->wait.context) : NULL;
    if (caller != NULL)
        return run_on_async(c, caller, count, argcs, argvs, lengths, replies);
    for (int attempt = 0; attempt < 2; attempt++) {
        bool forced = dropped_dead_connection(c) || attempt > 0;
        bool reused = cache_connected(c);
        if (!ensure_connected(c, forced))
            return CACHE_UNAVAILABLE;
        for (int i = 0; i < count; i++)
            if (redisAppendCommandArgv(c->connection, argcs[i], argvs[i], lengths[i]) != REDIS_OK) {
                drop_connection(c);
                return CACHE_UNAVAILABLE; /* out of memory */
            }
        try_outcome outcome = send_and_receive(c, count, replies);
        if (outcome == TRY_ANSWERED)
            return judge(c, count, replies);
        free_replies(count, replies);
        drop_connection(c);
        /* A connection made for this call that fails at once says the
         * server is going away: no second try. Several commands not sent
         * whole may still have sent the first ones whole. */
        bool unsent = outcome == TRY_NOT_SENT && count == 1;
        bool harmless = outcome == TRY_LOST && resend == CACHE_RESEND_SAFE;
        if (!reused || !(unsent || harmless))
            break;
    }
    return CACHE_UNAVAILABLE;
}

/* One command, uncounted: the monitor's probe and the tests' look-ups are
 * not the workers' calls. */
static cache_status run_one(cache *c, int argc, const char **argv, const size_t *lengths, redisReply **reply)
{
    const char **argvs[] = {argv};
    const size_t *all_lengths[] = {lengths};
    return run(c, CACHE_RESEND_SAFE, 1, &argc, (const char **const *)argvs, all_lengths, reply);
}

cache_status cache_ping(cache *c)
{
    const char *argv[] = {"PING"};
    const size_t lengths[] = {4};
    redisReply *reply = NULL;
    cache_status status = run_one(c, 1, argv, lengths, &reply);
    if (status == CACHE_OK && !(reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0))
        status = CACHE_ERROR;
    freeReplyObject(reply);
    return status;
}

long long cache_client_id(cache *c)
{
    const char *argv[] = {"CLIENT", "ID"};
    const size_t lengths[] = {6, 2};
    redisReply *reply = NULL;
    cache_status status = run_one(c, 2, argv, lengths, &reply);
    long long id = status == CACHE_OK && reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    freeReplyObject(reply);
    return id;
}

/* ---- counting, for /metrics ------------------------------------------------- */

void cache_stats_read(const cache *c, cache_stats *out)
{
    out->calls = atomic_load_explicit(&c->calls, memory_order_relaxed);
    out->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
    out->reconnects = atomic_load_explicit(&c->reconnects, memory_order_relaxed) +
                      atomic_load_explicit(&c->async_reconnects, memory_order_relaxed);
    out->duration_ns = atomic_load_explicit(&c->duration_ns, memory_order_relaxed);
}

/* Only the connection's own thread writes: a load and a store, no locked add. */
static cache_status count_call(cache *c, uint64_t started_ns, cache_status status)
{
    if (c == NULL)
        return status;
    atomic_store_explicit(&c->calls, atomic_load_explicit(&c->calls, memory_order_relaxed) + 1, memory_order_relaxed);
    if (status == CACHE_UNAVAILABLE)
        atomic_store_explicit(&c->errors, atomic_load_explicit(&c->errors, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    uint64_t spent_ns = cache_monotonic_ns() - started_ns;
    atomic_store_explicit(&c->duration_ns, atomic_load_explicit(&c->duration_ns, memory_order_relaxed) + spent_ns,
                          memory_order_relaxed);
    return status;
}

/* ---- commands, for cache's own modules ------------------------------------- */

cache_status cache_command_run(cache *c, cache_resend resend, int argc, const char **argv, const size_t *lengths,
                               redisReply **reply)
{
    uint64_t started_ns = cache_monotonic_ns();
    const char **argvs[] = {argv};
    const size_t *all_lengths[] = {lengths};
    return count_call(c, started_ns, run(c, resend, 1, &argc, (const char **const *)argvs, all_lengths, reply));
}

cache_status cache_command_argv(cache *c, int argc, const char **argv, const size_t *lengths, redisReply **reply)
{
    return cache_command_run(c, CACHE_SEND_ONCE, argc, argv, lengths, reply);
}

cache_status cache_pipeline(cache *c, int count, const int *argcs, const char **const *argvs,
                            const size_t *const *lengths, redisReply **replies)
{
    uint64_t started_ns = cache_monotonic_ns();
    return count_call(c, started_ns, run(c, CACHE_SEND_ONCE, count, argcs, argvs, lengths, replies));
}

const cache_endpoint *cache_endpoint_of(const cache *c)
{
    return &c->endpoint;
}

int cache_timeout_ms(const cache *c)
{
    return c->timeout_ms;
}
