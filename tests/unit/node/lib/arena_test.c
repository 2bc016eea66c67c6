/* tests/unit/node/lib/arena_test.c: node/lib/arena.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/arena.h>

#define ALIGNMENT alignof(max_align_t)

static bool aligned(const void *pointer)
{
    return (uintptr_t)pointer % ALIGNMENT == 0;
}

static bool inside(const void *pointer, const void *start, size_t size)
{
    return (const char *)pointer >= (const char *)start &&
           (const char *)pointer < (const char *)start + size;
}

static void test_allocations_are_aligned_for_any_type(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    for (size_t size = 1; size < 100; size += 7) {
        void *memory = shoal_arena_alloc(&arena, size);
        assert_non_null(memory);
        assert_true(aligned(memory));
        memset(memory, 0xab, size);
    }
    shoal_arena_release(&arena);
}

static void test_unaligned_inline_block_is_aligned_before_use(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[256];
    shoal_arena arena;
    shoal_arena_init(&arena, block + 3, sizeof block - 3);
    void *first = shoal_arena_alloc(&arena, 8);
    assert_true(aligned(first));
    assert_true(inside(first, block, sizeof block));
    shoal_arena_release(&arena);
}

static void test_inline_block_too_small_to_align_is_ignored(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[ALIGNMENT];
    shoal_arena arena;
    /* One byte past an aligned address leaves nothing usable after aligning. */
    shoal_arena_init(&arena, block + 1, 1);
    void *memory = shoal_arena_alloc(&arena, 1);
    assert_non_null(memory);
    assert_false(inside(memory, block, sizeof block));
    assert_true(arena.bytes_allocated > 0);
    shoal_arena_release(&arena);
}

