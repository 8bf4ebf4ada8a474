/* Sidecar injection, sans I/O: the injection config (inject/inject_config.c), the pod patcher and the
 * AdmissionReview handler (inject/inject_patch.c), YAML <-> JSON (inject/inject_yaml.c) and an RFC 6902 JSON
 * Patch applier (inject/inject_jsonpatch.c). aegis-inject (the webhook) and `aegisctl inject` (ctl/) share
 * all of it, so a manual injection and the webhook's can never differ. Nothing here opens a socket or a file,
 * except aegis_inject_config_load(), which reads the one file it is given. See docs/inject.md. */
#ifndef AEGIS_INJECT_H
#define AEGIS_INJECT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "aegis/err.h"

/* The largest AdmissionReview body the webhook reads. etcd refuses objects over 1.5 MiB, so a pod the API
 * server can store always fits with its envelope; anything larger is answered 413 unread. */
#define AEGIS_INJECT_MAX_BODY        (2u << 20)
#define AEGIS_INJECT_MAX_CONFIG      (1u << 20) /* the config file */
#define AEGIS_INJECT_MAX_DEPTH       64         /* YAML/JSON nesting accepted from a file or a request */
#define AEGIS_INJECT_MAX_PORTS       64         /* ports in one exclude annotation (aegis-iptables' cap) */
#define AEGIS_INJECT_MAX_WARNINGS    8
#define AEGIS_INJECT_SIDECAR_NAME    "aegis-proxy"
#define AEGIS_INJECT_INIT_NAME       "aegis-init"
#define AEGIS_INJECT_CERT_VOLUME     "aegis-certs"
#define AEGIS_INJECT_ANNOT_INJECT    "aegis.io/inject"
#define AEGIS_INJECT_ANNOT_STATUS    "aegis.io/status"
#define AEGIS_INJECT_ANNOT_DNS       "aegis.io/capture-dns"
#define AEGIS_INJECT_ANNOT_EXCL_OUT  "aegis.io/exclude-outbound-ports"
#define AEGIS_INJECT_ANNOT_EXCL_IN   "aegis.io/exclude-inbound-ports"
#define AEGIS_INJECT_STATUS_INJECTED "injected"

/* What gets injected. Every json_t member is owned by the config (one reference each) and never NULL after
 * aegis_inject_config_init(); the strings are malloc'd. */
struct aegis_inject_config {
	char *image;             /* the one Aegis image (both containers) */
	char *image_pull_policy; /* IfNotPresent, Always or Never */
	unsigned proxy_uid; /* the sidecar's UID and GID; aegis-iptables exempts them (--proxy-uid/gid) */
	unsigned proxy_gid;
	char *cert_mount_path;    /* where the sidecar sees its identity (aegis-proxy --cert-dir) */
	char *cert_secret_prefix; /* the identity Secret is <prefix><service account> */
	bool cert_optional;       /* the pod starts before its Secret exists (DNS works, mTLS waits) */
	json_t *proxy_args;       /* array of strings: aegis-proxy's arguments */
	json_t *iptables_args;    /* array of strings: added after "apply" before the per-pod options */
	json_t *proxy_resources;  /* a core/v1 ResourceRequirements object */
	json_t *init_resources;
	json_t *readiness_probe; /* a core/v1 Probe object for the sidecar */
	json_t *ports;           /* array of core/v1 ContainerPort objects for the sidecar */
};

/* Sets the built-in defaults (the same values as deploy/ConfigMap's config.yaml). Returns 0 or AEGIS_ENOMEM
 * (then the config is already freed). */
int aegis_inject_config_init(struct aegis_inject_config *c) AEGIS_WUR;

/* Releases everything init/load allocated; c may be zeroed or already freed. */
void aegis_inject_config_free(struct aegis_inject_config *c);

/* Parses the YAML (or JSON: JSON is YAML) text of a config file over the defaults already in c. Unknown keys
 * and wrongly typed values are errors with name:line:column in diag: a typo in the ConfigMap must stop the
 * webhook at start-up, not silently inject the defaults. On error c keeps the values it had. */
