/* xDS resource decoders: protobuf-c messages -> struct aegis_config (see xds_int.h).
 *
 * Every string is copied into the config's arena, so the unpacked protobuf is freed at once. A resource
 * that breaks a rule is rejected with its type, name and the reason, which the ADS client sends back as
 * the NACK's error_detail: the rules are the ones Istio's validation applies to the fields we read. */
#include "xds_int.h"
#include "xds_decode_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/limits.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "istio/networking/nds/v1/nds.pb-c.h"
#include "networking/v1alpha3/destination_rule.pb-c.h"
#include "networking/v1alpha3/service_entry.pb-c.h"
#include "networking/v1alpha3/virtual_service.pb-c.h"

const char *const aegis_xds_type_urls[AEGIS_XDS_NTYPES] = {
        [AEGIS_XDS_SE] = AEGIS_XDS_URL_SE,   [AEGIS_XDS_VS] = AEGIS_XDS_URL_VS,
        [AEGIS_XDS_DR] = AEGIS_XDS_URL_DR,   [AEGIS_XDS_CLA] = AEGIS_XDS_URL_CLA,
        [AEGIS_XDS_NDS] = AEGIS_XDS_URL_NDS,
};

static const char *const type_names[AEGIS_XDS_NTYPES] = {
        "ServiceEntry", "VirtualService", "DestinationRule", "ClusterLoadAssignment", "NameTable",
};

const char *aegis_xds_type_url(enum aegis_xds_type t)
{
	return (unsigned)t < AEGIS_XDS_NTYPES ? aegis_xds_type_urls[t] : "";
}

int aegis_xds_type_from_url(const char *url)
{
	for (int i = 0; i < AEGIS_XDS_NTYPES; i++)
		if (strcmp(url, aegis_xds_type_urls[i]) == 0)
			return i;
	return -1;
}

int aegis_xds_unwrap(const char *type_url, const uint8_t *value, size_t value_len, const char *want_url,
                     char *name, size_t name_cap, const uint8_t **body, size_t *body_len,
                     struct aegis_diag *diag)
{
	name[0] = '\0';
	if (strcmp(type_url, want_url) == 0) {
		*body = value;
		*body_len = value_len;
		return 0;
	}
	if (strcmp(type_url, AEGIS_XDS_URL_RESOURCE) != 0)
		return aegis_diag_set(diag, AEGIS_EPROTO, NULL, 0, 0, "resource of type %s in a %s response",
		                      type_url, want_url);
	/* The wrapper's bytes stay alive in the caller's buffer, but the unpacked Resource does not: the
	 * inner value is located by unpacking, then found again as an offset into value. */
	Envoy__Service__Discovery__V3__Resource *r =
	        envoy__service__discovery__v3__resource__unpack(NULL, value_len, value);
	if (r == NULL)
		return aegis_diag_set(diag, AEGIS_EPARSE, NULL, 0, 0, "malformed Resource wrapper");
	int rc = 0;
	if (r->resource == NULL || strcmp(r->resource->type_url, want_url) != 0) {
		rc = aegis_diag_set(diag, AEGIS_EPROTO, NULL, 0, 0, "Resource wrapper %s holds %s, want %s",
		                    r->name, r->resource ? r->resource->type_url : "nothing", want_url);
		goto out;
	}
	if (strlen(r->name) >= name_cap) {
		rc = aegis_diag_set(diag, AEGIS_ELIMIT, NULL, 0, 0, "resource name too long");
		goto out;
	}
	memcpy(name, r->name, strlen(r->name) + 1);
	/* protobuf-c copies bytes fields; find the same bytes inside value so that *body outlives r. */
	size_t n = r->resource->value.len;
	const uint8_t *p = NULL;
	for (size_t off = 0; n > 0 && off + n <= value_len; off++) {
		if (memcmp(value + off, r->resource->value.data, n) == 0) {
			p = value + off;
			break;
		}
	}
	*body = n ? p : value; /* empty inner value: any pointer with length 0 */
	*body_len = n;
	if (n && p == NULL)
		rc = aegis_diag_set(diag, AEGIS_EPARSE, NULL, 0, 0, "Resource wrapper inconsistent");
out:
	envoy__service__discovery__v3__resource__free_unpacked(r, NULL);
	return rc;
}

