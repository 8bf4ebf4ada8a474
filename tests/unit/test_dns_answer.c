/* Unit tests for proxy/dns_answer.c: each rule of DNS_BEHAVIOUR.md has a test here that fails if the rule
 * breaks. The table comes from YAML through the real loader and builder; answers are parsed with ldns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "aegis/resource_yaml.h"
#include "aegis/vip.h"
#include "dns_answer.h"

static const char fixture[] =
        "apiVersion: networking.istio.io/v1beta1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: api, namespace: default}\n"
        "spec:\n"
        "  hosts: [api.example.com]\n"
        "  ports: [{number: 443, name: https, protocol: TLS}]\n"
        "  resolution: DNS\n"
        "---\n"
        "apiVersion: networking.istio.io/v1beta1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: legacy, namespace: default}\n"
        "spec:\n"
        "  hosts: [legacy.company.internal]\n"
        "  addresses: [192.0.2.10, 192.0.2.20, \"2001:db8::10\"]\n"
        "  ports: [{number: 5432, name: postgres, protocol: TCP}]\n"
        "  resolution: STATIC\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: wiki, namespace: default}\n"
        "spec:\n"
        "  hosts: [\"*.wikipedia.org\"]\n"
        "  addresses: [198.51.100.7]\n"
        "  ports: [{number: 443, name: https, protocol: TLS}]\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: deep-wiki, namespace: default}\n"
        "spec:\n"
        "  hosts: [\"*.de.wikipedia.org\"]\n"
        "  addresses: [198.51.100.8]\n"
        "  ports: [{number: 443, name: https, protocol: TLS}]\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata: {name: reviews, namespace: default}\n"
        "spec:\n"
        "  clusterIP: 10.96.10.11\n"
        "  ports: [{name: http, port: 9080, protocol: TCP}]\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata: {name: db, namespace: shop}\n"
        "spec:\n"
        "  clusterIP: None\n"
        "  ports: [{name: postgres, port: 5432}]\n"
        "---\n"
        "apiVersion: discovery.k8s.io/v1\n"
        "kind: EndpointSlice\n"
        "metadata: {name: db-1, namespace: shop, labels: {kubernetes.io/service-name: db}}\n"
        "addressType: IPv4\n"
        "ports: [{name: postgres, port: 5432}]\n"
        "endpoints:\n"
        "- addresses: [10.244.2.31]\n"
        "  hostname: db-0\n"
        "  conditions: {ready: true}\n"
        "- addresses: [10.244.2.32]\n"
        "  hostname: db-1\n"
        "- addresses: [10.244.2.33]\n"
        "  hostname: db-2\n"
        "  conditions: {ready: false}\n";

struct fx {
	struct aegis_table *table;
	struct aegis_search *search;
	struct aegis_vip_alloc *vips;
	struct aegis_answer_ctx ctx;
};

static char *big_fixture(void)
{
	/* One name with 100 addresses: too large for 512 bytes. */
	size_t cap = sizeof(fixture) + 4096;
	char *s = malloc(cap);
	assert_non_null(s);
	size_t o = (size_t)snprintf(
	        s, cap,
	        "%s---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	        "metadata: {name: big, namespace: default}\nspec:\n  hosts: [big.example.com]\n"
	        "  addresses:\n",
	        fixture);
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(s + o, cap - o, "  - 203.0.113.%d\n", i + 1);
	return s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *yaml = big_fixture();
	struct aegis_config *cfg = NULL;
	struct aegis_diag diag = {0};
	int rc = aegis_yaml_load_buffer("fixture.yaml", yaml, strlen(yaml), &cfg, &diag);
	free(yaml);
	if (rc != 0) {
		fprintf(stderr, "fixture: %s:%d: %s\n", diag.file, diag.line, diag.msg);
		return -1;
	}
	f->vips = aegis_vip_alloc_new();
	struct aegis_table_opts topts = {.cluster_domain = "cluster.local", .vips = f->vips};
	rc = aegis_table_build(cfg, &topts, &f->table, &diag);
	aegis_config_free(cfg);
	if (rc != 0)
		return -1;
	const char *search[] = {"default.svc.cluster.local", "svc.cluster.local", "cluster.local"};
	struct aegis_search_opts so = {
	        .namespace_ = "default", .cluster_domain = "cluster.local", .search = search, .n_search = 3};
	if (aegis_search_new(&so, &f->search) != 0)
		return -1;
	f->ctx = (struct aegis_answer_ctx){.table = f->table, .search = f->search, .ttl = 30};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	aegis_table_unref(f->table);
	aegis_search_free(f->search);
	aegis_vip_alloc_free(f->vips);
	free(f);
	return 0;
}

