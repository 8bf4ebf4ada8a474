/* A whole configuration -> one resource set per xDS type (aegis_xds_encode_config, see xds_int.h).
 *
 * This is where the file model becomes the wire model: Kubernetes Services turn into ServiceEntries,
 * EndpointSlices of every cluster and WorkloadEntries selected by ServiceEntries merge into
 * ClusterLoadAssignments with their cluster's locality and network, and the DNS-only names (headless
 * pods, clusterset.local, <svc>.<cluster>.global) go into an NDS NameTable, as istiod does. */
#include "xds_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/arena.h"

static uint64_t fnv64(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

int aegis_xds_resource_set_push(struct aegis_xds_resource_set *s, const char *name, const char *version,
                                const uint8_t *body, size_t len)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		struct aegis_xds_resource *it = realloc(s->items, nc * sizeof(*it));
		if (it == NULL)
			return AEGIS_ENOMEM;
		s->items = it;
		s->cap = nc;
	}
	size_t nl = strlen(name) + 1, vl = version != NULL && version[0] ? strlen(version) + 1 : 0;
	char *block = malloc(nl + vl + (len ? len : 1));
	if (block == NULL)
		return AEGIS_ENOMEM;
	struct aegis_xds_resource *r = &s->items[s->n++];
	r->name = memcpy(block, name, nl);
	r->version = vl ? memcpy(block + nl, version, vl) : NULL;
	r->body = (uint8_t *)block + nl + vl;
	r->len = len;
	if (len)
		memcpy(r->body, body, len);
	return 0;
}

/* Takes body (malloc'd): the set keeps a copy with its hash as the version. */
static int set_add(struct aegis_xds_resource_set *s, const char *name, uint8_t *body, size_t len)
{
	char ver[20];
	snprintf(ver, sizeof(ver), "%016" PRIx64, fnv64(body, len));
	int rc = aegis_xds_resource_set_push(s, name, ver, body, len);
	free(body);
	return rc;
}

static int cmp_res(const void *a, const void *b)
{
	return strcmp(((const struct aegis_xds_resource *)a)->name,
	              ((const struct aegis_xds_resource *)b)->name);
}

/* Sorts by name and drops later duplicates (the first resource loaded with a name wins). */
static void set_seal(struct aegis_xds_resource_set *s)
{
	if (s->n == 0)
		return;
	qsort(s->items, s->n, sizeof(*s->items), cmp_res);
	size_t w = 1;
	for (size_t i = 1; i < s->n; i++) {
		if (strcmp(s->items[i].name, s->items[w - 1].name) == 0) {
			free(s->items[i].name);
			continue;
		}
		s->items[w++] = s->items[i];
	}
	s->n = w;
}

void aegis_xds_resource_set_free(struct aegis_xds_resource_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i].name); /* the whole block */
	free(s->items);
	memset(s, 0, sizeof(*s));
}

const struct aegis_xds_resource *aegis_xds_resource_find(const struct aegis_xds_resource_set *s,
                                                         const char *name)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, s->items[mid].name);
		if (c == 0)
			return &s->items[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- helpers over the model ---- */

static const struct aegis_cluster_info *cluster_of(const struct aegis_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_clusters; i++)
		if (strcmp(cfg->clusters[i].name, name) == 0)
			return &cfg->clusters[i];
	return NULL;
}

static bool labels_match(const struct aegis_labels *have, const struct aegis_labels *want)
{
	for (size_t i = 0; i < want->n; i++) {
		bool ok = false;
		for (size_t j = 0; j < have->n && !ok; j++)
			ok = strcmp(have->items[j].key, want->items[i].key) == 0 &&
			     strcmp(have->items[j].value, want->items[i].value) == 0;
		if (!ok)
			return false;
	}
	return true;
}

/* Endpoints of one (host, port) cluster, collected before encoding. */
struct cla_acc {
	char *host;
	uint32_t port;
	struct aegis_workload *w;
	const char **cl; /* each endpoint's cluster ("" = none), parallel to w */
	size_t n, cap;
};

struct clas {
	struct cla_acc *c;
	size_t n, cap;
};

