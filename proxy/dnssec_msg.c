/* DNSSEC message rewriting: see dnssec_msg.h. */
#include "dnssec_msg.h"

#include <ldns/ldns.h>
#include <string.h>

#include "dns_wire.h"

#define HDR          12
#define EDNS_PAYLOAD 1232

/* Keeps the records of section that a client without DO may see. */
static void strip_section(ldns_pkt *p, ldns_pkt_section sec, bool keep_nsec)
{
	ldns_rr_list *l = ldns_pkt_get_section_clone(p, sec);
	ldns_rr_list *keep = ldns_rr_list_new();
	if (l == NULL || keep == NULL) {
		if (l)
			ldns_rr_list_deep_free(l);
		ldns_rr_list_free(keep);
		return;
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);
		ldns_rr_type t = ldns_rr_get_type(rr);
		if (t == LDNS_RR_TYPE_RRSIG ||
		    (!keep_nsec && (t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_NSEC3)))
			ldns_rr_free(rr);
		else
			ldns_rr_list_push_rr(keep, rr);
	}
	ldns_rr_list_free(l);
	ldns_rr_list *old = sec == LDNS_SECTION_ANSWER      ? ldns_pkt_answer(p)
	                    : sec == LDNS_SECTION_AUTHORITY ? ldns_pkt_authority(p)
	                                                    : ldns_pkt_additional(p);
	if (sec == LDNS_SECTION_ANSWER)
		ldns_pkt_set_answer(p, keep);
	else if (sec == LDNS_SECTION_AUTHORITY)
		ldns_pkt_set_authority(p, keep);
	else
		ldns_pkt_set_additional(p, keep);
	ldns_pkt_set_section_count(p, sec, (uint16_t)ldns_rr_list_rr_count(keep));
	if (old)
		ldns_rr_list_deep_free(old);
}

int aegis_dnssec_msg_strip(const uint8_t *msg, size_t len, bool client_edns, bool client_do, uint8_t **out)
{
	*out = NULL;
	ldns_pkt *p = NULL;
	if (ldns_wire2pkt(&p, msg, len) != LDNS_STATUS_OK)
		return AEGIS_EPARSE;
	if (!client_do) {
		strip_section(p, LDNS_SECTION_ANSWER, true);
		strip_section(p, LDNS_SECTION_AUTHORITY, false);
		strip_section(p, LDNS_SECTION_ADDITIONAL, false);
	}
	ldns_rdf *data = ldns_pkt_edns_data(p);
	ldns_pkt_set_edns_data(p, NULL);
	if (data)
		ldns_rdf_deep_free(data);
	ldns_pkt_set_edns_option_list(p, NULL);
	if (!client_edns) {
		ldns_pkt_set_edns_udp_size(p, 0);
		ldns_pkt_set_edns_extended_rcode(p, 0);
		ldns_pkt_set_edns_version(p, 0);
		ldns_pkt_set_edns_z(p, 0);
		p->_edns_present = 0; /* ldns 1.8 has no setter; the field is in its public struct */
	} else {
		if (ldns_pkt_edns_udp_size(p) == 0)
			ldns_pkt_set_edns_udp_size(p, EDNS_PAYLOAD);
		ldns_pkt_set_edns_z(p, 0);
	}
	ldns_pkt_set_edns_do(p, client_edns && client_do);
	ldns_pkt_set_ad(p, false);
	uint8_t *wire = NULL;
	size_t n = 0;
	ldns_status st = ldns_pkt2wire(&wire, p, &n);
	ldns_pkt_free(p);
	if (st != LDNS_STATUS_OK) {
		free(wire);
		return st == LDNS_STATUS_MEM_ERR ? AEGIS_ENOMEM : AEGIS_EPARSE;
	}
	if (n > AEGIS_DNS_TCP_MAX) {
		free(wire);
		return AEGIS_ESPACE;
	}
	*out = wire;
	return (int)n;
}

int aegis_dnssec_msg_add_do(const uint8_t *q, size_t len, uint8_t *out, size_t outcap)
{
	if (len < HDR + 5 || outcap < len + 11)
		return AEGIS_EPARSE;
	memcpy(out, q, len);
	unsigned qd = (unsigned)(q[4] << 8 | q[5]);
	unsigned total =
	        (unsigned)(q[6] << 8 | q[7]) + (unsigned)(q[8] << 8 | q[9]) + (unsigned)(q[10] << 8 | q[11]);
	size_t off = HDR;
	for (unsigned i = 0; i < qd; i++) {
		if (aegis_wire_skip_name(q, len, &off) != 0 || len - off < 4)
			return AEGIS_EPARSE;
		off += 4;
	}
	for (unsigned i = 0; i < total; i++) {
		size_t start = off;
		if (aegis_wire_skip_name(q, len, &off) != 0 || len - off < 10)
			return AEGIS_EPARSE;
		uint16_t type = (uint16_t)(q[off] << 8 | q[off + 1]);
		size_t rdlen = (size_t)(q[off + 8] << 8 | q[off + 9]);
		if (len - off - 10 < rdlen)
			return AEGIS_EPARSE;
		if (type == 41 && q[start] == 0) {
			out[off + 6] |= 0x80; /* the DO bit: top bit of the TTL's low half */
			return (int)len;
		}
		off += 10 + rdlen;
	}
	static const uint8_t opt[11] = {0, 0, 41, EDNS_PAYLOAD >> 8, EDNS_PAYLOAD & 0xFF, 0, 0, 0x80,
	                                0, 0, 0};
	memcpy(out + off, opt, sizeof(opt)); /* after the last record: trailing bytes are dropped */
	unsigned ar = (unsigned)(q[10] << 8 | q[11]) + 1;
	out[10] = (uint8_t)(ar >> 8);
	out[11] = (uint8_t)ar;
	return (int)(off + sizeof(opt));
}
