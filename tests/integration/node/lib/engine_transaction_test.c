/* tests/integration/node/lib/engine_transaction_test.c: transactions on the
 * engine (docs/engine.md). A request inside store_transaction parks on its
 * worker's own connection while PostgreSQL works (or waits on a row lock),
 * and the worker serves its other requests meanwhile; those run outside
 * the transaction (they neither see its writes nor are undone with it); a
 * second transaction of the same worker waits for the connection; a hung
 * server or a stop ends the request inside the transaction, nothing
 * committed. One worker thread throughout: what a test sees is one loop's
 * doing. Real sockets, real PostgreSQL and Redis. */
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <shoal/store.h>

#include "cache_internal.h"
#include "context.h"
#include "http_client.h"
#include "test_env.h"
#include "test_node.h"
#include "test_pg.h"

#define SLEEP_STATEMENT "engine_tx_test_sleep"
#define INSERT_STATEMENT "engine_tx_test_insert"
#define COUNT_STATEMENT "engine_tx_test_count"
#define LOCK_STATEMENT "engine_tx_test_lock"

/* ---- routes ------------------------------------------------------------------ */

static store_statement statement(shoal_ctx *ctx, const char *name)
{
    return store_registry_find(shoal_app_statements(shoal_ctx_app(ctx)), name);
}

static store_status run(shoal_ctx *ctx, store *s, const char *name, const char *param)
{
    const char *params[] = {param};
    store_result *result = NULL;
    store_status status = store_run(s, statement(ctx, name), params, &result);
    store_result_free(result);
    return status;
}

typedef struct hold_work {
    shoal_ctx *ctx;
    const char *id;
    const char *ms;
    bool roll_back;
} hold_work;

/* Inserts the row, asks Redis (parking the request there too), holds
 * PostgreSQL for ms, then commits, or rolls back when asked to. */
static store_status hold_body(store *s, void *data)
{
    hold_work *work = data;
    store_status status = run(work->ctx, s, INSERT_STATEMENT, work->id);
    if (status != STORE_OK)
        return status;
    const char *argv[] = {"ECHO", work->id};
    size_t lengths[] = {4, strlen(work->id)};
    redisReply *reply = NULL;
    cache_status cached = cache_command_argv(shoal_cache(work->ctx), 2, argv, lengths, &reply);
    freeReplyObject(reply);
    if (cached != CACHE_OK)
        return STORE_UNAVAILABLE;
    status = run(work->ctx, s, SLEEP_STATEMENT, work->ms);
    if (status != STORE_OK)
        return status;
    return work->roll_back ? STORE_CONFLICT : STORE_OK;
}

/* GET /tx/hold?id=X&ms=N[&roll_back=1]: a transaction that writes row X
 * and keeps it uncommitted for N ms. */
