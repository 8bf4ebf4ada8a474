/* HBONE on the wire (docs/mesh.md): the libev glue around the sans-I/O HTTP/2 CONNECT core (mtls/hbone.h).
 *
 * Inbound: a listener (15008) accepting mutual TLS (TLS 1.3, client certificate required, ALPN "h2"); each
 * CONNECT stream's :authority must name a local address of this pod (its own addresses or loopback, else
 * 400); the glue connects to 127.0.0.1 (::1 for IPv6) at the authority's port, answers 200 once connected
 * (503 when nothing listens) and splices the stream and the socket both ways.
 *
 * Outbound: a pool of client connections keyed by (peer address, expected SPIFFE identities): one TLS
 * connection per key carries many CONNECT streams; a new one is opened when a connection reaches
 * AEGIS_HBONE_MAX_STREAMS or is going away. Idle connections are pinged (closed when a PING goes
 * unanswered) and closed after the pool idle time. A connection that fails fails every stream on it.
 *
 * Flow control: bytes from the peer are written to the application socket and only then given back to
 * the window (aegis_hbone_consume); the application socket is not read while its stream's buffer towards
 * the peer is full. Half-close goes both ways (FIN <-> END_STREAM).
 *
 * Loop thread only. Callback contract: aegis_mesh_hbone_open()'s callback fires exactly once unless the
 * request is cancelled first, never from inside aegis_mesh_hbone_open() itself. */
#ifndef AEGIS_MESH_HBONE_H
#define AEGIS_MESH_HBONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "aegis/err.h"
#include "mesh_routes.h"
#include "mesh_net.h"
#include "mtls_ctx.h"

struct aegis_mesh_hbone_opts {
	/* The inbound listeners, one per address (0.0.0.0:15008 and [::]:15008: an IPv6 listener is
	 * IPV6_V6ONLY); n_listen 0 = none. */
	struct sockaddr_storage listen[AEGIS_NET_MAX_LISTEN];
	size_t n_listen;
	bool listen_defaults;     /* listen is the built-in default: addresses the host lacks are left out */
	uint16_t peer_port;       /* where peers listen; 0 = 15008 */
	uint32_t idle_timeout_ms; /* a stream with no byte either way for this long is closed; 0 = 1 h */
	uint32_t keepalive_ms;    /* PING after this long without a byte from the peer; 0 = 10 s */
	uint32_t pool_idle_ms;    /* close a pooled connection without streams after this; 0 = 60 s */
	uint32_t so_mark;
	struct aegis_mtls *mtls; /* required */
};

/* Index 0 counts the outbound (client) side, 1 the inbound (server) side. */
enum { AEGIS_MESH_HBONE_OUT = 0, AEGIS_MESH_HBONE_IN = 1 };

/* CONNECT failures by what the answer was: the status code, or none (the stream or its connection broke,
 * or timed out, before an answer). */
enum aegis_mesh_hbone_fail { AEGIS_HBONE_F400 = 0, AEGIS_HBONE_F503, AEGIS_HBONE_FOTHER, AEGIS_HBONE_FNONE };
#define AEGIS_MESH_HBONE_N_FAIL 4

/* Why an established stream ended abruptly (the application socket got a reset, or the peer a RST_STREAM):
 * the peer reset it; the application's socket failed; the bytes towards the application outgrew their
 * bound; the stream idled out; its connection went away; a local failure (memory, the core refusing). */
enum aegis_mesh_hbone_reset {
	AEGIS_HBONE_R_PEER = 0,
	AEGIS_HBONE_R_APP,
	AEGIS_HBONE_R_BUFFER,
	AEGIS_HBONE_R_IDLE,
	AEGIS_HBONE_R_CONN,
	AEGIS_HBONE_R_INTERNAL,
};
#define AEGIS_MESH_HBONE_N_RESET 6

struct aegis_mesh_hbone_stats {
	uint64_t conns_opened[2]; /* TLS connections that completed the handshake and the identity check */
	uint64_t conns_open[2];
	uint64_t streams_opened[2]; /* CONNECT streams answered 200 */
	uint64_t streams_active[2];
	uint64_t connect_failures[2][AEGIS_MESH_HBONE_N_FAIL];
	uint64_t pings_sent;
	uint64_t pings_acked;
	uint64_t ping_timeouts; /* connections closed because a PING went unanswered */
	uint64_t pool_idle_closes;
	uint64_t stream_resets[2][AEGIS_MESH_HBONE_N_RESET];
};

enum aegis_mesh_hbone_result {
	AEGIS_MESH_HBONE_OK = 0,         /* 200: the glue owns the application socket now */
	AEGIS_MESH_HBONE_CONNECT_FAILED, /* TCP, connection lost, timeout, or a non-200 answer: try elsewhere
	                                  */
	AEGIS_MESH_HBONE_REFUSED,        /* TLS handshake or peer identity refused (see the mtls counters) */
	AEGIS_MESH_HBONE_FAILED_UNSURE,  /* timeout, reset or connection lost after the early bytes went out:
	                                    the peer may have delivered them, so do not try elsewhere */
};

