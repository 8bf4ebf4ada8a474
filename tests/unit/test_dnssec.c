/* Tests proxy/dnssec.c: trust anchor files (good, bad with file:line, empty, missing), and validation
 * against records signed here with ldns (a fresh ECDSA P-256 key per run): secure answers, warm key
 * cache (no fetch), a record changed after signing, expired signatures, stripped signatures, a name
 * outside the anchors, an insecure delegation proven by NSEC, NXDOMAIN proven and unproven, a failed
 * fetch, cancellation, bounds; fixtures signed by ldns-signzone and served by NSD.
 * The fetcher is a fake that answers from the signed records when the test drains it, never from
 * inside start(), as the contract in dnssec.h requires. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <ldns/ldns.h>
#include <unistd.h>

#include "dnssec.h"
#include "test_ldns.h"

#define NOW ((int64_t)1800000000)

/* ---- a signed zone, made at test time ---- */

static ldns_key *g_key;
static ldns_key_list *g_keys;
static ldns_rr *g_dnskey;
static char g_dir[64];

/* Signs the records given (one rrset) with the zone key, valid [from, until). */
static ldns_rr_list *sign(ldns_rr_list *set, int64_t from, int64_t until)
{
	ldns_key_set_inception(g_key, (uint32_t)from);
	ldns_key_set_expiration(g_key, (uint32_t)until);
	ldns_rr_list *sigs = ldns_sign_public(set, g_keys);
	assert_non_null(sigs);
	return sigs;
}

static void push_signed(ldns_pkt *p, ldns_pkt_section sec, const char *const *recs, size_t n, bool with_sig,
                        int64_t until)
{
	ldns_rr_list *set = ldns_rr_list_new();
	for (size_t i = 0; i < n; i++)
		ldns_rr_list_push_rr(set, rr(recs[i]));
	ldns_rr_list *sigs = with_sig ? sign(set, NOW - 3600, until) : NULL;
	for (size_t i = 0; i < ldns_rr_list_rr_count(set); i++)
		ldns_pkt_push_rr(p, sec, ldns_rr_clone(ldns_rr_list_rr(set, i)));
	for (size_t i = 0; sigs && i < ldns_rr_list_rr_count(sigs); i++)
		ldns_pkt_push_rr(p, sec, ldns_rr_clone(ldns_rr_list_rr(sigs, i)));
	ldns_rr_list_deep_free(set);
	if (sigs)
		ldns_rr_list_deep_free(sigs);
}

static ldns_pkt *pkt_new(const char *qname, ldns_rr_type t, ldns_pkt_rcode rcode)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rd(p, true);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	ldns_rr *q = ldns_rr_new();
	ldns_rdf *n = ldns_dname_new_frm_str(qname);
	ldns_rr_set_owner(q, n);
	ldns_rr_set_type(q, t);
	ldns_rr_set_class(q, LDNS_RR_CLASS_IN);
	ldns_rr_set_question(q, true);
	ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q);
	ldns_pkt_set_edns_udp_size(p, 1232);
	ldns_pkt_set_edns_do(p, true);
	return p;
}

static const char *const SOA[] = {
        "example.test. 300 IN SOA ns.example.test. a.example.test. 1 3600 600 86400 300"};

