/* Tests xds/resource_yaml.c and xds/resource_kinds.c: every kind's fields, List wrappers, multi-document
 * streams, the three Istio API versions, quoted numbers, directories and cluster.yaml, every error with
 * its position, and the limits (depth, aliases, file size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aegis/limits.h"
#include "aegis/log.h"
#include "aegis/resource_yaml.h"

/* ---- helpers ---- */

static struct aegis_config *load(const char *yaml)
{
	struct aegis_config *cfg = NULL;
	struct aegis_diag d;
	int rc = aegis_yaml_load_buffer("test.yaml", yaml, strlen(yaml), &cfg, &d);
	if (rc != 0) {
		char buf[600];
		print_error("unexpected error: %s\n", aegis_diag_str(&d, buf, sizeof(buf)));
	}
	assert_int_equal(rc, 0);
	assert_non_null(cfg);
	return cfg;
}

/* Loads yaml and expects failure with rc at line:column (column 0: not checked) and msg containing want. */
static void expect_error(const char *yaml, int rc, int line, int column, const char *want)
{
	struct aegis_config *cfg = (struct aegis_config *)1;
	struct aegis_diag d;
	int got = aegis_yaml_load_buffer("bad.yaml", yaml, strlen(yaml), &cfg, &d);
	char buf[600];
	aegis_diag_str(&d, buf, sizeof(buf));
	if (got != rc || d.line != line || (column && d.column != column) || strstr(d.msg, want) == NULL)
		print_error("input:\n%s\ngot rc %d: %s\n", yaml, got, buf);
	assert_int_equal(got, rc);
	assert_null(cfg);
	assert_string_equal(d.file, "bad.yaml");
	assert_int_equal(d.line, line);
	if (column)
		assert_int_equal(d.column, column);
	assert_non_null(strstr(d.msg, want));
}

static const char *label(const struct aegis_labels *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].key, key) == 0)
			return l->items[i].value;
	return NULL;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);
	return a >= b && strcmp(s + a - b, tail) == 0;
}

/* model.h promises that strings are never NULL and arrays are NULL exactly when empty. */
#define STR(s)    assert_non_null(s)
#define ARR(p, n) assert_true(((p) == NULL) == ((n) == 0))

static void check_labels(const struct aegis_labels *l)
{
	ARR(l->items, l->n);
	for (size_t i = 0; i < l->n; i++) {
		STR(l->items[i].key);
		STR(l->items[i].value);
	}
}

static void check_strv(const char *const *v, size_t n)
{
	ARR(v, n);
	for (size_t i = 0; i < n; i++)
		STR(v[i]);
}

static void check_meta(const struct aegis_meta *m)
{
	STR(m->name);
	STR(m->namespace_);
	STR(m->cluster);
	STR(m->source);
	STR(m->resource_version);
	check_labels(&m->labels);
	check_labels(&m->annotations);
	assert_true(m->line > 0);
}

static void check_ports(const struct aegis_port *p, size_t n)
{
	ARR(p, n);
	for (size_t i = 0; i < n; i++) {
		STR(p[i].name);
		STR(p[i].protocol);
	}
}

static void check_workload(const struct aegis_workload *w)
{
	STR(w->address);
	ARR(w->ports, w->n_ports);
	for (size_t i = 0; i < w->n_ports; i++)
		STR(w->ports[i].name);
	check_labels(&w->labels);
	STR(w->network);
	STR(w->locality);
	STR(w->service_account);
	STR(w->hostname);
	STR(w->node_name);
	STR(w->zone);
	STR(w->target_pod);
}

static void check_policy(const struct aegis_traffic_policy *p)
{
	STR(p->sni);
	check_strv(p->tls_subject_alt_names, p->n_tls_subject_alt_names);
	ARR(p->failover, p->n_failover);
	for (size_t i = 0; i < p->n_failover; i++) {
		STR(p->failover[i].from);
		STR(p->failover[i].to);
	}
	check_strv(p->failover_priority, p->n_failover_priority);
}

/* Walks a whole config checking the model's invariants. */
static void check_model(const struct aegis_config *c)
{
	ARR(c->service_entries, c->n_service_entries);
	for (size_t i = 0; i < c->n_service_entries; i++) {
		const struct aegis_service_entry *se = &c->service_entries[i];
		check_meta(&se->meta);
		check_strv(se->hosts, se->n_hosts);
		check_strv(se->addresses, se->n_addresses);
		check_ports(se->ports, se->n_ports);
		ARR(se->endpoints, se->n_endpoints);
		for (size_t k = 0; k < se->n_endpoints; k++)
			check_workload(&se->endpoints[k]);
		check_labels(&se->workload_selector);
		check_strv(se->export_to, se->n_export_to);
		check_strv(se->subject_alt_names, se->n_subject_alt_names);
	}
	for (size_t i = 0; i < c->n_workload_entries; i++) {
		check_meta(&c->workload_entries[i].meta);
		check_workload(&c->workload_entries[i].spec);
	}
	for (size_t i = 0; i < c->n_services; i++) {
		const struct aegis_k8s_service *s = &c->services[i];
		check_meta(&s->meta);
		check_strv(s->cluster_ips, s->n_cluster_ips);
		STR(s->external_name);
		check_ports(s->ports, s->n_ports);
		check_labels(&s->selector);
	}
	for (size_t i = 0; i < c->n_endpoint_slices; i++) {
		const struct aegis_endpoint_slice *es = &c->endpoint_slices[i];
		check_meta(&es->meta);
		STR(es->service_name);
		STR(es->address_type);
		check_ports(es->ports, es->n_ports);
		ARR(es->endpoints, es->n_endpoints);
		for (size_t k = 0; k < es->n_endpoints; k++) {
			const struct aegis_slice_endpoint *e = &es->endpoints[k];
			check_strv(e->addresses, e->n_addresses);
			STR(e->hostname);
			STR(e->node_name);
			STR(e->zone);
			STR(e->target_kind);
			STR(e->target_name);
			STR(e->target_namespace);
		}
	}
	for (size_t i = 0; i < c->n_virtual_services; i++) {
		const struct aegis_virtual_service *vs = &c->virtual_services[i];
		check_meta(&vs->meta);
		check_strv(vs->hosts, vs->n_hosts);
		check_strv(vs->gateways, vs->n_gateways);
		check_strv(vs->export_to, vs->n_export_to);
		ARR(vs->routes, vs->n_routes);
		for (size_t k = 0; k < vs->n_routes; k++) {
			const struct aegis_route *r = &vs->routes[k];
			STR(r->name);
			ARR(r->matches, r->n_matches);
			for (size_t m = 0; m < r->n_matches; m++) {
				check_labels(&r->matches[m].source_labels);
				STR(r->matches[m].source_namespace);
				check_strv(r->matches[m].destination_subnets,
				           r->matches[m].n_destination_subnets);
				check_strv(r->matches[m].sni_hosts, r->matches[m].n_sni_hosts);
			}
			ARR(r->dests, r->n_dests);
			for (size_t m = 0; m < r->n_dests; m++) {
				STR(r->dests[m].host);
				STR(r->dests[m].subset);
			}
		}
	}
	for (size_t i = 0; i < c->n_destination_rules; i++) {
		const struct aegis_destination_rule *dr = &c->destination_rules[i];
		check_meta(&dr->meta);
		STR(dr->host);
		check_policy(&dr->policy);
		ARR(dr->subsets, dr->n_subsets);
		for (size_t k = 0; k < dr->n_subsets; k++) {
			STR(dr->subsets[k].name);
			check_labels(&dr->subsets[k].labels);
			check_policy(&dr->subsets[k].policy);
		}
		check_strv(dr->export_to, dr->n_export_to);
	}
	ARR(c->clusters, c->n_clusters);
	for (size_t i = 0; i < c->n_clusters; i++) {
		STR(c->clusters[i].name);
		STR(c->clusters[i].network);
		STR(c->clusters[i].locality);
		STR(c->clusters[i].source);
	}
}

/* ---- the example mesh ---- */

