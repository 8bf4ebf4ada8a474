/* aegis-proxy's command line (the contract in ARCHITECTURE.md, plus Aegis's own flags). */
#ifndef AEGIS_PROXY_OPTIONS_H
#define AEGIS_PROXY_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "aegis/err.h"
#include "aegis/log.h"
#include "aegis/model.h" /* mesh: struct aegis_kv */
#include "dns_policy.h"  /* policy */
#include "dns_server.h"

#define AEGIS_MAX_CONFIG_PATHS    64
#define AEGIS_MAX_UPSTREAMS       8
#define AEGIS_MAX_STUB_ZONES      32
#define AEGIS_MAX_WORKLOAD_LABELS 16 /* mesh */

/* --stub-zone company.local=10.0.0.2,10.0.0.3:5353 */
struct aegis_proxy_stub_zone {
	char zone[256];
	struct sockaddr_storage servers[AEGIS_MAX_UPSTREAMS];
	size_t n_servers;
};

/* How mesh (ISTIO_MUTUAL) endpoints are reached (--mesh-transport, docs/mesh.md). */
enum aegis_mesh_transport {
	AEGIS_MESH_HBONE,  /* CONNECT streams on pooled mTLS connections to <endpoint-ip>:15008 */
	AEGIS_MESH_DIRECT, /* legacy mTLS to <endpoint>:<port> (the peer's 15006) */
	AEGIS_MESH_AUTO, /* HBONE to endpoints labelled networking.istio.io/tunnel=http, direct to the rest */
};

struct aegis_proxy_options {
	const char *config_paths[AEGIS_MAX_CONFIG_PATHS];
	size_t n_config_paths;
	const char *xds_address;
	bool xds_delta;      /* DeltaAggregatedResources instead of state-of-the-world */
	const char *node_id; /* NULL: derived from POD_NAME/INSTANCE_IP, as Istio's agent does */
	struct sockaddr_storage dns_listen[AEGIS_DNS_MAX_LISTEN];
	size_t n_dns_listen;
	struct sockaddr_storage admin;
	bool admin_non_loopback_ok;
	struct sockaddr_storage status_listen; /* --status-listen: /healthz/ready and /healthz/live only */
	bool have_status_listen;
	bool xds_tls;              /* --xds-tls: mutual TLS to the control plane with --cert-dir's files */
	const char *xds_server_id; /* expected SPIFFE ID of the control plane; NULL = aegis-xds's default */
	const char *namespace_;
	const char *cluster_domain;
	const char *cluster; /* local cluster in a multi-cluster config */
	const char *resolv_conf;
	struct sockaddr_storage upstreams[AEGIS_MAX_UPSTREAMS];
	size_t n_upstreams;
	struct aegis_proxy_stub_zone stub_zones[AEGIS_MAX_STUB_ZONES];
	size_t n_stub_zones;
	bool upstream_parallel;
	uint32_t upstream_timeout_ms; /* 0 = forwarder default */
	uint32_t upstream_deadline_ms;
	uint32_t upstream_max_concurrent;
	uint32_t so_mark;
	bool no_cache;
	uint32_t cache_size;    /* positive entries; 0 = default */
	uint32_t cache_max_ttl; /* 0 = default */
	uint32_t cache_min_ttl;
	uint32_t serve_stale;             /* seconds; 0 = off */
	uint32_t stale_answer_timeout_ms; /* RFC 8767 client-response timer with serve_stale; 0 = off */
	bool dnssec_validate;             /* dnssec: --dnssec-validate (docs/security.md) */
	const char *trust_anchors[16];    /* dnssec: --trust-anchor FILE (repeatable) */
	size_t n_trust_anchors;
	const char *cert_dir;
	enum aegis_log_level log_level;
	uint32_t ttl;
	bool watch; /* reload config files when they change */
	bool forward_unready;
	bool reuseport;
	uint32_t dns_workers; /* --dns-workers: DNS threads (0 or 1 = the main loop only) */
	/* policy: security controls (docs/security.md) */
	struct aegis_policy_cidr allow_sources[AEGIS_POLICY_MAX_CIDRS];
	size_t n_allow_sources;
	bool dns_non_loopback_ok; /* --allow-non-loopback-listen */
	bool deny_drop;           /* --deny-action drop */
	uint32_t rrl_qps, rrl_burst, rrl_slip, rrl_table;
	const char *blocklist;
	enum aegis_policy_block_answer block_answer;
	const char *query_log; /* "-" = stdout */
	double query_log_sample;
	const char *user; /* --user; NULL = 1337 when started as root */
	                  /* end policy */
	/* mesh: mesh traffic (docs/mesh.md); on with --mesh or any listen flag below */
	bool mesh;
	/* The listeners' addresses as given (at most 2 each); none given: both families' defaults, see
	 * aegis_proxy_mesh_listen(). */
	struct sockaddr_storage outbound_listen[2];
	size_t n_outbound_listen;
	struct sockaddr_storage inbound_listen[2];
	size_t n_inbound_listen;
	struct sockaddr_storage hbone_listen[2]; /* the HBONE listener (15008) */
	size_t n_hbone_listen;
	bool inbound_strict;
	const char *trust_domain;
	const char *locality;
	struct aegis_kv workload_labels[AEGIS_MAX_WORKLOAD_LABELS];
	char workload_label_buf[AEGIS_MAX_WORKLOAD_LABELS][2][128];
	size_t n_workload_labels;
	uint32_t mesh_connect_timeout_ms;
	uint32_t mesh_idle_timeout_ms;
	uint32_t drain_ms; /* SIGTERM with mesh traffic open: wait this long for it to finish; 0 = exit */
	enum aegis_mesh_transport mesh_transport; /* --mesh-transport */
	uint16_t hbone_port;                      /* --hbone-port: where peers' HBONE listeners are (15008) */
	uint32_t hbone_keepalive_ms;              /* --hbone-keepalive */
	uint32_t hbone_pool_idle_ms;              /* --hbone-pool-idle */
	                                          /* end mesh */
};

