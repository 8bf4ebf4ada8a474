/* aegis-xds: serves the YAML resources under --config-root over ADS (SotW and delta) on --listen.
 *
 * The tree: one sub-directory per cluster (with its cluster.yaml) plus top-level YAML files. Each such
 * unit is loaded on its own, so a unit with an invalid file is reported and keeps serving its last good
 * content while the other units move on. A watcher thread follows the tree with inotify, waits for
 * --debounce-ms of quiet, reloads, allocates VIPs (persisted in --state-file), encodes a snapshot and
 * publishes it; the completion-queue thread (main) pushes only what changed (docs/xds.md).
 *
 * For tests and debugging, <config-root>/_raw/<Kind>/<name>.pb files are served as they are, as the
 * resource "raw/<name>" of that kind (ServiceEntry, VirtualService, DestinationRule,
 * ClusterLoadAssignment, NameTable): that is how a test puts an invalid resource on the wire.
 *
 * With --kubernetes, API servers are a source too (kube_source.h, docs/kubernetes.md): their objects form
 * one more unit, rebuilt after the same debounce when a watch reports a change. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aegis/limits.h"
#include "aegis/log.h"
#include "aegis/resource_yaml.h"
#include "aegis/vip.h"
#include "kube_source.h"
#include "xds_int.h"
#include "xds_server_int.h"
#include "xds_tls.h"

#define MAX_UNITS    4096
#define MAX_CLUSTERS 64

static volatile sig_atomic_t stop;

struct unit {
	char path[PATH_MAX];
	struct aegis_config *cfg; /* last good; NULL when it never loaded */
	bool seen;
	bool kube; /* the Kubernetes source's unit, not a path under the root */
};

struct app {
	const char *root;
	const char *listen;     /* NULL: no plaintext listener (--listen none) */
	const char *tls_listen; /* --tls-listen: mutual TLS (port 15012), NULL = none */
	char tls_listen_buf[300];
	const char *cert_dir;
	const char *state_file;
	const char *domain;
	int debounce_ms;
	struct unit *units;
	size_t n_units;
	struct aegis_vip_alloc *vips;
	struct aegis_xds_server *srv;
	uint64_t seq;
	int ino;
	struct aegis_kube_source *kube;
	struct aegis_kube_cluster_opts kclusters[MAX_CLUSTERS];
	size_t n_kclusters;
	struct aegis_kube_source_opts kopts;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static bool is_yaml(const char *n)
{
	size_t l = strlen(n);
	return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

static struct unit *unit_get(struct app *a, const char *path)
{
	for (size_t i = 0; i < a->n_units; i++)
		if (strcmp(a->units[i].path, path) == 0)
			return &a->units[i];
	if (a->n_units == MAX_UNITS)
		return NULL;
	struct unit *u = &a->units[a->n_units++];
	memset(u, 0, sizeof(*u));
	snprintf(u->path, sizeof(u->path), "%s", path);
	return u;
}

/* Reloads every unit; a unit that fails keeps its last good config. */
static void load_units(struct app *a)
{
	for (size_t i = 0; i < a->n_units; i++)
		a->units[i].seen = a->units[i].kube;
	if (a->root == NULL)
		return;
	DIR *d = opendir(a->root);
	if (d == NULL) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "cannot open config root", LKV_S("path", a->root),
		          LKV_S("error", strerror(errno)));
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_name[0] == '_')
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", a->root, de->d_name);
		struct stat st;
		if (stat(path, &st) != 0 || (!S_ISDIR(st.st_mode) && !is_yaml(de->d_name)))
			continue;
		struct unit *u = unit_get(a, path);
		if (u == NULL)
			continue;
		u->seen = true;
		const char *paths[1] = {path};
		struct aegis_config *cfg = NULL;
		struct aegis_diag diag = {0};
		int rc = aegis_yaml_load_paths(paths, 1, &cfg, &diag);
		if (rc) {
			char buf[600];
			AEGIS_LOG(AEGIS_LOG_ERROR, "invalid configuration skipped, last good content kept",
			          LKV_S("unit", path),
			          LKV_S("error", aegis_diag_str(&diag, buf, sizeof(buf))));
			continue;
		}
		aegis_config_free(u->cfg);
		u->cfg = cfg;
	}
	closedir(d);
	/* Units that disappeared from the tree are dropped. */
	size_t w = 0;
	for (size_t i = 0; i < a->n_units; i++) {
		if (!a->units[i].seen) {
			aegis_config_free(a->units[i].cfg);
			continue;
		}
		a->units[w++] = a->units[i];
	}
	a->n_units = w;
}

