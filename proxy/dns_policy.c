/* DNS security controls: see dns_policy.h and docs/security.md. */
#include "dns_policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dns_name.h"
#include "metrics.h"
#include "dns_wire.h"

#define TOKEN         1000000000ull /* one token in bucket units: tokens are counted in 1e-9 */
#define RRL_WAYS      4             /* a source's bucket lives in one of 4 slots of its set */
#define MAX_LINE      1024
#define MAX_FILE      (64u << 20)
#define RULE_EXACT    0x1u /* block exactly this name */
#define RULE_SUB      0x2u /* block this name and everything below */
#define RULE_EXACT_OK 0x4u /* exception for exactly this name */
#define RULE_SUB_OK   0x8u /* exception for this subtree */

struct rrl_bucket {
	uint8_t key[16];
	uint8_t family;   /* 0: free */
	uint32_t limited; /* over-limit queries so far: every rrl_slip-th one slips */
	uint64_t tokens;  /* in TOKEN units */
	uint64_t last_ns;
};

struct bl_slot {
	uint32_t hash;
	uint32_t off; /* into names */
	uint8_t len;  /* 0: free slot (a wire name is at least 1 byte) */
	uint8_t flags;
};

struct aegis_blocklist {
	struct bl_slot *slots;
	size_t mask;
	uint8_t *names;
	size_t names_len, names_cap;
	size_t n_rules;
};

struct aegis_policy {
	struct aegis_policy_opts o;
	struct aegis_policy_cidr allow[AEGIS_POLICY_MAX_CIDRS];
	struct aegis_policy_cidr local[AEGIS_POLICY_MAX_LOCAL];
	size_t n_local;
	struct rrl_bucket *rrl;
	size_t rrl_mask;   /* table size - 1 */
	uint64_t rrl_cap;  /* burst in TOKEN units */
	uint64_t rrl_fill; /* ns for an empty bucket to fill: longer gaps are a full bucket */
	uint32_t seed;     /* hash seed: a client cannot aim its address at another's bucket set */
	struct aegis_blocklist *bl;
	struct aegis_policy_stats st;
};

/* ---- addresses ---- */

/* The address bytes of sa as (family, 4 or 16 bytes), v4-mapped IPv6 folded to IPv4. */
static int addr_of(const struct sockaddr *sa, uint8_t *family, const uint8_t **bytes)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		*bytes = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			*family = AF_INET;
			*bytes = a->s6_addr + 12;
		} else {
			*family = AF_INET6;
			*bytes = a->s6_addr;
		}
		return 0;
	}
	return -1;
}

static bool cidr_has(const struct aegis_policy_cidr *c, uint8_t family, const uint8_t *a)
{
	if (c->family != family)
		return false;
	unsigned bits = c->prefix, i = 0;
	for (; bits >= 8; bits -= 8, i++)
		if (c->addr[i] != a[i])
			return false;
	if (bits == 0)
		return true;
	uint8_t m = (uint8_t)(0xFFu << (8 - bits));
	return (c->addr[i] & m) == (a[i] & m);
}

int aegis_policy_cidr_parse(const char *s, struct aegis_policy_cidr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	if (hlen == 0 || hlen >= sizeof(host))
		return AEGIS_EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(out, 0, sizeof(*out));
	unsigned max;
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return AEGIS_EINVAL;
	}
	unsigned long prefix = max;
	if (slash != NULL) {
		char *end;
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end != '\0' || slash[1] == '-' || prefix > max)
			return AEGIS_EINVAL;
	}
	out->prefix = (uint8_t)prefix;
	/* Clear the host bits so that "10.1.2.3/8" means 10.0.0.0/8, as ip(8) reads it. */
	for (unsigned bit = (unsigned)prefix; bit < max; bit++)
		out->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	return 0;
}

bool aegis_policy_acl_allows(const struct aegis_policy *p, const struct sockaddr *sa)
{
	uint8_t family;
	const uint8_t *a;
	if (addr_of(sa, &family, &a) != 0)
		return false;
	/* Loopback first: it is what every query of the pod's own resolver looks like. */
	if (family == AF_INET && a[0] == 127)
		return true;
	if (family == AF_INET6 && IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)(const void *)a))
		return true;
	for (size_t i = 0; i < p->n_local; i++)
		if (cidr_has(&p->local[i], family, a))
			return true;
	for (size_t i = 0; i < p->o.n_allow; i++)
		if (cidr_has(&p->allow[i], family, a))
			return true;
	return false;
}

