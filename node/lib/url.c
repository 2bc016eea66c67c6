/* node/lib/url.c */
#include "url.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t shoal_url_unescape(char *text)
{
    /* Up to the first '%' the text stays as it is: nothing to copy (most
     * paths have no escape at all, and libmicrohttpd calls this for every
     * request's path). */
    char *out = text;
    while (*out != '\0' && *out != '%')
        out++;
    for (const char *in = out; *in != '\0'; in++) {
        int high, low;
        if (*in == '%' && (high = hex_digit(in[1])) >= 0 && (low = hex_digit(in[2])) >= 0 &&
            (high | low) != 0) {
            *out++ = (char)(high * 16 + low);
            in += 2;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
    return (size_t)(out - text);
}
