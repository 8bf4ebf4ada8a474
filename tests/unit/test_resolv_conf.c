/* Tests proxy/resolv_conf.c against glibc's reading of resolv.conf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "resolv_conf.h"

static struct aegis_resolv_conf rc;
static struct aegis_diag diag;

static int parse(const char *text)
{
	memset(&diag, 0, sizeof(diag));
	return aegis_resolv_conf_parse("resolv.conf", text, strlen(text), &rc, &diag);
}

static const char *ns_str(size_t i)
{
	static char buf[INET6_ADDRSTRLEN + 16];
	const struct sockaddr_storage *ss = &rc.ns[i];
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		assert_int_equal(ntohs(sin->sin_port), 53);
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	} else {
		assert_int_equal(ss->ss_family, AF_INET6);
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		assert_int_equal(ntohs(sin6->sin6_port), 53);
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
		if (sin6->sin6_scope_id)
			snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%%%u", sin6->sin6_scope_id);
	}
	return buf;
}

static void test_kubelet_file(void **state)
{
	(void)state;
	assert_int_equal(parse("search shop.svc.cluster.local svc.cluster.local cluster.local\n"
	                       "nameserver 10.96.0.10\n"
	                       "options ndots:5\n"),
	                 0);
	assert_int_equal(rc.n_ns, 1);
	assert_string_equal(ns_str(0), "10.96.0.10");
	assert_int_equal(rc.n_search, 3);
	assert_string_equal(rc.search[0], "shop.svc.cluster.local");
	assert_string_equal(rc.search[1], "svc.cluster.local");
	assert_string_equal(rc.search[2], "cluster.local");
	assert_int_equal(rc.ndots, 5);
	assert_int_equal(rc.timeout, 5);
	assert_int_equal(rc.attempts, 2);
	assert_false(rc.rotate);
}

static void test_defaults_empty(void **state)
{
	(void)state;
	assert_int_equal(parse(""), 0);
	assert_int_equal(rc.n_ns, 0);
	assert_int_equal(rc.n_search, 0);
	assert_int_equal(rc.ndots, 1);
	assert_int_equal(rc.timeout, 5);
	assert_int_equal(rc.attempts, 2);
	/* the output is reset, not merged */
	assert_int_equal(parse("nameserver 1.1.1.1\nsearch a\n"), 0);
	assert_int_equal(parse("\n\n"), 0);
	assert_int_equal(rc.n_ns, 0);
	assert_int_equal(rc.n_search, 0);
}

static void test_last_search_or_domain_wins(void **state)
{
	(void)state;
	assert_int_equal(parse("search a.example b.example\ndomain corp.example\n"), 0);
	assert_int_equal(rc.n_search, 1);
	assert_string_equal(rc.search[0], "corp.example");
	assert_int_equal(parse("domain corp.example\nsearch a.example b.example\n"), 0);
	assert_int_equal(rc.n_search, 2);
	assert_string_equal(rc.search[0], "a.example");
	assert_string_equal(rc.search[1], "b.example");
	assert_int_equal(parse("search a.example\nsearch c.example\n"), 0);
	assert_int_equal(rc.n_search, 1);
	assert_string_equal(rc.search[0], "c.example");
	/* domain takes one name */
	assert_int_equal(parse("domain one.example two.example\n"), 0);
	assert_int_equal(rc.n_search, 1);
	assert_string_equal(rc.search[0], "one.example");
}

static void test_nameserver_limit_and_families(void **state)
{
	(void)state;
	char buf[1024];
	size_t o = 0;
	for (int i = 1; i <= AEGIS_RESOLV_MAX_NS + 3; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "nameserver 10.0.0.%d\n", i);
	assert_int_equal(parse(buf), 0);
	assert_int_equal(rc.n_ns, AEGIS_RESOLV_MAX_NS);
	assert_string_equal(ns_str(AEGIS_RESOLV_MAX_NS - 1), "10.0.0.8");

	assert_int_equal(parse("nameserver 2001:db8::53\nnameserver 192.0.2.53\nnameserver ::1\n"), 0);
	assert_int_equal(rc.n_ns, 3);
	assert_string_equal(ns_str(0), "2001:db8::53");
	assert_string_equal(ns_str(1), "192.0.2.53");
	assert_string_equal(ns_str(2), "::1");
}