int aegis_xds_parse_cluster_name(const char *cluster, uint32_t *port, char *buf, size_t cap,
                                 const char **subset, const char **host)
{
	size_t len = strlen(cluster);
	if (len >= cap || strncmp(cluster, "outbound|", 9) != 0)
		return AEGIS_EINVAL;
	memcpy(buf, cluster, len + 1);
	char *p = buf + 9;
	char *bar = strchr(p, '|');
	if (bar == NULL || bar == p)
		return AEGIS_EINVAL;
	unsigned long v = 0;
	for (char *q = p; q < bar; q++) {
		if (!isdigit((unsigned char)*q) || v > 65535)
			return AEGIS_EINVAL;
		v = v * 10 + (unsigned long)(*q - '0');
	}
	if (v == 0 || v > 65535)
		return AEGIS_EINVAL;
	char *sub = bar + 1;
	bar = strchr(sub, '|');
	if (bar == NULL || bar[1] == '\0' || strchr(bar + 1, '|') != NULL)
		return AEGIS_EINVAL;
	*bar = '\0';
	*port = (uint32_t)v;
	*subset = sub;
	*host = bar + 1;
	return 0;
}

/* ---- helpers ---- */

int aegis_xds_reject(struct aegis_diag *diag, int err, enum aegis_xds_type t, const char *name,
                     const char *fmt, ...)
{
	char reason[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return aegis_diag_set(diag, err, NULL, 0, 0, "%s %s: %s", type_names[t], name[0] ? name : "(unnamed)",
	                      reason);
}

char *aegis_xds_adup(struct aegis_arena *a, const char *s)
{
	return aegis_arena_strdup(a, s ? s : "");
}

char *aegis_xds_adup_lower(struct aegis_arena *a, const char *s)
{
	char *d = aegis_xds_adup(a, s);
	if (d != NULL)
		for (char *p = d; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return d;
}

static int dup_strv(struct aegis_arena *a, char **v, size_t n, bool lower, const char *const **out,
                    size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	const char **d = aegis_arena_alloc(a, n * sizeof(*d));
	if (d == NULL)
		return AEGIS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		d[i] = lower ? aegis_xds_adup_lower(a, v[i]) : aegis_xds_adup(a, v[i]);
		if (d[i] == NULL)
			return AEGIS_ENOMEM;
	}
	*out = d;
	*n_out = n;
	return 0;
}

/* Every protobuf-c map<string,string> entry has this layout; the macro spares one function per type. */
#define DUP_LABELS(A, OUT, ENTRIES, N)                                                                       \
	({                                                                                                   \
		int rc_ = 0;                                                                                 \
		(OUT)->items = NULL;                                                                         \
		(OUT)->n = 0;                                                                                \
		if ((N) > 0) {                                                                               \
			struct aegis_kv *kv_ = aegis_arena_alloc((A), (N) * sizeof(*kv_));                   \
			if (kv_ == NULL)                                                                     \
				rc_ = AEGIS_ENOMEM;                                                          \
			for (size_t i_ = 0; rc_ == 0 && i_ < (N); i_++) {                                    \
				kv_[i_].key = aegis_xds_adup((A), (ENTRIES)[i_]->key);                       \
				kv_[i_].value = aegis_xds_adup((A), (ENTRIES)[i_]->value);                   \
				if (kv_[i_].key == NULL || kv_[i_].value == NULL)                            \
					rc_ = AEGIS_ENOMEM;                                                  \
			}                                                                                    \
			(OUT)->items = kv_;                                                                  \
			(OUT)->n = rc_ == 0 ? (N) : 0;                                                       \
		}                                                                                            \
		rc_;                                                                                         \
	})

bool aegis_xds_valid_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool valid_cidr(const char *s)
{
	char ip[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, s, n);
	ip[n] = '\0';
	unsigned char buf[16];
	int max;
	if (inet_pton(AF_INET, ip, buf) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, ip, buf) == 1)
		max = 128;
	else
		return false;
	if (slash == NULL)
		return true;
	const char *p = slash + 1;
	if (*p == '\0' || strlen(p) > 3)
		return false;
	int v = 0;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return false;
		v = v * 10 + (*p - '0');
	}
	return v <= max;
}

/* A DNS host as Istio accepts it: labels of [a-z0-9-_], optionally "*." first, or "*" alone. */
bool aegis_xds_valid_host(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 253)
		return false;
	if (strcmp(s, "*") == 0)
		return true;
	if (s[0] == '*') {
		if (s[1] != '.')
			return false;
		s += 2;
	}
	size_t label = 0;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 || s[0] != '\0';
}

bool aegis_xds_valid_port(uint32_t p)
{
	return p >= 1 && p <= 65535;
}

