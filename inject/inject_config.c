/* The injection config: built-in defaults, overlaid by a YAML file (the ConfigMap's config.yaml, mounted as
 * a file). libyaml's document API keeps every node's position, so a wrong key or type stops aegis-inject at
 * start-up with file:line:column. See include/aegis/inject.h and docs/inject.md for the keys. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inject_int.h"

/* The default readiness probe: the kubelet's httpGet to the sidecar's status port (aegis-proxy
 * --status-listen 0.0.0.0:15021, Istio's status port), which answers /healthz/ready and /healthz/live and
 * nothing else; the admin endpoint stays on 127.0.0.1:15000. The patcher keeps that port out of the inbound
 * capture (inject_patch.c), so the probe reaches the sidecar even when inbound traffic is captured. See
 * docs/inject.md. */
#define STATUS_PORT 15021

static char *sdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int aegis_inject_config_init(struct aegis_inject_config *c)
{
	memset(c, 0, sizeof(*c));
	c->image = sdup("aegis:" AEGIS_VERSION);
	c->image_pull_policy = sdup("IfNotPresent");
	c->proxy_uid = 1337;
	c->proxy_gid = 1337;
	c->cert_mount_path = sdup("/etc/aegis/certs");
	c->cert_secret_prefix = sdup("aegis-identity-");
	c->cert_optional = true;
	c->proxy_args = json_pack("[ssssssssssss]", "--xds-address", "aegis-xds.aegis-system.svc:15010",
	                          "--namespace", "$(POD_NAMESPACE)", "--dns-listen", "127.0.0.1:15053",
	                          "--dns-listen", "[::1]:15053", "--cert-dir", "/etc/aegis/certs",
	                          "--status-listen", "0.0.0.0:15021");
	c->iptables_args = json_array();
	c->proxy_resources = json_pack("{s:{s:s, s:s}, s:{s:s}}", "requests", "cpu", "50m", "memory", "32Mi",
	                               "limits", "memory", "256Mi");
	c->init_resources = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "requests", "cpu", "10m", "memory",
	                              "16Mi", "limits", "cpu", "100m", "memory", "64Mi");
	c->readiness_probe = json_pack("{s:{s:s, s:i}, s:i, s:i, s:i, s:i}", "httpGet", "path",
	                               "/healthz/ready", "port", STATUS_PORT, "initialDelaySeconds", 1,
	                               "periodSeconds", 5, "timeoutSeconds", 2, "failureThreshold", 3);
	c->ports = json_pack("[{s:s, s:i, s:s}, {s:s, s:i, s:s}]", "name", "hbone", "containerPort", 15008,
	                     "protocol", "TCP", "name", "http-status", "containerPort", STATUS_PORT,
	                     "protocol", "TCP");
	if (!c->image || !c->image_pull_policy || !c->cert_mount_path || !c->cert_secret_prefix ||
	    !c->proxy_args || !c->iptables_args || !c->proxy_resources || !c->init_resources ||
	    !c->readiness_probe || !c->ports) {
		aegis_inject_config_free(c);
		return AEGIS_ENOMEM;
	}
	return 0;
}

void aegis_inject_config_free(struct aegis_inject_config *c)
{
	free(c->image);
	free(c->image_pull_policy);
	free(c->cert_mount_path);
	free(c->cert_secret_prefix);
	json_decref(c->proxy_args);
	json_decref(c->iptables_args);
	json_decref(c->proxy_resources);
	json_decref(c->init_resources);
	json_decref(c->readiness_probe);
	json_decref(c->ports);
	memset(c, 0, sizeof(*c));
}

static int copy_config(struct aegis_inject_config *dst, const struct aegis_inject_config *src)
{
	*dst = *src;
	dst->image = sdup(src->image);
	dst->image_pull_policy = sdup(src->image_pull_policy);
	dst->cert_mount_path = sdup(src->cert_mount_path);
	dst->cert_secret_prefix = sdup(src->cert_secret_prefix);
	dst->proxy_args = json_deep_copy(src->proxy_args);
	dst->iptables_args = json_deep_copy(src->iptables_args);
	dst->proxy_resources = json_deep_copy(src->proxy_resources);
	dst->init_resources = json_deep_copy(src->init_resources);
	dst->readiness_probe = json_deep_copy(src->readiness_probe);
	dst->ports = json_deep_copy(src->ports);
	if (!dst->image || !dst->image_pull_policy || !dst->cert_mount_path || !dst->cert_secret_prefix ||
	    !dst->proxy_args || !dst->iptables_args || !dst->proxy_resources || !dst->init_resources ||
	    !dst->readiness_probe || !dst->ports) {
		aegis_inject_config_free(dst);
		return AEGIS_ENOMEM;
	}
	return 0;
}

/* The walk's state: the document and where diagnostics point. */
struct walk {
	yaml_document_t *doc;
	const char *name;
	size_t budget;
	struct aegis_diag *diag;
};

