/* Unit tests of proxy/proxy_options.c, the mesh listeners' addresses (aegis_proxy_mesh_listen): by default
 * each of 15001, 15006 and 15008 listens in both families, IPv4 first, because a capture rule keeps a
 * connection's family and an IPv6 listener is IPV6_V6ONLY (15006 and 15008 used to listen on 0.0.0.0
 * alone, so IPv6 peers were refused: docs/mesh.md); --outbound-listen, --inbound-listen and
 * --hbone-listen replace the defaults, at most 2 each. And --mesh-transport. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy_options.h"

/* Parses "aegis-proxy --config /dev/null" and the NULL-terminated arguments (at most 12). */
static enum aegis_proxy_options_result parse(struct aegis_proxy_options *o, const char *const *args)
{
	static char prog[] = "aegis-proxy", config[] = "--config", path[] = "/dev/null";
	char *argv[16] = {prog, config, path};
	int argc = 3;
	for (size_t i = 0; args[i] != NULL && argc < 15; i++)
		argv[argc++] = (char *)args[i];
	FILE *null = fopen("/dev/null", "w");
	assert_non_null(null);
	enum aegis_proxy_options_result r = aegis_proxy_options_parse(argc, argv, o, null, null);
	fclose(null);
	return r;
}

/* "ADDR:PORT" of a socket address, "[ADDR]:PORT" for IPv6. */
static const char *str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	return aegis_sockaddr_str(ss, buf, len);
}

static void expect(const struct aegis_proxy_options *o, enum aegis_mesh_listener which, bool is_default,
                   const char *first, const char *second)
{
	struct sockaddr_storage a[2];
	bool def = !is_default;
	char buf[64];
	size_t n = aegis_proxy_mesh_listen(o, which, a, &def);
	assert_int_equal(def, is_default);
	assert_int_equal(n, second != NULL ? 2 : 1);
	assert_string_equal(str(&a[0], buf, sizeof(buf)), first);
	if (second != NULL)
		assert_string_equal(str(&a[1], buf, sizeof(buf)), second);
}

static void test_defaults_both_families(void **state)
{
	(void)state;
	struct aegis_proxy_options o;
	assert_int_equal(parse(&o, (const char *const[]){"--mesh", NULL}), AEGIS_OPTIONS_RUN);
	assert_true(o.mesh);
	/* IPv4 first: a pod without IPv6 starts with the first alone. */
	expect(&o, AEGIS_MESH_LISTEN_OUTBOUND, true, "127.0.0.1:15001", "[::1]:15001");
	expect(&o, AEGIS_MESH_LISTEN_INBOUND, true, "0.0.0.0:15006", "[::]:15006");
	expect(&o, AEGIS_MESH_LISTEN_HBONE, true, "0.0.0.0:15008", "[::]:15008");
}

static void test_flags_replace_defaults(void **state)
{
	(void)state;
	struct aegis_proxy_options o;
	assert_int_equal(
	        parse(&o, (const char *const[]){"--inbound-listen", "[::]:16006", "--inbound-listen",
	                                        "10.0.0.1", "--hbone-listen", "127.0.0.1:16008", NULL}),
	        AEGIS_OPTIONS_RUN);
	assert_true(o.mesh); /* --inbound-listen implies it */
	expect(&o, AEGIS_MESH_LISTEN_INBOUND, false, "[::]:16006", "10.0.0.1:15006");
	expect(&o, AEGIS_MESH_LISTEN_HBONE, false, "127.0.0.1:16008", NULL);
	expect(&o, AEGIS_MESH_LISTEN_OUTBOUND, true, "127.0.0.1:15001", "[::1]:15001");

	assert_int_equal(parse(&o, (const char *const[]){"--outbound-listen", "[::1]:15001", NULL}),
	                 AEGIS_OPTIONS_RUN);
	expect(&o, AEGIS_MESH_LISTEN_OUTBOUND, false, "[::1]:15001", NULL);
}

static void test_at_most_two(void **state)
{
	(void)state;
	struct aegis_proxy_options o;
	assert_int_equal(
	        parse(&o, (const char *const[]){"--hbone-listen", "0.0.0.0", "--hbone-listen", "[::]", NULL}),
	        AEGIS_OPTIONS_RUN);
	expect(&o, AEGIS_MESH_LISTEN_HBONE, false, "0.0.0.0:15008", "[::]:15008");
	assert_int_equal(parse(&o, (const char *const[]){"--hbone-listen", "0.0.0.0", "--hbone-listen",
	                                                 "[::]", "--hbone-listen", "127.0.0.1", NULL}),
	                 AEGIS_OPTIONS_EXIT_USAGE);
	assert_int_equal(parse(&o, (const char *const[]){"--inbound-listen", "a:b", NULL}),
	                 AEGIS_OPTIONS_EXIT_USAGE);
}

static void test_mesh_transport(void **state)
{
	(void)state;
	struct aegis_proxy_options o;
	assert_int_equal(parse(&o, (const char *const[]){"--mesh", NULL}), AEGIS_OPTIONS_RUN);
	assert_int_equal(o.mesh_transport, AEGIS_MESH_HBONE);
	static const char *const names[] = {"hbone", "direct", "auto"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(parse(&o, (const char *const[]){"--mesh-transport", names[i], NULL}),
		                 AEGIS_OPTIONS_RUN);
		assert_int_equal(o.mesh_transport, i);
	}
	assert_int_equal(parse(&o, (const char *const[]){"--mesh-transport", "h2", NULL}),
	                 AEGIS_OPTIONS_EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults_both_families),
	        cmocka_unit_test(test_flags_replace_defaults),
	        cmocka_unit_test(test_at_most_two),
	        cmocka_unit_test(test_mesh_transport),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
