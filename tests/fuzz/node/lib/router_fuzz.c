/* tests/fuzz/node/lib/router_fuzz.c: node/lib/router.c against a reference matcher.
 *
 * The input's first byte picks the mode:
 *   - high bit clear: its low three bits pick a method, the rest is a path,
 *     matched against the node's own route table (the RealWorld API and the
 *     TechEmpower routes, as they register);
 *   - high bit set: the rest is a list of patterns, one a line, added to a
 *     fresh router (most are refused: that is tested too); then a path made
 *     from each accepted pattern must match.
 * Every answer is checked against a deliberately simple reference that
 * knows no priorities: FOUND names a route whose pattern matches the path
 * and serves the method, with exactly that pattern's parameters; 405 means
 * some pattern matches and none serves the method; 404 that none matches. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/router.h>

#include "fuzz_request.h"

#define MAX_ROUTES 64
#define MAX_PATH 4096

typedef struct route {
    unsigned methods;
    const char *pattern;
} route;

static const route node_routes[] = {
    {SHOAL_METHOD_POST, "/api/users"},
    {SHOAL_METHOD_POST, "/api/users/login"},
    {SHOAL_METHOD_POST, "/api/users/logout"},
    {SHOAL_METHOD_GET | SHOAL_METHOD_PUT, "/api/user"},
    {SHOAL_METHOD_GET, "/api/profiles/:username"},
    {SHOAL_METHOD_POST | SHOAL_METHOD_DELETE, "/api/profiles/:username/follow"},
    {SHOAL_METHOD_GET | SHOAL_METHOD_POST, "/api/articles"},
    {SHOAL_METHOD_GET, "/api/articles/feed"},
    {SHOAL_METHOD_GET | SHOAL_METHOD_PUT | SHOAL_METHOD_DELETE, "/api/articles/:slug"},
    {SHOAL_METHOD_POST | SHOAL_METHOD_DELETE, "/api/articles/:slug/favorite"},
    {SHOAL_METHOD_GET | SHOAL_METHOD_POST, "/api/articles/:slug/comments"},
    {SHOAL_METHOD_DELETE, "/api/articles/:slug/comments/:id"},
    {SHOAL_METHOD_GET, "/api/tags"},
    {SHOAL_METHOD_GET, "/metrics"},
    {SHOAL_METHOD_GET, "/healthz"},
    {SHOAL_METHOD_GET, "/readyz"},
    {SHOAL_METHOD_GET, "/json"},
    {SHOAL_METHOD_GET, "/plaintext"},
    {SHOAL_METHOD_GET, "/db"},
    {SHOAL_METHOD_GET, "/queries"},
    {SHOAL_METHOD_GET, "/updates"},
    {SHOAL_METHOD_GET, "/fortunes"},
    {SHOAL_METHOD_GET, "/cached-queries"},
    /* Not the node's, but the shapes the router promises: a wildcard and a
     * trailing slash. */
    {SHOAL_METHOD_GET, "/static/*file"},
    {SHOAL_METHOD_GET, "/static/"},
};

static const unsigned methods_by_byte[8] = {
    SHOAL_METHOD_GET, SHOAL_METHOD_HEAD,  SHOAL_METHOD_POST,    SHOAL_METHOD_PUT,
    SHOAL_METHOD_DELETE, SHOAL_METHOD_PATCH, SHOAL_METHOD_OPTIONS, SHOAL_METHOD_OTHER,
};

typedef struct capture {
    char name[MAX_PATH];
    char value[MAX_PATH];
} capture;

/* Does pattern match path, and with which parameters? No priorities: one
 * pattern alone is never ambiguous. */
