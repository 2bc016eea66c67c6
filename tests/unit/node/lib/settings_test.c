/* tests/unit/node/lib/settings_test.c: the settings engine (node/lib/settings.c)
 * over several tables, and shoal_main's parse, --help, --version and
 * commands (node/lib/runtime.c), in-process: nothing here serves or connects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shoal/service.h>
#include <shoal/settings.h>
#include <shoal/version.h>

#include <shoal/ext/rate_limit.h>
#include <shoal/ext/session.h>

#include "config_tables.h"
#include "main_capture.h"
#include "settings_engine.h"

/* ---- two tables of a service's ------------------------------------------- */

typedef struct greeter {
    const char *greeting;
    int repeat;
    size_t buffer;
    bool loud;
} greeter;

static int check_no_space(const char *value, char *reason, size_t reason_size)
{
    if (strchr(value, ' ') == NULL)
        return 0;
    snprintf(reason, reason_size, "'%s' holds a space", value);
    return -1;
}

static const shoal_setting greeter_table[] = {
    {.flag = "greeting", .variable = "TEST_GREETING", .type = SHOAL_SETTING_STRING,
     .offset = offsetof(greeter, greeting), .default_value = "Hello", .help = "the greeting",
     .check = check_no_space},
    {.flag = "repeat", .variable = "TEST_REPEAT", .type = SHOAL_SETTING_INT, .offset = offsetof(greeter, repeat),
     .default_value = "1", .minimum = 1, .maximum = 10, .help = "how many times"},
    {.flag = "buffer", .variable = "TEST_BUFFER", .type = SHOAL_SETTING_SIZE, .offset = offsetof(greeter, buffer),
     .default_value = "4k", .minimum = 1024, .maximum = 1048576, .help = "bytes"},
    {.flag = "loud", .variable = "TEST_LOUD", .type = SHOAL_SETTING_BOOL, .offset = offsetof(greeter, loud),
     .default_value = "false", .help = "shout"},
};

/* Cross-field: a loud greeting is said once. */
static int greeter_validate(void *values, char *error, size_t error_size)
{
    const greeter *g = values;
    if (g->loud && g->repeat > 1) {
        snprintf(error, error_size, "--loud and --repeat %d: a loud greeting is said once", g->repeat);
        return -1;
    }
    return 0;
}

static const shoal_settings greeter_settings = SHOAL_SETTINGS("greeter", greeter, greeter_table, greeter_validate);

typedef struct door {
    int port;
    const char *name;
} door;

static const shoal_setting door_table[] = {
    {.flag = "door-port", .variable = "TEST_DOOR_PORT", .type = SHOAL_SETTING_INT, .offset = offsetof(door, port),
     .default_value = "80", .minimum = 1, .maximum = 65535, .help = "the door's port"},
    {.flag = "door-name", .variable = "TEST_DOOR_NAME", .type = SHOAL_SETTING_STRING, .offset = offsetof(door, name),
     .default_value = "", .help = "the door's name"},
};
static const shoal_settings door_settings = SHOAL_SETTINGS("door", door, door_table, NULL);

/* The same flag as greeter's --repeat, in another table. */
static const shoal_setting clashing_table[] = {
    {.flag = "repeat", .variable = "TEST_OTHER_REPEAT", .type = SHOAL_SETTING_INT, .offset = 0, .default_value = "2",
     .help = "clashes"},
};
static const shoal_settings clashing_settings = SHOAL_SETTINGS("clasher", int, clashing_table, NULL);
/* The library's --port, in a service's table. */
static const shoal_setting port_table[] = {
    {.flag = "port", .variable = "TEST_PORT", .type = SHOAL_SETTING_INT, .offset = 0, .default_value = "2",
     .help = "clashes with the core"},
};
static const shoal_settings port_settings = SHOAL_SETTINGS("porter", int, port_table, NULL);
/* The core's variable under another flag. */
static const shoal_setting variable_table[] = {
    {.flag = "listen-on", .variable = "SHOAL_PORT", .type = SHOAL_SETTING_INT, .offset = 0, .default_value = "2",
     .help = "clashes with the core's variable"},
};
static const shoal_settings variable_settings = SHOAL_SETTINGS("variabler", int, variable_table, NULL);

