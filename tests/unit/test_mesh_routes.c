/* Tests proxy/mesh_routes.c and proxy/mesh_outlier.c: VIP lookup, weighted destinations, subsets by labels,
 * locality priority and failover, health, endpoint weights, ejection and un-ejection, passthrough. The
 * configurations are YAML as kubectl prints it, read by the real loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aegis/resource_yaml.h"
#include "aegis/vip.h"
#include "mesh_outlier.h"
#include "mesh_routes.h"

#include <arpa/inet.h>
#include <sys/socket.h>

static const char mesh_yaml[] =
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata: {name: reviews, namespace: default}\n"
        "spec:\n"
        "  clusterIP: 10.96.10.11\n"
        "  ports: [{name: http, port: 9080, targetPort: 9080}]\n"
        "  selector: {app: reviews}\n"
        "---\n"
        "apiVersion: discovery.k8s.io/v1\n"
        "kind: EndpointSlice\n"
        "metadata:\n"
        "  name: reviews-1\n"
        "  namespace: default\n"
        "  labels: {kubernetes.io/service-name: reviews}\n"
        "addressType: IPv4\n"
        "ports: [{name: http, port: 9080}]\n"
        "endpoints:\n"
        "- addresses: [10.1.0.1]\n"
        "  targetRef: {kind: Pod, name: reviews-v1-a}\n"
        "- addresses: [10.1.0.2]\n"
        "  targetRef: {kind: Pod, name: reviews-v2-a}\n"
        "- addresses: [10.1.0.3]\n"
        "  conditions: {ready: false}\n"
        "  targetRef: {kind: Pod, name: reviews-v1-sick}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: WorkloadEntry\n"
        "metadata: {name: reviews-v1-a, namespace: default}\n"
        "spec: {address: 10.1.0.1, labels: {version: v1}, serviceAccount: reviews}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: WorkloadEntry\n"
        "metadata: {name: pod-b, namespace: default}\n"
        "spec: {address: 10.1.0.2, labels: {version: v2, networking.istio.io/tunnel: http}}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: WorkloadEntry\n"
        "metadata: {name: reviews-v1-sick, namespace: default}\n"
        "spec: {address: 10.1.0.3, labels: {version: v1}}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: reviews, namespace: default}\n"
        "spec:\n"
        "  hosts: [reviews]\n"
        "  tcp:\n"
        "  - route: [{destination: {host: reviews, subset: v3}}]\n"
        "  http:\n"
        "  - match: [{sourceLabels: {app: productpage}}]\n"
        "    route: [{destination: {host: reviews, subset: v2}}]\n"
        "  - match: [{uri: {prefix: /admin}}]\n"
        "    route: [{destination: {host: reviews, subset: v2}}]\n"
        "  - route:\n"
        "    - {destination: {host: reviews, subset: v1}, weight: 90}\n"
        "    - {destination: {host: reviews, subset: v2}, weight: 10}\n"
        "    - {destination: {host: reviews, subset: v3}, weight: 0}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: DestinationRule\n"
        "metadata: {name: reviews, namespace: default}\n"
        "spec:\n"
        "  host: reviews.default.svc.cluster.local\n"
        "  subsets:\n"
        "  - {name: v1, labels: {version: v1}}\n"
        "  - {name: v2, labels: {version: v2}}\n"
        "  - {name: v3, labels: {version: v3}}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: api, namespace: default}\n"
        "spec:\n"
        "  hosts: [api.example.com]\n"
        "  addresses: [203.0.113.5]\n"
        "  location: MESH_EXTERNAL\n"
        "  resolution: STATIC\n"
        "  ports: [{number: 443, name: tls, protocol: TLS}]\n"
        "  endpoints: [{address: 198.51.100.7}]\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: db, namespace: data}\n"
        "spec:\n"
        "  hosts: [db.internal]\n"
        "  location: MESH_INTERNAL\n"
        "  resolution: STATIC\n"
        "  ports: [{number: 5432, name: pg, targetPort: 6432}]\n"
        "  endpoints:\n"
        "  - {address: 10.2.0.1, locality: us-east/a, serviceAccount: db}\n"
        "  - {address: 10.2.0.2, locality: us-east/b, serviceAccount: db}\n"
        "  - {address: 10.2.0.4, locality: ap-south/x, serviceAccount: db}\n"
        "  - {address: 10.2.0.3, locality: eu-west/c, serviceAccount: db}\n"
        "  subjectAltNames: [spiffe://cluster.local/ns/data/sa/db]\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: DestinationRule\n"
        "metadata: {name: db, namespace: data}\n"
        "spec:\n"
        "  host: db.internal\n"
        "  trafficPolicy:\n"
        "    connectionPool: {tcp: {connectTimeout: 250ms}}\n"
        "    outlierDetection: {consecutive5xxErrors: 3, baseEjectionTime: 10s}\n"
        "    loadBalancer:\n"
        "      localityLbSetting:\n"
        "        failover: [{from: us-east, to: eu-west}]\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: weighted, namespace: default}\n"
        "spec:\n"
        "  hosts: [weighted.internal]\n"
        "  addresses: [10.97.0.1, fd00::97:1]\n"
        "  location: MESH_INTERNAL\n"
        "  resolution: STATIC\n"
        "  ports: [{number: 80, name: http}, {number: 81, name: other}]\n"
        "  endpoints:\n"
        "  - {address: 10.3.0.1, weight: 3}\n"
        "  - {address: 10.3.0.2}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: weighted, namespace: default}\n"
        "spec:\n"
        "  hosts: [weighted.internal]\n"
        "  tcp:\n"
        "  - match: [{port: 81}]\n"
        "    route:\n"
        "    - {destination: {host: weighted.internal, port: {number: 80}}, weight: 50}\n"
        "    - {destination: {host: reviews, subset: v1}, weight: 30}\n"
        "    - {destination: {host: reviews, subset: v2}, weight: 20}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: nowhere, namespace: default}\n"
        "spec:\n"
        "  hosts: [nowhere.internal]\n"
        "  addresses: [10.98.0.1]\n"
        "  ports: [{number: 80, name: http}]\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: nowhere, namespace: default}\n"
        "spec:\n"
        "  hosts: [nowhere.internal]\n"
        "  tcp: [{route: [{destination: {host: nowhere.internal}, weight: 0}]}]\n";

struct fx {
	struct aegis_config *cfg;
	struct aegis_vip_alloc *vips;
	struct aegis_routes *t;
};

static struct aegis_routes *build(struct fx *f, const char *locality, const char *labels_kv)
{
	struct aegis_diag diag = {0};
	if (f->cfg == NULL) {
		int rc = aegis_yaml_load_buffer("mesh.yaml", mesh_yaml, strlen(mesh_yaml), &f->cfg, &diag);
		if (rc != 0) {
			char buf[600];
			print_error("%s\n", aegis_diag_str(&diag, buf, sizeof(buf)));
		}
		assert_int_equal(rc, 0);
		f->vips = aegis_vip_alloc_new();
		assert_non_null(f->vips);
		assert_int_equal(aegis_vip_alloc_update(f->vips, f->cfg), 0);
	}
	struct aegis_kv kv[1];
	struct aegis_routes_opts o = {.locality = locality, .vips = f->vips, .namespace_ = "default"};
	if (labels_kv != NULL) {
		kv[0].key = "app";
		kv[0].value = labels_kv;
		o.labels.items = kv;
		o.labels.n = 1;
	}
	aegis_routes_unref(f->t);
	f->t = NULL;
	assert_int_equal(aegis_routes_build(f->cfg, &o, &f->t, &diag), 0);
	return f->t;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	aegis_routes_unref(f->t);
	aegis_vip_alloc_free(f->vips);
	aegis_config_free(f->cfg);
	free(f);
	return 0;
}

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return *state ? 0 : -1;
}

/* splitmix64: a fixed seed makes every run draw the same numbers. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct aegis_routes_addr addr(const char *ip, uint16_t port)
{
	struct aegis_routes_addr a;
	assert_int_equal(aegis_routes_addr_parse(ip, port, &a), 0);
	return a;
}

static const char *ip_str(const struct aegis_routes_addr *a)
{
	static char buf[INET6_ADDRSTRLEN];
	inet_ntop(a->family, a->ip, buf, sizeof(buf));
	return buf;
}

static const struct aegis_routes_cluster *lookup(struct aegis_routes *t, const char *ip, uint16_t port,
                                                 uint64_t r)
{
	struct aegis_routes_addr a = addr(ip, port);
	const struct aegis_routes_cluster *c = NULL;
	assert_int_equal(aegis_routes_lookup(t, &a, r, &c), AEGIS_ROUTES_CLUSTER);
	return c;
}

/* 90/10 over 100,000 picks: within 5 standard deviations (sd = sqrt(n p q) ~ 95) of the expectation; the
 * weight-0 destination gets nothing. */
