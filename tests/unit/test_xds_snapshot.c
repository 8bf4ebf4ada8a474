/* Tests xds/xds_snapshot.c through the decoder: a multi-cluster configuration encoded by aegis-xds's
 * conversion and decoded by the client must give back the Services (per cluster), their endpoints as
 * EndpointSlices, ServiceEntry VIPs, WorkloadEntry endpoints and DestinationRule subset clusters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xds_decode_int.h"
#include "xds_int.h"

static const struct aegis_cluster_info clusters[] = {
        {.name = "east", .network = "net-east", .locality = "us-east1/us-east1-a", .source = ""},
        {.name = "west", .network = "net-west", .locality = "us-west1/us-west1-b", .source = ""},
};

static const struct aegis_port http_port[] = {{.name = "http", .number = 9080, .protocol = "HTTP"}};

#define META(N, NS, CL)                                                                                      \
	{                                                                                                    \
		.name = (N), .namespace_ = (NS), .cluster = (CL), .source = "", .resource_version = ""       \
	}

static const struct aegis_k8s_service services[] = {
        {.meta = META("reviews", "default", "east"),
         .cluster_ips = (const char *const[]){"10.96.0.11"},
         .n_cluster_ips = 1,
         .ports = http_port,
         .n_ports = 1,
         .external_name = ""},
        {.meta = META("reviews", "default", "west"),
         .cluster_ips = (const char *const[]){"10.97.0.11"},
         .n_cluster_ips = 1,
         .ports = http_port,
         .n_ports = 1,
         .external_name = ""},
        {.meta = META("db", "shop", "east"),
         .headless = true,
         .ports = http_port,
         .n_ports = 1,
         .external_name = ""},
};

static const struct aegis_slice_endpoint east_eps[] = {
        {.addresses = (const char *const[]){"10.244.1.5"},
         .n_addresses = 1,
         .ready = true,
         .hostname = "",
         .node_name = "",
         .zone = ""},
        {.addresses = (const char *const[]){"10.244.1.6"},
         .n_addresses = 1,
         .ready = false,
         .terminating = true,
         .hostname = "",
         .node_name = "",
         .zone = ""},
};
static const struct aegis_slice_endpoint west_eps[] = {
        {.addresses = (const char *const[]){"10.245.1.5"},
         .n_addresses = 1,
         .ready = true,
         .hostname = "",
         .node_name = "",
         .zone = ""},
};
static const struct aegis_slice_endpoint db_eps[] = {
        {.addresses = (const char *const[]){"10.244.2.31"},
         .n_addresses = 1,
         .ready = true,
         .hostname = "db-0",
         .node_name = "",
         .zone = ""},
};
static const struct aegis_port slice_port[] = {{.name = "http", .number = 8080, .protocol = "TCP"}};

static const struct aegis_endpoint_slice slices[] = {
        {.meta = META("reviews-abc", "default", "east"),
         .service_name = "reviews",
         .address_type = "IPv4",
         .ports = slice_port,
         .n_ports = 1,
         .endpoints = east_eps,
         .n_endpoints = 2},
        {.meta = META("reviews-def", "default", "west"),
         .service_name = "reviews",
         .address_type = "IPv4",
         .ports = slice_port,
         .n_ports = 1,
         .endpoints = west_eps,
         .n_endpoints = 1},
        {.meta = META("db-xyz", "shop", "east"),
         .service_name = "db",
         .address_type = "IPv4",
         .ports = slice_port,
         .n_ports = 1,
         .endpoints = db_eps,
         .n_endpoints = 1},
};

static int fake_vip(void *ctx, const char *host, uint8_t v4[4], uint8_t v6[16])
{
	(void)ctx;
	memcpy(v4, (uint8_t[]){240, 240, 0, (uint8_t)strlen(host)}, 4);
	memset(v6, 0, 16);
	v6[0] = 0x20;
	v6[1] = 0x01;
	v6[3] = 0x02;
	v6[15] = (uint8_t)strlen(host);
	return 0;
}

static struct aegis_config *roundtrip(const struct aegis_config *in, struct aegis_xds_resource_set sets[])
{
	struct aegis_xds_encode_opts opts = {.cluster_domain = "cluster.local", .vip_get = fake_vip};
	struct aegis_diag d = {0};
	assert_int_equal(aegis_xds_encode_config(in, &opts, sets, &d), 0);
	struct aegis_xds_builder b;
	assert_int_equal(aegis_xds_builder_init(&b), 0);
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		for (size_t i = 0; i < sets[t].n; i++)
			if (aegis_xds_decode(&b, (enum aegis_xds_type)t, sets[t].items[i].name,
			                     sets[t].items[i].body, sets[t].items[i].len, &d))
				fail_msg("decode %s: %s", sets[t].items[i].name, d.msg);
	struct aegis_config *out;
	assert_int_equal(aegis_xds_builder_finish(&b, &out), 0);
	return out;
}

static void test_k8s_multicluster(void **state)
{
	struct aegis_config in = {0};
	in.clusters = clusters;
	in.n_clusters = 2;
	in.services = services;
	in.n_services = 3;
	in.endpoint_slices = slices;
	in.n_endpoint_slices = 3;
	struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES];
	memset(sets, 0, sizeof(sets));
	struct aegis_config *out = roundtrip(&in, sets);
	assert_non_null(aegis_xds_resource_find(&sets[AEGIS_XDS_SE], "Service/default/reviews/east"));
	assert_non_null(aegis_xds_resource_find(&sets[AEGIS_XDS_CLA],
	                                        "outbound|9080||reviews.default.svc.cluster.local"));
	assert_int_equal(out->n_service_entries, 0);
	assert_int_equal(out->n_services, 3);
	const struct aegis_k8s_service *rev_east = NULL, *db = NULL;
	for (size_t i = 0; i < out->n_services; i++) {
		if (strcmp(out->services[i].meta.name, "reviews") == 0 &&
		    strcmp(out->services[i].meta.cluster, "east") == 0)
			rev_east = &out->services[i];
		if (strcmp(out->services[i].meta.name, "db") == 0)
			db = &out->services[i];
	}
	if (rev_east == NULL || db == NULL) {
		fail_msg("services missing");
		return;
	}
	assert_string_equal(rev_east->meta.namespace_, "default");
	assert_string_equal(rev_east->cluster_ips[0], "10.96.0.11");
	assert_false(rev_east->headless);
	assert_non_null(db);
	assert_true(db->headless);
	/* One slice per (Service, cluster): endpoints of the merged CLA are split back by cluster. */
	assert_int_equal(out->n_endpoint_slices, 3);
	for (size_t i = 0; i < out->n_endpoint_slices; i++) {
		const struct aegis_endpoint_slice *s = &out->endpoint_slices[i];
		if (strcmp(s->service_name, "reviews") == 0 && strcmp(s->meta.cluster, "east") == 0) {
			assert_int_equal(s->n_endpoints, 2);
			assert_string_equal(s->endpoints[0].addresses[0], "10.244.1.5");
			assert_true(s->endpoints[0].ready);
			assert_false(s->endpoints[1].ready);
			assert_true(s->endpoints[1].terminating);
			assert_int_equal(s->ports[0].number, 8080);
			assert_string_equal(s->ports[0].name, "http");
		} else if (strcmp(s->service_name, "reviews") == 0) {
			assert_string_equal(s->meta.cluster, "west");
			assert_int_equal(s->n_endpoints, 1);
			assert_string_equal(s->endpoints[0].addresses[0], "10.245.1.5");
		} else {
			assert_string_equal(s->service_name, "db");
			assert_string_equal(s->endpoints[0].hostname, "db-0");
		}
	}
	/* <svc>.<cluster>.global goes out in the NameTable. */
	bool global = false;
	for (size_t i = 0; i < out->n_name_table; i++)
		global |= strcmp(out->name_table[i].host, "reviews.west.global") == 0 &&
		          strcmp(out->name_table[i].ips[0], "10.97.0.11") == 0;
	assert_true(global);
	aegis_config_free(out);
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		aegis_xds_resource_set_free(&sets[t]);
}