/* What the fake upstream answers for the validator's queries. */
static size_t zone_answer(const char *name, ldns_rr_type t, uint8_t *out, size_t cap)
{
	if (t == LDNS_RR_TYPE_DNSKEY && strcmp(name, "example.test.") == 0) {
		ldns_pkt *p = pkt_new(name, t, LDNS_RCODE_NOERROR);
		ldns_rr_list *set = ldns_rr_list_new();
		ldns_rr_list_push_rr(set, ldns_rr_clone(g_dnskey));
		ldns_rr_list *sigs = sign(set, NOW - 3600, NOW + 86400);
		ldns_pkt_push_rr_list(p, LDNS_SECTION_ANSWER, set);
		ldns_pkt_push_rr_list(p, LDNS_SECTION_ANSWER, sigs);
		ldns_rr_list_free(set);
		ldns_rr_list_free(sigs);
		return pkt_to_wire(p, out, cap);
	}
	if (t == LDNS_RR_TYPE_DS && strcmp(name, "www.example.test.") == 0) {
		ldns_pkt *p = pkt_new(name, t, LDNS_RCODE_NOERROR);
		push_signed(p, LDNS_SECTION_AUTHORITY, SOA, 1, true, NOW + 86400);
		const char *nsec[] = {"www.example.test. 300 IN NSEC x.example.test. A RRSIG NSEC"};
		push_signed(p, LDNS_SECTION_AUTHORITY, nsec, 1, true, NOW + 86400);
		return pkt_to_wire(p, out, cap);
	}
	if (t == LDNS_RR_TYPE_DS && strcmp(name, "child.example.test.") == 0) {
		ldns_pkt *p = pkt_new(name, t, LDNS_RCODE_NOERROR);
		push_signed(p, LDNS_SECTION_AUTHORITY, SOA, 1, true, NOW + 86400);
		const char *nsec[] = {"child.example.test. 300 IN NSEC www.example.test. NS RRSIG NSEC"};
		push_signed(p, LDNS_SECTION_AUTHORITY, nsec, 1, true, NOW + 86400);
		return pkt_to_wire(p, out, cap);
	}
	return pkt_to_wire(pkt_new(name, t, LDNS_RCODE_SERVFAIL), out, cap);
}

/* ---- the fake fetcher ---- */

struct fake {
	struct aegis_dnssec_job *job;
	uint8_t q[600];
	size_t qlen;
	int starts, cancels;
	bool pending, fail_next;
	char last[300];
};

static int fake_start(void *owner, const uint8_t *q, size_t len, struct aegis_dnssec_job *job, void **handle)
{
	struct fake *f = owner;
	assert_false(f->pending);
	assert_true(len <= sizeof(f->q));
	/* the query asks with RD, CD and DO */
	assert_true(q[2] & 0x01);
	assert_true(q[3] & 0x10);
	memcpy(f->q, q, len);
	f->qlen = len;
	f->job = job;
	f->pending = true;
	f->starts++;
	*handle = f;
	return 0;
}

static void fake_cancel(void *owner, void *handle)
{
	struct fake *f = owner;
	assert_ptr_equal(handle, f);
	f->pending = false;
	f->cancels++;
}

static void drain(struct fake *f, int64_t now)
{
	for (int guard = 0; f->pending && guard < 20; guard++) {
		ldns_pkt *q = NULL;
		assert_int_equal(ldns_wire2pkt(&q, f->q, f->qlen), LDNS_STATUS_OK);
		assert_true(ldns_pkt_edns_do(q));
		ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
		char *name = ldns_rdf2str(ldns_rr_owner(qr));
		ldns_rr_type t = ldns_rr_get_type(qr);
		snprintf(f->last, sizeof(f->last), "%s/%d", name, (int)t);
		uint8_t ans[4096];
		size_t n = zone_answer(name, t, ans, sizeof(ans));
		free(name);
		ldns_pkt_free(q);
		f->pending = false;
		if (f->fail_next) {
			f->fail_next = false;
			aegis_dnssec_fetch_done(f->job, NULL, 0, now);
		} else {
			aegis_dnssec_fetch_done(f->job, ans, n, now);
		}
	}
	assert_false(f->pending);
}

struct done {
	int calls;
	enum aegis_dnssec_result r;
};

static void done_cb(void *ctx, enum aegis_dnssec_result r)
{
	struct done *d = ctx;
	d->calls++;
	d->r = r;
}

/* Validates msg, draining fetches; returns the result. */
static enum aegis_dnssec_result run(struct aegis_dnssec *v, struct fake *f, const uint8_t *msg, size_t len,
                                    int64_t now)
{
	struct done d = {0};
	struct aegis_dnssec_job *job = NULL;
	enum aegis_dnssec_result r = AEGIS_DNSSEC_N_RESULTS;
	int rc = aegis_dnssec_validate(v, msg, len, now, done_cb, &d, &job, &r);
	assert_true(rc == 0 || rc == 1);
	if (rc == 0)
		return r;
	drain(f, now);
	assert_int_equal(d.calls, 1);
	return d.r;
}

