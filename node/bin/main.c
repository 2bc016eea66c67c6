/* node/bin/main.c: shoal-node, the demo services (the RealWorld API and the
 * TechEmpower routes) composed into one node by shoal_main. */
#include <shoal/version.h>

#include "conduit/api.h"
#include "techempower/bench.h"
#include <shoal/password.h>
#include "demo_migrations.h"
#include "demo_settings.h"
#include "conduit/seed_command.h"
#include <shoal/service.h>

/* Each part switches itself off (--api=false, --bench=false). */
static int setup(shoal_app *app, void *data)
{
    (void)data;
    return shoal_app_extend(app, &shoal_bench_extension) == 0 && shoal_app_extend(app, &shoal_api_extension) == 0
               ? 0
               : -1;
}

/* `shoal-node seed`: its flags (--users, --articles, --seed, --reset) are
 * shoal_seed_flags, parsed for this command only. */
static int seed(const shoal_config *config, const shoal_settings_values *values, void *data)
{
    (void)data;
    return shoal_seed_run(config, values, stdout, stderr, NULL);
}

static const shoal_service_command seed_command = {
    .name = "seed",
    .summary = "apply migrations unless --migrate=false, fill the database with a\n"
               "           reproducible Conduit data set for load tests, and exit",
    .flags = &shoal_seed_flags,
    .migrate_first = true,
    .run = seed,
};

int main(int argc, char **argv)
{
    /* Each part's schema goes with it: --api=false applies no Conduit
     * table, --bench=false no TechEmpower one. */
    shoal_migrations conduit = shoal_conduit_migrations, techempower = shoal_techempower_migrations;
    conduit.enabled_by = "api";
    techempower.enabled_by = "bench";
    const shoal_service service = {
        .name = "shoal-node",
        .version = SHOAL_VERSION_STRING,
        .setup = setup,
        .settings = (const shoal_settings *const[]){&shoal_conduit_settings, &shoal_techempower_settings,
                                                    &shoal_password_settings, NULL},
        .migrations = (const shoal_migrations *const[]){&conduit, &techempower, NULL},
        .commands = (const shoal_service_command *const[]){&seed_command, NULL},
        /* The TechEmpower routes answer only the library's codes. */
        .errors = (const shoal_error_table *const[]){&shoal_api_errors, NULL},
        /* 0.1's key layout, byte for byte: sessions, idempotent replays
         * and the invalidation channel carry over a rolling upgrade. */
        .redis_prefix = "",
        /* Conduit's credential endpoints are limited unless
         * SHOAL_RATE_LIMITS says otherwise (empty: none), as in 0.1. */
        .defaults = shoal_demo_defaults,
    };
    return shoal_main(&service, argc, argv);
}
