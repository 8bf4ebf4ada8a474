/* DNS wire format for the hot path: the question parsed in place and answers written straight into the
 * send buffer with name compression by known offsets. No allocation, no ldns (measured here: ldns costs
 * ~3.6 us and 75 mallocs to build one answer, this writer ~0.07 us and none; STACK_NOTES.md). */
#ifndef AEGIS_DNS_WIRE_H
#define AEGIS_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/limits.h"

#define AEGIS_DNS_HEADER 12

#define AEGIS_DNS_QR            0x8000u
#define AEGIS_DNS_AA            0x0400u
#define AEGIS_DNS_TC            0x0200u
#define AEGIS_DNS_RD            0x0100u
#define AEGIS_DNS_RA            0x0080u
#define AEGIS_DNS_AD            0x0020u
#define AEGIS_DNS_CD            0x0010u
#define AEGIS_DNS_OPCODE(flags) (((flags) >> 11) & 0xFu)
#define AEGIS_DNS_RCODE(flags)  ((flags)&0xFu)
#define AEGIS_DNS_EDNS_DO       0x8000u

enum aegis_dns_rcode {
	AEGIS_RCODE_NOERROR = 0,
	AEGIS_RCODE_FORMERR = 1,
	AEGIS_RCODE_SERVFAIL = 2,
	AEGIS_RCODE_NXDOMAIN = 3,
	AEGIS_RCODE_NOTIMP = 4,
	AEGIS_RCODE_REFUSED = 5,
	AEGIS_RCODE_BADVERS = 16 /* extended: needs OPT */
};

enum aegis_dns_type {
	AEGIS_TYPE_A = 1,
	AEGIS_TYPE_NS = 2,
	AEGIS_TYPE_CNAME = 5,
	AEGIS_TYPE_SOA = 6,
	AEGIS_TYPE_PTR = 12,
	AEGIS_TYPE_MX = 15,
	AEGIS_TYPE_TXT = 16,
	AEGIS_TYPE_AAAA = 28,
	AEGIS_TYPE_SRV = 33,
	AEGIS_TYPE_OPT = 41,
	AEGIS_TYPE_ANY = 255
};

#define AEGIS_CLASS_IN 1

enum aegis_wire_status {
	AEGIS_WIRE_OK = 0,  /* one question parsed (and the OPT record, if any) */
	AEGIS_WIRE_DROP,    /* not worth an answer: shorter than a header, or a response (QR=1) */
	AEGIS_WIRE_FORMERR, /* header readable but the rest is malformed, or QDCOUNT != 1 */
	AEGIS_WIRE_NOTQUERY /* an opcode other than QUERY: question not interpreted */
};

/* A query parsed in place. Pointers point into the packet given to aegis_wire_parse_query. */
struct aegis_dns_query {
	uint16_t id;
	uint16_t flags;
	uint16_t qdcount, ancount, nscount, arcount;
	const uint8_t *qname;              /* as sent (case preserved), at packet offset 12 */
	size_t qname_len;                  /* wire length including the root byte */
	uint8_t lname[AEGIS_DNS_NAME_BUF]; /* lower-case copy of qname */
	uint16_t qtype;
	uint16_t qclass;
	size_t question_end; /* packet offset just past the question */
	bool question_ok;    /* the question itself parsed (even if something later did not) */
	bool has_opt;
	uint16_t udp_size; /* OPT CLASS as sent */
	uint8_t edns_version;
	uint16_t edns_flags; /* DO etc. */
};

/* Parses pkt. Always fills id/flags when len >= 12. Returns an aegis_wire_status. */
enum aegis_wire_status aegis_wire_parse_query(const uint8_t *pkt, size_t len, struct aegis_dns_query *q);

/* Reads an uncompressed-or-compressed name starting at off within msg into a lower-case uncompressed wire
 * name (out, AEGIS_DNS_NAME_BUF bytes). Follows at most 64 pointers, only backwards. Returns the wire
 * length written, and *next = offset after the name in place; or -1 when malformed. */
int aegis_wire_read_name(const uint8_t *msg, size_t len, size_t off, uint8_t *out, size_t *next);

/* Skips a (possibly compressed) name at *off without decoding it. Returns 0 or -1 when malformed. */
int aegis_wire_skip_name(const uint8_t *msg, size_t len, size_t *off);

/* Skips one resource record at *off (name, type, class, ttl, rdata). Returns 0 or -1 when malformed. */
int aegis_wire_skip_rr(const uint8_t *msg, size_t len, size_t *off);

