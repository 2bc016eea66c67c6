/* cache/include/shoal/cache.h: Redis, one connection per worker thread.
 *
 * Like store/, a cache is owned by one thread, connects lazily and
 * reconnects by itself: at once when it finds its connection dead before
 * sending (the command then goes out on the new one), and after a failed
 * attempt at most once per CACHE_RECONNECT_INTERVAL_MS, unless another
 * connection to the same server has reached it since. */
#ifndef CACHE_H
#define CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cache cache;

/* Every key this library writes, and the invalidation channel, start with
 * a prefix, so that services sharing one Redis never meet: at most
 * CACHE_KEY_PREFIX_MAX bytes of [A-Za-z0-9_.:-]; "" (or NULL) is none, the
 * 0.1 layout. Sessions may take another prefix, to share them with a
 * service on purpose (docs/state.md, Key prefixes). */
#define CACHE_KEY_PREFIX_MAX 40

typedef struct cache_config {
    const char *url; /* redis://[[user]:password@]host[:port][/db] */
    int timeout_ms;  /* connect and command timeout */
    const char *key_prefix;     /* rate limits, idempotency keys, cache-aside, the channel; NULL: "" */
    const char *session_prefix; /* session keys and users' sets; NULL: key_prefix */
} cache_config;

/* 0 when prefix is a valid key prefix (NULL counts as ""), or -1 with the
 * reason in error. */
int cache_key_prefix_check(const char *prefix, char *error, size_t error_size);

typedef enum cache_status {
    CACHE_OK = 0,
    CACHE_UNAVAILABLE, /* cannot reach Redis now, or it says it cannot serve now (LOADING, READONLY, ...) */
    CACHE_ERROR,       /* Redis refused the command, or answered what the caller cannot read */
} cache_status;

#define CACHE_RECONNECT_INTERVAL_MS 250

typedef struct cache_endpoint {
    char host[256];
    int port;
    char username[128]; /* empty: AUTH with the password only */
    char password[256]; /* empty: no AUTH */
    int database;
} cache_endpoint;

/* Parses a redis:// URL (percent-escapes in user and password allowed).
 * Returns 0, or -1 with the reason in error. */
int cache_url_parse(const char *url, cache_endpoint *out, char *error, size_t error_size);

/* NULL when the URL or a prefix is invalid (reason in error) or memory
 * runs out. */
cache *cache_open(const cache_config *config, char *error, size_t error_size);
void cache_close(cache *c);

/* The connection's prefixes (never NULL; "" for a NULL c), for the key
 * builders outside cache/ (rate limits' buckets). */
const char *cache_key_prefix(const cache *c);
const char *cache_session_prefix(const cache *c);

cache_status cache_ping(cache *c);
bool cache_connected(const cache *c);
unsigned long cache_reconnect_count(const cache *c);
/* What this connection did since it opened, for /metrics. A call is one
 * command or one pipeline; an error is a call that found Redis unreachable,
 * broken or not serving now (CACHE_UNAVAILABLE; an error reply that refuses
 * the command is an answer, not counted). Written by the
 * connection's thread, read by any thread without a lock. */
typedef struct cache_stats {
    unsigned long calls;
    unsigned long errors;
    unsigned long reconnects;
    uint64_t duration_ns;
} cache_stats;
void cache_stats_read(const cache *c, cache_stats *out);
/* Redis' id for this connection (CLIENT ID), 0 when not connected; tests
 * use it to kill the connection from outside. */
long long cache_client_id(cache *c);

#endif
