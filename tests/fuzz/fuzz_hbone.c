/* libFuzzer harness for HBONE (mtls/hbone.c): arbitrary bytes from the peer go into aegis_hbone_recv() of a
 * server session, or of a client session that has a CONNECT stream open, while callbacks answer, write,
 * consume, shut down and reset the way proxy/mesh_hbone.c may, and the session's output goes to a writer
 * that may block or take partial writes. The harness checks the callback contract of hbone.h: on_close at
 * most once per stream, no on_data or on_eof after on_close or data after on_eof, data only on an
 * established tunnel, on_request only on a server, on_response only for a stream the client opened, and
 * the stream count matching what was opened and closed.
 *
 * Input: byte 0 is a set of flags (below), then records of [action][length, 2 bytes big-endian][bytes]:
 * the bytes are fed to aegis_hbone_recv() as one read, then the action runs and the session is flushed.
 * What the session writes is parsed as HTTP/2 frames: every byte the harness wrote on a stream (a pattern
 * of stream id and offset) must leave in that stream's DATA frames in order, never more than was written.
 * A short last record takes what is left. tests/fuzz/seeds/gen_hbone.c writes seeds in this format from
 * what two real sessions exchange. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hbone.h"

enum {
	F_SERVER = 1 << 0,    /* the session under test accepts (else it connects) */
	F_PREFACE = 1 << 1,   /* server: feed the client's connection preface before the input */
	F_CONSUME = 1 << 2,   /* on_data gives the window back at once (else the consume action does) */
	F_ECHO = 1 << 3,      /* on_data writes the bytes back on the same stream */
	F_RESPOND = 3 << 4,   /* server: how on_request answers (R_* below) */
	F_EOF_CLOSE = 1 << 6, /* on_eof half-closes our side too */
	F_BLOCKING = 1 << 7,  /* the writer alternates "would block" and partial writes */
};
enum { R_200 = 0, R_LATER = 1 << 4, R_503 = 2 << 4, R_200_SHUT = 3 << 4 };

enum { A_NONE, A_WRITE, A_SHUTDOWN, A_RESET, A_CONSUME, A_PING, A_GOAWAY, A_MORE };

#define MAX_TRACKED 64

struct tracked {
	int32_t id;
	bool established, eof, closed;
	size_t unconsumed;
	size_t written, sent; /* bytes aegis_hbone_write() took, and seen leaving in DATA frames */
};

struct fuzz {
	struct aegis_hbone *h;
	uint8_t flags;
	bool server;
	struct tracked st[MAX_TRACKED];
	size_t n, opened, closed;
	unsigned writes;
	/* The writer parses the frames going out (after the client's 24-byte preface) to check that every
	 * byte written on a stream leaves in its DATA frames, once and in order. */
	size_t skip, hdr_len, payload_left;
	uint8_t hdr[9];
};

/* The bytes the harness writes: byte k of stream id, so the writer can check each one. */
static uint8_t pattern(int32_t id, size_t k)
{
	return (uint8_t)(k * 7 + (k >> 8) + (size_t)id * 13);
}

static struct tracked *find(struct fuzz *f, int32_t id)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->st[i].id == id)
			return &f->st[i];
	return NULL;
}

static struct tracked *track(struct fuzz *f, int32_t id)
{
	struct tracked *t = find(f, id);
	if (t != NULL)
		abort(); /* stream ids are never reused */
	if (f->n == MAX_TRACKED)
		return NULL;
	t = &f->st[f->n++];
	memset(t, 0, sizeof(*t));
	t->id = id;
	f->opened++;
	return t;
}

static void on_request(void *user, int32_t id, const char *authority)
{
	struct fuzz *f = user;
	int fam;
	uint8_t ip[16];
	uint16_t port;
	if (!f->server || id <= 0 || (id & 1) == 0 || strlen(authority) > AEGIS_HBONE_AUTHORITY_MAX)
		abort();
	if (aegis_hbone_parse_authority(authority, &fam, ip, &port) == 0 && port == 0)
		abort();
	struct tracked *t = track(f, id);
	switch (f->flags & F_RESPOND) {
	case R_200:
	case R_200_SHUT:
		/* established first: bytes the client sent before the 200 come from inside respond() */
		if (t != NULL)
			t->established = true;
		if (aegis_hbone_respond(f->h, id, 200, t) != 0)
			abort();
		if ((f->flags & F_RESPOND) == R_200_SHUT)
			aegis_hbone_shutdown(f->h, id);
		break;
	case R_503:
		if (aegis_hbone_respond(f->h, id, 503, t) != 0)
			abort();
		break;
	default: break; /* answered by A_MORE */
	}
}

static void on_response(void *user, int32_t id, int status, void *su)
{
	struct fuzz *f = user;
	struct tracked *t = find(f, id);
	if (f->server || t == NULL || su != t || t->closed)
		abort();
	if (status == 200)
		t->established = true;
	else
		aegis_hbone_reset(f->h, id); /* what a caller giving up does; hbone resets as well */
}

