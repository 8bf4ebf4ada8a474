/* Private to proxy/mesh_hbone*.c: the state of an HBONE instance and what its three files share.
 *
 * mesh_hbone.c: the stream splice to an application socket, the TLS connection I/O, the HTTP/2 session glue
 * and the instance's lifecycle (aegis_mesh_hbone_tun_*, aegis_mesh_hbone_conn_*);
 * mesh_hbone_in.c: the inbound 15008 side (aegis_mesh_hbone_in_*); mesh_hbone_out.c: the outbound pool
 * and the public open/cancel (aegis_mesh_hbone_out_*). Loop thread only, like the public API. */
#ifndef AEGIS_MESH_HBONE_INT_H
#define AEGIS_MESH_HBONE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "hbone.h"
#include "mesh_hbone.h"
#include "mesh_net.h"

#define HANDSHAKE_MS     5000
#define LOCAL_CONNECT_MS 1000
#define SCRATCH          (64u << 10)
#define READ_ROUNDS      64
/* The expected identities, joined by '\n'. */
#define KEY_MAX    1024
#define MAX_LOCALS 64

enum cstate { C_CONNECTING, C_HANDSHAKE, C_READY };
enum tstate { T_PENDING, T_OPEN };

struct tun;

struct hconn {
	struct aegis_mesh_hbone *hb;
	struct hconn *prev, *next;
	struct hconn *dirty_next;
	bool dirty;
	bool server;
	bool draining; /* no new streams (GOAWAY, a refused submit, or closing) */
	bool dead;
	bool want_write; /* the writer blocked: wait for writability */
	enum cstate st;
	int fd;
	SSL *ssl;
	struct aegis_hbone *h;
	ev_io io;
	ev_timer timer; /* connect / handshake limit, then the keepalive tick */
	ev_timer again; /* the read loop stopped at its cap: continue on the next iteration */
	struct tun *tuns;
	size_t n_tuns;
	size_t n_paused; /* tuns whose application side waits for room towards the peer */
	double created, last_rx, idle_since, ping_sent;
	bool ping_out;
	uint32_t connect_ms;
	struct sockaddr_storage peer;    /* client: the peer sidecar; server: the client */
	struct sockaddr_storage local;   /* server: the address the peer connected to (a local address) */
	char key[KEY_MAX];               /* client: expected identities, '\n'-separated */
	char peer_id[AEGIS_MTLS_ID_MAX]; /* what the peer presented */
	char what[128];
};

struct tun {
	struct aegis_mesh_hbone *hb;
	struct hconn *c; /* NULL once the stream is closed (the application side may still drain) */
	int dir;         /* AEGIS_MESH_HBONE_OUT or _IN, for the stats */
	struct tun *prev, *next;
	int32_t id; /* 0 until submitted */
	enum tstate st;
	int fd; /* the application socket; -1 when not ours */
	ev_io io;
	ev_timer timer; /* open deadline, local connect limit, then the idle check */
	bool app_eof;   /* the application stopped sending (END_STREAM queued) */
	bool app_shut;  /* we shut the application's write half */
	bool peer_eof;  /* END_STREAM from the peer */
	bool paused;    /* not reading the application: no room towards the peer */
	bool counted;   /* in streams_active */
	bool in_list;   /* on c->tuns */
	bool reset;     /* counted and logged as reset already (ours or the peer's) */
	uint8_t *buf;   /* bytes for the application it did not take yet (at most the stream window) */
	size_t off, len, cap;
	double last_active;
	aegis_mesh_hbone_open_cb cb; /* client, until the answer */
	void *user;
	const uint8_t *early; /* client, until submitted: the caller's first bytes (borrowed) */
	size_t early_len;
	size_t early_queued; /* client: early bytes queued so far; any, and a failure before the answer is
	                        unsure */
	char authority[AEGIS_HBONE_AUTHORITY_MAX + 1];
};

struct aegis_mesh_hbone_req {
	struct tun t;
};