static char *write_file(const char *name, const char *text)
{
	static char path[4][128];
	static int k;
	char *p = path[k++ % 4];
	snprintf(p, 128, "%s/%s", g_dir, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return p;
}

static struct aegis_dnssec *mk_jobs(struct fake *f, size_t max_jobs)
{
	ldns_rr *ds = ldns_key_rr2ds(g_dnskey, LDNS_SHA256);
	char *s = ldns_rr2str(ds);
	const char *files[] = {write_file("anchor.ds", s)};
	free(s);
	ldns_rr_free(ds);
	struct aegis_dnssec_opts o = {.anchor_files = files, .n_anchor_files = 1, .max_jobs = max_jobs};
	struct aegis_dnssec *v = NULL;
	struct aegis_diag diag = {0};
	assert_int_equal(aegis_dnssec_new(&o, &v, &diag), 0);
	struct aegis_dnssec_fetcher fe = {.start = fake_start, .cancel = fake_cancel, .owner = f};
	aegis_dnssec_set_fetcher(v, &fe);
	return v;
}

static struct aegis_dnssec *mk(struct fake *f)
{
	return mk_jobs(f, 0);
}

static size_t www_answer(uint8_t *buf, size_t cap, const char *a, bool sig, int64_t until)
{
	ldns_pkt *p = pkt_new("www.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR);
	const char *recs[] = {"www.example.test. 300 IN A 192.0.2.1"};
	push_signed(p, LDNS_SECTION_ANSWER, recs, 1, sig, until);
	size_t n = pkt_to_wire(p, buf, cap);
	if (a != NULL) { /* change the address after signing */
		ldns_pkt *q = NULL;
		assert_int_equal(ldns_wire2pkt(&q, buf, n), LDNS_STATUS_OK);
		ldns_rr *r0 = ldns_rr_list_rr(ldns_pkt_answer(q), 0);
		ldns_rdf *addr = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, a);
		ldns_rdf_deep_free(ldns_rr_set_rdf(r0, addr, 0));
		n = pkt_to_wire(q, buf, cap);
	}
	return n;
}

/* ---- tests ---- */

static void test_anchor_files(void **state)
{
	(void)state;
	struct aegis_dnssec *v = NULL;
	struct aegis_diag diag = {0};
	const char *bad[] = {write_file("bad.anchor", "; trust anchors\n"
	                                              "example.test. 3600 IN DS 1 13 2 00aa\n"
	                                              "\n"
	                                              "example.test. 3600 IN A 192.0.2.1\n")};
	struct aegis_dnssec_opts o = {.anchor_files = bad, .n_anchor_files = 1};
	assert_int_equal(aegis_dnssec_new(&o, &v, &diag), AEGIS_EPARSE);
	assert_int_equal(diag.line, 4);
	assert_non_null(strstr(diag.file, "bad.anchor"));
	assert_non_null(strstr(diag.msg, "not DS or DNSKEY"));

	const char *garbage[] = {write_file("garbage.anchor", "example.test. 3600 IN DS nonsense\n")};
	o.anchor_files = garbage;
	memset(&diag, 0, sizeof(diag));
	assert_int_equal(aegis_dnssec_new(&o, &v, &diag), AEGIS_EPARSE);
	assert_int_equal(diag.line, 1);

	const char *empty[] = {write_file("empty.anchor", "; nothing\n\n")};
	o.anchor_files = empty;
	assert_int_equal(aegis_dnssec_new(&o, &v, &diag), AEGIS_EINVAL);

	const char *missing[] = {"/nonexistent/anchor"};
	o.anchor_files = missing;
	assert_int_equal(aegis_dnssec_new(&o, &v, &diag), AEGIS_EIO);

	o.n_anchor_files = 0;
	assert_int_equal(aegis_dnssec_new(&o, &v, &diag), AEGIS_EINVAL);

	char *s = ldns_rr2str(g_dnskey);
	const char *good[] = {write_file("good.anchor", s)};
	free(s);
	o.anchor_files = good;
	o.n_anchor_files = 1;
	assert_int_equal(aegis_dnssec_new(&o, &v, &diag), 0);
	aegis_dnssec_free(v);
}

static void test_secure_then_warm(void **state)
{
	(void)state;
	struct fake f = {0};
	struct aegis_dnssec *v = mk(&f);
	uint8_t m[4096];
	size_t n = www_answer(m, sizeof(m), NULL, true, NOW + 86400);
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_SECURE);
	assert_int_equal(f.starts, 1);
	assert_string_equal(f.last, "example.test./48");
	/* warm: no fetch, answered inside validate() */
	struct done d = {0};
	struct aegis_dnssec_job *job = NULL;
	enum aegis_dnssec_result r;
	assert_int_equal(aegis_dnssec_validate(v, m, n, NOW + 10, done_cb, &d, &job, &r), 0);
	assert_int_equal(r, AEGIS_DNSSEC_SECURE);
	assert_int_equal(f.starts, 1);
	assert_int_equal(d.calls, 0);
	/* after the DNSKEY TTL (300 s) the key set is fetched again */
	assert_int_equal(run(v, &f, m, n, NOW + 400), AEGIS_DNSSEC_SECURE);
	assert_int_equal(f.starts, 2);
	struct aegis_dnssec_stats st;
	aegis_dnssec_get_stats(v, &st);
	assert_int_equal(st.results[AEGIS_DNSSEC_SECURE], 3);
	assert_int_equal(st.fetches, 2);
	assert_int_equal(st.jobs, 0);
	aegis_dnssec_free(v);
}

