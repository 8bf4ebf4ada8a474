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
 *  - PTR nodes in in-addr.arpa / ip6.arpa for every VIP and endpoint address (one PTR per name);
 *  - NDS NameTable entries (host -> ips).
 */
#ifndef AEGIS_DNS_TABLE_H
#define AEGIS_DNS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/limits.h"
#include "aegis/model.h"
#include "dns_name.h"

struct aegis_vip_alloc;

struct aegis_dns_srv {
	uint16_t priority;
	uint16_t weight;
	uint16_t port;
	struct aegis_dns_name target;
};

enum aegis_dns_node_kind {
	AEGIS_NODE_HOST = 0, /* an exact name with A/AAAA (possibly none: NODATA) */
	AEGIS_NODE_WILDCARD, /* "*.<name>": answers for any name strictly below <name> */
	AEGIS_NODE_SRV,      /* _port._proto.host */
	AEGIS_NODE_PTR,      /* a reverse name */
	AEGIS_NODE_CNAME     /* ExternalName service */
};

struct aegis_dns_node {
	struct aegis_dns_name name; /* for WILDCARD nodes, the parent (without the "*" label) */
	uint8_t kind;               /* enum aegis_dns_node_kind */
	uint16_t n_a;
	uint16_t n_aaaa;
	uint16_t n_srv;
	uint16_t n_ptr;
	const uint8_t *a;    /* n_a addresses, 4 bytes each, network order */
	const uint8_t *aaaa; /* n_aaaa addresses, 16 bytes each */
	const struct aegis_dns_srv *srv;
	const struct aegis_dns_name *ptr;
	struct aegis_dns_name cname; /* CNAME nodes only; len 0 otherwise */
};

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
