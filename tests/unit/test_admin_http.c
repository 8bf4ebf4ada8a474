/* Tests proxy/admin_http.c: request parsing over http-parser, pipelining, byte-at-a-time input, the
 * header/URL/body limits and their status codes, and query-string decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin_http.h"

/* Feeds the whole of s; returns the final state and the bytes used. */
static enum aegis_admin_http_state feed(struct aegis_admin_http *h, const char *s, size_t *used)
{
	return aegis_admin_http_feed(h, s, strlen(s), used);
}

static struct aegis_admin_http *new_reader(void)
{
	struct aegis_admin_http *h = malloc(sizeof(*h));
	assert_non_null(h);
	aegis_admin_http_init(h);
	return h;
}

static void drop_reader(struct aegis_admin_http *h)
{
	aegis_admin_http_free(h);
	free(h);
}

static void test_simple_get(void **state)
{
	struct aegis_admin_http *h = new_reader();
	size_t used;
	const char *req = "GET /config_dump?resource=dns&name=x HTTP/1.1\r\nHost: a\r\n\r\n";
	assert_int_equal(feed(h, req, &used), AEGIS_ADMIN_HTTP_REQUEST);
	assert_int_equal(used, strlen(req));
	assert_int_equal(h->req.method, HTTP_GET);
	assert_string_equal(h->req.path, "/config_dump");
	assert_string_equal(h->req.query, "resource=dns&name=x");
	assert_true(h->req.keep_alive);
	assert_int_equal(h->req.body_len, 0);
	/* Further bytes are not consumed until next(). */
	assert_int_equal(feed(h, "GET / HTTP/1.1\r\n\r\n", &used), AEGIS_ADMIN_HTTP_REQUEST);
	assert_int_equal(used, 0);
	aegis_admin_http_next(h);
	assert_int_equal(feed(h, "GET / HTTP/1.1\r\n\r\n", &used), AEGIS_ADMIN_HTTP_REQUEST);
	assert_string_equal(h->req.path, "/");
	assert_string_equal(h->req.query, "");
	drop_reader(h);
	(void)state;
}

static void test_pipelined(void **state)
{
	struct aegis_admin_http *h = new_reader();
	const char *two =
	        "GET /a HTTP/1.1\r\n\r\nPOST /logging?level=debug HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
	size_t used;
	assert_int_equal(feed(h, two, &used), AEGIS_ADMIN_HTTP_REQUEST);
	assert_string_equal(h->req.path, "/a");
	assert_int_equal(used, strlen("GET /a HTTP/1.1\r\n\r\n"));
	aegis_admin_http_next(h);
	size_t used2;
	assert_int_equal(aegis_admin_http_feed(h, two + used, strlen(two) - used, &used2),
	                 AEGIS_ADMIN_HTTP_REQUEST);
	assert_int_equal(used + used2, strlen(two));
	assert_int_equal(h->req.method, HTTP_POST);
	assert_string_equal(h->req.path, "/logging");
	assert_string_equal(h->req.query, "level=debug");
	assert_int_equal(h->req.body_len, 3);
	assert_string_equal(h->req.body, "abc");
	drop_reader(h);
	(void)state;
}

static void test_byte_at_a_time(void **state)
{
	struct aegis_admin_http *h = new_reader();
	const char *req = "GET /healthz/ready HTTP/1.0\r\nX-A: b\r\n\r\n";
	size_t used;
	for (size_t i = 0; req[i]; i++) {
		enum aegis_admin_http_state st = aegis_admin_http_feed(h, req + i, 1, &used);
		assert_int_equal(used, 1);
		assert_int_equal(st, req[i + 1] ? AEGIS_ADMIN_HTTP_MORE : AEGIS_ADMIN_HTTP_REQUEST);
	}
	assert_string_equal(h->req.path, "/healthz/ready");
	assert_false(h->req.keep_alive); /* HTTP/1.0 without keep-alive */
	drop_reader(h);
	(void)state;
}

static void test_connection_close(void **state)
{
	struct aegis_admin_http *h = new_reader();
	size_t used;
	assert_int_equal(feed(h, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &used),
	                 AEGIS_ADMIN_HTTP_REQUEST);
	assert_false(h->req.keep_alive);
	drop_reader(h);
	h = new_reader();
	assert_int_equal(feed(h, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &used),
	                 AEGIS_ADMIN_HTTP_REQUEST);
	assert_true(h->req.keep_alive);
	drop_reader(h);
	(void)state;
}

