/* examples/hello/src/main.c: a service skeleton on libshoal.
 *
 *   GET /hello/:name   {"message": "<greeting>, <name>!"}
 *
 * counted on /metrics by metrics of its own (hello_greetings_total,
 * hello_name_bytes), plus everything shoal_main gives every node:
 * /healthz, /readyz and /metrics on the admin port, request ids, security
 * headers, CORS, rate limits, sessions, idempotency keys, the settings of
 * the library beside the service's own (--help), `migrate`, and the drain
 * on SIGTERM.
 *
 * Its schema is its own: migrations/NNNN_name.sql, embedded into the
 * binary at build time (shoal_add_migrations in CMakeLists.txt; with
 * pkg-config, README.md) and applied by `hello migrate` and at start, as
 * component "hello" (shoal_migrations), apart from any other service's. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <shoal/metrics.h>
#include <shoal/shoal.h>

/* The service's settings: one table, one struct. */
typedef struct hello_settings {
    const char *greeting;
} hello_settings;

static const shoal_setting hello_setting_table[] = {
    {.flag = "greeting",
     .variable = "HELLO_GREETING",
     .type = SHOAL_SETTING_STRING,
     .offset = offsetof(hello_settings, greeting),
     .default_value = "Hello",
     .help = "the word GET /hello/:name greets with"},
};

/* What one setting's entry cannot say: checked with the others, so that a
 * bad value exits 2 at start with a message that names the flag. */
static int validate(void *values, char *error, size_t error_size)
{
    const hello_settings *settings = values;
    if (settings->greeting[0] == '\0') {
        snprintf(error, error_size, "--greeting (HELLO_GREETING): must not be empty");
        return -1;
    }
    return 0;
}

static const shoal_settings hello_settings_table =
    SHOAL_SETTINGS("hello", hello_settings, hello_setting_table, validate);
static const shoal_settings *const hello_tables[] = {&hello_settings_table, NULL};

/* migrations/NNNN_name.sql, made into C at build time. */
extern const shoal_migrations hello_migrations;
static const shoal_migrations *const hello_migration_sets[] = {&hello_migrations, NULL};

/* Its metrics, registered at setup. A label's values are a fixed list: the
 * name in the path is anyone's to choose, so it is never a label itself,
 * only which of the listed audiences it falls in. */
enum { AUDIENCE_WORLD, AUDIENCE_SOMEONE };
static const char *const audiences[] = {[AUDIENCE_WORLD] = "world", [AUDIENCE_SOMEONE] = "someone", NULL};
static const shoal_metric_spec greetings_spec = {
    .name = "hello_greetings_total",
    .help = "Greetings answered, by audience: world (GET /hello/world) or someone (any other name).",
    .label = "audience",
    .values = audiences,
};
static const shoal_metric_spec name_bytes_spec = {
    .name = "hello_name_bytes",
    .help = "Length of the names greeted, in bytes.",
};
static const double name_bytes_buckets[] = {4, 8, 16, 32, 64};

/* What the route needs, found once at setup: no look-up per request. */
typedef struct hello_state {
    const hello_settings *settings;
    const shoal_counter *greetings;
    const shoal_histogram *name_bytes;
} hello_state;

static int greet(shoal_ctx *ctx)
{
    const hello_state *state = shoal_route_data(ctx);
    const char *name = shoal_param(ctx, "name");
    /* The request's arena: freed with the request, never by the handler. */
    const char *message = shoal_arena_printf(shoal_ctx_arena(ctx), "%s, %s!", state->settings->greeting, name);
    if (message == NULL)
        return -1; /* 500 */
    /* The worker's own cells: no lock, no allocation. */
    shoal_count(ctx, state->greetings, strcmp(name, "world") == 0 ? AUDIENCE_WORLD : AUDIENCE_SOMEONE, 1);
    shoal_observe(ctx, state->name_bytes, 0, (double)strlen(name));
    return shoal_json(ctx, 200, json_pack("{s:s}", "message", message));
}

static int setup(shoal_app *app, void *data)
{
    hello_state *state = data;
    state->settings = shoal_app_settings(app, &hello_settings_table);
    /* A bad registration fails the setup with its reason (the node exits). */
    state->greetings = shoal_app_counter(app, &greetings_spec);
    state->name_bytes = shoal_app_histogram(app, &name_bytes_spec, name_bytes_buckets,
                                            sizeof name_bytes_buckets / sizeof name_bytes_buckets[0]);
    shoal_blueprint *bp = shoal_blueprint_new(app, "hello", "/hello");
    if (state->settings == NULL || state->greetings == NULL || state->name_bytes == NULL || bp == NULL)
        return -1;
    return shoal_route_with(bp, "GET", "/:name", greet, state);
}

int main(int argc, char **argv)
{
    static hello_state state;
    static const shoal_service service = {
        .name = "hello",
        .version = "0.1.0",
        .setup = setup,
        .data = &state,
        .settings = hello_tables,
        .migrations = hello_migration_sets,
    };
    return shoal_main(&service, argc, argv);
}
