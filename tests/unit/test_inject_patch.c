/* Tests of inject/inject_patch.c: the pod patch (what is added, where, and when nothing is), the per-pod
 * annotations, and the AdmissionReview handler over the fixtures in tests/fixtures/inject/. The patches are
 * applied with inject/inject_jsonpatch.c here; tests/integration/test_inject.sh applies them again with
 * python3-jsonpatch, an independent implementation. The init container's arguments are also fed to the real
 * aegis-iptables option parser (iptables/capture_opts.c), so the webhook can never emit a command line the
 * init container would reject.
 *
 * jansson allocates through cmocka's test_malloc, so every test is also a leak test of the JSON it builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/inject.h"
#include "capture_opts.h"

#ifndef AEGIS_SRC_DIR
#define AEGIS_SRC_DIR "."
#endif
#define FIXTURES AEGIS_SRC_DIR "/tests/fixtures/inject/"

static void *tmalloc(size_t n)
{
	return test_malloc(n);
}

static void tfree(void *p)
{
	test_free(p);
}

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s%s", FIXTURES, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static json_t *load_json(const char *name)
{
	size_t len;
	char *s = slurp(name, &len);
	json_t *j = json_loadb(s, len, 0, NULL);
	free(s);
	assert_non_null(j);
	return j;
}

static json_t *fixture_pod(const char *name)
{
	json_t *review = load_json(name);
	json_t *pod = json_deep_copy(json_object_get(json_object_get(review, "request"), "object"));
	json_decref(review);
	assert_non_null(pod);
	return pod;
}

struct fx {
	struct aegis_inject_config cfg;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (f == NULL || aegis_inject_config_init(&f->cfg) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	aegis_inject_config_free(&f->cfg);
	free(f);
	return 0;
}

/* Patches pod (base ""), checks the outcome, applies the patch to pod in place. */
static void inject(struct fx *f, json_t *pod, enum aegis_inject_outcome want)
{
	json_t *patch;
	enum aegis_inject_outcome got;
	struct aegis_diag diag = {0};
	assert_int_equal(aegis_inject_patch_pod(&f->cfg, pod, "", &patch, &got, &diag), 0);
	assert_int_equal(got, want);
	if (want != AEGIS_INJECT_PATCHED)
		assert_int_equal(json_array_size(patch), 0);
	assert_int_equal(aegis_inject_jsonpatch_apply(pod, patch, &diag), 0);
	json_decref(patch);
}

static json_t *named(json_t *list, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) if (strcmp(json_string_value(json_object_get(v, "name")) ?: "",
	                                          name) == 0) return v;
	return NULL;
}

static void names_are(json_t *list, const char *const *want, size_t n)
{
	assert_int_equal(json_array_size(list), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(list, i), "name")),
		                    want[i]);
}

static void args_are(json_t *args, const char *const *want, size_t n)
{
	assert_int_equal(json_array_size(args), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_array_get(args, i)), want[i]);
}

/* Runs aegis-iptables' own parser over "aegis-iptables" + args. */
static void iptables_parses(json_t *args, struct aegis_capture_cli *cli)
{
	char prog[] = "aegis-iptables";
	char *argv[32] = {prog};
	size_t n = json_array_size(args);
	assert_true(n < 31);
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = (char *)json_string_value(json_array_get(args, i));
	struct aegis_diag diag = {0};
	assert_int_equal(aegis_capture_cli_parse((int)n + 1, argv, cli, &diag), 0);
	assert_int_equal(cli->cmd, AEGIS_CAPTURE_CMD_APPLY);
}

