/* Tests of inject/inject_config.c: the built-in defaults, a config file overlaying them, the ConfigMap copy
 * in deploy/ (so the manifests can never ship a config the webhook refuses), and errors with file:line:column
 * (a typo stops start-up; the previous config is kept). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/inject.h"

#ifndef AEGIS_SRC_DIR
#define AEGIS_SRC_DIR "."
#endif

static void *tmalloc(size_t n)
{
	return test_malloc(n);
}

static void tfree(void *p)
{
	test_free(p);
}

static void test_defaults(void **state)
{
	struct aegis_inject_config c;
	assert_int_equal(aegis_inject_config_init(&c), 0);
	assert_int_equal(c.proxy_uid, 1337);
	assert_int_equal(c.proxy_gid, 1337);
	assert_string_equal(c.image_pull_policy, "IfNotPresent");
	assert_string_equal(c.cert_mount_path, "/etc/aegis/certs");
	assert_int_equal(json_array_size(c.iptables_args), 0);
	/* The kubelet's httpGet on the sidecar's status port (aegis-proxy --status-listen 0.0.0.0:15021). */
	json_t *get = json_object_get(c.readiness_probe, "httpGet");
	assert_non_null(get);
	assert_string_equal(json_string_value(json_object_get(get, "path")), "/healthz/ready");
	assert_int_equal(json_integer_value(json_object_get(get, "port")), 15021);
	size_t n = json_array_size(c.proxy_args);
	assert_string_equal(json_string_value(json_array_get(c.proxy_args, n - 2)), "--status-listen");
	assert_string_equal(json_string_value(json_array_get(c.proxy_args, n - 1)), "0.0.0.0:15021");
	/* An empty file (a blank ConfigMap key) is the defaults. */
	assert_int_equal(aegis_inject_config_parse(&c, "empty", "", 0, NULL), 0);
	assert_int_equal(aegis_inject_config_parse(&c, "comment", "# nothing\n", 10, NULL), 0);
	assert_int_equal(c.proxy_uid, 1337);
	aegis_inject_config_free(&c);
	aegis_inject_config_free(&c); /* twice is harmless */
}

static void test_fixture_file(void **state)
{
	struct aegis_inject_config c;
	struct aegis_diag diag = {0};
	assert_int_equal(aegis_inject_config_init(&c), 0);
	assert_int_equal(
	        aegis_inject_config_load(&c, AEGIS_SRC_DIR "/tests/fixtures/inject/config.yaml", &diag), 0);
	assert_string_equal(c.image, "registry.example.com/aegis:0.1.0");
	assert_string_equal(c.image_pull_policy, "Always");
	assert_string_equal(c.cert_secret_prefix, "mesh-id-");
	assert_string_equal(c.cert_mount_path, "/etc/aegis/certs"); /* untouched keys keep their default */
	assert_int_equal(json_array_size(c.proxy_args), 6);
	assert_string_equal(json_string_value(json_array_get(c.iptables_args, 1)), "off");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(c.proxy_resources, "requests"), "memory")),
	        "24Mi");
	aegis_inject_config_free(&c);
}

/* deploy/30-aegis-inject.yaml embeds the config in its ConfigMap; the same text is checked in as
 * deploy/config/inject.yaml (the test_inject.sh integration test checks that the two agree). */
static void test_deploy_config(void **state)
{
	struct aegis_inject_config c;
	struct aegis_diag diag = {0};
	char buf[600];
	assert_int_equal(aegis_inject_config_init(&c), 0);
	int rc = aegis_inject_config_load(&c, AEGIS_SRC_DIR "/deploy/config/inject.yaml", &diag);
	if (rc != 0)
		fail_msg("%s", aegis_diag_str(&diag, buf, sizeof(buf)));
	assert_int_equal(c.proxy_uid, 1337);
	aegis_inject_config_free(&c);
}

