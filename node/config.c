/* node/config.c: the core's settings table (and, until they move to their
 * owners, the demo services' and the seed command's), its checks, and the
 * tiers' settings derived from it. The parsing is node/settings.c's. */
#include "config.h"
#include "config_tables.h"
#include "ext/rate_limit.h"
#include "proxy.h"
#include "seed.h"

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

/* Defaults work against `deploy/local up`. The thread count is one
 * PostgreSQL and one Redis connection each; see docs/operations.md for
 * the measurement behind it. */
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
    {"threads", "SHOAL_THREADS", SETTING_INT, FIELD(threads), "8", 1, 1024,
     "worker threads (each holds one PostgreSQL and one Redis connection)", NULL},
    {"max-connections", "SHOAL_MAX_CONNECTIONS", SETTING_INT, FIELD(max_connections), "1024", 1,
     1000000, "concurrent client connections; more are refused", NULL},
    {"listen-backlog", "SHOAL_LISTEN_BACKLOG", SETTING_INT, FIELD(listen_backlog), "1024", 1, 65535,
     "kernel accept queue length", NULL},
    {"connection-timeout", "SHOAL_CONNECTION_TIMEOUT", SETTING_INT, FIELD(connection_timeout_s),
     "30", 1, 86400, "seconds a connection may stay idle (slow clients are dropped)", NULL},
    {"max-header-bytes", "SHOAL_MAX_HEADER_BYTES", SETTING_SIZE, FIELD(max_header_bytes), "16k",
     1024, 1048576, "request line plus headers, in bytes (k, m and g suffixes allowed)", NULL},
    {"max-body-bytes", "SHOAL_MAX_BODY_BYTES", SETTING_SIZE, FIELD(max_body_bytes), "1m", 0,
     1073741824, "request body, in bytes; larger bodies get 413", NULL},
    {"max-json-depth", "SHOAL_MAX_JSON_DEPTH", SETTING_INT, FIELD(max_json_depth), "32", 1, 1000,
     "nesting depth of JSON request bodies; deeper bodies get 400", NULL},
    {"cors-origins", "SHOAL_CORS_ORIGINS", SETTING_STRING, FIELD(cors_origins), "*", 0, 0,
     "origins whose pages may call the node: * (any; no credentials are ever allowed), a comma-separated "
     "list, or empty (CORS off)", NULL},
    {"security-headers", "SHOAL_SECURITY_HEADERS", SETTING_BOOL, FIELD(security_headers), "true", 0, 0,
     "send X-Content-Type-Options, Content-Security-Policy and Referrer-Policy on every answer, and "
     "Cache-Control: no-store on answers to requests with credentials or that may change something", NULL},
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
     "/metrics excepted); 0: " SHOAL_IN_FLIGHT_PER_THREAD_TEXT " per worker thread", NULL},
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
    {"session-ttl", "SHOAL_SESSION_TTL", SETTING_INT, FIELD(session_ttl_s), "1209600", 60, 31536000,
     "seconds a session lives after its last use (14 days; each use slides it)", NULL},
    {"rate-limits", "SHOAL_RATE_LIMITS", SETTING_STRING, FIELD(rate_limits), SHOAL_RATE_LIMITS_DEFAULT, 0, 0,
     "per-client limits shared by all nodes, comma-separated rules "
     "'METHODS PATTERN=COUNT/[N]UNIT [burst B] [fail-open]' (units s, min, h, day); empty: none", NULL},
    {"idempotency-ttl", "SHOAL_IDEMPOTENCY_TTL", SETTING_INT, FIELD(idempotency_ttl_s), "86400", 1, 2592000,
     "seconds a POST or PATCH sent with an Idempotency-Key is answered from its first run", NULL},
    {"password-ops-limit", "SHOAL_PASSWORD_OPS_LIMIT", SETTING_INT, FIELD(password_ops_limit), "2", 1, 64,
     "argon2id passes per password hash (libsodium's interactive level is 2)", NULL},
    {"password-mem-limit", "SHOAL_PASSWORD_MEM_LIMIT", SETTING_SIZE, FIELD(password_mem_limit), "64m", 8192,
     4294967296LL, "memory per argon2id password hash (k, m and g suffixes; interactive: 64m)", NULL},
    {"password-concurrency", "SHOAL_PASSWORD_CONCURRENCY", SETTING_INT, FIELD(password_concurrency), "4", 1, 1024,
     "password hashes computed at once per node; memory for them is at most this times --password-mem-limit", NULL},
    {"password-queue-timeout-ms", "SHOAL_PASSWORD_QUEUE_TIMEOUT_MS", SETTING_INT, FIELD(password_queue_timeout_ms),
     "1000", 0, 60000, "milliseconds a login or registration waits for a hashing turn, then 503 with Retry-After", NULL},
};