static uint32_t duration_ms(const Google__Protobuf__Duration *d)
{
	if (d == NULL || d->seconds < 0)
		return 0;
	uint64_t ms = (uint64_t)d->seconds * 1000u + (uint64_t)(d->nanos > 0 ? d->nanos : 0) / 1000000u;
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* Splits "ns/name"; a name without '/' is in "default". */
int aegis_xds_set_meta(struct aegis_arena *a, struct aegis_meta *m, const char *name, const char *fallback,
                       enum aegis_xds_type t)
{
	const char *full = name[0] ? name : fallback;
	const char *slash = strchr(full, '/');
	if (slash != NULL) {
		m->namespace_ = aegis_arena_strndup(a, full, (size_t)(slash - full));
		m->name = aegis_xds_adup(a, slash + 1);
	} else {
		m->namespace_ = aegis_xds_adup(a, "default");
		m->name = aegis_xds_adup(a, full);
	}
	m->cluster = "";
	m->source = aegis_xds_type_urls[t];
	m->resource_version = "";
	return m->name && m->namespace_ ? 0 : AEGIS_ENOMEM;
}

int aegis_xds_builder_init(struct aegis_xds_builder *b)
{
	memset(b, 0, sizeof(*b));
	b->cfg = aegis_config_new();
	return b->cfg ? 0 : AEGIS_ENOMEM;
}

void aegis_xds_builder_abort(struct aegis_xds_builder *b)
{
	aegis_config_free(b->cfg);
	memset(b, 0, sizeof(*b));
}

/* ---- ServiceEntry ---- */

static int decode_workload(struct aegis_arena *a, const Istio__Networking__V1alpha3__WorkloadEntry *w,
                           struct aegis_workload *out, enum aegis_xds_type t, const char *name, size_t idx,
                           struct aegis_diag *diag)
{
	memset(out, 0, sizeof(*out));
	const char *addr = w->address;
	if (addr[0] == '\0')
		return aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "endpoint %zu has no address", idx);
	if (strncmp(addr, "unix://", 7) != 0 && !aegis_xds_valid_ip(addr) && !aegis_xds_valid_host(addr))
		return aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "endpoint %zu: bad address \"%.64s\"",
		                        idx, addr);
	out->address = aegis_xds_adup(a, addr);
	if (w->n_ports > 0) {
		struct aegis_port_ref *pr = aegis_arena_alloc(a, w->n_ports * sizeof(*pr));
		if (pr == NULL)
			return AEGIS_ENOMEM;
		for (size_t i = 0; i < w->n_ports; i++) {
			if (!aegis_xds_valid_port(w->ports[i]->value))
				return aegis_xds_reject(diag, AEGIS_EINVAL, t, name,
				                        "endpoint %zu: port %s=%u out of range", idx,
				                        w->ports[i]->key, w->ports[i]->value);
			pr[i].name = aegis_xds_adup(a, w->ports[i]->key);
			pr[i].number = w->ports[i]->value;
		}
		out->ports = pr;
		out->n_ports = w->n_ports;
	}
	if (DUP_LABELS(a, &out->labels, w->labels, w->n_labels))
		return AEGIS_ENOMEM;
	out->network = aegis_xds_adup(a, w->network);
	out->locality = aegis_xds_adup(a, w->locality);
	out->weight = w->weight;
	out->service_account = aegis_xds_adup(a, w->service_account);
	out->health = AEGIS_HEALTH_UNKNOWN;
	out->hostname = out->node_name = out->zone = out->target_pod = "";
	return out->address && out->network && out->locality && out->service_account ? 0 : AEGIS_ENOMEM;
}

