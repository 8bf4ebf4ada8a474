/* Tests xds/kube_config.c: a kubeconfig's current context, cluster and user (paths relative to the file,
 * inline base64 data, token and tokenFile, client certificates), an explicit context, every refusal
 * with its reason (exec plugins, a certificate without its key, http://, missing pieces), the in-cluster
 * service account, and base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aegis/log.h"
#include "kube_config.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/aegis-kubecfg.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* "-----BEGIN CERTIFICATE-----\n" in base64 */
#define PEM_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="

static const char kubeconfig[] =
        "apiVersion: v1\n"
        "kind: Config\n"
        "current-context: east\n"
        "clusters:\n"
        "- name: east-cluster\n"
        "  cluster:\n"
        "    server: https://10.0.0.1:6443/\n"
        "    certificate-authority: certs/ca.pem\n"
        "- name: west-cluster\n"
        "  cluster:\n"
        "    server: https://[fd00::1]:443\n"
        "    certificate-authority-data: " PEM_B64 "\n"
        "    insecure-skip-tls-verify: true\n"
        "contexts:\n"
        "- name: east\n"
        "  context: {cluster: east-cluster, user: token-user, namespace: mesh}\n"
        "- name: west\n"
        "  context: {cluster: west-cluster, user: cert-user}\n"
        "- name: nouser\n"
        "  context: {cluster: east-cluster}\n"
        "- name: plugin\n"
        "  context: {cluster: east-cluster, user: exec-user}\n"
        "- name: halfcert\n"
        "  context: {cluster: east-cluster, user: half-user}\n"
        "- name: badcluster\n"
        "  context: {cluster: missing, user: token-user}\n"
        "users:\n"
        "- name: token-user\n"
        "  user: {token: abc.def, tokenFile: /var/token}\n"
        "- name: cert-user\n"
        "  user:\n"
        "    client-certificate-data: " PEM_B64 "\n"
        "    client-key: /etc/keys/k.pem\n"
        "- name: exec-user\n"
        "  user:\n"
        "    exec: {apiVersion: client.authentication.k8s.io/v1, command: gke-gcloud-auth-plugin}\n"
        "- name: half-user\n"
        "  user: {client-certificate: c.pem}\n";

static void test_current_context(void **state)
{
	(void)state;
	const char *path = write_file("kubeconfig", kubeconfig);
	struct aegis_kubecfg c;
	struct aegis_diag d;
	assert_int_equal(aegis_kubecfg_load(path, NULL, &c, &d), 0);
	assert_string_equal(c.server, "https://10.0.0.1:6443"); /* trailing slash dropped */
	char want[256];
	snprintf(want, sizeof(want), "%s/certs/ca.pem", dir); /* relative to the kubeconfig */
	assert_string_equal(c.ca_file, want);
	assert_null(c.ca_pem);
	assert_string_equal(c.token, "abc.def");
	assert_string_equal(c.token_file, "/var/token");
	assert_string_equal(c.namespace_, "mesh");
	assert_false(c.insecure);
	assert_null(c.cert_file);
	aegis_kubecfg_clear(&c);
	assert_null(c.server);
}

