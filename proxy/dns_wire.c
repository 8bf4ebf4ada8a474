/* DNS wire format on the hot path: see dns_wire.h. */
#include "dns_wire.h"

#include <string.h>

#include "dns_name.h"

#define MAX_POINTER_HOPS 64

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int aegis_wire_read_name(const uint8_t *msg, size_t len, size_t off, uint8_t *out, size_t *next)
{
	size_t o = 0;
	size_t pos = off;
	size_t after = 0; /* offset after the name in place, known once the first pointer is seen */
	unsigned hops = 0;
	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t c = msg[pos];
		if (c == 0) {
			if (o + 1 > AEGIS_DNS_MAX_NAME)
				return -1;
			out[o++] = 0;
			if (after == 0)
				after = pos + 1;
			break;
		}
		if ((c & 0xC0) == 0xC0) {
			if (pos + 1 >= len || ++hops > MAX_POINTER_HOPS)
				return -1;
			size_t target = ((size_t)(c & 0x3F) << 8) | msg[pos + 1];
			if (after == 0)
				after = pos + 2;
			/* Only backwards pointers: a forward or self pointer can only be an attack or a loop.
			 */
			if (target >= pos)
				return -1;
			pos = target;
			continue;
		}
		if (c & 0xC0)
			return -1; /* 0x40/0x80: extended label types, obsolete */
		if (pos + 1 + c > len || o + 1 + c + 1 > AEGIS_DNS_MAX_NAME)
			return -1;
		out[o++] = c;
		for (uint8_t i = 0; i < c; i++)
			out[o++] = aegis_dns_lower(msg[pos + 1 + i]);
		pos += 1u + c;
	}
	if (next)
		*next = after;
	return (int)o;
}

int aegis_wire_skip_name(const uint8_t *msg, size_t len, size_t *off)
{
	size_t pos = *off;
	size_t total = 0;
	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t c = msg[pos];
		if (c == 0) {
			*off = pos + 1;
			return 0;
		}
		if ((c & 0xC0) == 0xC0) {
			if (pos + 2 > len)
				return -1;
			*off = pos + 2;
			return 0;
		}
		if (c & 0xC0)
			return -1;
		total += 1u + c;
		if (total > AEGIS_DNS_MAX_NAME)
			return -1;
		pos += 1u + c;
	}
}

int aegis_wire_skip_rr(const uint8_t *msg, size_t len, size_t *off)
{
	size_t pos = *off;
	if (aegis_wire_skip_name(msg, len, &pos) != 0 || pos + 10 > len)
		return -1;
	size_t rdlen = aegis_wire_u16(msg + pos + 8);
	pos += 10;
	if (pos + rdlen > len)
		return -1;
	*off = pos + rdlen;
	return 0;
}

size_t aegis_wire_add_ede(uint8_t *msg, size_t len, size_t cap, uint16_t info_code)
{
	if (len < AEGIS_DNS_HEADER || cap < len + 6)
		return len;
	size_t off = AEGIS_DNS_HEADER;
	unsigned qd = aegis_wire_u16(msg + 4);
	unsigned skip = (unsigned)aegis_wire_u16(msg + 6) + aegis_wire_u16(msg + 8);
	unsigned ar = aegis_wire_u16(msg + 10);
	for (unsigned i = 0; i < qd; i++) {
		if (aegis_wire_skip_name(msg, len, &off) != 0 || len - off < 4)
			return len;
		off += 4;
	}
	for (unsigned i = 0; i < skip; i++)
		if (aegis_wire_skip_rr(msg, len, &off) != 0)
			return len;
	for (unsigned i = 0; i < ar; i++) {
		size_t pos = off;
		if (aegis_wire_skip_name(msg, len, &pos) != 0 || aegis_wire_skip_rr(msg, len, &off) != 0)
			return len;
		if (aegis_wire_u16(msg + pos) != 41)
			continue;
		size_t rdlen = aegis_wire_u16(msg + pos + 8);
		if (rdlen + 6 > 0xFFFF)
			return len;
		memmove(msg + off + 6, msg + off, len - off);
		static const uint8_t ede_hdr[4] = {0, 15, 0, 2}; /* OPTION-CODE 15, OPTION-LENGTH 2 */
		memcpy(msg + off, ede_hdr, 4);
		msg[off + 4] = (uint8_t)(info_code >> 8);
		msg[off + 5] = (uint8_t)info_code;
		rdlen += 6;
		msg[pos + 8] = (uint8_t)(rdlen >> 8);
		msg[pos + 9] = (uint8_t)rdlen;
		return len + 6;
	}
	return len;
}

