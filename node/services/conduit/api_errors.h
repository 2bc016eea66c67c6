/* node/services/conduit/api_errors.h: the Conduit API's error codes (docs/api.md#errors),
 * declared in api_errors.c's table; the core's (request.*, internal), the
 * session's (auth.*), the password hasher's and the tiers' answer the
 * rest. */
#ifndef API_ERRORS_H
#define API_ERRORS_H

#include <shoal/errors.h>

/* 422 naming the field; the message says what is wrong. */
extern const shoal_error_code api_code_blank;       /* "can't be blank" */
extern const shoal_error_code api_code_invalid;     /* "is invalid" */
extern const shoal_error_code api_code_too_long;    /* "is too long (maximum is N characters)" */
extern const shoal_error_code api_code_self_follow; /* following oneself */
/* 401 on login: unknown email or wrong password, the same answer for both. */
extern const shoal_error_code api_code_invalid_credentials;
/* 404, or 403 for somebody else's. */
extern const shoal_error_code api_code_user_not_found;
extern const shoal_error_code api_code_profile_not_found;
extern const shoal_error_code api_code_article_not_found;
extern const shoal_error_code api_code_article_forbidden;
extern const shoal_error_code api_code_comment_not_found;
extern const shoal_error_code api_code_comment_forbidden;
extern const shoal_error_code api_code_tag_not_found;

#endif
