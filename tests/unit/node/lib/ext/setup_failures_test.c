/* tests/unit/node/lib/ext/setup_failures_test.c: every extension's init, failing
 * at each of its steps, leaks nothing and leaves nothing dangling.
 *
 * The extensions are loaded as node/bin/main.c loads them, in its order, and
 * the nth allocation made from the first shoal_app_extend on fails
 * (alloc_faults.h), for n = 1, 2, ... until every init succeeds. At each n:
 * the extension that failed says so with its name and why, the app
 * refuses to serve, every instance made is a live block (and every
 * extension loaded before the failure has its own), and freeing the
 * app frees every block setup made. The suite also runs under ASan and
 * valgrind, which report the same faults in their own words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shoal/ext/cors.h>
#include <shoal/ext/idempotency.h>
#include <shoal/ext/rate_limit.h>
#include <shoal/ext/request_id.h>
#include <shoal/ext/security_headers.h>
#include <shoal/ext/session.h>
#include <shoal/health.h>
#include <shoal/metrics.h>
#include <shoal/shoal.h>

#include "alloc_faults.h"
#include "conduit/api.h"
#include "fake_request.h"
#include "techempower/bench.h"

/* Every extension on, with the tiers somewhere nothing listens: nothing
 * here connects but the tier monitor's first probe. */
static const char *const every_extension_on[] = {
    "--cors-origins", "https://a.example,https://b.example",
    "--database-url", "postgresql://127.0.0.1:1/none",
    "--redis-url", "redis://127.0.0.1:1/0",
    "--l1-entries", "0",
    NULL,
};

typedef struct setup {
    shoal_config config;
    shoal_tier_monitor *monitor;
    shoal_extension health;
    const shoal_extension *extensions[10];
    size_t count;
    FILE *log; /* stderr goes here while an app is set up */
} setup;

static int set_up(void **state)
{
    setup *s = calloc(1, sizeof *s);
    assert_non_null(s);
    fake_config_load(&s->config, every_extension_on);
    /* A real monitor; its thread only probes again an hour later. */
    s->monitor = shoal_tier_monitor_start(&s->config, 3600 * 1000);
    assert_non_null(s->monitor);
    s->health = shoal_health_extension(s->monitor);
    /* node/bin/main.c's order. */
    const shoal_extension *in_order[] = {
        &shoal_request_id_extension, &shoal_security_headers_extension, &shoal_cors_extension,
        &shoal_rate_limit_extension, &shoal_session_extension,          &shoal_idempotency_extension,
        &s->health,                  &shoal_metrics_extension,          &shoal_bench_extension,
        &shoal_api_extension,
    };
    memcpy(s->extensions, in_order, sizeof in_order);
    s->count = sizeof in_order / sizeof in_order[0];
    s->log = tmpfile();
    assert_non_null(s->log);
    *state = s;
    return 0;
}

static int tear_down(void **state)
{
    setup *s = *state;
    fclose(s->log);
    shoal_tier_monitor_stop(s->monitor);
    shoal_config_free(&s->config);
    free(s);
    return 0;
}

/* The outcome of loading the extensions with the nth allocation failing. */
typedef struct attempt {
    bool injected;
    int rc;             /* of the shoal_app_extend that failed, or 0 */
    const char *failed; /* that extension's name */
    char log[8192];     /* what setup wrote to stderr */
    char problem[512];  /* what went wrong, or "" */
} attempt;

/* Runs the extensions' inits with stderr going to the log file (only
 * those: a sanitizer's report must reach the real stderr). */
static void extend_in_order(setup *s, shoal_app *app, attempt *result)
{
    assert_int_equal(ftruncate(fileno(s->log), 0), 0);
    assert_int_equal(lseek(fileno(s->log), 0, SEEK_SET), 0);
    fflush(stderr);
    int saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(s->log), STDERR_FILENO) >= 0);
    for (size_t i = 0; i < s->count; i++) {
        result->rc = shoal_app_extend(app, s->extensions[i]);
        if (result->rc != 0) {
            result->failed = s->extensions[i]->name;
            break;
        }
    }
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    ssize_t length = pread(fileno(s->log), result->log, sizeof result->log - 1, 0);
    result->log[length > 0 ? length : 0] = '\0';
}

/* Where the first bytes of instances are read into: a load whose
 * value is never used is optimised away, by valgrind's JIT too. */
static volatile unsigned char first_bytes;

/* Sets up an app as node/bin/main.c does, stopping at the first extension that
 * fails, then checks it and frees it. */