static int fill_se(struct aegis_arena *a, const Istio__Networking__V1alpha3__ServiceEntry *m,
                   struct aegis_service_entry *se, const char *name, struct aegis_diag *diag)
{
	const enum aegis_xds_type t = AEGIS_XDS_SE;
	if (m->n_hosts == 0)
		return aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "no hosts");
	for (size_t i = 0; i < m->n_hosts; i++)
		if (!aegis_xds_valid_host(m->hosts[i]))
			return aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "bad host \"%.64s\"",
			                        m->hosts[i]);
	for (size_t i = 0; i < m->n_addresses; i++)
		if (!valid_cidr(m->addresses[i]))
			return aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "bad address \"%.64s\"",
			                        m->addresses[i]);
	if (aegis_xds_set_meta(a, &se->meta, name, m->hosts[0], t))
		return AEGIS_ENOMEM;
	int rc;
	if ((rc = dup_strv(a, m->hosts, m->n_hosts, true, &se->hosts, &se->n_hosts)) ||
	    (rc = dup_strv(a, m->addresses, m->n_addresses, false, &se->addresses, &se->n_addresses)) ||
	    (rc = dup_strv(a, m->export_to, m->n_export_to, false, &se->export_to, &se->n_export_to)) ||
	    (rc = dup_strv(a, m->subject_alt_names, m->n_subject_alt_names, false, &se->subject_alt_names,
	                   &se->n_subject_alt_names)))
		return rc;
	if (m->n_ports > 0) {
		struct aegis_port *p = aegis_arena_zalloc(a, m->n_ports * sizeof(*p));
		if (p == NULL)
			return AEGIS_ENOMEM;
		for (size_t i = 0; i < m->n_ports; i++) {
			const Istio__Networking__V1alpha3__ServicePort *sp = m->ports[i];
			if (!aegis_xds_valid_port(sp->number))
				return aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "port %u out of range",
				                        sp->number);
			if (sp->target_port != 0 && !aegis_xds_valid_port(sp->target_port))
				return aegis_xds_reject(diag, AEGIS_EINVAL, t, name,
				                        "target port %u out of range", sp->target_port);
			p[i].name = aegis_xds_adup(a, sp->name);
			p[i].number = sp->number;
			p[i].protocol = aegis_xds_adup(a, sp->protocol);
			p[i].target_port = sp->target_port;
		}
		se->ports = p;
		se->n_ports = m->n_ports;
	}
	se->location = m->location == ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__LOCATION__MESH_INTERNAL
	                       ? AEGIS_SE_MESH_INTERNAL
	                       : AEGIS_SE_MESH_EXTERNAL;
	switch (m->resolution) {
	case ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__STATIC:
		se->resolution = AEGIS_SE_RES_STATIC;
		break;
	case ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__DNS:
		se->resolution = AEGIS_SE_RES_DNS;
		break;
	case ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__DNS_ROUND_ROBIN:
		se->resolution = AEGIS_SE_RES_DNS_ROUND_ROBIN;
		break;
	default: se->resolution = AEGIS_SE_RES_NONE; break;
	}
	if (m->n_endpoints > 0) {
		struct aegis_workload *w = aegis_arena_alloc(a, m->n_endpoints * sizeof(*w));
		if (w == NULL)
			return AEGIS_ENOMEM;
		for (size_t i = 0; i < m->n_endpoints; i++)
			if ((rc = decode_workload(a, m->endpoints[i], &w[i], t, name, i, diag)))
				return rc;
		se->endpoints = w;
		se->n_endpoints = m->n_endpoints;
	}
	if (m->workload_selector && DUP_LABELS(a, &se->workload_selector, m->workload_selector->labels,
	                                       m->workload_selector->n_labels))
		return AEGIS_ENOMEM;
	return 0;
}

static int decode_se(struct aegis_xds_builder *b, const char *name, const uint8_t *body, size_t len,
                     struct aegis_diag *diag)
{
	struct aegis_arena *a = &b->cfg->arena;
	Istio__Networking__V1alpha3__ServiceEntry *m =
	        istio__networking__v1alpha3__service_entry__unpack(NULL, len, body);
	if (m == NULL)
		return aegis_xds_reject(diag, AEGIS_EPARSE, AEGIS_XDS_SE, name, "malformed protobuf");
	/* "Service/<ns>/<name>/<cluster>": a Kubernetes Service of that cluster (see xds_int.h). */
	bool k8s = strncmp(name, "Service/", 8) == 0;
	int rc = k8s ? AEGIS_XDS_GROW(a, b->ksvc, b->n_ksvc, b->cap_ksvc)
	             : AEGIS_XDS_GROW(a, b->se, b->n_se, b->cap_se);
	if (rc == 0) {
		struct aegis_service_entry *se = k8s ? &b->ksvc[b->n_ksvc] : &b->se[b->n_se];
		memset(se, 0, sizeof(*se));
		rc = fill_se(a, m, se, k8s ? name + 8 : name, diag);
		if (rc == 0 && k8s) {
			/* aegis_xds_set_meta read "<ns>/<name>/<cluster>": split the cluster off the name. */
			const char *slash = strchr(se->meta.name, '/');
			if (slash == NULL) {
				rc = aegis_xds_reject(diag, AEGIS_EINVAL, AEGIS_XDS_SE, name,
				                      "Service name without cluster");
			} else {
				se->meta.cluster = aegis_xds_adup(a, slash + 1);
				se->meta.name = aegis_arena_strndup(a, se->meta.name,
				                                    (size_t)(slash - se->meta.name));
				if (se->meta.cluster == NULL || se->meta.name == NULL)
					rc = AEGIS_ENOMEM;
			}
		}
		if (rc == 0)
			*(k8s ? &b->n_ksvc : &b->n_se) += 1;
	}
	istio__networking__v1alpha3__service_entry__free_unpacked(m, NULL);
	return rc;
}

/* ---- VirtualService ---- */

static int fill_dest(struct aegis_arena *a, const Istio__Networking__V1alpha3__Destination *d, int32_t weight,
                     struct aegis_route_dest *out, const char *name, size_t ri, struct aegis_diag *diag)
{
	if (d == NULL || d->host[0] == '\0')
		return aegis_xds_reject(diag, AEGIS_EINVAL, AEGIS_XDS_VS, name,
		                        "route %zu: destination without host", ri);
	if (weight < 0 || weight > 100)
		return aegis_xds_reject(diag, AEGIS_EINVAL, AEGIS_XDS_VS, name,
		                        "route %zu: weight %d not in 0..100", ri, (int)weight);
	if (d->port && d->port->number != 0 && !aegis_xds_valid_port(d->port->number))
		return aegis_xds_reject(diag, AEGIS_EINVAL, AEGIS_XDS_VS, name,
		                        "route %zu: port %u out of range", ri, d->port->number);
	out->host = aegis_xds_adup_lower(a, d->host);
	out->subset = aegis_xds_adup(a, d->subset);
	out->port = d->port ? d->port->number : 0;
	out->weight = weight;
	return out->host && out->subset ? 0 : AEGIS_ENOMEM;
}

