/* node/bin/main.c: shoal-node, the demo services (the RealWorld API and the
 * TechEmpower routes) composed into one node by shoal_main. */
#include <shoal/password.h>
#include <shoal/service.h>
#include <shoal/version.h>

#include "conduit/api.h"
#include "conduit/seed_command.h"
#include "demo_settings.h"
#include "techempower/bench.h"

/* Each part switches itself off (--api=false, --bench=false). */
static int setup(shoal_app *app, void *data)
{
    (void)data;
    return shoal_app_extend(app, &shoal_bench_extension) == 0 && shoal_app_extend(app, &shoal_api_extension) == 0
               ? 0
               : -1;
}

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
        .commands = (const shoal_service_command *const[]){&shoal_seed_command, NULL},
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
