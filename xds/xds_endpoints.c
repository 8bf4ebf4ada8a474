/* ClusterLoadAssignment decoding and what aegis_xds_builder_finish() does with endpoints: whole-service
 * clusters become the endpoints of the ServiceEntry that names the host (or of a synthetic one), and the
 * clusters of "Service/..." entries become Kubernetes Services and one EndpointSlice per (Service,
 * cluster). See xds_int.h and docs/xds.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "xds_decode_int.h"
#include "xds_int.h"

/* ---- ClusterLoadAssignment ---- */

static const Google__Protobuf__Value *struct_get(const Google__Protobuf__Struct *s, const char *key)
{
	for (size_t i = 0; s && i < s->n_fields; i++)
		if (strcmp(s->fields[i]->key, key) == 0)
			return s->fields[i]->value;
	return NULL;
}

static const char *struct_str(const Google__Protobuf__Struct *s, const char *key)
{
	const Google__Protobuf__Value *v = struct_get(s, key);
	return v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE ? v->string_value : "";
}

/* Istio-style endpoint metadata: filter_metadata["istio"] = {network, cluster, service_account,
 * labels: {..}} (the key names are Aegis's own, see docs/xds.md). */
static int endpoint_meta(struct aegis_arena *a, const Envoy__Config__Core__V3__Metadata *md,
                         struct aegis_workload *w, const char **cluster)
{
	const Google__Protobuf__Struct *s = NULL;
	for (size_t i = 0; md && i < md->n_filter_metadata; i++)
		if (strcmp(md->filter_metadata[i]->key, "istio") == 0)
			s = md->filter_metadata[i]->value;
	*cluster = aegis_xds_adup(a, struct_str(s, "cluster"));
	if (*cluster == NULL)
		return AEGIS_ENOMEM;
	w->network = aegis_xds_adup(a, struct_str(s, "network"));
	w->service_account = aegis_xds_adup(a, struct_str(s, "service_account"));
	const Google__Protobuf__Value *lv = struct_get(s, "labels");
	if (lv && lv->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE && lv->struct_value->n_fields) {
		const Google__Protobuf__Struct *ls = lv->struct_value;
		struct aegis_kv *kv = aegis_arena_alloc(a, ls->n_fields * sizeof(*kv));
		if (kv == NULL)
			return AEGIS_ENOMEM;
		size_t n = 0;
		for (size_t i = 0; i < ls->n_fields; i++) {
			const Google__Protobuf__Value *v = ls->fields[i]->value;
			if (v == NULL || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
				continue;
			kv[n].key = aegis_xds_adup(a, ls->fields[i]->key);
			kv[n].value = aegis_xds_adup(a, v->string_value);
			n++;
		}
		w->labels.items = kv;
		w->labels.n = n;
	}
	return w->network && w->service_account ? 0 : AEGIS_ENOMEM;
}

static char *locality_str(struct aegis_arena *a, const Envoy__Config__Core__V3__Locality *l)
{
	if (l == NULL)
		return aegis_xds_adup(a, "");
	char buf[768];
	if (l->sub_zone[0])
		snprintf(buf, sizeof(buf), "%s/%s/%s", l->region, l->zone, l->sub_zone);
	else if (l->zone[0])
		snprintf(buf, sizeof(buf), "%s/%s", l->region, l->zone);
	else
		snprintf(buf, sizeof(buf), "%s", l->region);
	return aegis_xds_adup(a, buf);
}

int aegis_xds_decode_cla(struct aegis_xds_builder *b, const char *name, const uint8_t *body, size_t len,
                         struct aegis_diag *diag)
{
	const enum aegis_xds_type t = AEGIS_XDS_CLA;
	struct aegis_arena *a = &b->cfg->arena;
	Envoy__Config__Endpoint__V3__ClusterLoadAssignment *m =
	        envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, len, body);
	if (m == NULL)
		return aegis_xds_reject(diag, AEGIS_EPARSE, t, name, "malformed protobuf");
	int rc = 0;
	char buf[512];
	const char *subset, *host;
	uint32_t port;
	if (name[0] && strcmp(name, m->cluster_name) != 0) {
		rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, name,
		                      "cluster_name \"%.64s\" differs from the resource name",
		                      m->cluster_name);
		goto out;
	}
	if (aegis_xds_parse_cluster_name(m->cluster_name, &port, buf, sizeof(buf), &subset, &host) ||
	    !aegis_xds_valid_host(host)) {
		rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, m->cluster_name,
		                      "cluster name is not outbound|<port>|<subset>|<host>");
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < m->n_endpoints; i++)
		n += m->endpoints[i]->n_lb_endpoints;
	if ((rc = AEGIS_XDS_GROW(a, b->cla, b->n_cla, b->cap_cla)))
		goto out;
	struct xds_cla *c = &b->cla[b->n_cla];
	memset(c, 0, sizeof(*c));
	c->host = aegis_xds_adup_lower(a, host);
	c->subset = aegis_xds_adup(a, subset);
	c->port = port;
	c->eps = n ? aegis_arena_zalloc(a, n * sizeof(*c->eps)) : NULL;
	c->ep_cluster = n ? aegis_arena_zalloc(a, n * sizeof(*c->ep_cluster)) : NULL;
	if (c->host == NULL || c->subset == NULL || (n && (c->eps == NULL || c->ep_cluster == NULL))) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < m->n_endpoints; i++) {
		const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *le = m->endpoints[i];
		char *loc = locality_str(a, le->locality);
		if (loc == NULL) {
			rc = AEGIS_ENOMEM;
			goto out;
		}
		for (size_t j = 0; j < le->n_lb_endpoints; j++, k++) {
			const Envoy__Config__Endpoint__V3__LbEndpoint *lbe = le->lb_endpoints[j];
			const Envoy__Config__Endpoint__V3__Endpoint *ep =
			        lbe->host_identifier_case ==
			                        ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT
			                ? lbe->endpoint
			                : NULL;
			const Envoy__Config__Core__V3__SocketAddress *sa =
			        ep && ep->address &&
			                        ep->address->address_case ==
			                                ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS
			                ? ep->address->socket_address
			                : NULL;
			if (sa == NULL || !aegis_xds_valid_ip(sa->address)) {
				rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, m->cluster_name,
				                      "endpoint %zu: missing or bad IP \"%.64s\"", k,
				                      sa ? sa->address : "");
				goto out;
			}
			uint32_t p =
			        sa->port_specifier_case ==
			                        ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE
			                ? sa->port_value
			                : 0;
			if (!aegis_xds_valid_port(p)) {
				rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, m->cluster_name,
				                      "endpoint %zu: port %u out of range", k, p);
				goto out;
			}
			struct aegis_workload *w = &c->eps[k];
			w->address = aegis_xds_adup(a, sa->address);
			struct aegis_port_ref *pr = aegis_arena_alloc(a, sizeof(*pr));
			if (w->address == NULL || pr == NULL) {
				rc = AEGIS_ENOMEM;
				goto out;
			}
			pr->name = "";
			pr->number = p;
			w->ports = pr;
			w->n_ports = 1;
			w->locality = loc;
			w->weight = lbe->load_balancing_weight ? lbe->load_balancing_weight->value : 0;
			switch (lbe->health_status) {
			case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY:
				w->health = AEGIS_HEALTH_HEALTHY;
				break;
			case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY:
			case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__TIMEOUT:
				w->health = AEGIS_HEALTH_UNHEALTHY;
				break;
			case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING:
				w->health = AEGIS_HEALTH_DRAINING;
				break;
			default: w->health = AEGIS_HEALTH_UNKNOWN; break;
			}
			w->hostname = aegis_xds_adup(a, ep->hostname);
			w->node_name = w->zone = w->target_pod = "";
			if (w->hostname == NULL ||
			    (rc = endpoint_meta(a, lbe->metadata, w, &c->ep_cluster[k])))
				goto out;
		}
	}
	c->n_eps = n;
	b->n_cla++;