static void test_plain_pod(void **state)
{
	struct fx *f = *state;
	json_t *pod = fixture_pod("pod-plain.json");
	inject(f, pod, AEGIS_INJECT_PATCHED);
	json_t *spec = json_object_get(pod, "spec");
	names_are(json_object_get(spec, "containers"), (const char *const[]){"reviews", "aegis-proxy"}, 2);
	names_are(json_object_get(spec, "initContainers"), (const char *const[]){"aegis-init"}, 1);
	names_are(json_object_get(spec, "volumes"),
	          (const char *const[]){"kube-api-access-x7k2p", "aegis-certs"}, 2);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_object_get(json_object_get(pod, "metadata"), "annotations"), "aegis.io/status")),
	        "injected");

	/* The init container: what tests/lib/pod.sh runs (`aegis-iptables apply`) with the readiness probe's
	 * port (the status port) kept out of inbound capture, as root with NET_ADMIN and NET_RAW. */
	json_t *init = named(json_object_get(spec, "initContainers"), "aegis-init");
	args_are(json_object_get(init, "command"), (const char *const[]){"aegis-iptables"}, 1);
	args_are(json_object_get(init, "args"),
	         (const char *const[]){"apply", "--exclude-inbound-ports=15021"}, 2);
	json_t *isc = json_object_get(init, "securityContext");
	assert_int_equal(json_integer_value(json_object_get(isc, "runAsUser")), 0);
	args_are(json_object_get(json_object_get(isc, "capabilities"), "add"),
	         (const char *const[]){"NET_ADMIN", "NET_RAW"}, 2);
	struct aegis_capture_cli cli;
	iptables_parses(json_object_get(init, "args"), &cli);
	assert_int_equal(cli.opts.proxy_uid, 1337);
	assert_int_equal(cli.opts.capture_dns, AEGIS_CAPTURE_DNS_ALL);

	/* The sidecar: UID/GID 1337, no capabilities, downward-API env, the identity volume, the probe. */
	json_t *proxy = named(json_object_get(spec, "containers"), "aegis-proxy");
	json_t *psc = json_object_get(proxy, "securityContext");
	assert_int_equal(json_integer_value(json_object_get(psc, "runAsUser")), 1337);
	assert_int_equal(json_integer_value(json_object_get(psc, "runAsGroup")), 1337);
	assert_true(json_is_true(json_object_get(psc, "readOnlyRootFilesystem")));
	assert_null(json_object_get(json_object_get(psc, "capabilities"), "add"));
	names_are(json_object_get(proxy, "env"),
	          (const char *const[]){"POD_NAME", "POD_NAMESPACE", "SERVICE_ACCOUNT", "INSTANCE_IP"}, 4);
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(json_object_get(named(json_object_get(proxy, "env"),
	                                                                  "SERVICE_ACCOUNT"),
	                                                            "valueFrom"),
	                                            "fieldRef"),
	                            "fieldPath")),
	                    "spec.serviceAccountName");
	assert_int_equal(
	        json_integer_value(json_object_get(
	                json_object_get(json_object_get(proxy, "readinessProbe"), "httpGet"), "port")),
	        15021);
	json_t *mount = json_array_get(json_object_get(proxy, "volumeMounts"), 0);
	assert_string_equal(json_string_value(json_object_get(mount, "mountPath")), "/etc/aegis/certs");
	json_t *vol = named(json_object_get(spec, "volumes"), "aegis-certs");
	assert_string_equal(json_string_value(json_object_get(json_object_get(vol, "secret"), "secretName")),
	                    "aegis-identity-bookinfo-reviews");

	/* Idempotent: the injected pod is left as it is. */
	json_t *again = json_deep_copy(pod);
	inject(f, again, AEGIS_INJECT_SKIP_INJECTED);
	assert_true(json_equal(again, pod));
	json_decref(again);
	json_decref(pod);
}

static void test_annotations_and_init_containers(void **state)
{
	struct fx *f = *state;
	json_t *pod = fixture_pod("pod-init-containers.json");
	inject(f, pod, AEGIS_INJECT_PATCHED);
	json_t *spec = json_object_get(pod, "spec");
	/* Ours runs last: the application's init containers run before any capture exists. */
	names_are(json_object_get(spec, "initContainers"),
	          (const char *const[]){"migrate", "wait-db", "aegis-init"}, 3);
	json_t *args = json_object_get(named(json_object_get(spec, "initContainers"), "aegis-init"), "args");
	args_are(args,
	         (const char *const[]){"apply", "--capture-dns=resolv", "--exclude-outbound-ports=5432,6379",
	                               "--exclude-inbound-ports=9090,15021"},
	         4);
	struct aegis_capture_cli cli;
	iptables_parses(args, &cli);
	assert_int_equal(cli.opts.capture_dns, AEGIS_CAPTURE_DNS_RESOLV);
	assert_int_equal(cli.opts.n_exclude_out_ports, 2);
	assert_int_equal(cli.opts.exclude_out_ports[1], 6379);
	assert_int_equal(cli.opts.n_exclude_in_ports, 2);
	assert_int_equal(cli.opts.exclude_in_ports[1], 15021);
	/* Existing annotations are kept, ours added. */
	json_t *annots = json_object_get(json_object_get(pod, "metadata"), "annotations");
	assert_int_equal(json_object_size(annots), 5);
	json_decref(pod);
}

