/* Configuration from an ADS control plane (aegis-xds or istiod): the ADS client runs on its own thread;
 * every complete configuration it accepts is built into a DNS table (and, with --mesh, a routing table) on
 * that thread, off the DNS loop, and handed to the loop (aegis_dns_server_post_table, post_routes). A
 * configuration whose table cannot be built is refused, so the client NACKs it and the last good table keeps
 * serving. Until the first table arrives the proxy is not ready and mesh-domain names get SERVFAIL
 * (DNS_BEHAVIOUR.md, "Before the first config"). */
#ifndef AEGIS_XDS_SOURCE_H
#define AEGIS_XDS_SOURCE_H

#include <stdbool.h>

#include "aegis/ads_client.h"
#include "aegis/err.h"
#include "dns_server.h"
#include "mesh_routes.h"

struct aegis_xds_source_opts {
	const char *address;      /* host:port */
	const char *node_id;      /* NULL: sidecar~<INSTANCE_IP>~<POD_NAME>.<ns>~<ns>.svc.<domain> */
	const char *node_cluster; /* NULL: <POD_NAME>.<ns> */
	const char *namespace_;   /* pod namespace ("" = default) */
	const char *cluster_domain;
	const char *local_cluster;
	bool delta;
	const char *tls_cert_dir;  /* --xds-tls: mutual TLS with these files (NULL = plaintext) */
	const char *tls_server_id; /* the control plane's expected SPIFFE ID ("" = any the root signed) */
	/* mesh: as in file_source.h. When post_routes is set, every configuration the client accepts also
	 * builds the mesh routing table, on the client's thread, right after the DNS table and with the same
	 * VIP allocator, and hands it to post_routes (the callee takes the reference). A configuration whose
	 * routes cannot be built is rejected whole (NACK; the last good table and routes keep serving). */
	const struct aegis_routes_opts *routes;
	void (*post_routes)(void *user, struct aegis_routes *t);
	void *routes_user;
};

struct aegis_xds_source;

/* Starts the client; returns 0, or a negative aegis_err (bad address, no memory). Nothing is fetched
 * synchronously: the table arrives later. srv must outlive the source. */
int aegis_xds_source_start(const struct aegis_xds_source_opts *opts, struct aegis_dns_server *srv,
                           struct aegis_xds_source **out) AEGIS_WUR;

/* The ADS client, for status dumps (valid until aegis_xds_source_free). */
struct aegis_ads_client *aegis_xds_source_client(struct aegis_xds_source *xs);

/* Stops the client (joins its thread: no table is posted afterwards). Free before the DNS server. NULL is
 * a no-op. */
void aegis_xds_source_free(struct aegis_xds_source *xs);

#endif