static void test_weights_90_10(void **state)
{
	struct aegis_routes *t = build(*state, NULL, NULL);
	uint64_t seed = 42;
	unsigned v1 = 0, v2 = 0, other = 0;
	const unsigned n = 100000;
	for (unsigned i = 0; i < n; i++) {
		const struct aegis_routes_cluster *c = lookup(t, "10.96.10.11", 9080, rnd(&seed));
		if (strcmp(c->name, "outbound|9080|v1|reviews.default.svc.cluster.local") == 0)
			v1++;
		else if (strcmp(c->name, "outbound|9080|v2|reviews.default.svc.cluster.local") == 0)
			v2++;
		else
			other++;
	}
	assert_int_equal(other, 0);
	assert_true(v1 > 90000 - 475 && v1 < 90000 + 475);
	assert_int_equal(v1 + v2, n);
}

/* Three destinations 50/30/20 on port 81 (a port match): chi-square with 2 degrees of freedom below 13.8
 * (p = 0.001); port 80 has no route and goes to the whole service. */
static void test_weights_chi_square_and_port_match(void **state)
{
	struct aegis_routes *t = build(*state, NULL, NULL);
	uint64_t seed = 7;
	double obs[3] = {0};
	const double n = 50000, share[3] = {0.5, 0.3, 0.2};
	for (unsigned i = 0; i < (unsigned)n; i++) {
		const struct aegis_routes_cluster *c = lookup(t, "10.97.0.1", 81, rnd(&seed));
		if (strcmp(c->name, "outbound|80||weighted.internal") == 0)
			obs[0]++;
		else if (strcmp(c->subset, "v1") == 0)
			obs[1]++;
		else if (strcmp(c->subset, "v2") == 0)
			obs[2]++;
		else
			fail_msg("unexpected cluster %s", c->name);
	}
	double chi = 0;
	for (int i = 0; i < 3; i++)
		chi += (obs[i] - n * share[i]) * (obs[i] - n * share[i]) / (n * share[i]);
	assert_true(chi < 13.8);
	/* Port 80 and the IPv6 VIP: no VirtualService route applies, so the whole service at 80. */
	assert_string_equal(lookup(t, "10.97.0.1", 80, 1)->name, "outbound|80||weighted.internal");
	assert_string_equal(lookup(t, "fd00::97:1", 80, 1)->name, "outbound|80||weighted.internal");
}

