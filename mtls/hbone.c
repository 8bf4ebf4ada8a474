/* HBONE protocol core over nghttp2: see hbone.h and docs/mesh.md. */
#include "hbone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#define OBUF_FILL      (64u << 10) /* gather frames up to this much before one write (one TLS record run) */
#define OBUF_MAX       (1u << 20)  /* OBUF_FILL plus one maximal frame fits */
#define MAX_FRAME_SIZE (256u << 10)
/* DATA frames are sized to whole TLS records: 4 records of 16 KiB (the TLS maximum) less the 9-byte
 * frame header, where the peer's SETTINGS_MAX_FRAME_SIZE allows, so that no frame leaves a 9-byte
 * record behind it. A frame of at least DIRECT_MIN bytes goes from nghttp2's buffer straight to the
 * writer, without the copy into obuf. */
#define TLS_RECORD   16384u
#define DATA_RECORDS 4u
#define DIRECT_MIN   (8u << 10)
#define FRAME_HDLEN  9u

_Static_assert(AEGIS_HBONE_REFUSED_STREAM == NGHTTP2_REFUSED_STREAM, "HTTP/2 REFUSED_STREAM");

struct hstream {
	struct hstream *prev, *next; /* every stream of the session, so free() can release them */
	int32_t id;
	void *user;
	uint8_t *buf;      /* a ring of AEGIS_HBONE_STREAM_OUTBUF bytes, allocated on the first write */
	size_t head, used; /* where the oldest byte is, how many are buffered */
	bool eof;          /* the application half-closed: END_STREAM once buf is empty */
	bool deferred;     /* the data provider is waiting for bytes */
	bool established;  /* 200 sent or received: DATA may flow */
	size_t optimistic; /* client: buffered bytes that may go before the answer (aegis_hbone_connect) */
	/* server: bytes (and END_STREAM) the client sent before our 200, handed over with it; bounded by
	 * the stream window, since they are not consumed until the application takes them */
	uint8_t *early;
	size_t early_len, early_cap;
	bool early_eof;
	bool have_method_connect;
	char authority[AEGIS_HBONE_AUTHORITY_MAX + 1];
	int status;
};

struct aegis_hbone {
	nghttp2_session *s;
	struct aegis_hbone_cbs cbs;
	void *user;
	bool server;
	bool failed;
	uint8_t *obuf;
	size_t ocap, ooff, olen;
	size_t n_streams;
	struct hstream *streams;
};

static struct hstream *stream_of(const struct aegis_hbone *h, int32_t id)
{
	struct hstream *st = nghttp2_session_get_stream_user_data(h->s, id);
	/* A client stream whose HEADERS are still queued is not in nghttp2's map yet. */
	for (struct hstream *i = h->streams; st == NULL && i != NULL; i = i->next)
		if (i->id == id)
			st = i;
	return st;
}

static struct hstream *stream_new(struct aegis_hbone *h, int32_t id)
{
	struct hstream *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->id = id;
	st->next = h->streams;
	if (h->streams)
		h->streams->prev = st;
	h->streams = st;
	h->n_streams++;
	return st;
}

static void stream_free(struct aegis_hbone *h, struct hstream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	h->n_streams--;
	free(st->buf);
	free(st->early);
	free(st);
}

