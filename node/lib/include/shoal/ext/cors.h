/* node/lib/include/shoal/ext/cors.h: Cross-Origin Resource Sharing for browser clients. */
#ifndef SHOAL_CORS_H
#define SHOAL_CORS_H

#include <shoal/shoal.h>

/* Reads --cors-origins ("*", the default, or a comma-separated list of
 * origins; empty: off). For an allowed Origin, a preflight (OPTIONS with
 * Access-Control-Request-Method) on any path is answered 204 with the
 * Allow-Methods, Allow-Headers and Max-Age headers and stops the chain;
 * every answer to an allowed Origin gets Access-Control-Allow-Origin ("*"
 * when the list is "*", else the origin) and Expose-Headers. With a list,
 * every answer carries Vary: Origin. A request from another origin gets no
 * CORS header and is otherwise served as usual: the browser withholds the
 * answer from the page. Credentials are never allowed. */
extern const shoal_extension shoal_cors_extension;

/* --cors-origins (SHOAL_CORS_ORIGINS): "*" (the default), a comma-separated
 * list of origins, or "" (off). */
typedef struct shoal_cors_settings_values {
    const char *origins;
} shoal_cors_settings_values;
extern const shoal_settings shoal_cors_settings;

/* True when origin is in the list (exact match, or the list holds "*"). */
bool shoal_cors_origin_allowed(const char *origins, const char *origin);

#endif