/* ---- the engine, directly ------------------------------------------------- */

static const char *const *environment;

static const char *fake_env(const char *name)
{
    for (size_t i = 0; environment != NULL && environment[i] != NULL; i += 2)
        if (strcmp(environment[i], name) == 0)
            return environment[i + 1];
    return NULL;
}

#define ARGS(...) ((char *[]){"test", __VA_ARGS__, NULL})
/* argc for ARGS(...): the program name and the arguments. */
#define ARGC(...) ((int)(sizeof((char *[]){"test", __VA_ARGS__}) / sizeof(char *)))
#define LOAD(env, ...) load((env), ARGC(__VA_ARGS__), ARGS(__VA_ARGS__))
#define INVALID(env, named, ...) assert_invalid_naming((env), ARGC(__VA_ARGS__), ARGS(__VA_ARGS__), (named))
#define MAIN(service, ...) run_main((service), ARGC(__VA_ARGS__), ARGS(__VA_ARGS__))
#define NO_ARGS ((char *[]){"test", NULL})
#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

static greeter g;
static door d;
static char error[512];

/* Both tables: defaults, environment, arguments, validation. */
static settings_outcome load(const char *const *env, int argc, char **argv)
{
    memset(&g, 0, sizeof g);
    memset(&d, 0, sizeof d);
    error[0] = '\0';
    environment = env;
    settings_group groups[] = {{&greeter_settings, &g}, {&door_settings, &d}};
    if (shoal_settings_check(groups, 2, error, sizeof error) != 0 ||
        shoal_settings_defaults(groups, 2, error, sizeof error) != 0 ||
        shoal_settings_environment(groups, 2, fake_env, error, sizeof error) != 0)
        return SETTINGS_INVALID;
    settings_outcome outcome = shoal_settings_arguments(groups, 2, argc, argv, 1, error, sizeof error);
    if (outcome == SETTINGS_PARSED && shoal_settings_validate(groups, 2, error, sizeof error) != 0)
        outcome = SETTINGS_INVALID;
    return outcome;
}

static void release(void)
{
    settings_group groups[] = {{&greeter_settings, &g}, {&door_settings, &d}};
    shoal_settings_release(groups, 2);
    assert_null(g.greeting);
    assert_null(d.name);
}

static void assert_invalid_naming(const char *const *env, int argc, char **argv, const char *named)
{
    if (load(env, argc, argv) != SETTINGS_INVALID)
        fail_msg("accepted what should name '%s'", named);
    if (strstr(error, named) == NULL)
        fail_msg("message '%s' does not name '%s'", error, named);
    release();
}

static void test_two_tables_take_their_defaults(void **state)
{
    (void)state;
    assert_int_equal(LOAD(NULL, "--door-port", "8080"), SETTINGS_PARSED);
    assert_string_equal(g.greeting, "Hello");
    assert_int_equal(g.repeat, 1);
    assert_int_equal(g.buffer, 4096);
    assert_false(g.loud);
    assert_int_equal(d.port, 8080);
    assert_string_equal(d.name, "");
    release();
}

static void test_a_flag_wins_over_its_variable_which_wins_over_the_default(void **state)
{
    (void)state;
    const char *const *env = ENV("TEST_GREETING", "Hi", "TEST_REPEAT", "3", "TEST_DOOR_NAME", "front");
    assert_int_equal(LOAD(env, "--repeat=5", "--buffer", "8k"), SETTINGS_PARSED);
    assert_string_equal(g.greeting, "Hi");   /* the variable */
    assert_int_equal(g.repeat, 5);           /* the flag over the variable */
    assert_int_equal(g.buffer, 8192);        /* the flag over the default */
    assert_string_equal(d.name, "front");    /* the other table's variable */
    release();
    /* A later flag wins over an earlier one. */
    assert_int_equal(LOAD(env, "--greeting", "Hey", "--greeting=Yo"), SETTINGS_PARSED);
    assert_string_equal(g.greeting, "Yo");
    release();
}

