/* DNSSEC validation: see dnssec.h and docs/security.md.
 *
 * A validation (a job) is re-evaluated from scratch against the key cache every time a fetch completes:
 * evaluate() walks each record set's signer (or, for unsigned data, its owner) from the closest trust
 * anchor down, one label at a time, consulting the key cache; the first missing link becomes the next
 * fetch (DNSKEY of a zone with a trusted DS or anchor, or DS of the next name down, verified with the
 * parent zone's keys). A fetch answer only ever adds a proven fact to the key cache (validated DNSKEY
 * set, validated DS set, "not a zone cut", "insecure delegation", or "bogus"), so evaluation is a pure
 * function of the answer, the key cache and the time, and a job cannot loop: max_fetches bounds it.
 *
 * One file for one concern (the chain of trust), larger than the house median: the key cache, the walk
 * and the proofs share the kentry/status types, and splitting them would only export those. The message
 * rewrites around validation live in dnssec_msg.c. */
#include "dnssec.h"

#include <errno.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aegis/log.h"

#define HDR          12
#define KEY_BUCKETS  2048
#define LOGGED_SLOTS 1024
#define EDNS_PAYLOAD 1232
/* CNAMEs followed in one answer */
#define MAX_CHAIN 16

enum kstate { K_KEYS, K_DS, K_NOTCUT, K_INSECURE, K_BOGUS };

/* A proven fact about one name, valid until expire. */
struct kentry {
	struct kentry *hnext;
	struct kentry *older, *newer; /* insertion order: the oldest is dropped when the cache is full */
	ldns_rdf *name;               /* canonical (lower case) */
	uint32_t hash;
	enum kstate state;
	int64_t expire;
	ldns_rr_list *rrs; /* K_KEYS: the DNSKEY set; K_DS: the DS set; else NULL */
	const char *reason;
};

/* Trust anchors of one owner name. */
struct anchor {
	ldns_rdf *name;
	ldns_rr_list *ds;
	ldns_rr_list *keys;
};

struct aegis_dnssec_job {
	struct aegis_dnssec *v;
	struct aegis_dnssec_job *prev, *next;
	ldns_pkt *pkt;
	aegis_dnssec_done_cb cb;
	void *ctx;
	void *handle;
	bool fetching;
	ldns_rdf *fname; /* what is being fetched */
	ldns_rr_type ftype;
	ldns_rdf *fzone; /* DS fetches: the zone whose keys must sign the answer */
	unsigned fetches;
	const char *reason;
};

struct aegis_dnssec {
	struct aegis_dnssec_opts o;
	struct aegis_dnssec_fetcher f;
	struct anchor *anchors;
	size_t n_anchors;
	struct kentry *buckets[KEY_BUCKETS];
	struct kentry *oldest, *newest;
	size_t n_keys;
	struct aegis_dnssec_job *jobs;
	uint64_t logged[LOGGED_SLOTS];
	struct aegis_dnssec_stats st;
};

enum {
	S_SECURE = AEGIS_DNSSEC_SECURE,
	S_INSECURE = AEGIS_DNSSEC_INSECURE,
	S_BOGUS = AEGIS_DNSSEC_BOGUS,
	S_INDET = AEGIS_DNSSEC_INDETERMINATE,
	S_NEED
};

/* The outcome of one step of evaluation; a NEED carries the fetch to make (owned names). */
struct status {
	int st;
	struct kentry *zone; /* S_SECURE: the closest secure zone */
	const char *reason;
	ldns_rdf *need_name, *need_zone;
	ldns_rr_type need_type;
};

static const char *const result_names[] = {"secure", "insecure", "bogus", "indeterminate"};

const char *aegis_dnssec_result_name(enum aegis_dnssec_result r)
{
	return (unsigned)r < AEGIS_DNSSEC_N_RESULTS ? result_names[r] : "?";
}

/* ---- names ---------------------------------------------------------------------------------------- */

static uint32_t name_hash(const ldns_rdf *n)
{
	uint32_t h = 2166136261u;
	const uint8_t *p = ldns_rdf_data(n);
	for (size_t i = 0; i < ldns_rdf_size(n); i++) {
		uint8_t c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c + 32);
		h = (h ^ c) * 16777619u;
	}
	return h;
}

static bool name_eq(const ldns_rdf *a, const ldns_rdf *b)
{
	return ldns_dname_compare(a, b) == 0;
}

/* a equals b or lies below it */
static bool name_under(const ldns_rdf *a, const ldns_rdf *b)
{
	return name_eq(a, b) || ldns_dname_is_subdomain(a, b);
}

static ldns_rdf *canon(const ldns_rdf *n)
{
	ldns_rdf *c = ldns_rdf_clone(n);
	if (c != NULL)
		ldns_dname2canonical(c);
	return c;
}

static void name_str(const ldns_rdf *n, char *buf, size_t len)
{
	char *s = n ? ldns_rdf2str(n) : NULL;
	snprintf(buf, len, "%s", s ? s : "?");
	free(s);
}

/* ---- key cache ------------------------------------------------------------------------------------ */

static void kentry_free(struct kentry *e)
{
	ldns_rdf_deep_free(e->name);
	if (e->rrs)
		ldns_rr_list_deep_free(e->rrs);
	free(e);
}

static void kremove(struct aegis_dnssec *v, struct kentry *e)
{
	struct kentry **pp = &v->buckets[e->hash % KEY_BUCKETS];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		v->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		v->newest = e->older;
	v->n_keys--;
	kentry_free(e);
}

static struct kentry *kget(struct aegis_dnssec *v, const ldns_rdf *name, int64_t now)
{
	uint32_t h = name_hash(name);
	for (struct kentry *e = v->buckets[h % KEY_BUCKETS]; e != NULL; e = e->hnext) {
		if (e->hash != h || !name_eq(e->name, name))
			continue;
		if (now >= e->expire) {
			kremove(v, e);
			return NULL;
		}
		v->st.key_cache_hits++;
		return e;
	}
	return NULL;
}

