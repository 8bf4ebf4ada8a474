/* Answer cache: see dns_cache.h and docs/forwarding.md.
 *
 * Layout: one malloc per entry holding the entry header, the offsets of its TTL fields and the message
 * bytes, so that a hit touches one allocation and a store is one malloc. Entries hang in a fixed-size
 * chained hash table and in one LRU list per kind (positive, negative); each kind has its own entry and
 * byte caps, so a flood of NXDOMAINs for random names cannot push the positive answers out. */
#include "dns_cache.h"

#include <stdlib.h>
#include <string.h>

#include "dns_name.h"

#define HDR            12
#define T_SOA          6
#define T_OPT          41
#define T_IXFR         251
#define T_AXFR         252
#define T_MAILB        253
#define T_MAILA        254
#define T_ANY          255
#define OPT_ECS        8
#define RCODE_NOERROR  0
#define RCODE_NXDOMAIN 3
#define MAX_STORED_RRS AEGIS_DNS_MAX_RRS_PER_ANSWER

enum kind { POS = 0, NEG = 1 };

struct entry {
	struct entry *hnext;
	struct entry *prev, *next; /* LRU list of its kind; head = most recent */
	uint64_t stored_ms;
	uint64_t expire_ms;
	uint32_t ttl; /* seconds: the smallest TTL in the stored message */
	uint32_t hash;
	uint16_t msg_len;
	uint16_t n_ttl;
	uint16_t opt_off, opt_len; /* the OPT record, for truncated answers; opt_len 0 = none */
	uint8_t kind;
	bool prefetch_reported;
	bool secure; /* DNSSEC validated (dnssec: reported as AEGIS_CACHE_F_SECURE) */
	/* The key without its name: the stored message holds the lower-case name at offset 12, so
	 * comparing there saves 256 bytes per entry. */
	uint8_t klen, kflags;
	uint16_t qtype, qclass;
	uint32_t bytes;     /* what this entry counts against its kind's byte cap */
	uint16_t ttl_off[]; /* n_ttl offsets, then msg_len message bytes */
};

struct lru {
	struct entry *head, *tail;
	size_t entries, bytes;
	size_t max_entries, max_bytes;
};

