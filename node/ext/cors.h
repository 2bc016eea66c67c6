/* node/ext/cors.h: Cross-Origin Resource Sharing for browser clients. */
#ifndef SHOAL_CORS_H
#define SHOAL_CORS_H

#include "../shoal.h"

/* Reads --cors-origins ("*" or a comma-separated list of origins). For an
 * allowed Origin, a preflight (OPTIONS with Access-Control-Request-Method)
 * on a known path is answered 204 with the Allow-* headers and stops the
 * chain; every other answer gets Access-Control-Allow-Origin and Vary. */
extern const shoal_extension shoal_cors_extension;

/* True when origin is in the list (exact match, or the list is "*"). */
bool shoal_cors_origin_allowed(const char *origins, const char *origin);

#endif
