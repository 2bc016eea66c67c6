/* node/lib/errors_internal.h: the library's own error codes and tables, for
 * the modules that answer them and for shoal_main's `errors` command. */
#ifndef SHOAL_ERRORS_INTERNAL_H
#define SHOAL_ERRORS_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include <shoal/errors.h>

/* core (node/lib/errors.c); internal, request.invalid_field and
 * request.missing_field are public (errors.h) */
extern const shoal_error_code shoal_code_route_not_found;
extern const shoal_error_code shoal_code_route_method_not_allowed;
extern const shoal_error_code shoal_code_request_malformed;
extern const shoal_error_code shoal_code_request_body_too_large;
extern const shoal_error_code shoal_code_request_headers_too_large;
extern const shoal_error_code shoal_code_request_unsupported_media_type;
extern const shoal_error_code shoal_code_request_empty_body;
extern const shoal_error_code shoal_code_request_json_too_deep;
extern const shoal_error_code shoal_code_request_malformed_json;
extern const shoal_error_code shoal_code_request_deadline_exceeded;
extern const shoal_error_code shoal_code_node_overloaded;

/* One table per module that answers errors. */
extern const shoal_error_table shoal_core_errors;        /* node/lib/errors.c */
extern const shoal_error_table shoal_tier_errors;        /* node/lib/tiers.c: store.*, cache.* */
extern const shoal_error_table shoal_password_errors;    /* node/lib/password.c */
extern const shoal_error_table shoal_rate_limit_errors;  /* node/lib/ext/rate_limit.c */
extern const shoal_error_table shoal_session_errors;     /* node/lib/ext/session.c */
extern const shoal_error_table shoal_idempotency_errors; /* node/lib/ext/idempotency.c */

/* Each code well formed (status 400..599, dotted [a-z0-9_] words, a
 * message) and declared once over all the tables: 0, or -1 with error. */
int shoal_error_tables_check(const shoal_error_table *const *tables, size_t count, char *error, size_t error_size);
/* One line per code: "status<TAB>code<TAB>module". */
void shoal_error_tables_print(FILE *out, const shoal_error_table *const *tables, size_t count);

#endif
