/* The inbound mesh listener (15006): connections that the pod's capture rules redirected from outside.
 * A connection whose first bytes are a TLS handshake record is mutual TLS from a peer sidecar: the handshake
 * must succeed against our trust bundle (the peer's certificate is required and verified; any SPIFFE ID
 * the bundle vouches for is accepted: authorization policies are not implemented), then the bytes go to the
 * local application at 127.0.0.1 (or ::1) and the original destination port. Anything else is plaintext
 * from outside the mesh: passed to the application the same way, or refused when strict (Istio's
 * PeerAuthentication STRICT). A client that sends nothing within the detection time (a server-speaks-first
 * protocol) is treated as plaintext.
 *
 * Loop thread only. */
#ifndef AEGIS_MESH_INBOUND_H
#define AEGIS_MESH_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "aegis/err.h"
#include "mesh_net.h"
#include "mtls_ctx.h"

struct aegis_mesh_inbound_opts {
	/* One listener per address (at most 2): 0.0.0.0:15006 and [::]:15006, since a REDIRECT keeps the
	 * connection's family and an IPv6 listener is IPV6_V6ONLY. */
	struct sockaddr_storage listen[AEGIS_NET_MAX_LISTEN];
	size_t n_listen;          /* 1 or 2 */
	bool listen_defaults;     /* listen is the built-in default: addresses the host lacks are left out */
	bool strict;              /* refuse plaintext */
	uint32_t detect_ms;       /* wait for the first byte; 0 = 500 */
	uint32_t idle_timeout_ms; /* 0 = 1 hour */
	struct aegis_mtls *mtls;  /* NULL: mesh (TLS) connections are refused */
};

struct aegis_mesh_inbound_stats {
	uint64_t accepted;
	uint64_t mtls;
	uint64_t plaintext;
	uint64_t refused;        /* strict plaintext, failed handshakes */
	uint64_t local_failures; /* nothing listening on the application port */
};

struct aegis_mesh_inbound;

int aegis_mesh_inbound_new(struct ev_loop *loop, const struct aegis_mesh_inbound_opts *opts,
                           struct aegis_mesh_inbound **out) AEGIS_WUR;
void aegis_mesh_inbound_stats(const struct aegis_mesh_inbound *in, struct aegis_mesh_inbound_stats *out);
/* NULL is a no-op. Relays already started are closed by aegis_pipe_close_all(). */
void aegis_mesh_inbound_free(struct aegis_mesh_inbound *in);

#endif
