/* tests/unit/node/lib/metrics_registry_test.c: the metrics services and
 * extensions register (node/lib/metrics_registry.c), without a server: counts
 * land in their label value's series in the worker that counted and a
 * scrape sums the workers; a value out of range counts nowhere; histograms
 * bucket, sum and count; the text lists every series of every family in
 * the order of registration (the core's own first) and passes promtool
 * when it is installed; a malformed, duplicate or late registration and
 * memory running out fail the setup with a reason and leak nothing; and
 * counting allocates nothing. Linked with the allocation wrappers
 * (alloc_faults.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shoal/ext/session.h>

#include "alloc_faults.h"
#include "app_fixture.h"
#include "metrics_registry.h"

/* Runs fn with stderr in a temporary file (the setup_invalid lines). */
static void quietly(void (*fn)(void *), void *data)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *sink = tmpfile();
    assert_non_null(sink);
    dup2(fileno(sink), STDERR_FILENO);
    fn(data);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(sink);
}

static const char *const languages[] = {"en", "fr", "de", NULL};
enum { EN, FR, DE };

static const shoal_metric_spec greetings_spec = {
    .name = "test_greetings_total",
    .help = "Greetings, by language.",
    .label = "lang",
    .values = languages,
};

/* ---- counting ------------------------------------------------------------------ */

typedef struct counting {
    shoal_app *app;
    const shoal_counter *counter;
} counting;

/* A request on this thread's worker; only the worker's own thread counts
 * in it. */
static void count_on_this_thread(const counting *run, size_t value, unsigned long n)
{
    fake_request request;
    fake_request_init(&request, run->app, shoal_app_thread_worker(run->app), "GET", "/");
    shoal_count(&request.ctx, run->counter, value, n);
    fake_request_finish(&request);
}

static void *count_on_another_worker(void *argument)
{
    counting *run = argument;
    count_on_this_thread(run, FR, 2);
    count_on_this_thread(run, EN, 1);
    return NULL;
}

static void counts_land_in_their_value_and_a_scrape_sums_the_workers(void **state)
{
    fixture *f = *state;
    counting run = {f->app, shoal_app_counter(f->app, &greetings_spec)};
    assert_non_null(run.counter);
    assert_int_equal(shoal_app_freeze(f->app), 0);

    count_on_this_thread(&run, EN, 3);
    count_on_this_thread(&run, DE, 1);
    count_on_this_thread(&run, 3, 5);          /* past the values: nowhere */
    count_on_this_thread(&run, (size_t)-1, 5); /* nor here */
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, count_on_another_worker, &run), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    /* No worker, no handle: nowhere, and no crash. */
    fake_request request;
    fake_request_init(&request, f->app, NULL, "GET", "/");
    shoal_count(&request.ctx, run.counter, EN, 100);
    fake_request_finish(&request);
    counting no_handle = {f->app, NULL};
    count_on_this_thread(&no_handle, EN, 100);

    assert_int_equal(shoal_counter_total(f->app, run.counter, EN), 4);
    assert_int_equal(shoal_counter_total(f->app, run.counter, FR), 2);
    assert_int_equal(shoal_counter_total(f->app, run.counter, DE), 1);
    assert_int_equal(shoal_counter_total(f->app, run.counter, 3), 0);
    assert_int_equal(shoal_counter_total(f->app, NULL, EN), 0);
}

/* The cells are the worker's own, never the heap's: counting and observing
 * allocate nothing (the next allocation would fail, and none happens). */
static void counting_allocates_nothing(void **state)
{
    fixture *f = *state;
    const shoal_counter *counter = shoal_app_counter(f->app, &greetings_spec);
    static const shoal_metric_spec latency = {.name = "test_wait_seconds", .help = "Waits."};
    const shoal_histogram *histogram = shoal_app_histogram(f->app, &latency, NULL, 0);
    assert_non_null(counter);
    assert_non_null(histogram);
    assert_int_equal(shoal_app_freeze(f->app), 0);
    fake_request request;
    fake_request_init(&request, f->app, shoal_app_thread_worker(f->app), "GET", "/");
    alloc_faults_fail_nth(1);
    for (int i = 0; i < 100; i++) {
        shoal_count(&request.ctx, counter, (size_t)i % 3, 1);
        shoal_observe(&request.ctx, histogram, 0, 0.001 * i);
    }
    bool allocated = alloc_faults_injected();
    alloc_faults_fail_nth(0);
    fake_request_finish(&request);
    assert_false(allocated);
    assert_int_equal(shoal_counter_total(f->app, counter, FR), 33);
}