static ssize_t read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                       nghttp2_data_source *src, void *user)
{
	struct hstream *st = src->ptr;
	(void)s;
	(void)id;
	(void)user;
	size_t n = st->established ? st->used : st->optimistic;
	if (n > length)
		n = length;
	if (!st->established)
		st->optimistic -= n;
	if (n > 0) {
		size_t first = AEGIS_HBONE_STREAM_OUTBUF - st->head;
		if (first > n)
			first = n;
		memcpy(buf, st->buf + st->head, first);
		if (n > first)
			memcpy(buf + first, st->buf, n - first);
		st->head = (st->head + n) % AEGIS_HBONE_STREAM_OUTBUF;
		st->used -= n;
		if (st->used == 0)
			st->head = 0;
	}
	if (st->established && st->used == 0 && st->eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	if (n == 0) {
		st->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

/* The payload of the next DATA frame: whole TLS records with the header, within what the peer allows
 * (nghttp2 then cuts it to the flow-control windows). */
static ssize_t data_length_cb(nghttp2_session *s, uint8_t type, int32_t id, int32_t conn_window,
                              int32_t stream_window, uint32_t remote_max_frame, void *user)
{
	(void)s;
	(void)type;
	(void)id;
	(void)conn_window;
	(void)stream_window;
	(void)user;
	uint32_t records = remote_max_frame / TLS_RECORD;
	if (records > DATA_RECORDS)
		records = DATA_RECORDS;
	if (records == 0) /* the minimum SETTINGS_MAX_FRAME_SIZE is 16384: not reached */
		return (ssize_t)remote_max_frame;
	return (ssize_t)(records * TLS_RECORD - FRAME_HDLEN);
}

static void resume(struct aegis_hbone *h, struct hstream *st)
{
	if (st->deferred) {
		st->deferred = false;
		(void)nghttp2_session_resume_data(h->s, st->id);
	}
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct aegis_hbone *h = user;
	if (!h->server || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct hstream *st = stream_new(h, f->hd.stream_id);
	if (st == NULL)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
	struct hstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	(void)flags;
	(void)user;
	if (st == NULL || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
		st->have_method_connect = valuelen == 7 && memcmp(value, "CONNECT", 7) == 0;
	} else if (namelen == 10 && memcmp(name, ":authority", 10) == 0) {
		/* Too long for ip:port: left empty, answered 400. */
		if (valuelen <= AEGIS_HBONE_AUTHORITY_MAX) {
			memcpy(st->authority, value, valuelen);
			st->authority[valuelen] = '\0';
		}
	} else if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		int v = 0;
		for (size_t i = 0; i < valuelen && i < 3; i++)
			v = v * 10 + (value[i] >= '0' && value[i] <= '9' ? value[i] - '0' : 0);
		st->status = v;
	}
	return 0;
}

static int answer(struct aegis_hbone *h, struct hstream *st, int status)
{
	char code[4] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
	                (char)('0' + status % 10), 0};
	nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE};
	if (status == 200) {
		nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_cb};
		st->established = true;
		return nghttp2_submit_response(h->s, st->id, &nv, 1, &prd) == 0 ? 0 : AEGIS_EINVAL;
	}
	/* The whole answer is the status with END_STREAM; the client resets its half (below). A RST_STREAM
	 * from here could overtake the HEADERS in nghttp2's queues and hide the status. */
	return nghttp2_submit_response(h->s, st->id, &nv, 1, NULL) == 0 ? 0 : AEGIS_EINVAL;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct aegis_hbone *h = user;
	struct hstream *st =
	        f->hd.stream_id ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id) : NULL;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
		if (h->cbs.on_ping_ack)
			h->cbs.on_ping_ack(h->user);
		return 0;
	}
	if (st == NULL)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && h->server) {
		if (!st->have_method_connect || st->authority[0] == '\0' || h->cbs.on_request == NULL)
			(void)answer(h, st, 400);
		else
			h->cbs.on_request(h->user, st->id, st->authority);
	} else if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE && !h->server) {
		if (st->status == 200) {
			st->established = true;
			resume(h, st);
		}
		if (h->cbs.on_response)
			h->cbs.on_response(h->user, st->id, st->status, st->user);
		if (st->status != 200)
			(void)nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
	}
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		if (st->established && h->cbs.on_eof)
			h->cbs.on_eof(h->user, st->id, st->user);
		else if (!st->established && h->server)
			st->early_eof = true; /* told with the 200 */
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                         void *user)
{
	struct aegis_hbone *h = user;
	struct hstream *st = nghttp2_session_get_stream_user_data(s, id);
	(void)flags;
	if (st != NULL && !st->established && h->server && h->cbs.on_data != NULL) {
		/* An optimistic client's first bytes, before our 200: kept for the application (doubling,
		 * so that a window's worth in small frames is not copied over and over). */
		size_t need = st->early_len + len;
		if (need > st->early_cap) {
			size_t cap = st->early_cap ? st->early_cap * 2 : 16u << 10;
			while (cap < need)
				cap *= 2;
			if (cap > AEGIS_HBONE_STREAM_WINDOW)
				cap = AEGIS_HBONE_STREAM_WINDOW;
			uint8_t *nb = need <= cap ? realloc(st->early, cap) : NULL;
			if (nb == NULL) {
				(void)nghttp2_session_consume(s, id, len);
				return nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id,
				                                 NGHTTP2_INTERNAL_ERROR);
			}
			st->early = nb;
			st->early_cap = cap;
		}
		memcpy(st->early + st->early_len, data, len);
		st->early_len = need;
		return 0;
	}
	if (st == NULL || !st->established || h->cbs.on_data == NULL) {
		/* A stream we dropped, or a response body before the 200: nobody to give bytes to. */
		(void)nghttp2_session_consume(s, id, len);
		return 0;
	}
	h->cbs.on_data(h->user, id, data, len, st->user);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user)
{
	struct aegis_hbone *h = user;
	struct hstream *st = nghttp2_session_get_stream_user_data(s, id);
	if (st == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(s, id, NULL);
	if (st->early_len > 0) /* never handed over: the connection window comes back here */
		(void)nghttp2_session_consume(s, id, st->early_len);
	if (h->cbs.on_close)
		h->cbs.on_close(h->user, id, error_code, st->user);
	stream_free(h, st);
	return 0;
}

int aegis_hbone_new(bool server, const struct aegis_hbone_cbs *cbs, void *user, struct aegis_hbone **out)
{
	struct aegis_hbone *h = calloc(1, sizeof(*h));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	int rc = AEGIS_ENOMEM;
	if (h == NULL || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	h->cbs = *cbs;
	h->user = user;
	h->server = server;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb, data_length_cb);
	/* Window updates only for bytes the application took (aegis_hbone_consume): backpressure. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	if ((server ? nghttp2_session_server_new2(&h->s, cb, h, opt)
	            : nghttp2_session_client_new2(&h->s, cb, h, opt)) != 0) {
		h->s = NULL;
		goto out;
	}
	nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, AEGIS_HBONE_STREAM_WINDOW},
	        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, AEGIS_HBONE_MAX_STREAMS},
	        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, MAX_FRAME_SIZE},
	        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	size_t niv = sizeof(iv) / sizeof(iv[0]) - (server ? 1 : 0); /* ENABLE_PUSH is a client setting */
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, niv) != 0 ||
	    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0,
	                                          (int32_t)AEGIS_HBONE_CONN_WINDOW) != 0)
		goto out;
	rc = 0;
	*out = h;
	h = NULL;
