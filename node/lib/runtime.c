/* node/lib/runtime.c: shoal_main, a whole node (or one of its commands) from a
 * service's description (<shoal/service.h>). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shoal/version.h>

#include <shoal/budget.h>
#include <shoal/config.h>
#include <shoal/ext/cors.h>
#include <shoal/ext/idempotency.h>
#include <shoal/ext/rate_limit.h>
#include <shoal/ext/request_id.h>
#include <shoal/ext/security_headers.h>
#include <shoal/ext/session.h>
#include <shoal/health.h>
#include <shoal/http.h>
#include <shoal/l1.h>
#include <shoal/log.h>
#include <shoal/metrics.h>
#include <shoal/service.h>
#include <shoal/store.h>

#include "clock.h"
#include "config_tables.h"
#include "context.h"
#include "errors_internal.h"
#include "http_internal.h"
#include "settings_engine.h"

/* A malformed service: a bug in the program, not a bad setting (sysexits'
 * EX_SOFTWARE). */
#define EXIT_SERVICE_MALFORMED 70
#define EXIT_BAD_SETTING 2
#define STANDARD_COUNT 8

static void sleep_ms(int milliseconds)
{
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

static const char *environment(const char *name)
{
    return getenv(name);
}

/* ---- what the service declares ------------------------------------------ */

static size_t count_of(const void *const *list)
{
    size_t count = 0;
    while (list != NULL && list[count] != NULL)
        count++;
    return count;
}

static const char *const standard_names[STANDARD_COUNT] = {
    "request-id", "security_headers", "cors", "rate-limit", "session", "idempotency", "health", "metrics",
};

static bool valid_name(const char *name)
{
    if (name == NULL || !(name[0] >= 'a' && name[0] <= 'z') || strlen(name) > 32)
        return false;
    for (const char *c = name; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return false;
    return true;
}

/* The component a set records its versions under. */
static const char *component_of(const shoal_service *service, const shoal_migrations *set)
{
    return set->component != NULL ? set->component : service->name;
}

/* The boolean setting flag names among the service's tables and the
 * core's, or NULL. */
static const shoal_setting *boolean_setting(const shoal_service *service, const char *flag,
                                            const shoal_settings **owner)
{
    size_t tables = count_of((const void *const *)service->settings);
    for (size_t i = 0; i <= tables; i++) {
        const shoal_settings *settings = i < tables ? service->settings[i] : &shoal_config_settings;
        const shoal_setting *setting = shoal_settings_find(settings, flag, strlen(flag));
        if (setting != NULL) {
            *owner = settings;
            return setting->type == SHOAL_SETTING_BOOL ? setting : NULL;
        }
    }
    return NULL;
}

static int check_migrations(const shoal_service *service, char *error, size_t error_size)
{
    for (size_t i = 0; service->migrations != NULL && service->migrations[i] != NULL; i++) {
        const shoal_migrations *set = service->migrations[i];
        const char *component = component_of(service, set);
        const shoal_settings *owner = NULL;
        if (!valid_name(component) || (set->count > 0 && set->list == NULL)) {
            snprintf(error, error_size, "migrations: component '%s' needs a name ([a-z][a-z0-9_-]*) and a list",
                     component);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(component_of(service, service->migrations[j]), component) == 0) {
                snprintf(error, error_size, "migrations: component '%s' is declared twice", component);
                return -1;
            }
        if (set->enabled_by != NULL && boolean_setting(service, set->enabled_by, &owner) == NULL) {
            snprintf(error, error_size, "migrations of %s: enabled_by '%s' is not a boolean setting", component,
                     set->enabled_by);
            return -1;
        }
    }
    return 0;
}

/* ---- error codes ----------------------------------------------------------- */

/* The service's replacement for the standard extension at s, or NULL.
 * The one place a replacement is matched by name (shoal_service's replace
 * is declared so); only at start, never per request. */
static const shoal_extension *replacement_of(const shoal_service *service, size_t s)
{
    for (size_t i = 0; service->replace != NULL && service->replace[i] != NULL; i++)
        if (service->replace[i]->name != NULL && strcmp(service->replace[i]->name, standard_names[s]) == 0)
            return service->replace[i];
    return NULL;
}

/* Each code's table: the library's (the standard extensions' when loaded
 * as the library's, not switched off or replaced), then the service's.
 * A replacement's codes are the service's to list. NULL when memory ran
 * out. */
static const shoal_error_table **error_tables(const shoal_service *service, size_t *count)
{
    /* standard: the bit of the standard extension that answers them, whose
     * index in standard_names is its log2; 0: always (the core, the tiers,
     * password hashing). */
    static const struct {
        unsigned standard;
        const shoal_error_table *table;
    } library[] = {
        {0, &shoal_core_errors},
        {0, &shoal_tier_errors},
        {0, &shoal_password_errors},
        {SHOAL_STANDARD_RATE_LIMIT, &shoal_rate_limit_errors},
        {SHOAL_STANDARD_SESSION, &shoal_session_errors},
        {SHOAL_STANDARD_IDEMPOTENCY, &shoal_idempotency_errors},
    };
    size_t library_count = sizeof library / sizeof library[0];
    size_t own = count_of((const void *const *)service->errors);
    const shoal_error_table **tables = calloc(library_count + own + 1, sizeof *tables);
    if (tables == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < library_count; i++) {
        unsigned standard = library[i].standard;
        bool loaded = (service->standard_off & standard) == 0;
        for (size_t s = 0; standard != 0 && s < STANDARD_COUNT; s++)
            if (standard == 1u << s)
                loaded = loaded && replacement_of(service, s) == NULL;
        if (loaded)
            tables[n++] = library[i].table;
    }
    for (size_t i = 0; i < own; i++)
        tables[n++] = service->errors[i];
    *count = n;
    return tables;
}

static int check_errors(const shoal_service *service, char *error, size_t error_size)
{
    size_t count = 0;
    const shoal_error_table **tables = error_tables(service, &count);
    if (tables == NULL) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    int rc = shoal_error_tables_check(tables, count, error, error_size);
    free(tables);
    return rc;
}

/* `errors`: what docs/api.md's table is checked against
 * (tests/unit/docs/error_codes_test.py). */
static int run_errors(const shoal_config *config, const shoal_settings_values *values, void *data)
{
    (void)config;
    (void)values;
    size_t count = 0;
    const shoal_error_table **tables = error_tables(data, &count);
    if (tables == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    shoal_error_tables_print(stdout, tables, count);
    free(tables);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* Whatever is wrong with the service itself, before any setting is read. */
static int check_service(const shoal_service *service, char *error, size_t error_size)
{
    if (!valid_name(service->name)) {
        snprintf(error, error_size, "the service's name '%s' is not [a-z][a-z0-9_-]{0,31}",
                 service->name != NULL ? service->name : "(none)");
        return -1;
    }
    if (check_migrations(service, error, error_size) != 0)
        return -1;
    for (size_t i = 0; service->commands != NULL && service->commands[i] != NULL; i++) {
        const shoal_service_command *command = service->commands[i];
        if (!valid_name(command->name) || command->run == NULL || strcmp(command->name, "serve") == 0 ||
            strcmp(command->name, "migrate") == 0 || strcmp(command->name, "errors") == 0) {
            snprintf(error, error_size, "command '%s': needs a name of its own ([a-z][a-z0-9_-]*) and run",
                     command->name != NULL ? command->name : "(none)");
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(service->commands[j]->name, command->name) == 0) {
                snprintf(error, error_size, "command '%s' is declared twice", command->name);
                return -1;
            }
        for (size_t f = 0; command->flags != NULL && f < command->flags->count; f++)
            if (command->flags->table[f].variable != NULL) {
                snprintf(error, error_size, "command '%s': --%s has a variable; a command's flags have none",
                         command->name, command->flags->table[f].flag);
                return -1;
            }
    }
    char reason[160];
    if (cache_key_prefix_check(service->redis_prefix, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "redis_prefix: %s", reason);
        return -1;
    }
    for (size_t i = 0; service->replace != NULL && service->replace[i] != NULL; i++) {
        const char *name = service->replace[i]->name;
        bool known = false;
        for (size_t s = 0; s < STANDARD_COUNT && name != NULL; s++)
            known = known || strcmp(name, standard_names[s]) == 0;
        if (!known) {
            snprintf(error, error_size, "replace: '%s' is not the name of a standard extension",
                     name != NULL ? name : "(none)");
            return -1;
        }
    }
    return check_errors(service, error, error_size);
}

/* ---- the Redis key prefix ------------------------------------------------------- */

/* The service's default of --redis-prefix: its redis_prefix, or its name
 * and a colon (a valid name makes a valid prefix). */
static void service_redis_prefix(const shoal_service *service, char out[CACHE_KEY_PREFIX_MAX + 1])
{
    if (service->redis_prefix != NULL)
        snprintf(out, CACHE_KEY_PREFIX_MAX + 1, "%s", service->redis_prefix);
    else
        snprintf(out, CACHE_KEY_PREFIX_MAX + 1, "%s:", service->name);
}

/* Over the tables' own defaults, before the environment and the flags:
 * the service's --redis-prefix, then its defaults. A default for a flag
 * the node does not have, or one that does not parse, is the service's
 * bug. */
static int apply_service_defaults(const shoal_service *service, const settings_group *groups, size_t count,
                                  char *error, size_t error_size)
{
    char prefix[CACHE_KEY_PREFIX_MAX + 1];
    service_redis_prefix(service, prefix);
    const shoal_setting_default redis_prefix[] = {{"redis-prefix", prefix}, {NULL, NULL}};
    return shoal_settings_overrides(groups, count, redis_prefix, "the service's redis_prefix", error, error_size) == 0
               ? shoal_settings_overrides(groups, count, service->defaults, "the service's default", error, error_size)
               : -1;
}

/* The default --help shows for a setting: the service's, or the table's. */
static const char *shown_default(const shoal_service *service, const shoal_setting *setting, const char *prefix)
{
    if (strcmp(setting->flag, "redis-prefix") == 0)
        return prefix;
    const char *value = setting->default_value;
    for (size_t d = 0; service->defaults != NULL && service->defaults[d].flag != NULL; d++)
        if (strcmp(service->defaults[d].flag, setting->flag) == 0)
            value = service->defaults[d].value;
    return value;
}

/* A table as --help shows it to this service's users: with the defaults
 * the service set (its --redis-prefix, its defaults). */
static void print_settings(FILE *out, const shoal_service *service, const shoal_settings *settings)
{
    shoal_setting *table = malloc((settings->count > 0 ? settings->count : 1) * sizeof *table);
    if (table == NULL) {
        shoal_settings_print(out, settings, "  ");
        return;
    }
    memcpy(table, settings->table, settings->count * sizeof *table);
    char prefix[CACHE_KEY_PREFIX_MAX + 1];
    service_redis_prefix(service, prefix);
    for (size_t i = 0; i < settings->count; i++)
        table[i].default_value = shown_default(service, &table[i], prefix);
    shoal_settings shown = *settings;
    shown.table = table;
    shoal_settings_print(out, &shown, "  ");
    free(table);
}

/* The core's table writes into the node's config; every other table gets
 * a struct of its own. */
static bool in_core_config(const shoal_settings *settings)
{
    return settings == &shoal_config_settings;
}

/* The standard extensions in their order (the health extension, made
 * per tier monitor, has no settings: NULL here). */
static const shoal_extension *const standard_extensions[STANDARD_COUNT] = {
    &shoal_request_id_extension, &shoal_security_headers_extension, &shoal_cors_extension,
    &shoal_rate_limit_extension, &shoal_session_extension,          &shoal_idempotency_extension,
    NULL,                        &shoal_metrics_extension,
};

/* The standard extension in place at s (the service's replacement, or
 * the library's), or NULL when switched off or made at serve time. */
static const shoal_extension *standard_in_place(const shoal_service *service, size_t s)
{
    if (service->standard_off & (1u << s))
        return NULL;
    const shoal_extension *replacement = replacement_of(service, s);
    return replacement != NULL ? replacement : standard_extensions[s];
}

/* Every table: the service's, the library's, then the command's flags
 * (only parsed when command is that command). */
typedef struct node_settings {
    shoal_config config;
    settings_group *groups;
    size_t count;   /* parsed with the chosen command */
    size_t checked; /* count, and every command's flags, for the duplicate check */
    shoal_settings_values values;
} node_settings;

static void node_settings_free(node_settings *node)
{
    if (node->groups == NULL)
        return;
    shoal_settings_release(node->groups, node->checked);
    for (size_t g = 0; g < node->checked; g++)
        if (node->groups[g].values != &node->config)
            free(node->groups[g].values);
    free(node->groups);
    node->groups = NULL;
}

/* Lays out the groups: the service's tables, the core's, the chosen
 * command's flags; then every other command's flags after count, for the
 * duplicate check only. */
static int node_settings_make(node_settings *node, const shoal_service *service,
                              const shoal_service_command *chosen, char *error, size_t error_size)
{
    memset(node, 0, sizeof *node);
    size_t tables = count_of((const void *const *)service->settings);
    size_t commands = count_of((const void *const *)service->commands);
    size_t extensions = count_of((const void *const *)service->extensions);
    node->groups = calloc(tables + 1 + STANDARD_COUNT + extensions + commands, sizeof *node->groups);
    if (node->groups == NULL)
        goto out_of_memory;
    size_t n = 0;
    for (size_t i = 0; i < tables; i++)
        node->groups[n++].settings = service->settings[i];
    node->groups[n++].settings = &shoal_config_settings;
    /* The extensions' own tables: those loaded, in their load order. */
    for (size_t s = 0; s < STANDARD_COUNT; s++) {
        const shoal_extension *extension = standard_in_place(service, s);
        if (extension != NULL && extension->settings != NULL)
            node->groups[n++].settings = extension->settings;
    }
    for (size_t i = 0; i < extensions; i++)
        if (service->extensions[i]->settings != NULL)
            node->groups[n++].settings = service->extensions[i]->settings;
    if (chosen != NULL && chosen->flags != NULL)
        node->groups[n++].settings = chosen->flags;
    node->count = n;
    for (size_t i = 0; i < commands; i++)
        if (service->commands[i] != chosen && service->commands[i]->flags != NULL)
            node->groups[n++].settings = service->commands[i]->flags;
    node->checked = n;
    for (size_t g = 0; g < n; g++) {
        const shoal_settings *settings = node->groups[g].settings;
        if (in_core_config(settings)) {
            node->groups[g].values = &node->config;
            continue;
        }
        node->groups[g].values = calloc(1, settings->size > 0 ? settings->size : 1);
        if (node->groups[g].values == NULL)
            goto out_of_memory;
    }
    node->values = (shoal_settings_values){node->groups, node->count};
    return 0;
out_of_memory:
    snprintf(error, error_size, "out of memory");
    node_settings_free(node);
    return -1;
}

/* ---- --help and --version -------------------------------------------------- */

static const char *program_name(int argc, char **argv, const shoal_service *service)
{
    if (argc < 1 || argv[0] == NULL || argv[0][0] == '\0')
        return service->name;
    const char *slash = strrchr(argv[0], '/');
    return slash != NULL ? slash + 1 : argv[0];
}

static void print_usage(FILE *out, const char *program, const shoal_service *service, const node_settings *node)
{
    fprintf(out, "Usage: %s [serve|migrate", program);
    for (size_t i = 0; service->commands != NULL && service->commands[i] != NULL; i++)
        fprintf(out, "|%s", service->commands[i]->name);
    fprintf(out,
            "] [--option value]...\n"
            "\n"
            "  serve    (default) apply migrations unless --migrate=false, then serve HTTP\n"
            "  migrate  apply database migrations and exit\n"
            "  errors   print every error code the node may answer (status, code, module) and exit\n");
    for (size_t i = 0; service->commands != NULL && service->commands[i] != NULL; i++) {
        const shoal_service_command *command = service->commands[i];
        fprintf(out, "  %-8s %s%s\n", command->name, command->summary != NULL ? command->summary : "",
                command->flags != NULL && command->flags->count > 0 ? "; its flags:" : "");
        if (command->flags != NULL)
            shoal_settings_print(out, command->flags, "    ");
    }
    fprintf(out, "\n"
                 "Every option can also be set by its environment variable; flags win.\n"
                 "Sizes accept k, m and g suffixes. Bad settings exit with status 2.\n");
    /* The service's own first: what its user looks for. */
    for (size_t g = 0; g < node->count; g++) {
        const shoal_settings *settings = node->groups[g].settings;
        bool command_flags = false;
        for (size_t i = 0; service->commands != NULL && service->commands[i] != NULL; i++)
            command_flags = command_flags || service->commands[i]->flags == settings;
        if (command_flags)
            continue;
        if (settings == &shoal_config_settings)
            fprintf(out, "\nlibshoal %s (every node):\n", shoal_version());
        else
            fprintf(out, "\n%s:\n", settings->owner != NULL ? settings->owner : service->name);
        print_settings(out, service, settings);
    }
    fprintf(out, "\n  --help                     this text\n  --version                  print the version\n");
}

static void print_version(FILE *out, const shoal_service *service)
{
    const char *version = service->version != NULL && service->version[0] != '\0' ? service->version : "";
    fprintf(out, "%s%s%s (libshoal %s)\n", service->name, version[0] != '\0' ? " " : "", version, shoal_version());
}

/* ---- migrations -------------------------------------------------------------- */

typedef enum migrate_outcome { MIGRATED, MIGRATE_FAILED, MIGRATE_INTERRUPTED } migrate_outcome;

static bool has_migrations(const shoal_service *service)
{
    return count_of((const void *const *)service->migrations) > 0;
}

/* A set whose enabled_by setting is false (a part switched off: shoal-node
 * --api=false) is declared but not applied. */
static bool set_enabled(const shoal_service *service, const shoal_migrations *set, const node_settings *node)
{
    const shoal_settings *owner = NULL;
    const shoal_setting *setting = set->enabled_by != NULL ? boolean_setting(service, set->enabled_by, &owner) : NULL;
    if (setting == NULL)
        return true;
    for (size_t g = 0; g < node->count; g++)
        if (node->groups[g].settings == owner)
            return *(const bool *)((const char *)node->groups[g].values + setting->offset);
    return true;
}

/* "conduit 2, techempower 1 (off)" */
static void describe(char *out, size_t size, const store_migration_set *sets, const store_migrate_report *reports,
                     size_t count)
{
    size_t length = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count && length < size; i++) {
        int n = snprintf(out + length, size - length, "%s%s %d%s", i > 0 ? ", " : "", sets[i].component,
                         reports[i].current_version, sets[i].skip ? " (off)" : "");
        if (n < 0)
            break;
        length += (size_t)n;
    }
}

/* Nodes may start before PostgreSQL accepts connections (compose starts
 * them together); wait for it up to the startup timeout. While waiting, a
 * stop signal (when stop_signals is given and blocked) ends the wait at once
 * instead of after the timeout. */
static migrate_outcome migrate(const shoal_service *service, const node_settings *node,
                               const sigset_t *stop_signals)
{
    const shoal_config *config = &node->config;
    size_t count = count_of((const void *const *)service->migrations);
    store_migration_set *sets = calloc(count, sizeof *sets);
    store_migrate_report *reports = calloc(count, sizeof *reports);
    if (sets == NULL || reports == NULL) {
        free(sets);
        free(reports);
        shoal_log(SHOAL_LOG_ERROR, "migrate", "out of memory");
        return MIGRATE_FAILED;
    }
    for (size_t i = 0; i < count; i++) {
        const shoal_migrations *set = service->migrations[i];
        sets[i] = (store_migration_set){
            .component = component_of(service, set),
            .list = set->list,
            .count = set->count,
            .adopt = set->adopt,
            .adopt_count = set->adopt_count,
            .skip = !set_enabled(service, set, node),
        };
    }
    store_config store = shoal_config_store(config);
    uint64_t deadline = shoal_monotonic_ms() + (uint64_t)config->startup_timeout_s * 1000u;
    migrate_outcome outcome = MIGRATE_FAILED;
    for (;;) {
        char error[512] = "";
        store_status status = store_migrate_sets(&store, sets, count, reports, error, sizeof error);
        if (status == STORE_OK) {
            char schema[384];
            int applied = 0, adopted = 0;
            for (size_t i = 0; i < count; i++) {
                applied += reports[i].applied;
                adopted += reports[i].adopted;
            }
            describe(schema, sizeof schema, sets, reports, count);
            if (adopted > 0)
                shoal_log(SHOAL_LOG_INFO, "migrate", "schema: %s (%d applied now, %d adopted from schema_migrations)",
                          schema, applied, adopted);
            else
                shoal_log(SHOAL_LOG_INFO, "migrate", "schema: %s (%d applied now)", schema, applied);
            outcome = MIGRATED;
            break;
        }
        if (status == STORE_ERROR || shoal_monotonic_ms() >= deadline) {
            shoal_log(SHOAL_LOG_ERROR, "migrate", "%s", error);
            break;
        }
        shoal_log(SHOAL_LOG_WARNING, "migrate", "waiting for PostgreSQL: %s", error);
        if (stop_signals == NULL) {
            sleep_ms(500);
            continue;
        }
        struct timespec pause = {0, 500 * 1000 * 1000};
        int received = sigtimedwait(stop_signals, NULL, &pause);
        if (received > 0) {
            shoal_log(SHOAL_LOG_INFO, "stop", "signal %d while waiting for PostgreSQL", received);
            outcome = MIGRATE_INTERRUPTED;
            break;
        }
    }
    free(sets);
    free(reports);
    return outcome;
}

/* ---- serve --------------------------------------------------------------------- */

/* The standard extensions in their order, less those switched off, with
 * the service's replacements in place. Order matters: the request id comes
 * first so that every later hook, and the access log, sees it. CORS answers
 * preflights before anything is counted; rate limits come before
 * idempotency keys, so a replay counts as a request. Sessions only reserve
 * state here (and start libsodium); they are looked up when a handler asks. */
static int load_standard(shoal_app *app, const shoal_service *service, shoal_tier_monitor *monitor)
{
    const shoal_extension health = shoal_health_extension(monitor);
    for (size_t s = 0; s < STANDARD_COUNT; s++) {
        if (service->standard_off & (1u << s))
            continue;
        const shoal_extension *extension = standard_in_place(service, s);
        if (extension == NULL)
            extension = &health; /* not replaced: the library's, made for this monitor */
        if (shoal_app_extend(app, extension) != 0)
            return -1;
    }
    return 0;
}

static int setup(shoal_app *app, const shoal_service *service, shoal_tier_monitor *monitor)
{
    if (load_standard(app, service, monitor) != 0)
        return -1;
    for (size_t i = 0; service->extensions != NULL && service->extensions[i] != NULL; i++)
        if (shoal_app_extend(app, service->extensions[i]) != 0)
            return -1;
    if (service->setup == NULL)
        return 0;
    const shoal_extension own = {.name = service->name, .init = service->setup, .data = service->data};
    return shoal_app_extend(app, &own);
}

/* Opens every worker's connections before the node turns ready, within
 * the startup timeout; a tier that cannot be reached is left for the
 * workers' first requests, as it would be after an outage. */
static int warm_workers(shoal_app *app, const shoal_config *config, uint64_t startup_deadline, bool skip_postgres,
                        bool *postgres_warm)
{
    uint64_t started = shoal_monotonic_ms();
    shoal_warm_report report;
    if (shoal_app_warm_workers(app, config->threads, startup_deadline, skip_postgres, &report) != 0)
        return -1;
    *postgres_warm = report.postgres == report.workers;
    unsigned long long took = (unsigned long long)(shoal_monotonic_ms() - started);
    if (report.postgres == report.workers && report.redis == report.workers) {
        shoal_log(SHOAL_LOG_INFO, "warm", "%d workers connected to PostgreSQL (statements prepared) and Redis in %llu ms",
                  report.workers, took);
        return 0;
    }
    const char *postgres_reason = skip_postgres ? "not reachable at start" : report.postgres_error;
    shoal_log(SHOAL_LOG_WARNING, "warm",
              "of %d workers %d connected to PostgreSQL and %d to Redis in %llu ms%s%s%s; the others connect on "
              "their first request",
              report.workers, report.postgres, report.redis, took,
              report.timed_out ? " (the startup timeout ran out)" : "",
              postgres_reason[0] != '\0' ? "; PostgreSQL: " : "", postgres_reason);
    return 0;
}

/* Waits for SIGTERM or SIGINT; returns the signal. */
static int wait_for_stop(const sigset_t *signals)
{
    for (;;) {
        int received = 0;
        if (sigwait(signals, &received) == 0)
            return received;
    }
}

/* SIGTERM: readiness turns 503 now, serving goes on for the drain delay so
 * that HAProxy's health checks take the node out, then the listener closes
 * and in-flight requests get the grace period. SIGINT (or a second signal)
 * skips what is left of the drain delay. */
static void drain(shoal_http *http, shoal_app *app, const shoal_config *config, const sigset_t *signals,
                  int first_signal)
{
    shoal_app_set_readiness(app, SHOAL_DRAINING);
    if (first_signal == SIGTERM && config->drain_delay_ms > 0) {
        shoal_log(SHOAL_LOG_INFO, "drain", "SIGTERM: draining for %d ms", config->drain_delay_ms);
        struct timespec delay = {config->drain_delay_ms / 1000, (long)(config->drain_delay_ms % 1000) * 1000000L};
        siginfo_t info;
        int received = sigtimedwait(signals, &info, &delay);
        if (received > 0)
            shoal_log(SHOAL_LOG_INFO, "drain", "signal %d: cutting the drain delay short", received);
    }
    shoal_http_stop_accepting(http);
    uint64_t deadline = shoal_monotonic_ms() + (uint64_t)config->grace_period_ms;
    while (shoal_app_in_flight(app) > 0 && shoal_monotonic_ms() < deadline)
        sleep_ms(10);
    int left = shoal_app_in_flight(app);
    if (left > 0)
        shoal_log(SHOAL_LOG_WARNING, "drain", "grace period over with %d requests in flight", left);
    else
        shoal_log(SHOAL_LOG_INFO, "drain", "no requests in flight");
}

/* Start-up failed after the monitor or the app existed. */
static int give_up(shoal_app *app, shoal_tier_monitor *monitor)
{
    shoal_app_free(app);
    shoal_tier_monitor_stop(monitor);
    return 1;
}

static int serve(const shoal_service *service, node_settings *node)
{
    const shoal_config *config = &node->config;
    char error[512];
    /* Blocked here, before any thread exists, so that every thread inherits
     * the mask and only sigwait below sees the signals. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN); /* a peer that vanished is an error code, not a death */

    /* Migrations wait for PostgreSQL, the budget check and the workers'
     * connections come after them: all within the one startup timeout. */
    uint64_t startup_deadline = shoal_monotonic_ms() + (uint64_t)config->startup_timeout_s * 1000u;
    if (config->migrate && has_migrations(service)) {
        migrate_outcome outcome = migrate(service, node, &stop_signals);
        if (outcome != MIGRATED)
            return outcome == MIGRATE_INTERRUPTED ? 0 : 1;
    }
    shoal_budget_outcome budget = shoal_budget_check(config);
    if (budget == SHOAL_BUDGET_EXCEEDED && config->strict)
        return 1;

    shoal_tier_monitor *monitor = shoal_tier_monitor_start(config, SHOAL_TIER_PROBE_INTERVAL_MS);
    shoal_app *app = monitor != NULL ? shoal_app_new(config) : NULL;
    if (app != NULL)
        shoal_app_set_settings(app, &node->values);
    if (app == NULL || setup(app, service, monitor) != 0) {
        const char *why = app != NULL ? shoal_app_failure(app) : NULL;
        shoal_log(SHOAL_LOG_ERROR, "start", "setup failed, not serving: %s",
                  why != NULL ? why : monitor == NULL ? "the tier monitor did not start" : "out of memory");
        return give_up(app, monitor);
    }
    /* Before serving: the L1 serves nothing until the subscriber is in. */
    if (shoal_app_start_invalidation(app, error, sizeof error) != 0) {
        shoal_log(SHOAL_LOG_ERROR, "start", "invalidation subscriber: %s", error);
        return give_up(app, monitor);
    }
    /* Frozen here rather than by shoal_http_start (which freezes again, a
     * no-op): the workers' new connections prepare the registry's
     * statements, which must all be there. PostgreSQL that the budget check
     * just could not reach is not tried again for each worker. */
    bool postgres_warm = false;
    if (shoal_app_freeze(app) != 0 ||
        warm_workers(app, config, startup_deadline, budget == SHOAL_BUDGET_UNREACHABLE, &postgres_warm) != 0) {
        shoal_log(SHOAL_LOG_ERROR, "start", "setup failed");
        return give_up(app, monitor);
    }
    shoal_http *http = shoal_http_start(app, error, sizeof error);
    if (http == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "start", "%s", error);
        return give_up(app, monitor);
    }
    /* The workers' pipes are part of the warm-up: a ready node holds every
     * connection it will hold. Not when PostgreSQL was not there for the
     * rest of the warm-up: then the pipes connect on the first requests. */
    if (postgres_warm && !shoal_http_await_pipes(http, startup_deadline))
        shoal_log(SHOAL_LOG_WARNING, "warm", "not every worker's own PostgreSQL and Redis connections were up within "
                  "the startup timeout; they connect on the first requests");
    shoal_app_set_readiness(app, SHOAL_READY);
    shoal_log(SHOAL_LOG_INFO, "start", "serving on %s:%d with %d worker threads, admin on %s:%d; cache in %s, L1 %s",
              config->bind_address, shoal_http_port(http), config->threads,
              config->admin_bind_address[0] != '\0' ? config->admin_bind_address : config->bind_address,
              shoal_http_admin_port(http), shoal_config_cache_separate(config) ? "its own Redis" : "the sessions' Redis",
              cache_l1_enabled(shoal_app_l1(app)) ? "on" : "off");

    int received = wait_for_stop(&stop_signals);
    drain(http, app, config, &stop_signals, received);
    shoal_http_stop(http);
    shoal_app_free(app);
    shoal_tier_monitor_stop(monitor);
    shoal_log(SHOAL_LOG_INFO, "stop", "stopped");
    return 0;
}

/* ---- the commands ---------------------------------------------------------------- */

static int run_migrate(const shoal_service *service, const node_settings *node)
{
    if (!has_migrations(service)) {
        shoal_log(SHOAL_LOG_INFO, "migrate", "%s has no migrations", service->name);
        return 0;
    }
    return migrate(service, node, NULL) == MIGRATED ? 0 : 1;
}

static int run_command(const shoal_service *service, const shoal_service_command *command, node_settings *node)
{
    if (command->migrate_first && node->config.migrate && has_migrations(service) &&
        migrate(service, node, NULL) != MIGRATED)
        return 1;
    return command->run(&node->config, &node->values, command->data);
}

/* The chosen command (NULL: serve) from argv[1] when it is a word; index
 * is then 2. */
static int choose_command(const shoal_service *service, const shoal_service_command *errors_command, int argc,
                          char **argv, bool *migrate_command, const shoal_service_command **chosen, int *index,
                          char *error, size_t error_size)
{
    *migrate_command = false;
    *chosen = NULL;
    *index = 1;
    if (argc < 2 || argv[1][0] == '-')
        return 0;
    *index = 2;
    if (strcmp(argv[1], "serve") == 0)
        return 0;
    if (strcmp(argv[1], "migrate") == 0) {
        *migrate_command = true;
        return 0;
    }
    if (strcmp(argv[1], "errors") == 0) {
        *chosen = errors_command;
        return 0;
    }
    for (size_t i = 0; service->commands != NULL && service->commands[i] != NULL; i++)
        if (strcmp(argv[1], service->commands[i]->name) == 0) {
            *chosen = service->commands[i];
            return 0;
        }
    int length = snprintf(error, error_size, "unknown command '%s' (commands: serve, migrate", argv[1]);
    for (size_t i = 0; service->commands != NULL && service->commands[i] != NULL; i++)
        if (length >= 0 && (size_t)length < error_size)
            length += snprintf(error + length, error_size - (size_t)length, ", %s", service->commands[i]->name);
    if (length >= 0 && (size_t)length < error_size)
        snprintf(error + length, error_size - (size_t)length, ")");
    return -1;
}

int shoal_main(const shoal_service *service, int argc, char **argv)
{
    char error[512] = "";
    const char *program = service != NULL ? program_name(argc, argv, service) : "shoal";
    if (service == NULL || check_service(service, error, sizeof error) != 0) {
        fprintf(stderr, "%s: malformed service: %s\n", program, service == NULL ? "NULL" : error);
        return EXIT_SERVICE_MALFORMED;
    }
    bool migrate_command = false;
    const shoal_service_command *chosen = NULL;
    int index = 1;
    /* Lists the tables; data is the service (run_errors). */
    const shoal_service_command errors_command = {.name = "errors", .run = run_errors, .data = (void *)service};
    int rc = choose_command(service, &errors_command, argc, argv, &migrate_command, &chosen, &index, error,
                            sizeof error);
    node_settings node;
    if (node_settings_make(&node, service, chosen, error, sizeof error) != 0) {
        fprintf(stderr, "%s: %s\n", program, error);
        return 1;
    }
    if (shoal_settings_check(node.groups, node.checked, error, sizeof error) != 0) {
        fprintf(stderr, "%s: malformed service: %s\n", program, error);
        node_settings_free(&node);
        return EXIT_SERVICE_MALFORMED;
    }
    node.config.command = migrate_command ? SHOAL_COMMAND_MIGRATE : SHOAL_COMMAND_SERVE;
    /* The tables' defaults and the service's are the program's own: one
     * that does not parse is a bug, whatever the command line says. */
    if (shoal_settings_defaults(node.groups, node.checked, error, sizeof error) != 0 ||
        apply_service_defaults(service, node.groups, node.checked, error, sizeof error) != 0) {
        fprintf(stderr, "%s: malformed service: %s\n", program, error);
        node_settings_free(&node);
        return EXIT_SERVICE_MALFORMED;
    }
    settings_outcome outcome = SETTINGS_INVALID;
    if (rc == 0 && shoal_settings_environment(node.groups, node.count, environment, error, sizeof error) == 0) {
        if (shoal_config_use_libpq_variables(&node.config, environment) != 0)
            snprintf(error, sizeof error, "out of memory");
        else
            outcome = shoal_settings_arguments(node.groups, node.count, argc, argv, index, error, sizeof error);
    }
    if (outcome == SETTINGS_PARSED && shoal_settings_validate(node.groups, node.count, error, sizeof error) != 0)
        outcome = SETTINGS_INVALID;
    switch (outcome) {
    case SETTINGS_INVALID:
        fprintf(stderr, "%s: %s\nTry '%s --help'.\n", program, error, program);
        rc = EXIT_BAD_SETTING;
        break;
    case SETTINGS_HELP:
        print_usage(stdout, program, service, &node);
        rc = 0;
        break;
    case SETTINGS_VERSION:
        print_version(stdout, service);
        rc = 0;
        break;
    case SETTINGS_PARSED:
        shoal_log_set_node(node.config.node_name);
        shoal_log(SHOAL_LOG_INFO, "service", "%s %s (libshoal %s)", service->name,
                  service->version != NULL ? service->version : "", shoal_version());
        if (migrate_command)
            rc = run_migrate(service, &node);
        else if (chosen != NULL)
            rc = run_command(service, chosen, &node);
        else
            rc = serve(service, &node);
        break;
    }
    node_settings_free(&node);
    return rc;
}