/* Records a fact about name (rrs is taken over), replacing what was known. */
static void kput(struct aegis_dnssec *v, const ldns_rdf *name, enum kstate state, ldns_rr_list *rrs,
                 uint32_t ttl, int64_t now, const char *reason)
{
	uint32_t h = name_hash(name);
	for (struct kentry *e = v->buckets[h % KEY_BUCKETS]; e != NULL; e = e->hnext)
		if (e->hash == h && name_eq(e->name, name)) {
			kremove(v, e);
			break;
		}
	while (v->n_keys >= v->o.max_keys && v->oldest != NULL)
		kremove(v, v->oldest);
	struct kentry *e = calloc(1, sizeof(*e));
	ldns_rdf *n = canon(name);
	if (e == NULL || n == NULL) {
		free(e);
		ldns_rdf_deep_free(n);
		if (rrs)
			ldns_rr_list_deep_free(rrs);
		return; /* not remembered: the job will fetch again, bounded by max_fetches */
	}
	if (ttl > v->o.max_key_ttl)
		ttl = v->o.max_key_ttl;
	e->name = n;
	e->hash = h;
	e->state = state;
	e->rrs = rrs;
	e->expire = now + (ttl ? ttl : 1);
	e->reason = reason;
	e->hnext = v->buckets[h % KEY_BUCKETS];
	v->buckets[h % KEY_BUCKETS] = e;
	e->older = v->newest;
	if (v->newest)
		v->newest->newer = e;
	else
		v->oldest = e;
	v->newest = e;
	v->n_keys++;
}

static uint32_t min_ttl(const ldns_rr_list *l, uint32_t ttl)
{
	for (size_t i = 0; l != NULL && i < ldns_rr_list_rr_count(l); i++) {
		uint32_t t = ldns_rr_ttl(ldns_rr_list_rr(l, i));
		if (t < ttl)
			ttl = t;
	}
	return ttl;
}

/* ---- record selection ----------------------------------------------------------------------------- */

/* The records of section with this owner and type (RRSIG: those covering `type`), as a list that does
 * not own them (free with ldns_rr_list_free). */
static ldns_rr_list *select_rrs(const ldns_rr_list *section, const ldns_rdf *owner, ldns_rr_type type,
                                bool sigs)
{
	ldns_rr_list *out = ldns_rr_list_new();
	for (size_t i = 0; out != NULL && section != NULL && i < ldns_rr_list_rr_count(section); i++) {
		ldns_rr *rr = ldns_rr_list_rr(section, i);
		if (owner != NULL && !name_eq(ldns_rr_owner(rr), owner))
			continue;
		if (sigs) {
			if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_RRSIG ||
			    ldns_rr_rrsig_typecovered(rr) == NULL ||
			    ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)) != type)
				continue;
		} else if (ldns_rr_get_type(rr) != type) {
			continue;
		}
		ldns_rr_list_push_rr(out, rr);
	}
	return out;
}

static ldns_rr_list *select_type(const ldns_rr_list *section, ldns_rr_type type)
{
	return select_rrs(section, NULL, type, false);
}

/* ---- the chain walk ------------------------------------------------------------------------------- */

static const struct anchor *closest_anchor(const struct aegis_dnssec *v, const ldns_rdf *name)
{
	const struct anchor *best = NULL;
	for (size_t i = 0; i < v->n_anchors; i++) {
		const struct anchor *a = &v->anchors[i];
		if (name_under(name, a->name) &&
		    (best == NULL || ldns_dname_label_count(a->name) > ldns_dname_label_count(best->name)))
			best = a;
	}
	return best;
}

static void need(struct status *s, const ldns_rdf *name, ldns_rr_type type, const ldns_rdf *zone)
{
	s->st = S_NEED;
	s->need_name = canon(name);
	s->need_type = type;
	s->need_zone = zone ? canon(zone) : NULL;
}

/* The closest secure zone of name, walking down from its closest anchor through the key cache; or
 * insecure / indeterminate / bogus, or the fetch that would take the walk one step further. */
static void walk(struct aegis_dnssec *v, const ldns_rdf *name, int64_t now, struct status *s)
{
	memset(s, 0, sizeof(*s));
	const struct anchor *a = closest_anchor(v, name);
	if (a == NULL) {
		s->st = S_INDET;
		return;
	}
	struct kentry *zone = kget(v, a->name, now);
	if (zone == NULL) {
		need(s, a->name, LDNS_RR_TYPE_DNSKEY, NULL);
		return;
	}
	if (zone->state != K_KEYS) {
		s->st = S_BOGUS;
		s->reason = zone->reason ? zone->reason : "trust anchor DNSKEY set not validated";
		return;
	}
	uint8_t la = ldns_dname_label_count(a->name), ln = ldns_dname_label_count(name);
	for (uint8_t l = (uint8_t)(la + 1); l <= ln && l > la; l++) {
		ldns_rdf *c = ldns_dname_clone_from(name, (uint16_t)(ln - l));
		if (c == NULL) {
			s->st = S_BOGUS;
			s->reason = "out of memory";
			return;
		}
		struct kentry *e = kget(v, c, now);
		if (e == NULL) {
			need(s, c, LDNS_RR_TYPE_DS, zone->name);
			ldns_rdf_deep_free(c);
			return;
		}
		switch (e->state) {
		case K_NOTCUT: break;
		case K_INSECURE: s->st = S_INSECURE; break;
		case K_BOGUS:
			s->st = S_BOGUS;
			s->reason = e->reason;
			break;
		case K_DS: need(s, c, LDNS_RR_TYPE_DNSKEY, NULL); break;
		case K_KEYS: zone = e; break;
		}
		ldns_rdf_deep_free(c);
		if (s->st != S_SECURE)
			return;
	}
	s->st = S_SECURE;
	s->zone = zone;
}

/* Why ldns_verify_time() refused, in the words of the bogus log line. */
static const char *sig_reason(ldns_status rc, const char *what)
{
	if (rc == LDNS_STATUS_CRYPTO_SIG_EXPIRED)
		return "signature expired";
	if (rc == LDNS_STATUS_CRYPTO_SIG_NOT_INCEPTED)
		return "signature not yet valid";
	return what;
}

/* Verifies rrset (owner, type) with its signatures sigs: the signer's zone must be secure and be the
 * signer itself, and one signature must verify with its keys at now. *wildcard is set to the owner
 * when a signature shows wildcard expansion. */
