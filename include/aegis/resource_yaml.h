/* Loads Istio and Kubernetes resources from YAML, exactly as `kubectl get <kind> -o yaml` prints them:
 * multi-document files, `kind: List` wrappers, and directories of such files (recursively, *.yaml and
 * *.yml in sorted order). Kinds: networking.istio.io/{v1alpha3,v1beta1,v1} ServiceEntry, VirtualService,
 * DestinationRule, WorkloadEntry; v1 Service; discovery.k8s.io/v1 EndpointSlice. Other kinds are skipped
 * (with a debug log), unknown fields ignored. A directory holding `cluster.yaml` (kind-less:
 * `name:`, `network:`, `locality:`) marks every resource below it with that cluster.
 *
 * A malformed file is an error with file, line, column and reason in diag: start-up stops on it, a
 * reload keeps the previous configuration. */
#ifndef AEGIS_RESOURCE_YAML_H
#define AEGIS_RESOURCE_YAML_H

#include <stddef.h>

#include "aegis/err.h"
#include "aegis/model.h"

/* Loads every path (file or directory) into one new config. Returns 0 and sets *out (caller frees with
 * aegis_config_free), or a negative aegis_err with diag filled. */
int aegis_yaml_load_paths(const char *const *paths, size_t n_paths, struct aegis_config **out,
                          struct aegis_diag *diag) AEGIS_WUR;

/* Loads one YAML document stream from memory (tests, fuzzing); name is used in diagnostics. */
int aegis_yaml_load_buffer(const char *name, const char *buf, size_t len, struct aegis_config **out,
                           struct aegis_diag *diag) AEGIS_WUR;

#endif
