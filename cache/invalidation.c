/* cache/invalidation.c: the messages, and the subscriber thread. */
#include "invalidation.h"
#include "cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- messages ------------------------------------------------------------------ */

int cache_invalidation_encode_family(char *out, size_t size, const char *family, uint64_t version)
{
    if (!cache_l1_family_valid(family) || version == 0)
        return -1;
    int n = snprintf(out, size, "F %" PRIu64 " %s", version, family);
    return n > 0 && (size_t)n < size ? n : -1;
}

int cache_invalidation_encode_key(char *out, size_t size, const char *family, const char *key)
{
    if (!cache_l1_family_valid(family) || key == NULL || strlen(key) > CACHE_INVALIDATION_MAX_KEY)
        return -1;
    int n = snprintf(out, size, "K %s %s", family, key);
    return n > 0 && (size_t)n < size ? n : -1;
}

int cache_invalidation_decode(const char *message, size_t length, cache_invalidation_message *out)
{
    memset(out, 0, sizeof *out);
    if (length < 4 || message[1] != ' ' || memchr(message, '\0', length) != NULL)
        return -1;
    const char *cursor = message + 2, *end = message + length;
    if (message[0] == 'F') {
        uint64_t version = 0;
        const char *digits = cursor;
        while (cursor < end && *cursor >= '0' && *cursor <= '9') {
            uint64_t next = version * 10 + (uint64_t)(*cursor - '0');
            if (next / 10 != version)
                return -1; /* overflow */
            version = next;
            cursor++;
        }
        if (cursor == digits || version == 0 || cursor >= end || *cursor != ' ' ||
            end - cursor - 1 > CACHE_L1_MAX_FAMILY_LENGTH)
            return -1;
        size_t family_length = (size_t)(end - cursor) - 1;
        memcpy(out->family, cursor + 1, family_length);
        out->family[family_length] = '\0';
        if (!cache_l1_family_valid(out->family))
            return -1;
        out->kind = CACHE_INVALIDATION_FAMILY;
        out->version = version;
        return 0;
    }
    if (message[0] == 'K') {
        const char *space = memchr(cursor, ' ', (size_t)(end - cursor));
        if (space == NULL || space - cursor > CACHE_L1_MAX_FAMILY_LENGTH ||
            end - space - 1 > CACHE_INVALIDATION_MAX_KEY)
            return -1;
        memcpy(out->family, cursor, (size_t)(space - cursor));
        out->family[space - cursor] = '\0';
        memcpy(out->key, space + 1, (size_t)(end - space - 1));
        out->key[end - space - 1] = '\0';
        if (!cache_l1_family_valid(out->family))
            return -1;
        out->kind = CACHE_INVALIDATION_KEY;
        return 0;
    }
    return -1;
}

void cache_invalidation_apply(cache_l1 *l1, const cache_invalidation_message *message)
{
    if (message->kind == CACHE_INVALIDATION_FAMILY)
        cache_l1_learn_version(l1, message->family, message->version);
    else
        cache_l1_drop(l1, message->family, message->key);
}

/* ---- the subscriber -------------------------------------------------------------- */

struct cache_invalidation {
    pthread_t thread;
    cache_l1 *l1;
    cache_endpoint endpoint;
    int timeout_ms;
    int wake[2]; /* a pipe: stop writes, the thread polls the read end */
    atomic_bool stopping;
    atomic_bool subscribed;
    atomic_ulong subscriptions;
    atomic_ulong messages;
    atomic_llong client_id;
    char channel[CACHE_INVALIDATION_CHANNEL_SIZE];
};

/* Sleeps up to milliseconds; returns early (true) when stop was asked. */
static bool wait_or_stop(cache_invalidation *s, int milliseconds)
{
    struct pollfd wake = {.fd = s->wake[0], .events = POLLIN};
    int rc = poll(&wake, 1, milliseconds);
    return rc > 0 || atomic_load(&s->stopping);
}

/* Whether a reply lets the subscription go on; *refused is set when Redis
 * refused the command itself (a wrong password, an ACL), which waiting a
 * moment will not change, unlike a server that cannot serve now. */