/* ---- the text ----------------------------------------------------------------- */

static char *scrape(shoal_app *app)
{
    shoal_metrics_text text = {0};
    shoal_metric_registry_write(app, &text);
    assert_false(text.failed);
    assert_non_null(text.data);
    return text.data;
}

/* promtool's lint of text, when it is installed (deploy/local deps --tests
 * installs it; integration.metric_families_test requires it). */
static void promtool_accepts(const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        print_message("promtool is not installed: its check is skipped here\n");
        return;
    }
    char path[] = "/tmp/shoal-registry-XXXXXX";
    int descriptor = mkstemp(path);
    assert_true(descriptor >= 0);
    size_t length = strlen(text);
    assert_int_equal(write(descriptor, text, length), (ssize_t)length);
    close(descriptor);
    char command[128];
    snprintf(command, sizeof command, "promtool check metrics < %s", path);
    int status = system(command);
    unlink(path);
    assert_int_equal(status, 0);
}

static const char expected_own_families[] =
    "# HELP test_greetings_total Greetings, by language.\n"
    "# TYPE test_greetings_total counter\n"
    "test_greetings_total{lang=\"en\"} 2\n"
    "test_greetings_total{lang=\"fr\"} 0\n"
    "test_greetings_total{lang=\"de\"} 0\n"
    "# HELP test_jobs_total Jobs done; a \\\\ and a \\n in the help are escaped.\n"
    "# TYPE test_jobs_total counter\n"
    "test_jobs_total 7\n"
    "# HELP test_wait_seconds Time waited, by language.\n"
    "# TYPE test_wait_seconds histogram\n"
    "test_wait_seconds_bucket{lang=\"en\",le=\"0.125\"} 1\n"
    "test_wait_seconds_bucket{lang=\"en\",le=\"0.25\"} 2\n"
    "test_wait_seconds_bucket{lang=\"en\",le=\"1\"} 2\n"
    "test_wait_seconds_bucket{lang=\"en\",le=\"+Inf\"} 3\n"
    "test_wait_seconds_sum{lang=\"en\"} 4.3125\n"
    "test_wait_seconds_count{lang=\"en\"} 3\n"
    "test_wait_seconds_bucket{lang=\"fr\",le=\"0.125\"} 0\n"
    "test_wait_seconds_bucket{lang=\"fr\",le=\"0.25\"} 0\n"
    "test_wait_seconds_bucket{lang=\"fr\",le=\"1\"} 0\n"
    "test_wait_seconds_bucket{lang=\"fr\",le=\"+Inf\"} 0\n"
    "test_wait_seconds_sum{lang=\"fr\"} 0\n"
    "test_wait_seconds_count{lang=\"fr\"} 0\n"
    "test_wait_seconds_bucket{lang=\"de\",le=\"0.125\"} 0\n"
    "test_wait_seconds_bucket{lang=\"de\",le=\"0.25\"} 0\n"
    "test_wait_seconds_bucket{lang=\"de\",le=\"1\"} 0\n"
    "test_wait_seconds_bucket{lang=\"de\",le=\"+Inf\"} 0\n"
    "test_wait_seconds_sum{lang=\"de\"} 0\n"
    "test_wait_seconds_count{lang=\"de\"} 0\n"
    "# HELP test_default_seconds Default buckets.\n"
    "# TYPE test_default_seconds histogram\n"
    "test_default_seconds_bucket{le=\"0.0005\"} 0\n"
    "test_default_seconds_bucket{le=\"0.001\"} 1\n"
    "test_default_seconds_bucket{le=\"0.0025\"} 1\n"
    "test_default_seconds_bucket{le=\"0.005\"} 1\n"
    "test_default_seconds_bucket{le=\"0.01\"} 1\n"
    "test_default_seconds_bucket{le=\"0.025\"} 1\n"
    "test_default_seconds_bucket{le=\"0.05\"} 1\n"
    "test_default_seconds_bucket{le=\"0.1\"} 1\n"
    "test_default_seconds_bucket{le=\"0.25\"} 1\n"
    "test_default_seconds_bucket{le=\"0.5\"} 1\n"
    "test_default_seconds_bucket{le=\"1\"} 1\n"
    "test_default_seconds_bucket{le=\"2.5\"} 1\n"
    "test_default_seconds_bucket{le=\"5\"} 1\n"
    "test_default_seconds_bucket{le=\"+Inf\"} 1\n"
    "test_default_seconds_sum 0.0009765625\n";

