/* The injector's core: a pod (or pod template) and the config in, a JSON Patch out; an AdmissionReview
 * request body in, the response body out. No I/O, no clock: the webhook, `aegisctl inject`, the unit tests
 * and the fuzzer all call these same functions. See docs/inject.md for every decision made here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/inject.h"

const char *aegis_inject_patch_outcome_str(enum aegis_inject_outcome o)
{
	switch (o) {
	case AEGIS_INJECT_PATCHED: return "injected";
	case AEGIS_INJECT_SKIP_OPTED_OUT: return "opted out (aegis.io/inject: \"false\")";
	case AEGIS_INJECT_SKIP_INJECTED: return "already injected";
	case AEGIS_INJECT_SKIP_HOSTNETWORK: return "hostNetwork pod (capture would rewrite the node's rules)";
	}
	return "?";
}

static const char *str_at(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static bool has_container(const json_t *spec, const char *list, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(spec, list), i, c)
	{
		const char *n = str_at(c, "name");
		if (n != NULL && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

static bool is_false(const char *v)
{
	return v != NULL && (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0);
}

/* Normalises a port list annotation ("5432, 6379") into "5432,6379" for aegis-iptables, which takes the same
 * list (--exclude-outbound-ports). A bad entry is the user's error, reported with the annotation's name. */
static int port_list(const char *annot, const char *v, char *out, size_t outlen, struct aegis_diag *diag)
{
	size_t n = 0, count = 0;
	const char *p = v;
	out[0] = '\0';
	while (*p) {
		p += strspn(p, " \t");
		size_t digits = strspn(p, "0123456789");
		unsigned long port = 0;
		for (size_t i = 0; i < digits && i < 6; i++)
			port = port * 10 + (unsigned long)(p[i] - '0');
		const char *end = p + digits;
		end += strspn(end, " \t");
		if (digits == 0 || digits > 5 || port == 0 || port > 65535 || (*end != ',' && *end != '\0'))
			return aegis_diag_set(
			        diag, AEGIS_EINVAL, NULL, 0, 0,
			        "annotation %s: '%s' is not a comma-separated list of ports 1-65535", annot,
			        v);
		if (++count > AEGIS_INJECT_MAX_PORTS)
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                      "annotation %s: more than %d ports", annot,
			                      AEGIS_INJECT_MAX_PORTS);
		int w = snprintf(out + n, outlen - n, "%s%lu", n ? "," : "", port);
		if (w < 0 || (size_t)w >= outlen - n)
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "annotation %s: list too long",
			                      annot);
		n += (size_t)w;
		p = *end == ',' ? end + 1 : end;
		if (*end == ',' && p[strspn(p, " \t")] == '\0')
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                      "annotation %s: '%s' ends with a comma", annot, v);
	}
	if (count == 0)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "annotation %s: empty port list",
		                      annot);
	return 0;
}

static int append_str(json_t *arr, const char *s)
{
	return json_array_append_new(arr, json_string(s)) == 0 ? 0 : AEGIS_ENOMEM;
}

/* aegis-iptables' arguments: "apply", the configured ones, then the pod's overrides, and the readiness
 * probe's httpGet port excluded from inbound capture. With no annotation and the default config this is
 * `aegis-iptables apply --exclude-inbound-ports=15021`. */
