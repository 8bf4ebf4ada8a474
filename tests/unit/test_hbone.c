/* Unit tests of mtls/hbone.c: a client and a server session joined by a socketpair, pumped by hand. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "hbone.h"

struct side {
	struct aegis_hbone *h;
	int fd;
	/* what the callbacks saw */
	char authority[80];
	int32_t req_id;
	int status;
	size_t got;
	uint8_t last[64];
	size_t last_len;
	int eofs, closes, pings;
	uint32_t close_err;
	bool consume; /* give the window back at once */
	size_t unconsumed;
	bool check;   /* the bytes must be pattern(0), pattern(1), ... in order */
	size_t wrong; /* bytes that were not */
};

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i % 251);
}

static ssize_t sock_write(void *io, const uint8_t *data, size_t len)
{
	ssize_t n = send(*(int *)io, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	return n;
}

static void on_request(void *user, int32_t id, const char *authority)
{
	struct side *s = user;
	snprintf(s->authority, sizeof(s->authority), "%s", authority);
	s->req_id = id;
}

static void on_response(void *user, int32_t id, int status, void *su)
{
	struct side *s = user;
	(void)id;
	(void)su;
	s->status = status;
}

static void on_data(void *user, int32_t id, const uint8_t *d, size_t len, void *su)
{
	struct side *s = user;
	(void)su;
	for (size_t i = 0; s->check && i < len; i++)
		s->wrong += d[i] != pattern(s->got + i);
	s->got += len;
	s->last_len = len < sizeof(s->last) ? len : sizeof(s->last);
	memcpy(s->last, d, s->last_len);
	if (s->consume)
		aegis_hbone_consume(s->h, id, len);
	else
		s->unconsumed += len;
}

static void on_eof(void *user, int32_t id, void *su)
{
	(void)id;
	(void)su;
	((struct side *)user)->eofs++;
}

static void on_close(void *user, int32_t id, uint32_t err, void *su)
{
	struct side *s = user;
	(void)id;
	(void)su;
	s->closes++;
	s->close_err = err;
}

static void on_ping_ack(void *user)
{
	((struct side *)user)->pings++;
}

static const struct aegis_hbone_cbs cbs = {on_request, on_response, on_data, on_eof, on_close, on_ping_ack};

static void one_way(struct side *from, struct side *to)
{
	assert_int_equal(aegis_hbone_flush(from->h, sock_write, &from->fd), 0);
	uint8_t buf[65536];
	for (;;) {
		ssize_t n = recv(to->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		assert_int_equal(aegis_hbone_recv(to->h, buf, (size_t)n), 0);
	}
}

/* Moves bytes both ways until both sides are quiet (bounded). */
static void pump(struct side *c, struct side *s)
{
	for (int i = 0; i < 2000; i++) {
		one_way(c, s);
		one_way(s, c);
		if (!aegis_hbone_want_write(c->h) && !aegis_hbone_want_write(s->h))
			break;
	}
}

static void setup_pair(struct side *c, struct side *s)
{
	int sv[2];
	memset(c, 0, sizeof(*c));
	memset(s, 0, sizeof(*s));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c->fd = sv[0];
	s->fd = sv[1];
	c->consume = s->consume = true;
	assert_int_equal(aegis_hbone_new(false, &cbs, c, &c->h), 0);
	assert_int_equal(aegis_hbone_new(true, &cbs, s, &s->h), 0);
}

static void teardown_pair(struct side *c, struct side *s)
{
	aegis_hbone_free(c->h);
	aegis_hbone_free(s->h);
	close(c->fd);
	close(s->fd);
}

/* A CONNECT from c answered 200 by s (no stream user), the exchange pumped through: the client's stream id.
 */
static int32_t open_tunnel(struct side *c, struct side *s)
{
	int32_t id = aegis_hbone_connect(c->h, "10.0.0.1:9080", NULL, 0, NULL);
	assert_true(id > 0);
	pump(c, s);
	assert_int_equal(aegis_hbone_respond(s->h, s->req_id, 200, NULL), 0);
	pump(c, s);
	return id;
}

static void test_connect_200_data_halfclose(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	int32_t id = aegis_hbone_connect(c.h, "10.0.0.1:9080", NULL, 0, NULL);
	assert_true(id > 0);
	/* Bytes written after the CONNECT wait for the 200 (only aegis_hbone_connect()'s early bytes do not).
	 */
	assert_int_equal(aegis_hbone_write(c.h, id, (const uint8_t *)"hello", 5), 5);
	pump(&c, &s);
	assert_string_equal(s.authority, "10.0.0.1:9080");
	assert_int_equal(s.got, 0);
	assert_int_equal(aegis_hbone_respond(s.h, s.req_id, 200, NULL), 0);
	pump(&c, &s);
	assert_int_equal(c.status, 200);
	assert_int_equal(s.got, 5);
	assert_memory_equal(s.last, "hello", 5);
	assert_int_equal(aegis_hbone_write(s.h, s.req_id, (const uint8_t *)"world!", 6), 6);
	pump(&c, &s);
	assert_int_equal(c.got, 6);
	assert_memory_equal(c.last, "world!", 6);
	/* Half-close from the client: the server sees EOF and may still send. */
	aegis_hbone_shutdown(c.h, id);
	pump(&c, &s);
	assert_int_equal(s.eofs, 1);
	assert_int_equal(c.eofs, 0);
	assert_int_equal(aegis_hbone_write(s.h, s.req_id, (const uint8_t *)"BYE", 3), 3);
	aegis_hbone_shutdown(s.h, s.req_id);
	pump(&c, &s);
	assert_int_equal(c.got, 9);
	assert_int_equal(c.eofs, 1);
	assert_int_equal(c.closes, 1);
	assert_int_equal(s.closes, 1);
	assert_int_equal(c.close_err, 0);
	assert_int_equal(aegis_hbone_streams(c.h), 0);
	assert_int_equal(aegis_hbone_streams(s.h), 0);
	teardown_pair(&c, &s);
}

/* A raw nghttp2 client that sends its first bytes and END_STREAM right behind the CONNECT, before any
 * answer (an optimistic client; ours waits for the 200): the server keeps them and hands them over with
 * the 200, in order, with the half-close after them. */
static const char early_bytes[] = "GET / HTTP/1.0\r\n\r\n";

static ssize_t early_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *user)
{
	(void)session;
	(void)id;
	(void)src;
	(void)user;
	size_t n = sizeof(early_bytes) - 1;
	assert_true(len >= n);
	memcpy(buf, early_bytes, n);
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static ssize_t raw_send(nghttp2_session *session, const uint8_t *data, size_t len, int flags, void *user)
{
	(void)session;
	(void)flags;
	struct side *srv = user;
	assert_int_equal(aegis_hbone_recv(srv->h, data, len), 0);
	return (ssize_t)len;
}

static void test_early_data_before_200(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	nghttp2_session_callbacks *cb;
	nghttp2_session *raw;
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, raw_send);
	assert_int_equal(nghttp2_session_client_new(&raw, cb, &s), 0);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	nghttp2_nv nv[] = {
	        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE},
	        {(uint8_t *)":authority", (uint8_t *)"10.0.0.1:9080", 10, 13, NGHTTP2_NV_FLAG_NONE},
	};
	nghttp2_data_provider prd = {.read_callback = early_read};
	int32_t id = nghttp2_submit_request(raw, NULL, nv, 2, &prd, NULL);
	assert_true(id > 0);
	assert_int_equal(nghttp2_session_send(raw), 0); /* HEADERS, DATA, END_STREAM: all into the server */
	assert_int_equal(s.req_id, id);
	assert_string_equal(s.authority, "10.0.0.1:9080");
	assert_int_equal(s.got, 0); /* nothing before the tunnel exists */
	assert_int_equal(s.eofs, 0);
	s.check = false;
	assert_int_equal(aegis_hbone_respond(s.h, id, 200, &s), 0);
	assert_int_equal(s.got, sizeof(early_bytes) - 1);
	assert_memory_equal(s.last, early_bytes, sizeof(early_bytes) - 1);
	assert_int_equal(s.eofs, 1);
	nghttp2_session_del(raw);
	teardown_pair(&c, &s);
}

