/* node/lib/answer.c: answering: text, JSON and empty answers, the error
 * envelope and the blueprints' error handlers, response headers, and what
 * the HTTP glue and hooks read back of the answer. */
#include <string.h>

#include <shoal/json.h>
#include <shoal/log.h>

#include "app_internal.h"

int shoal_text(shoal_ctx *ctx, int status, const char *content_type, const char *body, size_t length)
{
    ctx->status = status;
    ctx->content_type = content_type;
    ctx->response_body = body;
    ctx->response_length = length;
    ctx->answer_count++;
    return 0;
}

int shoal_empty(shoal_ctx *ctx, int status)
{
    return shoal_text(ctx, status, NULL, NULL, 0);
}

int shoal_json(shoal_ctx *ctx, int status, json_t *value)
{
    if (value == NULL) {
        shoal_answer_internal_error(ctx);
        return -1;
    }
    size_t length = 0;
    char *text = shoal_json_dump(&ctx->arena, value, &length);
    json_decref(value);
    if (text == NULL) {
        shoal_answer_internal_error(ctx);
        return -1;
    }
    return shoal_text(ctx, status, "application/json", text, length);
}

shoal_json_writer *shoal_json_begin(shoal_ctx *ctx)
{
    return shoal_json_writer_new(&ctx->arena);
}

int shoal_json_send(shoal_ctx *ctx, int status, shoal_json_writer *writer)
{
    size_t length = 0;
    const char *text = shoal_json_writer_text(writer, &length);
    if (text == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "json", "%s %s: the JSON writer failed (memory, invalid UTF-8, or "
                  "keys, values and brackets out of order)", ctx->method_name, ctx->path);
        shoal_answer_internal_error(ctx);
        return -1;
    }
    return shoal_text(ctx, status, "application/json", text, length);
}

static const error_handler *find_error_handler(const shoal_blueprint *bp, int status)
{
    for (size_t i = 0; bp != NULL && i < bp->error_handlers.count; i++)
        if (bp->error_handlers.items[i].status == status)
            return &bp->error_handlers.items[i];
    return NULL;
}

int shoal_error(shoal_ctx *ctx, int status, const char *code, const char *field, const char *message)
{
    /* A message may quote what the client sent (a parse error does), and
     * the envelope must be JSON whatever that was. */
    const char *valid_message = shoal_json_valid_utf8(&ctx->arena, message != NULL ? message : "");
    const char *valid_field = shoal_json_valid_utf8(&ctx->arena, field != NULL ? field : "body");
    shoal_error_info info = {
        .status = status,
        .code = code != NULL ? code : "error",
        .field = valid_field != NULL ? valid_field : "body",
        .message = valid_message != NULL ? valid_message : "",
    };
    if (!ctx->in_error_handler) {
        const error_handler *handler = NULL;
        if (ctx->route != NULL)
            handler = find_error_handler(ctx->route->blueprint, status);
        if (handler == NULL)
            handler = find_error_handler(shoal_listener_root(ctx), status);
        if (handler != NULL) {
            unsigned answers_before = ctx->answer_count;
            ctx->in_error_handler = true;
            int rc = handler->fn(ctx, &info, handler->data);
            ctx->in_error_handler = false;
            if (rc == 0 && ctx->answer_count != answers_before)
                return 0;
        }
    }
    shoal_json_writer *out = shoal_json_begin(ctx);
    shoal_json_open_object(out);
    shoal_json_write_key(out, "errors");
    shoal_json_open_object(out);
    shoal_json_write_key(out, info.field);
    shoal_json_open_array(out);
    shoal_json_write_string(out, info.message);
    shoal_json_close_array(out);
    shoal_json_close_object(out);
    shoal_json_write_key(out, "code");
    shoal_json_write_string(out, info.code);
    shoal_json_close_object(out);
    return shoal_json_send(ctx, status, out);
}

/* Header names are ASCII tokens, so folding A-Z is the whole of their
 * case-insensitivity; done inline, a mismatch ends at its first byte, where
 * strcasecmp went through the locale's table for every answer's headers. */
static unsigned char fold_ascii(unsigned char c)
{
    return (unsigned char)(c - 'A') < 26u ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool same_header_name(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = fold_ascii((unsigned char)*a);
        if (x != fold_ascii((unsigned char)*b))
            return false;
        if (x == '\0')
            return true;
    }
}

static shoal_header_entry *find_header(const shoal_ctx *ctx, const char *name)
{
    for (shoal_header_entry *entry = ctx->headers; entry != NULL; entry = entry->next)
        if (same_header_name(entry->name, name))
            return entry;
    return NULL;
}

int shoal_ctx_add_header_kept(shoal_ctx *ctx, const char *name, const char *value)
{
    shoal_header_entry *entry = shoal_arena_alloc(&ctx->arena, sizeof *entry);
    if (entry == NULL)
        return -1;
    entry->name = name;
    entry->value = value;
    entry->next = NULL;
    *ctx->headers_tail = entry;
    ctx->headers_tail = &entry->next;
    return 0;
}

int shoal_ctx_set_header_kept(shoal_ctx *ctx, const char *name, const char *value)
{
    shoal_header_entry *existing = find_header(ctx, name);
    if (existing == NULL)
        return shoal_ctx_add_header_kept(ctx, name, value);
    existing->value = value;
    return 0;
}

/* A handler's strings may be its stack's or a result's: copied into the
 * arena, which lives as long as the answer. */
int shoal_add_header(shoal_ctx *ctx, const char *name, const char *value)
{
    const char *name_copy = shoal_arena_strdup(&ctx->arena, name);
    const char *value_copy = shoal_arena_strdup(&ctx->arena, value);
    if (name_copy == NULL || value_copy == NULL)
        return -1;
    return shoal_ctx_add_header_kept(ctx, name_copy, value_copy);
}

int shoal_set_header(shoal_ctx *ctx, const char *name, const char *value)
{
    shoal_header_entry *existing = find_header(ctx, name);
    if (existing == NULL)
        return shoal_add_header(ctx, name, value);
    const char *copy = shoal_arena_strdup(&ctx->arena, value);
    if (copy == NULL)
        return -1;
    existing->value = copy;
    return 0;
}

const char *shoal_response_header(const shoal_ctx *ctx, const char *name)
{
    const shoal_header_entry *entry = find_header(ctx, name);
    return entry != NULL ? entry->value : NULL;
}

const char *shoal_response_content_type(const shoal_ctx *ctx)
{
    return ctx->content_type;
}

const char *shoal_response_body(const shoal_ctx *ctx, size_t *length)
{
    if (length != NULL)
        *length = ctx->response_length;
    return ctx->response_body;
}

bool shoal_answered(const shoal_ctx *ctx)
{
    return ctx->answer_count > 0;
}

int shoal_status(const shoal_ctx *ctx)
{
    return ctx->status;
}

void shoal_set_status(shoal_ctx *ctx, int status)
{
    ctx->status = status;
}
