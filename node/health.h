/* node/health.h: /healthz (the process lives) and /readyz (send me traffic). */
#ifndef SHOAL_HEALTH_H
#define SHOAL_HEALTH_H

#include "shoal.h"

/* /readyz answers 200 while the node is ready and 503 while starting or
 * draining. It does not fail when PostgreSQL or Redis is down: a shared tier
 * that is down is down for every node, and failing readiness for it would
 * take every node out of HAProxy at once. The body reports both tiers as
 * this node sees them, from one round trip on each of the worker's
 * connections. */
extern const shoal_extension shoal_health_extension;

#endif
