/* Tests proxy/dns_cache.c: TTL countdown, 0x20 case restore, negative caching (RFC 2308), caps, LRU
 * order, serve-stale, prefetch hint, key bits, and rejection of malformed answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "dns_cache.h"
#include "test_upstream_msg.h"

static struct aegis_cache *mk(const struct aegis_cache_opts *o)
{
	struct aegis_cache *c = NULL;
	assert_int_equal(aegis_cache_new(o, &c), 0);
	return c;
}

static void key_of(const struct tmsg *q, struct aegis_dns_question_key *k)
{
	assert_int_equal(aegis_cache_key_from_query(q->b, q->n, k, NULL), 0);
}

/* Stores an A answer for name with the given TTLs at now. */
static void put_a(struct aegis_cache *c, const char *name, unsigned n, const uint32_t *ttls, uint64_t now)
{
	struct tmsg q, a;
	struct aegis_dns_question_key k;
	tm_query(&q, 1, name, 1, false, false, false);
	key_of(&q, &k);
	tm_answer_a(&a, 1, name, n, ttls, false);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, now), 0);
}

static int get(struct aegis_cache *c, const struct tmsg *q, uint64_t now, bool stale, uint8_t *out,
               size_t cap, size_t *len, unsigned *fl)
{
	struct aegis_dns_question_key k;
	key_of(q, &k);
	return aegis_cache_lookup(c, q->b, q->n, &k, now, stale, out, cap, len, fl);
}

static void test_hit_ttl_countdown(void **state)
{
	struct aegis_cache *c = mk(NULL);
	uint32_t ttls[2] = {300, 100};
	put_a(c, "www.example.com", 2, ttls, 1000);
	struct tmsg q;
	tm_query(&q, 0x1234, "www.example.com", 1, false, false, false);
	uint8_t out[1024];
	size_t len;
	unsigned fl;
	assert_int_equal(get(c, &q, 1000, false, out, sizeof(out), &len, &fl), 0);
	assert_int_equal(tm_get16(out), 0x1234);
	assert_int_equal(tm_get16(out + 6), 2);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 0)), 300);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 1)), 100);
	assert_int_equal(fl, 0);

	assert_int_equal(get(c, &q, 51999, false, out, sizeof(out), &len, &fl), 0);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 0)), 250);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 1)), 50);

	/* the entry lives as long as its shortest TTL */
	assert_int_equal(get(c, &q, 101000, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	struct aegis_cache_stats st;
	aegis_cache_get_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.pos_entries, 0);
	assert_int_equal(st.pos_bytes, 0);
	aegis_cache_free(c);
}

static void test_case_restore(void **state)
{
	struct aegis_cache *c = mk(NULL);
	uint32_t ttl = 60;
	put_a(c, "www.example.com", 1, &ttl, 0);
	struct tmsg q;
	tm_query(&q, 0xBEEF, "WwW.ExAmPlE.cOm", 1, false, false, false);
	uint8_t out[1024];
	size_t len;
	unsigned fl;
	assert_int_equal(get(c, &q, 5000, false, out, sizeof(out), &len, &fl), 0);
	assert_memory_equal(out + 12, "\3WwW\7ExAmPlE\3cOm", 17);
	assert_int_equal(out[2] & 0x01, 1);
	assert_int_equal(tm_get16(out), 0xBEEF);
	/* a query without RD is another question (it may deserve a referral): no hit */
	q.b[2] &= (uint8_t)~0x01;
	assert_int_equal(get(c, &q, 5000, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	aegis_cache_free(c);
}

static void test_negative_soa_min(void **state)
{
	struct aegis_cache *c = mk(NULL);
	struct tmsg q, a;
	struct aegis_dns_question_key k;
	uint8_t out[1024];
	size_t len;
	unsigned fl;

	/* NXDOMAIN: TTL = min(SOA TTL 3600, MINIMUM 60) */
	tm_query(&q, 7, "nope.example.com", 1, false, false, false);
	key_of(&q, &k);
	tm_answer_neg(&a, 7, "nope.example.com", 1, 3, 3600, 60, true);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), 0);
	assert_int_equal(get(c, &q, 10000, false, out, sizeof(out), &len, &fl), 0);
	assert_true(fl & AEGIS_CACHE_F_NEGATIVE);
	assert_int_equal(out[3] & 0x0F, 3);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 0)), 50);
	assert_int_equal(get(c, &q, 60000, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);

	/* NODATA: TTL = min(SOA TTL 30, MINIMUM 600) */
	tm_query(&q, 8, "www.example.com", 28, false, false, false);
	key_of(&q, &k);
	tm_answer_neg(&a, 8, "www.example.com", 28, 0, 30, 600, true);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), 0);
	assert_int_equal(get(c, &q, 29000, false, out, sizeof(out), &len, &fl), 0);
	assert_true(fl & AEGIS_CACHE_F_NEGATIVE);
	assert_int_equal(get(c, &q, 30000, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);

	/* no SOA: not cacheable (RFC 2308 section 5) */
	tm_answer_neg(&a, 8, "www.example.com", 28, 3, 0, 0, false);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EINVAL);

	struct aegis_cache_stats st;
	aegis_cache_get_stats(c, &st);
	assert_int_equal(st.neg_entries, 0);
	assert_int_equal(st.pos_entries, 0);
	aegis_cache_free(c);
}