static int bad(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int bad(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[sizeof(w->diag->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return aegis_diag_set(w->diag, AEGIS_EINVAL, w->name, (int)n->start_mark.line + 1,
	                      (int)n->start_mark.column + 1, "%s", msg);
}

static int value(struct walk *w, yaml_node_t *n, json_t **out)
{
	return aegis_inject_yaml_node(w->doc, n, w->name, 2, &w->budget, out, w->diag);
}

static int set_string(struct walk *w, yaml_node_t *n, const char *key, char **dst)
{
	json_t *v;
	int rc = value(w, n, &v);
	if (rc != 0)
		return rc;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		json_decref(v);
		return bad(w, n, "%s must be a non-empty string", key);
	}
	char *s = strdup(json_string_value(v));
	json_decref(v);
	if (s == NULL)
		return AEGIS_ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int set_id(struct walk *w, yaml_node_t *n, const char *key, unsigned *dst)
{
	json_t *v;
	int rc = value(w, n, &v);
	if (rc != 0)
		return rc;
	json_int_t i = json_is_integer(v) ? json_integer_value(v) : -1;
	json_decref(v);
	if (i < 1 || i > 2147483647)
		return bad(w, n,
		           "%s must be an integer from 1 to 2147483647 (the sidecar never runs as root)",
		           key);
	*dst = (unsigned)i;
	return 0;
}

static int set_bool(struct walk *w, yaml_node_t *n, const char *key, bool *dst)
{
	json_t *v;
	int rc = value(w, n, &v);
	if (rc != 0)
		return rc;
	bool ok = json_is_boolean(v);
	*dst = ok ? json_is_true(v) : *dst;
	json_decref(v);
	return ok ? 0 : bad(w, n, "%s must be true or false", key);
}

/* kind: 's' a list of strings, 'O' an object, 'P' a Probe, 'L' a list of ContainerPorts. */
static int set_json(struct walk *w, yaml_node_t *n, const char *key, char kind, json_t **dst)
{
	json_t *v, *item;
	size_t i;
	int rc = value(w, n, &v);
	if (rc != 0)
		return rc;
	switch (kind) {
	case 's':
		if (!json_is_array(v))
			goto wrong;
		json_array_foreach(v, i, item) if (!json_is_string(item)) goto wrong;
		break;
	case 'L':
		if (!json_is_array(v))
			goto wrong;
		json_array_foreach(
		        v, i, item) if (!json_is_integer(json_object_get(item, "containerPort"))) goto wrong;
		break;
	case 'P': {
		int handlers = 0;
		static const char *const names[] = {"exec", "httpGet", "tcpSocket", "grpc"};
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			handlers += json_is_object(json_object_get(v, names[k]));
		if (!json_is_object(v) || handlers != 1)
			goto wrong;
		break;
	}
	default:
		if (!json_is_object(v))
			goto wrong;
	}
	json_decref(*dst);
	*dst = v;
	return 0;
wrong:
	json_decref(v);
	switch (kind) {
	case 's': return bad(w, n, "%s must be a list of strings", key);
	case 'L': return bad(w, n, "%s must be a list of container ports (each with containerPort)", key);
	case 'P':
		return bad(w, n, "%s must be a Probe with exactly one of exec, httpGet, tcpSocket, grpc",
		           key);
	default: return bad(w, n, "%s must be a mapping", key);
	}
}

/* The keys of one mapping level: a key with a setter, or a nested section with its own table. */
struct key {
	const char *name;
	int (*fn)(struct walk *w, yaml_node_t *n, struct aegis_inject_config *c);
	const struct key *section;
};

#define SETTER(fname, call)                                                                                  \
	static int fname(struct walk *w, yaml_node_t *n, struct aegis_inject_config *c)                      \
	{                                                                                                    \
		return call;                                                                                 \
	}
SETTER(k_image, set_string(w, n, "image", &c->image))
SETTER(k_uid, set_id(w, n, "proxyUID", &c->proxy_uid))
SETTER(k_gid, set_id(w, n, "proxyGID", &c->proxy_gid))
SETTER(k_mount, set_string(w, n, "certificates.mountPath", &c->cert_mount_path))
SETTER(k_prefix, set_string(w, n, "certificates.secretPrefix", &c->cert_secret_prefix))
SETTER(k_optional, set_bool(w, n, "certificates.optional", &c->cert_optional))
SETTER(k_pargs, set_json(w, n, "proxy.args", 's', &c->proxy_args))
SETTER(k_pres, set_json(w, n, "proxy.resources", 'O', &c->proxy_resources))
SETTER(k_probe, set_json(w, n, "proxy.readinessProbe", 'P', &c->readiness_probe))
SETTER(k_ports, set_json(w, n, "proxy.ports", 'L', &c->ports))
SETTER(k_iargs, set_json(w, n, "init.args", 's', &c->iptables_args))
SETTER(k_ires, set_json(w, n, "init.resources", 'O', &c->init_resources))

static int k_policy(struct walk *w, yaml_node_t *n, struct aegis_inject_config *c)
{
	int rc = set_string(w, n, "imagePullPolicy", &c->image_pull_policy);
	if (rc == 0 && strcmp(c->image_pull_policy, "IfNotPresent") != 0 &&
	    strcmp(c->image_pull_policy, "Always") != 0 && strcmp(c->image_pull_policy, "Never") != 0)
		rc = bad(w, n, "imagePullPolicy '%s' is not IfNotPresent, Always or Never",
		         c->image_pull_policy);
	return rc;
}

static const struct key cert_keys[] = {
        {"mountPath", k_mount, NULL}, {"secretPrefix", k_prefix, NULL}, {"optional", k_optional, NULL}, {0}};
static const struct key proxy_keys[] = {{"args", k_pargs, NULL},
                                        {"resources", k_pres, NULL},
                                        {"readinessProbe", k_probe, NULL},
                                        {"ports", k_ports, NULL},
                                        {0}};
static const struct key init_keys[] = {{"args", k_iargs, NULL}, {"resources", k_ires, NULL}, {0}};
static const struct key top_keys[] = {{"image", k_image, NULL},          {"imagePullPolicy", k_policy, NULL},
                                      {"proxyUID", k_uid, NULL},         {"proxyGID", k_gid, NULL},
                                      {"certificates", NULL, cert_keys}, {"proxy", NULL, proxy_keys},
                                      {"init", NULL, init_keys},         {0}};

static int walk_map(struct walk *w, yaml_node_t *n, const struct key *keys, const char *where,
                    struct aegis_inject_config *c)
{
	if (n->type != YAML_MAPPING_NODE)
		return bad(w, n, "%s must be a mapping", where);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key),
		            *v = yaml_document_get_node(w->doc, p->value);
		if (k->type != YAML_SCALAR_NODE)
			return bad(w, k, "%s: keys must be scalars", where);
		const char *name = (const char *)k->data.scalar.value;
		const struct key *key = keys;
		while (key->name != NULL && strcmp(key->name, name) != 0)
			key++;
		if (key->name == NULL)
			return bad(w, k, "unknown key '%s' (see docs/inject.md)", name);
		int rc = key->section ? walk_map(w, v, key->section, name, c) : key->fn(w, v, c);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int aegis_inject_config_parse(struct aegis_inject_config *c, const char *name, const char *text, size_t len,
                              struct aegis_diag *diag)
{
	struct aegis_inject_config next;
	yaml_parser_t parser;
	yaml_document_t doc;
	bool have_doc = false;
	int rc = copy_config(&next, c);
	if (rc != 0)
		return aegis_diag_set(diag, rc, name, 0, 0, "out of memory");
	if (!yaml_parser_initialize(&parser)) {
		aegis_inject_config_free(&next);
		return aegis_diag_set(diag, AEGIS_ENOMEM, name, 0, 0, "out of memory");
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = aegis_inject_yaml_parser_error(&parser, name, diag);
		goto out;
	}
	have_doc = true;
	struct walk w = {.doc = &doc, .name = name, .budget = AEGIS_INJECT_MAX_YAML_VALUES, .diag = diag};
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	/* An empty file (a ConfigMap key left blank) means "the defaults". */
	if (root != NULL && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
		rc = walk_map(&w, root, top_keys, "the config", &next);
		if (rc != 0)
			goto out;
	}
	yaml_document_t extra;
	if (!yaml_parser_load(&parser, &extra)) {
		rc = aegis_inject_yaml_parser_error(&parser, name, diag);
		goto out;
	}
	yaml_node_t *second = yaml_document_get_root_node(&extra);
	int second_line = second ? (int)second->start_mark.line + 1 : 0;
	yaml_document_delete(&extra);
	if (second != NULL) {
		rc = aegis_diag_set(diag, AEGIS_EINVAL, name, second_line, 0, "more than one YAML document");
		goto out;
	}
	aegis_inject_config_free(c);
	*c = next;
	memset(&next, 0, sizeof(next));
out:
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	aegis_inject_config_free(&next);
	return rc;
}

int aegis_inject_config_load(struct aegis_inject_config *c, const char *path, struct aegis_diag *diag)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
	char *buf = malloc(AEGIS_INJECT_MAX_CONFIG + 1);
	size_t len = 0;
	int rc = 0;
	if (buf == NULL) {
		rc = aegis_diag_set(diag, AEGIS_ENOMEM, path, 0, 0, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, AEGIS_INJECT_MAX_CONFIG + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > AEGIS_INJECT_MAX_CONFIG) {
			rc = aegis_diag_set(diag, AEGIS_ELIMIT, path, 0, 0, "larger than %u bytes",
			                    AEGIS_INJECT_MAX_CONFIG);
			goto out;
		}
	}
	rc = aegis_inject_config_parse(c, path, buf, len, diag);
out:
	free(buf);
	close(fd);
	return rc;
}
