/* node/main.c: shoal-node, one stateless API node. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shoal/version.h>

#include "api/api.h"
#include "bench/bench.h"
#include "budget.h"
#include "builtin_migrations.h"
#include "config.h"
#include "context.h"
#include "ext/cors.h"
#include "ext/idempotency.h"
#include "ext/rate_limit.h"
#include "ext/request_id.h"
#include "ext/security_headers.h"
#include "ext/session.h"
#include "health.h"
#include "http.h"
#include "l1.h"
#include "log.h"
#include "metrics.h"
#include "seed_command.h"
#include "store.h"

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static void sleep_ms(int milliseconds)
{
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

typedef enum migrate_outcome { MIGRATED, MIGRATE_FAILED, MIGRATE_INTERRUPTED } migrate_outcome;

/* Nodes may start before PostgreSQL accepts connections (compose starts
 * them together); wait for it up to the startup timeout. While waiting, a
 * stop signal (when stop_signals is given and blocked) ends the wait at once
 * instead of after the timeout. */
static migrate_outcome migrate(const shoal_config *config, const sigset_t *stop_signals)
{
    store_config store = shoal_config_store(config);
    uint64_t deadline = monotonic_ms() + (uint64_t)config->startup_timeout_s * 1000u;
    for (;;) {
        char error[512] = "";
        store_migrate_report report = {0};
        store_status status = store_migrate(&store, store_builtin_migrations,
                                            store_builtin_migration_count, &report, error, sizeof error);
        if (status == STORE_OK) {
            shoal_log(SHOAL_LOG_INFO, "migrate", "schema at version %d (%d applied now)",
                      report.current_version, report.applied);
            return MIGRATED;
        }
        if (status == STORE_ERROR || monotonic_ms() >= deadline) {
            shoal_log(SHOAL_LOG_ERROR, "migrate", "%s", error);
            return MIGRATE_FAILED;
        }
        shoal_log(SHOAL_LOG_WARNING, "migrate", "waiting for PostgreSQL: %s", error);
        if (stop_signals == NULL) {
            sleep_ms(500);
            continue;
        }
        struct timespec pause = {0, 500 * 1000 * 1000};
        int received = sigtimedwait(stop_signals, NULL, &pause);
        if (received > 0) {
            shoal_log(SHOAL_LOG_INFO, "stop", "signal %d while waiting for PostgreSQL", received);
            return MIGRATE_INTERRUPTED;
        }
    }
}

static const char *environment(const char *name)
{
    return getenv(name);
}

static int setup(shoal_app *app, shoal_tier_monitor *monitor)
{
    /* Order matters: the request id comes first so that every later hook,
     * and the access log, sees it. CORS answers preflights before anything
     * is counted; rate limits come before idempotency keys, so a replay
     * counts as a request. Sessions only reserve state here (and start
     * libsodium); they are looked up when a handler asks. */
    shoal_extension health = shoal_health_extension(monitor);
    if (shoal_app_extend(app, &shoal_request_id_extension) != 0 ||
        shoal_app_extend(app, &shoal_security_headers_extension) != 0 ||
        shoal_app_extend(app, &shoal_cors_extension) != 0 || shoal_app_extend(app, &shoal_rate_limit_extension) != 0 ||
        shoal_app_extend(app, &shoal_session_extension) != 0 ||
        shoal_app_extend(app, &shoal_idempotency_extension) != 0 || shoal_app_extend(app, &health) != 0 ||
        shoal_app_extend(app, &shoal_metrics_extension) != 0 ||
        shoal_app_extend(app, &shoal_bench_extension) != 0 || shoal_app_extend(app, &shoal_api_extension) != 0)
        return -1;
    return 0;
}

/* Opens every worker's connections before the node turns ready, within
 * the startup timeout; a tier that cannot be reached is left for the
 * workers' first requests, as it would be after an outage. */
