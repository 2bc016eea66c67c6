/* tests/integration/node/services/techempower/bench_test.c: the TechEmpower routes over real
 * sockets against the real PostgreSQL of the tiers fixture, checked against
 * the benchmark's rules: headers (Server, a current Date, the exact
 * Content-Type, Content-Length), body shapes, every edge of the clamp of
 * `queries`, rows that match the table, the exact Fortunes page and its
 * byte-order sort and escaping, updates that persist with a value of their
 * own, and (with pg_stat_statements) one statement per row and no
 * `IN (...)`. */
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <shoal/cache.h>
#include <shoal/ext/request_id.h>
#include <shoal/ext/session.h>
#include <shoal/http.h>
#include <shoal/l1.h>
#include <shoal/store.h>

#include "context.h"
#include "http_client.h"
#include "techempower/bench.h"
#include "test_env.h"
#include "test_node.h"

#define WORLD_ROWS 10000

/* The node's statements, as pg_stat_statements records their text. */
#define SELECT_WORLD "SELECT id, randomnumber FROM world WHERE id = $1"
#define UPDATE_WORLD "UPDATE world SET randomnumber = $2 WHERE id = $1"
#define SELECT_FORTUNES "SELECT id, message FROM fortune"

static test_node server;

/* ---- the database, from outside the node ---------------------------------- */

static PGconn *connect_to(const char *conninfo)
{
    PGconn *connection = PQconnectdb(conninfo);
    if (PQstatus(connection) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(connection));
    return connection;
}

static void execute(PGconn *connection, const char *sql)
{
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    PQclear(result);
}

/* The first column of the first row of sql as an integer (0 for no row). */
static long long query_number(PGconn *connection, const char *sql, const char *parameter)
{
    const char *params[1] = {parameter};
    PGresult *result = PQexecParams(connection, sql, parameter != NULL ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(result) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    long long value = PQntuples(result) > 0 && !PQgetisnull(result, 0, 0) ? atoll(PQgetvalue(result, 0, 0)) : 0;
    PQclear(result);
    return value;
}

/* The whole world table: numbers[id] for ids 1..10000. */
static void read_world_table(PGconn *connection, int numbers[WORLD_ROWS + 1])
{
    PGresult *result = PQexec(connection, "SELECT id, randomnumber FROM world ORDER BY id");
    if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != WORLD_ROWS)
        fail_msg("reading world: %s (%d rows)", PQerrorMessage(connection), PQntuples(result));
    for (int row = 0; row < WORLD_ROWS; row++) {
        int id = atoi(PQgetvalue(result, row, 0));
        assert_int_equal(id, row + 1);
        numbers[id] = atoi(PQgetvalue(result, row, 1));
    }
    PQclear(result);
}

/* A superuser connection to the shoal database, where the harness created
 * pg_stat_statements (its view exists only there). The admin URL names the
 * postgres database; a later dbname overrides the one inside it. */
static PGconn *connect_admin_to_shoal(void)
{
    const char *const keywords[] = {"dbname", "dbname", NULL};
    const char *const values[] = {TEST_ADMIN_DATABASE_URL(), "shoal", NULL};
    PGconn *connection = PQconnectdbParams(keywords, values, 1);
    if (PQstatus(connection) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(connection));
    return connection;
}

/* What pg_stat_statements counted for one statement text of the shoal
 * database: its calls, or the rows they returned or changed. */
static long long statement_counter(PGconn *admin, const char *counter, const char *query)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(s.%s), 0) FROM pg_stat_statements s "
             "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'shoal' AND s.query = $1",
             counter);
    return query_number(admin, sql, query);
}

/* pg_stat_statements folds its counters in as each statement ends, which
 * is before the node answers; the wait only covers a slow machine. It
 * returns as soon as the count reaches expected, so a count that goes past
 * it shows up in the caller's equality check. */
static long long calls_reaching(PGconn *admin, const char *query, long long expected)
{
    long long calls = 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        calls = statement_counter(admin, "calls", query);
        if (calls >= expected)
            break;
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return calls;
}

/* ---- the server ------------------------------------------------------------ */

