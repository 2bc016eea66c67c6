/* node/bin/demo_settings.c */
#include "demo_settings.h"

#include <string.h>

#include "conduit/api.h"
#include "techempower/bench.h"
#include "conduit/seed_command.h"

const shoal_setting_default shoal_demo_defaults[] = {{"rate-limits", SHOAL_CONDUIT_RATE_LIMITS}, {NULL, NULL}};

int shoal_demo_config_load(shoal_config *config, int argc, char **argv, shoal_config_env_fn env, char *error,
                           size_t error_size)
{
    /* seed's flags for that command only, as shoal_main parses them. */
    static const shoal_settings *const serving[] = {&shoal_conduit_settings, &shoal_techempower_settings, NULL};
    static const shoal_settings *const seeding[] = {&shoal_conduit_settings, &shoal_techempower_settings,
                                                    &shoal_seed_flags, NULL};
    bool seed = argc > 1 && strcmp(argv[1], "seed") == 0;
    return shoal_config_load_with(config, seed ? seeding : serving, shoal_demo_defaults, argc, argv, env, error,
                                  error_size);
}
