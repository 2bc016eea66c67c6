/* tests/unit/node/lib/config_test.c: node/lib/config.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/config.h>
#include <shoal/ext/cors.h>
#include <shoal/ext/idempotency.h>
#include <shoal/ext/rate_limit.h>
#include <shoal/ext/session.h>
#include <shoal/password.h>

#include "conduit/api.h"
#include "cpus.h"
#include "conduit/seed_command.h"
#include "demo_settings.h"
#include "techempower/bench.h"

/* The owners' values, which shoal_config_load keeps in config.settings. */
#define OWNER(c, type, table) ((const type *)shoal_settings_of((c).settings, &(table)))
#define CORS(c) OWNER(c, shoal_cors_settings_values, shoal_cors_settings)
#define SESSION(c) OWNER(c, shoal_session_settings_values, shoal_session_settings)
#define RATE(c) OWNER(c, shoal_rate_limit_settings_values, shoal_rate_limit_settings)
#define IDEMPOTENCY(c) OWNER(c, shoal_idempotency_settings_values, shoal_idempotency_settings)
#define PASSWORD(c) OWNER(c, shoal_password_settings_values, shoal_password_settings)
#define CONDUIT(c) OWNER(c, shoal_conduit_settings_values, shoal_conduit_settings)
#define TECHEMPOWER(c) OWNER(c, shoal_techempower_settings_values, shoal_techempower_settings)
#define SEED(c) OWNER(c, shoal_seed_flags_values, shoal_seed_flags)


/* The environment the loader sees: name/value pairs, NULL-terminated. */
static const char *const *environment;

static const char *fake_env(const char *name)
{
    for (size_t i = 0; environment != NULL && environment[i] != NULL; i += 2)
        if (strcmp(environment[i], name) == 0)
            return environment[i + 1];
    return NULL;
}

static char error[256];

/* argv without the program name, NULL-terminated; env pairs or NULL. */
static int load(shoal_config *config, const char *const *env, const char *const *args)
{
    char *argv[32] = {"shoal-node"};
    int argc = 1;
    for (size_t i = 0; args != NULL && args[i] != NULL; i++)
        argv[argc++] = (char *)args[i];
    environment = env;
    error[0] = '\0';
    /* As shoal-node loads them: its tables and defaults beside the library's. */
    return shoal_demo_config_load(config, argc, argv, fake_env, error, sizeof error);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void assert_loads(shoal_config *config, const char *const *env, const char *const *args)
{
    if (load(config, env, args) != 0)
        fail_msg("load failed: %s", error);
}

/* The message must name the setting (or argument) at fault. */
static void assert_fails_naming(const char *const *env, const char *const *args, const char *named)
{
    shoal_config config;
    int rc = load(&config, env, args);
    if (rc != -1)
        fail_msg("load accepted what should name '%s'", named);
    if (strstr(error, named) == NULL)
        fail_msg("message '%s' does not name '%s'", error, named);
    /* A failed load has freed what it allocated. */
    assert_null(config.bind_address);
    assert_null(config.database_url);
}

static void test_defaults(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, NULL);
    assert_int_equal(c.command, SHOAL_COMMAND_SERVE);
    assert_string_equal(c.bind_address, "127.0.0.1");
    assert_int_equal(c.port, 8081);
    assert_string_equal(c.admin_bind_address, ""); /* the --bind address */
    assert_int_equal(c.admin_port, 9081);
    assert_int_equal(c.threads, shoal_cpus_available()); /* one worker per CPU */
    shoal_config_free(&c);
    assert_loads(&c, NULL, ARGS("--threads", "0"));
    assert_int_equal(c.threads, shoal_cpus_available());
    assert_int_equal(c.max_connections, 1024);
    assert_int_equal(c.listen_backlog, 1024);
    assert_int_equal(c.connection_timeout_s, 30);
    assert_int_equal(c.max_header_bytes, 16 * 1024);
    assert_int_equal(c.max_body_bytes, 1024 * 1024);
    assert_int_equal(c.max_json_depth, 32);
    assert_string_equal(CORS(c)->origins, "*");
    assert_int_equal(c.drain_delay_ms, 5000);
    assert_int_equal(c.grace_period_ms, 10000);
    assert_int_equal(c.startup_timeout_s, 30);
    assert_true(c.migrate);
    assert_true(TECHEMPOWER(c)->bench);
    assert_int_equal(c.access_log_sample, 1);
    assert_string_equal(c.database_url, "postgresql://shoal:shoal@127.0.0.1:5433/shoal");
    assert_int_equal(c.database_connect_timeout_s, 2);
    assert_int_equal(c.database_timeout_ms, 2000);
    assert_int_equal(c.database_statement_timeout_ms, 1500);
    assert_int_equal(c.database_spill_after_ms, 20);
    assert_int_equal(shoal_config_store(&c).spill_after_ms, 20);
    assert_string_equal(c.redis_url, "redis://127.0.0.1:6380/0");
    assert_int_equal(c.redis_timeout_ms, 1000);
    assert_int_equal(SESSION(c)->ttl_s, 14 * 86400);
    /* shoal-node's default: the credential endpoints only. */
    assert_string_equal(RATE(c)->rules, "POST /api/users/login=10/min burst 5,POST /api/users=20/h burst 10");
    assert_int_equal(IDEMPOTENCY(c)->ttl_s, 86400);
    /* The library's default is 0.1's layout; shoal_main gives a service's. */
    assert_string_equal(c.redis_prefix, "");
    assert_string_equal(c.session_prefix, "");
    cache_config redis = shoal_config_cache(&c), tier = shoal_config_cache_tier(&c);
    assert_string_equal(redis.key_prefix, "");
    assert_string_equal(tier.session_prefix, "");
    /* An empty node name becomes the host name. */
    assert_non_null(c.node_name);
    assert_true(c.node_name[0] != '\0');
    shoal_config_free(&c);
    assert_null(c.node_name);
}