static void test_ttl_caps(void **state)
{
	struct aegis_cache_opts o;
	aegis_cache_opts_default(&o);
	o.max_ttl = 100;
	o.min_ttl = 10;
	o.neg_max_ttl = 20;
	struct aegis_cache *c = mk(&o);
	uint32_t ttls[2] = {86400, 2};
	put_a(c, "a.example", 2, ttls, 0);
	struct tmsg q, a;
	tm_query(&q, 1, "a.example", 1, false, false, false);
	uint8_t out[1024];
	size_t len;
	unsigned fl;
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), 0);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 0)), 100);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 1)), 10);

	struct aegis_dns_question_key k;
	tm_query(&q, 1, "n.example", 1, false, false, false);
	key_of(&q, &k);
	tm_answer_neg(&a, 1, "n.example", 1, 3, 3600, 3600, true);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), 0);
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), 0);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 0)), 20);

	/* TTL 0 without a min cap is not cached */
	aegis_cache_opts_default(&o);
	struct aegis_cache *c2 = mk(&o);
	uint32_t zero = 0;
	tm_query(&q, 1, "z.example", 1, false, false, false);
	key_of(&q, &k);
	tm_answer_a(&a, 1, "z.example", 1, &zero, false);
	assert_int_equal(aegis_cache_store(c2, &k, a.b, a.n, 0), AEGIS_EINVAL);
	aegis_cache_free(c2);

	struct aegis_cache_opts bad;
	aegis_cache_opts_default(&bad);
	bad.min_ttl = 500;
	bad.max_ttl = 100;
	struct aegis_cache *c3 = NULL;
	assert_int_equal(aegis_cache_new(&bad, &c3), AEGIS_EINVAL);
	aegis_cache_free(c);
}

static void test_lru_eviction(void **state)
{
	struct aegis_cache_opts o;
	aegis_cache_opts_default(&o);
	o.pos_max_entries = 3;
	struct aegis_cache *c = mk(&o);
	uint32_t ttl = 300;
	put_a(c, "a.test", 1, &ttl, 0);
	put_a(c, "b.test", 1, &ttl, 0);
	put_a(c, "c.test", 1, &ttl, 0);
	struct tmsg q;
	uint8_t out[1024];
	size_t len;
	unsigned fl;
	tm_query(&q, 1, "a.test", 1, false, false, false);
	assert_int_equal(get(c, &q, 1, false, out, sizeof(out), &len, &fl), 0); /* a is now most recent */
	put_a(c, "d.test", 1, &ttl, 2);                                         /* evicts b */
	assert_int_equal(get(c, &q, 3, false, out, sizeof(out), &len, &fl), 0);
	tm_query(&q, 1, "b.test", 1, false, false, false);
	assert_int_equal(get(c, &q, 3, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	tm_query(&q, 1, "c.test", 1, false, false, false);
	assert_int_equal(get(c, &q, 3, false, out, sizeof(out), &len, &fl), 0);
	tm_query(&q, 1, "d.test", 1, false, false, false);
	assert_int_equal(get(c, &q, 3, false, out, sizeof(out), &len, &fl), 0);
	struct aegis_cache_stats st;
	aegis_cache_get_stats(c, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.pos_entries, 3);

	/* negative entries have their own cap and never push out positive ones */
	struct tmsg a;
	struct aegis_dns_question_key k;
	for (int i = 0; i < 50; i++) {
		char name[32];
		snprintf(name, sizeof(name), "r%d.test", i);
		tm_query(&q, 1, name, 1, false, false, false);
		key_of(&q, &k);
		tm_answer_neg(&a, 1, name, 1, 3, 60, 60, true);
		assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 5), 0);
	}
	aegis_cache_get_stats(c, &st);
	assert_int_equal(st.pos_entries, 3);
	assert_int_equal(st.neg_entries, 50);
	aegis_cache_free(c);

	/* byte caps: the bound holds, an entry larger than the cap is refused */
	aegis_cache_opts_default(&o);
	o.pos_max_bytes = 600;
	c = mk(&o);
	for (int i = 0; i < 20; i++) {
		char name[32];
		snprintf(name, sizeof(name), "h%d.test", i);
		put_a(c, name, 1, &ttl, 0);
		aegis_cache_get_stats(c, &st);
		assert_true(st.pos_bytes <= 600);
	}
	uint32_t many[40];
	for (int i = 0; i < 40; i++)
		many[i] = 60;
	tm_query(&q, 1, "big.test", 1, false, false, false);
	key_of(&q, &k);
	tm_answer_a(&a, 1, "big.test", 40, many, false);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_ELIMIT);
	aegis_cache_free(c);
}

