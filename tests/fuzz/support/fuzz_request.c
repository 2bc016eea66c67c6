/* tests/fuzz/support/fuzz_request.c */
#include "demo_settings.h"
#include "fuzz_request.h"

#include <fcntl.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <shoal/config.h>
#include <shoal/ext/cors.h>
#include <shoal/ext/idempotency.h>
#include <shoal/ext/rate_limit.h>
#include <shoal/ext/request_id.h>
#include <shoal/ext/session.h>
#include <shoal/json.h>
#include <shoal/metrics.h>
#include <shoal/store.h>

#include "conduit/api.h"
#include "techempower/bench.h"
#include "url.h"

/* As node/lib/http.c gives each request: most answers fit, bigger ones spill
 * into heap blocks of the arena. */
#define REQUEST_ARENA_BYTES 8192

static FILE *report = NULL;

void fuzz_keep_stderr(void)
{
    if (report != NULL)
        return;
    int fd = dup(STDERR_FILENO);
    if (fd >= 0)
        report = fdopen(fd, "w");
}

void fuzz_fail(const char *format, ...)
{
    FILE *out = report != NULL ? report : stderr;
    va_list args;
    va_start(args, format);
    fprintf(out, "fuzz: ");
    vfprintf(out, format, args);
    fprintf(out, "\n");
    va_end(args);
    fflush(out);
    abort();
}

/* ---- parsing ------------------------------------------------------------- */

/* The input with every placeholder replaced, NUL-terminated; *length
 * excludes the NUL (the body may hold NULs of its own). */
static char *substitute(const uint8_t *data, size_t size, const fuzz_field *substitutions, size_t count,
                        size_t *length)
{
    size_t capacity = size + 1, used = 0;
    char *out = malloc(capacity);
    if (out == NULL)
        fuzz_fail("out of memory");
    for (size_t i = 0; i < size;) {
        const char *replacement = NULL;
        size_t matched = 0;
        for (size_t s = 0; s < count && data[i] == '$'; s++) {
            size_t name_length = strlen(substitutions[s].name);
            if (name_length <= size - i && memcmp(data + i, substitutions[s].name, name_length) == 0) {
                replacement = substitutions[s].value;
                matched = name_length;
                break;
            }
        }
        size_t add = replacement != NULL ? strlen(replacement) : 1;
        if (used + add + 1 > capacity) {
            capacity = (used + add + 1) * 2;
            out = realloc(out, capacity);
            if (out == NULL)
                fuzz_fail("out of memory");
        }
        if (replacement != NULL) {
            memcpy(out + used, replacement, add);
            i += matched;
        } else {
            out[used] = (char)data[i++];
        }
        used += add;
    }
    out[used] = '\0';
    *length = used;
    return out;
}

static char *trim(char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    size_t length = strlen(text);
    while (length > 0 && (text[length - 1] == ' ' || text[length - 1] == '\t' || text[length - 1] == '\r'))
        text[--length] = '\0';
    return text;
}

static void unescape_plus(char *text)
{
    for (; *text != '\0'; text++)
        if (*text == '+')
            *text = ' ';
}

size_t fuzz_query_split(char *args, fuzz_field *fields, size_t max)
{
    size_t count = 0;
    while (args != NULL && *args != '\0') {
        char *equals = strchr(args, '=');
        char *amper = strchr(args, '&');
        char *next = NULL;
        if (amper != NULL) {
            *amper = '\0';
            next = amper + 1;
            if (equals >= amper)
                equals = NULL;
        }
        char *value = NULL;
        if (equals != NULL) {
            *equals = '\0';
            value = equals + 1;
        }
        unescape_plus(args);
        shoal_url_unescape(args);
        if (value != NULL) {
            unescape_plus(value);
            shoal_url_unescape(value);
        }
        if (count < max)
            fields[count++] = (fuzz_field){args, value};
        args = next;
    }
    return count;
}

