/* tests/integration/store/pipe_test.c: store/pipe.c against a real
 * PostgreSQL, driven by a small poll() loop of the test's own: many
 * requests' statements in one pipeline, a failure confined to its request,
 * cancellation, a restart and an outage mid-pipeline, and a connect that
 * never blocks. Everything happens in one scratch database of its own.
 *
 * SHOAL_TEST_PIPE_MEASURE=N (unset in CI) adds a measurement, not a check:
 * PostgreSQL's CPU per select over N selects, pipelined 64 requests a turn
 * on one connection against one blocking store_run at a time. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include <shoal/store.h>

#include "pipe.h"
#include "http_client.h"
#include "test_env.h"
#include "test_pg.h"

#define SCRATCH "shoal_test_store_pipe"
#define WORLD_ROWS 10000

static char conninfo[512];
static store_registry *registry;
static store_statement world_by_id, note_insert, slow_number, deferred_insert, broken, text_length, flaky, always_busy;

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static store_statement add(const char *name, const char *sql, int param_count)
{
    store_statement id = store_registry_add(registry, name, sql, param_count);
    assert_true(id >= 0);
    return id;
}

static int set_up(void **state)
{
    (void)state;
    test_pg_scratch_create(SCRATCH, conninfo, sizeof conninfo);
    test_pg_exec(conninfo, "CREATE TABLE world (id int PRIMARY KEY, randomnumber int NOT NULL);"
                           "INSERT INTO world SELECT i, (i * 7919) % 10000 + 1 FROM generate_series(1, 10000) i;"
                           "CREATE TABLE notes (id serial PRIMARY KEY, text text NOT NULL CONSTRAINT notes_text_key UNIQUE);"
                           /* Checked at the implicit commit, at the sync, after the rows. */
                           "CREATE TABLE deferred_notes (text text NOT NULL,"
                           " CONSTRAINT deferred_notes_text_key UNIQUE (text) DEFERRABLE INITIALLY DEFERRED);"
                           /* Serialization failures on purpose; a sequence counts
                            * the runs (nextval is not rolled back). */
                           "CREATE SEQUENCE runs;"
                           "CREATE FUNCTION flaky() RETURNS bigint LANGUAGE plpgsql AS"
                           " $$DECLARE n bigint := nextval('runs'); BEGIN IF n % 3 <> 0 THEN"
                           " RAISE EXCEPTION 'forced' USING ERRCODE = 'serialization_failure'; END IF; RETURN n; END$$;"
                           "CREATE FUNCTION always_busy() RETURNS bigint LANGUAGE plpgsql AS"
                           " $$BEGIN PERFORM nextval('runs'); RAISE EXCEPTION 'forced' USING ERRCODE = 'deadlock_detected'; END$$;"
                           "ANALYZE world;");
    registry = store_registry_new();
    world_by_id = add("world_by_id", "SELECT id, randomnumber FROM world WHERE id = $1", 1);
    note_insert = add("note_insert", "INSERT INTO notes (text) VALUES ($1) RETURNING id", 1);
    slow_number = add("slow_number", "SELECT $2::int FROM pg_sleep($1::float8)", 2);
    deferred_insert = add("deferred_insert", "INSERT INTO deferred_notes (text) VALUES ($1) RETURNING text", 1);
    text_length = add("text_length", "SELECT length($1::text)", 1);
    flaky = add("flaky", "SELECT flaky()", 0);
    always_busy = add("always_busy", "SELECT always_busy()", 0);
    /* One that cannot prepare must not keep the others from preparing. */
    broken = add("broken", "SELECT * FROM no_such_table", 0);
    assert_int_equal(store_registry_constraint(registry, "notes_text_key", "text"), 0);
    store_registry_freeze(registry);
    return 0;
}

static int tear_down(void **state)
{
    (void)state;
    store_registry_free(registry);
    test_pg_scratch_drop(SCRATCH);
    return 0;
}

static store_config config_for(const char *target, int connect_timeout_s)
{
    return (store_config){.conninfo = target,
                          .connect_timeout_s = connect_timeout_s,
                          .answer_timeout_ms = 5000 * (int)test_env_time_scale(),
                          .application_name = "store-pipe-test",
                          .statement_timeout_ms = 4000 * (int)test_env_time_scale(),
                          .registry = registry};
}

/* ---- the loop ------------------------------------------------------------------------ */

/* One turn as the engine's loop makes it: wait for the sockets of both
 * lanes (or the earlier of their timers), let each lane read or write, run
 * their timers, then the end of the turn: flush what was queued. */
