/* tests/support/http_client.c */
#include "http_client.h"
#include "test_env.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int test_http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool test_http_send(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t sent = send(fd, data, length, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        data += sent;
        length -= (size_t)sent;
    }
    return true;
}

/* Deadlines are written for a Release build on a quiet machine;
 * SHOAL_TEST_TIME_SCALE stretches them for valgrind and the sanitizers. */
static int scaled_ms(int timeout_ms)
{
    double ms = timeout_ms * test_env_time_scale();
    return ms > 600000.0 ? 600000 : (int)ms;
}

/* Reads one byte with a deadline; -1 on EOF, error or timeout. */
static int read_byte(int fd, int timeout_ms)
{
    struct pollfd waiting = {.fd = fd, .events = POLLIN};
    if (poll(&waiting, 1, timeout_ms) <= 0)
        return -1;
    unsigned char byte;
    ssize_t got = recv(fd, &byte, 1, 0);
    return got == 1 ? byte : -1;
}

bool test_http_header(const test_response *response, const char *name, char *out, size_t size)
{
    size_t name_length = strlen(name);
    const char *line = response->headers;
    while (line != NULL && *line != '\0') {
        if (strncasecmp(line, name, name_length) == 0 && line[name_length] == ':') {
            const char *value = line + name_length + 1;
            while (*value == ' ')
                value++;
            size_t length = strcspn(value, "\r\n");
            if (length >= size)
                length = size - 1;
            memcpy(out, value, length);
            out[length] = '\0';
            return true;
        }
        line = strstr(line, "\r\n");
        if (line != NULL)
            line += 2;
    }
    return false;
}

bool test_http_read(int fd, test_response *response, bool head_only, int timeout_ms)
{
    timeout_ms = scaled_ms(timeout_ms);
    memset(response, 0, sizeof *response);
    char block[sizeof response->headers + 256];
    size_t length = 0;
    /* Byte by byte up to the blank line, so that a pipelined second
     * response stays in the socket for the next call. */
    while (length < sizeof block - 1) {
        int byte = read_byte(fd, timeout_ms);
        if (byte < 0)
            return false;
        block[length++] = (char)byte;
        if (length >= 4 && memcmp(block + length - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    block[length] = '\0';
    if (sscanf(block, "HTTP/1.%*d %d", &response->status) != 1)
        return false;
    const char *headers = strstr(block, "\r\n");
    snprintf(response->headers, sizeof response->headers, "%s", headers != NULL ? headers + 2 : "");

    char value[32];
    size_t body_length = 0;
    if (!head_only && response->status != 204 && response->status != 304 &&
        test_http_header(response, "Content-Length", value, sizeof value))
        body_length = strtoul(value, NULL, 10);
    response->body = malloc(body_length + 1);
    if (response->body == NULL)
        return false;
    size_t got = 0;
    while (got < body_length) {
        struct pollfd waiting = {.fd = fd, .events = POLLIN};
        if (poll(&waiting, 1, timeout_ms) <= 0)
            return false;
        ssize_t n = recv(fd, response->body + got, body_length - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    response->body[body_length] = '\0';
    response->body_length = body_length;
    return true;
}

bool test_http_request(int port, const char *raw_request, test_response *response)
{
    int fd = test_http_connect(port);
    if (fd < 0)
        return false;
    bool ok = test_http_send(fd, raw_request, strlen(raw_request)) &&
              test_http_read(fd, response, strncmp(raw_request, "HEAD ", 5) == 0, 5000);
    close(fd);
    return ok;
}

void test_http_response_free(test_response *response)
{
    free(response->body);
    response->body = NULL;
}

bool test_http_closed_within(int fd, int timeout_ms)
{
    timeout_ms = scaled_ms(timeout_ms);
    char buffer[256];
    for (;;) {
        struct pollfd waiting = {.fd = fd, .events = POLLIN};
        int ready = poll(&waiting, 1, timeout_ms);
        if (ready <= 0)
            return false;
        ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0)
            return true; /* EOF or reset */
    }
}

int test_silent_listener(int *port)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0)
        return -1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 8) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &size) != 0) {
        close(listener);
        return -1;
    }
    *port = ntohs(address.sin_port);
    return listener;
}
