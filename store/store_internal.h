/* store/store_internal.h: shared by store's own files only. */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <libpq-fe.h>

#include "store.h"

/* A new connection with the timeout and application name applied and
 * notices silenced; check PQstatus. */
PGconn *store_connect(const store_config *config);

/* libpq's messages span lines ("...failed\n\tIs the server running..."):
 * makes one a single line for logs and error strings, in place. */
void store_tidy_message(char *text);

#endif
