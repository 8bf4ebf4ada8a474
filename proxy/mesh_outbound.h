/* The outbound mesh listener (15001): connections that iptables redirected from the application. For each:
 * the original destination (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST), a route lookup, an endpoint pick
 * (locality, weight, health, outlier ejection), a connect with a timeout, up to `attempts` endpoints on
 * connect failure, then — for a mesh endpoint — either a CONNECT stream over HBONE (mesh_hbone.h; the
 * default) or legacy direct mutual TLS to the peer's sidecar (the connect goes to
 * <endpoint-ip>:<target-port>, which the peer's capture rules send to its 15006), with the peer's SPIFFE
 * ID checked, and a relay (mesh_pipe.h) with half-close and an idle timeout. Destinations
 * that are not mesh services are connected to unchanged (passthrough).
 *
 * Threading: everything runs on the loop thread except aegis_mesh_outbound_post_routes(), which any thread
 * may call to hand over a new routing table (swapped in with ev_async, as the DNS table is). Connections
 * keep a reference to the table they were routed with. */
#ifndef AEGIS_MESH_OUTBOUND_H
#define AEGIS_MESH_OUTBOUND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "aegis/err.h"
#include "mesh_hbone.h"
#include "mesh_net.h"
#include "mesh_routes.h"
#include "mtls_ctx.h"

struct aegis_mesh_outbound_opts {
	struct sockaddr_storage
	        listen[AEGIS_NET_MAX_LISTEN]; /* 15001 on 127.0.0.1 and ::1 (REDIRECT's targets) */
	size_t n_listen;
	bool listen_defaults; /* listen is the built-in default: addresses the host lacks are left out */
	uint32_t connect_timeout_ms; /* when the DestinationRule sets none; 0 = 1000 */
	uint32_t idle_timeout_ms;    /* 0 = 1 hour */
	uint32_t attempts;           /* endpoints tried per connection; 0 = 3 */
	uint32_t so_mark;
	struct aegis_mtls *mtls; /* NULL: mesh endpoints are refused (no identity to present) */
	/* Non-NULL: mesh (ISTIO_MUTUAL) endpoints are reached over HBONE (CONNECT streams on pooled mTLS
	 * connections to <endpoint-ip>:15008, mesh_hbone.h); NULL: legacy direct mTLS to the endpoint. */
	struct aegis_mesh_hbone *hbone;
	bool hbone_by_label; /* with hbone: only endpoints whose tunnel flag is set (--mesh-transport auto) */
};

struct aegis_mesh_outbound_stats {
	uint64_t accepted;
	uint64_t passthrough;
	uint64_t no_route;
	uint64_t no_endpoint;
	uint64_t connect_failures;
	uint64_t retries;
	uint64_t not_retried; /* HBONE: failed after the early bytes went out, so not tried elsewhere */
	uint64_t early_bytes; /* HBONE: application bytes sent with the CONNECT (read at accept) */
	uint64_t ejections;
	uint64_t mtls_ok;
	uint64_t mtls_refused; /* handshake failed or wrong identity: see the aegis_mtls counters */
	uint64_t routes_swaps;
	unsigned active;
};

struct aegis_mesh_outbound;

/* Binds the listeners and starts accepting (with no routes yet, every destination passes through until
 * the first table arrives). Returns 0 and *out, or an aegis_err (errno set for AEGIS_ESYS). */
int aegis_mesh_outbound_new(struct ev_loop *loop, const struct aegis_mesh_outbound_opts *opts,
                            struct aegis_mesh_outbound **out) AEGIS_WUR;

/* Hands over a table (the reference passes to the listener). Any thread. */
void aegis_mesh_outbound_post_routes(struct aegis_mesh_outbound *ob, struct aegis_routes *t);

void aegis_mesh_outbound_stats(const struct aegis_mesh_outbound *ob, struct aegis_mesh_outbound_stats *out);

/* For the admin (loop thread): the routing table in use (borrowed, NULL before the first), whether an
 * endpoint address is ejected now, and the per-cluster count of relayed connections: the i-th counted
 * cluster's name and count (false past the end). Clusters are counted by name, so the counts survive a
 * table swap; past AEGIS_MESH_OUTBOUND_MAX_COUNTED clusters the rest are counted under "other". */
#define AEGIS_MESH_OUTBOUND_MAX_COUNTED 256
const struct aegis_routes *aegis_mesh_outbound_routes(const struct aegis_mesh_outbound *ob);
bool aegis_mesh_outbound_ejected(const struct aegis_mesh_outbound *ob, const struct aegis_routes_addr *a);
bool aegis_mesh_outbound_cluster_count(const struct aegis_mesh_outbound *ob, size_t i, const char **name,
                                       uint64_t *connections);

/* How a connection to endpoint e of cluster c is carried: "hbone", "mtls" (direct) or "plaintext". */
const char *aegis_mesh_outbound_transport(const struct aegis_mesh_outbound *ob,
                                          const struct aegis_routes_cluster *c,
                                          const struct aegis_routes_endpoint *e);

/* Stops listening, closes every connection (in progress or relaying). NULL is a no-op. */
void aegis_mesh_outbound_free(struct aegis_mesh_outbound *ob);

#endif
