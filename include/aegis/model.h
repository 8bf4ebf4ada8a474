/* The resource model shared by every configuration source. The YAML loader (xds/resource_yaml.c) and the
 * xDS protobuf decoders both produce a struct aegis_config; the DNS table, the routing state and the
 * control plane consume it. The structures mirror the Istio and Kubernetes APIs field by field (only the
 * fields Aegis uses), so a reader who knows `kubectl get serviceentry -o yaml` knows this file.
 *
 * Ownership: every pointer inside a config points into config->arena. A config is immutable once
 * loaded; aegis_config_free() releases it whole. Strings are NUL-terminated and never NULL (absent
 * optional strings are ""), arrays are (pointer, count) pairs with pointer NULL when count is 0. */
#ifndef AEGIS_MODEL_H
#define AEGIS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/arena.h"
#include "aegis/err.h"

struct aegis_kv {
	const char *key;
	const char *value;
};

struct aegis_labels {
	const struct aegis_kv *items;
	size_t n;
};

/* Where a resource came from, for error messages and config dumps. */
struct aegis_meta {
	const char *name;
	const char *namespace_; /* "" when the object has none; loaders default it to "default" */
	struct aegis_labels labels;
	struct aegis_labels annotations;
	const char *cluster; /* cluster name from cluster.yaml or xDS; "" = local */
	const char *source;  /* file path or xDS type URL */
	int line;            /* line of the object's first key in source; 0 when not from a file */
	const char *resource_version;
};

/* A service port (ServiceEntry.ports, Service.spec.ports, EndpointSlice.ports). */
struct aegis_port {
	const char *name;
	uint32_t number;
	const char *protocol; /* upper case as written: "HTTP", "TCP", "UDP", "GRPC", ... ("" = TCP) */
	uint32_t target_port; /* 0 when absent or a named targetPort */
};

struct aegis_port_ref { /* WorkloadEntry / ServiceEntry endpoint `ports` map: name -> number */
	const char *name;
	uint32_t number;
};

enum aegis_health {
	AEGIS_HEALTH_UNKNOWN = 0,
	AEGIS_HEALTH_HEALTHY,
	AEGIS_HEALTH_UNHEALTHY,
	AEGIS_HEALTH_DRAINING
};

/* A workload: ServiceEntry.endpoints[i], WorkloadEntry.spec, or one address of an EndpointSlice
 * endpoint. */
struct aegis_workload {
	const char *address; /* IP address, hostname (DNS resolution) or "unix://..." */
	const struct aegis_port_ref *ports;
	size_t n_ports;
	struct aegis_labels labels;
	const char *network;
	const char *locality; /* "region/zone/subzone" */
	uint32_t weight;      /* 0 = unset (treated as 1) */
	const char *service_account;
	enum aegis_health health;
	/* Kubernetes EndpointSlice extras ("" when absent) */
	const char *hostname; /* endpoint hostname: gives <hostname>.<svc>.<ns>.svc.<domain> */
	const char *node_name;
	const char *zone;
	const char *target_pod; /* targetRef.name when targetRef.kind == Pod */
};

enum aegis_se_location { AEGIS_SE_MESH_EXTERNAL = 0, AEGIS_SE_MESH_INTERNAL };
enum aegis_se_resolution {
	AEGIS_SE_RES_NONE = 0,
	AEGIS_SE_RES_STATIC,
	AEGIS_SE_RES_DNS,
	AEGIS_SE_RES_DNS_ROUND_ROBIN
};

/* networking.istio.io ServiceEntry */
struct aegis_service_entry {
	struct aegis_meta meta;
	const char *const *hosts; /* lower-cased; may start with "*." */
	size_t n_hosts;
	const char *const *addresses; /* IPs or CIDRs as written; empty = auto-allocate a VIP */
	size_t n_addresses;
	const struct aegis_port *ports;
	size_t n_ports;
	enum aegis_se_location location;
	enum aegis_se_resolution resolution;
	const struct aegis_workload *endpoints;
	size_t n_endpoints;
	struct aegis_labels workload_selector;
	const char *const *export_to;
	size_t n_export_to;
	const char *const *subject_alt_names;
	size_t n_subject_alt_names;
};