static const struct aegis_k8s_service *find_svc(const struct aegis_config *c, const char *cluster,
                                                const char *ns, const char *name)
{
	for (size_t i = 0; i < c->n_services; i++) {
		const struct aegis_k8s_service *s = &c->services[i];
		if (!strcmp(s->meta.cluster, cluster) && !strcmp(s->meta.namespace_, ns) &&
		    !strcmp(s->meta.name, name))
			return s;
	}
	fail_msg("no service %s/%s/%s", cluster, ns, name);
	abort(); /* fail_msg() does not return; this tells the compiler (no NULL for -Wnull-dereference) */
}

static const struct aegis_endpoint_slice *find_slice(const struct aegis_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_endpoint_slices; i++)
		if (!strcmp(c->endpoint_slices[i].meta.name, name))
			return &c->endpoint_slices[i];
	fail_msg("no endpoint slice %s", name);
	abort(); /* as above */
}

static void test_example_mesh(void **state)
{
	(void)state;
	const char *paths[] = {AEGIS_SRC_DIR "/examples/mesh"};
	struct aegis_config *c = NULL;
	struct aegis_diag d;
	char buf[600];
	int rc = aegis_yaml_load_paths(paths, 1, &c, &d);
	if (rc != 0)
		print_error("%s\n", aegis_diag_str(&d, buf, sizeof(buf)));
	assert_int_equal(rc, 0);
	check_model(c);
	assert_int_equal(c->n_clusters, 2);
	assert_string_equal(c->clusters[0].name, "east");
	assert_string_equal(c->clusters[0].network, "network-east");
	assert_string_equal(c->clusters[0].locality, "us-east1/us-east1-a");
	assert_true(ends_with(c->clusters[0].source, "examples/mesh/east/cluster.yaml"));
	assert_string_equal(c->clusters[1].name, "west");
	assert_string_equal(c->clusters[1].network, "network-west");
	assert_string_equal(c->clusters[1].locality, "us-west1/us-west1-b");

	assert_int_equal(c->n_services, 7);
	assert_int_equal(c->n_endpoint_slices, 4);
	assert_int_equal(c->n_service_entries, 3);
	assert_int_equal(c->n_virtual_services, 1);
	assert_int_equal(c->n_destination_rules, 1);
	assert_int_equal(c->n_workload_entries, 0);

	/* Load order is path order: east/default.yaml comes first. */
	const struct aegis_k8s_service *s = &c->services[0];
	assert_string_equal(s->meta.name, "reviews");
	assert_string_equal(s->meta.cluster, "east");
	assert_true(ends_with(s->meta.source, "examples/mesh/east/default.yaml"));
	assert_int_equal(s->meta.line, 2);
	assert_string_equal(s->meta.resource_version, "18342");
	assert_string_equal(label(&s->meta.labels, "app"), "reviews");
	assert_int_equal(s->n_cluster_ips, 1);
	assert_string_equal(s->cluster_ips[0], "10.96.10.11");
	assert_int_equal(s->n_ports, 1);
	assert_string_equal(s->ports[0].name, "http");
	assert_int_equal(s->ports[0].number, 9080);
	assert_int_equal(s->ports[0].target_port, 9080);
	assert_string_equal(s->ports[0].protocol, "TCP");
	assert_string_equal(label(&s->selector, "app"), "reviews");

	s = find_svc(c, "east", "default", "ratings");
	assert_int_equal(s->n_cluster_ips, 2);
	assert_string_equal(s->cluster_ips[0], "10.96.10.12");
	assert_string_equal(s->cluster_ips[1], "fd00:10:96::12");
	assert_string_equal(find_svc(c, "east", "default", "productpage")->cluster_ips[0], "10.96.10.13");
	s = find_svc(c, "east", "shop", "cart");
	assert_string_equal(s->cluster_ips[0], "10.96.20.21");
	assert_string_equal(s->ports[0].name, "grpc");
	assert_int_equal(s->ports[0].number, 8080);
	s = find_svc(c, "east", "shop", "db");
	assert_true(s->headless);
	assert_int_equal(s->n_cluster_ips, 0);
	assert_int_equal(s->ports[0].number, 5432);
	assert_false(find_svc(c, "east", "shop", "cart")->headless);
	assert_string_equal(find_svc(c, "west", "default", "reviews")->cluster_ips[0], "10.97.10.11");
	assert_string_equal(find_svc(c, "west", "default", "details")->cluster_ips[0], "10.97.10.14");

	const struct aegis_endpoint_slice *es = find_slice(c, "reviews-east-1");
	assert_string_equal(es->service_name, "reviews");
	assert_string_equal(es->meta.cluster, "east");
	assert_string_equal(es->address_type, "IPv4");
	assert_int_equal(es->n_endpoints, 2);
	assert_string_equal(es->endpoints[0].addresses[0], "10.244.1.11");
	assert_string_equal(es->endpoints[0].target_kind, "Pod");
	assert_string_equal(es->endpoints[0].target_name, "reviews-v1-7d8f9");
	assert_string_equal(es->endpoints[0].zone, "us-east1-a");
	assert_string_equal(es->endpoints[1].addresses[0], "10.244.1.12");
	assert_string_equal(es->endpoints[1].target_name, "reviews-v2-5c6b8");
	assert_int_equal(es->ports[0].number, 9080);
	assert_string_equal(find_slice(c, "ratings-east-1")->endpoints[0].addresses[0], "10.244.1.21");
	es = find_slice(c, "db-abc12");
	assert_string_equal(es->service_name, "db");
	assert_string_equal(es->meta.namespace_, "shop");
	assert_int_equal(es->n_endpoints, 3);
	assert_string_equal(es->endpoints[0].hostname, "db-0");
	assert_true(es->endpoints[0].ready);
	assert_string_equal(es->endpoints[1].hostname, "db-1");
	assert_true(es->endpoints[1].ready);
	assert_string_equal(es->endpoints[2].hostname, "db-2");
	assert_string_equal(es->endpoints[2].addresses[0], "10.244.2.33");
	assert_false(es->endpoints[2].ready);
	es = find_slice(c, "reviews-west-1");
	assert_string_equal(es->meta.cluster, "west");
	assert_string_equal(es->endpoints[0].addresses[0], "10.245.1.11");
	assert_string_equal(es->endpoints[0].zone, "us-west1-b");

	const struct aegis_service_entry *se = &c->service_entries[0];
	assert_string_equal(se->meta.name, "api-example");
	assert_string_equal(se->hosts[0], "api.example.com");
	assert_int_equal(se->n_addresses, 0);
	assert_int_equal(se->resolution, AEGIS_SE_RES_DNS);
	assert_int_equal(se->location, AEGIS_SE_MESH_EXTERNAL);
	assert_int_equal(se->ports[0].number, 443);
	assert_string_equal(se->ports[0].protocol, "TLS");
	se = &c->service_entries[1];
	assert_string_equal(se->hosts[0], "*.wikipedia.org");
	assert_int_equal(se->resolution, AEGIS_SE_RES_NONE);
	se = &c->service_entries[2];
	assert_string_equal(se->meta.name, "legacy-db");
	assert_int_equal(se->n_addresses, 2);
	assert_string_equal(se->addresses[0], "192.0.2.10");
	assert_string_equal(se->addresses[1], "2001:db8::10");
	assert_int_equal(se->resolution, AEGIS_SE_RES_STATIC);
	assert_int_equal(se->location, AEGIS_SE_MESH_INTERNAL);
	assert_int_equal(se->n_endpoints, 2);
	assert_string_equal(se->endpoints[1].address, "192.0.2.12");

	const struct aegis_virtual_service *vs = &c->virtual_services[0];
	assert_string_equal(vs->hosts[0], "reviews.default.svc.cluster.local");
	assert_int_equal(vs->n_routes, 1);
	assert_int_equal(vs->routes[0].n_dests, 2);
	assert_string_equal(vs->routes[0].dests[0].subset, "v1");
	assert_int_equal(vs->routes[0].dests[0].weight, 90);
	assert_string_equal(vs->routes[0].dests[1].subset, "v2");
	assert_int_equal(vs->routes[0].dests[1].weight, 10);
	const struct aegis_destination_rule *dr = &c->destination_rules[0];
	assert_string_equal(dr->host, "reviews.default.svc.cluster.local");
	assert_int_equal(dr->policy.tls_mode, AEGIS_TLS_ISTIO_MUTUAL);
	assert_int_equal(dr->n_subsets, 2);
	assert_string_equal(label(&dr->subsets[1].labels, "version"), "v2");
	aegis_config_free(c);
}

