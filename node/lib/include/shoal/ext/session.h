/* node/lib/include/shoal/ext/session.h: who is calling, from `Authorization: Token <t>` (the
 * RealWorld scheme) or `Bearer <t>`, with sessions kept in Redis
 * (cache/session.h).
 *
 * The lookup is lazy: nothing happens until a handler or hook asks, so
 * routes that never ask work while Redis is down. The first question in a
 * request looks the token up; later ones in the same request get the same
 * answer from a request slot. Tokens never reach a log. */
#ifndef SHOAL_SESSION_H
#define SHOAL_SESSION_H

#include <stdint.h>

#include <shoal/shoal.h>

#define SHOAL_SESSION_TOKEN_SIZE 44 /* 43 characters and the NUL */

typedef enum shoal_session_status {
    SHOAL_SESSION_OK = 0,
    SHOAL_SESSION_NONE,        /* no Authorization header */
    SHOAL_SESSION_INVALID,     /* another scheme; a malformed, unknown, expired or revoked token */
    SHOAL_SESSION_UNAVAILABLE, /* Redis cannot be reached now */
    SHOAL_SESSION_ERROR,       /* Redis answered with an error; out of memory */
} shoal_session_status;

typedef struct shoal_session_info {
    int64_t user_id;
    int64_t created; /* Unix seconds */
} shoal_session_info;

/* Reserves the request slot and reads --session-ttl. Load it once, before
 * the blueprints that use it. */
extern const shoal_extension shoal_session_extension;

/* --session-ttl (SHOAL_SESSION_TTL): seconds a session lives after its
 * last use. */
typedef struct shoal_session_settings_values {
    int ttl_s;
} shoal_session_settings_values;
extern const shoal_settings shoal_session_settings;

/* The request's session: OK with *out set (valid until the request ends),
 * or why there is none (*out NULL). out may be NULL. */
shoal_session_status shoal_session(shoal_ctx *ctx, const shoal_session_info **out);

/* For handlers that need a session: true with *out set, or false after
 * answering 401 (auth.required, auth.invalid, with WWW-Authenticate:
 * Token), 503 with Retry-After (Redis down) or 500. out may be NULL. */
bool shoal_session_require(shoal_ctx *ctx, const shoal_session_info **out);

/* The same as a before hook, for a blueprint whose routes all need a
 * session: shoal_before(bp, shoal_session_required, NULL). */
shoal_flow shoal_session_required(shoal_ctx *ctx, void *data);

/* Answers for a status that is not OK, as shoal_session_require does;
 * returns what shoal_error returns. */
int shoal_session_fail(shoal_ctx *ctx, shoal_session_status status);
/* Its codes (module "session" in `errors`), for a service that answers
 * them itself: 401 auth.required ("token": "is missing") and 401
 * auth.invalid ("token": "is invalid or expired"). */
extern const shoal_error_code shoal_session_code_required;
extern const shoal_error_code shoal_session_code_invalid;

/* Makes a session for user_id (login, registration) through the worker's
 * Redis connection; *token (arena memory) is what the client sends back.
 * OK, UNAVAILABLE or ERROR. */
shoal_session_status shoal_session_create(shoal_ctx *ctx, int64_t user_id, const char **token);

/* Ends the request's own session (logout): OK, or why the request has none
 * (NONE, INVALID), or UNAVAILABLE/ERROR. Later questions in the request
 * answer INVALID. */
shoal_session_status shoal_session_revoke(shoal_ctx *ctx);

/* Ends every session of user_id (password change), this request's too when
 * it is the user's. OK, UNAVAILABLE or ERROR. */
shoal_session_status shoal_session_revoke_user(shoal_ctx *ctx, int64_t user_id);

/* Finds the token in an Authorization header's value: the scheme `Token`
 * or `Bearer` (any case), blanks, 43 base64url characters, optional
 * trailing blanks. NONE for NULL or blanks; INVALID for anything else;
 * OK with the token copied into token. */
shoal_session_status shoal_session_parse_authorization(const char *value, char token[SHOAL_SESSION_TOKEN_SIZE]);

#endif