static void test_environment_overrides_defaults_and_flags_override_both(void **state)
{
    (void)state;
    shoal_config c;
    const char *const *env = ENV("SHOAL_PORT", "9000", "SHOAL_THREADS", "6", "SHOAL_NODE_NAME", "node-a",
                                 "DATABASE_URL", "postgresql://env/db", "REDIS_URL", "redis://env:1/2");
    assert_loads(&c, env, NULL);
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.threads, 6);
    assert_string_equal(c.node_name, "node-a");
    assert_string_equal(c.database_url, "postgresql://env/db");
    assert_string_equal(c.redis_url, "redis://env:1/2");
    shoal_config_free(&c);

    assert_loads(&c, env, ARGS("--port", "9100", "--node-name=node-b"));
    assert_int_equal(c.port, 9100);
    assert_int_equal(c.threads, 6);
    assert_string_equal(c.node_name, "node-b");
    shoal_config_free(&c);
}

static void test_flags_take_a_separate_or_attached_value(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, ARGS("--port", "0", "--threads=16", "--cors-origins=", "--bind", "0.0.0.0",
                                "--database-url=postgresql:///shoal?host=/tmp&port=5432"));
    assert_int_equal(c.port, 0);
    assert_int_equal(c.threads, 16);
    assert_string_equal(CORS(c)->origins, "");
    assert_string_equal(c.bind_address, "0.0.0.0");
    /* Only the first '=' separates the flag from its value. */
    assert_string_equal(c.database_url, "postgresql:///shoal?host=/tmp&port=5432");
    shoal_config_free(&c);
}

static void test_a_later_flag_wins(void **state)
{
    (void)state;
    shoal_config c;
    /* Neither value is the default, so the default cannot pass for either. */
    assert_loads(&c, NULL, ARGS("--cors-origins", "https://a.example", "--cors-origins", "https://b.example"));
    assert_string_equal(CORS(c)->origins, "https://b.example");
    shoal_config_free(&c);
}

static void test_sizes_accept_k_m_g_suffixes(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, ARGS("--max-header-bytes", "32k", "--max-body-bytes", "2m"));
    assert_int_equal(c.max_header_bytes, 32 * 1024);
    assert_int_equal(c.max_body_bytes, 2 * 1024 * 1024);
    shoal_config_free(&c);

    assert_loads(&c, ENV("SHOAL_MAX_BODY_BYTES", "1G"), ARGS("--max-header-bytes=3KiB"));
    assert_int_equal(c.max_body_bytes, 1024 * 1024 * 1024);
    assert_int_equal(c.max_header_bytes, 3 * 1024);
    shoal_config_free(&c);

    assert_loads(&c, NULL, ARGS("--max-body-bytes", "0", "--max-header-bytes", "1024"));
    assert_int_equal(c.max_body_bytes, 0);
    assert_int_equal(c.max_header_bytes, 1024);
    shoal_config_free(&c);
}

static void test_session_ttl_is_a_minute_to_a_year(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, ENV("SHOAL_SESSION_TTL", "3600"), NULL);
    assert_int_equal(SESSION(c)->ttl_s, 3600);
    shoal_config_free(&c);
    assert_fails_naming(NULL, ARGS("--session-ttl", "59"), "--session-ttl");
    assert_fails_naming(NULL, ARGS("--session-ttl", "31536001"), "--session-ttl");
    assert_fails_naming(NULL, ARGS("--session-ttl", "1d"), "--session-ttl");
}

static void test_rate_limits_are_checked_at_start(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, ENV("SHOAL_RATE_LIMITS", "GET|HEAD /api/articles=100/s burst 20 fail-open"), NULL);
    assert_string_equal(RATE(c)->rules, "GET|HEAD /api/articles=100/s burst 20 fail-open");
    shoal_config_free(&c);
    assert_loads(&c, ENV("SHOAL_RATE_LIMITS", "POST /x=1/s"), ARGS("--rate-limits="));
    assert_string_equal(RATE(c)->rules, "");
    shoal_config_free(&c);
    assert_fails_naming(NULL, ARGS("--rate-limits", "POST /api/users/login=10/fortnight"), "--rate-limits");
    assert_fails_naming(NULL, ARGS("--rate-limits", "POST /api/users/login=10/fortnight"), "fortnight");
    assert_fails_naming(ENV("SHOAL_RATE_LIMITS", "POST /a=1/s,,POST /b=1/s"), NULL, "rule 2 is empty");
}

