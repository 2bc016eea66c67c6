/* node/lib/include/shoal/ext/security_headers.h: headers that tell browsers how to treat the
 * node's answers. */
#ifndef SHOAL_SECURITY_HEADERS_H
#define SHOAL_SECURITY_HEADERS_H

#include <shoal/shoal.h>

/* With --security-headers (the default), every answer (errors, preflights
 * and answers of other extensions included) gets
 *   X-Content-Type-Options: nosniff
 *   Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
 *   Referrer-Policy: no-referrer
 * and an answer to a request that carries credentials (an Authorization
 * header) or to one that may change something (any method but GET, HEAD
 * and OPTIONS: a login answers with a token to a request without one)
 * gets Cache-Control: no-store. A header the handler set itself is kept.
 * Strict-Transport-Security belongs where TLS ends (the load balancer,
 * the Kubernetes Ingress), not on a node that speaks plain HTTP. */
extern const shoal_extension shoal_security_headers_extension;

/* --security-headers (SHOAL_SECURITY_HEADERS): on by default. */
typedef struct shoal_security_headers_settings_values {
    bool enabled;
} shoal_security_headers_settings_values;
extern const shoal_settings shoal_security_headers_settings;

#define SHOAL_CONTENT_SECURITY_POLICY "default-src 'none'; frame-ancestors 'none'"

#endif
