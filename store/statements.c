/* store/statements.c: the registry of prepared statements and of the API
 * fields that constraints guard. Filled during setup on one thread, then
 * frozen and only read, by every worker at once. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* PostgreSQL truncates identifiers, statement names included, to 63 bytes:
 * two longer names could silently become one. */
#define NAME_LIMIT 63
/* The protocol's Bind message counts parameters in 16 bits. */
#define PARAMETER_LIMIT 65535

typedef struct statement_entry {
    char *name;
    char *sql;
    int param_count;
} statement_entry;

typedef struct constraint_entry {
    char *constraint;
    char *field;
} constraint_entry;

struct store_registry {
    statement_entry *statements;
    int statement_count;
    constraint_entry *constraints;
    int constraint_count;
    bool frozen;
};

store_registry *store_registry_new(void)
{
    return calloc(1, sizeof(store_registry));
}

void store_registry_free(store_registry *registry)
{
    if (registry == NULL)
        return;
    for (int i = 0; i < registry->statement_count; i++) {
        free(registry->statements[i].name);
        free(registry->statements[i].sql);
    }
    for (int i = 0; i < registry->constraint_count; i++) {
        free(registry->constraints[i].constraint);
        free(registry->constraints[i].field);
    }
    free(registry->statements);
    free(registry->constraints);
    free(registry);
}

store_statement store_registry_find(const store_registry *registry, const char *name)
{
    if (registry == NULL || name == NULL)
        return -1;
    for (int i = 0; i < registry->statement_count; i++)
        if (strcmp(registry->statements[i].name, name) == 0)
            return i;
    return -1;
}

store_statement store_registry_add(store_registry *registry, const char *name, const char *sql, int param_count)
{
    if (registry == NULL || registry->frozen || name == NULL || sql == NULL)
        return -1;
    /* "" is libpq's unnamed statement, which the next prepare replaces. */
    size_t length = strlen(name);
    if (length == 0 || length > NAME_LIMIT || param_count < 0 || param_count > PARAMETER_LIMIT)
        return -1;
    if (store_registry_find(registry, name) >= 0)
        return -1;
    statement_entry *grown =
        realloc(registry->statements, (size_t)(registry->statement_count + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    registry->statements = grown;
    statement_entry entry = {strdup(name), strdup(sql), param_count};
    if (entry.name == NULL || entry.sql == NULL) {
        free(entry.name);
        free(entry.sql);
        return -1;
    }
    registry->statements[registry->statement_count] = entry;
    return registry->statement_count++;
}

int store_registry_constraint(store_registry *registry, const char *constraint, const char *field)
{
    if (registry == NULL || registry->frozen || constraint == NULL || field == NULL || constraint[0] == '\0' ||
        field[0] == '\0' || store_registry_field(registry, constraint) != NULL)
        return -1;
    constraint_entry *grown =
        realloc(registry->constraints, (size_t)(registry->constraint_count + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    registry->constraints = grown;
    constraint_entry entry = {strdup(constraint), strdup(field)};
    if (entry.constraint == NULL || entry.field == NULL) {
        free(entry.constraint);
        free(entry.field);
        return -1;
    }
    registry->constraints[registry->constraint_count++] = entry;
    return 0;
}

void store_registry_freeze(store_registry *registry)
{
    if (registry != NULL)
        registry->frozen = true;
}

bool store_registry_frozen(const store_registry *registry)
{
    return registry != NULL && registry->frozen;
}

int store_registry_count(const store_registry *registry)
{
    return registry != NULL ? registry->statement_count : 0;
}

static const statement_entry *entry_of(const store_registry *registry, store_statement statement)
{
    if (registry == NULL || statement < 0 || statement >= registry->statement_count)
        return NULL;
    return &registry->statements[statement];
}

const char *store_registry_name(const store_registry *registry, store_statement statement)
{
    const statement_entry *entry = entry_of(registry, statement);
    return entry != NULL ? entry->name : NULL;
}

const char *store_registry_sql(const store_registry *registry, store_statement statement)
{
    const statement_entry *entry = entry_of(registry, statement);
    return entry != NULL ? entry->sql : NULL;
}

int store_registry_param_count(const store_registry *registry, store_statement statement)
{
    const statement_entry *entry = entry_of(registry, statement);
    return entry != NULL ? entry->param_count : -1;
}

const char *store_registry_field(const store_registry *registry, const char *constraint)
{
    if (registry == NULL || constraint == NULL)
        return NULL;
    for (int i = 0; i < registry->constraint_count; i++)
        if (strcmp(registry->constraints[i].constraint, constraint) == 0)
            return registry->constraints[i].field;
    return NULL;
}
