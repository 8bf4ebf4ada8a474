/* DNS-side admin sections, metrics, readiness and lookup: see admin_sections.h. */
#include "admin_sections.h"

#include <stddef.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin_lookup.h"
#include "dns_name.h"

struct aegis_admin_sections {
	struct aegis_admin *admin;
	struct aegis_admin_dns_ctx ctx;
};

static const char *const kind_names[] = {"host", "wildcard", "srv", "ptr", "cname"};
static const char *const source_names[AEGIS_SRC_COUNT_] = {"table", "error", "upstream", "cache", "dropped"};
static const char *const qtype_names[AEGIS_QT_COUNT_] = {"A", "AAAA", "SRV", "PTR", "other"};
static const char *const rcode_names[AEGIS_RC_COUNT_] = {
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other", "none"};

static json_t *name_json(const uint8_t *wire, size_t len)
{
	char buf[1024];
	if (aegis_dns_name_to_str(wire, len, buf, sizeof(buf)) < 0)
		return json_string("?");
	return json_string(buf);
}

static json_t *addr_json(int family, const uint8_t *a)
{
	char buf[INET6_ADDRSTRLEN];
	if (inet_ntop(family, a, buf, sizeof(buf)) == NULL)
		return json_string("?");
	return json_string(buf);
}

static json_t *time_json(double t)
{
	if (t <= 0)
		return json_null();
	char buf[40];
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* ?name= is a case-insensitive substring of the node's name ("reviews" finds every reviews.* name, SRV
 * and PTR nodes included), unless it ends with a dot: a fully qualified name matches that node only, as
 * in DNS presentation form ("legacy.company.internal.", "*.wikipedia.org."). */
static bool name_matches(const char *pres, const char *filter)
{
	if (filter == NULL)
		return true;
	size_t n = strlen(filter);
	if (n > 0 && filter[n - 1] == '.')
		return strcasecmp(pres, filter) == 0;
	return strcasestr(pres, filter) != NULL;
}

static json_t *node_json(const struct aegis_dns_node *nd, const char *pres)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(pres));
	json_object_set_new(o, "kind", json_string(nd->kind < 5 ? kind_names[nd->kind] : "?"));
	json_t *addrs = json_array();
	for (unsigned i = 0; i < nd->n_a; i++)
		json_array_append_new(addrs, addr_json(AF_INET, aegis_node_a(nd) + 4 * i));
	for (unsigned i = 0; i < nd->n_aaaa; i++)
		json_array_append_new(addrs, addr_json(AF_INET6, aegis_node_aaaa(nd) + 16 * i));
	json_object_set_new(o, "addresses", addrs);
	if (nd->n_srv > 0) {
		json_t *srv = json_array();
		for (unsigned i = 0; i < nd->n_srv; i++) {
			struct aegis_dns_srv s = aegis_node_srv(nd, i);
			json_array_append_new(srv, json_pack("{s:i,s:i,s:i,s:o}", "priority", s.priority,
			                                     "weight", s.weight, "port", s.port, "target",
			                                     name_json(s.target.name, s.target.len)));
		}
		json_object_set_new(o, "srv", srv);
	}
	if (nd->n_ptr > 0) {
		json_t *ptr = json_array();
		for (unsigned i = 0; i < nd->n_ptr; i++) {
			struct aegis_dns_name pn = aegis_node_ptr(nd, i);
			json_array_append_new(ptr, name_json(pn.name, pn.len));
		}
		json_object_set_new(o, "ptr", ptr);
	}
	struct aegis_dns_name cn = aegis_node_cname(nd);
	if (cn.len > 0)
		json_object_set_new(o, "cname", name_json(cn.name, cn.len));
	return o;
}

static json_t *dump_dns(void *user, const char *filter)
{
	struct aegis_admin_sections *s = user;
	const struct aegis_table *t = aegis_dns_server_table(s->ctx.dns);
	json_t *names = json_array();
	size_t n = t ? aegis_table_count(t) : 0;
	for (size_t i = 0; i < n; i++) {
		const struct aegis_dns_node *nd = aegis_table_node_at(t, i);
		char pres[1100];
		size_t off = 0;
		if (nd->kind == AEGIS_NODE_WILDCARD)
			off = (size_t)snprintf(pres, sizeof(pres), "*.");
		uint8_t owner[AEGIS_DNS_NAME_BUF];
		struct aegis_dns_name nm = aegis_node_owner(nd, owner); /* PTR nodes store no name */
		if (aegis_dns_name_to_str(nm.name, nm.len, pres + off, sizeof(pres) - off) < 0)
			continue;
		if (!name_matches(pres, filter))
			continue;
		json_array_append_new(names, node_json(nd, pres));
	}
	return json_pack("{s:b,s:i,s:I,s:I,s:o}", "have_table", t != NULL, "ttl",
	                 s->ctx.ttl ? s->ctx.ttl : 30, "table_names", (json_int_t)n, "table_bytes",
	                 (json_int_t)(t ? aegis_table_bytes(t) : 0), "names", names);
}

