/* Stable VIP allocation: see include/aegis/vip.h.
 *
 * State is a host -> slot map (open addressing, linear probing, load factor <= 0.5) whose host strings
 * live in one arena. An update never edits the live state: it builds the next state beside it and swaps
 * only when every host got a slot, so a failure (full range, no memory) leaves the previous allocation
 * exactly as it was. Lookups hash the host and probe; they allocate nothing. */
#include "aegis/vip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aegis/arena.h"

#define SLOT_WORDS ((AEGIS_VIP_SLOTS + 2 + 63) / 64)

struct entry {
	const char *host; /* NULL = empty bucket */
	uint32_t hash;
	uint32_t slot;
};

struct state {
	struct aegis_arena arena; /* host strings */
	struct entry *map;
	size_t cap; /* power of two, 0 when nothing was ever added */
	size_t n;
};

struct aegis_vip_alloc {
	struct state st;
};

static uint32_t host_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

static void state_init(struct state *st)
{
	aegis_arena_init(&st->arena, 16 * 1024, 0);
	st->map = NULL;
	st->cap = 0;
	st->n = 0;
}

static void state_free(struct state *st)
{
	aegis_arena_free(&st->arena);
	free(st->map);
	st->map = NULL;
	st->cap = 0;
	st->n = 0;
}

static const struct entry *state_find(const struct state *st, const char *host, uint32_t h)
{
	if (st->cap == 0)
		return NULL;
	size_t mask = st->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct entry *e = &st->map[i];
		if (e->host == NULL)
			return NULL;
		if (e->hash == h && strcmp(e->host, host) == 0)
			return e;
	}
}

/* Sizes the map for `want` entries before any insert, so inserts never rehash half way. */
static int state_reserve(struct state *st, size_t want)
{
	size_t cap = 16;
	while (cap < want * 2)
		cap *= 2;
	if (cap <= st->cap)
		return 0;
	struct entry *map = calloc(cap, sizeof(*map));
	if (map == NULL)
		return AEGIS_ENOMEM;
	for (size_t i = 0; i < st->cap; i++) {
		const struct entry *e = &st->map[i];
		if (e->host == NULL)
			continue;
		size_t j = e->hash & (cap - 1);
		while (map[j].host != NULL)
			j = (j + 1) & (cap - 1);
		map[j] = *e;
	}
	free(st->map);
	st->map = map;
	st->cap = cap;
	return 0;
}

/* Inserts a host that is known to be absent; the map has room (state_reserve). */
static int state_put(struct state *st, const char *host, uint32_t h, uint32_t slot)
{
	char *copy = aegis_arena_strdup(&st->arena, host);
	if (copy == NULL)
		return AEGIS_ENOMEM;
	size_t mask = st->cap - 1;
	size_t i = h & mask;
	while (st->map[i].host != NULL)
		i = (i + 1) & mask;
	st->map[i] = (struct entry){.host = copy, .hash = h, .slot = slot};
	st->n++;
	return 0;
}

static bool slot_used(const uint64_t *bits, uint32_t s)
{
	return (bits[s / 64] >> (s % 64)) & 1;
}

static void slot_mark(uint64_t *bits, uint32_t s)
{
	bits[s / 64] |= (uint64_t)1 << (s % 64);
}

struct aegis_vip_alloc *aegis_vip_alloc_new(void)
{
	struct aegis_vip_alloc *va = calloc(1, sizeof(*va));
	if (va != NULL)
		state_init(&va->st);
	return va;
}

void aegis_vip_alloc_free(struct aegis_vip_alloc *va)
{
	if (va == NULL)
		return;
	state_free(&va->st);
	free(va);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The hosts that need a VIP: every ServiceEntry host of an entry without addresses, sorted, unique. */
static int wanted_hosts(const struct aegis_config *cfg, const char ***out, size_t *n_out)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		if (cfg->service_entries[i].n_addresses == 0)
			n += cfg->service_entries[i].n_hosts;
	}
	const char **v = malloc((n ? n : 1) * sizeof(*v));
	if (v == NULL)
		return AEGIS_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct aegis_service_entry *se = &cfg->service_entries[i];
		if (se->n_addresses != 0)
			continue;
		for (size_t j = 0; j < se->n_hosts; j++) {
			if (se->hosts[j][0] != '\0')
				v[k++] = se->hosts[j];
		}
	}
	qsort(v, k, sizeof(*v), cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < k; i++) {
		if (u == 0 || strcmp(v[u - 1], v[i]) != 0)
			v[u++] = v[i];
	}
	*out = v;
	*n_out = u;
	return 0;
}

