/* tests/unit/node/services/conduit/validate_test.c: the API's input rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conduit/validate.h"

/* code is read through its address, after the check ran: arguments are
 * evaluated in no fixed order. */
static void expect(const char *message, const shoal_error_code *const *code, const char *wanted_message,
                   const char *wanted_code)
{
    if (wanted_message == NULL) {
        assert_null(message);
        return;
    }
    assert_non_null(message);
    assert_string_equal(message, wanted_message);
    assert_string_equal((*code)->code, wanted_code);
    assert_int_equal((*code)->status, 422);
}

static void emails(void **state)
{
    (void)state;
    const shoal_error_code *code = NULL;
    expect(api_check_email("a@b.co", &code), &code, NULL, NULL);
    expect(api_check_email("first.last+tag@sub.example.org", &code), &code, NULL, NULL);
    expect(api_check_email(NULL, &code), &code, "can't be blank", "api.blank");
    expect(api_check_email("", &code), &code, "can't be blank", "api.blank");
    expect(api_check_email(" \t", &code), &code, "can't be blank", "api.blank");
    const char *invalid[] = {"plain", "@b.co", "a@", "a@b", "a@.co", "a@b.", "a@@b.co", "a b@c.co", "a@b.co\n"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        expect(api_check_email(invalid[i], &code), &code, "is invalid", "api.invalid");
    char long_email[300];
    memset(long_email, 'a', sizeof long_email);
    memcpy(long_email + 250, "@b.co", 6); /* 255 characters */
    expect(api_check_email(long_email, &code), &code, "is too long (maximum is 254 characters)", "api.too_long");
    memcpy(long_email + 249, "@b.co", 6); /* 254 */
    expect(api_check_email(long_email, &code), &code, NULL, NULL);
}

static void usernames(void **state)
{
    (void)state;
    const shoal_error_code *code = NULL;
    expect(api_check_username("jake_2.x-y", &code), &code, NULL, NULL);
    expect(api_check_username("", &code), &code, "can't be blank", "api.blank");
    const char *invalid[] = {"a b", "a/b", "a?b", "caf\xc3\xa9", "a%2F"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        expect(api_check_username(invalid[i], &code), &code, "is invalid", "api.invalid");
    char name[70];
    memset(name, 'n', 64);
    name[64] = '\0';
    expect(api_check_username(name, &code), &code, NULL, NULL);
    name[64] = 'n';
    name[65] = '\0';
    expect(api_check_username(name, &code), &code, "is too long (maximum is 64 characters)", "api.too_long");
}

static void passwords_and_optional_text(void **state)
{
    (void)state;
    const shoal_error_code *code = NULL;
    expect(api_check_password("x", 1, &code), &code, NULL, NULL);
    expect(api_check_password(NULL, 0, &code), &code, "can't be blank", "api.blank");
    expect(api_check_password("   ", 3, &code), &code, "can't be blank", "api.blank");
    char password[300];
    memset(password, 'p', sizeof password);
    password[257] = '\0';
    expect(api_check_password(password, 257, &code), &code, "is too long (maximum is 256 characters)",
           "api.too_long");
    expect(api_check_optional(NULL, API_BIO_MAX, &code), &code, NULL, NULL);
    /* Characters, not bytes: 2048 two-byte characters fit in an image. */
    static char image[2 * API_IMAGE_MAX + 3];
    for (size_t i = 0; i < API_IMAGE_MAX; i++)
        memcpy(image + 2 * i, "\xc3\xa9", 2);
    image[2 * API_IMAGE_MAX] = '\0';
    expect(api_check_optional(image, API_IMAGE_MAX, &code), &code, NULL, NULL);
    memcpy(image + 2 * API_IMAGE_MAX, "x", 2);
    expect(api_check_optional(image, API_IMAGE_MAX, &code), &code, "is too long (maximum is 2048 characters)",
           "api.too_long");
}

static void article_text(void **state)
{
    (void)state;
    const shoal_error_code *code = NULL;
    expect(api_check_text("How to train your dragon", API_TITLE_MAX, &code), &code, NULL, NULL);
    expect(api_check_text(NULL, API_TITLE_MAX, &code), &code, "can't be blank", "api.blank");
    expect(api_check_text(" \n\t", API_DESCRIPTION_MAX, &code), &code, "can't be blank", "api.blank");
    static char text[API_DESCRIPTION_MAX + 2];
    memset(text, 't', API_TITLE_MAX);
    text[API_TITLE_MAX] = '\0';
    expect(api_check_text(text, API_TITLE_MAX, &code), &code, NULL, NULL);
    text[API_TITLE_MAX] = 't';
    text[API_TITLE_MAX + 1] = '\0';
    expect(api_check_text(text, API_TITLE_MAX, &code), &code, "is too long (maximum is 255 characters)",
           "api.too_long");
    memset(text, 'd', API_DESCRIPTION_MAX + 1);
    text[API_DESCRIPTION_MAX + 1] = '\0';
    expect(api_check_text(text, API_DESCRIPTION_MAX, &code), &code, "is too long (maximum is 1024 characters)",
           "api.too_long");
    expect(api_check_text(text + API_DESCRIPTION_MAX - API_TAG_MAX, API_TAG_MAX, &code), &code,
           "is too long (maximum is 64 characters)", "api.too_long");
}

static void required_text(void **state)
{
    (void)state;
    const shoal_error_code *code = NULL;
    expect(api_check_text("first!", API_COMMENT_BODY_MAX, &code), &code, NULL, NULL);
    expect(api_check_text(NULL, API_COMMENT_BODY_MAX, &code), &code, "can't be blank", "api.blank");
    expect(api_check_text("", API_COMMENT_BODY_MAX, &code), &code, "can't be blank", "api.blank");
    expect(api_check_text(" \t\r\n", API_COMMENT_BODY_MAX, &code), &code, "can't be blank", "api.blank");
    /* The bound counts characters: 65536 four-byte ones fit, one more does not. */
    static char body[4 * API_COMMENT_BODY_MAX + 2];
    for (size_t i = 0; i < API_COMMENT_BODY_MAX; i++)
        memcpy(body + 4 * i, "\xf0\x9f\x90\x9f", 4);
    body[4 * API_COMMENT_BODY_MAX] = '\0';
    expect(api_check_text(body, API_COMMENT_BODY_MAX, &code), &code, NULL, NULL);
    memcpy(body + 4 * API_COMMENT_BODY_MAX, "x", 2);
    expect(api_check_text(body, API_COMMENT_BODY_MAX, &code), &code,
           "is too long (maximum is 65536 characters)", "api.too_long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emails),
        cmocka_unit_test(usernames),
        cmocka_unit_test(passwords_and_optional_text),
        cmocka_unit_test(article_text),
        cmocka_unit_test(required_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