/* Our client's early bytes: they go right behind the HEADERS, reach the server's application only with the
 * 200 (and before what was written after the CONNECT); with a 503 nobody gets them. */
static void test_connect_early_bytes(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	int32_t id = aegis_hbone_connect(c.h, "10.0.0.1:9080", (const uint8_t *)"hello", 5, NULL);
	assert_true(id > 0);
	assert_int_equal(aegis_hbone_write(c.h, id, (const uint8_t *)" world", 6), 6);
	assert_int_equal(aegis_hbone_buffered(c.h, id), 11);
	pump(&c, &s);
	assert_int_equal(aegis_hbone_buffered(c.h, id), 6); /* the early bytes went, the rest waits */
	assert_int_equal(s.req_id, id);
	assert_int_equal(s.got, 0);
	assert_int_equal(aegis_hbone_respond(s.h, s.req_id, 200, NULL), 0);
	assert_int_equal(s.got, 5); /* handed over inside the respond */
	assert_memory_equal(s.last, "hello", 5);
	pump(&c, &s);
	assert_int_equal(c.status, 200);
	assert_int_equal(s.got, 11);
	assert_memory_equal(s.last, " world", 6);
	assert_int_equal(aegis_hbone_buffered(c.h, id), 0);
	assert_int_equal(aegis_hbone_buffered(c.h, 999), 0);

	int32_t id2 = aegis_hbone_connect(c.h, "10.0.0.1:9081", (const uint8_t *)"lost", 4, NULL);
	assert_true(id2 > 0);
	pump(&c, &s);
	assert_int_equal(s.req_id, id2);
	assert_int_equal(aegis_hbone_respond(s.h, id2, 503, NULL), 0);
	pump(&c, &s);
	assert_int_equal(c.status, 503);
	assert_int_equal(s.got, 11);
	assert_int_equal(aegis_hbone_streams(c.h), 1);
	assert_int_equal(aegis_hbone_streams(s.h), 1);

	/* Early bytes added while the CONNECT waits go out at once too; after the answer they are refused. */
	int32_t id3 = aegis_hbone_connect(c.h, "10.0.0.1:9080", (const uint8_t *)"ab", 2, NULL);
	assert_true(id3 > 0);
	pump(&c, &s);
	assert_int_equal(aegis_hbone_write_early(c.h, id3, (const uint8_t *)"cd", 2), 0);
	assert_int_equal(aegis_hbone_write(c.h, id3, (const uint8_t *)"ef", 2), 2); /* waits for the 200 */
	pump(&c, &s);
	assert_int_equal(aegis_hbone_buffered(c.h, id3), 2);
	size_t got0 = s.got;
	assert_int_equal(aegis_hbone_respond(s.h, id3, 200, NULL), 0);
	assert_int_equal(s.got, got0 + 4); /* "abcd", handed over with the 200 */
	assert_memory_equal(s.last, "abcd", 4);
	pump(&c, &s);
	assert_int_equal(s.got, got0 + 6);
	assert_memory_equal(s.last, "ef", 2);
	assert_int_equal(aegis_hbone_write_early(c.h, id3, (const uint8_t *)"x", 1), AEGIS_EINVAL);
	assert_int_equal(aegis_hbone_write_early(s.h, id3, (const uint8_t *)"x", 1),
	                 AEGIS_EINVAL); /* server */

	/* More early bytes than the stream can buffer are refused whole. */
	static uint8_t big[AEGIS_HBONE_STREAM_OUTBUF + 1];
	assert_int_equal(aegis_hbone_connect(c.h, "10.0.0.1:9082", big, sizeof(big), NULL), AEGIS_EINVAL);
	teardown_pair(&c, &s);
}

