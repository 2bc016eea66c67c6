/* tests/unit/support/alloc_faults.c: the wrappers behind alloc_faults.h. */
#include "alloc_faults.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *block, size_t size);
void __real_free(void *block);
char *__real_strdup(const char *text);
char *__real_strndup(const char *text, size_t length);
void *__real_aligned_alloc(size_t alignment, size_t size);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *block, size_t size);
void __wrap_free(void *block);
char *__wrap_strdup(const char *text);
char *__wrap_strndup(const char *text, size_t length);
void *__wrap_aligned_alloc(size_t alignment, size_t size);

static _Thread_local unsigned long countdown; /* 0: nothing armed */
static _Thread_local bool injected;
static _Thread_local bool tracking;

/* The live blocks, by address: open addressing with linear probing, and
 * no memory of its own, since it lives inside malloc. Setting up one app
 * with every extension holds a few thousand blocks. */
#define TABLE_SIZE (1u << 16)
#define TABLE_MASK (TABLE_SIZE - 1)
static const void *table[TABLE_SIZE];
static size_t live;
static bool overflowed;

static size_t home_of(const void *block)
{
    uintptr_t bits = (uintptr_t)block;
    bits ^= bits >> 17;
    bits *= UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(bits >> 40) & TABLE_MASK;
}

static size_t find(const void *block)
{
    size_t i = home_of(block);
    while (table[i] != NULL && table[i] != block)
        i = (i + 1) & TABLE_MASK;
    return i;
}

static void remember(const void *block)
{
    if (!tracking || block == NULL)
        return;
    if (live >= TABLE_SIZE / 2) {
        overflowed = true;
        return;
    }
    size_t i = find(block);
    if (table[i] == NULL) {
        table[i] = block;
        live++;
    }
}

/* Removal without tombstones: later entries of the same run move back
 * into the gap when their home is not between the gap and themselves. */
static void forget(const void *block)
{
    if (!tracking || block == NULL)
        return;
    size_t gap = find(block);
    if (table[gap] == NULL)
        return; /* allocated before tracking started, or by a library */
    table[gap] = NULL;
    live--;
    for (size_t next = (gap + 1) & TABLE_MASK; table[next] != NULL; next = (next + 1) & TABLE_MASK) {
        size_t home = home_of(table[next]);
        bool stays = gap <= next ? (gap < home && home <= next) : (gap < home || home <= next);
        if (stays)
            continue;
        table[gap] = table[next];
        table[next] = NULL;
        gap = next;
    }
}

/* Whether this allocation is the one to fail. */
static bool fail_now(void)
{
    if (countdown == 0 || --countdown > 0)
        return false;
    injected = true;
    return true;
}

void alloc_faults_fail_nth(unsigned long nth)
{
    countdown = nth;
    injected = false;
}

bool alloc_faults_injected(void)
{
    return injected;
}

void alloc_faults_track(bool on)
{
    if (on) {
        memset(table, 0, sizeof table);
        live = 0;
        overflowed = false;
    }
    tracking = on;
}

size_t alloc_faults_live(void)
{
    return live;
}

bool alloc_faults_is_live(const void *block)
{
    return block != NULL && table[find(block)] == block;
}

bool alloc_faults_overflowed(void)
{
    return overflowed;
}

void *__wrap_malloc(size_t size)
{
    if (fail_now())
        return NULL;
    void *block = __real_malloc(size);
    remember(block);
    return block;
}

void *__wrap_calloc(size_t count, size_t size)
{
    if (fail_now())
        return NULL;
    void *block = __real_calloc(count, size);
    remember(block);
    return block;
}

void *__wrap_realloc(void *block, size_t size)
{
    /* A failed realloc leaves the block as it was, as the real one does. */
    if (fail_now())
        return NULL;
    void *moved = __real_realloc(block, size);
    if (moved != NULL || size == 0)
        forget(block);
    remember(moved);
    return moved;
}

void __wrap_free(void *block)
{
    forget(block);
    __real_free(block);
}

char *__wrap_strdup(const char *text)
{
    if (fail_now())
        return NULL;
    char *copy = __real_strdup(text);
    remember(copy);
    return copy;
}

char *__wrap_strndup(const char *text, size_t length)
{
    if (fail_now())
        return NULL;
    char *copy = __real_strndup(text, length);
    remember(copy);
    return copy;
}

void *__wrap_aligned_alloc(size_t alignment, size_t size)
{
    if (fail_now())
        return NULL;
    void *block = __real_aligned_alloc(alignment, size);
    remember(block);
    return block;
}