/* aegis_hbone_write() takes min(len, aegis_hbone_write_room()) bytes (hbone.h), or fails with EINVAL for a
 * stream that is gone or half-closed. */
static void write_checked(struct fuzz *f, int32_t id, size_t len)
{
	static uint8_t data[64 << 10];
	struct tracked *t = find(f, id);
	size_t base = t != NULL ? t->written : 0;
	if (len > sizeof(data))
		len = sizeof(data);
	for (size_t i = 0; i < len; i++)
		data[i] = pattern(id, base + i);
	size_t room = aegis_hbone_write_room(f->h, id);
	ssize_t n = aegis_hbone_write(f->h, id, data, len);
	if (n < 0 ? n != AEGIS_EINVAL && n != AEGIS_ENOMEM : (size_t)n != (len < room ? len : room))
		abort();
	if (n > 0 && t != NULL)
		t->written += (size_t)n;
	if (aegis_hbone_write_room(f->h, id) > AEGIS_HBONE_STREAM_OUTBUF)
		abort();
}

static void on_data(void *user, int32_t id, const uint8_t *data, size_t len, void *su)
{
	struct fuzz *f = user;
	struct tracked *t = find(f, id);
	if (t != NULL && su != t)
		abort();
	if (t != NULL && (t->closed || t->eof || !t->established))
		abort();
	if (f->flags & F_CONSUME)
		aegis_hbone_consume(f->h, id, len);
	else if (t != NULL)
		t->unconsumed += len;
	else
		aegis_hbone_consume(f->h, id, len);
	if (f->flags & F_ECHO)
		write_checked(f, id,
		              len); /* as many bytes back (the pattern, so the writer can check them) */
}

static void on_eof(void *user, int32_t id, void *su)
{
	struct fuzz *f = user;
	struct tracked *t = find(f, id);
	if (t != NULL && (su != t || t->closed || t->eof))
		abort();
	if (t != NULL)
		t->eof = true;
	if (f->flags & F_EOF_CLOSE)
		aegis_hbone_shutdown(f->h, id);
}

static void on_close(void *user, int32_t id, uint32_t error_code, void *su)
{
	struct fuzz *f = user;
	struct tracked *t = find(f, id);
	(void)error_code;
	if (t == NULL)
		return; /* a request answered 400 by hbone itself, or past MAX_TRACKED */
	if (t->closed || (su != NULL && su != t))
		abort();
	t->closed = true;
	f->closed++;
	if (t->unconsumed > 0) {
		/* The connection window of bytes the application never took (mesh_hbone.c does the same). */
		aegis_hbone_consume(f->h, id, t->unconsumed);
		t->unconsumed = 0;
	}
}

static void on_ping_ack(void *user)
{
	(void)user;
}

static const struct aegis_hbone_cbs cbs = {on_request, on_response, on_data, on_eof, on_close, on_ping_ack};

/* Follows the frames in the bytes the session wrote; checks DATA payloads of tracked streams. */
static void check_out(struct fuzz *f, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (f->skip > 0) {
			size_t k = n < f->skip ? n : f->skip;
			f->skip -= k;
			p += k;
			n -= k;
		} else if (f->hdr_len < 9) {
			f->hdr[f->hdr_len++] = *p++;
			n--;
			if (f->hdr_len == 9)
				f->payload_left =
				        (size_t)f->hdr[0] << 16 | (size_t)f->hdr[1] << 8 | f->hdr[2];
		} else {
			size_t k = n < f->payload_left ? n : f->payload_left;
			int32_t id =
			        (int32_t)((uint32_t)(f->hdr[5] & 0x7f) << 24 | (uint32_t)f->hdr[6] << 16 |
			                  (uint32_t)f->hdr[7] << 8 | f->hdr[8]);
			struct tracked *t = f->hdr[3] == 0 && !(f->hdr[4] & 0x08) ? find(f, id) : NULL;
			for (size_t i = 0; t != NULL && i < k; i++, t->sent++)
				if (t->sent >= t->written || p[i] != pattern(id, t->sent))
					abort();
			f->payload_left -= k;
			p += k;
			n -= k;
		}
		if (f->hdr_len == 9 && f->payload_left == 0)
			f->hdr_len = 0;
	}
}

static ssize_t sink(void *io, const uint8_t *data, size_t len)
{
	struct fuzz *f = io;
	size_t took = len;
	if (len == 0)
		abort();
	if (f->flags & F_BLOCKING) {
		switch (f->writes++ % 3) {
		case 0: took = 0; break;
		case 1: took = len > 1 ? len / 2 : 1; break;
		default: break;
		}
	}
	check_out(f, data, took);
	return (ssize_t)took;
}