static void test_subsets_by_labels(void **state)
{
	struct aegis_routes *t = build(*state, NULL, NULL);
	const struct aegis_routes_cluster *v1 =
	        aegis_routes_find_cluster(t, "outbound|9080|v1|reviews.default.svc.cluster.local");
	const struct aegis_routes_cluster *v2 =
	        aegis_routes_find_cluster(t, "outbound|9080|v2|reviews.default.svc.cluster.local");
	const struct aegis_routes_cluster *v3 =
	        aegis_routes_find_cluster(t, "outbound|9080|v3|reviews.default.svc.cluster.local");
	assert_non_null(v1);
	assert_non_null(v2);
	assert_non_null(v3);
	/* v1: the ready pod (labels and service account from its WorkloadEntry by pod name) and the pod
	 * that is not ready (kept, UNHEALTHY, never picked). */
	assert_int_equal(v1->n_eps, 2);
	assert_int_equal(v1->mode, AEGIS_ROUTES_MTLS);
	uint64_t seed = 1;
	for (int i = 0; i < 1000; i++) {
		const struct aegis_routes_endpoint *e = aegis_routes_pick(v1, rnd(&seed), NULL, 0, NULL, 0);
		assert_non_null(e);
		assert_string_equal(ip_str(&e->addr), "10.1.0.1");
		assert_int_equal(e->addr.port, 9080);
		assert_string_equal(e->identity, "spiffe://cluster.local/ns/default/sa/reviews");
		assert_false(e->tunnel);
	}
	/* v2: found by address (the WorkloadEntry has another name); no service account known; labelled as
	 * taking HBONE. */
	assert_int_equal(v2->n_eps, 1);
	assert_string_equal(ip_str(&v2->eps[0].addr), "10.1.0.2");
	assert_string_equal(v2->eps[0].identity, "spiffe://cluster.local/ns/default/sa/*");
	assert_true(v2->eps[0].tunnel);
	/* v3: no endpoint carries version v3. */
	assert_int_equal(v3->n_eps, 0);
	assert_null(aegis_routes_pick(v3, 5, NULL, 0, NULL, 0));
}