enum aegis_proxy_options_result {
	AEGIS_OPTIONS_RUN = 0,
	AEGIS_OPTIONS_EXIT_OK,   /* --help / --version printed */
	AEGIS_OPTIONS_EXIT_USAGE /* bad usage, message printed to err */
};

/* Parses argv into *o (defaults first). Messages go to out (help, version) or err (mistakes). */
enum aegis_proxy_options_result
aegis_proxy_options_parse(int argc, char **argv, struct aegis_proxy_options *o, FILE *out, FILE *err);

/* mesh: the three mesh listeners (docs/mesh.md) */
enum aegis_mesh_listener {
	AEGIS_MESH_LISTEN_OUTBOUND = 0, /* 15001: where REDIRECT sends the application's outbound TCP */
	AEGIS_MESH_LISTEN_INBOUND,      /* 15006: inbound capture */
	AEGIS_MESH_LISTEN_HBONE,        /* 15008 */
};

/* The addresses listener `which` binds: the flags' when any were given (*is_default false), else one per
 * family, IPv4 first (*is_default true): 127.0.0.1:15001 and [::1]:15001 (REDIRECT of locally generated
 * packets lands on the family's loopback), 0.0.0.0 and [::] for 15006 and 15008 (REDIRECT in PREROUTING
 * lands on the receiving interface's address). A capture rule keeps the connection's family and an IPv6
 * listener is IPV6_V6ONLY, so a family without a listener is refused. A caller that cannot bind the
 * defaults' IPv6 address (no IPv6 in the pod) may start with the first alone. Returns the count (1 or 2). */
size_t aegis_proxy_mesh_listen(const struct aegis_proxy_options *o, enum aegis_mesh_listener which,
                               struct sockaddr_storage out[2], bool *is_default);

#endif