/* networking.istio.io WorkloadEntry */
struct aegis_workload_entry {
	struct aegis_meta meta;
	struct aegis_workload spec;
};

enum aegis_svc_type {
	AEGIS_SVC_CLUSTER_IP = 0,
	AEGIS_SVC_NODE_PORT,
	AEGIS_SVC_LOAD_BALANCER,
	AEGIS_SVC_EXTERNAL_NAME
};

/* Kubernetes v1 Service */
struct aegis_k8s_service {
	struct aegis_meta meta;
	enum aegis_svc_type type;
	bool headless;                  /* clusterIP: None */
	const char *const *cluster_ips; /* spec.clusterIPs, else [spec.clusterIP]; excludes "None" */
	size_t n_cluster_ips;
	const char *external_name; /* type ExternalName, lower-cased */
	const struct aegis_port *ports;
	size_t n_ports;
	struct aegis_labels selector;
};

/* discovery.k8s.io/v1 EndpointSlice */
struct aegis_slice_endpoint {
	const char *const *addresses;
	size_t n_addresses;
	bool ready; /* conditions.ready; absent counts as ready (API semantics) */
	bool serving;
	bool terminating;
	const char *hostname;
	const char *node_name;
	const char *zone;
	const char *target_kind; /* targetRef.kind */
	const char *target_name; /* targetRef.name */
	const char *target_namespace;
};

struct aegis_endpoint_slice {
	struct aegis_meta meta;
	const char *service_name; /* label kubernetes.io/service-name */
	const char *address_type; /* "IPv4", "IPv6", "FQDN" */
	const struct aegis_port *ports;
	size_t n_ports;
	const struct aegis_slice_endpoint *endpoints;
	size_t n_endpoints;
};

/* VirtualService */
struct aegis_route_dest {
	const char *host;
	const char *subset; /* "" = whole service */
	uint32_t port;      /* 0 = unset */
	int32_t weight;     /* -1 = unset (a lone destination gets 100) */
};

struct aegis_route_match {
	uint32_t port; /* 0 = any */
	struct aegis_labels source_labels;
	const char *source_namespace;
	const char *const *destination_subnets;
	size_t n_destination_subnets;
	const char *const *sni_hosts; /* tls routes */
	size_t n_sni_hosts;
	bool has_l7; /* uri/headers/method/... present: cannot be decided on a TCP stream */
};

enum aegis_route_kind { AEGIS_ROUTE_HTTP = 0, AEGIS_ROUTE_TCP, AEGIS_ROUTE_TLS };

struct aegis_route {
	enum aegis_route_kind kind;
	const char *name;
	const struct aegis_route_match *matches; /* none = match everything */
	size_t n_matches;
	const struct aegis_route_dest *dests;
	size_t n_dests;
	uint32_t timeout_ms; /* 0 = unset */
	uint32_t retries;    /* retries.attempts; 0 = unset */
};

struct aegis_virtual_service {
	struct aegis_meta meta;
	const char *const *hosts;
	size_t n_hosts;
	const char *const *gateways;
	size_t n_gateways;
	const char *const *export_to;
	size_t n_export_to;
	const struct aegis_route *routes; /* http, then tcp, then tls, in file order within each */
	size_t n_routes;
};

/* DestinationRule */
enum aegis_tls_mode {
	AEGIS_TLS_UNSET = 0,
	AEGIS_TLS_DISABLE,
	AEGIS_TLS_SIMPLE,
	AEGIS_TLS_MUTUAL,
	AEGIS_TLS_ISTIO_MUTUAL
};
enum aegis_lb {
	AEGIS_LB_UNSET = 0,
	AEGIS_LB_ROUND_ROBIN,
	AEGIS_LB_LEAST_REQUEST,
	AEGIS_LB_RANDOM,
	AEGIS_LB_PASSTHROUGH
};