out:
	envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(m, NULL);
	return rc;
}

/* ---- finish: attach CLA endpoints to ServiceEntries ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

struct host_map {
	const char **keys;
	size_t *vals;
	size_t cap; /* power of two */
};

static size_t *host_map_slot(struct host_map *m, const char *key, bool *found)
{
	size_t i = (size_t)hash_str(key) & (m->cap - 1);
	while (m->keys[i] != NULL) {
		if (strcmp(m->keys[i], key) == 0) {
			*found = true;
			return &m->vals[i];
		}
		i = (i + 1) & (m->cap - 1);
	}
	*found = false;
	m->keys[i] = key;
	return &m->vals[i];
}

struct ep_acc {
	struct aegis_workload *w;
	size_t n, cap;
	bool own; /* the ServiceEntry brought its own endpoints: CLA endpoints are not merged in */
};

static const char *port_name_for(const struct aegis_service_entry *se, uint32_t number)
{
	for (size_t i = 0; i < se->n_ports; i++)
		if (se->ports[i].number == number)
			return se->ports[i].name;
	return "";
}

static int add_synthetic_se(struct aegis_xds_builder *b, const struct xds_cla *c)
{
	struct aegis_arena *a = &b->cfg->arena;
	if (AEGIS_XDS_GROW(a, b->se, b->n_se, b->cap_se))
		return AEGIS_ENOMEM;
	struct aegis_service_entry *se = &b->se[b->n_se];
	memset(se, 0, sizeof(*se));
	const char **hosts = aegis_arena_alloc(a, sizeof(*hosts));
	if (hosts == NULL || aegis_xds_set_meta(a, &se->meta, "", c->host, AEGIS_XDS_CLA))
		return AEGIS_ENOMEM;
	hosts[0] = c->host;
	se->hosts = hosts;
	se->n_hosts = 1;
	se->location = AEGIS_SE_MESH_INTERNAL;
	se->resolution = AEGIS_SE_RES_STATIC;
	b->n_se++;
	return 0;
}