static bool ok_reply(redisReply *reply, bool *refused)
{
    cache_reply_kind kind = cache_reply_classify(reply);
    if (kind == CACHE_REPLY_ERROR || kind == CACHE_REPLY_NOSCRIPT)
        *refused = true;
    freeReplyObject(reply);
    return kind == CACHE_REPLY_VALUE;
}

static bool subscribed_reply(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
           reply->element[0]->type == REDIS_REPLY_STRING && strcmp(reply->element[0]->str, "subscribe") == 0;
}

/* A fresh connection, authenticated and subscribed; NULL when Redis cannot
 * be reached, cannot serve now, or refused (*refused). SELECT is not
 * needed: channels are global to the server. */
static redisContext *subscribe(cache_invalidation *s, bool *refused)
{
    *refused = false;
    struct timeval timeout = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(s->endpoint.host, s->endpoint.port, timeout);
    if (c == NULL || c->err != 0 || redisSetTimeout(c, timeout) != REDIS_OK)
        goto fail;
    if (s->endpoint.password[0] != '\0') {
        redisReply *reply = s->endpoint.username[0] != '\0'
                                ? redisCommand(c, "AUTH %s %s", s->endpoint.username, s->endpoint.password)
                                : redisCommand(c, "AUTH %s", s->endpoint.password);
        if (!ok_reply(reply, refused))
            goto fail;
    }
    redisReply *id = redisCommand(c, "CLIENT ID");
    if (id == NULL)
        goto fail;
    atomic_store(&s->client_id, id->type == REDIS_REPLY_INTEGER ? id->integer : 0);
    freeReplyObject(id);
    redisReply *reply = redisCommand(c, "SUBSCRIBE %s", s->channel);
    bool subscribed = subscribed_reply(reply);
    if (!subscribed && reply != NULL)
        ok_reply(reply, refused);
    else
        freeReplyObject(reply);
    if (!subscribed)
        goto fail;
    /* The workers' connections waiting to retry may do so now. */
    cache_endpoint_reached(&s->endpoint);
    return c;
fail:
    atomic_store(&s->client_id, 0);
    if (c != NULL)
        redisFree(c);
    return NULL;
}

static void handle(cache_invalidation *s, redisReply *reply)
{
    /* ["message", channel, payload]; ["pong", ""] answers our PING. */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING || strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    cache_invalidation_message message;
    if (cache_invalidation_decode(reply->element[2]->str, reply->element[2]->len, &message) != 0)
        return;
    cache_invalidation_apply(s->l1, &message);
    atomic_fetch_add(&s->messages, 1);
}

