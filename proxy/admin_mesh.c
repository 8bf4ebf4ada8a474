/* Mesh admin sections and metrics: see admin_mesh.h. */
#include "admin_mesh.h"
#include "mesh_hbone.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/x509.h>

static const char *const health_names[] = {"UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING"};

static const char *health_str(enum aegis_health h)
{
	return (unsigned)h < sizeof(health_names) / sizeof(health_names[0]) ? health_names[h] : "UNKNOWN";
}

/* "10.0.0.1:80" or "[2001:db8::1]:80". */
static const char *addr_str(const struct aegis_routes_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	inet_ntop(a->family, a->ip, ip, sizeof(ip));
	snprintf(buf, len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, a->port);
	return buf;
}

/* A filter matches a substring, ignoring case, of any of the given strings (NULL ones skipped). */
static bool filter_ok(const char *filter, const char *a, const char *b, const char *c)
{
	if (filter == NULL || filter[0] == '\0')
		return true;
	return (a && strcasestr(a, filter)) || (b && strcasestr(b, filter)) || (c && strcasestr(c, filter));
}

static const struct aegis_routes *routes_of(const struct aegis_admin_mesh_ctx *x)
{
	return x->outbound ? aegis_mesh_outbound_routes(x->outbound) : NULL;
}

/* The service whose routes slice holds r (VIP entries only point at routes). */
static const struct aegis_routes_service *service_of(const struct aegis_routes *t,
                                                     const struct aegis_routes_route *r)
{
	for (size_t i = 0; i < aegis_routes_n_services(t); i++) {
		const struct aegis_routes_service *s = aegis_routes_service_at(t, i);
		if (s->n_routes > 0 && r >= s->routes && r < s->routes + s->n_routes)
			return s;
	}
	return NULL;
}

static json_t *dump_routes(void *user, const char *filter)
{
	const struct aegis_admin_mesh_ctx *x = user;
	const struct aegis_routes *t = routes_of(x);
	json_t *list = json_array();
	size_t n_vips = t ? aegis_routes_n_vips(t) : 0;
	for (size_t i = 0; i < n_vips; i++) {
		struct aegis_routes_addr a;
		const struct aegis_routes_route *r;
		if (!aegis_routes_vip_at(t, i, &a, &r))
			break;
		const struct aegis_routes_service *s = service_of(t, r);
		char vip[80];
		addr_str(&a, vip, sizeof(vip));
		if (!filter_ok(filter, vip, s ? s->host : NULL, NULL))
			continue;
		json_t *dests = json_array();
		for (size_t d = 0; d < r->n_dests; d++) {
			const struct aegis_routes_cluster *c =
			        aegis_routes_cluster_at(t, r->dests[d].cluster);
			double pct = r->total ? 100.0 * r->dests[d].weight / (double)r->total : 0.0;
			json_array_append_new(dests,
			                      json_pack("{s:s,s:s,s:s,s:I,s:f}", "cluster", c->name, "host",
			                                c->host, "subset", c->subset, "weight",
			                                (json_int_t)r->dests[d].weight, "percent", pct));
		}
		json_array_append_new(
		        list, json_pack("{s:s,s:s,s:s,s:i,s:I,s:o}", "vip", vip, "service", s ? s->host : "",
		                        "namespace", s && s->namespace_ ? s->namespace_ : "", "port", a.port,
		                        "timeout_ms", (json_int_t)r->timeout_ms, "destinations", dests));
	}
	return json_pack("{s:b,s:I,s:I,s:o}", "have_routes", t != NULL, "services",
	                 (json_int_t)(t ? aegis_routes_n_services(t) : 0), "clusters",
	                 (json_int_t)(t ? aegis_routes_n_clusters(t) : 0), "routes", list);
}

static bool ejected(const struct aegis_admin_mesh_ctx *x, const struct aegis_routes_endpoint *e)
{
	return x->outbound && aegis_mesh_outbound_ejected(x->outbound, &e->addr);
}

