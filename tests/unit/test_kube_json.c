/* Tests xds/kube_json.c: Kubernetes API JSON goes through the YAML loader's own mapping (the same model
 * as the equivalent YAML, field for field), list items without apiVersion/kind, Pods as WorkloadEntries
 * (labels, service account, network; host-network and finished pods skipped), a rejected object leaving
 * the loader usable, and the tree conversion's limits (NUL in a string, depth). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aegis/limits.h"
#include "aegis/log.h"
#include "aegis/resource_yaml.h"
#include "kube_json.h"

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (j == NULL)
		print_error("bad test JSON: %s\n", e.text);
	assert_non_null(j);
	return j;
}

/* Maps one JSON object of kind res into a fresh config; expect_rc is the mapping's result. */
static struct aegis_config *map1(enum aegis_kres res, const char *js, const char *network, int expect_rc,
                                 struct aegis_diag *diag)
{
	struct aegis_config *cfg = aegis_config_new();
	assert_non_null(cfg);
	struct aegis_yaml_loader l;
	aegis_kjson_begin(&l, cfg, "c1", diag);
	json_t *j = parse(js);
	int rc = aegis_kjson_map(&l, res, j, "kube:c1", network);
	json_decref(j);
	assert_int_equal(rc, expect_rc);
	return cfg;
}

static const char se_json[] =
        "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\","
        "\"metadata\":{\"name\":\"ext\",\"namespace\":\"shop\",\"resourceVersion\":\"42\",\"labels\":{\"a\":"
        "\"b\"},"
        "\"managedFields\":[{\"manager\":\"kubectl\"}]},"
        "\"spec\":{\"hosts\":[\"API.Example.com\"],\"addresses\":[\"192.0.2.1\"],\"location\":\"MESH_"
        "INTERNAL\","
        "\"resolution\":\"STATIC\",\"ports\":[{\"name\":\"http\",\"number\":80,\"protocol\":\"HTTP\","
        "\"targetPort\":8080}],"
        "\"endpoints\":[{\"address\":\"10.0.0.1\",\"ports\":{\"http\":8081},\"labels\":{\"v\":\"1\"},"
        "\"weight\":3,"
        "\"network\":\"n1\",\"locality\":\"r/z\",\"serviceAccount\":\"sa1\"}],\"exportTo\":[\".\"]}}";

static const char se_yaml[] =
        "apiVersion: networking.istio.io/v1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: ext, namespace: shop, resourceVersion: \"42\", labels: {a: b}}\n"
        "spec:\n"
        "  hosts: [API.Example.com]\n"
        "  addresses: [192.0.2.1]\n"
        "  location: MESH_INTERNAL\n"
        "  resolution: STATIC\n"
        "  ports: [{name: http, number: 80, protocol: HTTP, targetPort: 8080}]\n"
        "  endpoints:\n"
        "  - {address: 10.0.0.1, ports: {http: 8081}, labels: {v: \"1\"}, weight: 3,\n"
        "     network: n1, locality: r/z, serviceAccount: sa1}\n"
        "  exportTo: [\".\"]\n";

