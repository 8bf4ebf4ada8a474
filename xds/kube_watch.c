/* List+watch bookkeeping for one kind of one cluster, without I/O (kube_watch.h). */
#include "kube_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aegis_kwatch_init(struct aegis_kwatch *w, enum aegis_kres res)
{
	memset(w, 0, sizeof(*w));
	w->res = res;
	w->objects = json_object();
	return w->objects ? 0 : AEGIS_ENOMEM;
}

void aegis_kwatch_free(struct aegis_kwatch *w)
{
	json_decref(w->objects);
	json_decref(w->pending);
	memset(w, 0, sizeof(*w));
}

/* Percent-encodes everything but RFC 3986 unreserved characters: continue tokens are base64. */
static int escape(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		             c == '-' || c == '.' || c == '_' || c == '~';
		if (k + (plain ? 1 : 3) >= size)
			return AEGIS_ESPACE;
		if (plain) {
			out[k++] = (char)c;
		} else {
			out[k++] = '%';
			out[k++] = hex[c >> 4];
			out[k++] = hex[c & 15];
		}
	}
	out[k] = '\0';
	return 0;
}

int aegis_kwatch_list_path(const struct aegis_kwatch *w, const char *cont, char *buf, size_t size)
{
	char esc[4096];
	int n;
	if (cont != NULL && cont[0] != '\0') {
		if (escape(cont, esc, sizeof(esc)) != 0)
			return AEGIS_ESPACE;
		n = snprintf(buf, size, "%s?limit=%u&continue=%s", aegis_kjson_kinds[w->res].path,
		             AEGIS_KWATCH_PAGE_SIZE, esc);
	} else {
		n = snprintf(buf, size, "%s?limit=%u", aegis_kjson_kinds[w->res].path,
		             AEGIS_KWATCH_PAGE_SIZE);
	}
	return n > 0 && (size_t)n < size ? 0 : AEGIS_ESPACE;
}

int aegis_kwatch_watch_path(const struct aegis_kwatch *w, unsigned timeout_s, char *buf, size_t size)
{
	char esc[AEGIS_KWATCH_RV_MAX * 3];
	if (escape(w->rv, esc, sizeof(esc)) != 0)
		return AEGIS_ESPACE;
	int n = snprintf(buf, size,
	                 "%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u",
	                 aegis_kjson_kinds[w->res].path, esc, timeout_s);
	return n > 0 && (size_t)n < size ? 0 : AEGIS_ESPACE;
}

/* Keeps only what the mapping reads where objects are big and numerous: managedFields everywhere, and
 * for Pods everything but identity, labels, service account, host networking, IP and phase. */
static json_t *slim(enum aegis_kres res, json_t *obj)
{
	json_t *md = json_object_get(obj, "metadata");
	json_object_del(md, "managedFields");
	if (res != AEGIS_KRES_POD)
		return json_incref(obj);
	json_t *p = json_pack("{s:{}, s:{}, s:{}}", "metadata", "spec", "status");
	if (p == NULL)
		return NULL;
	static const char *const keep[3][4] = {
	        {"name", "namespace", "labels", "resourceVersion"},
	        {"serviceAccountName", "hostNetwork", NULL, NULL},
	        {"podIP", "phase", NULL, NULL},
	};
	static const char *const parts[3] = {"metadata", "spec", "status"};
	for (int i = 0; i < 3; i++) {
		json_t *from = json_object_get(obj, parts[i]), *to = json_object_get(p, parts[i]);
		for (int k = 0; k < 4 && keep[i][k]; k++) {
			json_t *v = json_object_get(from, keep[i][k]);
			if (v != NULL && json_object_set(to, keep[i][k], v) != 0) {
				json_decref(p);
				return NULL;
			}
		}
	}
	return p;
}

static const char *object_rv(const json_t *obj)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

void aegis_kwatch_list_abort(struct aegis_kwatch *w)
{
	json_decref(w->pending);
	w->pending = NULL;
}

int aegis_kwatch_list_page(struct aegis_kwatch *w, const char *body, size_t len, char *cont, size_t cont_size,
                           bool *changed, struct aegis_diag *diag)
{
	const char *what = aegis_kjson_kinds[w->res].plural;
	*changed = false;
	cont[0] = '\0';
	if (len > AEGIS_KWATCH_MAX_PAGE)
		return aegis_diag_set(diag, AEGIS_ELIMIT, what, 0, 0, "list page larger than %u bytes",
		                      AEGIS_KWATCH_MAX_PAGE);
	json_error_t err;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	int rc = 0;
	if (root == NULL) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, what, err.line, err.column, "list: %s", err.text);
		goto out;
	}
	const json_t *items = json_object_get(root, "items");
	const json_t *md = json_object_get(root, "metadata");
	const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
	const char *next = json_string_value(json_object_get(md, "continue"));
	if (!json_is_array(items) && !json_is_null(items) && items != NULL) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, what, 0, 0, "list: items is not an array");
		goto out;
	}
	if (rv == NULL || rv[0] == '\0' || strlen(rv) >= AEGIS_KWATCH_RV_MAX) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, what, 0, 0,
		                    "list: no usable metadata.resourceVersion");
		goto out;
	}
	if (w->pending == NULL && (w->pending = json_object()) == NULL) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item)
	{
		char key[600];
		if (!aegis_kjson_key(item, key, sizeof(key)))
			continue; /* nameless: nothing could refer to it, and the mapper would refuse it */
		json_t *s = slim(w->res, item);
		if (s == NULL || json_object_set_new(w->pending, key, s) != 0) {
			rc = AEGIS_ENOMEM;
			goto out;
		}
	}
	if (next != NULL && next[0] != '\0') {
		if ((size_t)snprintf(cont, cont_size, "%s", next) >= cont_size) {
			rc = aegis_diag_set(diag, AEGIS_ELIMIT, what, 0, 0, "list: continue token too long");
			goto out;
		}
		goto out;
	}
	*changed = !json_equal(w->objects, w->pending);
	json_decref(w->objects);
	w->objects = w->pending;
	w->pending = NULL;
	snprintf(w->rv, sizeof(w->rv), "%s", rv);
	w->synced = true;
	if (*changed)
		w->changes++;
