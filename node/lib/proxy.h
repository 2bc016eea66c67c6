/* node/lib/proxy.h: which peers may speak for a client, and who the client is.
 *
 * Behind HAProxy every TCP peer is the load balancer; the client's own
 * address arrives in X-Forwarded-For, which HAProxy appends to (option
 * forwardfor). That header is believed only when the peer is a configured
 * proxy (--trusted-proxies), and then only from the right: each trusted hop
 * appends what it saw, so the right-most entry that is not itself a trusted
 * proxy is the first address no client could have written. */
#ifndef SHOAL_PROXY_H
#define SHOAL_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include <shoal/arena.h>

typedef struct shoal_proxies shoal_proxies;

/* Parses a comma-separated list of addresses and CIDRs, IPv4 and IPv6
 * ("127.0.0.0/8, ::1, 10.0.0.0/8"); "" trusts nobody. NULL with the reason
 * in error when an entry does not parse or memory runs out. */
shoal_proxies *shoal_proxies_parse(const char *text, char *error, size_t error_size);
void shoal_proxies_free(shoal_proxies *proxies);

/* True when address (text, as inet_pton reads it) is a trusted proxy. An
 * IPv4-mapped IPv6 address (::ffff:127.0.0.1) counts as its IPv4 address. */
bool shoal_proxies_contains(const shoal_proxies *proxies, const char *address);

/* The client's address for a request from peer with the given
 * X-Forwarded-For value (all of the request's header lines joined with ','
 * in order; NULL when none): the peer itself unless it is trusted, else the
 * right-most forwarded entry that is not trusted (or, when every entry is a
 * trusted proxy, the left-most one; or, when an entry is not an address,
 * the last hop that was trusted). The result is in canonical text form
 * (inet_ntop), from arena; NULL only when memory runs out. */
const char *shoal_proxies_client(const shoal_proxies *proxies, const char *peer,
                                 const char *forwarded_for, shoal_arena *arena);

#endif
