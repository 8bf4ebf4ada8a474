/* Forwarder and cache admin sections and metrics: see admin_forward.h. */
#include "admin_forward.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns_server.h"
#include "dnssec.h" /* dnssec */

static const char *const health_names[] = {"up", "down", "probing"};

static json_t *dump_upstreams(void *user, const char *filter)
{
	struct aegis_upstream *up = user;
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(up, &st);
	json_t *servers = json_array();
	for (size_t i = 0; i < aegis_upstream_server_count(up); i++) {
		struct aegis_upstream_server_info si;
		char addr[80];
		if (aegis_upstream_server_info(up, i, &si) != 0)
			continue;
		aegis_sockaddr_str(&si.addr, addr, sizeof(addr));
		if (filter != NULL && strcasestr(addr, filter) == NULL && strcasestr(si.zone, filter) == NULL)
			continue;
		uint64_t n = 0;
		for (int b = 0; b < AEGIS_UPSTREAM_RTT_BUCKETS; b++)
			n += si.rtt_buckets[b];
		json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "address", addr, "zone",
		                      si.zone, "health",
		                      si.health <= AEGIS_UPSTREAM_PROBING ? health_names[si.health] : "?",
		                      "consecutive_failures", (json_int_t)si.consecutive_failures, "sent",
		                      (json_int_t)si.sent, "answered", (json_int_t)si.answered, "timeouts",
		                      (json_int_t)si.timeouts, "errors", (json_int_t)si.errors, "refused",
		                      (json_int_t)si.refused);
		json_object_set_new(o, "rtt_avg_ms",
		                    n ? json_real((double)si.rtt_sum_us / (double)n / 1000.0) : json_null());
		json_array_append_new(servers, o);
	}
	json_t *stats = json_pack(
	        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "queries",
	        (json_int_t)st.queries, "cache_answers", (json_int_t)st.cache_answers, "stale_answers",
	        (json_int_t)st.stale_answers, "stale_timeouts", (json_int_t)st.stale_timeouts, "dedup_hits",
	        (json_int_t)st.dedup_hits, "upstream_queries", (json_int_t)st.upstream_queries, "prefetches",
	        (json_int_t)st.prefetches, "servfails", (json_int_t)st.servfails, "tcp_retries",
	        (json_int_t)st.tcp_retries, "dropped", (json_int_t)st.dropped, "loops", (json_int_t)st.loops,
	        "overload", (json_int_t)st.overload, "cancelled", (json_int_t)st.cancelled, "local_errors",
	        (json_int_t)st.local_errors, "inflight", (json_int_t)st.inflight);
	return json_pack("{s:o,s:o}", "servers", servers, "stats", stats);
}

static json_t *dump_cache(void *user, const char *filter)
{
	struct aegis_cache *c = user;
	struct aegis_cache_stats st;
	aegis_cache_get_stats(c, &st);
	(void)filter;
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "hits", (json_int_t)st.hits,
	                 "stale_hits", (json_int_t)st.stale_hits, "misses", (json_int_t)st.misses, "stores",
	                 (json_int_t)st.stores, "rejected", (json_int_t)st.rejected, "evictions",
	                 (json_int_t)st.evictions, "expired", (json_int_t)st.expired, "prefetch_hints",
	                 (json_int_t)st.prefetch_hints, "positive_entries", (json_int_t)st.pos_entries,
	                 "positive_bytes", (json_int_t)st.pos_bytes, "negative_entries",
	                 (json_int_t)st.neg_entries, "negative_bytes", (json_int_t)st.neg_bytes);
}

