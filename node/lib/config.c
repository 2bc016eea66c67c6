/* node/lib/config.c: the core's settings table (HTTP, overload, lifecycle,
 * logging, the tiers), its checks, and the tiers' settings derived from it.
 * Every other setting lives in its owner's table (the standard extensions',
 * password hashing's, a service's); the parsing is node/lib/settings.c's and
 * shoal_config_load is node/lib/config_load.c's. */
#include <shoal/config.h>

#include "config_tables.h"
#include "cpus.h"
#include "proxy.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef shoal_setting setting;
#define SETTING_INT SHOAL_SETTING_INT
#define SETTING_SIZE SHOAL_SETTING_SIZE
#define SETTING_BOOL SHOAL_SETTING_BOOL
#define SETTING_STRING SHOAL_SETTING_STRING

#define FIELD(name) offsetof(shoal_config, name)

_Static_assert(CACHE_KEY_PREFIX_MAX == 40, "SHOAL_REDIS_PREFIX_MAX_TEXT says 40");

static int check_redis_prefix(const char *value, char *reason, size_t reason_size)
{
    return cache_key_prefix_check(value, reason, reason_size);
}

static int check_session_prefix(const char *value, char *reason, size_t reason_size)
{
    return strcmp(value, SHOAL_SESSION_PREFIX_SAME) == 0 ? 0 : cache_key_prefix_check(value, reason, reason_size);
}

/* Defaults work against `deploy/local up`. Each thread holds two
 * PostgreSQL connections and one Redis connection; see docs/operations.md
 * and docs/engine.md for the measurements behind the count. */
