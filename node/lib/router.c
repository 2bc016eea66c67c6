/* node/lib/router.c: a segment trie. Static children, one parameter child and
 * one wildcard per node; targets per method at each node. */
#include <shoal/router.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct route_node route_node;

struct route_node {
    char *segment; /* static text (children of `statics` only) */
    route_node **statics;
    size_t static_count;
    route_node *param;
    char *param_name;
    route_node *wildcard; /* terminal: only its targets are used */
    char *wildcard_name;
    unsigned methods;
    void *targets[SHOAL_METHOD_COUNT];
};

struct shoal_router {
    route_node root;
    bool frozen;
};

static const char *const method_names[SHOAL_METHOD_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", NULL,
};

unsigned shoal_router_method_from_name(const char *name)
{
    if (name == NULL)
        return 0;
    for (unsigned i = 0; i < SHOAL_METHOD_COUNT; i++)
        if (method_names[i] != NULL && strcmp(method_names[i], name) == 0)
            return 1u << i;
    return SHOAL_METHOD_OTHER;
}

static int method_index(unsigned method)
{
    if (method == 0 || (method & (method - 1)) != 0)
        return -1;
    return __builtin_ctz(method);
}

const char *shoal_router_method_name(unsigned method)
{
    int index = method_index(method);
    return index < 0 ? NULL : method_names[index];
}

size_t shoal_router_format_allow(unsigned methods, char *out, size_t size)
{
    size_t needed = 0;
    if (size > 0)
        out[0] = '\0';
    for (unsigned i = 0; i < SHOAL_METHOD_COUNT; i++) {
        if (!(methods & (1u << i)) || method_names[i] == NULL)
            continue;
        const char *separator = needed > 0 ? ", " : "";
        int written = snprintf(needed < size ? out + needed : NULL, needed < size ? size - needed : 0,
                               "%s%s", separator, method_names[i]);
        needed += (size_t)written;
    }
    return needed;
}

shoal_router *shoal_router_new(void)
{
    return calloc(1, sizeof(shoal_router));
}

static void free_node_contents(route_node *node)
{
    for (size_t i = 0; i < node->static_count; i++) {
        free_node_contents(node->statics[i]);
        free(node->statics[i]);
    }
    free(node->statics);
    if (node->param != NULL) {
        free_node_contents(node->param);
        free(node->param);
    }
    if (node->wildcard != NULL) {
        free_node_contents(node->wildcard);
        free(node->wildcard);
    }
    free(node->segment);
    free(node->param_name);
    free(node->wildcard_name);
}

void shoal_router_free(shoal_router *router)
{
    if (router == NULL)
        return;
    free_node_contents(&router->root);
    free(router);
}

void shoal_router_freeze(shoal_router *router)
{
    router->frozen = true;
}

static route_node *find_static(const route_node *node, const char *segment, size_t length)
{
    for (size_t i = 0; i < node->static_count; i++) {
        const char *candidate = node->statics[i]->segment;
        if (strncmp(candidate, segment, length) == 0 && candidate[length] == '\0')
            return node->statics[i];
    }
    return NULL;
}

