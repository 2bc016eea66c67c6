/* node/lib/errors.c: the core's error codes (what the pipeline, the HTTP layer
 * and the node's own load answer), shoal_fail, and the check every table
 * passes before a node serves. */
#include <shoal/errors.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <shoal/shoal.h>

#include "errors_internal.h"

const shoal_error_code shoal_code_internal = {500, "internal", NULL, "internal error"};
const shoal_error_code shoal_code_route_not_found = {404, "route.not_found", NULL, "no such path"};
const shoal_error_code shoal_code_route_method_not_allowed = {405, "route.method_not_allowed", NULL,
                                                              "method not allowed here"};
const shoal_error_code shoal_code_request_malformed = {400, "request.malformed", NULL, "malformed request"};
const shoal_error_code shoal_code_request_body_too_large = {413, "request.body_too_large", NULL,
                                                            "the body is too large"};
const shoal_error_code shoal_code_request_headers_too_large = {431, "request.headers_too_large", NULL,
                                                               "the headers are too large"};
const shoal_error_code shoal_code_request_unsupported_media_type = {
    415, "request.unsupported_media_type", NULL, "the body must be JSON (Content-Type: application/json)"};
const shoal_error_code shoal_code_request_empty_body = {400, "request.empty_body", NULL, "the body is empty"};
const shoal_error_code shoal_code_request_json_too_deep = {400, "request.json_too_deep", NULL,
                                                           "the body nests too deep"};
const shoal_error_code shoal_code_request_malformed_json = {400, "request.malformed_json", NULL, "malformed JSON"};
const shoal_error_code shoal_code_request_missing_field = {422, "request.missing_field", NULL, "is required"};
const shoal_error_code shoal_code_request_invalid_field = {422, "request.invalid_field", NULL,
                                                           "has the wrong type"};
const shoal_error_code shoal_code_request_deadline_exceeded = {
    503, "request.deadline_exceeded", NULL, "the node could not start this request in time; retry shortly"};
const shoal_error_code shoal_code_node_overloaded = {503, "node.overloaded", NULL, "the node is busy; retry shortly"};

const shoal_error_table shoal_core_errors = {
    "core",
    (const shoal_error_code *const[]){
        &shoal_code_internal,
        &shoal_code_route_not_found,
        &shoal_code_route_method_not_allowed,
        &shoal_code_request_malformed,
        &shoal_code_request_body_too_large,
        &shoal_code_request_headers_too_large,
        &shoal_code_request_unsupported_media_type,
        &shoal_code_request_empty_body,
        &shoal_code_request_json_too_deep,
        &shoal_code_request_malformed_json,
        &shoal_code_request_missing_field,
        &shoal_code_request_invalid_field,
        &shoal_code_request_deadline_exceeded,
        &shoal_code_node_overloaded,
        NULL,
    },
};

int shoal_fail(shoal_ctx *ctx, const shoal_error_code *error)
{
    return shoal_error(ctx, error->status, error->code, error->field, error->message);
}

int shoal_fail_with(shoal_ctx *ctx, const shoal_error_code *error, const char *field, const char *message)
{
    return shoal_error(ctx, error->status, error->code, field != NULL ? field : error->field,
                       message != NULL ? message : error->message);
}

/* Words of [a-z0-9_], each starting with a letter, joined by single dots:
 * what clients can match on and docs/api.md can list. */
static bool valid_code(const char *code)
{
    if (code == NULL || *code == '\0')
        return false;
    bool word_start = true;
    for (const char *c = code; *c != '\0'; c++) {
        if (*c == '.') {
            if (word_start)
                return false;
            word_start = true;
            continue;
        }
        bool letter = *c >= 'a' && *c <= 'z';
        if (word_start ? !letter : !(letter || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
        word_start = false;
    }
    return !word_start;
}

int shoal_error_tables_check(const shoal_error_table *const *tables, size_t count, char *error, size_t error_size)
{
    for (size_t t = 0; t < count; t++) {
        const shoal_error_table *table = tables[t];
        if (table->module == NULL || table->module[0] == '\0' || table->codes == NULL) {
            snprintf(error, error_size, "an error table needs a module and codes");
            return -1;
        }
        for (const shoal_error_code *const *entry = table->codes; *entry != NULL; entry++) {
            const shoal_error_code *code = *entry;
            if (!valid_code(code->code) || code->status < 400 || code->status > 599 || code->message == NULL) {
                snprintf(error, error_size,
                         "errors of %s: '%s' needs a status of 400 to 599, a code of dotted [a-z0-9_] words "
                         "and a message",
                         table->module, code->code != NULL ? code->code : "(none)");
                return -1;
            }
            for (size_t u = 0; u <= t; u++)
                for (const shoal_error_code *const *other = tables[u]->codes; *other != NULL; other++) {
                    if (u == t && other == entry)
                        break;
                    if (strcmp((*other)->code, code->code) == 0) {
                        snprintf(error, error_size, "error code '%s' is declared by %s and by %s", code->code,
                                 tables[u]->module, table->module);
                        return -1;
                    }
                }
        }
    }
    return 0;
}

void shoal_error_tables_print(FILE *out, const shoal_error_table *const *tables, size_t count)
{
    for (size_t t = 0; t < count; t++)
        for (const shoal_error_code *const *entry = tables[t]->codes; *entry != NULL; entry++)
            fprintf(out, "%d\t%s\t%s\n", (*entry)->status, (*entry)->code, tables[t]->module);
}