static void turn(store_pipe *pipe, int wait_ms)
{
    int timeout = wait_ms;
    struct pollfd watch[STORE_PIPE_LANES];
    int lanes[STORE_PIPE_LANES];
    nfds_t watched = 0;
    for (int lane = 0; lane < STORE_PIPE_LANES; lane++) {
        int timer = store_pipe_lane_timer_ms(pipe, lane);
        if (timer >= 0 && timer < timeout)
            timeout = timer;
        int fd = store_pipe_lane_fd(pipe, lane);
        if (fd < 0)
            continue;
        watch[watched] = (struct pollfd){
            .fd = fd, .events = POLLIN | (store_pipe_lane_wants_write(pipe, lane) ? POLLOUT : 0)};
        lanes[watched++] = lane;
    }
    if (watched > 0) {
        int ready = poll(watch, watched, timeout);
        assert_true(ready >= 0);
        for (nfds_t i = 0; ready > 0 && i < watched; i++) {
            if ((watch[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0)
                store_pipe_lane_on_readable(pipe, lanes[i]);
            if ((watch[i].revents & POLLOUT) != 0 && store_pipe_lane_fd(pipe, lanes[i]) == watch[i].fd)
                store_pipe_lane_on_writable(pipe, lanes[i]);
        }
    } else if (timeout > 0) {
        usleep((useconds_t)timeout * 1000);
    }
    for (int lane = 0; lane < STORE_PIPE_LANES; lane++)
        store_pipe_lane_on_timer(pipe, lane);
    store_pipe_flush(pipe);
}

/* Turns until *count reaches target; fails the test after bound_ms (times
 * the time scale): nothing may hang. Returns the turns it took. */
static int turn_until(store_pipe *pipe, const int *count, int target, int bound_ms)
{
    uint64_t give_up = now_ms() + (uint64_t)(bound_ms * test_env_time_scale());
    int turns = 0;
    while (*count < target) {
        if (now_ms() > give_up)
            fail_msg("%d of %d answers after %d ms (%d turns)", *count, target, bound_ms, turns);
        turn(pipe, 50);
        turns++;
    }
    return turns;
}

static void turn_until_ready(store_pipe *pipe)
{
    uint64_t give_up = now_ms() + (uint64_t)(5000 * test_env_time_scale());
    while (!store_pipe_ready(pipe)) {
        if (now_ms() > give_up)
            fail_msg("the pipe did not connect");
        turn(pipe, 50);
    }
}

/* ---- what the callbacks record ----------------------------------------------------------- */

typedef struct answer {
    int calls;
    store_status status;
    char sqlstate[6];
    char field[32];
    char message[256];
    int rows;
    char value[64]; /* row 0, column 0 */
    char second[64]; /* row 0, column 1 */
    int order; /* when it was answered, counting from 1 */
} answer;

static int answered; /* answers since the last reset, every request's */

static void record(void *cookie, store_status status, store_result *result, const store_error *error)
{
    answer *a = cookie;
    a->calls++;
    a->status = status;
    a->order = ++answered;
    if (status == STORE_OK) {
        assert_non_null(result);
        a->rows = store_result_rows(result);
        if (a->rows > 0) {
            const char *value = store_result_value(result, 0, 0);
            snprintf(a->value, sizeof a->value, "%s", value != NULL ? value : "(null)");
            if (store_result_columns(result) > 1)
                snprintf(a->second, sizeof a->second, "%s", store_result_value(result, 0, 1));
        }
        store_result_free(result);
        return;
    }
    assert_null(result);
    assert_non_null(error);
    assert_int_equal(error->status, status);
    snprintf(a->sqlstate, sizeof a->sqlstate, "%s", error->sqlstate);
    snprintf(a->field, sizeof a->field, "%s", error->field != NULL ? error->field : "");
    snprintf(a->message, sizeof a->message, "%s", error->message);
}

static store_pipe_ticket enqueue(store_pipe *pipe, store_statement statement, const char *const *params, answer *a)
{
    store_pipe_ticket ticket = 0;
    store_status status = store_pipe_enqueue(pipe, statement, params, record, a, &ticket);
    if (status != STORE_OK)
        fail_msg("enqueue: %d", status);
    assert_true(ticket != 0);
    return ticket;
}

static void enqueue_world(store_pipe *pipe, int id, answer *a)
{
    char text[16];
    snprintf(text, sizeof text, "%d", id);
    enqueue(pipe, world_by_id, (const char *const[]){text}, a);
}

static void expect_world(const answer *a, int id)
{
    char expected[16];
    assert_int_equal(a->calls, 1);
    if (a->status != STORE_OK)
        fail_msg("world %d: status %d: %s", id, a->status, a->message);
    assert_int_equal(a->rows, 1);
    snprintf(expected, sizeof expected, "%d", id);
    assert_string_equal(a->value, expected);
    snprintf(expected, sizeof expected, "%d", (id * 7919) % WORLD_ROWS + 1);
    assert_string_equal(a->second, expected);
}

/* ---- many requests, one pipeline --------------------------------------------------------- */

#define REQUESTS 50
#define STATEMENTS_PER_REQUEST 4

/* 50 requests of 4 statements each, queued over 5 turns while earlier ones
 * are still being answered: every statement's rows come back to its own
 * callback, in the order sent. */
static void many_requests_come_back_in_order_to_their_own_callbacks(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    answered = 0;
    static answer answers[REQUESTS][STATEMENTS_PER_REQUEST];
    memset(answers, 0, sizeof answers);
    for (int request = 0; request < REQUESTS; request++) {
        for (int k = 0; k < STATEMENTS_PER_REQUEST; k++)
            enqueue_world(pipe, request * STATEMENTS_PER_REQUEST + k + 1, &answers[request][k]);
        if (request % 10 == 9)
            turn(pipe, 0); /* a turn of the loop ends: what was queued goes out, once connected */
    }
    int turns = turn_until(pipe, &answered, REQUESTS * STATEMENTS_PER_REQUEST, 5000);
    for (int request = 0; request < REQUESTS; request++)
        for (int k = 0; k < STATEMENTS_PER_REQUEST; k++) {
            expect_world(&answers[request][k], request * STATEMENTS_PER_REQUEST + k + 1);
            assert_int_equal(answers[request][k].order, request * STATEMENTS_PER_REQUEST + k + 1);
        }
    assert_int_equal(store_pipe_waiting(pipe), 0);
    assert_int_equal(store_pipe_reconnect_count(pipe), 0);
    printf("200 statements of 50 requests answered in %d more turns\n", turns);
    store_pipe_close(pipe);
}

/* More than the socket takes in one go (64 statements of 64 KiB each):
 * the flush leaves the rest to the socket's turns (store_pipe_wants_write,
 * store_pipe_on_writable) while answers come back, and nothing is lost. */
static void a_flush_larger_than_the_socket_goes_out_over_turns(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    /* A small send buffer, so that the socket fills whoever is faster (under
     * valgrind PostgreSQL drains a default one as fast as it is written). */
    int small = 4096;
    assert_int_equal(setsockopt(store_pipe_fd(pipe), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    enum { COUNT = 64, SIZE = 64 * 1024 };
    char *text = malloc(SIZE + 1);
    assert_non_null(text);
    static answer answers[COUNT];
    memset(answers, 0, sizeof answers);
    answered = 0;
    for (int i = 0; i < COUNT; i++) {
        int length = SIZE - i;
        memset(text, 'a' + i % 26, (size_t)length);
        text[length] = '\0';
        enqueue(pipe, text_length, (const char *const[]){text}, &answers[i]);
    }
    free(text);
    store_pipe_flush(pipe);
    bool waited_to_write = store_pipe_wants_write(pipe);
    turn_until(pipe, &answered, COUNT, 10000);
    for (int i = 0; i < COUNT; i++) {
        char expected[16];
        snprintf(expected, sizeof expected, "%d", SIZE - i);
        assert_int_equal(answers[i].status, STORE_OK);
        assert_string_equal(answers[i].value, expected);
        assert_int_equal(answers[i].order, i + 1);
    }
    assert_true(waited_to_write);
    store_pipe_close(pipe);
}

/* ---- one request's failure is its own --------------------------------------------------- */

static void a_failing_statement_fails_only_its_request(void **state)
{
    (void)state;
    test_pg_exec(conninfo, "INSERT INTO notes (text) VALUES ('taken'); INSERT INTO deferred_notes VALUES ('late')");
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    answered = 0;
    answer before = {0}, conflict = {0}, after = {0}, world = {0}, at_commit = {0}, unprepared = {0}, last = {0};
    /* One turn: the violation and the pipeline abort it causes stop at its
     * own sync. */
    enqueue(pipe, note_insert, (const char *const[]){"before"}, &before);
    enqueue(pipe, note_insert, (const char *const[]){"taken"}, &conflict);
    enqueue(pipe, note_insert, (const char *const[]){"after"}, &after);
    enqueue_world(pipe, 42, &world);
    /* Its rows come, then its implicit commit fails at the sync. */
    enqueue(pipe, deferred_insert, (const char *const[]){"late"}, &at_commit);
    enqueue(pipe, broken, NULL, &unprepared);
    enqueue_world(pipe, 43, &last);
    store_pipe_flush(pipe);
    turn_until(pipe, &answered, 7, 5000);

    assert_int_equal(before.status, STORE_OK);
    assert_int_equal(conflict.calls, 1);
    assert_int_equal(conflict.status, STORE_CONFLICT);
    assert_string_equal(conflict.sqlstate, "23505");
    assert_string_equal(conflict.field, "text");
    assert_int_equal(after.status, STORE_OK);
    expect_world(&world, 42);
    assert_int_equal(at_commit.status, STORE_CONFLICT);
    assert_int_equal(unprepared.status, STORE_ERROR);
    assert_non_null(strstr(unprepared.message, "no_such_table"));
    expect_world(&last, 43);
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM notes WHERE text IN ('before', 'after')"), 2);
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM deferred_notes"), 1);
    store_pipe_close(pipe);
}

/* ---- serialization failures and deadlocks -------------------------------------------------- */

static long long runs_so_far(void)
{
    return test_pg_number(conninfo, "SELECT last_value FROM runs");
}

/* A lone statement is its own transaction, rolled back whole by a
 * serialization failure or deadlock: it runs again, as store_run runs it,
 * at most STORE_TRANSACTION_ATTEMPTS times, and its ticket follows it. */
static void a_serialization_failure_or_deadlock_runs_the_statement_again(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    answered = 0;
    long long before = test_pg_number(conninfo, "SELECT nextval('runs')");
    /* Aligned so that flaky fails twice, then succeeds on its third run. */
    while ((before + 1) % 3 != 1)
        before = test_pg_number(conninfo, "SELECT nextval('runs')");
    answer recovered = {0}, behind = {0};
    enqueue(pipe, flaky, NULL, &recovered);
    enqueue_world(pipe, 30, &behind);
    turn_until(pipe, &recovered.calls, 1, 5000);
    assert_int_equal(recovered.status, STORE_OK);
    assert_int_equal(atoll(recovered.value), before + 3);
    expect_world(&behind, 30);

    answer busy = {0};
    before = runs_so_far();
    enqueue(pipe, always_busy, NULL, &busy);
    turn_until(pipe, &busy.calls, 1, 5000);
    assert_int_equal(busy.status, STORE_BUSY);
    assert_string_equal(busy.sqlstate, "40P01");
    assert_int_equal(runs_so_far() - before, STORE_TRANSACTION_ATTEMPTS);

    /* Cancelled by its first ticket once queued again: answered once, and
     * not run again. */
    answer cancelled = {0};
    before = runs_so_far();
    store_pipe_ticket ticket = enqueue(pipe, always_busy, NULL, &cancelled);
    store_pipe_flush(pipe);
    uint64_t give_up = now_ms() + (uint64_t)(5000 * test_env_time_scale());
    /* Its first run answered and it queued again: nothing out (no answer
     * timer), one waiting. */
    while (runs_so_far() == before || store_pipe_waiting(pipe) != 1 || store_pipe_timer_ms(pipe) != -1) {
        if (now_ms() > give_up)
            fail_msg("the first run was not answered");
        struct pollfd watch = {.fd = store_pipe_fd(pipe), .events = POLLIN};
        if (poll(&watch, 1, 20) > 0)
            store_pipe_on_readable(pipe); /* no flush: it stays queued */
    }
    store_pipe_cancel(pipe, ticket);
    assert_int_equal(cancelled.calls, 1);
    assert_int_equal(cancelled.status, STORE_DEADLINE);
    answer next = {0};
    enqueue_world(pipe, 31, &next);
    turn_until(pipe, &next.calls, 1, 5000);
    expect_world(&next, 31);
    assert_int_equal(runs_so_far() - before, 1);
    assert_int_equal(cancelled.calls, 1);
    store_pipe_close(pipe);
}

/* ---- deadlines ----------------------------------------------------------------------- */

static void a_cancelled_request_is_answered_once_and_its_late_result_discarded(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    answered = 0;
    answer slow = {0}, behind = {0}, unsent = {0}, next = {0};
    store_pipe_ticket slow_ticket = enqueue(pipe, slow_number, (const char *const[]){"0.3", "7"}, &slow);
    enqueue_world(pipe, 5, &behind);
    store_pipe_flush(pipe);
    /* Queued, then cancelled before the turn ends: it never goes out. */
    store_pipe_ticket unsent_ticket = enqueue(pipe, world_by_id, (const char *const[]){"6"}, &unsent);
    store_pipe_cancel(pipe, unsent_ticket);
    assert_int_equal(unsent.calls, 1);
    assert_int_equal(unsent.status, STORE_DEADLINE);
    turn(pipe, 20);
    assert_int_equal(slow.calls, 0);

    /* Its deadline passes while PostgreSQL runs it: answered now, as a
     * statement whose outcome is unknown. */
    store_pipe_cancel(pipe, slow_ticket);
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.status, STORE_UNAVAILABLE);
    assert_non_null(strstr(slow.message, "deadline"));
    store_pipe_cancel(pipe, slow_ticket); /* twice: ignored */
    store_pipe_cancel(pipe, 999999);      /* unknown: ignored */
    assert_int_equal(slow.calls, 1);

    enqueue_world(pipe, 8, &next);
    /* behind and next get their own rows; slow's late one is dropped. */
    int target = answered + 2;
    turn_until(pipe, &answered, target, 5000);
    expect_world(&behind, 5);
    expect_world(&next, 8);
    assert_int_equal(slow.calls, 1);
    assert_int_equal(unsent.calls, 1);
    assert_int_equal(store_pipe_waiting(pipe), 0);
    assert_true(behind.order < next.order);
    store_pipe_close(pipe);
}

/* ---- batches ------------------------------------------------------------------------- */

typedef struct batch_answer {
    int calls;
    store_status status;
    char field[32];
    int order;
} batch_answer;

static void record_batch(void *cookie, store_status status, const store_error *error)
{
    batch_answer *a = cookie;
    a->calls++;
    a->status = status;
    a->order = ++answered;
    assert_non_null(error);
    assert_int_equal(error->status, status);
    snprintf(a->field, sizeof a->field, "%s", error->field != NULL ? error->field : "");
}

static void expect_item_world(const store_batch_item *item, int id)
{
    char expected[16];
    if (item->status != STORE_OK)
        fail_msg("item for world %d: status %d", id, item->status);
    assert_non_null(item->result);
    assert_int_equal(store_result_rows(item->result), 1);
    snprintf(expected, sizeof expected, "%d", id);
    assert_string_equal(store_result_value(item->result, 0, 0), expected);
}

static void free_items(store_batch_item *items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        store_result_free(items[i].result);
        items[i].result = NULL;
    }
}

/* A batch is one request of many statements, each with its own sync (as
 * store_batch's items): its failures stay in their items, the requests
 * around it are untouched, and its callback comes once, in its turn. */
static void a_batch_answers_each_item_on_its_own_in_order(void **state)
{
    (void)state;
    test_pg_exec(conninfo, "INSERT INTO notes (text) VALUES ('batch taken') ON CONFLICT DO NOTHING");
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    answered = 0;
    answer first = {0}, last = {0};
    batch_answer batch = {0};
    store_batch_item items[] = {
        {.statement = world_by_id, .params = (const char *const[]){"21"}},
        {.statement = note_insert, .params = (const char *const[]){"batch taken"}},
        {.statement = world_by_id, .params = (const char *const[]){"22"}},
        {.statement = broken},
    };
    enqueue_world(pipe, 20, &first);
    store_pipe_ticket ticket = 0;
    assert_int_equal(store_pipe_enqueue_batch(pipe, items, 4, record_batch, &batch, &ticket), STORE_OK);
    assert_true(ticket != 0);
    enqueue_world(pipe, 23, &last);
    store_pipe_flush(pipe);
    turn_until(pipe, &answered, 3, 5000);
    assert_int_equal(batch.calls, 1);
    assert_int_equal(batch.status, STORE_CONFLICT);
    assert_string_equal(batch.field, "text");
    expect_item_world(&items[0], 21);
    assert_int_equal(items[1].status, STORE_CONFLICT);
    assert_null(items[1].result);
    expect_item_world(&items[2], 22);
    assert_int_equal(items[3].status, STORE_ERROR);
    expect_world(&first, 20);
    expect_world(&last, 23);
    assert_true(first.order < batch.order && batch.order < last.order);
    free_items(items, 4);
    store_pipe_cancel(pipe, ticket); /* answered: ignored */
    assert_int_equal(batch.calls, 1);

    /* Cancelled while PostgreSQL runs its first item: answered at once,
     * no item keeps a result, and what comes late is dropped. */
    batch = (batch_answer){0};
    answer behind = {0};
    store_batch_item slow[] = {
        {.statement = slow_number, .params = (const char *const[]){"0.3", "1"}},
        {.statement = world_by_id, .params = (const char *const[]){"24"}},
    };
    assert_int_equal(store_pipe_enqueue_batch(pipe, slow, 2, record_batch, &batch, &ticket), STORE_OK);
    enqueue_world(pipe, 25, &behind);
    store_pipe_flush(pipe);
    turn(pipe, 20);
    store_pipe_cancel(pipe, ticket);
    assert_int_equal(batch.calls, 1);
    assert_int_equal(batch.status, STORE_UNAVAILABLE);
    assert_null(slow[0].result);
    assert_null(slow[1].result);
    assert_int_equal(slow[1].status, STORE_UNAVAILABLE);
    turn_until(pipe, &behind.calls, 1, 5000);
    expect_world(&behind, 25);
    assert_int_equal(batch.calls, 1);
    assert_int_equal(store_pipe_waiting(pipe), 0);

    /* Cancelled before it went out: never sent. */
    batch = (batch_answer){0};
    store_batch_item unsent[] = {{.statement = note_insert, .params = (const char *const[]){"never sent"}}};
    assert_int_equal(store_pipe_enqueue_batch(pipe, unsent, 1, record_batch, &batch, &ticket), STORE_OK);
    store_pipe_cancel(pipe, ticket);
    assert_int_equal(batch.status, STORE_DEADLINE);
    answer after = {0};
    enqueue_world(pipe, 26, &after);
    turn_until(pipe, &after.calls, 1, 5000);
    expect_world(&after, 26);
    assert_int_equal(test_pg_number(conninfo, "SELECT count(*) FROM notes WHERE text = 'never sent'"), 0);

    /* Refused whole: a statement the registry does not have, or none. */
    store_batch_item unknown[] = {{.statement = 999}};
    assert_int_equal(store_pipe_enqueue_batch(pipe, unknown, 1, record_batch, &batch, &ticket), STORE_ERROR);
    assert_int_equal(ticket, 0);
    assert_int_equal(store_pipe_enqueue_batch(pipe, unknown, 0, record_batch, &batch, &ticket), STORE_ERROR);
    store_pipe_close(pipe);
}

/* ---- head-of-line ---------------------------------------------------------------------- */

#define SLOW_S "0.3"
#define SLOW_NS 300000000ull
/* What "most of the slow one's time" means here: the fast one goes out in
 * the same flush, a few microseconds after the slow one. */
#define MOST_OF_SLOW_NS (SLOW_NS * 8 / 10)

static store_pipe_stats stats_since(const store_pipe *pipe, const store_pipe_stats *before)
{
    store_pipe_stats now;
    store_pipe_stats_read(pipe, &now);
    store_pipe_stats delta = now;
    delta.statements -= before->statements;
    delta.busy_ns -= before->busy_ns;
    delta.wait_ns -= before->wait_ns;
    for (size_t i = 0; i <= STORE_PIPE_WAIT_BUCKETS; i++)
        delta.wait_buckets[i] -= before->wait_buckets[i];
    return delta;
}

/* Statements in the buckets above bound_ns. */
static unsigned long waits_over(const store_pipe_stats *stats, uint64_t bound_ns)
{
    unsigned long over = 0;
    for (size_t i = 0; i <= STORE_PIPE_WAIT_BUCKETS; i++)
        if (i == STORE_PIPE_WAIT_BUCKETS || store_pipe_wait_bounds_ns[i] > bound_ns)
            over += stats->wait_buckets[i];
    return over;
}

/* PostgreSQL runs a pipeline's statements one after another: a fast
 * statement sent right behind another request's slow one waits for it, and
 * the pipe counts that wait; alone, or behind its own batch's items, it
 * waits for nothing. The counters go where the engine points them. */
static void a_statement_behind_a_slow_one_counts_its_wait(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    config.spill_after_ms = 0; /* one connection: everything goes behind the slow one */
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    store_pipe_counters counters = {0};
    store_pipe_count_into(pipe, &counters);
    turn_until_ready(pipe);
    answered = 0;
    store_pipe_stats before = {0}, delta;

    /* Alone: its time on the connection, and no wait. */
    answer alone = {0};
    enqueue_world(pipe, 41, &alone);
    store_pipe_flush(pipe);
    turn_until(pipe, &alone.calls, 1, 5000);
    expect_world(&alone, 41);
    delta = stats_since(pipe, &before);
    assert_int_equal(delta.statements, 1);
    assert_true(delta.busy_ns > 0);
    assert_int_equal(delta.wait_ns, 0);
    assert_int_equal(delta.wait_buckets[0], 1); /* le="0" */
    assert_int_equal(delta.max_wait_ns, 0);

    /* Right behind another request's slow one, in the same flush. */
    store_pipe_stats_read(pipe, &before);
    answer slow = {0}, fast = {0};
    enqueue(pipe, slow_number, (const char *const[]){SLOW_S, "1"}, &slow);
    enqueue_world(pipe, 42, &fast);
    store_pipe_flush(pipe);
    turn_until(pipe, &fast.calls, 1, 5000);
    assert_int_equal(slow.status, STORE_OK);
    expect_world(&fast, 42);
    delta = stats_since(pipe, &before);
    assert_int_equal(delta.statements, 2);
    /* The slow one came after the one alone had finished: only the fast
     * one waited, for most of the slow one's sleep. */
    if (delta.wait_ns < MOST_OF_SLOW_NS)
        fail_msg("the fast statement waited %llu ns behind a %llu ns one", (unsigned long long)delta.wait_ns,
                 SLOW_NS);
    assert_true(delta.max_wait_ns == delta.wait_ns);
    assert_int_equal(waits_over(&delta, MOST_OF_SLOW_NS / 2), 1);
    assert_int_equal(delta.wait_buckets[0], 1);
    /* Both were on the connection for the sleep, the fast one for its wait. */
    assert_true(delta.busy_ns >= SLOW_NS + delta.wait_ns);

    /* A fast one sent after the slow one finished waits for nothing. */
    store_pipe_stats_read(pipe, &before);
    answer after = {0};
    enqueue_world(pipe, 43, &after);
    store_pipe_flush(pipe);
    turn_until(pipe, &after.calls, 1, 5000);
    delta = stats_since(pipe, &before);
    assert_int_equal(delta.statements, 1);
    assert_int_equal(delta.wait_ns, 0);

    /* A batch's items do not wait behind their own batch... */
    store_pipe_stats_read(pipe, &before);
    batch_answer own = {0};
    store_batch_item items[] = {
        {.statement = slow_number, .params = (const char *const[]){SLOW_S, "2"}},
        {.statement = world_by_id, .params = (const char *const[]){"44"}},
    };
    assert_int_equal(store_pipe_enqueue_batch(pipe, items, 2, record_batch, &own, NULL), STORE_OK);
    store_pipe_flush(pipe);
    turn_until(pipe, &own.calls, 1, 5000);
    assert_int_equal(own.status, STORE_OK);
    expect_item_world(&items[1], 44);
    free_items(items, 2);
    delta = stats_since(pipe, &before);
    assert_int_equal(delta.statements, 2);
    assert_int_equal(delta.wait_ns, 0);

    /* ...but each waits behind another request's slow one before it. */
    store_pipe_stats_read(pipe, &before);
    answer ahead = {0};
    batch_answer behind = {0};
    store_batch_item fast_items[] = {
        {.statement = world_by_id, .params = (const char *const[]){"45"}},
        {.statement = world_by_id, .params = (const char *const[]){"46"}},
    };
    enqueue(pipe, slow_number, (const char *const[]){SLOW_S, "3"}, &ahead);
    assert_int_equal(store_pipe_enqueue_batch(pipe, fast_items, 2, record_batch, &behind, NULL), STORE_OK);
    store_pipe_flush(pipe);
    turn_until(pipe, &behind.calls, 1, 5000);
    assert_int_equal(behind.status, STORE_OK);
    expect_item_world(&fast_items[0], 45);
    expect_item_world(&fast_items[1], 46);
    free_items(fast_items, 2);
    delta = stats_since(pipe, &before);
    assert_int_equal(delta.statements, 3);
    assert_int_equal(waits_over(&delta, MOST_OF_SLOW_NS / 2), 2);
    assert_true(delta.wait_ns >= 2 * MOST_OF_SLOW_NS);

    /* Everything went to the engine's counters, none of it was lost. */
    store_pipe_stats counted = {0};
    store_pipe_counters_add_to(&counters, &counted);
    store_pipe_stats read;
    store_pipe_stats_read(pipe, &read);
    assert_memory_equal(&counted, &read, sizeof read);
    assert_int_equal(counted.statements, 9);
    store_pipe_count_into(pipe, NULL);
    store_pipe_stats_read(pipe, &read);
    assert_int_equal(read.statements, 0);
    store_pipe_close(pipe);
}

/* ---- the spill lane ---------------------------------------------------------------------- */

/* The main lane's stall is this test's pg_sleep: scaled, as the bounds. */
#define SPILL_AFTER_MS 20
#define SPILL_SLOW_MS 500
/* A statement that spills is answered within the threshold and the spill
 * connection's start (connect, prepare the registry): well before the slow
 * one ends. */
#define SPILL_ANSWER_BOUND_MS 300

static double scaled(int ms)
{
    return ms * test_env_time_scale();
}

static const char *sleep_text(int ms, char *text, size_t size)
{
    snprintf(text, size, "%.3f", scaled(ms) / 1000.0);
    return text;
}

/* Turns until the main lane's statement has been out past the threshold. */
static void turn_for(store_pipe *pipe, int ms)
{
    uint64_t until = now_ms() + (uint64_t)ms;
    while (now_ms() < until)
        turn(pipe, 5);
}

/* How long a fast statement enqueued now takes to come back. */
static uint64_t fast_answer_ms(store_pipe *pipe, int id, answer *a)
{
    uint64_t start = now_ms();
    enqueue_world(pipe, id, a);
    turn_until(pipe, &a->calls, 1, 5000);
    expect_world(a, id);
    return now_ms() - start;
}

static bool backend_listed(int pid)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
    return test_pg_number(TEST_ADMIN_DATABASE_URL(), sql) > 0;
}

/* Whether the backend runs under that application_name. */
static bool backend_named(int pid, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND application_name = '%s'", pid,
             name);
    return test_pg_number(TEST_ADMIN_DATABASE_URL(), sql) > 0;
}

