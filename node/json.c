/* node/json.c: parsing with limits, serialising into the request arena. */
#include "json.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int shoal_json_depth(const char *text, size_t length, int limit)
{
    int depth = 0;
    int deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < length; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest) {
                deepest = depth;
                if (deepest > limit)
                    return limit + 1;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return deepest;
}

static bool only_whitespace(const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return false;
    return true;
}

shoal_json_result shoal_json_parse(const char *text, size_t length, int max_depth, json_t **out,
                                   char *message, size_t message_size)
{
    *out = NULL;
    if (text == NULL || only_whitespace(text, length)) {
        if (message != NULL)
            snprintf(message, message_size, "the body is empty");
        return SHOAL_JSON_EMPTY;
    }
    if (shoal_json_depth(text, length, max_depth) > max_depth) {
        if (message != NULL)
            snprintf(message, message_size, "the body nests deeper than %d levels", max_depth);
        return SHOAL_JSON_TOO_DEEP;
    }
    json_error_t error;
    /* Any value may be the top level; the handlers check the shape. */
    json_t *value = json_loadb(text, length, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (value == NULL) {
        if (message != NULL)
            snprintf(message, message_size, "malformed JSON at line %d, column %d: %s", error.line,
                     error.column, error.text);
        return SHOAL_JSON_MALFORMED;
    }
    *out = value;
    return SHOAL_JSON_OK;
}

typedef struct dump_buffer {
    shoal_arena *arena;
    char *data;
    size_t length;
    size_t capacity;
} dump_buffer;

static int append_to_buffer(const char *chunk, size_t size, void *context)
{
    dump_buffer *buffer = context;
    if (buffer->length + size + 1 > buffer->capacity) {
        size_t capacity = buffer->capacity * 2;
        while (capacity < buffer->length + size + 1)
            capacity *= 2;
        /* The old buffer stays in the arena until the request ends: cheaper
         * than a realloc scheme, and most bodies fit the first guess. */
        char *grown = shoal_arena_alloc(buffer->arena, capacity);
        if (grown == NULL)
            return -1;
        memcpy(grown, buffer->data, buffer->length);
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->length, chunk, size);
    buffer->length += size;
    return 0;
}

char *shoal_json_dump(shoal_arena *arena, const json_t *value, size_t *length)
{
    dump_buffer buffer = {.arena = arena, .capacity = 512};
    buffer.data = shoal_arena_alloc(arena, buffer.capacity);
    if (buffer.data == NULL)
        return NULL;
    if (json_dump_callback(value, append_to_buffer, &buffer, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        return NULL;
    buffer.data[buffer.length] = '\0';
    if (length != NULL)
        *length = buffer.length;
    return buffer.data;
}

size_t shoal_json_escape(const char *text, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t written = 0;
    if (size == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        char escaped[7];
        size_t n;
        if (*p == '"' || *p == '\\') {
            escaped[0] = '\\';
            escaped[1] = (char)*p;
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            escaped[0] = '\\';
            escaped[1] = 'u';
            escaped[2] = '0';
            escaped[3] = '0';
            escaped[4] = hex[*p >> 4];
            escaped[5] = hex[*p & 0xf];
            n = 6;
        } else if (*p >= 0x80) {
            /* Bytes that are not valid UTF-8 would make the line invalid
             * JSON; the log only needs to show that something odd was there. */
            size_t sequence = *p >= 0xc2 && *p <= 0xdf ? 2 : (*p & 0xf0) == 0xe0 ? 3 : *p <= 0xf4 && *p >= 0xf0 ? 4 : 0;
            bool valid = sequence > 0;
            for (size_t k = 1; valid && k < sequence; k++)
                valid = (p[k] & 0xc0) == 0x80;
            /* No overlong forms, surrogates, or code points past U+10FFFF. */
            if (valid && sequence > 2)
                valid = !(*p == 0xe0 && p[1] < 0xa0) && !(*p == 0xed && p[1] > 0x9f) &&
                        !(*p == 0xf0 && p[1] < 0x90) && !(*p == 0xf4 && p[1] > 0x8f);
            if (valid) {
                if (written + sequence >= size)
                    break;
                memcpy(out + written, p, sequence);
                written += sequence;
                p += sequence - 1;
                continue;
            }
            memcpy(escaped, "\\ufffd", 6);
            n = 6;
        } else {
            escaped[0] = (char)*p;
            n = 1;
        }
        if (written + n >= size)
            break;
        memcpy(out + written, escaped, n);
        written += n;
    }
    out[written] = '\0';
    return written;
}
