/* YAML resource loader, the per-kind half: maps one document tree (resource_yaml_int.h) onto struct
 * aegis_config, field by field, with the typed helpers of resource_yaml_fields.c. The first error ends
 * the whole load, so nothing half-built is ever kept. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aegis/log.h"
#include "resource_yaml_int.h"

/* ---- shared pieces ---- */

static int map_meta(struct aegis_yaml_loader *l, const struct aegis_ynode *obj, const char *kind,
                    struct aegis_meta *m)
{
	const struct aegis_ynode *md;
	AEGIS_TRY(aegis_yaml_get_map(l, obj, "metadata", &md));
	size_t saved = aegis_yaml_path_key(l, "metadata");
	AEGIS_TRY(aegis_yaml_str_field(l, md, "name", &m->name));
	if (m->name[0] == '\0')
		return aegis_yaml_fail(l, md ? md : obj, AEGIS_EINVAL, "%s needs metadata.name", kind);
	AEGIS_TRY(aegis_yaml_str_field(l, md, "namespace", &m->namespace_));
	if (m->namespace_[0] == '\0')
		m->namespace_ = "default";
	AEGIS_TRY(aegis_yaml_labels_field(l, md, "labels", &m->labels));
	AEGIS_TRY(aegis_yaml_labels_field(l, md, "annotations", &m->annotations));
	AEGIS_TRY(aegis_yaml_str_field(l, md, "resourceVersion", &m->resource_version));
	aegis_yaml_path_pop(l, saved);
	m->cluster = l->cluster;
	m->source = l->source;
	m->line = obj->line;
	snprintf(l->obj, sizeof(l->obj), "%s %s/%s", kind, m->namespace_, m->name);
	return 0;
}

enum port_style {
	PORT_SE,  /* ServiceEntry: number, targetPort (int) */
	PORT_SVC, /* Service: port, targetPort (int or a port name) */
	PORT_EPS  /* EndpointSlice: port may be absent */
};

static int map_ports(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                     enum port_style st, const struct aegis_port **out, size_t *n_out)
{
	const struct aegis_ynode *seq;
	*out = NULL;
	*n_out = 0;
	AEGIS_TRY(aegis_yaml_get_seq(l, map, key, &seq));
	if (seq == NULL || seq->n == 0)
		return 0;
	struct aegis_port *ports = aegis_yaml_alloc_array(l, seq->n, sizeof(*ports));
	if (ports == NULL)
		return aegis_yaml_nomem(l, seq);
	const char *num_key = st == PORT_SE ? "number" : "port";
	size_t saved = aegis_yaml_path_key(l, key);
	for (size_t i = 0; i < seq->n; i++) {
		const struct aegis_ynode *item = seq->kids[i], *v;
		struct aegis_port *p = &ports[i];
		size_t at = aegis_yaml_path_index(l, i);
		AEGIS_TRY(aegis_yaml_want(l, item, NULL, AEGIS_YNODE_MAP));
		AEGIS_TRY(aegis_yaml_str_field(l, item, "name", &p->name));
		AEGIS_TRY(aegis_yaml_str_field(l, item, "protocol", &p->protocol));
		AEGIS_TRY(aegis_yaml_get_scalar(l, item, num_key, &v));
		if (v == NULL && st != PORT_EPS)
			return aegis_yaml_fail_key(l, num_key, item, AEGIS_EINVAL,
			                           "a port number is required");
		AEGIS_TRY(aegis_yaml_port_field(l, item, num_key, &p->number));
		AEGIS_TRY(aegis_yaml_get_scalar(l, item, "targetPort", &v));
		/* A Service's targetPort may name a container port; the name cannot be resolved here. */
		bool named = v != NULL && st == PORT_SVC && (v->str[0] < '0' || v->str[0] > '9');
		if (!named)
			AEGIS_TRY(aegis_yaml_port_field(l, item, "targetPort", &p->target_port));
		aegis_yaml_path_pop(l, at);
	}
	aegis_yaml_path_pop(l, saved);
	*out = ports;
	*n_out = seq->n;
	return 0;
}

/* A workload (ServiceEntry endpoint, WorkloadEntry spec). hostnames_ok: the address may be a DNS name
 * (DNS resolution, WorkloadEntry); otherwise it must be an IP or a unix:// path. */
static int map_workload(struct aegis_yaml_loader *l, const struct aegis_ynode *m, bool hostnames_ok,
                        struct aegis_workload *w)
{
	const struct aegis_ynode *v;
	AEGIS_TRY(aegis_yaml_get_scalar(l, m, "address", &v));
	AEGIS_TRY(aegis_yaml_str_field(l, m, "address", &w->address));
	const char *a = w->address;
	if (a[0] != '\0' && strncmp(a, "unix://", 7) != 0 && aegis_yaml_ip_family(a) == 0 &&
	    !(hostnames_ok && aegis_yaml_valid_host(a, false)))
		return aegis_yaml_fail_key(l, "address", v, AEGIS_EINVAL, "\"%.64s\" is not an IP address%s",
		                           a,
		                           hostnames_ok ? ", host name or unix:// path" : " or unix:// path");
	const struct aegis_ynode *pm;
	AEGIS_TRY(aegis_yaml_get_map(l, m, "ports", &pm));
	if (pm != NULL && pm->n > 0) {
		struct aegis_port_ref *refs = aegis_yaml_alloc_array(l, pm->n, sizeof(*refs));
		if (refs == NULL)
			return aegis_yaml_nomem(l, pm);
		size_t saved = aegis_yaml_path_key(l, "ports");
		for (size_t i = 0; i < pm->n; i++) {
			const struct aegis_ynode *k = pm->kids[2 * i];
			if (k->type != AEGIS_YNODE_SCALAR)
				return aegis_yaml_fail(l, k, AEGIS_EPARSE, "port names must be strings");
			/* The pairs are read in place: a lookup per key would be quadratic in a hostile map.
			 */
			v = pm->kids[2 * i + 1];
			if (v->type == AEGIS_YNODE_NULL)
				return aegis_yaml_fail_key(l, k->str, k, AEGIS_EINVAL,
				                           "a port number is required");
			AEGIS_TRY(aegis_yaml_u32_value(l, k->str, v, 1, 65535, &refs[i].number));
			refs[i].name = aegis_arena_strdup(&l->cfg->arena, k->str);
			if (refs[i].name == NULL)
				return aegis_yaml_nomem(l, k);
		}
		aegis_yaml_path_pop(l, saved);
		w->ports = refs;
		w->n_ports = pm->n;
	}
	AEGIS_TRY(aegis_yaml_labels_field(l, m, "labels", &w->labels));
	AEGIS_TRY(aegis_yaml_str_field(l, m, "network", &w->network));
	AEGIS_TRY(aegis_yaml_str_field(l, m, "locality", &w->locality));
	AEGIS_TRY(aegis_yaml_u32_field(l, m, "weight", 0, UINT32_MAX, &w->weight));
	AEGIS_TRY(aegis_yaml_str_field(l, m, "serviceAccount", &w->service_account));
	w->health = AEGIS_HEALTH_UNKNOWN;
	w->hostname = "";
	w->node_name = "";
	w->zone = "";
	w->target_pod = "";
	return 0;
}

