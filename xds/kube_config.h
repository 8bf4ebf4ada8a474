/* Private to xds/: where the Kubernetes API server is and how to authenticate to it, from a kubeconfig
 * file (a minimal reader: current-context -> cluster and user) or from the pod's service account.
 *
 * Only what aegis-xds needs is read: the cluster's `server`, `certificate-authority(-data)`,
 * `insecure-skip-tls-verify`, `tls-server-name`; the user's `token`, `tokenFile`,
 * `client-certificate(-data)` and `client-key(-data)`; the context's `namespace`. A user that needs an
 * `exec` or `auth-provider` plugin is refused with a message, not silently sent unauthenticated. */
#ifndef AEGIS_KUBE_CONFIG_H
#define AEGIS_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "aegis/err.h"

/* Every string is malloc'd and owned by the struct (NULL when absent); *_pem buffers are the decoded
 * *-data fields (not NUL-terminated, length in *_pem_len). Paths are absolute or relative to the
 * working directory (a kubeconfig's relative paths are resolved against its own directory). */
struct aegis_kubecfg {
	char *server; /* "https://host:port", without a trailing slash */
	char *ca_file;
	char *ca_pem;
	size_t ca_pem_len;
	char *token;      /* bearer token given inline */
	char *token_file; /* bearer token re-read for every request: projected tokens rotate */
	char *cert_file;
	char *cert_pem;
	size_t cert_pem_len;
	char *key_file;
	char *key_pem;
	size_t key_pem_len;
	char *tls_server_name;
	bool insecure; /* insecure-skip-tls-verify: accepted, and logged loudly by the caller */
	char *namespace_;
};

/* Reads kubeconfig file path; context NULL means its current-context. Returns 0 with *out filled (the
 * caller clears it with aegis_kubecfg_clear, also after a failure), or a negative aegis_err with diag
 * naming the file and the missing or malformed field. */
int aegis_kubecfg_load(const char *path, const char *context, struct aegis_kubecfg *out,
                       struct aegis_diag *diag) AEGIS_WUR;

/* The in-cluster configuration: server from KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT (an IPv6
 * host is bracketed), token file, CA and namespace from sa_dir (NULL: the standard
 * /var/run/secrets/kubernetes.io/serviceaccount). Returns 0 or AEGIS_ENOTFOUND when not in a pod. */
int aegis_kubecfg_in_cluster(const char *sa_dir, struct aegis_kubecfg *out,
                             struct aegis_diag *diag) AEGIS_WUR;

/* Decodes standard base64 (padding optional, whitespace skipped) into a malloc'd buffer. Returns 0 with
 * *out and *out_len, or AEGIS_EPARSE on a character outside the alphabet. */
int aegis_kubecfg_base64(const char *in, char **out, size_t *out_len) AEGIS_WUR;

/* Frees every field and zeroes the struct. */
void aegis_kubecfg_clear(struct aegis_kubecfg *c);

#endif
