/* Tests proxy/dns_policy.c: CIDR parsing, the source ACL (loopback, local addresses, --allow-source,
 * drop vs REFUSED), the rate limiter (burst, refill, slip, TCP exemption, per-client buckets, eviction)
 * and the blocklist (exact, subtree, exceptions, most specific wins, allowlist mode, parse errors with
 * file:line, answer rcode, reload counters). Time is passed in: no sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <unistd.h>

#include "dns_name.h"
#include "dns_policy.h"
#include "dns_wire.h"

#define SEC 1000000000ull

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, s, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return ss;
}

#define SA(s) ((const struct sockaddr *)(struct sockaddr_storage[]){addr(s)})

static struct aegis_policy *mk(const struct aegis_policy_opts *o)
{
	struct aegis_policy *p = NULL;
	struct aegis_policy_opts def = {0};
	assert_int_equal(aegis_policy_new(o ? o : &def, &p), 0);
	return p;
}

static void test_cidr_parse(void **state)
{
	struct aegis_policy_cidr c;
	assert_int_equal(aegis_policy_cidr_parse("10.1.2.3/8", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_int_equal(c.addr[0], 10);
	assert_int_equal(c.addr[1], 0); /* host bits cleared */
	assert_int_equal(aegis_policy_cidr_parse("192.0.2.7", &c), 0);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(aegis_policy_cidr_parse("fd00::1/8", &c), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 8);
	assert_int_equal(c.addr[15], 0);
	assert_int_equal(aegis_policy_cidr_parse("0.0.0.0/0", &c), 0);
	const char *bad[] = {"",       "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
	                     "host/8", "10.0.0.0/08a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(aegis_policy_cidr_parse(bad[i], &c), AEGIS_EINVAL);
	(void)state;
}

static void test_acl_default_loopback_only(void **state)
{
	struct aegis_policy *p = mk(NULL);
	assert_true(aegis_policy_acl_allows(p, SA("127.0.0.1")));
	assert_true(aegis_policy_acl_allows(p, SA("127.0.0.2")));
	assert_true(aegis_policy_acl_allows(p, SA("::1")));
	assert_true(aegis_policy_acl_allows(p, SA("::ffff:127.0.0.1"))); /* v4-mapped is IPv4 */
	assert_false(aegis_policy_acl_allows(p, SA("10.0.0.1")));
	assert_false(aegis_policy_acl_allows(p, SA("::2")));
	assert_false(aegis_policy_acl_allows(p, NULL));
	assert_int_equal(aegis_policy_check_source(p, SA("10.0.0.1"), false, 0), AEGIS_POLICY_REFUSE);
	assert_int_equal(aegis_policy_check_source(p, SA("10.0.0.1"), true, 0), AEGIS_POLICY_REFUSE);
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, 0), AEGIS_POLICY_PASS);
	assert_int_equal(aegis_policy_stats(p)->acl_denied, 2);
	aegis_policy_free(p);
	(void)state;
}

static void test_acl_local_and_allow(void **state)
{
	struct aegis_policy_cidr allow[2];
	assert_int_equal(aegis_policy_cidr_parse("10.244.0.0/16", &allow[0]), 0);
	assert_int_equal(aegis_policy_cidr_parse("fd00:1::/64", &allow[1]), 0);
	struct aegis_policy_opts o = {.allow = allow, .n_allow = 2, .deny_drop = true};
	struct aegis_policy *p = mk(&o);
	assert_true(aegis_policy_acl_allows(p, SA("10.244.3.4")));
	assert_false(aegis_policy_acl_allows(p, SA("10.245.0.1")));
	assert_true(aegis_policy_acl_allows(p, SA("fd00:1::99")));
	assert_false(aegis_policy_acl_allows(p, SA("fd00:2::99")));
	/* The pod's own address (what a REDIRECTed query carries) once it is known as local. */
	assert_false(aegis_policy_acl_allows(p, SA("10.253.0.2")));
	struct aegis_policy_cidr local[2];
	assert_int_equal(aegis_policy_cidr_parse("10.253.0.2", &local[0]), 0);
	assert_int_equal(aegis_policy_cidr_parse("fd53:ae61::2", &local[1]), 0);
	assert_int_equal(aegis_policy_set_local(p, local, 2), 0);
	assert_true(aegis_policy_acl_allows(p, SA("10.253.0.2")));
	assert_true(aegis_policy_acl_allows(p, SA("::ffff:10.253.0.2")));
	assert_true(aegis_policy_acl_allows(p, SA("fd53:ae61::2")));
	assert_false(aegis_policy_acl_allows(p, SA("10.253.0.1")));
	/* deny_drop: no answer at all. */
	assert_int_equal(aegis_policy_check_source(p, SA("10.253.0.1"), false, 0), AEGIS_POLICY_DROP);
	/* More local addresses than fit: the first ones are kept and the caller told. */
	struct aegis_policy_cidr many[AEGIS_POLICY_MAX_LOCAL + 1];
	for (size_t i = 0; i <= AEGIS_POLICY_MAX_LOCAL; i++)
		many[i] = local[0];
	assert_int_equal(aegis_policy_set_local(p, many, AEGIS_POLICY_MAX_LOCAL + 1), AEGIS_ELIMIT);
	assert_true(aegis_policy_acl_allows(p, SA("10.253.0.2")));
	aegis_policy_free(p);
	(void)state;
}

