/* node/config.c: one table of settings drives parsing, validation and --help. */
#include "config.h"
#include "ext/rate_limit.h"
#include "proxy.h"
#include "seed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum setting_type { SETTING_INT, SETTING_SIZE, SETTING_BOOL, SETTING_STRING } setting_type;

typedef struct setting {
    const char *flag;        /* without the leading "--" */
    const char *variable;    /* environment variable */
    setting_type type;
    size_t offset;           /* into shoal_config */
    const char *default_value;
    long long minimum, maximum; /* for INT and SIZE */
    const char *help;
} setting;

#define FIELD(name) offsetof(shoal_config, name)

/* Defaults work against `deploy/local up`. The thread count is one
 * PostgreSQL and one Redis connection each; see docs/operations.md for
 * the measurement behind it. */
static const setting settings[] = {
    {"bind", "SHOAL_BIND", SETTING_STRING, FIELD(bind_address), "127.0.0.1", 0, 0,
     "address to listen on (0.0.0.0 in containers)"},
    {"port", "SHOAL_PORT", SETTING_INT, FIELD(port), "8081", 0, 65535,
     "TCP port to listen on (0: any free port)"},
    {"admin-bind", "SHOAL_ADMIN_BIND", SETTING_STRING, FIELD(admin_bind_address), "", 0, 0,
     "address of the admin listener (/healthz, /readyz, /metrics), for the private network only; "
     "empty: the --bind address"},
    {"admin-port", "SHOAL_ADMIN_PORT", SETTING_INT, FIELD(admin_port), "9081", 0, 65535,
     "TCP port of the admin listener, the only one that serves /readyz and /metrics (0: any free port); "
     "must differ from --port"},
    {"threads", "SHOAL_THREADS", SETTING_INT, FIELD(threads), "8", 1, 1024,
     "worker threads (each holds one PostgreSQL and one Redis connection)"},
    {"max-connections", "SHOAL_MAX_CONNECTIONS", SETTING_INT, FIELD(max_connections), "1024", 1,
     1000000, "concurrent client connections; more are refused"},
    {"listen-backlog", "SHOAL_LISTEN_BACKLOG", SETTING_INT, FIELD(listen_backlog), "1024", 1, 65535,
     "kernel accept queue length"},
    {"connection-timeout", "SHOAL_CONNECTION_TIMEOUT", SETTING_INT, FIELD(connection_timeout_s),
     "30", 1, 86400, "seconds a connection may stay idle (slow clients are dropped)"},
    {"max-header-bytes", "SHOAL_MAX_HEADER_BYTES", SETTING_SIZE, FIELD(max_header_bytes), "16k",
     1024, 1048576, "request line plus headers, in bytes (k, m and g suffixes allowed)"},
    {"max-body-bytes", "SHOAL_MAX_BODY_BYTES", SETTING_SIZE, FIELD(max_body_bytes), "1m", 0,
     1073741824, "request body, in bytes; larger bodies get 413"},
    {"max-json-depth", "SHOAL_MAX_JSON_DEPTH", SETTING_INT, FIELD(max_json_depth), "32", 1, 1000,
     "nesting depth of JSON request bodies; deeper bodies get 400"},
    {"cors-origins", "SHOAL_CORS_ORIGINS", SETTING_STRING, FIELD(cors_origins), "*", 0, 0,
     "origins whose pages may call the node: * (any; no credentials are ever allowed), a comma-separated "
     "list, or empty (CORS off)"},
    {"security-headers", "SHOAL_SECURITY_HEADERS", SETTING_BOOL, FIELD(security_headers), "true", 0, 0,
     "send X-Content-Type-Options, Content-Security-Policy and Referrer-Policy on every answer, and "
     "Cache-Control: no-store on answers to requests with credentials or that may change something"},
    {"trusted-proxies", "SHOAL_TRUSTED_PROXIES", SETTING_STRING, FIELD(trusted_proxies),
     "127.0.0.0/8,::1", 0, 0,
     "comma-separated addresses and CIDRs of proxies whose X-Forwarded-For names the client "
     "(default: loopback, where the local HAProxy runs; empty: trust nobody)"},
    {"request-deadline-ms", "SHOAL_REQUEST_DEADLINE_MS", SETTING_INT, FIELD(request_deadline_ms), "10000", 0,
     3600000,
     "milliseconds a request may take from its arrival; work that would start later (a PostgreSQL or Redis "
     "call, a password hash) is not started and the request gets 503 with Retry-After; 0: no deadline"},
    {"max-in-flight", "SHOAL_MAX_IN_FLIGHT", SETTING_INT, FIELD(max_in_flight), "0", 0, 1000000,
     "requests the node holds at once; one more gets 503 with Retry-After at once (health checks and "
     "/metrics excepted); 0: " SHOAL_IN_FLIGHT_PER_THREAD_TEXT " per worker thread"},
    {"node-name", "SHOAL_NODE_NAME", SETTING_STRING, FIELD(node_name), "", 0, 0,
     "name in logs and /readyz (empty: the host name)"},
    {"drain-delay-ms", "SHOAL_DRAIN_DELAY_MS", SETTING_INT, FIELD(drain_delay_ms), "5000", 0,
     600000, "after SIGTERM, milliseconds to keep serving while /readyz says 503"},
    {"grace-period-ms", "SHOAL_GRACE_PERIOD_MS", SETTING_INT, FIELD(grace_period_ms), "10000", 0,
     600000, "after draining, milliseconds in-flight requests get to finish"},
    {"startup-timeout", "SHOAL_STARTUP_TIMEOUT", SETTING_INT, FIELD(startup_timeout_s), "30", 0,
     3600, "seconds start-up may take: waiting for PostgreSQL to migrate, then opening the workers' "
     "connections (a tier still missing then is reached later)"},
    {"migrate", "SHOAL_MIGRATE", SETTING_BOOL, FIELD(migrate), "true", 0, 0,
     "apply database migrations at start (false when a job does it)"},
    {"strict", "SHOAL_STRICT", SETTING_BOOL, FIELD(strict), "false", 0, 0,
     "refuse to start when this node's PostgreSQL connections (one per worker thread and one for the "
     "tier monitor) do not fit in what the server has free (default: a warning in the log)"},
    {"bench", "SHOAL_BENCH", SETTING_BOOL, FIELD(bench), "true", 0, 0,
     "serve the TechEmpower benchmark routes (/json, /plaintext, /db, /queries, /updates, /fortunes)"},
    {"access-log-sample", "SHOAL_ACCESS_LOG_SAMPLE", SETTING_INT, FIELD(access_log_sample), "1", 0,
     INT_MAX, "access log: 1 logs every request, N one in N, 0 none"},
    {"database-url", "DATABASE_URL", SETTING_STRING, FIELD(database_url),
     "postgresql://shoal:shoal@127.0.0.1:5433/shoal", 0, 0,
     "PostgreSQL connection URI or conninfo; when unset and PGHOST, PGHOSTADDR, PGPORT, PGDATABASE, "
     "PGUSER or PGSERVICE is set, libpq's variables are used instead"},
    {"database-connect-timeout", "SHOAL_DATABASE_CONNECT_TIMEOUT", SETTING_INT,
     FIELD(database_connect_timeout_s), "2", 1, 60, "seconds to wait for a PostgreSQL connection"},
    {"database-timeout-ms", "SHOAL_DATABASE_TIMEOUT_MS", SETTING_INT, FIELD(database_timeout_ms), "2000",
     1, 600000, "milliseconds to wait for PostgreSQL's answer before the connection counts as lost"},
    {"database-statement-timeout-ms", "SHOAL_DATABASE_STATEMENT_TIMEOUT_MS", SETTING_INT,
     FIELD(database_statement_timeout_ms), "1500", 0, 600000,
     "PostgreSQL cancels a statement running longer (503, the connection stays); 0: no limit; "
     "must be below --database-timeout-ms"},
    {"redis-url", "REDIS_URL", SETTING_STRING, FIELD(redis_url), "redis://127.0.0.1:6380/0", 0, 0,
     "Redis URL: redis://[:password@]host[:port][/db]"},
    {"redis-timeout-ms", "SHOAL_REDIS_TIMEOUT_MS", SETTING_INT, FIELD(redis_timeout_ms), "1000",
     1, 60000, "milliseconds to wait for Redis to connect or answer"},
    {"cache-url", "SHOAL_CACHE_URL", SETTING_STRING, FIELD(cache_url), "", 0, 0,
     "Redis URL for cache-aside and invalidation (allkeys-lru, no persistence); empty: the "
     "REDIS_URL instance"},
    {"l1-entries", "SHOAL_L1_ENTRIES", SETTING_INT, FIELD(l1_entries), "10000", 0, 100000000,
     "entries of the per-node in-process cache in front of Redis; 0 switches it off"},
    {"l1-bytes", "SHOAL_L1_BYTES", SETTING_SIZE, FIELD(l1_bytes), "64m", 0, 68719476736LL,
     "bytes the per-node cache may hold (k, m and g suffixes allowed); 0: entries bound only"},
    {"l1-ttl-ms", "SHOAL_L1_TTL_MS", SETTING_INT, FIELD(l1_ttl_ms), "2000", 1, 86400000,
     "milliseconds an entry lives in the per-node cache (invalidation messages drop it sooner)"},
    {"cache-stale-if-error-ms", "SHOAL_CACHE_STALE_IF_ERROR_MS", SETTING_INT, FIELD(cache_stale_if_error_ms),
     "300000", 0, 86400000,
     "milliseconds past its freshness a cached copy still answers a read that PostgreSQL cannot "
     "(instead of 503); Redis and the per-node cache keep copies that long; 0 turns it off"},
    {"session-ttl", "SHOAL_SESSION_TTL", SETTING_INT, FIELD(session_ttl_s), "1209600", 60, 31536000,
     "seconds a session lives after its last use (14 days; each use slides it)"},
    {"rate-limits", "SHOAL_RATE_LIMITS", SETTING_STRING, FIELD(rate_limits), SHOAL_RATE_LIMITS_DEFAULT, 0, 0,
     "per-client limits shared by all nodes, comma-separated rules "
     "'METHODS PATTERN=COUNT/[N]UNIT [burst B] [fail-open]' (units s, min, h, day); empty: none"},
    {"idempotency-ttl", "SHOAL_IDEMPOTENCY_TTL", SETTING_INT, FIELD(idempotency_ttl_s), "86400", 1, 2592000,
     "seconds a POST or PATCH sent with an Idempotency-Key is answered from its first run"},
    {"password-ops-limit", "SHOAL_PASSWORD_OPS_LIMIT", SETTING_INT, FIELD(password_ops_limit), "2", 1, 64,
     "argon2id passes per password hash (libsodium's interactive level is 2)"},
    {"password-mem-limit", "SHOAL_PASSWORD_MEM_LIMIT", SETTING_SIZE, FIELD(password_mem_limit), "64m", 8192,
     4294967296LL, "memory per argon2id password hash (k, m and g suffixes; interactive: 64m)"},
    {"password-concurrency", "SHOAL_PASSWORD_CONCURRENCY", SETTING_INT, FIELD(password_concurrency), "4", 1, 1024,
     "password hashes computed at once per node; memory for them is at most this times --password-mem-limit"},
    {"password-queue-timeout-ms", "SHOAL_PASSWORD_QUEUE_TIMEOUT_MS", SETTING_INT, FIELD(password_queue_timeout_ms),
     "1000", 0, 60000, "milliseconds a login or registration waits for a hashing turn, then 503 with Retry-After"},
    {"api", "SHOAL_API", SETTING_BOOL, FIELD(api), "true", 0, 0, "serve the RealWorld API under /api"},
    {"api-max-limit", "SHOAL_API_MAX_LIMIT", SETTING_INT, FIELD(api_max_limit), "100", 1, 1000,
     "most articles one page of GET /api/articles or /api/articles/feed returns; a larger ?limit= is cut to it"},
    {"login-failures-per-address", "SHOAL_LOGIN_FAILURES_PER_ADDRESS", SETTING_STRING,
     FIELD(login_failures_per_address), "20/15min burst 20", 0, 0,
     "failed logins allowed per client address, 'COUNT/[N]UNIT [burst B]'; more get 429"},
    {"login-failures-per-account", "SHOAL_LOGIN_FAILURES_PER_ACCOUNT", SETTING_STRING,
     FIELD(login_failures_per_account), "5/15min burst 5", 0, 0,
     "failed logins allowed per account from one client address; more get 429 (other addresses are not locked out)"},
};

