/* Private to xds/: the xDS resource codec. Decoders turn protobuf resources (the bytes inside an Any) into
 * a struct aegis_config; encoders turn a struct aegis_config into packed resources for aegis-xds.
 *
 * Resources and names (docs/xds.md):
 *  - ServiceEntry, VirtualService, DestinationRule: name "<namespace>/<name>". In SotW responses each Any
 *    is an envoy.service.discovery.v3.Resource wrapper carrying that name (Envoy's resource wrapper);
 *    a bare Any is accepted too and gets a name from its content.
 *  - ClusterLoadAssignment: name = cluster_name = "outbound|<port>|<subset>|<host>".
 *  - NameTable: one resource (istiod sends it with an empty name); aegis-xds names it "nametable".
 * No function here does I/O; all of them may be called from any thread on distinct objects. */
#ifndef AEGIS_XDS_INT_H
#define AEGIS_XDS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/model.h"

#define AEGIS_XDS_TYPE_PREFIX  "type.googleapis.com/"
#define AEGIS_XDS_URL_SE       AEGIS_XDS_TYPE_PREFIX "istio.networking.v1alpha3.ServiceEntry"
#define AEGIS_XDS_URL_VS       AEGIS_XDS_TYPE_PREFIX "istio.networking.v1alpha3.VirtualService"
#define AEGIS_XDS_URL_DR       AEGIS_XDS_TYPE_PREFIX "istio.networking.v1alpha3.DestinationRule"
#define AEGIS_XDS_URL_CLA      AEGIS_XDS_TYPE_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment"
#define AEGIS_XDS_URL_NDS      AEGIS_XDS_TYPE_PREFIX "istio.networking.nds.v1.NameTable"
#define AEGIS_XDS_URL_RESOURCE AEGIS_XDS_TYPE_PREFIX "envoy.service.discovery.v3.Resource"

/* The five subscribed types, in the order a client subscribes (and a server pushes) them. */
enum aegis_xds_type {
	AEGIS_XDS_SE = 0,
	AEGIS_XDS_VS,
	AEGIS_XDS_DR,
	AEGIS_XDS_CLA,
	AEGIS_XDS_NDS,
	AEGIS_XDS_NTYPES
};

/* Returns the type URL (static string) of t. */
const char *aegis_xds_type_url(enum aegis_xds_type t);

/* Returns the type whose URL is url, or -1 when it is none of the five. */
int aegis_xds_type_from_url(const char *url);

/* Takes one Any (type_url, value) apart: when it is a Resource wrapper, *name gets the wrapper's name
 * and *body and *body_len the inner resource's bytes (the inner type URL must be want_url); otherwise the
 * Any's type URL must be want_url, *name is set to "" and *body is the Any's value. *name points into
 * scratch (cap bytes, truncated names are an error). Returns 0 or AEGIS_EPARSE/AEGIS_EPROTO with diag. */
int aegis_xds_unwrap(const char *type_url, const uint8_t *value, size_t value_len, const char *want_url,
                     char *name, size_t name_cap, const uint8_t **body, size_t *body_len,
                     struct aegis_diag *diag) AEGIS_WUR;

/* Parses "outbound|<port>|<subset>|<host>". subset and host point into buf (cap bytes). */
int aegis_xds_parse_cluster_name(const char *cluster, uint32_t *port, char *buf, size_t cap,
                                 const char **subset, const char **host) AEGIS_WUR;

/* Accumulates decoded resources into one new config. */
struct xds_cla;
struct aegis_xds_builder {
	struct aegis_config *cfg;
	struct aegis_service_entry *se;
	size_t n_se, cap_se;
	struct aegis_virtual_service *vs;
	size_t n_vs, cap_vs;
	struct aegis_destination_rule *dr;
	size_t n_dr, cap_dr;
	struct aegis_name_info *nt;
	size_t n_nt, cap_nt;
	struct xds_cla *cla;
	size_t n_cla, cap_cla;
	/* Kubernetes Services travel as ServiceEntries named "Service/<ns>/<name>/<cluster>"; finish() turns
	 * them (and their CLA endpoints) back into Services and EndpointSlices. */
	struct aegis_service_entry *ksvc;
	size_t n_ksvc, cap_ksvc;
};

/* Starts a builder with an empty config. Returns 0 or AEGIS_ENOMEM. */
int aegis_xds_builder_init(struct aegis_xds_builder *b) AEGIS_WUR;

/* Decodes one resource body of type t and appends it. name is the resource name ("" = unknown: taken
 * from the content). Validation failures (no hosts, bad address, port out of range, malformed bytes)
 * return a negative aegis_err with "<type> <name>: <reason>" in diag->msg; the builder stays usable
 * but the config may hold part of the rejected resource, so callers abort the builder on failure. */