/* Adds obj (size bytes) to output array s, doubling it in the arena as needed. */
static int append(struct aegis_yaml_loader *l, enum aegis_yaml_slot s, size_t *n, const void *obj,
                  size_t size)
{
	if (*n == l->cap[s]) {
		size_t nc = l->cap[s] ? l->cap[s] * 2 : 16;
		void *p = aegis_arena_grow(&l->cfg->arena, l->arr[s], *n, nc, size);
		if (p == NULL)
			return aegis_yaml_nomem(l, NULL);
		l->arr[s] = p;
		l->cap[s] = nc;
	}
	memcpy((char *)l->arr[s] + *n * size, obj, size);
	(*n)++;
	return 0;
}

/* ---- Istio kinds ---- */

static const struct aegis_yaml_enum se_locations[] = {
        {"MESH_EXTERNAL", AEGIS_SE_MESH_EXTERNAL},
        {"MESH_INTERNAL", AEGIS_SE_MESH_INTERNAL},
};

static const struct aegis_yaml_enum se_resolutions[] = {
        {"NONE", AEGIS_SE_RES_NONE},
        {"STATIC", AEGIS_SE_RES_STATIC},
        {"DNS", AEGIS_SE_RES_DNS},
        {"DNS_ROUND_ROBIN", AEGIS_SE_RES_DNS_ROUND_ROBIN},
};

static int map_service_entry(struct aegis_yaml_loader *l, const struct aegis_ynode *obj)
{
	struct aegis_service_entry se;
	memset(&se, 0, sizeof(se));
	AEGIS_TRY(map_meta(l, obj, "ServiceEntry", &se.meta));
	const struct aegis_ynode *spec, *v;
	AEGIS_TRY(aegis_yaml_get_map(l, obj, "spec", &spec));
	aegis_yaml_path_key(l, "spec");
	int loc = AEGIS_SE_MESH_EXTERNAL, res = AEGIS_SE_RES_NONE;
	AEGIS_TRY(AEGIS_YAML_ENUM_FIELD(l, spec, "location", se_locations, &loc));
	AEGIS_TRY(AEGIS_YAML_ENUM_FIELD(l, spec, "resolution", se_resolutions, &res));
	se.location = (enum aegis_se_location)loc;
	se.resolution = (enum aegis_se_resolution)res;
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "hosts", AEGIS_YCHECK_HOST, &se.hosts, &se.n_hosts));
	if (se.n_hosts == 0) {
		AEGIS_TRY(aegis_yaml_get(l, spec, "hosts", &v));
		return aegis_yaml_fail_key(l, "hosts",
		                           v      ? v
		                           : spec ? spec
		                                  : obj,
		                           AEGIS_EINVAL, "a ServiceEntry needs at least one host");
	}
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "addresses", AEGIS_YCHECK_ADDR, &se.addresses,
	                                   &se.n_addresses));
	AEGIS_TRY(map_ports(l, spec, "ports", PORT_SE, &se.ports, &se.n_ports));

	const struct aegis_ynode *eps;
	AEGIS_TRY(aegis_yaml_get_seq(l, spec, "endpoints", &eps));
	if (eps != NULL && eps->n > 0) {
		struct aegis_workload *w = aegis_yaml_alloc_array(l, eps->n, sizeof(*w));
		if (w == NULL)
			return aegis_yaml_nomem(l, eps);
		bool dns = se.resolution == AEGIS_SE_RES_DNS || se.resolution == AEGIS_SE_RES_DNS_ROUND_ROBIN;
		size_t saved = aegis_yaml_path_key(l, "endpoints");
		for (size_t i = 0; i < eps->n; i++) {
			size_t at = aegis_yaml_path_index(l, i);
			AEGIS_TRY(aegis_yaml_want(l, eps->kids[i], NULL, AEGIS_YNODE_MAP));
			AEGIS_TRY(map_workload(l, eps->kids[i], dns, &w[i]));
			aegis_yaml_path_pop(l, at);
		}
		aegis_yaml_path_pop(l, saved);
		se.endpoints = w;
		se.n_endpoints = eps->n;
	}
	const struct aegis_ynode *ws;
	AEGIS_TRY(aegis_yaml_get_map(l, spec, "workloadSelector", &ws));
	size_t saved = aegis_yaml_path_key(l, "workloadSelector");
	AEGIS_TRY(aegis_yaml_labels_field(l, ws, "labels", &se.workload_selector));
	aegis_yaml_path_pop(l, saved);
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "exportTo", AEGIS_YCHECK_NONE, &se.export_to,
	                                   &se.n_export_to));
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "subjectAltNames", AEGIS_YCHECK_NONE,
	                                   &se.subject_alt_names, &se.n_subject_alt_names));
	AEGIS_TRY(append(l, AEGIS_YSLOT_SE, &l->cfg->n_service_entries, &se, sizeof(se)));
	l->cfg->service_entries = l->arr[AEGIS_YSLOT_SE];
	return 0;
}

