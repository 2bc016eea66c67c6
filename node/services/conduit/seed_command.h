/* node/services/conduit/seed_command.h: `shoal-node seed`, a reproducible Conduit data set
 * for load tests (the data itself: node/services/conduit/seed.h).
 *
 * Every seeded user has the password SHOAL_SEED_PASSWORD, hashed once with
 * the node's own argon2id settings (--password-ops-limit,
 * --password-mem-limit) so that POST /api/users/login verifies it like any
 * other and never asks for a rehash; all users share that one hash string,
 * which is what makes seeding 10,000 users take a second rather than ten
 * minutes. */
#ifndef SHOAL_SEED_COMMAND_H
#define SHOAL_SEED_COMMAND_H

#include <stdio.h>

#include <shoal/config.h>
#include <shoal/service.h>

#include "seed.h"

#define SHOAL_SEED_PASSWORD "password"

/* Exit statuses of the command besides 0. */
#define SHOAL_SEED_FAILED 1
#define SHOAL_SEED_REFUSED 3 /* the database holds users and --reset was not given */

/* The command's own flags: --users, --articles, --seed, --reset (no
 * variables: they are never settings of a node). */
typedef struct shoal_seed_flags_values {
    int users;
    int articles;
    int seed;
    bool reset;
} shoal_seed_flags_values;
extern const shoal_settings shoal_seed_flags;

/* Seeds the database of config with values' shoal_seed_flags (the schema
 * must be migrated), hashing with values' shoal_password_settings (their
 * defaults when absent); writes each step and a summary to out and
 * failures to errors; the report when not NULL. Returns 0 or an exit
 * status above. */
int shoal_seed_run(const shoal_config *config, const shoal_settings_values *values, FILE *out, FILE *errors,
                   store_seed_report *report);

/* `<program> seed` for a service's commands (shoal_service.commands):
 * shoal_seed_run on stdout and stderr, after the migrations. */
extern const shoal_service_command shoal_seed_command;

#endif
