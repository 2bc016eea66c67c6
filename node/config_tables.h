/* node/config_tables.h (private): the settings tables over shoal_config,
 * for shoal_main (node/runtime.c) and shoal-node (node/main.c).
 *
 * The core keeps one struct for now: its own settings, the demo
 * services' (which shoal-node's service declares and no other service
 * sees) and the seed command's flags all write into shoal_config. They
 * move to their owners' structs in a later step, and this header goes. */
#ifndef SHOAL_CONFIG_TABLES_H
#define SHOAL_CONFIG_TABLES_H

#include "config.h"
#include "settings_engine.h"

/* HTTP, overload, lifecycle, logging, the tiers, the standard extensions. */
extern const shoal_settings shoal_config_settings;
/* --api, --api-max-limit, --login-failures-*, --bench. */
extern const shoal_settings shoal_config_demo_settings;
/* seed's --users, --articles, --seed, --reset (no variables). */
extern const shoal_settings shoal_config_seed_flags;

/* After the environment, before the flags: with DATABASE_URL unset and
 * one of libpq's PG* variables set, the database URL is "" (libpq's
 * variables decide). 0, or -1 when memory ran out. */
int shoal_config_use_libpq_variables(shoal_config *config, shoal_config_env_fn env);

#endif
