/* tests/unit/node/lib/app_test.c: node/lib/app.c, setup: blueprints, the freeze, extensions and their state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "app_fixture.h"
#include "main_capture.h"

/* ---- blueprints -------------------------------------------------------------- */

static void test_blueprint_prefix_is_prepended_to_its_routes(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    shoal_blueprint *plain = shoal_blueprint_new(f->app, "plain", "");
    assert_non_null(plain);
    assert_int_equal(shoal_route(api, "GET", "/articles", answer_ok), 0);
    assert_int_equal(shoal_route(plain, "POST", "/login", answer_409), 0);
    serve(f->app);

    fake_request *r = dispatch(f, "GET", "/api/articles");
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
    r = dispatch(f, "GET", "/articles");
    assert_int_equal(r->ctx.status, 404);
    fake_request_finish(r);
    r = dispatch(f, "POST", "/login");
    assert_int_equal(r->ctx.status, 409);
    fake_request_finish(r);
}

static void test_invalid_blueprint_prefix_fails_setup(void **state)
{
    fixture *f = *state;
    assert_null(shoal_blueprint_new(f->app, "no-slash", "api"));
    assert_null(shoal_blueprint_new(f->app, "trailing", "/api/"));
    assert_null(shoal_blueprint_new(f->app, "root-slash", "/"));
    assert_null(shoal_blueprint_new(f->app, "null", NULL));
    assert_int_equal(shoal_app_freeze(f->app), -1);
}

/* A route's pattern is absolute inside its blueprint; gluing "articles" to
 * "/api" would silently serve /apiarticles. */
static void test_route_pattern_without_leading_slash_is_rejected_in_a_blueprint(void **state)
{
    fixture *f = *state;
    shoal_blueprint *api = shoal_blueprint_new(f->app, "api", "/api");
    assert_non_null(api);
    assert_int_equal(shoal_route(api, "GET", "articles", answer_ok), -1);
    assert_int_equal(shoal_app_freeze(f->app), -1);
}

/* ---- setup is frozen once serving starts --------------------------------- */

static int extension_init_fails(shoal_app *app, void *data)
{
    (void)app;
    (void)data;
    return -1;
}

static void test_every_registration_fails_after_freeze(void **state)
{
    fixture *f = *state;
    shoal_blueprint *root = shoal_app_root(f->app);
    assert_int_equal(shoal_route(root, "GET", "/articles", answer_ok), 0);
    serve(f->app);

    assert_int_equal(shoal_route(root, "GET", "/tags", answer_ok), -1);
    assert_int_equal(shoal_before(root, note_before, "x"), -1);
    assert_int_equal(shoal_after(root, note_after, "x"), -1);
    assert_int_equal(shoal_teardown(root, note_teardown, "x"), -1);
    assert_int_equal(shoal_errorhandler(root, 404, labelled_error_handler, "x"), -1);
    assert_null(shoal_blueprint_new(f->app, "late", "/late"));
    shoal_extension late = {.name = "late", .init = extension_init_ok, .data = "init"};
    assert_int_equal(shoal_app_extend(f->app, &late), -1);
    assert_int_equal(shoal_app_request_slot(f->app), -1);
    assert_int_equal(shoal_app_worker_slot(f->app, NULL, NULL, NULL), -1);
    assert_string_equal(trace, "");

    fake_request *r = dispatch(f, "GET", "/tags");
    assert_int_equal(r->ctx.status, 404);
    fake_request_finish(r);
}

static void test_invalid_registrations_make_freeze_fail(void **state)
{
    (void)state;
    static const char *const cases[] = {"method", "handler", "duplicate", "pattern", "hook",
                                        "status", "extension"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        shoal_config config;
        fake_config_load(&config, NULL);
        shoal_app *app = shoal_app_new(&config);
        assert_non_null(app);
        shoal_blueprint *root = shoal_app_root(app);
        assert_int_equal(shoal_route(root, "GET", "/articles", answer_ok), 0);
        int rc = 0;
        const char *which = cases[i];
        if (strcmp(which, "method") == 0)
            rc = shoal_route(root, "FETCH", "/x", answer_ok);
        else if (strcmp(which, "handler") == 0)
            rc = shoal_route(root, "GET", "/x", NULL);
        else if (strcmp(which, "duplicate") == 0)
            rc = shoal_route(root, "GET", "/articles", answer_ok);
        else if (strcmp(which, "pattern") == 0)
            rc = shoal_route(root, "GET", "/files/*rest/more", answer_ok);
        else if (strcmp(which, "hook") == 0)
            rc = shoal_before(root, NULL, NULL);
        else if (strcmp(which, "status") == 0)
            rc = shoal_errorhandler(root, 200, labelled_error_handler, "x");
        else if (strcmp(which, "extension") == 0)
            rc = shoal_app_extend(app, &(shoal_extension){.name = "broken", .init = extension_init_fails});
        if (rc != -1)
            fail_msg("registration '%s' returned %d, not -1", which, rc);
        if (shoal_app_freeze(app) != -1)
            fail_msg("freeze accepted a setup with an invalid '%s' registration", which);
        shoal_app_free(app);
        shoal_config_free(&config);
    }
}