static void test_serve_stale(void **state)
{
	struct aegis_cache_opts o;
	aegis_cache_opts_default(&o);
	o.stale_max = 60;
	struct aegis_cache *c = mk(&o);
	uint32_t ttl = 10;
	put_a(c, "s.test", 1, &ttl, 0);
	struct tmsg q;
	tm_query(&q, 9, "s.test", 1, false, false, false);
	uint8_t out[1024];
	size_t len;
	unsigned fl;
	assert_int_equal(get(c, &q, 15000, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	assert_int_equal(get(c, &q, 15000, true, out, sizeof(out), &len, &fl), 0);
	assert_true(fl & AEGIS_CACHE_F_STALE);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 0)), 30);
	assert_int_equal(get(c, &q, 70001, true, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	struct aegis_cache_stats st;
	aegis_cache_get_stats(c, &st);
	assert_int_equal(st.stale_hits, 1);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.pos_entries, 0);
	aegis_cache_free(c);

	/* serve-stale off: an expired entry is never served */
	c = mk(NULL);
	put_a(c, "s.test", 1, &ttl, 0);
	assert_int_equal(get(c, &q, 10000, true, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	aegis_cache_free(c);
}

static void test_prefetch_hint(void **state)
{
	struct aegis_cache *c = mk(NULL);
	uint32_t ttl = 100;
	put_a(c, "p.test", 1, &ttl, 0);
	struct tmsg q;
	tm_query(&q, 9, "p.test", 1, false, false, false);
	uint8_t out[1024];
	size_t len;
	unsigned fl;
	assert_int_equal(get(c, &q, 50000, false, out, sizeof(out), &len, &fl), 0);
	assert_false(fl & AEGIS_CACHE_F_PREFETCH);
	assert_int_equal(get(c, &q, 91000, false, out, sizeof(out), &len, &fl), 0);
	assert_true(fl & AEGIS_CACHE_F_PREFETCH);
	assert_int_equal(get(c, &q, 92000, false, out, sizeof(out), &len, &fl), 0);
	assert_false(fl & AEGIS_CACHE_F_PREFETCH);
	aegis_cache_free(c);
}

static void test_key_bits(void **state)
{
	struct aegis_cache *c = mk(NULL);
	struct tmsg q, a;
	struct aegis_dns_question_key k;
	uint8_t out[1024];
	size_t len;
	unsigned fl;
	uint32_t ttl = 60;
	/* stored for an EDNS query with DO */
	tm_query(&q, 1, "k.test", 1, true, true, false);
	key_of(&q, &k);
	assert_true(k.flags & AEGIS_CACHE_KEY_DO);
	assert_true(k.flags & AEGIS_CACHE_KEY_EDNS);
	tm_answer_a(&a, 1, "k.test", 1, &ttl, true);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), 0);
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), 0);
	tm_query(&q, 1, "k.test", 1, true, false, false);
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	tm_query(&q, 1, "k.test", 1, false, false, false);
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	tm_query(&q, 1, "k.test", 1, true, true, true);
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	tm_query(&q, 1, "k.test", 28, true, true, false);
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);

	/* ANY, non-QUERY opcodes and client-subnet queries are never cached */
	tm_query(&q, 1, "k.test", 255, false, false, false);
	key_of(&q, &k);
	assert_true(k.flags & AEGIS_CACHE_KEY_NOCACHE);
	tm_query(&q, 1, "k.test", 1, false, false, false);
	q.b[2] |= 5 << 3; /* UPDATE */
	key_of(&q, &k);
	assert_true(k.flags & AEGIS_CACHE_KEY_NOCACHE);
	tm_hdr(&q, 1, TM_RD, 1, 0, 0, 1);
	tm_name(&q, "k.test");
	tm_u16(&q, 1);
	tm_u16(&q, 1);
	tm_u8(&q, 0);
	tm_u16(&q, 41);
	tm_u16(&q, 1232);
	tm_u32(&q, 0);
	tm_u16(&q, 8);
	tm_u16(&q, 8); /* ECS */
	tm_u16(&q, 4);
	tm_u16(&q, 1);
	tm_u8(&q, 24);
	tm_u8(&q, 0);
	tm_u16(&q, 0x0A00);
	tm_u16(&q, 0x0000);
	struct aegis_dns_query_info info;
	assert_int_equal(aegis_cache_key_from_query(q.b, q.n, &k, &info), 0);
	assert_true(k.flags & AEGIS_CACHE_KEY_NOCACHE);
	assert_int_equal(info.edns_udp_size, 1232);

	/* malformed queries */
	tm_query(&q, 1, "k.test", 1, false, false, false);
	q.b[2] |= 0x80;
	assert_int_equal(aegis_cache_key_from_query(q.b, q.n, &k, NULL), AEGIS_EPARSE);
	tm_hdr(&q, 1, TM_RD, 1, 0, 0, 2);
	tm_name(&q, "k.test");
	tm_u16(&q, 1);
	tm_u16(&q, 1);
	tm_opt(&q, 1232, false);
	tm_opt(&q, 1232, false);
	assert_int_equal(aegis_cache_key_from_query(q.b, q.n, &k, NULL), AEGIS_EPARSE);
	tm_query(&q, 1, "k.test", 1, false, false, false);
	assert_int_equal(aegis_cache_key_from_query(q.b, q.n - 1, &k, NULL), AEGIS_EPARSE);
	aegis_cache_free(c);
}

