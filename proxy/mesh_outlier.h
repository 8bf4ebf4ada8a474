/* Passive outlier detection on connect failures, sans-I/O (time passed in). The state is keyed by endpoint
 * address and port, not by route table, so an ejection survives a configuration reload. It belongs to one
 * loop thread: no locking.
 *
 * An endpoint is ejected after `errors` consecutive connect failures, for base_ms times the number of
 * times it has been ejected (capped at AEGIS_OUTLIER_MAX_EJECT_MS); a successful connect resets the count
 * of consecutive failures, and a success after an ejection has expired resets the multiplier. The map has
 * a fixed capacity: when it is full, an entry that is not ejected is recycled (the table never grows). */
#ifndef AEGIS_MESH_OUTLIER_H
#define AEGIS_MESH_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "mesh_routes.h"

#define AEGIS_OUTLIER_MAX_EJECT_MS (300u * 1000u)

struct aegis_outlier;

struct aegis_outlier_stats {
	uint64_t ejections;
	uint64_t unejections; /* ejections found expired */
	uint64_t failures;
};

/* capacity: endpoints tracked at once (rounded up to a power of two). NULL on allocation failure. */
struct aegis_outlier *aegis_outlier_new(size_t capacity);
void aegis_outlier_free(struct aegis_outlier *o);

/* Records one connect attempt to a. errors and base_ms come from the endpoint's cluster (0 = the defaults,
 * 5 and 30 s). Returns true when this report ejected the endpoint. */
bool aegis_outlier_report(struct aegis_outlier *o, const struct aegis_routes_addr *a, bool ok,
                          uint32_t errors, uint32_t base_ms, uint64_t now_ms);

/* True while a is ejected at now_ms. o may be NULL (nothing is ejected). */
bool aegis_outlier_ejected(const struct aegis_outlier *o, const struct aegis_routes_addr *a, uint64_t now_ms);

void aegis_outlier_stats(const struct aegis_outlier *o, struct aegis_outlier_stats *out);

#endif