static struct cla_acc *cla_get(struct clas *cs, const char *host, uint32_t port)
{
	for (size_t i = cs->n; i-- > 0;)
		if (cs->c[i].port == port && strcmp(cs->c[i].host, host) == 0)
			return &cs->c[i];
	if (cs->n == cs->cap) {
		size_t nc = cs->cap ? cs->cap * 2 : 64;
		struct cla_acc *c = realloc(cs->c, nc * sizeof(*c));
		if (c == NULL)
			return NULL;
		cs->c = c;
		cs->cap = nc;
	}
	struct cla_acc *c = &cs->c[cs->n];
	memset(c, 0, sizeof(*c));
	c->host = strdup(host);
	c->port = port;
	if (c->host == NULL)
		return NULL;
	cs->n++;
	return c;
}

static int cla_add(struct cla_acc *c, const struct aegis_workload *w, const char *cluster)
{
	/* The same workload found twice (an EndpointSlice endpoint and the WorkloadEntry the Service
	 * selects, or one Service per cluster selecting the same entry) is one endpoint. */
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->w[i].address, w->address) == 0 &&
		    (c->w[i].n_ports ? c->w[i].ports[0].number : 0) == (w->n_ports ? w->ports[0].number : 0))
			return 0;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 8;
		struct aegis_workload *nw = realloc(c->w, nc * sizeof(*nw));
		if (nw == NULL)
			return AEGIS_ENOMEM;
		c->w = nw;
		const char **ncl = realloc(c->cl, nc * sizeof(*ncl));
		if (ncl == NULL)
			return AEGIS_ENOMEM;
		c->cl = ncl;
		c->cap = nc;
	}
	c->cl[c->n] = cluster ? cluster : "";
	c->w[c->n++] = *w;
	return 0;
}

static void clas_free(struct clas *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->c[i].host);
		free(cs->c[i].w);
		free(cs->c[i].cl);
	}
	free(cs->c);
}

/* NameTable entries under construction (strings live in the scratch arena). */
struct names {
	struct aegis_name_info *ni;
	size_t n, cap;
};

static struct aegis_name_info *name_get(struct names *ns, struct aegis_arena *a, const char *host)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->ni[i].host, host) == 0)
			return &ns->ni[i];
	if (ns->n == ns->cap) {
		size_t nc = ns->cap ? ns->cap * 2 : 64;
		struct aegis_name_info *p = realloc(ns->ni, nc * sizeof(*p));
		if (p == NULL)
			return NULL;
		ns->ni = p;
		ns->cap = nc;
	}
	struct aegis_name_info *e = &ns->ni[ns->n];
	memset(e, 0, sizeof(*e));
	e->host = aegis_arena_strdup(a, host);
	e->registry = e->shortname = e->namespace_ = "";
	if (e->host == NULL)
		return NULL;
	ns->n++;
	return e;
}

static int name_add_ip(struct aegis_arena *a, struct aegis_name_info *e, const char *ip)
{
	for (size_t i = 0; i < e->n_ips; i++)
		if (strcmp(e->ips[i], ip) == 0)
			return 0;
	const char **ips = aegis_arena_grow(a, (void *)e->ips, e->n_ips, e->n_ips + 1, sizeof(*ips));
	if (ips == NULL)
		return AEGIS_ENOMEM;
	ips[e->n_ips++] = ip;
	e->ips = ips;
	return 0;
}

static int k8s_name(struct names *ns, struct aegis_arena *a, const char *host,
                    const struct aegis_k8s_service *svc, const char *ip)
{
	struct aegis_name_info *e = name_get(ns, a, host);
	if (e == NULL)
		return AEGIS_ENOMEM;
	e->registry = "Kubernetes";
	e->shortname = svc->meta.name;
	e->namespace_ = svc->meta.namespace_;
	return ip ? name_add_ip(a, e, ip) : 0;
}

/* ---- the conversion ---- */

struct ctx {
	const struct aegis_config *cfg;
	const struct aegis_xds_encode_opts *opts;
	const char *domain;
	struct aegis_xds_resource_set *sets;
	struct aegis_arena a; /* scratch */
	struct clas clas;
	struct names names;
	struct aegis_diag *diag;
};

