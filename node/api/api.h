/* node/api/api.h: the RealWorld "Conduit" API, a blueprint under /api
 * (docs/api.md lists every endpoint, its answers and its error codes).
 *
 *   POST /api/users            register (201)
 *   POST /api/users/login      log in (200; 401; 429 after repeated failures)
 *   POST /api/users/logout     end this session (204)
 *   GET  /api/user             the caller (200; 401)
 *   PUT  /api/user             change the caller; a new password ends every
 *                              other session of the user
 *   GET  /api/profiles/:username, POST and DELETE .../follow
 *   GET  /api/articles, /api/articles/feed, /api/articles/:slug, /api/tags
 *   POST /api/articles, PUT and DELETE /api/articles/:slug,
 *   POST and DELETE /api/articles/:slug/favorite
 *
 * Registers its statements (store/user.h, profile.h, article.h, tag.h), a
 * password hasher bounded by --password-concurrency, and its routes;
 * nothing when --api is false.
 * Needs the session extension loaded before it. */
#ifndef SHOAL_API_H
#define SHOAL_API_H

#include "shoal.h"

extern const shoal_extension shoal_api_extension;
/* Its error codes (module "conduit"), for the service's errors list. */
extern const shoal_error_table shoal_api_errors;

#endif
