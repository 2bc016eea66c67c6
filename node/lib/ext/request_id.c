/* node/lib/ext/request_id.c */
#include <shoal/ext/request_id.h>

#include <shoal/random.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../context.h"

#define MAX_REQUEST_ID_LENGTH 128

bool shoal_request_id_valid(const char *text)
{
    size_t length = 0;
    for (const char *p = text; *p != '\0'; p++, length++) {
        char c = *p;
        bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       strchr("._:@/+=-", c) != NULL;
        if (!allowed || length >= MAX_REQUEST_ID_LENGTH)
            return false;
    }
    return length > 0;
}

/* "00" to "ff": a byte's two hex digits at twice its value. */
#define HEX_ROW(high)                                                                                       \
    high "0" high "1" high "2" high "3" high "4" high "5" high "6" high "7" high "8" high "9" high "a" high \
         "b" high "c" high "d" high "e" high "f"
static const char hex_pairs[] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4") HEX_ROW("5")
    HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b") HEX_ROW("c") HEX_ROW("d")
        HEX_ROW("e") HEX_ROW("f");

/* Ids need to be unique, not secret: a per-worker generator (node/lib/include/shoal/random.h)
 * seeded once from the OS costs no system call per request. The hook's data
 * is the worker slot of the generator, as an integer. The id is written
 * straight into the request's arena, two digits a byte, the high byte first. */
static shoal_flow adopt_or_generate(shoal_ctx *ctx, void *data)
{
    shoal_worker_slot generator_slot = (shoal_worker_slot)(intptr_t)data;
    const char *given = shoal_header(ctx, "X-Request-ID");
    if (given != NULL && shoal_request_id_valid(given)) {
        shoal_set_request_id(ctx, given);
        return SHOAL_NEXT;
    }
    shoal_random *generator = shoal_worker_get(ctx, generator_slot);
    if (generator == NULL)
        return SHOAL_NEXT;
    char *id = shoal_arena_alloc(shoal_ctx_arena(ctx), 33);
    if (id == NULL)
        return SHOAL_NEXT;
    for (int half = 0; half < 2; half++) {
        uint64_t bits = shoal_random_next(generator);
        for (int i = 0; i < 8; i++)
            memcpy(id + half * 16 + 2 * i, hex_pairs + 2 * ((bits >> (56 - 8 * i)) & 0xff), 2);
    }
    id[32] = '\0';
    shoal_ctx_set_request_id_kept(ctx, id);
    return SHOAL_NEXT;
}

static void echo(shoal_ctx *ctx, void *data)
{
    (void)data;
    /* The id is in the request's arena (shoal_set_request_id copies it). */
    const char *id = shoal_request_id(ctx);
    if (id != NULL)
        shoal_ctx_set_header_kept(ctx, "X-Request-ID", id);
}

static int init(shoal_app *app, void *data)
{
    (void)data;
    shoal_worker_slot generator_slot = shoal_app_worker_slot(app, shoal_random_create, free, NULL);
    if (generator_slot < 0)
        return -1;
    shoal_blueprint *root = shoal_app_root(app);
    if (shoal_before(root, adopt_or_generate, (void *)(intptr_t)generator_slot) != 0 || shoal_after(root, echo, NULL) != 0)
        return -1;
    return 0;
}

const shoal_extension shoal_request_id_extension = {
    .name = "request-id",
    .init = init,
};