/* ---- kinds, field by field ---- */

static const char se_full[] = "apiVersion: networking.istio.io/v1beta1\n"
                              "kind: ServiceEntry\n"
                              "metadata:\n"
                              "  name: full\n"
                              "  namespace: ext\n"
                              "  labels: {team: net, tier: 1}\n"
                              "  annotations: {note: \"hello\"}\n"
                              "  resourceVersion: \"77\"\n"
                              "  unknownMetaField: [1, 2]\n"
                              "spec:\n"
                              "  hosts: [API.Example.COM, \"*.Wild.example.com\"]\n"
                              "  addresses: [10.0.0.1, 10.1.0.0/16, \"2001:db8::/64\"]\n"
                              "  ports:\n"
                              "  - {number: 443, name: https, protocol: TLS, targetPort: 8443}\n"
                              "  - {number: \"80\", name: http, protocol: HTTP}\n"
                              "  location: MESH_INTERNAL\n"
                              "  resolution: DNS_ROUND_ROBIN\n"
                              "  endpoints:\n"
                              "  - address: backend.example.com\n"
                              "    ports: {https: 9443, http: \"9080\"}\n"
                              "    labels: {app: api}\n"
                              "    network: net-1\n"
                              "    locality: us-east1/us-east1-b\n"
                              "    weight: 3\n"
                              "    serviceAccount: api-sa\n"
                              "  - address: 10.2.0.1\n"
                              "  - address: unix:///var/run/api.sock\n"
                              "  workloadSelector: {labels: {app: api, version: v2}}\n"
                              "  exportTo: [\".\", other]\n"
                              "  subjectAltNames: [\"spiffe://cluster.local/ns/ext/sa/api\"]\n"
                              "  futureField: {x: 1}\n";

static void test_service_entry(void **state)
{
	(void)state;
	struct aegis_config *c = load(se_full);
	check_model(c);
	assert_int_equal(c->n_service_entries, 1);
	const struct aegis_service_entry *se = &c->service_entries[0];
	assert_string_equal(se->meta.name, "full");
	assert_string_equal(se->meta.namespace_, "ext");
	assert_string_equal(se->meta.cluster, "");
	assert_string_equal(se->meta.source, "test.yaml");
	assert_int_equal(se->meta.line, 1);
	assert_string_equal(se->meta.resource_version, "77");
	assert_int_equal(se->meta.labels.n, 2);
	assert_string_equal(label(&se->meta.labels, "tier"), "1");
	assert_string_equal(label(&se->meta.annotations, "note"), "hello");
	assert_int_equal(se->n_hosts, 2);
	assert_string_equal(se->hosts[0], "api.example.com");
	assert_string_equal(se->hosts[1], "*.wild.example.com");
	assert_int_equal(se->n_addresses, 3);
	assert_string_equal(se->addresses[1], "10.1.0.0/16");
	assert_string_equal(se->addresses[2], "2001:db8::/64");
	assert_int_equal(se->n_ports, 2);
	assert_int_equal(se->ports[0].number, 443);
	assert_int_equal(se->ports[0].target_port, 8443);
	assert_string_equal(se->ports[0].name, "https");
	assert_string_equal(se->ports[0].protocol, "TLS");
	assert_int_equal(se->ports[1].number, 80);
	assert_int_equal(se->ports[1].target_port, 0);
	assert_int_equal(se->location, AEGIS_SE_MESH_INTERNAL);
	assert_int_equal(se->resolution, AEGIS_SE_RES_DNS_ROUND_ROBIN);
	assert_int_equal(se->n_endpoints, 3);
	const struct aegis_workload *w = &se->endpoints[0];
	assert_string_equal(w->address, "backend.example.com");
	assert_int_equal(w->n_ports, 2);
	assert_string_equal(w->ports[0].name, "https");
	assert_int_equal(w->ports[0].number, 9443);
	assert_int_equal(w->ports[1].number, 9080);
	assert_string_equal(label(&w->labels, "app"), "api");
	assert_string_equal(w->network, "net-1");
	assert_string_equal(w->locality, "us-east1/us-east1-b");
	assert_int_equal(w->weight, 3);
	assert_string_equal(w->service_account, "api-sa");
	assert_int_equal(w->health, AEGIS_HEALTH_UNKNOWN);
	assert_string_equal(se->endpoints[1].address, "10.2.0.1");
	assert_int_equal(se->endpoints[1].weight, 0);
	assert_string_equal(se->endpoints[2].address, "unix:///var/run/api.sock");
	assert_int_equal(se->workload_selector.n, 2);
	assert_string_equal(label(&se->workload_selector, "version"), "v2");
	assert_int_equal(se->n_export_to, 2);
	assert_string_equal(se->export_to[0], ".");
	assert_int_equal(se->n_subject_alt_names, 1);
	assert_string_equal(se->subject_alt_names[0], "spiffe://cluster.local/ns/ext/sa/api");
	aegis_config_free(c);
}

static void test_service_entry_defaults(void **state)
{
	(void)state;
	struct aegis_config *c = load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	                              "metadata: {name: min}\nspec: {hosts: [a.example.com]}\n");
	check_model(c);
	const struct aegis_service_entry *se = &c->service_entries[0];
	assert_string_equal(se->meta.namespace_, "default");
	assert_string_equal(se->meta.resource_version, "");
	assert_int_equal(se->location, AEGIS_SE_MESH_EXTERNAL);
	assert_int_equal(se->resolution, AEGIS_SE_RES_NONE);
	assert_null(se->ports);
	assert_null(se->addresses);
	assert_null(se->endpoints);
	aegis_config_free(c);
}

static void test_workload_entry(void **state)
{
	(void)state;
	struct aegis_config *c =
	        load("apiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\n"
	             "metadata: {name: vm1, namespace: vms}\n"
	             "spec:\n  address: 172.16.0.5\n  ports: {http: 8080}\n  labels: {app: legacy}\n"
	             "  network: vm-net\n  locality: eu/eu-1\n  weight: 7\n  serviceAccount: legacy\n"
	             "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
	             "metadata: {name: vm2}\nspec: {address: vm2.corp.example}\n");
	check_model(c);
	assert_int_equal(c->n_workload_entries, 2);
	const struct aegis_workload *w = &c->workload_entries[0].spec;
	assert_string_equal(c->workload_entries[0].meta.namespace_, "vms");
	assert_string_equal(w->address, "172.16.0.5");
	assert_int_equal(w->n_ports, 1);
	assert_string_equal(w->ports[0].name, "http");
	assert_int_equal(w->ports[0].number, 8080);
	assert_string_equal(label(&w->labels, "app"), "legacy");
	assert_string_equal(w->network, "vm-net");
	assert_string_equal(w->locality, "eu/eu-1");
	assert_int_equal(w->weight, 7);
	assert_string_equal(w->service_account, "legacy");
	assert_string_equal(c->workload_entries[1].spec.address, "vm2.corp.example");
	assert_int_equal(c->workload_entries[1].meta.line, 13);
	aegis_config_free(c);
}

