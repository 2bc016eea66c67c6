/* node/lib/json.c: parsing with limits, serialising into the request arena. */
#include <shoal/json.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
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

/* ---- writing ------------------------------------------------------------ */

#define DEPTH_WORDS ((SHOAL_JSON_WRITER_MAX_DEPTH + 1 + 63) / 64)

/* Most answers fit this; the buffer then grows in place in the arena. */
#define FIRST_CAPACITY 256

struct shoal_json_writer {
    shoal_arena *arena;
    char *data;
    size_t length;
    size_t capacity; /* data holds capacity bytes; one is kept for the NUL */
    unsigned depth;
    bool failed;
    bool after_key;
    uint64_t in_object[DEPTH_WORDS]; /* per depth: an object, else an array */
    uint64_t has_items[DEPTH_WORDS]; /* per depth: the next item needs a comma */
};

static bool bit(const uint64_t *bits, unsigned index)
{
    return (bits[index / 64] >> (index % 64)) & 1u;
}

static void set_bit(uint64_t *bits, unsigned index, bool on)
{
    uint64_t mask = (uint64_t)1 << (index % 64);
    bits[index / 64] = on ? bits[index / 64] | mask : bits[index / 64] & ~mask;
}

static bool fail(shoal_json_writer *writer)
{
    writer->failed = true;
    return false;
}

/* Room for more bytes and the final NUL. */
static bool reserve(shoal_json_writer *writer, size_t more)
{
    if (more > SIZE_MAX / 4 - writer->length)
        return fail(writer);
    size_t needed = writer->length + more + 1;
    if (needed <= writer->capacity)
        return true;
    size_t capacity = writer->capacity * 2;
    if (capacity < needed)
        capacity = needed;
    char *grown = shoal_arena_resize(writer->arena, writer->data, writer->capacity, capacity);
    if (grown == NULL)
        return fail(writer);
    writer->data = grown;
    writer->capacity = capacity;
    return true;
}

static bool append(shoal_json_writer *writer, const char *bytes, size_t length)
{
    if (!reserve(writer, length))
        return false;
    memcpy(writer->data + writer->length, bytes, length);
    writer->length += length;
    return true;
}

static bool append_byte(shoal_json_writer *writer, char byte)
{
    if (!reserve(writer, 1))
        return false;
    writer->data[writer->length++] = byte;
    return true;
}

shoal_json_writer *shoal_json_writer_new(shoal_arena *arena)
{
    shoal_json_writer *writer = shoal_arena_alloc(arena, sizeof *writer);
    if (writer == NULL)
        return NULL;
    memset(writer, 0, sizeof *writer);
    writer->arena = arena;
    /* Allocated last, so that it is the arena's newest allocation and grows
     * in place while the caller allocates nothing else. */
    writer->data = shoal_arena_alloc(arena, FIRST_CAPACITY);
    if (writer->data == NULL)
        return NULL;
    writer->capacity = FIRST_CAPACITY;
    return writer;
}

/* Before any value: a comma between array items; inside an object a value
 * must follow its key; at the top level there is one value. */
static bool begin_value(shoal_json_writer *writer)
{
    if (writer->failed)
        return false;
    if (writer->depth == 0)
        return writer->length == 0 || fail(writer);
    if (bit(writer->in_object, writer->depth)) {
        if (!writer->after_key)
            return fail(writer);
        writer->after_key = false;
        return true;
    }
    if (bit(writer->has_items, writer->depth) && !append_byte(writer, ','))
        return false;
    set_bit(writer->has_items, writer->depth, true);
    return true;
}

static void open_container(shoal_json_writer *writer, bool object)
{
    if (writer == NULL || !begin_value(writer))
        return;
    if (writer->depth == SHOAL_JSON_WRITER_MAX_DEPTH) {
        fail(writer);
        return;
    }
    if (!append_byte(writer, object ? '{' : '['))
        return;
    writer->depth++;
    set_bit(writer->in_object, writer->depth, object);
    set_bit(writer->has_items, writer->depth, false);
}

