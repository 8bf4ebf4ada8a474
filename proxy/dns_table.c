/* The DNS name table: see dns_table.h, docs/dns-table.md for the layout and its reasons.
 *
 * Building happens in two stages. The builder collects nodes in fixed blocks with a temporary hash map
 * from name to node, so the same name coming from several sources (two ServiceEntries, an NDS entry and
 * a Service) merges into one node; names and records live in a scratch arena. Freezing then sorts the
 * nodes, measures exactly what the final table needs (a name that is the tail of a longer one is stored
 * once, inside it; a reverse name is not stored at all, only its address) and copies it into one block
 * of memory sized to fit, where nodes reach their names and records by 32-bit offsets. The scratch
 * space is dropped whole. */
#include "dns_table.h"

#include <arpa/inet.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aegis/log.h"
#include "aegis/vip.h"

#define EMPTY     UINT32_MAX
#define MAX_ADDRS AEGIS_DNS_MAX_ADDRS_PER_NAME

/* Counts live in 13-bit fields of struct aegis_dns_node. */
_Static_assert(MAX_ADDRS < (1u << 13), "record counts must fit the node's 13-bit fields");
_Static_assert(sizeof(struct aegis_dns_node) == 16, "struct aegis_dns_node is 16 bytes");

/* A bucket of the lookup index is one uint32_t: (node index + 1) << 8 | the hash's low 8 bits, 0 when
 * free. The 8-bit fingerprint rejects 255 of 256 non-matching buckets without touching a node, and a
 * 4-byte bucket keeps the index of 10k ServiceEntries (30k names) in 240 KiB. The node index therefore has 24
 * bits. */
#define FP_BITS   8
#define FP_MASK   0xffu
#define MAX_NODES ((1u << (32 - FP_BITS)) - 2)

/* One block: this header, the nodes, both indexes, then the names and records in node order. */
struct aegis_table {
	atomic_uint refs;
	size_t bytes; /* the whole block, header included */
	const struct aegis_dns_node *nodes;
	size_t n_nodes;
	const uint32_t *idx; /* exact names */
	uint32_t idx_cap;
	const uint32_t *widx; /* wildcard nodes, keyed by their parent name */
	uint32_t widx_cap;
	size_t n_wild;
};

/* ---- builder ---------------------------------------------------------------------------------------- */

struct bsrv {
	uint16_t port;
	uint32_t target; /* builder node whose name is the target */
};

/* A node while building: 64 bytes. Vectors have no capacity field: their capacity is the count rounded
 * up to a power of two (at least 2), so it follows from the count. */
struct bnode {
	uint8_t *name;
	uint32_t hash;
	uint8_t len;
	uint8_t kind;
	bool wild : 1;
	bool mirror : 1; /* only a mirror of another name (clusterset.local, .global): no PTR to it */
	bool no_ptr : 1; /* an alias that never owns a PTR (<svc>.<cluster>.global) */
	uint8_t cname_len;
	uint16_t n_a, n_aaaa, n_srv, n_ptr;
	uint8_t *a;    /* 4 bytes each */
	uint8_t *aaaa; /* 16 bytes each */
	struct bsrv *srv;
	uint32_t *ptr; /* owner builder nodes */
	uint8_t *cname;
};

/* Nodes live in fixed blocks: growing never copies them (and never holds two copies at once), and a
 * pointer to a node stays valid while others are added. */
#define BLOCK_SHIFT 12
#define BLOCK_NODES (1u << BLOCK_SHIFT)

struct builder {
	struct aegis_arena scratch;
	struct bnode **blocks;
	size_t n_blocks;
	size_t n;
	uint32_t *map; /* name -> node index, open addressing */
	size_t map_cap;
	const struct aegis_config *cfg;
	const char *local_cluster; /* "" = none */
	const char *domain;        /* presentation, no trailing dot */
	struct aegis_vip_alloc *vips;
	struct aegis_diag *diag;
	size_t dropped;               /* addresses over the per-name cap */
	const bool *global_ambiguous; /* per cfg->services index: its <svc>.<cluster>.global is shared */
};

static inline struct bnode *bn_at(const struct builder *b, size_t i)
{
	return &b->blocks[i >> BLOCK_SHIFT][i & (BLOCK_NODES - 1)];
}

static int builder_init(struct builder *b)
{
	memset(b, 0, sizeof(*b));
	aegis_arena_init(&b->scratch, 256 * 1024, 0);
	b->map_cap = 1024;
	b->map = malloc(b->map_cap * sizeof(*b->map));
	if (b->map == NULL)
		return AEGIS_ENOMEM;
	memset(b->map, 0xff, b->map_cap * sizeof(*b->map));
	return 0;
}

static void builder_free(struct builder *b)
{
	aegis_arena_free(&b->scratch);
	for (size_t i = 0; i < b->n_blocks; i++)
		free(b->blocks[i]);
	free(b->blocks);
	free(b->map);
}

static int map_grow(struct builder *b)
{
	size_t cap = b->map_cap * 2;
	uint32_t *map = malloc(cap * sizeof(*map));
	if (map == NULL)
		return AEGIS_ENOMEM;
	memset(map, 0xff, cap * sizeof(*map));
	for (size_t i = 0; i < b->n; i++) {
		size_t j = bn_at(b, i)->hash & (cap - 1);
		while (map[j] != EMPTY)
			j = (j + 1) & (cap - 1);
		map[j] = (uint32_t)i;
	}
	free(b->map);
	b->map = map;
	b->map_cap = cap;
	return 0;
}

/* Kinds merge so that one name is one node: addresses beat a CNAME (a CNAME cannot live beside other
 * data, and the addresses are the mesh's own answer); otherwise the first kind stays. */
static void merge_kind(struct bnode *n, uint8_t kind)
{
	if (n->kind == AEGIS_NODE_CNAME && kind == AEGIS_NODE_HOST) {
		n->kind = AEGIS_NODE_HOST;
		n->cname = NULL;
		n->cname_len = 0;
	}
}

/* Finds or creates the node for a lower-case wire name; *out receives its index. A name stays a mirror
 * (see struct bnode) only while every source of it is one. */
static int node_get_ex(struct builder *b, const uint8_t *name, size_t len, bool wild, bool mirror,
                       uint8_t kind, uint32_t *out)
{
	uint32_t h = aegis_dns_name_hash(name, len);
	size_t mask = b->map_cap - 1;
	size_t i = h & mask;
	for (; b->map[i] != EMPTY; i = (i + 1) & mask) {
		struct bnode *n = bn_at(b, b->map[i]);
		if (n->hash == h && n->wild == wild && n->len == len && memcmp(n->name, name, len) == 0) {
			merge_kind(n, kind);
			n->mirror = n->mirror && mirror;
			*out = b->map[i];
			return 0;
		}
	}
	if (b->n >= UINT32_MAX - 1)
		return AEGIS_ENOMEM;
	if (b->n == b->n_blocks * BLOCK_NODES) {
		struct bnode **blocks = realloc(b->blocks, (b->n_blocks + 1) * sizeof(*blocks));
		if (blocks == NULL)
			return AEGIS_ENOMEM;
		b->blocks = blocks;
		blocks[b->n_blocks] = malloc(BLOCK_NODES * sizeof(struct bnode));
		if (blocks[b->n_blocks] == NULL)
			return AEGIS_ENOMEM;
		b->n_blocks++;
	}
	uint8_t *copy = aegis_arena_memdup(&b->scratch, name, len);
	if (copy == NULL)
		return AEGIS_ENOMEM;
	struct bnode *n = bn_at(b, b->n);
	memset(n, 0, sizeof(*n));
	n->name = copy;
	n->len = (uint8_t)len;
	n->kind = wild ? AEGIS_NODE_WILDCARD : kind;
	n->wild = wild;
	n->mirror = mirror;
	n->no_ptr = false;
	n->hash = h;
	b->map[i] = (uint32_t)b->n;
	*out = (uint32_t)b->n++;
	if (b->n * 2 > b->map_cap)
		return map_grow(b);
	return 0;
}