/* Extended DNS Errors (RFC 8914) the proxy attaches to answers it makes or changes (docs/dns.md). */
enum {
	AEGIS_EDE_STALE_ANSWER = 3,           /* served stale (RFC 8767) */
	AEGIS_EDE_DNSSEC_BOGUS = 6,           /* validation failed: SERVFAIL */
	AEGIS_EDE_BLOCKED = 15,               /* the blocklist */
	AEGIS_EDE_PROHIBITED = 18,            /* the source ACL */
	AEGIS_EDE_NO_REACHABLE_AUTHORITY = 22 /* every upstream failed, timed out or refused */
};

/* Adds an Extended DNS Error option with info_code to the OPT record of msg (len bytes, cap bytes of
 * room). Returns the new length, or len unchanged when msg has no OPT record (the client did not use
 * EDNS, so it gets no EDE), is malformed, or has no room for the 6 bytes. */
size_t aegis_wire_add_ede(uint8_t *msg, size_t len, size_t cap, uint16_t info_code);

static inline uint16_t aegis_wire_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t aegis_wire_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* An answer being written. Records are written whole or not at all: when one does not fit, `full` is set
 * and the writer rolls back to the end of the last complete record. */
#define AEGIS_WIRE_COMP_MAX 48

struct aegis_wire_comp {
	const uint8_t *lsuffix; /* lower-case uncompressed wire suffix (ends with the root) */
	uint16_t len;
	uint16_t off; /* packet offset where that suffix starts */
};

struct aegis_wire_writer {
	uint8_t *buf;
	size_t cap; /* the most bytes the answer may have */
	size_t len;
	bool full;
	unsigned n_comp;
	struct aegis_wire_comp comp[AEGIS_WIRE_COMP_MAX];
};

/* Starts an answer to q: header (ID, opcode, RD and CD copied, QR set, flags ORed in) and the question
 * exactly as the client sent it (so the answer keeps the asker's case). cap must be >= 12 + question. */
void aegis_wire_begin(struct aegis_wire_writer *w, uint8_t *buf, size_t cap, const struct aegis_dns_query *q,
                      const uint8_t *pkt, uint16_t flags, uint8_t rcode);

/* Remembers that the lower-case name lname (full wire name) appears at packet offset off, so later names
 * can point to it (and to its suffixes). */
void aegis_wire_remember(struct aegis_wire_writer *w, const uint8_t *lname, size_t len, size_t off);

/* Writes a name with compression; returns the packet offset where it starts (or 0 when full). The name
 * must outlive the writer (compression entries point into it). */
size_t aegis_wire_put_name(struct aegis_wire_writer *w, const uint8_t *lname, size_t len);

/* Records. The owner is given as a packet offset of an already written name (compression pointer).
 * Each returns true when written, false when it did not fit (w->full set). section: 0 answer,
 * 1 authority, 2 additional (counts are updated in the header). */
bool aegis_wire_rr_addr(struct aegis_wire_writer *w, int section, size_t owner_off, uint16_t type,
                        uint32_t ttl, const uint8_t *addr, size_t alen);
/* Same as aegis_wire_rr_addr, with the owner given as a lower-case name (written compressed inside the
 * record, and remembered for later records). */
bool aegis_wire_rr_addr_owner(struct aegis_wire_writer *w, int section, const uint8_t *owner, size_t olen,
                              uint16_t type, uint32_t ttl, const uint8_t *addr, size_t alen);
bool aegis_wire_rr_name(struct aegis_wire_writer *w, int section, size_t owner_off, uint16_t type,
                        uint32_t ttl, const uint8_t *lname, size_t len, size_t *rdata_name_off);
bool aegis_wire_rr_srv(struct aegis_wire_writer *w, int section, size_t owner_off, uint32_t ttl,
                       uint16_t prio, uint16_t weight, uint16_t port, const uint8_t *target, size_t tlen);
/* The OPT pseudo-record: our UDP size, extended rcode (upper 8 bits of a 12-bit rcode), DO echoed. */
bool aegis_wire_opt(struct aegis_wire_writer *w, uint16_t udp_size, uint8_t ext_rcode, uint16_t flags);

/* Sets TC and drops every record (answer, authority, additional), keeping the header and question. */
void aegis_wire_truncate(struct aegis_wire_writer *w, size_t question_end);

#endif
