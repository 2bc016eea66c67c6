/* tests/unit/node/services/conduit/article_rules_test.c: slugs from titles, their
 * suffixes, and tag lists as they are stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conduit/article_rules.h"

static void expect_slug(const char *title, const char *wanted)
{
    char slug[API_SLUG_SIZE];
    memset(slug, 'x', sizeof slug);
    api_article_slug(title, slug);
    assert_string_equal(slug, wanted);
}

static void slugs(void **state)
{
    (void)state;
    expect_slug("How to train your dragon", "how-to-train-your-dragon");
    expect_slug("  How to Train Your DRAGON!!  ", "how-to-train-your-dragon");
    expect_slug("C11: the --good-- parts (2nd ed.)", "c11-the-good-parts-2nd-ed");
    expect_slug("a", "a");
    expect_slug("42", "42");
    /* Accented letters lose their accents; what has no ASCII form is a
     * separator. */
    expect_slug("Crème brûlée", "creme-brulee");
    expect_slug("Ünïcödé Ärtíclé", "unicode-article");
    expect_slug("Straße, œuvre, Łódź", "strasse-oeuvre-lodz");
    expect_slug("日本語 and English", "and-english");
    expect_slug("bad \xff byte", "bad-byte");
    /* Nothing ASCII at all, or nothing at all: the fallback, never "". */
    expect_slug("日本語のタイトル", API_SLUG_FALLBACK);
    expect_slug("?!? ... !!!", API_SLUG_FALLBACK);
    expect_slug("", API_SLUG_FALLBACK);
}

static void long_titles_are_cut_at_a_word(void **state)
{
    (void)state;
    char title[1200] = "", slug[API_SLUG_SIZE];
    /* Words of 9 letters: "abcdefghi abcdefghi ..." */
    for (int i = 0; i < 100; i++)
        strcat(title, "abcdefghi ");
    api_article_slug(title, slug);
    assert_true(strlen(slug) <= API_SLUG_BASE_MAX);
    assert_true(strlen(slug) > API_SLUG_BASE_MAX - 10);
    assert_int_not_equal(slug[strlen(slug) - 1], '-');
    assert_int_equal(strlen(slug) % 10, 9); /* whole words only */
    /* One endless word is cut where the room ends. */
    memset(title, 'q', 1000);
    title[1000] = '\0';
    api_article_slug(title, slug);
    assert_int_equal(strlen(slug), API_SLUG_BASE_MAX);
}

static void suffixes(void **state)
{
    (void)state;
    char slug[API_SLUG_SIZE], other[API_SLUG_SIZE];
    api_article_slug("Same title", slug);
    api_article_slug_suffix(slug, 0);
    assert_string_equal(slug, "same-title-aaaaaa");
    api_article_slug("Same title", slug);
    api_article_slug_suffix(slug, 36 * 36 - 1); /* the last two of "99" then "a"s */
    assert_string_equal(slug, "same-title-99aaaa");
    api_article_slug("Same title", slug);
    api_article_slug("Same title", other);
    api_article_slug_suffix(slug, 123456789);
    api_article_slug_suffix(other, 987654321);
    assert_string_not_equal(slug, other);
    /* The longest base still fits with its suffix. */
    char title[400];
    memset(title, 'z', sizeof title - 1);
    title[sizeof title - 1] = '\0';
    api_article_slug(title, slug);
    api_article_slug_suffix(slug, UINT64_MAX);
    assert_int_equal(strlen(slug), API_SLUG_BASE_MAX + API_SLUG_SUFFIX_LENGTH);
    for (const char *c = slug; *c != '\0'; c++)
        assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-');
}

static void tags(void **state)
{
    (void)state;
    const char *names[] = {"training", " dragons ", "dragons", "Zebra", "\ttraining", "ab", "a", "abc"};
    size_t lengths[8];
    for (size_t i = 0; i < 8; i++)
        lengths[i] = strlen(names[i]);
    size_t count = api_article_tags(names, lengths, 8);
    const char *wanted[] = {"Zebra", "a", "ab", "abc", "dragons", "training"};
    assert_int_equal(count, 6);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(lengths[i], strlen(wanted[i]));
        assert_memory_equal(names[i], wanted[i], lengths[i]);
    }
    /* Blank ones trim to nothing and stay (first, once) for the caller. */
    const char *blank[] = {"x", "   ", ""};
    size_t blank_lengths[] = {1, 3, 0};
    assert_int_equal(api_article_tags(blank, blank_lengths, 3), 2);
    assert_int_equal(blank_lengths[0], 0);
    assert_int_equal(blank_lengths[1], 1);
    assert_int_equal(api_article_tags(NULL, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slugs),
        cmocka_unit_test(long_titles_are_cut_at_a_word),
        cmocka_unit_test(suffixes),
        cmocka_unit_test(tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
