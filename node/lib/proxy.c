/* node/lib/proxy.c: trusted proxies and the forwarded client address. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct network {
    int family; /* AF_INET or AF_INET6 */
    unsigned char bytes[16];
    unsigned prefix; /* bits that must match */
} network;

struct shoal_proxies {
    size_t count;
    network networks[]; /* a few entries: a linear scan beats any index */
};

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Reads text[0..length) as an address; an IPv4-mapped IPv6 address becomes
 * IPv4, so that a dual-stack listener's peers compare with IPv4 entries. */
static bool parse_address(const char *text, size_t length, network *out)
{
    char copy[INET6_ADDRSTRLEN + 1];
    if (length == 0 || length >= sizeof copy)
        return false;
    memcpy(copy, text, length);
    copy[length] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, copy, out->bytes) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
        return true;
    }
    if (inet_pton(AF_INET6, copy, out->bytes) != 1)
        return false;
    out->family = AF_INET6;
    out->prefix = 128;
    if (memcmp(out->bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
        memmove(out->bytes, out->bytes + 12, 4);
        memset(out->bytes + 4, 0, 12);
        out->family = AF_INET;
        out->prefix = 32;
    }
    return true;
}

static bool prefix_matches(const network *net, const network *address)
{
    if (net->family != address->family)
        return false;
    unsigned whole = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->bytes, address->bytes, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (net->bytes[whole] & mask) == (address->bytes[whole] & mask);
}

static bool trims(char c)
{
    return c == ' ' || c == '\t';
}

/* One list entry: address or address/prefix. */
static bool parse_network(const char *text, size_t length, network *out)
{
    const char *slash = memchr(text, '/', length);
    size_t address_length = slash != NULL ? (size_t)(slash - text) : length;
    bool mapped = memchr(text, ':', address_length) != NULL;
    if (!parse_address(text, address_length, out))
        return false;
    if (slash == NULL)
        return true;
    const char *digits = slash + 1;
    size_t digit_count = length - address_length - 1;
    if (digit_count == 0 || digit_count > 3)
        return false;
    unsigned prefix = 0;
    for (size_t i = 0; i < digit_count; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return false;
        prefix = prefix * 10 + (unsigned)(digits[i] - '0');
    }
    /* An IPv4-mapped network (::ffff:10.0.0.0/104) was written in IPv6
     * bits; parse_address made it IPv4, so its prefix loses the 96 bits of
     * the mapping. */
    if (mapped && out->family == AF_INET) {
        if (prefix < 96)
            return false;
        prefix -= 96;
    }
    if (prefix > (out->family == AF_INET ? 32u : 128u))
        return false;
    out->prefix = prefix;
    return true;
}

shoal_proxies *shoal_proxies_parse(const char *text, char *error, size_t error_size)
{
    size_t capacity = 1;
    for (const char *p = text; *p != '\0'; p++)
        capacity += *p == ',';
    shoal_proxies *proxies = calloc(1, sizeof *proxies + capacity * sizeof proxies->networks[0]);
    if (proxies == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    const char *cursor = text;
    for (;;) {
        size_t length = strcspn(cursor, ",");
        const char *start = cursor;
        size_t entry_length = length;
        while (entry_length > 0 && trims(*start)) {
            start++;
            entry_length--;
        }
        while (entry_length > 0 && trims(start[entry_length - 1]))
            entry_length--;
        bool last = cursor[length] == '\0';
        if (entry_length == 0) {
            /* "" trusts nobody; an empty entry inside a list is a typo. */
            if (!(last && proxies->count == 0 && cursor == text)) {
                snprintf(error, error_size, "an empty entry in the list");
                free(proxies);
                return NULL;
            }
        } else if (!parse_network(start, entry_length, &proxies->networks[proxies->count++])) {
            snprintf(error, error_size, "'%.*s' is not an IPv4 or IPv6 address or CIDR", (int)entry_length, start);
            free(proxies);
            return NULL;
        }
        if (last)
            break;
        cursor += length + 1;
    }
    return proxies;
}

void shoal_proxies_free(shoal_proxies *proxies)
{
    free(proxies);
}

static bool trusted(const shoal_proxies *proxies, const network *address)
{
    for (size_t i = 0; proxies != NULL && i < proxies->count; i++)
        if (prefix_matches(&proxies->networks[i], address))
            return true;
    return false;
}

bool shoal_proxies_contains(const shoal_proxies *proxies, const char *address)
{
    network parsed;
    return address != NULL && parse_address(address, strlen(address), &parsed) && trusted(proxies, &parsed);
}

/* A forwarded entry is an address, possibly "[v6]", "[v6]:port" or
 * "v4:port" (some proxies add the port). */
static bool parse_forwarded_entry(const char *text, size_t length, network *out)
{
    if (length >= 2 && text[0] == '[') {
        const char *close = memchr(text, ']', length);
        if (close == NULL)
            return false;
        return parse_address(text + 1, (size_t)(close - text - 1), out);
    }
    const char *colon = memchr(text, ':', length);
    if (colon != NULL && memchr(colon + 1, ':', length - (size_t)(colon - text) - 1) == NULL)
        length = (size_t)(colon - text); /* one colon: IPv4 with a port */
    return parse_address(text, length, out);
}

static const char *format(const network *address, shoal_arena *arena)
{
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(address->family, address->bytes, text, sizeof text) == NULL)
        return NULL;
    return shoal_arena_strdup(arena, text);
}

const char *shoal_proxies_client(const shoal_proxies *proxies, const char *peer,
                                 const char *forwarded_for, shoal_arena *arena)
{
    network hop;
    if (peer == NULL || !parse_address(peer, strlen(peer), &hop))
        return shoal_arena_strdup(arena, peer != NULL ? peer : "");
    if (!trusted(proxies, &hop) || forwarded_for == NULL)
        return format(&hop, arena);
    size_t end = strlen(forwarded_for);
    while (end > 0) {
        size_t start = end;
        while (start > 0 && forwarded_for[start - 1] != ',')
            start--;
        size_t first = start, last = end;
        while (first < last && trims(forwarded_for[first]))
            first++;
        while (last > first && trims(forwarded_for[last - 1]))
            last--;
        network entry;
        if (first < last) {
            /* Garbage cannot be a client address; the last trusted hop is
             * the nearest one whose word we still take. */
            if (!parse_forwarded_entry(forwarded_for + first, last - first, &entry))
                break;
            hop = entry;
            if (!trusted(proxies, &hop))
                break;
        }
        end = start > 0 ? start - 1 : 0;
    }
    return format(&hop, arena);
}
