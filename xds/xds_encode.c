/* xDS resource encoders: struct aegis_config -> packed protobuf resources (see xds_int.h).
 *
 * The protobuf-c structs are built in a scratch arena that lives for one encode call: the generated
 * structs only borrow our strings (the casts from const char * are safe because packing reads them). */
#include "xds_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/arena.h"
#include "aegis/vip.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "istio/networking/nds/v1/nds.pb-c.h"
#include "networking/v1alpha3/destination_rule.pb-c.h"
#include "networking/v1alpha3/service_entry.pb-c.h"
#include "networking/v1alpha3/virtual_service.pb-c.h"

#define NEW(A, T, ...)                                                                                       \
	({                                                                                                   \
		T *p_ = aegis_arena_alloc((A), sizeof(T));                                                   \
		if (p_ != NULL) {                                                                            \
			T init_ = __VA_ARGS__;                                                               \
			*p_ = init_;                                                                         \
		}                                                                                            \
		p_;                                                                                          \
	})

#define ARR(A, T, N) ((N) ? (T *)aegis_arena_zalloc((A), (N) * sizeof(T)) : NULL)

static int pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return AEGIS_ENOMEM;
	*len = protobuf_c_message_pack(m, buf);
	*out = buf;
	return 0;
}

static char **strv(struct aegis_arena *a, const char *const *v, size_t n)
{
	char **d = ARR(a, char *, n);
	for (size_t i = 0; d && i < n; i++)
		d[i] = (char *)v[i];
	return d;
}

#define LABELS(A, ET, EINIT, OUT, NOUT, L)                                                                   \
	({                                                                                                   \
		int rc_ = 0;                                                                                 \
		(NOUT) = 0;                                                                                  \
		(OUT) = ARR((A), ET *, (L).n);                                                               \
		for (size_t i_ = 0; i_ < (L).n; i_++) {                                                      \
			ET *e_ = NEW((A), ET, EINIT);                                                        \
			if (e_ == NULL || (OUT) == NULL) {                                                   \
				rc_ = AEGIS_ENOMEM;                                                          \
				break;                                                                       \
			}                                                                                    \
			e_->key = (char *)(L).items[i_].key;                                                 \
			e_->value = (char *)(L).items[i_].value;                                             \
			(OUT)[i_] = e_;                                                                      \
			(NOUT) = i_ + 1;                                                                     \
		}                                                                                            \
		rc_;                                                                                         \
	})

/* ---- ServiceEntry ---- */

static Istio__Networking__V1alpha3__WorkloadEntry *build_we(struct aegis_arena *a,
                                                            const struct aegis_workload *w)
{
	Istio__Networking__V1alpha3__WorkloadEntry *m =
	        NEW(a, Istio__Networking__V1alpha3__WorkloadEntry,
	            ISTIO__NETWORKING__V1ALPHA3__WORKLOAD_ENTRY__INIT);
	if (m == NULL)
		return NULL;
	m->address = (char *)w->address;
	m->network = (char *)w->network;
	m->locality = (char *)w->locality;
	m->weight = w->weight;
	m->service_account = (char *)w->service_account;
	m->ports = ARR(a, Istio__Networking__V1alpha3__WorkloadEntry__PortsEntry *, w->n_ports);
	for (size_t i = 0; i < w->n_ports; i++) {
		Istio__Networking__V1alpha3__WorkloadEntry__PortsEntry *e =
		        NEW(a, Istio__Networking__V1alpha3__WorkloadEntry__PortsEntry,
		            ISTIO__NETWORKING__V1ALPHA3__WORKLOAD_ENTRY__PORTS_ENTRY__INIT);
		if (e == NULL || m->ports == NULL)
			return NULL;
		e->key = (char *)w->ports[i].name;
		e->value = w->ports[i].number;
		m->ports[i] = e;
	}
	m->n_ports = w->n_ports;
	if (LABELS(a, Istio__Networking__V1alpha3__WorkloadEntry__LabelsEntry,
	           ISTIO__NETWORKING__V1ALPHA3__WORKLOAD_ENTRY__LABELS_ENTRY__INIT, m->labels, m->n_labels,
	           w->labels))
		return NULL;
	return m;
}