#define SETTING_COUNT (sizeof settings / sizeof settings[0])

static int parse_integer(const char *text, long long minimum, long long maximum, bool allow_suffix,
                         long long *out)
{
    /* strtoll would skip leading blanks and a '+'; a setting is digits. */
    if (text == NULL || !((*text >= '0' && *text <= '9') || *text == '-'))
        return -1;
    errno = 0;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text)
        return -1;
    if (allow_suffix && *end != '\0') {
        long long multiplier = 0;
        if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kib") == 0)
            multiplier = 1024;
        else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mib") == 0)
            multiplier = 1024 * 1024;
        else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gib") == 0)
            multiplier = 1024LL * 1024 * 1024;
        if (multiplier == 0 || value > LLONG_MAX / multiplier || value < LLONG_MIN / multiplier)
            return -1;
        value *= multiplier;
        end += strlen(end);
    }
    if (*end != '\0' || value < minimum || value > maximum)
        return -1;
    *out = value;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const truthy[] = {"1", "true", "yes", "on"};
    static const char *const falsy[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, truthy[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, falsy[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Stores text into the setting's field; source names where it came from. */
static int apply(shoal_config *config, const setting *s, const char *text, const char *source,
                 char *error, size_t error_size)
{
    char *field = (char *)config + s->offset;
    long long number = 0;
    switch (s->type) {
    case SETTING_INT:
        if (parse_integer(text, s->minimum, s->maximum, false, &number) != 0)
            goto invalid;
        *(int *)(void *)field = (int)number;
        return 0;
    case SETTING_SIZE:
        if (parse_integer(text, s->minimum, s->maximum, true, &number) != 0)
            goto invalid;
        *(size_t *)(void *)field = (size_t)number;
        return 0;
    case SETTING_BOOL:
        if (parse_bool(text, (bool *)(void *)field) != 0) {
            snprintf(error, error_size, "%s: '%s' is not a boolean (use true or false)", source, text);
            return -1;
        }
        return 0;
    case SETTING_STRING: {
        char *copy = strdup(text);
        if (copy == NULL) {
            snprintf(error, error_size, "out of memory");
            return -1;
        }
        char **slot = (char **)(void *)field;
        free(*slot);
        *slot = copy;
        return 0;
    }
    }
invalid:
    snprintf(error, error_size, "%s: '%s' is not %s between %lld and %lld", source, text,
             s->type == SETTING_SIZE ? "a size" : "a whole number", s->minimum, s->maximum);
    return -1;
}

static const setting *find_flag(const char *name, size_t length)
{
    for (size_t i = 0; i < SETTING_COUNT; i++)
        if (strncmp(settings[i].flag, name, length) == 0 && settings[i].flag[length] == '\0')
            return &settings[i];
    return NULL;
}

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
static int validate(shoal_config *config, char *error, size_t error_size)
{
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
    shoal_rate_limit_rule rule;
    if (shoal_rate_limit_parse_rule(config->login_failures_per_address, &rule, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "--login-failures-per-address (SHOAL_LOGIN_FAILURES_PER_ADDRESS): %s", reason);
        return -1;
    }
    if (shoal_rate_limit_parse_rule(config->login_failures_per_account, &rule, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "--login-failures-per-account (SHOAL_LOGIN_FAILURES_PER_ACCOUNT): %s", reason);
        return -1;
    }
    /* Derived here, so that every reader sees the number in force. */
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
    return (cache_config){.url = config->redis_url, .timeout_ms = config->redis_timeout_ms};
}

cache_config shoal_config_cache_tier(const shoal_config *config)
{
    const char *url = config->cache_url != NULL && config->cache_url[0] != '\0' ? config->cache_url
                                                                                 : config->redis_url;
    return (cache_config){.url = url, .timeout_ms = config->redis_timeout_ms};
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

/* The seed command's own flags (node/seed_command.h); --reset takes no value. */
#define SEED_DEFAULT_USERS 1000
#define SEED_DEFAULT_ARTICLES 10000
static const struct seed_flag {
    const char *flag;
    size_t offset;
    long long maximum;
} seed_flags[] = {
    {"users", FIELD(seed_users), STORE_SEED_MAX_USERS},
    {"articles", FIELD(seed_articles), STORE_SEED_MAX_ARTICLES},
    {"seed", FIELD(seed_number), INT_MAX},
};

/* 1 when argv[*index] was a seed flag (and its value) and is applied, 0
 * when it is none, -1 with a message. */
static int apply_seed_flag(shoal_config *config, int argc, char **argv, int *index, char *error, size_t error_size)
{
    const char *argument = argv[*index];
    if (strcmp(argument, "--reset") == 0) {
        config->seed_reset = true;
        return 1;
    }
    for (size_t i = 0; i < sizeof seed_flags / sizeof seed_flags[0]; i++) {
        size_t length = strlen(seed_flags[i].flag);
        if (strncmp(argument, "--", 2) != 0 || strncmp(argument + 2, seed_flags[i].flag, length) != 0)
            continue;
        const char *rest = argument + 2 + length;
        const char *value = NULL;
        if (*rest == '=')
            value = rest + 1;
        else if (*rest != '\0')
            continue;
        else if (*index + 1 < argc)
            value = argv[++*index];
        else {
            snprintf(error, error_size, "option '--%s' needs a value", seed_flags[i].flag);
            return -1;
        }
        long long number = 0;
        long long minimum = seed_flags[i].offset == FIELD(seed_users) ? 1 : 0;
        if (parse_integer(value, minimum, seed_flags[i].maximum, false, &number) != 0) {
            snprintf(error, error_size, "--%s: '%s' is not a whole number between %lld and %lld", seed_flags[i].flag,
                     value, minimum, seed_flags[i].maximum);
            return -1;
        }
        *(int *)(void *)((char *)config + seed_flags[i].offset) = (int)number;
        return 1;
    }
    return 0;
}

int shoal_config_load(shoal_config *config, int argc, char **argv, shoal_config_env_fn env,
                      char *error, size_t error_size)
{
    memset(config, 0, sizeof *config);
    config->command = SHOAL_COMMAND_SERVE;
    config->seed_users = SEED_DEFAULT_USERS;
    config->seed_articles = SEED_DEFAULT_ARTICLES;
    for (size_t i = 0; i < SETTING_COUNT; i++)
        if (apply(config, &settings[i], settings[i].default_value, "default", error, error_size) != 0)
            goto fail;

    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const char *value = env != NULL ? env(settings[i].variable) : NULL;
        if (value == NULL)
            continue;
        char source[96];
        snprintf(source, sizeof source, "%s (--%s)", settings[i].variable, settings[i].flag);
        if (apply(config, &settings[i], value, source, error, error_size) != 0)
            goto fail;
    }
    if (env != NULL && env("DATABASE_URL") == NULL && libpq_variables_present(env)) {
        free(config->database_url);
        config->database_url = strdup("");
        if (config->database_url == NULL)
            goto fail;
    }

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
            goto fail;
        }
        index++;
    }
    for (; index < argc; index++) {
        const char *argument = argv[index];
        if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0) {
            config->command = SHOAL_COMMAND_HELP;
            return 0;
        }
        if (strcmp(argument, "--version") == 0) {
            config->command = SHOAL_COMMAND_VERSION;
            return 0;
        }
        if (strncmp(argument, "--", 2) != 0) {
            snprintf(error, error_size, "unexpected argument '%s'", argument);
            goto fail;
        }
        if (config->command == SHOAL_COMMAND_SEED) {
            int applied = apply_seed_flag(config, argc, argv, &index, error, error_size);
            if (applied < 0)
                goto fail;
            if (applied > 0)
                continue;
        }
        const char *name = argument + 2;
        const char *equals = strchr(name, '=');
        size_t name_length = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const setting *s = find_flag(name, name_length);
        if (s == NULL) {
            snprintf(error, error_size, "unknown option '--%.*s' (see --help)", (int)name_length, name);
            goto fail;
        }
        const char *value = NULL;
        if (equals != NULL) {
            value = equals + 1;
        } else if (s->type == SETTING_BOOL && (index + 1 >= argc || strncmp(argv[index + 1], "--", 2) == 0)) {
            value = "true"; /* a boolean flag alone (--strict) turns it on */
        } else if (index + 1 < argc) {
            value = argv[++index];
        } else {
            snprintf(error, error_size, "option '--%s' needs a value", s->flag);
            goto fail;
        }
        char source[96];
        snprintf(source, sizeof source, "--%s", s->flag);
        if (apply(config, s, value, source, error, error_size) != 0)
            goto fail;
    }
    if (validate(config, error, error_size) != 0)
        goto fail;
    return 0;

fail:
    shoal_config_free(config);
    return -1;
}