/* A fast statement enqueued while another request's slow one is out on
 * the main lane past the threshold goes on the spill lane, connected for
 * it, and comes back long before the slow one; once the main lane has
 * caught up, statements go there again; the spill connection closes after
 * its idle time, and the server's backend with it. With the threshold 0
 * the same statement waits behind the slow one. */
static void a_statement_spills_past_a_slow_one_and_the_spill_lane_closes_when_idle(void **state)
{
    (void)state;
    char text[32];
    int idle_ms = (int)scaled(SPILL_SLOW_MS + 400);

    /* Without the spill lane: behind the slow one. */
    store_config config = config_for(conninfo, 2);
    config.spill_after_ms = 0;
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    answer slow = {0}, fast = {0};
    enqueue(pipe, slow_number, (const char *const[]){sleep_text(300, text, sizeof text), "1"}, &slow);
    store_pipe_flush(pipe);
    turn_for(pipe, 2 * SPILL_AFTER_MS);
    uint64_t waited = fast_answer_ms(pipe, 61, &fast);
    assert_int_equal(slow.calls, 1);
    if (waited < scaled(300) * 8 / 10 - 2 * SPILL_AFTER_MS)
        fail_msg("without a spill lane the fast statement came back after %llu ms, not behind the slow one",
                 (unsigned long long)waited);
    store_pipe_stats stats;
    store_pipe_stats_read(pipe, &stats);
    assert_int_equal(stats.spilled, 0);
    assert_int_equal(store_pipe_lane_fd(pipe, STORE_PIPE_SPILL), -1);
    store_pipe_close(pipe);

    /* With it. */
    config.spill_after_ms = SPILL_AFTER_MS;
    pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    store_pipe_set_spill_idle_ms(pipe, idle_ms);
    turn_until_ready(pipe);
    int main_pid = store_pipe_backend_pid(pipe);
    slow = (answer){0};
    fast = (answer){0};
    enqueue(pipe, slow_number, (const char *const[]){sleep_text(SPILL_SLOW_MS, text, sizeof text), "2"}, &slow);
    store_pipe_flush(pipe);
    /* Under the threshold: the main lane. */
    answer first = {0};
    enqueue_world(pipe, 60, &first);
    store_pipe_flush(pipe);
    turn_for(pipe, 2 * SPILL_AFTER_MS);
    assert_int_equal(store_pipe_lane_fd(pipe, STORE_PIPE_SPILL), -1);
    waited = fast_answer_ms(pipe, 62, &fast);
    uint64_t spill_sent_ms = now_ms() - waited;
    assert_int_equal(slow.calls, 0);
    assert_int_equal(first.calls, 0);
    if (waited > scaled(SPILL_ANSWER_BOUND_MS))
        fail_msg("the spilled statement came back after %llu ms", (unsigned long long)waited);
    int spill_pid = store_pipe_lane_backend_pid(pipe, STORE_PIPE_SPILL);
    assert_true(spill_pid > 0);
    assert_int_not_equal(spill_pid, main_pid);
    /* Told apart from the main ones in pg_stat_activity. */
    assert_true(backend_named(spill_pid, "store-pipe-test spill"));
    assert_true(backend_named(main_pid, "store-pipe-test"));
    store_pipe_stats_read(pipe, &stats);
    assert_int_equal(stats.spilled, 1);
    assert_int_equal(stats.spill_connections, 1);

    /* The slow one and the one behind it still come back, in order. */
    turn_until(pipe, &first.calls, 1, 5000);
    assert_int_equal(slow.status, STORE_OK);
    assert_string_equal(slow.value, "2");
    expect_world(&first, 60);
    assert_true(slow.order < first.order);

    /* Caught up: the main lane again, the spill lane still open. */
    answer again = {0};
    fast_answer_ms(pipe, 63, &again);
    store_pipe_stats_read(pipe, &stats);
    assert_int_equal(stats.spilled, 1);
    assert_true(store_pipe_lane_fd(pipe, STORE_PIPE_SPILL) >= 0);

    /* Idle: closed, not before its time, and gone from the server. */
    uint64_t give_up = now_ms() + (uint64_t)idle_ms + (uint64_t)scaled(2000);
    while (store_pipe_lane_fd(pipe, STORE_PIPE_SPILL) >= 0) {
        if (now_ms() > give_up)
            fail_msg("the spill lane is still open %llu ms after its last statement",
                     (unsigned long long)(now_ms() - spill_sent_ms));
        turn(pipe, 50);
    }
    assert_true(now_ms() - spill_sent_ms >= (uint64_t)idle_ms);
    while (backend_listed(spill_pid)) {
        if (now_ms() > give_up)
            fail_msg("the spill lane's backend %d is still there", spill_pid);
        usleep(20000);
    }
    assert_int_equal(store_pipe_backend_pid(pipe), main_pid);
    store_pipe_close(pipe);
}

