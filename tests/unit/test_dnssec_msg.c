/* Tests proxy/dnssec_msg.c: the client rewrite of an upstream answer (RRSIG, NSEC and the OPT record
 * removed for clients that did not ask for them, DO mirrored, AD cleared, the output parses) and the DO
 * rewrite of a query (an OPT appended, or the DO bit set in the one there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <ldns/ldns.h>

#include "dnssec_msg.h"
#include "test_ldns.h"

/* A signed-looking answer: A + RRSIG, an NSEC + RRSIG in the authority section, EDNS with DO and AD set
 * (the signature bytes are not checked here). */
static size_t answer(uint8_t *out, size_t cap)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rd(p, true);
	ldns_pkt_set_ad(p, true);
	ldns_rr *q = ldns_rr_new();
	ldns_rr_set_owner(q, ldns_dname_new_frm_str("www.example.test."));
	ldns_rr_set_type(q, LDNS_RR_TYPE_A);
	ldns_rr_set_class(q, LDNS_RR_CLASS_IN);
	ldns_rr_set_question(q, true);
	ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr("www.example.test. 300 IN A 192.0.2.1"));
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER,
	                 rr("www.example.test. 300 IN RRSIG A 13 3 300 20300101000000 20200101000000 4361 "
	                    "example.test. dGVzdHNpZ25hdHVyZQ=="));
	ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY,
	                 rr("www.example.test. 300 IN NSEC x.example.test. A RRSIG NSEC"));
	ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY,
	                 rr("www.example.test. 300 IN RRSIG NSEC 13 3 300 20300101000000 20200101000000 4361 "
	                    "example.test. dGVzdHNpZ25hdHVyZQ=="));
	ldns_pkt_set_edns_udp_size(p, 1232);
	ldns_pkt_set_edns_do(p, true);
	return pkt_to_wire(p, out, cap);
}

static ldns_pkt *parse(const uint8_t *m, int n)
{
	assert_true(n > 0);
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_wire2pkt(&p, m, (size_t)n), LDNS_STATUS_OK);
	return p;
}

/* aegis_dnssec_msg_strip into out (the returned buffer copied and freed). */
static int strip(const uint8_t *m, size_t n, bool edns, bool do_bit, uint8_t *out, size_t cap)
{
	uint8_t *w = (uint8_t *)"not set";
	int r = aegis_dnssec_msg_strip(m, n, edns, do_bit, &w);
	if (r < 0) {
		assert_null(w);
		return r;
	}
	assert_true((size_t)r <= cap);
	memcpy(out, w, (size_t)r);
	free(w);
	return r;
}

static void test_strip(void **state)
{
	(void)state;
	uint8_t m[4096], out[4096];
	size_t n = answer(m, sizeof(m));

	/* no EDNS: no RRSIG, no NSEC, no OPT, no AD */
	ldns_pkt *p = parse(out, strip(m, n, false, false, out, sizeof(out)));
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), LDNS_RR_TYPE_A);
	assert_int_equal(ldns_pkt_nscount(p), 0);
	assert_false(ldns_pkt_edns(p));
	assert_false(ldns_pkt_ad(p));
	ldns_pkt_free(p);

	/* EDNS without DO: the OPT stays (DO clear), the DNSSEC records go */
	p = parse(out, strip(m, n, true, false, out, sizeof(out)));
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_true(ldns_pkt_edns(p));
	assert_false(ldns_pkt_edns_do(p));
	ldns_pkt_free(p);

	/* DO: everything stays, DO set, AD still cleared (the forwarder sets it per client) */
	p = parse(out, strip(m, n, true, true, out, sizeof(out)));
	assert_int_equal(ldns_pkt_ancount(p), 2);
	assert_int_equal(ldns_pkt_nscount(p), 2);
	assert_true(ldns_pkt_edns_do(p));
	assert_false(ldns_pkt_ad(p));
	ldns_pkt_free(p);

	assert_int_equal(strip(m, 7, true, true, out, sizeof(out)), AEGIS_EPARSE);
}

static void test_add_do(void **state)
{
	(void)state;
	/* dig www A without EDNS */
	static const uint8_t q[] = {0x12, 0x34, 0x01, 0x00, 0,   1, 0, 0, 0, 0, 0,
	                            0,    3,    'w',  'w',  'w', 0, 0, 1, 0, 1};
	uint8_t qo[64], qo2[64];
	int k = aegis_dnssec_msg_add_do(q, sizeof(q), qo, sizeof(qo));
	assert_int_equal(k, (int)sizeof(q) + 11);
	assert_int_equal(qo[11], 1);               /* ARCOUNT */
	assert_int_equal(qo[sizeof(q) + 2], 41);   /* OPT */
	assert_int_equal(qo[sizeof(q) + 7], 0x80); /* DO */
	/* with an OPT already: same length, DO set */
	qo[sizeof(q) + 7] = 0;
	int k2 = aegis_dnssec_msg_add_do(qo, (size_t)k, qo2, sizeof(qo2));
	assert_int_equal(k2, k);
	assert_int_equal(qo2[sizeof(q) + 7], 0x80);
	ldns_pkt *p = parse(qo2, k2);
	assert_true(ldns_pkt_edns_do(p));
	ldns_pkt_free(p);
	/* too short, or no room */
	assert_int_equal(aegis_dnssec_msg_add_do(q, 10, qo, sizeof(qo)), AEGIS_EPARSE);
	assert_int_equal(aegis_dnssec_msg_add_do(q, sizeof(q), qo, sizeof(q)), AEGIS_EPARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_strip),
	        cmocka_unit_test(test_add_do),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
