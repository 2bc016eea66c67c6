/* node/lib/config_load.c: shoal_config_load, the core's settings and the
 * library's other tables for a node built by hand (tests, embedders).
 * Apart from node/lib/config.c so that the core's table does not reach into
 * the extensions that own the others. */
#include <shoal/config.h>
#include <shoal/ext/cors.h>
#include <shoal/ext/idempotency.h>
#include <shoal/ext/rate_limit.h>
#include <shoal/ext/security_headers.h>
#include <shoal/ext/session.h>
#include <shoal/password.h>

#include "config_tables.h"

#include <stdlib.h>
#include <string.h>

/* The standard extensions' tables in their load order, then password
 * hashing's. */
static const shoal_settings *const library_tables[] = {
    &shoal_security_headers_settings, &shoal_cors_settings, &shoal_rate_limit_settings, &shoal_session_settings,
    &shoal_idempotency_settings,      &shoal_password_settings,
};
#define LIBRARY_TABLES (sizeof library_tables / sizeof library_tables[0])

/* config->settings points at values, the first member. */
typedef struct loaded_settings {
    shoal_settings_values values;
    size_t count;
    settings_group groups[]; /* the core's first, over the config itself */
} loaded_settings;

int shoal_settings_overrides(const settings_group *groups, size_t count, const shoal_setting_default *defaults,
                             const char *source, char *error, size_t error_size)
{
    for (size_t d = 0; defaults != NULL && defaults[d].flag != NULL; d++) {
        const shoal_setting *setting = NULL;
        size_t g = 0;
        for (; g < count && setting == NULL; g++)
            setting = shoal_settings_find(groups[g].settings, defaults[d].flag, strlen(defaults[d].flag));
        if (setting == NULL) {
            snprintf(error, error_size, "%s: --%s is no setting of this node", source, defaults[d].flag);
            return -1;
        }
        char where[128];
        snprintf(where, sizeof where, "%s for --%s", source, setting->flag);
        if (shoal_settings_apply(groups[g - 1].values, setting, defaults[d].value != NULL ? defaults[d].value : "",
                                 where, error, error_size) != 0)
            return -1;
    }
    return 0;
}

static void release(loaded_settings *loaded)
{
    shoal_settings_release(loaded->groups, loaded->count);
    for (size_t g = 1; g < loaded->count; g++)
        free(loaded->groups[g].values);
    free(loaded);
}

int shoal_config_load_with(shoal_config *config, const shoal_settings *const *tables,
                           const shoal_setting_default *defaults, int argc, char **argv, shoal_config_env_fn env,
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
    size_t extra = 0;
    while (tables != NULL && tables[extra] != NULL)
        extra++;
    size_t count = 1 + LIBRARY_TABLES + extra;
    loaded_settings *loaded = calloc(1, sizeof *loaded + count * sizeof loaded->groups[0]);
    if (loaded == NULL) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    loaded->groups[0] = (settings_group){&shoal_config_settings, config};
    for (size_t i = 0; i < LIBRARY_TABLES + extra; i++) {
        const shoal_settings *table = i < LIBRARY_TABLES ? library_tables[i] : tables[i - LIBRARY_TABLES];
        loaded->groups[i + 1].settings = table;
        loaded->groups[i + 1].values = calloc(1, table->size > 0 ? table->size : 1);
        loaded->count = i + 2;
        if (loaded->groups[i + 1].values == NULL) {
            snprintf(error, error_size, "out of memory");
            goto fail;
        }
    }
    loaded->count = count;
    loaded->values = (shoal_settings_values){loaded->groups, count};
    config->settings = &loaded->values;
    if (shoal_settings_check(loaded->groups, count, error, error_size) != 0 ||
        shoal_settings_defaults(loaded->groups, count, error, error_size) != 0 ||
        shoal_settings_overrides(loaded->groups, count, defaults, "the default", error, error_size) != 0 ||
        shoal_settings_environment(loaded->groups, count, env, error, error_size) != 0)
        goto fail;
    if (shoal_config_use_libpq_variables(config, env) != 0) {
        snprintf(error, error_size, "out of memory");
        goto fail;
    }
    switch (shoal_settings_arguments(loaded->groups, count, argc, argv, index, error, error_size)) {
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
    if (shoal_settings_validate(loaded->groups, count, error, error_size) != 0)
        goto fail;
    return 0;

fail:
    config->settings = NULL;
    release(loaded);
    memset(config, 0, sizeof *config);
    return -1;
}

int shoal_config_load(shoal_config *config, int argc, char **argv, shoal_config_env_fn env, char *error,
                      size_t error_size)
{
    return shoal_config_load_with(config, NULL, NULL, argc, argv, env, error, error_size);
}

void shoal_config_free(shoal_config *config)
{
    if (config->settings != NULL) {
        /* The core's group included: its strings are config's. */
        release((loaded_settings *)config->settings);
        config->settings = NULL;
        return;
    }
    settings_group core = {&shoal_config_settings, config};
    shoal_settings_release(&core, 1);
}

void shoal_config_usage(FILE *out, const char *program)
{
    fprintf(out,
            "Usage: %s [serve|migrate] [--option value]...\n"
            "\n"
            "  serve    (default) apply migrations unless --migrate=false, then serve HTTP\n"
            "  migrate  apply database migrations and exit\n"
            "\n"
            "Every option can also be set by its environment variable; flags win.\n"
            "Sizes accept k, m and g suffixes. Bad settings exit with status 2.\n\n",
            program);
    shoal_settings_print(out, &shoal_config_settings, "  ");
    for (size_t i = 0; i < LIBRARY_TABLES; i++) {
        fprintf(out, "\n%s:\n", library_tables[i]->owner);
        shoal_settings_print(out, library_tables[i], "  ");
    }
    fprintf(out, "\n  --help                     this text\n  --version                  print the version\n");
}