static void test_service(void **state)
{
	(void)state;
	struct aegis_config *c = load(
	        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	        "spec:\n  type: NodePort\n  clusterIP: 10.96.0.5\n"
	        "  ports:\n  - {name: http, port: 80, protocol: TCP, targetPort: http-web, nodePort: 30080}\n"
	        "  - {name: metrics, port: '9090', targetPort: \"9091\"}\n"
	        "  selector: {app: web}\n"
	        "---\napiVersion: v1\nkind: Service\nmetadata: {name: ext}\n"
	        "spec: {type: ExternalName, externalName: DB.Corp.Example.COM}\n"
	        "---\napiVersion: v1\nkind: Service\nmetadata: {name: lb}\n"
	        "spec: {type: LoadBalancer, clusterIP: 10.96.0.6, clusterIPs: [10.96.0.6, \"fd00::6\"]}\n"
	        "---\napiVersion: v1\nkind: Service\nmetadata: {name: hl}\n"
	        "spec: {clusterIP: None, clusterIPs: [None], ports: [{port: 53, protocol: UDP}]}\n");
	check_model(c);
	assert_int_equal(c->n_services, 4);
	const struct aegis_k8s_service *s = &c->services[0];
	assert_int_equal(s->type, AEGIS_SVC_NODE_PORT);
	assert_false(s->headless);
	assert_int_equal(s->n_cluster_ips, 1);
	assert_string_equal(s->cluster_ips[0], "10.96.0.5");
	assert_int_equal(s->n_ports, 2);
	assert_int_equal(s->ports[0].number, 80);
	assert_int_equal(s->ports[0].target_port, 0); /* named */
	assert_int_equal(s->ports[1].number, 9090);
	assert_int_equal(s->ports[1].target_port, 9091);
	assert_string_equal(s->ports[1].protocol, "");
	assert_string_equal(label(&s->selector, "app"), "web");
	s = &c->services[1];
	assert_int_equal(s->type, AEGIS_SVC_EXTERNAL_NAME);
	assert_string_equal(s->external_name, "db.corp.example.com");
	assert_int_equal(s->n_cluster_ips, 0);
	assert_null(s->cluster_ips);
	s = &c->services[2];
	assert_int_equal(s->type, AEGIS_SVC_LOAD_BALANCER);
	assert_int_equal(s->n_cluster_ips, 2);
	assert_string_equal(s->cluster_ips[1], "fd00::6");
	s = &c->services[3];
	assert_true(s->headless);
	assert_int_equal(s->n_cluster_ips, 0);
	assert_null(s->cluster_ips);
	assert_string_equal(s->ports[0].protocol, "UDP");
	assert_int_equal(s->type, AEGIS_SVC_CLUSTER_IP);
	aegis_config_free(c);
}

static void test_endpoint_slice(void **state)
{
	(void)state;
	struct aegis_config *c =
	        load("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	             "metadata:\n  name: web-x1\n  namespace: shop\n"
	             "  labels: {kubernetes.io/service-name: web}\n"
	             "addressType: IPv6\n"
	             "ports: [{name: http, port: 80, protocol: TCP}, {name: any}]\n"
	             "endpoints:\n"
	             "- addresses: [\"fd00::1\"]\n"
	             "  hostname: web-0\n  nodeName: n1\n  zone: z1\n"
	             "  targetRef: {kind: Pod, name: web-0, namespace: shop}\n"
	             "- addresses: [\"fd00::2\", \"fd00::3\"]\n"
	             "  conditions: {ready: false, terminating: true}\n"
	             "- addresses: [\"fd00::4\"]\n"
	             "  conditions: {ready: \"false\", serving: true}\n"
	             "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: f}\n"
	             "addressType: FQDN\nendpoints: [{addresses: [Host.Example.com]}]\n");
	check_model(c);
	assert_int_equal(c->n_endpoint_slices, 2);
	const struct aegis_endpoint_slice *es = &c->endpoint_slices[0];
	assert_string_equal(es->service_name, "web");
	assert_string_equal(es->address_type, "IPv6");
	assert_int_equal(es->n_ports, 2);
	assert_int_equal(es->ports[0].number, 80);
	assert_int_equal(es->ports[1].number, 0);
	assert_int_equal(es->n_endpoints, 3);
	const struct aegis_slice_endpoint *e = &es->endpoints[0];
	assert_true(e->ready); /* absent ready counts as ready */
	assert_true(e->serving);
	assert_false(e->terminating);
	assert_string_equal(e->hostname, "web-0");
	assert_string_equal(e->node_name, "n1");
	assert_string_equal(e->zone, "z1");
	assert_string_equal(e->target_kind, "Pod");
	assert_string_equal(e->target_name, "web-0");
	assert_string_equal(e->target_namespace, "shop");
	e = &es->endpoints[1];
	assert_int_equal(e->n_addresses, 2);
	assert_string_equal(e->addresses[1], "fd00::3");
	assert_false(e->ready);
	assert_false(e->serving); /* absent serving follows ready */
	assert_true(e->terminating);
	e = &es->endpoints[2];
	assert_false(e->ready);
	assert_true(e->serving);
	assert_string_equal(e->target_kind, "");
	assert_string_equal(c->endpoint_slices[1].service_name, "");
	assert_string_equal(c->endpoint_slices[1].endpoints[0].addresses[0], "host.example.com");
	aegis_config_free(c);
}

static void test_virtual_service(void **state)
{
	(void)state;
	struct aegis_config *c = load(
	        "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: vs}\n"
	        "spec:\n"
	        "  hosts: [Reviews, \"*\"]\n  gateways: [mesh, istio-system/gw]\n  exportTo: [\"*\"]\n"
	        "  tls:\n"
	        "  - match: [{port: 443, sniHosts: [A.example.com]}]\n"
	        "    route: [{destination: {host: a.example.com, port: {number: 8443}}}]\n"
	        "  tcp:\n"
	        "  - match:\n"
	        "    - port: 5432\n      destinationSubnets: [10.0.0.0/8]\n      sourceLabels: {app: x}\n"
	        "      sourceNamespace: ns1\n"
	        "    route: [{destination: {host: db}}]\n"
	        "  http:\n"
	        "  - name: first\n"
	        "    match: [{uri: {prefix: /api}}, {port: 8080}]\n"
	        "    route:\n"
	        "    - {destination: {host: reviews, subset: v1}, weight: 75}\n"
	        "    - {destination: {host: reviews, subset: v2}, weight: \"25\"}\n"
	        "    timeout: 1.5s\n    retries: {attempts: 3, perTryTimeout: 2s}\n"
	        "  - route: [{destination: {host: reviews}}]\n    timeout: 250ms\n"
	        "  - route: [{destination: {host: reviews}}]\n    timeout: \"10s\"\n"
	        "  - redirect: {uri: /x}\n    timeout: 1m30s\n"
	        "  - match: [{headers: {x: {exact: y}}}, {method: {exact: GET}}]\n    timeout: 500us\n");
	check_model(c);
	const struct aegis_virtual_service *vs = &c->virtual_services[0];
	assert_int_equal(vs->n_hosts, 2);
	assert_string_equal(vs->hosts[0], "reviews");
	assert_string_equal(vs->hosts[1], "*");
	assert_int_equal(vs->n_gateways, 2);
	assert_string_equal(vs->gateways[1], "istio-system/gw");
	assert_int_equal(vs->n_export_to, 1);
	/* http first, then tcp, then tls, whatever order the file has */
	assert_int_equal(vs->n_routes, 7);
	const struct aegis_route *r = &vs->routes[0];
	assert_int_equal(r->kind, AEGIS_ROUTE_HTTP);
	assert_string_equal(r->name, "first");
	assert_int_equal(r->n_matches, 2);
	assert_true(r->matches[0].has_l7);
	assert_false(r->matches[1].has_l7);
	assert_int_equal(r->matches[1].port, 8080);
	assert_int_equal(r->n_dests, 2);
	assert_string_equal(r->dests[0].host, "reviews");
	assert_string_equal(r->dests[0].subset, "v1");
	assert_int_equal(r->dests[0].weight, 75);
	assert_int_equal(r->dests[1].weight, 25);
	assert_int_equal(r->dests[0].port, 0);
	assert_int_equal(r->timeout_ms, 1500);
	assert_int_equal(r->retries, 3);
	r = &vs->routes[1];
	assert_int_equal(r->timeout_ms, 250);
	assert_int_equal(r->dests[0].weight, -1);
	assert_int_equal(r->retries, 0);
	assert_int_equal(r->n_matches, 0);
	assert_int_equal(vs->routes[2].timeout_ms, 10000);
	assert_int_equal(vs->routes[3].n_dests, 0);
	assert_int_equal(vs->routes[3].timeout_ms, 90000);
	assert_true(vs->routes[4].matches[0].has_l7);
	assert_true(vs->routes[4].matches[1].has_l7);
	assert_int_equal(vs->routes[4].timeout_ms, 1); /* under 1 ms is not "unset" */
	r = &vs->routes[5];
	assert_int_equal(r->kind, AEGIS_ROUTE_TCP);
	assert_int_equal(r->matches[0].port, 5432);
	assert_string_equal(r->matches[0].destination_subnets[0], "10.0.0.0/8");
	assert_string_equal(label(&r->matches[0].source_labels, "app"), "x");
	assert_string_equal(r->matches[0].source_namespace, "ns1");
	assert_false(r->matches[0].has_l7);
	assert_string_equal(r->dests[0].host, "db");
	r = &vs->routes[6];
	assert_int_equal(r->kind, AEGIS_ROUTE_TLS);
	assert_int_equal(r->matches[0].n_sni_hosts, 1);
	assert_string_equal(r->matches[0].sni_hosts[0], "a.example.com");
	assert_int_equal(r->dests[0].port, 8443);
	aegis_config_free(c);
}

