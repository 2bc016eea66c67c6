/* node/lib/password.c */
#include <shoal/password.h>

#include <errno.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "errors_internal.h"
#include "side_pool.h"

const shoal_error_code shoal_password_code_busy = {503, "password.busy", NULL, "too many logins at once; try again"};

const shoal_error_table shoal_password_errors = {
    "password",
    (const shoal_error_code *const[]){&shoal_password_code_busy, NULL},
};

_Static_assert(SHOAL_PASSWORD_HASH_SIZE == crypto_pwhash_STRBYTES, "the hash buffer is libsodium's size");

struct shoal_password {
    unsigned long long ops_limit;
    size_t mem_limit;
    int queue_timeout_ms;
    int concurrency;
    /* The turns: a counting semaphore, so that waiting has a deadline
     * (sem_clockwait on the monotonic clock, which a clock change cannot
     * stretch). */
    sem_t turns;
};

static const shoal_setting password_table[] = {
    {"password-ops-limit", "SHOAL_PASSWORD_OPS_LIMIT", SHOAL_SETTING_INT,
     offsetof(shoal_password_settings_values, ops_limit), "2", 1, 64,
     "argon2id passes per password hash (libsodium's interactive level is 2)", NULL},
    {"password-mem-limit", "SHOAL_PASSWORD_MEM_LIMIT", SHOAL_SETTING_SIZE,
     offsetof(shoal_password_settings_values, mem_limit), "64m", 8192, 4294967296LL,
     "memory per argon2id password hash (k, m and g suffixes; interactive: 64m)", NULL},
    {"password-concurrency", "SHOAL_PASSWORD_CONCURRENCY", SHOAL_SETTING_INT,
     offsetof(shoal_password_settings_values, concurrency), "4", 1, 1024,
     "password hashes computed at once per node; memory for them is at most this times --password-mem-limit", NULL},
    {"password-queue-timeout-ms", "SHOAL_PASSWORD_QUEUE_TIMEOUT_MS", SHOAL_SETTING_INT,
     offsetof(shoal_password_settings_values, queue_timeout_ms), "1000", 0, 60000,
     "milliseconds a login or registration waits for a hashing turn, then 503 with Retry-After", NULL},
};
const shoal_settings shoal_password_settings =
    SHOAL_SETTINGS("password hashing", shoal_password_settings_values, password_table, NULL);

shoal_password_config shoal_password_config_of(const shoal_password_settings_values *values)
{
    if (values == NULL)
        return (shoal_password_config){.ops_limit = 2, .mem_limit = 64u * 1024 * 1024, .concurrency = 4,
                                       .queue_timeout_ms = 1000};
    return (shoal_password_config){.ops_limit = (unsigned long long)values->ops_limit,
                                   .mem_limit = values->mem_limit,
                                   .concurrency = values->concurrency,
                                   .queue_timeout_ms = values->queue_timeout_ms};
}

shoal_password *shoal_password_new(const shoal_password_config *config)
{
    if (sodium_init() < 0 || config->concurrency < 1 || config->queue_timeout_ms < 0 ||
        config->ops_limit < crypto_pwhash_OPSLIMIT_MIN || config->ops_limit > crypto_pwhash_OPSLIMIT_MAX ||
        config->mem_limit < crypto_pwhash_MEMLIMIT_MIN || config->mem_limit > crypto_pwhash_MEMLIMIT_MAX)
        return NULL;
    shoal_password *passwords = calloc(1, sizeof *passwords);
    if (passwords == NULL)
        return NULL;
    passwords->ops_limit = config->ops_limit;
    passwords->mem_limit = config->mem_limit;
    passwords->queue_timeout_ms = config->queue_timeout_ms;
    passwords->concurrency = config->concurrency;
    if (sem_init(&passwords->turns, 0, (unsigned)config->concurrency) != 0) {
        free(passwords);
        return NULL;
    }
    return passwords;
}

void shoal_password_free(shoal_password *passwords)
{
    if (passwords == NULL)
        return;
    sem_destroy(&passwords->turns);
    free(passwords);
}

/* Waits for a hashing turn until deadline (CLOCK_MONOTONIC). */
static bool take_turn(shoal_password *passwords, const struct timespec *deadline)
{
    if (sem_trywait(&passwords->turns) == 0)
        return true;
    for (;;) {
        if (sem_clockwait(&passwords->turns, CLOCK_MONOTONIC, deadline) == 0)
            return true;
        if (errno != EINTR)
            return false;
    }
}

static void give_turn(shoal_password *passwords)
{
    sem_post(&passwords->turns);
}

/* One hash or verification, handed to the side pool whole (the wait for a
 * turn included), so that a worker's loop neither hashes nor waits. */
typedef struct password_job {
    shoal_password *passwords;
    struct timespec turn_deadline;
    const char *password;
    size_t length;
    const char *hash; /* to verify against; NULL: make one into out */
    char *out;
    shoal_password_status status;
} password_job;

static void password_work(void *arg)
{
    password_job *job = arg;
    if (!take_turn(job->passwords, &job->turn_deadline)) {
        job->status = SHOAL_PASSWORD_BUSY;
        return;
    }
    if (job->hash == NULL) {
        int rc = crypto_pwhash_str(job->out, job->password, job->length, job->passwords->ops_limit,
                                   job->passwords->mem_limit);
        job->status = rc == 0 ? SHOAL_PASSWORD_OK : SHOAL_PASSWORD_ERROR;
    } else {
        int rc = crypto_pwhash_str_verify(job->hash, job->password, job->length);
        job->status = rc == 0 ? SHOAL_PASSWORD_OK : SHOAL_PASSWORD_MISMATCH;
    }
    give_turn(job->passwords);
}

/* The queue timeout runs from here: time spent in the side pool's queue
 * counts, and a thread that gets to the job past it still hashes when a
 * turn is free (sem_trywait), as a caller that found one at once would. */
static shoal_password_status run_job(password_job *job)
{
    job->turn_deadline = shoal_monotonic_deadline(job->passwords->queue_timeout_ms);
    if (shoal_side_run(0, password_work, job) != 0)
        return SHOAL_PASSWORD_BUSY; /* the node is stopping */
    return job->status;
}

shoal_password_status shoal_password_hash(shoal_password *passwords, const char *password, size_t length,
                                          char out[SHOAL_PASSWORD_HASH_SIZE])
{
    password_job job = {.passwords = passwords, .password = password, .length = length, .out = out};
    return run_job(&job);
}

shoal_password_status shoal_password_verify(shoal_password *passwords, const char *hash, const char *password,
                                            size_t length)
{
    /* A hash that does not even look like one costs nothing to refuse. */
    if (hash == NULL || strnlen(hash, SHOAL_PASSWORD_HASH_SIZE) >= SHOAL_PASSWORD_HASH_SIZE ||
        strncmp(hash, crypto_pwhash_STRPREFIX, strlen(crypto_pwhash_STRPREFIX)) != 0)
        return SHOAL_PASSWORD_MISMATCH;
    password_job job = {.passwords = passwords, .password = password, .length = length, .hash = hash};
    return run_job(&job);
}

int shoal_password_in_progress(shoal_password *passwords)
{
    int free_turns = 0;
    if (sem_getvalue(&passwords->turns, &free_turns) != 0)
        return 0;
    return passwords->concurrency - (free_turns > 0 ? free_turns : 0);
}

bool shoal_password_needs_rehash(const shoal_password *passwords, const char *hash)
{
    return crypto_pwhash_str_needs_rehash(hash, passwords->ops_limit, passwords->mem_limit) != 0;
}