static void upstream_metrics(void *user, struct aegis_metrics *m)
{
	struct aegis_upstream *up = user;
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(up, &st);
	static const struct aegis_metric_field counters[] = {
	        {"aegis_upstream_requests_total", "Queries accepted by the forwarder.",
	         offsetof(struct aegis_upstream_stats, queries)},
	        {"aegis_upstream_queries_total", "Upstream transactions started (one per deduplicated miss).",
	         offsetof(struct aegis_upstream_stats, upstream_queries)},
	        {"aegis_upstream_dedup_total", "Queries that joined an upstream query already in flight.",
	         offsetof(struct aegis_upstream_stats, dedup_hits)},
	        {"aegis_upstream_servfail_total", "SERVFAIL answers built after every upstream failed.",
	         offsetof(struct aegis_upstream_stats, servfails)},
	        {"aegis_upstream_tcp_retries_total", "Truncated UDP answers retried over TCP.",
	         offsetof(struct aegis_upstream_stats, tcp_retries)},
	        {"aegis_upstream_rejected_answers_total",
	         "Upstream answers rejected (ID, question or source mismatch).",
	         offsetof(struct aegis_upstream_stats, dropped)},
	        {"aegis_upstream_loops_total", "Own queries seen coming back (capture loop).",
	         offsetof(struct aegis_upstream_stats, loops)},
	        {"aegis_upstream_stale_answers_total",
	         "Expired cache entries answered instead of upstream's (RFC 8767), the timer's included.",
	         offsetof(struct aegis_upstream_stats, stale_answers)},
	        {"aegis_upstream_stale_timeouts_total",
	         "Stale answers sent because upstream had not answered within --stale-answer-timeout.",
	         offsetof(struct aegis_upstream_stats, stale_timeouts)},
	        {"aegis_upstream_overload_total", "Queries refused at the concurrency limit.",
	         offsetof(struct aegis_upstream_stats, overload)},
	        {"aegis_upstream_local_errors_total",
	         "Upstream attempts that failed on the proxy's side (no descriptor or memory); server health "
	         "is not affected.",
	         offsetof(struct aegis_upstream_stats, local_errors)},
	};
	aegis_metrics_fields(m, counters, sizeof(counters) / sizeof(counters[0]), &st);
	aegis_metrics_family(m, "aegis_upstream_inflight", AEGIS_METRIC_GAUGE,
	                     "Outstanding forwarded queries.");
	aegis_metrics_uint(m, NULL, 0, st.inflight);

	size_t n = aegis_upstream_server_count(up);
	struct aegis_upstream_server_info si;
	char addr[80];
	/* One family at a time: Prometheus wants a family's samples together. */
	static const char *const per_server[] = {"aegis_upstream_server_up",
	                                         "aegis_upstream_server_failures_total",
	                                         "aegis_upstream_rtt_seconds"};
	for (int f = 0; f < 3; f++) {
		if (f == 0)
			aegis_metrics_family(m, per_server[f], AEGIS_METRIC_GAUGE,
			                     "1 when the upstream server is considered up.");
		else if (f == 1)
			aegis_metrics_family(m, per_server[f], AEGIS_METRIC_COUNTER,
			                     "Upstream server failures by kind (timeout, error, refused).");
		else
			aegis_metrics_family(m, per_server[f], AEGIS_METRIC_HISTOGRAM,
			                     "Upstream round-trip time of answered queries.");
		for (size_t i = 0; i < n; i++) {
			if (aegis_upstream_server_info(up, i, &si) != 0)
				continue;
			aegis_sockaddr_str(&si.addr, addr, sizeof(addr));
			struct aegis_metric_label l[3] = {{"server", addr}, {"zone", si.zone}, {"kind", ""}};
			if (f == 0) {
				aegis_metrics_uint(m, l, 2, si.health == AEGIS_UPSTREAM_UP);
			} else if (f == 1) {
				l[2].value = "timeout";
				aegis_metrics_uint(m, l, 3, si.timeouts);
				l[2].value = "error";
				aegis_metrics_uint(m, l, 3, si.errors);
				l[2].value = "refused";
				aegis_metrics_uint(m, l, 3, si.refused);
			} else {
				double bounds[AEGIS_UPSTREAM_RTT_BUCKETS - 1];
				for (int b = 0; b < AEGIS_UPSTREAM_RTT_BUCKETS - 1; b++)
					bounds[b] = aegis_upstream_rtt_bounds_us[b] / 1e6;
				aegis_metrics_histogram(m, l, 2, bounds, AEGIS_UPSTREAM_RTT_BUCKETS - 1,
				                        si.rtt_buckets, (double)si.rtt_sum_us / 1e6);
			}
		}
	}
}

