/* store/include/shoal/store.h: PostgreSQL, one connection per worker thread.
 *
 * A store is owned by exactly one thread. It connects lazily, and after a
 * failure it reconnects by itself on the next call: at once when it finds
 * its connection dead before sending (the statement then goes out on the
 * new one), and after a failed attempt at most once per
 * STORE_RECONNECT_INTERVAL_MS, so that a PostgreSQL outage does not turn
 * into a connection storm from every worker of every node; unless another
 * store of the process has reached the same server since, which says that
 * it is back. */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

typedef struct store_config {
    const char *conninfo;     /* URI or key=value; "" = libpq's PG* variables */
    int connect_timeout_s;    /* libpq connect_timeout */
    /* How long a call waits for PostgreSQL's answer before the connection
     * counts as lost and is dropped (0: connect_timeout_s). A server that
     * accepts and never answers must not hold a worker forever. */
    int answer_timeout_ms;
    const char *application_name; /* shows in pg_stat_activity; may be NULL */
    /* PostgreSQL's statement_timeout for this connection (0: none). Keep it
     * below answer_timeout_ms so that the server cancels a slow statement
     * (STORE_TIMEOUT, the connection stays) before the client gives up on
     * the connection. */
    int statement_timeout_ms;
    /* The statements every connection prepares; may be NULL. Must be frozen
     * and outlive every store opened with it. */
    const struct store_registry *registry;
    /* A worker's pipe (the engine's) sends on a second connection, its spill
     * lane, while the oldest statement on its first has run longer than
     * this (0: no spill lane); docs/engine.md. */
    int spill_after_ms;
} store_config;

/* What a call came to. node/ maps each to one HTTP answer in one place
 * (shoal_error_from_store): clients never see PostgreSQL's own text. */
typedef enum store_status {
    STORE_OK = 0,
    STORE_UNAVAILABLE, /* cannot reach PostgreSQL now, it stopped answering, or it says it cannot serve now
                          (08*, 57*, 25006): 503 + Retry-After */
    STORE_ERROR,       /* PostgreSQL refused the statement for another reason: 500 */
    STORE_TIMEOUT,     /* statement_timeout cancelled it (57014): 503 + Retry-After */
    STORE_CONFLICT,    /* unique violation (23505): 422 naming the field */
    STORE_INVALID,     /* check, not-null or foreign-key violation (23514, 23502, 23503), text that is not UTF-8 (22021, 22P05): 422 */
    STORE_BUSY,        /* serialization failure or deadlock still there after the retries: 503 */
    STORE_NOT_FOUND,   /* a domain query found no row: 404 where the caller says so */
    STORE_DEADLINE,    /* the request's deadline passed before the call; nothing was sent: 503 */
} store_status;

/* The last failure of a store, for the caller to map and to log. */
typedef struct store_error {
    store_status status;
    char sqlstate[6];  /* "" when it did not come from the server */
    /* The API field the violated constraint guards, from the registry's
     * constraint map ("email" for users_email_key), or NULL. */
    const char *field;
    char constraint[64]; /* the constraint's name, or "" */
    char message[256];   /* PostgreSQL's or libpq's text, one line: logs only */
} store_error;

#define STORE_RECONNECT_INTERVAL_MS 250

/* Never fails for an unreachable server (that is reported by the calls);
 * NULL only when memory runs out, or when the config's registry is not
 * frozen (a setup mistake). The config's strings are copied. */
store *store_open(const store_config *config);
void store_close(store *s);

/* One round trip; reconnects first when the connection is down. */
store_status store_ping(store *s);
/* Connects now, preparing every registered statement, unless connected;
 * no other round trip. STORE_OK or STORE_UNAVAILABLE. A node opens its
 * workers' connections this way before it turns ready. */
store_status store_connect_now(store *s);

/* 0 when conninfo is a valid URI or key=value string for libpq, else -1
 * with libpq's reason in error. Parses only; connects to nothing. */
int store_conninfo_check(const char *conninfo, char *error, size_t error_size);
bool store_connected(const store *s);
/* How many times this store connected after a lost connection or a failed
 * attempt (its first connection, made at once, is not one). */
unsigned long store_reconnect_count(const store *s);
/* What this store did since it opened, for /metrics. A call is one
 * store_run or store_batch (retries inside it included); an error is one
 * that says the tier is in trouble (unavailable, refused, timed out, busy),
 * not a constraint the caller expects to hit. Written by the thread that
 * uses the store, read by any thread without a lock. */
typedef struct store_stats {
    unsigned long calls;
    unsigned long errors;
    unsigned long reconnects;
    uint64_t duration_ns;
} store_stats;
void store_stats_read(const store *s, store_stats *out);
/* The server's backend PID for this connection (0 when not connected);
 * tests use it to kill the connection from outside. */
int store_backend_pid(const store *s);