static int add_port(struct aegis_arena *a, struct aegis_workload *w, const char *pname, uint32_t number)
{
	for (size_t i = 0; i < w->n_ports; i++)
		if (w->ports[i].number == number && strcmp(w->ports[i].name, pname) == 0)
			return 0;
	struct aegis_port_ref *p =
	        aegis_arena_grow(a, (void *)w->ports, w->n_ports, w->n_ports + 1, sizeof(*p));
	if (p == NULL)
		return AEGIS_ENOMEM;
	p[w->n_ports].name = pname;
	p[w->n_ports].number = number;
	w->ports = p;
	w->n_ports++;
	return 0;
}

static int attach_endpoints(struct aegis_xds_builder *b)
{
	struct aegis_arena *a = &b->cfg->arena;
	size_t total = b->n_se + b->n_cla + b->n_ksvc;
	struct host_map m = {0};
	m.cap = 16;
	while (m.cap < total * 2 * 4)
		m.cap *= 2;
	size_t acc_cap = total ? total : 1;
	m.keys = calloc(m.cap, sizeof(*m.keys));
	m.vals = calloc(m.cap, sizeof(*m.vals));
	struct ep_acc *acc = calloc(acc_cap, sizeof(*acc));
	int rc = 0;
	if (m.keys == NULL || m.vals == NULL || acc == NULL) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	/* The first ServiceEntry that names a host owns it. */
	for (size_t i = 0; i < b->n_se; i++) {
		acc[i].own = b->se[i].n_endpoints > 0;
		for (size_t h = 0; h < b->se[i].n_hosts; h++) {
			bool found;
			size_t *slot = host_map_slot(&m, b->se[i].hosts[h], &found);
			if (!found)
				*slot = i;
		}
	}
	/* Kubernetes Services' endpoints become EndpointSlices (build_k8s), not entry endpoints. */
	for (size_t i = 0; i < b->n_ksvc; i++) {
		bool found;
		size_t *slot = host_map_slot(&m, b->ksvc[i].hosts[0], &found);
		if (!found)
			*slot = SIZE_MAX;
	}
	for (size_t ci = 0; ci < b->n_cla; ci++) {
		const struct xds_cla *c = &b->cla[ci];
		if (c->subset[0] != '\0')
			continue; /* subsets are the DestinationRule's labels applied to the whole set */
		bool found;
		size_t *slot = host_map_slot(&m, c->host, &found);
		if (found && *slot == SIZE_MAX)
			continue;
		if (!found) {
			*slot = b->n_se;
			if ((rc = add_synthetic_se(b, c)))
				goto out;
		}
		size_t si = *slot;
		struct aegis_service_entry *se = &b->se[si];
		if (acc[si].own)
			continue;
		if (se->meta.source == aegis_xds_type_urls[AEGIS_XDS_CLA]) {
			/* A synthetic entry lists each cluster port once. */
			bool have = false;
			for (size_t i = 0; i < se->n_ports; i++)
				have |= se->ports[i].number == c->port;
			if (!have) {
				struct aegis_port *p = aegis_arena_grow(a, (void *)se->ports, se->n_ports,
				                                        se->n_ports + 1, sizeof(*p));
				if (p == NULL) {
					rc = AEGIS_ENOMEM;
					goto out;
				}
				p[se->n_ports] =
				        (struct aegis_port){.name = "", .number = c->port, .protocol = ""};
				se->ports = p;
				se->n_ports++;
			}
		}
		const char *pname = port_name_for(se, c->port);
		struct ep_acc *e = &acc[si];
		for (size_t k = 0; k < c->n_eps; k++) {
			struct aegis_workload *w = NULL;
			for (size_t j = 0; j < e->n; j++)
				if (strcmp(e->w[j].address, c->eps[k].address) == 0) {
					w = &e->w[j];
					break;
				}
			if (w == NULL) {
				if (e->n == e->cap) {
					size_t nc = e->cap ? e->cap * 2 : 4;
					struct aegis_workload *nw = realloc(e->w, nc * sizeof(*nw));
					if (nw == NULL) {
						rc = AEGIS_ENOMEM;
						goto out;
					}
					e->w = nw;
					e->cap = nc;
				}
				w = &e->w[e->n++];
				*w = c->eps[k];
				w->ports = NULL;
				w->n_ports = 0;
			}
			if ((rc = add_port(a, w, pname, c->eps[k].ports[0].number)))
				goto out;
		}
	}
	for (size_t i = 0; i < b->n_se; i++) {
		if (acc[i].own || acc[i].n == 0)
			continue;
		b->se[i].endpoints = aegis_arena_memdup(a, acc[i].w, acc[i].n * sizeof(*acc[i].w));
		if (b->se[i].endpoints == NULL) {
			rc = AEGIS_ENOMEM;
			goto out;
		}
		b->se[i].n_endpoints = acc[i].n;
	}
out:
	if (acc != NULL)
		for (size_t i = 0; i < acc_cap; i++)
			free(acc[i].w);
	free(acc);
	free(m.keys);
	free(m.vals);
	return rc;
}