static void check_signed(struct aegis_dnssec *v, const ldns_rr_list *rrset, const ldns_rr_list *sigs,
                         const ldns_rdf *owner, int64_t now, const ldns_rdf **wildcard, struct status *s)
{
	const ldns_rdf *signer = ldns_rr_rrsig_signame(ldns_rr_list_rr(sigs, 0));
	if (signer == NULL || !name_under(owner, signer)) {
		memset(s, 0, sizeof(*s));
		s->st = S_BOGUS;
		s->reason = "signer is not an ancestor of the owner";
		return;
	}
	walk(v, signer, now, s);
	if (s->st != S_SECURE)
		return;
	if (!name_eq(s->zone->name, signer)) {
		s->st = S_BOGUS;
		s->reason = "signer is not a zone with a validated DNSKEY set";
		return;
	}
	ldns_status rc = ldns_verify_time(rrset, sigs, s->zone->rrs, (time_t)now, NULL);
	if (rc != LDNS_STATUS_OK) {
		s->st = S_BOGUS;
		s->reason = sig_reason(rc, "signature does not verify");
		return;
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(sigs); i++) {
		const ldns_rdf *labels = ldns_rr_rrsig_labels(ldns_rr_list_rr(sigs, i));
		if (labels != NULL && ldns_rdf2native_int8(labels) < ldns_dname_label_count(owner) &&
		    !(ldns_dname_label_count(owner) > 0 && ldns_rdf_data(owner)[0] == 1 &&
		      ldns_rdf_data(owner)[1] == '*'))
			*wildcard = owner;
	}
}

/* An rrset without signatures: fine only where the owner is provably unsigned (or under no anchor). */
static void check_unsigned(struct aegis_dnssec *v, const ldns_rdf *owner, int64_t now, const char *why,
                           struct status *s)
{
	walk(v, owner, now, s);
	if (s->st == S_SECURE) {
		s->st = S_BOGUS;
		s->reason = why;
	}
}

/* Combines the status of one part into the answer's overall one; returns true when evaluation stops
 * (a fetch is needed or the answer is bogus). */
static bool merge(int *overall, struct status *part, struct status *out)
{
	if (part->st == S_NEED || part->st == S_BOGUS) {
		*out = *part;
		return true;
	}
	if (*overall == S_SECURE)
		*overall = part->st;
	return false;
}

/* An unsigned CNAME that a signed DNAME in the same section synthesises (RFC 6672 5.3.1: it carries no
 * signature): true when its target is exactly the owner with the DNAME's suffix replaced. The DNAME
 * itself is verified as a record set of its own. */
static bool synthesized_cname(const ldns_rr_list *section, const ldns_rr *cname)
{
	const ldns_rdf *target = ldns_rr_rdf(cname, 0);
	if (target == NULL)
		return false;
	for (size_t i = 0; i < ldns_rr_list_rr_count(section); i++) {
		const ldns_rr *d = ldns_rr_list_rr(section, i);
		if (ldns_rr_get_type(d) != LDNS_RR_TYPE_DNAME || ldns_rr_rdf(d, 0) == NULL ||
		    !ldns_dname_is_subdomain(ldns_rr_owner(cname), ldns_rr_owner(d)))
			continue;
		char *owner = ldns_rdf2str(ldns_rr_owner(cname)), *downer = ldns_rdf2str(ldns_rr_owner(d));
		char *dtarget = ldns_rdf2str(ldns_rr_rdf(d, 0)), *got = ldns_rdf2str(target);
		bool ok = false;
		if (owner && downer && dtarget && got && strlen(owner) > strlen(downer)) {
			size_t prefix = strlen(owner) - strlen(downer);
			char want[2048];
			int n = snprintf(want, sizeof(want), "%.*s%s", (int)prefix, owner,
			                 strcmp(dtarget, ".") == 0 ? "" : dtarget);
			ok = n > 0 && (size_t)n < sizeof(want) && strcasecmp(want, got) == 0;
		}
		free(owner);
		free(downer);
		free(dtarget);
		free(got);
		if (ok)
			return true;
	}
	return false;
}

/* Verifies every record set of section (except RRSIGs and, in the authority section, NS/DS-less
 * referral data, which the parent does not sign). */
static bool check_section(struct aegis_dnssec *v, const ldns_rr_list *section, bool authority, int64_t now,
                          int *overall, const ldns_rdf **wildcard, struct status *out)
{
	size_t n = section ? ldns_rr_list_rr_count(section) : 0;
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(section, i);
		ldns_rr_type t = ldns_rr_get_type(rr);
		if (t == LDNS_RR_TYPE_RRSIG || (authority && t == LDNS_RR_TYPE_NS))
			continue;
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++) {
			ldns_rr *o = ldns_rr_list_rr(section, k);
			seen = ldns_rr_get_type(o) == t && name_eq(ldns_rr_owner(o), ldns_rr_owner(rr));
		}
		if (seen)
			continue;
		ldns_rr_list *set = select_rrs(section, ldns_rr_owner(rr), t, false);
		ldns_rr_list *sigs = select_rrs(section, ldns_rr_owner(rr), t, true);
		struct status s;
		if (set == NULL || sigs == NULL) {
			memset(&s, 0, sizeof(s));
			s.st = S_BOGUS;
			s.reason = "out of memory";
		} else if (ldns_rr_list_rr_count(sigs) == 0 && t == LDNS_RR_TYPE_CNAME && !authority &&
		           synthesized_cname(section, rr)) {
			memset(&s, 0, sizeof(s));
			s.st = S_SECURE;
		} else if (ldns_rr_list_rr_count(sigs) == 0) {
			check_unsigned(v, ldns_rr_owner(rr), now,
			               authority ? "unsigned record in the authority section of a signed zone"
			                         : "missing signatures in a signed zone",
			               &s);
		} else {
			check_signed(v, set, sigs, ldns_rr_owner(rr), now, wildcard, &s);
		}
		ldns_rr_list_free(set);
		ldns_rr_list_free(sigs);
		if (merge(overall, &s, out))
			return true;
	}
	return false;
}

