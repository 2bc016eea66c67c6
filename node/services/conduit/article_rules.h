/* node/services/conduit/article_rules.h: the RealWorld article rules that need no
 * request, so that they are tested alone: slugs from titles, and tag lists
 * as they are stored. */
#ifndef API_ARTICLE_RULES_H
#define API_ARTICLE_RULES_H

#include <stddef.h>
#include <stdint.h>

/* A slug's base is at most this many bytes; with a suffix it stays far
 * below the 300 the schema allows. */
#define API_SLUG_BASE_MAX 200
/* "-" and six letters or digits. */
#define API_SLUG_SUFFIX_LENGTH 7
#define API_SLUG_SIZE (API_SLUG_BASE_MAX + API_SLUG_SUFFIX_LENGTH + 1)
/* A title without one ASCII letter or digit ("日本語", "???") gets this. */
#define API_SLUG_FALLBACK "article"

/* The slug of title: its letters with their accents taken off ("Crème" ->
 * "creme", through glibc's transliteration), lower-cased, and its digits;
 * every run
 * of anything else one '-', none at either end, cut at a '-' to fit
 * API_SLUG_BASE_MAX ("How to Train Your Dragon!" -> "how-to-train-your-dragon").
 * out must hold API_SLUG_SIZE bytes; the result is never empty. */
void api_article_slug(const char *title, char *out);
/* Appends "-" and six characters of [a-z0-9] drawn from random to the slug
 * in out (API_SLUG_SIZE bytes), for a title whose slug is taken. */
void api_article_slug_suffix(char *out, uint64_t random);
/* At most this many distinct tags per article. */
#define API_TAGS_MAX 32

/* Tags as stored: each trimmed of surrounding white space, then sorted by
 * bytes and without repeats. Works on tags[i] (tags[i] bytes long, not
 * necessarily NUL-terminated) in place: trimming moves tags[i] and shortens
 * lengths[i]; the distinct ones end up first, in order, and their number is
 * returned. A tag that trims to nothing stays, with length 0, for the
 * caller to refuse. Sorting is by insertion: keep count small. */
size_t api_article_tags(const char **tags, size_t *lengths, size_t count);

#endif