struct result {
	enum aegis_answer_action action;
	struct aegis_answer_info info;
	ldns_pkt *pkt; /* NULL unless SEND */
	size_t len;
};

static size_t build_query(uint8_t *buf, const char *name, ldns_rr_type type, int edns_size, int edns_version)
{
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
	                 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, 0xBEEF);
	if (edns_size > 0) {
		ldns_pkt_set_edns_udp_size(p, (uint16_t)edns_size);
		ldns_pkt_set_edns_version(p, (uint8_t)edns_version);
		/* ldns only emits OPT when something non-default is set: force it with DO. */
		ldns_pkt_set_edns_do(p, true);
	}
	uint8_t *wire = NULL;
	size_t len = 0;
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	memcpy(buf, wire, len);
	LDNS_FREE(wire);
	ldns_pkt_free(p);
	return len;
}

static struct result ask_ctx(const struct aegis_answer_ctx *ctx, const char *name, ldns_rr_type type,
                             size_t max_size, int edns_size, int edns_version)
{
	uint8_t q[512];
	static uint8_t out[65535];
	size_t qlen = build_query(q, name, type, edns_size, edns_version);
	struct result r = {0};
	struct aegis_dns_query pq;
	r.action = aegis_answer(ctx, q, qlen, max_size, out, sizeof(out), &r.len, &pq, &r.info);
	if (r.action == AEGIS_ANSWER_SEND) {
		assert_int_equal(ldns_wire2pkt(&r.pkt, out, r.len), LDNS_STATUS_OK);
		assert_int_equal(ldns_pkt_id(r.pkt), 0xBEEF);
		assert_true(ldns_pkt_qr(r.pkt));
	}
	return r;
}

static struct result ask(void **state, const char *name, ldns_rr_type type)
{
	struct fx *f = *state;
	return ask_ctx(&f->ctx, name, type, 0, 0, 0);
}

static char *rr_str(ldns_pkt *p, ldns_pkt_section sec, size_t i, int rdf)
{
	ldns_rr_list *l = sec == LDNS_SECTION_ANSWER ? ldns_pkt_answer(p) : ldns_pkt_additional(p);
	ldns_rr *rr = ldns_rr_list_rr(l, i);
	assert_non_null(rr);
	return ldns_rdf2str(rdf < 0 ? ldns_rr_owner(rr) : ldns_rr_rdf(rr, (size_t)rdf));
}

#define ASSERT_RR(p, sec, i, rdf, want)                                                                      \
	do {                                                                                                 \
		char *s_ = rr_str((p), (sec), (i), (rdf));                                                   \
		assert_string_equal(s_, (want));                                                             \
		free(s_);                                                                                    \
	} while (0)

static void test_exact_a_authoritative(void **state)
{
	struct result r = ask(state, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.action, AEGIS_ANSWER_SEND);
	assert_int_equal(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
	assert_true(ldns_pkt_aa(r.pkt));
	assert_true(ldns_pkt_rd(r.pkt));
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
	assert_int_equal(ldns_rr_ttl(rr), 30);
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "10.96.10.11");
	ldns_pkt_free(r.pkt);
}

static void test_case_preserved(void **state)
{
	struct result r = ask(state, "ReViEwS.Default.svc.Cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.action, AEGIS_ANSWER_SEND);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, -1, "ReViEwS.Default.svc.Cluster.local.");
	ldns_pkt_free(r.pkt);
}

static void test_nodata_for_other_family(void **state)
{
	struct result r = ask(state, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA);
	assert_int_equal(r.action, AEGIS_ANSWER_SEND);
	/* NOERROR with no answer, never NXDOMAIN (curl's parallel A+AAAA would fail the A answer too). */
	assert_int_equal(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 0);
	assert_true(ldns_pkt_aa(r.pkt));
	ldns_pkt_free(r.pkt);
}

static void test_dual_stack(void **state)
{
	struct result r = ask(state, "legacy.company.internal.", LDNS_RR_TYPE_AAAA);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "2001:db8::10");
	ldns_pkt_free(r.pkt);
}

