/* tests/unit/node/lib/app_lifecycle_test.c: node/lib/app_lifecycle.c, what freeing the app ends, in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "app_fixture.h"

/* ---- extensions shut down newest first ----------------------------------- */

static shoal_flow tag_request(shoal_ctx *ctx, void *data)
{
    shoal_set_header(ctx, "X-Extension", data);
    return SHOAL_NEXT;
}

static int extension_adds_hook(shoal_app *app, void *data)
{
    return shoal_before(shoal_app_root(app), tag_request, data);
}

static void test_extensions_register_at_init_and_shut_down_newest_first(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension first = {.name = "first", .init = extension_adds_hook, .shutdown = note_shutdown, .data = "first"};
    shoal_extension second = {.name = "second", .init = extension_init_ok, .shutdown = note_shutdown, .data = "second"};
    shoal_extension third = {.name = "third", .init = NULL, .shutdown = NULL};
    assert_int_equal(shoal_app_extend(app, &first), 0);
    assert_int_equal(shoal_app_extend(app, &second), 0);
    assert_int_equal(shoal_app_extend(app, &third), 0);
    assert_int_equal(shoal_route(shoal_app_root(app), "GET", "/x", answer_ok), 0);
    assert_int_equal(shoal_app_freeze(app), 0);

    fake_request r;
    fake_request_init(&r, app, NULL, "GET", "/x");
    fake_request_dispatch(&r);
    assert_string_equal(shoal_response_header(&r.ctx, "X-Extension"), "first");
    fake_request_finish(&r);

    trace[0] = '\0';
    shoal_app_free(app);
    assert_string_equal(trace, "second first");
    shoal_config_free(&config);
}

/* ---- then published state is released ------------------------------------ */

static void test_published_state_is_released_with_the_app_after_the_shutdowns(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension first = {.name = "first", .init = publish, .shutdown = note_shutdown_with_state, .data = "first"};
    shoal_extension second = {.name = "second", .init = publish, .shutdown = note_shutdown_with_state, .data = "second"};
    assert_int_equal(shoal_app_extend(app, &first), 0);
    assert_int_equal(shoal_app_extend(app, &second), 0);
    assert_string_equal(shoal_app_published(app, "second"), "second");
    assert_null(shoal_app_failure(app));
    assert_int_equal(shoal_app_freeze(app), 0);
    trace[0] = '\0';
    shoal_app_free(app);
    assert_string_equal(trace, "shutdown:second shutdown:first release:second release:first");
    shoal_config_free(&config);
}

/* ---- then instances are destroyed ---------------------------------------- */

static void test_instances_are_destroyed_once_each_newest_first_after_the_shutdowns(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    shoal_extension first = {.name = "first", .create = counter_create, .destroy = counter_destroy,
                             .shutdown = counter_shutdown, .data = "first"};
    shoal_extension second = first;
    second.name = "second";
    second.data = "second";
    /* Published state (deprecated) is released before the instances: its
     * init publishes under its instance's label ("third", the first field). */
    shoal_extension third = {.name = "third", .init = publish, .create = counter_create,
                             .destroy = counter_destroy, .data = "third"};
    trace[0] = '\0';
    assert_int_equal(shoal_app_extend(app, &first), 0);
    assert_int_equal(shoal_app_extend(app, &second), 0);
    assert_int_equal(shoal_app_extend(app, &third), 0);
    assert_string_equal(trace, "create:first create:second create:third");
    assert_string_equal(shoal_app_published(app, "third"), "third");
    assert_null(shoal_app_failure(app));
    trace[0] = '\0';
    shoal_app_free(app);
    assert_string_equal(trace,
                        "shutdown:second shutdown:first release:third destroy:third destroy:second destroy:first");
    shoal_config_free(&config);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_extensions_register_at_init_and_shut_down_newest_first),
        cmocka_unit_test(test_published_state_is_released_with_the_app_after_the_shutdowns),
        cmocka_unit_test(test_instances_are_destroyed_once_each_newest_first_after_the_shutdowns),
    };
    return cmocka_run_group_tests_name("node/lib/app_lifecycle", tests, NULL, NULL);
}
