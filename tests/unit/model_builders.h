/* Builders for struct aegis_config in unit tests: configurations written in C, so that tests of the DNS
 * table and the VIP allocator do not depend on the YAML loader. Everything lives in cfg->arena.
 *
 * The pointer a builder returns stays valid only until the next builder call for the same kind (arrays
 * grow by copying), so configure an object right after adding it. Lists are space-separated strings:
 * mb_se(cfg, "se1", "a.example.com *.b.example.com", "10.0.0.1 2001:db8::1"). */
#ifndef AEGIS_TEST_MODEL_BUILDERS_H
#define AEGIS_TEST_MODEL_BUILDERS_H

#include <stdlib.h>
#include <string.h>

#include "aegis/model.h"

static inline void *mb_alloc(struct aegis_config *c, size_t n)
{
	void *p = aegis_arena_zalloc(&c->arena, n);
	if (p == NULL)
		abort();
	return p;
}

static inline const char *mb_str(struct aegis_config *c, const char *s)
{
	char *p = aegis_arena_strdup(&c->arena, s);
	if (p == NULL)
		abort();
	return p;
}

/* Splits a space-separated list into an arena array of strings. */
static inline const char *const *mb_strv(struct aegis_config *c, const char *list, size_t *n)
{
	size_t count = 0;
	for (const char *p = list; *p;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		count++;
		while (*p && *p != ' ')
			p++;
	}
	*n = count;
	if (count == 0)
		return NULL;
	const char **v = mb_alloc(c, count * sizeof(*v));
	size_t k = 0;
	for (const char *p = list; *p;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		const char *s = p;
		while (*p && *p != ' ')
			p++;
		char *w = aegis_arena_strndup(&c->arena, s, (size_t)(p - s));
		if (w == NULL)
			abort();
		v[k++] = w;
	}
	return v;
}

/* Appends one zeroed element to a (pointer, count) array of the config; returns it. Capacity doubles (the
 * array was made by mb_push, so its capacity is the next power of two from 4 up). */
static inline void *mb_push(struct aegis_config *c, const void **arr, size_t *n, size_t elem)
{
	if (*n < 4 ? *n == 0 : (*n & (*n - 1)) == 0) {
		void *nv = aegis_arena_grow(&c->arena, (void *)*arr, *n, *n < 4 ? 4 : *n * 2, elem);
		if (nv == NULL)
			abort();
		*arr = nv;
	}
	void *e = (char *)*arr + *n * elem;
	memset(e, 0, elem);
	(*n)++;
	return e;
}

static inline void mb_meta(struct aegis_config *c, struct aegis_meta *m, const char *cluster, const char *ns,
                           const char *name)
{
	static int line = 1;
	m->name = mb_str(c, name);
	m->namespace_ = mb_str(c, ns);
	m->cluster = mb_str(c, cluster);
	m->source = "test.yaml";
	m->line = line++;
	m->resource_version = "";
}

static inline struct aegis_service_entry *mb_se(struct aegis_config *c, const char *name, const char *hosts,
                                                const char *addrs)
{
	struct aegis_service_entry *se =
	        mb_push(c, (const void **)&c->service_entries, &c->n_service_entries, sizeof(*se));
	mb_meta(c, &se->meta, "", "default", name);
	se->hosts = mb_strv(c, hosts, &se->n_hosts);
	se->addresses = mb_strv(c, addrs, &se->n_addresses);
	return se;
}

static inline void mb_port(struct aegis_config *c, const struct aegis_port **ports, size_t *n,
                           const char *name, uint32_t number, const char *protocol)
{
	struct aegis_port *p = mb_push(c, (const void **)ports, n, sizeof(*p));
	p->name = mb_str(c, name);
	p->number = number;
	p->protocol = mb_str(c, protocol);
}

static inline void mb_se_port(struct aegis_config *c, struct aegis_service_entry *se, const char *name,
                              uint32_t number, const char *protocol)
{
	mb_port(c, &se->ports, &se->n_ports, name, number, protocol);
}

static inline struct aegis_k8s_service *mb_svc(struct aegis_config *c, const char *cluster, const char *ns,
                                               const char *name, const char *cluster_ips)
{
	struct aegis_k8s_service *s = mb_push(c, (const void **)&c->services, &c->n_services, sizeof(*s));
	mb_meta(c, &s->meta, cluster, ns, name);
	s->cluster_ips = mb_strv(c, cluster_ips, &s->n_cluster_ips);
	s->external_name = "";
	return s;
}

static inline void mb_svc_port(struct aegis_config *c, struct aegis_k8s_service *s, const char *name,
                               uint32_t number, const char *protocol)
{
	mb_port(c, &s->ports, &s->n_ports, name, number, protocol);
}

static inline struct aegis_endpoint_slice *mb_slice(struct aegis_config *c, const char *cluster,
                                                    const char *ns, const char *svc)
{
	struct aegis_endpoint_slice *s =
	        mb_push(c, (const void **)&c->endpoint_slices, &c->n_endpoint_slices, sizeof(*s));
	mb_meta(c, &s->meta, cluster, ns, svc);
	s->service_name = mb_str(c, svc);
	s->address_type = "IPv4";
	return s;
}

static inline void mb_ep(struct aegis_config *c, struct aegis_endpoint_slice *s, const char *addrs,
                         bool ready, const char *hostname)
{
	struct aegis_slice_endpoint *e =
	        mb_push(c, (const void **)&s->endpoints, &s->n_endpoints, sizeof(*e));
	e->addresses = mb_strv(c, addrs, &e->n_addresses);
	e->ready = ready;
	e->serving = ready;
	e->hostname = mb_str(c, hostname);
	e->node_name = "";
	e->zone = "";
	e->target_kind = "";
	e->target_name = "";
	e->target_namespace = "";
}

static inline struct aegis_name_info *mb_nds(struct aegis_config *c, const char *host, const char *ips,
                                             const char *alt_hosts)
{
	struct aegis_name_info *n = mb_push(c, (const void **)&c->name_table, &c->n_name_table, sizeof(*n));
	n->host = mb_str(c, host);
	n->ips = mb_strv(c, ips, &n->n_ips);
	n->alt_hosts = mb_strv(c, alt_hosts, &n->n_alt_hosts);
	n->registry = "";
	n->shortname = "";
	n->namespace_ = "";
	return n;
}

#endif
