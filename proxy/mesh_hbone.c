/* HBONE on the wire: see mesh_hbone.h and docs/mesh.md. This file holds what both sides share: the
 * stream splice to an application socket, the TLS connection I/O, the HTTP/2 session glue and the
 * instance's lifecycle; mesh_hbone_in.c is the inbound 15008 side, mesh_hbone_out.c the outbound pool
 * (mesh_hbone_int.h is their private interface).
 *
 * One struct hconn per TLS connection (client or server side), one struct tun per CONNECT stream and its
 * application socket. Output is not written where it is produced: a connection that has something to send
 * is marked dirty, and an ev_prepare watcher flushes every dirty connection once before the loop sleeps,
 * so that many streams' bytes leave in one TLS write and no callback of the core ever runs inside another
 * one's caller. */
#include "mesh_hbone_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "aegis/container.h"
#include "aegis/log.h"
#include "sockaddr.h"
#include "hbone.h"
#include "mesh_net.h"

/* ---- streams ---- */

static void tun_update(struct tun *t);

static uint32_t idle_ms(const struct aegis_mesh_hbone *hb)
{
	return hb->opts.idle_timeout_ms ? hb->opts.idle_timeout_ms : 3600u * 1000u;
}

static int dir_of(const struct hconn *c)
{
	return c->server ? AEGIS_MESH_HBONE_IN : AEGIS_MESH_HBONE_OUT;
}

void aegis_mesh_hbone_tun_unlink(struct tun *t)
{
	struct hconn *c = t->c;
	if (c == NULL || !t->in_list)
		return;
	if (t->prev)
		t->prev->next = t->next;
	else
		c->tuns = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->in_list = false;
	c->n_tuns--;
	if (t->paused)
		c->n_paused--;
	t->paused = false;
	if (c->n_tuns == 0)
		c->idle_since = ev_now(c->hb->loop);
}

static void orphan_unlink(struct aegis_mesh_hbone *hb, struct tun *t)
{
	for (struct tun **p = &hb->orphans; *p != NULL; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			t->next = NULL;
			return;
		}
}