/* proto3 cannot tell weight 0 from unset: when no destination of a route has a weight, all are unset
 * (-1, the model's "a lone destination gets 100"); otherwise 0 means 0. */
static void fix_weights(struct aegis_route_dest *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (d[i].weight != 0)
			return;
	for (size_t i = 0; i < n; i++)
		d[i].weight = -1;
}

static int decode_vs(struct aegis_xds_builder *b, const char *name, const uint8_t *body, size_t len,
                     struct aegis_diag *diag)
{
	const enum aegis_xds_type t = AEGIS_XDS_VS;
	struct aegis_arena *a = &b->cfg->arena;
	Istio__Networking__V1alpha3__VirtualService *m =
	        istio__networking__v1alpha3__virtual_service__unpack(NULL, len, body);
	if (m == NULL)
		return aegis_xds_reject(diag, AEGIS_EPARSE, t, name, "malformed protobuf");
	int rc = 0;
	if (m->n_hosts == 0) {
		rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "no hosts");
		goto out;
	}
	for (size_t i = 0; i < m->n_hosts; i++)
		if (!aegis_xds_valid_host(m->hosts[i])) {
			rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "bad host \"%.64s\"", m->hosts[i]);
			goto out;
		}
	if ((rc = AEGIS_XDS_GROW(a, b->vs, b->n_vs, b->cap_vs)))
		goto out;
	struct aegis_virtual_service *vs = &b->vs[b->n_vs];
	memset(vs, 0, sizeof(*vs));
	if ((rc = aegis_xds_set_meta(a, &vs->meta, name, m->hosts[0], t)) ||
	    (rc = dup_strv(a, m->hosts, m->n_hosts, true, &vs->hosts, &vs->n_hosts)) ||
	    (rc = dup_strv(a, m->gateways, m->n_gateways, false, &vs->gateways, &vs->n_gateways)) ||
	    (rc = dup_strv(a, m->export_to, m->n_export_to, false, &vs->export_to, &vs->n_export_to)))
		goto out;
	size_t nr = m->n_http + m->n_tcp + m->n_tls;
	struct aegis_route *routes = nr ? aegis_arena_zalloc(a, nr * sizeof(*routes)) : NULL;
	if (nr && routes == NULL) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	size_t ri = 0;
	for (size_t i = 0; i < m->n_http; i++, ri++) {
		const Istio__Networking__V1alpha3__HTTPRoute *h = m->http[i];
		struct aegis_route *r = &routes[ri];
		r->kind = AEGIS_ROUTE_HTTP;
		r->name = aegis_xds_adup(a, h->name);
		r->timeout_ms = duration_ms(h->timeout);
		r->retries = h->retries && h->retries->attempts > 0 ? (uint32_t)h->retries->attempts : 0;
		struct aegis_route_match *mt =
		        h->n_match ? aegis_arena_zalloc(a, h->n_match * sizeof(*mt)) : NULL;
		struct aegis_route_dest *d =
		        h->n_route ? aegis_arena_zalloc(a, h->n_route * sizeof(*d)) : NULL;
		if ((h->n_match && mt == NULL) || (h->n_route && d == NULL)) {
			rc = AEGIS_ENOMEM;
			goto out;
		}
		for (size_t j = 0; j < h->n_match; j++) {
			const Istio__Networking__V1alpha3__HTTPMatchRequest *hm = h->match[j];
			if (hm->port != 0 && !aegis_xds_valid_port(hm->port)) {
				rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, name,
				                      "route %zu: match port %u out of range", ri, hm->port);
				goto out;
			}
			mt[j].port = hm->port;
			mt[j].source_namespace = aegis_xds_adup(a, hm->source_namespace);
			mt[j].has_l7 = hm->uri || hm->scheme || hm->method || hm->authority ||
			               hm->n_headers || hm->n_query_params;
			if (DUP_LABELS(a, &mt[j].source_labels, hm->source_labels, hm->n_source_labels)) {
				rc = AEGIS_ENOMEM;
				goto out;
			}
		}
		for (size_t j = 0; j < h->n_route; j++)
			if ((rc = fill_dest(a, h->route[j]->destination, h->route[j]->weight, &d[j], name, ri,
			                    diag)))
				goto out;
		fix_weights(d, h->n_route);
		r->matches = mt;
		r->n_matches = h->n_match;
		r->dests = d;
		r->n_dests = h->n_route;
	}
	for (size_t k = 0; k < m->n_tcp + m->n_tls; k++, ri++) {
		bool tls = k >= m->n_tcp;
		struct aegis_route *r = &routes[ri];
		r->kind = tls ? AEGIS_ROUTE_TLS : AEGIS_ROUTE_TCP;
		r->name = "";
		size_t n_match = tls ? m->tls[k - m->n_tcp]->n_match : m->tcp[k]->n_match;
		size_t n_route = tls ? m->tls[k - m->n_tcp]->n_route : m->tcp[k]->n_route;
		Istio__Networking__V1alpha3__RouteDestination **rd =
		        tls ? m->tls[k - m->n_tcp]->route : m->tcp[k]->route;
		struct aegis_route_match *mt = n_match ? aegis_arena_zalloc(a, n_match * sizeof(*mt)) : NULL;
		struct aegis_route_dest *d = n_route ? aegis_arena_zalloc(a, n_route * sizeof(*d)) : NULL;
		if ((n_match && mt == NULL) || (n_route && d == NULL)) {
			rc = AEGIS_ENOMEM;
			goto out;
		}
		for (size_t j = 0; j < n_match; j++) {
			int lrc = 0;
			if (tls) {
				const Istio__Networking__V1alpha3__TLSMatchAttributes *tm =
				        m->tls[k - m->n_tcp]->match[j];
				mt[j].port = tm->port;
				mt[j].source_namespace = aegis_xds_adup(a, tm->source_namespace);
				lrc = dup_strv(a, tm->sni_hosts, tm->n_sni_hosts, true, &mt[j].sni_hosts,
				               &mt[j].n_sni_hosts);
				lrc = lrc ? lrc
				          : dup_strv(a, tm->destination_subnets, tm->n_destination_subnets,
				                     false, &mt[j].destination_subnets,
				                     &mt[j].n_destination_subnets);
				lrc = lrc ? lrc
				          : DUP_LABELS(a, &mt[j].source_labels, tm->source_labels,
				                       tm->n_source_labels);
			} else {
				const Istio__Networking__V1alpha3__L4MatchAttributes *lm =
				        m->tcp[k]->match[j];
				mt[j].port = lm->port;
				mt[j].source_namespace = aegis_xds_adup(a, lm->source_namespace);
				lrc = dup_strv(a, lm->destination_subnets, lm->n_destination_subnets, false,
				               &mt[j].destination_subnets, &mt[j].n_destination_subnets);
				lrc = lrc ? lrc
				          : DUP_LABELS(a, &mt[j].source_labels, lm->source_labels,
				                       lm->n_source_labels);
			}
			if (lrc) {
				rc = lrc;
				goto out;
			}
			if (mt[j].port != 0 && !aegis_xds_valid_port(mt[j].port)) {
				rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, name,
				                      "route %zu: match port %u out of range", ri,
				                      mt[j].port);
				goto out;
			}
			for (size_t s = 0; s < mt[j].n_destination_subnets; s++)
				if (!valid_cidr(mt[j].destination_subnets[s])) {
					rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, name,
					                      "route %zu: bad subnet \"%.64s\"", ri,
					                      mt[j].destination_subnets[s]);
					goto out;
				}
		}
		for (size_t j = 0; j < n_route; j++)
			if ((rc = fill_dest(a, rd[j]->destination, rd[j]->weight, &d[j], name, ri, diag)))
				goto out;
		fix_weights(d, n_route);
		r->matches = mt;
		r->n_matches = n_match;
		r->dests = d;
		r->n_dests = n_route;
	}
	vs->routes = routes;
	vs->n_routes = nr;
	b->n_vs++;
