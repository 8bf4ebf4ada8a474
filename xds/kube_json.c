/* Kubernetes API JSON -> the YAML loader's tree -> struct aegis_config (kube_json.h). */
#include "kube_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aegis/limits.h"

const struct aegis_kres_info aegis_kjson_kinds[AEGIS_KRES_COUNT] = {
        [AEGIS_KRES_SE] = {"/apis/networking.istio.io/v1/serviceentries", "networking.istio.io/v1",
                           "ServiceEntry", "serviceentries"},
        [AEGIS_KRES_VS] = {"/apis/networking.istio.io/v1/virtualservices", "networking.istio.io/v1",
                           "VirtualService", "virtualservices"},
        [AEGIS_KRES_DR] = {"/apis/networking.istio.io/v1/destinationrules", "networking.istio.io/v1",
                           "DestinationRule", "destinationrules"},
        [AEGIS_KRES_WE] = {"/apis/networking.istio.io/v1/workloadentries", "networking.istio.io/v1",
                           "WorkloadEntry", "workloadentries"},
        [AEGIS_KRES_SVC] = {"/api/v1/services", "v1", "Service", "services"},
        [AEGIS_KRES_EPS] = {"/apis/discovery.k8s.io/v1/endpointslices", "discovery.k8s.io/v1",
                            "EndpointSlice", "endpointslices"},
        [AEGIS_KRES_POD] = {"/api/v1/pods", "v1", "Pod", "pods"},
        [AEGIS_KRES_NS] = {"/api/v1/namespaces", "v1", "Namespace", "namespaces"},
};

static struct aegis_ynode *node(struct aegis_arena *a, enum aegis_ynode_type t)
{
	struct aegis_ynode *n = aegis_arena_zalloc(a, sizeof(*n));
	if (n != NULL) {
		n->type = t;
		n->str = "";
	}
	return n;
}

static struct aegis_ynode *scalar(struct aegis_arena *a, const char *s, size_t len)
{
	struct aegis_ynode *n = node(a, AEGIS_YNODE_SCALAR);
	if (n == NULL)
		return NULL;
	n->str = aegis_arena_strndup(a, s, len);
	n->len = len;
	return n->str ? n : NULL;
}

static int tree(struct aegis_arena *a, const json_t *j, int depth, const char *api_version, const char *kind,
                struct aegis_ynode **out)
{
	char num[64];
	struct aegis_ynode *n = NULL;
	if (depth > AEGIS_CONFIG_MAX_DEPTH)
		return AEGIS_ELIMIT;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		bool top = depth == 0 && (api_version != NULL || kind != NULL);
		size_t cap = (json_object_size(j) + (top ? 2 : 0)) * 2;
		n = node(a, AEGIS_YNODE_MAP);
		if (n == NULL || (cap && (n->kids = aegis_arena_alloc(a, cap * sizeof(*n->kids))) == NULL))
			return AEGIS_ENOMEM;
		const char *key;
		const json_t *v;
		size_t k = 0;
		if (top) {
			const char *given[2][2] = {{"apiVersion", api_version}, {"kind", kind}};
			for (int i = 0; i < 2; i++) {
				if (given[i][1] == NULL)
					continue;
				n->kids[k++] = scalar(a, given[i][0], strlen(given[i][0]));
				n->kids[k++] = scalar(a, given[i][1], strlen(given[i][1]));
				if (n->kids[k - 1] == NULL || n->kids[k - 2] == NULL)
					return AEGIS_ENOMEM;
			}
		}
		json_object_foreach((json_t *)j, key, v)
		{
			if (top && ((api_version && strcmp(key, "apiVersion") == 0) ||
			            (kind && strcmp(key, "kind") == 0)))
				continue;
			if ((n->kids[k++] = scalar(a, key, strlen(key))) == NULL)
				return AEGIS_ENOMEM;
			int rc = tree(a, v, depth + 1, NULL, NULL, &n->kids[k++]);
			if (rc != 0)
				return rc;
		}
		n->n = k / 2;
		break;
	}
	case JSON_ARRAY: {
		size_t cnt = json_array_size(j);
		n = node(a, AEGIS_YNODE_SEQ);
		if (n == NULL || (cnt && (n->kids = aegis_arena_alloc(a, cnt * sizeof(*n->kids))) == NULL))
			return AEGIS_ENOMEM;
		for (size_t i = 0; i < cnt; i++) {
			int rc = tree(a, json_array_get(j, i), depth + 1, NULL, NULL, &n->kids[i]);
			if (rc != 0)
				return rc;
		}
		n->n = cnt;
		break;
	}
	case JSON_STRING: {
		size_t len = json_string_length(j);
		const char *s = json_string_value(j);
		/* As in the YAML builder: C string handling must not be fooled by "a.com\0.b.com". */
		if (memchr(s, '\0', len) != NULL)
			return AEGIS_EPARSE;
		n = scalar(a, s, len);
		break;
	}
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		n = scalar(a, num, strlen(num));
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(j));
		n = scalar(a, num, strlen(num));
		break;
	case JSON_TRUE: n = scalar(a, "true", 4); break;
	case JSON_FALSE: n = scalar(a, "false", 5); break;
	case JSON_NULL: n = node(a, AEGIS_YNODE_NULL); break;
	}
	if (n == NULL)
		return AEGIS_ENOMEM;
	*out = n;
	return 0;
}

