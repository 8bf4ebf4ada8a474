/* Writes the seed corpus of fuzz_hbone from real traffic: a client and a server HBONE session (mtls/hbone.c,
 * the code under test) talk to each other in memory through a few scenarios, and every read each side gets
 * is recorded. The client's reads become seeds for the harness's client session, the server's reads seeds
 * for its server session, in the harness's input format (fuzz_hbone.c: a flags byte, then records of
 * [action][length, 2 bytes][bytes]). The harness's client opens stream 1 to 10.0.0.1:9080 and writes
 * "hello" before the first record, so every scenario's client starts the same way. A plain nghttp2 client
 * adds a request that is not a CONNECT (answered 400), and two seeds are made by hand (seed_fill_outbuf,
 * seed_ring_wrap).
 *
 *   cc -Iinclude -Imtls tests/fuzz/seeds/gen_hbone.c mtls/hbone.c -lnghttp2 -o /tmp/gen_hbone
 *   /tmp/gen_hbone tests/fuzz/corpus/hbone
 *
 * Deterministic: the same files each run. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "hbone.h"

/* Harness flags and actions (fuzz_hbone.c). */
#define F_SERVER    0x01
#define F_CONSUME   0x04
#define F_ECHO      0x08
#define F_EOF_CLOSE 0x40
#define F_BLOCKING  0x80
#define R_LATER     0x10
#define R_503       0x20
#define A_NONE      0
#define A_WRITE     1
#define A_SHUTDOWN  2
#define A_MORE      7

struct rec {
	uint8_t *buf;
	size_t len, cap;
};