static void test_destination_rule(void **state)
{
	(void)state;
	struct aegis_config *c = load(
	        "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: dr, "
	        "namespace: x}\n"
	        "spec:\n"
	        "  host: Reviews.X.svc.cluster.local\n"
	        "  exportTo: [\".\"]\n"
	        "  trafficPolicy:\n"
	        "    tls: {mode: MUTUAL, sni: reviews.x, subjectAltNames: [spiffe://td/ns/x/sa/r]}\n"
	        "    loadBalancer:\n"
	        "      simple: LEAST_REQUEST\n"
	        "      localityLbSetting:\n"
	        "        failover: [{from: us-east1, to: us-west1}]\n"
	        "        failoverPriority: [topology.kubernetes.io/region, topology.kubernetes.io/zone]\n"
	        "    connectionPool: {tcp: {connectTimeout: 2.5s, maxConnections: 100}}\n"
	        "    outlierDetection: {consecutive5xxErrors: 5, consecutiveErrors: 9, interval: 10s,\n"
	        "                       baseEjectionTime: 1m, maxEjectionPercent: 50}\n"
	        "  subsets:\n"
	        "  - name: v1\n    labels: {version: v1}\n"
	        "    trafficPolicy:\n"
	        "      loadBalancer: {simple: LEAST_CONN, localityLbSetting: {enabled: false}}\n"
	        "      outlierDetection: {consecutiveGatewayErrors: 2}\n"
	        "  - name: v2\n    labels: {version: v2}\n"
	        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d2}\n"
	        "spec: {host: \"*.example.com\", trafficPolicy: {outlierDetection: {consecutiveErrors: 4},\n"
	        "       tls: {mode: DISABLE}, loadBalancer: {simple: PASSTHROUGH}}}\n");
	check_model(c);
	assert_int_equal(c->n_destination_rules, 2);
	const struct aegis_destination_rule *dr = &c->destination_rules[0];
	assert_string_equal(dr->host, "reviews.x.svc.cluster.local");
	assert_int_equal(dr->n_export_to, 1);
	const struct aegis_traffic_policy *p = &dr->policy;
	assert_true(p->present);
	assert_int_equal(p->tls_mode, AEGIS_TLS_MUTUAL);
	assert_string_equal(p->sni, "reviews.x");
	assert_string_equal(p->tls_subject_alt_names[0], "spiffe://td/ns/x/sa/r");
	assert_int_equal(p->lb, AEGIS_LB_LEAST_REQUEST);
	assert_true(p->locality_lb_enabled); /* default when the setting is present */
	assert_int_equal(p->n_failover, 1);
	assert_string_equal(p->failover[0].from, "us-east1");
	assert_string_equal(p->failover[0].to, "us-west1");
	assert_int_equal(p->n_failover_priority, 2);
	assert_string_equal(p->failover_priority[1], "topology.kubernetes.io/zone");
	assert_int_equal(p->connect_timeout_ms, 2500);
	assert_int_equal(p->max_connections, 100);
	assert_int_equal(p->outlier_consecutive_errors, 5); /* consecutive5xxErrors wins */
	assert_int_equal(p->outlier_interval_ms, 10000);
	assert_int_equal(p->outlier_base_ejection_ms, 60000);
	assert_int_equal(p->outlier_max_ejection_percent, 50);
	assert_int_equal(dr->n_subsets, 2);
	const struct aegis_subset *s = &dr->subsets[0];
	assert_string_equal(s->name, "v1");
	assert_string_equal(label(&s->labels, "version"), "v1");
	assert_true(s->policy.present);
	assert_int_equal(s->policy.lb, AEGIS_LB_LEAST_REQUEST);
	assert_false(s->policy.locality_lb_enabled);
	assert_int_equal(s->policy.outlier_consecutive_errors, 2);
	assert_int_equal(s->policy.tls_mode, AEGIS_TLS_UNSET);
	assert_false(dr->subsets[1].policy.present);
	assert_string_equal(dr->subsets[1].policy.sni, "");
	p = &c->destination_rules[1].policy;
	assert_string_equal(c->destination_rules[1].host, "*.example.com");
	assert_int_equal(p->outlier_consecutive_errors, 4);
	assert_int_equal(p->tls_mode, AEGIS_TLS_DISABLE);
	assert_int_equal(p->lb, AEGIS_LB_PASSTHROUGH);
	assert_false(p->locality_lb_enabled);
	aegis_config_free(c);
}

/* ---- streams, wrappers, versions ---- */

static void test_list_and_multidoc(void **state)
{
	(void)state;
	struct aegis_config *c =
	        load("# comment only document\n"
	             "---\n"
	             "---\n"
	             "apiVersion: v1\n"
	             "kind: List\n"
	             "items:\n"
	             "- apiVersion: v1\n"
	             "  kind: Service\n"
	             "  metadata: {name: a}\n"
	             "- apiVersion: v1\n"
	             "  kind: ConfigMap\n"
	             "  metadata: {name: skipped}\n"
	             "- apiVersion: networking.istio.io/v1\n"
	             "  kind: ServiceEntry\n"
	             "  metadata: {name: se}\n"
	             "  spec: {hosts: [x.example.com]}\n"
	             "metadata: {resourceVersion: \"\"}\n"
	             "...\n"
	             "---\n"
	             "apiVersion: v1\n"
	             "kind: Service\n"
	             "metadata: {name: b}\n"
	             "---\n"
	             "apiVersion: networking.istio.io/v1\n"
	             "kind: ServiceEntryList\n"
	             "items:\n"
	             "- {apiVersion: networking.istio.io/v1, kind: ServiceEntry, metadata: {name: se2},\n"
	             "   spec: {hosts: [y.example.com]}}\n");
	check_model(c);
	assert_int_equal(c->n_services, 2);
	assert_string_equal(c->services[0].meta.name, "a");
	assert_int_equal(c->services[0].meta.line, 7);
	assert_string_equal(c->services[1].meta.name, "b");
	assert_int_equal(c->services[1].meta.line, 20);
	assert_int_equal(c->n_service_entries, 2);
	assert_int_equal(c->service_entries[0].meta.line, 13);
	assert_string_equal(c->service_entries[1].hosts[0], "y.example.com");
	aegis_config_free(c);

	c = load("");
	assert_int_equal(c->n_services + c->n_service_entries, 0);
	aegis_config_free(c);
	c = load("---\n...\n---\n~\n");
	aegis_config_free(c);
}

static void test_api_versions(void **state)
{
	(void)state;
	static const char *const versions[] = {"v1alpha3", "v1beta1", "v1"};
	for (size_t i = 0; i < 3; i++) {
		char y[2048];
		snprintf(y, sizeof(y),
		         "apiVersion: networking.istio.io/%s\nkind: ServiceEntry\nmetadata: {name: se}\n"
		         "spec: {hosts: [a.example.com]}\n---\n"
		         "apiVersion: networking.istio.io/%s\nkind: VirtualService\nmetadata: {name: vs}\n"
		         "spec: {hosts: [a.example.com]}\n---\n"
		         "apiVersion: networking.istio.io/%s\nkind: DestinationRule\nmetadata: {name: dr}\n"
		         "spec: {host: a.example.com}\n---\n"
		         "apiVersion: networking.istio.io/%s\nkind: WorkloadEntry\nmetadata: {name: we}\n"
		         "spec: {address: 10.0.0.1}\n",
		         versions[i], versions[i], versions[i], versions[i]);
		struct aegis_config *c = load(y);
		assert_int_equal(c->n_service_entries, 1);
		assert_int_equal(c->n_virtual_services, 1);
		assert_int_equal(c->n_destination_rules, 1);
		assert_int_equal(c->n_workload_entries, 1);
		aegis_config_free(c);
	}
	/* Same kind names from other API groups are other objects: skipped, not misread. */
	struct aegis_config *c =
	        load("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: kn}\n"
	             "spec: {template: {}}\n---\n"
	             "apiVersion: networking.istio.io/v2\nkind: ServiceEntry\nmetadata: {name: x}\n---\n"
	             "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: x}\n---\n"
	             "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
	             "spec: {servers: [{port: {number: 80}}]}\n---\n"
	             "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n"
	             "  items: [{apiVersion: v1, kind: Service, metadata: {name: nested}}]\n");
	assert_int_equal(c->n_services + c->n_service_entries + c->n_endpoint_slices, 0);
	aegis_config_free(c);
}