out:
	istio__networking__v1alpha3__virtual_service__free_unpacked(m, NULL);
	return rc;
}

/* ---- DestinationRule ---- */

static int fill_policy(struct aegis_arena *a, const Istio__Networking__V1alpha3__TrafficPolicy *tp,
                       struct aegis_traffic_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->sni = "";
	if (tp == NULL)
		return 0;
	p->present = true;
	int rc;
	if (tp->tls) {
		switch (tp->tls->mode) {
		case ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__SIMPLE:
			p->tls_mode = AEGIS_TLS_SIMPLE;
			break;
		case ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__MUTUAL:
			p->tls_mode = AEGIS_TLS_MUTUAL;
			break;
		case ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__ISTIO_MUTUAL:
			p->tls_mode = AEGIS_TLS_ISTIO_MUTUAL;
			break;
		default: p->tls_mode = AEGIS_TLS_DISABLE; break;
		}
		p->sni = aegis_xds_adup(a, tp->tls->sni);
		if ((rc = dup_strv(a, tp->tls->subject_alt_names, tp->tls->n_subject_alt_names, false,
		                   &p->tls_subject_alt_names, &p->n_tls_subject_alt_names)))
			return rc;
	}
	const Istio__Networking__V1alpha3__LoadBalancerSettings *lb = tp->load_balancer;
	if (lb) {
		if (lb->lb_policy_case ==
		    ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__LB_POLICY_SIMPLE) {
			switch (lb->simple) {
			case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__ROUND_ROBIN:
				p->lb = AEGIS_LB_ROUND_ROBIN;
				break;
			case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__LEAST_CONN:
			case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__LEAST_REQUEST:
				p->lb = AEGIS_LB_LEAST_REQUEST;
				break;
			case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__RANDOM:
				p->lb = AEGIS_LB_RANDOM;
				break;
			case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__PASSTHROUGH:
				p->lb = AEGIS_LB_PASSTHROUGH;
				break;
			default: p->lb = AEGIS_LB_UNSET; break;
			}
		}
		const Istio__Networking__V1alpha3__LocalityLoadBalancerSetting *l = lb->locality_lb_setting;
		if (l) {
			p->locality_lb_enabled = l->enabled ? l->enabled->value : true;
			if (l->n_failover) {
				struct aegis_locality_failover *f =
				        aegis_arena_alloc(a, l->n_failover * sizeof(*f));
				if (f == NULL)
					return AEGIS_ENOMEM;
				for (size_t i = 0; i < l->n_failover; i++) {
					f[i].from = aegis_xds_adup(a, l->failover[i]->from);
					f[i].to = aegis_xds_adup(a, l->failover[i]->to);
				}
				p->failover = f;
				p->n_failover = l->n_failover;
			}
			if ((rc = dup_strv(a, l->failover_priority, l->n_failover_priority, false,
			                   &p->failover_priority, &p->n_failover_priority)))
				return rc;
		}
	}
	if (tp->connection_pool && tp->connection_pool->tcp) {
		p->connect_timeout_ms = duration_ms(tp->connection_pool->tcp->connect_timeout);
		int32_t mc = tp->connection_pool->tcp->max_connections;
		p->max_connections = mc > 0 ? (uint32_t)mc : 0;
	}
	const Istio__Networking__V1alpha3__OutlierDetection *od = tp->outlier_detection;
	if (od) {
		if (od->consecutive_5xx_errors)
			p->outlier_consecutive_errors = od->consecutive_5xx_errors->value;
		else if (od->consecutive_errors > 0)
			p->outlier_consecutive_errors = (uint32_t)od->consecutive_errors;
		p->outlier_interval_ms = duration_ms(od->interval);
		p->outlier_base_ejection_ms = duration_ms(od->base_ejection_time);
		p->outlier_max_ejection_percent =
		        od->max_ejection_percent > 0 ? (uint32_t)od->max_ejection_percent : 0;
	}
	return 0;
}

