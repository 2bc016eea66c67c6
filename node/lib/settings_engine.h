/* node/lib/settings_engine.h (private): the one parser behind every settings
 * table (<shoal/settings.h>), for shoal_main (node/lib/runtime.c) and the
 * core's own loader (node/lib/config.c, shoal_config_load).
 *
 * A group is a table and the struct its values go to. Loading is in
 * steps so that a caller may act between them (the core replaces the
 * default database URL by libpq's variables after the environment and
 * before the flags): check, defaults, environment, arguments, validate;
 * release frees the strings whatever happened. Every step that fails
 * writes a message naming the setting into error. */
#ifndef SHOAL_SETTINGS_ENGINE_H
#define SHOAL_SETTINGS_ENGINE_H

#include <stdbool.h>
#include <stdio.h>

#include <shoal/settings.h>

typedef struct settings_group {
    const shoal_settings *settings;
    void *values; /* settings->size bytes, zeroed before the first step */
} settings_group;

/* The parsed values of every group, as the app and commands read them. */
struct shoal_settings_values {
    const settings_group *groups;
    size_t count;
};

typedef const char *(*settings_env_fn)(const char *name);

typedef enum settings_outcome {
    SETTINGS_PARSED,  /* every argument applied */
    SETTINGS_HELP,    /* --help or -h: the arguments after it are not looked at */
    SETTINGS_VERSION, /* --version: likewise */
    SETTINGS_INVALID, /* error says why */
} settings_outcome;

/* No flag and no variable twice among the groups' tables. */
int shoal_settings_check(const settings_group *groups, size_t count, char *error, size_t error_size);
int shoal_settings_defaults(const settings_group *groups, size_t count, char *error, size_t error_size);
int shoal_settings_environment(const settings_group *groups, size_t count, settings_env_fn env, char *error,
                               size_t error_size);
/* argv[first..argc-1]: --flag value, --flag=value, a boolean flag alone. */
settings_outcome shoal_settings_arguments(const settings_group *groups, size_t count, int argc, char **argv,
                                          int first, char *error, size_t error_size);
/* Each table's validate, in order. */
int shoal_settings_validate(const settings_group *groups, size_t count, char *error, size_t error_size);
void shoal_settings_release(const settings_group *groups, size_t count);

/* One table's entries for --help, each line starting with indent:
 *   <indent>--flag                     VARIABLE
 *   <indent>    help (default: value) */
void shoal_settings_print(FILE *out, const shoal_settings *settings, const char *indent);

/* The setting behind a flag (name without "--", length bytes of it) in
 * one table, or NULL. */
const shoal_setting *shoal_settings_find(const shoal_settings *settings, const char *name, size_t length);

/* Parses text as setting's type into field (the owner's struct + offset);
 * source names where the text came from ("--port", "SHOAL_PORT (--port)"). */
int shoal_settings_apply(void *values, const shoal_setting *setting, const char *text, const char *source,
                         char *error, size_t error_size);

#endif