static int map_workload_entry(struct aegis_yaml_loader *l, const struct aegis_ynode *obj)
{
	struct aegis_workload_entry we;
	memset(&we, 0, sizeof(we));
	AEGIS_TRY(map_meta(l, obj, "WorkloadEntry", &we.meta));
	const struct aegis_ynode *spec;
	AEGIS_TRY(aegis_yaml_get_map(l, obj, "spec", &spec));
	aegis_yaml_path_key(l, "spec");
	AEGIS_TRY(map_workload(l, spec, true, &we.spec));
	AEGIS_TRY(append(l, AEGIS_YSLOT_WE, &l->cfg->n_workload_entries, &we, sizeof(we)));
	l->cfg->workload_entries = l->arr[AEGIS_YSLOT_WE];
	return 0;
}

/* Keys of an HTTP match that only an HTTP request can decide. */
static const char *const l7_keys[] = {"uri",     "scheme",      "method",        "authority",
                                      "headers", "queryParams", "withoutHeaders"};

static int map_match(struct aegis_yaml_loader *l, const struct aegis_ynode *m, struct aegis_route_match *rm)
{
	const struct aegis_ynode *v;
	AEGIS_TRY(aegis_yaml_port_field(l, m, "port", &rm->port));
	AEGIS_TRY(aegis_yaml_labels_field(l, m, "sourceLabels", &rm->source_labels));
	AEGIS_TRY(aegis_yaml_str_field(l, m, "sourceNamespace", &rm->source_namespace));
	AEGIS_TRY(aegis_yaml_strlist_field(l, m, "destinationSubnets", AEGIS_YCHECK_ADDR,
	                                   &rm->destination_subnets, &rm->n_destination_subnets));
	AEGIS_TRY(aegis_yaml_strlist_field(l, m, "sniHosts", AEGIS_YCHECK_HOST_OR_STAR, &rm->sni_hosts,
	                                   &rm->n_sni_hosts));
	for (size_t i = 0; i < sizeof(l7_keys) / sizeof(l7_keys[0]); i++) {
		AEGIS_TRY(aegis_yaml_get(l, m, l7_keys[i], &v));
		if (v != NULL)
			rm->has_l7 = true;
	}
	return 0;
}

static int map_dest(struct aegis_yaml_loader *l, const struct aegis_ynode *m, struct aegis_route_dest *d)
{
	const struct aegis_ynode *dst, *port;
	AEGIS_TRY(aegis_yaml_get_map(l, m, "destination", &dst));
	if (dst == NULL)
		return aegis_yaml_fail_key(l, "destination", m, AEGIS_EINVAL, "a route needs a destination");
	size_t saved = aegis_yaml_path_key(l, "destination"), base = l->path_len;
	AEGIS_TRY(aegis_yaml_str_field(l, dst, "host", &d->host));
	if (d->host[0] == '\0')
		return aegis_yaml_fail_key(l, "host", dst, AEGIS_EINVAL, "destination.host is required");
	const struct aegis_ynode *hv;
	AEGIS_TRY(aegis_yaml_get(l, dst, "host", &hv));
	aegis_yaml_path_key(l, "host");
	AEGIS_TRY(aegis_yaml_check_str(l, hv, (char *)d->host, AEGIS_YCHECK_HOST));
	aegis_yaml_path_pop(l, base);
	AEGIS_TRY(aegis_yaml_str_field(l, dst, "subset", &d->subset));
	AEGIS_TRY(aegis_yaml_get_map(l, dst, "port", &port));
	aegis_yaml_path_key(l, "port");
	AEGIS_TRY(aegis_yaml_port_field(l, port, "number", &d->port));
	aegis_yaml_path_pop(l, saved);
	uint32_t w = UINT32_MAX;
	AEGIS_TRY(aegis_yaml_u32_field(l, m, "weight", 0, INT32_MAX, &w));
	d->weight = w == UINT32_MAX ? -1 : (int32_t)w;
	return 0;
}

/* Applies f to every item (a mapping) of the sequence map[key], with the path kept for messages. */
static int map_items(struct aegis_yaml_loader *l, const struct aegis_ynode *seq, const char *key, void *arr,
                     size_t size, int (*f)(struct aegis_yaml_loader *, const struct aegis_ynode *, void *))
{
	size_t saved = aegis_yaml_path_key(l, key);
	for (size_t i = 0; i < seq->n; i++) {
		size_t at = aegis_yaml_path_index(l, i);
		AEGIS_TRY(aegis_yaml_want(l, seq->kids[i], NULL, AEGIS_YNODE_MAP));
		AEGIS_TRY(f(l, seq->kids[i], (char *)arr + i * size));
		aegis_yaml_path_pop(l, at);
	}
	aegis_yaml_path_pop(l, saved);
	return 0;
}

static int match_cb(struct aegis_yaml_loader *l, const struct aegis_ynode *m, void *out)
{
	struct aegis_route_match *rm = out;
	return map_match(l, m, rm);
}

static int dest_cb(struct aegis_yaml_loader *l, const struct aegis_ynode *m, void *out)
{
	struct aegis_route_dest *d = out;
	return map_dest(l, m, d);
}