int aegis_policy_set_local(struct aegis_policy *p, const struct aegis_policy_cidr *addrs, size_t n)
{
	size_t k = n < AEGIS_POLICY_MAX_LOCAL ? n : AEGIS_POLICY_MAX_LOCAL;
	memcpy(p->local, addrs, k * sizeof(*addrs));
	p->n_local = k;
	return k == n ? 0 : AEGIS_ELIMIT;
}

/* ---- rate limiting ---- */

static uint32_t addr_hash(uint32_t seed, uint8_t family, const uint8_t *a)
{
	uint32_t h = 2166136261u ^ seed;
	size_t n = family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < n; i++) {
		h ^= a[i];
		h *= 16777619u;
	}
	h ^= h >> 15; /* FNV's low bits are weak; the set index uses them */
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h;
}

/* Finds or makes the bucket for the address. A full set recycles its least recently used bucket: the
 * newcomer starts with a full burst, so a table too small for the clients only makes the limit looser,
 * never stricter (no innocent client is limited because of a collision). */
static struct rrl_bucket *rrl_bucket(struct aegis_policy *p, uint8_t family, const uint8_t *a, uint64_t now)
{
	size_t n = family == AF_INET ? 4 : 16;
	size_t base = addr_hash(p->seed, family, a) & p->rrl_mask & ~(size_t)(RRL_WAYS - 1);
	struct rrl_bucket *free_b = NULL, *oldest = NULL;
	for (size_t i = 0; i < RRL_WAYS; i++) {
		struct rrl_bucket *b = &p->rrl[base + i];
		if (b->family == family && memcmp(b->key, a, n) == 0)
			return b;
		if (b->family == 0) {
			if (free_b == NULL)
				free_b = b;
		} else if (oldest == NULL || b->last_ns < oldest->last_ns) {
			oldest = b;
		}
	}
	struct rrl_bucket *victim = free_b ? free_b : oldest;
	if (victim->family != 0)
		p->st.rrl_evictions++;
	memset(victim, 0, sizeof(*victim));
	victim->family = family;
	memcpy(victim->key, a, n);
	victim->tokens = p->rrl_cap;
	victim->last_ns = now;
	return victim;
}

static enum aegis_policy_action rrl_check(struct aegis_policy *p, uint8_t family, const uint8_t *a,
                                          uint64_t now)
{
	struct rrl_bucket *b = rrl_bucket(p, family, a, now);
	if (now > b->last_ns) {
		uint64_t dt = now - b->last_ns;
		/* Past the fill time the bucket is full; capping dt first keeps dt * qps from overflowing. */
		if (dt >= p->rrl_fill)
			b->tokens = p->rrl_cap;
		else
			b->tokens += dt * p->o.rrl_qps;
		if (b->tokens > p->rrl_cap)
			b->tokens = p->rrl_cap;
		b->last_ns = now;
	}
	if (b->tokens >= TOKEN) {
		b->tokens -= TOKEN;
		return AEGIS_POLICY_PASS;
	}
	b->limited++;
	if (p->o.rrl_slip != 0 && b->limited % p->o.rrl_slip == 0) {
		p->st.rrl_slipped++;
		return AEGIS_POLICY_SLIP;
	}
	p->st.rrl_dropped++;
	return AEGIS_POLICY_DROP;
}

enum aegis_policy_action aegis_policy_check_source(struct aegis_policy *p, const struct sockaddr *sa,
                                                   bool tcp, uint64_t now_ns)
{
	if (!aegis_policy_acl_allows(p, sa)) {
		p->st.acl_denied++;
		return p->o.deny_drop ? AEGIS_POLICY_DROP : AEGIS_POLICY_REFUSE;
	}
	if (tcp || p->o.rrl_qps == 0)
		return AEGIS_POLICY_PASS;
	uint8_t family;
	const uint8_t *a;
	if (addr_of(sa, &family, &a) != 0)
		return AEGIS_POLICY_PASS;
	return rrl_check(p, family, a, now_ns);
}