static int iptables_args(const struct aegis_inject_config *c, const json_t *annots, json_t **out,
                         struct aegis_diag *diag)
{
	json_t *args = json_array();
	int rc = AEGIS_ENOMEM;
	if (args == NULL || append_str(args, "apply") != 0 || json_array_extend(args, c->iptables_args) != 0)
		goto out;
	const char *dns = str_at(annots, AEGIS_INJECT_ANNOT_DNS);
	if (json_object_get(annots, AEGIS_INJECT_ANNOT_DNS) != NULL && dns == NULL) {
		rc = aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "annotation %s must be a string",
		                    AEGIS_INJECT_ANNOT_DNS);
		goto out;
	}
	if (dns != NULL) {
		const char *mode = NULL;
		if (strcmp(dns, "all") == 0 || strcmp(dns, "true") == 0)
			mode = "all";
		else if (strcmp(dns, "resolv") == 0)
			mode = "resolv";
		else if (strcmp(dns, "off") == 0 || strcmp(dns, "false") == 0)
			mode = "off";
		if (mode == NULL) {
			rc = aegis_diag_set(
			        diag, AEGIS_EINVAL, NULL, 0, 0,
			        "annotation %s: '%s' is not one of all, resolv, off (or true, false)",
			        AEGIS_INJECT_ANNOT_DNS, dns);
			goto out;
		}
		char opt[64];
		snprintf(opt, sizeof(opt), "--capture-dns=%s", mode);
		if (append_str(args, opt) != 0)
			goto out;
	}
	/* The kubelet probes the sidecar's httpGet port (the status port, 15021) from the node: inbound
	 * capture must leave it alone, as istio-iptables does for 15021 (docs/inject.md). */
	json_int_t pp =
	        json_integer_value(json_object_get(json_object_get(c->readiness_probe, "httpGet"), "port"));
	int probe_port = pp >= 1 && pp <= 65535 ? (int)pp : 0;
	static const struct {
		const char *annot, *opt;
	} lists[] = {
	        {AEGIS_INJECT_ANNOT_EXCL_OUT, "--exclude-outbound-ports="},
	        {AEGIS_INJECT_ANNOT_EXCL_IN, "--exclude-inbound-ports="},
	};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		json_t *a = json_object_get(annots, lists[i].annot);
		if (a == NULL)
			continue;
		if (!json_is_string(a)) {
			rc = aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "annotation %s must be a string",
			                    lists[i].annot);
			goto out;
		}
		char ports[AEGIS_INJECT_MAX_PORTS * 6 + 1], opt[sizeof(ports) + 32];
		rc = port_list(lists[i].annot, json_string_value(a), ports, sizeof(ports), diag);
		if (rc != 0)
			goto out;
		rc = AEGIS_ENOMEM;
		/* aegis-iptables takes the last --exclude-inbound-ports: the probe port joins this list. */
		if (i == 1 && probe_port != 0)
			snprintf(opt, sizeof(opt), "%s%s,%d", lists[i].opt, ports, probe_port);
		else
			snprintf(opt, sizeof(opt), "%s%s", lists[i].opt, ports);
		if (append_str(args, opt) != 0)
			goto out;
		if (i == 1)
			probe_port = 0;
	}
	if (probe_port != 0) {
		char opt[64];
		snprintf(opt, sizeof(opt), "--exclude-inbound-ports=%d", probe_port);
		rc = AEGIS_ENOMEM;
		if (append_str(args, opt) != 0)
			goto out;
	}
	*out = args;
	args = NULL;
	rc = 0;
out:
	json_decref(args);
	return rc;
}

static json_t *env_field(const char *name, const char *field)
{
	return json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", name, "valueFrom", "fieldRef", "apiVersion", "v1",
	                 "fieldPath", field);
}

/* The init container: aegis-iptables as root with NET_ADMIN and NET_RAW only (iptables-restore needs
 * both; NET_RAW for the raw table's CT rules). Not read-only: iptables-legacy takes /run/xtables.lock. */
static json_t *init_container(const struct aegis_inject_config *c, json_t *args)
{
	return json_pack(
	        "{s:s, s:s, s:s, s:[s], s:o, s:O, s:{s:i, s:i, s:b, s:b, s:b, s:b, s:{s:[ss], s:[s]}}}",
	        "name", AEGIS_INJECT_INIT_NAME, "image", c->image, "imagePullPolicy", c->image_pull_policy,
	        "command", "aegis-iptables", "args", args, "resources", c->init_resources, "securityContext",
	        "runAsUser", 0, "runAsGroup", 0, "runAsNonRoot", 0, "privileged", 0,
	        "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 0, "capabilities", "add",
	        "NET_ADMIN", "NET_RAW", "drop", "ALL");
}

