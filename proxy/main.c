/* aegis-proxy: the sidecar daemon. Wires the options, the configuration source, the search context and the
 * DNS server onto one libev loop. */
#include <errno.h>
#include <ifaddrs.h> /* policy */
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h> /* policy */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* policy */

#include <ev.h>

#include "admin.h"         /* admin */
#include "admin_forward.h" /* admin */
#include "admin_mesh.h"    /* admin */
#include "admin_sections.h"
#include "admin_xds.h" /* admin */
#include "aegis/container.h"
#include "aegis/log.h"
#include "dns_policy.h" /* policy */
#include "dns_search.h"
#include "dns_server.h"
#include "file_source.h"
#include "mesh_hbone.h"    /* mesh */
#include "mesh_inbound.h"  /* mesh */
#include "mesh_outbound.h" /* mesh */
#include "xds_source.h"
#include "metrics.h" /* policy */
#include "privs.h"   /* policy */
#include "proxy_options.h"
#include "query_log.h" /* policy */
#include "resolv_conf.h"
#include "upstream.h"
#include "dnssec.h" /* dnssec */

struct proxy {
	struct aegis_proxy_options opts;
	struct ev_loop *loop;
	struct aegis_resolv_conf resolv;
	bool have_resolv;
	struct aegis_search *search;
	struct aegis_dns_server *dns;
	struct aegis_file_source *files;
	struct aegis_xds_source *xds;
	struct aegis_cache *cache;
	struct aegis_upstream *upstream;
	struct aegis_dnssec *dnssec; /* dnssec: --dnssec-validate */
	/* workers: --dns-workers; index 0 unused (worker 0 is dns/cache/upstream/policy above) */
	struct aegis_upstream_opts fwd_uo;
	struct aegis_upstream_zone fwd_zones[AEGIS_MAX_STUB_ZONES];
	struct aegis_cache_opts fwd_co;
	struct aegis_cache *w_cache[AEGIS_DNS_MAX_WORKERS];
	struct aegis_upstream *w_upstream[AEGIS_DNS_MAX_WORKERS];
	struct aegis_policy *w_policy[AEGIS_DNS_MAX_WORKERS];
	ev_signal sigterm, sigint;
	/* admin */
	struct aegis_admin *admin;
	struct aegis_admin_sections *admin_sections;
	struct aegis_admin_mesh_ctx admin_mesh;
	struct aegis_admin *status; /* --status-listen */
	/* end admin */
	/* policy */
	struct aegis_policy *policy;
	struct aegis_qlog *qlog;
	ev_signal policy_hup;
	ev_stat blocklist_stat;
	uint64_t blocklist_failures;
	bool privs_dropped;
	uid_t run_uid; /* --user, resolved before the sockets are made */
	gid_t run_gid;
	/* end policy */
	/* mesh */
	struct aegis_mtls *mtls;
	struct aegis_mesh_outbound *outbound;
	struct aegis_mesh_inbound *inbound;
	struct aegis_mesh_hbone *hbone;
	struct aegis_routes_opts routes_opts;
	bool draining; /* SIGTERM came while mesh connections were open */
	double drain_deadline;
	ev_timer drain_timer;
	/* end mesh */
};

/* mesh: application connections open now (relays, HBONE streams both ways, connections being set up). */
static unsigned mesh_open(const struct proxy *p)
{
	struct aegis_mesh_outbound_stats st;
	if (p->outbound == NULL)
		return 0;
	aegis_mesh_outbound_stats(p->outbound, &st);
	return st.active;
}

static void drain_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct proxy *p = w->data;
	unsigned n = mesh_open(p);
	(void)revents;
	if (n > 0 && ev_now(loop) < p->drain_deadline)
		return;
	if (n == 0)
		AEGIS_LOG(AEGIS_LOG_INFO, "drained: shutting down");
	else
		AEGIS_LOG(AEGIS_LOG_WARN, "drain timeout: closing the mesh connections still open",
		          LKV_I("open", n));
	ev_break(loop, EVBREAK_ALL);
}

/* SIGTERM/SIGINT. With mesh connections open and --drain-timeout, a drain first (docs/mesh.md): not
 * ready, GOAWAY to every HBONE peer, DNS still answered, until the connections have finished or the
 * timeout; a second signal ends it at once. */
static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct proxy *p = w->data;
	unsigned n = mesh_open(p);
	(void)revents;
	if (p->draining || p->opts.drain_ms == 0 || n == 0) {
		AEGIS_LOG(AEGIS_LOG_INFO, "shutting down", LKV_I("signal", w->signum));
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	p->draining = true;
	AEGIS_LOG(AEGIS_LOG_INFO, "draining: not ready, GOAWAY to peers, waiting for open mesh connections",
	          LKV_I("signal", w->signum), LKV_I("open", n), LKV_I("timeout_ms", p->opts.drain_ms));
	if (p->hbone != NULL)
		aegis_mesh_hbone_drain(p->hbone);
	p->drain_deadline = ev_now(loop) + p->opts.drain_ms / 1000.0;
	ev_timer_init(&p->drain_timer, drain_tick, 0.1, 0.1);
	p->drain_timer.data = p;
	ev_timer_start(loop, &p->drain_timer);
}