static int map_route(struct aegis_yaml_loader *l, const struct aegis_ynode *m, enum aegis_route_kind kind,
                     struct aegis_route *r)
{
	const struct aegis_ynode *seq;
	r->kind = kind;
	AEGIS_TRY(aegis_yaml_str_field(l, m, "name", &r->name));
	AEGIS_TRY(aegis_yaml_get_seq(l, m, "match", &seq));
	if (seq != NULL && seq->n > 0) {
		struct aegis_route_match *rm = aegis_yaml_alloc_array(l, seq->n, sizeof(*rm));
		if (rm == NULL)
			return aegis_yaml_nomem(l, seq);
		for (size_t i = 0; i < seq->n; i++)
			rm[i].source_namespace = "";
		AEGIS_TRY(map_items(l, seq, "match", rm, sizeof(*rm), match_cb));
		r->matches = rm;
		r->n_matches = seq->n;
	}
	AEGIS_TRY(aegis_yaml_get_seq(l, m, "route", &seq));
	if (seq != NULL && seq->n > 0) {
		struct aegis_route_dest *d = aegis_yaml_alloc_array(l, seq->n, sizeof(*d));
		if (d == NULL)
			return aegis_yaml_nomem(l, seq);
		AEGIS_TRY(map_items(l, seq, "route", d, sizeof(*d), dest_cb));
		r->dests = d;
		r->n_dests = seq->n;
	}
	AEGIS_TRY(aegis_yaml_duration_field(l, m, "timeout", &r->timeout_ms));
	const struct aegis_ynode *retries;
	AEGIS_TRY(aegis_yaml_get_map(l, m, "retries", &retries));
	size_t saved = aegis_yaml_path_key(l, "retries");
	AEGIS_TRY(aegis_yaml_u32_field(l, retries, "attempts", 0, INT32_MAX, &r->retries));
	aegis_yaml_path_pop(l, saved);
	return 0;
}

static int map_virtual_service(struct aegis_yaml_loader *l, const struct aegis_ynode *obj)
{
	static const char *const route_keys[] = {"http", "tcp", "tls"};
	static const enum aegis_route_kind route_kinds[] = {AEGIS_ROUTE_HTTP, AEGIS_ROUTE_TCP,
	                                                    AEGIS_ROUTE_TLS};
	struct aegis_virtual_service vs;
	memset(&vs, 0, sizeof(vs));
	AEGIS_TRY(map_meta(l, obj, "VirtualService", &vs.meta));
	const struct aegis_ynode *spec, *seqs[3];
	AEGIS_TRY(aegis_yaml_get_map(l, obj, "spec", &spec));
	aegis_yaml_path_key(l, "spec");
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "hosts", AEGIS_YCHECK_HOST_OR_STAR, &vs.hosts,
	                                   &vs.n_hosts));
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "gateways", AEGIS_YCHECK_NONE, &vs.gateways,
	                                   &vs.n_gateways));
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "exportTo", AEGIS_YCHECK_NONE, &vs.export_to,
	                                   &vs.n_export_to));
	size_t total = 0;
	for (size_t k = 0; k < 3; k++) {
		AEGIS_TRY(aegis_yaml_get_seq(l, spec, route_keys[k], &seqs[k]));
		total += seqs[k] ? seqs[k]->n : 0;
	}
	struct aegis_route *routes = aegis_yaml_alloc_array(l, total, sizeof(*routes));
	if (total > 0 && routes == NULL)
		return aegis_yaml_nomem(l, spec);
	size_t n = 0;
	for (size_t k = 0; k < 3; k++) {
		if (seqs[k] == NULL)
			continue;
		size_t saved = aegis_yaml_path_key(l, route_keys[k]);
		for (size_t i = 0; i < seqs[k]->n; i++, n++) {
			size_t at = aegis_yaml_path_index(l, i);
			AEGIS_TRY(aegis_yaml_want(l, seqs[k]->kids[i], NULL, AEGIS_YNODE_MAP));
			AEGIS_TRY(map_route(l, seqs[k]->kids[i], route_kinds[k], &routes[n]));
			aegis_yaml_path_pop(l, at);
		}
		aegis_yaml_path_pop(l, saved);
	}
	vs.routes = routes;
	vs.n_routes = n;
	AEGIS_TRY(append(l, AEGIS_YSLOT_VS, &l->cfg->n_virtual_services, &vs, sizeof(vs)));
	l->cfg->virtual_services = l->arr[AEGIS_YSLOT_VS];
	return 0;
}

static const struct aegis_yaml_enum tls_modes[] = {
        {"DISABLE", AEGIS_TLS_DISABLE},
        {"SIMPLE", AEGIS_TLS_SIMPLE},
        {"MUTUAL", AEGIS_TLS_MUTUAL},
        {"ISTIO_MUTUAL", AEGIS_TLS_ISTIO_MUTUAL},
};

static const struct aegis_yaml_enum lb_names[] = {
        {"UNSPECIFIED", AEGIS_LB_UNSET},
        {"ROUND_ROBIN", AEGIS_LB_ROUND_ROBIN},
        {"LEAST_REQUEST", AEGIS_LB_LEAST_REQUEST},
        {"LEAST_CONN", AEGIS_LB_LEAST_REQUEST}, /* the deprecated name of LEAST_REQUEST */
        {"RANDOM", AEGIS_LB_RANDOM},
        {"PASSTHROUGH", AEGIS_LB_PASSTHROUGH},
};

static int failover_cb(struct aegis_yaml_loader *l, const struct aegis_ynode *m, void *out)
{
	struct aegis_locality_failover *f = out;
	AEGIS_TRY(aegis_yaml_str_field(l, m, "from", &f->from));
	return aegis_yaml_str_field(l, m, "to", &f->to);
}

