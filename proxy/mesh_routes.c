/* The mesh routing table: see mesh_routes.h and docs/mesh.md.
 *
 * Everything the table holds lives in one arena. Build-time arrays grow by doubling inside that arena (the
 * abandoned copies cost at most as much as the final ones); a table is built once per configuration, off
 * the loop thread, so this trades a little memory for a builder with no second allocator. */
#include "mesh_routes.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "aegis/limits.h"
#include "aegis/log.h"
#include "aegis/vip.h"
#include "mesh_outlier.h"

#define ROUTES_MAX_BYTES (256u << 20)
#define PRIO_ZONE        0
#define PRIO_REGION      1
#define PRIO_FAILOVER    2
#define PRIO_REST        3

#define TRY(x)                                                                                               \
	do {                                                                                                 \
		int rc_ = (x);                                                                               \
		if (rc_ != 0)                                                                                \
			return rc_;                                                                          \
	} while (0)

/* One VIP:port, sorted for binary search. */
struct vip {
	uint8_t family;
	uint8_t ip[16];
	uint16_t port;
	uint32_t route; /* index into routes */
};

struct aegis_routes {
	atomic_uint refs;
	struct aegis_arena arena;
	struct vip *vips;
	size_t n_vips;
	struct aegis_routes_route *routes;
	size_t n_routes;
	struct aegis_routes_cluster *clusters;
	size_t n_clusters;
	struct aegis_routes_service *services;
	size_t n_services;
};

/* A service while building: every object that declares the host. */
struct bsvc {
	const char *host;
	const char *ns;
	const struct aegis_service_entry **ses;
	size_t n_ses;
	const struct aegis_k8s_service **k8s;
	size_t n_k8s;
};

struct builder {
	const struct aegis_config *cfg;
	const struct aegis_routes_opts *opts;
	struct aegis_routes *t;
	struct aegis_diag *diag;
	struct bsvc *svcs;
	size_t n_svcs;
	char region[128]; /* this sidecar's locality, split */
	char zone[128];
};

/* ---- small helpers ------------------------------------------------------------------------------------ */

/* Appends one zeroed element to an arena array whose capacity is the count rounded up to a power of two. */
static void *push(struct aegis_arena *a, void **arr, size_t *n, size_t elem)
{
	if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
		void *nv = aegis_arena_grow(a, *arr, *n, *n == 0 ? 4 : *n * 2, elem);
		if (nv == NULL)
			return NULL;
		*arr = nv;
	}
	void *e = (char *)*arr + *n * elem;
	memset(e, 0, elem);
	(*n)++;
	return e;
}

static bool labels_has(const struct aegis_labels *have, const char *key, const char *value)
{
	for (size_t j = 0; j < have->n; j++)
		if (strcmp(key, have->items[j].key) == 0 && strcmp(value, have->items[j].value) == 0)
			return true;
	return false;
}

static bool labels_subset(const struct aegis_labels *want, const struct aegis_labels *have)
{
	for (size_t i = 0; i < want->n; i++)
		if (!labels_has(have, want->items[i].key, want->items[i].value))
			return false;
	return true;
}

int aegis_routes_addr_parse(const char *ip, uint16_t port, struct aegis_routes_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(ip);
	if (len >= sizeof(buf))
		return AEGIS_EINVAL;
	memcpy(buf, ip, len + 1);
	/* A host CIDR (/32, /128) is one address; a wider CIDR is not a VIP we can route. */
	char *slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	memset(a, 0, sizeof(*a));
	a->port = port;
	if (inet_pton(AF_INET, buf, a->ip) == 1) {
		if (slash != NULL && strcmp(slash + 1, "32") != 0)
			return AEGIS_EINVAL;
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, a->ip) == 1) {
		if (slash != NULL && strcmp(slash + 1, "128") != 0)
			return AEGIS_EINVAL;
		a->family = AF_INET6;
		return 0;
	}
	return AEGIS_EINVAL;
}

static int vip_cmp(const void *pa, const void *pb)
{
	const struct vip *a = pa, *b = pb;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	int c = memcmp(a->ip, b->ip, 16);
	if (c != 0)
		return c;
	return a->port < b->port ? -1 : a->port > b->port;
}

/* "reviews" in namespace default -> "reviews.default.svc.cluster.local"; a name with a dot is already
 * qualified (Istio's rule for VirtualService and DestinationRule hosts). */
static const char *qualify(struct builder *b, const char *host, const char *ns)
{
	if (strchr(host, '.') != NULL || strcmp(host, "*") == 0)
		return host;
	char buf[600];
	const char *dom = b->opts->cluster_domain ? b->opts->cluster_domain : "cluster.local";
	snprintf(buf, sizeof(buf), "%s.%s.svc.%s", host, ns, dom);
	return aegis_arena_strdup(&b->t->arena, buf);
}