static void the_text_lists_every_series_in_the_order_of_registration(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_app_extend(f->app, &shoal_session_extension), 0);
    const shoal_counter *greetings = shoal_app_counter(f->app, &greetings_spec);
    static const shoal_metric_spec jobs = {.name = "test_jobs_total",
                                           .help = "Jobs done; a \\ and a \n in the help are escaped."};
    const shoal_counter *jobs_done = shoal_app_counter(f->app, &jobs);
    static const shoal_metric_spec wait = {.name = "test_wait_seconds", .help = "Time waited, by language.",
                                           .label = "lang", .values = languages};
    static const double bounds[] = {0.125, 0.25, 1};
    const shoal_histogram *waits = shoal_app_histogram(f->app, &wait, bounds, 3);
    static const shoal_metric_spec unlabelled = {.name = "test_default_seconds", .help = "Default buckets."};
    const shoal_histogram *defaults = shoal_app_histogram(f->app, &unlabelled, NULL, 0);
    assert_non_null(greetings);
    assert_non_null(jobs_done);
    assert_non_null(waits);
    assert_non_null(defaults);
    assert_int_equal(shoal_app_freeze(f->app), 0);

    fake_request request;
    fake_request_init(&request, f->app, shoal_app_thread_worker(f->app), "GET", "/");
    shoal_count(&request.ctx, greetings, EN, 2);
    shoal_count(&request.ctx, jobs_done, 0, 7);
    shoal_count(&request.ctx, jobs_done, 1, 7); /* one series only: nowhere */
    shoal_observe(&request.ctx, waits, EN, 0.125);  /* on a bound: that bucket */
    shoal_observe(&request.ctx, waits, EN, 0.1875); /* between: the next */
    shoal_observe(&request.ctx, waits, EN, 4);      /* past the last: +Inf */
    shoal_observe(&request.ctx, waits, FR, NAN);    /* nowhere */
    shoal_observe(&request.ctx, waits, 3, 0.5);     /* nowhere */
    shoal_observe(&request.ctx, defaults, 0, 0.0009765625);
    fake_request_finish(&request);

    char *text = scrape(f->app);
    /* The core's own families first, every value listed, then the
     * extensions' and the service's in their order. */
    const char *shed = strstr(text, "# TYPE shoal_http_requests_shed_total counter\n"
                                    "shoal_http_requests_shed_total{reason=\"in_flight\"} 0\n"
                                    "shoal_http_requests_shed_total{reason=\"deadline\"} 0\n");
    const char *reads = strstr(text, "# TYPE shoal_cache_reads_total counter\n"
                                     "shoal_cache_reads_total{source=\"l1\"} 0\n"
                                     "shoal_cache_reads_total{source=\"redis\"} 0\n"
                                     "shoal_cache_reads_total{source=\"stale\"} 0\n"
                                     "shoal_cache_reads_total{source=\"filled\"} 0\n"
                                     "shoal_cache_reads_total{source=\"bypassed\"} 0\n"
                                     "shoal_cache_reads_total{source=\"stale_if_error\"} 0\n");
    const char *sessions = strstr(text, "# TYPE shoal_session_lookups_total counter\n"
                                        "shoal_session_lookups_total{result=\"found\"} 0\n"
                                        "shoal_session_lookups_total{result=\"missing\"} 0\n"
                                        "shoal_session_lookups_total{result=\"error\"} 0\n");
    const char *own = strstr(text, "# HELP test_greetings_total");
    assert_non_null(shed);
    assert_non_null(reads);
    assert_non_null(sessions);
    assert_non_null(own);
    assert_true(shed < reads && reads < sessions && sessions < own);
    const char *end = "test_default_seconds_count 1\n";
    if (strncmp(own, expected_own_families, strlen(expected_own_families)) != 0 ||
        strcmp(own + strlen(expected_own_families), end) != 0)
        fail_msg("the registered families read:\n%s\nexpected:\n%s%s", own, expected_own_families, end);
    promtool_accepts(text);
    free(text);
}

/* ---- refused registrations ------------------------------------------------------ */

typedef struct refusal {
    const char *what;
    shoal_metric_spec spec;
    bool histogram;
    const double *bounds;
    size_t bound_count;
    const char *reason; /* in shoal_app_failure */
} refusal;