out:
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	aegis_hbone_free(h);
	return rc;
}

void aegis_hbone_free(struct aegis_hbone *h)
{
	if (h == NULL)
		return;
	/* Streams still open: nghttp2_session_del fires no close callback, so free their state here. */
	while (h->streams != NULL)
		stream_free(h, h->streams);
	nghttp2_session_del(h->s);
	free(h->obuf);
	free(h);
}

int aegis_hbone_recv(struct aegis_hbone *h, const uint8_t *data, size_t len)
{
	ssize_t n = nghttp2_session_mem_recv(h->s, data, len);
	if (n < 0 || (size_t)n != len) {
		h->failed = true;
		return AEGIS_EPROTO;
	}
	return 0;
}

/* Appends n bytes to obuf, growing it up to OBUF_MAX. */
static int obuf_put(struct aegis_hbone *h, const uint8_t *p, size_t n)
{
	if (h->olen + n > h->ocap) {
		size_t cap = h->olen + n > OBUF_FILL ? OBUF_MAX : OBUF_FILL;
		uint8_t *nb = h->olen + n <= cap ? realloc(h->obuf, cap) : NULL;
		if (nb == NULL)
			return AEGIS_ENOMEM;
		h->obuf = nb;
		h->ocap = cap;
	}
	memcpy(h->obuf + h->olen, p, n);
	h->olen += n;
	return 0;
}

/* Writes a frame from nghttp2's buffer (valid until the next mem_send) while the writer takes it; what is
 * left when it would block is kept in obuf. 0, or AEGIS_EIO. */
static int write_direct(struct aegis_hbone *h, aegis_hbone_write_fn write, void *io, const uint8_t *p,
                        size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(io, p + off, n - off);
		if (w < 0)
			return AEGIS_EIO;
		if (w == 0)
			return obuf_put(h, p + off, n - off) == 0 ? 0 : AEGIS_EIO;
		off += (size_t)w;
	}
	return 0;
}

int aegis_hbone_flush(struct aegis_hbone *h, aegis_hbone_write_fn write, void *io)
{
	for (;;) {
		if (h->ooff == h->olen) {
			h->ooff = h->olen = 0;
			/* Small frames (HEADERS, WINDOW_UPDATE, SETTINGS, short DATA) are gathered into one
			 * write; a big DATA frame met with nothing gathered is written as it is. */
			while (h->olen < OBUF_FILL) {
				const uint8_t *p;
				ssize_t n = nghttp2_session_mem_send(h->s, &p);
				if (n < 0) {
					h->failed = true;
					return AEGIS_EIO;
				}
				if (n == 0)
					break;
				int rc = h->olen == 0 && (size_t)n >= DIRECT_MIN
				                 ? write_direct(h, write, io, p, (size_t)n)
				                 : obuf_put(h, p, (size_t)n);
				if (rc != 0) {
					h->failed = true;
					return AEGIS_EIO;
				}
				if (h->olen > 0 && (size_t)n >= DIRECT_MIN)
					break; /* the writer blocked: what is left waits in obuf */
			}
			if (h->olen == 0)
				return 0;
		}
		ssize_t w = write(io, h->obuf + h->ooff, h->olen - h->ooff);
		if (w < 0) {
			h->failed = true;
			return AEGIS_EIO;
		}
		if (w == 0)
			return 0;
		h->ooff += (size_t)w;
	}
}