/* Readiness: the table's (admin_sections.c), and not while draining. */
static bool proxy_ready(void *user, char *why, size_t whylen)
{
	struct proxy *p = user;
	if (p->draining) {
		snprintf(why, whylen, "draining");
		return false;
	}
	return aegis_admin_sections_ready(p->admin_sections, why, whylen);
}

/* The search list comes from the pod's resolv.conf (what its resolver will append), or, when that has
 * none, from the namespace (the Kubernetes default list). */
static int setup_search(struct proxy *p)
{
	struct aegis_diag diag = {0};
	int rc = aegis_resolv_conf_load(p->opts.resolv_conf, &p->resolv, &diag);
	if (rc == 0) {
		p->have_resolv = true;
	} else {
		char buf[512];
		AEGIS_LOG(AEGIS_LOG_WARN, "cannot use resolv.conf; search list from --namespace only",
		          LKV_S("path", p->opts.resolv_conf),
		          LKV_S("error", aegis_diag_str(&diag, buf, sizeof(buf))));
	}
	const char *search[AEGIS_CONFIG_MAX_SEARCH];
	size_t n = 0;
	for (size_t i = 0; p->have_resolv && i < p->resolv.n_search; i++)
		search[n++] = p->resolv.search[i];
	struct aegis_search_opts so = {
	        .namespace_ = p->opts.namespace_,
	        .cluster_domain = p->opts.cluster_domain,
	        .search = search,
	        .n_search = n,
	};
	rc = aegis_search_new(&so, &p->search);
	if (rc != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "bad search configuration", LKV_S("error", aegis_strerror(rc)),
		          LKV_S("cluster_domain", p->opts.cluster_domain));
		return rc;
	}
	return 0;
}

static int start_dns(struct proxy *p, bool default_listen)
{
	struct aegis_dns_server_opts so = {
	        .n_listen = p->opts.n_dns_listen,
	        .ttl = p->opts.ttl,
	        .forward_unready = p->opts.forward_unready,
	        .reuseport = p->opts.reuseport || p->opts.dns_workers > 1, /* workers */
	};
	memcpy(so.listen, p->opts.dns_listen, sizeof(so.listen));
	int rc = aegis_dns_server_new(p->loop, &so, p->search, &p->dns);
	if (rc != 0 && default_listen) {
		/* Pods without IPv6 have no ::1: the default then listens on 127.0.0.1 alone. */
		AEGIS_LOG(AEGIS_LOG_WARN, "cannot listen on [::1]:15053; continuing with 127.0.0.1 only");
		so.n_listen = 1;
		rc = aegis_dns_server_new(p->loop, &so, p->search, &p->dns);
	}
	if (rc != 0)
		return rc;
	/* workers: their sockets are bound here too, with the same fsuid as the first server's */
	rc = aegis_dns_server_add_workers(p->dns, p->opts.dns_workers);
	if (rc != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "cannot start the DNS workers",
		          LKV_S("error", aegis_strerror(rc)));
		return rc;
	}
	char buf[64];
	for (size_t i = 0; i < so.n_listen; i++)
		AEGIS_LOG(AEGIS_LOG_INFO, "dns listening",
		          LKV_S("addr", aegis_sockaddr_str(&so.listen[i], buf, sizeof(buf))),
		          LKV_S("proto", "udp+tcp"));
	return 0;
}

/* The forwarder for names that are not mesh names: --upstream servers, else the pod's resolv.conf
 * nameservers; stub zones from --stub-zone. With no server at all such names are answered REFUSED. */