/* NSEC or NSEC3 proof that (name, type) does not exist (NODATA) or that name does not exist
 * (NXDOMAIN). */
static bool denial_proven(ldns_pkt *pkt, const ldns_rdf *name, ldns_rr_type type, bool nxdomain)
{
	ldns_rr_list *auth = ldns_pkt_authority(pkt);
	ldns_rr_list *nsec = select_type(auth, LDNS_RR_TYPE_NSEC);
	ldns_rr_list *nsec3 = select_type(auth, LDNS_RR_TYPE_NSEC3);
	ldns_rr_list *sigs = select_type(auth, LDNS_RR_TYPE_RRSIG);
	ldns_rr *q = ldns_rr_new();
	bool ok = false;
	if (nsec && nsec3 && sigs && q) {
		ldns_rr_set_owner(q, canon(name));
		ldns_rr_set_type(q, type);
		ldns_rr_set_class(q, LDNS_RR_CLASS_IN);
		if (ldns_rr_list_rr_count(nsec) > 0) {
			ok = ldns_dnssec_verify_denial(q, nsec, sigs) == LDNS_STATUS_OK;
			for (size_t i = 0; ok && nxdomain && i < ldns_rr_list_rr_count(nsec); i++)
				if (name_eq(ldns_rr_owner(ldns_rr_list_rr(nsec, i)), name))
					ok = false; /* an NSEC at the name proves it exists */
		} else if (ldns_rr_list_rr_count(nsec3) > 0) {
			ok = ldns_dnssec_verify_denial_nsec3(
			             q, nsec3, sigs, nxdomain ? LDNS_RCODE_NXDOMAIN : LDNS_RCODE_NOERROR,
			             type, true) == LDNS_STATUS_OK;
		}
	}
	if (q)
		ldns_rr_free(q);
	ldns_rr_list_free(nsec);
	ldns_rr_list_free(nsec3);
	ldns_rr_list_free(sigs);
	return ok;
}

/* Hashed owner name of `name` in the NSEC3 chain of nsec3 (hash label + the NSEC3's zone). */
static ldns_rdf *nsec3_name(const ldns_rr *nsec3, const ldns_rdf *name)
{
	ldns_rdf *h = ldns_nsec3_hash_name_frm_nsec3(nsec3, name);
	ldns_rdf *zone = ldns_dname_left_chop(ldns_rr_owner(nsec3));
	if (h == NULL || zone == NULL || ldns_dname_cat(h, zone) != LDNS_STATUS_OK) {
		ldns_rdf_deep_free(h);
		ldns_rdf_deep_free(zone);
		return NULL;
	}
	ldns_rdf_deep_free(zone);
	return h;
}

/* A wildcard expansion: an NSEC/NSEC3 must show that the name itself does not exist (RFC 4035 5.3.4).
 * With NSEC3 the covering record of the next closer name is required (the closest encloser is the
 * wildcard's parent, given by the signature's label count). */
static bool wildcard_proven(ldns_pkt *pkt, const ldns_rdf *owner, uint8_t sig_labels)
{
	ldns_rr_list *auth = ldns_pkt_authority(pkt);
	bool ok = false;
	for (size_t i = 0; !ok && auth != NULL && i < ldns_rr_list_rr_count(auth); i++) {
		ldns_rr *rr = ldns_rr_list_rr(auth, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC) {
			ok = !name_eq(ldns_rr_owner(rr), owner) && ldns_nsec_covers_name(rr, owner);
		} else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC3) {
			uint8_t lo = ldns_dname_label_count(owner);
			if (sig_labels >= lo)
				continue;
			ldns_rdf *next_closer = ldns_dname_clone_from(owner, (uint16_t)(lo - sig_labels - 1));
			ldns_rdf *h = next_closer ? nsec3_name(rr, next_closer) : NULL;
			ok = h != NULL && !name_eq(h, ldns_rr_owner(rr)) && ldns_nsec_covers_name(rr, h);
			ldns_rdf_deep_free(h);
			ldns_rdf_deep_free(next_closer);
		}
	}
	return ok;
}

static uint8_t min_sig_labels(const ldns_rr_list *answer, const ldns_rdf *owner)
{
	uint8_t m = 255;
	for (size_t i = 0; answer != NULL && i < ldns_rr_list_rr_count(answer); i++) {
		ldns_rr *rr = ldns_rr_list_rr(answer, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG && name_eq(ldns_rr_owner(rr), owner) &&
		    ldns_rr_rrsig_labels(rr) != NULL && ldns_rdf2native_int8(ldns_rr_rrsig_labels(rr)) < m)
			m = ldns_rdf2native_int8(ldns_rr_rrsig_labels(rr));
	}
	return m;
}