int aegis_vip_alloc_update(struct aegis_vip_alloc *va, const struct aegis_config *cfg)
{
	const char **hosts = NULL;
	size_t n = 0;
	uint64_t *bits = NULL;
	struct state next;
	state_init(&next);
	int rc = wanted_hosts(cfg, &hosts, &n);
	if (rc != 0)
		return rc;
	if (n > AEGIS_VIP_SLOTS) {
		rc = AEGIS_ELIMIT;
		goto out;
	}
	bits = calloc(SLOT_WORDS, sizeof(*bits));
	rc = bits == NULL ? AEGIS_ENOMEM : state_reserve(&next, n);
	if (rc != 0)
		goto out;
	/* Hosts that already have a slot keep it; they are placed first so that no newcomer can take it. */
	size_t n_new = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t h = host_hash(hosts[i]);
		const struct entry *e = state_find(&va->st, hosts[i], h);
		if (e == NULL) {
			hosts[n_new++] = hosts[i]; /* compacts the newcomers in place, still sorted */
			continue;
		}
		slot_mark(bits, e->slot);
		rc = state_put(&next, hosts[i], h, e->slot);
		if (rc != 0)
			goto out;
	}
	/* Newcomers in name order: the slot their name hashes to, else the next free one. n <= SLOTS, so
	 * the probe always finds a free slot. */
	for (size_t i = 0; i < n_new; i++) {
		uint32_t h = host_hash(hosts[i]);
		uint32_t s = h % AEGIS_VIP_SLOTS + 1;
		for (uint32_t tries = 0; slot_used(bits, s); tries++) {
			if (tries == AEGIS_VIP_SLOTS) {
				rc = AEGIS_ELIMIT; /* cannot happen while n <= SLOTS; a bound beats a hang */
				goto out;
			}
			s = s == AEGIS_VIP_SLOTS ? 1 : s + 1;
		}
		slot_mark(bits, s);
		rc = state_put(&next, hosts[i], h, s);
		if (rc != 0)
			goto out;
	}
	state_free(&va->st);
	va->st = next;
	state_init(&next);
out:
	state_free(&next);
	free(bits);
	free(hosts);
	return rc;
}

static void slot_to_addrs(uint32_t slot, uint8_t v4[4], uint8_t v6[16])
{
	if (v4 != NULL) {
		v4[0] = 240;
		v4[1] = 240;
		v4[2] = (uint8_t)(slot >> 8);
		v4[3] = (uint8_t)slot;
	}
	if (v6 != NULL) {
		memset(v6, 0, 16);
		v6[0] = 0x20;
		v6[1] = 0x01;
		v6[3] = 0x02;
		v6[14] = (uint8_t)(slot >> 8);
		v6[15] = (uint8_t)slot;
	}
}

int aegis_vip_get(const struct aegis_vip_alloc *va, const char *host, uint8_t v4[4], uint8_t v6[16])
{
	const struct entry *e = state_find(&va->st, host, host_hash(host));
	if (e == NULL)
		return AEGIS_ENOTFOUND;
	slot_to_addrs(e->slot, v4, v6);
	return 0;
}

size_t aegis_vip_alloc_count(const struct aegis_vip_alloc *va)
{
	return va->st.n;
}

static int cmp_entry_host(const void *a, const void *b)
{
	return strcmp((*(const struct entry *const *)a)->host, (*(const struct entry *const *)b)->host);
}

int aegis_vip_alloc_save(const struct aegis_vip_alloc *va, const char *path)
{
	/* Written sorted (diffable) to a temporary file and renamed, so a crash never leaves half a map. */
	char tmp[4096];
	int rc = 0;
	FILE *f = NULL;
	const struct entry **v = malloc((va->st.n ? va->st.n : 1) * sizeof(*v));
	if (v == NULL)
		return AEGIS_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < va->st.cap; i++) {
		if (va->st.map[i].host != NULL)
			v[k++] = &va->st.map[i];
	}
	qsort(v, k, sizeof(*v), cmp_entry_host);
	int w = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (w < 0 || (size_t)w >= sizeof(tmp)) {
		rc = AEGIS_EINVAL;
		goto out;
	}
	f = fopen(tmp, "w");
	if (f == NULL) {
		rc = AEGIS_EIO;
		goto out;
	}
	for (size_t i = 0; i < k; i++) {
		if (fprintf(f, "%s %u\n", v[i]->host, (unsigned)v[i]->slot) < 0) {
			rc = AEGIS_EIO;
			goto out;
		}
	}
	if (fflush(f) != 0)
		rc = AEGIS_EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = AEGIS_EIO;
	f = NULL;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = AEGIS_EIO;
	if (rc != 0) {
		int saved = errno;
		unlink(tmp);
		errno = saved;
	}
