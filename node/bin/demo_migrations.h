/* node/bin/demo_migrations.h: the demo services' schema, each service its own
 * sequence (node/services/{conduit,techempower}/migrations), embedded at
 * build time by shoal_add_migrations (node/CMakeLists.txt) as a user's
 * service embeds its own. Part of shoal_demo (shoal-node and the tests),
 * not of libshoal. */
#ifndef SHOAL_DEMO_MIGRATIONS_H
#define SHOAL_DEMO_MIGRATIONS_H

#include <shoal/service.h>

#include "conduit/api.h"        /* shoal_conduit_migrations */
#include "techempower/bench.h"  /* shoal_techempower_migrations */

/* Both sets, applied (store_migrate_sets) as shoal-node applies them with
 * every part on; reports: NULL or 2 (conduit, techempower). For tests and
 * tools that need the demo's schema without a node. */
store_status shoal_demo_migrate(const store_config *config, store_migrate_report *reports, char *error,
                                size_t error_size);

/* The single sequence 0.1 applied (store_migrate into schema_migrations):
 * 1 baseline, 2 techempower, 3 conduit, the same SQL. Fills out[3]; for
 * building a database the old way. */
#define SHOAL_DEMO_LEGACY_COUNT 3
void shoal_demo_legacy_migrations(store_migration out[SHOAL_DEMO_LEGACY_COUNT]);

#endif