static bool reference_match(const char *pattern, const char *path, capture *captures, size_t *count)
{
    *count = 0;
    if (pattern[0] != '/' || path[0] != '/')
        return false;
    /* "/" alone has no segments at all, as a pattern and as a path: only
     * "/" and a wildcard right at the root match it. */
    if (strcmp(pattern, "/") == 0)
        return strcmp(path, "/") == 0;
    if (strcmp(path, "/") == 0) {
        if (pattern[1] != '*' || strchr(pattern + 1, '/') != NULL)
            return false;
        snprintf(captures[0].name, MAX_PATH, "%s", pattern[2] != '\0' ? pattern + 2 : pattern + 1);
        captures[0].value[0] = '\0';
        *count = 1;
        return true;
    }
    const char *p = pattern + 1, *s = path + 1;
    for (;;) {
        size_t p_length = strcspn(p, "/");
        if (p[0] == '*') {
            const char *name = p_length > 1 ? p + 1 : p;
            size_t name_length = p_length > 1 ? p_length - 1 : 1;
            snprintf(captures[*count].name, MAX_PATH, "%.*s", (int)name_length, name);
            snprintf(captures[*count].value, MAX_PATH, "%s", s);
            (*count)++;
            return true;
        }
        size_t s_length = strcspn(s, "/");
        if (p[0] == ':') {
            if (s_length == 0)
                return false;
            snprintf(captures[*count].name, MAX_PATH, "%.*s", (int)(p_length - 1), p + 1);
            snprintf(captures[*count].value, MAX_PATH, "%.*s", (int)s_length, s);
            (*count)++;
        } else if (p_length != s_length || memcmp(p, s, p_length) != 0) {
            return false;
        }
        bool pattern_more = p[p_length] == '/';
        bool path_more = s[s_length] == '/';
        if (pattern_more && !path_more) {
            /* A wildcard also matches nothing at all after the last slash. */
            const char *last = p + p_length + 1;
            if (last[0] != '*' || strchr(last, '/') != NULL)
                return false;
            snprintf(captures[*count].name, MAX_PATH, "%s", last[1] != '\0' ? last + 1 : last);
            captures[*count].value[0] = '\0';
            (*count)++;
            return true;
        }
        if (pattern_more != path_more)
            return false;
        if (!pattern_more)
            return true;
        p += p_length + 1;
        s += s_length + 1;
    }
}

/* Two patterns name one route when they differ only in how a wildcard is
 * named: a bare '*' is the wildcard named "*", as "**" is. */
static bool same_route(const char *a, const char *b)
{
    const char *star_a = strrchr(a, '*'), *star_b = strrchr(b, '*');
    bool bare_a = star_a != NULL && star_a[-1] == '/' && star_a[1] == '\0';
    bool bare_b = star_b != NULL && star_b[-1] == '/' && star_b[1] == '\0';
    if (bare_a == bare_b)
        return strcmp(a, b) == 0;
    /* A bare star against a star named "*": one extra star at the end. */
    const char *bare = bare_a ? a : b, *named = bare_a ? b : a;
    size_t length = strlen(bare);
    return strlen(named) == length + 1 && strncmp(bare, named, length) == 0 && strcmp(named + length, "*") == 0;
}

static unsigned serves(unsigned methods)
{
    return (methods & SHOAL_METHOD_GET) ? methods | SHOAL_METHOD_HEAD : methods;
}

static void check(const shoal_router *router, const route *routes, const bool *added, size_t route_count,
                  unsigned method, const char *path)
{
    static char buffer[MAX_PATH + 1];
    static capture captures[SHOAL_ROUTER_MAX_PARAMS + 1];
    snprintf(buffer, sizeof buffer, "%s", path);
    shoal_router_match match;
    shoal_router_result result = shoal_router_match_path(router, method, buffer, &match);

    unsigned any_match = 0;
    for (size_t i = 0; i < route_count; i++) {
        size_t count;
        if (added[i] && reference_match(routes[i].pattern, path, captures, &count))
            any_match |= serves(routes[i].methods);
    }
    switch (result) {
    case SHOAL_ROUTER_FOUND: {
        const route *found = match.target;
        if (found < routes || found >= routes + route_count || !added[found - routes])
            fuzz_fail("router: FOUND an unknown target for '%s'", path);
        size_t count = 0;
        if (!reference_match(found->pattern, path, captures, &count))
            fuzz_fail("router: '%s' matched '%s', which does not match it", path, found->pattern);
        if (!(serves(found->methods) & method))
            fuzz_fail("router: '%s' matched '%s', which does not serve method %u", path, found->pattern, method);
        /* Routes with the same pattern share one node and its methods. */
        unsigned allowed = 0;
        for (size_t i = 0; i < route_count; i++)
            if (added[i] && same_route(routes[i].pattern, found->pattern))
                allowed |= serves(routes[i].methods);
        if (match.allowed != allowed)
            fuzz_fail("router: '%s': allowed %u, not %u", path, match.allowed, allowed);
        if (match.param_count != count)
            fuzz_fail("router: '%s' on '%s': %zu parameters, the pattern has %zu", path, found->pattern,
                      match.param_count, count);
        for (size_t i = 0; i < count; i++)
            if (strcmp(match.params[i].name, captures[i].name) != 0 ||
                strcmp(match.params[i].value, captures[i].value) != 0)
                fuzz_fail("router: '%s' on '%s': parameter %zu is %s='%s', not %s='%s'", path, found->pattern, i,
                          match.params[i].name, match.params[i].value, captures[i].name, captures[i].value);
        break;
    }
    case SHOAL_ROUTER_METHOD_NOT_ALLOWED:
        if (any_match == 0 || (any_match & method))
            fuzz_fail("router: 405 for '%s', the reference says %s", path,
                      any_match == 0 ? "no route matches" : "a route serves the method");
        if (match.allowed != any_match)
            fuzz_fail("router: 405 for '%s' allows %u, not %u", path, match.allowed, any_match);
        break;
    case SHOAL_ROUTER_NOT_FOUND:
        if (any_match != 0)
            fuzz_fail("router: 404 for '%s', which a route matches", path);
        break;
    }
}