static json_t *dump_search(void *user, const char *filter)
{
	struct aegis_admin_sections *s = user;
	json_t *suffixes = json_array();
	for (size_t i = 0; i < aegis_search_count(s->ctx.search); i++)
		json_array_append_new(suffixes, json_string(aegis_search_suffix(s->ctx.search, i)));
	const char *ns = aegis_search_namespace(s->ctx.search);
	(void)filter;
	return json_pack("{s:s?,s:s,s:o,s:b}", "namespace", ns && ns[0] ? ns : NULL, "cluster_domain",
	                 s->ctx.cluster_domain ? s->ctx.cluster_domain : "cluster.local", "suffixes",
	                 suffixes, "forward_unready", s->ctx.forward_unready);
}

static json_t *dump_config(void *user, const char *filter)
{
	struct aegis_admin_sections *s = user;
	json_t *paths = json_array();
	for (size_t i = 0; i < s->ctx.n_config_paths; i++)
		json_array_append_new(paths, json_string(s->ctx.config_paths[i]));
	(void)filter;
	if (s->ctx.files == NULL)
		return json_pack("{s:s,s:o}", "source", "none", "paths", paths);
	struct aegis_file_source_status st;
	aegis_file_source_status(s->ctx.files, &st);
	return json_pack("{s:s,s:o,s:I,s:I,s:o,s:o,s:s?,s:I}", "source", "files", "paths", paths, "version",
	                 (json_int_t)st.version, "failures", (json_int_t)st.failures, "last_ok",
	                 time_json(st.last_ok), "last_attempt", time_json(st.last_attempt), "last_error",
	                 st.last_error[0] ? st.last_error : NULL, "names", (json_int_t)st.names);
}

static json_t *dump_listeners(void *user, const char *filter)
{
	struct aegis_admin_sections *s = user;
	json_t *list = json_array();
	char buf[80];
	for (size_t i = 0; i < s->ctx.n_dns_listen; i++)
		json_array_append_new(list,
		                      json_pack("{s:s,s:s,s:s}", "name", "dns", "address",
		                                aegis_sockaddr_str(&s->ctx.dns_listen[i], buf, sizeof(buf)),
		                                "protocol", "udp+tcp"));
	struct sockaddr_storage ss;
	aegis_admin_local_addr(s->admin, &ss);
	json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "name", "admin", "address",
	                                      aegis_sockaddr_str(&ss, buf, sizeof(buf)), "protocol", "http"));
	(void)filter;
	return json_pack("{s:o}", "listeners", list);
}