/* ---- blocklist ---- */

static struct bl_slot *bl_find(const struct aegis_blocklist *bl, const uint8_t *name, size_t len, uint32_t h)
{
	for (size_t i = h & bl->mask;; i = (i + 1) & bl->mask) {
		struct bl_slot *s = &bl->slots[i];
		if (s->len == 0)
			return s; /* the free slot where it would go */
		if (s->hash == h && s->len == len && memcmp(bl->names + s->off, name, len) == 0)
			return s;
	}
}

uint8_t aegis_policy_check_name(struct aegis_policy *p, const uint8_t *lname, size_t len)
{
	const struct aegis_blocklist *bl = p->bl;
	if (bl == NULL || len == 0 || len > AEGIS_DNS_MAX_NAME)
		return 0;
	/* From the whole name up to the root: the first (longest) name with a rule decides. */
	for (size_t off = 0; off < len;) {
		const struct bl_slot *s =
		        bl_find(bl, lname + off, len - off, aegis_dns_name_hash(lname + off, len - off));
		if (s->len != 0) {
			unsigned f = s->flags;
			if (off > 0)
				f &= RULE_SUB_OK | RULE_SUB; /* exact rules are for the whole name only */
			else if (f & (RULE_EXACT_OK | RULE_EXACT))
				f &= RULE_EXACT_OK | RULE_EXACT; /* an exact rule beats a subtree rule */
			if (f & (RULE_EXACT_OK | RULE_SUB_OK)) {
				p->st.allowed_by_exception++;
				return 0;
			}
			if (f & (RULE_EXACT | RULE_SUB)) {
				p->st.blocked++;
				return p->o.block_answer == AEGIS_POLICY_BLOCK_REFUSED ? AEGIS_RCODE_REFUSED
				                                                       : AEGIS_RCODE_NXDOMAIN;
			}
		}
		if (lname[off] == 0)
			break;
		off += 1u + lname[off];
	}
	return 0;
}

