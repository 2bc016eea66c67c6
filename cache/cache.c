/* cache/cache.c: a worker's Redis connection. */
#include "cache.h"
#include "cache_internal.h"

#include <ctype.h>
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
    bool ever_connected;
    /* Relaxed atomics: only this connection's thread writes them, and
     * /metrics reads them from another. */
    atomic_ulong reconnects;
    atomic_ulong calls;
    atomic_ulong errors;
    atomic_ullong duration_ns;
};

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* ---- URLs ------------------------------------------------------------------ */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copies text[0..length) into out, decoding %XX; -1 when it does not fit or
 * an escape is broken. */
static int percent_decode(const char *text, size_t length, char *out, size_t size)
{
    size_t written = 0;
    for (size_t i = 0; i < length; i++) {
        char c = text[i];
        if (c == '%') {
            if (i + 2 >= length)
                return -1;
            int high = hex_value(text[i + 1]);
            int low = hex_value(text[i + 2]);
            if (high < 0 || low < 0)
                return -1;
            c = (char)(high * 16 + low);
            i += 2;
        }
        if (written + 1 >= size)
            return -1;
        out[written++] = c;
    }
    out[written] = '\0';
    return 0;
}

int cache_url_parse(const char *url, cache_endpoint *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (url == NULL || strncmp(url, "redis://", 8) != 0) {
        snprintf(error, error_size, "a Redis URL starts with redis://");
        return -1;
    }
    const char *cursor = url + 8;
    const char *end_of_authority = cursor + strcspn(cursor, "/?#");
    const char *at = NULL;
    for (const char *p = cursor; p < end_of_authority; p++)
        if (*p == '@')
            at = p; /* the last '@': passwords may contain an escaped one */
    if (at != NULL) {
        const char *colon = memchr(cursor, ':', (size_t)(at - cursor));
        const char *user_end = colon != NULL ? colon : at;
        if (percent_decode(cursor, (size_t)(user_end - cursor), out->username, sizeof out->username) != 0 ||
            (colon != NULL &&
             percent_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password) != 0)) {
            snprintf(error, error_size, "the user or password in the Redis URL is malformed or too long");
            return -1;
        }
        cursor = at + 1;
    }

    const char *host_end;
    const char *host_start = cursor;
    if (*cursor == '[') {
        host_start = cursor + 1;
        host_end = memchr(host_start, ']', (size_t)(end_of_authority - host_start));
        if (host_end == NULL) {
            snprintf(error, error_size, "unclosed [ in the Redis URL's host");
            return -1;
        }
        cursor = host_end + 1;
    } else {
        host_end = memchr(cursor, ':', (size_t)(end_of_authority - cursor));
        if (host_end == NULL)
            host_end = end_of_authority;
        cursor = host_end;
    }
    size_t host_length = (size_t)(host_end - host_start);
    if (host_length >= sizeof out->host) {
        snprintf(error, error_size, "the Redis URL's host is too long");
        return -1;
    }
    memcpy(out->host, host_start, host_length);
    out->host[host_length] = '\0';
    if (host_length == 0)
        strcpy(out->host, "127.0.0.1");

    if (*cursor == ':') {
        char *end = NULL;
        errno = 0;
        long port = strtol(cursor + 1, &end, 10);
        if (errno != 0 || end == cursor + 1 || end != end_of_authority || port < 1 || port > 65535) {
            snprintf(error, error_size, "the Redis URL's port must be a number from 1 to 65535");
            return -1;
        }
        out->port = (int)port;
        cursor = end;
    } else if (cursor != end_of_authority) {
        snprintf(error, error_size, "unexpected text after the Redis URL's host");
        return -1;
    }

    if (*cursor == '/' && cursor[1] != '\0' && cursor[1] != '?') {
        char *end = NULL;
        errno = 0;
        long database = strtol(cursor + 1, &end, 10);
        if (errno != 0 || end == cursor + 1 || (*end != '\0' && *end != '?') || database < 0 || database > 1000000) {
            snprintf(error, error_size, "the Redis URL's database must be a number");
            return -1;
        }
        out->database = (int)database;
    }
    return 0;
}

/* ---- the connection ---------------------------------------------------------- */

cache *cache_open(const cache_config *config, char *error, size_t error_size)
{
    cache *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    if (cache_url_parse(config->url, &c->endpoint, error, error_size) != 0) {
        free(c);
        return NULL;
    }
    c->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : 1000;
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

/* Runs a command on the current connection; a NULL reply means the
 * connection is broken, and it is dropped so the next call reconnects. */
static redisReply *command(cache *c, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *reply = redisvCommand(c->connection, format, args);
    va_end(args);
    if (reply == NULL)
        drop_connection(c);
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

static bool ensure_connected(cache *c, bool forced)
{
    if (cache_connected(c))
        return true;
    uint64_t now = monotonic_ms();
    if (!forced && c->last_attempt_ms != 0 && now - c->last_attempt_ms < CACHE_RECONNECT_INTERVAL_MS)
        return false;
    c->last_attempt_ms = now;
    drop_connection(c);
    struct timeval timeout = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
    c->connection = redisConnectWithTimeout(c->endpoint.host, c->endpoint.port, timeout);
    if (c->connection == NULL || c->connection->err != 0 ||
        redisSetTimeout(c->connection, timeout) != REDIS_OK || !handshake(c)) {
        drop_connection(c);
        return false;
    }
    if (c->ever_connected)
        atomic_fetch_add_explicit(&c->reconnects, 1, memory_order_relaxed);
    c->ever_connected = true;
    return true;
}

cache_status cache_ping(cache *c)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = cache_connected(c);
        if (!ensure_connected(c, attempt > 0))
            return CACHE_UNAVAILABLE;
        redisReply *reply = command(c, "PING");
        if (reply != NULL) {
            bool pong = reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
            freeReplyObject(reply);
            return pong ? CACHE_OK : CACHE_ERROR;
        }
        /* Broken under us (a Redis restart): one retry on a fresh connection. */
        if (!was_connected)
            break;
    }
    return CACHE_UNAVAILABLE;
}