static void test_service_entries_vips_workloads_subsets(void **state)
{
	static const struct aegis_port se_ports[] = {
	        {.name = "http", .number = 80, .protocol = "HTTP", .target_port = 0}};
	static const struct aegis_kv sel[] = {{"app", "legacy"}};
	static const struct aegis_kv v1[] = {{"app", "legacy"}, {"version", "v1"}};
	static const struct aegis_kv v2[] = {{"app", "legacy"}, {"version", "v2"}};
	static const struct aegis_port_ref we_port[] = {{.name = "http", .number = 8080}};
	struct aegis_service_entry ses[] = {
	        {.meta = META("multi", "default", ""),
	         .hosts = (const char *const[]){"a.example.com", "b.example.com"},
	         .n_hosts = 2,
	         .ports = se_ports,
	         .n_ports = 1,
	         .resolution = AEGIS_SE_RES_DNS},
	        {.meta = META("legacy", "default", "east"),
	         .hosts = (const char *const[]){"legacy.internal"},
	         .n_hosts = 1,
	         .addresses = (const char *const[]){"192.0.2.10"},
	         .n_addresses = 1,
	         .ports = se_ports,
	         .n_ports = 1,
	         .location = AEGIS_SE_MESH_INTERNAL,
	         .resolution = AEGIS_SE_RES_STATIC,
	         .workload_selector = {.items = sel, .n = 1}},
	};
	struct aegis_workload_entry wes[] = {
	        {.meta = META("vm1", "default", "east"),
	         .spec = {.address = "10.0.0.1",
	                  .ports = we_port,
	                  .n_ports = 1,
	                  .labels = {.items = v1, .n = 2},
	                  .network = "net-east",
	                  .locality = "us-east1/a",
	                  .service_account = "",
	                  .hostname = "",
	                  .node_name = "",
	                  .zone = "",
	                  .target_pod = ""}},
	        {.meta = META("vm2", "default", "east"),
	         .spec = {.address = "10.0.0.2",
	                  .ports = we_port,
	                  .n_ports = 1,
	                  .labels = {.items = v2, .n = 2},
	                  .network = "net-east",
	                  .locality = "us-east1/b",
	                  .service_account = "",
	                  .hostname = "",
	                  .node_name = "",
	                  .zone = "",
	                  .target_pod = ""}},
	};
	static const struct aegis_subset subsets[] = {{.name = "v1", .labels = {.items = v1 + 1, .n = 1}},
	                                              {.name = "v2", .labels = {.items = v2 + 1, .n = 1}}};
	struct aegis_destination_rule drs[] = {{.meta = META("legacy", "default", ""),
	                                        .host = "legacy.internal",
	                                        .subsets = subsets,
	                                        .n_subsets = 2,
	                                        .policy = {.sni = ""}}};
	struct aegis_config in = {0};
	in.service_entries = ses;
	in.n_service_entries = 2;
	in.workload_entries = wes;
	in.n_workload_entries = 2;
	in.destination_rules = drs;
	in.n_destination_rules = 1;
	struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES];
	memset(sets, 0, sizeof(sets));
	struct aegis_config *out = roundtrip(&in, sets);
	/* A multi-host entry without addresses is split per host, each with its own VIP pair. */
	assert_non_null(aegis_xds_resource_find(&sets[AEGIS_XDS_SE], "default/multi/a.example.com"));
	assert_non_null(aegis_xds_resource_find(&sets[AEGIS_XDS_SE], "default/multi/b.example.com"));
	assert_non_null(aegis_xds_resource_find(&sets[AEGIS_XDS_CLA], "outbound|80|v1|legacy.internal"));
	assert_int_equal(out->n_service_entries, 3);
	for (size_t i = 0; i < out->n_service_entries; i++) {
		const struct aegis_service_entry *se = &out->service_entries[i];
		if (strcmp(se->hosts[0], "a.example.com") == 0) {
			assert_int_equal(se->n_addresses, 2);
			assert_string_equal(se->addresses[0], "240.240.0.13");
		} else if (strcmp(se->hosts[0], "legacy.internal") == 0) {
			/* WorkloadEntries selected by the entry come back as its endpoints, with locality. */
			assert_int_equal(se->n_endpoints, 2);
			assert_string_equal(se->endpoints[0].address, "10.0.0.1");
			assert_int_equal(se->endpoints[0].ports[0].number, 8080);
			assert_string_equal(se->endpoints[0].ports[0].name, "http");
			assert_string_equal(se->endpoints[1].locality, "us-east1/b");
			assert_string_equal(se->endpoints[0].network, "net-east");
		}
	}
	aegis_config_free(out);
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		aegis_xds_resource_set_free(&sets[t]);
}

