/* aegisctl's HTTP/1.1 client: one request per connection ("Connection: close"), the response read with
 * http-parser. Enough for a loopback admin endpoint; no TLS, no redirects, no chunked uploads. */
#ifndef AEGIS_CTL_HTTP_H
#define AEGIS_CTL_HTTP_H

#include <stddef.h>

#define AEGIS_CTL_MAX_BODY  (256u << 20) /* a config_dump of a very large mesh still fits */
#define AEGIS_CTL_TIMEOUT_S 10

struct aegis_ctl_response {
	int status;
	char *body; /* NUL-terminated, malloc'd; free with aegis_ctl_response_free */
	size_t len;
};

/* Sends method target to addr ("127.0.0.1:15000", "[::1]:15000", "localhost:15000"; the port defaults
 * to 15000). Returns 0 and fills *out, or -1 with a message in err (connection refused, timeout, bad
 * response, body over the cap). */
int aegis_ctl_http_request(const char *addr, const char *method, const char *target,
                           struct aegis_ctl_response *out, char *err, size_t errlen);
void aegis_ctl_response_free(struct aegis_ctl_response *r);

/* Percent-encodes s for a query string value into out. Returns out (cut short when out is too small). */
const char *aegis_ctl_url_encode(const char *s, char *out, size_t outlen);

#endif
