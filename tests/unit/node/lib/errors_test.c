/* tests/unit/node/lib/errors_test.c: error codes declared in tables
 * (node/lib/errors.c, <shoal/errors.h>): shoal_fail and shoal_fail_with answer
 * an entry as shoal_error would, and shoal_main lists every table with
 * `errors` and refuses a code declared twice or malformed (exit 70),
 * in-process: nothing here serves or connects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/errors.h>
#include <shoal/service.h>

#include "fake_request.h"
#include "main_capture.h"

static const shoal_error_code greeting_unknown = {404, "greeting.unknown_language", "lang", "has no greeting"};
static const shoal_error_code greeting_rude = {422, "greeting.rude", NULL, "is rude"};
static const shoal_error_table hello_errors = {
    "hello", (const shoal_error_code *const[]){&greeting_unknown, &greeting_rude, NULL}};

/* ---- answering -------------------------------------------------------------- */

static int answer_unknown(shoal_ctx *ctx)
{
    return shoal_fail(ctx, &greeting_unknown);
}

static int answer_rude(shoal_ctx *ctx)
{
    return shoal_fail_with(ctx, &greeting_rude, NULL, NULL);
}

static int answer_rude_word(shoal_ctx *ctx)
{
    return shoal_fail_with(ctx, &greeting_rude, "word", "is \"rude\"");
}

static int answer_internal(shoal_ctx *ctx)
{
    return shoal_fail_with(ctx, &shoal_code_internal, NULL, "out of memory");
}

static const char *answer(shoal_app *app, const char *path, int *status)
{
    static fake_request r;
    fake_request_init(&r, app, NULL, "GET", path);
    fake_request_dispatch(&r);
    *status = r.ctx.status;
    static char body[256];
    snprintf(body, sizeof body, "%s", fake_response_body(&r));
    fake_request_finish(&r);
    return body;
}

static void test_fail_answers_the_entry_and_fail_with_overrides_field_and_message(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    assert_non_null(app);
    shoal_blueprint *root = shoal_app_root(app);
    assert_int_equal(shoal_route(root, "GET", "/unknown", answer_unknown), 0);
    assert_int_equal(shoal_route(root, "GET", "/rude", answer_rude), 0);
    assert_int_equal(shoal_route(root, "GET", "/rude-word", answer_rude_word), 0);
    assert_int_equal(shoal_route(root, "GET", "/internal", answer_internal), 0);
    assert_int_equal(shoal_app_freeze(app), 0);

    int status = 0;
    assert_string_equal(answer(app, "/unknown", &status),
                        "{\"errors\":{\"lang\":[\"has no greeting\"]},\"code\":\"greeting.unknown_language\"}");
    assert_int_equal(status, 404);
    /* No field: "body", as shoal_error's NULL. */
    assert_string_equal(answer(app, "/rude", &status),
                        "{\"errors\":{\"body\":[\"is rude\"]},\"code\":\"greeting.rude\"}");
    assert_int_equal(status, 422);
    assert_string_equal(answer(app, "/rude-word", &status),
                        "{\"errors\":{\"word\":[\"is \\\"rude\\\"\"]},\"code\":\"greeting.rude\"}");
    assert_int_equal(status, 422);
    assert_string_equal(answer(app, "/internal", &status),
                        "{\"errors\":{\"body\":[\"out of memory\"]},\"code\":\"internal\"}");
    assert_int_equal(status, 500);
    /* The core's own answers come from its table too. */
    assert_string_equal(answer(app, "/nowhere", &status),
                        "{\"errors\":{\"body\":[\"no such path\"]},\"code\":\"route.not_found\"}");
    assert_int_equal(status, 404);

    shoal_app_free(app);
    shoal_config_free(&config);
}

/* ---- shoal_main: `errors` and the checks ----------------------------------- */

static char *captured_out, *captured_err;

/* shoal_main(service, {"test", word}) with stdout and stderr caught. */
static int run_main(const shoal_service *service, const char *word)
{
    free(captured_out);
    free(captured_err);
    char *argv[] = {"test", (char *)word, NULL};
    return test_main_capture(service, word != NULL ? 2 : 1, argv, &captured_out, &captured_err);
}

static void test_errors_lists_the_library_tables_then_the_service_s(void **state)
{
    (void)state;
    const shoal_service service = {
        .name = "hello", .errors = (const shoal_error_table *const[]){&hello_errors, NULL}};
    assert_int_equal(run_main(&service, "errors"), 0);
    /* The core first, the service's last, in their declared order. */
    assert_int_equal(strncmp(captured_out, "500\tinternal\tcore\n", 18), 0);
    const char *own = "404\tgreeting.unknown_language\thello\n422\tgreeting.rude\thello\n";
    size_t length = strlen(captured_out);
    assert_true(length > strlen(own));
    assert_string_equal(captured_out + length - strlen(own), own);
    const char *library[] = {"404\troute.not_found\tcore\n", "503\tnode.overloaded\tcore\n",
                             "503\tstore.unavailable\ttiers\n", "503\tpassword.busy\tpassword\n",
                             "429\trate.limited\trate-limit\n", "401\tauth.invalid\tsession\n",
                             "409\tidempotency.in_progress\tidempotency\n"};
    for (size_t i = 0; i < sizeof library / sizeof library[0]; i++)
        assert_non_null(strstr(captured_out, library[i]));
}