static int start(void **state)
{
    (void)state;
    /* The migrations first, as main applies them before serving. */
    test_node_migrate();
    /* Generous timeouts: on a loaded machine a Redis command that times out
     * is bypassed (a PostgreSQL read the cache test would count), and
     * concurrent updates of overlapping rows wait for one another's locks. */
    /* The L1 keeps an entry 2 s in a Release build; the cache test needs
     * hits between requests that valgrind spreads further apart. */
    static char l1_ttl[24];
    snprintf(l1_ttl, sizeof l1_ttl, "%d", (int)(2000 * test_env_time_scale()));
    const char *const flags[] = {"--threads", "4", "--redis-timeout-ms", "10000", "--database-timeout-ms", "30000",
                                 "--database-statement-timeout-ms", "20000", "--l1-ttl-ms", l1_ttl, NULL};
    static const shoal_extension *const extensions[] = {&shoal_request_id_extension, &shoal_session_extension,
                                                        &shoal_bench_extension, NULL};
    test_node_start(&server, flags, extensions);
    /* The L1 serves only while its invalidation subscriber is subscribed. */
    for (int i = 0; i < 100 * test_env_time_scale() && !shoal_app_l1_subscribed(server.app); i++) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    assert_true(shoal_app_l1_subscribed(server.app));
    return 0;
}

static int stop(void **state)
{
    (void)state;
    test_node_stop(&server);
    return 0;
}

/* The Date header in RFC 7231's IMF-fixdate, within a minute of now. */
static void expect_current_date(const char *value)
{
    struct tm parsed;
    memset(&parsed, 0, sizeof parsed);
    const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &parsed);
    if (end == NULL || *end != '\0')
        fail_msg("Date is not an IMF-fixdate: %s", value);
    time_t stamp = timegm(&parsed);
    time_t now = time(NULL);
    if (stamp < now - 60 || stamp > now + 60)
        fail_msg("Date is not now: %s", value);
}

/* GET path; checks the status and every header the rules require: Server,
 * Date, exactly content_type, and a Content-Length that is the body's. */
static void get(const char *path, const char *content_type, test_response *response)
{
    char request[512];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    assert_true(test_http_request(server.port, request, response));
    if (response->status != 200)
        fail_msg("GET %s: %d %s", path, response->status, response->body);
    char value[128];
    if (!test_http_header(response, "Date", value, sizeof value))
        fail_msg("GET %s: no Date", path);
    expect_current_date(value);
    if (!test_http_header(response, "Server", value, sizeof value) || strncmp(value, "shoal/", 6) != 0)
        fail_msg("GET %s: no Server: shoal/...", path);
    if (!test_http_header(response, "Content-Type", value, sizeof value))
        fail_msg("GET %s: no Content-Type", path);
    if (strcmp(value, content_type) != 0)
        fail_msg("GET %s: Content-Type is '%s', not '%s'", path, value, content_type);
    if (!test_http_header(response, "Content-Length", value, sizeof value))
        fail_msg("GET %s: no Content-Length", path);
    assert_int_equal(strtoull(value, NULL, 10), response->body_length);
}

static json_t *get_json(const char *path)
{
    test_response response;
    get(path, "application/json", &response);
    json_error_t error;
    json_t *body = json_loadb(response.body, response.body_length, 0, &error);
    if (body == NULL)
        fail_msg("GET %s: not JSON: %s", path, response.body);
    test_http_response_free(&response);
    return body;
}

/* An object with exactly the keys id and randomNumber, both integers in
 * 1..10000. */
static void expect_world(const json_t *world, int *id, int *random_number)
{
    assert_true(json_is_object(world));
    assert_int_equal(json_object_size(world), 2);
    json_t *id_value = json_object_get(world, "id");
    json_t *number_value = json_object_get(world, "randomNumber");
    assert_true(json_is_integer(id_value));
    assert_true(json_is_integer(number_value));
    assert_in_range(json_integer_value(id_value), 1, WORLD_ROWS);
    assert_in_range(json_integer_value(number_value), 1, WORLD_ROWS);
    if (id != NULL)
        *id = (int)json_integer_value(id_value);
    if (random_number != NULL)
        *random_number = (int)json_integer_value(number_value);
}