/* The question name must be uncompressed (it is the first name in the message: nothing to point to). */
static int parse_qname(const uint8_t *pkt, size_t len, struct aegis_dns_query *q)
{
	size_t pos = AEGIS_DNS_HEADER;
	size_t o = 0;
	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t c = pkt[pos];
		if (c == 0) {
			q->lname[o++] = 0;
			pos++;
			break;
		}
		if (c > 63 || pos + 1 + c > len || o + 1 + c + 1 > AEGIS_DNS_MAX_NAME)
			return -1;
		q->lname[o++] = c;
		for (uint8_t i = 0; i < c; i++)
			q->lname[o++] = aegis_dns_lower(pkt[pos + 1 + i]);
		pos += 1u + c;
	}
	q->qname = pkt + AEGIS_DNS_HEADER;
	q->qname_len = o;
	if (pos + 4 > len)
		return -1;
	q->qtype = aegis_wire_u16(pkt + pos);
	q->qclass = aegis_wire_u16(pkt + pos + 2);
	q->question_end = pos + 4;
	return 0;
}

/* Finds the OPT record among the additional records. More than one OPT, or one not owned by the root,
 * is a FORMERR (RFC 6891 6.1.1). */
static int parse_additional(const uint8_t *pkt, size_t len, struct aegis_dns_query *q)
{
	size_t pos = q->question_end;
	unsigned skip = (unsigned)q->ancount + q->nscount;
	for (unsigned i = 0; i < skip; i++) {
		if (aegis_wire_skip_rr(pkt, len, &pos) != 0)
			return -1;
	}
	for (unsigned i = 0; i < q->arcount; i++) {
		size_t start = pos;
		if (aegis_wire_skip_rr(pkt, len, &pos) != 0)
			return -1;
		size_t name_end = start;
		if (aegis_wire_skip_name(pkt, len, &name_end) != 0)
			return -1;
		if (aegis_wire_u16(pkt + name_end) != AEGIS_TYPE_OPT)
			continue;
		if (q->has_opt || name_end != start + 1 || pkt[start] != 0)
			return -1;
		q->has_opt = true;
		q->udp_size = aegis_wire_u16(pkt + name_end + 2);
		q->edns_version = pkt[name_end + 5];
		q->edns_flags = aegis_wire_u16(pkt + name_end + 6);
	}
	return 0;
}

enum aegis_wire_status aegis_wire_parse_query(const uint8_t *pkt, size_t len, struct aegis_dns_query *q)
{
	q->qname = NULL;
	q->qname_len = 0;
	q->question_ok = false;
	q->has_opt = false;
	q->udp_size = 0;
	q->edns_version = 0;
	q->edns_flags = 0;
	q->qtype = 0;
	q->qclass = 0;
	q->question_end = AEGIS_DNS_HEADER;
	if (len < AEGIS_DNS_HEADER) {
		q->id = 0;
		q->flags = 0;
		return AEGIS_WIRE_DROP;
	}
	q->id = aegis_wire_u16(pkt);
	q->flags = aegis_wire_u16(pkt + 2);
	q->qdcount = aegis_wire_u16(pkt + 4);
	q->ancount = aegis_wire_u16(pkt + 6);
	q->nscount = aegis_wire_u16(pkt + 8);
	q->arcount = aegis_wire_u16(pkt + 10);
	if (q->flags & AEGIS_DNS_QR)
		return AEGIS_WIRE_DROP;
	if (AEGIS_DNS_OPCODE(q->flags) != 0)
		return AEGIS_WIRE_NOTQUERY;
	if (q->qdcount != 1)
		return AEGIS_WIRE_FORMERR;
	if (parse_qname(pkt, len, q) != 0)
		return AEGIS_WIRE_FORMERR;
	q->question_ok = true;
	if (parse_additional(pkt, len, q) != 0)
		return AEGIS_WIRE_FORMERR;
	return AEGIS_WIRE_OK;
}