#define MERGE(DST, A, FIELD, NFIELD)                                                                         \
	({                                                                                                   \
		int rc_ = 0;                                                                                 \
		size_t n_ = 0;                                                                               \
		for (size_t i_ = 0; i_ < (A)->n_units; i_++)                                                 \
			n_ += (A)->units[i_].cfg ? (A)->units[i_].cfg->NFIELD : 0;                           \
		if (n_) {                                                                                    \
			__typeof__(*(DST)->FIELD) *arr_ =                                                    \
			        aegis_arena_alloc(&(DST)->arena, n_ * sizeof(*arr_));                        \
			size_t k_ = 0;                                                                       \
			if (arr_ == NULL)                                                                    \
				rc_ = AEGIS_ENOMEM;                                                          \
			for (size_t i_ = 0; arr_ && i_ < (A)->n_units; i_++) {                               \
				const struct aegis_config *c_ = (A)->units[i_].cfg;                          \
				if (c_ && c_->NFIELD) {                                                      \
					memcpy((void *)&arr_[k_], c_->FIELD, c_->NFIELD * sizeof(*arr_));    \
					k_ += c_->NFIELD;                                                    \
				}                                                                            \
			}                                                                                    \
			(DST)->FIELD = arr_;                                                                 \
			(DST)->NFIELD = arr_ ? n_ : 0;                                                       \
		}                                                                                            \
		rc_;                                                                                         \
	})

/* One config viewing every unit's objects (shallow: it lives no longer than the units). */
static struct aegis_config *merge_units(struct app *a)
{
	struct aegis_config *m = aegis_config_new();
	if (m == NULL)
		return NULL;
	if (MERGE(m, a, service_entries, n_service_entries) ||
	    MERGE(m, a, workload_entries, n_workload_entries) ||
	    MERGE(m, a, virtual_services, n_virtual_services) ||
	    MERGE(m, a, destination_rules, n_destination_rules) || MERGE(m, a, services, n_services) ||
	    MERGE(m, a, endpoint_slices, n_endpoint_slices) || MERGE(m, a, name_table, n_name_table) ||
	    MERGE(m, a, clusters, n_clusters)) {
		aegis_config_free(m);
		return NULL;
	}
	return m;
}

static int vip_get(void *ctx, const char *host, uint8_t v4[4], uint8_t v6[16])
{
	return aegis_vip_get(ctx, host, v4, v6);
}

static const char *const raw_kinds[AEGIS_XDS_NTYPES] = {
        "ServiceEntry", "VirtualService", "DestinationRule", "ClusterLoadAssignment", "NameTable",
};

