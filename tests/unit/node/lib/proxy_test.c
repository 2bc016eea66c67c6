/* tests/unit/node/lib/proxy_test.c: node/lib/proxy.c and shoal_client_address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fake_request.h"
#include "proxy.h"

static shoal_proxies *parse(const char *text)
{
    char error[256] = "";
    shoal_proxies *proxies = shoal_proxies_parse(text, error, sizeof error);
    if (proxies == NULL)
        fail_msg("'%s': %s", text, error);
    return proxies;
}

static void refused(const char *text)
{
    char error[256] = "";
    shoal_proxies *proxies = shoal_proxies_parse(text, error, sizeof error);
    if (proxies != NULL)
        fail_msg("'%s' was accepted", text);
    assert_true(error[0] != '\0');
}

static void test_addresses_and_cidrs_parse(void **state)
{
    (void)state;
    shoal_proxies *proxies = parse("127.0.0.0/8, ::1,10.1.2.3 , 192.168.0.0/16,fd00::/8,0.0.0.0/0");
    shoal_proxies_free(proxies);
    proxies = parse("");
    assert_false(shoal_proxies_contains(proxies, "127.0.0.1"));
    assert_false(shoal_proxies_contains(proxies, "::1"));
    shoal_proxies_free(proxies);
}

static void test_bad_lists_are_refused(void **state)
{
    (void)state;
    refused("localhost");
    refused("127.0.0.1,");
    refused(",127.0.0.1");
    refused("127.0.0.1,,::1");
    refused("127.0.0.0/33");
    refused("::/129");
    refused("127.0.0.0/");
    refused("127.0.0.0/8x");
    refused("127.0.0.0/-1");
    refused("10.0.0.256");
    refused("10.0.0");
    refused("1.2.3.4 5.6.7.8");
    refused("::ffff:10.0.0.0/95");
}

static void test_membership_follows_prefixes(void **state)
{
    (void)state;
    shoal_proxies *proxies = parse("127.0.0.0/8,::1,10.20.0.0/14,2001:db8::/33,192.0.2.7");
    assert_true(shoal_proxies_contains(proxies, "127.0.0.1"));
    assert_true(shoal_proxies_contains(proxies, "127.255.3.4"));
    assert_false(shoal_proxies_contains(proxies, "128.0.0.1"));
    assert_true(shoal_proxies_contains(proxies, "::1"));
    assert_false(shoal_proxies_contains(proxies, "::2"));
    assert_true(shoal_proxies_contains(proxies, "10.23.255.255"));
    assert_false(shoal_proxies_contains(proxies, "10.24.0.0"));
    assert_true(shoal_proxies_contains(proxies, "2001:db8:7fff::1"));
    assert_false(shoal_proxies_contains(proxies, "2001:db8:8000::1"));
    assert_true(shoal_proxies_contains(proxies, "192.0.2.7"));
    assert_false(shoal_proxies_contains(proxies, "192.0.2.8"));
    /* A dual-stack listener reports IPv4 peers as mapped IPv6. */
    assert_true(shoal_proxies_contains(proxies, "::ffff:127.0.0.1"));
    assert_false(shoal_proxies_contains(proxies, "not an address"));
    assert_false(shoal_proxies_contains(proxies, NULL));
    shoal_proxies_free(proxies);

    proxies = parse("::ffff:10.0.0.0/104");
    assert_true(shoal_proxies_contains(proxies, "10.9.8.7"));
    assert_false(shoal_proxies_contains(proxies, "11.0.0.1"));
    shoal_proxies_free(proxies);
}

static const char *client(const shoal_proxies *proxies, const char *peer, const char *forwarded, shoal_arena *arena)
{
    const char *address = shoal_proxies_client(proxies, peer, forwarded, arena);
    assert_non_null(address);
    return address;
}