/* A world as the table holds it (nothing updates the table meanwhile). */
static void expect_world_in_table(PGconn *connection, const json_t *world)
{
    int id = 0, number = 0;
    expect_world(world, &id, &number);
    char id_text[16];
    snprintf(id_text, sizeof id_text, "%d", id);
    assert_int_equal(query_number(connection, "SELECT randomnumber FROM world WHERE id = $1::integer", id_text),
                     number);
}

/* The parameter's part of the query string (after "?queries" or
 * "?count") and the length each must give: missing (NULL), without a
 * value, empty, not a number, not a whole number, 0, negative, the
 * bounds, one past, and a number too long for any integer type. */
static const struct {
    const char *parameter;
    size_t length;
} clamps[] = {
    {NULL, 1},
    {"", 1},
    {"=", 1},
    {"=abc", 1},
    {"=2.5", 1},
    {"=0", 1},
    {"=-1", 1},
    {"=1", 1},
    {"=20", 20},
    {"=500", 500},
    {"=501", 500},
    {"=100000", 500},
    {"=99999999999999999999999999", 500},
};

/* route plus clamps[i] as a query string named name. */
static void clamp_path(char *out, size_t size, const char *route, const char *name, size_t i)
{
    if (clamps[i].parameter == NULL)
        snprintf(out, size, "%s", route);
    else
        snprintf(out, size, "%s?%s%s", route, name, clamps[i].parameter);
}

/* ---- tests ------------------------------------------------------------------ */

static void json_and_plaintext(void **state)
{
    (void)state;
    test_response response;
    get("/json", "application/json", &response);
    assert_string_equal(response.body, "{\"message\":\"Hello, World!\"}");
    test_http_response_free(&response);
    get("/plaintext", "text/plain", &response);
    assert_string_equal(response.body, "Hello, World!");
    test_http_response_free(&response);
}

/* The rules ask for a Date that is rendered, not cached forever: two
 * answers more than a second apart carry different ones. */