static int encode_se_with(const struct aegis_service_entry *se, const char *const *hosts, size_t n_hosts,
                          const char *const *addrs, size_t n_addrs, uint8_t **out, size_t *len)
{
	struct aegis_arena a;
	aegis_arena_init(&a, 0, 0);
	int rc = AEGIS_ENOMEM;
	Istio__Networking__V1alpha3__ServiceEntry m = ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__INIT;
	m.hosts = strv(&a, hosts, n_hosts);
	m.n_hosts = n_hosts;
	m.addresses = strv(&a, addrs, n_addrs);
	m.n_addresses = n_addrs;
	m.export_to = strv(&a, se->export_to, se->n_export_to);
	m.n_export_to = se->n_export_to;
	m.subject_alt_names = strv(&a, se->subject_alt_names, se->n_subject_alt_names);
	m.n_subject_alt_names = se->n_subject_alt_names;
	m.location = se->location == AEGIS_SE_MESH_INTERNAL
	                     ? ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__LOCATION__MESH_INTERNAL
	                     : ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__LOCATION__MESH_EXTERNAL;
	static const Istio__Networking__V1alpha3__ServiceEntry__Resolution res[] = {
	        [AEGIS_SE_RES_NONE] = ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__NONE,
	        [AEGIS_SE_RES_STATIC] = ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__STATIC,
	        [AEGIS_SE_RES_DNS] = ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__DNS,
	        [AEGIS_SE_RES_DNS_ROUND_ROBIN] =
	                ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__DNS_ROUND_ROBIN,
	};
	m.resolution = res[se->resolution <= AEGIS_SE_RES_DNS_ROUND_ROBIN ? se->resolution : 0];
	m.ports = ARR(&a, Istio__Networking__V1alpha3__ServicePort *, se->n_ports);
	for (size_t i = 0; i < se->n_ports; i++) {
		Istio__Networking__V1alpha3__ServicePort *p =
		        NEW(&a, Istio__Networking__V1alpha3__ServicePort,
		            ISTIO__NETWORKING__V1ALPHA3__SERVICE_PORT__INIT);
		if (p == NULL || m.ports == NULL)
			goto out;
		p->number = se->ports[i].number;
		p->protocol = (char *)se->ports[i].protocol;
		p->name = (char *)se->ports[i].name;
		p->target_port = se->ports[i].target_port;
		m.ports[i] = p;
	}
	m.n_ports = se->n_ports;
	m.endpoints = ARR(&a, Istio__Networking__V1alpha3__WorkloadEntry *, se->n_endpoints);
	for (size_t i = 0; i < se->n_endpoints; i++)
		if (m.endpoints == NULL || (m.endpoints[i] = build_we(&a, &se->endpoints[i])) == NULL)
			goto out;
	m.n_endpoints = se->n_endpoints;
	Istio__Networking__V1alpha3__WorkloadSelector ws =
	        ISTIO__NETWORKING__V1ALPHA3__WORKLOAD_SELECTOR__INIT;
	if (se->workload_selector.n) {
		if (LABELS(&a, Istio__Networking__V1alpha3__WorkloadSelector__LabelsEntry,
		           ISTIO__NETWORKING__V1ALPHA3__WORKLOAD_SELECTOR__LABELS_ENTRY__INIT, ws.labels,
		           ws.n_labels, se->workload_selector))
			goto out;
		m.workload_selector = &ws;
	}
	rc = pack(&m.base, out, len);
out:
	aegis_arena_free(&a);
	return rc;
}

int aegis_xds_encode_se(const struct aegis_service_entry *se, uint8_t **out, size_t *len)
{
	return encode_se_with(se, se->hosts, se->n_hosts, se->addresses, se->n_addresses, out, len);
}

/* ---- VirtualService ---- */

static Google__Protobuf__Duration *build_duration(struct aegis_arena *a, uint32_t ms)
{
	if (ms == 0)
		return NULL;
	Google__Protobuf__Duration *d = NEW(a, Google__Protobuf__Duration, GOOGLE__PROTOBUF__DURATION__INIT);
	if (d != NULL) {
		d->seconds = ms / 1000;
		d->nanos = (int32_t)((ms % 1000) * 1000000);
	}
	return d;
}

static Istio__Networking__V1alpha3__Destination *build_dest(struct aegis_arena *a,
                                                            const struct aegis_route_dest *d)
{
	Istio__Networking__V1alpha3__Destination *m = NEW(a, Istio__Networking__V1alpha3__Destination,
	                                                  ISTIO__NETWORKING__V1ALPHA3__DESTINATION__INIT);
	if (m == NULL)
		return NULL;
	m->host = (char *)d->host;
	m->subset = (char *)d->subset;
	if (d->port) {
		m->port = NEW(a, Istio__Networking__V1alpha3__PortSelector,
		              ISTIO__NETWORKING__V1ALPHA3__PORT_SELECTOR__INIT);
		if (m->port == NULL)
			return NULL;
		m->port->number = d->port;
	}
	return m;
}

/* has_l7 cannot be carried back faithfully (the L7 matchers themselves are not in the model); an
 * exact-"" uri matcher keeps the fact that the route needs L7 information. */
