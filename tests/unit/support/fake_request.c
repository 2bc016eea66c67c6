/* tests/unit/support/fake_request.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "demo_settings.h"
#include "fake_request.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *find_field(const fake_field *fields, size_t count, const char *name, bool fold_case)
{
    for (size_t i = 0; i < count; i++) {
        int differs = fold_case ? strcasecmp(fields[i].name, name) : strcmp(fields[i].name, name);
        if (differs == 0)
            return fields[i].value;
    }
    return NULL;
}

static const char *fake_header(void *connection, const char *name)
{
    fake_connection *c = connection;
    return find_field(c->headers, c->header_count, name, true);
}

static const char *fake_query(void *connection, const char *name)
{
    fake_connection *c = connection;
    return find_field(c->query, c->query_count, name, false);
}

static const char *fake_client_address(void *connection, shoal_arena *arena)
{
    fake_connection *c = connection;
    return shoal_arena_strdup(arena, c->client_address != NULL ? c->client_address : "192.0.2.1");
}

/* Every line of a header joined with ", ", as the HTTP layer does. */
static const char *fake_header_all(void *connection, const char *name, shoal_arena *arena)
{
    fake_connection *c = connection;
    char *joined = NULL;
    for (size_t i = 0; i < c->header_count; i++) {
        if (strcasecmp(c->headers[i].name, name) != 0)
            continue;
        joined = joined == NULL ? shoal_arena_strdup(arena, c->headers[i].value)
                                : shoal_arena_printf(arena, "%s, %s", joined, c->headers[i].value);
        if (joined == NULL)
            return NULL;
    }
    return joined;
}

const shoal_transport fake_transport = {
    .header = fake_header,
    .query = fake_query,
    .client_address = fake_client_address,
    .header_all = fake_header_all,
};

static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

void fake_config_load(shoal_config *config, const char *const *flags)
{
    char *argv[32] = {"shoal-node"};
    int argc = 1;
    for (size_t i = 0; flags != NULL && flags[i] != NULL; i++) {
        assert_true(argc < 32);
        argv[argc++] = (char *)flags[i];
    }
    char error[256] = "";
    if (shoal_demo_config_load(config, argc, argv, no_environment, error, sizeof error) != 0)
        fail_msg("config: %s", error);
    config->access_log_sample = 0;
}

void fake_request_init(fake_request *request, shoal_app *app, shoal_worker *worker,
                       const char *method, const char *path)
{
    memset(&request->connection, 0, sizeof request->connection);
    shoal_ctx_init(&request->ctx, app, worker, &fake_transport, &request->connection, method, path,
                   request->arena_block, sizeof request->arena_block);
}

void fake_request_header(fake_request *request, const char *name, const char *value)
{
    fake_connection *c = &request->connection;
    assert_true(c->header_count < FAKE_MAX_FIELDS);
    c->headers[c->header_count++] = (fake_field){name, value};
}

void fake_request_query(fake_request *request, const char *name, const char *value)
{
    fake_connection *c = &request->connection;
    assert_true(c->query_count < FAKE_MAX_FIELDS);
    c->query[c->query_count++] = (fake_field){name, value};
}

void fake_request_body(fake_request *request, const char *body)
{
    shoal_ctx_set_body(&request->ctx, body, body != NULL ? strlen(body) : 0);
}

void fake_request_dispatch(fake_request *request)
{
    shoal_app_dispatch(request->ctx.app, &request->ctx);
}

void fake_request_finish(fake_request *request)
{
    shoal_ctx_finish(&request->ctx, 0);
}

const char *fake_response_body(fake_request *request)
{
    const char *body = request->ctx.response_body;
    size_t length = request->ctx.response_length;
    char *copy = shoal_arena_strndup(&request->ctx.arena, body != NULL ? body : "", body != NULL ? length : 0);
    assert_non_null(copy);
    return copy;
}

void assert_error_envelope(fake_request *request, int status, const char *code, const char *field)
{
    assert_int_equal(request->ctx.status, status);
    assert_non_null(request->ctx.content_type);
    assert_string_equal(request->ctx.content_type, "application/json");
    const char *body = fake_response_body(request);
    json_error_t error;
    json_t *envelope = json_loads(body, 0, &error);
    if (envelope == NULL)
        fail_msg("the error body is not JSON: %s (%s)", body, error.text);
    json_t *errors = json_object_get(envelope, "errors");
    json_t *messages = json_object_get(errors, field);
    json_t *actual_code = json_object_get(envelope, "code");
    bool shaped = json_object_size(envelope) == 2 && json_object_size(errors) == 1 &&
                  json_is_array(messages) && json_array_size(messages) == 1 &&
                  json_is_string(json_array_get(messages, 0)) && json_is_string(actual_code);
    char actual[128] = "";
    if (json_is_string(actual_code))
        snprintf(actual, sizeof actual, "%s", json_string_value(actual_code));
    json_decref(envelope);
    if (!shaped)
        fail_msg("not an error envelope naming '%s': %s", field, body);
    assert_string_equal(actual, code);
}