static void attempt_setup(setup *s, unsigned long nth, attempt *result)
{
    memset(result, 0, sizeof *result);
    char problem[400] = "";
    alloc_faults_track(true);
    shoal_app *app = shoal_app_new(&s->config);
    assert_non_null(app);
    alloc_faults_fail_nth(nth);
    extend_in_order(s, app, result);
    result->injected = alloc_faults_injected();
    alloc_faults_fail_nth(0);

    /* The extension that failed says so, by name and why, in the log line
     * and in what node/bin/main.c logs last (shoal_app_failure). */
    const char *failure = shoal_app_failure(app);
    char expected_prefix[64] = "";
    if (result->failed != NULL)
        snprintf(expected_prefix, sizeof expected_prefix, "extension %s: ", result->failed);
    char logged[600] = "";
    if (failure != NULL)
        snprintf(logged, sizeof logged, "\"event\":\"setup_invalid\",\"message\":\"%s\"", failure);
    if (result->rc == 0 && failure != NULL)
        snprintf(problem, sizeof problem, "everything loaded, yet setup failed: %s", failure);
    else if (result->rc != 0 && failure == NULL)
        snprintf(problem, sizeof problem, "no reason was given");
    else if (result->rc != 0 && strncmp(failure, expected_prefix, strlen(expected_prefix)) != 0)
        snprintf(problem, sizeof problem, "the reason does not name the extension: %s", failure);
    else if (result->rc != 0 && strstr(failure, "out of memory") == NULL)
        snprintf(problem, sizeof problem, "the reason does not say it is memory: %s", failure);
    else if (result->rc != 0 && strstr(result->log, logged) == NULL)
        snprintf(problem, sizeof problem, "no setup_invalid line says: %s", failure);

    /* An instance is the extension's own or nothing, never a block that
     * was freed: read its first byte (ASan and valgrind report a freed
     * one), then ask the record (which reports it in any build). Every
     * extension with a create that loaded has one. */
    bool reached_failed = false;
    for (size_t i = 0; i < s->count; i++) {
        const shoal_extension *extension = s->extensions[i];
        reached_failed = reached_failed || (result->failed != NULL && strcmp(extension->name, result->failed) == 0);
        const unsigned char *instance = shoal_app_instance(app, extension);
        if (instance == NULL) {
            if (extension->create != NULL && !reached_failed && problem[0] == '\0')
                snprintf(problem, sizeof problem, "'%s' loaded without its instance", extension->name);
            continue;
        }
        first_bytes ^= *instance;
        if (!alloc_faults_is_live((const void *)instance) && problem[0] == '\0')
            snprintf(problem, sizeof problem, "the instance of '%s' was freed", extension->name);
    }
    int frozen = shoal_app_freeze(app);
    shoal_app_free(app);
    size_t left = alloc_faults_live();
    bool overflowed = alloc_faults_overflowed();
    alloc_faults_track(false);

    const char *where = result->failed != NULL ? result->failed : "no extension";
    assert_false(overflowed);
    if (problem[0] == '\0' && left != 0)
        snprintf(problem, sizeof problem, "%zu blocks are left after shoal_app_free", left);
    /* A node that failed to set up must not serve. */
    if (problem[0] == '\0' && frozen != (result->rc == 0 ? 0 : -1))
        snprintf(problem, sizeof problem, "shoal_app_freeze returned %d", frozen);
    if (problem[0] != '\0')
        snprintf(result->problem, sizeof result->problem, "allocation %lu failed in %s: %s", nth, where, problem);
}

/* The error lines of a log, one by one. */
static void print_error_lines(const char *log)
{
    for (const char *line = log; *line != '\0';) {
        size_t length = strcspn(line, "\n");
        const char *level = strstr(line, "\"level\":\"error\"");
        if (level != NULL && level < line + length)
            print_error("  %.*s\n", (int)length, line);
        line += length + (line[length] == '\n');
    }
}

/* Prints what went wrong at one n with its log; returns 1 when something did. */
static int report(const attempt *result)
{
    if (result->problem[0] == '\0')
        return 0;
    print_error("%s\n", result->problem);
    print_error_lines(result->log);
    return 1;
}

static void every_allocation_of_every_init_can_fail_cleanly(void **state)
{
    setup *s = *state;
    attempt result;
    int problems = 0;
    /* Without a failure, everything loads and nothing is left. */
    attempt_setup(s, 0, &result);
    problems += report(&result);
    assert_false(result.injected);
    assert_int_equal(result.rc, 0);

    unsigned long nth = 1;
    size_t failures_by_extension[10] = {0};
    for (;; nth++) {
        assert_true(nth < 20000);
        attempt_setup(s, nth, &result);
        if (!result.injected)
            break;
        problems += report(&result);
        /* An allocation that fails fails the setup: none is optional. */
        if (result.rc == 0) {
            print_error("allocation %lu failed, yet every extension loaded\n", nth);
            print_error_lines(result.log);
            problems++;
            continue;
        }
        for (size_t i = 0; i < s->count; i++)
            if (strcmp(s->extensions[i]->name, result.failed) == 0)
                failures_by_extension[i]++;
    }
    assert_int_equal(result.rc, 0);
    problems += report(&result);
    /* Each extension's init allocates (a hook, a route, its state), so
     * each was failed at least once. */
    for (size_t i = 0; i < s->count; i++)
        if (failures_by_extension[i] == 0) {
            print_error("no allocation failed inside %s\n", s->extensions[i]->name);
            problems++;
        }
    print_message("%lu allocations failed one at a time, %d of them badly\n", nth - 1, problems);
    assert_int_equal(problems, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_allocation_of_every_init_can_fail_cleanly, set_up, tear_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