static int node_get(struct builder *b, const uint8_t *name, size_t len, bool wild, uint8_t kind,
                    uint32_t *out)
{
	return node_get_ex(b, name, len, wild, false, kind, out);
}

/* Appends one element to an arena vector of *n elements, doubling its capacity when *n reaches it. */
static int vec_push(struct builder *b, void *vec_ptr, uint16_t *n, const void *elem, size_t size)
{
	void **vec = vec_ptr;
	if (*n == 0 || (*n >= 2 && (*n & (*n - 1)) == 0)) {
		size_t ncap = *n ? (size_t)*n * 2 : 2;
		void *nv = aegis_arena_grow(&b->scratch, *vec, *n, ncap, size);
		if (nv == NULL)
			return AEGIS_ENOMEM;
		*vec = nv;
	}
	memcpy((uint8_t *)*vec + (size_t)*n * size, elem, size);
	(*n)++;
	return 0;
}

/* Adds an address (4 or 16 bytes) unless the node has it already or is at the per-name cap. */
static int add_addr(struct builder *b, uint32_t idx, const uint8_t *addr, size_t alen)
{
	struct bnode *n = bn_at(b, idx);
	bool v4 = alen == 4;
	const uint8_t *have = v4 ? n->a : n->aaaa;
	uint32_t count = v4 ? n->n_a : n->n_aaaa;
	for (uint32_t i = 0; i < count; i++) {
		if (memcmp(have + (size_t)i * alen, addr, alen) == 0)
			return 0;
	}
	if (n->n_a + n->n_aaaa >= MAX_ADDRS) {
		b->dropped++;
		return 0;
	}
	if (v4)
		return vec_push(b, &n->a, &n->n_a, addr, 4);
	return vec_push(b, &n->aaaa, &n->n_aaaa, addr, 16);
}

static int add_srv(struct builder *b, uint32_t idx, uint16_t port, uint32_t target)
{
	struct bnode *n = bn_at(b, idx);
	for (uint32_t i = 0; i < n->n_srv; i++) {
		if (n->srv[i].port == port && n->srv[i].target == target)
			return 0;
	}
	if (n->n_srv >= MAX_ADDRS) {
		b->dropped++;
		return 0;
	}
	struct bsrv s = {.port = port, .target = target};
	return vec_push(b, &n->srv, &n->n_srv, &s, sizeof(s));
}

static int set_cname(struct builder *b, uint32_t idx, const uint8_t *target, size_t len)
{
	struct bnode *n = bn_at(b, idx);
	if (n->kind != AEGIS_NODE_CNAME || n->cname_len != 0)
		return 0;
	n->cname = aegis_arena_memdup(&b->scratch, target, len);
	if (n->cname == NULL)
		return AEGIS_ENOMEM;
	n->cname_len = (uint8_t)len;
	return 0;
}

/* ---- names and addresses ---------------------------------------------------------------------------- */

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

/* Presentation -> lower-case wire, with the host-name checks a loader may have skipped: labels of
 * letters, digits, '-' and '_' only. A leading "*." marks a wildcard, returned without the "*" label.
 * Returns the wire length or AEGIS_EINVAL (also for the root, which is nobody's host). */
static int host_wire(const char *s, uint8_t out[AEGIS_DNS_NAME_BUF], bool *wild)
{
	*wild = false;
	if (s[0] == '*' && s[1] == '.') {
		*wild = true;
		s += 2;
	}
	for (const char *p = s; *p; p++) {
		if (!host_char(*p) && *p != '.')
			return AEGIS_EINVAL;
	}
	int n = aegis_dns_name_from_str(s, out);
	return n <= 1 ? AEGIS_EINVAL : n;
}

/* Formats a name from parts and converts it like host_wire (wildcards refused). */
static int fmt_wire(uint8_t out[AEGIS_DNS_NAME_BUF], const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static int fmt_wire(uint8_t out[AEGIS_DNS_NAME_BUF], const char *fmt, ...)
{
	char tmp[4 * AEGIS_DNS_NAME_BUF];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= sizeof(tmp))
		return AEGIS_EINVAL;
	bool wild;
	int n = host_wire(tmp, out, &wild);
	return wild ? AEGIS_EINVAL : n;
}

/* Parses an IP or a host-sized CIDR ("10.0.0.1", "10.0.0.1/32", "2001:db8::1/128") into out; returns 4,
 * 16, or 0 when the text is not one (wider prefixes name a range, not an address to answer with). */
static size_t parse_addr(const char *s, uint8_t out[16])
{
	char tmp[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	size_t alen;
	if (inet_pton(AF_INET, tmp, out) == 1)
		alen = 4;
	else if (inet_pton(AF_INET6, tmp, out) == 1)
		alen = 16;
	else
		return 0;
	if (slash == NULL)
		return alen;
	unsigned prefix = 0;
	const char *p = slash + 1;
	if (*p == '\0')
		return 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || prefix > 128)
			return 0;
		prefix = prefix * 10 + (unsigned)(*p - '0');
	}
	return prefix == alen * 8 ? alen : 0;
}

static int add_addr_str(struct builder *b, uint32_t idx, const char *s)
{
	uint8_t ip[16];
	size_t alen = parse_addr(s, ip);
	return alen ? add_addr(b, idx, ip, alen) : 0;
}

/* ---- ServiceEntries --------------------------------------------------------------------------------- */

