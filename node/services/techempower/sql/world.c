/* node/services/techempower/sql/world.c */
#include "world.h"

#include <stdbool.h>
#include <stdlib.h>

/* "-2147483648" and its NUL. */
#define INTEGER_TEXT_SIZE 12

/* Parameters go to PostgreSQL as text; this is the one formatting step of
 * every statement, so it skips snprintf's format parsing. */
static void format_integer(int value, char out[INTEGER_TEXT_SIZE])
{
    char reversed[INTEGER_TEXT_SIZE];
    unsigned magnitude = value < 0 ? 0u - (unsigned)value : (unsigned)value;
    size_t length = 0;
    do {
        reversed[length++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    size_t position = 0;
    if (value < 0)
        out[position++] = '-';
    while (length > 0)
        out[position++] = reversed[--length];
    out[position] = '\0';
}

/* PostgreSQL's text for an integer column: optional '-', then digits. */
static bool parse_integer(const char *text, int *out)
{
    if (text == NULL)
        return false;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < -2147483647L - 1 || value > 2147483647L)
        return false;
    *out = (int)value;
    return true;
}

/* One row of `SELECT id, randomnumber` into *out. */
static store_status world_from_result(const store_result *result, store_world *out)
{
    if (store_result_rows(result) < 1)
        return STORE_NOT_FOUND;
    if (store_result_columns(result) != 2 || !parse_integer(store_result_value(result, 0, 0), &out->id) ||
        !parse_integer(store_result_value(result, 0, 1), &out->random_number))
        return STORE_ERROR;
    return STORE_OK;
}

int store_world_register(store_registry *registry, store_world_statements *statements)
{
    statements->select_by_id =
        store_registry_add(registry, "world_select_by_id", "SELECT id, randomnumber FROM world WHERE id = $1", 1);
    statements->update_by_id = store_registry_add(
        registry, "world_update_by_id", "UPDATE world SET randomnumber = $2 WHERE id = $1", 2);
    return statements->select_by_id >= 0 && statements->update_by_id >= 0 ? 0 : -1;
}

store_status store_world_read(store *s, const store_world_statements *statements, int id, store_world *out)
{
    char id_text[INTEGER_TEXT_SIZE];
    format_integer(id, id_text);
    const char *params[1] = {id_text};
    store_result *result = NULL;
    store_status status = store_run(s, statements->select_by_id, params, &result);
    if (status != STORE_OK)
        return status;
    status = world_from_result(result, out);
    store_result_free(result);
    return status;
}

/* The results of a batch that failed as a whole may still hold some items'
 * results; every one is released here. */
static void free_results(store_batch_item *items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (items[i].result != NULL)
            store_result_free(items[i].result);
        items[i].result = NULL;
    }
}

store_status store_world_read_many(store *s, const store_world_statements *statements, const int *ids,
                                   size_t count, store_world *out)
{
    store_batch_item items[STORE_WORLD_BATCH_MAX];
    const char *params[STORE_WORLD_BATCH_MAX][1];
    char texts[STORE_WORLD_BATCH_MAX][INTEGER_TEXT_SIZE];
    for (size_t done = 0; done < count;) {
        size_t chunk = count - done < STORE_WORLD_BATCH_MAX ? count - done : STORE_WORLD_BATCH_MAX;
        for (size_t i = 0; i < chunk; i++) {
            format_integer(ids[done + i], texts[i]);
            params[i][0] = texts[i];
            items[i] = (store_batch_item){.statement = statements->select_by_id, .params = params[i]};
        }
        store_status status = store_batch(s, items, chunk);
        for (size_t i = 0; i < chunk && status == STORE_OK; i++)
            status = world_from_result(items[i].result, &out[done + i]);
        free_results(items, chunk);
        if (status != STORE_OK)
            return status;
        done += chunk;
    }
    return STORE_OK;
}

static int compare_by_id(const void *left, const void *right)
{
    int a = ((const store_world *)left)->id;
    int b = ((const store_world *)right)->id;
    return (a > b) - (a < b);
}

typedef struct update_work {
    const store_world_statements *statements;
    const store_world *worlds;
    size_t count;
} update_work;

/* The transaction's body: every UPDATE, pipelined in chunks. It keeps no
 * result, so a retry after a deadlock or serialization failure starts
 * clean. */
static store_status run_updates(store *s, void *data)
{
    const update_work *work = data;
    store_batch_item items[STORE_WORLD_BATCH_MAX];
    const char *params[STORE_WORLD_BATCH_MAX][2];
    char texts[STORE_WORLD_BATCH_MAX][2][INTEGER_TEXT_SIZE];
    for (size_t done = 0; done < work->count;) {
        size_t left = work->count - done;
        size_t chunk = left < STORE_WORLD_BATCH_MAX ? left : STORE_WORLD_BATCH_MAX;
        for (size_t i = 0; i < chunk; i++) {
            format_integer(work->worlds[done + i].id, texts[i][0]);
            format_integer(work->worlds[done + i].random_number, texts[i][1]);
            params[i][0] = texts[i][0];
            params[i][1] = texts[i][1];
            items[i] = (store_batch_item){.statement = work->statements->update_by_id, .params = params[i]};
        }
        store_status status = store_batch(s, items, chunk);
        for (size_t i = 0; i < chunk && status == STORE_OK; i++)
            if (store_result_affected(items[i].result) != 1)
                status = STORE_NOT_FOUND;
        free_results(items, chunk);
        if (status != STORE_OK)
            return status;
        done += chunk;
    }
    return STORE_OK;
}

store_status store_world_update_many(store *s, const store_world_statements *statements, store_world *worlds,
                                     size_t count)
{
    if (count == 0)
        return STORE_OK;
    qsort(worlds, count, sizeof *worlds, compare_by_id);
    update_work work = {.statements = statements, .worlds = worlds, .count = count};
    return store_transaction(s, STORE_READ_COMMITTED, run_updates, &work);
}