bool aegis_hbone_want_write(const struct aegis_hbone *h)
{
	return h->ooff < h->olen || nghttp2_session_want_write(h->s);
}

bool aegis_hbone_alive(const struct aegis_hbone *h)
{
	return !h->failed &&
	       (nghttp2_session_want_read(h->s) || nghttp2_session_want_write(h->s) || h->ooff < h->olen);
}

int32_t aegis_hbone_connect(struct aegis_hbone *h, const char *authority, const uint8_t *early,
                            size_t early_len, void *stream_user)
{
	if (h->server || early_len > AEGIS_HBONE_STREAM_OUTBUF)
		return AEGIS_EINVAL;
	struct hstream *st = stream_new(h, 0);
	if (st == NULL)
		return AEGIS_ENOMEM;
	st->user = stream_user;
	if (early_len > 0) {
		if ((st->buf = malloc(AEGIS_HBONE_STREAM_OUTBUF)) == NULL) {
			stream_free(h, st);
			return AEGIS_ENOMEM;
		}
		memcpy(st->buf, early, early_len);
		st->used = st->optimistic = early_len;
	}
	/* ztunnel's request: CONNECT and the authority, nothing else is required. */
	nghttp2_nv nv[] = {
	        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE},
	        {(uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority), NGHTTP2_NV_FLAG_NONE},
	};
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_cb};
	int32_t id = nghttp2_submit_request(h->s, NULL, nv, 2, &prd, st);
	if (id < 0) {
		stream_free(h, st);
		return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? AEGIS_ELIMIT : AEGIS_ENOMEM;
	}
	st->id = id;
	return id;
}

int aegis_hbone_respond(struct aegis_hbone *h, int32_t id, int status, void *stream_user)
{
	struct hstream *st = stream_of(h, id);
	if (st == NULL || !h->server || st->established || status < 100 || status > 599)
		return AEGIS_EINVAL;
	st->user = stream_user;
	int rc = answer(h, st, status);
	if (rc != 0)
		return rc;
	if (status != 200) { /* the stream ends: the early bytes are nobody's */
		if (st->early_len > 0)
			(void)nghttp2_session_consume(h->s, id, st->early_len);
		free(st->early);
		st->early = NULL;
		st->early_len = st->early_cap = 0;
		return 0;
	}
	/* What the client sent before the 200 goes to the application now (the stream stays valid: it is
	 * freed only from nghttp2's callbacks, which do not run here). */
	if (st->early_len > 0 && h->cbs.on_data) {
		uint8_t *e = st->early;
		size_t n = st->early_len;
		st->early = NULL;
		st->early_len = st->early_cap = 0;
		h->cbs.on_data(h->user, id, e, n, st->user);
		free(e);
	}
	if (st->early_eof && h->cbs.on_eof)
		h->cbs.on_eof(h->user, id, st->user);
	return 0;
}

int aegis_hbone_write_iov(struct aegis_hbone *h, int32_t id, struct iovec iov[2])
{
	struct hstream *st = stream_of(h, id);
	if (st == NULL || st->eof)
		return 0;
	if (st->buf == NULL && (st->buf = malloc(AEGIS_HBONE_STREAM_OUTBUF)) == NULL)
		return AEGIS_ENOMEM;
	size_t room = AEGIS_HBONE_STREAM_OUTBUF - st->used;
	if (room == 0)
		return 0;
	/* A ring: from the tail to the end of the buffer, then from its start up to the head. */
	size_t tail = (st->head + st->used) % AEGIS_HBONE_STREAM_OUTBUF;
	size_t first = AEGIS_HBONE_STREAM_OUTBUF - tail;
	if (first > room)
		first = room;
	iov[0] = (struct iovec){.iov_base = st->buf + tail, .iov_len = first};
	if (room == first)
		return 1;
	iov[1] = (struct iovec){.iov_base = st->buf, .iov_len = room - first};
	return 2;
}

