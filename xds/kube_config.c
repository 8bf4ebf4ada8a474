/* kubeconfig and in-cluster service-account configuration (kube_config.h). The kubeconfig is the
 * operator's own file, so libyaml's document API is enough here; the size cap and the refusal of
 * aliases still keep a mistaken file from taking the process down. */
#include "kube_config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define KUBECONFIG_MAX_BYTES (4u << 20)
#define SA_DIR               "/var/run/secrets/kubernetes.io/serviceaccount"

static char *read_all(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *buf = malloc(max + 1);
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
	fclose(f);
	if (buf == NULL || n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int aegis_kubecfg_base64(const char *in, char **out, size_t *out_len)
{
	size_t n = strlen(in);
	unsigned char *buf = malloc(n / 4 * 3 + 4);
	if (buf == NULL)
		return AEGIS_ENOMEM;
	uint32_t acc = 0;
	int bits = 0;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else if (c == '=')
			break; /* padding ends the data */
		else if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		else {
			free(buf);
			return AEGIS_EPARSE;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[w++] = (unsigned char)(acc >> bits);
		}
	}
	buf[w] = '\0';
	*out = (char *)buf;
	*out_len = w;
	return 0;
}

/* ---- a few lookups over libyaml's document model ---- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

static const char *scalar(yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

/* The item of a named list (`clusters`, `users`, `contexts`) whose `name` is name, and its inner
 * mapping (`cluster`, `user`, `context`). */
static yaml_node_t *named(yaml_document_t *d, const char *list, const char *inner, const char *name)
{
	yaml_node_t *seq = map_get(d, yaml_document_get_root_node(d), list);
	if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(d, *it);
		const char *n = scalar(map_get(d, item, "name"));
		if (n != NULL && strcmp(n, name) == 0)
			return map_get(d, item, inner);
	}
	return NULL;
}

/* A path field: relative paths are relative to the kubeconfig's directory (kubectl's rule). */
static int path_field(const char *dir, const char *v, char **out)
{
	if (v == NULL || v[0] == '\0')
		return 0;
	size_t n = strlen(dir) + strlen(v) + 2;
	*out = malloc(n);
	if (*out == NULL)
		return AEGIS_ENOMEM;
	if (v[0] == '/' || dir[0] == '\0')
		snprintf(*out, n, "%s", v);
	else
		snprintf(*out, n, "%s/%s", dir, v);
	return 0;
}

static int data_field(const char *path, const char *field, const char *v, char **out, size_t *len,
                      struct aegis_diag *diag)
{
	if (v == NULL || v[0] == '\0')
		return 0;
	int rc = aegis_kubecfg_base64(v, out, len);
	if (rc != 0)
		return aegis_diag_set(diag, rc, path, 0, 0, "%s is not valid base64", field);
	return 0;
}

static int fill(const char *path, const char *dir, yaml_document_t *d, const char *context,
                struct aegis_kubecfg *c, struct aegis_diag *diag)
{
	yaml_node_t *root = yaml_document_get_root_node(d);
	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return aegis_diag_set(diag, AEGIS_EPARSE, path, 0, 0, "a kubeconfig is a mapping");
	const char *ctx_name = context ? context : scalar(map_get(d, root, "current-context"));
	if (ctx_name == NULL || ctx_name[0] == '\0')
		return aegis_diag_set(diag, AEGIS_EINVAL, path, 0, 0, "no current-context");
	yaml_node_t *ctx = named(d, "contexts", "context", ctx_name);
	if (ctx == NULL)
		return aegis_diag_set(diag, AEGIS_ENOTFOUND, path, 0, 0, "context \"%.64s\" not found",
		                      ctx_name);
	const char *cl_name = scalar(map_get(d, ctx, "cluster"));
	const char *user_name = scalar(map_get(d, ctx, "user"));
	c->namespace_ = dup_or_null(scalar(map_get(d, ctx, "namespace")));
	yaml_node_t *cl = cl_name ? named(d, "clusters", "cluster", cl_name) : NULL;
	if (cl == NULL)
		return aegis_diag_set(diag, AEGIS_ENOTFOUND, path, 0, 0,
		                      "cluster \"%.64s\" of context %.64s not found", cl_name ? cl_name : "",
		                      ctx_name);
	const char *server = scalar(map_get(d, cl, "server"));
	if (server == NULL || strncmp(server, "https://", 8) != 0)
		return aegis_diag_set(diag, AEGIS_EINVAL, path, 0, 0,
		                      "cluster %.64s: server must be an https:// URL", cl_name);
	c->server = strdup(server);
	if (c->server == NULL)
		return AEGIS_ENOMEM;
	size_t sl = strlen(c->server);
	while (sl > 8 && c->server[sl - 1] == '/')
		c->server[--sl] = '\0';
	const char *insecure = scalar(map_get(d, cl, "insecure-skip-tls-verify"));
	c->insecure = insecure != NULL && strcmp(insecure, "true") == 0;
	c->tls_server_name = dup_or_null(scalar(map_get(d, cl, "tls-server-name")));
	int rc;
	if ((rc = path_field(dir, scalar(map_get(d, cl, "certificate-authority")), &c->ca_file)) ||
	    (rc = data_field(path, "certificate-authority-data",
	                     scalar(map_get(d, cl, "certificate-authority-data")), &c->ca_pem, &c->ca_pem_len,
	                     diag)))
		return rc;

