/* node/services/techempower/bench.c: the TechEmpower routes. */
#include "bench.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <shoal/log.h>
#include <shoal/random.h>

#include "fortunes.h"
#include "json_text.h"
#include "query_count.h"
#include "sql/fortune.h"
#include "sql/world.h"

#define WORLD_ROWS 10000

/* /cached-queries keeps each world's random number in the cache family
 * "world", keyed by id. /updates invalidates the family after every
 * commit, so the TTL only bounds how long a value lives when that
 * invalidation is lost (Redis down at that moment). */
#define CACHED_WORLD_FAMILY "world"
#define CACHED_WORLD_TTL_MS 60000
/* "10000" and its NUL. */
#define WORLD_ID_TEXT_SIZE 6

/* Filled at setup, read-only while serving, so every worker shares it
 * without a lock. Handlers reach it as their route's data. */
typedef struct bench_state {
    store_world_statements world;
    store_fortune_statements fortune;
    shoal_worker_slot random_slot;
} bench_state;

static const char hello[] = "Hello, World!";

static int answer_internal_error(shoal_ctx *ctx)
{
    return shoal_fail(ctx, &shoal_code_internal);
}

/* A failure the store reported goes through the one place that maps tier
 * failures (503 with Retry-After for outages). A world row that does not
 * exist, or a failure of ours (memory), is a 500: the table is fixed data. */
static int answer_store_failure(shoal_ctx *ctx, store *s, store_status status)
{
    if (status != STORE_NOT_FOUND && store_last_error(s)->status == status)
        return shoal_error_from_store(ctx, s);
    shoal_log(SHOAL_LOG_ERROR, "bench", "%s: store status %d", shoal_path(ctx), (int)status);
    return answer_internal_error(ctx);
}

static int answer_text(shoal_ctx *ctx, const char *content_type, const char *body, size_t length)
{
    if (body == NULL)
        return answer_internal_error(ctx);
    return shoal_text(ctx, 200, content_type, body, length);
}

static int get_json(shoal_ctx *ctx)
{
    size_t length = 0;
    const char *body = bench_json_message(shoal_ctx_arena(ctx), hello, &length);
    return answer_text(ctx, "application/json", body, length);
}

static int get_plaintext(shoal_ctx *ctx)
{
    return shoal_text(ctx, 200, "text/plain", hello, sizeof hello - 1);
}

/* The worker's connection and generator, or NULL after answering 500. */
static shoal_random *worker_random(shoal_ctx *ctx, const bench_state *bench, store **s)
{
    *s = shoal_store(ctx);
    shoal_random *random = shoal_worker_get(ctx, bench->random_slot);
    if (*s == NULL || random == NULL) {
        answer_internal_error(ctx);
        return NULL;
    }
    return random;
}

static int get_db(shoal_ctx *ctx)
{
    const bench_state *bench = shoal_route_data(ctx);
    store *s = NULL;
    shoal_random *random = worker_random(ctx, bench, &s);
    if (random == NULL)
        return 0;
    store_world world;
    store_status status = store_world_read(s, &bench->world, shoal_random_between(random, 1, WORLD_ROWS), &world);
    if (status != STORE_OK)
        return answer_store_failure(ctx, s, status);
    size_t length = 0;
    const char *body = bench_json_world(shoal_ctx_arena(ctx), &world, &length);
    return answer_text(ctx, "application/json", body, length);
}

/* Reads `queries` random rows into worlds; 0, or -1 after answering. */
static int read_random_worlds(shoal_ctx *ctx, const bench_state *bench, store *s, shoal_random *random,
                              store_world *worlds, size_t count)
{
    int ids[BENCH_QUERY_COUNT_MAX];
    for (size_t i = 0; i < count; i++)
        ids[i] = shoal_random_between(random, 1, WORLD_ROWS);
    store_status status = store_world_read_many(s, &bench->world, ids, count, worlds);
    if (status != STORE_OK) {
        answer_store_failure(ctx, s, status);
        return -1;
    }
    return 0;
}

static int answer_worlds(shoal_ctx *ctx, const store_world *worlds, size_t count)
{
    size_t length = 0;
    const char *body = bench_json_worlds(shoal_ctx_arena(ctx), worlds, count, &length);
    return answer_text(ctx, "application/json", body, length);
}

static int get_queries(shoal_ctx *ctx)
{
    const bench_state *bench = shoal_route_data(ctx);
    size_t count = (size_t)bench_query_count(shoal_query(ctx, "queries"));
    store *s = NULL;
    shoal_random *random = worker_random(ctx, bench, &s);
    if (random == NULL)
        return 0;
    store_world worlds[BENCH_QUERY_COUNT_MAX];
    if (read_random_worlds(ctx, bench, s, random, worlds, count) != 0)
        return 0;
    return answer_worlds(ctx, worlds, count);
}