static const setting core_settings[] = {
    {"bind", "SHOAL_BIND", SETTING_STRING, FIELD(bind_address), "127.0.0.1", 0, 0,
     "address to listen on (0.0.0.0 in containers)", NULL},
    {"port", "SHOAL_PORT", SETTING_INT, FIELD(port), "8081", 0, 65535,
     "TCP port to listen on (0: any free port)", NULL},
    {"admin-bind", "SHOAL_ADMIN_BIND", SETTING_STRING, FIELD(admin_bind_address), "", 0, 0,
     "address of the admin listener (/healthz, /readyz, /metrics), for the private network only; "
     "empty: the --bind address", NULL},
    {"admin-port", "SHOAL_ADMIN_PORT", SETTING_INT, FIELD(admin_port), "9081", 0, 65535,
     "TCP port of the admin listener, the only one that serves /readyz and /metrics (0: any free port); "
     "must differ from --port", NULL},
    {"threads", "SHOAL_THREADS", SETTING_INT, FIELD(threads), "0", 0, 1024,
     "worker threads, each an event loop serving many requests at once (each holds two PostgreSQL "
     "connections, a third while a slow statement makes its pipe spill, and one Redis connection); 0: one per CPU the node may use (its CPU affinity, "
     "bounded by its cgroup's CPU quota, rounded up)",
     NULL},
    {"max-connections", "SHOAL_MAX_CONNECTIONS", SETTING_INT, FIELD(max_connections), "1024", 1,
     1000000, "concurrent client connections; more are refused", NULL},
    {"listen-backlog", "SHOAL_LISTEN_BACKLOG", SETTING_INT, FIELD(listen_backlog), "1024", 1, 65535,
     "kernel accept queue length", NULL},
    {"connection-timeout", "SHOAL_CONNECTION_TIMEOUT", SETTING_INT, FIELD(connection_timeout_s),
     "30", 1, 86400, "seconds a connection may stay idle (slow clients are dropped)", NULL},
    {"fiber-stack", "SHOAL_FIBER_STACK", SETTING_SIZE, FIELD(fiber_stack_bytes), "256k", 16384,
     1073741824,
     "stack of each request on the public listener, in bytes (k, m and g suffixes allowed); a handler that "
     "needs more stops the node with a message saying so",
     NULL},
    {"max-header-bytes", "SHOAL_MAX_HEADER_BYTES", SETTING_SIZE, FIELD(max_header_bytes), "16k",
     1024, 1048576, "request line plus headers, in bytes (k, m and g suffixes allowed)", NULL},
    {"max-body-bytes", "SHOAL_MAX_BODY_BYTES", SETTING_SIZE, FIELD(max_body_bytes), "1m", 0,
     1073741824, "request body, in bytes; larger bodies get 413", NULL},
    {"max-json-depth", "SHOAL_MAX_JSON_DEPTH", SETTING_INT, FIELD(max_json_depth), "32", 1, 1000,
     "nesting depth of JSON request bodies; deeper bodies get 400", NULL},
    {"trusted-proxies", "SHOAL_TRUSTED_PROXIES", SETTING_STRING, FIELD(trusted_proxies),
     "127.0.0.0/8,::1", 0, 0,
     "comma-separated addresses and CIDRs of proxies whose X-Forwarded-For names the client "
     "(default: loopback, where the local HAProxy runs; empty: trust nobody)", NULL},
    {"request-deadline-ms", "SHOAL_REQUEST_DEADLINE_MS", SETTING_INT, FIELD(request_deadline_ms), "10000", 0,
     3600000,
     "milliseconds a request may take from its arrival; work that would start later (a PostgreSQL or Redis "
     "call, a password hash) is not started and the request gets 503 with Retry-After; 0: no deadline", NULL},
    {"max-in-flight", "SHOAL_MAX_IN_FLIGHT", SETTING_INT, FIELD(max_in_flight), "0", 0, 1000000,
     "requests the node holds at once; one more gets 503 with Retry-After at once (health checks and "
     "/metrics excepted); 0: " SHOAL_IN_FLIGHT_PER_THREAD_TEXT " per worker thread, at least " SHOAL_IN_FLIGHT_MIN_TEXT, NULL},
    {"node-name", "SHOAL_NODE_NAME", SETTING_STRING, FIELD(node_name), "", 0, 0,
     "name in logs and /readyz (empty: the host name)", NULL},
    {"drain-delay-ms", "SHOAL_DRAIN_DELAY_MS", SETTING_INT, FIELD(drain_delay_ms), "5000", 0,
     600000, "after SIGTERM, milliseconds to keep serving while /readyz says 503", NULL},
    {"grace-period-ms", "SHOAL_GRACE_PERIOD_MS", SETTING_INT, FIELD(grace_period_ms), "10000", 0,
     600000, "after draining, milliseconds in-flight requests get to finish", NULL},
    {"startup-timeout", "SHOAL_STARTUP_TIMEOUT", SETTING_INT, FIELD(startup_timeout_s), "30", 0,
     3600, "seconds start-up may take: waiting for PostgreSQL to migrate, then opening the workers' "
     "connections (a tier still missing then is reached later)", NULL},
    {"migrate", "SHOAL_MIGRATE", SETTING_BOOL, FIELD(migrate), "true", 0, 0,
     "apply database migrations at start (false when a job does it)", NULL},
    {"strict", "SHOAL_STRICT", SETTING_BOOL, FIELD(strict), "false", 0, 0,
     "refuse to start when this node's PostgreSQL connections (one per worker thread and one for the "
     "tier monitor) do not fit in what the server has free (default: a warning in the log)", NULL},
    {"access-log-sample", "SHOAL_ACCESS_LOG_SAMPLE", SETTING_INT, FIELD(access_log_sample), "1", 0,
     INT_MAX, "access log: 1 logs every request, N one in N, 0 none", NULL},
    {"database-url", "DATABASE_URL", SETTING_STRING, FIELD(database_url),
     "postgresql://shoal:shoal@127.0.0.1:5433/shoal", 0, 0,
     "PostgreSQL connection URI or conninfo; when unset and PGHOST, PGHOSTADDR, PGPORT, PGDATABASE, "
     "PGUSER or PGSERVICE is set, libpq's variables are used instead", NULL},
    {"database-connect-timeout", "SHOAL_DATABASE_CONNECT_TIMEOUT", SETTING_INT,
     FIELD(database_connect_timeout_s), "2", 1, 60, "seconds to wait for a PostgreSQL connection", NULL},
    {"database-timeout-ms", "SHOAL_DATABASE_TIMEOUT_MS", SETTING_INT, FIELD(database_timeout_ms), "2000",
     1, 600000, "milliseconds to wait for PostgreSQL's answer before the connection counts as lost", NULL},
    {"database-statement-timeout-ms", "SHOAL_DATABASE_STATEMENT_TIMEOUT_MS", SETTING_INT,
     FIELD(database_statement_timeout_ms), "1500", 0, 600000,
     "PostgreSQL cancels a statement running longer (503, the connection stays); 0: no limit; "
     "must be below --database-timeout-ms", NULL},
    {"database-spill-after-ms", "SHOAL_DATABASE_SPILL_AFTER_MS", SETTING_INT, FIELD(database_spill_after_ms), "20",
     0, 600000,
     "a worker's statements go on a second PostgreSQL connection (opened when needed, closed after 10 s idle) "
     "while the oldest on its first has run longer; 0: one connection, statements wait behind a slow one",
     NULL},
    {"redis-url", "REDIS_URL", SETTING_STRING, FIELD(redis_url), "redis://127.0.0.1:6380/0", 0, 0,
     "Redis URL: redis://[:password@]host[:port][/db]", NULL},
    {"redis-timeout-ms", "SHOAL_REDIS_TIMEOUT_MS", SETTING_INT, FIELD(redis_timeout_ms), "1000",
     1, 60000, "milliseconds to wait for Redis to connect or answer", NULL},
    {"redis-prefix", "SHOAL_REDIS_PREFIX", SETTING_STRING, FIELD(redis_prefix), "", 0, 0,
     "put before every Redis key and the cache invalidation channel, so that services sharing one Redis keep "
     "apart: at most " SHOAL_REDIS_PREFIX_MAX_TEXT " bytes of A-Z a-z 0-9 _ . : - (each service has its own default, "
     "usually its name and a colon; empty: 0.1's layout)", check_redis_prefix},
    {"session-prefix", "SHOAL_SESSION_PREFIX", SETTING_STRING, FIELD(session_prefix), SHOAL_SESSION_PREFIX_SAME, 0,
     0, "Redis key prefix of sessions only: another service's --redis-prefix shares its sessions on purpose; "
     SHOAL_SESSION_PREFIX_SAME ": the same as --redis-prefix", check_session_prefix},
    {"cache-url", "SHOAL_CACHE_URL", SETTING_STRING, FIELD(cache_url), "", 0, 0,
     "Redis URL for cache-aside and invalidation (allkeys-lru, no persistence); empty: the "
     "REDIS_URL instance", NULL},
    {"l1-entries", "SHOAL_L1_ENTRIES", SETTING_INT, FIELD(l1_entries), "10000", 0, 100000000,
     "entries of the per-node in-process cache in front of Redis; 0 switches it off", NULL},
    {"l1-bytes", "SHOAL_L1_BYTES", SETTING_SIZE, FIELD(l1_bytes), "64m", 0, 68719476736LL,
     "bytes the per-node cache may hold (k, m and g suffixes allowed); 0: entries bound only", NULL},
    {"l1-ttl-ms", "SHOAL_L1_TTL_MS", SETTING_INT, FIELD(l1_ttl_ms), "2000", 1, 86400000,
     "milliseconds an entry lives in the per-node cache (invalidation messages drop it sooner)", NULL},
    {"cache-stale-if-error-ms", "SHOAL_CACHE_STALE_IF_ERROR_MS", SETTING_INT, FIELD(cache_stale_if_error_ms),
     "300000", 0, 86400000,
     "milliseconds past its freshness a cached copy still answers a read that PostgreSQL cannot "
     "(instead of 503); Redis and the per-node cache keep copies that long; 0 turns it off", NULL},
};