/* A lock is a stall too: a statement on a table another session holds
 * ACCESS EXCLUSIVE waits for it on the main lane, and the spill lane,
 * opened then, must not wait for it as well: it prepares nothing (a
 * prepare of a statement naming the table would wait for the lock), so a
 * read of another table comes back at once. */
static void a_spill_lane_opened_under_a_lock_serves_other_tables(void **state)
{
    (void)state;
    char sql[160];
    /* Ready first: the main lane prepares every statement, notes' too. */
    store_config config = config_for(conninfo, 2);
    config.spill_after_ms = SPILL_AFTER_MS;
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    PGconn *holder = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(holder), CONNECTION_OK);
    snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE notes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%.3f); COMMIT",
             scaled(SPILL_SLOW_MS) / 1000.0);
    assert_int_equal(PQsendQuery(holder, sql), 1);
    uint64_t give_up = now_ms() + (uint64_t)scaled(2000);
    while (test_pg_number(conninfo, "SELECT count(*) FROM pg_locks WHERE relation = 'notes'::regclass AND mode = "
                                    "'AccessExclusiveLock' AND granted") == 0) {
        if (now_ms() > give_up)
            fail_msg("the lock was not taken");
        usleep(5000);
    }

    answer blocked = {0}, fast = {0};
    enqueue(pipe, note_insert, (const char *const[]){"under the lock"}, &blocked);
    store_pipe_flush(pipe);
    turn_for(pipe, 2 * SPILL_AFTER_MS);
    uint64_t waited = fast_answer_ms(pipe, 66, &fast);
    assert_int_equal(blocked.calls, 0);
    if (waited > scaled(SPILL_ANSWER_BOUND_MS))
        fail_msg("the read of another table came back after %llu ms", (unsigned long long)waited);
    turn_until(pipe, &blocked.calls, 1, 5000);
    if (blocked.status != STORE_OK)
        fail_msg("status %d: %s", blocked.status, blocked.message);
    store_pipe_close(pipe);
    for (PGresult *result = PQgetResult(holder); result != NULL; result = PQgetResult(holder)) {
        assert_int_not_equal(PQresultStatus(result), PGRES_FATAL_ERROR);
        PQclear(result);
    }
    PQfinish(holder);
}

