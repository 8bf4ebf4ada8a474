/* The DNS name table: every mesh name the proxy answers, built once per configuration, immutable
 * afterwards, shared by reference count between the loop(s) that answer from it and whoever builds the
 * next one. Lookups hash a lower-case wire-format name, allocate nothing and take no lock.
 *
 * What becomes a name (rules and reasons: ../shared/design/DNS_BEHAVIOUR.md, docs/dns.md):
 *  - every ServiceEntry host (exact), with its addresses or an auto-allocated VIP; "*.x" hosts are
 *    wildcard nodes stored under their parent "x" and found with aegis_table_find_wildcard();
 *  - every Kubernetes Service: <svc>.<ns>.svc.<domain> (clusterIPs of the local cluster's instance, else
 *    of the first cluster by name that has it; for headless services the ready endpoints' addresses of
 *    every cluster, the local cluster's first), <svc>.<ns>.svc.clusterset.local (the same answer) and
 *    <svc>.<ns>.<cluster>.global (that cluster's own answer);
 *    a headless service's endpoints with a hostname also give <hostname>.<svc>.<ns>.svc.<domain>;
 *    ExternalName services are a node with a CNAME target;
 *  - SRV nodes _<port-name>._<proto>.<host> for named ServiceEntry and Service ports;
 *  - PTR nodes in in-addr.arpa / ip6.arpa for every VIP and endpoint address (one PTR per name),
 *    which store the address rather than the reverse name (aegis_node_owner gives the name);
 *  - NDS NameTable entries (host -> ips).
 */
#ifndef AEGIS_DNS_TABLE_H
#define AEGIS_DNS_TABLE_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aegis/err.h"
#include "aegis/limits.h"
#include "aegis/model.h"
#include "dns_name.h"

struct aegis_vip_alloc;

/* An SRV record as the answer path reads it (aegis_node_srv). The table stores only the port and where
 * the target's name is: every table SRV has priority 0 and weight AEGIS_TABLE_SRV_WEIGHT. */
struct aegis_dns_srv {
	uint16_t priority;
	uint16_t weight;
	uint16_t port;
	struct aegis_dns_name target;
};

#define AEGIS_TABLE_SRV_WEIGHT 10

enum aegis_dns_node_kind {
	AEGIS_NODE_HOST = 0, /* an exact name with A/AAAA (possibly none: NODATA) */
	AEGIS_NODE_WILDCARD, /* "*.<name>": answers for any name strictly below <name> */
	AEGIS_NODE_SRV,      /* _port._proto.host */
	AEGIS_NODE_PTR,      /* a reverse name: stores its address, not its name (aegis_node_owner) */
	AEGIS_NODE_CNAME     /* ExternalName service */
};

/* The wire length of every ip6.arpa reverse name (32 nibble labels, "ip6", "arpa", the root). An
 * in-addr.arpa name is 22 to 30 bytes, so a PTR node's name_len also tells its address family. */
#define AEGIS_TABLE_PTR6_NAME_LEN 74

/* One name of the table: 16 bytes. It holds no pointers: its name and its records are found at
 * offsets relative to the node itself, inside the table's one block of memory, through the
 * aegis_node_* accessors below (docs/dns-table.md, "Memory layout"). Record counts are at most
 * AEGIS_DNS_MAX_ADDRS_PER_NAME (4096), which fits in 13 bits.
 *
 * A PTR node (kind AEGIS_NODE_PTR) has no name bytes: its reverse name is a function of its address,
 * so it stores the address instead and the name is formatted when needed (aegis_node_owner; the lookup
 * compares against it). name_len is still the reverse name's real wire length;
 * name_len == AEGIS_TABLE_PTR6_NAME_LEN means IPv6, anything else IPv4. An IPv4 node keeps its 4
 * address bytes in name_rel itself (memcpy, network order), an IPv6 node points name_rel at its 16
 * address bytes. A name in in-addr.arpa that is also configured as a host (a HOST node that merely
 * has PTR records) keeps its name bytes like any other node. */
struct aegis_dns_node {
	int32_t name_rel;      /* wire name (for WILDCARD nodes, the parent without the "*" label);
	                        * PTR nodes: the address (see above) */
	int32_t data_rel;      /* records: A (4 bytes each), AAAA (16), SRV (8), PTR (4), CNAME */
	uint64_t name_len : 8; /* including the root byte (PTR nodes: of the reverse name) */
	uint64_t kind : 3;     /* enum aegis_dns_node_kind */
	uint64_t n_a : 13;
	uint64_t n_aaaa : 13;
	uint64_t n_srv : 13;
	uint64_t n_ptr : 13;
};

/* The stored SRV record: the port and the target's name, relative to the node that holds it. */
struct aegis_dns_srv_rec {
	uint16_t port;
	uint8_t target_len;
	uint8_t pad;
	int32_t target_rel;
};

/* The accessors: pointers and names they return live as long as the table. */
static inline const uint8_t *aegis_node_rel(const struct aegis_dns_node *n, int32_t rel)
{
	return (const uint8_t *)n + rel;
}

