/* tests/unit/node/services/conduit/record_test.c: cached rows, there and back, and
 * bytes that are not a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conduit/record.h"

static void round_trip(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    const char *fields[5] = {"42", NULL, "", "text with \"quotes\", spaces and ünïcode", NULL};
    size_t length = 0;
    void *bytes = api_record_encode(&arena, fields, 5, &length);
    assert_non_null(bytes);
    const char *back[5] = {"x", "x", "x", "x", "x"};
    assert_true(api_record_decode(bytes, length, back, 5));
    assert_string_equal(back[0], "42");
    assert_null(back[1]);
    assert_string_equal(back[2], "");
    assert_string_equal(back[3], fields[3]);
    assert_null(back[4]);
    /* Another count is another record. */
    assert_false(api_record_decode(bytes, length, back, 4));
    assert_false(api_record_decode(bytes, length, back, 6));
    shoal_arena_release(&arena);
}

static void not_a_record(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    const char *fields[2] = {"one", "two"};
    size_t length = 0;
    char *bytes = api_record_encode(&arena, fields, 2, &length);
    assert_non_null(bytes);
    const char *back[2];
    /* Cut short anywhere: refused, never read past the end. */
    for (size_t cut = 0; cut < length; cut++)
        assert_false(api_record_decode(bytes, cut, back, 2));
    assert_true(api_record_decode(bytes, length, back, 2));
    /* Another format mark (a value a node of another version wrote). */
    bytes[0] = 'X';
    assert_false(api_record_decode(bytes, length, back, 2));
    bytes[0] = 'R';
    bytes[1] = '?';
    assert_false(api_record_decode(bytes, length, back, 2));
    /* Plain text, as another family's value would be. */
    assert_false(api_record_decode("[\"a\",\"b\"]", 9, back, 2));
    shoal_arena_release(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(not_a_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