static bool libpq_variables_present(shoal_config_env_fn env)
{
    static const char *const names[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER",
                                        "PGSERVICE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *value = env(names[i]);
        if (value != NULL && *value != '\0')
            return true;
    }
    return false;
}

/* What a table entry cannot say: values that must parse as addresses and
 * URLs, checked now so that a typo exits 2 at start instead of failing every
 * request later. */
static int validate(void *values, char *error, size_t error_size)
{
    shoal_config *config = values;
    unsigned char address[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, config->bind_address, address) != 1 &&
        inet_pton(AF_INET6, config->bind_address, address) != 1) {
        snprintf(error, error_size, "--bind (SHOAL_BIND): '%s' is not an IPv4 or IPv6 address",
                 config->bind_address);
        return -1;
    }
    if (config->admin_bind_address[0] != '\0' && inet_pton(AF_INET, config->admin_bind_address, address) != 1 &&
        inet_pton(AF_INET6, config->admin_bind_address, address) != 1) {
        snprintf(error, error_size, "--admin-bind (SHOAL_ADMIN_BIND): '%s' is not an IPv4 or IPv6 address",
                 config->admin_bind_address);
        return -1;
    }
    /* One port cannot be both: the admin routes would be public again. */
    if (config->admin_port != 0 && config->admin_port == config->port) {
        snprintf(error, error_size, "--admin-port (SHOAL_ADMIN_PORT): %d is also --port; the admin listener needs a "
                 "port of its own", config->admin_port);
        return -1;
    }
    char reason[512];
    cache_endpoint endpoint;
    if (cache_url_parse(config->redis_url, &endpoint, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "--redis-url (REDIS_URL): %s", reason);
        return -1;
    }
    if (config->cache_url[0] != '\0' && cache_url_parse(config->cache_url, &endpoint, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "--cache-url (SHOAL_CACHE_URL): %s", reason);
        return -1;
    }
    if (store_conninfo_check(config->database_url, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "--database-url (DATABASE_URL): %s", reason);
        return -1;
    }
    /* Otherwise the node gives up on the connection before the server
     * cancels the statement: a slow query would cost a reconnect. */
    if (config->database_statement_timeout_ms != 0 &&
        config->database_statement_timeout_ms >= config->database_timeout_ms) {
        snprintf(error, error_size,
                 "--database-statement-timeout-ms (SHOAL_DATABASE_STATEMENT_TIMEOUT_MS): %d must be below "
                 "--database-timeout-ms (%d), or 0",
                 config->database_statement_timeout_ms, config->database_timeout_ms);
        return -1;
    }
    shoal_proxies *proxies = shoal_proxies_parse(config->trusted_proxies, reason, sizeof reason);
    if (proxies == NULL) {
        snprintf(error, error_size, "--trusted-proxies (SHOAL_TRUSTED_PROXIES): %s", reason);
        return -1;
    }
    shoal_proxies_free(proxies);
    /* Derived here, so that every reader sees the prefix and the number in
     * force. */
    if (strcmp(config->session_prefix, SHOAL_SESSION_PREFIX_SAME) == 0) {
        char *copy = strdup(config->redis_prefix);
        if (copy == NULL)
            return -1;
        free(config->session_prefix);
        config->session_prefix = copy;
    }
    /* The loops never block on a tier, so a worker per CPU keeps every
     * CPU busy; more would only hold more connections. */
    if (config->threads == 0)
        config->threads = shoal_cpus_available();
    if (config->max_in_flight == 0) {
        config->max_in_flight = config->threads * SHOAL_IN_FLIGHT_PER_THREAD;
        if (config->max_in_flight < SHOAL_IN_FLIGHT_MIN)
            config->max_in_flight = SHOAL_IN_FLIGHT_MIN;
    }
    if (config->node_name[0] == '\0') {
        char host[256] = "node";
        if (gethostname(host, sizeof host) != 0)
            strcpy(host, "node");
        host[sizeof host - 1] = '\0';
        char *copy = strdup(host);
        if (copy == NULL)
            return -1;
        free(config->node_name);
        config->node_name = copy;
    }
    return 0;
}