static int get_updates(shoal_ctx *ctx)
{
    const bench_state *bench = shoal_route_data(ctx);
    size_t count = (size_t)bench_query_count(shoal_query(ctx, "queries"));
    store *s = NULL;
    shoal_random *random = worker_random(ctx, bench, &s);
    if (random == NULL)
        return 0;
    store_world worlds[BENCH_QUERY_COUNT_MAX];
    if (read_random_worlds(ctx, bench, s, random, worlds, count) != 0)
        return 0;
    /* A new number that differs from the old one, so that every update
     * really changes its row (the benchmark's verifier counts them). */
    for (size_t i = 0; i < count; i++) {
        int old = worlds[i].random_number;
        do
            worlds[i].random_number = shoal_random_between(random, 1, WORLD_ROWS);
        while (worlds[i].random_number == old);
    }
    /* Sorts worlds by id: the answer lists them in the order written. */
    store_status status = store_world_update_many(s, &bench->world, worlds, count);
    if (status != STORE_OK)
        return answer_store_failure(ctx, s, status);
    /* The rows are committed; cached copies of any world are now stale on
     * every node. A failure is logged by the cache and bounded by the TTL:
     * the write itself succeeded, so the answer stands. */
    shoal_cache_invalidate(ctx, CACHED_WORLD_FAMILY);
    return answer_worlds(ctx, worlds, count);
}

/* An id of 1..10000 as decimal text; out has WORLD_ID_TEXT_SIZE bytes. */
static void format_world_id(int id, char *out)
{
    char reversed[WORLD_ID_TEXT_SIZE];
    size_t length = 0;
    do {
        reversed[length++] = (char)('0' + id % 10);
        id /= 10;
    } while (id > 0 && length < WORLD_ID_TEXT_SIZE - 1);
    for (size_t i = 0; i < length; i++)
        out[i] = reversed[length - 1 - i];
    out[length] = '\0';
}

/* "1".."10000" to the id; anything else is no world. */
static bool parse_world_id(const char *text, int *id)
{
    int value = 0;
    size_t digits = 0;
    for (; digits < WORLD_ID_TEXT_SIZE && text[digits] >= '0' && text[digits] <= '9'; digits++)
        value = value * 10 + (text[digits] - '0');
    if (digits == 0 || text[digits] != '\0' || value < 1 || value > WORLD_ROWS)
        return false;
    *id = value;
    return true;
}

/* A cached value is the world's random number as decimal text: the id is
 * the key already, and text reads well in redis-cli. */
static bool parse_cached_number(const shoal_cached_value *value, int *number)
{
    const char *bytes = value->bytes;
    if (bytes == NULL || value->length == 0 || value->length > 9)
        return false;
    int result = 0;
    for (size_t i = 0; i < value->length; i++) {
        if (bytes[i] < '0' || bytes[i] > '9')
            return false;
        result = result * 10 + (bytes[i] - '0');
    }
    *number = result;
    return true;
}

/* The cache's fill on a miss: the row from PostgreSQL, by its own
 * statement. A store_status other than STORE_OK comes back out of
 * shoal_cached_many as its result. */
static int fill_world(shoal_ctx *ctx, const char *key, void *data, void **value, size_t *length)
{
    const bench_state *bench = data;
    int id = 0;
    if (!parse_world_id(key, &id))
        return STORE_NOT_FOUND;
    store *s = shoal_store(ctx);
    if (s == NULL)
        return STORE_UNAVAILABLE;
    store_world world;
    store_status status = store_world_read(s, &bench->world, id, &world);
    if (status != STORE_OK)
        return (int)status;
    char *text = shoal_arena_alloc(shoal_ctx_arena(ctx), 16);
    if (text == NULL)
        return STORE_ERROR;
    int written = snprintf(text, 16, "%d", world.random_number);
    if (written <= 0 || written >= 16)
        return STORE_ERROR;
    *value = text;
    *length = (size_t)written;
    return 0;
}

/* count random worlds through the node's L1, then Redis (one round trip
 * for all the L1 lacks), then PostgreSQL for what neither has. */