static int warm_workers(shoal_app *app, const shoal_config *config, uint64_t startup_deadline, bool skip_postgres)
{
    uint64_t started = monotonic_ms();
    shoal_warm_report report;
    if (shoal_app_warm_workers(app, config->threads, startup_deadline, skip_postgres, &report) != 0)
        return -1;
    unsigned long long took = (unsigned long long)(monotonic_ms() - started);
    if (report.postgres == report.workers && report.redis == report.workers) {
        shoal_log(SHOAL_LOG_INFO, "warm", "%d workers connected to PostgreSQL (statements prepared) and Redis in %llu ms",
                  report.workers, took);
        return 0;
    }
    const char *postgres_reason = skip_postgres ? "not reachable at start" : report.postgres_error;
    shoal_log(SHOAL_LOG_WARNING, "warm",
              "of %d workers %d connected to PostgreSQL and %d to Redis in %llu ms%s%s%s; the others connect on "
              "their first request",
              report.workers, report.postgres, report.redis, took,
              report.timed_out ? " (the startup timeout ran out)" : "",
              postgres_reason[0] != '\0' ? "; PostgreSQL: " : "", postgres_reason);
    return 0;
}

/* Waits for SIGTERM or SIGINT; returns the signal. */
static int wait_for_stop(const sigset_t *signals)
{
    for (;;) {
        int received = 0;
        if (sigwait(signals, &received) == 0)
            return received;
    }
}

/* SIGTERM: readiness turns 503 now, serving goes on for the drain delay so
 * that HAProxy's health checks take the node out, then the listener closes
 * and in-flight requests get the grace period. SIGINT (or a second signal)
 * skips what is left of the drain delay. */
static void drain(shoal_http *http, shoal_app *app, const shoal_config *config, const sigset_t *signals,
                  int first_signal)
{
    shoal_app_set_readiness(app, SHOAL_DRAINING);
    if (first_signal == SIGTERM && config->drain_delay_ms > 0) {
        shoal_log(SHOAL_LOG_INFO, "drain", "SIGTERM: draining for %d ms", config->drain_delay_ms);
        struct timespec delay = {config->drain_delay_ms / 1000, (long)(config->drain_delay_ms % 1000) * 1000000L};
        siginfo_t info;
        int received = sigtimedwait(signals, &info, &delay);
        if (received > 0)
            shoal_log(SHOAL_LOG_INFO, "drain", "signal %d: cutting the drain delay short", received);
    }
    shoal_http_stop_accepting(http);
    uint64_t deadline = monotonic_ms() + (uint64_t)config->grace_period_ms;
    while (shoal_app_in_flight(app) > 0 && monotonic_ms() < deadline)
        sleep_ms(10);
    int left = shoal_app_in_flight(app);
    if (left > 0)
        shoal_log(SHOAL_LOG_WARNING, "drain", "grace period over with %d requests in flight", left);
    else
        shoal_log(SHOAL_LOG_INFO, "drain", "no requests in flight");
}