/* Frees a stream that is off its connection (or whose connection is going). */
void aegis_mesh_hbone_tun_free(struct aegis_mesh_hbone *hb, struct tun *t, bool abort_app)
{
	ev_io_stop(hb->loop, &t->io);
	ev_timer_stop(hb->loop, &t->timer);
	if (t->fd >= 0) {
		if (abort_app) {
			/* An abrupt end reaches the application as a reset, not as a clean FIN. */
			struct linger lg = {1, 0};
			(void)setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(t->fd);
	}
	if (t->counted)
		hb->stats.streams_active[t->dir]--;
	free(t->buf);
	free(t);
}

void aegis_mesh_hbone_tun_add(struct hconn *c, struct tun *t)
{
	t->c = c;
	t->next = c->tuns;
	t->prev = NULL;
	if (c->tuns)
		c->tuns->prev = t;
	c->tuns = t;
	t->in_list = true;
	c->n_tuns++;
}

static void tun_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void tun_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

struct tun *aegis_mesh_hbone_tun_new(struct aegis_mesh_hbone *hb, int fd)
{
	struct aegis_mesh_hbone_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	struct tun *t = &r->t;
	t->hb = hb;
	t->fd = fd;
	ev_init(&t->io, tun_io_cb);
	ev_init(&t->timer, tun_timer_cb);
	t->last_active = ev_now(hb->loop);
	return t;
}

void aegis_mesh_hbone_tun_timer(struct aegis_mesh_hbone *hb, struct tun *t, double s)
{
	ev_timer_stop(hb->loop, &t->timer);
	ev_timer_set(&t->timer, s, 0);
	ev_timer_start(hb->loop, &t->timer);
}

/* A stream with an application socket whose HTTP/2 side is gone: done once its bytes are out. */
static void orphan_maybe_done(struct aegis_mesh_hbone *hb, struct tun *t)
{
	if (t->len == 0) {
		orphan_unlink(hb, t);
		t->c = NULL;
		aegis_mesh_hbone_tun_free(hb, t, false);
	}
}

/* The stream is established (200 sent or received): the application socket joins the splice. */
void aegis_mesh_hbone_tun_open(struct hconn *c, struct tun *t)
{
	struct aegis_mesh_hbone *hb = c->hb;
	t->st = T_OPEN;
	t->counted = true;
	t->dir = dir_of(c);
	hb->stats.streams_opened[dir_of(c)]++;
	hb->stats.streams_active[dir_of(c)]++;
	t->last_active = ev_now(hb->loop);
	aegis_mesh_hbone_tun_timer(hb, t, idle_ms(hb) / 1000.0);
	tun_update(t);
}

/* Which events the application socket waits for. */
static void tun_update(struct tun *t)
{
	struct hconn *c = t->c;
	struct aegis_mesh_hbone *hb = c ? c->hb : NULL;
	int ev = 0;
	if (t->fd < 0)
		return;
	if (t->st == T_OPEN && c != NULL && c->h != NULL && !t->app_eof && !t->paused)
		ev |= EV_READ;
	if (t->len > 0)
		ev |= EV_WRITE;
	if (hb == NULL)
		return;
	if (ev != (t->io.events & (EV_READ | EV_WRITE)) || !ev_is_active(&t->io)) {
		ev_io_stop(hb->loop, &t->io);
		ev_io_set(&t->io, t->fd, ev);
		if (ev)
			ev_io_start(hb->loop, &t->io);
	}
}

enum aegis_mesh_hbone_result aegis_mesh_hbone_tun_failure(const struct tun *t,
                                                          enum aegis_mesh_hbone_result fallback)
{
	return t->early_queued > 0 ? AEGIS_MESH_HBONE_FAILED_UNSURE : fallback;
}

/* Every abrupt end of a stream is counted (aegis_hbone_stream_resets_total) and logged at debug, once. */
void aegis_mesh_hbone_tun_note_reset(struct aegis_mesh_hbone *hb, struct tun *t,
                                     enum aegis_mesh_hbone_reset r, const char *why, uint32_t h2_error)
{
	static const char *const names[AEGIS_MESH_HBONE_N_RESET] = {"peer_reset", "app_error",  "buffer",
	                                                            "idle",       "connection", "internal"};
	if (t->reset)
		return;
	t->reset = true;
	int dir = t->c != NULL ? dir_of(t->c) : t->dir;
	hb->stats.stream_resets[dir][r]++;
	AEGIS_LOG(AEGIS_LOG_DEBUG, "hbone: stream reset", LKV_S("conn", t->c != NULL ? t->c->what : "-"),
	          LKV_S("authority", t->authority), LKV_I("stream", t->id), LKV_S("reason", names[r]),
	          LKV_S("why", why), LKV_I("h2_error", h2_error));
}

/* The application went away or broke: reset the stream; it is freed when the core closes it. */
static void tun_abort(struct tun *t, enum aegis_mesh_hbone_reset r, const char *why)
{
	struct hconn *c = t->c;
	struct aegis_mesh_hbone *hb = c->hb;
	aegis_mesh_hbone_tun_note_reset(hb, t, r, why, 0);
	ev_io_stop(hb->loop, &t->io);
	if (t->fd >= 0) {
		close(t->fd);
		t->fd = -1;
	}
	t->len = 0;
	if (t->id > 0 && c->h != NULL) {
		aegis_hbone_reset(c->h, t->id);
		aegis_mesh_hbone_conn_dirty(c);
	}
}

/* Writes what the application has not taken yet; gives the window back for what it took. */
static void tun_drain(struct tun *t, struct aegis_mesh_hbone *hb)
{
	while (t->len > 0 && t->fd >= 0) {
		ssize_t n = send(t->fd, t->buf + t->off, t->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (t->c != NULL) {
				tun_abort(t, AEGIS_HBONE_R_APP, strerror(errno));
			} else {
				aegis_mesh_hbone_tun_note_reset(hb, t, AEGIS_HBONE_R_APP, strerror(errno), 0);
				t->len = 0;
			}
			return;
		}
		t->off += (size_t)n;
		t->len -= (size_t)n;
		t->last_active = ev_now(hb->loop);
		if (t->c != NULL && t->c->h != NULL && t->id > 0) {
			aegis_hbone_consume(t->c->h, t->id, (size_t)n);
			aegis_mesh_hbone_conn_dirty(t->c);
		}
	}
	if (t->len == 0)
		t->off = 0;
	if (t->len == 0 && t->peer_eof && !t->app_shut && t->fd >= 0) {
		(void)shutdown(t->fd, SHUT_WR);
		t->app_shut = true;
	}
}

static void tun_read_app(struct tun *t)
{
	struct hconn *c = t->c;
	struct aegis_mesh_hbone *hb = c->hb;
	for (int round = 0; round < 4 && !t->app_eof && t->fd >= 0; round++) {
		/* Straight into the stream's buffer (no copy through scratch): its free part, one or two
		 * pieces of the ring, in one readv. */
		struct iovec iov[2];
		int k = aegis_hbone_write_iov(c->h, t->id, iov);
		if (k < 0) {
			tun_abort(t, AEGIS_HBONE_R_INTERNAL, "no memory for the stream's buffer");
			return;
		}
		if (k == 0) {
			if (!t->paused) {
				t->paused = true;
				c->n_paused++;
			}
			break;
		}
		size_t room = iov[0].iov_len + (k > 1 ? iov[1].iov_len : 0);
		ssize_t n = readv(t->fd, iov, k);
		if (n > 0) {
			if (aegis_hbone_commit(c->h, t->id, (size_t)n) != 0) {
				tun_abort(t, AEGIS_HBONE_R_INTERNAL, "the stream took less than its room");
				return;
			}
			t->last_active = ev_now(hb->loop);
			aegis_mesh_hbone_conn_dirty(c);
			if ((size_t)n < room)
				break;
		} else if (n == 0) {
			t->app_eof = true;
			aegis_hbone_shutdown(c->h, t->id);
			aegis_mesh_hbone_conn_dirty(c);
		} else {
			if (errno != EAGAIN && errno != EINTR)
				tun_abort(t, AEGIS_HBONE_R_APP, strerror(errno));
			break;
		}
	}
}

static void tun_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tun *t = container_of(w, struct tun, io);
	struct aegis_mesh_hbone *hb = t->hb;
	(void)loop;
	if (t->c == NULL) { /* an orphan: only its buffered bytes are left */
		tun_drain(t, hb);
		if (t->len == 0 || t->fd < 0) {
			t->len = 0;
			orphan_maybe_done(hb, t);
		}
		return;
	}
	if (t->st == T_PENDING) {
		if (t->c->server)
			aegis_mesh_hbone_in_connected(t);
		return;
	}
	if (revents & EV_WRITE)
		tun_drain(t, hb);
	if (t->fd >= 0 && (revents & EV_READ) && t->st == T_OPEN)
		tun_read_app(t);
	if (t->fd >= 0)
		tun_update(t);
}

