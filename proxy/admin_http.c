/* HTTP/1.1 request reader over http-parser: see admin_http.h. */
#include "aegis/container.h"
#include "admin_http.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct aegis_admin_http *of(http_parser *p)
{
	return container_of(p, struct aegis_admin_http, parser);
}

/* A callback that fails records the status to answer; http-parser then stops with a CB_* error. */
static int reject(struct aegis_admin_http *h, int status)
{
	h->status = status;
	return -1;
}

static int count_header(struct aegis_admin_http *h, size_t n)
{
	h->header_bytes += n;
	if (h->header_bytes > AEGIS_ADMIN_MAX_HEADER_BYTES)
		return reject(h, 431);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct aegis_admin_http *h = of(p);
	if (h->url_len + n > AEGIS_ADMIN_MAX_HEADER_BYTES)
		return reject(h, 414);
	memcpy(h->url + h->url_len, at, n);
	h->url_len += n;
	h->url[h->url_len] = '\0';
	return count_header(h, n);
}

static int on_header_bytes(http_parser *p, const char *at, size_t n)
{
	(void)at;
	return count_header(of(p), n + 2); /* ": " or CRLF, roughly: the cap is about what a peer sends */
}

static int on_headers_complete(http_parser *p)
{
	struct aegis_admin_http *h = of(p);
	if (p->http_major != 1)
		return reject(h, 505);
	/* A declared body over the cap is refused before a byte of it is read. */
	if (p->content_length != ULLONG_MAX && p->content_length > AEGIS_ADMIN_MAX_BODY_BYTES)
		return reject(h, 413);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct aegis_admin_http *h = of(p);
	if (h->body_len + n > AEGIS_ADMIN_MAX_BODY_BYTES) /* chunked bodies have no declared length */
		return reject(h, 413);
	if (h->body == NULL) {
		h->body = malloc(AEGIS_ADMIN_MAX_BODY_BYTES + 1);
		if (h->body == NULL)
			return reject(h, 503);
	}
	memcpy(h->body + h->body_len, at, n);
	h->body_len += n;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct aegis_admin_http *h = of(p);
	struct http_parser_url u;
	http_parser_url_init(&u);
	/* Only origin-form ("/path?query") and absolute-form targets are meaningful here. */
	if (h->url_len == 0 || http_parser_parse_url(h->url, h->url_len, 0, &u) != 0 ||
	    !(u.field_set & (1u << UF_PATH)))
		return reject(h, 400);
	char *path = h->url + u.field_data[UF_PATH].off;
	char *query = (u.field_set & (1u << UF_QUERY)) ? h->url + u.field_data[UF_QUERY].off : NULL;
	/* Cut the URL in place into NUL-terminated path and query (the '?' and '#' become NULs). */
	path[u.field_data[UF_PATH].len] = '\0';
	if (query != NULL)
		query[u.field_data[UF_QUERY].len] = '\0';
	if (h->body != NULL)
		h->body[h->body_len] = '\0';
	h->req = (struct aegis_admin_http_req){
	        .method = (int)p->method,
	        .path = path,
	        .query = query ? query : "",
	        .body = h->body ? h->body : "",
	        .body_len = h->body_len,
	        .keep_alive = http_should_keep_alive(p) != 0 && !p->upgrade,
	        .http_major = p->http_major,
	        .http_minor = p->http_minor,
	};
	h->state = AEGIS_ADMIN_HTTP_REQUEST;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
        .on_url = on_url,
        .on_header_field = on_header_bytes,
        .on_header_value = on_header_bytes,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

void aegis_admin_http_init(struct aegis_admin_http *h)
{
	h->body = NULL;
	h->body_len = 0;
	http_parser_init(&h->parser, HTTP_REQUEST);
	h->state = AEGIS_ADMIN_HTTP_MORE;
	h->status = 0;
	h->header_bytes = 0;
	h->url_len = 0;
	h->url[0] = '\0';
	memset(&h->req, 0, sizeof(h->req));
}

void aegis_admin_http_free(struct aegis_admin_http *h)
{
	free(h->body);
	h->body = NULL;
	h->body_len = 0;
}

void aegis_admin_http_next(struct aegis_admin_http *h)
{
	if (h->state != AEGIS_ADMIN_HTTP_REQUEST)
		return;
	h->state = AEGIS_ADMIN_HTTP_MORE;
	h->header_bytes = 0;
	h->url_len = 0;
	h->url[0] = '\0';
	h->body_len = 0; /* the buffer is kept for the connection's next body */
	memset(&h->req, 0, sizeof(h->req));
	http_parser_pause(&h->parser, 0);
}

enum aegis_admin_http_state aegis_admin_http_feed(struct aegis_admin_http *h, const char *data, size_t len,
                                                  size_t *consumed)
{
	*consumed = 0;
	if (h->state != AEGIS_ADMIN_HTTP_MORE)
		return h->state;
	if (len == 0)
		return AEGIS_ADMIN_HTTP_MORE; /* http-parser reads len 0 as end of input; EOF is the caller's
		                               */
	size_t n = http_parser_execute(&h->parser, &settings, data, len);
	*consumed = n;
	enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
	if (h->state == AEGIS_ADMIN_HTTP_REQUEST && (e == HPE_OK || e == HPE_PAUSED))
		return AEGIS_ADMIN_HTTP_REQUEST;
	if (e == HPE_OK && !h->parser.upgrade)
		return AEGIS_ADMIN_HTTP_MORE;
	if (h->status == 0) {
		switch (e) {
		case HPE_HEADER_OVERFLOW: h->status = 431; break;
		case HPE_INVALID_METHOD: h->status = 501; break;
		case HPE_INVALID_VERSION: h->status = 505; break;
		default: h->status = 400; break;
		}
	}
	h->state = AEGIS_ADMIN_HTTP_ERROR;
	return h->state;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int aegis_admin_http_query_get(const char *query, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);
	if (outlen == 0)
		return -2;
	const char *p = query;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);
		if (plen >= klen && memcmp(p, key, klen) == 0 && (plen == klen || p[klen] == '=')) {
			const char *v = plen == klen ? p + plen : p + klen + 1;
			const char *vend = p + plen;
			size_t o = 0;
			while (v < vend) {
				int c = (unsigned char)*v;
				if (c == '+') {
					c = ' ';
					v++;
				} else if (c == '%') {
					int hi = (vend - v >= 3) ? hexval(v[1]) : -1;
					int lo = (vend - v >= 3) ? hexval(v[2]) : -1;
					if (hi < 0 || lo < 0)
						return -2;
					c = hi * 16 + lo;
					v += 3;
				} else {
					v++;
				}
				if (c == 0 || o + 1 >= outlen)
					return -2;
				out[o++] = (char)c;
			}
			out[o] = '\0';
			return (int)o;
		}
		p = end ? end + 1 : NULL;
	}
	return -1;
}

const char *aegis_admin_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