static void date_moves_on(void **state)
{
    (void)state;
    test_response first, second;
    char before[64], after[64];
    get("/plaintext", "text/plain", &first);
    assert_true(test_http_header(&first, "Date", before, sizeof before));
    struct timespec pause = {1, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    get("/plaintext", "text/plain", &second);
    assert_true(test_http_header(&second, "Date", after, sizeof after));
    assert_string_not_equal(before, after);
    test_http_response_free(&first);
    test_http_response_free(&second);
}

static void db_answers_one_world_object_from_the_table(void **state)
{
    (void)state;
    PGconn *connection = connect_to(TEST_DATABASE_URL());
    bool ids_differ = false;
    int first_id = 0;
    for (int i = 0; i < 20; i++) {
        json_t *body = get_json("/db");
        expect_world_in_table(connection, body);
        int id = (int)json_integer_value(json_object_get(body, "id"));
        if (i == 0)
            first_id = id;
        ids_differ |= id != first_id;
        json_decref(body);
    }
    /* Random ids: twenty draws from 10000 are never all the same. */
    assert_true(ids_differ);
    PQfinish(connection);
}

static void queries_clamps_and_answers_an_array_of_worlds(void **state)
{
    (void)state;
    PGconn *connection = connect_to(TEST_DATABASE_URL());
    for (size_t i = 0; i < sizeof clamps / sizeof clamps[0]; i++) {
        char path[96];
        clamp_path(path, sizeof path, "/queries", "queries", i);
        json_t *body = get_json(path);
        if (!json_is_array(body) || json_array_size(body) != clamps[i].length)
            fail_msg("GET %s: expected an array of %zu", path, clamps[i].length);
        for (size_t j = 0; j < json_array_size(body); j++)
            expect_world_in_table(connection, json_array_get(body, j));
        json_decref(body);
    }
    PQfinish(connection);
}

/* The table before and after one /updates answer: each row the answer
 * names holds the answer's number for it (its last entry, where an id
 * repeats), that number is new, every other row is as it was, and the rows
 * did not all get one number. */
static void expect_updated(const int before[WORLD_ROWS + 1], const int after[WORLD_ROWS + 1], const json_t *worlds)
{
    static int answered[WORLD_ROWS + 1];
    memset(answered, 0, sizeof answered);
    for (size_t i = 0; i < json_array_size(worlds); i++) {
        int id = 0, number = 0;
        expect_world(json_array_get(worlds, i), &id, &number);
        answered[id] = number;
    }
    int distinct_numbers = 0, first_number = 0;
    for (int id = 1; id <= WORLD_ROWS; id++) {
        if (answered[id] == 0) {
            if (after[id] != before[id])
                fail_msg("world %d changed from %d to %d without being in the answer", id, before[id], after[id]);
            continue;
        }
        if (after[id] != answered[id])
            fail_msg("world %d holds %d, the answer said %d", id, after[id], answered[id]);
        if (after[id] == before[id])
            fail_msg("world %d kept its number %d", id, before[id]);
        if (first_number == 0)
            first_number = answered[id];
        distinct_numbers += answered[id] != first_number;
    }
    if (json_array_size(worlds) >= 20)
        assert_true(distinct_numbers > 0);
}

static void updates_clamp_and_persist_before_the_answer(void **state)
{
    (void)state;
    PGconn *connection = connect_to(TEST_DATABASE_URL());
    static int before[WORLD_ROWS + 1], after[WORLD_ROWS + 1];
    for (size_t i = 0; i < sizeof clamps / sizeof clamps[0]; i++) {
        char path[96];
        clamp_path(path, sizeof path, "/updates", "queries", i);
        read_world_table(connection, before);
        json_t *body = get_json(path);
        /* Read at once: the answer came after the commit, or this fails. */
        read_world_table(connection, after);
        if (!json_is_array(body) || json_array_size(body) != clamps[i].length)
            fail_msg("GET %s: expected an array of %zu", path, clamps[i].length);
        expect_updated(before, after, body);
        json_decref(body);
    }
    PQfinish(connection);
}

static void *update_repeatedly(void *argument)
{
    (void)argument;
    for (int i = 0; i < 5; i++) {
        test_response response;
        if (!test_http_request(server.port, "GET /updates?queries=200 HTTP/1.1\r\nHost: t\r\n\r\n", &response))
            return (void *)1;
        int status = response.status;
        test_http_response_free(&response);
        if (status != 200)
            return (void *)(intptr_t)status;
    }
    return NULL;
}

/* Concurrent requests updating overlapping rows: sorted ids mean that no
 * two transactions wait on each other in a cycle, so all succeed. */
static void concurrent_updates_do_not_deadlock(void **state)
{
    (void)state;
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, update_repeatedly, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *outcome = NULL;
        assert_int_equal(pthread_join(threads[i], &outcome), 0);
        assert_null(outcome);
    }
}

static void fortunes_is_the_specified_page(void **state)
{
    (void)state;
    test_response response;
    get("/fortunes", "text/html; charset=utf-8", &response);
    const char *expected =
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        "<tr><th>id</th><th>message</th></tr>"
        "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert "
        "box.&quot;);&lt;/script&gt;</td></tr>"
        "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>"
        "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>"
        "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#39;t broken.</td></tr>"
        "<tr><td>8</td><td>A list is only as strong as its weakest link. \xe2\x80\x94 Donald Knuth</td></tr>"
        "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
        "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>"
        "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>"
        "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>"
        "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \xe2\x80\x94 Tom "
        "Christaensen</td></tr>"
        "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>"
        "<tr><td>1</td><td>fortune: No such file or directory</td></tr>"
        "<tr><td>12</td><td>\xe3\x83\x95\xe3\x83\xac\xe3\x83\xbc\xe3\x83\xa0\xe3\x83\xaf\xe3\x83\xbc\xe3\x82"
        "\xaf\xe3\x81\xae\xe3\x83\x99\xe3\x83\xb3\xe3\x83\x81\xe3\x83\x9e\xe3\x83\xbc\xe3\x82\xaf</td></tr>"
        "</table></body></html>";
    assert_string_equal(response.body, expected);
    test_http_response_free(&response);
}

