/* cache/protocol.c: what a Redis URL says, what a reply means, and whether
 * anyone reached a server lately, shared by the blocking connection
 * (cache.c), the async one (async.c) and the invalidation subscriber, so
 * that none of them needs another. */
#include <ctype.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/cache.h>

#include "cache_internal.h"

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

/* ---- what a reply means ------------------------------------------------------ */

/* An error reply starts with a code word; these say that this server cannot
 * do the work now, for a reason that passes with time (or with another
 * server), not that the command was wrong. */
static const struct {
    const char *code;
    cache_reply_kind kind;
} reply_codes[] = {
    {"LOADING", CACHE_REPLY_NOT_NOW},     /* loading its data set after a restart */
    {"BUSY", CACHE_REPLY_NOT_NOW},        /* running a script past busy-reply-threshold */
    {"TRYAGAIN", CACHE_REPLY_NOT_NOW},    /* cluster: a slot is moving */
    {"CLUSTERDOWN", CACHE_REPLY_NOT_NOW}, /* cluster: not all slots served */
    {"NOREPLICAS", CACHE_REPLY_NOT_NOW},  /* min-replicas-to-write not met */
    {"MISCONF", CACHE_REPLY_NOT_NOW},     /* cannot persist, so refuses writes */
    {"OOM", CACHE_REPLY_NOT_NOW},         /* full under noeviction */
    /* A replica, not the primary (a failover moved it): a new connection
     * may reach the primary, which this one never will. */
    {"READONLY", CACHE_REPLY_NOT_HERE},
    {"MASTERDOWN", CACHE_REPLY_NOT_HERE}, /* a replica that lost its primary */
    {"NOSCRIPT", CACHE_REPLY_NOSCRIPT},
};

/* maxclients: said once, then the server closes the connection. */
#define TOO_MANY_CLIENTS "ERR max number of clients reached"

cache_reply_kind cache_reply_classify(const redisReply *reply)
{
    if (reply == NULL)
        return CACHE_REPLY_NOT_NOW;
    if (reply->type != REDIS_REPLY_ERROR)
        return CACHE_REPLY_VALUE;
    const char *text = reply->str != NULL ? reply->str : "";
    size_t length = reply->str != NULL ? reply->len : 0;
    size_t word = 0;
    while (word < length && text[word] != ' ')
        word++;
    for (size_t i = 0; i < sizeof reply_codes / sizeof reply_codes[0]; i++)
        if (strlen(reply_codes[i].code) == word && memcmp(text, reply_codes[i].code, word) == 0)
            return reply_codes[i].kind;
    if (length >= sizeof TOO_MANY_CLIENTS - 1 && memcmp(text, TOO_MANY_CLIENTS, sizeof TOO_MANY_CLIENTS - 1) == 0)
        return CACHE_REPLY_NOT_HERE;
    return CACHE_REPLY_ERROR;
}

/* ---- reachability, shared by the connections to one server -------------------- */

/* Each connection waits CACHE_RECONNECT_INTERVAL_MS after a failed attempt,
 * so that an outage does not turn every request into a connect. When one
 * of them (or the readiness monitor, or the subscriber) reaches the server
 * again, the wait has no reason left: the connections to the endpoint
 * count here each time one is served again, and one whose last attempt failed
 * tries again at once when the count moved since. A connection counts once,
 * at its first real answer, not at connect: a replica that answers READONLY
 * accepts connections all the same. A fixed table: a process
 * talks to one or two servers (tests to a few more); when it is full, the
 * connections of a new endpoint just wait out their interval. */
#define REACH_SLOTS 32

static struct {
    uint64_t key;
    atomic_ulong connects;
} reach_table[REACH_SLOTS];
static int reach_used;
static pthread_mutex_t reach_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t endpoint_key(const cache_endpoint *endpoint)
{
    /* FNV-1a of host and port: the server, whatever the database or user. */
    uint64_t hash = 14695981039346656037ULL;
    for (const char *p = endpoint->host; *p != '\0'; p++)
        hash = (hash ^ (unsigned char)*p) * 1099511628211ULL;
    for (int shift = 0; shift < 32; shift += 8)
        hash = (hash ^ (unsigned char)((unsigned)endpoint->port >> shift)) * 1099511628211ULL;
    return hash;
}

atomic_ulong *cache_endpoint_reach(const cache_endpoint *endpoint)
{
    uint64_t key = endpoint_key(endpoint);
    atomic_ulong *found = NULL;
    pthread_mutex_lock(&reach_lock);
    for (int i = 0; i < reach_used && found == NULL; i++)
        if (reach_table[i].key == key)
            found = &reach_table[i].connects;
    if (found == NULL && reach_used < REACH_SLOTS) {
        reach_table[reach_used].key = key;
        found = &reach_table[reach_used++].connects;
    }
    pthread_mutex_unlock(&reach_lock);
    return found;
}

void cache_endpoint_reached(const cache_endpoint *endpoint)
{
    atomic_ulong *reach = cache_endpoint_reach(endpoint);
    if (reach != NULL)
        atomic_fetch_add(reach, 1);
}