static void test_503_no_listener(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	int32_t id = aegis_hbone_connect(c.h, "127.0.0.1:1", NULL, 0, NULL);
	assert_true(id > 0);
	pump(&c, &s);
	assert_int_equal(aegis_hbone_respond(s.h, s.req_id, 503, NULL), 0);
	pump(&c, &s);
	assert_int_equal(c.status, 503);
	assert_int_equal(c.closes, 1);
	assert_int_equal(s.closes, 1);
	assert_int_equal(c.got, 0);
	/* Responding twice, or to a stream that is gone, is refused. */
	assert_int_equal(aegis_hbone_respond(s.h, s.req_id, 200, NULL), AEGIS_EINVAL);
	teardown_pair(&c, &s);
}

/* Many app connections on one session: each stream gets its own answer and bytes. */
static void test_multiplexing(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	int32_t ids[50];
	for (int i = 0; i < 50; i++) {
		ids[i] = aegis_hbone_connect(c.h, "10.0.0.2:80", NULL, 0, NULL);
		assert_true(ids[i] > 0);
	}
	pump(&c, &s);
	/* The server answers as requests arrive; here all of them are there: answer by id. */
	for (int i = 0; i < 50; i++)
		assert_int_equal(aegis_hbone_respond(s.h, ids[i], 200, NULL), 0);
	pump(&c, &s);
	assert_int_equal(aegis_hbone_streams(c.h), 50);
	for (int i = 0; i < 50; i++)
		assert_int_equal(aegis_hbone_write(c.h, ids[i], (const uint8_t *)"0123456789", 10), 10);
	pump(&c, &s);
	assert_int_equal(s.got, 500);
	for (int i = 0; i < 50; i++) {
		aegis_hbone_reset(c.h, ids[i]);
	}
	pump(&c, &s);
	assert_int_equal(c.closes, 50);
	assert_int_equal(s.closes, 50);
	teardown_pair(&c, &s);
}