static void close_container(shoal_json_writer *writer, bool object)
{
    if (writer == NULL || writer->failed)
        return;
    if (writer->depth == 0 || bit(writer->in_object, writer->depth) != object || writer->after_key) {
        fail(writer);
        return;
    }
    if (append_byte(writer, object ? '}' : ']'))
        writer->depth--;
}

void shoal_json_open_object(shoal_json_writer *writer)
{
    open_container(writer, true);
}

void shoal_json_close_object(shoal_json_writer *writer)
{
    close_container(writer, true);
}

void shoal_json_open_array(shoal_json_writer *writer)
{
    open_container(writer, false);
}

void shoal_json_close_array(shoal_json_writer *writer)
{
    close_container(writer, false);
}

/* What each byte needs inside a JSON string: 0 nothing, 1 an escape, 2 a
 * check that it starts a valid UTF-8 sequence. */
static const unsigned char string_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* The length of the valid UTF-8 sequence at text (at most available bytes
 * long), or 0: no overlong forms, no surrogates, nothing past U+10FFFF, as
 * jansson checks. */
static size_t utf8_sequence(const unsigned char *text, size_t available)
{
    unsigned char lead = text[0];
    size_t length = lead >= 0xc2 && lead <= 0xdf ? 2 : (lead & 0xf0) == 0xe0 ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (length == 0 || length > available)
        return 0;
    for (size_t i = 1; i < length; i++)
        if ((text[i] & 0xc0) != 0x80)
            return 0;
    if ((lead == 0xe0 && text[1] < 0xa0) || (lead == 0xed && text[1] > 0x9f) ||
        (lead == 0xf0 && text[1] < 0x90) || (lead == 0xf4 && text[1] > 0x8f))
        return 0;
    return length;
}

bool shoal_utf8_valid(const char *text, size_t length)
{
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;
    while (i < length) {
        /* Every request's path and query are checked: ASCII, nearly always,
         * eight bytes at a time. */
        uint64_t eight;
        if (length - i >= sizeof eight) {
            memcpy(&eight, bytes + i, sizeof eight);
            if ((eight & 0x8080808080808080u) == 0) {
                i += sizeof eight;
                continue;
            }
        }
        if (bytes[i] < 0x80) {
            i++;
            continue;
        }
        size_t sequence = utf8_sequence(bytes + i, length - i);
        if (sequence == 0)
            return false;
        i += sequence;
    }
    return true;
}

const char *shoal_json_valid_utf8(shoal_arena *arena, const char *text)
{
    const unsigned char *bytes = (const unsigned char *)text;
    size_t length = strlen(text);
    size_t invalid = 0;
    for (size_t i = 0; i < length;) {
        size_t sequence = bytes[i] < 0x80 ? 1 : utf8_sequence(bytes + i, length - i);
        invalid += sequence == 0;
        i += sequence > 0 ? sequence : 1;
    }
    if (invalid == 0)
        return text;
    /* Each invalid byte becomes the three bytes of U+FFFD. */
    char *copy = shoal_arena_alloc(arena, length + 2 * invalid + 1);
    if (copy == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < length;) {
        size_t sequence = bytes[i] < 0x80 ? 1 : utf8_sequence(bytes + i, length - i);
        if (sequence == 0) {
            memcpy(copy + used, "\xef\xbf\xbd", 3);
            used += 3;
            i++;
        } else {
            memcpy(copy + used, text + i, sequence);
            used += sequence;
            i += sequence;
        }
    }
    copy[used] = '\0';
    return copy;
}

