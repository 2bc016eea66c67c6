/* node/services/conduit/seed_command.c: `shoal-node seed`. */
#include "seed_command.h"

#include <limits.h>
#include <string.h>

#include <shoal/password.h>

#define FIELD(name) offsetof(shoal_seed_flags_values, name)

static const shoal_setting seed_table[] = {
    {"users", NULL, SHOAL_SETTING_INT, FIELD(users), "1000", 1, STORE_SEED_MAX_USERS,
     "users user00001.. (userNNNNN@example.com, password 'password')", NULL},
    {"articles", NULL, SHOAL_SETTING_INT, FIELD(articles), "10000", 0, STORE_SEED_MAX_ARTICLES,
     "articles, with tags, favourites and comments", NULL},
    {"seed", NULL, SHOAL_SETTING_INT, FIELD(seed), "0", 0, INT_MAX, "another seed, another data set of the same shape",
     NULL},
    {"reset", NULL, SHOAL_SETTING_BOOL, FIELD(reset), "false", 0, 0,
     "empty the Conduit tables first; without it a database that holds users is refused (exit status 3)", NULL},
};
const shoal_settings shoal_seed_flags = SHOAL_SETTINGS("seed", shoal_seed_flags_values, seed_table, NULL);

static void print_step(void *data, const char *step, long long rows, double seconds)
{
    FILE *out = data;
    if (rows >= 0)
        fprintf(out, "seed: %-14s %10lld rows %8.2f s\n", step, rows, seconds);
    else
        fprintf(out, "seed: %-14s %15s %8.2f s\n", step, "", seconds);
    fflush(out);
}

int shoal_seed_run(const shoal_config *config, const shoal_settings_values *values, FILE *out, FILE *errors,
                   store_seed_report *report)
{
    const shoal_seed_flags_values *flags = shoal_settings_of(values, &shoal_seed_flags);
    if (flags == NULL) {
        fprintf(errors, "shoal-node seed: its flags were not parsed\n");
        return SHOAL_SEED_FAILED;
    }
    store_seed_report local;
    if (report == NULL)
        report = &local;
    memset(report, 0, sizeof *report);
    /* One hash, so no queue: concurrency 1 and nobody else waiting. */
    shoal_password_config password_config = shoal_password_config_of(shoal_settings_of(values, &shoal_password_settings));
    password_config.concurrency = 1;
    password_config.queue_timeout_ms = 0;
    shoal_password *passwords = shoal_password_new(&password_config);
    char hash[SHOAL_PASSWORD_HASH_SIZE];
    shoal_password_status hashed = passwords != NULL ? shoal_password_hash(passwords, SHOAL_SEED_PASSWORD,
                                                                           strlen(SHOAL_SEED_PASSWORD), hash)
                                                     : SHOAL_PASSWORD_ERROR;
    shoal_password_free(passwords);
    if (hashed != SHOAL_PASSWORD_OK) {
        fprintf(errors, "shoal-node seed: cannot hash the seeded users' password (out of memory?)\n");
        return SHOAL_SEED_FAILED;
    }

    fprintf(out, "seed: %d users, %d articles, seed %d%s, in one transaction\n", flags->users,
            flags->articles, flags->seed, flags->reset ? ", emptying the Conduit tables first" : "");
    fflush(out);
    store_config store = shoal_config_store(config);
    store_seed_options options = {.users = flags->users,
                                  .articles = flags->articles,
                                  .seed = flags->seed,
                                  .reset = flags->reset,
                                  .password_hash = hash,
                                  .progress = print_step,
                                  .progress_data = out};
    char error[512] = "";
    store_status status = store_seed(&store, &options, report, error, sizeof error);
    if (status == STORE_CONFLICT) {
        fprintf(errors,
                "shoal-node seed: %s; seeding fills an empty database. Add --reset to delete every user, "
                "article, tag, follow, favourite and comment first. Nothing was changed.\n",
                error);
        return SHOAL_SEED_REFUSED;
    }
    if (status != STORE_OK) {
        fprintf(errors, "shoal-node seed: %s; nothing was changed\n", error);
        return SHOAL_SEED_FAILED;
    }
    if (flags->reset)
        fprintf(out, "seed: removed %lld users and everything of theirs first\n", report->removed_users);
    fprintf(out,
            "seed: created %lld users, %lld tags, %lld articles, %lld article tags, %lld follows, %lld favourites "
            "and %lld comments in %.1f s (VACUUM and ANALYZE %.1f s more)\n",
            report->users, report->tags, report->articles, report->article_tags, report->follows, report->favorites,
            report->comments, report->seconds, report->analyze_seconds);
    int width = snprintf(NULL, 0, "%d", flags->users);
    fprintf(out, "seed: every user (user%05d@example.com to user%0*d@example.com) logs in with the password '%s'\n",
            1, width < 5 ? 5 : width, flags->users, SHOAL_SEED_PASSWORD);
    fflush(out);
    return 0;
}

static int run_seed(const shoal_config *config, const shoal_settings_values *values, void *data)
{
    (void)data;
    return shoal_seed_run(config, values, stdout, stderr, NULL);
}

const shoal_service_command shoal_seed_command = {
    .name = "seed",
    .summary = "apply migrations unless --migrate=false, fill the database with a\n"
               "           reproducible Conduit data set for load tests, and exit",
    .flags = &shoal_seed_flags,
    .migrate_first = true,
    .run = run_seed,
};