static void test_bad_opts(void **state)
{
	struct aegis_policy *p = NULL;
	struct aegis_policy_opts o = {.n_allow = 1};
	assert_int_equal(aegis_policy_new(&o, &p), AEGIS_EINVAL);
	o = (struct aegis_policy_opts){.rrl_table = AEGIS_POLICY_RRL_MAX_TAB + 1};
	assert_int_equal(aegis_policy_new(&o, &p), AEGIS_EINVAL);
	(void)state;
}

static void test_rrl_burst_refill_slip(void **state)
{
	struct aegis_policy_opts o = {.rrl_qps = 10, .rrl_burst = 5, .rrl_slip = 2};
	struct aegis_policy *p = mk(&o);
	uint64_t t = 1000 * SEC;
	for (int i = 0; i < 5; i++)
		assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_PASS);
	/* Over the burst: drop, slip, drop, slip (every 2nd limited query slips). */
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_DROP);
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_SLIP);
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_DROP);
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_SLIP);
	assert_int_equal(aegis_policy_stats(p)->rrl_dropped, 2);
	assert_int_equal(aegis_policy_stats(p)->rrl_slipped, 2);
	/* TCP is never limited (the handshake proves the address). */
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), true, t), AEGIS_POLICY_PASS);
	/* Another client has its own bucket. */
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.2"), false, t), AEGIS_POLICY_PASS);
	/* 10 qps: 100 ms later one token is back, not two. */
	t += SEC / 10;
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_PASS);
	assert_int_not_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_PASS);
	/* A long pause refills to the burst, never beyond (and a huge gap cannot overflow). */
	t += 3600 * SEC;
	for (int i = 0; i < 5; i++)
		assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_PASS);
	assert_int_not_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t), AEGIS_POLICY_PASS);
	/* Time going backwards (a caller bug or a clock step) adds nothing. */
	assert_int_not_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, t - SEC),
	                     AEGIS_POLICY_PASS);
	aegis_policy_free(p);
	(void)state;
}

static void test_rrl_slip_modes_and_off(void **state)
{
	struct aegis_policy_opts o = {.rrl_qps = 1, .rrl_slip = 0};
	struct aegis_policy *p = mk(&o);
	assert_int_equal(aegis_policy_check_source(p, SA("::1"), false, SEC), AEGIS_POLICY_PASS);
	for (int i = 0; i < 10; i++)
		assert_int_equal(aegis_policy_check_source(p, SA("::1"), false, SEC), AEGIS_POLICY_DROP);
	aegis_policy_free(p);
	o.rrl_slip = 1; /* every limited query slips */
	p = mk(&o);
	assert_int_equal(aegis_policy_check_source(p, SA("::1"), false, SEC), AEGIS_POLICY_PASS);
	for (int i = 0; i < 3; i++)
		assert_int_equal(aegis_policy_check_source(p, SA("::1"), false, SEC), AEGIS_POLICY_SLIP);
	aegis_policy_free(p);
	/* qps 0: no limit at all. */
	p = mk(NULL);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, 0), AEGIS_POLICY_PASS);
	aegis_policy_free(p);
	(void)state;
}

static void test_rrl_eviction_is_lenient(void **state)
{
	/* A 4-bucket table: a fifth client recycles the least recently used bucket, which then starts
	 * full again: a crowded table loosens the limit, it never limits an innocent client. */
	struct aegis_policy_opts o = {.rrl_qps = 1, .rrl_burst = 1, .rrl_table = 4};
	struct aegis_policy *p = mk(&o);
	char buf[32];
	for (int i = 1; i <= 5; i++) {
		snprintf(buf, sizeof(buf), "127.0.0.%d", i);
		assert_int_equal(aegis_policy_check_source(p, SA(buf), false, (uint64_t)i),
		                 AEGIS_POLICY_PASS);
	}
	assert_int_equal(aegis_policy_stats(p)->rrl_evictions, 1);
	/* Client 1 was evicted: it has a fresh bucket. Client 5 is still limited. */
	assert_int_equal(aegis_policy_check_source(p, SA("127.0.0.1"), false, 10), AEGIS_POLICY_PASS);
	assert_int_not_equal(aegis_policy_check_source(p, SA("127.0.0.5"), false, 10), AEGIS_POLICY_PASS);
	aegis_policy_free(p);
	(void)state;
}

