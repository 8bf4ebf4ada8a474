/* Private to xds/: Kubernetes API servers as a configuration source for aegis-xds.
 *
 * For each cluster (the local one and one per remote kubeconfig), one thread per watched kind
 * (kube_json.h: eight kinds) runs list+watch with libcurl (kube_watch.h has the protocol). The objects
 * are kept as JSON; aegis_kube_source_build() maps them all, through the YAML loader's mapping, into one
 * struct aegis_config, which aegis-xds merges with its directory units exactly like a unit of its own.
 *
 * Threading: the watch threads only touch their own curl handle and, under the source's mutex, their
 * kind's object store. build() takes the same mutex while it maps, so the config is a consistent
 * cut of every store. After each change a watch thread writes the eventfd aegis_kube_source_fd(); the
 * caller polls it (and reads it to clear it) and rebuilds, debounced as it does for inotify. */
#ifndef AEGIS_KUBE_SOURCE_H
#define AEGIS_KUBE_SOURCE_H

#include <stddef.h>

#include "aegis/err.h"
#include "aegis/model.h"

struct aegis_kube_cluster_opts {
	const char *name;       /* the cluster's name in the mesh; "" = the local cluster, unnamed */
	const char *network;    /* may be NULL */
	const char *locality;   /* "region/zone", may be NULL */
	const char *kubeconfig; /* NULL: in-cluster service account */
	const char *context;    /* NULL: the kubeconfig's current-context */
};

struct aegis_kube_source_opts {
	const struct aegis_kube_cluster_opts *clusters;
	size_t n_clusters;
	const char *sa_dir;       /* NULL: /var/run/secrets/kubernetes.io/serviceaccount */
	unsigned watch_timeout_s; /* timeoutSeconds of a watch (0: 300) */
	unsigned backoff_min_ms;  /* first pause after an error (0: 500) */
	unsigned backoff_max_ms;  /* the pause doubles up to this (0: 30000) */
};

struct aegis_kube_source;

/* Reads every cluster's kubeconfig (or the service account) and starts the watch threads. Bad
 * configuration (unreadable kubeconfig, no server) fails here, with diag, before any thread starts;
 * an unreachable API server does not: it is retried with back-off. Strings in opts are copied. */
int aegis_kube_source_start(const struct aegis_kube_source_opts *opts, struct aegis_kube_source **out,
                            struct aegis_diag *diag) AEGIS_WUR;

/* An eventfd (EFD_NONBLOCK) that becomes readable after changes; read 8 bytes to clear it. */
int aegis_kube_source_fd(const struct aegis_kube_source *s);

/* Maps the objects of every cluster that has completed its first list of every kind (or failed it
 * once: a kind the server lacks must not hold the rest back) into a new config (caller frees). An
 * object the mapping rejects is left out and logged. AEGIS_EAGAIN while no cluster is ready. */
int aegis_kube_source_build(struct aegis_kube_source *s, struct aegis_config **out) AEGIS_WUR;

/* Stops and joins every thread (within about a second: curl's progress callback polls the flag),
 * then frees s. NULL is a no-op. */
void aegis_kube_source_stop(struct aegis_kube_source *s);

#endif