static int map_load_balancer(struct aegis_yaml_loader *l, const struct aegis_ynode *lb,
                             struct aegis_traffic_policy *p)
{
	const struct aegis_ynode *loc, *seq;
	int simple = AEGIS_LB_UNSET;
	AEGIS_TRY(AEGIS_YAML_ENUM_FIELD(l, lb, "simple", lb_names, &simple));
	p->lb = (enum aegis_lb)simple;
	AEGIS_TRY(aegis_yaml_get_map(l, lb, "localityLbSetting", &loc));
	if (loc == NULL)
		return 0;
	size_t saved = aegis_yaml_path_key(l, "localityLbSetting");
	p->locality_lb_enabled = true;
	p->locality_lb_set = true;
	AEGIS_TRY(aegis_yaml_bool_field(l, loc, "enabled", &p->locality_lb_enabled));
	AEGIS_TRY(aegis_yaml_get_seq(l, loc, "failover", &seq));
	if (seq != NULL && seq->n > 0) {
		struct aegis_locality_failover *f = aegis_yaml_alloc_array(l, seq->n, sizeof(*f));
		if (f == NULL)
			return aegis_yaml_nomem(l, seq);
		AEGIS_TRY(map_items(l, seq, "failover", f, sizeof(*f), failover_cb));
		p->failover = f;
		p->n_failover = seq->n;
	}
	AEGIS_TRY(aegis_yaml_strlist_field(l, loc, "failoverPriority", AEGIS_YCHECK_NONE,
	                                   &p->failover_priority, &p->n_failover_priority));
	aegis_yaml_path_pop(l, saved);
	return 0;
}

static int map_outlier(struct aegis_yaml_loader *l, const struct aegis_ynode *od,
                       struct aegis_traffic_policy *p)
{
	/* consecutive5xxErrors replaced consecutiveErrors; a gateway-errors-only policy still ejects. */
	static const char *const keys[] = {"consecutive5xxErrors", "consecutiveErrors",
	                                   "consecutiveGatewayErrors"};
	const struct aegis_ynode *v;
	for (size_t i = 0; i < 3; i++) {
		AEGIS_TRY(aegis_yaml_get(l, od, keys[i], &v));
		if (v != NULL) {
			AEGIS_TRY(aegis_yaml_u32_field(l, od, keys[i], 0, UINT32_MAX,
			                               &p->outlier_consecutive_errors));
			break;
		}
	}
	AEGIS_TRY(aegis_yaml_duration_field(l, od, "interval", &p->outlier_interval_ms));
	AEGIS_TRY(aegis_yaml_duration_field(l, od, "baseEjectionTime", &p->outlier_base_ejection_ms));
	return aegis_yaml_u32_field(l, od, "maxEjectionPercent", 0, 100, &p->outlier_max_ejection_percent);
}

static int map_policy(struct aegis_yaml_loader *l, const struct aegis_ynode *m, const char *key,
                      struct aegis_traffic_policy *p)
{
	const struct aegis_ynode *tp, *sub, *tcp;
	p->sni = "";
	AEGIS_TRY(aegis_yaml_get_map(l, m, key, &tp));
	if (tp == NULL)
		return 0;
	p->present = true;
	size_t saved = aegis_yaml_path_key(l, key), inner;

	AEGIS_TRY(aegis_yaml_get_map(l, tp, "tls", &sub));
	inner = aegis_yaml_path_key(l, "tls");
	int mode = AEGIS_TLS_UNSET;
	AEGIS_TRY(AEGIS_YAML_ENUM_FIELD(l, sub, "mode", tls_modes, &mode));
	p->tls_mode = (enum aegis_tls_mode)mode;
	AEGIS_TRY(aegis_yaml_str_field(l, sub, "sni", &p->sni));
	AEGIS_TRY(aegis_yaml_strlist_field(l, sub, "subjectAltNames", AEGIS_YCHECK_NONE,
	                                   &p->tls_subject_alt_names, &p->n_tls_subject_alt_names));
	aegis_yaml_path_pop(l, inner);

	AEGIS_TRY(aegis_yaml_get_map(l, tp, "loadBalancer", &sub));
	inner = aegis_yaml_path_key(l, "loadBalancer");
	AEGIS_TRY(map_load_balancer(l, sub, p));
	aegis_yaml_path_pop(l, inner);

	AEGIS_TRY(aegis_yaml_get_map(l, tp, "connectionPool", &sub));
	inner = aegis_yaml_path_key(l, "connectionPool");
	AEGIS_TRY(aegis_yaml_get_map(l, sub, "tcp", &tcp));
	aegis_yaml_path_key(l, "tcp");
	AEGIS_TRY(aegis_yaml_duration_field(l, tcp, "connectTimeout", &p->connect_timeout_ms));
	AEGIS_TRY(aegis_yaml_u32_field(l, tcp, "maxConnections", 0, INT32_MAX, &p->max_connections));
	aegis_yaml_path_pop(l, inner);

	AEGIS_TRY(aegis_yaml_get_map(l, tp, "outlierDetection", &sub));
	inner = aegis_yaml_path_key(l, "outlierDetection");
	AEGIS_TRY(map_outlier(l, sub, p));
	aegis_yaml_path_pop(l, inner);
	aegis_yaml_path_pop(l, saved);
	return 0;
}

static int subset_cb(struct aegis_yaml_loader *l, const struct aegis_ynode *m, void *out)
{
	struct aegis_subset *s = out;
	AEGIS_TRY(aegis_yaml_str_field(l, m, "name", &s->name));
	if (s->name[0] == '\0')
		return aegis_yaml_fail_key(l, "name", m, AEGIS_EINVAL, "a subset needs a name");
	AEGIS_TRY(aegis_yaml_labels_field(l, m, "labels", &s->labels));
	return map_policy(l, m, "trafficPolicy", &s->policy);
}

