/* node/services/conduit/validate.h: the RealWorld API's rules for user input, without a
 * request, so that they are tested alone. Each check returns NULL when the
 * value passes, or the message the 422 envelope carries for its field
 * ("can't be blank", "is invalid", "is too long (maximum is 254
 * characters)"); *code gets its code (api_errors.h: api.blank,
 * api.invalid, api.too_long). */
#ifndef API_VALIDATE_H
#define API_VALIDATE_H

#include <stddef.h>

#include <shoal/errors.h>

#define API_EMAIL_MAX 254
#define API_USERNAME_MAX 64
/* Passwords are hashed whole; the bound keeps a huge body from being
 * hashed, and from being stored in anyone's memory for long. */
#define API_PASSWORD_MAX 256
#define API_BIO_MAX 4096
#define API_IMAGE_MAX 2048
/* Articles, as migration 0003 bounds them. */
#define API_TITLE_MAX 255
#define API_DESCRIPTION_MAX 1024
#define API_ARTICLE_BODY_MAX 1048576
#define API_TAG_MAX 64
#define API_COMMENT_BODY_MAX 65536

/* Blank means empty or only white space. Lengths count characters (UTF-8
 * code points), as PostgreSQL's length() does. */
const char *api_check_email(const char *value, const shoal_error_code **code);
/* Letters, digits, '_', '-' and '.': a username is a path segment. */
const char *api_check_username(const char *value, const shoal_error_code **code);
const char *api_check_password(const char *value, size_t length, const shoal_error_code **code);
/* Optional text (bio, image): NULL passes; only the length is checked. */
const char *api_check_optional(const char *value, size_t maximum, const shoal_error_code **code);
/* Required text (an article's title, description, body, a tag): not blank,
 * at most maximum characters. */
const char *api_check_text(const char *value, size_t maximum, const shoal_error_code **code);

#endif
