/* tests/fuzz/support/fuzz_request.h: what the fuzz targets share.
 *
 * A fuzz input for the request-shaped targets is a small HTTP request in
 * text, so that seeds are readable and libFuzzer's mutations stay close to
 * what a client could send:
 *
 *     METHOD TARGET            (TARGET: path, optionally ?query)
 *     Name: value              (zero or more header lines)
 *                              (an empty line)
 *     body bytes, up to the end of the input
 *
 * Before parsing, the placeholders a target names (say "$TOKEN") are
 * replaced everywhere by their values (a valid session token), so that the
 * fuzzer reaches what only a signed-in user reaches.
 *
 * The request goes through the real pipeline (shoal_app_dispatch) with the
 * real extensions, as main.c loads them, on a transport that answers header
 * and query lookups from the parsed input the way libmicrohttpd answers
 * them: the path and each query name and value percent-decoded by
 * node/lib/url.c, '+' read as a space in the query, the first of repeated names,
 * names compared without case. */
#ifndef SHOAL_FUZZ_REQUEST_H
#define SHOAL_FUZZ_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "context.h"

#define FUZZ_MAX_HEADERS 32
#define FUZZ_MAX_QUERY 64

typedef struct fuzz_field {
    const char *name;
    const char *value; /* NULL: a query name without '=' */
} fuzz_field;

typedef struct fuzz_request {
    char *text; /* the input after substitution, owned, cut in place */
    const char *method;
    char *path; /* decoded, without the query */
    fuzz_field headers[FUZZ_MAX_HEADERS];
    size_t header_count;
    fuzz_field query[FUZZ_MAX_QUERY];
    size_t query_count;
    const char *body;
    size_t body_length;
    char root[2]; /* the path when the input names none */
} fuzz_request;

/* Parses an input; false when its head is not one that HTTP could carry
 * (a NUL byte or no method), which libmicrohttpd answers itself. */
bool fuzz_request_parse(fuzz_request *request, const uint8_t *data, size_t size, const fuzz_field *substitutions,
                        size_t substitution_count);
void fuzz_request_free(fuzz_request *request);

/* Splits a query string in place into names and values as libmicrohttpd
 * 0.9.75 does ('&' between pairs, the first '=' in a pair, '+' as space),
 * decodes each with shoal_url_unescape; returns how many were kept (at most
 * max). */
size_t fuzz_query_split(char *query, fuzz_field *fields, size_t max);

/* A node's app for the targets: the extensions main.c loads (all but the
 * tier monitor's /readyz), frozen, and this thread's worker. An input with
 * the header "X-Shoal-Listener: admin" is dispatched as if it had arrived
 * on the admin port (/metrics is served there only); every other one as on
 * the public port. The API's
 * password hashing runs at its cheapest (the cost is not what is tested),
 * rate limits are off unless flags turn them on; flags is NULL-terminated
 * and may be NULL. Exits with a message when setup fails. */
typedef struct fuzz_node {
    shoal_config config;
    shoal_app *app;
    shoal_worker *worker;
} fuzz_node;

void fuzz_node_open(fuzz_node *node, const char *database_url, const char *redis_url, const char *const *flags);
void fuzz_node_close(fuzz_node *node);

/* The answer, copied out of the request's arena. */
typedef struct fuzz_answer {
    int status;
    char *content_type;
    char *body;
    size_t body_length;
    bool retry_after;
} fuzz_answer;

/* Dispatches request through node's pipeline, checks the answer (below)
 * and gives it back in answer (may be NULL; free with fuzz_answer_free).
 * Any violation prints the request and the answer and aborts, which
 * libFuzzer records as a crash:
 *   - a status outside 100..599;
 *   - a 5xx other than 503 with Retry-After (a 500 is a bug here);
 *   - an error (4xx, 5xx) that is not the JSON envelope
 *     {"errors":{field:[message]},"code":code};
 *   - a body announced as application/json that does not parse. */
void fuzz_dispatch(fuzz_node *node, fuzz_request *request, fuzz_answer *answer);
void fuzz_answer_free(fuzz_answer *answer);

/* Prints a message to the stderr the process started with (libFuzzer's
 * -close_fd_mask=2 silences the node's own log lines), then aborts. */
void fuzz_fail(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Call once at start-up, before anything closes stderr. */
void fuzz_keep_stderr(void);

#endif