/* The JSON path gives exactly what the YAML loader gives for the same object. */
static void test_same_model_as_yaml(void **state)
{
	(void)state;
	struct aegis_diag d;
	struct aegis_config *j = map1(AEGIS_KRES_SE, se_json, NULL, 0, &d);
	struct aegis_config *y = NULL;
	assert_int_equal(aegis_yaml_load_buffer("se.yaml", se_yaml, strlen(se_yaml), &y, &d), 0);
	assert_int_equal(j->n_service_entries, 1);
	assert_int_equal(y->n_service_entries, 1);
	const struct aegis_service_entry *a = &j->service_entries[0], *b = &y->service_entries[0];
	assert_string_equal(a->meta.name, b->meta.name);
	assert_string_equal(a->meta.namespace_, b->meta.namespace_);
	assert_string_equal(a->meta.resource_version, "42");
	assert_string_equal(a->meta.cluster, "c1");
	assert_string_equal(a->meta.source, "kube:c1");
	assert_int_equal(a->meta.labels.n, b->meta.labels.n);
	assert_int_equal(a->n_hosts, 1);
	assert_string_equal(a->hosts[0], "api.example.com"); /* lower-cased by the shared check */
	assert_string_equal(a->hosts[0], b->hosts[0]);
	assert_string_equal(a->addresses[0], b->addresses[0]);
	assert_int_equal(a->location, b->location);
	assert_int_equal(a->resolution, AEGIS_SE_RES_STATIC);
	assert_int_equal(a->n_ports, 1);
	assert_int_equal(a->ports[0].number, 80);
	assert_int_equal(a->ports[0].target_port, 8080);
	assert_string_equal(a->ports[0].protocol, b->ports[0].protocol);
	assert_int_equal(a->n_endpoints, 1);
	const struct aegis_workload *wa = &a->endpoints[0], *wb = &b->endpoints[0];
	assert_string_equal(wa->address, wb->address);
	assert_int_equal(wa->n_ports, 1);
	assert_int_equal(wa->ports[0].number, 8081);
	assert_int_equal(wa->weight, 3);
	assert_string_equal(wa->labels.items[0].value, "1");
	assert_string_equal(wa->network, wb->network);
	assert_string_equal(wa->locality, wb->locality);
	assert_string_equal(wa->service_account, wb->service_account);
	assert_int_equal(a->n_export_to, 1);
	aegis_config_free(j);
	aegis_config_free(y);
}

/* List items of core kinds carry no apiVersion/kind: the watched collection supplies them. Numbers and
 * booleans arrive as JSON types and are read by the same typed helpers as YAML scalars. */
static void test_list_items_and_types(void **state)
{
	(void)state;
	struct aegis_diag d;
	struct aegis_config *c = map1(
	        AEGIS_KRES_SVC,
	        "{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\"},\"spec\":{\"clusterIP\":\"None\","
	        "\"ports\":[{\"name\":\"pg\",\"port\":5432,\"targetPort\":\"pgport\"}],"
	        "\"selector\":{\"app\":\"db\"}}}",
	        NULL, 0, &d);
	assert_int_equal(c->n_services, 1);
	assert_true(c->services[0].headless);
	assert_int_equal(c->services[0].ports[0].number, 5432);
	assert_int_equal(c->services[0].ports[0].target_port, 0); /* a named targetPort */
	assert_string_equal(c->services[0].selector.items[0].value, "db");
	aegis_config_free(c);

	c = map1(AEGIS_KRES_EPS,
	         "{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/"
	         "v1\",\"metadata\":{\"name\":\"db-x\","
	         "\"namespace\":\"shop\",\"labels\":{\"kubernetes.io/"
	         "service-name\":\"db\"}},\"addressType\":\"IPv4\","
	         "\"endpoints\":[{\"addresses\":[\"10.1.0.7\"],\"conditions\":{\"ready\":false,"
	         "\"terminating\":true},"
	         "\"hostname\":\"db-0\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"db-0\"}}],"
	         "\"ports\":[{\"name\":\"pg\",\"port\":5432,\"protocol\":\"TCP\"}]}",
	         NULL, 0, &d);
	assert_int_equal(c->n_endpoint_slices, 1);
	const struct aegis_endpoint_slice *s = &c->endpoint_slices[0];
	assert_string_equal(s->service_name, "db");
	assert_false(s->endpoints[0].ready);
	assert_false(s->endpoints[0].serving); /* follows ready when absent, as in YAML */
	assert_true(s->endpoints[0].terminating);
	assert_string_equal(s->endpoints[0].target_name, "db-0");
	assert_int_equal(s->ports[0].number, 5432);
	aegis_config_free(c);

	c = map1(AEGIS_KRES_DR,
	         "{\"metadata\":{\"name\":\"r\"},\"spec\":{\"host\":\"reviews\",\"trafficPolicy\":{"
	         "\"connectionPool\":"
	         "{\"tcp\":{\"connectTimeout\":\"1.5s\"}},\"loadBalancer\":{\"localityLbSetting\":{"
	         "\"enabled\":false}}},"
	         "\"subsets\":[{\"name\":\"v1\",\"labels\":{\"version\":\"v1\"}}]}}",
	         NULL, 0, &d);
	assert_int_equal(c->n_destination_rules, 1);
	assert_string_equal(c->destination_rules[0].meta.namespace_, "default");
	assert_int_equal(c->destination_rules[0].policy.connect_timeout_ms, 1500);
	assert_true(c->destination_rules[0].policy.locality_lb_set);
	assert_false(c->destination_rules[0].policy.locality_lb_enabled);
	assert_string_equal(c->destination_rules[0].subsets[0].name, "v1");
	aegis_config_free(c);

	c = map1(AEGIS_KRES_VS,
	         "{\"metadata\":{\"name\":\"r\",\"namespace\":\"d\"},\"spec\":{\"hosts\":[\"reviews\"],"
	         "\"http\":[{\"route\":["
	         "{\"destination\":{\"host\":\"reviews\",\"subset\":\"v1\"},\"weight\":90},"
	         "{\"destination\":{\"host\":\"reviews\",\"subset\":\"v2\",\"port\":{\"number\":9080}},"
	         "\"weight\":10}]}]}}",
	         NULL, 0, &d);
	assert_int_equal(c->n_virtual_services, 1);
	assert_int_equal(c->virtual_services[0].routes[0].n_dests, 2);
	assert_int_equal(c->virtual_services[0].routes[0].dests[0].weight, 90);
	assert_int_equal(c->virtual_services[0].routes[0].dests[1].port, 9080);
	aegis_config_free(c);
}