static void test_malformed_answers(void **state)
{
	struct aegis_cache *c = mk(NULL);
	struct tmsg q, a;
	struct aegis_dns_question_key k;
	uint32_t ttl = 60;
	tm_query(&q, 1, "m.test", 1, false, false, false);
	key_of(&q, &k);

	/* a pointer to itself */
	tm_answer_a(&a, 1, "m.test", 1, &ttl, false);
	size_t owner = 12 + 8 + 4;
	tm_put16(&a, owner, 0xC000 | (unsigned)owner);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EPARSE);
	/* a forward pointer */
	tm_put16(&a, owner, 0xC000 | (unsigned)(owner + 2));
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EPARSE);
	/* two pointers pointing at each other: the second name jumps back to the first, which jumps
	 * forward again */
	tm_hdr(&a, 1, TM_QR, 1, 2, 0, 0);
	tm_name(&a, "m.test");
	tm_u16(&a, 1);
	tm_u16(&a, 1);
	size_t r1 = a.n;
	tm_u16(&a, 0xC000 | (unsigned)(r1 + 16));
	tm_u16(&a, 1);
	tm_u16(&a, 1);
	tm_u32(&a, 60);
	tm_u16(&a, 4);
	tm_u32(&a, 1);
	tm_ptr(&a, (unsigned)r1);
	tm_u16(&a, 1);
	tm_u16(&a, 1);
	tm_u32(&a, 60);
	tm_u16(&a, 4);
	tm_u32(&a, 1);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EPARSE);
	/* rdata past the end, missing record, counts too large */
	tm_answer_a(&a, 1, "m.test", 1, &ttl, false);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n - 1, 0), AEGIS_EPARSE);
	tm_put16(&a, 6, 2);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EPARSE);
	tm_put16(&a, 6, 1);
	tm_put16(&a, 4, 2);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EPARSE);
	assert_int_equal(aegis_cache_store(c, &k, a.b, 5, 0), AEGIS_EPARSE);
	/* a label of 64 bytes (extended label type bits) */
	tm_answer_a(&a, 1, "m.test", 1, &ttl, false);
	a.b[owner] = 0x40;
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EPARSE);

	/* well-formed but not cacheable */
	tm_answer_a(&a, 1, "other.test", 1, &ttl, false);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EINVAL);
	tm_answer_a(&a, 1, "m.test", 1, &ttl, false);
	a.b[2] |= 0x02; /* TC */
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EINVAL);
	tm_answer_a(&a, 1, "m.test", 1, &ttl, false);
	a.b[3] = (uint8_t)((a.b[3] & 0xF0) | 2); /* SERVFAIL */
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EINVAL);
	tm_answer_a(&a, 1, "m.test", 1, &ttl, false);
	a.b[2] &= 0x7F; /* not a response */
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), AEGIS_EINVAL);

	struct aegis_cache_stats st;
	aegis_cache_get_stats(c, &st);
	assert_int_equal(st.pos_entries, 0);
	assert_int_equal(st.rejected, 12);
	/* the same name in upper case is the same question */
	tm_answer_a(&a, 1, "M.TEST", 1, &ttl, false);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), 0);
	aegis_cache_free(c);
}

