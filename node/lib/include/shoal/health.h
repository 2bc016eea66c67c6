/* node/lib/include/shoal/health.h: /healthz (the process lives) and /readyz (send me traffic).
 *
 * Both are served on the admin listener (--admin-port), where HAProxy's
 * health checks and the kubelet's probes ask; /healthz, which names no
 * tier, is served on the public port too. The public port answers /readyz
 * with 404.
 *
 * /readyz answers 200 while the node is ready and 503 while starting or
 * draining. It does not fail when PostgreSQL or Redis is down: a shared tier
 * that is down is down for every node, and failing readiness for it would
 * take every node out of HAProxy at once. Its body reports both tiers as
 * this node sees them.
 *
 * That view comes from a tier monitor: a thread with its own PostgreSQL and
 * Redis connections that probes them once a second. /readyz only reads the
 * last result, so it answers at once even when a tier hangs (a health check
 * that waited for a hung Redis would time out in HAProxy and take the node
 * out, which is exactly what readiness must not do). */
#ifndef SHOAL_HEALTH_H
#define SHOAL_HEALTH_H

#include <stdbool.h>

#include <shoal/shoal.h>

#define SHOAL_TIER_PROBE_INTERVAL_MS 1000
/* The monitor's own PostgreSQL connection, open while the node runs; the
 * connection budget (node/lib/include/shoal/budget.h) counts it. */
#define SHOAL_TIER_MONITOR_POSTGRES_CONNECTIONS 1

typedef struct shoal_tier_monitor shoal_tier_monitor;

/* Probes both tiers once (so the first answer is known), then starts the
 * thread. NULL when memory runs out or the Redis URL is invalid. */
shoal_tier_monitor *shoal_tier_monitor_start(const shoal_config *config, int interval_ms);
/* Stops and joins the thread (waiting for a probe in progress). */
void shoal_tier_monitor_stop(shoal_tier_monitor *monitor);
bool shoal_tier_monitor_postgres_up(const shoal_tier_monitor *monitor);
bool shoal_tier_monitor_redis_up(const shoal_tier_monitor *monitor);
/* With a separate cache instance (SHOAL_CACHE_URL) it is probed too, and
 * /readyz reports it as "cache"; without one, cache_up is redis_up. */
bool shoal_tier_monitor_cache_separate(const shoal_tier_monitor *monitor);
bool shoal_tier_monitor_cache_up(const shoal_tier_monitor *monitor);

/* The extension that routes /healthz (on both listeners) and /readyz (on
 * the admin listener only), reading monitor, which must outlive the app. */
shoal_extension shoal_health_extension(shoal_tier_monitor *monitor);

#endif