static void test_a_boolean_flag_alone_turns_it_on(void **state)
{
    (void)state;
    assert_int_equal(LOAD(NULL, "--loud"), SETTINGS_PARSED);
    assert_true(g.loud);
    release();
    assert_int_equal(LOAD(ENV("TEST_LOUD", "yes"), "--loud", "off"), SETTINGS_PARSED);
    assert_false(g.loud);
    release();
}

static void test_bad_values_name_the_flag_and_the_variable(void **state)
{
    (void)state;
    INVALID(NULL, "--repeat", "--repeat", "11");
    INVALID(NULL, "--repeat: 'two' is not a whole number between 1 and 10", "--repeat", "two");
    INVALID(NULL, "--buffer", "--buffer", "1");
    INVALID(NULL, "--door-port", "--door-port", "0");
    INVALID(NULL, "--loud: 'loudly' is not a boolean", "--loud", "loudly");
    assert_invalid_naming(ENV("TEST_DOOR_PORT", "x"), 1, NO_ARGS, "TEST_DOOR_PORT (--door-port)");
    /* An entry's check. */
    INVALID(NULL, "--greeting: 'good day' holds a space", "--greeting", "good day");
    /* The table's validate, after every value is in. */
    INVALID(NULL, "--loud and --repeat 2", "--loud", "--repeat", "2");
}

static void test_unknown_flags_and_arguments_are_refused(void **state)
{
    (void)state;
    INVALID(NULL, "unknown option '--greetings'", "--greetings", "x");
    INVALID(NULL, "--door-port", "--door-port=80x");
    INVALID(NULL, "unexpected argument 'stray'", "stray");
    INVALID(NULL, "option '--repeat' needs a value", "--repeat");
}

static void test_help_and_version_stop_the_parse(void **state)
{
    (void)state;
    assert_int_equal(LOAD(NULL, "--repeat", "2", "--help", "--nonsense"), SETTINGS_HELP);
    release();
    assert_int_equal(LOAD(NULL, "--version", "--nonsense"), SETTINGS_VERSION);
    release();
}

static void test_a_flag_or_variable_declared_twice_is_refused(void **state)
{
    (void)state;
    int a = 0, b = 0;
    settings_group flag_twice[] = {{&greeter_settings, &g}, {&clashing_settings, &a}};
    assert_int_equal(shoal_settings_check(flag_twice, 2, error, sizeof error), -1);
    assert_non_null(strstr(error, "--repeat is declared twice: by greeter and by clasher"));
    settings_group variable_twice[] = {{&shoal_config_settings, &b}, {&variable_settings, &a}};
    assert_int_equal(shoal_settings_check(variable_twice, 2, error, sizeof error), -1);
    assert_non_null(strstr(error, "SHOAL_PORT is declared twice"));
    settings_group fine[] = {{&greeter_settings, &g}, {&door_settings, &d}, {&shoal_config_settings, &b}};
    assert_int_equal(shoal_settings_check(fine, 3, error, sizeof error), 0);
}

/* ---- shoal_main ------------------------------------------------------------ */

static char *captured_out, *captured_err;

/* shoal_main(service, argv) with stdout and stderr caught. */
static int run_main(const shoal_service *service, int argc, char **argv)
{
    free(captured_out);
    free(captured_err);
    return test_main_capture(service, argc, argv, &captured_out, &captured_err);
}

/* What the command below saw. */
static greeter seen_greeter;
static door seen_door;
static int seen_times, seen_port;
static const char *seen_greeting, *seen_redis_prefix, *seen_session_prefix;

typedef struct greet_flags {
    int times;
} greet_flags;
static const shoal_setting greet_flag_table[] = {
    {.flag = "times", .type = SHOAL_SETTING_INT, .offset = offsetof(greet_flags, times), .default_value = "1",
     .minimum = 1, .maximum = 3, .help = "how many greetings"},
};
static const shoal_settings greet_flags_settings = SHOAL_SETTINGS("greet", greet_flags, greet_flag_table, NULL);

