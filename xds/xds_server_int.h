/* Private to xds/: the aegis-xds ADS server (gRPC C core, raw byte buffers) and the snapshots it serves.
 *
 * Threading: aegis_xds_server_run() owns the completion queue and every stream; it is the only thread
 * that touches them. Any other thread hands a new snapshot over with aegis_xds_server_publish(), which
 * only swaps a pointer under a mutex; the queue thread notices it within AEGIS_XDS_POLL_MS and pushes.
 * A snapshot is immutable and reference counted, so a stream can finish a send from an old one. */
#ifndef AEGIS_XDS_SERVER_INT_H
#define AEGIS_XDS_SERVER_INT_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "xds_int.h"

#define AEGIS_XDS_POLL_MS 20

struct aegis_xds_snapshot {
	atomic_int refs;
	uint64_t seq;
	struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES];
	char version[AEGIS_XDS_NTYPES][24];  /* SotW version_info: hash of the type's names and versions */
	uint8_t **wrapped[AEGIS_XDS_NTYPES]; /* per resource: packed Resource wrapper (SotW) */
	size_t *wrapped_len[AEGIS_XDS_NTYPES];
};

/* Takes ownership of sets (emptied) and computes versions and wrappers. Returns NULL on ENOMEM (the sets
 * are freed then). The snapshot starts with one reference. */
struct aegis_xds_snapshot *aegis_xds_snapshot_new(struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES],
                                                  uint64_t seq);
void aegis_xds_snapshot_ref(struct aegis_xds_snapshot *s);
void aegis_xds_snapshot_unref(struct aegis_xds_snapshot *s);

struct aegis_xds_server;

/* Where the server listens: addr plaintext (NULL = none), tls_addr with mutual TLS from cert_dir's
 * cert-chain.pem/key.pem, client certificates required and verified against its root-cert.pem (xds_tls.h;
 * NULL = none). At least one. bound_port / tls_port (may be NULL) get the ports actually bound. */
struct aegis_xds_server_listen {
	const char *addr;
	const char *tls_addr;
	const char *cert_dir;
	int *bound_port;
	int *tls_port;
};

/* Binds the listeners and starts serving both ADS methods on them. Returns 0 with *out, or AEGIS_EIO
 * when a port cannot be bound (AEGIS_ENOMEM: no TLS credentials). */
int aegis_xds_server_start(const struct aegis_xds_server_listen *l, struct aegis_xds_server **out) AEGIS_WUR;

/* Thread-safe: replaces the served snapshot (takes the caller's reference). */
void aegis_xds_server_publish(struct aegis_xds_server *srv, struct aegis_xds_snapshot *snap);

/* Runs the completion queue until *stop becomes true, then shuts down and frees srv. */
void aegis_xds_server_run(struct aegis_xds_server *srv, const volatile sig_atomic_t *stop);

#endif