static void test_errors(void **state)
{
	static const struct {
		const char *text;
		int line, column;
		const char *msg;
	} bad[] = {
	        {"image: x\nimagee: y\n", 2, 1, "unknown key 'imagee'"},
	        {"image: \"\"\n", 1, 8, "image must be a non-empty string"},
	        {"image: [a]\n", 1, 8, "image must be a non-empty string"},
	        {"imagePullPolicy: Sometimes\n", 1, 18, "is not IfNotPresent"},
	        {"proxyUID: 0\n", 1, 11, "never runs as root"},
	        {"proxyUID: abc\n", 1, 11, "proxyUID must be an integer"},
	        {"proxyGID: 99999999999\n", 1, 11, "proxyGID"},
	        {"certificates:\n  optional: maybe\n", 2, 13, "true or false"},
	        {"certificates: 3\n", 1, 15, "certificates must be a mapping"},
	        {"proxy:\n  args: [--x, 3]\n", 2, 9, "list of strings"},
	        {"proxy:\n  args: --x\n", 2, 9, "list of strings"},
	        {"proxy:\n  resources: []\n", 2, 14, "must be a mapping"},
	        {"proxy:\n  readinessProbe: {periodSeconds: 5}\n", 3 - 1, 19, "exactly one of"},
	        {"proxy:\n  readinessProbe:\n    exec: {command: [x]}\n    httpGet: {port: 1}\n", 3, 5,
	         "exactly one of"},
	        {"proxy:\n  ports: [{name: x}]\n", 2, 10, "containerPort"},
	        {"init:\n  args: {a: b}\n", 2, 9, "list of strings"},
	        {"init:\n  nope: 1\n", 2, 3, "unknown key 'nope'"},
	        {"- a\n- b\n", 1, 1, "must be a mapping"},
	        {"image: x\n---\nimage: y\n", 3, 0, "more than one YAML document"},
	        {"image: [unclosed\n", 2, 1, "YAML"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aegis_inject_config c;
		struct aegis_diag diag = {0};
		assert_int_equal(aegis_inject_config_init(&c), 0);
		int rc =
		        aegis_inject_config_parse(&c, "config.yaml", bad[i].text, strlen(bad[i].text), &diag);
		if (rc == 0 || strstr(diag.msg, bad[i].msg) == NULL || diag.line != bad[i].line ||
		    (bad[i].column && diag.column != bad[i].column))
			fail_msg("case %zu: rc %d, %d:%d: %s", i, rc, diag.line, diag.column, diag.msg);
		assert_string_equal(diag.file, "config.yaml");
		/* The config is left as it was. */
		assert_string_equal(c.image, "aegis:" AEGIS_VERSION);
		assert_int_equal(c.proxy_uid, 1337);
		aegis_inject_config_free(&c);
	}
	/* Nesting past the limit inside a value (resources) is refused with its position. */
	char deep[512] = "proxy:\n  resources:\n    a: ";
	size_t n = strlen(deep);
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	for (int i = 0; i < 100; i++)
		deep[n++] = ']';
	deep[n++] = '\n';
	deep[n] = '\0';
	struct aegis_inject_config c;
	struct aegis_diag diag = {0};
	assert_int_equal(aegis_inject_config_init(&c), 0);
	assert_int_equal(aegis_inject_config_parse(&c, "deep.yaml", deep, n, &diag), AEGIS_ELIMIT);
	assert_int_equal(diag.line, 3);
	assert_non_null(strstr(diag.msg, "nested deeper"));
	assert_int_equal(aegis_inject_config_load(&c, "/nonexistent/config.yaml", &diag), AEGIS_EIO);
	assert_string_equal(diag.file, "/nonexistent/config.yaml");
	aegis_inject_config_free(&c);
}

int main(void)
{
	json_set_alloc_funcs(tmalloc, tfree);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_fixture_file),
	        cmocka_unit_test(test_deploy_config),
	        cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
