/* Tests xds/xds_decode.c and xds/xds_encode.c against a second protobuf implementation: gen.py
 * (tests/unit/xds_compat) compiles the same .proto files with `protoc --python_out` and Debian's
 * python3-protobuf serializes sample messages that must decode to exactly the values below; the C
 * encoders' output must then parse in Python equal to the messages Python built. */
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

#include "xds_int.h"

static char dir[256];

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void spit(const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static int run_gen(const char *mode)
{
	const char *src = getenv("AEGIS_SRC_DIR") ? getenv("AEGIS_SRC_DIR") : AEGIS_SRC_DIR;
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/tests/unit/xds_compat/gen.py %s %s", src, mode, dir);
	return system(cmd);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/aegis-xds-compat-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return run_gen("") == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Decodes one fixture of type t into a finished config. */
static struct aegis_config *decode_one(enum aegis_xds_type t, const char *file, const char *name)
{
	size_t len;
	char *buf = slurp(file, &len);
	struct aegis_xds_builder b;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_xds_builder_init(&b), 0);
	int rc = aegis_xds_decode(&b, t, name, (const uint8_t *)buf, len, &d);
	if (rc)
		fail_msg("decode %s: %s", file, d.msg);
	struct aegis_config *cfg;
	assert_int_equal(aegis_xds_builder_finish(&b, &cfg), 0);
	free(buf);
	return cfg;
}

static void test_service_entry_wrapped(void **state)
{
	size_t len;
	char *buf = slurp("py_se_wrapped.bin", &len);
	char name[256];
	const uint8_t *body;
	size_t blen;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_xds_unwrap(AEGIS_XDS_URL_RESOURCE, (const uint8_t *)buf, len, AEGIS_XDS_URL_SE,
	                                  name, sizeof(name), &body, &blen, &d),
	                 0);
	assert_string_equal(name, "ns1/se1");
	/* A Resource wrapper of the wrong type is a protocol error. */
	assert_int_equal(aegis_xds_unwrap(AEGIS_XDS_URL_RESOURCE, (const uint8_t *)buf, len, AEGIS_XDS_URL_VS,
	                                  name, sizeof(name), &body, &blen, &d),
	                 AEGIS_EPROTO);
	struct aegis_xds_builder b;
	assert_int_equal(aegis_xds_builder_init(&b), 0);
	assert_int_equal(aegis_xds_decode(&b, AEGIS_XDS_SE, "ns1/se1", body, blen, &d), 0);
	struct aegis_config *cfg;
	assert_int_equal(aegis_xds_builder_finish(&b, &cfg), 0);
	assert_int_equal(cfg->n_service_entries, 1);
	const struct aegis_service_entry *se = &cfg->service_entries[0];
	assert_string_equal(se->meta.namespace_, "ns1");
	assert_string_equal(se->meta.name, "se1");
	assert_string_equal(se->meta.source, AEGIS_XDS_URL_SE);
	assert_int_equal(se->n_hosts, 2);
	assert_string_equal(se->hosts[0], "api.example.com");
	assert_string_equal(se->hosts[1], "*.wild.example.com");
	assert_int_equal(se->n_addresses, 2);
	assert_string_equal(se->addresses[1], "2001:db8::/64");
	assert_int_equal(se->n_ports, 2);
	assert_int_equal(se->ports[0].number, 80);
	assert_string_equal(se->ports[0].protocol, "HTTP");
	assert_string_equal(se->ports[0].name, "http");
	assert_int_equal(se->ports[0].target_port, 8080);
	assert_int_equal(se->ports[1].target_port, 0);
	assert_int_equal(se->location, AEGIS_SE_MESH_INTERNAL);
	assert_int_equal(se->resolution, AEGIS_SE_RES_DNS);
	assert_int_equal(se->n_endpoints, 2);
	const struct aegis_workload *w = &se->endpoints[0];
	assert_string_equal(w->address, "1.2.3.4");
	assert_int_equal(w->n_ports, 1);
	assert_string_equal(w->ports[0].name, "http");
	assert_int_equal(w->ports[0].number, 9080);
	assert_int_equal(w->labels.n, 1);
	assert_string_equal(w->labels.items[0].key, "app");
	assert_string_equal(w->labels.items[0].value, "api");
	assert_string_equal(w->network, "net1");
	assert_string_equal(w->locality, "us-east/zone1/a");
	assert_int_equal(w->weight, 7);
	assert_string_equal(w->service_account, "sa1");
	assert_string_equal(se->endpoints[1].address, "backend.example.com");
	assert_int_equal(se->workload_selector.n, 1);
	assert_int_equal(se->n_export_to, 1);
	assert_string_equal(se->subject_alt_names[0], "spiffe://cluster.local/ns/a/sa/b");

	/* C -> Python: the encoder's bytes for the decoded entry. */
	uint8_t *out;
	size_t olen;
	assert_int_equal(aegis_xds_encode_se(se, &out, &olen), 0);
	spit("c_se.bin", out, olen);
	free(out);
	aegis_config_free(cfg);
	free(buf);
}

