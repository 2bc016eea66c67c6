/* tests/unit/support/fake_request.h: requests through the whole pipeline
 * without an HTTP server.
 *
 * A fake_request carries what the transport would know (headers, query) and
 * the request's context; fake_request_dispatch runs shoal_app_dispatch on
 * it. Include after cmocka.h: the assertion helpers use cmocka. */
#ifndef SHOAL_UNIT_FAKE_REQUEST_H
#define SHOAL_UNIT_FAKE_REQUEST_H

#include <stdalign.h>
#include <stddef.h>

#include "context.h"

#define FAKE_MAX_FIELDS 16

typedef struct fake_field {
    const char *name;
    const char *value;
} fake_field;

typedef struct fake_connection {
    fake_field headers[FAKE_MAX_FIELDS];
    size_t header_count;
    fake_field query[FAKE_MAX_FIELDS];
    size_t query_count;
    const char *client_address;
} fake_connection;

extern const shoal_transport fake_transport;

typedef struct fake_request {
    shoal_ctx ctx;
    fake_connection connection;
    /* Small on purpose, so that bigger answers also exercise heap blocks. */
    alignas(max_align_t) unsigned char arena_block[1024];
} fake_request;

/* Loads a configuration from argv {"shoal-node", flags...} with an empty
 * environment; the access log is off so test output stays readable.
 * flags is NULL-terminated and may be NULL. */
void fake_config_load(shoal_config *config, const char *const *flags);

/* worker may be NULL: then nothing that needs one (store, cache, worker
 * slots) is available, as the pipeline allows. */
void fake_request_init(fake_request *request, shoal_app *app, shoal_worker *worker,
                       const char *method, const char *path);
void fake_request_header(fake_request *request, const char *name, const char *value);
void fake_request_query(fake_request *request, const char *name, const char *value);
void fake_request_body(fake_request *request, const char *body);
void fake_request_dispatch(fake_request *request);
void fake_request_finish(fake_request *request);

/* The answer's body as a NUL-terminated copy in the request's arena. */
const char *fake_response_body(fake_request *request);

/* Asserts the default error envelope: status, {"errors":{field:[...]},"code":code}. */
void assert_error_envelope(fake_request *request, int status, const char *code, const char *field);

#endif
