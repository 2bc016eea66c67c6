/* node/services/conduit/record.h: a row of nullable text fields as the opaque bytes the
 * shared cache keeps (an article or a profile, without the viewer's
 * flags), and back.
 *
 * The bytes are a format mark, then per field 'n' for NULL or 's', the
 * text and a NUL. Decoding points into the bytes (they stay where
 * shoal_cached put them, in the request's arena), so it copies nothing.
 * Text from PostgreSQL holds no NUL, so none is lost. */
#ifndef API_RECORD_H
#define API_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include <shoal/arena.h>

/* The bytes in the arena and their length into *length; NULL when memory
 * ran out. */
void *api_record_encode(shoal_arena *arena, const char *const *fields, size_t count, size_t *length);
/* Exactly count fields in bytes, each into fields[i] (NULL for NULL);
 * false when the bytes are not such a record (another format, another
 * count, cut short): the caller then reads the source instead. bytes must
 * end with the last field's NUL, as encode made it. */
bool api_record_decode(const void *bytes, size_t length, const char **fields, size_t count);

#endif
