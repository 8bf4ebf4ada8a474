/* The answer rules of DNS_BEHAVIOUR.md as a pure function: query bytes in, answer bytes (or "forward",
 * or "drop") out. No sockets, no clock, no allocation: the server, the tests and the fuzzer all call
 * aegis_answer() the same way. */
#ifndef AEGIS_DNS_ANSWER_H
#define AEGIS_DNS_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns_search.h"
#include "dns_table.h"
#include "dns_wire.h"

struct aegis_answer_ctx {
	const struct aegis_table *table;   /* NULL until the first configuration */
	const struct aegis_search *search; /* never NULL */
	uint32_t ttl;                      /* TTL of table answers (default 30) */
	uint32_t rotor;                    /* rotates record order; the caller changes it per query */
	bool forward_unready;              /* before the first config: forward mesh-domain names (true)
	                                      or answer SERVFAIL (false, the default) */
};

enum aegis_answer_action {
	AEGIS_ANSWER_SEND = 0, /* out holds the answer */
	AEGIS_ANSWER_DROP,     /* send nothing (a response, or shorter than a header) */
	AEGIS_ANSWER_FORWARD   /* not a table name: forward upstream (q describes it) */
};

/* Where an answer came from, for metrics and query logs. */
enum aegis_answer_source {
	AEGIS_SRC_TABLE = 0, /* a table answer (records, NODATA, CNAME) */
	AEGIS_SRC_ERROR,     /* FORMERR, BADVERS, SERVFAIL before config */
	AEGIS_SRC_UPSTREAM,  /* to be forwarded */
	AEGIS_SRC_CACHE,     /* set by the forwarder */
	AEGIS_SRC_DROPPED,
	AEGIS_SRC_COUNT_
};

struct aegis_answer_info {
	enum aegis_answer_source source;
	uint8_t rcode;  /* 4-bit header rcode of the answer (BADVERS shows as 16) */
	bool truncated; /* TC was set */
	enum aegis_match_kind match;
};

/* Answers the query in pkt[0..len). max_size is the transport's limit: AEGIS_DNS_TCP_MAX over TCP, 0 over
 * UDP (the limit is then 512, or the client's EDNS size between 512 and AEGIS_DNS_EDNS_MAX). out must hold
 * outcap >= max_size bytes (65535 is always enough). On SEND *outlen is the answer length. q is filled
 * with the parsed query whatever the action (the forwarder and the metrics use it). */
enum aegis_answer_action aegis_answer(const struct aegis_answer_ctx *ctx, const uint8_t *pkt, size_t len,
                                      size_t max_size, uint8_t *out, size_t outcap, size_t *outlen,
                                      struct aegis_dns_query *q, struct aegis_answer_info *info);

/* Writes a header-and-question answer with rcode (SERVFAIL, REFUSED, NOTIMP ...) to the query q parsed
 * from pkt, with an OPT record when the query had one. Returns the length, or 0 if q has no readable
 * header. For the server's error paths and the forwarder's failures. */
size_t aegis_answer_rcode(const struct aegis_dns_query *q, const uint8_t *pkt, uint8_t rcode, uint8_t *out,
                          size_t outcap);

/* The UDP size limit for an answer to q (512, or its EDNS size clamped to [512, AEGIS_DNS_EDNS_MAX]). */
size_t aegis_answer_udp_limit(const struct aegis_dns_query *q);

#endif