/* Does a VirtualService/DestinationRule host pattern cover host? */
static bool host_matches(const char *pattern, const char *host)
{
	if (strcmp(pattern, host) == 0 || strcmp(pattern, "*") == 0)
		return true;
	if (pattern[0] == '*' && pattern[1] == '.') {
		size_t pl = strlen(pattern + 1), hl = strlen(host);
		return hl > pl && strcmp(host + hl - pl, pattern + 1) == 0;
	}
	return false;
}

static struct bsvc *find_svc(struct builder *b, const char *host)
{
	for (size_t i = 0; i < b->n_svcs; i++)
		if (strcmp(b->svcs[i].host, host) == 0)
			return &b->svcs[i];
	return NULL;
}

static struct bsvc *add_svc(struct builder *b, const char *host, const char *ns)
{
	struct bsvc *s = find_svc(b, host);
	if (s != NULL)
		return s;
	s = push(&b->t->arena, (void **)&b->svcs, &b->n_svcs, sizeof(*s));
	if (s == NULL)
		return NULL;
	/* Copies: the table outlives cfg (aegis_routes_build's contract), and the admin reads these. */
	s->host = aegis_arena_strdup(&b->t->arena, host);
	s->ns = aegis_arena_strdup(&b->t->arena, ns ? ns : "");
	return s->host && s->ns ? s : NULL;
}

/* The service port numbered port: name and target port (from the first declaring object). */
static bool svc_port(const struct bsvc *s, uint16_t port, const char **name, uint32_t *target)
{
	for (size_t i = 0; i < s->n_ses; i++)
		for (size_t j = 0; j < s->ses[i]->n_ports; j++)
			if (s->ses[i]->ports[j].number == port) {
				*name = s->ses[i]->ports[j].name;
				*target = s->ses[i]->ports[j].target_port;
				return true;
			}
	for (size_t i = 0; i < s->n_k8s; i++)
		for (size_t j = 0; j < s->k8s[i]->n_ports; j++)
			if (s->k8s[i]->ports[j].number == port) {
				*name = s->k8s[i]->ports[j].name;
				*target = s->k8s[i]->ports[j].target_port;
				return true;
			}
	return false;
}

static const struct aegis_destination_rule *find_dr(struct builder *b, const char *host)
{
	const struct aegis_destination_rule *wild = NULL;
	for (size_t i = 0; i < b->cfg->n_destination_rules; i++) {
		const struct aegis_destination_rule *dr = &b->cfg->destination_rules[i];
		const char *h = qualify(b, dr->host, dr->meta.namespace_);
		if (h == NULL)
			continue;
		if (strcmp(h, host) == 0)
			return dr;
		if (wild == NULL && host_matches(h, host))
			wild = dr;
	}
	return wild;
}

/* ---- endpoints ----------------------------------------------------------------------------------------- */

static void split_locality(const char *loc, char *region, size_t rlen, char *zone, size_t zlen)
{
	const char *s1 = strchr(loc, '/');
	size_t r = s1 ? (size_t)(s1 - loc) : strlen(loc);
	snprintf(region, rlen, "%.*s", (int)r, loc);
	zone[0] = '\0';
	if (s1 != NULL) {
		const char *s2 = strchr(s1 + 1, '/');
		size_t z = s2 ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1);
		snprintf(zone, zlen, "%.*s", (int)z, s1 + 1);
	}
}

static uint8_t priority_of(struct builder *b, const char *loc, const struct aegis_traffic_policy *pol)
{
	if (b->region[0] == '\0')
		return PRIO_ZONE; /* we do not know where we are: everything is equally near */
	if (pol != NULL && pol->locality_lb_set && !pol->locality_lb_enabled)
		return PRIO_ZONE; /* localityLbSetting.enabled: false */
	char region[128], zone[128];
	split_locality(loc, region, sizeof(region), zone, sizeof(zone));
	if (strcmp(region, b->region) == 0)
		return strcmp(zone, b->zone) == 0 ? PRIO_ZONE : PRIO_REGION;
	for (size_t i = 0; pol != NULL && i < pol->n_failover; i++)
		if (strcmp(pol->failover[i].from, b->region) == 0 && strcmp(pol->failover[i].to, region) == 0)
			return PRIO_FAILOVER;
	return PRIO_REST;
}

/* What an endpoint contributes before the subset filter. */
struct cand {
	const char *address;
	uint32_t port;
	const struct aegis_labels *labels;
	const char *locality;
	uint32_t weight;
	const char *ns;
	const char *sa;
	enum aegis_health health;
};

struct epctx {
	struct builder *b;
	struct aegis_routes_cluster *c;
	const struct aegis_labels *subset;
	const struct aegis_traffic_policy *pol;
	struct aegis_routes_endpoint *eps;
	size_t n;
};