static const char *const one_value[] = {"x", NULL};
static const char *const no_values[] = {NULL};
static const char *const empty_value[] = {"a", "", NULL};
static const char *const repeated_values[] = {"a", "b", "a", NULL};
static const char *const too_many_values[] = {"0",  "1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",  "9",  "10",
                                              "11", "12", "13", "14", "15", "16", "17", "18", "19", "20", "21",
                                              "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32",
                                              NULL};
static const double decreasing[] = {1, 0.5};
static const double equal[] = {1, 1};
static const double infinite[] = {1, INFINITY};
static const double many_bounds[SHOAL_METRIC_BUCKETS_MAX + 1] = {0};

static const refusal refusals[] = {
    {"a name with a dash", {"test-dash_total", "h", NULL, NULL}, false, NULL, 0, "must match"},
    {"a name starting with a digit", {"1test_total", "h", NULL, NULL}, false, NULL, 0, "must match"},
    {"an empty name", {"", "h", NULL, NULL}, false, NULL, 0, "must match"},
    {"no name", {NULL, "h", NULL, NULL}, false, NULL, 0, "must match"},
    {"a counter without _total", {"test_greetings", "h", NULL, NULL}, false, NULL, 0, "ends in _total"},
    {"a histogram with _total", {"test_wait_total", "h", NULL, NULL}, true, NULL, 0, "does not end in"},
    {"a histogram with _count", {"test_wait_count", "h", NULL, NULL}, true, NULL, 0, "does not end in"},
    {"no help", {"test_a_total", NULL, NULL, NULL}, false, NULL, 0, "help"},
    {"an empty help", {"test_a_total", "", NULL, NULL}, false, NULL, 0, "help"},
    {"a core family's name", {"shoal_http_requests_total", "h", NULL, NULL}, false, NULL, 0, "core's own"},
    {"the core's histogram's name", {"shoal_http_request_duration_seconds", "h", NULL, NULL}, true, NULL, 0,
     "core's own"},
    {"a label with a dash", {"test_a_total", "h", "a-b", one_value}, false, NULL, 0, "the label must match"},
    {"a label of Prometheus's", {"test_a_total", "h", "__name", one_value}, false, NULL, 0, "start with __"},
    {"a histogram's label le", {"test_b_seconds", "h", "le", one_value}, true, NULL, 0, "cannot be le"},
    {"a label without values", {"test_a_total", "h", "kind", NULL}, false, NULL, 0, "needs its values"},
    {"a label with no value", {"test_a_total", "h", "kind", no_values}, false, NULL, 0, "needs its values"},
    {"an empty value", {"test_a_total", "h", "kind", empty_value}, false, NULL, 0, "cannot be empty"},
    {"a repeated value", {"test_a_total", "h", "kind", repeated_values}, false, NULL, 0, "distinct"},
    {"33 values", {"test_a_total", "h", "kind", too_many_values}, false, NULL, 0, "at most"},
    {"decreasing bounds", {"test_b_seconds", "h", NULL, NULL}, true, decreasing, 2, "increase"},
    {"equal bounds", {"test_b_seconds", "h", NULL, NULL}, true, equal, 2, "increase"},
    {"an infinite bound", {"test_b_seconds", "h", NULL, NULL}, true, infinite, 2, "finite"},
    {"no bounds", {"test_b_seconds", "h", NULL, NULL}, true, decreasing, 0, "1 to"},
    {"too many bounds", {"test_b_seconds", "h", NULL, NULL}, true, many_bounds, SHOAL_METRIC_BUCKETS_MAX + 1, "1 to"},
};

typedef struct attempt {
    shoal_app *app;
    const refusal *refusal;
    const void *handle;
} attempt;

static void try_register(void *data)
{
    attempt *run = data;
    const refusal *r = run->refusal;
    run->handle = r->histogram ? (const void *)shoal_app_histogram(run->app, &r->spec, r->bounds, r->bound_count)
                               : (const void *)shoal_app_counter(run->app, &r->spec);
}

static void malformed_registrations_fail_the_setup_with_their_reason(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        shoal_app *app = shoal_app_new(&f->config);
        assert_non_null(app);
        attempt run = {app, &refusals[i], NULL};
        quietly(try_register, &run);
        const char *failure = shoal_app_failure(app);
        if (run.handle != NULL || failure == NULL || strstr(failure, "cannot register metric") == NULL ||
            strstr(failure, refusals[i].reason) == NULL)
            fail_msg("%s: registered %s, failure '%s' (expected one with '%s')", refusals[i].what,
                     run.handle != NULL ? "yes" : "no", failure != NULL ? failure : "(none)", refusals[i].reason);
        assert_int_equal(shoal_app_freeze(app), -1);
        shoal_app_free(app);
    }
}

