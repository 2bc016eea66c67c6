/* node/lib/include/shoal/arena.h: per-request memory, released in one go.
 *
 * Every request owns one arena. Handlers, hooks and the JSON helpers allocate
 * from it and never free; the HTTP glue releases the whole arena after the
 * response has been sent (or the connection died). Cleanups registered on
 * the arena (for example a jansson value to decref) run at release, newest
 * first, so foreign objects can share the request's lifetime. */
#ifndef SHOAL_ARENA_H
#define SHOAL_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct shoal_arena_block shoal_arena_block;
typedef struct shoal_arena_cleanup shoal_arena_cleanup;

/* The fields are visible only so that an arena can live inside another
 * struct (the request) without a separate allocation; use the functions. */
typedef struct shoal_arena {
    shoal_arena_block *blocks;    /* newest first; the inline block is not in this list */
    char *inline_start;           /* caller-provided first block, never freed */
    size_t inline_size;
    size_t inline_used;
    size_t block_size;            /* size of blocks taken from malloc */
    size_t bytes_allocated;       /* heap bytes held, for tests and metrics */
    shoal_arena_cleanup *cleanups;
} shoal_arena;

/* initial may be NULL (size 0): then every byte comes from malloc in blocks
 * of at least SHOAL_ARENA_BLOCK_SIZE. */
#define SHOAL_ARENA_BLOCK_SIZE 8192
void shoal_arena_init(shoal_arena *arena, void *initial, size_t initial_size);

/* Returns memory aligned for any type, or NULL when malloc fails or the size
 * overflows. Zero-byte requests return a valid unique pointer. */
void *shoal_arena_alloc(shoal_arena *arena, size_t size);
void *shoal_arena_calloc(shoal_arena *arena, size_t count, size_t size);
/* Makes memory (from this arena, old_size bytes, or NULL) new_size bytes
 * long, keeping its first old_size bytes. The newest allocation of its
 * block grows in place while the block has room, so a buffer that is
 * appended to while nothing else is allocated costs no copies; otherwise
 * the bytes move to a new allocation and the old one stays until release.
 * NULL when memory runs out (memory is then unchanged). */
void *shoal_arena_resize(shoal_arena *arena, void *memory, size_t old_size, size_t new_size);
char *shoal_arena_strdup(shoal_arena *arena, const char *text);
char *shoal_arena_strndup(shoal_arena *arena, const char *text, size_t length);
char *shoal_arena_printf(shoal_arena *arena, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
char *shoal_arena_vprintf(shoal_arena *arena, const char *format, va_list args);

/* Runs release(object) when the arena is released. Returns 0, or -1 when
 * the bookkeeping could not be allocated (release is then called at once,
 * so the object is never leaked). */
int shoal_arena_on_release(shoal_arena *arena, void (*release)(void *object), void *object);

/* Runs the cleanups (newest first), frees every heap block and leaves the
 * arena empty and ready for reuse with the same inline block. */
void shoal_arena_release(shoal_arena *arena);

#endif