/* A receiver that does not give the window back stops the sender at the stream window; consuming lets
 * the rest through. 8 MiB is twice the window. */
static void test_flow_control(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	s.consume = false;
	int32_t id = open_tunnel(&c, &s);
	static uint8_t chunk[65536];
	memset(chunk, 'x', sizeof(chunk));
	size_t sent = 0, total = 8u << 20;
	for (int round = 0; round < 4000 && s.got < total; round++) {
		while (sent < total) {
			ssize_t n = aegis_hbone_write(c.h, id, chunk, sizeof(chunk));
			assert_true(n >= 0);
			if (n == 0)
				break;
			sent += (size_t)n;
		}
		pump(&c, &s);
		if (s.got == AEGIS_HBONE_STREAM_WINDOW && !s.consume) {
			/* Stalled exactly at the window: now the application takes everything. */
			assert_true(sent < total);
			aegis_hbone_consume(s.h, id, s.unconsumed);
			s.consume = true;
		}
	}
	assert_true(s.consume);
	assert_int_equal(s.got, total);
	aegis_hbone_ping(c.h);
	pump(&c, &s);
	assert_int_equal(c.pings, 1);
	teardown_pair(&c, &s);
}

/* A writer that takes budget bytes and then blocks. */
struct budget {
	int fd;
	size_t budget;
};

static ssize_t budget_write(void *io, const uint8_t *data, size_t len)
{
	struct budget *b = io;
	ssize_t n = sock_write(&b->fd, data, len < b->budget ? len : b->budget);
	if (n > 0)
		b->budget -= (size_t)n;
	return n;
}