static int add_ep(struct epctx *x, const struct cand *cd)
{
	if (cd->port == 0 || cd->port > 65535)
		return 0;
	struct aegis_routes_addr a;
	if (aegis_routes_addr_parse(cd->address, (uint16_t)cd->port, &a) != 0)
		return 0; /* host names and unix sockets: not routable by address (docs/mesh.md) */
	if (x->subset != NULL && !labels_subset(x->subset, cd->labels))
		return 0;
	for (size_t i = 0; i < x->n; i++)
		if (memcmp(&x->eps[i].addr, &a, sizeof(a)) == 0)
			return 0; /* the same workload found through two sources */
	struct aegis_routes_endpoint *e = push(&x->b->t->arena, (void **)&x->eps, &x->n, sizeof(*e));
	if (e == NULL)
		return AEGIS_ENOMEM;
	e->addr = a;
	e->weight = cd->weight ? cd->weight : 1;
	e->health = cd->health;
	e->locality = aegis_arena_strdup(&x->b->t->arena, cd->locality ? cd->locality : "");
	char id[512];
	const char *td = x->b->opts->trust_domain ? x->b->opts->trust_domain : "cluster.local";
	snprintf(id, sizeof(id), "spiffe://%s/ns/%s/sa/%s", td, cd->ns, cd->sa && cd->sa[0] ? cd->sa : "*");
	e->identity = aegis_arena_strdup(&x->b->t->arena, id);
	if (e->locality == NULL || e->identity == NULL)
		return AEGIS_ENOMEM;
	e->priority = priority_of(x->b, e->locality, x->pol);
	e->tunnel = labels_has(cd->labels, AEGIS_ROUTES_TUNNEL_LABEL, "http");
	return 0;
}

static uint32_t workload_port(const struct aegis_workload *w, const char *pname, uint32_t dflt)
{
	for (size_t i = 0; i < w->n_ports; i++)
		if (pname[0] && strcmp(w->ports[i].name, pname) == 0)
			return w->ports[i].number;
	return dflt;
}

static int add_workload(struct epctx *x, const struct aegis_workload *w, const char *ns, const char *pname,
                        uint32_t dport)
{
	struct cand cd = {
	        .address = w->address,
	        .port = workload_port(w, pname, dport),
	        .labels = &w->labels,
	        .locality = w->locality,
	        .weight = w->weight,
	        .ns = ns,
	        .sa = w->service_account,
	        .health = w->health,
	};
	return add_ep(x, &cd);
}

static const char *cluster_locality(const struct aegis_config *cfg, const char *cluster)
{
	for (size_t i = 0; i < cfg->n_clusters; i++)
		if (strcmp(cfg->clusters[i].name, cluster) == 0)
			return cfg->clusters[i].locality;
	return "";
}

static int slice_endpoints(struct epctx *x, const struct aegis_k8s_service *svc, const char *pname,
                           uint32_t target)
{
	static const struct aegis_labels none = {0};
	const struct aegis_config *cfg = x->b->cfg;
	for (size_t i = 0; i < cfg->n_endpoint_slices; i++) {
		const struct aegis_endpoint_slice *sl = &cfg->endpoint_slices[i];
		if (strcmp(sl->service_name, svc->meta.name) != 0 ||
		    strcmp(sl->meta.namespace_, svc->meta.namespace_) != 0 ||
		    strcmp(sl->meta.cluster, svc->meta.cluster) != 0 || strcmp(sl->address_type, "FQDN") == 0)
			continue;
		uint32_t port = 0;
		for (size_t j = 0; j < sl->n_ports; j++)
			if (strcmp(sl->ports[j].name, pname) == 0)
				port = sl->ports[j].number ? sl->ports[j].number : target;
		if (port == 0)
			continue;
		char region[128], zone[128], loc[300];
		split_locality(cluster_locality(cfg, sl->meta.cluster), region, sizeof(region), zone,
		               sizeof(zone));
		for (size_t j = 0; j < sl->n_endpoints; j++) {
			const struct aegis_slice_endpoint *se = &sl->endpoints[j];
			snprintf(loc, sizeof(loc), "%s/%s", region, se->zone[0] ? se->zone : zone);
			enum aegis_health h = se->terminating ? AEGIS_HEALTH_DRAINING
			                      : se->ready     ? AEGIS_HEALTH_HEALTHY
			                                      : AEGIS_HEALTH_UNHEALTHY;
			for (size_t k = 0; k < se->n_addresses; k++) {
				const struct aegis_workload_entry *we = aegis_config_pod_of(
				        cfg, svc->meta.namespace_, se->addresses[k], se->target_name);
				struct cand cd = {
				        .address = se->addresses[k],
				        .port = port,
				        .labels = we ? &we->spec.labels : &none,
				        .locality = we && we->spec.locality[0] ? we->spec.locality : loc,
				        .weight = we ? we->spec.weight : 1,
				        .ns = svc->meta.namespace_,
				        .sa = we ? we->spec.service_account : "",
				        .health = h,
				};
				int rc = add_ep(x, &cd);
				if (rc != 0)
					return rc;
			}
		}
	}
	return 0;
}

