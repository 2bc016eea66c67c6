/* node/services/techempower/json_text.h: the TechEmpower JSON bodies, written straight
 * into the request's arena.
 *
 * These bodies have one fixed shape each, so writing the bytes directly is
 * both simpler and several times cheaper than building a jansson tree and
 * dumping it. They are still serialised per request from the values given:
 * the specification forbids answering with bytes prepared in advance. */
#ifndef SHOAL_BENCH_JSON_TEXT_H
#define SHOAL_BENCH_JSON_TEXT_H

#include <stddef.h>

#include <shoal/arena.h>

#include "sql/world.h"

/* {"message":"<message, escaped>"}; message is UTF-8. NULL when memory ran out. */
char *bench_json_message(shoal_arena *arena, const char *message, size_t *length);
/* {"id":1,"randomNumber":2} */
char *bench_json_world(shoal_arena *arena, const store_world *world, size_t *length);
/* [{"id":1,"randomNumber":2},...], "[]" for none. */
char *bench_json_worlds(shoal_arena *arena, const store_world *worlds, size_t count, size_t *length);

#endif