/* A queue that moves is no stall: statements each shorter than the
 * threshold, queued deep enough that the oldest has been out for longer,
 * keep the main lane, which answers one after another; a second connection
 * would not serve them sooner. */
static void a_queue_that_moves_does_not_spill(void **state)
{
    (void)state;
    enum { QUEUED = 20 };
    char text[32];
    store_config config = config_for(conninfo, 2);
    config.spill_after_ms = (int)scaled(SPILL_AFTER_MS);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    static answer queued[QUEUED];
    memset(queued, 0, sizeof queued);
    /* Each a quarter of the threshold: the last done after 5 thresholds. */
    sleep_text(SPILL_AFTER_MS / 4, text, sizeof text);
    for (int i = 0; i < QUEUED; i++)
        enqueue(pipe, slow_number, (const char *const[]){text, "5"}, &queued[i]);
    store_pipe_flush(pipe);
    turn_for(pipe, (int)scaled(2 * SPILL_AFTER_MS));
    answer fast = {0};
    fast_answer_ms(pipe, 65, &fast);
    turn_until(pipe, &queued[QUEUED - 1].calls, 1, 5000);
    store_pipe_stats stats;
    store_pipe_stats_read(pipe, &stats);
    assert_int_equal(stats.spilled, 0);
    assert_int_equal(store_pipe_lane_fd(pipe, STORE_PIPE_SPILL), -1);
    store_pipe_close(pipe);
}

