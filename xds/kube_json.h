/* Private to xds/: Kubernetes API objects (jansson trees, as the API server sends them) onto struct
 * aegis_config, through the YAML loader's own field mapping.
 *
 * The API's JSON has exactly the structure of `kubectl get -o yaml`, so rather than a second mapper,
 * each object is converted into the loader's intermediate tree (resource_yaml_int.h, struct aegis_ynode)
 * and handed to aegis_yaml_map_document(): every field is mapped and validated by the one code path that
 * the directory source uses. Pods, which the model has no kind for, become WorkloadEntries (docs/mesh.md
 * "Pod labels"); Namespaces only lend their network label to their pods. */
#ifndef AEGIS_KUBE_JSON_H
#define AEGIS_KUBE_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "aegis/err.h"
#include "aegis/model.h"
#include "resource_yaml_int.h"

/* The kinds aegis-xds lists and watches (deploy/10-rbac.yaml grants exactly these). */
enum aegis_kres {
	AEGIS_KRES_SE = 0,
	AEGIS_KRES_VS,
	AEGIS_KRES_DR,
	AEGIS_KRES_WE,
	AEGIS_KRES_SVC,
	AEGIS_KRES_EPS,
	AEGIS_KRES_POD,
	AEGIS_KRES_NS,
	AEGIS_KRES_COUNT
};

struct aegis_kres_info {
	const char *path;        /* collection URL path, e.g. "/api/v1/services" */
	const char *api_version; /* what list items are mapped as (list items may omit apiVersion/kind) */
	const char *kind;
	const char *plural; /* the RBAC resource name */
};

extern const struct aegis_kres_info aegis_kjson_kinds[AEGIS_KRES_COUNT];

/* The label (on a Pod, else on its Namespace) that names a workload's network, as in Istio. */
#define AEGIS_KJSON_NETWORK_LABEL "topology.istio.io/network"

/* Prepares l to map objects into cfg, tagging each with cluster ("" = local; the string must outlive
 * the build) and reporting through diag. Cannot fail. */
void aegis_kjson_begin(struct aegis_yaml_loader *l, struct aegis_config *cfg, const char *cluster,
                       struct aegis_diag *diag);

/* Maps one object of kind res onto l->cfg. source names it in messages ("kube:<cluster>"). network is
 * the default network for a Pod (its namespace's or its cluster's; NULL = none). Returns 0 (also for a
 * Pod that is skipped: no IP, host network, finished), or a negative aegis_err with l->diag filled;
 * the object is then not in the config and the loader stays usable for the next one. */
int aegis_kjson_map(struct aegis_yaml_loader *l, enum aegis_kres res, const json_t *obj, const char *source,
                    const char *network) AEGIS_WUR;

/* The conversion itself: j as a tree in arena a (nodes and strings). Numbers become their decimal text,
 * booleans "true"/"false", null a null node; depth is capped at AEGIS_CONFIG_MAX_DEPTH and a string
 * with a NUL is refused (EPARSE), as the YAML builder does. At the top level, apiVersion and kind are
 * replaced by the given ones when not NULL (list items may lack them). */
int aegis_kjson_tree(struct aegis_arena *a, const json_t *j, const char *api_version, const char *kind,
                     struct aegis_ynode **out) AEGIS_WUR;

/* "<ns>/<name>" of an object (namespace "" for cluster-scoped ones) into buf; false when it has no
 * metadata.name or buf is too small. */
bool aegis_kjson_key(const json_t *obj, char *buf, size_t size);

#endif