/* Reads messages until the connection is lost (false) or stop (true). */
static bool listen_on(cache_invalidation *s, redisContext *c)
{
    uint64_t last_traffic = cache_monotonic_ms(), ping_sent = 0;
    for (;;) {
        struct pollfd fds[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
        int rc = poll(fds, 2, 100);
        if (atomic_load(&s->stopping) || (rc > 0 && fds[1].revents != 0))
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
        uint64_t now = cache_monotonic_ms();
        if (rc > 0 && fds[0].revents != 0) {
            if (redisBufferRead(c) != REDIS_OK)
                return false; /* EOF: Redis went away or killed us */
            void *reply = NULL;
            while (redisGetReplyFromReader(c, &reply) == REDIS_OK && reply != NULL) {
                handle(s, reply);
                freeReplyObject(reply);
                reply = NULL;
            }
            if (c->err != 0)
                return false;
            last_traffic = now;
            ping_sent = 0;
            continue;
        }
        /* A Redis that hangs (SIGSTOP, a partition) sends no EOF: a PING
         * that goes unanswered is how we notice. */
        if (ping_sent == 0 && now - last_traffic >= CACHE_INVALIDATION_IDLE_PING_MS) {
            int done = 0;
            if (redisAppendCommand(c, "PING") != REDIS_OK)
                return false;
            while (!done)
                if (redisBufferWrite(c, &done) != REDIS_OK)
                    return false;
            ping_sent = now;
        } else if (ping_sent != 0 && now - ping_sent >= (uint64_t)s->timeout_ms) {
            return false;
        }
    }
}

static void *run(void *argument)
{
    cache_invalidation *s = argument;
    int backoff = 0;
    while (!atomic_load(&s->stopping)) {
        if (backoff > 0 && wait_or_stop(s, backoff))
            break;
        bool refused = false;
        redisContext *c = subscribe(s, &refused);
        if (c == NULL) {
            backoff = backoff == 0 ? CACHE_INVALIDATION_BACKOFF_MIN_MS : backoff * 2;
            if (backoff > CACHE_INVALIDATION_BACKOFF_MAX_MS || refused)
                backoff = CACHE_INVALIDATION_BACKOFF_MAX_MS;
            continue;
        }
        /* Messages published while we were away are lost to us: nothing the
         * L1 held may be served again. Flushed before resuming, so no lookup
         * sees an entry from before. */
        cache_l1_flush(s->l1);
        cache_l1_suspend(s->l1, false);
        atomic_store(&s->subscribed, true);
        atomic_fetch_add(&s->subscriptions, 1);
        backoff = 0;
        bool stopped = listen_on(s, c);
        atomic_store(&s->subscribed, false);
        cache_l1_suspend(s->l1, true);
        cache_l1_flush(s->l1);
        atomic_store(&s->client_id, 0);
        redisFree(c);
        if (stopped)
            break;
        backoff = CACHE_INVALIDATION_BACKOFF_MIN_MS;
    }
    return NULL;
}

void cache_invalidation_channel(const char *prefix, char out[CACHE_INVALIDATION_CHANNEL_SIZE])
{
    snprintf(out, CACHE_INVALIDATION_CHANNEL_SIZE, "%.*s" CACHE_INVALIDATION_CHANNEL, CACHE_KEY_PREFIX_MAX,
             prefix != NULL ? prefix : "");
}

cache_invalidation *cache_invalidation_start(const cache_config *config, cache_l1 *l1, char *error,
                                             size_t error_size)
{
    char reason[160];
    if (cache_key_prefix_check(config->key_prefix, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "key prefix %s", reason);
        return NULL;
    }
    cache_invalidation *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    if (cache_url_parse(config->url, &s->endpoint, error, error_size) != 0) {
        free(s);
        return NULL;
    }
    s->l1 = l1;
    s->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : 1000;
    cache_invalidation_channel(config->key_prefix, s->channel);
    atomic_init(&s->stopping, false);
    atomic_init(&s->subscribed, false);
    atomic_init(&s->subscriptions, 0);
    atomic_init(&s->messages, 0);
    atomic_init(&s->client_id, 0);
    if (pipe(s->wake) != 0) {
        snprintf(error, error_size, "pipe: %s", strerror(errno));
        free(s);
        return NULL;
    }
    fcntl(s->wake[0], F_SETFD, FD_CLOEXEC);
    fcntl(s->wake[1], F_SETFD, FD_CLOEXEC);
    cache_l1_suspend(l1, true);
    int rc = pthread_create(&s->thread, NULL, run, s);
    if (rc != 0) {
        snprintf(error, error_size, "cannot start the invalidation thread: %s", strerror(rc));
        close(s->wake[0]);
        close(s->wake[1]);
        free(s);
        return NULL;
    }
    return s;
}

void cache_invalidation_stop(cache_invalidation *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, true);
    ssize_t written;
    do {
        written = write(s->wake[1], "x", 1);
    } while (written < 0 && errno == EINTR);
    pthread_join(s->thread, NULL);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s);
}

bool cache_invalidation_subscribed(const cache_invalidation *s)
{
    return atomic_load(&((cache_invalidation *)s)->subscribed);
}

unsigned long cache_invalidation_subscriptions(const cache_invalidation *s)
{
    return atomic_load(&((cache_invalidation *)s)->subscriptions);
}

unsigned long cache_invalidation_messages(const cache_invalidation *s)
{
    return atomic_load(&((cache_invalidation *)s)->messages);
}

long long cache_invalidation_client_id(const cache_invalidation *s)
{
    return atomic_load(&((cache_invalidation *)s)->client_id);
}