static void test_virtual_service(void **state)
{
	struct aegis_config *cfg = decode_one(AEGIS_XDS_VS, "py_vs.bin", "default/reviews");
	assert_int_equal(cfg->n_virtual_services, 1);
	const struct aegis_virtual_service *vs = &cfg->virtual_services[0];
	assert_string_equal(vs->meta.name, "reviews");
	assert_int_equal(vs->n_hosts, 1);
	assert_string_equal(vs->gateways[0], "mesh");
	assert_int_equal(vs->n_routes, 3);
	const struct aegis_route *r = &vs->routes[0];
	assert_int_equal(r->kind, AEGIS_ROUTE_HTTP);
	assert_string_equal(r->name, "split");
	assert_int_equal(r->timeout_ms, 1500);
	assert_int_equal(r->retries, 3);
	assert_int_equal(r->n_matches, 1);
	assert_int_equal(r->matches[0].port, 9080);
	assert_true(r->matches[0].has_l7);
	assert_string_equal(r->matches[0].source_namespace, "front");
	assert_string_equal(r->matches[0].source_labels.items[0].value, "web");
	assert_int_equal(r->n_dests, 2);
	assert_string_equal(r->dests[0].subset, "v1");
	assert_int_equal(r->dests[0].weight, 90);
	assert_int_equal(r->dests[1].weight, 10);
	assert_int_equal(r->dests[1].port, 9080);
	r = &vs->routes[1];
	assert_int_equal(r->kind, AEGIS_ROUTE_TCP);
	assert_int_equal(r->matches[0].port, 27017);
	assert_string_equal(r->matches[0].destination_subnets[0], "10.0.0.0/8");
	assert_int_equal(r->dests[0].weight, -1); /* proto3 0 on a lone destination: unset */
	r = &vs->routes[2];
	assert_int_equal(r->kind, AEGIS_ROUTE_TLS);
	assert_string_equal(r->matches[0].sni_hosts[0], "login.example.com");
	assert_int_equal(r->matches[0].port, 443);
	assert_int_equal(r->dests[0].weight, 100);
	uint8_t *out;
	size_t olen;
	assert_int_equal(aegis_xds_encode_vs(vs, &out, &olen), 0);
	spit("c_vs.bin", out, olen);
	free(out);
	aegis_config_free(cfg);
}

static void test_destination_rule(void **state)
{
	struct aegis_config *cfg = decode_one(AEGIS_XDS_DR, "py_dr.bin", "default/reviews");
	const struct aegis_destination_rule *dr = &cfg->destination_rules[0];
	assert_string_equal(dr->host, "reviews.default.svc.cluster.local");
	assert_true(dr->policy.present);
	assert_int_equal(dr->policy.tls_mode, AEGIS_TLS_ISTIO_MUTUAL);
	assert_string_equal(dr->policy.sni, "reviews.example");
	assert_int_equal(dr->policy.n_tls_subject_alt_names, 1);
	assert_int_equal(dr->policy.lb, AEGIS_LB_ROUND_ROBIN);
	assert_true(dr->policy.locality_lb_enabled);
	assert_int_equal(dr->policy.n_failover, 1);
	assert_string_equal(dr->policy.failover[0].from, "us-east");
	assert_string_equal(dr->policy.failover[0].to, "eu-west");
	assert_string_equal(dr->policy.failover_priority[0], "topology.istio.io/network");
	assert_int_equal(dr->policy.connect_timeout_ms, 250);
	assert_int_equal(dr->policy.max_connections, 100);
	assert_int_equal(dr->policy.outlier_consecutive_errors, 7);
	assert_int_equal(dr->policy.outlier_interval_ms, 300000);
	assert_int_equal(dr->policy.outlier_base_ejection_ms, 900000);
	assert_int_equal(dr->policy.outlier_max_ejection_percent, 50);
	assert_int_equal(dr->n_subsets, 2);
	assert_string_equal(dr->subsets[1].name, "v2");
	assert_string_equal(dr->subsets[1].labels.items[0].value, "v2");
	assert_false(dr->subsets[0].policy.present);
	assert_int_equal(dr->subsets[1].policy.lb, AEGIS_LB_LEAST_REQUEST);
	uint8_t *out;
	size_t olen;
	assert_int_equal(aegis_xds_encode_dr(dr, &out, &olen), 0);
	spit("c_dr.bin", out, olen);
	free(out);
	aegis_config_free(cfg);
}

