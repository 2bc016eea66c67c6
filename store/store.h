/* store/store.h: PostgreSQL, one connection per worker thread.
 *
 * A store is owned by exactly one thread. It connects lazily, and after a
 * failure it reconnects by itself on the next call, at most once per
 * STORE_RECONNECT_INTERVAL_MS so that a PostgreSQL outage does not turn into
 * a connection storm from every worker of every node. */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct store store;

typedef struct store_config {
    const char *conninfo;     /* URI or key=value; "" = libpq's PG* variables */
    int connect_timeout_s;    /* libpq connect_timeout */
    /* How long a call waits for PostgreSQL's answer before the connection
     * counts as lost and is dropped (0: connect_timeout_s). A server that
     * accepts and never answers must not hold a worker forever. */
    int answer_timeout_ms;
    const char *application_name; /* shows in pg_stat_activity; may be NULL */
} store_config;

typedef enum store_status {
    STORE_OK = 0,
    STORE_UNAVAILABLE, /* cannot reach PostgreSQL now; the caller answers 503 */
    STORE_ERROR,       /* PostgreSQL refused the statement */
} store_status;

#define STORE_RECONNECT_INTERVAL_MS 250

/* Never fails for an unreachable server (that is reported by the calls);
 * NULL only when memory runs out. The config's strings are copied. */
store *store_open(const store_config *config);
void store_close(store *s);

/* One round trip; reconnects first when the connection is down. */
store_status store_ping(store *s);

/* 0 when conninfo is a valid URI or key=value string for libpq, else -1
 * with libpq's reason in error. Parses only; connects to nothing. */
int store_conninfo_check(const char *conninfo, char *error, size_t error_size);
bool store_connected(const store *s);
/* How many times this connection was re-established after a loss. */
unsigned long store_reconnect_count(const store *s);
/* The server's backend PID for this connection (0 when not connected);
 * tests use it to kill the connection from outside. */
int store_backend_pid(const store *s);

/* ---- migrations ------------------------------------------------------ */

typedef struct store_migration {
    int version;      /* NNNN from store/migrations/NNNN_name.sql */
    const char *name; /* "name" */
    const char *sql;
} store_migration;

/* The migrations in store/migrations, embedded at build time, in order. */
extern const store_migration store_builtin_migrations[];
extern const size_t store_builtin_migration_count;

typedef struct store_migrate_report {
    int applied;        /* how many this call applied */
    int current_version;/* highest version recorded afterwards */
} store_migrate_report;

/* Applies, in order and once each, the migrations not yet recorded in the
 * schema_migrations table, each in its own transaction. A session advisory
 * lock serialises nodes that start at the same moment. A recorded version
 * whose name differs from ours is an error (two branches numbered alike).
 * Returns STORE_OK, STORE_UNAVAILABLE (cannot connect) or STORE_ERROR, with
 * a message in error. */
store_status store_migrate(const store_config *config, const store_migration *migrations,
                           size_t count, store_migrate_report *report, char *error,
                           size_t error_size);

#endif
