/* tests/support/http_client.h: a raw HTTP/1.1 client for tests, so that
 * what goes over the wire (keep-alive, pipelining, half-sent requests) is
 * exactly what the test wrote. */
#ifndef TEST_HTTP_CLIENT_H
#define TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct test_response {
    int status;
    char headers[8192]; /* raw header block, "\r\n" separated */
    char *body;         /* malloc'd, NUL-terminated */
    size_t body_length;
} test_response;

/* A connected socket to 127.0.0.1:port, or -1. */
int test_http_connect(int port);
/* Writes all bytes; false on error. */
bool test_http_send(int fd, const char *data, size_t length);
/* Reads one response (Content-Length bodies; HEAD and 204/304 have none
 * when head_only is set or by status). Returns false on EOF or a malformed
 * answer, or after timeout_ms without one. Every timeout_ms here is
 * multiplied by SHOAL_TEST_TIME_SCALE (tests/support/test_env.h). */
bool test_http_read(int fd, test_response *response, bool head_only, int timeout_ms);
/* One request on a fresh connection, closed afterwards (5 s to answer). */
bool test_http_request(int port, const char *raw_request, test_response *response);
/* Value of a header (case-insensitive name) copied into out; false if absent. */
bool test_http_header(const test_response *response, const char *name, char *out, size_t size);
void test_http_response_free(test_response *response);
/* True when the peer closed the connection within timeout_ms. */
bool test_http_closed_within(int fd, int timeout_ms);

/* A hung server: a socket on 127.0.0.1 (a free port, put in *port) that
 * listens and never accepts, so connects complete from the kernel's
 * backlog and nobody ever speaks. The socket, or -1; close it when done. */
int test_silent_listener(int *port);

#endif