/* The moment (CLOCK_MONOTONIC, in nanoseconds; 0: none) after which this
 * store starts no more work: store_run, store_batch and store_transaction
 * then send nothing and give STORE_DEADLINE. Statements inside a
 * transaction that began in time still run, so that it commits or rolls
 * back as a whole. node/ sets it to the request's deadline while the
 * request may start work, and clears it afterwards. */
void store_set_deadline(store *s, uint64_t deadline_ns);

/* The last failure on this store (status STORE_OK after a success). */
const store_error *store_last_error(const store *s);

/* ---- prepared statements -------------------------------------------------
 *
 * One registry holds every statement the node runs. Modules add theirs
 * during setup (each domain file in store/ has a `register` function); the
 * registry is then frozen and given to every store through store_config.
 * A store prepares all of them, by name, on each new connection in one
 * round trip, so after a reconnect they exist again without the caller
 * noticing. Statements are named by the caller and referred to by the id
 * store_registry_add returns. */

typedef struct store_registry store_registry;
typedef int store_statement;

store_registry *store_registry_new(void);
void store_registry_free(store_registry *registry);
/* Returns the statement's id (0, 1, ...), or -1 when the name is taken, the
 * registry is frozen, or memory ran out. name and sql are copied. */
store_statement store_registry_add(store_registry *registry, const char *name, const char *sql,
                                   int param_count);
/* Looks a statement up by name: its id, or -1. */
store_statement store_registry_find(const store_registry *registry, const char *name);
/* Names the API field a constraint guards, so that a violation becomes a
 * 422 naming it ("users_email_key" -> "email"). 0 or -1. */
int store_registry_constraint(store_registry *registry, const char *constraint, const char *field);
/* After this every add fails; stores may only be opened with a frozen one. */
void store_registry_freeze(store_registry *registry);

/* ---- running statements ------------------------------------------------
 *
 * Parameters and values are text (PostgreSQL's text format); NULL is SQL
 * NULL. A result belongs to the caller and is released with
 * store_result_free (node/ ties it to the request's arena). */

typedef struct store_result store_result;

/* Runs a registered statement. Before it runs, a connection that a caller
 * left inside a transaction (failed or not) is rolled back, so no request
 * inherits another's transaction. On STORE_OK *result is set (also for
 * statements that return no rows); on failure it is NULL and
 * store_last_error says why. A connection lost before the statement could
 * have run is re-established and the statement sent once more. */
store_status store_run(store *s, store_statement statement, const char *const *params,
                       store_result **result);

int store_result_rows(const store_result *result);
int store_result_columns(const store_result *result);
/* NULL for SQL NULL; otherwise text owned by the result. */
const char *store_result_value(const store_result *result, int row, int column);
int store_result_length(const store_result *result, int row, int column);
bool store_result_is_null(const store_result *result, int row, int column);
/* A bigint column's value: true with *out, false for NULL or text that is
 * not a whole decimal number. */
bool store_result_int64(const store_result *result, int row, int column, int64_t *out);
/* Rows changed by INSERT/UPDATE/DELETE. */
long long store_result_affected(const store_result *result);
void store_result_free(store_result *result);

/* ---- batches: libpq pipeline mode ----------------------------------------
 *
 * Independent statements sent together and answered in one round trip.
 * Each item succeeds or fails on its own (a failed item does not stop the
 * others). The batch runs outside any transaction unless the caller is in
 * store_transaction. */

typedef struct store_batch_item {
    store_statement statement;
    const char *const *params;
    store_result *result; /* out: set when status is STORE_OK */
    store_status status;  /* out */
} store_batch_item;

/* STORE_OK when every item succeeded; otherwise the first failure's status
 * (each item's own status says which). STORE_UNAVAILABLE when the connection
 * was lost, in which case no item has a result. */
store_status store_batch(store *s, store_batch_item *items, size_t count);

/* ---- transactions --------------------------------------------------------- */

typedef enum store_isolation {
    STORE_READ_COMMITTED = 0,
    STORE_REPEATABLE_READ,
    STORE_SERIALIZABLE,
} store_isolation;

/* The body runs the transaction's statements with store_run and
 * store_batch and returns STORE_OK to commit, or any other status to roll
 * back (that status is returned). A serialization failure (40001) or a
 * deadlock (40P01), in the body or at COMMIT, rolls back and runs the body
 * again, at most STORE_TRANSACTION_ATTEMPTS times in all, then gives
 * STORE_BUSY. The body must therefore only touch the database and its own
 * data; results it keeps must be released before it returns an error. */
#define STORE_TRANSACTION_ATTEMPTS 3
typedef store_status (*store_transaction_fn)(store *s, void *data);
store_status store_transaction(store *s, store_isolation isolation, store_transaction_fn body,
                               void *data);

/* ---- migrations ------------------------------------------------------ */

typedef struct store_migration {
    int version;      /* NNNN from migrations/NNNN_name.sql */
    const char *name; /* "name" */
    const char *sql;
} store_migration;