/* ---- connections ---- */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_again_cb(struct ev_loop *loop, ev_timer *w, int revents);

void aegis_mesh_hbone_conn_events(struct hconn *c, int ev)
{
	if (ev != (c->io.events & (EV_READ | EV_WRITE)) || !ev_is_active(&c->io)) {
		ev_io_stop(c->hb->loop, &c->io);
		ev_io_set(&c->io, c->fd, ev);
		ev_io_start(c->hb->loop, &c->io);
	}
}

void aegis_mesh_hbone_conn_dirty(struct hconn *c)
{
	struct aegis_mesh_hbone *hb = c->hb;
	if (c->dirty || c->dead || c->h == NULL)
		return;
	c->dirty = true;
	c->dirty_next = hb->dirty;
	hb->dirty = c;
	if (!ev_is_active(&hb->flush))
		ev_prepare_start(hb->loop, &hb->flush);
}

struct hconn *aegis_mesh_hbone_conn_new(struct aegis_mesh_hbone *hb, bool server, int fd)
{
	struct hconn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->hb = hb;
	c->server = server;
	c->fd = fd;
	ev_init(&c->io, conn_io_cb);
	ev_init(&c->timer, conn_timer_cb);
	ev_init(&c->again, conn_again_cb);
	c->next = hb->conns;
	if (hb->conns)
		hb->conns->prev = c;
	hb->conns = c;
	c->created = c->last_rx = c->idle_since = ev_now(hb->loop);
	return c;
}

/* Frees a connection: every stream on it ends (a pending outbound open reports result), every
 * application socket of an open stream is reset. Callbacks may open new streams (never on c: it is dead). */