static void test_quoted_scalars(void **state)
{
	(void)state;
	const char *forms[] = {"443", "\"443\"", "'443'"};
	for (size_t i = 0; i < 3; i++) {
		char y[512];
		snprintf(y, sizeof(y),
		         "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: \"q\"}\n"
		         "spec:\n  hosts: ['a.example.com']\n  ports: [{number: %s, name: \"https\"}]\n"
		         "  endpoints: [{address: \"10.0.0.1\", weight: %s}]\n",
		         forms[i], forms[i]);
		struct aegis_config *c = load(y);
		assert_int_equal(c->service_entries[0].ports[0].number, 443);
		assert_int_equal(c->service_entries[0].endpoints[0].weight, 443);
		assert_string_equal(c->service_entries[0].meta.name, "q");
		aegis_config_free(c);
	}
	/* Block scalars and quoted booleans */
	struct aegis_config *c =
	        load("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: >-\n"
	             "    folded\naddressType: IPv4\nendpoints:\n- addresses: [10.1.1.1]\n"
	             "  conditions: {ready: \"true\", serving: False, terminating: TRUE}\n");
	assert_string_equal(c->endpoint_slices[0].meta.name, "folded");
	assert_true(c->endpoint_slices[0].endpoints[0].ready);
	assert_false(c->endpoint_slices[0].endpoints[0].serving);
	assert_true(c->endpoint_slices[0].endpoints[0].terminating);
	aegis_config_free(c);
}

static void test_unknown_fields_ignored(void **state)
{
	(void)state;
	/* Wrong shapes under unknown keys do not matter; anchors without aliases are fine. */
	struct aegis_config *c =
	        load("apiVersion: v1\nkind: Service\n"
	             "metadata: {name: s, managedFields: [{manager: kubectl, fieldsV1: {f: {}}}]}\n"
	             "spec:\n  ports: &p [{port: 80}]\n  sessionAffinityConfig: [1, {a: b}]\n"
	             "  ? [complex, key]\n  : value\n"
	             "status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}\n");
	assert_int_equal(c->n_services, 1);
	assert_int_equal(c->services[0].ports[0].number, 80);
	aegis_config_free(c);
}

/* ---- errors, with their positions ---- */

static void test_syntax_errors(void **state)
{
	(void)state;
	expect_error("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  bad: [1, 2\n", AEGIS_EPARSE, 6,
	             1, "YAML syntax error");
	expect_error("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n    bad: x\n", AEGIS_EPARSE, 5, 8,
	             "mapping values are not allowed");
	expect_error("a: b\n\tc: d\n", AEGIS_EPARSE, 2, 1, "YAML syntax error");
	expect_error("a: \"unterminated\nb: c\n", AEGIS_EPARSE, 3, 1, "found unexpected end of stream");
	/* invalid UTF-8 is a reader error: its position comes from a byte offset */
	expect_error("a: b\nc: d\ne: \xff\xfe\n", AEGIS_EPARSE, 3, 4, "invalid");
	expect_error("a: \"x\\0y\"\n", AEGIS_EPARSE, 1, 4, "NUL character");
	expect_error("- a\n- b\n", AEGIS_EPARSE, 1, 1, "document must be a mapping");
	expect_error("just a string\n", AEGIS_EPARSE, 1, 1, "found a string");
}

