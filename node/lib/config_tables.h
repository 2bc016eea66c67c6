/* node/lib/config_tables.h (private): the core's settings table over
 * shoal_config and the library's other tables, for shoal_main
 * (node/lib/runtime.c) and shoal_config_load (node/lib/config_load.c). */
#ifndef SHOAL_CONFIG_TABLES_H
#define SHOAL_CONFIG_TABLES_H

#include <shoal/config.h>

#include "settings_engine.h"

/* HTTP, overload, lifecycle, logging, the tiers. */
extern const shoal_settings shoal_config_settings;

/* After the environment, before the flags: with DATABASE_URL unset and
 * one of libpq's PG* variables set, the database URL is "" (libpq's
 * variables decide). 0, or -1 when memory ran out. */
int shoal_config_use_libpq_variables(shoal_config *config, shoal_config_env_fn env);

/* Applies defaults (NULL-terminated) over the groups' own; a flag no group
 * declares, or a value that does not parse, is an error (the service's
 * bug). */
int shoal_settings_overrides(const settings_group *groups, size_t count, const shoal_setting_default *defaults,
                             const char *source, char *error, size_t error_size);

#endif