/* The sidecar: UID/GID 1337 (the capture rules exempt exactly these), no capability at all, read-only root;
 * the pod's identity through the downward API so one template serves every pod. */
static json_t *sidecar(const struct aegis_inject_config *c)
{
	json_t *env = json_pack("[o, o, o, o]", env_field("POD_NAME", "metadata.name"),
	                        env_field("POD_NAMESPACE", "metadata.namespace"),
	                        env_field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
	                        env_field("INSTANCE_IP", "status.podIP"));
	if (env == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:[s], s:O, s:o, s:O, s:O, s:O, "
	                 "s:{s:I, s:I, s:b, s:b, s:b, s:b, s:{s:[s]}}, s:[{s:s, s:s, s:b}]}",
	                 "name", AEGIS_INJECT_SIDECAR_NAME, "image", c->image, "imagePullPolicy",
	                 c->image_pull_policy, "command", "aegis-proxy", "args", c->proxy_args, "env", env,
	                 "ports", c->ports, "readinessProbe", c->readiness_probe, "resources",
	                 c->proxy_resources, "securityContext", "runAsUser", (json_int_t)c->proxy_uid,
	                 "runAsGroup", (json_int_t)c->proxy_gid, "runAsNonRoot", 1, "privileged", 0,
	                 "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 1, "capabilities", "drop",
	                 "ALL", "volumeMounts", "name", AEGIS_INJECT_CERT_VOLUME, "mountPath",
	                 c->cert_mount_path, "readOnly", 1);
}

/* The identity Secret of the pod's service account (known at admission: the ServiceAccount admission plugin
 * fills spec.serviceAccountName before webhooks run; a bare template without one means "default"). */
static json_t *cert_volume(const struct aegis_inject_config *c, const json_t *spec)
{
	const char *sa = str_at(spec, "serviceAccountName");
	if (sa == NULL || *sa == '\0')
		sa = str_at(spec, "serviceAccount");
	if (sa == NULL || *sa == '\0')
		sa = "default";
	size_t len = strlen(c->cert_secret_prefix) + strlen(sa) + 1;
	char *secret = malloc(len);
	if (secret == NULL)
		return NULL;
	snprintf(secret, len, "%s%s", c->cert_secret_prefix, sa);
	json_t *v = json_pack("{s:s, s:{s:s, s:b, s:i}}", "name", AEGIS_INJECT_CERT_VOLUME, "secret",
	                      "secretName", secret, "optional", c->cert_optional, "defaultMode", 0444);
	free(secret);
	return v;
}

/* Escapes one JSON Pointer token (RFC 6901: "~" -> "~0", "/" -> "~1"). */
static void escape_token(const char *s, char *out, size_t outlen)
{
	size_t n = 0;
	for (; *s && n + 3 < outlen; s++) {
		if (*s == '~' || *s == '/') {
			out[n++] = '~';
			out[n++] = *s == '~' ? '0' : '1';
		} else {
			out[n++] = *s;
		}
	}
	out[n] = '\0';
}

/* Appends {"op":"add","path":base+suffix,"value":value}; steals value (also on failure). */
static int add_op(json_t *patch, const char *base, const char *suffix, json_t *value)
{
	if (value == NULL)
		return AEGIS_ENOMEM;
	char path[1024];
	snprintf(path, sizeof(path), "%s%s", base, suffix);
	json_t *op = json_pack("{s:s, s:s, s:o}", "op", "add", "path", path, "value", value);
	return op != NULL && json_array_append_new(patch, op) == 0 ? 0 : AEGIS_ENOMEM;
}

/* Adds value to the array member key of obj (at base+"/"+path): appended when the array exists, else the
 * array is created holding it. Steals value. */