static struct aegis_blocklist *bl_of(const char *text)
{
	struct aegis_blocklist *bl = NULL;
	struct aegis_diag d = {0};
	int rc = aegis_policy_blocklist_parse(text, strlen(text), "test.rules", &bl, &d);
	if (rc != 0)
		fprintf(stderr, "%s:%d: %s\n", d.file, d.line, d.msg);
	assert_int_equal(rc, 0);
	return bl;
}

static uint8_t verdict(struct aegis_policy *p, const char *name)
{
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str(name, wire);
	assert_true(n > 0);
	return aegis_policy_check_name(p, wire, (size_t)n);
}

static void test_blocklist_rules(void **state)
{
	struct aegis_policy *p = mk(NULL);
	assert_int_equal(verdict(p, "anything.example"), 0); /* no blocklist */
	aegis_policy_set_blocklist(p, bl_of("# ads and trackers\n"
	                                    "exact.example\n"
	                                    "*.ads.example   # the zone and below\n"
	                                    "\t.track.example\r\n"
	                                    "!ok.ads.example\n"
	                                    "!*.fine.ads.example\n"
	                                    "\n"
	                                    "   \n"
	                                    "below.fine.ads.example\n"
	                                    "MiXeD.Example\n"));
	assert_int_equal(aegis_policy_stats(p)->blocklist_rules, 7);
	assert_int_equal(verdict(p, "exact.example"), AEGIS_RCODE_NXDOMAIN);
	assert_int_equal(verdict(p, "sub.exact.example"), 0); /* exact rules are exact */
	assert_int_equal(verdict(p, "example"), 0);
	assert_int_equal(verdict(p, "ads.example"), AEGIS_RCODE_NXDOMAIN); /* the apex too */
	assert_int_equal(verdict(p, "x.y.ads.example"), AEGIS_RCODE_NXDOMAIN);
	assert_int_equal(verdict(p, "xads.example"), 0); /* label-wise, not string suffix */
	assert_int_equal(verdict(p, "a.track.example"), AEGIS_RCODE_NXDOMAIN);
	assert_int_equal(verdict(p, "ok.ads.example"), 0);
	assert_int_equal(verdict(p, "x.ok.ads.example"), AEGIS_RCODE_NXDOMAIN); /* exact exception only */
	assert_int_equal(verdict(p, "fine.ads.example"), 0);
	assert_int_equal(verdict(p, "a.fine.ads.example"), 0);
	/* The most specific rule wins: an exact block below an exception subtree. */
	assert_int_equal(verdict(p, "below.fine.ads.example"), AEGIS_RCODE_NXDOMAIN);
	assert_int_equal(verdict(p, "mixed.example"), AEGIS_RCODE_NXDOMAIN); /* rules are lower-cased */
	assert_int_equal(aegis_policy_stats(p)->blocked, 7);
	assert_int_equal(aegis_policy_stats(p)->allowed_by_exception, 3);
	aegis_policy_free(p);
	(void)state;
}

static void test_blocklist_allowlist_mode_and_refused(void **state)
{
	struct aegis_policy_opts o = {.block_answer = AEGIS_POLICY_BLOCK_REFUSED};
	struct aegis_policy *p = mk(&o);
	aegis_policy_set_blocklist(p, bl_of("*\n!*.svc.cluster.local\n!example.com\n"));
	assert_int_equal(verdict(p, "random.org"), AEGIS_RCODE_REFUSED);
	assert_int_equal(verdict(p, "."), AEGIS_RCODE_REFUSED);
	assert_int_equal(verdict(p, "reviews.default.svc.cluster.local"), 0);
	assert_int_equal(verdict(p, "example.com"), 0);
	assert_int_equal(verdict(p, "www.example.com"), AEGIS_RCODE_REFUSED);
	/* At one name an exception beats a block, and an exact rule beats a subtree rule. */
	aegis_policy_set_blocklist(p,
	                           bl_of("*.same.example\n!*.same.example\nx.sub.example\n!*.x.sub.example\n"
	                                 "*.y.example\n!y.example\n"));
	assert_int_equal(aegis_policy_stats(p)->blocklist_reloads, 1);
	assert_int_equal(verdict(p, "a.same.example"), 0);
	assert_int_equal(verdict(p, "x.sub.example"), AEGIS_RCODE_REFUSED);
	assert_int_equal(verdict(p, "z.x.sub.example"), 0);
	assert_int_equal(verdict(p, "y.example"), 0);
	assert_int_equal(verdict(p, "q.y.example"), AEGIS_RCODE_REFUSED);
	aegis_policy_set_blocklist(p, NULL);
	assert_int_equal(verdict(p, "q.y.example"), 0);
	assert_int_equal(aegis_policy_stats(p)->blocklist_rules, 0);
	aegis_policy_free(p);
	(void)state;
}

