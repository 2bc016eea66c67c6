/* tests/fuzz/node/lib/url_fuzz.c: the query string, from the raw request
 * target to the handlers that read its values.
 *
 * The input is a request target ("/api/articles?limit=5&tag=a%20b"). It is
 * split and decoded as the HTTP layer does (node/lib/url.c, with
 * libmicrohttpd's splitting rules, see tests/fuzz/support), the decoding
 * is checked against an independent reference, the `queries`/`count`
 * values against a reference of the TechEmpower clamp
 * (node/services/techempower/query_count.c), and then the request goes through the whole
 * pipeline, on its own path and on every route that reads the query
 * (article lists and the feed with limit, offset and filters, /queries,
 * /updates, /cached-queries). The node has no reachable PostgreSQL or
 * Redis here (a socket path that does not exist, a closed loopback port),
 * so that the target needs no servers: what passes the query checks ends
 * in 503, what fails them in 4xx, and fuzz_dispatch aborts on anything
 * else. tests/fuzz/node/services/conduit/request_fuzz.c takes queries to a real
 * database. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "techempower/query_count.h"
#include "fuzz_request.h"
#include "url.h"

#define MAX_TARGET 8192

static fuzz_node node;

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Written apart from node/lib/url.c on purpose: "%XX" with two hex digits
 * becomes the byte, except "%00"; everything else stays. */
static size_t reference_unescape(const char *in, char *out)
{
    size_t n = 0;
    for (size_t i = 0; in[i] != '\0'; i++) {
        if (in[i] == '%' && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0 &&
            !(in[i + 1] == '0' && in[i + 2] == '0')) {
            out[n++] = (char)(hex(in[i + 1]) * 16 + hex(in[i + 2]));
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
    out[n] = '\0';
    return n;
}

static void check_unescape(const char *text)
{
    static char expected[MAX_TARGET + 1], actual[MAX_TARGET + 1];
    size_t expected_length = reference_unescape(text, expected);
    snprintf(actual, sizeof actual, "%s", text);
    size_t length = shoal_url_unescape(actual);
    if (length != expected_length || strlen(actual) != length || memcmp(actual, expected, length) != 0)
        fuzz_fail("url: '%s' decodes to '%s' (%zu bytes), not '%s' (%zu)", text, actual, length, expected,
                  expected_length);
}

/* The clamp of the TechEmpower rules: a whole number (sign allowed), else
 * 1; below 1 gives 1, above 500 gives 500. */
static int reference_query_count(const char *text)
{
    if (text == NULL)
        return 1;
    const char *digits = text + (*text == '+' || *text == '-');
    if (*digits == '\0' || strspn(digits, "0123456789") != strlen(digits))
        return 1;
    if (*text == '-')
        return 1;
    while (*digits == '0' && digits[1] != '\0')
        digits++;
    if (strlen(digits) > 3)
        return 500;
    int value = atoi(digits);
    return value < 1 ? 1 : value > 500 ? 500 : value;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keep_stderr();
    fuzz_node_open(&node, "postgresql:///shoal?host=/nonexistent/shoal-fuzz&connect_timeout=1",
                   "redis://127.0.0.1:1/0", NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > MAX_TARGET)
        return 0;
    /* A request line carries no controls or spaces inside its target. */
    for (size_t i = 0; i < size; i++)
        if (data[i] <= 0x20 || data[i] == 0x7f)
            return 0;
    static char target[MAX_TARGET + 1];
    memcpy(target, data, size);
    target[size] = '\0';

    /* Each piece the HTTP layer decodes, against the reference. */
    static char pieces[MAX_TARGET + 1];
    memcpy(pieces, target, size + 1);
    char *query = strchr(pieces, '?');
    if (query != NULL)
        *query++ = '\0';
    check_unescape(pieces);
    for (char *pair = query; pair != NULL;) {
        char *next = strchr(pair, '&');
        if (next != NULL)
            *next++ = '\0';
        char *equals = strchr(pair, '=');
        if (equals != NULL) {
            *equals = '\0';
            check_unescape(equals + 1);
        }
        check_unescape(pair);
        pair = next;
    }

    static char line[MAX_TARGET + 16];
    int line_length = snprintf(line, sizeof line, "GET %s", target);
    fuzz_request request;
    if (!fuzz_request_parse(&request, (const uint8_t *)line, (size_t)line_length, NULL, 0)) {
        fuzz_request_free(&request);
        return 0;
    }
    for (size_t i = 0; i < request.query_count; i++) {
        const char *name = request.query[i].name;
        if (strcasecmp(name, "queries") != 0 && strcasecmp(name, "count") != 0)
            continue;
        const char *value = request.query[i].value;
        if (bench_query_count(value) != reference_query_count(value))
            fuzz_fail("query_count: '%s' gives %d, not %d", value != NULL ? value : "(null)", bench_query_count(value),
                      reference_query_count(value));
    }

    fuzz_dispatch(&node, &request, NULL);
    static const char *const readers[] = {"/api/articles", "/api/articles/feed", "/queries", "/updates",
                                          "/cached-queries"};
    char *own_path = request.path;
    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++) {
        char path[32];
        snprintf(path, sizeof path, "%s", readers[i]);
        request.path = path;
        fuzz_dispatch(&node, &request, NULL);
    }
    request.path = own_path;
    fuzz_request_free(&request);
    return 0;
}
