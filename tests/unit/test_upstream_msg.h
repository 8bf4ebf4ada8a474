/* A tiny DNS message writer for the cache and forwarder tests: enough to build queries and answers by
 * hand (names keep their case; compression pointers written explicitly). Not a test itself. */
#ifndef AEGIS_TEST_UPSTREAM_MSG_H
#define AEGIS_TEST_UPSTREAM_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct tmsg {
	uint8_t b[8192];
	size_t n;
};

static inline void tm_u8(struct tmsg *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)v;
}

static inline void tm_u16(struct tmsg *m, unsigned v)
{
	tm_u8(m, v >> 8);
	tm_u8(m, v & 0xFF);
}

static inline void tm_u32(struct tmsg *m, uint32_t v)
{
	tm_u16(m, v >> 16);
	tm_u16(m, v & 0xFFFF);
}

static inline void tm_put16(struct tmsg *m, size_t off, unsigned v)
{
	m->b[off] = (uint8_t)(v >> 8);
	m->b[off + 1] = (uint8_t)v;
}

static inline unsigned tm_get16(const uint8_t *p)
{
	return (unsigned)((p[0] << 8) | p[1]);
}

static inline uint32_t tm_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Presentation name, case kept; "" or "." is the root. */
static inline void tm_name(struct tmsg *m, const char *s)
{
	while (*s && strcmp(s, ".") != 0) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		tm_u8(m, (unsigned)l);
		memcpy(m->b + m->n, s, l);
		m->n += l;
		s += l;
		if (*s == '.')
			s++;
	}
	tm_u8(m, 0);
}

static inline void tm_ptr(struct tmsg *m, unsigned off)
{
	tm_u16(m, 0xC000 | off);
}

static inline void tm_hdr(struct tmsg *m, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns,
                          unsigned ar)
{
	m->n = 0;
	tm_u16(m, id);
	tm_u16(m, flags);
	tm_u16(m, qd);
	tm_u16(m, an);
	tm_u16(m, ns);
	tm_u16(m, ar);
}

static inline void tm_opt(struct tmsg *m, unsigned udp, bool do_bit)
{
	tm_u8(m, 0);
	tm_u16(m, 41);
	tm_u16(m, udp);
	tm_u32(m, do_bit ? 0x8000u : 0);
	tm_u16(m, 0);
}

#define TM_RD 0x0100u
#define TM_QR 0x8000u
#define TM_CD 0x0010u

/* A standard query: RD set, one question, an OPT when edns. */
static inline void tm_query(struct tmsg *m, unsigned id, const char *name, unsigned type, bool edns,
                            bool do_bit, bool cd)
{
	tm_hdr(m, id, TM_RD | (cd ? TM_CD : 0), 1, 0, 0, edns ? 1 : 0);
	tm_name(m, name);
	tm_u16(m, type);
	tm_u16(m, 1);
	if (edns)
		tm_opt(m, 1232, do_bit);
}

/* Record header with the owner as a pointer to the question name (offset 12); returns the RDLENGTH
 * offset for tm_rr_end. */
static inline size_t tm_rr_ptr(struct tmsg *m, unsigned type, uint32_t ttl)
{
	tm_ptr(m, 12);
	tm_u16(m, type);
	tm_u16(m, 1);
	tm_u32(m, ttl);
	size_t at = m->n;
	tm_u16(m, 0);
	return at;
}

static inline void tm_rr_end(struct tmsg *m, size_t rdlen_at)
{
	tm_put16(m, rdlen_at, (unsigned)(m->n - rdlen_at - 2));
}

/* An answer of n A records (TTLs ttls[i], address 10.0.0.i+1), optionally with an OPT. */
static inline void tm_answer_a(struct tmsg *m, unsigned id, const char *name, unsigned n,
                               const uint32_t *ttls, bool edns)
{
	tm_hdr(m, id, TM_QR | TM_RD | 0x0080, 1, n, 0, edns ? 1 : 0);
	tm_name(m, name);
	tm_u16(m, 1);
	tm_u16(m, 1);
	for (unsigned i = 0; i < n; i++) {
		size_t at = tm_rr_ptr(m, 1, ttls[i]);
		tm_u32(m, 0x0A000001u + i);
		tm_rr_end(m, at);
	}
	if (edns)
		tm_opt(m, 1232, false);
}

/* A negative answer (rcode 3 NXDOMAIN or 0 NODATA) with an SOA of the given TTL and MINIMUM. */
static inline void tm_answer_neg(struct tmsg *m, unsigned id, const char *name, unsigned type, unsigned rcode,
                                 uint32_t soa_ttl, uint32_t soa_min, bool with_soa)
{
	tm_hdr(m, id, TM_QR | TM_RD | 0x0080 | rcode, 1, 0, with_soa ? 1 : 0, 0);
	tm_name(m, name);
	tm_u16(m, type);
	tm_u16(m, 1);
	if (!with_soa)
		return;
	tm_name(m, "example.com");
	tm_u16(m, 6);
	tm_u16(m, 1);
	tm_u32(m, soa_ttl);
	size_t at = m->n;
	tm_u16(m, 0);
	tm_name(m, "ns1.example.com");
	tm_name(m, "hostmaster.example.com");
	tm_u32(m, 2026112501);
	tm_u32(m, 7200);
	tm_u32(m, 900);
	tm_u32(m, 1209600);
	tm_u32(m, soa_min);
	tm_rr_end(m, at);
}

/* Offset of the TTL of the i-th record after the question (records must be uncompressed or pointers). */
static inline size_t tm_ttl_off(const uint8_t *msg, size_t len, unsigned idx)
{
	size_t off = 12;
	while (msg[off] != 0)
		off += msg[off] + 1u;
	off += 5;
	for (unsigned i = 0;; i++) {
		while (off < len && msg[off] != 0 && (msg[off] & 0xC0) != 0xC0)
			off += msg[off] + 1u;
		off += (msg[off] & 0xC0) == 0xC0 ? 2 : 1;
		if (i == idx)
			return off + 4;
		off += 10 + tm_get16(msg + off + 8);
	}
}

#endif