static void test_scope_ids(void **state)
{
	(void)state;
	assert_int_equal(parse("nameserver fe80::1%lo\nnameserver fe80::2%7\nnameserver fe80::3%nosuchif0\n"),
	                 0);
	assert_int_equal(rc.n_ns, 3);
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&rc.ns[0];
	assert_int_equal(s6->sin6_scope_id, if_nametoindex("lo"));
	assert_true(s6->sin6_scope_id != 0);
	s6 = (const struct sockaddr_in6 *)&rc.ns[1];
	assert_int_equal(s6->sin6_scope_id, 7);
	s6 = (const struct sockaddr_in6 *)&rc.ns[2];
	assert_int_equal(s6->sin6_scope_id, 0); /* glibc leaves an unknown scope at 0 */
	/* a scope on an IPv4 address is not an address */
	assert_int_equal(parse("nameserver 10.0.0.1%eth0\n"), AEGIS_EPARSE);
}

static void test_bad_nameserver(void **state)
{
	(void)state;
	assert_int_equal(parse("# generated\nsearch x\nnameserver dns.example.com\n"), AEGIS_EPARSE);
	assert_string_equal(diag.file, "resolv.conf");
	assert_int_equal(diag.line, 3);
	assert_non_null(strstr(diag.msg, "dns.example.com"));
	assert_int_equal(parse("nameserver 10.0.0.256\n"), AEGIS_EPARSE);
	assert_int_equal(parse("nameserver 1.2.3.4.5\n"), AEGIS_EPARSE);
	/* an empty nameserver line is skipped, as glibc does */
	assert_int_equal(parse("nameserver \nnameserver 1.2.3.4\n"), 0);
	assert_int_equal(rc.n_ns, 1);
}

static void test_comments(void **state)
{
	(void)state;
	assert_int_equal(parse("# nameserver 9.9.9.9\n"
	                       "; nameserver 8.8.8.8\n"
	                       "nameserver 1.1.1.1 # the first\n"
	                       "nameserver 1.0.0.1;comment\n"
	                       "search a.example ;b.example\n"),
	                 AEGIS_EPARSE); /* "1.0.0.1;comment" is one word: not an address */
	assert_int_equal(parse("# nameserver 9.9.9.9\n"
	                       "; nameserver 8.8.8.8\n"
	                       "nameserver 1.1.1.1 # the first\n"
	                       "search a.example ;b.example\n"
	                       "options ndots:3 # ndots:9\n"),
	                 0);
	assert_int_equal(rc.n_ns, 1);
	assert_string_equal(ns_str(0), "1.1.1.1");
	assert_int_equal(rc.n_search, 1);
	assert_string_equal(rc.search[0], "a.example");
	assert_int_equal(rc.ndots, 3);
}

static void test_keywords_glibc_style(void **state)
{
	(void)state;
	/* keywords only at the start of a line and followed by a blank; unknown lines ignored */
	assert_int_equal(parse(" nameserver 1.1.1.1\n"
	                       "nameserverx 2.2.2.2\n"
	                       "nameserver\t3.3.3.3\n"
	                       "sortlist 130.155.160.0/255.255.240.0\n"
	                       "lookup file bind\n"
	                       "search\ta.example\tb.example\n"),
	                 0);
	assert_int_equal(rc.n_ns, 1);
	assert_string_equal(ns_str(0), "3.3.3.3");
	assert_int_equal(rc.n_search, 2);
}