static Istio__Networking__V1alpha3__StringMatch l7_marker = {
        PROTOBUF_C_MESSAGE_INIT(&istio__networking__v1alpha3__string_match__descriptor),
        ISTIO__NETWORKING__V1ALPHA3__STRING_MATCH__MATCH_TYPE_PREFIX,
        {.prefix = (char *)"/"}};

int aegis_xds_encode_vs(const struct aegis_virtual_service *vs, uint8_t **out, size_t *len)
{
	struct aegis_arena a;
	aegis_arena_init(&a, 0, 0);
	int rc = AEGIS_ENOMEM;
	Istio__Networking__V1alpha3__VirtualService m = ISTIO__NETWORKING__V1ALPHA3__VIRTUAL_SERVICE__INIT;
	m.hosts = strv(&a, vs->hosts, vs->n_hosts);
	m.n_hosts = vs->n_hosts;
	m.gateways = strv(&a, vs->gateways, vs->n_gateways);
	m.n_gateways = vs->n_gateways;
	m.export_to = strv(&a, vs->export_to, vs->n_export_to);
	m.n_export_to = vs->n_export_to;
	size_t nh = 0, nt = 0, nl = 0;
	for (size_t i = 0; i < vs->n_routes; i++) {
		nh += vs->routes[i].kind == AEGIS_ROUTE_HTTP;
		nt += vs->routes[i].kind == AEGIS_ROUTE_TCP;
		nl += vs->routes[i].kind == AEGIS_ROUTE_TLS;
	}
	m.http = ARR(&a, Istio__Networking__V1alpha3__HTTPRoute *, nh);
	m.tcp = ARR(&a, Istio__Networking__V1alpha3__TCPRoute *, nt);
	m.tls = ARR(&a, Istio__Networking__V1alpha3__TLSRoute *, nl);
	for (size_t i = 0; i < vs->n_routes; i++) {
		const struct aegis_route *r = &vs->routes[i];
		if (r->kind == AEGIS_ROUTE_HTTP) {
			Istio__Networking__V1alpha3__HTTPRoute *h =
			        NEW(&a, Istio__Networking__V1alpha3__HTTPRoute,
			            ISTIO__NETWORKING__V1ALPHA3__HTTPROUTE__INIT);
			if (h == NULL || m.http == NULL)
				goto out;
			h->name = (char *)r->name;
			h->timeout = build_duration(&a, r->timeout_ms);
			if (r->retries) {
				h->retries = NEW(&a, Istio__Networking__V1alpha3__HTTPRetry,
				                 ISTIO__NETWORKING__V1ALPHA3__HTTPRETRY__INIT);
				if (h->retries == NULL)
					goto out;
				h->retries->attempts = (int32_t)r->retries;
			}
			h->match = ARR(&a, Istio__Networking__V1alpha3__HTTPMatchRequest *, r->n_matches);
			for (size_t j = 0; j < r->n_matches; j++) {
				const struct aegis_route_match *rm = &r->matches[j];
				Istio__Networking__V1alpha3__HTTPMatchRequest *hm =
				        NEW(&a, Istio__Networking__V1alpha3__HTTPMatchRequest,
				            ISTIO__NETWORKING__V1ALPHA3__HTTPMATCH_REQUEST__INIT);
				if (hm == NULL || h->match == NULL)
					goto out;
				hm->port = rm->port;
				hm->source_namespace = (char *)rm->source_namespace;
				if (rm->has_l7)
					hm->uri = &l7_marker;
				if (LABELS(&a,
				           Istio__Networking__V1alpha3__HTTPMatchRequest__SourceLabelsEntry,
				           ISTIO__NETWORKING__V1ALPHA3__HTTPMATCH_REQUEST__SOURCE_LABELS_ENTRY__INIT,
				           hm->source_labels, hm->n_source_labels, rm->source_labels))
					goto out;
				h->match[j] = hm;
			}
			h->n_match = r->n_matches;
			h->route = ARR(&a, Istio__Networking__V1alpha3__HTTPRouteDestination *, r->n_dests);
			for (size_t j = 0; j < r->n_dests; j++) {
				Istio__Networking__V1alpha3__HTTPRouteDestination *d =
				        NEW(&a, Istio__Networking__V1alpha3__HTTPRouteDestination,
				            ISTIO__NETWORKING__V1ALPHA3__HTTPROUTE_DESTINATION__INIT);
				if (d == NULL || h->route == NULL ||
				    (d->destination = build_dest(&a, &r->dests[j])) == NULL)
					goto out;
				d->weight = r->dests[j].weight < 0 ? 0 : r->dests[j].weight;
				h->route[j] = d;
			}
			h->n_route = r->n_dests;
			m.http[m.n_http++] = h;
			continue;
		}
		bool tls = r->kind == AEGIS_ROUTE_TLS;
		Istio__Networking__V1alpha3__RouteDestination **rd =
		        ARR(&a, Istio__Networking__V1alpha3__RouteDestination *, r->n_dests);
		for (size_t j = 0; j < r->n_dests; j++) {
			Istio__Networking__V1alpha3__RouteDestination *d =
			        NEW(&a, Istio__Networking__V1alpha3__RouteDestination,
			            ISTIO__NETWORKING__V1ALPHA3__ROUTE_DESTINATION__INIT);
			if (d == NULL || rd == NULL ||
			    (d->destination = build_dest(&a, &r->dests[j])) == NULL)
				goto out;
			d->weight = r->dests[j].weight < 0 ? 0 : r->dests[j].weight;
			rd[j] = d;
		}
		if (tls) {
			Istio__Networking__V1alpha3__TLSRoute *t =
			        NEW(&a, Istio__Networking__V1alpha3__TLSRoute,
			            ISTIO__NETWORKING__V1ALPHA3__TLSROUTE__INIT);
			if (t == NULL || m.tls == NULL)
				goto out;
			t->route = rd;
			t->n_route = r->n_dests;
			t->match = ARR(&a, Istio__Networking__V1alpha3__TLSMatchAttributes *, r->n_matches);
			for (size_t j = 0; j < r->n_matches; j++) {
				const struct aegis_route_match *rm = &r->matches[j];
				Istio__Networking__V1alpha3__TLSMatchAttributes *tm =
				        NEW(&a, Istio__Networking__V1alpha3__TLSMatchAttributes,
				            ISTIO__NETWORKING__V1ALPHA3__TLSMATCH_ATTRIBUTES__INIT);
				if (tm == NULL || t->match == NULL)
					goto out;
				tm->port = rm->port;
				tm->source_namespace = (char *)rm->source_namespace;
				tm->sni_hosts = strv(&a, rm->sni_hosts, rm->n_sni_hosts);
				tm->n_sni_hosts = rm->n_sni_hosts;
				tm->destination_subnets =
				        strv(&a, rm->destination_subnets, rm->n_destination_subnets);
				tm->n_destination_subnets = rm->n_destination_subnets;
				if (LABELS(&a,
				           Istio__Networking__V1alpha3__TLSMatchAttributes__SourceLabelsEntry,
				           ISTIO__NETWORKING__V1ALPHA3__TLSMATCH_ATTRIBUTES__SOURCE_LABELS_ENTRY__INIT,
				           tm->source_labels, tm->n_source_labels, rm->source_labels))
					goto out;
				t->match[j] = tm;
			}
			t->n_match = r->n_matches;
			m.tls[m.n_tls++] = t;
		} else {
			Istio__Networking__V1alpha3__TCPRoute *t =
			        NEW(&a, Istio__Networking__V1alpha3__TCPRoute,
			            ISTIO__NETWORKING__V1ALPHA3__TCPROUTE__INIT);
			if (t == NULL || m.tcp == NULL)
				goto out;
			t->route = rd;
			t->n_route = r->n_dests;
			t->match = ARR(&a, Istio__Networking__V1alpha3__L4MatchAttributes *, r->n_matches);
			for (size_t j = 0; j < r->n_matches; j++) {
				const struct aegis_route_match *rm = &r->matches[j];
				Istio__Networking__V1alpha3__L4MatchAttributes *lm =
				        NEW(&a, Istio__Networking__V1alpha3__L4MatchAttributes,
				            ISTIO__NETWORKING__V1ALPHA3__L4_MATCH_ATTRIBUTES__INIT);
				if (lm == NULL || t->match == NULL)
					goto out;
				lm->port = rm->port;
				lm->source_namespace = (char *)rm->source_namespace;
				lm->destination_subnets =
				        strv(&a, rm->destination_subnets, rm->n_destination_subnets);
				lm->n_destination_subnets = rm->n_destination_subnets;
				if (LABELS(&a,
				           Istio__Networking__V1alpha3__L4MatchAttributes__SourceLabelsEntry,
				           ISTIO__NETWORKING__V1ALPHA3__L4_MATCH_ATTRIBUTES__SOURCE_LABELS_ENTRY__INIT,
				           lm->source_labels, lm->n_source_labels, rm->source_labels))
					goto out;
				t->match[j] = lm;
			}
			t->n_match = r->n_matches;
			m.tcp[m.n_tcp++] = t;
		}
	}
	rc = pack(&m.base, out, len);
out:
	aegis_arena_free(&a);
	return rc;
}