static void load_raw(struct app *a, struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES])
{
	if (a->root == NULL) /* --kubernetes alone: there is no tree to hold _raw/ */
		return;
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/_raw/%s", a->root, raw_kinds[t]);
		DIR *d = opendir(dir);
		if (d == NULL)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			size_t l = strlen(de->d_name);
			if (l < 4 || strcmp(de->d_name + l - 3, ".pb") != 0)
				continue;
			char path[PATH_MAX + 256];
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			FILE *f = fopen(path, "rb");
			if (f == NULL)
				continue;
			uint8_t *buf = malloc(1 << 20);
			size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
			fclose(f);
			if (buf == NULL)
				continue;
			char name[300], ver[32];
			snprintf(name, sizeof(name), "raw/%.*s", (int)(l - 3), de->d_name);
			uint64_t h = 1469598103934665603ull;
			for (size_t i = 0; i < n; i++)
				h = (h ^ buf[i]) * 1099511628211ull;
			snprintf(ver, sizeof(ver), "%016llx", (unsigned long long)h);
			int rc = aegis_xds_resource_set_push(&sets[t], name, ver, buf, n);
			free(buf);
			if (rc != 0)
				continue;
			AEGIS_LOG(AEGIS_LOG_INFO, "raw resource", LKV_S("kind", raw_kinds[t]),
			          LKV_S("name", name), LKV_I("bytes", n));
		}
		closedir(d);
		/* Keep the set sorted for lookups. */
		for (size_t i = 1; i < sets[t].n; i++)
			for (size_t j = i;
			     j > 0 && strcmp(sets[t].items[j - 1].name, sets[t].items[j].name) > 0; j--) {
				struct aegis_xds_resource tmp = sets[t].items[j];
				sets[t].items[j] = sets[t].items[j - 1];
				sets[t].items[j - 1] = tmp;
			}
	}
}

/* The Kubernetes source's unit: rebuilt from the watched objects; kept as it was while no cluster has
 * synced yet or when memory runs out. */
static void load_kube(struct app *a)
{
	if (a->kube == NULL)
		return;
	struct unit *u = unit_get(a, "kube:");
	if (u == NULL)
		return;
	u->kube = true;
	u->seen = true;
	struct aegis_config *cfg = NULL;
	int rc = aegis_kube_source_build(a->kube, &cfg);
	if (rc == AEGIS_EAGAIN)
		return;
	if (rc != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "kubernetes source: cannot build, last good content kept",
		          LKV_S("error", aegis_strerror(rc)));
		return;
	}
	aegis_config_free(u->cfg);
	u->cfg = cfg;
}

static void rebuild(struct app *a)
{
	int64_t t0 = now_ms();
	load_units(a);
	load_kube(a);
	int64_t t1 = now_ms();
	struct aegis_config *m = merge_units(a);
	if (m == NULL) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "out of memory merging the configuration");
		return;
	}
	if (a->vips != NULL) {
		int rc = aegis_vip_alloc_update(a->vips, m);
		if (rc)
			AEGIS_LOG(AEGIS_LOG_ERROR, "VIP allocation failed, previous allocation kept",
			          LKV_S("error", aegis_strerror(rc)));
		else if (a->state_file && (rc = aegis_vip_alloc_save(a->vips, a->state_file)))
			AEGIS_LOG(AEGIS_LOG_ERROR, "cannot save VIP state", LKV_S("path", a->state_file),
			          LKV_S("error", aegis_strerror(rc)));
	}
	struct aegis_xds_encode_opts opts = {
	        .cluster_domain = a->domain, .vip_get = a->vips ? vip_get : NULL, .vip_ctx = a->vips};
	struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES];
	memset(sets, 0, sizeof(sets));
	struct aegis_diag diag = {0};
	int rc = aegis_xds_encode_config(m, &opts, sets, &diag);
	aegis_config_free(m);
	if (rc) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "encoding failed, previous snapshot kept",
		          LKV_S("error", diag.msg));
		return;
	}
	load_raw(a, sets);
	int64_t t2 = now_ms();
	struct aegis_xds_snapshot *snap = aegis_xds_snapshot_new(sets, ++a->seq);
	if (snap == NULL) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "out of memory building the snapshot");
		return;
	}
	int64_t t3 = now_ms();
	AEGIS_LOG(AEGIS_LOG_INFO, "snapshot built", LKV_I("seq", a->seq), LKV_I("units", a->n_units),
	          LKV_I("service_entries", snap->sets[AEGIS_XDS_SE].n),
	          LKV_I("virtual_services", snap->sets[AEGIS_XDS_VS].n),
	          LKV_I("destination_rules", snap->sets[AEGIS_XDS_DR].n),
	          LKV_I("clusters", snap->sets[AEGIS_XDS_CLA].n), LKV_I("load_ms", t1 - t0),
	          LKV_I("encode_ms", t2 - t1), LKV_I("wrap_ms", t3 - t2));
	aegis_xds_server_publish(a->srv, snap);
}