/* The spill lane's backend terminated while a statement of its own is
 * out: that one is answered unavailable (it was sent: its outcome is
 * unknown), the main lane's go on, and the next statement that spills gets
 * a new spill connection. */
static void a_spill_lane_lost_fails_only_what_it_had_sent(void **state)
{
    (void)state;
    char text[32], other[32];
    store_config config = config_for(conninfo, 2);
    config.spill_after_ms = SPILL_AFTER_MS;
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    int main_pid = store_pipe_backend_pid(pipe);
    answered = 0;
    answer slow = {0}, spilled = {0};
    /* Longer than the others: two spill connections and a termination
     * happen before it ends. */
    enqueue(pipe, slow_number, (const char *const[]){sleep_text(2 * SPILL_SLOW_MS, text, sizeof text), "3"}, &slow);
    store_pipe_flush(pipe);
    turn_for(pipe, 2 * SPILL_AFTER_MS);
    enqueue(pipe, slow_number, (const char *const[]){sleep_text(SPILL_SLOW_MS, other, sizeof other), "4"}, &spilled);
    uint64_t give_up = now_ms() + (uint64_t)scaled(2000);
    store_pipe_stats stats = {0};
    while (stats.spilled == 0) {
        if (now_ms() > give_up)
            fail_msg("nothing went out on the spill lane");
        turn(pipe, 5);
        store_pipe_stats_read(pipe, &stats);
    }
    int spill_pid = store_pipe_lane_backend_pid(pipe, STORE_PIPE_SPILL);
    assert_true(spill_pid > 0);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 10000)::int", spill_pid);
    assert_int_equal(test_pg_number(TEST_ADMIN_DATABASE_URL(), sql), 1);
    turn_until(pipe, &spilled.calls, 1, 5000);
    assert_int_equal(spilled.status, STORE_UNAVAILABLE);
    assert_non_null(strstr(spilled.message, "outcome is unknown"));
    assert_int_equal(slow.calls, 0);

    /* The main lane is still stalled: the next one spills, on a new
     * connection, and comes back before the slow one. */
    answer next = {0};
    fast_answer_ms(pipe, 64, &next);
    assert_int_equal(slow.calls, 0);
    store_pipe_stats_read(pipe, &stats);
    assert_int_equal(stats.spilled, 2);
    assert_int_equal(stats.spill_connections, 2);
    int new_spill_pid = store_pipe_lane_backend_pid(pipe, STORE_PIPE_SPILL);
    assert_true(new_spill_pid > 0);
    assert_int_not_equal(new_spill_pid, spill_pid);

    turn_until(pipe, &slow.calls, 1, 5000);
    assert_int_equal(slow.status, STORE_OK);
    assert_string_equal(slow.value, "3");
    assert_int_equal(store_pipe_backend_pid(pipe), main_pid);
    assert_int_equal(store_pipe_reconnect_count(pipe), 0);
    store_pipe_close(pipe);
}

/* ---- a backend that goes, or stops answering ---------------------------------------- */

/* Terminated while idle: PostgreSQL says FATAL with nothing out, which
 * libpq hands to the notice receiver (the end of the stream comes to light
 * only on a later read); the pipe connects again at once and the request
 * is answered on the new backend. */
static void a_backend_terminated_while_idle_is_replaced(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    int pid = store_pipe_backend_pid(pipe);
    assert_true(pid > 0);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 10000)::int", pid);
    assert_int_equal(test_pg_number(TEST_ADMIN_DATABASE_URL(), sql), 1);
    /* A handler of the turn that finds the connection closing queues its
     * statement before the pipe reads the socket: it must not go out on the
     * dying connection (it would be lost, outcome unknown), but on the next. */
    answered = 0;
    answer next = {0};
    enqueue_world(pipe, 9, &next);
    turn_until(pipe, &answered, 1, 5000);
    if (next.status != STORE_OK) fail_msg("status %d: %s", next.status, next.message);
    assert_int_not_equal(store_pipe_backend_pid(pipe), pid);
    assert_int_equal(store_pipe_reconnect_count(pipe), 1);
    expect_world(&next, 9);
    store_pipe_close(pipe);
}