static int map_destination_rule(struct aegis_yaml_loader *l, const struct aegis_ynode *obj)
{
	struct aegis_destination_rule dr;
	memset(&dr, 0, sizeof(dr));
	AEGIS_TRY(map_meta(l, obj, "DestinationRule", &dr.meta));
	const struct aegis_ynode *spec, *v;
	AEGIS_TRY(aegis_yaml_get_map(l, obj, "spec", &spec));
	aegis_yaml_path_key(l, "spec");
	AEGIS_TRY(aegis_yaml_get_scalar(l, spec, "host", &v));
	AEGIS_TRY(aegis_yaml_str_field(l, spec, "host", &dr.host));
	if (dr.host[0] == '\0')
		return aegis_yaml_fail_key(l, "host", spec ? spec : obj, AEGIS_EINVAL,
		                           "a DestinationRule needs a host");
	size_t saved = aegis_yaml_path_key(l, "host");
	AEGIS_TRY(aegis_yaml_check_str(l, v, (char *)dr.host, AEGIS_YCHECK_HOST));
	aegis_yaml_path_pop(l, saved);
	AEGIS_TRY(map_policy(l, spec, "trafficPolicy", &dr.policy));
	const struct aegis_ynode *seq;
	AEGIS_TRY(aegis_yaml_get_seq(l, spec, "subsets", &seq));
	if (seq != NULL && seq->n > 0) {
		struct aegis_subset *s = aegis_yaml_alloc_array(l, seq->n, sizeof(*s));
		if (s == NULL)
			return aegis_yaml_nomem(l, seq);
		AEGIS_TRY(map_items(l, seq, "subsets", s, sizeof(*s), subset_cb));
		dr.subsets = s;
		dr.n_subsets = seq->n;
	}
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "exportTo", AEGIS_YCHECK_NONE, &dr.export_to,
	                                   &dr.n_export_to));
	AEGIS_TRY(append(l, AEGIS_YSLOT_DR, &l->cfg->n_destination_rules, &dr, sizeof(dr)));
	l->cfg->destination_rules = l->arr[AEGIS_YSLOT_DR];
	return 0;
}

/* ---- Kubernetes kinds ---- */

static const struct aegis_yaml_enum svc_types[] = {
        {"ClusterIP", AEGIS_SVC_CLUSTER_IP},
        {"NodePort", AEGIS_SVC_NODE_PORT},
        {"LoadBalancer", AEGIS_SVC_LOAD_BALANCER},
        {"ExternalName", AEGIS_SVC_EXTERNAL_NAME},
};

static int map_service(struct aegis_yaml_loader *l, const struct aegis_ynode *obj)
{
	struct aegis_k8s_service svc;
	memset(&svc, 0, sizeof(svc));
	AEGIS_TRY(map_meta(l, obj, "Service", &svc.meta));
	const struct aegis_ynode *spec, *v;
	AEGIS_TRY(aegis_yaml_get_map(l, obj, "spec", &spec));
	aegis_yaml_path_key(l, "spec");
	int type = AEGIS_SVC_CLUSTER_IP;
	AEGIS_TRY(AEGIS_YAML_ENUM_FIELD(l, spec, "type", svc_types, &type));
	svc.type = (enum aegis_svc_type)type;

	const char *cip;
	const char *const *ips;
	size_t n_ips;
	AEGIS_TRY(aegis_yaml_get_scalar(l, spec, "clusterIP", &v));
	AEGIS_TRY(aegis_yaml_str_field(l, spec, "clusterIP", &cip));
	if (cip[0] != '\0' && strcmp(cip, "None") != 0 && aegis_yaml_ip_family(cip) == 0)
		return aegis_yaml_fail_key(l, "clusterIP", v, AEGIS_EINVAL,
		                           "\"%.64s\" is not an IP address or None", cip);
	svc.headless = strcmp(cip, "None") == 0;
	/* spec.clusterIPs (dual stack) wins over spec.clusterIP, whose value it repeats first. */
	AEGIS_TRY(aegis_yaml_get_seq(l, spec, "clusterIPs", &v));
	AEGIS_TRY(aegis_yaml_strlist_field(l, spec, "clusterIPs", AEGIS_YCHECK_NONE, &ips, &n_ips));
	const char **keep = aegis_yaml_alloc_array(l, n_ips ? n_ips : 1, sizeof(*keep));
	if (keep == NULL)
		return aegis_yaml_nomem(l, spec);
	size_t n_keep = 0;
	if (n_ips == 0 && cip[0] != '\0' && !svc.headless)
		keep[n_keep++] = cip;
	for (size_t i = 0; i < n_ips; i++) {
		if (strcmp(ips[i], "None") == 0) {
			svc.headless = true;
			continue;
		}
		if (aegis_yaml_ip_family(ips[i]) == 0)
			return aegis_yaml_fail_key(l, "clusterIPs", v->kids[i], AEGIS_EINVAL,
			                           "\"%.64s\" is not an IP address", ips[i]);
		keep[n_keep++] = ips[i];
	}
	svc.cluster_ips = n_keep ? keep : NULL;
	svc.n_cluster_ips = n_keep;

	AEGIS_TRY(aegis_yaml_get_scalar(l, spec, "externalName", &v));
	AEGIS_TRY(aegis_yaml_str_field(l, spec, "externalName", &svc.external_name));
	if (svc.external_name[0] != '\0') {
		size_t saved = aegis_yaml_path_key(l, "externalName");
		AEGIS_TRY(aegis_yaml_check_str(l, v, (char *)svc.external_name, AEGIS_YCHECK_HOST));
		aegis_yaml_path_pop(l, saved);
	}
	AEGIS_TRY(map_ports(l, spec, "ports", PORT_SVC, &svc.ports, &svc.n_ports));
	AEGIS_TRY(aegis_yaml_labels_field(l, spec, "selector", &svc.selector));
	AEGIS_TRY(append(l, AEGIS_YSLOT_SVC, &l->cfg->n_services, &svc, sizeof(svc)));
	l->cfg->services = l->arr[AEGIS_YSLOT_SVC];
	return 0;
}