int aegis_inject_config_parse(struct aegis_inject_config *c, const char *name, const char *text, size_t len,
                              struct aegis_diag *diag) AEGIS_WUR;

/* Reads path (at most AEGIS_INJECT_MAX_CONFIG bytes) and parses it as above. */
int aegis_inject_config_load(struct aegis_inject_config *c, const char *path,
                             struct aegis_diag *diag) AEGIS_WUR;

/* Why a pod is left alone (AEGIS_INJECT_SKIP_*), or AEGIS_INJECT_PATCHED. */
enum aegis_inject_outcome {
	AEGIS_INJECT_PATCHED = 0,
	AEGIS_INJECT_SKIP_OPTED_OUT,   /* aegis.io/inject: "false" */
	AEGIS_INJECT_SKIP_INJECTED,    /* aegis.io/status: injected, or a container named aegis-proxy */
	AEGIS_INJECT_SKIP_HOSTNETWORK, /* capture would rewrite the node's own rules */
};

/* A human-readable reason for an outcome (static string). */
const char *aegis_inject_patch_outcome_str(enum aegis_inject_outcome o);

/* Computes the JSON Patch (RFC 6902) that injects a pod template. pod is a Pod or a pod template (an object
 * with metadata and spec); base is the JSON Pointer of that object inside the document the patch will be
 * applied to ("" for a Pod, "/spec/template" for a Deployment). On success *patch is a new array (empty when
 * *outcome is a skip) owned by the caller. AEGIS_EINVAL means the pod is malformed or an aegis.io annotation
 * has a bad value; diag->msg says which, in words fit for the user who created the pod. */
int aegis_inject_patch_pod(const struct aegis_inject_config *c, const json_t *pod, const char *base,
                           json_t **patch, enum aegis_inject_outcome *outcome,
                           struct aegis_diag *diag) AEGIS_WUR;

/* What aegis_inject_patch_review() produced, for the response and for the webhook's log line. */
struct aegis_inject_reply {
	char *body; /* malloc'd, NUL-terminated; the caller frees it */
	size_t len;
	int http_status; /* 200 (an AdmissionReview) or 400 (not an AdmissionReview v1 at all) */
	bool allowed;
	enum aegis_inject_outcome outcome;
	char uid[64];
	char ns[64];
	char name[256];
	char msg[512]; /* why it was denied, skipped or rejected; "" when injected */
};

/* The webhook's whole job, bytes to bytes: body is the request body of POST /inject. Always produces a
 * response body (r->body) and the HTTP status to send it with: 200 with an AdmissionReview for anything that
 * carries a request uid (allowed, possibly with a patch or warnings, or denied with a status when an
 * aegis.io annotation is invalid), 400 with {"error": ...} when the body is not an admission.k8s.io/v1
 * AdmissionReview at all (the API server then applies the webhook's failurePolicy). Returns 0, or
 * AEGIS_ENOMEM with nothing allocated. */
int aegis_inject_patch_review(const struct aegis_inject_config *c, const char *body, size_t len,
                              struct aegis_inject_reply *r) AEGIS_WUR;

/* Converts every document of a YAML stream into a JSON array of values (YAML 1.2 core schema: null, true,
 * false, integers and floats are typed when plain, everything quoted is a string; aliases are followed up
 * to a cap on the values produced). An empty document is dropped. Errors carry name:line:column. *out is a
 * new reference. */
int aegis_inject_yaml_to_json(const char *name, const char *text, size_t len, json_t **out,
                              struct aegis_diag *diag) AEGIS_WUR;

/* Applies an RFC 6902 patch (add, remove, replace, test) to *doc in place. On failure *doc is unchanged
 * only in so far as the failing operation made no change: callers apply to a copy. Returns 0, AEGIS_EINVAL
 * (bad operation or path), AEGIS_ENOTFOUND (path missing) or AEGIS_ENOMEM; diag says which operation. */
int aegis_inject_jsonpatch_apply(json_t *doc, const json_t *patch, struct aegis_diag *diag) AEGIS_WUR;

#endif
