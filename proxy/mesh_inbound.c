/* The inbound mesh listener: see mesh_inbound.h and docs/mesh.md. */
#include "mesh_inbound.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "aegis/container.h"
#include "aegis/log.h"
#include "sockaddr.h"
#include "mesh_net.h"
#include "mesh_pipe.h"

#define HANDSHAKE_MS     5000
#define LOCAL_CONNECT_MS 1000
#define TLS_HANDSHAKE    0x16 /* TLS record type of a ClientHello */

enum in_state { ST_DETECT, ST_HANDSHAKE, ST_LOCAL };

struct in_conn {
	struct aegis_mesh_inbound *in;
	struct in_conn *prev, *next;
	int fd;       /* from the peer */
	int local_fd; /* to the application */
	SSL *ssl;
	enum in_state st;
	ev_io io;
	ev_timer timer;
	struct sockaddr_storage orig;
	char what[96];
};

struct aegis_mesh_inbound {
	struct ev_loop *loop;
	struct aegis_mesh_inbound_opts opts;
	struct aegis_net_listeners ls;
	struct in_conn *conns;
	struct aegis_mesh_inbound_stats stats;
};

static void conn_free(struct in_conn *c)
{
	struct aegis_mesh_inbound *in = c->in;
	ev_io_stop(in->loop, &c->io);
	ev_timer_stop(in->loop, &c->timer);
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	if (c->local_fd >= 0)
		close(c->local_fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		in->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void wait_on(struct in_conn *c, int fd, int events, double timeout_s)
{
	ev_io_stop(c->in->loop, &c->io);
	ev_io_set(&c->io, fd, events);
	ev_io_start(c->in->loop, &c->io);
	if (timeout_s > 0) {
		ev_timer_stop(c->in->loop, &c->timer);
		ev_timer_set(&c->timer, timeout_s, 0);
		ev_timer_start(c->in->loop, &c->timer);
	}
}

static void pipe_done(void *user, const struct aegis_pipe_result *r)
{
	(void)user;
	(void)r;
}

/* The application's address: loopback of the family, the port the client asked for. */
static void connect_local(struct in_conn *c)
{
	struct sockaddr_storage to;
	memset(&to, 0, sizeof(to));
	if (c->orig.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = ((struct sockaddr_in6 *)&c->orig)->sin6_port;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = ((struct sockaddr_in *)&c->orig)->sin_port;
	}
	c->st = ST_LOCAL;
	if (aegis_net_connect(&to, 0, &c->local_fd) != 0) {
		c->local_fd = -1;
		c->in->stats.local_failures++;
		conn_free(c);
		return;
	}
	ev_io_stop(c->in->loop, &c->io);
	wait_on(c, c->local_fd, EV_WRITE, LOCAL_CONNECT_MS / 1000.0);
}

static void local_connected(struct in_conn *c)
{
	struct aegis_mesh_inbound *in = c->in;
	int err = aegis_net_connect_result(c->local_fd);
	if (err != 0) {
		in->stats.local_failures++;
		AEGIS_LOG(AEGIS_LOG_INFO, "inbound: nothing listening on the application port",
		          LKV_S("conn", c->what), LKV_S("error", strerror(err)));
		conn_free(c);
		return;
	}
	ev_io_stop(in->loop, &c->io);
	ev_timer_stop(in->loop, &c->timer);
	if (aegis_pipe_start(in->loop, c->local_fd, NULL, c->fd, c->ssl, in->opts.idle_timeout_ms, pipe_done,
	                     in) != 0) {
		conn_free(c);
		return;
	}
	c->fd = c->local_fd = -1;
	c->ssl = NULL;
	conn_free(c);
}

static void handshake(struct in_conn *c)
{
	struct aegis_mesh_inbound *in = c->in;
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		char peer[AEGIS_MTLS_ID_MAX];
		if (aegis_mtls_check_peer(in->opts.mtls, c->ssl, NULL, 0, c->what, peer, sizeof(peer)) != 0) {
			in->stats.refused++;
			conn_free(c);
			return;
		}
		in->stats.mtls++;
		AEGIS_LOG(AEGIS_LOG_DEBUG, "inbound mtls", LKV_S("conn", c->what), LKV_S("peer", peer));
		connect_local(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		wait_on(c, c->fd, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE, 0);
		return;
	}
	aegis_mtls_note_failure(in->opts.mtls, c->ssl, c->what);
	in->stats.refused++;
	conn_free(c);
}

/* First bytes: a TLS handshake record is a peer sidecar; anything else is plaintext. */
static void detect(struct in_conn *c, bool timed_out)
{
	struct aegis_mesh_inbound *in = c->in;
	uint8_t b = 0;
	bool tls = false;
	if (!timed_out) {
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			conn_free(c);
			return;
		}
		if (n < 0)
			return;
		tls = b == TLS_HANDSHAKE;
	}
	ev_timer_stop(in->loop, &c->timer);
	if (!tls) {
		if (in->opts.strict) {
			in->stats.refused++;
			AEGIS_LOG(AEGIS_LOG_INFO, "inbound plaintext refused (strict)",
			          LKV_S("conn", c->what));
			conn_free(c);
			return;
		}
		in->stats.plaintext++;
		connect_local(c);
		return;
	}
	if (in->opts.mtls == NULL) {
		in->stats.refused++;
		conn_free(c);
		return;
	}
	c->ssl = SSL_new(aegis_mtls_ctx(in->opts.mtls));
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		conn_free(c);
		return;
	}
	SSL_set_accept_state(c->ssl);
	aegis_mtls_read_ahead(c->ssl);
	c->st = ST_HANDSHAKE;
	ev_timer_set(&c->timer, HANDSHAKE_MS / 1000.0, 0);
	ev_timer_start(in->loop, &c->timer);
	handshake(c);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct in_conn *c = container_of(w, struct in_conn, io);
	switch (c->st) {
	case ST_DETECT: detect(c, false); break;
	case ST_HANDSHAKE: handshake(c); break;
	case ST_LOCAL: local_connected(c); break;
	}
	(void)loop;
	(void)revents;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct in_conn *c = container_of(w, struct in_conn, timer);
	if (c->st == ST_DETECT) {
		detect(c, true);
	} else {
		if (c->st == ST_LOCAL) {
			c->in->stats.local_failures++;
		} else {
			c->in->stats.refused++;
			aegis_mtls_note_timeout(c->in->opts.mtls, c->what);
		}
		AEGIS_LOG(AEGIS_LOG_INFO, "inbound timed out", LKV_S("conn", c->what),
		          LKV_S("stage", c->st == ST_LOCAL ? "local connect" : "handshake"));
		conn_free(c);
	}
	(void)loop;
	(void)revents;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	const struct aegis_net_listener *l = container_of(w, struct aegis_net_listener, io);
	struct aegis_mesh_inbound *in = w->data;
	for (int i = 0; i < AEGIS_NET_ACCEPTS_PER_WAKEUP; i++) {
		struct sockaddr_storage peer;
		int fd = aegis_net_accept(w->fd, &peer);
		if (fd < 0)
			break;
		in->stats.accepted++;
		struct in_conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->in = in;
		c->fd = fd;
		c->local_fd = -1;
		ev_init(&c->io, io_cb);
		ev_init(&c->timer, timer_cb);
		c->next = in->conns;
		if (in->conns)
			in->conns->prev = c;
		in->conns = c;
		if (aegis_net_original_dst(fd, &l->bound, &c->orig) != 0) {
			/* Straight to 15006: no application port to hand the bytes to. */
			in->stats.refused++;
			conn_free(c);
			continue;
		}
		char a[64], b[64];
		snprintf(c->what, sizeof(c->what), "inbound %s -> %s",
		         aegis_sockaddr_str(&peer, a, sizeof(a)), aegis_sockaddr_str(&c->orig, b, sizeof(b)));
		c->st = ST_DETECT;
		wait_on(c, fd, EV_READ, (in->opts.detect_ms ? in->opts.detect_ms : 500) / 1000.0);
	}
	(void)loop;
	(void)revents;
}

int aegis_mesh_inbound_new(struct ev_loop *loop, const struct aegis_mesh_inbound_opts *opts,
                           struct aegis_mesh_inbound **out)
{
	struct aegis_mesh_inbound *in = calloc(1, sizeof(*in));
	if (in == NULL)
		return AEGIS_ENOMEM;
	in->loop = loop;
	in->opts = *opts;
	if (in->opts.idle_timeout_ms == 0)
		in->opts.idle_timeout_ms = 3600u * 1000u;
	int rc = aegis_net_listeners_start(&in->ls, loop, opts->listen, opts->n_listen, opts->listen_defaults,
	                                   "inbound", accept_cb, in);
	if (rc != 0) {
		free(in); /* nothing else started yet; errno is the listen's */
		return rc;
	}
	*out = in;
	return 0;
}

void aegis_mesh_inbound_stats(const struct aegis_mesh_inbound *in, struct aegis_mesh_inbound_stats *out)
{
	*out = in->stats;
}

void aegis_mesh_inbound_free(struct aegis_mesh_inbound *in)
{
	if (in == NULL)
		return;
	while (in->conns != NULL)
		conn_free(in->conns);
	aegis_net_listeners_stop(&in->ls, in->loop);
	free(in);
}