static void test_the_right_most_untrusted_entry_is_the_client(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    shoal_proxies *proxies = parse("127.0.0.0/8,::1,10.0.0.0/8");

    /* An untrusted peer is the client, whatever it forwards. */
    assert_string_equal(client(proxies, "203.0.113.9", "198.51.100.1", &arena), "203.0.113.9");
    /* A trusted peer without the header: the peer. */
    assert_string_equal(client(proxies, "127.0.0.1", NULL, &arena), "127.0.0.1");
    /* HAProxy appended the address it saw. */
    assert_string_equal(client(proxies, "127.0.0.1", "198.51.100.1", &arena), "198.51.100.1");
    /* A client-sent value comes first; HAProxy's entry is the right-most. */
    assert_string_equal(client(proxies, "127.0.0.1", "6.6.6.6, 198.51.100.1", &arena), "198.51.100.1");
    assert_string_equal(client(proxies, "127.0.0.1", "6.6.6.6,198.51.100.1", &arena), "198.51.100.1");
    /* Trusted hops on the right are skipped. */
    assert_string_equal(client(proxies, "127.0.0.1", "6.6.6.6, 198.51.100.1, 10.1.1.1, 10.2.2.2", &arena),
                        "198.51.100.1");
    /* Every entry trusted: the left-most one. */
    assert_string_equal(client(proxies, "127.0.0.1", "10.1.1.1, 10.2.2.2", &arena), "10.1.1.1");
    /* Garbage stops the walk at the last hop still trusted. */
    assert_string_equal(client(proxies, "127.0.0.1", "198.51.100.1, unknown, 10.2.2.2", &arena), "10.2.2.2");
    assert_string_equal(client(proxies, "127.0.0.1", "<script>", &arena), "127.0.0.1");
    /* Empty entries are skipped; forms with brackets and ports read. */
    assert_string_equal(client(proxies, "127.0.0.1", "198.51.100.1, ,", &arena), "198.51.100.1");
    assert_string_equal(client(proxies, "127.0.0.1", "[2001:db8::5]:443", &arena), "2001:db8::5");
    assert_string_equal(client(proxies, "127.0.0.1", "198.51.100.1:5555", &arena), "198.51.100.1");
    /* Canonical text: the same client is one rate-limit key. */
    assert_string_equal(client(proxies, "::1", "2001:DB8:0:0::5", &arena), "2001:db8::5");
    assert_string_equal(client(proxies, "::ffff:127.0.0.1", "::ffff:198.51.100.1", &arena), "198.51.100.1");
    shoal_proxies_free(proxies);

    /* Trusting nobody: the header never matters. */
    proxies = parse("");
    assert_string_equal(client(proxies, "127.0.0.1", "198.51.100.1", &arena), "127.0.0.1");
    shoal_proxies_free(proxies);
    shoal_arena_release(&arena);
}

/* ---- through the request context ------------------------------------------- */

static void test_the_context_reads_every_header_line(void **state)
{
    (void)state;
    shoal_config config;
    fake_config_load(&config, NULL);
    shoal_app *app = shoal_app_new(&config);
    assert_non_null(app);

    fake_request request;
    fake_request_init(&request, app, NULL, "GET", "/");
    request.connection.client_address = "127.0.0.1";
    /* The client's own line first, then the one HAProxy adds. */
    fake_request_header(&request, "X-Forwarded-For", "6.6.6.6");
    fake_request_header(&request, "x-forwarded-for", "198.51.100.1");
    assert_string_equal(shoal_client_address(&request.ctx), "198.51.100.1");
    assert_string_equal(shoal_peer_address(&request.ctx), "127.0.0.1");
    fake_request_finish(&request);

    fake_request_init(&request, app, NULL, "GET", "/");
    request.connection.client_address = "192.0.2.50";
    fake_request_header(&request, "X-Forwarded-For", "198.51.100.1");
    assert_string_equal(shoal_client_address(&request.ctx), "192.0.2.50");
    assert_string_equal(shoal_peer_address(&request.ctx), "192.0.2.50");
    fake_request_finish(&request);
    shoal_app_free(app);
    shoal_config_free(&config);
}

static void test_the_setting_is_validated(void **state)
{
    (void)state;
    shoal_config config;
    const char *argv[] = {"shoal-node", "--trusted-proxies", "10.0.0.0/8,nonsense"};
    char error[256] = "";
    assert_int_equal(shoal_config_load(&config, 3, (char **)argv, NULL, error, sizeof error), -1);
    assert_non_null(strstr(error, "--trusted-proxies"));
    assert_non_null(strstr(error, "nonsense"));

    const char *empty[] = {"shoal-node", "--trusted-proxies", ""};
    assert_int_equal(shoal_config_load(&config, 3, (char **)empty, NULL, error, sizeof error), 0);
    assert_string_equal(config.trusted_proxies, "");
    shoal_config_free(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses_and_cidrs_parse),
        cmocka_unit_test(test_bad_lists_are_refused),
        cmocka_unit_test(test_membership_follows_prefixes),
        cmocka_unit_test(test_the_right_most_untrusted_entry_is_the_client),
        cmocka_unit_test(test_the_context_reads_every_header_line),
        cmocka_unit_test(test_the_setting_is_validated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