static int start_forwarder(struct proxy *p)
{
	struct aegis_upstream_opts uo;
	aegis_upstream_opts_default(&uo);
	if (p->opts.n_upstreams > 0) {
		uo.servers = p->opts.upstreams;
		uo.n_servers = p->opts.n_upstreams;
	} else if (p->have_resolv) {
		uo.servers = p->resolv.ns;
		uo.n_servers = p->resolv.n_ns;
	}
	struct aegis_upstream_zone zones[AEGIS_MAX_STUB_ZONES];
	for (size_t i = 0; i < p->opts.n_stub_zones; i++) {
		zones[i] = (struct aegis_upstream_zone){
		        .zone = p->opts.stub_zones[i].zone,
		        .servers = p->opts.stub_zones[i].servers,
		        .n_servers = p->opts.stub_zones[i].n_servers,
		};
	}
	uo.zones = zones;
	uo.n_zones = p->opts.n_stub_zones;
	if (uo.n_servers == 0 && uo.n_zones == 0) {
		AEGIS_LOG(AEGIS_LOG_WARN,
		          "no upstream servers (no --upstream, no nameserver in resolv.conf): "
		          "names that are not mesh names get REFUSED");
		return 0;
	}
	if (p->opts.upstream_parallel)
		uo.mode = AEGIS_UPSTREAM_PARALLEL;
	if (p->opts.upstream_timeout_ms)
		uo.try_timeout_ms = p->opts.upstream_timeout_ms;
	if (p->opts.upstream_deadline_ms)
		uo.deadline_ms = p->opts.upstream_deadline_ms;
	if (p->opts.upstream_max_concurrent)
		uo.max_concurrent = p->opts.upstream_max_concurrent;
	uo.so_mark = p->opts.so_mark;
	if (p->opts.serve_stale && !p->opts.no_cache)
		uo.stale_answer_timeout_ms = p->opts.stale_answer_timeout_ms;

	if (!p->opts.no_cache) {
		struct aegis_cache_opts co;
		aegis_cache_opts_default(&co);
		if (p->opts.cache_size)
			co.pos_max_entries = p->opts.cache_size;
		if (p->opts.cache_max_ttl)
			co.max_ttl = p->opts.cache_max_ttl;
		co.min_ttl = p->opts.cache_min_ttl;
		co.stale_max = p->opts.serve_stale;
		p->fwd_co = co; /* workers: each makes its own cache the same way */
		int rc = aegis_cache_new(&co, &p->cache);
		if (rc != 0) {
			AEGIS_LOG(AEGIS_LOG_ERROR, "bad cache configuration",
			          LKV_S("error", aegis_strerror(rc)));
			return rc;
		}
	}
	int rc = aegis_upstream_new(p->loop, &uo, p->cache, &p->upstream);
	if (rc != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "bad upstream configuration", LKV_S("error", aegis_strerror(rc)));
		return rc;
	}
	if (p->opts.dnssec_validate) { /* dnssec: a bad anchor file stops start-up with file:line */
		struct aegis_dnssec_opts dopts = {.anchor_files = p->opts.trust_anchors,
		                                  .n_anchor_files = p->opts.n_trust_anchors};
		struct aegis_diag diag = {0};
		rc = aegis_dnssec_new(&dopts, &p->dnssec, &diag);
		if (rc != 0) {
			char dbuf[600];
			AEGIS_LOG(AEGIS_LOG_ERROR, "bad trust anchor",
			          LKV_S("error", aegis_diag_str(&diag, dbuf, sizeof(dbuf))));
			fprintf(stderr, "aegis-proxy: %s\n", aegis_diag_str(&diag, dbuf, sizeof(dbuf)));
			return rc;
		}
		aegis_upstream_set_dnssec(p->upstream, p->dnssec);
		AEGIS_LOG(AEGIS_LOG_INFO, "dnssec validation on",
		          LKV_I("anchor_files", p->opts.n_trust_anchors));
	}
	char buf[64];
	for (size_t i = 0; i < uo.n_servers; i++)
		AEGIS_LOG(AEGIS_LOG_INFO, "upstream",
		          LKV_S("addr", aegis_sockaddr_str(&uo.servers[i], buf, sizeof(buf))));
	for (size_t i = 0; i < uo.n_zones; i++)
		AEGIS_LOG(AEGIS_LOG_INFO, "stub zone", LKV_S("zone", zones[i].zone),
		          LKV_I("servers", zones[i].n_servers));
	aegis_dns_server_set_upstream(p->dns, p->upstream);
	/* workers: each makes its own forwarder with these options (workers_start) */
	p->fwd_uo = uo;
	memcpy(p->fwd_zones, zones, sizeof(zones));
	p->fwd_uo.zones = p->fwd_zones;
	return 0;
}

/* policy: the addresses of this network namespace's interfaces, which are the pod's own. A query the
 * pod's iptables REDIRECTs here keeps its source address (the pod IP the application's socket chose for
 * the original nameserver), so loopback alone would refuse the pod's own traffic (docs/security.md). */