static int bl_add(struct aegis_blocklist *bl, const uint8_t *name, size_t len, unsigned flag)
{
	uint32_t h = aegis_dns_name_hash(name, len);
	struct bl_slot *s = bl_find(bl, name, len, h);
	if (s->len == 0) {
		if (bl->names_len + len > bl->names_cap) {
			size_t cap = bl->names_cap ? bl->names_cap * 2 : 4096;
			while (cap < bl->names_len + len)
				cap *= 2;
			uint8_t *nb = realloc(bl->names, cap);
			if (nb == NULL)
				return AEGIS_ENOMEM;
			bl->names = nb;
			bl->names_cap = cap;
		}
		memcpy(bl->names + bl->names_len, name, len);
		*s = (struct bl_slot){.hash = h, .off = (uint32_t)bl->names_len, .len = (uint8_t)len};
		bl->names_len += len;
	}
	s->flags |= (uint8_t)flag;
	bl->n_rules++;
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One rule (comment and surrounding blanks already removed) into bl. */
static int parse_rule(struct aegis_blocklist *bl, const char *s, size_t n, const char *file, int line,
                      struct aegis_diag *diag)
{
	char buf[MAX_LINE + 1];
	uint8_t wire[AEGIS_DNS_NAME_BUF];
	bool allow = false, sub = false;
	const char *orig = s;
	size_t orig_n = n;
	if (s[0] == '!') {
		allow = true;
		s++;
		n--;
	}
	bool root = false;
	if (n == 1 && s[0] == '*') {
		sub = root = true;
	} else if (n >= 2 && s[0] == '*' && s[1] == '.') {
		sub = true;
		s += 2;
		n -= 2;
	} else if (n >= 1 && s[0] == '.') {
		sub = true;
		s++;
		n--;
	}
	int wlen = 1;
	wire[0] = 0;
	if (!root) {
		if (n == 0 || s[0] == '.')
			goto bad;
		for (size_t i = 0; i < n; i++)
			if (is_space(s[i]) || s[i] == '*' || s[i] == '!' || s[i] == '/' || s[i] == '\\')
				goto bad;
		memcpy(buf, s, n);
		buf[n] = '\0';
		wlen = aegis_dns_name_from_str(buf, wire);
		if (wlen < 0)
			goto bad;
	}
	if (bl->n_rules >= AEGIS_POLICY_MAX_RULES)
		return aegis_diag_set(diag, AEGIS_ELIMIT, file, line, 1, "more than %u rules",
		                      AEGIS_POLICY_MAX_RULES);
	unsigned flag = allow ? (sub ? RULE_SUB_OK : RULE_EXACT_OK) : (sub ? RULE_SUB : RULE_EXACT);
	return bl_add(bl, wire, (size_t)wlen, flag);
bad:
	return aegis_diag_set(diag, AEGIS_EPARSE, file, line, 1,
	                      "bad rule '%.*s' (want NAME, *.NAME, .NAME, * or !RULE)",
	                      (int)(orig_n > 200 ? 200 : orig_n), orig);
}

int aegis_policy_blocklist_parse(const char *text, size_t len, const char *file, struct aegis_blocklist **out,
                                 struct aegis_diag *diag)
{
	int rc = AEGIS_ENOMEM;
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	struct aegis_blocklist *bl = calloc(1, sizeof(*bl));
	if (bl == NULL)
		return AEGIS_ENOMEM;
	/* At most one name per line: a table twice that size never fills (load <= 1/2). */
	size_t slots = 16;
	while (slots < 2 * lines && slots < 4 * (size_t)AEGIS_POLICY_MAX_RULES)
		slots *= 2;
	bl->slots = calloc(slots, sizeof(*bl->slots));
	if (bl->slots == NULL)
		goto out;
	bl->mask = slots - 1;
	int line = 0;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		const char *s = text + pos;
		size_t n = end - pos;
		pos = end + 1;
		line++;
		if (n > MAX_LINE) {
			rc = aegis_diag_set(diag, AEGIS_EPARSE, file, line, 1, "line longer than %d bytes",
			                    MAX_LINE);
			goto out;
		}
		const char *hash = memchr(s, '#', n);
		if (hash)
			n = (size_t)(hash - s);
		while (n > 0 && is_space(s[0])) {
			s++;
			n--;
		}
		while (n > 0 && is_space(s[n - 1]))
			n--;
		if (n == 0)
			continue;
		if (memchr(s, '\0', n) != NULL) {
			rc = aegis_diag_set(diag, AEGIS_EPARSE, file, line, 1, "NUL byte in rule");
			goto out;
		}
		rc = parse_rule(bl, s, n, file, line, diag);
		if (rc != 0)
			goto out;
	}
	*out = bl;
	return 0;
out:
	if (rc == AEGIS_ENOMEM)
		(void)aegis_diag_set(diag, AEGIS_ENOMEM, file, 0, 0, "out of memory");
	aegis_policy_blocklist_free(bl);
	return rc;
}

int aegis_policy_blocklist_load(const char *path, struct aegis_blocklist **out, struct aegis_diag *diag)
{
	int rc;
	char *text = NULL;
	size_t len = 0, cap = 0;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
	for (;;) {
		if (len == cap) {
			if (cap >= MAX_FILE) {
				rc = aegis_diag_set(diag, AEGIS_ELIMIT, path, 0, 0, "larger than %u bytes",
				                    MAX_FILE);
				goto out;
			}
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(text, cap);
			if (nb == NULL) {
				rc = aegis_diag_set(diag, AEGIS_ENOMEM, path, 0, 0, "out of memory");
				goto out;
			}
			text = nb;
		}
		size_t r = fread(text + len, 1, cap - len, f);
		len += r;
		if (r == 0) {
			if (ferror(f)) {
				rc = aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "read error");
				goto out;
			}
			break;
		}
	}
	rc = aegis_policy_blocklist_parse(text ? text : "", len, path, out, diag);
out:
	free(text);
	fclose(f);
	return rc;
}

size_t aegis_policy_blocklist_rules(const struct aegis_blocklist *bl)
{
	return bl ? bl->n_rules : 0;
}

void aegis_policy_blocklist_free(struct aegis_blocklist *bl)
{
	if (bl == NULL)
		return;
	free(bl->slots);
	free(bl->names);
	free(bl);
}

void aegis_policy_set_blocklist(struct aegis_policy *p, struct aegis_blocklist *bl)
{
	if (p->bl != NULL && bl != NULL)
		p->st.blocklist_reloads++;
	aegis_policy_blocklist_free(p->bl);
	p->bl = bl;
	p->st.blocklist_rules = aegis_policy_blocklist_rules(bl);
}

