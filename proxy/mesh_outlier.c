/* Passive outlier ejection: see mesh_outlier.h. */
#include "mesh_outlier.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEFAULT_ERRORS  5
#define DEFAULT_BASE_MS (30u * 1000u)

struct entry {
	struct aegis_routes_addr addr;
	bool used;
	uint32_t consecutive;
	uint32_t times_ejected;
	uint64_t ejected_until; /* 0 = not ejected */
};

struct aegis_outlier {
	struct entry *e;
	size_t mask;
	struct aegis_outlier_stats stats;
};

static uint64_t hash_addr(const struct aegis_routes_addr *a)
{
	/* FNV-1a over family, address and port: the inputs are addresses from our own config, not a peer's.
	 */
	uint64_t h = 1469598103934665603ull;
	size_t n = a->family == AF_INET ? 4 : 16;
	h = (h ^ a->family) * 1099511628211ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ a->ip[i]) * 1099511628211ull;
	h = (h ^ (a->port & 0xff)) * 1099511628211ull;
	h = (h ^ (a->port >> 8)) * 1099511628211ull;
	return h;
}

static bool same(const struct aegis_routes_addr *a, const struct aegis_routes_addr *b)
{
	return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, 16) == 0;
}

struct aegis_outlier *aegis_outlier_new(size_t capacity)
{
	size_t n = 16;
	while (n < capacity && n < ((size_t)1 << 24))
		n <<= 1;
	struct aegis_outlier *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	o->e = calloc(n, sizeof(*o->e));
	if (o->e == NULL) {
		free(o);
		return NULL;
	}
	o->mask = n - 1;
	return o;
}

void aegis_outlier_free(struct aegis_outlier *o)
{
	if (o == NULL)
		return;
	free(o->e);
	free(o);
}

/* Linear probing over at most 8 slots: found, else the first free, else a recyclable (not ejected) one. */
static struct entry *slot(struct aegis_outlier *o, const struct aegis_routes_addr *a, uint64_t now_ms)
{
	size_t h = (size_t)hash_addr(a);
	struct entry *free_e = NULL, *recycle = NULL;
	for (size_t i = 0; i < 8; i++) {
		struct entry *e = &o->e[(h + i) & o->mask];
		if (e->used && same(&e->addr, a))
			return e;
		if (!e->used && free_e == NULL)
			free_e = e;
		if (e->used && e->ejected_until <= now_ms && recycle == NULL)
			recycle = e;
	}
	struct entry *e = free_e ? free_e : recycle;
	if (e != NULL) {
		memset(e, 0, sizeof(*e));
		e->used = true;
		e->addr = *a;
	}
	return e;
}

static const struct entry *find(const struct aegis_outlier *o, const struct aegis_routes_addr *a)
{
	size_t h = (size_t)hash_addr(a);
	for (size_t i = 0; i < 8; i++) {
		const struct entry *e = &o->e[(h + i) & o->mask];
		if (e->used && same(&e->addr, a))
			return e;
	}
	return NULL;
}

bool aegis_outlier_report(struct aegis_outlier *o, const struct aegis_routes_addr *a, bool ok,
                          uint32_t errors, uint32_t base_ms, uint64_t now_ms)
{
	if (errors == 0)
		errors = DEFAULT_ERRORS;
	if (base_ms == 0)
		base_ms = DEFAULT_BASE_MS;
	if (ok) {
		/* Only an existing entry needs resetting: a healthy endpoint need not occupy a slot. */
		struct entry *e = (struct entry *)find(o, a);
		if (e == NULL)
			return false;
		e->consecutive = 0;
		if (e->ejected_until != 0 && e->ejected_until <= now_ms) {
			e->ejected_until = 0;
			e->times_ejected = 0;
			o->stats.unejections++;
		}
		return false;
	}
	o->stats.failures++;
	struct entry *e = slot(o, a, now_ms);
	if (e == NULL)
		return false; /* every probed slot holds an ejected endpoint: forget this failure */
	if (e->ejected_until != 0 && e->ejected_until > now_ms)
		return false; /* already out (a connect that was in flight when it was ejected) */
	if (++e->consecutive < errors)
		return false;
	e->consecutive = 0;
	if (e->times_ejected < 64)
		e->times_ejected++;
	uint64_t dur = (uint64_t)base_ms * e->times_ejected;
	if (dur > AEGIS_OUTLIER_MAX_EJECT_MS)
		dur = AEGIS_OUTLIER_MAX_EJECT_MS;
	e->ejected_until = now_ms + dur;
	o->stats.ejections++;
	return true;
}

bool aegis_outlier_ejected(const struct aegis_outlier *o, const struct aegis_routes_addr *a, uint64_t now_ms)
{
	if (o == NULL)
		return false;
	const struct entry *e = find(o, a);
	return e != NULL && e->ejected_until > now_ms;
}

void aegis_outlier_stats(const struct aegis_outlier *o, struct aegis_outlier_stats *out)
{
	*out = o->stats;
}