out:
	if (rc != 0) {
		cont[0] = '\0';
		aegis_kwatch_list_abort(w);
	}
	json_decref(root);
	return rc;
}

int aegis_kwatch_event(struct aegis_kwatch *w, const char *line, size_t len, bool *changed,
                       struct aegis_diag *diag)
{
	const char *what = aegis_kjson_kinds[w->res].plural;
	*changed = false;
	json_error_t err;
	json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (ev == NULL)
		return aegis_diag_set(diag, AEGIS_EPARSE, what, 0, err.column, "watch event: %s", err.text);
	int rc = AEGIS_KWATCH_GO_ON;
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	const char *rv = object_rv(obj);
	char key[600];
	if (type == NULL || !json_is_object(obj)) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, what, 0, 0, "watch event without type or object");
		goto out;
	}
	if (strcmp(type, "ERROR") == 0) {
		/* A Status object; 410 is "too old resource version" (expired or compacted). */
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		const char *msg = json_string_value(json_object_get(obj, "message"));
		(void)aegis_diag_set(diag, AEGIS_EPROTO, what, 0, 0, "watch error %d: %.160s", (int)code,
		                     msg ? msg : "");
		rc = code == 410 ? AEGIS_KWATCH_RELIST : AEGIS_KWATCH_BACK_OFF;
		goto out;
	}
	if (rv == NULL || rv[0] == '\0' || strlen(rv) >= AEGIS_KWATCH_RV_MAX) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, what, 0, 0, "%s event without a resourceVersion",
		                    type);
		goto out;
	}
	bool add = strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0;
	bool del = strcmp(type, "DELETED") == 0;
	if ((add || del) && !aegis_kjson_key(obj, key, sizeof(key))) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, what, 0, 0, "%s event for an object without a name",
		                    type);
		goto out;
	}
	if (add) {
		json_t *s = slim(w->res, obj);
		json_t *old = json_object_get(w->objects, key);
		*changed = old == NULL || !json_equal(old, s);
		if (s == NULL || json_object_set_new(w->objects, key, s) != 0) {
			rc = aegis_diag_set(diag, AEGIS_ENOMEM, what, 0, 0, "out of memory");
			*changed = false;
			goto out;
		}
	} else if (del) {
		*changed = json_object_del(w->objects, key) == 0;
	} else if (strcmp(type, "BOOKMARK") != 0) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, what, 0, 0, "unknown watch event type %.32s", type);
		goto out;
	}
	/* Every event, bookmarks included, moves the point a reopened watch resumes from. */
	snprintf(w->rv, sizeof(w->rv), "%s", rv);
	w->events++;
	if (*changed)
		w->changes++;
out:
	json_decref(ev);
	return rc;
}

int aegis_kwatch_lines_feed(struct aegis_kwatch_lines *lb, const char *data, size_t len,
                            int (*on_line)(void *user, const char *line, size_t len), void *user)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		if (lb->len + take > AEGIS_KWATCH_MAX_EVENT)
			return AEGIS_ELIMIT;
		if (lb->len + take + 1 > lb->cap) {
			size_t nc = lb->cap ? lb->cap : 4096;
			while (nc < lb->len + take + 1)
				nc *= 2;
			char *nb = realloc(lb->buf, nc);
			if (nb == NULL)
				return AEGIS_ENOMEM;
			lb->buf = nb;
			lb->cap = nc;
		}
		memcpy(lb->buf + lb->len, data, take);
		lb->len += take;
		data += take;
		len -= take;
		if (nl == NULL)
			break;
		data++; /* the newline */
		len--;
		size_t n = lb->len;
		while (n > 0 && (lb->buf[n - 1] == '\r' || lb->buf[n - 1] == ' '))
			n--;
		lb->len = 0;
		if (n == 0)
			continue;
		int rc = on_line(user, lb->buf, n);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void aegis_kwatch_lines_reset(struct aegis_kwatch_lines *lb)
{
	lb->len = 0;
}

void aegis_kwatch_lines_free(struct aegis_kwatch_lines *lb)
{
	free(lb->buf);
	memset(lb, 0, sizeof(*lb));
}