static bool append_quoted(shoal_json_writer *writer, const char *text, size_t length)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson writes \u001F, not \u001f */
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;
    while (i < length && string_class[bytes[i]] == 0)
        i++;
    /* Plain text is most of most strings: reserve for it at once, and when
     * nothing needs a look, write it between its quotes in one copy. */
    if (!reserve(writer, length + 2))
        return false;
    char *at = writer->data + writer->length;
    if (i == length) {
        at[0] = '"';
        memcpy(at + 1, text, length);
        at[length + 1] = '"';
        writer->length += length + 2;
        return true;
    }
    at[0] = '"';
    writer->length++;
    size_t start = 0;
    while (i < length) {
        unsigned char kind = string_class[bytes[i]];
        if (kind == 0) {
            i++;
            continue;
        }
        if (kind == 2) {
            size_t sequence = utf8_sequence(bytes + i, length - i);
            if (sequence == 0)
                return fail(writer);
            i += sequence;
            continue;
        }
        if (!append(writer, text + start, i - start))
            return false;
        char escaped[6] = {'\\', 0, 0, 0, 0, 0};
        size_t escaped_length = 2;
        switch (bytes[i]) {
        case '"':
        case '\\':
            escaped[1] = (char)bytes[i];
            break;
        case '\b':
            escaped[1] = 'b';
            break;
        case '\f':
            escaped[1] = 'f';
            break;
        case '\n':
            escaped[1] = 'n';
            break;
        case '\r':
            escaped[1] = 'r';
            break;
        case '\t':
            escaped[1] = 't';
            break;
        default:
            memcpy(escaped + 1, "u00", 3);
            escaped[4] = hex[bytes[i] >> 4];
            escaped[5] = hex[bytes[i] & 0xf];
            escaped_length = 6;
        }
        if (!append(writer, escaped, escaped_length))
            return false;
        start = ++i;
    }
    return append(writer, text + start, length - start) && append_byte(writer, '"');
}

static void write_key_n(shoal_json_writer *writer, const char *key, size_t length)
{
    if (writer == NULL || writer->failed)
        return;
    if (writer->depth == 0 || !bit(writer->in_object, writer->depth) || writer->after_key || key == NULL) {
        fail(writer);
        return;
    }
    if (bit(writer->has_items, writer->depth) && !append_byte(writer, ','))
        return;
    set_bit(writer->has_items, writer->depth, true);
    if (append_quoted(writer, key, length) && append_byte(writer, ':'))
        writer->after_key = true;
}

void shoal_json_write_key(shoal_json_writer *writer, const char *key)
{
    write_key_n(writer, key, key != NULL ? strlen(key) : 0);
}

void shoal_json_write_string_n(shoal_json_writer *writer, const char *text, size_t length)
{
    if (text == NULL) {
        shoal_json_write_null(writer);
        return;
    }
    if (writer != NULL && begin_value(writer))
        append_quoted(writer, text, length);
}

void shoal_json_write_string(shoal_json_writer *writer, const char *text)
{
    shoal_json_write_string_n(writer, text, text != NULL ? strlen(text) : 0);
}