static shoal_flow pass(shoal_ctx *ctx, void *data)
{
    (void)ctx;
    (void)data;
    return SHOAL_NEXT;
}

static int own_session(shoal_app *app, void *data)
{
    (void)data;
    return shoal_before(shoal_app_root(app), pass, NULL);
}

/* A standard extension switched off or replaced answers nothing: its
 * codes are not the node's (a replacement lists its own). */
static void test_errors_leaves_out_standard_extensions_switched_off_or_replaced(void **state)
{
    (void)state;
    static const shoal_extension session = {.name = "session", .init = own_session};
    const shoal_service service = {
        .name = "hello",
        .standard_off = SHOAL_STANDARD_RATE_LIMIT,
        .replace = (const shoal_extension *const[]){&session, NULL},
    };
    assert_int_equal(run_main(&service, "errors"), 0);
    assert_null(strstr(captured_out, "rate.limited"));
    assert_null(strstr(captured_out, "auth.required"));
    assert_null(strstr(captured_out, "auth.invalid"));
    assert_non_null(strstr(captured_out, "400\tidempotency.invalid_key\tidempotency\n"));
}

static void assert_malformed(const shoal_error_table *table, const char *why)
{
    const shoal_service service = {.name = "hello", .errors = (const shoal_error_table *const[]){table, NULL}};
    /* Before any command: serving would refuse it the same way. */
    assert_int_equal(run_main(&service, "errors"), 70);
    assert_string_equal(captured_out, "");
    if (strstr(captured_err, why) == NULL)
        fail_msg("'%s' not in: %s", why, captured_err);
    assert_int_equal(run_main(&service, "--version"), 70);
}

static void test_a_code_declared_twice_or_malformed_is_a_malformed_service(void **state)
{
    (void)state;
    static const shoal_error_code internal = {500, "internal", NULL, "oops"};
    static const shoal_error_code rate_limited = {429, "rate.limited", NULL, "slow down"};
    static const shoal_error_code upper = {400, "Greeting.rude", NULL, "is rude"};
    static const shoal_error_code empty_word = {400, "greeting..rude", NULL, "is rude"};
    static const shoal_error_code trailing_dot = {400, "greeting.", NULL, "is rude"};
    static const shoal_error_code digit_first = {400, "greeting.1st", NULL, "is rude"};
    static const shoal_error_code space = {400, "greeting rude", NULL, "is rude"};
    static const shoal_error_code success = {200, "greeting.ok", NULL, "fine"};
    static const shoal_error_code no_message = {400, "greeting.silent", NULL, NULL};
    static const shoal_error_code no_code = {400, NULL, NULL, "nameless"};

    assert_malformed(&(shoal_error_table){"hello", (const shoal_error_code *const[]){&internal, NULL}},
                     "error code 'internal' is declared by core and by hello");
    assert_malformed(&(shoal_error_table){"hello", (const shoal_error_code *const[]){&rate_limited, NULL}},
                     "error code 'rate.limited' is declared by rate-limit and by hello");
    assert_malformed(
        &(shoal_error_table){"hello", (const shoal_error_code *const[]){&greeting_rude, &greeting_rude, NULL}},
        "error code 'greeting.rude' is declared by hello and by hello");
    const shoal_error_code *bad[] = {&upper, &empty_word, &trailing_dot, &digit_first, &space, &success,
                                     &no_message, &no_code};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_malformed(&(shoal_error_table){"hello", (const shoal_error_code *const[]){bad[i], NULL}},
                         "errors of hello: ");
    assert_malformed(&(shoal_error_table){NULL, (const shoal_error_code *const[]){&greeting_rude, NULL}},
                     "an error table needs a module and codes");

    /* Two tables of one service, and a rate-limit code of its own once
     * the standard rate limits are off: both fine. */
    const shoal_service fine = {
        .name = "hello",
        .standard_off = SHOAL_STANDARD_RATE_LIMIT,
        .errors = (const shoal_error_table *const[]){
            &hello_errors, &(shoal_error_table){"limits", (const shoal_error_code *const[]){&rate_limited, NULL}},
            NULL}};
    assert_int_equal(run_main(&fine, "errors"), 0);
    assert_non_null(strstr(captured_out, "429\trate.limited\tlimits\n"));
}

static int run_nothing(const shoal_config *config, const shoal_settings_values *values, void *data)
{
    (void)config;
    (void)values;
    (void)data;
    return 0;
}

static void test_errors_is_not_a_service_command_name(void **state)
{
    (void)state;
    static const shoal_service_command errors = {.name = "errors", .run = run_nothing};
    const shoal_service service = {.name = "hello",
                                   .commands = (const shoal_service_command *const[]){&errors, NULL}};
    assert_int_equal(run_main(&service, "errors"), 70);
    assert_non_null(strstr(captured_err, "command 'errors': needs a name of its own"));
}

static int teardown_captures(void **state)
{
    (void)state;
    free(captured_out);
    free(captured_err);
    captured_out = captured_err = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_answers_the_entry_and_fail_with_overrides_field_and_message),
        cmocka_unit_test(test_errors_lists_the_library_tables_then_the_service_s),
        cmocka_unit_test(test_errors_leaves_out_standard_extensions_switched_off_or_replaced),
        cmocka_unit_test(test_a_code_declared_twice_or_malformed_is_a_malformed_service),
        cmocka_unit_test(test_errors_is_not_a_service_command_name),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_captures);
}