static void test_field_errors(void **state)
{
	(void)state;
	const char *se = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\n";
	char y[1024];
#define SE(body) (snprintf(y, sizeof(y), "%sspec:\n%s", se, body), y)
	/* hosts: line 5 is the first spec line */
	expect_error(SE("  hosts: api.example.com\n"), AEGIS_EPARSE, 5, 10,
	             "spec.hosts: expected a list, found a string");
	expect_error(SE("  ports: [{number: 1}]\n"), AEGIS_EINVAL, 5, 3,
	             "spec.hosts: a ServiceEntry needs at least one host");
	expect_error(SE("  hosts: []\n"), AEGIS_EINVAL, 5, 10, "needs at least one host");
	expect_error(SE("  hosts: [a.example.com, \"bad host\"]\n"), AEGIS_EINVAL, 5, 26,
	             "ServiceEntry default/se spec.hosts[1]: \"bad host\" is not a valid host name");
	expect_error(SE("  hosts: [a..example.com]\n"), AEGIS_EINVAL, 5, 0, "not a valid host name");
	expect_error(SE("  hosts: [-a.example.com]\n"), AEGIS_EINVAL, 5, 0, "not a valid host name");
	expect_error(SE("  hosts: [\"*\"]\n"), AEGIS_EINVAL, 5, 0, "not a valid host name");
	expect_error(SE("  hosts: [a.example.com.]\n"), AEGIS_EINVAL, 5, 0, "not a valid host name");
	expect_error(SE("  hosts: [[a]]\n"), AEGIS_EPARSE, 5, 11,
	             "spec.hosts[0]: expected a string, found a list");
	expect_error(SE("  hosts: [a.com]\n  ports:\n  - number: http\n"), AEGIS_EINVAL, 7, 13,
	             "spec.ports[0].number: expected an integer in 1..65535, found \"http\"");
	expect_error(SE("  hosts: [a.com]\n  ports:\n  - number: 65536\n"), AEGIS_EINVAL, 7, 13, "1..65535");
	expect_error(SE("  hosts: [a.com]\n  ports:\n  - number: 0\n"), AEGIS_EINVAL, 7, 13, "1..65535");
	expect_error(SE("  hosts: [a.com]\n  ports:\n  - number: -1\n"), AEGIS_EINVAL, 7, 13, "1..65535");
	expect_error(SE("  hosts: [a.com]\n  ports:\n  - name: x\n"), AEGIS_EINVAL, 7, 5,
	             "port number is required");
	expect_error(SE("  hosts: [a.com]\n  ports: {number: 80}\n"), AEGIS_EPARSE, 6, 10, "expected a list");
	expect_error(SE("  hosts: [a.com]\n  addresses: [10.0.0.1, 10.0.0.300]\n"), AEGIS_EINVAL, 6, 25,
	             "spec.addresses[1]: \"10.0.0.300\" is not an IP address or CIDR");
	expect_error(SE("  hosts: [a.com]\n  addresses: [10.0.0.0/33]\n"), AEGIS_EINVAL, 6, 0, "CIDR");
	expect_error(
	        SE("  hosts: [a.com]\n  resolution: STATIC\n  endpoints:\n  - address: db.example.com\n"),
	        AEGIS_EINVAL, 8, 14, "spec.endpoints[0].address: \"db.example.com\" is not an IP address");
	expect_error(SE("  hosts: [a.com]\n  resolution: MAGIC\n"), AEGIS_EINVAL, 6, 15,
	             "unknown value \"MAGIC\" (expected one of NONE, STATIC, DNS, DNS_ROUND_ROBIN)");
	expect_error(SE("  hosts: [a.com]\n  hosts: [b.com]\n"), AEGIS_EPARSE, 6, 3,
	             "duplicate key \"hosts\"");
	expect_error(SE("  hosts: [a.com]\n  endpoints: [{address: 10.0.0.1, ports: {http: 0}}]\n"),
	             AEGIS_EINVAL, 6, 0, "spec.endpoints[0].ports.http: expected an integer");
	expect_error(SE("  hosts: [a.com]\n  endpoints: [{address: 10.0.0.1, labels: {a: [1]}}]\n"),
	             AEGIS_EPARSE, 6, 0, "value of \"a\" must be a string");
#undef SE
	expect_error("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {namespace: x}\n",
	             AEGIS_EINVAL, 3, 11, "ServiceEntry needs metadata.name");
	expect_error("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nspec: {hosts: [a.com]}\n",
	             AEGIS_EINVAL, 1, 1, "needs metadata.name");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: [a]\n", AEGIS_EPARSE, 3, 11,
	             "metadata: expected a mapping, found a list");
	expect_error("apiVersion: v1\nmetadata: {name: x}\n", AEGIS_EINVAL, 1, 1, "missing kind");
	expect_error("kind: Service\nmetadata: {name: x}\n", AEGIS_EINVAL, 1, 1, "missing apiVersion");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: 10.96.0.256}\n",
	             AEGIS_EINVAL, 4, 19,
	             "Service default/s spec.clusterIP: \"10.96.0.256\" is not an IP address");
	expect_error(
	        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIPs:\n  - 10.0.0.1\n"
	        "  - nope\n",
	        AEGIS_EINVAL, 7, 5, "spec.clusterIPs: \"nope\" is not an IP address");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, "
	             "targetPort: 0}]}\n",
	             AEGIS_EINVAL, 4, 0, "targetPort");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: Weird}\n",
	             AEGIS_EINVAL, 4, 14, "unknown value \"Weird\"");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
	             "spec: {type: ExternalName, externalName: \"a b\"}\n",
	             AEGIS_EINVAL, 4, 0, "not a valid host name");
	expect_error("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: "
	             "e}\naddressType: IPv4\n"
	             "endpoints:\n- addresses: [\"fd00::1\"]\n",
	             AEGIS_EINVAL, 6, 15, "\"fd00::1\" is not an IPv4 address");
	expect_error("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: "
	             "e}\naddressType: IPX\n",
	             AEGIS_EINVAL, 4, 14, "unknown value \"IPX\"");
	expect_error("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\n"
	             "endpoints:\n- addresses: [1.2.3.4]\n  conditions: {ready: maybe}\n",
	             AEGIS_EINVAL, 6, 23, "conditions.ready: expected true or false");
	expect_error("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
	             "spec:\n  http:\n  - route:\n    - destination: {host: a}\n      weight: -5\n",
	             AEGIS_EINVAL, 8, 15, "spec.http[0].route[0].weight: expected an integer");
	expect_error("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
	             "spec:\n  http:\n  - timeout: 10\n",
	             AEGIS_EINVAL, 6, 14, "spec.http[0].timeout: expected a duration");
	expect_error("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
	             "spec:\n  http:\n  - timeout: 100000h\n",
	             AEGIS_EINVAL, 6, 14, "expected a duration");
	expect_error("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
	             "spec:\n  tcp:\n  - route: [{weight: 1}]\n",
	             AEGIS_EINVAL, 6, 13, "spec.tcp[0].route[0].destination: a route needs a destination");
	expect_error("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
	             "spec:\n  tcp:\n  - route: [{destination: {host: x, port: {number: 99999}}}]\n",
	             AEGIS_EINVAL, 6, 0, "destination.port.number: expected an integer in 1..65535");
	expect_error("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
	             "spec:\n  http: [{match: [{port: abc}]}]\n",
	             AEGIS_EINVAL, 5, 0, "spec.http[0].match[0].port");
	expect_error(
	        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {}\n",
	        AEGIS_EINVAL, 4, 7, "a DestinationRule needs a host");
	expect_error("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	             "spec:\n  host: a\n  trafficPolicy:\n    tls: {mode: OPTIONAL_TLS}\n",
	             AEGIS_EINVAL, 7, 17, "spec.trafficPolicy.tls.mode: unknown value");
	expect_error("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	             "spec:\n  host: a\n  subsets:\n  - labels: {v: 1}\n",
	             AEGIS_EINVAL, 7, 5, "spec.subsets[0].name: a subset needs a name");
	expect_error("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	             "spec:\n  host: a\n  trafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}\n",
	             AEGIS_EINVAL, 6, 0, "maxEjectionPercent: expected an integer in 0..100");
	expect_error("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	             "spec:\n  host: a\n  trafficPolicy: {connectionPool: {tcp: {connectTimeout: soon}}}\n",
	             AEGIS_EINVAL, 6, 0, "connectionPool.tcp.connectTimeout: expected a duration");
	expect_error("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\n"
	             "spec: {address: \"not an address\"}\n",
	             AEGIS_EINVAL, 4, 17, "spec.address: \"not an address\" is not an IP address, host name");
	/* An error in a List item points at the item's own line. */
	expect_error("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: "
	             "{name: a}\n"
	             "- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n  spec: {clusterIP: x}\n",
	             AEGIS_EINVAL, 10, 21, "Service default/b spec.clusterIP");
	expect_error("apiVersion: v1\nkind: List\nitems: [1]\n", AEGIS_EPARSE, 3, 9,
	             "items[0]: expected a mapping");
	/* The second document fails: positions count from the start of the stream. */
	expect_error(
	        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\n"
	        "metadata: {name: b}\nspec:\n  ports: [{port: x}]\n",
	        AEGIS_EINVAL, 9, 18, "Service default/b spec.ports[0].port");
}

/* ---- limits ---- */

static char *nested(size_t depth)
{
	/* "a: " + depth flow sequences: [[[...]]] */
	char *s = malloc(depth * 2 + 8);
	assert_non_null(s);
	size_t n = 0;
	memcpy(s, "a: ", 3);
	n = 3;
	for (size_t i = 0; i < depth; i++)
		s[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		s[n++] = ']';
	s[n++] = '\n';
	s[n] = '\0';
	return s;
}

static void test_depth_limit(void **state)
{
	(void)state;
	/* The document mapping is one level, so depth-1 sequences fit exactly. */
	char *ok = nested(AEGIS_CONFIG_MAX_DEPTH - 1);
	struct aegis_config *c = NULL;
	struct aegis_diag d;
	assert_int_equal(aegis_yaml_load_buffer("deep.yaml", ok, strlen(ok), &c, &d),
	                 AEGIS_EINVAL); /* no kind */
	assert_non_null(strstr(d.msg, "missing kind"));
	free(ok);
	char *bad = nested(AEGIS_CONFIG_MAX_DEPTH);
	expect_error(bad, AEGIS_ELIMIT, 1, 4 + AEGIS_CONFIG_MAX_DEPTH - 1, "nested deeper than 64 levels");
	free(bad);
	/* Far deeper input fails the same way, without recursion. */
	bad = nested(100000);
	expect_error(bad, AEGIS_ELIMIT, 1, 4 + AEGIS_CONFIG_MAX_DEPTH - 1, "nested deeper");
	free(bad);
}

static void test_aliases(void **state)
{
	(void)state;
	expect_error("apiVersion: v1\nkind: Service\nmetadata: &m {name: a}\n---\n"
	             "apiVersion: v1\nkind: Service\nmetadata:\n  labels: *m\n",
	             AEGIS_EPARSE, 8, 11, "YAML alias *m is not supported");
	expect_error("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	             "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	             "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	             "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
	             AEGIS_EPARSE, 2, 8, "alias *a");
	/* merge keys need aliases too */
	expect_error("base: &b {name: x}\nmetadata:\n  <<: *b\n", AEGIS_EPARSE, 3, 7, "alias *b");
}

static void test_file_size_limit(void **state)
{
	(void)state;
	size_t n = AEGIS_CONFIG_MAX_FILE_BYTES + 1;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	struct aegis_config *c = (struct aegis_config *)1;
	struct aegis_diag d;
	assert_int_equal(aegis_yaml_load_buffer("big.yaml", big, n, &c, &d), AEGIS_ELIMIT);
	assert_null(c);
	assert_non_null(strstr(d.msg, "larger than"));
	/* The same through a file on disk. */
	char dir[] = "/tmp/aegis-yaml-big-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/big.yaml", dir);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, n, f), n);
	fclose(f);
	const char *paths[] = {dir};
	assert_int_equal(aegis_yaml_load_paths(paths, 1, &c, &d), AEGIS_ELIMIT);
	assert_string_equal(d.file, path);
	unlink(path);
	rmdir(dir);
	free(big);
}

