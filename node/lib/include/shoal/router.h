/* node/lib/include/shoal/router.h: method + path to a target, built at start-up, read-only after.
 *
 * Patterns are absolute paths made of segments: static text, `:name` (one
 * whole non-empty segment) and, last only, `*name` or `*` (the rest of the
 * path, possibly empty, slashes included). Static segments win over
 * parameters, parameters over wildcards, with backtracking, so
 * `/articles/feed` and `/articles/:slug` coexist.
 *
 * Matching allocates nothing: it splits the caller's writable copy of the
 * path in place and points the parameters into it. A frozen router is never
 * written again, so worker threads match concurrently without locks. */
#ifndef SHOAL_ROUTER_H
#define SHOAL_ROUTER_H

#include <stddef.h>

/* Methods are bits so a route can serve several and 405 can list them. */
enum {
    SHOAL_METHOD_GET = 1u << 0,
    SHOAL_METHOD_HEAD = 1u << 1,
    SHOAL_METHOD_POST = 1u << 2,
    SHOAL_METHOD_PUT = 1u << 3,
    SHOAL_METHOD_DELETE = 1u << 4,
    SHOAL_METHOD_PATCH = 1u << 5,
    SHOAL_METHOD_OPTIONS = 1u << 6,
    SHOAL_METHOD_OTHER = 1u << 7, /* any token we do not route on */
};
#define SHOAL_METHOD_COUNT 8

/* "GET" -> SHOAL_METHOD_GET; unknown tokens -> SHOAL_METHOD_OTHER; NULL -> 0. */
unsigned shoal_router_method_from_name(const char *name);
/* SHOAL_METHOD_GET -> "GET"; not exactly one bit -> NULL. */
const char *shoal_router_method_name(unsigned method);
/* Writes "GET, HEAD, POST" for a mask, in a fixed order; returns the length
 * that was needed (like snprintf). */
size_t shoal_router_format_allow(unsigned methods, char *out, size_t size);

#define SHOAL_ROUTER_MAX_PARAMS 8

typedef struct shoal_router shoal_router;

typedef struct shoal_router_param {
    const char *name;  /* from the pattern, without ':' or '*' */
    const char *value; /* NUL-terminated, inside the caller's path buffer */
} shoal_router_param;

typedef enum shoal_router_result {
    SHOAL_ROUTER_FOUND,
    SHOAL_ROUTER_NOT_FOUND,
    SHOAL_ROUTER_METHOD_NOT_ALLOWED,
} shoal_router_result;

typedef struct shoal_router_match {
    void *target;              /* set when FOUND */
    unsigned allowed;          /* methods the path answers to (FOUND and 405) */
    size_t param_count;
    shoal_router_param params[SHOAL_ROUTER_MAX_PARAMS];
} shoal_router_match;

shoal_router *shoal_router_new(void);
void shoal_router_free(shoal_router *router);

/* Adds target for every method bit in methods. Returns 0; -1 with a reason in
 * error when the pattern is invalid (not absolute, empty parameter name, a
 * wildcard that is not last, too many parameters, a parameter named
 * differently from one already registered at the same place), when a
 * method is already taken for that pattern, or when the router is frozen. */
int shoal_router_add(shoal_router *router, unsigned methods, const char *pattern, void *target,
                     char *error, size_t error_size);

/* After this, shoal_router_add fails. */
void shoal_router_freeze(shoal_router *router);

/* path is a writable, NUL-terminated copy of the request path (no query);
 * it is modified. HEAD falls back to GET when no HEAD target exists, and
 * `allowed` then includes HEAD. */
shoal_router_result shoal_router_match_path(const shoal_router *router, unsigned method, char *path,
                                            shoal_router_match *match);

/* Value of a named parameter in a match, or NULL. */
const char *shoal_router_param_value(const shoal_router_match *match, const char *name);

#endif