/* The Services' ports by number, for naming slice ports. */
static const char *svc_port_name(const struct aegis_service_entry *se, uint32_t number)
{
	for (size_t i = 0; i < se->n_ports; i++)
		if (se->ports[i].number == number)
			return se->ports[i].name;
	return "";
}

/* An EndpointSlice has no labels, service account, weight or locality, but subset routing and identity
 * checks need them (proxy/mesh_routes.c reads them from the WorkloadEntry with the endpoint's address in
 * the Service's namespace, the model having no Pod kind). So each Service endpoint also becomes a
 * WorkloadEntry "<service>/<address>" in that namespace carrying what its LbEndpoint said; xDS carries no
 * WorkloadEntry type, so these are the decoded config's only ones (docs/xds.md). One per (namespace,
 * address). */
static int add_pod_entry(struct aegis_arena *a, struct aegis_workload_entry **wes, size_t *n,
                         const struct aegis_service_entry *svc, const struct aegis_workload *w)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*wes)[i].spec.address, w->address) == 0 &&
		    strcmp((*wes)[i].meta.namespace_, svc->meta.namespace_) == 0)
			return 0;
	/* Grows by doubling in the arena (capacity: the count rounded up to a power of two). */
	if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
		void *p = aegis_arena_grow(a, *wes, *n, *n == 0 ? 4 : *n * 2, sizeof(**wes));
		if (p == NULL)
			return AEGIS_ENOMEM;
		*wes = p;
	}
	char name[600];
	snprintf(name, sizeof(name), "%s/%s", svc->meta.name, w->address);
	struct aegis_workload_entry *we = &(*wes)[*n];
	memset(we, 0, sizeof(*we));
	we->meta = svc->meta;
	we->meta.labels = w->labels;
	we->meta.annotations = (struct aegis_labels){0};
	we->meta.source = aegis_xds_type_urls[AEGIS_XDS_CLA];
	we->meta.name = aegis_xds_adup(a, name);
	we->spec = *w;
	we->spec.ports = NULL;
	we->spec.n_ports = 0;
	if (we->meta.name == NULL)
		return AEGIS_ENOMEM;
	(*n)++;
	return 0;
}