static void test_bogus_cases(void **state)
{
	(void)state;
	struct fake f = {0};
	struct aegis_dnssec *v = mk(&f);
	uint8_t m[4096];
	size_t n = www_answer(m, sizeof(m), "192.0.2.99", true, NOW + 86400);
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_BOGUS); /* tampered */
	n = www_answer(m, sizeof(m), NULL, true, NOW - 10);
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_BOGUS); /* expired */
	n = www_answer(m, sizeof(m), NULL, false, 0);
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_BOGUS); /* stripped: DS walk says no cut */
	assert_string_equal(f.last, "www.example.test./43");
	/* the good answer still validates: nothing bad was remembered about the zone */
	n = www_answer(m, sizeof(m), NULL, true, NOW + 86400);
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_SECURE);
	struct aegis_dnssec_stats st;
	aegis_dnssec_get_stats(v, &st);
	assert_int_equal(st.results[AEGIS_DNSSEC_BOGUS], 3);
	aegis_dnssec_free(v);
}

static void test_indeterminate_and_insecure(void **state)
{
	(void)state;
	struct fake f = {0};
	struct aegis_dnssec *v = mk(&f);
	uint8_t m[4096];
	ldns_pkt *p = pkt_new("www.other.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr("www.other.test. 300 IN A 192.0.2.40"));
	size_t n = pkt_to_wire(p, m, sizeof(m));
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_INDETERMINATE);
	assert_int_equal(f.starts, 0);

	p = pkt_new("www.child.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr("www.child.example.test. 300 IN A 192.0.2.50"));
	n = pkt_to_wire(p, m, sizeof(m));
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_INSECURE);
	assert_string_equal(f.last, "child.example.test./43");
	int before = f.starts;
	/* the proven cut is remembered: a second name below it needs no fetch */
	p = pkt_new("db.child.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr("db.child.example.test. 300 IN A 192.0.2.51"));
	n = pkt_to_wire(p, m, sizeof(m));
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_INSECURE);
	assert_int_equal(f.starts, before);
	aegis_dnssec_free(v);
}