/* Rows added to the table take their place by bytes, whatever their case
 * or script, and every character HTML gives a meaning to is escaped. The
 * rows are removed again, also before, in case an earlier run failed. */
static void fortunes_sort_by_bytes_and_escape_what_they_add(void **state)
{
    (void)state;
    PGconn *connection = connect_to(TEST_DATABASE_URL());
    execute(connection, "DELETE FROM fortune WHERE id > 1000");
    execute(connection, "INSERT INTO fortune (id, message) VALUES "
                        "(1001, 'zebra'), (1002, 'Zebra'), (1003, '\xc3\x89mile & <b>\"Jo''s\"</b>'), "
                        "(1004, 'apple'), (1005, 'Apple'), (1006, 'Ap'), (1007, '   spaces first'), "
                        "(1008, 'e\xcc\x81 decomposed'), (1009, '&amp; stays text')");
    test_response response;
    get("/fortunes", "text/html; charset=utf-8", &response);
    execute(connection, "DELETE FROM fortune WHERE id > 1000");
    PQfinish(connection);

    /* In byte order: ' ' (0x20) < '&' < '<' < 'A' ... 'Z' < 'a' ... 'z' <
     * 0xC3 (É) < 0xE3 (the Japanese row); "Ap" before "Apple" (a prefix
     * comes first); "e\xcc\x81" is 'e' and so among the lower case. */
    const char *order[] = {
        "<tr><td>1007</td><td>   spaces first</td></tr>",
        "<tr><td>1009</td><td>&amp;amp; stays text</td></tr>",
        "<tr><td>11</td><td>&lt;script&gt;",
        "<tr><td>4</td><td>A bad random",
        "<tr><td>1006</td><td>Ap</td></tr>",
        "<tr><td>1005</td><td>Apple</td></tr>",
        "<tr><td>9</td><td>Feature",
        "<tr><td>1002</td><td>Zebra</td></tr>",
        "<tr><td>1004</td><td>apple</td></tr>",
        "<tr><td>1008</td><td>e\xcc\x81 decomposed</td></tr>",
        "<tr><td>1</td><td>fortune: No such",
        "<tr><td>1001</td><td>zebra</td></tr>",
        "<tr><td>1003</td><td>\xc3\x89mile &amp; &lt;b&gt;&quot;Jo&#39;s&quot;&lt;/b&gt;</td></tr>",
        "<tr><td>12</td><td>\xe3\x83\x95",
    };
    const char *at = response.body;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *found = strstr(at, order[i]);
        if (found == NULL)
            fail_msg("'%s' is missing or out of byte order in %s", order[i], response.body);
        at = found + 1;
    }
    int rows = 0;
    for (const char *p = strstr(response.body, "<tr><td>"); p != NULL; p = strstr(p + 1, "<tr><td>"))
        rows++;
    assert_int_equal(rows, 12 + 9 + 1);
    test_http_response_free(&response);
}

/* ---- /cached-queries ---------------------------------------------------- */

static redisContext *connect_redis(void)
{
    cache_endpoint endpoint;
    char error[128];
    assert_int_equal(cache_url_parse(TEST_REDIS_URL(), &endpoint, error, sizeof error), 0);
    redisContext *context = redisConnect(endpoint.host, endpoint.port);
    assert_non_null(context);
    assert_int_equal(context->err, 0);
    return context;
}

/* GET path, an array of count worlds, each as table (read_world_table)
 * holds it: one read of the table for many answers, instead of a query per
 * world, which is most of this test's time under valgrind. */
static json_t *get_cached_worlds_like(const int table[WORLD_ROWS + 1], const char *path, size_t count)
{
    json_t *body = get_json(path);
    if (!json_is_array(body) || json_array_size(body) != count)
        fail_msg("GET %s: expected an array of %zu", path, count);
    for (size_t j = 0; j < json_array_size(body); j++) {
        int id = 0, number = 0;
        expect_world(json_array_get(body, j), &id, &number);
        if (number != table[id])
            fail_msg("GET %s: world %d is %d, the table holds %d", path, id, number, table[id]);
    }
    return body;
}