static void test_rotation(void **state)
{
	struct fx *f = *state;
	struct aegis_answer_ctx c = f->ctx;
	c.rotor = 0;
	struct result r0 = ask_ctx(&c, "legacy.company.internal.", LDNS_RR_TYPE_A, 0, 0, 0);
	c.rotor = 1;
	struct result r1 = ask_ctx(&c, "legacy.company.internal.", LDNS_RR_TYPE_A, 0, 0, 0);
	assert_int_equal(ldns_pkt_ancount(r0.pkt), 2);
	assert_int_equal(ldns_pkt_ancount(r1.pkt), 2);
	ASSERT_RR(r0.pkt, LDNS_SECTION_ANSWER, 0, 0, "192.0.2.10");
	ASSERT_RR(r1.pkt, LDNS_SECTION_ANSWER, 0, 0, "192.0.2.20");
	ldns_pkt_free(r0.pkt);
	ldns_pkt_free(r1.pkt);
}

static void test_auto_vip(void **state)
{
	struct result r = ask(state, "api.example.com.", LDNS_RR_TYPE_A);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	char *s = rr_str(r.pkt, LDNS_SECTION_ANSWER, 0, 0);
	assert_true(strncmp(s, "240.240.", 8) == 0);
	free(s);
	ldns_pkt_free(r.pkt);
	r = ask(state, "api.example.com.", LDNS_RR_TYPE_AAAA);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	s = rr_str(r.pkt, LDNS_SECTION_ANSWER, 0, 0);
	assert_true(strncmp(s, "2001:2::", 8) == 0);
	free(s);
	ldns_pkt_free(r.pkt);
}

static void test_wildcard_owner_is_asked_name(void **state)
{
	struct result r = ask(state, "En.Wikipedia.org.", LDNS_RR_TYPE_A);
	assert_int_equal(r.action, AEGIS_ANSWER_SEND);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, -1, "En.Wikipedia.org.");
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "198.51.100.7");
	ldns_pkt_free(r.pkt);
	/* Most specific wildcard first. */
	r = ask(state, "x.de.wikipedia.org.", LDNS_RR_TYPE_A);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "198.51.100.8");
	ldns_pkt_free(r.pkt);
	/* A wildcard does not cover its parent. */
	r = ask(state, "wikipedia.org.", LDNS_RR_TYPE_A);
	assert_int_equal(r.action, AEGIS_ANSWER_FORWARD);
}

static void test_search_suffix_cname(void **state)
{
	struct result r = ask(state, "api.example.com.default.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.action, AEGIS_ANSWER_SEND);
	assert_int_equal(r.info.match, AEGIS_MATCH_ALIAS);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 2);
	ldns_rr *c = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
	assert_int_equal(ldns_rr_get_type(c), LDNS_RR_TYPE_CNAME);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, -1, "api.example.com.default.svc.cluster.local.");
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "api.example.com.");
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 1, -1, "api.example.com.");
	ldns_pkt_free(r.pkt);
	/* The other suffixes of the list too. */
	r = ask(state, "api.example.com.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 2);
	ldns_pkt_free(r.pkt);
}

static void test_search_suffix_wildcard_target_has_no_star(void **state)
{
	struct result r = ask(state, "en.wikipedia.org.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 2);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "en.wikipedia.org.");
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 1, -1, "en.wikipedia.org.");
	ldns_pkt_free(r.pkt);
}

static void test_short_forms(void **state)
{
	const char *forms[] = {"reviews.", "reviews.default.", "reviews.default.svc.",
	                       "reviews.default.default.svc.cluster.local.", "reviews.svc.cluster.local."};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct result r = ask(state, forms[i], LDNS_RR_TYPE_A);
		assert_int_equal(r.action, AEGIS_ANSWER_SEND);
		assert_int_equal(ldns_pkt_ancount(r.pkt), 2);
		ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "reviews.default.svc.cluster.local.");
		ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 1, 0, "10.96.10.11");
		ldns_pkt_free(r.pkt);
	}
}