static void test_cluster_load_assignment(void **state)
{
	const char *cn = "outbound|9080||reviews.default.svc.cluster.local";
	struct aegis_config *cfg = decode_one(AEGIS_XDS_CLA, "py_cla.bin", cn);
	/* No ServiceEntry has the host: the endpoints get one of their own. */
	assert_int_equal(cfg->n_service_entries, 1);
	const struct aegis_service_entry *se = &cfg->service_entries[0];
	assert_string_equal(se->hosts[0], "reviews.default.svc.cluster.local");
	assert_string_equal(se->meta.source, AEGIS_XDS_URL_CLA);
	assert_int_equal(se->location, AEGIS_SE_MESH_INTERNAL);
	assert_int_equal(se->n_ports, 1);
	assert_int_equal(se->ports[0].number, 9080);
	assert_int_equal(se->n_endpoints, 3);
	const struct aegis_workload *w = se->endpoints;
	assert_string_equal(w[0].address, "10.1.0.1");
	assert_int_equal(w[0].ports[0].number, 9080);
	assert_string_equal(w[0].locality, "us-east/zone1/a");
	assert_int_equal(w[0].health, AEGIS_HEALTH_HEALTHY);
	assert_int_equal(w[0].weight, 3);
	assert_string_equal(w[0].network, "net1");
	assert_string_equal(w[0].hostname, "reviews-0");
	assert_int_equal(w[0].labels.n, 1);
	assert_string_equal(w[0].labels.items[0].key, "version");
	assert_string_equal(w[0].service_account, "reviews");
	assert_string_equal(w[1].service_account, "");
	assert_int_equal(w[1].health, AEGIS_HEALTH_DRAINING);
	assert_int_equal(w[1].weight, 0);
	assert_string_equal(w[2].address, "fd00::2");
	assert_int_equal(w[2].ports[0].number, 9081);
	assert_string_equal(w[2].locality, "eu-west");
	assert_int_equal(w[2].health, AEGIS_HEALTH_UNHEALTHY);
	uint8_t *out;
	size_t olen;
	assert_int_equal(aegis_xds_encode_cla(cn, se->endpoints, se->n_endpoints, 9080, &out, &olen), 0);
	spit("c_cla.bin", out, olen);
	free(out);
	aegis_config_free(cfg);
}

/* A Kubernetes Service's endpoints come back as EndpointSlice endpoints and, carrying what their
 * LbEndpoints said (labels, service account, locality, weight, health), as WorkloadEntries of the
 * Service's namespace: what proxy/mesh_routes.c joins for subsets and identities. */