bool fuzz_request_parse(fuzz_request *request, const uint8_t *data, size_t size, const fuzz_field *substitutions,
                        size_t substitution_count)
{
    memset(request, 0, sizeof *request);
    size_t length = 0;
    request->text = substitute(data, size, substitutions, substitution_count, &length);
    char *text = request->text;

    /* The head ends at the first empty line; without one there is no body. */
    char *head_end = NULL;
    char *body = NULL;
    for (char *c = text; c < text + length; c++) {
        if (*c == '\n' && (c + 1 < text + length && (c[1] == '\n' || (c[1] == '\r' && c + 2 < text + length && c[2] == '\n')))) {
            head_end = c;
            body = c[1] == '\n' ? c + 2 : c + 3;
            break;
        }
    }
    size_t head_length = head_end != NULL ? (size_t)(head_end - text) : length;
    if (memchr(text, '\0', head_length) != NULL)
        return false;
    text[head_length] = '\0';
    if (body != NULL) {
        request->body = body;
        request->body_length = (size_t)(text + length - body);
    }

    char *line_end = strchr(text, '\n');
    char *headers = NULL;
    if (line_end != NULL) {
        *line_end = '\0';
        headers = line_end + 1;
    }
    char *line = trim(text);
    char *space = strpbrk(line, " \t");
    request->root[0] = '/';
    char *target = request->root;
    if (space != NULL) {
        *space = '\0';
        target = trim(space + 1);
        /* "GET /path HTTP/1.1": the version is not ours to read. */
        char *version = strpbrk(target, " \t");
        if (version != NULL)
            *version = '\0';
    }
    if (*line == '\0')
        return false;
    request->method = line;

    char *query = strchr(target, '?');
    if (query != NULL)
        *query++ = '\0';
    request->path = target;
    shoal_url_unescape(request->path);
    if (query != NULL)
        request->query_count = fuzz_query_split(query, request->query, FUZZ_MAX_QUERY);

    while (headers != NULL && *headers != '\0') {
        char *next = strchr(headers, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *colon = strchr(headers, ':');
        if (colon != NULL && request->header_count < FUZZ_MAX_HEADERS) {
            *colon = '\0';
            request->headers[request->header_count++] = (fuzz_field){trim(headers), trim(colon + 1)};
        }
        headers = next;
    }
    return true;
}

void fuzz_request_free(fuzz_request *request)
{
    free(request->text);
    request->text = NULL;
}

/* ---- the transport -------------------------------------------------------- */

static const char *find_field(const fuzz_field *fields, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcasecmp(fields[i].name, name) == 0)
            return fields[i].value;
    return NULL;
}

static const char *fuzz_header(void *connection, const char *name)
{
    fuzz_request *request = connection;
    return find_field(request->headers, request->header_count, name);
}

static const char *fuzz_query(void *connection, const char *name)
{
    fuzz_request *request = connection;
    return find_field(request->query, request->query_count, name);
}

static const char *fuzz_client_address(void *connection, shoal_arena *arena)
{
    (void)connection;
    return shoal_arena_strdup(arena, "127.0.0.1");
}

static const char *fuzz_header_all(void *connection, const char *name, shoal_arena *arena)
{
    fuzz_request *request = connection;
    char *joined = NULL;
    for (size_t i = 0; i < request->header_count; i++) {
        if (strcasecmp(request->headers[i].name, name) != 0)
            continue;
        joined = joined == NULL ? shoal_arena_strdup(arena, request->headers[i].value)
                                : shoal_arena_printf(arena, "%s, %s", joined, request->headers[i].value);
        if (joined == NULL)
            return NULL;
    }
    return joined;
}

static const shoal_transport fuzz_transport = {
    .header = fuzz_header,
    .query = fuzz_query,
    .client_address = fuzz_client_address,
    .header_all = fuzz_header_all,
};

/* ---- the node ------------------------------------------------------------- */

static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

void fuzz_node_open(fuzz_node *node, const char *database_url, const char *redis_url, const char *const *flags)
{
    char *argv[64] = {"shoal-node", "--threads", "1", "--access-log-sample", "0",
                      "--database-url", (char *)database_url, "--redis-url", (char *)redis_url,
                      "--redis-timeout-ms", "1000", "--database-connect-timeout", "2",
                      "--password-ops-limit", "1", "--password-mem-limit", "8k", "--rate-limits", ""};
    int argc = 19;
    for (size_t i = 0; flags != NULL && flags[i] != NULL && argc < 64; i++)
        argv[argc++] = (char *)flags[i];
    char error[512] = "";
    if (shoal_demo_config_load(&node->config, argc, argv, no_environment, error, sizeof error) != 0)
        fuzz_fail("configuration: %s", error);
    node->app = shoal_app_new(&node->config);
    if (node->app == NULL)
        fuzz_fail("shoal_app_new failed");
    const shoal_extension *extensions[] = {
        &shoal_request_id_extension, &shoal_cors_extension,    &shoal_rate_limit_extension,
        &shoal_session_extension,    &shoal_idempotency_extension, &shoal_metrics_extension,
        &shoal_bench_extension,      &shoal_api_extension,
    };
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (shoal_app_extend(node->app, extensions[i]) != 0)
            fuzz_fail("extension %s failed to load", extensions[i]->name);
    if (shoal_app_freeze(node->app) != 0)
        fuzz_fail("the app's setup failed");
    shoal_app_set_readiness(node->app, SHOAL_READY);
    node->worker = shoal_app_thread_worker(node->app);
    if (node->worker == NULL)
        fuzz_fail("no worker");
}