static json_t *endpoint_json(const struct aegis_admin_mesh_ctx *x, const struct aegis_routes_cluster *c,
                             const struct aegis_routes_endpoint *e, bool ej, bool with_cluster)
{
	char addr[80];
	addr_str(&e->addr, addr, sizeof(addr));
	json_t *o = json_pack("{s:s,s:s,s:s}", "endpoint", addr, "status", health_str(e->health),
	                      "outlier_check", ej ? "EJECTED" : "OK");
	if (with_cluster)
		json_object_set_new(o, "cluster", json_string(c->name));
	json_object_set_new(o, "locality", json_string(e->locality ? e->locality : ""));
	json_object_set_new(o, "weight", json_integer(e->weight));
	json_object_set_new(o, "priority", json_integer(e->priority));
	json_object_set_new(o, "identity", json_string(e->identity ? e->identity : ""));
	if (x->outbound != NULL)
		json_object_set_new(o, "transport",
		                    json_string(aegis_mesh_outbound_transport(x->outbound, c, e)));
	return o;
}

static uint64_t cluster_connections(const struct aegis_admin_mesh_ctx *x, const char *name)
{
	const char *n;
	uint64_t v;
	for (size_t i = 0; x->outbound && aegis_mesh_outbound_cluster_count(x->outbound, i, &n, &v); i++)
		if (strcmp(n, name) == 0)
			return v;
	return 0;
}

static json_t *dump_clusters(void *user, const char *filter)
{
	const struct aegis_admin_mesh_ctx *x = user;
	const struct aegis_routes *t = routes_of(x);
	json_t *list = json_array();
	for (size_t i = 0; t && i < aegis_routes_n_clusters(t); i++) {
		const struct aegis_routes_cluster *c = aegis_routes_cluster_at(t, i);
		if (!filter_ok(filter, c->name, NULL, NULL))
			continue;
		json_t *eps = json_array(), *sans = json_array();
		size_t healthy = 0;
		for (size_t e = 0; e < c->n_eps; e++) {
			bool ej = ejected(x, &c->eps[e]);
			healthy += aegis_routes_endpoint_serving(&c->eps[e]) && !ej;
			json_array_append_new(eps, endpoint_json(x, c, &c->eps[e], ej, false));
		}
		for (size_t s = 0; s < c->n_sans; s++)
			json_array_append_new(sans, json_string(c->sans[s]));
		json_array_append_new(list,
		                      json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}",
		                                "name", c->name, "service", c->host, "port", c->port,
		                                "subset", c->subset, "direction", "outbound", "tls",
		                                c->mode == AEGIS_ROUTES_MTLS ? "ISTIO_MUTUAL" : "DISABLE",
		                                "endpoints_total", (json_int_t)c->n_eps, "endpoints_usable",
		                                (json_int_t)healthy, "connections",
		                                (json_int_t)cluster_connections(x, c->name),
		                                "connect_timeout_ms", (json_int_t)c->connect_timeout_ms,
		                                "outlier_consecutive_errors", (json_int_t)c->outlier_errors,
		                                "outlier_base_ejection_ms", (json_int_t)c->outlier_base_ms,
		                                "subject_alt_names", sans, "endpoints", eps));
	}
	return json_pack("{s:b,s:o}", "have_routes", t != NULL, "clusters", list);
}

static json_t *dump_endpoints(void *user, const char *filter)
{
	const struct aegis_admin_mesh_ctx *x = user;
	const struct aegis_routes *t = routes_of(x);
	json_t *list = json_array();
	for (size_t i = 0; t && i < aegis_routes_n_clusters(t); i++) {
		const struct aegis_routes_cluster *c = aegis_routes_cluster_at(t, i);
		for (size_t e = 0; e < c->n_eps; e++) {
			char addr[80];
			addr_str(&c->eps[e].addr, addr, sizeof(addr));
			if (filter_ok(filter, addr, c->name, NULL))
				json_array_append_new(
				        list, endpoint_json(x, c, &c->eps[e], ejected(x, &c->eps[e]), true));
		}
	}
	return json_pack("{s:b,s:o}", "have_routes", t != NULL, "endpoints", list);
}