static int decode_dr(struct aegis_xds_builder *b, const char *name, const uint8_t *body, size_t len,
                     struct aegis_diag *diag)
{
	const enum aegis_xds_type t = AEGIS_XDS_DR;
	struct aegis_arena *a = &b->cfg->arena;
	Istio__Networking__V1alpha3__DestinationRule *m =
	        istio__networking__v1alpha3__destination_rule__unpack(NULL, len, body);
	if (m == NULL)
		return aegis_xds_reject(diag, AEGIS_EPARSE, t, name, "malformed protobuf");
	int rc = 0;
	if (!aegis_xds_valid_host(m->host)) {
		rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "bad or missing host \"%.64s\"", m->host);
		goto out;
	}
	if ((rc = AEGIS_XDS_GROW(a, b->dr, b->n_dr, b->cap_dr)))
		goto out;
	struct aegis_destination_rule *dr = &b->dr[b->n_dr];
	memset(dr, 0, sizeof(*dr));
	dr->host = aegis_xds_adup_lower(a, m->host);
	if (dr->host == NULL || (rc = aegis_xds_set_meta(a, &dr->meta, name, m->host, t)) ||
	    (rc = dup_strv(a, m->export_to, m->n_export_to, false, &dr->export_to, &dr->n_export_to)) ||
	    (rc = fill_policy(a, m->traffic_policy, &dr->policy))) {
		rc = rc ? rc : AEGIS_ENOMEM;
		goto out;
	}
	if (m->n_subsets) {
		struct aegis_subset *s = aegis_arena_zalloc(a, m->n_subsets * sizeof(*s));
		if (s == NULL) {
			rc = AEGIS_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < m->n_subsets; i++) {
			if (m->subsets[i]->name[0] == '\0') {
				rc = aegis_xds_reject(diag, AEGIS_EINVAL, t, name, "subset %zu has no name",
				                      i);
				goto out;
			}
			s[i].name = aegis_xds_adup(a, m->subsets[i]->name);
			if (DUP_LABELS(a, &s[i].labels, m->subsets[i]->labels, m->subsets[i]->n_labels) ||
			    (rc = fill_policy(a, m->subsets[i]->traffic_policy, &s[i].policy))) {
				rc = rc ? rc : AEGIS_ENOMEM;
				goto out;
			}
		}
		dr->subsets = s;
		dr->n_subsets = m->n_subsets;
	}
	b->n_dr++;
