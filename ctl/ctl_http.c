/* aegisctl's HTTP/1.1 client: see ctl_http.h. */
#include "ctl_http.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <http_parser.h>

#include "aegis/buf.h"

struct reader {
	http_parser parser;
	char *body;
	size_t len, cap;
	bool complete;
	bool too_big;
};

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct reader *r = p->data;
	/* the body and its NUL within AEGIS_CTL_MAX_BODY; out of memory reads as too big too */
	if (aegis_buf_append(&r->body, &r->len, &r->cap, at, n, AEGIS_CTL_MAX_BODY - 1) != 0) {
		r->too_big = true;
		return -1;
	}
	return 0;
}

static int on_complete(http_parser *p)
{
	((struct reader *)p->data)->complete = true;
	return 0;
}

static const http_parser_settings settings = {.on_body = on_body, .on_message_complete = on_complete};

/* "host:port", "[v6]:port" or "host" -> host and port strings. */
static int split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (end == NULL || (size_t)(end - addr - 1) >= hlen)
			return -1;
		snprintf(host, hlen, "%.*s", (int)(end - addr - 1), addr + 1);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strrchr(addr, ':');
		if (colon != NULL && strchr(addr, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
		if (n == 0 || n >= hlen)
			return -1;
		snprintf(host, hlen, "%.*s", (int)n, addr);
	}
	snprintf(port, plen, "%s", colon && colon[1] ? colon + 1 : "15000");
	return 0;
}

static int dial(const char *addr, char *err, size_t errlen)
{
	char host[256], port[16];
	if (split_addr(addr, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(err, errlen, "bad admin address '%s' (want HOST:PORT)", addr);
		return -1;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	int fd = -1, e = 0;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		struct timeval tv = {.tv_sec = AEGIS_CTL_TIMEOUT_S};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to the proxy admin at %s: %s", addr, strerror(e));
	return fd;
}

int aegis_ctl_http_request(const char *addr, const char *method, const char *target,
                           struct aegis_ctl_response *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	int fd = dial(addr, err, errlen);
	if (fd < 0)
		return -1;
	int rc = -1;
	struct reader r = {0};
	char *req = NULL;
	int n = asprintf(&req,
	                 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: aegisctl/%s\r\nAccept: */*\r\n"
	                 "Connection: close\r\n\r\n",
	                 method, target, addr, AEGIS_VERSION);
	if (n < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t off = 0; off < (size_t)n;) {
		ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "send to %s: %s", addr, strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	http_parser_init(&r.parser, HTTP_RESPONSE);
	r.parser.data = &r;
	char buf[65536];
	while (!r.complete) {
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "reading from %s: %s", addr,
			         errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		/* got == 0 tells the parser the stream ended (a body delimited by close completes here). */
		size_t used = http_parser_execute(&r.parser, &settings, buf, (size_t)got);
		if (r.too_big) {
			snprintf(err, errlen, "response from %s larger than %u bytes", addr,
			         AEGIS_CTL_MAX_BODY);
			goto out;
		}
		if (HTTP_PARSER_ERRNO(&r.parser) != HPE_OK || used != (size_t)got) {
			snprintf(err, errlen, "bad HTTP response from %s: %s", addr,
			         http_errno_description(HTTP_PARSER_ERRNO(&r.parser)));
			goto out;
		}
		if (got == 0 && !r.complete) {
			snprintf(err, errlen, "connection to %s closed before the response ended", addr);
			goto out;
		}
	}
	out->status = (int)r.parser.status_code;
	out->body = r.body ? r.body : calloc(1, 1);
	out->len = r.len;
	r.body = NULL;
	rc = out->body ? 0 : -1;
out:
	free(req);
	free(r.body);
	close(fd);
	return rc;
}

void aegis_ctl_response_free(struct aegis_ctl_response *r)
{
	free(r->body);
	r->body = NULL;
}

const char *aegis_ctl_url_encode(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < outlen; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p) != NULL) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return out;
}
