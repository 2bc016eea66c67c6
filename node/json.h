/* node/json.h: JSON in and out with jansson, with the limits a server needs.
 *
 * jansson's own nesting limit is a compile-time constant (2048), far too deep
 * for request bodies, so depth is checked by a linear pre-scan before the
 * parser builds anything. */
#ifndef SHOAL_JSON_H
#define SHOAL_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "arena.h"

typedef enum shoal_json_result {
    SHOAL_JSON_OK,
    SHOAL_JSON_EMPTY,     /* no bytes, or only whitespace */
    SHOAL_JSON_MALFORMED, /* not JSON (syntax, bad UTF-8, NUL, duplicate keys) */
    SHOAL_JSON_TOO_DEEP,  /* more nested arrays/objects than allowed */
} shoal_json_result;

/* Nesting depth of a JSON text: the maximum number of open [ or { at once,
 * ignoring brackets inside strings. Stops counting (returns limit + 1) as
 * soon as the limit is passed. */
int shoal_json_depth(const char *text, size_t length, int limit);

/* Parses text. On failure *out is NULL and message (if given) says where.
 * On success the caller owns one reference to *out. */
shoal_json_result shoal_json_parse(const char *text, size_t length, int max_depth, json_t **out,
                                   char *message, size_t message_size);

/* Serialises value compactly into the arena. Returns the text (NUL-terminated)
 * and its length, or NULL when allocation fails. Does not steal value. */
char *shoal_json_dump(shoal_arena *arena, const json_t *value, size_t *length);

/* Writes text as a JSON string body (without the quotes) into out, escaping
 * what JSON requires; truncates on a character boundary to fit. Returns the
 * bytes written, excluding the terminating NUL. For log lines. */
size_t shoal_json_escape(const char *text, char *out, size_t size);

#endif