	yaml_node_t *u = user_name ? named(d, "users", "user", user_name) : NULL;
	if (u == NULL) /* a context without a user: anonymous access, which the API server may allow */
		return 0;
	if (map_get(d, u, "exec") != NULL || map_get(d, u, "auth-provider") != NULL)
		return aegis_diag_set(
		        diag, AEGIS_EINVAL, path, 0, 0,
		        "user %.64s needs an exec/auth-provider plugin, which aegis-xds does not run; "
		        "use a token or a client certificate",
		        user_name);
	c->token = dup_or_null(scalar(map_get(d, u, "token")));
	if ((rc = path_field(dir, scalar(map_get(d, u, "tokenFile")), &c->token_file)) ||
	    (rc = path_field(dir, scalar(map_get(d, u, "client-certificate")), &c->cert_file)) ||
	    (rc = path_field(dir, scalar(map_get(d, u, "client-key")), &c->key_file)) ||
	    (rc = data_field(path, "client-certificate-data",
	                     scalar(map_get(d, u, "client-certificate-data")), &c->cert_pem, &c->cert_pem_len,
	                     diag)) ||
	    (rc = data_field(path, "client-key-data", scalar(map_get(d, u, "client-key-data")), &c->key_pem,
	                     &c->key_pem_len, diag)))
		return rc;
	bool has_cert = c->cert_file || c->cert_pem, has_key = c->key_file || c->key_pem;
	if (has_cert != has_key)
		return aegis_diag_set(diag, AEGIS_EINVAL, path, 0, 0,
		                      "user %.64s: a client certificate needs its key and vice versa",
		                      user_name);
	return 0;
}

int aegis_kubecfg_load(const char *path, const char *context, struct aegis_kubecfg *out,
                       struct aegis_diag *diag)
{
	memset(out, 0, sizeof(*out));
	size_t len = 0;
	char *buf = read_all(path, KUBECONFIG_MAX_BYTES, &len);
	if (buf == NULL)
		return aegis_diag_set(diag, errno == ENOENT ? AEGIS_ENOTFOUND : AEGIS_EIO, path, 0, 0,
		                      "cannot read: %s", strerror(errno));
	char dir[4096];
	const char *slash = strrchr(path, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
	if (slash == path)
		snprintf(dir, sizeof(dir), "/");

	int rc = 0;
	yaml_parser_t p;
	yaml_document_t d;
	bool have_doc = false;
	if (!yaml_parser_initialize(&p)) {
		rc = AEGIS_ENOMEM;
		goto out_buf;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&p, &d)) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, path, (int)p.problem_mark.line + 1,
		                    (int)p.problem_mark.column + 1, "YAML syntax error: %s",
		                    p.problem ? p.problem : "invalid input");
		goto out_parser;
	}
	have_doc = true;
	rc = fill(path, dir, &d, context, out, diag);
	if (rc == AEGIS_ENOMEM)
		(void)aegis_diag_set(diag, rc, path, 0, 0, "out of memory");
	if (have_doc)
		yaml_document_delete(&d);
out_parser:
	yaml_parser_delete(&p);
out_buf:
	free(buf);
	return rc;
}

int aegis_kubecfg_in_cluster(const char *sa_dir, struct aegis_kubecfg *out, struct aegis_diag *diag)
{
	memset(out, 0, sizeof(*out));
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0')
		return aegis_diag_set(
		        diag, AEGIS_ENOTFOUND, NULL, 0, 0,
		        "not running in a pod (KUBERNETES_SERVICE_HOST/PORT unset); use --kubeconfig");
	const char *dir = sa_dir ? sa_dir : SA_DIR;
	size_t n = strlen(host) + strlen(port) + 16;
	out->server = malloc(n);
	if (out->server == NULL)
		return AEGIS_ENOMEM;
	bool v6 = strchr(host, ':') != NULL;
	snprintf(out->server, n, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
	char path[4096];
	snprintf(path, sizeof(path), "%s/token", dir);
	struct stat st;
	if (stat(path, &st) != 0)
		return aegis_diag_set(diag, AEGIS_ENOTFOUND, path, 0, 0, "service account token: %s",
		                      strerror(errno));
	if ((out->token_file = strdup(path)) == NULL)
		return AEGIS_ENOMEM;
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if ((out->ca_file = strdup(path)) == NULL)
		return AEGIS_ENOMEM;
	snprintf(path, sizeof(path), "%s/namespace", dir);
	size_t len = 0;
	char *ns = read_all(path, 253, &len);
	if (ns != NULL) {
		while (len > 0 && (ns[len - 1] == '\n' || ns[len - 1] == ' '))
			ns[--len] = '\0';
		out->namespace_ = ns;
	}
	return 0;
}

void aegis_kubecfg_clear(struct aegis_kubecfg *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->cert_pem);
	if (c->key_pem != NULL)
		memset(c->key_pem, 0, c->key_pem_len); /* a private key should not linger in freed memory */
	free(c->key_pem);
	free(c->key_file);
	free(c->tls_server_name);
	free(c->namespace_);
	memset(c, 0, sizeof(*c));
}