void shoal_json_write_integer(shoal_json_writer *writer, long long value)
{
    if (writer == NULL || !begin_value(writer))
        return;
    char digits[24];
    size_t at = sizeof digits;
    /* Through unsigned, so that the most negative value has a magnitude. */
    unsigned long long magnitude = value < 0 ? 0ull - (unsigned long long)value : (unsigned long long)value;
    do {
        digits[--at] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (value < 0)
        digits[--at] = '-';
    append(writer, digits + at, sizeof digits - at);
}

void shoal_json_write_real(shoal_json_writer *writer, double value)
{
    if (writer == NULL || !begin_value(writer))
        return;
    if (isnan(value) || isinf(value)) {
        fail(writer);
        return;
    }
    /* jansson's way: %.17g, a ".0" when that reads as an integer, and the
     * exponent without '+' or leading zeros ("1e+20" becomes "1e20"). */
    char text[40];
    int printed = snprintf(text, sizeof text - 2, "%.17g", value);
    if (printed < 0 || (size_t)printed >= sizeof text - 2) {
        fail(writer);
        return;
    }
    size_t length = (size_t)printed;
    for (size_t i = 0; i < length; i++)
        if (text[i] == ',') /* a locale's decimal comma */
            text[i] = '.';
    char *exponent = memchr(text, 'e', length);
    if (exponent == NULL && memchr(text, '.', length) == NULL) {
        memcpy(text + length, ".0", 2);
        length += 2;
    }
    if (exponent != NULL) {
        char *digits = exponent + 1;
        if (*digits == '-')
            digits++;
        char *first = digits;
        if (*first == '+')
            first++;
        while (*first == '0' && first[1] != '\0')
            first++;
        if (first != digits) {
            size_t tail = (size_t)(text + length - first);
            memmove(digits, first, tail);
            length -= (size_t)(first - digits);
        }
    }
    append(writer, text, length);
}

void shoal_json_write_bool(shoal_json_writer *writer, bool value)
{
    if (writer != NULL && begin_value(writer))
        append(writer, value ? "true" : "false", value ? 4 : 5);
}

void shoal_json_write_null(shoal_json_writer *writer)
{
    if (writer != NULL && begin_value(writer))
        append(writer, "null", 4);
}

void shoal_json_write_raw(shoal_json_writer *writer, const char *json, size_t length)
{
    if (writer == NULL || !begin_value(writer))
        return;
    if (json == NULL || length == 0) {
        fail(writer);
        return;
    }
    append(writer, json, length);
}

void shoal_json_write_value(shoal_json_writer *writer, const json_t *value)
{
    if (writer == NULL || writer->failed)
        return;
    /* jansson's iteration functions take no const values. */
    json_t *mutable_value = (json_t *)(uintptr_t)value;
    switch (value != NULL ? json_typeof(value) : JSON_NULL) {
    case JSON_OBJECT:
        shoal_json_open_object(writer);
        for (void *iterator = json_object_iter(mutable_value); iterator != NULL && !writer->failed;
             iterator = json_object_iter_next(mutable_value, iterator)) {
            write_key_n(writer, json_object_iter_key(iterator), json_object_iter_key_len(iterator));
            shoal_json_write_value(writer, json_object_iter_value(iterator));
        }
        shoal_json_close_object(writer);
        return;
    case JSON_ARRAY: {
        shoal_json_open_array(writer);
        size_t size = json_array_size(value);
        for (size_t i = 0; i < size && !writer->failed; i++)
            shoal_json_write_value(writer, json_array_get(value, i));
        shoal_json_close_array(writer);
        return;
    }
    case JSON_STRING:
        shoal_json_write_string_n(writer, json_string_value(value), json_string_length(value));
        return;
    case JSON_INTEGER:
        shoal_json_write_integer(writer, (long long)json_integer_value(value));
        return;
    case JSON_REAL:
        shoal_json_write_real(writer, json_real_value(value));
        return;
    case JSON_TRUE:
    case JSON_FALSE:
        shoal_json_write_bool(writer, json_is_true(value));
        return;
    case JSON_NULL:
        if (value == NULL)
            fail(writer);
        else
            shoal_json_write_null(writer);
        return;
    }
}

const char *shoal_json_writer_text(const shoal_json_writer *writer, size_t *length)
{
    if (writer == NULL || writer->failed || writer->depth != 0 || writer->length == 0)
        return NULL;
    writer->data[writer->length] = '\0'; /* reserve kept the byte */
    if (length != NULL)
        *length = writer->length;
    return writer->data;
}

char *shoal_json_dump(shoal_arena *arena, const json_t *value, size_t *length)
{
    shoal_json_writer *writer = shoal_json_writer_new(arena);
    shoal_json_write_value(writer, value);
    return (char *)(uintptr_t)shoal_json_writer_text(writer, length);
}

/* Printable ASCII but for '"' and '\\': what shoal_json_escape copies as it
 * is. Not NUL, which ends the text. */
static const bool json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

size_t shoal_json_escape(const char *text, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t written = 0;
    if (size == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        /* Most of a log line's text is printable ASCII: copied a run at a
         * time (the access log escapes three strings a request), as far as
         * it fits before the NUL. */
        if (json_plain[*p]) {
            const unsigned char *run = p;
            while (json_plain[p[1]])
                p++;
            size_t length = (size_t)(p - run) + 1;
            size_t room = size - 1 - written;
            memcpy(out + written, run, length < room ? length : room);
            if (length > room) {
                written += room;
                break;
            }
            written += length;
            continue;
        }
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