static void conn_fail(struct hconn *c, enum aegis_mesh_hbone_result result, const char *why)
{
	struct aegis_mesh_hbone *hb = c->hb;
	c->dead = true;
	if (c->h != NULL)
		AEGIS_LOG(AEGIS_LOG_DEBUG, "hbone connection closed", LKV_S("conn", c->what),
		          LKV_S("why", why), LKV_I("streams", c->n_tuns));
	while (c->tuns != NULL) {
		struct tun *t = c->tuns;
		aegis_mesh_hbone_tun_unlink(t);
		aegis_mesh_hbone_open_cb cb = t->cb;
		void *user = t->user;
		enum aegis_mesh_hbone_result r = aegis_mesh_hbone_tun_failure(t, result);
		if (cb != NULL) {
			/* Not ours: the caller keeps the socket. */
			t->fd = -1;
			t->cb = NULL;
			hb->stats.connect_failures[dir_of(c)][AEGIS_HBONE_FNONE]++;
		} else if (t->st == T_OPEN) {
			aegis_mesh_hbone_tun_note_reset(hb, t, AEGIS_HBONE_R_CONN, why, 0);
		}
		aegis_mesh_hbone_tun_free(hb, t, true);
		if (cb != NULL)
			cb(user, r, why);
	}
	ev_io_stop(hb->loop, &c->io);
	ev_timer_stop(hb->loop, &c->timer);
	ev_timer_stop(hb->loop, &c->again);
	if (c->dirty) {
		for (struct hconn **p = &hb->dirty; *p != NULL; p = &(*p)->dirty_next)
			if (*p == c) {
				*p = c->dirty_next;
				break;
			}
	}
	if (c->h != NULL && c->st == C_READY)
		hb->stats.conns_open[dir_of(c)]--;
	aegis_hbone_free(c->h);
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		hb->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static ssize_t tls_write(void *io, const uint8_t *data, size_t len)
{
	struct hconn *c = io;
	ERR_clear_error();
	int n = SSL_write(c->ssl, data, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (n > 0)
		return n;
	int e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		c->want_write = e == SSL_ERROR_WANT_WRITE;
		return 0;
	}
	return -1;
}

/* Writes what the session has; resumes streams that wait for room. Returns false when c was freed. */
static bool conn_flush(struct hconn *c)
{
	c->want_write = false;
	if (aegis_hbone_flush(c->h, tls_write, c) != 0) {
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "write failed");
		return false;
	}
	if (c->n_paused > 0) {
		for (struct tun *t = c->tuns; t != NULL; t = t->next) {
			if (t->paused && aegis_hbone_write_room(c->h, t->id) > 0) {
				t->paused = false;
				c->n_paused--;
				tun_update(t);
			}
		}
	}
	if (!aegis_hbone_alive(c->h)) {
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "session ended");
		return false;
	}
	aegis_mesh_hbone_conn_events(
	        c, EV_READ | (c->want_write || aegis_hbone_want_write(c->h) ? EV_WRITE : 0));
	return true;
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct aegis_mesh_hbone *hb = container_of(w, struct aegis_mesh_hbone, flush);
	while (hb->dirty != NULL) {
		struct hconn *c = hb->dirty;
		hb->dirty = c->dirty_next;
		c->dirty = false;
		(void)conn_flush(c);
	}
	ev_prepare_stop(loop, w);
	(void)revents;
}

/* ---- HTTP/2 callbacks (user = the connection) ---- */

static void on_data(void *user, int32_t id, const uint8_t *data, size_t len, void *stream_user)
{
	struct hconn *c = user;
	struct tun *t = stream_user;
	struct aegis_mesh_hbone *hb = c->hb;
	if (t == NULL || t->fd < 0 || t->app_shut) {
		aegis_hbone_consume(c->h, id, len);
		return;
	}
	t->last_active = ev_now(hb->loop);
	size_t done = 0;
	if (t->len == 0) {
		ssize_t n = send(t->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			aegis_hbone_consume(c->h, id, len);
			tun_abort(t, AEGIS_HBONE_R_APP, strerror(errno));
			return;
		}
		if (n > 0) {
			done = (size_t)n;
			aegis_hbone_consume(c->h, id, done);
		}
	}
	if (done < len) {
		size_t need = len - done;
		if (t->off > 0 && t->off + t->len + need > t->cap) {
			memmove(t->buf, t->buf + t->off, t->len);
			t->off = 0;
		}
		if (t->len + need > t->cap) {
			/* Bounded by the stream window: the peer cannot send more than we gave back. */
			size_t cap = t->cap ? t->cap : 64u << 10;
			while (cap < t->len + need)
				cap *= 2;
			uint8_t *nb = cap <= 2 * AEGIS_HBONE_STREAM_WINDOW ? realloc(t->buf, cap) : NULL;
			if (nb == NULL) {
				aegis_hbone_consume(c->h, id, need);
				tun_abort(t, AEGIS_HBONE_R_BUFFER,
				          "bytes for the application beyond their bound");
				return;
			}
			t->buf = nb;
			t->cap = cap;
		}
		memcpy(t->buf + t->off + t->len, data + done, need);
		t->len += need;
		tun_update(t);
	}
	aegis_mesh_hbone_conn_dirty(c);
}