static void cache_metrics(void *user, struct aegis_metrics *m)
{
	struct aegis_cache *c = user;
	struct aegis_cache_stats st;
	aegis_cache_get_stats(c, &st);
	static const struct aegis_metric_field counters[] = {
	        {"aegis_cache_hits_total", "Cache hits (stale ones included).",
	         offsetof(struct aegis_cache_stats, hits)},
	        {"aegis_cache_stale_hits_total",
	         "Expired entries served while upstream was failing (RFC 8767).",
	         offsetof(struct aegis_cache_stats, stale_hits)},
	        {"aegis_cache_misses_total", "Cache misses.", offsetof(struct aegis_cache_stats, misses)},
	        {"aegis_cache_evictions_total", "Entries pushed out by the capacity limits.",
	         offsetof(struct aegis_cache_stats, evictions)},
	        {"aegis_cache_expired_total", "Entries dropped at expiry.",
	         offsetof(struct aegis_cache_stats, expired)},
	};
	aegis_metrics_fields(m, counters, sizeof(counters) / sizeof(counters[0]), &st);
	struct aegis_metric_label pos = {"kind", "positive"}, neg = {"kind", "negative"};
	aegis_metrics_family(m, "aegis_cache_entries", AEGIS_METRIC_GAUGE, "Entries in the cache.");
	aegis_metrics_uint(m, &pos, 1, st.pos_entries);
	aegis_metrics_uint(m, &neg, 1, st.neg_entries);
	aegis_metrics_family(m, "aegis_cache_bytes", AEGIS_METRIC_GAUGE, "Bytes held by the cache.");
	aegis_metrics_uint(m, &pos, 1, st.pos_bytes);
	aegis_metrics_uint(m, &neg, 1, st.neg_bytes);
}

/* dnssec: validation results (docs/security.md) */
static void dnssec_metrics(void *user, struct aegis_metrics *m)
{
	struct aegis_dnssec_stats st;
	aegis_dnssec_get_stats(user, &st);
	aegis_metrics_family(m, "aegis_dnssec_validations_total", AEGIS_METRIC_COUNTER,
	                     "Forwarded answers validated, by DNSSEC result.");
	for (int r = 0; r < AEGIS_DNSSEC_N_RESULTS; r++) {
		struct aegis_metric_label l = {"result",
		                               aegis_dnssec_result_name((enum aegis_dnssec_result)r)};
		aegis_metrics_uint(m, &l, 1, st.results[r]);
	}
	aegis_metrics_family(m, "aegis_dnssec_fetches_total", AEGIS_METRIC_COUNTER,
	                     "DNSKEY and DS queries the validator sent through the forwarder.");
	aegis_metrics_uint(m, NULL, 0, st.fetches);
	aegis_metrics_family(m, "aegis_dnssec_key_cache_entries", AEGIS_METRIC_GAUGE,
	                     "Validated DNSKEY/DS sets and zone-cut proofs held by the validator.");
	aegis_metrics_uint(m, NULL, 0, st.key_entries);
}

int aegis_admin_forward_register(struct aegis_admin *a, struct aegis_upstream *up, struct aegis_cache *cache)
{
	int rc = 0;
	if (up != NULL && ((rc = aegis_admin_add_section(a, "upstreams", dump_upstreams, up)) != 0 ||
	                   (rc = aegis_admin_add_metrics(a, upstream_metrics, up)) != 0))
		return rc;
	if (up != NULL && aegis_upstream_dnssec(up) != NULL &&
	    (rc = aegis_admin_add_metrics(a, dnssec_metrics, aegis_upstream_dnssec(up))) != 0) /* dnssec */
		return rc;
	if (cache != NULL && ((rc = aegis_admin_add_section(a, "cache", dump_cache, cache)) != 0 ||
	                      (rc = aegis_admin_add_metrics(a, cache_metrics, cache)) != 0))
		return rc;
	return 0;
}
