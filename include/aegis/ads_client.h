/* The proxy's xDS client: one ADS stream (state-of-the-world or delta) to aegis-xds or istiod, subscribed
 * to the ServiceEntry, VirtualService, DestinationRule, ClusterLoadAssignment and NDS NameTable type
 * URLs (docs/xds.md).
 *
 * Threading: the client runs the gRPC completion queue in a thread of its own. Every response is
 * decoded there, merged with the other types into one complete struct aegis_config and handed to
 * on_config on that thread; nothing in here touches the proxy's event loop. The proxy builds its next
 * table inside on_config (off the DNS loop) and hands it over with ev_async.
 *
 * Protocol: ACK with version and nonce; a resource that fails to decode or validate, or a config that
 * on_config refuses, is NACKed with the reason as error_detail and the previous state is kept (no
 * on_config call for it). Wait-for-ready; when a stream ends the client reconnects with jittered
 * exponential back-off, re-subscribing with its last versions (SotW version_info, delta
 * initial_resource_versions). */
#ifndef AEGIS_ADS_CLIENT_H
#define AEGIS_ADS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/log.h"
#include "aegis/model.h"

#define AEGIS_ADS_NTYPES 5

/* Called on the client's thread with a complete config (every subscribed type received at least once).
 * Ownership of cfg passes to the callee in every case (free it with aegis_config_free). Return 0 to
 * accept (the client ACKs), or <0 with diag->msg set to refuse (the client NACKs with diag->msg and
 * keeps its previous state). Must not call aegis_ads_client_stop(). */
typedef int (*aegis_ads_config_cb)(void *user, struct aegis_config *cfg, struct aegis_diag *diag);

struct aegis_ads_client_opts {
	const char *address;             /* "host:port" of the control plane */
	const char *node_id;             /* Node.id, e.g. "sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local" */
	const char *node_cluster;        /* Node.cluster */
	const struct aegis_kv *metadata; /* extra Node.metadata (string values); DNS_CAPTURE=true and
	                                  * DNS_AUTO_ALLOCATE=true are always sent */
	size_t n_metadata;
	bool delta;                  /* DeltaAggregatedResources instead of StreamAggregatedResources */
	uint32_t types;              /* bit mask of subscribed types (1 << AEGIS_XDS_* order: SE, VS, DR,
	                              * CLA, NameTable); 0 = all five. Following istiod: CLA|NameTable. */
	uint32_t backoff_initial_ms; /* 0 = 500 */
	uint32_t backoff_max_ms;     /* 0 = 30000 */
	aegis_ads_config_cb on_config;
	void *user;
	/* xDS over mutual TLS (docs/xds.md): NULL = plaintext. Otherwise the directory's cert-chain.pem and
	 * key.pem are the client certificate and the server's chain must verify against root-cert.pem; when
	 * tls_server_id is set, the server certificate must carry that SPIFFE ID. Files re-read as they
	 * rotate. aegis_ads_client_start returns AEGIS_EINVAL/EIO when the files do not load. */
	const char *tls_cert_dir;
	const char *tls_server_id;
};

enum aegis_ads_last { AEGIS_ADS_LAST_NONE = 0, AEGIS_ADS_LAST_ACK, AEGIS_ADS_LAST_NACK };

struct aegis_ads_type_status {
	const char *type_url; /* static */
	bool subscribed;
	bool received;     /* at least one response was accepted */
	char version[128]; /* last ACKed version_info / system_version_info */
	char nonce[128];   /* nonce of the last response */
	enum aegis_ads_last last;
	char error[256];      /* error_detail of the last NACK ("" = none yet) */
	int64_t last_unix_ms; /* wall-clock time of the last ACK/NACK; 0 = never */
	uint64_t n_ack, n_nack;
	size_t n_resources; /* resources held */
};

struct aegis_ads_status {
	char address[256];
	bool delta;
	bool connected;     /* a stream is open and has received a response */
	uint64_t n_streams; /* streams opened so far (1 + reconnects) */
	uint64_t n_configs; /* configs accepted by on_config */
	int64_t connected_unix_ms;
	struct aegis_ads_type_status types[AEGIS_ADS_NTYPES];
};

struct aegis_ads_client;

/* Copies opts (strings included; opts may be freed afterwards), calls grpc_init() and starts the
 * client's thread. Returns 0 with *out, AEGIS_EINVAL for missing address/on_config, or AEGIS_ENOMEM /
 * AEGIS_ESYS. When it fails, on_config is never called. */
int aegis_ads_client_start(const struct aegis_ads_client_opts *opts, struct aegis_ads_client **out) AEGIS_WUR;

/* Thread-safe snapshot of the protocol state, for /config_dump. */
void aegis_ads_client_status(struct aegis_ads_client *c, struct aegis_ads_status *out);

/* Cancels the stream, waits for the client's thread (a running on_config finishes first), releases
 * everything and calls grpc_shutdown_blocking(). NULL is a no-op. */
void aegis_ads_client_stop(struct aegis_ads_client *c);

/* The module (docs/xds.md, "The xDS client module"). aegis-proxy does not link the client: gRPC, abseil
 * and libstdc++ would cost every proxy about 5 MiB of RSS at load time whether or not it uses xDS.
 * The client is built as lib/aegis/aegis-ads-client.so (beside bin/), which exports one symbol,
 * AEGIS_ADS_MODULE_SYMBOL, of this type; proxy/ads_loader.c opens it on the first
 * aegis_ads_client_start() and its aegis_ads_client_* forward to the functions below. The module carries
 * its own copy of aegis_common (log.c included): log_level is that copy's level, which the proxy keeps in
 * step with its own (aegis_log_mirror_level). */
#define AEGIS_ADS_MODULE_SYMBOL "aegis_ads_module"
#define AEGIS_ADS_MODULE_ABI    1 /* bump when this struct or the structs it passes change */

struct aegis_ads_module {
	uint32_t abi;         /* AEGIS_ADS_MODULE_ABI */
	uint32_t opts_size;   /* sizeof(struct aegis_ads_client_opts) */
	uint32_t status_size; /* sizeof(struct aegis_ads_status) */
	uint32_t config_size; /* sizeof(struct aegis_config): configs cross from the module to the proxy */
	const char *version;  /* AEGIS_VERSION */
	int (*start)(const struct aegis_ads_client_opts *opts, struct aegis_ads_client **out);
	void (*status)(struct aegis_ads_client *c, struct aegis_ads_status *out);
	void (*stop)(struct aegis_ads_client *c);
	enum aegis_log_level *log_level;
};

#endif