out:
	istio__networking__v1alpha3__destination_rule__free_unpacked(m, NULL);
	return rc;
}

/* ---- NameTable ---- */

static int fill_name_info(struct aegis_arena *a, const char *host,
                          const Istio__Networking__Nds__V1__NameTable__NameInfo *ni,
                          struct aegis_name_info *out, const char *name, struct aegis_diag *diag)
{
	if (!aegis_xds_valid_host(host))
		return aegis_xds_reject(diag, AEGIS_EINVAL, AEGIS_XDS_NDS, name, "bad host \"%.64s\"", host);
	for (size_t i = 0; i < ni->n_ips; i++)
		if (!aegis_xds_valid_ip(ni->ips[i]))
			return aegis_xds_reject(diag, AEGIS_EINVAL, AEGIS_XDS_NDS, name,
			                        "%s: bad IP \"%.64s\"", host, ni->ips[i]);
	int rc;
	out->host = aegis_xds_adup_lower(a, host);
	out->registry = aegis_xds_adup(a, ni->registry);
	out->shortname = aegis_xds_adup(a, ni->shortname);
	out->namespace_ = aegis_xds_adup(a, ni->namespace_);
	if (!out->host || !out->registry || !out->shortname || !out->namespace_)
		return AEGIS_ENOMEM;
	if ((rc = dup_strv(a, ni->ips, ni->n_ips, false, &out->ips, &out->n_ips)) ||
	    (rc = dup_strv(a, ni->alt_hosts, ni->n_alt_hosts, true, &out->alt_hosts, &out->n_alt_hosts)))
		return rc;
	return 0;
}

static int decode_nds(struct aegis_xds_builder *b, const char *name, const uint8_t *body, size_t len,
                      struct aegis_diag *diag)
{
	struct aegis_arena *a = &b->cfg->arena;
	Istio__Networking__Nds__V1__NameTable *m =
	        istio__networking__nds__v1__name_table__unpack(NULL, len, body);
	if (m == NULL)
		return aegis_xds_reject(diag, AEGIS_EPARSE, AEGIS_XDS_NDS, name, "malformed protobuf");
	int rc = 0;
	for (size_t i = 0; i < m->n_table; i++) {
		if (m->table[i]->value == NULL)
			continue;
		if ((rc = AEGIS_XDS_GROW(a, b->nt, b->n_nt, b->cap_nt)))
			goto out;
		memset(&b->nt[b->n_nt], 0, sizeof(b->nt[0]));
		if ((rc = fill_name_info(a, m->table[i]->key, m->table[i]->value, &b->nt[b->n_nt], name,
		                         diag)))
			goto out;
		b->n_nt++;
	}
	/* Delta NDS puts one host per resource: the resource name with name_info. */
	if (m->n_table == 0 && m->name_info && name[0]) {
		if ((rc = AEGIS_XDS_GROW(a, b->nt, b->n_nt, b->cap_nt)))
			goto out;
		memset(&b->nt[b->n_nt], 0, sizeof(b->nt[0]));
		if ((rc = fill_name_info(a, name, m->name_info, &b->nt[b->n_nt], name, diag)))
			goto out;
		b->n_nt++;
	}
out:
	istio__networking__nds__v1__name_table__free_unpacked(m, NULL);
	return rc;
}

int aegis_xds_decode(struct aegis_xds_builder *b, enum aegis_xds_type t, const char *name,
                     const uint8_t *body, size_t len, struct aegis_diag *diag)
{
	if (len > AEGIS_XDS_MAX_MESSAGE)
		return aegis_xds_reject(diag, AEGIS_ELIMIT, t, name, "resource larger than %u bytes",
		                        AEGIS_XDS_MAX_MESSAGE);
	switch (t) {
	case AEGIS_XDS_SE: return decode_se(b, name, body, len, diag);
	case AEGIS_XDS_VS: return decode_vs(b, name, body, len, diag);
	case AEGIS_XDS_DR: return decode_dr(b, name, body, len, diag);
	case AEGIS_XDS_CLA: return aegis_xds_decode_cla(b, name, body, len, diag);
	case AEGIS_XDS_NDS: return decode_nds(b, name, body, len, diag);
	default: return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "unknown resource type %d", (int)t);
	}
}