static void policy_set_local_of(struct aegis_policy *pol)
{
	struct ifaddrs *ifs = NULL;
	struct aegis_policy_cidr local[AEGIS_POLICY_MAX_LOCAL];
	size_t n = 0;
	if (getifaddrs(&ifs) != 0) {
		AEGIS_LOG(AEGIS_LOG_WARN, "cannot list interface addresses; ACL allows loopback only",
		          LKV_S("error", strerror(errno)));
		return;
	}
	for (struct ifaddrs *i = ifs; i != NULL && n < AEGIS_POLICY_MAX_LOCAL; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		struct aegis_policy_cidr *c = &local[n];
		memset(c, 0, sizeof(*c));
		if (i->ifa_addr->sa_family == AF_INET) {
			c->family = AF_INET;
			c->prefix = 32;
			memcpy(c->addr, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			c->family = AF_INET6;
			c->prefix = 128;
			memcpy(c->addr, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		n++;
	}
	freeifaddrs(ifs);
	if (aegis_policy_set_local(pol, local, n) != 0)
		AEGIS_LOG(AEGIS_LOG_WARN, "too many interface addresses; ACL uses the first ones",
		          LKV_I("max", AEGIS_POLICY_MAX_LOCAL));
	AEGIS_LOG(AEGIS_LOG_DEBUG, "ACL local addresses", LKV_I("count", n));
}

/* policy: (re)loads --blocklist. At start-up a bad file is fatal (file:line); later it is rejected and
 * the last good blocklist stays. */
static int policy_load_blocklist(struct proxy *p, bool startup)
{
	struct aegis_blocklist *bl = NULL;
	struct aegis_diag diag = {0};
	char buf[600];
	int rc = aegis_policy_blocklist_load(p->opts.blocklist, &bl, &diag);
	if (rc != 0) {
		aegis_diag_str(&diag, buf, sizeof(buf));
		if (startup) {
			AEGIS_LOG(AEGIS_LOG_ERROR, "cannot load blocklist", LKV_S("error", buf));
			fprintf(stderr, "aegis-proxy: %s\n", buf);
		} else {
			p->blocklist_failures++;
			AEGIS_LOG(AEGIS_LOG_ERROR,
			          "blocklist reload rejected; keeping the last good blocklist",
			          LKV_S("error", buf));
		}
		return rc;
	}
	AEGIS_LOG(AEGIS_LOG_INFO, startup ? "blocklist loaded" : "blocklist reloaded",
	          LKV_S("path", p->opts.blocklist), LKV_I("rules", aegis_policy_blocklist_rules(bl)));
	aegis_policy_set_blocklist(p->policy, bl);
	return 0;
}

static void policy_hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct proxy *p = container_of(w, struct proxy, policy_hup);
	policy_set_local_of(p->policy);
	if (p->opts.blocklist != NULL)
		(void)policy_load_blocklist(p, false);
	(void)loop;
	(void)revents;
}

static void blocklist_stat_cb(struct ev_loop *loop, ev_stat *w, int revents)
{
	struct proxy *p = container_of(w, struct proxy, blocklist_stat);
	/* A file being replaced can vanish for a moment: wait for it to come back. */
	if (w->attr.st_nlink != 0)
		(void)policy_load_blocklist(p, false);
	(void)loop;
	(void)revents;
}

static void policy_metrics(void *user, struct aegis_metrics *m)
{
	struct proxy *p = user;
	aegis_policy_metrics(p->policy, m);
	aegis_metrics_family(m, "aegis_policy_blocklist_reload_failures_total", AEGIS_METRIC_COUNTER,
	                     "Blocklist reloads rejected (the last good blocklist kept).");
	aegis_metrics_uint(m, NULL, 0, p->blocklist_failures);
	aegis_metrics_family(m, "aegis_process_privileges_dropped", AEGIS_METRIC_GAUGE,
	                     "1 when the proxy switched to its unprivileged user after binding.");
	aegis_metrics_uint(m, NULL, 0, p->privs_dropped ? 1 : 0);
	aegis_metrics_family(m, "aegis_process_draining", AEGIS_METRIC_GAUGE,
	                     "1 while a SIGTERM drain waits for open mesh connections (docs/mesh.md).");
	aegis_metrics_uint(m, NULL, 0, p->draining ? 1 : 0);
	aegis_metrics_family(m, "aegis_dns_tcp_accept_errors_total", AEGIS_METRIC_COUNTER,
	                     "DNS TCP accepts that failed for lack of descriptors or memory.");
	aegis_metrics_uint(m, NULL, 0, aegis_dns_server_stats(p->dns)->tcp_accept_errors);
	if (p->qlog != NULL)
		aegis_qlog_metrics(p->qlog, m);
}

/* policy: the controls, created before the sockets so that a bad blocklist or log path stops start-up. */
static void policy_opts(const struct proxy *p, struct aegis_policy_opts *out)
{
	*out = (struct aegis_policy_opts){
	        .allow = p->opts.allow_sources,
	        .n_allow = p->opts.n_allow_sources,
	        .deny_drop = p->opts.deny_drop,
	        .rrl_qps = p->opts.rrl_qps,
	        .rrl_burst = p->opts.rrl_burst,
	        .rrl_slip = p->opts.rrl_slip,
	        .block_answer = p->opts.block_answer,
	};
}

static int policy_start(struct proxy *p)
{
	struct aegis_policy_opts po;
	policy_opts(p, &po);
	p->run_uid = p->run_gid = AEGIS_PRIVS_DEFAULT_ID;
	if (p->opts.user != NULL && aegis_privs_parse_user(p->opts.user, &p->run_uid, &p->run_gid) != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "bad --user (want UID[:GID] or a user name)",
		          LKV_S("user", p->opts.user));
		return AEGIS_EINVAL;
	}
	int rc = aegis_policy_new(&po, &p->policy);
	if (rc != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "bad policy configuration", LKV_S("error", aegis_strerror(rc)));
		return rc;
	}
	policy_set_local_of(p->policy);
	ev_signal_init(&p->policy_hup, policy_hup_cb, SIGHUP);
	ev_signal_start(p->loop, &p->policy_hup);
	if (p->opts.blocklist != NULL) {
		rc = policy_load_blocklist(p, true);
		if (rc != 0)
			return rc;
		if (p->opts.watch) {
			ev_stat_init(&p->blocklist_stat, blocklist_stat_cb, p->opts.blocklist, 1.0);
			ev_stat_start(p->loop, &p->blocklist_stat);
		}
	}
	if (p->opts.query_log != NULL) {
		int fd = aegis_qlog_open(p->opts.query_log);
		struct aegis_qlog_opts qo = {.fd = fd, .sample = p->opts.query_log_sample};
		if (fd < 0) {
			AEGIS_LOG(AEGIS_LOG_ERROR, "cannot open query log", LKV_S("path", p->opts.query_log),
			          LKV_S("error", strerror(errno)));
			return AEGIS_EIO;
		}
		rc = aegis_qlog_new(p->loop, &qo, &p->qlog);
		if (rc != 0) {
			close(fd);
			return rc;
		}
	}
	return 0;
}

