/* node/services/conduit/api.h: the RealWorld "Conduit" API, a blueprint under /api
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
 * Registers its statements (node/services/conduit/sql/user.h, profile.h, article.h, tag.h), a
 * password hasher bounded by --password-concurrency, and its routes;
 * nothing when --api is false.
 * Needs the session extension loaded before it. */
#ifndef SHOAL_API_H
#define SHOAL_API_H

#include <shoal/service.h>
#include <shoal/shoal.h>

extern const shoal_extension shoal_api_extension;

/* Conduit's settings (node/services/conduit/settings.c): --api, --api-max-limit,
 * --login-failures-per-address, --login-failures-per-account. A service
 * that loads shoal_api_extension lists shoal_conduit_settings (and
 * shoal_password_settings, for its hasher) among its tables. */
typedef struct shoal_conduit_settings_values {
    bool api;      /* serve it at all */
    int max_limit; /* most articles one list page returns */
    const char *login_failures_per_address; /* "COUNT/[N]UNIT [burst B]" */
    const char *login_failures_per_account; /* per account and address */
} shoal_conduit_settings_values;
extern const shoal_settings shoal_conduit_settings;

/* Conduit's --rate-limits: its credential endpoints (reads are never
 * limited). The library's default is none; shoal-node sets this one with
 * shoal_service's defaults. */
#define SHOAL_CONDUIT_RATE_LIMITS "POST /api/users/login=10/min burst 5,POST /api/users=20/h burst 10"

/* Its error codes (module "conduit"), for the service's errors list. */
extern const shoal_error_table shoal_api_errors;

/* Its schema (migrations/, embedded by shoal_add_migrations), component
 * "conduit": 1 baseline (citext), 2 conduit (the RealWorld tables); adopts
 * 0.1's schema_migrations rows 1 baseline and 3 conduit. */
extern const shoal_migrations shoal_conduit_migrations;

#endif