/* ---- life cycle ---- */

int aegis_policy_new(const struct aegis_policy_opts *o, struct aegis_policy **out)
{
	if (o->n_allow > AEGIS_POLICY_MAX_CIDRS || o->rrl_table > AEGIS_POLICY_RRL_MAX_TAB ||
	    (o->n_allow > 0 && o->allow == NULL))
		return AEGIS_EINVAL;
	struct aegis_policy *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return AEGIS_ENOMEM;
	p->o = *o;
	if (o->n_allow)
		memcpy(p->allow, o->allow, o->n_allow * sizeof(*o->allow));
	p->o.allow = NULL;
	if (p->o.rrl_qps != 0) {
		if (p->o.rrl_burst == 0)
			p->o.rrl_burst = p->o.rrl_qps;
		size_t n = RRL_WAYS;
		while (n < (o->rrl_table ? o->rrl_table : AEGIS_POLICY_RRL_DEFAULT_TAB))
			n *= 2;
		p->rrl = calloc(n, sizeof(*p->rrl));
		if (p->rrl == NULL) {
			free(p);
			return AEGIS_ENOMEM;
		}
		p->rrl_mask = n - 1;
		p->rrl_cap = (uint64_t)p->o.rrl_burst * TOKEN;
		p->rrl_fill = p->rrl_cap / p->o.rrl_qps + 1;
	}
	if (getrandom(&p->seed, sizeof(p->seed), GRND_NONBLOCK) != (ssize_t)sizeof(p->seed))
		p->seed = (uint32_t)(uintptr_t)p; /* early boot: still differs per process (ASLR) */
	*out = p;
	return 0;
}

void aegis_policy_free(struct aegis_policy *p)
{
	if (p == NULL)
		return;
	aegis_policy_blocklist_free(p->bl);
	free(p->rrl);
	free(p);
}

const struct aegis_policy_stats *aegis_policy_stats(const struct aegis_policy *p)
{
	return &p->st;
}

void aegis_policy_metrics(const struct aegis_policy *p, struct aegis_metrics *m)
{
	static const struct {
		const char *name, *help;
		size_t off;
		enum aegis_metric_type type;
	} fams[] = {
	        {"aegis_policy_acl_denied_total", "Queries from sources outside the ACL.",
	         offsetof(struct aegis_policy_stats, acl_denied), AEGIS_METRIC_COUNTER},
	        {"aegis_policy_rrl_dropped_total", "Queries over the per-client rate limit, dropped.",
	         offsetof(struct aegis_policy_stats, rrl_dropped), AEGIS_METRIC_COUNTER},
	        {"aegis_policy_rrl_slipped_total", "Queries over the rate limit answered empty with TC=1.",
	         offsetof(struct aegis_policy_stats, rrl_slipped), AEGIS_METRIC_COUNTER},
	        {"aegis_policy_rrl_evictions_total", "Rate-limit buckets recycled for a new client.",
	         offsetof(struct aegis_policy_stats, rrl_evictions), AEGIS_METRIC_COUNTER},
	        {"aegis_policy_blocked_total", "Queries answered by a blocklist rule.",
	         offsetof(struct aegis_policy_stats, blocked), AEGIS_METRIC_COUNTER},
	        {"aegis_policy_blocklist_exceptions_total", "Queries let through by a ! exception rule.",
	         offsetof(struct aegis_policy_stats, allowed_by_exception), AEGIS_METRIC_COUNTER},
	        {"aegis_policy_blocklist_reloads_total", "Blocklists installed after the first.",
	         offsetof(struct aegis_policy_stats, blocklist_reloads), AEGIS_METRIC_COUNTER},
	        {"aegis_policy_blocklist_rules", "Rules in the current blocklist.",
	         offsetof(struct aegis_policy_stats, blocklist_rules), AEGIS_METRIC_GAUGE},
	};
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		uint64_t v;
		memcpy(&v, (const char *)&p->st + fams[i].off, sizeof(v));
		aegis_metrics_family(m, fams[i].name, fams[i].type, fams[i].help);
		aegis_metrics_uint(m, NULL, 0, v);
	}
}