static void test_password_cost_and_login_limits(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, NULL);
    /* libsodium's interactive level, and a bounded queue. */
    assert_int_equal(PASSWORD(c)->ops_limit, 2);
    assert_int_equal(PASSWORD(c)->mem_limit, 64 * 1024 * 1024);
    assert_int_equal(PASSWORD(c)->concurrency, 4);
    assert_int_equal(PASSWORD(c)->queue_timeout_ms, 1000);
    assert_true(CONDUIT(c)->api);
    assert_string_equal(CONDUIT(c)->login_failures_per_address, "20/15min burst 20");
    assert_string_equal(CONDUIT(c)->login_failures_per_account, "5/15min burst 5");
    shoal_config_free(&c);
    assert_loads(&c, ENV("SHOAL_PASSWORD_MEM_LIMIT", "256m"), ARGS("--password-ops-limit", "3"));
    assert_int_equal(PASSWORD(c)->mem_limit, 256 * 1024 * 1024);
    assert_int_equal(PASSWORD(c)->ops_limit, 3);
    shoal_config_free(&c);
    assert_fails_naming(NULL, ARGS("--password-ops-limit", "0"), "--password-ops-limit");
    assert_fails_naming(NULL, ARGS("--password-mem-limit", "1k"), "--password-mem-limit");
    assert_fails_naming(NULL, ARGS("--password-concurrency", "0"), "--password-concurrency");
    assert_fails_naming(NULL, ARGS("--login-failures-per-address", "5/fortnight"), "--login-failures-per-address");
    assert_fails_naming(ENV("SHOAL_LOGIN_FAILURES_PER_ACCOUNT", "many"), NULL, "--login-failures-per-account");
}

static void test_idempotency_ttl_is_a_second_to_thirty_days(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, ENV("SHOAL_IDEMPOTENCY_TTL", "1"), NULL);
    assert_int_equal(IDEMPOTENCY(c)->ttl_s, 1);
    shoal_config_free(&c);
    assert_loads(&c, NULL, ARGS("--idempotency-ttl", "2592000"));
    assert_int_equal(IDEMPOTENCY(c)->ttl_s, 30 * 86400);
    shoal_config_free(&c);
    assert_fails_naming(NULL, ARGS("--idempotency-ttl", "0"), "--idempotency-ttl");
    assert_fails_naming(NULL, ARGS("--idempotency-ttl", "2592001"), "--idempotency-ttl");
}

static void test_bad_sizes_are_rejected(void **state)
{
    (void)state;
    assert_fails_naming(NULL, ARGS("--max-body-bytes", "2g"), "--max-body-bytes");
    assert_fails_naming(NULL, ARGS("--max-body-bytes", "1.5m"), "1.5m");
    assert_fails_naming(NULL, ARGS("--max-body-bytes", "-1"), "--max-body-bytes");
    assert_fails_naming(NULL, ARGS("--max-body-bytes", "k"), "--max-body-bytes");
    assert_fails_naming(NULL, ARGS("--max-body-bytes", "10t"), "--max-body-bytes");
    assert_fails_naming(NULL, ARGS("--max-header-bytes", "1023"), "--max-header-bytes");
    assert_fails_naming(NULL, ARGS("--max-header-bytes", "9999999999999999999k"), "--max-header-bytes");
}

static void test_booleans(void **state)
{
    (void)state;
    static const char *const falsy[] = {"false", "FALSE", "no", "off", "0", "Off"};
    static const char *const truthy[] = {"true", "True", "yes", "on", "1", "YES"};
    for (size_t i = 0; i < 6; i++) {
        shoal_config c;
        assert_loads(&c, ENV("SHOAL_MIGRATE", truthy[i]), ARGS("--migrate", falsy[i]));
        assert_false(c.migrate);
        shoal_config_free(&c);
        assert_loads(&c, ENV("SHOAL_MIGRATE", falsy[i]), ARGS("--migrate", truthy[i]));
        assert_true(c.migrate);
        shoal_config_free(&c);
    }
    assert_fails_naming(NULL, ARGS("--migrate", "maybe"), "--migrate");
    shoal_config c;
    assert_loads(&c, ENV("SHOAL_BENCH", "false"), NULL);
    assert_false(TECHEMPOWER(c)->bench);
    shoal_config_free(&c);
    assert_loads(&c, ENV("SHOAL_BENCH", "false"), ARGS("--bench", "true"));
    assert_true(TECHEMPOWER(c)->bench);
    shoal_config_free(&c);
    assert_fails_naming(ENV("SHOAL_MIGRATE", ""), NULL, "SHOAL_MIGRATE");
}

/* --strict (node/lib/include/shoal/budget.h): off unless asked; a boolean flag alone means
 * true, so `--strict --threads 4` does not read --threads as its value. */
static void test_strict_is_off_by_default_and_a_bare_boolean_flag_turns_it_on(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, NULL);
    assert_false(c.strict);
    shoal_config_free(&c);
    assert_loads(&c, ENV("SHOAL_STRICT", "1"), NULL);
    assert_true(c.strict);
    shoal_config_free(&c);
    assert_loads(&c, NULL, ARGS("--strict", "--threads", "5"));
    assert_true(c.strict);
    assert_int_equal(c.threads, 5);
    shoal_config_free(&c);
    assert_loads(&c, NULL, ARGS("--threads", "3", "--strict"));
    assert_true(c.strict);
    assert_int_equal(c.threads, 3);
    shoal_config_free(&c);
    assert_loads(&c, ENV("SHOAL_STRICT", "true"), ARGS("--strict", "false"));
    assert_false(c.strict);
    shoal_config_free(&c);
    assert_loads(&c, NULL, ARGS("--strict=off"));
    assert_false(c.strict);
    shoal_config_free(&c);
    assert_fails_naming(NULL, ARGS("--strict", "maybe"), "--strict");
    /* Flags that take numbers still need their value. */
    assert_fails_naming(NULL, ARGS("--threads", "--strict"), "--threads");
}

