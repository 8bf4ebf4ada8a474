/* Feeds arbitrary bytes to the cache's wire walker as an upstream answer: the question is lifted out of
 * the input to make the key (so that well-formed inputs reach the store and the hit path), then store,
 * lookup at two buffer sizes and later times, and the truncation helper. The query parser gets the raw
 * bytes too. Nothing may crash, read out of bounds or leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dns_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t query[AEGIS_DNS_TCP_MAX], out[AEGIS_DNS_TCP_MAX];
	struct aegis_dns_question_key key;
	struct aegis_dns_query_info info;
	if (size > sizeof(query))
		return 0;
	int rc = aegis_cache_key_from_query(data, size, &key, &info);
	/* The answer's header and question, turned into a query without the other sections. */
	memcpy(query, data, size);
	if (size >= 12) {
		query[2] &= 0x7F;
		memset(query + 6, 0, 6);
	}
	rc = aegis_cache_key_from_query(query, size, &key, &info);
	if (rc == 0) {
		struct aegis_cache_opts o;
		aegis_cache_opts_default(&o);
		o.stale_max = 30;
		o.pos_max_entries = 4;
		struct aegis_cache *c = NULL;
		if (aegis_cache_new(&o, &c) == 0) {
			size_t len;
			unsigned fl;
			if (aegis_cache_store(c, &key, data, size, 1000) == 0) {
				rc = aegis_cache_lookup(c, query, info.question_end, &key, 2000, false, out,
				                        sizeof(out), &len, &fl);
				rc = aegis_cache_lookup(c, query, info.question_end, &key, 90000, true, out,
				                        512, &len, &fl);
			}
			aegis_cache_free(c);
		}
	}
	memcpy(out, data, size);
	rc = aegis_cache_msg_fit(out, size, 512);
	(void)rc;
	return 0;
}