static int hold_route(shoal_ctx *ctx)
{
    const char *id = shoal_query(ctx, "id");
    const char *ms = shoal_query(ctx, "ms");
    hold_work work = {ctx, id != NULL ? id : "", ms != NULL ? ms : "0", shoal_query(ctx, "roll_back") != NULL};
    store_status status = store_transaction(shoal_store(ctx), STORE_READ_COMMITTED, hold_body, &work);
    if (status == STORE_CONFLICT && work.roll_back)
        return shoal_json(ctx, 200, json_pack("{s:b}", "rolled_back", 1));
    if (status != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    return shoal_json(ctx, 200, json_pack("{s:b}", "committed", 1));
}

static store_status lock_body(store *s, void *data)
{
    hold_work *work = data;
    store_status status = run(work->ctx, s, LOCK_STATEMENT, work->id);
    if (status != STORE_OK)
        return status;
    return run(work->ctx, s, INSERT_STATEMENT, work->ms);
}

/* GET /tx/lock?id=X&then=Y: a transaction that locks row X (waiting for
 * whoever holds it), then writes row Y. */
static int lock_route(shoal_ctx *ctx)
{
    const char *id = shoal_query(ctx, "id");
    const char *then = shoal_query(ctx, "then");
    hold_work work = {ctx, id != NULL ? id : "", then != NULL ? then : "", false};
    if (store_transaction(shoal_store(ctx), STORE_READ_COMMITTED, lock_body, &work) != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    return shoal_json(ctx, 200, json_pack("{s:b}", "committed", 1));
}

static store_status nothing(store *s, void *data)
{
    (void)s;
    (void)data;
    return STORE_OK;
}

/* Inserts row X, then tries a transaction inside this one. */
static store_status nesting_body(store *s, void *data)
{
    hold_work *work = data;
    store_status status = run(work->ctx, s, INSERT_STATEMENT, work->id);
    if (status != STORE_OK)
        return status;
    return store_transaction(s, STORE_READ_COMMITTED, nothing, NULL);
}

/* GET /tx/nest?id=X: a transaction that opens another inside it, which is
 * refused; the outer one then rolls back. */
static int nest_route(shoal_ctx *ctx)
{
    const char *id = shoal_query(ctx, "id");
    hold_work work = {ctx, id != NULL ? id : "", "0", false};
    store_status status = store_transaction(shoal_store(ctx), STORE_READ_COMMITTED, nesting_body, &work);
    return shoal_json(ctx, 200, json_pack("{s:i, s:s}", "status", (int)status, "message",
                                          store_last_error(shoal_store(ctx))->message));
}

/* GET /tx/count?id=X: how many rows X a plain statement sees. */
static int count_route(shoal_ctx *ctx)
{
    const char *id = shoal_query(ctx, "id");
    const char *params[] = {id != NULL ? id : ""};
    store_result *result = NULL;
    if (store_run(shoal_store(ctx), statement(ctx, COUNT_STATEMENT), params, &result) != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    json_t *body = json_pack("{s:s}", "count", store_result_value(result, 0, 0));
    store_result_free(result);
    return shoal_json(ctx, 200, body);
}

/* GET /tx/insert?id=X: a plain write, its own transaction. */
static int insert_route(shoal_ctx *ctx)
{
    const char *id = shoal_query(ctx, "id");
    if (run(ctx, shoal_store(ctx), INSERT_STATEMENT, id != NULL ? id : "") != STORE_OK)
        return shoal_error_from_store(ctx, shoal_store(ctx));
    return shoal_json(ctx, 200, json_pack("{s:b}", "inserted", 1));
}

/* GET /tx/fast: no tier at all. */
static int fast_route(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:b}", "fast", 1));
}

static int init(shoal_app *app, void *data)
{
    (void)data;
    store_registry *statements = shoal_app_statements(app);
    if (store_registry_add(statements, SLEEP_STATEMENT, "SELECT pg_sleep($1::float8 / 1000)", 1) < 0 ||
        store_registry_add(statements, INSERT_STATEMENT, "INSERT INTO engine_tx_rows (id) VALUES ($1)", 1) < 0 ||
        store_registry_add(statements, COUNT_STATEMENT, "SELECT count(*)::text FROM engine_tx_rows WHERE id = $1",
                           1) < 0 ||
        store_registry_add(statements, LOCK_STATEMENT, "SELECT id FROM engine_tx_rows WHERE id = $1 FOR UPDATE", 1) <
            0)
        return -1;
    shoal_blueprint *bp = shoal_blueprint_new(app, "engine-tx-test", "/tx");
    if (bp == NULL || shoal_route(bp, "GET", "/hold", hold_route) != 0 ||
        shoal_route(bp, "GET", "/lock", lock_route) != 0 || shoal_route(bp, "GET", "/count", count_route) != 0 ||
        shoal_route(bp, "GET", "/insert", insert_route) != 0 || shoal_route(bp, "GET", "/fast", fast_route) != 0 ||
        shoal_route(bp, "GET", "/nest", nest_route) != 0)
        return -1;
    return 0;
}

static const shoal_extension tx_routes = {.name = "engine-tx-test", .init = init};

/* ---- helpers ------------------------------------------------------------------- */

static test_node node;
static pid_t stopped_backend; /* SIGSTOPped by a test, for its teardown */
static PGconn *lock_holder;   /* a session holding a row lock, likewise */

static long scaled_ms(long ms)
{
    return (long)(ms * test_env_time_scale());
}

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* One worker thread, then more flags (NULL-terminated, may be NULL). */
static void start(const char *const *more)
{
    const char *flags[16] = {"--threads", "1", "--max-in-flight", "1000", "--request-deadline-ms", "0"};
    size_t count = 6;
    for (size_t i = 0; more != NULL && more[i] != NULL && count < 15; i++)
        flags[count++] = more[i];
    flags[count] = NULL;
    const shoal_extension *extensions[] = {&tx_routes, NULL};
    test_node_start(&node, flags, extensions);
}

/* GET path on a fresh connection, answered 200 with expected in the body
 * within bound_ms (scaled). */
static void expect_quick(const char *path, const char *expected, long bound_ms)
{
    uint64_t began = now_ms();
    test_response answer = test_node_call(&node, "GET", path, NULL, NULL);
    uint64_t took = now_ms() - began;
    if (answer.status != 200 || strstr(answer.body, expected) == NULL)
        fail_msg("%s answered %d: %s", path, answer.status, answer.body);
    test_http_response_free(&answer);
    if ((long)took > scaled_ms(bound_ms))
        fail_msg("%s took %llu ms beside a transaction at work", path, (unsigned long long)took);
}

static void expect_answer(int fd, int status, const char *expected)
{
    test_response answer = test_node_read_answer(fd, 5000);
    if (answer.status != status || strstr(answer.body, expected) == NULL)
        fail_msg("expected %d with %s, got %d: %s", status, expected, answer.status, answer.body);
    test_http_response_free(&answer);
    close(fd);
}

static long long rows(const char *id)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM engine_tx_rows WHERE id = '%s'", id);
    return test_pg_number(TEST_DATABASE_URL(), sql);
}

/* No backend of ours still runs a statement (a dropped connection's
 * backend goes on with its statement until it ends), waiting 5 s at most. */
static void wait_for_backends(void)
{
    uint64_t until = now_ms() + (uint64_t)scaled_ms(5000);
    const char *sql = "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' AND pid <> pg_backend_pid() "
                      "AND (query LIKE '%engine_tx_rows%' OR query LIKE 'SELECT pg_sleep%')";
    while (test_pg_number(TEST_ADMIN_DATABASE_URL(), sql) > 0 && now_ms() < until)
        usleep(20 * 1000);
}

/* Another session locks row 'locked' (FOR UPDATE) until let_row_lock_go. */
static void hold_row_lock(void)
{
    lock_holder = test_pg_connect(TEST_DATABASE_URL());
    PGresult *result = PQexec(lock_holder, "BEGIN; SELECT id FROM engine_tx_rows WHERE id = 'locked' FOR UPDATE");
    assert_int_equal(PQresultStatus(result), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(result), 1);
    PQclear(result);
}

static void let_row_lock_go(void)
{
    PGresult *result = PQexec(lock_holder, "COMMIT");
    assert_int_equal(PQresultStatus(result), PGRES_COMMAND_OK);
    PQclear(result);
    PQfinish(lock_holder);
    lock_holder = NULL;
}

/* Until a backend waits for that lock (the node's transaction), 5 s at
 * most (scaled). */
static void wait_for_lock_wait(void)
{
    uint64_t until = now_ms() + (uint64_t)scaled_ms(5000);
    const char *sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND query LIKE '%FOR UPDATE%'";
    while (test_pg_number(TEST_ADMIN_DATABASE_URL(), sql) == 0) {
        if (now_ms() >= until)
            fail_msg("no transaction of the node waits for the row lock");
        usleep(10 * 1000);
    }
}

/* ---- tests --------------------------------------------------------------------- */

/* While PostgreSQL runs a transaction's 800 ms statement, the worker's one
 * thread answers /fast and a plain statement; blocking, they would wait
 * for the transaction. */
static void a_transaction_at_work_does_not_hold_its_worker(void **state)
{
    (void)state;
    start(NULL);
    int slow = test_node_send_get(&node, "/tx/hold?id=work1&ms=800");
    usleep(150 * 1000);
    for (int i = 0; i < 3; i++) {
        expect_quick("/tx/fast", "\"fast\"", 300);
        expect_quick("/tx/count?id=none", "\"0\"", 300);
    }
    expect_answer(slow, 200, "\"committed\"");
    assert_int_equal(rows("work1"), 1);
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* A transaction waiting for a row lock that another session holds: the
 * worker serves on; the transaction goes on once the lock is let go. */
static void a_transaction_waiting_on_a_lock_does_not_hold_its_worker(void **state)
{
    (void)state;
    start(NULL);
    hold_row_lock();
    int waiting = test_node_send_get(&node, "/tx/lock?id=locked&then=after_lock");
    wait_for_lock_wait();
    for (int i = 0; i < 3; i++)
        expect_quick("/tx/count?id=after_lock", "\"0\"", 300);
    let_row_lock_go();
    expect_answer(waiting, 200, "\"committed\"");
    assert_int_equal(rows("after_lock"), 1);
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* Request A's transaction holds an uncommitted row while it waits; request
 * B of the same worker runs outside it: its read does not see A's row, and
 * its write stays when A rolls back. Run into A's transaction (the
 * worker's store is shared), B would see the row and lose its write. */
static void other_requests_stay_outside_a_parked_transaction(void **state)
{
    (void)state;
    start(NULL);
    int a = test_node_send_get(&node, "/tx/hold?id=isolated_a&ms=800&roll_back=1");
    usleep(150 * 1000);
    expect_quick("/tx/count?id=isolated_a", "\"0\"", 300);
    expect_quick("/tx/insert?id=isolated_b", "\"inserted\"", 300);
    expect_quick("/tx/count?id=isolated_b", "\"1\"", 300);
    expect_answer(a, 200, "\"rolled_back\"");
    assert_int_equal(rows("isolated_a"), 0);
    assert_int_equal(rows("isolated_b"), 1);
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* Transactions of several requests on the one worker: each waits for the
 * connection in turn (none refused as nested, none a 500), each commits
 * its own row, and /fast is answered meanwhile. */
static void concurrent_transactions_take_turns(void **state)
{
    (void)state;
    start(NULL);
    enum { COUNT = 4 };
    int fds[COUNT];
    for (int i = 0; i < COUNT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/tx/hold?id=turn%d&ms=200", i);
        fds[i] = test_node_send_get(&node, path);
    }
    usleep(100 * 1000);
    expect_quick("/tx/fast", "\"fast\"", 300);
    expect_quick("/tx/count?id=turn0", "\"0\"", 300);
    for (int i = 0; i < COUNT; i++)
        expect_answer(fds[i], 200, "\"committed\"");
    for (int i = 0; i < COUNT; i++) {
        char id[16];
        snprintf(id, sizeof id, "turn%d", i);
        assert_int_equal(rows(id), 1);
    }
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* A request whose deadline passes while it waits for another request's
 * transaction to let the connection go is answered 503 then; the
 * transaction goes on and commits, and the connection serves the next. */
static void the_deadline_ends_a_wait_for_the_connection(void **state)
{
    (void)state;
    char deadline[16], timeout[16], statement_timeout[16];
    snprintf(deadline, sizeof deadline, "%ld", scaled_ms(300));
    /* The holder waits for a lock longer than the waiter's deadline (a slow
     * build's scaled one too). */
    snprintf(timeout, sizeof timeout, "%ld", scaled_ms(4000));
    snprintf(statement_timeout, sizeof statement_timeout, "%ld", scaled_ms(3000));
    const char *flags[] = {"--request-deadline-ms", deadline, "--database-timeout-ms", timeout,
                           "--database-statement-timeout-ms", statement_timeout, NULL};
    start(flags);
    hold_row_lock();
    /* The holder's statements go on past its own deadline: a transaction
     * ends as a whole. */
    int holder = test_node_send_get(&node, "/tx/lock?id=locked&then=holder");
    wait_for_lock_wait();
    uint64_t began = now_ms();
    int waiter = test_node_send_get(&node, "/tx/hold?id=waiter&ms=0");
    test_response answer = test_node_read_answer(waiter, 5000);
    uint64_t took = now_ms() - began;
    if (answer.status != 503 || strstr(answer.body, "\"request.deadline_exceeded\"") == NULL)
        fail_msg("the waiter answered %d: %s", answer.status, answer.body);
    test_http_response_free(&answer);
    close(waiter);
    if ((long)took > scaled_ms(700))
        fail_msg("a 300 ms deadline was answered after %llu ms", (unsigned long long)took);
    let_row_lock_go();
    expect_answer(holder, 200, "\"committed\"");
    assert_int_equal(rows("holder"), 1);
    assert_int_equal(rows("waiter"), 0);
    int next = test_node_send_get(&node, "/tx/hold?id=next&ms=0");
    expect_answer(next, 200, "\"committed\"");
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* A transaction inside a request's own transaction is refused, as it was
 * before requests parked inside them. */
static void a_transaction_cannot_nest(void **state)
{
    (void)state;
    start(NULL);
    int nesting = test_node_send_get(&node, "/tx/nest?id=nested");
    expect_answer(nesting, 200, "cannot nest");
    assert_int_equal(rows("nested"), 0);
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* PostgreSQL stops answering inside a transaction (its backend SIGSTOPped):
 * that request alone ends, 503 at the answer timeout, while the worker
 * answers /fast; nothing of it is committed. */
static void a_hung_server_ends_only_the_transaction(void **state)
{
    (void)state;
    char timeout[16], statement_timeout[16];
    snprintf(timeout, sizeof timeout, "%ld", scaled_ms(600));
    snprintf(statement_timeout, sizeof statement_timeout, "%ld", scaled_ms(500));
    const char *flags[] = {"--database-timeout-ms", timeout, "--database-statement-timeout-ms", statement_timeout,
                           NULL};
    start(flags);
    int hung = test_node_send_get(&node, "/tx/hold?id=hung&ms=300");
    /* Its backend, found while it sleeps, stopped before it answers. */
    long long backend = 0;
    uint64_t until = now_ms() + (uint64_t)scaled_ms(2000);
    while (backend == 0 && now_ms() < until) {
        backend = test_pg_number(TEST_ADMIN_DATABASE_URL(),
                                 "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE query LIKE 'SELECT "
                                 "pg_sleep%' AND state = 'active'");
        if (backend == 0)
            usleep(10 * 1000);
    }
    assert_true(backend > 0);
    stopped_backend = (pid_t)backend;
    assert_int_equal(kill(stopped_backend, SIGSTOP), 0);
    uint64_t began = now_ms();
    expect_quick("/tx/fast", "\"fast\"", 300);
    test_response answer = test_node_read_answer(hung, 5000);
    uint64_t took = now_ms() - began;
    assert_int_equal(kill(stopped_backend, SIGCONT), 0);
    stopped_backend = 0;
    assert_int_equal(answer.status, 503);
    test_http_response_free(&answer);
    close(hung);
    if ((long)took > scaled_ms(1500))
        fail_msg("a 600 ms answer timeout ended the transaction after %llu ms", (unsigned long long)took);
    wait_for_backends();
    assert_int_equal(rows("hung"), 0);
    /* The next transaction gets a new connection. */
    int next = test_node_send_get(&node, "/tx/hold?id=after_hung&ms=0");
    expect_answer(next, 200, "\"committed\"");
    test_node_wait_until_idle(&node);
    test_node_stop(&node);
}

/* A node stopping while a request waits inside its transaction: the
 * request is answered 503 at once and its transaction is not committed. */
static void stopping_ends_a_parked_transaction(void **state)
{
    (void)state;
    start(NULL);
    int parked = test_node_send_get(&node, "/tx/hold?id=stopped&ms=1200");
    usleep(200 * 1000);
    uint64_t began = now_ms();
    test_node_stop(&node);
    uint64_t took = now_ms() - began;
    test_response answer = test_node_read_answer(parked, 5000);
    if (answer.status != 503)
        fail_msg("answered %d at the stop: %s", answer.status, answer.body);
    test_http_response_free(&answer);
    close(parked);
    if ((long)took > scaled_ms(1000))
        fail_msg("stopping took %llu ms", (unsigned long long)took);
    assert_int_equal(rows("stopped"), 0);
    wait_for_backends();
    assert_int_equal(rows("stopped"), 0);
}

static int set_up(void **state)
{
    (void)state;
    test_pg_exec(TEST_DATABASE_URL(), "SET lock_timeout = '5s'; DROP TABLE IF EXISTS engine_tx_rows; "
                                      "CREATE TABLE engine_tx_rows (id text PRIMARY KEY); "
                                      "INSERT INTO engine_tx_rows VALUES ('locked')");
    return 0;
}

/* A failed test may leave the backend it stopped stopped: it goes on. */
static int tear_down(void **state)
{
    test_node_stop_started(state);
    if (stopped_backend != 0)
        kill(stopped_backend, SIGCONT);
    stopped_backend = 0;
    PQfinish(lock_holder);
    lock_holder = NULL;
    return 0;
}

int main(void)
{
    test_env_require("SHOAL_TEST_DATABASE_URL");
    test_node_migrate();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_transaction_at_work_does_not_hold_its_worker, set_up, tear_down),
        cmocka_unit_test_setup_teardown(a_transaction_waiting_on_a_lock_does_not_hold_its_worker, set_up, tear_down),
        cmocka_unit_test_setup_teardown(other_requests_stay_outside_a_parked_transaction, set_up, tear_down),
        cmocka_unit_test_setup_teardown(concurrent_transactions_take_turns, set_up, tear_down),
        cmocka_unit_test_setup_teardown(the_deadline_ends_a_wait_for_the_connection, set_up, tear_down),
        cmocka_unit_test_setup_teardown(a_transaction_cannot_nest, set_up, tear_down),
        cmocka_unit_test_setup_teardown(a_hung_server_ends_only_the_transaction, set_up, tear_down),
        cmocka_unit_test_setup_teardown(stopping_ends_a_parked_transaction, set_up, tear_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
