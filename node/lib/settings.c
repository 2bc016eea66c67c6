/* node/lib/settings.c: parsing, checking and printing settings tables. */
#include "settings_engine.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_integer(const char *text, long long minimum, long long maximum, bool allow_suffix,
                         long long *out)
{
    /* strtoll would skip leading blanks and a '+'; a setting is digits. */
    if (text == NULL || !((*text >= '0' && *text <= '9') || *text == '-'))
        return -1;
    errno = 0;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text)
        return -1;
    if (allow_suffix && *end != '\0') {
        long long multiplier = 0;
        if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kib") == 0)
            multiplier = 1024;
        else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mib") == 0)
            multiplier = 1024 * 1024;
        else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gib") == 0)
            multiplier = 1024LL * 1024 * 1024;
        if (multiplier == 0 || value > LLONG_MAX / multiplier || value < LLONG_MIN / multiplier)
            return -1;
        value *= multiplier;
        end += strlen(end);
    }
    if (*end != '\0' || value < minimum || value > maximum)
        return -1;
    *out = value;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const truthy[] = {"1", "true", "yes", "on"};
    static const char *const falsy[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, truthy[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, falsy[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* The bounds in force: both 0 means the field's whole range; an int's
 * bounds never leave an int's range. */
static void bounds(const shoal_setting *s, long long *minimum, long long *maximum)
{
    *minimum = s->minimum;
    *maximum = s->maximum;
    if (s->minimum == 0 && s->maximum == 0) {
        *minimum = s->type == SHOAL_SETTING_SIZE ? 0 : INT_MIN;
        *maximum = s->type == SHOAL_SETTING_SIZE ? LLONG_MAX : INT_MAX;
    }
    if (s->type == SHOAL_SETTING_INT) {
        if (*minimum < INT_MIN)
            *minimum = INT_MIN;
        if (*maximum > INT_MAX)
            *maximum = INT_MAX;
    } else if (s->type == SHOAL_SETTING_SIZE && *minimum < 0) {
        *minimum = 0;
    }
}

int shoal_settings_apply(void *values, const shoal_setting *s, const char *text, const char *source, char *error,
                         size_t error_size)
{
    char *field = (char *)values + s->offset;
    long long number = 0, minimum, maximum;
    char reason[256] = "";
    bounds(s, &minimum, &maximum);
    switch (s->type) {
    case SHOAL_SETTING_INT:
    case SHOAL_SETTING_SIZE: {
        bool size = s->type == SHOAL_SETTING_SIZE;
        if (parse_integer(text, minimum, maximum, size, &number) != 0) {
            snprintf(error, error_size, "%s: '%s' is not %s between %lld and %lld", source, text,
                     size ? "a size" : "a whole number", minimum, maximum);
            return -1;
        }
        break;
    }
    case SHOAL_SETTING_BOOL: {
        bool flag = false;
        if (parse_bool(text, &flag) != 0) {
            snprintf(error, error_size, "%s: '%s' is not a boolean (use true or false)", source, text);
            return -1;
        }
        number = flag;
        break;
    }
    case SHOAL_SETTING_STRING:
        break;
    default:
        snprintf(error, error_size, "%s: the setting has no known type", source);
        return -1;
    }
    if (s->check != NULL && s->check(text, reason, sizeof reason) != 0) {
        snprintf(error, error_size, "%s: %s", source, reason[0] != '\0' ? reason : "not accepted");
        return -1;
    }
    switch (s->type) {
    case SHOAL_SETTING_INT: {
        int value = (int)number;
        memcpy(field, &value, sizeof value);
        return 0;
    }
    case SHOAL_SETTING_SIZE: {
        size_t value = (size_t)number;
        memcpy(field, &value, sizeof value);
        return 0;
    }
    case SHOAL_SETTING_BOOL: {
        bool value = number != 0;
        memcpy(field, &value, sizeof value);
        return 0;
    }
    case SHOAL_SETTING_STRING:
    default: {
        /* Through memcpy: the owner's field may be a char * or a const char *. */
        char *copy = strdup(text), *old = NULL;
        if (copy == NULL) {
            snprintf(error, error_size, "out of memory");
            return -1;
        }
        memcpy(&old, field, sizeof old);
        free(old);
        memcpy(field, &copy, sizeof copy);
        return 0;
    }
    }
}

const shoal_setting *shoal_settings_find(const shoal_settings *settings, const char *name, size_t length)
{
    for (size_t i = 0; i < settings->count; i++)
        if (strncmp(settings->table[i].flag, name, length) == 0 && settings->table[i].flag[length] == '\0')
            return &settings->table[i];
    return NULL;
}

static const char *owner_of(const shoal_settings *settings)
{
    return settings->owner != NULL ? settings->owner : "(unnamed)";
}

int shoal_settings_check(const settings_group *groups, size_t count, char *error, size_t error_size)
{
    for (size_t g = 0; g < count; g++) {
        const shoal_settings *table = groups[g].settings;
        for (size_t i = 0; i < table->count; i++) {
            const shoal_setting *s = &table->table[i];
            if (s->flag == NULL || s->flag[0] == '\0' || s->flag[0] == '-' || strchr(s->flag, '=') != NULL) {
                snprintf(error, error_size, "%s: setting %zu has no flag, or one that starts with '-' or holds '='",
                         owner_of(table), i + 1);
                return -1;
            }
            if (strcmp(s->flag, "help") == 0 || strcmp(s->flag, "version") == 0) {
                snprintf(error, error_size, "%s: --%s is the library's own flag", owner_of(table), s->flag);
                return -1;
            }
            size_t field = s->type == SHOAL_SETTING_INT    ? sizeof(int)
                           : s->type == SHOAL_SETTING_SIZE ? sizeof(size_t)
                           : s->type == SHOAL_SETTING_BOOL ? sizeof(bool)
                                                           : sizeof(char *);
            if (s->offset > table->size || table->size - s->offset < field) {
                snprintf(error, error_size, "%s: --%s lies outside the table's struct (offset %zu, size %zu)",
                         owner_of(table), s->flag, s->offset, table->size);
                return -1;
            }
            /* Every entry before this one, in this table and the earlier ones. */
            for (size_t h = 0; h <= g; h++) {
                const shoal_settings *other = groups[h].settings;
                size_t end = h == g ? i : other->count;
                for (size_t j = 0; j < end; j++) {
                    const shoal_setting *o = &other->table[j];
                    if (strcmp(o->flag, s->flag) == 0) {
                        snprintf(error, error_size, "--%s is declared twice: by %s and by %s", s->flag,
                                 owner_of(other), owner_of(table));
                        return -1;
                    }
                    if (s->variable != NULL && o->variable != NULL && strcmp(o->variable, s->variable) == 0) {
                        snprintf(error, error_size, "%s is declared twice: for --%s (%s) and for --%s (%s)",
                                 s->variable, o->flag, owner_of(other), s->flag, owner_of(table));
                        return -1;
                    }
                }
            }
        }
    }
    return 0;
}

int shoal_settings_defaults(const settings_group *groups, size_t count, char *error, size_t error_size)
{
    for (size_t g = 0; g < count; g++) {
        const shoal_settings *table = groups[g].settings;
        for (size_t i = 0; i < table->count; i++) {
            const shoal_setting *s = &table->table[i];
            char source[96];
            snprintf(source, sizeof source, "the default of --%s", s->flag);
            if (shoal_settings_apply(groups[g].values, s, s->default_value != NULL ? s->default_value : "", source,
                                     error, error_size) != 0)
                return -1;
        }
    }
    return 0;
}

int shoal_settings_environment(const settings_group *groups, size_t count, settings_env_fn env, char *error,
                               size_t error_size)
{
    if (env == NULL)
        return 0;
    for (size_t g = 0; g < count; g++) {
        const shoal_settings *table = groups[g].settings;
        for (size_t i = 0; i < table->count; i++) {
            const shoal_setting *s = &table->table[i];
            const char *value = s->variable != NULL ? env(s->variable) : NULL;
            if (value == NULL)
                continue;
            char source[128];
            snprintf(source, sizeof source, "%s (--%s)", s->variable, s->flag);
            if (shoal_settings_apply(groups[g].values, s, value, source, error, error_size) != 0)
                return -1;
        }
    }
    return 0;
}

settings_outcome shoal_settings_arguments(const settings_group *groups, size_t count, int argc, char **argv,
                                          int first, char *error, size_t error_size)
{
    for (int index = first; index < argc; index++) {
        const char *argument = argv[index];
        if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0)
            return SETTINGS_HELP;
        if (strcmp(argument, "--version") == 0)
            return SETTINGS_VERSION;
        if (strncmp(argument, "--", 2) != 0) {
            snprintf(error, error_size, "unexpected argument '%s'", argument);
            return SETTINGS_INVALID;
        }
        const char *name = argument + 2;
        const char *equals = strchr(name, '=');
        size_t name_length = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const shoal_setting *s = NULL;
        void *values = NULL;
        for (size_t g = 0; g < count && s == NULL; g++) {
            s = shoal_settings_find(groups[g].settings, name, name_length);
            values = groups[g].values;
        }
        if (s == NULL) {
            snprintf(error, error_size, "unknown option '--%.*s' (see --help)", (int)name_length, name);
            return SETTINGS_INVALID;
        }
        const char *value = NULL;
        if (equals != NULL) {
            value = equals + 1;
        } else if (s->type == SHOAL_SETTING_BOOL && (index + 1 >= argc || strncmp(argv[index + 1], "--", 2) == 0)) {
            value = "true"; /* a boolean flag alone (--strict) turns it on */
        } else if (index + 1 < argc) {
            value = argv[++index];
        } else {
            snprintf(error, error_size, "option '--%s' needs a value", s->flag);
            return SETTINGS_INVALID;
        }
        char source[96];
        snprintf(source, sizeof source, "--%s", s->flag);
        if (shoal_settings_apply(values, s, value, source, error, error_size) != 0)
            return SETTINGS_INVALID;
    }
    return SETTINGS_PARSED;
}

int shoal_settings_validate(const settings_group *groups, size_t count, char *error, size_t error_size)
{
    for (size_t g = 0; g < count; g++) {
        const shoal_settings *table = groups[g].settings;
        if (table->validate == NULL)
            continue;
        error[0] = '\0';
        if (table->validate(groups[g].values, error, error_size) != 0) {
            if (error[0] == '\0')
                snprintf(error, error_size, "%s: the settings are not valid", owner_of(table));
            return -1;
        }
    }
    return 0;
}

void shoal_settings_release(const settings_group *groups, size_t count)
{
    for (size_t g = 0; g < count; g++) {
        const shoal_settings *table = groups[g].settings;
        if (groups[g].values == NULL)
            continue;
        for (size_t i = 0; i < table->count; i++) {
            if (table->table[i].type != SHOAL_SETTING_STRING)
                continue;
            char *field = (char *)groups[g].values + table->table[i].offset, *old = NULL, *none = NULL;
            memcpy(&old, field, sizeof old);
            free(old);
            memcpy(field, &none, sizeof none);
        }
    }
}

void shoal_settings_print(FILE *out, const shoal_settings *settings, const char *indent)
{
    for (size_t i = 0; i < settings->count; i++) {
        const shoal_setting *s = &settings->table[i];
        const char *fallback = s->default_value != NULL && s->default_value[0] != '\0' ? s->default_value : "empty";
        const char *help = s->help != NULL ? s->help : "";
        if (s->variable != NULL) /* the variable beside the flag, the help below */
            fprintf(out, "%s--%-26s %s\n%s    %s (default: %s)\n", indent, s->flag, s->variable, indent, help,
                    fallback);
        else /* a command's own flag: one line */
            fprintf(out, "%s--%-12s %s (default: %s)\n", indent, s->flag, help, fallback);
    }
}

const void *shoal_settings_of(const shoal_settings_values *values, const shoal_settings *settings)
{
    if (values == NULL)
        return NULL;
    for (size_t g = 0; g < values->count; g++)
        if (values->groups[g].settings == settings)
            return values->groups[g].values;
    return NULL;
}