static void test_method_lists_accept_only_known_methods(void **state)
{
    fixture *f = *state;
    shoal_blueprint *root = shoal_app_root(f->app);
    assert_int_equal(shoal_route(root, "|GET", "/b", answer_ok), -1);
    assert_int_equal(shoal_route(root, "GET||POST", "/b", answer_ok), -1);
    assert_int_equal(shoal_route(root, "get", "/c", answer_ok), -1);
    assert_int_equal(shoal_route(root, "", "/d", answer_ok), -1);
    assert_int_equal(shoal_route(root, "PUT|PATCH", "/user", answer_ok), 0);
    assert_int_equal(shoal_app_freeze(f->app), -1);

    fake_request *r = dispatch(f, "PATCH", "/user");
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
}

/* "|GET" and "GET||POST" are refused for their empty method; "GET|" must be
 * too, or a truncated "GET|POST" would silently serve GET only. */
static void test_method_list_with_a_trailing_bar_is_rejected(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET|", "/a", answer_ok), -1);
    assert_int_equal(shoal_app_freeze(f->app), -1);
}

/* ---- extensions that fail ------------------------------------------------ */

/* The order shoal.h asks for: publish, then register what points to it;
 * here the registration fails. */
static int publish_then_fail_to_register(shoal_app *app, void *data)
{
    if (publish_labelled(app, data) != 0)
        return -1;
    return shoal_before(shoal_app_root(app), NULL, data);
}

static int publish_then_fail_with_a_reason(shoal_app *app, void *data)
{
    if (publish_labelled(app, data) != 0)
        return -1;
    return shoal_app_fail(app, "--widgets: %s is not a widget", "sprocket");
}

static int ignore_a_failed_registration(shoal_app *app, void *data)
{
    note(data);
    shoal_before(shoal_app_root(app), NULL, NULL);
    return 0;
}

typedef struct extend_call {
    shoal_app *app;
    const shoal_extension *extension;
    int rc;
} extend_call;

static void call_extend(void *argument)
{
    extend_call *call = argument;
    call->rc = shoal_app_extend(call->app, call->extension);
}

static void test_a_failed_init_is_not_kept_and_its_state_is_released_with_the_app(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension kept = {.name = "kept", .init = publish, .shutdown = note_shutdown_with_state, .data = "kept"};
    shoal_extension broken = {.name = "broken", .init = publish_then_fail_to_register,
                              .shutdown = note_shutdown_with_state, .data = "broken"};
    assert_int_equal(shoal_app_extend(app, &kept), 0);
    extend_call call = {app, &broken, 0};
    const char *log = capture_stderr(call_extend, &call);
    assert_int_equal(call.rc, -1);
    /* Named, with the registration's own reason, once. */
    static const char expected[] = "\"event\":\"setup_invalid\",\"message\":\"extension broken: cannot register "
                                   "a before hook: the hook is NULL\"";
    const char *line = strstr(log, expected);
    bool only_line = line != NULL && strstr(log, "setup_invalid") == line + strlen("\"event\":\"") &&
                     strstr(line + sizeof expected - 1, "setup_invalid") == NULL;
    if (!only_line)
        fail_msg("expected one setup_invalid line naming the extension, got:\n%s", log);
    assert_string_equal(shoal_app_failure(app), "extension broken: cannot register a before hook: the hook is NULL");
    /* What it published is still the app's, alive, not a dangling pointer. */
    assert_string_equal(shoal_app_published(app, "broken"), "broken");
    assert_int_equal(shoal_app_freeze(app), -1);
    trace[0] = '\0';
    shoal_app_free(app);
    /* No shutdown for the failed init; its state is released all the same. */
    assert_string_equal(trace, "shutdown:kept release:broken release:kept");
    shoal_config_free(&config);
}