/* A server that stops answering (here: a statement that outlasts the
 * answer timeout, with no statement_timeout to end it) must not hold
 * every request of the loop: the connection is dropped, what was out is
 * answered unavailable, and the next request runs on a new one. */
static void a_server_that_stops_answering_is_left_after_the_answer_timeout(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    config.answer_timeout_ms = (int)(300 * test_env_time_scale());
    config.statement_timeout_ms = 0;
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    answered = 0;
    answer stuck = {0}, behind = {0}, next = {0};
    char seconds[16];
    snprintf(seconds, sizeof seconds, "%d", (int)(3 * test_env_time_scale()));
    uint64_t started = now_ms();
    enqueue(pipe, slow_number, (const char *const[]){seconds, "1"}, &stuck);
    enqueue_world(pipe, 10, &behind);
    batch_answer batch = {0};
    store_batch_item items[] = {{.statement = world_by_id, .params = (const char *const[]){"12"}},
                                {.statement = world_by_id, .params = (const char *const[]){"13"}}};
    assert_int_equal(store_pipe_enqueue_batch(pipe, items, 2, record_batch, &batch, NULL), STORE_OK);
    store_pipe_flush(pipe);
    turn_until(pipe, &answered, 3, 2000);
    assert_int_equal(batch.calls, 1);
    assert_int_equal(batch.status, STORE_UNAVAILABLE);
    assert_null(items[0].result);
    assert_null(items[1].result);
    uint64_t waited = now_ms() - started;
    assert_int_equal(stuck.status, STORE_UNAVAILABLE);
    assert_non_null(strstr(stuck.message, "did not answer"));
    assert_int_equal(behind.status, STORE_UNAVAILABLE);
    assert_true(waited >= (uint64_t)config.answer_timeout_ms);
    enqueue_world(pipe, 11, &next);
    turn_until(pipe, &answered, 4, 5000);
    expect_world(&next, 11);
    assert_int_equal(store_pipe_reconnect_count(pipe), 1);
    store_pipe_close(pipe);
}

/* ---- PostgreSQL restarted and stopped ------------------------------------------------------ */

#define SENT 10
#define QUEUED 10

static void a_restart_fails_what_was_sent_and_sends_the_rest_after(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    answered = 0;

    /* Sent and not answered when the server goes: the first sleeps, so
     * the server has run none of them. */
    answer sent[SENT] = {0};
    enqueue(pipe, slow_number, (const char *const[]){"3", "1"}, &sent[0]);
    for (int i = 1; i < SENT; i++)
        enqueue_world(pipe, 100 + i, &sent[i]);
    batch_answer sent_batch = {0};
    store_batch_item sent_items[] = {{.statement = world_by_id, .params = (const char *const[]){"150"}},
                                     {.statement = world_by_id, .params = (const char *const[]){"151"}}};
    assert_int_equal(store_pipe_enqueue_batch(pipe, sent_items, 2, record_batch, &sent_batch, NULL), STORE_OK);
    store_pipe_flush(pipe);
    turn(pipe, 20);
    assert_int_equal(answered, 0);

    test_pg_stop();
    test_pg_start();
    /* Handlers of the turn that also finds the connection closed queue
     * theirs before the pipe reads its socket: not sent yet, they go out on
     * the next connection. */
    answer queued[QUEUED] = {0};
    for (int i = 0; i < QUEUED; i++)
        enqueue_world(pipe, 200 + i, &queued[i]);
    batch_answer queued_batch = {0};
    store_batch_item queued_items[] = {{.statement = world_by_id, .params = (const char *const[]){"250"}},
                                       {.statement = world_by_id, .params = (const char *const[]){"251"}}};
    assert_int_equal(store_pipe_enqueue_batch(pipe, queued_items, 2, record_batch, &queued_batch, NULL), STORE_OK);
    turn_until(pipe, &answered, SENT + QUEUED + 2, 10000);
    assert_int_equal(sent_batch.calls, 1);
    assert_int_equal(sent_batch.status, STORE_UNAVAILABLE);
    assert_null(sent_items[0].result);
    assert_int_equal(queued_batch.calls, 1);
    assert_int_equal(queued_batch.status, STORE_OK);
    expect_item_world(&queued_items[0], 250);
    expect_item_world(&queued_items[1], 251);
    free_items(queued_items, 2);
    for (int i = 0; i < SENT; i++) {
        assert_int_equal(sent[i].calls, 1);
        if (sent[i].status != STORE_UNAVAILABLE)
            fail_msg("sent %d: status %d", i, sent[i].status);
        assert_non_null(strstr(sent[i].message, "outcome is unknown"));
    }
    for (int i = 0; i < QUEUED; i++)
        expect_world(&queued[i], 200 + i);
    assert_int_equal(store_pipe_reconnect_count(pipe), 1);

    /* Stopped: whatever is sent or queued is answered unavailable, nothing
     * hangs, and requests are refused at once for the reconnect interval. */
    answer out[SENT] = {0};
    for (int i = 0; i < SENT; i++)
        enqueue_world(pipe, 300 + i, &out[i]);
    store_pipe_flush(pipe);
    test_pg_stop();
    answer waiting[QUEUED] = {0};
    for (int i = 0; i < QUEUED; i++)
        enqueue_world(pipe, 400 + i, &waiting[i]);
    int target = answered + SENT + QUEUED;
    turn_until(pipe, &answered, target, 5000);
    for (int i = 0; i < SENT; i++) {
        assert_int_equal(out[i].calls, 1);
        /* Answered before the stop, or lost with it: never hanging. */
        if (out[i].status != STORE_OK)
            assert_int_equal(out[i].status, STORE_UNAVAILABLE);
    }
    for (int i = 0; i < QUEUED; i++) {
        assert_int_equal(waiting[i].calls, 1);
        assert_int_equal(waiting[i].status, STORE_UNAVAILABLE);
    }
    store_pipe_ticket ticket = 1;
    answer refused = {0};
    if (store_pipe_enqueue(pipe, world_by_id, (const char *const[]){"1"}, record, &refused, &ticket) == STORE_OK) {
        /* The interval had passed already (a slow machine): then it is
         * answered, unavailable, without hanging. */
        turn_until(pipe, &refused.calls, 1, 5000);
        assert_int_equal(refused.status, STORE_UNAVAILABLE);
    } else {
        assert_int_equal(ticket, 0);
        assert_int_equal(refused.calls, 0);
    }

    test_pg_start();
    answer back = {0};
    uint64_t give_up = now_ms() + (uint64_t)(10000 * test_env_time_scale());
    while (back.calls == 0 || back.status != STORE_OK) {
        if (now_ms() > give_up)
            fail_msg("no answer after PostgreSQL came back: %d %s", back.status, back.message);
        back = (answer){0};
        if (store_pipe_enqueue(pipe, world_by_id, (const char *const[]){"77"}, record, &back, NULL) != STORE_OK) {
            turn(pipe, 50);
            continue;
        }
        turn_until(pipe, &back.calls, 1, 5000);
    }
    expect_world(&back, 77);
    assert_true(store_pipe_reconnect_count(pipe) >= 2);
    store_pipe_close(pipe);
}

/* ---- connecting never blocks -------------------------------------------------------------- */

/* A server that accepts connections (the kernel's backlog does) and never
 * says a word, as a hung PostgreSQL: open and every call return at once,
 * the loop keeps turning, and the connect timeout answers the requests. */