void shoal_config_free(shoal_config *config)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (settings[i].type != SETTING_STRING)
            continue;
        char **slot = (char **)(void *)((char *)config + settings[i].offset);
        free(*slot);
        *slot = NULL;
    }
}

void shoal_config_usage(FILE *out, const char *program)
{
    fprintf(out,
            "Usage: %s [serve|migrate|seed] [--option value]...\n"
            "\n"
            "  serve    (default) apply migrations unless --migrate=false, then serve HTTP\n"
            "  migrate  apply database migrations and exit\n"
            "  seed     apply migrations unless --migrate=false, fill the database with a\n"
            "           reproducible Conduit data set for load tests, and exit; its flags:\n"
            "    --users N     users user00001.. (userNNNNN@example.com, password 'password'; default %d)\n"
            "    --articles M  articles, with tags, favourites and comments (default %d)\n"
            "    --seed S      another seed, another data set of the same shape (default 0)\n"
            "    --reset       empty the Conduit tables first; without it a database\n"
            "                  that holds users is refused (exit status 3)\n"
            "\n"
            "Every option can also be set by its environment variable; flags win.\n"
            "Sizes accept k, m and g suffixes. Bad settings exit with status 2.\n\n",
            program, SEED_DEFAULT_USERS, SEED_DEFAULT_ARTICLES);
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting *s = &settings[i];
        fprintf(out, "  --%-26s %s\n      %s (default: %s)\n", s->flag, s->variable, s->help,
                s->default_value[0] != '\0' ? s->default_value : "empty");
    }
    fprintf(out, "\n  --help                     this text\n  --version                  print the version\n");
}