/* One evaluation of the answer against the key cache. */
static void evaluate(struct aegis_dnssec_job *j, int64_t now, struct status *out)
{
	struct aegis_dnssec *v = j->v;
	ldns_pkt *pkt = j->pkt;
	memset(out, 0, sizeof(*out));
	ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);
	if (qrr == NULL) {
		out->st = S_BOGUS;
		out->reason = "no question";
		return;
	}
	const ldns_rdf *qname = ldns_rr_owner(qrr);
	ldns_rr_type qtype = ldns_rr_get_type(qrr);
	ldns_rr_list *answer = ldns_pkt_answer(pkt);
	int overall = S_SECURE;
	const ldns_rdf *wildcard = NULL; /* the owner of an RRset expanded from a wildcard */
	if (qtype == LDNS_RR_TYPE_RRSIG) {
		/* signatures asked for as data: nothing to verify them against as a set; passed without AD */
		out->st = S_INDET;
		return;
	}

	if (check_section(v, answer, false, now, &overall, &wildcard, out))
		return;

	/* Follow the CNAME chain to the name whose data (or absence) is the answer. */
	const ldns_rdf *final = qname;
	for (int hop = 0; hop < MAX_CHAIN; hop++) {
		const ldns_rdf *next = NULL;
		for (size_t i = 0; answer != NULL && i < ldns_rr_list_rr_count(answer); i++) {
			ldns_rr *rr = ldns_rr_list_rr(answer, i);
			if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && qtype != LDNS_RR_TYPE_CNAME &&
			    name_eq(ldns_rr_owner(rr), final) && ldns_rr_rdf(rr, 0) != NULL)
				next = ldns_rr_rdf(rr, 0);
		}
		if (next == NULL)
			break;
		final = next;
	}
	bool has_data = false;
	for (size_t i = 0; answer != NULL && i < ldns_rr_list_rr_count(answer); i++) {
		ldns_rr *rr = ldns_rr_list_rr(answer, i);
		if ((ldns_rr_get_type(rr) == qtype || qtype == LDNS_RR_TYPE_ANY) &&
		    name_eq(ldns_rr_owner(rr), final))
			has_data = true;
	}
	bool nxdomain = ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NXDOMAIN;
	if (!nxdomain && has_data && wildcard == NULL) {
		out->st = overall;
		return;
	}

	/* A denial (or a wildcard expansion): the authority section must be signed and prove it. */
	int auth_status = S_SECURE;
	ldns_rr_list *auth = ldns_pkt_authority(pkt);
	ldns_rr_list *asigs = select_type(auth, LDNS_RR_TYPE_RRSIG);
	size_t n_asigs = asigs ? ldns_rr_list_rr_count(asigs) : 0;
	ldns_rr_list_free(asigs);
	if (n_asigs == 0 && wildcard != NULL && has_data && !nxdomain) {
		/* the expansion verified, so the zone is signed: the proof must be there */
		out->st = S_BOGUS;
		out->reason = "wildcard expansion not proven";
		return;
	}
	if (n_asigs == 0) {
		struct status s;
		check_unsigned(v, final, now, "unsigned negative answer", &s);
		if (merge(&overall, &s, out))
			return;
		out->st = overall;
		return;
	}
	const ldns_rdf *unused = NULL;
	if (check_section(v, auth, true, now, &auth_status, &unused, out))
		return;
	if (auth_status == S_SECURE) {
		bool ok = (nxdomain || !has_data)
		                  ? denial_proven(pkt, final, qtype, nxdomain)
		                  : wildcard_proven(pkt, wildcard, min_sig_labels(answer, wildcard));
		if (!ok) {
			out->st = S_BOGUS;
			out->reason = (nxdomain || !has_data) ? "denial of existence not proven"
			                                      : "wildcard expansion not proven";
			return;
		}
	}
	if (overall == S_SECURE)
		overall = auth_status;
	out->st = overall;
}

/* ---- fetch answers -------------------------------------------------------------------------------- */

static bool key_matches(const ldns_rr *key, const ldns_rr_list *ds, const ldns_rr_list *anchors)
{
	for (size_t i = 0; ds != NULL && i < ldns_rr_list_rr_count(ds); i++)
		if (ldns_rr_compare_ds(key, ldns_rr_list_rr(ds, i)))
			return true;
	for (size_t i = 0; anchors != NULL && i < ldns_rr_list_rr_count(anchors); i++) {
		const ldns_rr *a = ldns_rr_list_rr(anchors, i);
		if (ldns_rr_rd_count(a) == ldns_rr_rd_count(key) && ldns_rr_rd_count(a) == 4 &&
		    ldns_rdf_compare(ldns_rr_rdf(a, 2), ldns_rr_rdf(key, 2)) == 0 &&
		    ldns_rdf_compare(ldns_rr_rdf(a, 3), ldns_rr_rdf(key, 3)) == 0)
			return true;
	}
	return false;
}

static const struct anchor *anchor_at(const struct aegis_dnssec *v, const ldns_rdf *name)
{
	for (size_t i = 0; i < v->n_anchors; i++)
		if (name_eq(v->anchors[i].name, name))
			return &v->anchors[i];
	return NULL;
}

/* A DNSKEY answer for j->fname: the set must be signed by a key that the anchor or the validated DS set
 * names. */
static void on_dnskey(struct aegis_dnssec_job *j, ldns_pkt *pkt, int64_t now)
{
	struct aegis_dnssec *v = j->v;
	const struct anchor *a = anchor_at(v, j->fname);
	const ldns_rr_list *ds = NULL, *akeys = NULL;
	if (a != NULL) {
		ds = a->ds;
		akeys = a->keys;
	} else {
		struct kentry *e = kget(v, j->fname, now);
		if (e == NULL || e->state != K_DS)
			return; /* the DS fact expired meanwhile: the next step fetches it again */
		ds = e->rrs;
	}
	ldns_rr_list *keys = select_rrs(ldns_pkt_answer(pkt), j->fname, LDNS_RR_TYPE_DNSKEY, false);
	ldns_rr_list *sigs = select_rrs(ldns_pkt_answer(pkt), j->fname, LDNS_RR_TYPE_DNSKEY, true);
	ldns_rr_list *trusted = ldns_rr_list_new();
	const char *bad = NULL;
	if (keys == NULL || sigs == NULL || trusted == NULL) {
		bad = "out of memory";
	} else if (ldns_rr_list_rr_count(keys) == 0) {
		bad = "no DNSKEY set for a zone with a DS or trust anchor";
	} else {
		for (size_t i = 0; i < ldns_rr_list_rr_count(keys); i++)
			if (key_matches(ldns_rr_list_rr(keys, i), ds, akeys))
				ldns_rr_list_push_rr(trusted, ldns_rr_list_rr(keys, i));
		if (ldns_rr_list_rr_count(trusted) == 0)
			bad = "no DNSKEY matches the DS set or trust anchor";
		else {
			ldns_status rc = ldns_verify_time(keys, sigs, trusted, (time_t)now, NULL);
			if (rc != LDNS_STATUS_OK)
				bad = sig_reason(rc, "DNSKEY set signature does not verify");
		}
	}
	if (bad != NULL)
		kput(v, j->fname, K_BOGUS, NULL, v->o.bogus_ttl, now, bad);
	else
		kput(v, j->fname, K_KEYS, ldns_rr_list_clone(keys), min_ttl(sigs, min_ttl(keys, UINT32_MAX)),
		     now, NULL);
	ldns_rr_list_free(keys);
	ldns_rr_list_free(sigs);
	ldns_rr_list_free(trusted);
}