static int add_service_entry(struct builder *b, const struct aegis_service_entry *se)
{
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	for (size_t h = 0; h < se->n_hosts; h++) {
		const char *host = se->hosts[h];
		bool wild;
		int len = host_wire(host, wire, &wild);
		if (len < 0)
			return aegis_diag_set(b->diag, AEGIS_EINVAL, se->meta.source, se->meta.line, 0,
			                      "ServiceEntry %s: invalid host name \"%s\"", se->meta.name,
			                      host);
		uint32_t idx;
		int rc = node_get(b, wire, (size_t)len, wild, AEGIS_NODE_HOST, &idx);
		for (size_t i = 0; rc == 0 && i < se->n_addresses; i++)
			rc = add_addr_str(b, idx, se->addresses[i]);
		if (rc == 0 && se->n_addresses == 0 && b->vips != NULL) {
			uint8_t v4[4], v6[16];
			if (aegis_vip_get(b->vips, host, v4, v6) == 0) {
				rc = add_addr(b, idx, v4, 4);
				if (rc == 0)
					rc = add_addr(b, idx, v6, 16);
			}
		}
		if (rc != 0)
			return rc;
		if (wild)
			continue; /* "_http._tcp.*.x" would put "*" where no client can use it */
		for (size_t p = 0; p < se->n_ports; p++) {
			const struct aegis_port *port = &se->ports[p];
			if (port->name[0] == '\0' || port->number == 0 || port->number > 65535)
				continue;
			const char *proto = strcasecmp(port->protocol, "UDP") == 0 ? "udp" : "tcp";
			int slen = fmt_wire(wire, "_%s._%s.%s", port->name, proto, host);
			if (slen < 0)
				continue; /* a port name that makes no DNS label: the host itself is fine */
			uint32_t sidx;
			rc = node_get(b, wire, (size_t)slen, false, AEGIS_NODE_SRV, &sidx);
			if (rc == 0)
				rc = add_srv(b, sidx, (uint16_t)port->number, idx);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

/* ---- Kubernetes Services ---------------------------------------------------------------------------- */

static const char *ns_of(const struct aegis_meta *m)
{
	return m->namespace_[0] ? m->namespace_ : "default";
}

static bool is_local(const struct builder *b, const char *cluster)
{
	return cluster[0] == '\0' || strcmp(cluster, b->local_cluster) == 0;
}

static int cmp_svc(const void *pa, const void *pb, void *ctx)
{
	const struct aegis_k8s_service *v = ctx;
	uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
	const struct aegis_meta *a = &v[ia].meta, *b = &v[ib].meta;
	int c = strcmp(ns_of(a), ns_of(b));
	if (c == 0)
		c = strcmp(a->name, b->name);
	if (c == 0)
		c = strcmp(a->cluster, b->cluster);
	return c ? c : (ia > ib) - (ia < ib);
}

/* Orders services by (cluster, name, namespace): same-named services of one cluster become adjacent. */
static int cmp_svc_cluster(const void *pa, const void *pb, void *ctx)
{
	const struct aegis_k8s_service *v = ctx;
	uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
	const struct aegis_meta *a = &v[ia].meta, *b = &v[ib].meta;
	int c = strcmp(a->cluster, b->cluster);
	if (c == 0)
		c = strcmp(a->name, b->name);
	if (c == 0)
		c = strcmp(ns_of(a), ns_of(b));
	return c ? c : (ia > ib) - (ia < ib);
}

/* Marks the services whose <svc>.<cluster>.global name another namespace of the same cluster also has.
 * That short form (DNS_BEHAVIOUR.md) carries no namespace, so when two namespaces share a service name it
 * would have to guess: it is left out instead, and <svc>.<ns>.<cluster>.global still answers. */
static void mark_global_ambiguous(const struct aegis_config *cfg, uint32_t *order, bool *amb)
{
	qsort_r(order, cfg->n_services, sizeof(*order), cmp_svc_cluster, (void *)cfg->services);
	for (size_t i = 0; i + 1 < cfg->n_services; i++) {
		const struct aegis_meta *a = &cfg->services[order[i]].meta,
		                        *n = &cfg->services[order[i + 1]].meta;
		if (strcmp(a->cluster, n->cluster) == 0 && strcmp(a->name, n->name) == 0 &&
		    strcmp(ns_of(a), ns_of(n)) != 0) {
			amb[order[i]] = true;
			amb[order[i + 1]] = true;
		}
	}
}

struct slice_ctx {
	const struct aegis_endpoint_slice *v;
	const struct builder *b;
};

static int cmp_slice(const void *pa, const void *pb, void *ctx)
{
	const struct slice_ctx *sc = ctx;
	uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
	const struct aegis_endpoint_slice *a = &sc->v[ia], *b = &sc->v[ib];
	int c = strcmp(ns_of(&a->meta), ns_of(&b->meta));
	if (c == 0)
		c = strcmp(a->service_name, b->service_name);
	if (c == 0)
		c = (int)!is_local(sc->b, a->meta.cluster) - (int)!is_local(sc->b, b->meta.cluster);
	if (c == 0)
		c = strcmp(a->meta.cluster, b->meta.cluster);
	return c ? c : (ia > ib) - (ia < ib);
}

/* One service as seen across clusters: the instances [s0, s1) of the sorted service order and its
 * slices [e0, e1) of the sorted slice order (local cluster first). */
struct svc_group {
	const struct aegis_k8s_service *const *inst;
	size_t n_inst;
	const struct aegis_endpoint_slice *const *slices;
	size_t n_slices;
	const char *name;
	const char *ns;
};

/* Adds the ready endpoints' addresses to node dst (EMPTY: none). With pod_suffix, endpoints that have
 * a hostname also get <hostname>.<pod_suffix> with their addresses. cluster NULL takes every cluster. */
static int add_ready(struct builder *b, const struct svc_group *g, const char *cluster, uint32_t dst,
                     const char *pod_suffix)
{
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	for (size_t s = 0; s < g->n_slices; s++) {
		const struct aegis_endpoint_slice *sl = g->slices[s];
		if (cluster != NULL && strcmp(sl->meta.cluster, cluster) != 0)
			continue;
		for (size_t e = 0; e < sl->n_endpoints; e++) {
			const struct aegis_slice_endpoint *ep = &sl->endpoints[e];
			if (!ep->ready)
				continue;
			uint32_t pod = EMPTY;
			if (pod_suffix != NULL && ep->hostname[0] != '\0') {
				int len = fmt_wire(wire, "%s.%s", ep->hostname, pod_suffix);
				if (len < 0)
					return aegis_diag_set(b->diag, AEGIS_EINVAL, sl->meta.source,
					                      sl->meta.line, 0,
					                      "EndpointSlice %s: invalid hostname \"%s\"",
					                      sl->meta.name, ep->hostname);
				int rc = node_get(b, wire, (size_t)len, false, AEGIS_NODE_HOST, &pod);
				if (rc != 0)
					return rc;
			}
			for (size_t a = 0; a < ep->n_addresses; a++) {
				uint8_t ip[16];
				size_t alen = parse_addr(ep->addresses[a], ip);
				if (alen == 0)
					continue; /* FQDN slices name hosts, not addresses */
				int rc = 0;
				if (pod != EMPTY)
					rc = add_addr(b, pod, ip, alen);
				if (rc == 0 && dst != EMPTY)
					rc = add_addr(b, dst, ip, alen);
				if (rc != 0)
					return rc;
			}
		}
	}
	return 0;
}

/* Fills node dst with what the instances of cluster `cluster` (NULL: the whole group for headless
 * endpoints) answer: a CNAME, ready endpoints, or cluster IPs. */
static int fill_from(struct builder *b, const struct svc_group *g, const struct aegis_k8s_service *first,
                     const char *cluster, bool all_endpoints, uint32_t dst)
{
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	if (first->type == AEGIS_SVC_EXTERNAL_NAME) {
		if (first->external_name[0] == '\0')
			return 0;
		int len = fmt_wire(wire, "%s", first->external_name);
		if (len < 0)
			return aegis_diag_set(b->diag, AEGIS_EINVAL, first->meta.source, first->meta.line, 0,
			                      "Service %s: invalid externalName \"%s\"", first->meta.name,
			                      first->external_name);
		return set_cname(b, dst, wire, (size_t)len);
	}
	if (first->headless)
		return add_ready(b, g, all_endpoints ? NULL : cluster, dst, NULL);
	for (size_t i = 0; i < g->n_inst; i++) {
		const struct aegis_k8s_service *v = g->inst[i];
		if (strcmp(v->meta.cluster, cluster) != 0)
			continue;
		for (size_t k = 0; k < v->n_cluster_ips; k++) {
			int rc = add_addr_str(b, dst, v->cluster_ips[k]);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

static int add_service_srv(struct builder *b, const struct svc_group *g,
                           const struct aegis_k8s_service *first, const char *svc_name, uint32_t svc_idx)
{
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	for (size_t p = 0; p < first->n_ports; p++) {
		const struct aegis_port *port = &first->ports[p];
		char proto[16];
		size_t pl = strlen(port->protocol);
		if (port->name[0] == '\0' || port->number == 0 || port->number > 65535 || pl >= sizeof(proto))
			continue;
		for (size_t i = 0; i <= pl; i++)
			proto[i] = (char)aegis_dns_lower((uint8_t)port->protocol[i]);
		int len = fmt_wire(wire, "_%s._%s.%s", port->name, pl ? proto : "tcp", svc_name);
		if (len < 0)
			continue;
		uint32_t sidx;
		int rc = node_get(b, wire, (size_t)len, false, AEGIS_NODE_SRV, &sidx);
		if (rc != 0)
			return rc;
		if (!first->headless) {
			rc = add_srv(b, sidx, (uint16_t)port->number, svc_idx);
			if (rc != 0)
				return rc;
			continue;
		}
		/* Headless: one record per ready endpoint that has a name, pointing at that name (the pod
		 * names exist already: add_ready created them). */
		for (size_t s = 0; s < g->n_slices; s++) {
			const struct aegis_endpoint_slice *sl = g->slices[s];
			for (size_t e = 0; e < sl->n_endpoints; e++) {
				const struct aegis_slice_endpoint *ep = &sl->endpoints[e];
				if (!ep->ready || ep->hostname[0] == '\0')
					continue;
				uint8_t pw[AEGIS_DNS_NAME_BUF];
				int plen = fmt_wire(pw, "%s.%s", ep->hostname, svc_name);
				uint32_t pod;
				if (plen < 0)
					continue;
				rc = node_get(b, pw, (size_t)plen, false, AEGIS_NODE_HOST, &pod);
				if (rc == 0)
					rc = add_srv(b, sidx, (uint16_t)port->number, pod);
				if (rc != 0)
					return rc;
			}
		}
	}
	return 0;
}

static int add_service_group(struct builder *b, const struct svc_group *g)
{
	char svc_name[2 * AEGIS_DNS_NAME_BUF];
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	/* Namespace sameness: the local cluster's instance answers the cluster.local name when there is
	 * one; otherwise the first cluster in name order (the instances are sorted by cluster). */
	const struct aegis_k8s_service *first = g->inst[0];
	for (size_t i = 0; i < g->n_inst; i++) {
		if (is_local(b, g->inst[i]->meta.cluster)) {
			first = g->inst[i];
			break;
		}
	}
	int w = snprintf(svc_name, sizeof(svc_name), "%s.%s.svc.%s", g->name, g->ns, b->domain);
	int len = w > 0 && (size_t)w < sizeof(svc_name) ? fmt_wire(wire, "%s", svc_name) : AEGIS_EINVAL;
	if (len < 0)
		return aegis_diag_set(b->diag, AEGIS_EINVAL, first->meta.source, first->meta.line, 0,
		                      "Service %s/%s: \"%s\" is not a valid DNS name", g->ns, g->name,
		                      svc_name);
	uint8_t kind = first->type == AEGIS_SVC_EXTERNAL_NAME ? AEGIS_NODE_CNAME : AEGIS_NODE_HOST;
	int rc = 0;
	if (first->headless && kind == AEGIS_NODE_HOST) {
		/* Pod names first, so that a pod address's PTR lists the pod's own name before the
		 * service's. */
		rc = add_ready(b, g, NULL, EMPTY, svc_name);
		if (rc != 0)
			return rc;
	}
	uint32_t idx, cs;
	rc = node_get(b, wire, (size_t)len, false, kind, &idx);
	if (rc == 0)
		rc = fill_from(b, g, first, first->meta.cluster, true, idx);
	if (rc != 0)
		return rc;
	len = fmt_wire(wire, "%s.%s.svc.clusterset.local", g->name, g->ns);
	if (len > 0) {
		rc = node_get_ex(b, wire, (size_t)len, false, true, kind, &cs);
		if (rc == 0)
			rc = fill_from(b, g, first, first->meta.cluster, true, cs);
		if (rc != 0)
			return rc;
	}
	if (kind == AEGIS_NODE_HOST) {
		rc = add_service_srv(b, g, first, svc_name, idx);
		if (rc != 0)
			return rc;
	}
	/* Each cluster's own answer under <svc>.<ns>.<cluster>.global and, when no other namespace of
	 * that cluster has a service of the same name, <svc>.<cluster>.global (DNS_BEHAVIOUR.md's form).
	 * Instances of one cluster are adjacent. */
	for (size_t i = 0; i < g->n_inst; i++) {
		const struct aegis_k8s_service *v = g->inst[i];
		if (i > 0 && strcmp(g->inst[i - 1]->meta.cluster, v->meta.cluster) == 0)
			continue;
		const char *cname = v->meta.cluster[0] ? v->meta.cluster : b->local_cluster;
		if (cname[0] == '\0')
			continue; /* an unnamed local cluster has no global name */
		uint8_t gkind = v->type == AEGIS_SVC_EXTERNAL_NAME ? AEGIS_NODE_CNAME : AEGIS_NODE_HOST;
		for (int form = 0; form < 2; form++) {
			if (form == 1 && b->global_ambiguous[v - b->cfg->services])
				break;
			len = form == 0 ? fmt_wire(wire, "%s.%s.%s.global", g->name, g->ns, cname)
			                : fmt_wire(wire, "%s.%s.global", g->name, cname);
			if (len < 0)
				continue;
			uint32_t gidx;
			rc = node_get_ex(b, wire, (size_t)len, false, true, gkind, &gidx);
			if (rc == 0)
				rc = fill_from(b, g, v, v->meta.cluster, false, gidx);
			if (rc != 0)
				return rc;
			if (form == 1)
				bn_at(b, gidx)->no_ptr = true;
		}
	}
	return 0;
}

static int add_services(struct builder *b)
{
	const struct aegis_config *cfg = b->cfg;
	if (cfg->n_services == 0)
		return 0;
	int rc = AEGIS_ENOMEM;
	uint32_t *so = malloc(cfg->n_services * sizeof(*so));
	bool *amb = calloc(cfg->n_services, sizeof(*amb));
	uint32_t *eo = malloc((cfg->n_endpoint_slices + 1) * sizeof(*eo));
	const struct aegis_k8s_service **inst = malloc(cfg->n_services * sizeof(*inst));
	const struct aegis_endpoint_slice **slices = malloc((cfg->n_endpoint_slices + 1) * sizeof(*slices));
	if (so == NULL || amb == NULL || eo == NULL || inst == NULL || slices == NULL)
		goto out;
	for (size_t i = 0; i < cfg->n_services; i++)
		so[i] = (uint32_t)i;
	mark_global_ambiguous(cfg, so, amb);
	b->global_ambiguous = amb;
	for (size_t i = 0; i < cfg->n_endpoint_slices; i++)
		eo[i] = (uint32_t)i;
	qsort_r(so, cfg->n_services, sizeof(*so), cmp_svc, (void *)cfg->services);
	struct slice_ctx sc = {.v = cfg->endpoint_slices, .b = b};
	qsort_r(eo, cfg->n_endpoint_slices, sizeof(*eo), cmp_slice, &sc);
	for (size_t i = 0; i < cfg->n_services; i++)
		inst[i] = &cfg->services[so[i]];
	for (size_t i = 0; i < cfg->n_endpoint_slices; i++)
		slices[i] = &cfg->endpoint_slices[eo[i]];

	/* Both orders start with (namespace, name): one merge walk pairs each service with its slices. */
	size_t e = 0;
	rc = 0;
	for (size_t g0 = 0; rc == 0 && g0 < cfg->n_services;) {
		const char *ns = ns_of(&inst[g0]->meta), *name = inst[g0]->meta.name;
		size_t g1 = g0 + 1;
		while (g1 < cfg->n_services && strcmp(ns_of(&inst[g1]->meta), ns) == 0 &&
		       strcmp(inst[g1]->meta.name, name) == 0)
			g1++;
		while (e < cfg->n_endpoint_slices) {
			int c = strcmp(ns_of(&slices[e]->meta), ns);
			if (c == 0)
				c = strcmp(slices[e]->service_name, name);
			if (c >= 0)
				break;
			e++;
		}
		size_t e1 = e;
		while (e1 < cfg->n_endpoint_slices && strcmp(ns_of(&slices[e1]->meta), ns) == 0 &&
		       strcmp(slices[e1]->service_name, name) == 0)
			e1++;
		struct svc_group g = {.inst = inst + g0,
		                      .n_inst = g1 - g0,
		                      .slices = slices + e,
		                      .n_slices = e1 - e,
		                      .name = name,
		                      .ns = ns};
		rc = add_service_group(b, &g);
		g0 = g1;
		e = e1;
	}
out:
	free(amb);
	b->global_ambiguous = NULL;
	free(so);
	free(eo);
	free(inst);
	free(slices);
	return rc;
}

/* ---- NDS name table --------------------------------------------------------------------------------- */

static int add_name_host(struct builder *b, const struct aegis_name_info *ni, const char *host)
{
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	bool wild;
	int len = host_wire(host, wire, &wild);
	if (len < 0)
		return aegis_diag_set(b->diag, AEGIS_EINVAL, "NameTable", 0, 0, "invalid host name \"%s\"",
		                      host);
	uint32_t idx;
	int rc = node_get(b, wire, (size_t)len, wild, AEGIS_NODE_HOST, &idx);
	for (size_t i = 0; rc == 0 && i < ni->n_ips; i++)
		rc = add_addr_str(b, idx, ni->ips[i]);
	return rc;
}

static int add_name_table(struct builder *b)
{
	for (size_t i = 0; i < b->cfg->n_name_table; i++) {
		const struct aegis_name_info *ni = &b->cfg->name_table[i];
		int rc = add_name_host(b, ni, ni->host);
		for (size_t k = 0; rc == 0 && k < ni->n_alt_hosts; k++)
			rc = add_name_host(b, ni, ni->alt_hosts[k]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- PTR -------------------------------------------------------------------------------------------- */

/* The reverse name of a 4- or 16-byte address, lower-case wire form: "d.c.b.a.in-addr.arpa" (decimal
 * octets without leading zeros, 22 to 30 bytes) or the 32 nibbles of "...ip6.arpa" (always
 * AEGIS_TABLE_PTR6_NAME_LEN bytes). The builder names PTR nodes with it, and the lookup formats a PTR
 * node's name with it from the stored address, so the two always agree. */
static size_t reverse_name(const uint8_t *addr, size_t alen, uint8_t *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (alen == 4) {
		for (int i = 3; i >= 0; i--) {
			unsigned v = addr[i];
			size_t at = o++;
			if (v >= 100)
				out[o++] = (uint8_t)('0' + v / 100);
			if (v >= 10)
				out[o++] = (uint8_t)('0' + v / 10 % 10);
			out[o++] = (uint8_t)('0' + v % 10);
			out[at] = (uint8_t)(o - at - 1);
		}
		memcpy(out + o, "\007in-addr\004arpa", 14); /* with the root byte */
		return o + 14;
	}
	for (int i = 15; i >= 0; i--) {
		out[o++] = 1;
		out[o++] = (uint8_t)hex[addr[i] & 15];
		out[o++] = 1;
		out[o++] = (uint8_t)hex[addr[i] >> 4];
	}
	memcpy(out + o, "\003ip6\004arpa", 10);
	return o + 10;
}

_Static_assert(AEGIS_TABLE_PTR6_NAME_LEN == 32 * 2 + 10, "ip6.arpa names are 74 bytes");

/* The address a reverse name stands for (the inverse of reverse_name): returns 4 or 16, or 0 when the
 * name is not exactly what reverse_name makes of some address. */
static size_t reverse_addr(const uint8_t *name, size_t len, uint8_t addr[16])
{
	size_t alen = len == AEGIS_TABLE_PTR6_NAME_LEN ? 16 : 4;
	size_t o = 0;
	for (size_t i = 0; i < alen * (alen == 4 ? 1 : 2); i++) {
		if (o >= len || name[o] == 0 || name[o] > 3 || o + 1u + name[o] > len)
			return 0;
		unsigned v = 0;
		for (size_t k = 1; k <= name[o]; k++) {
			uint8_t c = name[o + k];
			unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
			             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
			                                    : 256;
			if (d >= (alen == 4 ? 10u : 16u))
				return 0;
			v = v * (alen == 4 ? 10u : 16u) + d;
		}
		if (v > 255)
			return 0;
		if (alen == 4)
			addr[3 - i] = (uint8_t)v;
		else if (i % 2 == 0)
			addr[15 - i / 2] = (uint8_t)v;
		else
			addr[15 - i / 2] |= (uint8_t)(v << 4);
		o += 1u + name[o];
	}
	/* Exactly the canonical form (no leading zeros, one nibble a label, the right suffix). */
	uint8_t again[AEGIS_DNS_NAME_BUF];
	return reverse_name(addr, alen, again) == len && memcmp(again, name, len) == 0 ? alen : 0;
}

static int add_ptr_owner(struct builder *b, const uint8_t *addr, size_t alen, uint32_t owner)
{
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	size_t len = reverse_name(addr, alen, wire);
	uint32_t idx;
	int rc = node_get(b, wire, len, false, AEGIS_NODE_PTR, &idx);
	if (rc != 0)
		return rc;
	struct bnode *n = bn_at(b, idx);
	bool mirror = bn_at(b, owner)->mirror;
	for (uint32_t i = 0; i < n->n_ptr; i++) {
		if (n->ptr[i] == owner || (mirror && !bn_at(b, n->ptr[i])->mirror))
			return 0;
	}
	if (n->n_ptr >= MAX_ADDRS) {
		b->dropped++;
		return 0;
	}
	return vec_push(b, &n->ptr, &n->n_ptr, &owner, sizeof(owner));
}

/* Every address of every exact name points back at that name, wildcards excepted (they have no name to
 * point at). The clusterset.local and .global mirrors count only for addresses that no other name has: a
 * reverse lookup of a cluster IP gives its one canonical name, as in Kubernetes DNS, rather than a
 * rotating choice among aliases, while a remote cluster's IP still resolves to its .global name. Owners
 * are taken in creation order, which is configuration order. */
static int add_ptrs(struct builder *b)
{
	size_t n = b->n;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const struct bnode *h = bn_at(b, i); /* blocks never move: h stays valid */
			if (h->wild || h->no_ptr || h->mirror != (pass == 1))
				continue;
			for (uint32_t k = 0; k < h->n_a; k++) {
				int rc = add_ptr_owner(b, h->a + 4 * k, 4, (uint32_t)i);
				if (rc != 0)
					return rc;
			}
			for (uint32_t k = 0; k < h->n_aaaa; k++) {
				int rc = add_ptr_owner(b, h->aaaa + 16 * k, 16, (uint32_t)i);
				if (rc != 0)
					return rc;
			}
		}
	}
	return 0;
}

/* ---- freezing --------------------------------------------------------------------------------------- */

/* Nodes are kept in canonical DNS order (RFC 4034 section 6.1: labels compared right to left), so a dump
 * lists a domain's names together; a wildcard node sorts after the exact node of the same name. */
/* Sort keys: the labels right to left, each followed by a 0 byte. Table names never hold a 0 byte
 * (host_wire admits letters, digits, '-' and '_'; reverse names are digits and hex), so memcmp of two
 * keys is the canonical order, and sorting compares flat bytes instead of re-walking labels (ip6.arpa
 * names have 34 of them). */
struct sort_key {
	const uint8_t *key;
	uint32_t len;
	uint32_t node;
	bool wild;
};

static void make_keys(const struct builder *b, struct sort_key *keys, uint8_t *key)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct bnode *n = bn_at(b, i);
		uint8_t offs[AEGIS_DNS_MAX_LABELS];
		int nl = 0;
		for (size_t k = 0; k < n->len && n->name[k] != 0 && nl < AEGIS_DNS_MAX_LABELS;
		     k += n->name[k] + 1u)
			offs[nl++] = (uint8_t)k;
		size_t o = 0;
		while (nl > 0) {
			const uint8_t *l = n->name + offs[--nl];
			memcpy(key + o, l + 1, l[0]);
			o += l[0];
			key[o++] = 0;
		}
		keys[i] = (struct sort_key){
		        .key = key, .len = (uint32_t)o, .node = (uint32_t)i, .wild = n->wild};
		key += n->len;
	}
}

static int cmp_key(const void *pa, const void *pb)
{
	const struct sort_key *a = pa, *b = pb;
	int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
	if (c == 0)
		c = (a->len > b->len) - (a->len < b->len);
	return c ? c : (int)a->wild - (int)b->wild;
}

/* Exact lookup in the builder's name map (read only). */
static uint32_t map_find(const struct builder *b, const uint8_t *name, size_t len, bool wild)
{
	uint32_t h = aegis_dns_name_hash(name, len);
	size_t mask = b->map_cap - 1;
	for (size_t i = h & mask; b->map[i] != EMPTY; i = (i + 1) & mask) {
		const struct bnode *n = bn_at(b, b->map[i]);
		if (n->hash == h && n->wild == wild && n->len == len && memcmp(n->name, name, len) == 0)
			return b->map[i];
	}
	return EMPTY;
}

/* Names are stored once: a name that is the tail of another ("api.example.com" in
 * "_http._tcp.api.example.com", a headless service in its pods' names) points into that name's bytes
 * instead of having its own. Each node tries the names one and two labels shorter than itself; a name
 * found there is contained in it, unless something else contained it first. PTR nodes take no part
 * either way: they store an address instead of name bytes. container[] and skip[] are indexed by
 * builder node. */
static void share_names(const struct builder *b, uint32_t *container, uint8_t *skip)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct bnode *n = bn_at(b, i);
		if (n->kind == AEGIS_NODE_PTR)
			continue; /* stores its address: no name bytes to point into */
		size_t off = 0;
		for (int strip = 0; strip < 2; strip++) {
			if (off >= n->len || n->name[off] == 0)
				break;
			off += (size_t)n->name[off] + 1;
			if (off >= n->len || n->name[off] == 0)
				break; /* never the root */
			for (int w = 0; w < 2; w++) {
				uint32_t m = map_find(b, n->name + off, n->len - off, w == 1);
				/* A PTR node needs no name bytes, so it is never contained either. */
				if (m != EMPTY && container[m] == EMPTY &&
				    bn_at(b, m)->kind != AEGIS_NODE_PTR) {
					container[m] = (uint32_t)i;
					skip[m] = (uint8_t)off;
				}
			}
		}
	}
}

static size_t align4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static size_t data_size(const struct bnode *n)
{
	size_t d = 4 * (size_t)n->n_a + 16 * (size_t)n->n_aaaa + sizeof(struct aegis_dns_srv_rec) * n->n_srv +
	           4 * (size_t)n->n_ptr;
	if (n->kind == AEGIS_NODE_CNAME)
		d += 1 + (size_t)n->cname_len;
	return d;
}

/* Buckets for n keys at a load factor just under 0.5 (any size: slots come from a multiply, not a
 * mask, so the index is not rounded up to a power of two): a hit probes about 1.5 buckets and a miss
 * 2.5, nearly always in one cache line. A load factor of 0.6 saved 4 bytes a name but made misses
 * (every search-suffix candidate is one) 20% slower in bench/table_cost. */
static uint32_t index_cap(size_t n)
{
	return (uint32_t)(2 * n + 1);
}

static inline uint32_t slot_of(uint32_t h, uint32_t cap)
{
	return (uint32_t)(((uint64_t)h * cap) >> 32);
}

static void index_put(uint32_t *idx, uint32_t cap, uint32_t h, uint32_t node)
{
	uint32_t i = slot_of(h, cap);
	while (idx[i] != 0)
		i = i + 1 == cap ? 0 : i + 1;
	idx[i] = (node + 1) << FP_BITS | (h & FP_MASK);
}

static int32_t rel(const void *from, const void *to)
{
	return (int32_t)((const uint8_t *)to - (const uint8_t *)from);
}

static int freeze(struct builder *b, struct aegis_table **out)
{
	int rc = AEGIS_ENOMEM;
	size_t n = b->n;
	uint32_t *order = malloc((n + 1) * sizeof(*order));
	uint32_t *pos = malloc((n + 1) * sizeof(*pos));
	struct sort_key *keys = malloc((n + 1) * sizeof(*keys));
	uint32_t *container = malloc((n + 1) * sizeof(*container));
	uint8_t *skip = malloc(n + 1);
	size_t *name_off = malloc((n + 1) * sizeof(*name_off)); /* by final position */
	size_t *data_off = malloc((n + 1) * sizeof(*data_off));
	uint8_t *key_bytes = NULL;
	if (order == NULL || pos == NULL || keys == NULL || container == NULL || skip == NULL ||
	    name_off == NULL || data_off == NULL)
		goto out;
	if (n > MAX_NODES) {
		rc = AEGIS_ELIMIT;
		goto out;
	}
	size_t n_wild = 0, name_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		name_bytes += bn_at(b, i)->len;
		n_wild += bn_at(b, i)->wild;
	}
	key_bytes = malloc(name_bytes + 1);
	if (key_bytes == NULL)
		goto out;
	make_keys(b, keys, key_bytes);
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (size_t k = 0; k < n; k++) {
		order[k] = keys[k].node;
		pos[order[k]] = (uint32_t)k;
	}
	free(keys);
	keys = NULL;
	free(key_bytes);
	key_bytes = NULL;
	memset(container, 0xff, (n + 1) * sizeof(*container));
	share_names(b, container, skip);

	/* Where everything goes, in node order: a node's own name (unless it lives in a longer one),
	 * then its records, 4-byte aligned. Shared names are resolved once every owner has a place. A PTR
	 * node has no name bytes: an IPv4 one keeps its address in the node, an IPv6 one has its 16
	 * address bytes (4-byte aligned) where its name would be. */
	uint32_t icap = index_cap(n - n_wild), wcap = index_cap(n_wild);
	size_t head = sizeof(struct aegis_table);
	head = (head + 15) & ~(size_t)15;
	size_t nodes_at = head;
	size_t idx_at = nodes_at + n * sizeof(struct aegis_dns_node);
	size_t widx_at = idx_at + (size_t)icap * 4;
	size_t cur = widx_at + (size_t)wcap * 4;
	for (size_t k = 0; k < n; k++) {
		const struct bnode *bn = bn_at(b, order[k]);
		name_off[k] = 0;
		if (bn->kind == AEGIS_NODE_PTR) {
			/* Only add_ptr_owner makes PTR nodes, named by reverse_name: never fails. */
			uint8_t addr[16];
			size_t alen = reverse_addr(bn->name, bn->len, addr);
			if (alen == 0 || container[order[k]] != EMPTY) {
				rc = AEGIS_EINVAL;
				goto out;
			}
			if (alen == 16) {
				cur = align4(cur);
				name_off[k] = cur;
				cur += 16;
			}
		} else if (container[order[k]] == EMPTY) {
			name_off[k] = cur;
			cur += bn->len;
		}
		size_t d = data_size(bn);
		data_off[k] = 0;
		if (d) {
			cur = align4(cur);
			data_off[k] = cur;
			cur += d;
		}
	}
	for (size_t k = 0; k < n; k++) {
		/* Follow the containers to a name with its own bytes, adding up the skipped prefixes. */
		uint32_t i = order[k];
		size_t add = 0;
		while (container[i] != EMPTY) {
			add += skip[i];
			i = container[i];
		}
		if (i != order[k])
			name_off[k] = name_off[pos[i]] + add;
	}
	size_t total = cur;
	if (total > INT32_MAX) {
		rc = AEGIS_ELIMIT;
		goto out;
	}
	/* One block of exactly the right size (also with AEGIS_ARENA_MALLOC: nodes find their names and
	 * records by offsets inside it, so it cannot be split). */
	uint8_t *block = aligned_alloc(16, (total + 15) & ~(size_t)15);
	if (block == NULL)
		goto out;
	memset(block, 0, (total + 15) & ~(size_t)15);
	struct aegis_table *t = (struct aegis_table *)(void *)block;
	struct aegis_dns_node *nodes = (struct aegis_dns_node *)(void *)(block + nodes_at);
	uint32_t *idx = (uint32_t *)(void *)(block + idx_at);
	uint32_t *widx = (uint32_t *)(void *)(block + widx_at);
	for (size_t k = 0; k < n; k++) {
		const struct bnode *bn = bn_at(b, order[k]);
		struct aegis_dns_node *nd = &nodes[k];
		if (bn->kind == AEGIS_NODE_PTR) {
			uint8_t addr[16];
			if (reverse_addr(bn->name, bn->len, addr) == 4) {
				memcpy(&nd->name_rel, addr, 4);
			} else {
				memcpy(block + name_off[k], addr, 16);
				nd->name_rel = rel(nd, block + name_off[k]);
			}
		} else {
			if (container[order[k]] == EMPTY)
				memcpy(block + name_off[k], bn->name, bn->len);
			nd->name_rel = rel(nd, block + name_off[k]);
		}
		nd->name_len = bn->len;
		nd->kind = bn->kind & 7u;
		nd->n_a = bn->n_a & 0x1fffu;
		nd->n_aaaa = bn->n_aaaa & 0x1fffu;
		nd->n_srv = bn->n_srv & 0x1fffu;
		nd->n_ptr = bn->n_ptr & 0x1fffu;
		if (data_off[k] == 0)
			continue;
		uint8_t *d = block + data_off[k];
		nd->data_rel = rel(nd, d);
		if (bn->n_a)
			memcpy(d, bn->a, 4 * (size_t)bn->n_a);
		d += 4 * (size_t)bn->n_a;
		if (bn->n_aaaa)
			memcpy(d, bn->aaaa, 16 * (size_t)bn->n_aaaa);
		d += 16 * (size_t)bn->n_aaaa;
		for (uint32_t i = 0; i < bn->n_srv; i++) {
			/* Targets are HOST nodes (made before any PTR node), so they have name bytes. */
			size_t tk = pos[bn->srv[i].target];
			const struct bnode *tb = bn_at(b, bn->srv[i].target);
			struct aegis_dns_srv_rec r = {.port = bn->srv[i].port,
			                              .target_len = tb->len,
			                              .pad = 0,
			                              .target_rel = rel(nd, block + name_off[tk])};
			memcpy(d, &r, sizeof(r));
			d += sizeof(r);
		}
		for (uint32_t i = 0; i < bn->n_ptr; i++) {
			int32_t r = rel(nd, &nodes[pos[bn->ptr[i]]]);
			memcpy(d, &r, sizeof(r));
			d += sizeof(r);
		}
		if (bn->kind == AEGIS_NODE_CNAME) {
			d[0] = bn->cname_len;
			if (bn->cname_len)
				memcpy(d + 1, bn->cname, bn->cname_len);
		}
	}
	for (size_t k = 0; k < n; k++) {
		const struct bnode *bn = bn_at(b, order[k]);
		if (bn->wild)
			index_put(widx, wcap, bn->hash, (uint32_t)k);
		else
			index_put(idx, icap, bn->hash, (uint32_t)k);
	}
	atomic_init(&t->refs, 1);
	t->bytes = total;
	t->nodes = nodes;
	t->n_nodes = n;
	t->idx = idx;
	t->idx_cap = icap;
	t->widx = widx;
	t->widx_cap = wcap;
	t->n_wild = n_wild;
	*out = t;
	rc = 0;
out:
	free(order);
	free(pos);
	free(keys);
	free(key_bytes);
	free(container);
	free(skip);
	free(name_off);
	free(data_off);
	return rc;
}

/* ---- public ----------------------------------------------------------------------------------------- */

int aegis_table_build(const struct aegis_config *cfg, const struct aegis_table_opts *opts,
                      struct aegis_table **out, struct aegis_diag *diag)
{
	struct builder b;
	int rc = builder_init(&b);
	if (rc != 0)
		goto out;
	b.cfg = cfg;
	b.diag = diag;
	b.domain = opts && opts->cluster_domain && opts->cluster_domain[0] ? opts->cluster_domain
	                                                                   : "cluster.local";
	b.local_cluster = opts && opts->local_cluster ? opts->local_cluster : "";
	b.vips = opts ? opts->vips : NULL;
	uint8_t dw[AEGIS_DNS_NAME_BUF];
	if (fmt_wire(dw, "%s", b.domain) < 0) {
		rc = aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "invalid cluster domain \"%s\"",
		                    b.domain);
		goto out;
	}
	if (b.vips != NULL) {
		rc = aegis_vip_alloc_update(b.vips, cfg);
		if (rc == AEGIS_ENOMEM)
			goto out;
		/* A full VIP range is not worth refusing the whole table for: hosts that got no VIP answer
		 * NODATA and the log says why. */
		if (rc != 0)
			AEGIS_LOG(AEGIS_LOG_WARN, "vip allocation failed, new hosts get no VIP",
			          LKV_S("error", aegis_strerror(rc)));
	}
	rc = 0;
	for (size_t i = 0; rc == 0 && i < cfg->n_service_entries; i++)
		rc = add_service_entry(&b, &cfg->service_entries[i]);
	if (rc == 0)
		rc = add_services(&b);
	if (rc == 0)
		rc = add_name_table(&b);
	if (rc == 0)
		rc = add_ptrs(&b);
	if (rc == 0)
		rc = freeze(&b, out); /* uses the name map to store shared names once */
	if (rc == 0 && b.dropped > 0)
		AEGIS_LOG(AEGIS_LOG_WARN, "dns table: records over the per-name cap dropped",
		          LKV_I("dropped", b.dropped), LKV_I("cap", MAX_ADDRS));
out:
	if (rc == AEGIS_ENOMEM && diag != NULL)
		(void)aegis_diag_set(diag, rc, NULL, 0, 0, "out of memory building the DNS table");
	builder_free(&b);
	return rc;
}

void aegis_table_ref(struct aegis_table *t)
{
	if (t != NULL)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void aegis_table_unref(struct aegis_table *t)
{
	if (t == NULL)
		return;
	/* Release on the way down, acquire by the last one: the freeing thread sees every other thread's
	 * reads finished. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_release) != 1)
		return;
	atomic_thread_fence(memory_order_acquire);
	free(t); /* the header is the start of the table's one block */
}

/* A PTR node's address: 4 bytes kept in name_rel, or 16 at name_rel (see struct aegis_dns_node). */
static size_t ptr_node_addr(const struct aegis_dns_node *n, uint8_t addr[16])
{
	if (n->name_len == AEGIS_TABLE_PTR6_NAME_LEN) {
		memcpy(addr, aegis_node_rel(n, n->name_rel), 16);
		return 16;
	}
	memcpy(addr, &n->name_rel, 4);
	return 4;
}

/* Is lname (len bytes, equal to the node's name_len) the PTR node's reverse name? Formats the name
 * from the address into a stack buffer and compares. */
static bool ptr_name_eq(const struct aegis_dns_node *n, const uint8_t *lname, size_t len)
{
	uint8_t addr[16], name[AEGIS_DNS_NAME_BUF];
	size_t alen = ptr_node_addr(n, addr);
	return reverse_name(addr, alen, name) == len && memcmp(name, lname, len) == 0;
}

struct aegis_dns_name aegis_node_owner(const struct aegis_dns_node *n, uint8_t buf[AEGIS_DNS_NAME_BUF])
{
	if (n->kind != AEGIS_NODE_PTR)
		return aegis_node_name(n);
	uint8_t addr[16];
	size_t alen = ptr_node_addr(n, addr);
	return (struct aegis_dns_name){.name = buf, .len = (uint8_t)reverse_name(addr, alen, buf)};
}

static const struct aegis_dns_node *probe(const struct aegis_table *t, const uint32_t *idx, uint32_t cap,
                                          const uint8_t *lname, size_t len)
{
	uint32_t h = aegis_dns_name_hash(lname, len);
	uint32_t fp = h & FP_MASK;
	for (uint32_t i = slot_of(h, cap);; i = i + 1 == cap ? 0 : i + 1) {
		uint32_t bk = idx[i];
		if (bk == 0)
			return NULL;
		if ((bk & FP_MASK) != fp)
			continue;
		const struct aegis_dns_node *n = &t->nodes[(bk >> FP_BITS) - 1];
		if (n->name_len != len)
			continue;
		if (n->kind != AEGIS_NODE_PTR ? memcmp(aegis_node_rel(n, n->name_rel), lname, len) == 0
		                              : ptr_name_eq(n, lname, len))
			return n;
	}
}

const struct aegis_dns_node *aegis_table_find(const struct aegis_table *t, const uint8_t *lname, size_t len)
{
	if (t == NULL || len == 0 || len > AEGIS_DNS_MAX_NAME)
		return NULL;
	return probe(t, t->idx, t->idx_cap, lname, len);
}

const struct aegis_dns_node *aegis_table_find_wildcard(const struct aegis_table *t, const uint8_t *lname,
                                                       size_t len)
{
	if (t == NULL || t->n_wild == 0 || len == 0 || len > AEGIS_DNS_MAX_NAME)
		return NULL;
	/* Parents from the nearest to the TLD; the name itself and the root are never tried. */
	size_t i = 0;
	while (i < len && lname[i] != 0) {
		i += (size_t)lname[i] + 1;
		if (i >= len || lname[i] == 0)
			break;
		const struct aegis_dns_node *n = probe(t, t->widx, t->widx_cap, lname + i, len - i);
		if (n != NULL)
			return n;
	}
	return NULL;
}

size_t aegis_table_count(const struct aegis_table *t)
{
	return t ? t->n_nodes : 0;
}

const struct aegis_dns_node *aegis_table_node_at(const struct aegis_table *t, size_t i)
{
	return t && i < t->n_nodes ? &t->nodes[i] : NULL;
}

size_t aegis_table_bytes(const struct aegis_table *t)
{
	return t ? t->bytes : 0;
}
