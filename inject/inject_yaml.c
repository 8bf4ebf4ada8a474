/* YAML to JSON for the injection config and for `aegisctl inject -f`: libyaml's document API, then a walk
 * that types plain scalars by the YAML 1.2 core schema (the subset Kubernetes manifests use). See
 * include/aegis/inject.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inject_int.h"

int aegis_inject_yaml_parser_error(const yaml_parser_t *p, const char *name, struct aegis_diag *diag)
{
	const yaml_mark_t *m = &p->problem_mark;
	return aegis_diag_set(diag, AEGIS_EPARSE, name, (int)m->line + 1, (int)m->column + 1, "YAML: %s%s%s",
	                      p->problem ? p->problem : "syntax error", p->context ? " " : "",
	                      p->context ? p->context : "");
}

static bool is_plain(const yaml_node_t *n)
{
	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
	       n->data.scalar.style == YAML_ANY_SCALAR_STYLE;
}

static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* The core schema's integer forms: decimal with a sign, 0o octal, 0x hex. Returns false when s is not one or
 * does not fit in json_int_t; a too-large decimal then becomes a real, as go-yaml makes it a float64. */
static bool parse_int(const char *s, json_int_t *out)
{
	int base = 10;
	const char *digits = s;
	if (strncmp(s, "0x", 2) == 0) {
		base = 16;
		digits = s + 2;
	} else if (strncmp(s, "0o", 2) == 0) {
		base = 8;
		digits = s + 2;
	} else if (*s == '-' || *s == '+') {
		digits = s + 1;
	}
	if (*digits == '\0')
		return false;
	for (const char *p = digits; *p; p++) {
		bool ok =
		        base == 16 ? strchr("0123456789abcdefABCDEF", *p) != NULL : (*p >= '0' && *p <= '9');
		if (!ok || (base == 8 && *p > '7'))
			return false;
	}
	errno = 0;
	char *end;
	long long v = strtoll(base == 10 ? s : digits, &end, base);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (json_int_t)v;
	return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?; .inf and .nan have no JSON form and stay strings. */
static bool parse_real(const char *s, double *out)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	size_t ip = strspn(p, "0123456789");
	p += ip;
	size_t fp = 0;
	if (*p == '.') {
		p++;
		fp = strspn(p, "0123456789");
		p += fp;
	}
	if (ip == 0 && fp == 0)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		size_t ep = strspn(p, "0123456789");
		if (ep == 0)
			return false;
		p += ep;
	}
	if (*p != '\0')
		return false;
	errno = 0;
	char *end;
	*out = strtod(s, &end);
	return errno == 0 && *end == '\0';
}

static json_t *scalar(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	if (!is_plain(n))
		return json_stringn(s, len);
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	if (strlen(s) != len) /* a NUL inside: only a string can hold it */
		return json_stringn(s, len);
	if (one_of(s, nulls))
		return json_null();
	if (one_of(s, trues))
		return json_true();
	if (one_of(s, falses))
		return json_false();
	json_int_t i;
	if (parse_int(s, &i))
		return json_integer(i);
	double d;
	if (parse_real(s, &d))
		return json_real(d);
	return json_stringn(s, len);
}

int aegis_inject_yaml_node(yaml_document_t *doc, yaml_node_t *node, const char *name, int depth,
                           size_t *budget, json_t **out, struct aegis_diag *diag)
{
	*out = NULL;
	int line = (int)node->start_mark.line + 1, col = (int)node->start_mark.column + 1;
	if (depth > AEGIS_INJECT_MAX_DEPTH)
		return aegis_diag_set(diag, AEGIS_ELIMIT, name, line, col, "nested deeper than %d levels",
		                      AEGIS_INJECT_MAX_DEPTH);
	if (*budget == 0)
		return aegis_diag_set(diag, AEGIS_ELIMIT, name, line, col,
		                      "document expands to more than %d values (aliases?)",
		                      AEGIS_INJECT_MAX_YAML_VALUES);
	(*budget)--;
	int rc = 0;
	json_t *v = NULL;
	switch (node->type) {
	case YAML_SCALAR_NODE: v = scalar(node); break;
	case YAML_SEQUENCE_NODE:
		v = json_array();
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     v != NULL && it < node->data.sequence.items.top; it++) {
			json_t *item;
			rc = aegis_inject_yaml_node(doc, yaml_document_get_node(doc, *it), name, depth + 1,
			                            budget, &item, diag);
			if (rc != 0)
				goto out;
			if (json_array_append_new(v, item) != 0) {
				rc = AEGIS_ENOMEM;
				goto out;
			}
		}
		break;
	case YAML_MAPPING_NODE:
		v = json_object();
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     v != NULL && p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			int kl = (int)k->start_mark.line + 1, kc = (int)k->start_mark.column + 1;
			if (k->type != YAML_SCALAR_NODE) {
				rc = aegis_diag_set(diag, AEGIS_EPARSE, name, kl, kc,
				                    "a mapping key must be a scalar");
				goto out;
			}
			const char *key = (const char *)k->data.scalar.value;
			if (strlen(key) != k->data.scalar.length) {
				rc = aegis_diag_set(diag, AEGIS_EPARSE, name, kl, kc,
				                    "a key holds a NUL byte");
				goto out;
			}
			if (json_object_get(v, key) != NULL) {
				rc = aegis_diag_set(diag, AEGIS_EPARSE, name, kl, kc, "duplicate key '%s'",
				                    key);
				goto out;
			}
			json_t *val;
			rc = aegis_inject_yaml_node(doc, yaml_document_get_node(doc, p->value), name,
			                            depth + 1, budget, &val, diag);
			if (rc != 0)
				goto out;
			if (json_object_set_new(v, key, val) != 0) {
				rc = AEGIS_ENOMEM;
				goto out;
			}
		}
		break;
	default: break;
	}
	if (v == NULL) {
		rc = aegis_diag_set(diag, AEGIS_ENOMEM, name, line, col, "out of memory");
		goto out;
	}
	*out = v;
	v = NULL;
out:
	json_decref(v);
	return rc;
}

int aegis_inject_yaml_to_json(const char *name, const char *text, size_t len, json_t **out,
                              struct aegis_diag *diag)
{
	*out = NULL;
	yaml_parser_t parser;
	json_t *docs = json_array();
	size_t budget = AEGIS_INJECT_MAX_YAML_VALUES;
	int rc = 0;
	if (docs == NULL || !yaml_parser_initialize(&parser)) {
		json_decref(docs);
		return aegis_diag_set(diag, AEGIS_ENOMEM, name, 0, 0, "out of memory");
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			rc = aegis_inject_yaml_parser_error(&parser, name, diag);
			goto out;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (root == NULL) { /* end of the stream */
			yaml_document_delete(&doc);
			break;
		}
		json_t *v;
		rc = aegis_inject_yaml_node(&doc, root, name, 1, &budget, &v, diag);
		yaml_document_delete(&doc);
		if (rc != 0)
			goto out;
		/* "---" with nothing after it (a trailing separator) is not a document anyone meant. */
		if (json_is_null(v)) {
			json_decref(v);
			continue;
		}
		if (json_array_append_new(docs, v) != 0) {
			rc = aegis_diag_set(diag, AEGIS_ENOMEM, name, 0, 0, "out of memory");
			goto out;
		}
	}
	*out = docs;
	docs = NULL;
out:
	yaml_parser_delete(&parser);
	json_decref(docs);
	return rc;
}