/* ---- files and directories ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) < sizeof(path));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void rm_tree(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static const char *svc(const char *name, char *buf, size_t n)
{
	snprintf(buf, n, "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {clusterIP: 10.0.0.1}\n",
	         name);
	return buf;
}

static void test_directory(void **state)
{
	(void)state;
	char root[] = "/tmp/aegis-yaml-dir-XXXXXX";
	assert_non_null(mkdtemp(root));
	char p[512], b[256];
	/* root/a.yaml, root/b.yml, root/c.txt (ignored), root/.hidden.yaml (ignored)
	 * root/c1/{cluster.yaml, 0.yaml, sub/z.yaml, sub2/cluster.yaml, sub2/x.yaml} */
	write_file(root, "b.yml", svc("b", b, sizeof(b)));
	write_file(root, "a.yaml", svc("a", b, sizeof(b)));
	write_file(root, "c.txt", "not: [yaml");
	write_file(root, ".hidden.yaml", "not: [yaml");
	snprintf(p, sizeof(p), "%s/c1", root);
	assert_int_equal(mkdir(p, 0755), 0);
	write_file(p, "0.yaml", svc("c1-first", b, sizeof(b)));
	write_file(p, "cluster.yaml", "name: c1\nnetwork: n1\nlocality: r1/z1\n");
	snprintf(p, sizeof(p), "%s/c1/sub", root);
	assert_int_equal(mkdir(p, 0755), 0);
	write_file(p, "z.yaml", svc("c1-sub", b, sizeof(b)));
	snprintf(p, sizeof(p), "%s/c1/sub2", root);
	assert_int_equal(mkdir(p, 0755), 0);
	write_file(p, "cluster.yaml", "name: c2\n");
	write_file(p, "x.yaml", svc("c2-x", b, sizeof(b)));
	write_file(root, "d.yaml", svc("d", b, sizeof(b)));

	const char *paths[] = {root};
	struct aegis_config *c = NULL;
	struct aegis_diag d;
	assert_int_equal(aegis_yaml_load_paths(paths, 1, &c, &d), 0);
	check_model(c);
	assert_int_equal(c->n_services, 6);
	static const char *const names[] = {"a", "b", "c1-first", "c1-sub", "c2-x", "d"};
	static const char *const clusters[] = {"", "", "c1", "c1", "c2", ""};
	for (size_t i = 0; i < 6; i++) {
		assert_string_equal(c->services[i].meta.name, names[i]);
		assert_string_equal(c->services[i].meta.cluster, clusters[i]);
	}
	assert_true(ends_with(c->services[2].meta.source, "/c1/0.yaml"));
	assert_int_equal(c->n_clusters, 2);
	assert_string_equal(c->clusters[0].name, "c1");
	assert_string_equal(c->clusters[0].network, "n1");
	assert_string_equal(c->clusters[0].locality, "r1/z1");
	assert_string_equal(c->clusters[1].name, "c2");
	assert_string_equal(c->clusters[1].network, "");
	aegis_config_free(c);

	/* Files given one by one, and the same cluster declared twice identically. */
	char f1[600], f2[600];
	snprintf(f1, sizeof(f1), "%s/a.yaml", root);
	snprintf(f2, sizeof(f2), "%s/c1", root);
	const char *two[] = {f1, f2, f2};
	assert_int_equal(aegis_yaml_load_paths(two, 3, &c, &d), 0);
	assert_int_equal(c->n_services, 1 + 3 + 3);
	assert_int_equal(c->n_clusters, 2);
	aegis_config_free(c);

	/* A bad file deep in the tree names itself. */
	snprintf(p, sizeof(p), "%s/c1/sub", root);
	write_file(p, "y.yaml",
	           "apiVersion: v1\nkind: Service\nmetadata: {name: y}\nspec: {clusterIP: bad}\n");
	assert_int_equal(aegis_yaml_load_paths(paths, 1, &c, &d), AEGIS_EINVAL);
	assert_null(c);
	assert_true(ends_with(d.file, "/c1/sub/y.yaml"));
	assert_int_equal(d.line, 4);
	assert_int_equal(d.column, 19);

	/* cluster.yaml errors */
	snprintf(f1, sizeof(f1), "%s/y.yaml", p);
	unlink(f1);
	snprintf(p, sizeof(p), "%s/c1/sub2", root);
	write_file(p, "cluster.yaml", "name: c1\nnetwork: other\n");
	assert_int_equal(aegis_yaml_load_paths(paths, 1, &c, &d), AEGIS_EEXIST);
	assert_non_null(strstr(d.msg, "cluster c1 is already declared"));
	write_file(p, "cluster.yaml", "network: n\n");
	assert_int_equal(aegis_yaml_load_paths(paths, 1, &c, &d), AEGIS_EINVAL);
	assert_non_null(strstr(d.msg, "needs a cluster name"));
	write_file(p, "cluster.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
	assert_int_equal(aegis_yaml_load_paths(paths, 1, &c, &d), AEGIS_EINVAL);
	assert_int_equal(d.line, 2);
	assert_non_null(strstr(d.msg, "not Kubernetes objects"));
	write_file(p, "cluster.yaml", "name: a\n---\nname: b\n");
	assert_int_equal(aegis_yaml_load_paths(paths, 1, &c, &d), AEGIS_EINVAL);
	assert_int_equal(d.line, 3);
	assert_non_null(strstr(d.msg, "more than one cluster"));

	/* Missing paths */
	const char *missing[] = {"/nonexistent/aegis/x.yaml"};
	assert_int_equal(aegis_yaml_load_paths(missing, 1, &c, &d), AEGIS_ENOTFOUND);
	assert_string_equal(d.file, "/nonexistent/aegis/x.yaml");
	assert_null(c);
	rm_tree(root);
}

static char *copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src);
	return dst;
}

static void test_directory_depth(void **state)
{
	(void)state;
	char root[] = "/tmp/aegis-yaml-deep-XXXXXX";
	assert_non_null(mkdtemp(root));
	char p[1024];
	size_t n = (size_t)snprintf(p, sizeof(p), "%s", root);
	for (int i = 0; i <= AEGIS_CONFIG_MAX_DEPTH; i++) {
		n += (size_t)snprintf(p + n, sizeof(p) - n, "/d");
		assert_int_equal(mkdir(p, 0755), 0);
	}
	const char *paths[] = {root};
	struct aegis_config *c = NULL;
	struct aegis_diag d;
	assert_int_equal(aegis_yaml_load_paths(paths, 1, &c, &d), AEGIS_ELIMIT);
	assert_non_null(strstr(d.msg, "directories nested deeper than 64 levels"));
	assert_null(c);
	rm_tree(root);

	/* A symlink loop ends too (the kernel's ELOOP or our depth limit, whichever comes first). */
	assert_non_null(mkdtemp(copy_str(root, sizeof(root), "/tmp/aegis-yaml-loop-XXXXXX")));
	snprintf(p, sizeof(p), "%s/self", root);
	assert_int_equal(symlink(".", p), 0);
	int rc = aegis_yaml_load_paths(paths, 1, &c, &d);
	assert_true(rc == AEGIS_ELIMIT || rc == AEGIS_EIO);
	assert_null(c);
	rm_tree(root);
}

int main(void)
{
	aegis_log_set_level(AEGIS_LOG_WARN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_example_mesh),
	        cmocka_unit_test(test_service_entry),
	        cmocka_unit_test(test_service_entry_defaults),
	        cmocka_unit_test(test_workload_entry),
	        cmocka_unit_test(test_service),
	        cmocka_unit_test(test_endpoint_slice),
	        cmocka_unit_test(test_virtual_service),
	        cmocka_unit_test(test_destination_rule),
	        cmocka_unit_test(test_list_and_multidoc),
	        cmocka_unit_test(test_api_versions),
	        cmocka_unit_test(test_quoted_scalars),
	        cmocka_unit_test(test_unknown_fields_ignored),
	        cmocka_unit_test(test_syntax_errors),
	        cmocka_unit_test(test_field_errors),
	        cmocka_unit_test(test_depth_limit),
	        cmocka_unit_test(test_aliases),
	        cmocka_unit_test(test_file_size_limit),
	        cmocka_unit_test(test_directory),
	        cmocka_unit_test(test_directory_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
