/* tests/unit/cache/url_test.c: cache_url_parse in cache/cache.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <shoal/cache.h>

static cache_endpoint parse_ok(const char *url)
{
    cache_endpoint endpoint;
    char error[256] = "";
    if (cache_url_parse(url, &endpoint, error, sizeof error) != 0)
        fail_msg("'%s' was refused: %s", url, error);
    return endpoint;
}

static void assert_refused(const char *url, const char *reason_part)
{
    cache_endpoint endpoint;
    char error[256] = "";
    if (cache_url_parse(url, &endpoint, error, sizeof error) != -1)
        fail_msg("'%s' was accepted", url);
    if (strstr(error, reason_part) == NULL)
        fail_msg("'%s': reason '%s' lacks '%s'", url, error, reason_part);
}

static void test_host_port_and_database(void **state)
{
    (void)state;
    cache_endpoint e = parse_ok("redis://cache.internal:6380/3");
    assert_string_equal(e.host, "cache.internal");
    assert_int_equal(e.port, 6380);
    assert_int_equal(e.database, 3);
    assert_string_equal(e.username, "");
    assert_string_equal(e.password, "");
}

static void test_defaults_are_localhost_6379_database_0(void **state)
{
    (void)state;
    cache_endpoint e = parse_ok("redis://cache.internal");
    assert_string_equal(e.host, "cache.internal");
    assert_int_equal(e.port, 6379);
    assert_int_equal(e.database, 0);

    e = parse_ok("redis://");
    assert_string_equal(e.host, "127.0.0.1");
    assert_int_equal(e.port, 6379);

    e = parse_ok("redis://:6390");
    assert_string_equal(e.host, "127.0.0.1");
    assert_int_equal(e.port, 6390);

    e = parse_ok("redis://10.0.0.5/");
    assert_string_equal(e.host, "10.0.0.5");
    assert_int_equal(e.database, 0);
}

static void test_password_alone_and_user_with_password(void **state)
{
    (void)state;
    cache_endpoint e = parse_ok("redis://:s3cret@cache:6379/1");
    assert_string_equal(e.username, "");
    assert_string_equal(e.password, "s3cret");
    assert_string_equal(e.host, "cache");
    assert_int_equal(e.database, 1);

    e = parse_ok("redis://shoal:s3cret@cache");
    assert_string_equal(e.username, "shoal");
    assert_string_equal(e.password, "s3cret");

    /* A colon after the first belongs to the password. */
    e = parse_ok("redis://shoal:a:b@cache");
    assert_string_equal(e.username, "shoal");
    assert_string_equal(e.password, "a:b");
}

static void test_percent_escapes_in_user_and_password(void **state)
{
    (void)state;
    cache_endpoint e = parse_ok("redis://us%65r:p%40ss%2Fw%3aord@cache:7000");
    assert_string_equal(e.username, "user");
    assert_string_equal(e.password, "p@ss/w:ord");
    assert_string_equal(e.host, "cache");
    assert_int_equal(e.port, 7000);

    /* The last '@' ends the user information. */
    e = parse_ok("redis://:p@ss@cache");
    assert_string_equal(e.password, "p@ss");
    assert_string_equal(e.host, "cache");
}

static void test_ipv6_hosts_in_brackets(void **state)
{
    (void)state;
    cache_endpoint e = parse_ok("redis://[::1]:6381/2");
    assert_string_equal(e.host, "::1");
    assert_int_equal(e.port, 6381);
    assert_int_equal(e.database, 2);

    e = parse_ok("redis://:pw@[fe80::1%25eth0]");
    assert_string_equal(e.host, "fe80::1%25eth0");
    assert_int_equal(e.port, 6379);
    assert_string_equal(e.password, "pw");
}

static void test_query_after_the_database_is_ignored(void **state)
{
    (void)state;
    cache_endpoint e = parse_ok("redis://cache:6379/4?timeout=1");
    assert_int_equal(e.database, 4);
    e = parse_ok("redis://cache?timeout=1");
    assert_string_equal(e.host, "cache");
    assert_int_equal(e.database, 0);
}

static void test_wrong_scheme_is_refused(void **state)
{
    (void)state;
    assert_refused("http://cache:6379", "redis://");
    assert_refused("rediss://cache:6379", "redis://");
    assert_refused("REDIS://cache", "redis://");
    assert_refused("cache:6379", "redis://");
    assert_refused("", "redis://");
    cache_endpoint e;
    char error[64];
    assert_int_equal(cache_url_parse(NULL, &e, error, sizeof error), -1);
}

static void test_bad_ports_are_refused(void **state)
{
    (void)state;
    assert_refused("redis://cache:0", "port");
    assert_refused("redis://cache:65536", "port");
    assert_refused("redis://cache:-1", "port");
    assert_refused("redis://cache:", "port");
    assert_refused("redis://cache:63x9", "port");
    assert_refused("redis://[::1]:abc", "port");
}

static void test_junk_is_refused(void **state)
{
    (void)state;
    assert_refused("redis://cache/db", "database");
    assert_refused("redis://cache/1x", "database");
    assert_refused("redis://cache/-1", "database");
    assert_refused("redis://[::1", "[");
    assert_refused("redis://[::1]x:6379", "after");
    assert_refused("redis://:p%4@cache", "password");
    assert_refused("redis://:p%zz@cache", "password");
    assert_refused("redis://::1/0", "port");
}

static void test_oversized_parts_are_refused(void **state)
{
    (void)state;
    char url[700];
    strcpy(url, "redis://");
    memset(url + 8, 'h', 300);
    strcpy(url + 308, ":6379");
    assert_refused(url, "too long");

    strcpy(url, "redis://:");
    memset(url + 9, 'p', 300);
    strcpy(url + 309, "@cache");
    assert_refused(url, "too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_port_and_database),
        cmocka_unit_test(test_defaults_are_localhost_6379_database_0),
        cmocka_unit_test(test_password_alone_and_user_with_password),
        cmocka_unit_test(test_percent_escapes_in_user_and_password),
        cmocka_unit_test(test_ipv6_hosts_in_brackets),
        cmocka_unit_test(test_query_after_the_database_is_ignored),
        cmocka_unit_test(test_wrong_scheme_is_refused),
        cmocka_unit_test(test_bad_ports_are_refused),
        cmocka_unit_test(test_junk_is_refused),
        cmocka_unit_test(test_oversized_parts_are_refused),
    };
    return cmocka_run_group_tests_name("cache/url", tests, NULL, NULL);
}