static void test_blocklist_errors(void **state)
{
	static const struct {
		const char *text;
		int line;
	} bad[] = {
	        {"ok.example\nbad name.example\n", 2},
	        {"a.example\n\n*.\n", 3},
	        {"x.*.example\n", 1},
	        {"!\n", 1},
	        {"a..b\n", 1},
	        {"0.0.0.0 hosts.example\n", 1},
	        {"..x\n", 1},
	        {"!!x\n", 1},
	        {"a/b\n", 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aegis_blocklist *bl = NULL;
		struct aegis_diag d = {0};
		assert_int_equal(
		        aegis_policy_blocklist_parse(bad[i].text, strlen(bad[i].text), "f.rules", &bl, &d),
		        AEGIS_EPARSE);
		assert_null(bl);
		assert_string_equal(d.file, "f.rules");
		assert_int_equal(d.line, bad[i].line);
	}
	/* A label over 63 bytes, and a line over the limit. */
	char longl[200];
	memset(longl, 'a', 70);
	memcpy(longl + 70, ".example\n", 10);
	struct aegis_blocklist *bl = NULL;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_policy_blocklist_parse(longl, strlen(longl), "f", &bl, &d), AEGIS_EPARSE);
	char huge[2000];
	memset(huge, 'a', sizeof(huge));
	assert_int_equal(aegis_policy_blocklist_parse(huge, sizeof(huge), "f", &bl, &d), AEGIS_EPARSE);
	/* A NUL byte inside a rule. */
	assert_int_equal(aegis_policy_blocklist_parse("a\0b\n", 4, "f", &bl, &d), AEGIS_EPARSE);
	/* Empty and comment-only files are valid, empty blocklists. */
	bl = bl_of("# nothing\n");
	assert_int_equal(aegis_policy_blocklist_rules(bl), 0);
	aegis_policy_blocklist_free(bl);
	bl = bl_of("");
	aegis_policy_blocklist_free(bl);
	(void)state;
}

static void test_blocklist_load(void **state)
{
	struct aegis_blocklist *bl = NULL;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_policy_blocklist_load("/nonexistent/aegis.rules", &bl, &d), AEGIS_EIO);
	char path[] = "/tmp/aegis-policy-test.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "one.example\n*.two.example\nbad rule\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(aegis_policy_blocklist_load(path, &bl, &d), AEGIS_EPARSE);
	assert_string_equal(d.file, path);
	assert_int_equal(d.line, 3);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, 26), 26);
	close(fd);
	assert_int_equal(aegis_policy_blocklist_load(path, &bl, &d), 0);
	assert_int_equal(aegis_policy_blocklist_rules(bl), 2);
	aegis_policy_blocklist_free(bl);
	unlink(path);
	(void)state;
}

static void test_many_rules(void **state)
{
	/* 20000 rules: the table sized from the line count holds them all, lookups stay exact. */
	size_t cap = 20000 * 24, len = 0;
	char *text = malloc(cap);
	assert_non_null(text);
	for (int i = 0; i < 20000; i++)
		len += (size_t)snprintf(text + len, cap - len, "*.n%d.example\n", i);
	struct aegis_policy *p = mk(NULL);
	aegis_policy_set_blocklist(p, bl_of(text));
	free(text);
	assert_int_equal(aegis_policy_stats(p)->blocklist_rules, 20000);
	assert_int_equal(verdict(p, "a.n19999.example"), AEGIS_RCODE_NXDOMAIN);
	assert_int_equal(verdict(p, "a.n20000.example"), 0);
	aegis_policy_free(p);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cidr_parse),
	        cmocka_unit_test(test_acl_default_loopback_only),
	        cmocka_unit_test(test_acl_local_and_allow),
	        cmocka_unit_test(test_bad_opts),
	        cmocka_unit_test(test_rrl_burst_refill_slip),
	        cmocka_unit_test(test_rrl_slip_modes_and_off),
	        cmocka_unit_test(test_rrl_eviction_is_lenient),
	        cmocka_unit_test(test_blocklist_rules),
	        cmocka_unit_test(test_blocklist_allowlist_mode_and_refused),
	        cmocka_unit_test(test_blocklist_errors),
	        cmocka_unit_test(test_blocklist_load),
	        cmocka_unit_test(test_many_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
