/* What the admin endpoint shows about the forwarder and its cache: the config_dump sections "upstreams"
 * (every server with its zone, health and counters) and "cache" (capacities in use and counters), and
 * their metrics. Uses only the public accessors of upstream.h and dns_cache.h. Loop thread only. */
#ifndef AEGIS_ADMIN_FORWARD_H
#define AEGIS_ADMIN_FORWARD_H

#include "admin.h"
#include "aegis/err.h"
#include "dns_cache.h"
#include "upstream.h"

/* Registers "upstreams" (when up is not NULL) and "cache" (when cache is not NULL) with their metrics.
 * Both are borrowed and must outlive the admin. Returns 0 or an aegis_err from the registry. */
int aegis_admin_forward_register(struct aegis_admin *a, struct aegis_upstream *up,
                                 struct aegis_cache *cache) AEGIS_WUR;

#endif
