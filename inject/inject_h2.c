/* h2 on one TLS connection (ALPN "h2"), with nghttp2 doing the framing, HPACK and flow control. nghttp2
 * performs no I/O: bytes read from TLS go to nghttp2_session_mem_recv, frames it wants out come back through
 * send_cb and are written to TLS. Each stream buffers its body up to max_body; over that the rest is dropped
 * and the stream is answered 413 when it ends. Responses are whole (the review is computed before the HEADERS
 * frame is submitted), so a data source only copies out of the finished body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "aegis/buf.h"
#include "aegis/log.h"
#include "inject_server.h"

struct stream {
	struct stream *prev,
	        *next; /* nghttp2_session_del() runs no close callback: the list frees the rest */
	char method[8];
	char path[AEGIS_INJECT_MAX_URL + 1];
	size_t header_bytes;
	char *body;
	size_t len, cap;
	bool too_large;
	struct aegis_inject_response resp;
	size_t sent;
	char status[4], clen[24];
};

struct h2 {
	struct aegis_inject_conn *c;
	size_t max_body;
	struct stream *streams;
};

static void stream_free(struct h2 *h, struct stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	aegis_inject_server_response_free(&st->resp);
	free(st->body);
	free(st);
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
	struct h2 *h = user;
	return aegis_inject_server_write_all(h->c, data, len) == 0 ? (ssize_t)len
	                                                           : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int begin_headers_cb(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct stream *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st) != 0) {
		free(st);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	struct h2 *h = user;
	st->next = h->streams;
	if (h->streams)
		h->streams->prev = st;
	h->streams = st;
	return 0;
}

static int header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (st == NULL)
		return 0;
	st->header_bytes += nlen + vlen;
	/* Resetting the one stream is the h2 way to refuse oversized headers; the connection lives on. */
	if (st->header_bytes > AEGIS_INJECT_MAX_HEADER)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (nlen == 7 && memcmp(name, ":method", 7) == 0 && vlen < sizeof(st->method)) {
		memcpy(st->method, value, vlen);
		st->method[vlen] = '\0';
	} else if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
		if (vlen >= sizeof(st->path))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		memcpy(st->path, value, vlen);
		st->path[vlen] = '\0';
	}
	return 0;
}

static int data_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
	struct h2 *h = user;
	struct stream *st = nghttp2_session_get_stream_user_data(s, id);
	if (st == NULL || st->too_large)
		return 0;
	int rc = aegis_buf_append(&st->body, &st->len, &st->cap, data, len, h->max_body);
	if (rc == AEGIS_ELIMIT) {
		st->too_large = true;
		free(st->body);
		st->body = NULL;
		st->len = st->cap = 0;
		return 0;
	}
	return rc == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
	struct stream *st = src->ptr;
	size_t left = st->resp.len - st->sent, n = left < len ? left : len;
	if (n > 0)
		memcpy(buf, st->resp.body + st->sent, n);
	st->sent += n;
	if (st->sent == st->resp.len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int respond(nghttp2_session *s, int32_t id, struct stream *st, struct h2 *h)
{
	aegis_inject_server_route(h->c->srv, st->method[0] ? st->method : "GET", st->path[0] ? st->path : "/",
	                          st->body ? st->body : "", st->len, st->too_large, &st->resp);
	snprintf(st->status, sizeof(st->status), "%d", st->resp.status);
	snprintf(st->clen, sizeof(st->clen), "%zu", st->resp.len);
	const char *ct = st->resp.content_type ? st->resp.content_type : "text/plain";
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
	nghttp2_nv nva[] = {NV(":status", st->status), NV("content-type", ct),
	                    NV("content-length", st->clen)};
#undef NV
	nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
	bool head = strcmp(st->method, "HEAD") == 0;
	return nghttp2_submit_response(s, id, nva, sizeof(nva) / sizeof(nva[0]), head ? NULL : &dp);
}

static int frame_recv_cb(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (st == NULL)
		return 0;
	if (respond(s, f->hd.stream_id, st, user) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int stream_close_cb(nghttp2_session *s, int32_t id, uint32_t error_code, void *user)
{
	struct stream *st = nghttp2_session_get_stream_user_data(s, id);
	if (st == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(s, id, NULL);
	stream_free(user, st);
	return 0;
}

void aegis_inject_h2_serve(struct aegis_inject_conn *c)
{
	struct h2 h = {.c = c, .max_body = aegis_inject_server_max_body(c->srv)};
	nghttp2_session_callbacks *cbs;
	nghttp2_session *s = NULL;
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return;
	nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frame_recv_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, stream_close_cb);
	int rc = nghttp2_session_server_new(&s, cbs, &h);
	nghttp2_session_callbacks_del(cbs);
	if (rc != 0)
		return;
	nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, AEGIS_INJECT_H2_MAX_STREAMS},
	        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, AEGIS_INJECT_MAX_HEADER},
	};
	if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0)
		goto out;
	uint8_t buf[16384];
	for (;;) {
		if (nghttp2_session_send(s) != 0)
			break;
		if (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s))
			break;
		int n = aegis_inject_server_read(c, buf, sizeof(buf));
		if (n <= 0)
			break;
		ssize_t used = nghttp2_session_mem_recv(s, buf, (size_t)n);
		if (used < 0) {
			AEGIS_LOG(AEGIS_LOG_DEBUG, "h2 error", LKV_S("peer", c->peer),
			          LKV_S("error", nghttp2_strerror((int)used)));
			nghttp2_session_send(s); /* GOAWAY, if nghttp2 queued one */
			break;
		}
	}
out:
	nghttp2_session_del(s);
	while (h.streams)
		stream_free(&h, h.streams);
}
