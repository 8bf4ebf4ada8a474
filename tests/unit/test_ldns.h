/* ldns helpers for the unit tests that build DNS messages with ldns (test_dnssec.c, test_dnssec_msg.c):
 * include after <cmocka.h> and <ldns/ldns.h>. */
#ifndef AEGIS_TEST_LDNS_H
#define AEGIS_TEST_LDNS_H

#include <stdlib.h>
#include <string.h>

/* One record from its presentation form (default TTL 300); the test fails if it does not parse. */
static inline ldns_rr *rr(const char *s)
{
	ldns_rr *r = NULL;
	assert_int_equal(ldns_rr_new_frm_str(&r, s, 300, NULL, NULL), LDNS_STATUS_OK);
	return r;
}

/* Writes p in wire format into out (cap bytes) and frees p; returns the length. */
static inline size_t pkt_to_wire(ldns_pkt *p, uint8_t *out, size_t cap)
{
	uint8_t *w = NULL;
	size_t n = 0;
	assert_int_equal(ldns_pkt2wire(&w, p, &n), LDNS_STATUS_OK);
	assert_true(n <= cap);
	memcpy(out, w, n);
	free(w);
	ldns_pkt_free(p);
	return n;
}

#endif