static void test_zero_byte_allocations_are_distinct(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    void *a = shoal_arena_alloc(&arena, 0);
    void *b = shoal_arena_alloc(&arena, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    shoal_arena_release(&arena);
}

static void test_inline_block_is_used_before_the_heap(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[512];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    void *a = shoal_arena_alloc(&arena, 100);
    void *b = shoal_arena_alloc(&arena, 100);
    assert_true(inside(a, block, sizeof block));
    assert_true(inside(b, block, sizeof block));
    assert_int_equal(arena.bytes_allocated, 0);

    void *spilled = shoal_arena_alloc(&arena, 400);
    assert_false(inside(spilled, block, sizeof block));
    assert_true(arena.bytes_allocated >= 400);
    /* The inline block keeps serving requests that still fit in it. */
    void *small = shoal_arena_alloc(&arena, 16);
    assert_true(inside(small, block, sizeof block));
    shoal_arena_release(&arena);
}

static void test_small_allocations_share_heap_blocks(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    assert_non_null(shoal_arena_alloc(&arena, 32));
    size_t after_first = arena.bytes_allocated;
    assert_true(after_first >= SHOAL_ARENA_BLOCK_SIZE);
    for (int i = 0; i < 100; i++)
        assert_non_null(shoal_arena_alloc(&arena, 32));
    assert_int_equal(arena.bytes_allocated, after_first);

    /* 8 KiB of 32-byte pieces cannot fit in one block: a second one comes. */
    for (int i = 0; i < SHOAL_ARENA_BLOCK_SIZE / 32; i++)
        assert_non_null(shoal_arena_alloc(&arena, 32));
    assert_true(arena.bytes_allocated >= 2 * SHOAL_ARENA_BLOCK_SIZE);
    shoal_arena_release(&arena);
}

static void test_large_allocation_gets_its_own_block_and_keeps_the_current_one(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    char *small = shoal_arena_alloc(&arena, 64);
    size_t one_block = arena.bytes_allocated;

    size_t large_size = 3 * SHOAL_ARENA_BLOCK_SIZE;
    char *large = shoal_arena_alloc(&arena, large_size);
    assert_non_null(large);
    assert_true(aligned(large));
    memset(large, 0x5a, large_size);
    assert_true(arena.bytes_allocated >= one_block + large_size);
    size_t with_large = arena.bytes_allocated;

    /* The next small piece still comes from the first block, right after. */
    char *next = shoal_arena_alloc(&arena, 64);
    assert_int_equal(arena.bytes_allocated, with_large);
    assert_ptr_equal(next, small + 64);
    shoal_arena_release(&arena);
}

static void test_oversized_requests_fail_with_null(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    assert_null(shoal_arena_alloc(&arena, SIZE_MAX));
    assert_null(shoal_arena_alloc(&arena, SIZE_MAX - ALIGNMENT));
    assert_null(shoal_arena_calloc(&arena, SIZE_MAX / 2 + 1, 2));
    assert_null(shoal_arena_calloc(&arena, 2, SIZE_MAX / 2 + 1));
    assert_int_equal(arena.bytes_allocated, 0);
    shoal_arena_release(&arena);
}

static void test_calloc_zeroes_reused_inline_memory(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[256];
    memset(block, 0xff, sizeof block);
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    int *numbers = shoal_arena_calloc(&arena, 16, sizeof *numbers);
    assert_non_null(numbers);
    for (int i = 0; i < 16; i++)
        assert_int_equal(numbers[i], 0);
    assert_non_null(shoal_arena_calloc(&arena, 0, 8));
    shoal_arena_release(&arena);
}

static void test_strdup_and_strndup_copy_into_the_arena(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    char source[] = "articles";
    char *copy = shoal_arena_strdup(&arena, source);
    source[0] = 'X';
    assert_string_equal(copy, "articles");

    char *prefix = shoal_arena_strndup(&arena, "articles/feed", 8);
    assert_string_equal(prefix, "articles");
    char *empty = shoal_arena_strndup(&arena, "", 0);
    assert_string_equal(empty, "");
    assert_null(shoal_arena_strdup(&arena, NULL));
    assert_null(shoal_arena_strndup(&arena, "x", SIZE_MAX));
    shoal_arena_release(&arena);
}

static void test_printf_formats_any_length(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[64];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    char *short_text = shoal_arena_printf(&arena, "%s/%d", "articles", 42);
    assert_string_equal(short_text, "articles/42");

    char *long_text = shoal_arena_printf(&arena, "%0*d", 5000, 7);
    assert_non_null(long_text);
    assert_int_equal(strlen(long_text), 5000);
    assert_int_equal(long_text[0], '0');
    assert_int_equal(long_text[4999], '7');
    shoal_arena_release(&arena);
}

typedef struct release_log {
    int order[8];
    int count;
} release_log;

typedef struct tracked {
    release_log *log;
    int id;
} tracked;

static void record_release(void *object)
{
    tracked *t = object;
    t->log->order[t->log->count++] = t->id;
}

static void test_cleanups_run_newest_first_at_release(void **state)
{
    (void)state;
    release_log log = {0};
    tracked objects[3] = {{&log, 1}, {&log, 2}, {&log, 3}};
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(shoal_arena_on_release(&arena, record_release, &objects[i]), 0);
    assert_int_equal(log.count, 0);

    shoal_arena_release(&arena);
    assert_int_equal(log.count, 3);
    assert_int_equal(log.order[0], 3);
    assert_int_equal(log.order[1], 2);
    assert_int_equal(log.order[2], 1);

    /* They ran once: a second release has nothing left to run. */
    shoal_arena_release(&arena);
    assert_int_equal(log.count, 3);
}

static void test_cleanup_may_free_heap_memory_it_owns(void **state)
{
    (void)state;
    shoal_arena arena;
    shoal_arena_init(&arena, NULL, 0);
    void *foreign = malloc(100);
    assert_non_null(foreign);
    assert_int_equal(shoal_arena_on_release(&arena, free, foreign), 0);
    /* Leak checking under ASan is what fails if free never runs. */
    shoal_arena_release(&arena);
}

static void test_arena_is_reusable_after_release(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[128];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    void *first_inline = shoal_arena_alloc(&arena, 16);
    assert_non_null(shoal_arena_alloc(&arena, 4 * SHOAL_ARENA_BLOCK_SIZE));
    assert_non_null(shoal_arena_alloc(&arena, 500));
    shoal_arena_release(&arena);
    assert_int_equal(arena.bytes_allocated, 0);
    assert_null(arena.blocks);

    void *again = shoal_arena_alloc(&arena, 16);
    assert_ptr_equal(again, first_inline);
    char *text = shoal_arena_printf(&arena, "%s", "still works");
    assert_string_equal(text, "still works");
    assert_non_null(shoal_arena_alloc(&arena, 1000));
    shoal_arena_release(&arena);
    assert_int_equal(arena.bytes_allocated, 0);
}

static void test_resize_grows_the_newest_allocation_in_place(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[1024];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    char *text = shoal_arena_alloc(&arena, 10);
    memcpy(text, "0123456789", 10);
    char *grown = shoal_arena_resize(&arena, text, 10, 500);
    assert_ptr_equal(grown, text);
    assert_memory_equal(grown, "0123456789", 10);
    /* The space it took is no longer handed out. */
    char *next = shoal_arena_alloc(&arena, 16);
    assert_true(next >= grown + 500);
    /* Not the newest any more: it moves, with its bytes. */
    char *moved = shoal_arena_resize(&arena, grown, 500, 600);
    assert_ptr_not_equal(moved, grown);
    assert_memory_equal(moved, "0123456789", 10);
    /* Shrinking, or growing within the alignment, keeps the address. */
    assert_ptr_equal(shoal_arena_resize(&arena, moved, 600, 100), moved);
    shoal_arena_release(&arena);
}

static void test_resize_moves_out_of_a_full_block_and_grows_in_heap_blocks(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char block[256];
    shoal_arena arena;
    shoal_arena_init(&arena, block, sizeof block);
    char *text = shoal_arena_alloc(&arena, 200);
    memset(text, 'a', 200);
    /* The inline block cannot hold 1000 bytes: the text moves to the heap. */
    char *moved = shoal_arena_resize(&arena, text, 200, 1000);
    assert_non_null(moved);
    assert_false(inside(moved, block, sizeof block));
    for (int i = 0; i < 200; i++)
        assert_int_equal(moved[i], 'a');
    /* There it is the newest allocation of the head block, and grows in place. */
    size_t held = arena.bytes_allocated;
    assert_ptr_equal(shoal_arena_resize(&arena, moved, 1000, 3000), moved);
    assert_int_equal(arena.bytes_allocated, held);
    /* NULL memory is a plain allocation. */
    assert_non_null(shoal_arena_resize(&arena, NULL, 0, 32));
    assert_null(shoal_arena_resize(&arena, moved, 3000, SIZE_MAX));
    shoal_arena_release(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocations_are_aligned_for_any_type),
        cmocka_unit_test(test_unaligned_inline_block_is_aligned_before_use),
        cmocka_unit_test(test_inline_block_too_small_to_align_is_ignored),
        cmocka_unit_test(test_zero_byte_allocations_are_distinct),
        cmocka_unit_test(test_inline_block_is_used_before_the_heap),
        cmocka_unit_test(test_small_allocations_share_heap_blocks),
        cmocka_unit_test(test_large_allocation_gets_its_own_block_and_keeps_the_current_one),
        cmocka_unit_test(test_oversized_requests_fail_with_null),
        cmocka_unit_test(test_calloc_zeroes_reused_inline_memory),
        cmocka_unit_test(test_strdup_and_strndup_copy_into_the_arena),
        cmocka_unit_test(test_printf_formats_any_length),
        cmocka_unit_test(test_cleanups_run_newest_first_at_release),
        cmocka_unit_test(test_cleanup_may_free_heap_memory_it_owns),
        cmocka_unit_test(test_arena_is_reusable_after_release),
        cmocka_unit_test(test_resize_grows_the_newest_allocation_in_place),
        cmocka_unit_test(test_resize_moves_out_of_a_full_block_and_grows_in_heap_blocks),
    };
    return cmocka_run_group_tests_name("node/arena", tests, NULL, NULL);
}
