/* node/lib/arena.c: a bump allocator with an optional inline first block. */
#include <shoal/arena.h>

#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shoal_arena_block {
    shoal_arena_block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

struct shoal_arena_cleanup {
    shoal_arena_cleanup *next;
    void (*release)(void *object);
    void *object;
};

#define ALIGNMENT (alignof(max_align_t))

static size_t align_up(size_t value)
{
    return (value + ALIGNMENT - 1) & ~(ALIGNMENT - 1);
}

void shoal_arena_init(shoal_arena *arena, void *initial, size_t initial_size)
{
    memset(arena, 0, sizeof *arena);
    arena->block_size = SHOAL_ARENA_BLOCK_SIZE;
    if (initial != NULL && initial_size > 0) {
        /* The inline block's start may be unaligned; skip to alignment. */
        uintptr_t start = (uintptr_t)initial;
        uintptr_t aligned = (start + ALIGNMENT - 1) & ~(uintptr_t)(ALIGNMENT - 1);
        size_t skip = (size_t)(aligned - start);
        if (skip < initial_size) {
            arena->inline_start = (char *)aligned;
            arena->inline_size = initial_size - skip;
        }
    }
}

static void *take_from_inline(shoal_arena *arena, size_t size)
{
    if (arena->inline_start == NULL || arena->inline_size - arena->inline_used < size)
        return NULL;
    void *memory = arena->inline_start + arena->inline_used;
    arena->inline_used += size;
    return memory;
}

void *shoal_arena_alloc(shoal_arena *arena, size_t size)
{
    if (size > SIZE_MAX - 2 * ALIGNMENT)
        return NULL;
    size = align_up(size == 0 ? 1 : size);

    void *memory = take_from_inline(arena, size);
    if (memory != NULL)
        return memory;

    shoal_arena_block *head = arena->blocks;
    if (head != NULL && head->size - head->used >= size) {
        memory = head->data + head->used;
        head->used += size;
        return memory;
    }

    /* Large requests get a block of their own, placed behind the current
     * head so that the head's free space stays usable for small requests. */
    size_t capacity = size > arena->block_size / 2 ? size : arena->block_size;
    if (capacity > SIZE_MAX - sizeof(shoal_arena_block))
        return NULL;
    shoal_arena_block *block = malloc(sizeof(shoal_arena_block) + capacity);
    if (block == NULL)
        return NULL;
    block->size = capacity;
    block->used = size;
    arena->bytes_allocated += sizeof(shoal_arena_block) + capacity;
    if (capacity == size && head != NULL) {
        block->next = head->next;
        head->next = block;
    } else {
        block->next = head;
        arena->blocks = block;
    }
    return block->data;
}

void *shoal_arena_calloc(shoal_arena *arena, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *memory = shoal_arena_alloc(arena, count * size);
    if (memory != NULL)
        memset(memory, 0, count * size);
    return memory;
}

void *shoal_arena_resize(shoal_arena *arena, void *memory, size_t old_size, size_t new_size)
{
    if (memory == NULL)
        return shoal_arena_alloc(arena, new_size);
    if (new_size > SIZE_MAX - 2 * ALIGNMENT)
        return NULL;
    size_t old_aligned = align_up(old_size == 0 ? 1 : old_size);
    if (new_size <= old_aligned)
        return memory;
    size_t more = align_up(new_size) - old_aligned;
    char *end = (char *)memory + old_aligned;

    /* The newest allocation of a block ends where the block's free space
     * starts: it can take more of that space without moving. */
    if (arena->inline_start != NULL && end == arena->inline_start + arena->inline_used) {
        if (arena->inline_size - arena->inline_used >= more) {
            arena->inline_used += more;
            return memory;
        }
    } else {
        shoal_arena_block *head = arena->blocks;
        if (head != NULL && end == (char *)head->data + head->used && head->size - head->used >= more) {
            head->used += more;
            return memory;
        }
    }
    void *moved = shoal_arena_alloc(arena, new_size);
    if (moved == NULL)
        return NULL;
    memcpy(moved, memory, old_size);
    return moved;
}

char *shoal_arena_strndup(shoal_arena *arena, const char *text, size_t length)
{
    if (length == SIZE_MAX)
        return NULL;
    char *copy = shoal_arena_alloc(arena, length + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, text, length);
    copy[length] = '\0';
    return copy;
}

char *shoal_arena_strdup(shoal_arena *arena, const char *text)
{
    return text == NULL ? NULL : shoal_arena_strndup(arena, text, strlen(text));
}

char *shoal_arena_vprintf(shoal_arena *arena, const char *format, va_list args)
{
    va_list measuring;
    va_copy(measuring, args);
    int length = vsnprintf(NULL, 0, format, measuring);
    va_end(measuring);
    if (length < 0)
        return NULL;
    char *text = shoal_arena_alloc(arena, (size_t)length + 1);
    if (text == NULL)
        return NULL;
    vsnprintf(text, (size_t)length + 1, format, args);
    return text;
}

char *shoal_arena_printf(shoal_arena *arena, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char *text = shoal_arena_vprintf(arena, format, args);
    va_end(args);
    return text;
}

int shoal_arena_on_release(shoal_arena *arena, void (*release)(void *object), void *object)
{
    shoal_arena_cleanup *cleanup = shoal_arena_alloc(arena, sizeof *cleanup);
    if (cleanup == NULL) {
        release(object);
        return -1;
    }
    cleanup->release = release;
    cleanup->object = object;
    cleanup->next = arena->cleanups;
    arena->cleanups = cleanup;
    return 0;
}

void shoal_arena_release(shoal_arena *arena)
{
    /* Cleanups live in the arena's own memory: run them all before freeing. */
    for (shoal_arena_cleanup *cleanup = arena->cleanups; cleanup != NULL; cleanup = cleanup->next)
        cleanup->release(cleanup->object);
    arena->cleanups = NULL;

    shoal_arena_block *block = arena->blocks;
    while (block != NULL) {
        shoal_arena_block *next = block->next;
        free(block);
        block = next;
    }
    arena->blocks = NULL;
    arena->inline_used = 0;
    arena->bytes_allocated = 0;
}
