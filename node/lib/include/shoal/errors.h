/* node/lib/include/shoal/errors.h (<shoal/errors.h>, included by <shoal/shoal.h>): error
 * codes declared once, in one table per module, and answered by reference.
 *
 * Every error answer is the envelope
 *   {"errors": {"<field>": ["<message>"]}, "code": "<stable.code>"}
 * and clients match on the code, so a code is a promise: declare each one
 * (status, code, default field and message) next to the others of its
 * module, list them in the module's table, and answer with the entry:
 *
 *     static const shoal_error_code greeting_unknown = {
 *         404, "greeting.unknown_language", "lang", "has no greeting"};
 *     static const shoal_error_table hello_errors = {
 *         "hello", (const shoal_error_code *const[]){&greeting_unknown, NULL}};
 *     ...
 *     return shoal_fail(ctx, &greeting_unknown);
 *
 * and hand the table to the service (shoal_service's errors), so that
 * `<program> errors` lists it beside the library's (status, code, module)
 * and a code declared twice is caught before the node serves. */
#ifndef SHOAL_ERRORS_H
#define SHOAL_ERRORS_H

typedef struct shoal_ctx shoal_ctx;

typedef struct shoal_error_code {
    int status;          /* 400..599 */
    const char *code;    /* stable: words of [a-z0-9_] joined by dots, "route.not_found" */
    const char *field;   /* the field the envelope names by default; NULL: "body" */
    const char *message; /* the default message, for humans */
} shoal_error_code;

typedef struct shoal_error_table {
    const char *module;                   /* who answers them: "hello", "core", "rate-limit" */
    const shoal_error_code *const *codes; /* NULL-terminated */
} shoal_error_table;

/* Answers error with its status, code, field and message through
 * shoal_error (error handlers included). Returns what shoal_error
 * returns. */
int shoal_fail(shoal_ctx *ctx, const shoal_error_code *error);
/* The same with another field or message (NULL keeps the entry's): the
 * value that was wrong, a limit in the message. Status and code are the
 * entry's. */
int shoal_fail_with(shoal_ctx *ctx, const shoal_error_code *error, const char *field, const char *message);

/* The core's codes ("core" in `errors`) that services answer too. */
extern const shoal_error_code shoal_code_internal;              /* 500 internal */
extern const shoal_error_code shoal_code_request_invalid_field; /* 422: a member of the wrong type */
extern const shoal_error_code shoal_code_request_missing_field; /* 422: a required member is absent */

#endif