struct aegis_mesh_hbone {
	struct ev_loop *loop;
	struct aegis_mesh_hbone_opts opts;
	struct aegis_net_listeners ls; /* opts.listen */
	ev_prepare flush;
	struct hconn *conns;
	struct hconn *dirty;
	struct tun *orphans; /* streams closed on the wire whose application side still drains */
	uint8_t *scratch;
	struct aegis_routes_addr locals[MAX_LOCALS];
	size_t n_locals;
	double locals_at;
	struct aegis_mesh_hbone_stats stats;
	bool draining; /* aegis_mesh_hbone_drain(): peers' connections get GOAWAY as they come */
};

/* ---- streams (mesh_hbone.c) ---- */

/* A new stream for the application socket fd (-1: none yet), on no connection; NULL when out of memory. */
struct tun *aegis_mesh_hbone_tun_new(struct aegis_mesh_hbone *hb, int fd);
/* Puts t on c's list of streams / takes it off (no-op when it is not on one). */
void aegis_mesh_hbone_tun_add(struct hconn *c, struct tun *t);
void aegis_mesh_hbone_tun_unlink(struct tun *t);
/* Frees a stream that is off its connection; abort_app resets the application socket instead of a FIN. */
void aegis_mesh_hbone_tun_free(struct aegis_mesh_hbone *hb, struct tun *t, bool abort_app);
/* (Re)arms t's one-shot timer s seconds from now. */
void aegis_mesh_hbone_tun_timer(struct aegis_mesh_hbone *hb, struct tun *t, double s);
/* The stream is established (200 sent or received): the application socket joins the splice. */
void aegis_mesh_hbone_tun_open(struct hconn *c, struct tun *t);
/* What a failure of t's CONNECT before its answer means for the caller: fallback, or
 * AEGIS_MESH_HBONE_FAILED_UNSURE when t's early bytes may have reached the peer. */
enum aegis_mesh_hbone_result aegis_mesh_hbone_tun_failure(const struct tun *t,
                                                          enum aegis_mesh_hbone_result fallback);
/* Counts and logs an abrupt end of t, once; why is copied into the log only. */
void aegis_mesh_hbone_tun_note_reset(struct aegis_mesh_hbone *hb, struct tun *t,
                                     enum aegis_mesh_hbone_reset r, const char *why, uint32_t h2_error);

/* ---- connections (mesh_hbone.c) ---- */

/* A new connection on fd (owned from now on), first on hb's list; NULL when out of memory. */
struct hconn *aegis_mesh_hbone_conn_new(struct aegis_mesh_hbone *hb, bool server, int fd);
/* Makes c's watcher wait for ev (EV_READ and/or EV_WRITE). */
void aegis_mesh_hbone_conn_events(struct hconn *c, int ev);
/* c has output: flushed once before the loop sleeps. */
void aegis_mesh_hbone_conn_dirty(struct hconn *c);
/* Starts the TLS handshake on c's connected socket; may free c (a failure fails it). */
void aegis_mesh_hbone_conn_start_tls(struct hconn *c);

/* ---- inbound (mesh_hbone_in.c) ---- */

/* The session's on_request: a CONNECT from the peer (user = the connection). */
void aegis_mesh_hbone_in_request(void *user, int32_t id, const char *authority);
/* t's local connect completed (or failed): answers 200 or 503. */
void aegis_mesh_hbone_in_connected(struct tun *t);
/* t's local connect did not complete in time: answers 503. */
void aegis_mesh_hbone_in_timeout(struct tun *t);
/* Starts the listeners of opts.listen and reads the pod's addresses: 0 or an aegis_err (none left open). */
int aegis_mesh_hbone_in_start(struct aegis_mesh_hbone *hb) AEGIS_WUR;
/* Stops and closes the listeners, if any. */
void aegis_mesh_hbone_in_stop(struct aegis_mesh_hbone *hb);

/* ---- outbound (mesh_hbone_out.c) ---- */

/* Submits the CONNECT of a stream waiting on c; false when c cannot take it (going away). */
bool aegis_mesh_hbone_out_submit(struct hconn *c, struct tun *t) AEGIS_WUR;
/* The session's on_response: the peer's answer to our CONNECT (user = the connection). */
void aegis_mesh_hbone_out_response(void *user, int32_t id, int status, void *stream_user);
/* No answer to t's CONNECT in time: reports the failure; t is freed now or when the reset is through. */
void aegis_mesh_hbone_out_timeout(struct tun *t);

#endif