static void receive(struct side *to)
{
	uint8_t buf[65536];
	for (;;) {
		ssize_t n = recv(to->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		assert_int_equal(aegis_hbone_recv(to->h, buf, (size_t)n), 0);
	}
}

/* aegis_hbone_write() takes everything write_room() reports in one call, also when the stream's buffer
 * has wrapped: bytes queued, part of them taken by a flush whose writer then blocked, and a write that
 * must go past the end of the buffer. The bytes arrive complete and in order. */
static void test_write_takes_room_after_wrap(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	s.check = true;
	int32_t id = open_tunnel(&c, &s);
	static uint8_t data[4 * AEGIS_HBONE_STREAM_OUTBUF];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = pattern(i);
	size_t first = AEGIS_HBONE_STREAM_OUTBUF * 3 / 4, sent = first;
	assert_int_equal(aegis_hbone_write(c.h, id, data, first), (ssize_t)first);
	for (int round = 0; round < 3; round++) {
		/* The session takes some of the buffer for its frames, then the writer blocks. */
		struct budget b = {c.fd, 70000};
		assert_int_equal(aegis_hbone_flush(c.h, budget_write, &b), 0);
		receive(&s);
		size_t room = aegis_hbone_write_room(c.h, id);
		/* Part of the buffer went (the first time: more than the free end of the buffer), not all. */
		assert_true(room > (round == 0 ? AEGIS_HBONE_STREAM_OUTBUF - first : 0));
		assert_true(room < AEGIS_HBONE_STREAM_OUTBUF);
		ssize_t n = aegis_hbone_write(c.h, id, data + sent, room + 1000);
		assert_int_equal(n, (ssize_t)room);
		assert_int_equal(aegis_hbone_write_room(c.h, id), 0);
		sent += (size_t)n;
	}
	aegis_hbone_shutdown(c.h, id);
	pump(&c, &s);
	assert_int_equal(s.got, sent);
	assert_int_equal(s.wrong, 0);
	assert_int_equal(s.eofs, 1);
	teardown_pair(&c, &s);
}

/* aegis_hbone_write_iov() + commit, the glue's readv path: the free part of the ring as one piece, then,
 * after the ring wrapped, as two that together make write_room(); bytes put there arrive in order; a
 * commit past the room and an iov on a half-closed stream are refused. */
static void test_write_iov_commit(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	s.check = true;
	int32_t id = open_tunnel(&c, &s);
	struct iovec iov[2];
	size_t sent = 0;
	assert_int_equal(aegis_hbone_write_iov(c.h, id, iov), 1);
	assert_int_equal(iov[0].iov_len, AEGIS_HBONE_STREAM_OUTBUF);
	assert_int_equal(aegis_hbone_commit(c.h, id, AEGIS_HBONE_STREAM_OUTBUF + 1), AEGIS_EINVAL);
	size_t first = AEGIS_HBONE_STREAM_OUTBUF * 3 / 4;
	for (size_t i = 0; i < first; i++)
		((uint8_t *)iov[0].iov_base)[i] = pattern(sent + i);
	assert_int_equal(aegis_hbone_commit(c.h, id, first), 0);
	sent += first;
	struct budget b = {c.fd, 100000}; /* takes part of the buffer, then blocks */
	assert_int_equal(aegis_hbone_flush(c.h, budget_write, &b), 0);
	receive(&s);
	size_t room = aegis_hbone_write_room(c.h, id);
	assert_true(room > AEGIS_HBONE_STREAM_OUTBUF - first); /* the head moved past the free end */
	assert_int_equal(aegis_hbone_write_iov(c.h, id, iov), 2);
	assert_int_equal(iov[0].iov_len + iov[1].iov_len, room);
	assert_int_equal(iov[0].iov_len, AEGIS_HBONE_STREAM_OUTBUF - first);
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < iov[k].iov_len; i++)
			((uint8_t *)iov[k].iov_base)[i] = pattern(sent + i);
		sent += iov[k].iov_len;
	}
	assert_int_equal(aegis_hbone_commit(c.h, id, room), 0);
	assert_int_equal(aegis_hbone_write_room(c.h, id), 0);
	assert_int_equal(aegis_hbone_write_iov(c.h, id, iov), 0); /* full */
	aegis_hbone_shutdown(c.h, id);
	assert_int_equal(aegis_hbone_write_iov(c.h, id, iov), 0); /* half-closed */
	assert_int_equal(aegis_hbone_commit(c.h, id, 1), AEGIS_EINVAL);
	pump(&c, &s);
	assert_int_equal(s.got, sent);
	assert_int_equal(s.wrong, 0);
	assert_int_equal(s.eofs, 1);
	teardown_pair(&c, &s);
}