static int error_status(const char *req, size_t len)
{
	struct aegis_admin_http *h = new_reader();
	size_t used;
	enum aegis_admin_http_state st = aegis_admin_http_feed(h, req, len, &used);
	int status = st == AEGIS_ADMIN_HTTP_ERROR ? h->status : 0;
	drop_reader(h);
	return status;
}

static void test_limits(void **state)
{
	char *big = malloc(20000);
	assert_non_null(big);
	/* Headers over 8 KiB: 431. */
	int n = snprintf(big, 20000, "GET / HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'a', 9000);
	memcpy(big + n + 9000, "\r\n\r\n", 5);
	assert_int_equal(error_status(big, strlen(big)), 431);
	/* Many small headers add up the same way. */
	n = snprintf(big, 20000, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 1000; i++)
		n += snprintf(big + n, (size_t)(20000 - n), "X-%d: v\r\n", i);
	snprintf(big + n, (size_t)(20000 - n), "\r\n");
	assert_int_equal(error_status(big, strlen(big)), 431);
	/* A URL over the limit: 414. */
	n = snprintf(big, 20000, "GET /");
	memset(big + n, 'u', 9000);
	snprintf(big + n + 9000, 100, " HTTP/1.1\r\n\r\n");
	assert_int_equal(error_status(big, strlen(big)), 414);
	free(big);
	/* A declared body over 64 KiB: 413 before any of it arrives. */
	const char *cl = "POST /logging HTTP/1.1\r\nContent-Length: 70000\r\n\r\n";
	assert_int_equal(error_status(cl, strlen(cl)), 413);
	/* A chunked body that grows past the cap. */
	size_t clen = 100 + 2 * (AEGIS_ADMIN_MAX_BODY_BYTES + 100);
	char *chunked = malloc(clen);
	assert_non_null(chunked);
	size_t o = (size_t)snprintf(chunked, clen,
	                            "POST /logging HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		o += (size_t)snprintf(chunked + o, clen - o, "8000\r\n");
		memset(chunked + o, 'b', 0x8000);
		o += 0x8000;
		o += (size_t)snprintf(chunked + o, clen - o, "\r\n");
	}
	assert_int_equal(error_status(chunked, o), 413);
	free(chunked);
	(void)state;
}

static void test_malformed(void **state)
{
	const char *garbage = "\x01\x02\x03 nonsense\r\n\r\n";
	assert_int_equal(error_status(garbage, strlen(garbage)), 501);
	const char *bad = "GET / FTP/1.1\r\n\r\n";
	assert_int_equal(error_status(bad, strlen(bad)), 400);
	const char *v2 = "GET / HTTP/2.0\r\n\r\n";
	assert_int_equal(error_status(v2, strlen(v2)), 505);
	const char *nolf = "GET / HTTP/1.1\rX\n\r\n";
	assert_int_equal(error_status(nolf, strlen(nolf)), 400);
	const char *unknown = "BREW /pot HTTP/1.1\r\n\r\n";
	assert_int_equal(error_status(unknown, strlen(unknown)), 501);
	const char *smuggle = "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
	assert_int_equal(error_status(smuggle, strlen(smuggle)), 400);
	/* "OPTIONS *" is valid HTTP: it parses, and the routing answers 404 (no such path). */
	const char *star = "OPTIONS * HTTP/1.1\r\n\r\n";
	assert_int_equal(error_status(star, strlen(star)), 0);
	(void)state;
}

static void test_query_get(void **state)
{
	char out[16];
	assert_int_equal(aegis_admin_http_query_get("a=1&name=x%2Ey+z&b", "name", out, sizeof(out)), 5);
	assert_string_equal(out, "x.y z");
	assert_int_equal(aegis_admin_http_query_get("a=1&b", "b", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(aegis_admin_http_query_get("ab=1", "a", out, sizeof(out)), -1);
	assert_int_equal(aegis_admin_http_query_get("", "a", out, sizeof(out)), -1);
	assert_int_equal(aegis_admin_http_query_get("a=%zz", "a", out, sizeof(out)), -2);
	assert_int_equal(aegis_admin_http_query_get("a=%2", "a", out, sizeof(out)), -2);
	assert_int_equal(aegis_admin_http_query_get("a=%00", "a", out, sizeof(out)), -2);
	assert_int_equal(aegis_admin_http_query_get("a=0123456789abcdefXYZ", "a", out, sizeof(out)), -2);
	assert_int_equal(aegis_admin_http_query_get("x=1&a=first&a=second", "a", out, sizeof(out)), 5);
	assert_string_equal(out, "first");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_simple_get),     cmocka_unit_test(test_pipelined),
	        cmocka_unit_test(test_byte_at_a_time), cmocka_unit_test(test_connection_close),
	        cmocka_unit_test(test_limits),         cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_query_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