static void test_numbers_out_of_range_or_not_numbers_are_rejected(void **state)
{
    (void)state;
    assert_fails_naming(NULL, ARGS("--port", "65536"), "--port");
    assert_fails_naming(NULL, ARGS("--port=-1"), "--port");
    assert_fails_naming(NULL, ARGS("--threads", "-1"), "--threads");
    assert_fails_naming(NULL, ARGS("--threads", "eight"), "--threads");
    assert_fails_naming(NULL, ARGS("--threads", "8x"), "--threads");
    assert_fails_naming(NULL, ARGS("--threads", ""), "--threads");
    assert_fails_naming(NULL, ARGS("--access-log-sample", "99999999999999999999"), "--access-log-sample");
    assert_fails_naming(NULL, ARGS("--max-json-depth", "1001"), "--max-json-depth");
    /* From the environment, the message names the variable and its flag. */
    assert_fails_naming(ENV("SHOAL_THREADS", "many"), NULL, "SHOAL_THREADS");
    assert_fails_naming(ENV("SHOAL_REDIS_TIMEOUT_MS", "0"), NULL, "--redis-timeout-ms");
}

static void test_unknown_flag_and_missing_value_are_rejected(void **state)
{
    (void)state;
    assert_fails_naming(NULL, ARGS("--prot", "80"), "--prot");
    assert_fails_naming(NULL, ARGS("--por=80"), "--por");
    assert_fails_naming(NULL, ARGS("--"), "--");
    assert_fails_naming(NULL, ARGS("--threads", "4", "--port"), "--port");
    assert_fails_naming(NULL, ARGS("-p", "80"), "-p");
}

static void test_commands(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, ARGS("migrate", "--database-url", "postgresql://x/y"));
    assert_int_equal(c.command, SHOAL_COMMAND_MIGRATE);
    assert_string_equal(c.database_url, "postgresql://x/y");
    shoal_config_free(&c);

    assert_loads(&c, NULL, ARGS("serve", "--port", "1"));
    assert_int_equal(c.command, SHOAL_COMMAND_SERVE);
    assert_int_equal(c.port, 1);
    shoal_config_free(&c);

    assert_fails_naming(NULL, ARGS("deploy"), "deploy");
    /* A command comes first or not at all. */
    assert_fails_naming(NULL, ARGS("--port", "1", "migrate"), "migrate");
    assert_fails_naming(NULL, ARGS("migrate", "serve"), "serve");
}

static void test_the_seed_command_and_its_flags(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, ARGS("seed"));
    assert_int_equal(c.command, SHOAL_COMMAND_SEED);
    assert_int_equal(SEED(c)->users, 1000);
    assert_int_equal(SEED(c)->articles, 10000);
    assert_int_equal(SEED(c)->seed, 0);
    assert_false(SEED(c)->reset);
    assert_true(c.migrate);
    shoal_config_free(&c);

    /* Separate or attached values; --reset alone; node settings beside them. */
    assert_loads(&c, NULL,
                 ARGS("seed", "--users", "50", "--articles=200", "--reset", "--seed", "7", "--migrate", "false",
                      "--database-url", "postgresql://x/y"));
    assert_int_equal(SEED(c)->users, 50);
    assert_int_equal(SEED(c)->articles, 200);
    assert_int_equal(SEED(c)->seed, 7);
    assert_true(SEED(c)->reset);
    assert_false(c.migrate);
    assert_string_equal(c.database_url, "postgresql://x/y");
    shoal_config_free(&c);
    assert_loads(&c, NULL, ARGS("seed", "--articles", "0"));
    assert_int_equal(SEED(c)->articles, 0);
    shoal_config_free(&c);

    assert_fails_naming(NULL, ARGS("seed", "--users", "0"), "--users");
    assert_fails_naming(NULL, ARGS("seed", "--users", "10000001"), "--users");
    assert_fails_naming(NULL, ARGS("seed", "--articles", "-1"), "--articles");
    assert_fails_naming(NULL, ARGS("seed", "--articles", "many"), "--articles");
    assert_fails_naming(NULL, ARGS("seed", "--seed", "-3"), "--seed");
    assert_fails_naming(NULL, ARGS("seed", "--users"), "--users");
    assert_fails_naming(NULL, ARGS("seed", "--userss", "5"), "--userss");
    /* Flags of the seed command only. */
    assert_fails_naming(NULL, ARGS("--users", "5"), "--users");
    assert_fails_naming(NULL, ARGS("serve", "--reset"), "--reset");
    assert_fails_naming(NULL, ARGS("migrate", "--articles", "5"), "--articles");
}