/* The demo services' settings (node/api/, node/bench/), still in
 * shoal_config until they move to their owners: shoal_config_load joins
 * them to the core's, shoal-node's service declares them, other services
 * never see them. */
static int check_login_rule(const char *value, char *reason, size_t reason_size)
{
    shoal_rate_limit_rule rule;
    return shoal_rate_limit_parse_rule(value, &rule, reason, reason_size);
}

static const setting demo_settings[] = {
    {"api", "SHOAL_API", SETTING_BOOL, FIELD(api), "true", 0, 0, "serve the RealWorld API under /api", NULL},
    {"api-max-limit", "SHOAL_API_MAX_LIMIT", SETTING_INT, FIELD(api_max_limit), "100", 1, 1000,
     "most articles one page of GET /api/articles or /api/articles/feed returns; a larger ?limit= is cut to it", NULL},
    {"login-failures-per-address", "SHOAL_LOGIN_FAILURES_PER_ADDRESS", SETTING_STRING,
     FIELD(login_failures_per_address), "20/15min burst 20", 0, 0,
     "failed logins allowed per client address, 'COUNT/[N]UNIT [burst B]'; more get 429", check_login_rule},
    {"login-failures-per-account", "SHOAL_LOGIN_FAILURES_PER_ACCOUNT", SETTING_STRING,
     FIELD(login_failures_per_account), "5/15min burst 5", 0, 0,
     "failed logins allowed per account from one client address; more get 429 (other addresses are not locked out)",
     check_login_rule},
    {"bench", "SHOAL_BENCH", SETTING_BOOL, FIELD(bench), "true", 0, 0,
     "serve the TechEmpower benchmark routes (/json, /plaintext, /db, /queries, /updates, /fortunes)", NULL},
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

/* Each entry of the CORS list is "*" or an origin as browsers send it:
 * scheme://host[:port], without a path. */
static bool valid_origins(const char *origins)
{
    const char *cursor = origins;
    while (*cursor != '\0') {
        cursor += strspn(cursor, " ,");
        size_t length = strcspn(cursor, ",");
        while (length > 0 && cursor[length - 1] == ' ')
            length--;
        if (length == 0)
            break;
        bool wildcard = length == 1 && cursor[0] == '*';
        bool web = (strncmp(cursor, "https://", 8) == 0 && length > 8) ||
                   (strncmp(cursor, "http://", 7) == 0 && length > 7);
        if (!wildcard && !web)
            return false;
        size_t scheme = wildcard ? 1 : strchr(cursor, '/') - cursor + 2;
        for (size_t i = scheme; i < length; i++)
            if (cursor[i] == '/' || cursor[i] == ' ')
                return false;
        cursor += length;
        cursor += strcspn(cursor, ",");
    }
    return true;
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
    if (!valid_origins(config->cors_origins)) {
        snprintf(error, error_size,
                 "--cors-origins (SHOAL_CORS_ORIGINS): '%s' is not * or a list of origins like "
                 "https://app.example",
                 config->cors_origins);
        return -1;
    }
    shoal_proxies *proxies = shoal_proxies_parse(config->trusted_proxies, reason, sizeof reason);
    if (proxies == NULL) {
        snprintf(error, error_size, "--trusted-proxies (SHOAL_TRUSTED_PROXIES): %s", reason);
        return -1;
    }
    shoal_proxies_free(proxies);
    shoal_rate_limits *limits = shoal_rate_limits_parse(config->rate_limits, reason, sizeof reason);
    if (limits == NULL) {
        snprintf(error, error_size, "--rate-limits (SHOAL_RATE_LIMITS): %s", reason);
        return -1;
    }
    shoal_rate_limits_free(limits);
    /* Derived here, so that every reader sees the prefix and the number in
     * force. */
    if (strcmp(config->session_prefix, SHOAL_SESSION_PREFIX_SAME) == 0) {
        char *copy = strdup(config->redis_prefix);
        if (copy == NULL)
            return -1;
        free(config->session_prefix);
        config->session_prefix = copy;
    }
    if (config->max_in_flight == 0)
        config->max_in_flight = config->threads * SHOAL_IN_FLIGHT_PER_THREAD;
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
const shoal_settings shoal_config_demo_settings =
    SHOAL_SETTINGS("the demo services (Conduit, TechEmpower)", shoal_config, demo_settings, NULL);

/* The seed command's own flags (node/seed_command.h): no variables, so
 * that they are never settings of a node. */
#define SEED_DEFAULT_USERS "1000"
#define SEED_DEFAULT_ARTICLES "10000"
static const setting seed_flags[] = {
    {"users", NULL, SETTING_INT, FIELD(seed_users), SEED_DEFAULT_USERS, 1, STORE_SEED_MAX_USERS,
     "users user00001.. (userNNNNN@example.com, password 'password')", NULL},
    {"articles", NULL, SETTING_INT, FIELD(seed_articles), SEED_DEFAULT_ARTICLES, 0, STORE_SEED_MAX_ARTICLES,
     "articles, with tags, favourites and comments", NULL},
    {"seed", NULL, SETTING_INT, FIELD(seed_number), "0", 0, INT_MAX,
     "another seed, another data set of the same shape", NULL},
    {"reset", NULL, SETTING_BOOL, FIELD(seed_reset), "false", 0, 0,
     "empty the Conduit tables first; without it a database that holds users is refused (exit status 3)", NULL},
};
const shoal_settings shoal_config_seed_flags = SHOAL_SETTINGS("seed", shoal_config, seed_flags, NULL);

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

/* What shoal_config_load parses: the core's and the demo's settings, and
 * the seed command's flags when that is the command. */
static size_t legacy_groups(shoal_config *config, bool seed, settings_group *groups)
{
    size_t count = 0;
    groups[count++] = (settings_group){&shoal_config_settings, config};
    groups[count++] = (settings_group){&shoal_config_demo_settings, config};
    if (seed)
        groups[count++] = (settings_group){&shoal_config_seed_flags, config};
    return count;
}

int shoal_config_load(shoal_config *config, int argc, char **argv, shoal_config_env_fn env,
                      char *error, size_t error_size)
{
    memset(config, 0, sizeof *config);
    config->command = SHOAL_COMMAND_SERVE;
    int index = 1;
    if (index < argc && argv[index][0] != '-') {
        if (strcmp(argv[index], "serve") == 0) {
            config->command = SHOAL_COMMAND_SERVE;
        } else if (strcmp(argv[index], "migrate") == 0) {
            config->command = SHOAL_COMMAND_MIGRATE;
        } else if (strcmp(argv[index], "seed") == 0) {
            config->command = SHOAL_COMMAND_SEED;
        } else {
            snprintf(error, error_size, "unknown command '%s' (commands: serve, migrate, seed)", argv[index]);
            return -1;
        }
        index++;
    }
    settings_group groups[3];
    size_t count = legacy_groups(config, config->command == SHOAL_COMMAND_SEED, groups);
    /* The seed command's defaults are there whatever the command. */
    settings_group seed = {&shoal_config_seed_flags, config};
    if (shoal_settings_defaults(groups, count, error, error_size) != 0 ||
        shoal_settings_defaults(&seed, 1, error, error_size) != 0 ||
        shoal_settings_environment(groups, count, env, error, error_size) != 0)
        goto fail;
    if (shoal_config_use_libpq_variables(config, env) != 0) {
        snprintf(error, error_size, "out of memory");
        goto fail;
    }
    switch (shoal_settings_arguments(groups, count, argc, argv, index, error, error_size)) {
    case SETTINGS_HELP:
        config->command = SHOAL_COMMAND_HELP;
        return 0;
    case SETTINGS_VERSION:
        config->command = SHOAL_COMMAND_VERSION;
        return 0;
    case SETTINGS_INVALID:
        goto fail;
    case SETTINGS_PARSED:
        break;
    }
    if (shoal_settings_validate(groups, count, error, error_size) != 0)
        goto fail;
    return 0;

fail:
    shoal_config_free(config);
    return -1;
}

void shoal_config_free(shoal_config *config)
{
    settings_group groups[3];
    size_t count = legacy_groups(config, true, groups);
    shoal_settings_release(groups, count);
}

void shoal_config_usage(FILE *out, const char *program)
{
    fprintf(out,
            "Usage: %s [serve|migrate|seed] [--option value]...\n"
            "\n"
            "  serve    (default) apply migrations unless --migrate=false, then serve HTTP\n"
            "  migrate  apply database migrations and exit\n"
            "  seed     apply migrations unless --migrate=false, fill the database with a\n"
            "           reproducible Conduit data set for load tests, and exit; its flags:\n",
            program);
    shoal_settings_print(out, &shoal_config_seed_flags, "    ");
    fprintf(out, "\n"
                 "Every option can also be set by its environment variable; flags win.\n"
                 "Sizes accept k, m and g suffixes. Bad settings exit with status 2.\n\n");
    shoal_settings_print(out, &shoal_config_settings, "  ");
    shoal_settings_print(out, &shoal_config_demo_settings, "  ");
    fprintf(out, "\n  --help                     this text\n  --version                  print the version\n");
}
