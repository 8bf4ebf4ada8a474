/* aegis-proxy: the sidecar daemon. Wires the options, the configuration source, the search context and the
 * DNS server onto one libev loop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "admin.h"          /* admin */
#include "admin_forward.h"  /* admin */
#include "admin_sections.h" /* admin */
#include "aegis/log.h"
#include "dns_search.h"
#include "dns_server.h"
#include "file_source.h"
#include "proxy_options.h"
#include "resolv_conf.h"
#include "upstream.h"

struct proxy {
	struct aegis_proxy_options opts;
	struct ev_loop *loop;
	struct aegis_resolv_conf resolv;
	bool have_resolv;
	struct aegis_search *search;
	struct aegis_dns_server *dns;
	struct aegis_file_source *files;
	struct aegis_cache *cache;
	struct aegis_upstream *upstream;
	ev_signal sigterm, sigint;
	/* admin */
	struct aegis_admin *admin;
	struct aegis_admin_sections *admin_sections;
	/* end admin */
};

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	AEGIS_LOG(AEGIS_LOG_INFO, "shutting down", LKV_I("signal", w->signum));
	ev_break(loop, EVBREAK_ALL);
	(void)revents;
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
	        .reuseport = p->opts.reuseport,
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

	if (!p->opts.no_cache) {
		struct aegis_cache_opts co;
		aegis_cache_opts_default(&co);
		if (p->opts.cache_size)
			co.pos_max_entries = p->opts.cache_size;
		if (p->opts.cache_max_ttl)
			co.max_ttl = p->opts.cache_max_ttl;
		co.min_ttl = p->opts.cache_min_ttl;
		co.stale_max = p->opts.serve_stale;
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
	char buf[64];
	for (size_t i = 0; i < uo.n_servers; i++)
		AEGIS_LOG(AEGIS_LOG_INFO, "upstream",
		          LKV_S("addr", aegis_sockaddr_str(&uo.servers[i], buf, sizeof(buf))));
	for (size_t i = 0; i < uo.n_zones; i++)
		AEGIS_LOG(AEGIS_LOG_INFO, "stub zone", LKV_S("zone", zones[i].zone),
		          LKV_I("servers", zones[i].n_servers));
	aegis_dns_server_set_upstream(p->dns, p->upstream);
	return 0;
}

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
	if (start_dns(&p, default_listen) != 0)
		goto out;
	if (start_forwarder(&p) != 0)
		goto out;

	if (p.opts.n_config_paths > 0) {
		struct aegis_file_source_opts fo = {
		        .paths = p.opts.config_paths,
		        .n_paths = p.opts.n_config_paths,
		        .cluster_domain = p.opts.cluster_domain,
		        .local_cluster = p.opts.cluster,
		        .watch = p.opts.watch,
		};
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
		/* xDS source */
		AEGIS_LOG(AEGIS_LOG_ERROR, "--xds-address is not supported by this build yet",
		          LKV_S("address", p.opts.xds_address));
		goto out;
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
		    aegis_admin_forward_register(p.admin, p.upstream, p.cache) != 0)
			goto out;
		AEGIS_LOG(AEGIS_LOG_INFO, "admin listening",
		          LKV_S("addr", aegis_sockaddr_str(&p.opts.admin, abuf, sizeof(abuf))));
	}
	/* end admin */

	ev_signal_init(&p.sigterm, stop_cb, SIGTERM);
	ev_signal_init(&p.sigint, stop_cb, SIGINT);
	ev_signal_start(p.loop, &p.sigterm);
	ev_signal_start(p.loop, &p.sigint);
	AEGIS_LOG(AEGIS_LOG_INFO, "aegis-proxy ready", LKV_S("version", AEGIS_VERSION));
	ev_run(p.loop, 0);
	exit_code = 0;
out:
	aegis_admin_free(p.admin);                   /* admin */
	aegis_admin_sections_free(p.admin_sections); /* admin */
	aegis_file_source_free(p.files);
	aegis_dns_server_free(p.dns); /* before the forwarder: it cancels its pending queries there */
	aegis_upstream_free(p.upstream);
	aegis_cache_free(p.cache);
	aegis_search_free(p.search);
	ev_loop_destroy(p.loop);
	return exit_code;
}
