/* Unit tests for proxy/dns_wire.c: query parsing in place and the compressing answer writer. ldns parses
 * what the writer produced, so every answer is checked by a second implementation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "dns_name.h"
#include "dns_wire.h"
#include "test_ldns.h"

/* Builds a query with ldns (the reference encoder). */
static size_t make_query(uint8_t *buf, size_t cap, const char *name, ldns_rr_type type, bool edns,
                         uint16_t udp_size)
{
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
	                 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, 0x1234);
	if (edns) {
		ldns_pkt_set_edns_udp_size(p, udp_size);
		ldns_pkt_set_edns_do(p, true);
	}
	return pkt_to_wire(p, buf, cap);
}

static void test_parse_query(void **state)
{
	(void)state;
	uint8_t pkt[512];
	size_t len = make_query(pkt, sizeof(pkt), "Reviews.Default.svc.cluster.local.", LDNS_RR_TYPE_AAAA,
	                        true, 1232);
	struct aegis_dns_query q;
	assert_int_equal(aegis_wire_parse_query(pkt, len, &q), AEGIS_WIRE_OK);
	assert_int_equal(q.id, 0x1234);
	assert_int_equal(q.qtype, AEGIS_TYPE_AAAA);
	assert_int_equal(q.qclass, AEGIS_CLASS_IN);
	assert_true(q.has_opt);
	assert_int_equal(q.udp_size, 1232);
	assert_int_equal(q.edns_version, 0);
	assert_true(q.edns_flags & AEGIS_DNS_EDNS_DO);
	uint8_t want[AEGIS_DNS_NAME_BUF];
	int wl = aegis_dns_name_from_str("reviews.default.svc.cluster.local", want);
	assert_int_equal(q.qname_len, wl);
	assert_memory_equal(q.lname, want, (size_t)wl);
	/* The original case stays in the packet. */
	assert_int_equal(q.qname[1], 'R');
}

static void test_parse_rejects(void **state)
{
	(void)state;
	uint8_t pkt[512];
	struct aegis_dns_query q;
	size_t len = make_query(pkt, sizeof(pkt), "a.example.", LDNS_RR_TYPE_A, false, 0);

	/* Short packets are dropped. */
	assert_int_equal(aegis_wire_parse_query(pkt, 11, &q), AEGIS_WIRE_DROP);
	/* Responses are dropped (never answer an answer: reflection loops). */
	pkt[2] |= 0x80;
	assert_int_equal(aegis_wire_parse_query(pkt, len, &q), AEGIS_WIRE_DROP);
	pkt[2] &= 0x7F;
	/* No question: FORMERR. */
	pkt[5] = 0;
	assert_int_equal(aegis_wire_parse_query(pkt, len, &q), AEGIS_WIRE_FORMERR);
	/* Two questions: FORMERR. */
	pkt[5] = 2;
	assert_int_equal(aegis_wire_parse_query(pkt, len, &q), AEGIS_WIRE_FORMERR);
	pkt[5] = 1;
	/* Truncated question. */
	assert_int_equal(aegis_wire_parse_query(pkt, len - 3, &q), AEGIS_WIRE_FORMERR);
	/* A compression pointer in the question (nothing before it to point at). */
	uint8_t bad[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1};
	assert_int_equal(aegis_wire_parse_query(bad, sizeof(bad), &q), AEGIS_WIRE_FORMERR);
	/* A label longer than the packet. */
	uint8_t bad2[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 40, 'a', 'b'};
	assert_int_equal(aegis_wire_parse_query(bad2, sizeof(bad2), &q), AEGIS_WIRE_FORMERR);
	/* Opcode UPDATE: not interpreted. */
	pkt[2] = (uint8_t)(5 << 3);
	assert_int_equal(aegis_wire_parse_query(pkt, len, &q), AEGIS_WIRE_NOTQUERY);
}

static void test_parse_two_opts_formerr(void **state)
{
	(void)state;
	uint8_t pkt[512];
	size_t len = make_query(pkt, sizeof(pkt), "a.example.", LDNS_RR_TYPE_A, true, 1232);
	/* Append a second OPT record and bump ARCOUNT. */
	const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
	memcpy(pkt + len, opt, sizeof(opt));
	pkt[11] = 2;
	struct aegis_dns_query q;
	assert_int_equal(aegis_wire_parse_query(pkt, len + sizeof(opt), &q), AEGIS_WIRE_FORMERR);
}