/* Verifies every NSEC/NSEC3 set of the authority section with the keys of zone; false if any is
 * unsigned or does not verify. */
static bool denial_signed(ldns_pkt *pkt, const struct kentry *zone, int64_t now)
{
	ldns_rr_list *auth = ldns_pkt_authority(pkt);
	size_t n = auth ? ldns_rr_list_rr_count(auth) : 0, checked = 0;
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(auth, i);
		ldns_rr_type t = ldns_rr_get_type(rr);
		if (t != LDNS_RR_TYPE_NSEC && t != LDNS_RR_TYPE_NSEC3)
			continue;
		ldns_rr_list *set = select_rrs(auth, ldns_rr_owner(rr), t, false);
		ldns_rr_list *sigs = select_rrs(auth, ldns_rr_owner(rr), t, true);
		bool ok = set && sigs && ldns_rr_list_rr_count(sigs) > 0 &&
		          name_eq(ldns_rr_rrsig_signame(ldns_rr_list_rr(sigs, 0)), zone->name) &&
		          ldns_verify_time(set, sigs, zone->rrs, (time_t)now, NULL) == LDNS_STATUS_OK;
		ldns_rr_list_free(set);
		ldns_rr_list_free(sigs);
		if (!ok)
			return false;
		checked++;
	}
	return checked > 0;
}

/* What the type bitmap at the name itself says about a DS query: a delegation without DS is insecure,
 * a name that is not a delegation is not a zone cut. */
static enum kstate bitmap_state(const ldns_rdf *bitmap, const char **reason)
{
	if (ldns_nsec_bitmap_covers_type(bitmap, LDNS_RR_TYPE_DS)) {
		*reason = "NSEC bitmap lists the DS the answer denies";
		return K_BOGUS;
	}
	if (ldns_nsec_bitmap_covers_type(bitmap, LDNS_RR_TYPE_NS) &&
	    !ldns_nsec_bitmap_covers_type(bitmap, LDNS_RR_TYPE_SOA))
		return K_INSECURE;
	return K_NOTCUT;
}

/* A DS answer for j->fname, signed by j->fzone: a DS set (a secure cut), or a proof that there is none
 * (an insecure delegation, or no cut at all). */
static void on_ds(struct aegis_dnssec_job *j, ldns_pkt *pkt, int64_t now)
{
	struct aegis_dnssec *v = j->v;
	struct kentry *zone = j->fzone ? kget(v, j->fzone, now) : NULL;
	if (zone == NULL || zone->state != K_KEYS)
		return; /* the parent's keys expired meanwhile: the next step fetches them again */
	ldns_rr_list *ds = select_rrs(ldns_pkt_answer(pkt), j->fname, LDNS_RR_TYPE_DS, false);
	ldns_rr_list *sigs = select_rrs(ldns_pkt_answer(pkt), j->fname, LDNS_RR_TYPE_DS, true);
	const char *reason = NULL;
	enum kstate st = K_BOGUS;
	uint32_t ttl = v->o.bogus_ttl;
	if (ds == NULL || sigs == NULL) {
		reason = "out of memory";
	} else if (ldns_rr_list_rr_count(ds) > 0) {
		if (ldns_rr_list_rr_count(sigs) == 0 ||
		    !name_eq(ldns_rr_rrsig_signame(ldns_rr_list_rr(sigs, 0)), zone->name) ||
		    ldns_verify_time(ds, sigs, zone->rrs, (time_t)now, NULL) != LDNS_STATUS_OK) {
			reason = "DS set unsigned or signature does not verify";
		} else {
			kput(v, j->fname, K_DS, ldns_rr_list_clone(ds),
			     min_ttl(sigs, min_ttl(ds, UINT32_MAX)), now, NULL);
			ldns_rr_list_free(ds);
			ldns_rr_list_free(sigs);
			return;
		}
	} else if (!denial_signed(pkt, zone, now)) {
		reason = "DS denial unsigned or signature does not verify";
	} else {
		reason = "DS denial not proven";
		ldns_rr_list *auth = ldns_pkt_authority(pkt);
		size_t n = auth != NULL ? ldns_rr_list_rr_count(auth) : 0;
		bool decided = false;
		/* A record at the name itself decides first (its type bitmap); else one covering it. */
		for (int pass = 0; pass < 2 && !decided; pass++) {
			for (size_t i = 0; i < n && !decided; i++) {
				ldns_rr *rr = ldns_rr_list_rr(auth, i);
				ldns_rr_type t = ldns_rr_get_type(rr);
				if (t != LDNS_RR_TYPE_NSEC && t != LDNS_RR_TYPE_NSEC3)
					continue;
				ldns_rdf *h = t == LDNS_RR_TYPE_NSEC3 ? nsec3_name(rr, j->fname) : NULL;
				const ldns_rdf *match = t == LDNS_RR_TYPE_NSEC3 ? h : j->fname;
				if (match == NULL) {
					continue;
				} else if (pass == 0 && name_eq(ldns_rr_owner(rr), match)) {
					st = bitmap_state(t == LDNS_RR_TYPE_NSEC3 ? ldns_nsec3_bitmap(rr)
					                                          : ldns_nsec_get_bitmap(rr),
					                  &reason);
					decided = true;
				} else if (pass == 1 && ldns_nsec_covers_name(rr, match)) {
					/* the name does not exist, so it is no cut; but an NSEC3 opt-out span
					 * may hide unsigned delegations (RFC 5155 6): insecure below */
					st = t == LDNS_RR_TYPE_NSEC3 && ldns_nsec3_optout(rr) ? K_INSECURE
					                                                      : K_NOTCUT;
					decided = true;
				}
				ldns_rdf_deep_free(h);
			}
		}
		if (decided && st != K_BOGUS) {
			reason = NULL;
			ttl = min_ttl(ldns_pkt_authority(pkt), UINT32_MAX);
		} else if (!decided) {
			st = K_BOGUS;
		}
	}
	kput(v, j->fname, st, NULL, ttl, now, reason);
	ldns_rr_list_free(ds);
	ldns_rr_list_free(sigs);
}

/* ---- jobs ----------------------------------------------------------------------------------------- */