static route_node *add_static(route_node *node, const char *segment, size_t length)
{
    route_node *child = find_static(node, segment, length);
    if (child != NULL)
        return child;
    route_node **grown = realloc(node->statics, (node->static_count + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    node->statics = grown;
    child = calloc(1, sizeof *child);
    if (child == NULL)
        return NULL;
    child->segment = strndup(segment, length);
    if (child->segment == NULL) {
        free(child);
        return NULL;
    }
    node->statics[node->static_count++] = child;
    return child;
}

/* Gets or creates the param or wildcard child, insisting on one name per place. */
static route_node *add_named(route_node **slot, char **slot_name, const char *name, size_t length,
                             char *error, size_t error_size)
{
    if (*slot != NULL) {
        if (strncmp(*slot_name, name, length) != 0 || (*slot_name)[length] != '\0') {
            snprintf(error, error_size, "parameter '%.*s' conflicts with '%s' at the same place",
                     (int)length, name, *slot_name);
            return NULL;
        }
        return *slot;
    }
    route_node *child = calloc(1, sizeof *child);
    char *copy = strndup(name, length);
    if (child == NULL || copy == NULL) {
        free(child);
        free(copy);
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    *slot = child;
    *slot_name = copy;
    return child;
}

int shoal_router_add(shoal_router *router, unsigned methods, const char *pattern, void *target,
                     char *error, size_t error_size)
{
    if (router->frozen) {
        snprintf(error, error_size, "router is frozen: routes must be added before serving");
        return -1;
    }
    if (pattern == NULL || pattern[0] != '/') {
        snprintf(error, error_size, "pattern must start with '/'");
        return -1;
    }
    if (methods == 0 || (methods & SHOAL_METHOD_OTHER)) {
        snprintf(error, error_size, "unknown method for %s", pattern);
        return -1;
    }

    route_node *node = &router->root;
    size_t params = 0;
    const char *cursor = pattern + 1;
    /* "/" alone has no segments: the root holds its targets. */
    while (*cursor != '\0' || (cursor > pattern + 1 && cursor[-1] == '/')) {
        const char *slash = strchr(cursor, '/');
        size_t length = slash != NULL ? (size_t)(slash - cursor) : strlen(cursor);
        if (cursor[0] == ':' || cursor[0] == '*') {
            if (++params > SHOAL_ROUTER_MAX_PARAMS) {
                snprintf(error, error_size, "too many parameters in %s", pattern);
                return -1;
            }
        }
        if (cursor[0] == ':') {
            if (length < 2) {
                snprintf(error, error_size, "empty parameter name in %s", pattern);
                return -1;
            }
            node = add_named(&node->param, &node->param_name, cursor + 1, length - 1, error,
                             error_size);
        } else if (cursor[0] == '*') {
            if (slash != NULL) {
                snprintf(error, error_size, "a wildcard must be the last segment in %s", pattern);
                return -1;
            }
            /* A bare '*' is reachable under the name "*". */
            const char *name = length > 1 ? cursor + 1 : cursor;
            node = add_named(&node->wildcard, &node->wildcard_name, name, length > 1 ? length - 1 : 1,
                             error, error_size);
        } else {
            node = add_static(node, cursor, length);
            if (node == NULL)
                snprintf(error, error_size, "out of memory");
        }
        if (node == NULL)
            return -1;
        if (slash == NULL)
            break;
        cursor = slash + 1;
        if (*cursor == '\0') {
            /* A trailing slash is a segment of its own: "/a/" differs from "/a". */
            node = add_static(node, "", 0);
            if (node == NULL) {
                snprintf(error, error_size, "out of memory");
                return -1;
            }
            break;
        }
    }

    if (node->methods & methods) {
        snprintf(error, error_size, "a route for %s is already registered for one of its methods",
                 pattern);
        return -1;
    }
    for (unsigned i = 0; i < SHOAL_METHOD_COUNT; i++)
        if (methods & (1u << i))
            node->targets[i] = target;
    node->methods |= methods;
    return 0;
}

typedef struct match_state {
    unsigned method;
    unsigned allowed_union;
    size_t count;
    const char *names[SHOAL_ROUTER_MAX_PARAMS];
    char *values[SHOAL_ROUTER_MAX_PARAMS];
    size_t lengths[SHOAL_ROUTER_MAX_PARAMS];
    void *target;
    unsigned target_allowed;
} match_state;

static unsigned effective_methods(unsigned methods)
{
    return (methods & SHOAL_METHOD_GET) ? methods | SHOAL_METHOD_HEAD : methods;
}

static void *target_for(const route_node *node, unsigned method)
{
    int index = method_index(method);
    if (index < 0)
        return NULL;
    if (node->methods & method)
        return node->targets[index];
    if (method == SHOAL_METHOD_HEAD && (node->methods & SHOAL_METHOD_GET))
        return node->targets[method_index(SHOAL_METHOD_GET)];
    return NULL;
}

/* A full match of the path ends at node; true when it serves the method. */
static bool accept_leaf(const route_node *node, match_state *state)
{
    if (node->methods == 0)
        return false;
    state->allowed_union |= effective_methods(node->methods);
    void *target = target_for(node, state->method);
    if (target == NULL)
        return false;
    state->target = target;
    state->target_allowed = effective_methods(node->methods);
    return true;
}

static bool push_param(match_state *state, const char *name, char *value, size_t length)
{
    if (state->count == SHOAL_ROUTER_MAX_PARAMS)
        return false;
    state->names[state->count] = name;
    state->values[state->count] = value;
    state->lengths[state->count] = length;
    state->count++;
    return true;
}

/* segment points at the start of the next segment, or is NULL when the path
 * is used up at node. */
static bool match_node(const route_node *node, char *segment, match_state *state)
{
    if (segment == NULL) {
        if (accept_leaf(node, state))
            return true;
        if (node->wildcard != NULL && push_param(state, node->wildcard_name, NULL, 0)) {
            if (accept_leaf(node->wildcard, state))
                return true;
            state->count--;
        }
        return false;
    }

    char *slash = strchr(segment, '/');
    size_t length = slash != NULL ? (size_t)(slash - segment) : strlen(segment);
    char *next = slash != NULL ? slash + 1 : NULL;

    const route_node *child = find_static(node, segment, length);
    if (child != NULL && match_node(child, next, state))
        return true;

    if (node->param != NULL && length > 0 && push_param(state, node->param_name, segment, length)) {
        if (match_node(node->param, next, state))
            return true;
        state->count--;
    }

    if (node->wildcard != NULL &&
        push_param(state, node->wildcard_name, segment, strlen(segment))) {
        if (accept_leaf(node->wildcard, state))
            return true;
        state->count--;
    }
    return false;
}

shoal_router_result shoal_router_match_path(const shoal_router *router, unsigned method, char *path,
                                            shoal_router_match *match)
{
    match_state state = {.method = method};
    match->target = NULL;
    match->allowed = 0;
    match->param_count = 0;
    if (path == NULL || path[0] != '/')
        return SHOAL_ROUTER_NOT_FOUND;

    char *first = path[1] == '\0' ? NULL : path + 1;
    if (match_node(&router->root, first, &state)) {
        match->target = state.target;
        match->allowed = state.target_allowed;
        match->param_count = state.count;
        for (size_t i = 0; i < state.count; i++) {
            match->params[i].name = state.names[i];
            if (state.values[i] == NULL) {
                match->params[i].value = "";
            } else {
                /* Matching is over, so the separators can become terminators. */
                state.values[i][state.lengths[i]] = '\0';
                match->params[i].value = state.values[i];
            }
        }
        return SHOAL_ROUTER_FOUND;
    }
    match->allowed = state.allowed_union;
    return state.allowed_union != 0 ? SHOAL_ROUTER_METHOD_NOT_ALLOWED : SHOAL_ROUTER_NOT_FOUND;
}

const char *shoal_router_param_value(const shoal_router_match *match, const char *name)
{
    for (size_t i = 0; i < match->param_count; i++)
        if (strcmp(match->params[i].name, name) == 0)
            return match->params[i].value;
    return NULL;
}
