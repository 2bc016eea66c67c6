#include <shoal/shoal.h>

static int hello(shoal_ctx *ctx)
{
    return shoal_json(ctx, 200, json_pack("{s:s}", "hello", shoal_param(ctx, "name")));
}

static int setup(shoal_app *app, void *data)
{
    (void)data;
    shoal_blueprint *bp = shoal_blueprint_new(app, "hello", "/hello");
    return bp != NULL && shoal_route(bp, "GET", "/:name", hello) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const shoal_service service = {.name = "hello", .version = "1.0.0", .setup = setup};
    return shoal_main(&service, argc, argv);
}
