/* Tests proxy/dns_table.c: which names the table holds, with which records, and its layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>

#include <cmocka.h>

#include "../../proxy/dns_table.c" /* struct aegis_table: refcount and index sizes */
#include "model_builders.h"

/* ---- helpers ------------------------------------------------------------------------------------------ */

static const struct aegis_dns_node *find(const struct aegis_table *t, const char *name)
{
	uint8_t w[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str(name, w);
	assert_true(n > 0);
	return aegis_table_find(t, w, (size_t)n);
}

static const struct aegis_dns_node *find_wild(const struct aegis_table *t, const char *name)
{
	uint8_t w[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str(name, w);
	assert_true(n > 0);
	return aegis_table_find_wildcard(t, w, (size_t)n);
}

static const char *name_str(const struct aegis_dns_name *n)
{
	static char buf[8][300];
	static int k;
	char *b = buf[k++ % 8];
	assert_true(aegis_dns_name_to_str(n->name, n->len, b, 300) > 0);
	return b;
}

static const char *nstr(struct aegis_dns_name n)
{
	return name_str(&n);
}

/* The presentation form of any node's owner name, PTR nodes included. */
static const char *owner_str(const struct aegis_dns_node *n)
{
	uint8_t buf[AEGIS_DNS_NAME_BUF];
	return nstr(aegis_node_owner(n, buf));
}

/* The node's addresses as "a b c" (A first, then AAAA) in table order. */
static const char *addrs(const struct aegis_dns_node *n)
{
	static char buf[4096];
	size_t o = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < n->n_a; i++) {
		char a[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET, aegis_node_a(n) + 4 * i, a, sizeof(a));
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? " " : "", a);
	}
	for (unsigned i = 0; i < n->n_aaaa; i++) {
		char a[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, aegis_node_aaaa(n) + 16 * i, a, sizeof(a));
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? " " : "", a);
	}
	return buf;
}

/* The node's PTR targets as "a. b." */
static const char *ptrs(const struct aegis_dns_node *n)
{
	static char buf[4096];
	size_t o = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < n->n_ptr; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? " " : "",
		                      nstr(aegis_node_ptr(n, i)));
	return buf;
}

static struct aegis_table *build(const struct aegis_config *c, const char *local,
                                 struct aegis_vip_alloc *vips)
{
	struct aegis_table_opts o = {.cluster_domain = NULL, .local_cluster = local, .vips = vips};
	struct aegis_table *t = NULL;
	struct aegis_diag d;
	memset(&d, 0, sizeof(d));
	int rc = aegis_table_build(c, &o, &t, &d);
	if (rc != 0)
		fail_msg("build: %s (%s)", aegis_strerror(rc), d.msg);
	return t;
}

static const struct aegis_dns_node *must(const struct aegis_table *t, const char *name)
{
	const struct aegis_dns_node *n = find(t, name);
	if (n == NULL)
		fail_msg("%s not in table", name);
	return n;
}

/* An independent oracle for the node order: canonical DNS order (RFC 4034 section 6.1), labels compared
 * right to left, written the slow way. */
static int cmp_canonical(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	uint8_t ao[AEGIS_DNS_MAX_LABELS], bo[AEGIS_DNS_MAX_LABELS];
	int na = 0, nb = 0;
	for (size_t i = 0; i < alen && a[i] != 0 && na < AEGIS_DNS_MAX_LABELS; i += (size_t)a[i] + 1)
		ao[na++] = (uint8_t)i;
	for (size_t i = 0; i < blen && b[i] != 0 && nb < AEGIS_DNS_MAX_LABELS; i += (size_t)b[i] + 1)
		bo[nb++] = (uint8_t)i;
	while (na > 0 && nb > 0) {
		const uint8_t *la = a + ao[--na], *lb = b + bo[--nb];
		size_t m = la[0] < lb[0] ? la[0] : lb[0];
		int c = memcmp(la + 1, lb + 1, m);
		if (c != 0)
			return c;
		if (la[0] != lb[0])
			return la[0] < lb[0] ? -1 : 1;
	}
	return na - nb;
}

/* ---- ServiceEntries ----------------------------------------------------------------------------------- */

static void test_se_addresses(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "a", "api.example.com",
	      "10.0.0.2 10.0.0.1 2001:db8::1 10.0.0.2 10.9.0.0/16 10.0.0.3/32 2001:db8::2/128 2001:db8::/64 "
	      "junk");
	mb_se(c, "v6", "v6only.example.com", "2001:db8::9");
	struct aegis_table *t = build(c, NULL, NULL);
	const struct aegis_dns_node *n = must(t, "api.example.com");
	assert_int_equal(n->kind, AEGIS_NODE_HOST);
	/* configured order, duplicates dropped, host-sized CIDRs kept, ranges and junk skipped */
	assert_string_equal(addrs(n), "10.0.0.2 10.0.0.1 10.0.0.3 2001:db8::1 2001:db8::2");
	/* a name with only AAAA is still a name (the answer path turns A into NODATA, not NXDOMAIN) */
	n = must(t, "v6only.example.com");
	assert_int_equal(n->n_a, 0);
	assert_int_equal(n->n_aaaa, 1);
	assert_null(find(t, "example.com"));
	assert_null(find(t, "other.example.com"));
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_se_vip_dual_stack(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "a", "auto.example.com", "");
	mb_se(c, "w", "*.wild.example.com", "");
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	struct aegis_table *t = build(c, NULL, va); /* the build brings the allocator up to date */
	uint8_t v4[4], v6[16];
	assert_int_equal(aegis_vip_get(va, "auto.example.com", v4, v6), 0);
	const struct aegis_dns_node *n = must(t, "auto.example.com");
	assert_int_equal(n->n_a, 1);
	assert_int_equal(n->n_aaaa, 1);
	assert_memory_equal(aegis_node_a(n), v4, 4);
	assert_memory_equal(aegis_node_aaaa(n), v6, 16);
	assert_int_equal(aegis_node_a(n)[0], 240);
	assert_int_equal(aegis_node_a(n)[1], 240);
	n = find_wild(t, "x.wild.example.com");
	assert_non_null(n);
	assert_int_equal(aegis_vip_get(va, "*.wild.example.com", v4, v6), 0);
	assert_memory_equal(aegis_node_a(n), v4, 4);
	aegis_table_unref(t);

	/* without an allocator the host is a name without records */
	t = build(c, NULL, NULL);
	n = must(t, "auto.example.com");
	assert_int_equal(n->n_a + n->n_aaaa, 0);
	aegis_table_unref(t);
	aegis_vip_alloc_free(va);
	aegis_config_free(c);
}

