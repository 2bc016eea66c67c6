/* node/lib/include/shoal/password.h: password hashes, argon2id through libsodium.
 *
 * A hash costs ops_limit passes over mem_limit bytes of memory, on purpose:
 * that is what makes a stolen table expensive to guess at. The same cost
 * makes hashing a way to exhaust a node, so at most `concurrency` hashes
 * (or verifications) run at once per node; a caller waits for a turn at
 * most queue_timeout_ms, then gets SHOAL_PASSWORD_BUSY, which handlers
 * answer with 503 and Retry-After. Memory for hashing is therefore bounded
 * by concurrency * mem_limit whatever arrives. */
#ifndef SHOAL_PASSWORD_H
#define SHOAL_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include <shoal/errors.h>
#include <shoal/settings.h>

/* crypto_pwhash_STRBYTES: the encoded hash and its NUL. */
#define SHOAL_PASSWORD_HASH_SIZE 128

typedef struct shoal_password_config {
    unsigned long long ops_limit; /* argon2id passes, at least 1 */
    size_t mem_limit;             /* bytes per hash, at least 8 KiB */
    int concurrency;              /* hashes at once, at least 1 */
    int queue_timeout_ms;         /* wait for a turn; 0: do not wait */
} shoal_password_config;

typedef enum shoal_password_status {
    SHOAL_PASSWORD_OK = 0,
    SHOAL_PASSWORD_MISMATCH, /* verify: not this password (or not a hash we can read) */
    SHOAL_PASSWORD_BUSY,     /* no turn within the queue timeout: 503 */
    SHOAL_PASSWORD_ERROR,    /* out of memory inside libsodium: 500 */
} shoal_password_status;

typedef struct shoal_password shoal_password;

/* NULL when libsodium cannot start, the limits are outside what libsodium
 * accepts, or memory ran out. */
shoal_password *shoal_password_new(const shoal_password_config *config);
void shoal_password_free(shoal_password *passwords);

/* Hashes password (length bytes, any content) into out, a NUL-terminated
 * "$argon2id$..." string that carries its own salt and cost. */
shoal_password_status shoal_password_hash(shoal_password *passwords, const char *password, size_t length,
                                          char out[SHOAL_PASSWORD_HASH_SIZE]);
/* OK when password matches hash; the comparison is libsodium's, in
 * constant time. */
shoal_password_status shoal_password_verify(shoal_password *passwords, const char *hash, const char *password,
                                            size_t length);
/* How many hashes and verifications hold a turn now: for tests and
 * metrics; it may change as soon as it is read. */
int shoal_password_in_progress(shoal_password *passwords);
/* True when hash was made with another cost than the configured one, so
 * that a login can store a new hash after the cost was raised. */
bool shoal_password_needs_rehash(const shoal_password *passwords, const char *hash);

/* The --password-* settings (SHOAL_PASSWORD_*), for a service that hashes
 * passwords: it lists shoal_password_settings among its settings tables
 * and makes its hasher from the values,
 *
 *     const shoal_password_settings_values *values = shoal_app_settings(app, &shoal_password_settings);
 *     shoal_password_config config = shoal_password_config_of(values);
 *
 * A service that does not list it has no such flags. */
typedef struct shoal_password_settings_values {
    int ops_limit;
    size_t mem_limit;
    int concurrency;      /* hashes at once per node */
    int queue_timeout_ms; /* wait for a turn, then SHOAL_PASSWORD_BUSY */
} shoal_password_settings_values;
extern const shoal_settings shoal_password_settings;
/* The hasher's configuration from the values; NULL: the table's defaults. */
shoal_password_config shoal_password_config_of(const shoal_password_settings_values *values);

/* The answer for SHOAL_PASSWORD_BUSY (module "password" in `errors`): 503
 * password.busy; send Retry-After with it. */
extern const shoal_error_code shoal_password_code_busy;

#endif