/* Equal content gives equal versions (so unchanged resources are not pushed again). */
static void test_versions_are_content_hashes(void **state)
{
	struct aegis_config in = {0};
	in.clusters = clusters;
	in.n_clusters = 2;
	in.services = services;
	in.n_services = 3;
	struct aegis_xds_resource_set a[AEGIS_XDS_NTYPES], b[AEGIS_XDS_NTYPES];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	struct aegis_diag d = {0};
	assert_int_equal(aegis_xds_encode_config(&in, NULL, a, &d), 0);
	in.n_services = 2; /* drop db */
	assert_int_equal(aegis_xds_encode_config(&in, NULL, b, &d), 0);
	assert_int_equal(a[AEGIS_XDS_SE].n, 3);
	assert_int_equal(b[AEGIS_XDS_SE].n, 2);
	const struct aegis_xds_resource *ra =
	        aegis_xds_resource_find(&a[AEGIS_XDS_SE], "Service/default/reviews/east");
	const struct aegis_xds_resource *rb =
	        aegis_xds_resource_find(&b[AEGIS_XDS_SE], "Service/default/reviews/east");
	assert_non_null(ra);
	assert_non_null(rb);
	assert_string_equal(ra->version, rb->version);
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++) {
		aegis_xds_resource_set_free(&a[t]);
		aegis_xds_resource_set_free(&b[t]);
	}
}