/* The lower-case wire name stored in the table, for every kind but AEGIS_NODE_PTR: a PTR node has no
 * name bytes (see struct aegis_dns_node), so calling this on one is a bug (asserted). Use it where the
 * name must outlive the call and the node cannot be a PTR node: SRV targets, PTR targets (the owners
 * of addresses are HOST nodes), the search matcher's short forms (they end in svc.<domain> or
 * <domain> after a "svc" label, which no reverse name does). Anything that walks every node, like a
 * dump, uses aegis_node_owner. */
static inline struct aegis_dns_name aegis_node_name(const struct aegis_dns_node *n)
{
	assert(n->kind != AEGIS_NODE_PTR);
	return (struct aegis_dns_name){.name = aegis_node_rel(n, n->name_rel), .len = (uint8_t)n->name_len};
}

/* The owner name of any node (for WILDCARD nodes, like aegis_node_name, the parent without "*"). For a
 * PTR node the reverse name is formatted into buf and the result points there; for every other node it
 * points into the table (buf unused). Valid while both the table and buf live. Allocates nothing. */
struct aegis_dns_name aegis_node_owner(const struct aegis_dns_node *n, uint8_t buf[AEGIS_DNS_NAME_BUF]);

/* n->n_a IPv4 addresses, 4 bytes each, network order. */
static inline const uint8_t *aegis_node_a(const struct aegis_dns_node *n)
{
	return aegis_node_rel(n, n->data_rel);
}

/* n->n_aaaa IPv6 addresses, 16 bytes each. */
static inline const uint8_t *aegis_node_aaaa(const struct aegis_dns_node *n)
{
	return aegis_node_rel(n, n->data_rel) + 4u * (unsigned)n->n_a;
}

/* The i-th SRV record, i < n->n_srv. */
static inline struct aegis_dns_srv aegis_node_srv(const struct aegis_dns_node *n, unsigned i)
{
	struct aegis_dns_srv_rec r;
	memcpy(&r, aegis_node_aaaa(n) + 16u * (unsigned)n->n_aaaa + 8u * i, sizeof(r));
	return (struct aegis_dns_srv){
	        .priority = 0,
	        .weight = AEGIS_TABLE_SRV_WEIGHT,
	        .port = r.port,
	        .target = {.name = aegis_node_rel(n, r.target_rel), .len = r.target_len}};
}

/* The i-th PTR target's name, i < n->n_ptr. */
static inline struct aegis_dns_name aegis_node_ptr(const struct aegis_dns_node *n, unsigned i)
{
	int32_t rel;
	memcpy(&rel, aegis_node_aaaa(n) + 16u * (unsigned)n->n_aaaa + 8u * (unsigned)n->n_srv + 4u * i,
	       sizeof(rel));
	return aegis_node_name((const struct aegis_dns_node *)(const void *)aegis_node_rel(n, rel));
}

/* A CNAME node's target; len 0 for every other kind. */
static inline struct aegis_dns_name aegis_node_cname(const struct aegis_dns_node *n)
{
	if (n->kind != AEGIS_NODE_CNAME)
		return (struct aegis_dns_name){.name = NULL, .len = 0};
	const uint8_t *p = aegis_node_aaaa(n) + 16u * (unsigned)n->n_aaaa + 8u * (unsigned)n->n_srv +
	                   4u * (unsigned)n->n_ptr;
	return (struct aegis_dns_name){.name = p + 1, .len = p[0]};
}

struct aegis_table_opts {
	const char *cluster_domain;   /* default "cluster.local" when NULL */
	const char *local_cluster;    /* cluster whose Services own <svc>.<ns>.svc.<domain>; NULL/"" = any */
	struct aegis_vip_alloc *vips; /* assigns VIPs to ServiceEntries without addresses; may be NULL */
};

struct aegis_table;

/* Builds a table from cfg. The table copies what it needs (cfg may be freed afterwards). On failure
 * returns a negative aegis_err, fills diag (may be NULL) and leaves *out untouched. The new table has
 * one reference, owned by the caller. */
int aegis_table_build(const struct aegis_config *cfg, const struct aegis_table_opts *opts,
                      struct aegis_table **out, struct aegis_diag *diag) AEGIS_WUR;

/* Reference counting (atomic: builder thread and loops may race). unref of the last reference frees.
 * NULL is a no-op for both. */
void aegis_table_ref(struct aegis_table *t);
void aegis_table_unref(struct aegis_table *t);

/* Exact lookup of a lower-case wire name (len includes the root byte). Returns NULL when absent.
 * Does not consider wildcards. */
const struct aegis_dns_node *aegis_table_find(const struct aegis_table *t, const uint8_t *lname, size_t len);

/* Most specific wildcard covering lname: for a.b.example.com tries *.b.example.com, then
 * *.example.com, then *.com. A wildcard never matches its own parent name. NULL when none. */
const struct aegis_dns_node *aegis_table_find_wildcard(const struct aegis_table *t, const uint8_t *lname,
                                                       size_t len);

/* For dumps and metrics: number of nodes, the i-th node (stable order: sorted by name), bytes held. */
size_t aegis_table_count(const struct aegis_table *t);
const struct aegis_dns_node *aegis_table_node_at(const struct aegis_table *t, size_t i);
size_t aegis_table_bytes(const struct aegis_table *t);

#endif
