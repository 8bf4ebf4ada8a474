/* libFuzzer harness for the forwarder's answer acceptance (proxy/upstream_attempt.c, reached through the
 * folder-private upstream_int.h): an upstream's datagram must pass aegis_upstream_attempt_matches() (QR, our
 * ID, our opcode, our question, case aside) before anything else reads it, and a matching answer is then
 * stored in the cache and served back, as aegis_upstream_txn_answer() does. Byte 0 picks the question: bit 0
 * set = the question the answer itself carries (so that matching inputs are common), else one of a few fixed
 * queries. */
#include <stdlib.h>
#include <string.h>

#include "dns_wire.h"
#include "upstream_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t query[AEGIS_DNS_TCP_MAX], out[AEGIS_DNS_TCP_MAX];
	/* dig www.example.com A; kdig _http._tcp.Example.COM SRV with EDNS */
	static const uint8_t q_a[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
	                             "\x03www\x07"
	                             "example\x03"
	                             "com\x00\x00\x01\x00\x01";
	static const uint8_t q_srv[] = "\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"
	                               "\x05_http\x04_tcp\x07"
	                               "Example\x03"
	                               "COM\x00\x00\x21\x00\x01"
	                               "\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00";
	if (size < 1 || size - 1 > sizeof(query))
		return 0;
	const uint8_t *ans = data + 1;
	size_t alen = size - 1;
	const uint8_t *q = (data[0] & 2) ? q_srv : q_a;
	size_t qlen = (data[0] & 2) ? sizeof(q_srv) - 1 : sizeof(q_a) - 1;
	if (data[0] & 1) {
		/* The answer's header and question as a query. */
		memcpy(query, ans, alen);
		if (alen >= 12) {
			query[2] &= 0x7F;
			memset(query + 6, 0, 6);
		}
		q = query;
		qlen = alen;
	}
	struct aegis_dns_question_key key;
	struct aegis_dns_query_info info;
	if (aegis_cache_key_from_query(q, qlen, &key, &info) != 0)
		return 0;
	if (!aegis_upstream_attempt_matches(info.id, info.opcode, &key, NULL, NULL, 0, ans, alen))
		return 0;
	/* What the matcher promised: the answer holds the whole question. */
	if (alen < HDR + (size_t)key.len + 4)
		abort();
	struct aegis_cache_opts o;
	aegis_cache_opts_default(&o);
	o.pos_max_entries = 4;
	struct aegis_cache *c = NULL;
	if (aegis_cache_new(&o, &c) != 0)
		abort();
	size_t len;
	unsigned fl;
	if (aegis_cache_store(c, &key, ans, alen, 1000) == 0) {
		int rc = aegis_cache_lookup(c, q, info.question_end, &key, 1500, false, out, sizeof(out),
		                            &len, &fl);
		if (rc == 0 && (len < 12 || len > sizeof(out) || out[0] != q[0] || out[1] != q[1]))
			abort();
		/* As a stale answer gets it: an EDE in the OPT record, if there is one, and room. */
		if (rc == 0) {
			size_t n = aegis_wire_add_ede(out, len, sizeof(out), AEGIS_EDE_STALE_ANSWER);
			if (n != len && n != len + 6)
				abort();
			/* a second one goes into the same OPT record */
			if (n == len + 6 && n + 6 <= sizeof(out) &&
			    aegis_wire_add_ede(out, n, sizeof(out), AEGIS_EDE_STALE_ANSWER) != n + 6)
				abort();
		}
	}
	aegis_cache_free(c);
	return 0;
}