/* GET path, an array of count worlds, each as the table holds it. */
static json_t *get_cached_worlds(PGconn *connection, const char *path, size_t count)
{
    json_t *body = get_json(path);
    if (!json_is_array(body) || json_array_size(body) != count)
        fail_msg("GET %s: expected an array of %zu", path, count);
    for (size_t j = 0; j < json_array_size(body); j++)
        expect_world_in_table(connection, json_array_get(body, j));
    return body;
}

static void cached_queries_clamp_and_match_the_table(void **state)
{
    (void)state;
    PGconn *connection = connect_to(TEST_DATABASE_URL());
    for (size_t i = 0; i < sizeof clamps / sizeof clamps[0]; i++) {
        char path[96];
        clamp_path(path, sizeof path, "/cached-queries", "count", i);
        json_decref(get_cached_worlds(connection, path, clamps[i].length));
        /* Asked again, now from the cache: still the table's rows. */
        json_decref(get_cached_worlds(connection, path, clamps[i].length));
    }
    PQfinish(connection);
}

/* Once every world is cached, requests read nothing from PostgreSQL: the
 * world select's count in pg_stat_statements stands still. Every id the
 * answers have named was cached when it was answered (the TTL, 60 s from
 * the start of priming, outlasts the test, and nothing invalidates the
 * family meanwhile), so priming is done when the answers have named all
 * 10000. The values are in Redis under the family's current version, not
 * only in this node's L1. */
static void cached_queries_come_from_the_cache_once_primed(void **state)
{
    (void)state;
    PGconn *connection = connect_to(TEST_DATABASE_URL());
    PGconn *admin = connect_admin_to_shoal();
    /* A fresh version of the family first (an update invalidates it): no
     * world counts as seen that an earlier test cached, whose TTL started
     * then. */
    json_decref(get_json("/updates?queries=1"));
    static int table[WORLD_ROWS + 1];
    read_world_table(connection, table);
    static bool seen[WORLD_ROWS + 1];
    memset(seen, 0, sizeof seen);
    int unseen = WORLD_ROWS;
    for (int request = 0; request < 1000 && unseen > 0; request++) {
        json_t *body = get_json("/cached-queries?count=500");
        for (size_t i = 0; i < json_array_size(body); i++) {
            int id = 0;
            expect_world(json_array_get(body, i), &id, NULL);
            unseen -= !seen[id];
            seen[id] = true;
        }
        json_decref(body);
    }
    assert_int_equal(unseen, 0);

    long long start = statement_counter(admin, "calls", SELECT_WORLD);
    cache_l1_stats l1_before, l1_after;
    cache_l1_get_stats(shoal_app_l1(server.app), &l1_before);
    json_t *last = NULL;
    for (int request = 0; request < 20; request++) {
        json_decref(last);
        last = get_cached_worlds_like(table, "/cached-queries?count=500", 500);
    }
    assert_int_equal(statement_counter(admin, "calls", SELECT_WORLD), start);
    /* The node's L1 answered some of them itself (its entries live
     * --l1-ttl-ms, 2 s in Release; Redis answered the rest). */
    cache_l1_get_stats(shoal_app_l1(server.app), &l1_after);
    assert_true(l1_after.hits > l1_before.hits);

    redisContext *redis = connect_redis();
    redisReply *version = redisCommand(redis, "GET shoal:cv:world");
    assert_non_null(version);
    assert_int_equal(version->type, REDIS_REPLY_STRING);
    for (size_t i = 0; i < 10; i++) {
        const json_t *world = json_array_get(last, i);
        redisReply *value = redisCommand(redis, "GET shoal:c2:world:%s:%lld", version->str,
                                         (long long)json_integer_value(json_object_get(world, "id")));
        assert_non_null(value);
        assert_int_equal(value->type, REDIS_REPLY_STRING);
        /* "<tail>:<number>": kept --cache-stale-if-error-ms (5 min) past its freshness. */
        assert_true(strncmp(value->str, "300000:", 7) == 0);
        assert_int_equal(atoll(value->str + 7), json_integer_value(json_object_get(world, "randomNumber")));
        freeReplyObject(value);
    }
    freeReplyObject(version);
    redisFree(redis);
    json_decref(last);
    PQfinish(admin);
    PQfinish(connection);
}