int aegis_xds_decode(struct aegis_xds_builder *b, enum aegis_xds_type t, const char *name,
                     const uint8_t *body, size_t len, struct aegis_diag *diag) AEGIS_WUR;

/* Completes the config: ClusterLoadAssignment endpoints (whole-service clusters, subset "") become the
 * endpoints of the ServiceEntry with that host when it has none of its own, or a ServiceEntry of their
 * own (MESH_INTERNAL, STATIC, named after the cluster) when no ServiceEntry has the host. On success
 * *out owns the config and the builder is empty; on failure the builder is released. */
int aegis_xds_builder_finish(struct aegis_xds_builder *b, struct aegis_config **out) AEGIS_WUR;

/* Releases a builder that will not be finished. */
void aegis_xds_builder_abort(struct aegis_xds_builder *b);

/* One encoded resource, in one malloc'd block that name points to (memory: the ADS client holds every
 * accepted resource for life, and three allocations each cost about 50 bytes more; bench/README.md
 * "Memory"): the name, the version, the body. Owned by its set; free(name) frees it. */
struct aegis_xds_resource {
	char *name;
	char *version; /* hash of the body: equal bodies have equal versions; NULL when there is none */
	uint8_t *body; /* packed message of the type (not an Any) */
	size_t len;
};

struct aegis_xds_resource_set {
	struct aegis_xds_resource *items; /* sorted by name */
	size_t n, cap;
};

struct aegis_xds_encode_opts {
	const char *cluster_domain; /* default "cluster.local" */
	/* Fills the addresses of ServiceEntries without any (aegis_vip_get in aegis-xds); NULL = leave
	 * them empty. Returns 0 or AEGIS_ENOTFOUND. A multi-host entry is split into one entry per host
	 * ("<ns>/<name>/<host>") because each host has its own VIP. */
	int (*vip_get)(void *ctx, const char *host, uint8_t v4[4], uint8_t v6[16]);
	void *vip_ctx;
};

/* Encodes a whole configuration into one resource set per type (sets[AEGIS_XDS_NTYPES], which must be
 * empty). Kubernetes Services become ServiceEntries (hosts <svc>.<ns>.svc.<domain>, addresses = cluster
 * IPs), EndpointSlices and ServiceEntry/WorkloadEntry workloads become ClusterLoadAssignments merged
 * across clusters, DNS-only names (headless pods, clusterset.local, <svc>.<cluster>.global) go into the
 * NameTable. Returns 0, or a negative aegis_err with diag; on failure the sets are freed. */
int aegis_xds_encode_config(const struct aegis_config *cfg, const struct aegis_xds_encode_opts *opts,
                            struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES],
                            struct aegis_diag *diag) AEGIS_WUR;

/* Single-resource encoders (tests and aegis-xds). *out is malloc'd. */
int aegis_xds_encode_se(const struct aegis_service_entry *se, uint8_t **out, size_t *len) AEGIS_WUR;
int aegis_xds_encode_vs(const struct aegis_virtual_service *vs, uint8_t **out, size_t *len) AEGIS_WUR;
int aegis_xds_encode_dr(const struct aegis_destination_rule *dr, uint8_t **out, size_t *len) AEGIS_WUR;
int aegis_xds_encode_name_table(const struct aegis_name_info *ni, size_t n, uint8_t **out,
                                size_t *len) AEGIS_WUR;
/* Endpoints of one cluster; each workload's locality "region/zone/subzone" picks its LocalityLbEndpoints,
 * its first port (or port) the endpoint port. */
int aegis_xds_encode_cla(const char *cluster_name, const struct aegis_workload *eps, size_t n, uint32_t port,
                         uint8_t **out, size_t *len) AEGIS_WUR;
/* Same, with each endpoint's cluster (parallel to eps; NULL or "" entries = none) in its metadata. */
int aegis_xds_encode_cla_clusters(const char *cluster_name, const struct aegis_workload *eps,
                                  const char *const *clusters, size_t n, uint32_t port, uint8_t **out,
                                  size_t *len) AEGIS_WUR;

/* Wraps body into an Envoy Resource (name, version, Any of type_url) for SotW; *out is malloc'd. */
int aegis_xds_wrap(const char *type_url, const struct aegis_xds_resource *r, uint8_t **out,
                   size_t *len) AEGIS_WUR;

/* Appends a copy of (name, version, body) to s (version NULL or "" = none), unsorted. Returns 0 or
 * AEGIS_ENOMEM (s unchanged). */
int aegis_xds_resource_set_push(struct aegis_xds_resource_set *s, const char *name, const char *version,
                                const uint8_t *body, size_t len) AEGIS_WUR;

void aegis_xds_resource_set_free(struct aegis_xds_resource_set *s);

/* Finds name in a sorted set; NULL when absent. */
const struct aegis_xds_resource *aegis_xds_resource_find(const struct aegis_xds_resource_set *s,
                                                         const char *name);

#endif