int aegis_kjson_tree(struct aegis_arena *a, const json_t *j, const char *api_version, const char *kind,
                     struct aegis_ynode **out)
{
	*out = NULL;
	return tree(a, j, 0, api_version, kind, out);
}

bool aegis_kjson_key(const json_t *obj, char *buf, size_t size)
{
	const json_t *md = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	if (name == NULL || name[0] == '\0')
		return false;
	int w = snprintf(buf, size, "%s/%s", ns ? ns : "", name);
	return w > 0 && (size_t)w < size;
}

void aegis_kjson_begin(struct aegis_yaml_loader *l, struct aegis_config *cfg, const char *cluster,
                       struct aegis_diag *diag)
{
	memset(l, 0, sizeof(*l));
	l->cfg = cfg;
	l->diag = diag;
	l->cluster = cluster ? cluster : "";
	l->source = "";
}

/* A Pod as the WorkloadEntry that docs/mesh.md joins to EndpointSlice endpoints: same name and
 * namespace, address = pod IP, the pod's labels, its service account, its network. NULL with *rc 0 for
 * a pod that describes no addressable workload. */
static json_t *pod_as_workload_entry(const json_t *pod, const char *network, int *rc)
{
	*rc = 0;
	const json_t *md = json_object_get(pod, "metadata");
	const json_t *spec = json_object_get(pod, "spec");
	const json_t *status = json_object_get(pod, "status");
	const char *ip = json_string_value(json_object_get(status, "podIP"));
	const char *phase = json_string_value(json_object_get(status, "phase"));
	/* Host-network pods share the node's IP: joining by address would give every pod on the node one
	 * identity. Finished pods keep their IP in status for a while, but it may be reused already. */
	if (ip == NULL || ip[0] == '\0' || json_is_true(json_object_get(spec, "hostNetwork")) ||
	    (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)))
		return NULL;
	const json_t *labels = json_object_get(md, "labels");
	const char *sa = json_string_value(json_object_get(spec, "serviceAccountName"));
	const char *net = json_string_value(json_object_get(labels, AEGIS_KJSON_NETWORK_LABEL));
	if (net == NULL)
		net = network;
	json_t *we_md = json_object(), *we_spec = json_object(), *we = json_object();
	if (we_md == NULL || we_spec == NULL || we == NULL)
		goto nomem;
	const char *copy[] = {"name", "namespace", "resourceVersion"};
	for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
		json_t *v = json_object_get(md, copy[i]);
		if (v != NULL && json_object_set(we_md, copy[i], v) != 0)
			goto nomem;
	}
	if (json_object_set_new(we_spec, "address", json_string(ip)) != 0 ||
	    (labels && json_object_set(we_spec, "labels", (json_t *)labels) != 0) ||
	    (sa && json_object_set_new(we_spec, "serviceAccount", json_string(sa)) != 0) ||
	    (net && net[0] && json_object_set_new(we_spec, "network", json_string(net)) != 0) ||
	    json_object_set_new(we, "metadata", we_md) != 0) {
		we_md = NULL;
		goto nomem;
	}
	we_md = NULL;
	if (json_object_set_new(we, "spec", we_spec) != 0) {
		we_spec = NULL;
		goto nomem;
	}
	return we;
nomem:
	json_decref(we_md);
	json_decref(we_spec);
	json_decref(we);
	*rc = AEGIS_ENOMEM;
	return NULL;
}

int aegis_kjson_map(struct aegis_yaml_loader *l, enum aegis_kres res, const json_t *obj, const char *source,
                    const char *network)
{
	if (res == AEGIS_KRES_NS)
		return 0; /* read by the caller for the network label only */
	const struct aegis_kres_info *ki = &aegis_kjson_kinds[res];
	json_t *pod_we = NULL;
	int rc = 0;
	char *src = aegis_arena_strdup(&l->cfg->arena, source ? source : "kube");
	if (src == NULL)
		return aegis_diag_set(l->diag, AEGIS_ENOMEM, source, 0, 0, "out of memory");
	l->source = src;
	if (res == AEGIS_KRES_POD) {
		pod_we = pod_as_workload_entry(obj, network, &rc);
		if (pod_we == NULL)
			return rc ? aegis_diag_set(l->diag, rc, src, 0, 0, "out of memory") : 0;
		obj = pod_we;
		ki = &aegis_kjson_kinds[AEGIS_KRES_WE];
	}
	/* The tree may use what the configuration arena has not, as in the YAML loader. */
	size_t used = l->cfg->arena.total;
	struct aegis_arena scratch;
	aegis_arena_init(&scratch, 0, used < AEGIS_CONFIG_MAX_BYTES ? AEGIS_CONFIG_MAX_BYTES - used : 1);
	struct aegis_ynode *root;
	rc = aegis_kjson_tree(&scratch, obj, ki->api_version, ki->kind, &root);
	if (rc != 0) {
		char key[300];
		(void)aegis_diag_set(l->diag, rc, src, 0, 0, "%s %s: %s", ki->kind,
		                     aegis_kjson_key(obj, key, sizeof(key)) ? key : "?",
		                     rc == AEGIS_EPARSE   ? "a NUL character inside a string is not allowed"
		                     : rc == AEGIS_ELIMIT ? "nested deeper than the limit"
		                                          : "out of memory");
		goto out;
	}
	rc = aegis_yaml_map_document(l, root);
out:
	aegis_arena_free(&scratch);
	json_decref(pod_we);
	return rc;
}