/* ISO 8601 UTC, or "" when the time cannot be read. */
static const char *asn1_time_str(const ASN1_TIME *at, char *buf, size_t len)
{
	struct tm tm;
	buf[0] = '\0';
	if (at != NULL && ASN1_TIME_to_tm(at, &tm) == 1)
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static json_t *cert_json(X509 *cert, const char *resource, const char *type)
{
	char subj[512] = "", iss[512] = "", nb[40], na[40], id[AEGIS_MTLS_ID_MAX] = "";
	X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof(subj));
	X509_NAME_oneline(X509_get_issuer_name(cert), iss, sizeof(iss));
	if (aegis_mtls_cert_id(cert, id, sizeof(id)) != 0)
		id[0] = '\0';
	char *serial = NULL;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	if (bn != NULL)
		serial = BN_bn2hex(bn);
	BN_free(bn);
	/* Valid now: X509_cmp_current_time is -1 when the time is before now. */
	bool valid = X509_cmp_current_time(X509_get0_notBefore(cert)) < 0 &&
	             X509_cmp_current_time(X509_get0_notAfter(cert)) > 0;
	json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:s,s:s}", "resource_name", resource, "type",
	                      type, "status", "ACTIVE", "valid_cert", valid, "serial_number",
	                      serial ? serial : "", "not_after",
	                      asn1_time_str(X509_get0_notAfter(cert), na, sizeof(na)), "not_before",
	                      asn1_time_str(X509_get0_notBefore(cert), nb, sizeof(nb)), "spiffe_id", id,
	                      "subject", subj, "issuer", iss);
	OPENSSL_free(serial);
	return o;
}

static json_t *dump_secrets(void *user, const char *filter)
{
	const struct aegis_admin_mesh_ctx *x = user;
	json_t *list = json_array();
	(void)filter;
	if (x->mtls == NULL)
		return json_pack("{s:b,s:o}", "have_identity", false, "secrets", list);
	SSL_CTX *ctx = aegis_mtls_ctx(x->mtls);
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	if (leaf != NULL)
		json_array_append_new(list, cert_json(leaf, "default", "Cert Chain"));
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	for (int i = 0; objs != NULL && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		if (ca != NULL)
			json_array_append_new(list, cert_json(ca, "ROOTCA", "CA"));
	}
	struct aegis_mtls_stats st;
	aegis_mtls_stats(x->mtls, &st);
	return json_pack("{s:b,s:s,s:s,s:I,s:I,s:o}", "have_identity", true, "identity",
	                 aegis_mtls_own_id(x->mtls), "cert_dir", x->cert_dir ? x->cert_dir : "", "rotations",
	                 (json_int_t)st.reloads, "rotation_errors", (json_int_t)st.reload_errors, "secrets",
	                 list);
}

static void hbone_conn_json(void *user, const struct aegis_mesh_hbone_conn_info *c)
{
	json_array_append_new(user, json_pack("{s:s,s:s,s:s,s:s,s:I,s:b,s:f,s:f,s:s}", "direction",
	                                      c->inbound ? "inbound" : "outbound", "peer", c->peer,
	                                      "peer_identity", c->peer_identity, "state", c->state, "streams",
	                                      (json_int_t)c->streams, "draining", c->draining, "age_s",
	                                      c->age_s, "idle_s", c->idle_s, "expected", c->expected));
}

/* The HBONE connections: the outbound pool and what peers opened to our 15008. */
static json_t *dump_hbone(void *user, const char *filter)
{
	const struct aegis_admin_mesh_ctx *x = user;
	json_t *list = json_array();
	(void)filter;
	if (x->hbone == NULL)
		return json_pack("{s:b,s:o}", "have_hbone", false, "connections", list);
	aegis_mesh_hbone_foreach(x->hbone, hbone_conn_json, list);
	struct aegis_mesh_hbone_stats st;
	aegis_mesh_hbone_stats(x->hbone, &st);
	return json_pack("{s:b,s:I,s:I,s:o}", "have_hbone", true, "streams_outbound",
	                 (json_int_t)st.streams_active[AEGIS_MESH_HBONE_OUT], "streams_inbound",
	                 (json_int_t)st.streams_active[AEGIS_MESH_HBONE_IN], "connections", list);
}

