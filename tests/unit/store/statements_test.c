/* tests/unit/store/statements_test.c: store/statements.c, the registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "store_internal.h"

static void ids_count_up_from_zero_and_find_by_name(void **state)
{
    (void)state;
    store_registry *registry = store_registry_new();
    assert_non_null(registry);
    assert_int_equal(store_registry_add(registry, "world_by_id", "SELECT id FROM world WHERE id = $1", 1), 0);
    assert_int_equal(store_registry_add(registry, "fortunes", "SELECT id, message FROM fortune", 0), 1);
    assert_int_equal(store_registry_count(registry), 2);
    assert_int_equal(store_registry_find(registry, "fortunes"), 1);
    assert_int_equal(store_registry_find(registry, "world_by_id"), 0);
    assert_int_equal(store_registry_find(registry, "missing"), -1);
    assert_string_equal(store_registry_name(registry, 1), "fortunes");
    assert_string_equal(store_registry_sql(registry, 0), "SELECT id FROM world WHERE id = $1");
    assert_int_equal(store_registry_param_count(registry, 0), 1);
    assert_null(store_registry_name(registry, 2));
    assert_null(store_registry_name(registry, -1));
    assert_int_equal(store_registry_param_count(registry, 7), -1);
    store_registry_free(registry);
}

static void names_and_sql_are_copied(void **state)
{
    (void)state;
    store_registry *registry = store_registry_new();
    char name[] = "changing";
    char sql[] = "SELECT 1";
    assert_int_equal(store_registry_add(registry, name, sql, 0), 0);
    name[0] = 'X';
    sql[0] = 'X';
    assert_string_equal(store_registry_name(registry, 0), "changing");
    assert_string_equal(store_registry_sql(registry, 0), "SELECT 1");
    store_registry_free(registry);
}

static void bad_additions_are_refused(void **state)
{
    (void)state;
    store_registry *registry = store_registry_new();
    assert_int_equal(store_registry_add(registry, "one", "SELECT 1", 0), 0);
    assert_int_equal(store_registry_add(registry, "one", "SELECT 2", 0), -1);
    assert_int_equal(store_registry_add(registry, "", "SELECT 1", 0), -1);
    assert_int_equal(store_registry_add(registry, NULL, "SELECT 1", 0), -1);
    assert_int_equal(store_registry_add(registry, "no_sql", NULL, 0), -1);
    assert_int_equal(store_registry_add(registry, "negative", "SELECT 1", -1), -1);
    assert_int_equal(store_registry_add(registry, "too_many", "SELECT 1", 65536), -1);
    char long_name[65];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    assert_int_equal(store_registry_add(registry, long_name, "SELECT 1", 0), -1);
    long_name[63] = '\0';
    assert_int_equal(store_registry_add(registry, long_name, "SELECT 1", 0), 1);
    assert_int_equal(store_registry_count(registry), 2);
    assert_int_equal(store_registry_add(NULL, "x", "SELECT 1", 0), -1);
    store_registry_free(registry);
}

static void a_frozen_registry_takes_nothing_more(void **state)
{
    (void)state;
    store_registry *registry = store_registry_new();
    assert_false(store_registry_frozen(registry));
    assert_int_equal(store_registry_add(registry, "before", "SELECT 1", 0), 0);
    assert_int_equal(store_registry_constraint(registry, "users_email_key", "email"), 0);
    store_registry_freeze(registry);
    assert_true(store_registry_frozen(registry));
    assert_int_equal(store_registry_add(registry, "after", "SELECT 1", 0), -1);
    assert_int_equal(store_registry_constraint(registry, "users_username_key", "username"), -1);
    assert_int_equal(store_registry_find(registry, "before"), 0);
    assert_string_equal(store_registry_field(registry, "users_email_key"), "email");
    store_registry_free(registry);
}

static void constraints_map_to_fields_once(void **state)
{
    (void)state;
    store_registry *registry = store_registry_new();
    assert_int_equal(store_registry_constraint(registry, "users_email_key", "email"), 0);
    assert_int_equal(store_registry_constraint(registry, "users_username_key", "username"), 0);
    assert_int_equal(store_registry_constraint(registry, "users_email_key", "other"), -1);
    assert_int_equal(store_registry_constraint(registry, "", "x"), -1);
    assert_int_equal(store_registry_constraint(registry, "x", ""), -1);
    assert_string_equal(store_registry_field(registry, "users_username_key"), "username");
    assert_string_equal(store_registry_field(registry, "users_email_key"), "email");
    assert_null(store_registry_field(registry, "articles_slug_key"));
    assert_null(store_registry_field(NULL, "users_email_key"));
    assert_null(store_registry_field(registry, NULL));
    store_registry_free(registry);
}

static void an_empty_or_missing_registry_is_harmless(void **state)
{
    (void)state;
    assert_int_equal(store_registry_count(NULL), 0);
    assert_int_equal(store_registry_find(NULL, "x"), -1);
    assert_null(store_registry_name(NULL, 0));
    store_registry_freeze(NULL);
    store_registry_free(NULL);
}

static void stores_open_only_with_a_frozen_registry(void **state)
{
    (void)state;
    store_registry *registry = store_registry_new();
    /* Nothing connects at open, so an unreachable address is fine here. */
    store_config config = {.conninfo = "postgresql://127.0.0.1:1/none", .registry = registry};
    assert_null(store_open(&config));
    store_registry_freeze(registry);
    store *s = store_open(&config);
    assert_non_null(s);
    store_close(s);
    store_registry_free(registry);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_count_up_from_zero_and_find_by_name),
        cmocka_unit_test(names_and_sql_are_copied),
        cmocka_unit_test(bad_additions_are_refused),
        cmocka_unit_test(a_frozen_registry_takes_nothing_more),
        cmocka_unit_test(constraints_map_to_fields_once),
        cmocka_unit_test(an_empty_or_missing_registry_is_harmless),
        cmocka_unit_test(stores_open_only_with_a_frozen_registry),
    };
    return cmocka_run_group_tests_name("unit.store.statements", tests, NULL, NULL);
}