static void flush(struct fuzz *f)
{
	/* A blocking writer needs several rounds, as the event loop would call again when writable. */
	for (int i = 0; i < 8; i++) {
		if (aegis_hbone_flush(f->h, sink, f) != 0)
			abort();
		if (!aegis_hbone_want_write(f->h))
			break;
	}
}

static void act(struct fuzz *f, uint8_t a)
{
	/* 64 KiB with the top bit: a few of those fill a stream's buffer while the peer's window is shut. */
	size_t jlen = (a & 0x80) ? 64u << 10 : 100;
	struct tracked *t = f->n > 0 ? &f->st[(a >> 3) % f->n] : NULL;
	switch (a & 7) {
	case A_WRITE:
		for (size_t i = 0; i < f->n; i++)
			write_checked(f, f->st[i].id, jlen);
		break;
	case A_SHUTDOWN:
		if (t != NULL && (a & 0x40)) {
			/* Early bytes: taken whole on a client stream still waiting for its answer, and then
			 * checked on the wire like any other. */
			uint8_t b = pattern(t->id, t->written);
			int rc = aegis_hbone_write_early(f->h, t->id, &b, 1);
			if (rc == 0)
				t->written++;
			else if (rc != AEGIS_EINVAL && rc != AEGIS_ENOMEM)
				abort();
		} else if (t != NULL) {
			aegis_hbone_shutdown(f->h, t->id);
		}
		break;
	case A_RESET:
		if (t != NULL)
			aegis_hbone_reset(f->h, t->id);
		break;
	case A_CONSUME:
		for (size_t i = 0; i < f->n; i++) {
			aegis_hbone_consume(f->h, f->st[i].id, f->st[i].unconsumed);
			f->st[i].unconsumed = 0;
		}
		break;
	case A_PING: aegis_hbone_ping(f->h); break;
	case A_GOAWAY: aegis_hbone_goaway(f->h); break;
	case A_MORE:
		if (f->server) {
			/* Deferred answers: the first tracked stream not answered yet gets 200 (or 503). */
			for (size_t i = 0; i < f->n; i++) {
				struct tracked *u = &f->st[i];
				if (u->established || u->closed)
					continue;
				int status = (a & 0x80) ? 503 : 200;
				u->established = status == 200;
				if (aegis_hbone_respond(f->h, u->id, status, u) != 0)
					u->established = false;
				break;
			}
		} else if (f->n < MAX_TRACKED) {
			struct tracked *u = &f->st[f->n];
			int32_t id = aegis_hbone_connect(
			        f->h, (a & 0x80) ? "[2001:db8::1]:443" : "10.0.0.2:80", NULL, 0, u);
			if (id > 0) {
				if (track(f, id) != u)
					abort();
			} else if (id != AEGIS_ELIMIT && id != AEGIS_ENOMEM && id != AEGIS_EINVAL) {
				abort();
			}
		}
		break;
	default: break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct fuzz f;
	if (size == 0)
		return 0;
	memset(&f, 0, sizeof(f));
	f.flags = data[0];
	f.server = f.flags & F_SERVER;
	data++;
	size--;
	if (aegis_hbone_new(f.server, &cbs, &f, &f.h) != 0)
		abort();
	bool ok = true;
	if (f.server) {
		if (f.flags & F_PREFACE)
			ok = aegis_hbone_recv(f.h, preface, sizeof(preface) - 1) == 0;
	} else {
		/* The tunnel the peer's bytes answer: stream 1, with bytes waiting for the 200. */
		struct tracked *t = &f.st[0];
		int32_t id = aegis_hbone_connect(f.h, "10.0.0.1:9080", NULL, 0, t);
		if (id != 1 || track(&f, id) != t)
			abort();
		write_checked(&f, id, 5);
		if (t->written != 5)
			abort();
		f.skip = 24; /* the client's connection preface */
	}
	flush(&f);
	while (size > 0 && ok) {
		uint8_t a = data[0];
		size_t len = size >= 3 ? (size_t)data[1] << 8 | data[2] : 0;
		size_t hdr = size >= 3 ? 3 : size;
		data += hdr;
		size -= hdr;
		if (len > size)
			len = size;
		int rc = aegis_hbone_recv(f.h, data, len);
		if (rc != 0 && rc != AEGIS_EPROTO)
			abort();
		ok = rc == 0;
		data += len;
		size -= len;
		if (ok)
			act(&f, a);
		flush(&f);
		if (aegis_hbone_streams(f.h) > AEGIS_HBONE_MAX_STREAMS + 1)
			abort();
		/* The client's streams are all ours: every one is open until its on_close. */
		if (!f.server && aegis_hbone_streams(f.h) != f.opened - f.closed)
			abort();
	}
	(void)aegis_hbone_alive(f.h);
	aegis_hbone_free(f.h);
	return 0;
}