static void counter(struct aegis_metrics *m, const char *name, const char *help, uint64_t v)
{
	aegis_metrics_family(m, name, AEGIS_METRIC_COUNTER, help);
	aegis_metrics_uint(m, NULL, 0, v);
}

static void mtls_metrics(struct aegis_metrics *m, struct aegis_mtls *mtls)
{
	struct aegis_mtls_stats st;
	aegis_mtls_stats(mtls, &st);
	counter(m, "aegis_mtls_handshakes_total", "mTLS handshakes whose peer passed every check.",
	        st.handshakes_ok);
	counter(m, "aegis_mtls_handshakes_resumed_total",
	        "Of those, TLS session resumptions (outbound direct mTLS reusing a ticket).",
	        st.handshakes_resumed);
	aegis_metrics_family(m, "aegis_mtls_handshake_failures_total", AEGIS_METRIC_COUNTER,
	                     "mTLS handshakes refused, by reason.");
	static const char *const reasons[] = {"expired", "untrusted", "wrong_identity", "error", "timeout"};
	const uint64_t v[] = {st.peer_expired, st.peer_untrusted, st.peer_wrong_id, st.handshake_errors,
	                      st.handshake_timeouts};
	for (size_t i = 0; i < 5; i++) {
		struct aegis_metric_label l = {"reason", reasons[i]};
		aegis_metrics_uint(m, &l, 1, v[i]);
	}
	counter(m, "aegis_mtls_certificate_rotations_total",
	        "Workload certificate rotations taken (after the initial load).", st.reloads);
	counter(m, "aegis_mtls_certificate_rotation_failures_total",
	        "Workload certificate rotations refused (the previous certificate kept serving).",
	        st.reload_errors);
	X509 *leaf = SSL_CTX_get0_certificate(aegis_mtls_ctx(mtls));
	struct tm tm;
	if (leaf != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) == 1) {
		aegis_metrics_family(m, "aegis_mtls_certificate_expiry_timestamp_seconds", AEGIS_METRIC_GAUGE,
		                     "When the workload certificate expires (Unix seconds).");
		aegis_metrics_uint(m, NULL, 0, (uint64_t)timegm(&tm));
	}
}