void aegis_wire_begin(struct aegis_wire_writer *w, uint8_t *buf, size_t cap, const struct aegis_dns_query *q,
                      const uint8_t *pkt, uint16_t flags, uint8_t rcode)
{
	w->buf = buf;
	w->cap = cap;
	w->full = false;
	w->n_comp = 0;
	uint16_t f = (uint16_t)(AEGIS_DNS_QR | (q->flags & (0x7800u | AEGIS_DNS_RD | AEGIS_DNS_CD)) | flags |
	                        (rcode & 0xFu));
	put16(buf, q->id);
	put16(buf + 2, f);
	memset(buf + 4, 0, 8);
	w->len = AEGIS_DNS_HEADER;
	if (q->question_ok && q->question_end <= cap) {
		memcpy(buf + AEGIS_DNS_HEADER, pkt + AEGIS_DNS_HEADER, q->question_end - AEGIS_DNS_HEADER);
		put16(buf + 4, 1);
		w->len = q->question_end;
		aegis_wire_remember(w, q->lname, q->qname_len, AEGIS_DNS_HEADER);
	}
}

/* Remembers the suffixes of lname that start before byte `stop` (the labels written literally at off). */
static void remember_upto(struct aegis_wire_writer *w, const uint8_t *lname, size_t len, size_t off,
                          size_t stop)
{
	size_t i = 0;
	/* Offsets past 0x3FFF cannot be pointed to. */
	while (i < stop && i < len && lname[i] != 0 && off + i <= 0x3FFF && w->n_comp < AEGIS_WIRE_COMP_MAX) {
		struct aegis_wire_comp *c = &w->comp[w->n_comp++];
		c->lsuffix = lname + i;
		c->len = (uint16_t)(len - i);
		c->off = (uint16_t)(off + i);
		i += (size_t)lname[i] + 1;
	}
}

void aegis_wire_remember(struct aegis_wire_writer *w, const uint8_t *lname, size_t len, size_t off)
{
	remember_upto(w, lname, len, off, len);
}

static long find_suffix(const struct aegis_wire_writer *w, const uint8_t *s, size_t len)
{
	for (unsigned k = 0; k < w->n_comp; k++) {
		const struct aegis_wire_comp *c = &w->comp[k];
		if (c->len == len && memcmp(c->lsuffix, s, len) == 0)
			return c->off;
	}
	return -1;
}

size_t aegis_wire_put_name(struct aegis_wire_writer *w, const uint8_t *lname, size_t len)
{
	size_t start = w->len;
	size_t i = 0;
	while (i < len && lname[i] != 0) {
		long ptr = find_suffix(w, lname + i, len - i);
		if (ptr >= 0) {
			if (w->len + 2 > w->cap)
				goto full;
			put16(w->buf + w->len, (uint16_t)(0xC000u | (uint16_t)ptr));
			w->len += 2;
			remember_upto(w, lname, len, start, i); /* the labels written literally */
			return start;
		}
		size_t lab = (size_t)lname[i] + 1;
		if (w->len + lab > w->cap)
			goto full;
		memcpy(w->buf + w->len, lname + i, lab);
		w->len += lab;
		i += lab;
	}
	if (w->len + 1 > w->cap)
		goto full;
	w->buf[w->len++] = 0;
	/* Every suffix of a name written in full can be pointed to; remember() stops at the root. */
	aegis_wire_remember(w, lname, len, start);
	return start;
full:
	w->len = start;
	w->full = true;
	return 0;
}

static void bump_count(struct aegis_wire_writer *w, int section)
{
	uint8_t *p = w->buf + 6 + 2 * section;
	put16(p, (uint16_t)(aegis_wire_u16(p) + 1));
}

/* Writes owner pointer, type, class IN, ttl and leaves room for rdlength; returns false when full. */
static bool rr_head(struct aegis_wire_writer *w, size_t owner_off, uint16_t type, uint32_t ttl)
{
	if (w->len + 12 > w->cap) {
		w->full = true;
		return false;
	}
	uint8_t *p = w->buf + w->len;
	put16(p, (uint16_t)(0xC000u | owner_off));
	put16(p + 2, type);
	put16(p + 4, AEGIS_CLASS_IN);
	put32(p + 6, ttl);
	w->len += 12;
	return true;
}

