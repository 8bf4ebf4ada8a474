/* The byte relay of mesh connections: see mesh_pipe.h.
 *
 * Every event on either socket runs pump(), which tries every possible step (read a, write b, read b,
 * write a, propagate a half-close) until none makes progress, then recomputes the events each socket waits
 * for. Trying everything on every wake-up is what makes TLS simple here: an SSL_read may need the socket to
 * be writable and an SSL_write readable, and decrypted bytes may sit inside the SSL with nothing left on
 * the socket to wake us; a step that cannot progress costs one call that returns WANT_*.
 *
 * Reads are the exception: a side is read only while it may hold bytes (side.readable). A read that
 * returned less than it asked for, with nothing left inside the SSL, or that said EAGAIN, emptied the
 * socket; the next readiness event of that socket (the loop is level-triggered) makes it readable again.
 * Without this, every wake-up cost two reads that said EAGAIN (about 8 reads per request/response). */
#include "aegis/container.h"
#include "mesh_pipe.h"
#include "mtls_ctx.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

enum io_result { IO_OK, IO_AGAIN, IO_EOF, IO_ERR };

struct side {
	ev_io io;
	int fd;
	SSL *ssl;
	enum io_result kept; /* IO_OK, or the end (IO_EOF, IO_ERR) met after bytes were gathered */
	bool rd_eof;         /* the peer stopped sending */
	bool wr_shut;        /* we stopped sending */
	bool want_read;      /* the SSL asked for readability to make progress on a write */
	bool want_write;     /* ... or writability to progress on a read */
	bool readable;       /* a read may find bytes (see the top of this file) */
	struct aegis_pipe *p;
};

struct dir {
	uint8_t data[AEGIS_PIPE_BUF];
	size_t off, len;
	uint64_t total;
};

struct aegis_pipe {
	struct ev_loop *loop;
	struct side a, b;
	struct dir a2b, b2a;
	ev_timer idle;
	ev_timer again; /* pump() stopped at its step cap: continue on the next loop iteration */
	double idle_s;
	bool error;
	bool idle_fired;
	aegis_pipe_done_cb done;
	void *user;
	struct aegis_pipe *prev, *next;
};

static struct aegis_pipe *all_pipes;
static unsigned n_pipes;

/* What an SSL_read that returned n <= 0 means. */
static enum io_result ssl_read_result(struct side *s, int n)
{
	switch (SSL_get_error(s->ssl, n)) {
	case SSL_ERROR_WANT_READ: s->readable = false; return IO_AGAIN;
	case SSL_ERROR_WANT_WRITE: s->want_write = true; return IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN: return IO_EOF;
	case SSL_ERROR_SYSCALL:
		/* A FIN without close_notify: the peer stopped sending. */
		return errno == 0 || n == 0 ? IO_EOF : IO_ERR;
	default: return IO_ERR;
	}
}

static enum io_result side_read(struct side *s, uint8_t *buf, size_t cap, size_t *got)
{
	if (s->ssl != NULL) {
		if (s->kept != IO_OK) /* the end met while gathering, after the bytes it followed */
			return s->kept;
		/* Gather what the SSL holds already, so that the other side gets it in one write. */
		size_t have = 0;
		int n = aegis_mtls_read_gather(s->ssl, buf, cap, &have);
		if (have == 0)
			return ssl_read_result(s, n);
		*got = have;
		if (n > 0) {
			if (have < cap && SSL_pending(s->ssl) == 0 && !SSL_has_pending(s->ssl))
				s->readable = false;
		} else {
			enum io_result r = ssl_read_result(s, n);
			if (r == IO_EOF || r == IO_ERR)
				s->kept = r;
		}
		return IO_OK;
	}
	ssize_t n = read(s->fd, buf, cap);
	if (n > 0) {
		*got = (size_t)n;
		if ((size_t)n < cap)
			s->readable = false;
		return IO_OK;
	}
	if (n == 0)
		return IO_EOF;
	if (errno == EAGAIN)
		s->readable = false;
	return errno == EAGAIN || errno == EINTR ? IO_AGAIN : IO_ERR;
}

