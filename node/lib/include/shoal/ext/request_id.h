/* node/lib/include/shoal/ext/request_id.h: X-Request-ID, taken from the request or made. */
#ifndef SHOAL_REQUEST_ID_H
#define SHOAL_REQUEST_ID_H

#include <shoal/shoal.h>

/* A before hook adopts the client's X-Request-ID when it is 1 to 128
 * characters of [A-Za-z0-9._:@/+=-] (anything else could forge log lines or
 * split headers) and otherwise makes a random 128-bit hex id; an after hook
 * echoes it on every response. */
extern const shoal_extension shoal_request_id_extension;

/* True when text is acceptable as a request id. */
bool shoal_request_id_valid(const char *text);

#endif
