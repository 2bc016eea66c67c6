/* node/services/conduit/record.c */
#include "record.h"

#include <string.h>

/* Changes with the layout, so that a node never reads what a node of
 * another version cached under the same key: it refills instead. */
#define RECORD_FORMAT 'R'

void *api_record_encode(shoal_arena *arena, const char *const *fields, size_t count, size_t *length)
{
    size_t size = 1;
    for (size_t i = 0; i < count; i++)
        size += fields[i] != NULL ? strlen(fields[i]) + 2 : 1;
    char *bytes = shoal_arena_alloc(arena, size);
    if (bytes == NULL)
        return NULL;
    char *at = bytes;
    *at++ = RECORD_FORMAT;
    for (size_t i = 0; i < count; i++) {
        if (fields[i] == NULL) {
            *at++ = 'n';
            continue;
        }
        size_t field_length = strlen(fields[i]);
        *at++ = 's';
        memcpy(at, fields[i], field_length + 1);
        at += field_length + 1;
    }
    *length = size;
    return bytes;
}

bool api_record_decode(const void *bytes, size_t length, const char **fields, size_t count)
{
    const char *at = bytes, *end = at + length;
    if (length < 1 || *at++ != RECORD_FORMAT)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (at >= end)
            return false;
        char mark = *at++;
        if (mark == 'n') {
            fields[i] = NULL;
            continue;
        }
        const char *nul = mark == 's' ? memchr(at, '\0', (size_t)(end - at)) : NULL;
        if (nul == NULL)
            return false;
        fields[i] = at;
        at = nul + 1;
    }
    return at == end;
}