static enum io_result side_write(struct side *s, const uint8_t *buf, size_t len, size_t *put)
{
	if (s->ssl != NULL) {
		ERR_clear_error();
		int n = SSL_write(s->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
		if (n > 0) {
			*put = (size_t)n;
			return IO_OK;
		}
		switch (SSL_get_error(s->ssl, n)) {
		case SSL_ERROR_WANT_WRITE: return IO_AGAIN;
		case SSL_ERROR_WANT_READ: s->want_read = true; return IO_AGAIN;
		default: return IO_ERR;
		}
	}
	ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0) {
		*put = (size_t)n;
		return IO_OK;
	}
	return errno == EAGAIN || errno == EINTR ? IO_AGAIN : IO_ERR;
}

/* Stops our sending half: close_notify on TLS (the TCP write half stays open so that TLS 1.3 half-close
 * works), FIN on plain TCP. */
static enum io_result side_shutdown(struct side *s)
{
	if (s->ssl != NULL) {
		ERR_clear_error();
		int r = SSL_shutdown(s->ssl);
		if (r >= 0)
			return IO_OK;
		int e = SSL_get_error(s->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE)
			return IO_AGAIN;
		if (e == SSL_ERROR_WANT_READ) {
			s->want_read = true;
			return IO_AGAIN;
		}
		return IO_ERR;
	}
	return shutdown(s->fd, SHUT_WR) == 0 ? IO_OK : IO_ERR;
}

/* One direction: from -> d -> to. Returns true when something moved. */
static bool step(struct aegis_pipe *p, struct side *from, struct dir *d, struct side *to)
{
	bool progress = false;
	if (d->len == 0)
		d->off = 0; /* drained: the whole buffer is free again */
	if (!from->rd_eof && from->readable && d->off + d->len < AEGIS_PIPE_BUF) {
		size_t got = 0;
		enum io_result r =
		        side_read(from, d->data + d->off + d->len, AEGIS_PIPE_BUF - d->off - d->len, &got);
		if (r == IO_OK) {
			d->len += got;
			progress = true;
		} else if (r == IO_EOF) {
			from->rd_eof = true;
			progress = true;
		} else if (r == IO_ERR) {
			p->error = true;
		}
	}
	if (d->len > 0 && !to->wr_shut) {
		size_t put = 0;
		enum io_result r = side_write(to, d->data + d->off, d->len, &put);
		if (r == IO_OK && put > 0) {
			d->off += put;
			d->len -= put;
			d->total += put;
			progress = true;
		} else if (r == IO_ERR) {
			p->error = true;
		}
	}
	if (from->rd_eof && d->len == 0 && !to->wr_shut) {
		enum io_result r = side_shutdown(to);
		if (r == IO_OK) {
			to->wr_shut = true;
			progress = true;
		} else if (r == IO_ERR) {
			p->error = true;
		}
	}
	return progress;
}

static void finish(struct aegis_pipe *p)
{
	ev_io_stop(p->loop, &p->a.io);
	ev_io_stop(p->loop, &p->b.io);
	ev_timer_stop(p->loop, &p->idle);
	ev_timer_stop(p->loop, &p->again);
	SSL_free(p->a.ssl);
	SSL_free(p->b.ssl);
	close(p->a.fd);
	close(p->b.fd);
	if (p->prev)
		p->prev->next = p->next;
	else
		all_pipes = p->next;
	if (p->next)
		p->next->prev = p->prev;
	n_pipes--;
}

static void end(struct aegis_pipe *p)
{
	finish(p);
	struct aegis_pipe_result r = {
	        .a_to_b = p->a2b.total,
	        .b_to_a = p->b2a.total,
	        .idle_timeout = p->idle_fired,
	        .error = p->error,
	};
	if (p->done)
		p->done(p->user, &r);
	free(p);
}