int main(int argc, char **argv)
{
    shoal_config config;
    char error[512];
    if (shoal_config_load(&config, argc, argv, environment, error, sizeof error) != 0) {
        fprintf(stderr, "shoal-node: %s\nTry 'shoal-node --help'.\n", error);
        return 2;
    }
    switch (config.command) {
    case SHOAL_COMMAND_HELP:
        shoal_config_usage(stdout, "shoal-node");
        shoal_config_free(&config);
        return 0;
    case SHOAL_COMMAND_VERSION:
        printf("shoal-node %s\n", shoal_version());
        shoal_config_free(&config);
        return 0;
    case SHOAL_COMMAND_MIGRATE: {
        shoal_log_set_node(config.node_name);
        int rc = migrate(&config, NULL) == MIGRATED ? 0 : 1;
        shoal_config_free(&config);
        return rc;
    }
    case SHOAL_COMMAND_SEED: {
        shoal_log_set_node(config.node_name);
        int rc = SHOAL_SEED_FAILED;
        if (!config.migrate || migrate(&config, NULL) == MIGRATED)
            rc = shoal_seed_run(&config, stdout, stderr, NULL);
        shoal_config_free(&config);
        return rc;
    }
    case SHOAL_COMMAND_SERVE:
        break;
    }
    shoal_log_set_node(config.node_name);

    /* Blocked here, before any thread exists, so that every thread inherits
     * the mask and only sigwait below sees the signals. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN); /* a peer that vanished is an error code, not a death */

    /* Migrations wait for PostgreSQL, the budget check and the workers'
     * connections come after them: all within the one startup timeout. */
    uint64_t startup_deadline = monotonic_ms() + (uint64_t)config.startup_timeout_s * 1000u;
    if (config.migrate) {
        migrate_outcome outcome = migrate(&config, &stop_signals);
        if (outcome != MIGRATED) {
            shoal_config_free(&config);
            return outcome == MIGRATE_INTERRUPTED ? 0 : 1;
        }
    }
    shoal_budget_outcome budget = shoal_budget_check(&config);
    if (budget == SHOAL_BUDGET_EXCEEDED && config.strict) {
        shoal_config_free(&config);
        return 1;
    }

    shoal_tier_monitor *monitor = shoal_tier_monitor_start(&config, SHOAL_TIER_PROBE_INTERVAL_MS);
    shoal_app *app = monitor != NULL ? shoal_app_new(&config) : NULL;
    if (app == NULL || setup(app, monitor) != 0) {
        const char *why = app != NULL ? shoal_app_failure(app) : NULL;
        shoal_log(SHOAL_LOG_ERROR, "start", "setup failed, not serving: %s",
                  why != NULL ? why : monitor == NULL ? "the tier monitor did not start" : "out of memory");
        shoal_app_free(app);
        shoal_tier_monitor_stop(monitor);
        shoal_config_free(&config);
        return 1;
    }
    /* Before serving: the L1 serves nothing until the subscriber is in. */
    if (shoal_app_start_invalidation(app, error, sizeof error) != 0) {
        shoal_log(SHOAL_LOG_ERROR, "start", "invalidation subscriber: %s", error);
        shoal_app_free(app);
        shoal_tier_monitor_stop(monitor);
        shoal_config_free(&config);
        return 1;
    }
    /* Frozen here rather than by shoal_http_start (which freezes again, a
     * no-op): the workers' new connections prepare the registry's
     * statements, which must all be there. PostgreSQL that the budget check
     * just could not reach is not tried again for each worker. */
    if (shoal_app_freeze(app) != 0 ||
        warm_workers(app, &config, startup_deadline, budget == SHOAL_BUDGET_UNREACHABLE) != 0) {
        shoal_log(SHOAL_LOG_ERROR, "start", "setup failed");
        shoal_app_free(app);
        shoal_tier_monitor_stop(monitor);
        shoal_config_free(&config);
        return 1;
    }
    shoal_http *http = shoal_http_start(app, error, sizeof error);
    if (http == NULL) {
        shoal_log(SHOAL_LOG_ERROR, "start", "%s", error);
        shoal_app_free(app);
        shoal_tier_monitor_stop(monitor);
        shoal_config_free(&config);
        return 1;
    }
    shoal_app_set_readiness(app, SHOAL_READY);
    shoal_log(SHOAL_LOG_INFO, "start", "serving on %s:%d with %d worker threads, admin on %s:%d; cache in %s, L1 %s",
              config.bind_address, shoal_http_port(http), config.threads,
              config.admin_bind_address[0] != '\0' ? config.admin_bind_address : config.bind_address,
              shoal_http_admin_port(http),
              shoal_config_cache_separate(&config) ? "its own Redis" : "the sessions' Redis",
              cache_l1_enabled(shoal_app_l1(app)) ? "on" : "off");

    int received = wait_for_stop(&stop_signals);
    drain(http, app, &config, &stop_signals, received);
    shoal_http_stop(http);
    shoal_app_free(app);
    shoal_tier_monitor_stop(monitor);
    shoal_log(SHOAL_LOG_INFO, "stop", "stopped");
    shoal_config_free(&config);
    return 0;
}