/* A writer that records the length of every call. */
struct calls {
	int fd;
	size_t n, len[4096];
};

static ssize_t calls_write(void *io, const uint8_t *data, size_t len)
{
	struct calls *w = io;
	ssize_t n = sock_write(&w->fd, data, len);
	if (n > 0 && w->n < sizeof(w->len) / sizeof(w->len[0]))
		w->len[w->n++] = (size_t)n;
	return n;
}

/* Bulk DATA leaves in frames of whole TLS records (4 x 16 KiB with the 9-byte header, the peer allowing
 * 256 KiB frames), each handed to the writer as it is: no frame is followed by a 9-byte record. */
static void test_data_frames_whole_records(void **state)
{
	(void)state;
	struct side c, s;
	setup_pair(&c, &s);
	s.check = true;
	int buf = 4 << 20; /* the socketpair takes a whole flush */
	assert_int_equal(setsockopt(c.fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)), 0);
	assert_int_equal(setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)), 0);
	int32_t id = open_tunnel(&c, &s);
	static uint8_t data[AEGIS_HBONE_STREAM_OUTBUF];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = pattern(i);
	assert_int_equal(aegis_hbone_write(c.h, id, data, sizeof(data)), (ssize_t)sizeof(data));
	struct calls w = {.fd = c.fd};
	assert_int_equal(aegis_hbone_flush(c.h, calls_write, &w), 0);
	size_t whole = 0;
	for (size_t i = 0; i < w.n; i++) {
		assert_true(w.len[i] <= 4 * 16384);
		whole += w.len[i] == 4 * 16384;
	}
	assert_int_equal(whole, sizeof(data) / (4 * 16384 - 9)); /* every full frame in one call */
	receive(&s);
	pump(&c, &s);
	assert_int_equal(s.got, sizeof(data));
	assert_int_equal(s.wrong, 0);
	teardown_pair(&c, &s);
}

static void test_parse_authority(void **state)
{
	(void)state;
	int fam;
	uint8_t ip[16];
	uint16_t port;
	assert_int_equal(aegis_hbone_parse_authority("10.1.2.3:9080", &fam, ip, &port), 0);
	assert_int_equal(fam, AF_INET);
	assert_int_equal(port, 9080);
	assert_int_equal(ip[3], 3);
	assert_int_equal(aegis_hbone_parse_authority("[2001:db8::1]:443", &fam, ip, &port), 0);
	assert_int_equal(fam, AF_INET6);
	assert_int_equal(port, 443);
	static const char *const bad[] = {"",
	                                  "10.1.2.3",
	                                  "10.1.2.3:",
	                                  "10.1.2.3:0",
	                                  "10.1.2.3:65536",
	                                  "reviews:9080",
	                                  "[2001:db8::1]",
	                                  "2001:db8::1:80",
	                                  "10.1.2.3:+80",
	                                  "10.1.2.3:80x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(aegis_hbone_parse_authority(bad[i], &fam, ip, &port), AEGIS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_connect_200_data_halfclose),
	        cmocka_unit_test(test_connect_early_bytes),
	        cmocka_unit_test(test_503_no_listener),
	        cmocka_unit_test(test_early_data_before_200),
	        cmocka_unit_test(test_multiplexing),
	        cmocka_unit_test(test_flow_control),
	        cmocka_unit_test(test_write_takes_room_after_wrap),
	        cmocka_unit_test(test_write_iov_commit),
	        cmocka_unit_test(test_data_frames_whole_records),
	        cmocka_unit_test(test_parse_authority),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