static int greet(const shoal_config *config, const shoal_settings_values *values, void *data)
{
    (void)data;
    const greeter *settings = shoal_settings_of(values, &greeter_settings);
    const door *entrance = shoal_settings_of(values, &door_settings);
    const greet_flags *flags = shoal_settings_of(values, &greet_flags_settings);
    assert_non_null(settings);
    assert_non_null(entrance);
    assert_non_null(flags);
    assert_null(shoal_settings_of(values, &clashing_settings)); /* not the service's */
    seen_greeter = *settings;
    free((void *)seen_greeting);
    seen_greeting = strdup(settings->greeting);
    seen_door = *entrance;
    seen_times = flags->times;
    seen_port = config->port;
    free((void *)seen_redis_prefix);
    free((void *)seen_session_prefix);
    seen_redis_prefix = strdup(config->redis_prefix);
    seen_session_prefix = strdup(config->session_prefix);
    return 7;
}

static const shoal_service_command greet_command = {
    .name = "greet", .summary = "greets and exits", .flags = &greet_flags_settings, .run = greet};
static const shoal_settings *const service_tables[] = {&greeter_settings, &door_settings, NULL};
static const shoal_service_command *const service_commands[] = {&greet_command, NULL};
static const shoal_service service = {
    .name = "greeter-service",
    .version = "3.1.4",
    .settings = service_tables,
    .commands = service_commands,
};

