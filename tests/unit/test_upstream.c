/* Tests the decisions inside the forwarder (proxy/upstream*.c) without the network: stub-zone selection
 * (longest zone wins, label boundaries), health back-off and recovery on a fake clock, server picking
 * across rounds, answer matching (ID, question, source), SERVFAIL building, option validation. Includes
 * upstream.c to reach its statics, and with it upstream_int.h for the pieces in the other files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../proxy/upstream.c"
#include "dns_wire.h"
#include "test_upstream_msg.h"

static struct sockaddr_storage v4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	return ss;
}

struct fixture {
	struct ev_loop *loop;
	struct aegis_upstream *up;
	struct sockaddr_storage def[3], corp[1], eng[2], local[1];
	struct aegis_upstream_zone zones[3];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->loop = ev_loop_new(EVFLAG_AUTO);
	f->def[0] = v4("127.0.0.1", 53);
	f->def[1] = v4("127.0.0.2", 53);
	f->def[2] = v4("127.0.0.3", 53);
	f->corp[0] = v4("127.0.0.10", 53);
	f->eng[0] = v4("127.0.0.20", 53);
	f->eng[1] = v4("127.0.0.21", 5353);
	f->local[0] = v4("127.0.0.30", 53);
	f->zones[0] = (struct aegis_upstream_zone){"company.local", f->corp, 1};
	f->zones[1] = (struct aegis_upstream_zone){"Eng.Company.Local.", f->eng, 2};
	f->zones[2] = (struct aegis_upstream_zone){"local", f->local, 1};
	struct aegis_upstream_opts o;
	aegis_upstream_opts_default(&o);
	o.servers = f->def;
	o.n_servers = 3;
	o.zones = f->zones;
	o.n_zones = 3;
	o.fail_threshold = 3;
	o.backoff_ms = 5000;
	o.rounds = 2;
	assert_int_equal(aegis_upstream_new(f->loop, &o, NULL, &f->up), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	aegis_upstream_free(f->up);
	ev_loop_destroy(f->loop);
	free(f);
	return 0;
}

static unsigned group_of(struct aegis_upstream *up, const char *name)
{
	uint8_t w[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str(name, w);
	assert_true(n > 0);
	return aegis_upstream_server_group(up, w, (size_t)n);
}

static void test_stub_zone_longest_match(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(group_of(f->up, "www.example.com"), 0);
	assert_int_equal(group_of(f->up, "company.local"), 1);
	assert_int_equal(group_of(f->up, "db.company.local"), 1);
	assert_int_equal(group_of(f->up, "a.b.eng.company.local"), 2);
	assert_int_equal(group_of(f->up, "eng.company.local"), 2);
	/* label boundaries: "xcompany.local" is not below company.local */
	assert_int_equal(group_of(f->up, "xcompany.local"), 3);
	assert_int_equal(group_of(f->up, "local"), 3);
	assert_int_equal(group_of(f->up, "localx"), 0);
	assert_int_equal(group_of(f->up, "."), 0);

	/* the accessor lists every server with its zone */
	assert_int_equal(aegis_upstream_server_count(f->up), 7);
	struct aegis_upstream_server_info si;
	assert_int_equal(aegis_upstream_server_info(f->up, 0, &si), 0);
	assert_string_equal(si.zone, ".");
	assert_int_equal(si.health, AEGIS_UPSTREAM_UP);
	assert_int_equal(aegis_upstream_server_info(f->up, 5, &si), 0);
	assert_string_equal(si.zone, "Eng.Company.Local.");
	assert_int_equal(ntohs(((struct sockaddr_in *)&si.addr)->sin_port), 5353);
	assert_int_equal(aegis_upstream_server_info(f->up, 7, &si), AEGIS_ENOTFOUND);
}

static void test_health_backoff(void **state)
{
	struct server s;
	memset(&s, 0, sizeof(s));
	s.addr = v4("127.0.0.1", 53);
	uint64_t t = 1000;
	assert_int_equal(aegis_upstream_server_usable(&s, t), 1);
	aegis_upstream_server_fail(&s, t, 3, 5000);
	aegis_upstream_server_fail(&s, t + 1, 3, 5000);
	assert_int_equal(aegis_upstream_server_usable(&s, t + 2), 1); /* below the threshold */
	aegis_upstream_server_fail(&s, t + 2, 3, 5000);
	assert_int_equal(s.health, AEGIS_UPSTREAM_DOWN);
	assert_int_equal(aegis_upstream_server_usable(&s, t + 3), 0);
	assert_int_equal(aegis_upstream_server_usable(&s, t + 5001), 0);
	assert_int_equal(aegis_upstream_server_usable(&s, t + 5002), 2); /* back-off over: one probe */
	s.probe_inflight = true;
	assert_int_equal(aegis_upstream_server_usable(&s, t + 5003), 0); /* only one probe at a time */
	/* a failed probe: down again for a full back-off at once (no threshold) */
	aegis_upstream_server_fail(&s, t + 6000, 3, 5000);
	assert_false(s.probe_inflight);
	assert_int_equal(aegis_upstream_server_usable(&s, t + 10999), 0);
	assert_int_equal(aegis_upstream_server_usable(&s, t + 11000), 2);
	/* a successful probe: up, failures forgotten */
	aegis_upstream_server_ok(&s);
	assert_int_equal(s.health, AEGIS_UPSTREAM_UP);
	assert_int_equal(s.fails, 0);
	aegis_upstream_server_fail(&s, t + 12000, 3, 5000);
	assert_int_equal(aegis_upstream_server_usable(&s, t + 12001), 1);
}