static void on_eof(void *user, int32_t id, void *stream_user)
{
	struct hconn *c = user;
	struct tun *t = stream_user;
	if (t == NULL)
		return;
	t->peer_eof = true;
	/* When the application's half is done and out too, the stream closes now and close() sends the FIN;
	 * otherwise the application hears the peer's end at once, not after our bytes drained. */
	bool closing = t->app_eof && aegis_hbone_buffered(c->h, id) == 0;
	if (t->len == 0 && t->fd >= 0 && !t->app_shut && !closing) {
		(void)shutdown(t->fd, SHUT_WR);
		t->app_shut = true;
	}
}

static void on_close(void *user, int32_t id, uint32_t error_code, void *stream_user)
{
	struct hconn *c = user;
	struct aegis_mesh_hbone *hb = c->hb;
	struct tun *t = stream_user;
	if (t == NULL) {
		/* A server stream not answered yet (the client gave up while we connected locally). */
		for (t = c->tuns; t != NULL && t->id != id; t = t->next)
			;
		if (t == NULL)
			return;
	}
	aegis_mesh_hbone_open_cb cb = t->cb;
	void *u = t->user;
	aegis_mesh_hbone_tun_unlink(t);
	if (cb != NULL) {
		/* Closed before any answer (REFUSED_STREAM after a GOAWAY, a reset): try elsewhere, and not
		 * on this connection again. REFUSED_STREAM promises the peer processed nothing (RFC 9113
		 * 8.7), so early bytes may go elsewhere then; after any other reset they may have arrived. */
		enum aegis_mesh_hbone_result r =
		        error_code == AEGIS_HBONE_REFUSED_STREAM
		                ? AEGIS_MESH_HBONE_CONNECT_FAILED
		                : aegis_mesh_hbone_tun_failure(t, AEGIS_MESH_HBONE_CONNECT_FAILED);
		c->draining = true;
		t->fd = -1;
		t->cb = NULL;
		hb->stats.connect_failures[AEGIS_MESH_HBONE_OUT][AEGIS_HBONE_FNONE]++;
		aegis_mesh_hbone_tun_free(hb, t, false);
		cb(u, r, "stream closed before an answer");
		return;
	}
	bool clean = error_code == 0 && t->peer_eof && t->app_eof;
	if (!clean && t->st == T_OPEN) /* a pending one we gave up on is a connect failure, counted */
		aegis_mesh_hbone_tun_note_reset(hb, t, AEGIS_HBONE_R_PEER, "the peer reset the stream",
		                                error_code);
	if (clean && t->len > 0 && t->fd >= 0) {
		/* The application has not taken everything yet: it keeps its socket until it has. */
		if (t->counted)
			hb->stats.streams_active[dir_of(c)]--;
		t->counted = false;
		t->c = NULL;
		t->next = hb->orphans;
		hb->orphans = t;
		return;
	}
	aegis_mesh_hbone_tun_free(hb, t, !clean);
}

static void on_ping_ack(void *user)
{
	struct hconn *c = user;
	c->ping_out = false;
	c->hb->stats.pings_acked++;
}

static const struct aegis_hbone_cbs cbs = {
        .on_request = aegis_mesh_hbone_in_request,
        .on_response = aegis_mesh_hbone_out_response,
        .on_data = on_data,
        .on_eof = on_eof,
        .on_close = on_close,
        .on_ping_ack = on_ping_ack,
};

/* ---- connection I/O ---- */

static double keepalive_s(const struct aegis_mesh_hbone *hb)
{
	return (hb->opts.keepalive_ms ? hb->opts.keepalive_ms : 10000u) / 1000.0;
}

