/* node/services/techempower/sql/fortune.c */
#include "fortune.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int store_fortune_register(store_registry *registry, store_fortune_statements *statements)
{
    statements->select_all = store_registry_add(registry, "fortune_select_all", "SELECT id, message FROM fortune", 0);
    return statements->select_all >= 0 ? 0 : -1;
}

static bool parse_id(const char *text, int *out)
{
    if (text == NULL)
        return false;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < INT32_MIN || value > INT32_MAX)
        return false;
    *out = (int)value;
    return true;
}

static store_status copy_rows(const store_result *result, store_fortune_allocate_fn allocate, void *context,
                              size_t spare, store_fortune **fortunes, size_t *count)
{
    int rows = store_result_rows(result);
    if (rows < 0 || store_result_columns(result) != 2)
        return STORE_ERROR;
    if ((size_t)rows > (SIZE_MAX / sizeof **fortunes) - spare)
        return STORE_ERROR;
    store_fortune *copies = allocate(context, ((size_t)rows + spare) * sizeof *copies);
    if (copies == NULL)
        return STORE_ERROR;
    for (int row = 0; row < rows; row++) {
        const char *message = store_result_value(result, row, 1);
        int length = store_result_length(result, row, 1);
        if (message == NULL || length < 0 || !parse_id(store_result_value(result, row, 0), &copies[row].id))
            return STORE_ERROR;
        char *text = allocate(context, (size_t)length + 1);
        if (text == NULL)
            return STORE_ERROR;
        memcpy(text, message, (size_t)length);
        text[length] = '\0';
        copies[row].message = text;
        copies[row].message_length = (size_t)length;
    }
    *fortunes = copies;
    *count = (size_t)rows;
    return STORE_OK;
}

store_status store_fortune_all(store *s, const store_fortune_statements *statements,
                               store_fortune_allocate_fn allocate, void *context, size_t spare,
                               store_fortune **fortunes, size_t *count)
{
    *fortunes = NULL;
    *count = 0;
    store_result *result = NULL;
    store_status status = store_run(s, statements->select_all, NULL, &result);
    if (status != STORE_OK)
        return status;
    status = copy_rows(result, allocate, context, spare, fortunes, count);
    store_result_free(result);
    return status;
}
