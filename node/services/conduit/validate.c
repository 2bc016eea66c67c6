/* node/services/conduit/validate.c */
#include "validate.h"

#include <stdbool.h>
#include <string.h>

#include "api_errors.h"

static bool blank(const char *value)
{
    for (; *value != '\0'; value++)
        if (*value != ' ' && *value != '\t' && *value != '\n' && *value != '\r')
            return false;
    return true;
}

/* Code points in UTF-8 text: every byte that does not continue one. */
static size_t characters(const char *value)
{
    size_t count = 0;
    for (; *value != '\0'; value++)
        if (((unsigned char)*value & 0xC0) != 0x80)
            count++;
    return count;
}

static const char *too_long(size_t maximum, const shoal_error_code **code)
{
    *code = &api_code_too_long;
    switch (maximum) {
    case API_EMAIL_MAX:
        return "is too long (maximum is 254 characters)";
    case API_USERNAME_MAX:
        return "is too long (maximum is 64 characters)";
    case API_PASSWORD_MAX:
        return "is too long (maximum is 256 characters)";
    case API_BIO_MAX:
        return "is too long (maximum is 4096 characters)";
    case API_TITLE_MAX:
        return "is too long (maximum is 255 characters)";
    case API_DESCRIPTION_MAX:
        return "is too long (maximum is 1024 characters)";
    case API_ARTICLE_BODY_MAX:
        return "is too long (maximum is 1048576 characters)";
    case API_COMMENT_BODY_MAX:
        return "is too long (maximum is 65536 characters)";
    default:
        return "is too long (maximum is 2048 characters)";
    }
}

static const char *not_blank(const char *value, size_t maximum, const shoal_error_code **code)
{
    if (value == NULL || blank(value)) {
        *code = &api_code_blank;
        return "can't be blank";
    }
    if (characters(value) > maximum)
        return too_long(maximum, code);
    return NULL;
}

static const char *invalid(const shoal_error_code **code)
{
    *code = &api_code_invalid;
    return "is invalid";
}

/* One '@' with something on each side, a dot inside the domain, and no
 * white space or control characters: what a mail server could deliver to,
 * without pretending to implement RFC 5322. */
const char *api_check_email(const char *value, const shoal_error_code **code)
{
    const char *message = not_blank(value, API_EMAIL_MAX, code);
    if (message != NULL)
        return message;
    const char *at = strchr(value, '@');
    if (at == NULL || at == value || strchr(at + 1, '@') != NULL)
        return invalid(code);
    const char *dot = strrchr(at + 1, '.');
    if (dot == NULL || dot == at + 1 || dot[1] == '\0')
        return invalid(code);
    for (const char *c = value; *c != '\0'; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return invalid(code);
    return NULL;
}

const char *api_check_username(const char *value, const shoal_error_code **code)
{
    const char *message = not_blank(value, API_USERNAME_MAX, code);
    if (message != NULL)
        return message;
    for (const char *c = value; *c != '\0'; c++) {
        bool allowed = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                       *c == '_' || *c == '-' || *c == '.';
        if (!allowed)
            return invalid(code);
    }
    return NULL;
}

const char *api_check_password(const char *value, size_t length, const shoal_error_code **code)
{
    if (value == NULL || length == 0 || blank(value)) {
        *code = &api_code_blank;
        return "can't be blank";
    }
    if (length > API_PASSWORD_MAX)
        return too_long(API_PASSWORD_MAX, code);
    return NULL;
}

const char *api_check_optional(const char *value, size_t maximum, const shoal_error_code **code)
{
    if (value != NULL && characters(value) > maximum)
        return too_long(maximum, code);
    return NULL;
}

const char *api_check_text(const char *value, size_t maximum, const shoal_error_code **code)
{
    return not_blank(value, maximum, code);
}
