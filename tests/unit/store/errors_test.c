/* tests/unit/store/errors_test.c: store/errors.c, SQLSTATE to status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "store_internal.h"

static void each_sqlstate_maps_to_its_status(void **state)
{
    (void)state;
    static const struct {
        const char *sqlstate;
        store_status status;
    } cases[] = {
        {"23505", STORE_CONFLICT},    {"23514", STORE_INVALID},     {"23502", STORE_INVALID},
        {"23503", STORE_INVALID},     {"57014", STORE_TIMEOUT},     {"40001", STORE_BUSY},
        {"40P01", STORE_BUSY},        {"08000", STORE_UNAVAILABLE}, {"08006", STORE_UNAVAILABLE},
        {"08P01", STORE_UNAVAILABLE}, {"57P01", STORE_UNAVAILABLE}, {"57P02", STORE_UNAVAILABLE},
        {"57P03", STORE_UNAVAILABLE}, {"57P04", STORE_UNAVAILABLE}, {"57P05", STORE_UNAVAILABLE},
        {"57000", STORE_UNAVAILABLE}, {"25006", STORE_UNAVAILABLE}, {"25001", STORE_ERROR},
        {"58000", STORE_ERROR},       {"5700", STORE_ERROR},        {"23000", STORE_ERROR},
        {"42P01", STORE_ERROR},       {"22P02", STORE_ERROR},       {"40002", STORE_ERROR},
        {"25P02", STORE_ERROR},       {"", STORE_ERROR},            {"0800", STORE_ERROR},
        {"080000", STORE_ERROR},      {"22021", STORE_INVALID},     {"22P05", STORE_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (store_status_for_sqlstate(cases[i].sqlstate) != cases[i].status)
            fail_msg("%s gave %d, expected %d", cases[i].sqlstate, store_status_for_sqlstate(cases[i].sqlstate),
                     cases[i].status);
    assert_int_equal(store_status_for_sqlstate(NULL), STORE_ERROR);
    assert_true(store_sqlstate_retryable("40001"));
    assert_true(store_sqlstate_retryable("40P01"));
    assert_false(store_sqlstate_retryable("40002"));
    assert_false(store_sqlstate_retryable(NULL));
}

static store_registry *users_registry(void)
{
    store_registry *registry = store_registry_new();
    assert_int_equal(store_registry_constraint(registry, "users_email_key", "email"), 0);
    assert_int_equal(store_registry_constraint(registry, "users_bio_length", "bio"), 0);
    assert_int_equal(store_registry_constraint(registry, "user_name", "username"), 0);
    store_registry_freeze(registry);
    return registry;
}

static void a_violation_names_the_mapped_field(void **state)
{
    (void)state;
    store_registry *registry = users_registry();
    store_error error;
    char storage[64];
    store_describe_failure(&error, storage, sizeof storage, registry, "23505", "users_email_key", NULL,
                           "duplicate key value violates unique constraint \"users_email_key\"");
    assert_int_equal(error.status, STORE_CONFLICT);
    assert_string_equal(error.sqlstate, "23505");
    assert_string_equal(error.constraint, "users_email_key");
    assert_string_equal(error.field, "email");
    assert_non_null(strstr(error.message, "duplicate key"));

    store_describe_failure(&error, storage, sizeof storage, registry, "23514", "users_bio_length", NULL, "check");
    assert_int_equal(error.status, STORE_INVALID);
    assert_string_equal(error.field, "bio");

    /* An unmapped constraint names no field: the caller answers for the body. */
    store_describe_failure(&error, storage, sizeof storage, registry, "23505", "articles_slug_key", NULL, "dup");
    assert_int_equal(error.status, STORE_CONFLICT);
    assert_null(error.field);
    store_registry_free(registry);
}

static void a_not_null_violation_names_the_column(void **state)
{
    (void)state;
    store_registry *registry = users_registry();
    store_error error;
    char storage[64];
    store_describe_failure(&error, storage, sizeof storage, registry, "23502", NULL, "user_name", "null value");
    assert_string_equal(error.field, "username"); /* through the map */
    store_describe_failure(&error, storage, sizeof storage, registry, "23502", NULL, "title", "null value");
    assert_string_equal(error.field, "title"); /* the column itself */
    assert_ptr_equal(error.field, storage);
    assert_string_equal(error.constraint, "");
    store_registry_free(registry);
}

static void other_failures_name_no_field_and_keep_one_line(void **state)
{
    (void)state;
    store_error error;
    store_describe_failure(&error, NULL, 0, NULL, "42P01", "users_email_key", "x",
                           "relation \"nope\" does not exist\n\tLINE 1: ...\n");
    assert_int_equal(error.status, STORE_ERROR);
    assert_null(error.field);
    assert_null(strchr(error.message, '\n'));
    assert_null(strchr(error.message, '\t'));
    store_describe_failure(&error, NULL, 0, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(error.status, STORE_ERROR);
    assert_string_equal(error.sqlstate, "");
    assert_string_equal(error.message, "");
    /* A long constraint name is cut, never overflows. */
    char long_name[200];
    memset(long_name, 'c', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    store_describe_failure(&error, NULL, 0, NULL, "23505", long_name, NULL, "dup");
    assert_int_equal(strlen(error.constraint), sizeof error.constraint - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_sqlstate_maps_to_its_status),
        cmocka_unit_test(a_violation_names_the_mapped_field),
        cmocka_unit_test(a_not_null_violation_names_the_column),
        cmocka_unit_test(other_failures_name_no_field_and_keep_one_line),
    };
    return cmocka_run_group_tests_name("unit.store.errors", tests, NULL, NULL);
}
