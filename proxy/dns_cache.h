/* The answer cache in front of upstream: positive and negative answers (RFC 2308), TTLs counted down in
 * the answers it serves, serve-stale (RFC 8767) and a prefetch hint. Sans-I/O: time is passed in as
 * milliseconds on any monotonic clock, nothing here reads a clock or touches a socket.
 *
 * What is stored: the upstream's answer bytes as received (compression pointers kept), after a
 * bounds-checked walk that validates every record, caps every TTL to [min_ttl, max_ttl] in place and
 * records the offset of every TTL field. A hit copies the stored message into the caller's buffer,
 * writes the client's ID, RD bit and question-name bytes (the client's case, 0x20) over it, and rewrites
 * each TTL as (stored TTL - age), never below 0. The hit path allocates nothing. Design and memory bound:
 * docs/forwarding.md.
 *
 * Not thread-safe: one cache per loop. */
#ifndef AEGIS_DNS_CACHE_H
#define AEGIS_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/limits.h"

/* Key flags. DO and CD change what an upstream answers (DNSSEC records, unchecked data), an answer to a
 * query with EDNS carries an OPT record that must not reach a client that sent none, and a query without
 * RD (cache snooping, dig +norec) may get a referral instead of an answer, so all four are part of the
 * key. NOCACHE marks queries that must neither be cached nor share an upstream query
 * (opcode other than QUERY, ANY/AXFR/IXFR, a query with records in the answer or authority section). */
#define AEGIS_CACHE_KEY_DO      0x01u
#define AEGIS_CACHE_KEY_CD      0x02u
#define AEGIS_CACHE_KEY_EDNS    0x04u
#define AEGIS_CACHE_KEY_NORD    0x08u
#define AEGIS_CACHE_KEY_NOCACHE 0x80u

/* What a query is cached under: the lower-case question name, type, class and the flags above. */
struct aegis_dns_question_key {
	uint8_t lname[AEGIS_DNS_NAME_BUF]; /* lower-case wire name, root byte included */
	uint8_t len;                       /* bytes used in lname (1..255) */
	uint8_t flags;                     /* AEGIS_CACHE_KEY_* */
	uint16_t qtype;
	uint16_t qclass;
};

/* Facts about a query that are not part of the key, filled by aegis_cache_key_from_query(). */
struct aegis_dns_query_info {
	uint16_t id;
	uint16_t edns_udp_size; /* the client's EDNS payload size; 0 when the query has no OPT record */
	uint8_t opcode;
	size_t question_end; /* offset just past the question (12 + name + 4) */
};

/* Parses a client query (header, one uncompressed question, the other sections walked for an OPT
 * record) into *key and, if info is not NULL, *info. Returns 0, or AEGIS_EPARSE for anything that is not
 * a well-formed query with exactly one question. Allocates nothing. */
int aegis_cache_key_from_query(const uint8_t *query, size_t len, struct aegis_dns_question_key *key,
                               struct aegis_dns_query_info *info) AEGIS_WUR;

/* Capacities and TTL policy. Zero fields take the defaults of aegis_cache_opts_default(). */
struct aegis_cache_opts {
	size_t pos_max_entries; /* default 10000 */
	size_t pos_max_bytes;   /* default 8 MiB: entry headers + messages, see docs/forwarding.md */
	size_t neg_max_entries; /* default 5000 */
	size_t neg_max_bytes;   /* default 2 MiB */
	uint32_t max_ttl;       /* seconds, default 3600: every record TTL is capped to this */
	uint32_t min_ttl;       /* seconds, default 0: TTLs below are raised (0 = keep; a TTL 0 answer is not
	                           cached) */
	uint32_t neg_max_ttl;  /* seconds, default 300 (RFC 2308 suggests 1-3 hours; short is safer in a mesh)
	                        */
	uint32_t neg_min_ttl;  /* seconds, default 0 */
	uint32_t stale_max;    /* seconds an expired entry may still be served stale; 0 (default) = off */
	uint32_t stale_ttl;    /* TTL written into stale answers, default 30 (RFC 8767) */
	uint32_t prefetch_pct; /* hint when less than this % of the TTL remains, default 10; 100 = off */
	bool no_prefetch;      /* never report AEGIS_CACHE_F_PREFETCH */
};

/* Fills *o with the defaults listed above. */
void aegis_cache_opts_default(struct aegis_cache_opts *o);

struct aegis_cache;

