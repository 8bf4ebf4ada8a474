/* libFuzzer harness for the admin endpoint's request path: any bytes a local client can send go through
 * the HTTP reader (in chunks whose size the first byte picks, so split headers and pipelining are
 * covered), and every complete request through the routing and the response serialiser. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "aegis/log.h"

static struct aegis_admin *admin;

static json_t *dump(void *user, const char *name)
{
	(void)user;
	return json_pack("{s:s?}", "filter", name);
}

static void init(void)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (aegis_admin_new(ev_loop_new(EVFLAG_AUTO), &ss, &admin) != 0 ||
	    aegis_admin_add_section(admin, "fuzz", dump, NULL) != 0)
		abort();
	aegis_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (admin == NULL)
		init();
	if (size == 0)
		return 0;
	size_t chunk = (size_t)(data[0] % 64) + 1;
	const char *p = (const char *)data + 1;
	size_t left = size - 1;
	struct aegis_admin_http *h = malloc(sizeof(*h));
	if (h == NULL)
		abort();
	aegis_admin_http_init(h);
	while (left > 0) {
		size_t n = left < chunk ? left : chunk, used = 0;
		enum aegis_admin_http_state st = aegis_admin_http_feed(h, p, n, &used);
		if (used > n)
			abort();
		p += used;
		left -= used;
		if (st == AEGIS_ADMIN_HTTP_ERROR) {
			if (h->status < 400 || h->status > 599)
				abort();
			break;
		}
		if (st == AEGIS_ADMIN_HTTP_REQUEST) {
			struct aegis_admin_response r;
			aegis_admin_handle(admin, &h->req, &r);
			size_t blen = 0;
			char *bytes = aegis_admin_response_bytes(&r, h->req.keep_alive, false, &blen);
			if (bytes == NULL || blen < r.body_len || r.status < 200 || r.status > 599)
				abort();
			free(bytes);
			aegis_admin_response_free(&r);
			aegis_admin_http_next(h);
		}
	}
	aegis_admin_http_free(h);
	free(h);
	aegis_log_set_level(AEGIS_LOG_OFF); /* POST /logging may have changed it */
	return 0;
}