static const char pod_json[] =
        "{\"metadata\":{\"name\":\"reviews-v1-x\",\"namespace\":\"default\",\"labels\":{\"app\":\"reviews\","
        "\"version\":\"v1\"}},\"spec\":{\"serviceAccountName\":\"bookinfo-reviews\"},"
        "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.0.5\"}}";

static void test_pod_as_workload_entry(void **state)
{
	(void)state;
	struct aegis_diag d;
	struct aegis_config *c = map1(AEGIS_KRES_POD, pod_json, "net-ns", 0, &d);
	assert_int_equal(c->n_workload_entries, 1);
	const struct aegis_workload_entry *we = &c->workload_entries[0];
	assert_string_equal(we->meta.name, "reviews-v1-x"); /* docs/mesh.md: joined by targetRef name */
	assert_string_equal(we->meta.namespace_, "default");
	assert_string_equal(we->meta.cluster, "c1");
	assert_string_equal(we->spec.address, "10.244.0.5");
	assert_string_equal(we->spec.service_account, "bookinfo-reviews");
	assert_string_equal(we->spec.network, "net-ns");
	assert_int_equal(we->spec.labels.n, 2);
	aegis_config_free(c);

	/* The pod's own network label wins over its namespace's. */
	c = map1(AEGIS_KRES_POD,
	         "{\"metadata\":{\"name\":\"p\",\"labels\":{\"topology.istio.io/network\":\"own\"}},"
	         "\"status\":{\"podIP\":\"10.0.0.9\"}}",
	         "net-ns", 0, &d);
	assert_string_equal(c->workload_entries[0].spec.network, "own");
	assert_string_equal(c->workload_entries[0].spec.service_account, "");
	aegis_config_free(c);

	/* No IP yet, host networking, finished: nothing, and no error. */
	const char *skipped[] = {
	        "{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Pending\"}}",
	        "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"hostNetwork\":true},\"status\":{\"podIP\":\"172."
	        "18.0.2\"}}",
	        "{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Succeeded\",\"podIP\":\"10.0.0.3\"}}",
	};
	for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++) {
		c = map1(AEGIS_KRES_POD, skipped[i], NULL, 0, &d);
		assert_int_equal(c->n_workload_entries, 0);
		aegis_config_free(c);
	}
	/* Namespaces lend their label to pods and map to nothing themselves. */
	c = map1(AEGIS_KRES_NS, "{\"metadata\":{\"name\":\"default\"}}", NULL, 0, &d);
	assert_int_equal(c->n_workload_entries + c->n_services, 0);
	aegis_config_free(c);
}

