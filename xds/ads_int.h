/* Private to xds/: the ADS ACK/NACK state machine, both ends, with no I/O (bytes and `now` in, bytes and
 * decisions out), so that unit tests drive it without gRPC.
 *
 * Client (one per stream lifetime; survives reconnects): per type URL the last ACKed version, the nonce
 * of the last response, the last ACK/NACK with its error and time; for delta, the version of every
 * resource held (sent back as initial_resource_versions after a reconnect). It builds each
 * DiscoveryRequest / DeltaDiscoveryRequest the client sends.
 *
 * Server (one per stream): per type whether the client subscribed, the version and nonce last sent,
 * whether that response is still unanswered, and (delta) which resource versions the client holds.
 * At most one response per type is unanswered at a time: a later change is sent after the ACK/NACK,
 * as the latest state, which bounds every stream's queue (docs/xds.md, "slow proxies"). */
#ifndef AEGIS_ADS_INT_H
#define AEGIS_ADS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/model.h"
#include "xds_int.h"

/* name -> version, sorted by name; strings are malloc'd copies. */
struct aegis_ads_rv {
	char *name;
	char *version;
};

struct aegis_ads_rvmap {
	struct aegis_ads_rv *v;
	size_t n, cap;
};

int aegis_ads_rvmap_set(struct aegis_ads_rvmap *m, const char *name, const char *version) AEGIS_WUR;
void aegis_ads_rvmap_del(struct aegis_ads_rvmap *m, const char *name);
const char *aegis_ads_rvmap_get(const struct aegis_ads_rvmap *m, const char *name);
void aegis_ads_rvmap_free(struct aegis_ads_rvmap *m);
int aegis_ads_rvmap_copy(struct aegis_ads_rvmap *dst, const struct aegis_ads_rvmap *src) AEGIS_WUR;

enum aegis_ads_result { AEGIS_ADS_NONE = 0, AEGIS_ADS_ACK, AEGIS_ADS_NACK };

/* ---- client ---- */

struct aegis_ads_node {
	const char *id;
	const char *cluster;
	const struct aegis_kv *metadata; /* string values */
	size_t n_metadata;
};

struct aegis_ads_client_type {
	char version[128]; /* last ACKed version_info (SotW) or system_version_info (delta) */
	char nonce[128];   /* nonce of the last response on the current stream ("" = none yet) */
	char error[256];   /* error_detail of the last NACK */
	enum aegis_ads_result last;
	int64_t last_ms; /* when the last ACK/NACK was sent (caller's clock) */
	uint64_t n_ack, n_nack;
	struct aegis_ads_rvmap rv; /* delta: resources held, name -> version */
};

struct aegis_ads_sm {
	bool delta;
	bool node_sent; /* the node goes in the first request of each stream only */
	struct aegis_ads_client_type t[AEGIS_XDS_NTYPES];
};

void aegis_ads_sm_init(struct aegis_ads_sm *sm, bool delta);
void aegis_ads_sm_free(struct aegis_ads_sm *sm);

/* A new stream begins: nonces belong to the old stream and are forgotten; versions are kept. */
void aegis_ads_sm_stream_reset(struct aegis_ads_sm *sm);

/* The first request for type t on a stream (wildcard subscription). SotW carries the last ACKed
 * version; delta carries initial_resource_versions. *out is malloc'd packed bytes. */
int aegis_ads_sm_subscribe(struct aegis_ads_sm *sm, enum aegis_xds_type t, const struct aegis_ads_node *node,
                           uint8_t **out, size_t *len) AEGIS_WUR;

/* A response was applied: record and build the ACK. SotW: version is the response's version_info. Delta:
 * version is system_version_info, and added/removed update the held resource versions. */
int aegis_ads_sm_ack(struct aegis_ads_sm *sm, enum aegis_xds_type t, const char *version, const char *nonce,
                     int64_t now_ms, const struct aegis_ads_rv *added, size_t n_added, char *const *removed,
                     size_t n_removed, uint8_t **out, size_t *len) AEGIS_WUR;

/* A response was rejected: the version (and delta resource versions) stay those of the last good state;
 * the NACK carries the response's nonce and error_detail {code 3 INVALID_ARGUMENT, message error}. */
int aegis_ads_sm_nack(struct aegis_ads_sm *sm, enum aegis_xds_type t, const char *nonce, const char *error,
                      int64_t now_ms, uint8_t **out, size_t *len) AEGIS_WUR;

/* ---- server ---- */

enum aegis_ads_req {
	AEGIS_ADS_REQ_SUBSCRIBE = 0, /* first request for the type on this stream: send the state */
	AEGIS_ADS_REQ_ACK,           /* answers the last response: send again only if the state moved on */
	AEGIS_ADS_REQ_NACK,
	AEGIS_ADS_REQ_STALE,  /* names an older nonce: ignored (Envoy's rule) */
	AEGIS_ADS_REQ_UNKNOWN /* a type URL we do not serve: ignored */
};

struct aegis_ads_srv_type {
	bool subscribed;
	bool inflight;  /* a response was sent and is not yet ACKed/NACKed */
	bool responded; /* a response went out since the subscription (delta sends one even when
	                 * empty, so that the client knows it is up to date) */
	char sent_version[64];
	char sent_nonce[32];
	char acked_version[64];
	char error[256];
	enum aegis_ads_result last;
	struct aegis_ads_rvmap known; /* delta: versions the client holds (ACKed) */
	struct aegis_ads_rvmap
	        pending; /* delta: the unanswered response's resources ("" version = removed) */
};

struct aegis_ads_srv_stream {
	bool delta;
	uint64_t nonce_seq;
	char node_id[128];
	struct aegis_ads_srv_type t[AEGIS_XDS_NTYPES];
};

void aegis_ads_srv_init(struct aegis_ads_srv_stream *st, bool delta);
void aegis_ads_srv_free(struct aegis_ads_srv_stream *st);

/* Classifies a request. type is -1 for unknown URLs. error is NULL or "" when the request has no
 * error_detail. For a delta SUBSCRIBE, initial (may be NULL) is the client's initial_resource_versions. */
enum aegis_ads_req aegis_ads_srv_on_request(struct aegis_ads_srv_stream *st, int type, const char *version,
                                            const char *nonce, const char *error,
                                            const struct aegis_ads_rvmap *initial);

/* True when a response for t should be sent now: subscribed, nothing unanswered, and version differs
 * from what the client holds (SotW) / the set differs from the client's resources (delta). */
bool aegis_ads_srv_should_send(const struct aegis_ads_srv_stream *st, enum aegis_xds_type t,
                               const char *version, const struct aegis_xds_resource_set *set);

/* Records a SotW response of version for t; returns its nonce (valid until the next call). */
const char *aegis_ads_srv_sent(struct aegis_ads_srv_stream *st, enum aegis_xds_type t, const char *version);

/* Delta: computes what the client lacks. *changed gets indexes into set (malloc'd), *removed names the
 * client holds that set lacks (malloc'd array of pointers into the client map). Records the response as
 * pending and returns its nonce, or NULL on ENOMEM. */
const char *aegis_ads_srv_delta_sent(struct aegis_ads_srv_stream *st, enum aegis_xds_type t,
                                     const char *system_version, const struct aegis_xds_resource_set *set,
                                     size_t **changed, size_t *n_changed, const char ***removed,
                                     size_t *n_removed);

#endif