static int emit_se(struct ctx *c, const struct aegis_service_entry *se, const char *name,
                   const char *const *hosts, size_t n_hosts, const char *const *addrs, size_t n_addrs)
{
	uint8_t *body;
	size_t len;
	int rc = aegis_xds_encode_se(
	        &(struct aegis_service_entry){.meta = se->meta,
	                                      .hosts = hosts,
	                                      .n_hosts = n_hosts,
	                                      .addresses = addrs,
	                                      .n_addresses = n_addrs,
	                                      .ports = se->ports,
	                                      .n_ports = se->n_ports,
	                                      .location = se->location,
	                                      .resolution = se->resolution,
	                                      .endpoints = se->endpoints,
	                                      .n_endpoints = se->n_endpoints,
	                                      .workload_selector = se->workload_selector,
	                                      .export_to = se->export_to,
	                                      .n_export_to = se->n_export_to,
	                                      .subject_alt_names = se->subject_alt_names,
	                                      .n_subject_alt_names = se->n_subject_alt_names},
	        &body, &len);
	return rc ? rc : set_add(&c->sets[AEGIS_XDS_SE], name, body, len);
}

static int do_service_entries(struct ctx *c)
{
	const struct aegis_config *cfg = c->cfg;
	char name[600];
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct aegis_service_entry *se = &cfg->service_entries[i];
		snprintf(name, sizeof(name), "%s/%s", se->meta.namespace_, se->meta.name);
		int rc;
		if (se->n_addresses == 0 && c->opts->vip_get != NULL) {
			for (size_t h = 0; h < se->n_hosts; h++) {
				uint8_t v4[4], v6[16];
				char s4[INET_ADDRSTRLEN], s6[INET6_ADDRSTRLEN];
				const char *addrs[2];
				size_t na = 0;
				if (c->opts->vip_get(c->opts->vip_ctx, se->hosts[h], v4, v6) == 0) {
					inet_ntop(AF_INET, v4, s4, sizeof(s4));
					inet_ntop(AF_INET6, v6, s6, sizeof(s6));
					addrs[na++] = s4;
					addrs[na++] = s6;
				}
				char hname[900];
				if (se->n_hosts > 1)
					snprintf(hname, sizeof(hname), "%s/%s", name, se->hosts[h]);
				else
					snprintf(hname, sizeof(hname), "%s", name);
				if ((rc = emit_se(c, se, hname, &se->hosts[h], 1, addrs, na)))
					return rc;
			}
		} else if ((rc = emit_se(c, se, name, se->hosts, se->n_hosts, se->addresses,
		                         se->n_addresses))) {
			return rc;
		}
		/* WorkloadEntries selected by the entry become its endpoints (CLA). */
		if (se->workload_selector.n == 0 || se->n_endpoints > 0)
			continue;
		for (size_t w = 0; w < cfg->n_workload_entries; w++) {
			const struct aegis_workload_entry *we = &cfg->workload_entries[w];
			if (strcmp(we->meta.namespace_, se->meta.namespace_) != 0 ||
			    !labels_match(&we->spec.labels, &se->workload_selector))
				continue;
			for (size_t p = 0; p < se->n_ports; p++) {
				uint32_t port = se->ports[p].target_port ? se->ports[p].target_port
				                                         : se->ports[p].number;
				for (size_t k = 0; k < we->spec.n_ports; k++)
					if (strcmp(we->spec.ports[k].name, se->ports[p].name) == 0)
						port = we->spec.ports[k].number;
				struct aegis_port_ref *pr = aegis_arena_alloc(&c->a, sizeof(*pr));
				if (pr == NULL)
					return AEGIS_ENOMEM;
				*pr = (struct aegis_port_ref){.name = se->ports[p].name, .number = port};
				struct aegis_workload wl = we->spec;
				wl.ports = pr;
				wl.n_ports = 1;
				for (size_t h = 0; h < se->n_hosts; h++) {
					struct cla_acc *ca =
					        cla_get(&c->clas, se->hosts[h], se->ports[p].number);
					if (ca == NULL || cla_add(ca, &wl, we->meta.cluster))
						return AEGIS_ENOMEM;
				}
			}
		}
	}
	return 0;
}