static void test_service_endpoints_become_workload_entries(void **state)
{
	static const struct aegis_port port[] = {{.name = "http", .number = 9080, .protocol = "TCP"}};
	static const struct aegis_kv v1[] = {{"app", "reviews"}, {"version", "v1"}};
	struct aegis_service_entry svc = {.meta = {.name = "reviews",
	                                           .namespace_ = "default",
	                                           .cluster = "east",
	                                           .source = "",
	                                           .resource_version = ""},
	                                  .hosts = (const char *const[]){"reviews.default.svc.cluster.local"},
	                                  .n_hosts = 1,
	                                  .addresses = (const char *const[]){"10.96.0.11"},
	                                  .n_addresses = 1,
	                                  .ports = port,
	                                  .n_ports = 1,
	                                  .location = AEGIS_SE_MESH_INTERNAL,
	                                  .resolution = AEGIS_SE_RES_STATIC};
	static const struct aegis_port_ref pr[] = {{.name = "http", .number = 9080}};
	struct aegis_workload eps[] = {
	        {.address = "10.244.1.5",
	         .ports = pr,
	         .n_ports = 1,
	         .labels = {.items = v1, .n = 2},
	         .network = "n1",
	         .locality = "r1/z1",
	         .weight = 4,
	         .service_account = "reviews",
	         .health = AEGIS_HEALTH_HEALTHY,
	         .hostname = "",
	         .node_name = "",
	         .zone = "",
	         .target_pod = ""},
	        {.address = "10.244.1.6",
	         .ports = pr,
	         .n_ports = 1,
	         .network = "",
	         .locality = "r1/z2",
	         .service_account = "",
	         .health = AEGIS_HEALTH_DRAINING,
	         .hostname = "",
	         .node_name = "",
	         .zone = "",
	         .target_pod = ""},
	};
	const char *cl[] = {"east", "east"};
	uint8_t *se_bin, *cla_bin;
	size_t se_len, cla_len;
	const char *cn = "outbound|9080||reviews.default.svc.cluster.local";
	assert_int_equal(aegis_xds_encode_se(&svc, &se_bin, &se_len), 0);
	assert_int_equal(aegis_xds_encode_cla_clusters(cn, eps, cl, 2, 9080, &cla_bin, &cla_len), 0);
	struct aegis_xds_builder b;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_xds_builder_init(&b), 0);
	assert_int_equal(
	        aegis_xds_decode(&b, AEGIS_XDS_SE, "Service/default/reviews/east", se_bin, se_len, &d), 0);
	assert_int_equal(aegis_xds_decode(&b, AEGIS_XDS_CLA, cn, cla_bin, cla_len, &d), 0);
	struct aegis_config *cfg;
	assert_int_equal(aegis_xds_builder_finish(&b, &cfg), 0);
	assert_int_equal(cfg->n_services, 1);
	assert_int_equal(cfg->n_endpoint_slices, 1);
	assert_int_equal(cfg->endpoint_slices[0].n_endpoints, 2);
	assert_true(cfg->endpoint_slices[0].endpoints[1].terminating);
	assert_int_equal(cfg->n_workload_entries, 2);
	const struct aegis_workload_entry *we = &cfg->workload_entries[0];
	assert_string_equal(we->meta.namespace_, "default");
	assert_string_equal(we->meta.name, "reviews/10.244.1.5");
	assert_string_equal(we->meta.source, AEGIS_XDS_URL_CLA);
	assert_string_equal(we->spec.address, "10.244.1.5");
	assert_int_equal(we->spec.labels.n, 2);
	assert_string_equal(we->spec.labels.items[1].value, "v1");
	assert_string_equal(we->spec.service_account, "reviews");
	assert_string_equal(we->spec.locality, "r1/z1");
	assert_string_equal(we->spec.network, "n1");
	assert_int_equal(we->spec.weight, 4);
	assert_int_equal(we->spec.health, AEGIS_HEALTH_HEALTHY);
	assert_int_equal(cfg->workload_entries[1].spec.health, AEGIS_HEALTH_DRAINING);
	assert_string_equal(cfg->workload_entries[1].spec.locality, "r1/z2");
	aegis_config_free(cfg);
	free(se_bin);
	free(cla_bin);
	(void)state;
}

/* CLA endpoints join the ServiceEntry that names the host, port names taken from its ports. */
static void test_cla_attaches_to_service_entry(void **state)
{
	struct aegis_service_entry se = {
	        .meta = {.name = "reviews", .namespace_ = "default"},
	        .hosts = (const char *const[]){"reviews.default.svc.cluster.local"},
	        .n_hosts = 1,
	        .ports = (const struct aegis_port[]){{.name = "http", .number = 9080, .protocol = "HTTP"}},
	        .n_ports = 1,
	        .location = AEGIS_SE_MESH_INTERNAL,
	};
	uint8_t *sebuf;
	size_t selen, clalen;
	assert_int_equal(aegis_xds_encode_se(&se, &sebuf, &selen), 0);
	char *clabuf = slurp("py_cla.bin", &clalen);
	struct aegis_xds_builder b;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_xds_builder_init(&b), 0);
	assert_int_equal(aegis_xds_decode(&b, AEGIS_XDS_CLA, "", (const uint8_t *)clabuf, clalen, &d), 0);
	assert_int_equal(aegis_xds_decode(&b, AEGIS_XDS_SE, "default/reviews", sebuf, selen, &d), 0);
	struct aegis_config *cfg;
	assert_int_equal(aegis_xds_builder_finish(&b, &cfg), 0);
	assert_int_equal(cfg->n_service_entries, 1);
	assert_int_equal(cfg->service_entries[0].n_endpoints, 3);
	assert_string_equal(cfg->service_entries[0].endpoints[0].ports[0].name, "http");
	aegis_config_free(cfg);
	free(sebuf);
	free(clabuf);
}