static void test_pick_rounds(void **state)
{
	struct fixture *f = *state;
	struct aegis_upstream *up = f->up;
	struct txn t;
	memset(&t, 0, sizeof(t));
	t.group = 0;
	bool probe;
	uint64_t now = 100000;
	/* server 1 is down */
	for (int i = 0; i < 3; i++)
		aegis_upstream_server_fail(&up->srv[1], now, 3, 5000);
	assert_int_equal(aegis_upstream_server_pick(up, &t, now, &probe), 0);
	assert_false(probe);
	assert_int_equal(aegis_upstream_server_pick(up, &t, now, &probe), 2);
	/* second round; server 0 refused this question, so it is skipped too */
	t.rcode_failed[0] = 1;
	assert_int_equal(aegis_upstream_server_pick(up, &t, now, &probe), 2);
	assert_int_equal(aegis_upstream_server_pick(up, &t, now, &probe), -1); /* rounds (2) used up */

	/* after the back-off, the down server is picked as a probe */
	memset(&t, 0, sizeof(t));
	now += 5000;
	assert_int_equal(aegis_upstream_server_pick(up, &t, now, &probe), 0);
	assert_int_equal(aegis_upstream_server_pick(up, &t, now, &probe), 1);
	assert_true(probe);

	/* every server down: nothing to pick, the caller fails at once */
	memset(&t, 0, sizeof(t));
	for (int s = 0; s < 3; s++)
		for (int i = 0; i < 3; i++)
			aegis_upstream_server_fail(&up->srv[s], now, 3, 5000);
	assert_int_equal(aegis_upstream_server_pick(up, &t, now + 1, &probe), -1);
}

static void test_answer_matching(void **state)
{
	struct tmsg q, a;
	struct aegis_dns_question_key key;
	tm_query(&q, 0x4242, "www.Example.com", 1, false, false, false);
	assert_int_equal(aegis_cache_key_from_query(q.b, q.n, &key, NULL), 0);
	struct sockaddr_storage srv = v4("127.0.0.1", 53);
	struct sockaddr_storage other_port = v4("127.0.0.1", 54);
	struct sockaddr_storage other_ip = v4("127.0.0.2", 53);
	uint32_t ttl = 60;
	const struct sockaddr *from = (const struct sockaddr *)&srv;
	socklen_t fl = sizeof(struct sockaddr_in);

	tm_answer_a(&a, 0x4242, "WWW.EXAMPLE.COM", 1, &ttl, false);
	assert_true(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, from, fl, a.b, a.n));
	assert_true(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, NULL, 0, a.b,
	                                           a.n)); /* TCP: the connection is the source */
	assert_false(aegis_upstream_attempt_matches(0x4243, 0, &key, &srv, from, fl, a.b, a.n));
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv,
	                                            (const struct sockaddr *)&other_port, fl, a.b, a.n));
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, (const struct sockaddr *)&other_ip,
	                                            fl, a.b, a.n));
	assert_false(aegis_upstream_attempt_matches(0x4242, 5, &key, &srv, from, fl, a.b, a.n));
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, from, fl, a.b, 11));
	a.b[2] &= 0x7F;
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, from, fl, a.b,
	                                            a.n)); /* a query, not an answer */

	tm_answer_a(&a, 0x4242, "www.example.org", 1, &ttl, false);
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, from, fl, a.b, a.n));
	tm_answer_a(&a, 0x4242, "www.example.com.evil", 1, &ttl, false);
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, from, fl, a.b, a.n));
	tm_answer_a(&a, 0x4242, "example.com", 1, &ttl, false);
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, from, fl, a.b, a.n));
	tm_answer_neg(&a, 0x4242, "www.example.com", 28, 0, 60, 60, true);
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, from, fl, a.b,
	                                            a.n)); /* AAAA, we asked A */
	tm_answer_a(&a, 0x4242, "www.example.com", 1, &ttl, false);
	tm_put16(&a, 4, 0); /* no question */
	assert_false(aegis_upstream_attempt_matches(0x4242, 0, &key, &srv, from, fl, a.b, a.n));
}