static void test_vip_stable_across_builds(void **state)
{
	(void)state;
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	struct aegis_config *c1 = aegis_config_new();
	mb_se(c1, "a", "a.example.com", "");
	mb_se(c1, "b", "b.example.com", "");
	struct aegis_table *t1 = build(c1, NULL, va);
	struct aegis_config *c2 = aegis_config_new();
	mb_se(c2, "c", "c.example.com", "");
	mb_se(c2, "a", "a.example.com", "");
	struct aegis_table *t2 = build(c2, NULL, va);
	char a1[256];
	snprintf(a1, sizeof(a1), "%s", addrs(must(t1, "a.example.com")));
	assert_string_equal(addrs(must(t2, "a.example.com")), a1);
	assert_null(find(t2, "b.example.com"));
	/* no two hosts share a VIP */
	assert_string_not_equal(addrs(must(t2, "c.example.com")), a1);
	aegis_table_unref(t1);
	aegis_table_unref(t2);
	aegis_config_free(c1);
	aegis_config_free(c2);
	aegis_vip_alloc_free(va);
}

static void test_case_is_callers_job(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "a", "api.example.com", "10.0.0.1");
	struct aegis_table *t = build(c, NULL, NULL);
	/* aegis_dns_name_from_str lower-cases, so a mixed-case question found this way hits */
	assert_non_null(find(t, "API.Example.COM"));
	/* a raw mixed-case wire name does not: lower-casing is the caller's job */
	static const uint8_t raw[] = "\003API\007example\003com";
	assert_null(aegis_table_find(t, raw, sizeof(raw)));
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_wildcards(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "outer", "*.example.com", "10.1.0.1");
	mb_se(c, "inner", "*.b.example.com", "10.2.0.1");
	mb_se(c, "exact", "b.example.com", "10.3.0.1");
	struct aegis_table *t = build(c, NULL, NULL);
	/* most specific first */
	const struct aegis_dns_node *n = find_wild(t, "a.b.example.com");
	assert_non_null(n);
	assert_int_equal(n->kind, AEGIS_NODE_WILDCARD);
	assert_string_equal(addrs(n), "10.2.0.1");
	assert_string_equal(nstr(aegis_node_name(n)), "b.example.com.");
	assert_string_equal(addrs(find_wild(t, "x.y.z.b.example.com")), "10.2.0.1");
	assert_string_equal(addrs(find_wild(t, "x.example.com")), "10.1.0.1");
	/* b.example.com is below *.example.com; its own wildcard never matches it */
	assert_string_equal(addrs(find_wild(t, "b.example.com")), "10.1.0.1");
	/* a wildcard never matches its parent, nor anything outside */
	assert_null(find_wild(t, "example.com"));
	assert_null(find_wild(t, "com"));
	assert_null(find_wild(t, "example.org"));
	assert_null(find_wild(t, "aexample.com"));
	/* wildcards are not exact names; the exact node beside one is found separately */
	assert_null(find(t, "example.com"));
	assert_null(find(t, "x.example.com"));
	assert_string_equal(addrs(must(t, "b.example.com")), "10.3.0.1");
	assert_int_equal(must(t, "b.example.com")->kind, AEGIS_NODE_HOST);
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_wildcard_not_in_ptr_and_no_srv(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_service_entry *se = mb_se(c, "w", "*.example.com", "10.9.9.9");
	mb_se_port(c, se, "http", 80, "HTTP");
	struct aegis_table *t = build(c, NULL, NULL);
	assert_null(find(t, "9.9.9.10.in-addr.arpa"));
	for (size_t i = 0; i < aegis_table_count(t); i++) {
		const struct aegis_dns_node *n = aegis_table_node_at(t, i);
		assert_int_not_equal(n->kind, AEGIS_NODE_PTR);
		assert_int_not_equal(n->kind, AEGIS_NODE_SRV);
	}
	assert_int_equal(aegis_table_count(t), 1);
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_se_srv(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_service_entry *se = mb_se(c, "a", "api.example.com", "10.0.0.1");
	mb_se_port(c, se, "https", 443, "HTTPS");
	mb_se_port(c, se, "dns", 53, "UDP");
	mb_se_port(c, se, "", 8080, "TCP"); /* unnamed: no SRV name */
	struct aegis_table *t = build(c, NULL, NULL);
	const struct aegis_dns_node *n = must(t, "_https._tcp.api.example.com");
	assert_int_equal(n->kind, AEGIS_NODE_SRV);
	assert_int_equal(n->n_srv, 1);
	assert_int_equal(aegis_node_srv(n, 0).priority, 0);
	assert_int_equal(aegis_node_srv(n, 0).weight, 10);
	assert_int_equal(aegis_node_srv(n, 0).port, 443);
	assert_string_equal(nstr(aegis_node_srv(n, 0).target), "api.example.com.");
	n = must(t, "_dns._udp.api.example.com");
	assert_int_equal(aegis_node_srv(n, 0).port, 53);
	assert_null(find(t, "_dns._tcp.api.example.com"));
	assert_null(find(t, "_https._udp.api.example.com"));
	size_t srv = 0;
	for (size_t i = 0; i < aegis_table_count(t); i++)
		srv += aegis_table_node_at(t, i)->kind == AEGIS_NODE_SRV;
	assert_int_equal(srv, 2);
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_duplicate_names_merge(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_service_entry *se = mb_se(c, "a", "api.example.com", "10.0.0.1 10.0.0.2");
	mb_se_port(c, se, "http", 80, "HTTP");
	se = mb_se(c, "b", "api.example.com", "10.0.0.2 10.0.0.3");
	mb_se_port(c, se, "http", 80, "HTTP");
	mb_nds(c, "api.example.com", "10.0.0.4", "");
	struct aegis_table *t = build(c, NULL, NULL);
	assert_string_equal(addrs(must(t, "api.example.com")), "10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4");
	assert_int_equal(must(t, "_http._tcp.api.example.com")->n_srv, 1);
	size_t hosts = 0;
	for (size_t i = 0; i < aegis_table_count(t); i++)
		hosts += aegis_table_node_at(t, i)->kind == AEGIS_NODE_HOST;
	assert_int_equal(hosts, 1);
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_address_cap(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_name_info *ni = mb_nds(c, "big.example.com", "", "");
	const size_t n = AEGIS_DNS_MAX_ADDRS_PER_NAME + 100;
	const char **ips = mb_alloc(c, n * sizeof(*ips));
	for (size_t i = 0; i < n; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.%zu.%zu.%zu", i >> 16, (i >> 8) & 255, i & 255);
		ips[i] = mb_str(c, ip);
	}
	ni->ips = ips;
	ni->n_ips = n;
	aegis_log_set_level(AEGIS_LOG_OFF);
	struct aegis_table *t = build(c, NULL, NULL);
	aegis_log_set_level(AEGIS_LOG_INFO);
	const struct aegis_dns_node *node = must(t, "big.example.com");
	assert_int_equal(node->n_a, AEGIS_DNS_MAX_ADDRS_PER_NAME);
	/* the first ones configured are the ones kept */
	assert_int_equal(aegis_node_a(node)[4 * 4095 + 3], 4095 & 255);
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_invalid_host(void **state)
{
	(void)state;
	const char *bad[] = {"bad host.example.com", "a..example.com", "a.*.example.com", "*", "*.", "",
	                     "x.example.com/path"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aegis_config *c = aegis_config_new();
		mb_se(c, "good", "ok.example.com", "10.0.0.1");
		struct aegis_service_entry *se = mb_se(c, "broken", "x", "10.0.0.2");
		const char **h = mb_alloc(c, sizeof(*h));
		h[0] = bad[i];
		se->hosts = h;
		int line = se->meta.line;
		struct aegis_table *t = (struct aegis_table *)(uintptr_t)1;
		struct aegis_diag d;
		memset(&d, 0, sizeof(d));
		struct aegis_table_opts o = {0};
		assert_int_equal(aegis_table_build(c, &o, &t, &d), AEGIS_EINVAL);
		assert_ptr_equal(t, (struct aegis_table *)(uintptr_t)1); /* untouched */
		assert_string_equal(d.file, "test.yaml");
		assert_int_equal(d.line, line);
		assert_non_null(strstr(d.msg, bad[i]));
		aegis_config_free(c);
	}
	/* a label over 63 bytes */
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "long", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com", "");
	struct aegis_table *t = NULL;
	assert_int_equal(aegis_table_build(c, NULL, &t, NULL), AEGIS_EINVAL);
	assert_null(t);
	aegis_config_free(c);
}

/* ---- Kubernetes -----------------------------------------------------------------------------------------
 */

static void test_k8s_cluster_ip(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_k8s_service *s = mb_svc(c, "", "shop", "cart", "10.96.0.10 fd00::10");
	mb_svc_port(c, s, "http", 8080, "TCP");
	mb_svc_port(c, s, "metrics", 9090, "UDP");
	mb_svc_port(c, s, "", 1, "TCP");
	struct aegis_table *t = build(c, NULL, NULL);
	assert_string_equal(addrs(must(t, "cart.shop.svc.cluster.local")), "10.96.0.10 fd00::10");
	assert_string_equal(addrs(must(t, "cart.shop.svc.clusterset.local")), "10.96.0.10 fd00::10");
	/* an unnamed local cluster has no .global name */
	for (size_t i = 0; i < aegis_table_count(t); i++)
		assert_null(strstr(owner_str(aegis_table_node_at(t, i)), "global"));
	const struct aegis_dns_node *n = must(t, "_http._tcp.cart.shop.svc.cluster.local");
	assert_int_equal(n->n_srv, 1);
	assert_int_equal(aegis_node_srv(n, 0).port, 8080);
	assert_string_equal(nstr(aegis_node_srv(n, 0).target), "cart.shop.svc.cluster.local.");
	assert_non_null(find(t, "_metrics._udp.cart.shop.svc.cluster.local"));
	/* one canonical name: the clusterset.local mirror is not a PTR owner */
	assert_string_equal(ptrs(must(t, "10.0.96.10.in-addr.arpa")), "cart.shop.svc.cluster.local.");
	aegis_table_unref(t);

	/* another cluster domain */
	struct aegis_table_opts o = {.cluster_domain = "corp.internal"};
	assert_int_equal(aegis_table_build(c, &o, &t, NULL), 0);
	assert_non_null(find(t, "cart.shop.svc.corp.internal"));
	assert_null(find(t, "cart.shop.svc.cluster.local"));
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_k8s_headless(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_k8s_service *s = mb_svc(c, "", "db", "pg", "");
	s->headless = true;
	mb_svc_port(c, s, "sql", 5432, "TCP");
	struct aegis_endpoint_slice *sl = mb_slice(c, "", "db", "pg");
	mb_ep(c, sl, "10.1.0.1", true, "pg-0");
	mb_ep(c, sl, "10.1.0.2", false, "pg-1"); /* not ready: neither its address nor its name */
	mb_ep(c, sl, "10.1.0.3", true, "");      /* ready, no hostname: address only */
	mb_ep(c, sl, "10.1.0.4", true, "pg-2");
	struct aegis_endpoint_slice *other = mb_slice(c, "", "other", "pg"); /* other namespace */
	mb_ep(c, other, "10.2.0.1", true, "x");
	struct aegis_table *t = build(c, NULL, NULL);
	assert_string_equal(addrs(must(t, "pg.db.svc.cluster.local")), "10.1.0.1 10.1.0.3 10.1.0.4");
	assert_string_equal(addrs(must(t, "pg.db.svc.clusterset.local")), "10.1.0.1 10.1.0.3 10.1.0.4");
	assert_string_equal(addrs(must(t, "pg-0.pg.db.svc.cluster.local")), "10.1.0.1");
	assert_string_equal(addrs(must(t, "pg-2.pg.db.svc.cluster.local")), "10.1.0.4");
	assert_null(find(t, "pg-1.pg.db.svc.cluster.local"));
	assert_null(find(t, "x.pg.db.svc.cluster.local"));
	assert_null(find(t, "2.0.1.10.in-addr.arpa"));
	const struct aegis_dns_node *n = must(t, "_sql._tcp.pg.db.svc.cluster.local");
	assert_int_equal(n->n_srv, 2);
	assert_string_equal(nstr(aegis_node_srv(n, 0).target), "pg-0.pg.db.svc.cluster.local.");
	assert_string_equal(nstr(aegis_node_srv(n, 1).target), "pg-2.pg.db.svc.cluster.local.");
	assert_int_equal(aegis_node_srv(n, 1).port, 5432);
	/* a pod's address points back at its own name first */
	assert_string_equal(ptrs(must(t, "1.0.1.10.in-addr.arpa")),
	                    "pg-0.pg.db.svc.cluster.local. pg.db.svc.cluster.local.");
	assert_string_equal(ptrs(must(t, "3.0.1.10.in-addr.arpa")), "pg.db.svc.cluster.local.");
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_k8s_multicluster(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_svc(c, "west", "shop", "cart", "10.2.0.1");
	mb_svc(c, "east", "shop", "cart", "10.1.0.1");
	mb_svc(c, "east", "shop", "only-east", "10.1.0.2");

	/* local cluster has it: the local instance answers */
	struct aegis_table *t = build(c, "west", NULL);
	assert_string_equal(addrs(must(t, "cart.shop.svc.cluster.local")), "10.2.0.1");
	assert_string_equal(addrs(must(t, "cart.shop.svc.clusterset.local")), "10.2.0.1");
	assert_string_equal(addrs(must(t, "cart.shop.west.global")), "10.2.0.1");
	assert_string_equal(addrs(must(t, "cart.shop.east.global")), "10.1.0.1");
	/* DNS_BEHAVIOUR.md's namespace-less form, while the name is unique in its cluster */
	assert_string_equal(addrs(must(t, "cart.west.global")), "10.2.0.1");
	assert_string_equal(addrs(must(t, "cart.east.global")), "10.1.0.1");
	/* not in the local cluster: the first cluster (by name) that has it */
	assert_string_equal(addrs(must(t, "only-east.shop.svc.cluster.local")), "10.1.0.2");
	assert_string_equal(addrs(must(t, "only-east.shop.east.global")), "10.1.0.2");
	assert_null(find(t, "only-east.shop.west.global"));
	/* PTR: the canonical name; a remote cluster's IP, which only its .global name has, gets that */
	assert_string_equal(ptrs(must(t, "1.0.2.10.in-addr.arpa")), "cart.shop.svc.cluster.local.");
	assert_string_equal(ptrs(must(t, "1.0.1.10.in-addr.arpa")), "cart.shop.east.global.");
	assert_string_equal(ptrs(must(t, "2.0.1.10.in-addr.arpa")), "only-east.shop.svc.cluster.local.");
	aegis_table_unref(t);

	/* no local cluster, or one that does not have it: first in name order */
	t = build(c, NULL, NULL);
	assert_string_equal(addrs(must(t, "cart.shop.svc.cluster.local")), "10.1.0.1");
	aegis_table_unref(t);
	t = build(c, "north", NULL);
	assert_string_equal(addrs(must(t, "cart.shop.svc.cluster.local")), "10.1.0.1");
	aegis_table_unref(t);

	/* A second namespace with a "cart" in east: cart.east.global would have to guess, so it is left
	 * out; the namespaced forms still answer, and west's unique short form stays. */
	mb_svc(c, "east", "web", "cart", "10.1.0.9");
	t = build(c, "west", NULL);
	assert_null(find(t, "cart.east.global"));
	assert_string_equal(addrs(must(t, "cart.shop.east.global")), "10.1.0.1");
	assert_string_equal(addrs(must(t, "cart.web.east.global")), "10.1.0.9");
	assert_string_equal(addrs(must(t, "cart.west.global")), "10.2.0.1");
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_k8s_headless_multicluster(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_k8s_service *s = mb_svc(c, "east", "db", "pg", "");
	s->headless = true;
	s = mb_svc(c, "west", "db", "pg", "");
	s->headless = true;
	struct aegis_endpoint_slice *sl = mb_slice(c, "east", "db", "pg");
	mb_ep(c, sl, "10.1.0.1", true, "pg-e");
	sl = mb_slice(c, "west", "db", "pg");
	mb_ep(c, sl, "10.2.0.1", true, "pg-w");
	mb_ep(c, sl, "10.2.0.2", false, "pg-w2");
	struct aegis_table *t = build(c, "west", NULL);
	/* all clusters merged, the local cluster first */
	assert_string_equal(addrs(must(t, "pg.db.svc.cluster.local")), "10.2.0.1 10.1.0.1");
	assert_string_equal(addrs(must(t, "pg.db.svc.clusterset.local")), "10.2.0.1 10.1.0.1");
	assert_string_equal(addrs(must(t, "pg-e.pg.db.svc.cluster.local")), "10.1.0.1");
	assert_string_equal(addrs(must(t, "pg.db.east.global")), "10.1.0.1");
	assert_string_equal(addrs(must(t, "pg.db.west.global")), "10.2.0.1");
	aegis_table_unref(t);
	t = build(c, "east", NULL);
	assert_string_equal(addrs(must(t, "pg.db.svc.cluster.local")), "10.1.0.1 10.2.0.1");
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_k8s_external_name(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_k8s_service *s = mb_svc(c, "", "shop", "pay", "");
	s->type = AEGIS_SVC_EXTERNAL_NAME;
	s->external_name = "payments.example.net";
	mb_svc_port(c, s, "https", 443, "TCP");
	struct aegis_table *t = build(c, NULL, NULL);
	const struct aegis_dns_node *n = must(t, "pay.shop.svc.cluster.local");
	assert_int_equal(n->kind, AEGIS_NODE_CNAME);
	assert_string_equal(nstr(aegis_node_cname(n)), "payments.example.net.");
	assert_int_equal(n->n_a + n->n_aaaa, 0);
	assert_int_equal(must(t, "pay.shop.svc.clusterset.local")->kind, AEGIS_NODE_CNAME);
	assert_null(find(t, "_https._tcp.pay.shop.svc.cluster.local"));
	/* non-CNAME nodes carry no target */
	aegis_table_unref(t);

	/* a ServiceEntry for the same name wins over the CNAME: addresses and a CNAME cannot coexist */
	mb_se(c, "se", "pay.shop.svc.cluster.local", "10.5.5.5");
	t = build(c, NULL, NULL);
	n = must(t, "pay.shop.svc.cluster.local");
	assert_int_equal(n->kind, AEGIS_NODE_HOST);
	assert_int_equal(aegis_node_cname(n).len, 0);
	assert_string_equal(addrs(n), "10.5.5.5");
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_k8s_invalid_name(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_k8s_service *s = mb_svc(c, "", "shop", "bad name", "10.0.0.1");
	int line = s->meta.line;
	struct aegis_table *t = NULL;
	struct aegis_diag d;
	assert_int_equal(aegis_table_build(c, NULL, &t, &d), AEGIS_EINVAL);
	assert_int_equal(d.line, line);
	assert_non_null(strstr(d.msg, "bad name"));
	aegis_config_free(c);
}

/* ---- NDS, PTR --------------------------------------------------------------------------------------- */

static void test_nds(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_nds(c, "reviews.bookinfo.svc.cluster.local", "10.0.0.7 fd00::7",
	       "reviews.bookinfo reviews.bookinfo.svc");
	struct aegis_table *t = build(c, NULL, NULL);
	assert_string_equal(addrs(must(t, "reviews.bookinfo.svc.cluster.local")), "10.0.0.7 fd00::7");
	assert_string_equal(addrs(must(t, "reviews.bookinfo")), "10.0.0.7 fd00::7");
	assert_string_equal(addrs(must(t, "reviews.bookinfo.svc")), "10.0.0.7 fd00::7");
	aegis_table_unref(t);
	aegis_config_free(c);
}

static void test_ptr(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "a", "a.example.com b.example.com", "192.0.2.1 2001:db8::abcd");
	mb_se(c, "a2", "a.example.com", "192.0.2.1"); /* same owner again: still one PTR */
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	mb_se(c, "v", "vip.example.com", "");
	struct aegis_table *t = build(c, NULL, va);
	const struct aegis_dns_node *n = must(t, "1.2.0.192.in-addr.arpa");
	assert_int_equal(n->kind, AEGIS_NODE_PTR);
	assert_string_equal(ptrs(n), "a.example.com. b.example.com.");
	n = must(t, "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_string_equal(ptrs(n), "a.example.com. b.example.com.");
	/* VIPs too, both families */
	uint8_t v4[4], v6[16];
	assert_int_equal(aegis_vip_get(va, "vip.example.com", v4, v6), 0);
	char rev[128];
	snprintf(rev, sizeof(rev), "%u.%u.240.240.in-addr.arpa", v4[3], v4[2]);
	assert_string_equal(ptrs(must(t, rev)), "vip.example.com.");
	snprintf(rev, sizeof(rev),
	         "%x.%x.%x.%x.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.2.ip6.arpa", v6[15] & 15,
	         v6[15] >> 4, v6[14] & 15, v6[14] >> 4);
	assert_string_equal(ptrs(must(t, rev)), "vip.example.com.");
	aegis_table_unref(t);
	aegis_vip_alloc_free(va);
	aegis_config_free(c);
}

/* ---- layout and lifetime ------------------------------------------------------------------------------ */

/* The layout invariants of any table: nodes sorted in canonical order, every node found through its
 * index, every name and record inside the table's one block. A PTR node has no name bytes: an IPv4
 * one keeps its address in the node, an IPv6 one has its 16 address bytes in the block, 4-byte
 * aligned, and both give their reverse name through aegis_node_owner. */
static void assert_layout(const struct aegis_table *t)
{
	for (size_t i = 1; i < aegis_table_count(t); i++) {
		const struct aegis_dns_node *a = &t->nodes[i - 1], *b = &t->nodes[i];
		assert_ptr_equal(aegis_table_node_at(t, i), b);
		uint8_t abuf[AEGIS_DNS_NAME_BUF], bbuf[AEGIS_DNS_NAME_BUF];
		struct aegis_dns_name an = aegis_node_owner(a, abuf), bnm = aegis_node_owner(b, bbuf);
		int cmp = cmp_canonical(an.name, an.len, bnm.name, bnm.len);
		assert_true(cmp < 0 || (cmp == 0 && a->kind != AEGIS_NODE_WILDCARD));
	}
	const uint8_t *lo = (const uint8_t *)t, *hi = lo + aegis_table_bytes(t);
	const uint8_t *names_lo = (const uint8_t *)(t->widx + t->widx_cap); /* after nodes and indexes */
	for (size_t i = 0; i < aegis_table_count(t); i++) {
		const struct aegis_dns_node *n = &t->nodes[i];
		uint8_t buf[AEGIS_DNS_NAME_BUF];
		struct aegis_dns_name nm = aegis_node_owner(n, buf);
		assert_int_equal(nm.len, n->name_len);
		if (n->kind == AEGIS_NODE_PTR) {
			assert_ptr_equal(nm.name, buf);
			if (n->name_len == AEGIS_TABLE_PTR6_NAME_LEN) {
				const uint8_t *a = aegis_node_rel(n, n->name_rel);
				assert_true(a >= names_lo && a + 16 <= hi);
				assert_int_equal((uintptr_t)a % 4, 0);
			} else {
				assert_true(n->name_len >= 22 && n->name_len <= 30);
			}
		} else {
			/* names and records lie inside the table's one block */
			assert_true(nm.name >= names_lo && nm.name + nm.len <= hi);
			assert_ptr_equal(aegis_node_name(n).name, nm.name);
		}
		size_t d = 4 * (size_t)n->n_a + 16 * (size_t)n->n_aaaa + 8 * (size_t)n->n_srv +
		           4 * (size_t)n->n_ptr;
		if (d) {
			assert_true(aegis_node_a(n) >= names_lo && aegis_node_a(n) + d <= hi);
			assert_int_equal((uintptr_t)aegis_node_a(n) % 4, 0);
		}
		for (unsigned k = 0; k < n->n_srv; k++) {
			struct aegis_dns_name tn = aegis_node_srv(n, k).target;
			assert_true(tn.name >= names_lo && tn.name + tn.len <= hi);
		}
		for (unsigned k = 0; k < n->n_ptr; k++) {
			struct aegis_dns_name pn = aegis_node_ptr(n, k);
			assert_true(pn.name >= names_lo && pn.name + pn.len <= hi);
			assert_non_null(aegis_table_find(t, pn.name, pn.len)); /* an owner is a table name */
		}
		if (n->kind == AEGIS_NODE_WILDCARD) {
			uint8_t child[AEGIS_DNS_NAME_BUF] = {1, 'x'};
			memcpy(child + 2, nm.name, nm.len);
			assert_ptr_equal(aegis_table_find_wildcard(t, child, nm.len + 2u), n);
		} else {
			assert_ptr_equal(aegis_table_find(t, nm.name, nm.len), n);
		}
	}
	assert_null(aegis_table_node_at(t, aegis_table_count(t)));
}

static void test_layout(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	char h[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(h, sizeof(h), "h%d.%s.example.com", i, i % 3 ? "zz" : "aa");
		mb_se(c, "x", h, "10.0.0.1");
	}
	mb_se(c, "w", "*.example.com *.zz.example.com", "10.0.0.2");
	struct aegis_table *t = build(c, NULL, NULL);
	assert_int_equal(aegis_table_count(t),
	                 1000 + 2 + 1); /* hosts, wildcards, one PTR (not for wildcards) */
	assert_layout(t);
	/* load factor < 0.5 in both indexes, so never full */
	assert_true((size_t)t->idx_cap > 2 * (aegis_table_count(t) - t->n_wild));
	assert_true((size_t)t->widx_cap > 2 * t->n_wild);
	/* 16-byte nodes, and the block holds nodes, indexes (4 bytes a bucket), names and records with
	 * little else: hosts h<i>.zz.example.com are at most 21 bytes, one IPv4 each, padded to 4; the one
	 * PTR node (no name bytes) has 1000 owners of 4 bytes each */
	assert_int_equal(sizeof(struct aegis_dns_node), 16);
	assert_true(aegis_table_bytes(t) < 1003 * (16 + 8 + 21 + 3 + 4) + 4000 + 256);
	aegis_table_unref(t);
	aegis_config_free(c);
}

/* A name that is the tail of another is stored once, inside the longer one: the host inside its SRV
 * name, a headless service inside its pods' names. */
static void test_names_stored_once(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_service_entry *se = mb_se(c, "x", "api.example.com", "10.0.0.1");
	mb_se_port(c, se, "https", 443, "TCP");
	struct aegis_table *t = build(c, NULL, NULL);
	const struct aegis_dns_node *h = must(t, "api.example.com");
	const struct aegis_dns_node *s = must(t, "_https._tcp.api.example.com");
	assert_ptr_equal(aegis_node_name(h).name, aegis_node_name(s).name + 12);
	/* the SRV target is the same bytes too */
	assert_ptr_equal(aegis_node_srv(s, 0).target.name, aegis_node_name(h).name);
	assert_string_equal(nstr(aegis_node_name(h)), "api.example.com.");
	aegis_table_unref(t);
	aegis_config_free(c);
}

/* ---- PTR nodes store their address ------------------------------------------------------------------ */

struct rev_case {
	const char *addr;
	const char *rev; /* its reverse name, presentation, no trailing dot */
};

static const struct rev_case rev_cases[] = {
        {"192.0.2.1", "1.2.0.192.in-addr.arpa"},
        {"10.20.30.40", "40.30.20.10.in-addr.arpa"},
        {"1.2.3.4", "4.3.2.1.in-addr.arpa"},
        {"255.255.255.255", "255.255.255.255.in-addr.arpa"},
        {"0.0.0.0", "0.0.0.0.in-addr.arpa"},
        {"100.9.10.199", "199.10.9.100.in-addr.arpa"},
        {"2001:db8::abcd", "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"},
        {"::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"},
        {"fedc:ba98:7654:3210:f0e1:d2c3:b4a5:9687",
         "7.8.6.9.5.a.4.b.3.c.2.d.1.e.0.f.0.1.2.3.4.5.6.7.8.9.a.b.c.d.e.f.ip6.arpa"},
};
#define N_REV (sizeof(rev_cases) / sizeof(rev_cases[0]))

static struct aegis_table *build_rev_table(struct aegis_config **cp)
{
	struct aegis_config *c = aegis_config_new();
	char addrs_s[512] = "";
	for (size_t i = 0; i < N_REV; i++)
		snprintf(addrs_s + strlen(addrs_s), sizeof(addrs_s) - strlen(addrs_s), "%s%s", i ? " " : "",
		         rev_cases[i].addr);
	mb_se(c, "a", "a.example.com", addrs_s);
	*cp = c;
	return build(c, NULL, NULL);
}

/* Both families: the lookup hits, the node is a PTR node without name bytes (the IPv4 address in the
 * node, the IPv6 one in the block), aegis_node_owner gives the reverse name, the dump's form. */
static void test_ptr_stores_address(void **state)
{
	(void)state;
	struct aegis_config *c;
	struct aegis_table *t = build_rev_table(&c);
	assert_int_equal(aegis_table_count(t), 1 + N_REV);
	const uint8_t *lo = (const uint8_t *)t, *hi = lo + aegis_table_bytes(t);
	for (size_t i = 0; i < N_REV; i++) {
		const struct aegis_dns_node *n = must(t, rev_cases[i].rev);
		assert_int_equal(n->kind, AEGIS_NODE_PTR);
		assert_string_equal(ptrs(n), "a.example.com.");
		uint8_t w[AEGIS_DNS_NAME_BUF];
		int len = aegis_dns_name_from_str(rev_cases[i].rev, w);
		assert_int_equal(n->name_len, len);
		char want[300];
		snprintf(want, sizeof(want), "%s.", rev_cases[i].rev);
		assert_string_equal(owner_str(n), want);
		uint8_t ip[16];
		if (inet_pton(AF_INET, rev_cases[i].addr, ip) == 1) {
			assert_true(n->name_len <= 30);
			assert_memory_equal(&n->name_rel, ip, 4);
		} else {
			assert_int_equal(inet_pton(AF_INET6, rev_cases[i].addr, ip), 1);
			assert_int_equal(n->name_len, AEGIS_TABLE_PTR6_NAME_LEN);
			const uint8_t *a = aegis_node_rel(n, n->name_rel);
			assert_true(a > lo && a + 16 <= hi);
			assert_memory_equal(a, ip, 16);
		}
		/* the formatted name is the caller's buffer, whatever was in it */
		uint8_t buf[AEGIS_DNS_NAME_BUF];
		memset(buf, 0xee, sizeof(buf));
		struct aegis_dns_name o = aegis_node_owner(n, buf);
		assert_ptr_equal(o.name, buf);
		assert_int_equal(o.len, len);
		assert_memory_equal(o.name, w, (size_t)len);
	}
	/* every other node gives its own bytes, buf untouched */
	const struct aegis_dns_node *h = must(t, "a.example.com");
	uint8_t buf[AEGIS_DNS_NAME_BUF];
	assert_ptr_equal(aegis_node_owner(h, buf).name, aegis_node_name(h).name);
	assert_layout(t);
	aegis_table_unref(t);
	aegis_config_free(c);
}

/* Names that share a PTR node's length (one label different) or come close to its name miss, through
 * the lookup and through the comparison the lookup makes once fingerprint and length match. */
static void test_ptr_near_misses(void **state)
{
	(void)state;
	struct aegis_config *c;
	struct aegis_table *t = build_rev_table(&c);
	static const struct {
		const char *node; /* a PTR node */
		const char *miss; /* not a table name */
	} cases[] = {
	        /* same length, one label different */
	        {"1.2.0.192.in-addr.arpa", "2.2.0.192.in-addr.arpa"},
	        {"1.2.0.192.in-addr.arpa", "1.2.0.193.in-addr.arpa"},
	        {"1.2.0.192.in-addr.arpa", "1.3.0.192.in-addr.arpa"},
	        {"1.2.0.192.in-addr.arpa", "1.2.0.192.in-addr.arpb"},
	        {"1.2.0.192.in-addr.arpa", "1.2.0.192.in-adds.arpa"},
	        {"40.30.20.10.in-addr.arpa", "30.40.20.10.in-addr.arpa"},
	        {"40.30.20.10.in-addr.arpa", "4a.30.20.10.in-addr.arpa"},
	        {"255.255.255.255.in-addr.arpa", "256.255.255.255.in-addr.arpa"},
	        {"0.0.0.0.in-addr.arpa", "0.0.0.0.in-addr.arp0"},
	        {"d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	         "e.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"},
	        {"d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	         "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.3.ip6.arpa"},
	        {"d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	         "c.d.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"},
	        {"d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	         "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpb"},
	        {"d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	         "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip7.arpa"},
	        {"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
	         "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct aegis_dns_node *n = must(t, cases[i].node);
		uint8_t w[AEGIS_DNS_NAME_BUF];
		int len = aegis_dns_name_from_str(cases[i].miss, w);
		assert_int_equal(len, n->name_len);
		if (find(t, cases[i].miss) != NULL)
			fail_msg("%s found", cases[i].miss);
		if (ptr_name_eq(n, w, (size_t)len))
			fail_msg("%s taken for %s", cases[i].miss, cases[i].node);
		int own = aegis_dns_name_from_str(cases[i].node, w);
		assert_true(ptr_name_eq(n, w, (size_t)own));
	}
	/* different lengths: a leading zero, an extra or a missing label, the parent, another family */
	static const char *const other[] = {
	        "01.2.0.192.in-addr.arpa",
	        "11.2.0.192.in-addr.arpa",
	        "1.1.2.0.192.in-addr.arpa",
	        "2.0.192.in-addr.arpa",
	        "in-addr.arpa",
	        "1.2.0.192.ip6.arpa",
	        "1.2.0.192.in-addr.arpa.example.com",
	        "c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	        "0d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
	        "1.0.0.127.in-addr.arpa",
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		if (find(t, other[i]) != NULL)
			fail_msg("%s found", other[i]);
	}
	/* an upper-case raw name misses, as for every table name (the caller lower-cases) */
	uint8_t w[AEGIS_DNS_NAME_BUF];
	int len = aegis_dns_name_from_str(rev_cases[6].rev, w);
	w[1] = 'D';
	assert_null(aegis_table_find(t, w, (size_t)len));
	aegis_table_unref(t);
	aegis_config_free(c);
}

/* reverse_addr undoes reverse_name exactly, and refuses every other spelling. */
static void test_reverse_round_trip(void **state)
{
	(void)state;
	uint8_t name[AEGIS_DNS_NAME_BUF], back[16];
	for (unsigned v = 0; v < 256; v++) {
		uint8_t a4[4] = {(uint8_t)v, (uint8_t)(255 - v), (uint8_t)(v * 7), (uint8_t)(v / 3)};
		size_t len = reverse_name(a4, 4, name);
		assert_true(len >= 22 && len <= 30);
		char pres[64], want[64];
		assert_true(aegis_dns_name_to_str(name, len, pres, sizeof(pres)) > 0);
		snprintf(want, sizeof(want), "%u.%u.%u.%u.in-addr.arpa.", a4[3], a4[2], a4[1], a4[0]);
		assert_string_equal(pres, want);
		assert_int_equal(reverse_addr(name, len, back), 4);
		assert_memory_equal(back, a4, 4);
		uint8_t a6[16];
		for (int k = 0; k < 16; k++)
			a6[k] = (uint8_t)(v * 31 + (unsigned)k * 17);
		len = reverse_name(a6, 16, name);
		assert_int_equal(len, AEGIS_TABLE_PTR6_NAME_LEN);
		assert_int_equal(reverse_addr(name, len, back), 16);
		assert_memory_equal(back, a6, 16);
	}
	static const char *const bad[] = {
	        "01.2.0.192.in-addr.arpa",
	        "256.2.0.192.in-addr.arpa",
	        "1.2.0.in-addr.arpa",
	        "1.2.0.192.1.in-addr.arpa",
	        "1.2.0.192.ip6.arpa",
	        "a.2.0.192.in-addr.arpa",
	        "1.2.0.192.in-addr.arpa.com",
	        "example.com",
	        "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.in-addr.arpa",
	        "g.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	        "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpb"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int len = aegis_dns_name_from_str(bad[i], name);
		assert_true(len > 0);
		if (reverse_addr(name, (size_t)len, back) != 0)
			fail_msg("%s parsed", bad[i]);
	}
}

/* Freezing shares a name's bytes with a longer name that ends in it; a PTR node has no bytes to share
 * and never borrows any: names around reverse names keep working, and so does a host that is
 * configured under in-addr.arpa (a HOST node with PTR records, which keeps its name). */
static void test_ptr_names_not_shared(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	/* 1.2.0.192.in-addr.arpa (the PTR node) is this host's name one label shorter */
	struct aegis_service_entry *se = mb_se(c, "h", "x.1.2.0.192.in-addr.arpa", "192.0.2.1");
	mb_se_port(c, se, "http", 80, "TCP");
	/* the wildcard's parent is the PTR node's name one label shorter */
	mb_se(c, "w", "*.2.0.192.in-addr.arpa", "192.0.2.9");
	/* a configured host that is its own address's reverse name */
	mb_se(c, "r", "2.2.0.192.in-addr.arpa", "192.0.2.2");
	/* and one whose name contains the IPv6 PTR node's name */
	mb_se(c, "v", "y.d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	      "2001:db8::abcd");
	struct aegis_table *t = build(c, NULL, NULL);
	assert_layout(t);
	const struct aegis_dns_node *n = must(t, "1.2.0.192.in-addr.arpa");
	assert_int_equal(n->kind, AEGIS_NODE_PTR);
	assert_string_equal(ptrs(n), "x.1.2.0.192.in-addr.arpa.");
	n = must(t, "x.1.2.0.192.in-addr.arpa");
	assert_int_equal(n->kind, AEGIS_NODE_HOST);
	assert_string_equal(nstr(aegis_node_name(n)), "x.1.2.0.192.in-addr.arpa.");
	n = must(t, "_http._tcp.x.1.2.0.192.in-addr.arpa");
	assert_string_equal(nstr(aegis_node_srv(n, 0).target), "x.1.2.0.192.in-addr.arpa.");
	n = find_wild(t, "7.2.0.192.in-addr.arpa");
	assert_non_null(n);
	assert_string_equal(nstr(aegis_node_name(n)), "2.0.192.in-addr.arpa.");
	assert_string_equal(addrs(n), "192.0.2.9");
	assert_null(find(t, "9.2.0.192.in-addr.arpa")); /* no PTR for a wildcard's address */
	n = must(t, "2.2.0.192.in-addr.arpa");
	assert_int_equal(n->kind, AEGIS_NODE_HOST);
	assert_string_equal(nstr(aegis_node_name(n)), "2.2.0.192.in-addr.arpa.");
	assert_string_equal(addrs(n), "192.0.2.2");
	assert_string_equal(ptrs(n), "2.2.0.192.in-addr.arpa.");
	n = must(t, "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(n->kind, AEGIS_NODE_PTR);
	assert_string_equal(ptrs(n),
	                    "y.d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.");
	aegis_table_unref(t);
	aegis_config_free(c);

	/* Wildcards whose parents only a PTR node's name ends in (one and two labels shorter): they must
	 * keep bytes of their own. */
	c = aegis_config_new();
	mb_se(c, "w4", "*.2.0.192.in-addr.arpa *.0.192.in-addr.arpa", "192.0.2.9");
	mb_se(c, "w6", "*.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	      "192.0.2.8");
	mb_se(c, "h", "h.example.com", "192.0.2.1 2001:db8::abcd");
	t = build(c, NULL, NULL);
	assert_layout(t);
	assert_string_equal(nstr(aegis_node_name(find_wild(t, "7.2.0.192.in-addr.arpa"))),
	                    "2.0.192.in-addr.arpa.");
	assert_string_equal(nstr(aegis_node_name(find_wild(t, "7.3.0.192.in-addr.arpa"))),
	                    "0.192.in-addr.arpa.");
	assert_string_equal(
	        nstr(aegis_node_name(find_wild(
	                t, "e.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"))),
	        "c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.");
	assert_string_equal(ptrs(must(t, "1.2.0.192.in-addr.arpa")), "h.example.com.");
	assert_string_equal(
	        ptrs(must(t, "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")),
	        "h.example.com.");
	aegis_table_unref(t);
	aegis_config_free(c);
}

/* What a PTR node costs: its 16-byte node, 8 bytes of index, its 4-byte records, and for IPv6 the 16
 * address bytes; no name (a reverse name would be 22-30 bytes, 74 for IPv6). */
static void test_ptr_byte_budget(void **state)
{
	(void)state;
	for (int v6 = 0; v6 < 2; v6++) {
		struct aegis_config *c = aegis_config_new();
		for (int i = 0; i < 1000; i++) {
			char h[64], a[64];
			snprintf(h, sizeof(h), "h%d.example.com", i);
			if (v6)
				snprintf(a, sizeof(a), "2001:db8::%x:%x", i >> 8, i & 255);
			else
				snprintf(a, sizeof(a), "10.0.%d.%d", i >> 8, i & 255);
			mb_se(c, "x", h, a);
		}
		struct aegis_table *t = build(c, NULL, NULL);
		assert_int_equal(aegis_table_count(t), 2000);
		assert_layout(t);
		/* a host: node 16, index 8, name <= 18 padded to 20, its address; a PTR node: node 16, index
		 * 8, one owner 4, for IPv6 the address 16 */
		size_t host = 16 + 8 + 20 + (v6 ? 16 : 4), ptr = 16 + 8 + 4 + (v6 ? 16 : 0);
		assert_true(aegis_table_bytes(t) <= 1000 * (host + ptr) + 256);
		aegis_table_unref(t);
		aegis_config_free(c);
	}
}

static void test_refcount(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "a", "api.example.com", "10.0.0.1");
	struct aegis_table *t = build(c, NULL, NULL);
	aegis_config_free(c); /* the table copied what it needs */
	assert_int_equal(atomic_load(&t->refs), 1);
	aegis_table_ref(t);
	aegis_table_ref(t);
	assert_int_equal(atomic_load(&t->refs), 3);
	aegis_table_unref(t);
	aegis_table_unref(t);
	assert_int_equal(atomic_load(&t->refs), 1);
	assert_string_equal(addrs(must(t, "api.example.com")), "10.0.0.1");
	aegis_table_unref(t); /* frees: ASan reports a leak or a double free otherwise */
	aegis_table_ref(NULL);
	aegis_table_unref(NULL);
	assert_null(aegis_table_find(NULL, (const uint8_t *)"", 1));
	assert_int_equal(aegis_table_count(NULL), 0);
}

static void *ref_churn(void *arg)
{
	struct aegis_table *t = arg;
	for (int i = 0; i < 100000; i++) {
		aegis_table_ref(t);
		aegis_table_unref(t);
	}
	return NULL;
}

/* Loops and the builder thread take and drop references concurrently: the count must come out exact. */
static void test_refcount_threads(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "a", "api.example.com", "10.0.0.1");
	struct aegis_table *t = build(c, NULL, NULL);
	aegis_config_free(c);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, ref_churn, t), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(atomic_load(&t->refs), 1);
	aegis_table_unref(t);
}

static void test_nds_invalid(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_nds(c, "ok.example.com", "10.0.0.1", "bad..alt");
	struct aegis_table *t = NULL;
	struct aegis_diag d;
	assert_int_equal(aegis_table_build(c, NULL, &t, &d), AEGIS_EINVAL);
	assert_null(t);
	assert_non_null(strstr(d.msg, "bad..alt"));
	aegis_config_free(c);
}

static void test_empty_config(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	struct aegis_table *t = build(c, NULL, NULL);
	assert_int_equal(aegis_table_count(t), 0);
	assert_null(find(t, "anything.example.com"));
	assert_null(find_wild(t, "anything.example.com"));
	assert_null(find(t, "."));
	aegis_table_unref(t);
	aegis_config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_se_addresses),
	        cmocka_unit_test(test_se_vip_dual_stack),
	        cmocka_unit_test(test_vip_stable_across_builds),
	        cmocka_unit_test(test_case_is_callers_job),
	        cmocka_unit_test(test_wildcards),
	        cmocka_unit_test(test_wildcard_not_in_ptr_and_no_srv),
	        cmocka_unit_test(test_se_srv),
	        cmocka_unit_test(test_duplicate_names_merge),
	        cmocka_unit_test(test_address_cap),
	        cmocka_unit_test(test_invalid_host),
	        cmocka_unit_test(test_k8s_cluster_ip),
	        cmocka_unit_test(test_k8s_headless),
	        cmocka_unit_test(test_k8s_multicluster),
	        cmocka_unit_test(test_k8s_headless_multicluster),
	        cmocka_unit_test(test_k8s_external_name),
	        cmocka_unit_test(test_k8s_invalid_name),
	        cmocka_unit_test(test_nds),
	        cmocka_unit_test(test_ptr),
	        cmocka_unit_test(test_layout),
	        cmocka_unit_test(test_names_stored_once),
	        cmocka_unit_test(test_ptr_stores_address),
	        cmocka_unit_test(test_ptr_near_misses),
	        cmocka_unit_test(test_reverse_round_trip),
	        cmocka_unit_test(test_ptr_names_not_shared),
	        cmocka_unit_test(test_ptr_byte_budget),
	        cmocka_unit_test(test_refcount),
	        cmocka_unit_test(test_refcount_threads),
	        cmocka_unit_test(test_nds_invalid),
	        cmocka_unit_test(test_empty_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