static void dns_metrics(void *user, struct aegis_metrics *m)
{
	struct aegis_admin_sections *s = user;
	const struct aegis_dns_server_stats *st = aegis_dns_server_stats(s->ctx.dns);
	const struct aegis_table *t = aegis_dns_server_table(s->ctx.dns);

	/* One series per (transport, type, rcode, source) seen so far: at most 2 x 5 x 9 x 5 = 450, in
	 * practice a dozen. */
	aegis_metrics_family(
	        m, "aegis_dns_requests_total", AEGIS_METRIC_COUNTER,
	        "DNS queries by transport, question type, response code and where the answer came "
	        "from (table, cache, upstream, error, dropped; rcode none = no answer sent).");
	static const char *const transport_names[2] = {"udp", "tcp"};
	for (int tr = 0; tr < 2; tr++)
		for (int ty = 0; ty < AEGIS_QT_COUNT_; ty++)
			for (int rc = 0; rc < AEGIS_RC_COUNT_; rc++)
				for (int so = 0; so < AEGIS_SRC_COUNT_; so++) {
					uint64_t v = st->requests[tr][ty][rc][so];
					if (v == 0)
						continue;
					struct aegis_metric_label l[4] = {{"transport", transport_names[tr]},
					                                  {"type", qtype_names[ty]},
					                                  {"rcode", rcode_names[rc]},
					                                  {"source", source_names[so]}};
					aegis_metrics_uint(m, l, 4, v);
				}
	aegis_metrics_family(m, "aegis_dns_queries_received_total", AEGIS_METRIC_COUNTER,
	                     "DNS queries received, by transport (answered, forwarded, dropped or pending).");
	aegis_metrics_uint(m, &(struct aegis_metric_label){"transport", "udp"}, 1, st->queries_udp);
	aegis_metrics_uint(m, &(struct aegis_metric_label){"transport", "tcp"}, 1, st->queries_tcp);
	static const struct aegis_metric_field counters[] = {
	        {"aegis_dns_truncated_total",
	         "Answers sent with TC=1 (too large for the client's UDP limit).",
	         offsetof(struct aegis_dns_server_stats, truncated)},
	        {"aegis_dns_dropped_total",
	         "Queries dropped: malformed, oversized, or lost to a full socket buffer.",
	         offsetof(struct aegis_dns_server_stats, dropped)},
	        {"aegis_dns_forward_refused_total",
	         "Queries that needed forwarding while no forwarder was configured (answered REFUSED).",
	         offsetof(struct aegis_dns_server_stats, forward_refused)},
	        {"aegis_dns_tcp_connections_accepted_total", "DNS TCP connections accepted.",
	         offsetof(struct aegis_dns_server_stats, tcp_accepted)},
	        {"aegis_dns_tcp_connections_idle_closed_total",
	         "DNS TCP connections closed by the idle timeout.",
	         offsetof(struct aegis_dns_server_stats, tcp_closed_idle)},
	        {"aegis_dns_tcp_connections_rejected_total",
	         "Times the DNS TCP listener paused at the connection cap.",
	         offsetof(struct aegis_dns_server_stats, tcp_rejected)},
	        {"aegis_dns_table_swaps_total", "New tables swapped in by the DNS loop.",
	         offsetof(struct aegis_dns_server_stats, table_swaps)},
	};
	aegis_metrics_fields(m, counters, sizeof(counters) / sizeof(counters[0]), st);
	aegis_metrics_family(m, "aegis_dns_table_names", AEGIS_METRIC_GAUGE,
	                     "Names (nodes) in the current table.");
	aegis_metrics_uint(m, NULL, 0, t ? aegis_table_count(t) : 0);
	aegis_metrics_family(m, "aegis_dns_table_bytes", AEGIS_METRIC_GAUGE,
	                     "Bytes held by the current table.");
	aegis_metrics_uint(m, NULL, 0, t ? aegis_table_bytes(t) : 0);

	double bounds[AEGIS_DNS_LATENCY_BUCKETS];
	for (int i = 0; i < AEGIS_DNS_LATENCY_BUCKETS; i++)
		bounds[i] = aegis_dns_latency_bounds_ns[i] / 1e9;
	aegis_metrics_family(m, "aegis_dns_answer_duration_seconds", AEGIS_METRIC_HISTOGRAM,
	                     "Time to answer one query from the table (batch average, see docs/admin.md).");
	aegis_metrics_histogram(m, NULL, 0, bounds, AEGIS_DNS_LATENCY_BUCKETS, st->answer_ns_buckets,
	                        (double)st->answer_ns_sum / 1e9);

	if (s->ctx.files != NULL) {
		struct aegis_file_source_status fs;
		aegis_file_source_status(s->ctx.files, &fs);
		aegis_metrics_family(m, "aegis_config_version", AEGIS_METRIC_GAUGE,
		                     "Configurations loaded successfully so far (the initial load is 1).");
		aegis_metrics_uint(m, NULL, 0, fs.version);
		aegis_metrics_family(m, "aegis_config_reload_failures_total", AEGIS_METRIC_COUNTER,
		                     "Configuration reloads rejected (the last good table kept serving).");
		aegis_metrics_uint(m, NULL, 0, fs.failures);
		aegis_metrics_family(m, "aegis_config_last_success_timestamp_seconds", AEGIS_METRIC_GAUGE,
		                     "Wall-clock time of the last good configuration load.");
		aegis_metrics_value(m, NULL, 0, fs.last_ok);
	}
}

bool aegis_admin_sections_ready(void *sections, char *why, size_t whylen)
{
	struct aegis_admin_sections *s = sections;
	if (aegis_dns_server_table(s->ctx.dns) != NULL)
		return true;
	snprintf(why, whylen, "no config yet");
	return false;
}

static int lookup(void *user, const char *name, const char *type, json_t **out)
{
	struct aegis_admin_sections *s = user;
	struct aegis_answer_ctx ctx = {
	        .table = aegis_dns_server_table(s->ctx.dns),
	        .search = s->ctx.search,
	        .ttl = s->ctx.ttl ? s->ctx.ttl : 30,
	        .forward_unready = s->ctx.forward_unready,
	};
	return aegis_admin_lookup(&ctx, name, type, out);
}

int aegis_admin_sections_new(struct aegis_admin *a, const struct aegis_admin_dns_ctx *ctx,
                             struct aegis_admin_sections **out)
{
	struct aegis_admin_sections *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return AEGIS_ENOMEM;
	s->admin = a;
	s->ctx = *ctx;
	int rc;
	if ((rc = aegis_admin_add_section(a, "dns", dump_dns, s)) != 0 ||
	    (rc = aegis_admin_add_section(a, "search", dump_search, s)) != 0 ||
	    (rc = aegis_admin_add_section(a, "config", dump_config, s)) != 0 ||
	    (rc = aegis_admin_add_section(a, "listeners", dump_listeners, s)) != 0 ||
	    (rc = aegis_admin_add_metrics(a, dns_metrics, s)) != 0) {
		*out = s; /* the admin may hold some registrations: the caller frees it, then s */
		return rc;
	}
	aegis_admin_set_ready(a, aegis_admin_sections_ready, s);
	aegis_admin_set_lookup(a, lookup, s);
	*out = s;
	return 0;
}

void aegis_admin_sections_free(struct aegis_admin_sections *s)
{
	free(s);
}
