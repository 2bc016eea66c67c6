/* node/services/techempower/sql/fortune.h: the TechEmpower `fortune` table.
 *
 * The rows are copied into memory the caller provides through an
 * allocator (node/ passes the request's arena), so nothing of libpq
 * outlives the call and the caller frees nothing. */
#ifndef STORE_FORTUNE_H
#define STORE_FORTUNE_H

#include <stddef.h>

#include <shoal/store.h>

typedef struct store_fortune {
    int id;
    const char *message; /* UTF-8, NUL-terminated */
    size_t message_length;
} store_fortune;

/* Returns size bytes aligned for any type, or NULL. */
typedef void *(*store_fortune_allocate_fn)(void *context, size_t size);

typedef struct store_fortune_statements {
    store_statement select_all;
} store_fortune_statements;

/* Adds this module's statements to registry (before it is frozen).
 * 0, or -1 when the registry refused. */
int store_fortune_register(store_registry *registry, store_fortune_statements *statements);

/* Every row, in no particular order. *fortunes gets an array of *count rows
 * with room for spare more after them (a caller that adds rows in memory
 * then needs no second array); the array and the messages come from
 * allocate(context, ...). STORE_ERROR when allocate fails. */
store_status store_fortune_all(store *s, const store_fortune_statements *statements,
                               store_fortune_allocate_fn allocate, void *context, size_t spare,
                               store_fortune **fortunes, size_t *count);

#endif