/* ---- DestinationRule ---- */

static Istio__Networking__V1alpha3__TrafficPolicy *build_policy(struct aegis_arena *a,
                                                                const struct aegis_traffic_policy *p)
{
	if (!p->present)
		return NULL;
	Istio__Networking__V1alpha3__TrafficPolicy *m =
	        NEW(a, Istio__Networking__V1alpha3__TrafficPolicy,
	            ISTIO__NETWORKING__V1ALPHA3__TRAFFIC_POLICY__INIT);
	if (m == NULL)
		return NULL;
	if (p->tls_mode != AEGIS_TLS_UNSET) {
		m->tls = NEW(a, Istio__Networking__V1alpha3__ClientTLSSettings,
		             ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__INIT);
		if (m->tls == NULL)
			return NULL;
		static const Istio__Networking__V1alpha3__ClientTLSSettings__TLSmode modes[] = {
		        [AEGIS_TLS_UNSET] = ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__DISABLE,
		        [AEGIS_TLS_DISABLE] =
		                ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__DISABLE,
		        [AEGIS_TLS_SIMPLE] = ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__SIMPLE,
		        [AEGIS_TLS_MUTUAL] = ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__MUTUAL,
		        [AEGIS_TLS_ISTIO_MUTUAL] =
		                ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__ISTIO_MUTUAL,
		};
		m->tls->mode = modes[p->tls_mode <= AEGIS_TLS_ISTIO_MUTUAL ? p->tls_mode : 0];
		m->tls->sni = (char *)p->sni;
		m->tls->subject_alt_names = strv(a, p->tls_subject_alt_names, p->n_tls_subject_alt_names);
		m->tls->n_subject_alt_names = p->n_tls_subject_alt_names;
	}
	bool lb_loc = p->locality_lb_enabled || p->n_failover || p->n_failover_priority;
	if (p->lb != AEGIS_LB_UNSET || lb_loc) {
		m->load_balancer = NEW(a, Istio__Networking__V1alpha3__LoadBalancerSettings,
		                       ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__INIT);
		if (m->load_balancer == NULL)
			return NULL;
		if (p->lb != AEGIS_LB_UNSET) {
			static const Istio__Networking__V1alpha3__LoadBalancerSettings__SimpleLB lbs[] = {
			        [AEGIS_LB_UNSET] =
			                ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__UNSPECIFIED,
			        [AEGIS_LB_ROUND_ROBIN] =
			                ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__ROUND_ROBIN,
			        [AEGIS_LB_LEAST_REQUEST] =
			                ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__LEAST_REQUEST,
			        [AEGIS_LB_RANDOM] =
			                ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__RANDOM,
			        [AEGIS_LB_PASSTHROUGH] =
			                ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__PASSTHROUGH,
			};
			m->load_balancer->lb_policy_case =
			        ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__LB_POLICY_SIMPLE;
			m->load_balancer->simple = lbs[p->lb <= AEGIS_LB_PASSTHROUGH ? p->lb : 0];
		}
		if (lb_loc) {
			Istio__Networking__V1alpha3__LocalityLoadBalancerSetting *l =
			        NEW(a, Istio__Networking__V1alpha3__LocalityLoadBalancerSetting,
			            ISTIO__NETWORKING__V1ALPHA3__LOCALITY_LOAD_BALANCER_SETTING__INIT);
			Google__Protobuf__BoolValue *en =
			        NEW(a, Google__Protobuf__BoolValue, GOOGLE__PROTOBUF__BOOL_VALUE__INIT);
			if (l == NULL || en == NULL)
				return NULL;
			en->value = p->locality_lb_enabled;
			l->enabled = en;
			l->failover =
			        ARR(a, Istio__Networking__V1alpha3__LocalityLoadBalancerSetting__Failover *,
			            p->n_failover);
			for (size_t i = 0; i < p->n_failover; i++) {
				Istio__Networking__V1alpha3__LocalityLoadBalancerSetting__Failover *f = NEW(
				        a, Istio__Networking__V1alpha3__LocalityLoadBalancerSetting__Failover,
				        ISTIO__NETWORKING__V1ALPHA3__LOCALITY_LOAD_BALANCER_SETTING__FAILOVER__INIT);
				if (f == NULL || l->failover == NULL)
					return NULL;
				f->from = (char *)p->failover[i].from;
				f->to = (char *)p->failover[i].to;
				l->failover[i] = f;
			}
			l->n_failover = p->n_failover;
			l->failover_priority = strv(a, p->failover_priority, p->n_failover_priority);
			l->n_failover_priority = p->n_failover_priority;
			m->load_balancer->locality_lb_setting = l;
		}
	}
	if (p->connect_timeout_ms || p->max_connections) {
		Istio__Networking__V1alpha3__ConnectionPoolSettings *cp =
		        NEW(a, Istio__Networking__V1alpha3__ConnectionPoolSettings,
		            ISTIO__NETWORKING__V1ALPHA3__CONNECTION_POOL_SETTINGS__INIT);
		Istio__Networking__V1alpha3__ConnectionPoolSettings__TCPSettings *tcp =
		        NEW(a, Istio__Networking__V1alpha3__ConnectionPoolSettings__TCPSettings,
		            ISTIO__NETWORKING__V1ALPHA3__CONNECTION_POOL_SETTINGS__TCPSETTINGS__INIT);
		if (cp == NULL || tcp == NULL)
			return NULL;
		tcp->max_connections =
		        p->max_connections > INT32_MAX ? INT32_MAX : (int32_t)p->max_connections;
		tcp->connect_timeout = build_duration(a, p->connect_timeout_ms);
		cp->tcp = tcp;
		m->connection_pool = cp;
	}
	if (p->outlier_consecutive_errors || p->outlier_interval_ms || p->outlier_base_ejection_ms ||
	    p->outlier_max_ejection_percent) {
		Istio__Networking__V1alpha3__OutlierDetection *od =
		        NEW(a, Istio__Networking__V1alpha3__OutlierDetection,
		            ISTIO__NETWORKING__V1ALPHA3__OUTLIER_DETECTION__INIT);
		if (od == NULL)
			return NULL;
		if (p->outlier_consecutive_errors) {
			od->consecutive_5xx_errors =
			        NEW(a, Google__Protobuf__UInt32Value, GOOGLE__PROTOBUF__UINT32_VALUE__INIT);
			if (od->consecutive_5xx_errors == NULL)
				return NULL;
			od->consecutive_5xx_errors->value = p->outlier_consecutive_errors;
		}
		od->interval = build_duration(a, p->outlier_interval_ms);
		od->base_ejection_time = build_duration(a, p->outlier_base_ejection_ms);
		od->max_ejection_percent = (int32_t)(p->outlier_max_ejection_percent & 0x7fffffff);
		m->outlier_detection = od;
	}
	return m;
}

