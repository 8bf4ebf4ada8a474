/* ADS configuration source: see xds_source.h. */
#include "xds_source.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "aegis/log.h"
#include "aegis/vip.h"
#include "dns_table.h"

struct aegis_xds_source {
	struct aegis_dns_server *srv;
	const char *cluster_domain;
	const char *local_cluster;
	struct aegis_vip_alloc *vips; /* the client's thread only */
	struct aegis_ads_client *client;
	struct aegis_routes_opts routes; /* mesh: valid when post_routes is set */
	void (*post_routes)(void *user, struct aegis_routes *t);
	void *routes_user;
	char node_id[512];
	char node_cluster[300];
};

/* Runs on the client's thread with a complete configuration (ours to free). */
static int on_config(void *user, struct aegis_config *cfg, struct aegis_diag *diag)
{
	struct aegis_xds_source *xs = user;
	struct aegis_table_opts topts = {
	        .cluster_domain = xs->cluster_domain,
	        .local_cluster = xs->local_cluster,
	        .vips = xs->vips,
	};
	struct aegis_table *t = NULL;
	struct aegis_routes *routes = NULL;
	int rc = aegis_table_build(cfg, &topts, &t, diag);
	/* mesh: after the table build, so that the VIP allocator is up to date for this config (as
	 * file_source.c's load() does). Either both tables are posted or neither. */
	if (rc == 0 && xs->post_routes != NULL) {
		struct aegis_routes_opts ro = xs->routes;
		ro.vips = xs->vips;
		ro.cluster_domain = xs->cluster_domain;
		rc = aegis_routes_build(cfg, &ro, &routes, diag);
		if (rc != 0) {
			aegis_table_unref(t);
			t = NULL;
		}
	}
	aegis_config_free(cfg);
	/* The parse's scratch memory (the YAML tree, the config's arena) is freed now but glibc keeps it
	 * mapped; hand it back, or a sidecar keeps its peak parse footprint for life. */
	malloc_trim(0);
	if (rc != 0) {
		char buf[512];
		AEGIS_LOG(AEGIS_LOG_ERROR, "xds config rejected; keeping the last good table",
		          LKV_S("error", aegis_diag_str(diag, buf, sizeof(buf))));
		return rc;
	}
	size_t names = aegis_table_count(t);
	aegis_dns_server_post_table(xs->srv, t);
	size_t n_routes = routes ? aegis_routes_n_vips(routes) : 0;
	size_t n_clusters = routes ? aegis_routes_n_clusters(routes) : 0;
	if (routes != NULL)
		xs->post_routes(xs->routes_user, routes);
	AEGIS_LOG(AEGIS_LOG_INFO, "xds config applied", LKV_I("names", names), LKV_I("route_vips", n_routes),
	          LKV_I("clusters", n_clusters));
	return 0;
}

int aegis_xds_source_start(const struct aegis_xds_source_opts *opts, struct aegis_dns_server *srv,
                           struct aegis_xds_source **out)
{
	struct aegis_xds_source *xs = calloc(1, sizeof(*xs));
	if (xs == NULL)
		return AEGIS_ENOMEM;
	xs->srv = srv;
	xs->cluster_domain = opts->cluster_domain;
	xs->local_cluster = opts->local_cluster;
	if (opts->post_routes != NULL) {
		xs->routes = *opts->routes; /* strings and labels borrowed: they outlive the source */
		xs->post_routes = opts->post_routes;
		xs->routes_user = opts->routes_user;
	}
	xs->vips = aegis_vip_alloc_new();
	if (xs->vips == NULL) {
		free(xs);
		return AEGIS_ENOMEM;
	}
	/* Istio's node identity, so istiod (and aegis-xds) can tell sidecars apart. */
	const char *ns = opts->namespace_ && opts->namespace_[0] ? opts->namespace_ : "default";
	const char *pod = getenv("POD_NAME") ? getenv("POD_NAME") : "aegis";
	const char *ip = getenv("INSTANCE_IP") ? getenv("INSTANCE_IP") : "127.0.0.1";
	const char *domain = opts->cluster_domain ? opts->cluster_domain : "cluster.local";
	if (opts->node_id)
		snprintf(xs->node_id, sizeof(xs->node_id), "%s", opts->node_id);
	else
		snprintf(xs->node_id, sizeof(xs->node_id), "sidecar~%s~%s.%s~%s.svc.%s", ip, pod, ns, ns,
		         domain);
	if (opts->node_cluster)
		snprintf(xs->node_cluster, sizeof(xs->node_cluster), "%s", opts->node_cluster);
	else
		snprintf(xs->node_cluster, sizeof(xs->node_cluster), "%s.%s", pod, ns);
	struct aegis_ads_client_opts o = {
	        .address = opts->address,
	        .node_id = xs->node_id,
	        .node_cluster = xs->node_cluster,
	        .delta = opts->delta,
	        .tls_cert_dir = opts->tls_cert_dir,
	        .tls_server_id = opts->tls_server_id,
	        .on_config = on_config,
	        .user = xs,
	};
	int rc = aegis_ads_client_start(&o, &xs->client);
	if (rc != 0) {
		aegis_vip_alloc_free(xs->vips);
		free(xs);
		return rc;
	}
	AEGIS_LOG(AEGIS_LOG_INFO, "xds client started", LKV_S("address", opts->address),
	          LKV_S("node", xs->node_id), LKV_B("delta", opts->delta),
	          LKV_B("tls", opts->tls_cert_dir != NULL));
	*out = xs;
	return 0;
}

struct aegis_ads_client *aegis_xds_source_client(struct aegis_xds_source *xs)
{
	return xs ? xs->client : NULL;
}

void aegis_xds_source_free(struct aegis_xds_source *xs)
{
	if (xs == NULL)
		return;
	aegis_ads_client_stop(xs->client);
	aegis_vip_alloc_free(xs->vips);
	free(xs);
}