static void test_name_table(void **state)
{
	struct aegis_config *cfg = decode_one(AEGIS_XDS_NDS, "py_nt.bin", "");
	assert_int_equal(cfg->n_name_table, 1);
	const struct aegis_name_info *ni = &cfg->name_table[0];
	assert_string_equal(ni->host, "reviews.default.svc.cluster.local");
	assert_int_equal(ni->n_ips, 2);
	assert_string_equal(ni->ips[1], "fd00::10");
	assert_string_equal(ni->registry, "Kubernetes");
	assert_string_equal(ni->shortname, "reviews");
	assert_string_equal(ni->namespace_, "default");
	uint8_t *out;
	size_t olen;
	assert_int_equal(aegis_xds_encode_name_table(cfg->name_table, cfg->n_name_table, &out, &olen), 0);
	spit("c_nt.bin", out, olen);
	free(out);
	aegis_config_free(cfg);
}

static void expect_reject(enum aegis_xds_type t, const char *file, const char *reason)
{
	size_t len;
	char *buf = slurp(file, &len);
	struct aegis_xds_builder b;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_xds_builder_init(&b), 0);
	assert_true(aegis_xds_decode(&b, t, t == AEGIS_XDS_CLA ? "" : "ns/bad", (const uint8_t *)buf, len,
	                             &d) < 0);
	if (strstr(d.msg, reason) == NULL)
		fail_msg("%s: diag \"%s\" lacks \"%s\"", file, d.msg, reason);
	aegis_xds_builder_abort(&b);
	free(buf);
}

static void test_invalid_resources(void **state)
{
	expect_reject(AEGIS_XDS_SE, "py_bad_hosts.bin", "no hosts");
	expect_reject(AEGIS_XDS_SE, "py_bad_ip.bin", "bad address \"999.1.1.1\"");
	expect_reject(AEGIS_XDS_SE, "py_bad_port.bin", "port 70000 out of range");
	expect_reject(AEGIS_XDS_CLA, "py_bad_cla.bin", "bad IP \"not-an-ip\"");
	/* Garbage bytes are a parse error, not a crash. */
	struct aegis_xds_builder b;
	struct aegis_diag d = {0};
	const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
	assert_int_equal(aegis_xds_builder_init(&b), 0);
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		assert_int_equal(aegis_xds_decode(&b, (enum aegis_xds_type)t, "x", junk, sizeof(junk), &d),
		                 AEGIS_EPARSE);
	aegis_xds_builder_abort(&b);
}

static void test_cluster_names(void **state)
{
	char buf[256];
	const char *subset, *host;
	uint32_t port;
	assert_int_equal(
	        aegis_xds_parse_cluster_name("outbound|80|v1|a.b", &port, buf, sizeof(buf), &subset, &host),
	        0);
	assert_int_equal(port, 80);
	assert_string_equal(subset, "v1");
	assert_string_equal(host, "a.b");
	assert_int_equal(
	        aegis_xds_parse_cluster_name("outbound|443||a.b", &port, buf, sizeof(buf), &subset, &host),
	        0);
	assert_string_equal(subset, "");
	assert_int_not_equal(
	        aegis_xds_parse_cluster_name("inbound|80||a", &port, buf, sizeof(buf), &subset, &host), 0);
	assert_int_not_equal(
	        aegis_xds_parse_cluster_name("outbound|0||a", &port, buf, sizeof(buf), &subset, &host), 0);
	assert_int_not_equal(
	        aegis_xds_parse_cluster_name("outbound|70000||a", &port, buf, sizeof(buf), &subset, &host),
	        0);
	assert_int_not_equal(
	        aegis_xds_parse_cluster_name("outbound|80|a", &port, buf, sizeof(buf), &subset, &host), 0);
	assert_int_equal(aegis_xds_type_from_url(AEGIS_XDS_URL_CLA), AEGIS_XDS_CLA);
	assert_int_equal(aegis_xds_type_from_url("type.googleapis.com/x"), -1);
}

/* Must run after the tests that wrote c_*.bin. */
static void test_python_parses_c_output(void **state)
{
	assert_int_equal(run_gen("--check"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_service_entry_wrapped),
	        cmocka_unit_test(test_virtual_service),
	        cmocka_unit_test(test_destination_rule),
	        cmocka_unit_test(test_cluster_load_assignment),
	        cmocka_unit_test(test_cla_attaches_to_service_entry),
	        cmocka_unit_test(test_service_endpoints_become_workload_entries),
	        cmocka_unit_test(test_name_table),
	        cmocka_unit_test(test_invalid_resources),
	        cmocka_unit_test(test_cluster_names),
	        cmocka_unit_test(test_python_parses_c_output),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