static void test_truncate_and_options(void **state)
{
	struct aegis_cache *c = mk(NULL);
	struct tmsg q, a;
	struct aegis_dns_question_key k;
	uint32_t ttls[60];
	for (int i = 0; i < 60; i++)
		ttls[i] = 60;
	tm_query(&q, 3, "big.test", 1, true, false, false);
	key_of(&q, &k);
	tm_answer_a(&a, 3, "big.test", 60, ttls, true);
	/* a cookie option in the upstream's OPT is not kept */
	size_t opt_rdlen = a.n - 2;
	tm_u16(&a, 10);
	tm_u16(&a, 8);
	tm_u32(&a, 0x01020304);
	tm_u32(&a, 0x05060708);
	tm_put16(&a, opt_rdlen, 12);
	assert_int_equal(aegis_cache_store(c, &k, a.b, a.n, 0), 0);

	uint8_t out[4096];
	size_t len;
	unsigned fl;
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), 0);
	assert_int_equal(len, a.n - 12);
	assert_int_equal(tm_get16(out + len - 2), 0);
	/* the client accepts 512 bytes: TC, question and OPT only */
	assert_int_equal(get(c, &q, 0, false, out, 512, &len, &fl), 0);
	assert_true(fl & AEGIS_CACHE_F_TRUNCATED);
	assert_true(out[2] & 0x02);
	assert_int_equal(tm_get16(out + 6), 0);
	assert_int_equal(tm_get16(out + 10), 1);
	assert_int_equal(len, 12 + 10 + 4 + 11);
	assert_int_equal(get(c, &q, 0, false, out, 20, &len, &fl), AEGIS_ESPACE);

	/* the same helper on a plain message */
	int n = aegis_cache_msg_fit(a.b, a.n, 512);
	assert_int_equal(n, 12 + 10 + 4 + 11 + 12);
	assert_true(a.b[2] & 0x02);
	assert_int_equal(aegis_cache_msg_fit(a.b, (size_t)n, 4096), n);
	assert_int_equal(aegis_cache_msg_fit(a.b, (size_t)n, 20), AEGIS_ESPACE);
	aegis_cache_free(c);
}

static void test_replace_and_clear(void **state)
{
	struct aegis_cache *c = mk(NULL);
	uint32_t t1 = 60, t2 = 120;
	put_a(c, "r.test", 1, &t1, 0);
	put_a(c, "r.test", 1, &t2, 0);
	struct aegis_cache_stats st;
	aegis_cache_get_stats(c, &st);
	assert_int_equal(st.pos_entries, 1);
	struct tmsg q;
	tm_query(&q, 1, "r.test", 1, false, false, false);
	uint8_t out[512];
	size_t len;
	unsigned fl;
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), 0);
	assert_int_equal(tm_get32(out + tm_ttl_off(out, len, 0)), 120);
	aegis_cache_clear(c);
	assert_int_equal(get(c, &q, 0, false, out, sizeof(out), &len, &fl), AEGIS_ENOTFOUND);
	aegis_cache_get_stats(c, &st);
	assert_int_equal(st.pos_entries + st.pos_bytes, 0);
	aegis_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hit_ttl_countdown), cmocka_unit_test(test_case_restore),
	        cmocka_unit_test(test_negative_soa_min),  cmocka_unit_test(test_ttl_caps),
	        cmocka_unit_test(test_lru_eviction),      cmocka_unit_test(test_serve_stale),
	        cmocka_unit_test(test_prefetch_hint),     cmocka_unit_test(test_key_bits),
	        cmocka_unit_test(test_malformed_answers), cmocka_unit_test(test_truncate_and_options),
	        cmocka_unit_test(test_replace_and_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