out:
	if (f != NULL) {
		fclose(f);
		unlink(tmp);
	}
	free(v);
	return rc;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Parses one "host slot" line (without its newline) in place. Returns 1 with *host and *slot set, 0 for
 * a blank or # comment line, AEGIS_EPARSE otherwise. */
static int parse_line(char *p, size_t len, const char **host, uint32_t *slot)
{
	size_t i = 0;
	while (i < len && is_space(p[i]))
		i++;
	if (i == len || p[i] == '#')
		return 0;
	size_t hs = i;
	while (i < len && !is_space(p[i]))
		i++;
	size_t he = i;
	while (i < len && is_space(p[i]))
		i++;
	size_t ss = i;
	while (i < len && p[i] >= '0' && p[i] <= '9')
		i++;
	size_t se = i;
	while (i < len && is_space(p[i]))
		i++;
	if (i != len || se == ss || se - ss > 5 || he - hs > 253)
		return AEGIS_EPARSE;
	uint32_t v = 0;
	for (size_t k = ss; k < se; k++)
		v = v * 10 + (uint32_t)(p[k] - '0');
	if (v < 1 || v > AEGIS_VIP_SLOTS)
		return AEGIS_EPARSE;
	for (size_t k = hs; k < he; k++) {
		if (p[k] == '\0')
			return AEGIS_EPARSE;
	}
	p[he] = '\0';
	*host = p + hs;
	*slot = v;
	return 1;
}

int aegis_vip_alloc_load(struct aegis_vip_alloc *va, const char *path, struct aegis_diag *diag)
{
	char *buf = NULL;
	uint64_t *bits = NULL;
	struct state next;
	state_init(&next);
	int rc = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
	size_t len = 0, cap = 0;
	for (;;) {
		if (cap - len < 4096) {
			/* A map of every slot is about 2 MiB; anything far beyond that is not ours. */
			if (cap >= (64u << 20)) {
				rc = aegis_diag_set(diag, AEGIS_ELIMIT, path, 0, 0, "file too large");
				goto out;
			}
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, cap + 1);
			if (nb == NULL) {
				rc = AEGIS_ENOMEM;
				goto out;
			}
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		if (got == 0)
			break;
		len += got;
	}
	if (ferror(f)) {
		rc = aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "read error");
		goto out;
	}
	bits = calloc(SLOT_WORDS, sizeof(*bits));
	if (bits == NULL) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	/* Existing entries first (load merges), then every line; a host or slot seen twice is an error. */
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	/* Slots are unique, so no more than AEGIS_VIP_SLOTS entries can ever be accepted. */
	size_t want = va->st.n + lines;
	rc = state_reserve(&next, want < AEGIS_VIP_SLOTS ? want : AEGIS_VIP_SLOTS);
	for (size_t i = 0; rc == 0 && i < va->st.cap; i++) {
		const struct entry *e = &va->st.map[i];
		if (e->host != NULL) {
			slot_mark(bits, e->slot);
			rc = state_put(&next, e->host, e->hash, e->slot);
		}
	}
	if (rc != 0)
		goto out;
	int line = 0;
	for (size_t pos = 0; pos < len;) {
		line++;
		char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;
		const char *host;
		uint32_t slot;
		int r = parse_line(buf + pos, end - pos, &host, &slot);
		pos = end + 1;
		if (r == 0)
			continue;
		if (r < 0) {
			rc = aegis_diag_set(diag, AEGIS_EPARSE, path, line, 0,
			                    "expected \"host slot\" with slot 1..%d", AEGIS_VIP_SLOTS);
			goto out;
		}
		uint32_t h = host_hash(host);
		if (state_find(&next, host, h) != NULL) {
			rc = aegis_diag_set(diag, AEGIS_EPARSE, path, line, 0, "host %s listed twice", host);
			goto out;
		}
		if (slot_used(bits, slot)) {
			rc = aegis_diag_set(diag, AEGIS_EPARSE, path, line, 0, "slot %u already taken",
			                    (unsigned)slot);
			goto out;
		}
		slot_mark(bits, slot);
		rc = state_put(&next, host, h, slot);
		if (rc != 0)
			goto out;
	}
	state_free(&va->st);
	va->st = next;
	state_init(&next);
out:
	state_free(&next);
	free(bits);
	free(buf);
	fclose(f);
	return rc;
}