static void test_a_failed_init_says_why_under_its_name(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);

    shoal_app *app = shoal_app_new(&config);
    shoal_extension widgets = {.name = "widgets", .init = publish_then_fail_with_a_reason, .data = "widgets"};
    assert_int_equal(shoal_app_extend(app, &widgets), -1);
    assert_string_equal(shoal_app_failure(app), "extension widgets: --widgets: sprocket is not a widget");
    /* The first reason is the one kept. */
    assert_int_equal(shoal_before(shoal_app_root(app), NULL, NULL), -1);
    assert_string_equal(shoal_app_failure(app), "extension widgets: --widgets: sprocket is not a widget");
    trace[0] = '\0';
    shoal_app_free(app);
    assert_string_equal(trace, "release:widgets");

    app = shoal_app_new(&config);
    shoal_extension silent = {.name = "silent", .init = extension_init_fails};
    assert_int_equal(shoal_app_extend(app, &silent), -1);
    assert_string_equal(shoal_app_failure(app), "extension silent: its init failed without saying why");
    shoal_app_free(app);

    /* Outside an extension's init no name is added. */
    app = shoal_app_new(&config);
    assert_int_equal(shoal_route(shoal_app_root(app), "FETCH", "/x", answer_ok), -1);
    assert_string_equal(shoal_app_failure(app), "cannot register a route: unknown method");
    shoal_app_free(app);
    shoal_config_free(&config);
}

static void test_an_init_that_ignores_a_failed_registration_still_fails_the_setup(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension careless = {.name = "careless", .init = ignore_a_failed_registration, .shutdown = note_shutdown,
                                .data = "careless"};
    trace[0] = '\0';
    assert_int_equal(shoal_app_extend(app, &careless), -1);
    assert_string_equal(shoal_app_failure(app), "extension careless: cannot register a before hook: the hook is NULL");
    assert_int_equal(shoal_app_freeze(app), -1);
    /* Its init returned 0, so it is kept and its shutdown runs. */
    shoal_app_free(app);
    assert_string_equal(trace, "careless careless");
    shoal_config_free(&config);
}

static void test_state_that_cannot_be_published_is_released_at_once(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    trace[0] = '\0';
    assert_int_equal(publish_labelled(app, "taken"), 0);
    assert_string_equal(trace, "");
    /* A name taken twice: the second state is released, the first stays. */
    char *second = strdup("taken");
    assert_non_null(second);
    assert_int_equal(shoal_app_publish(app, "taken", second, release_noted), -1);
    assert_string_equal(trace, "release:taken");
    assert_non_null(shoal_app_published(app, "taken"));
    char *unnamed = strdup("unnamed");
    assert_non_null(unnamed);
    assert_int_equal(shoal_app_publish(app, NULL, unnamed, release_noted), -1);
    assert_string_equal(trace, "release:taken release:unnamed");
    /* State that lives elsewhere is published without a release. */
    static char elsewhere[] = "elsewhere";
    assert_int_equal(shoal_app_publish(app, "elsewhere", elsewhere, NULL), 0);
    assert_ptr_equal(shoal_app_published(app, "elsewhere"), elsewhere);
    assert_int_equal(shoal_app_freeze(app), -1); /* the name taken twice */
    char *late = strdup("late");
    assert_non_null(late);
    assert_int_equal(shoal_app_publish(app, "late", late, release_noted), -1);
    assert_string_equal(trace, "release:taken release:unnamed release:late");
    assert_null(shoal_app_published(app, "late"));
    shoal_app_free(app);
    assert_string_equal(trace, "release:taken release:unnamed release:late release:taken");
    shoal_config_free(&config);
}

/* ---- extension instances ------------------------------------------------- */

static const shoal_extension counter_extension;

static shoal_flow counter_hook(shoal_ctx *ctx, void *data)
{
    counter_instance *counter = data;
    counter->hook_calls++;
    /* The hook's data and the accessor agree. */
    if (shoal_ctx_instance(ctx, &counter_extension) != data)
        note("hook-data-is-not-the-instance");
    return SHOAL_NEXT;
}

/* Reaches the instance with only the request in hand. */
static int counter_handler(shoal_ctx *ctx)
{
    counter_instance *counter = shoal_ctx_instance(ctx, &counter_extension);
    if (counter == NULL)
        return shoal_error(ctx, 500, "test.no_instance", "body", "no instance");
    counter->requests++;
    return shoal_json(ctx, 200, json_pack("{s:s,s:i}", "label", counter->label, "requests", counter->requests));
}

static int counter_init(shoal_app *app, void *instance)
{
    /* init gets the instance, not the extension's data. */
    if (instance != shoal_app_instance(app, &counter_extension))
        return shoal_app_fail(app, "init did not get the instance");
    if (shoal_before(shoal_app_root(app), counter_hook, instance) != 0)
        return -1;
    return shoal_route(shoal_app_root(app), "GET", "/count", counter_handler);
}

static const shoal_extension counter_extension = {
    .name = "counter",
    .init = counter_init,
    .shutdown = counter_shutdown,
    .data = "counter",
    .create = counter_create,
    .destroy = counter_destroy,
};

