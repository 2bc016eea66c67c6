/* node/services/techempower/sql/world.h: the TechEmpower `world` table (10000 rows, ids 1..10000).
 *
 * The benchmark's rules shape this module: every row is read by its own
 * statement (never `IN (...)`), and the statements of one request go out
 * together in one pipeline (store_batch), so N rows cost N statements but
 * one round trip. Results are copied into the caller's arrays; no libpq
 * type leaves store/. */
#ifndef STORE_WORLD_H
#define STORE_WORLD_H

#include <stddef.h>

#include <shoal/store.h>

/* The most statements one pipeline carries; more rows take more round
 * trips. It bounds the stack a call uses (about 40 KiB for updates), and
 * equals the benchmark's own cap on rows per request. */
#define STORE_WORLD_BATCH_MAX 500

typedef struct store_world {
    int id;
    int random_number;
} store_world;

/* What store_world_register added to a registry, for the calls below. */
typedef struct store_world_statements {
    store_statement select_by_id;
    store_statement update_by_id;
} store_world_statements;

/* Adds this module's statements to registry (before it is frozen).
 * 0, or -1 when the registry refused (frozen, a name taken, no memory). */
int store_world_register(store_registry *registry, store_world_statements *statements);

/* One row by id into *out. STORE_NOT_FOUND when there is no such row. */
store_status store_world_read(store *s, const store_world_statements *statements, int id,
                              store_world *out);

/* count rows, one statement each, pipelined: out[i] is the row of ids[i]
 * (ids may repeat). STORE_NOT_FOUND when any id has no row; on any failure
 * the contents of out are unspecified. */
store_status store_world_read_many(store *s, const store_world_statements *statements,
                                   const int *ids, size_t count, store_world *out);

/* Writes each worlds[i].random_number to row worlds[i].id, one UPDATE
 * statement each, pipelined, in one transaction: when it returns STORE_OK
 * every row is committed. worlds is first sorted by id, in place, so that
 * concurrent callers lock rows in the same order and cannot deadlock one
 * another; the updates then run in the array's new order, so where an id
 * repeats, the entry that ends up last is the value that stays.
 * STORE_NOT_FOUND when an id has no row (then nothing is written). */
store_status store_world_update_many(store *s, const store_world_statements *statements,
                                     store_world *worlds, size_t count);

#endif