long long cache_client_id(cache *c)
{
    if (!ensure_connected(c, false))
        return 0;
    redisReply *reply = command(c, "CLIENT ID");
    long long id = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    freeReplyObject(reply);
    return id;
}

/* ---- counting, for /metrics ------------------------------------------------- */

void cache_stats_read(const cache *c, cache_stats *out)
{
    out->calls = atomic_load_explicit(&c->calls, memory_order_relaxed);
    out->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
    out->reconnects = atomic_load_explicit(&c->reconnects, memory_order_relaxed);
    out->duration_ns = atomic_load_explicit(&c->duration_ns, memory_order_relaxed);
}

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Only the connection's own thread writes: a load and a store, no locked add. */
static cache_status count_call(cache *c, uint64_t started_ns, cache_status status)
{
    atomic_store_explicit(&c->calls, atomic_load_explicit(&c->calls, memory_order_relaxed) + 1, memory_order_relaxed);
    if (status == CACHE_UNAVAILABLE)
        atomic_store_explicit(&c->errors, atomic_load_explicit(&c->errors, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    atomic_store_explicit(&c->duration_ns,
                          atomic_load_explicit(&c->duration_ns, memory_order_relaxed) + (monotonic_ns() - started_ns),
                          memory_order_relaxed);
    return status;
}

/* ---- commands, for cache's own modules ------------------------------------- */

static cache_status run_command(cache *c, int argc, const char **argv, const size_t *lengths, redisReply **reply);

cache_status cache_command_argv(cache *c, int argc, const char **argv, const size_t *lengths,
                                redisReply **reply)
{
    if (c == NULL) {
        *reply = NULL;
        return CACHE_UNAVAILABLE; /* a request served without a worker */
    }
    uint64_t started_ns = monotonic_ns();
    return count_call(c, started_ns, run_command(c, argc, argv, lengths, reply));
}

static cache_status run_command(cache *c, int argc, const char **argv, const size_t *lengths, redisReply **reply)
{
    *reply = NULL;
    if (c == NULL)
        return CACHE_UNAVAILABLE; /* a request served without a worker */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = cache_connected(c);
        if (!ensure_connected(c, attempt > 0))
            return CACHE_UNAVAILABLE;
        redisReply *answer = redisCommandArgv(c->connection, argc, argv, lengths);
        if (answer != NULL) {
            *reply = answer;
            return answer->type == REDIS_REPLY_ERROR ? CACHE_ERROR : CACHE_OK;
        }
        drop_connection(c);
        /* Broken under us (a Redis restart). Commands here are safe to send
         * twice only when the first never reached Redis, which a fresh
         * connection that had been good cannot promise; yet a write lost to
         * a restart is lost either way, so one retry is worth it. */
        if (!was_connected)
            break;
    }
    return CACHE_UNAVAILABLE;
}

static cache_status run_pipeline(cache *c, int count, const int *argcs, const char **const *argvs,
                                 const size_t *const *lengths, redisReply **replies);

cache_status cache_pipeline(cache *c, int count, const int *argcs, const char **const *argvs,
                            const size_t *const *lengths, redisReply **replies)
{
    uint64_t started_ns = monotonic_ns();
    return count_call(c, started_ns, run_pipeline(c, count, argcs, argvs, lengths, replies));
}

static cache_status run_pipeline(cache *c, int count, const int *argcs, const char **const *argvs,
                                 const size_t *const *lengths, redisReply **replies)
{
    for (int i = 0; i < count; i++)
        replies[i] = NULL;
    if (!ensure_connected(c, false) && !ensure_connected(c, true))
        return CACHE_UNAVAILABLE;
    for (int i = 0; i < count; i++)
        if (redisAppendCommandArgv(c->connection, argcs[i], argvs[i], lengths[i]) != REDIS_OK) {
            drop_connection(c);
            return CACHE_UNAVAILABLE;
        }
    cache_status status = CACHE_OK;
    for (int i = 0; i < count; i++) {
        void *answer = NULL;
        if (redisGetReply(c->connection, &answer) != REDIS_OK || answer == NULL) {
            for (int j = 0; j < i; j++) {
                freeReplyObject(replies[j]);
                replies[j] = NULL;
            }
            drop_connection(c);
            return CACHE_UNAVAILABLE;
        }
        replies[i] = answer;
        if (replies[i]->type == REDIS_REPLY_ERROR)
            status = CACHE_ERROR;
    }
    return status;
}

const cache_endpoint *cache_endpoint_of(const cache *c)
{
    return &c->endpoint;
}

int cache_timeout_ms(const cache *c)
{
    return c->timeout_ms;
}
