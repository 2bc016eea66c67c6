/* node/services/techempower/json_text.c */
#include "json_text.h"

#include <stdint.h>
#include <string.h>

/* {"id":-2147483648,"randomNumber":-2147483648}, and a comma. */
#define WORLD_JSON_MAX 48

static char *append(char *out, const char *text, size_t length)
{
    memcpy(out, text, length);
    return out + length;
}

#define APPEND_LITERAL(out, literal) append((out), (literal), sizeof(literal) - 1)

static char *append_integer(char *out, int value)
{
    char reversed[11];
    unsigned magnitude = value < 0 ? 0u - (unsigned)value : (unsigned)value;
    size_t length = 0;
    do {
        reversed[length++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (value < 0)
        *out++ = '-';
    while (length > 0)
        *out++ = reversed[--length];
    return out;
}

static char *append_world(char *out, const store_world *world)
{
    out = APPEND_LITERAL(out, "{\"id\":");
    out = append_integer(out, world->id);
    out = APPEND_LITERAL(out, ",\"randomNumber\":");
    out = append_integer(out, world->random_number);
    *out++ = '}';
    return out;
}

char *bench_json_world(shoal_arena *arena, const store_world *world, size_t *length)
{
    char *text = shoal_arena_alloc(arena, WORLD_JSON_MAX + 1);
    if (text == NULL)
        return NULL;
    char *end = append_world(text, world);
    *end = '\0';
    *length = (size_t)(end - text);
    return text;
}

char *bench_json_worlds(shoal_arena *arena, const store_world *worlds, size_t count, size_t *length)
{
    if (count > (SIZE_MAX - 3) / WORLD_JSON_MAX)
        return NULL;
    char *text = shoal_arena_alloc(arena, count * WORLD_JSON_MAX + 3);
    if (text == NULL)
        return NULL;
    char *out = text;
    *out++ = '[';
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            *out++ = ',';
        out = append_world(out, &worlds[i]);
    }
    *out++ = ']';
    *out = '\0';
    *length = (size_t)(out - text);
    return text;
}

/* JSON requires escaping '"', '\\' and the control characters; everything
 * else, UTF-8 included, goes through as it is. */
static char *append_json_string(char *out, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    *out++ = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            out = APPEND_LITERAL(out, "\\\"");
            break;
        case '\\':
            out = APPEND_LITERAL(out, "\\\\");
            break;
        case '\n':
            out = APPEND_LITERAL(out, "\\n");
            break;
        case '\r':
            out = APPEND_LITERAL(out, "\\r");
            break;
        case '\t':
            out = APPEND_LITERAL(out, "\\t");
            break;
        default:
            if (*p < 0x20) {
                out = APPEND_LITERAL(out, "\\u00");
                *out++ = hex[*p >> 4];
                *out++ = hex[*p & 0xf];
            } else {
                *out++ = (char)*p;
            }
        }
    }
    *out++ = '"';
    return out;
}

char *bench_json_message(shoal_arena *arena, const char *message, size_t *length)
{
    size_t message_length = strlen(message);
    /* Each byte becomes at most six ("\u001f"). */
    if (message_length > (SIZE_MAX - 32) / 6)
        return NULL;
    char *text = shoal_arena_alloc(arena, message_length * 6 + 32);
    if (text == NULL)
        return NULL;
    char *out = APPEND_LITERAL(text, "{\"message\":");
    out = append_json_string(out, message);
    *out++ = '}';
    *out = '\0';
    *length = (size_t)(out - text);
    return text;
}