static void put(struct rec *r, const void *p, size_t n)
{
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		r->buf = realloc(r->buf, r->cap);
		if (r->buf == NULL)
			abort();
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

/* One record of the harness format per read. */
static void put_read(struct rec *r, uint8_t action, const uint8_t *p, size_t n)
{
	while (n > 0 || action != A_NONE) {
		size_t k = n > 65535 ? 65535 : n;
		uint8_t hdr[3] = {action, (uint8_t)(k >> 8), (uint8_t)k};
		put(r, hdr, 3);
		put(r, p, k);
		p += k;
		n -= k;
		action = A_NONE;
		if (n == 0)
			break;
	}
}

struct side {
	struct aegis_hbone *h;
	bool server;
	int respond; /* server: status given in on_request, 0 = later */
	int32_t last_id;
	struct rec wire; /* bytes written, not yet read by the other side */
	struct rec seed; /* harness input for a session on this side */
};

static ssize_t wr(void *io, const uint8_t *d, size_t n)
{
	put(&((struct side *)io)->wire, d, n);
	return (ssize_t)n;
}

static void on_request(void *user, int32_t id, const char *authority)
{
	struct side *s = user;
	(void)authority;
	s->last_id = id;
	if (s->respond && aegis_hbone_respond(s->h, id, s->respond, NULL) != 0)
		abort();
}

static void on_response(void *user, int32_t id, int status, void *su)
{
	(void)user;
	(void)id;
	(void)status;
	(void)su;
}

static void on_data(void *user, int32_t id, const uint8_t *d, size_t n, void *su)
{
	(void)d;
	(void)su;
	aegis_hbone_consume(((struct side *)user)->h, id, n);
}

static void on_eof(void *user, int32_t id, void *su)
{
	(void)user;
	(void)id;
	(void)su;
}

static void on_close(void *user, int32_t id, uint32_t err, void *su)
{
	(void)user;
	(void)id;
	(void)err;
	(void)su;
}

static void on_ping_ack(void *user)
{
	(void)user;
}

static const struct aegis_hbone_cbs cbs = {on_request, on_response, on_data, on_eof, on_close, on_ping_ack};

/* Flushes from, delivers to to, and records the read in to's seed with the action to's harness session
 * should take after it. */
static void deliver(struct side *from, struct side *to, uint8_t action)
{
	if (aegis_hbone_flush(from->h, wr, from) != 0)
		abort();
	if (from->wire.len == 0)
		return;
	if (aegis_hbone_recv(to->h, from->wire.buf, from->wire.len) != 0)
		abort();
	put_read(&to->seed, action, from->wire.buf, from->wire.len);
	from->wire.len = 0;
}

static void pump(struct side *c, struct side *s)
{
	for (int i = 0; i < 20; i++) {
		deliver(c, s, A_NONE);
		deliver(s, c, A_NONE);
		if (!aegis_hbone_want_write(c->h) && !aegis_hbone_want_write(s->h))
			break;
	}
}

static void start(struct side *c, struct side *s, uint8_t cflags, uint8_t sflags, int respond)
{
	memset(c, 0, sizeof(*c));
	memset(s, 0, sizeof(*s));
	s->server = true;
	s->respond = respond;
	if (aegis_hbone_new(false, &cbs, c, &c->h) != 0 || aegis_hbone_new(true, &cbs, s, &s->h) != 0)
		abort();
	put(&c->seed, &cflags, 1);
	sflags |= F_SERVER;
	put(&s->seed, &sflags, 1);
	/* As the harness's client does. */
	if (aegis_hbone_connect(c->h, "10.0.0.1:9080", NULL, 0, NULL) != 1 ||
	    aegis_hbone_write(c->h, 1, (const uint8_t *)"hello", 5) != 5)
		abort();
}

static void save(const char *dir, const char *name, const struct rec *r)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	if (fp == NULL || fwrite(r->buf, 1, r->len, fp) != r->len || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
}

static void finish(const char *dir, const char *name, struct side *c, struct side *s)
{
	char n[256];
	snprintf(n, sizeof(n), "client_%s", name);
	save(dir, n, &c->seed);
	snprintf(n, sizeof(n), "server_%s", name);
	save(dir, n, &s->seed);
	/* The same reads with the other callback behaviours: echo, half-close on EOF, a blocking writer. */
	c->seed.buf[0] |= F_ECHO | F_EOF_CLOSE | F_BLOCKING;
	s->seed.buf[0] |= F_ECHO | F_EOF_CLOSE | F_BLOCKING;
	snprintf(n, sizeof(n), "client_%s_echo", name);
	save(dir, n, &c->seed);
	snprintf(n, sizeof(n), "server_%s_echo", name);
	save(dir, n, &s->seed);
	aegis_hbone_free(c->h);
	aegis_hbone_free(s->h);
	free(c->wire.buf);
	free(s->wire.buf);
	free(c->seed.buf);
	free(s->seed.buf);
}

static void w(struct side *x, int32_t id, const char *text)
{
	if (aegis_hbone_write(x->h, id, (const uint8_t *)text, strlen(text)) != (ssize_t)strlen(text))
		abort();
}

/* CONNECT, 200, bytes both ways, a PING each way, half-close from each side, then GOAWAY. */
static void scenario_tunnel(const char *dir)
{
	struct side c, s;
	start(&c, &s, F_CONSUME, F_CONSUME, 200);
	pump(&c, &s);
	w(&s, 1, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
	w(&c, 1, "GET /productpage HTTP/1.1\r\nHost: productpage\r\n\r\n");
	aegis_hbone_ping(c.h);
	aegis_hbone_ping(s.h);
	pump(&c, &s);
	aegis_hbone_shutdown(c.h, 1);
	pump(&c, &s);
	w(&s, 1, "BYE");
	aegis_hbone_shutdown(s.h, 1);
	pump(&c, &s);
	aegis_hbone_goaway(s.h);
	aegis_hbone_goaway(c.h);
	pump(&c, &s);
	finish(dir, "tunnel", &c, &s);
}

/* The server answers later (the harness's R_LATER with action A_MORE after the request), with 200. */
static void scenario_deferred(const char *dir)
{
	struct side c, s;
	start(&c, &s, F_CONSUME, F_CONSUME | R_LATER, 0);
	deliver(&c, &s, A_MORE);
	if (aegis_hbone_respond(s.h, s.last_id, 200, NULL) != 0)
		abort();
	pump(&c, &s);
	w(&s, 1, "pong");
	aegis_hbone_reset(c.h, 1);
	pump(&c, &s);
	finish(dir, "deferred_reset", &c, &s);
}

/* No listener behind the authority: 503, and the client resets its half. */
static void scenario_503(const char *dir)
{
	struct side c, s;
	start(&c, &s, 0, R_503, 503);
	pump(&c, &s);
	pump(&c, &s);
	finish(dir, "503", &c, &s);
}

/* Five more tunnels on the same connection (the harness's A_MORE opens one per record), data on each,
 * then the server resets one and the client closes the rest. */
static void scenario_multiplex(const char *dir)
{
	struct side c, s;
	start(&c, &s, F_CONSUME, F_CONSUME, 200);
	/* The harness's client opens the five other streams first, one per empty A_MORE record. */
	for (int i = 1; i < 6; i++)
		put_read(&c.seed, A_MORE, NULL, 0);
	pump(&c, &s);
	int32_t ids[6] = {1};
	for (int i = 1; i < 6; i++) {
		ids[i] = aegis_hbone_connect(c.h, "10.0.0.2:80", NULL, 0, NULL);
		if (ids[i] <= 0)
			abort();
		/* One request per record on the server's side; the client's harness opens it with A_MORE. */
		deliver(&c, &s, A_NONE);
	}
	pump(&c, &s);
	for (int i = 0; i < 6; i++) {
		w(&c, ids[i], "ping\n");
		w(&s, ids[i], "pong\n");
	}
	pump(&c, &s);
	aegis_hbone_reset(s.h, ids[2]);
	for (int i = 0; i < 6; i++)
		aegis_hbone_shutdown(c.h, ids[i]);
	pump(&c, &s);
	finish(dir, "multiplex", &c, &s);
}

/* A few KiB each way, in frames of several sizes, and the window given back. */
static void scenario_bulk(const char *dir)
{
	struct side c, s;
	static char big[1400];
	memset(big, 'x', sizeof(big) - 1);
	start(&c, &s, 0, 0, 200);
	pump(&c, &s);
	for (int i = 0; i < 2; i++) {
		w(&c, 1, big);
		w(&s, 1, big);
		pump(&c, &s);
	}
	aegis_hbone_shutdown(s.h, 1);
	aegis_hbone_shutdown(c.h, 1);
	pump(&c, &s);
	finish(dir, "bulk", &c, &s);
}

/* A plain nghttp2 client sending what a browser would (GET, with :scheme and :path), and a CONNECT with
 * an authority that is a host name: hbone answers the first 400 itself; the second reaches on_request. */
static ssize_t ng_send(nghttp2_session *ng, const uint8_t *d, size_t n, int flags, void *user)
{
	(void)ng;
	(void)flags;
	put(user, d, n);
	return (ssize_t)n;
}

static void scenario_not_connect(const char *dir)
{
	struct side s;
	struct rec out = {0}, seed = {0};
	nghttp2_session_callbacks *cb;
	nghttp2_session *ng;
	memset(&s, 0, sizeof(s));
	s.server = true;
	s.respond = 503;
	if (aegis_hbone_new(true, &cbs, &s, &s.h) != 0 || nghttp2_session_callbacks_new(&cb) != 0)
		abort();
	nghttp2_session_callbacks_set_send_callback(cb, ng_send);
	if (nghttp2_session_client_new(&ng, cb, &out) != 0)
		abort();
	uint8_t flags = F_SERVER;
	put(&seed, &flags, 1);
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
	nghttp2_nv get[] = {
	        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
	        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
	        {(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0},
	        {(uint8_t *)":authority", (uint8_t *)"reviews:9080", 10, 12, 0},
	};
	nghttp2_nv conn[] = {
	        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, 0},
	        {(uint8_t *)":authority", (uint8_t *)"reviews.default.svc:9080", 10, 24, 0},
	};
	if (nghttp2_submit_settings(ng, 0, iv, 1) != 0 ||
	    nghttp2_submit_request(ng, NULL, get, 4, NULL, NULL) < 0 ||
	    nghttp2_submit_request(ng, NULL, conn, 2, NULL, NULL) < 0 || nghttp2_session_send(ng) != 0)
		abort();
	if (aegis_hbone_recv(s.h, out.buf, out.len) != 0)
		abort();
	put_read(&seed, A_NONE, out.buf, out.len);
	out.len = 0;
	if (aegis_hbone_flush(s.h, wr, &s) != 0 || nghttp2_session_mem_recv(ng, s.wire.buf, s.wire.len) < 0)
		abort();
	if (nghttp2_submit_rst_stream(ng, 0, 3, NGHTTP2_CANCEL) != 0 || nghttp2_session_send(ng) != 0)
		abort();
	put_read(&seed, A_NONE, out.buf, out.len);
	save(dir, "server_not_connect", &seed);
	nghttp2_session_del(ng);
	nghttp2_session_callbacks_del(cb);
	aegis_hbone_free(s.h);
	free(out.buf);
	free(seed.buf);
	free(s.wire.buf);
}

/* Not traffic between two hbone sessions (they open 4 MiB windows): a peer that keeps HTTP/2's default
 * 64 KiB window and never gives it back, so the client's 64 KiB writes (action A_WRITE with the top bit)
 * fill the stream's buffer and reach its compaction and "full" paths. */
static void seed_fill_outbuf(const char *dir)
{
	static const uint8_t peer[] = {0, 0, 0, 4, 0, 0, 0, 0, 0,        /* SETTINGS, empty */
	                               0, 0, 1, 1, 4, 0, 0, 0, 1, 0x88}; /* HEADERS :status 200 */
	struct rec r = {0};
	uint8_t flags = 0;
	put(&r, &flags, 1);
	put_read(&r, A_WRITE | 0x80, peer, sizeof(peer));
	for (int i = 0; i < 6; i++)
		put_read(&r, A_WRITE | 0x80, NULL, 0);
	save(dir, "client_fill_outbuf", &r);
	free(r.buf);
}

/* Also by hand: the peer opens 40,000 bytes of window per read while the client writes 64 KiB per read, so
 * the stream's ring fills, and its read and write positions both wrap around the end. */
static void seed_ring_wrap(const char *dir)
{
	static const uint8_t start[] = {0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 1, 4, 0, 0, 0, 1, 0x88};
	static const uint8_t more[] = {0, 0, 4, 8, 0, 0, 0, 0, 1, 0, 0, 0x9c, 0x40,  /* WINDOW_UPDATE 1 */
	                               0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0x9c, 0x40}; /* WINDOW_UPDATE 0 */
	struct rec r = {0};
	uint8_t flags = 0;
	put(&r, &flags, 1);
	put_read(&r, A_WRITE | 0x80, start, sizeof(start));
	for (int i = 0; i < 20; i++)
		put_read(&r, A_WRITE | 0x80, more, sizeof(more));
	save(dir, "client_ring_wrap", &r);
	free(r.buf);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/hbone";
	scenario_tunnel(dir);
	scenario_deferred(dir);
	scenario_503(dir);
	scenario_multiplex(dir);
	scenario_bulk(dir);
	scenario_not_connect(dir);
	seed_fill_outbuf(dir);
	seed_ring_wrap(dir);
	return 0;
}