static void conn_ready(struct hconn *c)
{
	struct aegis_mesh_hbone *hb = c->hb;
	if (aegis_hbone_new(c->server, &cbs, c, &c->h) != 0) {
		c->h = NULL;
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "out of memory");
		return;
	}
	c->st = C_READY;
	hb->stats.conns_opened[dir_of(c)]++;
	hb->stats.conns_open[dir_of(c)]++;
	c->last_rx = c->idle_since = ev_now(hb->loop);
	ev_timer_stop(hb->loop, &c->timer);
	double tick = keepalive_s(hb) / 2;
	ev_timer_set(&c->timer, tick, tick);
	ev_timer_start(hb->loop, &c->timer);
	if (c->server && hb->draining) { /* a peer that has not heard yet: its streams go elsewhere */
		aegis_hbone_goaway(c->h);
		c->draining = true;
		aegis_mesh_hbone_conn_dirty(c);
	}
	/* Streams that waited for the handshake; a refused submit cannot happen on a new session. */
	for (struct tun *t = c->tuns, *next; t != NULL; t = next) {
		next = t->next;
		if (t->id == 0 && !aegis_mesh_hbone_out_submit(c, t)) {
			aegis_mesh_hbone_open_cb cb = t->cb;
			void *u = t->user;
			aegis_mesh_hbone_tun_unlink(t);
			t->fd = -1;
			t->cb = NULL;
			aegis_mesh_hbone_tun_free(hb, t, false);
			if (cb)
				cb(u, AEGIS_MESH_HBONE_CONNECT_FAILED, "CONNECT not accepted");
		}
	}
	aegis_mesh_hbone_conn_dirty(c);
	aegis_mesh_hbone_conn_events(c, EV_READ);
}

static void conn_handshake(struct hconn *c)
{
	struct aegis_mesh_hbone *hb = c->hb;
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		char ids[KEY_MAX];
		const char *want[16];
		size_t n = 0;
		if (!c->server) {
			snprintf(ids, sizeof(ids), "%s", c->key);
			for (char *s = ids; s != NULL && n < 16;) {
				want[n++] = s;
				s = strchr(s, '\n');
				if (s != NULL)
					*s++ = '\0';
			}
		}
		if (aegis_mtls_check_peer(hb->opts.mtls, c->ssl, want, n, c->what, c->peer_id,
		                          sizeof(c->peer_id)) != 0) {
			conn_fail(c, AEGIS_MESH_HBONE_REFUSED, "peer identity refused");
			return;
		}
		conn_ready(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		aegis_mesh_hbone_conn_events(c, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE);
		return;
	}
	aegis_mtls_note_failure(hb->opts.mtls, c->ssl, c->what);
	conn_fail(c, AEGIS_MESH_HBONE_REFUSED, "TLS handshake failed");
}

void aegis_mesh_hbone_conn_start_tls(struct hconn *c)
{
	struct aegis_mesh_hbone *hb = c->hb;
	static const unsigned char alpn[] = {2, 'h', '2'};
	c->ssl = SSL_new(aegis_mtls_ctx(hb->opts.mtls));
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (!c->server && SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn)) != 0)) {
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "out of memory");
		return;
	}
	/* A pooled connection carries many small records: keeping its buffers saves a malloc/free pair per
	 * record (the shared context releases them, which suits the many idle relays of the direct path). */
	SSL_clear_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
	aegis_mtls_read_ahead(c->ssl); /* a DATA frame is four records (mtls/hbone.c): one read takes it */
	if (c->server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	c->st = C_HANDSHAKE;
	ev_timer_stop(hb->loop, &c->timer);
	ev_timer_set(&c->timer, HANDSHAKE_MS / 1000.0, 0);
	ev_timer_start(hb->loop, &c->timer);
	conn_handshake(c);
}