/* policy: after every socket is bound, give up root (ARCHITECTURE.md: the sidecar runs as 1337). */
static int policy_drop_privileges(struct proxy *p)
{
	if (geteuid() == 0 && p->run_uid == 0)
		AEGIS_LOG(AEGIS_LOG_WARN, "--user 0: running as root with every capability");
	/* SO_MARK on each new upstream socket needs CAP_NET_ADMIN: keep that one capability only. */
	return aegis_privs_drop(p->run_uid, p->run_gid, p->opts.so_mark != 0, &p->privs_dropped);
}
/* end policy */

/* workers: --dns-workers N (docs/dns.md, "Workers"). The servers were made with the first one
 * (start_dns); here each gets its own policy (same options; interface addresses read now, not again on
 * SIGHUP) and its own cache and upstream on its loop, because each of those belongs to one loop. The
 * blocklist, the query log and DNSSEC validation are single-loop objects: refused with workers. */
static int workers_start(struct proxy *p)
{
	unsigned n = aegis_dns_server_n_workers(p->dns);
	if (n <= 1)
		return 0;
	struct aegis_policy_opts po;
	policy_opts(p, &po);
	for (unsigned i = 1; i < n; i++) {
		struct aegis_dns_server *w = aegis_dns_server_worker(p->dns, i);
		int rc = aegis_policy_new(&po, &p->w_policy[i]);
		if (rc != 0)
			return rc;
		policy_set_local_of(p->w_policy[i]);
		aegis_dns_server_set_policy(w, p->w_policy[i], NULL);
		if (p->upstream == NULL)
			continue;
		if (p->cache != NULL && (rc = aegis_cache_new(&p->fwd_co, &p->w_cache[i])) != 0)
			return rc;
		rc = aegis_upstream_new(aegis_dns_server_loop(w), &p->fwd_uo, p->w_cache[i],
		                        &p->w_upstream[i]);
		if (rc != 0)
			return rc;
		aegis_dns_server_set_upstream(w, p->w_upstream[i]);
	}
	AEGIS_LOG(AEGIS_LOG_INFO, "dns workers", LKV_I("workers", n));
	return 0;
}

/* workers: per-worker counters (the aegis_dns_* families are summed over workers). */
static void workers_metrics(void *user, struct aegis_metrics *m)
{
	struct proxy *p = user;
	unsigned n = aegis_dns_server_n_workers(p->dns);
	char idx[AEGIS_DNS_MAX_WORKERS][12];
	aegis_metrics_family(m, "aegis_dns_worker_queries_total", AEGIS_METRIC_COUNTER,
	                     "DNS queries received by each --dns-workers thread (udp and tcp).");
	for (unsigned i = 0; i < n; i++) {
		const struct aegis_dns_server_stats *st = aegis_dns_server_worker_stats(p->dns, i);
		snprintf(idx[i], sizeof(idx[i]), "%u", i);
		struct aegis_metric_label l = {.name = "worker", .value = idx[i]};
		aegis_metrics_uint(m, &l, 1, st->queries_udp + st->queries_tcp);
	}
	aegis_metrics_family(m, "aegis_dns_worker_table_swaps_total", AEGIS_METRIC_COUNTER,
	                     "Tables each --dns-workers thread has swapped in.");
	for (unsigned i = 0; i < n; i++) {
		struct aegis_metric_label l = {.name = "worker", .value = idx[i]};
		aegis_metrics_uint(m, &l, 1, aegis_dns_server_worker_stats(p->dns, i)->table_swaps);
	}
}
/* end workers */

/* mesh: the workload identity and the outbound (15001) and inbound (15006) listeners, started before the
 * configuration source so that the first routing table has somewhere to go. Without --mesh nothing here
 * runs. A missing or bad --cert-dir with --mesh is fatal: mesh traffic must never fall back to plaintext. */