static void outbound_metrics(struct aegis_metrics *m, const struct aegis_admin_mesh_ctx *x)
{
	struct aegis_mesh_outbound_stats st;
	aegis_mesh_outbound_stats(x->outbound, &st);
	counter(m, "aegis_mesh_outbound_connections_total", "Connections accepted on the outbound listener.",
	        st.accepted);
	counter(m, "aegis_mesh_outbound_passthrough_total",
	        "Outbound connections to a destination that is no mesh service (passed through).",
	        st.passthrough);
	counter(m, "aegis_mesh_outbound_no_route_total",
	        "Outbound connections refused: the route sends nowhere.", st.no_route);
	counter(m, "aegis_mesh_outbound_no_endpoint_total",
	        "Outbound connections refused: no usable endpoint in the cluster.", st.no_endpoint);
	counter(m, "aegis_mesh_outbound_connect_failures_total", "Connects to an endpoint that failed.",
	        st.connect_failures);
	counter(m, "aegis_mesh_outbound_retries_total", "Connections retried on another endpoint.",
	        st.retries);
	counter(m, "aegis_mesh_outbound_not_retried_total",
	        "HBONE connections that failed after their early bytes went out (not tried elsewhere).",
	        st.not_retried);
	counter(m, "aegis_mesh_outbound_early_bytes_total",
	        "Application bytes read at accept and sent with the HBONE CONNECT.", st.early_bytes);
	counter(m, "aegis_mesh_outlier_ejections_total",
	        "Endpoints ejected after consecutive connect failures.", st.ejections);
	aegis_metrics_family(m, "aegis_mesh_outbound_mtls_total", AEGIS_METRIC_COUNTER,
	                     "Outbound mTLS handshakes by result (see aegis_mtls_handshake_failures_total).");
	struct aegis_metric_label l = {"result", "ok"};
	aegis_metrics_uint(m, &l, 1, st.mtls_ok);
	l.value = "refused";
	aegis_metrics_uint(m, &l, 1, st.mtls_refused);
	counter(m, "aegis_mesh_routes_swaps_total", "Routing tables swapped in.", st.routes_swaps);
	aegis_metrics_family(m, "aegis_mesh_active_connections", AEGIS_METRIC_GAUGE,
	                     "Mesh connections being set up or relayed (outbound and inbound).");
	aegis_metrics_uint(m, NULL, 0, st.active);

	/* Connections by route destination: labelled by the cluster's parts so that sum by (subset) works. */
	aegis_metrics_family(m, "aegis_mesh_cluster_connections_total", AEGIS_METRIC_COUNTER,
	                     "Outbound connections relayed, by cluster (outbound|port|subset|host).");
	const char *name;
	uint64_t v;
	for (size_t i = 0; aegis_mesh_outbound_cluster_count(x->outbound, i, &name, &v); i++) {
		char port[8] = "", subset[128] = "", host[512] = "";
		/* outbound|<port>|<subset>|<host>; "other" has no parts */
		if (sscanf(name, "outbound|%7[0-9]|%127[^|]|%511s", port, subset, host) < 2)
			(void)sscanf(name, "outbound|%7[0-9]||%511s", port, host);
		struct aegis_metric_label cl[4] = {
		        {"cluster", name}, {"service", host}, {"port", port}, {"subset", subset}};
		aegis_metrics_uint(m, cl, 4, v);
	}

	/* Ejection state of every endpoint in the current table. */
	const struct aegis_routes *t = aegis_mesh_outbound_routes(x->outbound);
	aegis_metrics_family(m, "aegis_mesh_endpoint_ejected", AEGIS_METRIC_GAUGE,
	                     "1 while the endpoint is ejected by outlier detection.");
	for (size_t i = 0; t && i < aegis_routes_n_clusters(t); i++) {
		const struct aegis_routes_cluster *c = aegis_routes_cluster_at(t, i);
		for (size_t e = 0; e < c->n_eps; e++) {
			char addr[80];
			struct aegis_metric_label el[2] = {
			        {"cluster", c->name},
			        {"endpoint", addr_str(&c->eps[e].addr, addr, sizeof(addr))}};
			aegis_metrics_uint(m, el, 2,
			                   aegis_mesh_outbound_ejected(x->outbound, &c->eps[e].addr));
		}
	}
}

static void inbound_metrics(struct aegis_metrics *m, struct aegis_mesh_inbound *in)
{
	struct aegis_mesh_inbound_stats st;
	aegis_mesh_inbound_stats(in, &st);
	aegis_metrics_family(m, "aegis_mesh_inbound_connections_total", AEGIS_METRIC_COUNTER,
	                     "Inbound connections handed to the application, by kind.");
	struct aegis_metric_label l = {"kind", "mtls"};
	aegis_metrics_uint(m, &l, 1, st.mtls);
	l.value = "plaintext";
	aegis_metrics_uint(m, &l, 1, st.plaintext);
	counter(m, "aegis_mesh_inbound_refused_total",
	        "Inbound connections refused (strict plaintext, failed handshakes).", st.refused);
	counter(m, "aegis_mesh_inbound_local_failures_total",
	        "Inbound connections with nothing listening on the application port.", st.local_failures);
}

/* One sample per direction (outbound = our pool's client connections, inbound = the 15008 listener). */
static void per_dir(struct aegis_metrics *m, const char *name, enum aegis_metric_type type, const char *help,
                    const uint64_t v[2])
{
	aegis_metrics_family(m, name, type, help);
	struct aegis_metric_label l = {"direction", "outbound"};
	aegis_metrics_uint(m, &l, 1, v[0]);
	l.value = "inbound";
	aegis_metrics_uint(m, &l, 1, v[1]);
}