/* WorkloadEntries in ns whose labels carry every selector label (ServiceEntry workloadSelector, Service
 * selector). */
static int selected_workloads(struct epctx *x, const struct aegis_labels *sel, const char *ns,
                              const char *pname, uint32_t dport)
{
	if (sel->n == 0)
		return 0;
	const struct aegis_config *cfg = x->b->cfg;
	for (size_t i = 0; i < cfg->n_workload_entries; i++) {
		const struct aegis_workload_entry *we = &cfg->workload_entries[i];
		if (strcmp(we->meta.namespace_, ns) != 0 || !labels_subset(sel, &we->spec.labels))
			continue;
		int rc = add_workload(x, &we->spec, ns, pname, dport);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int prio_cmp(const void *pa, const void *pb)
{
	const struct aegis_routes_endpoint *a = pa, *b = pb;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	return memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

static int fill_cluster(struct builder *b, struct aegis_routes_cluster *c)
{
	const struct bsvc *s = find_svc(b, c->host);
	const struct aegis_destination_rule *dr = find_dr(b, c->host);
	const struct aegis_traffic_policy *pol = dr && dr->policy.present ? &dr->policy : NULL;
	const struct aegis_labels *subset = NULL;
	if (c->subset[0] != '\0') {
		for (size_t i = 0; dr != NULL && i < dr->n_subsets; i++)
			if (strcmp(dr->subsets[i].name, c->subset) == 0) {
				subset = &dr->subsets[i].labels;
				if (dr->subsets[i].policy.present)
					pol = &dr->subsets[i].policy;
			}
		if (subset == NULL)
			return 0; /* an unknown subset has no endpoints: connections to it are refused */
	}
	c->mode = AEGIS_ROUTES_MTLS;
	if (pol != NULL) {
		if (pol->tls_mode == AEGIS_TLS_DISABLE || pol->tls_mode == AEGIS_TLS_SIMPLE ||
		    pol->tls_mode == AEGIS_TLS_MUTUAL)
			c->mode = AEGIS_ROUTES_PLAIN;
		c->connect_timeout_ms = pol->connect_timeout_ms;
		c->outlier_errors = pol->outlier_consecutive_errors;
		c->outlier_base_ms = pol->outlier_base_ejection_ms;
		if (pol->n_tls_subject_alt_names > 0) {
			c->sans = pol->tls_subject_alt_names;
			c->n_sans = pol->n_tls_subject_alt_names;
		}
	}
	if (s == NULL)
		return 0; /* a destination host that no object declares: no endpoints */
	const char *pname = "";
	uint32_t target = 0;
	if (!svc_port(s, c->port, &pname, &target))
		return 0;
	struct epctx x = {.b = b, .c = c, .subset = subset, .pol = pol};
	int rc = 0;
	for (size_t i = 0; i < s->n_ses && rc == 0; i++) {
		const struct aegis_service_entry *se = s->ses[i];
		if (se->location == AEGIS_SE_MESH_EXTERNAL)
			c->mode = AEGIS_ROUTES_PLAIN;
		if (c->n_sans == 0 && se->n_subject_alt_names > 0) {
			c->sans = se->subject_alt_names;
			c->n_sans = se->n_subject_alt_names;
		}
		uint32_t dport = target ? target : c->port;
		for (size_t j = 0; j < se->n_endpoints && rc == 0; j++)
			rc = add_workload(&x, &se->endpoints[j], se->meta.namespace_, pname, dport);
		if (rc == 0)
			rc = selected_workloads(&x, &se->workload_selector, se->meta.namespace_, pname,
			                        dport);
	}
	for (size_t i = 0; i < s->n_k8s && rc == 0; i++) {
		const struct aegis_k8s_service *k = s->k8s[i];
		uint32_t dport = target ? target : c->port;
		rc = slice_endpoints(&x, k, pname, dport);
		if (rc == 0)
			rc = selected_workloads(&x, &k->selector, k->meta.namespace_, pname, dport);
	}
	if (rc != 0)
		return rc;
	if (x.n > 1)
		qsort(x.eps, x.n, sizeof(*x.eps), prio_cmp);
	c->eps = x.eps;
	c->n_eps = x.n;
	return 0;
}

/* The index of cluster (host, port, subset), created and filled on first use. */
static int get_cluster(struct builder *b, const char *host, uint16_t port, const char *subset, uint32_t *out)
{
	struct aegis_routes *t = b->t;
	for (size_t i = 0; i < t->n_clusters; i++) {
		const struct aegis_routes_cluster *c = &t->clusters[i];
		if (c->port == port && strcmp(c->host, host) == 0 && strcmp(c->subset, subset) == 0) {
			*out = (uint32_t)i;
			return 0;
		}
	}
	struct aegis_routes_cluster *c = push(&t->arena, (void **)&t->clusters, &t->n_clusters, sizeof(*c));
	if (c == NULL)
		return AEGIS_ENOMEM;
	char name[700];
	snprintf(name, sizeof(name), "outbound|%u|%s|%s", port, subset, host);
	c->name = aegis_arena_strdup(&t->arena, name);
	c->host = aegis_arena_strdup(&t->arena, host); /* host and subset may point into cfg */
	c->subset = aegis_arena_strdup(&t->arena, subset);
	c->port = port;
	if (c->name == NULL || c->host == NULL || c->subset == NULL)
		return AEGIS_ENOMEM;
	*out = (uint32_t)(t->n_clusters - 1);
	/* fill_cluster may grow t->clusters: work on a copy and store it back. */
	struct aegis_routes_cluster tmp = *c;
	int rc = fill_cluster(b, &tmp);
	/* The SANs are checked on every handshake, long after cfg is freed: copy them into the table. */
	if (rc == 0 && tmp.n_sans > 0) {
		const char **sans = aegis_arena_zalloc(&t->arena, tmp.n_sans * sizeof(*sans));
		for (size_t i = 0; sans != NULL && i < tmp.n_sans; i++)
			if ((sans[i] = aegis_arena_strdup(&t->arena, tmp.sans[i])) == NULL)
				sans = NULL;
		if (sans == NULL)
			rc = AEGIS_ENOMEM;
		tmp.sans = sans;
	}
	t->clusters[*out] = tmp;
	return rc;
}

/* ---- routes ------------------------------------------------------------------------------------------- */

/* Whether a match can apply to this sidecar's connections to port: L7 conditions, SNI and destination
 * subnets cannot be decided from a TCP stream's first packet, so such a match never applies. */
static bool match_applies(struct builder *b, const struct aegis_route_match *m, uint16_t port)
{
	static const struct aegis_labels none = {0};
	if (m->has_l7 || m->n_sni_hosts > 0 || m->n_destination_subnets > 0)
		return false;
	if (m->port != 0 && m->port != port)
		return false;
	const char *ns = b->opts->namespace_ ? b->opts->namespace_ : "default";
	if (m->source_namespace[0] && strcmp(m->source_namespace, ns) != 0)
		return false;
	return labels_subset(&m->source_labels, b->opts->labels.n ? &b->opts->labels : &none);
}

static bool route_applies(struct builder *b, const struct aegis_route *r, uint16_t port)
{
	if (r->n_matches == 0)
		return r->kind != AEGIS_ROUTE_TLS; /* a tls route always needs sniHosts */
	for (size_t i = 0; i < r->n_matches; i++)
		if (match_applies(b, &r->matches[i], port))
			return true;
	return false;
}

static bool vs_for_mesh(const struct aegis_virtual_service *vs)
{
	if (vs->n_gateways == 0)
		return true;
	for (size_t i = 0; i < vs->n_gateways; i++)
		if (strcmp(vs->gateways[i], "mesh") == 0)
			return true;
	return false;
}

/* HTTP, TLS or TCP: Istio's protocol selection from the port's protocol, else its name prefix. */
static enum aegis_route_kind port_kind(const struct bsvc *s, uint16_t port)
{
	const char *name = "", *proto = "";
	for (size_t i = 0; i < s->n_ses && !proto[0]; i++)
		for (size_t j = 0; j < s->ses[i]->n_ports; j++)
			if (s->ses[i]->ports[j].number == port) {
				proto = s->ses[i]->ports[j].protocol;
				name = s->ses[i]->ports[j].name;
			}
	for (size_t i = 0; i < s->n_k8s && !name[0]; i++)
		for (size_t j = 0; j < s->k8s[i]->n_ports; j++)
			if (s->k8s[i]->ports[j].number == port)
				name = s->k8s[i]->ports[j].name;
	static const char *const http[] = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "http", "http2", "grpc"};
	for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++) {
		size_t n = strlen(http[i]);
		if (strcmp(proto, http[i]) == 0 ||
		    (!proto[0] && strncmp(name, http[i], n) == 0 && (name[n] == '\0' || name[n] == '-')))
			return AEGIS_ROUTE_HTTP;
	}
	if (strcmp(proto, "TLS") == 0 || strcmp(proto, "HTTPS") == 0 ||
	    (!proto[0] && (strncmp(name, "https", 5) == 0 || strncmp(name, "tls", 3) == 0)))
		return AEGIS_ROUTE_TLS;
	return AEGIS_ROUTE_TCP;
}

/* The route of a VirtualService for host that applies to port, or NULL. Routes of the port's own protocol
 * come first (Istio uses only those); as an L4 proxy we then also accept the first applicable route of
 * another kind, so that a tcp-only VirtualService on a port named http still routes (docs/mesh.md). */
static const struct aegis_route *pick_vs_route(struct builder *b, const struct bsvc *s, uint16_t port,
                                               const struct aegis_virtual_service **vs_out)
{
	enum aegis_route_kind kind = port_kind(s, port);
	const char *host = s->host;
	for (size_t i = 0; i < b->cfg->n_virtual_services; i++) {
		const struct aegis_virtual_service *vs = &b->cfg->virtual_services[i];
		if (!vs_for_mesh(vs))
			continue;
		bool covers = false;
		for (size_t j = 0; j < vs->n_hosts && !covers; j++) {
			const char *h = qualify(b, vs->hosts[j], vs->meta.namespace_);
			covers = h != NULL && host_matches(h, host);
		}
		if (!covers)
			continue;
		/* Istio applies one VirtualService per host; its routes are tried in order. */
		*vs_out = vs;
		for (int pass = 0; pass < 2; pass++)
			for (size_t j = 0; j < vs->n_routes; j++)
				if ((vs->routes[j].kind == kind) == (pass == 0) &&
				    route_applies(b, &vs->routes[j], port))
					return &vs->routes[j];
		return NULL;
	}
	return NULL;
}

static int build_route(struct builder *b, const struct bsvc *s, uint16_t port, uint32_t *out)
{
	struct aegis_routes *t = b->t;
	const char *host = s->host;
	const struct aegis_virtual_service *vs = NULL;
	const struct aegis_route *r = pick_vs_route(b, s, port, &vs);
	size_t nd = r ? r->n_dests : 1;
	struct aegis_routes_wdest *d = aegis_arena_zalloc(&t->arena, nd * sizeof(*d));
	if (d == NULL)
		return AEGIS_ENOMEM;
	uint64_t total = 0;
	if (r == NULL) {
		/* No VirtualService route: the whole service at this port. */
		TRY(get_cluster(b, host, port, "", &d[0].cluster));
		d[0].weight = 1;
		total = 1;
	} else {
		bool any_set = false;
		for (size_t i = 0; i < r->n_dests; i++)
			any_set |= r->dests[i].weight >= 0;
		for (size_t i = 0; i < r->n_dests; i++) {
			const struct aegis_route_dest *rd = &r->dests[i];
			const char *dh = qualify(b, rd->host, vs->meta.namespace_);
			if (dh == NULL)
				return AEGIS_ENOMEM;
			uint16_t dp = rd->port ? (uint16_t)rd->port : port;
			TRY(get_cluster(b, dh, dp, rd->subset, &d[i].cluster));
			/* Unset weights: a lone destination or all-unset share equally; beside set ones they
			 * get 0. */
			d[i].weight = rd->weight >= 0 ? (uint32_t)rd->weight : (any_set ? 0 : 1);
			total += d[i].weight;
		}
	}
	struct aegis_routes_route *rt = push(&t->arena, (void **)&t->routes, &t->n_routes, sizeof(*rt));
	if (rt == NULL)
		return AEGIS_ENOMEM;
	rt->port = port;
	rt->dests = d;
	rt->n_dests = nd;
	rt->total = total;
	rt->timeout_ms = r ? r->timeout_ms : 0;
	*out = (uint32_t)(t->n_routes - 1);
	return 0;
}

static int add_vip(struct builder *b, const struct aegis_routes_addr *a, uint32_t route)
{
	struct vip *v = push(&b->t->arena, (void **)&b->t->vips, &b->t->n_vips, sizeof(*v));
	if (v == NULL)
		return AEGIS_ENOMEM;
	v->family = a->family;
	memcpy(v->ip, a->ip, 16);
	v->port = a->port;
	v->route = route;
	return 0;
}

/* Every VIP:port of one service gets the route for that port. */
static int service_vips(struct builder *b, struct bsvc *s, size_t first_route)
{
	/* The set of (address, port) pairs, from every declaring object. */
	for (size_t pass = 0; pass < s->n_ses + s->n_k8s; pass++) {
		const struct aegis_port *ports;
		size_t n_ports;
		const char *const *addrs;
		size_t n_addrs;
		const struct aegis_service_entry *se = pass < s->n_ses ? s->ses[pass] : NULL;
		const struct aegis_k8s_service *k = se ? NULL : s->k8s[pass - s->n_ses];
		char vbuf[2][INET6_ADDRSTRLEN];
		const char *vaddrs[2];
		if (se != NULL) {
			ports = se->ports;
			n_ports = se->n_ports;
			addrs = se->addresses;
			n_addrs = se->n_addresses;
			uint8_t v4[4], v6[16];
			if (n_addrs == 0 && b->opts->vips != NULL && s->host[0] != '*' &&
			    aegis_vip_get(b->opts->vips, s->host, v4, v6) == 0) {
				inet_ntop(AF_INET, v4, vbuf[0], sizeof(vbuf[0]));
				inet_ntop(AF_INET6, v6, vbuf[1], sizeof(vbuf[1]));
				vaddrs[0] = vbuf[0];
				vaddrs[1] = vbuf[1];
				addrs = vaddrs;
				n_addrs = 2;
			}
		} else {
			ports = k->ports;
			n_ports = k->n_ports;
			addrs = k->cluster_ips;
			n_addrs = k->n_cluster_ips;
		}
		for (size_t pi = 0; pi < n_ports; pi++) {
			if (ports[pi].number > 65535)
				continue;
			uint16_t port = (uint16_t)ports[pi].number;
			uint32_t route = UINT32_MAX;
			for (size_t i = first_route; i < b->t->n_routes; i++)
				if (b->t->routes[i].port == port)
					route = (uint32_t)i;
			for (size_t ai = 0; ai < n_addrs; ai++) {
				struct aegis_routes_addr a;
				if (aegis_routes_addr_parse(addrs[ai], port, &a) != 0)
					continue;
				if (route == UINT32_MAX)
					TRY(build_route(b, s, port, &route));
				TRY(add_vip(b, &a, route));
			}
		}
	}
	return 0;
}

int aegis_routes_build(const struct aegis_config *cfg, const struct aegis_routes_opts *opts,
                       struct aegis_routes **out, struct aegis_diag *diag)
{
	struct aegis_routes *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return aegis_diag_set(diag, AEGIS_ENOMEM, NULL, 0, 0, "routes: out of memory");
	atomic_init(&t->refs, 1);
	aegis_arena_init(&t->arena, 0, ROUTES_MAX_BYTES);
	struct builder b = {.cfg = cfg, .opts = opts, .t = t, .diag = diag};
	if (opts->locality != NULL)
		split_locality(opts->locality, b.region, sizeof(b.region), b.zone, sizeof(b.zone));
	int rc = AEGIS_ENOMEM;
	const char *dom = opts->cluster_domain ? opts->cluster_domain : "cluster.local";

	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct aegis_service_entry *se = &cfg->service_entries[i];
		for (size_t j = 0; j < se->n_hosts; j++) {
			struct bsvc *s = add_svc(&b, se->hosts[j], se->meta.namespace_);
			if (s == NULL ||
			    push(&t->arena, (void **)&s->ses, &s->n_ses, sizeof(*s->ses)) == NULL)
				goto fail;
			s->ses[s->n_ses - 1] = se;
		}
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct aegis_k8s_service *k = &cfg->services[i];
		if (k->type == AEGIS_SVC_EXTERNAL_NAME)
			continue;
		char host[600];
		snprintf(host, sizeof(host), "%s.%s.svc.%s", k->meta.name, k->meta.namespace_, dom);
		const char *h = aegis_arena_strdup(&t->arena, host);
		struct bsvc *s = h ? add_svc(&b, h, k->meta.namespace_) : NULL;
		if (s == NULL || push(&t->arena, (void **)&s->k8s, &s->n_k8s, sizeof(*s->k8s)) == NULL)
			goto fail;
		s->k8s[s->n_k8s - 1] = k;
	}

	t->services = aegis_arena_zalloc(&t->arena, (b.n_svcs ? b.n_svcs : 1) * sizeof(*t->services));
	if (t->services == NULL)
		goto fail;
	for (size_t i = 0; i < b.n_svcs; i++) {
		struct aegis_routes_service *rs = &t->services[t->n_services++];
		rs->host = b.svcs[i].host;
		rs->namespace_ = b.svcs[i].ns;
		size_t first_route = t->n_routes;
		/* Routes are created per port while VIPs are added; record them on the service afterwards. */
		rs->routes = NULL;
		rc = service_vips(&b, &b.svcs[i], first_route);
		if (rc != 0)
			goto fail;
		rs->n_routes = t->n_routes - first_route;
		rs->routes = (const struct aegis_routes_route *)(uintptr_t)first_route; /* fixed up below */
	}
	/* t->routes may have moved while growing: turn the recorded first indexes into pointers now. */
	for (size_t i = 0; i < t->n_services; i++) {
		size_t first = (size_t)(uintptr_t)t->services[i].routes;
		t->services[i].routes = t->services[i].n_routes ? &t->routes[first] : NULL;
	}
	if (t->n_vips > 1)
		qsort(t->vips, t->n_vips, sizeof(*t->vips), vip_cmp);
	/* The same VIP:port declared twice: the first declaration (config order) wins, as in Istio. qsort is
	 * not stable, so rank by route index, which follows config order. */
	size_t w = 0;
	for (size_t i = 0; i < t->n_vips; i++) {
		if (w > 0 && vip_cmp(&t->vips[w - 1], &t->vips[i]) == 0) {
			if (t->vips[i].route < t->vips[w - 1].route)
				t->vips[w - 1] = t->vips[i];
			continue;
		}
		t->vips[w++] = t->vips[i];
	}
	t->n_vips = w;
	*out = t;
	return 0;
fail:
	aegis_arena_free(&t->arena);
	free(t);
	if (rc == 0 || rc == AEGIS_ENOMEM)
		return aegis_diag_set(diag, AEGIS_ENOMEM, NULL, 0, 0, "routes: out of memory");
	return rc;
}

