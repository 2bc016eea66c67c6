/* node/services/conduit/article_rules.c */
#include "article_rules.h"

#include <errno.h>
#include <iconv.h>
#include <locale.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

static bool ascii_alphanumeric(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}


/* Accented Latin letters become their plain forms ("Crème brûlée" ->
 * "Creme brulee", "Straße" -> "Strasse") through glibc's iconv
 * //TRANSLIT, which reads its tables from a UTF-8 LC_CTYPE. The locale is
 * set for this thread only, for the call (uselocale): setlocale would
 * change it under every other worker of the node. */
static pthread_once_t transliteration_once = PTHREAD_ONCE_INIT;
static locale_t transliteration_locale = (locale_t)0; /* lives as long as the process */

static void load_transliteration_locale(void)
{
    transliteration_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* title in ASCII, in buffer; title itself when that cannot be done (no
 * C.UTF-8 locale, or no converter), whose non-ASCII letters then become
 * separators. What does not fit in buffer is left out: a slug's base is far
 * shorter. */
static const char *transliterated(const char *title, char *buffer, size_t size)
{
    pthread_once(&transliteration_once, load_transliteration_locale);
    if (transliteration_locale == (locale_t)0)
        return title;
    locale_t previous = uselocale(transliteration_locale);
    iconv_t converter = iconv_open("ASCII//TRANSLIT", "UTF-8");
    if (converter == (iconv_t)-1) {
        uselocale(previous);
        return title;
    }
    char *in = (char *)title, *out = buffer;
    size_t in_left = strlen(title), out_left = size - 1;
    while (in_left > 0 && iconv(converter, &in, &in_left, &out, &out_left) == (size_t)-1) {
        /* A byte that is not UTF-8 (JSON bodies are, but the function
         * takes any text) is a separator; a full buffer or a sequence cut
         * at the end stops. */
        if (errno != EILSEQ || out_left == 0)
            break;
        in++;
        in_left--;
        *out++ = ' ';
        out_left--;
    }
    *out = '\0';
    iconv_close(converter);
    uselocale(previous);
    return buffer;
}
void api_article_slug(const char *title, char *out)
{
    char ascii[4 * API_SLUG_BASE_MAX + 64];
    if (title != NULL)
        title = transliterated(title, ascii, sizeof ascii);
    size_t length = 0;
    bool separator = false;
    for (const char *c = title; c != NULL && *c != '\0'; c++) {
        if (!ascii_alphanumeric(*c)) {
            separator = length > 0;
            continue;
        }
        /* Room for the separator and the character, else stop at the last
         * whole word. */
        if (length + (separator ? 2 : 1) > API_SLUG_BASE_MAX) {
            /* Mid-word: back to the last word's end, when there is one. */
            size_t cut = length;
            while (!separator && cut > 0 && out[cut - 1] != '-')
                cut--;
            if (!separator && cut > 1)
                length = cut - 1; /* without the '-' */
            break;
        }
        if (separator)
            out[length++] = '-';
        separator = false;
        out[length++] = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c;
    }
    if (length == 0) {
        memcpy(out, API_SLUG_FALLBACK, sizeof API_SLUG_FALLBACK);
        return;
    }
    out[length] = '\0';
}

void api_article_slug_suffix(char *out, uint64_t random)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t length = strlen(out);
    if (length > API_SLUG_BASE_MAX)
        length = API_SLUG_BASE_MAX;
    out[length++] = '-';
    for (int i = 0; i < API_SLUG_SUFFIX_LENGTH - 1; i++) {
        out[length++] = alphabet[random % 36];
        random /= 36;
    }
    out[length] = '\0';
}

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Byte order, the shorter first when one is the other's start. */
static int compare_tags(const char *a, size_t a_length, const char *b, size_t b_length)
{
    int order = memcmp(a, b, a_length < b_length ? a_length : b_length);
    if (order != 0)
        return order;
    return a_length < b_length ? -1 : a_length > b_length;
}

size_t api_article_tags(const char **tags, size_t *lengths, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        while (lengths[i] > 0 && space(*tags[i])) {
            tags[i]++;
            lengths[i]--;
        }
        while (lengths[i] > 0 && space(tags[i][lengths[i] - 1]))
            lengths[i]--;
    }
    /* Insertion sort: the caller bounds count (API_TAGS_MAX), and it
     * needs no memory. */
    for (size_t i = 1; i < count; i++) {
        const char *tag = tags[i];
        size_t length = lengths[i], j = i;
        for (; j > 0 && compare_tags(tags[j - 1], lengths[j - 1], tag, length) > 0; j--) {
            tags[j] = tags[j - 1];
            lengths[j] = lengths[j - 1];
        }
        tags[j] = tag;
        lengths[j] = length;
    }
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        if (kept > 0 && compare_tags(tags[kept - 1], lengths[kept - 1], tags[i], lengths[i]) == 0)
            continue;
        tags[kept] = tags[i];
        lengths[kept] = lengths[i];
        kept++;
    }
    return kept;
}