static void mesh_post_routes(void *user, struct aegis_routes *t)
{
	aegis_mesh_outbound_post_routes(user, t);
}

static int mesh_start(struct proxy *p)
{
	if (!p->opts.mesh)
		return 0;
	char buf[600];
	if (p->opts.cert_dir != NULL) {
		struct aegis_diag diag = {0};
		if (aegis_mtls_new(p->opts.cert_dir, &p->mtls, &diag) != 0) {
			AEGIS_LOG(AEGIS_LOG_ERROR, "cannot load the workload certificate",
			          LKV_S("error", aegis_diag_str(&diag, buf, sizeof(buf))));
			return -1;
		}
		AEGIS_LOG(AEGIS_LOG_INFO, "workload identity", LKV_S("id", aegis_mtls_own_id(p->mtls)));
	} else {
		AEGIS_LOG(AEGIS_LOG_WARN, "--mesh without --cert-dir: mesh destinations will be refused");
	}
	/* HBONE (15008): the listener serves peers whatever --mesh-transport says; the outbound side uses
	 * the pool unless --mesh-transport direct (with auto, for labelled endpoints only). It needs an
	 * identity: without --cert-dir there is none. */
	if (p->mtls != NULL) {
		struct aegis_mesh_hbone_opts ho = {
		        .peer_port = p->opts.hbone_port,
		        .idle_timeout_ms = p->opts.mesh_idle_timeout_ms,
		        .keepalive_ms = p->opts.hbone_keepalive_ms,
		        .pool_idle_ms = p->opts.hbone_pool_idle_ms,
		        .so_mark = p->opts.so_mark,
		        .mtls = p->mtls,
		};
		ho.n_listen = aegis_proxy_mesh_listen(&p->opts, AEGIS_MESH_LISTEN_HBONE, ho.listen,
		                                      &ho.listen_defaults);
		int hrc = aegis_mesh_hbone_new(p->loop, &ho, &p->hbone);
		if (hrc != 0) {
			AEGIS_LOG(AEGIS_LOG_ERROR, "cannot start the HBONE listener",
			          LKV_S("error", aegis_strerror(hrc)), LKV_S("detail", strerror(errno)));
			return -1;
		}
	}
	static const char *const transports[] = {"hbone", "direct", "auto"};
	AEGIS_LOG(AEGIS_LOG_INFO, "mesh transport", LKV_S("transport", transports[p->opts.mesh_transport]));
	struct aegis_mesh_outbound_opts oo = {
	        .connect_timeout_ms = p->opts.mesh_connect_timeout_ms,
	        .idle_timeout_ms = p->opts.mesh_idle_timeout_ms,
	        .so_mark = p->opts.so_mark,
	        .mtls = p->mtls,
	        .hbone = p->opts.mesh_transport == AEGIS_MESH_DIRECT ? NULL : p->hbone,
	        .hbone_by_label = p->opts.mesh_transport == AEGIS_MESH_AUTO,
	};
	oo.n_listen =
	        aegis_proxy_mesh_listen(&p->opts, AEGIS_MESH_LISTEN_OUTBOUND, oo.listen, &oo.listen_defaults);
	int rc = aegis_mesh_outbound_new(p->loop, &oo, &p->outbound);
	if (rc != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "cannot start the outbound listener",
		          LKV_S("error", aegis_strerror(rc)), LKV_S("detail", strerror(errno)));
		return -1;
	}
	struct aegis_mesh_inbound_opts io = {
	        .strict = p->opts.inbound_strict,
	        .idle_timeout_ms = p->opts.mesh_idle_timeout_ms,
	        .mtls = p->mtls,
	};
	io.n_listen =
	        aegis_proxy_mesh_listen(&p->opts, AEGIS_MESH_LISTEN_INBOUND, io.listen, &io.listen_defaults);
	rc = aegis_mesh_inbound_new(p->loop, &io, &p->inbound);
	if (rc != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "cannot start the inbound listener",
		          LKV_S("error", aegis_strerror(rc)), LKV_S("detail", strerror(errno)));
		return -1;
	}
	p->routes_opts = (struct aegis_routes_opts){
	        .trust_domain = p->opts.trust_domain,
	        .locality = p->opts.locality,
	        .namespace_ = p->opts.namespace_,
	        .labels = {.items = p->opts.workload_labels, .n = p->opts.n_workload_labels},
	};
	if (io.strict)
		AEGIS_LOG(AEGIS_LOG_INFO, "mesh inbound: STRICT, plaintext from outside the mesh refused");
	return 0;
}

/* Hands the file source the routing options when the mesh is on. */
static void mesh_file_opts(struct proxy *p, struct aegis_file_source_opts *fo)
{
	if (p->outbound == NULL)
		return;
	fo->routes = &p->routes_opts;
	fo->post_routes = mesh_post_routes;
	fo->routes_user = p->outbound;
}