/* /updates invalidates the cached worlds: what /cached-queries answers
 * right after it is the new rows, on a primed cache. */
static void cached_queries_see_updates_at_once(void **state)
{
    (void)state;
    PGconn *connection = connect_to(TEST_DATABASE_URL());
    static int table[WORLD_ROWS + 1];
    for (int round = 0; round < 3; round++) {
        read_world_table(connection, table);
        for (int i = 0; i < 5; i++)
            json_decref(get_cached_worlds_like(table, "/cached-queries?count=500", 500));
        json_decref(get_json("/updates?queries=500"));
        /* Only the node writes the table: what it holds now is what the
         * answers must be from here on. */
        read_world_table(connection, table);
        for (int i = 0; i < 5; i++)
            json_decref(get_cached_worlds_like(table, "/cached-queries?count=500", 500));
    }
    PQfinish(connection);
}

static void every_row_is_its_own_statement(void **state)
{
    (void)state;
    PGconn *admin = connect_admin_to_shoal();

    long long before = statement_counter(admin, "calls", SELECT_WORLD);
    json_decref(get_json("/db"));
    assert_int_equal(calls_reaching(admin, SELECT_WORLD, before + 1), before + 1);

    before = statement_counter(admin, "calls", SELECT_WORLD);
    long long rows_before = statement_counter(admin, "rows", SELECT_WORLD);
    json_decref(get_json("/queries?queries=20"));
    assert_int_equal(calls_reaching(admin, SELECT_WORLD, before + 20), before + 20);
    assert_int_equal(statement_counter(admin, "rows", SELECT_WORLD), rows_before + 20);

    before = statement_counter(admin, "calls", SELECT_WORLD);
    long long updates_before = statement_counter(admin, "calls", UPDATE_WORLD);
    long long updated_rows_before = statement_counter(admin, "rows", UPDATE_WORLD);
    json_decref(get_json("/updates?queries=20"));
    assert_int_equal(calls_reaching(admin, SELECT_WORLD, before + 20), before + 20);
    assert_int_equal(calls_reaching(admin, UPDATE_WORLD, updates_before + 20), updates_before + 20);
    assert_int_equal(statement_counter(admin, "rows", UPDATE_WORLD), updated_rows_before + 20);

    before = statement_counter(admin, "calls", SELECT_FORTUNES);
    test_response response;
    get("/fortunes", "text/html; charset=utf-8", &response);
    test_http_response_free(&response);
    assert_int_equal(calls_reaching(admin, SELECT_FORTUNES, before + 1), before + 1);

    /* Nothing the node ran fetched several rows by a list of ids, and
     * nothing sorted the fortunes in the database. */
    assert_int_equal(query_number(admin,
                                  "SELECT count(*) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                                  "WHERE d.datname = 'shoal' AND "
                                  "((s.query ~* '\\mworld\\M' AND s.query ~* '\\m(in|any)\\s*\\(') "
                                  "OR (s.query ~* '\\mfortune\\M' AND s.query ~* '\\morder\\s+by\\M'))",
                                  NULL),
                     0);
    PQfinish(admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_and_plaintext),
        cmocka_unit_test(date_moves_on),
        cmocka_unit_test(db_answers_one_world_object_from_the_table),
        cmocka_unit_test(queries_clamps_and_answers_an_array_of_worlds),
        cmocka_unit_test(updates_clamp_and_persist_before_the_answer),
        cmocka_unit_test(concurrent_updates_do_not_deadlock),
        cmocka_unit_test(fortunes_is_the_specified_page),
        cmocka_unit_test(fortunes_sort_by_bytes_and_escape_what_they_add),
        cmocka_unit_test(cached_queries_clamp_and_match_the_table),
        cmocka_unit_test(cached_queries_come_from_the_cache_once_primed),
        cmocka_unit_test(cached_queries_see_updates_at_once),
        cmocka_unit_test(every_row_is_its_own_statement),
    };
    return cmocka_run_group_tests_name("integration/node/bench", tests, start, stop);
}
