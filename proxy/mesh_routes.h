/* The mesh routing table: what the outbound listener needs to turn an original destination (a service VIP
 * and port) into a cluster (service, port, subset) and an endpoint. Sans-I/O: built from a struct
 * aegis_config off the loop thread (like the DNS table), immutable afterwards, shared by reference count.
 * Picks take the random number and the time as arguments, so tests are deterministic.
 *
 * The model (docs/mesh.md has the reasons):
 *  - VIP:port -> service: ServiceEntry addresses (or the VIP that include/aegis/vip.h allocated, the same
 *    allocator instance the DNS table used, so DNS answers and routes agree) and Kubernetes clusterIPs, for
 *    every declared port.
 *  - A VirtualService for the host: tcp, tls and http routes (http routes only when none of their matches
 *    needs L7). Matches are decided at build time for what is fixed for this sidecar (sourceLabels against
 *    the pod's own labels, sourceNamespace) and at pick time for the port. Weighted destinations: weight/sum;
 *    0 gets nothing; a lone destination gets everything; when every weight is unset the shares are equal.
 *  - Each destination (host, port, subset) is a cluster `outbound|<port>|<subset>|<host>` with endpoints
 *    from ServiceEntry endpoints, WorkloadEntries (ServiceEntry workloadSelector, Service selector) and
 *    EndpointSlices, filtered by the DestinationRule subset's labels. EndpointSlice endpoints take their
 *    labels and service account from the WorkloadEntry with the same address (or named as the targetRef
 *    pod) in the service's namespace: the model has no Pod kind.
 *  - Endpoints are sorted into priorities by locality against this sidecar's own: same region and zone
 *    (0), same region (1), the region a DestinationRule localityLbSetting failover names for ours (2), the
 *    rest (3). A pick takes the lowest priority that has a usable endpoint. */
#ifndef AEGIS_MESH_ROUTES_H
#define AEGIS_MESH_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/model.h"

struct aegis_vip_alloc;
struct aegis_outlier;

/* An IPv4 or IPv6 address and port; IPv4 is stored in ip[0..3]. */
struct aegis_routes_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t ip[16];
	uint16_t port; /* host order */
};

/* How bytes reach a cluster's endpoints. */
enum aegis_routes_mode {
	AEGIS_ROUTES_MTLS = 0, /* endpoint has a sidecar: mutual TLS with the workload identity */
	AEGIS_ROUTES_PLAIN     /* MESH_EXTERNAL, tls.mode DISABLE, or origination we do not do: plain TCP */
};

/* The label by which a workload says its sidecar or ztunnel takes HBONE (Istio: model.TunnelLabel). */
#define AEGIS_ROUTES_TUNNEL_LABEL "networking.istio.io/tunnel"

struct aegis_routes_endpoint {
	struct aegis_routes_addr addr; /* the application's address and (target) port */
	uint32_t weight;               /* >= 1 */
	uint8_t priority;              /* 0..3, see above */
	enum aegis_health health;
	const char *locality; /* "region/zone/subzone" or "" */
	const char *identity; /* expected peer SPIFFE ID; ends in "/sa/" + "*" when the SA is unknown */
	bool tunnel; /* labelled networking.istio.io/tunnel=http: speaks HBONE (Istio's TunnelLabel) */
};

struct aegis_routes_cluster {
	const char *name; /* outbound|<port>|<subset>|<host> */
	const char *host;
	const char *subset; /* "" = whole service */
	uint16_t port;
	enum aegis_routes_mode mode;
	const char *const *sans; /* DestinationRule tls.subjectAltNames or ServiceEntry subjectAltNames: */
	size_t n_sans;           /* when present they replace the endpoints' identities */
	uint32_t connect_timeout_ms;
	uint32_t outlier_errors;                 /* consecutive connect failures that eject */
	uint32_t outlier_base_ms;                /* first ejection; the n-th lasts n times as long (capped) */
	const struct aegis_routes_endpoint *eps; /* sorted by priority */
	size_t n_eps;
};

struct aegis_routes_wdest {
	uint32_t cluster; /* index into the table's clusters */
	uint32_t weight;
};

struct aegis_routes_route {
	uint16_t port; /* 0 = any */
	const struct aegis_routes_wdest *dests;
	size_t n_dests;
	uint64_t total; /* sum of weights; 0 = the route sends nowhere (connections are refused) */
	uint32_t timeout_ms;
};

