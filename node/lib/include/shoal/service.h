/* node/lib/include/shoal/service.h (<shoal/service.h>, included by <shoal/shoal.h>): a
 * service described once and run as a whole node by one call.
 *
 *     static const shoal_service service = {.name = "hello", .version = "1.0.0", .setup = setup};
 *     int main(int argc, char **argv) { return shoal_main(&service, argc, argv); }
 *
 * shoal_main does what a node does (docs/extending.md, docs/operations.md):
 *   - settings: the library's table and the service's (<shoal/settings.h>)
 *     from the environment and the flags; --help lists them by owner,
 *     --version prints "<name> <version> (libshoal <version>)";
 *   - commands: `serve` (the default), `migrate`, `errors` (every error
 *     code the node may answer, "status<TAB>code<TAB>module" a line: the
 *     library's tables, then the service's), and the service's own;
 *   - serve: waits for PostgreSQL and applies the migrations (unless
 *     --migrate=false), checks the PostgreSQL connection budget, starts the
 *     tier monitor, loads the standard extensions (below), the service's
 *     extensions, then runs setup; subscribes to cache invalidations,
 *     opens the workers' connections, serves the public and the admin
 *     listener, turns ready, and on SIGTERM drains (readiness 503 for
 *     --drain-delay-ms, then in-flight requests get --grace-period-ms) and
 *     exits 0.
 * Exit statuses: 0; 1 when start-up, migrations or a command fail; 2 for a
 * bad setting, an unknown flag or command (with a message that names it);
 * 70 when the service itself is malformed (a flag declared twice, a name
 * that is not [a-z][a-z0-9_-]*, an unknown replacement, a component twice,
 * an enabled_by that names no boolean setting, an error code declared
 * twice or malformed, a redis_prefix that is not a key prefix, a default
 * for no setting or one that does not parse).
 *
 * Every field but name may be left out. The struct only grows at its end,
 * so designated initializers keep compiling. */
#ifndef SHOAL_SERVICE_H
#define SHOAL_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include <shoal/settings.h>
#include <shoal/shoal.h>
#include <shoal/store.h>

/* The standard extensions, loaded in this order (which is their hooks'
 * order: docs/extending.md) unless switched off (shoal_service's
 * standard_off) or replaced (its replace). Bits, for standard_off. */
typedef enum shoal_standard {
    SHOAL_STANDARD_REQUEST_ID = 1u << 0,       /* "request-id": X-Request-ID */
    SHOAL_STANDARD_SECURITY_HEADERS = 1u << 1, /* "security_headers" */
    SHOAL_STANDARD_CORS = 1u << 2,             /* "cors" */
    SHOAL_STANDARD_RATE_LIMIT = 1u << 3,       /* "rate-limit": --rate-limits */
    SHOAL_STANDARD_SESSION = 1u << 4,          /* "session": Authorization: Token */
    SHOAL_STANDARD_IDEMPOTENCY = 1u << 5,      /* "idempotency": Idempotency-Key */
    SHOAL_STANDARD_HEALTH = 1u << 6,           /* "health": /healthz, /readyz */
    SHOAL_STANDARD_METRICS = 1u << 7,          /* "metrics": /metrics */
} shoal_standard;

/* A component's migrations (a service, or a part of one): its own ordered
 * sequence, versioned apart from every other component's and recorded in
 * shoal_migrations (component, version, name, applied_at). shoal_main
 * applies every enabled set by `migrate` and at start, under one advisory
 * lock (store_migrate_sets, <shoal/store.h>). shoal_add_migrations (CMake)
 * or embed_migrations.cmake (pkg-config: docs/extending.md) makes one from
 * a folder of NNNN_name.sql files; a C array does as well:
 *
 *     static const store_migration list[] = {{1, "greetings", "CREATE TABLE greetings (...);"}};
 *     static const shoal_migrations hello_migrations = {.list = list, .count = 1};
 */