/* The same for the xDS source: routes are built from every configuration the client accepts. */
static void mesh_xds_opts(struct proxy *p, struct aegis_xds_source_opts *xo)
{
	if (p->outbound == NULL)
		return;
	xo->routes = &p->routes_opts;
	xo->post_routes = mesh_post_routes;
	xo->routes_user = p->outbound;
}

static void mesh_free(struct proxy *p)
{
	aegis_mesh_inbound_free(p->inbound);
	aegis_mesh_outbound_free(p->outbound); /* closes every relay, inbound ones too */
	aegis_mesh_hbone_free(p->hbone);       /* after the outbound, which cancels its CONNECTs there */
	aegis_mtls_free(p->mtls);
}
/* end mesh */

int main(int argc, char **argv)
{
	struct proxy p;
	memset(&p, 0, sizeof(p));
	switch (aegis_proxy_options_parse(argc, argv, &p.opts, stdout, stderr)) {
	case AEGIS_OPTIONS_RUN: break;
	case AEGIS_OPTIONS_EXIT_OK: return 0;
	default: return 2;
	}
	aegis_log_set_level(p.opts.log_level);
	signal(SIGPIPE, SIG_IGN);
	bool default_listen = false;
	for (int i = 1; i < argc; i++)
		default_listen |= strncmp(argv[i], "--dns-listen", 12) == 0;
	default_listen = !default_listen;

	int exit_code = 1;
	p.loop = ev_default_loop(EVFLAG_AUTO);
	if (p.loop == NULL) {
		fprintf(stderr, "aegis-proxy: cannot initialise libev\n");
		return 1;
	}
	if (setup_search(&p) != 0)
		goto out;
	if (policy_start(&p) != 0) /* policy */
		goto out;
	/* policy: the DNS sockets are made as the --user (fsuid) so that iptables' owner match, which
	 * sees a socket's creator, exempts their answers as the capture rules expect. */
	uid_t fsuid_before = aegis_privs_socket_owner(p.run_uid);
	int dns_rc = start_dns(&p, default_listen);
	(void)aegis_privs_socket_owner(fsuid_before);
	if (dns_rc != 0)
		goto out;
	aegis_dns_server_set_policy(p.dns, p.policy, p.qlog);   /* policy */
	if (start_forwarder(&p) != 0 || workers_start(&p) != 0) /* workers */
		goto out;

	if (mesh_start(&p) != 0) /* mesh */
		goto out;

	if (p.opts.n_config_paths > 0) {
		struct aegis_file_source_opts fo = {
		        .paths = p.opts.config_paths,
		        .n_paths = p.opts.n_config_paths,
		        .cluster_domain = p.opts.cluster_domain,
		        .local_cluster = p.opts.cluster,
		        .watch = p.opts.watch,
		};
		mesh_file_opts(&p, &fo); /* mesh */
		struct aegis_diag diag = {0};
		int rc = aegis_file_source_start(p.loop, &fo, p.dns, &p.files, &diag);
		if (rc != 0) {
			char buf[600];
			AEGIS_LOG(AEGIS_LOG_ERROR, "cannot load config",
			          LKV_S("error", aegis_diag_str(&diag, buf, sizeof(buf))));
			fprintf(stderr, "aegis-proxy: %s\n", aegis_diag_str(&diag, buf, sizeof(buf)));
			goto out;
		}
	} else {
		/* xDS source: the table arrives later, from the client's thread */
		struct aegis_xds_source_opts xo = {
		        .address = p.opts.xds_address,
		        .node_id = p.opts.node_id,
		        .namespace_ = p.opts.namespace_,
		        .cluster_domain = p.opts.cluster_domain,
		        .local_cluster = p.opts.cluster,
		        .delta = p.opts.xds_delta,
		};
		mesh_xds_opts(&p, &xo); /* mesh */
		/* xDS over mTLS: the workload certificate; the control plane must prove aegis-xds's identity
		 * in our trust domain unless --xds-server-id says otherwise (docs/xds.md). */
		char xds_id[300];
		snprintf(xds_id, sizeof(xds_id), "spiffe://%s/ns/aegis-system/sa/aegis-xds",
		         p.opts.trust_domain ? p.opts.trust_domain : "cluster.local");
		if (p.opts.xds_tls) {
			xo.tls_cert_dir = p.opts.cert_dir;
			xo.tls_server_id = p.opts.xds_server_id ? p.opts.xds_server_id : xds_id;
		}
		int rc = aegis_xds_source_start(&xo, p.dns, &p.xds);
		if (rc != 0) {
			AEGIS_LOG(AEGIS_LOG_ERROR, "cannot start the xds client",
			          LKV_S("address", p.opts.xds_address), LKV_S("error", aegis_strerror(rc)));
			goto out;
		}
	}

	/* admin: started once the DNS server exists; ready when the server has a table. A bind failure is
	 * fatal (a sidecar whose probes cannot reach it would be restarted forever without saying why). */
	{
		struct aegis_admin_dns_ctx actx = {
		        .dns = p.dns,
		        .search = p.search,
		        .files = p.files,
		        .config_paths = p.opts.config_paths,
		        .n_config_paths = p.opts.n_config_paths,
		        .cluster_domain = p.opts.cluster_domain,
		        .dns_listen = p.opts.dns_listen,
		        .n_dns_listen = p.opts.n_dns_listen,
		        .ttl = p.opts.ttl,
		        .forward_unready = p.opts.forward_unready,
		};
		char abuf[64];
		if (aegis_admin_new(p.loop, &p.opts.admin, &p.admin) != 0 ||
		    aegis_admin_sections_new(p.admin, &actx, &p.admin_sections) != 0 ||
		    aegis_admin_forward_register(p.admin, p.upstream, p.cache) != 0 ||
		    (p.xds && aegis_admin_xds_register(p.admin, aegis_xds_source_client(p.xds)) != 0))
			goto out;
		/* mesh: without --mesh the sections are absent (aegisctl exits 3: not available) */
		p.admin_mesh = (struct aegis_admin_mesh_ctx){.outbound = p.outbound,
		                                             .inbound = p.inbound,
		                                             .mtls = p.mtls,
		                                             .hbone = p.hbone,
		                                             .cert_dir = p.opts.cert_dir};
		if (p.outbound != NULL && aegis_admin_mesh_register(p.admin, &p.admin_mesh) != 0)
			goto out;
		aegis_admin_set_ready(p.admin, proxy_ready, &p);
		AEGIS_LOG(AEGIS_LOG_INFO, "admin listening",
		          LKV_S("addr", aegis_sockaddr_str(&p.opts.admin, abuf, sizeof(abuf))));
		/* The status port: the kubelet's probes, from outside the pod, see readiness and liveness
		 * only (admin.h); the admin endpoint stays on loopback. */
		if (p.opts.have_status_listen) {
			if (aegis_admin_new(p.loop, &p.opts.status_listen, &p.status) != 0)
				goto out;
			aegis_admin_set_status_only(p.status);
			aegis_admin_set_ready(p.status, proxy_ready, &p);
			AEGIS_LOG(
			        AEGIS_LOG_INFO, "status listening",
			        LKV_S("addr", aegis_sockaddr_str(&p.opts.status_listen, abuf, sizeof(abuf))));
		}
	}
	/* end admin */

	/* policy: counters on /stats/prometheus, then root is given up: every socket is bound by now. */
	if (aegis_admin_add_metrics(p.admin, policy_metrics, &p) != 0 || policy_drop_privileges(&p) != 0)
		goto out;
	/* end policy */
	/* workers: threads start after the privilege drop (capabilities are per thread) */
	if (aegis_dns_server_n_workers(p.dns) > 1 &&
	    (aegis_admin_add_metrics(p.admin, workers_metrics, &p) != 0 ||
	     aegis_dns_server_run_workers(p.dns) != 0))
		goto out;

	ev_signal_init(&p.sigterm, stop_cb, SIGTERM);
	ev_signal_init(&p.sigint, stop_cb, SIGINT);
	p.sigterm.data = p.sigint.data = &p;
	ev_signal_start(p.loop, &p.sigterm);
	ev_signal_start(p.loop, &p.sigint);
	AEGIS_LOG(AEGIS_LOG_INFO, "aegis-proxy ready", LKV_S("version", AEGIS_VERSION));
	ev_run(p.loop, 0);
	exit_code = 0;
out:
	aegis_admin_free(p.status);                  /* admin: status port */
	aegis_admin_free(p.admin);                   /* admin */
	aegis_admin_sections_free(p.admin_sections); /* admin */
	aegis_file_source_free(p.files);
	aegis_xds_source_free(p.xds); /* joins the client thread: no table is posted after this */
	mesh_free(&p);                /* mesh: after the sources, which post routes to it */
	aegis_dns_server_free(p.dns); /* before the forwarder: it cancels its pending queries there */
	/* policy: after the server, which borrows both */
	if (p.loop != NULL && ev_is_active(&p.blocklist_stat))
		ev_stat_stop(p.loop, &p.blocklist_stat);
	aegis_qlog_free(p.qlog);
	aegis_policy_free(p.policy);
	/* end policy */
	for (unsigned i = 1; i < AEGIS_DNS_MAX_WORKERS; i++) { /* workers: their servers are gone */
		aegis_upstream_free(p.w_upstream[i]);
		aegis_cache_free(p.w_cache[i]);
		aegis_policy_free(p.w_policy[i]);
	}
	aegis_upstream_free(p.upstream);
	aegis_dnssec_free(p.dnssec); /* dnssec: after the forwarder, which borrows it */
	aegis_cache_free(p.cache);
	aegis_search_free(p.search);
	ev_loop_destroy(p.loop);
	return exit_code;
}
