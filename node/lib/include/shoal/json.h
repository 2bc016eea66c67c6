/* node/lib/include/shoal/json.h: JSON in and out with jansson, with the limits a server needs.
 *
 * jansson's own nesting limit is a compile-time constant (2048), far too deep
 * for request bodies, so depth is checked by a linear pre-scan before the
 * parser builds anything. */
#ifndef SHOAL_JSON_H
#define SHOAL_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <shoal/arena.h>

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

/* Serialises value compactly into the arena, byte for byte as jansson's
 * json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) would, without jansson's
 * allocations. Returns the text (NUL-terminated) and its length, or NULL
 * when allocation fails, a string is not valid UTF-8, or the value nests
 * deeper than SHOAL_JSON_WRITER_MAX_DEPTH (a value that contains itself
 * does). Does not steal value. */
char *shoal_json_dump(shoal_arena *arena, const json_t *value, size_t *length);

/* ---- writing JSON text straight into an arena ------------------------------
 *
 * A writer appends compact JSON to a buffer in the arena, with the commas
 * and colons in their places, so that an answer needs no jansson values
 * (and none of their heap allocations) at all:
 *
 *     shoal_json_writer *out = shoal_json_writer_new(arena);
 *     shoal_json_open_object(out);
 *     shoal_json_write_key(out, "message");
 *     shoal_json_write_string(out, "Hello, World!");
 *     shoal_json_close_object(out);
 *     const char *text = shoal_json_writer_text(out, &length);
 *
 * Every function accepts a NULL writer (from a failed shoal_json_writer_new)
 * and does nothing; a writer that failed once (memory, invalid UTF-8, a key
 * outside an object, a value where a key belongs, nesting past the limit)
 * stays failed, and shoal_json_writer_text then returns NULL. So a handler
 * writes without checking each call and checks once at the end. */
typedef struct shoal_json_writer shoal_json_writer;

#define SHOAL_JSON_WRITER_MAX_DEPTH 512

/* NULL when memory runs out. */
shoal_json_writer *shoal_json_writer_new(shoal_arena *arena);
void shoal_json_open_object(shoal_json_writer *writer);
void shoal_json_close_object(shoal_json_writer *writer);
void shoal_json_open_array(shoal_json_writer *writer);
void shoal_json_close_array(shoal_json_writer *writer);
/* An object's key; the next call writes its value. */
void shoal_json_write_key(shoal_json_writer *writer, const char *key);
/* Text must be UTF-8; it is escaped as JSON requires. NULL writes null. */
void shoal_json_write_string(shoal_json_writer *writer, const char *text);
void shoal_json_write_string_n(shoal_json_writer *writer, const char *text, size_t length);
void shoal_json_write_integer(shoal_json_writer *writer, long long value);
/* As jansson writes reals (17 significant digits, always a '.' or an
 * exponent); NaN and infinities fail the writer, JSON has no such numbers. */
void shoal_json_write_real(shoal_json_writer *writer, double value);
void shoal_json_write_bool(shoal_json_writer *writer, bool value);
void shoal_json_write_null(shoal_json_writer *writer);
/* A jansson value, as shoal_json_dump writes it. NULL fails the writer. */
void shoal_json_write_value(shoal_json_writer *writer, const json_t *value);
/* Text that is already one JSON value (a cached body, say), copied as it
 * is: the caller vouches for it. */
void shoal_json_write_raw(shoal_json_writer *writer, const char *json, size_t length);
/* The text (NUL-terminated, in the arena) and its length; NULL when the
 * writer failed, holds nothing, or has an object or array still open. */
const char *shoal_json_writer_text(const shoal_json_writer *writer, size_t *length);

/* text itself when it is valid UTF-8, else a copy in the arena with each
 * byte that is not replaced by U+FFFD; NULL when memory runs out. For text
 * that reaches an answer from elsewhere (jansson's parse errors quote the
 * client's bytes), which the writer would refuse. */
const char *shoal_json_valid_utf8(shoal_arena *arena, const char *text);

/* Writes text as a JSON string body (without the quotes) into out, escaping
 * what JSON requires; truncates on a character boundary to fit. Returns the
 * bytes written, excluding the terminating NUL. For log lines. */
size_t shoal_json_escape(const char *text, char *out, size_t size);

/* True when text[0..length) is valid UTF-8 by the rule jansson applies to
 * JSON strings: no overlong forms, no surrogates, nothing past U+10FFFF. */
bool shoal_utf8_valid(const char *text, size_t length);

#endif