static void hbone_metrics(struct aegis_metrics *m, struct aegis_mesh_hbone *hb)
{
	struct aegis_mesh_hbone_stats st;
	aegis_mesh_hbone_stats(hb, &st);
	per_dir(m, "aegis_hbone_connections_opened_total", AEGIS_METRIC_COUNTER,
	        "HBONE mTLS connections established (handshake and identity check passed).", st.conns_opened);
	per_dir(m, "aegis_hbone_connections_open", AEGIS_METRIC_GAUGE, "HBONE mTLS connections open now.",
	        st.conns_open);
	per_dir(m, "aegis_hbone_streams_opened_total", AEGIS_METRIC_COUNTER,
	        "HBONE CONNECT streams established (answered 200).", st.streams_opened);
	per_dir(m, "aegis_hbone_streams_active", AEGIS_METRIC_GAUGE, "HBONE CONNECT streams open now.",
	        st.streams_active);
	aegis_metrics_family(m, "aegis_hbone_connect_failures_total", AEGIS_METRIC_COUNTER,
	                     "HBONE CONNECTs that failed, by answer (none: reset, lost or timed out first).");
	static const char *const status[AEGIS_MESH_HBONE_N_FAIL] = {"400", "503", "other", "none"};
	static const char *const dirs[2] = {"outbound", "inbound"};
	for (size_t d = 0; d < 2; d++) {
		for (size_t i = 0; i < AEGIS_MESH_HBONE_N_FAIL; i++) {
			struct aegis_metric_label l[2] = {{"direction", dirs[d]}, {"status", status[i]}};
			aegis_metrics_uint(m, l, 2, st.connect_failures[d][i]);
		}
	}
	aegis_metrics_family(m, "aegis_hbone_pings_total", AEGIS_METRIC_COUNTER,
	                     "HBONE keepalive PINGs by result (timeout: the connection was closed).");
	struct aegis_metric_label l = {"result", "sent"};
	aegis_metrics_uint(m, &l, 1, st.pings_sent);
	l.value = "acked";
	aegis_metrics_uint(m, &l, 1, st.pings_acked);
	l.value = "timeout";
	aegis_metrics_uint(m, &l, 1, st.ping_timeouts);
	counter(m, "aegis_hbone_idle_closes_total", "HBONE connections closed after idling without streams.",
	        st.pool_idle_closes);
	aegis_metrics_family(m, "aegis_hbone_stream_resets_total", AEGIS_METRIC_COUNTER,
	                     "HBONE streams ended abruptly, by reason (docs/mesh.md).");
	static const char *const reasons[AEGIS_MESH_HBONE_N_RESET] = {"peer_reset", "app_error",  "buffer",
	                                                              "idle",       "connection", "internal"};
	for (size_t d = 0; d < 2; d++) {
		for (size_t i = 0; i < AEGIS_MESH_HBONE_N_RESET; i++) {
			struct aegis_metric_label rl[2] = {{"direction", dirs[d]}, {"reason", reasons[i]}};
			aegis_metrics_uint(m, rl, 2, st.stream_resets[d][i]);
		}
	}
}

static void mesh_metrics(void *user, struct aegis_metrics *m)
{
	struct aegis_admin_mesh_ctx *x = user;
	if (x->mtls != NULL)
		mtls_metrics(m, x->mtls);
	if (x->outbound != NULL)
		outbound_metrics(m, x);
	if (x->inbound != NULL)
		inbound_metrics(m, x->inbound);
	if (x->hbone != NULL)
		hbone_metrics(m, x->hbone);
}

int aegis_admin_mesh_register(struct aegis_admin *a, struct aegis_admin_mesh_ctx *ctx)
{
	int rc;
	if ((rc = aegis_admin_add_section(a, "routes", dump_routes, ctx)) != 0 ||
	    (rc = aegis_admin_add_section(a, "clusters", dump_clusters, ctx)) != 0 ||
	    (rc = aegis_admin_add_section(a, "endpoints", dump_endpoints, ctx)) != 0 ||
	    (rc = aegis_admin_add_section(a, "secrets", dump_secrets, ctx)) != 0 ||
	    (rc = aegis_admin_add_section(a, "hbone", dump_hbone, ctx)) != 0 ||
	    (rc = aegis_admin_add_metrics(a, mesh_metrics, ctx)) != 0)
		return rc;
	return 0;
}
