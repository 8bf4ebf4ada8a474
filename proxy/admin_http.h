/* The admin endpoint's HTTP/1.1 request reader, sans I/O: bytes in, one parsed request (or an HTTP error
 * status) out. The parsing itself is Debian's http-parser (nodejs/http-parser 2.9): a hand-written HTTP
 * parser is a classic source of request-smuggling and overflow bugs, and this one is small, fuzzed
 * upstream and packaged. This file adds what http-parser leaves to its user: bounded copies of the URL
 * and body (headers are counted, not kept), and the mapping of each failure to a status code.
 *
 * Pipelining: after a complete request the reader stops consuming (the rest of the bytes stay with the
 * caller) until aegis_admin_http_next() is called, so responses go out in request order and at most one
 * request per connection is held in memory. */
#ifndef AEGIS_ADMIN_HTTP_H
#define AEGIS_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

#define AEGIS_ADMIN_MAX_HEADER_BYTES (8u << 10) /* request line + headers */
#define AEGIS_ADMIN_MAX_BODY_BYTES   (64u << 10)

enum aegis_admin_http_state {
	AEGIS_ADMIN_HTTP_MORE = 0, /* every byte consumed, request not complete yet */
	AEGIS_ADMIN_HTTP_REQUEST,  /* req holds a complete request; call _next() before feeding more */
	AEGIS_ADMIN_HTTP_ERROR     /* reply with status and close; the connection is unusable */
};

struct aegis_admin_http_req {
	int method;        /* enum http_method */
	const char *path;  /* decoded-free raw path, NUL-terminated, without the query */
	const char *query; /* raw query string after '?', "" when none */
	const char *body;  /* body_len bytes (NUL-terminated) */
	size_t body_len;
	bool keep_alive; /* HTTP/1.1 default, or Connection: keep-alive on 1.0 */
	unsigned short http_major, http_minor;
};

struct aegis_admin_http {
	http_parser parser;
	enum aegis_admin_http_state state;
	int status;          /* ERROR: the HTTP status to answer (400, 413, 414, 431, 505) */
	size_t header_bytes; /* request line + header bytes seen for this request */
	char url[AEGIS_ADMIN_MAX_HEADER_BYTES + 1];
	size_t url_len;
	char *body; /* malloc'd on the first body byte, freed by _next() and _free() */
	size_t body_len;
	struct aegis_admin_http_req req;
};

/* Prepares a reader for a new connection. Cannot fail. */
void aegis_admin_http_init(struct aegis_admin_http *h);

/* Releases the body buffer. The reader may be initialised again. */
void aegis_admin_http_free(struct aegis_admin_http *h);

/* Feeds len bytes. Returns the state; *consumed is how many bytes were used (less than len only on
 * REQUEST, when the rest belongs to the next pipelined request, or on ERROR). On REQUEST, h->req is
 * valid until _next() or _free(). */
enum aegis_admin_http_state aegis_admin_http_feed(struct aegis_admin_http *h, const char *data, size_t len,
                                                  size_t *consumed);

/* Forgets the current request and readies the reader for the next one on the same connection. */
void aegis_admin_http_next(struct aegis_admin_http *h);

/* Finds key in a query string ("a=1&b=x%20y") and URL-decodes its value into out (NUL-terminated).
 * Returns the decoded length, -1 when absent, or -2 when the value does not fit or is badly encoded
 * (a stray '%', or a decoded NUL byte). A key given without '=' has the empty value. */
int aegis_admin_http_query_get(const char *query, const char *key, char *out, size_t outlen);

/* The reason phrase of a status code ("Not Found"); "Unknown" for codes we never send. */
const char *aegis_admin_http_reason(int status);

#endif