/* Reads and feeds the session; false when c was freed. */
static bool conn_read(struct hconn *c)
{
	struct aegis_mesh_hbone *hb = c->hb;
	for (int i = 0; i < READ_ROUNDS; i++) {
		/* Gather what the SSL holds already, so that the session sees whole frames and the
		 * application gets them in one send. */
		size_t have = 0;
		int n = aegis_mtls_read_gather(c->ssl, hb->scratch, SCRATCH, &have);
		int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
		if (have > 0) {
			c->last_rx = ev_now(hb->loop);
			if (aegis_hbone_recv(c->h, hb->scratch, have) != 0) {
				AEGIS_LOG(AEGIS_LOG_WARN, "hbone: peer broke HTTP/2", LKV_S("conn", c->what));
				if (aegis_hbone_flush(c->h, tls_write, c) != 0) /* its GOAWAY, best effort */
					ERR_clear_error();
				conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "HTTP/2 protocol error");
				return false;
			}
		}
		if (e == SSL_ERROR_NONE) {
			/* Room left and nothing more inside the SSL: the socket is most likely empty, and the
			 * loop is level-triggered, so skip the read that would only say EAGAIN (one system
			 * call per wake-up, a good part of the per-stream cost). */
			if (have < SCRATCH)
				return true;
			continue;
		}
		if (e == SSL_ERROR_WANT_READ)
			return true;
		if (e == SSL_ERROR_WANT_WRITE) {
			c->want_write = true;
			return true;
		}
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED,
		          e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? "peer closed" : "TLS error");
		return false;
	}
	/* Capped: decrypted bytes may wait inside the SSL with nothing on the socket to announce them. */
	ev_timer_set(&c->again, 0, 0);
	ev_timer_start(hb->loop, &c->again);
	return true;
}

/* Every wake-up tries both ways: an SSL_read may have been waiting for writability and an SSL_write for
 * readability, and a read that finds nothing costs one call. */
static void conn_ready_io(struct hconn *c, int revents)
{
	(void)revents;
	if (conn_read(c))
		(void)conn_flush(c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct hconn *c = container_of(w, struct hconn, io);
	(void)loop;
	switch (c->st) {
	case C_CONNECTING: {
		int err = aegis_net_connect_result(c->fd);
		if (err != 0) {
			conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, strerror(err));
			return;
		}
		aegis_mesh_hbone_conn_start_tls(c);
		break;
	}
	case C_HANDSHAKE: conn_handshake(c); break;
	case C_READY: conn_ready_io(c, revents); break;
	}
}

static void conn_again_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct hconn *c = container_of(w, struct hconn, again);
	(void)loop;
	(void)revents;
	conn_ready_io(c, EV_READ);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct hconn *c = container_of(w, struct hconn, timer);
	struct aegis_mesh_hbone *hb = c->hb;
	(void)revents;
	if (c->st == C_CONNECTING) {
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "connect timeout");
		return;
	}
	if (c->st == C_HANDSHAKE) {
		aegis_mtls_note_timeout(hb->opts.mtls, c->what);
		conn_fail(c, AEGIS_MESH_HBONE_REFUSED, "TLS handshake timed out");
		return;
	}
	double now = ev_now(loop), ka = keepalive_s(hb);
	double pool_idle = (hb->opts.pool_idle_ms ? hb->opts.pool_idle_ms : 60000u) / 1000.0;
	if (c->ping_out && now - c->ping_sent >= ka) {
		hb->stats.ping_timeouts++;
		AEGIS_LOG(AEGIS_LOG_WARN, "hbone: keepalive PING unanswered; closing",
		          LKV_S("conn", c->what));
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "keepalive timeout");
		return;
	}
	if (c->n_tuns == 0 && c->draining) {
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "drained");
		return;
	}
	if (c->n_tuns == 0 && now - c->idle_since >= (c->server ? 2 * pool_idle : pool_idle)) {
		hb->stats.pool_idle_closes++;
		conn_fail(c, AEGIS_MESH_HBONE_CONNECT_FAILED, "idle");
		return;
	}
	if (!c->server && !c->ping_out && now - c->last_rx >= ka) {
		aegis_hbone_ping(c->h);
		c->ping_out = true;
		c->ping_sent = now;
		hb->stats.pings_sent++;
		aegis_mesh_hbone_conn_dirty(c);
	}
}

/* ---- stream timers ---- */