struct aegis_locality_failover {
	const char *from;
	const char *to;
};

struct aegis_traffic_policy {
	bool present;
	enum aegis_tls_mode tls_mode;
	const char *sni;
	const char *const *tls_subject_alt_names;
	size_t n_tls_subject_alt_names;
	enum aegis_lb lb;
	bool locality_lb_enabled; /* loadBalancer.localityLbSetting.enabled (default true when set) */
	bool locality_lb_set; /* localityLbSetting present: tells an explicit `enabled: false` from absent */
	const struct aegis_locality_failover *failover;
	size_t n_failover;
	const char *const *failover_priority;
	size_t n_failover_priority;
	uint32_t connect_timeout_ms; /* connectionPool.tcp.connectTimeout */
	uint32_t max_connections;
	uint32_t outlier_consecutive_errors; /* outlierDetection.consecutive5xxErrors / consecutiveErrors */
	uint32_t outlier_interval_ms;
	uint32_t outlier_base_ejection_ms;
	uint32_t outlier_max_ejection_percent;
};

struct aegis_subset {
	const char *name;
	struct aegis_labels labels;
	struct aegis_traffic_policy policy;
};

struct aegis_destination_rule {
	struct aegis_meta meta;
	const char *host;
	struct aegis_traffic_policy policy;
	const struct aegis_subset *subsets;
	size_t n_subsets;
	const char *const *export_to;
	size_t n_export_to;
};

/* Istio NDS NameTable entry (istio.networking.nds.v1.NameTable.NameInfo), so a proxy following istiod
 * gets its DNS table in the form istiod sends it. */
struct aegis_name_info {
	const char *host;
	const char *const *ips;
	size_t n_ips;
	const char *registry; /* "Kubernetes" or "" */
	const char *shortname;
	const char *namespace_;
	const char *const *alt_hosts;
	size_t n_alt_hosts;
};

/* One cluster of a multi-cluster mesh (cluster.yaml beside a cluster's resources). */
struct aegis_cluster_info {
	const char *name;
	const char *network;
	const char *locality;
	const char *source;
};

/* A whole configuration. Arrays hold every object of each kind from every source, in load order. */
struct aegis_config {
	struct aegis_arena arena;
	const struct aegis_service_entry *service_entries;
	size_t n_service_entries;
	const struct aegis_workload_entry *workload_entries;
	size_t n_workload_entries;
	const struct aegis_virtual_service *virtual_services;
	size_t n_virtual_services;
	const struct aegis_destination_rule *destination_rules;
	size_t n_destination_rules;
	const struct aegis_k8s_service *services;
	size_t n_services;
	const struct aegis_endpoint_slice *endpoint_slices;
	size_t n_endpoint_slices;
	const struct aegis_name_info *name_table;
	size_t n_name_table;
	const struct aegis_cluster_info *clusters;
	size_t n_clusters;
};

/* Allocates an empty config (arena capped at AEGIS_CONFIG_MAX_BYTES). NULL on allocation failure. */
struct aegis_config *aegis_config_new(void);

/* Releases a config and everything in its arena. NULL is a no-op. */
void aegis_config_free(struct aegis_config *cfg);

/* The WorkloadEntry that describes an EndpointSlice endpoint's pod: same namespace, and the same address
 * or named as the targetRef pod (pod may be ""), or NULL. The model has no Pod kind, so pods' labels and
 * service accounts come from WorkloadEntries (docs/mesh.md); the routing table (file configs) and
 * aegis-xds (endpoints sent over xDS) both join this way. */
const struct aegis_workload_entry *aegis_config_pod_of(const struct aegis_config *cfg, const char *ns,
                                                       const char *addr, const char *pod);

#endif