static int slice_endpoint(struct aegis_yaml_loader *l, const struct aegis_ynode *m, const char *type,
                          struct aegis_slice_endpoint *e)
{
	const struct aegis_ynode *seq, *sub;
	AEGIS_TRY(aegis_yaml_get_seq(l, m, "addresses", &seq));
	AEGIS_TRY(aegis_yaml_strlist_field(l, m, "addresses", AEGIS_YCHECK_NONE, &e->addresses,
	                                   &e->n_addresses));
	for (size_t i = 0; i < e->n_addresses; i++) {
		char *a = (char *)e->addresses[i];
		int fam = aegis_yaml_ip_family(a);
		bool ok = strcmp(type, "IPv4") == 0   ? fam == 4
		          : strcmp(type, "IPv6") == 0 ? fam == 6
		          : strcmp(type, "FQDN") == 0 ? aegis_yaml_valid_host(a, false)
		                                      : fam != 0;
		if (!ok)
			return aegis_yaml_fail_key(l, "addresses", seq->kids[i], AEGIS_EINVAL,
			                           "\"%.64s\" is not %s address", a,
			                           strcmp(type, "FQDN") == 0   ? "an FQDN"
			                           : strcmp(type, "IPv6") == 0 ? "an IPv6"
			                           : strcmp(type, "IPv4") == 0 ? "an IPv4"
			                                                       : "an IP");
		if (strcmp(type, "FQDN") == 0)
			aegis_yaml_lower(a);
	}
	AEGIS_TRY(aegis_yaml_get_map(l, m, "conditions", &sub));
	size_t saved = aegis_yaml_path_key(l, "conditions");
	/* API semantics: absent ready means ready, absent serving follows ready, absent terminating is false.
	 */
	e->ready = true;
	AEGIS_TRY(aegis_yaml_bool_field(l, sub, "ready", &e->ready));
	e->serving = e->ready;
	AEGIS_TRY(aegis_yaml_bool_field(l, sub, "serving", &e->serving));
	e->terminating = false;
	AEGIS_TRY(aegis_yaml_bool_field(l, sub, "terminating", &e->terminating));
	aegis_yaml_path_pop(l, saved);
	AEGIS_TRY(aegis_yaml_str_field(l, m, "hostname", &e->hostname));
	AEGIS_TRY(aegis_yaml_str_field(l, m, "nodeName", &e->node_name));
	AEGIS_TRY(aegis_yaml_str_field(l, m, "zone", &e->zone));
	AEGIS_TRY(aegis_yaml_get_map(l, m, "targetRef", &sub));
	saved = aegis_yaml_path_key(l, "targetRef");
	AEGIS_TRY(aegis_yaml_str_field(l, sub, "kind", &e->target_kind));
	AEGIS_TRY(aegis_yaml_str_field(l, sub, "name", &e->target_name));
	AEGIS_TRY(aegis_yaml_str_field(l, sub, "namespace", &e->target_namespace));
	aegis_yaml_path_pop(l, saved);
	return 0;
}

static int map_endpoint_slice(struct aegis_yaml_loader *l, const struct aegis_ynode *obj)
{
	struct aegis_endpoint_slice es;
	memset(&es, 0, sizeof(es));
	AEGIS_TRY(map_meta(l, obj, "EndpointSlice", &es.meta));
	es.service_name = "";
	for (size_t i = 0; i < es.meta.labels.n; i++)
		if (strcmp(es.meta.labels.items[i].key, "kubernetes.io/service-name") == 0)
			es.service_name = es.meta.labels.items[i].value;
	const struct aegis_ynode *v, *seq;
	AEGIS_TRY(aegis_yaml_get_scalar(l, obj, "addressType", &v));
	AEGIS_TRY(aegis_yaml_str_field(l, obj, "addressType", &es.address_type));
	const char *t = es.address_type;
	if (t[0] != '\0' && strcmp(t, "IPv4") != 0 && strcmp(t, "IPv6") != 0 && strcmp(t, "FQDN") != 0)
		return aegis_yaml_fail_key(l, "addressType", v, AEGIS_EINVAL,
		                           "unknown value \"%.64s\" (expected one of IPv4, IPv6, FQDN)", t);
	AEGIS_TRY(map_ports(l, obj, "ports", PORT_EPS, &es.ports, &es.n_ports));
	AEGIS_TRY(aegis_yaml_get_seq(l, obj, "endpoints", &seq));
	if (seq != NULL && seq->n > 0) {
		struct aegis_slice_endpoint *e = aegis_yaml_alloc_array(l, seq->n, sizeof(*e));
		if (e == NULL)
			return aegis_yaml_nomem(l, seq);
		size_t saved = aegis_yaml_path_key(l, "endpoints");
		for (size_t i = 0; i < seq->n; i++) {
			size_t at = aegis_yaml_path_index(l, i);
			AEGIS_TRY(aegis_yaml_want(l, seq->kids[i], NULL, AEGIS_YNODE_MAP));
			AEGIS_TRY(slice_endpoint(l, seq->kids[i], t, &e[i]));
			aegis_yaml_path_pop(l, at);
		}
		aegis_yaml_path_pop(l, saved);
		es.endpoints = e;
		es.n_endpoints = seq->n;
	}
	AEGIS_TRY(append(l, AEGIS_YSLOT_EPS, &l->cfg->n_endpoint_slices, &es, sizeof(es)));
	l->cfg->endpoint_slices = l->arr[AEGIS_YSLOT_EPS];
	return 0;
}

/* ---- documents ---- */

struct kind_map {
	const char *api_version;
	const char *kind;
	int (*map)(struct aegis_yaml_loader *l, const struct aegis_ynode *obj);
};

