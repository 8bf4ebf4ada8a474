/* xds_probe: a minimal ADS client for tests/integration/test_xds.sh (the proxy's own client library,
 * without the proxy). It prints, line-buffered:
 *   CONFIG <n> se=<count> vs=<count> dr=<count> nt=<count>     for every config accepted
 *   HOST <host> <address>...                                     one per ServiceEntry host, then END
 *   NAME <host> <ip>...                                          one per NameTable entry
 *   STATUS <type> <ACK|NACK|NONE> version=<v> streams=<n> error=<text>   when the status changes
 * Options: --address HOST:PORT [--delta] [--reject-host NAME] [--duration-ms N] [--node ID].
 * --reject-host makes on_config refuse any config holding that host, to exercise proxy-side NACKs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aegis/ads_client.h"
#include "aegis/log.h"

static volatile sig_atomic_t stop;
static const char *reject_host;
static int n_configs;

static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

static int on_config(void *user, struct aegis_config *cfg, struct aegis_diag *diag)
{
	(void)user;
	for (size_t i = 0; reject_host && i < cfg->n_service_entries; i++)
		for (size_t h = 0; h < cfg->service_entries[i].n_hosts; h++)
			if (strcmp(cfg->service_entries[i].hosts[h], reject_host) == 0) {
				aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "probe refuses host %s",
				               reject_host);
				aegis_config_free(cfg);
				return AEGIS_EINVAL;
			}
	printf("CONFIG %d se=%zu vs=%zu dr=%zu nt=%zu svc=%zu slices=%zu\n", ++n_configs,
	       cfg->n_service_entries, cfg->n_virtual_services, cfg->n_destination_rules, cfg->n_name_table,
	       cfg->n_services, cfg->n_endpoint_slices);
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct aegis_k8s_service *k = &cfg->services[i];
		printf("SVC %s/%s cluster=%s headless=%d", k->meta.namespace_, k->meta.name, k->meta.cluster,
		       k->headless);
		for (size_t a = 0; a < k->n_cluster_ips; a++)
			printf(" %s", k->cluster_ips[a]);
		printf("\n");
	}
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		const struct aegis_service_entry *se = &cfg->service_entries[i];
		for (size_t h = 0; h < se->n_hosts; h++) {
			printf("HOST %s", se->hosts[h]);
			for (size_t a = 0; a < se->n_addresses; a++)
				printf(" %s", se->addresses[a]);
			printf(" endpoints=%zu\n", se->n_endpoints);
		}
	}
	for (size_t i = 0; i < cfg->n_name_table; i++) {
		printf("NAME %s", cfg->name_table[i].host);
		for (size_t a = 0; a < cfg->name_table[i].n_ips; a++)
			printf(" %s", cfg->name_table[i].ips[a]);
		printf("\n");
	}
	printf("END %d\n", n_configs);
	aegis_config_free(cfg);
	return 0;
}

static const char *short_type(const char *url)
{
	const char *dot = strrchr(url, '.');
	return dot ? dot + 1 : url;
}

int main(int argc, char **argv)
{
	struct aegis_ads_client_opts o = {.node_id = "sidecar~127.0.0.1~probe.test~test.svc.cluster.local",
	                                  .node_cluster = "probe.test",
	                                  .on_config = on_config,
	                                  .backoff_initial_ms = 200,
	                                  .backoff_max_ms = 1000};
	long duration_ms = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--address") == 0 && i + 1 < argc)
			o.address = argv[++i];
		else if (strcmp(argv[i], "--delta") == 0)
			o.delta = true;
		else if (strcmp(argv[i], "--reject-host") == 0 && i + 1 < argc)
			reject_host = argv[++i];
		else if (strcmp(argv[i], "--duration-ms") == 0 && i + 1 < argc)
			duration_ms = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
			o.node_id = argv[++i];
		else if (strcmp(argv[i], "--debug") == 0)
			aegis_log_set_level(AEGIS_LOG_DEBUG);
		else {
			fprintf(stderr, "usage: xds_probe --address HOST:PORT [--delta] [--reject-host H] "
			                "[--duration-ms N]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct aegis_ads_client *c;
	if (aegis_ads_client_start(&o, &c) != 0) {
		fprintf(stderr, "xds_probe: cannot start the client\n");
		return 1;
	}
	static struct aegis_ads_status prev;
	for (long waited = 0; !stop && (duration_ms < 0 || waited < duration_ms); waited += 50) {
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
		struct aegis_ads_status st;
		aegis_ads_client_status(c, &st);
		for (int t = 0; t < AEGIS_ADS_NTYPES; t++) {
			const struct aegis_ads_type_status *a = &st.types[t], *b = &prev.types[t];
			if (a->n_ack == b->n_ack && a->n_nack == b->n_nack && st.n_streams == prev.n_streams)
				continue;
			printf("STATUS %s %s version=%s streams=%llu error=%s\n", short_type(a->type_url),
			       a->last == AEGIS_ADS_LAST_ACK    ? "ACK"
			       : a->last == AEGIS_ADS_LAST_NACK ? "NACK"
			                                        : "NONE",
			       a->version, (unsigned long long)st.n_streams, a->error);
		}
		prev = st;
	}
	aegis_ads_client_stop(c);
	printf("STOPPED\n");
	return 0;
}