bool aegis_wire_rr_addr(struct aegis_wire_writer *w, int section, size_t owner_off, uint16_t type,
                        uint32_t ttl, const uint8_t *addr, size_t alen)
{
	size_t start = w->len;
	if (!rr_head(w, owner_off, type, ttl))
		return false;
	if (w->len + alen > w->cap) {
		w->len = start;
		w->full = true;
		return false;
	}
	put16(w->buf + w->len - 2, (uint16_t)alen);
	memcpy(w->buf + w->len, addr, alen);
	w->len += alen;
	bump_count(w, section);
	return true;
}

bool aegis_wire_rr_addr_owner(struct aegis_wire_writer *w, int section, const uint8_t *owner, size_t olen,
                              uint16_t type, uint32_t ttl, const uint8_t *addr, size_t alen)
{
	size_t start = w->len;
	unsigned comp_before = w->n_comp;
	(void)aegis_wire_put_name(w, owner, olen);
	if (w->full || w->len + 10 + alen > w->cap) {
		w->len = start;
		w->n_comp = comp_before;
		w->full = true;
		return false;
	}
	uint8_t *p = w->buf + w->len;
	put16(p, type);
	put16(p + 2, AEGIS_CLASS_IN);
	put32(p + 4, ttl);
	put16(p + 8, (uint16_t)alen);
	memcpy(p + 10, addr, alen);
	w->len += 10 + alen;
	bump_count(w, section);
	return true;
}

bool aegis_wire_rr_name(struct aegis_wire_writer *w, int section, size_t owner_off, uint16_t type,
                        uint32_t ttl, const uint8_t *lname, size_t len, size_t *rdata_name_off)
{
	size_t start = w->len;
	unsigned comp_before = w->n_comp;
	if (!rr_head(w, owner_off, type, ttl))
		return false;
	size_t rd = w->len;
	size_t off = aegis_wire_put_name(w, lname, len);
	if (w->full) {
		w->len = start;
		w->n_comp = comp_before;
		return false;
	}
	put16(w->buf + rd - 2, (uint16_t)(w->len - rd));
	if (rdata_name_off)
		*rdata_name_off = off;
	bump_count(w, section);
	return true;
}

bool aegis_wire_rr_srv(struct aegis_wire_writer *w, int section, size_t owner_off, uint32_t ttl,
                       uint16_t prio, uint16_t weight, uint16_t port, const uint8_t *target, size_t tlen)
{
	size_t start = w->len;
	unsigned comp_before = w->n_comp;
	if (!rr_head(w, owner_off, AEGIS_TYPE_SRV, ttl))
		return false;
	size_t rd = w->len;
	if (w->len + 6 > w->cap)
		goto full;
	put16(w->buf + w->len, prio);
	put16(w->buf + w->len + 2, weight);
	put16(w->buf + w->len + 4, port);
	w->len += 6;
	/* RFC 2782 forbids compressing the SRV target, but RFC 3597 lets readers accept it; we do not
	 * compress it, and we do not offer it as a compression target either. */
	if (w->len + tlen > w->cap)
		goto full;
	memcpy(w->buf + w->len, target, tlen);
	w->len += tlen;
	put16(w->buf + rd - 2, (uint16_t)(w->len - rd));
	bump_count(w, section);
	return true;
full:
	w->len = start;
	w->n_comp = comp_before;
	w->full = true;
	return false;
}

bool aegis_wire_opt(struct aegis_wire_writer *w, uint16_t udp_size, uint8_t ext_rcode, uint16_t flags)
{
	if (w->len + 11 > w->cap) {
		w->full = true;
		return false;
	}
	uint8_t *p = w->buf + w->len;
	p[0] = 0;
	put16(p + 1, AEGIS_TYPE_OPT);
	put16(p + 3, udp_size);
	p[5] = ext_rcode;
	p[6] = 0; /* version 0 */
	put16(p + 7, flags);
	put16(p + 9, 0);
	w->len += 11;
	bump_count(w, 2);
	return true;
}

void aegis_wire_truncate(struct aegis_wire_writer *w, size_t question_end)
{
	w->len = question_end;
	w->buf[2] |= (uint8_t)(AEGIS_DNS_TC >> 8);
	memset(w->buf + 6, 0, 6);
	w->full = false;
}