void fuzz_node_close(fuzz_node *node)
{
    shoal_app_free(node->app);
    shoal_config_free(&node->config);
}

/* ---- answers ---------------------------------------------------------------- */

static bool is_envelope(const char *body, size_t length)
{
    json_t *value = json_loadb(body, length, 0, NULL);
    json_t *errors = json_object_get(value, "errors");
    bool shaped = json_is_object(value) && json_is_object(errors) && json_object_size(errors) > 0 &&
                  json_is_string(json_object_get(value, "code"));
    const char *field;
    json_t *messages;
    json_object_foreach(errors, field, messages)
    {
        if (!json_is_array(messages) || json_array_size(messages) == 0)
            shaped = false;
        size_t i;
        json_t *message;
        json_array_foreach(messages, i, message) if (!json_is_string(message)) shaped = false;
    }
    json_decref(value);
    return shaped;
}

static bool is_json_type(const char *content_type)
{
    return content_type != NULL && strncmp(content_type, "application/json", 16) == 0;
}

static void describe_and_fail(const fuzz_request *request, const fuzz_answer *answer, const char *why)
{
    fuzz_fail("%s\n  request: %s %s (%zu query fields, %zu headers, %zu body bytes)\n  answer: %d %s\n  %.*s", why,
              request->method, request->path, request->query_count, request->header_count, request->body_length,
              answer->status, answer->content_type != NULL ? answer->content_type : "(no type)",
              (int)(answer->body_length > 2000 ? 2000 : answer->body_length),
              answer->body != NULL ? answer->body : "");
}

static char *copy_bytes(const char *bytes, size_t length)
{
    char *copy = malloc(length + 1);
    if (copy == NULL)
        fuzz_fail("out of memory");
    if (length > 0)
        memcpy(copy, bytes, length);
    copy[length] = '\0';
    return copy;
}

void fuzz_dispatch(fuzz_node *node, fuzz_request *request, fuzz_answer *out)
{
    alignas(max_align_t) static unsigned char arena_block[REQUEST_ARENA_BYTES];
    shoal_ctx ctx;
    shoal_ctx_init(&ctx, node->app, node->worker, &fuzz_transport, request, request->method, request->path,
                   arena_block, sizeof arena_block);
    const char *listener = fuzz_transport.header(request, "X-Shoal-Listener");
    if (listener != NULL && strcmp(listener, "admin") == 0)
        ctx.listener = SHOAL_LISTENER_ADMIN;
    shoal_worker_request_started(node->worker);
    /* node/lib/http.c refuses a body over the limit before dispatch, the same way. */
    if (request->body_length > node->config.max_body_bytes)
        shoal_ctx_reject(&ctx, 413, "request.body_too_large", "the body is too large");
    else
        shoal_ctx_set_body(&ctx, request->body_length > 0 ? request->body : NULL, request->body_length);
    shoal_app_dispatch(node->app, &ctx);

    fuzz_answer answer = {.status = ctx.status};
    size_t length = 0;
    const char *body = shoal_response_body(&ctx, &length);
    answer.body = copy_bytes(body != NULL ? body : "", body != NULL ? length : 0);
    answer.body_length = body != NULL ? length : 0;
    const char *content_type = shoal_response_content_type(&ctx);
    answer.content_type = content_type != NULL ? copy_bytes(content_type, strlen(content_type)) : NULL;
    answer.retry_after = shoal_response_header(&ctx, "Retry-After") != NULL;
    shoal_ctx_finish(&ctx, 0);
    shoal_worker_request_finished(node->worker);

    if (answer.status < 100 || answer.status > 599)
        describe_and_fail(request, &answer, "a status outside 100..599");
    if (answer.status >= 500 && !(answer.status == 503 && answer.retry_after))
        describe_and_fail(request, &answer, "a server error other than 503 with Retry-After");
    if (answer.status >= 400 && !(is_json_type(answer.content_type) && is_envelope(answer.body, answer.body_length)))
        describe_and_fail(request, &answer, "an error that is not the JSON envelope");
    if (is_json_type(answer.content_type) && answer.body_length > 0) {
        json_t *parsed = json_loadb(answer.body, answer.body_length, JSON_DECODE_ANY, NULL);
        if (parsed == NULL)
            describe_and_fail(request, &answer, "a body announced as JSON that does not parse");
        json_decref(parsed);
    }
    if (out != NULL)
        *out = answer;
    else
        fuzz_answer_free(&answer);
}

void fuzz_answer_free(fuzz_answer *answer)
{
    free(answer->body);
    free(answer->content_type);
    answer->body = NULL;
    answer->content_type = NULL;
}
