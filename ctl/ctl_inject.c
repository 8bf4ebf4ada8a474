/* `aegisctl inject -f pod.yaml|deployment.yaml`: the webhook's injection, run locally, like `istioctl
 * kube-inject`. The YAML is read with libyaml into JSON, the patch computed by the very function the webhook
 * calls (aegis_inject_patch_pod in inject/inject_patch.c) and applied in-process with the JSON Patch
 * applier, and the mutated objects printed as YAML (or JSON), ready for `kubectl apply -f -`.
 *
 * Every document of the stream is printed, in order: Pods and workloads with a pod template (Deployment,
 * StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, and the items of a List) are
 * injected unless they opt out; anything else passes through unchanged. Why one was not injected goes to
 * stderr, so stdout stays valid YAML. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/inject.h"
#include "ctl_inject.h"
#include "ctl_print.h"

#define MAX_INPUT (64u << 20)

static const char usage_text[] =
        "usage: aegisctl inject -f FILE|- [--config FILE] [-o yaml|json]\n"
        "  -f FILE      Pod or workload YAML (several documents allowed; - is stdin)\n"
        "  --config F   injection config (the aegis-inject ConfigMap's config.yaml);\n"
        "               default: the built-in one, as aegis-inject without --config\n"
        "  -o FORMAT    yaml (default) or json\n";

static int read_all(const char *path, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL)
		return -1;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	int rc = -1;
	while (buf != NULL) {
		if (n == cap) {
			if (cap >= MAX_INPUT) {
				errno = EFBIG;
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			rc = ferror(f) ? -1 : 0;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (rc != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Where a kind keeps its pod template, as a JSON Pointer; NULL for kinds without one. */
static const char *template_base(const char *kind)
{
	static const char *const workloads[] = {"Deployment", "StatefulSet",           "DaemonSet",
	                                        "ReplicaSet", "ReplicationController", "Job"};
	if (kind == NULL)
		return NULL;
	if (strcmp(kind, "Pod") == 0)
		return "";
	if (strcmp(kind, "CronJob") == 0)
		return "/spec/jobTemplate/spec/template";
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		if (strcmp(kind, workloads[i]) == 0)
			return "/spec/template";
	return NULL;
}

/* Resolves a pointer made only of object member names (the bases above). */
static json_t *at(json_t *doc, const char *ptr)
{
	char tok[64];
	while (doc != NULL && *ptr == '/') {
		const char *end = strchr(ptr + 1, '/');
		size_t n = end ? (size_t)(end - ptr - 1) : strlen(ptr + 1);
		if (n >= sizeof(tok))
			return NULL;
		memcpy(tok, ptr + 1, n);
		tok[n] = '\0';
		doc = json_object_get(doc, tok);
		ptr += n + 1;
	}
	return doc;
}

/* Injects one object in place. Returns 0 (injected or deliberately left alone) or 1 (message printed). */
static int inject_one(const struct aegis_inject_config *cfg, const char *file, json_t *obj)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	if (kind != NULL && strcmp(kind, "List") == 0) {
		size_t i;
		json_t *item;
		int rc = 0;
		json_array_foreach(json_object_get(obj, "items"), i, item) rc |= inject_one(cfg, file, item);
		return rc;
	}
	const char *base = template_base(kind);
	if (base == NULL)
		return 0;
	json_t *pod = at(obj, base), *patch = NULL;
	enum aegis_inject_outcome outcome;
	struct aegis_diag diag = {0};
	int rc = 1;
	if (aegis_inject_patch_pod(cfg, pod, base, &patch, &outcome, &diag) != 0) {
		fprintf(stderr, "aegisctl: %s: %s/%s: %s\n", file, kind, name ? name : "?", diag.msg);
		goto out;
	}
	if (outcome != AEGIS_INJECT_PATCHED) {
		fprintf(stderr, "aegisctl: %s: %s/%s not injected: %s\n", file, kind, name ? name : "?",
		        aegis_inject_patch_outcome_str(outcome));
		rc = 0;
		goto out;
	}
	/* Applied to a copy, so a failing operation (a bug, never the user's input) leaves nothing half-done.
	 */
	json_t *copy = json_deep_copy(obj);
	if (copy == NULL || aegis_inject_jsonpatch_apply(copy, patch, &diag) != 0) {
		fprintf(stderr, "aegisctl: %s: %s/%s: applying the patch: %s\n", file, kind,
		        name ? name : "?", copy ? diag.msg : "out of memory");
		json_decref(copy);
		goto out;
	}
	json_object_update(obj, copy);
	json_decref(copy);
	rc = 0;
out:
	json_decref(patch);
	return rc;
}

int aegis_ctl_inject_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"filename", required_argument, NULL, 'f'},
	        {"config", required_argument, NULL, 'c'},
	        {"output", required_argument, NULL, 'o'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *file = NULL, *config = NULL;
	bool json = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:c:o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': file = optarg; break;
		case 'c': config = optarg; break;
		case 'o':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "yaml") != 0) {
				fprintf(stderr, "aegisctl: bad output format '%s' (yaml or json)\n", optarg);
				return 2;
			}
			json = strcmp(optarg, "json") == 0;
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (file == NULL || optind != argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	struct aegis_inject_config cfg;
	if (aegis_inject_config_init(&cfg) != 0) {
		fprintf(stderr, "aegisctl: out of memory\n");
		return 1;
	}
	int rc = 1;
	char *text = NULL, msg[600];
	size_t len;
	json_t *docs = NULL;
	struct aegis_diag diag = {0};
	if (config != NULL && aegis_inject_config_load(&cfg, config, &diag) != 0) {
		fprintf(stderr, "aegisctl: %s\n", aegis_diag_str(&diag, msg, sizeof(msg)));
		goto out;
	}
	if (read_all(file, &text, &len) != 0) {
		fprintf(stderr, "aegisctl: %s: %s\n", file, strerror(errno));
		goto out;
	}
	if (aegis_inject_yaml_to_json(strcmp(file, "-") == 0 ? "<stdin>" : file, text, len, &docs, &diag) !=
	    0) {
		fprintf(stderr, "aegisctl: %s\n", aegis_diag_str(&diag, msg, sizeof(msg)));
		goto out;
	}
	rc = 0;
	size_t i;
	json_t *doc;
	json_array_foreach(docs, i, doc) rc |= inject_one(&cfg, file, doc);
	if (rc != 0)
		goto out; /* print nothing rather than a partly injected stream */
	json_array_foreach(docs, i, doc)
	{
		if (json) {
			char *s = json_dumps(doc, JSON_INDENT(2));
			printf("%s\n", s ? s : "null");
			free(s);
		} else {
			if (i > 0)
				printf("---\n");
			aegis_ctl_print_yaml(stdout, doc);
		}
	}
out:
	json_decref(docs);
	free(text);
	aegis_inject_config_free(&cfg);
	return rc;
}
