/* RFC 6902 JSON Patch (add, remove, replace, test) over jansson, with RFC 6901 pointers. `aegisctl inject`
 * applies the webhook's own patch with it, so the manual path exercises the exact operations the API server
 * would apply; the integration test checks the same patches with an independent implementation
 * (python3-jsonpatch). move and copy are refused: the injector never emits them. */
#include <stdlib.h>
#include <string.h>

#include "aegis/inject.h"

/* Decodes the next reference token of ptr (after its leading '/') into tok. Returns the rest of the pointer
 * (at '/' or '\0'), or NULL when the token is too long or holds a bad escape. */
static const char *next_token(const char *ptr, char *tok, size_t toklen)
{
	size_t n = 0;
	const char *p = ptr + 1;
	for (; *p && *p != '/'; p++) {
		char c = *p;
		if (c == '~') {
			if (p[1] == '0')
				c = '~';
			else if (p[1] == '1')
				c = '/';
			else
				return NULL;
			p++;
		}
		if (n + 1 >= toklen)
			return NULL;
		tok[n++] = c;
	}
	tok[n] = '\0';
	return p;
}

/* An array index: "0" or digits without a leading zero. "-" (past the end) is index == size when allowed. */
static bool array_index(const char *tok, size_t size, bool dash_ok, size_t *idx)
{
	if (strcmp(tok, "-") == 0 && dash_ok) {
		*idx = size;
		return true;
	}
	size_t n = strlen(tok);
	if (n == 0 || n > 9 || (n > 1 && tok[0] == '0') || strspn(tok, "0123456789") != n)
		return false;
	size_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (size_t)(tok[i] - '0');
	*idx = v;
	return true;
}

/* Walks doc to the parent of the pointer's last token: *parent and the last token in last. */
static int resolve_parent(json_t *doc, const char *path, json_t **parent, char *last, size_t lastlen)
{
	char tok[1024];
	json_t *cur = doc;
	const char *p = path;
	if (*p != '/')
		return AEGIS_EINVAL; /* "" (the whole document) is not an operation the injector needs */
	for (;;) {
		const char *rest = next_token(p, tok, sizeof(tok));
		if (rest == NULL)
			return AEGIS_EINVAL;
		if (*rest == '\0') {
			if (strlen(tok) >= lastlen)
				return AEGIS_EINVAL;
			memcpy(last, tok, strlen(tok) + 1);
			*parent = cur;
			return 0;
		}
		size_t idx;
		if (json_is_object(cur))
			cur = json_object_get(cur, tok);
		else if (json_is_array(cur) && array_index(tok, json_array_size(cur), false, &idx))
			cur = json_array_get(cur, idx);
		else
			cur = NULL;
		if (cur == NULL)
			return AEGIS_ENOTFOUND;
		p = rest;
	}
}

static int apply_one(json_t *doc, const json_t *op, size_t i, struct aegis_diag *diag)
{
	const char *name = json_string_value(json_object_get(op, "op"));
	const char *path = json_string_value(json_object_get(op, "path"));
	/* Values are deep-copied in: a later operation may add inside a value an earlier one inserted, and
	 * that must not write into the caller's patch. */
	json_t *value = json_object_get(op, "value");
	if (name == NULL || path == NULL)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "operation %zu: no op or path", i);
	bool add = strcmp(name, "add") == 0, rem = strcmp(name, "remove") == 0;
	bool rep = strcmp(name, "replace") == 0, test = strcmp(name, "test") == 0;
	if (!add && !rem && !rep && !test)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
		                      "operation %zu: op '%s' is not supported", i, name);
	if (!rem && value == NULL)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "operation %zu: no value", i);
	json_t *parent;
	char last[1024];
	int rc = resolve_parent(doc, path, &parent, last, sizeof(last));
	if (rc != 0)
		return aegis_diag_set(diag, rc, NULL, 0, 0, "operation %zu (%s %s): %s", i, name, path,
		                      rc == AEGIS_ENOTFOUND ? "parent does not exist" : "bad pointer");
	if (json_is_object(parent)) {
		json_t *cur = json_object_get(parent, last);
		if ((rem || rep || test) && cur == NULL)
			return aegis_diag_set(diag, AEGIS_ENOTFOUND, NULL, 0, 0,
			                      "operation %zu (%s %s): no such member", i, name, path);
		if (test)
			return json_equal(cur, value)
			               ? 0
			               : aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                                "operation %zu: test %s failed", i, path);
		if (rem)
			return json_object_del(parent, last) == 0 ? 0 : AEGIS_ENOTFOUND;
		return json_object_set_new(parent, last, json_deep_copy(value)) == 0 ? 0 : AEGIS_ENOMEM;
	}
	if (json_is_array(parent)) {
		size_t size = json_array_size(parent), idx;
		if (!array_index(last, size, add, &idx) || idx > size || (!add && idx == size))
			return aegis_diag_set(diag, AEGIS_ENOTFOUND, NULL, 0, 0,
			                      "operation %zu (%s %s): bad index", i, name, path);
		if (test)
			return json_equal(json_array_get(parent, idx), value)
			               ? 0
			               : aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                                "operation %zu: test %s failed", i, path);
		if (rem)
			return json_array_remove(parent, idx) == 0 ? 0 : AEGIS_ENOMEM;
		if (rep)
			return json_array_set_new(parent, idx, json_deep_copy(value)) == 0 ? 0 : AEGIS_ENOMEM;
		return json_array_insert_new(parent, idx, json_deep_copy(value)) == 0 ? 0 : AEGIS_ENOMEM;
	}
	return aegis_diag_set(diag, AEGIS_ENOTFOUND, NULL, 0, 0, "operation %zu (%s %s): parent is a scalar",
	                      i, name, path);
}

int aegis_inject_jsonpatch_apply(json_t *doc, const json_t *patch, struct aegis_diag *diag)
{
	if (!json_is_array(patch))
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "a patch is a JSON array");
	size_t i;
	json_t *op;
	json_array_foreach(patch, i, op)
	{
		int rc = apply_one(doc, op, i, diag);
		if (rc != 0)
			return rc;
	}
	return 0;
}