int aegis_xds_encode_dr(const struct aegis_destination_rule *dr, uint8_t **out, size_t *len)
{
	struct aegis_arena a;
	aegis_arena_init(&a, 0, 0);
	int rc = AEGIS_ENOMEM;
	Istio__Networking__V1alpha3__DestinationRule m = ISTIO__NETWORKING__V1ALPHA3__DESTINATION_RULE__INIT;
	m.host = (char *)dr->host;
	m.export_to = strv(&a, dr->export_to, dr->n_export_to);
	m.n_export_to = dr->n_export_to;
	if (dr->policy.present && (m.traffic_policy = build_policy(&a, &dr->policy)) == NULL)
		goto out;
	m.subsets = ARR(&a, Istio__Networking__V1alpha3__Subset *, dr->n_subsets);
	for (size_t i = 0; i < dr->n_subsets; i++) {
		Istio__Networking__V1alpha3__Subset *s = NEW(&a, Istio__Networking__V1alpha3__Subset,
		                                             ISTIO__NETWORKING__V1ALPHA3__SUBSET__INIT);
		if (s == NULL || m.subsets == NULL)
			goto out;
		s->name = (char *)dr->subsets[i].name;
		if (LABELS(&a, Istio__Networking__V1alpha3__Subset__LabelsEntry,
		           ISTIO__NETWORKING__V1ALPHA3__SUBSET__LABELS_ENTRY__INIT, s->labels, s->n_labels,
		           dr->subsets[i].labels))
			goto out;
		if (dr->subsets[i].policy.present &&
		    (s->traffic_policy = build_policy(&a, &dr->subsets[i].policy)) == NULL)
			goto out;
		m.subsets[i] = s;
	}
	m.n_subsets = dr->n_subsets;
	rc = pack(&m.base, out, len);
out:
	aegis_arena_free(&a);
	return rc;
}