/* An http route with sourceLabels applies only to a pod with those labels (decided at build time); the
 * port is named http, so http routes come before the tcp route (which would send everything to v3). */
static void test_source_labels(void **state)
{
	struct aegis_routes *t = build(*state, NULL, "productpage");
	uint64_t seed = 3;
	for (int i = 0; i < 200; i++)
		assert_string_equal(lookup(t, "10.96.10.11", 9080, rnd(&seed))->subset, "v2");
	t = build(*state, NULL, "ratings");
	unsigned v1 = 0;
	for (int i = 0; i < 200; i++)
		v1 += strcmp(lookup(t, "10.96.10.11", 9080, rnd(&seed))->subset, "v1") == 0;
	assert_true(v1 > 150);
}

static void test_passthrough_and_no_route(void **state)
{
	struct aegis_routes *t = build(*state, NULL, NULL);
	const struct aegis_routes_cluster *c = NULL;
	struct aegis_routes_addr a = addr("10.9.9.9", 80);
	assert_int_equal(aegis_routes_lookup(t, &a, 1, &c), AEGIS_ROUTES_PASSTHROUGH);
	a = addr("10.96.10.11", 9999); /* a VIP, but not a declared port */
	assert_int_equal(aegis_routes_lookup(t, &a, 1, &c), AEGIS_ROUTES_PASSTHROUGH);
	a = addr("10.98.0.1", 80); /* every weight 0 */
	assert_int_equal(aegis_routes_lookup(t, &a, 1, &c), AEGIS_ROUTES_NO_ROUTE);
	/* MESH_EXTERNAL: routed to its endpoint, in plain TCP. */
	c = lookup(t, "203.0.113.5", 443, 9);
	assert_int_equal(c->mode, AEGIS_ROUTES_PLAIN);
	assert_string_equal(ip_str(&aegis_routes_pick(c, 1, NULL, 0, NULL, 0)->addr), "198.51.100.7");
}

/* db.internal has no addresses: its VIP is the allocator's, the one the DNS table answers. */
static void test_auto_vip_matches_allocator(void **state)
{
	struct fx *f = *state;
	struct aegis_routes *t = build(f, NULL, NULL);
	uint8_t v4[4], v6[16];
	assert_int_equal(aegis_vip_get(f->vips, "db.internal", v4, v6), 0);
	char ip[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET, v4, ip, sizeof(ip));
	const struct aegis_routes_cluster *c = lookup(t, ip, 5432, 1);
	assert_string_equal(c->name, "outbound|5432||db.internal");
	assert_int_equal(c->connect_timeout_ms, 250);
	assert_int_equal(c->outlier_errors, 3);
	assert_int_equal(c->n_sans, 1);
	inet_ntop(AF_INET6, v6, ip, sizeof(ip));
	assert_ptr_equal(lookup(t, ip, 5432, 1), c);
	assert_int_equal(c->eps[0].addr.port, 6432); /* targetPort */
}

