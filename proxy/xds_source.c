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
	int rc = aegis_table_build(cfg, &topts, &t, diag);
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
	AEGIS_LOG(AEGIS_LOG_INFO, "xds config applied", LKV_I("names", names));
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
	          LKV_S("node", xs->node_id), LKV_B("delta", opts->delta));
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