static shoal_router *node_router;
static bool node_added[sizeof node_routes / sizeof node_routes[0]];

static void build_node_router(void)
{
    node_router = shoal_router_new();
    char error[256];
    for (size_t i = 0; i < sizeof node_routes / sizeof node_routes[0]; i++) {
        if (shoal_router_add(node_router, node_routes[i].methods, node_routes[i].pattern, (void *)&node_routes[i],
                             error, sizeof error) != 0)
            fuzz_fail("router: the node's route %s is refused: %s", node_routes[i].pattern, error);
        node_added[i] = true;
    }
    shoal_router_freeze(node_router);
}

/* A path the pattern matches: each parameter becomes a segment of its own. */
static void path_for(const char *pattern, char *out, size_t size)
{
    size_t used = 0;
    for (const char *p = pattern; *p != '\0' && used + 8 < size;) {
        if ((*p == ':' || *p == '*') && p > pattern && p[-1] == '/') {
            const char *value = *p == ':' ? "v" : "w/x";
            used += (size_t)snprintf(out + used, size - used, "%s", value);
            p += strcspn(p, "/");
        } else {
            out[used++] = *p++;
        }
    }
    out[used] = '\0';
}

static void fuzz_patterns(const uint8_t *data, size_t size)
{
    static route routes[MAX_ROUTES];
    static bool added[MAX_ROUTES];
    static char patterns[MAX_ROUTES][256];
    size_t count = 0;
    for (size_t start = 0; start < size && count < MAX_ROUTES;) {
        const uint8_t *newline = memchr(data + start, '\n', size - start);
        size_t length = newline != NULL ? (size_t)(newline - (data + start)) : size - start;
        if (length > 1 && length < sizeof patterns[0] && memchr(data + start + 1, '\0', length - 1) == NULL) {
            /* The line's first byte picks its methods. */
            routes[count].methods = (unsigned)data[start] & 0x7f;
            memcpy(patterns[count], data + start + 1, length - 1);
            patterns[count][length - 1] = '\0';
            routes[count].pattern = patterns[count];
            count++;
        }
        start += length + 1;
    }
    shoal_router *router = shoal_router_new();
    char error[256];
    for (size_t i = 0; i < count; i++)
        added[i] = shoal_router_add(router, routes[i].methods, routes[i].pattern, &routes[i], error, sizeof error) == 0;
    shoal_router_freeze(router);
    char error_after[256];
    if (count > 0 && shoal_router_add(router, SHOAL_METHOD_GET, "/x", NULL, error_after, sizeof error_after) == 0)
        fuzz_fail("router: a frozen router took a route");
    for (size_t i = 0; i < count; i++) {
        if (!added[i])
            continue;
        char path[600];
        path_for(routes[i].pattern, path, sizeof path);
        for (unsigned bit = 0; bit < SHOAL_METHOD_COUNT; bit++)
            check(router, routes, added, count, 1u << bit, path);
        unsigned method = routes[i].methods & (0u - routes[i].methods); /* its lowest method */
        char copy[600];
        snprintf(copy, sizeof copy, "%s", path);
        shoal_router_match match;
        if (shoal_router_match_path(router, method, copy, &match) != SHOAL_ROUTER_FOUND)
            fuzz_fail("router: '%s', made from the accepted pattern '%s', is not found", path, routes[i].pattern);
    }
    shoal_router_free(router);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keep_stderr();
    build_node_router();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_PATH)
        return 0;
    if (data[0] & 0x80) {
        fuzz_patterns(data + 1, size - 1);
        return 0;
    }
    char path[MAX_PATH + 1];
    size_t length = size - 1;
    memcpy(path, data + 1, length);
    path[length] = '\0';
    if (strlen(path) != length)
        return 0; /* node/lib/url.c keeps "%00" encoded: a path holds no NUL */
    check(node_router, node_routes, node_added, sizeof node_routes / sizeof node_routes[0],
          methods_by_byte[data[0] & 7], path);
    return 0;
}