static void register_greetings(void *data)
{
    attempt *run = data;
    run->handle = shoal_app_counter(run->app, &greetings_spec);
}

static void a_second_registration_of_a_name_fails_the_setup(void **state)
{
    fixture *f = *state;
    assert_non_null(shoal_app_counter(f->app, &greetings_spec));
    attempt run = {.app = f->app};
    quietly(register_greetings, &run);
    assert_null(run.handle);
    assert_string_equal(shoal_app_failure(f->app),
                        "cannot register metric test_greetings_total: the name is registered already");
    assert_int_equal(shoal_app_freeze(f->app), -1);
}

/* An extension's registration names the extension too (shoal_app_fail). */
static int init_registering_twice(shoal_app *app, void *data)
{
    (void)data;
    if (shoal_app_counter(app, &greetings_spec) == NULL || shoal_app_counter(app, &greetings_spec) == NULL)
        return -1;
    return 0;
}

static void load_registering_twice(void *data)
{
    attempt *run = data;
    static const shoal_extension twice = {.name = "twice", .init = init_registering_twice};
    run->handle = shoal_app_extend(run->app, &twice) == 0 ? run : NULL;
}

static void an_extension_registering_twice_is_named(void **state)
{
    fixture *f = *state;
    attempt run = {.app = f->app};
    quietly(load_registering_twice, &run);
    assert_null(run.handle);
    assert_string_equal(shoal_app_failure(f->app),
                        "extension twice: cannot register metric test_greetings_total: the name is registered already");
}

static void registering_after_setup_fails(void **state)
{
    fixture *f = *state;
    assert_int_equal(shoal_app_freeze(f->app), 0);
    attempt run = {.app = f->app};
    quietly(register_greetings, &run);
    assert_null(run.handle);
    assert_non_null(shoal_app_failure(f->app));
    assert_non_null(strstr(shoal_app_failure(f->app), "cannot register metric test_greetings_total: setup is over"));
}

static void register_wait_histogram(void *data)
{
    attempt *run = data;
    static const shoal_metric_spec wait = {.name = "test_wait_seconds", .help = "Time waited, by language.",
                                           .label = "lang", .values = languages};
    static const double bounds[] = {0.125, 0.25, 1};
    run->handle = shoal_app_histogram(run->app, &wait, bounds, 3);
}

/* Memory running out at each allocation of a registration: the setup fails
 * saying so, and freeing the app frees everything. */
static void registering_without_memory_fails_and_leaks_nothing(void **state)
{
    fixture *f = *state;
    bool registered = false;
    for (unsigned long nth = 1; !registered; nth++) {
        assert_true(nth < 100);
        alloc_faults_track(true);
        shoal_app *app = shoal_app_new(&f->config);
        assert_non_null(app);
        attempt run = {.app = app};
        alloc_faults_fail_nth(nth);
        quietly(register_wait_histogram, &run);
        bool injected = alloc_faults_injected();
        alloc_faults_fail_nth(0);
        registered = !injected;
        if (injected) {
            assert_null(run.handle);
            assert_non_null(strstr(shoal_app_failure(app), "cannot register metric test_wait_seconds: out of memory"));
            assert_int_equal(shoal_app_freeze(app), -1);
        } else {
            assert_non_null(run.handle);
        }
        shoal_app_free(app);
        assert_false(alloc_faults_overflowed());
        if (alloc_faults_live() != 0)
            fail_msg("failing allocation %lu: %zu blocks left", nth, alloc_faults_live());
        alloc_faults_track(false);
    }
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(counts_land_in_their_value_and_a_scrape_sums_the_workers),
        TEST(counting_allocates_nothing),
        TEST(the_text_lists_every_series_in_the_order_of_registration),
        TEST(malformed_registrations_fail_the_setup_with_their_reason),
        TEST(a_second_registration_of_a_name_fails_the_setup),
        TEST(an_extension_registering_twice_is_named),
        TEST(registering_after_setup_fails),
        TEST(registering_without_memory_fails_and_leaks_nothing),
    };
    return cmocka_run_group_tests_name("unit/node/metrics_registry", tests, NULL, NULL);
}