static int add_to_list(json_t *patch, const char *base, const json_t *obj, const char *path, const char *key,
                       json_t *value)
{
	char suffix[256];
	if (json_is_array(json_object_get(obj, key))) {
		snprintf(suffix, sizeof(suffix), "%s/%s/-", path, key);
		return add_op(patch, base, suffix, value);
	}
	snprintf(suffix, sizeof(suffix), "%s/%s", path, key);
	json_t *arr = json_array();
	if (arr != NULL && value != NULL && json_array_append_new(arr, value) == 0)
		return add_op(patch, base, suffix, arr);
	json_decref(arr);
	return AEGIS_ENOMEM;
}

int aegis_inject_patch_pod(const struct aegis_inject_config *c, const json_t *pod, const char *base,
                           json_t **patch, enum aegis_inject_outcome *outcome, struct aegis_diag *diag)
{
	*patch = NULL;
	*outcome = AEGIS_INJECT_PATCHED;
	if (!json_is_object(pod))
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "the pod is not a JSON object");
	const json_t *meta = json_object_get(pod, "metadata"), *spec = json_object_get(pod, "spec");
	if (meta != NULL && !json_is_object(meta))
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "metadata is not an object");
	if (!json_is_object(spec) || !json_is_array(json_object_get(spec, "containers")))
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "the pod has no spec.containers list");
	const json_t *annots = json_object_get(meta, "annotations"),
	             *labels = json_object_get(meta, "labels");
	if (annots != NULL && !json_is_object(annots))
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
		                      "metadata.annotations is not an object");

	json_t *out = json_array();
	if (out == NULL)
		return AEGIS_ENOMEM;
	/* The label is the webhook's objectSelector (the API server never calls us for it); checking it here
	 * too makes `aegisctl inject` agree with the webhook. */
	if (is_false(str_at(annots, AEGIS_INJECT_ANNOT_INJECT)) ||
	    is_false(str_at(labels, AEGIS_INJECT_ANNOT_INJECT)))
		*outcome = AEGIS_INJECT_SKIP_OPTED_OUT;
	else if (json_object_get(annots, AEGIS_INJECT_ANNOT_STATUS) != NULL ||
	         has_container(spec, "containers", AEGIS_INJECT_SIDECAR_NAME) ||
	         has_container(spec, "initContainers", AEGIS_INJECT_INIT_NAME))
		*outcome = AEGIS_INJECT_SKIP_INJECTED;
	else if (json_is_true(json_object_get(spec, "hostNetwork")))
		*outcome = AEGIS_INJECT_SKIP_HOSTNETWORK;
	if (*outcome != AEGIS_INJECT_PATCHED) {
		*patch = out;
		return 0;
	}

	json_t *args = NULL;
	int rc = iptables_args(c, annots, &args, diag);
	if (rc != 0)
		goto out;
	char key[128];
	escape_token(AEGIS_INJECT_ANNOT_STATUS, key, sizeof(key));
	char suffix[256];
	snprintf(suffix, sizeof(suffix), "/metadata/annotations/%s", key);
	if (meta == NULL)
		rc = add_op(out, base, "/metadata",
		            json_pack("{s:{s:s}}", "annotations", AEGIS_INJECT_ANNOT_STATUS,
		                      AEGIS_INJECT_STATUS_INJECTED));
	else if (annots == NULL)
		rc = add_op(out, base, "/metadata/annotations",
		            json_pack("{s:s}", AEGIS_INJECT_ANNOT_STATUS, AEGIS_INJECT_STATUS_INJECTED));
	else
		rc = add_op(out, base, suffix, json_string(AEGIS_INJECT_STATUS_INJECTED));
	/* The init container goes last: the application's own init containers run before the capture exists,
	 * when no proxy is running yet to receive redirected traffic, so they keep working as before. */
	if (rc == 0)
		rc = add_to_list(out, base, spec, "/spec", "initContainers", init_container(c, args));
	args = NULL; /* init_container stole it */
	/* The sidecar goes last too, so that the application stays the default container of kubectl
	 * logs/exec. */
	if (rc == 0)
		rc = add_to_list(out, base, spec, "/spec", "containers", sidecar(c));
	if (rc == 0)
		rc = add_to_list(out, base, spec, "/spec", "volumes", cert_volume(c, spec));
	if (rc != 0)
		goto out;
	*patch = out;
	out = NULL;
