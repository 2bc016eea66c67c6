/* tests/support/state_routes.h: routes that exercise the shared tiers the
 * way the API modules will, for node-level failure tests. Never part of the
 * shipped node.
 *
 * Under /test:
 *   POST /login?user=N      a session for user N (201 {"token"}); no password
 *   GET  /me                the session's user (401, or 503 while Redis is down)
 *   POST /logout            ends the request's session (204)
 *   GET  /items/:key[?ttl_ms=N]  {"key","value"} through shoal_cached
 *                           (family STATE_ROUTES_FAMILY, TTL N or
 *                           STATE_ROUTES_TTL_MS): a public read that needs
 *                           only PostgreSQL; read a key with one TTL only
 *   GET  /items/:key/direct the same straight from PostgreSQL
 *   PUT  /items/:key?value=V  needs a session; writes PostgreSQL, then
 *                           invalidates the family on every node (200)
 *
 * The table is STATE_ROUTES_TABLE_SQL; it must exist before a node
 * connects, since every connection prepares the statements. */
#ifndef TEST_STATE_ROUTES_H
#define TEST_STATE_ROUTES_H

#include <shoal/shoal.h>

#define STATE_ROUTES_FAMILY "state_item"
#define STATE_ROUTES_TTL_MS 60000
#define STATE_ROUTES_TABLE_SQL \
    "CREATE TABLE IF NOT EXISTS state_test_items (key text PRIMARY KEY, value text NOT NULL)"

extern const shoal_extension state_routes_extension;

#endif