static void log_bogus(struct aegis_dnssec *v, struct aegis_dnssec_job *j)
{
	ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(j->pkt), 0);
	uint64_t h = 1469598103934665603ull;
	if (q != NULL) {
		h ^= name_hash(ldns_rr_owner(q));
		h = (h * 1099511628211ull) ^ (uint64_t)ldns_rr_get_type(q);
		h *= 1099511628211ull;
	}
	uint64_t *slot = &v->logged[h % LOGGED_SLOTS];
	if (*slot == h)
		return; /* logged already: a client retrying a bogus name must not flood the log */
	*slot = h;
	char name[1024], type[32];
	name_str(q ? ldns_rr_owner(q) : NULL, name, sizeof(name));
	char *t = q ? ldns_rr_type2str(ldns_rr_get_type(q)) : NULL;
	snprintf(type, sizeof(type), "%s", t ? t : "?");
	free(t);
	AEGIS_LOG(AEGIS_LOG_WARN, "dnssec bogus answer: SERVFAIL", LKV_S("name", name), LKV_S("type", type),
	          LKV_S("reason", j->reason ? j->reason : "?"));
}

static void job_free(struct aegis_dnssec_job *j)
{
	struct aegis_dnssec *v = j->v;
	if (j->fetching && v->f.cancel != NULL)
		v->f.cancel(v->f.owner, j->handle);
	if (j->prev)
		j->prev->next = j->next;
	else
		v->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	v->st.jobs--;
	ldns_pkt_free(j->pkt);
	ldns_rdf_deep_free(j->fname);
	ldns_rdf_deep_free(j->fzone);
	free(j);
}

static void count(struct aegis_dnssec *v, struct aegis_dnssec_job *j, enum aegis_dnssec_result r)
{
	v->st.results[r]++;
	if (r == AEGIS_DNSSEC_BOGUS && j != NULL)
		log_bogus(v, j);
}

/* Evaluates; starts the next fetch if one is needed. Returns 0 with *res, or 1 (a fetch is out). */
static int job_step(struct aegis_dnssec_job *j, int64_t now, enum aegis_dnssec_result *res)
{
	struct aegis_dnssec *v = j->v;
	struct status s;
	evaluate(j, now, &s);
	if (s.st != S_NEED) {
		*res = (enum aegis_dnssec_result)s.st;
		j->reason = s.reason;
		return 0;
	}
	*res = AEGIS_DNSSEC_BOGUS;
	if (s.need_name == NULL) {
		j->reason = "out of memory";
	} else if (j->fetches >= v->o.max_fetches) {
		j->reason = "too many DNSKEY/DS fetches for one answer";
	} else if (v->f.start == NULL) {
		j->reason = "no fetcher";
	} else {
		/* RD, CD (we validate ourselves), one question, an OPT with DO */
		uint8_t q[HDR + LDNS_MAX_DOMAINLEN + 4 + 11];
		size_t nl = ldns_rdf_size(s.need_name);
		memset(q, 0, HDR);
		q[2] = 0x01;
		q[3] = 0x10;
		q[5] = 1;
		q[11] = 1;
		memcpy(q + HDR, ldns_rdf_data(s.need_name), nl);
		size_t off = HDR + nl;
		q[off++] = (uint8_t)(s.need_type >> 8);
		q[off++] = (uint8_t)s.need_type;
		q[off++] = 0;
		q[off++] = 1;
		static const uint8_t opt[11] = {0, 0, 41, EDNS_PAYLOAD >> 8, EDNS_PAYLOAD & 0xFF, 0, 0, 0x80,
		                                0, 0, 0};
		memcpy(q + off, opt, sizeof(opt));
		off += sizeof(opt);
		ldns_rdf_deep_free(j->fname);
		ldns_rdf_deep_free(j->fzone);
		j->fname = s.need_name;
		j->fzone = s.need_zone;
		j->ftype = s.need_type;
		s.need_name = s.need_zone = NULL;
		if (v->f.start(v->f.owner, q, off, j, &j->handle) == 0) {
			j->fetches++;
			v->st.fetches++;
			j->fetching = true;
			return 1;
		}
		j->reason = "could not start a DNSKEY/DS fetch";
	}
	ldns_rdf_deep_free(s.need_name);
	ldns_rdf_deep_free(s.need_zone);
	return 0;
}

int aegis_dnssec_validate(struct aegis_dnssec *v, const uint8_t *msg, size_t len, int64_t now,
                          aegis_dnssec_done_cb cb, void *ctx, struct aegis_dnssec_job **job,
                          enum aegis_dnssec_result *result)
{
	*job = NULL;
	if (v->st.jobs >= v->o.max_jobs)
		return AEGIS_ELIMIT;
	ldns_pkt *pkt = NULL;
	if (ldns_wire2pkt(&pkt, msg, len) != LDNS_STATUS_OK)
		return AEGIS_EPARSE;
	if (ldns_pkt_qdcount(pkt) != 1) {
		ldns_pkt_free(pkt);
		return AEGIS_EPARSE;
	}
	struct aegis_dnssec_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		ldns_pkt_free(pkt);
		return AEGIS_ENOMEM;
	}
	j->v = v;
	j->pkt = pkt;
	j->cb = cb;
	j->ctx = ctx;
	j->next = v->jobs;
	if (v->jobs)
		v->jobs->prev = j;
	v->jobs = j;
	v->st.jobs++;
	enum aegis_dnssec_result r;
	if (job_step(j, now, &r) == 1) {
		*job = j;
		return 1;
	}
	count(v, j, r);
	*result = r;
	job_free(j);
	return 0;
}

void aegis_dnssec_fetch_done(struct aegis_dnssec_job *j, const uint8_t *msg, size_t len, int64_t now)
{
	struct aegis_dnssec *v = j->v;
	j->fetching = false;
	j->handle = NULL;
	ldns_pkt *pkt = NULL;
	enum aegis_dnssec_result r = AEGIS_DNSSEC_BOGUS;
	if (msg == NULL || ldns_wire2pkt(&pkt, msg, len) != LDNS_STATUS_OK ||
	    (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR &&
	     ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NXDOMAIN)) {
		j->reason = j->ftype == LDNS_RR_TYPE_DS ? "DS fetch failed" : "DNSKEY fetch failed";
	} else {
		if (j->ftype == LDNS_RR_TYPE_DNSKEY)
			on_dnskey(j, pkt, now);
		else
			on_ds(j, pkt, now);
		if (job_step(j, now, &r) == 1) {
			ldns_pkt_free(pkt);
			return;
		}
	}
	if (pkt)
		ldns_pkt_free(pkt);
	count(v, j, r);
	aegis_dnssec_done_cb cb = j->cb;
	void *ctx = j->ctx;
	job_free(j);
	cb(ctx, r);
}

