/* node/lib/body.c: JSON request bodies: the media type checked, the body
 * parsed within --max-json-depth, members read with their types, each
 * failure answered with its request.* code. */
#include <string.h>
#include <strings.h>

#include <shoal/json.h>

#include "app_internal.h"

static void release_json(void *value)
{
    json_decref(value);
}

static bool is_json_media_type(const char *content_type)
{
    /* application/json, application/json; charset=utf-8, application/x+json */
    size_t length = strcspn(content_type, ";");
    while (length > 0 && (content_type[length - 1] == ' ' || content_type[length - 1] == '\t'))
        length--;
    if (length == 16 && strncasecmp(content_type, "application/json", 16) == 0)
        return true;
    return length > 17 && strncasecmp(content_type, "application/", 12) == 0 &&
           strncasecmp(content_type + length - 5, "+json", 5) == 0;
}

bool shoal_json_body(shoal_ctx *ctx, json_t **out)
{
    *out = NULL;
    const char *content_type = shoal_header(ctx, "Content-Type");
    if (content_type != NULL && *content_type != '\0' && !is_json_media_type(content_type)) {
        shoal_fail(ctx, &shoal_code_request_unsupported_media_type);
        return false;
    }
    char message[256];
    json_t *value = NULL;
    switch (shoal_json_parse(ctx->body, ctx->body_length, ctx->app->config->max_json_depth, &value,
                             message, sizeof message)) {
    case SHOAL_JSON_OK:
        break;
    case SHOAL_JSON_EMPTY:
        shoal_fail_with(ctx, &shoal_code_request_empty_body, NULL, message);
        return false;
    case SHOAL_JSON_TOO_DEEP:
        shoal_fail_with(ctx, &shoal_code_request_json_too_deep, NULL, message);
        return false;
    case SHOAL_JSON_MALFORMED:
        shoal_fail_with(ctx, &shoal_code_request_malformed_json, NULL, message);
        return false;
    }
    if (shoal_arena_on_release(&ctx->arena, release_json, value) != 0) {
        shoal_answer_internal_error(ctx);
        return false;
    }
    *out = value;
    return true;
}

static const char *type_name(json_type type)
{
    switch (type) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

static bool has_type(const json_t *value, json_type type)
{
    switch (type) {
    case JSON_TRUE:
    case JSON_FALSE:
        return json_is_boolean(value);
    case JSON_REAL:
        return json_is_number(value);
    default:
        return json_typeof(value) == type;
    }
}

bool shoal_json_member(shoal_ctx *ctx, json_t *object, const char *key, json_type type, bool required,
                       json_t **out)
{
    *out = NULL;
    json_t *value = json_is_object(object) ? json_object_get(object, key) : NULL;
    if (value == NULL) {
        if (!required)
            return true;
        shoal_fail_with(ctx, &shoal_code_request_missing_field, key, NULL);
        return false;
    }
    if (!has_type(value, type)) {
        char *message = shoal_arena_printf(&ctx->arena, "must be %s", type_name(type));
        shoal_fail_with(ctx, &shoal_code_request_invalid_field, key, message);
        return false;
    }
    *out = value;
    return true;
}
