/* node/lib/include/shoal/config.h: the core's settings, from flags and the environment.
 *
 * Each setting has a flag (--port) and an environment variable
 * (SHOAL_PORT; DATABASE_URL and REDIS_URL keep their usual names). The
 * environment is read first, flags override it. One table drives parsing,
 * validation and --help, so a setting cannot exist in one and not the
 * others (node/lib/config.c; the tables' format and the parser:
 * <shoal/settings.h>, node/lib/settings.c). A service's own settings come in
 * tables of its own, joined to these by shoal_main (<shoal/service.h>); so
 * do the standard extensions (--cors-origins, --rate-limits, --session-ttl,
 * --idempotency-ttl, --security-headers: node/lib/ext/ headers) and password
 * hashing (--password-*: node/lib/include/shoal/password.h), whose values an app reads with
 * shoal_app_settings. */
#ifndef SHOAL_CONFIG_H
#define SHOAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <shoal/cache.h>
#include <shoal/settings.h>
#include <shoal/store.h>

typedef enum shoal_command {
    SHOAL_COMMAND_SERVE,   /* default: migrate (unless disabled) and serve */
    SHOAL_COMMAND_MIGRATE, /* `shoal-node migrate`: apply migrations, exit */
    SHOAL_COMMAND_SEED,    /* `shoal-node seed`: migrate (unless disabled), fill a data set, exit */
    SHOAL_COMMAND_HELP,    /* --help */
    SHOAL_COMMAND_VERSION, /* --version */
} shoal_command;

/* --max-in-flight's default per worker thread. A thread runs one request at
 * a time and parks the others while they wait on PostgreSQL (docs/engine.md);
 * more in flight than this per thread is queueing, better done in HAProxy's
 * queue, where a request can still go to any node. */
#define SHOAL_IN_FLIGHT_PER_THREAD 32
#define SHOAL_IN_FLIGHT_PER_THREAD_TEXT "32"
/* ... and at least this per node: a node has a worker per CPU, and one of 1
 * or 2 CPUs still parks many requests at once on its tiers; below this a
 * burst no bigger than HAProxy's maxconn to it (96) would be shed. */
#define SHOAL_IN_FLIGHT_MIN 128
#define SHOAL_IN_FLIGHT_MIN_TEXT "128"

/* --redis-prefix's bound (CACHE_KEY_PREFIX_MAX), for --help. */
#define SHOAL_REDIS_PREFIX_MAX_TEXT "40"
/* --session-prefix's default: whatever --redis-prefix is. Not a valid
 * prefix itself ('@'), so it never names one. */
#define SHOAL_SESSION_PREFIX_SAME "@redis-prefix"

typedef struct shoal_config {
    shoal_command command;

    /* HTTP */
    char *bind_address;
    int port;
    char *admin_bind_address; /* "" = bind_address */
    int admin_port;           /* the admin listener: /healthz, /readyz, /metrics */
    int threads;
    int max_connections;
    int listen_backlog;
    int connection_timeout_s;
    size_t fiber_stack_bytes; /* each request's stack on the public listener (docs/engine.md) */
    size_t max_header_bytes;
    size_t max_body_bytes;
    int max_json_depth;
    char *trusted_proxies; /* addresses and CIDRs whose X-Forwarded-For is believed */

    /* overload (node/lib/overload.c) */
    int request_deadline_ms; /* a request's budget from its arrival; 0: none */
    int max_in_flight;       /* requests at once before new ones get 503; 0 at load: per thread */

    /* lifecycle */
    char *node_name;
    int drain_delay_ms;
    int grace_period_ms;
    int startup_timeout_s; /* how long to wait for PostgreSQL at start */
    bool migrate;
    bool strict; /* refuse to start past the PostgreSQL connection budget (node/lib/include/shoal/budget.h) */

    /* logging */
    int access_log_sample; /* 0 = off, 1 = every request, N = one in N */

    /* shared tiers */
    char *database_url; /* libpq conninfo or URI; "" = libpq's PG* variables */
    int database_connect_timeout_s;
    int database_timeout_ms;
    int database_statement_timeout_ms; /* PostgreSQL's statement_timeout; 0: none */
    int database_spill_after_ms;       /* a worker's pipe spills past this (store_config.spill_after_ms); 0: never */
    char *redis_url;
    int redis_timeout_ms;
    char *redis_prefix;   /* before every key and the channel (cache.h); shoal_main: the service's */
    char *session_prefix; /* sessions' keys; after loading never SHOAL_SESSION_PREFIX_SAME */
    char *cache_url; /* "" = the same instance as redis_url */
    int l1_entries;  /* 0 = no L1 */
    size_t l1_bytes;
    int l1_ttl_ms;
    int cache_stale_if_error_ms; /* a stale copy answers a failed fill this long; 0: never */

    /* Every other table's values that shoal_config_load parsed (the
     * standard extensions', password hashing's, and those given to
     * shoal_config_load_with); shoal_app_new hands them to the app, where
     * shoal_app_settings reads them. NULL when the config was not loaded
     * so (shoal_main gives the app its own). */
    const shoal_settings_values *settings;
} shoal_config;

/* Looks up an environment variable; getenv fits. */
typedef const char *(*shoal_config_env_fn)(const char *name);

/* Fills config from env then argv (argv[0] is the program name; an optional
 * first word `serve`, `migrate` or `seed` selects the command): the core's
 * settings, and into config->settings those of the library's other tables
 * (the standard extensions', password hashing's). Returns 0, or -1 with a
 * message naming the setting and the problem in error. Strings in config
 * are heap copies: release them with shoal_config_free. For a node built
 * by hand; shoal_main does this itself. */
int shoal_config_load(shoal_config *config, int argc, char **argv, shoal_config_env_fn env,
                      char *error, size_t error_size);

/* As shoal_config_load, with more tables (NULL-terminated, e.g. a
 * service's) and defaults over the tables' own (NULL-terminated, as
 * shoal_service's defaults). */
int shoal_config_load_with(shoal_config *config, const shoal_settings *const *tables,
                           const shoal_setting_default *defaults, int argc, char **argv, shoal_config_env_fn env,
                           char *error, size_t error_size);

void shoal_config_free(shoal_config *config);

/* The settings of each worker's (and the tier monitor's) connections; the
 * strings point into config. */
store_config shoal_config_store(const shoal_config *config);
cache_config shoal_config_cache(const shoal_config *config);
/* The instance for cache-aside and invalidation: cache_url, or the
 * sessions' instance when it is empty. */
cache_config shoal_config_cache_tier(const shoal_config *config);
/* True when the cache lives in another instance than sessions (another
 * host, port or database): workers then hold two Redis connections. */
bool shoal_config_cache_separate(const shoal_config *config);

/* The --help text: every flag, its variable, its default and what it does. */
void shoal_config_usage(FILE *out, const char *program);

#endif