static void test_help_and_version_stop_parsing(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, ARGS("--help", "--not-a-flag"));
    assert_int_equal(c.command, SHOAL_COMMAND_HELP);
    shoal_config_free(&c);
    assert_loads(&c, NULL, ARGS("migrate", "-h"));
    assert_int_equal(c.command, SHOAL_COMMAND_HELP);
    shoal_config_free(&c);
    assert_loads(&c, NULL, ARGS("--version"));
    assert_int_equal(c.command, SHOAL_COMMAND_VERSION);
    shoal_config_free(&c);
}

static void test_libpq_variables_replace_the_default_database_url(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, ENV("PGHOST", "/var/run/postgresql", "PGUSER", "app"), NULL);
    assert_string_equal(c.database_url, "");
    shoal_config_free(&c);

    assert_loads(&c, ENV("PGSERVICE", "shoal"), NULL);
    assert_string_equal(c.database_url, "");
    shoal_config_free(&c);

    /* An explicit DATABASE_URL or flag still wins. */
    assert_loads(&c, ENV("PGHOST", "db", "DATABASE_URL", "postgresql://explicit/db"), NULL);
    assert_string_equal(c.database_url, "postgresql://explicit/db");
    shoal_config_free(&c);
    assert_loads(&c, ENV("PGPORT", "5432"), ARGS("--database-url", "postgresql://flag/db"));
    assert_string_equal(c.database_url, "postgresql://flag/db");
    shoal_config_free(&c);

    /* Empty PG* variables do not count. */
    assert_loads(&c, ENV("PGHOST", ""), NULL);
    assert_string_equal(c.database_url, "postgresql://shoal:shoal@127.0.0.1:5433/shoal");
    shoal_config_free(&c);
}

static void test_addresses_and_urls_are_checked_at_start(void **state)
{
    (void)state;
    assert_fails_naming(NULL, ARGS("--bind", "localhost"), "--bind");
    assert_fails_naming(NULL, ARGS("--redis-url", "redis://127.0.0.1:notaport/0"), "--redis-url");
    assert_fails_naming(ENV("DATABASE_URL", "postgresql://[oops"), NULL, "DATABASE_URL");
    assert_fails_naming(NULL, ARGS("--cors-origins", "app.example"), "--cors-origins");
    assert_fails_naming(NULL, ARGS("--cors-origins", "https://app.example/path"), "--cors-origins");
    shoal_config config;
    assert_int_equal(load(&config, NULL, ARGS("--bind", "::1", "--cors-origins", "https://a.example, http://b.example:8080")), 0);
    shoal_config_free(&config);
    assert_int_equal(load(&config, NULL, ARGS("--cors-origins", "*")), 0);
    shoal_config_free(&config);
}

/* The server must cancel a slow statement before the node gives up on the
 * connection, or every slow query costs a reconnect. */
static void test_overload_settings(void **state)
{
    (void)state;
    shoal_config config;
    assert_loads(&config, NULL, NULL);
    assert_int_equal(config.request_deadline_ms, 10000);
    /* 32 per worker, at least 128: a 1- or 2-CPU node must not shed a burst
     * as small as HAProxy's maxconn to it. */
    int per_worker = config.threads * SHOAL_IN_FLIGHT_PER_THREAD;
    assert_int_equal(config.max_in_flight, per_worker > 128 ? per_worker : 128);
    shoal_config_free(&config);
    assert_loads(&config, NULL, ARGS("--threads", "1"));
    assert_int_equal(config.max_in_flight, 128);
    shoal_config_free(&config);
    assert_loads(&config, NULL, ARGS("--threads", "8"));
    assert_int_equal(config.max_in_flight, 256);
    shoal_config_free(&config);

    assert_loads(&config, ENV("SHOAL_REQUEST_DEADLINE_MS", "250", "SHOAL_MAX_IN_FLIGHT", "7"), NULL);
    assert_int_equal(config.request_deadline_ms, 250);
    assert_int_equal(config.max_in_flight, 7);
    shoal_config_free(&config);

    assert_loads(&config, NULL, ARGS("--threads", "2", "--request-deadline-ms", "0", "--max-in-flight", "0"));
    assert_int_equal(config.request_deadline_ms, 0); /* no deadline */
    assert_int_equal(config.max_in_flight, SHOAL_IN_FLIGHT_MIN); /* 2 x 32 is under the floor */
    shoal_config_free(&config);

    assert_fails_naming(NULL, ARGS("--max-in-flight", "-1"), "--max-in-flight");
    assert_fails_naming(ENV("SHOAL_REQUEST_DEADLINE_MS", "soon"), NULL, "SHOAL_REQUEST_DEADLINE_MS");
}

static void test_redis_prefixes(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, ENV("SHOAL_REDIS_PREFIX", "hello:"), NULL);
    assert_string_equal(c.redis_prefix, "hello:");
    assert_string_equal(c.session_prefix, "hello:"); /* sessions follow */
    cache_config redis = shoal_config_cache(&c), tier = shoal_config_cache_tier(&c);
    assert_string_equal(redis.key_prefix, "hello:");
    assert_string_equal(redis.session_prefix, "hello:");
    assert_string_equal(tier.key_prefix, "hello:");
    shoal_config_free(&c);
    /* Shared on purpose: another service's sessions, with keys of its own. */
    assert_loads(&c, ENV("SHOAL_REDIS_PREFIX", "hello:"), ARGS("--session-prefix", ""));
    assert_string_equal(c.redis_prefix, "hello:");
    assert_string_equal(c.session_prefix, "");
    redis = shoal_config_cache(&c);
    assert_string_equal(redis.session_prefix, "");
    shoal_config_free(&c);
    assert_fails_naming(NULL, ARGS("--redis-prefix", "two words"), "--redis-prefix");
    assert_fails_naming(ENV("SHOAL_REDIS_PREFIX", "glob*"), NULL, "SHOAL_REDIS_PREFIX");
    assert_fails_naming(NULL, ARGS("--session-prefix", "x{y}"), "--session-prefix");
    assert_fails_naming(NULL, ARGS("--redis-prefix", "0123456789012345678901234567890123456789:"), "longer than 40");
}