static void test_headless_and_pods(void **state)
{
	struct result r = ask(state, "db.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	/* Ready endpoints only. */
	assert_int_equal(ldns_pkt_ancount(r.pkt), 2);
	ldns_pkt_free(r.pkt);
	r = ask(state, "db-1.db.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "10.244.2.32");
	ldns_pkt_free(r.pkt);
	r = ask(state, "db-2.db.shop.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.action, AEGIS_ANSWER_FORWARD);
}

static void test_srv(void **state)
{
	struct result r = ask(state, "_https._tcp.api.example.com.", LDNS_RR_TYPE_SRV);
	assert_int_equal(r.action, AEGIS_ANSWER_SEND);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	ldns_rr *srv = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
	assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(srv, 2)), 443);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 3, "api.example.com.");
	/* The target's address rides along in the additional section. */
	assert_true(ldns_pkt_arcount(r.pkt) >= 1);
	ldns_pkt_free(r.pkt);
	r = ask(state, "_postgres._tcp.db.shop.svc.cluster.local.", LDNS_RR_TYPE_SRV);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 2);
	ldns_pkt_free(r.pkt);
}

static void test_ptr(void **state)
{
	struct result r = ask(state, "11.10.96.10.in-addr.arpa.", LDNS_RR_TYPE_PTR);
	assert_int_equal(r.action, AEGIS_ANSWER_SEND);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "reviews.default.svc.cluster.local.");
	ldns_pkt_free(r.pkt);
	r = ask(state, "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
	        LDNS_RR_TYPE_PTR);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 1);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "legacy.company.internal.");
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, -1,
	          "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.");
	ldns_pkt_free(r.pkt);
	/* A reverse name asked under a search suffix (the PTR node stores only its address): a CNAME to the
	 * reverse name, whose owner name is written from the query, then the PTR. */
	r = ask(state, "11.10.96.10.in-addr.arpa.default.svc.cluster.local.", LDNS_RR_TYPE_PTR);
	assert_int_equal(r.info.match, AEGIS_MATCH_ALIAS);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 2);
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 0, 0, "11.10.96.10.in-addr.arpa.");
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 1, -1, "11.10.96.10.in-addr.arpa.");
	ASSERT_RR(r.pkt, LDNS_SECTION_ANSWER, 1, 0, "reviews.default.svc.cluster.local.");
	ldns_pkt_free(r.pkt);
}

static void test_other_types_forwarded(void **state)
{
	struct result r = ask(state, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_MX);
	assert_int_equal(r.action, AEGIS_ANSWER_FORWARD);
	r = ask(state, "www.example.org.", LDNS_RR_TYPE_A);
	assert_int_equal(r.action, AEGIS_ANSWER_FORWARD);
	r = ask(state, "nosuch.default.svc.cluster.local.", LDNS_RR_TYPE_A);
	assert_int_equal(r.action, AEGIS_ANSWER_FORWARD);
}

static void test_truncation(void **state)
{
	struct fx *f = *state;
	/* Plain UDP: 512 bytes; 100 A records do not fit -> TC, no partial answer. */
	struct result r = ask_ctx(&f->ctx, "big.example.com.", LDNS_RR_TYPE_A, 0, 0, 0);
	assert_true(ldns_pkt_tc(r.pkt));
	assert_int_equal(ldns_pkt_ancount(r.pkt), 0);
	assert_true(r.len <= 512);
	ldns_pkt_free(r.pkt);
	/* EDNS 4096: fits. */
	r = ask_ctx(&f->ctx, "big.example.com.", LDNS_RR_TYPE_A, 0, 4096, 0);
	assert_false(ldns_pkt_tc(r.pkt));
	assert_int_equal(ldns_pkt_ancount(r.pkt), 100);
	ldns_pkt_free(r.pkt);
	/* EDNS 1232: TC, and the OPT record is still there. */
	r = ask_ctx(&f->ctx, "big.example.com.", LDNS_RR_TYPE_A, 0, 1232, 0);
	assert_true(ldns_pkt_tc(r.pkt));
	assert_true(r.len <= 1232);
	assert_int_equal(ldns_pkt_edns_udp_size(r.pkt), AEGIS_DNS_EDNS_ADVERTISE);
	ldns_pkt_free(r.pkt);
	/* TCP: everything. */
	r = ask_ctx(&f->ctx, "big.example.com.", LDNS_RR_TYPE_A, AEGIS_DNS_TCP_MAX, 0, 0);
	assert_false(ldns_pkt_tc(r.pkt));
	assert_int_equal(ldns_pkt_ancount(r.pkt), 100);
	ldns_pkt_free(r.pkt);
}