static void test_skips(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *file;
		enum aegis_inject_outcome want;
	} cases[] = {
	        {"pod-opted-out.json", AEGIS_INJECT_SKIP_OPTED_OUT},
	        {"pod-injected.json", AEGIS_INJECT_SKIP_INJECTED},
	        {"pod-hostnetwork.json", AEGIS_INJECT_SKIP_HOSTNETWORK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *pod = fixture_pod(cases[i].file), *before = json_deep_copy(pod);
		inject(f, pod, cases[i].want);
		assert_true(json_equal(pod, before));
		json_decref(before);
		json_decref(pod);
	}
	/* The opt-out label (the webhook's objectSelector) is honoured too, for aegisctl inject. */
	json_t *pod = fixture_pod("pod-plain.json");
	json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "labels"), "aegis.io/inject",
	                    json_string("false"));
	inject(f, pod, AEGIS_INJECT_SKIP_OPTED_OUT);
	json_decref(pod);
	/* A container named aegis-proxy without the annotation counts as injected (hand-written sidecar). */
	pod = fixture_pod("pod-plain.json");
	json_array_append_new(json_object_get(json_object_get(pod, "spec"), "containers"),
	                      json_pack("{s:s}", "name", "aegis-proxy"));
	inject(f, pod, AEGIS_INJECT_SKIP_INJECTED);
	json_decref(pod);
}

static void test_bare_pod(void **state)
{
	/* No annotations, no volumes, no init containers, no service account: every list is created. */
	struct fx *f = *state;
	json_t *pod = fixture_pod("pod-bare.json");
	json_object_del(json_object_get(pod, "spec"), "serviceAccountName");
	json_object_del(json_object_get(pod, "spec"), "serviceAccount");
	inject(f, pod, AEGIS_INJECT_PATCHED);
	json_t *spec = json_object_get(pod, "spec");
	names_are(json_object_get(spec, "volumes"), (const char *const[]){"aegis-certs"}, 1);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_object_get(json_array_get(json_object_get(spec, "volumes"), 0), "secret"),
	                "secretName")),
	        "aegis-identity-default");
	json_decref(pod);
	/* No metadata at all (a bare template). */
	pod = json_pack("{s:{s:[{s:s}]}}", "spec", "containers", "name", "app");
	inject(f, pod, AEGIS_INJECT_PATCHED);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_object_get(json_object_get(pod, "metadata"), "annotations"), "aegis.io/status")),
	        "injected");
	json_decref(pod);
}

static void test_template_base(void **state)
{
	struct fx *f = *state;
	json_t *pod = fixture_pod("pod-plain.json");
	json_t *deploy = json_pack("{s:s, s:s, s:{s:i, s:o}}", "apiVersion", "apps/v1", "kind", "Deployment",
	                           "spec", "replicas", 1, "template", pod);
	json_t *patch;
	enum aegis_inject_outcome o;
	struct aegis_diag diag = {0};
	assert_int_equal(aegis_inject_patch_pod(&f->cfg, pod, "/spec/template", &patch, &o, &diag), 0);
	size_t i;
	json_t *op;
	json_array_foreach(patch, i, op)
	{
		const char *path = json_string_value(json_object_get(op, "path"));
		assert_memory_equal(path, "/spec/template/", 15);
	}
	assert_int_equal(aegis_inject_jsonpatch_apply(deploy, patch, &diag), 0);
	assert_non_null(named(json_object_get(json_object_get(pod, "spec"), "containers"), "aegis-proxy"));
	json_decref(patch);
	json_decref(deploy);
}