/* Watches the root and every directory below it (re-run after each event: new directories appear). */
static void watch_tree(struct app *a, const char *dir, int depth)
{
	if (depth > 16 || dir == NULL)
		return;
	inotify_add_watch(a->ino, dir,
	                  IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
	                          IN_ATTRIB);
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			watch_tree(a, path, depth + 1);
	}
	closedir(d);
}

static void *watcher(void *arg)
{
	struct app *a = arg;
	int64_t due = -1;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (!stop) {
		int timeout = 200;
		if (due >= 0) {
			int64_t left = due - now_ms();
			timeout = left < 0 ? 0 : (int)left;
		}
		struct pollfd p[2] = {{.fd = a->ino, .events = POLLIN},
		                      {.fd = a->kube ? aegis_kube_source_fd(a->kube) : -1, .events = POLLIN}};
		int r = poll(p, 2, timeout);
		if (r > 0) {
			while (read(a->ino, buf, sizeof(buf)) > 0)
				;
			uint64_t ev;
			while (p[1].fd >= 0 && read(p[1].fd, &ev, sizeof(ev)) > 0)
				;
			due = now_ms() + a->debounce_ms; /* quiet period restarts with each event */
			continue;
		}
		if (due >= 0 && now_ms() >= due) {
			due = -1;
			watch_tree(a, a->root, 0);
			rebuild(a);
		}
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: aegis-xds [--config-root DIR] [--listen ADDR:PORT|none] [--state-file PATH]\n"
	           "                 [--tls-listen ADDR[:PORT] --cert-dir DIR]\n"
	           "                 [--cluster-domain D] [--debounce-ms N] [--log-level LEVEL]\n"
	           "                 [--kubernetes [--kubeconfig FILE] [--kube-context NAME] [--cluster-name "
	           "NAME]\n"
	           "                  [--remote-kubeconfig NAME=FILE]... [--cluster-network NAME=NET]...\n"
	           "                  [--cluster-locality NAME=REGION/ZONE]... [--kube-watch-timeout S]\n"
	           "                  [--kube-backoff-ms MIN:MAX]]\n"
	           "Serves Envoy ADS (SotW and delta) on ADDR:PORT (default 0.0.0.0:15010) from the YAML "
	           "tree and/or the Kubernetes API (docs/kubernetes.md).\n"
	           "--tls-listen adds a mutual-TLS listener (port 15012 when omitted): DIR holds "
	           "cert-chain.pem, key.pem and\n"
	           "root-cert.pem; clients must present a certificate signed by that root (docs/xds.md).\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return AEGIS_EINVAL;
	*out = (int)v;
	return 0;
}

/* NAME=VALUE of a repeatable per-cluster flag: *value points into s, which is split in place. */
static int split_pair(char *s, const char **name, const char **value)
{
	char *eq = strchr(s, '=');
	if (eq == NULL || eq == s || eq[1] == '\0')
		return AEGIS_EINVAL;
	*eq = '\0';
	*name = s;
	*value = eq + 1;
	return 0;
}

/* The cluster named name (created when absent; the local cluster is kclusters[0]). */
static struct aegis_kube_cluster_opts *kcluster(struct app *a, const char *name)
{
	for (size_t i = 0; i < a->n_kclusters; i++)
		if (strcmp(a->kclusters[i].name, name) == 0)
			return &a->kclusters[i];
	if (a->n_kclusters == MAX_CLUSTERS)
		return NULL;
	struct aegis_kube_cluster_opts *c = &a->kclusters[a->n_kclusters++];
	memset(c, 0, sizeof(*c));
	c->name = name;
	return c;
}

/* Applies the Kubernetes flags, which may come in any order. Returns 0 or 2 (usage error). */
static int kube_flag(struct app *a, int c, char *arg, const char **kubeconfig, const char **context,
                     const char **local_name)
{
	const char *name, *value;
	struct aegis_kube_cluster_opts *k;
	switch (c) {
	case 'K': *kubeconfig = arg; return 0;
	case 'C': *context = arg; return 0;
	case 'N': *local_name = arg; return 0;
	case 'W': {
		int t;
		if (parse_int(arg, 1, 86400, &t))
			return 2;
		a->kopts.watch_timeout_s = (unsigned)t;
		return 0;
	}
	case 'B': {
		char *colon = strchr(arg, ':');
		int lo_ms, hi_ms;
		if (colon == NULL)
			return 2;
		*colon = '\0';
		if (parse_int(arg, 1, 600000, &lo_ms) || parse_int(colon + 1, 1, 600000, &hi_ms))
			return 2;
		a->kopts.backoff_min_ms = (unsigned)lo_ms;
		a->kopts.backoff_max_ms = (unsigned)hi_ms;
		return 0;
	}
	}
	if (split_pair(arg, &name, &value) != 0 || (k = kcluster(a, name)) == NULL)
		return 2;
	if (c == 'R')
		k->kubeconfig = value;
	else if (c == 'n')
		k->network = value;
	else
		k->locality = value;
	return 0;
}

int main(int argc, char **argv)
{
	static struct app a;
	a.listen = "0.0.0.0:15010";
	a.domain = "cluster.local";
	a.debounce_ms = 100;
	static const struct option lo[] = {
	        {"config-root", required_argument, NULL, 'r'},
	        {"listen", required_argument, NULL, 'l'},
	        {"state-file", required_argument, NULL, 's'},
	        {"cluster-domain", required_argument, NULL, 'd'},
	        {"debounce-ms", required_argument, NULL, 'b'},
	        {"log-level", required_argument, NULL, 'v'},
	        {"kubernetes", no_argument, NULL, 'k'},
	        {"kubeconfig", required_argument, NULL, 'K'},
	        {"kube-context", required_argument, NULL, 'C'},
	        {"cluster-name", required_argument, NULL, 'N'},
	        {"remote-kubeconfig", required_argument, NULL, 'R'},
	        {"cluster-network", required_argument, NULL, 'n'},
	        {"cluster-locality", required_argument, NULL, 'L'},
	        {"kube-watch-timeout", required_argument, NULL, 'W'},
	        {"kube-backoff-ms", required_argument, NULL, 'B'},
	        {"tls-listen", required_argument, NULL, 't'},
	        {"cert-dir", required_argument, NULL, 'c'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;
	bool kubernetes = false;
	const char *kubeconfig = NULL, *kcontext = NULL, *local_name = "";
	/* The local cluster first; its name is known only once every flag is read. */
	a.kclusters[0] = (struct aegis_kube_cluster_opts){.name = ""};
	a.n_kclusters = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		enum aegis_log_level lvl;
		switch (c) {
		case 'r': a.root = optarg; break;
		case 'l': a.listen = strcmp(optarg, "none") == 0 ? NULL : optarg; break;
		case 't': a.tls_listen = optarg; break;
		case 'c': a.cert_dir = optarg; break;
		case 's': a.state_file = optarg; break;
		case 'd': a.domain = optarg; break;
		case 'b':
			if (parse_int(optarg, 0, 60000, &a.debounce_ms)) {
				fprintf(stderr, "aegis-xds: bad --debounce-ms %s\n", optarg);
				return 2;
			}
			break;
		case 'v':
			if (aegis_log_parse_level(optarg, &lvl)) {
				fprintf(stderr, "aegis-xds: bad --log-level %s\n", optarg);
				return 2;
			}
			aegis_log_set_level(lvl);
			break;
		case 'k': kubernetes = true; break;
		case 'K':
		case 'C':
		case 'N':
		case 'R':
		case 'n':
		case 'L':
		case 'W':
		case 'B':
			if (kube_flag(&a, c, optarg, &kubeconfig, &kcontext, &local_name)) {
				const char *flag = "?";
				for (size_t i = 0; lo[i].name != NULL; i++)
					if (lo[i].val == c)
						flag = lo[i].name;
				fprintf(stderr, "aegis-xds: bad --%s %s\n", flag, optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((a.root == NULL && !kubernetes) || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (kubernetes) {
		/* The local cluster's per-name flags were filed under its name; merge them into slot 0. */
		struct aegis_kube_cluster_opts *named = NULL;
		for (size_t i = 1; i < a.n_kclusters && local_name[0]; i++)
			if (strcmp(a.kclusters[i].name, local_name) == 0)
				named = &a.kclusters[i];
		if (named != NULL) {
			if (named->kubeconfig != NULL) {
				fprintf(stderr, "aegis-xds: --remote-kubeconfig names the local cluster %s\n",
				        local_name);
				return 2;
			}
			a.kclusters[0].network = named->network;
			a.kclusters[0].locality = named->locality;
			*named = a.kclusters[--a.n_kclusters];
		}
		a.kclusters[0].name = local_name;
		a.kclusters[0].kubeconfig = kubeconfig;
		a.kclusters[0].context = kcontext;
		for (size_t i = 1; i < a.n_kclusters; i++)
			if (a.kclusters[i].kubeconfig == NULL) {
				fprintf(stderr,
				        "aegis-xds: cluster %s has a network or locality but no "
				        "--remote-kubeconfig\n",
				        a.kclusters[i].name);
				return 2;
			}
		a.kopts.clusters = a.kclusters;
		a.kopts.n_clusters = a.n_kclusters;
	} else if (kubeconfig || a.n_kclusters > 1) {
		fprintf(stderr, "aegis-xds: Kubernetes flags need --kubernetes\n");
		return 2;
	}
	/* The port must be checked here: grpc_server_add_http2_port does not (STACK_NOTES.md). */
	int port;
	const char *colon = a.listen ? strrchr(a.listen, ':') : NULL;
	if (a.listen != NULL && (colon == NULL || parse_int(colon + 1, 0, 65535, &port))) {
		fprintf(stderr, "aegis-xds: bad --listen %s (want ADDR:PORT or none)\n", a.listen);
		return 2;
	}
	if (a.tls_listen != NULL) {
		/* ADDR without a port: Istio's xDS-over-mTLS port. "[::]" has colons but no port. */
		colon = strrchr(a.tls_listen, ':');
		size_t n = strlen(a.tls_listen);
		bool no_port = colon == NULL || (n > 0 && a.tls_listen[n - 1] == ']');
		snprintf(a.tls_listen_buf, sizeof(a.tls_listen_buf), no_port ? "%s:15012" : "%s",
		         a.tls_listen);
		a.tls_listen = a.tls_listen_buf;
		colon = strrchr(a.tls_listen, ':');
		if (n == 0 || n > 200 || parse_int(colon + 1, 0, 65535, &port)) {
			fprintf(stderr, "aegis-xds: bad --tls-listen %s (want ADDR[:PORT])\n", a.tls_listen);
			return 2;
		}
		if (a.cert_dir == NULL) {
			fprintf(stderr, "aegis-xds: --tls-listen needs --cert-dir\n");
			return 2;
		}
		struct aegis_diag diag = {0};
		char buf[600], id[256];
		if (aegis_xds_tls_check(a.cert_dir, id, sizeof(id), &diag) != 0) {
			fprintf(stderr, "aegis-xds: --cert-dir: %s\n",
			        aegis_diag_str(&diag, buf, sizeof(buf)));
			return 1;
		}
		AEGIS_LOG(AEGIS_LOG_INFO, "xds mutual TLS", LKV_S("identity", id),
		          LKV_S("cert_dir", a.cert_dir));
	} else if (a.cert_dir != NULL) {
		fprintf(stderr, "aegis-xds: --cert-dir is for --tls-listen\n");
		return 2;
	}
	if (a.listen == NULL && a.tls_listen == NULL) {
		fprintf(stderr, "aegis-xds: --listen none needs --tls-listen\n");
		return 2;
	}
	/* Start-up errors are fatal with a clear message; later ones are reported and survived. */
	struct stat rst;
	errno = 0;
	if (a.root != NULL && (stat(a.root, &rst) != 0 || !S_ISDIR(rst.st_mode))) {
		fprintf(stderr, "aegis-xds: --config-root %s: %s\n", a.root,
		        errno ? strerror(errno) : "not a directory");
		return 1;
	}
	a.units = calloc(MAX_UNITS, sizeof(*a.units));
	a.vips = aegis_vip_alloc_new();
	if (a.units == NULL || a.vips == NULL) {
		fprintf(stderr, "aegis-xds: out of memory\n");
		return 1;
	}
	if (a.state_file && access(a.state_file, F_OK) == 0) {
		struct aegis_diag diag = {0};
		char buf[600];
		if (aegis_vip_alloc_load(a.vips, a.state_file, &diag)) {
			fprintf(stderr, "aegis-xds: %s\n", aegis_diag_str(&diag, buf, sizeof(buf)));
			return 1;
		}
	}
	a.ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (a.ino < 0) {
		fprintf(stderr, "aegis-xds: inotify: %s\n", strerror(errno));
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (kubernetes) {
		struct aegis_diag diag = {0};
		char buf[600];
		if (aegis_kube_source_start(&a.kopts, &a.kube, &diag) != 0) {
			fprintf(stderr, "aegis-xds: kubernetes: %s\n",
			        aegis_diag_str(&diag, buf, sizeof(buf)));
			return 1;
		}
	}
	grpc_init();
	int bound = 0, tls_bound = 0;
	struct aegis_xds_server_listen sl = {.addr = a.listen,
	                                     .tls_addr = a.tls_listen,
	                                     .cert_dir = a.cert_dir,
	                                     .bound_port = &bound,
	                                     .tls_port = &tls_bound};
	if (aegis_xds_server_start(&sl, &a.srv)) {
		fprintf(stderr, "aegis-xds: cannot listen on %s%s%s\n", a.listen ? a.listen : "",
		        a.listen && a.tls_listen ? " and " : "", a.tls_listen ? a.tls_listen : "");
		grpc_shutdown_blocking();
		return 1;
	}
	if (a.listen != NULL)
		AEGIS_LOG(AEGIS_LOG_INFO, "listening", LKV_S("addr", a.listen), LKV_I("port", bound),
		          LKV_S("root", a.root ? a.root : ""));
	if (a.tls_listen != NULL)
		AEGIS_LOG(AEGIS_LOG_INFO, "listening", LKV_S("addr", a.tls_listen), LKV_I("port", tls_bound),
		          LKV_S("tls", "mutual"), LKV_S("root", a.root ? a.root : ""));
	watch_tree(&a, a.root, 0);
	rebuild(&a);
	pthread_t th;
	if (pthread_create(&th, NULL, watcher, &a) != 0) {
		fprintf(stderr, "aegis-xds: cannot start the watcher thread\n");
		return 1;
	}
	aegis_xds_server_run(a.srv, &stop);
	pthread_join(th, NULL);
	aegis_kube_source_stop(a.kube);
	grpc_shutdown_blocking();
	for (size_t i = 0; i < a.n_units; i++)
		aegis_config_free(a.units[i].cfg);
	free(a.units);
	aegis_vip_alloc_free(a.vips);
	close(a.ino);
	AEGIS_LOG(AEGIS_LOG_INFO, "stopped");
	return 0;
}