/* Creates a cache; opts is copied (NULL = defaults). Returns 0 and *out (free with aegis_cache_free), or
 * AEGIS_EINVAL (min above max TTL, stale_ttl 0 with serve-stale on) / AEGIS_ENOMEM. The hash table is
 * sized once here for the sum of both entry capacities; nothing grows afterwards. */
int aegis_cache_new(const struct aegis_cache_opts *opts, struct aegis_cache **out) AEGIS_WUR;
void aegis_cache_free(struct aegis_cache *c);

/* Lookup result flags. */
#define AEGIS_CACHE_F_NEGATIVE 0x01u /* NXDOMAIN or NODATA */
#define AEGIS_CACHE_F_STALE    0x02u /* served expired (allow_stale), TTLs set to stale_ttl */
#define AEGIS_CACHE_F_PREFETCH                                                                               \
	0x04u /* less than prefetch_pct of the TTL left: refresh it now (reported once) */
#define AEGIS_CACHE_F_TRUNCATED 0x08u /* did not fit outcap: header + question (+ OPT) with TC=1 */
/* dnssec: stored as DNSSEC-validated secure (aegis_cache_store_secure) */
#define AEGIS_CACHE_F_SECURE 0x10u

/* Answers query (the client's bytes; key from aegis_cache_key_from_query on the same bytes) from the
 * cache. On a hit writes the answer into out[0..outcap) with the client's ID, RD and question case,
 * TTLs counted down to now_ms, sets *outlen and *flags and returns 0. allow_stale lets an expired entry
 * be served (within stale_max, with stale_ttl) — the caller passes true only when upstream has failed.
 * Returns AEGIS_ENOTFOUND on a miss (expired entries past their stale window are dropped here),
 * AEGIS_ESPACE when outcap cannot hold even the truncated answer. Keys with NOCACHE always miss.
 * Allocates nothing; moves the entry to the front of its LRU list. */
int aegis_cache_lookup(struct aegis_cache *c, const uint8_t *query, size_t qlen,
                       const struct aegis_dns_question_key *key, uint64_t now_ms, bool allow_stale,
                       uint8_t *out, size_t outcap, size_t *outlen, unsigned *flags) AEGIS_WUR;

/* Stores an upstream answer to the question in key. The bytes are copied (the caller keeps answer).
 * Returns 0 when stored (replacing an older entry for the key), AEGIS_EPARSE for a malformed message
 * (bad header, section counts, names, compression loops, records past the end), AEGIS_EINVAL when the
 * answer is well-formed but not cacheable (question differs from key, TC set, rcode other than NOERROR
 * and NXDOMAIN, negative answer without SOA, TTL 0, NOCACHE key), AEGIS_ELIMIT when one entry would be
 * larger than its kind's byte cap, AEGIS_ENOMEM. Evicts least recently used entries of the same kind
 * until the new one fits. */
int aegis_cache_store(struct aegis_cache *c, const struct aegis_dns_question_key *key, const uint8_t *answer,
                      size_t len, uint64_t now_ms) AEGIS_WUR;

/* The same, with the entry's DNSSEC status: secure entries report AEGIS_CACHE_F_SECURE on every hit, so
 * the forwarder sets AD without validating again; every other entry (aegis_cache_store) never does. */
int aegis_cache_store_secure(struct aegis_cache *c, const struct aegis_dns_question_key *key,
                             const uint8_t *answer, size_t len, uint64_t now_ms, bool secure) AEGIS_WUR;

/* Drops every entry (counters other than entries/bytes are kept). */
void aegis_cache_clear(struct aegis_cache *c);

struct aegis_cache_stats {
	uint64_t hits;
	uint64_t stale_hits; /* included in hits */
	uint64_t misses;
	uint64_t stores;
	uint64_t rejected;  /* store() calls that failed */
	uint64_t evictions; /* entries pushed out by capacity */
	uint64_t expired;   /* entries dropped because their TTL (and stale window) ran out */
	uint64_t prefetch_hints;
	size_t pos_entries, pos_bytes;
	size_t neg_entries, neg_bytes;
};

void aegis_cache_get_stats(const struct aegis_cache *c, struct aegis_cache_stats *out);

/* Message helper shared with the forwarder: if msg (len bytes, a response whose question starts at
 * offset 12) is longer than limit, cuts it in place to header + question (+ its OPT record) with TC=1
 * and the section counts fixed. Returns the new length, or AEGIS_EPARSE / AEGIS_ESPACE (limit below
 * header + question). */
int aegis_cache_msg_fit(uint8_t *msg, size_t len, size_t limit) AEGIS_WUR;

#endif