void aegis_routes_ref(struct aegis_routes *t)
{
	if (t != NULL)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void aegis_routes_unref(struct aegis_routes *t)
{
	if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	aegis_arena_free(&t->arena);
	free(t);
}

/* ---- lookups ------------------------------------------------------------------------------------------ */

enum aegis_routes_verdict aegis_routes_lookup(const struct aegis_routes *t,
                                              const struct aegis_routes_addr *dst, uint64_t rnd,
                                              const struct aegis_routes_cluster **cluster)
{
	struct vip key = {.family = dst->family, .port = dst->port};
	memcpy(key.ip, dst->ip, 16);
	if (dst->family == AF_INET)
		memset(key.ip + 4, 0, 12);
	const struct vip *v = t ? bsearch(&key, t->vips, t->n_vips, sizeof(*t->vips), vip_cmp) : NULL;
	if (v == NULL)
		return AEGIS_ROUTES_PASSTHROUGH;
	const struct aegis_routes_route *r = &t->routes[v->route];
	if (r->total == 0)
		return AEGIS_ROUTES_NO_ROUTE;
	uint64_t x = rnd % r->total;
	for (size_t i = 0; i < r->n_dests; i++) {
		if (x < r->dests[i].weight) {
			*cluster = &t->clusters[r->dests[i].cluster];
			return AEGIS_ROUTES_CLUSTER;
		}
		x -= r->dests[i].weight;
	}
	return AEGIS_ROUTES_NO_ROUTE; /* unreachable: the weights sum to total */
}

bool aegis_routes_endpoint_serving(const struct aegis_routes_endpoint *e)
{
	return e->health != AEGIS_HEALTH_UNHEALTHY && e->health != AEGIS_HEALTH_DRAINING;
}

static bool usable(const struct aegis_routes_endpoint *e, bool mind_ejection, const struct aegis_outlier *o,
                   uint64_t now_ms, const struct aegis_routes_endpoint *const *avoid, size_t n_avoid)
{
	if (!aegis_routes_endpoint_serving(e))
		return false;
	for (size_t i = 0; i < n_avoid; i++)
		if (avoid[i] == e)
			return false;
	return !mind_ejection || !aegis_outlier_ejected(o, &e->addr, now_ms);
}

const struct aegis_routes_endpoint *aegis_routes_pick(const struct aegis_routes_cluster *c, uint64_t rnd,
                                                      const struct aegis_outlier *o, uint64_t now_ms,
                                                      const struct aegis_routes_endpoint *const *avoid,
                                                      size_t n_avoid)
{
	for (int pass = 0; pass < 2; pass++) {
		bool mind = pass == 0;
		/* Endpoints are sorted by priority: find the first level with a usable endpoint, weigh it. */
		size_t i = 0;
		while (i < c->n_eps) {
			uint8_t prio = c->eps[i].priority;
			size_t end = i;
			uint64_t total = 0;
			while (end < c->n_eps && c->eps[end].priority == prio) {
				if (usable(&c->eps[end], mind, o, now_ms, avoid, n_avoid))
					total += c->eps[end].weight;
				end++;
			}
			if (total > 0) {
				uint64_t x = rnd % total;
				for (size_t j = i; j < end; j++) {
					if (!usable(&c->eps[j], mind, o, now_ms, avoid, n_avoid))
						continue;
					if (x < c->eps[j].weight)
						return &c->eps[j];
					x -= c->eps[j].weight;
				}
			}
			i = end;
		}
	}
	return NULL;
}

size_t aegis_routes_n_clusters(const struct aegis_routes *t)
{
	return t->n_clusters;
}

const struct aegis_routes_cluster *aegis_routes_cluster_at(const struct aegis_routes *t, size_t i)
{
	return i < t->n_clusters ? &t->clusters[i] : NULL;
}

size_t aegis_routes_n_services(const struct aegis_routes *t)
{
	return t->n_services;
}

const struct aegis_routes_service *aegis_routes_service_at(const struct aegis_routes *t, size_t i)
{
	return i < t->n_services ? &t->services[i] : NULL;
}

size_t aegis_routes_n_vips(const struct aegis_routes *t)
{
	return t->n_vips;
}

bool aegis_routes_vip_at(const struct aegis_routes *t, size_t i, struct aegis_routes_addr *addr,
                         const struct aegis_routes_route **route)
{
	if (i >= t->n_vips)
		return false;
	addr->family = t->vips[i].family;
	memcpy(addr->ip, t->vips[i].ip, 16);
	addr->port = t->vips[i].port;
	*route = &t->routes[t->vips[i].route];
	return true;
}

const struct aegis_routes_cluster *aegis_routes_find_cluster(const struct aegis_routes *t, const char *name)
{
	for (size_t i = 0; i < t->n_clusters; i++)
		if (strcmp(t->clusters[i].name, name) == 0)
			return &t->clusters[i];
	return NULL;
}