/* The spill lane's threshold reaches the pipe; 0 turns the lane off. */
static void test_spill_after_reaches_the_store_config(void **state)
{
    (void)state;
    assert_fails_naming(NULL, ARGS("--database-spill-after-ms", "-1"), "--database-spill-after-ms");
    shoal_config config;
    assert_int_equal(load(&config, NULL, ARGS("--database-spill-after-ms", "0")), 0);
    assert_int_equal(shoal_config_store(&config).spill_after_ms, 0);
    shoal_config_free(&config);
    assert_int_equal(load(&config, ENV("SHOAL_DATABASE_SPILL_AFTER_MS", "35"), NULL), 0);
    assert_int_equal(shoal_config_store(&config).spill_after_ms, 35);
    shoal_config_free(&config);
}

static void test_statement_timeout_stays_below_the_answer_timeout(void **state)
{
    (void)state;
    assert_fails_naming(NULL, ARGS("--database-statement-timeout-ms", "2000"), "--database-statement-timeout-ms");
    assert_fails_naming(ENV("SHOAL_DATABASE_STATEMENT_TIMEOUT_MS", "900"), ARGS("--database-timeout-ms", "800"),
                        "SHOAL_DATABASE_STATEMENT_TIMEOUT_MS");
    assert_fails_naming(NULL, ARGS("--database-statement-timeout-ms", "-1"), "--database-statement-timeout-ms");
    shoal_config config;
    assert_int_equal(load(&config, NULL, ARGS("--database-statement-timeout-ms", "0", "--database-timeout-ms", "10")), 0);
    assert_int_equal(shoal_config_store(&config).statement_timeout_ms, 0);
    shoal_config_free(&config);
    assert_int_equal(load(&config, ENV("SHOAL_DATABASE_STATEMENT_TIMEOUT_MS", "250"), NULL), 0);
    store_config store = shoal_config_store(&config);
    assert_int_equal(store.statement_timeout_ms, 250);
    assert_int_equal(store.answer_timeout_ms, 2000);
    assert_null(store.registry); /* the app adds it; the tier monitor never has one */
    shoal_config_free(&config);
}

static void test_redis_url_must_use_the_redis_scheme(void **state)
{
    (void)state;
    assert_fails_naming(ENV("REDIS_URL", "http://127.0.0.1:6379"), NULL, "REDIS_URL");
    assert_fails_naming(NULL, ARGS("--redis-url", "127.0.0.1:6379"), "--redis-url");
    assert_fails_naming(NULL, ARGS("--redis-url", ""), "--redis-url");
}

static void test_the_cache_may_have_its_own_instance(void **state)
{
    (void)state;
    shoal_config c;
    assert_loads(&c, NULL, NULL);
    assert_string_equal(c.cache_url, "");
    assert_false(shoal_config_cache_separate(&c));
    assert_string_equal(shoal_config_cache_tier(&c).url, c.redis_url);
    assert_int_equal(c.l1_entries, 10000);
    shoal_config_free(&c);

    /* The same instance spelt differently is still one instance. */
    assert_loads(&c, ENV("REDIS_URL", "redis://127.0.0.1:6380/0"), ARGS("--cache-url", "redis://127.0.0.1:6380"));
    assert_false(shoal_config_cache_separate(&c));
    shoal_config_free(&c);

    assert_loads(&c, ENV("SHOAL_CACHE_URL", "redis://127.0.0.1:6381/0", "SHOAL_L1_ENTRIES", "0"), NULL);
    assert_true(shoal_config_cache_separate(&c));
    assert_string_equal(shoal_config_cache_tier(&c).url, "redis://127.0.0.1:6381/0");
    assert_int_equal(c.l1_entries, 0);
    shoal_config_free(&c);

    assert_fails_naming(ENV("SHOAL_CACHE_URL", "http://127.0.0.1:6381"), NULL, "--cache-url");
    assert_fails_naming(NULL, ARGS("--l1-entries", "-1"), "--l1-entries");
    assert_fails_naming(NULL, ARGS("--l1-ttl-ms", "0"), "--l1-ttl-ms");

    /* Stale if error: five minutes unless told; 0 turns it off. */
    assert_loads(&c, NULL, NULL);
    assert_int_equal(c.cache_stale_if_error_ms, 300000);
    shoal_config_free(&c);
    assert_loads(&c, ENV("SHOAL_CACHE_STALE_IF_ERROR_MS", "0"), NULL);
    assert_int_equal(c.cache_stale_if_error_ms, 0);
    shoal_config_free(&c);
    assert_loads(&c, ENV("SHOAL_CACHE_STALE_IF_ERROR_MS", "0"), ARGS("--cache-stale-if-error-ms", "1500"));
    assert_int_equal(c.cache_stale_if_error_ms, 1500);
    shoal_config_free(&c);
    assert_fails_naming(NULL, ARGS("--cache-stale-if-error-ms", "-1"), "--cache-stale-if-error-ms");
}