static void test_explicit_context(void **state)
{
	(void)state;
	const char *path = write_file("kubeconfig", kubeconfig);
	struct aegis_kubecfg c;
	struct aegis_diag d;
	assert_int_equal(aegis_kubecfg_load(path, "west", &c, &d), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	assert_non_null(c.ca_pem);
	assert_int_equal(c.ca_pem_len, 28);
	assert_memory_equal(c.ca_pem, "-----BEGIN CERTIFICATE-----\n", 28);
	assert_true(c.insecure);
	assert_int_equal(c.cert_pem_len, 28);
	assert_string_equal(c.key_file, "/etc/keys/k.pem");
	assert_null(c.token);
	assert_null(c.namespace_);
	aegis_kubecfg_clear(&c);

	assert_int_equal(aegis_kubecfg_load(path, "nouser", &c, &d), 0); /* anonymous */
	assert_null(c.token);
	assert_null(c.cert_file);
	aegis_kubecfg_clear(&c);
}

static void expect_refusal(const char *path, const char *context, int rc, const char *want)
{
	struct aegis_kubecfg c;
	struct aegis_diag d;
	memset(&d, 0, sizeof(d));
	assert_int_equal(aegis_kubecfg_load(path, context, &c, &d), rc);
	if (strstr(d.msg, want) == NULL)
		print_error("message \"%s\" lacks \"%s\"\n", d.msg, want);
	assert_non_null(strstr(d.msg, want));
	aegis_kubecfg_clear(&c);
}

static void test_refusals(void **state)
{
	(void)state;
	const char *path = write_file("kubeconfig", kubeconfig);
	char p[256];
	snprintf(p, sizeof(p), "%s", path);
	expect_refusal(p, "plugin", AEGIS_EINVAL, "exec/auth-provider plugin");
	expect_refusal(p, "halfcert", AEGIS_EINVAL, "needs its key");
	expect_refusal(p, "badcluster", AEGIS_ENOTFOUND, "cluster \"missing\"");
	expect_refusal(p, "nope", AEGIS_ENOTFOUND, "context \"nope\" not found");
	snprintf(p, sizeof(p), "%s", write_file("k2", "apiVersion: v1\nkind: Config\n"));
	expect_refusal(p, NULL, AEGIS_EINVAL, "no current-context");
	snprintf(p, sizeof(p), "%s",
	         write_file("k3", "current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n"
	                          "clusters: [{name: x, cluster: {server: 'http://1.2.3.4'}}]\n"));
	expect_refusal(p, NULL, AEGIS_EINVAL, "https://");
	snprintf(p, sizeof(p), "%s",
	         write_file("k4", "current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n"
	                          "clusters: [{name: x, cluster: {server: 'https://h', "
	                          "certificate-authority-data: '!!'}}]\n"));
	expect_refusal(p, NULL, AEGIS_EPARSE, "not valid base64");
	snprintf(p, sizeof(p), "%s", write_file("k5", "a: [b\n"));
	expect_refusal(p, NULL, AEGIS_EPARSE, "YAML syntax error");
	snprintf(p, sizeof(p), "%s/absent", dir);
	expect_refusal(p, NULL, AEGIS_ENOTFOUND, "cannot read");
}

static void test_in_cluster(void **state)
{
	(void)state;
	struct aegis_kubecfg c;
	struct aegis_diag d;
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(aegis_kubecfg_in_cluster(dir, &c, &d), AEGIS_ENOTFOUND);
	assert_non_null(strstr(d.msg, "--kubeconfig"));
	aegis_kubecfg_clear(&c);

	setenv("KUBERNETES_SERVICE_HOST", "fd00::10", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(aegis_kubecfg_in_cluster(dir, &c, &d), AEGIS_ENOTFOUND); /* no token file */
	aegis_kubecfg_clear(&c);
	write_file("token", "eyJhbGciOi\n");
	write_file("namespace", "aegis-system\n");
	assert_int_equal(aegis_kubecfg_in_cluster(dir, &c, &d), 0);
	assert_string_equal(c.server, "https://[fd00::10]:443");
	char want[256];
	snprintf(want, sizeof(want), "%s/token", dir);
	assert_string_equal(c.token_file, want); /* re-read per request: projected tokens rotate */
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	assert_string_equal(c.ca_file, want);
	assert_string_equal(c.namespace_, "aegis-system");
	aegis_kubecfg_clear(&c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_base64(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} v[] = {{"", ""},           {"Zg==", "f"},           {"Zm8=", "fo"},        {"Zm9v", "foo"},
	         {"Zm9vYg", "foob"}, {"Zm9v\nYmE=", "fooba"}, {"Zm9vYmFy", "foobar"}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *out;
		size_t len;
		assert_int_equal(aegis_kubecfg_base64(v[i].in, &out, &len), 0);
		assert_int_equal(len, strlen(v[i].out));
		assert_memory_equal(out, v[i].out, len);
		free(out);
	}
	char *out;
	size_t len;
	assert_int_equal(aegis_kubecfg_base64("Zm9v*", &out, &len), AEGIS_EPARSE);
}

int main(void)
{
	aegis_log_set_level(AEGIS_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_current_context), cmocka_unit_test(test_explicit_context),
	        cmocka_unit_test(test_refusals),        cmocka_unit_test(test_in_cluster),
	        cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