static void test_nxdomain_proof(void **state)
{
	(void)state;
	struct fake f = {0};
	struct aegis_dnssec *v = mk(&f);
	uint8_t m[4096];
	/* nosuch.example.test sorts between example.test and www.example.test in canonical order */
	ldns_pkt *p = pkt_new("nosuch.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN);
	push_signed(p, LDNS_SECTION_AUTHORITY, SOA, 1, true, NOW + 86400);
	const char *cover[] = {"example.test. 300 IN NSEC www.example.test. SOA NS RRSIG NSEC DNSKEY"};
	push_signed(p, LDNS_SECTION_AUTHORITY, cover, 1, true, NOW + 86400);
	size_t n = pkt_to_wire(p, m, sizeof(m));
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_SECURE);

	/* the same NXDOMAIN with only the SOA: the denial is not proven */
	p = pkt_new("nosuch.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN);
	push_signed(p, LDNS_SECTION_AUTHORITY, SOA, 1, true, NOW + 86400);
	n = pkt_to_wire(p, m, sizeof(m));
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_BOGUS);

	/* an NSEC at the name itself cannot prove NXDOMAIN */
	p = pkt_new("www.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN);
	push_signed(p, LDNS_SECTION_AUTHORITY, SOA, 1, true, NOW + 86400);
	const char *at[] = {"www.example.test. 300 IN NSEC x.example.test. TXT RRSIG NSEC"};
	push_signed(p, LDNS_SECTION_AUTHORITY, at, 1, true, NOW + 86400);
	n = pkt_to_wire(p, m, sizeof(m));
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_BOGUS);

	/* NODATA: the NSEC at the name lacks the type */
	p = pkt_new("www.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR);
	push_signed(p, LDNS_SECTION_AUTHORITY, SOA, 1, true, NOW + 86400);
	push_signed(p, LDNS_SECTION_AUTHORITY, at, 1, true, NOW + 86400);
	n = pkt_to_wire(p, m, sizeof(m));
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_SECURE);
	aegis_dnssec_free(v);
}

/* A wildcard expansion (signature label count below the owner's) needs an NSEC showing the name
 * itself does not exist (RFC 4035 5.3.4). */
static void test_wildcard(void **state)
{
	(void)state;
	struct fake f = {0};
	struct aegis_dnssec *v = mk(&f);
	uint8_t m[4096];
	for (int with_proof = 0; with_proof < 2; with_proof++) {
		ldns_rr_list *set = ldns_rr_list_new();
		ldns_rr_list_push_rr(set, rr("*.example.test. 300 IN A 192.0.2.60"));
		ldns_rr_list *sigs = sign(set, NOW - 3600, NOW + 86400);
		ldns_pkt *p = pkt_new("x.example.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR);
		ldns_rr *a = ldns_rr_clone(ldns_rr_list_rr(set, 0)),
		        *sig = ldns_rr_clone(ldns_rr_list_rr(sigs, 0));
		ldns_rdf_deep_free(ldns_rr_owner(a));
		ldns_rr_set_owner(a, ldns_dname_new_frm_str("x.example.test."));
		ldns_rdf_deep_free(ldns_rr_owner(sig));
		ldns_rr_set_owner(sig, ldns_dname_new_frm_str("x.example.test."));
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, a);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, sig);
		if (with_proof) {
			const char *cover[] = {
			        "example.test. 300 IN NSEC y.example.test. SOA NS RRSIG NSEC DNSKEY"};
			push_signed(p, LDNS_SECTION_AUTHORITY, cover, 1, true, NOW + 86400);
		}
		ldns_rr_list_deep_free(set);
		ldns_rr_list_deep_free(sigs);
		size_t n = pkt_to_wire(p, m, sizeof(m));
		assert_int_equal(run(v, &f, m, n, NOW),
		                 with_proof ? AEGIS_DNSSEC_SECURE : AEGIS_DNSSEC_BOGUS);
	}
	aegis_dnssec_free(v);
}