/* The admin listener needs a port of its own: on the public one its routes
 * would be public again. Both at 0 (any free port) is two free ports. */
static void test_the_admin_listener_has_its_own_port_and_address(void **state)
{
    (void)state;
    assert_fails_naming(NULL, ARGS("--port", "8090", "--admin-port", "8090"), "--admin-port");
    assert_fails_naming(ENV("SHOAL_ADMIN_PORT", "8081"), NULL, "SHOAL_ADMIN_PORT");
    assert_fails_naming(NULL, ARGS("--admin-bind", "localhost"), "--admin-bind");
    assert_fails_naming(NULL, ARGS("--admin-port", "65536"), "--admin-port");
    shoal_config config;
    assert_int_equal(load(&config, NULL, ARGS("--port", "0", "--admin-port", "0", "--admin-bind", "::1")), 0);
    assert_string_equal(config.admin_bind_address, "::1");
    assert_int_equal(config.admin_port, 0);
    shoal_config_free(&config);
    assert_int_equal(load(&config, ENV("SHOAL_ADMIN_PORT", "9999"), NULL), 0);
    assert_int_equal(config.admin_port, 9999);
    shoal_config_free(&config);
}

static void test_bind_address_must_not_be_empty(void **state)
{
    (void)state;
    assert_fails_naming(ENV("SHOAL_BIND", ""), NULL, "--bind");
}

/* Static, because open_memstream writes to these until fclose and GCC
 * cannot see that locals handed to it stay valid. */
static char *memstream_text;
static size_t memstream_length;

static char *usage_text(void)
{
    FILE *out = open_memstream(&memstream_text, &memstream_length);
    assert_non_null(out);
    shoal_config_usage(out, "shoal-test");
    assert_int_equal(fclose(out), 0);
    assert_int_equal(strlen(memstream_text), memstream_length);
    return memstream_text;
}

static void test_usage_lists_every_flag_and_variable(void **state)
{
    (void)state;
    static const char *const expected[][2] = {
        {"--bind", "SHOAL_BIND"},
        {"--port", "SHOAL_PORT"},
        {"--admin-bind", "SHOAL_ADMIN_BIND"},
        {"--admin-port", "SHOAL_ADMIN_PORT"},
        {"--threads", "SHOAL_THREADS"},
        {"--max-connections", "SHOAL_MAX_CONNECTIONS"},
        {"--listen-backlog", "SHOAL_LISTEN_BACKLOG"},
        {"--connection-timeout", "SHOAL_CONNECTION_TIMEOUT"},
        {"--max-header-bytes", "SHOAL_MAX_HEADER_BYTES"},
        {"--max-body-bytes", "SHOAL_MAX_BODY_BYTES"},
        {"--max-json-depth", "SHOAL_MAX_JSON_DEPTH"},
        {"--cors-origins", "SHOAL_CORS_ORIGINS"},
        {"--node-name", "SHOAL_NODE_NAME"},
        {"--drain-delay-ms", "SHOAL_DRAIN_DELAY_MS"},
        {"--grace-period-ms", "SHOAL_GRACE_PERIOD_MS"},
        {"--startup-timeout", "SHOAL_STARTUP_TIMEOUT"},
        {"--migrate", "SHOAL_MIGRATE"},
        {"--access-log-sample", "SHOAL_ACCESS_LOG_SAMPLE"},
        {"--database-url", "DATABASE_URL"},
        {"--database-connect-timeout", "SHOAL_DATABASE_CONNECT_TIMEOUT"},
        {"--database-statement-timeout-ms", "SHOAL_DATABASE_STATEMENT_TIMEOUT_MS"},
        {"--redis-url", "REDIS_URL"},
        {"--redis-timeout-ms", "SHOAL_REDIS_TIMEOUT_MS"},
        {"--cache-url", "SHOAL_CACHE_URL"},
        {"--l1-entries", "SHOAL_L1_ENTRIES"},
        {"--l1-bytes", "SHOAL_L1_BYTES"},
        {"--l1-ttl-ms", "SHOAL_L1_TTL_MS"},
        {"--cache-stale-if-error-ms", "SHOAL_CACHE_STALE_IF_ERROR_MS"},
        {"--session-ttl", "SHOAL_SESSION_TTL"},
        {"--trusted-proxies", "SHOAL_TRUSTED_PROXIES"},
        {"--rate-limits", "SHOAL_RATE_LIMITS"},
        {"--idempotency-ttl", "SHOAL_IDEMPOTENCY_TTL"},
        {"--password-ops-limit", "SHOAL_PASSWORD_OPS_LIMIT"},
        {"--password-mem-limit", "SHOAL_PASSWORD_MEM_LIMIT"},
        {"--password-concurrency", "SHOAL_PASSWORD_CONCURRENCY"},
        {"--password-queue-timeout-ms", "SHOAL_PASSWORD_QUEUE_TIMEOUT_MS"},
        {"--security-headers", "SHOAL_SECURITY_HEADERS"},
    };
    char *text = usage_text();
    assert_non_null(strstr(text, "Usage: shoal-test"));
    assert_non_null(strstr(text, "migrate"));
    assert_non_null(strstr(text, "--help"));
    assert_non_null(strstr(text, "--version"));
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        char line[96];
        /* The flag and its variable share a line. */
        snprintf(line, sizeof line, "  %s ", expected[i][0]);
        const char *at = strstr(text, line);
        if (at == NULL)
            fail_msg("usage lacks %s", expected[i][0]);
        const char *end = strchr(at, '\n');
        const char *variable = strstr(at, expected[i][1]);
        if (variable == NULL || variable > end)
            fail_msg("usage line for %s lacks %s", expected[i][0], expected[i][1]);
    }
    free(text);
}