/* ---- NameTable ---- */

int aegis_xds_encode_name_table(const struct aegis_name_info *ni, size_t n, uint8_t **out, size_t *len)
{
	struct aegis_arena a;
	aegis_arena_init(&a, 0, 0);
	int rc = AEGIS_ENOMEM;
	Istio__Networking__Nds__V1__NameTable m = ISTIO__NETWORKING__NDS__V1__NAME_TABLE__INIT;
	m.table = ARR(&a, Istio__Networking__Nds__V1__NameTable__TableEntry *, n);
	for (size_t i = 0; i < n; i++) {
		Istio__Networking__Nds__V1__NameTable__TableEntry *e =
		        NEW(&a, Istio__Networking__Nds__V1__NameTable__TableEntry,
		            ISTIO__NETWORKING__NDS__V1__NAME_TABLE__TABLE_ENTRY__INIT);
		Istio__Networking__Nds__V1__NameTable__NameInfo *v =
		        NEW(&a, Istio__Networking__Nds__V1__NameTable__NameInfo,
		            ISTIO__NETWORKING__NDS__V1__NAME_TABLE__NAME_INFO__INIT);
		if (e == NULL || v == NULL || m.table == NULL)
			goto out;
		e->key = (char *)ni[i].host;
		v->ips = strv(&a, ni[i].ips, ni[i].n_ips);
		v->n_ips = ni[i].n_ips;
		v->registry = (char *)ni[i].registry;
		v->shortname = (char *)ni[i].shortname;
		v->namespace_ = (char *)ni[i].namespace_;
		v->alt_hosts = strv(&a, ni[i].alt_hosts, ni[i].n_alt_hosts);
		v->n_alt_hosts = ni[i].n_alt_hosts;
		e->value = v;
		m.table[i] = e;
	}
	m.n_table = n;
	rc = pack(&m.base, out, len);
out:
	aegis_arena_free(&a);
	return rc;
}