/* A rejected object says why, adds nothing, and the next object maps into the same config. */
static void test_rejected_object_keeps_loader(void **state)
{
	(void)state;
	struct aegis_config *cfg = aegis_config_new();
	assert_non_null(cfg);
	struct aegis_diag d;
	struct aegis_yaml_loader l;
	aegis_kjson_begin(&l, cfg, "", &d);
	json_t *bad = parse("{\"metadata\":{\"name\":\"bad\",\"namespace\":\"x\"},\"spec\":{\"hosts\":[\"not "
	                    "a host\"]}}");
	json_t *good = parse(se_json);
	assert_int_equal(aegis_kjson_map(&l, AEGIS_KRES_SE, bad, "kube:local", NULL), AEGIS_EINVAL);
	assert_non_null(strstr(d.msg, "ServiceEntry x/bad"));
	assert_non_null(strstr(d.msg, "hosts"));
	assert_string_equal(d.file, "kube:local");
	assert_int_equal(cfg->n_service_entries, 0);
	assert_int_equal(aegis_kjson_map(&l, AEGIS_KRES_SE, good, "kube:local", NULL), 0);
	assert_int_equal(aegis_kjson_map(&l, AEGIS_KRES_SE, good, "kube:local", NULL), 0);
	assert_int_equal(cfg->n_service_entries, 2);
	assert_string_equal(cfg->service_entries[1].meta.cluster, "");
	json_decref(bad);
	json_decref(good);
	aegis_config_free(cfg);
}

static void test_tree_limits(void **state)
{
	(void)state;
	struct aegis_arena a;
	aegis_arena_init(&a, 0, 1u << 20);
	struct aegis_ynode *root;
	/* "a.com\0.b.com" must not become "a.com". */
	json_t *j = json_pack("{s:s%}", "host", "a.com\0.b.com", (size_t)12);
	assert_int_equal(aegis_kjson_tree(&a, j, NULL, NULL, &root), AEGIS_EPARSE);
	json_decref(j);

	json_t *deep = json_array();
	for (int i = 0; i < AEGIS_CONFIG_MAX_DEPTH + 5; i++) {
		json_t *outer = json_array();
		json_array_append_new(outer, deep);
		deep = outer;
	}
	assert_int_equal(aegis_kjson_tree(&a, deep, NULL, NULL, &root), AEGIS_ELIMIT);
	json_decref(deep);

	/* apiVersion/kind replaced at the top only; scalars as text; null as a null node. */
	j = parse("{\"kind\":\"Wrong\",\"n\":7,\"r\":1.5,\"t\":true,\"z\":null,\"m\":{\"kind\":\"Inner\"}}");
	assert_int_equal(aegis_kjson_tree(&a, j, "v1", "Service", &root), 0);
	assert_int_equal(root->type, AEGIS_YNODE_MAP);
	assert_int_equal(root->n, 7);
	assert_string_equal(root->kids[0]->str, "apiVersion");
	assert_string_equal(root->kids[1]->str, "v1");
	assert_string_equal(root->kids[3]->str, "Service");
	assert_string_equal(root->kids[5]->str, "7");
	assert_string_equal(root->kids[7]->str, "1.5");
	assert_string_equal(root->kids[9]->str, "true");
	assert_int_equal(root->kids[11]->type, AEGIS_YNODE_NULL);
	assert_string_equal(root->kids[13]->kids[1]->str, "Inner");
	json_decref(j);
	aegis_arena_free(&a);

	char key[16];
	j = parse("{\"metadata\":{\"name\":\"n\",\"namespace\":\"ns\"}}");
	assert_true(aegis_kjson_key(j, key, sizeof(key)));
	assert_string_equal(key, "ns/n");
	assert_false(aegis_kjson_key(j, key, 4));
	json_decref(j);
	j = parse("{\"metadata\":{\"name\":\"default\"}}");
	assert_true(aegis_kjson_key(j, key, sizeof(key)));
	assert_string_equal(key, "/default");
	json_decref(j);
}

int main(void)
{
	aegis_log_set_level(AEGIS_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_same_model_as_yaml),
	        cmocka_unit_test(test_list_items_and_types),
	        cmocka_unit_test(test_pod_as_workload_entry),
	        cmocka_unit_test(test_rejected_object_keeps_loader),
	        cmocka_unit_test(test_tree_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
