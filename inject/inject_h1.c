/* HTTP/1.1 on one TLS connection: http-parser reads requests (the same parser as the admin endpoint, see
 * proxy/admin_http.h for why not a hand-written one), bounded copies of the URL and body, Expect:
 * 100-continue, keep-alive and pipelining one request at a time. A body declared or grown over max_body is
 * answered 413 and the connection closed without reading the rest. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include "aegis/buf.h"
#include "aegis/log.h"
#include "inject_server.h"

struct h1 {
	http_parser p;
	size_t max_body;
	size_t header_bytes;
	char url[AEGIS_INJECT_MAX_URL + 1];
	size_t url_len;
	char field[16]; /* the header name being read, enough to recognise "Expect" */
	size_t field_len;
	bool value_seen; /* a value followed the current field: the next field is a new header */
	bool expect_continue;
	char *body;
	size_t body_len, body_cap;
	int error;     /* an HTTP status to answer before closing, or 0 */
	bool headers;  /* headers complete: send 100 Continue if asked */
	bool complete; /* a whole request is in */
	bool too_large;
	bool keep_alive;
};

static int count_header(http_parser *p, size_t n)
{
	struct h1 *h = p->data;
	h->header_bytes += n;
	if (h->header_bytes > AEGIS_INJECT_MAX_HEADER) {
		h->error = 431;
		return 1;
	}
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = p->data;
	if (count_header(p, n) != 0)
		return 1;
	if (h->url_len + n > AEGIS_INJECT_MAX_URL) {
		h->error = 414;
		return 1;
	}
	memcpy(h->url + h->url_len, at, n);
	h->url_len += n;
	h->url[h->url_len] = '\0';
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = p->data;
	if (count_header(p, n) != 0)
		return 1;
	if (h->value_seen) { /* a new header starts */
		h->field_len = 0;
		h->value_seen = false;
	}
	if (h->field_len + n < sizeof(h->field)) {
		memcpy(h->field + h->field_len, at, n);
		h->field_len += n;
	} else {
		h->field_len = sizeof(h->field); /* too long to be one we care about */
	}
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = p->data;
	if (count_header(p, n) != 0)
		return 1;
	/* Only the first piece of a value is looked at: "100-continue" is never split in practice, and a
	 * missed Expect only costs the client its one-second wait. */
	if (!h->value_seen && h->field_len == 6 && strncasecmp(h->field, "expect", 6) == 0)
		h->expect_continue = n == 12 && strncasecmp(at, "100-continue", 12) == 0;
	h->value_seen = true; /* the next field callback starts a new header */
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct h1 *h = p->data;
	h->headers = true;
	if (p->content_length != ULLONG_MAX && p->content_length > h->max_body)
		h->too_large = true;
	/* Stop here so the caller can answer 100 Continue (or 413) before the client sends the body. */
	http_parser_pause(p, 1);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct h1 *h = p->data;
	int rc = aegis_buf_append(&h->body, &h->body_len, &h->body_cap, at, n, h->max_body);
	if (rc == AEGIS_ELIMIT) { /* chunked: no declared length */
		h->too_large = true;
		http_parser_pause(p, 1);
		return 0;
	}
	if (rc != 0) {
		h->error = 500;
		return 1;
	}
	return 0;
}

static int on_complete(http_parser *p)
{
	struct h1 *h = p->data;
	h->complete = true;
	h->keep_alive = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
        .on_url = on_url,
        .on_header_field = on_field,
        .on_header_value = on_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_complete,
};

static void reset(struct h1 *h)
{
	h->header_bytes = h->url_len = h->body_len = 0;
	h->url[0] = '\0';
	h->field_len = 0;
	h->value_seen = h->expect_continue = h->headers = h->complete = h->too_large = false;
	h->error = 0;
}

static int send_response(struct aegis_inject_conn *c, const struct aegis_inject_response *r, bool head,
                         bool keep_alive)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", r->status,
	                 aegis_inject_server_reason(r->status),
	                 r->content_type ? r->content_type : "text/plain", r->len,
	                 keep_alive ? "" : "Connection: close\r\n");
	if (aegis_inject_server_write_all(c, hdr, (size_t)n) != 0)
		return -1;
	if (!head && r->len > 0 && aegis_inject_server_write_all(c, r->body, r->len) != 0)
		return -1;
	return 0;
}

static void send_error(struct aegis_inject_conn *c, int status)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", aegis_inject_server_reason(status));
	struct aegis_inject_response r = {status, "application/json", body, (size_t)n};
	send_response(c, &r, false, false);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void aegis_inject_h1_serve(struct aegis_inject_conn *c)
{
	struct h1 *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return;
	h->max_body = aegis_inject_server_max_body(c->srv);
	http_parser_init(&h->p, HTTP_REQUEST);
	h->p.data = h;
	char buf[16384];
	size_t have = 0, off = 0;
	double started = 0;
	for (;;) {
		if (off == have) {
			int n = aegis_inject_server_read(c, buf, sizeof(buf));
			if (n <= 0)
				break; /* closed, timed out (idle keep-alive) or broken */
			have = (size_t)n;
			off = 0;
			if (started == 0)
				started = now_s();
		}
		size_t used = http_parser_execute(&h->p, &settings, buf + off, have - off);
		off += used;
		enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
		if (h->error != 0 || (e != HPE_OK && e != HPE_PAUSED)) {
			send_error(c, h->error ? h->error : 400);
			AEGIS_LOG(AEGIS_LOG_DEBUG, "bad HTTP request", LKV_S("peer", c->peer),
			          LKV_S("error", h->error ? aegis_inject_server_reason(h->error)
			                                  : http_errno_name(e)));
			break;
		}
		if (started != 0 && now_s() - started > AEGIS_INJECT_REQUEST_S) {
			send_error(c, 408);
			break;
		}
		if (e != HPE_PAUSED)
			continue;
		http_parser_pause(&h->p, 0);
		const char *method = http_method_str((enum http_method)h->p.method);
		if (h->too_large) {
			/* Answer without reading the rest: the client learns at once, and we never buffer it.
			 */
			struct aegis_inject_response r;
			aegis_inject_server_route(c->srv, method, h->url, NULL, 0, true, &r);
			send_response(c, &r, false, false);
			aegis_inject_server_response_free(&r);
			aegis_inject_server_linger(c);
			break;
		}
		if (h->headers && !h->complete) {
			h->headers = false;
			if (h->expect_continue &&
			    aegis_inject_server_write_all(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0)
				break;
			continue;
		}
		if (!h->complete)
			continue;
		struct aegis_inject_response r;
		aegis_inject_server_route(c->srv, method, h->url, h->body ? h->body : "", h->body_len, false,
		                          &r);
		bool keep = h->keep_alive;
		int sent = send_response(c, &r, h->p.method == HTTP_HEAD, keep);
		aegis_inject_server_response_free(&r);
		if (sent != 0 || !keep)
			break;
		reset(h);
		started = off < have ? now_s() : 0;
	}
	free(h->body);
	free(h);
}