static void test_fetch_failure_and_cancel(void **state)
{
	(void)state;
	struct fake f = {0};
	struct aegis_dnssec *v = mk(&f);
	uint8_t m[4096];
	size_t n = www_answer(m, sizeof(m), NULL, true, NOW + 86400);
	f.fail_next = true;
	assert_int_equal(run(v, &f, m, n, NOW), AEGIS_DNSSEC_BOGUS);

	struct done d = {0};
	struct aegis_dnssec_job *job = NULL;
	enum aegis_dnssec_result r;
	assert_int_equal(aegis_dnssec_validate(v, m, n, NOW, done_cb, &d, &job, &r), 1);
	assert_true(f.pending);
	aegis_dnssec_cancel(v, job);
	assert_false(f.pending);
	assert_int_equal(f.cancels, 1);
	assert_int_equal(d.calls, 0);

	/* a job still waiting when the validator is freed: its fetch is cancelled, no callback */
	assert_int_equal(aegis_dnssec_validate(v, m, n, NOW, done_cb, &d, &job, &r), 1);
	aegis_dnssec_free(v);
	assert_int_equal(f.cancels, 2);
	assert_int_equal(d.calls, 0);
}

/* Memory is bounded: beyond max_jobs validations in progress, validate() refuses at once; a message
 * ldns cannot parse is refused too. */
static void test_limits(void **state)
{
	(void)state;
	struct fake f = {0};
	struct aegis_dnssec *v = mk_jobs(&f, 1);
	uint8_t m[4096];
	size_t n = www_answer(m, sizeof(m), NULL, true, NOW + 86400);
	struct done d = {0};
	struct aegis_dnssec_job *job = NULL, *job2 = NULL;
	enum aegis_dnssec_result r;
	assert_int_equal(aegis_dnssec_validate(v, m, 5, NOW, done_cb, &d, &job, &r), AEGIS_EPARSE);
	assert_int_equal(aegis_dnssec_validate(v, m, n, NOW, done_cb, &d, &job, &r), 1);
	assert_int_equal(aegis_dnssec_validate(v, m, n, NOW, done_cb, &d, &job2, &r), AEGIS_ELIMIT);
	drain(&f, NOW);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.r, AEGIS_DNSSEC_SECURE);
	aegis_dnssec_free(v);
}

/* Fixtures made with ldns-keygen/ldns-signzone and served by NSD (tests/fuzz/corpus/dnssec, see
 * tests/fuzz/fuzz_dnssec.c): a 2-byte length, the answer, then the zone's DNSKEY answer, which serves
 * every fetch. Real wire answers: NSEC and NSEC3 denials, a wildcard, a DNAME, a DS proof at an
 * insecure cut. */