void aegis_dnssec_cancel(struct aegis_dnssec *v, struct aegis_dnssec_job *job)
{
	(void)v;
	if (job != NULL)
		job_free(job);
}

/* ---- anchors and lifetime ------------------------------------------------------------------------- */

static int add_anchor(struct aegis_dnssec *v, ldns_rr *rr)
{
	struct anchor *a = NULL;
	for (size_t i = 0; i < v->n_anchors && a == NULL; i++)
		if (name_eq(v->anchors[i].name, ldns_rr_owner(rr)))
			a = &v->anchors[i];
	if (a == NULL) {
		struct anchor *n = realloc(v->anchors, (v->n_anchors + 1) * sizeof(*n));
		if (n == NULL)
			return AEGIS_ENOMEM;
		v->anchors = n;
		a = &v->anchors[v->n_anchors];
		memset(a, 0, sizeof(*a));
		a->name = canon(ldns_rr_owner(rr));
		a->ds = ldns_rr_list_new();
		a->keys = ldns_rr_list_new();
		v->n_anchors++;
		if (a->name == NULL || a->ds == NULL || a->keys == NULL)
			return AEGIS_ENOMEM;
	}
	ldns_rr_list *l = ldns_rr_get_type(rr) == LDNS_RR_TYPE_DS ? a->ds : a->keys;
	return ldns_rr_list_push_rr(l, rr) ? 0 : AEGIS_ENOMEM;
}

static int load_anchor_file(struct aegis_dnssec *v, const char *path, struct aegis_diag *diag)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "cannot open trust anchor file: %s",
		                      strerror(errno));
	uint32_t ttl = 3600;
	ldns_rdf *origin = NULL, *prev = NULL;
	int line = 1, rc = 0;
	while (!feof(fp)) {
		ldns_rr *rr = NULL;
		int at = line;
		ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin, &prev, &line);
		if (s == LDNS_STATUS_SYNTAX_EMPTY || s == LDNS_STATUS_SYNTAX_TTL ||
		    s == LDNS_STATUS_SYNTAX_ORIGIN)
			continue;
		if (s != LDNS_STATUS_OK) {
			rc = aegis_diag_set(diag, AEGIS_EPARSE, path, line > at ? line - 1 : at, 0,
			                    "bad trust anchor record: %s", ldns_get_errorstr_by_id(s));
			break;
		}
		ldns_rr_type t = ldns_rr_get_type(rr);
		if (t != LDNS_RR_TYPE_DS && t != LDNS_RR_TYPE_DNSKEY) {
			ldns_rr_free(rr);
			rc = aegis_diag_set(diag, AEGIS_EPARSE, path, line > at ? line - 1 : at, 0,
			                    "trust anchor record is not DS or DNSKEY");
			break;
		}
		ldns_dname2canonical(ldns_rr_owner(rr));
		rc = add_anchor(v, rr);
		if (rc < 0) {
			ldns_rr_free(rr);
			break;
		}
	}
	ldns_rdf_deep_free(origin);
	ldns_rdf_deep_free(prev);
	fclose(fp);
	return rc;
}

int aegis_dnssec_new(const struct aegis_dnssec_opts *opts, struct aegis_dnssec **out, struct aegis_diag *diag)
{
	if (opts->n_anchor_files == 0)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
		                      "DNSSEC validation needs at least one --trust-anchor file");
	struct aegis_dnssec *v = calloc(1, sizeof(*v));
	if (v == NULL)
		return AEGIS_ENOMEM;
	v->o = *opts;
	v->o.anchor_files = NULL;
	if (v->o.max_keys == 0)
		v->o.max_keys = 1024;
	if (v->o.max_jobs == 0)
		v->o.max_jobs = 1024;
	if (v->o.max_fetches == 0)
		v->o.max_fetches = 16;
	if (v->o.max_key_ttl == 0)
		v->o.max_key_ttl = 3600;
	if (v->o.bogus_ttl == 0)
		v->o.bogus_ttl = 5;
	for (size_t i = 0; i < opts->n_anchor_files; i++) {
		int rc = load_anchor_file(v, opts->anchor_files[i], diag);
		if (rc < 0) {
			aegis_dnssec_free(v);
			return rc;
		}
	}
	if (v->n_anchors == 0) {
		aegis_dnssec_free(v);
		return aegis_diag_set(diag, AEGIS_EINVAL, opts->anchor_files[0], 0, 0,
		                      "no DS or DNSKEY record in the trust anchor files");
	}
	*out = v;
	return 0;
}

void aegis_dnssec_set_fetcher(struct aegis_dnssec *v, const struct aegis_dnssec_fetcher *f)
{
	v->f = *f;
}

void aegis_dnssec_free(struct aegis_dnssec *v)
{
	if (v == NULL)
		return;
	while (v->jobs != NULL)
		job_free(v->jobs);
	while (v->oldest != NULL)
		kremove(v, v->oldest);
	for (size_t i = 0; i < v->n_anchors; i++) {
		ldns_rdf_deep_free(v->anchors[i].name);
		if (v->anchors[i].ds)
			ldns_rr_list_deep_free(v->anchors[i].ds);
		if (v->anchors[i].keys)
			ldns_rr_list_deep_free(v->anchors[i].keys);
	}
	free(v->anchors);
	free(v);
}

void aegis_dnssec_get_stats(const struct aegis_dnssec *v, struct aegis_dnssec_stats *out)
{
	*out = v->st;
	out->key_entries = v->n_keys;
}

void aegis_dnssec_count(struct aegis_dnssec *v, enum aegis_dnssec_result r)
{
	count(v, NULL, r);
}
