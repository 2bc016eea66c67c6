/* node/lib/ext/security_headers.c */
#include <shoal/ext/security_headers.h>

#include <stddef.h>

#include "../context.h"

/* The API answers JSON (and /fortunes a page without scripts, styles or
 * images): a browser that renders an answer anyway must load nothing, run
 * nothing and show it in no frame (frame-ancestors is the standard form of
 * X-Frame-Options, which it supersedes in every current browser). nosniff
 * keeps a browser from reading JSON as a script or a page; no-referrer
 * keeps URLs (slugs, usernames) out of the Referer of any link followed
 * from such a page. */
static const struct {
    const char *name;
    const char *value;
} every_answer[] = {
    {"X-Content-Type-Options", "nosniff"},
    {"Content-Security-Policy", SHOAL_CONTENT_SECURITY_POLICY},
    {"Referrer-Policy", "no-referrer"},
};

/* A shared cache or the browser's own must not keep an answer that holds a
 * user's data or a token. */
static bool private_answer(shoal_ctx *ctx)
{
    if (shoal_header(ctx, "Authorization") != NULL)
        return true;
    unsigned method = shoal_method(ctx);
    return method != SHOAL_METHOD_GET && method != SHOAL_METHOD_HEAD && method != SHOAL_METHOD_OPTIONS;
}

/* Names and values are literals: kept, not copied, on every answer. */
static void add_if_absent(shoal_ctx *ctx, const char *name, const char *value)
{
    if (shoal_response_header(ctx, name) == NULL)
        shoal_ctx_add_header_kept(ctx, name, value);
}

static void add_security_headers(shoal_ctx *ctx, void *data)
{
    (void)data;
    for (size_t i = 0; i < sizeof every_answer / sizeof every_answer[0]; i++)
        add_if_absent(ctx, every_answer[i].name, every_answer[i].value);
    if (private_answer(ctx))
        add_if_absent(ctx, "Cache-Control", "no-store");
}

static const shoal_setting security_headers_table[] = {
    {"security-headers", "SHOAL_SECURITY_HEADERS", SHOAL_SETTING_BOOL,
     offsetof(shoal_security_headers_settings_values, enabled), "true", 0, 0,
     "send X-Content-Type-Options, Content-Security-Policy and Referrer-Policy on every answer, and "
     "Cache-Control: no-store on answers to requests with credentials or that may change something",
     NULL},
};
const shoal_settings shoal_security_headers_settings =
    SHOAL_SETTINGS("security headers", shoal_security_headers_settings_values, security_headers_table, NULL);

static int init(shoal_app *app, void *data)
{
    (void)data;
    /* An app made without the table parsed runs on its default (on). */
    const shoal_security_headers_settings_values *values = shoal_app_settings(app, &shoal_security_headers_settings);
    if (values != NULL && !values->enabled)
        return 0;
    return shoal_after(shoal_app_root(app), add_security_headers, NULL);
}

const shoal_extension shoal_security_headers_extension = {
    .name = "security_headers",
    .init = init,
    .settings = &shoal_security_headers_settings,
};