static void test_bad_annotations(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *annot, *value;
	} bad[] = {
	        {"aegis.io/exclude-outbound-ports", "postgres"},
	        {"aegis.io/exclude-outbound-ports", "0"},
	        {"aegis.io/exclude-outbound-ports", "65536"},
	        {"aegis.io/exclude-outbound-ports", "1,"},
	        {"aegis.io/exclude-outbound-ports", ",1"},
	        {"aegis.io/exclude-outbound-ports", ""},
	        {"aegis.io/exclude-inbound-ports", "1,,2"},
	        {"aegis.io/exclude-inbound-ports", "0080000"},
	        {"aegis.io/exclude-inbound-ports", "80-90"},
	        {"aegis.io/capture-dns", "maybe"},
	        {"aegis.io/capture-dns", "ALL"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *pod = fixture_pod("pod-plain.json"), *patch = NULL;
		json_object_set_new(json_object_get(pod, "metadata"), "annotations",
		                    json_pack("{s:s}", bad[i].annot, bad[i].value));
		enum aegis_inject_outcome o;
		struct aegis_diag diag = {0};
		assert_int_equal(aegis_inject_patch_pod(&f->cfg, pod, "", &patch, &o, &diag), AEGIS_EINVAL);
		assert_null(patch);
		assert_non_null(strstr(diag.msg, bad[i].annot));
		json_decref(pod);
	}
	/* A list of 65 ports is one over aegis-iptables' cap; 64 is fine. */
	char list[1024] = "";
	for (int i = 1; i <= 65; i++) {
		size_t n = strlen(list);
		snprintf(list + n, sizeof(list) - n, "%s%d", i > 1 ? "," : "", 1000 + i);
		json_t *pod = fixture_pod("pod-plain.json"), *patch = NULL;
		json_object_set_new(json_object_get(pod, "metadata"), "annotations",
		                    json_pack("{s:s}", "aegis.io/exclude-inbound-ports", list));
		enum aegis_inject_outcome o;
		assert_int_equal(aegis_inject_patch_pod(&f->cfg, pod, "", &patch, &o, NULL),
		                 i <= 64 ? 0 : AEGIS_EINVAL);
		json_decref(patch);
		json_decref(pod);
	}
	/* Malformed pods. */
	json_t *pods[] = {
	        json_string("x"),
	        json_pack("{s:s}", "spec", "x"),
	        json_pack("{s:{}}", "spec"),
	        json_pack("{s:s, s:{s:[]}}", "metadata", "x", "spec", "containers"),
	        json_pack("{s:{s:i}, s:{s:[]}}", "metadata", "annotations", 1, "spec", "containers"),
	        json_pack("{s:{s:{s:i}}, s:{s:[]}}", "metadata", "annotations", "aegis.io/capture-dns", 1,
	                  "spec", "containers")};
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
		json_t *patch = NULL;
		enum aegis_inject_outcome o;
		assert_int_equal(aegis_inject_patch_pod(&f->cfg, pods[i], "", &patch, &o, NULL),
		                 AEGIS_EINVAL);
		json_decref(pods[i]);
	}
}

static json_t *decode_b64_json(const char *s)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(s), n = 0;
	assert_int_equal(len % 4, 0);
	char *out = malloc(len);
	assert_non_null(out);
	for (size_t i = 0; i < len; i += 4) {
		unsigned v = 0;
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			v <<= 6;
			if (s[i + k] == '=')
				pad++;
			else
				v |= (unsigned)(strchr(tbl, s[i + k]) - tbl);
		}
		out[n++] = (char)(v >> 16);
		if (pad < 2)
			out[n++] = (char)(v >> 8);
		if (pad < 1)
			out[n++] = (char)v;
	}
	json_t *j = json_loadb(out, n, 0, NULL);
	free(out);
	assert_non_null(j);
	return j;
}

static json_t *review(struct fx *f, const char *file, int want_status, struct aegis_inject_reply *r)
{
	size_t len;
	char *body = slurp(file, &len);
	assert_int_equal(aegis_inject_patch_review(&f->cfg, body, len, r), 0);
	free(body);
	assert_int_equal(r->http_status, want_status);
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	assert_non_null(j);
	free(r->body);
	return j;
}