/* GET /count on app: the label and the count its instance answers. */
static void expect_count(shoal_app *app, const char *label, int requests)
{
    fake_request r;
    fake_request_init(&r, app, NULL, "GET", "/count");
    fake_request_dispatch(&r);
    assert_int_equal(shoal_status(&r.ctx), 200);
    json_t *body = json_loads(fake_response_body(&r), 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "label")), label);
    assert_int_equal(json_integer_value(json_object_get(body, "requests")), requests);
    json_decref(body);
    fake_request_finish(&r);
}

static void test_an_extension_reaches_its_instance_from_its_hooks_and_handlers(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *first = shoal_app_new(&config);
    shoal_app *second = shoal_app_new(&config);
    trace[0] = '\0';
    assert_int_equal(shoal_app_extend(first, &counter_extension), 0);
    assert_int_equal(shoal_app_extend(second, &counter_extension), 0);
    assert_string_equal(trace, "create:counter create:counter");
    serve(first);
    serve(second);
    counter_instance *first_counter = shoal_app_instance(first, &counter_extension);
    counter_instance *second_counter = shoal_app_instance(second, &counter_extension);
    assert_non_null(first_counter);
    assert_non_null(second_counter);
    assert_ptr_not_equal(first_counter, second_counter);
    /* Each app counts in its own instance. */
    expect_count(first, "counter", 1);
    expect_count(first, "counter", 2);
    expect_count(second, "counter", 1);
    assert_int_equal(first_counter->hook_calls, 2);
    assert_int_equal(second_counter->hook_calls, 1);
    /* A copy of the extension is another extension: found by address. */
    shoal_extension copy = counter_extension;
    assert_null(shoal_app_instance(first, &copy));
    assert_string_equal(trace, "create:counter create:counter");
    trace[0] = '\0';
    shoal_app_free(first);
    assert_string_equal(trace, "shutdown:counter destroy:counter");
    expect_count(second, "counter", 2);
    shoal_app_free(second);
    shoal_config_free(&config);
}

static void *create_nothing(shoal_app *app, void *data)
{
    (void)app;
    note(data);
    return NULL;
}

static void *create_nothing_with_a_reason(shoal_app *app, void *data)
{
    (void)data;
    shoal_app_fail(app, "--widgets: %s", "none to make");
    return NULL;
}

static int init_never_runs(shoal_app *app, void *data)
{
    (void)app;
    (void)data;
    note("init-ran");
    return 0;
}

static void test_an_instance_that_cannot_be_created_fails_the_setup_without_init(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension nothing = {.name = "nothing", .init = init_never_runs, .shutdown = note_shutdown,
                               .create = create_nothing, .destroy = counter_destroy, .data = "create-ran"};
    trace[0] = '\0';
    assert_int_equal(shoal_app_extend(app, &nothing), -1);
    assert_string_equal(shoal_app_failure(app), "extension nothing: cannot create its instance: out of memory");
    assert_null(shoal_app_instance(app, &nothing));
    assert_int_equal(shoal_app_freeze(app), -1);
    shoal_app_free(app);
    /* No init, no shutdown, nothing to destroy. */
    assert_string_equal(trace, "create-ran");

    app = shoal_app_new(&config);
    shoal_extension reasoned = {.name = "reasoned", .init = init_never_runs, .create = create_nothing_with_a_reason};
    assert_int_equal(shoal_app_extend(app, &reasoned), -1);
    assert_string_equal(shoal_app_failure(app), "extension reasoned: --widgets: none to make");
    shoal_app_free(app);
    assert_string_equal(trace, "create-ran");
    shoal_config_free(&config);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_blueprint_prefix_is_prepended_to_its_routes),
        TEST(test_invalid_blueprint_prefix_fails_setup),
        TEST(test_route_pattern_without_leading_slash_is_rejected_in_a_blueprint),
        TEST(test_every_registration_fails_after_freeze),
        cmocka_unit_test(test_invalid_registrations_make_freeze_fail),
        TEST(test_method_lists_accept_only_known_methods),
        TEST(test_method_list_with_a_trailing_bar_is_rejected),
        cmocka_unit_test(test_a_failed_init_is_not_kept_and_its_state_is_released_with_the_app),
        cmocka_unit_test(test_a_failed_init_says_why_under_its_name),
        cmocka_unit_test(test_an_init_that_ignores_a_failed_registration_still_fails_the_setup),
        cmocka_unit_test(test_state_that_cannot_be_published_is_released_at_once),
        cmocka_unit_test(test_an_extension_reaches_its_instance_from_its_hooks_and_handlers),
        cmocka_unit_test(test_an_instance_that_cannot_be_created_fails_the_setup_without_init),
    };
    return cmocka_run_group_tests_name("node/lib/app", tests, NULL, NULL);
}
