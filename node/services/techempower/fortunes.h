/* node/services/techempower/fortunes.h: the TechEmpower Fortunes page.
 *
 * The specification: take every row, add one more in memory, sort by
 * message, and render an HTML table with every message escaped. The sort
 * compares bytes (UTF-8 byte order is code point order), never a locale's
 * collation, which would put "fortune: ..." among the "F"s. */
#ifndef SHOAL_BENCH_FORTUNES_H
#define SHOAL_BENCH_FORTUNES_H

#include <stddef.h>

#include <shoal/arena.h>

#include "sql/fortune.h"

#define BENCH_EXTRA_FORTUNE_ID 0
#define BENCH_EXTRA_FORTUNE_MESSAGE "Additional fortune added at request time."

/* Adds the extra fortune at fortunes[count] (the array must have room for
 * it) and sorts all of them by message; returns count + 1. */
size_t bench_fortunes_prepare(store_fortune *fortunes, size_t count);

/* Sorts by message in plain byte order; a message that is a prefix of
 * another comes first. */
void bench_fortunes_sort(store_fortune *fortunes, size_t count);

/* text with & < > " ' replaced by their HTML entities, NUL-terminated, in
 * arena; *escaped_length gets its length. NULL when memory ran out. */
char *bench_html_escape(shoal_arena *arena, const char *text, size_t length, size_t *escaped_length);

/* The whole page, in the markup the specification gives:
 * <!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>
 * <tr><th>id</th><th>message</th></tr><tr><td>ID</td><td>MESSAGE</td></tr>...
 * </table></body></html> (on one line). NULL when memory ran out. */
char *bench_fortunes_html(shoal_arena *arena, const store_fortune *fortunes, size_t count, size_t *length);

#endif