struct aegis_cache {
	struct aegis_cache_opts o;
	struct entry **buckets;
	size_t mask;
	struct lru lru[2];
	struct aegis_cache_stats st;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint8_t *entry_msg(struct entry *e)
{
	return (uint8_t *)&e->ttl_off[e->n_ttl];
}

/* ---- the wire walker ------------------------------------------------------------------------------ */

/* Steps over the name at *off (compressed or not) and leaves *off just past its in-place bytes. Every
 * compression pointer must point strictly below every position read so far, so a chain of pointers
 * always moves backwards and cannot loop; the expanded name must stay within 255 bytes. */
static int skip_name(const uint8_t *m, size_t len, size_t *off)
{
	size_t pos = *off, low = *off, end = 0, total = 0;
	bool jumped = false;
	for (;;) {
		if (pos >= len)
			return AEGIS_EPARSE;
		uint8_t b = m[pos];
		if ((b & 0xC0) == 0xC0) {
			if (pos + 1 >= len)
				return AEGIS_EPARSE;
			size_t ptr = ((size_t)(b & 0x3F) << 8) | m[pos + 1];
			if (!jumped)
				end = pos + 2;
			jumped = true;
			if (ptr >= low)
				return AEGIS_EPARSE;
			pos = low = ptr;
			continue;
		}
		if (b & 0xC0)
			return AEGIS_EPARSE; /* extended label types (RFC 6891 obsoleted them) */
		total += (size_t)b + 1;
		if (total > AEGIS_DNS_MAX_NAME)
			return AEGIS_EPARSE;
		if (b == 0) {
			if (!jumped)
				end = pos + 1;
			break;
		}
		pos += (size_t)b + 1;
	}
	*off = end;
	return 0;
}

struct rr {
	size_t start;   /* owner name */
	size_t ttl_off; /* the TTL field */
	size_t rdata;   /* rdata offset */
	size_t end;     /* just past the record */
	uint16_t type, cls, rdlen;
	uint32_t ttl;
	bool root_owner; /* owner is the root name (uncompressed single 0 byte) */
};

static int walk_rr(const uint8_t *m, size_t len, size_t *off, struct rr *rr)
{
	rr->start = *off;
	rr->root_owner = *off < len && m[*off] == 0;
	int rc = skip_name(m, len, off);
	if (rc < 0)
		return rc;
	if (len - *off < 10)
		return AEGIS_EPARSE;
	const uint8_t *p = m + *off;
	rr->type = rd16(p);
	rr->cls = rd16(p + 2);
	rr->ttl_off = *off + 4;
	rr->ttl = rd32(p + 4);
	rr->rdlen = rd16(p + 8);
	rr->rdata = *off + 10;
	if (len - rr->rdata < rr->rdlen)
		return AEGIS_EPARSE;
	rr->end = rr->rdata + rr->rdlen;
	*off = rr->end;
	return 0;
}

/* Reads an uncompressed name at *off into lname (lower-cased) and returns its length, or AEGIS_EPARSE. */
static int read_plain_name(const uint8_t *m, size_t len, size_t off, uint8_t *lname)
{
	size_t n = 0;
	for (;;) {
		if (off + n >= len)
			return AEGIS_EPARSE;
		uint8_t b = m[off + n];
		if (b > 63)
			return AEGIS_EPARSE;
		if (n + (size_t)b + 1 > AEGIS_DNS_MAX_NAME || off + n + (size_t)b + 1 > len)
			return AEGIS_EPARSE;
		lname[n] = b;
		for (size_t i = 1; i <= b; i++)
			lname[n + i] = aegis_dns_lower(m[off + n + i]);
		n += (size_t)b + 1;
		if (b == 0)
			return (int)n;
	}
}

static bool nocache_type(uint16_t t)
{
	return t == T_ANY || t == T_AXFR || t == T_IXFR || t == T_MAILA || t == T_MAILB || t == T_OPT;
}

int aegis_cache_key_from_query(const uint8_t *q, size_t len, struct aegis_dns_question_key *key,
                               struct aegis_dns_query_info *info)
{
	if (len < HDR + 5 || (q[2] & 0x80) || rd16(q + 4) != 1)
		return AEGIS_EPARSE;
	int n = read_plain_name(q, len, HDR, key->lname);
	if (n < 0)
		return n;
	size_t off = HDR + (size_t)n;
	if (len - off < 4)
		return AEGIS_EPARSE;
	key->len = (uint8_t)n;
	key->qtype = rd16(q + off);
	key->qclass = rd16(q + off + 2);
	off += 4;
	uint8_t opcode = (q[2] >> 3) & 0x0F;
	key->flags = (uint8_t)(((q[3] & 0x10) ? AEGIS_CACHE_KEY_CD : 0) |
	                       ((q[2] & 0x01) ? 0 : AEGIS_CACHE_KEY_NORD));
	if (opcode != 0 || nocache_type(key->qtype) || rd16(q + 6) || rd16(q + 8))
		key->flags |= AEGIS_CACHE_KEY_NOCACHE;
	if (info != NULL) {
		info->id = rd16(q);
		info->opcode = opcode;
		info->edns_udp_size = 0;
		info->question_end = off;
	}
	unsigned total = (unsigned)rd16(q + 6) + rd16(q + 8) + rd16(q + 10);
	unsigned first_ar = (unsigned)rd16(q + 6) + rd16(q + 8);
	for (unsigned i = 0; i < total; i++) {
		struct rr rr;
		int rc = walk_rr(q, len, &off, &rr);
		if (rc < 0)
			return rc;
		if (rr.type != T_OPT)
			continue;
		if (i < first_ar || !rr.root_owner || (key->flags & AEGIS_CACHE_KEY_EDNS))
			return AEGIS_EPARSE; /* RFC 6891: one OPT, in the additional section, owner root */
		key->flags |= AEGIS_CACHE_KEY_EDNS;
		if (rr.ttl & 0x8000u)
			key->flags |= AEGIS_CACHE_KEY_DO;
		if (info != NULL)
			info->edns_udp_size = rr.cls < AEGIS_DNS_UDP_MIN ? AEGIS_DNS_UDP_MIN : rr.cls;
		/* Answers to a client subnet query belong to that subnet: never shared. */
		for (size_t o = rr.rdata; o + 4 <= rr.end;) {
			uint16_t code = rd16(q + o), olen = rd16(q + o + 2);
			if (code == OPT_ECS)
				key->flags |= AEGIS_CACHE_KEY_NOCACHE;
			o += 4u + olen;
		}
	}
	return 0;
}

/* ---- options and lifetime ------------------------------------------------------------------------- */

void aegis_cache_opts_default(struct aegis_cache_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pos_max_entries = 10000;
	o->pos_max_bytes = 8u << 20;
	o->neg_max_entries = 5000;
	o->neg_max_bytes = 2u << 20;
	o->max_ttl = 3600;
	o->neg_max_ttl = 300;
	o->stale_ttl = 30;
	o->prefetch_pct = 10;
}

int aegis_cache_new(const struct aegis_cache_opts *opts, struct aegis_cache **out)
{
	struct aegis_cache_opts d;
	aegis_cache_opts_default(&d);
	struct aegis_cache_opts o = opts ? *opts : d;
	if (o.pos_max_entries == 0)
		o.pos_max_entries = d.pos_max_entries;
	if (o.pos_max_bytes == 0)
		o.pos_max_bytes = d.pos_max_bytes;
	if (o.neg_max_entries == 0)
		o.neg_max_entries = d.neg_max_entries;
	if (o.neg_max_bytes == 0)
		o.neg_max_bytes = d.neg_max_bytes;
	if (o.max_ttl == 0)
		o.max_ttl = d.max_ttl;
	if (o.neg_max_ttl == 0)
		o.neg_max_ttl = d.neg_max_ttl;
	if (o.stale_ttl == 0)
		o.stale_ttl = d.stale_ttl;
	if (o.prefetch_pct == 0)
		o.prefetch_pct = d.prefetch_pct;
	if (o.min_ttl > o.max_ttl || o.neg_min_ttl > o.neg_max_ttl || o.prefetch_pct > 100)
		return AEGIS_EINVAL;
	if (o.pos_max_entries > (1u << 24) || o.neg_max_entries > (1u << 24))
		return AEGIS_EINVAL;

	struct aegis_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return AEGIS_ENOMEM;
	c->o = o;
	size_t nb = 16;
	while (nb < o.pos_max_entries + o.neg_max_entries)
		nb <<= 1;
	c->buckets = calloc(nb, sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return AEGIS_ENOMEM;
	}
	c->mask = nb - 1;
	c->lru[POS].max_entries = o.pos_max_entries;
	c->lru[POS].max_bytes = o.pos_max_bytes;
	c->lru[NEG].max_entries = o.neg_max_entries;
	c->lru[NEG].max_bytes = o.neg_max_bytes;
	*out = c;
	return 0;
}

void aegis_cache_clear(struct aegis_cache *c)
{
	for (int k = 0; k < 2; k++) {
		struct entry *e = c->lru[k].head;
		while (e != NULL) {
			struct entry *next = e->next;
			free(e);
			e = next;
		}
		c->lru[k].head = c->lru[k].tail = NULL;
		c->lru[k].entries = c->lru[k].bytes = 0;
	}
	memset(c->buckets, 0, (c->mask + 1) * sizeof(*c->buckets));
}

void aegis_cache_free(struct aegis_cache *c)
{
	if (c == NULL)
		return;
	aegis_cache_clear(c);
	free(c->buckets);
	free(c);
}

/* ---- hash table and LRU --------------------------------------------------------------------------- */

static uint32_t key_hash(const struct aegis_dns_question_key *k)
{
	uint32_t h = aegis_dns_name_hash(k->lname, k->len);
	h ^= ((uint32_t)k->qtype << 16) ^ ((uint32_t)k->qclass << 3) ^ k->flags;
	h *= 0x9E3779B1u;
	return h ^ (h >> 15);
}

static bool key_eq(struct entry *e, const struct aegis_dns_question_key *k)
{
	return e->klen == k->len && e->qtype == k->qtype && e->qclass == k->qclass && e->kflags == k->flags &&
	       memcmp(entry_msg(e) + HDR, k->lname, k->len) == 0;
}

static struct entry *find(struct aegis_cache *c, const struct aegis_dns_question_key *k, uint32_t h)
{
	for (struct entry *e = c->buckets[h & c->mask]; e != NULL; e = e->hnext)
		if (e->hash == h && key_eq(e, k))
			return e;
	return NULL;
}

static void lru_unlink(struct lru *l, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_head(struct lru *l, struct entry *e)
{
	e->prev = NULL;
	e->next = l->head;
	if (l->head)
		l->head->prev = e;
	l->head = e;
	if (l->tail == NULL)
		l->tail = e;
}

static void remove_entry(struct aegis_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash & c->mask];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	struct lru *l = &c->lru[e->kind];
	lru_unlink(l, e);
	l->entries--;
	l->bytes -= e->bytes;
	free(e);
}

/* ---- lookup --------------------------------------------------------------------------------------- */

/* Writes header + question (+ OPT) with TC=1 into out; the question is already in place at out+12 when
 * in_place, else copied from src. Returns the length or AEGIS_ESPACE. */
static int write_truncated(uint8_t *out, size_t outcap, const uint8_t *hdr, size_t qend, const uint8_t *opt,
                           size_t opt_len)
{
	if (outcap < qend)
		return AEGIS_ESPACE;
	if (out != hdr)
		memcpy(out, hdr, qend);
	size_t n = qend;
	if (opt_len && outcap - n >= opt_len) {
		memmove(out + n, opt, opt_len);
		n += opt_len;
	} else {
		opt_len = 0;
	}
	out[2] |= 0x02; /* TC */
	wr16(out + 6, 0);
	wr16(out + 8, 0);
	wr16(out + 10, opt_len ? 1 : 0);
	return (int)n;
}

int aegis_cache_lookup(struct aegis_cache *c, const uint8_t *query, size_t qlen,
                       const struct aegis_dns_question_key *key, uint64_t now_ms, bool allow_stale,
                       uint8_t *out, size_t outcap, size_t *outlen, unsigned *flags)
{
	*flags = 0;
	if ((key->flags & AEGIS_CACHE_KEY_NOCACHE) || qlen < HDR + (size_t)key->len + 4) {
		c->st.misses++;
		return AEGIS_ENOTFOUND;
	}
	uint32_t h = key_hash(key);
	struct entry *e = find(c, key, h);
	if (e == NULL) {
		c->st.misses++;
		return AEGIS_ENOTFOUND;
	}
	bool stale = false;
	if (now_ms >= e->expire_ms) {
		uint64_t window = (uint64_t)c->o.stale_max * 1000u;
		if (now_ms >= e->expire_ms + window) {
			remove_entry(c, e);
			c->st.expired++;
			c->st.misses++;
			return AEGIS_ENOTFOUND;
		}
		if (!allow_stale) {
			c->st.misses++;
			return AEGIS_ENOTFOUND;
		}
		stale = true;
	}

	const uint8_t *msg = entry_msg(e);
	size_t qend = HDR + (size_t)key->len + 4;
	if (e->msg_len > outcap) {
		int n = write_truncated(out, outcap, msg, qend, msg + e->opt_off, e->opt_len);
		if (n < 0)
			return n;
		*outlen = (size_t)n;
		*flags |= AEGIS_CACHE_F_TRUNCATED;
	} else {
		memcpy(out, msg, e->msg_len);
		*outlen = e->msg_len;
		uint64_t age = (now_ms - e->stored_ms) / 1000u;
		for (uint16_t i = 0; i < e->n_ttl; i++) {
			uint8_t *p = out + e->ttl_off[i];
			uint32_t t = rd32(p);
			if (stale)
				t = c->o.stale_ttl;
			else
				t = age >= t ? 0 : t - (uint32_t)age;
			wr32(p, t);
		}
	}
	/* The client's ID, RD bit and question spelling (0x20); the rest of the header is the upstream's. */
	out[0] = query[0];
	out[1] = query[1];
	out[2] = (uint8_t)((out[2] & ~0x01u) | (query[2] & 0x01u));
	memcpy(out + HDR, query + HDR, key->len);

	if (e->kind == NEG)
		*flags |= AEGIS_CACHE_F_NEGATIVE;
	if (e->secure)
		*flags |= AEGIS_CACHE_F_SECURE;
	if (stale) {
		*flags |= AEGIS_CACHE_F_STALE;
		c->st.stale_hits++;
	} else if (!c->o.no_prefetch && !e->prefetch_reported &&
	           (e->expire_ms - now_ms) * 100u < (uint64_t)e->ttl * 1000u * c->o.prefetch_pct) {
		e->prefetch_reported = true;
		*flags |= AEGIS_CACHE_F_PREFETCH;
		c->st.prefetch_hints++;
	}
	struct lru *l = &c->lru[e->kind];
	if (l->head != e) {
		lru_unlink(l, e);
		lru_push_head(l, e);
	}
	c->st.hits++;
	return 0;
}

/* ---- store ---------------------------------------------------------------------------------------- */

static uint32_t clamp32(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

struct parsed {
	uint16_t n_ttl;
	uint16_t ttl_off[MAX_STORED_RRS];
	size_t end;              /* just past the last record */
	size_t opt_off, opt_len; /* OPT record; opt_len 0 = none */
	size_t opt_rdlen_off;    /* its RDLENGTH field */
	bool opt_last;
	size_t soa_ttl_off;    /* 0 = no SOA in the authority section */
	uint32_t soa_neg_ttl;  /* min(SOA TTL, SOA MINIMUM) */
	bool has_qtype_answer; /* an answer record of the asked type (or a CNAME/DNAME chain) */
};

/* Validates the whole message and collects what the store needs. */
static int parse_answer(const uint8_t *m, size_t len, const struct aegis_dns_question_key *key,
                        struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	if (len < HDR || len > AEGIS_DNS_TCP_MAX || rd16(m + 4) != 1)
		return AEGIS_EPARSE;
	uint8_t lname[AEGIS_DNS_NAME_BUF];
	int n = read_plain_name(m, len, HDR, lname);
	if (n < 0)
		return n;
	size_t off = HDR + (size_t)n;
	if (len - off < 4)
		return AEGIS_EPARSE;
	bool same_q = (size_t)n == key->len && memcmp(lname, key->lname, key->len) == 0 &&
	              rd16(m + off) == key->qtype && rd16(m + off + 2) == key->qclass;
	off += 4;
	unsigned an = rd16(m + 6), ns = rd16(m + 8), ar = rd16(m + 10);
	if (an + ns + ar > MAX_STORED_RRS)
		return AEGIS_ELIMIT;
	for (unsigned i = 0; i < an + ns + ar; i++) {
		struct rr rr;
		int rc = walk_rr(m, len, &off, &rr);
		if (rc < 0)
			return rc;
		if (rr.type == T_OPT) {
			if (i < an + ns || !rr.root_owner || p->opt_len)
				return AEGIS_EPARSE;
			p->opt_off = rr.start;
			p->opt_len = rr.end - rr.start;
			p->opt_rdlen_off = rr.rdata - 2;
			p->opt_last = i == an + ns + ar - 1;
			continue;
		}
		p->ttl_off[p->n_ttl++] = (uint16_t)rr.ttl_off;
		if (i < an &&
		    (rr.type == key->qtype || rr.type == 5 /* CNAME */ || rr.type == 39 /* DNAME */))
			p->has_qtype_answer = true;
		if (i >= an && i < an + ns && rr.type == T_SOA && p->soa_ttl_off == 0) {
			if (rr.rdlen < 22)
				return AEGIS_EPARSE;
			uint32_t minimum = rd32(m + rr.end - 4);
			p->soa_ttl_off = rr.ttl_off;
			p->soa_neg_ttl = rr.ttl < minimum ? rr.ttl : minimum;
		}
	}
	p->end = off;
	return same_q ? 0 : AEGIS_EINVAL;
}

/* Pushes out least recently used entries of kind l until need more bytes and one more entry fit. */
static void make_room(struct aegis_cache *c, struct lru *l, size_t need)
{
	while (l->tail != NULL && (l->entries + 1 > l->max_entries || l->bytes + need > l->max_bytes)) {
		remove_entry(c, l->tail);
		c->st.evictions++;
	}
}

static int store(struct aegis_cache *c, const struct aegis_dns_question_key *key, const uint8_t *m,
                 size_t len, uint64_t now_ms, bool secure)
{
	if (key->flags & AEGIS_CACHE_KEY_NOCACHE)
		return AEGIS_EINVAL;
	struct parsed p;
	int rc = parse_answer(m, len, key, &p);
	if (rc < 0)
		return rc;
	uint8_t rcode = m[3] & 0x0F;
	if (!(m[2] & 0x80) || (m[2] & 0x02) || ((m[2] >> 3) & 0x0F) != 0)
		return AEGIS_EINVAL; /* not a response, truncated, or not a QUERY */
	if (rcode != RCODE_NOERROR && rcode != RCODE_NXDOMAIN)
		return AEGIS_EINVAL;
	enum kind kind = (rcode == RCODE_NXDOMAIN || !p.has_qtype_answer) ? NEG : POS;
	if (kind == NEG && p.soa_ttl_off == 0)
		return AEGIS_EINVAL; /* RFC 2308 section 5: no SOA, no negative caching */
	if (p.n_ttl == 0)
		return AEGIS_EINVAL;

	/* EDNS options in the upstream's OPT (cookies, padding) belong to the client that asked first;
	 * drop them when the OPT is the last record, which it is in practice (nothing can point into the
	 * bytes removed). */
	size_t mlen = p.end;
	if (p.opt_len && p.opt_last && rd16(m + p.opt_rdlen_off) != 0) {
		mlen = p.opt_rdlen_off + 2;
		p.opt_len = mlen - p.opt_off;
	}

	struct lru *l = &c->lru[kind];
	size_t bytes = sizeof(struct entry) + (size_t)p.n_ttl * sizeof(uint16_t) + mlen;
	if (bytes > l->max_bytes)
		return AEGIS_ELIMIT;

	uint32_t h = key_hash(key);
	struct entry *old = find(c, key, h);
	if (old != NULL)
		remove_entry(c, old);
	make_room(c, l, bytes);

	struct entry *e = malloc(bytes);
	if (e == NULL)
		return AEGIS_ENOMEM;
	memset(e, 0, sizeof(*e));
	e->n_ttl = p.n_ttl;
	e->msg_len = (uint16_t)mlen;
	e->opt_off = (uint16_t)p.opt_off;
	e->opt_len = (uint16_t)p.opt_len;
	e->kind = (uint8_t)kind;
	e->secure = secure;
	e->klen = key->len;
	e->kflags = key->flags;
	e->qtype = key->qtype;
	e->qclass = key->qclass;
	e->hash = h;
	e->bytes = (uint32_t)bytes;
	e->stored_ms = now_ms;
	memcpy(e->ttl_off, p.ttl_off, (size_t)p.n_ttl * sizeof(uint16_t));
	uint8_t *msg = entry_msg(e);
	memcpy(msg, m, mlen);
	if (mlen != p.end)
		wr16(msg + p.opt_rdlen_off, 0);

	/* Cap every TTL in place; the negative TTL (RFC 2308: min(SOA TTL, MINIMUM)) goes into the SOA. */
	uint32_t min_ttl = UINT32_MAX;
	for (uint16_t i = 0; i < e->n_ttl; i++) {
		uint8_t *tp = msg + e->ttl_off[i];
		uint32_t t = rd32(tp);
		if (t > 0x7FFFFFFFu)
			t = 0; /* RFC 2181 section 8: a TTL with the top bit set is zero */
		if (kind == NEG && e->ttl_off[i] == p.soa_ttl_off)
			t = clamp32(p.soa_neg_ttl, c->o.neg_min_ttl, c->o.neg_max_ttl);
		else
			t = clamp32(t, c->o.min_ttl, c->o.max_ttl);
		wr32(tp, t);
		if (t < min_ttl)
			min_ttl = t;
	}
	if (min_ttl == 0) {
		free(e);
		return AEGIS_EINVAL;
	}
	e->ttl = min_ttl;
	e->expire_ms = now_ms + (uint64_t)min_ttl * 1000u;
	/* The stored question is lower case; every hit writes the client's spelling over it. */
	memcpy(msg + HDR, key->lname, key->len);

	e->hnext = c->buckets[h & c->mask];
	c->buckets[h & c->mask] = e;
	lru_push_head(l, e);
	l->entries++;
	l->bytes += bytes;
	return 0;
}

int aegis_cache_store(struct aegis_cache *c, const struct aegis_dns_question_key *key, const uint8_t *answer,
                      size_t len, uint64_t now_ms)
{
	return aegis_cache_store_secure(c, key, answer, len, now_ms, false);
}

int aegis_cache_store_secure(struct aegis_cache *c, const struct aegis_dns_question_key *key,
                             const uint8_t *answer, size_t len, uint64_t now_ms, bool secure)
{
	int rc = store(c, key, answer, len, now_ms, secure);
	if (rc < 0)
		c->st.rejected++;
	else
		c->st.stores++;
	return rc;
}

void aegis_cache_get_stats(const struct aegis_cache *c, struct aegis_cache_stats *out)
{
	*out = c->st;
	out->pos_entries = c->lru[POS].entries;
	out->pos_bytes = c->lru[POS].bytes;
	out->neg_entries = c->lru[NEG].entries;
	out->neg_bytes = c->lru[NEG].bytes;
}

int aegis_cache_msg_fit(uint8_t *msg, size_t len, size_t limit)
{
	if (len <= limit)
		return (int)len;
	if (len < HDR + 5 || rd16(msg + 4) != 1)
		return AEGIS_EPARSE;
	size_t off = HDR;
	int rc = skip_name(msg, len, &off);
	if (rc < 0 || len - off < 4)
		return AEGIS_EPARSE;
	size_t qend = off + 4;
	off = qend;
	size_t opt_off = 0, opt_len = 0;
	unsigned total = (unsigned)rd16(msg + 6) + rd16(msg + 8) + rd16(msg + 10);
	for (unsigned i = 0; i < total; i++) {
		struct rr rr;
		rc = walk_rr(msg, len, &off, &rr);
		if (rc < 0)
			return rc;
		if (rr.type == T_OPT && rr.root_owner && opt_len == 0) {
			opt_off = rr.start;
			opt_len = rr.end - rr.start;
		}
	}
	/* The OPT keeps its options only if they fit; an OPT with no room is left out rather than cut. */
	return write_truncated(msg, limit, msg, qend, msg + opt_off, opt_len);
}