/* why lives only during the call. */
typedef void (*aegis_mesh_hbone_open_cb)(void *user, enum aegis_mesh_hbone_result r, const char *why);

struct aegis_mesh_hbone;
struct aegis_mesh_hbone_req;

/* Starts the inbound listener when opts->listen is set. Returns 0 and *out, or an aegis_err (errno set
 * for AEGIS_ESYS). */
int aegis_mesh_hbone_new(struct ev_loop *loop, const struct aegis_mesh_hbone_opts *opts,
                         struct aegis_mesh_hbone **out) AEGIS_WUR;

/* Closes every connection and stream without callbacks (process shutdown). NULL is a no-op. */
void aegis_mesh_hbone_free(struct aegis_mesh_hbone *hb);

/* Outbound: carries app_fd to endpoint ep (its address and target port: the :authority) over a pooled
 * connection to <ep address>:peer_port whose peer presents one of ids[0..n_ids) (copied). connect_ms
 * bounds the TCP connect of a new connection and the wait for the CONNECT's answer; what names the
 * application connection in logs. early[0..early_len) are bytes already read from app_fd (its first
 * ones, at most AEGIS_HBONE_STREAM_OUTBUF): they go out right behind the CONNECT, without waiting for the
 * answer; the caller keeps them unchanged until the callback or the cancel, to send them again elsewhere
 * after a refusal (AEGIS_MESH_HBONE_FAILED_UNSURE says when that is not safe). On AEGIS_MESH_HBONE_OK the
 * glue owns app_fd; otherwise the caller still does. Returns 0 and *req (valid until the callback fires or
 * aegis_mesh_hbone_cancel), or an aegis_err (the callback never fires). */
int aegis_mesh_hbone_open(struct aegis_mesh_hbone *hb, int app_fd, const struct aegis_routes_addr *ep,
                          const char *const *ids, size_t n_ids, uint32_t connect_ms, const uint8_t *early,
                          size_t early_len, const char *what, aegis_mesh_hbone_open_cb cb, void *user,
                          struct aegis_mesh_hbone_req **req) AEGIS_WUR;

/* More of the application's first bytes read before the answer: early[0..early_len) is all of them so far
 * (the bytes given before, unchanged, and new ones after), possibly at a new address; the new ones go out
 * at once. 0, or an aegis_err (the request is unchanged; the caller may cancel it). */
int aegis_mesh_hbone_early(struct aegis_mesh_hbone_req *req, const uint8_t *early,
                           size_t early_len) AEGIS_WUR;

/* Abandons a request whose callback has not fired (the stream is reset); app_fd stays the caller's. */
void aegis_mesh_hbone_cancel(struct aegis_mesh_hbone_req *req);

/* One connection as the admin shows it; strings live only during the callback. */
struct aegis_mesh_hbone_conn_info {
	bool inbound;
	const char *state;         /* "connecting", "handshake", "ready" */
	const char *peer;          /* "10.0.0.1:15008" */
	const char *peer_identity; /* the SPIFFE ID the peer presented ("" before the handshake) */
	const char *expected;      /* outbound: the identities it was checked against, '\n'-separated */
	size_t streams;
	bool draining;
	double age_s, idle_s; /* since it was made; since its last stream ended (0 while it has streams) */
};

/* Calls fn for every connection (loop thread; fn must not call into the instance). */
void aegis_mesh_hbone_foreach(const struct aegis_mesh_hbone *hb,
                              void (*fn)(void *user, const struct aegis_mesh_hbone_conn_info *c), void *user);

/* After a certificate rotation: pooled connections (made with the old certificate) take no new streams;
 * their streams go on, and each closes once it has none. */
void aegis_mesh_hbone_rotated(struct aegis_mesh_hbone *hb);

void aegis_mesh_hbone_stats(const struct aegis_mesh_hbone *hb, struct aegis_mesh_hbone_stats *out);
/* Shutdown drain (SIGTERM, docs/mesh.md): GOAWAY on every connection, now and on peers' connections
 * accepted from here on, so that peers open no new streams here while open ones finish. Outbound
 * application connections still get streams, on fresh connections. */
void aegis_mesh_hbone_drain(struct aegis_mesh_hbone *hb);

/* The HBONE authority of an address and port: "10.0.0.1:9080", "[2001:db8::1]:9080". 0 or AEGIS_ESPACE. */
int aegis_mesh_hbone_authority(const struct aegis_routes_addr *a, char *buf, size_t len) AEGIS_WUR;

#endif