/* Every flag that --help shows is one the parser knows. */
static void test_every_flag_in_usage_is_accepted(void **state)
{
    (void)state;
    char *text = usage_text();
    int flags = 0;
    for (const char *p = strstr(text, "\n  --"); p != NULL; p = strstr(p + 1, "\n  --")) {
        char flag[64];
        if (sscanf(p + 3, "%63s", flag) != 1)
            continue;
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "--version") == 0)
            continue;
        flags++;
        /* Alone, a boolean flag turns its setting on; any other needs a value. */
        shoal_config c;
        if (load(&c, NULL, ARGS(flag)) == 0)
            shoal_config_free(&c);
        else if (strstr(error, "needs a value") == NULL)
            fail_msg("%s from --help: %s", flag, error);
    }
    /* A floor rather than the exact count, so that adding a flag does not
     * touch this test; it still fails if the usage text stops being scanned. */
    assert_true(flags >= 38);
    free(text);
}

/* The library alone: its own tables, its own defaults; the demo's
 * settings are no settings of it. */
static void test_the_library_alone_limits_nothing_and_knows_no_demo_setting(void **state)
{
    (void)state;
    shoal_config c;
    char *argv[4] = {"node"};
    environment = NULL;
    assert_int_equal(shoal_config_load(&c, 1, argv, fake_env, error, sizeof error), 0);
    assert_string_equal(RATE(c)->rules, "");
    assert_string_equal(CORS(c)->origins, "*");
    assert_int_equal(PASSWORD(c)->ops_limit, 2);
    assert_null(CONDUIT(c));
    shoal_config_free(&c);
    assert_null(c.settings);
    static const char *const demo[] = {"--api-max-limit", "--login-failures-per-address", "--api", "--bench",
                                       "--users"};
    for (size_t i = 0; i < sizeof demo / sizeof demo[0]; i++) {
        argv[1] = (char *)demo[i];
        argv[2] = "1";
        assert_int_equal(shoal_config_load(&c, 3, argv, fake_env, error, sizeof error), -1);
        if (strstr(error, "unknown option") == NULL || strstr(error, demo[i]) == NULL)
            fail_msg("%s: %s", demo[i], error);
    }
    /* Empty still means none, given by the variable too. */
    environment = ENV("SHOAL_RATE_LIMITS", "");
    assert_int_equal(shoal_demo_config_load(&c, 1, argv, fake_env, error, sizeof error), 0);
    assert_string_equal(RATE(c)->rules, "");
    shoal_config_free(&c);
    environment = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_the_library_alone_limits_nothing_and_knows_no_demo_setting),
        cmocka_unit_test(test_environment_overrides_defaults_and_flags_override_both),
        cmocka_unit_test(test_flags_take_a_separate_or_attached_value),
        cmocka_unit_test(test_a_later_flag_wins),
        cmocka_unit_test(test_sizes_accept_k_m_g_suffixes),
        cmocka_unit_test(test_bad_sizes_are_rejected),
        cmocka_unit_test(test_session_ttl_is_a_minute_to_a_year),
        cmocka_unit_test(test_rate_limits_are_checked_at_start),
        cmocka_unit_test(test_idempotency_ttl_is_a_second_to_thirty_days),
        cmocka_unit_test(test_password_cost_and_login_limits),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_numbers_out_of_range_or_not_numbers_are_rejected),
        cmocka_unit_test(test_unknown_flag_and_missing_value_are_rejected),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_the_seed_command_and_its_flags),
        cmocka_unit_test(test_help_and_version_stop_parsing),
        cmocka_unit_test(test_libpq_variables_replace_the_default_database_url),
        cmocka_unit_test(test_addresses_and_urls_are_checked_at_start),
        cmocka_unit_test(test_statement_timeout_stays_below_the_answer_timeout),
        cmocka_unit_test(test_spill_after_reaches_the_store_config),
        cmocka_unit_test(test_redis_prefixes),
        cmocka_unit_test(test_overload_settings),
        cmocka_unit_test(test_redis_url_must_use_the_redis_scheme),
        cmocka_unit_test(test_the_cache_may_have_its_own_instance),
        cmocka_unit_test(test_the_admin_listener_has_its_own_port_and_address),
        cmocka_unit_test(test_bind_address_must_not_be_empty),
        cmocka_unit_test(test_strict_is_off_by_default_and_a_bare_boolean_flag_turns_it_on),
        cmocka_unit_test(test_usage_lists_every_flag_and_variable),
        cmocka_unit_test(test_every_flag_in_usage_is_accepted),
    };
    return cmocka_run_group_tests_name("node/config", tests, NULL, NULL);
}