/* ---- ClusterLoadAssignment ---- */

static Google__Protobuf__Value *str_value(struct aegis_arena *a, const char *s)
{
	Google__Protobuf__Value *v = NEW(a, Google__Protobuf__Value, GOOGLE__PROTOBUF__VALUE__INIT);
	if (v != NULL) {
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		v->string_value = (char *)s;
	}
	return v;
}

static int struct_put(struct aegis_arena *a, Google__Protobuf__Struct *s, const char *key,
                      Google__Protobuf__Value *v)
{
	Google__Protobuf__Struct__FieldsEntry *e =
	        NEW(a, Google__Protobuf__Struct__FieldsEntry, GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT);
	Google__Protobuf__Struct__FieldsEntry **f =
	        aegis_arena_grow(a, s->fields, s->n_fields, s->n_fields + 1, sizeof(*f));
	if (e == NULL || f == NULL || v == NULL)
		return AEGIS_ENOMEM;
	e->key = (char *)key;
	e->value = v;
	f[s->n_fields++] = e;
	s->fields = f;
	return 0;
}

static Envoy__Config__Core__V3__Metadata *build_ep_meta(struct aegis_arena *a, const struct aegis_workload *w,
                                                        const char *cluster)
{
	if (!w->network[0] && !w->service_account[0] && w->labels.n == 0 && !cluster[0])
		return NULL;
	Google__Protobuf__Struct *s = NEW(a, Google__Protobuf__Struct, GOOGLE__PROTOBUF__STRUCT__INIT);
	Envoy__Config__Core__V3__Metadata *md =
	        NEW(a, Envoy__Config__Core__V3__Metadata, ENVOY__CONFIG__CORE__V3__METADATA__INIT);
	Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *fe =
	        NEW(a, Envoy__Config__Core__V3__Metadata__FilterMetadataEntry,
	            ENVOY__CONFIG__CORE__V3__METADATA__FILTER_METADATA_ENTRY__INIT);
	Envoy__Config__Core__V3__Metadata__FilterMetadataEntry **fes =
	        ARR(a, Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *, 1);
	if (s == NULL || md == NULL || fe == NULL || fes == NULL)
		return NULL;
	if (cluster[0] && struct_put(a, s, "cluster", str_value(a, cluster)))
		return NULL;
	if (w->network[0] && struct_put(a, s, "network", str_value(a, w->network)))
		return NULL;
	if (w->service_account[0] && struct_put(a, s, "service_account", str_value(a, w->service_account)))
		return NULL;
	if (w->labels.n) {
		Google__Protobuf__Struct *ls =
		        NEW(a, Google__Protobuf__Struct, GOOGLE__PROTOBUF__STRUCT__INIT);
		Google__Protobuf__Value *lv = NEW(a, Google__Protobuf__Value, GOOGLE__PROTOBUF__VALUE__INIT);
		if (ls == NULL || lv == NULL)
			return NULL;
		for (size_t i = 0; i < w->labels.n; i++)
			if (struct_put(a, ls, w->labels.items[i].key, str_value(a, w->labels.items[i].value)))
				return NULL;
		lv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
		lv->struct_value = ls;
		if (struct_put(a, s, "labels", lv))
			return NULL;
	}
	fe->key = (char *)"istio";
	fe->value = s;
	fes[0] = fe;
	md->filter_metadata = fes;
	md->n_filter_metadata = 1;
	return md;
}

static Envoy__Config__Core__V3__Locality *build_locality(struct aegis_arena *a, const char *loc)
{
	Envoy__Config__Core__V3__Locality *l =
	        NEW(a, Envoy__Config__Core__V3__Locality, ENVOY__CONFIG__CORE__V3__LOCALITY__INIT);
	char *copy = aegis_arena_strdup(a, loc);
	if (l == NULL || copy == NULL)
		return NULL;
	char *parts[3] = {copy, NULL, NULL};
	for (int i = 1; i < 3 && parts[i - 1]; i++) {
		char *slash = strchr(parts[i - 1], '/');
		if (slash) {
			*slash = '\0';
			parts[i] = slash + 1;
		}
	}
	l->region = parts[0];
	l->zone = parts[1] ? parts[1] : (char *)"";
	l->sub_zone = parts[2] ? parts[2] : (char *)"";
	return l;
}