static void connecting_never_blocks_the_loop(void **state)
{
    (void)state;
    int port = 0;
    int listener = test_silent_listener(&port);
    assert_true(listener >= 0);
    char silent[160];
    snprintf(silent, sizeof silent, "postgresql://shoal:shoal@127.0.0.1:%d/shoal", port);

    const int connect_timeout_s = 2;
    store_config config = config_for(silent, connect_timeout_s);
    uint64_t started = now_ms();
    store_pipe *pipe = store_pipe_open(&config);
    uint64_t opened = now_ms() - started;
    assert_non_null(pipe);
    assert_false(store_pipe_ready(pipe));
    /* Well under the connect timeout: nothing waited for the server. */
    assert_true(opened < 250 * test_env_time_scale());
    answered = 0;
    answer request = {0};
    enqueue_world(pipe, 1, &request);
    int turns = 0;
    uint64_t longest_turn = 0;
    while (request.calls == 0) {
        uint64_t turn_started = now_ms();
        turn(pipe, 20);
        uint64_t spent = now_ms() - turn_started;
        longest_turn = spent > longest_turn ? spent : longest_turn;
        turns++;
        if (now_ms() - started > (uint64_t)(connect_timeout_s * 1000) + (uint64_t)(3000 * test_env_time_scale()))
            fail_msg("no answer %d turns after the connect timeout", turns);
    }
    uint64_t elapsed = now_ms() - started;
    assert_int_equal(request.status, STORE_UNAVAILABLE);
    assert_true(elapsed >= (uint64_t)connect_timeout_s * 1000);
    assert_true(longest_turn < 250 * test_env_time_scale());
    assert_true(turns > 10);
    printf("open took %llu ms, %d turns of at most %llu ms while connecting, answered after %llu ms\n",
           (unsigned long long)opened, turns, (unsigned long long)longest_turn, (unsigned long long)elapsed);
    store_pipe_close(pipe);
    close(listener);
}

/* Closing answers what waits: nothing is left hanging. */
static void closing_answers_every_waiting_request(void **state)
{
    (void)state;
    store_config config = config_for(conninfo, 2);
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    answer sent = {0}, queued = {0};
    enqueue(pipe, slow_number, (const char *const[]){"0.2", "1"}, &sent);
    store_pipe_flush(pipe);
    enqueue_world(pipe, 3, &queued);
    store_pipe_close(pipe);
    assert_int_equal(sent.calls, 1);
    assert_int_equal(sent.status, STORE_UNAVAILABLE);
    assert_int_equal(queued.calls, 1);
    assert_int_equal(queued.status, STORE_UNAVAILABLE);
}

/* ---- the measurement (SHOAL_TEST_PIPE_MEASURE=N) ----------------------------------------------- */

/* The backend's CPU time (user + system) so far, in microseconds, from
 * /proc: the server runs on this machine in the tests. */
static double backend_cpu_us(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        fail_msg("cannot read %s", path);
    char line[1024];
    char *read = fgets(line, sizeof line, file);
    fclose(file);
    assert_non_null(read);
    const char *after_name = strrchr(line, ')');
    assert_non_null(after_name);
    unsigned long long utime = 0, stime = 0;
    /* Fields 14 and 15; after ") " comes field 3. */
    if (sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        fail_msg("cannot parse %s", path);
    return (double)(utime + stime) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static int counted;

static void count_answer(void *cookie, store_status status, store_result *result, const store_error *error)
{
    (void)cookie;
    (void)error;
    if (status != STORE_OK)
        fail_msg("a measured select failed: %d", status);
    store_result_free(result);
    counted++;
}

static void measure_postgres_cpu_per_select(void **state)
{
    (void)state;
    const char *setting = getenv("SHOAL_TEST_PIPE_MEASURE");
    int n = setting != NULL ? atoi(setting) : 0;
    if (n <= 0) {
        printf("SHOAL_TEST_PIPE_MEASURE unset: no measurement\n");
        return;
    }
    store_config config = config_for(conninfo, 2);
    char id[16];

    store *blocking = store_open(&config);
    assert_non_null(blocking);
    assert_int_equal(store_connect_now(blocking), STORE_OK);
    int pid = store_backend_pid(blocking);
    double cpu = backend_cpu_us(pid);
    uint64_t started = now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%d", i % WORLD_ROWS + 1);
        store_result *result = NULL;
        assert_int_equal(store_run(blocking, world_by_id, (const char *const[]){id}, &result), STORE_OK);
        store_result_free(result);
    }
    double blocking_us = (backend_cpu_us(pid) - cpu) / n;
    uint64_t blocking_ms = now_ms() - started;
    store_close(blocking);

    /* The node's default threshold: in steady state nothing spills, and
     * the main lane's backend does all the work (the count says so). */
    config.spill_after_ms = 20;
    store_pipe *pipe = store_pipe_open(&config);
    assert_non_null(pipe);
    turn_until_ready(pipe);
    pid = store_pipe_backend_pid(pipe);
    cpu = backend_cpu_us(pid);
    counted = 0;
    started = now_ms();
    int queued = 0;
    while (counted < n) {
        /* 64 requests a turn, as 64 connections' handlers would queue. */
        for (int k = 0; k < 64 && queued < n && queued - counted < 256; k++, queued++) {
            snprintf(id, sizeof id, "%d", queued % WORLD_ROWS + 1);
            assert_int_equal(store_pipe_enqueue(pipe, world_by_id, (const char *const[]){id}, count_answer, NULL, NULL),
                             STORE_OK);
        }
        turn(pipe, 50);
    }
    double pipelined_us = (backend_cpu_us(pid) - cpu) / n;
    uint64_t pipelined_ms = now_ms() - started;
    store_pipe_stats stats;
    store_pipe_stats_read(pipe, &stats);
    store_pipe_close(pipe);
    printf("PostgreSQL CPU per select over %d selects of world by id: blocking store_run %.1f us (%llu ms in all), "
           "pipelined 64 a turn %.1f us (%llu ms in all; %lu spilled)\n",
           n, blocking_us, (unsigned long long)blocking_ms, pipelined_us, (unsigned long long)pipelined_ms,
           stats.spilled);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_requests_come_back_in_order_to_their_own_callbacks),
        cmocka_unit_test(a_flush_larger_than_the_socket_goes_out_over_turns),
        cmocka_unit_test(a_failing_statement_fails_only_its_request),
        cmocka_unit_test(a_cancelled_request_is_answered_once_and_its_late_result_discarded),
        cmocka_unit_test(a_batch_answers_each_item_on_its_own_in_order),
        cmocka_unit_test(a_statement_behind_a_slow_one_counts_its_wait),
        cmocka_unit_test(a_statement_spills_past_a_slow_one_and_the_spill_lane_closes_when_idle),
        cmocka_unit_test(a_spill_lane_lost_fails_only_what_it_had_sent),
        cmocka_unit_test(a_queue_that_moves_does_not_spill),
        cmocka_unit_test(a_spill_lane_opened_under_a_lock_serves_other_tables),
        cmocka_unit_test(a_serialization_failure_or_deadlock_runs_the_statement_again),
        cmocka_unit_test(a_backend_terminated_while_idle_is_replaced),
        cmocka_unit_test(a_server_that_stops_answering_is_left_after_the_answer_timeout),
        cmocka_unit_test(connecting_never_blocks_the_loop),
        cmocka_unit_test(closing_answers_every_waiting_request),
        cmocka_unit_test(measure_postgres_cpu_per_select),
        /* Last: it takes every connection down. */
        cmocka_unit_test_teardown(a_restart_fails_what_was_sent_and_sends_the_rest_after, test_pg_restart),
    };
    return cmocka_run_group_tests_name("integration.store.pipe", tests, set_up, tear_down);
}
