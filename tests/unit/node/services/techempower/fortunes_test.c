/* tests/unit/node/services/techempower/fortunes_test.c: node/services/techempower/fortunes.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "techempower/fortunes.h"

static shoal_arena arena;

static int setup(void **state)
{
    (void)state;
    shoal_arena_init(&arena, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    shoal_arena_release(&arena);
    return 0;
}

static store_fortune fortune(int id, const char *message)
{
    return (store_fortune){.id = id, .message = message, .message_length = strlen(message)};
}

/* The specification's twelve rows (store/migrations/0002_techempower.sql),
 * in table order. */
static const char *const fixture[12] = {
    "fortune: No such file or directory",
    "A computer scientist is someone who fixes things that aren't broken.",
    "After enough decimal places, nobody gives a damn.",
    "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
    "A computer program does what you tell it to do, not what you want it to do.",
    "Emacs is a nice operating system, but I prefer UNIX. \xe2\x80\x94 Tom Christaensen",
    "Any program that runs right is obsolete.",
    "A list is only as strong as its weakest link. \xe2\x80\x94 Donald Knuth",
    "Feature: A bug with seniority.",
    "Computers make very fast, very accurate mistakes.",
    "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
    "\xe3\x83\x95\xe3\x83\xac\xe3\x83\xbc\xe3\x83\xa0\xe3\x83\xaf\xe3\x83\xbc\xe3\x82\xaf\xe3\x81\xae"
    "\xe3\x83\x99\xe3\x83\xb3\xe3\x83\x81\xe3\x83\x9e\xe3\x83\xbc\xe3\x82\xaf",
};

static void test_escapes_the_five_html_characters(void **state)
{
    (void)state;
    const char *text = "<a href=\"x\">Tom & Jerry's</a>";
    size_t length = 0;
    const char *escaped = bench_html_escape(&arena, text, strlen(text), &length);
    assert_string_equal(escaped, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
    assert_int_equal(length, strlen(escaped));
    assert_string_equal(bench_html_escape(&arena, "", 0, &length), "");
    assert_int_equal(length, 0);
    /* UTF-8 passes through byte for byte. */
    assert_string_equal(bench_html_escape(&arena, fixture[11], strlen(fixture[11]), &length), fixture[11]);
    /* An entity in the data is data: its '&' is escaped too. */
    assert_string_equal(bench_html_escape(&arena, "&amp;", 5, &length), "&amp;amp;");
}

static void test_sort_is_byte_order_not_locale(void **state)
{
    (void)state;
    store_fortune fortunes[] = {
        fortune(1, "b"), fortune(2, "\xc3\xa9"), /* é: after every ASCII byte */
        fortune(3, "B"), fortune(4, "a"),       fortune(5, "ab"),
        fortune(6, "A"), fortune(7, ""),        fortune(8, "\xe3\x83\x95"),
    };
    bench_fortunes_sort(fortunes, 8);
    const int expected[] = {7, 6, 3, 4, 5, 1, 2, 8};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(fortunes[i].id, expected[i]);
}

static void test_prepare_adds_the_extra_fortune_and_sorts(void **state)
{
    (void)state;
    store_fortune fortunes[13];
    for (int i = 0; i < 12; i++)
        fortunes[i] = fortune(i + 1, fixture[i]);
    size_t count = bench_fortunes_prepare(fortunes, 12);
    assert_int_equal(count, 13);
    const int expected[] = {11, 4, 5, 2, 8, 0, 3, 7, 10, 6, 9, 1, 12};
    for (size_t i = 0; i < 13; i++)
        assert_int_equal(fortunes[i].id, expected[i]);
    assert_string_equal(fortunes[5].message, "Additional fortune added at request time.");
}

static void test_page_is_the_specified_markup(void **state)
{
    (void)state;
    store_fortune fortunes[13];
    for (int i = 0; i < 12; i++)
        fortunes[i] = fortune(i + 1, fixture[i]);
    size_t count = bench_fortunes_prepare(fortunes, 12);
    size_t length = 0;
    const char *page = bench_fortunes_html(&arena, fortunes, count, &length);
    const char *expected =
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        "<tr><th>id</th><th>message</th></tr>"
        "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert "
        "box.&quot;);&lt;/script&gt;</td></tr>"
        "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>"
        "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>"
        "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#39;t broken.</td></tr>"
        "<tr><td>8</td><td>A list is only as strong as its weakest link. \xe2\x80\x94 Donald Knuth</td></tr>"
        "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
        "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>"
        "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>"
        "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>"
        "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \xe2\x80\x94 Tom "
        "Christaensen</td></tr>"
        "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>"
        "<tr><td>1</td><td>fortune: No such file or directory</td></tr>"
        "<tr><td>12</td><td>\xe3\x83\x95\xe3\x83\xac\xe3\x83\xbc\xe3\x83\xa0\xe3\x83\xaf\xe3\x83\xbc\xe3\x82"
        "\xaf\xe3\x81\xae\xe3\x83\x99\xe3\x83\xb3\xe3\x83\x81\xe3\x83\x9e\xe3\x83\xbc\xe3\x82\xaf</td></tr>"
        "</table></body></html>";
    assert_string_equal(page, expected);
    assert_int_equal(length, strlen(expected));
}

static void test_page_without_rows_and_with_extreme_ids(void **state)
{
    (void)state;
    size_t length = 0;
    assert_string_equal(bench_fortunes_html(&arena, NULL, 0, &length),
                        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                        "<tr><th>id</th><th>message</th></tr></table></body></html>");
    store_fortune extreme = fortune(-2147483647 - 1, "x");
    const char *page = bench_fortunes_html(&arena, &extreme, 1, &length);
    assert_non_null(strstr(page, "<tr><td>-2147483648</td><td>x</td></tr>"));
    assert_int_equal(length, strlen(page));
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_escapes_the_five_html_characters),
        TEST(test_sort_is_byte_order_not_locale),
        TEST(test_prepare_adds_the_extra_fortune_and_sorts),
        TEST(test_page_is_the_specified_markup),
        TEST(test_page_without_rows_and_with_extreme_ids),
    };
    return cmocka_run_group_tests_name("node/services/techempower/fortunes", tests, NULL, NULL);
}