static void clear_environment(void)
{
    static const char *const names[] = {"TEST_GREETING", "TEST_REPEAT", "TEST_BUFFER",  "TEST_LOUD",
                                        "TEST_DOOR_PORT", "TEST_DOOR_NAME", "SHOAL_PORT", "SHOAL_THREADS",
                                        "SHOAL_REDIS_PREFIX", "SHOAL_SESSION_PREFIX"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

static int setup_main(void **state)
{
    (void)state;
    clear_environment();
    return 0;
}

static int teardown_main(void **state)
{
    (void)state;
    clear_environment();
    free(captured_out);
    free(captured_err);
    captured_out = captured_err = NULL;
    free((void *)seen_greeting);
    free((void *)seen_redis_prefix);
    free((void *)seen_session_prefix);
    seen_greeting = seen_redis_prefix = seen_session_prefix = NULL;
    return 0;
}

static void test_main_help_lists_every_table_by_owner(void **state)
{
    (void)state;
    assert_int_equal(MAIN(&service, "--help"), 0);
    const char *text = captured_out;
    assert_non_null(strstr(text, "Usage: test [serve|migrate|greet] [--option value]..."));
    const char *own = strstr(text, "\ngreeter:\n");
    const char *other = strstr(text, "\ndoor:\n");
    const char *library = strstr(text, "\nlibshoal ");
    assert_non_null(own);
    assert_non_null(other);
    assert_non_null(library);
    /* The service's tables first, in their order, then the library's; each
     * flag under its owner's heading, with its variable on its line. */
    assert_true(own < other && other < library);
    const char *greeting = strstr(text, "\n  --greeting                   TEST_GREETING\n");
    const char *door_port = strstr(text, "\n  --door-port                  TEST_DOOR_PORT\n");
    const char *port = strstr(text, "\n  --port                       SHOAL_PORT\n");
    assert_true(greeting != NULL && own < greeting && greeting < other);
    assert_true(door_port != NULL && other < door_port && door_port < library);
    assert_true(port != NULL && library < port);
    /* The command and its own flag, in the commands' part. */
    const char *command = strstr(text, "\n  greet    greets and exits; its flags:\n    --times ");
    assert_true(command != NULL && command < own);
    /* No demo setting in a service that did not declare them. */
    assert_null(strstr(text, "--api "));
    assert_null(strstr(text, "--bench "));
    assert_null(strstr(text, "seed"));
    assert_string_equal(captured_err, "");
}

static void test_main_version_names_the_service_and_the_library(void **state)
{
    (void)state;
    assert_int_equal(MAIN(&service, "--version"), 0);
    char expected[128];
    snprintf(expected, sizeof expected, "greeter-service 3.1.4 (libshoal %s)\n", shoal_version());
    assert_string_equal(captured_out, expected);
}

static void test_main_bad_value_in_a_service_table_exits_2_naming_the_flag(void **state)
{
    (void)state;
    assert_int_equal(MAIN(&service, "--repeat", "0"), 2);
    assert_non_null(strstr(captured_err, "test: --repeat: '0' is not a whole number between 1 and 10\n"));
    assert_non_null(strstr(captured_err, "Try 'test --help'."));
    assert_string_equal(captured_out, "");
    setenv("TEST_DOOR_PORT", "70000", 1);
    assert_int_equal(run_main(&service, 1, NO_ARGS), 2);
    assert_non_null(strstr(captured_err, "TEST_DOOR_PORT (--door-port): '70000'"));
    unsetenv("TEST_DOOR_PORT");
    /* The table's validate. */
    assert_int_equal(MAIN(&service, "--loud", "--repeat", "3"), 2);
    assert_non_null(strstr(captured_err, "--loud and --repeat 3"));
    /* The core's table is checked in the same parse. */
    assert_int_equal(MAIN(&service, "--threads", "-1"), 2);
    assert_non_null(strstr(captured_err, "--threads"));
}

static void test_main_unknown_flag_command_or_command_flag_exits_2(void **state)
{
    (void)state;
    assert_int_equal(MAIN(&service, "--greetin", "x"), 2);
    assert_non_null(strstr(captured_err, "unknown option '--greetin'"));
    assert_int_equal(MAIN(&service, "seed"), 2);
    assert_non_null(strstr(captured_err, "unknown command 'seed' (commands: serve, migrate, greet)"));
    /* A command's flag belongs to that command only. */
    assert_int_equal(MAIN(&service, "serve", "--times", "2"), 2);
    assert_non_null(strstr(captured_err, "unknown option '--times'"));
    assert_int_equal(MAIN(&service, "greet", "--times", "4"), 2);
    assert_non_null(strstr(captured_err, "--times: '4' is not a whole number between 1 and 3"));
}

static void test_main_command_sees_every_table_env_and_flags(void **state)
{
    (void)state;
    setenv("TEST_GREETING", "Hi", 1);
    setenv("TEST_REPEAT", "4", 1);
    setenv("SHOAL_PORT", "9000", 1);
    setenv("SHOAL_THREADS", "3", 1);
    assert_int_equal(MAIN(&service, "greet", "--repeat", "2", "--times", "3", "--door-name", "back", "--port", "9100"),
                     7); /* the command's status */
    assert_string_equal(seen_greeting, "Hi");        /* the variable */
    assert_int_equal(seen_greeter.repeat, 2);         /* the flag over the variable */
    assert_int_equal(seen_times, 3);                  /* the command's flag */
    assert_int_equal(seen_door.port, 80);             /* the other table's default */
    assert_int_equal(seen_port, 9100);                /* the core's flag over SHOAL_PORT */
}

static void test_main_refuses_a_malformed_service_with_70(void **state)
{
    (void)state;
    static const shoal_settings *const clash_tables[] = {&greeter_settings, &clashing_settings, NULL};
    shoal_service clash = {.name = "clash", .settings = clash_tables};
    /* Even --help: the tables cannot be listed, the service is wrong. */
    assert_int_equal(MAIN(&clash, "--help"), 70);
    assert_non_null(strstr(captured_err, "--repeat is declared twice: by greeter and by clasher"));
    assert_string_equal(captured_out, "");
    static const shoal_settings *const port_tables[] = {&port_settings, NULL};
    shoal_service porter = {.name = "porter", .settings = port_tables};
    assert_int_equal(run_main(&porter, 1, NO_ARGS), 70);
    assert_non_null(strstr(captured_err, "--port is declared twice"));
    /* A command's flag may not shadow a setting either. */
    static const shoal_setting repeat_flag[] = {
        {.flag = "repeat", .type = SHOAL_SETTING_INT, .offset = 0, .default_value = "1", .help = "x"}};
    static const shoal_settings repeat_flags = SHOAL_SETTINGS("again", int, repeat_flag, NULL);
    static const shoal_service_command again = {.name = "again", .flags = &repeat_flags, .run = greet};
    static const shoal_service_command *const again_commands[] = {&again, NULL};
    shoal_service shadow = {.name = "shadow", .settings = service_tables, .commands = again_commands};
    assert_int_equal(MAIN(&shadow, "--version"), 70);
    assert_non_null(strstr(captured_err, "--repeat is declared twice"));
    shoal_service unnamed = {.name = "Hello World"};
    assert_int_equal(MAIN(&unnamed, "--version"), 70);
    static const shoal_extension unknown = {.name = "corz"};
    static const shoal_extension *const replacements[] = {&unknown, NULL};
    shoal_service replacing = {.name = "replacing", .replace = replacements};
    assert_int_equal(MAIN(&replacing, "--version"), 70);
    assert_non_null(strstr(captured_err, "'corz' is not the name of a standard extension"));
    /* Migrations: one set per component (NULL is the service's name), and
     * enabled_by names a boolean setting of the service's or the core's. */
    static const store_migration one[] = {{1, "one", "SELECT 1;"}};
    static const shoal_migrations plain = {.list = one, .count = 1};
    static const shoal_migrations named = {.component = "twins", .list = one, .count = 1};
    static const shoal_migrations *const twin_sets[] = {&plain, &named, NULL};
    shoal_service twins = {.name = "twins", .migrations = twin_sets};
    assert_int_equal(MAIN(&twins, "--version"), 70);
    assert_non_null(strstr(captured_err, "component 'twins' is declared twice"));
    static const shoal_migrations by_int = {.list = one, .count = 1, .enabled_by = "repeat"};
    static const shoal_migrations *const by_int_sets[] = {&by_int, NULL};
    shoal_service counted = {.name = "counted", .settings = service_tables, .migrations = by_int_sets};
    assert_int_equal(MAIN(&counted, "--version"), 70);
    assert_non_null(strstr(captured_err, "enabled_by 'repeat' is not a boolean setting"));
    static const shoal_migrations by_core = {.list = one, .count = 1, .enabled_by = "migrate"};
    static const shoal_migrations *const by_core_sets[] = {&by_core, NULL};
    shoal_service switched = {.name = "switched", .migrations = by_core_sets};
    assert_int_equal(MAIN(&switched, "--version"), 0);
}

/* What the limits command saw: --rate-limits (the extension's table) and
 * --session-ttl. */
static char seen_rules[256];
static int seen_ttl;

static int limits(const shoal_config *config, const shoal_settings_values *values, void *data)
{
    (void)config;
    (void)data;
    const shoal_rate_limit_settings_values *rate = shoal_settings_of(values, &shoal_rate_limit_settings);
    const shoal_session_settings_values *session = shoal_settings_of(values, &shoal_session_settings);
    snprintf(seen_rules, sizeof seen_rules, "%s", rate != NULL ? rate->rules : "(no table)");
    seen_ttl = session != NULL ? session->ttl_s : -1;
    return 5;
}

/* A standard extension's settings come with it, with the library's
 * default (no rate limits); a service changes another table's default
 * with .defaults, shown by --help, and the variable and the flag still
 * win (empty: none). A default for no setting, or one that does not
 * parse, is the service's bug (70). */
static void test_main_service_defaults_override_another_tables(void **state)
{
    (void)state;
    static const shoal_service_command limits_command = {.name = "limits", .run = limits};
    static const shoal_service_command *const commands[] = {&limits_command, NULL};
    shoal_service plain = {.name = "plain", .commands = commands};
    assert_int_equal(MAIN(&plain, "limits"), 5);
    assert_string_equal(seen_rules, "");
    assert_int_equal(seen_ttl, 1209600);

    static const shoal_setting_default conduit_like[] = {
        {"rate-limits", "POST /api/users/login=10/min burst 5"}, {"session-ttl", "3600"}, {NULL, NULL}};
    shoal_service limited = {.name = "limited", .commands = commands, .defaults = conduit_like};
    assert_int_equal(MAIN(&limited, "limits"), 5);
    assert_string_equal(seen_rules, "POST /api/users/login=10/min burst 5");
    assert_int_equal(seen_ttl, 3600);
    assert_int_equal(MAIN(&limited, "--help"), 0);
    assert_non_null(strstr(captured_out, "(default: POST /api/users/login=10/min burst 5)"));
    assert_non_null(strstr(captured_out, "\nrate limits:\n"));
    setenv("SHOAL_RATE_LIMITS", "", 1);
    assert_int_equal(MAIN(&limited, "limits", "--session-ttl", "60"), 5);
    assert_string_equal(seen_rules, ""); /* the variable, empty: none */
    assert_int_equal(seen_ttl, 60);     /* the flag */
    unsetenv("SHOAL_RATE_LIMITS");
    /* A bad rule exits 2 naming the flag, as in 0.1. */
    assert_int_equal(MAIN(&limited, "limits", "--rate-limits", "bogus"), 2);
    assert_non_null(strstr(captured_err, "--rate-limits (SHOAL_RATE_LIMITS): rule 1 'bogus'"));

    /* Switched off: no flag, and a default for it names nothing. */
    shoal_service unlimited = {.name = "unlimited", .commands = commands, .standard_off = SHOAL_STANDARD_RATE_LIMIT};
    assert_int_equal(MAIN(&unlimited, "limits"), 5);
    assert_string_equal(seen_rules, "(no table)");
    assert_int_equal(MAIN(&unlimited, "--rate-limits", "x"), 2);
    assert_non_null(strstr(captured_err, "unknown option '--rate-limits'"));
    unlimited.defaults = conduit_like;
    assert_int_equal(MAIN(&unlimited, "--version"), 70);
    assert_non_null(strstr(captured_err, "--rate-limits is no setting of this node"));
    static const shoal_setting_default too_short[] = {{"session-ttl", "5"}, {NULL, NULL}};
    shoal_service broken = {.name = "broken", .defaults = too_short};
    assert_int_equal(MAIN(&broken, "--version"), 70);
    assert_non_null(strstr(captured_err, "--session-ttl"));
}

/* Services on one Redis do not meet: every key and the channel start with
 * the service's name unless it says otherwise (shoal-node: ""); sessions
 * follow --redis-prefix unless --session-prefix shares another's. */
static void test_main_redis_prefix_defaults_to_the_service(void **state)
{
    (void)state;
    assert_int_equal(MAIN(&service, "greet"), 7);
    assert_string_equal(seen_redis_prefix, "greeter-service:");
    assert_string_equal(seen_session_prefix, "greeter-service:");
    assert_int_equal(MAIN(&service, "greet", "--session-prefix", ""), 7);
    assert_string_equal(seen_redis_prefix, "greeter-service:");
    assert_string_equal(seen_session_prefix, "");
    setenv("SHOAL_REDIS_PREFIX", "blue:", 1);
    assert_int_equal(MAIN(&service, "greet"), 7);
    assert_string_equal(seen_redis_prefix, "blue:");
    assert_string_equal(seen_session_prefix, "blue:");
    setenv("SHOAL_SESSION_PREFIX", "green:", 1);
    assert_int_equal(MAIN(&service, "greet", "--redis-prefix", "red:"), 7);
    assert_string_equal(seen_redis_prefix, "red:");
    assert_string_equal(seen_session_prefix, "green:");
    unsetenv("SHOAL_REDIS_PREFIX");
    unsetenv("SHOAL_SESSION_PREFIX");

    shoal_service legacy = service;
    legacy.redis_prefix = "";
    assert_int_equal(MAIN(&legacy, "greet"), 7);
    assert_string_equal(seen_redis_prefix, "");
    assert_string_equal(seen_session_prefix, "");
    legacy.redis_prefix = "shared.v2:";
    assert_int_equal(MAIN(&legacy, "greet"), 7);
    assert_string_equal(seen_redis_prefix, "shared.v2:");

    /* --help shows the default this service has. */
    assert_int_equal(MAIN(&service, "--help"), 0);
    assert_non_null(strstr(captured_out, "\n  --redis-prefix               SHOAL_REDIS_PREFIX\n"));
    assert_non_null(strstr(captured_out, "(default: greeter-service:)\n"));
    assert_non_null(strstr(captured_out, "(default: " SHOAL_SESSION_PREFIX_SAME ")\n"));
    legacy.redis_prefix = "";
    assert_int_equal(MAIN(&legacy, "--help"), 0);
    const char *flag = strstr(captured_out, "\n  --redis-prefix ");
    assert_non_null(flag);
    const char *end = strstr(flag + 1, "\n  --");
    assert_non_null(end);
    const char *shown = strstr(flag, "(default: empty)\n");
    assert_true(shown != NULL && shown < end);

    /* Bad prefixes exit 2 naming the flag; a bad default is the service's fault. */
    assert_int_equal(MAIN(&service, "--redis-prefix", "a b"), 2);
    assert_non_null(strstr(captured_err, "--redis-prefix: 'a b' has a character other than A-Z a-z 0-9 _ . : -"));
    assert_int_equal(MAIN(&service, "--redis-prefix", "a-prefix-that-is-longer-than-forty-bytes-x:"), 2);
    assert_non_null(strstr(captured_err, "--redis-prefix: 'a-prefix-that-is-longer-than-forty-bytes-x:' is longer "
                                         "than 40 bytes"));
    setenv("SHOAL_SESSION_PREFIX", "*", 1);
    assert_int_equal(MAIN(&service, "--version"), 2);
    assert_non_null(strstr(captured_err, "SHOAL_SESSION_PREFIX (--session-prefix): '*'"));
    unsetenv("SHOAL_SESSION_PREFIX");
    legacy.redis_prefix = "no spaces";
    assert_int_equal(MAIN(&legacy, "--version"), 70);
    assert_non_null(strstr(captured_err, "redis_prefix: 'no spaces' has a character other than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_tables_take_their_defaults),
        cmocka_unit_test(test_a_flag_wins_over_its_variable_which_wins_over_the_default),
        cmocka_unit_test(test_a_boolean_flag_alone_turns_it_on),
        cmocka_unit_test(test_bad_values_name_the_flag_and_the_variable),
        cmocka_unit_test(test_unknown_flags_and_arguments_are_refused),
        cmocka_unit_test(test_help_and_version_stop_the_parse),
        cmocka_unit_test(test_a_flag_or_variable_declared_twice_is_refused),
        cmocka_unit_test_setup_teardown(test_main_help_lists_every_table_by_owner, setup_main, teardown_main),
        cmocka_unit_test_setup_teardown(test_main_version_names_the_service_and_the_library, setup_main,
                                        teardown_main),
        cmocka_unit_test_setup_teardown(test_main_bad_value_in_a_service_table_exits_2_naming_the_flag, setup_main,
                                        teardown_main),
        cmocka_unit_test_setup_teardown(test_main_unknown_flag_command_or_command_flag_exits_2, setup_main,
                                        teardown_main),
        cmocka_unit_test_setup_teardown(test_main_command_sees_every_table_env_and_flags, setup_main, teardown_main),
        cmocka_unit_test_setup_teardown(test_main_refuses_a_malformed_service_with_70, setup_main, teardown_main),
        cmocka_unit_test_setup_teardown(test_main_redis_prefix_defaults_to_the_service, setup_main, teardown_main),
        cmocka_unit_test_setup_teardown(test_main_service_defaults_override_another_tables, setup_main, teardown_main),
    };
    return cmocka_run_group_tests_name("node/settings", tests, NULL, NULL);
}
