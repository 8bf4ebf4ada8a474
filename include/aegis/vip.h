/* Stable VIP auto-allocation for ServiceEntries without `addresses`, from 240.240.0.0/16 and
 * 2001:2::/48 (the ranges Istio uses, so users recognise them).
 *
 * Stability: a host keeps its VIP for as long as it exists, whatever other entries come and go; a new
 * host gets the slot its name hashes to, or the next free one, so the same host set allocated in the same
 * order gives the same VIPs after a restart; two hosts never share a slot. The IPv4 and IPv6 VIPs of a
 * host use the same slot number (240.240.X.Y and 2001:2::XY, the slot in the low 16 bits). aegis-xds persists
 * the map so that its restarts keep VIPs even when the order of arrival differs. */
#ifndef AEGIS_VIP_H
#define AEGIS_VIP_H

#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/model.h"

#define AEGIS_VIP_SLOTS 65534 /* slots 1..65534; .0.0 and .255.255 are never handed out */

struct aegis_vip_alloc;

struct aegis_vip_alloc *aegis_vip_alloc_new(void);
void aegis_vip_alloc_free(struct aegis_vip_alloc *va);

/* Brings the allocation in line with cfg: every ServiceEntry host without addresses has a slot
 * afterwards (hosts new to the allocator are taken in sorted order), hosts no longer present are
 * released. Returns 0, AEGIS_ELIMIT when the range is full, or AEGIS_ENOMEM; on failure the previous
 * allocation is unchanged. */
int aegis_vip_alloc_update(struct aegis_vip_alloc *va, const struct aegis_config *cfg) AEGIS_WUR;

/* Looks up host (lower case, presentation form, may be "*.x"). Returns 0 and fills v4/v6 (either may be
 * NULL), or AEGIS_ENOTFOUND. */
int aegis_vip_get(const struct aegis_vip_alloc *va, const char *host, uint8_t v4[4], uint8_t v6[16]);

/* Persistence for aegis-xds: one "host slot" line each. load merges into an empty allocator. */
int aegis_vip_alloc_save(const struct aegis_vip_alloc *va, const char *path) AEGIS_WUR;
int aegis_vip_alloc_load(struct aegis_vip_alloc *va, const char *path, struct aegis_diag *diag) AEGIS_WUR;

size_t aegis_vip_alloc_count(const struct aegis_vip_alloc *va);

#endif