typedef struct shoal_migrations {
    const char *component;       /* [a-z][a-z0-9_-]{0,31}; NULL: the service's name */
    const store_migration *list; /* ascending versions */
    size_t count;
    /* The rows of a pre-0.2 schema_migrations (store_migrate's single
     * sequence) that stand for this set's versions: adopted, not run. */
    const store_migration_adopt *adopt;
    size_t adopt_count;
    /* A boolean setting's flag ("api"): when it is false the set is not
     * applied (its legacy rows are still adopted). NULL: always applied. */
    const char *enabled_by;
} shoal_migrations;

/* A command of the service's own: `<program> NAME [--flag value]...`. Its
 * flags table (variables NULL) is parsed with the node's settings for this
 * command only; other commands refuse its flags. */
typedef struct shoal_service_command {
    const char *name;              /* "seed" */
    const char *summary;           /* --help, one or two lines */
    const shoal_settings *flags;   /* NULL: none */
    bool migrate_first;            /* wait for PostgreSQL and migrate first, unless --migrate=false */
    /* The exit status. config is the node's settings; values holds every
     * table's (shoal_settings_of(values, flags) is the command's own). */
    int (*run)(const shoal_config *config, const shoal_settings_values *values, void *data);
    void *data;
} shoal_service_command;

typedef struct shoal_service {
    const char *name;    /* [a-z][a-z0-9_-]{0,31}: --version, --help */
    const char *version; /* the service's own: "1.0.0" */
    /* Registers the service's blueprints, routes, hooks and extensions.
     * It runs as an extension named after the service, after every other
     * extension: 0, or -1 (say why with shoal_app_fail) and the node does
     * not start. */
    int (*setup)(shoal_app *app, void *data);
    void *data;
    /* Its settings tables, NULL-terminated; shoal_app_settings(app, table)
     * reads each one's values. */
    const shoal_settings *const *settings;
    /* Its migrations, NULL-terminated, one set per component (a service
     * composed of parts brings one for each); NULL: none (the node then
     * neither waits for PostgreSQL at start nor migrates). */
    const shoal_migrations *const *migrations;
    /* Commands besides serve and migrate, NULL-terminated. */
    const shoal_service_command *const *commands;
    /* Extensions loaded after the standard ones and before setup,
     * NULL-terminated. */
    const shoal_extension *const *extensions;
    /* Standard extensions left out: SHOAL_STANDARD_CORS | ... */
    unsigned standard_off;
    /* Replacements, NULL-terminated: each is loaded in place of the
     * standard extension of the same name ("cors"). */
    const shoal_extension *const *replace;
    /* Its error codes' tables (<shoal/errors.h>), NULL-terminated: the
     * `errors` command lists them after the library's. Each code is
     * declared once over all of them and the library's. */
    const shoal_error_table *const *errors;
    /* The default of --redis-prefix (SHOAL_REDIS_PREFIX): put before every
     * Redis key of the node (sessions, rate limits, idempotency keys,
     * cache-aside) and its invalidation channel, so that services on one
     * Redis never read or clear each other's. NULL: "<name>:"; "" keeps
     * 0.1's layout (shoal-node, so that its sessions outlive an upgrade).
     * At most 40 bytes of [A-Za-z0-9_.:-]. */
    const char *redis_prefix;
    /* Defaults it sets for settings of other tables (a standard
     * extension's, the library's), NULL-terminated: parsed over the
     * tables' own defaults and shown by --help; the environment and the
     * flags still win. shoal-node: {{"rate-limits", SHOAL_CONDUIT_RATE_LIMITS},
     * {NULL, NULL}}. A flag the node does not have, or a value that does
     * not parse, exits 70. */
    const shoal_setting_default *defaults;
} shoal_service;

/* Runs the node (or a command, --help, --version) and returns the exit
 * status, for main to return. Reads the environment with getenv; writes
 * help and version to stdout, errors to stderr, the log to stderr. */
int shoal_main(const shoal_service *service, int argc, char **argv);

#endif