/* us-east/a: same zone first, then the region, then the failover region, then the rest. */
static void test_locality_priority_and_failover(void **state)
{
	struct aegis_routes *t = build(*state, "us-east/a", NULL);
	const struct aegis_routes_cluster *c = aegis_routes_find_cluster(t, "outbound|5432||db.internal");
	assert_non_null(c);
	struct aegis_outlier *o = aegis_outlier_new(64);
	assert_non_null(o);
	uint64_t seed = 11, now = 1000;
	const char *order[] = {"10.2.0.1", "10.2.0.2", "10.2.0.3", "10.2.0.4"};
	for (int step = 0; step < 4; step++) {
		for (int i = 0; i < 300; i++) {
			const struct aegis_routes_endpoint *e =
			        aegis_routes_pick(c, rnd(&seed), o, now, NULL, 0);
			assert_string_equal(ip_str(&e->addr), order[step]);
		}
		/* Eject the one in use: 3 consecutive failures (the DestinationRule's threshold). */
		struct aegis_routes_addr a = addr(order[step], 6432);
		assert_false(aegis_outlier_report(o, &a, false, c->outlier_errors, c->outlier_base_ms, now));
		assert_false(aegis_outlier_report(o, &a, false, c->outlier_errors, c->outlier_base_ms, now));
		assert_true(aegis_outlier_report(o, &a, false, c->outlier_errors, c->outlier_base_ms, now));
	}
	/* Everything ejected: panic mode picks from the best level anyway. */
	assert_string_equal(ip_str(&aegis_routes_pick(c, 1, o, now, NULL, 0)->addr), "10.2.0.1");
	/* An avoided endpoint (a retry after a connect failure) is skipped. */
	const struct aegis_routes_endpoint *first = &c->eps[0];
	assert_string_equal(ip_str(&aegis_routes_pick(c, 1, o, now, &first, 1)->addr), "10.2.0.2");
	/* After the base ejection time (10 s) they are back: the same zone wins again. */
	assert_string_equal(ip_str(&aegis_routes_pick(c, 1, o, now + 10001, NULL, 0)->addr), "10.2.0.1");
	aegis_outlier_free(o);

	/* Without a locality of our own every endpoint is one level. */
	t = build(*state, NULL, NULL);
	c = aegis_routes_find_cluster(t, "outbound|5432||db.internal");
	unsigned seen[4] = {0};
	for (int i = 0; i < 4000; i++) {
		const struct aegis_routes_endpoint *e = aegis_routes_pick(c, rnd(&seed), NULL, 0, NULL, 0);
		seen[e->addr.ip[3] - 1]++;
	}
	for (int i = 0; i < 4; i++)
		assert_true(seen[i] > 850 && seen[i] < 1150);
}

static void test_ejection_and_unejection(void **state)
{
	(void)state;
	struct aegis_outlier *o = aegis_outlier_new(16);
	struct aegis_routes_addr a = addr("10.0.0.1", 80);
	uint64_t now = 5000;
	/* Defaults: 5 consecutive failures, 30 s. A success in between resets the count. */
	for (int i = 0; i < 4; i++)
		assert_false(aegis_outlier_report(o, &a, false, 0, 0, now));
	assert_false(aegis_outlier_report(o, &a, true, 0, 0, now));
	for (int i = 0; i < 4; i++)
		assert_false(aegis_outlier_report(o, &a, false, 0, 0, now));
	assert_false(aegis_outlier_ejected(o, &a, now));
	assert_true(aegis_outlier_report(o, &a, false, 0, 0, now));
	assert_true(aegis_outlier_ejected(o, &a, now + 29999));
	assert_false(aegis_outlier_ejected(o, &a, now + 30000));
	/* Failing again right after: the second ejection lasts twice as long. */
	now += 30000;
	for (int i = 0; i < 5; i++)
		(void)aegis_outlier_report(o, &a, false, 0, 0, now);
	assert_true(aegis_outlier_ejected(o, &a, now + 59999));
	assert_false(aegis_outlier_ejected(o, &a, now + 60000));
	/* A success after expiry resets the multiplier. */
	assert_false(aegis_outlier_report(o, &a, true, 0, 0, now + 60000));
	for (int i = 0; i < 5; i++)
		(void)aegis_outlier_report(o, &a, false, 0, 0, now + 60000);
	assert_false(aegis_outlier_ejected(o, &a, now + 90000));
	struct aegis_outlier_stats st;
	aegis_outlier_stats(o, &st);
	assert_int_equal(st.ejections, 3);
	assert_int_equal(st.unejections, 1);
	/* Another address is unaffected; a full map recycles entries that are not ejected. */
	for (int i = 0; i < 1000; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250 + 1);
		struct aegis_routes_addr b = addr(ip, 80);
		(void)aegis_outlier_report(o, &b, false, 0, 0, now);
	}
	assert_false(aegis_outlier_ejected(NULL, &a, now));
	aegis_outlier_free(o);
}