static void test_options(void **state)
{
	(void)state;
	assert_int_equal(parse("options ndots:2 timeout:3 attempts:4 rotate edns0 single-request\n"), 0);
	assert_int_equal(rc.ndots, 2);
	assert_int_equal(rc.timeout, 3);
	assert_int_equal(rc.attempts, 4);
	assert_true(rc.rotate);
	/* capped like glibc */
	assert_int_equal(parse("options ndots:20 timeout:100 attempts:99999999999999999999\n"), 0);
	assert_int_equal(rc.ndots, 15);
	assert_int_equal(rc.timeout, 30);
	assert_int_equal(rc.attempts, 5);
	/* malformed values keep the defaults; later options override earlier ones */
	assert_int_equal(parse("options ndots:x timeout: attempts:-1 rotatex\noptions ndots:0\n"), 0);
	assert_int_equal(rc.ndots, 0);
	assert_int_equal(rc.timeout, 5);
	assert_int_equal(rc.attempts, 2);
	assert_false(rc.rotate);
}

static void test_line_endings_and_bytes(void **state)
{
	(void)state;
	assert_int_equal(
	        parse("nameserver 1.1.1.1\r\nsearch a.example\r\noptions ndots:4\r\nnameserver 2.2.2.2"), 0);
	assert_int_equal(rc.n_ns, 2); /* no newline at the end of the file */
	assert_string_equal(rc.search[0], "a.example");
	assert_int_equal(rc.ndots, 4);
	/* a NUL ends a word: nothing hides behind it */
	static const char nul[] = "nameserver 1.1.1.1\0junk\nsearch a\0b\n";
	assert_int_equal(aegis_resolv_conf_parse("x", nul, sizeof(nul) - 1, &rc, &diag), 0);
	assert_int_equal(rc.n_ns, 1);
	assert_int_equal(rc.n_search, 2);
	assert_string_equal(rc.search[1], "b");
}

static void test_search_limits(void **state)
{
	(void)state;
	char buf[8192];
	size_t o = (size_t)snprintf(buf, sizeof(buf), "search");
	for (int i = 0; i < AEGIS_CONFIG_MAX_SEARCH + 5; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " d%d.example", i);
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\n");
	assert_int_equal(parse(buf), 0);
	assert_int_equal(rc.n_search, AEGIS_CONFIG_MAX_SEARCH);
	assert_string_equal(rc.search[AEGIS_CONFIG_MAX_SEARCH - 1], "d31.example");
	/* an entry too long for any domain name is dropped, the others kept */
	char longw[300];
	memset(longw, 'a', sizeof(longw) - 1);
	longw[sizeof(longw) - 1] = '\0';
	snprintf(buf, sizeof(buf), "search x.example %s y.example\n", longw);
	assert_int_equal(parse(buf), 0);
	assert_int_equal(rc.n_search, 2);
	assert_string_equal(rc.search[1], "y.example");
}

static void test_load(void **state)
{
	(void)state;
	char path[] = "/tmp/aegis-resolv-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "nameserver 10.0.0.1\nsearch a.example\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(aegis_resolv_conf_load(path, &rc, &diag), 0);
	assert_int_equal(rc.n_ns, 1);
	assert_string_equal(rc.search[0], "a.example");
	unlink(path);
	assert_int_equal(aegis_resolv_conf_load(path, &rc, &diag), AEGIS_EIO);
	assert_string_equal(diag.file, path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kubelet_file),
	        cmocka_unit_test(test_defaults_empty),
	        cmocka_unit_test(test_last_search_or_domain_wins),
	        cmocka_unit_test(test_nameserver_limit_and_families),
	        cmocka_unit_test(test_scope_ids),
	        cmocka_unit_test(test_bad_nameserver),
	        cmocka_unit_test(test_comments),
	        cmocka_unit_test(test_keywords_glibc_style),
	        cmocka_unit_test(test_options),
	        cmocka_unit_test(test_line_endings_and_bytes),
	        cmocka_unit_test(test_search_limits),
	        cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