struct aegis_routes_service {
	const char *host;
	const char *namespace_;
	const struct aegis_routes_route *routes; /* in VirtualService order; first match wins */
	size_t n_routes;
};

struct aegis_routes_opts {
	const char *cluster_domain;   /* "cluster.local" when NULL */
	const char *trust_domain;     /* SPIFFE trust domain; "cluster.local" when NULL */
	const char *locality;         /* this sidecar's "region/zone/subzone"; NULL/"" = none */
	const char *namespace_;       /* this pod's namespace (sourceNamespace matches); NULL = "default" */
	struct aegis_labels labels;   /* this pod's labels (sourceLabels matches) */
	struct aegis_vip_alloc *vips; /* VIPs of ServiceEntries without addresses; read only; may be NULL */
};

struct aegis_routes;

/* Builds a table from cfg (copied: cfg may be freed afterwards). The vip allocator is only read (the DNS
 * table build has brought it up to date for the same cfg). Returns 0 with *out holding one reference,
 * or AEGIS_ENOMEM / AEGIS_ELIMIT with diag filled (may be NULL) and *out untouched. */
int aegis_routes_build(const struct aegis_config *cfg, const struct aegis_routes_opts *opts,
                       struct aegis_routes **out, struct aegis_diag *diag) AEGIS_WUR;

/* Atomic reference counting; the last unref frees. NULL is a no-op. */
void aegis_routes_ref(struct aegis_routes *t);
void aegis_routes_unref(struct aegis_routes *t);

enum aegis_routes_verdict {
	AEGIS_ROUTES_PASSTHROUGH = 0, /* not a mesh destination: connect to it unchanged */
	AEGIS_ROUTES_CLUSTER,         /* *cluster is set */
	AEGIS_ROUTES_NO_ROUTE         /* a mesh service whose matching route sends nowhere: refuse */
};

/* Maps an original destination to a cluster, choosing among weighted destinations with rnd (any 64-bit
 * random number). Allocates nothing, takes no lock. *cluster points into t (valid while t is held). */
enum aegis_routes_verdict aegis_routes_lookup(const struct aegis_routes *t,
                                              const struct aegis_routes_addr *dst, uint64_t rnd,
                                              const struct aegis_routes_cluster **cluster);

/* Whether e may take connections by its health (not UNHEALTHY/DRAINING), ejection aside. */
bool aegis_routes_endpoint_serving(const struct aegis_routes_endpoint *e);

/* Picks an endpoint of c: the lowest priority with a usable endpoint (not UNHEALTHY/DRAINING, not ejected
 * at now_ms by o, not in avoid), weighted by endpoint weight with rnd. When no endpoint is usable, ejection
 * is ignored (panic mode, as Envoy does) but avoid and health still count. o may be NULL. Returns NULL
 * when nothing at all can be picked. */
const struct aegis_routes_endpoint *aegis_routes_pick(const struct aegis_routes_cluster *c, uint64_t rnd,
                                                      const struct aegis_outlier *o, uint64_t now_ms,
                                                      const struct aegis_routes_endpoint *const *avoid,
                                                      size_t n_avoid);

/* For dumps and tests. */
size_t aegis_routes_n_clusters(const struct aegis_routes *t);
const struct aegis_routes_cluster *aegis_routes_cluster_at(const struct aegis_routes *t, size_t i);
size_t aegis_routes_n_services(const struct aegis_routes *t);
const struct aegis_routes_service *aegis_routes_service_at(const struct aegis_routes *t, size_t i);
/* VIP:port entries in address order: i-th address into *addr and its route into *route (for the admin's
 * routes section). Returns false past the end. */
size_t aegis_routes_n_vips(const struct aegis_routes *t);
bool aegis_routes_vip_at(const struct aegis_routes *t, size_t i, struct aegis_routes_addr *addr,
                         const struct aegis_routes_route **route);
/* The cluster called name (outbound|port|subset|host), or NULL. */
const struct aegis_routes_cluster *aegis_routes_find_cluster(const struct aegis_routes *t, const char *name);

/* Parses "1.2.3.4" / "2001:db8::1" with a port into a; 0 or AEGIS_EINVAL. */
int aegis_routes_addr_parse(const char *ip, uint16_t port, struct aegis_routes_addr *a) AEGIS_WUR;

#endif
