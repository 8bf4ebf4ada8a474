/* Unit tests of proxy/sockaddr.c: the address forms flags accept, the ones they refuse, and the text the
 * log lines print (parse then format gives the canonical form back). */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sockaddr.h"

static void roundtrip(const char *in, uint16_t def_port, const char *want)
{
	struct sockaddr_storage ss;
	char buf[64];
	if (aegis_sockaddr_parse(in, def_port, &ss) != 0)
		fail_msg("'%s' refused", in);
	assert_string_equal(aegis_sockaddr_str(&ss, buf, sizeof(buf)), want);
}

static void test_forms(void **state)
{
	(void)state;
	roundtrip("10.1.2.3:53", 99, "10.1.2.3:53");
	roundtrip("10.1.2.3", 15053, "10.1.2.3:15053");
	roundtrip("[::1]:15001", 99, "[::1]:15001");
	roundtrip("[fd00:0:0::1]", 53, "[fd00::1]:53");
	roundtrip("fd00::1", 53, "[fd00::1]:53"); /* a bare IPv6 address takes the default port */
	roundtrip("0.0.0.0:65535", 1, "0.0.0.0:65535");
	struct sockaddr_storage ss;
	assert_int_equal(aegis_sockaddr_parse("[::1]:53", 0, &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(aegis_sockaddr_parse("127.0.0.1:53", 0, &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "",       "10.1.2.3:", "10.1.2.3:0", "10.1.2.3:65536", "10.1.2.3:5x",  "[::1",
	        "[::1]x", "[::1]:",    "host:53",    "10.1.2.300:53",  "[10.1.2.3:53", "::1]:53"};
	struct sockaddr_storage ss;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (aegis_sockaddr_parse(bad[i], 53, &ss) != AEGIS_EINVAL)
			fail_msg("'%s' accepted", bad[i]);
}

static void test_unknown_family(void **state)
{
	(void)state;
	struct sockaddr_storage ss = {.ss_family = AF_UNIX};
	char buf[8];
	assert_string_equal(aegis_sockaddr_str(&ss, buf, sizeof(buf)), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_forms),
	        cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_unknown_family),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