out:
	json_decref(args);
	json_decref(out);
	return rc;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const char *in, size_t len)
{
	size_t olen = (len + 2) / 3 * 4 + 1, o = 0;
	char *out = malloc(olen);
	if (out == NULL)
		return NULL;
	const unsigned char *s = (const unsigned char *)in;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

/* Serialises j compactly into a buffer of our own malloc (NUL-terminated), so that callers free it with
 * free() whatever allocator jansson was given (the unit tests give it cmocka's). */
static char *dump(const json_t *j, size_t *len)
{
	size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
	char *s = n > 0 ? malloc(n + 1) : NULL;
	if (s == NULL || json_dumpb(j, s, n, JSON_COMPACT) != n) {
		free(s);
		return NULL;
	}
	s[n] = '\0';
	*len = n;
	return s;
}

/* Serialises body (consumed) into r. */
static int finish(json_t *body, struct aegis_inject_reply *r, int status)
{
	if (body == NULL)
		return AEGIS_ENOMEM;
	r->body = dump(body, &r->len);
	json_decref(body);
	if (r->body == NULL)
		return AEGIS_ENOMEM;
	r->http_status = status;
	return 0;
}

static int bad_request(struct aegis_inject_reply *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static int bad_request(struct aegis_inject_reply *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	/* jansson's parse errors quote the offending bytes, which need not be UTF-8, and json_pack refuses
	 * strings that are not: the caller's bad body would become our internal error (found by
	 * fuzz_inject_review). Keep the message ASCII. */
	for (char *p = r->msg; *p; p++)
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
			*p = '?';
	r->allowed = false;
	return finish(json_pack("{s:s}", "error", r->msg), r, 400);
}

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

int aegis_inject_patch_review(const struct aegis_inject_config *c, const char *body, size_t len,
                              struct aegis_inject_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->outcome = AEGIS_INJECT_PATCHED;
	json_error_t jerr;
	json_t *review = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr), *resp = NULL, *warnings = NULL,
	       *patch = NULL;
	char *patch_text = NULL, *patch_b64 = NULL;
	int rc;
	if (review == NULL) {
		rc = bad_request(r, "request body is not JSON: %s", jerr.text);
		goto out;
	}
	const char *api = str_at(review, "apiVersion"), *kind = str_at(review, "kind");
	json_t *req = json_object_get(review, "request");
	if (kind == NULL || strcmp(kind, "AdmissionReview") != 0) {
		rc = bad_request(r, "not an AdmissionReview (kind %s)", kind ? kind : "missing");
		goto out;
	}
	if (api == NULL || strcmp(api, "admission.k8s.io/v1") != 0) {
		rc = bad_request(
		        r, "apiVersion %s is not admission.k8s.io/v1 (set admissionReviewVersions: [v1])",
		        api ? api : "missing");
		goto out;
	}
	const char *uid = str_at(req, "uid");
	if (uid == NULL || *uid == '\0') {
		rc = bad_request(r, "AdmissionReview without request.uid");
		goto out;
	}
	copy(r->uid, sizeof(r->uid), uid);
	copy(r->ns, sizeof(r->ns), str_at(req, "namespace"));
	copy(r->name, sizeof(r->name), str_at(req, "name"));
	warnings = json_array();
	resp = json_pack("{s:s, s:b}", "uid", uid, "allowed", 1);
	if (warnings == NULL || resp == NULL) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	r->allowed = true;

	/* From here on every answer is a 200 AdmissionReview: the API server then reports our message to the
	 * user. Only a request we cannot even answer (above) is an HTTP error, which the API server turns
	 * into its failurePolicy. */
	json_t *rkind = json_object_get(req, "kind");
	const char *op = str_at(req, "operation"), *sub = str_at(req, "subResource");
	json_t *pod = json_object_get(req, "object");
	if (!json_is_object(rkind) || strcmp(str_at(rkind, "kind") ?: "", "Pod") != 0 ||
	    strcmp(str_at(rkind, "group") ?: "", "") != 0 || (sub != NULL && *sub != '\0')) {
		/* A webhook rule that selects more than pods is a deployment mistake; blocking every other
		 * object for it would be worse than letting them through untouched, so say so and allow. */
		snprintf(r->msg, sizeof(r->msg),
		         "aegis-inject only mutates core/v1 Pods, not %s%s%s; left unchanged",
		         str_at(rkind, "kind") ?: "(no kind)", sub && *sub ? "/" : "",
		         sub && *sub ? sub : "");
		r->outcome = AEGIS_INJECT_SKIP_OPTED_OUT;
		json_array_append_new(warnings, json_string(r->msg));
		goto answer;
	}
	if (op != NULL && strcmp(op, "CREATE") != 0) {
		snprintf(r->msg, sizeof(r->msg), "operation %s: only CREATE is mutated", op);
		r->outcome = AEGIS_INJECT_SKIP_INJECTED;
		goto answer;
	}
	if (!json_is_object(pod)) {
		snprintf(r->msg, sizeof(r->msg), "request.object is not a Pod object");
		goto deny;
	}
	if (r->name[0] == '\0')
		copy(r->name, sizeof(r->name), str_at(json_object_get(pod, "metadata"), "generateName"));
	struct aegis_diag diag = {0};
	rc = aegis_inject_patch_pod(c, pod, "", &patch, &r->outcome, &diag);
	if (rc == AEGIS_ENOMEM)
		goto out;
	if (rc != 0) {
		snprintf(r->msg, sizeof(r->msg), "%s", diag.msg);
		goto deny;
	}
	if (r->outcome == AEGIS_INJECT_SKIP_HOSTNETWORK) {
		snprintf(r->msg, sizeof(r->msg), "aegis-inject: %s: no sidecar added",
		         aegis_inject_patch_outcome_str(r->outcome));
		json_array_append_new(warnings, json_string(r->msg));
	}
	if (r->outcome != AEGIS_INJECT_PATCHED)
		goto answer;
	size_t patch_len;
	patch_text = dump(patch, &patch_len);
	patch_b64 = patch_text ? base64(patch_text, patch_len) : NULL;
	if (patch_b64 == NULL || json_object_set_new(resp, "patchType", json_string("JSONPatch")) != 0 ||
	    json_object_set_new(resp, "patch", json_string(patch_b64)) != 0) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	goto answer;
deny:
	/* A bad aegis.io annotation: refusing the pod with the reason beats running it with a capture the
	 * user did not ask for (a database port they meant to exclude, say). */
	r->allowed = false;
	if (json_object_set_new(resp, "allowed", json_false()) != 0 ||
	    json_object_set_new(resp, "status",
	                        json_pack("{s:i, s:s, s:s, s:s}", "code", 400, "status", "Failure", "reason",
	                                  "BadRequest", "message", r->msg)) != 0) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
answer:
	if (json_array_size(warnings) > 0 && json_object_set(resp, "warnings", warnings) != 0) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	rc = finish(json_pack("{s:s, s:s, s:O}", "apiVersion", "admission.k8s.io/v1", "kind",
	                      "AdmissionReview", "response", resp),
	            r, 200);
out:
	free(patch_text);
	free(patch_b64);
	json_decref(patch);
	json_decref(warnings);
	json_decref(resp);
	json_decref(review);
	return rc;
}