store_config shoal_config_store(const shoal_config *config)
{
    return (store_config){
        .conninfo = config->database_url,
        .connect_timeout_s = config->database_connect_timeout_s,
        .answer_timeout_ms = config->database_timeout_ms,
        .statement_timeout_ms = config->database_statement_timeout_ms,
        .spill_after_ms = config->database_spill_after_ms,
        .application_name = config->node_name,
    };
}

cache_config shoal_config_cache(const shoal_config *config)
{
    return (cache_config){.url = config->redis_url,
                          .timeout_ms = config->redis_timeout_ms,
                          .key_prefix = config->redis_prefix,
                          .session_prefix = config->session_prefix};
}

cache_config shoal_config_cache_tier(const shoal_config *config)
{
    const char *url = config->cache_url != NULL && config->cache_url[0] != '\0' ? config->cache_url
                                                                                 : config->redis_url;
    return (cache_config){.url = url,
                          .timeout_ms = config->redis_timeout_ms,
                          .key_prefix = config->redis_prefix,
                          .session_prefix = config->session_prefix};
}

bool shoal_config_cache_separate(const shoal_config *config)
{
    if (config->cache_url == NULL || config->cache_url[0] == '\0')
        return false;
    cache_endpoint sessions, cache;
    char reason[256];
    if (cache_url_parse(config->redis_url, &sessions, reason, sizeof reason) != 0 ||
        cache_url_parse(config->cache_url, &cache, reason, sizeof reason) != 0)
        return strcmp(config->redis_url, config->cache_url) != 0;
    return strcmp(sessions.host, cache.host) != 0 || sessions.port != cache.port ||
           sessions.database != cache.database || strcmp(sessions.username, cache.username) != 0 ||
           strcmp(sessions.password, cache.password) != 0;
}

const shoal_settings shoal_config_settings = SHOAL_SETTINGS("shoal", shoal_config, core_settings, validate);

int shoal_config_use_libpq_variables(shoal_config *config, shoal_config_env_fn env)
{
    if (env == NULL || env("DATABASE_URL") != NULL || !libpq_variables_present(env))
        return 0;
    char *empty = strdup("");
    if (empty == NULL)
        return -1;
    free(config->database_url);
    config->database_url = empty;
    return 0;
}

