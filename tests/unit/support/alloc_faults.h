/* tests/unit/support/alloc_faults.h: failing one allocation on purpose, and
 * counting the blocks that are left.
 *
 * A program linked with alloc_faults.c and the linker options
 *   --wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,
 *   --wrap=strdup,--wrap=strndup,--wrap=aligned_alloc
 * (the SHOAL_ALLOC_FAULTS_WRAP list in tests/unit/CMakeLists.txt) has every
 * call of its own objects and of the static libraries it links (node/,
 * store/, cache/) go through here. Calls inside shared libraries (libc's
 * own, jansson, hiredis, libpq, libsodium, cmocka) do not: only shoal's
 * own allocations are failed and counted.
 *
 * Why wrapping at link time, rather than routing node/'s allocations
 * through a function of ours with a failure counter: the shipped node and
 * its hot path stay exactly as they are, nothing test-only is compiled
 * into them, and every allocation counts, including those of store/ and
 * cache/ that setup reaches (store_registry_add, the L1). Sanitizers and
 * valgrind still see every block: the wrappers call the real functions,
 * which ASan and memcheck replace as usual.
 *
 * Everything here is per thread: only the thread that armed a failure or
 * started tracking is affected, so a node's other threads (the tier
 * monitor) neither take the failure nor disturb the count. */
#ifndef SHOAL_UNIT_ALLOC_FAULTS_H
#define SHOAL_UNIT_ALLOC_FAULTS_H

#include <stdbool.h>
#include <stddef.h>

/* Makes this thread's nth allocation from now on fail (1: the next one),
 * once; the ones after succeed again. 0 disarms. */
void alloc_faults_fail_nth(unsigned long nth);
/* Whether the armed failure happened since alloc_faults_fail_nth. */
bool alloc_faults_injected(void);

/* Starts (true) or stops (false) recording the blocks this thread
 * allocates and frees; starting forgets what was recorded before. */
void alloc_faults_track(bool on);
/* Blocks allocated while tracking and not freed since. */
size_t alloc_faults_live(void);
/* Whether block is one of them (false for a block freed since, or one
 * that was never recorded). */
bool alloc_faults_is_live(const void *block);
/* True when more blocks were live at once than the record can hold; the
 * counts above are then meaningless. */
bool alloc_faults_overflowed(void);

#endif
