/* examples/hello/src/main.c: a service skeleton on libshoal.
 *
 *   GET /hello/:name   {"message": "<greeting>, <name>!"}
 *
 * plus everything shoal_main gives every node: /healthz, /readyz and
 * /metrics on the admin port, request ids, security headers, CORS, rate
 * limits, sessions, idempotency keys, the settings of the library beside
 * the service's own (--help), `migrate`, and the drain on SIGTERM.
 *
 * Its schema is its own: migrations/NNNN_name.sql, embedded into the
 * binary at build time (shoal_add_migrations in CMakeLists.txt; with
 * pkg-config, README.md) and applied by `hello migrate` and at start, as
 * component "hello" (shoal_migrations), apart from any other service's. */
#include <stddef.h>
#include <stdio.h>

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

static int greet(shoal_ctx *ctx)
{
    const hello_settings *settings = shoal_route_data(ctx);
    /* The request's arena: freed with the request, never by the handler. */
    const char *message =
        shoal_arena_printf(shoal_ctx_arena(ctx), "%s, %s!", settings->greeting, shoal_param(ctx, "name"));
    if (message == NULL)
        return -1; /* 500 */
    return shoal_json(ctx, 200, json_pack("{s:s}", "message", message));
}

static int setup(shoal_app *app, void *data)
{
    (void)data;
    /* Read once here, handed to the route: no look-up per request. */
    const hello_settings *settings = shoal_app_settings(app, &hello_settings_table);
    shoal_blueprint *bp = shoal_blueprint_new(app, "hello", "/hello");
    if (settings == NULL || bp == NULL)
        return -1;
    return shoal_route_with(bp, "GET", "/:name", greet, (void *)settings);
}

int main(int argc, char **argv)
{
    static const shoal_service service = {
        .name = "hello",
        .version = "0.1.0",
        .setup = setup,
        .settings = hello_tables,
        .migrations = hello_migration_sets,
        /* A counter of its own, a Dockerfile and a compose file come with
         * later releases of this skeleton (issue 15). */
    };
    return shoal_main(&service, argc, argv);
}
