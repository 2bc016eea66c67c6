/* node/bin/demo_migrations.c: the demo's two sets, applied together, and the
 * single sequence they replace. */
#include "demo_migrations.h"

store_status shoal_demo_migrate(const store_config *config, store_migrate_report *reports, char *error,
                                size_t error_size)
{
    const shoal_migrations *const both[] = {&shoal_conduit_migrations, &shoal_techempower_migrations};
    store_migration_set sets[2];
    for (size_t i = 0; i < 2; i++)
        sets[i] = (store_migration_set){
            .component = both[i]->component,
            .list = both[i]->list,
            .count = both[i]->count,
            .adopt = both[i]->adopt,
            .adopt_count = both[i]->adopt_count,
        };
    return store_migrate_sets(config, sets, 2, reports, error, error_size);
}

void shoal_demo_legacy_migrations(store_migration out[SHOAL_DEMO_LEGACY_COUNT])
{
    out[0] = (store_migration){1, "baseline", shoal_conduit_migrations.list[0].sql};
    out[1] = (store_migration){2, "techempower", shoal_techempower_migrations.list[0].sql};
    out[2] = (store_migration){3, "conduit", shoal_conduit_migrations.list[1].sql};
}
