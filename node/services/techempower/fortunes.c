/* node/services/techempower/fortunes.c */
#include "fortunes.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char page_head[] = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                                "<tr><th>id</th><th>message</th></tr>";
static const char page_tail[] = "</table></body></html>";
static const char row_open[] = "<tr><td>";
static const char cell_between[] = "</td><td>";
static const char row_close[] = "</td></tr>";

/* The entity for a byte that needs one, or NULL. */
static const char *entity(unsigned char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

static size_t escaped_size(const char *text, size_t length)
{
    size_t size = length;
    for (size_t i = 0; i < length; i++) {
        const char *replacement = entity((unsigned char)text[i]);
        if (replacement != NULL)
            size += strlen(replacement) - 1;
    }
    return size;
}

static char *append_escaped(char *out, const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        const char *replacement = entity((unsigned char)text[i]);
        if (replacement == NULL) {
            *out++ = text[i];
        } else {
            size_t replacement_length = strlen(replacement);
            memcpy(out, replacement, replacement_length);
            out += replacement_length;
        }
    }
    return out;
}

char *bench_html_escape(shoal_arena *arena, const char *text, size_t length, size_t *escaped_length)
{
    size_t size = escaped_size(text, length);
    char *escaped = shoal_arena_alloc(arena, size + 1);
    if (escaped == NULL)
        return NULL;
    char *end = append_escaped(escaped, text, length);
    *end = '\0';
    *escaped_length = size;
    return escaped;
}

static int compare_messages(const void *left, const void *right)
{
    const store_fortune *a = left;
    const store_fortune *b = right;
    size_t shorter = a->message_length < b->message_length ? a->message_length : b->message_length;
    int order = memcmp(a->message, b->message, shorter);
    if (order != 0)
        return order;
    return (a->message_length > b->message_length) - (a->message_length < b->message_length);
}

void bench_fortunes_sort(store_fortune *fortunes, size_t count)
{
    qsort(fortunes, count, sizeof *fortunes, compare_messages);
}

size_t bench_fortunes_prepare(store_fortune *fortunes, size_t count)
{
    fortunes[count] = (store_fortune){
        .id = BENCH_EXTRA_FORTUNE_ID,
        .message = BENCH_EXTRA_FORTUNE_MESSAGE,
        .message_length = sizeof BENCH_EXTRA_FORTUNE_MESSAGE - 1,
    };
    bench_fortunes_sort(fortunes, count + 1);
    return count + 1;
}

#define LITERAL_LENGTH(literal) (sizeof(literal) - 1)
/* An int as decimal text: "-2147483648". */
#define INTEGER_TEXT_MAX 11

char *bench_fortunes_html(shoal_arena *arena, const store_fortune *fortunes, size_t count, size_t *length)
{
    /* Measured first so that the page is one exact allocation. */
    size_t row_overhead = LITERAL_LENGTH(row_open) + INTEGER_TEXT_MAX + LITERAL_LENGTH(cell_between) +
                          LITERAL_LENGTH(row_close);
    size_t size = LITERAL_LENGTH(page_head) + LITERAL_LENGTH(page_tail) + 1;
    for (size_t i = 0; i < count; i++) {
        size_t row = row_overhead + escaped_size(fortunes[i].message, fortunes[i].message_length);
        if (size > SIZE_MAX - row)
            return NULL;
        size += row;
    }
    char *page = shoal_arena_alloc(arena, size);
    if (page == NULL)
        return NULL;
    char *out = page;
    memcpy(out, page_head, LITERAL_LENGTH(page_head));
    out += LITERAL_LENGTH(page_head);
    for (size_t i = 0; i < count; i++) {
        memcpy(out, row_open, LITERAL_LENGTH(row_open));
        out += LITERAL_LENGTH(row_open);
        out += snprintf(out, INTEGER_TEXT_MAX + 1, "%d", fortunes[i].id);
        memcpy(out, cell_between, LITERAL_LENGTH(cell_between));
        out += LITERAL_LENGTH(cell_between);
        out = append_escaped(out, fortunes[i].message, fortunes[i].message_length);
        memcpy(out, row_close, LITERAL_LENGTH(row_close));
        out += LITERAL_LENGTH(row_close);
    }
    memcpy(out, page_tail, LITERAL_LENGTH(page_tail));
    out += LITERAL_LENGTH(page_tail);
    *out = '\0';
    *length = (size_t)(out - page);
    return page;
}