typedef struct store_migrate_report {
    int applied;         /* how many this call applied */
    int current_version; /* highest version recorded afterwards */
    int adopted;         /* store_migrate_sets: legacy rows taken over this call */
} store_migrate_report;

/* One of a set's migrations as a database made before 0.2 recorded it: row
 * (legacy_version, legacy_name) of the single sequence schema_migrations
 * stands for the set's version. */
typedef struct store_migration_adopt {
    int legacy_version;
    const char *legacy_name;
    int version;
} store_migration_adopt;

/* A component's own sequence: its versions count apart from every other
 * component's, and are recorded in shoal_migrations (component, version,
 * name, applied_at). */
typedef struct store_migration_set {
    const char *component;       /* [a-z][a-z0-9_-]{0,31}, unique in a call */
    const store_migration *list; /* ascending versions */
    size_t count;
    const store_migration_adopt *adopt; /* its rows in a pre-0.2 schema_migrations */
    size_t adopt_count;
    bool skip; /* declared but switched off: adopted, not applied */
} store_migration_set;

/* Applies every set's migrations not yet recorded in shoal_migrations, in
 * order and once each, each in its own transaction, set after set, over
 * one connection under the session advisory lock that store_migrate takes
 * too (so nodes of either release take turns).
 *
 * A database migrated before 0.2 keeps working: each adopt entry whose row
 * is in schema_migrations is recorded for its component without running
 * anything (the tables are there). A legacy version recorded under another
 * name is an error, and so is, when any set adopts, a legacy row that no
 * set claims (the database is ahead of this build). schema_migrations is
 * never altered or dropped; a migration that has a legacy identity writes
 * its legacy row too, so that the previous release, rolled back to, finds
 * everything applied. reports (NULL, or one per set) say what each set
 * did. Returns STORE_OK, STORE_UNAVAILABLE (cannot connect) or
 * STORE_ERROR, with a message in error. */
store_status store_migrate_sets(const store_config *config, const store_migration_set *sets, size_t count,
                                store_migrate_report *reports, char *error, size_t error_size);

/* Deprecated (0.1): one sequence for everything, in schema_migrations
 * (version, name, applied_at). Applies, in order and once each, the
 * migrations not yet recorded there, each in its own transaction, under the
 * same advisory lock. A recorded version whose name differs from ours is an
 * error (two branches numbered alike). Returns STORE_OK, STORE_UNAVAILABLE
 * (cannot connect) or STORE_ERROR, with a message in error. */
store_status store_migrate(const store_config *config, const store_migration *migrations,
                           size_t count, store_migrate_report *report, char *error,
                           size_t error_size);

/* ---- administrative work (admin.c) ------------------------------------------ */

/* A connection of its own for work that is not a request: seeding, a
 * backfill, maintenance. Nothing bounds its statements but the config's
 * statement_timeout_ms (0: none). Not for requests, which use store_run on
 * the workers' connections. */
typedef struct store_admin store_admin;

/* NULL, with "cannot connect to PostgreSQL: <reason>" in error, when the
 * server cannot be reached. */
store_admin *store_admin_open(const store_config *config, char *error, size_t error_size);
/* Runs sql: several statements when param_count is 0, else one statement
 * with $1..$param_count (text parameters, NULL for SQL NULL). affected
 * (may be NULL) gets the rows the last command counted, or -1 for a
 * command that counts none. STORE_OK; STORE_ERROR with the server's
 * reason; STORE_UNAVAILABLE when the connection is gone. */
store_status store_admin_exec(store_admin *admin, const char *sql, int param_count, const char *const *params,
                              long long *affected, char *error, size_t error_size);
/* Runs a query that answers one integer (the first column of its one row). */
store_status store_admin_number(store_admin *admin, const char *sql, long long *value, char *error,
                                size_t error_size);
/* Closes the connection; an open transaction is rolled back. NULL is fine. */
void store_admin_close(store_admin *admin);

/* ---- the connection budget (capacity.c) ------------------------------------ */

/* How many more connections a server takes. Only client sessions count
 * against max_connections (background processes, autovacuum and WAL senders
 * have slots of their own). A role without pg_read_all_stats sees every
 * session in pg_stat_activity but not other roles' kinds; such a session
 * counts when it is attached to a database, as every client session is. */
typedef struct store_capacity {
    int max_connections;
    /* Slots an ordinary role cannot take: superuser_reserved_connections,
     * plus reserved_connections where the server has it (PostgreSQL 16). */
    int reserved;
    int in_use; /* client sessions, the asking one left out */
} store_capacity;

/* Asks over one short connection of its own, closed before it returns.
 * STORE_OK; STORE_UNAVAILABLE when the server cannot be reached (or is
 * full); STORE_ERROR when it answered otherwise. The reason goes to error. */
store_status store_capacity_read(const store_config *config, store_capacity *out, char *error,
                                 size_t error_size);
/* The connections an ordinary role can still open; never below 0. */
int store_capacity_free(const store_capacity *capacity);

#endif