static void test_read_name_pointers(void **state)
{
	(void)state;
	/* "foo" + pointer to "example.com" at offset 0. */
	uint8_t msg[] = {7,   'e', 'x', 'a', 'm', 'p', 'l', 'e',  3,   'C',
	                 'o', 'M', 0,   3,   'F', 'o', 'o', 0xC0, 0x00};
	uint8_t out[AEGIS_DNS_NAME_BUF];
	size_t next;
	int n = aegis_wire_read_name(msg, sizeof(msg), 13, out, &next);
	uint8_t want[AEGIS_DNS_NAME_BUF];
	int wl = aegis_dns_name_from_str("foo.example.com", want);
	assert_int_equal(n, wl);
	assert_memory_equal(out, want, (size_t)wl);
	assert_int_equal(next, sizeof(msg));
	/* A pointer to itself is a loop. */
	uint8_t loop[] = {0xC0, 0x00};
	assert_int_equal(aegis_wire_read_name(loop, sizeof(loop), 0, out, &next), -1);
	/* A forward pointer is refused. */
	uint8_t fwd[] = {0xC0, 0x02, 0};
	assert_int_equal(aegis_wire_read_name(fwd, sizeof(fwd), 0, out, &next), -1);
}

static void test_writer_compresses(void **state)
{
	(void)state;
	uint8_t pkt[512];
	size_t len = make_query(pkt, sizeof(pkt), "api.Example.com.default.svc.cluster.local.",
	                        LDNS_RR_TYPE_A, false, 0);
	struct aegis_dns_query q;
	assert_int_equal(aegis_wire_parse_query(pkt, len, &q), AEGIS_WIRE_OK);
	uint8_t out[512];
	struct aegis_wire_writer w;
	aegis_wire_begin(&w, out, sizeof(out), &q, pkt, AEGIS_DNS_AA, 0);
	uint8_t target[AEGIS_DNS_NAME_BUF];
	int tl = aegis_dns_name_from_str("api.example.com", target);
	size_t toff = 0;
	assert_true(
	        aegis_wire_rr_name(&w, 0, AEGIS_DNS_HEADER, AEGIS_TYPE_CNAME, 30, target, (size_t)tl, &toff));
	const uint8_t addr[4] = {240, 240, 0, 7};
	assert_true(aegis_wire_rr_addr(&w, 0, toff, AEGIS_TYPE_A, 30, addr, 4));
	/* The CNAME target "api.example.com" is a prefix of the question, not a suffix: written in full (17
	 * bytes); the A record's owner is a 2-byte pointer to it. */
	size_t question = len;
	assert_int_equal(w.len, question + 12 + 17 + 12 + 4);

	ldns_pkt *p = NULL;
	assert_int_equal(ldns_wire2pkt(&p, out, w.len), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_ancount(p), 2);
	assert_true(ldns_pkt_qr(p));
	assert_true(ldns_pkt_aa(p));
	assert_true(ldns_pkt_rd(p));
	ldns_rr *cname = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	char *s = ldns_rdf2str(ldns_rr_rdf(cname, 0));
	assert_string_equal(s, "api.example.com.");
	free(s);
	ldns_rr *a = ldns_rr_list_rr(ldns_pkt_answer(p), 1);
	s = ldns_rdf2str(ldns_rr_owner(a));
	assert_string_equal(s, "api.example.com.");
	free(s);
	/* The question keeps the client's case. */
	s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
	assert_string_equal(s, "api.Example.com.default.svc.cluster.local.");
	free(s);
	ldns_pkt_free(p);
}

static void test_writer_suffix_pointer(void **state)
{
	(void)state;
	uint8_t pkt[512];
	size_t len = make_query(pkt, sizeof(pkt), "reviews.default.default.svc.cluster.local.",
	                        LDNS_RR_TYPE_A, false, 0);
	struct aegis_dns_query q;
	assert_int_equal(aegis_wire_parse_query(pkt, len, &q), AEGIS_WIRE_OK);
	uint8_t out[512];
	struct aegis_wire_writer w;
	aegis_wire_begin(&w, out, sizeof(out), &q, pkt, 0, 0);
	uint8_t target[AEGIS_DNS_NAME_BUF];
	int tl = aegis_dns_name_from_str("reviews.default.svc.cluster.local", target);
	assert_true(
	        aegis_wire_rr_name(&w, 0, AEGIS_DNS_HEADER, AEGIS_TYPE_CNAME, 30, target, (size_t)tl, NULL));
	/* "reviews" (8 bytes) + pointer to "default.svc.cluster.local" inside the question (2 bytes). */
	assert_int_equal(w.len, len + 12 + 10);
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_wire2pkt(&p, out, w.len), LDNS_STATUS_OK);
	char *s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0));
	assert_string_equal(s, "reviews.default.svc.cluster.local.");
	free(s);
	ldns_pkt_free(p);
}