/* Subset routing over xDS needs the endpoints' labels, service accounts, weights and localities: an
 * EndpointSlice endpoint takes them from the WorkloadEntry of its pod (by targetRef name or address), the
 * Service's selector adds the WorkloadEntries it picks, and the decoder gives each Service endpoint back as
 * a WorkloadEntry (the join proxy/mesh_routes.c makes). Subset CLAs hold only the matching endpoints. */
static size_t cla_endpoints(const struct aegis_xds_resource_set *set, const char *name, const char **addr)
{
	const struct aegis_xds_resource *r = aegis_xds_resource_find(set, name);
	assert_non_null(r);
	struct aegis_xds_builder b;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_xds_builder_init(&b), 0);
	assert_int_equal(aegis_xds_decode(&b, AEGIS_XDS_CLA, r->name, r->body, r->len, &d), 0);
	assert_int_equal(b.n_cla, 1);
	size_t n = b.cla[0].n_eps;
	static char first[64];
	snprintf(first, sizeof(first), "%s", n ? b.cla[0].eps[0].address : "");
	*addr = first;
	aegis_xds_builder_abort(&b);
	return n;
}

static void test_k8s_endpoint_labels_and_identity(void **state)
{
	static const struct aegis_kv sel[] = {{"app", "reviews"}};
	static const struct aegis_kv v1[] = {{"app", "reviews"}, {"version", "v1"}};
	static const struct aegis_kv v2[] = {{"app", "reviews"}, {"version", "v2"}};
	static const struct aegis_port port[] = {
	        {.name = "http", .number = 9080, .protocol = "TCP", .target_port = 9080}};
	struct aegis_k8s_service svc[] = {{.meta = META("reviews", "default", "east"),
	                                   .cluster_ips = (const char *const[]){"10.96.0.11"},
	                                   .n_cluster_ips = 1,
	                                   .ports = port,
	                                   .n_ports = 1,
	                                   .selector = {.items = sel, .n = 1},
	                                   .external_name = ""}};
	const struct aegis_slice_endpoint eps[] = {{.addresses = (const char *const[]){"10.244.1.5"},
	                                            .n_addresses = 1,
	                                            .ready = true,
	                                            .hostname = "",
	                                            .node_name = "",
	                                            .zone = "us-east1-c",
	                                            .target_kind = "Pod",
	                                            .target_name = "reviews-v1-abc",
	                                            .target_namespace = "default"}};
	static const struct aegis_port sport[] = {{.name = "http", .number = 9080, .protocol = "TCP"}};
	struct aegis_endpoint_slice sl[] = {{.meta = META("reviews-x", "default", "east"),
	                                     .service_name = "reviews",
	                                     .address_type = "IPv4",
	                                     .ports = sport,
	                                     .n_ports = 1,
	                                     .endpoints = eps,
	                                     .n_endpoints = 1}};
	struct aegis_workload_entry wes[] = {
	        /* the pod behind the slice endpoint, found by its targetRef name */
	        {.meta = META("reviews-v1-abc", "default", "east"),
	         .spec = {.address = "10.244.1.5",
	                  .labels = {.items = v1, .n = 2},
	                  .network = "",
	                  .locality = "",
	                  .weight = 3,
	                  .service_account = "reviews",
	                  .hostname = "",
	                  .node_name = "",
	                  .zone = "",
	                  .target_pod = ""}},
	        /* a VM the Service's selector picks */
	        {.meta = META("reviews-v2-vm", "default", ""),
	         .spec = {.address = "10.0.0.9",
	                  .labels = {.items = v2, .n = 2},
	                  .network = "vm-net",
	                  .locality = "us-west1/b",
	                  .service_account = "reviews-v2",
	                  .hostname = "",
	                  .node_name = "",
	                  .zone = "",
	                  .target_pod = ""}},
	        /* another namespace: never joined */
	        {.meta = META("reviews-v1-abc", "other", "east"),
	         .spec = {.address = "10.244.1.5",
	                  .labels = {.items = v2, .n = 2},
	                  .network = "",
	                  .locality = "",
	                  .service_account = "intruder",
	                  .hostname = "",
	                  .node_name = "",
	                  .zone = "",
	                  .target_pod = ""}},
	};
	static const struct aegis_subset subsets[] = {{.name = "v1", .labels = {.items = v1 + 1, .n = 1}},
	                                              {.name = "v2", .labels = {.items = v2 + 1, .n = 1}}};
	struct aegis_destination_rule drs[] = {{.meta = META("reviews", "default", ""),
	                                        .host = "reviews.default.svc.cluster.local",
	                                        .subsets = subsets,
	                                        .n_subsets = 2,
	                                        .policy = {.sni = ""}}};
	struct aegis_config in = {0};
	in.clusters = clusters;
	in.n_clusters = 2;
	in.services = svc;
	in.n_services = 1;
	in.endpoint_slices = sl;
	in.n_endpoint_slices = 1;
	in.workload_entries = wes;
	in.n_workload_entries = 3;
	in.destination_rules = drs;
	in.n_destination_rules = 1;
	struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES];
	memset(sets, 0, sizeof(sets));
	struct aegis_config *out = roundtrip(&in, sets);

	const char *addr;
	assert_int_equal(cla_endpoints(&sets[AEGIS_XDS_CLA],
	                               "outbound|9080||reviews.default.svc.cluster.local", &addr),
	                 2);
	assert_int_equal(cla_endpoints(&sets[AEGIS_XDS_CLA],
	                               "outbound|9080|v1|reviews.default.svc.cluster.local", &addr),
	                 1);
	assert_string_equal(addr, "10.244.1.5");
	assert_int_equal(cla_endpoints(&sets[AEGIS_XDS_CLA],
	                               "outbound|9080|v2|reviews.default.svc.cluster.local", &addr),
	                 1);
	assert_string_equal(addr, "10.0.0.9");

	/* Both endpoints are in the Service's slice, and come back as WorkloadEntries of its namespace. */
	assert_int_equal(out->n_endpoint_slices, 1);
	assert_int_equal(out->endpoint_slices[0].n_endpoints, 2);
	assert_int_equal(out->n_workload_entries, 2);
	for (size_t i = 0; i < out->n_workload_entries; i++) {
		const struct aegis_workload_entry *we = &out->workload_entries[i];
		assert_string_equal(we->meta.namespace_, "default");
		const char *version = NULL;
		for (size_t k = 0; k < we->spec.labels.n; k++)
			if (strcmp(we->spec.labels.items[k].key, "version") == 0)
				version = we->spec.labels.items[k].value;
		assert_non_null(version);
		if (strcmp(we->spec.address, "10.244.1.5") == 0) {
			assert_string_equal(version, "v1");
			assert_string_equal(we->spec.service_account, "reviews");
			assert_int_equal(we->spec.weight, 3);
			/* the cluster's region, the endpoint's zone */
			assert_string_equal(we->spec.locality, "us-east1/us-east1-c");
			assert_string_equal(we->spec.network, "net-east");
			assert_int_equal(we->spec.health, AEGIS_HEALTH_HEALTHY);
		} else {
			assert_string_equal(we->spec.address, "10.0.0.9");
			assert_string_equal(version, "v2");
			assert_string_equal(we->spec.service_account, "reviews-v2");
			assert_string_equal(we->spec.locality, "us-west1/b");
			assert_string_equal(we->spec.network, "vm-net");
		}
	}
	aegis_config_free(out);
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		aegis_xds_resource_set_free(&sets[t]);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_k8s_multicluster),
	        cmocka_unit_test(test_service_entries_vips_workloads_subsets),
	        cmocka_unit_test(test_versions_are_content_hashes),
	        cmocka_unit_test(test_k8s_endpoint_labels_and_identity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