static bool is_ip(const char *s)
{
	uint8_t b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* "region/zone" of an EndpointSlice endpoint: the cluster's region, the endpoint's zone (else the
 * cluster's), as mesh_routes.c computes it. Written into buf. */
static const char *slice_locality(const struct aegis_cluster_info *ci, const char *zone, char *buf,
                                  size_t len)
{
	const char *loc = ci ? ci->locality : "";
	if (zone[0] == '\0')
		return loc;
	const char *slash = strchr(loc, '/');
	size_t r = slash ? (size_t)(slash - loc) : strlen(loc);
	snprintf(buf, len, "%.*s/%s", (int)r, loc, zone);
	return buf;
}

/* Is there a Service ns/name in cluster? */
static bool has_service(const struct aegis_config *cfg, const char *ns, const char *name, const char *cluster)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		if (strcmp(cfg->services[i].meta.namespace_, ns) == 0 &&
		    strcmp(cfg->services[i].meta.name, name) == 0 &&
		    strcmp(cfg->services[i].meta.cluster, cluster) == 0)
			return true;
	return false;
}

/* WorkloadEntries the Service's selector picks (same namespace) join its CLA, as mesh_routes.c's
 * selected_workloads() does for file configs. An entry of another cluster that has this Service is
 * left to that cluster's Service, so that it is tagged with the right cluster. */
static int k8s_selected(struct ctx *c, const struct aegis_k8s_service *svc, const char *host)
{
	const struct aegis_config *cfg = c->cfg;
	if (svc->selector.n == 0)
		return 0;
	for (size_t i = 0; i < cfg->n_workload_entries; i++) {
		const struct aegis_workload_entry *we = &cfg->workload_entries[i];
		if (strcmp(we->meta.namespace_, svc->meta.namespace_) != 0 ||
		    !labels_match(&we->spec.labels, &svc->selector))
			continue;
		if (strcmp(we->meta.cluster, svc->meta.cluster) != 0 && we->meta.cluster[0] &&
		    has_service(cfg, svc->meta.namespace_, svc->meta.name, we->meta.cluster))
			continue;
		for (size_t p = 0; p < svc->n_ports; p++) {
			uint32_t port =
			        svc->ports[p].target_port ? svc->ports[p].target_port : svc->ports[p].number;
			for (size_t k = 0; k < we->spec.n_ports; k++)
				if (svc->ports[p].name[0] &&
				    strcmp(we->spec.ports[k].name, svc->ports[p].name) == 0)
					port = we->spec.ports[k].number;
			struct aegis_port_ref *pr = aegis_arena_alloc(&c->a, sizeof(*pr));
			struct cla_acc *ca = cla_get(&c->clas, host, svc->ports[p].number);
			if (pr == NULL || ca == NULL)
				return AEGIS_ENOMEM;
			*pr = (struct aegis_port_ref){.name = svc->ports[p].name, .number = port};
			struct aegis_workload wl = we->spec;
			wl.ports = pr;
			wl.n_ports = 1;
			int rc = cla_add(ca, &wl, svc->meta.cluster);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

static int do_k8s_services(struct ctx *c)
{
	const struct aegis_config *cfg = c->cfg;
	char name[600], host[600];
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct aegis_k8s_service *svc = &cfg->services[i];
		if (svc->type == AEGIS_SVC_EXTERNAL_NAME)
			continue; /* no xDS form for a CNAME; see docs/xds.md */
		snprintf(host, sizeof(host), "%s.%s.svc.%s", svc->meta.name, svc->meta.namespace_, c->domain);
		const struct aegis_cluster_info *ci = cluster_of(cfg, svc->meta.cluster);
		int rc;
		/* One entry per cluster that has the Service, named so that the client turns it back into a
		 * Service of that cluster (docs/xds.md): the DNS table then answers <svc>.<ns>.svc.<domain>
		 * with the local cluster's IPs, clusterset.local with every cluster's, headless names with
		 * the endpoints, exactly as from files. */
		snprintf(name, sizeof(name), "Service/%s/%s/%s", svc->meta.namespace_, svc->meta.name,
		         svc->meta.cluster);
		const char *hosts[1] = {host};
		struct aegis_service_entry se = {
		        .meta = svc->meta,
		        .ports = svc->ports,
		        .n_ports = svc->n_ports,
		        .location = AEGIS_SE_MESH_INTERNAL,
		        .resolution = svc->headless ? AEGIS_SE_RES_NONE : AEGIS_SE_RES_STATIC,
		};
		if ((rc = emit_se(c, &se, name, hosts, 1, svc->cluster_ips, svc->n_cluster_ips)))
			return rc;
		/* <svc>.<cluster>.global: this cluster's IPs (endpoints when headless), in the NameTable. */
		char global[600];
		snprintf(global, sizeof(global), "%s.%s.global", svc->meta.name,
		         svc->meta.cluster[0] ? svc->meta.cluster : "local");
		if ((rc = k8s_name(&c->names, &c->a, global, svc, NULL)))
			return rc;
		for (size_t k = 0; !svc->headless && k < svc->n_cluster_ips; k++)
			if ((rc = k8s_name(&c->names, &c->a, global, svc, svc->cluster_ips[k])))
				return rc;
		/* Endpoints of this Service in this cluster. */
		for (size_t s = 0; s < cfg->n_endpoint_slices; s++) {
			const struct aegis_endpoint_slice *sl = &cfg->endpoint_slices[s];
			if (strcmp(sl->service_name, svc->meta.name) != 0 ||
			    strcmp(sl->meta.namespace_, svc->meta.namespace_) != 0 ||
			    strcmp(sl->meta.cluster, svc->meta.cluster) != 0)
				continue;
			for (size_t p = 0; p < svc->n_ports; p++) {
				uint32_t port = svc->ports[p].target_port ? svc->ports[p].target_port
				                                          : svc->ports[p].number;
				for (size_t q = 0; q < sl->n_ports; q++)
					if (strcmp(sl->ports[q].name, svc->ports[p].name) == 0 ||
					    sl->n_ports == 1)
						port = sl->ports[q].number;
				struct cla_acc *ca = cla_get(&c->clas, host, svc->ports[p].number);
				struct aegis_port_ref *pr = aegis_arena_alloc(&c->a, sizeof(*pr));
				if (ca == NULL || pr == NULL)
					return AEGIS_ENOMEM;
				*pr = (struct aegis_port_ref){.name = svc->ports[p].name, .number = port};
				for (size_t e = 0; e < sl->n_endpoints; e++) {
					const struct aegis_slice_endpoint *ep = &sl->endpoints[e];
					for (size_t ad = 0; ad < ep->n_addresses; ad++) {
						if (!is_ip(ep->addresses[ad]))
							continue;
						const struct aegis_workload_entry *we = aegis_config_pod_of(
						        cfg, svc->meta.namespace_, ep->addresses[ad],
						        ep->target_name);
						char lbuf[300];
						const char *loc =
						        slice_locality(ci, ep->zone, lbuf, sizeof(lbuf));
						if (we != NULL && we->spec.locality[0])
							loc = we->spec.locality;
						if ((loc = aegis_arena_strdup(&c->a, loc)) == NULL)
							return AEGIS_ENOMEM;
						struct aegis_workload w = {
						        .address = ep->addresses[ad],
						        .ports = pr,
						        .n_ports = 1,
						        .labels = we ? we->spec.labels
						                     : (struct aegis_labels){0},
						        .network = we && we->spec.network[0]
						                           ? we->spec.network
						                   : ci ? ci->network
						                        : "",
						        .locality = loc,
						        .weight = we ? we->spec.weight : 0,
						        .service_account = we ? we->spec.service_account : "",
						        .health = ep->terminating ? AEGIS_HEALTH_DRAINING
						                  : ep->ready     ? AEGIS_HEALTH_HEALTHY
						                                  : AEGIS_HEALTH_UNHEALTHY,
						        .hostname = ep->hostname,
						        .node_name = ep->node_name,
						        .zone = ep->zone,
						        .target_pod = "",
						};
						if ((rc = cla_add(ca, &w, svc->meta.cluster)))
							return rc;
						if (svc->headless && ep->ready &&
						    (rc = k8s_name(&c->names, &c->a, global, svc,
						                   ep->addresses[ad])))
							return rc;
					}
				}
			}
		}
		if ((rc = k8s_selected(c, svc, host)))
			return rc;
	}
	return 0;
}

static int emit_clas(struct ctx *c)
{
	const struct aegis_config *cfg = c->cfg;
	char name[800];
	int rc;
	size_t n = c->clas.n; /* subset clusters below are not in c->clas */
	for (size_t i = 0; i < n; i++) {
		const struct cla_acc *ca = &c->clas.c[i];
		uint8_t *body;
		size_t len;
		snprintf(name, sizeof(name), "outbound|%u||%s", ca->port, ca->host);
		if ((rc = aegis_xds_encode_cla_clusters(name, ca->w, ca->cl, ca->n, ca->port, &body, &len)) ||
		    (rc = set_add(&c->sets[AEGIS_XDS_CLA], name, body, len)))
			return rc;
		/* outbound|<port>|<subset>|<host> for every DestinationRule subset of the host. */
		for (size_t d = 0; d < cfg->n_destination_rules; d++) {
			const struct aegis_destination_rule *dr = &cfg->destination_rules[d];
			if (strcmp(dr->host, ca->host) != 0)
				continue;
			for (size_t s = 0; s < dr->n_subsets; s++) {
				struct aegis_workload *w = ca->n ? malloc(ca->n * sizeof(*w)) : NULL;
				const char **cl = ca->n ? malloc(ca->n * sizeof(*cl)) : NULL;
				size_t nw = 0;
				if (ca->n && (w == NULL || cl == NULL)) {
					free(w);
					free(cl);
					return AEGIS_ENOMEM;
				}
				for (size_t k = 0; k < ca->n; k++)
					if (labels_match(&ca->w[k].labels, &dr->subsets[s].labels)) {
						cl[nw] = ca->cl[k];
						w[nw++] = ca->w[k];
					}
				snprintf(name, sizeof(name), "outbound|%u|%s|%s", ca->port,
				         dr->subsets[s].name, ca->host);
				rc = aegis_xds_encode_cla_clusters(name, w, cl, nw, ca->port, &body, &len);
				free(w);
				free(cl);
				if (rc || (rc = set_add(&c->sets[AEGIS_XDS_CLA], name, body, len)))
					return rc;
			}
		}
	}
	return 0;
}

int aegis_xds_encode_config(const struct aegis_config *cfg, const struct aegis_xds_encode_opts *opts,
                            struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES], struct aegis_diag *diag)
{
	struct aegis_xds_encode_opts none = {0};
	struct ctx c = {.cfg = cfg, .opts = opts ? opts : &none, .sets = sets, .diag = diag};
	c.domain = c.opts->cluster_domain && c.opts->cluster_domain[0] ? c.opts->cluster_domain
	                                                               : "cluster.local";
	aegis_arena_init(&c.a, 0, 0);
	char name[600];
	int rc;
	if ((rc = do_service_entries(&c)) || (rc = do_k8s_services(&c)) || (rc = emit_clas(&c)))
		goto out;
	for (size_t i = 0; i < cfg->n_virtual_services; i++) {
		const struct aegis_virtual_service *vs = &cfg->virtual_services[i];
		uint8_t *body;
		size_t len;
		snprintf(name, sizeof(name), "%s/%s", vs->meta.namespace_, vs->meta.name);
		if ((rc = aegis_xds_encode_vs(vs, &body, &len)) ||
		    (rc = set_add(&sets[AEGIS_XDS_VS], name, body, len)))
			goto out;
	}
	for (size_t i = 0; i < cfg->n_destination_rules; i++) {
		const struct aegis_destination_rule *dr = &cfg->destination_rules[i];
		uint8_t *body;
		size_t len;
		snprintf(name, sizeof(name), "%s/%s", dr->meta.namespace_, dr->meta.name);
		if ((rc = aegis_xds_encode_dr(dr, &body, &len)) ||
		    (rc = set_add(&sets[AEGIS_XDS_DR], name, body, len)))
			goto out;
	}
	/* Name tables given in the configuration are passed on after the derived names. */
	for (size_t i = 0; i < cfg->n_name_table; i++) {
		struct aegis_name_info *e = name_get(&c.names, &c.a, cfg->name_table[i].host);
		if (e == NULL) {
			rc = AEGIS_ENOMEM;
			goto out;
		}
		if (e->n_ips == 0)
			*e = cfg->name_table[i];
	}
	if (c.names.n > 0) {
		uint8_t *body;
		size_t len;
		if ((rc = aegis_xds_encode_name_table(c.names.ni, c.names.n, &body, &len)) ||
		    (rc = set_add(&sets[AEGIS_XDS_NDS], "nametable", body, len)))
			goto out;
	}
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		set_seal(&sets[t]);
out:
	if (rc) {
		for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
			aegis_xds_resource_set_free(&sets[t]);
		aegis_diag_set(diag, rc, NULL, 0, 0, "encoding the configuration: %s", aegis_strerror(rc));
	}
	clas_free(&c.clas);
	free(c.names.ni);
	aegis_arena_free(&c.a);
	return rc;
}