static const struct kind_map kinds[] = {
        {"networking.istio.io/v1alpha3", "ServiceEntry", map_service_entry},
        {"networking.istio.io/v1beta1", "ServiceEntry", map_service_entry},
        {"networking.istio.io/v1", "ServiceEntry", map_service_entry},
        {"networking.istio.io/v1alpha3", "VirtualService", map_virtual_service},
        {"networking.istio.io/v1beta1", "VirtualService", map_virtual_service},
        {"networking.istio.io/v1", "VirtualService", map_virtual_service},
        {"networking.istio.io/v1alpha3", "DestinationRule", map_destination_rule},
        {"networking.istio.io/v1beta1", "DestinationRule", map_destination_rule},
        {"networking.istio.io/v1", "DestinationRule", map_destination_rule},
        {"networking.istio.io/v1alpha3", "WorkloadEntry", map_workload_entry},
        {"networking.istio.io/v1beta1", "WorkloadEntry", map_workload_entry},
        {"networking.istio.io/v1", "WorkloadEntry", map_workload_entry},
        {"v1", "Service", map_service},
        {"discovery.k8s.io/v1", "EndpointSlice", map_endpoint_slice},
};

static void reset_context(struct aegis_yaml_loader *l)
{
	l->obj[0] = '\0';
	aegis_yaml_path_pop(l, 0);
}

static bool is_list_kind(const char *kind)
{
	size_t n = strlen(kind);
	return n >= 4 && strcmp(kind + n - 4, "List") == 0;
}

static int map_object(struct aegis_yaml_loader *l, const struct aegis_ynode *obj, bool top)
{
	const struct aegis_ynode *av, *kind;
	reset_context(l);
	AEGIS_TRY(aegis_yaml_get_scalar(l, obj, "apiVersion", &av));
	AEGIS_TRY(aegis_yaml_get_scalar(l, obj, "kind", &kind));
	if (kind == NULL)
		return aegis_yaml_fail(l, obj, AEGIS_EINVAL,
		                       "missing kind (a Kubernetes object needs apiVersion and kind)");
	if (av == NULL)
		return aegis_yaml_fail(l, obj, AEGIS_EINVAL, "missing apiVersion for kind %.64s", kind->str);
	/* `kubectl get -o yaml` wraps several objects in `kind: List`; the API's own XxxList looks the same.
	 */
	if (top && is_list_kind(kind->str)) {
		const struct aegis_ynode *items;
		AEGIS_TRY(aegis_yaml_get_seq(l, obj, "items", &items));
		for (size_t i = 0; items != NULL && i < items->n; i++) {
			reset_context(l);
			aegis_yaml_path_key(l, "items");
			aegis_yaml_path_index(l, i);
			AEGIS_TRY(aegis_yaml_want(l, items->kids[i], NULL, AEGIS_YNODE_MAP));
			AEGIS_TRY(map_object(l, items->kids[i], false));
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind->str, kinds[i].kind) == 0 && strcmp(av->str, kinds[i].api_version) == 0)
			return kinds[i].map(l, obj);
	AEGIS_LOG(AEGIS_LOG_DEBUG, "skipping resource of an unsupported kind", LKV_S("apiVersion", av->str),
	          LKV_S("kind", kind->str), LKV_S("file", l->source), LKV_I("line", obj->line));
	return 0;
}

/* cluster.yaml: `name`, `network`, `locality`, nothing else needed. The same cluster may be declared by
 * several directories, but never with different attributes. */
static int map_cluster(struct aegis_yaml_loader *l, const struct aegis_ynode *root)
{
	const struct aegis_ynode *v;
	struct aegis_cluster_info ci;
	AEGIS_TRY(aegis_yaml_get(l, root, "kind", &v));
	if (v != NULL)
		return aegis_yaml_fail(
		        l, v, AEGIS_EINVAL,
		        "cluster.yaml holds the cluster's name, network and locality, not Kubernetes "
		        "objects");
	if (l->cluster_out != NULL)
		return aegis_yaml_fail(l, root, AEGIS_EINVAL, "cluster.yaml declares more than one cluster");
	AEGIS_TRY(aegis_yaml_str_field(l, root, "name", &ci.name));
	if (ci.name[0] == '\0')
		return aegis_yaml_fail_key(l, "name", root, AEGIS_EINVAL,
		                           "cluster.yaml needs a cluster name");
	AEGIS_TRY(aegis_yaml_str_field(l, root, "network", &ci.network));
	AEGIS_TRY(aegis_yaml_str_field(l, root, "locality", &ci.locality));
	ci.source = l->source;
	l->cluster_out = ci.name;
	for (size_t i = 0; i < l->cfg->n_clusters; i++) {
		const struct aegis_cluster_info *c = &l->cfg->clusters[i];
		if (strcmp(c->name, ci.name) != 0)
			continue;
		if (strcmp(c->network, ci.network) != 0 || strcmp(c->locality, ci.locality) != 0)
			return aegis_yaml_fail(l, root, AEGIS_EEXIST,
			                       "cluster %.64s is already declared in %.100s with another %s",
			                       ci.name, c->source,
			                       strcmp(c->network, ci.network) != 0 ? "network" : "locality");
		return 0;
	}
	AEGIS_TRY(append(l, AEGIS_YSLOT_CLUSTER, &l->cfg->n_clusters, &ci, sizeof(ci)));
	l->cfg->clusters = l->arr[AEGIS_YSLOT_CLUSTER];
	return 0;
}

int aegis_yaml_map_document(struct aegis_yaml_loader *l, const struct aegis_ynode *root)
{
	reset_context(l);
	if (root == NULL || root->type == AEGIS_YNODE_NULL)
		return 0;
	if (root->type != AEGIS_YNODE_MAP)
		return aegis_yaml_fail(l, root, AEGIS_EPARSE,
		                       "a document must be a mapping (a Kubernetes object), found %s",
		                       aegis_yaml_type_name(root->type));
	if (l->cluster_file)
		return map_cluster(l, root);
	return map_object(l, root, true);
}
