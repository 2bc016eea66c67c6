/* node/lib/url.h: percent-decoding of the request path and of the query's names
 * and values, as the HTTP layer applies it before anything else reads them. */
#ifndef SHOAL_URL_H
#define SHOAL_URL_H

#include <stddef.h>

/* Decodes "%XX" in place, as libmicrohttpd does by default, except that
 * "%00" stays as it is: a NUL in the middle would silently cut C strings
 * short, so "/healthz%00x" would answer as "/healthz" and log as it.
 * Handlers see the literal "%00". A '%' without two hex digits stays too.
 * Returns the new length; the text never grows and holds no new NUL. */
size_t shoal_url_unescape(char *text);

#endif
