/* node/lib/include/shoal/settings.h (<shoal/settings.h>): settings declared in tables.
 *
 * A service or an extension declares its settings in a table: each entry
 * is a flag (--greeting), an environment variable (HELLO_GREETING), a
 * type, a default, bounds or a check, and a line of help. shoal_main
 * (<shoal/service.h>) joins the core's table, the loaded extensions' and
 * the service's into one --help and one parse: the tables' defaults first,
 * then the service's (shoal_service's defaults), then the environment,
 * then the flags, so a flag wins over its variable. A value
 * that does not parse, is out of bounds or fails its check, an unknown
 * flag or an unexpected argument makes the program exit with status 2 and
 * a message that names the flag (and the variable, when it came from
 * there). A flag or a variable declared twice, in one table or in two, is
 * a programming error: shoal_main exits with 70 before parsing anything.
 *
 * The values land in a struct of the owner's (one per table, sizeof given
 * in the table), read back through the app:
 *
 *     typedef struct hello_settings { const char *greeting; int repeat; } hello_settings;
 *     static const shoal_setting hello_table[] = {
 *         {.flag = "greeting", .variable = "HELLO_GREETING", .type = SHOAL_SETTING_STRING,
 *          .offset = offsetof(hello_settings, greeting), .default_value = "Hello",
 *          .help = "the word before the name"},
 *         {.flag = "repeat", .variable = "HELLO_REPEAT", .type = SHOAL_SETTING_INT,
 *          .offset = offsetof(hello_settings, repeat), .default_value = "1", .minimum = 1, .maximum = 10,
 *          .help = "how many times"},
 *     };
 *     static const shoal_settings hello_settings_table =
 *         SHOAL_SETTINGS("hello", hello_settings, hello_table, NULL);
 *     ...
 *     const hello_settings *settings = shoal_app_settings(app, &hello_settings_table);
 *
 * Field types: SHOAL_SETTING_INT an int, SIZE a size_t (k, m and g
 * suffixes accepted), BOOL a bool (true/false, yes/no, on/off, 1/0; the
 * flag alone means true), STRING a const char * (a copy the library owns
 * and frees; never NULL once parsed). */
#ifndef SHOAL_SETTINGS_H
#define SHOAL_SETTINGS_H

#include <stddef.h>

typedef struct shoal_app shoal_app;

typedef enum shoal_setting_type {
    SHOAL_SETTING_INT,
    SHOAL_SETTING_SIZE,
    SHOAL_SETTING_BOOL,
    SHOAL_SETTING_STRING,
} shoal_setting_type;

typedef struct shoal_setting {
    const char *flag;     /* without the leading "--": "greeting" */
    const char *variable; /* "HELLO_GREETING"; NULL: a flag only (a command's own flags) */
    shoal_setting_type type;
    size_t offset;             /* offsetof(owner's struct, field) */
    const char *default_value; /* text, parsed as a given value would be; NULL: "" */
    long long minimum, maximum; /* INT and SIZE: the bounds, both inclusive (both 0: none) */
    const char *help;           /* one sentence for --help */
    /* Optional: after the value parsed, 0 to accept it, or -1 with why in
     * reason ("'x' is not a rule"); the message then names the setting. */
    int (*check)(const char *value, char *reason, size_t reason_size);
} shoal_setting;

typedef struct shoal_settings {
    const char *owner; /* the --help heading: "hello" */
    const shoal_setting *table;
    size_t count;
    size_t size; /* sizeof the owner's struct */
    /* Optional: once every value is in, checks what one entry cannot
     * (values that must agree); 0, or -1 with a message in error that
     * names the flags at fault. It may also fill in derived fields. */
    int (*validate)(void *values, char *error, size_t error_size);
} shoal_settings;

/* A table of TYPE's settings owned by OWNER; VALIDATE may be NULL. */
#define SHOAL_SETTINGS(owner, type, table, validate) \
    {(owner), (table), sizeof(table) / sizeof((table)[0]), sizeof(type), (validate)}

/* A default a service sets for a setting of another table (a standard
 * extension's, the library's): shoal_service's defaults, e.g.
 * {"rate-limits", "POST /api/users/login=10/min burst 5"}. It is parsed
 * like a given value, shown by --help, and the environment and the flags
 * still win over it. */
typedef struct shoal_setting_default {
    const char *flag; /* without "--" */
    const char *value;
} shoal_setting_default;

/* The values of a table the running service declared (its struct, filled
 * in), or NULL when shoal_main did not parse that table for this app. Valid
 * until the app is freed; read it at setup and hand it to the routes and
 * hooks that need it (shoal_route_with), rather than asking per request. */
const void *shoal_app_settings(const shoal_app *app, const shoal_settings *settings);

/* The parsed values of every table, as a command (<shoal/service.h>)
 * receives them; shoal_settings_of reads one table's struct, or NULL. */
typedef struct shoal_settings_values shoal_settings_values;
const void *shoal_settings_of(const shoal_settings_values *values, const shoal_settings *settings);

#endif