static void test_fixtures(void **state)
{
	(void)state;
	const char *src = getenv("AEGIS_SRC_DIR");
	if (src == NULL)
		src = AEGIS_SRC_DIR;
	const char *anchors = "example.test. IN DS 8460 13 2 "
	                      "0fb27b9d8fde62701df0c6bf88b78b042e01a0d4c428e6ddfcd512b24fd8508d\n"
	                      "nsec3.test. IN DS 211 13 2 "
	                      "a0de44b10235c964fe809ffb93c392f9096c54867509a28213c081c24267c621\n";
	const char *files[] = {write_file("fixtures.anchor", anchors)};
	static const struct {
		const char *name;
		enum aegis_dnssec_result want;
	} cases[] = {
	        {"a_secure", AEGIS_DNSSEC_SECURE},     {"nxdomain_nsec", AEGIS_DNSSEC_SECURE},
	        {"nodata_nsec", AEGIS_DNSSEC_SECURE},  {"dnskey", AEGIS_DNSSEC_SECURE},
	        {"ds_nodata", AEGIS_DNSSEC_SECURE},    {"ds_insecure_cut", AEGIS_DNSSEC_SECURE},
	        {"cname", AEGIS_DNSSEC_SECURE},        {"wildcard", AEGIS_DNSSEC_SECURE},
	        {"dname", AEGIS_DNSSEC_SECURE},        {"nsec3_nxdomain", AEGIS_DNSSEC_SECURE},
	        {"nsec3_dnskey", AEGIS_DNSSEC_SECURE}, {"nsec3_a", AEGIS_DNSSEC_SECURE},
	        {"empty_fetch", AEGIS_DNSSEC_BOGUS},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/dnssec/%s", src, cases[i].name);
		FILE *fp = fopen(path, "rb");
		assert_non_null(fp);
		static uint8_t buf[70000];
		size_t n = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		assert_true(n > 2);
		size_t alen = (size_t)(buf[0] << 8 | buf[1]);
		assert_true(alen <= n - 2);

		struct aegis_dnssec_opts o = {.anchor_files = files, .n_anchor_files = 1};
		struct aegis_dnssec *v = NULL;
		struct aegis_diag diag = {0};
		assert_int_equal(aegis_dnssec_new(&o, &v, &diag), 0);
		struct fake f = {0};
		struct aegis_dnssec_fetcher fe = {.start = fake_start, .cancel = fake_cancel, .owner = &f};
		aegis_dnssec_set_fetcher(v, &fe);
		struct done d = {0};
		struct aegis_dnssec_job *job = NULL;
		enum aegis_dnssec_result r = AEGIS_DNSSEC_N_RESULTS;
		/* 2027-01-15: inside the fixtures' signature validity (2026-11-01..2036-11-01) */
		int rc = aegis_dnssec_validate(v, buf + 2, alen, 1800000000, done_cb, &d, &job, &r);
		while (rc == 1 && f.pending) {
			f.pending = false;
			aegis_dnssec_fetch_done(f.job, n - 2 - alen ? buf + 2 + alen : NULL, n - 2 - alen,
			                        1800000000);
		}
		if (rc == 1) {
			assert_int_equal(d.calls, 1);
			r = d.r;
		}
		if (r != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].name, aegis_dnssec_result_name(r),
			         aegis_dnssec_result_name(cases[i].want));
		/* ... and after the signatures expire, every signed one is bogus */
		if (cases[i].want == AEGIS_DNSSEC_SECURE) {
			aegis_dnssec_free(v);
			assert_int_equal(aegis_dnssec_new(&o, &v, &diag), 0);
			aegis_dnssec_set_fetcher(v, &fe);
			memset(&d, 0, sizeof(d));
			rc = aegis_dnssec_validate(v, buf + 2, alen, 2130000000, done_cb, &d, &job, &r);
			while (rc == 1 && f.pending) {
				f.pending = false;
				aegis_dnssec_fetch_done(f.job, buf + 2 + alen, n - 2 - alen, 2130000000);
			}
			assert_int_equal(rc == 1 ? d.r : r, AEGIS_DNSSEC_BOGUS);
		}
		aegis_dnssec_free(v);
	}
}

static int setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/aegis-dnssec-unit.XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	g_key = ldns_key_new_frm_algorithm(LDNS_SIGN_ECDSAP256SHA256, 256);
	assert_non_null(g_key);
	ldns_key_set_pubkey_owner(g_key, ldns_dname_new_frm_str("example.test."));
	ldns_key_set_flags(g_key, 257);
	g_dnskey = ldns_key2rr(g_key);
	assert_non_null(g_dnskey);
	ldns_rr_set_ttl(g_dnskey, 300);
	ldns_key_set_keytag(g_key, ldns_calc_keytag(g_dnskey));
	g_keys = ldns_key_list_new();
	ldns_key_list_push_key(g_keys, g_key);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
	if (system(cmd) != 0)
		return 1;
	ldns_key_list_free(g_keys); /* frees g_key too */
	ldns_rr_free(g_dnskey);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_anchor_files),
	        cmocka_unit_test(test_secure_then_warm),
	        cmocka_unit_test(test_bogus_cases),
	        cmocka_unit_test(test_indeterminate_and_insecure),
	        cmocka_unit_test(test_nxdomain_proof),
	        cmocka_unit_test(test_wildcard),
	        cmocka_unit_test(test_fetch_failure_and_cancel),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_fixtures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
