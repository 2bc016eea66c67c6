/* tests/integration/store/run_test.c: store/run.c against a real
 * PostgreSQL: prepared statements, runs, batches, transactions, errors and
 * outages. Everything happens in one scratch database of its own. */
#include <libpq-fe.h>
#include <pthread.h>
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

#include <shoal/store.h>

#include "test_env.h"
#include "test_pg.h"

#define SCRATCH "shoal_test_store_run"

static char conninfo[512];
static store_registry *registry;

/* Statement ids, set by set_up. */
static store_statement prepared_names, note_insert, note_count, begin_block, divide, assigned_xid, doubled,
    user_insert, sleep_a_second, counter_sum, counter_set, counter_add, forced_serialization_failure,
    deferred_insert, doomed_insert;

/* The one boolean a query answers, on target. */
static bool true_on(const char *target, const char *sql)
{
    PGconn *connection = PQconnectdb(target);
    assert_int_equal(PQstatus(connection), CONNECTION_OK);
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    bool yes = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    PQclear(result);
    PQfinish(connection);
    return yes;
}

static long long scalar(const char *sql)
{
    PGconn *connection = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(connection), CONNECTION_OK);
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    long long value = atoll(PQgetvalue(result, 0, 0));
    PQclear(result);
    PQfinish(connection);
    return value;
}

static store *open_store(int statement_timeout_ms, int answer_timeout_ms)
{
    store_config config = {.conninfo = conninfo,
                           .connect_timeout_s = 2,
                           .answer_timeout_ms = answer_timeout_ms,
                           .application_name = "store-run-test",
                           .statement_timeout_ms = statement_timeout_ms,
                           .registry = registry};
    store *s = store_open(&config);
    assert_non_null(s);
    return s;
}

static void kill_backend(int pid)
{
    char sql[96];
    /* With a timeout, PostgreSQL returns once the backend has exited (or
     * says false): its socket is closed before the store is used again. */
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 10000)", pid);
    assert_true(true_on(TEST_ADMIN_DATABASE_URL(), sql));
}

