/* node/bin/demo_settings.h: shoal-node's settings besides the library's, for
 * nodes the tests build by hand as shoal-node would run them. Part of
 * shoal_demo, not of libshoal. */
#ifndef SHOAL_DEMO_SETTINGS_H
#define SHOAL_DEMO_SETTINGS_H

#include <shoal/config.h>

/* The defaults shoal-node sets in other tables (shoal_service's defaults):
 * Conduit's --rate-limits. */
extern const shoal_setting_default shoal_demo_defaults[];

/* shoal_config_load with Conduit's, TechEmpower's and seed's tables and
 * shoal_demo_defaults. */
int shoal_demo_config_load(shoal_config *config, int argc, char **argv, shoal_config_env_fn env, char *error,
                           size_t error_size);

#endif