/* Endpoint weights 3:1 give 75/25. */
static void test_endpoint_weights(void **state)
{
	struct aegis_routes *t = build(*state, NULL, NULL);
	const struct aegis_routes_cluster *c = lookup(t, "10.97.0.1", 80, 1);
	uint64_t seed = 99;
	unsigned heavy = 0;
	for (int i = 0; i < 40000; i++)
		heavy += aegis_routes_pick(c, rnd(&seed), NULL, 0, NULL, 0)->addr.ip[3] == 1;
	/* sd = sqrt(40000 * .75 * .25) ~ 87 */
	assert_true(heavy > 30000 - 435 && heavy < 30000 + 435);
}

/* localityLbSetting.enabled: false (explicit, told from absent by locality_lb_set) puts every endpoint
 * in one priority even when we know our locality. */
static void test_locality_disabled(void **state)
{
	(void)state;
	static const char yaml[] = "apiVersion: networking.istio.io/v1\n"
	                           "kind: ServiceEntry\n"
	                           "metadata: {name: db, namespace: data}\n"
	                           "spec:\n"
	                           "  hosts: [db.internal]\n"
	                           "  addresses: [10.99.0.1]\n"
	                           "  location: MESH_INTERNAL\n"
	                           "  resolution: STATIC\n"
	                           "  ports: [{number: 5432, name: pg}]\n"
	                           "  endpoints:\n"
	                           "  - {address: 10.2.0.1, locality: us-east/a}\n"
	                           "  - {address: 10.2.0.2, locality: eu-west/c}\n"
	                           "---\n"
	                           "apiVersion: networking.istio.io/v1\n"
	                           "kind: DestinationRule\n"
	                           "metadata: {name: db, namespace: data}\n"
	                           "spec:\n"
	                           "  host: db.internal\n"
	                           "  trafficPolicy: {loadBalancer: {localityLbSetting: {enabled: false}}}\n";
	struct aegis_config *cfg = NULL;
	assert_int_equal(aegis_yaml_load_buffer("l.yaml", yaml, strlen(yaml), &cfg, NULL), 0);
	assert_true(cfg->destination_rules[0].policy.locality_lb_set);
	assert_false(cfg->destination_rules[0].policy.locality_lb_enabled);
	struct aegis_routes_opts o = {.locality = "us-east/a"};
	struct aegis_routes *t = NULL;
	assert_int_equal(aegis_routes_build(cfg, &o, &t, NULL), 0);
	const struct aegis_routes_cluster *c = lookup(t, "10.99.0.1", 5432, 1);
	assert_int_equal(c->n_eps, 2);
	assert_int_equal(c->eps[0].priority, c->eps[1].priority);
	aegis_routes_unref(t);
	aegis_config_free(cfg);
}

static void test_refcount(void **state)
{
	struct aegis_routes *t = build(*state, NULL, NULL);
	aegis_routes_ref(t);
	aegis_routes_unref(t);
	assert_true(aegis_routes_n_services(t) >= 5);
	aegis_routes_ref(NULL);
	aegis_routes_unref(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_weights_90_10, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_weights_chi_square_and_port_match, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_subsets_by_labels, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_source_labels, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_passthrough_and_no_route, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_auto_vip_matches_allocator, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_locality_priority_and_failover, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ejection_and_unejection, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_endpoint_weights, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_refcount, setup, teardown),
	        cmocka_unit_test(test_locality_disabled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
