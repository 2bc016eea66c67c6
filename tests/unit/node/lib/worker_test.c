/* tests/unit/node/lib/worker_test.c: node/lib/worker.c, the workers, their slots and what they count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app_fixture.h"

/* ---- workers and their slots --------------------------------------------- */

typedef struct worker_report {
    shoal_app *app;
    shoal_worker_slot slot;
    shoal_worker *first;
    shoal_worker *second;
    void *slot_value;
    bool has_store;
    bool has_cache;
    int status;
} worker_report;

static int created_states;
static int destroyed_states;

static void *create_state(void *data)
{
    created_states++;
    int *value = malloc(sizeof *value);
    if (value != NULL)
        *value = *(int *)data;
    return value;
}

static void destroy_state(void *state)
{
    destroyed_states++;
    free(state);
}

static worker_report *current_report;

static int answer_with_worker_state(shoal_ctx *ctx)
{
    current_report->slot_value = shoal_worker_get(ctx, current_report->slot);
    current_report->has_store = shoal_store(ctx) != NULL;
    current_report->has_cache = shoal_cache(ctx) != NULL;
    return shoal_empty(ctx, 204);
}

/* cmocka cannot assert off the main thread: the thread only records. */
static void *use_worker_on_fresh_thread(void *argument)
{
    worker_report *report = argument;
    report->first = shoal_app_thread_worker(report->app);
    report->second = shoal_app_thread_worker(report->app);
    if (report->first == NULL)
        return NULL;
    fake_request r;
    fake_request_init(&r, report->app, report->first, "GET", "/state");
    current_report = report;
    fake_request_dispatch(&r);
    report->status = r.ctx.status;
    fake_request_finish(&r);
    return NULL;
}

/* A fresh thread keeps the main thread free of a cached worker, which the
 * next test's app must not see. */
static void run_on_fresh_thread(void *(*body)(void *), void *argument)
{
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, body, argument), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
}

static void test_worker_is_made_once_per_thread_with_its_slots(void **state)
{
    fixture *f = *state;
    static int initial = 42;
    created_states = destroyed_states = 0;
    worker_report report = {.app = f->app};
    report.slot = shoal_app_worker_slot(f->app, create_state, destroy_state, &initial);
    assert_int_equal(report.slot, 0);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/state", answer_with_worker_state), 0);
    serve(f->app);

    run_on_fresh_thread(use_worker_on_fresh_thread, &report);
    assert_non_null(report.first);
    assert_ptr_equal(report.first, report.second);
    assert_int_equal(report.status, 204);
    assert_non_null(report.slot_value);
    assert_int_equal(*(int *)report.slot_value, 42);
    /* Handles exist without connecting: no server is needed for this. */
    assert_true(report.has_store);
    assert_true(report.has_cache);
    assert_int_equal(created_states, 1);

    run_on_fresh_thread(use_worker_on_fresh_thread, &report);
    assert_int_equal(created_states, 2);
    assert_int_equal(destroyed_states, 0);

    shoal_app_free(f->app);
    f->app = NULL;
    assert_int_equal(destroyed_states, 2);
}

/* The accessors are ctx.c's; what they reach is the worker's. */
static void test_without_a_worker_there_is_no_store_cache_or_worker_state(void **state)
{
    fixture *f = *state;
    static int initial = 1;
    worker_report report = {.app = f->app};
    report.slot = shoal_app_worker_slot(f->app, create_state, destroy_state, &initial);
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/state", answer_with_worker_state), 0);
    serve(f->app);

    current_report = &report;
    report.has_store = report.has_cache = true;
    fake_request *r = dispatch(f, "GET", "/state");
    assert_int_equal(r->ctx.status, 204);
    assert_null(report.slot_value);
    assert_false(report.has_store);
    assert_false(report.has_cache);
    fake_request_finish(r);
}

/* The thread's cached worker outlives the app that made it; asking a later
 * app for this thread's worker must not read the freed one. Only a memory
 * checker sees the read, so the scenario runs in a child and the test
 * fails when AddressSanitizer kills it. */
static void test_thread_worker_lookup_survives_a_freed_app(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        const char *argv[] = {"shoal-node", NULL};
        char error[256];
        shoal_config config;
        if (shoal_config_load(&config, 1, (char **)argv, NULL, error, sizeof error) != 0)
            _exit(10);
        shoal_app *first = shoal_app_new(&config);
        if (first == NULL || shoal_app_thread_worker(first) == NULL)
            _exit(11);
        shoal_app_free(first);
        shoal_app *second = shoal_app_new(&config);
        shoal_worker *worker = second != NULL ? shoal_app_thread_worker(second) : NULL;
        int rc = worker != NULL && shoal_app_thread_worker(second) == worker ? 0 : 12;
        shoal_app_free(second);
        shoal_config_free(&config);
        _exit(rc);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child failed (%s %d): see the sanitizer report above",
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* ---- what the workers count ---------------------------------------------- */

/* Readiness is app.c's; it is here with the in-flight count, which
 * draining reads with it. */
static void test_in_flight_and_readiness_are_tracked(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_app_readiness(f->app), SHOAL_STARTING);
    shoal_app_set_readiness(f->app, SHOAL_READY);
    assert_int_equal(shoal_app_readiness(f->app), SHOAL_READY);
    shoal_app_set_readiness(f->app, SHOAL_DRAINING);
    assert_int_equal(shoal_app_readiness(f->app), SHOAL_DRAINING);

    assert_int_equal(shoal_app_in_flight(f->app), 0);
    shoal_worker *worker = shoal_app_thread_worker(f->app);
    assert_non_null(worker);
    shoal_worker_request_started(worker);
    shoal_worker_request_started(worker);
    shoal_worker_request_finished(worker);
    assert_int_equal(shoal_app_in_flight(f->app), 1);
    shoal_worker_request_finished(worker);
    assert_int_equal(shoal_app_in_flight(f->app), 0);
    assert_ptr_equal(shoal_app_config(f->app), &f->config);
}

static void count_healthz(const char *pattern, const char *methods, const shoal_route_totals *totals, void *data)
{
    (void)totals;
    if (strcmp(pattern, "/healthz") == 0 && strcmp(methods, "GET") == 0)
        (*(int *)data)++;
}

/* app.c marks the second listener's route as the first's twin; the sums
 * here skip it. */
static void test_a_route_on_both_listeners_is_one_metrics_series(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_route(shoal_app_root(f->app), "GET", "/healthz", answer_ok), 0);
    assert_int_equal(shoal_route(shoal_app_admin(f->app), "GET", "/healthz", answer_ok), 0);
    serve(f->app);
    fake_request *r = dispatch(f, "GET", "/healthz");
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
    r = dispatch_admin(f, "GET", "/healthz");
    assert_int_equal(r->ctx.status, 200);
    fake_request_finish(r);
    int series = 0;
    shoal_app_route_totals(f->app, count_healthz, &series);
    assert_int_equal(series, 1);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_worker_is_made_once_per_thread_with_its_slots),
        TEST(test_without_a_worker_there_is_no_store_cache_or_worker_state),
        cmocka_unit_test(test_thread_worker_lookup_survives_a_freed_app),
        TEST(test_in_flight_and_readiness_are_tracked),
        TEST(test_a_route_on_both_listeners_is_one_metrics_series),
    };
    return cmocka_run_group_tests_name("node/lib/worker", tests, NULL, NULL);
}