static void test_servfail_and_limits(void **state)
{
	struct tmsg q;
	tm_query(&q, 0x0102, "Fail.Test", 16, true, true, true);
	struct aegis_dns_question_key key;
	struct aegis_dns_query_info info;
	assert_int_equal(aegis_cache_key_from_query(q.b, q.n, &key, &info), 0);
	struct waiter w;
	memset(&w, 0, sizeof(w));
	w.qlen = info.question_end;
	memcpy(w.q, q.b, w.qlen);
	w.edns = true;
	w.do_bit = true;
	uint8_t out[512];
	size_t n = aegis_upstream_txn_servfail(&w, out, 0);
	assert_int_equal(n, w.qlen + 11);
	assert_int_equal(tm_get16(out), 0x0102);
	assert_int_equal(out[2], 0x81); /* QR + RD */
	assert_int_equal(out[3] & 0x0F, 2);
	assert_true(out[3] & 0x10); /* CD kept */
	assert_true(out[3] & 0x80); /* RA */
	assert_memory_equal(out + 12, "\4Fail\4Test", 11);
	assert_int_equal(tm_get16(out + 10), 1);
	assert_int_equal(out[w.qlen + 7], 0x80); /* DO echoed */
	/* with an Extended DNS Error: OPT RDLENGTH 6, option 15 length 2, the info code */
	n = aegis_upstream_txn_servfail(&w, out, AEGIS_EDE_NO_REACHABLE_AUTHORITY);
	assert_int_equal(n, w.qlen + 17);
	assert_int_equal(tm_get16(out + w.qlen + 9), 6);
	assert_memory_equal(out + w.qlen + 11, "\0\17\0\2\0\26", 6);
	assert_true(n <= sizeof(w.small)); /* the no-memory fallback still fits */
	/* without EDNS there is no OPT, so no EDE */
	w.edns = false;
	assert_int_equal(aegis_upstream_txn_servfail(&w, out, AEGIS_EDE_DNSSEC_BOGUS), w.qlen);

	assert_int_equal(client_limit(true, 0), 65535);
	assert_int_equal(client_limit(false, 0), 512);
	assert_int_equal(client_limit(false, 1232), 1232);
	assert_int_equal(client_limit(false, 65000), 4096);
}

static void test_new_validation(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct aegis_upstream *up = NULL;
	struct aegis_upstream_opts o;
	aegis_upstream_opts_default(&o);
	assert_int_equal(aegis_upstream_new(loop, &o, NULL, &up), AEGIS_EINVAL); /* no servers */
	struct sockaddr_storage s = v4("127.0.0.1", 53);
	o.servers = &s;
	o.n_servers = 1;
	struct aegis_upstream_zone z = {"bad..zone", &s, 1};
	o.zones = &z;
	o.n_zones = 1;
	assert_int_equal(aegis_upstream_new(loop, &o, NULL, &up), AEGIS_EINVAL);
	z.zone = "ok.zone";
	z.n_servers = 0;
	assert_int_equal(aegis_upstream_new(loop, &o, NULL, &up), AEGIS_EINVAL);
	struct sockaddr_storage unix_addr;
	memset(&unix_addr, 0, sizeof(unix_addr));
	unix_addr.ss_family = AF_UNIX;
	o.n_zones = 0;
	o.servers = &unix_addr;
	assert_int_equal(aegis_upstream_new(loop, &o, NULL, &up), AEGIS_EINVAL);
	o.servers = &s;
	o.udp_bufsize = 100;
	assert_int_equal(aegis_upstream_new(loop, &o, NULL, &up), AEGIS_EINVAL);
	o.udp_bufsize = 0;
	assert_int_equal(aegis_upstream_new(loop, &o, NULL, &up), 0);
	assert_int_equal(up->o.try_timeout_ms, 1500);
	assert_int_equal(up->o.deadline_ms, 5000);
	assert_int_equal(up->o.udp_bufsize, 4096);

	/* a malformed query is refused synchronously and no callback is queued */
	uint8_t junk[5] = {1, 2, 3, 4, 5};
	struct aegis_upstream_req *req = NULL;
	assert_int_equal(aegis_upstream_resolve(up, junk, sizeof(junk), NULL, 0, NULL, NULL, &req),
	                 AEGIS_EPARSE);
	assert_null(req);
	assert_false(aegis_upstream_is_own_query(up, junk, sizeof(junk), NULL));
	aegis_upstream_free(up);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_stub_zone_longest_match, setup, teardown),
	        cmocka_unit_test(test_health_backoff),
	        cmocka_unit_test_setup_teardown(test_pick_rounds, setup, teardown),
	        cmocka_unit_test(test_answer_matching),
	        cmocka_unit_test(test_servfail_and_limits),
	        cmocka_unit_test(test_new_validation),
	};
	aegis_log_set_level(AEGIS_LOG_OFF);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