static void test_review(void **state)
{
	struct fx *f = *state;
	struct aegis_inject_reply r;
	json_t *j = review(f, "pod-plain.json", 200, &r);
	json_t *resp = json_object_get(j, "response");
	assert_string_equal(json_string_value(json_object_get(j, "apiVersion")), "admission.k8s.io/v1");
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "AdmissionReview");
	assert_string_equal(json_string_value(json_object_get(resp, "uid")),
	                    "705ab4f5-6393-11e8-b7cc-42010a800002");
	assert_true(json_is_true(json_object_get(resp, "allowed")));
	assert_string_equal(json_string_value(json_object_get(resp, "patchType")), "JSONPatch");
	assert_string_equal(r.ns, "shop");
	assert_string_equal(r.name, "reviews-v1-7d9f8c6b5-");
	/* The patch in the review is the patch of the pod. */
	json_t *got = decode_b64_json(json_string_value(json_object_get(resp, "patch")));
	json_t *pod = fixture_pod("pod-plain.json"), *want;
	enum aegis_inject_outcome o;
	assert_int_equal(aegis_inject_patch_pod(&f->cfg, pod, "", &want, &o, NULL), 0);
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	json_decref(pod);
	json_decref(j);

	/* Skips: allowed, no patch; hostNetwork and a non-Pod say why in a warning. */
	static const struct {
		const char *file;
		bool warning;
	} skips[] = {{"pod-opted-out.json", false},
	             {"pod-injected.json", false},
	             {"pod-hostnetwork.json", true},
	             {"not-a-pod.json", true}};
	for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
		j = review(f, skips[i].file, 200, &r);
		resp = json_object_get(j, "response");
		assert_true(json_is_true(json_object_get(resp, "allowed")));
		assert_null(json_object_get(resp, "patch"));
		assert_int_equal(json_array_size(json_object_get(resp, "warnings")),
		                 skips[i].warning ? 1 : 0);
		json_decref(j);
	}

	/* A bad annotation: denied with the reason, still a 200 AdmissionReview echoing the uid. */
	j = review(f, "pod-bad-annotation.json", 200, &r);
	resp = json_object_get(j, "response");
	assert_false(json_is_true(json_object_get(resp, "allowed")));
	assert_string_equal(json_string_value(json_object_get(resp, "uid")),
	                    "a4b5c6d7-5555-4e6f-8a7b-8c9d0e1f2a34");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "status"), "code")), 400);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(resp, "status"), "message")),
	                       "aegis.io/exclude-outbound-ports"));
	json_decref(j);

	/* Not an AdmissionReview v1 at all: 400 with a JSON error. */
	static const char *const bad[] = {"malformed.json", "review-v1beta1.json", "review-no-uid.json"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = review(f, bad[i], 400, &r);
		assert_non_null(json_string_value(json_object_get(j, "error")));
		json_decref(j);
	}
	static const char *const inline_bad[] = {
	        "",
	        "null",
	        "[]",
	        "{\"kind\":\"Pod\"}",
	        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
	        "{\"apiVersion\":\"admission.k8s.io/"
	        "v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":7}}",
	        "{\"a\":1,\"a\":2}"};
	for (size_t i = 0; i < sizeof(inline_bad) / sizeof(inline_bad[0]); i++) {
		assert_int_equal(aegis_inject_patch_review(&f->cfg, inline_bad[i], strlen(inline_bad[i]), &r),
		                 0);
		assert_int_equal(r.http_status, 400);
		free(r.body);
	}
	/* A Pod review with an operation other than CREATE, or without an object. */
	static const char *const odd[] = {
	        "{\"apiVersion\":\"admission.k8s.io/"
	        "v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\","
	        "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"operation\":\"UPDATE\","
	        "\"object\":{}}}",
	        "{\"apiVersion\":\"admission.k8s.io/"
	        "v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\","
	        "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"operation\":\"CREATE\"}}"};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(aegis_inject_patch_review(&f->cfg, odd[i], strlen(odd[i]), &r), 0);
		assert_int_equal(r.http_status, 200);
		assert_int_equal(r.allowed, i == 0);
		free(r.body);
	}
}

int main(void)
{
	json_set_alloc_funcs(tmalloc, tfree);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_plain_pod, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_annotations_and_init_containers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_skips, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bare_pod, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_template_base, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_annotations, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_review, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