static void test_writer_full_rolls_back(void **state)
{
	(void)state;
	uint8_t pkt[512];
	size_t len = make_query(pkt, sizeof(pkt), "a.example.", LDNS_RR_TYPE_A, false, 0);
	struct aegis_dns_query q;
	assert_int_equal(aegis_wire_parse_query(pkt, len, &q), AEGIS_WIRE_OK);
	uint8_t out[512];
	struct aegis_wire_writer w;
	size_t cap = len + 16 + 10; /* one A record (16 bytes) and then not another */
	aegis_wire_begin(&w, out, cap, &q, pkt, 0, 0);
	const uint8_t addr[4] = {10, 0, 0, 1};
	assert_true(aegis_wire_rr_addr(&w, 0, AEGIS_DNS_HEADER, AEGIS_TYPE_A, 30, addr, 4));
	size_t after_one = w.len;
	assert_false(aegis_wire_rr_addr(&w, 0, AEGIS_DNS_HEADER, AEGIS_TYPE_A, 30, addr, 4));
	assert_true(w.full);
	assert_int_equal(w.len, after_one);
	assert_int_equal(aegis_wire_u16(out + 6), 1);
	aegis_wire_truncate(&w, q.question_end);
	assert_int_equal(w.len, len);
	assert_int_equal(aegis_wire_u16(out + 6), 0);
	assert_true(out[2] & 0x02);
}

/* Extended DNS Errors go into the OPT record's RDATA, after what is there; no OPT, no room or a malformed
 * message: unchanged. */
static void test_add_ede(void **state)
{
	(void)state;
	/* header (QD 1, AN 1, AR 1), a.test A IN, an A record by pointer, OPT with one 4-byte option */
	static const uint8_t base[] = {0x12, 0x34, 0x81, 0x80, 0,   1,    0, 1, 0,   0, 0,    1,  1, 'a',
	                               4,    't',  'e',  's',  't', 0,    0, 1, 0,   1, 0xC0, 12, 0, 1,
	                               0,    1,    0,    0,    0,   60,   0, 4, 192, 0, 2,    1,  0, 0,
	                               41,   0x10, 0,    0,    0,   0x80, 0, 0, 4,   0, 10,   0,  0};
	uint8_t m[128];
	memcpy(m, base, sizeof(base));
	size_t n = aegis_wire_add_ede(m, sizeof(base), sizeof(m), AEGIS_EDE_STALE_ANSWER);
	assert_int_equal(n, sizeof(base) + 6);
	size_t opt = sizeof(base) - 15; /* the OPT record starts at its root owner */
	assert_int_equal(m[opt + 1] << 8 | m[opt + 2], 41);
	assert_int_equal(m[opt + 9] << 8 | m[opt + 10], 4 + 6); /* RDLENGTH */
	assert_memory_equal(m + opt + 11, base + opt + 11, 4);  /* the old option */
	assert_memory_equal(m + opt + 15, "\0\17\0\2\0\3", 6);  /* EDE 3 */
	assert_memory_equal(m, base, opt + 9);                  /* all before */
	assert_int_equal(m[7], 1);                              /* counts kept */

	/* no room for the 6 bytes */
	memcpy(m, base, sizeof(base));
	assert_int_equal(aegis_wire_add_ede(m, sizeof(base), sizeof(base) + 5, 3), sizeof(base));
	assert_memory_equal(m, base, sizeof(base));
	/* no OPT: the client did not use EDNS */
	memcpy(m, base, sizeof(base));
	m[11] = 0;
	assert_int_equal(aegis_wire_add_ede(m, sizeof(base) - 15, sizeof(m), 3), sizeof(base) - 15);
	/* malformed: the additional count promises a record that is not there */
	memcpy(m, base, sizeof(base));
	m[11] = 2;
	assert_int_equal(aegis_wire_add_ede(m, sizeof(base) - 15, sizeof(m), 3), sizeof(base) - 15);
	assert_int_equal(aegis_wire_add_ede(m, 5, sizeof(m), 3), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_query),
	        cmocka_unit_test(test_parse_rejects),
	        cmocka_unit_test(test_parse_two_opts_formerr),
	        cmocka_unit_test(test_read_name_pointers),
	        cmocka_unit_test(test_writer_compresses),
	        cmocka_unit_test(test_writer_suffix_pointer),
	        cmocka_unit_test(test_writer_full_rolls_back),
	        cmocka_unit_test(test_add_ede),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