/* Turns "Service/..." entries back into Services, and their clusters' CLA endpoints into one
 * EndpointSlice per (Service, cluster): what the DNS table needs for headless and clusterset names. */
static int build_k8s(struct aegis_xds_builder *b)
{
	struct aegis_arena *a = &b->cfg->arena;
	if (b->n_ksvc == 0)
		return 0;
	struct aegis_k8s_service *svc = aegis_arena_zalloc(a, b->n_ksvc * sizeof(*svc));
	struct aegis_endpoint_slice *sl = aegis_arena_zalloc(a, b->n_ksvc * sizeof(*sl));
	if (svc == NULL || sl == NULL)
		return AEGIS_ENOMEM;
	/* host -> first CLA index, chained through next[] */
	struct host_map m = {0};
	m.cap = 16;
	while (m.cap < (b->n_cla + 1) * 2)
		m.cap *= 2;
	m.keys = calloc(m.cap, sizeof(*m.keys));
	m.vals = calloc(m.cap, sizeof(*m.vals));
	size_t *next = calloc(b->n_cla + 1, sizeof(*next));
	int rc = 0;
	if (m.keys == NULL || m.vals == NULL || next == NULL) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	for (size_t ci = b->n_cla; ci-- > 0;) {
		if (b->cla[ci].subset[0] != '\0')
			continue;
		bool found;
		size_t *slot = host_map_slot(&m, b->cla[ci].host, &found);
		next[ci] = found ? *slot : SIZE_MAX;
		*slot = ci;
	}
	size_t n_sl = 0;
	struct aegis_workload_entry *wes = NULL;
	size_t n_we = 0;
	for (size_t i = 0; i < b->n_ksvc; i++) {
		const struct aegis_service_entry *se = &b->ksvc[i];
		struct aegis_k8s_service *k = &svc[i];
		k->meta = se->meta;
		k->type = AEGIS_SVC_CLUSTER_IP;
		k->headless = se->resolution == AEGIS_SE_RES_NONE;
		k->cluster_ips = se->addresses;
		k->n_cluster_ips = se->n_addresses;
		k->external_name = "";
		k->ports = se->ports;
		k->n_ports = se->n_ports;
		bool found;
		size_t *slot = host_map_slot(&m, se->hosts[0], &found);
		if (!found) {
			m.keys[slot - m.vals] = NULL; /* looked up only: leave the map as it was */
			continue;
		}
		struct aegis_endpoint_slice *s = &sl[n_sl];
		struct aegis_slice_endpoint *eps = NULL;
		struct aegis_port *ports = NULL;
		size_t n_eps = 0, n_ports = 0;
		for (size_t ci = *slot; ci != SIZE_MAX; ci = next[ci]) {
			const struct xds_cla *c = &b->cla[ci];
			for (size_t e = 0; e < c->n_eps; e++) {
				const struct aegis_workload *w = &c->eps[e];
				if (strcmp(c->ep_cluster[e], se->meta.cluster) != 0)
					continue;
				const char *pname = svc_port_name(se, c->port);
				bool have = false;
				for (size_t q = 0; q < n_ports && !have; q++)
					have = strcmp(ports[q].name, pname) == 0;
				if (!have) {
					ports = aegis_arena_grow(a, ports, n_ports, n_ports + 1,
					                         sizeof(*ports));
					if (ports == NULL) {
						rc = AEGIS_ENOMEM;
						goto out;
					}
					ports[n_ports++] = (struct aegis_port){
					        .name = pname, .number = w->ports[0].number, .protocol = ""};
				}
				have = false;
				for (size_t q = 0; q < n_eps && !have; q++)
					have = strcmp(eps[q].addresses[0], w->address) == 0;
				if (have)
					continue;
				eps = aegis_arena_grow(a, eps, n_eps, n_eps + 1, sizeof(*eps));
				const char **addr = aegis_arena_alloc(a, sizeof(*addr));
				if (eps == NULL || addr == NULL) {
					rc = AEGIS_ENOMEM;
					goto out;
				}
				addr[0] = w->address;
				bool ready = w->health == AEGIS_HEALTH_HEALTHY ||
				             w->health == AEGIS_HEALTH_UNKNOWN;
				if ((rc = add_pod_entry(a, &wes, &n_we, se, w)))
					goto out;
				eps[n_eps++] = (struct aegis_slice_endpoint){
				        .addresses = addr,
				        .n_addresses = 1,
				        .ready = ready,
				        .serving = ready,
				        .terminating = w->health == AEGIS_HEALTH_DRAINING,
				        .hostname = w->hostname,
				        .node_name = w->node_name,
				        .zone = w->zone,
				        .target_kind = "",
				        .target_name = "",
				        .target_namespace = "",
				};
			}
		}
		if (n_eps == 0)
			continue;
		s->meta = se->meta;
		s->meta.source = aegis_xds_type_urls[AEGIS_XDS_CLA];
		s->service_name = se->meta.name;
		s->address_type = strchr(eps[0].addresses[0], ':') ? "IPv6" : "IPv4";
		s->ports = ports;
		s->n_ports = n_ports;
		s->endpoints = eps;
		s->n_endpoints = n_eps;
		n_sl++;
	}
	b->cfg->services = svc;
	b->cfg->n_services = b->n_ksvc;
	b->cfg->endpoint_slices = n_sl ? sl : NULL;
	b->cfg->n_endpoint_slices = n_sl;
	b->cfg->workload_entries = wes;
	b->cfg->n_workload_entries = n_we;
out:
	free(m.keys);
	free(m.vals);
	free(next);
	return rc;
}

int aegis_xds_builder_finish(struct aegis_xds_builder *b, struct aegis_config **out)
{
	int rc = attach_endpoints(b);
	if (rc == 0)
		rc = build_k8s(b);
	if (rc) {
		aegis_xds_builder_abort(b);
		return rc;
	}
	struct aegis_config *cfg = b->cfg;
	cfg->service_entries = b->se;
	cfg->n_service_entries = b->n_se;
	cfg->virtual_services = b->vs;
	cfg->n_virtual_services = b->n_vs;
	cfg->destination_rules = b->dr;
	cfg->n_destination_rules = b->n_dr;
	cfg->name_table = b->nt;
	cfg->n_name_table = b->n_nt;
	b->cfg = NULL;
	memset(b, 0, sizeof(*b));
	*out = cfg;
	return 0;
}
