/* node/ext/request_id.c */
#include "request_id.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

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

/* Ids need to be unique, not secret: a per-worker xoshiro256** generator
 * seeded once from the OS costs no system call per request. */
typedef struct id_generator {
    uint64_t state[4];
} id_generator;

static uint64_t rotate_left(uint64_t value, int bits)
{
    return (value << bits) | (value >> (64 - bits));
}

static uint64_t next_random(id_generator *generator)
{
    uint64_t *s = generator->state;
    uint64_t result = rotate_left(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotate_left(s[3], 45);
    return result;
}

static void *create_generator(void *data)
{
    (void)data;
    id_generator *generator = calloc(1, sizeof *generator);
    if (generator == NULL)
        return NULL;
    if (getrandom(generator->state, sizeof generator->state, 0) != (ssize_t)sizeof generator->state)
        generator->state[0] = (uint64_t)(uintptr_t)generator ^ 0x9e3779b97f4a7c15u;
    if ((generator->state[0] | generator->state[1] | generator->state[2] | generator->state[3]) == 0)
        generator->state[0] = 1; /* the all-zero state is a fixed point */
    return generator;
}

/* The hook's data is the worker slot of the generator, as an integer. */
static shoal_flow adopt_or_generate(shoal_ctx *ctx, void *data)
{
    shoal_worker_slot generator_slot = (shoal_worker_slot)(intptr_t)data;
    const char *given = shoal_header(ctx, "X-Request-ID");
    if (given != NULL && shoal_request_id_valid(given)) {
        shoal_set_request_id(ctx, given);
        return SHOAL_NEXT;
    }
    id_generator *generator = shoal_worker_get(ctx, generator_slot);
    if (generator == NULL)
        return SHOAL_NEXT;
    static const char hex[] = "0123456789abcdef";
    char id[33];
    for (int half = 0; half < 2; half++) {
        uint64_t bits = next_random(generator);
        for (int i = 0; i < 16; i++)
            id[half * 16 + i] = hex[(bits >> (60 - 4 * i)) & 0xf];
    }
    id[32] = '\0';
    shoal_set_request_id(ctx, id);
    return SHOAL_NEXT;
}

static void echo(shoal_ctx *ctx, void *data)
{
    (void)data;
    const char *id = shoal_request_id(ctx);
    if (id != NULL)
        shoal_set_header(ctx, "X-Request-ID", id);
}

static int init(shoal_app *app, void *data)
{
    (void)data;
    shoal_worker_slot generator_slot = shoal_app_worker_slot(app, create_generator, free, NULL);
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