int aegis_hbone_commit(struct aegis_hbone *h, int32_t id, size_t n)
{
	struct hstream *st = stream_of(h, id);
	if (st == NULL || st->eof || st->buf == NULL || n > AEGIS_HBONE_STREAM_OUTBUF - st->used)
		return AEGIS_EINVAL;
	st->used += n;
	if (n > 0)
		resume(h, st);
	return 0;
}

ssize_t aegis_hbone_write(struct aegis_hbone *h, int32_t id, const uint8_t *data, size_t len)
{
	struct iovec iov[2];
	int k = aegis_hbone_write_iov(h, id, iov);
	if (k < 0)
		return k;
	if (k == 0) { /* full: 0 taken; unknown or half-closed: refused */
		const struct hstream *st = stream_of(h, id);
		return st != NULL && !st->eof ? 0 : AEGIS_EINVAL;
	}
	/* Everything write_room() reports is taken in this one call, wrapped or not. */
	size_t taken = 0;
	for (int i = 0; i < k && taken < len; i++) {
		size_t n = len - taken < iov[i].iov_len ? len - taken : iov[i].iov_len;
		memcpy(iov[i].iov_base, data + taken, n);
		taken += n;
	}
	int rc = aegis_hbone_commit(h, id, taken);
	return rc != 0 ? rc : (ssize_t)taken;
}

int aegis_hbone_write_early(struct aegis_hbone *h, int32_t id, const uint8_t *data, size_t len)
{
	struct hstream *st = stream_of(h, id);
	if (h->server || st == NULL || st->established || st->eof ||
	    len > AEGIS_HBONE_STREAM_OUTBUF - st->used)
		return AEGIS_EINVAL;
	ssize_t n = aegis_hbone_write(h, id, data, len);
	if (n < 0)
		return (int)n;
	st->optimistic += len;
	resume(h, st);
	return 0;
}

size_t aegis_hbone_write_room(const struct aegis_hbone *h, int32_t id)
{
	const struct hstream *st = stream_of(h, id);
	if (st == NULL || st->eof)
		return 0;
	return AEGIS_HBONE_STREAM_OUTBUF - st->used;
}

size_t aegis_hbone_buffered(const struct aegis_hbone *h, int32_t id)
{
	const struct hstream *st = stream_of(h, id);
	return st != NULL ? st->used : 0;
}

void aegis_hbone_shutdown(struct aegis_hbone *h, int32_t id)
{
	struct hstream *st = stream_of(h, id);
	if (st == NULL || st->eof)
		return;
	st->eof = true;
	resume(h, st);
}

void aegis_hbone_consume(struct aegis_hbone *h, int32_t id, size_t len)
{
	(void)nghttp2_session_consume(h->s, id, len);
}

void aegis_hbone_reset(struct aegis_hbone *h, int32_t id)
{
	(void)nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
}

void aegis_hbone_ping(struct aegis_hbone *h)
{
	(void)nghttp2_submit_ping(h->s, NGHTTP2_FLAG_NONE, NULL);
}

void aegis_hbone_goaway(struct aegis_hbone *h)
{
	/* Not nghttp2_session_terminate_session(): that closes the session once the GOAWAY is out, with
	 * the open streams. The last stream id is the peer's last one we have seen: those streams finish,
	 * later ones are refused (REFUSED_STREAM: the peer may retry them elsewhere). */
	(void)nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
	                            NGHTTP2_NO_ERROR, NULL, 0);
}

size_t aegis_hbone_streams(const struct aegis_hbone *h)
{
	return h->n_streams;
}

int aegis_hbone_parse_authority(const char *a, int *family, uint8_t ip[16], uint16_t *port)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon;
	size_t hl;
	if (a[0] == '[') {
		const char *end = strchr(a, ']');
		if (end == NULL || end[1] != ':')
			return AEGIS_EINVAL;
		hl = (size_t)(end - a - 1);
		a++;
		colon = end + 1;
		*family = AF_INET6;
	} else {
		colon = strrchr(a, ':');
		if (colon == NULL)
			return AEGIS_EINVAL;
		hl = (size_t)(colon - a);
		*family = AF_INET;
	}
	if (hl == 0 || hl >= sizeof(host))
		return AEGIS_EINVAL;
	memcpy(host, a, hl);
	host[hl] = '\0';
	memset(ip, 0, 16);
	if (inet_pton(*family, host, ip) != 1)
		return AEGIS_EINVAL;
	const char *p = colon + 1;
	char *end;
	errno = 0;
	unsigned long v = strtoul(p, &end, 10);
	if (p[0] < '0' || p[0] > '9' || *end != '\0' || errno != 0 || v == 0 || v > 65535)
		return AEGIS_EINVAL;
	*port = (uint16_t)v;
	return 0;
}