static long long run_number(store *s, store_statement statement, const char *const *params)
{
    store_result *result = NULL;
    store_status status = store_run(s, statement, params, &result);
    if (status != STORE_OK)
        fail_msg("statement %d: %d %s", statement, status, store_last_error(s)->message);
    assert_non_null(result);
    long long value = atoll(store_result_value(result, 0, 0));
    store_result_free(result);
    return value;
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
    /* Deadlocks are found after deadlock_timeout: keep the test short. */
    test_pg_exec(TEST_ADMIN_DATABASE_URL(), "ALTER DATABASE " SCRATCH " SET deadlock_timeout = '100ms'");
    test_pg_exec(conninfo, "CREATE TABLE notes (id serial PRIMARY KEY, text text NOT NULL UNIQUE);"
                           "CREATE TABLE users (id serial PRIMARY KEY,"
                           " email text NOT NULL CONSTRAINT users_email_key UNIQUE,"
                           " bio text CONSTRAINT users_bio_length CHECK (length(bio) < 10),"
                           " username text NOT NULL);"
                           "CREATE TABLE counters (id int PRIMARY KEY, value int NOT NULL);"
                           "INSERT INTO counters VALUES (1, 0), (2, 0);"
                           "CREATE FUNCTION serialization_failure() RETURNS void LANGUAGE plpgsql AS"
                           " $$BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = 'serialization_failure'; END$$;"
                      /* Checked at commit, after the INSERT has answered. */
                      "CREATE TABLE deferred_notes (text text NOT NULL,"
                      " CONSTRAINT deferred_notes_text_key UNIQUE (text) DEFERRABLE INITIALLY DEFERRED);"
                      /* The session ends itself while committing: the rows
                       * have come, the commit never does (a crash then). */
                      "CREATE TABLE doomed (text text NOT NULL);"
                      "CREATE FUNCTION end_own_session() RETURNS trigger LANGUAGE plpgsql AS"
                      " $$BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5);"
                      " RETURN NULL; END$$;"
                      "CREATE CONSTRAINT TRIGGER doomed_at_commit AFTER INSERT ON doomed"
                      " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION end_own_session();");

    registry = store_registry_new();
    prepared_names = add("prepared_names", "SELECT count(*) FROM pg_prepared_statements", 0);
    note_insert = add("note_insert", "INSERT INTO notes (text) VALUES ($1)", 1);
    note_count = add("note_count", "SELECT count(*) FROM notes", 0);
    begin_block = add("begin_block", "BEGIN", 0);
    divide = add("divide", "SELECT 100 / $1::int", 1);
    assigned_xid = add("assigned_xid", "SELECT coalesce(txid_current_if_assigned(), 0)", 0);
    doubled = add("doubled", "SELECT $1::int * 2", 1);
    user_insert = add("user_insert", "INSERT INTO users (email, bio, username) VALUES ($1, $2, $3)", 3);
    sleep_a_second = add("sleep_a_second", "SELECT pg_sleep(1)", 0);
    counter_sum = add("counter_sum", "SELECT sum(value) FROM counters", 0);
    counter_set = add("counter_set", "UPDATE counters SET value = $2 WHERE id = $1", 2);
    counter_add = add("counter_add", "UPDATE counters SET value = value + 1 WHERE id = $1", 1);
    forced_serialization_failure = add("forced_serialization_failure", "SELECT serialization_failure()", 0);
    deferred_insert = add("deferred_insert", "INSERT INTO deferred_notes (text) VALUES ($1) RETURNING text", 1);
    doomed_insert = add("doomed_insert", "INSERT INTO doomed (text) VALUES ($1) RETURNING text", 1);
    /* One that cannot prepare must not keep the others from preparing. */
    add("broken", "SELECT * FROM no_such_table", 0);
    assert_int_equal(store_registry_constraint(registry, "users_email_key", "email"), 0);
    assert_int_equal(store_registry_constraint(registry, "users_bio_length", "bio"), 0);
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

/* ---- prepared statements ---------------------------------------------------------- */

static void statements_are_prepared_on_connect_and_after_a_kill(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    /* Every registered statement but the broken one. */
    long long expected = store_registry_find(registry, "broken");
    assert_int_equal(run_number(s, prepared_names, NULL), expected);
    int pid = store_backend_pid(s);
    kill_backend(pid);
    assert_int_equal(run_number(s, prepared_names, NULL), expected);
    assert_int_not_equal(store_backend_pid(s), pid);
    assert_int_equal(store_reconnect_count(s), 1);

    /* The broken statement fails alone, saying why. */
    store_result *result = NULL;
    assert_int_equal(store_run(s, store_registry_find(registry, "broken"), NULL, &result), STORE_ERROR);
    assert_null(result);
    assert_non_null(strstr(store_last_error(s)->message, "no_such_table"));
    assert_int_equal(store_run(s, 999, NULL, &result), STORE_ERROR);
    store_close(s);
}

static void results_carry_rows_nulls_and_counts(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    store_result *result = NULL;
    assert_int_equal(store_run(s, note_insert, (const char *const[]){"results"}, &result), STORE_OK);
    assert_int_equal(store_result_affected(result), 1);
    assert_int_equal(store_result_rows(result), 0);
    store_result_free(result);
    assert_int_equal(store_run(s, doubled, (const char *const[]){NULL}, &result), STORE_OK);
    assert_int_equal(store_result_rows(result), 1);
    assert_int_equal(store_result_columns(result), 1);
    assert_true(store_result_is_null(result, 0, 0));
    assert_null(store_result_value(result, 0, 0));
    assert_null(store_result_value(result, 5, 0));
    store_result_free(result);
    assert_int_equal(store_run(s, doubled, (const char *const[]){"21"}, &result), STORE_OK);
    assert_string_equal(store_result_value(result, 0, 0), "42");
    assert_int_equal(store_result_length(result, 0, 0), 2);
    assert_int_equal(store_last_error(s)->status, STORE_OK);
    store_result_free(result);
    store_close(s);
}

/* ---- transactions left open ------------------------------------------------------ */

static void a_transaction_left_open_is_rolled_back_before_the_next_run(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    long long before = scalar("SELECT count(*) FROM notes");
    /* A BEGIN outlives the batch's syncs: the insert stays uncommitted and
     * the next run rolls it back before it runs. */
    store_batch_item opened[] = {
        {.statement = begin_block},
        {.statement = note_insert, .params = (const char *const[]){"left open"}},
    };
    assert_int_equal(store_batch(s, opened, 2), STORE_OK);
    store_result_free(opened[0].result);
    store_result_free(opened[1].result);
    assert_int_equal(run_number(s, assigned_xid, NULL), 0);
    assert_int_equal(scalar("SELECT count(*) FROM notes"), before);

    /* A failed transaction (INERROR) is rolled back the same way. */
    store_batch_item failed[] = {
        {.statement = begin_block},
        {.statement = divide, .params = (const char *const[]){"0"}},
    };
    assert_int_equal(store_batch(s, failed, 2), STORE_ERROR);
    assert_string_equal(store_last_error(s)->sqlstate, "22012");
    store_result_free(failed[0].result);
    assert_int_equal(run_number(s, doubled, (const char *const[]){"4"}), 8);

    /* A BEGIN alone is rolled back too: store_run never continues a
     * caller's transaction (store_transaction is the way to have one). */
    store_result *result = NULL;
    assert_int_equal(store_run(s, begin_block, NULL, &result), STORE_OK);
    store_result_free(result);
    assert_int_equal(store_run(s, note_insert, (const char *const[]){"autocommitted"}, &result), STORE_OK);
    store_result_free(result);
    assert_int_equal(scalar("SELECT count(*) FROM notes"), before + 1);
    store_close(s);
}

/* ---- batches --------------------------------------------------------------------- */

static void a_batch_answers_every_item_on_its_own(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    enum { ITEMS = 1000 };
    static store_batch_item items[ITEMS];
    static char values[ITEMS][16];
    static const char *params[ITEMS][1];
    for (int i = 0; i < ITEMS; i++) {
        /* Every 100th item divides by zero. */
        snprintf(values[i], sizeof values[i], "%d", i % 100 == 7 ? 0 : i + 1);
        params[i][0] = values[i];
        items[i] = (store_batch_item){.statement = i % 2 == 0 ? doubled : divide, .params = params[i]};
    }
    assert_int_equal(store_batch(s, items, ITEMS), STORE_ERROR);
    assert_string_equal(store_last_error(s)->sqlstate, "22012");
    for (int i = 0; i < ITEMS; i++) {
        if (i % 100 == 7) {
            assert_int_equal(items[i].status, STORE_ERROR);
            assert_null(items[i].result);
            continue;
        }
        if (items[i].status != STORE_OK)
            fail_msg("item %d: %d", i, items[i].status);
        long long expected = i % 2 == 0 ? 2LL * (i + 1) : 100 / (i + 1);
        assert_int_equal(atoll(store_result_value(items[i].result, 0, 0)), expected);
        store_result_free(items[i].result);
    }
    /* The connection is back out of pipeline mode and usable. */
    assert_int_equal(run_number(s, doubled, (const char *const[]){"5"}), 10);
    store_close(s);
}

static void a_failing_insert_in_a_batch_keeps_the_others(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    long long before = scalar("SELECT count(*) FROM notes");
    store_batch_item items[] = {
        {.statement = note_insert, .params = (const char *const[]){"batch one"}},
        {.statement = note_insert, .params = (const char *const[]){"batch one"}}, /* duplicate */
        {.statement = note_insert, .params = (const char *const[]){"batch two"}},
        {.statement = 4242, .params = NULL}, /* not registered */
        {.statement = note_insert, .params = (const char *const[]){"batch three"}},
    };
    assert_int_equal(store_batch(s, items, 5), STORE_CONFLICT);
    assert_int_equal(items[0].status, STORE_OK);
    assert_int_equal(items[1].status, STORE_CONFLICT);
    assert_int_equal(items[2].status, STORE_OK);
    assert_int_equal(items[3].status, STORE_ERROR);
    assert_int_equal(items[4].status, STORE_OK);
    for (int i = 0; i < 5; i++)
        store_result_free(items[i].result);
    assert_int_equal(scalar("SELECT count(*) FROM notes"), before + 3);
    store_close(s);
}

/* A batch item outside BEGIN is its own transaction, committed at its
 * sync after its rows: a deferred constraint failing there fails that item
 * (nothing of it stays), never reported as stored; the others stand. */
static void a_batch_item_whose_commit_fails_is_not_stored(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    long long before = scalar("SELECT count(*) FROM deferred_notes");
    store_batch_item items[] = {
        {.statement = deferred_insert, .params = (const char *const[]){"batch commit"}},
        {.statement = deferred_insert, .params = (const char *const[]){"batch commit"}}, /* fails at its sync */
        {.statement = deferred_insert, .params = (const char *const[]){"batch commit after"}},
    };
    assert_int_equal(store_batch(s, items, 3), STORE_CONFLICT);
    assert_int_equal(items[0].status, STORE_OK);
    assert_int_equal(items[1].status, STORE_CONFLICT);
    assert_null(items[1].result);
    assert_int_equal(items[2].status, STORE_OK);
    assert_string_equal(store_last_error(s)->constraint, "deferred_notes_text_key");
    for (int i = 0; i < 3; i++)
        store_result_free(items[i].result);
    assert_true(store_connected(s));
    assert_int_equal(scalar("SELECT count(*) FROM deferred_notes"), before + 2);
    /* The table as it was, for the tests that count it. */
    assert_int_equal(scalar("WITH gone AS (DELETE FROM deferred_notes WHERE text LIKE 'batch commit%' RETURNING 1)"
                            " SELECT count(*) FROM gone"),
                     2);
    store_close(s);
}

typedef struct batch_then {
    store_status outcome;
} batch_then;

static store_status insert_batch_then(store *s, void *data)
{
    batch_then *then = data;
    store_batch_item items[] = {
        {.statement = note_insert, .params = (const char *const[]){"in transaction one"}},
        {.statement = note_insert, .params = (const char *const[]){"in transaction two"}},
    };
    store_status status = store_batch(s, items, 2);
    store_result_free(items[0].result);
    store_result_free(items[1].result);
    return status != STORE_OK ? status : then->outcome;
}

static void a_batch_inside_a_transaction_belongs_to_it(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    long long before = scalar("SELECT count(*) FROM notes");
    batch_then then = {STORE_NOT_FOUND};
    assert_int_equal(store_transaction(s, STORE_READ_COMMITTED, insert_batch_then, &then), STORE_NOT_FOUND);
    assert_int_equal(scalar("SELECT count(*) FROM notes"), before);
    then.outcome = STORE_OK;
    assert_int_equal(store_transaction(s, STORE_READ_COMMITTED, insert_batch_then, &then), STORE_OK);
    assert_int_equal(scalar("SELECT count(*) FROM notes"), before + 2);
    store_close(s);
}

/* ---- transactions: retries ---------------------------------------------------------- */

typedef struct racer {
    store *store;
    pthread_barrier_t *barrier;
    int id;
    int attempts;
    store_status status;
} racer;

/* Write skew: each reads the sum of both counters and writes it into its
 * own. Serially that is impossible to interleave; SERIALIZABLE lets one
 * of two overlapping attempts fail with 40001. */
static store_status write_skew(store *s, void *data)
{
    racer *r = data;
    r->attempts++;
    store_result *result = NULL;
    store_status status = store_run(s, counter_sum, NULL, &result);
    if (status != STORE_OK)
        return status;
    char sum[32], id[16];
    snprintf(sum, sizeof sum, "%lld", atoll(store_result_value(result, 0, 0)) + 1);
    store_result_free(result);
    if (r->attempts == 1)
        pthread_barrier_wait(r->barrier); /* both have read before either writes */
    snprintf(id, sizeof id, "%d", r->id);
    status = store_run(s, counter_set, (const char *const[]){id, sum}, &result);
    store_result_free(result);
    return status;
}

/* Each locks its own row, then the other's: a deadlock, which PostgreSQL
 * breaks by failing one with 40P01. */
static store_status cross_updates(store *s, void *data)
{
    racer *r = data;
    r->attempts++;
    char mine[16], other[16];
    snprintf(mine, sizeof mine, "%d", r->id);
    snprintf(other, sizeof other, "%d", 3 - r->id);
    store_result *result = NULL;
    store_status status = store_run(s, counter_add, (const char *const[]){mine}, &result);
    store_result_free(result);
    if (status != STORE_OK)
        return status;
    if (r->attempts == 1)
        pthread_barrier_wait(r->barrier);
    status = store_run(s, counter_add, (const char *const[]){other}, &result);
    store_result_free(result);
    return status;
}

typedef struct race_spec {
    racer *racer;
    store_isolation isolation;
    store_transaction_fn body;
} race_spec;

static void *race(void *argument)
{
    race_spec *spec = argument;
    spec->racer->status = store_transaction(spec->racer->store, spec->isolation, spec->body, spec->racer);
    return NULL;
}

static void run_race(store_isolation isolation, store_transaction_fn body, racer racers[2])
{
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t threads[2];
    race_spec specs[2];
    for (int i = 0; i < 2; i++) {
        racers[i] = (racer){.store = open_store(0, 5000), .barrier = &barrier, .id = i + 1, .status = STORE_ERROR};
        specs[i] = (race_spec){&racers[i], isolation, body};
        assert_int_equal(pthread_create(&threads[i], NULL, race, &specs[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++)
        store_close(racers[i].store);
}

static void a_serialization_failure_is_retried(void **state)
{
    (void)state;
    test_pg_exec(conninfo, "UPDATE counters SET value = 0");
    racer racers[2];
    run_race(STORE_SERIALIZABLE, write_skew, racers);
    assert_int_equal(racers[0].status, STORE_OK);
    assert_int_equal(racers[1].status, STORE_OK);
    /* At least one attempt failed and ran again. When PostgreSQL fails the
     * victim at its write rather than at its commit, its second attempt can
     * overlap the winner's still open transaction and fail once more, so more
     * than three body runs are fine. The sum shows the outcome is a serial
     * one: one read 0 and wrote 1, the other read 1 and wrote 2. */
    assert_in_range(racers[0].attempts + racers[1].attempts, 3, 2 * STORE_TRANSACTION_ATTEMPTS);
    assert_int_equal(scalar("SELECT sum(value) FROM counters"), 3);
}

static void a_deadlock_is_retried(void **state)
{
    (void)state;
    test_pg_exec(conninfo, "UPDATE counters SET value = 0");
    racer racers[2];
    run_race(STORE_READ_COMMITTED, cross_updates, racers);
    assert_int_equal(racers[0].status, STORE_OK);
    assert_int_equal(racers[1].status, STORE_OK);
    /* At least one deadlock was retried. On a loaded machine the victim's
     * second attempt can meet the winner again, so more than three body runs
     * are fine; the sum below shows that each committed exactly once. */
    assert_in_range(racers[0].attempts + racers[1].attempts, 3, 2 * STORE_TRANSACTION_ATTEMPTS);
    assert_int_equal(scalar("SELECT sum(value) FROM counters"), 4);
}

static store_status always_conflicting(store *s, void *data)
{
    int *attempts = data;
    (*attempts)++;
    store_result *result = NULL;
    store_status status = store_run(s, note_insert, (const char *const[]){"never kept"}, &result);
    store_result_free(result);
    if (status != STORE_OK)
        return status;
    return store_run(s, forced_serialization_failure, NULL, &result);
}

static void retries_run_out_as_busy(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    int attempts = 0;
    assert_int_equal(store_transaction(s, STORE_SERIALIZABLE, always_conflicting, &attempts), STORE_BUSY);
    assert_int_equal(attempts, STORE_TRANSACTION_ATTEMPTS);
    assert_int_equal(store_last_error(s)->status, STORE_BUSY);
    assert_string_equal(store_last_error(s)->sqlstate, "40001");
    assert_int_equal(scalar("SELECT count(*) FROM notes WHERE text = 'never kept'"), 0);
    /* Alone, the statement is retried too, and ends the same way. */
    store_result *result = NULL;
    assert_int_equal(store_run(s, forced_serialization_failure, NULL, &result), STORE_BUSY);
    assert_int_equal(run_number(s, doubled, (const char *const[]){"1"}), 2);
    store_close(s);
}

static store_status nest(store *s, void *data)
{
    store_status *inner = data;
    *inner = store_transaction(s, STORE_READ_COMMITTED, nest, data);
    return STORE_OK;
}

static store_status ignore_a_failure(store *s, void *data)
{
    (void)data;
    store_result *result = NULL;
    store_run(s, divide, (const char *const[]){"0"}, &result);
    return STORE_OK;
}

static void misuse_of_transactions_is_an_error(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    store_status inner = STORE_OK;
    assert_int_equal(store_transaction(s, STORE_READ_COMMITTED, nest, &inner), STORE_OK);
    assert_int_equal(inner, STORE_ERROR);
    /* A body that swallowed a failure cannot commit: COMMIT became ROLLBACK. */
    assert_int_equal(store_transaction(s, STORE_REPEATABLE_READ, ignore_a_failure, NULL), STORE_ERROR);
    assert_int_equal(run_number(s, assigned_xid, NULL), 0);
    store_close(s);
}

/* ---- constraint violations and timeouts ------------------------------------------ */

static void violations_name_the_mapped_field(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    store_result *result = NULL;
    assert_int_equal(store_run(s, user_insert, (const char *const[]){"a@example.com", "short", "a"}, &result),
                     STORE_OK);
    store_result_free(result);
    assert_int_equal(store_run(s, user_insert, (const char *const[]){"a@example.com", "short", "b"}, &result),
                     STORE_CONFLICT);
    const store_error *error = store_last_error(s);
    assert_string_equal(error->sqlstate, "23505");
    assert_string_equal(error->constraint, "users_email_key");
    assert_string_equal(error->field, "email");
    assert_null(strchr(error->message, '\n'));

    assert_int_equal(store_run(s, user_insert, (const char *const[]){"b@example.com", "far too long", "b"}, &result),
                     STORE_INVALID);
    assert_string_equal(store_last_error(s)->field, "bio");
    assert_int_equal(store_run(s, user_insert, (const char *const[]){"c@example.com", NULL, NULL}, &result),
                     STORE_INVALID);
    assert_string_equal(store_last_error(s)->sqlstate, "23502");
    assert_string_equal(store_last_error(s)->field, "username");
    store_close(s);
}

static void a_statement_timeout_keeps_the_connection(void **state)
{
    (void)state;
    store *s = open_store(200, 2000);
    assert_int_equal(run_number(s, doubled, (const char *const[]){"1"}), 2);
    int pid = store_backend_pid(s);
    store_result *result = NULL;
    assert_int_equal(store_run(s, sleep_a_second, NULL, &result), STORE_TIMEOUT);
    assert_string_equal(store_last_error(s)->sqlstate, "57014");
    assert_true(store_connected(s));
    assert_int_equal(store_backend_pid(s), pid);
    assert_int_equal(run_number(s, doubled, (const char *const[]){"2"}), 4);
    store_close(s);
}

/* A statement alone commits at the protocol's Sync, after its rows and
 * CommandComplete have been sent: only ReadyForQuery confirms it. */
static void a_commit_that_fails_after_the_rows_is_not_success(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    store_result *result = NULL;
    assert_int_equal(store_run(s, deferred_insert, (const char *const[]){"once"}, &result), STORE_OK);
    store_result_free(result);
    result = NULL;
    assert_int_equal(store_run(s, deferred_insert, (const char *const[]){"once"}, &result), STORE_CONFLICT);
    assert_null(result);
    assert_string_equal(store_last_error(s)->constraint, "deferred_notes_text_key");
    assert_true(store_connected(s));
    assert_int_equal(scalar("SELECT count(*) FROM deferred_notes"), 1);

    /* The connection lost between the rows and ReadyForQuery: the commit's
     * fate is unknown to the node (here it never happened), so the write is
     * unavailable, never acknowledged, and not resent. */
    assert_int_equal(store_run(s, doomed_insert, (const char *const[]){"lost"}, &result), STORE_UNAVAILABLE);
    assert_null(result);
    assert_int_equal(scalar("SELECT count(*) FROM doomed"), 0);
    assert_int_equal(run_number(s, doubled, (const char *const[]){"21"}), 42);
    store_close(s);
}

/* ---- failures that pass with time ------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static void expect_command(PGconn *connection, const char *sql)
{
    PGresult *result = PQexec(connection, sql);
    if (PQresultStatus(result) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(connection));
    PQclear(result);
}

/* A connection that prepares its statements while a migration holds a
 * table they read (ALTER TABLE takes this lock) waits past its
 * statement_timeout: those statements did not prepare, for a reason that
 * passes. They must not stay missing on a connection that lives on (every
 * run of them answered 500, "prepared statement does not exist", until the
 * connection happened to be replaced): the connection fails (503) and the
 * next one prepares again. */
static PGconn *migration;

/* Whatever the test did, the lock goes: the tests after it need the table. */
static int end_migration(void **state)
{
    (void)state;
    PQfinish(migration);
    migration = NULL;
    return 0;
}

static void statements_that_could_not_prepare_for_now_are_prepared_again(void **state)
{
    (void)state;
    migration = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(migration), CONNECTION_OK);
    expect_command(migration, "BEGIN");
    expect_command(migration, "LOCK TABLE notes IN ACCESS EXCLUSIVE MODE");

    store *s = open_store(300, 5000);
    store_result *result = NULL;
    assert_int_equal(store_run(s, note_count, NULL, &result), STORE_UNAVAILABLE);
    assert_null(result);
    assert_non_null(strstr(store_last_error(s)->message, "did not prepare"));

    expect_command(migration, "COMMIT");
    end_migration(NULL);
    assert_true(run_number(s, note_count, NULL) >= 0);
    assert_true(run_number(s, prepared_names, NULL) == store_registry_find(registry, "broken"));
    store_close(s);
}

static int allow_connections(void **state)
{
    (void)state;
    test_pg_exec(TEST_ADMIN_DATABASE_URL(), "ALTER DATABASE " SCRATCH " ALLOW_CONNECTIONS true");
    return 0;
}

/* A store whose attempt was refused waits STORE_RECONNECT_INTERVAL_MS
 * before the next, so that an outage does not turn every request into a
 * connect; once another store of the process (a worker's, the monitor's)
 * has reached the server, the wait has no reason left. The server refuses
 * this database's connections for a moment, which is what a restart looks
 * like to a client, without the restart. */
static void a_refused_store_tries_again_once_another_reached_the_server(void **state)
{
    (void)state;
    store *waiting = open_store(1500, 2000);
    assert_int_equal(run_number(waiting, doubled, (const char *const[]){"1"}), 2);
    test_pg_exec(TEST_ADMIN_DATABASE_URL(), "ALTER DATABASE " SCRATCH " ALLOW_CONNECTIONS false");
    kill_backend(store_backend_pid(waiting));
    /* Found dead before sending, then refused. */
    uint64_t failed_at = now_ms();
    store_result *result = NULL;
    assert_int_equal(store_run(waiting, doubled, (const char *const[]){"2"}, &result), STORE_UNAVAILABLE);
    assert_null(result);
    test_pg_exec(TEST_ADMIN_DATABASE_URL(), "ALTER DATABASE " SCRATCH " ALLOW_CONNECTIONS true");
    if (now_ms() - failed_at + 50 < STORE_RECONNECT_INTERVAL_MS)
        assert_int_equal(store_run(waiting, doubled, (const char *const[]){"2"}, &result),
                         STORE_UNAVAILABLE); /* nobody has said it is back */

    store *other = open_store(1500, 2000);
    assert_int_equal(run_number(other, doubled, (const char *const[]){"3"}), 6);
    uint64_t since_failure = now_ms() - failed_at;
    assert_int_equal(run_number(waiting, doubled, (const char *const[]){"4"}), 8);
    printf("the refused store connected again %llu ms after its failed attempt (its interval: %d ms)\n",
           (unsigned long long)since_failure, STORE_RECONNECT_INTERVAL_MS);
    store_close(other);
    store_close(waiting);
}

/* ---- PostgreSQL stopped and started again --------------------------------------- */

static void a_stopped_server_is_unavailable_then_recovered_from(void **state)
{
    (void)state;
    store *s = open_store(1500, 2000);
    assert_int_equal(run_number(s, doubled, (const char *const[]){"3"}), 6);

    test_pg_stop();
    store_result *result = NULL;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(store_run(s, doubled, (const char *const[]){"3"}, &result), STORE_UNAVAILABLE);
        assert_null(result);
    }
    store_batch_item item = {.statement = doubled, .params = (const char *const[]){"3"}};
    assert_int_equal(store_batch(s, &item, 1), STORE_UNAVAILABLE);
    assert_int_equal(item.status, STORE_UNAVAILABLE);
    assert_int_equal(store_last_error(s)->status, STORE_UNAVAILABLE);

    test_pg_start();
    store_status status = STORE_UNAVAILABLE;
    for (int i = 0; i < 50 * test_env_time_scale() && status != STORE_OK; i++) {
        usleep(100 * 1000);
        status = store_run(s, prepared_names, NULL, &result);
    }
    assert_int_equal(status, STORE_OK);
    assert_int_equal(atoll(store_result_value(result, 0, 0)), store_registry_find(registry, "broken"));
    store_result_free(result);
    assert_true(store_reconnect_count(s) >= 1);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(statements_are_prepared_on_connect_and_after_a_kill),
        cmocka_unit_test(results_carry_rows_nulls_and_counts),
        cmocka_unit_test(a_transaction_left_open_is_rolled_back_before_the_next_run),
        cmocka_unit_test(a_batch_answers_every_item_on_its_own),
        cmocka_unit_test(a_failing_insert_in_a_batch_keeps_the_others),
        cmocka_unit_test(a_batch_item_whose_commit_fails_is_not_stored),
        cmocka_unit_test(a_batch_inside_a_transaction_belongs_to_it),
        cmocka_unit_test(a_serialization_failure_is_retried),
        cmocka_unit_test(a_deadlock_is_retried),
        cmocka_unit_test(retries_run_out_as_busy),
        cmocka_unit_test(misuse_of_transactions_is_an_error),
        cmocka_unit_test(violations_name_the_mapped_field),
        cmocka_unit_test(a_statement_timeout_keeps_the_connection),
        cmocka_unit_test(a_commit_that_fails_after_the_rows_is_not_success),
        cmocka_unit_test_teardown(statements_that_could_not_prepare_for_now_are_prepared_again, end_migration),
        cmocka_unit_test_teardown(a_refused_store_tries_again_once_another_reached_the_server, allow_connections),
        /* Last: it takes every connection down. */
        cmocka_unit_test_teardown(a_stopped_server_is_unavailable_then_recovered_from, test_pg_restart),
    };
    return cmocka_run_group_tests_name("integration.store.run", tests, set_up, tear_down);
}