static void tun_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tun *t = container_of(w, struct tun, timer);
	struct aegis_mesh_hbone *hb = t->hb;
	(void)revents;
	struct hconn *c = t->c;
	double left = t->last_active + idle_ms(hb) / 1000.0 - ev_now(loop);
	if (c == NULL) { /* an orphan: its application takes no byte any more */
		if (left > 0.001) {
			aegis_mesh_hbone_tun_timer(hb, t, left);
			return;
		}
		aegis_mesh_hbone_tun_note_reset(hb, t, AEGIS_HBONE_R_IDLE, "the application took no byte", 0);
		t->len = 0;
		orphan_maybe_done(hb, t);
		return;
	}
	if (t->st == T_PENDING && c->server) {
		aegis_mesh_hbone_in_timeout(t);
		return;
	}
	if (t->st == T_PENDING) { /* no answer to our CONNECT in time */
		aegis_mesh_hbone_out_timeout(t);
		return;
	}
	if (left > 0.001) {
		aegis_mesh_hbone_tun_timer(hb, t, left);
		return;
	}
	tun_abort(t, AEGIS_HBONE_R_IDLE, "idle");
}

/* ---- public ---- */

int aegis_mesh_hbone_new(struct ev_loop *loop, const struct aegis_mesh_hbone_opts *opts,
                         struct aegis_mesh_hbone **out)
{
	struct aegis_mesh_hbone *hb = calloc(1, sizeof(*hb));
	if (hb == NULL)
		return AEGIS_ENOMEM;
	hb->loop = loop;
	hb->opts = *opts;
	hb->scratch = malloc(SCRATCH);
	if (hb->scratch == NULL || opts->mtls == NULL) {
		free(hb->scratch);
		free(hb);
		return opts->mtls == NULL ? AEGIS_EINVAL : AEGIS_ENOMEM;
	}
	ev_prepare_init(&hb->flush, flush_cb);
	int rc = aegis_mesh_hbone_in_start(hb);
	if (rc != 0) {
		free(hb->scratch);
		free(hb);
		return rc;
	}
	*out = hb;
	return 0;
}

void aegis_mesh_hbone_foreach(const struct aegis_mesh_hbone *hb,
                              void (*fn)(void *user, const struct aegis_mesh_hbone_conn_info *c), void *user)
{
	static const char *const states[] = {"connecting", "handshake", "ready"};
	double now = ev_now(hb->loop);
	for (const struct hconn *c = hb->conns; c != NULL; c = c->next) {
		char peer[64];
		struct aegis_mesh_hbone_conn_info i = {
		        .inbound = c->server,
		        .state = states[c->st],
		        .peer = aegis_sockaddr_str(&c->peer, peer, sizeof(peer)),
		        .peer_identity = c->peer_id,
		        .expected = c->key,
		        .streams = c->n_tuns,
		        .draining = c->draining,
		        .age_s = now - c->created,
		        .idle_s = c->n_tuns ? 0 : now - c->idle_since,
		};
		fn(user, &i);
	}
}

void aegis_mesh_hbone_rotated(struct aegis_mesh_hbone *hb)
{
	for (struct hconn *c = hb->conns; c != NULL; c = c->next)
		if (!c->server)
			c->draining = true;
}

void aegis_mesh_hbone_drain(struct aegis_mesh_hbone *hb)
{
	hb->draining = true;
	for (struct hconn *c = hb->conns; c != NULL; c = c->next) {
		if (c->dead || c->h == NULL || c->st != C_READY)
			continue;
		/* Peers' connections: GOAWAY, their open streams finish. Ours: no new streams on them (new
		 * application connections during the drain get a fresh connection), and GOAWAY tells the peer
		 * it will see none. Either closes on its keepalive tick once its last stream has. */
		aegis_hbone_goaway(c->h);
		c->draining = true;
		aegis_mesh_hbone_conn_dirty(c);
	}
}

void aegis_mesh_hbone_stats(const struct aegis_mesh_hbone *hb, struct aegis_mesh_hbone_stats *out)
{
	*out = hb->stats;
}

void aegis_mesh_hbone_free(struct aegis_mesh_hbone *hb)
{
	if (hb == NULL)
		return;
	while (hb->conns != NULL) {
		/* No callbacks at shutdown: the outbound listener cancelled its requests already. */
		for (struct tun *t = hb->conns->tuns; t != NULL; t = t->next)
			t->cb = NULL;
		conn_fail(hb->conns, AEGIS_MESH_HBONE_CONNECT_FAILED, "shutdown");
	}
	while (hb->orphans != NULL) {
		struct tun *t = hb->orphans;
		hb->orphans = t->next;
		t->c = NULL;
		aegis_mesh_hbone_tun_free(hb, t, true);
	}
	ev_prepare_stop(hb->loop, &hb->flush);
	aegis_mesh_hbone_in_stop(hb);
	free(hb->scratch);
	free(hb);
}
