/* tests/load/hotpath/malloc_count.c: an LD_PRELOAD library that counts heap
 * calls, for "allocations per request". SIGUSR2 writes the counts so far to
 * stderr as one line; take one before and one after a fixed number of
 * requests and divide the difference. glibc routes its own internal
 * allocations (strdup, fopen, ...) through these symbols as well. */
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *memory, size_t size);
extern void __libc_free(void *memory);

static atomic_ulong mallocs, callocs, reallocs, frees;

void *malloc(size_t size)
{
    atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    atomic_fetch_add_explicit(&callocs, 1, memory_order_relaxed);
    return __libc_calloc(count, size);
}

void *realloc(void *memory, size_t size)
{
    atomic_fetch_add_explicit(&reallocs, 1, memory_order_relaxed);
    return __libc_realloc(memory, size);
}

void free(void *memory)
{
    if (memory != NULL)
        atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
    __libc_free(memory);
}

static void report(int signal_number)
{
    (void)signal_number;
    char line[160];
    int length = snprintf(line, sizeof line, "malloc_count: malloc=%lu calloc=%lu realloc=%lu free=%lu\n",
                          atomic_load(&mallocs), atomic_load(&callocs), atomic_load(&reallocs),
                          atomic_load(&frees));
    if (length > 0) {
        ssize_t ignored = write(STDERR_FILENO, line, (size_t)length);
        (void)ignored;
    }
}

__attribute__((constructor)) static void install(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = report;
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &action, NULL);
}