static int get_cached_queries(shoal_ctx *ctx)
{
    const bench_state *bench = shoal_route_data(ctx);
    size_t count = (size_t)bench_query_count(shoal_query(ctx, "count"));
    shoal_random *random = shoal_worker_get(ctx, bench->random_slot);
    char *texts = shoal_arena_alloc(shoal_ctx_arena(ctx), count * WORLD_ID_TEXT_SIZE);
    if (random == NULL || texts == NULL)
        return answer_internal_error(ctx);
    const char *keys[BENCH_QUERY_COUNT_MAX];
    store_world worlds[BENCH_QUERY_COUNT_MAX];
    for (size_t i = 0; i < count; i++) {
        worlds[i].id = shoal_random_between(random, 1, WORLD_ROWS);
        char *key = &texts[i * WORLD_ID_TEXT_SIZE];
        format_world_id(worlds[i].id, key);
        keys[i] = key;
    }
    shoal_cached_value values[BENCH_QUERY_COUNT_MAX];
    int rc = shoal_cached_many(ctx, CACHED_WORLD_FAMILY, keys, count, CACHED_WORLD_TTL_MS, fill_world,
                               (void *)bench, values);
    if (rc < 0)
        return answer_internal_error(ctx);
    if (rc > 0) {
        store *s = shoal_store(ctx);
        if (s == NULL)
            return answer_internal_error(ctx);
        return answer_store_failure(ctx, s, (store_status)rc);
    }
    for (size_t i = 0; i < count; i++) {
        if (!parse_cached_number(&values[i], &worlds[i].random_number)) {
            shoal_log(SHOAL_LOG_ERROR, "bench", "world %d: the cached value is not a number", worlds[i].id);
            return answer_internal_error(ctx);
        }
    }
    return answer_worlds(ctx, worlds, count);
}

static void *allocate_in_arena(void *context, size_t size)
{
    return shoal_arena_alloc(context, size);
}

static int get_fortunes(shoal_ctx *ctx)
{
    const bench_state *bench = shoal_route_data(ctx);
    store *s = shoal_store(ctx);
    if (s == NULL)
        return answer_internal_error(ctx);
    store_fortune *fortunes = NULL;
    size_t count = 0;
    /* One spare slot for the fortune added at request time. */
    store_status status =
        store_fortune_all(s, &bench->fortune, allocate_in_arena, shoal_ctx_arena(ctx), 1, &fortunes, &count);
    if (status != STORE_OK)
        return answer_store_failure(ctx, s, status);
    count = bench_fortunes_prepare(fortunes, count);
    size_t length = 0;
    const char *page = bench_fortunes_html(shoal_ctx_arena(ctx), fortunes, count, &length);
    return answer_text(ctx, "text/html; charset=utf-8", page, length);
}

static void free_random(void *generator)
{
    free(generator);
}

/* Registers everything for state; 0 or -1. */
static int register_all(shoal_app *app, bench_state *bench)
{
    struct store_registry *statements = shoal_app_statements(app);
    if (statements == NULL || store_world_register(statements, &bench->world) != 0 ||
        store_fortune_register(statements, &bench->fortune) != 0)
        return shoal_app_fail(app, "cannot register its SQL statements: out of memory, or a name taken twice");
    bench->random_slot = shoal_app_worker_slot(app, shoal_random_create, free_random, NULL);
    if (bench->random_slot < 0)
        return -1;
    shoal_blueprint *routes = shoal_blueprint_new(app, "techempower", "");
    if (routes == NULL)
        return -1;
    if (shoal_route(routes, "GET", "/json", get_json) != 0 ||
        shoal_route(routes, "GET", "/plaintext", get_plaintext) != 0 ||
        shoal_route_with(routes, "GET", "/db", get_db, bench) != 0 ||
        shoal_route_with(routes, "GET", "/queries", get_queries, bench) != 0 ||
        shoal_route_with(routes, "GET", "/updates", get_updates, bench) != 0 ||
        shoal_route_with(routes, "GET", "/fortunes", get_fortunes, bench) != 0 ||
        shoal_route_with(routes, "GET", "/cached-queries", get_cached_queries, bench) != 0)
        return -1;
    return 0;
}

static const shoal_setting techempower_table[] = {
    {"bench", "SHOAL_BENCH", SHOAL_SETTING_BOOL, offsetof(shoal_techempower_settings_values, bench), "true", 0, 0,
     "serve the TechEmpower benchmark routes (/json, /plaintext, /db, /queries, /updates, /fortunes)", NULL},
};
const shoal_settings shoal_techempower_settings =
    SHOAL_SETTINGS("techempower", shoal_techempower_settings_values, techempower_table, NULL);

/* The instance: the app frees it (destroy) from create on, so the routes
 * that keep a pointer to it never outlive it, whatever fails in init. */
static void *create(shoal_app *app, void *data)
{
    (void)app;
    (void)data;
    return calloc(1, sizeof(bench_state));
}

static int init(shoal_app *app, void *instance)
{
    const shoal_techempower_settings_values *settings = shoal_app_settings(app, &shoal_techempower_settings);
    if (settings != NULL && !settings->bench)
        return 0;
    return register_all(app, instance);
}

const shoal_extension shoal_bench_extension = {
    .name = "techempower",
    .init = init,
    .create = create,
    .destroy = free,
};
