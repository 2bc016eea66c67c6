/* tests/unit/node/lib/url_test.c: node/lib/url.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "url.h"

static void expect(const char *text, const char *decoded)
{
    char buffer[128];
    strcpy(buffer, text);
    size_t length = shoal_url_unescape(buffer);
    assert_string_equal(buffer, decoded);
    assert_int_equal(length, strlen(decoded));
}

static void test_decodes_hex_pairs_in_either_case(void **state)
{
    (void)state;
    expect("/a%20b%2fc%2F", "/a b/c/");
    expect("%41%7a%C3%A9", "Az\xc3\xa9");
}

static void test_keeps_nul_and_incomplete_escapes(void **state)
{
    (void)state;
    expect("/healthz%00x", "/healthz%00x");
    expect("%", "%");
    expect("%4", "%4");
    expect("%zz%4g", "%zz%4g");
    expect("100%", "100%");
    expect("%%41", "%A");
}

static void test_text_before_the_first_escape_stays(void **state)
{
    (void)state;
    expect("/plaintext", "/plaintext");
    expect("", "");
    expect("/articles/caf%C3%A9-and-more", "/articles/caf\xc3\xa9-and-more");
    expect("/a%", "/a%");
}

static void test_plus_stays_a_plus(void **state)
{
    (void)state;
    /* libmicrohttpd turns '+' into a space in the query before calling us,
     * never in the path. */
    expect("a+b", "a+b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decodes_hex_pairs_in_either_case),
        cmocka_unit_test(test_keeps_nul_and_incomplete_escapes),
        cmocka_unit_test(test_text_before_the_first_escape_stays),
        cmocka_unit_test(test_plus_stays_a_plus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
