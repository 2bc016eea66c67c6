/* store/builtin_migrations.h: the demo services' schema (store/migrations),
 * embedded at build time by store/embed_migrations.cmake. It belongs to
 * shoal_demo (shoal-node and the tests), not to libshoal: a service built
 * on the library brings its own migrations to store_migrate. */
#ifndef STORE_BUILTIN_MIGRATIONS_H
#define STORE_BUILTIN_MIGRATIONS_H

#include <stddef.h>

#include "store.h"

/* The migrations in store/migrations, in order. */
extern const store_migration store_builtin_migrations[];
extern const size_t store_builtin_migration_count;

#endif