int aegis_xds_encode_cla(const char *cluster_name, const struct aegis_workload *eps, size_t n, uint32_t port,
                         uint8_t **out, size_t *len)
{
	return aegis_xds_encode_cla_clusters(cluster_name, eps, NULL, n, port, out, len);
}

int aegis_xds_encode_cla_clusters(const char *cluster_name, const struct aegis_workload *eps,
                                  const char *const *clusters, size_t n, uint32_t port, uint8_t **out,
                                  size_t *len)
{
	struct aegis_arena a;
	aegis_arena_init(&a, 0, 0);
	int rc = AEGIS_ENOMEM;
	Envoy__Config__Endpoint__V3__ClusterLoadAssignment m =
	        ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
	m.cluster_name = (char *)cluster_name;
	/* One LocalityLbEndpoints per distinct locality, in order of first appearance. */
	m.endpoints = ARR(&a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints *, n);
	const char **locs = ARR(&a, const char *, n);
	if (n && (m.endpoints == NULL || locs == NULL))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct aegis_workload *w = &eps[i];
		size_t li = 0;
		while (li < m.n_endpoints && strcmp(locs[li], w->locality) != 0)
			li++;
		if (li == m.n_endpoints) {
			Envoy__Config__Endpoint__V3__LocalityLbEndpoints *le =
			        NEW(&a, Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
			            ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT);
			if (le == NULL || (le->locality = build_locality(&a, w->locality)) == NULL)
				goto out;
			le->lb_endpoints = ARR(&a, Envoy__Config__Endpoint__V3__LbEndpoint *, n);
			if (le->lb_endpoints == NULL)
				goto out;
			locs[li] = w->locality;
			m.endpoints[m.n_endpoints++] = le;
		}
		Envoy__Config__Endpoint__V3__LocalityLbEndpoints *le = m.endpoints[li];
		Envoy__Config__Endpoint__V3__LbEndpoint *lbe =
		        NEW(&a, Envoy__Config__Endpoint__V3__LbEndpoint,
		            ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT);
		Envoy__Config__Endpoint__V3__Endpoint *ep = NEW(&a, Envoy__Config__Endpoint__V3__Endpoint,
		                                                ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT);
		Envoy__Config__Core__V3__Address *ad =
		        NEW(&a, Envoy__Config__Core__V3__Address, ENVOY__CONFIG__CORE__V3__ADDRESS__INIT);
		Envoy__Config__Core__V3__SocketAddress *sa =
		        NEW(&a, Envoy__Config__Core__V3__SocketAddress,
		            ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT);
		if (lbe == NULL || ep == NULL || ad == NULL || sa == NULL)
			goto out;
		sa->address = (char *)w->address;
		sa->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
		sa->port_value = w->n_ports ? w->ports[0].number : port;
		ad->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
		ad->socket_address = sa;
		ep->address = ad;
		ep->hostname = (char *)w->hostname;
		lbe->host_identifier_case =
		        ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
		lbe->endpoint = ep;
		static const Envoy__Config__Core__V3__HealthStatus hs[] = {
		        [AEGIS_HEALTH_UNKNOWN] = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNKNOWN,
		        [AEGIS_HEALTH_HEALTHY] = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY,
		        [AEGIS_HEALTH_UNHEALTHY] = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY,
		        [AEGIS_HEALTH_DRAINING] = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING,
		};
		lbe->health_status = hs[w->health <= AEGIS_HEALTH_DRAINING ? w->health : 0];
		if (w->weight) {
			lbe->load_balancing_weight =
			        NEW(&a, Google__Protobuf__UInt32Value, GOOGLE__PROTOBUF__UINT32_VALUE__INIT);
			if (lbe->load_balancing_weight == NULL)
				goto out;
			lbe->load_balancing_weight->value = w->weight;
		}
		lbe->metadata = build_ep_meta(&a, w, clusters && clusters[i] ? clusters[i] : "");
		le->lb_endpoints[le->n_lb_endpoints++] = lbe;
	}
	rc = pack(&m.base, out, len);
out:
	aegis_arena_free(&a);
	return rc;
}

int aegis_xds_wrap(const char *type_url, const struct aegis_xds_resource *r, uint8_t **out, size_t *len)
{
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = (char *)type_url;
	any.value.data = r->body;
	any.value.len = r->len;
	Envoy__Service__Discovery__V3__Resource res = ENVOY__SERVICE__DISCOVERY__V3__RESOURCE__INIT;
	res.name = r->name;
	res.version = r->version;
	res.resource = &any;
	return pack(&res.base, out, len);
}
