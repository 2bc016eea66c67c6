/* tests/fuzz/node/lib/json_fuzz.c: decoding request bodies.
 *
 * The input's first byte sets the nesting limit (1..64) and a small size
 * for the checks below; the rest is the body. Checked, each against
 * something written apart from the code under test:
 *   - node/lib/json.c: shoal_json_parse says EMPTY exactly for blank bodies,
 *     TOO_DEEP only for values jansson sees nested deeper than the limit,
 *     MALFORMED exactly when jansson (with the same flags) refuses; a value
 *     it accepts is dumped by shoal_json_dump and by the writer byte for
 *     byte as jansson's json_dumps writes it; shoal_json_escape always
 *     gives a valid JSON string body no longer than asked, whatever the
 *     bytes;
 *   - node/services/conduit/validate.c on every string of the value: a verdict and a
 *     code together or neither, and the length rules counted in code
 *     points;
 *   - node/services/conduit/record.c: bytes that decode encode back to the same bytes;
 *   - the real handlers that read a body before anything else (register and
 *     log in) on the whole pipeline, the node's tiers unreachable, through
 *     fuzz_dispatch's checks (no 500, every error the envelope). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/arena.h>
#include <shoal/json.h>

#include "conduit/record.h"
#include "conduit/validate.h"
#include "fuzz_request.h"

static fuzz_node node;

static int value_depth(const json_t *value)
{
    int deepest = 0;
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member)
        {
            int depth = value_depth(member);
            if (depth > deepest)
                deepest = depth;
        }
        return deepest + 1;
    }
    if (json_is_array(value)) {
        size_t i;
        json_t *member;
        json_array_foreach(value, i, member)
        {
            int depth = value_depth(member);
            if (depth > deepest)
                deepest = depth;
        }
        return deepest + 1;
    }
    return 0;
}

static bool blank(const uint8_t *text, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return false;
    return true;
}

static size_t code_points(const char *text)
{
    size_t count = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        count += (*p & 0xc0) != 0x80;
    return count;
}

static void check_verdict(const char *what, const char *message, const shoal_error_code *code)
{
    if (message != NULL && code == NULL)
        fuzz_fail("validate: %s gave a message without a code", what);
}

static void check_string(const char *text, size_t length, size_t small)
{
    const shoal_error_code *code = NULL;
    const char *message = api_check_email(text, &code);
    check_verdict("email", message, code);
    code = NULL;
    message = api_check_username(text, &code);
    check_verdict("username", message, code);
    code = NULL;
    message = api_check_password(text, length, &code);
    check_verdict("password", message, code);
    code = NULL;
    message = api_check_optional(text, small, &code);
    check_verdict("optional", message, code);
    if ((message != NULL) != (code_points(text) > small))
        fuzz_fail("validate: optional text of %zu code points against a maximum of %zu: %s", code_points(text), small,
                  message != NULL ? message : "passes");
    code = NULL;
    message = api_check_text(text, small, &code);
    check_verdict("text", message, code);
    if (message == NULL && code_points(text) > small)
        fuzz_fail("validate: text of %zu code points passes a maximum of %zu", code_points(text), small);
}

static void walk_strings(const json_t *value, size_t small)
{
    if (json_is_string(value)) {
        check_string(json_string_value(value), json_string_length(value), small);
    } else if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member)
        {
            check_string(key, strlen(key), small);
            walk_strings(member, small);
        }
    } else if (json_is_array(value)) {
        size_t i;
        json_t *member;
        json_array_foreach(value, i, member) walk_strings(member, small);
    }
}

static void check_dump(const json_t *value)
{
    unsigned char block[512];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    char *expected = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t length = 0;
    const char *dumped = shoal_json_dump(&arena, value, &length);
    if (expected == NULL || dumped == NULL || length != strlen(expected) || memcmp(dumped, expected, length) != 0)
        fuzz_fail("json: shoal_json_dump wrote '%s', jansson '%s'", dumped != NULL ? dumped : "(NULL)",
                  expected != NULL ? expected : "(NULL)");
    shoal_json_writer *writer = shoal_json_writer_new(&arena);
    shoal_json_open_array(writer);
    shoal_json_write_value(writer, value);
    shoal_json_write_raw(writer, expected, strlen(expected));
    shoal_json_close_array(writer);
    size_t written_length = 0;
    const char *written = shoal_json_writer_text(writer, &written_length);
    char *wrapped = malloc(2 * strlen(expected) + 4);
    if (wrapped == NULL)
        fuzz_fail("out of memory");
    sprintf(wrapped, "[%s,%s]", expected, expected);
    if (written == NULL || written_length != strlen(wrapped) || strcmp(written, wrapped) != 0)
        fuzz_fail("json: the writer wrote '%s', not '%s'", written != NULL ? written : "(NULL)", wrapped);
    free(wrapped);
    free(expected);
    shoal_arena_release(&arena);
}

static void check_escape(const uint8_t *data, size_t size, size_t small)
{
    char *text = malloc(size + 1);
    char *out = malloc(small + 1);
    char *quoted = malloc(small + 3);
    if (text == NULL || out == NULL || quoted == NULL)
        fuzz_fail("out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    size_t written = shoal_json_escape(text, out, small + 1);
    if (written > small || strlen(out) != written)
        fuzz_fail("json: shoal_json_escape wrote %zu bytes into %zu", written, small + 1);
    sprintf(quoted, "\"%s\"", out);
    json_error_t error;
    json_t *parsed = json_loads(quoted, JSON_DECODE_ANY, &error);
    if (!json_is_string(parsed))
        fuzz_fail("json: shoal_json_escape wrote %s, not a JSON string: %s", quoted, error.text);
    json_decref(parsed);
    free(text);
    free(out);
    free(quoted);
}

static void check_record(const uint8_t *data, size_t size, size_t count)
{
    const char *fields[8];
    if (!api_record_decode(data, size, fields, count))
        return;
    unsigned char block[256];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    size_t length = 0;
    const void *encoded = api_record_encode(&arena, fields, count, &length);
    if (encoded == NULL || length != size || memcmp(encoded, data, size) != 0)
        fuzz_fail("record: %zu bytes decode into %zu fields that encode into %zu other bytes", size, count, length);
    shoal_arena_release(&arena);
}

static void post_body(const char *path, const uint8_t *body, size_t size)
{
    static const char head_format[] = "POST %s\nContent-Type: application/json\n\n";
    char head[128];
    int head_length = snprintf(head, sizeof head, head_format, path);
    uint8_t *text = malloc((size_t)head_length + size);
    if (text == NULL)
        fuzz_fail("out of memory");
    memcpy(text, head, (size_t)head_length);
    memcpy(text + head_length, body, size);
    fuzz_request request;
    if (fuzz_request_parse(&request, text, (size_t)head_length + size, NULL, 0))
        fuzz_dispatch(&node, &request, NULL);
    fuzz_request_free(&request);
    free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keep_stderr();
    fuzz_node_open(&node, "postgresql:///shoal?host=/nonexistent/shoal-fuzz&connect_timeout=1",
                   "redis://127.0.0.1:1/0", NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int max_depth = 1 + (data[0] & 0x3f);
    size_t small = (size_t)(data[0] >> 2);
    const uint8_t *text = data + 1;
    size_t length = size - 1;

    json_t *value = NULL;
    char message[256];
    shoal_json_result result = shoal_json_parse((const char *)text, length, max_depth, &value, message, sizeof message);
    json_t *reference = json_loadb((const char *)text, length, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    switch (result) {
    case SHOAL_JSON_EMPTY:
        if (!blank(text, length))
            fuzz_fail("json: EMPTY for a body that is not blank");
        break;
    case SHOAL_JSON_TOO_DEEP:
        if (reference != NULL && value_depth(reference) <= max_depth)
            fuzz_fail("json: TOO_DEEP for a value %d deep, limit %d", value_depth(reference), max_depth);
        break;
    case SHOAL_JSON_MALFORMED:
        if (reference != NULL)
            fuzz_fail("json: MALFORMED for a body jansson reads");
        break;
    case SHOAL_JSON_OK:
        if (value == NULL || reference == NULL || !json_equal(value, reference))
            fuzz_fail("json: OK, but not what jansson reads");
        if (value_depth(value) > max_depth)
            fuzz_fail("json: OK for a value %d deep, limit %d", value_depth(value), max_depth);
        check_dump(value);
        walk_strings(value, small);
        break;
    }
    if (result != SHOAL_JSON_OK && value != NULL)
        fuzz_fail("json: a value without OK");
    if (result != SHOAL_JSON_EMPTY && blank(text, length))
        fuzz_fail("json: a blank body is not EMPTY");
    json_decref(value);
    json_decref(reference);

    check_escape(text, length, small);
    check_record(text, length, 1 + (data[0] & 7));
    post_body("/api/users", text, length);
    post_body("/api/users/login", text, length);
    return 0;
}