static void set_events(struct aegis_pipe *p, struct side *s, struct dir *in, const struct dir *out,
                       const struct side *other)
{
	int ev = 0;
	if (in->len == 0)
		in->off = 0;
	if ((!s->rd_eof && in->off + in->len < AEGIS_PIPE_BUF) || s->want_read)
		ev |= EV_READ;
	if ((out->len > 0 && !s->wr_shut) || s->want_write || (other->rd_eof && out->len == 0 && !s->wr_shut))
		ev |= EV_WRITE;
	if (ev != (s->io.events & (EV_READ | EV_WRITE))) {
		ev_io_stop(p->loop, &s->io);
		ev_io_set(&s->io, s->fd, ev);
		if (ev)
			ev_io_start(p->loop, &s->io);
	}
}

static void pump(struct aegis_pipe *p)
{
	bool moved = false, capped = true;
	for (int i = 0; i < 64; i++) {
		p->a.want_read = p->a.want_write = p->b.want_read = p->b.want_write = false;
		bool progress = step(p, &p->a, &p->a2b, &p->b);
		progress |= step(p, &p->b, &p->b2a, &p->a);
		moved |= progress;
		if (p->error || !progress) {
			capped = false;
			break;
		}
	}
	bool a_done = p->a.rd_eof && p->a2b.len == 0 && p->b.wr_shut;
	bool b_done = p->b.rd_eof && p->b2a.len == 0 && p->a.wr_shut;
	if (p->error || (a_done && b_done)) {
		end(p);
		return;
	}
	if (moved && p->idle_s > 0)
		ev_timer_again(p->loop, &p->idle);
	/* Stopped while still moving bytes: an SSL may hold decrypted bytes that no socket event will
	 * announce, so come back on the next iteration instead of waiting for one (and let other work run
	 * meanwhile). */
	if (capped && !ev_is_active(&p->again)) {
		ev_timer_set(&p->again, 0, 0);
		ev_timer_start(p->loop, &p->again);
	}
	set_events(p, &p->a, &p->a2b, &p->b2a, &p->b);
	set_events(p, &p->b, &p->b2a, &p->a2b, &p->a);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct side *s = container_of(w, struct side, io);
	if (revents & EV_READ)
		s->readable = true;
	pump(s->p);
	(void)loop;
	(void)revents;
}

static void again_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	pump(container_of(w, struct aegis_pipe, again));
	(void)loop;
	(void)revents;
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aegis_pipe *p = container_of(w, struct aegis_pipe, idle);
	p->idle_fired = true;
	end(p);
	(void)loop;
	(void)revents;
}

int aegis_pipe_start(struct ev_loop *loop, int fd_a, SSL *ssl_a, int fd_b, SSL *ssl_b, uint32_t idle_ms,
                     aegis_pipe_done_cb done, void *user)
{
	struct aegis_pipe *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return AEGIS_ENOMEM;
	p->loop = loop;
	p->a = (struct side){.fd = fd_a, .ssl = ssl_a, .readable = true, .p = p};
	p->b = (struct side){.fd = fd_b, .ssl = ssl_b, .readable = true, .p = p};
	p->done = done;
	p->user = user;
	p->idle_s = idle_ms / 1000.0;
	ev_io_init(&p->a.io, io_cb, fd_a, 0);
	ev_io_init(&p->b.io, io_cb, fd_b, 0);
	ev_init(&p->idle, idle_cb);
	ev_init(&p->again, again_cb);
	p->idle.repeat = p->idle_s;
	if (p->idle_s > 0)
		ev_timer_again(loop, &p->idle);
	p->next = all_pipes;
	if (all_pipes)
		all_pipes->prev = p;
	all_pipes = p;
	n_pipes++;
	pump(p);
	return 0;
}

unsigned aegis_pipe_count(void)
{
	return n_pipes;
}

void aegis_pipe_close_all(struct ev_loop *loop)
{
	struct aegis_pipe *p = all_pipes, *next;
	for (; p != NULL; p = next) {
		next = p->next;
		if (p->loop != loop)
			continue;
		finish(p);
		free(p);
	}
}
