/* tests/integration/node/services/conduit/api_test_support.h: one node with the API over
 * real HTTP, and the calls the API's tests share. Included by each test
 * program once (its functions are static). Every run uses accounts and
 * client addresses of its own, since the servers outlive a run. */
#ifndef API_TEST_SUPPORT_H
#define API_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/ext/request_id.h>
#include <shoal/ext/session.h>
#include <shoal/store.h>

#include "conduit/api.h"
#include "test_env.h"
#include "test_node.h"

static test_node server;
static char tag[32];
/* Client addresses for this run (X-Forwarded-For from loopback, which the
 * node trusts by default). */
static unsigned address_base;

static inline int start(void **state)
{
    (void)state;
    srand((unsigned)(getpid() ^ time(NULL)));
    snprintf(tag, sizeof tag, "%x%x", (unsigned)getpid(), (unsigned)time(NULL));
    address_base = (unsigned)rand() % 200;
    test_node_migrate();
    /* A cheap hash keeps the test fast; the limits are small to reach. */
    const char *const flags[] = {"--password-ops-limit", "1", "--password-mem-limit", "64k",
                                 "--login-failures-per-account", "3/h burst 3",
                                 "--login-failures-per-address", "6/h burst 6", "--redis-timeout-ms", "5000", NULL};
    static const shoal_extension *const extensions[] = {&shoal_request_id_extension, &shoal_session_extension,
                                                        &shoal_api_extension, NULL};
    test_node_start(&server, flags, extensions);
    return 0;
}

static inline int stop(void **state)
{
    (void)state;
    test_node_stop(&server);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

/* An address of this run: 10.<base>.<n>.1. */
static inline void forwarded_for(int n, char *out, size_t size)
{
    snprintf(out, size, "X-Forwarded-For: 10.%u.%d.1\r\n", address_base, n);
}

static inline json_t *parse(const test_response *response)
{
    json_error_t error;
    json_t *body = json_loads(response->body, 0, &error);
    if (body == NULL)
        fail_msg("not JSON (%s): %s", error.text, response->body);
    return body;
}

static inline test_response call(const char *method, const char *path, const char *token, const char *extra,
                          const char *body)
{
    char headers[512] = "";
    if (token != NULL)
        snprintf(headers, sizeof headers, "Authorization: Token %s\r\n", token);
    if (extra != NULL)
        strncat(headers, extra, sizeof headers - strlen(headers) - 1);
    return test_node_call(&server, method, path, headers, body);
}

/* The 422 envelope names field with message. */
static inline void expect_invalid(const test_response *response, const char *field, const char *message)
{
    if (response->status != 422)
        fail_msg("status %d, not 422: %s", response->status, response->body);
    json_t *body = parse(response);
    json_t *messages = json_object_get(json_object_get(body, "errors"), field);
    if (!json_is_array(messages) || json_array_size(messages) != 1)
        fail_msg("no errors.%s in %s", field, response->body);
    assert_string_equal(json_string_value(json_array_get(messages, 0)), message);
    json_decref(body);
}

/* Checks a user answer's shape; returns its token (malloc'd). */
static inline char *expect_user(const test_response *response, int status, const char *email, const char *username)
{
    if (response->status != status)
        fail_msg("status %d, not %d: %s", response->status, status, response->body);
    json_t *body = parse(response);
    json_t *user = json_object_get(body, "user");
    assert_true(json_is_object(user));
    assert_int_equal(json_object_size(user), 5);
    assert_string_equal(json_string_value(json_object_get(user, "email")), email);
    assert_string_equal(json_string_value(json_object_get(user, "username")), username);
    assert_non_null(json_object_get(user, "bio"));
    assert_non_null(json_object_get(user, "image"));
    const char *token = json_string_value(json_object_get(user, "token"));
    assert_non_null(token);
    assert_int_equal(strlen(token), 43);
    char *copy = strdup(token);
    json_decref(body);
    return copy;
}

static inline void names(const char *who, char *email, size_t email_size, char *username, size_t username_size)
{
    snprintf(email, email_size, "%s_%s@example.com", who, tag);
    snprintf(username, username_size, "%s_%s", who, tag);
}

static inline char *register_user(const char *email, const char *username, const char *password)
{
    char body[512];
    snprintf(body, sizeof body, "{\"user\":{\"username\":\"%s\",\"email\":\"%s\",\"password\":\"%s\"}}", username,
             email, password);
    test_response response = call("POST", "/api/users", NULL, NULL, body);
    char *token = expect_user(&response, 201, email, username);
    test_http_response_free(&response);
    return token;
}

static inline test_response login(const char *email, const char *password, const char *extra)
{
    char body[512];
    snprintf(body, sizeof body, "{\"user\":{\"email\":\"%s\",\"password\":\"%s\"}}", email, password);
    return call("POST", "/api/users/login", NULL, extra, body);
}

static inline int status_of(test_response response)
{
    int status = response.status;
    test_http_response_free(&response);
    return status;
}

#endif