static void test_edns_echo_and_badvers(void **state)
{
	struct fx *f = *state;
	struct result r = ask_ctx(&f->ctx, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 1400, 0);
	assert_true(ldns_pkt_edns(r.pkt));
	assert_int_equal(ldns_pkt_edns_udp_size(r.pkt), AEGIS_DNS_EDNS_ADVERTISE);
	assert_true(ldns_pkt_edns_do(r.pkt));
	ldns_pkt_free(r.pkt);
	/* No OPT in the query: none in the answer. */
	r = ask_ctx(&f->ctx, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 0, 0);
	assert_int_equal(ldns_pkt_arcount(r.pkt), 0);
	ldns_pkt_free(r.pkt);
	/* Version 1: BADVERS (extended rcode 16 = OPT ext 1, header 0), our version 0. */
	r = ask_ctx(&f->ctx, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 1400, 1);
	assert_int_equal(r.info.rcode, AEGIS_RCODE_BADVERS);
	assert_int_equal(ldns_pkt_edns_extended_rcode(r.pkt), 1);
	assert_int_equal(ldns_pkt_get_rcode(r.pkt), 0);
	assert_int_equal(ldns_pkt_edns_version(r.pkt), 0);
	assert_int_equal(ldns_pkt_ancount(r.pkt), 0);
	ldns_pkt_free(r.pkt);
}

static void test_formerr_and_drop(void **state)
{
	struct fx *f = *state;
	uint8_t out[512];
	size_t outlen;
	struct aegis_dns_query q;
	struct aegis_answer_info info;
	/* Header only, QDCOUNT 0. */
	uint8_t noq[12] = {0xBE, 0xEF, 0x01, 0x00};
	assert_int_equal(aegis_answer(&f->ctx, noq, sizeof(noq), 0, out, sizeof(out), &outlen, &q, &info),
	                 AEGIS_ANSWER_SEND);
	assert_int_equal(out[3] & 0xF, AEGIS_RCODE_FORMERR);
	assert_int_equal(aegis_wire_u16(out + 4), 0);
	/* Garbage shorter than a header: dropped. */
	assert_int_equal(aegis_answer(&f->ctx, noq, 5, 0, out, sizeof(out), &outlen, &q, &info),
	                 AEGIS_ANSWER_DROP);
	/* A response: dropped. */
	uint8_t resp[12] = {0xBE, 0xEF, 0x81, 0x00, 0, 1};
	assert_int_equal(aegis_answer(&f->ctx, resp, sizeof(resp), 0, out, sizeof(out), &outlen, &q, &info),
	                 AEGIS_ANSWER_DROP);
}

static void test_before_first_config(void **state)
{
	struct fx *f = *state;
	struct aegis_answer_ctx c = f->ctx;
	c.table = NULL;
	struct result r = ask_ctx(&c, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 0, 0);
	assert_int_equal(r.action, AEGIS_ANSWER_SEND);
	assert_int_equal(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_SERVFAIL);
	ldns_pkt_free(r.pkt);
	r = ask_ctx(&c, "www.example.org.", LDNS_RR_TYPE_A, 0, 0, 0);
	assert_int_equal(r.action, AEGIS_ANSWER_FORWARD);
	c.forward_unready = true;
	r = ask_ctx(&c, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 0, 0);
	assert_int_equal(r.action, AEGIS_ANSWER_FORWARD);
}

static void test_ttl_configurable(void **state)
{
	struct fx *f = *state;
	struct aegis_answer_ctx c = f->ctx;
	c.ttl = 5;
	struct result r = ask_ctx(&c, "reviews.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 0, 0);
	assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0)), 5);
	ldns_pkt_free(r.pkt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exact_a_authoritative),
	        cmocka_unit_test(test_case_preserved),
	        cmocka_unit_test(test_nodata_for_other_family),
	        cmocka_unit_test(test_dual_stack),
	        cmocka_unit_test(test_rotation),
	        cmocka_unit_test(test_auto_vip),
	        cmocka_unit_test(test_wildcard_owner_is_asked_name),
	        cmocka_unit_test(test_search_suffix_cname),
	        cmocka_unit_test(test_search_suffix_wildcard_target_has_no_star),
	        cmocka_unit_test(test_short_forms),
	        cmocka_unit_test(test_headless_and_pods),
	        cmocka_unit_test(test_srv),
	        cmocka_unit_test(test_ptr),
	        cmocka_unit_test(test_other_types_forwarded),
	        cmocka_unit_test(test_truncation),
	        cmocka_unit_test(test_edns_echo_and_badvers),
	        cmocka_unit_test(test_formerr_and_drop),
	        cmocka_unit_test(test_before_first_config),
	        cmocka_unit_test(test_ttl_configurable),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
